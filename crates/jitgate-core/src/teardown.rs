//! The rules of a teardown verdict: how checks combine, which gateway refusal proves that a
//! grant ended, and when the evidence of a grant's sessions is complete enough to say so.
//! The server runs the checks (I/O); what they mean is decided here.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The outcome of one teardown check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckOutcome {
    Ok,
    /// Holds as far as jitgate can see, with a documented limitation (legacy asset).
    Partial,
    Failed,
}

/// A teardown's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TeardownVerdict {
    Verified,
    Partial,
    Failed,
}

impl TeardownVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            TeardownVerdict::Verified => "verified",
            TeardownVerdict::Partial => "partial",
            TeardownVerdict::Failed => "failed",
        }
    }
    /// The verdict `as_str` names (as stored by the teardown table).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "verified" => Some(TeardownVerdict::Verified),
            "partial" => Some(TeardownVerdict::Partial),
            "failed" => Some(TeardownVerdict::Failed),
            _ => None,
        }
    }
    /// `verified` and `partial` close the grant; `failed` is retried.
    pub fn is_final(self) -> bool {
        self != TeardownVerdict::Failed
    }
}

/// `failed` if any check failed, else `partial` if any is partial, else `verified`.
pub fn verdict_of(outcomes: impl IntoIterator<Item = CheckOutcome>) -> TeardownVerdict {
    let mut verdict = TeardownVerdict::Verified;
    for o in outcomes {
        match o {
            CheckOutcome::Failed => return TeardownVerdict::Failed,
            CheckOutcome::Partial => verdict = TeardownVerdict::Partial,
            CheckOutcome::Ok => {}
        }
    }
    verdict
}

/// Refusal codes with which a gateway shows it *knows* the grant ended (its revocation list,
/// or the server's answer to its online check). Any other refusal — an unknown signing key,
/// an unreachable server, a bad handshake — says nothing about the grant, so it proves
/// nothing: the probe's credential is otherwise valid.
pub const PROOF_OF_END_CODES: &[&str] = &["grant_revoked", "grant_not_active"];

/// Does a probe refused with `code` prove that the gateway knows the grant ended?
pub fn refusal_proves_end(code: &str) -> bool {
    PROOF_OF_END_CODES.contains(&code)
}

/// A grant's session events as they are in the log.
#[derive(Debug, Clone, Default)]
pub struct SessionEvidence {
    /// Session ids that must have ended: those with a `session.started` event, and those a
    /// gateway acknowledged closing (whose events may not have reached the log yet).
    pub started: Vec<String>,
    /// Session ids with a `session.ended` event, and that event's sequence number.
    pub ended: Vec<(String, i64)>,
}

/// Is every started session's end in the log? `Ok` with the sequence numbers of the
/// `session.ended` events (the verdict names them); `Err` with the sessions still missing
/// theirs. A verdict recorded before them would say "verified" over an incomplete record.
pub fn sessions_recorded(ev: &SessionEvidence) -> Result<Vec<i64>, Vec<String>> {
    let missing: Vec<String> = ev
        .started
        .iter()
        .filter(|s| !ev.ended.iter().any(|(e, _)| e == *s))
        .cloned()
        .collect();
    if missing.is_empty() {
        let mut seqs: Vec<i64> = ev.ended.iter().map(|(_, seq)| *seq).collect();
        seqs.sort_unstable();
        Ok(seqs)
    } else {
        Err(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_is_the_worst_outcome() {
        use CheckOutcome::*;
        assert_eq!(verdict_of([Ok, Ok]), TeardownVerdict::Verified);
        assert_eq!(verdict_of([Ok, Partial]), TeardownVerdict::Partial);
        assert_eq!(verdict_of([Partial, Failed, Ok]), TeardownVerdict::Failed);
        assert_eq!(verdict_of([]), TeardownVerdict::Verified);
    }

    #[test]
    fn only_refusals_that_know_the_grant_ended_prove_it() {
        assert!(refusal_proves_end("grant_revoked"));
        assert!(refusal_proves_end("grant_not_active"));
        for code in [
            "unknown_key",
            "server_unreachable",
            "bad_handshake",
            "expired",
            "wrong_asset",
        ] {
            assert!(!refusal_proves_end(code), "{code}");
        }
    }

    #[test]
    fn sessions_recorded_needs_every_end() {
        let mut ev = SessionEvidence {
            started: vec!["s1".into(), "s2".into()],
            ended: vec![("s2".into(), 9)],
        };
        assert_eq!(sessions_recorded(&ev), Err(vec!["s1".to_string()]));
        ev.ended.push(("s1".into(), 12));
        assert_eq!(sessions_recorded(&ev), Ok(vec![9, 12]));
        assert_eq!(sessions_recorded(&SessionEvidence::default()), Ok(vec![]));
    }
}
