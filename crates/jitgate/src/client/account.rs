//! One's own account: change the password (`jitgate password`), end every session
//! (`jitgate logout --everywhere`), and an administrator's unlock after a lockout
//! (`jitgate identities unlock`).

use super::http::decode;
use super::profile::{self, Source};
use super::{prompt, text, Ctx};
use crate::output::outln;
use clap::Args;
use jitgate_server::api::types::{ChangePasswordBody, SessionsEnded, UnlockView};

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// End every session of yours (other terminals, browsers), not only this one.
    #[arg(long)]
    pub everywhere: bool,
}

#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the current password, then the new one, from the first two lines of stdin.
    #[arg(long)]
    pub password_stdin: bool,

    /// Current TOTP code (needed once TOTP is enrolled); asked for on the terminal otherwise.
    #[arg(long, value_name = "CODE", value_parser = text::parse_totp)]
    pub totp: Option<String>,
}

pub async fn change_password(ctx: &Ctx, args: PasswordArgs) -> anyhow::Result<()> {
    let (current, new) = if args.password_stdin {
        (
            prompt::stdin_line("current password")?,
            prompt::stdin_line("new password")?,
        )
    } else {
        (
            prompt::password(false, "Current password: ", false)?,
            prompt::password(false, "New password: ", true)?,
        )
    };
    let mut body = ChangePasswordBody {
        current,
        new,
        totp: args.totp,
    };
    let raw = match ctx.http.post(&["auth", "password"], &body).await {
        Err(e) if e.api_code() == Some("totp_required") && body.totp.is_none() => {
            if !prompt::can_prompt() {
                return Err(e
                    .with_hint("no terminal to ask for the code on: pass --totp CODE")
                    .into());
            }
            body.totp = Some(prompt::totp("TOTP code: ")?);
            ctx.http.post(&["auth", "password"], &body).await?
        }
        other => other?,
    };
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let ended: SessionsEnded = decode(raw)?;
    outln!(
        "password changed; {} other session(s) ended, this one stays",
        ended.sessions_ended
    );
    Ok(())
}

/// `jitgate logout --everywhere`: every session of the caller ends, this one included.
pub async fn logout_everywhere(ctx: &Ctx) -> anyhow::Result<()> {
    let raw = ctx
        .http
        .post_empty(&["auth", "logout", "everywhere"])
        .await?;
    let ended: SessionsEnded = decode(raw.clone())?;
    if ctx.settings.token_source == Some(Source::Profile) {
        if let Some(path) = &ctx.settings.profile_path {
            let mut p = ctx.settings.profile.clone();
            p.token = None;
            profile::save(path, &p)?;
        }
    }
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    outln!(
        "logged out everywhere: {} session(s) ended",
        ended.sessions_ended
    );
    Ok(())
}

/// `jitgate identities unlock ID` (admin).
pub async fn unlock(ctx: &Ctx, id: &str) -> anyhow::Result<()> {
    let raw = ctx.http.post_empty(&["identities", id, "unlock"]).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let v: UnlockView = decode(raw)?;
    outln!(
        "{}: {}; {} failed attempt(s) forgotten",
        v.identity,
        if v.was_locked {
            "lockout ended"
        } else {
            "was not locked out"
        },
        v.failures
    );
    Ok(())
}
