//! Invitation tokens kept encrypted as well as hashed, so that an invitation re-sent after a
//! crash inside the SMTP window is the same message with the same link.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Invitations {
    Table,
    TokenCiphertext,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Invitations::Table)
                    .add_column(ColumnDef::new(Invitations::TokenCiphertext).text().null())
                    .take(),
            )
            .await
    }
}
