//! Configuration: built-in defaults that work on a laptop, then an optional TOML file
//! (`--config`), then `ROLLCALL_*` environment variables, each overriding the one before.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Every setting. Field names are the environment variables without `ROLLCALL_`, lowercased.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// `sqlite://…` (embedded) or `postgres://…`.
    pub database_url: String,
    /// `amqp://…` for RabbitMQ; unset for the embedded queue in the database.
    pub amqp_url: Option<String>,
    /// Prefix of RabbitMQ exchange and queue names.
    pub amqp_prefix: String,
    /// Deliveries of one message before RabbitMQ dead-letters it.
    pub amqp_delivery_limit: u32,
    /// Public listener (webhooks).
    pub ingress_addr: String,
    /// Internal listener (internal API, metrics, health).
    pub admin_addr: String,
    /// Base of webhook URLs and invitation links.
    pub public_url: String,
    /// `smtp://host:port` or `smtps://user:pass@host`; unset writes `.eml` files.
    pub smtp_url: Option<String>,
    /// Invitations the relay sends at once over SMTP, each on a connection of its own. An SMTP
    /// exchange is several round trips, so one at a time is bound by the server's latency.
    pub smtp_connections: u32,
    /// Sender of invitations.
    pub mail_from: String,
    /// `Reply-To` of invitations (a tenant may set its own).
    pub mail_reply_to: Option<String>,
    /// Directory of invitation template overrides (see the notifier's `Templates::load`).
    pub templates_dir: Option<PathBuf>,
    /// Operator bearer token; unset generates one on first start.
    pub admin_token: Option<String>,
    /// Base64 32-byte key encrypting secrets at rest; unset keeps one in `data_dir`.
    pub secret_key: Option<String>,
    /// Where the embedded database, the generated key and the `.eml` outbox live.
    pub data_dir: PathBuf,
    /// Tracing filter (`info`, `rollcall=debug,info`, …).
    pub log: String,
    /// `text` or `json`.
    pub log_format: String,
    /// Batches one worker process applies at once.
    pub worker_concurrency: usize,
    /// Most events applied in one transaction.
    pub worker_batch_size: usize,
    /// Deliveries a worker holds unacknowledged.
    pub worker_prefetch: u16,
    /// Comma-separated retry delays in milliseconds, one per attempt (the last repeats).
    pub retry_delays_ms: String,
    /// Attempts before an event that keeps failing goes to the dead-letter store.
    pub max_attempts: u32,
    /// Embedded queue: seconds a claimed event stays invisible to other workers.
    pub queue_visibility_seconds: u64,
    /// Seconds an invitation link stays valid.
    pub invitation_ttl_seconds: u64,
    /// Seconds a relay's claim on an invitation lasts: after a crash mid-send, another relay
    /// takes the invitation over once the claim has expired.
    pub invitation_claim_seconds: u64,
    /// Delay after an invitation's first transient SMTP refusal; doubles per attempt.
    pub invitation_retry_base_ms: u64,
    /// Attempts before a transiently refused invitation is marked `failed`.
    pub invitation_max_attempts: u32,
    /// Seconds a sender may take to deliver a webhook body.
    pub body_timeout_seconds: u64,
    /// Seconds handling one webhook may take in all before the ingress answers 503.
    pub request_timeout_seconds: u64,
    /// Comma-separated hosts (or `host:port`) ConnectWise signing keys may be fetched from.
    pub connectwise_key_hosts: String,
    /// Allow `http://` ConnectWise key URLs (for tests against a local key server only).
    pub connectwise_allow_http: bool,
    /// Milliseconds a request to a CRM's directory (users API) may take.
    pub directory_timeout_ms: u64,
    /// Seconds a directory answer (an owner, a record's owners, "not found") is reused.
    pub directory_cache_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://rollcall-data/rollcall.db?mode=rwc".to_owned(),
            amqp_url: None,
            amqp_prefix: String::new(),
            amqp_delivery_limit: 20,
            ingress_addr: "127.0.0.1:8080".to_owned(),
            admin_addr: "127.0.0.1:8081".to_owned(),
            public_url: "http://127.0.0.1:8080".to_owned(),
            smtp_url: None,
            smtp_connections: 8,
            mail_from: "rollcall <no-reply@localhost>".to_owned(),
            mail_reply_to: None,
            templates_dir: None,
            admin_token: None,
            secret_key: None,
            data_dir: PathBuf::from("rollcall-data"),
            log: "info".to_owned(),
            log_format: "text".to_owned(),
            worker_concurrency: 4,
            worker_batch_size: 128,
            worker_prefetch: 256,
            retry_delays_ms: "1000,5000,30000,120000,600000".to_owned(),
            max_attempts: 8,
            queue_visibility_seconds: 60,
            invitation_ttl_seconds: 7 * 24 * 3600,
            invitation_claim_seconds: 120,
            invitation_retry_base_ms: 10_000,
            invitation_max_attempts: 12,
            body_timeout_seconds: 10,
            request_timeout_seconds: 20,
            connectwise_key_hosts: ingress::DEFAULT_KEY_HOSTS.join(","),
            connectwise_allow_http: false,
            directory_timeout_ms: 10_000,
            directory_cache_seconds: 300,
        }
    }
}

/// Environment variable names, for `Env::only` (other `ROLLCALL_*` variables, such as the test
/// suite's, are not configuration).
const KEYS: &[&str] = &[
    "database_url",
    "amqp_url",
    "amqp_prefix",
    "amqp_delivery_limit",
    "ingress_addr",
    "admin_addr",
    "public_url",
    "smtp_url",
    "smtp_connections",
    "mail_from",
    "mail_reply_to",
    "templates_dir",
    "admin_token",
    "secret_key",
    "data_dir",
    "log",
    "log_format",
    "worker_concurrency",
    "worker_batch_size",
    "worker_prefetch",
    "retry_delays_ms",
    "max_attempts",
    "queue_visibility_seconds",
    "invitation_ttl_seconds",
    "invitation_claim_seconds",
    "invitation_retry_base_ms",
    "invitation_max_attempts",
    "body_timeout_seconds",
    "request_timeout_seconds",
    "connectwise_key_hosts",
    "connectwise_allow_http",
    "directory_timeout_ms",
    "directory_cache_seconds",
];

impl Config {
    pub(crate) fn directory(&self) -> directory::Directory {
        directory::Directory::new(directory::DirectoryOptions {
            timeout: Duration::from_millis(self.directory_timeout_ms),
            cache_ttl: Duration::from_secs(self.directory_cache_seconds),
        })
    }

    pub(crate) fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                anyhow::bail!("config file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        // An empty variable means "unset" (so `ROLLCALL_AMQP_URL=` picks the embedded queue).
        let figment = figment.merge(Env::prefixed("ROLLCALL_").only(KEYS));
        let mut config: Config = figment
            .extract()
            .map_err(|err| anyhow::anyhow!("configuration: {err}"))?;
        for value in [
            &mut config.amqp_url,
            &mut config.smtp_url,
            &mut config.admin_token,
            &mut config.secret_key,
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                *value = None;
            }
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !matches!(self.log_format.as_str(), "text" | "json") {
            anyhow::bail!(
                "ROLLCALL_LOG_FORMAT must be text or json, got {:?}",
                self.log_format
            );
        }
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            anyhow::bail!(
                "ROLLCALL_PUBLIC_URL must start with http:// or https://, got {:?}",
                self.public_url
            );
        }
        if self.body_timeout_seconds == 0
            || self.request_timeout_seconds <= self.body_timeout_seconds
        {
            anyhow::bail!(
                "ROLLCALL_REQUEST_TIMEOUT_SECONDS must be greater than ROLLCALL_BODY_TIMEOUT_SECONDS (and both at least 1)"
            );
        }
        if self.worker_concurrency == 0 || self.worker_prefetch == 0 || self.worker_batch_size == 0
        {
            anyhow::bail!(
                "ROLLCALL_WORKER_CONCURRENCY, ROLLCALL_WORKER_BATCH_SIZE and ROLLCALL_WORKER_PREFETCH must be at least 1"
            );
        }
        if self.invitation_ttl_seconds == 0 || self.invitation_ttl_seconds > 366 * 24 * 3600 {
            anyhow::bail!(
                "ROLLCALL_INVITATION_TTL_SECONDS must be between 1 and 31622400 (a year)"
            );
        }
        if !(1..=100).contains(&self.smtp_connections) {
            anyhow::bail!("ROLLCALL_SMTP_CONNECTIONS must be between 1 and 100");
        }
        if self.invitation_retry_base_ms == 0 || self.invitation_max_attempts == 0 {
            anyhow::bail!(
                "ROLLCALL_INVITATION_RETRY_BASE_MS and ROLLCALL_INVITATION_MAX_ATTEMPTS must be at least 1"
            );
        }
        if self.directory_timeout_ms == 0 || self.directory_timeout_ms > 120_000 {
            anyhow::bail!("ROLLCALL_DIRECTORY_TIMEOUT_MS must be between 1 and 120000");
        }
        if self.worker_batch_size > 1000 {
            anyhow::bail!("ROLLCALL_WORKER_BATCH_SIZE must be at most 1000");
        }
        if let Some(url) = &self.amqp_url
            && !(url.starts_with("amqp://") || url.starts_with("amqps://"))
        {
            anyhow::bail!("ROLLCALL_AMQP_URL must start with amqp:// or amqps://");
        }
        Ok(())
    }

    /// The retry policy: delay tiers and the attempt limit.
    pub(crate) fn retry_policy(&self) -> anyhow::Result<bus::RetryPolicy> {
        let delays = self
            .retry_delays_ms
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<u64>()
                    .ok()
                    .filter(|ms| *ms > 0)
                    .map(std::time::Duration::from_millis)
                    .ok_or_else(|| anyhow::anyhow!("ROLLCALL_RETRY_DELAYS_MS: {part:?} is not a positive number of milliseconds"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if delays.is_empty() {
            anyhow::bail!("ROLLCALL_RETRY_DELAYS_MS must list at least one delay");
        }
        if self.max_attempts == 0 {
            anyhow::bail!("ROLLCALL_MAX_ATTEMPTS must be at least 1");
        }
        Ok(bus::RetryPolicy {
            delays,
            max_attempts: self.max_attempts,
        })
    }

    /// The ConnectWise key hosts as a list.
    pub(crate) fn connectwise_key_policy(&self) -> ingress::KeyPolicy {
        ingress::KeyPolicy {
            allowed_hosts: self
                .connectwise_key_hosts
                .split(',')
                .map(str::trim)
                .filter(|host| !host.is_empty())
                .map(str::to_owned)
                .collect(),
            allow_http: self.connectwise_allow_http,
        }
    }

    pub(crate) fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

#[cfg(test)]
mod tests {
    use figment::Figment;
    use figment::providers::{Format, Serialized, Toml};

    use super::Config;

    #[test]
    fn the_example_file_is_a_valid_configuration() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/rollcall.example.toml"
        );
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(path))
            .extract()
            .unwrap();
        config.validate().unwrap();
        assert!(config.database_url.starts_with("postgres://"));
        assert_eq!(config.log_format, "json");
    }

    #[test]
    fn the_defaults_are_the_embedded_ones() {
        let config = Config::default();
        assert!(config.is_sqlite());
        assert!(config.amqp_url.is_none());
        assert_eq!(config.ingress_addr, "127.0.0.1:8080");
        assert_eq!(config.admin_addr, "127.0.0.1:8081");
        config.validate().unwrap();
    }

    #[test]
    fn smtp_connections_out_of_range_are_refused_by_name() {
        for connections in [0, 101] {
            let config = Config {
                smtp_connections: connections,
                ..Config::default()
            };
            let err = config.validate().unwrap_err().to_string();
            assert!(
                err.contains("ROLLCALL_SMTP_CONNECTIONS"),
                "{connections}: {err}"
            );
        }
        for connections in [1, 100] {
            let config = Config {
                smtp_connections: connections,
                ..Config::default()
            };
            config.validate().unwrap();
        }
    }
}
