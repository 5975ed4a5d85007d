//! `[[siem]]`: the collectors every event of the log is streamed to (see [`crate::siem`]).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One `[[siem]]` entry of the server configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiemConfig {
    /// Names the sink in logs and keys its cursor; default `<format>-<address>`. Renaming a
    /// sink starts it afresh (from `start_at`).
    #[serde(default)]
    pub name: Option<String>,
    /// `ocsf` (one JSON object per line) or `syslog` (RFC 5424).
    pub format: SiemFormat,
    /// Collector `host:port`.
    pub address: String,
    /// TLS to the collector (RFC 5425 for syslog); needs `ca_file`.
    #[serde(default)]
    pub tls: bool,
    /// PEM file of the CA certificate(s) the collector's certificate must chain to.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Name in the collector's certificate; default: the host part of `address`.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Syslog framing: `octet-counting` (RFC 6587 §3.4.1, required by RFC 5425; the
    /// default) or `lf` (one message per line). JSON lines always end in LF.
    #[serde(default)]
    pub framing: Framing,
    /// HOSTNAME of syslog messages; default: this machine's host name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Events per write (1–10000, default 500).
    #[serde(default = "default_batch")]
    pub batch: i64,
    /// Where a sink without a cursor starts: `beginning` (the whole log, default) or `end`
    /// (only events from now on).
    #[serde(default)]
    pub start_at: StartAt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SiemFormat {
    Ocsf,
    Syslog,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    #[default]
    OctetCounting,
    Lf,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    #[default]
    Beginning,
    End,
}

fn default_batch() -> i64 {
    500
}

impl SiemConfig {
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let f = match self.format {
                SiemFormat::Ocsf => "ocsf",
                SiemFormat::Syslog => "syslog",
            };
            format!("{f}-{}", self.address)
        })
    }

    pub(crate) fn cursor_key(&self) -> String {
        format!("siem/{}/cursor", self.name())
    }

    pub(crate) fn host(&self) -> &str {
        // `[::1]:6514`, `collector.example:6514`
        let host = self
            .address
            .rsplit_once(':')
            .map_or(self.address.as_str(), |(h, _)| h);
        host.trim_start_matches('[').trim_end_matches(']')
    }

    pub fn validate(&self) -> Result<(), String> {
        let name = self.name();
        let at = format!("[[siem]] {name}");
        if self
            .address
            .rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return Err(format!("{at}: address {:?} is not host:port", self.address));
        }
        if !(1..=10_000).contains(&self.batch) {
            return Err(format!("{at}: batch {} is outside 1..10000", self.batch));
        }
        if self.tls && self.ca_file.is_none() {
            return Err(format!(
                "{at}: tls = true needs ca_file (the PEM CA certificate the collector's certificate chains to)"
            ));
        }
        if !self.tls && (self.ca_file.is_some() || self.server_name.is_some()) {
            return Err(format!(
                "{at}: ca_file and server_name only apply with tls = true"
            ));
        }
        if let Some(h) = &self.hostname {
            if h.is_empty() || h.len() > 255 || !h.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "{at}: hostname {h:?} is not 1–255 printable ASCII characters without spaces"
                ));
            }
        }
        if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
            return Err(format!(
                "{at}: name must be 1–200 characters without control characters"
            ));
        }
        Ok(())
    }
}

/// Check a whole `[[siem]]` list: each valid, names unique (they key the cursors).
pub fn validate_all(sinks: &[SiemConfig]) -> Result<(), String> {
    let mut names = std::collections::BTreeSet::new();
    for s in sinks {
        s.validate()?;
        if !names.insert(s.name()) {
            return Err(format!(
                "two [[siem]] entries are named {:?}: give each a distinct `name`",
                s.name()
            ));
        }
    }
    Ok(())
}

/// This machine's host name as RFC 5424 allows it (printable ASCII, no spaces), or `-`.
pub(crate) fn system_hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let h: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if h.is_empty() {
        "-".into()
    } else {
        h
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn sink(toml_text: &str) -> SiemConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn config_is_checked() {
        let ok = sink("format = \"ocsf\"\naddress = \"127.0.0.1:6514\"\n");
        assert!(ok.validate().is_ok());
        assert_eq!(ok.name(), "ocsf-127.0.0.1:6514");
        assert_eq!(ok.framing, Framing::OctetCounting);
        let no_port = sink("format = \"syslog\"\naddress = \"collector\"\n");
        assert!(no_port.validate().unwrap_err().contains("host:port"));
        let tls = sink("format = \"syslog\"\naddress = \"c:6514\"\ntls = true\n");
        assert!(tls.validate().unwrap_err().contains("ca_file"));
        let unknown: Result<SiemConfig, _> =
            toml::from_str("format = \"ocsf\"\naddress = \"c:1\"\nport = 3\n");
        assert!(unknown.unwrap_err().to_string().contains("port"));
        let twice = vec![ok.clone(), ok];
        assert!(validate_all(&twice).unwrap_err().contains("named"));
    }

    #[test]
    fn host_of_address() {
        let s = sink("format = \"ocsf\"\naddress = \"[::1]:6514\"\n");
        assert_eq!(s.host(), "::1");
        let s = sink("format = \"ocsf\"\naddress = \"siem.example:6514\"\n");
        assert_eq!(s.host(), "siem.example");
    }
}
