//! The database schema, as sea-orm migrations that run unchanged on SQLite and PostgreSQL.
//!
//! This crate owns table and index definitions only: no queries (those live in `store`), and
//! nothing backend-specific unless both backends get an equivalent. Migrations are append-only:
//! once one has landed it is never edited; a change is a new migration.
//!
//! Conventions: ids are UUIDs; instants are BIGINT Unix milliseconds (identical ordering and
//! comparison on both backends); JSON documents are TEXT; uniqueness is enforced by unique
//! indexes, never by checks in code.

pub use sea_orm_migration::prelude::*;

mod m0001_initial;
mod m0002_issues;
mod m0003_dead_letters;
mod m0004_invitation_tokens;
mod m0005_tenant_invitation_settings;
mod m0006_integration_directory;
mod m0007_sync_runs;
mod m0008_invitation_claims;
mod m0009_events_processed;

/// Applies every migration in order; `rollcall migrate` and `rollcall serve` run it.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_initial::Migration),
            Box::new(m0002_issues::Migration),
            Box::new(m0003_dead_letters::Migration),
            Box::new(m0004_invitation_tokens::Migration),
            Box::new(m0005_tenant_invitation_settings::Migration),
            Box::new(m0006_integration_directory::Migration),
            Box::new(m0007_sync_runs::Migration),
            Box::new(m0008_invitation_claims::Migration),
            Box::new(m0009_events_processed::Migration),
        ]
    }
}
