//! The relay loop and the session handle under tokio's paused clock: in-memory streams
//! for client and device, so time only moves when every task waits, and the idle timeout,
//! expiry and cuts are checked to the millisecond without sleeping.

use super::*;
use crate::live::{LiveSessions, SessionInfo};
use crate::modbus::proto::Modbus;
use jitgate_core::scope::{ModbusOp, ModbusTable, ScopeItem};
use std::sync::Arc;
use tokio::io::DuplexStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;

type Drain =
    Box<dyn FnMut() -> Vec<(String, Option<String>, Option<String>, serde_json::Value)> + Send>;

struct Run {
    registry: Arc<LiveSessions>,
    events: Drain,
    client: DuplexStream,
    session: JoinHandle<(String, SessionStats)>,
}

/// A device that answers every FC3 read of one register with the value 7.
async fn device(mut io: DuplexStream) {
    let mut req = [0u8; 12];
    while io.read_exact(&mut req).await.is_ok() {
        let resp = [req[0], req[1], 0, 0, 0, 5, req[6], 3, 2, 0, 7];
        if io.write_all(&resp).await.is_err() {
            return;
        }
    }
}

fn info() -> SessionInfo {
    SessionInfo {
        session_id: "sess-1".into(),
        grant_id: "grant-1".into(),
        kid: "k1".into(),
        expires_at: now_millis() + chrono::Duration::hours(1),
    }
}

/// A session reading holding registers 0-9 of unit 1, relayed like the gateway does.
fn start(until_expiry: Duration, idle: Duration) -> Run {
    let (events, drain) = crate::spool::in_memory();
    let registry = Arc::new(LiveSessions::new(events));
    let (client, mut gw_client) = tokio::io::duplex(1024);
    let (mut gw_device, dev) = tokio::io::duplex(1024);
    tokio::spawn(device(dev));
    let handle = registry.join(info(), until_expiry, idle);
    let session = tokio::spawn(async move {
        let scope = [ScopeItem::Modbus {
            asset: "plc-7".into(),
            unit: 1,
            op: ModbusOp::Read,
            table: Some(ModbusTable::Holding),
            start: 0,
            end: 9,
        }];
        let allow = crate::modbus::AllowList::compile("plc-7", &scope);
        let mut stats = SessionStats::default();
        #[expect(
            clippy::let_unit_value,
            reason = "Modbus keeps no state; written as the gateway does for any protocol"
        )]
        let mut state = Modbus::new_state(&allow);
        let reason = tokio::select! {
            r = relay::<Modbus, _, _>(&handle, &mut gw_client, &mut gw_device, &allow, &mut state, Duration::from_secs(5), &mut stats) => r,
            r = handle.cut() => r,
        };
        handle.end(reason.clone(), stats, now_millis());
        (reason, stats)
    });
    Run {
        registry,
        events: Box::new(drain),
        client,
        session,
    }
}

async fn read_register(client: &mut DuplexStream, addr: u8) -> Vec<u8> {
    client
        .write_all(&[0, 1, 0, 0, 0, 6, 1, 3, 0, addr, 0, 1])
        .await
        .unwrap();
    let mut resp = vec![0u8; 11];
    client.read_exact(&mut resp).await.unwrap();
    resp
}

const HOUR: Duration = Duration::from_secs(3600);
const MINUTE: Duration = Duration::from_secs(60);

fn within_a_tick(elapsed: Duration, expected: Duration) {
    assert!(
        elapsed >= expected && elapsed < expected + Duration::from_millis(5),
        "ended after {elapsed:?}, expected {expected:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_session_without_traffic_ends_at_the_idle_timeout() {
    let t0 = Instant::now();
    let mut run = start(HOUR, MINUTE);
    let (reason, stats) = run.session.await.unwrap();
    assert_eq!(reason, "idle_timeout");
    within_a_tick(t0.elapsed(), MINUTE);
    assert_eq!(stats, SessionStats::default());
    let events = (run.events)();
    let ended: Vec<_> = events.iter().filter(|e| e.0 == "session.ended").collect();
    assert_eq!(ended.len(), 1, "{events:?}");
    assert_eq!(ended[0].3["reason"], "idle_timeout");
    assert_eq!(ended[0].1.as_deref(), Some("grant-1"));
    assert_eq!(run.registry.count(), 0);
    assert_eq!(run.registry.closed_of("grant-1")[0].reason, "idle_timeout");
}

#[tokio::test(start_paused = true)]
async fn traffic_restarts_the_idle_timeout() {
    let t0 = Instant::now();
    let mut run = start(HOUR, MINUTE);
    tokio::time::sleep(Duration::from_secs(50)).await;
    assert_eq!(
        read_register(&mut run.client, 3).await,
        [0, 1, 0, 0, 0, 5, 1, 3, 2, 0, 7]
    );
    tokio::time::sleep(Duration::from_secs(50)).await;
    // 100 s after the start, 50 s after the last request: still in.
    assert_eq!(read_register(&mut run.client, 4).await[10], 7);
    let (reason, stats) = run.session.await.unwrap();
    assert_eq!(reason, "idle_timeout");
    within_a_tick(t0.elapsed(), Duration::from_secs(160));
    assert_eq!((stats.operations, stats.denied), (2, 0));
    assert_eq!((stats.bytes_in, stats.bytes_out), (24, 22));
    let ops = (run.events)()
        .into_iter()
        .filter(|e| e.0 == "operation")
        .count();
    assert_eq!(ops, 2);
}

#[tokio::test(start_paused = true)]
async fn expiry_comes_first_when_it_is_sooner() {
    let t0 = Instant::now();
    let run = start(Duration::from_secs(30), MINUTE);
    let (reason, _) = run.session.await.unwrap();
    assert_eq!(reason, "expired");
    within_a_tick(t0.elapsed(), Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn a_cut_through_the_registry_ends_the_session_with_its_reason() {
    let mut run = start(HOUR, 15 * MINUTE);
    assert_eq!(read_register(&mut run.client, 0).await[10], 7);
    assert_eq!(run.registry.count_of_grant("grant-1"), 1);
    assert_eq!(run.registry.count_of_key("k1"), 1);
    assert_eq!(run.registry.cut_grant("grant-other", "grant_revoked"), 0);
    assert_eq!(run.registry.cut_grant("grant-1", "grant_revoked"), 1);
    let (reason, stats) = run.session.await.unwrap();
    assert_eq!(reason, "grant_revoked");
    assert_eq!(stats.operations, 1);
    let closed = run.registry.closed_of("grant-1");
    assert_eq!(closed.len(), 1);
    assert_eq!(
        (closed[0].reason.as_str(), closed[0].operations),
        ("grant_revoked", 1)
    );
    assert_eq!(run.registry.count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_refused_request_is_answered_by_the_protocol_and_a_broken_frame_ends_it() {
    let mut run = start(HOUR, MINUTE);
    // Register 50 is outside the grant: a Modbus exception, and the session goes on.
    run.client
        .write_all(&[0, 2, 0, 0, 0, 6, 1, 3, 0, 50, 0, 1])
        .await
        .unwrap();
    let mut exception = [0u8; 9];
    run.client.read_exact(&mut exception).await.unwrap();
    assert_eq!(exception, [0, 2, 0, 0, 0, 3, 1, 0x83, 0x02]);
    // A protocol id other than 0 is not Modbus/TCP: closed, never resynchronised.
    run.client
        .write_all(&[0, 3, 0, 9, 0, 6, 1, 3, 0, 0, 0, 1])
        .await
        .unwrap();
    let (reason, stats) = run.session.await.unwrap();
    assert!(reason.starts_with("malformed_frame: "), "{reason}");
    assert_eq!((stats.operations, stats.denied), (1, 1));
    let events = (run.events)();
    let malformed = events
        .iter()
        .find(|e| e.3["malformed"] == "bad_protocol_id")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(malformed.3["allowed"], false);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_handle_leaves_the_registry_and_ends_a_started_session() {
    let (events, mut drain) = crate::spool::in_memory();
    let registry = Arc::new(LiveSessions::new(events));
    let unstarted = registry.join(info(), HOUR, MINUTE);
    assert_eq!(registry.count(), 1);
    drop(unstarted);
    assert_eq!(registry.count(), 0);
    assert!(
        drain().is_empty(),
        "a session never started records nothing"
    );
    let mut started = registry.join(info(), HOUR, MINUTE);
    started
        .started(
            now_millis(),
            &jitgate_core::server_payload::SessionStartedDetail {
                subject: "alice".into(),
                asset: "plc-7".into(),
                protocol: Some("modbus".into()),
                device: None,
                peer: None,
                token_id: None,
                expires_at: None,
            },
        )
        .unwrap();
    // A cut ordered before anyone waits on it is not lost.
    registry.cut_all("gateway_shutdown");
    assert_eq!(started.cut().await, "gateway_shutdown");
    drop(started);
    let kinds: Vec<_> = drain()
        .into_iter()
        .map(|e| (e.0, e.3["reason"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("session.started".to_string(), serde_json::Value::Null),
            (
                "session.ended".to_string(),
                serde_json::json!("internal: session dropped")
            ),
        ]
    );
    assert_eq!(registry.count(), 0);
}

/// What the toy protocol below records of a request: the line.
#[derive(serde::Serialize)]
struct LineOp {
    line: String,
}

impl crate::protocol::OperationRecord for LineOp {
    fn allowed(&self) -> Option<bool> {
        None
    }
}

/// A toy protocol whose device speaks unasked: newline-ended frames; `ask` is answered by
/// `ans`, `ack` is taken without an answer, `uns` comes from the device unasked, `bad` from
/// the device ends the session.
struct Lines;

impl FrameProtocol for Lines {
    const NAME: &'static str = "lines";
    const FRAME_BUF: usize = 64;
    const UNSOLICITED: bool = true;
    type Allow = ();
    type State = u32;
    type Pending = bool;
    type Operation = LineOp;

    fn compile(_: &jitgate_core::Asset, _: &[ScopeItem]) {}
    fn new_state(_: &()) -> u32 {
        0
    }
    fn device_address(_: &jitgate_core::Asset) -> Option<String> {
        None
    }
    fn request_len(buf: &[u8]) -> Result<Option<usize>, crate::protocol::Fault> {
        Ok(buf.iter().position(|b| *b == b'\n').map(|i| i + 1))
    }
    fn response_len(buf: &[u8]) -> Result<Option<usize>, crate::protocol::Fault> {
        Self::request_len(buf)
    }
    fn decide(_: &(), _: &mut u32, frame: &[u8]) -> Decision<Self> {
        Decision::Allow {
            pending: frame == b"ask\n",
            operation: LineOp {
                line: String::from_utf8_lossy(frame).into_owned(),
            },
        }
    }
    fn answer(_: &mut u32, _: &bool, frame: &[u8]) -> Answer {
        match frame {
            b"ans\n" => Answer::Complete,
            // An unsolicited frame between a request and its answer: relayed, still waiting.
            b"uns\n" => Answer::More,
            _ => Answer::Invalid(crate::protocol::Fault::new("bad", "not an answer")),
        }
    }
    fn expects_answer(pending: &bool) -> bool {
        *pending
    }
    fn unsolicited(seen: &mut u32, frame: &[u8]) -> Answer {
        *seen += 1;
        match frame {
            b"uns\n" => Answer::Complete,
            _ => Answer::Invalid(crate::protocol::Fault::new("bad", "not unsolicited")),
        }
    }
}

/// A [`Lines`] session relayed from `gw_client` (the gateway's side of the client) to a
/// device whose far end is returned; the task ends with the reason, the unsolicited frames
/// seen and the session's counts.
fn relay_lines<C>(mut gw_client: C) -> (JoinHandle<(String, u32, SessionStats)>, DuplexStream)
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (events, _drain) = crate::spool::in_memory();
    let registry = Arc::new(LiveSessions::new(events));
    let (mut gw_device, device) = tokio::io::duplex(1024);
    let handle = registry.join(info(), HOUR, HOUR);
    let session = tokio::spawn(async move {
        let mut state = 0;
        let mut stats = SessionStats::default();
        let reason = relay::<Lines, _, _>(
            &handle,
            &mut gw_client,
            &mut gw_device,
            &(),
            &mut state,
            Duration::from_secs(5),
            &mut stats,
        )
        .await;
        (reason, state, stats)
    });
    (session, device)
}

#[tokio::test(start_paused = true)]
async fn a_device_that_speaks_unasked_is_relayed_and_a_confirm_waits_for_nothing() {
    let (mut client, gw_client) = tokio::io::duplex(1024);
    let (session, mut device) = relay_lines(gw_client);
    let mut buf = [0u8; 4];
    // Idle: the device speaks first, two frames in one write; the client gets both.
    device.write_all(b"uns\nuns\n").await.unwrap();
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"uns\n");
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"uns\n");
    // A confirm reaches the device and the loop does not wait for an answer to it: the
    // next request goes through at once, answered after an unsolicited frame in between.
    client.write_all(b"ack\nask\n").await.unwrap();
    let mut got = [0u8; 8];
    device.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ack\nask\n");
    device.write_all(b"uns\nans\n").await.unwrap();
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"uns\nans\n");
    // An answer and an unsolicited frame in one write: the second is relayed at once,
    // not when the device next speaks.
    client.write_all(b"ask\n").await.unwrap();
    let mut ask = [0u8; 4];
    device.read_exact(&mut ask).await.unwrap();
    device.write_all(b"ans\nuns\n").await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), client.read_exact(&mut got))
        .await
        .expect("the unsolicited frame waited for the device to speak again")
        .unwrap();
    assert_eq!(&got, b"ans\nuns\n");
    // Garbage from the device while idle ends the session.
    device.write_all(b"bad\n").await.unwrap();
    let (reason, unsolicited, _) = session.await.unwrap();
    assert_eq!(reason, "bad_device_response: not unsolicited");
    assert_eq!(
        unsolicited, 4,
        "the idle frames, the one after an answer and the bad one, not the one in between"
    );
}

/// The client's side of the relay, counting the writes made to it.
struct CountedWrites {
    inner: DuplexStream,
    writes: Arc<std::sync::atomic::AtomicUsize>,
}

impl AsyncRead for CountedWrites {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedWrites {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test(start_paused = true)]
async fn frames_from_one_read_of_the_device_reach_the_client_in_one_write() {
    use std::sync::atomic::Ordering;
    let (mut client, gw_client) = tokio::io::duplex(1024);
    let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let gw_client = CountedWrites {
        inner: gw_client,
        writes: writes.clone(),
    };
    let (session, mut device) = relay_lines(gw_client);
    let mut got = [0u8; 12];
    // An answer of three frames (two unsolicited in between) in one read: one write.
    client.write_all(b"ask\n").await.unwrap();
    let mut ask = [0u8; 4];
    device.read_exact(&mut ask).await.unwrap();
    device.write_all(b"uns\nuns\nans\n").await.unwrap();
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"uns\nuns\nans\n");
    assert_eq!(
        writes.load(Ordering::Relaxed),
        1,
        "one write for the answer"
    );
    // Idle, three unsolicited frames in one read: one write.
    device.write_all(b"uns\nuns\nuns\n").await.unwrap();
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"uns\nuns\nuns\n");
    assert_eq!(writes.load(Ordering::Relaxed), 2, "one write for the three");
    // An answer in two reads: what came first is relayed before the device is read again
    // (the client is not kept waiting for the rest).
    client.write_all(b"ask\n").await.unwrap();
    device.read_exact(&mut ask).await.unwrap();
    device.write_all(b"uns\n").await.unwrap();
    let mut first = [0u8; 4];
    client.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"uns\n");
    device.write_all(b"ans\n").await.unwrap();
    client.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"ans\n");
    assert_eq!(writes.load(Ordering::Relaxed), 4);
    // A good frame then a bad one in one read: the good one (checked and recorded) still
    // reaches the client, then the session ends.
    client.write_all(b"ask\n").await.unwrap();
    device.read_exact(&mut ask).await.unwrap();
    device.write_all(b"uns\nbad\n").await.unwrap();
    let (reason, _, stats) = session.await.unwrap();
    assert_eq!(reason, "bad_device_response: not an answer");
    client.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"uns\n");
    assert_eq!(stats.bytes_out, 12 + 12 + 8 + 4);
}

#[test]
fn an_operation_is_recorded_with_what_only_the_relay_knows() {
    let (events, mut drain) = crate::spool::in_memory();
    let stats = Arc::clone(&events.stats);
    let registry = Arc::new(LiveSessions::new(events));
    let handle = registry.join(info(), HOUR, MINUTE);
    let op = LineOp {
        line: "ask\n".into(),
    };
    handle.operation(now_millis(), &op, None, None).unwrap();
    handle
        .operation(
            now_millis(),
            &op,
            Some("device_timeout"),
            Some(Duration::from_micros(1500)),
        )
        .unwrap();
    // A Modbus record: its own fields, then the relay's, and it counts as allowed.
    let modbus = crate::modbus::op::Operation::new(
        1,
        &crate::modbus::request::Request::ReadHoldingRegisters {
            address: 0,
            quantity: 10,
        },
        &crate::modbus::allow::Verdict::Allow,
    );
    handle
        .operation(now_millis(), &modbus, None, Some(Duration::from_micros(42)))
        .unwrap();
    let recorded = drain();
    let data: Vec<_> = recorded.iter().map(|e| e.3.clone()).collect();
    assert_eq!(data[0], serde_json::json!({"line": "ask\n"}));
    assert_eq!(
        data[1],
        serde_json::json!({"line": "ask\n", "failure": "device_timeout", "device_latency_us": 1500})
    );
    let mut expected = serde_json::to_value(&modbus).unwrap();
    expected["device_latency_us"] = serde_json::json!(42);
    assert_eq!(data[2], expected);
    assert!(recorded.iter().all(|e| e.0 == "operation"
        && e.1.as_deref() == Some("grant-1")
        && e.2.as_deref() == Some("sess-1")));
    assert_eq!(
        stats
            .operations_allowed
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the Modbus read; the toy records do not say"
    );
}
