//! [`PolicyError`]: everything that can go wrong loading a policy set or a scenario file.
//!
//! Load errors point at `file:line:column` so an editor (or a person) can jump to the
//! problem; the message then says what to change. Decisions never return an error: a
//! problem while deciding is a denial whose reasons say what went wrong.

use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("cannot read policies from {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no *.cedar files in {0}; put policies there or start from the defaults in the repository's policies/ directory")]
    NoPolicyFiles(PathBuf),
    #[error("policy file {0} is given twice; file names must be unique within a policy set")]
    DuplicateFile(String),
    #[error("{file}:{line}:{column}: {message}")]
    Parse {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}:{line}:{column}: policy `{policy}` does not validate against the jitgate schema: {message}")]
    Validation {
        file: String,
        line: usize,
        column: usize,
        policy: String,
        message: String,
    },
    #[error("{file}:{line}:{column}: policy has no @id(\"...\") annotation; give every policy a unique id, e.g. @id(\"vendor-read\")")]
    MissingId {
        file: String,
        line: usize,
        column: usize,
    },
    #[error("{file}:{line}:{column}: policy id {id:?} is invalid: use 1-128 characters of [A-Za-z0-9-_.:]")]
    InvalidId {
        file: String,
        line: usize,
        column: usize,
        id: String,
    },
    #[error("{file}:{line}:{column}: @id(\"{id}\") is already used by the policy at {first_file}:{first_line}; policy ids must be unique across the set")]
    DuplicateId {
        file: String,
        line: usize,
        column: usize,
        id: String,
        first_file: String,
        first_line: usize,
    },
    #[error("{file}:{line}:{column}: policy `{policy}`: @{annotation}: {message}")]
    Annotation {
        file: String,
        line: usize,
        column: usize,
        policy: String,
        annotation: String,
        message: String,
    },
    /// The embedded schema failed to load: a bug in this crate, caught by its tests.
    #[error("the built-in jitgate Cedar schema is invalid: {0}")]
    Schema(String),
    #[error("scenario file: {0}")]
    ScenarioFile(String),
    #[error("scenario {name:?}: {message}")]
    Scenario { name: String, message: String },
}
