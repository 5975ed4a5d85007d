//! A [`ServerError`] as an HTTP response: the status its code has in the one table, and the
//! JSON body `{code, message}` every error of the API has.

use crate::error::ServerError;
use crate::views::ApiError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Details of internal failures go to the log, not to the client.
            tracing::error!(error = %self, "internal error");
            "internal error; the server log has the details".to_string()
        } else {
            self.to_string()
        };
        let retry_after = self.retry_after_secs();
        let mut response = (
            status,
            Json(ApiError {
                code: code.as_str().to_string(),
                message,
            }),
        )
            .into_response();
        if let Some(secs) = retry_after {
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        response
    }
}
