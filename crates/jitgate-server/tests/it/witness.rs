//! The witness endpoints on SQLite and PostgreSQL: a checkpoint with its consistency proof for
//! a witness, cosignatures kept only from configured witnesses and only of stored
//! checkpoints, carried by bundles; alarms recorded only with checkpoints the log signed.
//! (The whole flow through the real binaries is `jitgate`'s tests/it/witness.rs.)

use super::evidence::{grant_with_operations, start_custom};
use super::*;
use jitgate_evidence::note::Note;
use jitgate_evidence::witness::{add_checkpoint, AddCheckpoint, WitnessedCheckpoint};
use jitgate_evidence::{EvidenceKey, Limits, Vkey, WitnessPolicy};

struct Witness {
    key: EvidenceKey,
    name: &'static str,
    state: Option<WitnessedCheckpoint>,
}

impl Witness {
    fn new(name: &'static str) -> Witness {
        Witness {
            key: EvidenceKey::generate().unwrap(),
            name,
            state: None,
        }
    }
    fn vkey(&self) -> Vkey {
        Vkey::for_cosigner(self.name, &self.key.public()).unwrap()
    }
}

async fn text(
    h: &mut Harness,
    who: &str,
    method: &str,
    path: &str,
    body: Option<String>,
) -> (StatusCode, String) {
    let token = h.login(who).await;
    let url = format!("{}{path}", h.base);
    let req = match method {
        "GET" => h.http.get(url),
        _ => h.http.post(url).body(body.unwrap_or_default()),
    };
    let resp = req.bearer_auth(token).send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn log_vkeys(h: &mut Harness) -> Vec<Vkey> {
    let (s, v) = h.call("sam", "GET", "/api/v1/evidence/keys", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["vkeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| Vkey::parse(k.as_str().unwrap()).unwrap())
        .collect()
}

/// One witness round against the API; the cosigned note.
async fn cosign(h: &mut Harness, w: &mut Witness, keys: &[Vkey]) -> String {
    let old = w.state.as_ref().map_or(0, |s| s.tree_size);
    let (s, body) = text(
        h,
        "sam",
        "GET",
        &format!("/api/v1/evidence/witness?old={old}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let req = AddCheckpoint::parse(body.as_bytes()).unwrap();
    let (record, c) = add_checkpoint(w.state.as_ref(), &req, keys, w.name, &w.key, 1_790_000_000)
        .unwrap_or_else(|e| panic!("{e}"));
    w.state = Some(record);
    format!("{}{}", req.note, c.line)
}

#[tokio::test]
async fn witnesses_cosign_checkpoints_that_bundles_carry() {
    jitgate_testkit::each_backend(|store| async move {
        let data = tempfile::tempdir().unwrap();
        let mut w1 = Witness::new("audit.example/w1");
        let mut stranger = Witness::new("stranger.example/w");
        let configured = vec![w1.vkey().to_string()];
        let mut h = start_custom(
            store,
            Arc::new(ManualClock::new(start_time())),
            data.path(),
            |c| {
                c.evidence.witnesses = configured;
            },
        )
        .await;
        let (_, grant) = grant_with_operations(&mut h, 5).await;
        let keys = log_vkeys(&mut h).await;

        // Witnessing is for the evidence roles.
        let (s, body) = text(&mut h, "alice", "GET", "/api/v1/evidence/witness", None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{body}");

        let note = cosign(&mut h, &mut w1, &keys).await;
        let path = "/api/v1/evidence/witness/cosignatures";
        let (s, v) = text(&mut h, "sam", "POST", path, Some(note.clone())).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v.contains("\"stored\":[\"audit.example/w1\"]"), "{v}");
        let (s, v) = text(&mut h, "sam", "POST", path, Some(note.clone())).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v.contains("\"already\":[\"audit.example/w1\"]"), "{v}");

        // A witness the server was not told about; a note without a cosignature; a note
        // whose checkpoint was altered; a checkpoint the server never stored.
        let foreign = cosign(&mut h, &mut stranger, &keys).await;
        let (s, v) = text(&mut h, "sam", "POST", path, Some(foreign)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert!(v.contains("witness_unknown"), "{v}");
        let bare = note
            .split_once("\n\n")
            .map(|(t, sigs)| format!("{t}\n\n{}\n", sigs.lines().next().unwrap()))
            .unwrap();
        let (s, v) = text(&mut h, "sam", "POST", path, Some(bare)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let size = w1.state.as_ref().unwrap().tree_size;
        let altered = note.replacen(&format!("\n{size}\n"), &format!("\n{}\n", size + 1), 1);
        let (s, v) = text(&mut h, "sam", "POST", path, Some(altered)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let secret = std::fs::read_to_string(data.path().join("evidence-key.secret")).unwrap();
        let log_key = EvidenceKey::from_text(&secret).unwrap();
        let parsed = Note::parse(&note).unwrap();
        let fields = jitgate_evidence::note::checkpoint_fields(&parsed.text).unwrap();
        let unstored = log_key
            .sign_checkpoint(
                fields.origin,
                fields.tree_size,
                &fields.root,
                chrono::Utc::now() + chrono::Duration::days(1),
            )
            .unwrap()
            .to_signed_note(&log_key.public())
            .unwrap();
        let c =
            jitgate_evidence::cosign(&w1.key, w1.name, &Note::parse(&unstored).unwrap().text, 1)
                .unwrap();
        let (s, v) = text(
            &mut h,
            "sam",
            "POST",
            path,
            Some(format!("{unstored}{}", c.line)),
        )
        .await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert!(v.contains("checkpoint_unknown"), "{v}");

        // The log grows; the next round proves consistency from the cosigned size.
        grant_with_operations(&mut h, 3).await;
        let note2 = cosign(&mut h, &mut w1, &keys).await;
        assert!(w1.state.as_ref().unwrap().tree_size > size);
        let (s, v) = text(&mut h, "sam", "POST", path, Some(note2.clone())).await;
        assert_eq!(s, StatusCode::OK, "{v}");

        // The first grant's bundle carries a cosignature the auditor can require.
        let (s, body) = text(
            &mut h,
            "sam",
            "GET",
            &format!("/api/v1/grants/{grant}/evidence"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let (_, key_view) = h.call("sam", "GET", "/api/v1/evidence/keys", None).await;
        let ev_keys =
            jitgate_evidence::EvidencePublicKey::parse_file(key_view["key_file"].as_str().unwrap())
                .unwrap();
        let policy = WitnessPolicy::new(vec![w1.vkey()], 1).unwrap();
        let verified = jitgate_evidence::verify_bundle_witnessed(
            body.as_bytes(),
            &ev_keys,
            &Limits::default(),
            &policy,
        )
        .unwrap();
        assert_eq!(verified.witnesses.len(), 1);
        assert_eq!(verified.witnesses[0].witness, "audit.example/w1");
        // The stranger's key is not a substitute.
        let policy = WitnessPolicy::new(vec![stranger.vkey()], 1).unwrap();
        assert!(jitgate_evidence::verify_bundle_witnessed(
            body.as_bytes(),
            &ev_keys,
            &Limits::default(),
            &policy
        )
        .is_err());

        // An alarm needs two notes the log signed; with them it becomes an event.
        let alarm = |cosigned: &str, presented: &str| {
            json!({
                "witness": "audit.example/w1", "alarm": "fork", "message": "test",
                "cosigned": cosigned, "presented": presented,
            })
        };
        let (s, v) = h
            .call(
                "sam",
                "POST",
                "/api/v1/evidence/witness/alarms",
                Some(alarm("made up", &note2)),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let (s, v) = h
            .call(
                "sam",
                "POST",
                "/api/v1/evidence/witness/alarms",
                Some(alarm(&note, &note2)),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["log_agrees_with_cosigned"], true, "{v}");
        let (_, events) = h
            .call("sam", "GET", "/api/v1/events?limit=1000", None)
            .await;
        let found = events
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "evidence.witness_alarm")
            .cloned();
        let found = found.unwrap_or_else(|| panic!("no alarm event"));
        assert_eq!(found["data"]["witness"], "audit.example/w1");
        assert_eq!(found["data"]["alarm"], "fork");
    })
    .await;
}
