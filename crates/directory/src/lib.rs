//! CRM directories: who an owner id or a record is, asked of the CRM's own API (HubSpot
//! Owners, Salesforce User sObject, Pipedrive users, ConnectWise members, Jobber GraphQL,
//! Zoho CRM records and users), with the integration's credentials, a per-integration cache
//! with a TTL, request timeouts, and `429`/`Retry-After` honoured.
//!
//! Owns HTTP to CRMs and the meaning of their answers. Does not decide anything about users
//! (the resolver does), parse webhooks (`sources` does) or store credentials (`store` does).
//!
//! Behaviour shared by every CRM:
//! - **Cache**: per (integration, source, kind, id), found and not-found answers alike, for
//!   [`DirectoryOptions::cache_ttl`]; at most [`MAX_CACHE_ENTRIES`] entries (expired, then oldest
//!   entries go first). Refusals, rate limits and transient failures are never cached.
//! - **Rate limits**: after a CRM answers "slow down" for an integration (`429`, or the CRM's own
//!   documented quota answer), every lookup for that integration that needs the CRM fails at once
//!   with [`LookupError::RateLimited`] and the remaining wait, without a request, until the
//!   `Retry-After` moment has passed. Other integrations are not affected.
//! - **Ids** come from webhooks: they are checked before they go into a URL (digits for numeric
//!   CRMs, the CRM's id alphabet otherwise) and percent-encoded as single path segments, so no id
//!   can change the path or the query. Jobber ids travel as GraphQL variables.
//! - **Access** an operator saves is checked by [`check_access`] (credential names per source:
//!   [`credential_names`]; base URL rule: [`requirements`]).
//! - **Credentials** go only into request headers (marked sensitive); messages, logs and
//!   `Debug` output never carry them, and a CRM message that echoes one is redacted.

mod access;
mod cache;
mod call;
mod connectwise;
mod hubspot;
mod jobber;
mod pipedrive;
mod salesforce;
mod zoho;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use domain::{DirectoryAccess, IntegrationId, OwnerFacts, Source};

pub use crate::access::{AccessProblem, BaseUrl, check_access, credential_names, requirements};
use crate::cache::{Cache, CacheKey, Cached};
use crate::call::Call;

/// The most answers kept in the cache at once.
pub const MAX_CACHE_ENTRIES: usize = 10_000;

/// How lookups behave.
#[derive(Debug, Clone)]
pub struct DirectoryOptions {
    /// Each request to a CRM gives up after this long (a transient failure).
    pub timeout: Duration,
    /// How long an answer (found or not found) is reused for the same integration and id.
    pub cache_ttl: Duration,
}

impl Default for DirectoryOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            cache_ttl: Duration::from_secs(300),
        }
    }
}

/// Why a lookup gave no owner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The CRM says the owner or record does not exist: a provisioning issue.
    #[error("{0}")]
    NotFound(String),
    /// The CRM refused the credentials (401/403), or the integration has none: a provisioning
    /// issue until an operator fixes them.
    #[error("{0}")]
    Refused(String),
    /// The CRM asked rollcall to slow down: retry no sooner than `retry_after`.
    #[error("{message}")]
    RateLimited {
        retry_after: Duration,
        message: String,
    },
    /// Timeout, connection failure, 5xx or an answer that is not what the API documents:
    /// transient, retried.
    #[error("{0}")]
    Unavailable(String),
}

/// Looks owners up in CRM directories. Cheap to clone (shared client and cache).
#[derive(Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

struct Inner {
    options: DirectoryOptions,
    /// One pooled client for every CRM; `Err` keeps why it could not be built (every lookup
    /// then fails as unavailable rather than panicking at start-up).
    client: Result<reqwest::Client, String>,
    cache: Mutex<Cache>,
    /// Integrations a CRM asked to slow down, and until when.
    slow_down: Mutex<HashMap<IntegrationId, Instant>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("options", &self.inner.options)
            .field("cached", &lock(&self.inner.cache).len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Directory {
    #[must_use]
    pub fn new(options: DirectoryOptions) -> Self {
        // TLS to CRMs uses ring, as the rest of rollcall (a no-op when a provider is installed).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            // A CRM API does not redirect; following one could carry credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rollcall-directory/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("could not build the HTTP client: {err}"));
        Self {
            inner: Arc::new(Inner {
                cache: Mutex::new(Cache::new(MAX_CACHE_ENTRIES)),
                slow_down: Mutex::new(HashMap::new()),
                options,
                client,
            }),
        }
    }

    /// The owner with the CRM's id `external_id`.
    pub async fn owner(
        &self,
        integration: IntegrationId,
        source: Source,
        access: Option<&DirectoryAccess>,
        external_id: &str,
    ) -> Result<OwnerFacts, LookupError> {
        let key = CacheKey::new(integration, source, "owner", external_id);
        if let Some(cached) = self.cached(&key) {
            return cached.into_owner();
        }
        let answer = self
            .fetch_owner(integration, source, access, external_id)
            .await;
        match &answer {
            Ok(owner) => self.remember(key, Cached::Owner(Box::new(owner.clone()))),
            Err(LookupError::NotFound(message)) => {
                self.remember(key, Cached::NotFound(message.clone()));
            }
            Err(_) => {}
        }
        answer
    }

    /// The owners of record `id` of type `object` (the CRM's own name for it, as `sources`
    /// gives it): its owner, or for a job or visit every assigned worker.
    pub async fn record_owners(
        &self,
        integration: IntegrationId,
        source: Source,
        access: Option<&DirectoryAccess>,
        object: &str,
        id: &str,
    ) -> Result<Vec<OwnerFacts>, LookupError> {
        let kind = format!("record:{object}");
        let key = CacheKey::new(integration, source, &kind, id);
        if let Some(cached) = self.cached(&key) {
            return cached.into_owners();
        }
        let answer = self
            .fetch_record_owners(integration, source, access, object, id)
            .await;
        match &answer {
            Ok(owners) => self.remember(key, Cached::Owners(owners.clone())),
            Err(LookupError::NotFound(message)) => {
                self.remember(key, Cached::NotFound(message.clone()));
            }
            Err(_) => {}
        }
        answer
    }

    async fn fetch_owner(
        &self,
        integration: IntegrationId,
        source: Source,
        access: Option<&DirectoryAccess>,
        external_id: &str,
    ) -> Result<OwnerFacts, LookupError> {
        match source {
            Source::Hubspot => {
                let call = self.call(integration, "HubSpot Owners API", access)?;
                hubspot::owner(&call, external_id).await
            }
            Source::SalesforceOutbound => {
                let call = self.call(integration, "Salesforce User sObject API", access)?;
                salesforce::owner(&call, external_id).await
            }
            Source::Pipedrive => {
                let call = self.call(integration, "Pipedrive Users API", access)?;
                pipedrive::owner(&call, external_id).await
            }
            Source::Connectwise => {
                let call = self.call(integration, "ConnectWise members API", access)?;
                connectwise::owner(&call, external_id).await
            }
            Source::Zoho => {
                let call = self.call(integration, "Zoho CRM Users API", access)?;
                zoho::owner(&call, external_id).await
            }
            Source::Jobber => Err(LookupError::Refused(
                "Jobber has no owner lookup by id; rollcall asks Jobber who is assigned to a visit or job, so the payload must name the visit or job".to_owned(),
            )),
            Source::HousecallPro | Source::Freshteam | Source::Rollcall | Source::Json => {
                Err(no_directory(source))
            }
        }
    }

    async fn fetch_record_owners(
        &self,
        integration: IntegrationId,
        source: Source,
        access: Option<&DirectoryAccess>,
        object: &str,
        id: &str,
    ) -> Result<Vec<OwnerFacts>, LookupError> {
        match source {
            Source::Hubspot => {
                let object = hubspot::object_type(object)?;
                let call = self.call(integration, "HubSpot CRM objects API", access)?;
                let Some(owner_id) = hubspot::record_owner_id(&call, object, id).await? else {
                    return Ok(Vec::new());
                };
                let owner = self.owner(integration, source, access, &owner_id).await?;
                Ok(vec![owner])
            }
            Source::SalesforceOutbound => {
                let call = self.call(integration, "Salesforce sObject API", access)?;
                let Some(owner_id) = salesforce::record_owner_id(&call, object, id).await? else {
                    return Ok(Vec::new());
                };
                let owner = self.owner(integration, source, access, &owner_id).await?;
                Ok(vec![owner])
            }
            Source::Jobber => {
                let call = self.call(integration, "Jobber GraphQL API", access)?;
                jobber::record_owners(&call, object, id).await
            }
            Source::Zoho => {
                let call = self.call(integration, "Zoho CRM records API", access)?;
                zoho::record_owners(&call, object, id).await
            }
            Source::Pipedrive | Source::Connectwise => Err(LookupError::Refused(format!(
                "{} directory lookups are by owner id only; records of type {:?} cannot be looked up, so the payload must carry the owner's id",
                call::crm_name(source),
                call::shorten(object),
            ))),
            Source::HousecallPro | Source::Freshteam | Source::Rollcall | Source::Json => {
                Err(no_directory(source))
            }
        }
    }

    fn call<'a>(
        &'a self,
        integration: IntegrationId,
        api: &'static str,
        access: Option<&'a DirectoryAccess>,
    ) -> Result<Call<'a>, LookupError> {
        Call::new(self, integration, api, access)
    }

    fn cached(&self, key: &CacheKey) -> Option<Cached> {
        lock(&self.inner.cache).get(key, Instant::now())
    }

    fn remember(&self, key: CacheKey, value: Cached) {
        let expires = Instant::now() + self.inner.options.cache_ttl;
        lock(&self.inner.cache).insert(key, value, expires, Instant::now());
    }

    /// How long `integration` must still wait before its CRM may be asked again.
    fn slowed_down(&self, integration: IntegrationId) -> Option<Duration> {
        let now = Instant::now();
        let mut slow_down = lock(&self.inner.slow_down);
        match slow_down.get(&integration) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                slow_down.remove(&integration);
                None
            }
            None => None,
        }
    }

    /// Remembers that `integration`'s CRM asked for `retry_after` of quiet.
    fn slow_down(&self, integration: IntegrationId, retry_after: Duration) {
        let now = Instant::now();
        let until = now + retry_after;
        let mut slow_down = lock(&self.inner.slow_down);
        slow_down.retain(|_, until| *until > now);
        let entry = slow_down.entry(integration).or_insert(until);
        if *entry < until {
            *entry = until;
        }
    }
}

fn no_directory(source: Source) -> LookupError {
    LookupError::Refused(format!(
        "{source} has no directory lookup; the payload must carry the owner"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_client_internals() {
        let directory = Directory::new(DirectoryOptions::default());
        let shown = format!("{directory:?}");
        assert!(shown.starts_with("Directory"), "{shown}");
        assert!(shown.contains("cache_ttl"), "{shown}");
    }
}
