//! Review campaigns, carried out: gathering a period's items ([`collect_campaign_items`]),
//! opening, deciding (with "end" acting at once in the decision's transaction), closing.
//! What the items are, what a decision does and who may decide are the core's
//! (`jitgate_core::campaign`); this loads the facts, asks, and applies the answer with its
//! events (`campaign.opened`, `campaign.item_decided`, `campaign.closed`).

use crate::auth::Caller;
use crate::error::{ApiResult, ServerError};
use crate::paging::{PageRequest, Paged};
use crate::state::AppState;
use jitgate_core::campaign::{
    self, CampaignClosed, CampaignItemDecided, CampaignOpened, CampaignState, DecisionEffect,
    ItemDecision, ItemKind, ItemParties,
};
use jitgate_core::event::{rfc3339, Actor, Event};
use jitgate_core::exception::ExceptionState;
use jitgate_core::findings::Finding;
use jitgate_core::teardown::TeardownVerdict;
use jitgate_core::{Grant, GrantState, Timestamp};
use jitgate_store::{CampaignItemRecord, CampaignRecord, ExceptionFilter, GrantFilter, Tx};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /campaigns`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenCampaignBody {
    /// Start of the period reviewed (inclusive).
    #[schema(value_type = String, format = DateTime)]
    pub period_start: Timestamp,
    /// End of the period reviewed (exclusive); not later than now.
    #[schema(value_type = String, format = DateTime)]
    pub period_end: Timestamp,
    /// Only items on this site's assets (exceptions and findings: of this site).
    #[serde(default)]
    pub site: Option<String>,
}

/// One campaign item as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CampaignItemView {
    /// Unique within the campaign, e.g. `break_glass:grant-…`.
    pub key: String,
    pub kind: ItemKind,
    pub subject: String,
    pub summary: String,
    #[serde(default)]
    pub decision: Option<ItemDecision>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub effect: Option<DecisionEffect>,
    #[serde(default)]
    pub reviewer: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<Timestamp>,
}

/// A campaign with its progress (and, from `GET /campaigns/{id}`, its items).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CampaignView {
    pub id: String,
    #[schema(value_type = String, format = DateTime)]
    pub period_start: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub period_end: Timestamp,
    #[serde(default)]
    pub site: Option<String>,
    pub state: CampaignState,
    pub opened_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub opened_at: Timestamp,
    #[serde(default)]
    pub closed_by: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<Timestamp>,
    /// How many items it lists, and how many are decided.
    pub total: usize,
    pub decided: usize,
    /// The items (left out of lists).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<CampaignItemView>,
}

fn item_view(i: CampaignItemRecord) -> CampaignItemView {
    CampaignItemView {
        key: i.key,
        kind: i.kind,
        subject: i.subject,
        summary: i.summary,
        decision: i.decision,
        note: i.note,
        effect: i.effect,
        reviewer: i.reviewer,
        decided_at: i.decided_at,
    }
}

fn campaign_view(
    c: CampaignRecord,
    items: Vec<CampaignItemRecord>,
    with_items: bool,
) -> CampaignView {
    let total = items.len();
    let decided = items.iter().filter(|i| i.decision.is_some()).count();
    CampaignView {
        id: c.id,
        period_start: c.period_start,
        period_end: c.period_end,
        site: c.site,
        state: c.state,
        opened_by: c.opened_by,
        opened_at: c.opened_at,
        closed_by: c.closed_by,
        closed_at: c.closed_at,
        total,
        decided,
        items: if with_items {
            items.into_iter().map(item_view).collect()
        } else {
            Vec::new()
        },
    }
}

/// Campaigns are opened, decided and closed by security staff and admins; auditors see them.
fn may_run(caller: &Caller) -> ApiResult<()> {
    if campaign::REVIEWER_ROLES
        .iter()
        .any(|r| caller.identity.has_role(r))
    {
        Ok(())
    } else {
        Err(ServerError::Forbidden(format!(
            "{} lacks the `security` or `admin` role needed to run review campaigns",
            caller.id()
        )))
    }
}

fn may_see(caller: &Caller) -> ApiResult<()> {
    if caller.sees_everything() {
        Ok(())
    } else {
        Err(ServerError::Forbidden(format!(
            "{} may not see review campaigns: they are for security staff, admins and auditors",
            caller.id()
        )))
    }
}

/// Does grant `g` touch `site` (any of its assets there)? Without a site, every grant does.
async fn on_site(tx: &mut Tx, g: &Grant, site: Option<&str>) -> ApiResult<bool> {
    let Some(site) = site else {
        return Ok(true);
    };
    for id in g.scope.assets() {
        if tx.get_asset(&id).await?.is_some_and(|a| a.site == site) {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn load_grant(tx: &mut Tx, id: &str) -> ApiResult<Grant> {
    tx.get_grant(id)
        .await?
        .ok_or_else(|| ServerError::not_found("grant", id))
}

/// Every item a campaign over `[from, to)` (on `site`, if given) lists at `now` — and only
/// those: standing exceptions, findings, break-glass grants, `partial`/`failed` teardowns,
/// missing attestations. A grant requested, approved, used and torn down as designed is
/// never listed. Items come in that order, each source oldest first.
pub async fn collect_campaign_items(
    tx: &mut Tx,
    state: &AppState,
    from: Timestamp,
    to: Timestamp,
    site: Option<&str>,
    now: Timestamp,
    findings: &[Finding],
) -> ApiResult<Vec<CampaignItemRecord>> {
    let mut items = Vec::new();
    let mut push = |kind: ItemKind, subject: &str, summary: String| {
        items.push(CampaignItemRecord {
            campaign_id: String::new(),
            key: kind.key(),
            kind,
            subject: subject.to_string(),
            summary,
            decision: None,
            note: None,
            effect: None,
            reviewer: None,
            decided_at: None,
        });
    };

    // Standing exceptions in force now (active, or overdue and about to end) and filed
    // before the period ended: each is re-decided — keep, narrow, end.
    let mut after: Option<String> = None;
    loop {
        let filter = ExceptionFilter {
            after: after.clone(),
            ..ExceptionFilter::default()
        };
        let page = crate::exceptions::summaries(tx, &filter, now).await?;
        let Some(last) = page.last().map(|e| e.id.clone()) else {
            break;
        };
        for e in &page {
            if !matches!(e.state, ExceptionState::Active | ExceptionState::Overdue)
                || e.created_at >= to
            {
                continue;
            }
            if let Some(site) = site {
                let mut here = false;
                for a in &e.assets {
                    here |= tx.get_asset(a).await?.is_some_and(|x| x.site == site);
                }
                if !here {
                    continue;
                }
            }
            push(
                ItemKind::Exception { id: e.id.clone() },
                &e.subject,
                format!(
                    "standing exception of {} on {} (owner {}, controls: {}); next re-validation {}, expires {}; {} uses{}",
                    e.subject,
                    e.assets.join(", "),
                    e.owner,
                    e.controls.join("; "),
                    rfc3339(e.next_revalidation),
                    rfc3339(e.expires_at),
                    e.uses,
                    e.last_use.map(|t| format!(", last {}", rfc3339(t))).unwrap_or_default()
                ),
            );
        }
        after = Some(last);
    }

    // The findings of the period's evidence (shared accounts, rubber-stamping, JIT that
    // became standing), each about its first subject; on a site, those about its assets
    // and those about no asset (rubber-stamping is not bound to one).
    for f in findings {
        if let (Some(site), Some(asset)) = (site, f.asset.as_deref()) {
            if tx.get_asset(asset).await?.is_none_or(|a| a.site != site) {
                continue;
            }
        }
        let Some(subject) = f.subjects.first() else {
            continue;
        };
        let cited: Vec<String> = f.evidence.seqs.iter().map(|s| format!("#{s}")).collect();
        push(
            ItemKind::Finding {
                id: f.id.clone(),
                finding: f.kind.as_str().to_string(),
            },
            subject,
            format!("{} (evidence {})", f.summary, cited.join(", ")),
        );
    }

    for id in tx.emergency_grants_in(from, to).await? {
        let g = load_grant(tx, &id).await?;
        if !on_site(tx, &g, site).await? {
            continue;
        }
        let r = tx.get_request(&g.request_id).await?;
        let why = r
            .map(|r| {
                format!(
                    "reason {:?}, reference {:?}, requested by {}",
                    r.reason, r.reference, r.requester
                )
            })
            .unwrap_or_default();
        push(
            ItemKind::BreakGlass {
                grant_id: g.id.clone(),
            },
            &g.subject,
            format!(
                "break-glass access of {} to {} at {} without approval ({why})",
                g.subject,
                g.scope.assets().join(", "),
                rfc3339(g.created_at)
            ),
        );
    }
    for (id, verdict) in tx.unverified_teardowns_in(from, to).await? {
        let verdict = match verdict.as_str() {
            "partial" => TeardownVerdict::Partial,
            "failed" => TeardownVerdict::Failed,
            other => {
                return Err(ServerError::Internal(format!(
                    "teardown of grant {id}: unexpected verdict {other:?}"
                )))
            }
        };
        let g = load_grant(tx, &id).await?;
        if !on_site(tx, &g, site).await? {
            continue;
        }
        let what = match verdict {
            TeardownVerdict::Partial => {
                "partial: a legacy asset keeps local accounts; check its compensating controls"
            }
            _ => "failed: the end of access could not be proven",
        };
        push(
            ItemKind::Teardown {
                grant_id: g.id.clone(),
                verdict,
            },
            &g.subject,
            format!(
                "teardown of {}'s grant on {} {what}",
                g.subject,
                g.scope.assets().join(", ")
            ),
        );
    }
    for a in crate::attestations::missing_in(tx, state, from, to, now).await? {
        let g = load_grant(tx, &a.grant_id).await?;
        if !on_site(tx, &g, site).await? {
            continue;
        }
        let ended = g.ended_at.map(rfc3339).unwrap_or_default();
        push(
            ItemKind::MissingAttestation { grant_id: g.id.clone() },
            &g.subject,
            format!(
                "{} did not attest what was done under the grant on {} (ended {ended}); the policy required it",
                g.subject,
                g.scope.assets().join(", ")
            ),
        );
    }
    Ok(items)
}

/// Open a campaign over the body's period with the items gathered now.
pub async fn open(
    state: &AppState,
    caller: &Caller,
    body: OpenCampaignBody,
) -> ApiResult<CampaignView> {
    may_run(caller)?;
    let now = state.clock.now();
    campaign::check_period(body.period_start, body.period_end, now)?;
    // Findings read the log once, before the write transaction opens.
    let findings = crate::findings::period_findings(state, body.period_start, body.period_end)
        .await?
        .findings;
    let mut tx = state.store.write().await?;
    if let Some(site) = &body.site {
        if tx.get_site(site).await?.is_none() {
            return Err(ServerError::not_found("site", site));
        }
    }
    let id = crate::ids::new_id("campaign");
    let mut items = collect_campaign_items(
        &mut tx,
        state,
        body.period_start,
        body.period_end,
        body.site.as_deref(),
        now,
        &findings,
    )
    .await?;
    for i in &mut items {
        i.campaign_id = id.clone();
    }
    let record = CampaignRecord {
        id: id.clone(),
        period_start: body.period_start,
        period_end: body.period_end,
        site: body.site.clone(),
        state: CampaignState::Open,
        opened_by: caller.id().to_string(),
        opened_at: now,
        closed_by: None,
        closed_at: None,
    };
    tx.insert_campaign(&record, &items).await?;
    let opened = CampaignOpened {
        campaign_id: id.clone(),
        period_start: body.period_start,
        period_end: body.period_end,
        site: body.site,
        items: items.iter().map(|i| i.key.clone()).collect(),
    };
    tx.append_events(&[Event::with_payload(
        Actor::identity(caller.id()),
        now,
        &opened,
    )?])
    .await?;
    tx.commit().await?;
    Ok(campaign_view(record, items, true))
}

/// One page of campaigns, newest first.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    page: &PageRequest,
) -> ApiResult<Paged<CampaignView>> {
    may_see(caller)?;
    let mut tx = state.store.read().await?;
    let rows = tx
        .list_campaigns(page.after.as_deref(), page.limit as i64 + 1)
        .await?;
    let more = rows.len() > page.limit;
    let mut items = Vec::new();
    for c in rows.into_iter().take(page.limit) {
        let of = tx.list_campaign_items(&c.id).await?;
        items.push(campaign_view(c, of, false));
    }
    Ok(Paged { items, more })
}

/// One campaign with its items.
pub async fn get(state: &AppState, caller: &Caller, id: &str) -> ApiResult<CampaignView> {
    may_see(caller)?;
    let mut tx = state.store.read().await?;
    let c = tx
        .get_campaign(id)
        .await?
        .ok_or_else(|| ServerError::not_found("campaign", id))?;
    let items = tx.list_campaign_items(id).await?;
    Ok(campaign_view(c, items, true))
}

/// Refuse a reviewer conflicted on the item (the core's rule over its parties as the
/// inventory has them now); returns the item's grant, for the kinds about one.
async fn refuse_if_conflicted(
    tx: &mut Tx,
    caller: &Caller,
    item: &CampaignItemRecord,
) -> ApiResult<Option<Grant>> {
    // An exception: its request's parties decide the conflicts, and its owner — whose
    // re-validation is under review — does not review it.
    if let ItemKind::Exception { id } = &item.kind {
        let ex = tx
            .get_exception(id)
            .await?
            .ok_or_else(|| ServerError::not_found("exception", id))?;
        if ex.owner == caller.id() {
            return Err(jitgate_core::CoreError::NotEligible(format!(
                "{} owns exception {id}: its re-validation is theirs, its review is someone else's",
                caller.id()
            ))
            .into());
        }
        let r = tx
            .get_request(&ex.request_id)
            .await?
            .ok_or_else(|| ServerError::not_found("request", &ex.request_id))?;
        let requester = tx.get_identity(&r.requester).await?;
        let subject = tx.get_identity(&r.subject).await?;
        let parties = ItemParties::Grant {
            request: &r,
            requester: requester.as_ref(),
            subject: subject.as_ref(),
            exception_owner: Some(&ex.owner),
        };
        return match campaign::may_decide(&caller.identity, &parties) {
            Ok(()) => Ok(None),
            Err(refusal) => Err(refusal.into_error(caller.id(), &item.key).into()),
        };
    }
    let refusal = match item.kind.grant_id() {
        Some(gid) => {
            let g = load_grant(tx, gid).await?;
            let r = tx
                .get_request(&g.request_id)
                .await?
                .ok_or_else(|| ServerError::not_found("request", &g.request_id))?;
            let requester = tx.get_identity(&r.requester).await?;
            let subject = tx.get_identity(&r.subject).await?;
            let exception_owner = crate::parties::exception_owner(tx, &r).await?;
            let parties = ItemParties::Grant {
                request: &r,
                requester: requester.as_ref(),
                subject: subject.as_ref(),
                exception_owner: exception_owner.as_deref(),
            };
            match campaign::may_decide(&caller.identity, &parties) {
                Ok(()) => return Ok(Some(g)),
                Err(refusal) => refusal,
            }
        }
        None => {
            let subject = tx.get_identity(&item.subject).await?;
            let parties = ItemParties::Subject {
                id: &item.subject,
                identity: subject.as_ref(),
            };
            match campaign::may_decide(&caller.identity, &parties) {
                Ok(()) => return Ok(None),
                Err(refusal) => refusal,
            }
        }
    };
    Err(refusal.into_error(caller.id(), &item.key).into())
}

/// Decide one item: keep, narrow or end, with a note. "End" acts in the same transaction
/// (an active grant is revoked; its gateways are told right after the commit).
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    id: &str,
    key: &str,
    decision: ItemDecision,
    note: &str,
) -> ApiResult<CampaignItemView> {
    let note = note.trim();
    campaign::check_note(note)?;
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
    let c = tx
        .get_campaign(id)
        .await?
        .ok_or_else(|| ServerError::not_found("campaign", id))?;
    let items = tx.list_campaign_items(id).await?;
    let item = items
        .into_iter()
        .find(|i| i.key == key)
        .ok_or(ServerError::NotFound {
            what: "campaign item",
            id: key.to_string(),
            hint: "`jitgate campaign show CAMPAIGN` lists its items with their keys",
        })?;
    campaign::may_record(id, c.state, key, item.decision)?;
    let grant = refuse_if_conflicted(&mut tx, caller, &item).await?;
    let effect = campaign::effect_of(&item.kind, decision, grant.as_ref().map(|g| g.state))?;
    let mut to_push = Vec::new();
    match (&effect, grant) {
        (DecisionEffect::RevokeGrant { .. }, Some(g)) => {
            let why = format!("review campaign {id}, item {key}: {note}");
            to_push =
                crate::service::revoke_in_tx(&mut tx, state, g, caller.id(), why, now).await?;
        }
        (DecisionEffect::EndException { id: exception_id }, _) => {
            let why = format!("review campaign {id}, item {key}: {note}");
            let (_, pushed) = crate::exceptions::end_exception_in_tx(
                &mut tx,
                state,
                &caller.identity,
                exception_id,
                &why,
                now,
            )
            .await?;
            to_push = pushed;
        }
        // Narrowing is the owner's to do: a narrower exception is filed and approved like
        // any other; the decision is recorded and the current one stays until then.
        (DecisionEffect::NarrowException { .. }, _) => {}
        // Ending a finding ends the access it is about, at once: every active grant of its
        // subject (on the finding's asset, when it names one). Disabling the identity or
        // its keys stays an administrator's act (`jitgate identities disable`).
        (DecisionEffect::EndFinding { id: finding }, _) => {
            let asset = finding.rsplit_once('@').map(|(_, a)| a.to_string());
            let active = tx
                .list_grants(&GrantFilter {
                    state: Some(GrantState::Active),
                    subject: Some(item.subject.clone()),
                    ..GrantFilter::default()
                })
                .await?;
            for g in active {
                if asset
                    .as_deref()
                    .is_some_and(|a| !g.scope.assets().iter().any(|x| x == a))
                {
                    continue;
                }
                let why = format!("review campaign {id}, item {key}: {note}");
                to_push.extend(
                    crate::service::revoke_in_tx(&mut tx, state, g, caller.id(), why, now).await?,
                );
            }
        }
        _ => {}
    }
    let decided = CampaignItemRecord {
        decision: Some(decision),
        note: Some(note.to_string()),
        effect: Some(effect.clone()),
        reviewer: Some(caller.id().to_string()),
        decided_at: Some(now),
        ..item
    };
    tx.decide_campaign_item(&decided).await?;
    let mut event = Event::with_payload(
        Actor::identity(caller.id()),
        now,
        &CampaignItemDecided {
            campaign_id: id.to_string(),
            item: decided.kind.clone(),
            decision,
            note: note.to_string(),
            effect,
        },
    )?;
    if let Some(gid) = decided.kind.grant_id() {
        event = event.grant(gid);
    }
    tx.append_events(&[event]).await?;
    tx.commit().await?;
    crate::effects::push_after_commit(state, &to_push).await;
    Ok(item_view(decided))
}

/// Close a campaign whose every item is decided.
pub async fn close(state: &AppState, caller: &Caller, id: &str) -> ApiResult<CampaignView> {
    may_run(caller)?;
    let now = state.clock.now();
    let mut tx = state.store.write().await?;
    let c = tx
        .get_campaign(id)
        .await?
        .ok_or_else(|| ServerError::not_found("campaign", id))?;
    let items = tx.list_campaign_items(id).await?;
    let decided = items.iter().filter(|i| i.decision.is_some()).count();
    campaign::may_close(id, c.state, items.len(), decided)?;
    tx.close_campaign(id, caller.id(), now).await?;
    let count = |d: ItemDecision| items.iter().filter(|i| i.decision == Some(d)).count();
    let closed = CampaignClosed {
        campaign_id: id.to_string(),
        kept: count(ItemDecision::Keep),
        narrowed: count(ItemDecision::Narrow),
        ended: count(ItemDecision::End),
    };
    tx.append_events(&[Event::with_payload(
        Actor::identity(caller.id()),
        now,
        &closed,
    )?])
    .await?;
    tx.commit().await?;
    let c = CampaignRecord {
        state: CampaignState::Closed,
        closed_by: Some(caller.id().to_string()),
        closed_at: Some(now),
        ..c
    };
    Ok(campaign_view(c, items, true))
}
