//! Reading users and their identity links.

use std::collections::HashMap;

use domain::{IntegrationId, TeamId, TenantId, Timestamp, UserId, UserSnapshot, UserStatus};
use sea_orm::sea_query::{Expr, Func, LikeExpr, Query};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;

use crate::entities::{identity, user};
use crate::page::{self, Cursor, Page};
use crate::{Result, Store, StoreError};

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub avatar_url: Option<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub location: Option<String>,
    pub employee_ids: Vec<String>,
    pub member_type: Option<String>,
    pub role: String,
    pub status: UserStatus,
    pub team_id: Option<TeamId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl TryFrom<user::Model> for UserRecord {
    type Error = StoreError;
    fn try_from(row: user::Model) -> Result<Self> {
        Ok(Self {
            id: row.id.into(),
            tenant_id: row.tenant_id.into(),
            email: row.email,
            first_name: row.first_name,
            last_name: row.last_name,
            avatar_url: row.avatar_url,
            title: row.title,
            department: row.department,
            location: row.location,
            employee_ids: serde_json::from_str(&row.employee_ids)?,
            member_type: row.member_type,
            role: row.role,
            status: row.status.parse().map_err(StoreError::corrupt)?,
            team_id: row.team_id.map(TeamId::from),
            created_at: Timestamp::from_millis(row.created_at),
            updated_at: Timestamp::from_millis(row.updated_at),
        })
    }
}

pub(crate) fn snapshot(row: user::Model) -> Result<UserSnapshot> {
    Ok(UserSnapshot {
        id: row.id.into(),
        email: row.email,
        first_name: row.first_name,
        last_name: row.last_name,
        avatar_url: row.avatar_url,
        title: row.title,
        department: row.department,
        location: row.location,
        employee_ids: serde_json::from_str(&row.employee_ids)?,
        member_type: row.member_type,
        role: row.role,
        status: row.status.parse().map_err(StoreError::corrupt)?,
        team_id: row.team_id.map(TeamId::from),
        source_updated_at: row.source_updated_at.map(Timestamp::from_millis),
        // Filled in by whoever knows the user's invitations.
        invited: false,
    })
}

/// An identity link: this user is `external_id` in `integration_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityRecord {
    pub integration_id: IntegrationId,
    pub external_id: String,
    pub avatar_url: Option<String>,
    pub created_at: Timestamp,
}

/// Filters for listing users. `tenant` restricts to one tenant (a tenant token's view).
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub tenant: Option<TenantId>,
    pub status: Option<UserStatus>,
    pub team_id: Option<TeamId>,
    pub integration_id: Option<IntegrationId>,
    /// Case-insensitive substring of name or email.
    pub q: Option<String>,
}

/// Escapes `%`, `_` and `\` for a LIKE pattern (with `ESCAPE '\'`).
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl Store {
    pub async fn user(&self, id: UserId) -> Result<Option<UserRecord>> {
        user::Entity::find_by_id(id.as_uuid())
            .one(self.db())
            .await?
            .map(UserRecord::try_from)
            .transpose()
    }

    /// The identity links of each of `users`.
    pub async fn identities_of(
        &self,
        users: &[UserId],
    ) -> Result<HashMap<UserId, Vec<IdentityRecord>>> {
        let mut by_user: HashMap<UserId, Vec<IdentityRecord>> = HashMap::new();
        if users.is_empty() {
            return Ok(by_user);
        }
        let rows = identity::Entity::find()
            .filter(identity::Column::UserId.is_in(users.iter().map(|id| id.as_uuid())))
            .order_by_asc(identity::Column::Id)
            .all(self.db())
            .await?;
        for row in rows {
            by_user
                .entry(row.user_id.into())
                .or_default()
                .push(IdentityRecord {
                    integration_id: row.integration_id.into(),
                    external_id: row.external_id,
                    avatar_url: row.avatar_url,
                    created_at: Timestamp::from_millis(row.created_at),
                });
        }
        Ok(by_user)
    }

    /// Users in creation order.
    pub async fn list_users(
        &self,
        filter: &UserFilter,
        after: Option<&Cursor>,
        limit: Option<u64>,
    ) -> Result<Page<UserRecord>> {
        let limit = page::page_size(limit);
        let mut query = user::Entity::find().order_by_asc(user::Column::Id);
        if let Some(tenant) = filter.tenant {
            query = query.filter(user::Column::TenantId.eq(tenant.as_uuid()));
        }
        if let Some(status) = filter.status {
            query = query.filter(user::Column::Status.eq(status.as_str()));
        }
        if let Some(team) = filter.team_id {
            query = query.filter(user::Column::TeamId.eq(team.as_uuid()));
        }
        if let Some(integration) = filter.integration_id {
            query = query.filter(
                user::Column::Id.in_subquery(
                    Query::select()
                        .column(identity::Column::UserId)
                        .from(identity::Entity)
                        .and_where(identity::Column::IntegrationId.eq(integration.as_uuid()))
                        .to_owned(),
                ),
            );
        }
        if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let pattern = like_pattern(q);
            let like = |column: user::Column| {
                Expr::expr(Func::lower(Expr::col(column)))
                    .like(LikeExpr::new(pattern.clone()).escape('\\'))
            };
            query = query.filter(
                Condition::any()
                    .add(like(user::Column::EmailNormalized))
                    .add(like(user::Column::FirstName))
                    .add(like(user::Column::LastName)),
            );
        }
        if let Some(after) = after {
            query = query.filter(user::Column::Id.gt(after.id));
        }
        let rows = query.limit(limit + 1).all(self.db()).await?;
        page::finish(
            rows,
            limit,
            |row| Cursor::new(0, row.id),
            UserRecord::try_from,
        )
    }

    /// How many users a tenant has (all of them, or of one status).
    pub async fn count_users(&self, tenant: TenantId, status: Option<UserStatus>) -> Result<u64> {
        use sea_orm::PaginatorTrait;
        let mut query = user::Entity::find().filter(user::Column::TenantId.eq(tenant.as_uuid()));
        if let Some(status) = status {
            query = query.filter(user::Column::Status.eq(status.as_str()));
        }
        Ok(query.count(self.db()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("Ann_50%"), "%ann\\_50\\%%");
    }
}
