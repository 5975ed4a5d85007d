//! The online grant check every session passes before it opens, whatever the protocol
//! and the credential (a grant token in the tunnel, an SSH certificate): the server must
//! confirm the grant is still active and that the credential carries the grant's own scope
//! digest and subject.

use crate::runtime::Gateway;
use crate::server_api::ApiError;
use crate::wire::GrantStatus;
use jitgate_core::GrantState;
use jitgate_credential::GrantClaims;

/// What a credential claims about its grant, as the online check compares it.
#[derive(Debug, Clone, Copy)]
pub struct GrantClaim<'a> {
    pub grant_id: &'a str,
    /// `sha256:<hex>` of the scope the credential was issued for; `None` for a credential
    /// that carries no scope (an SSH certificate: the scope then comes from the server's
    /// answer, [`GrantStatus::scope`]).
    pub scope_digest: Option<&'a str>,
    /// The identity the credential was issued to.
    pub subject: &'a str,
}

impl<'a> From<&'a GrantClaims> for GrantClaim<'a> {
    fn from(c: &'a GrantClaims) -> Self {
        GrantClaim {
            grant_id: &c.grant_id,
            scope_digest: Some(&c.scope_digest),
            subject: &c.subject,
        }
    }
}

impl Gateway {
    /// The online check at session start: the grant must still be active at the server, and
    /// the token must carry the grant's own scope digest and subject (a token whose claims
    /// were signed for another scope or person is refused, even with a valid signature).
    /// Unreachable server: refuse (fail closed), unless within the configured offline grace
    /// (then only the token itself is checked, and the answer is `Ok(None)`).
    pub async fn check_grant_online(
        &self,
        claims: GrantClaim<'_>,
    ) -> Result<Option<GrantStatus>, (&'static str, String)> {
        let grant = claims.grant_id;
        match self.api.grant_status(grant).await {
            Ok(s) if claims.scope_digest.is_some_and(|d| d != s.scope_digest) => {
                self.touch();
                Err((
                    "scope_mismatch",
                    format!(
                        "the token's scope digest {} is not grant {grant}'s ({}): the token does not carry the scope that was approved; request a new token",
                        claims.scope_digest.unwrap_or_default(), s.scope_digest
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
                Ok(Some(s))
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
                    Ok(None)
                } else {
                    Err(("server_unreachable", format!("the gateway cannot confirm grant {grant} with the server ({e}); new sessions are refused until it can")))
                }
            }
        }
    }

    /// The server answered: the offline grace counts from now.
    pub(crate) fn touch(&self) {
        *self.last_contact.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(std::time::Instant::now());
    }
}
