//! The HTML report and the SIEM encodings, from a verified bundle.

use crate::fixtures::*;
use jitgate_evidence::*;
use std::collections::BTreeMap;

fn verified(workload: bool) -> VerifiedBundle {
    let mut events = grant_events(1, t0(), 12);
    if workload {
        events[0].data["subject"] = "svc-historian".into();
        events[4].data["subject"] = "svc-historian".into();
    }
    // Markup in user-supplied text must come out inert.
    events[2].data["comment"] = "<script>alert('x')</script>".into();
    let canonicals: Vec<String> = events.iter().map(canonical).collect();
    let merkle = MerkleLog::from_leaves(canonicals.iter().map(String::as_bytes));
    let key = EvidenceKey::generate().unwrap();
    let cp = key
        .sign_checkpoint(
            "jitgate.test/plant-1",
            merkle.size(),
            &merkle.root(),
            t0() + secs(86_400),
        )
        .unwrap();
    let numbered = canonicals
        .into_iter()
        .enumerate()
        .map(|(i, c)| (i as u64 + 1, c))
        .collect();
    let policies = BTreeMap::from([(
        "engineer-maintenance".to_string(),
        "permit (principal, action, resource) when { resource.criticality < 3 && true };"
            .to_string(),
    )]);
    let b = Bundle::build("grant-000001", numbered, &merkle, cp, policies, &key, &[]).unwrap();
    verify_bundle(b.to_json().as_bytes(), &[key.public()]).unwrap()
}

#[test]
fn the_report_is_one_self_contained_escaped_page() {
    let v = verified(false);
    let html = report_html(&v);
    assert!(html.starts_with("<!DOCTYPE html>"));
    for section in [
        "Evidence chain: request → decision → approvals → grant → sessions → operations → end",
        "Teardown checks",
        "Timeline",
        "Determining policies",
        "Controls this evidence supports",
        "PR.AA-05",
        "Tenet 3: access granted per session",
        "SR 1.1 human user identification",
        "SR 2.8 auditable events",
        "SR 2.12 non-repudiation",
        "not applicable: the subject is the requester",
        "12 operations (11 allowed, 1 denied)",
        "teardown verification",
    ] {
        assert!(html.contains(section), "missing {section:?}");
    }
    // No scripts, no external assets, user text escaped.
    assert!(!html.contains("<script"), "unescaped script");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(html.contains("resource.criticality &lt; 3 &amp;&amp; true"));
    for external in ["src=", "href=", "@import", "url(", "http://", "https://"] {
        assert!(!html.contains(external), "external reference {external:?}");
    }
    // One timeline row per event.
    assert_eq!(html.matches("<td class=\"num\">").count(), v.events.len());
}

#[test]
fn workload_grants_are_mapped_to_the_owasp_nhi_top_10() {
    let html = report_html(&verified(true));
    for item in [
        "NHI1 Improper Offboarding",
        "NHI5 Overprivileged NHI",
        "NHI7 Long-Lived Secrets",
        "NHI10 Human Use of NHI",
    ] {
        assert!(html.contains(item), "missing {item}");
    }
    assert!(html.contains("svc-historian (workload, non-human identity)"));
}

#[test]
fn siem_encodings_of_real_events() {
    let v = verified(false);
    for e in &v.events {
        let line = to_syslog_5424(e.seq as i64, &e.event, "jitgate-1", "jitgate");
        assert!(line.starts_with('<'));
        assert!(line.contains(&format!("seq=\"{}\"", e.seq)));
        assert!(
            line.ends_with(&e.canonical),
            "syslog MSG is the canonical event"
        );
        let o = to_ocsf_json(e.seq as i64, &e.event);
        assert_eq!(o["metadata"]["sequence"], e.seq);
        assert_eq!(o["unmapped"]["jitgate"]["kind"], e.event.kind.as_str());
    }
    let denied = v
        .events
        .iter()
        .find(|e| e.event.data["detail"]["allowed"] == false)
        .unwrap();
    assert_eq!(
        to_ocsf_json(denied.seq as i64, &denied.event)["status"],
        "Failure"
    );
    assert_eq!(
        to_ocsf_json(denied.seq as i64, &denied.event)["activity_name"],
        "Update"
    );
    assert!(to_syslog_5424(1, &denied.event, "h", "a").starts_with("<108>1 "));
}
