//! A gateway killed (SIGKILL) right after its client received answers loses none of them
//! from the evidence log: every answered operation is recorded once, the killed session is
//! ended `gateway_restarted` by the next process, and the chain verifies. With the server
//! down when the gateway dies, and with it up (repeated: before the write-ahead file the
//! last operation was lost about 2 times in 5).
//!
//! Real processes: `jitgate up`, `jitgate gateway`, `jitgate connect`; the client is a
//! plain Modbus/TCP client in this process counting the answers it received. Each session
//! reads a distinct register per operation, so the evidence shows which answers it holds.

use crate::gateway::{connect, granted, Plant};
use crate::quickstart::free_port;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// FC3 reads of one register each at `addresses`, one after the other; every answer is
/// checked (register n holds n). Returns once the last answer is in.
fn read_each(client: &mut TcpStream, addresses: std::ops::Range<u16>) -> usize {
    let mut answered = 0;
    for addr in addresses {
        let mut req = [0u8; 12];
        req[..2].copy_from_slice(&addr.to_be_bytes());
        req[5] = 6;
        req[6] = 1;
        req[7] = 3;
        req[8..10].copy_from_slice(&addr.to_be_bytes());
        req[10..12].copy_from_slice(&1u16.to_be_bytes());
        client.write_all(&req).unwrap();
        let mut resp = [0u8; 11];
        client.read_exact(&mut resp).unwrap();
        assert_eq!(resp[..2], addr.to_be_bytes(), "the answer to this request");
        assert_eq!(resp[7], 3, "a normal FC3 answer: {resp:?}");
        assert_eq!(
            resp[9..11],
            addr.to_be_bytes(),
            "register {addr} holds {addr}"
        );
        answered += 1;
    }
    answered
}

fn modbus_client(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// What the evidence log holds of one session.
#[derive(Debug, Default)]
struct Session {
    /// The register of each recorded operation, in the log's order.
    addresses: Vec<u64>,
    ended: Vec<String>,
}

/// The grant's sessions as the server's evidence log has them.
fn sessions(p: &Plant, grant: &str) -> HashMap<String, Session> {
    let events = p.cli.json("sam", &["events", "--grant", grant]);
    let mut out: HashMap<String, Session> = HashMap::new();
    for e in events.as_array().unwrap() {
        let Some(sid) = e["data"]["session_id"].as_str() else {
            continue;
        };
        let s = out.entry(sid.to_string()).or_default();
        let detail = &e["data"]["detail"];
        match e["kind"].as_str() {
            Some("operation") => s.addresses.push(detail["address"].as_u64().unwrap()),
            Some("session.ended") => s.ended.push(detail["reason"].as_str().unwrap().into()),
            _ => {}
        }
    }
    out
}

/// Wait (bounded) until the restarted gateway recorded `gateway_restarted` for a session
/// not in `known`: it is written after everything the killed process had written, and
/// delivered in order, so the session's evidence is complete then. Returns it.
fn restarted_session(p: &Plant, grant: &str, known: &[String]) -> (String, Session) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut all = sessions(p, grant);
        let found = all
            .iter()
            .find(|(id, s)| !known.contains(id) && s.ended.iter().any(|r| r == "gateway_restarted"))
            .map(|(id, _)| id.clone());
        if let Some(id) = found {
            let s = all.remove(&id).unwrap();
            return (id, s);
        }
        assert!(
            Instant::now() < deadline,
            "no session ended gateway_restarted: {all:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The killed session's evidence: every answered operation once, nothing else, one end.
fn assert_complete(session: &Session, answered: std::ops::Range<u16>, what: &str) {
    let want: Vec<u64> = answered.map(u64::from).collect();
    assert_eq!(
        session.addresses, want,
        "{what}: every answered operation recorded once, in order"
    );
    assert_eq!(
        session.ended,
        vec!["gateway_restarted".to_string()],
        "{what}"
    );
}

fn assert_chain_verifies(p: &Plant) {
    let v = p.cli.json("sam", &["evidence", "verify"]);
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn a_gateway_killed_with_the_server_down_loses_no_answered_operation() {
    let mut p = Plant::start_with(None, false);
    let grant = granted(&p.cli, "1h");
    let local = free_port();
    let _c = connect(&p.cli, &grant, local);
    let mut client = modbus_client(local);
    assert_eq!(read_each(&mut client, 0..20), 20);
    p.stop_server();
    // The session goes on without the server; its events wait at the gateway.
    assert_eq!(read_each(&mut client, 20..100), 80);
    p.kill_gateway();
    drop(client);

    p.restart_server();
    p.start_gateway();
    let (_, session) = restarted_session(&p, &grant, &[]);
    assert_complete(&session, 0..100, "killed with the server down");
    assert_chain_verifies(&p);
    p.stop();
}

#[test]
fn a_gateway_killed_with_the_server_up_loses_no_answered_operation() {
    let mut p = Plant::start_with(None, false);
    let grant = granted(&p.cli, "1h");
    let local = free_port();
    let _c = connect(&p.cli, &grant, local);
    let mut known = Vec::new();
    // Each time killed right after the last answer: the last operations are at most a few
    // milliseconds old, well inside the delivery's linger.
    for round in 0..5u16 {
        let n = 40 + 11 * round;
        let mut client = modbus_client(local);
        assert_eq!(read_each(&mut client, 0..n), usize::from(n));
        p.kill_gateway();
        drop(client);
        p.start_gateway();
        let (id, session) = restarted_session(&p, &grant, &known);
        assert_complete(&session, 0..n, &format!("round {round}"));
        known.push(id);
    }
    assert_chain_verifies(&p);
    p.stop();
}
