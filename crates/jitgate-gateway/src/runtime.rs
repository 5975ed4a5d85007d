//! The gateway process: announce itself to the server, keep the token keys and its assets
//! current, hold the control channel (revocations, key retirements), accept tunnels. The
//! [`Gateway`] holds what every protocol's sessions share: the live-session registry
//! ([`crate::live`], so a revocation, a key retirement or a shutdown can end them), the
//! ended grants (the persisted revocation list), admission and pre-authentication refusals
//! ([`crate::admission`], [`crate::refusals`]) and the online grant check
//! ([`crate::online`]).

use crate::admission::Admission;
use crate::config::GatewayConfig;
use crate::lanes::Lanes;
use crate::live::{LiveSessions, SessionHandle, SessionInfo};
use crate::refusals::PreAuthRefusals;
use crate::revocations::RevocationList;
use crate::server_api::{ApiError, ServerApi};
use crate::spool::EventLog;
use crate::wire::{GatewayHello, GatewaySetup};
use jitgate_core::{Asset, Timestamp};
use jitgate_credential::{Challenge, CredentialError, GrantClaims, NonceCache, Verifier};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// How often the gateway refreshes keys and assets from the server.
const REFRESH: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("the server refused this gateway: {0}")]
    Server(ApiError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// The gateway's clock, to the millisecond (what the evidence log stores).
pub fn now_millis() -> Timestamp {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

pub struct Gateway {
    pub id: String,
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub device_timeout: Duration,
    pub events: EventLog,
    /// Where session recordings' closed chunks go (`recording::deliver`).
    pub recordings: crate::recording::RecordingSink,
    /// The live sessions of every protocol.
    pub live: Arc<LiveSessions>,
    /// How long an authenticated session may go without traffic.
    pub idle_timeout: Duration,
    pub(crate) admission: Arc<Admission>,
    pub(crate) api: ServerApi,
    pub(crate) offline_grace: Duration,
    pub(crate) verifier: RwLock<Verifier>,
    assets: RwLock<HashMap<String, Asset>>,
    nonces: Mutex<NonceCache>,
    /// When the server last answered (for the offline grace).
    pub(crate) last_contact: Mutex<Option<std::time::Instant>>,
    /// What the gateway announces (address, certificate fingerprint) on every refresh.
    hello: GatewayHello,
    last_on_demand: Mutex<Option<std::time::Instant>>,
    /// Ended grants whose credentials are refused here (persisted).
    pub(crate) revoked: Mutex<RevocationList>,
    /// Whether the control channel to the server is up (for status and tests).
    pub control_connected: std::sync::atomic::AtomicBool,
    /// Pre-authentication refusals of the current window.
    pub(crate) refusals: Mutex<PreAuthRefusals>,
    /// Keys the server retired in an emergency while this process runs: refused even if a
    /// key list fetched later does not show it yet (the list is fetched every 30 s).
    pub(crate) retired_kids: Mutex<HashSet<String>>,
    /// The SSH user CA keys of the setup: user certificates they signed are the SSH
    /// credential ([`crate::ssh`]).
    ssh_user_ca_keys: RwLock<Vec<russh::keys::ssh_key::public::KeyData>>,
}

impl Gateway {
    pub fn clock_now(&self) -> Timestamp {
        now_millis()
    }

    pub fn verify_token(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<GrantClaims, CredentialError> {
        self.verifier
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .verify(token, &self.id, now)
    }

    pub fn asset(&self, id: &str) -> Option<Asset> {
        self.assets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    pub fn issue_challenge(&self, now: Timestamp) -> Challenge {
        self.nonces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .issue(now)
    }

    pub fn consume_challenge(
        &self,
        nonce: &[u8; 32],
        now: Timestamp,
    ) -> Result<(), CredentialError> {
        self.nonces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .consume(nonce, now)
    }

    /// The SSH user CA keys the server gave at the last refresh.
    pub fn ssh_user_ca_keys(&self) -> Vec<russh::keys::ssh_key::public::KeyData> {
        self.ssh_user_ca_keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn live_sessions_of(&self, grant: &str) -> usize {
        self.live.count_of_grant(grant)
    }

    /// Join a session to the registry, bounded by its credential's expiry and the idle
    /// timeout. A revocation (or key retirement) that arrived between the session's checks
    /// and now found no session to cut, so both are looked at again once it is registered:
    /// a late one refuses the session (code, message) and leaves no trace of it.
    pub fn open_session(&self, info: SessionInfo) -> Result<SessionHandle, (&'static str, String)> {
        let until_expiry = (info.expires_at - self.clock_now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        let (grant, kid) = (info.grant_id.clone(), info.kid.clone());
        let handle = self.live.join(info, until_expiry, self.idle_timeout);
        if let Some(reason) = self.revoked_reason(&grant) {
            return Err((
                "grant_revoked",
                format!("grant {grant} has ended ({reason})"),
            ));
        }
        if self.key_is_retired(&kid) {
            return Err((
                "key_retired",
                format!(
                    "the token was signed with key {kid}, which has been retired; request a new token"
                ),
            ));
        }
        Ok(handle)
    }

    /// Live sessions whose token `kid` signed.
    pub fn live_sessions_of_key(&self, kid: &str) -> usize {
        self.live.count_of_key(kid)
    }

    /// End every live session of a grant (revocation); returns how many were ended.
    pub fn end_grant_sessions(&self, grant: &str, reason: &str) -> usize {
        self.live.cut_grant(grant, reason)
    }

    pub fn live_sessions(&self) -> usize {
        self.live.count()
    }

    /// Refetch keys for an unknown key id, at most once every 5 s, so forged tokens cannot
    /// make the gateway hammer the server. Returns whether a refresh happened.
    pub async fn refresh_if_stale(&self) -> bool {
        {
            let mut last = self
                .last_on_demand
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(5)) {
                return false;
            }
            *last = Some(std::time::Instant::now());
        }
        self.refresh_now().await.is_ok()
    }

    /// Fetch keys and assets from the server now (also done every 30 s).
    pub async fn refresh_now(&self) -> Result<(), GatewayError> {
        let setup = self
            .api
            .hello(&self.hello)
            .await
            .map_err(GatewayError::Server)?;
        self.apply_setup(&setup)
    }

    fn apply_setup(&self, setup: &GatewaySetup) -> Result<(), GatewayError> {
        let mut verifier = Verifier::new(&setup.token_keys)
            .map_err(|e| GatewayError::Other(format!("token keys from the server: {e}")))?;
        // A retirement pushed over the control channel wins over a list that may have been
        // read at the server just before it.
        for kid in self
            .retired_kids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            verifier.retire(kid);
        }
        *self.verifier.write().unwrap_or_else(|p| p.into_inner()) = verifier;
        let assets = setup
            .assets
            .iter()
            .map(|a| (a.id.clone(), a.clone()))
            .collect();
        *self.assets.write().unwrap_or_else(|p| p.into_inner()) = assets;
        let (ca_keys, bad) = crate::ssh::cert::parse_ca_keys(&setup.ssh_user_ca_keys);
        for b in bad {
            tracing::error!(key = %b, "an SSH user CA key from the server does not parse; ignored");
        }
        *self
            .ssh_user_ca_keys
            .write()
            .unwrap_or_else(|p| p.into_inner()) = ca_keys;
        self.touch();
        Ok(())
    }
}

/// A started gateway: its address and a stop switch (for tests and `jitgate gateway`).
pub struct RunningGateway {
    pub addr: std::net::SocketAddr,
    /// The SSH listener's address (`ssh_listen`), when there is one.
    pub ssh_addr: Option<std::net::SocketAddr>,
    pub gateway: Arc<Gateway>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The threads tunnel sessions run on; kept until [`RunningGateway::stop`] has let the
    /// sessions record their end (stopping the lanes would drop them unrecorded).
    lanes: Arc<Lanes>,
}

impl RunningGateway {
    /// Stop: no new tunnels, live sessions end (recording `session.ended`), and every event
    /// and recording chunk not yet delivered is on disk before this returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.gateway.live.cut_all("gateway_shutdown");
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
        // Let the sessions record their end, then make sure nothing exists only in memory.
        for _ in 0..50 {
            if self.gateway.live_sessions() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The refusals counted so far would be lost with the process.
        self.gateway.flush_pre_auth_refusals();
        if !self
            .gateway
            .events
            .flush_to_disk(Duration::from_secs(10))
            .await
        {
            tracing::error!("could not confirm that every event reached the spool file");
        }
        if !self
            .gateway
            .recordings
            .flush_to_disk(Duration::from_secs(10))
            .await
        {
            tracing::error!("could not confirm that every recording chunk reached the spool");
        }
        // Only now: what still ran on a lane would be dropped with it.
        drop(self.lanes);
    }
}

/// Is the server URL's host a loopback address (or `localhost`)?
fn server_is_loopback(server: &str) -> bool {
    let Some(host) = reqwest::Url::parse(server)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
    else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Start: TLS material, announce to the server (which must answer: a gateway without keys
/// cannot verify anything), spool delivery, accept loop, periodic refresh.
pub async fn start(config: GatewayConfig) -> Result<RunningGateway, GatewayError> {
    config.validate()?;
    let key = config.api_key()?;
    let trust = config.server_trust()?;
    if trust.is_none() && !server_is_loopback(&config.server) {
        tracing::warn!(
            server = %config.server,
            "the server is plain http:// off loopback: the API key, revocations and token keys \
             cross the network in clear; use the server's https:// URL with server_fingerprint \
             or server_ca_file"
        );
    }
    crate::private::state_dir(&config.state_dir).map_err(|e| {
        GatewayError::Other(format!("state_dir {}: {e}", config.state_dir.display()))
    })?;
    // Over TLS: enrol (or renew) the client certificate first; every call presents it.
    let api = crate::server_api::connect(
        &config.server,
        &config.failover_servers,
        &key,
        trust.as_ref(),
        &config.state_dir,
        "jitgate-gateway",
    )
    .await
    .map_err(GatewayError::Server)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| GatewayError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| GatewayError::Other(e.to_string()))?;
    let advertise = match &config.advertise {
        Some(a) => a.clone(),
        None => addr.to_string(),
    };
    let (certs, tls_key) = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => crate::tls::load_pem(c, k)?,
        _ => {
            let host = advertise
                .rsplit_once(':')
                .map(|(h, _)| h.to_string())
                .unwrap_or_else(|| "localhost".into());
            crate::tls::load_or_create_self_signed(
                &config.state_dir,
                vec![host, "localhost".into()],
            )?
        }
    };
    // Files written before (or by the TLS set-up just now) become owner-only too.
    crate::private::state_dir(&config.state_dir).map_err(|e| {
        GatewayError::Other(format!("state_dir {}: {e}", config.state_dir.display()))
    })?;
    let fingerprint = certs
        .first()
        .map(crate::tls::fingerprint)
        .ok_or_else(|| GatewayError::Other("no certificate".into()))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(crate::tls::server_config(certs, tls_key)?);
    // The SSH listener, when configured: bound now so that its address is announced.
    let ssh_listener = match config.ssh_listen {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .map_err(|source| GatewayError::Bind { addr: at, source })?,
        ),
        None => None,
    };
    let ssh_addr = match &ssh_listener {
        Some(l) => Some(
            l.local_addr()
                .map_err(|e| GatewayError::Other(e.to_string()))?,
        ),
        None => None,
    };
    let ssh_host_key = match ssh_addr {
        Some(_) => Some(
            crate::ssh::keys::load_or_create_host_key(&config.state_dir)
                .and_then(|k| {
                    k.public_key()
                        .to_openssh()
                        .map_err(|e| format!("encoding the SSH host key: {e}"))
                })
                .map_err(GatewayError::Other)?,
        ),
        None => None,
    };
    let hello = GatewayHello {
        address: advertise.clone(),
        tls_fingerprint: fingerprint,
        ssh_address: ssh_addr.map(|a| {
            config
                .ssh_advertise
                .clone()
                .unwrap_or_else(|| a.to_string())
        }),
        ssh_host_key,
    };
    // The revocation list is read before anything is accepted: a token revoked before a
    // restart stays refused even if the server cannot be reached.
    let revoked = RevocationList::load(&config.state_dir.join("revoked.jsonl"))
        .map_err(GatewayError::Other)?;
    api.control_url().map_err(GatewayError::Other)?;
    let setup = api.hello(&hello).await.map_err(GatewayError::Server)?;
    let (events, spool_task) = crate::spool::start(
        api.clone(),
        &config.state_dir,
        setup.delivered_seq,
        config.event_sync()?,
    )
    .map_err(|e| GatewayError::Other(format!("event write-ahead file in state_dir: {e}")))?;
    // Sessions the previous process held when it died: ended, before anything is accepted.
    let journal = crate::live_journal::Journal::open(&config.state_dir.join("live-sessions"))
        .map_err(|e| GatewayError::Other(format!("live-sessions journal: {e}")))?;
    journal.close_orphans(&events, chrono::Utc::now());
    let (recordings, recordings_task) = crate::recording::deliver::start(
        api.clone(),
        &config.state_dir,
        events.clone(),
        config.recordings.spool_limits(),
    )
    .map_err(|e| GatewayError::Other(format!("recordings spool: {e}")))?;
    let gateway = Arc::new(Gateway {
        id: setup.gateway_id.clone(),
        acceptor,
        device_timeout: config.device_timeout()?,
        live: Arc::new(LiveSessions::new(events.clone()).with_journal(journal)),
        idle_timeout: config
            .client_limits
            .idle_timeout()
            .map_err(GatewayError::Other)?,
        admission: Admission::new(config.client_limits.max_connections),
        events,
        recordings,
        api: api.clone(),
        offline_grace: config.offline_grace()?,
        verifier: RwLock::new(Verifier::new(&[]).map_err(|e| GatewayError::Other(e.to_string()))?),
        assets: RwLock::new(HashMap::new()),
        nonces: Mutex::new(NonceCache::new(chrono::Duration::seconds(30), 100_000)),
        last_contact: Mutex::new(None),
        hello: hello.clone(),
        last_on_demand: Mutex::new(None),
        revoked: Mutex::new(revoked),
        control_connected: std::sync::atomic::AtomicBool::new(false),
        refusals: Mutex::new(PreAuthRefusals::default()),
        retired_kids: Mutex::new(HashSet::new()),
        ssh_user_ca_keys: RwLock::new(Vec::new()),
    });
    gateway.apply_setup(&setup)?;
    gateway.touch();
    tracing::info!(gateway = %gateway.id, %addr, assets = setup.assets.len(), "gateway listening");
    let (stop, stop_rx) = watch::channel(false);

    let lanes = Arc::new(
        Lanes::per_cpu()
            .map_err(|e| GatewayError::Other(format!("cannot start the relay threads: {e}")))?,
    );
    tracing::debug!(lanes = lanes.len(), "relay lanes started");
    let accept_lanes = Arc::clone(&lanes);
    let accept_gw = gateway.clone();
    let mut accept_stop = stop_rx.clone();
    let accept = tokio::spawn(async move {
        loop {
            tokio::select! {
                conn = listener.accept() => match conn {
                    Ok((tcp, peer)) => accept_lanes.serve(accept_gw.clone(), tcp, peer),
                    Err(e) => { tracing::warn!(error = %e, "accept failed"); tokio::time::sleep(Duration::from_millis(50)).await; }
                },
                _ = accept_stop.changed() => return,
            }
        }
    });
    let mut tasks = Vec::new();
    if let Some(listener) = ssh_listener {
        let service = crate::ssh::SshService::new(gateway.clone(), &config.state_dir)
            .map_err(GatewayError::Other)?;
        tracing::info!(addr = ?ssh_addr, host_key = %service.host_key_fingerprint, "SSH listening");
        tasks.push(tokio::spawn(
            Arc::new(service).run(listener, stop_rx.clone()),
        ));
    }
    let control = tokio::spawn(crate::control::run(
        gateway.clone(),
        key.clone(),
        api.tls(),
        stop_rx.clone(),
    ));
    let refresh_gw = gateway.clone();
    let mut refresh_stop = stop_rx;
    let refresh = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(REFRESH) => {}
                _ = refresh_stop.changed() => return,
            }
            match api.hello(&hello).await {
                Ok(setup) => {
                    if let Err(e) = refresh_gw.apply_setup(&setup) {
                        tracing::error!(error = %e, "cannot apply the server's setup");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "server unreachable; keeping the last keys and assets")
                }
            }
        }
    });
    // Pre-authentication refusals: one summary per window, on the gateway's clock.
    let refusals_gw = gateway.clone();
    let mut refusals_stop = stop.subscribe();
    let refusals = tokio::spawn(async move {
        let mut every = tokio::time::interval(crate::refusals::WINDOW);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                _ = every.tick() => { refusals_gw.flush_pre_auth_refusals(); }
                _ = refusals_stop.changed() => return,
            }
        }
    });
    if let Some(at) = config.metrics_listen {
        let listener = tokio::net::TcpListener::bind(at)
            .await
            .map_err(|source| GatewayError::Bind { addr: at, source })?;
        tracing::info!(addr = %at, "metrics listening");
        tasks.push(tokio::spawn(crate::metrics::serve(
            gateway.clone(),
            listener,
            stop.subscribe(),
        )));
    }
    // Fail closed on silence: no server node heard from for `cut_after_silence`, live
    // sessions are cut (new ones are refused already, after `offline_grace`).
    let cut_after = config.cut_after_silence()?;
    let silence_gw = gateway.clone();
    let mut silence_stop = stop.subscribe();
    let silence = tokio::spawn(async move {
        if cut_after.is_zero() {
            return;
        }
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => { silence_gw.cut_if_silent(cut_after); }
                _ = silence_stop.changed() => return,
            }
        }
    });
    // The spool task is not stopped with the rest: it keeps delivering (or spooling to disk)
    // what sessions recorded until the process ends.
    drop(spool_task);
    drop(recordings_task);
    tasks.extend([accept, refresh, control, refusals, silence]);
    Ok(RunningGateway {
        addr,
        ssh_addr,
        gateway,
        stop,
        tasks,
        lanes,
    })
}
