use super::*;

fn packet(kind: u8, fields: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = fields.concat();
    let mut p = ((body.len() + 1) as u32).to_be_bytes().to_vec();
    p.push(kind);
    p.extend(body);
    p
}
fn s(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}
fn id(n: u32) -> [u8; 4] {
    n.to_be_bytes()
}
fn off(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// Open `path` as request `n`; the asset answers with handle `h`.
fn open(log: &mut SftpLog, n: u32, path: &[u8], h: &[u8]) {
    assert!(log
        .client_bytes(&packet(
            FXP_OPEN,
            &[&id(n), &s(path), &[0, 0, 0, 26], &[0; 4]]
        ))
        .is_empty());
    assert!(log
        .asset_bytes(&packet(FXP_HANDLE, &[&id(n), &s(h)]))
        .is_empty());
}

fn sha(b: &[u8]) -> Option<String> {
    Some(hex::encode(Sha256::digest(b)))
}

#[test]
fn an_upload_is_logged_at_close_with_its_size_and_digest() {
    let mut log = SftpLog::new();
    log.client_bytes(&packet(1, &[&[0, 0, 0, 3]]));
    log.asset_bytes(&packet(2, &[&[0, 0, 0, 3]]));
    open(&mut log, 1, b"/tmp/recipe.csv", b"h1");
    // Written in two pieces, the second split across two channel messages.
    log.client_bytes(&packet(
        FXP_WRITE,
        &[&id(2), &s(b"h1"), &off(0), &s(b"hello ")],
    ));
    let w = packet(FXP_WRITE, &[&id(3), &s(b"h1"), &off(6), &s(b"world")]);
    let (a, b) = w.split_at(7);
    assert!(log.client_bytes(a).is_empty());
    log.client_bytes(b);
    let ev = log.client_bytes(&packet(FXP_CLOSE, &[&id(4), &s(b"h1")]));
    assert_eq!(
        ev,
        vec![SftpEvent::Transfer {
            path: "/tmp/recipe.csv".into(),
            direction: Direction::Upload,
            size: 11,
            sha256: sha(b"hello world"),
            complete: true,
        }]
    );
}

#[test]
fn a_download_is_the_data_answering_reads_and_out_of_order_has_no_digest() {
    let mut log = SftpLog::new();
    open(&mut log, 1, b"/var/log/plc.log", b"h");
    // Two pipelined reads answered in order.
    log.client_bytes(&packet(
        FXP_READ,
        &[&id(2), &s(b"h"), &off(0), &[0, 0, 0, 4]],
    ));
    log.client_bytes(&packet(
        FXP_READ,
        &[&id(3), &s(b"h"), &off(4), &[0, 0, 0, 4]],
    ));
    log.asset_bytes(&packet(FXP_DATA, &[&id(2), &s(b"abcd")]));
    log.asset_bytes(&packet(FXP_DATA, &[&id(3), &s(b"ef")]));
    // A read past the end: a status, nothing transferred.
    log.client_bytes(&packet(
        FXP_READ,
        &[&id(4), &s(b"h"), &off(6), &[0, 0, 0, 4]],
    ));
    log.asset_bytes(&packet(
        FXP_STATUS,
        &[&id(4), &[0, 0, 0, 1], &s(b"EOF"), &s(b"")],
    ));
    // An answer to nothing is ignored.
    log.asset_bytes(&packet(FXP_DATA, &[&id(99), &s(b"zz")]));
    let ev = log.client_bytes(&packet(FXP_CLOSE, &[&id(5), &s(b"h")]));
    assert_eq!(
        ev,
        vec![SftpEvent::Transfer {
            path: "/var/log/plc.log".into(),
            direction: Direction::Download,
            size: 6,
            sha256: sha(b"abcdef"),
            complete: true,
        }]
    );
    // Seeking around: the size is known, no digest claims an order.
    open(&mut log, 6, b"/f", b"g");
    log.client_bytes(&packet(FXP_WRITE, &[&id(7), &s(b"g"), &off(10), &s(b"x")]));
    log.client_bytes(&packet(FXP_WRITE, &[&id(8), &s(b"g"), &off(0), &s(b"y")]));
    let ev = log.finish();
    assert_eq!(
        ev,
        vec![SftpEvent::Transfer {
            path: "/f".into(),
            direction: Direction::Upload,
            size: 2,
            sha256: None,
            complete: false,
        }]
    );
}

#[test]
fn path_operations_are_logged() {
    let mut log = SftpLog::new();
    let ev = log.client_bytes(
        &[
            packet(FXP_REMOVE, &[&id(1), &s(b"/a")]),
            packet(FXP_RENAME, &[&id(2), &s(b"/b"), &s(b"/c")]),
        ]
        .concat(),
    );
    assert_eq!(
        ev,
        vec![
            SftpEvent::PathOp {
                op: "remove",
                path: "/a".into(),
                to: None
            },
            SftpEvent::PathOp {
                op: "rename",
                path: "/b".into(),
                to: Some("/c".into())
            },
        ]
    );
}

#[test]
fn a_stream_that_cannot_be_followed_says_so_once() {
    // An oversized length.
    let mut log = SftpLog::new();
    let ev = log.client_bytes(&[0xff, 0xff, 0xff, 0xff, 3]);
    assert!(
        matches!(ev.as_slice(), [SftpEvent::Unfollowable(_)]),
        "{ev:?}"
    );
    assert!(log
        .client_bytes(&packet(FXP_REMOVE, &[&id(1), &s(b"/a")]))
        .is_empty());
    // A request cut short inside its packet.
    let mut log = SftpLog::new();
    let ev = log.client_bytes(&packet(FXP_WRITE, &[&id(1), &s(b"h")]));
    assert!(
        matches!(ev.as_slice(), [SftpEvent::Unfollowable(_)]),
        "{ev:?}"
    );
    // Too many reads awaiting an answer.
    let mut log = SftpLog::new();
    open(&mut log, 1, b"/f", b"h");
    let mut last = Vec::new();
    for n in 0..=MAX_PENDING as u32 {
        last = log.client_bytes(&packet(
            FXP_READ,
            &[&id(10 + n), &s(b"h"), &off(0), &[0, 0, 0, 1]],
        ));
        if !last.is_empty() {
            break;
        }
    }
    assert!(
        matches!(last.as_slice(), [SftpEvent::Unfollowable(_)]),
        "{last:?}"
    );
}
