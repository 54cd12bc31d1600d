//! An index on the event log in the order it was written: `(processed_at, id)`.
//!
//! The ingress reads the log in this order, from the oldest entry at start-up and then the
//! newest every second, to keep its in-memory summary of which events were processed; without
//! the index each of those reads would scan the whole log. Listing the log newest first
//! without a tenant filter uses it too.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("CREATE INDEX ix_events_processed ON events (processed_at, id)")
            .await?;
        Ok(())
    }
}
