//! Reading users and their identity links.

use std::collections::HashMap;

use domain::{IntegrationId, TeamId, TenantId, Timestamp, UserId, UserSnapshot, UserStatus};
use sea_orm::sea_query::{Expr, Func, LikeExpr, Query};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, ExprTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;

use crate::by_key::ByKey;
use crate::entities::{identity, user};
use crate::page::{self, Cursor, Page};
use crate::{Result, Store, StoreError};

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
            .by_key(self.db())
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

/// A user an admin creates by hand, optionally linked to an owner of one integration.
#[derive(Debug, Clone)]
pub struct ManualUser<'a> {
    pub tenant: TenantId,
    pub user: &'a domain::NewUser,
    pub team_id: Option<TeamId>,
    pub link: Option<(IntegrationId, &'a str)>,
}

/// What an admin may change on a user; `None` leaves a field as it is, `Some(None)` clears an
/// optional one.
#[derive(Debug, Clone, Default)]
pub struct UserEdit {
    pub email: Option<domain::NormalizedEmail>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub role: Option<String>,
    pub avatar_url: Option<Option<String>>,
    pub title: Option<Option<String>>,
    pub department: Option<Option<String>>,
    pub location: Option<Option<String>>,
    pub member_type: Option<Option<String>>,
    pub employee_ids: Option<Vec<String>>,
}

/// The unique keys a manual create or an edit can collide with, in words.
fn user_conflict(err: StoreError, email: &str) -> StoreError {
    match err {
        StoreError::Conflict(detail) if detail.contains("identit") => StoreError::Conflict(
            "that owner of the integration is already linked to a user".to_owned(),
        ),
        StoreError::Conflict(_) => {
            StoreError::Conflict(format!("this tenant already has a user with email {email}"))
        }
        other => other,
    }
}

impl Store {
    /// Creates a user by hand: the user, its identity link, its team and its invitation (when
    /// `user.invite`) commit together. The same unique keys as auto-creation apply: one user
    /// per email in a tenant, one user per owner of an integration.
    pub async fn create_user(&self, manual: &ManualUser<'_>, now: Timestamp) -> Result<UserRecord> {
        use sea_orm::ActiveValue::Set;
        let new = manual.user;
        let id = UserId::new();
        let profile = &new.profile;
        let tx = self.begin_write().await?;
        if let Some(team) = manual.team_id {
            let found = crate::entities::team::Entity::find_by_id(team.as_uuid())
                .filter(crate::entities::team::Column::TenantId.eq(manual.tenant.as_uuid()))
                .by_key(&tx.tx)
                .await?;
            if found.is_none() {
                return Err(StoreError::NotFound("team"));
            }
        }
        let row = user::ActiveModel {
            id: Set(id.as_uuid()),
            tenant_id: Set(manual.tenant.as_uuid()),
            email: Set(new.email.as_str().to_owned()),
            email_normalized: Set(new.email.normalized().to_owned()),
            first_name: Set(new.first_name.clone()),
            last_name: Set(new.last_name.clone()),
            avatar_url: Set(profile.avatar_url.clone()),
            title: Set(profile.title.clone()),
            department: Set(profile.department.clone()),
            location: Set(profile.location.clone()),
            employee_ids: Set(serde_json::to_string(
                profile.employee_ids.as_deref().unwrap_or_default(),
            )?),
            member_type: Set(profile.member_type.clone()),
            role: Set(new.role.clone()),
            status: Set(new.status.as_str().to_owned()),
            team_id: Set(manual.team_id.map(TeamId::as_uuid)),
            source_updated_at: Set(None),
            created_at: Set(now.millis()),
            updated_at: Set(now.millis()),
        };
        user::Entity::insert(row)
            .exec_without_returning(&tx.tx)
            .await
            .map_err(|err| user_conflict(err.into(), new.email.as_str()))?;
        if let Some((integration, external_id)) = manual.link {
            identity::Entity::insert(identity::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                tenant_id: Set(manual.tenant.as_uuid()),
                user_id: Set(id.as_uuid()),
                integration_id: Set(integration.as_uuid()),
                external_id: Set(external_id.to_owned()),
                avatar_url: Set(profile.avatar_url.clone()),
                created_at: Set(now.millis()),
            })
            .exec_without_returning(&tx.tx)
            .await
            .map_err(|err| user_conflict(err.into(), new.email.as_str()))?;
        }
        if new.invite {
            let (_, row) = crate::invitations::new_invitation(manual.tenant, id, now);
            crate::entities::invitation::Entity::insert(row.into_active_model())
                .exec_without_returning(&tx.tx)
                .await?;
        }
        tx.commit().await?;
        self.user(id).await?.ok_or(StoreError::NotFound("user"))
    }

    /// Applies an admin's edit; `None` when there is no such user.
    pub async fn edit_user(
        &self,
        id: UserId,
        edit: &UserEdit,
        now: Timestamp,
    ) -> Result<Option<UserRecord>> {
        let mut update = user::Entity::update_many()
            .col_expr(user::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(user::Column::Id.eq(id.as_uuid()));
        if let Some(email) = &edit.email {
            update = update
                .col_expr(user::Column::Email, Expr::value(email.as_str()))
                .col_expr(
                    user::Column::EmailNormalized,
                    Expr::value(email.normalized()),
                );
        }
        for (column, value) in [
            (user::Column::FirstName, &edit.first_name),
            (user::Column::LastName, &edit.last_name),
            (user::Column::Role, &edit.role),
        ] {
            if let Some(value) = value {
                update = update.col_expr(column, Expr::value(value.as_str()));
            }
        }
        for (column, value) in [
            (user::Column::AvatarUrl, &edit.avatar_url),
            (user::Column::Title, &edit.title),
            (user::Column::Department, &edit.department),
            (user::Column::Location, &edit.location),
            (user::Column::MemberType, &edit.member_type),
        ] {
            if let Some(value) = value {
                update = update.col_expr(column, Expr::value(value.clone()));
            }
        }
        if let Some(ids) = &edit.employee_ids {
            update = update.col_expr(
                user::Column::EmployeeIds,
                Expr::value(serde_json::to_string(ids)?),
            );
        }
        let email = edit.email.as_ref().map_or("", |email| email.as_str());
        update
            .exec(self.writer())
            .await
            .map_err(|err| user_conflict(err.into(), email))?;
        self.user(id).await
    }

    /// Moves a user to `status` by an admin's hand (a deactivation, a reactivation). When the
    /// user becomes active, `invite_if_activated` holds and they were never invited, their
    /// invitation is queued in the same transaction. Answers the user and whether it queued one.
    pub async fn set_user_status(
        &self,
        id: UserId,
        status: UserStatus,
        invite_if_activated: bool,
        now: Timestamp,
    ) -> Result<Option<(UserRecord, bool)>> {
        let tx = self.begin_write().await?;
        let mut query = user::Entity::find_by_id(id.as_uuid());
        if self.backend() == crate::Backend::Postgres {
            query = query.lock_exclusive();
        }
        let Some(person) = query.by_key(&tx.tx).await? else {
            return Ok(None);
        };
        let before: UserStatus = person.status.parse().map_err(StoreError::corrupt)?;
        user::Entity::update_many()
            .col_expr(user::Column::Status, Expr::value(status.as_str()))
            .col_expr(user::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(user::Column::Id.eq(person.id))
            .exec(&tx.tx)
            .await?;
        let invited = before != UserStatus::Active
            && status == UserStatus::Active
            && invite_if_activated
            && crate::invitations::queue_first_invitation(&tx.tx, person.tenant_id.into(), id, now)
                .await?;
        tx.commit().await?;
        Ok(self.user(id).await?.map(|user| (user, invited)))
    }
}
