//! What can go wrong in the store. The server maps each variant to an error code and HTTP
//! status; here each message says what was wrong and, where there is one, what to do.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// A row the caller expected (e.g. the request being updated) does not exist.
    #[error("{what} {id} not found")]
    NotFound { what: String, id: String },
    /// A list was asked to continue after a row that does not exist: the page cursor is
    /// not one the list gave out (or names a row of another list).
    #[error("the cursor names no {what} ({id}); start the list again without a cursor")]
    UnknownCursor { what: String, id: String },
    /// A unique key is already taken (duplicate id, second approval by the same approver, ...).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A stored value could not be decoded; the message names the table and row. Either the
    /// database was edited by hand or it was written by an incompatible version.
    #[error("stored data is corrupt: {0}; restore from backup or inspect the row named")]
    Corrupt(String),
    /// A value could not be encoded for storage (should not happen with jitgate's own types).
    #[error("cannot encode {0}")]
    Encode(String),
    /// A mutation was attempted in a transaction opened with [`crate::Store::read`].
    #[error("{0} needs a write transaction; open it with Store::write()")]
    ReadOnly(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("invalid database URL {0}")]
    InvalidUrl(String),
    #[error("cannot prepare data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    pub(crate) fn not_found(what: &str, id: &str) -> Self {
        StoreError::NotFound {
            what: what.to_string(),
            id: id.to_string(),
        }
    }

    /// True when the database reported a foreign-key violation (a row references a request
    /// that does not exist).
    pub(crate) fn is_foreign_key_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(e))
            if e.kind() == sqlx::error::ErrorKind::ForeignKeyViolation)
    }
}

/// Results of store operations.
pub type Result<T> = std::result::Result<T, StoreError>;
