//! `jitgate`: the server, the quickstart and the client verbs in one binary.
//!
//! ## Layout
//! - `main.rs`        — the clap command tree, tracing setup, and the mapping of errors to
//!   exit codes (see docs/cli.md).
//! - `server_cmds.rs` — `serve`, `up`, `check` (owned by the server side).
//! - `gateway_cmds.rs` — `gateway`: the enforcement point process.
//! - `client/`        — every verb that talks to a server over HTTP; see `client/mod.rs`.
//! - `output.rs`      — the only writer of stdout: control characters from the server shown
//!   escaped, a closed pipe (`| head`) ends the process quietly.

// Every stdout write goes through `output` (escaping, closed pipes).
#![deny(clippy::print_stdout)]

mod output;

mod client;
mod gateway_cmds;
mod server_cmds;

use clap::{Parser, Subcommand};
use client::http::{exit, CliError};
use std::process::ExitCode;

const ABOUT: &str = "Just-in-time privileged access for industrial (OT) systems";

const LONG_ABOUT: &str = "\
Just-in-time privileged access for industrial (OT) systems.

Access is requested for exact assets, protocols and operations, decided by policy, approved by
named people, issued as a short-lived grant bound to that approval, and torn down with evidence.";

const AFTER_HELP: &str = "\
A typical session:
  jitgate up                                  # quickstart server on http://127.0.0.1:8080
  jitgate login --identity alice
  jitgate request --asset plc-7 --modbus 'read holding 0-99 unit 1' --for 2h \\
      --reason 'replace valve positioner' --ref WO-1234
  jitgate requests --awaiting-me              # as an approver
  jitgate approve req-k3m9x2p7qa4d --comment 'checked WO-1234'
  jitgate grants --mine
  jitgate complete grant-7hq2m4x9wd3c

Settings: a flag beats its environment variable (JITGATE_SERVER, JITGATE_TOKEN,
JITGATE_PROFILE), which beats the profile file written by `jitgate login`
($XDG_CONFIG_HOME/jitgate/profile.toml or ~/.config/jitgate/profile.toml).

Exit codes: 0 success; 1 refused by the server, request denied or check failed;
2 usage or local configuration error; 3 server unreachable.

More: docs/cli.md";

#[derive(Debug, Parser)]
#[command(
    name = "jitgate",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP,
    max_term_width = 100
)]
struct Cli {
    #[command(flatten)]
    global: client::GlobalArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the jitgate server (HTTP API, scheduler) from a configuration file.
    #[command(after_help = "Example:\n  jitgate serve --config /etc/jitgate/jitgate.toml")]
    Serve(server_cmds::ServeArgs),

    /// Give the first administrator of a new database a password (once; docs/cluster.md).
    #[command(
        after_help = "Example (a new PostgreSQL deployment; sam has the `admin` role in the inventory):\n  \
        jitgate bootstrap --config /etc/jitgate/jitgate.toml --admin sam\n\n\
        Prints a generated password once (or takes one with --password-stdin). Refused as soon \
        as any administrator can sign in: from then on administrators set passwords with \
        `jitgate identities set-password`."
    )]
    Bootstrap(server_cmds::BootstrapArgs),

    /// Quickstart: an all-in-one server with an embedded database, for trying jitgate out.
    #[command(after_help = "Example:\n  jitgate up --data-dir ./jitgate-data")]
    Up(server_cmds::UpArgs),

    /// Validate configuration, inventory and policies without starting anything.
    #[command(after_help = "Example:\n  jitgate check --config /etc/jitgate/jitgate.toml")]
    Check(server_cmds::CheckArgs),

    /// Run a gateway: accept tunnels and enforce grants inside the protocol.
    #[command(
        after_help = "Example:\n  jitgate gateway --config /etc/jitgate/gateway.toml\n\nSee docs/gateway.md."
    )]
    Gateway(gateway_cmds::GatewayArgs),

    #[command(flatten)]
    Client(client::ClientCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let server_side = matches!(
        cli.command,
        Command::Serve(_)
            | Command::Up(_)
            | Command::Check(_)
            | Command::Gateway(_)
            | Command::Bootstrap(_)
    );
    init_tracing(if server_side { "info" } else { "warn" });
    // Client verbs (`connect` included: it relays a few local connections) run on one
    // thread: a multi-threaded runtime costs them wake-ups across threads on every relayed
    // frame and buys nothing. Server and gateway use every core.
    let runtime = if server_side {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => server_cmds::serve(args).await,
            Command::Up(args) => server_cmds::up(args).await,
            Command::Bootstrap(args) => server_cmds::bootstrap(args).await,
            Command::Check(args) => server_cmds::check(args).await,
            Command::Gateway(args) => gateway_cmds::run(args).await,
            Command::Client(cmd) => client::run(&cli.global, cmd).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => ExitCode::from(report(&e)),
    }
}

/// Logs go to stderr so that stdout stays clean for tables and `--json`. `RUST_LOG` overrides
/// the default level. `try_init` leaves an already installed subscriber in place.
fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Print an error the way docs/cli.md promises and pick the exit code.
fn report(err: &anyhow::Error) -> u8 {
    match err.downcast_ref::<CliError>() {
        Some(CliError::Reported) => exit::FAILURE,
        Some(e) => {
            // Server messages may quote what a user typed: no raw control characters.
            eprintln!("error: {}", output::escape_controls(&e.to_string(), false));
            if let CliError::Api {
                hint: Some(hint), ..
            } = e
            {
                eprintln!("hint: {}", output::escape_controls(hint, false));
            }
            e.exit_code()
        }
        None => {
            eprintln!(
                "error: {}",
                output::escape_controls(&format!("{err:#}"), false)
            );
            exit::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_verb_has_an_example() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in cmd.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                if sub.get_name() == "help" {
                    continue;
                }
                let has_example = sub
                    .get_after_help()
                    .is_some_and(|h| h.to_string().contains("jitgate "));
                // A verb with subcommands may carry its examples on the children instead.
                if !has_example && !sub.has_subcommands() {
                    missing.push(name.clone());
                }
                walk(sub, &name, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "jitgate", &mut missing);
        assert!(missing.is_empty(), "verbs without an example: {missing:?}");
    }

    #[test]
    fn global_flags_work_after_the_verb() -> Result<(), clap::Error> {
        let cli = Cli::try_parse_from([
            "jitgate",
            "requests",
            "--json",
            "--server",
            "http://h:1",
            "--token",
            "t",
        ])?;
        assert!(cli.global.json);
        assert_eq!(cli.global.server.as_deref(), Some("http://h:1"));
        assert!(matches!(
            cli.command,
            Command::Client(client::ClientCommand::Requests(_))
        ));
        Ok(())
    }

    #[test]
    fn usage_errors_exit_2() {
        let e = Cli::try_parse_from(["jitgate", "grants", "--state", "bogus"]).err();
        assert_eq!(e.map(|e| e.exit_code()), Some(2));
        let e = Cli::try_parse_from(["jitgate", "approve", "r-1", "--totp", "12"]).err();
        assert_eq!(e.map(|e| e.exit_code()), Some(2));
    }

    #[test]
    fn bare_identities_and_assets_mean_list() -> Result<(), clap::Error> {
        let cli = Cli::try_parse_from(["jitgate", "identities"])?;
        assert!(matches!(
            cli.command,
            Command::Client(client::ClientCommand::Identities { cmd: None })
        ));
        let cli = Cli::try_parse_from(["jitgate", "policy", "test", "s.toml", "--policies", "p"])?;
        assert!(matches!(
            cli.command,
            Command::Client(client::ClientCommand::Policy {
                cmd: client::policy::PolicyCmd::Test { .. }
            })
        ));
        Ok(())
    }

    #[test]
    fn report_maps_exit_codes() {
        let e: anyhow::Error = CliError::Usage("bad".into()).into();
        assert_eq!(report(&e), 2);
        let e: anyhow::Error = CliError::Unreachable {
            url: "u".into(),
            detail: "d".into(),
        }
        .into();
        assert_eq!(report(&e), 3);
        let e: anyhow::Error = CliError::Api {
            status: 403,
            code: "forbidden".into(),
            message: "no".into(),
            hint: None,
        }
        .into();
        assert_eq!(report(&e), 1);
        assert_eq!(report(&CliError::Reported.into()), 1);
        assert_eq!(report(&anyhow::anyhow!("other")), 1);
    }
}
