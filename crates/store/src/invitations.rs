//! The invitation outbox. A row is written in the transaction that creates the user; a relay
//! claims it (status `sending`, with a deadline), sends the email, and records the result. A
//! relay that dies mid-send leaves a claim that expires, and the next relay takes it over.

use std::collections::HashMap;

use domain::{
    InvitationId, InvitationStatus, TenantId, TenantInvitationSettings, Timestamp, UserId,
    UserStatus,
};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, ExprTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;

use crate::by_key::ByKey;
use crate::entities::{invitation, tenant, user};
use crate::{Result, Store, StoreError};

/// Invitations whose link may still be redeemed (once sent, or on its way).
const REDEEMABLE: [InvitationStatus; 3] = [
    InvitationStatus::Queued,
    InvitationStatus::Sending,
    InvitationStatus::Sent,
];

/// Why `POST /v1/users/{id}/invitations` cannot invite a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteRefusal {
    /// Only active users are invited (pending users when they join a team, inactive ones when
    /// reactivated).
    NotActive(UserStatus),
    /// The user already accepted an invitation.
    AlreadyAccepted,
}

/// What redeeming an invitation token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// Accepted now, by this user.
    Accepted { user_id: UserId },
    /// No such token (or one of a tenant the caller cannot see).
    Unknown,
    /// The token existed but no longer works.
    Gone(GoneReason),
}

/// Why a known token no longer works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoneReason {
    AlreadyAccepted,
    /// A newer invitation replaced it (a resend).
    Superseded,
    Expired,
    /// The email could not be delivered, so the link was never usable.
    Failed,
    /// The user was deactivated since.
    UserNotActive,
}

/// An invitation claimed for sending, with what the email needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedInvitation {
    pub id: InvitationId,
    pub tenant_id: TenantId,
    pub tenant_name: String,
    /// The tenant's overrides (link template, reply-to, templates).
    pub tenant_settings: TenantInvitationSettings,
    pub user_id: UserId,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// Including this one.
    pub attempts: i32,
    /// Until when this relay holds the claim: past it, another relay may send it.
    pub claimed_until: Timestamp,
    pub expires_at: Timestamp,
    /// The one-time token the email's link carries: the same on every attempt of this
    /// invitation, so a re-send after a crash is the same message.
    pub token: String,
}

/// An invitation as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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

/// The two kinds of claimable invitation, each read by its own query as an index range in the
/// order it is taken and cut off at the limit: the abandoned ones from `ix_invitations_claims`
/// by when their claim ran out, the queued ones from `ix_invitations_due` by when they fell
/// due. (As one `OR` query, PostgreSQL reads every queued row and sorts them to return a few:
/// 68 ms instead of 0.14 ms per claim with 50,000 invitations queued, which made a burst's
/// outbox drain at a few hundred emails a second while the database's CPU went to sorting.)
fn claimable(now: Timestamp) -> [(Condition, invitation::Column); 2] {
    [
        // Abandoned mid-send by a relay whose claim expired: older, so taken first. The status
        // is written into the statement, not bound: a plan cached for a bound status could not
        // use the partial index, whose condition it must be seen to imply.
        (
            Condition::all()
                .add(Expr::cust(format!(
                    "status = '{}'",
                    InvitationStatus::Sending.as_str()
                )))
                .add(invitation::Column::ClaimedUntil.lte(now.millis())),
            invitation::Column::ClaimedUntil,
        ),
        (
            Condition::all()
                .add(invitation::Column::Status.eq(InvitationStatus::Queued.as_str()))
                .add(invitation::Column::NextAttemptAt.lte(now.millis())),
            invitation::Column::NextAttemptAt,
        ),
    ]
}

impl Store {
    /// Claims up to `max` invitations that are due (queued and due, or abandoned mid-send by a
    /// relay whose claim expired) until `claimed_until`, in one transaction: a burst of new
    /// users costs one commit per batch here, not one per email. An invitation's token is set
    /// on its first claim (`fresh_token`, stored hashed for redemption and encrypted for
    /// re-sends) and kept on later claims, as is its expiry. Concurrent relays never claim the
    /// same row (`SKIP LOCKED` on PostgreSQL; SQLite has one writer).
    pub async fn claim_due_invitations(
        &self,
        max: u64,
        expires_at: Timestamp,
        claimed_until: Timestamp,
        now: Timestamp,
        fresh_token: impl Fn() -> String,
    ) -> Result<Vec<ClaimedInvitation>> {
        let tx = self.begin_write().await?;
        let mut rows = Vec::new();
        for (condition, order) in claimable(now) {
            let wanted = max.saturating_sub(rows.len() as u64);
            if wanted == 0 {
                break;
            }
            let mut due = invitation::Entity::find()
                .filter(condition)
                .order_by_asc(order)
                .limit(wanted);
            if self.backend() == crate::Backend::Postgres {
                due = due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
            }
            rows.extend(due.all(&tx.tx).await?);
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let id = InvitationId::from(row.id);
            let (token, hash, sealed) = match &row.token_ciphertext {
                Some(sealed) => (
                    self.cipher().open(row.id.as_bytes(), sealed)?,
                    row.token_hash.clone(),
                    sealed.clone(),
                ),
                None => {
                    let token = fresh_token();
                    let sealed = self.cipher().seal(row.id.as_bytes(), &token)?;
                    let hash = crate::token_hash(&token);
                    (token, Some(hash), sealed)
                }
            };
            let expiry = row.expires_at.unwrap_or(expires_at.millis());
            invitation::Entity::update_many()
                .col_expr(
                    invitation::Column::Status,
                    Expr::value(InvitationStatus::Sending.as_str()),
                )
                .col_expr(invitation::Column::TokenHash, Expr::value(hash))
                .col_expr(invitation::Column::TokenCiphertext, Expr::value(sealed))
                .col_expr(invitation::Column::ExpiresAt, Expr::value(expiry))
                .col_expr(
                    invitation::Column::ClaimedUntil,
                    Expr::value(claimed_until.millis()),
                )
                .col_expr(
                    invitation::Column::Attempts,
                    Expr::col(invitation::Column::Attempts).add(1),
                )
                .col_expr(invitation::Column::UpdatedAt, Expr::value(now.millis()))
                .filter(invitation::Column::Id.eq(row.id))
                .exec(&tx.tx)
                .await?;
            claimed.push((id, row, token, expiry));
        }
        let people: HashMap<uuid::Uuid, user::Model> = user::Entity::find()
            .filter(user::Column::Id.is_in(claimed.iter().map(|(_, row, ..)| row.user_id)))
            .all(&tx.tx)
            .await?
            .into_iter()
            .map(|person| (person.id, person))
            .collect();
        let companies: HashMap<uuid::Uuid, tenant::Model> = tenant::Entity::find()
            .filter(tenant::Column::Id.is_in(claimed.iter().map(|(_, row, ..)| row.tenant_id)))
            .all(&tx.tx)
            .await?
            .into_iter()
            .map(|company| (company.id, company))
            .collect();
        tx.commit().await?;
        claimed
            .into_iter()
            .map(|(id, row, token, expiry)| {
                let person = people
                    .get(&row.user_id)
                    .ok_or(StoreError::NotFound("user"))?;
                let company = companies
                    .get(&row.tenant_id)
                    .ok_or(StoreError::NotFound("tenant"))?;
                Ok(ClaimedInvitation {
                    id,
                    tenant_id: row.tenant_id.into(),
                    tenant_name: company.name.clone(),
                    tenant_settings: crate::tenants::invitation_settings(
                        company.invitation_settings.as_deref(),
                    )?,
                    user_id: row.user_id.into(),
                    email: person.email.clone(),
                    first_name: person.first_name.clone(),
                    last_name: person.last_name.clone(),
                    attempts: row.attempts + 1,
                    expires_at: Timestamp::from_millis(expiry),
                    claimed_until,
                    token,
                })
            })
            .collect()
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
            .exec(self.writer())
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
            .exec(self.writer())
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

    /// Queues a fresh invitation for an active user (a manual send, or a resend): every earlier
    /// invitation that is still open is superseded in the same transaction, so its link stops
    /// working. `scope`: a tenant token's tenant (another tenant's user is "not found").
    pub async fn invite_user(
        &self,
        user_id: UserId,
        scope: Option<TenantId>,
        now: Timestamp,
    ) -> Result<std::result::Result<InvitationRecord, InviteRefusal>> {
        let tx = self.begin_write().await?;
        let mut query = user::Entity::find_by_id(user_id.as_uuid());
        if self.backend() == crate::Backend::Postgres {
            // Two resends at once queue one after the other, leaving one open invitation.
            query = query.lock_exclusive();
        }
        let person = query
            .by_key(&tx.tx)
            .await?
            .filter(|person| scope.is_none_or(|tenant| tenant.as_uuid() == person.tenant_id))
            .ok_or(StoreError::NotFound("user"))?;
        let status: UserStatus = person.status.parse().map_err(StoreError::corrupt)?;
        if status != UserStatus::Active {
            return Ok(Err(InviteRefusal::NotActive(status)));
        }
        let accepted = invitation::Entity::find()
            .filter(invitation::Column::UserId.eq(person.id))
            .filter(invitation::Column::Status.eq(InvitationStatus::Accepted.as_str()))
            .one(&tx.tx)
            .await?;
        if accepted.is_some() {
            return Ok(Err(InviteRefusal::AlreadyAccepted));
        }
        invitation::Entity::update_many()
            .col_expr(
                invitation::Column::Status,
                Expr::value(InvitationStatus::Superseded.as_str()),
            )
            .col_expr(
                invitation::Column::ClaimedUntil,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(invitation::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(invitation::Column::UserId.eq(person.id))
            .filter(
                invitation::Column::Status.is_in(
                    REDEEMABLE
                        .iter()
                        .chain([&InvitationStatus::Failed])
                        .map(|status| status.as_str()),
                ),
            )
            .exec(&tx.tx)
            .await?;
        let (id, row) = new_invitation(person.tenant_id.into(), user_id, now);
        invitation::Entity::insert(row.into_active_model())
            .exec_without_returning(&tx.tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(InvitationRecord {
            id,
            status: InvitationStatus::Queued,
            attempts: 0,
            created_at: now,
            sent_at: None,
            accepted_at: None,
            expires_at: None,
            last_error: None,
        }))
    }

    /// Redeems an invitation token: marks its invitation accepted if the link still works.
    /// `scope`: a tenant token's tenant (another tenant's token is unknown).
    pub async fn accept_invitation(
        &self,
        token: &str,
        scope: Option<TenantId>,
        now: Timestamp,
    ) -> Result<Redemption> {
        let hash = crate::token_hash(token);
        let tx = self.begin_write().await?;
        let mut query = invitation::Entity::find().filter(invitation::Column::TokenHash.eq(hash));
        if self.backend() == crate::Backend::Postgres {
            // A double click accepts once: the second waits, then finds it accepted.
            query = query.lock_exclusive();
        }
        let Some(row) = query
            .by_key(&tx.tx)
            .await?
            .filter(|row| scope.is_none_or(|tenant| tenant.as_uuid() == row.tenant_id))
        else {
            return Ok(Redemption::Unknown);
        };
        let status: InvitationStatus = row.status.parse().map_err(StoreError::corrupt)?;
        let gone = match status {
            InvitationStatus::Accepted => Some(GoneReason::AlreadyAccepted),
            InvitationStatus::Superseded => Some(GoneReason::Superseded),
            InvitationStatus::Failed => Some(GoneReason::Failed),
            InvitationStatus::Queued | InvitationStatus::Sending | InvitationStatus::Sent => row
                .expires_at
                .is_some_and(|at| at <= now.millis())
                .then_some(GoneReason::Expired),
        };
        if let Some(reason) = gone {
            return Ok(Redemption::Gone(reason));
        }
        let person = user::Entity::find_by_id(row.user_id)
            .by_key(&tx.tx)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
        if person.status != UserStatus::Active.as_str() {
            return Ok(Redemption::Gone(GoneReason::UserNotActive));
        }
        let updated = invitation::Entity::update_many()
            .col_expr(
                invitation::Column::Status,
                Expr::value(InvitationStatus::Accepted.as_str()),
            )
            .col_expr(invitation::Column::AcceptedAt, Expr::value(now.millis()))
            .col_expr(
                invitation::Column::ClaimedUntil,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(invitation::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(invitation::Column::Id.eq(row.id))
            .filter(invitation::Column::Status.eq(row.status.clone()))
            .exec(&tx.tx)
            .await?;
        if updated.rows_affected == 0 {
            // Changed between the read and the write (SQLite readers do not lock): whoever
            // changed it won; the caller's token is no longer the open one.
            return Ok(Redemption::Gone(GoneReason::AlreadyAccepted));
        }
        tx.commit().await?;
        Ok(Redemption::Accepted {
            user_id: row.user_id.into(),
        })
    }
}

/// A queued invitation, due now, and its id.
/// Queues a user's first invitation, unless they ever had one: for users who were not invited
/// when created (pending or inactive then) and become active later. Answers whether it queued.
pub(crate) async fn queue_first_invitation(
    tx: &sea_orm::DatabaseTransaction,
    tenant: TenantId,
    user_id: UserId,
    now: Timestamp,
) -> Result<bool> {
    let ever_invited = invitation::Entity::find()
        .filter(invitation::Column::UserId.eq(user_id.as_uuid()))
        .one(tx)
        .await?
        .is_some();
    if ever_invited {
        return Ok(false);
    }
    let (_, row) = new_invitation(tenant, user_id, now);
    invitation::Entity::insert(row.into_active_model())
        .exec_without_returning(tx)
        .await?;
    Ok(true)
}

pub(crate) fn new_invitation(
    tenant: TenantId,
    user: UserId,
    now: Timestamp,
) -> (InvitationId, invitation::Model) {
    let id = InvitationId::new();
    let row = invitation::Model {
        id: id.as_uuid(),
        tenant_id: tenant.as_uuid(),
        user_id: user.as_uuid(),
        status: InvitationStatus::Queued.as_str().to_owned(),
        token_hash: None,
        token_ciphertext: None,
        attempts: 0,
        next_attempt_at: now.millis(),
        claimed_until: None,
        expires_at: None,
        sent_at: None,
        accepted_at: None,
        last_error: None,
        created_at: now.millis(),
        updated_at: now.millis(),
    };
    (id, row)
}
