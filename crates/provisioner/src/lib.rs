//! Applies provisioning decisions: for one event, every effect (users created or changed,
//! identity links, invitation outbox rows, the event-log row) commits in one transaction keyed
//! by the event id, so a redelivered event has no second effect.
//!
//! This crate does not decide anything: it reads the current state inside the transaction,
//! asks the caller's decision function, and applies the answer. When two transactions race for
//! the same owner or email, the database's unique keys stop the second one; it is rolled back
//! and re-run from a fresh read, which then sees the first one's user.

use std::sync::Arc;

use domain::{
    CurrentState, Decision, EventEnvelope, EventOutcome, NormalizedEmail, OwnerFacts, Timestamp,
    UserId,
};
use store::{NewEventRecord, NewIssue, OwnerOutcome, Store, StoreError, WriteTx};
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

    /// Applies one event: for each owner, reads the state, calls `decide`, applies the
    /// decision; then records the event. All in one transaction.
    pub async fn apply<F>(
        &self,
        envelope: &EventEnvelope,
        owners: &[OwnerFacts],
        mode: Mode,
        attempt: u32,
        mut decide: F,
    ) -> Result<Applied, ProvisionError>
    where
        F: FnMut(&OwnerFacts, &CurrentState) -> Decision + Send,
    {
        let mut last_conflict = String::new();
        for _ in 0..MAX_RACE_RETRIES {
            match self
                .try_apply(envelope, owners, mode, attempt, &mut decide)
                .await
            {
                Ok(applied) => return Ok(applied),
                Err(StoreError::Conflict(detail)) => {
                    tracing::debug!(event_id = %envelope.event_id, %detail, "lost a race; re-reading");
                    last_conflict = detail;
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(ProvisionError::Transient(format!(
            "kept conflicting with concurrent writers: {last_conflict}"
        )))
    }

    async fn try_apply<F>(
        &self,
        envelope: &EventEnvelope,
        owners: &[OwnerFacts],
        mode: Mode,
        attempt: u32,
        decide: &mut F,
    ) -> Result<Applied, StoreError>
    where
        F: FnMut(&OwnerFacts, &CurrentState) -> Decision + Send,
    {
        let tx = self.store.begin_write().await?;
        if tx.event_recorded(envelope.event_id).await? {
            return Ok(Applied::AlreadyProcessed);
        }
        let now = Timestamp::now();
        let mut results = Vec::with_capacity(owners.len());
        let mut invited = false;
        for owner in owners {
            let email = owner
                .email
                .as_deref()
                .and_then(|email| NormalizedEmail::parse(email).ok());
            let state = tx
                .current_state(
                    envelope.tenant_id,
                    envelope.integration_id,
                    &owner.external_id,
                    email.as_ref(),
                )
                .await?;
            let decision = decide(owner, &state);
            let user_id = match mode {
                Mode::Live => {
                    let (user_id, invite) =
                        apply_decision(&tx, envelope, owner, &decision, now).await?;
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
        let record = NewEventRecord {
            id: envelope.event_id,
            tenant_id: envelope.tenant_id,
            integration_id: envelope.integration_id,
            provider_event_id: envelope.provider_event_id.clone(),
            event_type: envelope.event_type.clone(),
            occurred_at: envelope.occurred_at,
            received_at: envelope.received_at,
            processed_at: now,
            outcome,
            reason: first.and_then(|r| r.reason.clone()),
            user_id: first.and_then(|r| r.user_id),
            external_id: first.map(|r| r.external_id.clone()),
            shadow: mode == Mode::Shadow,
            attempts: i32::try_from(attempt).unwrap_or(i32::MAX),
            owners: results.clone(),
            replayed_at: envelope.replay.as_ref().map(|replay| replay.replayed_at),
            replayed_by: envelope
                .replay
                .as_ref()
                .map(|replay| replay.replayed_by.clone()),
        };
        match tx.insert_event(&record).await {
            Ok(()) => {}
            // Another worker recorded this event between our check and now: its effects win.
            Err(StoreError::Conflict(_)) => return Ok(Applied::AlreadyProcessed),
            Err(err) => return Err(err),
        }
        // Processed at last (a replay, or the sender's own retry): it leaves the dead-letter
        // store in the same transaction that records it in the event log.
        tx.clear_dead_letter(envelope.event_id).await?;
        tx.commit().await?;
        if invited {
            self.invitations_queued.notify_waiters();
        }
        Ok(Applied::Recorded {
            outcome,
            owners: results,
        })
    }
}

/// Applies one decision; answers the user it touched and whether it queued an invitation.
async fn apply_decision(
    tx: &WriteTx,
    envelope: &EventEnvelope,
    owner: &OwnerFacts,
    decision: &Decision,
    now: Timestamp,
) -> Result<(Option<UserId>, bool), StoreError> {
    let resolve_all = || {
        tx.resolve_issues(
            envelope.integration_id,
            &owner.external_id,
            None,
            envelope.event_id,
            now,
        )
    };
    match decision {
        Decision::Create(new) => {
            let user = tx
                .insert_user(envelope.tenant_id, new, envelope.occurred_at, now)
                .await?;
            tx.insert_identity(
                envelope.tenant_id,
                user,
                envelope.integration_id,
                &owner.external_id,
                owner.avatar_url.as_deref(),
                now,
            )
            .await?;
            if new.invite {
                tx.queue_invitation(envelope.tenant_id, user, now).await?;
            }
            resolve_all().await?;
            Ok((Some(user), new.invite))
        }
        Decision::Link { user_id, changes } => {
            tx.insert_identity(
                envelope.tenant_id,
                *user_id,
                envelope.integration_id,
                &owner.external_id,
                owner.avatar_url.as_deref(),
                now,
            )
            .await?;
            tx.update_user(*user_id, changes, envelope.occurred_at, now)
                .await?;
            resolve_all().await?;
            Ok((Some(*user_id), false))
        }
        Decision::Update {
            user_id, changes, ..
        } => {
            tx.update_user(*user_id, changes, envelope.occurred_at, now)
                .await?;
            resolve_all().await?;
            Ok((Some(*user_id), false))
        }
        Decision::Unchanged { user_id, .. } => {
            if let Some(at) = envelope.occurred_at {
                tx.advance_source_time(*user_id, at).await?;
            }
            resolve_all().await?;
            Ok((Some(*user_id), false))
        }
        Decision::Ignore { user_id, .. } => Ok((*user_id, false)),
        Decision::Issue {
            kind,
            missing,
            detail,
        } => {
            // A new kind of issue supersedes the owner's other open ones (the missing fields
            // were supplied, say, but the email turned out to be taken).
            tx.resolve_issues(
                envelope.integration_id,
                &owner.external_id,
                Some(*kind),
                envelope.event_id,
                now,
            )
            .await?;
            tx.record_issue(
                &NewIssue {
                    tenant_id: envelope.tenant_id,
                    integration_id: envelope.integration_id,
                    external_id: &owner.external_id,
                    kind: *kind,
                    missing,
                    detail,
                    event_id: envelope.event_id,
                },
                now,
            )
            .await?;
            Ok((None, false))
        }
    }
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
