//! Applying events in batches must leave exactly what applying them one by one leaves: the
//! same users, links, invitations, issues and event log. Random event sequences (a small pool
//! of owners and emails, so that owners collide, change email, leave and come back, miss
//! fields and steal each other's addresses) are applied to two fresh databases, one event per
//! transaction on one and random batch sizes on the other, and the two are compared. The
//! batches run on SQLite and, in a second test, on PostgreSQL, whose statements differ (arrays,
//! `UNNEST` and JSON rows instead of lists and multi-row `VALUES`).

// Test code: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use domain::{
    EventEnvelope, EventId, IntegrationId, IntegrationSettings, MatchPolicy, OwnerFacts,
    OwnerStatus, Source, TenantId, Timestamp,
};
use provisioner::{Applied, Item, Mode, Provisioner};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rollcall_resolver::{DecisionContext, decide};
use store::{
    Cursor, EventFilter, IssueFilter, NewIntegration, SecretCipher, Store, StoreOptions, UserFilter,
};

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

struct Fixture {
    database: Database,
    store: Store,
    provisioner: Provisioner,
    tenant: TenantId,
    /// One integration matching by owner id, one by email.
    integrations: [(IntegrationId, IntegrationSettings); 2],
}

/// Where a fixture's store lives, removed when the test is done with it.
enum Database {
    Sqlite(tempfile::TempDir),
    /// The server's admin connection and the database's name.
    Postgres(sea_orm::DatabaseConnection, String),
}

/// The PostgreSQL server the end-to-end suite uses too.
fn postgres_admin_url() -> String {
    std::env::var("ROLLCALL_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("db.sqlite").display()
    );
    fixture_at(url, Database::Sqlite(dir)).await
}

/// A fixture on a fresh PostgreSQL database. The server is required: every test of this
/// project needs it (see the README), so an unreachable one fails the test.
async fn postgres_fixture() -> Fixture {
    use sea_orm::ConnectionTrait;
    let admin_url = postgres_admin_url();
    let admin = sea_orm::Database::connect(&admin_url)
        .await
        .unwrap_or_else(|err| panic!("PostgreSQL at {admin_url} is required: {err}"));
    let name = format!(
        "rc_test_{}_{}",
        Timestamp::now().millis() / 1000,
        uuid::Uuid::new_v4().simple()
    );
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("creating the test database");
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(base, _)| base);
    fixture_at(format!("{base}/{name}"), Database::Postgres(admin, name)).await
}

impl Fixture {
    /// Removes the fixture's database.
    async fn remove(self) {
        use sea_orm::ConnectionTrait;
        drop(self.store);
        match self.database {
            Database::Sqlite(dir) => dir.close().expect("removing the test database"),
            Database::Postgres(admin, name) => {
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .expect("dropping the test database");
            }
        }
    }
}

async fn fixture_at(url: String, database: Database) -> Fixture {
    let mut options = StoreOptions::new(url);
    options.sqlite_full_sync = false;
    let store = Store::connect(&options, SecretCipher::from_base64(KEY).expect("key"))
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let now = Timestamp::now();
    let tenant = store.create_tenant("Acme", now).await.expect("tenant").id;
    let mut integrations = Vec::new();
    for policy in [MatchPolicy::ExternalId, MatchPolicy::Email] {
        let settings = IntegrationSettings {
            match_policy: policy,
            ..IntegrationSettings::default()
        };
        let created = store
            .create_integration(
                NewIntegration {
                    tenant_id: tenant,
                    name: policy.as_str().to_owned(),
                    source: Source::Rollcall,
                    verification: serde_json::json!({"scheme": "standard-webhooks"}),
                    settings: settings.clone(),
                    secret: Some("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX".to_owned()),
                    directory: None,
                },
                now,
            )
            .await
            .expect("integration");
        integrations.push((created.id, settings));
    }
    let provisioner = Provisioner::new(store.clone(), std::sync::Arc::default());
    Fixture {
        database,
        store,
        provisioner,
        tenant,
        integrations: integrations.try_into().expect("two integrations"),
    }
}

/// One generated event: which integration, and its owners.
#[derive(Debug, Clone)]
struct Generated {
    integration: usize,
    provider_event_id: String,
    occurred_at: Timestamp,
    owners: Vec<OwnerFacts>,
}

fn generate(rng: &mut StdRng, count: usize) -> Vec<Generated> {
    let start = Timestamp::from_millis(1_800_000_000_000);
    (0..count)
        .map(|n| {
            let owners = (0..rng.random_range(1..=2))
                .map(|_| {
                    let id = rng.random_range(0..8);
                    let email = match rng.random_range(0..10) {
                        0 => None,
                        1 => Some("not an email".to_owned()),
                        _ => Some(format!("person{}@example.com", rng.random_range(0..6))),
                    };
                    OwnerFacts {
                        external_id: format!("owner-{id}"),
                        email,
                        first_name: (rng.random_range(0..12) > 0)
                            .then(|| format!("First{}", u8::from(rng.random_range(0..5) == 0))),
                        // Quotes, a backslash and characters beyond ASCII: on PostgreSQL the
                        // batch's rows travel as JSON.
                        last_name: Some(format!("Last{id} O'Brien \"Jr\" \\ Ünïcode 🚀")),
                        status: Some(match rng.random_range(0..10) {
                            0 => OwnerStatus::Terminated,
                            1 => OwnerStatus::Inactive,
                            _ => OwnerStatus::Active,
                        }),
                        title: Some(format!("Title{}", u8::from(rng.random_range(0..5) == 0))),
                        ..OwnerFacts::default()
                    }
                })
                .collect();
            Generated {
                integration: rng.random_range(0..2),
                // Now and then a redelivery of an earlier event.
                provider_event_id: if n > 0 && rng.random_range(0..12) == 0 {
                    format!("evt-{}", rng.random_range(0..n))
                } else {
                    format!("evt-{n}")
                },
                // Mostly in order, sometimes late (stale updates must be recognised as such).
                occurred_at: start.plus(std::time::Duration::from_secs(
                    (n as u64) * 10 - rng.random_range(0..15).min(n as u64 * 10),
                )),
                owners,
            }
        })
        .collect()
}

async fn apply(fixture: &Fixture, events: &[Generated], sizes: &mut impl FnMut() -> usize) {
    let envelopes: Vec<EventEnvelope> = events
        .iter()
        .map(|event| {
            let integration = fixture.integrations[event.integration].0;
            EventEnvelope {
                event_id: EventId::derive(integration, &event.provider_event_id),
                tenant_id: fixture.tenant,
                integration_id: integration,
                provider_event_id: event.provider_event_id.clone(),
                event_type: "opportunity.updated".to_owned(),
                occurred_at: Some(event.occurred_at),
                received_at: event.occurred_at,
                payload: serde_json::Value::Null,
                replay: None,
                import_id: None,
                request_id: None,
            }
        })
        .collect();
    let mut start = 0;
    while start < events.len() {
        let end = (start + sizes().max(1)).min(events.len());
        let deciders: Vec<_> = (start..end)
            .map(|index| {
                let settings = &fixture.integrations[events[index].integration].1;
                let context = DecisionContext {
                    event_type: &envelopes[index].event_type,
                    occurred_at: envelopes[index].occurred_at,
                    roster: false,
                };
                move |owner: &OwnerFacts, state: &domain::CurrentState| {
                    decide(owner, state, settings, &context)
                }
            })
            .collect();
        let items: Vec<Item<'_>> = (start..end)
            .zip(&deciders)
            .map(|(index, decider)| Item {
                envelope: &envelopes[index],
                owners: &events[index].owners,
                mode: Mode::Live,
                attempt: 1,
                decide: decider,
                no_owner: None,
            })
            .collect();
        let applied = fixture
            .provisioner
            .apply_batch(&items)
            .await
            .expect("the batch applies");
        assert_eq!(applied.len(), items.len());
        start = end;
    }
}

/// Everything provisioning wrote, without the ids and times that differ between runs.
async fn contents(fixture: &Fixture) -> BTreeMap<&'static str, Vec<String>> {
    let store = &fixture.store;
    let mut users = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let page = store
            .list_users(&UserFilter::default(), after.as_ref(), Some(500))
            .await
            .expect("users");
        let ids: Vec<_> = page.items.iter().map(|user| user.id).collect();
        let identities = store.identities_of(&ids).await.expect("identities");
        let invitations = store
            .latest_invitations_of(&ids)
            .await
            .expect("invitations");
        for user in &page.items {
            let mut links: Vec<String> = identities
                .get(&user.id)
                .map(|links| {
                    links
                        .iter()
                        .map(|link| {
                            format!(
                                "{}/{}",
                                integration_index(fixture, link.integration_id),
                                link.external_id
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            links.sort();
            let invited = invitations.contains_key(&user.id);
            users.push(format!(
                "{} {} {} {} {:?} {:?} links={links:?} invited={invited}",
                user.email, user.first_name, user.last_name, user.status, user.title, user.role,
            ));
        }
        match page.next_cursor {
            Some(cursor) => after = Some(Cursor::parse(&cursor).expect("cursor")),
            None => break,
        }
    }
    let mut events = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let page = store
            .list_events(&EventFilter::default(), after.as_ref(), Some(500))
            .await
            .expect("events");
        for event in &page.items {
            let owners: Vec<String> = event
                .owners
                .iter()
                .map(|owner| format!("{}:{}:{:?}", owner.external_id, owner.outcome, owner.reason))
                .collect();
            events.push(format!(
                "{}/{} {} {:?} {owners:?}",
                integration_index(fixture, event.integration_id),
                event.provider_event_id,
                event.outcome,
                event.reason,
            ));
        }
        match page.next_cursor {
            Some(cursor) => after = Some(Cursor::parse(&cursor).expect("cursor")),
            None => break,
        }
    }
    let mut issues = Vec::new();
    let page = store
        .list_issues(&IssueFilter::default(), None, Some(500))
        .await
        .expect("issues");
    for issue in &page.items {
        issues.push(format!(
            "{}/{} {:?} occurrences={} open={} {:?}",
            integration_index(fixture, issue.integration_id),
            issue.external_id,
            issue.kind,
            issue.occurrences,
            issue.open,
            issue.missing,
        ));
    }
    let mut all = BTreeMap::new();
    for (name, mut rows) in [("users", users), ("events", events), ("issues", issues)] {
        rows.sort();
        all.insert(name, rows);
    }
    all
}

fn integration_index(fixture: &Fixture, id: IntegrationId) -> usize {
    fixture
        .integrations
        .iter()
        .position(|(integration, _)| *integration == id)
        .expect("a known integration")
}

/// For each of `seeds`, applies a random sequence one by one on SQLite and in random batches
/// on the store `batched` makes, and compares what each left.
async fn batches_match_one_by_one<F, Fut>(seeds: std::ops::Range<u64>, batched: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Fixture>,
{
    for seed in seeds {
        let mut rng = StdRng::seed_from_u64(seed);
        let events = generate(&mut rng, 80);
        let one_by_one = fixture().await;
        apply(&one_by_one, &events, &mut || 1).await;
        let in_batches = batched().await;
        apply(&in_batches, &events, &mut || rng.random_range(1..=40)).await;
        let expected = contents(&one_by_one).await;
        assert!(
            !expected["users"].is_empty() && !expected["issues"].is_empty(),
            "seed {seed}: the sequence exercises creation and issues: {expected:#?}"
        );
        assert_eq!(contents(&in_batches).await, expected, "seed {seed}");
        one_by_one.remove().await;
        in_batches.remove().await;
    }
}

#[tokio::test]
async fn batches_leave_what_one_by_one_application_leaves() {
    batches_match_one_by_one(0..24, fixture).await;
}

#[tokio::test]
async fn batches_on_postgres_leave_what_one_by_one_application_leaves() {
    batches_match_one_by_one(100..112, postgres_fixture).await;
}

#[tokio::test]
async fn a_batch_answers_each_event_and_a_repeat_is_already_processed() {
    let fixture = fixture().await;
    let mut rng = StdRng::seed_from_u64(7);
    let mut events = generate(&mut rng, 10);
    for (n, event) in events.iter_mut().enumerate() {
        event.provider_event_id = format!("unique-{n}");
    }
    // The same event twice in one batch, and again in a later batch.
    events.push(events[3].clone());
    apply(&fixture, &events, &mut || 11).await;
    let (integration, settings) = &fixture.integrations[events[0].integration];
    let envelope = EventEnvelope {
        event_id: EventId::derive(*integration, &events[0].provider_event_id),
        tenant_id: fixture.tenant,
        integration_id: *integration,
        provider_event_id: events[0].provider_event_id.clone(),
        event_type: "opportunity.updated".to_owned(),
        occurred_at: Some(events[0].occurred_at),
        received_at: events[0].occurred_at,
        payload: serde_json::Value::Null,
        replay: None,
        import_id: None,
        request_id: None,
    };
    let context = DecisionContext {
        event_type: "opportunity.updated",
        occurred_at: envelope.occurred_at,
        roster: false,
    };
    let decider =
        |owner: &OwnerFacts, state: &domain::CurrentState| decide(owner, state, settings, &context);
    let again = fixture
        .provisioner
        .apply(&Item {
            envelope: &envelope,
            owners: &events[0].owners,
            mode: Mode::Live,
            attempt: 2,
            decide: &decider,
            no_owner: None,
        })
        .await
        .expect("applies");
    assert_eq!(again, Applied::AlreadyProcessed);
    let logged = contents(&fixture).await;
    assert_eq!(logged["events"].len(), 10, "{logged:#?}");
}
