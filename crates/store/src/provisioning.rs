//! The provisioning write transaction: everything one event does (user, identity link,
//! invitation outbox row, event-log row) commits together or not at all.

use domain::{
    CurrentState, EventId, IntegrationId, InvitationId, InvitationStatus, NewUser, NormalizedEmail,
    TenantId, Timestamp, UserChanges, UserId, UserStatus,
};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect,
};

use crate::entities::{event, identity, invitation, user};
use crate::events::NewEventRecord;
use crate::users::snapshot;
use crate::{Backend, Result, Store, StoreError};

/// Reads the state `decide` needs: the user linked to `(integration, external_id)`, and the
/// tenant's other user holding `email` (with whether an owner of this integration holds it).
async fn load_state<C: ConnectionTrait>(
    conn: &C,
    lock_linked: bool,
    tenant: TenantId,
    integration: IntegrationId,
    external_id: &str,
    email: Option<&NormalizedEmail>,
) -> Result<CurrentState> {
    let link = identity::Entity::find()
        .filter(identity::Column::IntegrationId.eq(integration.as_uuid()))
        .filter(identity::Column::ExternalId.eq(external_id))
        .one(conn)
        .await?;
    let linked_user = match link {
        None => None,
        Some(link) => {
            let mut query = user::Entity::find_by_id(link.user_id);
            if lock_linked {
                query = query.lock_exclusive();
            }
            query.one(conn).await?.map(snapshot).transpose()?
        }
    };
    let mut state = CurrentState {
        linked_user,
        email_user: None,
        email_user_linked_here: false,
    };
    let Some(email) = email else {
        return Ok(state);
    };
    let holder = user::Entity::find()
        .filter(user::Column::TenantId.eq(tenant.as_uuid()))
        .filter(user::Column::EmailNormalized.eq(email.normalized()))
        .one(conn)
        .await?;
    if let Some(holder) = holder
        && state
            .linked_user
            .as_ref()
            .is_none_or(|linked| linked.id.as_uuid() != holder.id)
    {
        state.email_user_linked_here = identity::Entity::find()
            .filter(identity::Column::UserId.eq(holder.id))
            .filter(identity::Column::IntegrationId.eq(integration.as_uuid()))
            .one(conn)
            .await?
            .is_some();
        state.email_user = Some(snapshot(holder)?);
    }
    Ok(state)
}

impl Store {
    /// The same state as [`WriteTx::current_state`], read outside any transaction (for
    /// previews that must not write).
    pub async fn current_state(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        external_id: &str,
        email: Option<&NormalizedEmail>,
    ) -> Result<CurrentState> {
        load_state(self.db(), false, tenant, integration, external_id, email).await
    }
}

/// An open write transaction. Dropping it without [`commit`](Self::commit) rolls back.
#[derive(Debug)]
pub struct WriteTx {
    pub(crate) tx: DatabaseTransaction,
    backend: Backend,
}

impl WriteTx {
    pub(crate) fn new(tx: DatabaseTransaction, backend: Backend) -> Self {
        Self { tx, backend }
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await.map_err(StoreError::from)
    }

    /// Whether this event was already recorded (then it must have no second effect).
    pub async fn event_recorded(&self, id: EventId) -> Result<bool> {
        Ok(event::Entity::find_by_id(id.as_uuid())
            .select_only()
            .column(event::Column::Id)
            .into_tuple::<uuid::Uuid>()
            .one(&self.tx)
            .await?
            .is_some())
    }

    /// What the database says about an owner now, for the decision. On PostgreSQL the linked
    /// user's row is locked for the rest of the transaction, so two events for one owner apply
    /// one after the other.
    pub async fn current_state(
        &self,
        tenant: TenantId,
        integration: IntegrationId,
        external_id: &str,
        email: Option<&NormalizedEmail>,
    ) -> Result<CurrentState> {
        load_state(
            &self.tx,
            self.backend == Backend::Postgres,
            tenant,
            integration,
            external_id,
            email,
        )
        .await
    }

    /// Inserts a user. A taken email answers [`StoreError::Conflict`].
    pub async fn insert_user(
        &self,
        tenant: TenantId,
        new: &NewUser,
        source_updated_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<UserId> {
        let id = UserId::new();
        let profile = &new.profile;
        user::Entity::insert(user::ActiveModel {
            id: Set(id.as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
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
            team_id: Set(None),
            source_updated_at: Set(source_updated_at.map(Timestamp::millis)),
            created_at: Set(now.millis()),
            updated_at: Set(now.millis()),
        })
        .exec_without_returning(&self.tx)
        .await?;
        Ok(id)
    }

    /// Links `user` to `(integration, external_id)`. An existing link answers
    /// [`StoreError::Conflict`]: links are never re-pointed.
    pub async fn insert_identity(
        &self,
        tenant: TenantId,
        user: UserId,
        integration: IntegrationId,
        external_id: &str,
        avatar_url: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        identity::Entity::insert(identity::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            tenant_id: Set(tenant.as_uuid()),
            user_id: Set(user.as_uuid()),
            integration_id: Set(integration.as_uuid()),
            external_id: Set(external_id.to_owned()),
            avatar_url: Set(avatar_url.map(str::to_owned)),
            created_at: Set(now.millis()),
        })
        .exec_without_returning(&self.tx)
        .await?;
        Ok(())
    }

    /// Applies changes (profile fields, email, status) to a user; `source_updated_at` records
    /// the CRM time of the event that carried them.
    pub async fn update_user(
        &self,
        id: UserId,
        changes: &UserChanges,
        source_updated_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<()> {
        let mut update = user::Entity::update_many()
            .col_expr(user::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(user::Column::Id.eq(id.as_uuid()));
        let profile = &changes.profile;
        let set_text = |column: user::Column, value: &Option<String>| {
            value.as_ref().map(|v| (column, Expr::value(v.clone())))
        };
        let mut sets: Vec<(user::Column, SimpleExpr)> = [
            set_text(user::Column::FirstName, &profile.first_name),
            set_text(user::Column::LastName, &profile.last_name),
            set_text(user::Column::AvatarUrl, &profile.avatar_url),
            set_text(user::Column::Title, &profile.title),
            set_text(user::Column::Department, &profile.department),
            set_text(user::Column::Location, &profile.location),
            set_text(user::Column::MemberType, &profile.member_type),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Some(ids) = &profile.employee_ids {
            sets.push((
                user::Column::EmployeeIds,
                Expr::value(serde_json::to_string(ids)?),
            ));
        }
        if let Some(email) = &changes.email {
            sets.push((user::Column::Email, Expr::value(email.as_str())));
            sets.push((
                user::Column::EmailNormalized,
                Expr::value(email.normalized()),
            ));
        }
        if let Some(status) = changes.status {
            sets.push((user::Column::Status, Expr::value(status.as_str())));
        }
        if let Some(at) = source_updated_at {
            sets.push((user::Column::SourceUpdatedAt, Expr::value(at.millis())));
        }
        for (column, value) in sets {
            update = update.col_expr(column, value);
        }
        update.exec(&self.tx).await?;
        Ok(())
    }

    /// Records that an event at `at` was applied to a user without changing anything, so an
    /// older event arriving later is recognised as stale.
    pub async fn advance_source_time(&self, id: UserId, at: Timestamp) -> Result<()> {
        user::Entity::update_many()
            .col_expr(user::Column::SourceUpdatedAt, Expr::value(at.millis()))
            .filter(user::Column::Id.eq(id.as_uuid()))
            .filter(
                sea_orm::Condition::any()
                    .add(user::Column::SourceUpdatedAt.is_null())
                    .add(user::Column::SourceUpdatedAt.lt(at.millis())),
            )
            .exec(&self.tx)
            .await?;
        Ok(())
    }

    pub async fn set_user_status(
        &self,
        id: UserId,
        status: UserStatus,
        now: Timestamp,
    ) -> Result<()> {
        user::Entity::update_many()
            .col_expr(user::Column::Status, Expr::value(status.as_str()))
            .col_expr(user::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(user::Column::Id.eq(id.as_uuid()))
            .exec(&self.tx)
            .await?;
        Ok(())
    }

    /// Writes an invitation to the outbox, due now.
    pub async fn queue_invitation(
        &self,
        tenant: TenantId,
        user: UserId,
        now: Timestamp,
    ) -> Result<InvitationId> {
        let id = InvitationId::new();
        invitation::Entity::insert(invitation::ActiveModel {
            id: Set(id.as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            user_id: Set(user.as_uuid()),
            status: Set(InvitationStatus::Queued.as_str().to_owned()),
            token_hash: Set(None),
            token_ciphertext: Set(None),
            attempts: Set(0),
            next_attempt_at: Set(now.millis()),
            claimed_until: Set(None),
            expires_at: Set(None),
            sent_at: Set(None),
            accepted_at: Set(None),
            last_error: Set(None),
            created_at: Set(now.millis()),
            updated_at: Set(now.millis()),
        })
        .exec_without_returning(&self.tx)
        .await?;
        Ok(id)
    }

    /// Records the event. The same event recorded twice answers [`StoreError::Conflict`].
    pub async fn insert_event(&self, record: &NewEventRecord) -> Result<()> {
        event::Entity::insert(event::ActiveModel {
            id: Set(record.id.as_uuid()),
            tenant_id: Set(record.tenant_id.as_uuid()),
            integration_id: Set(record.integration_id.as_uuid()),
            provider_event_id: Set(record.provider_event_id.clone()),
            event_type: Set(record.event_type.clone()),
            occurred_at: Set(record.occurred_at.map(Timestamp::millis)),
            received_at: Set(record.received_at.millis()),
            processed_at: Set(record.processed_at.millis()),
            outcome: Set(record.outcome.as_str().to_owned()),
            reason: Set(record.reason.clone()),
            user_id: Set(record.user_id.map(UserId::as_uuid)),
            external_id: Set(record.external_id.clone()),
            shadow: Set(record.shadow),
            attempts: Set(record.attempts),
            details: Set(serde_json::to_string(&record.owners)?),
            replayed_at: Set(record.replayed_at.map(Timestamp::millis)),
            replayed_by: Set(record.replayed_by.clone()),
        })
        .exec_without_returning(&self.tx)
        .await?;
        Ok(())
    }
}
