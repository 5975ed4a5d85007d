//! jitgate's two SSH certificate authorities (Ed25519), kept like the token-signing keys:
//! one file in the data directory, `ssh-ca-keys.json`, created `0600` (the directory `0700`)
//! on first start, refused at start when group or others may read or write it, or when it
//! does not parse or its keys do not match their public halves.
//!
//! - the **user CA** signs the certificates subjects present to gateways; gateways learn its
//!   public key from the server (`POST /gateway/hello`, `GET /ssh/ca`);
//! - the **host-access CA** signs the per-session certificates gateways present to assets;
//!   operators list its public key in each asset's `TrustedUserCAKeys`.
//!
//! Two keys, never one: an asset trusts only the host-access CA, so a user certificate —
//! which the subject holds — is worthless against the asset directly. What a certificate
//! says is decided by `jitgate_core::ssh`; this module only signs it.

use base64::Engine;
use jitgate_core::ssh::CertificatePlan;
use jitgate_core::Timestamp;
use serde::{Deserialize, Serialize};
use ssh_key::certificate::{Builder, CertType};
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, Certificate, HashAlg, PrivateKey, PublicKey};
use std::io::Write;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub const KEY_FILE: &str = "ssh-ca-keys.json";
const FORMAT: &str = "jitgate-ssh-ca/v1";
const MAX_KEY_FILE_LEN: u64 = 64 * 1024;
/// Longest public key line accepted (a 16384-bit RSA key is about 2.8 KiB of base64).
pub const MAX_PUBLIC_KEY_LEN: usize = 8 * 1024;
/// RSA keys below this size are refused (NIST SP 800-57: 3072 bits for use past 2030).
pub const MIN_RSA_BITS: usize = 3072;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, thiserror::Error)]
pub enum SshCaError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is readable or writable by others (mode {mode:o}): it holds jitgate's SSH CA keys, which mint access to every SSH asset; chmod 600 it")]
    Insecure { path: PathBuf, mode: u32 },
    #[error("{path}: {message}; restore it from backup, or move it away for fresh CA keys (then give gateways and assets the new public keys)")]
    Invalid { path: PathBuf, message: String },
    #[error("signing an SSH certificate: {0}")]
    Sign(String),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    format: String,
    user_ca: StoredKey,
    host_access_ca: StoredKey,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKey {
    /// base64url of the 32-byte Ed25519 seed.
    secret_key: String,
    /// The OpenSSH public key line (checked against the seed when read).
    public_key: String,
    created_at: Timestamp,
}

struct Ca {
    key: PrivateKey,
    public: PublicKey,
}

impl Ca {
    fn from_seed(seed: &[u8; 32], comment: &str) -> Ca {
        let mut key = PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(seed));
        key.set_comment(comment);
        let public = key.public_key().clone();
        Ca { key, public }
    }

    fn info(&self) -> CaPublicKey {
        CaPublicKey {
            public_key: self.public.to_openssh().unwrap_or_default(),
            fingerprint: fingerprint(self.public.key_data()),
        }
    }
}

/// Which of the two CAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaRole {
    User,
    HostAccess,
}

impl CaRole {
    fn comment(self) -> &'static str {
        match self {
            CaRole::User => "jitgate-ssh-user-ca",
            CaRole::HostAccess => "jitgate-ssh-host-access-ca",
        }
    }
}

/// A CA's public half, as operators and gateways are given it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaPublicKey {
    /// OpenSSH public key line, e.g. `ssh-ed25519 AAAA… jitgate-ssh-user-ca`.
    pub public_key: String,
    /// `SHA256:<base64>`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

/// The two CAs, loaded from the data directory.
pub struct SshCas {
    user: Ca,
    host_access: Ca,
    path: PathBuf,
}

impl std::fmt::Debug for SshCas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshCas")
            .field("path", &self.path)
            .field("user", &self.user.info().fingerprint)
            .field("host_access", &self.host_access.info().fingerprint)
            .finish()
    }
}

/// A signed certificate and what the evidence records of it.
#[derive(Debug, Clone)]
pub struct Signed {
    pub certificate: Certificate,
    /// The OpenSSH certificate line (`ssh-ed25519-cert-v01@openssh.com AAAA…`).
    pub line: String,
    pub serial: u64,
    pub key_fingerprint: String,
    pub ca_fingerprint: String,
}

impl SshCas {
    /// The CAs in `data_dir`, created on first start.
    pub fn open_or_create(data_dir: &Path, now: Timestamp) -> Result<SshCas, SshCaError> {
        create_private_dir(data_dir)?;
        let path = data_dir.join(KEY_FILE);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) => {
                check_owner_only(&path, &meta)?;
                if meta.len() > MAX_KEY_FILE_LEN {
                    return Err(invalid(&path, "far larger than a CA key file"));
                }
                let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(|source| {
                    SshCaError::Io {
                        path: path.clone(),
                        source,
                    }
                })?);
                Self::parse(&path, &text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut user = Zeroizing::new([0u8; 32]);
                let mut host = Zeroizing::new([0u8; 32]);
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, user.as_mut());
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, host.as_mut());
                let cas = SshCas {
                    user: Ca::from_seed(&user, CaRole::User.comment()),
                    host_access: Ca::from_seed(&host, CaRole::HostAccess.comment()),
                    path: path.clone(),
                };
                let stored = |seed: &[u8; 32], ca: &Ca| StoredKey {
                    secret_key: B64.encode(seed),
                    public_key: ca.info().public_key,
                    created_at: now,
                };
                let file = KeyFile {
                    format: FORMAT.into(),
                    user_ca: stored(&user, &cas.user),
                    host_access_ca: stored(&host, &cas.host_access),
                };
                let text = Zeroizing::new(
                    serde_json::to_string_pretty(&file)
                        .map_err(|e| invalid(&path, &e.to_string()))?,
                );
                write_new_private(&path, text.as_bytes())?;
                Ok(cas)
            }
            Err(source) => Err(SshCaError::Io { path, source }),
        }
    }

    fn parse(path: &Path, text: &str) -> Result<SshCas, SshCaError> {
        let file: KeyFile = serde_json::from_str(text)
            .map_err(|e| invalid(path, &format!("not a jitgate SSH CA key file: {e}")))?;
        if file.format != FORMAT {
            return Err(invalid(
                path,
                &format!("format {:?}, expected {FORMAT:?}", file.format),
            ));
        }
        let load = |stored: &StoredKey, role: CaRole| -> Result<Ca, SshCaError> {
            let seed = Zeroizing::new(
                B64.decode(&stored.secret_key)
                    .map_err(|_| invalid(path, "a secret_key is not base64url"))?,
            );
            let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
                seed.as_slice()
                    .try_into()
                    .map_err(|_| invalid(path, "a secret_key is not 32 bytes"))?,
            );
            let ca = Ca::from_seed(&seed, role.comment());
            let listed = PublicKey::from_openssh(&stored.public_key)
                .map_err(|_| invalid(path, "a public_key is not an OpenSSH public key"))?;
            if listed.key_data() != ca.public.key_data() {
                return Err(invalid(
                    path,
                    "a public_key does not match its secret_key (edited or corrupted)",
                ));
            }
            Ok(ca)
        };
        let user = load(&file.user_ca, CaRole::User)?;
        let host_access = load(&file.host_access_ca, CaRole::HostAccess)?;
        if user.public.key_data() == host_access.public.key_data() {
            return Err(invalid(
                path,
                "the user CA and the host-access CA are the same key; an asset would then accept the certificates users hold",
            ));
        }
        Ok(SshCas {
            user,
            host_access,
            path: path.to_path_buf(),
        })
    }

    pub fn public(&self, role: CaRole) -> CaPublicKey {
        self.ca(role).info()
    }

    fn ca(&self, role: CaRole) -> &Ca {
        match role {
            CaRole::User => &self.user,
            CaRole::HostAccess => &self.host_access,
        }
    }

    /// Sign what the core decided for `key`, with a fresh random serial.
    pub fn sign(
        &self,
        role: CaRole,
        plan: &CertificatePlan,
        key: &PublicKey,
    ) -> Result<Signed, SshCaError> {
        let ca = self.ca(role);
        let sign_err = |e: ssh_key::Error| SshCaError::Sign(e.to_string());
        let secs = |t: Timestamp| u64::try_from(t.timestamp()).unwrap_or(0);
        let mut rng = rand::rngs::OsRng;
        // Zero is the "no serial" of `ssh-keygen -s` without `-z`: never used.
        let serial = rand::Rng::gen_range(&mut rng, 1..=u64::MAX);
        let mut b = Builder::new_with_random_nonce(
            &mut rng,
            key.key_data().clone(),
            secs(plan.valid_after),
            secs(plan.valid_before),
        )
        .map_err(sign_err)?;
        b.serial(serial).map_err(sign_err)?;
        b.cert_type(CertType::User).map_err(sign_err)?;
        b.key_id(plan.key_id.clone()).map_err(sign_err)?;
        b.valid_principal(plan.principal.clone())
            .map_err(sign_err)?;
        for ext in plan.permissions.extensions() {
            b.extension(ext, "").map_err(sign_err)?;
        }
        if let Some(cmd) = &plan.permissions.force_command {
            b.critical_option("force-command", cmd.clone())
                .map_err(sign_err)?;
        }
        let certificate = b.sign(&ca.key).map_err(sign_err)?;
        let line = certificate.to_openssh().map_err(sign_err)?;
        Ok(Signed {
            line,
            serial,
            key_fingerprint: fingerprint(key.key_data()),
            ca_fingerprint: fingerprint(ca.public.key_data()),
            certificate,
        })
    }
}

/// OpenSSH's `SHA256:<base64>` fingerprint of a public key.
pub fn fingerprint(key: &KeyData) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Parse the one OpenSSH public key line a client sends, refusing what jitgate does not
/// certify: certificates, DSA, RSA under [`MIN_RSA_BITS`], algorithms it does not know.
/// The comment is dropped (it is the client's free text).
pub fn parse_public_key(line: &str) -> Result<PublicKey, String> {
    if line.len() > MAX_PUBLIC_KEY_LEN {
        return Err(format!(
            "public_key is {} bytes; an OpenSSH public key line is at most {MAX_PUBLIC_KEY_LEN}",
            line.len()
        ));
    }
    let line = line.trim();
    if line.contains(['\n', '\r']) {
        return Err(
            "public_key holds several lines; send exactly one OpenSSH public key line".into(),
        );
    }
    let mut key = PublicKey::from_openssh(line).map_err(|_| {
        "public_key is not an OpenSSH public key line (`ssh-ed25519 AAAA… [comment]`, as in a .pub file)".to_string()
    })?;
    key.set_comment("");
    match key.algorithm() {
        Algorithm::Ed25519 | Algorithm::SkEd25519 | Algorithm::SkEcdsaSha2NistP256 => Ok(key),
        Algorithm::Ecdsa { .. } => Ok(key),
        Algorithm::Rsa { .. } => {
            let bits = match key.key_data() {
                KeyData::Rsa(rsa) => rsa.n.as_positive_bytes().map_or(0, |n| n.len() * 8),
                _ => 0,
            };
            if bits >= MIN_RSA_BITS {
                Ok(key)
            } else {
                Err(format!("an RSA key of {bits} bits is too weak; use Ed25519 (`ssh-keygen -t ed25519`) or RSA of at least {MIN_RSA_BITS} bits"))
            }
        }
        other => Err(format!(
            "{} keys are not certified; use Ed25519 (`ssh-keygen -t ed25519`)",
            other.as_str()
        )),
    }
}

fn invalid(path: &Path, message: &str) -> SshCaError {
    SshCaError::Invalid {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

#[cfg(unix)]
fn check_owner_only(path: &Path, meta: &std::fs::Metadata) -> Result<(), SshCaError> {
    use std::os::unix::fs::PermissionsExt;
    if !meta.is_file() {
        return Err(invalid(path, "not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SshCaError::Insecure {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_only(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), SshCaError> {
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), SshCaError> {
    let io = |source| SshCaError::Io {
        path: dir.to_path_buf(),
        source,
    };
    if dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(io)
}

/// Created `0600` from the first byte (never readable by others, not even for a moment),
/// and never over an existing file.
fn write_new_private(path: &Path, bytes: &[u8]) -> Result<(), SshCaError> {
    let io = |source| SshCaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(io)?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(io)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use jitgate_core::ssh::{CertificateKind, SshPermissions};

    fn now() -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn plan() -> CertificatePlan {
        CertificatePlan {
            kind: CertificateKind::User,
            key_id: "g-1".into(),
            principal: "vera".into(),
            asset: "hmi-1".into(),
            permissions: SshPermissions {
                pty: true,
                port_forwarding: false,
                force_command: None,
            },
            valid_after: now(),
            valid_before: now() + chrono::Duration::hours(1),
        }
    }

    fn client_key() -> PublicKey {
        PrivateKey::random(&mut rand::rngs::OsRng, Algorithm::Ed25519)
            .unwrap()
            .public_key()
            .clone()
    }

    #[test]
    fn created_private_reopened_and_signing_with_the_right_ca() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let cas = SshCas::open_or_create(&data, now()).unwrap();
        let again = SshCas::open_or_create(&data, now()).unwrap();
        assert_eq!(cas.public(CaRole::User), again.public(CaRole::User));
        assert_ne!(cas.public(CaRole::User), cas.public(CaRole::HostAccess));
        assert!(cas
            .public(CaRole::User)
            .public_key
            .ends_with(" jitgate-ssh-user-ca"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&data), 0o700);
            assert_eq!(mode(&data.join(KEY_FILE)), 0o600);
        }
        let key = client_key();
        let signed = cas.sign(CaRole::User, &plan(), &key).unwrap();
        let user_fp = signed
            .certificate
            .signature_key()
            .fingerprint(HashAlg::Sha256);
        let host_fp = cas.host_access.public.fingerprint(HashAlg::Sha256);
        let at = now().timestamp() as u64 + 10;
        signed.certificate.validate_at(at, [&user_fp]).unwrap();
        assert!(signed.certificate.validate_at(at, [&host_fp]).is_err());
        assert_eq!(signed.certificate.key_id(), "g-1");
        assert_eq!(signed.certificate.valid_principals(), ["vera".to_string()]);
        assert_eq!(signed.certificate.serial(), signed.serial);
        assert_ne!(signed.serial, 0);
        assert!(signed.certificate.extensions().contains_key("permit-pty"));
        assert_eq!(signed.certificate.extensions().len(), 1);
        assert_eq!(signed.key_fingerprint, fingerprint(key.key_data()));
    }

    #[test]
    fn insecure_or_tampered_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        SshCas::open_or_create(dir.path(), now()).unwrap();
        let path = dir.path().join(KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            let err = SshCas::open_or_create(dir.path(), now()).unwrap_err();
            assert!(err.to_string().contains("chmod 600"), "{err}");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut file: serde_json::Value = serde_json::from_str(&text).unwrap();
        // One CA's public key swapped for the other's: refused, never signing with a key
        // other than the one operators were given.
        let host = file["host_access_ca"]["public_key"].clone();
        file["user_ca"]["public_key"] = host;
        std::fs::write(&path, file.to_string()).unwrap();
        let err = SshCas::open_or_create(dir.path(), now()).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        // The same key for both CAs is refused.
        file["user_ca"] = file["host_access_ca"].clone();
        std::fs::write(&path, file.to_string()).unwrap();
        let err = SshCas::open_or_create(dir.path(), now()).unwrap_err();
        assert!(err.to_string().contains("same key"), "{err}");
        std::fs::write(&path, "{").unwrap();
        assert!(matches!(
            SshCas::open_or_create(dir.path(), now()),
            Err(SshCaError::Invalid { .. })
        ));
    }

    #[test]
    fn public_keys_accepted_and_refused() {
        let ed = client_key().to_openssh().unwrap();
        assert!(parse_public_key(&format!("{ed} vera@laptop\n")).is_ok());
        let parsed = parse_public_key(&format!("{ed} vera@laptop")).unwrap();
        assert_eq!(parsed.comment(), "");
        for (line, needle) in [
            ("", "not an OpenSSH public key"),
            ("ssh-ed25519", "not an OpenSSH public key"),
            ("ssh-ed25519 AAAA", "not an OpenSSH public key"),
            (&format!("{ed}\n{ed}"), "several lines"),
            (&"A".repeat(MAX_PUBLIC_KEY_LEN + 1), "at most"),
        ] {
            let err = parse_public_key(line).unwrap_err();
            assert!(err.contains(needle), "{line:?}: {err}");
        }
        // Generated with `ssh-keygen -t rsa -b 2048`, `-b 3072` and `-t ecdsa`.
        let rsa2048 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCjsoFmkfxWUXar1JvwI+ZlgqAbgNL2oOfXrJuJfJkgJGOzsac3oC+TAHUw0Nq7SpyS8OtYr7ZzQUDynlztRGTtLo5tEJULL274QXmHTnOxae2zQqGtACTSsR616OVM71sz5rr2KdJdOkQ0bv5wRhVBEA8GrMdW0tMyWs4C0lSeMi7v10TF4Sn+OYDKSWTTdMnBvH3r+v2ESQjs0g/T03dJd91owITfTY5ygw9oQ1QfyWXAkMBkJRhYo5DjLh0XfCpbMZVeOgtuv/1FZtMQcmi8H/jnZmSYHWGJ9rNvVlX4D5QxxcrHnPLE2P9KNx3wNKviueNTlicRfIRbL0hcS1/j";
        let rsa3072 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDNpxQIVd4lNnpH2yVPBzl2UOM5PxDNnyhAJIurODKvCi4H4plyNI5WaAOP9YPi+ldWOMYCNHw9SkV59G+wFHqPzN4/TM3FXmYTVcVHE9Y454txeTWv/rNIh7KoWb/YGC04YhM/oHkH3yuNQNfc30PTTu5Lhcrw6djNpdilcmCD/kOBngvj/CZNsELYvYIC6dPggKYhy5Y8zofvooeyaNxSqfXsILmDAzlNsK+ryL2X3MeEA+rmnPX0lKc0j91qeTAoyHWJJ9GvhYnInN+5rtkWIGR43wqCNKwPl8AOtCp4Kua1+0T/bhEIdczaVpGoRkZv3bWOJkWVYz9JBwob4DIC7MbnJCc4FjkFWgin6Nmsq86tlIPbTSccUDBRVL+SRla+KLR0ydExYoIBbZ4U4MQ/v8P5pXtPrHSvubz/g8+HVuQox2Jo79Pu8k43PMRYnqAOpqtN4zZjPJIXeuSlXtk3bnOYgkEjTXVsmP23ZvoClEtbPmg+qgccgD1E9K1D6n8=";
        let ecdsa = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOXgsmQJEWllGqnjNNAMS0FXcJ7WEzvsx6SgP3gBOEPRU4t5maQI9ajtvwp16AOZNJTblJ1uBpNkakrnUBFD68A=";
        let err = parse_public_key(rsa2048).unwrap_err();
        assert!(err.contains("2048 bits is too weak"), "{err}");
        assert!(parse_public_key(rsa3072).is_ok());
        assert!(parse_public_key(ecdsa).is_ok());
        // `ssh-keygen -t dsa`.
        let err = parse_public_key("ssh-dss AAAAB3NzaC1kc3MAAACBANBL6hBDpA9r4YRmQw9OFxNM7CZsBew/SalXK9mj2a8Y0QgcTZluwJSK4cZLmLD2tmz0mf3Qg+5E4tSK1t2vTl9vWfV3RibC/oQ+T5sA2MH/Dy/iFH0zQzRb/8RTHWAQVzwRMOdTjQbuuBIHzvDA6nvWj0UeBaDr6cY2bYXZ1kTVAAAAFQDuLGXzuqa7Qc4mB/u9hzqYb+9DpQAAAIBdmBL4F/OdcQtrugjEWxOufmS+zJNa/kpbGMacx3wtX9bzYfAziyOZo5dlv3A+/XSTPQzmCcsatXMFTeNGiGT9AanK7sGOkv+pmEWsWaJDCdtuBSyL5DQM0WamgmbFVMMGixGZn+WDytTe7+uxFnyAouytd4aEPVmY+/1pUbkM7AAAAIEAxlkTkwAS4jftfMII86XTgBoVtZ4E1E3YFA5z79Djv82F4HivhQ3+citGAYTG5NDQrebKego3NvFrYYJ76cyKlGqlw9bfHrJhEEIVfVII/jcjWtm5JYrILInTw439ro7j5gDw0SbOceclvQ7Qf8y0XX7tB7RVtlwQoUYGWaVoJC8=").unwrap_err();
        assert!(err.contains("ssh-dss keys are not certified"), "{err}");
        // A certificate line is not a public key.
        let dir = tempfile::tempdir().unwrap();
        let cas = SshCas::open_or_create(dir.path(), now()).unwrap();
        let signed = cas.sign(CaRole::User, &plan(), &client_key()).unwrap();
        assert!(parse_public_key(&signed.line).is_err());
    }
}
