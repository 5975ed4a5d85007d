//! The HTTP API: `/api/v1/...` handlers, the OpenAPI document and extractors. With
//! [`crate::console`] this is the top layer: nothing below it imports it.
pub mod api_keys;
pub mod campaigns;
pub mod compliance;
pub mod control;
pub mod enrol;
pub mod evidence;
pub mod exceptions;
pub mod extract;
pub mod federation;
pub mod findings;
pub mod gateway;
pub mod limits;
pub mod metrics;
pub mod passkeys;
pub mod recordings;
pub mod response;
pub mod reviews;
pub mod routes;
pub mod sessions;
pub mod ssh;
pub mod sso;
pub mod teardown;
/// The bodies live below the HTTP layer ([`crate::views`]) so the services can build them.
pub use crate::views as types;
