//! Teams and team membership. A user is on at most one team (`users.team_id`); placing a
//! `pending` user on a team activates them, in the same transaction that queues the invitation
//! they were held back from.

use std::collections::HashMap;

use domain::{TeamId, TenantId, Timestamp, UserId, UserStatus};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;

use crate::by_key::ByKey;
use crate::entities::{team, user};
use crate::page::{self, Cursor, Page};
use crate::users::UserRecord;
use crate::{Backend, Result, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Team {
    pub id: TeamId,
    pub tenant_id: TenantId,
    pub name: String,
    pub member_count: u64,
    pub created_at: Timestamp,
}

fn team_of(row: team::Model, member_count: u64) -> Team {
    Team {
        id: row.id.into(),
        tenant_id: row.tenant_id.into(),
        name: row.name,
        member_count,
        created_at: Timestamp::from_millis(row.created_at),
    }
}

/// A clearer message than the database's for the one unique key teams have.
fn name_taken(err: StoreError, name: &str) -> StoreError {
    match err {
        StoreError::Conflict(_) => {
            StoreError::Conflict(format!("this tenant already has a team named {name:?}"))
        }
        other => other,
    }
}

/// Why a team could not be deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamDeletion {
    Deleted {
        members_moved_out: u64,
    },
    /// The team has members and `force` was not given.
    NotEmpty {
        members: u64,
    },
}

/// What placing a user on a team did.
#[derive(Debug, Clone)]
pub struct Placement {
    pub user: UserRecord,
    /// The user was `pending` and is now `active`.
    pub activated: bool,
    /// An invitation was queued with the activation.
    pub invited: bool,
}

/// A new team's row, for the admin's create and for the department teams provisioning makes.
pub(crate) fn new_team(
    tenant: TenantId,
    name: &str,
    now: Timestamp,
) -> (TeamId, team::ActiveModel) {
    let id = TeamId::new();
    let row = team::ActiveModel {
        id: Set(id.as_uuid()),
        tenant_id: Set(tenant.as_uuid()),
        name: Set(name.to_owned()),
        created_at: Set(now.millis()),
    };
    (id, row)
}

impl Store {
    pub async fn create_team(&self, tenant: TenantId, name: &str, now: Timestamp) -> Result<Team> {
        let (id, row) = new_team(tenant, name, now);
        team::Entity::insert(row)
            .exec_without_returning(self.writer())
            .await
            .map_err(|err| name_taken(err.into(), name))?;
        Ok(Team {
            id,
            tenant_id: tenant,
            name: name.to_owned(),
            member_count: 0,
            created_at: now,
        })
    }

    /// The tenant's team with this exact name, creating it if there is none (two callers at
    /// once both get the same team).
    pub async fn team_named(&self, tenant: TenantId, name: &str, now: Timestamp) -> Result<Team> {
        let find = || {
            team::Entity::find()
                .filter(team::Column::TenantId.eq(tenant.as_uuid()))
                .filter(team::Column::Name.eq(name))
                .by_key(self.db())
        };
        if let Some(row) = find().await? {
            return Ok(team_of(row, 0));
        }
        match self.create_team(tenant, name, now).await {
            Err(StoreError::Conflict(_)) => find()
                .await?
                .map(|row| team_of(row, 0))
                .ok_or(StoreError::NotFound("team")),
            other => other,
        }
    }

    async fn member_counts(&self, teams: &[uuid::Uuid]) -> Result<HashMap<uuid::Uuid, u64>> {
        if teams.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(Option<uuid::Uuid>, i64)> = user::Entity::find()
            .select_only()
            .column(user::Column::TeamId)
            .column_as(user::Column::Id.count(), "members")
            .filter(user::Column::TeamId.is_in(teams.iter().copied()))
            .group_by(user::Column::TeamId)
            .into_tuple()
            .all(self.db())
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(team, count)| Some((team?, u64::try_from(count).unwrap_or(0))))
            .collect())
    }

    pub async fn team(&self, id: TeamId) -> Result<Option<Team>> {
        let Some(row) = team::Entity::find_by_id(id.as_uuid())
            .by_key(self.db())
            .await?
        else {
            return Ok(None);
        };
        let count = self
            .member_counts(&[row.id])
            .await?
            .get(&row.id)
            .copied()
            .unwrap_or(0);
        Ok(Some(team_of(row, count)))
    }

    /// Teams with their member counts, in creation order; `tenant` restricts to one tenant.
    pub async fn list_teams(
        &self,
        tenant: Option<TenantId>,
        after: Option<&Cursor>,
        limit: Option<u64>,
    ) -> Result<Page<Team>> {
        let limit = page::page_size(limit);
        let mut query = team::Entity::find().order_by_asc(team::Column::Id);
        if let Some(tenant) = tenant {
            query = query.filter(team::Column::TenantId.eq(tenant.as_uuid()));
        }
        if let Some(after) = after {
            query = query.filter(team::Column::Id.gt(after.id));
        }
        let rows = query.limit(limit + 1).all(self.db()).await?;
        let ids: Vec<uuid::Uuid> = rows.iter().map(|row| row.id).collect();
        let counts = self.member_counts(&ids).await?;
        page::finish(
            rows,
            limit,
            |row| Cursor::new(0, row.id),
            |row| {
                let count = counts.get(&row.id).copied().unwrap_or(0);
                Ok(team_of(row, count))
            },
        )
    }

    pub async fn rename_team(&self, id: TeamId, name: &str) -> Result<Option<Team>> {
        team::Entity::update_many()
            .col_expr(team::Column::Name, Expr::value(name))
            .filter(team::Column::Id.eq(id.as_uuid()))
            .exec(self.writer())
            .await
            .map_err(|err| name_taken(err.into(), name))?;
        self.team(id).await
    }

    /// Deletes a team. With members it refuses unless `force`, which moves them out (they
    /// keep their status) in the same transaction.
    pub async fn delete_team(
        &self,
        id: TeamId,
        force: bool,
        now: Timestamp,
    ) -> Result<TeamDeletion> {
        let tx = self.begin_write().await?;
        let members = user::Entity::find()
            .filter(user::Column::TeamId.eq(id.as_uuid()))
            .count(&tx.tx)
            .await?;
        if members > 0 && !force {
            return Ok(TeamDeletion::NotEmpty { members });
        }
        user::Entity::update_many()
            .col_expr(
                user::Column::TeamId,
                Expr::value(Option::<uuid::Uuid>::None),
            )
            .col_expr(user::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(user::Column::TeamId.eq(id.as_uuid()))
            .exec(&tx.tx)
            .await?;
        let deleted = team::Entity::delete_by_id(id.as_uuid())
            .exec(&tx.tx)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(StoreError::NotFound("team"));
        }
        tx.commit().await?;
        Ok(TeamDeletion::Deleted {
            members_moved_out: members,
        })
    }

    /// Puts a user on a team (moving them off any other). A `pending` user becomes `active`,
    /// and, when `invite_if_activated` and they were never invited, their invitation is
    /// queued in the same transaction. Team and user must belong to the same tenant.
    pub async fn place_on_team(
        &self,
        team_id: TeamId,
        user_id: UserId,
        invite_if_activated: bool,
        now: Timestamp,
    ) -> Result<Placement> {
        let tx = self.begin_write().await?;
        let mut query = user::Entity::find_by_id(user_id.as_uuid());
        if self.backend() == Backend::Postgres {
            // Two placements of one user at once: one after the other, one invitation.
            query = query.lock_exclusive();
        }
        let person = query
            .by_key(&tx.tx)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
        let team = team::Entity::find_by_id(team_id.as_uuid())
            .by_key(&tx.tx)
            .await?
            .filter(|team| team.tenant_id == person.tenant_id)
            .ok_or(StoreError::NotFound("team"))?;
        let status: UserStatus = person.status.parse().map_err(StoreError::corrupt)?;
        let activated = status == UserStatus::Pending;
        let mut update = user::Entity::update_many()
            .col_expr(user::Column::TeamId, Expr::value(Some(team.id)))
            .col_expr(user::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(user::Column::Id.eq(person.id));
        if activated {
            update = update.col_expr(
                user::Column::Status,
                Expr::value(UserStatus::Active.as_str()),
            );
        }
        update.exec(&tx.tx).await?;
        let invited = activated
            && invite_if_activated
            && crate::invitations::queue_first_invitation(
                &tx.tx,
                person.tenant_id.into(),
                user_id,
                now,
            )
            .await?;
        let user = user::Entity::find_by_id(person.id)
            .by_key(&tx.tx)
            .await?
            .ok_or(StoreError::NotFound("user"))
            .and_then(UserRecord::try_from)?;
        tx.commit().await?;
        Ok(Placement {
            user,
            activated,
            invited,
        })
    }

    /// Takes a user off a team; `NotFound("member")` when they are not on it.
    pub async fn remove_from_team(
        &self,
        team_id: TeamId,
        user_id: UserId,
        now: Timestamp,
    ) -> Result<()> {
        let result = user::Entity::update_many()
            .col_expr(
                user::Column::TeamId,
                Expr::value(Option::<uuid::Uuid>::None),
            )
            .col_expr(user::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(user::Column::Id.eq(user_id.as_uuid()))
            .filter(user::Column::TeamId.eq(team_id.as_uuid()))
            .exec(self.writer())
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound("member"));
        }
        Ok(())
    }
}
