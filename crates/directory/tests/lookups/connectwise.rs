use crm_fakes::{CrmFake, FakeCrm, FakeUser};
use domain::{IntegrationId, OwnerFacts, OwnerStatus, Source};
use rollcall_directory::LookupError;

use crate::common::{Lookup, Subject, directory};

fn member() -> FakeUser {
    FakeUser {
        title: Some("Service Technician".to_owned()),
        department: Some("Services".to_owned()),
        location: Some("Tampa Office".to_owned()),
        employee_id: Some("alovelace".to_owned()),
        member_type: Some("F".to_owned()),
        ..FakeUser::new("ada@msp.example", "Ada", "Lovelace")
    }
}

#[tokio::test]
async fn member_maps_every_field() {
    let fake = CrmFake::start(FakeCrm::Connectwise).await;
    fake.add_user("178", member());
    let owner = directory()
        .owner(
            IntegrationId::new(),
            Source::Connectwise,
            Some(&fake.access()),
            "178",
        )
        .await
        .unwrap();
    assert_eq!(
        owner,
        OwnerFacts {
            external_id: "178".to_owned(),
            email: Some("ada@msp.example".to_owned()),
            first_name: Some("Ada".to_owned()),
            last_name: Some("Lovelace".to_owned()),
            avatar_url: None,
            status: Some(OwnerStatus::Active),
            member_type: Some("F".to_owned()),
            employee_ids: vec!["alovelace".to_owned()],
            title: Some("Service Technician".to_owned()),
            department: Some("Services".to_owned()),
            location: Some("Tampa Office".to_owned()),
        }
    );
    assert_eq!(
        fake.requests()[0].path,
        "/v4_6_release/apis/3.0/system/members/178"
    );
}

#[tokio::test]
async fn an_inactive_member_is_inactive() {
    let fake = CrmFake::start(FakeCrm::Connectwise).await;
    fake.add_user(
        "179",
        FakeUser {
            active: false,
            ..member()
        },
    );
    let owner = directory()
        .owner(
            IntegrationId::new(),
            Source::Connectwise,
            Some(&fake.access()),
            "179",
        )
        .await
        .unwrap();
    assert_eq!(owner.status, Some(OwnerStatus::Inactive));
}

#[tokio::test]
async fn the_site_url_is_required() {
    let fake = CrmFake::start(FakeCrm::Connectwise).await;
    fake.add_user("178", member());
    let mut access = fake.access();
    access.base_url = None;
    let err = directory()
        .owner(
            IntegrationId::new(),
            Source::Connectwise,
            Some(&access),
            "178",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LookupError::Refused(m) if m.contains("base_url")),
        "{err:?}"
    );
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn records_are_not_looked_up() {
    let fake = CrmFake::start(FakeCrm::Connectwise).await;
    let err = directory()
        .record_owners(
            IntegrationId::new(),
            Source::Connectwise,
            Some(&fake.access()),
            "ticket",
            "1",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LookupError::Refused(_)), "{err:?}");
}

#[tokio::test]
async fn member_failures() {
    Subject::start(FakeCrm::Connectwise, Lookup::Owner)
        .await
        .standard_failures()
        .await;
}
