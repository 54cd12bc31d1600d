//! Completing an event's owners from the CRM's directory: owners named by id get their
//! details, records get their owners. What the directory refuses or does not know becomes a
//! provisioning issue for that owner; what it cannot answer now (rate limit, timeout, 5xx)
//! fails the event transiently, so the queue retries it later.

use std::collections::HashMap;
use std::time::Duration;

use directory::{Directory, LookupError};
use domain::{DirectoryAccess, IntegrationId, IssueKind, OwnerFacts, Source};
use sources::EventOwners;

/// An event's owners, ready to decide about.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResolvedOwners {
    pub(crate) owners: Vec<OwnerFacts>,
    /// Owners the directory could not complete, by external id: each becomes an issue.
    pub(crate) problems: HashMap<String, (IssueKind, String)>,
    /// Why the event names no owner, when it names none.
    pub(crate) no_owner: Option<String>,
}

/// Why the directory could not be asked now.
#[derive(Debug, Clone)]
pub(crate) enum Unresolved {
    /// Ask again no sooner than `retry_after`.
    Throttled {
        message: String,
        retry_after: Duration,
    },
    Unavailable(String),
}

/// Where lookups go for one event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LookupTarget<'a> {
    pub(crate) directory: &'a Directory,
    pub(crate) integration: IntegrationId,
    pub(crate) source: Source,
    pub(crate) access: Option<&'a DirectoryAccess>,
}

/// The issue an answer means, or the reason to retry.
fn classify(err: LookupError) -> Result<(IssueKind, String), Unresolved> {
    match err {
        LookupError::NotFound(message) => Ok((IssueKind::OwnerNotFound, message)),
        LookupError::Refused(message) => Ok((IssueKind::DirectoryRefused, message)),
        LookupError::RateLimited {
            retry_after,
            message,
        } => Err(Unresolved::Throttled {
            message,
            retry_after,
        }),
        LookupError::Unavailable(message) => Err(Unresolved::Unavailable(message)),
    }
}

/// The payload's hint completed by the directory's answer: the directory is the CRM's own
/// record of the person, so its fields win; the hint fills what it leaves out.
fn merged(hint: OwnerFacts, found: OwnerFacts) -> OwnerFacts {
    let employee_ids = if found.employee_ids.is_empty() {
        hint.employee_ids
    } else {
        found.employee_ids
    };
    OwnerFacts {
        external_id: hint.external_id,
        email: found.email.or(hint.email),
        first_name: found.first_name.or(hint.first_name),
        last_name: found.last_name.or(hint.last_name),
        avatar_url: found.avatar_url.or(hint.avatar_url),
        status: found.status.or(hint.status),
        member_type: found.member_type.or(hint.member_type),
        employee_ids,
        title: found.title.or(hint.title),
        department: found.department.or(hint.department),
        location: found.location.or(hint.location),
    }
}

pub(crate) async fn resolve(
    target: LookupTarget<'_>,
    owners: EventOwners,
) -> Result<ResolvedOwners, Unresolved> {
    let mut resolved = ResolvedOwners::default();
    match owners {
        EventOwners::Named(owners) => resolved.owners = owners,
        EventOwners::NoOwner(reason) => resolved.no_owner = Some(reason),
        EventOwners::ById(hints) => {
            for hint in hints {
                let answer = target
                    .directory
                    .owner(
                        target.integration,
                        target.source,
                        target.access,
                        &hint.external_id,
                    )
                    .await;
                match answer {
                    Ok(found) => resolved.owners.push(merged(hint, found)),
                    Err(err) => {
                        let problem = classify(err)?;
                        resolved.problems.insert(hint.external_id.clone(), problem);
                        resolved.owners.push(hint);
                    }
                }
            }
        }
        EventOwners::Records { object, ids } => {
            for id in ids {
                let answer = target
                    .directory
                    .record_owners(
                        target.integration,
                        target.source,
                        target.access,
                        &object,
                        &id,
                    )
                    .await;
                match answer {
                    Ok(owners) => {
                        for owner in owners {
                            if !resolved
                                .owners
                                .iter()
                                .any(|known| known.external_id == owner.external_id)
                            {
                                resolved.owners.push(owner);
                            }
                        }
                    }
                    // The record is gone (deleted since the webhook was sent): nobody to
                    // provision for it.
                    Err(LookupError::NotFound(message)) => {
                        resolved.no_owner.get_or_insert(message);
                    }
                    Err(err) => {
                        let problem = classify(err)?;
                        // No owner is known: the issue is filed under the record, so the
                        // operator sees which record could not be read and why.
                        let key = format!("{object}/{id}");
                        resolved.problems.insert(key.clone(), problem);
                        resolved.owners.push(OwnerFacts {
                            external_id: key,
                            ..OwnerFacts::default()
                        });
                    }
                }
            }
            if resolved.owners.is_empty() && resolved.no_owner.is_none() {
                resolved.no_owner = Some(format!("the {object} has no owner or assigned user"));
            }
        }
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_wins_and_the_hint_fills_gaps() {
        let hint = OwnerFacts {
            external_id: "178".to_owned(),
            first_name: Some("J".to_owned()),
            employee_ids: vec!["jdoe".to_owned()],
            ..OwnerFacts::default()
        };
        let found = OwnerFacts {
            external_id: "ignored".to_owned(),
            email: Some("jane@example.com".to_owned()),
            first_name: Some("Jane".to_owned()),
            ..OwnerFacts::default()
        };
        let owner = merged(hint, found);
        assert_eq!(owner.external_id, "178");
        assert_eq!(owner.first_name.as_deref(), Some("Jane"));
        assert_eq!(owner.email.as_deref(), Some("jane@example.com"));
        assert_eq!(owner.employee_ids, ["jdoe"]);
    }
}
