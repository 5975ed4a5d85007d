//! Arbitrary bytes as SSH channel requests against an SSH scope: exec command lines (any
//! bytes, as a client can send them) and `direct-tcpip` destinations (any host string and
//! port).
//!
//! Properties, beyond "never panics":
//! - an exec is allowed if and only if its bytes equal one of the scope's command lines;
//! - a forwarding is allowed only to a destination that parses, in canonical form, to one
//!   of the scope's `forward` targets.

#![no_main]

use jitgate_core::scope::{ForwardTarget, ScopeItem};
use jitgate_gateway::ssh::allow::{destination, exec_allowed, Request, SshAllow};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const COMMANDS: [&str; 3] = ["systemctl status plc-bridge", "uptime", "cat /var/log/plc.log"];

fn allow() -> &'static SshAllow {
    static A: OnceLock<SshAllow> = OnceLock::new();
    A.get_or_init(|| {
        let mut items: Vec<ScopeItem> = COMMANDS
            .iter()
            .map(|c| ScopeItem::Ssh {
                asset: "hmi-1".into(),
                command: Some((*c).into()),
            })
            .collect();
        for t in ["10.0.1.7:502", "historian.north.example:5432", "[fd00::7]:20000"] {
            items.push(ScopeItem::SshForward {
                asset: "hmi-1".into(),
                target: ForwardTarget::parse(t).unwrap(),
            });
        }
        SshAllow::compile("hmi-1", &items)
    })
}

fuzz_target!(|data: &[u8]| {
    let a = allow();
    // The whole input as an exec request.
    let allowed = a.decide(&Request::Exec(data)).is_ok();
    assert_eq!(allowed, COMMANDS.iter().any(|c| c.as_bytes() == data));
    assert_eq!(allowed, exec_allowed(&a.commands, data));
    // The input as `host` + 4-byte port of a direct-tcpip request.
    if data.len() >= 4 {
        let (host, port) = data.split_at(data.len() - 4);
        let port = u32::from_be_bytes([port[0], port[1], port[2], port[3]]);
        if let Ok(host) = std::str::from_utf8(host) {
            let ok = a.decide(&Request::DirectTcpip { host, port }).is_ok();
            let canonical = destination(host, port);
            assert_eq!(ok, canonical.as_ref().is_some_and(|d| a.forwards.contains(d)));
        }
    }
});
