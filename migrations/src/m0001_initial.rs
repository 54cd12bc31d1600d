//! Tenants, tokens, integrations and their secrets, teams, users and identity links, the event
//! log, the invitation outbox and the embedded queue.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    TenantId,
    Kind,
    Name,
    TokenHash,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Integrations {
    Table,
    Id,
    TenantId,
    Name,
    Source,
    Verification,
    Settings,
    State,
    CreatedAt,
    UpdatedAt,
    PublishedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum IntegrationSecrets {
    Table,
    Id,
    IntegrationId,
    Ciphertext,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
    TenantId,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    TenantId,
    Email,
    EmailNormalized,
    FirstName,
    LastName,
    AvatarUrl,
    Title,
    Department,
    Location,
    EmployeeIds,
    MemberType,
    Role,
    Status,
    TeamId,
    SourceUpdatedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Identities {
    Table,
    Id,
    TenantId,
    UserId,
    IntegrationId,
    ExternalId,
    AvatarUrl,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    TenantId,
    IntegrationId,
    ProviderEventId,
    EventType,
    OccurredAt,
    ReceivedAt,
    ProcessedAt,
    Outcome,
    Reason,
    UserId,
    ExternalId,
    Shadow,
    Attempts,
    Details,
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    Id,
    TenantId,
    UserId,
    Status,
    TokenHash,
    Attempts,
    NextAttemptAt,
    ClaimedUntil,
    ExpiresAt,
    SentAt,
    AcceptedAt,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum QueueJobs {
    Table,
    Id,
    EventId,
    Envelope,
    Attempts,
    AvailableAt,
    LockedUntil,
    Errors,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    Key,
    Value,
}

fn uuid_pk<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).uuid().not_null().primary_key().take()
}

fn uuid<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).uuid().not_null().take()
}

fn uuid_null<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).uuid().null().take()
}

fn text<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).text().not_null().take()
}

fn text_null<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).text().null().take()
}

fn millis<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().take()
}

fn millis_null<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).big_integer().null().take()
}

fn count<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).integer().not_null().default(0).take()
}

fn belongs_to_tenant<T: IntoIden + 'static>(table: T) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, Alias::new("tenant_id"))
        .to(Tenants::Table, Tenants::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(uuid_pk(Tenants::Id))
                    .col(text(Tenants::Name))
                    .col(millis(Tenants::CreatedAt))
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .col(uuid_pk(ApiTokens::Id))
                    // NULL for the operator token, which sees every tenant.
                    .col(uuid_null(ApiTokens::TenantId))
                    .col(text(ApiTokens::Kind))
                    .col(text(ApiTokens::Name))
                    .col(text(ApiTokens::TokenHash))
                    .col(millis(ApiTokens::CreatedAt))
                    .col(millis_null(ApiTokens::LastUsedAt))
                    .col(millis_null(ApiTokens::RevokedAt))
                    .foreign_key(&mut belongs_to_tenant(ApiTokens::Table))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_api_tokens_hash")
                    .table(ApiTokens::Table)
                    .col(ApiTokens::TokenHash)
                    .unique()
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Integrations::Table)
                    .col(uuid_pk(Integrations::Id))
                    .col(uuid(Integrations::TenantId))
                    .col(text(Integrations::Name))
                    .col(text(Integrations::Source))
                    .col(text(Integrations::Verification))
                    .col(text(Integrations::Settings))
                    .col(text(Integrations::State))
                    .col(millis(Integrations::CreatedAt))
                    .col(millis(Integrations::UpdatedAt))
                    .col(millis_null(Integrations::PublishedAt))
                    .col(millis_null(Integrations::RevokedAt))
                    .foreign_key(&mut belongs_to_tenant(Integrations::Table))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_integrations_tenant")
                    .table(Integrations::Table)
                    .col(Integrations::TenantId)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IntegrationSecrets::Table)
                    .col(uuid_pk(IntegrationSecrets::Id))
                    .col(uuid(IntegrationSecrets::IntegrationId))
                    .col(text(IntegrationSecrets::Ciphertext))
                    .col(millis(IntegrationSecrets::CreatedAt))
                    // NULL while current; set when rotated out (end of the grace period).
                    .col(millis_null(IntegrationSecrets::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(IntegrationSecrets::Table, IntegrationSecrets::IntegrationId)
                            .to(Integrations::Table, Integrations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_integration_secrets_integration")
                    .table(IntegrationSecrets::Table)
                    .col(IntegrationSecrets::IntegrationId)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Teams::Table)
                    .col(uuid_pk(Teams::Id))
                    .col(uuid(Teams::TenantId))
                    .col(text(Teams::Name))
                    .col(millis(Teams::CreatedAt))
                    .foreign_key(&mut belongs_to_tenant(Teams::Table))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_teams_tenant_name")
                    .table(Teams::Table)
                    .col(Teams::TenantId)
                    .col(Teams::Name)
                    .unique()
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(uuid_pk(Users::Id))
                    .col(uuid(Users::TenantId))
                    .col(text(Users::Email))
                    .col(text(Users::EmailNormalized))
                    .col(text(Users::FirstName))
                    .col(text(Users::LastName))
                    .col(text_null(Users::AvatarUrl))
                    .col(text_null(Users::Title))
                    .col(text_null(Users::Department))
                    .col(text_null(Users::Location))
                    .col(text(Users::EmployeeIds))
                    .col(text_null(Users::MemberType))
                    .col(text(Users::Role))
                    .col(text(Users::Status))
                    .col(uuid_null(Users::TeamId))
                    // The CRM's `occurred_at` of the newest event applied: older events never
                    // overwrite newer data.
                    .col(millis_null(Users::SourceUpdatedAt))
                    .col(millis(Users::CreatedAt))
                    .col(millis(Users::UpdatedAt))
                    .foreign_key(&mut belongs_to_tenant(Users::Table))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Users::Table, Users::TeamId)
                            .to(Teams::Table, Teams::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_users_tenant_email")
                    .table(Users::Table)
                    .col(Users::TenantId)
                    .col(Users::EmailNormalized)
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_users_team")
                    .table(Users::Table)
                    .col(Users::TeamId)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Identities::Table)
                    .col(uuid_pk(Identities::Id))
                    .col(uuid(Identities::TenantId))
                    .col(uuid(Identities::UserId))
                    .col(uuid(Identities::IntegrationId))
                    .col(text(Identities::ExternalId))
                    .col(text_null(Identities::AvatarUrl))
                    .col(millis(Identities::CreatedAt))
                    .foreign_key(&mut belongs_to_tenant(Identities::Table))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Identities::Table, Identities::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Identities::Table, Identities::IntegrationId)
                            .to(Integrations::Table, Integrations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_identities_integration_external")
                    .table(Identities::Table)
                    .col(Identities::IntegrationId)
                    .col(Identities::ExternalId)
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_identities_user")
                    .table(Identities::Table)
                    .col(Identities::UserId)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    // The event id the ingress answered: derived from (integration, provider id).
                    .col(uuid_pk(Events::Id))
                    .col(uuid(Events::TenantId))
                    .col(uuid(Events::IntegrationId))
                    .col(text(Events::ProviderEventId))
                    .col(text(Events::EventType))
                    .col(millis_null(Events::OccurredAt))
                    .col(millis(Events::ReceivedAt))
                    .col(millis(Events::ProcessedAt))
                    .col(text(Events::Outcome))
                    .col(text_null(Events::Reason))
                    .col(uuid_null(Events::UserId))
                    .col(text_null(Events::ExternalId))
                    .col(
                        ColumnDef::new(Events::Shadow)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(count(Events::Attempts))
                    // JSON: one entry per owner the event named (outcome, reason, user).
                    .col(text(Events::Details))
                    .foreign_key(&mut belongs_to_tenant(Events::Table))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Events::Table, Events::IntegrationId)
                            .to(Integrations::Table, Integrations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_events_integration_provider_event")
                    .table(Events::Table)
                    .col(Events::IntegrationId)
                    .col(Events::ProviderEventId)
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_events_tenant_processed")
                    .table(Events::Table)
                    .col(Events::TenantId)
                    .col(Events::ProcessedAt)
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_events_user")
                    .table(Events::Table)
                    .col(Events::UserId)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Invitations::Table)
                    .col(uuid_pk(Invitations::Id))
                    .col(uuid(Invitations::TenantId))
                    .col(uuid(Invitations::UserId))
                    .col(text(Invitations::Status))
                    // Set when the relay claims the invitation: the raw token exists only in
                    // the email.
                    .col(text_null(Invitations::TokenHash))
                    .col(count(Invitations::Attempts))
                    .col(millis(Invitations::NextAttemptAt))
                    .col(millis_null(Invitations::ClaimedUntil))
                    .col(millis_null(Invitations::ExpiresAt))
                    .col(millis_null(Invitations::SentAt))
                    .col(millis_null(Invitations::AcceptedAt))
                    .col(text_null(Invitations::LastError))
                    .col(millis(Invitations::CreatedAt))
                    .col(millis(Invitations::UpdatedAt))
                    .foreign_key(&mut belongs_to_tenant(Invitations::Table))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Invitations::Table, Invitations::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_invitations_due")
                    .table(Invitations::Table)
                    .col(Invitations::Status)
                    .col(Invitations::NextAttemptAt)
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_invitations_user")
                    .table(Invitations::Table)
                    .col(Invitations::UserId)
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_invitations_token")
                    .table(Invitations::Table)
                    .col(Invitations::TokenHash)
                    .unique()
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(QueueJobs::Table)
                    .col(
                        ColumnDef::new(QueueJobs::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(uuid(QueueJobs::EventId))
                    .col(text(QueueJobs::Envelope))
                    .col(count(QueueJobs::Attempts))
                    // Not visible before this instant (retry delay).
                    .col(millis(QueueJobs::AvailableAt))
                    // Invisible to other consumers until this instant (visibility timeout).
                    .col(millis_null(QueueJobs::LockedUntil))
                    // JSON array of {at, error}, one per failed attempt.
                    .col(text(QueueJobs::Errors))
                    .col(millis(QueueJobs::CreatedAt))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_queue_jobs_event")
                    .table(QueueJobs::Table)
                    .col(QueueJobs::EventId)
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_queue_jobs_available")
                    .table(QueueJobs::Table)
                    .col(QueueJobs::AvailableAt)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Settings::Table)
                    .col(
                        ColumnDef::new(Settings::Key)
                            .text()
                            .not_null()
                            .primary_key(),
                    )
                    .col(text(Settings::Value))
                    .take(),
            )
            .await?;
        Ok(())
    }
}
