//! Workload identity federation through the real binaries: `jitgate serve` trusting a local
//! issuer (an HTTP server on 127.0.0.1 publishing an ES256 key, found by discovery), and a
//! workload signing in with `jitgate login --federated-token-file` and
//! `--federated-token-env`: the session is the workload's, recorded as federated; a replayed
//! token, a token for another audience or with other claims, and one the issuer did not sign
//! are refused with their codes. (Every refusal and key rotation: the server's
//! tests/it/federation.rs.)

use crate::quickstart::{free_port, serve_config, Serve, BIN};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::process::{Command, Output};

const AUD: &str = "https://jitgate.test";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

struct Key {
    encoding: EncodingKey,
    jwk: Value,
}

fn ec_key(kid: &str) -> Key {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::EncodePrivateKey;
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let point = secret.public_key().to_encoded_point(false);
    Key {
        encoding: EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
        }),
    }
}

/// The issuer: discovery and JWKS on a loopback port, on a thread of its own.
fn start_issuer(jwk: Value) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let u = url.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app =
                axum::Router::new()
                    .route(
                        "/jwks",
                        axum::routing::get(move || {
                            let jwk = jwk.clone();
                            async move { axum::Json(json!({ "keys": [jwk] })) }
                        }),
                    )
                    .route(
                        "/.well-known/openid-configuration",
                        axum::routing::get(move || {
                            let u = u.clone();
                            async move {
                                axum::Json(json!({"issuer": u, "jwks_uri": format!("{u}/jwks")}))
                            }
                        }),
                    );
            let _ = axum::serve(listener, app).await;
        });
    });
    url
}

fn token(key: &Key, kid: &str, claims: Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

fn claims(issuer: &str, aud: &str, jti: &str, project: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": issuer, "aud": aud, "sub": "project_path:plant/historian-export",
           "project_path": project, "ref": "main", "iat": now, "nbf": now - 5,
           "exp": now + 600, "jti": jti})
}

fn serve(dir: &std::path::Path, port: u16, issuer: &str) -> Serve {
    let plant =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/plant.toml");
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\ninventory = {plant:?}\n\n\
         [[federation.issuers]]\nname = \"local-ci\"\nissuer = {issuer:?}\naudience = {AUD:?}\n\n\
         [[federation.issuers.bind]]\nidentity = \"svc-historian\"\n\
         claims = {{ project_path = \"plant/historian-export\", ref = \"main\" }}\n",
        data = dir.join("data").display().to_string(),
        plant = plant.display().to_string(),
    );
    let file = dir.join("jitgate.toml");
    std::fs::write(&file, config).unwrap();
    serve_config(&file, port)
}

fn cli(server: &str, profile: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .arg("--server")
        .arg(server)
        .arg("--profile")
        .arg(profile)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("JITGATE_TOKEN")
        .env_remove("JITGATE_SERVER")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_workload_signs_in_with_its_platform_token_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let key = ec_key("ci-1");
    let issuer = start_issuer(key.jwk.clone());
    let port = free_port();
    let _server = serve(tmp.path(), port, &issuer);
    let server = format!("http://127.0.0.1:{port}");
    let profile = tmp.path().join("ci.toml");

    // From a file: the session is svc-historian's, and it says how it was opened.
    let file = tmp.path().join("token");
    let good = token(
        &key,
        "ci-1",
        claims(&issuer, AUD, "job-1", "plant/historian-export"),
    );
    std::fs::write(&file, &good).unwrap();
    let out = cli(
        &server,
        &profile,
        &["login", "--federated-token-file", file.to_str().unwrap()],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let who = cli(&server, &profile, &["--json", "whoami"], &[]);
    assert!(who.status.success(), "{}", text(&who));
    let who: Value = serde_json::from_slice(&who.stdout).unwrap();
    assert_eq!(who["identity"]["id"], "svc-historian", "{who}");
    assert_eq!(who["auth_method"], "federated_jwt", "{who}");
    // The session works for the workload's own calls.
    let out = cli(&server, &profile, &["grants"], &[]);
    assert!(out.status.success(), "{}", text(&out));

    // The same token again: refused (one exchange per token, on every node).
    let out = cli(
        &server,
        &profile,
        &["login", "--federated-token-file", file.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("(token_replayed)"), "{}", text(&out));

    // From the environment, a fresh token: accepted.
    let fresh = token(
        &key,
        "ci-1",
        claims(&issuer, AUD, "job-2", "plant/historian-export"),
    );
    let out = cli(
        &server,
        &profile,
        &["login", "--federated-token-env", "CI_JOB_JWT"],
        &[("CI_JOB_JWT", &fresh)],
    );
    assert!(out.status.success(), "{}", text(&out));

    // Another audience, other claims, another signer: each refused, nothing signed in.
    let other = tmp.path().join("other.toml");
    for (code, bad) in [
        (
            "(wrong_audience)",
            token(
                &key,
                "ci-1",
                claims(
                    &issuer,
                    "https://elsewhere",
                    "job-3",
                    "plant/historian-export",
                ),
            ),
        ),
        (
            "(claims_not_bound)",
            token(
                &key,
                "ci-1",
                claims(&issuer, AUD, "job-4", "plant/other-project"),
            ),
        ),
        (
            "(token_bad_signature)",
            token(
                &ec_key("ci-1"),
                "ci-1",
                claims(&issuer, AUD, "job-5", "plant/historian-export"),
            ),
        ),
    ] {
        let what = code;
        let out = cli(
            &server,
            &other,
            &["login", "--federated-token-env", "CI_JOB_JWT"],
            &[("CI_JOB_JWT", &bad)],
        );
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(code),
            "{what}: {}",
            text(&out)
        );
        let who = cli(&server, &other, &["whoami"], &[]);
        assert!(
            !who.status.success(),
            "{what}: nothing may be signed in: {}",
            text(&who)
        );
    }
    // A missing variable is the caller's mistake (exit 2), said plainly.
    let out = cli(
        &server,
        &other,
        &["login", "--federated-token-env", "NO_SUCH_VARIABLE_SET"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
