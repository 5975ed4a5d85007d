//! Who a request involves beyond its requester and subject, read for the core's separation
//! of duties (`jitgate_core::governance::Parties`). Imports nothing of the server but its
//! error type, so every layer that checks an approver can use it.

use crate::error::ApiResult;
use jitgate_core::Request;
use jitgate_store::Tx;

/// The owner named in the terms of the standing exception `r` files; `None` for a request
/// on any other path. The owner answers for the exception, so it never grants it
/// (`jitgate_core::governance::Conflict::OwnsException`).
pub async fn exception_owner(tx: &mut Tx, r: &Request) -> ApiResult<Option<String>> {
    if r.path != jitgate_core::AccessPath::Standing {
        return Ok(None);
    }
    Ok(tx.exception_of_request(&r.id).await?.map(|e| e.owner))
}
