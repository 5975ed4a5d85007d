//! One SSH connection, front to back: admission, the SSH handshake, the certificate and
//! grant checks, the connection to the asset, then the channels (each decided by the
//! session's [`SshAllow`] and relayed to a channel of its own on the asset) until the
//! client leaves or the session is cut.
//!
//! Refusals: a certificate that is not a valid jitgate certificate is counted with the
//! pre-authentication refusals of its source (a plain key is refused without a trace:
//! OpenSSH clients offer every key they hold); a valid one refused for its grant (ended,
//! another subject, no SSH scope on the asset, the asset down or its host key changed…)
//! is recorded as `session.refused` under the grant, and the connection is ended with the
//! reason. To be sure the client shows that reason, such a refusal completes the SSH
//! authentication step (an OpenSSH client told "failure" with no other key to try exits
//! without reading further) and then refuses everything: the first shell, command or
//! subsystem the client asks for gets the reason on its stderr and exit status 255 (a
//! terminal asked for before it is answered yes, allocating nothing), a
//! forwarding gets it as the channel-open failure's text, and the connection is ended
//! with it as the disconnect message after [`REFUSED_GRACE`] at most. Nothing is reachable
//! in between — no channel has a twin on the asset — and the gateway has not connected
//! to the asset (or has dropped that connection). A refused channel request is an
//! `operation` event with `allowed: false` and its reason, also written to the user's
//! stderr on that channel (or given as the channel-open failure's text).
//!
//! Why a session ended (`session.ended`): `client_closed`, `client_error: …`, `expired`,
//! `idle_timeout`, `grant_<reason>`, `key_retired`, `gateway_shutdown`.

use super::allow::{Request, SshAllow};
use super::cert::{check_user_certificate, CertRefusal, UserCertClaim};
use super::follow::SftpFollow;
use super::record::{SessionRecorder, Started};
use super::target::TargetHandler;
use super::{SshService, AUTH_TIMEOUT, MAX_CHANNELS};
use crate::live::{to_json, SessionHandle, SessionInfo, SessionStats, Toucher};
use crate::online::GrantClaim;
use crate::spool::Unrecorded;
use jitgate_core::server_payload::{SessionRefusedDetail, SessionStartedDetail};
use jitgate_core::Timestamp;
use russh::keys::Certificate;
use russh::server::{self, Auth, Msg, Session};
use russh::{
    client, Channel, ChannelId, ChannelMsg, ChannelOpenFailure, ChannelWriteHalf, Disconnect,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// SSH's extended data type for stderr.
const STDERR: u32 = 1;
/// How long a cut waits for the message and disconnect to leave before it gives up on the
/// client and ends the session anyway.
const CUT_GRACE: Duration = Duration::from_secs(2);
/// How often a session's recording is told the time (a quiet session's open chunk is
/// closed by age, docs/gateway.md "Recordings").
const RECORDING_TICK: Duration = Duration::from_secs(2);
/// How long a connection refused for its grant may stay to read the reason.
pub const REFUSED_GRACE: Duration = Duration::from_secs(10);

/// Counts of one session, shared by its channels' tasks.
#[derive(Default)]
pub(super) struct Stats {
    pub(super) operations: AtomicU64,
    pub(super) denied: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl Stats {
    fn snapshot(&self) -> SessionStats {
        SessionStats {
            operations: self.operations.load(Ordering::Relaxed),
            denied: self.denied.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }
}

type Recorder = Arc<Mutex<Box<dyn SessionRecorder>>>;

fn record(rec: &Recorder, f: impl FnOnce(&mut dyn SessionRecorder)) {
    let mut r = rec.lock().unwrap_or_else(|p| p.into_inner());
    f(r.as_mut());
}

/// Handed from the authenticated handler to the connection's task, which owns the
/// session's end.
struct Opened {
    handle: SessionHandle,
    stats: Arc<Stats>,
    /// The client's open session channels (for the cut's message).
    channels: Arc<Mutex<Vec<ChannelId>>>,
    target: Arc<client::Handle<TargetHandler>>,
    recorder: Recorder,
}

/// One connection, from accept to close.
pub async fn serve(svc: Arc<SshService>, tcp: TcpStream, peer: SocketAddr) {
    // Refused (and counted) here: closed before any SSH work.
    let Some(mut admitted) = svc.gw.admit(peer) else {
        return;
    };
    let session_id = crate::new_session_id();
    let (open_tx, open_rx) = oneshot::channel::<Result<Opened, String>>();
    let conn = Conn {
        svc: Arc::clone(&svc),
        peer,
        session_id: session_id.clone(),
        opened_at: svc.gw.clock_now(),
        open_tx: Some(open_tx),
        live: None,
        refused: None,
    };
    // A second handle on the socket, to close it whatever state the SSH session is in (a
    // client that stops reading can stall the session's own writes, and so its disconnect).
    let Ok(std_tcp) = tcp.into_std() else { return };
    let killer = std_tcp.try_clone().ok();
    let kill = move || {
        if let Some(k) = &killer {
            let _ = k.shutdown(std::net::Shutdown::Both);
        }
    };
    let Ok(tcp) = TcpStream::from_std(std_tcp) else {
        return;
    };
    let config = Arc::clone(&svc.server_config);
    let running =
        match tokio::time::timeout(AUTH_TIMEOUT, server::run_stream(config, tcp, conn)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                kill();
                svc.gw.pre_auth_refused(
                    peer,
                    "ssh_handshake_failed",
                    Some(&session_id),
                    &e.to_string(),
                    None,
                );
                return;
            }
            Err(_) => {
                kill();
                svc.gw.pre_auth_refused(
                    peer,
                    "ssh_timeout",
                    Some(&session_id),
                    "no SSH identification within 30 s",
                    None,
                );
                return;
            }
        };
    let client = running.handle();
    tokio::pin!(running);
    let opened = tokio::select! {
        _ = &mut running => return,
        opened = open_rx => match opened {
            Ok(Ok(o)) => o,
            // Refused for its grant: the handler tells the client why on its first
            // channel; the connection ends when the client leaves, or after a while.
            Ok(Err(message)) => {
                if tokio::time::timeout(REFUSED_GRACE, &mut running).await.is_ok() {
                    return;
                }
                let _ = tokio::time::timeout(
                    CUT_GRACE,
                    client.disconnect(Disconnect::ByApplication, message, "en".into()),
                ).await;
                let _ = tokio::time::timeout(CUT_GRACE, &mut running).await;
                kill();
                return;
            }
            Err(_) => { let _ = tokio::time::timeout(CUT_GRACE, &mut running).await; kill(); return; }
        },
        () = tokio::time::sleep(AUTH_TIMEOUT) => {
            svc.gw.pre_auth_refused(peer, "ssh_timeout", Some(&session_id), "no authentication within 30 s", None);
            let _ = tokio::time::timeout(
                CUT_GRACE,
                client.disconnect(Disconnect::ByApplication, "jitgate: authentication took too long".into(), "en".into()),
            ).await;
            kill();
            return;
        }
    };
    // Authenticated: no longer counts against its source's pending connections.
    admitted.authenticated();
    let Opened {
        handle,
        stats,
        channels,
        target,
        recorder,
    } = opened;
    let mut every = tokio::time::interval(RECORDING_TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let reason = loop {
        tokio::select! {
            () = async { every.tick().await; } => {
                record(&recorder, |r| r.tick(Instant::now()));
                continue;
            }
            r = &mut running => break match r {
                Ok(()) => "client_closed".to_string(),
                Err(e) => format!("client_error: {e}"),
            },
            reason = handle.cut() => {
                let grant = &handle.info().grant_id;
                let (by, note) = svc.gw.ended_by(grant);
                let message = cut_message(&reason, grant, by.as_deref(), note.as_deref());
                let open: Vec<ChannelId> = channels.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let notify = async {
                    for ch in open {
                        // The cast shows the cut as the user saw it.
                        record(&recorder, |r| {
                            r.output(Instant::now(), channel_no(ch), format!("\r\n{message}\r\n").as_bytes(), true)
                        });
                        let _ = client.extended_data(ch, STDERR, format!("\r\n{message}\r\n")).await;
                        let _ = client.exit_status_request(ch, 255).await;
                        let _ = client.close(ch).await;
                    }
                    let _ = client.disconnect(Disconnect::ByApplication, message.clone(), "en".into()).await;
                };
                let _ = tokio::time::timeout(CUT_GRACE, notify).await;
                // The asset's side goes at once, whatever the client does.
                let _ = target.disconnect(Disconnect::ByApplication, "session ended by jitgate", "en").await;
                let _ = tokio::time::timeout(CUT_GRACE, &mut running).await;
                break reason;
            }
        }
    };
    let _ = target
        .disconnect(Disconnect::ByApplication, "session ended", "en")
        .await;
    // Whatever the client does, its connection ends with the session.
    kill();
    record(&recorder, |r| r.finish(Instant::now(), &reason));
    handle.end(reason, stats.snapshot(), svc.gw.clock_now());
    drop(admitted);
}

/// What the user reads when the session is cut: what ended it, who (for a revocation or a
/// completion) and why, in the words of whoever ended it.
pub fn cut_message(reason: &str, grant: &str, by: Option<&str>, note: Option<&str>) -> String {
    let by = by.map(|b| format!(" by {b}")).unwrap_or_default();
    let why = match reason {
        "grant_revoked" => format!("grant {grant} was revoked{by}"),
        "grant_completed" => format!("grant {grant} was completed{by}"),
        "grant_expired" | "expired" => format!("grant {grant} has expired"),
        "grant_context_changed" => format!(
            "grant {grant} was ended by a change of context (the subject, the asset or the policies changed)"
        ),
        "grant_revalidation_overdue" => format!(
            "grant {grant} ended: its standing exception was not re-validated in time"
        ),
        "key_retired" => "the key that signed the credential was retired".to_string(),
        "idle_timeout" => "the session was idle for too long".to_string(),
        "gateway_shutdown" => "the gateway is shutting down".to_string(),
        other => format!("the session was ended ({other})"),
    };
    // Only a grant's end carries a note; control characters would reach the user's terminal.
    let note = match (reason.starts_with("grant_"), note) {
        (true, Some(n)) if !n.trim().is_empty() => {
            let clean: String = n
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(200)
                .collect();
            format!(" ({clean})")
        }
        _ => String::new(),
    };
    format!("jitgate: {why}{note}; this session is closed.")
}

/// A channel of the session: its twin on the asset, and what it runs.
struct Chan {
    write: ChannelWriteHalf<client::Msg>,
    /// A shell, command or subsystem runs (a second one is refused); a forwarding is
    /// "started" from its opening.
    started: bool,
    /// A terminal was granted on it.
    pty: bool,
    /// Follows the channel's transfers once it starts `sftp`.
    sftp: SftpFollow,
}

/// The authenticated part of a connection.
struct Live {
    allow: SshAllow,
    grant_id: String,
    target: Arc<client::Handle<TargetHandler>>,
    toucher: Toucher,
    stats: Arc<Stats>,
    channels: HashMap<ChannelId, Chan>,
    session_channels: Arc<Mutex<Vec<ChannelId>>>,
    recorder: Recorder,
}

/// The russh handler of one connection.
pub struct Conn {
    svc: Arc<SshService>,
    peer: SocketAddr,
    session_id: String,
    opened_at: Timestamp,
    open_tx: Option<oneshot::Sender<Result<Opened, String>>>,
    live: Option<Live>,
    /// Refused for its grant: why (shown on the client's channels), and how many
    /// channels it opened to read it.
    refused: Option<(String, usize)>,
}

/// A refusal of a certificate that names a grant.
struct GrantRefusal {
    code: &'static str,
    message: String,
}

impl Conn {
    /// Everything after the certificate's own checks: the grant, the asset, the server's
    /// word, the asset's connection, the registry.
    async fn admit_session(
        &mut self,
        user: &str,
        claim: &UserCertClaim,
    ) -> Result<(), GrantRefusal> {
        let gw = Arc::clone(&self.svc.gw);
        let no = |code, message: String| GrantRefusal { code, message };
        let grant = claim.grant_id.as_str();
        if let Some(reason) = gw.revoked_reason(grant) {
            return Err(no(
                "grant_revoked",
                format!("grant {grant} has ended ({reason}); its certificate is refused. Request access again if the work is not finished"),
            ));
        }
        let Some(asset) = gw.asset(user) else {
            return Err(no(
                "asset_not_fronted",
                format!("this gateway does not front an asset {user:?}; log in as <asset>@gateway with the asset's id"),
            ));
        };
        if asset.endpoints.ssh.is_none() {
            return Err(no(
                "asset_not_ssh",
                format!("asset {} has no SSH endpoint", asset.id),
            ));
        }
        let status = gw
            .check_grant_online(GrantClaim {
                grant_id: grant,
                scope_digest: None,
                subject: &claim.subject,
            })
            .await
            .map_err(|(code, message)| no(code, message))?;
        // Within the offline grace the grant could not be confirmed; an SSH session needs
        // the server anyway (its scope, the asset's certificate).
        let Some(status) = status else {
            return Err(no(
                "server_unreachable",
                format!("the gateway cannot confirm grant {grant} with the server; SSH sessions need the server"),
            ));
        };
        let Some(scope) = status.scope.as_ref() else {
            return Err(no(
                "server_too_old",
                "the server did not send the grant's scope; upgrade the server".into(),
            ));
        };
        let allow = SshAllow::compile(&asset.id, scope.items());
        if allow.is_empty() {
            return Err(no(
                "asset_not_granted",
                format!("grant {grant} gives no SSH access on {}", asset.id),
            ));
        }
        let target = super::target::connect(
            &gw,
            &self.svc.known,
            &self.svc.state_dir,
            Arc::clone(&self.svc.client_config),
            grant,
            &asset,
        )
        .await
        .map_err(|(code, message)| no(code, message))?;
        let info = SessionInfo {
            session_id: self.session_id.clone(),
            grant_id: grant.to_string(),
            // Not a token key: an SSH session is cut by revocation, expiry and shutdown.
            kid: format!("ssh-user-ca:{}", claim.ca_fingerprint),
            expires_at: status.expires_at,
        };
        let mut handle = gw
            .open_session(info)
            .map_err(|(code, message)| no(code, message))?;
        let mut recorded = handle.started(
            self.opened_at,
            &SessionStartedDetail {
                subject: claim.subject.clone(),
                asset: asset.id.clone(),
                protocol: Some("ssh".into()),
                device: Some(target.address.clone()),
                peer: Some(self.peer.to_string()),
                token_id: Some(format!("ssh-cert:{}", claim.serial)),
                expires_at: Some(status.expires_at),
            },
        );
        if target.first_use && recorded.is_ok() {
            recorded = handle.record(
                "operation",
                gw.clock_now(),
                serde_json::json!({
                    "protocol": "ssh",
                    "operation": "host_key_pinned",
                    "target": target.host_key,
                    "allowed": true,
                    "reason": format!("first SSH connection to {}: its host key is pinned from now on (trust on first use)", asset.id),
                }),
            );
        }
        if target.auth == jitgate_core::inventory::SshTargetAuth::VaultedKey && recorded.is_ok() {
            // No certificate was issued for this login, so the server's log would not show
            // it: the evidence says which standing credential was used.
            recorded = handle.record(
                "operation",
                gw.clock_now(),
                serde_json::json!({
                    "protocol": "ssh",
                    "operation": "target_login",
                    "target": target.account,
                    "allowed": true,
                    "reason": format!("logged in to {} as {} with the key vaulted at this gateway (a standing key on the asset)", asset.id, target.account),
                }),
            );
        }
        if let Err(e) = recorded {
            // No evidence of the session: it ends before anything is relayed.
            let reason = e.to_string();
            handle.end(reason.clone(), SessionStats::default(), gw.clock_now());
            return Err(no("evidence_unavailable", reason));
        }
        let stats = Arc::new(Stats::default());
        let session_channels = Arc::new(Mutex::new(Vec::new()));
        let target_handle = Arc::new(target.handle);
        let recorder: Recorder = Arc::new(Mutex::new(super::record::recorder_for(
            &gw.recordings,
            &self.session_id,
            grant,
            &asset.id,
        )));
        self.live = Some(Live {
            allow,
            grant_id: grant.to_string(),
            target: Arc::clone(&target_handle),
            toucher: handle.toucher(),
            stats: Arc::clone(&stats),
            channels: HashMap::new(),
            session_channels: Arc::clone(&session_channels),
            recorder: Arc::clone(&recorder),
        });
        if let Some(tx) = self.open_tx.take() {
            let _ = tx.send(Ok(Opened {
                handle,
                stats,
                channels: session_channels,
                target: target_handle,
                recorder,
            }));
        }
        Ok(())
    }

    /// Record an operation (a channel request decided) under the session. `Err`: it is not
    /// in evidence, the request must be refused.
    fn operation(&self, op: &super::allow::SshOperation) -> Result<(), Unrecorded> {
        let Some(live) = &self.live else {
            return Ok(());
        };
        live.stats.operations.fetch_add(1, Ordering::Relaxed);
        if !op.allowed {
            live.stats.denied.fetch_add(1, Ordering::Relaxed);
        }
        self.svc.gw.events.record(
            "operation",
            self.svc.gw.clock_now(),
            Some(&live.grant_id),
            Some(&self.session_id),
            to_json(op),
        )
    }

    /// Decide `req`; record it (refusals always, allowances of what starts something).
    /// `Err(message)` for the user.
    fn decide(&self, req: &Request<'_>, record_allowed: bool) -> Result<(), String> {
        let Some(live) = &self.live else {
            return Err("not authenticated".into());
        };
        let op = live.allow.operation(req);
        if !op.allowed || record_allowed {
            // Recorded before the answer; not recorded, not allowed.
            self.operation(&op).map_err(|e| format!("jitgate: {e}"))?;
        }
        match op.reason {
            None => Ok(()),
            Some(r) => Err(format!("jitgate: refused: {r}")),
        }
    }

    /// Refuse a request on a channel: the reason on its stderr, then failure.
    fn refuse_on(session: &mut Session, channel: ChannelId, message: &str) {
        let _ = session.extended_data(channel, STDERR, format!("{message}\r\n"));
        let _ = session.channel_failure(channel);
    }

    /// Refuse a shell, command or subsystem: the channel ends at once with the reason on
    /// its stderr and exit status 1. (Answered as a started program that failed rather than
    /// with a channel failure: OpenSSH exits on a failed exec before it prints the stderr
    /// that came with it.) Its twin on the asset is closed; nothing ran there.
    async fn refuse_start(
        &mut self,
        session: &mut Session,
        channel: ChannelId,
        message: &str,
        status: u32,
    ) {
        let _ = session.channel_success(channel);
        let _ = session.extended_data(channel, STDERR, format!("{message}\r\n"));
        let _ = session.exit_status_request(channel, status);
        let _ = session.eof(channel);
        let _ = session.close(channel);
        if let Some(live) = self.live.as_mut() {
            if let Some(chan) = live.channels.remove(&channel) {
                let _ = chan.write.close().await;
            }
            live.session_channels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|c| *c != channel);
        }
    }

    /// A channel request that starts something on a session channel (shell, exec,
    /// subsystem): decided, then sent to the asset's twin channel.
    async fn start(
        &mut self,
        channel: ChannelId,
        req: Request<'_>,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        if let Some((message, _)) = self.refused.clone() {
            self.refuse_start(session, channel, &message, 255).await;
            return Ok(());
        }
        let already = self
            .live
            .as_ref()
            .and_then(|l| l.channels.get(&channel))
            .map(|c| c.started);
        match already {
            None => {
                let _ = session.channel_failure(channel);
                return Ok(());
            }
            Some(true) => {
                let op = super::allow::SshOperation {
                    protocol: "ssh",
                    operation: "request",
                    target: Some("second start on one channel".into()),
                    allowed: false,
                    reason: Some("a channel runs one shell, command or subsystem".into()),
                };
                // Refused whether or not it could be written (a failure is logged).
                let _ = self.operation(&op);
                Self::refuse_on(
                    session,
                    channel,
                    "jitgate: refused: a channel runs one shell, command or subsystem",
                );
                return Ok(());
            }
            Some(false) => {}
        }
        if let Err(message) = self.decide(&req, true) {
            self.refuse_start(session, channel, &message, 1).await;
            return Ok(());
        }
        let Some(live) = self.live.as_mut() else {
            return Ok(());
        };
        let Some(chan) = live.channels.get_mut(&channel) else {
            return Ok(());
        };
        chan.started = true;
        let sent = match req {
            Request::Shell => chan.write.request_shell(false).await,
            Request::Exec(cmd) => chan.write.exec(false, cmd.to_vec()).await,
            Request::Subsystem(name) => chan.write.request_subsystem(false, name).await,
            _ => Ok(()),
        };
        if sent.is_err() {
            let _ = session.channel_failure(channel);
            return Ok(());
        }
        if matches!(req, Request::Subsystem("sftp")) {
            chan.sftp.start();
        }
        let what = match req {
            Request::Exec(cmd) => Started::Exec(cmd),
            Request::Subsystem(name) => Started::Subsystem(name),
            _ => Started::Shell,
        };
        record(&live.recorder, |r| {
            r.started(Instant::now(), channel_no(channel), what)
        });
        let _ = session.channel_success(channel);
        Ok(())
    }

    /// Refuse a channel open with the reason, recorded.
    async fn refuse_open(&self, req: Request<'_>, reply: server::ChannelOpenHandle) {
        let message = match self.decide(&req, false) {
            Err(m) => m,
            Ok(()) => "jitgate: refused".into(),
        };
        reply
            .reject(ChannelOpenFailure::Other {
                code: 1, // SSH_OPEN_ADMINISTRATIVELY_PROHIBITED
                reason: message,
            })
            .await;
    }

    /// Open the asset's twin of a client channel and relay it.
    fn open_twin(
        &mut self,
        channel: ChannelId,
        twin: Result<Channel<client::Msg>, russh::Error>,
        client: server::Handle,
        is_session: bool,
    ) -> bool {
        let Some(live) = self.live.as_mut() else {
            return false;
        };
        let Ok(twin) = twin else { return false };
        let (read, write) = twin.split();
        let sftp = SftpFollow::new(
            Arc::clone(&self.svc.gw),
            &live.grant_id,
            &self.session_id,
            Arc::clone(&live.stats),
        );
        live.channels.insert(
            channel,
            Chan {
                write,
                started: !is_session,
                pty: false,
                sftp: sftp.clone(),
            },
        );
        if is_session {
            live.session_channels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(channel);
            record(&live.recorder, |r| {
                r.channel_opened(Instant::now(), channel_no(channel))
            });
        }
        // A session channel's output is recorded: it waits while the recordings spool is
        // full. Forwarded connections are not recorded and do not wait.
        let room = is_session.then(|| self.svc.gw.recordings.room());
        tokio::spawn(pump(
            read,
            client,
            channel,
            Arc::clone(&live.stats),
            live.toucher.clone(),
            Arc::clone(&live.recorder),
            sftp,
            room,
        ));
        true
    }

    fn too_many_channels(&self) -> bool {
        self.live
            .as_ref()
            .is_some_and(|l| l.channels.len() >= MAX_CHANNELS)
    }
}

/// The client's channel number, for the recorder.
fn channel_no(c: ChannelId) -> u32 {
    // ChannelId prints as its number; u32 is what SSH numbers channels with.
    c.to_string().parse().unwrap_or(0)
}

/// Asset → client for one channel, until either side closes it. With `room`, each message
/// is read from the asset only once the recordings spool has room (docs/gateway.md,
/// "Recordings"): until then the asset's data waits in its SSH connection, whose flow
/// control holds the asset back.
#[allow(
    clippy::too_many_arguments,
    reason = "one channel's parts, as the connection hands them over"
)]
async fn pump(
    mut read: russh::ChannelReadHalf,
    client: server::Handle,
    ch: ChannelId,
    stats: Arc<Stats>,
    toucher: Toucher,
    recorder: Recorder,
    sftp: SftpFollow,
    room: Option<crate::recording::deliver::Room>,
) {
    loop {
        if let Some(room) = &room {
            room.wait().await;
        }
        let Some(msg) = read.wait().await else { break };
        let ok = match msg {
            ChannelMsg::Data { data } => {
                stats
                    .bytes_out
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                toucher.touch();
                if !sftp.asset(&data) {
                    break;
                }
                record(&recorder, |r| {
                    r.output(Instant::now(), channel_no(ch), &data, false)
                });
                client.data(ch, data).await.is_ok()
            }
            ChannelMsg::ExtendedData { data, ext } => {
                stats
                    .bytes_out
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                toucher.touch();
                record(&recorder, |r| {
                    r.output(Instant::now(), channel_no(ch), &data, ext == STDERR)
                });
                client.extended_data(ch, ext, data).await.is_ok()
            }
            ChannelMsg::Eof => client.eof(ch).await.is_ok(),
            ChannelMsg::ExitStatus { exit_status } => {
                record(&recorder, |r| {
                    r.exit(Instant::now(), channel_no(ch), exit_status)
                });
                client.exit_status_request(ch, exit_status).await.is_ok()
            }
            ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                error_message,
                lang_tag,
            } => client
                .exit_signal_request(ch, signal_name, core_dumped, error_message, lang_tag)
                .await
                .is_ok(),
            ChannelMsg::Close => break,
            _ => true,
        };
        if !ok {
            break;
        }
    }
    sftp.finish();
    let _ = client.close(ch).await;
}

impl server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        _user: &str,
        _key: server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        // A plain key is no jitgate credential; clients offer every key they hold, so this
        // is not counted as a refusal.
        Ok(Auth::reject())
    }

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &Certificate,
    ) -> Result<Auth, Self::Error> {
        // One certificate decides the connection: after a session opened or a refusal,
        // nothing else is looked at.
        if self.live.is_some() || self.open_tx.is_none() {
            return Ok(Auth::reject());
        }
        let now = u64::try_from(self.svc.gw.clock_now().timestamp()).unwrap_or(0);
        let ca_keys = self.svc.gw.ssh_user_ca_keys();
        let claim = match check_user_certificate(certificate, &ca_keys, now) {
            Ok(c) => c,
            Err(CertRefusal { code, message }) => {
                // Not (provably) jitgate's: counted with the source's other refusals.
                let fp = certificate
                    .public_key()
                    .fingerprint(russh::keys::HashAlg::Sha256)
                    .to_string();
                self.svc.gw.pre_auth_refused(
                    self.peer,
                    code,
                    Some(&self.session_id),
                    &message,
                    Some(&fp),
                );
                return Ok(Auth::reject());
            }
        };
        match self.admit_session(user, &claim).await {
            Ok(()) => Ok(Auth::Accept),
            Err(GrantRefusal { code, message }) => {
                // A refusal: nothing is answered on its strength (a failure is logged).
                let _ = self.svc.gw.events.record(
                    "session.refused",
                    self.svc.gw.clock_now(),
                    Some(&claim.grant_id),
                    Some(&self.session_id),
                    to_json(&SessionRefusedDetail {
                        code: code.to_string(),
                        reason: message.clone(),
                        peer: Some(self.peer.to_string()),
                        token_fingerprint: Some(claim.key_fingerprint.clone()),
                    }),
                );
                // Completed, then ended with the reason (see the module note): no session.
                let message = format!("jitgate: {code}: {message}");
                match self.open_tx.take() {
                    Some(tx) => {
                        let _ = tx.send(Err(message.clone()));
                        self.refused = Some((message, 0));
                        Ok(Auth::Accept)
                    }
                    None => Ok(Auth::reject()),
                }
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: server::ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let id = channel.id();
        // The client side is driven by this handler's callbacks, not by the channel object.
        drop(channel);
        if let Some((_, opened)) = self.refused.as_mut() {
            // Opened only to carry the reason (see the module note); no twin on the asset.
            *opened += 1;
            if *opened <= MAX_CHANNELS {
                reply.accept().await;
            }
            return Ok(());
        }
        if self.too_many_channels() {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        let Some(target) = self.live.as_ref().map(|l| Arc::clone(&l.target)) else {
            return Ok(());
        };
        let twin = target.channel_open_session().await;
        if self.open_twin(id, twin, session.handle(), true) {
            reply.accept().await;
        } else {
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
        }
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        originator_address: &str,
        originator_port: u32,
        reply: server::ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let id = channel.id();
        drop(channel);
        if let Some((message, _)) = &self.refused {
            reply
                .reject(ChannelOpenFailure::Other {
                    code: 1,
                    reason: message.clone(),
                })
                .await;
            return Ok(());
        }
        let req = Request::DirectTcpip {
            host: host_to_connect,
            port: port_to_connect,
        };
        let destination = super::allow::destination(host_to_connect, port_to_connect);
        if self.decide(&req, true).is_err() {
            return {
                // Recorded by decide; the reason goes in the open failure.
                let message = self
                    .live
                    .as_ref()
                    .and_then(|l| l.allow.decide(&req).err())
                    .unwrap_or_default();
                reply
                    .reject(ChannelOpenFailure::Other {
                        code: 1,
                        reason: format!("jitgate: refused: {message}"),
                    })
                    .await;
                Ok(())
            };
        }
        if self.too_many_channels() {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        let Some(target) = self.live.as_ref().map(|l| Arc::clone(&l.target)) else {
            return Ok(());
        };
        // Allowed means it parsed: the asset is asked for the scope's canonical spelling.
        let Some(destination) = destination else {
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return Ok(());
        };
        let twin = target
            .channel_open_direct_tcpip(
                destination.host(),
                u32::from(destination.port()),
                originator_address,
                originator_port,
            )
            .await;
        if self.open_twin(id, twin, session.handle(), false) {
            reply.accept().await;
        } else {
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
        }
        Ok(())
    }

    async fn channel_open_x11(
        &mut self,
        _channel: Channel<Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_open(Request::X11, reply).await;
        Ok(())
    }

    async fn channel_open_forwarded_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _host_to_connect: &str,
        _port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_open(Request::OtherChannel("forwarded-tcpip"), reply)
            .await;
        Ok(())
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        _socket_path: &str,
        reply: server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse_open(
            Request::OtherChannel("direct-streamlocal@openssh.com"),
            reply,
        )
        .await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.refused.is_some() {
            // Answered yes (nothing is allocated: no channel has a twin on the asset), so a
            // client that insists on a terminal (`ssh -tt`) goes on to ask for its shell
            // and reads the refusal there instead of exiting on "PTY allocation failed".
            let _ = session.channel_success(channel);
            return Ok(());
        }
        if let Err(message) = self.decide(&Request::Pty, false) {
            Self::refuse_on(session, channel, &message);
            return Ok(());
        }
        let Some(live) = self.live.as_mut() else {
            return Ok(());
        };
        let Some(chan) = live.channels.get_mut(&channel) else {
            let _ = session.channel_failure(channel);
            return Ok(());
        };
        let sent = chan
            .write
            .request_pty(
                false, term, col_width, row_height, pix_width, pix_height, modes,
            )
            .await;
        if sent.is_ok() {
            chan.pty = true;
            record(&live.recorder, |r| {
                r.pty(
                    Instant::now(),
                    channel_no(channel),
                    term,
                    col_width,
                    row_height,
                )
            });
            let _ = session.channel_success(channel);
        } else {
            let _ = session.channel_failure(channel);
        }
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        pix_width: u32,
        pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Only on a channel that was granted a terminal; no reply (the client wants none).
        let Some(live) = self.live.as_mut() else {
            return Ok(());
        };
        if let Some(chan) = live.channels.get(&channel).filter(|c| c.pty) {
            let _ = chan
                .write
                .window_change(col_width, row_height, pix_width, pix_height)
                .await;
            record(&live.recorder, |r| {
                r.resize(Instant::now(), channel_no(channel), col_width, row_height)
            });
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start(channel, Request::Shell, session).await
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start(channel, Request::Exec(data), session).await
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start(channel, Request::Subsystem(name), session).await
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Err(message) = self.decide(&Request::X11, false) {
            Self::refuse_on(session, channel, &message);
        }
        Ok(())
    }

    async fn agent_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        if let Err(message) = self.decide(&Request::AgentForward, false) {
            let _ = session.extended_data(channel, STDERR, format!("{message}\r\n"));
        }
        Ok(false)
    }

    async fn env_request(
        &mut self,
        _channel: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Not passed on, not recorded: OpenSSH clients send LANG and LC_* by default, and
        // the asset's sshd would drop what its AcceptEnv does not name anyway.
        Ok(())
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        signal: russh::Sig,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(chan) = self.live.as_ref().and_then(|l| l.channels.get(&channel)) {
            let _ = chan.write.signal(signal).await;
        }
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let _ = self.decide(&Request::RemoteForward, false);
        Ok(false)
    }

    async fn streamlocal_forward(
        &mut self,
        _socket_path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let _ = self.decide(&Request::RemoteForward, false);
        Ok(false)
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(live) = self.live.as_ref() else {
            return Ok(());
        };
        // Nothing reaches the asset before its channel was allowed to start something.
        let Some(chan) = live.channels.get(&channel).filter(|c| c.started) else {
            return Ok(());
        };
        live.stats
            .bytes_in
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        live.toucher.touch();
        record(&live.recorder, |r| {
            r.input(Instant::now(), channel_no(channel), data)
        });
        if !chan.sftp.client(data) {
            // Not forwarded: a transfer the gateway cannot account for does not pass.
            let _ = chan.write.close().await;
            let _ = session.close(channel);
            return Ok(());
        }
        // Awaits the asset's window: a slow asset slows the client (bounded by WINDOW).
        let _ = chan.write.data_bytes(data.to_vec()).await;
        Ok(())
    }

    async fn extended_data(
        &mut self,
        channel: ChannelId,
        code: u32,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(live) = self.live.as_ref() else {
            return Ok(());
        };
        let Some(chan) = live.channels.get(&channel).filter(|c| c.started) else {
            return Ok(());
        };
        live.stats
            .bytes_in
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        live.toucher.touch();
        let _ = chan.write.extended_data_bytes(code, data.to_vec()).await;
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(chan) = self.live.as_ref().and_then(|l| l.channels.get(&channel)) {
            let _ = chan.write.eof().await;
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(live) = self.live.as_mut() {
            if let Some(chan) = live.channels.remove(&channel) {
                let _ = chan.write.close().await;
            }
            live.session_channels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|c| *c != channel);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::cut_message;

    #[test]
    fn the_cut_message_names_who_ended_the_grant_and_why() {
        assert_eq!(
            cut_message("grant_revoked", "grant-1", Some("sam"), Some("left site")),
            "jitgate: grant grant-1 was revoked by sam (left site); this session is closed."
        );
        assert_eq!(
            cut_message("grant_expired", "grant-1", None, None),
            "jitgate: grant grant-1 has expired; this session is closed."
        );
        // A note cannot smuggle terminal escapes to the user; other cuts carry no note.
        let m = cut_message("grant_revoked", "g", Some("sam"), Some("a\u{1b}[2Jb\nc"));
        assert!(!m.chars().any(char::is_control), "{m:?}");
        assert_eq!(
            cut_message("idle_timeout", "g", Some("sam"), Some("x")),
            "jitgate: the session was idle for too long; this session is closed."
        );
    }
}
