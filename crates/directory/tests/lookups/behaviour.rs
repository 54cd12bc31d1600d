//! What every CRM shares: the cache, rate limiting per integration, `Retry-After` forms, and
//! sources without a directory.

use std::time::Duration;

use crm_fakes::{Canned, CrmFake, FakeCrm, FakeUser};
use domain::{IntegrationId, Source};
use rollcall_directory::LookupError;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::common::{directory, directory_with, eventually};

async fn hubspot() -> CrmFake {
    let fake = CrmFake::start(FakeCrm::Hubspot).await;
    fake.add_user("101", FakeUser::new("ada@example.com", "Ada", "Lovelace"));
    fake
}

#[tokio::test]
async fn found_and_not_found_answers_are_reused_within_the_ttl() {
    let fake = hubspot().await;
    let access = fake.access();
    let directory = directory();
    let integration = IntegrationId::new();
    for _ in 0..3 {
        directory
            .owner(integration, Source::Hubspot, Some(&access), "101")
            .await
            .unwrap();
    }
    assert_eq!(fake.hits("/crm/v3/owners/101"), 1);

    let first = directory
        .owner(integration, Source::Hubspot, Some(&access), "999")
        .await
        .unwrap_err();
    let asked = fake.hits("/crm/v3/owners/999");
    let second = directory
        .owner(integration, Source::Hubspot, Some(&access), "999")
        .await
        .unwrap_err();
    assert_eq!(first, second);
    assert!(matches!(second, LookupError::NotFound(_)));
    assert_eq!(
        fake.hits("/crm/v3/owners/999"),
        asked,
        "not found was asked again"
    );

    // A clone shares the cache.
    directory
        .clone()
        .owner(integration, Source::Hubspot, Some(&access), "101")
        .await
        .unwrap();
    assert_eq!(fake.hits("/crm/v3/owners/101"), 1);
}

#[tokio::test]
async fn answers_are_asked_again_after_the_ttl() {
    let fake = hubspot().await;
    let access = fake.access();
    let directory = directory_with(Duration::from_secs(5), Duration::from_millis(200));
    let integration = IntegrationId::new();
    directory
        .owner(integration, Source::Hubspot, Some(&access), "101")
        .await
        .unwrap();
    assert_eq!(fake.hits("/crm/v3/owners/101"), 1);
    eventually("the cached owner to expire", || async {
        directory
            .owner(integration, Source::Hubspot, Some(&access), "101")
            .await
            .unwrap();
        fake.hits("/crm/v3/owners/101") == 2
    })
    .await;
}

#[tokio::test]
async fn the_cache_is_per_integration() {
    let fake = hubspot().await;
    let access = fake.access();
    let directory = directory();
    for _ in 0..2 {
        directory
            .owner(IntegrationId::new(), Source::Hubspot, Some(&access), "101")
            .await
            .unwrap();
    }
    assert_eq!(fake.hits("/crm/v3/owners/101"), 2);
}

#[tokio::test]
async fn refusals_and_transient_failures_are_not_cached() {
    let fake = hubspot().await;
    let access = fake.access();
    let directory = directory();
    let integration = IntegrationId::new();
    for canned in [Canned::ServerError, Canned::Unauthorized, Canned::Malformed] {
        fake.respond("101", canned.clone());
        let err = directory
            .owner(integration, Source::Hubspot, Some(&access), "101")
            .await
            .unwrap_err();
        assert!(
            matches!(err, LookupError::Unavailable(_) | LookupError::Refused(_)),
            "{canned:?}: {err:?}"
        );
        fake.clear_responses();
    }
    let asked = fake.hits("/crm/v3/owners/101");
    let owner = directory
        .owner(integration, Source::Hubspot, Some(&access), "101")
        .await
        .unwrap();
    assert_eq!(owner.external_id, "101");
    assert_eq!(fake.hits("/crm/v3/owners/101"), asked + 1);
}

#[tokio::test]
async fn an_http_date_retry_after_is_honoured() {
    let fake = CrmFake::start(FakeCrm::Pipedrive).await;
    let moment = OffsetDateTime::now_utc() + time::Duration::seconds(3);
    let http_date = moment
        .format(format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        ))
        .unwrap();
    fake.respond(
        "5",
        Canned::RateLimitedWith {
            retry_after: Some(http_date),
        },
    );
    let err = directory()
        .owner(
            IntegrationId::new(),
            Source::Pipedrive,
            Some(&fake.access()),
            "5",
        )
        .await
        .unwrap_err();
    let LookupError::RateLimited { retry_after, .. } = err else {
        panic!("{err:?}")
    };
    assert!(
        retry_after >= Duration::from_secs(1) && retry_after <= Duration::from_secs(4),
        "{retry_after:?}"
    );
}

#[tokio::test]
async fn an_unreadable_retry_after_waits_the_default() {
    let fake = CrmFake::start(FakeCrm::Connectwise).await;
    fake.respond(
        "5",
        Canned::RateLimitedWith {
            retry_after: Some("soon-ish".to_owned()),
        },
    );
    let err = directory()
        .owner(
            IntegrationId::new(),
            Source::Connectwise,
            Some(&fake.access()),
            "5",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LookupError::RateLimited { retry_after, .. } if *retry_after == Duration::from_secs(30)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_rate_limit_never_hammers_even_when_many_ask() {
    let fake = hubspot().await;
    let access = fake.access();
    let directory = directory();
    let integration = IntegrationId::new();
    fake.respond(
        "300",
        Canned::RateLimited {
            retry_after_secs: 30,
        },
    );
    let err = directory
        .owner(integration, Source::Hubspot, Some(&access), "300")
        .await
        .unwrap_err();
    assert!(matches!(err, LookupError::RateLimited { .. }), "{err:?}");
    let count = fake.request_count();
    let asks = (0..50).map(|n| {
        let directory = directory.clone();
        let access = access.clone();
        async move {
            directory
                .owner(
                    integration,
                    Source::Hubspot,
                    Some(&access),
                    &(1_000 + n).to_string(),
                )
                .await
        }
    });
    for answer in futures_join(asks).await {
        let Err(LookupError::RateLimited { retry_after, .. }) = answer else {
            panic!("{answer:?}")
        };
        assert!(retry_after <= Duration::from_secs(30) && retry_after > Duration::from_secs(25));
    }
    assert_eq!(fake.request_count(), count);
}

/// Runs every future on its own task, at once, and collects their outputs in order.
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}

#[tokio::test]
async fn sources_without_a_directory_are_refused() {
    let directory = directory();
    for source in [
        Source::HousecallPro,
        Source::Freshteam,
        Source::Rollcall,
        Source::Json,
    ] {
        let err = directory
            .owner(IntegrationId::new(), source, None, "1")
            .await
            .unwrap_err();
        assert_eq!(
            err,
            LookupError::Refused(format!(
                "{source} has no directory lookup; the payload must carry the owner"
            ))
        );
        let err = directory
            .record_owners(IntegrationId::new(), source, None, "deal", "1")
            .await
            .unwrap_err();
        assert!(matches!(err, LookupError::Refused(_)), "{err:?}");
    }
}

#[tokio::test]
async fn every_fake_gives_what_its_directory_needs() {
    for kind in FakeCrm::ALL {
        let fake = CrmFake::start(*kind).await;
        rollcall_directory::check_access(kind.source(), &fake.access()).unwrap();
        let credentials = fake.credentials();
        let names: Vec<&str> = credentials.keys().map(String::as_str).collect();
        let mut needed = rollcall_directory::credential_names(kind.source()).to_vec();
        needed.sort_unstable();
        assert_eq!(names, needed, "{kind:?}");
    }
}
