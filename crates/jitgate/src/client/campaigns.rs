//! Post-session attestation and review campaigns: `attest` (the subject says what was
//! done), `attestations` (given, or `--missing`), `campaign open|list|show|decide|close`.

use super::http::decode;
use super::text::{self, Detail};
use super::{usage, Ctx};
use crate::output::{out, outln};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use jitgate_core::attestation::AttestationInput;
use jitgate_core::campaign::{DecisionEffect, ItemDecision, ItemKind};
use jitgate_core::Timestamp;
use jitgate_server::api::campaigns::DecisionBody;
use jitgate_server::attestations::AttestationView;
use jitgate_server::campaigns::{CampaignItemView, CampaignView, OpenCampaignBody};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("outcome").required(true).args(["done", "not_done"])))]
pub struct AttestArgs {
    /// Grant id (ended: attest after the session).
    pub grant: String,
    /// The task the access was for is done.
    #[arg(long)]
    pub done: bool,
    /// The task is not done (say why in --note).
    #[arg(long)]
    pub not_done: bool,
    /// One change made (repeat for each; none when nothing was changed).
    #[arg(long = "change", value_name = "TEXT")]
    pub changes: Vec<String>,
    /// Anything else the reviewer should know.
    #[arg(long, default_value = "")]
    pub note: String,
}

#[derive(Debug, Args)]
pub struct AttestationsArgs {
    /// The required attestations missing (not given within the grace period after the
    /// grant ended) instead of those given.
    #[arg(long)]
    pub missing: bool,
    #[command(flatten)]
    pub page: super::PageArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DecisionArg {
    /// Acceptable as it is.
    Keep,
    /// Acceptable but too wide: say in --note what to narrow.
    Narrow,
    /// Not acceptable: ended at once (an active grant is revoked).
    End,
}

#[derive(Debug, Subcommand)]
pub enum CampaignCmd {
    /// Open a campaign over a period: lists only what needs judgement (break-glass grants,
    /// partial or failed teardowns, missing attestations, exceptions, findings).
    #[command(after_help = "Example:\n  \
        jitgate campaign open --from 2026-11-01T00:00Z --to 2026-12-01T00:00Z --site north")]
    Open {
        /// Start of the period (UTC like 2026-11-01T00:00Z, or RFC 3339).
        #[arg(long, value_name = "TIME", value_parser = text::parse_start)]
        from: Timestamp,
        /// End of the period (exclusive).
        #[arg(long, value_name = "TIME", value_parser = text::parse_start)]
        to: Timestamp,
        /// Only items on this site's assets.
        #[arg(long)]
        site: Option<String>,
    },
    /// List campaigns with their progress.
    #[command(after_help = "Example:\n  jitgate campaign list --limit 20")]
    List(super::PageArgs),
    /// Show a campaign and its items with their keys and decisions.
    #[command(after_help = "Example:\n  jitgate campaign show campaign-k3m9x2p7qa4d")]
    Show {
        /// Campaign id.
        campaign: String,
    },
    /// Decide one item: keep, narrow or end, with a note.
    #[command(after_help = "Examples:\n  \
        jitgate campaign decide campaign-k3m9x2p7qa4d break_glass:grant-7hq2m4x9wd3c \\\n      \
        --decision end --note 'no incident number; access still open'\n  \
        jitgate campaign decide campaign-k3m9x2p7qa4d teardown:grant-4tx9m2kq7hbc \\\n      \
        --decision keep --note 'local account password rotated, CH-88'")]
    Decide {
        /// Campaign id.
        campaign: String,
        /// Item key, as `campaign show` prints it (e.g. break_glass:grant-…).
        item: String,
        #[arg(long, value_enum)]
        decision: DecisionArg,
        /// What was checked and why this decision (required).
        #[arg(long)]
        note: String,
    },
    /// Close a campaign once every item is decided.
    #[command(after_help = "Example:\n  jitgate campaign close campaign-k3m9x2p7qa4d")]
    Close {
        /// Campaign id.
        campaign: String,
    },
}

pub async fn attest(ctx: &Ctx, args: AttestArgs) -> anyhow::Result<()> {
    let body = AttestationInput {
        task_done: args.done,
        changes: args.changes,
        note: args.note,
    };
    let raw = ctx
        .http
        .post(&["grants", &args.grant, "attestation"], &body)
        .await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let v: AttestationView = decode(raw)?;
    outln!(
        "attested grant {}: task {}, {} change(s)",
        v.grant_id,
        if v.task_done == Some(true) {
            "done"
        } else {
            "not done"
        },
        v.changes.len()
    );
    Ok(())
}

pub async fn attestations(ctx: &Ctx, args: AttestationsArgs) -> anyhow::Result<()> {
    let mut query = Vec::new();
    if args.missing {
        query.push(("missing", "true".to_string()));
    }
    let raw = ctx.list(&["attestations"], &query, &args.page).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let views: Vec<AttestationView> = decode(raw)?;
    if views.is_empty() {
        outln!(
            "{}",
            if args.missing {
                "no attestation is missing"
            } else {
                "no attestations"
            }
        );
    } else {
        outln!("{}", attestations_table(&views));
    }
    Ok(())
}

pub async fn campaign(ctx: &Ctx, cmd: CampaignCmd) -> anyhow::Result<()> {
    match cmd {
        CampaignCmd::Open { from, to, site } => {
            let body = OpenCampaignBody {
                period_start: from,
                period_end: to,
                site,
            };
            let raw = ctx.http.post(&["campaigns"], &body).await?;
            if ctx.printed_json(&raw) {
                return Ok(());
            }
            let c: CampaignView = decode(raw)?;
            out!("{}", render_campaign(&c));
        }
        CampaignCmd::List(page) => {
            let raw = ctx.list(&["campaigns"], &[], &page).await?;
            if ctx.printed_json(&raw) {
                return Ok(());
            }
            let views: Vec<CampaignView> = decode(raw)?;
            if views.is_empty() {
                outln!("no campaigns");
            } else {
                outln!("{}", campaigns_table(&views));
            }
        }
        CampaignCmd::Show { campaign } => {
            let raw = ctx.http.get(&["campaigns", &campaign], &[]).await?;
            if ctx.printed_json(&raw) {
                return Ok(());
            }
            let c: CampaignView = decode(raw)?;
            out!("{}", render_campaign(&c));
        }
        CampaignCmd::Decide {
            campaign,
            item,
            decision,
            note,
        } => {
            if note.trim().is_empty() {
                return Err(usage("--note is required: say what was checked and why"));
            }
            let body = DecisionBody {
                decision: match decision {
                    DecisionArg::Keep => ItemDecision::Keep,
                    DecisionArg::Narrow => ItemDecision::Narrow,
                    DecisionArg::End => ItemDecision::End,
                },
                note,
            };
            let raw = ctx
                .http
                .post(&["campaigns", &campaign, "items", &item, "decision"], &body)
                .await?;
            if ctx.printed_json(&raw) {
                return Ok(());
            }
            let i: CampaignItemView = decode(raw)?;
            outln!(
                "{}: {} — {}",
                i.key,
                i.decision.map_or("?", ItemDecision::as_str),
                i.effect.as_ref().map_or_else(String::new, effect_words)
            );
        }
        CampaignCmd::Close { campaign } => {
            let raw = ctx
                .http
                .post_empty(&["campaigns", &campaign, "close"])
                .await?;
            if ctx.printed_json(&raw) {
                return Ok(());
            }
            let c: CampaignView = decode(raw)?;
            outln!("closed campaign {} ({} items decided)", c.id, c.decided);
        }
    }
    Ok(())
}

pub fn effect_words(e: &DecisionEffect) -> String {
    match e {
        DecisionEffect::RecordOnly => "recorded".into(),
        DecisionEffect::RevokeGrant { grant_id } => format!("grant {grant_id} revoked"),
        DecisionEffect::GrantAlreadyEnded { grant_id } => {
            format!("grant {grant_id} had ended already")
        }
        DecisionEffect::EndException { id } => format!("exception {id} ended"),
        DecisionEffect::NarrowException { id } => format!("exception {id} to be narrowed"),
        DecisionEffect::EndFinding { id } => format!("finding {id} acted on"),
    }
}

fn kind_words(k: &ItemKind) -> &'static str {
    match k {
        ItemKind::BreakGlass { .. } => "break-glass",
        ItemKind::Teardown { .. } => "teardown",
        ItemKind::MissingAttestation { .. } => "missing attestation",
        ItemKind::Exception { .. } => "exception",
        ItemKind::Finding { .. } => "finding",
    }
}

pub fn attestations_table(views: &[AttestationView]) -> comfy_table::Table {
    let mut t = text::table(&[
        "grant", "subject", "state", "required", "by", "task", "changes", "note",
    ]);
    for a in views {
        t.add_row(vec![
            a.grant_id.clone(),
            a.subject.clone(),
            a.state.clone(),
            if a.required { "yes" } else { "no" }.to_string(),
            a.attester.clone().unwrap_or_else(|| "-".into()),
            match a.task_done {
                Some(true) => "done".into(),
                Some(false) => "not done".into(),
                None => "-".into(),
            },
            text::truncate(&text::list_or_dash(&a.changes), 40),
            a.note
                .as_deref()
                .filter(|n| !n.is_empty())
                .map_or_else(|| "-".to_string(), |n| text::truncate(n, 40)),
        ]);
    }
    t
}

pub fn campaigns_table(views: &[CampaignView]) -> comfy_table::Table {
    let mut t = text::table(&[
        "campaign",
        "period",
        "site",
        "state",
        "decided",
        "opened by",
    ]);
    for c in views {
        t.add_row(vec![
            c.id.clone(),
            format!(
                "{} – {}",
                text::time(c.period_start),
                text::time(c.period_end)
            ),
            c.site.clone().unwrap_or_else(|| "all".into()),
            c.state.as_str().to_string(),
            format!("{}/{}", c.decided, c.total),
            c.opened_by.clone(),
        ]);
    }
    t
}

/// A campaign in full: its facts, then one block per item.
pub fn render_campaign(c: &CampaignView) -> String {
    let mut d = Detail::new();
    d.row("campaign", c.id.clone())
        .row(
            "period",
            format!(
                "{} – {}",
                text::time(c.period_start),
                text::time(c.period_end)
            ),
        )
        .row("site", c.site.clone().unwrap_or_else(|| "all".into()))
        .row("state", c.state.as_str())
        .row("progress", format!("{}/{} decided", c.decided, c.total))
        .row(
            "opened",
            format!("{} by {}", text::time(c.opened_at), c.opened_by),
        );
    if let (Some(by), Some(at)) = (&c.closed_by, c.closed_at) {
        d.row("closed", format!("{} by {by}", text::time(at)));
    }
    let mut out = d.render();
    if c.items.is_empty() {
        out.push_str("\nnothing to review in this period\n");
    }
    for i in &c.items {
        let mut d = Detail::new();
        d.row("item", i.key.clone())
            .row("kind", kind_words(&i.kind))
            .row("subject", i.subject.clone())
            .row("what", i.summary.clone());
        match i.decision {
            Some(dec) => {
                d.row("decision", dec.as_str());
                if let Some(r) = &i.reviewer {
                    d.row("by", r.clone());
                }
                if let Some(n) = &i.note {
                    d.row("note", n.clone());
                }
                if let Some(e) = &i.effect {
                    d.row("effect", effect_words(e));
                }
            }
            None => {
                d.row("decision", "undecided");
            }
        }
        out.push('\n');
        out.push_str(&d.render());
    }
    out
}
