//! Provisioning issues: why an owner has no account (or could not be kept in step), open until
//! a later event resolves them.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Issues {
    Table,
    Id,
    TenantId,
    IntegrationId,
    ExternalId,
    Kind,
    Missing,
    Detail,
    Occurrences,
    FirstEventId,
    LastEventId,
    OpenedAt,
    UpdatedAt,
    ResolvedAt,
    ResolvedByEventId,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Integrations {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Issues::Table)
                    .col(ColumnDef::new(Issues::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Issues::TenantId).uuid().not_null())
                    .col(ColumnDef::new(Issues::IntegrationId).uuid().not_null())
                    .col(ColumnDef::new(Issues::ExternalId).text().not_null())
                    .col(ColumnDef::new(Issues::Kind).text().not_null())
                    // JSON array of the missing field names.
                    .col(ColumnDef::new(Issues::Missing).text().not_null())
                    .col(ColumnDef::new(Issues::Detail).text().not_null())
                    .col(
                        ColumnDef::new(Issues::Occurrences)
                            .integer()
                            .not_null()
                            .default(1),
                    )
                    .col(ColumnDef::new(Issues::FirstEventId).uuid().not_null())
                    .col(ColumnDef::new(Issues::LastEventId).uuid().not_null())
                    .col(ColumnDef::new(Issues::OpenedAt).big_integer().not_null())
                    .col(ColumnDef::new(Issues::UpdatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Issues::ResolvedAt).big_integer().null())
                    .col(ColumnDef::new(Issues::ResolvedByEventId).uuid().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Issues::Table, Issues::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Issues::Table, Issues::IntegrationId)
                            .to(Integrations::Table, Integrations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        // One open issue per owner and kind: a partial unique index (same syntax on SQLite and
        // PostgreSQL), so a resolved issue can open again later as a new row.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_issues_open ON issues (integration_id, external_id, kind) \
                 WHERE resolved_at IS NULL",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_issues_tenant")
                    .table(Issues::Table)
                    .col(Issues::TenantId)
                    .col(Issues::Id)
                    .take(),
            )
            .await?;
        Ok(())
    }
}
