//! A batch of events applied in one write transaction with a handful of statements.
//!
//! [`WriteTx::stage`] reads, in a few queries, everything the decisions for a batch of owners
//! can ask about: their identity links, the users those links point at (locked on PostgreSQL,
//! in id order so two batches never deadlock on each other), the users holding their emails and
//! the identities of those, and which owners have open issues. The decisions then read and
//! change this in-memory view ([`Staged`]), so an event sees the effects of the events before it
//! in the batch exactly as it would see them committed one by one. [`Staged::flush`] writes what
//! changed: new users, links, invitations and event-log rows as one insert per table, one
//! update per changed user.
//!
//! On PostgreSQL every read and insert of a batch has the same text whatever the batch's size:
//! id lists are one array parameter (`= ANY($1)`), owner pairs two (`UNNEST`), and the rows
//! to insert one JSON parameter (`json_populate_recordset`). Statements built with one
//! placeholder per id or row would differ for every batch size, and PostgreSQL would parse
//! and plan each anew instead of reusing the connection's prepared statement: during a burst
//! that was about a quarter of the database's CPU.
//!
//! Two things are written at once instead: issue changes (rare, and keyed by the issue tables'
//! own constraints) and email changes, so that the unique `(tenant, email)` key sees the same
//! sequence of states as one-by-one application would (deferred, two users trading addresses
//! through a third could collide at flush time). A unique-key violation anywhere — another
//! writer won a race — fails the whole transaction with [`StoreError::Conflict`]; the caller
//! rolls back and stages again from a fresh read.

use std::collections::{BTreeSet, HashMap, HashSet};

use domain::{
    CurrentState, EventId, IntegrationId, InvitationId, IssueKind, NewUser, NormalizedEmail,
    OwnerFacts, TeamId, TenantId, Timestamp, UserChanges, UserId,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, IdenStatic,
    IntoActiveModel, Iterable, ModelTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};

use crate::by_key::ByKey;
use crate::entities::{dead_letter, event, identity, invitation, issue, team, user};
use crate::events::NewEventRecord;
use crate::issues::NewIssue;
use crate::provisioning::WriteTx;
use crate::users::snapshot;
use crate::{Backend, Result, Store};

/// One owner a batch will decide about.
#[derive(Debug, Clone, Copy)]
pub struct OwnerKey<'a> {
    pub tenant: TenantId,
    pub integration: IntegrationId,
    pub external_id: &'a str,
    pub email: Option<&'a NormalizedEmail>,
}

impl<'a> OwnerKey<'a> {
    /// The key of an owner of an event of `integration`, with the owner's parsed email.
    #[must_use]
    pub fn of(
        tenant: TenantId,
        integration: IntegrationId,
        owner: &'a OwnerFacts,
        email: Option<&'a NormalizedEmail>,
    ) -> Self {
        Self {
            tenant,
            integration,
            external_id: &owner.external_id,
            email,
        }
    }
}

#[derive(Debug)]
struct StagedUser {
    /// As read; `None` for a user created in this batch.
    stored: Option<user::Model>,
    current: user::Model,
    /// Changed by an update (which sets `updated_at` even when no field differs).
    touched: bool,
}

/// What the database says about a set of owners, read in a few queries (see the module
/// documentation). Alone it serves previews; inside [`Staged`] it also takes a batch's changes.
#[derive(Debug, Default)]
pub struct OwnerStates {
    users: HashMap<UserId, StagedUser>,
    /// Identity links of the staged owners (and of owners linked in this batch).
    links: HashMap<(IntegrationId, String), UserId>,
    /// Who holds each staged email (`None`: nobody).
    email_holders: HashMap<(TenantId, String), Option<UserId>>,
    /// The integrations each staged user has an identity on.
    user_integrations: HashSet<(UserId, IntegrationId)>,
    open_issues: HashSet<(IntegrationId, String)>,
    /// Staged users an invitation was ever queued for.
    invited: HashSet<UserId>,
}

/// The in-memory view of one write transaction's batch. Dropping it without
/// [`flush`](Self::flush) writes nothing (beyond the issue and email changes already made,
/// which the transaction's rollback undoes).
#[derive(Debug)]
pub struct Staged<'tx> {
    tx: &'tx WriteTx,
    states: OwnerStates,
    new_identities: Vec<identity::Model>,
    new_invitations: Vec<invitation::Model>,
    new_events: Vec<event::Model>,
    settled_dead_letters: Vec<uuid::Uuid>,
    /// Users in the order they were first created or changed (the order of their updates).
    order: Vec<UserId>,
    /// Teams found or created by name in this batch.
    teams: HashMap<(TenantId, String), TeamId>,
}

/// Rows whose `column` is one of `ids`.
///
/// PostgreSQL: `= ANY($1)` with the ids as one array, so the statement's text does not change
/// with their number (see the module documentation). It probes the column's index per id, as
/// for an `IN` list. Elsewhere: an `IN` list.
pub(crate) fn one_of(
    backend: DbBackend,
    column: impl ColumnTrait,
    ids: impl IntoIterator<Item = uuid::Uuid>,
) -> Condition {
    let ids: Vec<uuid::Uuid> = ids.into_iter().collect();
    if backend != DbBackend::Postgres {
        return Condition::all().add(column.is_in(ids));
    }
    Condition::all().add(Expr::cust_with_values(
        format!("\"{}\" = ANY($1)", column.as_str()),
        [sea_orm::Value::from(ids)],
    ))
}

/// Rows whose `(first, second)` is one of `keys`, in the form each database plans well.
///
/// PostgreSQL: `(a, b) IN (SELECT * FROM UNNEST($1, $2))` with the keys as two arrays, whose
/// text does not change with their number (see the module documentation). It runs as one probe
/// of the two-column unique index per pair, whatever its statistics say, with a custom or a
/// generic plan. Written as `a = x AND b IN (…)` it would plan from the estimated rows of
/// `a = x` alone, and a tenant or integration it holds no statistics for yet (a new one, during
/// its first sync) is estimated at a handful of rows: it then reads every row of that tenant
/// and filters them, once per batch, so a sync slows down as it goes.
///
/// SQLite: `a = x AND b IN (…)`, one condition per distinct `x`. It always probes the index
/// with both columns for that form, but cannot use an index for a row value against a table
/// (nor take row values on the left of a plain `IN` list).
fn pairs(
    backend: DbBackend,
    first: impl ColumnTrait,
    second: impl ColumnTrait,
    keys: impl IntoIterator<Item = (uuid::Uuid, String)>,
) -> Condition {
    if backend == DbBackend::Postgres {
        let (firsts, seconds): (Vec<uuid::Uuid>, Vec<String>) = keys.into_iter().unzip();
        return Condition::all().add(Expr::cust_with_values(
            format!(
                "(\"{}\", \"{}\") IN (SELECT * FROM UNNEST($1::uuid[], $2::text[]))",
                first.as_str(),
                second.as_str(),
            ),
            [sea_orm::Value::from(firsts), sea_orm::Value::from(seconds)],
        ));
    }
    let mut grouped: std::collections::BTreeMap<uuid::Uuid, BTreeSet<String>> = Default::default();
    for (a, b) in keys {
        grouped.entry(a).or_default().insert(b);
    }
    grouped.into_iter().fold(Condition::any(), |any, (a, bs)| {
        any.add(Condition::all().add(first.eq(a)).add(second.is_in(bs)))
    })
}

/// Inserts `rows` into `E`'s table in one statement.
///
/// PostgreSQL: `INSERT … SELECT … FROM json_populate_recordset(NULL::table, $1)` with the rows
/// as one JSON array, whose text does not change with their number (see the module
/// documentation); each value is converted to its column's type as a literal would be.
/// Elsewhere: a multi-row `INSERT … VALUES`.
async fn insert_rows<E, C>(conn: &C, rows: Vec<E::Model>) -> Result<()>
where
    E: EntityTrait,
    E::Model: serde::Serialize + IntoActiveModel<E::ActiveModel>,
    C: ConnectionTrait,
{
    if rows.is_empty() {
        return Ok(());
    }
    if conn.get_database_backend() != DbBackend::Postgres {
        E::insert_many(rows.into_iter().map(IntoActiveModel::into_active_model))
            .exec_without_returning(conn)
            .await?;
        return Ok(());
    }
    let table = E::default().table_name();
    let columns = E::Column::iter()
        .map(|column| format!("\"{}\"", column.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO \"{table}\" ({columns}) \
         SELECT {columns} FROM json_populate_recordset(NULL::\"{table}\", $1::json)"
    );
    let rows = serde_json::to_string(&rows)?;
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [rows.into()],
    ))
    .await?;
    Ok(())
}

impl WriteTx {
    /// Which of `ids` the event log already holds.
    pub async fn recorded_events(&self, ids: &[EventId]) -> Result<HashSet<EventId>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let rows: Vec<uuid::Uuid> = event::Entity::find()
            .select_only()
            .column(event::Column::Id)
            .filter(one_of(
                self.tx.get_database_backend(),
                event::Column::Id,
                ids.iter().map(|id| id.as_uuid()),
            ))
            .into_tuple()
            .all(&self.tx)
            .await?;
        Ok(rows.into_iter().map(EventId::from_uuid).collect())
    }

    /// Reads what the decisions about `owners` need (see the module documentation).
    pub async fn stage(&self, owners: &[OwnerKey<'_>]) -> Result<Staged<'_>> {
        let states = OwnerStates::load(&self.tx, self.backend == Backend::Postgres, owners).await?;
        Ok(Staged {
            tx: self,
            states,
            new_identities: Vec::new(),
            new_invitations: Vec::new(),
            new_events: Vec::new(),
            settled_dead_letters: Vec::new(),
            order: Vec::new(),
            teams: HashMap::new(),
        })
    }
}

impl Store {
    /// What the database says about `owners` now, read outside any transaction (for previews
    /// that must not write).
    pub async fn owner_states(&self, owners: &[OwnerKey<'_>]) -> Result<OwnerStates> {
        OwnerStates::load(self.db(), false, owners).await
    }
}

impl OwnerStates {
    /// `lock`: lock the linked users' rows for the rest of the transaction (PostgreSQL), so
    /// two events for one owner apply one after the other.
    async fn load<C: ConnectionTrait>(
        conn: &C,
        lock: bool,
        owners: &[OwnerKey<'_>],
    ) -> Result<Self> {
        let mut staged = Self::default();
        if owners.is_empty() {
            return Ok(staged);
        }
        let owner_keys: Vec<(uuid::Uuid, String)> = owners
            .iter()
            .map(|o| (o.integration.as_uuid(), o.external_id.to_owned()))
            .collect();

        let backend = conn.get_database_backend();
        let links = identity::Entity::find()
            .filter(pairs(
                backend,
                identity::Column::IntegrationId,
                identity::Column::ExternalId,
                owner_keys.iter().cloned(),
            ))
            .all(conn)
            .await?;
        let linked_ids: BTreeSet<uuid::Uuid> = links.iter().map(|link| link.user_id).collect();
        for link in links {
            staged.links.insert(
                (link.integration_id.into(), link.external_id),
                link.user_id.into(),
            );
        }
        if !linked_ids.is_empty() {
            let mut query = user::Entity::find()
                .filter(one_of(backend, user::Column::Id, linked_ids))
                .order_by_asc(user::Column::Id);
            if lock {
                query = query.lock_exclusive();
            }
            for row in query.all(conn).await? {
                staged.add_stored(row);
            }
        }

        let emails: BTreeSet<(uuid::Uuid, String)> = owners
            .iter()
            .filter_map(|o| {
                o.email
                    .map(|email| (o.tenant.as_uuid(), email.normalized().to_owned()))
            })
            .collect();
        if !emails.is_empty() {
            let holders = user::Entity::find()
                .filter(pairs(
                    backend,
                    user::Column::TenantId,
                    user::Column::EmailNormalized,
                    emails.iter().cloned(),
                ))
                .all(conn)
                .await?;
            for (tenant, email) in &emails {
                staged
                    .email_holders
                    .insert(((*tenant).into(), email.clone()), None);
            }
            for row in holders {
                let id: UserId = row.id.into();
                staged.email_holders.insert(
                    (row.tenant_id.into(), row.email_normalized.clone()),
                    Some(id),
                );
                if !staged.users.contains_key(&id) {
                    staged.add_stored(row);
                }
            }
        }
        // Every staged user's integrations: a linked user can become another owner's email
        // holder within the batch (by an email change), so not only the holders' are needed.
        if !staged.users.is_empty() {
            let held: Vec<(uuid::Uuid, uuid::Uuid)> = identity::Entity::find()
                .select_only()
                .column(identity::Column::UserId)
                .column(identity::Column::IntegrationId)
                .filter(one_of(
                    backend,
                    identity::Column::UserId,
                    staged.users.keys().map(|id| id.as_uuid()),
                ))
                .into_tuple()
                .all(conn)
                .await?;
            staged.user_integrations.extend(
                held.into_iter()
                    .map(|(user, integration)| (user.into(), integration.into())),
            );
            let invited: Vec<uuid::Uuid> = invitation::Entity::find()
                .select_only()
                .column(invitation::Column::UserId)
                .distinct()
                .filter(one_of(
                    backend,
                    invitation::Column::UserId,
                    staged.users.keys().map(|id| id.as_uuid()),
                ))
                .into_tuple()
                .all(conn)
                .await?;
            staged.invited.extend(invited.into_iter().map(UserId::from));
        }

        let open: Vec<(uuid::Uuid, String)> = issue::Entity::find()
            .select_only()
            .column(issue::Column::IntegrationId)
            .column(issue::Column::ExternalId)
            .filter(issue::Column::ResolvedAt.is_null())
            .filter(pairs(
                backend,
                issue::Column::IntegrationId,
                issue::Column::ExternalId,
                owner_keys,
            ))
            .into_tuple()
            .all(conn)
            .await?;
        staged.open_issues.extend(
            open.into_iter()
                .map(|(integration, external_id)| (integration.into(), external_id)),
        );
        Ok(staged)
    }

    fn add_stored(&mut self, row: user::Model) {
        self.users.insert(
            row.id.into(),
            StagedUser {
                stored: Some(row.clone()),
                current: row,
                touched: false,
            },
        );
    }

    fn user_snapshot(&self, id: UserId) -> Result<Option<domain::UserSnapshot>> {
        let Some(user) = self.users.get(&id) else {
            return Ok(None);
        };
        let mut snapshot = snapshot(user.current.clone())?;
        snapshot.invited = self.invited.contains(&id);
        Ok(Some(snapshot))
    }

    /// The state an owner's decision is based on.
    pub fn current_state(&self, owner: &OwnerKey<'_>) -> Result<CurrentState> {
        let linked = self
            .links
            .get(&(owner.integration, owner.external_id.to_owned()))
            .copied();
        let mut state = CurrentState {
            linked_user: linked
                .map(|id| self.user_snapshot(id))
                .transpose()?
                .flatten(),
            email_user: None,
            email_user_linked_here: false,
        };
        let Some(email) = owner.email else {
            return Ok(state);
        };
        let holder = self
            .email_holders
            .get(&(owner.tenant, email.normalized().to_owned()))
            .copied()
            .flatten();
        if let Some(holder) = holder
            && linked != Some(holder)
        {
            state.email_user_linked_here = self
                .user_integrations
                .contains(&(holder, owner.integration));
            state.email_user = self.user_snapshot(holder)?;
        }
        Ok(state)
    }
}

impl Staged<'_> {
    /// What the owner's decision is based on: the same answer a fresh read would give after
    /// the batch's earlier effects were committed.
    pub fn current_state(&self, owner: &OwnerKey<'_>) -> Result<CurrentState> {
        self.states.current_state(owner)
    }

    fn note_changed(&mut self, id: UserId) {
        if !self.order.contains(&id) {
            self.order.push(id);
        }
    }

    /// Creates a user (written at flush).
    pub fn insert_user(
        &mut self,
        tenant: TenantId,
        new: &NewUser,
        source_updated_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<UserId> {
        let id = UserId::new();
        let profile = &new.profile;
        let row = user::Model {
            id: id.as_uuid(),
            tenant_id: tenant.as_uuid(),
            email: new.email.as_str().to_owned(),
            email_normalized: new.email.normalized().to_owned(),
            first_name: new.first_name.clone(),
            last_name: new.last_name.clone(),
            avatar_url: profile.avatar_url.clone(),
            title: profile.title.clone(),
            department: profile.department.clone(),
            location: profile.location.clone(),
            employee_ids: serde_json::to_string(
                profile.employee_ids.as_deref().unwrap_or_default(),
            )?,
            member_type: profile.member_type.clone(),
            role: new.role.clone(),
            status: new.status.as_str().to_owned(),
            team_id: None,
            source_updated_at: source_updated_at.map(Timestamp::millis),
            created_at: now.millis(),
            updated_at: now.millis(),
        };
        self.states
            .email_holders
            .insert((tenant, row.email_normalized.clone()), Some(id));
        self.states.users.insert(
            id,
            StagedUser {
                stored: None,
                current: row,
                touched: true,
            },
        );
        self.note_changed(id);
        Ok(id)
    }

    /// Links `user` to `(integration, external_id)` (written at flush).
    pub fn insert_identity(
        &mut self,
        tenant: TenantId,
        user: UserId,
        integration: IntegrationId,
        external_id: &str,
        avatar_url: Option<&str>,
        now: Timestamp,
    ) {
        self.states
            .links
            .insert((integration, external_id.to_owned()), user);
        self.states.user_integrations.insert((user, integration));
        self.new_identities.push(identity::Model {
            id: uuid::Uuid::now_v7(),
            tenant_id: tenant.as_uuid(),
            user_id: user.as_uuid(),
            integration_id: integration.as_uuid(),
            external_id: external_id.to_owned(),
            avatar_url: avatar_url.map(str::to_owned),
            created_at: now.millis(),
        });
    }

    /// Applies changes to a staged user. An email change of a stored user is written at once
    /// (see the module documentation); everything else at flush.
    pub async fn update_user(
        &mut self,
        id: UserId,
        changes: &UserChanges,
        source_updated_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<()> {
        let Some(staged) = self.states.users.get_mut(&id) else {
            return Err(crate::StoreError::corrupt(format!(
                "user {id} was decided about but not staged"
            )));
        };
        let row = &mut staged.current;
        let profile = &changes.profile;
        let set = |field: &mut Option<String>, value: &Option<String>| {
            if let Some(value) = value {
                *field = Some(value.clone());
            }
        };
        set(&mut row.avatar_url, &profile.avatar_url);
        set(&mut row.title, &profile.title);
        set(&mut row.department, &profile.department);
        set(&mut row.location, &profile.location);
        set(&mut row.member_type, &profile.member_type);
        if let Some(first_name) = &profile.first_name {
            row.first_name.clone_from(first_name);
        }
        if let Some(last_name) = &profile.last_name {
            row.last_name.clone_from(last_name);
        }
        if let Some(ids) = &profile.employee_ids {
            row.employee_ids = serde_json::to_string(ids)?;
        }
        if let Some(status) = changes.status {
            row.status = status.as_str().to_owned();
        }
        if let Some(at) = source_updated_at {
            row.source_updated_at = Some(at.millis());
        }
        row.updated_at = now.millis();
        staged.touched = true;
        let tenant: TenantId = row.tenant_id.into();
        let mut moved_email = None;
        if let Some(email) = &changes.email {
            let previous =
                std::mem::replace(&mut row.email_normalized, email.normalized().to_owned());
            row.email = email.as_str().to_owned();
            moved_email = Some(previous);
        }
        let written_now = moved_email.is_some() && staged.stored.is_some();
        if written_now && let Some(stored) = staged.stored.as_mut() {
            user::Entity::update_many()
                .col_expr(user::Column::Email, Expr::value(row.email.clone()))
                .col_expr(
                    user::Column::EmailNormalized,
                    Expr::value(row.email_normalized.clone()),
                )
                .filter(user::Column::Id.eq(id.as_uuid()))
                .exec(&self.tx.tx)
                .await?;
            stored.email.clone_from(&row.email);
            stored.email_normalized.clone_from(&row.email_normalized);
        }
        if let Some(previous) = moved_email {
            let current = row.email_normalized.clone();
            self.states.email_holders.insert((tenant, previous), None);
            self.states
                .email_holders
                .insert((tenant, current), Some(id));
        }
        self.note_changed(id);
        Ok(())
    }

    /// Records that an event at `at` was applied to a user without changing anything, so an
    /// older event arriving later is recognised as stale.
    pub fn advance_source_time(&mut self, id: UserId, at: Timestamp) {
        if let Some(staged) = self.states.users.get_mut(&id)
            && staged
                .current
                .source_updated_at
                .is_none_or(|t| t < at.millis())
        {
            staged.current.source_updated_at = Some(at.millis());
            self.note_changed(id);
        }
    }

    /// Puts a staged user on the tenant's team named `name`, creating the team in this
    /// transaction when the tenant has none of that name (a department mapped to a team).
    pub async fn join_team_named(
        &mut self,
        user_id: UserId,
        tenant: TenantId,
        name: &str,
        now: Timestamp,
    ) -> Result<()> {
        let key = (tenant, name.to_owned());
        let team = match self.teams.get(&key) {
            Some(team) => *team,
            None => {
                let found = team::Entity::find()
                    .filter(team::Column::TenantId.eq(tenant.as_uuid()))
                    .filter(team::Column::Name.eq(name))
                    .by_key(&self.tx.tx)
                    .await?;
                let team = match found {
                    Some(row) => TeamId::from(row.id),
                    None => {
                        // Another batch creating the same team at once makes this insert
                        // conflict; the batch is then retried and finds it.
                        let (id, row) = crate::teams::new_team(tenant, name, now);
                        team::Entity::insert(row)
                            .exec_without_returning(&self.tx.tx)
                            .await?;
                        id
                    }
                };
                self.teams.insert(key, team);
                team
            }
        };
        let Some(staged) = self.states.users.get_mut(&user_id) else {
            return Err(crate::StoreError::corrupt(format!(
                "user {user_id} was placed on a team but not staged"
            )));
        };
        staged.current.team_id = Some(team.as_uuid());
        staged.current.updated_at = now.millis();
        staged.touched = true;
        self.note_changed(user_id);
        Ok(())
    }

    /// Writes an invitation to the outbox, due now (at flush).
    pub fn queue_invitation(
        &mut self,
        tenant: TenantId,
        user: UserId,
        now: Timestamp,
    ) -> InvitationId {
        self.states.invited.insert(user);
        let (id, row) = crate::invitations::new_invitation(tenant, user, now);
        self.new_invitations.push(row);
        id
    }

    /// Resolves the owner's open issues (all, or all but one kind), recording which event did.
    pub async fn resolve_issues(
        &mut self,
        integration: IntegrationId,
        external_id: &str,
        except: Option<IssueKind>,
        event_id: EventId,
        now: Timestamp,
    ) -> Result<()> {
        let key = (integration, external_id.to_owned());
        if !self.states.open_issues.contains(&key) {
            return Ok(());
        }
        self.tx
            .resolve_issues(integration, external_id, except, event_id, now)
            .await?;
        if except.is_none() {
            self.states.open_issues.remove(&key);
        }
        Ok(())
    }

    /// Opens (or counts another occurrence of) an issue.
    pub async fn record_issue(&mut self, new: &NewIssue<'_>, now: Timestamp) -> Result<()> {
        self.tx.record_issue(new, now).await?;
        self.states
            .open_issues
            .insert((new.integration_id, new.external_id.to_owned()));
        Ok(())
    }

    /// Records the event (at flush), and takes it out of the dead-letter store.
    pub fn record_event(&mut self, record: &NewEventRecord) -> Result<()> {
        self.new_events.push(event::Model {
            id: record.id.as_uuid(),
            tenant_id: record.tenant_id.as_uuid(),
            integration_id: record.integration_id.as_uuid(),
            provider_event_id: record.provider_event_id.clone(),
            event_type: record.event_type.clone(),
            occurred_at: record.occurred_at.map(Timestamp::millis),
            received_at: record.received_at.millis(),
            processed_at: record.processed_at.millis(),
            outcome: record.outcome.as_str().to_owned(),
            reason: record.reason.clone(),
            user_id: record.user_id.map(UserId::as_uuid),
            external_id: record.external_id.clone(),
            shadow: record.shadow,
            attempts: record.attempts,
            details: serde_json::to_string(&record.owners)?,
            replayed_at: record.replayed_at.map(Timestamp::millis),
            replayed_by: record.replayed_by.clone(),
            sync_run_id: Some(record.sync_run.as_uuid()),
        });
        // Processed at last (a replay, or the sender's own retry): it leaves the dead-letter
        // store in the same transaction that records it in the event log.
        self.settled_dead_letters.push(record.id.as_uuid());
        Ok(())
    }

    /// Writes everything staged. A unique-key violation answers
    /// [`StoreError::Conflict`](crate::StoreError::Conflict): another writer got there first.
    pub async fn flush(self) -> Result<()> {
        let tx = &self.tx.tx;
        let mut created = Vec::new();
        for id in &self.order {
            let Some(staged) = self.states.users.get(id) else {
                continue;
            };
            match &staged.stored {
                None => created.push(staged.current.clone()),
                Some(stored) => {
                    let mut changes = stored.clone().into_active_model();
                    let mut changed = false;
                    for column in user::Column::iter() {
                        let value = staged.current.get(column);
                        if stored.get(column) != value {
                            changes.set(column, value);
                            changed = true;
                        }
                    }
                    if changed || staged.touched {
                        if !changed {
                            changes.set(user::Column::UpdatedAt, staged.current.updated_at.into());
                        }
                        user::Entity::update_many()
                            .set(changes)
                            .filter(user::Column::Id.eq(stored.id))
                            .exec(tx)
                            .await?;
                    }
                }
            }
        }
        insert_rows::<user::Entity, _>(tx, created).await?;
        insert_rows::<identity::Entity, _>(tx, self.new_identities).await?;
        insert_rows::<invitation::Entity, _>(tx, self.new_invitations).await?;
        insert_rows::<event::Entity, _>(tx, self.new_events).await?;
        if !self.settled_dead_letters.is_empty() {
            dead_letter::Entity::delete_many()
                .filter(one_of(
                    tx.get_database_backend(),
                    dead_letter::Column::EventId,
                    self.settled_dead_letters,
                ))
                .exec(tx)
                .await?;
        }
        Ok(())
    }
}
