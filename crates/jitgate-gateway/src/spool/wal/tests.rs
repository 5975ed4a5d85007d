#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use serde_json::json;

const SYNC: SyncPolicy = SyncPolicy::Interval(std::time::Duration::from_millis(100));

fn now() -> Timestamp {
    chrono::Utc::now()
}

fn op(wal: &Wal, n: u64) -> i64 {
    wal.append(
        "operation",
        now(),
        Some("g1"),
        Some("s1"),
        &json!({ "n": n }),
    )
    .unwrap()
    .0
}

fn gseqs(wal: &Wal) -> Vec<i64> {
    wal.batch(usize::MAX).iter().map(|e| e.gseq).collect()
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn each_event_is_in_the_file_when_append_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), 0, SYNC).unwrap();
    assert_eq!(op(&wal, 1), 1);
    assert_eq!(op(&wal, 2), 2);
    // Read by another reader, without any flush or drop: write(2) happened.
    let text = std::fs::read_to_string(dir.path().join(segment_name(1))).unwrap();
    let lines: Vec<GatewayEvent> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!((lines[0].gseq, lines[1].gseq), (1, 2));
    assert_eq!(lines[1].data, json!({"n": 2}));
    assert_eq!(lines[1].session_id.as_deref(), Some("s1"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(dir.path().join(segment_name(1))).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn a_torn_last_line_is_skipped_and_the_rest_delivered() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = Wal::open(dir.path(), 0, SYNC).unwrap();
        for n in 1..=3 {
            op(&wal, n);
        }
    }
    // Killed in the middle of writing a fourth event.
    let seg = dir.path().join(segment_name(1));
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(br#"{"gseq":4,"kind":"operation","at":"20"#)
        .unwrap();
    drop(f);

    let (wal, recovered) = Wal::open(dir.path(), 0, SYNC).unwrap();
    assert_eq!(
        recovered,
        Recovered {
            events: 3,
            damaged: 1
        }
    );
    assert_eq!(gseqs(&wal), vec![1, 2, 3]);
    // The torn event was never acknowledged to anyone: its gseq is used again, in a new
    // segment (never glued to the torn bytes).
    assert_eq!(op(&wal, 4), 4);
    let (again, recovered) = Wal::open(dir.path(), 0, SYNC).unwrap();
    assert_eq!(recovered.events, 4);
    assert_eq!(gseqs(&again), vec![1, 2, 3, 4]);
}

#[test]
fn acknowledged_segments_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), 0, SYNC).unwrap();
    wal.rotate_bytes = 1;
    for n in 1..=3 {
        op(&wal, n);
    }
    // Part delivered: the segment is closed for a new one, and kept (2 and 3 wait).
    assert_eq!(wal.acknowledged(1), 2);
    assert_eq!(files(dir.path()), vec![segment_name(1), segment_name(4)]);
    op(&wal, 4);
    // The first segment delivered: deleted; the second closed for a third (4 waits).
    assert_eq!(wal.acknowledged(3), 1);
    assert_eq!(files(dir.path()), vec![segment_name(4), segment_name(5)]);
    // Everything delivered: only the empty current segment is left.
    assert_eq!(wal.acknowledged(4), 0);
    assert_eq!(files(dir.path()), vec![segment_name(5)]);
    assert_eq!(wal.waiting(), 0);
}

#[test]
fn a_restart_delivers_the_rest_once_and_continues_the_gseqs() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (wal, _) = Wal::open(dir.path(), 0, SYNC).unwrap();
        for n in 1..=5 {
            op(&wal, n);
        }
        wal.acknowledged(2);
    }
    // The server has up to 2: 3, 4, 5 come back, each once.
    let (wal, recovered) = Wal::open(dir.path(), 2, SYNC).unwrap();
    assert_eq!(recovered.events, 3);
    assert_eq!(gseqs(&wal), vec![3, 4, 5]);
    assert_eq!(op(&wal, 6), 6);
    drop(wal);
    // The server took more than this process saw acknowledged: only the rest.
    let (wal, _) = Wal::open(dir.path(), 4, SYNC).unwrap();
    assert_eq!(gseqs(&wal), vec![5, 6]);
    assert_eq!(wal.acknowledged(6), 0);
    drop(wal);
    // All delivered and compacted away: the gseqs still go on, even if the server's
    // number were behind (a restored database).
    let (wal, recovered) = Wal::open(dir.path(), 0, SYNC).unwrap();
    assert_eq!(recovered.events, 0);
    assert_eq!(op(&wal, 7), 7);
}

#[test]
fn the_spool_file_of_an_older_gateway_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let line = |gseq: i64| {
        serde_json::to_string(&GatewayEvent {
            gseq,
            kind: "operation".into(),
            at: now(),
            grant_id: None,
            session_id: None,
            data: json!({}),
        })
        .unwrap()
    };
    std::fs::write(
        dir.path().join(LEGACY),
        format!("{}\n{}\n", line(7), line(8)),
    )
    .unwrap();
    let (wal, recovered) = Wal::open(dir.path(), 6, SYNC).unwrap();
    assert_eq!(recovered.events, 2);
    assert_eq!(gseqs(&wal), vec![7, 8]);
    assert!(!dir.path().join(LEGACY).exists());
    assert_eq!(op(&wal, 9), 9);
}

#[test]
fn sync_flushes_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), 0, SYNC).unwrap();
    assert!(!wal.unsynced(), "opening syncs");
    op(&wal, 1);
    assert!(wal.unsynced());
    wal.sync().unwrap();
    assert!(!wal.unsynced());
    // Per event: nothing left for the delivery task.
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), 0, SyncPolicy::EveryEvent).unwrap();
    op(&wal, 1);
    assert!(!wal.unsynced());
}
