//! The invitation outbox. A row is written in the transaction that creates the user; a relay
//! claims it (status `sending`, with a deadline), sends the email, and records the result. A
//! relay that dies mid-send leaves a claim that expires, and the next relay takes it over.

use std::collections::HashMap;

use domain::{InvitationId, InvitationStatus, TenantId, Timestamp, UserId};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;

use crate::entities::{invitation, tenant, user};
use crate::{Result, Store, StoreError};

/// An invitation claimed for sending, with what the email needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedInvitation {
    pub id: InvitationId,
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub user_id: UserId,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// Including this one.
    pub attempts: i32,
    pub expires_at: Timestamp,
    /// The one-time token the email's link carries: the same on every attempt of this
    /// invitation, so a re-send after a crash is the same message.
    pub token: String,
}

/// An invitation as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvitationRecord {
    pub id: InvitationId,
    pub status: InvitationStatus,
    pub attempts: i32,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
    pub accepted_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

impl TryFrom<invitation::Model> for InvitationRecord {
    type Error = StoreError;
    fn try_from(row: invitation::Model) -> Result<Self> {
        Ok(Self {
            id: row.id.into(),
            status: row.status.parse().map_err(StoreError::corrupt)?,
            attempts: row.attempts,
            created_at: Timestamp::from_millis(row.created_at),
            sent_at: row.sent_at.map(Timestamp::from_millis),
            accepted_at: row.accepted_at.map(Timestamp::from_millis),
            expires_at: row.expires_at.map(Timestamp::from_millis),
            last_error: row.last_error,
        })
    }
}

fn claimable(now: Timestamp) -> Condition {
    Condition::any()
        .add(
            Condition::all()
                .add(invitation::Column::Status.eq(InvitationStatus::Queued.as_str()))
                .add(invitation::Column::NextAttemptAt.lte(now.millis())),
        )
        .add(
            Condition::all()
                .add(invitation::Column::Status.eq(InvitationStatus::Sending.as_str()))
                .add(invitation::Column::ClaimedUntil.lte(now.millis())),
        )
}

impl Store {
    /// Invitations a relay may claim now: queued and due, or abandoned mid-send.
    pub async fn due_invitations(&self, now: Timestamp, max: u64) -> Result<Vec<InvitationId>> {
        let ids: Vec<uuid::Uuid> = invitation::Entity::find()
            .select_only()
            .column(invitation::Column::Id)
            .filter(claimable(now))
            .order_by_asc(invitation::Column::NextAttemptAt)
            .limit(max)
            .into_tuple()
            .all(self.db())
            .await?;
        Ok(ids.into_iter().map(InvitationId::from).collect())
    }

    /// Claims one invitation until `claimed_until`. Its token is set on the first claim
    /// (`fresh_token`, stored hashed for redemption and encrypted for re-sends) and kept on later
    /// claims, as is its expiry. `None` when another relay got there first or it is no longer due.
    pub async fn claim_invitation(
        &self,
        id: InvitationId,
        fresh_token: &str,
        expires_at: Timestamp,
        claimed_until: Timestamp,
        now: Timestamp,
    ) -> Result<Option<ClaimedInvitation>> {
        let sealed = self.cipher().seal(id.as_uuid().as_bytes(), fresh_token)?;
        let keep_or = |column: invitation::Column, value: sea_orm::Value| -> Expr {
            Func::coalesce([Expr::col(column), Expr::value(value)]).into()
        };
        let claimed = invitation::Entity::update_many()
            .col_expr(
                invitation::Column::Status,
                Expr::value(InvitationStatus::Sending.as_str()),
            )
            .col_expr(
                invitation::Column::TokenHash,
                keep_or(
                    invitation::Column::TokenHash,
                    crate::token_hash(fresh_token).into(),
                ),
            )
            .col_expr(
                invitation::Column::TokenCiphertext,
                keep_or(invitation::Column::TokenCiphertext, sealed.into()),
            )
            .col_expr(
                invitation::Column::ExpiresAt,
                keep_or(invitation::Column::ExpiresAt, expires_at.millis().into()),
            )
            .col_expr(
                invitation::Column::ClaimedUntil,
                Expr::value(claimed_until.millis()),
            )
            .col_expr(
                invitation::Column::Attempts,
                Expr::col(invitation::Column::Attempts).add(1),
            )
            .col_expr(invitation::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(invitation::Column::Id.eq(id.as_uuid()))
            .filter(claimable(now))
            .exec(self.db())
            .await?;
        if claimed.rows_affected == 0 {
            return Ok(None);
        }
        let Some(row) = invitation::Entity::find_by_id(id.as_uuid())
            .one(self.db())
            .await?
        else {
            return Ok(None);
        };
        let token = match &row.token_ciphertext {
            Some(sealed) => self.cipher().open(id.as_uuid().as_bytes(), sealed)?,
            None => return Err(StoreError::corrupt("a claimed invitation has no token")),
        };
        let person = user::Entity::find_by_id(row.user_id)
            .one(self.db())
            .await?
            .ok_or(StoreError::NotFound("user"))?;
        let company = tenant::Entity::find_by_id(row.tenant_id)
            .one(self.db())
            .await?
            .ok_or(StoreError::NotFound("tenant"))?;
        Ok(Some(ClaimedInvitation {
            id,
            tenant_id: row.tenant_id.into(),
            tenant_name: company.name,
            user_id: row.user_id.into(),
            email: person.email,
            first_name: person.first_name,
            last_name: person.last_name,
            attempts: row.attempts,
            expires_at: row.expires_at.map_or(expires_at, Timestamp::from_millis),
            token,
        }))
    }

    /// Records a delivered invitation.
    pub async fn mark_invitation_sent(&self, id: InvitationId, now: Timestamp) -> Result<()> {
        self.finish_invitation(id, InvitationStatus::Sent, None, Some(now), now)
            .await
    }

    /// Records a permanent refusal.
    pub async fn mark_invitation_failed(
        &self,
        id: InvitationId,
        error: &str,
        now: Timestamp,
    ) -> Result<()> {
        self.finish_invitation(id, InvitationStatus::Failed, Some(error), None, now)
            .await
    }

    async fn finish_invitation(
        &self,
        id: InvitationId,
        status: InvitationStatus,
        error: Option<&str>,
        sent_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<()> {
        invitation::Entity::update_many()
            .col_expr(invitation::Column::Status, Expr::value(status.as_str()))
            .col_expr(
                invitation::Column::ClaimedUntil,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(
                invitation::Column::LastError,
                Expr::value(error.map(str::to_owned)),
            )
            .col_expr(
                invitation::Column::SentAt,
                Expr::value(sent_at.map(Timestamp::millis)),
            )
            .col_expr(invitation::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(invitation::Column::Id.eq(id.as_uuid()))
            .filter(invitation::Column::Status.eq(InvitationStatus::Sending.as_str()))
            .exec(self.db())
            .await?;
        Ok(())
    }

    /// Puts a claimed invitation back in the queue after a transient failure.
    pub async fn retry_invitation(
        &self,
        id: InvitationId,
        next_attempt_at: Timestamp,
        error: &str,
        now: Timestamp,
    ) -> Result<()> {
        invitation::Entity::update_many()
            .col_expr(
                invitation::Column::Status,
                Expr::value(InvitationStatus::Queued.as_str()),
            )
            .col_expr(
                invitation::Column::ClaimedUntil,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(
                invitation::Column::NextAttemptAt,
                Expr::value(next_attempt_at.millis()),
            )
            .col_expr(invitation::Column::LastError, Expr::value(error))
            .col_expr(invitation::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(invitation::Column::Id.eq(id.as_uuid()))
            .filter(invitation::Column::Status.eq(InvitationStatus::Sending.as_str()))
            .exec(self.db())
            .await?;
        Ok(())
    }

    /// The newest invitation of each of `users` that has one.
    pub async fn latest_invitations_of(
        &self,
        users: &[UserId],
    ) -> Result<HashMap<UserId, InvitationRecord>> {
        let mut latest = HashMap::new();
        if users.is_empty() {
            return Ok(latest);
        }
        let rows = invitation::Entity::find()
            .filter(invitation::Column::UserId.is_in(users.iter().map(|id| id.as_uuid())))
            .order_by_asc(invitation::Column::Id)
            .all(self.db())
            .await?;
        // Ascending ids (time-ordered): the last one seen per user is the newest.
        for row in rows {
            let user = UserId::from(row.user_id);
            latest.insert(user, InvitationRecord::try_from(row)?);
        }
        Ok(latest)
    }
}
