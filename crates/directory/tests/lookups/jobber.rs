use std::time::Duration;

use crm_fakes::{Canned, CrmFake, FakeCrm, FakeUser};
use domain::{IntegrationId, OwnerFacts, OwnerStatus, Source};
use rollcall_directory::LookupError;

use crate::common::{Lookup, Subject, directory};

const VISIT: &str = "Z2lkOi8vSm9iYmVyL1Zpc2l0LzEyMw==";
const JOB: &str = "Z2lkOi8vSm9iYmVyL0pvYi80NTY=";

fn crew(fake: &CrmFake) {
    fake.add_user("U1", FakeUser::new("ada@crew.example", "Ada", "Lovelace"));
    fake.add_user(
        "U2",
        FakeUser {
            email: None,
            ..FakeUser::new("", "Grace", "Hopper")
        },
    );
    fake.add_user(
        "U3",
        FakeUser {
            active: false,
            ..FakeUser::new("alan@crew.example", "Alan", "Turing")
        },
    );
}

#[tokio::test]
async fn a_visit_is_worked_by_its_assigned_users() {
    let fake = CrmFake::start(FakeCrm::Jobber).await;
    crew(&fake);
    fake.add_record(
        "visit",
        VISIT,
        vec!["U1".to_owned(), "U2".to_owned(), "U3".to_owned()],
    );
    let owners = directory()
        .record_owners(
            IntegrationId::new(),
            Source::Jobber,
            Some(&fake.access()),
            "visit",
            VISIT,
        )
        .await
        .unwrap();
    assert_eq!(
        owners,
        vec![
            OwnerFacts {
                external_id: "U1".to_owned(),
                email: Some("ada@crew.example".to_owned()),
                first_name: Some("Ada".to_owned()),
                last_name: Some("Lovelace".to_owned()),
                status: Some(OwnerStatus::Active),
                ..OwnerFacts::default()
            },
            // No email: still an assignee; provisioning decides.
            OwnerFacts {
                external_id: "U2".to_owned(),
                email: None,
                first_name: Some("Grace".to_owned()),
                last_name: Some("Hopper".to_owned()),
                status: Some(OwnerStatus::Active),
                ..OwnerFacts::default()
            },
            OwnerFacts {
                external_id: "U3".to_owned(),
                email: Some("alan@crew.example".to_owned()),
                first_name: Some("Alan".to_owned()),
                last_name: Some("Turing".to_owned()),
                status: Some(OwnerStatus::Inactive),
                ..OwnerFacts::default()
            },
        ]
    );
    let request = &fake.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/graphql");
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["variables"]["id"], VISIT);
    assert!(body["query"].as_str().unwrap().contains("visit(id: $id)"));
}

#[tokio::test]
async fn a_job_is_worked_by_everyone_on_its_visits_once() {
    let fake = CrmFake::start(FakeCrm::Jobber).await;
    crew(&fake);
    fake.add_job_visits(
        JOB,
        vec![
            ("V1".to_owned(), vec!["U1".to_owned(), "U2".to_owned()]),
            ("V2".to_owned(), vec!["U2".to_owned(), "U3".to_owned()]),
            ("V3".to_owned(), Vec::new()),
        ],
    );
    let owners = directory()
        .record_owners(
            IntegrationId::new(),
            Source::Jobber,
            Some(&fake.access()),
            "job",
            JOB,
        )
        .await
        .unwrap();
    let ids: Vec<&str> = owners.iter().map(|o| o.external_id.as_str()).collect();
    assert_eq!(ids, vec!["U1", "U2", "U3"]);
}

#[tokio::test]
async fn an_unknown_visit_is_not_found() {
    let fake = CrmFake::start(FakeCrm::Jobber).await;
    let err = directory()
        .record_owners(
            IntegrationId::new(),
            Source::Jobber,
            Some(&fake.access()),
            "visit",
            VISIT,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LookupError::NotFound(format!("Jobber GraphQL API: visit {VISIT} not found"))
    );
}

#[tokio::test]
async fn the_query_cost_throttle_waits_for_the_points() {
    let fake = CrmFake::start(FakeCrm::Jobber).await;
    crew(&fake);
    fake.add_record("visit", VISIT, vec!["U1".to_owned()]);
    fake.respond("throttled", Canned::Throttled);
    let directory = directory();
    let integration = IntegrationId::new();
    let access = fake.access();
    let err = directory
        .record_owners(
            integration,
            Source::Jobber,
            Some(&access),
            "visit",
            "throttled",
        )
        .await
        .unwrap_err();
    // (1500 requested - 500 available) / 500 restored per second.
    assert!(
        matches!(&err, LookupError::RateLimited { retry_after, message }
            if *retry_after == Duration::from_secs(2) && message.contains("Throttled")),
        "{err:?}"
    );
    let count = fake.request_count();
    let err = directory
        .record_owners(integration, Source::Jobber, Some(&access), "visit", VISIT)
        .await
        .unwrap_err();
    assert!(matches!(err, LookupError::RateLimited { .. }), "{err:?}");
    assert_eq!(fake.request_count(), count);
}

#[tokio::test]
async fn owners_by_id_and_other_objects_are_refused() {
    let fake = CrmFake::start(FakeCrm::Jobber).await;
    let access = fake.access();
    let err = directory()
        .owner(IntegrationId::new(), Source::Jobber, Some(&access), "U1")
        .await
        .unwrap_err();
    assert!(matches!(err, LookupError::Refused(_)), "{err:?}");
    let err = directory()
        .record_owners(
            IntegrationId::new(),
            Source::Jobber,
            Some(&access),
            "quote",
            "Q1",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LookupError::Refused(_)), "{err:?}");
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn visit_failures() {
    Subject::start(FakeCrm::Jobber, Lookup::Record("visit"))
        .await
        .standard_failures()
        .await;
}

#[tokio::test]
async fn job_failures() {
    Subject::start(FakeCrm::Jobber, Lookup::Record("job"))
        .await
        .standard_failures()
        .await;
}
