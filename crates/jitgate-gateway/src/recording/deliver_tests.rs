//! The recordings spool without a server: frames land in segment files in order, the cap
//! holds sessions back, and a restart reads everything back (a torn end dropped, the
//! single file of earlier versions first). Delivery to a real server, and room made by
//! it, is tested with the server (`jitgate-server/tests/it/recordings.rs`).

use super::*;
use crate::recording::{CastHeader, RecorderLimits, SessionRecorder};
use futures_util::FutureExt as _;

/// A server API nothing answers: every post fails and is retried, so frames stay spooled.
fn away() -> ServerApi {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    ServerApi::new(&url, "jgk_test", None).unwrap()
}

/// A recording of `n` chunks of about `size` bytes each.
fn chunks(session: &str, n: usize, size: usize) -> Vec<RecordedChunk> {
    let clock = Arc::new(jitgate_core::ManualClock::new(chrono::Utc::now()));
    let mut r = SessionRecorder::new(
        session,
        CastHeader::new(80, 24, 0),
        clock,
        RecorderLimits {
            chunk_bytes: size,
            ..Default::default()
        },
    );
    let mut out = Vec::new();
    while out.len() < n - 1 {
        out.extend(r.output(&vec![b'y'; size.min(4000)]));
    }
    out.truncate(n - 1);
    out.extend(r.finish());
    out
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".spool"))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn frames_are_spooled_in_order_across_segments_and_read_back_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let limits = SpoolLimits {
        max_bytes: 64 * 1024 * 1024,
    };
    assert_eq!(limits.segment_bytes(), 8 * 1024 * 1024);
    let limits = SpoolLimits {
        max_bytes: MIN_MAX_SPOOL_BYTES,
    };
    assert_eq!(limits.segment_bytes(), 1024 * 1024);
    let (events, _drain) = crate::spool::in_memory();
    let (sink, task) = start(away(), dir.path(), events, limits).unwrap();
    let all = chunks("sess-a", 40, 64 * 1024);
    let frames: Vec<Vec<u8>> = all.iter().map(RecordedChunk::frame).collect();
    let total: u64 = frames.iter().map(|f| f.len() as u64).sum();
    for c in all {
        sink.chunk("grant-1", chrono::Utc::now(), c);
    }
    assert!(sink.flush_to_disk(Duration::from_secs(10)).await);
    // 40 frames of 64 KiB and a bit: three 1 MiB segments.
    assert_eq!(
        segment_files(dir.path()),
        [
            "recordings-00000000.spool",
            "recordings-00000001.spool",
            "recordings-00000002.spool"
        ]
    );
    let back = spooled_frames(dir.path()).unwrap();
    assert_eq!(
        back.iter().map(|f| f.frame.clone()).collect::<Vec<_>>(),
        frames
    );
    assert!(back
        .iter()
        .enumerate()
        .all(|(i, f)| f.session == "sess-a" && f.index == i as u64));
    // Nothing was delivered: all of it is held, which is below this cap of 4 MiB.
    assert_eq!(sink.spooled_bytes(), total);
    assert!(sink.room().available());

    // A crash while a frame was being written, then a restart: the torn frame is dropped,
    // the rest is read back, and new frames go to a new file after the old ones.
    task.abort();
    drop(sink);
    let last = dir.path().join("recordings-00000002.spool");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    f.write_all(&frames[3][..frames[3].len() / 2]).unwrap();
    drop(f);
    let (events, _drain) = crate::spool::in_memory();
    let (sink, task) = start(away(), dir.path(), events, limits).unwrap();
    let torn = (frames[3].len() / 2) as u64;
    assert_eq!(sink.spooled_bytes(), total + torn);
    assert_eq!(shared_queue(&sink), frames.len());
    sink.chunk(
        "grant-1",
        chrono::Utc::now(),
        chunks("sess-b", 1, 100).remove(0),
    );
    assert!(sink.flush_to_disk(Duration::from_secs(10)).await);
    assert_eq!(
        segment_files(dir.path()).last().unwrap(),
        "recordings-00000003.spool"
    );
    let back = spooled_frames(dir.path()).unwrap();
    assert_eq!(back.len(), frames.len() + 1);
    assert_eq!((back[40].session.as_str(), back[40].index), ("sess-b", 0));
    task.abort();
}

fn shared_queue(sink: &RecordingSink) -> usize {
    sink.shared.state().queue.len()
}

#[tokio::test]
async fn the_single_file_of_earlier_versions_is_read_first() {
    let dir = tempfile::tempdir().unwrap();
    let old = chunks("sess-old", 3, 200);
    let mut legacy = Vec::new();
    for c in &old {
        legacy.extend_from_slice(&c.frame());
    }
    std::fs::write(dir.path().join(LEGACY_SPOOL), &legacy).unwrap();
    // And a segment of a run after it.
    let newer = chunks("sess-new", 2, 200);
    let mut seg = Vec::new();
    for c in &newer {
        seg.extend_from_slice(&c.frame());
    }
    std::fs::write(dir.path().join("recordings-00000004.spool"), &seg).unwrap();
    // An empty file (everything in it was delivered just before a crash) is removed.
    std::fs::write(dir.path().join("recordings-00000002.spool"), b"").unwrap();
    let (events, _drain) = crate::spool::in_memory();
    let (sink, task) = start(away(), dir.path(), events, SpoolLimits::default()).unwrap();
    let order: Vec<(String, u64)> = sink
        .shared
        .state()
        .queue
        .iter()
        .map(|e| (e.session.to_string(), e.index))
        .collect();
    assert_eq!(
        order,
        [
            ("sess-old".to_string(), 0),
            ("sess-old".to_string(), 1),
            ("sess-old".to_string(), 2),
            ("sess-new".to_string(), 0),
            ("sess-new".to_string(), 1),
        ]
    );
    assert_eq!(sink.spooled_bytes(), (legacy.len() + seg.len()) as u64);
    assert_eq!(
        segment_files(dir.path()),
        ["recordings-00000004.spool", "recordings.spool"]
    );
    sink.chunk("g", chrono::Utc::now(), chunks("sess-c", 1, 100).remove(0));
    assert!(sink.flush_to_disk(Duration::from_secs(10)).await);
    assert!(segment_files(dir.path()).contains(&"recordings-00000005.spool".to_string()));
    task.abort();
}

#[tokio::test]
async fn a_full_spool_holds_sessions_back_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let limits = SpoolLimits {
        max_bytes: MIN_MAX_SPOOL_BYTES,
    };
    let (events, _drain) = crate::spool::in_memory();
    let (sink, task) = start(away(), dir.path(), events, limits).unwrap();
    let room = sink.room();
    assert!(
        room.wait().now_or_never().is_some(),
        "an empty spool has room"
    );
    let all = chunks("sess-a", 70, 64 * 1024);
    let n = all.len();
    let mut handed = 0;
    for c in all {
        // What a session's relay does: wait for room, then record.
        if !room.available() {
            break;
        }
        sink.chunk("grant-1", chrono::Utc::now(), c);
        handed += 1;
    }
    assert!(handed < n, "the cap was reached");
    assert!(sink.spooled_bytes() >= MIN_MAX_SPOOL_BYTES);
    assert!(
        room.wait().now_or_never().is_none(),
        "a session waits while the spool is full"
    );
    // Everything handed over is kept, on disk.
    assert!(sink.flush_to_disk(Duration::from_secs(10)).await);
    assert_eq!(spooled_frames(dir.path()).unwrap().len(), handed);
    // Frames removed from the spool make room (here: as the delivery task does it once the
    // server took them).
    let waiting = tokio::spawn({
        let room = room.clone();
        async move { room.wait().await }
    });
    for _ in 0..handed {
        done_with_front(&sink.shared);
    }
    waiting.await.unwrap();
    assert_eq!(sink.spooled_bytes(), 0);
    assert!(
        segment_files(dir.path()).is_empty(),
        "delivered files are removed"
    );
    task.abort();
}
