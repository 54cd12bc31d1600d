//! The dead-letter store: events that failed past their retry budget (or could never be
//! processed), with every attempt's error, kept until an operator replays or drops them.

use domain::{DeadLetterId, EventEnvelope, EventId, IntegrationId, TenantId, Timestamp};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, ExprTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use serde::Serialize;
use uuid::Uuid;

use crate::by_key::ByKey;
use crate::entities::{dead_letter, queue_job};
use crate::page::{self, Cursor, Page};
use crate::queue::AttemptError;
use crate::{Result, Store, StoreError};

/// Why an event was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadReason {
    /// A failure no retry can fix (an undecodable event, a payload that cannot be read).
    Permanent,
    /// Transient failures until the attempt limit.
    AttemptsExhausted,
    /// The broker gave up redelivering (consumers kept crashing on it).
    DeliveryLimit,
}

impl DeadReason {
    const fn as_str(self) -> &'static str {
        match self {
            DeadReason::Permanent => "permanent",
            DeadReason::AttemptsExhausted => "attempts_exhausted",
            DeadReason::DeliveryLimit => "delivery_limit",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            DeadReason::Permanent,
            DeadReason::AttemptsExhausted,
            DeadReason::DeliveryLimit,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == text)
    }
}

/// A dead letter as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeadLetterRecord {
    pub id: DeadLetterId,
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    pub event_id: EventId,
    pub provider_event_id: String,
    pub event_type: String,
    pub reason: DeadReason,
    pub attempts: i32,
    pub errors: Vec<AttemptError>,
    pub first_failed_at: Timestamp,
    pub dead_at: Timestamp,
    pub replayed_at: Option<Timestamp>,
    pub replayed_by: Option<String>,
    pub replay_count: i32,
    /// The event as it was queued.
    pub envelope: serde_json::Value,
}

impl TryFrom<dead_letter::Model> for DeadLetterRecord {
    type Error = StoreError;
    fn try_from(row: dead_letter::Model) -> Result<Self> {
        Ok(Self {
            id: row.id.into(),
            tenant_id: row.tenant_id.into(),
            integration_id: row.integration_id.into(),
            event_id: row.event_id.into(),
            provider_event_id: row.provider_event_id,
            event_type: row.event_type,
            reason: DeadReason::parse(&row.reason).ok_or_else(|| {
                StoreError::corrupt(format!("dead letter reason {:?}", row.reason))
            })?,
            attempts: row.attempts,
            errors: serde_json::from_str(&row.errors)?,
            first_failed_at: Timestamp::from_millis(row.first_failed_at),
            dead_at: Timestamp::from_millis(row.dead_at),
            replayed_at: row.replayed_at.map(Timestamp::from_millis),
            replayed_by: row.replayed_by,
            replay_count: row.replay_count,
            envelope: serde_json::from_str(&row.envelope)
                .unwrap_or(serde_json::Value::String(row.envelope)),
        })
    }
}

/// Which dead letters an operation applies to.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    pub tenant: Option<TenantId>,
    pub integration_id: Option<IntegrationId>,
    /// Dead at or after.
    pub since: Option<Timestamp>,
    /// Dead before.
    pub until: Option<Timestamp>,
    /// Only these.
    pub ids: Option<Vec<DeadLetterId>>,
}

impl DeadLetterFilter {
    fn condition(&self) -> Condition {
        let mut condition = Condition::all();
        if let Some(tenant) = self.tenant {
            condition = condition.add(dead_letter::Column::TenantId.eq(tenant.as_uuid()));
        }
        if let Some(integration) = self.integration_id {
            condition = condition.add(dead_letter::Column::IntegrationId.eq(integration.as_uuid()));
        }
        if let Some(since) = self.since {
            condition = condition.add(dead_letter::Column::DeadAt.gte(since.millis()));
        }
        if let Some(until) = self.until {
            condition = condition.add(dead_letter::Column::DeadAt.lt(until.millis()));
        }
        if let Some(ids) = &self.ids {
            condition =
                condition.add(dead_letter::Column::Id.is_in(ids.iter().map(|id| id.as_uuid())));
        }
        condition
    }
}

/// What giving up on an event records.
#[derive(Debug, Clone)]
pub struct NewDeadLetter {
    pub event_id: EventId,
    /// The queued event as JSON text (kept as is, even if it cannot be decoded).
    pub envelope: String,
    pub errors: Vec<AttemptError>,
    pub attempts: i32,
    pub reason: DeadReason,
}

fn active_model(new: &NewDeadLetter, now: Timestamp) -> Result<dead_letter::ActiveModel> {
    let decoded = EventEnvelope::from_json(new.envelope.as_bytes()).ok();
    let first_failed_at = new.errors.first().map_or(now, |error| error.at);
    Ok(dead_letter::ActiveModel {
        id: Set(DeadLetterId::new().as_uuid()),
        // An event that cannot even be decoded is kept under nil ids, so it is not lost.
        tenant_id: Set(decoded
            .as_ref()
            .map_or(Uuid::nil(), |e| e.tenant_id.as_uuid())),
        integration_id: Set(decoded
            .as_ref()
            .map_or(Uuid::nil(), |e| e.integration_id.as_uuid())),
        event_id: Set(new.event_id.as_uuid()),
        provider_event_id: Set(decoded
            .as_ref()
            .map(|e| e.provider_event_id.clone())
            .unwrap_or_default()),
        event_type: Set(decoded
            .as_ref()
            .map(|e| e.event_type.clone())
            .unwrap_or_default()),
        envelope: Set(new.envelope.clone()),
        errors: Set(serde_json::to_string(&new.errors)?),
        attempts: Set(new.attempts),
        reason: Set(new.reason.as_str().to_owned()),
        first_failed_at: Set(first_failed_at.millis()),
        dead_at: Set(now.millis()),
        replayed_at: Set(None),
        replayed_by: Set(None),
        replay_count: Set(0),
        sync_run_id: Set(decoded.as_ref().map(|e| e.sync_run().as_uuid())),
    })
}

/// A dead letter for the same event (a replay that failed again) is updated in place: its
/// replay history stays, its errors and attempts are the latest.
fn on_conflict() -> OnConflict {
    OnConflict::column(dead_letter::Column::EventId)
        .update_columns([
            dead_letter::Column::Envelope,
            dead_letter::Column::Errors,
            dead_letter::Column::Attempts,
            dead_letter::Column::Reason,
            dead_letter::Column::DeadAt,
        ])
        .to_owned()
}

impl Store {
    /// Stores a dead letter (replacing the one of the same event, if any).
    pub async fn save_dead_letter(&self, new: &NewDeadLetter, now: Timestamp) -> Result<()> {
        dead_letter::Entity::insert(active_model(new, now)?)
            .on_conflict(on_conflict())
            .exec_without_returning(self.writer())
            .await?;
        Ok(())
    }

    /// Embedded queue: moves a job to the dead-letter store, in one transaction.
    pub async fn dead_letter_job(
        &self,
        job_id: i64,
        new: &NewDeadLetter,
        now: Timestamp,
    ) -> Result<()> {
        let tx = self.writer().begin().await?;
        dead_letter::Entity::insert(active_model(new, now)?)
            .on_conflict(on_conflict())
            .exec_without_returning(&tx)
            .await?;
        queue_job::Entity::delete_by_id(job_id).exec(&tx).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn dead_letter(&self, id: DeadLetterId) -> Result<Option<DeadLetterRecord>> {
        dead_letter::Entity::find_by_id(id.as_uuid())
            .by_key(self.db())
            .await?
            .map(DeadLetterRecord::try_from)
            .transpose()
    }

    /// Dead letters, most recently dead first.
    pub async fn list_dead_letters(
        &self,
        filter: &DeadLetterFilter,
        after: Option<&Cursor>,
        limit: Option<u64>,
    ) -> Result<Page<DeadLetterRecord>> {
        let limit = page::page_size(limit);
        let mut query = dead_letter::Entity::find()
            .filter(filter.condition())
            .order_by_desc(dead_letter::Column::DeadAt)
            .order_by_desc(dead_letter::Column::Id);
        if let Some(after) = after {
            query = query.filter(
                Condition::any()
                    .add(dead_letter::Column::DeadAt.lt(after.millis))
                    .add(
                        Condition::all()
                            .add(dead_letter::Column::DeadAt.eq(after.millis))
                            .add(dead_letter::Column::Id.lt(after.id)),
                    ),
            );
        }
        let rows = query.limit(limit + 1).all(self.db()).await?;
        page::finish(
            rows,
            limit,
            |row| Cursor::new(row.dead_at, row.id),
            DeadLetterRecord::try_from,
        )
    }

    /// Dead letters nobody has replayed yet (what an operator still has to look at).
    pub async fn count_waiting_dead_letters(&self) -> Result<u64> {
        Ok(dead_letter::Entity::find()
            .filter(dead_letter::Column::ReplayedAt.is_null())
            .count(self.db())
            .await?)
    }

    pub async fn count_dead_letters(&self, filter: &DeadLetterFilter) -> Result<u64> {
        Ok(dead_letter::Entity::find()
            .filter(filter.condition())
            .count(self.db())
            .await?)
    }

    /// Every dead letter matching `filter` (for bulk replay), oldest first.
    pub async fn dead_letters_matching(
        &self,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<DeadLetterRecord>> {
        dead_letter::Entity::find()
            .filter(filter.condition())
            .order_by_asc(dead_letter::Column::DeadAt)
            .all(self.db())
            .await?
            .into_iter()
            .map(DeadLetterRecord::try_from)
            .collect()
    }

    /// Drops a dead letter; answers whether it existed.
    pub async fn delete_dead_letter(&self, id: DeadLetterId) -> Result<bool> {
        Ok(dead_letter::Entity::delete_by_id(id.as_uuid())
            .exec(self.writer())
            .await?
            .rows_affected
            > 0)
    }

    /// Drops every dead letter matching `filter`; answers how many.
    pub async fn delete_dead_letters(&self, filter: &DeadLetterFilter) -> Result<u64> {
        Ok(dead_letter::Entity::delete_many()
            .filter(filter.condition())
            .exec(self.writer())
            .await?
            .rows_affected)
    }

    /// Records a replay: who asked, when, and one more in the count.
    pub async fn mark_replayed(&self, id: DeadLetterId, by: &str, now: Timestamp) -> Result<()> {
        dead_letter::Entity::update_many()
            .col_expr(dead_letter::Column::ReplayedAt, Expr::value(now.millis()))
            .col_expr(dead_letter::Column::ReplayedBy, Expr::value(by))
            .col_expr(
                dead_letter::Column::ReplayCount,
                Expr::col(dead_letter::Column::ReplayCount).add(1),
            )
            .filter(dead_letter::Column::Id.eq(id.as_uuid()))
            .exec(self.writer())
            .await?;
        Ok(())
    }
}
