//! The Cedar schema (`jitgate.cedarschema`, embedded at build time) every policy set is
//! validated against. Embedding it means the schema and the Rust mapping (`entities.rs`)
//! always ship together; a test there checks they agree.

use crate::error::PolicyError;

/// The schema source, for `jitgate policy schema` and the docs.
pub const SCHEMA_SRC: &str = include_str!("jitgate.cedarschema");

pub(crate) fn load() -> Result<cedar_policy::Schema, PolicyError> {
    let (schema, _warnings) = cedar_policy::Schema::from_cedarschema_str(SCHEMA_SRC)
        .map_err(|e| PolicyError::Schema(e.to_string()))?;
    Ok(schema)
}
