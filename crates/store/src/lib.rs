//! Persistence: the sea-orm entities and every query the other crates need, on SQLite (the
//! embedded default) and PostgreSQL.
//!
//! This is the only crate that writes SQL. It owns connection setup (pragmas, pool sizes),
//! encryption of secrets at rest, the embedded queue's tables and the provisioning write
//! transaction. It must not make decisions: it reports what is stored and stores what it is
//! told, and turns database failures into [`StoreError`] kinds that callers can act on
//! (transient or not, conflict or not).

mod by_key;
mod cache;
mod cipher;
mod dead_letters;
mod entities;
mod error;
mod events;
mod integrations;
mod invitations;
mod issues;
mod kv;
mod page;
mod provisioning;
mod queue;
mod staged;
mod sync_runs;
mod teams;
mod tenants;
mod tokens;
mod users;

use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

pub use cache::{CachedIntegration, IntegrationCache, REFRESH_INTERVAL};
pub use cipher::{BadKey, SecretCipher};
pub use dead_letters::{DeadLetterFilter, DeadLetterRecord, DeadReason, NewDeadLetter};
pub use error::{Result, StoreError};
pub use events::{
    EventFilter, EventLogPosition, EventLogProbe, EventRecord, NewEventRecord, OwnerOutcome,
};
pub use integrations::{DirectorySummary, Integration, MAX_OLD_SECRETS, NewIntegration};
pub use invitations::{ClaimedInvitation, GoneReason, InvitationRecord, InviteRefusal, Redemption};
pub use issues::{IssueFilter, IssueRecord, NewIssue};
pub use page::{Cursor, Page};
pub use provisioning::WriteTx;
pub use queue::{AttemptError, QueueJob, QueueStats};
pub use staged::{OwnerKey, OwnerStates, Staged};
pub use sync_runs::{
    NewImportRun, ReadingEnd, RunCounts, RunError, RunFilter, RunKind, RunState, SyncRun,
    import_absent_event_id, import_row_event_id,
};
pub use teams::{Placement, Team, TeamDeletion};
pub use tenants::{Tenant, TenantChanges};
pub use tokens::{ApiToken, TokenKind};
pub use users::{IdentityRecord, ManualUser, UserEdit, UserFilter, UserRecord};

/// A PostgreSQL connection idle longer than this is pinged before its next use: by the pool on
/// checkout, and by [`EventLogProbe`] for the connection it keeps.
pub(crate) const PING_IF_IDLE_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    /// Pool size; defaults suit the backend. On SQLite this is the readers' pool: writes have
    /// a connection of their own.
    pub max_connections: Option<u32>,
    /// SQLite only: fsync the WAL on every commit. Off, a process crash still loses nothing
    /// (only a power loss could); on, a 2xx survives a power loss too.
    pub sqlite_full_sync: bool,
}

impl StoreOptions {
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: None,
            sqlite_full_sync: true,
        }
    }
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// Reads (and, on PostgreSQL, everything).
    db: DatabaseConnection,
    /// Writes. On SQLite, a pool of one connection: SQLite lets one connection write at a
    /// time, and a connection that finds the database locked polls for the lock with sleeps
    /// of up to 100 ms. With every connection of the pool writing (the ingress's publishes,
    /// the queue's claims and acks, the worker's transactions), the embedded process slept
    /// about half a thread's time under load on a lock that was free most of that time.
    /// Writers queued for this pool's connection are handed it as soon as it is returned.
    /// Other processes on the same file still meet the lock and poll. On PostgreSQL, the same
    /// pool as `db`.
    writer: DatabaseConnection,
    backend: Backend,
    cipher: SecretCipher,
}

impl Store {
    /// Connects (without migrating). Fails fast when the database is unreachable.
    pub async fn connect(options: &StoreOptions, cipher: SecretCipher) -> Result<Self> {
        let backend = if options.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if options.url.starts_with("postgres://") || options.url.starts_with("postgresql://")
        {
            Backend::Postgres
        } else {
            return Err(StoreError::Database(format!(
                "unsupported database URL {:?}: use sqlite://… or postgres://…",
                redact_url(&options.url)
            )));
        };
        let (db, writer) = match backend {
            Backend::Sqlite => {
                let readers = options.max_connections.unwrap_or(4);
                let db = Database::connect(sqlite_options(options, readers)).await?;
                let writer = Database::connect(sqlite_options(options, 1)).await?;
                (db, writer)
            }
            Backend::Postgres => {
                let db = Database::connect(postgres_options(options)).await?;
                (db.clone(), db)
            }
        };
        Ok(Self {
            db,
            writer,
            backend,
            cipher,
        })
    }

    /// Brings the schema up to date.
    pub async fn migrate(&self) -> Result<()> {
        Migrator::up(&self.writer, None)
            .await
            .map_err(StoreError::from)
    }

    #[must_use]
    pub const fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers a trivial query now.
    pub async fn ping(&self) -> Result<()> {
        self.db
            .execute_unprepared("SELECT 1")
            .await
            .map(|_| ())
            .map_err(StoreError::from)
    }

    /// Connections of the pools in use and idle (for metrics).
    #[must_use]
    pub fn pool_connections(&self) -> (u64, u64) {
        let (size, idle) = match self.backend {
            Backend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            Backend::Sqlite => {
                let readers = self.db.get_sqlite_connection_pool();
                let writer = self.writer.get_sqlite_connection_pool();
                (
                    readers.size() + writer.size(),
                    readers.num_idle() + writer.num_idle(),
                )
            }
        };
        let idle = u64::try_from(idle).unwrap_or(u64::MAX);
        (u64::from(size).saturating_sub(idle), idle)
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`) so that two writers queue up instead of failing on lock upgrade.
    pub async fn begin_write(&self) -> Result<WriteTx> {
        let options = TransactionOptions {
            isolation_level: None,
            access_mode: None,
            sqlite_transaction_mode: match self.backend {
                Backend::Sqlite => Some(SqliteTransactionMode::Immediate),
                Backend::Postgres => None,
            },
        };
        let tx = self.writer.begin_with_options(options).await?;
        Ok(WriteTx::new(tx, self.backend))
    }

    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The connection to write with outside [`Store::begin_write`].
    pub(crate) fn writer(&self) -> &DatabaseConnection {
        &self.writer
    }

    pub(crate) fn db_backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    pub(crate) fn cipher(&self) -> &SecretCipher {
        &self.cipher
    }
}

fn connect_options(options: &StoreOptions) -> ConnectOptions {
    let mut connect = ConnectOptions::new(options.url.clone());
    connect
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    connect
}

fn sqlite_options(options: &StoreOptions, max_connections: u32) -> ConnectOptions {
    let full_sync = options.sqlite_full_sync;
    let mut connect = connect_options(options);
    connect
        .max_connections(max_connections)
        .map_sqlx_sqlite_opts(move |opts| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(if full_sync {
                    SqliteSynchronous::Full
                } else {
                    SqliteSynchronous::Normal
                })
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .create_if_missing(true)
        });
    connect
}

fn postgres_options(options: &StoreOptions) -> ConnectOptions {
    let mut connect = connect_options(options);
    connect
        .max_connections(options.max_connections.unwrap_or(16))
        .min_connections(1)
        // By default every checkout first pings the server: one more round trip
        // per query, which was a third of the round trips of the ingress's
        // duplicate check. A connection that has just been used is alive; one
        // idle for a while (a server restart, a proxy's idle cut) is still pinged,
        // and one that dies between two uses fails its query, which every caller
        // already treats as a passing outage.
        .test_before_acquire_if_idle_for(PING_IF_IDLE_FOR)
        // Prepared statements are cached per connection, and after a few runs
        // PostgreSQL may switch one to a generic plan costed with the table sizes
        // of that moment. Costed while a table was a few pages (a fresh
        // deployment; the event log while no worker runs yet), a lookup of many
        // ids by primary key is a sequential scan, and it stays one until an
        // ANALYZE invalidates it: the ingress's duplicate check then read the
        // whole event log for every batch (measured: 967 instead of 3,425 accepted
        // webhooks per second after a 100,000-event backlog). Every statement
        // rollcall runs on a large table has an index to follow, so sequential
        // scans are priced out (`enable_seqscan=off` only penalises them: a table
        // with no usable index is still scanned) and cached plans can be kept.
        // Planning each statement for its parameters instead
        // (`plan_cache_mode=force_custom_plan`) was the first fix; it re-planned
        // every statement and every foreign-key check, about a sixth of the
        // database's CPU while the worker drained a backlog.
        .map_sqlx_postgres_opts(|opts| opts.options([("enable_seqscan", "off")]));
    connect
}

/// A database URL with any password replaced, for error messages and logs.
#[must_use]
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Hex SHA-256 of a bearer token or invitation token: what the database keeps instead of it.
#[must_use]
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://rollcall:s3cret@db:5432/rollcall"),
            "postgres://rollcall:***@db:5432/rollcall"
        );
        assert_eq!(
            redact_url("postgres://db/rollcall"),
            "postgres://db/rollcall"
        );
        assert_eq!(
            redact_url("sqlite://x.db?mode=rwc"),
            "sqlite://x.db?mode=rwc"
        );
    }
}
