//! The real servers the suite runs against: a fresh PostgreSQL database per test and a fresh
//! RabbitMQ name prefix per test. When a server is unreachable the test fails if `CI` or
//! `ROLLCALL_REQUIRE_SERVICES` is set, and otherwise says loudly that it skipped.

use std::time::{SystemTime, UNIX_EPOCH};

use lapin::options::{ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

/// Whether a missing server is a failure rather than a skip.
pub fn services_required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("ROLLCALL_REQUIRE_SERVICES").is_some()
}

/// Fails the test when services are required; otherwise announces the skip.
pub fn skip_or_fail(what: &str, url: &str, err: &dyn std::fmt::Display) {
    assert!(
        !services_required(),
        "{what} is required (CI or ROLLCALL_REQUIRE_SERVICES is set) but {url} is unreachable: {err}"
    );
    eprintln!(
        "\n*** SKIPPED: {what} unreachable at {url}: {err}\n*** Set ROLLCALL_REQUIRE_SERVICES=1 to make this a failure.\n"
    );
}

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("ROLLCALL_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The PostgreSQL server's `host:port`.
pub fn postgres_addr() -> String {
    let url = postgres_admin_url();
    let rest = url.split_once('@').map_or(url.as_str(), |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// The RabbitMQ broker tests use.
pub fn amqp_url() -> String {
    std::env::var("ROLLCALL_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A database created for one test and dropped by [`PgDatabase::drop_database`].
#[derive(Debug)]
pub struct PgDatabase {
    pub url: String,
    name: String,
    admin: DatabaseConnection,
}

/// Creates a fresh, empty database. Databases that earlier runs left behind (a test that
/// panicked before cleaning up) are dropped once they are two hours old.
pub async fn fresh_postgres() -> Option<PgDatabase> {
    let admin_url = postgres_admin_url();
    let admin = match Database::connect(&admin_url).await {
        Ok(admin) => admin,
        Err(err) => {
            skip_or_fail("PostgreSQL", &admin_url, &err);
            return None;
        }
    };
    let now = unix_seconds();
    if let Ok(rows) = admin
        .query_all_raw(sea_orm::Statement::from_string(
            admin.get_database_backend(),
            "SELECT datname FROM pg_database WHERE datname LIKE 'rc_test_%'",
        ))
        .await
    {
        for row in rows {
            let Ok(name) = row.try_get::<String>("", "datname") else {
                continue;
            };
            let created = name
                .split('_')
                .nth(2)
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(now);
            if now.saturating_sub(created) > 7200 {
                let _ = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await;
            }
        }
    }
    let name = format!("rc_test_{now}_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("creating the test database");
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(base, _)| base);
    Some(PgDatabase {
        url: format!("{base}/{name}"),
        name,
        admin,
    })
}

impl PgDatabase {
    pub async fn drop_database(self) {
        let _ = self
            .admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

/// A RabbitMQ name prefix owned by one test.
#[derive(Debug, Clone)]
pub struct RabbitPrefix {
    pub url: String,
    pub prefix: String,
    /// The retry policy the test's processes use (its retry queues are removed too).
    pub retry: bus::RetryPolicy,
}

/// A fresh prefix, after checking the broker answers.
pub async fn fresh_rabbit() -> Option<RabbitPrefix> {
    let url = amqp_url();
    match Connection::connect(&url, ConnectionProperties::default()).await {
        Ok(connection) => {
            let _ = connection.close(200, "probe".into()).await;
        }
        Err(err) => {
            skip_or_fail("RabbitMQ", &url, &err);
            return None;
        }
    }
    Some(RabbitPrefix {
        url,
        prefix: format!("t{}.", uuid::Uuid::new_v4().simple()),
        retry: super::app::test_retry_policy(),
    })
}

impl RabbitPrefix {
    fn topology(&self) -> bus::Topology {
        bus::Topology::new(&self.prefix, &self.retry)
    }

    /// The broker's `host:port`.
    pub fn broker_addr(&self) -> String {
        let rest = self
            .url
            .split_once('@')
            .map_or(self.url.as_str(), |(_, rest)| rest);
        rest.split('/').next().unwrap_or(rest).to_owned()
    }

    /// The broker URL with its host and port replaced (e.g. by a proxy's).
    pub fn url_via(&self, addr: &str) -> String {
        self.url.replacen(&self.broker_addr(), addr, 1)
    }

    /// Messages waiting in the work queue now.
    pub async fn work_queue_depth(&self) -> u32 {
        let connection = Connection::connect(&self.url, ConnectionProperties::default())
            .await
            .expect("connecting to RabbitMQ");
        let channel = connection.create_channel().await.expect("channel");
        let queue = channel
            .queue_declare(
                self.topology().work_queue().as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("the work queue exists");
        let depth = queue.message_count();
        let _ = connection.close(200, "done".into()).await;
        depth
    }

    /// Removes the test's queues and exchanges.
    pub async fn delete(&self) {
        let Ok(connection) = Connection::connect(&self.url, ConnectionProperties::default()).await
        else {
            return;
        };
        if let Ok(channel) = connection.create_channel().await {
            for queue in self.topology().queues() {
                let _ = channel
                    .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
            for exchange in self.topology().exchanges() {
                let _ = channel
                    .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                    .await;
            }
        }
        let _ = connection.close(200, "done".into()).await;
    }
}
