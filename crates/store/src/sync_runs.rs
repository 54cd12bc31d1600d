//! Sync runs: bulk imports and webhook days, and what each did. A run's counts come from the
//! event log and the dead-letter store (every event carries its run's id), so they are exact
//! whatever crashed in between; the run row keeps only what the importer alone knows.

use std::collections::BTreeMap;

use domain::{EventOutcome, ImportId, IntegrationId, TenantId, Timestamp, UserStatus};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;

use crate::by_key::ByKey;
use crate::entities::{dead_letter, event, identity, roster_id, sync_run, sync_run_error, user};
use crate::page::{self, Cursor, Page};
use crate::{Result, Store, StoreError};

/// The provider event id of an imported row: the import and the row number, so a row is
/// queued once per import however often the importer is interrupted and resumed.
#[must_use]
pub fn import_row_event_id(run: ImportId, row: u64) -> String {
    format!("import:{run}:{row}")
}

/// The provider event id of the leaver event a full roster makes for an absent owner.
#[must_use]
pub fn import_absent_event_id(run: ImportId, external_id: &str) -> String {
    format!("import:{run}:absent:{external_id}")
}

/// The row number an imported event's provider id names, if it names one.
fn row_of(provider_event_id: &str) -> Option<u64> {
    provider_event_id
        .strip_prefix("import:")?
        .split_once(':')?
        .1
        .parse()
        .ok()
}

/// What a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Import,
    Webhooks,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// The importer is reading the file and queueing rows.
    Reading,
    /// Every row is queued; the worker is applying them.
    Applying,
    /// Every queued row has an outcome.
    Completed,
    /// The full-roster safeguard stopped the run before anything was queued.
    Stopped,
    /// The file could not be read (see `stop_reason`); rows queued before that still apply.
    Failed,
    /// A webhook day: events keep arriving until the day is over.
    Open,
}

/// What a run's events did, by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RunCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deactivated: u64,
    pub reactivated: u64,
    pub ignored: u64,
    pub issues: u64,
    /// Events given up (dead-lettered, not replayed) plus rows the file could not give.
    pub failed: u64,
}

/// A sync run as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SyncRun {
    pub id: ImportId,
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    pub kind: RunKind,
    /// Webhook days: the UTC day.
    pub day: Option<String>,
    pub file_name: Option<String>,
    pub state: RunState,
    pub full_roster: bool,
    /// Full roster: the most owners it may turn into leavers, in percent of the integration's
    /// current owners.
    pub max_deactivate_percent: u8,
    pub rows_read: u64,
    pub rows_queued: u64,
    /// Rows the file could not give (see the errors CSV).
    pub rows_invalid: u64,
    /// Full roster: owners of the integration absent from the file.
    pub absent: Option<u64>,
    /// Events with an outcome so far.
    pub processed: u64,
    pub counts: RunCounts,
    pub stop_reason: Option<String>,
    /// How the run was started (column mapping, options).
    pub options: serde_json::Value,
    pub created_by: String,
    pub started_at: Timestamp,
    /// When the last row was queued.
    pub queued_at: Option<Timestamp>,
    /// When the last outcome was recorded, once completed.
    pub finished_at: Option<Timestamp>,
}

/// What starting an import needs.
#[derive(Debug, Clone)]
pub struct NewImportRun {
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    pub file_name: Option<String>,
    pub full_roster: bool,
    pub max_deactivate_percent: u8,
    pub options: serde_json::Value,
    pub created_by: String,
}

/// One line of a run's errors file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    pub row: Option<u64>,
    pub external_id: Option<String>,
    pub reason: String,
}

/// Filters for listing runs.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub tenant: Option<TenantId>,
    pub integration_id: Option<IntegrationId>,
    pub kind: Option<RunKind>,
}

const KIND_IMPORT: &str = "import";
const KIND_WEBHOOKS: &str = "webhooks";
const STATE_READING: &str = "reading";
const STATE_QUEUED: &str = "queued";
const STATE_STOPPED: &str = "stopped";
const STATE_FAILED: &str = "failed";
const STATE_OPEN: &str = "open";

/// How the importer ends its reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadingEnd {
    Queued,
    Stopped,
    Failed,
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    /// Starts an import run (reading).
    pub async fn create_import_run(&self, new: &NewImportRun, now: Timestamp) -> Result<ImportId> {
        let id = ImportId::new();
        sync_run::Entity::insert(sync_run::ActiveModel {
            id: Set(id.as_uuid()),
            tenant_id: Set(new.tenant_id.as_uuid()),
            integration_id: Set(new.integration_id.as_uuid()),
            kind: Set(KIND_IMPORT.to_owned()),
            day: Set(None),
            file_name: Set(new.file_name.clone()),
            state: Set(STATE_READING.to_owned()),
            full_roster: Set(new.full_roster),
            max_deactivate_percent: Set(i32::from(new.max_deactivate_percent)),
            rows_read: Set(0),
            rows_queued: Set(0),
            rows_invalid: Set(0),
            absent: Set(None),
            stop_reason: Set(None),
            options: Set(new.options.to_string()),
            created_by: Set(new.created_by.clone()),
            started_at: Set(now.millis()),
            queued_at: Set(None),
        })
        .exec_without_returning(self.writer())
        .await?;
        Ok(id)
    }

    /// Makes sure the webhook day run `id` exists (called once per day and integration by
    /// each worker, outside any transaction, so that concurrent batches never queue on it).
    pub async fn ensure_webhook_day_run(
        &self,
        id: ImportId,
        tenant: TenantId,
        integration: IntegrationId,
        received_at: Timestamp,
    ) -> Result<()> {
        let day: String = received_at.to_rfc3339().chars().take(10).collect();
        sync_run::Entity::insert(sync_run::ActiveModel {
            id: Set(id.as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            integration_id: Set(integration.as_uuid()),
            kind: Set(KIND_WEBHOOKS.to_owned()),
            day: Set(Some(day.clone())),
            file_name: Set(None),
            state: Set(STATE_OPEN.to_owned()),
            full_roster: Set(false),
            max_deactivate_percent: Set(0),
            rows_read: Set(0),
            rows_queued: Set(0),
            rows_invalid: Set(0),
            absent: Set(None),
            stop_reason: Set(None),
            options: Set("{}".to_owned()),
            created_by: Set("webhooks".to_owned()),
            started_at: Set(Timestamp::parse_rfc3339(&format!("{day}T00:00:00Z"))
                .unwrap_or(received_at)
                .millis()),
            queued_at: Set(None),
        })
        .on_conflict(
            OnConflict::column(sync_run::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(self.writer())
        .await?;
        Ok(())
    }

    /// Records the importer's progress.
    pub async fn record_import_progress(
        &self,
        id: ImportId,
        rows_read: u64,
        rows_queued: u64,
        rows_invalid: u64,
    ) -> Result<()> {
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        sync_run::Entity::update_many()
            .col_expr(sync_run::Column::RowsRead, Expr::value(as_i64(rows_read)))
            .col_expr(
                sync_run::Column::RowsQueued,
                Expr::value(as_i64(rows_queued)),
            )
            .col_expr(
                sync_run::Column::RowsInvalid,
                Expr::value(as_i64(rows_invalid)),
            )
            .filter(sync_run::Column::Id.eq(id.as_uuid()))
            .exec(self.writer())
            .await?;
        Ok(())
    }

    /// Ends the reading phase of an import.
    pub async fn finish_import_reading(
        &self,
        id: ImportId,
        end: ReadingEnd,
        stop_reason: Option<&str>,
        absent: Option<u64>,
        now: Timestamp,
    ) -> Result<()> {
        let state = match end {
            ReadingEnd::Queued => STATE_QUEUED,
            ReadingEnd::Stopped => STATE_STOPPED,
            ReadingEnd::Failed => STATE_FAILED,
        };
        sync_run::Entity::update_many()
            .col_expr(sync_run::Column::State, Expr::value(state))
            .col_expr(
                sync_run::Column::StopReason,
                Expr::value(stop_reason.map(str::to_owned)),
            )
            .col_expr(
                sync_run::Column::Absent,
                Expr::value(absent.map(|n| i64::try_from(n).unwrap_or(i64::MAX))),
            )
            .col_expr(sync_run::Column::QueuedAt, Expr::value(now.millis()))
            .filter(sync_run::Column::Id.eq(id.as_uuid()))
            .exec(self.writer())
            .await?;
        Ok(())
    }

    /// Records rows the file could not give (a row already recorded is kept as it was).
    pub async fn add_run_errors(&self, id: ImportId, errors: &[RunError]) -> Result<()> {
        if errors.is_empty() {
            return Ok(());
        }
        let rows = errors.iter().map(|error| sync_run_error::ActiveModel {
            sync_run_id: Set(id.as_uuid()),
            row: Set(error
                .row
                .map_or(0, |row| i64::try_from(row).unwrap_or(i64::MAX))),
            external_id: Set(error.external_id.clone()),
            reason: Set(error.reason.chars().take(2000).collect()),
        });
        sync_run_error::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    sync_run_error::Column::SyncRunId,
                    sync_run_error::Column::Row,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(self.writer())
            .await?;
        Ok(())
    }

    /// Adds owner ids of a full roster (duplicates are fine).
    pub async fn add_roster_ids(&self, id: ImportId, external_ids: &[String]) -> Result<()> {
        if external_ids.is_empty() {
            return Ok(());
        }
        let rows = external_ids
            .iter()
            .map(|external_id| roster_id::ActiveModel {
                sync_run_id: Set(id.as_uuid()),
                external_id: Set(external_id.clone()),
            });
        roster_id::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([roster_id::Column::SyncRunId, roster_id::Column::ExternalId])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(self.writer())
            .await?;
        Ok(())
    }

    /// The integration's owners whose user has not left yet, as a query.
    fn current_owners(
        tenant: TenantId,
        integration: IntegrationId,
    ) -> sea_orm::Select<identity::Entity> {
        identity::Entity::find()
            .filter(identity::Column::IntegrationId.eq(integration.as_uuid()))
            .filter(
                identity::Column::UserId.in_subquery(
                    Query::select()
                        .column(user::Column::Id)
                        .from(user::Entity)
                        .and_where(user::Column::TenantId.eq(tenant.as_uuid()))
                        .and_where(user::Column::Status.ne(UserStatus::Leaver.as_str()))
                        .to_owned(),
                ),
            )
    }

    /// The integration's current owners that the roster of `run` does not name.
    fn absent_from_roster(
        run: ImportId,
        tenant: TenantId,
        integration: IntegrationId,
    ) -> sea_orm::Select<identity::Entity> {
        Self::current_owners(tenant, integration).filter(
            identity::Column::ExternalId.not_in_subquery(
                Query::select()
                    .column(roster_id::Column::ExternalId)
                    .from(roster_id::Entity)
                    .and_where(roster_id::Column::SyncRunId.eq(run.as_uuid()))
                    .to_owned(),
            ),
        )
    }

    /// For a full roster: how many owners of the integration have a user that has not left,
    /// and how many of those the roster does not name.
    pub async fn roster_check(
        &self,
        run: ImportId,
        tenant: TenantId,
        integration: IntegrationId,
    ) -> Result<(u64, u64)> {
        let current = Self::current_owners(tenant, integration)
            .count(self.db())
            .await?;
        let absent = Self::absent_from_roster(run, tenant, integration)
            .count(self.db())
            .await?;
        Ok((current, absent))
    }

    /// A page of the owner ids a full roster does not name, in id order after `after`.
    pub async fn absent_owners(
        &self,
        run: ImportId,
        tenant: TenantId,
        integration: IntegrationId,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<String>> {
        let mut query = Self::absent_from_roster(run, tenant, integration)
            .select_only()
            .column(identity::Column::ExternalId)
            .order_by_asc(identity::Column::ExternalId)
            .limit(limit);
        if let Some(after) = after {
            query = query.filter(identity::Column::ExternalId.gt(after));
        }
        Ok(query.into_tuple().all(self.db()).await?)
    }

    /// Forgets a roster once its run is done with it.
    pub async fn drop_roster_ids(&self, run: ImportId) -> Result<()> {
        roster_id::Entity::delete_many()
            .filter(roster_id::Column::SyncRunId.eq(run.as_uuid()))
            .exec(self.writer())
            .await?;
        Ok(())
    }

    pub async fn sync_run(&self, id: ImportId) -> Result<Option<SyncRun>> {
        let Some(row) = sync_run::Entity::find_by_id(id.as_uuid())
            .by_key(self.db())
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.with_counts(row).await?))
    }

    /// Runs, newest first.
    pub async fn list_sync_runs(
        &self,
        filter: &RunFilter,
        after: Option<&Cursor>,
        limit: Option<u64>,
    ) -> Result<Page<SyncRun>> {
        let limit = page::page_size(limit);
        let mut query = sync_run::Entity::find().order_by_desc(sync_run::Column::Id);
        if let Some(tenant) = filter.tenant {
            query = query.filter(sync_run::Column::TenantId.eq(tenant.as_uuid()));
        }
        if let Some(integration) = filter.integration_id {
            query = query.filter(sync_run::Column::IntegrationId.eq(integration.as_uuid()));
        }
        if let Some(kind) = filter.kind {
            query = query.filter(sync_run::Column::Kind.eq(match kind {
                RunKind::Import => KIND_IMPORT,
                RunKind::Webhooks => KIND_WEBHOOKS,
            }));
        }
        if let Some(after) = after {
            query = query.filter(sync_run::Column::Id.lt(after.id));
        }
        let rows = query.limit(limit + 1).all(self.db()).await?;
        let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        let mut items = Vec::with_capacity(rows.len());
        for row in rows
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
        {
            items.push(self.with_counts(row).await?);
        }
        let next_cursor = if more {
            items
                .last()
                .map(|run| Cursor::new(0, run.id.as_uuid()).encode())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn with_counts(&self, row: sync_run::Model) -> Result<SyncRun> {
        let outcomes: Vec<(String, i64, Option<i64>)> = event::Entity::find()
            .select_only()
            .column(event::Column::Outcome)
            .column_as(event::Column::Id.count(), "n")
            .column_as(event::Column::ProcessedAt.max(), "last")
            .filter(event::Column::SyncRunId.eq(row.id))
            .group_by(event::Column::Outcome)
            .into_tuple()
            .all(self.db())
            .await?;
        let dead = dead_letter::Entity::find()
            .filter(dead_letter::Column::SyncRunId.eq(row.id))
            .filter(dead_letter::Column::ReplayedAt.is_null())
            .count(self.db())
            .await?;
        let mut counts = RunCounts::default();
        let mut processed = 0;
        let mut last = None;
        for (outcome, n, at) in outcomes {
            let n = to_u64(n);
            processed += n;
            last = last.max(at);
            let slot = match outcome
                .parse::<EventOutcome>()
                .map_err(StoreError::corrupt)?
            {
                EventOutcome::Created => &mut counts.created,
                EventOutcome::Updated => &mut counts.updated,
                EventOutcome::Unchanged => &mut counts.unchanged,
                EventOutcome::Deactivated => &mut counts.deactivated,
                EventOutcome::Reactivated => &mut counts.reactivated,
                EventOutcome::Ignored => &mut counts.ignored,
                EventOutcome::Issue => &mut counts.issues,
                EventOutcome::DeadLettered => &mut counts.failed,
            };
            *slot += n;
        }
        counts.failed += dead + to_u64(row.rows_invalid);
        let queued = to_u64(row.rows_queued) + to_u64(row.absent.unwrap_or(0));
        let kind = if row.kind == KIND_WEBHOOKS {
            RunKind::Webhooks
        } else {
            RunKind::Import
        };
        let state = match row.state.as_str() {
            STATE_OPEN => RunState::Open,
            STATE_READING => RunState::Reading,
            STATE_STOPPED => RunState::Stopped,
            STATE_FAILED => RunState::Failed,
            _ if processed + dead >= queued => RunState::Completed,
            _ => RunState::Applying,
        };
        let finished_at = (state == RunState::Completed)
            .then(|| last.or(row.queued_at).map(Timestamp::from_millis))
            .flatten();
        Ok(SyncRun {
            id: row.id.into(),
            tenant_id: row.tenant_id.into(),
            integration_id: row.integration_id.into(),
            kind,
            day: row.day,
            file_name: row.file_name,
            state,
            full_roster: row.full_roster,
            max_deactivate_percent: u8::try_from(row.max_deactivate_percent).unwrap_or(100),
            rows_read: to_u64(row.rows_read),
            rows_queued: to_u64(row.rows_queued),
            rows_invalid: to_u64(row.rows_invalid),
            absent: row.absent.map(to_u64),
            processed,
            counts,
            stop_reason: row.stop_reason,
            options: serde_json::from_str(&row.options)?,
            created_by: row.created_by,
            started_at: Timestamp::from_millis(row.started_at),
            queued_at: row.queued_at.map(Timestamp::from_millis),
            finished_at,
        })
    }

    /// Every row of a run that did not turn out as asked: rows the file could not give, owners
    /// with a provisioning issue, events given up. In row order (rows without a number last).
    pub async fn run_errors(&self, id: ImportId) -> Result<Vec<RunError>> {
        let mut by_row: BTreeMap<(u64, String), RunError> = BTreeMap::new();
        let mut add = |error: RunError| {
            let key = (
                error.row.unwrap_or(u64::MAX),
                error.external_id.clone().unwrap_or_default(),
            );
            by_row.entry(key).or_insert(error);
        };
        for row in sync_run_error::Entity::find()
            .filter(sync_run_error::Column::SyncRunId.eq(id.as_uuid()))
            .all(self.db())
            .await?
        {
            add(RunError {
                row: u64::try_from(row.row).ok().filter(|row| *row > 0),
                external_id: row.external_id,
                reason: row.reason,
            });
        }
        let issues: Vec<(String, Option<String>, Option<String>)> = event::Entity::find()
            .select_only()
            .column(event::Column::ProviderEventId)
            .column(event::Column::ExternalId)
            .column(event::Column::Reason)
            .filter(event::Column::SyncRunId.eq(id.as_uuid()))
            .filter(event::Column::Outcome.eq(EventOutcome::Issue.as_str()))
            .into_tuple()
            .all(self.db())
            .await?;
        for (provider_event_id, external_id, reason) in issues {
            add(RunError {
                row: row_of(&provider_event_id),
                external_id,
                reason: reason.unwrap_or_else(|| "provisioning issue".to_owned()),
            });
        }
        let dead: Vec<(String, String, String)> = dead_letter::Entity::find()
            .select_only()
            .column(dead_letter::Column::ProviderEventId)
            .column(dead_letter::Column::Envelope)
            .column(dead_letter::Column::Errors)
            .filter(dead_letter::Column::SyncRunId.eq(id.as_uuid()))
            .filter(dead_letter::Column::ReplayedAt.is_null())
            .into_tuple()
            .all(self.db())
            .await?;
        for (provider_event_id, envelope, errors) in dead {
            let external_id = serde_json::from_str::<serde_json::Value>(&envelope)
                .ok()
                .and_then(|envelope| {
                    envelope["payload"]["external_id"]
                        .as_str()
                        .map(str::to_owned)
                });
            let last_error = serde_json::from_str::<serde_json::Value>(&errors)
                .ok()
                .and_then(|errors| {
                    errors
                        .as_array()
                        .and_then(|errors| errors.last())
                        .and_then(|error| error["error"].as_str().map(str::to_owned))
                });
            add(RunError {
                row: row_of(&provider_event_id),
                external_id,
                reason: format!(
                    "given up (dead letter): {}",
                    last_error.unwrap_or_else(|| "no error recorded".to_owned())
                ),
            });
        }
        Ok(by_row.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_numbers_come_back_from_event_ids() {
        let run = ImportId::new();
        assert_eq!(row_of(&import_row_event_id(run, 42)), Some(42));
        assert_eq!(row_of(&import_absent_event_id(run, "7")), None);
        assert_eq!(row_of("evt_1"), None);
    }
}
