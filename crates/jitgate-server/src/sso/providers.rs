//! The configured providers: per provider its configuration, its discovery document
//! (fetched with the `openidconnect` crate, cached) and its keys (the federation's key
//! cache). A handle the state holds; it knows nothing of the rest of the server.

use crate::config::sso::ProviderConfig;
use crate::federation::jwks::{http_client, IssuerKeys};
use jitgate_core::federation::Trust;
use jitgate_core::sso::{Provider, SsoRefusal, SsoRefusalReason};
use jitgate_core::Timestamp;
use openidconnect::core::CoreProviderMetadata;
use openidconnect::IssuerUrl;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every configured provider, by name.
#[derive(Default)]
pub struct Providers {
    by_name: BTreeMap<String, Arc<ProviderHandle>>,
}

impl Providers {
    /// Read the client secrets and build the HTTP clients from a validated configuration.
    pub fn from_config(config: &crate::config::sso::SsoConfig) -> Result<Providers, String> {
        let mut by_name = BTreeMap::new();
        for p in &config.providers {
            by_name.insert(p.name.clone(), Arc::new(ProviderHandle::new(p)?));
        }
        Ok(Providers { by_name })
    }

    pub fn get(&self, name: &str) -> Option<Arc<ProviderHandle>> {
        self.by_name.get(name).cloned()
    }

    /// (name, display name) of every provider, in name order.
    pub fn list(&self) -> Vec<(String, String)> {
        self.by_name
            .values()
            .map(|p| (p.config.name.clone(), p.config.display_name().to_string()))
            .collect()
    }
}

/// One provider: what was configured, its discovery document and keys.
pub struct ProviderHandle {
    pub config: ProviderConfig,
    pub core: Provider,
    pub keys: IssuerKeys,
    http: reqwest::Client,
    secret: Option<String>,
    refetch_secs: i64,
    max_age_secs: i64,
    metadata: tokio::sync::Mutex<MetaCache>,
}

#[derive(Default)]
struct MetaCache {
    doc: Option<(CoreProviderMetadata, Timestamp)>,
    last_failure: Option<(Timestamp, String)>,
}

/// The provider cannot be reached (discovery, keys or token endpoint).
#[derive(Debug, Clone)]
pub struct Unavailable {
    pub refusal: SsoRefusal,
    pub retry_after_secs: i64,
    /// This call tried to reach the provider (and failed); `false` when answered from the
    /// last failure, within the refetch interval (not logged again).
    pub fetched: bool,
}

impl ProviderHandle {
    fn new(c: &ProviderConfig) -> Result<ProviderHandle, String> {
        let core = c.provider()?;
        let (refetch_secs, max_age_secs) = c.fetch_timing()?;
        let http = http_client(&format!("sso provider {:?}", c.name), c.ca_file.as_deref())?;
        let trust = Trust {
            name: c.name.clone(),
            issuer: c.issuer.clone(),
            audience: c.client_id.clone(),
            max_session_secs: core.max_session_secs,
            bindings: Vec::new(),
        };
        Ok(ProviderHandle {
            keys: IssuerKeys::discovered(trust, http.clone(), refetch_secs, max_age_secs),
            secret: c.client_secret()?,
            config: c.clone(),
            core,
            http,
            refetch_secs,
            max_age_secs,
            metadata: tokio::sync::Mutex::new(MetaCache::default()),
        })
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }

    /// The provider's discovery document: cached, fetched again when older than
    /// `jwks_max_age`; after a failed fetch, not tried again before `jwks_refetch_interval`.
    pub async fn metadata(&self, now: Timestamp) -> Result<CoreProviderMetadata, Unavailable> {
        let mut cache = self.metadata.lock().await;
        if let Some((doc, at)) = &cache.doc {
            if (now - *at).num_seconds() < self.max_age_secs {
                return Ok(doc.clone());
            }
        }
        if let Some((at, why)) = &cache.last_failure {
            let waited = (now - *at).num_seconds();
            if waited < self.refetch_secs {
                return Err(self.unavailable(why.clone(), self.refetch_secs - waited, false));
            }
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| self.unavailable(format!("issuer is not a URL: {e}"), 60, true))?;
        match CoreProviderMetadata::discover_async(issuer, &self.http).await {
            Ok(doc) => {
                cache.doc = Some((doc.clone(), now));
                cache.last_failure = None;
                Ok(doc)
            }
            Err(e) => {
                let why = format!("discovery: {}", error_chain(&e));
                tracing::warn!(provider = %self.config.name, error = %why, "sso provider unreachable");
                cache.doc = None;
                cache.last_failure = Some((now, why.clone()));
                Err(self.unavailable(why, self.refetch_secs, true))
            }
        }
    }

    pub fn unavailable(&self, why: String, retry_after_secs: i64, fetched: bool) -> Unavailable {
        Unavailable {
            refusal: SsoRefusal::new(
                SsoRefusalReason::ProviderUnavailable,
                format!(
                    "provider {:?} cannot be reached ({why}), so nobody signs in with it now; \
                     retry later, or sign in with a password if you have one (break-glass)",
                    self.config.name
                ),
            ),
            retry_after_secs: retry_after_secs.max(1),
            fetched,
        }
    }
}

/// An error and its sources, on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    jitgate_core::federation::capped(&text)
}
