//! Where and how rollcall reaches an integration's CRM directory: a JSON document holding the
//! API's base URL, the names of the credentials, and the credentials themselves sealed with
//! the secret key. Absent: the integration has no directory access.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Integrations {
    Table,
    Directory,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Integrations::Table)
                    .add_column(ColumnDef::new(Integrations::Directory).text().null())
                    .take(),
            )
            .await
    }
}
