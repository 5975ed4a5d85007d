//! The key file: creation, permissions, tampering, rotation.

use crate::{claims_for, t0, GATEWAY};
use chrono::Duration;
use jitgate_credential::{ClientKey, KeyRing, Verifier, KEY_FILE_NAME};
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn first_start_creates_an_owner_only_key_file_and_reopens_the_same_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let ring = KeyRing::open_or_create(&dir, t0()).unwrap();
    let file = dir.join(KEY_FILE_NAME);
    assert_eq!(ring.path(), Some(file.as_path()));
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&dir), 0o700);

    let again = KeyRing::open_or_create(&dir, t0() + Duration::days(1)).unwrap();
    assert_eq!(again.current_kid(), ring.current_kid());
    assert_eq!(again.public_keys(t0()), ring.public_keys(t0()));

    // A token from the first instance verifies with the reopened ring's keys.
    let token = ring
        .issue(&claims_for(&ClientKey::generate(), "alice", t0()))
        .unwrap();
    Verifier::new(&again.public_keys(t0()))
        .unwrap()
        .verify(&token, GATEWAY, t0())
        .unwrap();
}

#[test]
fn key_file_readable_by_others_is_refused_with_a_chmod_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let ring = KeyRing::open_or_create(tmp.path(), t0()).unwrap();
    for m in [0o644, 0o640, 0o604, 0o620] {
        fs::set_permissions(ring.path().unwrap(), fs::Permissions::from_mode(m)).unwrap();
        let err = KeyRing::open_or_create(tmp.path(), t0()).unwrap_err();
        assert_eq!(err.code(), "key_file_insecure", "mode {m:o}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
    fs::set_permissions(ring.path().unwrap(), fs::Permissions::from_mode(0o600)).unwrap();
    KeyRing::open_or_create(tmp.path(), t0()).unwrap();
    // 0400 (read-only for the owner) is fine too.
    fs::set_permissions(ring.path().unwrap(), fs::Permissions::from_mode(0o400)).unwrap();
    KeyRing::open_or_create(tmp.path(), t0()).unwrap();
}

fn tamper(edit: impl Fn(&mut serde_json::Value)) -> jitgate_credential::CredentialError {
    let tmp = tempfile::tempdir().unwrap();
    let ring = KeyRing::open_or_create(tmp.path(), t0()).unwrap();
    let mut json: serde_json::Value =
        serde_json::from_slice(&fs::read(ring.path().unwrap()).unwrap()).unwrap();
    edit(&mut json);
    fs::write(ring.path().unwrap(), serde_json::to_vec(&json).unwrap()).unwrap();
    KeyRing::open_or_create(tmp.path(), t0()).unwrap_err()
}

#[test]
fn tampered_key_files_are_refused_cleanly() {
    let other_seed = {
        let tmp = tempfile::tempdir().unwrap();
        let r = KeyRing::open_or_create(tmp.path(), t0()).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(r.path().unwrap()).unwrap()).unwrap();
        json["keys"][0]["secret_key"].clone()
    };
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "secret swapped",
            Box::new(move |j| j["keys"][0]["secret_key"] = other_seed.clone()),
        ),
        (
            "all-zero seed",
            Box::new(|j| {
                j["keys"][0]["secret_key"] = "A".repeat(43).into();
            }),
        ),
        (
            "short seed",
            Box::new(|j| j["keys"][0]["secret_key"] = "AAAA".into()),
        ),
        (
            "kid changed",
            Box::new(|j| j["keys"][0]["kid"] = "k4.pid.zzz".into()),
        ),
        (
            "current missing",
            Box::new(|j| j["current"] = "k4.pid.nope".into()),
        ),
        (
            "format",
            Box::new(|j| j["format"] = "something-else".into()),
        ),
        ("unknown field", Box::new(|j| j["extra"] = true.into())),
        (
            "not an object",
            Box::new(|j| *j = serde_json::json!([1, 2])),
        ),
    ];
    for (what, edit) in cases {
        let err = tamper(edit);
        assert_eq!(err.code(), "key_file_invalid", "{what}: {err}");
    }

    // Bytes that are not JSON at all.
    let tmp = tempfile::tempdir().unwrap();
    let ring = KeyRing::open_or_create(tmp.path(), t0()).unwrap();
    fs::write(ring.path().unwrap(), b"\x00\xffgarbage").unwrap();
    let err = KeyRing::open_or_create(tmp.path(), t0()).unwrap_err();
    assert_eq!(err.code(), "key_file_invalid");
    assert!(err.to_string().contains("restore"), "{err}");
}

#[test]
fn rotation_keeps_old_tokens_valid_until_retire_at_then_refuses_them() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ring = KeyRing::open_or_create(tmp.path(), t0()).unwrap();
    let old_kid = ring.current_kid().to_string();
    let client = ClientKey::generate();
    let old_token = ring.issue(&claims_for(&client, "alice", t0())).unwrap();

    let rotated_at = t0() + Duration::minutes(1);
    let max_lifetime = Duration::hours(1);
    let new_kid = ring.rotate(rotated_at, max_lifetime).unwrap();
    assert_ne!(new_kid, old_kid);
    assert_eq!(ring.current_kid(), new_kid);

    let keys = ring.public_keys(rotated_at);
    assert_eq!(keys.len(), 2);
    let old = keys.iter().find(|k| k.kid == old_kid).unwrap();
    let retire_at = rotated_at + max_lifetime;
    assert_eq!(old.retire_at, Some(retire_at));

    // New tokens are signed with the new key.
    let new_token = ring
        .issue(&claims_for(&client, "alice", rotated_at))
        .unwrap();
    assert!(new_token.ends_with(&base64_footer(&new_kid)));

    // The gateway, with the published keys, accepts both.
    let v = Verifier::new(&keys).unwrap();
    v.verify(&old_token, GATEWAY, rotated_at).unwrap();
    v.verify(&new_token, GATEWAY, rotated_at).unwrap();

    // A long-lived test token under the old key, checked right at retire_at: the key is gone.
    let mut long = claims_for(&client, "alice", t0());
    long.expires_at = t0() + Duration::days(1);
    let long_dir = tempfile::tempdir().unwrap();
    let mut long_ring = KeyRing::open_or_create(long_dir.path(), t0()).unwrap();
    let long_token = long_ring.issue(&long).unwrap();
    long_ring.rotate(rotated_at, max_lifetime).unwrap();
    let lv = Verifier::new(&long_ring.public_keys(rotated_at)).unwrap();
    lv.verify(&long_token, GATEWAY, retire_at - Duration::seconds(1))
        .unwrap();
    let err = lv.verify(&long_token, GATEWAY, retire_at).unwrap_err();
    assert_eq!(err.code(), "key_retired", "{err}");

    // After retire_at the server stops publishing the old key.
    let later = ring.public_keys(retire_at);
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].kid, new_kid);
    let err = Verifier::new(&later)
        .unwrap()
        .verify(&old_token, GATEWAY, t0())
        .unwrap_err();
    assert_eq!(err.code(), "unknown_key");

    // Rotation is persisted; a rotation after retire_at drops the old key from the file.
    let reopened = KeyRing::open_or_create(tmp.path(), rotated_at).unwrap();
    assert_eq!(reopened.current_kid(), new_kid);
    assert_eq!(reopened.public_keys(rotated_at).len(), 2);
    assert_eq!(mode(ring.path().unwrap()), 0o600);
    let newest = ring.rotate(retire_at, max_lifetime).unwrap();
    let text = fs::read_to_string(ring.path().unwrap()).unwrap();
    assert!(!text.contains(&old_kid), "retired key still in the file");
    assert!(text.contains(&new_kid) && text.contains(&newest));
}

fn base64_footer(kid: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    URL_SAFE_NO_PAD.encode(format!("{{\"kid\":\"{kid}\"}}"))
}

#[test]
fn a_key_retired_now_refuses_its_tokens_at_once_as_key_retired() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ring = KeyRing::open_or_create(tmp.path(), t0()).unwrap();
    let leaked = ring.current_kid().to_string();
    let client = ClientKey::generate();
    let old_token = ring.issue(&claims_for(&client, "alice", t0())).unwrap();
    assert_eq!(
        jitgate_credential::token_kid(&old_token).as_deref(),
        Some(leaked.as_str())
    );
    let at = t0() + Duration::minutes(1);
    ring.rotate(at, Duration::days(30)).unwrap();
    let new_token = ring.issue(&claims_for(&client, "alice", at)).unwrap();
    // Before: the superseded key still verifies (30 days). After: refused at once.
    Verifier::new(&ring.public_keys(at))
        .unwrap()
        .verify(&old_token, GATEWAY, at)
        .unwrap();
    assert!(ring.retire_now(&leaked, at).unwrap());
    let v = Verifier::new(&ring.public_keys(at)).unwrap();
    let err = v.verify(&old_token, GATEWAY, at).unwrap_err();
    assert_eq!(err.code(), "key_retired", "{err}");
    v.verify(&new_token, GATEWAY, at).unwrap();

    // A gateway told over the control channel retires the key whatever its clock says
    // (here: a key list that does not show the retirement yet).
    let mut stale = Verifier::new(
        &ring
            .public_keys(at)
            .into_iter()
            .map(|mut k| {
                k.retire_at = None;
                k
            })
            .collect::<Vec<_>>(),
    )
    .unwrap();
    stale.verify(&old_token, GATEWAY, at).unwrap();
    assert!(stale.retire(&leaked));
    assert_eq!(
        stale.verify(&old_token, GATEWAY, at).unwrap_err().code(),
        "key_retired"
    );
    assert!(!stale.retire("k4.pid.unknown"));
    stale.verify(&new_token, GATEWAY, at).unwrap();
}
