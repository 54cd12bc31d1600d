//! Running the real `rollcall` binary: each test gets its own data directory, database and
//! queue names, and talks to the processes over HTTP on random ports.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::services::{PgDatabase, RabbitPrefix, fresh_postgres, fresh_rabbit};
use super::{eventually, sign};

pub const OPERATOR_TOKEN: &str = "test-operator-token";

/// Retry delays every test process uses unless a test sets its own: short, so retries and
/// dead-lettering happen within a test's time.
pub const RETRY_DELAYS_MS: &str = "200,400,800";
pub const MAX_ATTEMPTS: u32 = 4;

/// The retry policy matching [`RETRY_DELAYS_MS`] (its RabbitMQ queues are cleaned up after a
/// test).
pub fn test_retry_policy() -> bus::RetryPolicy {
    bus::RetryPolicy {
        delays: RETRY_DELAYS_MS
            .split(',')
            .filter_map(|ms| ms.parse().ok())
            .map(Duration::from_millis)
            .collect(),
        max_attempts: MAX_ATTEMPTS,
    }
}

/// Which database and queue the processes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    SqliteEmbedded,
    PostgresRabbit,
    SqliteRabbit,
    PostgresEmbedded,
}

impl Backend {
    pub const ALL: [Backend; 4] = [
        Backend::SqliteEmbedded,
        Backend::PostgresRabbit,
        Backend::SqliteRabbit,
        Backend::PostgresEmbedded,
    ];

    fn postgres(self) -> bool {
        matches!(self, Backend::PostgresRabbit | Backend::PostgresEmbedded)
    }

    fn rabbit(self) -> bool {
        matches!(self, Backend::PostgresRabbit | Backend::SqliteRabbit)
    }
}

/// The resources one test's processes share.
#[derive(Debug)]
pub struct TestEnv {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub database_url: String,
    pg: Option<PgDatabase>,
    pub rabbit: Option<RabbitPrefix>,
    secret_key: String,
    retry: bus::RetryPolicy,
}

/// How to start one process.
#[derive(Debug, Clone, Default)]
pub struct Spawn {
    pub roles: Vec<&'static str>,
    pub smtp_url: Option<String>,
    /// Overrides the broker URL (e.g. a closed port).
    pub amqp_url: Option<String>,
    /// Overrides the database URL (e.g. through a proxy).
    pub database_url: Option<String>,
    /// Leave `ROLLCALL_ADMIN_TOKEN` unset (the process generates one).
    pub generated_token: bool,
    /// Do not wait for `/readyz` (the test expects the process never to be ready).
    pub expect_unready: bool,
    pub env: Vec<(String, String)>,
}

impl TestEnv {
    /// `None` when a required server is unreachable and the test should skip.
    pub async fn new(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let pg = if backend.postgres() {
            Some(fresh_postgres().await?)
        } else {
            None
        };
        let rabbit = if backend.rabbit() {
            Some(fresh_rabbit().await?)
        } else {
            None
        };
        let database_url = match &pg {
            Some(pg) => pg.url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("rollcall.db").display()
            ),
        };
        let key: [u8; 32] = std::array::from_fn(|i| u8::try_from(i * 7 % 251).unwrap_or(0));
        Some(Self {
            backend,
            dir,
            database_url,
            pg,
            rabbit,
            secret_key: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key),
            retry: test_retry_policy(),
        })
    }

    /// Uses `retry` instead of the short default policy (its queues are cleaned up too).
    #[must_use]
    pub fn with_retry(mut self, retry: bus::RetryPolicy) -> Self {
        self.retry = retry;
        if let Some(rabbit) = self.rabbit.as_mut() {
            rabbit.retry = self.retry.clone();
        }
        self
    }

    /// The PostgreSQL URL of this test's database with its host and port replaced.
    pub fn database_url_via(&self, addr: &str) -> String {
        let url = &self.database_url;
        match (url.find('@'), url.rfind('/')) {
            (Some(at), Some(slash)) if slash > at => {
                format!("{}{addr}{}", &url[..=at], &url[slash..])
            }
            _ => url.clone(),
        }
    }

    pub fn outbox(&self) -> PathBuf {
        self.dir.path().join("data").join("outbox")
    }

    /// The binary with this environment's configuration (and no other `ROLLCALL_*`).
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rollcall"));
        for (key, _) in std::env::vars() {
            if key.starts_with("ROLLCALL_") {
                command.env_remove(key);
            }
        }
        command
            .current_dir(self.dir.path())
            .env("ROLLCALL_DATABASE_URL", &self.database_url)
            .env("ROLLCALL_DATA_DIR", self.dir.path().join("data"))
            .env("ROLLCALL_SECRET_KEY", &self.secret_key)
            .env("ROLLCALL_INGRESS_ADDR", "127.0.0.1:0")
            .env("ROLLCALL_ADMIN_ADDR", "127.0.0.1:0")
            .env("ROLLCALL_LOG", "info,sqlx=warn")
            .env(
                "ROLLCALL_RETRY_DELAYS_MS",
                self.retry
                    .delays
                    .iter()
                    .map(|d| d.as_millis().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .env("ROLLCALL_MAX_ATTEMPTS", self.retry.max_attempts.to_string())
            .kill_on_drop(true);
        if let Some(rabbit) = &self.rabbit {
            command
                .env("ROLLCALL_AMQP_URL", &rabbit.url)
                .env("ROLLCALL_AMQP_PREFIX", &rabbit.prefix);
        }
        command
    }

    /// Starts `rollcall serve` and waits until its listeners are up.
    pub async fn spawn(&self, options: Spawn) -> Process {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut command = self.command();
        command.arg("serve");
        for role in &options.roles {
            command.arg("--role").arg(role);
        }
        if !options.generated_token {
            command.env("ROLLCALL_ADMIN_TOKEN", OPERATOR_TOKEN);
        }
        if let Some(url) = &options.smtp_url {
            command.env("ROLLCALL_SMTP_URL", url);
        }
        if let Some(url) = &options.amqp_url {
            command.env("ROLLCALL_AMQP_URL", url);
        }
        if let Some(url) = &options.database_url {
            command.env("ROLLCALL_DATABASE_URL", url);
        }
        for (key, value) in &options.env {
            command.env(key, value);
        }
        let log = self
            .dir
            .path()
            .join(format!("rollcall-{}.log", uuid::Uuid::new_v4().simple()));
        let log_file = std::fs::File::create(&log).expect("log file");
        command.stdout(Stdio::piped()).stderr(Stdio::from(log_file));
        let mut child = command.spawn().expect("starting rollcall");
        let stdout = child.stdout.take().expect("stdout");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let collected = Arc::clone(&lines);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(mut lines) = collected.lock() {
                    lines.push(line);
                }
            }
        });
        let wants_ingress = options.roles.is_empty() || options.roles.contains(&"ingress");
        let wants_admin = options.roles.is_empty() || options.roles.contains(&"admin");
        let wants_worker = options.roles.is_empty() || options.roles.contains(&"worker");
        let watched = Arc::clone(&lines);
        let started = eventually("rollcall to start", Duration::from_secs(60), move || {
            let lines = watched.lock().map(|l| l.clone()).unwrap_or_default();
            let find = |prefix: &str| {
                lines
                    .iter()
                    .find_map(|line| line.strip_prefix(prefix).map(str::to_owned))
            };
            let ingress = find("ingress listening on ");
            let admin = find("admin listening on ");
            let worker = lines.iter().any(|line| line == "worker consuming");
            let ready = (!wants_ingress || ingress.is_some())
                && (!wants_admin || admin.is_some())
                && (!wants_worker || worker);
            async move { ready.then_some((ingress, admin)) }
        });
        let (ingress, admin) = tokio::select! {
            started = started => started,
            status = child.wait() => panic!(
                "rollcall exited during start-up ({status:?}); log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        };
        // Listening is not ready: the queue connection may still be coming up.
        if !options.expect_unready
            && let Some(base) = ingress.as_ref().or(admin.as_ref())
        {
            let http = reqwest::Client::new();
            let url = format!("{base}/readyz");
            eventually("rollcall to be ready", Duration::from_secs(60), || {
                let request = http.get(&url).send();
                async move {
                    request
                        .await
                        .ok()
                        .filter(|r| r.status().is_success())
                        .map(|_| ())
                }
            })
            .await;
        }
        let operator_token = if options.generated_token {
            lines.lock().ok().and_then(|lines| {
                lines.iter().find_map(|line| {
                    line.strip_prefix("operator token (shown once; keep it): ")
                        .map(str::to_owned)
                })
            })
        } else {
            Some(OPERATOR_TOKEN.to_owned())
        };
        Process {
            child,
            ingress,
            admin,
            operator_token,
            stdout: lines,
            log,
        }
    }

    /// Drops the database and the queues.
    pub async fn cleanup(self) {
        if let Some(pg) = self.pg {
            pg.drop_database().await;
        }
        if let Some(rabbit) = &self.rabbit {
            rabbit.delete().await;
        }
    }
}

/// One running `rollcall serve`.
#[derive(Debug)]
pub struct Process {
    pub child: Child,
    pub ingress: Option<String>,
    pub admin: Option<String>,
    pub operator_token: Option<String>,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub log: PathBuf,
}

impl Process {
    pub fn ingress_url(&self) -> &str {
        self.ingress
            .as_deref()
            .expect("this process runs the ingress")
    }

    pub fn admin_url(&self) -> &str {
        self.admin
            .as_deref()
            .expect("this process runs the internal API")
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// An integration created for a test.
#[derive(Debug, Clone)]
pub struct Integration {
    pub id: String,
    pub tenant_id: String,
    pub secret: String,
    pub body: Value,
}

/// A client of the internal API and the ingress.
#[derive(Debug, Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub admin: String,
    pub ingress: String,
    pub token: String,
}

impl Client {
    pub fn new(process: &Process) -> Self {
        // reqwest is built without a default TLS provider; rollcall uses ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            http: reqwest::Client::new(),
            admin: process.admin.clone().unwrap_or_default(),
            ingress: process.ingress.clone().unwrap_or_default(),
            token: process.operator_token.clone().unwrap_or_default(),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.admin))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.admin))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs a raw body to the internal API.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: String) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.admin))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs raw bytes (a file upload) to the internal API.
    pub async fn post_bytes(&self, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.admin))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// GETs text (CSV) from the internal API.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.admin))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// An integration created (in draft) from a full request body; answers the creation.
    pub async fn create_draft(&self, request: &Value) -> Value {
        let (status, body) = self.post("/v1/integrations", request).await;
        assert_eq!(status, 201, "creating an integration: {body}");
        body
    }

    pub async fn create_tenant(&self, name: &str) -> String {
        let (status, body) = self.post("/v1/tenants", &json!({"name": name})).await;
        assert_eq!(status, 201, "creating a tenant: {body}");
        body["id"].as_str().expect("tenant id").to_owned()
    }

    /// A live integration with `settings`.
    pub async fn create_integration(&self, tenant_id: &str, settings: Value) -> Integration {
        let (status, body) = self
            .post(
                "/v1/integrations",
                &json!({"tenant_id": tenant_id, "name": "CRM", "source": "rollcall", "settings": settings}),
            )
            .await;
        assert_eq!(status, 201, "creating an integration: {body}");
        let id = body["id"].as_str().expect("integration id").to_owned();
        let (status, published) = self
            .post(&format!("/v1/integrations/{id}/publish"), &json!({}))
            .await;
        assert_eq!(status, 200, "publishing: {published}");
        assert_eq!(published["state"], "live");
        Integration {
            id,
            tenant_id: tenant_id.to_owned(),
            secret: body["secret"].as_str().expect("secret").to_owned(),
            body,
        }
    }

    /// Posts `body` to the integration's webhook URL with the given headers.
    pub async fn post_hook(
        &self,
        integration_id: &str,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, String)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut request = self
            .http
            .post(format!("{}/hooks/{integration_id}", self.ingress))
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("posting a webhook");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (
            status,
            response.json().await.unwrap_or(Value::Null),
            headers,
        )
    }

    /// Posts a raw request to the webhook URL (`query` may be empty or start with `?`); answers
    /// the status, the body text and the headers.
    pub async fn hook(
        &self,
        integration_id: &str,
        query: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, String)],
    ) -> (u16, String, reqwest::header::HeaderMap) {
        let mut request = self
            .http
            .post(format!("{}/hooks/{integration_id}{query}", self.ingress))
            .header("content-type", content_type)
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("posting a webhook");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, response.text().await.unwrap_or_default(), headers)
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .patch(format!("{}{path}", self.admin))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("PATCH");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .delete(format!("{}{path}", self.admin))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("DELETE");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Posts `body` signed the Standard Webhooks way, now, with delivery id `message_id`.
    pub async fn send(
        &self,
        integration: &Integration,
        message_id: &str,
        body: &str,
    ) -> (u16, Value) {
        let headers = sign(&integration.secret, message_id, super::now_seconds(), body);
        let (status, value, _) = self
            .post_hook(&integration.id, body.to_owned(), &headers)
            .await;
        (status, value)
    }

    /// Sends one event that must be accepted, waits until the event log holds it, and returns
    /// its event id.
    pub async fn send_processed(
        &self,
        integration: &Integration,
        message_id: &str,
        body: &str,
    ) -> Value {
        let (status, answer) = self.send(integration, message_id, body).await;
        assert_eq!(status, 202, "{answer}");
        let event_id = answer["event_id"].clone();
        let query = format!("?integration_id={}", integration.id);
        eventually("the event to be processed", Duration::from_secs(30), || {
            let query = &query;
            let event_id = &event_id;
            async move {
                let events = self.events(query).await;
                events.iter().any(|e| &e["id"] == event_id).then_some(())
            }
        })
        .await;
        event_id
    }

    pub async fn users(&self, query: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/v1/users{query}")).await;
        assert_eq!(status, 200, "listing users: {body}");
        body["items"].as_array().cloned().unwrap_or_default()
    }

    pub async fn issues(&self, query: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/v1/issues{query}")).await;
        assert_eq!(status, 200, "listing issues: {body}");
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the event with delivery id `message_id` is in the log, and answers it.
    pub async fn processed(&self, integration_id: &str, message_id: &str) -> Value {
        let query = format!("?integration_id={integration_id}&limit=500");
        super::eventually(
            &format!("event {message_id} to be processed"),
            Duration::from_secs(30),
            || {
                let client = self.clone();
                let query = query.clone();
                async move {
                    client
                        .events(&query)
                        .await
                        .into_iter()
                        .find(|event| event["provider_event_id"] == message_id)
                }
            },
        )
        .await
    }

    pub async fn events(&self, query: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/v1/events{query}")).await;
        assert_eq!(status, 200, "listing events: {body}");
        body["items"].as_array().cloned().unwrap_or_default()
    }
}
