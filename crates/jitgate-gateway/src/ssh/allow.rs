//! What an SSH session may do, compiled once per session from the grant's scope on one
//! asset, and the decision on each channel request. Pure: no I/O, no allocation per
//! decision beyond the reason of a refusal.
//!
//! | scope word | allows |
//! |---|---|
//! | `shell` | `pty-req`, `window-change` and `shell` on a session channel |
//! | `command <cmdline>` | `exec` of exactly that command line, byte for byte |
//! | `sftp` | the `sftp` subsystem |
//! | `forward <host:port>` | `direct-tcpip` channels to exactly that destination |
//!
//! Everything else is refused: other commands and subsystems, other destinations, agent
//! and X11 forwarding, `tcpip-forward` (`ssh -R`), a second `shell`/`exec`/`subsystem` on
//! a channel that already runs one, and a terminal without `shell` (a `command` runs
//! without one).

use jitgate_core::scope::{ForwardTarget, ScopeItem};
use serde::Serialize;

/// The allow-list of one session on one asset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshAllow {
    pub shell: bool,
    pub sftp: bool,
    /// Command lines allowed for `exec`, as written in the scope.
    pub commands: Vec<String>,
    pub forwards: Vec<ForwardTarget>,
}

/// A channel request a client can make, as the gateway decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    Pty,
    WindowChange,
    Shell,
    Exec(&'a [u8]),
    Subsystem(&'a str),
    /// `direct-tcpip`: a connection from the asset to `host:port` (`ssh -L`, `ssh -W`).
    DirectTcpip {
        host: &'a str,
        port: u32,
    },
    /// `tcpip-forward`: the asset listening for the client (`ssh -R`).
    RemoteForward,
    AgentForward,
    X11,
    /// A `direct-streamlocal` channel or another kind the gateway does not relay.
    OtherChannel(&'a str),
    /// A session channel request the gateway does not relay (by name).
    OtherRequest(&'a str),
}

/// The operation record of a decision (`operation` events): what was asked, whether it
/// was allowed, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshOperation {
    pub protocol: &'static str,
    /// `shell`, `pty`, `exec`, `subsystem`, `direct-tcpip`, `tcpip-forward`,
    /// `agent-forward`, `x11`, `channel`, `request`.
    pub operation: &'static str,
    /// The command, subsystem name, destination or request name, where there is one
    /// (a command that is not UTF-8 is shown lossily; the decision used the bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl SshAllow {
    /// The allow-list of `items` on `asset`.
    pub fn compile(asset: &str, items: &[ScopeItem]) -> SshAllow {
        let mut allow = SshAllow::default();
        for item in items.iter().filter(|i| i.asset() == asset) {
            match item {
                ScopeItem::Ssh { command: None, .. } => allow.shell = true,
                ScopeItem::Ssh {
                    command: Some(c), ..
                } => allow.commands.push(c.clone()),
                ScopeItem::SshSftp { .. } => allow.sftp = true,
                ScopeItem::SshForward { target, .. } => allow.forwards.push(target.clone()),
                ScopeItem::Modbus { .. } | ScopeItem::Dnp3 { .. } => {}
            }
        }
        allow
    }

    /// Whether the scope names any SSH access on the asset.
    pub fn is_empty(&self) -> bool {
        !self.shell && !self.sftp && self.commands.is_empty() && self.forwards.is_empty()
    }

    /// Decide one request; `Err(reason)` is the message the user sees.
    pub fn decide(&self, req: &Request<'_>) -> Result<(), String> {
        match *req {
            Request::Pty | Request::WindowChange | Request::Shell if self.shell => Ok(()),
            Request::Pty | Request::WindowChange => Err(
                "a terminal needs `shell` in the grant's scope; commands run without one (ssh -T)"
                    .into(),
            ),
            Request::Shell => Err("the grant's scope does not name `shell` on this asset".into()),
            Request::Exec(cmd) => {
                if exec_allowed(&self.commands, cmd) {
                    Ok(())
                } else if self.commands.is_empty() {
                    Err("the grant's scope names no command on this asset".into())
                } else {
                    Err(format!(
                        "only the command(s) the grant names may run, byte for byte: {}",
                        self.commands
                            .iter()
                            .map(|c| format!("{c:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
            }
            Request::Subsystem("sftp") if self.sftp => Ok(()),
            Request::Subsystem("sftp") => {
                Err("the grant's scope does not name `sftp` on this asset".into())
            }
            Request::Subsystem(other) => Err(format!(
                "subsystem {other:?} is never allowed (only `sftp`, when the scope names it)"
            )),
            Request::DirectTcpip { host, port } => match destination(host, port) {
                Some(d) if self.forwards.contains(&d) => Ok(()),
                _ if self.forwards.is_empty() => {
                    Err("the grant's scope names no `forward` on this asset".into())
                }
                _ => Err(format!(
                    "forwarding to {host}:{port} is not in the grant's scope (it allows {})",
                    self.forwards
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            },
            Request::RemoteForward => {
                Err("remote forwarding (ssh -R) has no scope word and is never allowed".into())
            }
            Request::AgentForward => {
                Err("agent forwarding has no scope word and is never allowed".into())
            }
            Request::X11 => Err("X11 forwarding has no scope word and is never allowed".into()),
            Request::OtherChannel(kind) => {
                Err(format!("channels of type {kind:?} are never allowed"))
            }
            Request::OtherRequest(name) => {
                Err(format!("the channel request {name:?} is never allowed"))
            }
        }
    }

    /// Decide and describe: the operation record of the decision.
    pub fn operation(&self, req: &Request<'_>) -> SshOperation {
        let decision = self.decide(req);
        let (operation, target) = describe(req);
        SshOperation {
            protocol: "ssh",
            operation,
            target,
            allowed: decision.is_ok(),
            reason: decision.err(),
        }
    }
}

fn describe(req: &Request<'_>) -> (&'static str, Option<String>) {
    match *req {
        Request::Pty => ("pty", None),
        Request::WindowChange => ("window-change", None),
        Request::Shell => ("shell", None),
        Request::Exec(cmd) => ("exec", Some(String::from_utf8_lossy(cmd).into_owned())),
        Request::Subsystem(s) => ("subsystem", Some(s.to_string())),
        Request::DirectTcpip { host, port } => ("direct-tcpip", Some(format!("{host}:{port}"))),
        Request::RemoteForward => ("tcpip-forward", None),
        Request::AgentForward => ("agent-forward", None),
        Request::X11 => ("x11", None),
        Request::OtherChannel(k) => ("channel", Some(k.to_string())),
        Request::OtherRequest(n) => ("request", Some(n.to_string())),
    }
}

/// Whether `cmd` (the exec request's bytes, as the client sent them) is exactly one of
/// `allowed`: byte for byte, no trimming, no normalisation, no prefix match. A command
/// line with a NUL, a newline or anything else a scope command cannot hold never matches.
/// Fuzzable: any bytes.
pub fn exec_allowed(allowed: &[String], cmd: &[u8]) -> bool {
    allowed.iter().any(|a| a.as_bytes() == cmd)
}

/// The destination of a `direct-tcpip` request in the scope's canonical form, or `None`
/// when it is not one destination a scope could name (a port out of range, a wildcard,
/// a malformed name). The gateway asks the asset for this form, not the client's spelling.
pub fn destination(host: &str, port: u32) -> Option<ForwardTarget> {
    let port = u16::try_from(port).ok()?;
    let text = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    ForwardTarget::parse(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(word: &str, asset: &str) -> ScopeItem {
        match word.split_once(' ') {
            Some(("command", c)) => ScopeItem::Ssh {
                asset: asset.into(),
                command: Some(c.into()),
            },
            Some(("forward", t)) => ScopeItem::SshForward {
                asset: asset.into(),
                target: ForwardTarget::parse(t).unwrap(),
            },
            _ if word == "sftp" => ScopeItem::SshSftp {
                asset: asset.into(),
            },
            _ => ScopeItem::Ssh {
                asset: asset.into(),
                command: None,
            },
        }
    }

    fn allow(words: &[&str]) -> SshAllow {
        let items: Vec<ScopeItem> = words.iter().map(|w| item(w, "hmi-1")).collect();
        SshAllow::compile("hmi-1", &items)
    }

    #[test]
    fn shell_allows_a_terminal_and_nothing_else() {
        let a = allow(&["shell"]);
        for ok in [Request::Pty, Request::Shell, Request::WindowChange] {
            assert_eq!(a.decide(&ok), Ok(()), "{ok:?}");
        }
        for no in [
            Request::Exec(b"id"),
            Request::Subsystem("sftp"),
            Request::DirectTcpip {
                host: "10.0.0.5",
                port: 502,
            },
            Request::RemoteForward,
            Request::AgentForward,
            Request::X11,
            Request::OtherChannel("direct-streamlocal@openssh.com"),
            Request::OtherRequest("auth-agent-req@openssh.com"),
        ] {
            assert!(a.decide(&no).is_err(), "{no:?}");
        }
    }

    #[test]
    fn a_command_is_matched_byte_for_byte() {
        let a = allow(&["command systemctl status plc-bridge"]);
        assert_eq!(
            a.decide(&Request::Exec(b"systemctl status plc-bridge")),
            Ok(())
        );
        for no in [
            &b"systemctl status plc-bridge "[..],
            b" systemctl status plc-bridge",
            b"systemctl  status plc-bridge",
            b"systemctl status plc-bridge; id",
            b"systemctl status plc-bridge\n",
            b"systemctl status plc-bridge\0",
            b"SYSTEMCTL status plc-bridge",
            b"systemctl status",
            b"",
        ] {
            assert!(
                a.decide(&Request::Exec(no)).is_err(),
                "{:?}",
                String::from_utf8_lossy(no)
            );
        }
        // A command scope gives no shell and no terminal.
        assert!(a.decide(&Request::Shell).is_err());
        assert!(a.decide(&Request::Pty).is_err());
        let err = a.decide(&Request::Exec(b"id")).unwrap_err();
        assert!(err.contains("systemctl status plc-bridge"), "{err}");
    }

    #[test]
    fn sftp_is_the_sftp_subsystem_only() {
        let a = allow(&["sftp"]);
        assert_eq!(a.decide(&Request::Subsystem("sftp")), Ok(()));
        assert!(a.decide(&Request::Subsystem("SFTP")).is_err());
        assert!(a.decide(&Request::Subsystem("netconf")).is_err());
        assert!(a.decide(&Request::Shell).is_err());
        assert!(a
            .decide(&Request::Exec(b"/usr/lib/openssh/sftp-server"))
            .is_err());
        assert!(allow(&["shell"])
            .decide(&Request::Subsystem("sftp"))
            .is_err());
    }

    #[test]
    fn forward_is_exactly_the_named_destination() {
        let a = allow(&[
            "forward 10.0.1.7:502",
            "forward historian.north.example:5432",
        ]);
        let d = |host, port| Request::DirectTcpip { host, port };
        assert_eq!(a.decide(&d("10.0.1.7", 502)), Ok(()));
        assert_eq!(a.decide(&d("HISTORIAN.north.example", 5432)), Ok(()));
        for no in [
            d("10.0.1.7", 503),
            d("10.0.1.8", 502),
            d("010.0.1.7", 502),
            d("0.0.0.0", 502),
            d("10.0.1.7", 502 + 65536),
            d("historian.north.example.", 5432),
            d("historian", 5432),
            d("", 502),
        ] {
            assert!(a.decide(&no).is_err(), "{no:?}");
        }
        let v6 = allow(&["forward [fd00::7]:20000"]);
        assert_eq!(v6.decide(&d("fd00::7", 20000)), Ok(()));
        assert_eq!(v6.decide(&d("fd00:0::7", 20000)), Ok(()));
        assert!(v6.decide(&d("fd00::8", 20000)).is_err());
        assert!(a.decide(&Request::RemoteForward).is_err());
    }

    #[test]
    fn another_assets_scope_gives_nothing() {
        let items = vec![item("shell", "ews-1"), item("sftp", "ews-1")];
        let a = SshAllow::compile("hmi-1", &items);
        assert!(a.is_empty());
        assert!(a.decide(&Request::Shell).is_err());
        assert!(a.decide(&Request::Subsystem("sftp")).is_err());
    }

    #[test]
    fn operations_say_what_and_why() {
        let a = allow(&["command uptime"]);
        let op = a.operation(&Request::Exec(b"id"));
        assert_eq!(op.operation, "exec");
        assert_eq!(op.target.as_deref(), Some("id"));
        assert!(!op.allowed);
        assert!(op.reason.is_some());
        let op = a.operation(&Request::Exec(b"uptime"));
        assert!(op.allowed && op.reason.is_none());
        let json = serde_json::to_value(&op).unwrap();
        assert_eq!(json["protocol"], "ssh");
        assert_eq!(json["allowed"], true);
    }

    proptest! {
        /// Only the exact bytes of an allowed command match, whatever the client sends.
        #[test]
        fn exec_matches_only_exact_bytes(
            allowed in proptest::collection::vec("[ -~]{0,40}", 0..4),
            cmd in proptest::collection::vec(any::<u8>(), 0..60),
        ) {
            let matched = exec_allowed(&allowed, &cmd);
            prop_assert_eq!(matched, allowed.iter().any(|a| a.as_bytes() == cmd.as_slice()));
        }

        /// Appending or prepending anything to an allowed command never matches.
        #[test]
        fn no_prefix_or_suffix_matches(
            c in "[ -~]{1,40}",
            extra in proptest::collection::vec(any::<u8>(), 1..20),
        ) {
            let allowed = vec![c.clone()];
            let mut longer = c.clone().into_bytes();
            longer.extend_from_slice(&extra);
            prop_assert!(!exec_allowed(&allowed, &longer));
            let mut before = extra.clone();
            before.extend_from_slice(c.as_bytes());
            prop_assert!(!exec_allowed(&allowed, &before));
        }
    }
}
