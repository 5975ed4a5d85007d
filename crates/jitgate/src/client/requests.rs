//! Requests: `request` (file one), `requests` (list), `show`, `approve`, `deny`, `withdraw`.

use super::grants::grant_rows;
use super::http::{decode, CliError};
use super::text::{self, humane_secs, obligations_words, truncate, Detail};
use super::{prompt, usage, Ctx};
use crate::output::{out, outln};
use clap::{Args, ValueEnum};
use jitgate_core::scope::ScopeRequest;
use jitgate_core::{AccessPath, ApprovalVerdict, RequestState, Timestamp};
use jitgate_server::api::types::{ApproveBody, DenyBody, NewRequestBody, RequestView};

/// The access path, as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PathArg {
    /// Planned maintenance, scheduled in advance.
    Planned,
    /// Routine support.
    Routine,
    /// Break-glass: active at once if policy allows, short, everyone notified, reviewed after.
    Emergency,
}

impl From<PathArg> for AccessPath {
    fn from(p: PathArg) -> Self {
        match p {
            PathArg::Planned => AccessPath::Planned,
            PathArg::Routine => AccessPath::Routine,
            PathArg::Emergency => AccessPath::Emergency,
        }
    }
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// Asset to access (its inventory id), e.g. plc-7.
    #[arg(long, value_name = "ASSET")]
    pub asset: String,

    /// Modbus rule, repeatable: 'read holding 0-99 unit 1', 'write coil 10-20 unit 1'.
    #[arg(long, value_name = "RULE")]
    pub modbus: Vec<String>,

    /// DNP3 rule, repeatable: 'read class 0-3', 'operate binary-output 3-5'.
    #[arg(long, value_name = "RULE")]
    pub dnp3: Vec<String>,

    /// SSH rule, repeatable: 'shell' or 'command <command line>'.
    #[arg(long, value_name = "RULE")]
    pub ssh: Vec<String>,

    /// How long the access lasts, e.g. 30m, 2h, 1h30m.
    #[arg(long = "for", value_name = "DURATION", value_parser = text::parse_duration_arg)]
    pub duration: String,

    /// What the work is; recorded and shown to approvers.
    #[arg(long)]
    pub reason: String,

    /// Work order, change, incident or supplier case id, e.g. WO-1234.
    #[arg(long = "ref", value_name = "ID")]
    pub reference: Option<String>,

    /// Access path.
    #[arg(long, value_name = "ACCESS_PATH", value_enum, default_value_t = PathArg::Planned)]
    pub path: PathArg,

    /// Who will use the access (default: you), e.g. a workload you are an owner of.
    #[arg(long, value_name = "IDENTITY")]
    pub subject: Option<String>,

    /// Window start (default: now): 2026-12-01T06:00Z, 2026-12-01T06:00:00Z or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = text::parse_start)]
    pub start: Option<Timestamp>,
}

fn parse_state(s: &str) -> Result<RequestState, String> {
    RequestState::parse(s).ok_or_else(|| {
        "use one of denied, pending, approved, active, ending, closed, withdrawn, lapsed".into()
    })
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only requests in this state (pending, approved, active, denied, closed, ...).
    #[arg(long, value_parser = parse_state)]
    pub state: Option<RequestState>,

    /// Only requests waiting for your approval.
    #[arg(long)]
    pub awaiting_me: bool,

    /// Only your own requests.
    #[arg(long)]
    pub mine: bool,
    #[command(flatten)]
    pub page: super::PageArgs,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// Request id.
    pub request: String,

    /// Why you approve (recorded in the evidence log).
    #[arg(long)]
    pub comment: Option<String>,

    /// Current TOTP code, for decisions that require step-up (a passkey is used in the web
    /// console instead).
    #[arg(long, value_name = "CODE", value_parser = text::parse_totp)]
    pub totp: Option<String>,
}

#[derive(Debug, Args)]
pub struct DenyArgs {
    /// Request id.
    pub request: String,

    /// Why you deny it (recorded, and shown to the requester).
    #[arg(long)]
    pub comment: String,
}

impl RequestArgs {
    /// The API body; refuses a request with no rule before bothering the server.
    pub fn body(self) -> Result<NewRequestBody, CliError> {
        if self.modbus.is_empty() && self.dnp3.is_empty() && self.ssh.is_empty() {
            return Err(CliError::Usage(format!(
                "say what access you need on {}: add --modbus, --dnp3 or --ssh rules, e.g. \
                 --modbus 'read holding 0-99 unit 1'",
                self.asset
            )));
        }
        if self.reason.trim().is_empty() {
            return Err(CliError::Usage(
                "--reason is empty: say what work the access is for".into(),
            ));
        }
        Ok(NewRequestBody {
            subject: self.subject,
            scope: vec![ScopeRequest {
                asset: self.asset,
                modbus: self.modbus,
                dnp3: self.dnp3,
                ssh: self.ssh,
            }],
            duration: self.duration,
            reason: self.reason,
            reference: self.reference.unwrap_or_default(),
            path: self.path.into(),
            start: self.start,
        })
    }
}

pub async fn create(ctx: &Ctx, args: RequestArgs) -> anyhow::Result<()> {
    let body = args.body()?;
    let raw = ctx.http.post(&["requests"], &body).await?;
    let denied = raw.get("state").and_then(|s| s.as_str()) == Some(RequestState::Denied.as_str());
    if !ctx.printed_json(&raw) {
        let view: RequestView = decode(raw)?;
        out!("{}", render_request(&view, chrono::Utc::now()));
        if let Some(next) = next_step(&view) {
            outln!("\n{next}");
        }
    }
    if denied {
        return Err(CliError::Reported.into());
    }
    Ok(())
}

pub async fn list(ctx: &Ctx, args: ListArgs) -> anyhow::Result<()> {
    let mut query = Vec::new();
    if let Some(state) = args.state {
        query.push(("state", state.as_str().to_string()));
    }
    if args.awaiting_me {
        query.push(("awaiting", "me".to_string()));
    }
    if args.mine {
        query.push(("mine", "true".to_string()));
    }
    let raw = ctx.list(&["requests"], &query, &args.page).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let views: Vec<RequestView> = decode(raw)?;
    if views.is_empty() {
        outln!("no requests match");
    } else {
        outln!("{}", requests_table(&views));
    }
    Ok(())
}

pub async fn show(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let raw = ctx.http.get(&["requests", id], &[]).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let view: RequestView = decode(raw)?;
    out!("{}", render_full(&view, chrono::Utc::now()));
    Ok(())
}

pub async fn approve(ctx: &Ctx, args: ApproveArgs) -> anyhow::Result<()> {
    // Fetch first and show what is approved; the approval carries the digest of exactly this.
    let raw = ctx.http.get(&["requests", &args.request], &[]).await?;
    let view: RequestView = decode(raw)?;
    if !ctx.json {
        out!("{}", render_preview(&view));
    }
    let mut body = ApproveBody {
        scope_digest: view.request.scope_digest.clone(),
        comment: args.comment.unwrap_or_default(),
        totp: args.totp,
        passkey: None,
    };
    let path = ["requests", args.request.as_str(), "approve"];
    let raw = match ctx.http.post(&path, &body).await {
        Err(e)
            if e.api_code() == Some(jitgate_core::Code::StepUpRequired.as_str())
                && body.totp.is_none() =>
        {
            if !prompt::can_prompt() {
                return Err(e
                    .with_hint("no terminal to ask for the code on: pass --totp CODE")
                    .into());
            }
            body.totp = Some(prompt::totp("Step-up: TOTP code: ")?);
            ctx.http.post(&path, &body).await?
        }
        other => other?,
    };
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let after: RequestView = decode(raw)?;
    outln!("\n{}", outcome_line("approved", &after));
    if let Some(next) = next_step(&after) {
        outln!("{next}");
    }
    Ok(())
}

pub async fn deny(ctx: &Ctx, args: DenyArgs) -> anyhow::Result<()> {
    if args.comment.trim().is_empty() {
        return Err(usage("--comment is empty: say why you deny the request"));
    }
    let body = DenyBody {
        comment: args.comment,
        scope_digest: None,
    };
    let raw = ctx
        .http
        .post(&["requests", &args.request, "deny"], &body)
        .await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let after: RequestView = decode(raw)?;
    outln!("{}", outcome_line("denied", &after));
    Ok(())
}

pub async fn withdraw(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let raw = ctx.http.post_empty(&["requests", id, "withdraw"]).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let after: RequestView = decode(raw)?;
    outln!("{}", outcome_line("withdrew", &after));
    Ok(())
}

/// `approved request req-1: now pending, approvals 1/2 (bob)`.
fn outcome_line(verb: &str, v: &RequestView) -> String {
    let r = &v.request;
    let mut line = format!("{verb} request {}: now {}", r.id, r.state.as_str());
    if r.decision.allowed && v.obligations.approvals > 0 {
        line.push_str(&format!(", approvals {}", approvals_cell(v)));
        if !v.approved_by.is_empty() {
            line.push_str(&format!(" ({})", v.approved_by.join(", ")));
        }
    }
    line
}

/// What happens next, in one sentence, for the states where that is not obvious.
pub fn next_step(v: &RequestView) -> Option<String> {
    let r = &v.request;
    match r.state {
        RequestState::Pending => {
            let missing = (v.obligations.approvals as usize).saturating_sub(v.approved_by.len());
            Some(format!(
                "waiting for {missing} more approval{}; approvers run `jitgate approve {}`",
                if missing == 1 { "" } else { "s" },
                r.id
            ))
        }
        RequestState::Approved => Some(format!(
            "approved: the grant is issued when the window opens at {}",
            text::time(r.window_start)
        )),
        RequestState::Active if r.path == AccessPath::Emergency => Some(format!(
            "break-glass access is active{}: everyone has been notified, and a post-session \
             review is required",
            v.grant
                .as_ref()
                .map(|g| format!(" (grant {} until {})", g.id, text::time(g.expires_at)))
                .unwrap_or_default()
        )),
        RequestState::Active => v.grant.as_ref().map(|g| {
            format!(
                "grant {} is active until {}; `jitgate complete {}` ends it when the work is done",
                g.id,
                text::time(g.expires_at),
                g.id
            )
        }),
        RequestState::Denied => Some("denied by policy: see the reasons above".into()),
        _ => None,
    }
}

/// `1/2`, or `-` where approvals do not apply.
fn approvals_cell(v: &RequestView) -> String {
    if !v.request.decision.allowed {
        return "-".into();
    }
    format!("{}/{}", v.approved_by.len(), v.obligations.approvals)
}

fn window(r: &jitgate_core::Request) -> String {
    format!(
        "{} → {} ({})",
        text::time(r.window_start),
        text::time(r.window_end()),
        humane_secs(r.duration_secs)
    )
}

fn path_words(p: AccessPath) -> &'static str {
    match p {
        AccessPath::Emergency => "emergency (break-glass)",
        AccessPath::Standing => "standing (an exception: jitgate exception show)",
        other => other.as_str(),
    }
}

/// The summary every request verb prints.
pub fn render_request(v: &RequestView, now: Timestamp) -> String {
    request_detail(v, now).render()
}

fn request_detail(v: &RequestView, now: Timestamp) -> Detail {
    let r = &v.request;
    let mut d = Detail::new();
    d.row("request", r.id.clone());
    let mut state = r.state.as_str().to_string();
    match &r.state_reason {
        // A denial's reasons get their own row below.
        Some(why) if !r.decision.reasons.contains(why) => state.push_str(&format!(" — {why}")),
        _ => {}
    }
    d.row("state", state).row("path", path_words(r.path));
    if r.subject == r.requester {
        d.row("subject", r.subject.clone());
    } else {
        d.row(
            "subject",
            format!("{} (requested by {})", r.subject, r.requester),
        );
    }
    d.row("window", window(r)).row("reason", r.reason.clone());
    if !r.reference.is_empty() {
        d.row("reference", r.reference.clone());
    }
    d.lines("scope", &v.description)
        .row("scope digest", r.scope_digest.clone());
    let policies = text::list_or_dash(&r.decision.determining_policies);
    if r.decision.allowed {
        d.row("decision", format!("allowed by {policies}"))
            .row("obligations", obligations_words(&v.obligations));
        if v.obligations.approvals > 0 {
            let mut a = approvals_cell(v);
            if !v.approved_by.is_empty() {
                a.push_str(&format!(" ({})", v.approved_by.join(", ")));
            }
            d.row("approvals", a);
        }
    } else {
        d.row("decision", format!("denied by {policies}"))
            .lines("reasons", &r.decision.reasons);
    }
    d.row("policy set", r.decision.policy_set_hash.clone());
    if let Some(g) = &v.grant {
        let remaining = (g.expires_at - now).num_seconds();
        let mut line = format!(
            "{} {}, expires {}",
            g.id,
            g.state.as_str(),
            text::time(g.expires_at)
        );
        if g.state == jitgate_core::GrantState::Active && remaining > 0 {
            line.push_str(&format!(" ({} left)", humane_secs(remaining)));
        }
        d.row("grant", line);
    } else if let Some(id) = &r.grant_id {
        d.row("grant", id.clone());
    }
    d
}

/// `show`: the summary, every approval, and the grant in detail.
pub fn render_full(v: &RequestView, now: Timestamp) -> String {
    let r = &v.request;
    let mut d = request_detail(v, now);
    d.row("created", text::time(r.created_at))
        .row("updated", text::time(r.updated_at));
    let mut out = d.render();
    if v.approvals.is_empty() {
        out.push_str("\nno approvals yet\n");
    } else {
        let mut t = text::table(&["approver", "verdict", "step-up", "at", "scope", "comment"]);
        for a in &v.approvals {
            t.add_row(vec![
                a.approver.clone(),
                match a.verdict {
                    ApprovalVerdict::Approve => "approve".into(),
                    ApprovalVerdict::Deny => "deny".into(),
                },
                if a.step_up { "yes".into() } else { "no".into() },
                text::time(a.at),
                if a.scope_digest == r.scope_digest {
                    "this scope".into()
                } else {
                    format!("other scope ({})", truncate(&a.scope_digest, 20))
                },
                a.comment.clone(),
            ]);
        }
        out.push_str(&format!("\napprovals\n{t}\n"));
    }
    if let Some(g) = &v.grant {
        let remaining = if g.state == jitgate_core::GrantState::Active {
            (g.expires_at - now).num_seconds().max(0)
        } else {
            0
        };
        let mut d = Detail::new();
        for (k, val) in grant_rows(g, remaining) {
            d.row(&k, val);
        }
        out.push_str(&format!("\ngrant\n{}", d.render()));
    }
    out
}

/// What `approve` shows before it sends the approval.
pub fn render_preview(v: &RequestView) -> String {
    let r = &v.request;
    let mut d = Detail::new();
    d.row(
        "request",
        format!("{} ({}, {})", r.id, r.state.as_str(), path_words(r.path)),
    );
    if r.subject == r.requester {
        d.row("subject", r.subject.clone());
    } else {
        d.row(
            "subject",
            format!("{} (requested by {})", r.subject, r.requester),
        );
    }
    d.row("window", window(r));
    let mut reason = r.reason.clone();
    if !r.reference.is_empty() {
        reason.push_str(&format!(" [{}]", r.reference));
    }
    d.row("reason", reason)
        .lines("scope", &v.description)
        .row("scope digest", r.scope_digest.clone())
        .row("obligations", obligations_words(&v.obligations))
        .row("approvals", approvals_cell(v));
    format!("Approving:\n{}", d.render())
}

/// One row per request.
pub fn requests_table(views: &[RequestView]) -> comfy_table::Table {
    let mut t = text::table(&[
        "id",
        "state",
        "requester",
        "subject",
        "assets",
        "path",
        "window",
        "approvals",
        "reason",
    ]);
    for v in views {
        let r = &v.request;
        t.add_row(vec![
            r.id.clone(),
            r.state.as_str().to_string(),
            r.requester.clone(),
            r.subject.clone(),
            r.scope.assets().join(", "),
            r.path.as_str().to_string(),
            format!(
                "{}, {}",
                text::time(r.window_start),
                humane_secs(r.duration_secs)
            ),
            approvals_cell(v),
            truncate(&r.reason, 40),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testdata::{self, at};
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        args: RequestArgs,
    }

    #[test]
    fn request_args_become_the_api_body() -> Result<(), Box<dyn std::error::Error>> {
        let w = Wrap::try_parse_from([
            "x",
            "--asset",
            "plc-7",
            "--modbus",
            "read holding 0-99 unit 1",
            "--modbus",
            "write coil 10-20 unit 1",
            "--for",
            "1h 30m",
            "--reason",
            "valve",
            "--ref",
            "WO-1",
            "--start",
            "2026-12-01T06:00Z",
            "--path",
            "emergency",
            "--subject",
            "svc-historian",
        ])?;
        let body = w.args.body()?;
        let json = serde_json::to_value(&body)?;
        assert_eq!(json["duration"], "1h30m");
        assert_eq!(json["path"], "emergency");
        assert_eq!(json["reference"], "WO-1");
        assert_eq!(json["subject"], "svc-historian");
        assert_eq!(json["start"], "2026-12-01T06:00:00Z");
        assert_eq!(json["scope"][0]["asset"], "plc-7");
        assert_eq!(json["scope"][0]["modbus"][1], "write coil 10-20 unit 1");
        Ok(())
    }

    #[test]
    fn bad_duration_and_start_are_usage_errors() {
        let base = [
            "x",
            "--asset",
            "plc-7",
            "--modbus",
            "read coil 1-2",
            "--reason",
            "r",
        ];
        let with = |extra: &[&str]| Wrap::try_parse_from(base.iter().chain(extra.iter()));
        let e = with(&["--for", "2 parsecs"]).err();
        assert_eq!(e.as_ref().map(clap::Error::exit_code), Some(2));
        assert!(e
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("30m, 2h or 1h30m"));
        let e = with(&["--for", "2h", "--start", "2026-12-01T06:00"]).err();
        assert!(e
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("no time zone"));
        assert!(with(&["--for", "2h", "--path", "whenever"]).is_err());
    }

    #[test]
    fn a_request_without_rules_is_refused_locally() -> Result<(), Box<dyn std::error::Error>> {
        let w = Wrap::try_parse_from(["x", "--asset", "plc-7", "--for", "2h", "--reason", "r"])?;
        let e = w.args.body().err().ok_or("should fail")?;
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--modbus"), "{e}");
        Ok(())
    }

    #[test]
    fn pending_request_reads_in_plain_words() {
        let v = testdata::request_view(RequestState::Pending);
        let out = render_request(&v, at(5, 45));
        for needle in [
            "request       req-1",
            "state         pending",
            "window        2026-12-01 06:00 UTC → 2026-12-01 08:00 UTC (2h)",
            "scope         Modbus read holding 0–99 on plc-7 (unit 1)",
            "              Modbus write coil 10–20 on plc-7 (unit 1)",
            "allowed by humans-planned",
            "needs 2 approvals from role engineer at the asset's site, step-up, max 2h",
            "approvals     1/2 (bob)",
            &v.request.scope_digest,
        ] {
            assert!(out.contains(needle), "missing {needle:?} in\n{out}");
        }
        assert_eq!(
            next_step(&v).as_deref(),
            Some("waiting for 1 more approval; approvers run `jitgate approve req-1`")
        );
    }

    #[test]
    fn denied_request_shows_reasons_not_obligations() {
        let mut v = testdata::request_view(RequestState::Denied);
        v.request.state_reason = v.request.decision.reasons.first().cloned();
        let out = render_request(&v, at(5, 45));
        assert!(
            out.contains("state         denied\n"),
            "reason said once, below: {out}"
        );
        assert!(out.contains("denied by guardrail-safety-writes"), "{out}");
        assert!(
            out.contains("writes to safety assets need the emergency path"),
            "{out}"
        );
        assert!(!out.contains("needs 2 approvals"), "{out}");
    }

    #[test]
    fn active_request_shows_grant_and_time_left() {
        let mut v = testdata::request_view(RequestState::Active);
        v.grant = Some(testdata::grant());
        let out = render_full(&v, at(6, 48));
        assert!(
            out.contains("grant         gr-1 active, expires 2026-12-01 08:00 UTC (1h 12m left)"),
            "{out}"
        );
        assert!(out.contains("bob"), "approvals table: {out}");
        assert!(out.contains("this scope"), "{out}");
        assert!(out.contains("remaining"), "grant detail: {out}");
    }

    #[test]
    fn table_has_one_row_per_request() {
        let views = vec![
            testdata::request_view(RequestState::Pending),
            testdata::request_view(RequestState::Denied),
        ];
        let out = requests_table(&views).to_string();
        assert!(out.contains("approvals"), "{out}");
        assert!(out.contains("1/2"), "{out}");
        assert!(out.contains("2026-12-01 06:00 UTC, 2h"), "{out}");
        assert_eq!(out.matches("req-1").count(), 2, "{out}");
    }

    #[test]
    fn preview_names_the_digest_being_approved() {
        let v = testdata::request_view(RequestState::Pending);
        let out = render_preview(&v);
        assert!(out.starts_with("Approving:\n"), "{out}");
        assert!(out.contains(&v.request.scope_digest), "{out}");
        assert!(out.contains("replace valve positioner [WO-1234]"), "{out}");
    }
}
