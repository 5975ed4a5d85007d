//! The one place where errors of every crate become an HTTP status, a stable error code and
//! a message that says what to do. Codes are documented in docs/api.md and never reused.

use crate::api::types::ApiError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use jitgate_core::CoreError;
use jitgate_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{what} {id} does not exist; {hint}")]
    NotFound {
        what: &'static str,
        id: String,
        hint: &'static str,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    MalformedJson(String),
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("this identity has TOTP enrolled: send the current code (`--totp`)")]
    TotpRequired,
    #[error("{0}")]
    BadTotp(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("policy set not loaded: {0}")]
    Policy(String),
    /// The evidence log fails verification: nothing is signed or exported over it.
    #[error("{0}")]
    EvidenceBroken(String),
    /// A gateway sent something outside what a gateway may say (see `api::gateway`).
    #[error("{message}")]
    GatewayTrust {
        code: GatewayTrustCode,
        message: String,
    },
    #[error("{0}")]
    Internal(String),
}

/// Why a gateway's events were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayTrustCode {
    /// The batch skips gateway sequence numbers.
    SequenceGap,
    /// An event is dated too far ahead of the server or before its grant existed.
    TimeOutOfBounds,
    /// An event names a grant on assets the gateway does not front.
    GrantNotFronted,
}

impl ServerError {
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            ServerError::Core(e) => {
                let status = match e {
                    CoreError::InvalidScope(_)
                    | CoreError::InvalidInventory(_)
                    | CoreError::InvalidRequest(_)
                    | CoreError::ScopeNotExposed { .. }
                    | CoreError::DurationAboveMaximum { .. } => S::UNPROCESSABLE_ENTITY,
                    CoreError::WrongState { .. }
                    | CoreError::Lapsed(_)
                    | CoreError::AlreadyApproved { .. }
                    | CoreError::ScopeDigestMismatch { .. }
                    | CoreError::NoLongerAllowed { .. }
                    | CoreError::LastAdministrator => S::CONFLICT,
                    CoreError::ControlCharacter { .. } => S::UNPROCESSABLE_ENTITY,
                    CoreError::SeparationOfDuties(_)
                    | CoreError::ConflictOfInterest { .. }
                    | CoreError::NotEligible(_)
                    | CoreError::IdentityDisabled(_)
                    | CoreError::Forbidden(_) => S::FORBIDDEN,
                    CoreError::StepUpRequired => S::UNAUTHORIZED,
                };
                (status, e.code())
            }
            ServerError::Store(StoreError::NotFound { .. }) => (S::NOT_FOUND, "not_found"),
            ServerError::Store(StoreError::Conflict(_)) => (S::CONFLICT, "conflict"),
            ServerError::Store(_) => (S::INTERNAL_SERVER_ERROR, "storage_error"),
            ServerError::NotFound { .. } => (S::NOT_FOUND, "not_found"),
            ServerError::BadRequest(_) => (S::BAD_REQUEST, "bad_request"),
            ServerError::MalformedJson(_) => (S::BAD_REQUEST, "malformed_json"),
            ServerError::InvalidBody(_) => (S::UNPROCESSABLE_ENTITY, "invalid_body"),
            ServerError::Unauthenticated(_) => (S::UNAUTHORIZED, "unauthenticated"),
            ServerError::TotpRequired => (S::UNAUTHORIZED, "totp_required"),
            ServerError::BadTotp(_) => (S::UNAUTHORIZED, "bad_totp"),
            ServerError::Forbidden(_) => (S::FORBIDDEN, "forbidden"),
            ServerError::Policy(_) => (S::UNPROCESSABLE_ENTITY, "invalid_policy"),
            ServerError::EvidenceBroken(_) => (S::CONFLICT, "evidence_broken"),
            ServerError::GatewayTrust { code, .. } => match code {
                GatewayTrustCode::SequenceGap => (S::CONFLICT, "gseq_gap"),
                GatewayTrustCode::TimeOutOfBounds => {
                    (S::UNPROCESSABLE_ENTITY, "event_time_out_of_bounds")
                }
                GatewayTrustCode::GrantNotFronted => (S::FORBIDDEN, "grant_not_fronted"),
            },
            ServerError::Internal(_) => (S::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }

    pub fn not_found(what: &'static str, id: &str) -> Self {
        let hint = match what {
            "asset" => "`jitgate assets` lists the inventory",
            "identity" => "`jitgate identities` lists them",
            "request" => "`jitgate requests` lists the requests you can see",
            "grant" => "`jitgate grants` lists the grants you can see",
            _ => "check the id",
        };
        ServerError::NotFound {
            what,
            id: id.to_string(),
            hint,
        }
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Details of internal failures go to the log, not to the client.
            tracing::error!(error = %self, "internal error");
            "internal error; the server log has the details".to_string()
        } else {
            self.to_string()
        };
        (
            status,
            Json(ApiError {
                code: code.to_string(),
                message,
            }),
        )
            .into_response()
    }
}

pub type ApiResult<T> = Result<T, ServerError>;
