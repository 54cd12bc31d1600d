//! Each integration's verification scheme, parsed from its stored JSON once per loaded version
//! of the integration rather than for every webhook.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use domain::IntegrationId;
use store::CachedIntegration;
use verifier::SchemeConfig;

use crate::error::IngressError;

/// A parsed scheme and the loaded integration it was parsed from.
type Parsed = (Weak<CachedIntegration>, Arc<SchemeConfig>);

/// Parsed schemes, each beside the loaded integration it was parsed from: a reloaded
/// integration (a new `Arc`) is parsed again, so a changed scheme takes effect with the reload.
#[derive(Debug, Default)]
pub(crate) struct Schemes {
    parsed: Mutex<HashMap<IntegrationId, Parsed>>,
}

impl Schemes {
    /// The scheme of `cached`. One this build does not know fails closed.
    pub(crate) fn of(
        &self,
        cached: &Arc<CachedIntegration>,
    ) -> Result<Arc<SchemeConfig>, IngressError> {
        let id = cached.integration.id;
        let loaded = Arc::downgrade(cached);
        if let Some((from, scheme)) = self.lock().get(&id)
            && from.ptr_eq(&loaded)
        {
            return Ok(Arc::clone(scheme));
        }
        let scheme: SchemeConfig = serde_json::from_value(cached.integration.verification.clone())
            .map_err(|_| {
                IngressError::Unauthorized(
                    "the integration's verification scheme is not supported".to_owned(),
                )
            })?;
        let scheme = Arc::new(scheme);
        self.lock().insert(id, (loaded, Arc::clone(&scheme)));
        Ok(scheme)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IntegrationId, Parsed>> {
        // The map holds no invariant a panic could break halfway.
        self.parsed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
