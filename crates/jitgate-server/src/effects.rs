//! Carrying out what the core's transitions decide (`jitgate_core::lifecycle::Effect`):
//! notices and reviews in the transition's own transaction, revocations right after its
//! commit. The server decides none of them; it only knows how to do each.

use crate::error::ApiResult;
use crate::state::AppState;
use jitgate_core::lifecycle::{Effect, Outcome, ReviewReason};
use jitgate_core::Grant;
use jitgate_store::Tx;
use serde_json::{json, Value};

/// Carry out `out`'s effects that belong in its transaction, `tx`. Returns the grants whose
/// revocations the caller pushes after the commit ([`push_after_commit`]).
/// `review_details` gives the details a review of each reason records (what the reviewer
/// should look at); break-glass reviews describe the request themselves.
pub async fn apply_in_tx(
    tx: &mut Tx,
    state: &AppState,
    out: &Outcome,
    review_details: impl Fn(ReviewReason) -> Value,
) -> ApiResult<Vec<Grant>> {
    let mut to_push = Vec::new();
    for effect in &out.effects {
        match (effect, &out.grant) {
            (Effect::AskApprovers, _) => {
                crate::notify::ask_approvers(tx, state, &out.request).await?
            }
            (Effect::AnnounceGrant, Some(g)) => {
                crate::notify::announce_grant(tx, state, &out.request, g).await?
            }
            (Effect::OpenReview(reason), Some(g)) => {
                let details = match reason {
                    ReviewReason::BreakGlass => json!({
                        "why": "break-glass access was used without approval",
                        "requester": out.request.requester,
                        "reason": out.request.reason,
                        "reference": out.request.reference,
                    }),
                    other => review_details(*other),
                };
                crate::reviews::open_review(tx, state, g, *reason, details).await?;
            }
            (Effect::PushRevocation, Some(g)) => to_push.push(g.clone()),
            // Effects about a grant come only with one; nothing to do otherwise.
            (_, None) => {}
        }
    }
    Ok(to_push)
}

/// After the commit: push the revocations [`apply_in_tx`] collected.
pub async fn push_after_commit(state: &AppState, grants: &[Grant]) {
    if !grants.is_empty() {
        crate::revocations::push_revocations(state, grants).await;
    }
}

/// No details beyond the grant (for transitions that open no review but break-glass).
pub fn no_details(_: ReviewReason) -> Value {
    Value::Null
}
