//! The simulated PLC is a real Modbus/TCP server: real clients read and write it, and it
//! keeps up with many concurrent, pipelining connections.

use crate::client::{read_pdu, Client};
use crate::peers;
use jitgate_gateway::modbus::sim::{self, SimPlc};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

async fn plc(units: Vec<u8>) -> SimPlc {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    sim::start(addr, units).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymodbus_reads_and_writes_every_table() {
    if !peers::have_pymodbus() {
        return;
    }
    let plc = plc(vec![1]).await;
    for (i, v) in (100u16..105).enumerate() {
        plc.set_holding(1, i as u16, v);
    }
    plc.set_input(1, 7, 4242);
    plc.set_discrete(1, 3, true);
    plc.set_holding(1, 40, 11);
    plc.set_holding(1, 41, 12);
    let port = plc.local_addr().port();
    let out = tokio::task::spawn_blocking(move || peers::pymodbus(port, "direct"))
        .await
        .unwrap();

    assert_eq!(
        out["read_holding_0_4"],
        json!({"ok": [100, 101, 102, 103, 104]})
    );
    assert_eq!(out["write_register_10"], json!({"ok": true}));
    assert_eq!(out["read_holding_10_12"], json!({"ok": [1234, 0, 0]}));
    assert_eq!(out["read_holding_20_22"], json!({"ok": [1, 2, 65535]}));
    assert_eq!(out["read_input_7"], json!({"ok": [4242]}));
    assert_eq!(out["read_discrete_3"]["ok"][0], json!(true));
    // FC23 writes 41 := 77 before reading 40-41.
    assert_eq!(out["readwrite_40"], json!({"ok": [11, 77]}));
    let coils = out["read_coils_0_7"]["ok"].as_array().unwrap();
    assert_eq!(
        coils[..8],
        [false, false, false, false, false, true, false, false].map(|b| json!(b))
    );
    let coils = out["read_coils_30_32"]["ok"].as_array().unwrap();
    assert_eq!(coils[..3], [json!(true), json!(false), json!(true)]);
    // A unit the PLC does not serve: GATEWAY_TARGET_DEVICE_FAILED_TO_RESPOND.
    assert_eq!(out["read_unit_9"]["exception"], json!(11));

    // What pymodbus wrote is in the PLC's memory.
    assert_eq!(plc.read_holding(1, 10), 1234);
    assert_eq!(
        (20..23).map(|a| plc.read_holding(1, a)).collect::<Vec<_>>(),
        [1, 2, 65535]
    );
    assert!(plc.coil(1, 5));
    assert!(plc.coil(1, 30) && !plc.coil(1, 31) && plc.coil(1, 32));
    assert_eq!(plc.read_holding(1, 41), 77);
    plc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbpoll_reads_and_writes() {
    if !peers::have_mbpoll() {
        return;
    }
    let plc = plc(vec![1, 2]).await;
    plc.set_holding(2, 100, 31337);
    plc.set_holding(2, 101, 7);
    plc.set_input(2, 5, 55);
    let port = plc.local_addr().port();

    let out = tokio::task::spawn_blocking(move || {
        let read = peers::mbpoll(
            port,
            &["-a", "2", "-t", "4", "-r", "100", "-c", "2", "127.0.0.1"],
        );
        let input = peers::mbpoll(
            port,
            &["-a", "2", "-t", "3", "-r", "5", "-c", "1", "127.0.0.1"],
        );
        let write = peers::mbpoll(
            port,
            &[
                "-a",
                "2",
                "-t",
                "4",
                "-r",
                "200",
                "127.0.0.1",
                "11",
                "22",
                "33",
            ],
        );
        let coil = peers::mbpoll(port, &["-a", "2", "-t", "0", "-r", "9", "127.0.0.1", "1"]);
        (read, input, write, coil)
    })
    .await
    .unwrap();
    let (read, input, write, coil) = out;
    for o in [&read, &input, &write, &coil] {
        assert!(
            o.status.success(),
            "mbpoll failed: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert_eq!(peers::mbpoll_values(&read), [(100, 31337), (101, 7)]);
    assert_eq!(peers::mbpoll_values(&input), [(5, 55)]);
    assert_eq!(
        (200..203)
            .map(|a| plc.read_holding(2, a))
            .collect::<Vec<_>>(),
        [11, 22, 33]
    );
    assert!(plc.coil(2, 9));
    assert_eq!(plc.read_holding(1, 200), 0, "unit 1 is separate memory");
    plc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_pipelining_connections() {
    let plc = Arc::new(plc(vec![1]).await);
    let addr = plc.local_addr();
    let mut tasks = Vec::new();
    for conn in 0..64u16 {
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            let base = conn * 100;
            // Pipelined: 20 writes in flight before reading any answer.
            for i in 0..20u16 {
                let mut pdu = vec![6];
                pdu.extend_from_slice(&(base + i).to_be_bytes());
                pdu.extend_from_slice(&(conn ^ i).to_be_bytes());
                c.send(1, &pdu).await;
            }
            for _ in 0..20 {
                let (_, _, pdu) = c.recv().await.unwrap();
                assert_eq!(pdu[0], 6);
            }
            for _ in 0..10 {
                let pdu = c.call(1, &read_pdu(3, base, 20)).await;
                assert_eq!(pdu[1], 40);
                for i in 0..20u16 {
                    let got =
                        u16::from_be_bytes([pdu[2 + 2 * i as usize], pdu[3 + 2 * i as usize]]);
                    assert_eq!(got, conn ^ i);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(plc.requests(), 64 * 30);
    assert_eq!(plc.read_holding(1, 6305), 63 ^ 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_like_a_device() {
    let plc = plc(vec![1]).await;
    let mut c = Client::connect(plc.local_addr()).await;
    // Quantity outside the Modbus limit: ILLEGAL_DATA_VALUE.
    assert_eq!(c.call(1, &read_pdu(3, 0, 126)).await, [0x83, 3]);
    // Past the end of the address space: ILLEGAL_DATA_ADDRESS.
    assert_eq!(c.call(1, &read_pdu(3, 65535, 2)).await, [0x83, 2]);
    // Diagnostics are not implemented: ILLEGAL_FUNCTION.
    assert_eq!(c.call(1, &[8, 0, 0, 0, 0]).await, [0x88, 1]);
    // A unit it does not serve.
    assert_eq!(c.call(7, &read_pdu(3, 0, 1)).await, [0x83, 0x0B]);
    // The last address works.
    plc.set_holding(1, 65535, 9);
    assert_eq!(c.call(1, &read_pdu(3, 65535, 1)).await, [3, 2, 0, 9]);
    // A broken MBAP header closes the connection.
    use tokio::io::AsyncWriteExt;
    c.stream
        .write_all(&[0, 1, 0, 7, 0, 6, 1, 3, 0, 0, 0, 1])
        .await
        .unwrap();
    assert_eq!(c.recv().await, None);
    plc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_connections() {
    let plc = plc(vec![1]).await;
    let addr = plc.local_addr();
    let mut c = Client::connect(addr).await;
    assert_eq!(c.call(1, &read_pdu(1, 0, 1)).await, [1, 1, 0]);
    plc.shutdown().await;
    assert_eq!(c.recv().await, None);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    let err = sim::start("127.0.0.1:0".parse().unwrap(), vec![])
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}
