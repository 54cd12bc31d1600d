//! The dead-letter store (events that failed past their retry budget, with every attempt's
//! error) and replay provenance on the event log.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum DeadLetters {
    Table,
    Id,
    TenantId,
    IntegrationId,
    EventId,
    ProviderEventId,
    EventType,
    Envelope,
    Errors,
    Attempts,
    Reason,
    FirstFailedAt,
    DeadAt,
    ReplayedAt,
    ReplayedBy,
    ReplayCount,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    ReplayedAt,
    ReplayedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeadLetters::Table)
                    .col(
                        ColumnDef::new(DeadLetters::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(DeadLetters::TenantId).uuid().not_null())
                    .col(ColumnDef::new(DeadLetters::IntegrationId).uuid().not_null())
                    .col(ColumnDef::new(DeadLetters::EventId).uuid().not_null())
                    .col(
                        ColumnDef::new(DeadLetters::ProviderEventId)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(DeadLetters::EventType).text().not_null())
                    // The event exactly as it was queued (JSON), so a replay republishes it.
                    .col(ColumnDef::new(DeadLetters::Envelope).text().not_null())
                    // JSON array of {at, error}, one per failed attempt.
                    .col(ColumnDef::new(DeadLetters::Errors).text().not_null())
                    .col(ColumnDef::new(DeadLetters::Attempts).integer().not_null())
                    // Why it was given up: "permanent", "attempts_exhausted", "delivery_limit".
                    .col(ColumnDef::new(DeadLetters::Reason).text().not_null())
                    .col(
                        ColumnDef::new(DeadLetters::FirstFailedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(DeadLetters::DeadAt).big_integer().not_null())
                    .col(ColumnDef::new(DeadLetters::ReplayedAt).big_integer().null())
                    .col(ColumnDef::new(DeadLetters::ReplayedBy).text().null())
                    .col(
                        ColumnDef::new(DeadLetters::ReplayCount)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_dead_letters_event")
                    .table(DeadLetters::Table)
                    .col(DeadLetters::EventId)
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_dead_letters_dead_at")
                    .table(DeadLetters::Table)
                    .col(DeadLetters::DeadAt)
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(ColumnDef::new(Events::ReplayedAt).big_integer().null())
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(ColumnDef::new(Events::ReplayedBy).text().null())
                    .take(),
            )
            .await?;
        Ok(())
    }
}
