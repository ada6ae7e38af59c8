//! The kept session: one refresh token per server, in the user's configuration directory,
//! readable by its owner only. The password is never kept.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use crate::error::CliError;

pub struct Credentials;

impl Credentials {
    /// `$MONTAGE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/montage`, else `~/.config/montage`.
    fn dir() -> Result<PathBuf, CliError> {
        if let Some(dir) = std::env::var_os("MONTAGE_CONFIG_DIR") {
            return Ok(dir.into());
        }
        let base = match std::env::var_os("XDG_CONFIG_HOME") {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(std::env::var_os("HOME").ok_or_else(|| {
                CliError::Local(
                    "neither MONTAGE_CONFIG_DIR, XDG_CONFIG_HOME nor HOME is set".into(),
                )
            })?)
            .join(".config"),
        };
        Ok(base.join("montage"))
    }

    fn read_all() -> Result<BTreeMap<String, String>, CliError> {
        let path = Self::dir()?.join("credentials.json");
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|err| CliError::local(path.display(), err))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(err) => Err(CliError::local(path.display(), err)),
        }
    }

    /// Writes the whole file anew, owner-only, then moves it into place.
    fn write_all(tokens: &BTreeMap<String, String>) -> Result<(), CliError> {
        let dir = Self::dir()?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|err| CliError::local(dir.display(), err))?;
        let path = dir.join("credentials.json");
        let partial = dir.join("credentials.json.partial");
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .and_then(|mut file| file.write_all(&serde_json::to_vec_pretty(tokens)?))
            .and_then(|()| std::fs::rename(&partial, &path));
        written.map_err(|err| CliError::local(path.display(), err))
    }

    pub fn store(server: &str, refresh_token: &str) -> Result<(), CliError> {
        let mut tokens = Self::read_all()?;
        tokens.insert(server.to_owned(), refresh_token.to_owned());
        Self::write_all(&tokens)
    }

    pub fn load(server: &str) -> Result<String, CliError> {
        Self::read_all()?
            .remove(server)
            .ok_or_else(|| CliError::NotSignedIn(server.to_owned()))
    }

    pub fn forget(server: &str) -> Result<(), CliError> {
        let mut tokens = Self::read_all()?;
        tokens.remove(server);
        Self::write_all(&tokens)
    }
}

/// `MONTAGE_PASSWORD`, else a line typed on the terminal without echo.
pub fn password() -> Result<String, CliError> {
    if let Ok(password) = std::env::var("MONTAGE_PASSWORD") {
        return Ok(password);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::Local(
            "no terminal to ask the password on: set MONTAGE_PASSWORD".into(),
        ));
    }
    eprint!("Password: ");
    let _ = std::io::stderr().flush();
    let saved = rustix::termios::tcgetattr(&stdin).map_err(|e| CliError::local("terminal", e))?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
    let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &saved);
    eprintln!();
    read.map_err(|err| CliError::local("password", err))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
