//! Session recordings through the API, as a gateway delivers them: `recording.chunk` events
//! in the event stream, chunk bytes checked against them, the cast served to who may see
//! the grant, the bundle carrying the chunks and failing offline when one byte changes —
//! on SQLite and on PostgreSQL.

use super::*;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use jitgate_core::recording::ChunkMeta;
use jitgate_core::Clock;
use jitgate_evidence::{verify_bundle, BundleError, EvidencePublicKey};
use jitgate_gateway::recording::{CastHeader, RecordedChunk, RecorderLimits, SessionRecorder};
use std::time::Duration;

/// The gateway's default flush policy for its event file.
const SYNC: jitgate_gateway::spool::SyncPolicy =
    jitgate_gateway::spool::SyncPolicy::Interval(jitgate_gateway::spool::DEFAULT_SYNC_INTERVAL);

/// A recorded session of several chunks (small chunk bound), and its cast.
fn recorded(session: &str, start: Timestamp) -> (Vec<RecordedChunk>, Vec<u8>) {
    let clock = Arc::new(ManualClock::new(start));
    let mut header = CastHeader::new(80, 24, 0);
    header.env.insert("TERM".into(), "xterm".into());
    let mut r = SessionRecorder::new(
        session,
        header,
        clock.clone(),
        RecorderLimits {
            chunk_bytes: 120,
            ..Default::default()
        },
    );
    let mut chunks = Vec::new();
    for i in 0..6 {
        clock.advance(chrono::Duration::milliseconds(300));
        chunks.extend(r.input(format!("echo {i}\r").as_bytes()));
        chunks.extend(r.output(format!("echo {i}\r\n{i}\r\n$ ").as_bytes()));
    }
    chunks.extend(r.exit(0));
    chunks.extend(r.finish());
    let cast = chunks.iter().flat_map(|c| c.bytes.clone()).collect();
    (chunks, cast)
}

fn chunk_event(gseq: i64, at: Timestamp, grant: &Value, c: &RecordedChunk) -> Value {
    json!({"gseq": gseq, "kind": "recording.chunk", "at": jitgate_core::event::rfc3339(at),
           "grant_id": grant, "session_id": c.meta.session_id, "data": c.detail()})
}

async fn post_frame(
    h: &Harness,
    key: &str,
    session: &str,
    index: u64,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let resp = h
        .http
        .post(format!(
            "{}/api/v1/gateway/recordings/{session}/chunks/{index}",
            h.base
        ))
        .bearer_auth(key)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v = resp.json().await.unwrap_or(Value::Null);
    (status, v)
}

async fn get_cast(
    h: &Harness,
    session: &str,
    token: String,
) -> (StatusCode, Option<String>, Vec<u8>) {
    get_cast_from(h, session, token, 0).await
}

/// The cast from chunk `from` on (`?from=`; none for 0).
async fn get_cast_from(
    h: &Harness,
    session: &str,
    token: String,
    from: u64,
) -> (StatusCode, Option<String>, Vec<u8>) {
    let query = if from > 0 {
        format!("?from={from}")
    } else {
        String::new()
    };
    let r = h
        .http
        .get(format!(
            "{}/api/v1/sessions/{session}/recording{query}",
            h.base
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let state = r
        .headers()
        .get("x-jitgate-recording")
        .map(|v| v.to_str().unwrap().to_string());
    (status, state, r.bytes().await.unwrap().to_vec())
}

async fn gateway_key(h: &mut Harness, workload: &str) -> String {
    h.api_key(workload, "rec").await
}

async fn events(h: &Harness, key: &str, events: Vec<Value>) -> (StatusCode, Value) {
    h.raw(
        "POST",
        "/api/v1/gateway/events",
        Some(key),
        Some(json!({"events": events})),
    )
    .await
}

async fn bundle_of(h: &mut Harness, grant: &str) -> (String, Vec<EvidencePublicKey>) {
    let token = h.login("sam").await;
    let resp = h
        .http
        .get(format!("{}/api/v1/grants/{grant}/evidence", h.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    let (_, keys) = h.call("sam", "GET", "/api/v1/evidence/keys", None).await;
    (
        text,
        EvidencePublicKey::parse_file(keys["key_file"].as_str().unwrap()).unwrap(),
    )
}

#[tokio::test]
async fn chunks_are_logged_delivered_checked_served_and_bundled() {
    jitgate_testkit::each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let req = h.request("alice", read_plc7()).await;
        let (_, granted) = h.approve("bob", &req, None).await;
        let grant = granted["grant"]["id"].clone();
        let grant_id = grant.as_str().unwrap().to_string();
        let north = gateway_key(&mut h, "gw-north").await;
        let mut south = json!({"id": "gw-south", "kind": "workload", "roles": ["gateway"], "sites": ["south"], "owners": ["sam"]});
        let (s, v) = h.call("sam", "PUT", "/api/v1/identities/gw-south", Some(south.take())).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let south = gateway_key(&mut h, "gw-south").await;

        let at = h.clock.now() + chrono::Duration::seconds(1);
        let session = "sess-rec1";
        let (chunks, cast) = recorded(session, at);
        assert!(chunks.len() >= 4, "several chunks: {}", chunks.len());

        // Bytes before their event: not yet (the gateway retries).
        let (s, v) = post_frame(&h, &north, session, 0, chunks[0].frame()).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::CONFLICT, Some("recording_chunk_unknown")), "{v}");

        // Another gateway cannot log chunks for a grant on assets it does not front.
        let (s, v) = events(&h, &south, vec![chunk_event(1, at, &grant, &chunks[0])]).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("grant_not_fronted")), "{v}");

        // A gap in the chain is refused, and nothing of the batch is recorded.
        let before = h.event_count().await;
        let (s, v) = events(
            &h,
            &north,
            vec![chunk_event(1, at, &grant, &chunks[0]), chunk_event(2, at, &grant, &chunks[2])],
        )
        .await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::CONFLICT, Some("recording_chain_broken")), "{v}");
        assert!(v["message"].as_str().unwrap().contains("chunk 2 where chunk 1"), "{v}");
        assert_eq!(h.event_count().await, before);

        // The whole session, in order.
        let mut evs = vec![json!({"gseq": 1, "kind": "session.started", "at": jitgate_core::event::rfc3339(at),
            "grant_id": grant, "session_id": session, "data": {"subject": "alice", "asset": "plc-7"}})];
        for (i, c) in chunks.iter().enumerate() {
            evs.push(chunk_event(2 + i as i64, at, &grant, c));
        }
        let n = evs.len() as i64;
        evs.push(json!({"gseq": n + 1, "kind": "session.ended", "at": jitgate_core::event::rfc3339(at),
            "grant_id": grant, "session_id": session, "data": {"reason": "client_closed"}}));
        let (s, v) = events(&h, &north, evs).await;
        assert_eq!(s, StatusCode::OK, "{v}");

        // A chunk after the last one is refused.
        let late = ChunkMeta::of(session, chunks.len() as u64, cast.len() as u64, false, chunks.last().unwrap().meta.hash, b"x");
        let late = RecordedChunk { meta: late, bytes: b"x".to_vec() };
        let (s, v) = events(&h, &north, vec![chunk_event(n + 2, at, &grant, &late)]).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::CONFLICT, Some("recording_chain_broken")), "{v}");

        // The other gateway is told nothing about this session.
        let (s, v) = post_frame(&h, &south, session, 0, chunks[0].frame()).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::CONFLICT, Some("recording_chunk_unknown")), "{v}");
        // A frame altered in transit fails its own hash; one re-hashed over other bytes is
        // not the chunk the log recorded: a recorded chunk cannot be replaced.
        let mut flipped = chunks[1].frame();
        let last = flipped.len() - 2;
        flipped[last] ^= 1;
        let (s, v) = post_frame(&h, &north, session, 1, flipped).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_recording_chunk")), "{v}");
        let m = &chunks[1].meta;
        let other = ChunkMeta::of(session, 1, m.offset, m.last, m.prev_hash, &vec![b'z'; m.length as usize]);
        let (s, v) = post_frame(&h, &north, session, 1, other.frame(&vec![b'z'; m.length as usize])).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::CONFLICT, Some("recording_chunk_mismatch")), "{v}");
        // The URL and the frame must agree; one frame per request; no absurd length.
        let (s, v) = post_frame(&h, &north, session, 2, chunks[1].frame()).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_recording_chunk")), "{v}");
        let mut two = chunks[1].frame();
        two.extend(chunks[2].frame());
        let (s, v) = post_frame(&h, &north, session, 1, two).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_recording_chunk")), "{v}");
        let huge = format!("jitgate-recording-chunk/1 {session} 1 0 99999999999 0 {} {}\n", "0".repeat(64), "0".repeat(64));
        let (s, v) = post_frame(&h, &north, session, 1, huge.into_bytes()).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_recording_chunk")), "{v}");

        // Delivered but for the last chunk: the cast is served as far as it goes.
        for c in &chunks[..chunks.len() - 1] {
            let (s, v) = post_frame(&h, &north, session, c.meta.index, c.frame()).await;
            assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("stored")), "{v}");
        }
        let alice = h.login("alice").await;
        let (s, state, body) = get_cast(&h, session, alice.clone()).await;
        assert_eq!(s, StatusCode::OK);
        let n_chunks = chunks.len();
        assert_eq!(state.as_deref(), Some(format!("partial; chunks={}/{n_chunks}", n_chunks - 1).as_str()));
        assert_eq!(body, cast[..chunks.last().unwrap().meta.offset as usize]);
        // A reader that has the first two chunks asks for the rest only.
        let (s, state, body) = get_cast_from(&h, session, alice.clone(), 2).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(state.as_deref(), Some(format!("partial; chunks={}/{n_chunks}", n_chunks - 1).as_str()));
        assert_eq!(body, cast[chunks[2].meta.offset as usize..chunks.last().unwrap().meta.offset as usize]);
        let last = chunks.last().unwrap();
        let (s, v) = post_frame(&h, &north, session, last.meta.index, last.frame()).await;
        assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("stored")), "{v}");
        // A retry of the same bytes is answered alike, and changes nothing.
        let (s, v) = post_frame(&h, &north, session, last.meta.index, last.frame()).await;
        assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("already_stored")), "{v}");
        let (s, state, body) = get_cast(&h, session, alice.clone()).await;
        assert_eq!((s, state.as_deref()), (StatusCode::OK, Some("complete")));
        assert_eq!(body, cast);
        let (s, state, body) = get_cast_from(&h, session, alice.clone(), last.meta.index).await;
        assert_eq!((s, state.as_deref()), (StatusCode::OK, Some("complete")));
        assert_eq!(body, last.bytes);
        let (s, state, body) = get_cast_from(&h, session, alice, 1000).await;
        assert_eq!((s, state.as_deref(), body.len()), (StatusCode::OK, Some("complete"), 0));

        // Same visibility as the grant's sessions: a vendor of another org sees nothing.
        let vera = h.login("vera").await;
        let (s, _, _) = get_cast(&h, session, vera.clone()).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, _) = get_cast_from(&h, session, vera, 1).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, v) = h.call("vera", "GET", &format!("/api/v1/recordings?grant={grant_id}"), None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        let (s, v) = h.call("vera", "GET", "/api/v1/recordings", None).await;
        assert_eq!((s, v.clone()), (StatusCode::OK, json!([])), "{v}");
        let (s, v) = h.call("alice", "GET", &format!("/api/v1/recordings?grant={grant_id}"), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
        assert_eq!(v[0]["session_id"], session);
        assert_eq!(v[0]["chunks"], n_chunks);
        assert_eq!(v[0]["stored_chunks"], n_chunks);
        assert_eq!(v[0]["bytes"], cast.len());
        assert_eq!(v[0]["complete"], true);

        // The bundle carries the chunks; offline verification reassembles the cast.
        let (text, keys) = bundle_of(&mut h, &grant_id).await;
        let verified = verify_bundle(text.as_bytes(), &keys).unwrap();
        assert_eq!(verified.recordings.len(), 1);
        let r = &verified.recordings[0];
        assert!(r.complete && r.chunks_with_bytes == n_chunks as u64);
        assert_eq!(r.cast, cast);
        let timeline = verified.timeline_text();
        assert!(timeline.contains("session sess-rec1 recording chunk 0 ("), "{timeline}");
        assert!(timeline.contains(&format!("recording chunk {} (last)", n_chunks - 1)), "{timeline}");
        assert!(verified.notes.iter().all(|n| !n.contains("recording")), "{:?}", verified.notes);

        // One byte of the recording changed: verification fails naming the chunk.
        let mut b: Value = serde_json::from_str(&text).unwrap();
        let mut data = B64.decode(b["recordings"][2]["data"].as_str().unwrap()).unwrap();
        data[5] ^= 0x20;
        b["recordings"][2]["data"] = json!(B64.encode(&data));
        let err = verify_bundle(b.to_string().as_bytes(), &keys).unwrap_err();
        assert!(matches!(err, BundleError::Recording { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.starts_with("recordings[2]: chunk 2 of session sess-rec1") && msg.contains("altered"), "{msg}");
        // A chunk removed after export is named too.
        let mut b: Value = serde_json::from_str(&text).unwrap();
        b["recordings"].as_array_mut().unwrap().remove(3);
        let err = verify_bundle(b.to_string().as_bytes(), &keys).unwrap_err().to_string();
        assert!(err.contains("chunk sess-rec1/3 was exported") && err.contains("removed"), "{err}");
        h.stop().await;
    })
    .await;
}

/// A gateway cut before the session's end: the chunks logged so far verify, and the bundle
/// says the recording lacks its end and which chunk's bytes the server never received.
#[tokio::test]
async fn a_cut_recording_verifies_with_notes_naming_what_is_missing() {
    jitgate_testkit::each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let req = h.request("alice", read_plc7()).await;
        let (_, granted) = h.approve("bob", &req, None).await;
        let grant = granted["grant"]["id"].clone();
        let north = gateway_key(&mut h, "gw-north").await;
        let at = h.clock.now() + chrono::Duration::seconds(1);
        let (chunks, _) = recorded("sess-cut", at);
        // The gateway died after logging chunks 0..=2 and delivering the bytes of 0 and 1.
        let evs = chunks[..3]
            .iter()
            .enumerate()
            .map(|(i, c)| chunk_event(1 + i as i64, at, &grant, c))
            .collect();
        let (s, v) = events(&h, &north, evs).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for c in &chunks[..2] {
            let (s, v) = post_frame(&h, &north, "sess-cut", c.meta.index, c.frame()).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
        let (text, keys) = bundle_of(&mut h, grant.as_str().unwrap()).await;
        let v = verify_bundle(text.as_bytes(), &keys).unwrap();
        let r = &v.recordings[0];
        assert_eq!((r.chunks, r.chunks_with_bytes, r.complete), (3, 2, false));
        let notes = v.notes.join("\n");
        assert!(
            notes.contains(
                "session sess-cut: chunk(s) 2 are logged but their bytes are not in the bundle"
            ),
            "{notes}"
        );
        assert!(
            notes.contains("session sess-cut ends at chunk 2 without its last chunk"),
            "{notes}"
        );
        h.stop().await;
    })
    .await;
}

/// The recordings spool files left in a gateway's state directory.
fn spool_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("recordings") && n.ends_with(".spool"))
        .collect()
}

/// A URL where nothing listens: the server is away.
fn away() -> String {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    url
}

/// Wait until the server serves `session`'s whole cast, and compare it.
async fn wait_for_cast(h: &mut Harness, session: &str, cast: &[u8]) {
    let alice = h.login("alice").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (s, state, body) = get_cast(h, session, alice.clone()).await;
        if state.as_deref() == Some("complete") {
            assert!(
                body == cast,
                "the served cast differs from the recorded one"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not delivered: {s} {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until the gateway removed every recordings spool file (all delivered).
async fn wait_for_empty_spool(dir: &std::path::Path) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !spool_files(dir).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the recordings spool is not cleared: {:?}",
            spool_files(dir)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The gateway's own delivery: with the server away, the chunks' events and bytes go to the
/// spool files; a gateway started again with the server back delivers both, and the server
/// then serves the whole cast and the recordings spool is cleared.
#[tokio::test]
async fn a_gateway_spools_chunks_while_the_server_is_away_and_delivers_them_later() {
    use jitgate_gateway::recording::deliver::{self, SpoolLimits};
    use jitgate_gateway::server_api::ServerApi;
    let (store, _db) = jitgate_testkit::sqlite_store().await;
    let mut h = Harness::start(store).await;
    let req = h.request("alice", read_plc7()).await;
    let (_, granted) = h.approve("bob", &req, None).await;
    let grant_id = granted["grant"]["id"].as_str().unwrap().to_string();
    let key = gateway_key(&mut h, "gw-north").await;
    let state = tempfile::tempdir().unwrap();
    let at = h.clock.now() + chrono::Duration::seconds(1);
    let (chunks, cast) = recorded("sess-spooled", at);

    // The server is away: nothing listens where the gateway sends.
    let api = ServerApi::new(&away(), &key, None).unwrap();
    let (events, events_task) =
        jitgate_gateway::spool::start(api.clone(), state.path(), 0, SYNC).unwrap();
    let (sink, chunks_task) =
        deliver::start(api, state.path(), events.clone(), SpoolLimits::default()).unwrap();
    for c in &chunks {
        sink.chunk(&grant_id, at, c.clone());
    }
    assert!(events.flush_to_disk(Duration::from_secs(10)).await);
    assert!(sink.flush_to_disk(Duration::from_secs(10)).await);
    assert_eq!(
        deliver::spooled_frames(state.path()).unwrap().len(),
        chunks.len()
    );
    events_task.abort();
    chunks_task.abort();

    // Started again, with the server back.
    let api = ServerApi::new(&h.base, &key, None).unwrap();
    let (events, _t1) = jitgate_gateway::spool::start(api.clone(), state.path(), 0, SYNC).unwrap();
    let (_sink, _t2) = deliver::start(api, state.path(), events, SpoolLimits::default()).unwrap();
    wait_for_cast(&mut h, "sess-spooled", &cast).await;
    wait_for_empty_spool(state.path()).await;
    h.stop().await;
}

/// The spool's cap: with the server away a bulk session fills the spool to the cap and
/// then waits (nothing is dropped to make room); started again with the server back, the
/// gateway finds the spool full, and the session may go on once deliveries made room. The
/// server ends with the whole cast.
#[tokio::test]
async fn a_full_recordings_spool_holds_the_session_until_the_server_took_chunks() {
    use futures_util::FutureExt as _;
    use jitgate_gateway::recording::deliver::{self, SpoolLimits, MIN_MAX_SPOOL_BYTES};
    use jitgate_gateway::server_api::ServerApi;
    let (store, _db) = jitgate_testkit::sqlite_store().await;
    let mut h = Harness::start(store).await;
    let req = h.request("alice", read_plc7()).await;
    let (_, granted) = h.approve("bob", &req, None).await;
    let grant_id = granted["grant"]["id"].as_str().unwrap().to_string();
    let key = gateway_key(&mut h, "gw-north").await;
    let state = tempfile::tempdir().unwrap();
    let limits = SpoolLimits {
        max_bytes: MIN_MAX_SPOOL_BYTES,
    };
    let at = h.clock.now() + chrono::Duration::seconds(1);
    let clock = Arc::new(ManualClock::new(at));
    let mut rec = SessionRecorder::new(
        "sess-bulk",
        CastHeader::new(80, 24, 0),
        clock,
        RecorderLimits::default(),
    );
    let mut cast = Vec::new();
    // 8 MiB of output, twice the cap, read by read as a relay would.
    let line: Vec<u8> = (0..8 * 1024 * 1024)
        .map(|i| {
            if i % 80 == 79 {
                b'\n'
            } else {
                b' ' + (i % 95) as u8
            }
        })
        .collect();
    let mut reads = line.chunks(32 * 1024);

    let api = ServerApi::new(&away(), &key, None).unwrap();
    let (events, events_task) =
        jitgate_gateway::spool::start(api.clone(), state.path(), 0, SYNC).unwrap();
    let (sink, chunks_task) = deliver::start(api, state.path(), events.clone(), limits).unwrap();
    let room = sink.room();
    let mut handed = 0;
    while room.available() {
        let read = reads
            .next()
            .expect("the cap is reached before the output ends");
        for c in rec.output(read) {
            cast.extend_from_slice(&c.bytes);
            sink.chunk(&grant_id, at, c);
            handed += 1;
        }
    }
    assert!(room.wait().now_or_never().is_none(), "the session waits");
    assert!(sink.spooled_bytes() >= MIN_MAX_SPOOL_BYTES);
    assert!(events.flush_to_disk(Duration::from_secs(10)).await);
    assert!(sink.flush_to_disk(Duration::from_secs(10)).await);
    assert_eq!(deliver::spooled_frames(state.path()).unwrap().len(), handed);
    events_task.abort();
    chunks_task.abort();
    drop(sink);

    // Started again with the server back: the spool is still full at first.
    let api = ServerApi::new(&h.base, &key, None).unwrap();
    let (events, _t1) = jitgate_gateway::spool::start(api.clone(), state.path(), 0, SYNC).unwrap();
    let (sink, _t2) = deliver::start(api, state.path(), events, limits).unwrap();
    let room = sink.room();
    assert!(
        !room.available(),
        "the spool read back is as full as it was"
    );
    tokio::time::timeout(Duration::from_secs(60), room.wait())
        .await
        .expect("deliveries make room");
    for read in reads {
        room.wait().await;
        for c in rec.output(read) {
            cast.extend_from_slice(&c.bytes);
            sink.chunk(&grant_id, at, c);
        }
    }
    for c in rec.finish() {
        cast.extend_from_slice(&c.bytes);
        sink.chunk(&grant_id, at, c);
    }
    wait_for_cast(&mut h, "sess-bulk", &cast).await;
    wait_for_empty_spool(state.path()).await;
    h.stop().await;
}
