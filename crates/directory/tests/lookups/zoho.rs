use std::time::Duration;

use crm_fakes::{Canned, CrmFake, FakeCrm, FakeUser};
use domain::{IntegrationId, OwnerFacts, OwnerStatus, Source};
use rollcall_directory::LookupError;

use crate::common::{Lookup, Subject, directory};

const USER: &str = "1386586000000078001";
const DEAL: &str = "1386586000002572002";

fn user() -> FakeUser {
    FakeUser {
        title: Some("Senior Manager".to_owned()),
        member_type: Some("Administrator".to_owned()),
        location: Some("Chennai".to_owned()),
        ..FakeUser::new("bruce@zylker.example", "Bruce", "Wills")
    }
}

#[tokio::test]
async fn user_maps_every_field() {
    let fake = CrmFake::start(FakeCrm::Zoho).await;
    fake.add_user(USER, user());
    let owner = directory()
        .owner(
            IntegrationId::new(),
            Source::Zoho,
            Some(&fake.access()),
            USER,
        )
        .await
        .unwrap();
    assert_eq!(
        owner,
        OwnerFacts {
            external_id: USER.to_owned(),
            email: Some("bruce@zylker.example".to_owned()),
            first_name: Some("Bruce".to_owned()),
            last_name: Some("Wills".to_owned()),
            avatar_url: None,
            status: Some(OwnerStatus::Active),
            member_type: Some("Administrator".to_owned()),
            employee_ids: Vec::new(),
            title: Some("Senior Manager".to_owned()),
            department: None,
            location: Some("Chennai".to_owned()),
        }
    );
    assert_eq!(fake.requests()[0].path, format!("/crm/v8/users/{USER}"));
}

#[tokio::test]
async fn disabled_and_deleted_users() {
    let fake = CrmFake::start(FakeCrm::Zoho).await;
    fake.add_user(
        "1",
        FakeUser {
            active: false,
            ..user()
        },
    );
    fake.add_user(
        "2",
        FakeUser {
            deleted: true,
            ..user()
        },
    );
    let access = fake.access();
    let directory = directory();
    let integration = IntegrationId::new();
    let disabled = directory
        .owner(integration, Source::Zoho, Some(&access), "1")
        .await
        .unwrap();
    assert_eq!(disabled.status, Some(OwnerStatus::Inactive));
    let deleted = directory
        .owner(integration, Source::Zoho, Some(&access), "2")
        .await
        .unwrap();
    assert_eq!(deleted.status, Some(OwnerStatus::Deleted));
}

#[tokio::test]
async fn a_record_is_owned_by_its_owner() {
    let fake = CrmFake::start(FakeCrm::Zoho).await;
    fake.add_user(
        USER,
        FakeUser::new("ada@zylker.example", "Ada King", "Lovelace"),
    );
    fake.add_record("Deals", DEAL, vec![USER.to_owned()]);
    fake.add_record("Deals", "42", Vec::new());
    let access = fake.access();
    let directory = directory();
    let owners = directory
        .record_owners(
            IntegrationId::new(),
            Source::Zoho,
            Some(&access),
            "Deals",
            DEAL,
        )
        .await
        .unwrap();
    assert_eq!(
        owners,
        vec![OwnerFacts {
            external_id: USER.to_owned(),
            email: Some("ada@zylker.example".to_owned()),
            first_name: Some("Ada King".to_owned()),
            last_name: Some("Lovelace".to_owned()),
            ..OwnerFacts::default()
        }]
    );
    let request = &fake.requests()[0];
    assert_eq!(request.path, format!("/crm/v8/Deals/{DEAL}"));
    assert_eq!(request.query.as_deref(), Some("fields=Owner"));
    let owners = directory
        .record_owners(
            IntegrationId::new(),
            Source::Zoho,
            Some(&access),
            "Deals",
            "42",
        )
        .await
        .unwrap();
    assert!(owners.is_empty());
}

#[tokio::test]
async fn no_content_is_not_found() {
    let fake = CrmFake::start(FakeCrm::Zoho).await;
    let err = directory()
        .record_owners(
            IntegrationId::new(),
            Source::Zoho,
            Some(&fake.access()),
            "Deals",
            DEAL,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LookupError::NotFound(format!(
            "Zoho CRM records API: Deals record {DEAL} not found (204 no content)"
        ))
    );
}

#[tokio::test]
async fn module_names_cannot_change_the_path() {
    let fake = CrmFake::start(FakeCrm::Zoho).await;
    for module in [
        "users/1386586000000078001#",
        "Deals/../users",
        "Deals?x=1",
        "",
    ] {
        let err = directory()
            .record_owners(
                IntegrationId::new(),
                Source::Zoho,
                Some(&fake.access()),
                module,
                DEAL,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, LookupError::Refused(_)), "{module}: {err:?}");
    }
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn too_many_requests_without_retry_after_waits_the_default() {
    let fake = CrmFake::start(FakeCrm::Zoho).await;
    fake.respond(USER, Canned::Throttled);
    let err = directory()
        .owner(
            IntegrationId::new(),
            Source::Zoho,
            Some(&fake.access()),
            USER,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LookupError::RateLimited { retry_after, .. } if *retry_after == Duration::from_secs(30)),
        "{err:?}"
    );
}

#[tokio::test]
async fn user_failures() {
    Subject::start(FakeCrm::Zoho, Lookup::Owner)
        .await
        .standard_failures()
        .await;
}

#[tokio::test]
async fn deal_failures() {
    Subject::start(FakeCrm::Zoho, Lookup::Record("Deals"))
        .await
        .standard_failures()
        .await;
}
