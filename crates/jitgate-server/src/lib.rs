//! # jitgate-server
//!
//! The HTTP API in front of the lifecycle, and the scheduler that ends access on time.
//!
//! ## Layout, bottom layer first
//!
//! A module imports only modules of its own or lower layers; `tests/it/layers.rs` checks
//! that the imports have no cycle and that nothing below the HTTP layer uses axum.
//!
//! 1. Foundations, importing no other part of the server:
//!    - [`config`]  — the server's TOML configuration, `JITGATE_*` overrides, validation,
//!      including the `[evidence]`, `[[siem]]`, `[console]` and `[tls]` sections.
//!    - [`error`]   — [`error::ServerError`]: every crate's errors mapped to the one code
//!      table (the HTTP status and JSON body are made in [`api::response`]).
//!    - [`views`]   — the JSON bodies of the API, shared with the CLI (`api::types`).
//!    - [`ids`]     — ids of the things the server creates.
//!    - [`files`]   — owner-only files and directories for secrets in the data directory.
//!    - [`paging`]  — pages of lists: keyset cursors, and filling a page while the
//!      visibility rules drop rows (neither a short page nor a cursor reveals hidden rows).
//! 2. Handles the state holds, each knowing nothing of the rest: [`control`] (connected
//!    gateways, revocations out, acknowledgements in), `evidence::log` (evidence key, log
//!    id, Merkle tree), `notify::webhooks` (the webhooks in force), [`throttle`] (the
//!    bounded password-hashing pool), [`secrets`] (the key TOTP secrets are stored under),
//!    [`gateway_ca`] (the CA of gateways' client certificates, and their records),
//!    [`ssh_ca`] (the SSH user and host-access CAs: key file, signing what the core decided).
//! 3. [`state`] — [`state::AppState`]: store, clock, policy set in force, those handles.
//! 4. Who is calling and what they may see:
//!    - [`auth`]       — passwords (argon2id), TOTP, API keys, session tokens, [`auth::Caller`].
//!    - [`gateway_auth`] — gateways' client certificates checked on every call, enrolment,
//!      renewal and reset (`jitgate_core::gateway_enrolment`).
//!    - [`login`]      — sign-in, step-up codes and password changes under the core's
//!      backoff and lockout rules (`jitgate_core::lockout`).
//!    - [`passkeys`]   — passkeys (WebAuthn, `webauthn-rs`): enrolment, removal, and the
//!      step-up ceremony bound to one request (`jitgate_core::passkey`).
//!    - [`sso`] — OIDC sign-in for people: the authorization code flow with PKCE against
//!      `[[sso.providers]]` for the console and the CLI (`jitgate_core::sso` decides).
//!    - [`federation`] — workload identity federation: platform JWTs verified against
//!      their issuers' JWKS (`federation::jwks`, a handle the state holds) and exchanged
//!      for a session (`jitgate_core::federation`).
//!    - [`visibility`] — who may see a request (the core's access table over loaded facts).
//!    - [`policy`]     — loading the Cedar policy set and taking decisions.
//! 5. Carrying out what the core decided:
//!    - [`notify`]      — outgoing webhooks: outbox rows written with the state change, a
//!      delivery worker (signed, retried with backoff); [`reviews`] — post-session reviews.
//!    - [`revocations`] — revocations pushed to gateways the moment a grant ends.
//!    - [`cluster`]     — several nodes on one PostgreSQL: revocations and acknowledgements
//!      announced across nodes, heartbeats, gateway links, leases for one-node work.
//!    - [`effects`]     — a core transition's effects: notices and reviews in its
//!      transaction, revocations pushed after its commit.
//!    - [`recordings`]  — session recordings: the chunk chain rule on `recording.chunk`
//!      events, chunk bytes checked against the logged hash, casts for readers.
//!    - [`teardown`]    — after every end of a grant: sessions closed, credential refused
//!      (probed), downstream authorization gone → `verified` / `partial` / `failed`;
//!      [`probe_slots`] paces its probes per gateway.
//!    - [`parties`]     — who a request involves beyond requester and subject (a standing
//!      exception's owner), for the core's separation of duties.
//!    - [`context`]     — changes of context (identity disabled, org suspended, asset locked
//!      out, policy reload, key revoked) applied to every open request and grant.
//! 6. Orchestration and workers:
//!    - [`service`]   — lifecycle orchestration: load → core transition → save with events,
//!      one transaction each. Domain rules stay in `jitgate-core`; this only wires them.
//!    - [`scheduler`] — expiry, lapse and activation on time.
//!    - [`exceptions`] — standing exceptions: filed as requests on the `standing` path with
//!      their terms, listed with their uses, re-validated, ended (the overdue end is part of
//!      the scheduler's pass in `service::tick`).
//!    - [`attestations`] — post-session attestations (given once by the subject; missing
//!      ones listed); [`campaigns`] — review campaigns: gathering a period's items,
//!      decisions (keep / narrow / end, "end" revoking at once), closing.
//!    - [`findings`]  — the findings and the standing-privilege inventory of a period: one
//!      read of the stored log through `jitgate_core::findings` (`period_findings`).
//!    - [`compliance`] — the signed compliance report of a period and a site; its figures
//!      and findings come from one read of the log ([`log_scan`], shared by both).
//!    - [`evidence`]  — checkpoints (periodic, on demand, at stop), in-place verification of
//!      the log, per-grant bundles and reports; [`siem`] — streaming events to SIEM
//!      collectors (OCSF JSON / RFC 5424 syslog over TCP or TLS) from a cursor.
//! 7. HTTP, imported by nothing below:
//!    - [`api`]     — axum handlers (`/api/v1`), extractors, the control-channel WebSocket,
//!      OpenAPI.
//!    - [`console`] — the web console: embedded page, cookie sign-in with CSRF protection
//!      and idle timeout in front of the same `/api/v1` handlers, live updates (SSE).
//!    - [`tls`]     — serving HTTPS: certificate from files or a CA generated in the data
//!      dir, HSTS, and the refusal to serve plain HTTP off loopback.
//!
//! Start-up order matters: the store is opened and migrated, the policy set loaded (a broken
//! set stops the start), then one scheduler pass ends every grant whose expiry passed while
//! the server was down — only then does the listener accept connections.

pub mod api;
pub mod attestations;
pub mod auth;
pub mod campaigns;
pub mod cluster;
pub mod cluster_keys;
pub mod compliance;
pub mod config;
pub mod console;
pub mod context;
pub mod control;
pub mod effects;
pub mod error;
pub mod evidence;
pub mod exceptions;
pub mod federation;
pub mod files;
pub mod findings;
pub mod gateway_auth;
pub mod gateway_ca;
pub mod ids;
pub mod log_scan;
pub mod login;
pub mod metrics;
pub mod node;
pub mod notify;
pub mod paging;
pub mod parties;
pub mod passkeys;
pub mod policy;
pub mod probe_slots;
pub mod recordings;
pub mod reviews;
pub mod revocations;
pub mod scheduler;
pub mod secrets;
pub mod service;
pub mod siem;
pub mod ssh_ca;
pub mod sso;
pub mod state;
pub mod teardown;
pub mod throttle;
pub mod tls;
pub mod views;
pub mod visibility;

use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use config::ServerConfig;
use jitgate_core::event::Actor;
use jitgate_core::{Clock, Inventory};
use jitgate_store::Store;
use state::AppState;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use tokio::sync::{watch, Notify};
use utoipa::OpenApi;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database: {0}")]
    Store(#[from] jitgate_store::StoreError),
    #[error("policy set refused: {0}")]
    Policy(#[from] jitgate_policy::PolicyError),
    #[error("cannot read inventory {path}: {message}")]
    Inventory { path: String, message: String },
    #[error("cannot listen on {addr}: {source}; is another server running there? set `listen` or JITGATE_LISTEN")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// A running server: its address, state (for tests and the quickstart) and a stop switch.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: AppState,
    /// The certificate served, when TLS is on (its fingerprint is what clients pin).
    pub tls: Option<tls::TlsInfo>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// Stop accepting, finish in-flight requests, stop the scheduler. The store stays open
    /// (the caller owns it; tests restart a server on the same store).
    pub async fn stop(self) -> Store {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.state.store
    }

    /// Wait until stopped by Ctrl-C / SIGTERM, then close the database cleanly.
    pub async fn run_until_signal(self) {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.stop().await.close().await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Open the store named by the configuration.
pub async fn open_store(config: &ServerConfig) -> Result<Store, StartError> {
    Ok(match &config.database_url {
        Some(url) => Store::open(url).await?,
        None => Store::open_data_dir(&config.data_dir).await?,
    })
}

/// Build the state, catch up on expiry, and start listening.
pub async fn start(
    config: ServerConfig,
    clock: Arc<dyn Clock>,
) -> Result<RunningServer, StartError> {
    let store = open_store(&config).await?;
    start_with_store(config, clock, store).await
}

pub async fn start_with_store(
    config: ServerConfig,
    clock: Arc<dyn Clock>,
    store: Store,
) -> Result<RunningServer, StartError> {
    // Several nodes on one PostgreSQL share one key set: the database's copies go into the
    // data directory before any key is opened (docs/cluster.md).
    files::private_dir(&config.data_dir).map_err(|e| {
        StartError::Other(format!("data directory {}: {e}", config.data_dir.display()))
    })?;
    cluster_keys::sync_at_start(&store, &config.data_dir)
        .await
        .map_err(|e| StartError::Other(format!("cluster keys: {e}")))?;
    // Before anything else: plain HTTP off loopback stops the start here.
    let server_tls = tls::prepare(&config).map_err(StartError::Other)?;
    let loaded = policy::load(config.policy_dir.as_deref())?;
    let policy_info = policy::info(&loaded);
    let keyring = jitgate_credential::KeyRing::open_or_create(&config.data_dir, clock.now())
        .map_err(|e| {
            StartError::Other(format!(
                "token-signing keys in {}: {e}",
                config.data_dir.display()
            ))
        })?;
    // Webhook keys are read now: a missing key stops the start rather than losing notices.
    let notifier = notify::Notifier::from_config(&config.notify)
        .map_err(|e| StartError::Other(e.to_string()))?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let evidence = evidence::Evidence::open(&config.evidence, &config.data_dir, &store)
        .await
        .map_err(|e| StartError::Other(format!("evidence: {e}")))?;
    let totp_key = secrets::TotpKey::open_or_create(&config.data_dir)
        .map_err(|e| StartError::Other(format!("TOTP key: {e}")))?;
    let ssh_cas = ssh_ca::SshCas::open_or_create(&config.data_dir, clock.now())
        .map_err(|e| StartError::Other(format!("SSH CA keys: {e}")))?;
    cluster_keys::upload_missing(&store, &config.data_dir)
        .await
        .map_err(|e| StartError::Other(format!("cluster keys: {e}")))?;
    let federation =
        federation::jwks::Issuers::from_config(&config.federation).map_err(StartError::Other)?;
    let sso = sso::providers::Providers::from_config(&config.sso).map_err(StartError::Other)?;
    let config_login = config.login.clone();
    let node = node::Node {
        id: config.cluster.node_id(config.listen),
        url: config.cluster.url(config.listen, server_tls.is_some()),
        started_at: clock.now(),
    };
    let state = AppState {
        evidence: Arc::new(evidence),
        store,
        clock,
        policies: Arc::new(RwLock::new(Arc::new(loaded))),
        config: Arc::new(config),
        wake: Arc::new(Notify::new()),
        next_wake_ms: Arc::new(std::sync::atomic::AtomicI64::new(0)),
        keyring: Arc::new(std::sync::Mutex::new(keyring)),
        control: Arc::new(control::ControlHub::default()),
        teardown_wake: Arc::new(Notify::new()),
        teardown_retry_now: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        probe_slots: Arc::default(),
        shutdown: shutdown_rx.clone(),
        notifier: Arc::new(notifier),
        throttle: Arc::new(throttle::Throttle::new(
            config_login.hash_concurrency(),
            config_login.hash_queue,
        )),
        totp_key: Arc::new(totp_key),
        gateway_ca: server_tls.as_ref().map(|t| t.gateway_ca.clone()),
        cert_refusals: Default::default(),
        ssh_cas: Arc::new(ssh_cas),
        node: Arc::new(node),
        metrics: Arc::new(metrics::Metrics::default()),
        federation: Arc::new(federation),
        sso: Arc::new(sso),
    };
    let sealed = secrets::encrypt_stored_totp(&state.store, &state.totp_key)
        .await
        .map_err(|e| StartError::Other(format!("encrypting stored TOTP secrets: {e}")))?;
    if sealed > 0 {
        tracing::info!(
            secrets = sealed,
            "TOTP secrets stored in clear are now encrypted"
        );
    }
    policy::record_loaded(&state, Actor::system(), &policy_info)
        .await
        .map_err(|e| StartError::Other(e.to_string()))?;
    evidence::archive_policies(&state.store, &state.policies().set)
        .await
        .map_err(|e| StartError::Other(e.to_string()))?;
    if let Some(path) = state.config.inventory.clone() {
        let text = std::fs::read_to_string(&path).map_err(|e| StartError::Inventory {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let inv = Inventory::from_toml(&text).map_err(|e| StartError::Inventory {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        service::load_inventory(&state, Actor::system(), &inv)
            .await
            .map_err(|e| StartError::Other(e.to_string()))?;
    }
    // A binding to an identity that is not a workload of the inventory stops the start.
    federation::check_bindings(&state)
        .await
        .map_err(StartError::Other)?;
    // So does an SSO mapping rule to someone who is not a person of the inventory, two rules
    // that could map one login to two people, or an unmapped `sso_only` identity.
    sso::check_mappings(&state)
        .await
        .map_err(StartError::Other)?;
    // Before anything is served: end what expired while we were down.
    let caught_up = service::tick(&state)
        .await
        .map_err(|e| StartError::Other(e.to_string()))?;
    if caught_up > 0 {
        tracing::info!(
            transitions = caught_up,
            "caught up on expiry and lapses at start"
        );
    }
    let addr = state.config.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Other(e.to_string()))?;
    let rx = shutdown_rx;
    let app = app(state.clone());
    let limits = api::limits::ConnLimits::from_config(&state.config.limits);
    let server = tls::spawn_server(listener, app, server_tls.as_ref(), limits, rx.clone());
    let notifications = tokio::spawn(notify::run(state.clone(), rx.clone()));
    let teardowns = tokio::spawn(teardown::run(state.clone(), rx.clone()));
    let scheduler = tokio::spawn(scheduler::run(state.clone(), rx));
    // Checkpoints (and the one signed at stop) and SIEM delivery stop with the rest.
    let mut evidence_tasks = vec![tokio::spawn(evidence::run_checkpointer(
        state.clone(),
        shutdown.subscribe(),
    ))];
    evidence_tasks.extend(siem::spawn(&state, &shutdown.subscribe()));
    evidence_tasks.extend(cluster::spawn(&state, &shutdown.subscribe()).await);
    tracing::info!(%addr, tls = server_tls.is_some(), node = %state.node.id, "jitgate server listening");
    Ok(RunningServer {
        addr,
        state,
        tls: server_tls.map(|t| t.info),
        shutdown,
        tasks: vec![server, scheduler, notifications, teardowns]
            .into_iter()
            .chain(evidence_tasks)
            .collect(),
    })
}

/// The axum application: API, OpenAPI document, health check.
pub fn app(state: AppState) -> Router {
    Router::new()
        .nest(
            "/api/v1",
            api::evidence::router()
                .merge(api::routes::router())
                .merge(api::gateway::router())
                .merge(api::enrol::router())
                .merge(api::api_keys::router())
                .merge(api::reviews::router())
                .merge(api::campaigns::router())
                .merge(api::sessions::router())
                .merge(api::teardown::router())
                .merge(api::ssh::router())
                .merge(api::recordings::router())
                .merge(api::federation::router())
                .merge(api::passkeys::router())
                .merge(api::compliance::router())
                .merge(api::exceptions::router())
                .merge(api::findings::router())
                // The web console's cookie stands in for the bearer header (CSRF-checked).
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    console::session::cookie_auth,
                )),
        )
        .merge(api::sso::router())
        .merge(console::router())
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(api::metrics::readyz))
        .route("/metrics", get(api::metrics::metrics))
        .fallback(not_found)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            state.config.limits.max_body_bytes,
        ))
        // Every error answer is `{code, message}`, also those axum and tower make (405, 413).
        .layer(axum::middleware::map_response(api::limits::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_responses,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Count every answer by method and status class (`jitgate_http_responses_total`).
async fn count_responses(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = req.method().as_str().to_string();
    let resp = next.run(req).await;
    state.metrics.http_response(&method, resp.status().as_u16());
    resp
}

async fn openapi() -> impl IntoResponse {
    let mut doc = api::routes::ApiDoc::openapi();
    doc.merge(api::reviews::ReviewsDoc::openapi());
    doc.merge(api::campaigns::CampaignsDoc::openapi());
    doc.merge(api::api_keys::ApiKeysDoc::openapi());
    doc.merge(api::teardown::TeardownDoc::openapi());
    doc.merge(api::sessions::SessionsDoc::openapi());
    doc.merge(api::enrol::EnrolDoc::openapi());
    doc.merge(api::ssh::SshDoc::openapi());
    doc.merge(api::recordings::RecordingsDoc::openapi());
    doc.merge(api::federation::FederationDoc::openapi());
    doc.merge(api::passkeys::PasskeysDoc::openapi());
    doc.merge(api::sso::SsoDoc::openapi());
    doc.merge(api::compliance::ComplianceDoc::openapi());
    doc.merge(api::exceptions::ExceptionsDoc::openapi());
    doc.merge(api::findings::FindingsDoc::openapi());
    api::limits::declare_errors(&mut doc);
    api::limits::declare_pages(&mut doc);
    Json(doc)
}

async fn not_found(uri: axum::http::Uri) -> error::ServerError {
    error::ServerError::NotFound {
        what: "route",
        id: uri.path().to_string(),
        hint: "/openapi.json lists the API",
    }
}
