//! OIDC sign-in for people, on SQLite and PostgreSQL.
//!
//! - Against the real OpenID provider (`oidc-provider` from npm, run by node on loopback;
//!   `jitgate_testkit::oidc`): a console sign-in through its login and consent pages, with
//!   the session used; the refusals it can be made to produce — a callback replayed (state
//!   used), a code used twice, a callback in another browser, an unmapped subject, the
//!   provider down (fail closed) — and a CLI sign-in's hand-off (redeemed once, with the
//!   right verifier only); an `sso_only` identity's password refused.
//! - Against a local issuer made here (an HTTP server serving discovery, keys and a token
//!   endpoint answering with the ID token a test queued), for the tokens a real provider
//!   will not make: wrong issuer, audience or nonce, expired, a forged signature, `alg:
//!   none`, HS256, a replayed token, a key rotation, the keys unreachable.

use super::*;
use base64::Engine;
use jitgate_core::Clock;
use jitgate_server::config::sso::{GroupsConfig, MapConfig, ProviderConfig, SsoConfig};
use jitgate_testkit::each_backend;
use jitgate_testkit::oidc::{sign_in_at_provider, OidcProvider, CLIENT_ID, CLIENT_SECRET};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::sync::Mutex;

fn plant_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/plant.toml")
}

/// A free loopback port for the server: its redirect URL must be known before it starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn redirect_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/api/v1/auth/sso/plant-idp/callback")
}

fn provider_config(issuer: &str, port: u16, secret_file: &std::path::Path) -> ProviderConfig {
    ProviderConfig {
        name: "plant-idp".into(),
        display_name: Some("Plant IdP".into()),
        issuer: issuer.into(),
        client_id: CLIENT_ID.into(),
        client_secret_file: Some(secret_file.to_path_buf()),
        client_secret_env: None,
        redirect_url: redirect_url(port),
        scopes: vec!["email".into(), "groups".into()],
        groups_claim: Some("groups".into()),
        ca_file: None,
        max_session: "8h".into(),
        jwks_refetch_interval: "10s".into(),
        jwks_max_age: "5m".into(),
        map: vec![
            MapConfig {
                identity: "alice".into(),
                subject: Some("alice".into()),
                email: None,
            },
            MapConfig {
                identity: "bob".into(),
                subject: Some("bob".into()),
                email: None,
            },
        ],
        groups: vec![GroupsConfig {
            group: "ot-approvers".into(),
            roles: vec!["security".into()],
        }],
    }
}

async fn start(store: Store, issuer: &str, port: u16) -> Harness {
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), format!("{CLIENT_SECRET}\n")).unwrap();
    let p = provider_config(issuer, port, secret.path());
    let h = Harness::start_configured(store, Arc::new(ManualClock::new(start_time())), |c| {
        c.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.inventory = Some(plant_file());
        c.sso = SsoConfig {
            sso_only: vec!["alice".into()],
            providers: vec![p],
        };
        // Many refusals from one address in this test: none of them throttled.
        c.login.source.free_failures = 100;
        c.login.source.lockout_after = 200;
    })
    .await;
    // The secret is read at start.
    drop(secret);
    h
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_string()
}

fn cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .filter_map(|c| c.split(';').next()?.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_string())
}

/// A console sign-in started: (the provider's URL, the browser cookie).
async fn start_console(h: &Harness) -> (String, String) {
    let resp = no_redirects()
        .get(format!("{}/api/v1/auth/sso/plant-idp/start", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let browser = cookie(&resp, "jitgate_sso").expect("browser-binding cookie");
    (location(&resp), browser)
}

/// The callback, as the browser would call it: (where it redirects, the session token set).
async fn callback(url: &str, browser: Option<&str>) -> (String, Option<String>) {
    let mut req = no_redirects().get(url);
    if let Some(b) = browser {
        req = req.header("cookie", format!("jitgate_sso={b}"));
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    (location(&resp), cookie(&resp, "__Host-jitgate_session"))
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.to_string())
}

/// The console's error from a refused callback's redirect (`/console/#sso_error=...`).
fn console_error(loc: &str) -> String {
    let frag = loc.split_once('#').map(|x| x.1).unwrap_or("");
    frag.split('&')
        .find_map(|p| p.strip_prefix("sso_error="))
        .unwrap_or("")
        .to_string()
}

/// One more `auth.sso_refused` event with `reason`; returns it.
async fn refused_event(h: &mut Harness, before: usize, reason: &str) -> Value {
    let after = events_of(h, "auth.sso_refused").await;
    assert_eq!(after.len(), before + 1, "one event per refusal: {after:#?}");
    let e = after.last().unwrap().clone();
    assert_eq!(e["data"]["reason"], reason, "{e}");
    e
}

/// Keep the server's clock on real time: the real provider stamps its tokens with it.
fn real_time(h: &Harness) {
    h.clock.set(start_time());
}

#[tokio::test]
async fn people_sign_in_through_a_real_openid_provider_and_its_refusals_are_events() {
    if !OidcProvider::available() {
        return;
    }
    each_backend(|store| async move {
        let port = free_port();
        let mut op = OidcProvider::start(&[redirect_url(port)]).unwrap();
        let mut h = start(store, &op.issuer, port).await;
        h.login("sam").await;

        // The console's sign-in, through the provider's own pages.
        real_time(&h);
        let (auth_url, browser) = start_console(&h).await;
        assert!(auth_url.starts_with(&op.issuer), "{auth_url}");
        assert_eq!(
            query_param(&auth_url, "code_challenge_method").as_deref(),
            Some("S256")
        );
        assert!(query_param(&auth_url, "nonce").is_some());
        let back = sign_in_at_provider(&auth_url, "alice").await;
        assert!(back.starts_with(&redirect_url(port)), "{back}");
        let (to, session) = callback(&back, Some(&browser)).await;
        assert_eq!(to, "/console/");
        let session = session.expect("the console's session cookie");
        let (s, who) = h
            .raw("GET", "/api/v1/auth/whoami", Some(&session), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{who}");
        assert_eq!(who["identity"]["id"], "alice");
        assert_eq!(who["auth_method"], "oidc");
        // The group's role holds for this session (alice's inventory roles do not have it).
        assert!(
            who["identity"]["roles"]
                .as_array()
                .unwrap()
                .contains(&json!("security")),
            "{who}"
        );
        let signed = events_of(&mut h, "auth.sso").await;
        assert_eq!(signed.len(), 1, "{signed:?}");
        let d = &signed[0]["data"];
        assert_eq!(
            (
                d["identity"].as_str(),
                d["provider"].as_str(),
                d["sub"].as_str()
            ),
            (Some("alice"), Some("plant-idp"), Some("alice"))
        );
        assert_eq!(
            (d["method"].as_str(), d["client"].as_str()),
            (Some("oidc"), Some("console"))
        );
        assert_eq!(d["iss"], op.issuer);
        assert_eq!(d["roles_added"], json!(["security"]));

        // The same callback again: its state is used.
        let n = events_of(&mut h, "auth.sso_refused").await.len();
        let (to, session) = callback(&back, Some(&browser)).await;
        assert_eq!(
            (console_error(&to).as_str(), session),
            ("sso_state_mismatch", None)
        );
        assert!(to.contains("message="), "{to}");
        refused_event(&mut h, n, "state_mismatch").await;

        // The code again, with a fresh state of this browser: the provider refuses it
        // (used already, and this sign-in's PKCE verifier is another).
        let (auth2, browser2) = start_console(&h).await;
        let state2 = query_param(&auth2, "state").unwrap();
        let code = query_param(&back, "code").unwrap();
        let reuse = format!("{}?code={code}&state={state2}", redirect_url(port));
        let n = events_of(&mut h, "auth.sso_refused").await.len();
        let (to, _) = callback(&reuse, Some(&browser2)).await;
        assert_eq!(console_error(&to), "sso_code_rejected", "{to}");
        refused_event(&mut h, n, "code_rejected").await;

        // A callback opened in another browser (without the cookie of the one that started).
        real_time(&h);
        let (auth3, _browser3) = start_console(&h).await;
        let back3 = sign_in_at_provider(&auth3, "alice").await;
        let n = events_of(&mut h, "auth.sso_refused").await.len();
        let (to, session) = callback(&back3, None).await;
        assert_eq!(
            (console_error(&to).as_str(), session),
            ("sso_state_mismatch", None)
        );
        refused_event(&mut h, n, "state_mismatch").await;

        // Someone the mapping does not know.
        real_time(&h);
        let (auth4, browser4) = start_console(&h).await;
        let back4 = sign_in_at_provider(&auth4, "mallory").await;
        let n = events_of(&mut h, "auth.sso_refused").await.len();
        let (to, _) = callback(&back4, Some(&browser4)).await;
        assert_eq!(console_error(&to), "sso_unmapped", "{to}");
        let e = refused_event(&mut h, n, "unmapped").await;
        assert_eq!(e["data"]["sub"], "mallory");
        assert_eq!(e["data"]["provider"], "plant-idp");

        // alice is SSO-only: her (right) password is refused, with its own code and event.
        let (s, v) = h
            .raw(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"identity": "alice", "password": password("alice")})),
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("sso_only")),
            "{v}"
        );
        let failed = events_of(&mut h, "auth.login_failed").await;
        assert_eq!(failed.last().unwrap()["data"]["failure"], "sso_only");
        // bob is not: his password still works (break-glass and quickstart stay).
        h.login("bob").await;

        // The CLI's way: a loopback port and its own PKCE challenge; the provider's
        // callback sends the browser to the loopback address with a one-time code.
        real_time(&h);
        let verifier = "v".repeat(20) + &uuid::Uuid::new_v4().simple().to_string();
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
        let (s, started) = h
            .raw(
                "POST",
                "/api/v1/auth/sso/plant-idp/cli",
                None,
                Some(json!({"port": 45_999, "code_challenge": challenge})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{started}");
        let back = sign_in_at_provider(started["authorization_url"].as_str().unwrap(), "bob").await;
        let to = callback(&back, None).await.0;
        assert!(
            to.starts_with("http://127.0.0.1:45999/callback?code="),
            "{to}"
        );
        let handoff = query_param(&to, "code").unwrap();
        let n = events_of(&mut h, "auth.sso_refused").await.len();
        let (s, v) = redeem(
            &h,
            &handoff,
            "another-verifier-of-at-least-43-characters-xxxxx",
        )
        .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("sso_handoff_rejected"))
        );
        refused_event(&mut h, n, "handoff_rejected").await;
        // One try per code: spent by the wrong verifier.
        let (s, v) = redeem(&h, &handoff, &verifier).await;
        assert_eq!(v["code"], "sso_handoff_rejected", "{s} {v}");

        real_time(&h);
        let (s, started) = h
            .raw(
                "POST",
                "/api/v1/auth/sso/plant-idp/cli",
                None,
                Some(json!({"port": 45_999, "code_challenge": challenge})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{started}");
        let back = sign_in_at_provider(started["authorization_url"].as_str().unwrap(), "bob").await;
        let handoff = query_param(&callback(&back, None).await.0, "code").unwrap();
        let (s, v) = redeem(&h, &handoff, &verifier).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["identity"]["id"], "bob");
        let token = v["token"].as_str().unwrap().to_string();
        let (_, who) = h
            .raw("GET", "/api/v1/auth/whoami", Some(&token), None)
            .await;
        assert_eq!(
            (who["identity"]["id"].as_str(), who["auth_method"].as_str()),
            (Some("bob"), Some("oidc"))
        );
        let last = events_of(&mut h, "auth.sso").await;
        assert_eq!(last.last().unwrap()["data"]["client"], "cli");
        let (s, _) = redeem(&h, &handoff, &verifier).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);

        // The provider goes away: once the cached discovery is too old, nobody signs in
        // with it (fail closed), and it says so.
        op.stop();
        h.clock.advance(chrono::Duration::minutes(6));
        let n = events_of(&mut h, "auth.sso_refused").await.len();
        let resp = no_redirects()
            .get(format!("{}/api/v1/auth/sso/plant-idp/start", h.base))
            .send()
            .await
            .unwrap();
        assert_eq!(console_error(&location(&resp)), "sso_unavailable");
        refused_event(&mut h, n, "provider_unavailable").await;
        // The CLI gets the API's answer: 503 with Retry-After; not logged again so soon.
        let (s, v) = h
            .raw(
                "POST",
                "/api/v1/auth/sso/plant-idp/cli",
                None,
                Some(json!({"port": 45_999, "code_challenge": challenge})),
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("sso_unavailable"))
        );
        assert_eq!(events_of(&mut h, "auth.sso_refused").await.len(), n + 1);
        // Passwords are unaffected.
        let (s, _) = h
            .raw(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"identity": "carol", "password": password("carol")})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        h.stop().await;
    })
    .await;
}

async fn redeem(h: &Harness, code: &str, verifier: &str) -> (StatusCode, Value) {
    h.raw(
        "POST",
        "/api/v1/auth/sso/redeem",
        None,
        Some(json!({"code": code, "code_verifier": verifier})),
    )
    .await
}

// ------------------------------------------------------------------ the local issuer

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[derive(Clone)]
struct Key {
    kid: String,
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
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        jwk: json!({
            "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": b64(&private.n().to_bytes_be()), "e": b64(&private.e().to_bytes_be()),
        }),
    }
}

/// A local OpenID issuer: discovery, the keys `publish` set, and a token endpoint that
/// answers with the ID token `queue` set.
struct Issuer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    id_token: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Issuer {
    async fn start() -> Issuer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let keys: Arc<Mutex<Vec<Value>>> = Arc::default();
        let id_token: Arc<Mutex<String>> = Arc::default();
        let (k, t, u) = (keys.clone(), id_token.clone(), url.clone());
        let app = axum::Router::new()
            .route(
                "/jwks",
                axum::routing::get(move || {
                    let k = k.clone();
                    async move { axum::Json(json!({"keys": k.lock().unwrap().clone()})) }
                }),
            )
            .route(
                "/token",
                axum::routing::post(move || {
                    let t = t.clone();
                    async move {
                        axum::Json(json!({
                            "access_token": "at", "token_type": "Bearer", "expires_in": 60,
                            "id_token": t.lock().unwrap().clone(),
                        }))
                    }
                }),
            )
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || {
                    let u = u.clone();
                    async move {
                        axum::Json(json!({
                            "issuer": u, "jwks_uri": format!("{u}/jwks"),
                            "authorization_endpoint": format!("{u}/auth"),
                            "token_endpoint": format!("{u}/token"),
                            "response_types_supported": ["code"],
                            "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256"],
                        }))
                    }
                }),
            );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Issuer {
            url,
            keys,
            id_token,
            task,
        }
    }

    fn publish(&self, keys: &[&Key]) {
        *self.keys.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn queue(&self, token: String) {
        *self.id_token.lock().unwrap() = token;
    }
}

fn sign(key: &Key, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

/// An unsigned token (`alg: none`) or any header, with these claims.
fn with_header(header: Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// Claims of a good ID token for this sign-in, changed by `extra` (null removes).
fn claims(iss: &str, nonce: &str, now: i64, extra: Value) -> Value {
    let mut c = json!({
        "iss": iss, "aud": CLIENT_ID, "sub": "alice", "nonce": nonce,
        "iat": now, "exp": now + 300, "acr": "urn:plant:mfa", "amr": ["pwd", "hwk"],
        "groups": ["staff"], "jti": uuid::Uuid::new_v4().to_string(),
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

/// Start a console sign-in, let the issuer answer with `token(nonce)`, call the callback:
/// the redirect's target.
async fn sign_in_with(
    h: &Harness,
    issuer: &Issuer,
    port: u16,
    token: impl FnOnce(&str) -> String,
) -> (String, Option<String>) {
    let (auth, browser) = start_console(h).await;
    let nonce = query_param(&auth, "nonce").unwrap();
    let state = query_param(&auth, "state").unwrap();
    issuer.queue(token(&nonce));
    let url = format!("{}?code=any&state={state}", redirect_url(port));
    callback(&url, Some(&browser)).await
}

/// Makes an ID token for a sign-in's nonce.
type MakeToken<'a> = Box<dyn Fn(&str) -> String + 'a>;

#[tokio::test]
async fn every_bad_id_token_is_refused_with_its_reason_and_rotation_is_picked_up() {
    let key = rsa_key("k1");
    each_backend(|store| {
        let key = key.clone();
        async move {
            let issuer = Issuer::start().await;
            issuer.publish(&[&key]);
            let port = free_port();
            let mut h = start(store, &issuer.url, port).await;
            h.login("sam").await;
            let (s, list) = h.raw("GET", "/api/v1/auth/sso/providers", None, None).await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(
                list,
                json!([{"name": "plant-idp", "display_name": "Plant IdP"}])
            );
            let iss = issuer.url.clone();
            let now = h.clock.now().timestamp();
            let cases: Vec<(&str, &str, MakeToken)> = vec![
                (
                    "unknown_issuer",
                    "wrong_issuer",
                    Box::new(|n: &str| {
                        sign(&key, &claims("https://evil.example", n, now, json!({})))
                    }),
                ),
                (
                    "wrong_audience",
                    "wrong_audience",
                    Box::new(|n: &str| {
                        sign(
                            &key,
                            &claims(&iss, n, now, json!({"aud": "another-client"})),
                        )
                    }),
                ),
                (
                    "sso_nonce_mismatch",
                    "nonce_mismatch",
                    Box::new(|_: &str| {
                        sign(&key, &claims(&iss, "another-sign-in", now, json!({})))
                    }),
                ),
                (
                    "token_expired",
                    "expired",
                    Box::new(|n: &str| {
                        sign(
                            &key,
                            &claims(&iss, n, now, json!({"iat": now - 900, "exp": now - 600})),
                        )
                    }),
                ),
                (
                    "token_bad_signature",
                    "bad_signature",
                    Box::new(|n: &str| {
                        // Signed by a key the issuer does not publish, under its kid.
                        let forged = Key {
                            kid: "k1".into(),
                            ..rsa_key("k1")
                        };
                        sign(&forged, &claims(&iss, n, now, json!({})))
                    }),
                ),
                (
                    "token_bad_signature",
                    "bad_signature",
                    Box::new(|n: &str| {
                        with_header(
                            json!({"alg": "none", "typ": "JWT"}),
                            &claims(&iss, n, now, json!({})),
                            "",
                        )
                    }),
                ),
                (
                    "token_bad_signature",
                    "bad_signature",
                    Box::new(|n: &str| {
                        with_header(
                            json!({"alg": "HS256", "kid": "k1"}),
                            &claims(&iss, n, now, json!({})),
                            "c2ln",
                        )
                    }),
                ),
                (
                    "sso_unmapped",
                    "unmapped",
                    Box::new(|n: &str| {
                        sign(&key, &claims(&iss, n, now, json!({"sub": "mallory"})))
                    }),
                ),
            ];
            for (code, reason, token) in cases {
                let n = events_of(&mut h, "auth.sso_refused").await.len();
                let (to, session) = sign_in_with(&h, &issuer, port, |nonce| token(nonce)).await;
                assert_eq!(
                    (console_error(&to).as_str(), session),
                    (code, None),
                    "{reason}: {to}"
                );
                let e = refused_event(&mut h, n, reason).await;
                assert_eq!(e["data"]["provider"], "plant-idp");
            }

            // The provider says no (the person declined): refused with its words.
            let (auth, browser) = start_console(&h).await;
            let state = query_param(&auth, "state").unwrap();
            let n = events_of(&mut h, "auth.sso_refused").await.len();
            let url = format!(
                "{}?error=access_denied&error_description=consent+declined&state={state}",
                redirect_url(port)
            );
            let (to, session) = callback(&url, Some(&browser)).await;
            assert_eq!(
                (console_error(&to).as_str(), session),
                ("sso_provider_denied", None)
            );
            assert!(to.contains("consent"), "{to}");
            refused_event(&mut h, n, "provider_denied").await;

            // A good token: signed in, with acr and amr in the event.
            let mut kept = String::new();
            let (to, session) = sign_in_with(&h, &issuer, port, |n| {
                kept = sign(&key, &claims(&iss, n, now, json!({})));
                kept.clone()
            })
            .await;
            assert_eq!(to, "/console/");
            assert!(session.is_some());
            let e = events_of(&mut h, "auth.sso").await;
            let d = &e.last().unwrap()["data"];
            assert_eq!(
                (d["acr"].as_str(), d["amr"].clone()),
                (Some("urn:plant:mfa"), json!(["pwd", "hwk"]))
            );
            assert!(
                d.get("roles_added").is_none(),
                "no group of the mapping: {d}"
            );

            // The same ID token for another sign-in: replayed.
            let n = events_of(&mut h, "auth.sso_refused").await.len();
            let (to, _) = sign_in_with(&h, &issuer, port, |_| kept.clone()).await;
            assert_eq!(console_error(&to), "token_replayed");
            refused_event(&mut h, n, "token_replayed").await;

            // The issuer rotates to k2: a token with the new kid makes the server fetch the
            // keys again (not sooner than the refetch interval after the last fetch).
            let k2 = rsa_key("k2");
            issuer.publish(&[&k2]);
            h.clock.advance(chrono::Duration::seconds(11));
            let now = h.clock.now().timestamp();
            let (to, session) = sign_in_with(&h, &issuer, port, |n| {
                sign(&k2, &claims(&iss, n, now, json!({})))
            })
            .await;
            assert_eq!((to.as_str(), session.is_some()), ("/console/", true));
            // k1 is gone from the issuer, and so from the server.
            let n = events_of(&mut h, "auth.sso_refused").await.len();
            let (to, _) = sign_in_with(&h, &issuer, port, |n| {
                sign(&key, &claims(&iss, n, now, json!({})))
            })
            .await;
            assert_eq!(console_error(&to), "token_bad_signature");
            refused_event(&mut h, n, "bad_signature").await;

            // The issuer unreachable: once the cached keys are too old, nothing verifies.
            issuer.task.abort();
            let _ = issuer.task.await;
            h.clock.advance(chrono::Duration::minutes(6));
            let n = events_of(&mut h, "auth.sso_refused").await.len();
            let resp = no_redirects()
                .get(format!("{}/api/v1/auth/sso/plant-idp/start", h.base))
                .send()
                .await
                .unwrap();
            assert_eq!(console_error(&location(&resp)), "sso_unavailable");
            refused_event(&mut h, n, "provider_unavailable").await;
            h.stop().await;
        }
    })
    .await;
}

/// The server does not start with a mapping that could sign someone in as someone else, or
/// lock someone out: each refusal names what to fix.
#[tokio::test]
async fn a_mapping_that_could_map_one_login_to_two_people_stops_the_start() {
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "s\n").unwrap();
    let base = provider_config("https://idp.plant.example", 1, secret.path());
    let overlap = {
        let mut p = base.clone();
        p.map[1] = MapConfig {
            identity: "bob".into(),
            subject: None,
            email: Some("bob@plant.example".into()),
        };
        SsoConfig {
            sso_only: Vec::new(),
            providers: vec![p],
        }
    };
    let to_workload = {
        let mut p = base.clone();
        p.map[1].identity = "svc-historian".into();
        SsoConfig {
            sso_only: Vec::new(),
            providers: vec![p],
        }
    };
    let unmapped_only = SsoConfig {
        sso_only: vec!["carol".into()],
        providers: vec![base.clone()],
    };
    // Without [sso] nothing is offered (the quickstart is unchanged).
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    let h = Harness::start(store).await;
    let (s, list) = h.raw("GET", "/api/v1/auth/sso/providers", None, None).await;
    assert_eq!((s, list), (StatusCode::OK, json!([])));
    let (s, v) = h
        .raw(
            "POST",
            "/api/v1/auth/sso/plant-idp/cli",
            None,
            Some(json!({"port": 40000, "code_challenge": "a".repeat(43)})),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{v}"
    );
    h.stop().await;
    for (sso, says) in [
        (
            overlap,
            "map #1 (alice) and map #2 (bob) can both match one login",
        ),
        (to_workload, "map #2 (svc-historian)"),
        (unmapped_only, "sso_only names \"carol\""),
    ] {
        let (store, _dir) = jitgate_testkit::sqlite_store().await;
        let data = tempfile::tempdir().unwrap();
        let config = jitgate_server::config::ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.path().to_path_buf(),
            inventory: Some(plant_file()),
            sso,
            ..Default::default()
        };
        let clock = Arc::new(ManualClock::new(start_time()));
        let err = match jitgate_server::start_with_store(config, clock, store).await {
            Ok(_) => panic!("started with a mapping that should stop it ({says})"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(says), "{err}");
    }
}
