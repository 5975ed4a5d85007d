//! Outgoing notifications: signed webhooks, written to an outbox in the transaction of the
//! state change that caused them and delivered by a worker task, at least once, with
//! exponential backoff, surviving restarts. See docs/notifications.md for receivers.
//!
//! - [`Notice`] — what happened, with what a person needs to act on it (who, what, where,
//!   why, ids). [`enqueue`] turns one notice into one outbox row per subscribed webhook.
//! - [`ask_approvers`] / [`announce_grant`] — the `AskApprovers` and `AnnounceGrant` effects
//!   ([`crate::effects`]), carried out inside the transition's write transaction.
//! - [`webhooks`] — the webhooks in force ([`Notifier`], held in the state).
//! - [`run`] — the delivery worker: claim due rows, POST them signed, mark or reschedule.
//! - [`render`] / [`sign`] — the bodies (jitgate JSON or Slack-compatible) and the
//!   `X-Jitgate-Signature` (`v1=` hex HMAC-SHA256 over `"{timestamp}.{body}"`).

use crate::config::WebhookFormat;
use crate::error::ApiResult;
use crate::ids::new_id;
use crate::state::AppState;
use hmac::{Hmac, Mac};
use jitgate_core::event::{millis, rfc3339};
use jitgate_core::lifecycle;
use jitgate_core::{Grant, Request, RequestState, Timestamp};
use jitgate_store::{Notification, Tx};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;
use tokio::sync::watch;

pub mod webhooks;
pub use webhooks::{Notifier, Webhook};

/// Notice kinds (the `event` of the envelope, and what `events = [...]` subscribes to).
pub const AWAITING_APPROVAL: &str = "request.awaiting_approval";
pub const GRANT_ACTIVE: &str = "grant.active";
pub const BREAKGLASS_STARTED: &str = "breakglass.started";
pub const TEARDOWN_FAILED: &str = "teardown.failed";
pub const REVIEW_DUE: &str = "review.due";

/// Rows claimed per round trip.
const BATCH: i64 = 16;
/// A claimed row is not due again before this (one attempt's timeout plus margin), so a
/// server that dies mid-send leaves it to be retried, by itself or another node.
const LEASE_SECS: i64 = 60;
/// One attempt's deadline, connect to last byte.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The worker looks at the outbox at least this often (other nodes' rows, retries due).
const MAX_SLEEP: Duration = Duration::from_secs(1);
/// Longest pause between attempts.
const MAX_BACKOFF_MS: i64 = 10 * 60 * 1000;
/// Receivers' error bodies are kept this short in `last_error`.
const ERROR_BODY_MAX: usize = 200;

/// Something people must hear about. The fields are the notice's `data` in the envelope.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Notice {
    /// A request waits for approvals; `approvers` are the identities eligible to give one.
    AwaitingApproval {
        request_id: String,
        requester: String,
        subject: String,
        assets: Vec<String>,
        sites: Vec<String>,
        /// The scope in words, one line per rule.
        scope: Vec<String>,
        reason: String,
        reference: String,
        path: String,
        #[serde(with = "millis")]
        window_start: Timestamp,
        #[serde(with = "millis")]
        window_end: Timestamp,
        approvals_needed: u32,
        step_up: bool,
        approvers: Vec<String>,
    },
    /// A grant became active: its subject can now connect.
    GrantActive {
        grant_id: String,
        request_id: String,
        requester: String,
        subject: String,
        assets: Vec<String>,
        sites: Vec<String>,
        scope: Vec<String>,
        reason: String,
        reference: String,
        path: String,
        emergency: bool,
        #[serde(with = "millis")]
        not_before: Timestamp,
        #[serde(with = "millis")]
        expires_at: Timestamp,
        review_required: bool,
    },
    /// Break-glass: access without approval, active now. Everyone configured hears of it.
    BreakGlassStarted {
        grant_id: String,
        request_id: String,
        requester: String,
        subject: String,
        assets: Vec<String>,
        sites: Vec<String>,
        scope: Vec<String>,
        reason: String,
        reference: String,
        #[serde(with = "millis")]
        expires_at: Timestamp,
        /// When the mandatory post-session review is due.
        #[serde(with = "millis")]
        review_due_at: Timestamp,
    },
    /// A grant's teardown could not be verified (gateway silent, credential still
    /// accepted, ...); `detail` is the teardown's own report.
    TeardownFailed {
        grant_id: String,
        request_id: String,
        subject: String,
        detail: Value,
    },
    /// A post-session review is past its due time and still open.
    ReviewDue {
        grant_id: String,
        request_id: String,
        subject: String,
        /// `break_glass` or `legacy_asset`.
        reason: String,
        #[serde(with = "millis")]
        opened_at: Timestamp,
        #[serde(with = "millis")]
        due_at: Timestamp,
        detail: Value,
    },
}

impl Notice {
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::AwaitingApproval { .. } => AWAITING_APPROVAL,
            Notice::GrantActive { .. } => GRANT_ACTIVE,
            Notice::BreakGlassStarted { .. } => BREAKGLASS_STARTED,
            Notice::TeardownFailed { .. } => TEARDOWN_FAILED,
            Notice::ReviewDue { .. } => REVIEW_DUE,
        }
    }

    /// A short headline.
    pub fn title(&self) -> String {
        match self {
            Notice::AwaitingApproval {
                request_id,
                subject,
                assets,
                ..
            } => format!(
                "Approval needed: {subject} on {} ({request_id})",
                assets.join(", ")
            ),
            Notice::GrantActive {
                grant_id,
                subject,
                assets,
                ..
            } => format!(
                "Access active: {subject} on {} ({grant_id})",
                assets.join(", ")
            ),
            Notice::BreakGlassStarted {
                grant_id,
                subject,
                assets,
                ..
            } => format!(
                "BREAK-GLASS: {subject} on {} ({grant_id})",
                assets.join(", ")
            ),
            Notice::TeardownFailed {
                grant_id, subject, ..
            } => format!("Teardown FAILED: grant {grant_id} of {subject}"),
            Notice::ReviewDue {
                grant_id, subject, ..
            } => format!("Review overdue: grant {grant_id} of {subject}"),
        }
    }

    /// One or two sentences a person can act on.
    pub fn summary(&self) -> String {
        match self {
            Notice::AwaitingApproval {
                request_id,
                requester,
                subject,
                scope,
                reason,
                reference,
                window_start,
                window_end,
                approvals_needed,
                approvers,
                ..
            } => {
                let who = if requester == subject {
                    subject.clone()
                } else {
                    format!("{requester} (for {subject})")
                };
                format!(
                    "{who} asks for {} from {} to {}. Reason: {reason}{}. Needs {approvals_needed} approval(s) from: {}. Decide with `jitgate approve {request_id}` or `jitgate deny {request_id}`.",
                    scope.join("; "),
                    rfc3339(*window_start),
                    rfc3339(*window_end),
                    reference_words(reference),
                    if approvers.is_empty() {
                        "nobody eligible in the inventory".to_string()
                    } else {
                        approvers.join(", ")
                    }
                )
            }
            Notice::GrantActive {
                subject,
                scope,
                reason,
                reference,
                expires_at,
                ..
            } => format!(
                "{subject} may now use {} until {}. Reason: {reason}{}.",
                scope.join("; "),
                rfc3339(*expires_at),
                reference_words(reference)
            ),
            Notice::BreakGlassStarted {
                grant_id,
                subject,
                scope,
                reason,
                reference,
                expires_at,
                review_due_at,
                ..
            } => format!(
                "{subject} broke glass: {} without approval until {}. Reason: {reason}{}. A post-session review by someone else is due by {}; `jitgate revoke {grant_id} --reason ...` ends it now.",
                scope.join("; "),
                rfc3339(*expires_at),
                reference_words(reference),
                rfc3339(*review_due_at)
            ),
            Notice::TeardownFailed {
                grant_id, detail, ..
            } => format!(
                "The teardown of grant {grant_id} could not be verified: {}. It is retried; `jitgate teardown {grant_id}` shows each check.",
                teardown_words(detail)
            ),
            Notice::ReviewDue {
                grant_id,
                reason,
                due_at,
                ..
            } => format!(
                "The {} review of grant {grant_id} was due at {} and is still open. Complete it with `jitgate review {grant_id} --outcome ok|finding --note ...`.",
                reason.replace('_', "-"),
                rfc3339(*due_at)
            ),
        }
    }

    /// The format-neutral envelope stored in the outbox (and sent as the `json` format).
    pub fn envelope(&self, delivery: &str, at: Timestamp) -> Value {
        json!({
            "delivery": delivery,
            "event": self.kind(),
            "occurred_at": rfc3339(at),
            "title": self.title(),
            "summary": self.summary(),
            "data": serde_json::to_value(self).unwrap_or(Value::Null),
        })
    }
}

/// What failed in a teardown, in a line: its `reason`, else its `failed` checks.
fn teardown_words(detail: &Value) -> String {
    if let Some(reason) = detail.get("reason").and_then(Value::as_str) {
        return clip(reason, 300);
    }
    match detail.get("failed").and_then(Value::as_array) {
        Some(failed) if !failed.is_empty() => {
            let items: Vec<String> = failed
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect();
            clip(&items.join("; "), 300)
        }
        _ => "see the report".to_string(),
    }
}

fn reference_words(reference: &str) -> String {
    if reference.is_empty() {
        String::new()
    } else {
        format!(" (ref {reference})")
    }
}

/// Write one outbox row per webhook subscribed to the notice, in the caller's transaction:
/// if the state change commits, so do its notifications; if it rolls back, nothing is sent.
///
/// The worker is woken at once. It claims rows in a write transaction, which waits for the
/// global write lock this transaction holds, so it sees the rows as soon as they commit.
pub async fn enqueue(tx: &mut Tx, state: &AppState, notice: &Notice) -> ApiResult<()> {
    let kind = notice.kind();
    let now = state.clock.now();
    let mut queued = false;
    for hook in state.notifier.webhooks.iter().filter(|w| w.wants(kind)) {
        let id = new_id("ntf");
        let payload = notice.envelope(&id, now);
        tx.enqueue_notification(&Notification {
            id,
            webhook: hook.name.clone(),
            kind: kind.to_string(),
            payload,
            created_at: now,
            attempts: 0,
            next_attempt_at: now,
            delivered_at: None,
            last_error: None,
        })
        .await?;
        queued = true;
    }
    if queued {
        state.notifier.wake();
    }
    Ok(())
}

/// Sites of the assets in a request's scope (assets since removed are left out).
async fn sites_of(tx: &mut Tx, assets: &[String]) -> ApiResult<Vec<String>> {
    let mut sites = Vec::new();
    for id in assets {
        if let Some(a) = tx.get_asset(id).await? {
            if !sites.contains(&a.site) {
                sites.push(a.site);
            }
        }
    }
    Ok(sites)
}

/// The `AskApprovers` effect (`crate::effects`), in the filing's transaction: a pending
/// request asks its eligible approvers.
pub async fn ask_approvers(tx: &mut Tx, state: &AppState, r: &Request) -> ApiResult<()> {
    if r.state == RequestState::Pending && state.notifier.wants(AWAITING_APPROVAL) {
        let assets = r.scope.assets();
        let sites = sites_of(tx, &assets).await?;
        let everyone = tx.list_identities().await?;
        let find = |id: &str| everyone.iter().find(|i| i.id == id);
        let (Some(requester), Some(subject)) = (find(&r.requester), find(&r.subject)) else {
            return Ok(());
        };
        let exception_owner = crate::parties::exception_owner(tx, r).await?;
        let parties = jitgate_core::governance::Parties {
            requester,
            subject,
            exception_owner: exception_owner.as_deref(),
        };
        let mut approvers: Vec<String> = everyone
            .iter()
            .filter(|i| lifecycle::is_eligible_approver(r, i, &parties, &sites))
            .map(|i| i.id.clone())
            .collect();
        approvers.sort();
        let ob = &r.decision.obligations;
        let notice = Notice::AwaitingApproval {
            request_id: r.id.clone(),
            requester: r.requester.clone(),
            subject: r.subject.clone(),
            assets,
            sites,
            scope: r.scope.describe(),
            reason: r.reason.clone(),
            reference: r.reference.clone(),
            path: r.path.as_str().to_string(),
            window_start: r.window_start,
            window_end: r.window_end(),
            approvals_needed: ob.approvals,
            step_up: ob.step_up,
            approvers,
        };
        enqueue(tx, state, &notice).await?;
    }
    Ok(())
}

/// The `AnnounceGrant` effect, in the transaction that made the grant active (submit,
/// approval, the scheduler opening a window). A break-glass grant also raises
/// [`Notice::BreakGlassStarted`] (its review is an effect of its own).
pub async fn announce_grant(
    tx: &mut Tx,
    state: &AppState,
    request: &Request,
    grant: &Grant,
) -> ApiResult<()> {
    let review_due_at = if grant.emergency {
        Some(crate::config::review_due_at(&state.config, grant)?)
    } else {
        None
    };
    let wants_active = state.notifier.wants(GRANT_ACTIVE);
    let wants_breakglass = review_due_at.is_some() && state.notifier.wants(BREAKGLASS_STARTED);
    if !wants_active && !wants_breakglass {
        return Ok(());
    }
    let assets = grant.scope.assets();
    let sites = sites_of(tx, &assets).await?;
    let scope = grant.scope.describe();
    if wants_active {
        let notice = Notice::GrantActive {
            grant_id: grant.id.clone(),
            request_id: request.id.clone(),
            requester: request.requester.clone(),
            subject: grant.subject.clone(),
            assets: assets.clone(),
            sites: sites.clone(),
            scope: scope.clone(),
            reason: request.reason.clone(),
            reference: request.reference.clone(),
            path: request.path.as_str().to_string(),
            emergency: grant.emergency,
            not_before: grant.not_before,
            expires_at: grant.expires_at,
            review_required: grant.review_required,
        };
        enqueue(tx, state, &notice).await?;
    }
    if let (true, Some(review_due_at)) = (wants_breakglass, review_due_at) {
        let notice = Notice::BreakGlassStarted {
            grant_id: grant.id.clone(),
            request_id: request.id.clone(),
            requester: request.requester.clone(),
            subject: grant.subject.clone(),
            assets,
            sites,
            scope,
            reason: request.reason.clone(),
            reference: request.reference.clone(),
            expires_at: grant.expires_at,
            review_due_at,
        };
        enqueue(tx, state, &notice).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------- bodies and signatures

/// `hex(HMAC-SHA256(secret, "{timestamp}.{body}"))`, the value after `v1=` in
/// `X-Jitgate-Signature`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The body sent to a webhook of `format`, rendered from the stored envelope.
pub fn render(format: WebhookFormat, envelope: &Value) -> Vec<u8> {
    let value = match format {
        WebhookFormat::Json => envelope.clone(),
        WebhookFormat::Slack => slack(envelope),
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The data fields shown as Slack "fields", in this order when present.
const SLACK_FIELDS: &[(&str, &str)] = &[
    ("subject", "Subject"),
    ("requester", "Requester"),
    ("assets", "Assets"),
    ("sites", "Sites"),
    ("reason", "Reason"),
    ("reference", "Reference"),
    ("approvers", "Approvers"),
    ("expires_at", "Expires"),
    ("review_due_at", "Review due"),
    ("due_at", "Due"),
];

/// A Slack-compatible message: `text` (notifications, clients without blocks) plus
/// `blocks` — header, summary, up to 10 fields, and a context line with the ids.
fn slack(envelope: &Value) -> Value {
    let text_of = |k: &str| envelope.get(k).and_then(Value::as_str).unwrap_or("");
    let title = text_of("title");
    let summary = text_of("summary");
    let data = envelope.get("data").cloned().unwrap_or(Value::Null);
    let mut fields = Vec::new();
    for (key, label) in SLACK_FIELDS {
        let value = match data.get(*key) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(", "),
            _ => continue,
        };
        fields.push(json!({
            "type": "mrkdwn",
            "text": clip(&format!("*{label}*\n{}", slack_escape(&value)), 2000),
        }));
    }
    fields.truncate(10);
    let ids: Vec<String> = ["grant_id", "request_id"]
        .iter()
        .filter_map(|k| {
            data.get(*k)
                .and_then(Value::as_str)
                .map(|v| format!("{k} `{v}`"))
        })
        .collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": clip(title, 150)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&slack_escape(summary), 3000)}}),
    ];
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    blocks.push(
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(&format!(
        "jitgate · {} · {} · delivery `{}`",
        text_of("event"),
        ids.join(" · "),
        text_of("delivery")
    ), 2000)}]}),
    );
    json!({
        "text": clip(&format!("{title}: {summary}"), 3000),
        "blocks": blocks,
    })
}

// ---------------------------------------------------------------- delivery

/// Pause before the next attempt after `attempts` failed ones: 1 s, 2 s, 4 s, ... capped at
/// 10 minutes, each ±20 % so that receivers coming back are not hit by every server at once.
pub fn backoff(attempts: i64) -> chrono::Duration {
    use rand::Rng;
    let exp = attempts.clamp(1, 30) - 1;
    let base = 1000_i64.saturating_mul(1_i64 << exp).min(MAX_BACKOFF_MS);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    let ms = ((base as f64) * jitter) as i64;
    chrono::Duration::milliseconds(ms.clamp(1, MAX_BACKOFF_MS))
}

/// Wall-clock unix seconds for `X-Jitgate-Timestamp`. Deliberately not the injected clock:
/// receivers compare it with their own clock to refuse replays, so it must be real time.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An error and its causes on one line; reqwest's URL is left out (chat webhook URLs are
/// secrets).
fn describe(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// One attempt: `Ok` when the receiver answered 2xx.
async fn send(
    client: &reqwest::Client,
    hook: Option<&Webhook>,
    n: &Notification,
) -> Result<(), String> {
    let Some(hook) = hook else {
        return Err(format!(
            "webhook {:?} is not configured (any more); add it back under [[notify.webhook]] \
             to deliver this, it stays pending until then",
            n.webhook
        ));
    };
    let body = render(hook.format, &n.payload);
    let timestamp = unix_now();
    let signature = sign(&hook.secret, timestamp, &body);
    let response = client
        .post(hook.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Jitgate-Timestamp", timestamp.to_string())
        .header("X-Jitgate-Signature", format!("v1={signature}"))
        .header("X-Jitgate-Delivery", &n.id)
        .header("X-Jitgate-Event", &n.kind)
        .body(body)
        .send()
        .await
        .map_err(describe)?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    if status.is_redirection() {
        return Err(format!(
            "HTTP {status}: redirects are not followed; configure the final URL"
        ));
    }
    let text = response.text().await.unwrap_or_default();
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Err(format!(
        "HTTP {status}: {}",
        clip(text.trim(), ERROR_BODY_MAX)
    ))
}

enum Round {
    /// Nothing was due.
    Idle,
    /// Some were sent; more may be due.
    Sent,
    /// Shutdown arrived during the round.
    Stopped,
}

/// Claim due rows, send them concurrently, record each result.
async fn deliver_round(
    state: &AppState,
    client: &reqwest::Client,
    shutdown: &mut watch::Receiver<bool>,
) -> ApiResult<Round> {
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
    let claimed = tx
        .claim_notifications(now, now + chrono::Duration::seconds(LEASE_SECS), BATCH)
        .await?;
    tx.commit().await?;
    if claimed.is_empty() {
        return Ok(Round::Idle);
    }
    let ids: Vec<String> = claimed.iter().map(|n| n.id.clone()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for n in claimed {
        let client = client.clone();
        let hook = state.notifier.webhook(&n.webhook).cloned();
        tasks.spawn(async move {
            let result = send(&client, hook.as_ref(), &n).await;
            (n, result)
        });
    }
    let mut results = Vec::new();
    let mut stopped = false;
    loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                None => break,
                Some(Ok(done)) => results.push(done),
                // The row stays claimed and is retried when its lease runs out.
                Some(Err(e)) => tracing::error!(error = %e, "notification delivery task failed"),
            },
            _ = shutdown.changed() => {
                tasks.abort_all();
                stopped = true;
                break;
            }
        }
    }
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
    for (n, result) in &results {
        match result {
            Ok(()) => {
                tx.mark_notification_delivered(&n.id, now).await?;
                tracing::debug!(webhook = %n.webhook, delivery = %n.id, kind = %n.kind, "notification delivered");
            }
            Err(error) => {
                let next = now + backoff(n.attempts);
                tx.reschedule_notification(&n.id, next, error).await?;
                tracing::warn!(
                    webhook = %n.webhook, delivery = %n.id, kind = %n.kind,
                    attempts = n.attempts, next_attempt_at = %rfc3339(next), %error,
                    "notification not delivered; will retry"
                );
            }
        }
    }
    if stopped {
        // Interrupted sends are due again at once after a restart (the receiver may have
        // seen them: at-least-once, receivers deduplicate on X-Jitgate-Delivery).
        for id in ids
            .iter()
            .filter(|id| !results.iter().any(|(n, _)| &n.id == *id))
        {
            tx.reschedule_notification(id, now, "interrupted by server shutdown")
                .await?;
        }
    }
    tx.commit().await?;
    Ok(if stopped { Round::Stopped } else { Round::Sent })
}

/// Is anything due now (one indexed read)?
async fn anything_due(state: &AppState) -> bool {
    match state.store.read().await {
        Ok(mut tx) => matches!(
            tx.next_notification_at().await,
            Ok(Some(t)) if t <= state.clock.now()
        ),
        Err(_) => false,
    }
}

/// The delivery worker, started with the server; returns on shutdown.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let client = match reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("jitgate/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %describe(e), "cannot build the webhook HTTP client; notifications stay queued");
            return;
        }
    };
    let mut look = true;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if look || anything_due(&state).await {
            match deliver_round(&state, &client, &mut shutdown).await {
                Ok(Round::Sent) => {
                    look = true;
                    continue;
                }
                Ok(Round::Stopped) => return,
                Ok(Round::Idle) => {}
                Err(e) => {
                    tracing::error!(error = %e, "notification delivery round failed; retrying")
                }
            }
        }
        look = tokio::select! {
            _ = tokio::time::sleep(MAX_SLEEP) => false,
            _ = state.notifier.wake.notified() => true,
            _ = shutdown.changed() => return,
        };
    }
}

/// For `GET /notifications`: whether a row is `pending` or `delivered`.
pub fn delivery_state(n: &Notification) -> &'static str {
    if n.delivered_at.is_some() {
        "delivered"
    } else {
        "pending"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        let t = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        Notice::BreakGlassStarted {
            grant_id: "grant-1".into(),
            request_id: "req-1".into(),
            requester: "oscar".into(),
            subject: "oscar".into(),
            assets: vec!["plc-7".into()],
            sites: vec!["north".into()],
            scope: vec!["Modbus write coil 10–20 on plc-7 (unit 1)".into()],
            reason: "valve <stuck> & alarm".into(),
            reference: "INC-88".into(),
            expires_at: t,
            review_due_at: t + chrono::Duration::hours(24),
        }
    }

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_dot_body() {
        // RFC 4231 test case 2 shape: key "Jefe", data "what do ya want for nothing?".
        let sig = sign(b"Jefe", 0, b"what do ya want for nothing?");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"0.what do ya want for nothing?");
        assert_eq!(sig, hex::encode(mac.finalize().into_bytes()));
        assert_ne!(sig, sign(b"Jefe", 1, b"what do ya want for nothing?"));
        assert_eq!(sig.len(), 64);
    }

    #[test]
    fn signature_matches_the_example_in_docs_notifications_md() {
        // The same value the Python and openssl examples in the guide compute.
        assert_eq!(
            sign(
                b"0123456789abcdef0123456789abcdef",
                1_700_000_000,
                br#"{"event":"grant.active"}"#
            ),
            "735c0f1c33bcdda8780e63bf57e8dc122fa67de4d68ad8efa514ec555095fa58"
        );
    }

    #[test]
    fn envelope_carries_kind_summary_and_data() {
        let env = notice().envelope("ntf-1", chrono::DateTime::from_timestamp(0, 0).unwrap());
        assert_eq!(env["event"], "breakglass.started");
        assert_eq!(env["delivery"], "ntf-1");
        assert_eq!(env["data"]["grant_id"], "grant-1");
        assert_eq!(env["data"]["review_due_at"], "2027-01-16T08:00:00.000Z");
        assert!(env["summary"]
            .as_str()
            .unwrap()
            .contains("without approval"));
    }

    #[test]
    fn teardown_failed_says_what_failed() {
        let n = Notice::TeardownFailed {
            grant_id: "grant-1".into(),
            request_id: "req-1".into(),
            subject: "alice".into(),
            detail: json!({"failed": ["gateway gw-north did not acknowledge", {"probe": "accepted"}], "attempt": 2}),
        };
        let s = n.summary();
        assert!(
            s.contains("gateway gw-north did not acknowledge; {\"probe\":\"accepted\"}"),
            "{s}"
        );
        assert_eq!(n.kind(), "teardown.failed");
        let n = Notice::TeardownFailed {
            grant_id: "grant-1".into(),
            request_id: "req-1".into(),
            subject: "alice".into(),
            detail: json!({}),
        };
        assert!(n.summary().contains("see the report"));
    }

    #[test]
    fn slack_body_has_text_and_blocks_and_escapes() {
        let env = notice().envelope("ntf-1", chrono::DateTime::from_timestamp(0, 0).unwrap());
        let body: Value = serde_json::from_slice(&render(WebhookFormat::Slack, &env)).unwrap();
        assert!(body["text"]
            .as_str()
            .unwrap()
            .starts_with("BREAK-GLASS: oscar on plc-7"));
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert!(blocks[1]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("valve &lt;stuck&gt; &amp; alarm"));
        let fields = blocks[2]["fields"].as_array().unwrap();
        assert!(fields.iter().any(|f| f["text"] == "*Assets*\nplc-7"));
        assert!(blocks[3]["elements"][0]["text"]
            .as_str()
            .unwrap()
            .contains("grant_id `grant-1`"));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps_at_ten_minutes() {
        for (attempts, base) in [(1, 1000), (2, 2000), (3, 4000), (10, 512_000)] {
            let d = backoff(attempts).num_milliseconds();
            assert!(
                (base * 8 / 10..=base * 12 / 10).contains(&d),
                "attempt {attempts}: {d} ms"
            );
        }
        for attempts in [11, 20, 1000, i64::MAX] {
            let d = backoff(attempts).num_milliseconds();
            assert!(
                (480_000..=600_000).contains(&d),
                "attempt {attempts}: {d} ms"
            );
        }
    }
}
