//! The trusted issuers' keys: fetched over HTTP(S) from their JWKS (or found through OpenID
//! discovery), cached per issuer, fetched again when a token names a `kid` the cache lacks
//! (at most once per `jwks_refetch_interval`: this is how a rotation is picked up without
//! letting unknown `kid`s make the server hammer the issuer) and when the cache is older than
//! `jwks_max_age` (keys the issuer removed stop verifying then at the latest).
//!
//! Fail closed: keys that cannot be fetched, or are too old to use, verify nothing
//! ([`KeyError::Unavailable`]). A handle the state holds; it knows nothing of the rest of the
//! server. Times come from the server's clock, so tests move them.

use crate::config::federation::{fetch_url_allowed, FederationConfig, IssuerConfig};
use jitgate_core::federation::Trust;
use jitgate_core::Timestamp;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Largest JWKS or discovery document read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Every trusted issuer, by its exact `iss`.
#[derive(Default)]
pub struct Issuers {
    by_iss: HashMap<String, Arc<IssuerKeys>>,
}

impl Issuers {
    /// Build the HTTP clients (with each issuer's CA file) from a validated configuration.
    pub fn from_config(config: &FederationConfig) -> Result<Issuers, String> {
        let mut by_iss = HashMap::new();
        for i in &config.issuers {
            by_iss.insert(i.issuer.clone(), Arc::new(IssuerKeys::new(i)?));
        }
        Ok(Issuers { by_iss })
    }

    pub fn get(&self, iss: &str) -> Option<Arc<IssuerKeys>> {
        self.by_iss.get(iss).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.by_iss.is_empty()
    }
}

/// Why no key verifies a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The keys could not be fetched (or are too old and could not be fetched again).
    Unavailable {
        message: String,
        retry_after_secs: i64,
        /// This call tried the fetch (and it failed); `false` when it was answered from the
        /// last failed attempt, within the refetch interval.
        fetched: bool,
    },
    /// The issuer publishes no key with this `kid` (after fetching again, when allowed).
    NoKey(String),
}

/// Where the keys are.
enum Source {
    Jwks(String),
    /// `<issuer>/.well-known/openid-configuration`, whose `jwks_uri` names them.
    Discovery(String),
}

/// One issuer: its trust, where its keys are, and the cached keys.
pub struct IssuerKeys {
    pub trust: Trust,
    source: Source,
    client: reqwest::Client,
    refetch_secs: i64,
    max_age_secs: i64,
    /// A fetch holds the lock: concurrent exchanges wait for it instead of fetching too.
    cache: tokio::sync::Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    keys: Vec<Jwk>,
    fetched_at: Option<Timestamp>,
    last_attempt: Option<Timestamp>,
    last_error: Option<String>,
}

impl IssuerKeys {
    fn new(c: &IssuerConfig) -> Result<IssuerKeys, String> {
        let trust = c.trust()?;
        let (refetch_secs, max_age_secs) = c.fetch_timing()?;
        let what = format!("federation issuer {:?}", c.name);
        let client = http_client(&what, c.ca_file.as_deref())?;
        let source = match &c.jwks_url {
            Some(u) => Source::Jwks(u.clone()),
            None => Source::Discovery(discovery_url(&c.issuer)),
        };
        Ok(IssuerKeys {
            trust,
            source,
            client,
            refetch_secs,
            max_age_secs,
            cache: tokio::sync::Mutex::new(Cache::default()),
        })
    }

    /// The keys of an OpenID provider people sign in with (`crate::sso`), found through
    /// its discovery document, with the same caching, rotation and fail-closed rules.
    /// `trust` names the provider (its bindings are unused).
    pub fn discovered(
        trust: Trust,
        client: reqwest::Client,
        refetch_secs: i64,
        max_age_secs: i64,
    ) -> IssuerKeys {
        IssuerKeys {
            source: Source::Discovery(discovery_url(&trust.issuer)),
            trust,
            client,
            refetch_secs,
            max_age_secs,
            cache: tokio::sync::Mutex::new(Cache::default()),
        }
    }

    /// The keys that may have signed a token with this header: the one with its `kid` (every
    /// key of the family when the token names none).
    pub async fn keys_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        now: Timestamp,
    ) -> Result<Vec<DecodingKey>, KeyError> {
        let mut cache = self.cache.lock().await;
        let mut fetched_now = false;
        let stale = cache
            .fetched_at
            .is_none_or(|at| (now - at).num_seconds() >= self.max_age_secs);
        if stale {
            self.refresh(&mut cache, now).await?;
            fetched_now = true;
        }
        let mut found = matching(&cache.keys, kid, alg);
        if found.is_empty() && !fetched_now && self.may_fetch(&cache, now) {
            // An unknown kid: the issuer may have rotated.
            self.refresh(&mut cache, now).await?;
            found = matching(&cache.keys, kid, alg);
        }
        if found.is_empty() {
            return Err(KeyError::NoKey(match kid {
                Some(k) => format!(
                    "issuer {:?} publishes no {alg:?} key with kid {:?}",
                    self.trust.name,
                    jitgate_core::federation::capped(k)
                ),
                None => format!("issuer {:?} publishes no {alg:?} key", self.trust.name),
            }));
        }
        Ok(found)
    }

    fn may_fetch(&self, cache: &Cache, now: Timestamp) -> bool {
        cache
            .last_attempt
            .is_none_or(|at| (now - at).num_seconds() >= self.refetch_secs)
    }

    /// Fetch when allowed; when not (too soon after the last attempt), keys still young
    /// enough are kept and a failed last attempt stays a failure.
    async fn refresh(&self, cache: &mut Cache, now: Timestamp) -> Result<(), KeyError> {
        let usable = |c: &Cache| {
            c.fetched_at
                .is_some_and(|at| (now - at).num_seconds() < self.max_age_secs)
        };
        if !self.may_fetch(cache, now) {
            if usable(cache) {
                return Ok(());
            }
            let waited = cache.last_attempt.map_or(0, |at| (now - at).num_seconds());
            return Err(self.unavailable(
                cache
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "not fetched yet".into()),
                self.refetch_secs - waited,
                false,
            ));
        }
        cache.last_attempt = Some(now);
        match self.fetch().await {
            Ok(keys) => {
                cache.keys = keys;
                cache.fetched_at = Some(now);
                cache.last_error = None;
                tracing::info!(issuer = %self.trust.name, keys = cache.keys.len(), "federation keys fetched");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(issuer = %self.trust.name, error = %e, "federation keys could not be fetched");
                cache.last_error = Some(e.clone());
                // Fail closed: what was cached is not used once a refresh was due and failed.
                cache.keys.clear();
                cache.fetched_at = None;
                Err(self.unavailable(e, self.refetch_secs, true))
            }
        }
    }

    fn unavailable(&self, why: String, retry_after_secs: i64, fetched: bool) -> KeyError {
        KeyError::Unavailable {
            message: format!(
                "the keys of issuer {:?} cannot be fetched ({why}), so none of its tokens is \
                 accepted; retry later, or check the issuer and jwks_url",
                self.trust.name
            ),
            retry_after_secs: retry_after_secs.max(1),
            fetched,
        }
    }

    async fn fetch(&self) -> Result<Vec<Jwk>, String> {
        let url = match &self.source {
            Source::Jwks(u) => u.clone(),
            Source::Discovery(doc) => {
                let meta = self.get_json(doc).await?;
                if meta.get("issuer").and_then(|v| v.as_str()) != Some(self.trust.issuer.as_str()) {
                    return Err(format!(
                        "the discovery document {doc} names another issuer than {:?}",
                        self.trust.issuer
                    ));
                }
                let uri = meta
                    .get("jwks_uri")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| format!("the discovery document {doc} has no jwks_uri"))?;
                fetch_url_allowed(uri).map_err(|m| format!("discovered jwks_uri: {m}"))?;
                uri.to_string()
            }
        };
        let set = self.get_json(&url).await?;
        let keys = set
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| format!("{url} is not a JWKS (no `keys` list)"))?;
        // A key of a kind this library does not read (or meant for encryption) is skipped,
        // not a reason to refuse the whole set.
        Ok(keys
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .filter(|k| {
                !matches!(
                    k.common.public_key_use,
                    Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
                )
            })
            .collect())
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, String> {
        let mut resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET {url}: {e}"))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("GET {url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON ({e})"))
    }
}

/// `<issuer>/.well-known/openid-configuration`.
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// The client keys and provider documents are fetched with: a timeout, no redirects (a
/// redirect could lead the fetch off HTTPS or to another host), and the extra trust anchors
/// of `ca_file`. `what` names the issuer or provider in errors.
pub fn http_client(
    what: &str,
    ca_file: Option<&std::path::Path>,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("{what}: ca_file: {e}"))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("{what}: ca_file {} is not PEM: {e}", ca.display()))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| format!("{what}: HTTP client: {e}"))
}

/// Keys for `alg`: by `kid` when given, else every key of the algorithm's family; a key that
/// names its own `alg` must name this one.
fn matching(keys: &[Jwk], kid: Option<&str>, alg: Algorithm) -> Vec<DecodingKey> {
    keys.iter()
        .filter(|k| kid.is_none_or(|kid| k.common.key_id.as_deref() == Some(kid)))
        .filter(|k| {
            k.common
                .key_algorithm
                .as_ref()
                .is_none_or(|ka| key_alg_is(ka, alg))
        })
        .filter_map(|k| DecodingKey::from_jwk(k).ok())
        .filter(|d| d.family() == alg.family())
        .collect()
}

fn key_alg_is(ka: &KeyAlgorithm, alg: Algorithm) -> bool {
    format!("{ka:?}") == format!("{alg:?}")
}
