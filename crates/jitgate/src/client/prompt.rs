//! Reading secrets: from the terminal (echo off) or, for scripts, one line of stdin.

use super::http::CliError;
use super::text::parse_totp;
use std::io::{BufRead, IsTerminal};

/// Is there a person at a terminal who can answer a prompt?
pub fn can_prompt() -> bool {
    std::io::stdin().is_terminal() || std::io::stderr().is_terminal()
}

/// Ask on the terminal with echo off.
pub fn secret(prompt: &str) -> Result<String, CliError> {
    rpassword::prompt_password(prompt)
        .map_err(|e| CliError::Usage(format!("cannot read from the terminal: {e}")))
}

/// Ask for a TOTP code on the terminal and check its shape.
pub fn totp(prompt: &str) -> Result<String, CliError> {
    parse_totp(&secret(prompt)?).map_err(CliError::Usage)
}

/// A TOTP code from the terminal, or `None` when the answer is empty.
pub fn optional_totp(prompt: &str) -> Result<Option<String>, CliError> {
    let answer = secret(prompt)?;
    if answer.trim().is_empty() {
        return Ok(None);
    }
    parse_totp(&answer).map(Some).map_err(CliError::Usage)
}

/// One line of stdin without its line ending (`--password-stdin`).
pub fn stdin_line(what: &str) -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Usage(format!("cannot read the {what} from stdin: {e}")))?;
    let line = line.trim_end_matches(['\n', '\r']).to_string();
    if line.is_empty() {
        return Err(CliError::Usage(format!("stdin was empty: pipe the {what} in, e.g. `printf '%s' \"$PW\" | jitgate ... --password-stdin`")));
    }
    Ok(line)
}

/// A password from stdin (`--password-stdin`) or the terminal; `confirm` asks twice.
pub fn password(from_stdin: bool, prompt: &str, confirm: bool) -> Result<String, CliError> {
    if from_stdin {
        return stdin_line("password");
    }
    if !can_prompt() {
        return Err(CliError::Usage(
            "no terminal to ask for the password on: pass --password-stdin and pipe it in".into(),
        ));
    }
    let first = secret(prompt)?;
    if first.is_empty() {
        return Err(CliError::Usage("the password is empty".into()));
    }
    if confirm && secret("Repeat it: ")? != first {
        return Err(CliError::Usage(
            "the two passwords differ; nothing was changed".into(),
        ));
    }
    Ok(first)
}
