use std::time::Duration;

use crm_fakes::{Canned, CrmFake, FakeCrm, FakeUser};
use domain::{IntegrationId, OwnerFacts, OwnerStatus, Source};
use rollcall_directory::LookupError;

use crate::common::{Lookup, Subject, directory};

const USER: &str = "005000000000042AAA";

fn full_user() -> FakeUser {
    FakeUser {
        title: Some("Account Executive".to_owned()),
        department: Some("Sales".to_owned()),
        location: Some("Tallinn".to_owned()),
        employee_id: Some("E-1042".to_owned()),
        member_type: Some("Standard".to_owned()),
        avatar_url: Some("https://acme.my.salesforce.com/profilephoto/005/F".to_owned()),
        ..FakeUser::new("ada@acme.example", "Ada", "Lovelace")
    }
}

#[tokio::test]
async fn user_maps_every_field() {
    let fake = CrmFake::start(FakeCrm::Salesforce).await;
    fake.add_user(USER, full_user());
    let owner = directory()
        .owner(
            IntegrationId::new(),
            Source::SalesforceOutbound,
            Some(&fake.access()),
            USER,
        )
        .await
        .unwrap();
    assert_eq!(
        owner,
        OwnerFacts {
            external_id: USER.to_owned(),
            email: Some("ada@acme.example".to_owned()),
            first_name: Some("Ada".to_owned()),
            last_name: Some("Lovelace".to_owned()),
            avatar_url: Some("https://acme.my.salesforce.com/profilephoto/005/F".to_owned()),
            status: Some(OwnerStatus::Active),
            member_type: Some("Standard".to_owned()),
            employee_ids: vec!["E-1042".to_owned()],
            title: Some("Account Executive".to_owned()),
            department: Some("Sales".to_owned()),
            location: Some("Tallinn".to_owned()),
        }
    );
    let request = &fake.requests()[0];
    assert_eq!(
        request.path,
        format!("/services/data/v62.0/sobjects/User/{USER}")
    );
    assert_eq!(
        request.query.as_deref(),
        Some(
            "fields=Id%2CEmail%2CFirstName%2CLastName%2CIsActive%2CTitle%2CDepartment%2CCity%2CEmployeeNumber%2CFullPhotoUrl%2CUserType"
        )
    );
}

#[tokio::test]
async fn an_inactive_user_is_inactive_and_15_character_ids_work() {
    let fake = CrmFake::start(FakeCrm::Salesforce).await;
    fake.add_user(
        "005000000000043",
        FakeUser {
            active: false,
            ..full_user()
        },
    );
    let owner = directory()
        .owner(
            IntegrationId::new(),
            Source::SalesforceOutbound,
            Some(&fake.access()),
            "005000000000043",
        )
        .await
        .unwrap();
    assert_eq!(owner.status, Some(OwnerStatus::Inactive));
}

#[tokio::test]
async fn a_record_is_owned_by_its_owner_user_not_a_queue() {
    let fake = CrmFake::start(FakeCrm::Salesforce).await;
    fake.add_user(USER, full_user());
    fake.add_record("Opportunity", "006000000000001AAA", vec![USER.to_owned()]);
    fake.add_record(
        "Opportunity",
        "006000000000002AAA",
        vec!["00G000000000001AAA".to_owned()],
    );
    let access = fake.access();
    let directory = directory();
    let owners = directory
        .record_owners(
            IntegrationId::new(),
            Source::SalesforceOutbound,
            Some(&access),
            "Opportunity",
            "006000000000001AAA",
        )
        .await
        .unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].external_id, USER);
    assert_eq!(owners[0].title.as_deref(), Some("Account Executive"));
    let owners = directory
        .record_owners(
            IntegrationId::new(),
            Source::SalesforceOutbound,
            Some(&access),
            "Opportunity",
            "006000000000002AAA",
        )
        .await
        .unwrap();
    assert!(owners.is_empty(), "a queue is not a user: {owners:?}");
    let err = directory
        .record_owners(
            IntegrationId::new(),
            Source::SalesforceOutbound,
            Some(&access),
            "User/../Account",
            "006000000000002AAA",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LookupError::Refused(_)), "{err:?}");
}

#[tokio::test]
async fn the_instance_url_is_required_and_must_be_https() {
    let fake = CrmFake::start(FakeCrm::Salesforce).await;
    fake.add_user(USER, full_user());
    let mut access = fake.access();
    access.base_url = None;
    let err = directory()
        .owner(
            IntegrationId::new(),
            Source::SalesforceOutbound,
            Some(&access),
            USER,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LookupError::Refused(m) if m.contains("base_url")),
        "{err:?}"
    );
    access.base_url = Some("http://acme.my.salesforce.com".to_owned());
    let err = directory()
        .owner(
            IntegrationId::new(),
            Source::SalesforceOutbound,
            Some(&access),
            USER,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LookupError::Refused(m) if m.contains("https")),
        "{err:?}"
    );
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn the_org_request_limit_is_a_rate_limit() {
    let fake = CrmFake::start(FakeCrm::Salesforce).await;
    fake.respond(USER, Canned::Throttled);
    let err = directory()
        .owner(
            IntegrationId::new(),
            Source::SalesforceOutbound,
            Some(&fake.access()),
            USER,
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
    assert_eq!(retry_after, Duration::from_secs(15 * 60));
    assert!(
        message.contains("TotalRequests Limit exceeded"),
        "{message}"
    );
}

#[tokio::test]
async fn user_failures() {
    Subject::start(FakeCrm::Salesforce, Lookup::Owner)
        .await
        .standard_failures()
        .await;
}

#[tokio::test]
async fn opportunity_failures() {
    Subject::start(FakeCrm::Salesforce, Lookup::Record("Opportunity"))
        .await
        .standard_failures()
        .await;
}
