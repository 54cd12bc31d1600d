use std::time::Duration;

use crm_fakes::{Canned, CrmFake, FakeCrm, FakeUser};
use domain::{IntegrationId, OwnerFacts, OwnerStatus, Source};
use rollcall_directory::LookupError;

use crate::common::{Lookup, Subject, directory};

#[tokio::test]
async fn user_maps_every_field() {
    let fake = CrmFake::start(FakeCrm::Pipedrive).await;
    fake.add_user(
        "1234",
        FakeUser {
            avatar_url: Some("https://cdn.pipedrive.example/profile/1234.png".to_owned()),
            ..FakeUser::new("ada@example.com", "Ada King", "Lovelace")
        },
    );
    let owner = directory()
        .owner(
            IntegrationId::new(),
            Source::Pipedrive,
            Some(&fake.access()),
            "1234",
        )
        .await
        .unwrap();
    assert_eq!(
        owner,
        OwnerFacts {
            external_id: "1234".to_owned(),
            email: Some("ada@example.com".to_owned()),
            // `name` splits at its last space.
            first_name: Some("Ada King".to_owned()),
            last_name: Some("Lovelace".to_owned()),
            avatar_url: Some("https://cdn.pipedrive.example/profile/1234.png".to_owned()),
            status: Some(OwnerStatus::Active),
            ..OwnerFacts::default()
        }
    );
    assert_eq!(fake.requests()[0].path, "/api/v1/users/1234");
}

#[tokio::test]
async fn inactive_and_deleted_users() {
    let fake = CrmFake::start(FakeCrm::Pipedrive).await;
    fake.add_user(
        "1",
        FakeUser {
            active: false,
            ..FakeUser::new("a@example.com", "A", "B")
        },
    );
    fake.add_user(
        "2",
        FakeUser {
            active: false,
            deleted: true,
            ..FakeUser::new("c@example.com", "C", "D")
        },
    );
    let access = fake.access();
    let directory = directory();
    let integration = IntegrationId::new();
    let inactive = directory
        .owner(integration, Source::Pipedrive, Some(&access), "1")
        .await
        .unwrap();
    assert_eq!(inactive.status, Some(OwnerStatus::Inactive));
    let deleted = directory
        .owner(integration, Source::Pipedrive, Some(&access), "2")
        .await
        .unwrap();
    assert_eq!(deleted.status, Some(OwnerStatus::Deleted));
}

#[tokio::test]
async fn a_base_url_with_the_api_path_works() {
    let fake = CrmFake::start(FakeCrm::Pipedrive).await;
    fake.add_user("7", FakeUser::new("a@example.com", "A", "B"));
    let mut access = fake.access();
    access.base_url = Some(format!("{}/api/v1/", fake.origin()));
    directory()
        .owner(IntegrationId::new(), Source::Pipedrive, Some(&access), "7")
        .await
        .unwrap();
    assert_eq!(fake.hits("/api/v1/users/7"), 1);
}

#[tokio::test]
async fn a_429_without_retry_after_waits_the_default() {
    let fake = CrmFake::start(FakeCrm::Pipedrive).await;
    fake.respond("5", Canned::Throttled);
    let err = directory()
        .owner(
            IntegrationId::new(),
            Source::Pipedrive,
            Some(&fake.access()),
            "5",
        )
        .await
        .unwrap_err();
    let LookupError::RateLimited {
        retry_after,
        message,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(retry_after, Duration::from_secs(30));
    assert!(message.contains("Request over limit"), "{message}");
}

#[tokio::test]
async fn records_are_not_looked_up() {
    let fake = CrmFake::start(FakeCrm::Pipedrive).await;
    let err = directory()
        .record_owners(
            IntegrationId::new(),
            Source::Pipedrive,
            Some(&fake.access()),
            "deal",
            "1",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LookupError::Refused(_)), "{err:?}");
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn user_failures() {
    Subject::start(FakeCrm::Pipedrive, Lookup::Owner)
        .await
        .standard_failures()
        .await;
}
