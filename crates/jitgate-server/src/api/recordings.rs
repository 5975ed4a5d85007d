//! Session recordings: gateways deliver chunk bytes (`POST /gateway/recordings/...`), readers
//! list recordings and fetch a session's cast. The work is in [`crate::recordings`].

use super::extract::ApiQuery;
use super::types::{ApiError, RecordingView};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::recordings::Stored;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jitgate_gateway::wire::RecordingChunkAck;
use serde::Deserialize;
use utoipa::OpenApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/gateway/recordings/{session}/chunks/{index}",
            post(post_chunk),
        )
        .route("/recordings", get(list_recordings))
        .route("/sessions/{id}/recording", get(get_recording))
}

#[derive(OpenApi)]
#[openapi(
    paths(post_chunk, list_recordings, get_recording),
    components(schemas(RecordingView, RecordingChunkAck))
)]
pub struct RecordingsDoc;

/// Store one chunk's bytes. The body is the chunk's frame (header line + bytes,
/// docs/gateway.md "Recordings"); it must match the chunk's `recording.chunk` event, which
/// must have been recorded first (`409 recording_chunk_unknown` until then). Idempotent: the
/// same frame again answers `already_stored`.
#[utoipa::path(post, path = "/api/v1/gateway/recordings/{session}/chunks/{index}",
    params(("session" = String, Path), ("index" = u64, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = RecordingChunkAck), (status = 403, body = ApiError),
              (status = 409, body = ApiError), (status = 422, body = ApiError)))]
pub(crate) async fn post_chunk(
    State(state): State<AppState>,
    caller: Caller,
    Path((session, index)): Path<(String, u64)>,
    body: Bytes,
) -> ApiResult<Json<RecordingChunkAck>> {
    caller.require_gateway()?;
    let stored =
        crate::recordings::store_chunk(&state, caller.id(), &session, index, &body).await?;
    Ok(Json(RecordingChunkAck {
        session_id: session,
        index,
        status: match stored {
            Stored::Stored => "stored",
            Stored::AlreadyStored => "already_stored",
        }
        .into(),
    }))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordingQuery {
    /// Only the recordings of this grant.
    pub grant: Option<String>,
    /// Items per page (default `[limits] default_page_size`, 100; at most
    /// `max_page_size`, 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The previous page's `x-next-cursor` header.
    #[param(max_length = 400)]
    pub cursor: Option<String>,
}

/// The recordings the caller may see (those of the grants whose sessions they may see).
#[utoipa::path(get, path = "/api/v1/recordings", params(RecordingQuery),
    responses((status = 200, body = Vec<RecordingView>, description = "one page, by session id; `x-next-cursor` names the next"),
        (status = 404, body = ApiError)))]
pub(crate) async fn list_recordings(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RecordingQuery>,
) -> ApiResult<Response> {
    let page = super::limits::Page {
        limit: q.limit,
        cursor: q.cursor.clone(),
    }
    .request("recordings", &state.config.limits)?;
    let all = crate::recordings::list(&state, &caller, q.grant.as_deref()).await?;
    let key = |r: &RecordingView| r.session_id.clone();
    Ok(super::limits::page_response(
        "recordings",
        crate::paging::page_of(&page, all, key),
        key,
    ))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CastQuery {
    /// Serve the cast from this chunk on (default 0, the whole cast): a reader that has
    /// chunks `0..from` already (the `<served>` of an earlier answer) gets only what follows.
    pub from: Option<u64>,
}

/// A session's recording as one asciicast v2 file: its chunks in order, up to the first
/// whose bytes the server does not hold (from chunk `from`, when given). `X-Jitgate-Recording`
/// says `complete` or `partial; chunks=<served>/<recorded>`, where `<served>` counts from
/// chunk 0: the `from` to ask for next.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/recording",
    params(("id" = String, Path), CastQuery),
    responses((status = 200, description = "the cast", content_type = "application/x-asciicast"),
              (status = 404, body = ApiError)))]
pub(crate) async fn get_recording(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<CastQuery>,
) -> ApiResult<Response> {
    let cast = crate::recordings::cast(&state, &caller, &id, q.from.unwrap_or(0)).await?;
    let status = if cast.complete {
        "complete".to_string()
    } else {
        format!("partial; chunks={}/{}", cast.served, cast.chunks)
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-asciicast".to_string()),
            (
                header::HeaderName::from_static("x-jitgate-recording"),
                status,
            ),
        ],
        cast.bytes,
    )
        .into_response())
}
