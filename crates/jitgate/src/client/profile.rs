//! Where the CLI finds its server and token. Precedence: command-line flag, then `JITGATE_*`
//! environment variable, then the profile file that `jitgate login` writes
//! (`$XDG_CONFIG_HOME/jitgate/profile.toml`, else `~/.config/jitgate/profile.toml`).
//!
//! The environment is passed in as a lookup function so that precedence is tested without
//! touching the process environment.

use super::http::{normalise_server, CliError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Server used when nothing is configured: where `jitgate up` listens by default
/// (`ServerConfig::default().listen`; a test checks they agree).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

pub const ENV_SERVER: &str = "JITGATE_SERVER";
pub const ENV_TOKEN: &str = "JITGATE_TOKEN";
pub const ENV_PROFILE: &str = "JITGATE_PROFILE";
pub const ENV_SERVER_FINGERPRINT: &str = "JITGATE_SERVER_FINGERPRINT";
pub const ENV_SERVER_CA_FILE: &str = "JITGATE_SERVER_CA_FILE";

/// The profile file: `{ server = "...", token = "...", identity = "..." }`. It holds a bearer
/// token, so it is written with mode 0600.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// SHA-256 fingerprint of the `https://` server's certificate, confirmed at
    /// `jitgate login`; a server presenting another certificate is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_fingerprint: Option<String>,
    /// Or: PEM CA certificate(s) the `https://` server's certificate must chain to (for a
    /// plant PKI whose server certificates are renewed), saved by `jitgate login`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ca_file: Option<PathBuf>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("server", &self.server)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("identity", &self.identity)
            .field("server_fingerprint", &self.server_fingerprint)
            .field("server_ca_file", &self.server_ca_file)
            .finish()
    }
}

/// Where a setting came from; shown by `whoami` so people can see why a token is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    Profile,
    Default,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Flag => "command-line flag",
            Source::Env => "environment",
            Source::Profile => "profile file",
            Source::Default => "default",
        }
    }
}

/// What the user asked for on the command line (`--server`, `--token`, `--profile`).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub server: Option<String>,
    pub token: Option<String>,
    pub profile: Option<PathBuf>,
    pub server_fingerprint: Option<String>,
    pub server_ca_file: Option<PathBuf>,
}

/// The effective settings of one invocation.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: String,
    pub server_source: Source,
    pub token: Option<String>,
    pub token_source: Option<Source>,
    /// The pinned certificate fingerprint of an `https://` server, and where it came from.
    pub server_fingerprint: Option<String>,
    pub fingerprint_source: Option<Source>,
    /// Or the CA file that pins it, and where that came from.
    pub server_ca_file: Option<PathBuf>,
    pub ca_file_source: Option<Source>,
    /// `None` only when neither `--profile`, `JITGATE_PROFILE`, `XDG_CONFIG_HOME` nor `HOME`
    /// gives a place for it.
    pub profile_path: Option<PathBuf>,
    pub profile: Profile,
}

impl Settings {
    /// How the `https://` server is recognised: its fingerprint or a CA file (at most one is
    /// set, see [`resolve`]).
    pub fn server_trust(&self) -> Option<jitgate_gateway::server_trust::ServerTrust> {
        use jitgate_gateway::server_trust::ServerTrust;
        match (&self.server_fingerprint, &self.server_ca_file) {
            (Some(fp), _) => Some(ServerTrust::Fingerprint(fp.clone())),
            (None, Some(ca)) => Some(ServerTrust::CaFile(ca.clone())),
            (None, None) => None,
        }
    }
}

/// `$XDG_CONFIG_HOME/jitgate/profile.toml`, else `$HOME/.config/jitgate/profile.toml`.
pub fn default_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = match nonempty(env("XDG_CONFIG_HOME")) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(nonempty(env("HOME"))?).join(".config"),
    };
    Some(base.join("jitgate").join("profile.toml"))
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// Load a profile; a missing file is an empty profile, a malformed one an error naming it.
pub fn load(path: &Path) -> Result<Profile, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Profile::default()),
        Err(e) => {
            return Err(CliError::Usage(format!(
                "cannot read profile {}: {e}",
                path.display()
            )))
        }
    };
    toml::from_str(&text).map_err(|e| {
        CliError::Usage(format!(
            "profile {} is invalid: {}; fix it, or delete it and run `jitgate login` again",
            path.display(),
            e.message()
        ))
    })
}

/// Write a profile atomically with mode 0600 (its directory 0700), replacing any old one.
pub fn save(path: &Path, profile: &Profile) -> Result<(), CliError> {
    let fail = |what: &str, e: std::io::Error| {
        CliError::Usage(format!("cannot {what} profile {}: {e}", path.display()))
    };
    let text = toml::to_string(profile)
        .map_err(|e| CliError::Usage(format!("cannot encode profile: {e}")))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(|e| fail("create the directory of", e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let write = || -> std::io::Result<()> {
        let mut file = options.open(&tmp)?;
        // The file may have existed with wider permissions; narrow them before writing.
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        file.write_all(b"# Written by `jitgate login`. Holds a bearer token: keep it private.\n")?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail("write", e)
    })
}

/// A warning when a profile holding a token can be read by other users.
pub fn permission_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            return Some(format!(
                "profile {} is readable by other users (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    None
}

/// Same server? Compared after normalisation, so `http://h:1/` and `http://h:1` agree.
fn same_server(a: &str, b: &str) -> bool {
    match (normalise_server(a), normalise_server(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.trim() == b.trim(),
    }
}

/// Work out server, token and profile from flags, environment and the profile file.
///
/// The profile's token is only used against the profile's own server: pointing the CLI at
/// another server with `--server` must not send it a token meant for somewhere else.
pub fn resolve(
    flags: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, CliError> {
    let profile_path = flags
        .profile
        .clone()
        .or_else(|| nonempty(env(ENV_PROFILE)).map(PathBuf::from))
        .or_else(|| default_path(env));
    let profile = match &profile_path {
        Some(path) => load(path)?,
        None => Profile::default(),
    };
    let (server, server_source) = if let Some(s) = nonempty(flags.server.clone()) {
        (s, Source::Flag)
    } else if let Some(s) = nonempty(env(ENV_SERVER)) {
        (s, Source::Env)
    } else if let Some(s) = nonempty(profile.server.clone()) {
        (s, Source::Profile)
    } else {
        (DEFAULT_SERVER.to_string(), Source::Default)
    };
    let profile_token_applies = match &profile.server {
        Some(p) => same_server(p, &server),
        None => true,
    };
    let (token, token_source) = if let Some(t) = nonempty(flags.token.clone()) {
        (Some(t), Some(Source::Flag))
    } else if let Some(t) = nonempty(env(ENV_TOKEN)) {
        (Some(t), Some(Source::Env))
    } else if let (Some(t), true) = (nonempty(profile.token.clone()), profile_token_applies) {
        (Some(t), Some(Source::Profile))
    } else {
        (None, None)
    };
    // Like the token, the profile's pin belongs to the profile's own server.
    let (server_fingerprint, fingerprint_source) =
        if let Some(f) = nonempty(flags.server_fingerprint.clone()) {
            (Some(f), Some(Source::Flag))
        } else if let Some(f) = nonempty(env(ENV_SERVER_FINGERPRINT)) {
            (Some(f), Some(Source::Env))
        } else if let (Some(f), true) = (
            nonempty(profile.server_fingerprint.clone()),
            profile_token_applies,
        ) {
            (Some(f), Some(Source::Profile))
        } else {
            (None, None)
        };
    let (server_ca_file, ca_file_source) = if let Some(f) = flags
        .server_ca_file
        .clone()
        .filter(|p| !p.as_os_str().is_empty())
    {
        (Some(f), Some(Source::Flag))
    } else if let Some(f) = nonempty(env(ENV_SERVER_CA_FILE)) {
        (Some(PathBuf::from(f)), Some(Source::Env))
    } else if let (Some(f), true) = (profile.server_ca_file.clone(), profile_token_applies) {
        (Some(f), Some(Source::Profile))
    } else {
        (None, None)
    };
    // One pin: the one from the stronger source (flag over environment over profile).
    let rank = |s: Option<Source>| match s {
        Some(Source::Flag) => 3,
        Some(Source::Env) => 2,
        Some(Source::Profile) => 1,
        _ => 0,
    };
    let (server_fingerprint, fingerprint_source, server_ca_file, ca_file_source) =
        match (server_fingerprint.is_some(), server_ca_file.is_some()) {
            (true, true) if rank(fingerprint_source) == rank(ca_file_source) => {
                return Err(CliError::Usage(
                    "both a server fingerprint and a server CA file are given at the same \
                     level: pin the server one way (--server-fingerprint or --server-ca-file)"
                        .into(),
                ))
            }
            (true, true) if rank(fingerprint_source) > rank(ca_file_source) => {
                (server_fingerprint, fingerprint_source, None, None)
            }
            (true, true) => (None, None, server_ca_file, ca_file_source),
            _ => (
                server_fingerprint,
                fingerprint_source,
                server_ca_file,
                ca_file_source,
            ),
        };
    let server_fingerprint = match server_fingerprint {
        Some(f) => {
            Some(jitgate_gateway::server_trust::parse_fingerprint(&f).map_err(CliError::Usage)?)
        }
        None => None,
    };
    Ok(Settings {
        server: server.trim().to_string(),
        server_source,
        token: token.map(|t| t.trim().to_string()),
        token_source,
        server_fingerprint,
        fingerprint_source,
        server_ca_file,
        ca_file_source,
        profile_path,
        profile,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn full_profile() -> Profile {
        Profile {
            server: Some("http://file:1".into()),
            token: Some("file-token".into()),
            identity: Some("alice".into()),
            server_fingerprint: None,
            server_ca_file: None,
        }
    }

    #[test]
    fn save_writes_0600_and_loads_back() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir
            .path()
            .join("nested")
            .join("jitgate")
            .join("profile.toml");
        save(&path, &full_profile())?;
        assert_eq!(load(&path)?, full_profile());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path)?.permissions().mode() & 0o777,
                0o600
            );
            let parent = path.parent().ok_or("no parent")?;
            assert_eq!(
                std::fs::metadata(parent)?.permissions().mode() & 0o777,
                0o700
            );
        }
        assert_eq!(permission_warning(&path), None);
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn save_narrows_an_existing_world_readable_file() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("profile.toml");
        std::fs::write(&path, "server = \"http://old:1\"\n")?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        assert!(permission_warning(&path).is_some_and(|w| w.contains("chmod 600")));
        save(&path, &full_profile())?;
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
        Ok(())
    }

    #[test]
    fn missing_profile_is_empty_and_bad_profile_names_the_key(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("profile.toml");
        assert_eq!(load(&path)?, Profile::default());
        std::fs::write(&path, "server = \"http://h:1\"\nsevrer = \"typo\"\n")?;
        let err = load(&path).err().ok_or("should fail")?;
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("sevrer"), "{err}");
        Ok(())
    }

    #[test]
    fn default_path_prefers_xdg_then_home() {
        let p = default_path(&env_of(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")]));
        assert_eq!(p, Some(PathBuf::from("/x/jitgate/profile.toml")));
        let p = default_path(&env_of(&[("HOME", "/h")]));
        assert_eq!(p, Some(PathBuf::from("/h/.config/jitgate/profile.toml")));
        assert_eq!(default_path(&env_of(&[])), None);
    }

    #[test]
    fn precedence_flag_then_env_then_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("profile.toml");
        save(&path, &full_profile())?;
        let env = env_of(&[
            (ENV_SERVER, "http://env:1"),
            (ENV_TOKEN, "env-token"),
            (ENV_PROFILE, &path.to_string_lossy()),
        ]);

        // Flags win over everything.
        let flags = Overrides {
            server: Some("http://flag:1".into()),
            token: Some("flag-token".into()),
            profile: None,
            server_fingerprint: None,
            server_ca_file: None,
        };
        let s = resolve(&flags, &env)?;
        assert_eq!(
            (s.server.as_str(), s.server_source),
            ("http://flag:1", Source::Flag)
        );
        assert_eq!(
            (s.token.as_deref(), s.token_source),
            (Some("flag-token"), Some(Source::Flag))
        );
        assert_eq!(
            s.profile_path.as_deref(),
            Some(path.as_path()),
            "JITGATE_PROFILE used"
        );

        // Then the environment.
        let s = resolve(&Overrides::default(), &env)?;
        assert_eq!(
            (s.server.as_str(), s.server_source),
            ("http://env:1", Source::Env)
        );
        assert_eq!(
            (s.token.as_deref(), s.token_source),
            (Some("env-token"), Some(Source::Env))
        );

        // Then the file (empty variables count as unset).
        let env = env_of(&[(ENV_SERVER, ""), (ENV_PROFILE, &path.to_string_lossy())]);
        let s = resolve(&Overrides::default(), &env)?;
        assert_eq!(
            (s.server.as_str(), s.server_source),
            ("http://file:1", Source::Profile)
        );
        assert_eq!(s.token.as_deref(), Some("file-token"));
        assert_eq!(s.profile.identity.as_deref(), Some("alice"));

        // `--profile` beats JITGATE_PROFILE; nothing anywhere gives the default server.
        let other = dir.path().join("other.toml");
        let flags = Overrides {
            profile: Some(other.clone()),
            ..Overrides::default()
        };
        let s = resolve(&flags, &env)?;
        assert_eq!(s.profile_path.as_deref(), Some(other.as_path()));
        assert_eq!(
            (s.server.as_str(), s.server_source),
            (DEFAULT_SERVER, Source::Default)
        );
        assert_eq!(s.token, None);
        Ok(())
    }

    #[test]
    fn profile_token_is_not_sent_to_another_server() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("profile.toml");
        save(&path, &full_profile())?;
        let env = env_of(&[(ENV_PROFILE, &path.to_string_lossy())]);
        let elsewhere = Overrides {
            server: Some("http://other:1".into()),
            ..Overrides::default()
        };
        assert_eq!(resolve(&elsewhere, &env)?.token, None);
        let same = Overrides {
            server: Some("http://file:1/".into()),
            ..Overrides::default()
        };
        assert_eq!(resolve(&same, &env)?.token.as_deref(), Some("file-token"));
        Ok(())
    }
}

#[cfg(test)]
mod default_server_tests {
    #[test]
    fn default_server_is_where_the_server_listens_by_default() {
        let listen = jitgate_server::config::ServerConfig::default().listen;
        assert_eq!(super::DEFAULT_SERVER, format!("http://{listen}"));
    }
}
