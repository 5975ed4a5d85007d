//! End-to-end tests of the real `jitgate` binary: `jitgate up` as a separate process and
//! the README walkthrough driven through the client verbs, as a user would type them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account;
mod campaigns;
mod cluster;
mod cluster_chaos;
mod cluster_kill;
mod cluster_load;
mod cluster_nodes;
mod compliance_cli;
mod dnp3;
mod evidence;
mod exceptions_cli;
mod federation_cli;
mod gateway;
mod gateway_crash;
mod governance;
mod licences;
mod limits;
mod mtls;
mod netns;
mod ports;
mod quickstart;
mod recordings;
mod ssh_gateway;
mod ssh_vault;
mod sso_cli;
mod tls;
mod witness;
