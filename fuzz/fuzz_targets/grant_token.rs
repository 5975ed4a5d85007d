//! Grant tokens arrive from unauthenticated clients: whatever the bytes, `Verifier::verify`,
//! `verify_pop` and the claims parser must return an error, never panic or run unbounded.
//!
//! Run: `cargo +nightly fuzz run grant_token -- -max_total_time=60`

#![no_main]

use chrono::{TimeZone, Utc};
use jitgate_core::scope::{ModbusOp, ModbusTable, ScopeItem};
use jitgate_credential::{
    verify_pop, AssetClaim, ClientKey, GrantClaims, KeyRing, Timestamp, Verifier,
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const GATEWAY: &str = "gw-fuzz";

struct Fixture {
    verifier: Verifier,
    token: String,
    claims: GrantClaims,
    now: Timestamp,
}

fn fixture() -> Option<&'static Fixture> {
    static FIXTURE: OnceLock<Option<Fixture>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single()?;
            let ring = KeyRing::in_memory(now).ok()?;
            let claims = GrantClaims {
                token_id: "tok-fuzz".into(),
                grant_id: "grt-fuzz".into(),
                subject: "alice".into(),
                audience: GATEWAY.into(),
                assets: vec![AssetClaim {
                    asset: "plc-1".into(),
                    protocol: "modbus".into(),
                    address: "127.0.0.1:502".into(),
                    unit_ids: vec![1],
                }],
                scope_digest: format!("sha256:{}", "ab".repeat(32)),
                scope: vec![ScopeItem::Modbus {
                    asset: "plc-1".into(),
                    unit: 1,
                    op: ModbusOp::Read,
                    table: Some(ModbusTable::Holding),
                    start: 0,
                    end: 9,
                }],
                issued_at: now,
                not_before: now,
                expires_at: now + chrono::Duration::minutes(5),
                cnf: ClientKey::generate().public_b64(),
            };
            let token = ring.issue(&claims).ok()?;
            let verifier = Verifier::new(&ring.public_keys(now)).ok()?;
            Some(Fixture {
                verifier,
                token,
                claims,
                now,
            })
        })
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some(f) = fixture() else { return };
    let text = String::from_utf8_lossy(data);

    // Raw input as a token.
    let _ = f.verifier.verify(&text, GATEWAY, f.now);

    // Input in the payload position with the real footer, so the key lookup succeeds and the
    // signature check and everything after it sees fuzzed bytes.
    if let Some((_, footer)) = f.token.rsplit_once('.') {
        let _ = f
            .verifier
            .verify(&format!("v4.public.{text}.{footer}"), GATEWAY, f.now);
    }
    // Input appended to a valid token (trailing garbage, extra parts).
    let _ = f
        .verifier
        .verify(&format!("{}{text}", f.token), GATEWAY, f.now);

    // Input as a proof-of-possession signature.
    let _ = verify_pop(&f.claims, &[0u8; 32], &f.token, GATEWAY, &text);

    // Input as the claims JSON a correctly signed token would carry: the parser and the
    // consistency rules that run after the signature holds.
    if let Ok(claims) = serde_json::from_slice::<GrantClaims>(data) {
        let _ = claims.check_consistent();
    }
});
