//! `/metrics` (Prometheus text) and `/readyz`, on both backends.

use crate::{read_plc7, Harness};
use jitgate_store::Store;
use jitgate_testkit::each_backend;
use reqwest::StatusCode;

/// The value of the sample `name` (with its labels, as printed) in a metrics text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_what_happened_and_readiness_says_the_node_can_serve() {
    each_backend(|store: Store| async move {
        let mut h = Harness::start(store).await;
        let (s, ready) = h.raw("GET", "/readyz", None, None).await;
        assert_eq!(s, StatusCode::OK, "{ready}");
        assert_eq!(ready["ready"], true, "{ready}");

        let req = h.request("alice", read_plc7()).await;
        let (s, approved) = h.approve("bob", &req, None).await;
        assert_eq!(s, StatusCode::OK, "{approved}");

        // Not for everyone.
        let (s, _) = h.call("alice", "GET", "/metrics", None).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, text) = h.call("sam", "GET", "/metrics", None).await;
        assert_eq!(s, StatusCode::OK, "{text}");
        let text = text.as_str().unwrap().to_string();
        assert!(
            sample(&text, "jitgate_decisions_total{outcome=\"allow\"}").unwrap() >= 1.0,
            "{text}"
        );
        assert_eq!(
            sample(&text, "jitgate_grants{state=\"active\"}"),
            Some(1.0),
            "{text}"
        );
        assert!(
            sample(
                &text,
                "jitgate_http_responses_total{method=\"POST\",status=\"2xx\"}"
            )
            .unwrap()
                >= 2.0,
            "{text}"
        );
        assert!(
            text.contains("# TYPE jitgate_revocation_to_cut_seconds histogram"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        h.stop().await;
    })
    .await;
}
