//! The store's one error type. Callers decide retries from the kind: `Unavailable` is
//! transient (retry later), `Conflict` means "already there" (never a 500).

use sea_orm::{DbErr, RuntimeErr, SqlErr};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or timed out; the operation may succeed later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique key already holds this value (or two transactions raced for it).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A stored value could not be read back (a bug or a hand-edited row).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    /// Whether retrying the same operation later can succeed.
    #[must_use]
    pub const fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Conflict(_))
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }
}

/// SQLSTATE classes and SQLite codes that mean "try again": connection trouble, serialization
/// failures, deadlocks, lock contention, an administrator shutting the server down.
fn transient_code(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code == "40001"
        || code == "40P01"
        // SQLITE_BUSY and SQLITE_LOCKED, with their extended codes.
        || code == "5"
        || code == "6"
        || code == "261"
        || code == "517"
        || code == "262"
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(detail)) = err.sql_err() {
            return StoreError::Conflict(detail);
        }
        match &err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
                StoreError::Unavailable(err.to_string())
            }
            DbErr::Exec(RuntimeErr::SqlxError(inner))
            | DbErr::Query(RuntimeErr::SqlxError(inner)) => match inner.as_ref() {
                sea_orm::sqlx::Error::Io(_)
                | sea_orm::sqlx::Error::Tls(_)
                | sea_orm::sqlx::Error::Protocol(_)
                | sea_orm::sqlx::Error::PoolTimedOut
                | sea_orm::sqlx::Error::PoolClosed
                | sea_orm::sqlx::Error::WorkerCrashed
                | sea_orm::sqlx::Error::BeginFailed => StoreError::Unavailable(err.to_string()),
                sea_orm::sqlx::Error::Database(db)
                    if db.code().is_some_and(|code| transient_code(&code)) =>
                {
                    StoreError::Unavailable(err.to_string())
                }
                _ => StoreError::Database(err.to_string()),
            },
            DbErr::RecordNotFound(_) => StoreError::NotFound("record"),
            _ => StoreError::Database(err.to_string()),
        }
    }
}

/// SQLx used directly (a connection held outside sea-orm) fails the way sea-orm's queries do.
impl From<sea_orm::sqlx::Error> for StoreError {
    fn from(err: sea_orm::sqlx::Error) -> Self {
        StoreError::from(DbErr::Query(RuntimeErr::SqlxError(err.into())))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(err: serde_json::Error) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
