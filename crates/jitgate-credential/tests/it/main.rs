#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Integration tests of jitgate-credential through its public API only: what the server
//! (KeyRing), the gateway (Verifier, NonceCache, verify_pop) and the client (ClientKey) do.

mod keys;
mod pop;
mod tokens;

use chrono::{Duration, TimeZone, Utc};
use jitgate_core::scope::{ModbusOp, ModbusTable, ScopeItem};
use jitgate_credential::{AssetClaim, ClientKey, GrantClaims, KeyRing, Timestamp, Verifier};

pub const GATEWAY: &str = "gw-north";

pub fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
}

pub fn claims_for(client: &ClientKey, subject: &str, now: Timestamp) -> GrantClaims {
    GrantClaims {
        token_id: format!("tok-{subject}-{}", now.timestamp()),
        grant_id: "grt-abc".into(),
        subject: subject.into(),
        audience: GATEWAY.into(),
        assets: vec![AssetClaim {
            asset: "plc-7".into(),
            protocol: "modbus".into(),
            address: "127.0.0.1:5020".into(),
            unit_ids: vec![1, 2],
        }],
        scope_digest: format!("sha256:{}", "0f".repeat(32)),
        scope: vec![
            ScopeItem::Modbus {
                asset: "plc-7".into(),
                unit: 1,
                op: ModbusOp::Read,
                table: Some(ModbusTable::Holding),
                start: 0,
                end: 99,
            },
            ScopeItem::Modbus {
                asset: "plc-7".into(),
                unit: 1,
                op: ModbusOp::Write,
                table: Some(ModbusTable::Coil),
                start: 10,
                end: 20,
            },
        ],
        issued_at: now,
        not_before: now,
        expires_at: now + Duration::minutes(15),
        cnf: client.public_b64(),
    }
}

/// A fresh server key ring in a temporary data dir.
pub fn ring() -> (tempfile::TempDir, KeyRing) {
    let dir = tempfile::tempdir().unwrap();
    let ring = KeyRing::open_or_create(&dir.path().join("data"), t0()).unwrap();
    (dir, ring)
}

pub fn verifier(ring: &KeyRing, now: Timestamp) -> Verifier {
    Verifier::new(&ring.public_keys(now)).unwrap()
}
