//! Who acts (identities, their orgs) and on what (sites, zones, assets), and the TOML
//! inventory file that declares them. See `docs/inventory.md` for the file format.

use crate::CoreError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IdentityKind {
    /// Operator, engineer, security staff of the plant.
    Human,
    /// A human working for a supplier organisation (remote maintenance).
    Vendor,
    /// A non-human identity: service account, script, CI job.
    Workload,
}

impl IdentityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Human => "human",
            IdentityKind::Vendor => "vendor",
            IdentityKind::Workload => "workload",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum IdentityStatus {
    #[default]
    Active,
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Stable login name, e.g. `alice` or `svc-historian`.
    pub id: String,
    pub kind: IdentityKind,
    #[serde(default)]
    pub name: String,
    /// Organisation; required for vendors (their supplier), optional otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Roles such as `engineer`, `operator`, `oncall`, `security`, `admin`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Free-form groups (teams) that policies can name as approvers.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Sites this identity works at (approver eligibility is often per site).
    #[serde(default)]
    pub sites: Vec<String>,
    /// For workloads: the humans responsible for it, who may request on its behalf.
    #[serde(default)]
    pub owners: Vec<String>,
    #[serde(default)]
    pub status: IdentityStatus,
}

impl Identity {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
    pub fn at_site(&self, site: &str) -> bool {
        self.sites.iter().any(|s| s == site)
    }
    pub fn is_active(&self) -> bool {
        self.status == IdentityStatus::Active
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum OrgStatus {
    #[default]
    Active,
    Suspended,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Org {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// `true` for supplier organisations whose people are `vendor` identities.
    #[serde(default)]
    pub vendor: bool,
    #[serde(default)]
    pub status: OrgStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Zones of the site (IEC 62443 zones/conduits), e.g. `cell-1`, `dmz`.
    #[serde(default)]
    pub zones: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    Low,
    Medium,
    High,
    Safety,
}

impl Criticality {
    pub fn as_str(self) -> &'static str {
        match self {
            Criticality::Low => "low",
            Criticality::Medium => "medium",
            Criticality::High => "high",
            Criticality::Safety => "safety",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AssetKind {
    Plc,
    Rtu,
    Hmi,
    Historian,
    EngineeringWorkstation,
    JumpHost,
    Other,
}

impl AssetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Plc => "plc",
            AssetKind::Rtu => "rtu",
            AssetKind::Hmi => "hmi",
            AssetKind::Historian => "historian",
            AssetKind::EngineeringWorkstation => "engineering-workstation",
            AssetKind::JumpHost => "jump-host",
            AssetKind::Other => "other",
        }
    }
}

/// How far jitgate can enforce the end of access on this asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    /// All access passes a jitgate gateway; teardown can be fully verified.
    Brokered,
    /// The device keeps local accounts and cannot enforce expiry; teardown is `partial`.
    Legacy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModbusEndpoint {
    /// `host:port` of the device, as seen from the gateway.
    pub address: String,
    /// Modbus unit identifiers served at that address.
    pub unit_ids: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dnp3Endpoint {
    pub address: String,
    /// DNP3 link address of the outstation.
    pub outstation: u16,
    /// DNP3 link address the master uses.
    pub master: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SshEndpoint {
    /// `host:port` of the SSH server.
    pub host: String,
    /// The account the gateway logs in as on the asset, with a per-session certificate of
    /// jitgate's host-access CA (the asset lists that CA in `TrustedUserCAKeys`). Without
    /// it, no target certificate is issued for the asset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The asset's SSH host key (an OpenSSH public key line, e.g. the `.pub` of
    /// `/etc/ssh/ssh_host_ed25519_key`): the gateway accepts only it. Without it, the key
    /// the gateway sees first is pinned (trust on first use, recorded as an event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// How the gateway logs in as `account`: a per-session certificate (the default), or a
    /// key vaulted at the gateway for assets that cannot trust a CA — a standing key on
    /// the asset, so the teardown of such a grant is honestly `partial`.
    #[serde(default, skip_serializing_if = "SshTargetAuth::is_certificate")]
    pub auth: SshTargetAuth,
}

/// How a gateway authenticates to an asset's SSH server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SshTargetAuth {
    /// A certificate of jitgate's host-access CA issued for one session (≤ 5 minutes, never
    /// past the grant); the asset trusts the CA (`TrustedUserCAKeys`). Nothing standing.
    #[default]
    Certificate,
    /// A key pair kept in the gateway's state directory whose public half is in the
    /// account's `authorized_keys` on the asset. It stays there between grants: held only
    /// by the gateway, but standing.
    VaultedKey,
}

impl SshTargetAuth {
    pub fn is_certificate(&self) -> bool {
        *self == SshTargetAuth::Certificate
    }
}

/// A POSIX-portable user name, as OpenSSH principals for local accounts are: 1-32 of
/// `a-z 0-9 _ . -`, not starting with `-`.
pub fn valid_account(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modbus: Option<ModbusEndpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnp3: Option<Dnp3Endpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    /// Stable id, e.g. `plc-7`.
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub kind: AssetKind,
    pub site: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    pub criticality: Criticality,
    pub enforcement: Enforcement,
    #[serde(default)]
    pub endpoints: Endpoints,
    /// For legacy assets: what cannot be enforced (written into every teardown verdict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limitation: Option<String>,
    /// Compensating controls the asset's record requires (e.g. `jump-host-isolation`).
    #[serde(default)]
    pub compensating_controls: Vec<String>,
    /// `true` while the asset is locked out (e.g. during a safety shutdown): no access.
    #[serde(default)]
    pub lockout: bool,
    /// The jitgate gateway that fronts this asset (the id of a `workload` identity with the
    /// `gateway` role). Required for access through `jitgate connect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

/// The whole inventory file: `[[site]]`, `[[org]]`, `[[identity]]`, `[[asset]]` tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    #[serde(default, rename = "site")]
    pub sites: Vec<Site>,
    #[serde(default, rename = "org")]
    pub orgs: Vec<Org>,
    #[serde(default, rename = "identity")]
    pub identities: Vec<Identity>,
    #[serde(default, rename = "asset")]
    pub assets: Vec<Asset>,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Inventory {
    /// Parse a TOML inventory and check every cross-reference. Errors name the table and id.
    pub fn from_toml(text: &str) -> Result<Self, CoreError> {
        let inv: Inventory =
            toml::from_str(text).map_err(|e| CoreError::InvalidInventory(e.to_string()))?;
        inv.validate()?;
        Ok(inv)
    }

    /// Check ids, uniqueness and references between sites, orgs, identities and assets.
    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = |m: String| Err(CoreError::InvalidInventory(m));
        let mut sites = BTreeMap::new();
        for s in &self.sites {
            if !valid_id(&s.id) {
                return bad(format!("site id {:?} must be 1-64 of [A-Za-z0-9-_.]", s.id));
            }
            if sites.insert(s.id.as_str(), s).is_some() {
                return bad(format!("site {} is declared twice", s.id));
            }
        }
        let mut orgs = BTreeSet::new();
        for o in &self.orgs {
            if !valid_id(&o.id) {
                return bad(format!("org id {:?} must be 1-64 of [A-Za-z0-9-_.]", o.id));
            }
            if !orgs.insert(o.id.as_str()) {
                return bad(format!("org {} is declared twice", o.id));
            }
        }
        let mut ids = BTreeSet::new();
        for i in &self.identities {
            validate_identity(i, &sites, &orgs)?;
            if !ids.insert(i.id.as_str()) {
                return bad(format!("identity {} is declared twice", i.id));
            }
        }
        for i in &self.identities {
            for owner in &i.owners {
                if !ids.contains(owner.as_str()) {
                    return bad(format!(
                        "identity {}: owner {} is not a declared identity",
                        i.id, owner
                    ));
                }
            }
        }
        let mut assets = BTreeSet::new();
        for a in &self.assets {
            validate_asset(a, &sites)?;
            if let Some(gw) = &a.gateway {
                let ok = self.identities.iter().any(|i| {
                    &i.id == gw && i.kind == IdentityKind::Workload && i.has_role("gateway")
                });
                if !ok {
                    return bad(format!(
                        "asset {}: gateway {gw} must be a declared workload identity with role `gateway`",
                        a.id
                    ));
                }
            }
            if !assets.insert(a.id.as_str()) {
                return bad(format!("asset {} is declared twice", a.id));
            }
        }
        Ok(())
    }
}

/// Check one identity against the known sites and orgs.
pub fn validate_identity(
    i: &Identity,
    sites: &BTreeMap<&str, &Site>,
    orgs: &BTreeSet<&str>,
) -> Result<(), CoreError> {
    let bad = |m: String| Err(CoreError::InvalidInventory(m));
    if !valid_id(&i.id) {
        return bad(format!(
            "identity id {:?} must be 1-64 of [A-Za-z0-9-_.]",
            i.id
        ));
    }
    if i.id.starts_with("system") {
        return bad(format!(
            "identity id {:?}: ids starting with `system` are reserved",
            i.id
        ));
    }
    match (&i.kind, &i.org) {
        (IdentityKind::Vendor, None) => {
            return bad(format!(
                "identity {}: a vendor needs `org` (its supplier)",
                i.id
            ))
        }
        (_, Some(org)) if !orgs.contains(org.as_str()) => {
            return bad(format!(
                "identity {}: org {} is not declared in [[org]]",
                i.id, org
            ))
        }
        _ => {}
    }
    if i.kind == IdentityKind::Workload && i.owners.is_empty() {
        return bad(format!(
            "identity {}: a workload needs `owners` (the humans responsible for it)",
            i.id
        ));
    }
    for s in &i.sites {
        if !sites.contains_key(s.as_str()) {
            return bad(format!(
                "identity {}: site {} is not declared in [[site]]",
                i.id, s
            ));
        }
    }
    Ok(())
}

/// Check one asset against the known sites.
/// The first DNP3 link address that is not a device's own (0xFFF0 and up are reserved,
/// 0xFFFD..=0xFFFF broadcast).
pub const DNP3_RESERVED_ADDRESSES: u16 = 0xFFF0;

pub fn validate_asset(a: &Asset, sites: &BTreeMap<&str, &Site>) -> Result<(), CoreError> {
    let bad = |m: String| Err(CoreError::InvalidInventory(m));
    if !valid_id(&a.id) {
        return bad(format!(
            "asset id {:?} must be 1-64 of [A-Za-z0-9-_.]",
            a.id
        ));
    }
    let Some(site) = sites.get(a.site.as_str()) else {
        return bad(format!(
            "asset {}: site {} is not declared in [[site]]",
            a.id, a.site
        ));
    };
    if let Some(zone) = &a.zone {
        if !site.zones.iter().any(|z| z == zone) {
            return bad(format!(
                "asset {}: zone {} is not a zone of site {}",
                a.id, zone, a.site
            ));
        }
    }
    if let Some(m) = &a.endpoints.modbus {
        if m.unit_ids.is_empty() {
            return bad(format!(
                "asset {}: modbus endpoint needs at least one unit id",
                a.id
            ));
        }
    }
    if let Some(d) = &a.endpoints.dnp3 {
        // IEEE 1815 reserves 0xFFF0..=0xFFFF (0xFFFD..=0xFFFF are broadcast): an endpoint
        // bound to one would let the gateway pass frames every outstation on the link obeys.
        for (role, addr) in [("outstation", d.outstation), ("master", d.master)] {
            if addr >= DNP3_RESERVED_ADDRESSES {
                return bad(format!(
                    "asset {}: dnp3 {role} address {addr} (0x{addr:04X}) is reserved or broadcast (0xFFF0-0xFFFF); use the device's own link address, 0-65519",
                    a.id
                ));
            }
        }
        if d.outstation == d.master {
            return bad(format!(
                "asset {}: dnp3 outstation and master addresses are both {}; a link has two ends",
                a.id, d.master
            ));
        }
    }
    if let Some(account) = a.endpoints.ssh.as_ref().and_then(|s| s.account.as_ref()) {
        if !valid_account(account) {
            return bad(format!(
                "asset {}: ssh account {account:?} must be 1-32 of [a-z0-9_.-], not starting with `-`",
                a.id
            ));
        }
    }
    if let Some(ssh) = a
        .endpoints
        .ssh
        .as_ref()
        .filter(|s| s.auth == SshTargetAuth::VaultedKey && s.account.is_none())
    {
        return bad(format!(
            "asset {}: ssh auth = \"vaulted_key\" needs the `account` whose authorized_keys holds the gateway's vaulted key (host {})",
            a.id, ssh.host
        ));
    }
    if let Some(key) = a.endpoints.ssh.as_ref().and_then(|s| s.host_key.as_ref()) {
        // The shape only (the core does no cryptography): `<algorithm> <base64> [comment]`.
        let mut words = key.split_whitespace();
        let shaped = matches!(
            (words.next(), words.next()),
            (Some(alg), Some(_)) if alg.starts_with("ssh-") || alg.starts_with("ecdsa-")
        );
        if !shaped || key.len() > 8192 || key.contains(['\n', '\r']) {
            return bad(format!(
                "asset {}: ssh host_key must be one OpenSSH public key line (`ssh-ed25519 AAAA…`), as in the asset's /etc/ssh/ssh_host_*_key.pub",
                a.id
            ));
        }
    }
    if a.enforcement == Enforcement::Legacy && a.limitation.is_none() {
        return bad(format!(
            "asset {}: a legacy asset must state its `limitation` (what jitgate cannot enforce)",
            a.id
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[[site]]
id = "north"
zones = ["cell-1"]

[[org]]
id = "acme"
vendor = true

[[identity]]
id = "alice"
kind = "human"
roles = ["engineer"]
sites = ["north"]

[[identity]]
id = "vera"
kind = "vendor"
org = "acme"

[[identity]]
id = "svc-hist"
kind = "workload"
owners = ["alice"]

[[asset]]
id = "plc-7"
kind = "plc"
site = "north"
zone = "cell-1"
criticality = "safety"
enforcement = "brokered"
endpoints.modbus = { address = "10.0.0.7:502", unit_ids = [1] }
"#;

    #[test]
    fn sample_parses() {
        let inv = Inventory::from_toml(SAMPLE).unwrap();
        assert_eq!(inv.assets[0].criticality, Criticality::Safety);
        assert_eq!(inv.identities.len(), 3);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Inventory::from_toml(&SAMPLE.replace("zone = \"cell-1\"", "zonez = \"x\""))
            .unwrap_err();
        assert!(err.to_string().contains("zonez"), "{err}");
    }

    #[test]
    fn vendor_without_org_is_refused() {
        let err = Inventory::from_toml(&SAMPLE.replace("org = \"acme\"\n", "")).unwrap_err();
        assert!(err.to_string().contains("needs `org`"), "{err}");
    }

    #[test]
    fn asset_on_unknown_site_is_refused() {
        let err = Inventory::from_toml(
            &SAMPLE.replace("site = \"north\"\nzone", "site = \"south\"\nzone"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("site south"), "{err}");
    }

    #[test]
    fn dnp3_endpoints_take_device_addresses_only() {
        let with = |outstation: u32, master: u32| {
            Inventory::from_toml(&SAMPLE.replace(
                "endpoints.modbus = { address = \"10.0.0.7:502\", unit_ids = [1] }",
                &format!(
                    "endpoints.dnp3 = {{ address = \"10.0.0.7:20000\", outstation = {outstation}, master = {master} }}"
                ),
            ))
        };
        assert!(with(10, 1).is_ok());
        assert!(with(65519, 1).is_ok());
        for broadcast in [0xFFF0, 0xFFFD, 0xFFFF] {
            let err = with(broadcast, 1).unwrap_err().to_string();
            assert!(err.contains("reserved or broadcast"), "{err}");
            let err = with(10, broadcast).unwrap_err().to_string();
            assert!(err.contains("master address"), "{err}");
        }
        let err = with(7, 7).unwrap_err().to_string();
        assert!(err.contains("a link has two ends"), "{err}");
    }
}
