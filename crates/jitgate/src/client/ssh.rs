//! `jitgate ssh`: an OpenSSH user certificate for one active grant, and the system `ssh`
//! run with it (docs/credentials.md, "SSH certificates"; docs/cli.md, "SSH").
//!
//! A fresh Ed25519 key pair is made for every run, in a private temporary directory (0700,
//! files 0600) removed when `ssh` exits; the server certifies its public half for the grant
//! (key id = grant id, principal = you, permissions from the grant's SSH scope). `jitgate
//! ssh cert` writes the pair and certificate to a directory instead, for plain `ssh` and
//! scripts; `jitgate ssh ca` prints jitgate's CA public keys.

use super::http::decode;
use super::Ctx;
use crate::output::outln;
use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Subcommand};
use jitgate_server::api::types::{SshCaView, SshCertificateBody, SshCertificateView};
use ssh_key::{Algorithm, LineEnding, PrivateKey};
use std::io::Write;
use std::path::{Path, PathBuf};

/// File names in a `jitgate ssh cert --out` directory: OpenSSH's own naming, so `ssh -i
/// DIR/id_ed25519` also finds the certificate next to the key by itself.
pub const KEY_FILE: &str = "id_ed25519";
pub const PUBLIC_FILE: &str = "id_ed25519.pub";
pub const CERT_FILE: &str = "id_ed25519-cert.pub";
/// The gateway's host key, pinned (written when the server knows it).
pub const KNOWN_HOSTS_FILE: &str = "known_hosts";

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SshArgs {
    #[command(subcommand)]
    pub cmd: Option<SshCmd>,
    #[command(flatten)]
    pub run: SshRunArgs,
}

#[derive(Debug, Args)]
pub struct SshRunArgs {
    /// The active grant to use (yours: only the grant's subject gets its certificate).
    pub grant: Option<String>,
    /// The asset to reach, when the grant gives SSH access on several.
    #[arg(long)]
    pub asset: Option<String>,
    /// Where the gateway's SSH listener is, `host:port` (`[v6]:port` for IPv6). Default:
    /// the address the asset's gateway announced to the server.
    #[arg(long, value_name = "HOST:PORT", env = "JITGATE_SSH_GATEWAY")]
    pub gateway: Option<String>,
    /// Arguments passed to `ssh` after jitgate's own (`-- -v`, `-- uptime`, ...).
    #[arg(last = true, value_name = "SSH ARGS")]
    pub ssh_args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum SshCmd {
    /// Write a fresh key pair and its certificate to a directory, for plain `ssh` and scripts.
    #[command(after_help = "Example:\n  \
        jitgate ssh cert grant-k3m9x2p7qa4d --asset hmi-1 --out ./hmi-1-ssh --gateway gw.plant.example:2222\n  \
        ssh -i ./hmi-1-ssh/id_ed25519 -o CertificateFile=./hmi-1-ssh/id_ed25519-cert.pub -p 2222 hmi-1@gw.plant.example\n\n\
        The certificate is valid for at most an hour and never past the grant; run again for a new one \
        (into a new directory: a key is certified for one grant only, and files are never overwritten).")]
    Cert {
        /// The active grant.
        grant: String,
        /// The asset to reach (may be left out when the grant gives SSH access on one only).
        #[arg(long)]
        asset: Option<String>,
        /// Directory for `id_ed25519`, `id_ed25519.pub` and `id_ed25519-cert.pub` (created
        /// 0700 if missing; existing files are never overwritten).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The gateway's SSH listener, only to print the exact `ssh` command (default: the
        /// address the asset's gateway announced).
        #[arg(long, value_name = "HOST:PORT", env = "JITGATE_SSH_GATEWAY")]
        gateway: Option<String>,
    },
    /// Print jitgate's SSH CA public keys (OpenSSH format): the host-access CA line goes in
    /// each asset's `TrustedUserCAKeys` file.
    #[command(after_help = "Examples:\n  \
        jitgate ssh ca\n  \
        jitgate --json ssh ca | jq -r .host_access_ca.public_key | sudo tee /etc/ssh/jitgate_ca.pub\n  \
        # then on the asset, in sshd_config: TrustedUserCAKeys /etc/ssh/jitgate_ca.pub")]
    Ca,
}

pub async fn run(ctx: &Ctx, args: SshArgs) -> anyhow::Result<()> {
    match args.cmd {
        Some(SshCmd::Ca) => ca(ctx).await,
        Some(SshCmd::Cert {
            grant,
            asset,
            out,
            gateway,
        }) => cert(ctx, &grant, asset, &out, gateway.as_deref()).await,
        None => connect(ctx, args.run).await,
    }
}

async fn ca(ctx: &Ctx) -> anyhow::Result<()> {
    let raw = ctx.http.get(&["ssh", "ca"], &[]).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let cas: SshCaView = decode(raw)?;
    outln!(
        "# SSH user CA ({}): gateways trust it; users present certificates it signed.",
        cas.user_ca.fingerprint
    );
    outln!("{}", cas.user_ca.public_key);
    outln!(
        "# Host-access CA ({}): put this line in each asset's TrustedUserCAKeys file.",
        cas.host_access_ca.fingerprint
    );
    outln!("{}", cas.host_access_ca.public_key);
    Ok(())
}

/// `host:port` or `[v6]:port` → (host as `ssh` takes it, port).
fn parse_gateway(text: &str) -> anyhow::Result<(String, u16)> {
    let bad = || {
        anyhow!(
            "--gateway {text:?}: expected host:port, e.g. gw.plant.example:2222 or [fd00::1]:2222"
        )
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']').ok_or_else(bad)?,
        None if host.contains(':') => return Err(bad()),
        None => host,
    };
    if host.is_empty() || host.starts_with('-') || host.contains(['@', ' ', '/']) {
        return Err(bad());
    }
    let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
    Ok((host.to_string(), port))
}

/// A fresh Ed25519 key pair (its private half in OpenSSH format) and the certificate the
/// server issued for its public half.
struct Issued {
    private: zeroize::Zeroizing<String>,
    public: String,
    cert: SshCertificateView,
}

async fn issue(ctx: &Ctx, grant: &str, asset: Option<String>) -> anyhow::Result<Issued> {
    let mut key = PrivateKey::random(&mut rand::rngs::OsRng, Algorithm::Ed25519)
        .map_err(|e| anyhow!("making a key pair: {e}"))?;
    key.set_comment(format!("jitgate {grant}"));
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| anyhow!("encoding the public key: {e}"))?;
    let private = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| anyhow!("encoding the private key: {e}"))?;
    let body = SshCertificateBody {
        asset,
        public_key: public.clone(),
    };
    let raw = ctx
        .http
        .post(&["grants", grant, "ssh-certificate"], &body)
        .await?;
    let cert: SshCertificateView = decode(raw)?;
    Ok(Issued {
        private,
        public,
        cert,
    })
}

fn describe(grant: &str, c: &SshCertificateView) -> String {
    let ext = if c.extensions.is_empty() {
        "no terminal, no forwarding".to_string()
    } else {
        c.extensions.join(", ")
    };
    format!(
        "certificate for {} on {} under {grant}, valid until {} ({ext}{})",
        c.principals.join(","),
        c.asset,
        c.valid_before.format("%Y-%m-%d %H:%M:%S UTC"),
        c.force_command
            .as_deref()
            .map(|cmd| format!("; runs only `{cmd}`"))
            .unwrap_or_default()
    )
}

async fn connect(ctx: &Ctx, args: SshRunArgs) -> anyhow::Result<()> {
    let Some(grant) = args.grant else {
        bail!(
            "name the grant: jitgate ssh <grant> [--asset A] [--gateway host:port] [-- ssh args]"
        );
    };
    let given = args.gateway.as_deref().map(parse_gateway).transpose()?;
    let issued = issue(ctx, &grant, args.asset).await?;
    let (host, port) = where_to(given, &issued.cert)?;
    // Private, and removed when this function returns (whatever `ssh` did).
    let dir = private_temp_dir()?;
    let key_path = dir.path().join(KEY_FILE);
    let cert_path = dir.path().join(CERT_FILE);
    write_private(&key_path, issued.private.as_bytes())?;
    write_private(&cert_path, issued.cert.certificate.as_bytes())?;
    let known_hosts = write_known_hosts(dir.path(), &issued.cert)?;
    eprintln!("{}", describe(&grant, &issued.cert));
    let mut cmd = std::process::Command::new("ssh");
    cmd.args(ssh_options(&key_path, &cert_path, port))
        .args(pin_options(known_hosts.as_deref()))
        .arg(format!("{}@{host}", issued.cert.asset))
        .args(&args.ssh_args);
    // Ctrl-C reaches `ssh` (same process group); this process waits for it and then removes
    // the key rather than dying with the key left on disk.
    let interrupts = tokio::spawn(async { while tokio::signal::ctrl_c().await.is_ok() {} });
    let status = tokio::task::spawn_blocking(move || cmd.status())
        .await
        .context("waiting for ssh")?
        .context("cannot run `ssh`: is the OpenSSH client installed (Debian: openssh-client)?");
    interrupts.abort();
    drop(dir);
    let status = status?;
    if !status.success() {
        // `ssh`'s own exit status (255 for its own errors), as scripts expect.
        std::process::exit(status.code().unwrap_or(255));
    }
    Ok(())
}

/// Where to connect: `--gateway` when given (a name or port the announcement cannot know,
/// e.g. behind NAT), else the SSH address the asset's gateway announced to the server.
fn where_to(
    given: Option<(String, u16)>,
    cert: &SshCertificateView,
) -> anyhow::Result<(String, u16)> {
    if let Some(g) = given {
        return Ok(g);
    }
    match cert.gateway_ssh_address.as_deref() {
        Some(announced) => parse_gateway(announced).with_context(|| {
            format!("the address the gateway of {} announced", cert.asset)
        }),
        None => bail!(
            "the gateway of {} has announced no SSH listener to the server (is `ssh_listen` set in its config, and is it running?); say where it is with --gateway host:port",
            cert.asset
        ),
    }
}

/// The alias under which the gateway's host key is pinned: OpenSSH then checks the key
/// whatever name or port reaches the gateway.
const HOST_KEY_ALIAS: &str = "jitgate-gateway";

/// A `known_hosts` holding only the gateway's host key as the server says the gateway
/// announced it (learnt over the pinned TLS channel to the server, so no trust on first
/// use), or `None` when the server knows none.
fn write_known_hosts(dir: &Path, cert: &SshCertificateView) -> anyhow::Result<Option<PathBuf>> {
    let Some(key) = cert.gateway_ssh_host_key.as_deref() else {
        return Ok(None);
    };
    let path = dir.join(KNOWN_HOSTS_FILE);
    write_private(
        &path,
        format!("{HOST_KEY_ALIAS} {}\n", key.trim()).as_bytes(),
    )?;
    Ok(Some(path))
}

/// Check the gateway's host key against that file only, and refuse any other key.
fn pin_options(known_hosts: Option<&Path>) -> Vec<String> {
    let Some(file) = known_hosts else {
        return Vec::new();
    };
    [
        format!("UserKnownHostsFile={}", file.display()),
        "GlobalKnownHostsFile=/dev/null".into(),
        format!("HostKeyAlias={HOST_KEY_ALIAS}"),
        "StrictHostKeyChecking=yes".into(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_string(), o])
    .collect()
}

/// jitgate's options before any of the user's: this key and certificate only, never the
/// agent's keys nor agent or X11 forwarding (the certificate does not permit them anyway).
fn ssh_options(key: &Path, cert: &Path, port: u16) -> Vec<String> {
    vec![
        "-i".into(),
        key.display().to_string(),
        "-o".into(),
        format!("CertificateFile={}", cert.display()),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-o".into(),
        "ForwardAgent=no".into(),
        "-o".into(),
        "ForwardX11=no".into(),
        "-p".into(),
        port.to_string(),
    ]
}

async fn cert(
    ctx: &Ctx,
    grant: &str,
    asset: Option<String>,
    out: &Path,
    gateway: Option<&str>,
) -> anyhow::Result<()> {
    let gateway = gateway.map(parse_gateway).transpose()?;
    create_private_dir(out)?;
    let paths = [
        out.join(KEY_FILE),
        out.join(PUBLIC_FILE),
        out.join(CERT_FILE),
        out.join(KNOWN_HOSTS_FILE),
    ];
    if let Some(existing) = paths.iter().find(|p| p.exists()) {
        bail!(
            "{} exists; jitgate never overwrites a key: choose another --out directory",
            existing.display()
        );
    }
    let issued = issue(ctx, grant, asset).await?;
    write_private(&paths[0], issued.private.as_bytes())?;
    write_private(&paths[1], format!("{}\n", issued.public).as_bytes())?;
    write_private(
        &paths[2],
        format!("{}\n", issued.cert.certificate).as_bytes(),
    )?;
    if ctx.json {
        let mut v = serde_json::to_value(&issued.cert)?;
        v["key_file"] = paths[0].display().to_string().into();
        v["certificate_file"] = paths[2].display().to_string().into();
        crate::output::json(&v);
        return Ok(());
    }
    eprintln!("{}", describe(grant, &issued.cert));
    let known_hosts = write_known_hosts(out, &issued.cert)?;
    let (host, port) = match where_to(gateway, &issued.cert) {
        Ok((h, p)) => (h, p.to_string()),
        Err(_) => ("<gateway-host>".into(), "<gateway-ssh-port>".into()),
    };
    outln!("{}", paths[0].display());
    outln!("{}", paths[2].display());
    eprintln!("connect with:");
    let pin = match &known_hosts {
        Some(file) => format!(
            " -o UserKnownHostsFile={} -o HostKeyAlias={HOST_KEY_ALIAS} -o StrictHostKeyChecking=yes",
            file.display()
        ),
        None => String::new(),
    };
    eprintln!(
        "  ssh -i {} -o CertificateFile={}{pin} -p {port} {}@{host}",
        paths[0].display(),
        paths[2].display(),
        issued.cert.asset
    );
    Ok(())
}

fn private_temp_dir() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("jitgate-ssh-")
        .tempdir()
        .context("making a private temporary directory")?;
    set_mode(dir.path(), 0o700)?;
    Ok(dir)
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// Created 0600 from the start, never over an existing file.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn gateway_addresses() {
        assert_eq!(
            parse_gateway("gw.plant.example:2222").unwrap(),
            ("gw.plant.example".into(), 2222)
        );
        assert_eq!(
            parse_gateway("[fd00::1]:22").unwrap(),
            ("fd00::1".into(), 22)
        );
        for bad in [
            "gw",
            "gw:0",
            "gw:x",
            "fd00::1:22",
            ":22",
            "-oProxyCommand=x:22",
            "a@b:22",
        ] {
            assert!(parse_gateway(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ssh_is_told_this_key_only() {
        let o = ssh_options(Path::new("/t/k"), Path::new("/t/c"), 2222);
        assert_eq!(
            o.join(" "),
            "-i /t/k -o CertificateFile=/t/c -o IdentitiesOnly=yes -o ForwardAgent=no -o ForwardX11=no -p 2222"
        );
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = private_temp_dir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path()), 0o700);
        let f = dir.path().join(KEY_FILE);
        write_private(&f, b"secret").unwrap();
        assert_eq!(mode(&f), 0o600);
        assert!(write_private(&f, b"other").is_err());
        assert_eq!(std::fs::read(&f).unwrap(), b"secret");
        let path = dir.path().to_path_buf();
        drop(dir);
        assert!(!path.exists(), "removed afterwards");
    }
}
