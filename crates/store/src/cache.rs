//! Integrations and their secrets, cached in memory on PostgreSQL so that the hot paths (every
//! webhook, every event) do not read them again and again.
//!
//! Invalidation does not wait for a TTL: every change to an integration (publish, settings,
//! rotation, revocation) sends `NOTIFY rollcall_integrations, '<id>'`, which each process's
//! listener turns into an eviction within milliseconds; the process that made the change evicts
//! at once, before answering. The cache is trusted only while the listener is connected: when
//! the connection drops it is emptied and bypassed until the listener is back, so a missed
//! notification can never leave a stale entry behind. On SQLite (one host, reads in-process and
//! cheap) there is no cache: every lookup reads the database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use domain::{DirectoryAccess, IntegrationId, Timestamp};
use sea_orm::sqlx::postgres::PgListener;

use crate::{Backend, Integration, Result, Store};

/// How old a cached entry must be before a caller's doubt makes it read again.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// The notification channel.
pub(crate) const CHANNEL: &str = "rollcall_integrations";

/// An integration with its secrets and when each stops verifying.
#[derive(Debug, Clone)]
pub struct CachedIntegration {
    pub integration: Integration,
    secrets: Vec<(String, Option<Timestamp>)>,
    directory: Option<DirectoryAccess>,
    loaded_at: Instant,
}

impl CachedIntegration {
    /// How to reach the CRM's directory, credentials decrypted.
    #[must_use]
    pub fn directory(&self) -> Option<&DirectoryAccess> {
        self.directory.as_ref()
    }

    /// The secrets that verify at `now`, newest first.
    #[must_use]
    pub fn secrets_at(&self, now: Timestamp) -> Vec<String> {
        self.secrets
            .iter()
            .filter(|(_, expires)| expires.is_none_or(|at| at > now))
            .map(|(secret, _)| secret.clone())
            .collect()
    }
}

#[derive(Debug, Default)]
struct Shared {
    entries: RwLock<HashMap<IntegrationId, Arc<CachedIntegration>>>,
    /// Whether the listener is connected (only then are entries used).
    trusted: AtomicBool,
    /// Bumped by every eviction: a load that started before one is not stored.
    generation: AtomicU64,
}

impl Shared {
    fn evict(&self, id: Option<IntegrationId>) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut entries) = self.entries.write() {
            match id {
                Some(id) => {
                    entries.remove(&id);
                }
                None => entries.clear(),
            }
        }
    }
}

/// The cache; cheap to clone, shared by the ingress, the worker and the internal API of one
/// process.
#[derive(Debug, Clone)]
pub struct IntegrationCache {
    store: Store,
    shared: Option<Arc<Shared>>,
}

impl IntegrationCache {
    /// The integration and its secrets, from memory when possible.
    pub async fn get(&self, id: IntegrationId) -> Result<Option<Arc<CachedIntegration>>> {
        let Some(shared) = &self.shared else {
            return self.load(id).await.map(|loaded| loaded.map(Arc::new));
        };
        if shared.trusted.load(Ordering::SeqCst)
            && let Some(hit) = shared
                .entries
                .read()
                .ok()
                .and_then(|entries| entries.get(&id).cloned())
        {
            return Ok(Some(hit));
        }
        let generation = shared.generation.load(Ordering::SeqCst);
        let Some(loaded) = self.load(id).await?.map(Arc::new) else {
            return Ok(None);
        };
        self.keep(shared, generation, &loaded);
        Ok(Some(loaded))
    }

    /// The integration read again from the database, for a caller that has reason to think
    /// `stale` is out of date (a signature no cached secret verifies may be signed with a
    /// secret rotated in another process a moment ago, before this one heard of it). Answers
    /// `None` when there is nothing newer to read: nothing is cached, or `stale` was read less
    /// than [`REFRESH_INTERVAL`] ago — so that forged requests cannot turn every request into
    /// a database read, or evict what genuine senders use.
    pub async fn refresh(
        &self,
        stale: &CachedIntegration,
    ) -> Result<Option<Arc<CachedIntegration>>> {
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        if stale.loaded_at.elapsed() < REFRESH_INTERVAL {
            return Ok(None);
        }
        let id = stale.integration.id;
        let generation = shared.generation.load(Ordering::SeqCst);
        let Some(loaded) = self.load(id).await?.map(Arc::new) else {
            self.invalidate(id);
            return Ok(None);
        };
        self.keep(shared, generation, &loaded);
        Ok(Some(loaded))
    }

    fn keep(&self, shared: &Shared, generation: u64, loaded: &Arc<CachedIntegration>) {
        if shared.trusted.load(Ordering::SeqCst)
            && shared.generation.load(Ordering::SeqCst) == generation
            && let Ok(mut entries) = shared.entries.write()
        {
            entries.insert(loaded.integration.id, Arc::clone(loaded));
        }
    }

    /// Forgets an integration in this process (its change is also announced to the others).
    pub fn invalidate(&self, id: IntegrationId) {
        if let Some(shared) = &self.shared {
            shared.evict(Some(id));
        }
    }

    async fn load(&self, id: IntegrationId) -> Result<Option<CachedIntegration>> {
        let Some(integration) = self.store.integration(id).await? else {
            return Ok(None);
        };
        let secrets = self
            .store
            .integration_secrets_with_expiry(id, Timestamp::now())
            .await?;
        let directory = if integration.directory.is_some() {
            self.store.integration_directory(id).await?
        } else {
            None
        };
        Ok(Some(CachedIntegration {
            integration,
            secrets,
            directory,
            loaded_at: Instant::now(),
        }))
    }
}

async fn listen(store: Store, shared: Arc<Shared>, shutdown: tokio_util::sync::CancellationToken) {
    let mut failures: u32 = 0;
    while !shutdown.is_cancelled() {
        let pool = store.db().get_postgres_connection_pool().clone();
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sea_orm::sqlx::Error>(listener)
        };
        match listening.await {
            Ok(mut listener) => {
                failures = 0;
                // Anything changed while nobody listened is forgotten before entries are used.
                shared.evict(None);
                shared.trusted.store(true, Ordering::SeqCst);
                loop {
                    let next = tokio::select! {
                        () = shutdown.cancelled() => break,
                        next = listener.try_recv() => next,
                    };
                    match next {
                        Ok(Some(notification)) => {
                            shared.evict(notification.payload().parse().ok().or(None));
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
                shared.trusted.store(false, Ordering::SeqCst);
                shared.evict(None);
            }
            Err(err) => {
                failures = failures.saturating_add(1);
                if failures == 1 {
                    tracing::warn!(error = %err, "integration cache: cannot listen for changes; reading the database instead");
                }
            }
        }
        let pause = Duration::from_millis(200u64 << failures.min(5));
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}

impl Store {
    /// The integration cache for this process. On PostgreSQL it starts a listener for change
    /// notifications that runs until `shutdown`.
    #[must_use]
    pub fn integration_cache(
        &self,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> IntegrationCache {
        let shared = match self.backend() {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let shared = Arc::new(Shared::default());
                tokio::spawn(listen(self.clone(), Arc::clone(&shared), shutdown));
                Some(shared)
            }
        };
        IntegrationCache {
            store: self.clone(),
            shared,
        }
    }
}
