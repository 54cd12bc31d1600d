//! "What would happen if this payload arrived?": the decisions for a sample payload, computed
//! exactly as the worker would, against the current state, writing nothing.

use directory::Directory;
use domain::{Decision, NormalizedEmail, OwnerFacts, UserId};
use serde::Serialize;
use sources::{DeliveryHints, FieldMapping};
use store::{Integration, OwnerKey, Store, StoreError};

use crate::lookup::{LookupTarget, Unresolved, resolve};
use crate::{DecisionContext, decide};

/// The decision for one owner of a sample event.
#[derive(Debug, Clone, Serialize)]
pub struct OwnerPreview {
    pub external_id: String,
    /// `create`, `link`, `update`, `none`, `ignore` or `issue`.
    pub action: &'static str,
    /// What the event log would record.
    pub outcome: domain::EventOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// For a creation: the new user's status, role, and whether they would be invited; for an
    /// update, the new status (if it changes) and whether the user would be invited now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<domain::UserStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub invite: bool,
}

impl OwnerPreview {
    fn of(owner: &OwnerFacts, decision: &Decision) -> Self {
        let (status, role, invite) = match decision {
            Decision::Create(new) => (Some(new.status), Some(new.role.clone()), new.invite),
            Decision::Update {
                changes, invite, ..
            } => (changes.status, None, *invite),
            _ => (None, None, false),
        };
        OwnerPreview {
            external_id: owner.external_id.clone(),
            action: decision.action(),
            outcome: decision.outcome(),
            reason: decision.reason(),
            user_id: decision.user(),
            status,
            role,
            invite,
        }
    }
}

/// The decisions for rows of a roster import, each against the current state (rows are not
/// applied to one another: two rows for one new owner both preview as a creation).
pub async fn preview_roster(
    store: &Store,
    integration: &Integration,
    owners: &[OwnerFacts],
) -> Result<Vec<OwnerPreview>, PreviewError> {
    let emails: Vec<Option<NormalizedEmail>> =
        owners.iter().map(OwnerFacts::normalized_email).collect();
    let keys: Vec<OwnerKey<'_>> = owners
        .iter()
        .zip(&emails)
        .map(|(owner, email)| {
            OwnerKey::of(integration.tenant_id, integration.id, owner, email.as_ref())
        })
        .collect();
    let states = store.owner_states(&keys).await?;
    let context = DecisionContext {
        event_type: "roster.import",
        occurred_at: Some(domain::Timestamp::now()),
        roster: true,
    };
    let mut previews = Vec::with_capacity(owners.len());
    for (key, owner) in keys.iter().zip(owners) {
        let state = states.current_state(key)?;
        let decision = decide(owner, &state, &integration.settings, &context);
        previews.push(OwnerPreview::of(owner, &decision));
    }
    Ok(previews)
}

/// The decisions for one event of the sample.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewedEvent {
    pub provider_event_id: String,
    pub event_type: String,
    pub owners: Vec<OwnerPreview>,
    /// Why the event names no owner, when it names none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_owner: Option<String>,
}

/// Why a sample could not be previewed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PreviewError {
    /// The sample is not what the integration's source format expects.
    #[error("{0}")]
    Payload(String),
    /// The CRM's directory could not be asked now (rate limit, timeout, outage).
    #[error("the CRM's directory could not be asked: {0}")]
    Directory(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Decides every owner of every event in `body` as the worker would, without writing.
pub async fn preview(
    store: &Store,
    directory: &Directory,
    integration: &Integration,
    body: &[u8],
) -> Result<Vec<PreviewedEvent>, PreviewError> {
    let access = if integration.directory.is_some() {
        store.integration_directory(integration.id).await?
    } else {
        None
    };
    let target = LookupTarget {
        directory,
        integration: integration.id,
        source: integration.source,
        access: access.as_ref(),
    };
    let mapping = FieldMapping::for_source(
        integration.source,
        integration.settings.field_mapping.as_ref(),
    );
    let events = sources::split(
        integration.source,
        body,
        &DeliveryHints::default(),
        &mapping,
    )
    .map_err(|err| PreviewError::Payload(err.to_string()))?;
    let mut parsed = Vec::with_capacity(events.len());
    for event in events {
        let owners = sources::owners(integration.source, &event.payload, &mapping)
            .map_err(|err| PreviewError::Payload(err.to_string()))?;
        let resolved = resolve(target, owners).await.map_err(|err| {
            PreviewError::Directory(match err {
                Unresolved::Throttled { message, .. } | Unresolved::Unavailable(message) => message,
            })
        })?;
        let owners = resolved.owners;
        let emails: Vec<Option<NormalizedEmail>> =
            owners.iter().map(OwnerFacts::normalized_email).collect();
        parsed.push((event, owners, emails, resolved.problems, resolved.no_owner));
    }
    let keys: Vec<OwnerKey<'_>> = parsed
        .iter()
        .flat_map(|(_, owners, emails, _, _)| {
            owners.iter().zip(emails).map(|(owner, email)| {
                OwnerKey::of(integration.tenant_id, integration.id, owner, email.as_ref())
            })
        })
        .collect();
    let states = store.owner_states(&keys).await?;
    let mut previews = Vec::with_capacity(parsed.len());
    for (event, owners, emails, problems, no_owner) in &parsed {
        let context = DecisionContext {
            event_type: &event.event_type,
            occurred_at: event.occurred_at,
            roster: false,
        };
        let mut decided = Vec::with_capacity(owners.len());
        for (owner, email) in owners.iter().zip(emails) {
            let key = OwnerKey::of(integration.tenant_id, integration.id, owner, email.as_ref());
            let state = states.current_state(&key)?;
            let decision = match problems.get(&owner.external_id) {
                Some((kind, detail)) => Decision::Issue {
                    kind: *kind,
                    missing: Vec::new(),
                    detail: detail.clone(),
                },
                None => decide(owner, &state, &integration.settings, &context),
            };
            decided.push(OwnerPreview::of(owner, &decision));
        }
        previews.push(PreviewedEvent {
            provider_event_id: event.provider_event_id.clone(),
            event_type: event.event_type.clone(),
            owners: decided,
            no_owner: no_owner.clone(),
        });
    }
    Ok(previews)
}
