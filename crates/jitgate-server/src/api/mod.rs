//! The HTTP API: `/api/v1/...` handlers, the OpenAPI document, extractors and body types.
pub mod extract;
pub mod gateway;
pub mod routes;
pub mod types;
