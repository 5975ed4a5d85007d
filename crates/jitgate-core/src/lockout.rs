//! Backoff and temporary lockout after failed sign-ins and failed step-up codes.
//!
//! Failures are counted per *key*: one identity name (whether or not it exists, so that the
//! answer never tells which identities do) and one source address. The rule is the same for
//! both, with its own [`LockoutPolicy`]:
//!
//! - the first `free_failures` failures cost nothing;
//! - each further failure makes the next attempt wait `backoff_base × 2ⁿ` (n = failures
//!   beyond the free ones, minus one), at most `backoff_max`, counted from the last failure;
//! - at `lockout_after` failures the key is locked for `lockout` — until then every attempt
//!   is refused without checking the password, so the right password is refused too;
//! - a failure older than `forget_after` (and a lockout that has ended) is forgotten;
//! - a success forgets the key's failures; an administrator's unlock forgets them too.
//!
//! No I/O and no clock here: the server loads the key's [`FailureRecord`], asks [`gate`]
//! before checking anything, and stores what [`after_failure`] returns.
//!
//! [`gate`]: LockoutPolicy::gate
//! [`after_failure`]: LockoutPolicy::after_failure

use crate::Timestamp;

/// The thresholds of one kind of key (identity or source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures allowed before any backoff.
    pub free_failures: u32,
    /// Wait after the first failure beyond the free ones, in seconds; doubled at each further one.
    pub backoff_base_secs: i64,
    /// The longest wait between two attempts, in seconds.
    pub backoff_max_secs: i64,
    /// Failures (counted since the last forget) that lock the key.
    pub lockout_after: u32,
    /// How long a lockout lasts, in seconds (an administrator may end it sooner).
    pub lockout_secs: i64,
    /// A key whose last failure is this old (seconds) starts again from zero.
    pub forget_after_secs: i64,
}

impl LockoutPolicy {
    /// Per identity: 3 free failures, then 1 s, 2 s, 4 s … (at most 60 s), locked for 15
    /// minutes at the 10th failure; failures forgotten after 15 minutes.
    pub const IDENTITY_DEFAULT: LockoutPolicy = LockoutPolicy {
        free_failures: 3,
        backoff_base_secs: 1,
        backoff_max_secs: 60,
        lockout_after: 10,
        lockout_secs: 15 * 60,
        forget_after_secs: 15 * 60,
    };

    /// Per source address: more room (several people behind one NAT or jump host), 20 free
    /// failures, then the same backoff, locked for 15 minutes at the 100th.
    pub const SOURCE_DEFAULT: LockoutPolicy = LockoutPolicy {
        free_failures: 20,
        backoff_base_secs: 1,
        backoff_max_secs: 60,
        lockout_after: 100,
        lockout_secs: 15 * 60,
        forget_after_secs: 15 * 60,
    };

    /// A policy that makes sense: every number positive, lockout after the free failures.
    pub fn check(&self) -> Result<(), String> {
        if self.lockout_after == 0 {
            return Err("lockout_after must be at least 1".into());
        }
        if self.free_failures >= self.lockout_after {
            return Err(format!(
                "free_failures ({}) must be below lockout_after ({})",
                self.free_failures, self.lockout_after
            ));
        }
        if self.backoff_base_secs < 1 || self.backoff_max_secs < self.backoff_base_secs {
            return Err("backoff must be at least 1s and backoff_max at least backoff".into());
        }
        if self.lockout_secs < 1 || self.forget_after_secs < 1 {
            return Err("lockout and forget_after must be at least 1s".into());
        }
        Ok(())
    }

    /// The wait after the `failures`-th failure (zero while within the free failures).
    pub fn delay_after(&self, failures: u32) -> i64 {
        if failures <= self.free_failures {
            return 0;
        }
        let doublings = (failures - self.free_failures - 1).min(30);
        self.backoff_base_secs
            .saturating_mul(1i64 << doublings)
            .min(self.backoff_max_secs)
    }

    fn forgotten(&self, rec: &FailureRecord, now: Timestamp) -> bool {
        match rec.locked_until {
            Some(until) => until <= now,
            None => rec.last_failure + secs(self.forget_after_secs) <= now,
        }
    }

    /// May an attempt be checked now?
    pub fn gate(&self, rec: Option<&FailureRecord>, now: Timestamp) -> Gate {
        let Some(rec) = rec else { return Gate::Open };
        if let Some(until) = rec.locked_until {
            if until > now {
                return Gate::Locked { until };
            }
        }
        if self.forgotten(rec, now) {
            return Gate::Open;
        }
        let retry_at = rec.last_failure + secs(self.delay_after(rec.failures));
        if retry_at > now {
            Gate::Backoff { retry_at }
        } else {
            Gate::Open
        }
    }

    /// The key's record after one more failure at `now`, and whether it locked the key.
    pub fn after_failure(&self, rec: Option<&FailureRecord>, now: Timestamp) -> Failure {
        let before = match rec {
            Some(r) if !self.forgotten(r, now) => r.failures,
            _ => 0,
        };
        let already_locked = rec
            .and_then(|r| r.locked_until)
            .is_some_and(|until| until > now);
        let failures = before.saturating_add(1);
        let locked_until = if already_locked {
            rec.and_then(|r| r.locked_until)
        } else if failures >= self.lockout_after {
            Some(now + secs(self.lockout_secs))
        } else {
            None
        };
        Failure {
            record: FailureRecord {
                failures,
                last_failure: now,
                locked_until,
            },
            locked_now: locked_until.is_some() && !already_locked,
        }
    }
}

fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

/// What is remembered of one key's failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRecord {
    /// Failures since the key was last forgotten.
    pub failures: u32,
    pub last_failure: Timestamp,
    /// Set while (and after) the key is locked.
    pub locked_until: Option<Timestamp>,
}

/// The answer of [`LockoutPolicy::gate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Check the attempt.
    Open,
    /// Refuse without checking: too soon after the last failure.
    Backoff { retry_at: Timestamp },
    /// Refuse without checking: locked out.
    Locked { until: Timestamp },
}

impl Gate {
    /// The stricter of two answers (identity and source are both asked).
    pub fn and(self, other: Gate) -> Gate {
        match (self, other) {
            (Gate::Locked { until: a }, Gate::Locked { until: b }) => {
                Gate::Locked { until: a.max(b) }
            }
            (l @ Gate::Locked { .. }, _) | (_, l @ Gate::Locked { .. }) => l,
            (Gate::Backoff { retry_at: a }, Gate::Backoff { retry_at: b }) => {
                Gate::Backoff { retry_at: a.max(b) }
            }
            (b @ Gate::Backoff { .. }, Gate::Open) | (Gate::Open, b @ Gate::Backoff { .. }) => b,
            (Gate::Open, Gate::Open) => Gate::Open,
        }
    }

    /// Seconds until an attempt may be checked again (at least 1), `None` when open.
    pub fn retry_after_secs(&self, now: Timestamp) -> Option<i64> {
        let at = match self {
            Gate::Open => return None,
            Gate::Backoff { retry_at } => *retry_at,
            Gate::Locked { until } => *until,
        };
        let ms = (at - now).num_milliseconds().max(0);
        Some(((ms + 999) / 1000).max(1))
    }
}

/// The answer of [`LockoutPolicy::after_failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub record: FailureRecord,
    /// This failure locked the key (record a lockout event).
    pub locked_now: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
    }

    fn fail_n(p: &LockoutPolicy, n: u32, at: Timestamp) -> Option<FailureRecord> {
        let mut rec = None;
        for _ in 0..n {
            rec = Some(p.after_failure(rec.as_ref(), at).record);
        }
        rec
    }

    const P: LockoutPolicy = LockoutPolicy::IDENTITY_DEFAULT;

    #[test]
    fn defaults_are_valid() {
        P.check().unwrap();
        LockoutPolicy::SOURCE_DEFAULT.check().unwrap();
        let bad = LockoutPolicy {
            free_failures: 10,
            ..P
        };
        assert!(bad.check().is_err());
    }

    #[test]
    fn free_failures_then_doubling_backoff_capped() {
        assert_eq!(
            (0..=12).map(|n| P.delay_after(n)).collect::<Vec<_>>(),
            vec![0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]
        );
        assert_eq!(P.delay_after(u32::MAX), 60);
    }

    #[test]
    fn gate_is_open_within_the_free_failures() {
        let now = t0();
        assert_eq!(P.gate(None, now), Gate::Open);
        let rec = fail_n(&P, 3, now);
        assert_eq!(P.gate(rec.as_ref(), now), Gate::Open);
    }

    #[test]
    fn backoff_after_the_free_failures_counts_from_the_last_failure() {
        let now = t0();
        let rec = fail_n(&P, 5, now);
        let retry_at = now + chrono::Duration::seconds(2);
        assert_eq!(P.gate(rec.as_ref(), now), Gate::Backoff { retry_at });
        assert_eq!(P.gate(rec.as_ref(), now).retry_after_secs(now), Some(2));
        assert_eq!(
            P.gate(rec.as_ref(), now + chrono::Duration::milliseconds(1999)),
            Gate::Backoff { retry_at }
        );
        assert_eq!(P.gate(rec.as_ref(), retry_at), Gate::Open);
    }

    #[test]
    fn lockout_at_the_threshold_refuses_until_it_ends_then_starts_again() {
        let now = t0();
        let rec = fail_n(&P, 9, now);
        let f = P.after_failure(rec.as_ref(), now);
        assert!(f.locked_now);
        let until = now + chrono::Duration::minutes(15);
        assert_eq!(f.record.locked_until, Some(until));
        assert_eq!(P.gate(Some(&f.record), now), Gate::Locked { until });
        // Still locked a minute before the end, whatever the backoff says.
        assert_eq!(
            P.gate(Some(&f.record), until - chrono::Duration::minutes(1)),
            Gate::Locked { until }
        );
        // A failure while locked does not extend the lock nor report a new one.
        let again = P.after_failure(Some(&f.record), now + chrono::Duration::seconds(5));
        assert!(!again.locked_now);
        assert_eq!(again.record.locked_until, Some(until));
        // After the lockout: open, and the count starts from one.
        assert_eq!(P.gate(Some(&again.record), until), Gate::Open);
        let after = P.after_failure(Some(&again.record), until);
        assert_eq!(after.record.failures, 1);
        assert_eq!(after.record.locked_until, None);
        assert!(!after.locked_now);
    }

    #[test]
    fn old_failures_are_forgotten() {
        let now = t0();
        let rec = fail_n(&P, 8, now);
        let later = now + chrono::Duration::minutes(15);
        assert_eq!(P.gate(rec.as_ref(), later), Gate::Open);
        assert_eq!(P.after_failure(rec.as_ref(), later).record.failures, 1);
    }

    #[test]
    fn the_stricter_gate_wins() {
        let now = t0();
        let a = Gate::Backoff {
            retry_at: now + chrono::Duration::seconds(3),
        };
        let b = Gate::Backoff {
            retry_at: now + chrono::Duration::seconds(8),
        };
        let l = Gate::Locked {
            until: now + chrono::Duration::seconds(1),
        };
        assert_eq!(a.and(b), b);
        assert_eq!(Gate::Open.and(a), a);
        assert_eq!(a.and(l), l);
        assert_eq!(Gate::Open.and(Gate::Open), Gate::Open);
        assert_eq!(Gate::Open.retry_after_secs(now), None);
        assert_eq!(l.retry_after_secs(now), Some(1));
    }
}
