//! Tenants: the customer companies.

use domain::{TenantId, TenantInvitationSettings, Timestamp};
use sea_orm::ColumnTrait;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

use crate::by_key::ByKey;
use crate::entities::tenant;
use crate::page::{self, Cursor, Page};
use crate::{Result, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: Timestamp,
    /// Invitation overrides; empty when the tenant uses the defaults.
    pub invitation: TenantInvitationSettings,
}

impl TryFrom<tenant::Model> for Tenant {
    type Error = StoreError;
    fn try_from(row: tenant::Model) -> Result<Self> {
        Ok(Self {
            id: row.id.into(),
            name: row.name,
            created_at: Timestamp::from_millis(row.created_at),
            invitation: invitation_settings(row.invitation_settings.as_deref())?,
        })
    }
}

pub(crate) fn invitation_settings(json: Option<&str>) -> Result<TenantInvitationSettings> {
    json.map_or_else(
        || Ok(TenantInvitationSettings::default()),
        |json| serde_json::from_str(json).map_err(StoreError::corrupt),
    )
}

/// What `PATCH /v1/tenants/{id}` may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub invitation: Option<TenantInvitationSettings>,
}

impl Store {
    pub async fn create_tenant(&self, name: &str, now: Timestamp) -> Result<Tenant> {
        let id = TenantId::new();
        tenant::Entity::insert(tenant::ActiveModel {
            id: Set(id.as_uuid()),
            name: Set(name.to_owned()),
            created_at: Set(now.millis()),
            invitation_settings: Set(None),
        })
        .exec_without_returning(self.writer())
        .await?;
        Ok(Tenant {
            id,
            name: name.to_owned(),
            created_at: now,
            invitation: TenantInvitationSettings::default(),
        })
    }

    pub async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        tenant::Entity::find_by_id(id.as_uuid())
            .by_key(self.db())
            .await?
            .map(Tenant::try_from)
            .transpose()
    }

    /// Applies `changes`; answers the tenant as it is now, `None` if there is no such tenant.
    pub async fn update_tenant(
        &self,
        id: TenantId,
        changes: &TenantChanges,
    ) -> Result<Option<Tenant>> {
        let mut update = tenant::Entity::update_many().filter(tenant::Column::Id.eq(id.as_uuid()));
        let mut any = false;
        if let Some(name) = &changes.name {
            update = update.col_expr(tenant::Column::Name, Expr::value(name.clone()));
            any = true;
        }
        if let Some(settings) = &changes.invitation {
            let json = (*settings != TenantInvitationSettings::default())
                .then(|| serde_json::to_string(settings))
                .transpose()?;
            update = update.col_expr(tenant::Column::InvitationSettings, Expr::value(json));
            any = true;
        }
        if any {
            update.exec(self.writer()).await?;
        }
        self.tenant(id).await
    }

    /// Tenants in creation order; `only` restricts to one tenant (a tenant token's view).
    pub async fn list_tenants(
        &self,
        only: Option<TenantId>,
        after: Option<&Cursor>,
        limit: Option<u64>,
    ) -> Result<Page<Tenant>> {
        let limit = page::page_size(limit);
        let mut query = tenant::Entity::find().order_by_asc(tenant::Column::Id);
        if let Some(only) = only {
            query = query.filter(tenant::Column::Id.eq(only.as_uuid()));
        }
        if let Some(after) = after {
            query = query.filter(tenant::Column::Id.gt(after.id));
        }
        let rows = query.limit(limit + 1).all(self.db()).await?;
        page::finish(rows, limit, |row| Cursor::new(0, row.id), Tenant::try_from)
    }
}
