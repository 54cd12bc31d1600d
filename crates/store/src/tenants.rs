//! Tenants: the customer companies.

use domain::{TenantId, Timestamp};
use sea_orm::ColumnTrait;
use sea_orm::{ActiveValue::Set, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

use crate::entities::tenant;
use crate::page::{self, Cursor, Page};
use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: Timestamp,
}

impl From<tenant::Model> for Tenant {
    fn from(row: tenant::Model) -> Self {
        Self {
            id: row.id.into(),
            name: row.name,
            created_at: Timestamp::from_millis(row.created_at),
        }
    }
}

impl Store {
    pub async fn create_tenant(&self, name: &str, now: Timestamp) -> Result<Tenant> {
        let id = TenantId::new();
        tenant::Entity::insert(tenant::ActiveModel {
            id: Set(id.as_uuid()),
            name: Set(name.to_owned()),
            created_at: Set(now.millis()),
        })
        .exec_without_returning(self.db())
        .await?;
        Ok(Tenant {
            id,
            name: name.to_owned(),
            created_at: now,
        })
    }

    pub async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
        Ok(tenant::Entity::find_by_id(id.as_uuid())
            .one(self.db())
            .await?
            .map(Tenant::from))
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
        page::finish(
            rows,
            limit,
            |row| Cursor::new(0, row.id),
            |row| Ok(Tenant::from(row)),
        )
    }
}
