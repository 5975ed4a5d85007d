//! JSON body and query extractors whose rejections are JSON `ApiError`s with a stable code,
//! instead of axum's plain-text defaults: a malformed body must get a clear, typed answer.

use crate::error::ServerError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};

#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ServerError))]
pub struct ApiJson<T>(pub T);

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ServerError))]
pub struct ApiQuery<T>(pub T);

impl From<JsonRejection> for ServerError {
    fn from(r: JsonRejection) -> Self {
        match &r {
            JsonRejection::JsonDataError(_) => ServerError::InvalidBody(format!(
                "request body has the wrong shape: {}; /openapi.json describes every body",
                r.body_text()
            )),
            JsonRejection::JsonSyntaxError(_) => ServerError::MalformedJson(format!(
                "request body is not valid JSON: {}",
                r.body_text()
            )),
            JsonRejection::MissingJsonContentType(_) => ServerError::MalformedJson(
                "send the body with `Content-Type: application/json`".into(),
            ),
            _ => ServerError::BadRequest(format!(
                "request body could not be read: {}",
                r.body_text()
            )),
        }
    }
}

impl From<QueryRejection> for ServerError {
    fn from(r: QueryRejection) -> Self {
        ServerError::BadRequest(format!("query string is invalid: {}", r.body_text()))
    }
}
