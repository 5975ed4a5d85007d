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

    /// Cut every live session when no server node has been heard from for longer than
    /// `cut_after` (control channel and API silent alike): the gateway cannot know whether
    /// their grants still stand. Returns how many were cut.
    pub fn cut_if_silent(&self, cut_after: std::time::Duration) -> usize {
        let silent_for = self
            .last_contact
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|t| t.elapsed());
        if !silence_requires_cut(silent_for, cut_after) {
            return 0;
        }
        let n = self.live.cut_all(&format!(
            "no jitgate server heard from for {}: the gateway cannot confirm the grant still stands (cut_after_silence)",
            humantime::format_duration(std::time::Duration::from_secs(
                silent_for.unwrap_or_default().as_secs()
            ))
        ));
        if n > 0 {
            tracing::warn!(sessions = n, "no server node heard from; live sessions cut");
        }
        n
    }

    /// The server answered: the offline grace counts from now.
    pub(crate) fn touch(&self) {
        *self.last_contact.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(std::time::Instant::now());
    }
}

/// Fail closed on silence: cut once the silence is longer than the bound (never when the bound
/// is zero, i.e. turned off, or before the server was ever heard from — the gateway cannot
/// start without it).
pub fn silence_requires_cut(
    silent_for: Option<std::time::Duration>,
    cut_after: std::time::Duration,
) -> bool {
    !cut_after.is_zero() && silent_for.is_some_and(|s| s > cut_after)
}

#[cfg(test)]
mod tests {
    use super::silence_requires_cut;
    use std::time::Duration;

    #[test]
    fn silence_cuts_only_past_the_bound() {
        let bound = Duration::from_secs(300);
        assert!(!silence_requires_cut(Some(Duration::from_secs(299)), bound));
        assert!(!silence_requires_cut(Some(bound), bound));
        assert!(silence_requires_cut(Some(Duration::from_secs(301)), bound));
        assert!(!silence_requires_cut(None, bound));
        assert!(!silence_requires_cut(
            Some(Duration::from_secs(10_000)),
            Duration::ZERO
        ));
    }
}
