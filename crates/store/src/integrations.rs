//! Integrations and their signing secrets (encrypted at rest, bound to the integration id).

use domain::{
    DirectoryAccess, IntegrationId, IntegrationSettings, IntegrationState, Source, TenantId,
    Timestamp,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

use crate::by_key::ByKey;
use crate::entities::{integration, integration_secret};
use crate::page::{self, Cursor, Page};
use crate::{Backend, Result, Store, StoreError, cache};

/// Rotated-out secrets kept per integration (still inside their grace period).
pub const MAX_OLD_SECRETS: u64 = 10;

/// An integration as stored (never with its secrets).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Integration {
    pub id: IntegrationId,
    pub tenant_id: TenantId,
    pub name: String,
    pub source: Source,
    /// The verification scheme and its non-secret parameters (see the `verifier` crate).
    pub verification: serde_json::Value,
    pub settings: IntegrationSettings,
    pub state: IntegrationState,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub published_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    /// How rollcall reaches the CRM's directory, without the credentials' values.
    pub directory: Option<DirectorySummary>,
}

/// What an integration's directory access shows: where, and which credentials are set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DirectorySummary {
    /// `null`: the CRM's public API address.
    pub base_url: Option<String>,
    /// The names of the credentials stored (their values are never shown).
    pub credentials: Vec<String>,
}

/// The `directory` column: the base URL and credential names in clear (so listing
/// integrations needs no decryption), the credentials sealed for this integration.
#[derive(Serialize, Deserialize)]
struct StoredDirectory {
    base_url: Option<String>,
    credential_names: Vec<String>,
    sealed: String,
}

impl StoredDirectory {
    fn summary(&self) -> DirectorySummary {
        DirectorySummary {
            base_url: self.base_url.clone(),
            credentials: self.credential_names.clone(),
        }
    }
}

impl TryFrom<integration::Model> for Integration {
    type Error = StoreError;
    fn try_from(row: integration::Model) -> Result<Self> {
        Ok(Self {
            id: row.id.into(),
            tenant_id: row.tenant_id.into(),
            name: row.name,
            source: row.source.parse().map_err(StoreError::corrupt)?,
            verification: serde_json::from_str(&row.verification)?,
            settings: serde_json::from_str(&row.settings)?,
            state: row.state.parse().map_err(StoreError::corrupt)?,
            created_at: Timestamp::from_millis(row.created_at),
            updated_at: Timestamp::from_millis(row.updated_at),
            published_at: row.published_at.map(Timestamp::from_millis),
            revoked_at: row.revoked_at.map(Timestamp::from_millis),
            directory: row
                .directory
                .as_deref()
                .map(serde_json::from_str::<StoredDirectory>)
                .transpose()?
                .map(|stored| stored.summary()),
        })
    }
}

/// What creating an integration needs.
#[derive(Debug, Clone)]
pub struct NewIntegration {
    pub tenant_id: TenantId,
    pub name: String,
    pub source: Source,
    pub verification: serde_json::Value,
    pub settings: IntegrationSettings,
    /// The first signing secret, in clear; stored encrypted. `None` for schemes whose key is
    /// fetched per request (ConnectWise).
    pub secret: Option<String>,
    /// Access to the CRM's directory, in clear; the credentials are stored encrypted.
    pub directory: Option<DirectoryAccess>,
}

impl Store {
    /// Creates an integration in `draft` with its first secret, in one transaction.
    pub async fn create_integration(
        &self,
        new: NewIntegration,
        now: Timestamp,
    ) -> Result<Integration> {
        let id = IntegrationId::new();
        let sealed = new
            .secret
            .as_deref()
            .map(|secret| self.cipher().seal(id.as_uuid().as_bytes(), secret))
            .transpose()?;
        let directory = new
            .directory
            .as_ref()
            .map(|access| self.seal_directory(id, access))
            .transpose()?;
        let summary = directory.as_ref().map(StoredDirectory::summary);
        let tx = self.writer().begin().await?;
        integration::Entity::insert(integration::ActiveModel {
            id: Set(id.as_uuid()),
            tenant_id: Set(new.tenant_id.as_uuid()),
            name: Set(new.name.clone()),
            source: Set(new.source.as_str().to_owned()),
            verification: Set(new.verification.to_string()),
            settings: Set(serde_json::to_string(&new.settings)?),
            state: Set(IntegrationState::Draft.as_str().to_owned()),
            created_at: Set(now.millis()),
            updated_at: Set(now.millis()),
            published_at: Set(None),
            revoked_at: Set(None),
            directory: Set(directory.as_ref().map(serde_json::to_string).transpose()?),
        })
        .exec_without_returning(&tx)
        .await?;
        if let Some(sealed) = sealed {
            integration_secret::Entity::insert(integration_secret::ActiveModel {
                id: Set(Uuid::now_v7()),
                integration_id: Set(id.as_uuid()),
                ciphertext: Set(sealed),
                created_at: Set(now.millis()),
                expires_at: Set(None),
            })
            .exec_without_returning(&tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Integration {
            id,
            tenant_id: new.tenant_id,
            name: new.name,
            source: new.source,
            verification: new.verification,
            settings: new.settings,
            state: IntegrationState::Draft,
            created_at: now,
            updated_at: now,
            published_at: None,
            revoked_at: None,
            directory: summary,
        })
    }

    fn seal_directory(
        &self,
        id: IntegrationId,
        access: &DirectoryAccess,
    ) -> Result<StoredDirectory> {
        Ok(StoredDirectory {
            base_url: access.base_url.clone(),
            credential_names: access.credentials.keys().cloned().collect(),
            sealed: self.cipher().seal(
                id.as_uuid().as_bytes(),
                &serde_json::to_string(&access.credentials)?,
            )?,
        })
    }

    /// The integration's directory access with its credentials decrypted, if it has one.
    pub async fn integration_directory(
        &self,
        id: IntegrationId,
    ) -> Result<Option<DirectoryAccess>> {
        let stored: Option<Option<String>> = integration::Entity::find_by_id(id.as_uuid())
            .select_only()
            .column(integration::Column::Directory)
            .into_tuple()
            .by_key(self.db())
            .await?;
        let Some(text) = stored.flatten() else {
            return Ok(None);
        };
        let stored: StoredDirectory = serde_json::from_str(&text)?;
        let credentials = self
            .cipher()
            .open(id.as_uuid().as_bytes(), &stored.sealed)?;
        Ok(Some(DirectoryAccess {
            base_url: stored.base_url,
            credentials: serde_json::from_str(&credentials)?,
        }))
    }

    /// Replaces (or with `None` removes) the integration's directory access.
    pub async fn set_integration_directory(
        &self,
        id: IntegrationId,
        access: Option<&DirectoryAccess>,
        now: Timestamp,
    ) -> Result<Option<Integration>> {
        let stored = access
            .map(|access| self.seal_directory(id, access))
            .transpose()?
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        integration::Entity::update_many()
            .col_expr(integration::Column::Directory, Expr::value(stored))
            .col_expr(integration::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(integration::Column::Id.eq(id.as_uuid()))
            .exec(self.writer())
            .await?;
        self.announce_integration_change(self.writer(), id).await?;
        self.integration(id).await
    }

    pub async fn integration(&self, id: IntegrationId) -> Result<Option<Integration>> {
        integration::Entity::find_by_id(id.as_uuid())
            .by_key(self.db())
            .await?
            .map(Integration::try_from)
            .transpose()
    }

    /// Integrations in creation order, optionally of one tenant.
    pub async fn list_integrations(
        &self,
        tenant: Option<TenantId>,
        after: Option<&Cursor>,
        limit: Option<u64>,
    ) -> Result<Page<Integration>> {
        let limit = page::page_size(limit);
        let mut query = integration::Entity::find().order_by_asc(integration::Column::Id);
        if let Some(tenant) = tenant {
            query = query.filter(integration::Column::TenantId.eq(tenant.as_uuid()));
        }
        if let Some(after) = after {
            query = query.filter(integration::Column::Id.gt(after.id));
        }
        let rows = query.limit(limit + 1).all(self.db()).await?;
        page::finish(
            rows,
            limit,
            |row| Cursor::new(0, row.id),
            Integration::try_from,
        )
    }

    /// The integration's secrets that verify at `now`, newest first, decrypted.
    pub async fn integration_secrets(
        &self,
        id: IntegrationId,
        now: Timestamp,
    ) -> Result<Vec<String>> {
        let rows = integration_secret::Entity::find()
            .filter(integration_secret::Column::IntegrationId.eq(id.as_uuid()))
            .filter(
                Condition::any()
                    .add(integration_secret::Column::ExpiresAt.is_null())
                    .add(integration_secret::Column::ExpiresAt.gt(now.millis())),
            )
            .order_by_desc(integration_secret::Column::Id)
            .all(self.db())
            .await?;
        rows.iter()
            .map(|row| self.cipher().open(id.as_uuid().as_bytes(), &row.ciphertext))
            .collect()
    }

    /// Every secret that has not expired yet, newest first, decrypted, with when it expires.
    pub async fn integration_secrets_with_expiry(
        &self,
        id: IntegrationId,
        now: Timestamp,
    ) -> Result<Vec<(String, Option<Timestamp>)>> {
        let rows = integration_secret::Entity::find()
            .filter(integration_secret::Column::IntegrationId.eq(id.as_uuid()))
            .filter(
                Condition::any()
                    .add(integration_secret::Column::ExpiresAt.is_null())
                    .add(integration_secret::Column::ExpiresAt.gt(now.millis())),
            )
            .order_by_desc(integration_secret::Column::Id)
            .all(self.db())
            .await?;
        rows.iter()
            .map(|row| {
                let secret = self
                    .cipher()
                    .open(id.as_uuid().as_bytes(), &row.ciphertext)?;
                Ok((secret, row.expires_at.map(Timestamp::from_millis)))
            })
            .collect()
    }

    /// Tells every process's integration cache that `id` changed (PostgreSQL only; delivered
    /// when `conn`'s transaction commits, at once outside one).
    async fn announce_integration_change(
        &self,
        conn: &impl ConnectionTrait,
        id: IntegrationId,
    ) -> Result<()> {
        if self.backend() == Backend::Postgres {
            conn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [cache::CHANNEL.into(), id.as_uuid().to_string().into()],
            ))
            .await?;
        }
        Ok(())
    }

    /// Makes `new_secret` the current secret. The previous current one keeps verifying until
    /// `now + grace`; expired secrets are deleted, and at most [`MAX_OLD_SECRETS`] old ones are
    /// kept (the oldest go first). Answers until when the previous secret stays valid.
    pub async fn rotate_integration_secret(
        &self,
        id: IntegrationId,
        new_secret: &str,
        grace: Duration,
        now: Timestamp,
    ) -> Result<Option<Timestamp>> {
        let sealed = self.cipher().seal(id.as_uuid().as_bytes(), new_secret)?;
        let valid_until = now.plus(grace);
        let tx = self.writer().begin().await?;
        let retired = integration_secret::Entity::update_many()
            .col_expr(
                integration_secret::Column::ExpiresAt,
                Expr::value(valid_until.millis()),
            )
            .filter(integration_secret::Column::IntegrationId.eq(id.as_uuid()))
            .filter(integration_secret::Column::ExpiresAt.is_null())
            .exec(&tx)
            .await?;
        integration_secret::Entity::insert(integration_secret::ActiveModel {
            id: Set(Uuid::now_v7()),
            integration_id: Set(id.as_uuid()),
            ciphertext: Set(sealed),
            created_at: Set(now.millis()),
            expires_at: Set(None),
        })
        .exec_without_returning(&tx)
        .await?;
        integration_secret::Entity::delete_many()
            .filter(integration_secret::Column::IntegrationId.eq(id.as_uuid()))
            .filter(integration_secret::Column::ExpiresAt.lte(now.millis()))
            .exec(&tx)
            .await?;
        // Old secrets, newest first; everything past the first MAX_OLD_SECRETS goes. (Read and
        // cut in code: SQLite has no OFFSET without LIMIT.)
        let old: Vec<Uuid> = integration_secret::Entity::find()
            .select_only()
            .column(integration_secret::Column::Id)
            .filter(integration_secret::Column::IntegrationId.eq(id.as_uuid()))
            .filter(integration_secret::Column::ExpiresAt.is_not_null())
            .order_by_desc(integration_secret::Column::Id)
            .into_tuple()
            .all(&tx)
            .await?;
        let surplus: Vec<Uuid> = old
            .into_iter()
            .skip(usize::try_from(MAX_OLD_SECRETS).unwrap_or(usize::MAX))
            .collect();
        if !surplus.is_empty() {
            integration_secret::Entity::delete_many()
                .filter(integration_secret::Column::Id.is_in(surplus))
                .exec(&tx)
                .await?;
        }
        integration::Entity::update_many()
            .col_expr(integration::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(integration::Column::Id.eq(id.as_uuid()))
            .exec(&tx)
            .await?;
        self.announce_integration_change(&tx, id).await?;
        tx.commit().await?;
        Ok((retired.rows_affected > 0).then_some(valid_until))
    }

    /// Revokes an integration: its webhook URL stops answering at once.
    pub async fn revoke_integration(
        &self,
        id: IntegrationId,
        now: Timestamp,
    ) -> Result<Option<Integration>> {
        integration::Entity::update_many()
            .col_expr(
                integration::Column::State,
                Expr::value(IntegrationState::Revoked.as_str()),
            )
            .col_expr(integration::Column::RevokedAt, Expr::value(now.millis()))
            .col_expr(integration::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(integration::Column::Id.eq(id.as_uuid()))
            .filter(integration::Column::State.ne(IntegrationState::Revoked.as_str()))
            .exec(self.writer())
            .await?;
        self.announce_integration_change(self.writer(), id).await?;
        self.integration(id).await
    }

    /// Changes an integration's name, settings or verification parameters.
    pub async fn update_integration(
        &self,
        id: IntegrationId,
        name: Option<&str>,
        settings: Option<&IntegrationSettings>,
        verification: Option<&serde_json::Value>,
        now: Timestamp,
    ) -> Result<Option<Integration>> {
        let mut update = integration::Entity::update_many()
            .col_expr(integration::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(integration::Column::Id.eq(id.as_uuid()));
        if let Some(name) = name {
            update = update.col_expr(integration::Column::Name, Expr::value(name));
        }
        if let Some(settings) = settings {
            update = update.col_expr(
                integration::Column::Settings,
                Expr::value(serde_json::to_string(settings)?),
            );
        }
        if let Some(verification) = verification {
            update = update.col_expr(
                integration::Column::Verification,
                Expr::value(verification.to_string()),
            );
        }
        update.exec(self.writer()).await?;
        self.announce_integration_change(self.writer(), id).await?;
        self.integration(id).await
    }

    /// Moves a draft integration to live. Returns the integration as it is afterwards.
    pub async fn publish_integration(
        &self,
        id: IntegrationId,
        now: Timestamp,
    ) -> Result<Option<Integration>> {
        integration::Entity::update_many()
            .col_expr(
                integration::Column::State,
                Expr::value(IntegrationState::Live.as_str()),
            )
            .col_expr(integration::Column::PublishedAt, Expr::value(now.millis()))
            .col_expr(integration::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(integration::Column::Id.eq(id.as_uuid()))
            .filter(integration::Column::State.eq(IntegrationState::Draft.as_str()))
            .exec(self.writer())
            .await?;
        self.announce_integration_change(self.writer(), id).await?;
        self.integration(id).await
    }
}
