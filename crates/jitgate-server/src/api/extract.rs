//! Extractors. The JSON body and query extractors reject with JSON `ApiError`s with a stable
//! code instead of axum's plain-text defaults: a malformed body must get a clear, typed
//! answer. [`Caller`] is read from the `Authorization: Bearer` header.

use crate::auth::{authenticate, Caller};
use crate::error::ServerError;
use crate::state::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;

#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ServerError))]
pub struct ApiJson<T>(pub T);

/// A JSON body kept as its bytes, for an endpoint that parses it itself, borrowing from
/// it (the gateway's event deliveries: most of what the server did per recorded operation
/// was parsing into owned values). Same content-type rule, size limit and errors as
/// [`ApiJson`]: see [`JsonBytes::parse`].
pub struct JsonBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ServerError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ServerError> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime::Mime>().ok())
            .is_some_and(|m| {
                m.type_() == "application"
                    && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
            });
        if !json {
            return Err(JsonRejection::from(
                axum::extract::rejection::MissingJsonContentType::default(),
            )
            .into());
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(JsonRejection::from)?;
        Ok(JsonBytes(bytes))
    }
}

impl JsonBytes {
    /// The body as `Fast` (which may borrow from it). When it is not one, the error is
    /// the one [`ApiJson`]`<Typed>` gives for it (with the path to what is wrong), `Typed`
    /// being the owned shape the API documents: parsing is only tracked when it failed.
    pub fn parse<'a, Fast, Typed>(&'a self) -> Result<Fast, ServerError>
    where
        Fast: serde::Deserialize<'a>,
        Typed: serde::de::DeserializeOwned,
    {
        serde_json::from_slice(&self.0).map_err(|fast| {
            match axum::Json::<Typed>::from_bytes(&self.0) {
                Err(rejection) => rejection.into(),
                Ok(_) => ServerError::InvalidBody(format!(
                    "request body has the wrong shape: {fast}; /openapi.json describes every body"
                )),
            }
        })
    }
}

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ServerError))]
pub struct ApiQuery<T>(pub T);

impl From<JsonRejection> for ServerError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            return super::limits::payload_too_large();
        }
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

/// The authenticated caller, from `Authorization: Bearer <session token or API key>`; a
/// gateway must also present its enrolled client certificate (`crate::gateway_auth`).
impl FromRequestParts<AppState> for Caller {
    type Rejection = ServerError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = bearer(parts, state).await?;
        let conn = client_conn(parts);
        crate::gateway_auth::check_call(
            state,
            &caller,
            conn.as_ref().and_then(|c| c.client_cert.as_ref()),
            &source(conn.as_ref()),
        )
        .await?;
        Ok(caller)
    }
}

/// A caller authenticated by its bearer credentials only, with the client certificate it
/// presented (if any): for enrolment, where the certificate is what is being obtained.
pub struct Enrolling {
    pub caller: Caller,
    pub client_cert: Option<jitgate_core::gateway_enrolment::PresentedCert>,
    pub source: String,
}

impl FromRequestParts<AppState> for Enrolling {
    type Rejection = ServerError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = bearer(parts, state).await?;
        let conn = client_conn(parts);
        Ok(Enrolling {
            caller,
            source: source(conn.as_ref()),
            client_cert: conn.and_then(|c| c.client_cert),
        })
    }
}

fn client_conn(parts: &Parts) -> Option<crate::tls::ClientAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<crate::tls::ClientAddr>>()
        .map(|c| c.0.clone())
}

fn source(conn: Option<&crate::tls::ClientAddr>) -> String {
    conn.map(|c| c.addr.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// `Authorization: Bearer <token>` → the caller.
async fn bearer(parts: &Parts, state: &AppState) -> Result<Caller, ServerError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ServerError::Unauthenticated(
                "no credentials: run `jitgate login` (or send `Authorization: Bearer <token>`)"
                    .into(),
            )
        })?;
    let token = header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .ok_or_else(|| {
            ServerError::Unauthenticated("Authorization header must be `Bearer <token>`".into())
        })?;
    authenticate(state, token).await
}

/// The client's address, when the server was started with connection info (always, except
/// when the router is driven directly, as some tests do).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<crate::tls::ClientAddr>>()
                .map(|c| c.0.addr.ip()),
        ))
    }
}
