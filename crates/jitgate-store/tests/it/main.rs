//! Integration tests of the store. Every test body runs on SQLite and on PostgreSQL
//! (`jitgate_testkit::each_backend`); with `JITGATE_REQUIRE_PG=1` an unreachable PostgreSQL
//! fails the run instead of being skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed unwrap is a failed test"
)]

mod auth;
mod campaigns;
mod checkpoints;
mod cluster;
mod events;
mod fixtures;
mod inventory;
mod lifecycle;
mod notify_reviews;
mod open;
mod pages;
mod recordings;
