use std::time::Duration;

use crm_fakes::{Canned, CrmFake, FakeCrm, FakeUser};
use domain::{IntegrationId, OwnerFacts, OwnerStatus, Source};
use rollcall_directory::LookupError;

use crate::common::{Lookup, Subject, directory};

#[tokio::test]
async fn owner_maps_every_field() {
    let fake = CrmFake::start(FakeCrm::Hubspot).await;
    fake.add_user(
        "6166860",
        FakeUser {
            department: Some("West Coast Sales".to_owned()),
            ..FakeUser::new("jsmith@example.com", "John", "Smith")
        },
    );
    let owner = directory()
        .owner(
            IntegrationId::new(),
            Source::Hubspot,
            Some(&fake.access()),
            "6166860",
        )
        .await
        .unwrap();
    assert_eq!(
        owner,
        OwnerFacts {
            external_id: "6166860".to_owned(),
            email: Some("jsmith@example.com".to_owned()),
            first_name: Some("John".to_owned()),
            last_name: Some("Smith".to_owned()),
            avatar_url: None,
            status: Some(OwnerStatus::Active),
            member_type: Some("PERSON".to_owned()),
            employee_ids: Vec::new(),
            title: None,
            department: Some("West Coast Sales".to_owned()),
            location: None,
        }
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/crm/v3/owners/6166860");
}

#[tokio::test]
async fn an_archived_owner_is_inactive() {
    let fake = CrmFake::start(FakeCrm::Hubspot).await;
    fake.add_user(
        "102",
        FakeUser {
            active: false,
            ..FakeUser::new("gone@example.com", "Gone", "Away")
        },
    );
    let owner = directory()
        .owner(
            IntegrationId::new(),
            Source::Hubspot,
            Some(&fake.access()),
            "102",
        )
        .await
        .unwrap();
    assert_eq!(owner.status, Some(OwnerStatus::Inactive));
    assert_eq!(owner.email.as_deref(), Some("gone@example.com"));
    let queries: Vec<Option<String>> = fake.requests().into_iter().map(|r| r.query).collect();
    assert_eq!(queries, vec![None, Some("archived=true".to_owned())]);
}

#[tokio::test]
async fn not_found_says_so_in_one_line() {
    let fake = CrmFake::start(FakeCrm::Hubspot).await;
    let err = directory()
        .owner(
            IntegrationId::new(),
            Source::Hubspot,
            Some(&fake.access()),
            "123",
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LookupError::NotFound("HubSpot Owners API: owner 123 not found (404)".to_owned())
    );
}

#[tokio::test]
async fn a_deal_is_owned_by_its_hubspot_owner() {
    let fake = CrmFake::start(FakeCrm::Hubspot).await;
    fake.add_user("101", FakeUser::new("ada@example.com", "Ada", "Lovelace"));
    fake.add_record("deals", "9001", vec!["101".to_owned()]);
    fake.add_record("deals", "9002", vec!["101".to_owned()]);
    fake.add_record("deals", "9003", Vec::new());
    let directory = directory();
    let integration = IntegrationId::new();
    let access = fake.access();
    for (object, id) in [
        ("deals", "9001"),
        ("deal", "9002"),
        ("DEALS", "9001"),
        ("0-3", "9002"),
    ] {
        let owners = directory
            .record_owners(integration, Source::Hubspot, Some(&access), object, id)
            .await
            .unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].external_id, "101");
        assert_eq!(owners[0].first_name.as_deref(), Some("Ada"));
    }
    // The owner was asked about once: record lookups share the owner cache.
    assert_eq!(fake.hits("/crm/v3/owners/101"), 1);
    let record = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/crm/v3/objects/deals/9001")
        .unwrap();
    assert_eq!(record.query.as_deref(), Some("properties=hubspot_owner_id"));

    let owners = directory
        .record_owners(integration, Source::Hubspot, Some(&access), "deals", "9003")
        .await
        .unwrap();
    assert!(owners.is_empty(), "a deal without an owner has no owners");
}

#[tokio::test]
async fn unsupported_objects_are_refused_without_a_request() {
    let fake = CrmFake::start(FakeCrm::Hubspot).await;
    let err = directory()
        .record_owners(
            IntegrationId::new(),
            Source::Hubspot,
            Some(&fake.access()),
            "line_items/../owners",
            "1",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LookupError::Refused(_)), "{err:?}");
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn hubspot_rate_limit_answers_set_the_wait() {
    let fake = CrmFake::start(FakeCrm::Hubspot).await;
    let access = fake.access();
    // The daily limit (policyName DAILY, no Retry-After) waits long.
    fake.respond("201", Canned::Throttled);
    let err = directory()
        .owner(IntegrationId::new(), Source::Hubspot, Some(&access), "201")
        .await
        .unwrap_err();
    let LookupError::RateLimited {
        retry_after,
        message,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(retry_after, Duration::from_secs(15 * 60));
    assert!(message.contains("daily limit"), "{message}");
    // A burst limit without Retry-After waits HubSpot's ten-second window.
    fake.respond("202", Canned::RateLimitedWith { retry_after: None });
    let err = directory()
        .owner(IntegrationId::new(), Source::Hubspot, Some(&access), "202")
        .await
        .unwrap_err();
    assert!(
        matches!(err, LookupError::RateLimited { retry_after, .. } if retry_after == Duration::from_secs(10)),
        "{err:?}"
    );
}

#[tokio::test]
async fn owner_failures() {
    Subject::start(FakeCrm::Hubspot, Lookup::Owner)
        .await
        .standard_failures()
        .await;
}

#[tokio::test]
async fn deal_failures() {
    Subject::start(FakeCrm::Hubspot, Lookup::Record("deals"))
        .await
        .standard_failures()
        .await;
}
