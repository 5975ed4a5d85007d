//! Workload identity federation against a real local issuer: an HTTP server on 127.0.0.1
//! started here serves a JWKS (and an OpenID discovery document) of RSA and P-256 keys
//! generated per run; tokens are signed with them. Covered: a good token exchanged and the
//! session used as the workload; every refusal (wrong audience and issuer, expired, forged
//! signature, `alg: none`, HS256 with the public key as secret, unbound claims, replay,
//! malformed) with its code and event; rotation at the issuer (a new key accepted after the
//! refetch, which is rate-limited; a removed key refused after it); the issuer down (fail
//! closed, logged once per refetch interval); refusals throttled per source. On SQLite and
//! PostgreSQL (the replay record is in the database).

use super::*;
use base64::Engine;
use jitgate_core::Clock;
use jitgate_server::config::federation::{BindConfig, FederationConfig, IssuerConfig};
use jitgate_testkit::each_backend;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::sync::Mutex;

const AUD: &str = "https://jitgate.test";
const FEDERATE: &str = "/api/v1/auth/federate";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key of the local issuer, with its public JWK.
#[derive(Clone)]
struct Key {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

fn rsa_key(kid: &str) -> Key {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let der = private.to_pkcs1_der().unwrap();
    Key {
        kid: kid.into(),
        alg: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        jwk: json!({
            "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": b64(&private.n().to_bytes_be()), "e": b64(&private.e().to_bytes_be()),
        }),
    }
}

fn ec_key(kid: &str) -> Key {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::pkcs8::EncodePrivateKey;
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let point = secret.public_key().to_encoded_point(false);
    Key {
        kid: kid.into(),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes()),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
            "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
        }),
    }
}

/// The local issuer: serves whatever keys `publish` last set, until stopped.
struct Issuer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Issuer {
    async fn start() -> Issuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let keys: Arc<Mutex<Vec<Value>>> = Arc::default();
        let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (k, f, u) = (keys.clone(), fetches.clone(), url.clone());
        let app = axum::Router::new()
            .route(
                "/jwks",
                axum::routing::get(move || {
                    let (k, f) = (k.clone(), f.clone());
                    async move {
                        f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        axum::Json(json!({"keys": k.lock().unwrap().clone()}))
                    }
                }),
            )
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || {
                    let u = u.clone();
                    async move { axum::Json(json!({"issuer": u, "jwks_uri": format!("{u}/jwks")})) }
                }),
            );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Issuer {
            url,
            keys,
            fetches,
            task,
        }
    }

    fn publish(&self, keys: &[&Key]) {
        *self.keys.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The trust of this issuer: `discovery` leaves `jwks_url` out.
    fn trust(&self, discovery: bool) -> FederationConfig {
        FederationConfig {
            issuers: vec![IssuerConfig {
                name: "local-ci".into(),
                issuer: self.url.clone(),
                jwks_url: (!discovery).then(|| format!("{}/jwks", self.url)),
                audience: AUD.into(),
                ca_file: None,
                max_session: "15m".into(),
                jwks_refetch_interval: "10s".into(),
                jwks_max_age: "5m".into(),
                bind: vec![BindConfig {
                    identity: "svc-historian".into(),
                    claims: [
                        ("repository".to_string(), "plant/historian".to_string()),
                        ("ref".to_string(), "refs/heads/*".to_string()),
                    ]
                    .into(),
                }],
            }],
        }
    }
}

fn plant_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/plant.toml")
}

async fn start(store: Store, issuer: &Issuer, discovery: bool) -> Harness {
    let trust = issuer.trust(discovery);
    Harness::start_configured(store, Arc::new(ManualClock::new(start_time())), |c| {
        // Bindings are checked against the inventory at start: load it then.
        c.inventory = Some(plant_file());
        c.federation = trust;
    })
    .await
}

/// Claims of a good token of `issuer` at `now`, changed by `extra` (null removes a claim).
fn claims(issuer: &Issuer, now: i64, extra: Value) -> Value {
    let mut c = json!({
        "iss": issuer.url, "aud": AUD, "sub": "repo:plant/historian:ref:refs/heads/main",
        "repository": "plant/historian", "ref": "refs/heads/main",
        "iat": now, "nbf": now, "exp": now + 300, "jti": uuid::Uuid::new_v4().to_string(),
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn sign(key: &Key, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

fn now(h: &Harness) -> i64 {
    h.clock.now().timestamp()
}

async fn federate(h: &Harness, token: &str) -> (StatusCode, Value) {
    h.raw("POST", FEDERATE, None, Some(json!({ "token": token })))
        .await
}

/// Refused with `code`, and one more `auth.federation_refused` event, with `reason`.
async fn refused(h: &mut Harness, token: &str, status: StatusCode, code: &str, reason: &str) {
    let before = events_of(h, "auth.federation_refused").await.len();
    let (s, v) = federate(h, token).await;
    assert_eq!((s, v["code"].as_str()), (status, Some(code)), "{v}");
    assert!(!v["message"].as_str().unwrap_or("").is_empty(), "{v}");
    let after = events_of(h, "auth.federation_refused").await;
    assert_eq!(after.len(), before + 1, "one event per refusal: {after:?}");
    assert_eq!(after.last().unwrap()["data"]["reason"], reason, "{after:?}");
}

#[tokio::test]
async fn a_good_token_is_exchanged_once_and_every_bad_one_is_refused_with_its_reason() {
    let rsa = rsa_key("r1");
    let ec = ec_key("e1");
    each_backend(|store| {
        let (rsa, ec) = (rsa.clone(), ec.clone());
        async move {
            let issuer = Issuer::start().await;
            issuer.publish(&[&rsa, &ec]);
            let mut h = start(store, &issuer, false).await;
            h.login("sam").await;
            let t = now(&h);

            // A good token: a session for the bound workload, working as it.
            let good = sign(&rsa, &claims(&issuer, t, json!({"exp": t + 120})));
            let (s, v) = federate(&h, &good).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            assert_eq!(v["identity"]["id"], "svc-historian");
            let session = v["token"].as_str().unwrap().to_string();
            assert!(session.starts_with("jgs_"));
            // The session ends with the token (120 s), before the 15 min maximum.
            let expires =
                chrono::DateTime::parse_from_rfc3339(v["expires_at"].as_str().unwrap()).unwrap();
            assert_eq!(expires.timestamp(), t + 120);
            let (s, me) = h
                .raw("GET", "/api/v1/auth/whoami", Some(&session), None)
                .await;
            assert_eq!(s, StatusCode::OK, "{me}");
            assert_eq!(me["identity"]["id"], "svc-historian");
            assert_eq!(me["auth_method"], "federated_jwt");
            let (s, list) = h.raw("GET", "/api/v1/requests", Some(&session), None).await;
            assert_eq!(s, StatusCode::OK, "the workload calls the API: {list}");
            // A person's session says how it was opened too.
            let (_, me) = h.call("sam", "GET", "/api/v1/auth/whoami", None).await;
            assert_eq!(me["auth_method"], "password");

            let ok = events_of(&mut h, "auth.federated").await;
            assert_eq!(ok.len(), 1, "{ok:?}");
            let d = &ok[0]["data"];
            assert_eq!(d["identity"], "svc-historian");
            assert_eq!(d["issuer_name"], "local-ci");
            assert_eq!(d["iss"], issuer.url.as_str());
            assert_eq!(d["method"], "federated_jwt");
            assert_eq!(d["binding"], 1);
            assert_eq!(d["matched_claims"]["ref"], "refs/heads/main");
            assert_eq!(d["matched_claims"]["repository"], "plant/historian");
            assert!(d["jti"].is_string() && d["sub"].is_string(), "{d}");

            // The same token again: replayed, whichever node it reaches (the record is in
            // the database).
            let u = StatusCode::UNAUTHORIZED;
            refused(&mut h, &good, u, "token_replayed", "token_replayed").await;

            let bad = |extra: Value| sign(&rsa, &claims(&issuer, t, extra));
            let tok = bad(json!({"aud": "https://someone-else.test"}));
            refused(&mut h, &tok, u, "wrong_audience", "wrong_audience").await;
            let tok = bad(json!({"iss": format!("{}/other", issuer.url)}));
            refused(&mut h, &tok, u, "unknown_issuer", "unknown_issuer").await;
            let tok = bad(json!({"iat": t - 900, "nbf": t - 900, "exp": t - 300}));
            refused(&mut h, &tok, u, "token_expired", "expired").await;
            let tok = bad(json!({"nbf": t + 600}));
            refused(&mut h, &tok, u, "token_not_yet_valid", "not_yet_valid").await;
            let tok = bad(json!({"exp": t + 2 * 86_400}));
            refused(
                &mut h,
                &tok,
                u,
                "token_lifetime_too_long",
                "lifetime_too_long",
            )
            .await;
            let tok = bad(json!({"repository": "plant/other"}));
            refused(&mut h, &tok, u, "claims_not_bound", "claims_not_bound").await;
            let tok = bad(json!({"ref": null}));
            refused(&mut h, &tok, u, "claims_not_bound", "claims_not_bound").await;

            // Forged: signed by a key the issuer does not publish, under a published kid.
            let forger = Key {
                kid: "e1".into(),
                ..ec_key("e1")
            };
            let tok = sign(&forger, &claims(&issuer, t, json!({})));
            refused(&mut h, &tok, u, "token_bad_signature", "bad_signature").await;
            // A good signature over other claims: the payload swapped.
            let [head, _, sig]: [&str; 3] = good.split('.').collect::<Vec<_>>().try_into().unwrap();
            let other = b64(claims(&issuer, t, json!({})).to_string().as_bytes());
            let tok = format!("{head}.{other}.{sig}");
            refused(&mut h, &tok, u, "token_bad_signature", "bad_signature").await;
            // `alg: none`.
            let none_head = b64(br#"{"alg":"none","typ":"JWT","kid":"r1"}"#);
            let body = b64(claims(&issuer, t, json!({})).to_string().as_bytes());
            let tok = format!("{none_head}.{body}.");
            refused(&mut h, &tok, u, "token_bad_signature", "bad_signature").await;
            // HS256 with the issuer's public key (as published) as the HMAC secret.
            let mut hs = Header::new(Algorithm::HS256);
            hs.kid = Some("r1".into());
            let secret = rsa.jwk.to_string();
            let tok = jsonwebtoken::encode(
                &hs,
                &claims(&issuer, t, json!({})),
                &EncodingKey::from_secret(secret.as_bytes()),
            )
            .unwrap();
            refused(&mut h, &tok, u, "token_bad_signature", "bad_signature").await;
            let n = rsa.jwk["n"].as_str().unwrap();
            let tok = jsonwebtoken::encode(
                &hs,
                &claims(&issuer, t, json!({})),
                &EncodingKey::from_secret(n.as_bytes()),
            )
            .unwrap();
            refused(&mut h, &tok, u, "token_bad_signature", "bad_signature").await;
            refused(&mut h, "not-a-jwt", u, "token_malformed", "malformed").await;
            let tok = sign(&rsa, &claims(&issuer, t, json!({"exp": null})));
            refused(&mut h, &tok, u, "token_malformed", "malformed").await;

            // Disabled workload: refused, nothing issued.
            let (s, v) = h
                .call(
                    "sam",
                    "POST",
                    "/api/v1/identities/svc-historian/disable",
                    Some(json!({"reason": "decommissioned"})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let tok = sign(&rsa, &claims(&issuer, t, json!({})));
            let forbidden = StatusCode::FORBIDDEN;
            refused(
                &mut h,
                &tok,
                forbidden,
                "identity_disabled",
                "identity_disabled",
            )
            .await;
            let (s, _) = h
                .raw("GET", "/api/v1/auth/whoami", Some(&session), None)
                .await;
            assert_eq!(
                s, forbidden,
                "the disabled workload's session is refused too"
            );

            // Nothing else was issued: still the one success.
            assert_eq!(events_of(&mut h, "auth.federated").await.len(), 1);
            // The keys were fetched once: no refusal made the server fetch again within the
            // refetch interval.
            assert_eq!(issuer.fetches(), 1);
            h.stop().await;
            issuer.task.abort();
        }
    })
    .await;
}

#[tokio::test]
async fn rotation_at_the_issuer_is_picked_up_and_an_issuer_down_fails_closed() {
    let old = rsa_key("k-old");
    each_backend(|store| {
        let old = old.clone();
        async move {
            let mut issuer = Issuer::start().await;
            issuer.publish(&[&old]);
            // Keys found through OpenID discovery (no jwks_url).
            let mut h = start(store, &issuer, true).await;
            h.login("sam").await;
            let u = StatusCode::UNAUTHORIZED;
            let t = now(&h);
            let (s, v) = federate(&h, &sign(&old, &claims(&issuer, t, json!({})))).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            assert_eq!(issuer.fetches(), 1);

            // The issuer adds a key and signs with it. Within the refetch interval the
            // unknown kid does not make the server fetch again: refused.
            let new = ec_key("k-new");
            issuer.publish(&[&old, &new]);
            let tok = sign(&new, &claims(&issuer, now(&h), json!({})));
            refused(&mut h, &tok, u, "token_bad_signature", "bad_signature").await;
            assert_eq!(issuer.fetches(), 1, "rate-limited");
            // After it, the unknown kid makes one fetch, and the new key is accepted.
            h.clock.advance(chrono::Duration::seconds(10));
            let tok = sign(&new, &claims(&issuer, now(&h), json!({})));
            let (s, v) = federate(&h, &tok).await;
            assert_eq!(s, StatusCode::OK, "accepted after the refetch: {v}");
            assert_eq!(issuer.fetches(), 2);

            // The old key is removed. Once the server fetched again (an unknown kid, after
            // the interval), tokens signed with it are refused.
            issuer.publish(&[&new]);
            h.clock.advance(chrono::Duration::seconds(10));
            let stranger = ec_key("k-unknown");
            let tok = sign(&stranger, &claims(&issuer, now(&h), json!({})));
            refused(&mut h, &tok, u, "token_bad_signature", "bad_signature").await;
            assert_eq!(issuer.fetches(), 3);
            let tok = sign(&old, &claims(&issuer, now(&h), json!({})));
            refused(&mut h, &tok, u, "token_bad_signature", "bad_signature").await;
            let tok = sign(&new, &claims(&issuer, now(&h), json!({})));
            assert_eq!(federate(&h, &tok).await.0, StatusCode::OK);

            // The issuer goes down. Keys older than jwks_max_age (5m) are not used: the
            // fetch fails and nothing is accepted (503), logged once per refetch interval.
            issuer.task.abort();
            let _ = (&mut issuer.task).await;
            h.clock.advance(chrono::Duration::minutes(5));
            let tok = sign(&new, &claims(&issuer, now(&h), json!({})));
            let unavailable = StatusCode::SERVICE_UNAVAILABLE;
            let code = "federation_unavailable";
            refused(&mut h, &tok, unavailable, code, "jwks_unavailable").await;
            let before = events_of(&mut h, "auth.federation_refused").await.len();
            let resp = h
                .http
                .post(format!("{}{FEDERATE}", h.base))
                .json(&json!({ "token": tok }))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), unavailable);
            assert_eq!(resp.headers()["retry-after"], "10");
            assert_eq!(
                events_of(&mut h, "auth.federation_refused").await.len(),
                before,
                "answered from the last failure, not logged again"
            );
            // Password sign-ins and API calls go on.
            let (s, _) = h.call("sam", "GET", "/api/v1/auth/whoami", None).await;
            assert_eq!(s, StatusCode::OK);
            h.stop().await;
        }
    })
    .await;
}

#[tokio::test]
async fn refusals_are_throttled_per_source_so_the_log_stays_bounded() {
    let key = ec_key("k1");
    each_backend(|store| {
        let key = key.clone();
        async move {
            let issuer = Issuer::start().await;
            issuer.publish(&[&key]);
            let trust = issuer.trust(false);
            let mut h =
                Harness::start_configured(store, Arc::new(ManualClock::new(start_time())), |c| {
                    c.inventory = Some(plant_file());
                    c.federation = trust;
                    c.login.source.free_failures = 2;
                    c.login.source.lockout_after = 4;
                })
                .await;
            // Signed in before the source is throttled (the events are read as sam).
            h.login("sam").await;
            let wrong = sign(&key, &claims(&issuer, now(&h), json!({"aud": "x"})));
            let mut statuses = Vec::new();
            for _ in 0..12 {
                statuses.push(federate(&h, &wrong).await.0.as_u16());
            }
            // Two free, then backoff (unchecked, unlogged), until the lockout.
            assert_eq!(&statuses[..3], &[401, 401, 401], "{statuses:?}");
            assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
            let logged = events_of(&mut h, "auth.federation_refused").await.len();
            assert_eq!(
                logged, 3,
                "only the refusals that were looked at are logged"
            );
            // Even a good token waits out the backoff of its source.
            let good = sign(&key, &claims(&issuer, now(&h), json!({})));
            assert_eq!(federate(&h, &good).await.0, StatusCode::TOO_MANY_REQUESTS);
            h.clock.advance(chrono::Duration::seconds(2));
            assert_eq!(federate(&h, &good).await.0, StatusCode::OK);
            h.stop().await;
            issuer.task.abort();
        }
    })
    .await;
}
