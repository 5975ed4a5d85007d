//! The gateway process: announce itself to the server, keep the token keys and its assets
//! current, hold the control channel (revocations, key retirements), accept tunnels, and
//! keep a registry of live sessions (so a revocation, a key retirement or a shutdown can end
//! them), of ended grants (the persisted revocation list) and of pre-authentication
//! refusals (counted per address, summarised once a minute: `crate::refusals`).

use crate::config::GatewayConfig;
use crate::refusals::{Disposition, PreAuthRefusals};
use crate::revocations::RevocationList;
use crate::server_api::{ApiError, ServerApi};
use crate::spool::EventLog;
use crate::wire::{GatewayHello, GatewaySetup, Revocation, RevocationAck, SessionClosed};
use jitgate_core::{Asset, GrantState, Timestamp};
use jitgate_credential::{Challenge, CredentialError, GrantClaims, NonceCache, Verifier};
use serde_json::json;
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

/// A live session's entry in the registry.
pub struct SessionHandle {
    pub grant_id: String,
    /// The key that signed the session's token.
    pub kid: String,
    kill: watch::Sender<String>,
}

pub struct Gateway {
    pub id: String,
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub device_timeout: Duration,
    pub events: EventLog,
    api: ServerApi,
    offline_grace: Duration,
    verifier: RwLock<Verifier>,
    assets: RwLock<HashMap<String, Asset>>,
    nonces: Mutex<NonceCache>,
    sessions: Mutex<HashMap<String, SessionHandle>>,
    /// When the server last answered (for the offline grace).
    last_contact: Mutex<Option<std::time::Instant>>,
    /// What the gateway announces (address, certificate fingerprint) on every refresh.
    hello: GatewayHello,
    last_on_demand: Mutex<Option<std::time::Instant>>,
    /// Ended grants whose credentials are refused here (persisted).
    revoked: Mutex<RevocationList>,
    /// Sessions closed under each grant, with the grant's expiry (for acknowledgements).
    closed: Mutex<HashMap<String, (Timestamp, Vec<SessionClosed>)>>,
    /// Whether the control channel to the server is up (for status and tests).
    pub control_connected: std::sync::atomic::AtomicBool,
    /// Pre-authentication refusals of the current window.
    refusals: Mutex<PreAuthRefusals>,
    /// Keys the server retired in an emergency while this process runs: refused even if a
    /// key list fetched later does not show it yet (the list is fetched every 30 s).
    retired_kids: Mutex<HashSet<String>>,
}

impl Gateway {
    pub fn clock_now(&self) -> Timestamp {
        let now = chrono::Utc::now();
        chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
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

    /// The online check at session start: the grant must still be active at the server, and
    /// the token must carry the grant's own scope digest and subject (a token whose claims
    /// were signed for another scope or person is refused, even with a valid signature).
    /// Unreachable server: refuse (fail closed), unless within the configured offline grace
    /// (then only the token itself is checked).
    pub async fn check_grant_online(
        &self,
        claims: &GrantClaims,
    ) -> Result<(), (&'static str, String)> {
        let grant = claims.grant_id.as_str();
        match self.api.grant_status(grant).await {
            Ok(s) if s.scope_digest != claims.scope_digest => {
                self.touch();
                Err((
                    "scope_mismatch",
                    format!(
                        "the token's scope digest {} is not grant {grant}'s ({}): the token does not carry the scope that was approved; request a new token",
                        claims.scope_digest, s.scope_digest
                    ),
                ))
            }
            Ok(s) if s.subject != claims.subject => {
                self.touch();
                Err((
                    "subject_mismatch",
                    format!(
                        "the token is for {}, but grant {grant} is for {}; only the grant's subject can use it",
                        claims.subject, s.subject
                    ),
                ))
            }
            Ok(s) if s.state == GrantState::Active => {
                self.touch();
                Ok(())
            }
            Ok(s) => {
                self.touch();
                Err((
                    "grant_not_active",
                    format!("grant {grant} is {} at the server", s.state.as_str()),
                ))
            }
            Err(ApiError::Refused { status: 404, .. }) => Err((
                "grant_unknown",
                format!("the server does not know grant {grant} for this gateway"),
            )),
            Err(e) => {
                let within_grace = self
                    .last_contact
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_some_and(|t| {
                        !self.offline_grace.is_zero() && t.elapsed() <= self.offline_grace
                    });
                if within_grace {
                    tracing::warn!(%grant, error = %e, "server unreachable; admitting within the offline grace");
                    Ok(())
                } else {
                    Err(("server_unreachable", format!("the gateway cannot confirm grant {grant} with the server ({e}); new sessions are refused until it can")))
                }
            }
        }
    }

    fn touch(&self) {
        *self.last_contact.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(std::time::Instant::now());
    }

    /// Has this grant ended (its credential is refused here)? Returns the reason.
    pub fn revoked_reason(&self, grant: &str) -> Option<String> {
        self.revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_revoked(grant)
            .map(|e| e.reason.clone())
    }

    /// Apply a revocation from the server: persist it in the revocation list (so the
    /// credential stays refused across restarts), end every live session of the grant, wait
    /// until they are gone, and say what was closed. Idempotent.
    pub async fn apply_revocation(&self, r: &Revocation) -> Result<RevocationAck, String> {
        let now = self.clock_now();
        // In memory first (new handshakes refuse at once), cut the sessions, then write the
        // list to disk: the cut does not wait for an fsync.
        let (revoked_at, append) = self
            .revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(r, now);
        let ended = self.end_grant_sessions(&r.grant_id, &format!("grant_{}", r.reason));
        if let Some(append) = append {
            tokio::task::spawn_blocking(move || append.write())
                .await
                .map_err(|e| e.to_string())??;
        }
        if ended > 0 {
            tracing::info!(grant = %r.grant_id, sessions = ended, reason = %r.reason, "grant ended: sessions cut");
        }
        // Sessions leave the registry as soon as their loop sees the signal (milliseconds).
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        let mut live = self.live_sessions_of(&r.grant_id);
        while live > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
            live = self.live_sessions_of(&r.grant_id);
        }
        let sessions = self
            .closed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&r.grant_id)
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        Ok(RevocationAck {
            grant_id: r.grant_id.clone(),
            live_sessions: live,
            sessions,
            revoked_at,
        })
    }

    pub fn live_sessions_of(&self, grant: &str) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|h| h.grant_id == grant)
            .count()
    }

    /// Add a live session; the receiver yields the reason when it must end.
    pub fn register(&self, session: &str, grant: &str, kid: &str) -> watch::Receiver<String> {
        let (tx, rx) = watch::channel(String::new());
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                session.to_string(),
                SessionHandle {
                    grant_id: grant.to_string(),
                    kid: kid.to_string(),
                    kill: tx,
                },
            );
        rx
    }

    /// The server retired token-signing key `kid` now: refuse its tokens from this instant
    /// (whatever key list arrives later) and end every live session opened with one.
    /// Returns how many sessions were cut. Idempotent.
    pub fn retire_key(&self, kid: &str) -> usize {
        self.retired_kids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kid.to_string());
        self.verifier
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retire(kid);
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let mut n = 0;
        for handle in sessions.values().filter(|h| h.kid == kid) {
            let _ = handle.kill.send("key_retired".to_string());
            n += 1;
        }
        if n > 0 {
            tracing::warn!(%kid, sessions = n, "token-signing key retired: sessions cut");
        }
        n
    }

    /// Was `kid` retired while this gateway runs?
    pub fn key_is_retired(&self, kid: &str) -> bool {
        self.retired_kids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(kid)
    }

    /// Live sessions whose token `kid` signed.
    pub fn live_sessions_of_key(&self, kid: &str) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|h| h.kid == kid)
            .count()
    }

    /// Should a new connection from `ip` be closed before the TLS handshake?
    pub fn pre_auth_throttled(&self, ip: std::net::IpAddr) -> bool {
        self.refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .throttled(ip)
    }

    /// Count a refusal that happened before the token was accepted; record it as an event
    /// of its own only within the per-address allowance (see `crate::refusals`).
    pub fn pre_auth_refused(
        &self,
        peer: std::net::SocketAddr,
        code: &'static str,
        session: Option<&str>,
        message: &str,
        token_fingerprint: Option<&str>,
    ) {
        let now = self.clock_now();
        let disposition = self
            .refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .note(peer.ip(), code, now);
        if disposition == Disposition::Detailed {
            // The message is bounded: it comes from our own errors, which quote at most a
            // printable, truncated key id of the client's.
            self.events.record(
                "session.refused",
                now,
                None,
                session,
                json!({"code": code, "reason": message, "peer": peer.to_string(), "token_fingerprint": token_fingerprint, "pre_auth": true}),
            );
        }
    }

    /// Close the current window of pre-authentication refusals now and record its summary
    /// event (if some refusals were not recorded in detail). Called once a minute by the
    /// runtime and at shutdown; public so tests can close a window without waiting for it.
    /// Returns whether a summary was recorded.
    pub fn flush_pre_auth_refusals(&self) -> bool {
        let now = self.clock_now();
        let summary = self
            .refusals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .close_window(now);
        match summary {
            Some(data) => {
                self.events.record("session.refused", now, None, None, data);
                true
            }
            None => false,
        }
    }

    /// Remove a session from the registry; `closed` (for a session that ran) is kept for
    /// the grant's acknowledgements until the grant's credential expires.
    pub fn unregister(&self, session: &str, closed: Option<(Timestamp, SessionClosed)>) {
        if let Some((expires_at, record)) = closed {
            let grant = self
                .sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(session)
                .map(|h| h.grant_id.clone());
            if let Some(grant) = grant {
                let mut map = self.closed.lock().unwrap_or_else(|p| p.into_inner());
                let horizon = self.clock_now() - chrono::Duration::hours(1);
                map.retain(|_, (exp, _)| *exp > horizon);
                map.entry(grant)
                    .or_insert_with(|| (expires_at, Vec::new()))
                    .1
                    .push(record);
            }
        }
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session);
    }

    /// End every live session of a grant (revocation); returns how many were ended.
    pub fn end_grant_sessions(&self, grant: &str, reason: &str) -> usize {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let mut n = 0;
        for handle in sessions.values().filter(|h| h.grant_id == grant) {
            let _ = handle.kill.send(reason.to_string());
            n += 1;
        }
        n
    }

    pub fn live_sessions(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
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
        self.touch();
        Ok(())
    }
}

/// A started gateway: its address and a stop switch (for tests and `jitgate gateway`).
pub struct RunningGateway {
    pub addr: std::net::SocketAddr,
    pub gateway: Arc<Gateway>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningGateway {
    /// Stop: no new tunnels, live sessions end (recording `session.ended`), and every event
    /// not yet delivered is written to the spool file before this returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for s in self
            .gateway
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            let _ = s.kill.send("gateway_shutdown".into());
        }
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
    let hello = GatewayHello {
        address: advertise.clone(),
        tls_fingerprint: fingerprint,
    };
    // The revocation list is read before anything is accepted: a token revoked before a
    // restart stays refused even if the server cannot be reached.
    let revoked = RevocationList::load(&config.state_dir.join("revoked.jsonl"))
        .map_err(GatewayError::Other)?;
    let control_url = api.control_url().map_err(GatewayError::Other)?;
    let setup = api.hello(&hello).await.map_err(GatewayError::Server)?;
    let (events, spool_task) = crate::spool::start(
        api.clone(),
        config.state_dir.join("events.spool"),
        setup.delivered_seq,
    )
    .map_err(|e| GatewayError::Other(format!("spool: {e}")))?;
    let gateway = Arc::new(Gateway {
        id: setup.gateway_id.clone(),
        acceptor,
        device_timeout: config.device_timeout()?,
        events,
        api: api.clone(),
        offline_grace: config.offline_grace()?,
        verifier: RwLock::new(Verifier::new(&[]).map_err(|e| GatewayError::Other(e.to_string()))?),
        assets: RwLock::new(HashMap::new()),
        nonces: Mutex::new(NonceCache::new(chrono::Duration::seconds(30), 100_000)),
        sessions: Mutex::new(HashMap::new()),
        last_contact: Mutex::new(None),
        hello: hello.clone(),
        last_on_demand: Mutex::new(None),
        revoked: Mutex::new(revoked),
        closed: Mutex::new(HashMap::new()),
        control_connected: std::sync::atomic::AtomicBool::new(false),
        refusals: Mutex::new(PreAuthRefusals::default()),
        retired_kids: Mutex::new(HashSet::new()),
    });
    gateway.apply_setup(&setup)?;
    tracing::info!(gateway = %gateway.id, %addr, assets = setup.assets.len(), "gateway listening");
    let (stop, stop_rx) = watch::channel(false);

    let accept_gw = gateway.clone();
    let mut accept_stop = stop_rx.clone();
    let accept = tokio::spawn(async move {
        loop {
            tokio::select! {
                conn = listener.accept() => match conn {
                    Ok((tcp, peer)) => { tokio::spawn(crate::session::serve(accept_gw.clone(), tcp, peer)); }
                    Err(e) => { tracing::warn!(error = %e, "accept failed"); tokio::time::sleep(Duration::from_millis(50)).await; }
                },
                _ = accept_stop.changed() => return,
            }
        }
    });
    let control = tokio::spawn(crate::control::run(
        gateway.clone(),
        control_url,
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
    // The spool task is not stopped with the rest: it keeps delivering (or spooling to disk)
    // what sessions recorded until the process ends.
    drop(spool_task);
    Ok(RunningGateway {
        addr,
        gateway,
        stop,
        tasks: vec![accept, refresh, control, refusals],
    })
}
