//! The embedded queue's storage: jobs become visible at `available_at`, are hidden from other
//! consumers until `locked_until` once claimed (visibility timeout), count their attempts and
//! keep every attempt's error. The `bus` crate builds queue semantics on these operations.

use std::collections::HashSet;

use domain::{EventId, Timestamp};
use sea_orm::sea_query::{Expr, LockBehavior, LockType, Order, Query};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, PaginatorTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use crate::entities::queue_job;
use crate::{Backend, Result, Store};

/// A claimed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueJob {
    pub id: i64,
    pub event_id: EventId,
    pub envelope: String,
    /// Including this delivery.
    pub attempts: i32,
    pub errors: Vec<AttemptError>,
}

/// One failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttemptError {
    pub at: Timestamp,
    pub error: String,
}

/// Queue depth by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QueueStats {
    /// Visible now.
    pub ready: u64,
    /// Waiting for a retry delay to pass.
    pub delayed: u64,
    /// Claimed by a consumer.
    pub in_flight: u64,
}

impl Store {
    /// Adds jobs in one transaction, so that many publishers share one commit (on SQLite, one
    /// fsync). A job for an event already queued, or named twice in `jobs`, is added once.
    /// Answers the events whose job this call added. Durable when this returns.
    ///
    /// One single-row insert per job: each says whether it added its row, and every batch runs
    /// the same statement. (A multi-row insert is a new statement for every batch size, each
    /// kept prepared by every pooled connection: tens of megabytes on SQLite.)
    pub async fn queue_push_many(
        &self,
        jobs: Vec<(EventId, String)>,
        now: Timestamp,
    ) -> Result<HashSet<EventId>> {
        let mut added = HashSet::with_capacity(jobs.len());
        if jobs.is_empty() {
            return Ok(added);
        }
        let tx = self.begin_write().await?;
        for (event_id, envelope) in jobs {
            let inserted = queue_job::Entity::insert(queue_job::ActiveModel {
                event_id: Set(event_id.as_uuid()),
                envelope: Set(envelope),
                attempts: Set(0),
                available_at: Set(now.millis()),
                locked_until: Set(None),
                errors: Set("[]".to_owned()),
                created_at: Set(now.millis()),
                ..Default::default()
            })
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(queue_job::Column::EventId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&tx.tx)
            .await?;
            if inserted > 0 {
                added.insert(event_id);
            }
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Claims up to `max` visible jobs for `visibility`, oldest first, counting an attempt on
    /// each. Concurrent consumers never claim the same job (SKIP LOCKED on PostgreSQL; SQLite
    /// serialises writers).
    pub async fn queue_claim(
        &self,
        max: u64,
        visibility: std::time::Duration,
        now: Timestamp,
    ) -> Result<Vec<QueueJob>> {
        use queue_job::Column as C;
        let mut visible = Query::select();
        visible
            .column(C::Id)
            .from(queue_job::Entity)
            .and_where(Expr::col(C::AvailableAt).lte(now.millis()))
            .and_where(
                Expr::col(C::LockedUntil)
                    .is_null()
                    .or(Expr::col(C::LockedUntil).lte(now.millis())),
            )
            .order_by(C::AvailableAt, Order::Asc)
            .order_by(C::Id, Order::Asc)
            .limit(max);
        if self.backend() == Backend::Postgres {
            visible.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let claim = Query::update()
            .table(queue_job::Entity)
            .value(C::LockedUntil, now.plus(visibility).millis())
            .value(C::Attempts, Expr::col(C::Attempts).add(1))
            .and_where(Expr::col(C::Id).in_subquery(visible.to_owned()))
            .returning_all()
            .to_owned();
        let statement = self.db_backend().build(&claim);
        let mut rows = queue_job::Entity::find()
            .from_raw_sql(statement)
            .all(self.writer())
            .await?;
        rows.sort_by_key(|row| row.id);
        rows.into_iter()
            .map(|row| {
                Ok(QueueJob {
                    id: row.id,
                    event_id: row.event_id.into(),
                    envelope: row.envelope,
                    attempts: row.attempts,
                    errors: serde_json::from_str(&row.errors)?,
                })
            })
            .collect()
    }

    /// Removes a processed job.
    pub async fn queue_ack(&self, job_id: i64) -> Result<()> {
        queue_job::Entity::delete_by_id(job_id)
            .exec(self.writer())
            .await?;
        Ok(())
    }

    /// Removes processed jobs (one statement, one commit).
    pub async fn queue_ack_many(&self, job_ids: &[i64]) -> Result<()> {
        if job_ids.is_empty() {
            return Ok(());
        }
        queue_job::Entity::delete_many()
            .filter(queue_job::Column::Id.is_in(job_ids.iter().copied()))
            .exec(self.writer())
            .await?;
        Ok(())
    }

    /// Makes a job visible again at `available_at`, with its attempts' errors so far.
    pub async fn queue_retry(
        &self,
        job_id: i64,
        available_at: Timestamp,
        errors: &[AttemptError],
    ) -> Result<()> {
        queue_job::Entity::update_many()
            .col_expr(
                queue_job::Column::LockedUntil,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(
                queue_job::Column::AvailableAt,
                Expr::value(available_at.millis()),
            )
            .col_expr(
                queue_job::Column::Errors,
                Expr::value(serde_json::to_string(errors)?),
            )
            .filter(queue_job::Column::Id.eq(job_id))
            .exec(self.writer())
            .await?;
        Ok(())
    }

    /// Hands a claimed, unprocessed job back (at shutdown), without counting the attempt.
    pub async fn queue_release(&self, job_id: i64) -> Result<()> {
        queue_job::Entity::update_many()
            .col_expr(
                queue_job::Column::LockedUntil,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(
                queue_job::Column::Attempts,
                Expr::col(queue_job::Column::Attempts).sub(1),
            )
            .filter(queue_job::Column::Id.eq(job_id))
            .exec(self.writer())
            .await?;
        Ok(())
    }

    /// Queue depth now.
    pub async fn queue_stats(&self, now: Timestamp) -> Result<QueueStats> {
        let count =
            |filter: sea_orm::Condition| queue_job::Entity::find().filter(filter).count(self.db());
        let unlocked = sea_orm::Condition::any()
            .add(queue_job::Column::LockedUntil.is_null())
            .add(queue_job::Column::LockedUntil.lte(now.millis()));
        let ready = count(
            sea_orm::Condition::all()
                .add(queue_job::Column::AvailableAt.lte(now.millis()))
                .add(unlocked.clone()),
        )
        .await?;
        let delayed = count(
            sea_orm::Condition::all()
                .add(queue_job::Column::AvailableAt.gt(now.millis()))
                .add(unlocked),
        )
        .await?;
        let in_flight =
            count(sea_orm::Condition::all().add(queue_job::Column::LockedUntil.gt(now.millis())))
                .await?;
        Ok(QueueStats {
            ready,
            delayed,
            in_flight,
        })
    }
}
