//! The webhooks in force ([`Notifier`], held in [`crate::state::AppState`]): the `[notify]`
//! section checked and each key read at start. Nothing here knows the rest of the server.

use crate::config::{ConfigError, NotifyConfig, WebhookFormat};
use tokio::sync::Notify;

/// A configured webhook with its key read. `Debug` leaves the key and URL out.
#[derive(Clone)]
pub struct Webhook {
    pub name: String,
    pub(crate) url: reqwest::Url,
    pub format: WebhookFormat,
    events: Option<Vec<String>>,
    pub(crate) secret: Vec<u8>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    pub fn wants(&self, kind: &str) -> bool {
        match &self.events {
            None => true,
            Some(events) => events.iter().any(|e| e == kind),
        }
    }
}

/// The webhooks in force and the delivery worker's wake-up.
#[derive(Debug, Default)]
pub struct Notifier {
    pub(crate) webhooks: Vec<Webhook>,
    pub(crate) wake: Notify,
}

impl Notifier {
    /// Validate the `[notify]` section and read every key.
    pub fn from_config(config: &NotifyConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut webhooks = Vec::new();
        for w in &config.webhooks {
            let url = reqwest::Url::parse(&w.url).map_err(|e| {
                ConfigError::Invalid(format!("notify.webhook {:?}: url: {e}", w.name))
            })?;
            if url.scheme() == "http" && !is_loopback(&url) {
                tracing::warn!(
                    webhook = %w.name,
                    "webhook uses plain http to another host: notices (names, assets, reasons) \
                     travel unencrypted; prefer https"
                );
            }
            webhooks.push(Webhook {
                name: w.name.clone(),
                url,
                format: w.format,
                events: w.events.clone(),
                secret: w.secret()?,
            });
        }
        Ok(Notifier {
            webhooks,
            wake: Notify::new(),
        })
    }

    pub fn webhooks(&self) -> &[Webhook] {
        &self.webhooks
    }

    pub fn webhook(&self, name: &str) -> Option<&Webhook> {
        self.webhooks.iter().find(|w| w.name == name)
    }

    /// Is any webhook subscribed to `kind`? (Building some notices costs reads.)
    pub fn wants(&self, kind: &str) -> bool {
        self.webhooks.iter().any(|w| w.wants(kind))
    }

    /// Wake the delivery worker.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or("");
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
