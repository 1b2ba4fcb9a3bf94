//! `tenure.toml`: the lowest-precedence source of settings (flags > `TENURE_*` > file).

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use tenure_store::DatabaseUrl;

pub const DEFAULT_DATABASE: &str = "sqlite://tenure.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub database: Option<String>,
    pub listen: Option<String>,
}

impl Config {
    /// Reads the given file, or `tenure.toml` if it exists, or nothing.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (Path::new("tenure.toml").to_path_buf(), false),
        };
        if !required && !path.exists() {
            return Ok(Config::default());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("{} is not valid (keys: database, listen)", path.display()))
    }

    pub fn database(&self, flag_or_env: Option<&str>) -> anyhow::Result<DatabaseUrl> {
        let text = flag_or_env
            .or(self.database.as_deref())
            .unwrap_or(DEFAULT_DATABASE);
        Ok(DatabaseUrl::parse(text)?)
    }

    /// Whether the database was chosen by a flag, the environment or the file (not the
    /// default).
    pub fn database_is_explicit(&self, flag_or_env: Option<&str>) -> bool {
        flag_or_env.is_some() || self.database.is_some()
    }

    pub fn listen(&self, flag_or_env: Option<&str>) -> anyhow::Result<SocketAddr> {
        let text = flag_or_env
            .or(self.listen.as_deref())
            .unwrap_or(DEFAULT_LISTEN);
        text.parse().with_context(|| {
            format!("listen address `{text}` is not HOST:PORT (e.g. 127.0.0.1:7878)")
        })
    }
}

/// `TENURE_RISK_RETRAIN_DAYS`: retrain each workspace's churn-risk model when it is this many
/// days old (default 7; 0 turns retraining off: training only on demand, while a model
/// `tenure risk train` stores still reaches the running server's segments).
pub fn risk_retrain_days() -> anyhow::Result<u32> {
    match std::env::var("TENURE_RISK_RETRAIN_DAYS") {
        Err(_) => Ok(7),
        Ok(text) => match text.trim().parse::<u32>() {
            Ok(days) => Ok(days),
            Err(_) => anyhow::bail!(
                "TENURE_RISK_RETRAIN_DAYS=`{text}`: give a whole number of days (0 turns retraining off)"
            ),
        },
    }
}

/// The server's limits from `TENURE_MAX_CONNECTIONS`, `TENURE_MAX_CONNECTIONS_PER_ADDRESS`,
/// `TENURE_MAX_IN_FLIGHT`,
/// `TENURE_HEADER_TIMEOUT_SECS`, `TENURE_BODY_TIMEOUT_SECS` and `TENURE_REQUEST_TIMEOUT_SECS`
/// (docs/security.md, "Limits"); the defaults otherwise.
pub fn limits() -> anyhow::Result<tenure_server::serve::Limits> {
    let mut limits = tenure_server::serve::Limits::default();
    let number = |name: &str| -> anyhow::Result<Option<u64>> {
        match std::env::var(name) {
            Err(_) => Ok(None),
            Ok(text) => match text.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => anyhow::bail!("{name}=`{text}`: give a whole number above 0"),
            },
        }
    };
    let seconds = std::time::Duration::from_secs;
    if let Some(n) = number("TENURE_MAX_CONNECTIONS")? {
        limits.max_connections = usize::try_from(n)?;
    }
    if let Some(n) = number("TENURE_MAX_CONNECTIONS_PER_ADDRESS")? {
        limits.max_connections_per_address = usize::try_from(n)?;
    }
    if let Some(n) = number("TENURE_MAX_IN_FLIGHT")? {
        limits.max_in_flight = usize::try_from(n)?;
    }
    if let Some(n) = number("TENURE_HEADER_TIMEOUT_SECS")? {
        limits.header_read_timeout = seconds(n);
    }
    if let Some(n) = number("TENURE_BODY_TIMEOUT_SECS")? {
        limits.body_read_timeout = seconds(n);
    }
    if let Some(n) = number("TENURE_REQUEST_TIMEOUT_SECS")? {
        limits.request_timeout = seconds(n);
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file: Config =
            toml::from_str("database = \"sqlite://file.db\"\nlisten = \"0.0.0.0:9000\"").unwrap();
        assert_eq!(
            file.database(Some("sqlite://flag.db")).unwrap(),
            DatabaseUrl::Sqlite("flag.db".into())
        );
        assert_eq!(
            file.database(None).unwrap(),
            DatabaseUrl::Sqlite("file.db".into())
        );
        assert_eq!(
            Config::default().database(None).unwrap(),
            DatabaseUrl::Sqlite("tenure.db".into())
        );
        assert_eq!(file.listen(None).unwrap().port(), 9000);
        assert!(Config::default().listen(Some("nonsense")).is_err());
        assert!(
            toml::from_str::<Config>("databse = 1").is_err(),
            "typos in the file are reported"
        );
    }
}
