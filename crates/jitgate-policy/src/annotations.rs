//! Reading a policy's annotations: its `@id`, the obligations a permit attaches, and the
//! `@reason` a forbid gives. Every annotation is checked when the set loads, so a typo is
//! a load error pointing at the line instead of a silently weaker obligation at run time.

use crate::duration::parse_duration;
use jitgate_core::{ApproverSite, Obligations};
use std::collections::BTreeSet;

/// Annotations jitgate understands. Anything else is refused: `@aproval("2")` must not
/// quietly fall back to the default of one approval.
pub(crate) const KNOWN: &[&str] = &[
    "id",
    "approvals",
    "approver_role",
    "approver_group",
    "approver_site",
    "max_duration",
    "step_up",
    "review",
    "attestation",
    "reason",
];

/// Annotations that only make sense on a permit (they describe what allowing costs).
const OBLIGATIONS: &[&str] = &[
    "approvals",
    "approver_role",
    "approver_group",
    "approver_site",
    "max_duration",
    "step_up",
    "review",
    "attestation",
];

/// Most approvers a single policy may ask for; beyond this no plant could ever satisfy it.
const MAX_APPROVALS: u32 = 10;

/// An annotation problem: which annotation, and what is wrong with it.
#[derive(Debug)]
pub(crate) struct AnnotationError {
    pub annotation: String,
    pub message: String,
}

fn err(annotation: &str, message: impl Into<String>) -> AnnotationError {
    AnnotationError {
        annotation: annotation.to_string(),
        message: message.into(),
    }
}

/// What the annotations of one policy say, once checked.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    /// `Some` for permits: their obligations with the defaults filled in.
    pub obligations: Option<Obligations>,
    pub reason: Option<String>,
}

pub(crate) fn valid_policy_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// Check the annotations of one policy (`permit` tells its effect).
pub(crate) fn parse<'a>(
    permit: bool,
    annotations: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<Parsed, AnnotationError> {
    let mut ob = Obligations::default();
    let mut reason = None;
    for (key, value) in annotations {
        if !KNOWN.contains(&key) {
            return Err(err(
                key,
                format!("unknown annotation; jitgate knows @{}", KNOWN.join(", @")),
            ));
        }
        if !permit && OBLIGATIONS.contains(&key) {
            return Err(err(
                key,
                "obligations only apply to permit policies; a forbid cannot be satisfied by approvals, remove it",
            ));
        }
        match key {
            "approvals" => {
                ob.approvals = value
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= MAX_APPROVALS)
                    .ok_or_else(|| {
                        err(key, format!("{value:?} is not a number of approvers from 0 to {MAX_APPROVALS}, e.g. \"2\""))
                    })?;
            }
            "approver_role" => ob.approver_roles = list(key, value)?,
            "approver_group" => ob.approver_groups = list(key, value)?,
            "approver_site" => {
                let v = value.trim();
                ob.approver_site = Some(if v == "asset" {
                    ApproverSite::Asset
                } else if is_name(v) {
                    ApproverSite::Named(v.to_string())
                } else {
                    return Err(err(
                        key,
                        format!("{value:?} is neither \"asset\" (the asset's site) nor a site id"),
                    ));
                });
            }
            "max_duration" => {
                ob.max_duration_secs = parse_duration(value).map_err(|m| err(key, m))?;
            }
            // `@step_up("passkey")`: step-up, and only a passkey does.
            "step_up" if value.trim() == "passkey" => {
                ob.step_up = true;
                ob.step_up_passkey = true;
            }
            "step_up" => ob.step_up = flag(key, value)?,
            "review" => ob.review = flag(key, value)?,
            // `@attestation("required")`: the subject attests what was done afterwards.
            "attestation" => {
                ob.attestation = match value.trim() {
                    "required" | "true" | "" => true,
                    "none" | "false" => false,
                    _ => {
                        return Err(err(
                            key,
                            format!("{value:?} is not \"required\" or \"none\""),
                        ))
                    }
                }
            }
            "reason" => {
                if value.trim().is_empty() {
                    return Err(err(
                        key,
                        "the reason is empty; say in words why the policy denies",
                    ));
                }
                reason = Some(value.trim().to_string());
            }
            _ => {} // "id" is read by the loader
        }
    }
    if !permit && reason.is_none() {
        return Err(err(
            "reason",
            "a forbid policy needs @reason(\"...\"): it is what the requester reads when denied",
        ));
    }
    Ok(Parsed {
        obligations: permit.then_some(ob),
        reason,
    })
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `"engineer"` or `"engineer, safety-officer"` → sorted, deduplicated names.
fn list(key: &str, value: &str) -> Result<Vec<String>, AnnotationError> {
    let mut out = BTreeSet::new();
    for part in value.split(',') {
        let name = part.trim();
        if !is_name(name) {
            return Err(err(
                key,
                format!("{value:?}: expected names separated by commas, e.g. \"engineer, safety-officer\""),
            ));
        }
        out.insert(name.to_string());
    }
    Ok(out.into_iter().collect())
}

/// `"true"` / `"false"`; a bare `@step_up` (Cedar gives it the value "") means true.
fn flag(key: &str, value: &str) -> Result<bool, AnnotationError> {
    match value.trim() {
        "true" | "" => Ok(true),
        "false" => Ok(false),
        _ => Err(err(key, format!("{value:?} is not \"true\" or \"false\""))),
    }
}

/// Combine the obligations of the permits that allowed a request, strictest first: most
/// approvals, every approver role, any approver group, the shortest maximum, step-up or
/// review if any asks. Two different approver-site conditions cannot both be expressed in
/// one [`Obligations`], so that is reported (the request is then denied, naming both).
pub(crate) fn combine<'a>(
    parts: impl IntoIterator<Item = (&'a str, &'a Obligations)>,
) -> Result<Obligations, String> {
    let mut acc: Option<Obligations> = None;
    let mut site_from: Option<&str> = None;
    for (id, ob) in parts {
        let Some(a) = acc.as_mut() else {
            if ob.approver_site.is_some() {
                site_from = Some(id);
            }
            acc = Some(ob.clone());
            continue;
        };
        a.approvals = a.approvals.max(ob.approvals);
        a.approver_roles = union(&a.approver_roles, &ob.approver_roles);
        a.approver_groups = union(&a.approver_groups, &ob.approver_groups);
        match (&a.approver_site, &ob.approver_site) {
            (_, None) => {}
            (None, Some(s)) => {
                a.approver_site = Some(s.clone());
                site_from = Some(id);
            }
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => {
                return Err(format!(
                    "policies `{}` and `{id}` require approvers from different sites ({} and {}); align their @approver_site",
                    site_from.unwrap_or("?"),
                    site_words(x),
                    site_words(y)
                ));
            }
        }
        a.max_duration_secs = a.max_duration_secs.min(ob.max_duration_secs);
        a.step_up |= ob.step_up;
        a.step_up_passkey |= ob.step_up_passkey;
        a.review |= ob.review;
        a.attestation |= ob.attestation;
    }
    Ok(acc.unwrap_or_default())
}

fn site_words(s: &ApproverSite) -> String {
    match s {
        ApproverSite::Asset => "the asset's site".into(),
        ApproverSite::Named(n) => format!("site {n}"),
    }
}

fn union(a: &[String], b: &[String]) -> Vec<String> {
    let set: BTreeSet<&String> = a.iter().chain(b).collect();
    set.into_iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permit(pairs: &[(&'static str, &'static str)]) -> Result<Parsed, AnnotationError> {
        parse(true, pairs.iter().copied())
    }

    #[test]
    fn defaults_apply_when_a_permit_says_nothing() {
        let p = permit(&[("id", "x")]).unwrap();
        assert_eq!(p.obligations, Some(Obligations::default()));
    }

    #[test]
    fn annotations_fill_obligations() {
        let p = permit(&[
            ("approvals", "2"),
            ("approver_role", "engineer, safety-officer"),
            ("approver_group", "controls-north"),
            ("approver_site", "asset"),
            ("max_duration", "1h30m"),
            ("step_up", "true"),
            ("review", ""),
        ])
        .unwrap();
        let ob = p.obligations.unwrap();
        assert_eq!(ob.approvals, 2);
        assert_eq!(ob.approver_roles, ["engineer", "safety-officer"]);
        assert_eq!(ob.approver_groups, ["controls-north"]);
        assert_eq!(ob.approver_site, Some(ApproverSite::Asset));
        assert_eq!(ob.max_duration_secs, 5400);
        assert!(ob.step_up && ob.review);
    }

    #[test]
    fn bad_annotations_are_named() {
        for (pairs, annotation, needle) in [
            (vec![("approvals", "two")], "approvals", "not a number"),
            (vec![("approvals", "11")], "approvals", "0 to 10"),
            (
                vec![("max_duration", "2 hours")],
                "max_duration",
                "unexpected",
            ),
            (vec![("step_up", "yes")], "step_up", "not \"true\""),
            (
                vec![("approver_role", "engineer,,x")],
                "approver_role",
                "separated by commas",
            ),
            (
                vec![("approver_site", "the plant")],
                "approver_site",
                "neither",
            ),
            (vec![("aprovals", "2")], "aprovals", "unknown annotation"),
            (
                vec![("attestation", "maybe")],
                "attestation",
                "not \"required\"",
            ),
        ] {
            let e = parse(true, pairs.into_iter()).unwrap_err();
            assert_eq!(e.annotation, annotation);
            assert!(e.message.contains(needle), "{}: {}", annotation, e.message);
        }
    }

    #[test]
    fn forbids_need_a_reason_and_take_no_obligations() {
        let e = parse(false, [("id", "f")].into_iter()).unwrap_err();
        assert_eq!(e.annotation, "reason");
        let e = parse(false, [("reason", "no"), ("approvals", "2")].into_iter()).unwrap_err();
        assert_eq!(e.annotation, "approvals");
        let p = parse(false, [("reason", " locked ")].into_iter()).unwrap();
        assert_eq!(p.reason.as_deref(), Some("locked"));
        assert!(p.obligations.is_none());
    }

    #[test]
    fn combining_is_strict() {
        let a = Obligations {
            approvals: 1,
            approver_roles: vec!["engineer".into()],
            approver_groups: vec!["g1".into()],
            approver_site: Some(ApproverSite::Asset),
            max_duration_secs: 8 * 3600,
            step_up: false,
            step_up_passkey: false,
            review: true,
            attestation: false,
        };
        let b = Obligations {
            approvals: 2,
            approver_roles: vec!["safety".into()],
            approver_groups: vec!["g2".into()],
            approver_site: None,
            max_duration_secs: 4 * 3600,
            step_up: true,
            step_up_passkey: false,
            review: false,
            attestation: false,
        };
        let c = combine([("a", &a), ("b", &b)]).unwrap();
        assert_eq!(c.approvals, 2);
        assert_eq!(c.approver_roles, ["engineer", "safety"]);
        assert_eq!(c.approver_groups, ["g1", "g2"]);
        assert_eq!(c.approver_site, Some(ApproverSite::Asset));
        assert_eq!(c.max_duration_secs, 4 * 3600);
        assert!(c.step_up && c.review);
        assert!(!c.step_up_passkey);
        // `@attestation("required")` on any determining permit makes it required.
        let at = parse(true, [("attestation", "required")].into_iter()).unwrap();
        let at = at.obligations.unwrap();
        assert!(at.attestation);
        assert!(combine([("a", &a), ("at", &at)]).unwrap().attestation);
        assert!(!combine([("a", &a), ("b", &b)]).unwrap().attestation);
        // `@step_up("passkey")` is step-up by passkey only, and it wins when combined.
        let p = parse(true, [("step_up", "passkey")].into_iter()).unwrap();
        let pk = p.obligations.unwrap();
        assert!(pk.step_up && pk.step_up_passkey);
        let c = combine([("a", &a), ("pk", &pk)]).unwrap();
        assert!(c.step_up && c.step_up_passkey);

        let n = Obligations {
            approver_site: Some(ApproverSite::Named("south".into())),
            ..b
        };
        let e = combine([("a", &a), ("n", &n)]).unwrap_err();
        assert!(e.contains("`a` and `n`") && e.contains("site south"), "{e}");
    }
}
