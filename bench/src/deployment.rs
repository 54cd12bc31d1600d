//! Starting rollcall the way it is deployed (one embedded process; or separate ingress, API and
//! worker processes on PostgreSQL and RabbitMQ), and reading what the benchmark needs from it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use smtp_sink::SmtpSink;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub(crate) const TOKEN: &str = "bench-operator-token";

/// One running `rollcall serve`.
#[derive(Debug)]
pub(crate) struct Process {
    pub role: String,
    pub child: Child,
    pub ingress: Option<String>,
    pub admin: Option<String>,
}

impl Process {
    /// Peak resident set size so far (VmHWM), in MiB.
    pub(crate) fn peak_rss_mib(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }

    pub(crate) async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(35), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Where a deployment keeps its state, and how to reach it.
#[derive(Debug)]
pub(crate) struct Deployment {
    pub name: &'static str,
    pub binary: PathBuf,
    pub dir: PathBuf,
    pub database_url: String,
    pub amqp: Option<(String, String)>,
    /// Where invitations go; `None`: `.eml` files, the embedded default.
    pub smtp: Option<SmtpSink>,
    /// PostgreSQL: the admin URL and database name to drop afterwards.
    pub pg_cleanup: Option<(String, String)>,
    pub processes: Vec<Process>,
    pub db: Option<DatabaseConnection>,
}

impl Deployment {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        for (key, _) in std::env::vars() {
            if key.starts_with("ROLLCALL_") {
                command.env_remove(key);
            }
        }
        command
            .current_dir(&self.dir)
            .env("ROLLCALL_DATABASE_URL", &self.database_url)
            .env("ROLLCALL_DATA_DIR", self.dir.join("data"))
            .env("ROLLCALL_ADMIN_TOKEN", TOKEN)
            .env("ROLLCALL_INGRESS_ADDR", "127.0.0.1:0")
            .env("ROLLCALL_ADMIN_ADDR", "127.0.0.1:0")
            .env(
                "ROLLCALL_SECRET_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            )
            .kill_on_drop(true);
        if let Some(sink) = &self.smtp {
            command.env("ROLLCALL_SMTP_URL", &sink.url);
        }
        if let Some((url, prefix)) = &self.amqp {
            command
                .env("ROLLCALL_AMQP_URL", url)
                .env("ROLLCALL_AMQP_PREFIX", prefix);
        }
        command
    }

    /// Starts `rollcall serve` with `roles` (all when empty) and waits for its listeners.
    pub(crate) async fn spawn(&mut self, roles: &[&str]) -> anyhow::Result<()> {
        let mut command = self.command();
        command.arg("serve");
        for role in roles {
            command.arg("--role").arg(role);
        }
        let log = std::fs::File::create(self.dir.join(format!(
            "{}-{}.log",
            roles.join("-"),
            self.processes.len()
        )))?;
        command.stdout(Stdio::piped()).stderr(Stdio::from(log));
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let (mut ingress, mut admin, mut worker) = (None, None, false);
        let wants = |role: &str| roles.is_empty() || roles.contains(&role);
        let deadline = Instant::now() + Duration::from_secs(60);
        while (wants("ingress") && ingress.is_none())
            || (wants("admin") && admin.is_none())
            || (wants("worker") && !worker)
        {
            let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
                .await
                .context("rollcall did not start in time")??
                .context("rollcall exited during start-up")?;
            if let Some(url) = line.strip_prefix("ingress listening on ") {
                ingress = Some(url.to_owned());
            } else if let Some(url) = line.strip_prefix("admin listening on ") {
                admin = Some(url.to_owned());
            } else if line == "worker consuming" {
                worker = true;
            }
        }
        // Keep reading stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http = reqwest::Client::new();
        if let Some(base) = ingress.as_ref().or(admin.as_ref()) {
            loop {
                let ready = http
                    .get(format!("{base}/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    break;
                }
                anyhow::ensure!(Instant::now() < deadline, "rollcall did not become ready");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        self.processes.push(Process {
            role: if roles.is_empty() {
                "all".to_owned()
            } else {
                roles.join("+")
            },
            child,
            ingress,
            admin,
        });
        Ok(())
    }

    pub(crate) fn ingress_url(&self) -> anyhow::Result<String> {
        self.processes
            .iter()
            .find_map(|p| p.ingress.clone())
            .context("no ingress process")
    }

    pub(crate) fn admin_url(&self) -> anyhow::Result<String> {
        self.processes
            .iter()
            .find_map(|p| p.admin.clone())
            .context("no admin process")
    }

    pub(crate) async fn database(&mut self) -> anyhow::Result<&DatabaseConnection> {
        if self.db.is_none() {
            self.db = Some(Database::connect(&self.database_url).await?);
        }
        self.db.as_ref().context("database")
    }

    pub(crate) async fn scalar(&mut self, sql: &str) -> anyhow::Result<i64> {
        let db = self.database().await?;
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                sql.to_owned(),
            ))
            .await?
            .context("no row")?;
        Ok(row.try_get_by_index::<i64>(0)?)
    }

    /// Rows of `table` (whose ids are UUIDv7) created since `since`, optionally with a
    /// condition. The id range is an index range scan, so polling this during a run costs
    /// little, unlike `count(*)` over a table that earlier phases filled.
    pub(crate) async fn created_since(
        &mut self,
        table: &str,
        since: std::time::SystemTime,
        condition: &str,
    ) -> anyhow::Result<i64> {
        let millis = since
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        // The smallest UUIDv7 of that millisecond: the timestamp, then zeros.
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
        let bound = uuid::Uuid::from_bytes(bytes);
        let db = self.database().await?;
        let backend = db.get_database_backend();
        let extra = if condition.is_empty() {
            String::new()
        } else {
            format!(" AND {condition}")
        };
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT count(*) FROM {table} WHERE id >= {}{extra}",
                    placeholders(backend, 1, 1)
                ),
                [bound.into()],
            ))
            .await?
            .context("no row")?;
        Ok(row.try_get_by_index::<i64>(0)?)
    }

    /// Of the owners `external_ids` of `integration`: how many have a user, and how many of
    /// those users were sent an invitation. Two lookups by key (the identities' unique key,
    /// then the invitations' user index), cheap whatever the tables hold: a probe of a few
    /// owners, polled often, so the full counts of `created_since` (which check the
    /// visibility of every new row) run only when it says the work is likely done.
    pub(crate) async fn provisioned(
        &mut self,
        integration: &str,
        external_ids: &[String],
    ) -> anyhow::Result<(i64, i64)> {
        let integration: uuid::Uuid = integration.parse()?;
        let db = self.database().await?;
        let backend = db.get_database_backend();
        let users: Vec<uuid::Uuid> = db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT user_id FROM identities WHERE integration_id = {} AND external_id IN ({})",
                    placeholders(backend, 1, 1),
                    placeholders(backend, 2, external_ids.len())
                ),
                std::iter::once(integration.into())
                    .chain(external_ids.iter().map(|id| id.clone().into())),
            ))
            .await?
            .iter()
            .map(|row| row.try_get_by_index(0))
            .collect::<Result<_, _>>()?;
        if users.is_empty() {
            return Ok((0, 0));
        }
        // Statuses read by user and counted here: a status condition in the query may lead
        // PostgreSQL to read every sent invitation through the status index.
        let invitations = db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT user_id, status FROM invitations WHERE user_id IN ({})",
                    placeholders(backend, 1, users.len())
                ),
                users.iter().map(|id| (*id).into()),
            ))
            .await?;
        let mut invited = std::collections::HashSet::new();
        for row in &invitations {
            let (user, status): (uuid::Uuid, String) =
                (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
            if status == "sent" {
                invited.insert(user);
            }
        }
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        Ok((count(users.len()), count(invited.len())))
    }

    /// Milliseconds from acceptance to the committed decision of each event whose delivery id
    /// starts with `prefix`.
    pub(crate) async fn processing_millis(&mut self, prefix: &str) -> anyhow::Result<Vec<i64>> {
        let db = self.database().await?;
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT processed_at - received_at FROM events WHERE provider_event_id LIKE '{prefix}%'"),
            ))
            .await?;
        rows.iter()
            .map(|row| row.try_get_by_index::<i64>(0).map_err(Into::into))
            .collect()
    }

    /// Messages waiting to be processed.
    pub(crate) async fn backlog(&mut self) -> anyhow::Result<u64> {
        match self.amqp.clone() {
            Some((url, prefix)) => {
                let connection =
                    lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
                        .await?;
                let channel = connection.create_channel().await?;
                let queue = channel
                    .queue_declare(
                        format!("{prefix}rollcall.work").as_str().into(),
                        lapin::options::QueueDeclareOptions {
                            passive: true,
                            ..lapin::options::QueueDeclareOptions::default()
                        },
                        lapin::types::FieldTable::default(),
                    )
                    .await?;
                let _ = connection.close(200, "done".into()).await;
                Ok(u64::from(queue.message_count()))
            }
            None => Ok(
                u64::try_from(self.scalar("SELECT count(*) FROM queue_jobs").await?).unwrap_or(0),
            ),
        }
    }

    /// Waits until nothing is queued, the event log stopped growing and every invitation is
    /// sent, so that the next phase starts on a quiet system instead of sharing the machine
    /// with the previous phase's leftovers.
    pub(crate) async fn drain(&mut self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        let mut last = -1;
        loop {
            let logged = self.scalar("SELECT count(*) FROM events").await?;
            let unsent = self
                .scalar("SELECT count(*) FROM invitations WHERE status IN ('queued', 'sending')")
                .await?;
            if unsent == 0 && self.backlog().await? == 0 && logged == last {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the backlog did not drain in {limit:?}"
            );
            last = logged;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Puts the database's own background work behind it before a measured phase, as pgbench
    /// does before its runs: the previous phase's writes would otherwise bring autovacuum, and
    /// on PostgreSQL a checkpoint, into the middle of the next measurement. PostgreSQL gets
    /// `VACUUM (ANALYZE)` and `CHECKPOINT` (which needs a superuser or `pg_checkpoint`: without
    /// the right it is left out, with a note); SQLite folds its write-ahead log back into the
    /// database file.
    pub(crate) async fn settle_database(&mut self) -> anyhow::Result<()> {
        let db = self.database().await?;
        match db.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                db.execute_unprepared("VACUUM (ANALYZE)")
                    .await
                    .context("VACUUM (ANALYZE) before the phase")?;
                if let Err(err) = db.execute_unprepared("CHECKPOINT").await {
                    eprintln!("{}: no CHECKPOINT before the phase: {err}", self.name);
                }
            }
            _ => {
                db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
                    .await
                    .context("checkpointing SQLite's write-ahead log before the phase")?;
            }
        }
        Ok(())
    }

    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        for process in self.processes.drain(..) {
            process.stop().await;
        }
        if let Some(db) = self.db.take() {
            let _ = db.close().await;
        }
        if let Some((url, prefix)) = &self.amqp {
            // Bounded: a broker that never answers a close must not hold the run up forever
            // (seen once after an ingress phase, with every queue already gone).
            if tokio::time::timeout(Duration::from_secs(60), delete_queues(url, prefix))
                .await
                .is_err()
            {
                eprintln!(
                    "{}: the broker did not confirm deleting the queues",
                    self.name
                );
            }
        }
        if let Some((admin_url, name)) = &self.pg_cleanup {
            let admin = Database::connect(admin_url).await?;
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await?;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

/// `len` bind parameters numbered from `from`, comma-separated, as `backend` writes them.
fn placeholders(backend: sea_orm::DbBackend, from: usize, len: usize) -> String {
    let marks: Vec<String> = (from..from + len)
        .map(|n| match backend {
            sea_orm::DbBackend::Postgres => format!("${n}"),
            _ => "?".to_owned(),
        })
        .collect();
    marks.join(", ")
}

async fn delete_queues(url: &str, prefix: &str) {
    let Ok(connection) =
        lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await
    else {
        return;
    };
    if let Ok(channel) = connection.create_channel().await {
        let topology = bus::Topology::new(prefix, &bus::RetryPolicy::default());
        for queue in topology.queues() {
            let _ = channel
                .queue_delete(queue.as_str().into(), Default::default())
                .await;
        }
        for exchange in topology.exchanges() {
            let _ = channel
                .exchange_delete(exchange.as_str().into(), Default::default())
                .await;
        }
    }
    let _ = connection.close(200, "done".into()).await;
}

/// Creates a tenant and a live integration; answers its id and secret.
pub(crate) async fn integration(
    admin: &str,
    settings: serde_json::Value,
) -> anyhow::Result<(String, String)> {
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{admin}{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let tenant: serde_json::Value = post("/v1/tenants", serde_json::json!({"name": "Bench Corp"}))
        .await?
        .json()
        .await?;
    let tenant = tenant["id"].as_str().context("tenant id")?;
    let created: serde_json::Value = post(
        "/v1/integrations",
        serde_json::json!({
            "tenant_id": tenant,
            "name": "Bench CRM",
            "source": "rollcall",
            "settings": settings,
        }),
    )
    .await?
    .json()
    .await?;
    let id = created["id"].as_str().context("integration id")?.to_owned();
    let secret = created["secret"].as_str().context("secret")?.to_owned();
    post(
        &format!("/v1/integrations/{id}/publish"),
        serde_json::json!({}),
    )
    .await?;
    Ok((id, secret))
}
