//! Standing exceptions: `exception request|list|show|revalidate|end` (docs/exceptions.md).

use super::http::{decode, CliError};
use super::text::{self, Detail};
use super::{usage, Ctx};
use crate::output::{out, outln};
use clap::{Args, Subcommand};
use jitgate_core::exception::{ExceptionState, ExceptionSummary};
use jitgate_core::scope::ScopeRequest;
use jitgate_server::api::types::{EndExceptionBody, NewExceptionBody, RevalidateBody};

/// `jitgate exception ...`
#[derive(Debug, Subcommand)]
pub enum ExceptionCmd {
    /// File a standing exception: narrow standing access with an owner, compensating
    /// controls, a hard expiry (at most 365 days) and a re-validation interval (1 to 90
    /// days). Policy decides it on the `standing` path and approvers approve it like any
    /// request; once active it ends by itself when re-validation is overdue or it expires.
    #[command(after_help = "Example:\n  \
        jitgate exception request --subject svc-historian --asset historian \\\n      \
        --modbus 'read holding 0-999' --expires-in 180d --revalidate-every 30d \\\n      \
        --owner sam --control 'sessions recorded, reviewed weekly' \\\n      \
        --control 'read-only by policy' --reason 'nightly historian export' --ref RA-17\n\n\
        The owner answers for the exception and re-validates it: a person, never the \
        subject nor anyone tied to it by ownership. Exits with 1 when policy denies it.")]
    Request(RequestArgs),

    /// List exceptions with their state, owner, next re-validation and expiry.
    #[command(after_help = "Examples:\n  jitgate exception list\n  \
        jitgate exception list --state active --owner sam\n  \
        jitgate exception list --state overdue --json")]
    List(ListArgs),

    /// Show one exception: terms, re-validations, uses (sessions under it) and last use.
    #[command(after_help = "Example:\n  jitgate exception show exc-k3m9x2p7qa4d")]
    Show {
        /// Exception id.
        exception: String,
    },

    /// Confirm an active exception is still needed, before it is due: the next due date
    /// moves to now + interval. Its owner, or security / admin staff; never its subject nor
    /// anyone tied to the subject by ownership.
    #[command(after_help = "Example:\n  \
        jitgate exception revalidate exc-k3m9x2p7qa4d --note 'export still feeds the QA report'\n\n\
        An exception whose re-validation is overdue has ended (revalidation_overdue): file a \
        new one.")]
    Revalidate {
        /// Exception id.
        exception: String,
        /// Why it is still needed (recorded in the evidence log).
        #[arg(long)]
        note: String,
    },

    /// End an exception now: an active one's grant is revoked and gateways cut its
    /// sessions; a pending one is withdrawn. Its owner, security / admin staff, or its
    /// subject.
    #[command(after_help = "Example:\n  \
        jitgate exception end exc-k3m9x2p7qa4d --reason 'export job retired'")]
    End {
        /// Exception id.
        exception: String,
        /// Why (recorded in the evidence log).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// Asset (its inventory id), e.g. historian.
    #[arg(long, value_name = "ASSET")]
    pub asset: String,
    /// Modbus rule, repeatable: 'read holding 0-99 unit 1'.
    #[arg(long, value_name = "RULE")]
    pub modbus: Vec<String>,
    /// DNP3 rule, repeatable: 'read class 0-3'.
    #[arg(long, value_name = "RULE")]
    pub dnp3: Vec<String>,
    /// SSH rule, repeatable: 'command <command line>'.
    #[arg(long, value_name = "RULE")]
    pub ssh: Vec<String>,
    /// Who holds the access (default: you), e.g. a workload you own.
    #[arg(long, value_name = "IDENTITY")]
    pub subject: Option<String>,
    /// Time to the hard end, e.g. 90d, 180d (at most 365d).
    #[arg(long, value_name = "DURATION")]
    pub expires_in: String,
    /// How often the owner re-validates it, e.g. 30d (1d to 90d).
    #[arg(long, value_name = "DURATION")]
    pub revalidate_every: String,
    /// The person accountable for it.
    #[arg(long, value_name = "IDENTITY")]
    pub owner: String,
    /// A compensating control, repeatable (at least one).
    #[arg(long = "control", value_name = "TEXT")]
    pub controls: Vec<String>,
    /// Why the access must stay standing.
    #[arg(long)]
    pub reason: String,
    /// Risk acceptance, change or work order id.
    #[arg(long = "ref", value_name = "ID")]
    pub reference: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only exceptions in this state: pending, active, overdue, denied, ended.
    #[arg(long, value_parser = parse_state)]
    pub state: Option<ExceptionState>,
    /// Only exceptions owned by this identity.
    #[arg(long, value_name = "IDENTITY")]
    pub owner: Option<String>,
    #[command(flatten)]
    pub page: super::PageArgs,
}

fn parse_state(s: &str) -> Result<ExceptionState, String> {
    ExceptionState::parse(s)
        .ok_or_else(|| "use one of pending, active, overdue, denied, ended".into())
}

impl RequestArgs {
    fn body(self) -> Result<NewExceptionBody, CliError> {
        if self.modbus.is_empty() && self.dnp3.is_empty() && self.ssh.is_empty() {
            return Err(CliError::Usage(format!(
                "say what standing access is needed on {}: add --modbus, --dnp3 or --ssh rules",
                self.asset
            )));
        }
        if self.controls.is_empty() {
            return Err(CliError::Usage(
                "name at least one compensating control: --control 'sessions recorded, reviewed weekly'"
                    .into(),
            ));
        }
        for (flag, value) in [
            ("--expires-in", &self.expires_in),
            ("--revalidate-every", &self.revalidate_every),
        ] {
            if humantime::parse_duration(value.trim()).is_err() {
                return Err(CliError::Usage(format!(
                    "{flag} {value:?} is not a duration: write it like 90d or 30d"
                )));
            }
        }
        Ok(NewExceptionBody {
            subject: self.subject,
            scope: vec![ScopeRequest {
                asset: self.asset,
                modbus: self.modbus,
                dnp3: self.dnp3,
                ssh: self.ssh,
            }],
            expires_in: self.expires_in,
            revalidate_every: self.revalidate_every,
            owner: self.owner,
            controls: self.controls,
            reason: self.reason,
            reference: self.reference.unwrap_or_default(),
        })
    }
}

pub async fn run(ctx: &Ctx, cmd: ExceptionCmd) -> anyhow::Result<()> {
    match cmd {
        ExceptionCmd::Request(args) => request(ctx, args).await,
        ExceptionCmd::List(args) => list(ctx, args).await,
        ExceptionCmd::Show { exception } => {
            let raw = ctx.http.get(&["exceptions", &exception], &[]).await?;
            print_one(ctx, raw)
        }
        ExceptionCmd::Revalidate { exception, note } => {
            if note.trim().is_empty() {
                return Err(usage("--note is empty: say why the access is still needed"));
            }
            let raw = ctx
                .http
                .post(
                    &["exceptions", &exception, "revalidate"],
                    &RevalidateBody { note },
                )
                .await?;
            print_one(ctx, raw)
        }
        ExceptionCmd::End { exception, reason } => {
            if reason.trim().is_empty() {
                return Err(usage("--reason is empty: say why the exception ends"));
            }
            let raw = ctx
                .http
                .post(
                    &["exceptions", &exception, "end"],
                    &EndExceptionBody { reason },
                )
                .await?;
            print_one(ctx, raw)
        }
    }
}

async fn request(ctx: &Ctx, args: RequestArgs) -> anyhow::Result<()> {
    let body = args.body()?;
    let raw = ctx.http.post(&["exceptions"], &body).await?;
    let denied = raw.get("state").and_then(|s| s.as_str()) == Some(ExceptionState::Denied.as_str());
    print_one(ctx, raw)?;
    if denied {
        return Err(CliError::Reported.into());
    }
    Ok(())
}

async fn list(ctx: &Ctx, args: ListArgs) -> anyhow::Result<()> {
    let mut query = Vec::new();
    if let Some(s) = args.state {
        query.push(("state", s.as_str().to_string()));
    }
    if let Some(o) = &args.owner {
        query.push(("owner", o.clone()));
    }
    let raw = ctx.list(&["exceptions"], &query, &args.page).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let views: Vec<ExceptionSummary> = decode(raw)?;
    if views.is_empty() {
        outln!("no exceptions match");
    } else {
        outln!("{}", table(&views));
    }
    Ok(())
}

fn print_one(ctx: &Ctx, raw: serde_json::Value) -> anyhow::Result<()> {
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let s: ExceptionSummary = decode(raw)?;
    out!("{}", render(&s));
    Ok(())
}

pub fn table(views: &[ExceptionSummary]) -> comfy_table::Table {
    let mut t = text::table(&[
        "exception",
        "state",
        "subject",
        "assets",
        "owner",
        "next re-validation",
        "expires",
        "uses",
    ]);
    for s in views {
        t.add_row(vec![
            s.id.clone(),
            s.state.as_str().to_string(),
            s.subject.clone(),
            s.assets.join(", "),
            s.owner.clone(),
            text::time(s.next_revalidation),
            text::time(s.expires_at),
            s.uses.to_string(),
        ]);
    }
    t
}

pub fn render(s: &ExceptionSummary) -> String {
    let mut d = Detail::new();
    d.row("exception", s.id.clone())
        .row("state", s.state.as_str())
        .row("subject", s.subject.clone())
        .row("requester", s.requester.clone())
        .row("owner", s.owner.clone())
        .lines("scope", &s.scope)
        .row("reason", s.reason.clone())
        .row(
            "reference",
            text::list_or_dash(std::slice::from_ref(&s.reference)),
        )
        .lines("controls", &s.controls)
        .row(
            "re-validate every",
            text::humane_secs(s.revalidate_every_secs),
        )
        .row("next re-validation", text::time(s.next_revalidation))
        .row("expires", text::time(s.expires_at))
        .row("request", s.request_id.clone());
    if let Some(g) = &s.grant_id {
        d.row("grant", g.clone());
    }
    if let (Some(at), Some(by)) = (s.last_revalidated_at, &s.last_revalidated_by) {
        d.row("last re-validated", format!("{} by {by}", text::time(at)));
    }
    d.row("uses", s.uses.to_string());
    d.row(
        "last use",
        s.last_use.map_or_else(|| "never".to_string(), text::time),
    );
    if let Some(r) = &s.end_reason {
        d.row("ended", r.clone());
    }
    if let Some(r) = &s.state_reason {
        d.row("why", r.clone());
    }
    d.render()
}
