//! Conversions between domain values and the few column types both databases decode alike
//! through `sqlx::Any`: TEXT, BIGINT. Timestamps are BIGINT unix milliseconds, booleans
//! BIGINT 0/1, enums their serde name, structured values JSON text.

use crate::{Result, StoreError};
use jitgate_core::Timestamp;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::any::{Any, AnyArguments};
use sqlx::query::Query;

pub(crate) fn ms(t: Timestamp) -> i64 {
    t.timestamp_millis()
}

/// `at` names the table and row, so a corrupt value can be found and fixed.
pub(crate) fn from_ms(v: i64, at: &str) -> Result<Timestamp> {
    chrono::DateTime::from_timestamp_millis(v)
        .ok_or_else(|| StoreError::Corrupt(format!("{at}: timestamp {v} ms is out of range")))
}

pub(crate) fn opt_from_ms(v: Option<i64>, at: &str) -> Result<Option<Timestamp>> {
    v.map(|v| from_ms(v, at)).transpose()
}

pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

pub(crate) fn to_json<T: Serialize>(v: &T, what: &str) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Encode(format!("{what}: {e}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(text: &str, at: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{at}: {e}")))
}

/// Enums are stored as their serde name (`approved`, `emergency`), the same text the API
/// shows, so the tables stay readable with a plain SQL client.
pub(crate) fn enum_to_str<T: Serialize>(v: &T, what: &str) -> Result<String> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        Ok(other) => Err(StoreError::Encode(format!(
            "{what}: {other} is not a plain name"
        ))),
        Err(e) => Err(StoreError::Encode(format!("{what}: {e}"))),
    }
}

pub(crate) fn enum_from_str<T: DeserializeOwned>(s: &str, at: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|e| StoreError::Corrupt(format!("{at}: {s:?} is not a known value ({e})")))
}

/// A bound value of a query assembled at run time (the filters of the list queries).
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
    OptText(Option<String>),
    OptInt(Option<i64>),
}

impl std::fmt::Display for Arg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arg::Text(s) | Arg::OptText(Some(s)) => f.write_str(s),
            Arg::Int(i) | Arg::OptInt(Some(i)) => write!(f, "{i}"),
            Arg::OptText(None) | Arg::OptInt(None) => f.write_str("NULL"),
        }
    }
}

/// SQL text plus its arguments, numbered `$1, $2, ...` as both PostgreSQL and SQLite accept.
pub(crate) struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub(crate) fn new(text: &str) -> Self {
        Sql {
            text: text.to_string(),
            args: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Adds the argument and returns its placeholder.
    pub(crate) fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    pub(crate) fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for a in &self.args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
                Arg::OptText(s) => q.bind(s.clone()),
                Arg::OptInt(i) => q.bind(*i),
            };
        }
        q
    }
}

/// List limits: non-positive means "the default", and nothing returns unbounded rows.
pub(crate) fn limit(requested: i64, default: i64) -> i64 {
    if requested <= 0 {
        default
    } else {
        requested.min(10_000)
    }
}
