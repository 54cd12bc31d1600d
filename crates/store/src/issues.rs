//! Provisioning issues: one open row per (integration, owner, kind), counted on each event that
//! hits it again, resolved by a later event that provisions the owner.

use domain::{EventId, IntegrationId, IssueId, IssueKind, TenantId, Timestamp};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;

use crate::entities::issue;
use crate::page::{self, Cursor, Page};
use crate::{Result, Store, StoreError, WriteTx};

/// An issue as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IssueRecord {
    pub id: IssueId,
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    /// The CRM's owner id.
    pub external_id: String,
    pub kind: IssueKind,
    pub missing: Vec<String>,
    pub detail: String,
    /// Events that hit this issue.
    pub occurrences: i32,
    pub first_event_id: EventId,
    pub last_event_id: EventId,
    pub opened_at: Timestamp,
    pub updated_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    pub resolved_by_event_id: Option<EventId>,
    pub open: bool,
}

impl TryFrom<issue::Model> for IssueRecord {
    type Error = StoreError;
    fn try_from(row: issue::Model) -> Result<Self> {
        Ok(Self {
            id: row.id.into(),
            tenant_id: row.tenant_id.into(),
            integration_id: row.integration_id.into(),
            external_id: row.external_id,
            kind: IssueKind::parse(&row.kind)
                .ok_or_else(|| StoreError::corrupt(format!("issue kind {:?}", row.kind)))?,
            missing: serde_json::from_str(&row.missing)?,
            detail: row.detail,
            occurrences: row.occurrences,
            first_event_id: row.first_event_id.into(),
            last_event_id: row.last_event_id.into(),
            opened_at: Timestamp::from_millis(row.opened_at),
            updated_at: Timestamp::from_millis(row.updated_at),
            open: row.resolved_at.is_none(),
            resolved_at: row.resolved_at.map(Timestamp::from_millis),
            resolved_by_event_id: row.resolved_by_event_id.map(EventId::from),
        })
    }
}

/// Filters for listing issues.
#[derive(Debug, Clone, Default)]
pub struct IssueFilter {
    pub tenant: Option<TenantId>,
    pub integration_id: Option<IntegrationId>,
    /// `Some(true)`: open only; `Some(false)`: resolved only.
    pub open: Option<bool>,
}

/// One issue to record.
#[derive(Debug, Clone)]
pub struct NewIssue<'a> {
    pub tenant_id: TenantId,
    pub integration_id: IntegrationId,
    pub external_id: &'a str,
    pub kind: IssueKind,
    pub missing: &'a [&'a str],
    pub detail: &'a str,
    pub event_id: EventId,
}

impl Store {
    /// Issues, newest first.
    pub async fn list_issues(
        &self,
        filter: &IssueFilter,
        after: Option<&Cursor>,
        limit: Option<u64>,
    ) -> Result<Page<IssueRecord>> {
        let limit = page::page_size(limit);
        let mut query = issue::Entity::find().order_by_desc(issue::Column::Id);
        if let Some(tenant) = filter.tenant {
            query = query.filter(issue::Column::TenantId.eq(tenant.as_uuid()));
        }
        if let Some(integration) = filter.integration_id {
            query = query.filter(issue::Column::IntegrationId.eq(integration.as_uuid()));
        }
        match filter.open {
            Some(true) => query = query.filter(issue::Column::ResolvedAt.is_null()),
            Some(false) => query = query.filter(issue::Column::ResolvedAt.is_not_null()),
            None => {}
        }
        if let Some(after) = after {
            query = query.filter(issue::Column::Id.lt(after.id));
        }
        let rows = query.limit(limit + 1).all(self.db()).await?;
        page::finish(
            rows,
            limit,
            |row| Cursor::new(0, row.id),
            IssueRecord::try_from,
        )
    }
}

impl WriteTx {
    /// Opens an issue, or counts one more occurrence of the open one.
    pub async fn record_issue(&self, new: &NewIssue<'_>, now: Timestamp) -> Result<()> {
        let missing = serde_json::to_string(new.missing)?;
        let updated = issue::Entity::update_many()
            .col_expr(
                issue::Column::Occurrences,
                Expr::col(issue::Column::Occurrences).add(1),
            )
            .col_expr(
                issue::Column::LastEventId,
                Expr::value(new.event_id.as_uuid()),
            )
            .col_expr(issue::Column::Missing, Expr::value(missing.clone()))
            .col_expr(issue::Column::Detail, Expr::value(new.detail))
            .col_expr(issue::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(issue::Column::IntegrationId.eq(new.integration_id.as_uuid()))
            .filter(issue::Column::ExternalId.eq(new.external_id))
            .filter(issue::Column::Kind.eq(new.kind.as_str()))
            .filter(issue::Column::ResolvedAt.is_null())
            .exec(&self.tx)
            .await?;
        if updated.rows_affected > 0 {
            return Ok(());
        }
        // Two events racing to open the same issue: the partial unique index stops the second,
        // whose transaction is then re-run and finds the open issue.
        issue::Entity::insert(issue::ActiveModel {
            id: Set(IssueId::new().as_uuid()),
            tenant_id: Set(new.tenant_id.as_uuid()),
            integration_id: Set(new.integration_id.as_uuid()),
            external_id: Set(new.external_id.to_owned()),
            kind: Set(new.kind.as_str().to_owned()),
            missing: Set(missing),
            detail: Set(new.detail.to_owned()),
            occurrences: Set(1),
            first_event_id: Set(new.event_id.as_uuid()),
            last_event_id: Set(new.event_id.as_uuid()),
            opened_at: Set(now.millis()),
            updated_at: Set(now.millis()),
            resolved_at: Set(None),
            resolved_by_event_id: Set(None),
        })
        .exec_without_returning(&self.tx)
        .await?;
        Ok(())
    }

    /// Resolves the owner's open issues (all of them, or all but `except`).
    pub async fn resolve_issues(
        &self,
        integration: IntegrationId,
        external_id: &str,
        except: Option<IssueKind>,
        event_id: EventId,
        now: Timestamp,
    ) -> Result<u64> {
        let mut update = issue::Entity::update_many()
            .col_expr(issue::Column::ResolvedAt, Expr::value(now.millis()))
            .col_expr(
                issue::Column::ResolvedByEventId,
                Expr::value(event_id.as_uuid()),
            )
            .col_expr(issue::Column::UpdatedAt, Expr::value(now.millis()))
            .filter(issue::Column::IntegrationId.eq(integration.as_uuid()))
            .filter(issue::Column::ExternalId.eq(external_id))
            .filter(issue::Column::ResolvedAt.is_null());
        if let Some(kind) = except {
            update = update.filter(issue::Column::Kind.ne(kind.as_str()));
        }
        Ok(update.exec(&self.tx).await?.rows_affected)
    }
}
