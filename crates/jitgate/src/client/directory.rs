//! Who and what: `identities`, `assets`, `sites`, `orgs`, `inventory load`.

use super::http::decode;
use super::text::{self, list_or_dash, Detail};
use super::{prompt, usage, Ctx, PageArgs};
use crate::output::{out, outln};
use clap::Subcommand;
use jitgate_core::{Asset, Enforcement, Identity, IdentityStatus, Org, OrgStatus, Site};
use jitgate_server::api::types::{InventoryLoadBody, InventorySummary, ReasonBody};
use std::path::PathBuf;

/// Largest inventory file sent to the server; far beyond any real plant.
const MAX_INVENTORY_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, Subcommand)]
pub enum IdentitiesCmd {
    /// List identities (the default).
    #[command(
        after_help = "Examples:\n  jitgate identities list\n  jitgate identities list --limit 50"
    )]
    List(PageArgs),
    /// Show one identity.
    #[command(after_help = "Example:\n  jitgate identities show alice")]
    Show {
        /// Identity id.
        id: String,
    },
    /// Disable an identity: its sessions and active grants end at once.
    #[command(
        after_help = "Example:\n  jitgate identities disable vendor-bob --reason 'contract ended'"
    )]
    Disable {
        /// Identity id.
        id: String,
        /// Why (recorded in the evidence log).
        #[arg(long)]
        reason: String,
    },
    /// Enable a disabled identity again.
    #[command(after_help = "Example:\n  jitgate identities enable vendor-bob")]
    Enable {
        /// Identity id.
        id: String,
    },
    /// End an identity's lockout after failed sign-ins or step-up codes (admin).
    #[command(after_help = "Example:\n  jitgate identities unlock alice")]
    Unlock {
        /// Identity id (as people type it when signing in).
        id: String,
    },
    /// Set another identity's password (admin; asked twice on the terminal, or one line of
    /// stdin). Every session of that identity ends. Your own: `jitgate password`.
    #[command(after_help = "Examples:\n  jitgate identities set-password alice\n  \
        printf '%s' \"$PW\" | jitgate identities set-password alice --password-stdin")]
    SetPassword {
        /// Identity id.
        id: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AssetsCmd {
    /// List assets (the default).
    #[command(after_help = "Examples:\n  jitgate assets list\n  jitgate assets list --limit 50")]
    List(PageArgs),
    /// Show one asset with its endpoints and enforcement.
    #[command(after_help = "Example:\n  jitgate assets show plc-7")]
    Show {
        /// Asset id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum InventoryCmd {
    /// Send an inventory TOML file to the server, which validates and applies it.
    #[command(after_help = "Example:\n  jitgate inventory load examples/inventory.toml")]
    Load {
        /// The inventory file (TOML: [[site]], [[org]], [[identity]], [[asset]]).
        file: PathBuf,
    },
}

pub async fn identities(ctx: &Ctx, cmd: Option<IdentitiesCmd>) -> anyhow::Result<()> {
    match cmd.unwrap_or(IdentitiesCmd::List(PageArgs::default())) {
        IdentitiesCmd::List(page) => {
            let raw = ctx.list(&["identities"], &[], &page).await?;
            if ctx.printed_json(&raw) {
                return Ok(());
            }
            let list: Vec<Identity> = decode(raw)?;
            outln!("{}", identities_table(&list));
        }
        IdentitiesCmd::Show { id } => {
            let raw = ctx.http.get(&["identities", &id], &[]).await?;
            if ctx.printed_json(&raw) {
                return Ok(());
            }
            let i: Identity = decode(raw)?;
            out!("{}", render_identity(&i));
        }
        IdentitiesCmd::Disable { id, reason } => {
            if reason.trim().is_empty() {
                return Err(usage("--reason is empty: say why the identity is disabled"));
            }
            let raw = ctx
                .http
                .post(&["identities", &id, "disable"], &ReasonBody { reason })
                .await?;
            if ctx.printed_json(&raw) {
                return Ok(());
            }
            let i: Identity = decode(raw)?;
            outln!(
                "disabled {}: its active grants end and new requests are refused",
                i.id
            );
        }
        IdentitiesCmd::Enable { id } => {
            let raw = ctx.http.post_empty(&["identities", &id, "enable"]).await?;
            if ctx.printed_json(&raw) {
                return Ok(());
            }
            let i: Identity = decode(raw)?;
            outln!("enabled {}", i.id);
        }
        IdentitiesCmd::Unlock { id } => super::account::unlock(ctx, &id).await?,
        IdentitiesCmd::SetPassword { id, password_stdin } => {
            let password =
                prompt::password(password_stdin, &format!("New password for {id}: "), true)?;
            let body = jitgate_server::api::types::PasswordBody { password };
            let raw = ctx
                .http
                .post(&["identities", &id, "password"], &body)
                .await?;
            if ctx.printed_json(&raw) {
                return Ok(());
            }
            outln!("password of {id} set");
        }
    }
    Ok(())
}

pub async fn assets(ctx: &Ctx, cmd: Option<AssetsCmd>) -> anyhow::Result<()> {
    match cmd.unwrap_or(AssetsCmd::List(PageArgs::default())) {
        AssetsCmd::List(page) => {
            let raw = ctx.list(&["assets"], &[], &page).await?;
            if ctx.printed_json(&raw) {
                return Ok(());
            }
            let list: Vec<Asset> = decode(raw)?;
            outln!("{}", assets_table(&list));
        }
        AssetsCmd::Show { id } => {
            let raw = ctx.http.get(&["assets", &id], &[]).await?;
            if ctx.printed_json(&raw) {
                return Ok(());
            }
            let a: Asset = decode(raw)?;
            out!("{}", render_asset(&a));
        }
    }
    Ok(())
}

pub async fn sites(ctx: &Ctx, page: &PageArgs) -> anyhow::Result<()> {
    let raw = ctx.list(&["sites"], &[], page).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let list: Vec<Site> = decode(raw)?;
    let mut t = text::table(&["id", "name", "zones"]);
    for s in &list {
        t.add_row(vec![s.id.clone(), s.name.clone(), list_or_dash(&s.zones)]);
    }
    outln!("{t}");
    Ok(())
}

pub async fn orgs(ctx: &Ctx, page: &PageArgs) -> anyhow::Result<()> {
    let raw = ctx.list(&["orgs"], &[], page).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let list: Vec<Org> = decode(raw)?;
    let mut t = text::table(&["id", "name", "kind", "status"]);
    for o in &list {
        t.add_row(vec![
            o.id.clone(),
            o.name.clone(),
            if o.vendor {
                "supplier".into()
            } else {
                "own".into()
            },
            match o.status {
                OrgStatus::Active => "active".to_string(),
                OrgStatus::Suspended => "suspended".to_string(),
            },
        ]);
    }
    outln!("{t}");
    Ok(())
}

pub async fn inventory(ctx: &Ctx, cmd: InventoryCmd) -> anyhow::Result<()> {
    let InventoryCmd::Load { file } = cmd;
    let size = std::fs::metadata(&file)
        .map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?
        .len();
    if size > MAX_INVENTORY_BYTES {
        return Err(usage(format!(
            "{} is {size} bytes; inventory files are limited to {MAX_INVENTORY_BYTES}",
            file.display()
        )));
    }
    let toml = std::fs::read_to_string(&file)
        .map_err(|e| usage(format!("cannot read {}: {e}", file.display())))?;
    let raw = ctx
        .http
        .post(&["inventory"], &InventoryLoadBody { toml })
        .await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let s: InventorySummary = decode(raw)?;
    outln!(
        "loaded {}: {} sites, {} orgs, {} identities, {} assets",
        file.display(),
        s.sites,
        s.orgs,
        s.identities,
        s.assets
    );
    Ok(())
}

fn status_word(s: IdentityStatus) -> &'static str {
    match s {
        IdentityStatus::Active => "active",
        IdentityStatus::Disabled => "disabled",
    }
}

pub fn identities_table(list: &[Identity]) -> comfy_table::Table {
    let mut t = text::table(&["id", "kind", "name", "org", "roles", "sites", "status"]);
    for i in list {
        t.add_row(vec![
            i.id.clone(),
            i.kind.as_str().to_string(),
            i.name.clone(),
            i.org.clone().unwrap_or_else(|| "-".into()),
            list_or_dash(&i.roles),
            list_or_dash(&i.sites),
            status_word(i.status).to_string(),
        ]);
    }
    t
}

pub fn render_identity(i: &Identity) -> String {
    let mut d = Detail::new();
    d.row("identity", i.id.clone())
        .row("kind", i.kind.as_str())
        .row(
            "name",
            if i.name.is_empty() {
                "-".into()
            } else {
                i.name.clone()
            },
        )
        .row("org", i.org.clone().unwrap_or_else(|| "-".into()))
        .row("roles", list_or_dash(&i.roles))
        .row("groups", list_or_dash(&i.groups))
        .row("sites", list_or_dash(&i.sites));
    if !i.owners.is_empty() {
        d.row("owners", i.owners.join(", "));
    }
    d.row("status", status_word(i.status));
    d.render()
}

/// `modbus, ssh`: the protocols an asset exposes.
fn protocols(a: &Asset) -> String {
    let e = &a.endpoints;
    let mut p = Vec::new();
    if e.modbus.is_some() {
        p.push("modbus");
    }
    if e.dnp3.is_some() {
        p.push("dnp3");
    }
    if e.ssh.is_some() {
        p.push("ssh");
    }
    if p.is_empty() {
        "-".into()
    } else {
        p.join(", ")
    }
}

fn enforcement_word(e: Enforcement) -> &'static str {
    match e {
        Enforcement::Brokered => "brokered",
        Enforcement::Legacy => "legacy",
    }
}

pub fn assets_table(list: &[Asset]) -> comfy_table::Table {
    let mut t = text::table(&[
        "id",
        "kind",
        "site",
        "zone",
        "criticality",
        "enforcement",
        "protocols",
        "lockout",
    ]);
    for a in list {
        t.add_row(vec![
            a.id.clone(),
            a.kind.as_str().to_string(),
            a.site.clone(),
            a.zone.clone().unwrap_or_else(|| "-".into()),
            a.criticality.as_str().to_string(),
            enforcement_word(a.enforcement).to_string(),
            protocols(a),
            if a.lockout {
                "LOCKED OUT".into()
            } else {
                "-".into()
            },
        ]);
    }
    t
}

pub fn render_asset(a: &Asset) -> String {
    let mut d = Detail::new();
    d.row("asset", a.id.clone());
    if !a.name.is_empty() {
        d.row("name", a.name.clone());
    }
    d.row("kind", a.kind.as_str())
        .row("site", a.site.clone())
        .row("zone", a.zone.clone().unwrap_or_else(|| "-".into()))
        .row("criticality", a.criticality.as_str())
        .row(
            "enforcement",
            match a.enforcement {
                Enforcement::Brokered => "brokered (all access through a jitgate gateway)",
                Enforcement::Legacy => "legacy (local accounts remain; teardown is partial)",
            },
        );
    if let Some(m) = &a.endpoints.modbus {
        let units: Vec<String> = m.unit_ids.iter().map(u8::to_string).collect();
        d.row(
            "modbus",
            format!("{} (units {})", m.address, units.join(", ")),
        );
    }
    if let Some(n) = &a.endpoints.dnp3 {
        d.row(
            "dnp3",
            format!(
                "{} (outstation {}, master {})",
                n.address, n.outstation, n.master
            ),
        );
    }
    if let Some(s) = &a.endpoints.ssh {
        d.row("ssh", s.host.clone());
    }
    if let Some(l) = &a.limitation {
        d.row("limitation", l.clone());
    }
    if !a.compensating_controls.is_empty() {
        d.lines("compensating", &a.compensating_controls);
    }
    d.row(
        "lockout",
        if a.lockout {
            "yes: no access while locked out"
        } else {
            "no"
        },
    );
    d.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testdata;
    use jitgate_core::inventory::{Endpoints, ModbusEndpoint};
    use jitgate_core::{AssetKind, Criticality};

    fn plc() -> Asset {
        Asset {
            id: "plc-7".into(),
            name: "Boiler PLC".into(),
            kind: AssetKind::Plc,
            site: "north".into(),
            zone: Some("cell-1".into()),
            criticality: Criticality::Safety,
            enforcement: Enforcement::Legacy,
            endpoints: Endpoints {
                modbus: Some(ModbusEndpoint {
                    address: "10.0.0.7:502".into(),
                    unit_ids: vec![1, 2],
                }),
                dnp3: None,
                ssh: None,
            },
            limitation: Some("local admin account remains".into()),
            compensating_controls: vec!["jump-host-isolation".into()],
            lockout: false,
            gateway: None,
        }
    }

    #[test]
    fn asset_detail_and_table() {
        let out = render_asset(&plc());
        assert!(out.contains("10.0.0.7:502 (units 1, 2)"), "{out}");
        assert!(out.contains("teardown is partial"), "{out}");
        assert!(out.contains("jump-host-isolation"), "{out}");
        let t = assets_table(&[plc()]).to_string();
        assert!(
            t.contains("safety") && t.contains("legacy") && t.contains("modbus"),
            "{t}"
        );
    }

    #[test]
    fn identity_detail_and_table() {
        let i = testdata::identity("alice");
        assert!(render_identity(&i).contains("roles     engineer"));
        let t = identities_table(&[i]).to_string();
        assert!(
            t.contains("alice") && t.contains("human") && t.contains("active"),
            "{t}"
        );
    }
}
