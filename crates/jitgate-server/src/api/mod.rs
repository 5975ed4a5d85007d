//! The HTTP API: `/api/v1/...` handlers, the OpenAPI document, extractors and body types.
pub mod api_keys;
pub mod evidence;
pub mod extract;
pub mod gateway;
pub mod reviews;
pub mod routes;
pub mod sessions;
pub mod teardown;
pub mod types;
