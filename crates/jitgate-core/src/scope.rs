//! The scope language, its canonical form and its digest (documented in `docs/scope.md`).
//!
//! A user writes rules per protocol (`read holding 0-99 unit 1`); [`parse_rule`] checks each
//! against what the asset exposes and expands it into [`ScopeItem`]s (one per unit and
//! range). [`Scope::new`] normalises the items — merges overlapping and adjacent ranges,
//! removes duplicates, sorts — so that two ways of writing the same access give the same
//! canonical text and therefore the same digest. An approval is bound to that digest.

use crate::inventory::Asset;
use crate::CoreError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fmt;
use utoipa::ToSchema;

mod dnp3;
pub use dnp3::{Dnp3Op, Dnp3Target};

/// First line of every canonical scope; bumped only if the canonical form ever changes.
pub const CANONICAL_HEADER: &str = "jitgate-scope/v1";

/// Longest rule text accepted, so a request body cannot make the parser do unbounded work.
const MAX_RULE_LEN: usize = 512;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Modbus,
    Dnp3,
    Ssh,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Modbus => "modbus",
            Protocol::Dnp3 => "dnp3",
            Protocol::Ssh => "ssh",
        }
    }

    /// Carried through `jitgate connect`'s tunnel (SSH has the gateway's own listener).
    pub fn is_tunnelled(self) -> bool {
        matches!(self, Protocol::Modbus | Protocol::Dnp3)
    }

    fn has_endpoint(self, asset: &Asset) -> bool {
        match self {
            Protocol::Modbus => asset.endpoints.modbus.is_some(),
            Protocol::Dnp3 => asset.endpoints.dnp3.is_some(),
            Protocol::Ssh => asset.endpoints.ssh.is_some(),
        }
    }
}

/// The tunnel protocols `items` name on `asset` that it has an endpoint for, in a fixed
/// order: what a grant's tunnel can carry to that asset.
pub fn tunnel_protocols(items: &[ScopeItem], asset: &Asset) -> Vec<Protocol> {
    [Protocol::Modbus, Protocol::Dnp3]
        .into_iter()
        .filter(|p| p.has_endpoint(asset))
        .filter(|p| {
            items
                .iter()
                .any(|i| i.protocol() == *p && i.asset() == asset.id)
        })
        .collect()
}

/// The protocol of a tunnel session: the one the client asked for (`modbus`, `dnp3`) if the
/// grant offers it on the asset, else the only one it offers. Refusals: a client that names
/// none where two are offered (`protocol_required`), a protocol the grant does not give
/// there (`protocol_not_granted`), a word that is no tunnel protocol (`bad_handshake`).
pub fn choose_tunnel_protocol(
    requested: Option<&str>,
    offered: &[Protocol],
    asset: &str,
) -> Result<Protocol, (&'static str, String)> {
    let names = || {
        offered
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match requested {
        Some(word) => {
            let p = match word {
                "modbus" => Protocol::Modbus,
                "dnp3" => Protocol::Dnp3,
                "ssh" => {
                    return Err((
                        "bad_handshake",
                        "SSH does not travel through the tunnel: use `jitgate ssh`".into(),
                    ))
                }
                other => {
                    return Err((
                        "bad_handshake",
                        format!("{other:?} is not a tunnel protocol (modbus, dnp3)"),
                    ))
                }
            };
            if offered.contains(&p) {
                Ok(p)
            } else {
                Err((
                    "protocol_not_granted",
                    format!(
                        "the grant gives no {} access to {asset} (it gives: {})",
                        p.as_str(),
                        if offered.is_empty() {
                            "none through the tunnel".to_string()
                        } else {
                            names()
                        }
                    ),
                ))
            }
        }
        None => match offered {
            [one] => Ok(*one),
            [] => Err((
                "protocol_not_granted",
                format!("the grant gives no Modbus or DNP3 access to {asset}"),
            )),
            _ => Err((
                "protocol_required",
                format!(
                    "the grant gives {} access to {asset}: say which (jitgate connect --protocol)",
                    names()
                ),
            )),
        },
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ModbusOp {
    Read,
    Write,
    /// Diagnostics, device identification and vendor programming function codes.
    Programming,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ModbusTable {
    Coil,
    Discrete,
    Input,
    Holding,
}

impl ModbusTable {
    fn as_str(self) -> &'static str {
        match self {
            ModbusTable::Coil => "coil",
            ModbusTable::Discrete => "discrete",
            ModbusTable::Input => "input",
            ModbusTable::Holding => "holding",
        }
    }
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "coil" | "coils" => ModbusTable::Coil,
            "discrete" | "discretes" | "discrete-input" | "discrete-inputs" | "di" => {
                ModbusTable::Discrete
            }
            "input" | "inputs" | "input-register" | "input-registers" | "ir" => ModbusTable::Input,
            "holding" | "holdings" | "holding-register" | "holding-registers" | "hr" => {
                ModbusTable::Holding
            }
            _ => return None,
        })
    }
}

/// One unit of access: on one asset, through one protocol, one operation on one range.
///
/// Its JSON (API, stored grants, token claims) is [`ScopeItemJson`]: every SSH item is
/// `{"protocol": "ssh", "asset": …}` with at most one of `command`, `sftp`, `forward`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "ScopeItemJson", into = "ScopeItemJson")]
pub enum ScopeItem {
    Modbus {
        asset: String,
        unit: u8,
        op: ModbusOp,
        /// `None` only for `programming`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        table: Option<ModbusTable>,
        /// Inclusive address range; `0-0` for `programming`.
        start: u16,
        end: u16,
    },
    Dnp3 {
        asset: String,
        op: Dnp3Op,
        target: Dnp3Target,
        start: u16,
        end: u16,
    },
    Ssh {
        asset: String,
        /// `None` = interactive shell; `Some(cmd)` = exactly this command.
        command: Option<String>,
    },
    /// SSH file transfer (the `sftp` subsystem, which `scp` also uses).
    SshSftp { asset: String },
    /// SSH port forwarding from the asset to exactly this destination (`ssh -L`, `ssh -W`).
    SshForward {
        asset: String,
        target: ForwardTarget,
    },
}

/// The JSON form of a [`ScopeItem`]: what the API shows and tokens carry. SSH items share
/// `"protocol": "ssh"`; unknown fields are refused so that an item is never read as less
/// than it says (an `sftp` item mistaken for a shell).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "protocol", rename_all = "lowercase", deny_unknown_fields)]
pub enum ScopeItemJson {
    Modbus {
        asset: String,
        unit: u8,
        op: ModbusOp,
        /// `None` only for `programming`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        table: Option<ModbusTable>,
        /// Inclusive address range; `0-0` for `programming`.
        start: u16,
        end: u16,
    },
    Dnp3 {
        asset: String,
        op: Dnp3Op,
        target: Dnp3Target,
        start: u16,
        end: u16,
    },
    /// Shell when none of `command`, `sftp`, `forward` is present.
    Ssh {
        asset: String,
        /// Exactly this command.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
        /// File transfer.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        sftp: bool,
        /// Port forwarding to this `host:port` (canonical form, see docs/scope.md).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        forward: Option<String>,
    },
}

impl TryFrom<ScopeItemJson> for ScopeItem {
    type Error = String;
    fn try_from(j: ScopeItemJson) -> Result<Self, String> {
        Ok(match j {
            ScopeItemJson::Modbus {
                asset,
                unit,
                op,
                table,
                start,
                end,
            } => ScopeItem::Modbus {
                asset,
                unit,
                op,
                table,
                start,
                end,
            },
            ScopeItemJson::Dnp3 {
                asset,
                op,
                target,
                start,
                end,
            } => {
                dnp3::check_item(op, target, start, end)?;
                ScopeItem::Dnp3 {
                    asset,
                    op,
                    target,
                    start,
                    end,
                }
            }
            ScopeItemJson::Ssh {
                asset,
                command,
                sftp,
                forward,
            } => match (command, sftp, forward) {
                (command, false, None) => ScopeItem::Ssh { asset, command },
                (None, true, None) => ScopeItem::SshSftp { asset },
                (None, false, Some(f)) => {
                    let target = ForwardTarget::parse(&f)?;
                    if target.to_string() != f {
                        return Err(format!(
                            "forward {f:?} is not in canonical form; write {target}"
                        ));
                    }
                    ScopeItem::SshForward { asset, target }
                }
                _ => {
                    return Err(
                        "an SSH scope item has at most one of command, sftp and forward".into(),
                    )
                }
            },
        })
    }
}

impl From<ScopeItem> for ScopeItemJson {
    fn from(i: ScopeItem) -> Self {
        match i {
            ScopeItem::Modbus {
                asset,
                unit,
                op,
                table,
                start,
                end,
            } => ScopeItemJson::Modbus {
                asset,
                unit,
                op,
                table,
                start,
                end,
            },
            ScopeItem::Dnp3 {
                asset,
                op,
                target,
                start,
                end,
            } => ScopeItemJson::Dnp3 {
                asset,
                op,
                target,
                start,
                end,
            },
            ScopeItem::Ssh { asset, command } => ScopeItemJson::Ssh {
                asset,
                command,
                sftp: false,
                forward: None,
            },
            ScopeItem::SshSftp { asset } => ScopeItemJson::Ssh {
                asset,
                command: None,
                sftp: true,
                forward: None,
            },
            ScopeItem::SshForward { asset, target } => ScopeItemJson::Ssh {
                asset,
                command: None,
                sftp: false,
                forward: Some(target.to_string()),
            },
        }
    }
}

impl utoipa::PartialSchema for ScopeItem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        ScopeItemJson::schema()
    }
}

impl ToSchema for ScopeItem {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("ScopeItem")
    }
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        ScopeItemJson::schemas(schemas)
    }
}

/// Where an SSH `forward` may connect, from the asset: a host (DNS name, IPv4 or IPv6
/// address) and a port. Its text is canonical: lowercase name, IPv6 in brackets and
/// compressed (`[fd00::1]:502`), port without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ForwardTarget {
    host: ForwardHost,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum ForwardHost {
    Name(String),
    V4(std::net::Ipv4Addr),
    V6(std::net::Ipv6Addr),
}

impl ForwardTarget {
    /// Parse `host:port` (`[v6]:port` for IPv6), refusing what is not exactly one
    /// destination: no wildcard, no port 0, no empty or malformed host name.
    pub fn parse(text: &str) -> Result<ForwardTarget, String> {
        let bad = |why: &str| format!("forward target {text:?}: {why}");
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (h, p) = rest
                .split_once("]:")
                .ok_or_else(|| bad("write an IPv6 destination as [address]:port"))?;
            let ip: std::net::Ipv6Addr = h.parse().map_err(|_| bad("not an IPv6 address"))?;
            (ForwardHost::V6(ip), p)
        } else {
            let (h, p) = text
                .rsplit_once(':')
                .ok_or_else(|| bad("expected host:port, e.g. 10.0.3.5:502"))?;
            if h.contains(':') {
                return Err(bad("write an IPv6 destination as [address]:port"));
            }
            let host = match h.parse::<std::net::Ipv4Addr>() {
                Ok(ip) => ForwardHost::V4(ip),
                Err(_) => ForwardHost::Name(host_name(h).ok_or_else(|| {
                    bad("the host is not an IPv4 address nor a DNS name (letters, digits, `-`, dots; no wildcard)")
                })?),
            };
            (host, p)
        };
        let digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        let port: u16 = match port.parse() {
            Ok(p) if digits && p > 0 && !port.starts_with('0') => p,
            _ => return Err(bad("the port must be 1-65535, without leading zeros")),
        };
        if let ForwardHost::V4(ip) = &host {
            if ip.is_unspecified() || ip.is_broadcast() {
                return Err(bad("not one destination"));
            }
        }
        if let ForwardHost::V6(ip) = &host {
            if ip.is_unspecified() {
                return Err(bad("not one destination"));
            }
        }
        Ok(ForwardTarget { host, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host as written in the canonical form (IPv6 without brackets).
    pub fn host(&self) -> String {
        match &self.host {
            ForwardHost::Name(n) => n.clone(),
            ForwardHost::V4(ip) => ip.to_string(),
            ForwardHost::V6(ip) => ip.to_string(),
        }
    }
}

/// A DNS name, lowercased: labels of 1-63 letters, digits and inner `-`, at most 253 bytes.
fn host_name(h: &str) -> Option<String> {
    let h = h.to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    // A numeric last label is an IP address in some notation (`010.0.0.1`, `10.1`), never a
    // name: refused rather than resolved differently by different resolvers.
    let numeric_tld = h
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    (!h.is_empty() && h.len() <= 253 && h.split('.').all(label_ok) && !numeric_tld).then_some(h)
}

impl fmt::Display for ForwardTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            ForwardHost::Name(n) => write!(f, "{n}:{}", self.port),
            ForwardHost::V4(ip) => write!(f, "{ip}:{}", self.port),
            ForwardHost::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

impl ScopeItem {
    pub fn asset(&self) -> &str {
        match self {
            ScopeItem::Modbus { asset, .. }
            | ScopeItem::Dnp3 { asset, .. }
            | ScopeItem::Ssh { asset, .. }
            | ScopeItem::SshSftp { asset }
            | ScopeItem::SshForward { asset, .. } => asset,
        }
    }

    pub fn protocol(&self) -> Protocol {
        match self {
            ScopeItem::Modbus { .. } => Protocol::Modbus,
            ScopeItem::Dnp3 { .. } => Protocol::Dnp3,
            ScopeItem::Ssh { .. } | ScopeItem::SshSftp { .. } | ScopeItem::SshForward { .. } => {
                Protocol::Ssh
            }
        }
    }

    /// The operation name policies see, e.g. `modbus:write`, `dnp3:operate`, `ssh:shell`.
    pub fn operation(&self) -> String {
        match self {
            ScopeItem::Modbus { op, .. } => format!("modbus:{}", modbus_op_str(*op)),
            ScopeItem::Dnp3 { op, .. } => format!("dnp3:{}", op.as_str()),
            ScopeItem::Ssh { command: None, .. } => "ssh:shell".into(),
            ScopeItem::Ssh {
                command: Some(_), ..
            } => "ssh:command".into(),
            ScopeItem::SshSftp { .. } => "ssh:sftp".into(),
            ScopeItem::SshForward { .. } => "ssh:forward".into(),
        }
    }

    /// Read-only items cannot change the process; everything else can.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            ScopeItem::Modbus {
                op: ModbusOp::Read,
                ..
            } | ScopeItem::Dnp3 {
                op: Dnp3Op::Read,
                ..
            }
        )
    }

    /// Key under which ranges of the same kind merge.
    fn merge_key(&self) -> Option<(String, u8, u8, u8)> {
        match self {
            ScopeItem::Modbus {
                asset,
                unit,
                op,
                table: Some(t),
                ..
            } => Some((asset.clone(), 0, *unit, (*op as u8) << 4 | *t as u8)),
            ScopeItem::Dnp3 {
                asset, op, target, ..
            } => Some((asset.clone(), 1, 0, (*op as u8) << 4 | *target as u8)),
            _ => None,
        }
    }

    fn range(&self) -> Option<(u16, u16)> {
        match self {
            ScopeItem::Modbus {
                table: Some(_),
                start,
                end,
                ..
            }
            | ScopeItem::Dnp3 { start, end, .. } => Some((*start, *end)),
            _ => None,
        }
    }

    fn with_range(&self, s: u16, e: u16) -> Self {
        let mut item = self.clone();
        match &mut item {
            ScopeItem::Modbus { start, end, .. } | ScopeItem::Dnp3 { start, end, .. } => {
                *start = s;
                *end = e;
            }
            ScopeItem::Ssh { .. } | ScopeItem::SshSftp { .. } | ScopeItem::SshForward { .. } => {}
        }
        item
    }
}

fn modbus_op_str(op: ModbusOp) -> &'static str {
    match op {
        ModbusOp::Read => "read",
        ModbusOp::Write => "write",
        ModbusOp::Programming => "programming",
    }
}

impl fmt::Display for ScopeItem {
    /// The canonical line of this item (see `docs/scope.md`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeItem::Modbus {
                asset,
                unit,
                op: ModbusOp::Programming,
                ..
            } => {
                write!(f, "{asset} modbus unit={unit} programming")
            }
            ScopeItem::Modbus {
                asset,
                unit,
                op,
                table,
                start,
                end,
            } => {
                let table = table.map(ModbusTable::as_str).unwrap_or("?");
                write!(
                    f,
                    "{asset} modbus unit={unit} {} {table} {start}-{end}",
                    modbus_op_str(*op)
                )
            }
            ScopeItem::Dnp3 {
                asset,
                op,
                target,
                start,
                end,
            } => dnp3::write_line(f, asset, *op, *target, *start, *end),
            ScopeItem::Ssh {
                asset,
                command: None,
            } => write!(f, "{asset} ssh shell"),
            ScopeItem::Ssh {
                asset,
                command: Some(c),
            } => {
                // JSON string escaping makes the line unambiguous whatever the command holds.
                let quoted = serde_json::to_string(c).map_err(|_| fmt::Error)?;
                write!(f, "{asset} ssh command {quoted}")
            }
            ScopeItem::SshSftp { asset } => write!(f, "{asset} ssh sftp"),
            ScopeItem::SshForward { asset, target } => write!(f, "{asset} ssh forward {target}"),
        }
    }
}

/// A normalised set of scope items. Construct with [`Scope::new`]; immutable afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Scope {
    items: Vec<ScopeItem>,
}

impl Scope {
    /// Normalise: merge overlapping/adjacent ranges of the same kind, drop duplicates, sort
    /// by canonical line.
    pub fn new(items: Vec<ScopeItem>) -> Result<Self, CoreError> {
        if items.is_empty() {
            return Err(CoreError::InvalidScope(
                "a scope needs at least one rule, e.g. --modbus 'read holding 0-99 unit 1'".into(),
            ));
        }
        let mut ranged: Vec<ScopeItem> = Vec::new();
        let mut other: BTreeSet<ScopeItem> = BTreeSet::new();
        for item in items {
            if item.merge_key().is_some() {
                ranged.push(item);
            } else {
                other.insert(item);
            }
        }
        ranged.sort_by(|a, b| {
            a.merge_key()
                .cmp(&b.merge_key())
                .then(a.range().cmp(&b.range()))
        });
        let mut merged: Vec<ScopeItem> = Vec::new();
        for item in ranged {
            if let Some(last) = merged.last_mut() {
                if let (Some((ls, le)), Some((s, e))) = (last.range(), item.range()) {
                    if last.merge_key() == item.merge_key() && u32::from(s) <= u32::from(le) + 1 {
                        *last = last.with_range(ls, le.max(e));
                        continue;
                    }
                }
            }
            merged.push(item);
        }
        merged.extend(other);
        merged.sort_by_cached_key(|i| i.to_string());
        Ok(Scope { items: merged })
    }

    pub fn items(&self) -> &[ScopeItem] {
        &self.items
    }

    /// The canonical text: header line then one line per item, each ending in `\n`.
    pub fn canonical(&self) -> String {
        let mut out = String::from(CANONICAL_HEADER);
        out.push('\n');
        for item in &self.items {
            out.push_str(&item.to_string());
            out.push('\n');
        }
        out
    }

    /// Assets named by a scope's canonical text (as `request.submitted` records it), sorted,
    /// each once: every item line starts with its asset. Reports read scopes from the log
    /// this way without re-validating them against today's inventory.
    pub fn assets_of_canonical(text: &str) -> Vec<String> {
        let mut lines = text.lines();
        if lines.next() != Some(CANONICAL_HEADER) {
            return Vec::new();
        }
        let set: BTreeSet<&str> = lines
            .filter_map(|l| l.split(' ').next())
            .filter(|a| !a.is_empty())
            .collect();
        set.into_iter().map(String::from).collect()
    }

    /// `sha256:` + lowercase hex SHA-256 of the UTF-8 canonical text.
    pub fn digest(&self) -> String {
        format!(
            "sha256:{}",
            hex::encode(Sha256::digest(self.canonical().as_bytes()))
        )
    }

    /// Assets named by the scope, sorted, each once.
    pub fn assets(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.items.iter().map(ScopeItem::asset).collect();
        set.into_iter().map(String::from).collect()
    }

    /// Operation names (`modbus:read`, `dnp3:operate`, ...) for policy evaluation.
    pub fn operations(&self) -> BTreeSet<String> {
        self.items.iter().map(ScopeItem::operation).collect()
    }

    pub fn protocols(&self) -> BTreeSet<Protocol> {
        self.items.iter().map(ScopeItem::protocol).collect()
    }

    pub fn is_read_only(&self) -> bool {
        self.items.iter().all(ScopeItem::is_read)
    }

    /// Plain words for people, one phrase per item, e.g. `write coil 10-20 on plc-7 (unit 1)`.
    pub fn describe(&self) -> Vec<String> {
        self.items
            .iter()
            .map(|i| match i {
                ScopeItem::Modbus {
                    asset,
                    unit,
                    op: ModbusOp::Programming,
                    ..
                } => {
                    format!("Modbus programming/diagnostics on {asset} (unit {unit})")
                }
                ScopeItem::Modbus {
                    asset,
                    unit,
                    op,
                    table,
                    start,
                    end,
                } => format!(
                    "Modbus {} {} {} on {asset} (unit {unit})",
                    modbus_op_str(*op),
                    table.map(ModbusTable::as_str).unwrap_or("?"),
                    range_words(*start, *end)
                ),
                ScopeItem::Dnp3 {
                    asset,
                    op,
                    target: Dnp3Target::Device,
                    ..
                } => format!("DNP3 {} on {asset}", op.as_str()),
                ScopeItem::Dnp3 {
                    asset,
                    op,
                    target,
                    start,
                    end,
                } => format!(
                    "DNP3 {} {} {} on {asset}",
                    op.as_str(),
                    target.as_str(),
                    range_words(*start, *end)
                ),
                ScopeItem::Ssh {
                    asset,
                    command: None,
                } => format!("SSH shell on {asset}"),
                ScopeItem::Ssh {
                    asset,
                    command: Some(c),
                } => {
                    format!("SSH command `{c}` on {asset}")
                }
                ScopeItem::SshSftp { asset } => format!("SSH file transfer (sftp) on {asset}"),
                ScopeItem::SshForward { asset, target } => {
                    format!("SSH port forwarding from {asset} to {target}")
                }
            })
            .collect()
    }
}

fn range_words(start: u16, end: u16) -> String {
    if start == end {
        format!("{start}")
    } else {
        format!("{start}–{end}")
    }
}

/// The scope a user asks for on one asset, as rule texts per protocol (API and CLI form).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeRequest {
    pub asset: String,
    #[serde(default)]
    pub modbus: Vec<String>,
    #[serde(default)]
    pub dnp3: Vec<String>,
    #[serde(default)]
    pub ssh: Vec<String>,
}

/// Parse the rules of a [`ScopeRequest`] against its asset.
pub fn parse_request(asset: &Asset, req: &ScopeRequest) -> Result<Vec<ScopeItem>, CoreError> {
    if req.modbus.is_empty() && req.dnp3.is_empty() && req.ssh.is_empty() {
        return Err(CoreError::InvalidScope(format!(
            "no rules for asset {}: add --modbus, --dnp3 or --ssh rules",
            asset.id
        )));
    }
    let mut out = Vec::new();
    for (protocol, rules) in [
        (Protocol::Modbus, &req.modbus),
        (Protocol::Dnp3, &req.dnp3),
        (Protocol::Ssh, &req.ssh),
    ] {
        for rule in rules {
            out.extend(parse_rule(asset, protocol, rule)?);
        }
    }
    Ok(out)
}

/// Parse one rule for `asset`, refusing anything the asset does not expose.
pub fn parse_rule(
    asset: &Asset,
    protocol: Protocol,
    text: &str,
) -> Result<Vec<ScopeItem>, CoreError> {
    if text.len() > MAX_RULE_LEN {
        return Err(CoreError::InvalidScope(format!(
            "rule is {} bytes long; the limit is {MAX_RULE_LEN}",
            text.len()
        )));
    }
    let words: Vec<String> = text
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    match protocol {
        Protocol::Modbus => parse_modbus(asset, &words, text),
        Protocol::Dnp3 => dnp3::parse(asset, &words, text),
        Protocol::Ssh => parse_ssh(asset, text),
    }
}

fn invalid(text: &str, why: impl fmt::Display) -> CoreError {
    CoreError::InvalidScope(format!("{text:?}: {why}"))
}

fn parse_modbus(asset: &Asset, words: &[String], text: &str) -> Result<Vec<ScopeItem>, CoreError> {
    let Some(endpoint) = &asset.endpoints.modbus else {
        return Err(CoreError::ScopeNotExposed {
            asset: asset.id.clone(),
            what: "Modbus/TCP".into(),
        });
    };
    // Split off a trailing `unit N[,M]` clause.
    let (body, units) = match words.iter().position(|w| w == "unit" || w == "units") {
        Some(pos) => {
            let list = words
                .get(pos + 1..)
                .filter(|rest| rest.len() == 1)
                .ok_or_else(|| invalid(text, "write units as `unit 1` or `unit 1,2` at the end"))?;
            let mut units = Vec::new();
            for part in list[0].split(',') {
                let u: u8 = part
                    .parse()
                    .map_err(|_| invalid(text, format!("unit id {part:?} is not 0-255")))?;
                if !endpoint.unit_ids.contains(&u) {
                    return Err(CoreError::ScopeNotExposed {
                        asset: asset.id.clone(),
                        what: format!("Modbus unit {u} (it serves {:?})", endpoint.unit_ids),
                    });
                }
                units.push(u);
            }
            (&words[..pos], units)
        }
        None => match endpoint.unit_ids.as_slice() {
            [only] => (words, vec![*only]),
            many => {
                return Err(invalid(
                    text,
                    format!(
                        "asset {} serves several unit ids {many:?}; name one with `unit N`",
                        asset.id
                    ),
                ))
            }
        },
    };
    let all =
        |op: ModbusOp, tables: &[ModbusTable]| -> Vec<(ModbusOp, Option<ModbusTable>, u16, u16)> {
            tables.iter().map(|t| (op, Some(*t), 0, u16::MAX)).collect()
        };
    use ModbusTable::*;
    let specs: Vec<(ModbusOp, Option<ModbusTable>, u16, u16)> = match body {
        [w] if w == "readonly" => all(ModbusOp::Read, &[Coil, Discrete, Input, Holding]),
        [w] if w == "readwrite" => {
            let mut v = all(ModbusOp::Read, &[Coil, Discrete, Input, Holding]);
            v.extend(all(ModbusOp::Write, &[Coil, Holding]));
            v
        }
        [w] if w == "programming" => vec![(ModbusOp::Programming, None, 0, 0)],
        [op, table, ranges] => {
            let op = match op.as_str() {
                "read" => ModbusOp::Read,
                "write" => ModbusOp::Write,
                other => return Err(invalid(text, format!("unknown operation {other:?}; use read or write"))),
            };
            let table = ModbusTable::parse(table).ok_or_else(|| {
                invalid(text, format!("unknown table {table:?}; use coil, discrete, input or holding"))
            })?;
            if op == ModbusOp::Write && matches!(table, Discrete | Input) {
                return Err(invalid(
                    text,
                    "discrete inputs and input registers are read-only in Modbus; write coil or holding",
                ));
            }
            parse_ranges(ranges, text)?
                .into_iter()
                .map(|(s, e)| (op, Some(table), s, e))
                .collect()
        }
        _ => {
            return Err(invalid(
                text,
                "expected `<read|write> <coil|discrete|input|holding> <from-to>[,...] [unit N]` or readonly/readwrite/programming",
            ))
        }
    };
    let mut items = Vec::new();
    for unit in units {
        for (op, table, start, end) in &specs {
            items.push(ScopeItem::Modbus {
                asset: asset.id.clone(),
                unit,
                op: *op,
                table: *table,
                start: *start,
                end: *end,
            });
        }
    }
    Ok(items)
}

fn parse_ranges(list: &str, text: &str) -> Result<Vec<(u16, u16)>, CoreError> {
    let mut out = Vec::new();
    for part in list.split(',') {
        if part == "all" {
            out.push((0, u16::MAX));
            continue;
        }
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| {
            s.parse::<u16>()
                .map_err(|_| invalid(text, format!("address {s:?} is not a number 0-65535")))
        };
        let (s, e) = (parse(a)?, parse(b)?);
        if s > e {
            return Err(invalid(
                text,
                format!("range {part} runs backwards; write {e}-{s}"),
            ));
        }
        out.push((s, e));
    }
    Ok(out)
}

fn parse_ssh(asset: &Asset, text: &str) -> Result<Vec<ScopeItem>, CoreError> {
    if asset.endpoints.ssh.is_none() {
        return Err(CoreError::ScopeNotExposed {
            asset: asset.id.clone(),
            what: "SSH".into(),
        });
    }
    let trimmed = text.trim();
    if trimmed == "shell" {
        return Ok(vec![ScopeItem::Ssh {
            asset: asset.id.clone(),
            command: None,
        }]);
    }
    // Only the first word is case-insensitive: a command line and a host name keep their
    // bytes (a host name is lowercased by its canonical form).
    let (word, rest) = trimmed
        .split_once(char::is_whitespace)
        .map(|(w, r)| (w, r.trim()))
        .unwrap_or((trimmed, ""));
    match (word.to_ascii_lowercase().as_str(), rest) {
        ("shell", "") => Ok(vec![ScopeItem::Ssh {
            asset: asset.id.clone(),
            command: None,
        }]),
        ("sftp", "") => Ok(vec![ScopeItem::SshSftp {
            asset: asset.id.clone(),
        }]),
        ("command", cmd) if !cmd.is_empty() && !cmd.contains(['\n', '\r', '\0']) => {
            Ok(vec![ScopeItem::Ssh {
                asset: asset.id.clone(),
                command: Some(cmd.to_string()),
            }])
        }
        ("forward", target) if !target.is_empty() && !target.contains(char::is_whitespace) => {
            let target = ForwardTarget::parse(target).map_err(|why| invalid(text, why))?;
            Ok(vec![ScopeItem::SshForward {
                asset: asset.id.clone(),
                target,
            }])
        }
        _ => Err(invalid(
            text,
            "expected `shell`, `command <command line>`, `sftp` or `forward <host:port>`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::*;

    fn plc(units: Vec<u8>) -> Asset {
        Asset {
            id: "plc-7".into(),
            name: String::new(),
            kind: AssetKind::Plc,
            site: "north".into(),
            zone: None,
            criticality: Criticality::Safety,
            enforcement: Enforcement::Brokered,
            endpoints: Endpoints {
                modbus: Some(ModbusEndpoint {
                    address: "127.0.0.1:502".into(),
                    unit_ids: units,
                }),
                dnp3: None,
                ssh: None,
            },
            limitation: None,
            compensating_controls: vec![],
            lockout: false,
            gateway: None,
        }
    }

    fn scope(asset: &Asset, rules: &[&str]) -> Scope {
        let mut items = Vec::new();
        for r in rules {
            items.extend(parse_rule(asset, Protocol::Modbus, r).unwrap());
        }
        Scope::new(items).unwrap()
    }

    #[test]
    fn assets_are_read_back_from_the_canonical_text() {
        let a = plc(vec![1]);
        let s = scope(&a, &["read holding 0-99 unit 1", "write coil 10-20 unit 1"]);
        assert_eq!(Scope::assets_of_canonical(&s.canonical()), vec!["plc-7"]);
        let two = "jitgate-scope/v1\nrtu-12 dnp3 read class 0\nhmi-1 ssh shell\nhmi-1 ssh sftp\n";
        assert_eq!(Scope::assets_of_canonical(two), vec!["hmi-1", "rtu-12"]);
        // Not a scope text: no header, no assets (never a guess).
        assert!(Scope::assets_of_canonical("plc-7 modbus unit=1 read holding 0-9\n").is_empty());
        assert!(Scope::assets_of_canonical("").is_empty());
    }

    #[test]
    fn canonical_text_and_digest_are_fixed() {
        let a = plc(vec![1]);
        let s = scope(&a, &["read holding 0-99 unit 1", "write coil 10-20 unit 1"]);
        assert_eq!(
            s.canonical(),
            "jitgate-scope/v1\nplc-7 modbus unit=1 read holding 0-99\nplc-7 modbus unit=1 write coil 10-20\n"
        );
        // Pinned (computed independently with `sha256sum`); documented in docs/scope.md.
        assert_eq!(
            s.digest(),
            format!(
                "sha256:{}",
                hex::encode(Sha256::digest(s.canonical().as_bytes()))
            )
        );
        assert_eq!(s.digest(), PINNED_DIGEST);
    }

    const PINNED_DIGEST: &str =
        "sha256:faeaee870132b95843461e9d6554e748583d86d3c961df7340f8411c91b4a86b";

    #[test]
    fn equivalent_spellings_share_a_digest() {
        let a = plc(vec![1]);
        let x = scope(&a, &["read holding 0-49,50-99", "write coil 10-20"]);
        let y = scope(
            &a,
            &[
                "WRITE coils 10-15 unit 1",
                "write coil 14-20",
                "read hr 0-99 unit 1",
            ],
        );
        assert_eq!(x.digest(), y.digest());
    }

    #[test]
    fn units_must_be_exposed() {
        let a = plc(vec![1, 2]);
        let err = parse_rule(&a, Protocol::Modbus, "read holding 0-9 unit 3").unwrap_err();
        assert_eq!(err.code(), "scope_not_exposed");
        let err = parse_rule(&a, Protocol::Modbus, "read holding 0-9").unwrap_err();
        assert!(err.to_string().contains("name one"), "{err}");
    }

    #[test]
    fn bad_rules_say_why() {
        let a = plc(vec![1]);
        for (rule, needle) in [
            ("write input 0-9", "read-only"),
            ("read holding 9-0", "backwards"),
            ("read holding 0-70000", "0-65535"),
            ("erase holding 0-1", "unknown operation"),
            ("read fish 0-1", "unknown table"),
        ] {
            let err = parse_rule(&a, Protocol::Modbus, rule).unwrap_err();
            assert!(err.to_string().contains(needle), "{rule}: {err}");
        }
        let err = parse_rule(&a, Protocol::Dnp3, "read class 0").unwrap_err();
        assert_eq!(err.code(), "scope_not_exposed");
    }

    fn hmi() -> Asset {
        let mut a = plc(vec![1]);
        a.id = "hmi-1".into();
        a.endpoints.ssh = Some(SshEndpoint {
            host: "10.0.3.5:22".into(),
            account: None,
            host_key: None,
            auth: Default::default(),
        });
        a
    }

    fn ssh_scope(rules: &[&str]) -> Scope {
        let a = hmi();
        let mut items = Vec::new();
        for r in rules {
            items.extend(parse_rule(&a, Protocol::Ssh, r).unwrap());
        }
        Scope::new(items).unwrap()
    }

    #[test]
    fn ssh_shell_and_command_digests_are_unchanged() {
        // Pinned before `sftp` and `forward` existed: adding words changed no earlier digest.
        let s = ssh_scope(&["shell", "command systemctl status plc-bridge"]);
        assert_eq!(
            s.canonical(),
            "jitgate-scope/v1\nhmi-1 ssh command \"systemctl status plc-bridge\"\nhmi-1 ssh shell\n"
        );
        assert_eq!(
            s.digest(),
            "sha256:9665928f2f2a8a0e5b18ae26edee6843d8d7ee8470e3fff43a4a99fc768ef546"
        );
        // The JSON of shell and command items is what earlier versions stored.
        assert_eq!(
            serde_json::to_string(s.items()).unwrap(),
            r#"[{"protocol":"ssh","asset":"hmi-1","command":"systemctl status plc-bridge"},{"protocol":"ssh","asset":"hmi-1"}]"#
        );
    }

    #[test]
    fn sftp_and_forward_canonical_lines_and_digest() {
        let s = ssh_scope(&[
            "sftp",
            "forward PLC-Gw.North.Example:0502"
                .replace(":0502", ":502")
                .as_str(),
            "forward [FD00:0:0::7]:20000",
            "SFTP",
        ]);
        assert_eq!(
            s.canonical(),
            "jitgate-scope/v1\nhmi-1 ssh forward [fd00::7]:20000\nhmi-1 ssh forward plc-gw.north.example:502\nhmi-1 ssh sftp\n"
        );
        // Pinned (docs/scope.md gives the printf | sha256sum that reproduces it).
        assert_eq!(
            s.digest(),
            "sha256:dc1b6155b01e9803fa622b3e8938c1d7193f3048dee7458814c42df42ac544cb"
        );
        assert_eq!(
            s.operations().into_iter().collect::<Vec<_>>(),
            vec!["ssh:forward", "ssh:sftp"]
        );
        assert!(!s.is_read_only());
        assert_eq!(
            s.describe(),
            vec![
                "SSH port forwarding from hmi-1 to [fd00::7]:20000",
                "SSH port forwarding from hmi-1 to plc-gw.north.example:502",
                "SSH file transfer (sftp) on hmi-1",
            ]
        );
        let json = serde_json::to_string(s.items()).unwrap();
        assert_eq!(
            json,
            r#"[{"protocol":"ssh","asset":"hmi-1","forward":"[fd00::7]:20000"},{"protocol":"ssh","asset":"hmi-1","forward":"plc-gw.north.example:502"},{"protocol":"ssh","asset":"hmi-1","sftp":true}]"#
        );
        let back: Vec<ScopeItem> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s.items());
    }

    #[test]
    fn ssh_json_never_reads_as_more_than_it_says() {
        for bad in [
            r#"{"protocol":"ssh","asset":"a","sftp":true,"command":"ls"}"#,
            r#"{"protocol":"ssh","asset":"a","forward":"h:1","sftp":true}"#,
            r#"{"protocol":"ssh","asset":"a","forward":"H:1"}"#,
            r#"{"protocol":"ssh","asset":"a","forward":"h:01"}"#,
            r#"{"protocol":"ssh","asset":"a","subsystem":"sftp"}"#,
            r#"{"protocol":"modbus","asset":"a","unit":1,"op":"read","start":0,"end":1,"x":1}"#,
        ] {
            assert!(serde_json::from_str::<ScopeItem>(bad).is_err(), "{bad}");
        }
        // `"sftp": false` is a shell, as it says.
        let shell: ScopeItem =
            serde_json::from_str(r#"{"protocol":"ssh","asset":"a","sftp":false}"#).unwrap();
        assert_eq!(
            shell,
            ScopeItem::Ssh {
                asset: "a".into(),
                command: None
            }
        );
    }

    #[test]
    fn bad_ssh_rules_say_why() {
        let a = hmi();
        for (rule, needle) in [
            ("sftp now", "expected `shell`"),
            ("forward", "expected `shell`"),
            ("forward h", "host:port"),
            ("forward h:0", "1-65535"),
            ("forward h:65536", "1-65535"),
            ("forward h:+22", "1-65535"),
            ("forward h:022", "leading zeros"),
            ("forward *.example:22", "DNS name"),
            ("forward 010.0.0.1:22", "DNS name"),
            ("forward 0.0.0.0:22", "one destination"),
            ("forward [::]:22", "one destination"),
            ("forward fd00::1:22", "[address]:port"),
            ("forward [fd00::1:22", "[address]:port"),
            ("forward a b:22", "expected `shell`"),
            ("forward -a.example:22", "DNS name"),
            ("shell please", "expected `shell`"),
        ] {
            let err = parse_rule(&a, Protocol::Ssh, rule).unwrap_err();
            assert_eq!(err.code(), "invalid_scope", "{rule}");
            assert!(err.to_string().contains(needle), "{rule}: {err}");
        }
        let err = parse_rule(&plc(vec![1]), Protocol::Ssh, "sftp").unwrap_err();
        assert_eq!(err.code(), "scope_not_exposed");
    }

    use proptest::prelude::Strategy as _;

    proptest::proptest! {
        #[test]
        fn forward_targets_are_canonical_and_round_trip(
            host in proptest::prop_oneof![
                "[a-zA-Z][a-zA-Z0-9-]{0,10}[a-zA-Z0-9](\\.[a-zA-Z][a-zA-Z0-9]{0,5}){0,3}",
                proptest::prelude::any::<[u8; 4]>().prop_map(|b| std::net::Ipv4Addr::from(b).to_string()),
                proptest::prelude::any::<u128>().prop_map(|b| format!("[{}]", std::net::Ipv6Addr::from(b))),
            ],
            port in 1u16..,
        ) {
            let text = format!("{host}:{port}");
            match ForwardTarget::parse(&text) {
                Ok(t) => {
                    // The canonical text is a fixed point, and case does not matter.
                    proptest::prop_assert_eq!(ForwardTarget::parse(&t.to_string()), Ok(t.clone()));
                    proptest::prop_assert_eq!(ForwardTarget::parse(&text.to_ascii_uppercase()), Ok(t.clone()));
                    proptest::prop_assert_eq!(t.port(), port);
                    // Spelling differences never change the digest.
                    let a = hmi();
                    let rule = |r: String| Scope::new(parse_rule(&a, Protocol::Ssh, &r).unwrap()).unwrap();
                    let one = rule(format!("forward {text}"));
                    let two = rule(format!("FORWARD   {}", text.to_ascii_uppercase()));
                    proptest::prop_assert_eq!(one.digest(), two.digest());
                    proptest::prop_assert_eq!(one.canonical(), format!("{CANONICAL_HEADER}\nhmi-1 ssh forward {t}\n"));
                }
                Err(e) => {
                    // Only the unspecified and broadcast addresses are refused.
                    proptest::prop_assert!(e.contains("one destination"), "{}: {}", text, e);
                }
            }
        }
    }

    #[test]
    fn write_scope_is_not_read_only() {
        let a = plc(vec![1]);
        assert!(scope(&a, &["readonly"]).is_read_only());
        assert!(!scope(&a, &["read holding 0-1", "write holding 5"]).is_read_only());
        assert!(!scope(&a, &["programming"]).is_read_only());
    }

    #[test]
    fn the_tunnel_protocol_is_the_one_asked_for_or_the_only_one_granted() {
        let mut a = plc(vec![1]);
        a.endpoints.dnp3 = Some(Dnp3Endpoint {
            address: "127.0.0.1:20000".into(),
            outstation: 10,
            master: 1,
        });
        let modbus = parse_rule(&a, Protocol::Modbus, "read holding 0-9").unwrap();
        let dnp3 = parse_rule(&a, Protocol::Dnp3, "read class 0").unwrap();
        let both: Vec<ScopeItem> = modbus.iter().chain(&dnp3).cloned().collect();
        assert_eq!(tunnel_protocols(&modbus, &a), vec![Protocol::Modbus]);
        assert_eq!(
            tunnel_protocols(&both, &a),
            vec![Protocol::Modbus, Protocol::Dnp3]
        );
        // An endpoint the asset no longer has is not offered, whatever the scope says.
        let mut no_dnp3 = a.clone();
        no_dnp3.endpoints.dnp3 = None;
        assert_eq!(tunnel_protocols(&both, &no_dnp3), vec![Protocol::Modbus]);
        // Another asset's items offer nothing here.
        let mut other = a.clone();
        other.id = "rtu-12".into();
        assert!(tunnel_protocols(&both, &other).is_empty());

        let only = [Protocol::Dnp3];
        assert_eq!(choose_tunnel_protocol(None, &only, "a"), Ok(Protocol::Dnp3));
        assert_eq!(
            choose_tunnel_protocol(Some("dnp3"), &only, "a"),
            Ok(Protocol::Dnp3)
        );
        let code = |r: Result<Protocol, (&'static str, String)>| r.unwrap_err().0;
        assert_eq!(
            code(choose_tunnel_protocol(Some("modbus"), &only, "a")),
            "protocol_not_granted"
        );
        assert_eq!(
            code(choose_tunnel_protocol(None, &[], "a")),
            "protocol_not_granted"
        );
        let two = [Protocol::Modbus, Protocol::Dnp3];
        assert_eq!(
            code(choose_tunnel_protocol(None, &two, "a")),
            "protocol_required"
        );
        assert_eq!(
            code(choose_tunnel_protocol(Some("ssh"), &two, "a")),
            "bad_handshake"
        );
        assert_eq!(
            code(choose_tunnel_protocol(Some("DNP3"), &two, "a")),
            "bad_handshake"
        );
    }
}
