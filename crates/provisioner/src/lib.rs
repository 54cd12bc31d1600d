//! Applies provisioning decisions: for one event, or a batch of events in order, every effect
//! (users created or changed, identity links, invitation outbox rows, the event-log rows)
//! commits in one transaction keyed by the event ids, so a redelivered event has no second
//! effect.
//!
//! This crate does not decide anything: it reads the current state inside the transaction,
//! asks the caller's decision function, and applies the answer. When two transactions race for
//! the same owner or email, the database's unique keys stop the second one; it is rolled back
//! and re-run from a fresh read, which then sees the first one's user.

use std::sync::Arc;

use domain::{
    CurrentState, Decision, EventEnvelope, EventId, EventOutcome, NormalizedEmail, OwnerFacts,
    Timestamp, UserId,
};
use store::{NewEventRecord, NewIssue, OwnerKey, OwnerOutcome, Staged, Store, StoreError};
use tokio::sync::Notify;

/// Why an event could not be applied now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProvisionError {
    /// The database failed or kept conflicting; retrying later can succeed.
    #[error("transient: {0}")]
    Transient(String),
    /// Something no retry will fix (a stored value that cannot be read, a bug).
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<StoreError> for ProvisionError {
    fn from(err: StoreError) -> Self {
        if err.is_transient() {
            ProvisionError::Transient(err.to_string())
        } else {
            ProvisionError::Permanent(err.to_string())
        }
    }
}

/// What applying an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Recorded now, with this outcome.
    Recorded {
        outcome: EventOutcome,
        owners: Vec<OwnerOutcome>,
    },
    /// The event was recorded before (a redelivery or a duplicate): nothing was done.
    AlreadyProcessed,
}

/// How the event is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Apply the decisions.
    Live,
    /// Record the decisions in the event log without applying them (draft integrations).
    Shadow,
}

/// How many times a transaction that lost a race is re-run before giving up for now.
const MAX_RACE_RETRIES: usize = 8;

/// The decision function for one event's owners (the resolver's, bound to the integration's
/// settings and the event's context).
pub type Decide<'a> = dyn Fn(&OwnerFacts, &CurrentState) -> Decision + Send + Sync + 'a;

/// One event of a batch, with how to decide about its owners.
pub struct Item<'a> {
    pub envelope: &'a EventEnvelope,
    pub owners: &'a [OwnerFacts],
    pub mode: Mode,
    /// Which delivery attempt this is (recorded in the event log).
    pub attempt: u32,
    pub decide: &'a Decide<'a>,
    /// Why the event names no owner, when `owners` is empty (recorded as the reason).
    pub no_owner: Option<&'a str>,
}

impl std::fmt::Debug for Item<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Item")
            .field("event_id", &self.envelope.event_id)
            .field("owners", &self.owners.len())
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Applies decisions. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Provisioner {
    store: Store,
    invitations_queued: Arc<Notify>,
}

impl Provisioner {
    /// `invitations_queued` is signalled after a commit that wrote an invitation, so a relay
    /// in this process sends it at once.
    #[must_use]
    pub fn new(store: Store, invitations_queued: Arc<Notify>) -> Self {
        Self {
            store,
            invitations_queued,
        }
    }

    /// The store decisions are applied to.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Applies one event: for each owner, reads the state, calls `decide`, applies the
    /// decision; then records the event. All in one transaction.
    pub async fn apply(&self, item: &Item<'_>) -> Result<Applied, ProvisionError> {
        let mut applied = self.apply_batch(std::slice::from_ref(item)).await?;
        applied
            .pop()
            .ok_or_else(|| ProvisionError::Permanent("a batch of one answered nothing".to_owned()))
    }

    /// Applies a batch of events in order, in one transaction, as if each were applied and
    /// committed on its own: an event sees the effects of those before it. Answers what each
    /// did, in the same order. One failure fails the batch (nothing is written); the caller
    /// can then apply the events one by one to find the one at fault.
    pub async fn apply_batch(&self, items: &[Item<'_>]) -> Result<Vec<Applied>, ProvisionError> {
        let mut last_conflict = String::new();
        for _ in 0..MAX_RACE_RETRIES {
            match self.try_apply_batch(items).await {
                Ok(applied) => return Ok(applied),
                Err(StoreError::Conflict(detail)) => {
                    tracing::debug!(events = items.len(), %detail, "lost a race; re-reading");
                    last_conflict = detail;
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(ProvisionError::Transient(format!(
            "kept conflicting with concurrent writers: {last_conflict}"
        )))
    }

    async fn try_apply_batch(&self, items: &[Item<'_>]) -> Result<Vec<Applied>, StoreError> {
        let tx = self.store.begin_write().await?;
        let ids: Vec<EventId> = items.iter().map(|item| item.envelope.event_id).collect();
        let mut done = tx.recorded_events(&ids).await?;
        // Each owner's email, parsed once: the keys to read by and the decisions' input.
        let emails: Vec<Vec<Option<NormalizedEmail>>> = items
            .iter()
            .map(|item| {
                item.owners
                    .iter()
                    .map(OwnerFacts::normalized_email)
                    .collect()
            })
            .collect();
        let keys: Vec<OwnerKey<'_>> = items
            .iter()
            .zip(&emails)
            .filter(|(item, _)| !done.contains(&item.envelope.event_id))
            .flat_map(|(item, emails)| {
                item.owners
                    .iter()
                    .zip(emails)
                    .map(move |(owner, email)| owner_key(item, owner, email.as_ref()))
            })
            .collect();
        let mut staged = tx.stage(&keys).await?;
        let now = Timestamp::now();
        let mut answers = Vec::with_capacity(items.len());
        let mut invited = false;
        for (item, emails) in items.iter().zip(&emails) {
            let envelope = item.envelope;
            // Recorded before, or a second delivery of an event earlier in this batch.
            if !done.insert(envelope.event_id) {
                answers.push(Applied::AlreadyProcessed);
                continue;
            }
            let mut results = Vec::with_capacity(item.owners.len());
            for (owner, email) in item.owners.iter().zip(emails) {
                let state = staged.current_state(&owner_key(item, owner, email.as_ref()))?;
                let decision = (item.decide)(owner, &state);
                let user_id = match item.mode {
                    Mode::Live => {
                        let (user_id, invite) =
                            apply_decision(&mut staged, envelope, owner, &decision, now).await?;
                        invited |= invite;
                        user_id
                    }
                    Mode::Shadow => decision.user(),
                };
                results.push(OwnerOutcome {
                    external_id: owner.external_id.clone(),
                    outcome: decision.outcome(),
                    reason: decision.reason(),
                    user_id,
                });
            }
            let outcome = summary(&results);
            let first = results.first();
            staged.record_event(&NewEventRecord {
                id: envelope.event_id,
                tenant_id: envelope.tenant_id,
                integration_id: envelope.integration_id,
                provider_event_id: envelope.provider_event_id.clone(),
                event_type: envelope.event_type.clone(),
                occurred_at: envelope.occurred_at,
                received_at: envelope.received_at,
                processed_at: now,
                outcome,
                reason: first
                    .and_then(|r| r.reason.clone())
                    .or_else(|| item.no_owner.map(str::to_owned)),
                user_id: first.and_then(|r| r.user_id),
                external_id: first.map(|r| r.external_id.clone()),
                shadow: item.mode == Mode::Shadow,
                attempts: i32::try_from(item.attempt).unwrap_or(i32::MAX),
                owners: results.clone(),
                replayed_at: envelope.replay.as_ref().map(|replay| replay.replayed_at),
                replayed_by: envelope
                    .replay
                    .as_ref()
                    .map(|replay| replay.replayed_by.clone()),
                sync_run: envelope.sync_run(),
            })?;
            answers.push(Applied::Recorded {
                outcome,
                owners: results,
            });
        }
        staged.flush().await?;
        tx.commit().await?;
        if invited {
            self.invitations_queued.notify_waiters();
        }
        Ok(answers)
    }
}

fn owner_key<'a>(
    item: &Item<'_>,
    owner: &'a OwnerFacts,
    email: Option<&'a NormalizedEmail>,
) -> OwnerKey<'a> {
    OwnerKey::of(
        item.envelope.tenant_id,
        item.envelope.integration_id,
        owner,
        email,
    )
}

/// Applies one decision; answers the user it touched and whether it queued an invitation.
async fn apply_decision(
    staged: &mut Staged<'_>,
    envelope: &EventEnvelope,
    owner: &OwnerFacts,
    decision: &Decision,
    now: Timestamp,
) -> Result<(Option<UserId>, bool), StoreError> {
    let integration = envelope.integration_id;
    let external_id = owner.external_id.as_str();
    let touched = match decision {
        Decision::Create(new) => {
            let user = staged.insert_user(envelope.tenant_id, new, envelope.occurred_at, now)?;
            if let Some(team) = &new.team {
                staged
                    .join_team_named(user, envelope.tenant_id, team, now)
                    .await?;
            }
            staged.insert_identity(
                envelope.tenant_id,
                user,
                integration,
                external_id,
                owner.avatar_url.as_deref(),
                now,
            );
            if new.invite {
                staged.queue_invitation(envelope.tenant_id, user, now);
            }
            (Some(user), new.invite)
        }
        Decision::Link { user_id, changes } => {
            staged.insert_identity(
                envelope.tenant_id,
                *user_id,
                integration,
                external_id,
                owner.avatar_url.as_deref(),
                now,
            );
            staged
                .update_user(*user_id, changes, envelope.occurred_at, now)
                .await?;
            if let Some(team) = &changes.team {
                staged
                    .join_team_named(*user_id, envelope.tenant_id, team, now)
                    .await?;
            }
            (Some(*user_id), false)
        }
        Decision::Update {
            user_id,
            changes,
            invite,
            ..
        } => {
            staged
                .update_user(*user_id, changes, envelope.occurred_at, now)
                .await?;
            if let Some(team) = &changes.team {
                staged
                    .join_team_named(*user_id, envelope.tenant_id, team, now)
                    .await?;
            }
            if *invite {
                staged.queue_invitation(envelope.tenant_id, *user_id, now);
            }
            (Some(*user_id), *invite)
        }
        Decision::Unchanged { user_id, .. } => {
            if let Some(at) = envelope.occurred_at {
                staged.advance_source_time(*user_id, at);
            }
            (Some(*user_id), false)
        }
        Decision::Ignore { user_id, .. } => return Ok((*user_id, false)),
        Decision::Issue {
            kind,
            missing,
            detail,
        } => {
            // A new kind of issue supersedes the owner's other open ones (the missing fields
            // were supplied, say, but the email turned out to be taken).
            staged
                .resolve_issues(
                    integration,
                    external_id,
                    Some(*kind),
                    envelope.event_id,
                    now,
                )
                .await?;
            staged
                .record_issue(
                    &NewIssue {
                        tenant_id: envelope.tenant_id,
                        integration_id: integration,
                        external_id,
                        kind: *kind,
                        missing,
                        detail,
                        event_id: envelope.event_id,
                    },
                    now,
                )
                .await?;
            return Ok((None, false));
        }
    };
    // The owner has an account in step with the CRM again: its open issues are resolved.
    staged
        .resolve_issues(integration, external_id, None, envelope.event_id, now)
        .await?;
    Ok(touched)
}

/// The outcome the event log shows for an event naming several owners: the most significant.
fn summary(results: &[OwnerOutcome]) -> EventOutcome {
    const ORDER: [EventOutcome; 7] = [
        EventOutcome::Created,
        EventOutcome::Reactivated,
        EventOutcome::Deactivated,
        EventOutcome::Updated,
        EventOutcome::Issue,
        EventOutcome::Unchanged,
        EventOutcome::Ignored,
    ];
    ORDER
        .into_iter()
        .find(|outcome| results.iter().any(|r| r.outcome == *outcome))
        .unwrap_or(EventOutcome::Ignored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(outcome: EventOutcome) -> OwnerOutcome {
        OwnerOutcome {
            external_id: "x".to_owned(),
            outcome,
            reason: None,
            user_id: None,
        }
    }

    #[test]
    fn summary_prefers_the_most_significant_outcome() {
        let results = [
            result(EventOutcome::Unchanged),
            result(EventOutcome::Created),
        ];
        assert_eq!(summary(&results), EventOutcome::Created);
        assert_eq!(
            summary(&[result(EventOutcome::Ignored)]),
            EventOutcome::Ignored
        );
        assert_eq!(summary(&[]), EventOutcome::Ignored);
    }
}
