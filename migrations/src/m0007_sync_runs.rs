//! Sync runs: every bulk import, and every day of each integration's webhooks, with what it
//! did. Counts are not stored: they are read from the event log and the dead-letter store,
//! which carry the run's id, so they can never disagree with what happened. The run row holds
//! what only the importer knows (rows read, queued, refused; the full-roster check), the rows a
//! file could not give (`sync_run_errors`), and a full roster's owner ids (`roster_ids`), kept
//! in the database so that checking a large roster needs no memory.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum SyncRuns {
    Table,
    Id,
    TenantId,
    IntegrationId,
    Kind,
    Day,
    FileName,
    State,
    FullRoster,
    MaxDeactivatePercent,
    RowsRead,
    RowsQueued,
    RowsInvalid,
    Absent,
    StopReason,
    Options,
    CreatedBy,
    StartedAt,
    QueuedAt,
}

#[derive(DeriveIden)]
enum SyncRunErrors {
    Table,
    SyncRunId,
    Row,
    ExternalId,
    Reason,
}

#[derive(DeriveIden)]
enum RosterIds {
    Table,
    SyncRunId,
    ExternalId,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    SyncRunId,
}

#[derive(DeriveIden)]
enum DeadLetters {
    Table,
    SyncRunId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SyncRuns::Table)
                    .col(ColumnDef::new(SyncRuns::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(SyncRuns::TenantId).uuid().not_null())
                    .col(ColumnDef::new(SyncRuns::IntegrationId).uuid().not_null())
                    // "import" or "webhooks".
                    .col(ColumnDef::new(SyncRuns::Kind).text().not_null())
                    // Webhook runs: the UTC day, YYYY-MM-DD.
                    .col(ColumnDef::new(SyncRuns::Day).text().null())
                    .col(ColumnDef::new(SyncRuns::FileName).text().null())
                    // Imports: reading, queued, stopped, failed. Webhook days: open.
                    .col(ColumnDef::new(SyncRuns::State).text().not_null())
                    .col(ColumnDef::new(SyncRuns::FullRoster).boolean().not_null())
                    .col(
                        ColumnDef::new(SyncRuns::MaxDeactivatePercent)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(SyncRuns::RowsRead).big_integer().not_null())
                    .col(
                        ColumnDef::new(SyncRuns::RowsQueued)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SyncRuns::RowsInvalid)
                            .big_integer()
                            .not_null(),
                    )
                    // Full roster: owners of the integration absent from the file.
                    .col(ColumnDef::new(SyncRuns::Absent).big_integer().null())
                    .col(ColumnDef::new(SyncRuns::StopReason).text().null())
                    // JSON: the column mapping and other options the run was started with.
                    .col(ColumnDef::new(SyncRuns::Options).text().not_null())
                    .col(ColumnDef::new(SyncRuns::CreatedBy).text().not_null())
                    .col(ColumnDef::new(SyncRuns::StartedAt).big_integer().not_null())
                    .col(ColumnDef::new(SyncRuns::QueuedAt).big_integer().null())
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_sync_runs_integration")
                    .table(SyncRuns::Table)
                    .col(SyncRuns::IntegrationId)
                    .col(SyncRuns::Id)
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SyncRunErrors::Table)
                    .col(ColumnDef::new(SyncRunErrors::SyncRunId).uuid().not_null())
                    .col(ColumnDef::new(SyncRunErrors::Row).big_integer().not_null())
                    .col(ColumnDef::new(SyncRunErrors::ExternalId).text().null())
                    .col(ColumnDef::new(SyncRunErrors::Reason).text().not_null())
                    .primary_key(
                        Index::create()
                            .col(SyncRunErrors::SyncRunId)
                            .col(SyncRunErrors::Row),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RosterIds::Table)
                    .col(ColumnDef::new(RosterIds::SyncRunId).uuid().not_null())
                    .col(ColumnDef::new(RosterIds::ExternalId).text().not_null())
                    .primary_key(
                        Index::create()
                            .col(RosterIds::SyncRunId)
                            .col(RosterIds::ExternalId),
                    )
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(ColumnDef::new(Events::SyncRunId).uuid().null())
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_events_sync_run")
                    .table(Events::Table)
                    .col(Events::SyncRunId)
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(DeadLetters::Table)
                    .add_column(ColumnDef::new(DeadLetters::SyncRunId).uuid().null())
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_dead_letters_sync_run")
                    .table(DeadLetters::Table)
                    .col(DeadLetters::SyncRunId)
                    .take(),
            )
            .await?;
        Ok(())
    }
}
