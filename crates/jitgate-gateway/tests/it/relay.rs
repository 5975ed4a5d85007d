//! The inspection pieces wired into a minimal relay (not the gateway runtime, which lives
//! elsewhere): what an unmodified client sees when a request is in scope, out of scope or
//! malformed, and that refused requests never reach the device.

use crate::client::{read_pdu, Client};
use crate::peers;
use jitgate_core::scope::{ModbusOp, ModbusTable, ScopeItem};
use jitgate_gateway::modbus::sim::{self, SimPlc};
use jitgate_gateway::modbus::{
    decode_request, inspect, parse_adu, validate_response, AllowList, Operation, Pending, Verdict,
};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Log = Arc<Mutex<Vec<Operation>>>;

/// The grant: `read holding 0-9 unit 1`, `write coil 10-20 unit 1`.
fn grant() -> AllowList {
    let item = |op, table, start, end| ScopeItem::Modbus {
        asset: "plc-7".into(),
        unit: 1,
        op,
        table: Some(table),
        start,
        end,
    };
    AllowList::compile(
        "plc-7",
        &[
            item(ModbusOp::Read, ModbusTable::Holding, 0, 9),
            item(ModbusOp::Write, ModbusTable::Coil, 10, 20),
        ],
    )
}

async fn read_frame(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        match parse_adu(buf) {
            Ok(Some((_, used))) => return Some(buf.drain(..used).collect()),
            Ok(None) => {}
            Err(_) => return None,
        }
        let mut chunk = [0u8; 512];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn session(mut client: TcpStream, plc: SocketAddr, allow: Arc<AllowList>, log: Log) {
    let mut device = TcpStream::connect(plc).await.unwrap();
    let (mut cbuf, mut dbuf) = (Vec::new(), Vec::new());
    while let Some(frame) = read_frame(&mut client, &mut cbuf).await {
        let Ok(Some((adu, _))) = parse_adu(&frame) else {
            return;
        };
        let ins = inspect(&allow, &adu);
        log.lock().unwrap().push(ins.operation.clone());
        match ins.verdict {
            Verdict::Allow => {
                let pending = Pending::new(&adu, &decode_request(adu.pdu).unwrap());
                device.write_all(&frame).await.unwrap();
                let Some(resp) = read_frame(&mut device, &mut dbuf).await else {
                    return;
                };
                let Ok(Some((radu, _))) = parse_adu(&resp) else {
                    return;
                };
                if validate_response(&pending, &radu).is_err() {
                    return;
                }
                client.write_all(&resp).await.unwrap();
            }
            Verdict::Deny { .. } => {
                client.write_all(&ins.exception_adu.unwrap()).await.unwrap();
            }
            Verdict::Malformed { .. } => return,
        }
    }
}

async fn relay(plc: &SimPlc) -> (SocketAddr, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let allow = Arc::new(grant());
    let log: Log = Arc::default();
    let plc_addr = plc.local_addr();
    let task_log = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(session(
                client,
                plc_addr,
                Arc::clone(&allow),
                Arc::clone(&task_log),
            ));
        }
    });
    (addr, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymodbus_through_an_inspecting_relay() {
    if !peers::have_pymodbus() {
        return;
    }
    let plc = sim::start("127.0.0.1:0".parse().unwrap(), vec![1, 2])
        .await
        .unwrap();
    for a in 0..20u16 {
        plc.set_holding(1, a, 500 + a);
    }
    let (addr, log) = relay(&plc).await;
    let out = tokio::task::spawn_blocking(move || peers::pymodbus(addr.port(), "gateway"))
        .await
        .unwrap();

    let expected: Vec<u16> = (500..510).collect();
    assert_eq!(out["allowed_read"], json!({"ok": expected}));
    assert_eq!(out["read_past_scope"]["exception"], json!(2));
    assert_eq!(out["write_on_read_grant"]["exception"], json!(1));
    assert_eq!(out["allowed_coil_write"], json!({"ok": true}));
    assert_eq!(out["coil_write_past_scope"]["exception"], json!(2));
    assert_eq!(out["diagnostics"]["exception"], json!(1));
    assert_eq!(out["other_unit"]["exception"], json!(11));
    // The session survives refusals.
    assert_eq!(out["read_after_denials"], json!({"ok": [503]}));

    // Refused requests never reached the device; allowed ones changed it.
    assert_eq!(plc.requests(), 3);
    assert_eq!(plc.read_holding(1, 3), 503);
    assert!((10..=20).all(|a| plc.coil(1, a)));
    assert!(!plc.coil(1, 21));

    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 8);
    assert_eq!(log.iter().filter(|o| o.allowed).count(), 3);
    let denied_write = &log[2];
    assert_eq!(denied_write.function_name, "write_single_register");
    assert_eq!(denied_write.values_written, Some(vec![999]));
    assert_eq!(denied_write.exception, Some(1));
    assert!(denied_write
        .reason
        .as_deref()
        .unwrap()
        .contains("write holding"));
    plc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_close_the_session() {
    let plc = sim::start("127.0.0.1:0".parse().unwrap(), vec![1])
        .await
        .unwrap();
    let (addr, log) = relay(&plc).await;

    // Quantity 0: a valid frame with a malformed request.
    let mut c = Client::connect(addr).await;
    assert_eq!(c.call(1, &read_pdu(3, 0, 1)).await, [3, 2, 0, 0]);
    c.send(1, &read_pdu(3, 0, 0)).await;
    assert_eq!(c.recv().await, None, "session closed, no exception sent");

    // A wrong protocol id: the frame itself is broken.
    let mut c = Client::connect(addr).await;
    c.stream
        .write_all(&[0, 1, 0, 9, 0, 6, 1, 3, 0, 0, 0, 1])
        .await
        .unwrap();
    assert_eq!(c.recv().await, None);

    // A byte count that disagrees with the quantity.
    let mut c = Client::connect(addr).await;
    c.send(1, &[15, 0, 10, 0, 9, 1, 0xFF]).await;
    assert_eq!(c.recv().await, None);

    assert_eq!(
        plc.requests(),
        1,
        "only the first, valid read reached the device"
    );
    let log = log.lock().unwrap().clone();
    let malformed: Vec<_> = log.iter().filter_map(|o| o.malformed.as_deref()).collect();
    assert_eq!(malformed, ["bad_quantity", "bad_byte_count"]);
    plc.shutdown().await;
}
