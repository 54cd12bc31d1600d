//! Per-tenant invitation settings (link template, reply-to, email templates), as a JSON
//! document: absent means rollcall's defaults.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    InvitationSettings,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Tenants::Table)
                    .add_column(ColumnDef::new(Tenants::InvitationSettings).text().null())
                    .take(),
            )
            .await
    }
}
