//! Signing and verifying a compliance report, as JSON or as its HTML page.
//!
//! The signature is Ed25519 by the evidence key over `jitgate compliance report v1\0`
//! followed by the report's RFC 8785 (JCS) form. The NUL byte cannot occur in a signed note,
//! so a report signature can never be taken for a checkpoint signature or the reverse. The
//! report carries the signed checkpoint its figures were computed at; both must verify with
//! the auditor's copy of the evidence public keys.

use super::render::{render_html, DATA_BLOCK_CLOSE, DATA_BLOCK_OPEN};
use super::{ComplianceReport, REPORT_FORMAT};
use crate::{EvidenceKey, EvidencePublicKey};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// What the signature covers, before the report's JCS bytes.
pub const SIGNATURE_CONTEXT: &[u8] = b"jitgate compliance report v1\0";
/// Largest report file read (a year of a large plant is far below).
pub const MAX_REPORT_BYTES: usize = 64 << 20;

/// A report and the evidence key's signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedReport {
    pub report: ComplianceReport,
    /// The evidence key that signed the report.
    pub key_id: String,
    /// Standard base64 of the 64-byte Ed25519 signature.
    pub signature: String,
}

impl SignedReport {
    /// The report file (pretty JSON, fields in their declared order).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The printable page, carrying this signed report.
    pub fn to_html(&self) -> String {
        render_html(self)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReportError {
    #[error("the report is {0} bytes, more than the {MAX_REPORT_BYTES} accepted")]
    TooLarge(usize),
    #[error("not a signed compliance report: {0}")]
    Malformed(String),
    #[error("report format {0:?} is not known to this verifier (expected {REPORT_FORMAT})")]
    Format(String),
    #[error("the report's checkpoint does not verify: {0}")]
    Checkpoint(String),
    #[error("the report names log {report:?} but its checkpoint is of log {checkpoint:?}")]
    LogMismatch { report: String, checkpoint: String },
    #[error("the report was signed by key {0}, which is not among the keys given (--key)")]
    UnknownKey(String),
    #[error(
        "the report's signature does not verify with key {0}: the report was changed after signing"
    )]
    BadSignature(String),
    #[error("the page holds no signed report (its data block is missing): not a jitgate compliance report page")]
    NoDataBlock,
    #[error("the page differs from the page of its signed report: it was changed after it was made (first difference at byte {0})")]
    PageAltered(usize),
}

fn message(report: &ComplianceReport) -> Result<Vec<u8>, ReportError> {
    let value = serde_json::to_value(report).map_err(|e| ReportError::Malformed(e.to_string()))?;
    let mut out = SIGNATURE_CONTEXT.to_vec();
    jitgate_core::event::write_jcs(&value, &mut out);
    Ok(out)
}

/// Sign a report with the evidence key.
pub fn sign_report(
    report: ComplianceReport,
    key: &EvidenceKey,
) -> Result<SignedReport, ReportError> {
    let signature = B64.encode(key.sign(&message(&report)?));
    Ok(SignedReport {
        report,
        key_id: key.public().key_id,
        signature,
    })
}

/// Verify a report file (JSON): its checkpoint and its signature, with the auditor's keys.
pub fn verify_report(json: &str, keys: &[EvidencePublicKey]) -> Result<SignedReport, ReportError> {
    if json.len() > MAX_REPORT_BYTES {
        return Err(ReportError::TooLarge(json.len()));
    }
    let signed: SignedReport =
        serde_json::from_str(json).map_err(|e| ReportError::Malformed(e.to_string()))?;
    let r = &signed.report;
    if r.format != REPORT_FORMAT {
        return Err(ReportError::Format(r.format.clone()));
    }
    r.checkpoint
        .verify(keys)
        .map_err(|e| ReportError::Checkpoint(e.to_string()))?;
    if r.checkpoint.checkpoint.log_id != r.log_id {
        return Err(ReportError::LogMismatch {
            report: r.log_id.clone(),
            checkpoint: r.checkpoint.checkpoint.log_id.clone(),
        });
    }
    let key = keys
        .iter()
        .find(|k| k.key_id == signed.key_id)
        .ok_or_else(|| ReportError::UnknownKey(signed.key_id.clone()))?;
    let signature: [u8; 64] = B64
        .decode(&signed.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ReportError::BadSignature(key.key_id.clone()))?;
    if !key.verify(&message(r)?, &signature) {
        return Err(ReportError::BadSignature(key.key_id.clone()));
    }
    Ok(signed)
}

/// Verify a report page: the signed report it carries, and that the page is exactly the
/// page of that report (any other byte changed is found).
pub fn verify_report_html(
    html: &str,
    keys: &[EvidencePublicKey],
) -> Result<SignedReport, ReportError> {
    if html.len() > MAX_REPORT_BYTES {
        return Err(ReportError::TooLarge(html.len()));
    }
    let start = html
        .rfind(DATA_BLOCK_OPEN)
        .ok_or(ReportError::NoDataBlock)?
        + DATA_BLOCK_OPEN.len();
    let len = html[start..]
        .find(DATA_BLOCK_CLOSE)
        .ok_or(ReportError::NoDataBlock)?;
    let signed = verify_report(&html[start..start + len], keys)?;
    let expected = render_html(&signed);
    if expected != html {
        let at = expected
            .bytes()
            .zip(html.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.len().min(html.len()));
        return Err(ReportError::PageAltered(at));
    }
    Ok(signed)
}

/// Whether `text` looks like a report page rather than a report file.
pub fn is_html(text: &str) -> bool {
    text.trim_start().starts_with("<!DOCTYPE html")
}
