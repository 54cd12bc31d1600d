//! The event log: one row per accepted event, written in the same transaction as its effects.
//! Its unique key `(integration_id, provider_event_id)` is what makes redelivery harmless.

use std::collections::HashSet;
use std::time::Instant;

use domain::{EventId, EventOutcome, ImportId, IntegrationId, TenantId, Timestamp, UserId};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};

use crate::by_key::ByKey;
use crate::entities::event;
use crate::page::{self, Cursor, Page};
use crate::{Backend, PING_IF_IDLE_FOR, Result, Store, StoreError};

/// What happened to one owner named by an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OwnerOutcome {
    pub external_id: String,
    pub outcome: EventOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
}

/// An event-log row as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventRecord {
    pub id: EventId,
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    pub provider_event_id: String,
    pub event_type: String,
    pub occurred_at: Option<Timestamp>,
    pub received_at: Timestamp,
    pub processed_at: Timestamp,
    /// Milliseconds from acceptance at the ingress to the committed decision.
    pub processing_ms: i64,
    pub outcome: EventOutcome,
    pub reason: Option<String>,
    pub user_id: Option<UserId>,
    pub external_id: Option<String>,
    /// Decided by a draft integration: recorded, not applied.
    pub shadow: bool,
    pub attempts: i32,
    pub owners: Vec<OwnerOutcome>,
    /// Set when the event was applied by an operator's replay of a dead letter.
    pub replayed_at: Option<Timestamp>,
    pub replayed_by: Option<String>,
}

impl TryFrom<event::Model> for EventRecord {
    type Error = StoreError;
    fn try_from(row: event::Model) -> Result<Self> {
        Ok(Self {
            id: row.id.into(),
            tenant_id: row.tenant_id.into(),
            integration_id: row.integration_id.into(),
            provider_event_id: row.provider_event_id,
            event_type: row.event_type,
            occurred_at: row.occurred_at.map(Timestamp::from_millis),
            received_at: Timestamp::from_millis(row.received_at),
            processed_at: Timestamp::from_millis(row.processed_at),
            processing_ms: row.processed_at - row.received_at,
            outcome: row.outcome.parse().map_err(StoreError::corrupt)?,
            reason: row.reason,
            user_id: row.user_id.map(UserId::from),
            external_id: row.external_id,
            shadow: row.shadow,
            attempts: row.attempts,
            owners: serde_json::from_str(&row.details)?,
            replayed_at: row.replayed_at.map(Timestamp::from_millis),
            replayed_by: row.replayed_by,
        })
    }
}

/// What the provisioner records for an event.
#[derive(Debug, Clone)]
pub struct NewEventRecord {
    pub id: EventId,
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    pub provider_event_id: String,
    pub event_type: String,
    pub occurred_at: Option<Timestamp>,
    pub received_at: Timestamp,
    pub processed_at: Timestamp,
    pub outcome: EventOutcome,
    pub reason: Option<String>,
    pub user_id: Option<UserId>,
    pub external_id: Option<String>,
    pub shadow: bool,
    pub attempts: i32,
    pub owners: Vec<OwnerOutcome>,
    pub replayed_at: Option<Timestamp>,
    pub replayed_by: Option<String>,
    /// The import or webhook day the event counts toward.
    pub sync_run: ImportId,
}

/// Where an entry sits in the event log's order of writing: when it was processed, then its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLogPosition {
    pub processed_at: Timestamp,
    pub id: EventId,
}

impl EventLogPosition {
    /// Just before every entry processed at `processed_at` or later.
    #[must_use]
    pub const fn start_of(processed_at: Timestamp) -> Self {
        Self {
            processed_at,
            id: EventId::from_uuid(uuid::Uuid::nil()),
        }
    }
}

/// Filters for the event log.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub tenant: Option<TenantId>,
    pub integration_id: Option<IntegrationId>,
    pub outcome: Option<EventOutcome>,
    pub user_id: Option<UserId>,
}

impl Store {
    /// The outcome recorded for a provider's event, if it was already processed.
    pub async fn event_outcome(
        &self,
        integration: IntegrationId,
        provider_event_id: &str,
    ) -> Result<Option<EventOutcome>> {
        let row = event::Entity::find()
            .select_only()
            .column(event::Column::Outcome)
            .filter(event::Column::IntegrationId.eq(integration.as_uuid()))
            .filter(event::Column::ProviderEventId.eq(provider_event_id))
            .into_tuple::<String>()
            .by_key(self.db())
            .await?;
        row.map(|outcome| outcome.parse().map_err(StoreError::corrupt))
            .transpose()
    }

    /// Which of `ids` the event log holds (in one query).
    pub async fn recorded_events(&self, ids: &[EventId]) -> Result<HashSet<EventId>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let rows = event::Entity::find()
            .select_only()
            .column(event::Column::Id)
            .filter(crate::staged::one_of(
                self.db().get_database_backend(),
                event::Column::Id,
                ids.iter().map(|id| id.as_uuid()),
            ))
            .into_tuple::<uuid::Uuid>()
            .all(self.db())
            .await?;
        Ok(rows.into_iter().map(EventId::from_uuid).collect())
    }

    /// The positions of up to `limit` entries of the event log after `after` (from the start
    /// when `None`), in the order they were written: a reader can walk the whole log page by
    /// page, then come back for what was written since.
    pub async fn event_log_after(
        &self,
        after: Option<EventLogPosition>,
        limit: u64,
    ) -> Result<Vec<EventLogPosition>> {
        let mut query = event::Entity::find()
            .select_only()
            .column(event::Column::ProcessedAt)
            .column(event::Column::Id)
            .order_by_asc(event::Column::ProcessedAt)
            .order_by_asc(event::Column::Id);
        if let Some(after) = after {
            let millis = after.processed_at.millis();
            query = query.filter(
                Condition::any()
                    .add(event::Column::ProcessedAt.gt(millis))
                    .add(
                        Condition::all()
                            .add(event::Column::ProcessedAt.eq(millis))
                            .add(event::Column::Id.gt(after.id.as_uuid())),
                    ),
            );
        }
        let rows = query
            .limit(limit)
            .into_tuple::<(i64, uuid::Uuid)>()
            .all(self.db())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(processed_at, id)| EventLogPosition {
                processed_at: Timestamp::from_millis(processed_at),
                id: EventId::from_uuid(id),
            })
            .collect())
    }

    /// A probe asking the event log which events it holds, for one question at a time (see
    /// [`EventLogProbe`]).
    #[must_use]
    pub fn event_log_probe(&self) -> EventLogProbe {
        EventLogProbe {
            store: self.clone(),
            held: None,
        }
    }

    pub async fn event(&self, id: EventId) -> Result<Option<EventRecord>> {
        event::Entity::find_by_id(id.as_uuid())
            .by_key(self.db())
            .await?
            .map(EventRecord::try_from)
            .transpose()
    }

    /// The event log, newest first.
    pub async fn list_events(
        &self,
        filter: &EventFilter,
        after: Option<&Cursor>,
        limit: Option<u64>,
    ) -> Result<Page<EventRecord>> {
        let limit = page::page_size(limit);
        let mut query = event::Entity::find()
            .order_by_desc(event::Column::ProcessedAt)
            .order_by_desc(event::Column::Id);
        if let Some(tenant) = filter.tenant {
            query = query.filter(event::Column::TenantId.eq(tenant.as_uuid()));
        }
        if let Some(integration) = filter.integration_id {
            query = query.filter(event::Column::IntegrationId.eq(integration.as_uuid()));
        }
        if let Some(outcome) = filter.outcome {
            query = query.filter(event::Column::Outcome.eq(outcome.as_str()));
        }
        if let Some(user) = filter.user_id {
            query = query.filter(event::Column::UserId.eq(user.as_uuid()));
        }
        if let Some(after) = after {
            query = query.filter(
                Condition::any()
                    .add(event::Column::ProcessedAt.lt(after.millis))
                    .add(
                        Condition::all()
                            .add(event::Column::ProcessedAt.eq(after.millis))
                            .add(event::Column::Id.lt(after.id)),
                    ),
            );
        }
        let rows = query.limit(limit + 1).all(self.db()).await?;
        page::finish(
            rows,
            limit,
            |row| Cursor::new(row.processed_at, row.id),
            EventRecord::try_from,
        )
    }
}

/// Asks the event log which of many events it holds, one question at a time, as cheaply as
/// the database allows: the ingress asks this hundreds of times a second.
///
/// On PostgreSQL the probe keeps a pooled connection between questions instead of returning
/// it: SQLx pings every connection it takes back, so a query on a pooled connection costs two
/// round trips and two wake-ups of the server, and the question is one prepared statement
/// (`= ANY($1)`) whatever the number of ids, where an `IN` list is a statement per length. A
/// connection idle for a while is pinged before use (as the pool does); one that fails is
/// closed and the next question takes another. On SQLite, which answers in-process, it
/// queries through the pool.
#[derive(Debug)]
pub struct EventLogProbe {
    store: Store,
    held: Option<Held>,
}

#[derive(Debug)]
struct Held {
    connection: sea_orm::sqlx::pool::PoolConnection<sea_orm::sqlx::Postgres>,
    last_used: Instant,
}

impl EventLogProbe {
    /// Which of `ids` the event log holds.
    pub async fn recorded(&mut self, ids: &[EventId]) -> Result<HashSet<EventId>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        if self.store.backend() == Backend::Sqlite {
            return self.store.recorded_events(ids).await;
        }
        let mut held = self.take_connection().await?;
        let uuids: Vec<uuid::Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        let rows = sea_orm::sqlx::query_scalar::<_, uuid::Uuid>(
            "SELECT id FROM events WHERE id = ANY($1)",
        )
        .bind(uuids)
        .fetch_all(&mut *held.connection)
        .await;
        match rows {
            Ok(rows) => {
                held.last_used = Instant::now();
                self.held = Some(held);
                Ok(rows.into_iter().map(EventId::from_uuid).collect())
            }
            Err(err) => {
                // It failed, so it may be broken: closed (when dropped here) instead of
                // returned to the pool.
                held.connection.close_on_drop();
                Err(err.into())
            }
        }
    }

    /// The held connection (pinged first if idle a while), or one newly taken from the pool.
    async fn take_connection(&mut self) -> Result<Held> {
        use sea_orm::sqlx::Connection;
        if let Some(mut held) = self.held.take() {
            if held.last_used.elapsed() <= PING_IF_IDLE_FOR || held.connection.ping().await.is_ok()
            {
                return Ok(held);
            }
            held.connection.close_on_drop();
        }
        let pool = self.store.db().get_postgres_connection_pool();
        let connection = pool.acquire().await?;
        Ok(Held {
            connection,
            last_used: Instant::now(),
        })
    }
}
