#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! jitgate-gateway integration tests: the simulated PLC driven by real Modbus clients
//! (pymodbus, mbpoll) and by many concurrent connections, and the inspection pieces wired
//! into a minimal relay to show that unmodified clients get proper exceptions; DNP3 through
//! the gateway runtime with dnp3py's master and outstation and the simulated outstation;
//! public DNP3 captures and a generated corpus replayed through it, judged by tshark.
//!
//! Peers that are missing (python3 + pymodbus, mbpoll, dnp3py, tshark) make their test skip with a
//! loud line, or fail when `JITGATE_REQUIRE_PEERS=1` (CI sets it).

mod client;
mod client_limits;
mod dnp3_corpus;
mod dnp3_corpus_replay;
mod dnp3_gateway;
mod dnp3_generated;
mod dnp3_outstation_view;
mod dnp3_records;
mod dnp3_replay;
mod dnp3_rig;
mod dnp3_tap;
mod dnp3_tshark;
mod governance;
mod peers;
/// Ports for listeners bound after they are chosen (`jitgate connect`'s local port).
#[path = "../../../jitgate/tests/it/ports.rs"]
mod ports;
mod recording_peer;
mod relay;
mod sim_plc;
mod tls;
