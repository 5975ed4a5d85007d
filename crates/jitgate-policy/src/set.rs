//! Loading a policy set: parse each file, re-id each policy by its `@id`, read its
//! annotations, validate the whole set against the schema, and hash the sources.
//!
//! Cedar parses a file into policies named `policy0`, `policy1`, ... in source order and
//! keeps each policy's exact source text; we use that text to find where each policy
//! starts in its file, so every later error (duplicate id, bad annotation, validation) can
//! name `file:line:column`.

use crate::annotations::{self, AnnotationError};
use crate::entities::Names;
use crate::error::PolicyError;
use crate::prefilter::{Guard, SubsetCache};
use crate::schema;
use cedar_policy::{Authorizer, Effect, PolicyId, ValidationMode, Validator};
use jitgate_core::Obligations;
use miette::Diagnostic;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

/// Whether a policy allows or denies when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyEffect {
    Permit,
    Forbid,
}

/// One policy of the set, as jitgate understands it.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyInfo {
    /// The `@id` annotation, which is also the Cedar policy id.
    pub id: String,
    pub effect: PolicyEffect,
    /// File name (without directory) the policy was loaded from.
    pub file: String,
    /// 1-based line and column where the policy (its first annotation) starts.
    pub line: usize,
    pub column: usize,
    /// Exact source text, annotations included (what evidence bundles quote).
    pub text: String,
    /// For permits: the obligations the policy attaches, defaults filled in.
    pub obligations: Option<Obligations>,
    /// The `@reason` text (required on forbids, optional on permits).
    pub reason: Option<String>,
}

/// A loaded, validated policy set: the parsed Cedar set, the schema and what every policy's
/// annotations say, all built once so a decision does no parsing.
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub(crate) cedar: cedar_policy::PolicySet,
    pub(crate) schema: cedar_policy::Schema,
    pub(crate) authorizer: Authorizer,
    pub(crate) names: Names,
    /// By id; a `BTreeMap` so listings come out sorted.
    pub(crate) policies: BTreeMap<String, PolicyInfo>,
    pub(crate) files: Vec<String>,
    pub(crate) hash: String,
    pub(crate) warnings: Vec<String>,
    /// The (re-id'd) Cedar policies and their guards, in id order: bit `i` of a subset key
    /// is `prefilter[i]` (see `prefilter.rs`).
    pub(crate) prefilter: Vec<(cedar_policy::Policy, Guard)>,
    /// Shared by clones of the set: they hold the same policies.
    pub(crate) subsets: Arc<SubsetCache>,
}

impl PolicySet {
    /// Load every `*.cedar` file of `dir`, in file-name order. Other files are ignored, so
    /// the scenarios file and a README can live next to the policies.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let dir = dir.as_ref();
        let io = |source| PolicyError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let mut sources = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("cedar") || !path.is_file() {
                continue;
            }
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
                .ok_or_else(|| PolicyError::Io {
                    path: path.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "file name is not valid UTF-8",
                    ),
                })?;
            let text = std::fs::read_to_string(&path).map_err(|source| PolicyError::Io {
                path: path.clone(),
                source,
            })?;
            sources.push((name, text));
        }
        if sources.is_empty() {
            return Err(PolicyError::NoPolicyFiles(dir.to_path_buf()));
        }
        Self::from_sources(sources)
    }

    /// Build a set from `(file name, text)` pairs (sorted by name here, whatever the input
    /// order, so the same files always give the same set and hash).
    pub fn from_sources(mut sources: Vec<(String, String)>) -> Result<Self, PolicyError> {
        sources.sort_by(|a, b| a.0.cmp(&b.0));
        for pair in sources.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(PolicyError::DuplicateFile(pair[0].0.clone()));
            }
        }
        let schema = schema::load()?;
        let mut cedar = cedar_policy::PolicySet::new();
        let mut policies: BTreeMap<String, PolicyInfo> = BTreeMap::new();
        // Where each policy's text starts in its file, to place validation errors.
        let mut starts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for (index, (name, text)) in sources.iter().enumerate() {
            for (policy, offset) in parse_file(name, text)? {
                let (line, column) = line_col(text, offset);
                let info = read_policy(name, text, offset, &policy)?;
                if let Some(first) = policies.get(&info.id) {
                    return Err(PolicyError::DuplicateId {
                        file: name.clone(),
                        line,
                        column,
                        id: info.id,
                        first_file: first.file.clone(),
                        first_line: first.line,
                    });
                }
                let renamed = policy.new_id(PolicyId::new(&info.id));
                cedar.add(renamed).map_err(|e| PolicyError::Parse {
                    file: name.clone(),
                    line,
                    column,
                    message: e.to_string(),
                })?;
                starts.insert(info.id.clone(), (index, offset));
                policies.insert(info.id.clone(), info);
            }
        }
        let warnings = validate(&schema, &cedar, &sources, &starts)?;
        // Iterating the map gives id order, the order of the bits of a subset key.
        let prefilter = policies
            .keys()
            .filter_map(|id| cedar.policy(&PolicyId::new(id)))
            .map(|p| {
                let guard = p
                    .to_json()
                    .map(|est| Guard::from_est(&est))
                    .unwrap_or_default();
                (p.clone(), guard)
            })
            .collect();
        Ok(PolicySet {
            prefilter,
            subsets: Arc::new(SubsetCache::default()),
            names: Names::new()?,
            cedar,
            schema,
            authorizer: Authorizer::new(),
            policies,
            files: sources.iter().map(|(n, _)| n.clone()).collect(),
            hash: hash_sources(&sources),
            warnings,
        })
    }

    /// `sha256:` + lowercase hex SHA-256 over, for each file in name order,
    /// `<name>\n<byte length of text>\n<text>` (see `docs/policies.md`).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Policy ids, sorted.
    pub fn ids(&self) -> Vec<&str> {
        self.policies.keys().map(String::as_str).collect()
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The exact source text of policy `id` (annotations included).
    pub fn policy_text(&self, id: &str) -> Option<&str> {
        self.policies.get(id).map(|p| p.text.as_str())
    }

    pub fn policy(&self, id: &str) -> Option<&PolicyInfo> {
        self.policies.get(id)
    }

    /// Every policy, sorted by id.
    pub fn policies(&self) -> impl Iterator<Item = &PolicyInfo> {
        self.policies.values()
    }

    /// File names the set was loaded from, in load order.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Validator warnings (e.g. a policy that can never match), `file:line:column: text`.
    /// They do not stop loading; `jitgate check` shows them.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

fn hash_sources(sources: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    for (name, text) in sources {
        h.update(name.as_bytes());
        h.update(b"\n");
        h.update(text.len().to_string().as_bytes());
        h.update(b"\n");
        h.update(text.as_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = text.get(..end).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The byte offset of the first label of a Cedar diagnostic, and that label's text.
fn first_label(d: &dyn Diagnostic) -> Option<(usize, Option<String>)> {
    let label = d.labels()?.next()?;
    Some((label.offset(), label.label().map(str::to_string)))
}

/// A diagnostic's message with its label and help, on one line.
fn diagnostic_message(d: &dyn Diagnostic) -> String {
    let mut msg = d.to_string();
    if let Some((_, Some(label))) = first_label(d) {
        msg.push_str(&format!(" ({label})"));
    }
    if let Some(help) = d.help() {
        msg.push_str(&format!("; help: {help}"));
    }
    msg
}

/// Parse one file into its static policies, each with its byte offset in the file.
fn parse_file(name: &str, text: &str) -> Result<Vec<(cedar_policy::Policy, usize)>, PolicyError> {
    let set = cedar_policy::PolicySet::from_str(text).map_err(|errs| {
        let first = errs.iter().next();
        let (offset, message) = match first {
            Some(e) => (first_label(e).map_or(0, |(o, _)| o), diagnostic_message(e)),
            None => (0, errs.to_string()),
        };
        let more = errs.iter().count().saturating_sub(1);
        let (line, column) = line_col(text, offset);
        let message = if more > 0 {
            format!("{message} (and {more} more error(s) after this one)")
        } else {
            message
        };
        PolicyError::Parse {
            file: name.to_string(),
            line,
            column,
            message,
        }
    })?;
    if let Some(t) = set.templates().next() {
        let offset = text.find(t.to_cedar().as_str()).unwrap_or(0);
        let (line, column) = line_col(text, offset);
        return Err(PolicyError::Parse {
            file: name.to_string(),
            line,
            column,
            message: "templates (policies with ?principal or ?resource slots) are not supported; write a static policy".into(),
        });
    }
    // Cedar names policies `policy<N>` in source order; sort by N to walk the file once.
    let mut list: Vec<(usize, cedar_policy::Policy)> = set
        .policies()
        .map(|p| {
            let id: &str = p.id().as_ref();
            let n = id.strip_prefix("policy").and_then(|n| n.parse().ok());
            (n.unwrap_or(usize::MAX), p.clone())
        })
        .collect();
    list.sort_by_key(|(n, _)| *n);
    let mut cursor = 0;
    let mut out = Vec::with_capacity(list.len());
    for (_, policy) in list {
        // The text is a verbatim slice of the file, so searching from the end of the previous
        // policy finds this one's start (identical policies are found in order).
        let offset = policy
            .to_cedar()
            .and_then(|src| {
                text.get(cursor..)
                    .and_then(|rest| rest.find(src.as_str()))
                    .map(|o| (o + cursor, src.len()))
            })
            .map_or(cursor, |(start, len)| {
                cursor = start + len;
                start
            });
        out.push((policy, offset));
    }
    Ok(out)
}

/// Read the id and annotations of one parsed policy starting at `offset` in `text`.
fn read_policy(
    file: &str,
    text: &str,
    offset: usize,
    policy: &cedar_policy::Policy,
) -> Result<PolicyInfo, PolicyError> {
    let (line, column) = line_col(text, offset);
    let source = policy.to_cedar().unwrap_or_default();
    let Some(id) = policy.annotation("id").map(str::to_string) else {
        return Err(PolicyError::MissingId {
            file: file.to_string(),
            line,
            column,
        });
    };
    if !annotations::valid_policy_id(&id) {
        let (line, column) = annotation_position(text, offset, &source, "id");
        return Err(PolicyError::InvalidId {
            file: file.to_string(),
            line,
            column,
            id,
        });
    }
    let permit = policy.effect() == Effect::Permit;
    let parsed = annotations::parse(permit, policy.annotations()).map_err(
        |AnnotationError {
             annotation,
             message,
         }| {
            let (line, column) = annotation_position(text, offset, &source, &annotation);
            PolicyError::Annotation {
                file: file.to_string(),
                line,
                column,
                policy: id.clone(),
                annotation,
                message,
            }
        },
    )?;
    Ok(PolicyInfo {
        id,
        effect: if permit {
            PolicyEffect::Permit
        } else {
            PolicyEffect::Forbid
        },
        file: file.to_string(),
        line,
        column,
        text: source,
        obligations: parsed.obligations,
        reason: parsed.reason,
    })
}

/// Line and column of annotation `key`'s value in the policy starting at `offset` (of the
/// policy itself when the annotation is absent, e.g. a missing `@reason`).
fn annotation_position(text: &str, offset: usize, source: &str, key: &str) -> (usize, usize) {
    let at = find_annotation(source, key).map_or(offset, |o| offset + o);
    line_col(text, at)
}

/// Byte offset in `source` of the value (opening quote) of annotation `@key`, skipping
/// comments and string literals so a `// @approvals` remark is not mistaken for it.
fn find_annotation(source: &str, key: &str) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'@' => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                let end = j + key.len();
                let word_ends = bytes
                    .get(end)
                    .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_'));
                if source.get(j..end) == Some(key) && word_ends {
                    // Point at the value if there is one: `@key ( "value" )`.
                    let rest = source.get(end..).unwrap_or_default();
                    let trimmed = rest.trim_start();
                    if let Some(after_paren) = trimmed.strip_prefix('(') {
                        let skipped = rest.len() - after_paren.len();
                        let value = after_paren.len() - after_paren.trim_start().len();
                        return Some(end + skipped + value);
                    }
                    return Some(i);
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// Validate the whole set in strict mode; errors point at the offending expression.
fn validate(
    schema: &cedar_policy::Schema,
    cedar: &cedar_policy::PolicySet,
    sources: &[(String, String)],
    starts: &BTreeMap<String, (usize, usize)>,
) -> Result<Vec<String>, PolicyError> {
    let result = Validator::new(schema.clone()).validate(cedar, ValidationMode::Strict);
    // Cedar's spans are offsets into the file the policy was parsed from; fall back to the
    // policy's own start if a span is missing.
    let place = |id: &str, d: &dyn Diagnostic| -> (String, usize, usize) {
        let Some((index, start)) = starts.get(id).copied() else {
            return (String::from("?"), 0, 0);
        };
        let (file, text) = &sources[index];
        let offset = first_label(d).map_or(start, |(o, _)| o);
        let (line, column) = line_col(text, offset);
        (file.clone(), line, column)
    };
    if let Some(e) = result.validation_errors().next() {
        let id = e.policy_id().to_string();
        let (file, line, column) = place(&id, e);
        return Err(PolicyError::Validation {
            file,
            line,
            column,
            policy: id,
            message: diagnostic_message(e),
        });
    }
    Ok(result
        .validation_warnings()
        .map(|w| {
            let id = w.policy_id().to_string();
            let (file, line, column) = place(&id, w);
            format!(
                "{file}:{line}:{column}: policy `{id}`: {}",
                diagnostic_message(w)
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_in_characters() {
        let t = "ab\ncdé\nf";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, 6), (2, 3)); // inside `é`: counted from its start
        assert_eq!(line_col(t, 7), (2, 4));
        assert_eq!(line_col(t, 8), (3, 1));
        assert_eq!(line_col(t, 999), (3, 2));
    }

    #[test]
    fn annotation_search_skips_comments_and_strings() {
        let src = "// @approvals(\"9\")\n@reason(\"@approvals\")\n@approvals ( \"2\")\npermit(principal, action, resource);";
        let at = find_annotation(src, "approvals").unwrap();
        assert_eq!(&src[at..at + 3], "\"2\"");
        assert!(find_annotation(src, "approval").is_none());
    }
}
