//! Integrations and their signing secrets (encrypted at rest, bound to the integration id).

use domain::{IntegrationId, IntegrationSettings, IntegrationState, Source, TenantId, Timestamp};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use serde::Serialize;
use uuid::Uuid;

use crate::entities::{integration, integration_secret};
use crate::page::{self, Cursor, Page};
use crate::{Result, Store, StoreError};

/// An integration as stored (never with its secrets).
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// The first signing secret, in clear; stored encrypted.
    pub secret: String,
}

impl Store {
    /// Creates an integration in `draft` with its first secret, in one transaction.
    pub async fn create_integration(
        &self,
        new: NewIntegration,
        now: Timestamp,
    ) -> Result<Integration> {
        let id = IntegrationId::new();
        let sealed = self.cipher().seal(id.as_uuid().as_bytes(), &new.secret)?;
        let tx = self.db().begin().await?;
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
        })
        .exec_without_returning(&tx)
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
        })
    }

    pub async fn integration(&self, id: IntegrationId) -> Result<Option<Integration>> {
        integration::Entity::find_by_id(id.as_uuid())
            .one(self.db())
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

    /// Moves a draft integration to live. Returns the integration as it is afterwards.
    pub async fn publish_integration(
        &self,
        id: IntegrationId,
        now: Timestamp,
    ) -> Result<Option<Integration>> {
        integration::Entity::update_many()
            .col_expr(
                integration::Column::State,
                sea_orm::sea_query::Expr::value(IntegrationState::Live.as_str()),
            )
            .col_expr(
                integration::Column::PublishedAt,
                sea_orm::sea_query::Expr::value(now.millis()),
            )
            .col_expr(
                integration::Column::UpdatedAt,
                sea_orm::sea_query::Expr::value(now.millis()),
            )
            .filter(integration::Column::Id.eq(id.as_uuid()))
            .filter(integration::Column::State.eq(IntegrationState::Draft.as_str()))
            .exec(self.db())
            .await?;
        self.integration(id).await
    }
}
