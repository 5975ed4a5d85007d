//! What an OpenSSH certificate issued under a grant may say (documented in
//! `docs/credentials.md`, "SSH certificates").
//!
//! Two certificates exist per SSH access: the **user certificate** the subject presents to
//! the gateway (signed by jitgate's SSH user CA, principal = the subject), and the **target
//! certificate** the gateway presents to the asset for one session (signed by the
//! host-access CA the asset trusts, principal = the asset's account from the inventory).
//! Both carry the grant id as key id and the permissions of the grant's SSH scope on that
//! one asset: this module decides those, and when and for whom a certificate may be issued.
//! The server signs what this module decided; it decides nothing itself.

use crate::inventory::{Identity, SshTargetAuth};
use crate::lifecycle::{Grant, GrantState};
use crate::scope::ScopeItem;
use crate::{CoreError, Timestamp};
use chrono::Duration;

/// Longest a user certificate lives (it is also never valid past the grant's expiry). A
/// session already open outlives it — the gateway cuts it at the grant's end — so only new
/// connections need a fresh one (`jitgate ssh` makes one each time).
pub const USER_CERTIFICATE_MAX_SECS: i64 = 3600;

/// Longest a target certificate lives: the gateway asks for one per session and presents it
/// at once; it only has to outlast the connection's authentication.
pub const TARGET_CERTIFICATE_MAX_SECS: i64 = 300;

/// How far before "now" a certificate starts (never before the grant opened), so that a
/// gateway or asset whose clock runs a little behind does not refuse it as not yet valid.
pub const CLOCK_SKEW_SECS: i64 = 60;

/// OpenSSH's certificate extensions jitgate may grant, by their wire names.
pub const PERMIT_PTY: &str = "permit-pty";
pub const PERMIT_PORT_FORWARDING: &str = "permit-port-forwarding";
/// Extensions jitgate never grants: no scope word names them. Agent and X11 forwarding
/// would hand the asset the user's agent or display; `~/.ssh/rc` would run code the scope
/// does not name.
pub const NEVER_GRANTED: [&str; 3] = [
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-user-rc",
];

/// The OpenSSH permissions of a grant's SSH scope on one asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshPermissions {
    /// `shell` is named: an interactive terminal.
    pub pty: bool,
    /// A `forward` is named (the gateway still allows only the named destinations).
    pub port_forwarding: bool,
    /// The scope names exactly one `command` and neither `shell` nor `sftp`: the certificate
    /// carries it as `force-command`, so an OpenSSH server runs that command whatever the
    /// client asks for.
    pub force_command: Option<String>,
}

impl SshPermissions {
    /// The permissions of `items`' SSH words on `asset`; `None` when they name no SSH access
    /// there.
    pub fn for_asset(items: &[ScopeItem], asset: &str) -> Option<SshPermissions> {
        let mut any = false;
        let mut shell = false;
        let mut sftp = false;
        let mut forward = false;
        let mut commands = Vec::new();
        for item in items.iter().filter(|i| i.asset() == asset) {
            match item {
                ScopeItem::Ssh { command: None, .. } => shell = true,
                ScopeItem::Ssh {
                    command: Some(c), ..
                } => commands.push(c.clone()),
                ScopeItem::SshSftp { .. } => sftp = true,
                ScopeItem::SshForward { .. } => forward = true,
                ScopeItem::Modbus { .. } | ScopeItem::Dnp3 { .. } => continue,
            }
            any = true;
        }
        if !any {
            return None;
        }
        let force_command = match commands.as_slice() {
            [only] if !shell && !sftp => Some(only.clone()),
            _ => None,
        };
        Some(SshPermissions {
            pty: shell,
            port_forwarding: forward,
            force_command,
        })
    }

    /// The certificate's extensions, sorted by name as OpenSSH requires.
    pub fn extensions(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.port_forwarding {
            out.push(PERMIT_PORT_FORWARDING);
        }
        if self.pty {
            out.push(PERMIT_PTY);
        }
        out.sort_unstable();
        out
    }
}

/// Which certificate is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateKind {
    /// Presented by the subject to the gateway.
    User,
    /// Presented by the gateway to the asset for one session.
    Target,
}

impl CertificateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateKind::User => "user",
            CertificateKind::Target => "target",
        }
    }

    /// The longest this kind of certificate lives.
    pub fn max_lifetime(self) -> Duration {
        Duration::seconds(match self {
            CertificateKind::User => USER_CERTIFICATE_MAX_SECS,
            CertificateKind::Target => TARGET_CERTIFICATE_MAX_SECS,
        })
    }
}

/// Everything a certificate says, decided here and signed by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatePlan {
    pub kind: CertificateKind,
    /// The grant id (OpenSSH "key id": logged by every OpenSSH server that accepts it).
    pub key_id: String,
    /// The one principal: the subject's identity id (user) or the asset's account (target).
    pub principal: String,
    pub asset: String,
    pub permissions: SshPermissions,
    /// Whole seconds (OpenSSH certificates count seconds).
    pub valid_after: Timestamp,
    /// Never after the grant's expiry, never more than the kind's maximum after now.
    pub valid_before: Timestamp,
}

/// A user certificate for `caller` on `asset` under `grant`, now: only the grant's subject
/// (never a gateway identity), only while the grant is active and open, only for an asset
/// the grant names SSH access on. `asset_has_ssh` says whether the inventory still gives
/// the asset an SSH endpoint.
pub fn user_certificate(
    grant: &Grant,
    caller: &Identity,
    asset: &str,
    asset_has_ssh: bool,
    now: Timestamp,
) -> Result<CertificatePlan, CoreError> {
    crate::governance::may_hold_access(caller)?;
    if caller.id != grant.subject {
        return Err(CoreError::Forbidden(format!(
            "grant {} is for {}; only its subject can obtain its SSH certificate",
            grant.id, grant.subject
        )));
    }
    plan(
        CertificateKind::User,
        grant,
        &grant.subject,
        asset,
        asset_has_ssh,
        now,
    )
}

/// A target certificate for one session on `asset` under `grant`, for the asset's
/// `account`. Who asks (the gateway fronting the asset) is checked by the caller. An asset
/// the gateway logs in to with a vaulted key gets none: it does not trust the CA, and a
/// certificate nobody needs is one more credential.
pub fn target_certificate(
    grant: &Grant,
    asset: &str,
    asset_has_ssh: bool,
    account: Option<&str>,
    auth: SshTargetAuth,
    now: Timestamp,
) -> Result<CertificatePlan, CoreError> {
    if auth == SshTargetAuth::VaultedKey {
        return Err(CoreError::ScopeNotExposed {
            asset: asset.to_string(),
            what: "a target certificate (the gateway logs in to it with a vaulted key: `auth = \"vaulted_key\"`)".into(),
        });
    }
    let Some(account) = account else {
        return Err(CoreError::ScopeNotExposed {
            asset: asset.to_string(),
            what: "an SSH target account (set `account` in the asset's `endpoints.ssh`)".into(),
        });
    };
    plan(
        CertificateKind::Target,
        grant,
        account,
        asset,
        asset_has_ssh,
        now,
    )
}

fn plan(
    kind: CertificateKind,
    grant: &Grant,
    principal: &str,
    asset: &str,
    asset_has_ssh: bool,
    now: Timestamp,
) -> Result<CertificatePlan, CoreError> {
    let (valid_after, valid_before) = window(grant, now, kind.max_lifetime())?;
    let permissions = SshPermissions::for_asset(grant.scope.items(), asset).ok_or_else(|| {
        let granted = grant.scope.assets();
        CoreError::AssetNotGranted {
            grant: grant.id.clone(),
            asset: asset.to_string(),
            what: "SSH access".into(),
            hint: if granted.iter().any(|a| a == asset) {
                format!("it grants other protocols on {asset}; request SSH access")
            } else {
                format!("it covers {}", granted.join(", "))
            },
        }
    })?;
    if !asset_has_ssh {
        return Err(CoreError::ScopeNotExposed {
            asset: asset.to_string(),
            what: "SSH (the inventory no longer gives it an SSH endpoint)".into(),
        });
    }
    Ok(CertificatePlan {
        kind,
        key_id: grant.id.clone(),
        principal: principal.to_string(),
        asset: asset.to_string(),
        permissions,
        valid_after,
        valid_before,
    })
}

/// A certificate issued earlier for the same public key (loaded by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EarlierCertificate<'a> {
    pub grant_id: &'a str,
    pub kind: CertificateKind,
    pub principal: &'a str,
}

/// One key, one grant: a public key already certified under another grant, for another
/// principal, or as the other kind of certificate is refused. Certifying someone else's
/// public key (it is public) would otherwise tie their key to one's own grant in the
/// evidence, and a key kept across grants would make a stolen key outlive the grant it was
/// made for. The same key again under the same grant, kind and principal is a renewal. The
/// refusal does not say whose grant holds the key.
pub fn check_key_reuse(
    plan: &CertificatePlan,
    earlier: &[EarlierCertificate<'_>],
) -> Result<(), CoreError> {
    let renewal = |e: &EarlierCertificate<'_>| {
        e.grant_id == plan.key_id && e.kind == plan.kind && e.principal == plan.principal
    };
    if earlier.iter().all(renewal) {
        Ok(())
    } else {
        Err(CoreError::PublicKeyReused)
    }
}

/// The validity of a certificate issued now under `grant`: whole seconds, starting up to
/// [`CLOCK_SKEW_SECS`] before now but not before the grant opened (its first whole
/// second), ending at the grant's
/// expiry or `max` after now, whichever is earlier.
pub fn window(
    grant: &Grant,
    now: Timestamp,
    max: Duration,
) -> Result<(Timestamp, Timestamp), CoreError> {
    let refuse = |state: &str| CoreError::WrongState {
        what: format!("grant {}", grant.id),
        state: state.to_string(),
        needed: "active".into(),
    };
    if grant.state != GrantState::Active {
        return Err(refuse(grant.state.as_str()));
    }
    if now >= grant.expires_at {
        return Err(refuse("expired"));
    }
    if now < grant.not_before {
        return Err(refuse("not yet open"));
    }
    let floor = |t: Timestamp| {
        chrono::DateTime::from_timestamp(t.timestamp(), 0).ok_or_else(|| refuse("out of range"))
    };
    // Rounded up: the grant's first whole second, never before it opened.
    let opened = chrono::DateTime::from_timestamp(
        grant.not_before.timestamp() + i64::from(grant.not_before.timestamp_subsec_nanos() > 0),
        0,
    )
    .ok_or_else(|| refuse("out of range"))?;
    let valid_after = floor(now - Duration::seconds(CLOCK_SKEW_SECS))?.max(opened);
    let valid_before = floor(grant.expires_at.min(now + max))?;
    if valid_before <= floor(now)?.max(valid_after) {
        // Less than a second of the grant is left.
        return Err(refuse("expired"));
    }
    Ok((valid_after, valid_before))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{IdentityKind, IdentityStatus};
    use crate::scope::{ForwardTarget, Scope};
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t(secs: i64) -> Timestamp {
        chrono::Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn ssh(asset: &str, command: Option<&str>) -> ScopeItem {
        ScopeItem::Ssh {
            asset: asset.into(),
            command: command.map(String::from),
        }
    }

    fn forward(asset: &str, to: &str) -> ScopeItem {
        ScopeItem::SshForward {
            asset: asset.into(),
            target: ForwardTarget::parse(to).unwrap(),
        }
    }

    fn sftp(asset: &str) -> ScopeItem {
        ScopeItem::SshSftp {
            asset: asset.into(),
        }
    }

    fn grant(items: Vec<ScopeItem>) -> Grant {
        let scope = Scope::new(items).unwrap();
        Grant {
            id: "g-1".into(),
            request_id: "r-1".into(),
            subject: "vera".into(),
            scope_digest: scope.digest(),
            scope,
            not_before: t(0),
            expires_at: t(7200),
            state: GrantState::Active,
            emergency: false,
            review_required: false,
            ended_at: None,
            end_reason: None,
            created_at: t(0),
        }
    }

    fn identity(id: &str, roles: &[&str]) -> Identity {
        Identity {
            id: id.into(),
            kind: IdentityKind::Vendor,
            name: String::new(),
            org: None,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            groups: vec![],
            sites: vec![],
            owners: vec![],
            status: IdentityStatus::Active,
        }
    }

    #[test]
    fn a_pty_only_for_shell_and_forwarding_only_for_forward() {
        let p = |items: Vec<ScopeItem>| SshPermissions::for_asset(&items, "hmi-1").unwrap();
        assert_eq!(p(vec![ssh("hmi-1", None)]).extensions(), vec![PERMIT_PTY]);
        assert!(p(vec![ssh("hmi-1", Some("uptime"))])
            .extensions()
            .is_empty());
        assert!(p(vec![sftp("hmi-1")]).extensions().is_empty());
        assert_eq!(
            p(vec![forward("hmi-1", "10.0.0.5:502")]).extensions(),
            vec![PERMIT_PORT_FORWARDING]
        );
        assert_eq!(
            p(vec![
                ssh("hmi-1", None),
                forward("hmi-1", "10.0.0.5:502"),
                sftp("hmi-1")
            ])
            .extensions(),
            vec![PERMIT_PORT_FORWARDING, PERMIT_PTY]
        );
        // Another asset's shell gives this asset nothing.
        assert_eq!(
            SshPermissions::for_asset(&[ssh("ews-1", None), sftp("hmi-1")], "hmi-1")
                .unwrap()
                .extensions(),
            Vec::<&str>::new()
        );
        assert_eq!(
            SshPermissions::for_asset(&[ssh("ews-1", None)], "hmi-1"),
            None
        );
    }

    #[test]
    fn force_command_only_for_a_sole_command() {
        let p = |items: Vec<ScopeItem>| SshPermissions::for_asset(&items, "a").unwrap();
        assert_eq!(
            p(vec![ssh("a", Some("systemctl status"))]).force_command,
            Some("systemctl status".into())
        );
        assert_eq!(
            p(vec![ssh("a", Some("x")), forward("a", "h:1")]).force_command,
            Some("x".into()),
            "forwarding does not run a command"
        );
        assert_eq!(
            p(vec![ssh("a", Some("x")), ssh("a", Some("y"))]).force_command,
            None
        );
        assert_eq!(
            p(vec![ssh("a", Some("x")), ssh("a", None)]).force_command,
            None
        );
        assert_eq!(p(vec![ssh("a", Some("x")), sftp("a")]).force_command, None);
    }

    fn any_ssh_item() -> impl Strategy<Value = ScopeItem> {
        prop_oneof![
            Just(ssh("a", None)),
            "[a-z ]{1,8}".prop_map(|c| ssh("a", Some(c.trim()).filter(|c| !c.is_empty()))),
            Just(sftp("a")),
            (1u16..).prop_map(|p| forward("a", &format!("h:{p}"))),
            Just(ssh("b", None)),
            Just(forward("b", "h:22")),
        ]
    }

    proptest! {
        #[test]
        fn extensions_follow_the_scope_words(items in proptest::collection::vec(any_ssh_item(), 1..6)) {
            let Some(p) = SshPermissions::for_asset(&items, "a") else {
                prop_assert!(items.iter().all(|i| i.asset() != "a"));
                return Ok(());
            };
            let ext = p.extensions();
            let on_a = |f: &dyn Fn(&ScopeItem) -> bool| items.iter().any(|i| i.asset() == "a" && f(i));
            prop_assert_eq!(ext.contains(&PERMIT_PTY), on_a(&|i| matches!(i, ScopeItem::Ssh { command: None, .. })));
            prop_assert_eq!(ext.contains(&PERMIT_PORT_FORWARDING), on_a(&|i| matches!(i, ScopeItem::SshForward { .. })));
            for never in NEVER_GRANTED {
                prop_assert!(!ext.contains(&never));
            }
            let mut sorted = ext.clone();
            sorted.sort_unstable();
            prop_assert_eq!(ext, sorted);
        }
    }

    #[test]
    fn only_the_subject_and_never_a_gateway() {
        let g = grant(vec![ssh("hmi-1", None)]);
        let ok = user_certificate(&g, &identity("vera", &[]), "hmi-1", true, t(10)).unwrap();
        assert_eq!(ok.key_id, "g-1");
        assert_eq!(ok.principal, "vera");
        assert_eq!(ok.kind, CertificateKind::User);
        let err =
            user_certificate(&g, &identity("alice", &["admin"]), "hmi-1", true, t(10)).unwrap_err();
        assert_eq!(err.code(), "forbidden");
        assert!(err.to_string().contains("only its subject"), "{err}");
        let err = user_certificate(&g, &identity("vera", &["gateway"]), "hmi-1", true, t(10))
            .unwrap_err();
        assert_eq!(err.code(), "forbidden");
    }

    #[test]
    fn only_while_active_and_open() {
        let mut g = grant(vec![ssh("hmi-1", None)]);
        let vera = identity("vera", &[]);
        for (state, now, needle) in [
            (GrantState::Ending, t(10), "ending"),
            (GrantState::Closed, t(10), "closed"),
            (GrantState::Active, t(7200), "expired"),
            (GrantState::Active, t(-1), "not yet open"),
        ] {
            g.state = state;
            let err = user_certificate(&g, &vera, "hmi-1", true, now).unwrap_err();
            assert_eq!(err.code(), "wrong_state");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn only_for_an_asset_with_ssh_scope_and_endpoint() {
        let g = grant(vec![
            ssh("hmi-1", None),
            ScopeItem::Modbus {
                asset: "plc-7".into(),
                unit: 1,
                op: crate::scope::ModbusOp::Read,
                table: Some(crate::scope::ModbusTable::Holding),
                start: 0,
                end: 9,
            },
        ]);
        let vera = identity("vera", &[]);
        let err = user_certificate(&g, &vera, "plc-7", true, t(1)).unwrap_err();
        assert_eq!(err.code(), "asset_not_granted");
        assert!(err.to_string().contains("request SSH access"), "{err}");
        let err = user_certificate(&g, &vera, "ews-1", true, t(1)).unwrap_err();
        assert_eq!(err.code(), "asset_not_granted");
        assert!(err.to_string().contains("hmi-1, plc-7"), "{err}");
        let err = user_certificate(&g, &vera, "hmi-1", false, t(1)).unwrap_err();
        assert_eq!(err.code(), "scope_not_exposed");
        let err = target_certificate(&g, "hmi-1", true, None, SshTargetAuth::Certificate, t(1))
            .unwrap_err();
        assert_eq!(err.code(), "scope_not_exposed");
        let err = target_certificate(
            &g,
            "hmi-1",
            true,
            Some("jitgate"),
            SshTargetAuth::VaultedKey,
            t(1),
        )
        .unwrap_err();
        assert_eq!(err.code(), "scope_not_exposed");
        let ok = target_certificate(
            &g,
            "hmi-1",
            true,
            Some("jitgate"),
            SshTargetAuth::Certificate,
            t(1),
        )
        .unwrap();
        assert_eq!(
            (ok.principal.as_str(), ok.kind),
            ("jitgate", CertificateKind::Target)
        );
    }

    #[test]
    fn validity_is_capped_by_the_grant_and_the_maximum() {
        let g = grant(vec![ssh("hmi-1", None)]);
        let vera = identity("vera", &[]);
        // Early in the grant: the user maximum; the start no earlier than the grant.
        let p = user_certificate(&g, &vera, "hmi-1", true, t(10)).unwrap();
        assert_eq!(p.valid_after, t(0));
        assert_eq!(p.valid_before, t(10 + USER_CERTIFICATE_MAX_SECS));
        let p = user_certificate(&g, &vera, "hmi-1", true, t(1000)).unwrap();
        assert_eq!(p.valid_after, t(1000 - CLOCK_SKEW_SECS));
        // Late: the grant's expiry.
        let p = user_certificate(&g, &vera, "hmi-1", true, t(7000)).unwrap();
        assert_eq!(p.valid_before, t(7200));
        let p = target_certificate(
            &g,
            "hmi-1",
            true,
            Some("ops"),
            SshTargetAuth::Certificate,
            t(1000),
        )
        .unwrap();
        assert_eq!(p.valid_before, t(1000 + TARGET_CERTIFICATE_MAX_SECS));
        // Fractions of seconds: never past the grant, never before it.
        let mut g2 = g.clone();
        g2.not_before = t(0) + Duration::milliseconds(500);
        g2.expires_at = t(100) + Duration::milliseconds(700);
        let p = user_certificate(
            &g2,
            &vera,
            "hmi-1",
            true,
            t(20) + Duration::milliseconds(900),
        )
        .unwrap();
        assert_eq!((p.valid_after, p.valid_before), (t(1), t(100)));
        // Less than a second left: refused rather than an empty certificate.
        let err = user_certificate(&g2, &vera, "hmi-1", true, t(100)).unwrap_err();
        assert_eq!(err.code(), "wrong_state");
    }

    #[test]
    fn one_key_one_grant() {
        let g = grant(vec![ssh("hmi-1", None)]);
        let plan = user_certificate(&g, &identity("vera", &[]), "hmi-1", true, t(1)).unwrap();
        let e = |grant_id, kind, principal| EarlierCertificate {
            grant_id,
            kind,
            principal,
        };
        assert!(check_key_reuse(&plan, &[]).is_ok());
        assert!(check_key_reuse(&plan, &[e("g-1", CertificateKind::User, "vera")]).is_ok());
        for earlier in [
            e("g-2", CertificateKind::User, "vera"),
            e("g-1", CertificateKind::User, "alice"),
            e("g-1", CertificateKind::Target, "vera"),
        ] {
            let err = check_key_reuse(&plan, &[e("g-1", CertificateKind::User, "vera"), earlier])
                .unwrap_err();
            assert_eq!(err.code(), "public_key_reused");
            assert!(
                !err.to_string().contains("g-2"),
                "names no other grant: {err}"
            );
        }
    }

    proptest! {
        #[test]
        fn validity_never_leaves_the_grant(
            start in 0i64..10_000, len in 1i64..100_000, at in 0i64..200_000, ms in 0i64..1000,
        ) {
            let mut g = grant(vec![ssh("a", None)]);
            g.not_before = t(start) + Duration::milliseconds(ms);
            g.expires_at = g.not_before + Duration::seconds(len);
            let now = t(at) + Duration::milliseconds(ms);
            for kind in [CertificateKind::User, CertificateKind::Target] {
                match window(&g, now, kind.max_lifetime()) {
                    Ok((after, before)) => {
                        prop_assert!(after >= g.not_before);
                        prop_assert!(before <= g.expires_at);
                        prop_assert!(after < before);
                        prop_assert!(before <= now + kind.max_lifetime());
                        // At most the rest of the second the grant opened in.
                        prop_assert!(after < now + Duration::seconds(1));
                    }
                    Err(e) => prop_assert_eq!(e.code(), "wrong_state"),
                }
            }
        }
    }
}
