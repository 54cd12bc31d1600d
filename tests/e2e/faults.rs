//! Breaking things: links cut between rollcall and RabbitMQ or PostgreSQL, processes killed,
//! a poison event. After each, every event the ingress answered 2xx for is in the event log or
//! the dead-letter store exactly once, no user exists twice, no invitation was sent twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::support::app::Integration;
use crate::support::load::{Sent, logged_and_dead, send_all};
use crate::support::proxy::Proxy;
use crate::support::services::postgres_addr;
use crate::support::{Backend, Client, Process, Spawn, TestEnv, eventually};
use smtp_sink::SmtpSink;

/// Events per scenario, and the distinct owners they name.
const EVENTS: usize = 2000;
const OWNERS: usize = 500;
const CONCURRENCY: usize = 16;
/// How long a link stays cut, or a process stays dead, before it comes back.
const OUTAGE: Duration = Duration::from_secs(3);
const SETTLE: Duration = Duration::from_secs(180);

/// Retries long enough to ride out the outages above (about 40 s in all before giving up).
fn patient_retry() -> bus::RetryPolicy {
    bus::RetryPolicy {
        delays: [300, 600, 1200, 2400, 4800]
            .into_iter()
            .map(Duration::from_millis)
            .collect(),
        max_attempts: 12,
    }
}

/// A killed worker may die holding invitation claims; they expire after this many seconds
/// (instead of the default two minutes) so the scenario's invitations go out promptly.
fn with_short_claims(mut env: Vec<(String, String)>) -> Vec<(String, String)> {
    env.push((
        "ROLLCALL_INVITATION_CLAIM_SECONDS".to_owned(),
        "5".to_owned(),
    ));
    env
}

/// Separate ingress, API and worker processes on PostgreSQL and RabbitMQ, each reaching both
/// through proxies the test controls.
struct Fleet {
    env: TestEnv,
    db: Proxy,
    broker: Proxy,
    smtp: SmtpSink,
    ingress: Process,
    ingress_url: Arc<RwLock<String>>,
    _admin: Process,
    worker: Process,
    client: Client,
    integration: Integration,
}

impl Fleet {
    fn spawn_options(&self, roles: Vec<&'static str>, env: Vec<(String, String)>) -> Spawn {
        let rabbit = self.env.rabbit.as_ref().expect("rabbitmq");
        Spawn {
            roles,
            smtp_url: Some(self.smtp.url.clone()),
            amqp_url: Some(rabbit.url_via(&self.broker.addr)),
            database_url: Some(self.env.database_url_via(&self.db.addr)),
            env: with_short_claims(env),
            ..Spawn::default()
        }
    }

    async fn start(worker_env: Vec<(String, String)>) -> Option<Self> {
        let env = TestEnv::new(Backend::PostgresRabbit)
            .await?
            .with_retry(patient_retry());
        let rabbit = env.rabbit.clone().expect("rabbitmq");
        let db = Proxy::start(&postgres_addr()).await;
        let broker = Proxy::start(&rabbit.broker_addr()).await;
        let smtp = SmtpSink::start().await.expect("an SMTP sink on loopback");
        let options = |roles: Vec<&'static str>, extra: Vec<(String, String)>| Spawn {
            roles,
            smtp_url: Some(smtp.url.clone()),
            amqp_url: Some(rabbit.url_via(&broker.addr)),
            database_url: Some(env.database_url_via(&db.addr)),
            env: with_short_claims(extra),
            ..Spawn::default()
        };
        let admin = env.spawn(options(vec!["admin"], Vec::new())).await;
        let ingress = env.spawn(options(vec!["ingress"], Vec::new())).await;
        let worker = env.spawn(options(vec!["worker"], worker_env)).await;
        let mut client = Client::new(&admin);
        client.ingress = ingress.ingress_url().to_owned();
        let tenant = client.create_tenant("Acme").await;
        let integration = client.create_integration(&tenant, json!({})).await;
        Some(Self {
            ingress_url: Arc::new(RwLock::new(ingress.ingress_url().to_owned())),
            env,
            db,
            broker,
            smtp,
            ingress,
            _admin: admin,
            worker,
            client,
            integration,
        })
    }

    /// Starts sending every event in the background.
    fn send(&self, events: Vec<(String, String)>) -> tokio::task::JoinHandle<Sent> {
        let ingress = Arc::clone(&self.ingress_url);
        let integration = self.integration.clone();
        tokio::spawn(
            async move { send_all(ingress, &integration, events, CONCURRENCY, SETTLE).await },
        )
    }

    /// Waits until `count` events are in the event log (the fault then strikes mid-load).
    async fn until_processed(&self, count: usize) {
        let client = self.client.clone();
        eventually(&format!("{count} events to be processed"), SETTLE, || {
            let client = client.clone();
            async move {
                let (_, page) = client.get("/v1/events?limit=500").await;
                let seen = page["items"].as_array().map_or(0, Vec::len);
                let more = page["next_cursor"].is_string();
                (more || seen >= count.min(500)).then_some(())
            }
        })
        .await;
    }
}

/// `EVENTS` events over `OWNERS` owners; delivery ids starting with `poison` fail under the
/// `process-event` failpoint.
fn events(poisoned: usize) -> Vec<(String, String)> {
    (0..EVENTS)
        .map(|n| {
            let owner = n % OWNERS;
            let delivery = if n < poisoned { format!("poison-{n}") } else { format!("msg-{n}") };
            let body = json!({
                "id": format!("evt-{n}"),
                "type": "deal.updated",
                "occurred_at": format!("2026-11-21T{:02}:{:02}:{:02}Z", 10 + n / 3600, (n / 60) % 60, n % 60),
                "owner": {"id": format!("O{owner}"), "first_name": "Owner", "last_name": format!("N{owner}"),
                          "email": format!("owner{owner}@example.com"), "title": format!("t{n}")},
            });
            (delivery, body.to_string())
        })
        .collect()
}

/// Checks the guarantees after a scenario and prints its summary line.
async fn settle_and_check(name: &str, fleet: &Fleet, sent: &Sent) {
    assert_eq!(
        sent.given_up, 0,
        "{name}: every event was eventually accepted"
    );
    let accepted: HashSet<&str> = sent.accepted.iter().map(String::as_str).collect();
    assert_eq!(
        accepted.len(),
        sent.accepted.len(),
        "{name}: distinct event ids"
    );
    let (logged, dead) = eventually(
        &format!("{name}: every accepted event to settle"),
        SETTLE,
        || async {
            let (logged, dead) = logged_and_dead(&fleet.client).await;
            let settled: HashSet<&str> = logged
                .iter()
                .chain(dead.iter())
                .map(String::as_str)
                .collect();
            accepted
                .iter()
                .all(|id| settled.contains(id))
                .then_some((logged, dead))
        },
    )
    .await;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for id in logged.iter().chain(dead.iter()) {
        *seen.entry(id.as_str()).or_default() += 1;
    }
    let lost = accepted
        .iter()
        .filter(|id| !seen.contains_key(**id))
        .count();
    let duplicated = seen.values().filter(|count| **count > 1).count();

    // One user per owner, each with one identity; one invitation per user.
    let users = all_users(&fleet.client).await;
    let mut by_owner: HashMap<String, usize> = HashMap::new();
    for user in &users {
        let identities = user["identities"].as_array().cloned().unwrap_or_default();
        assert_eq!(identities.len(), 1, "{name}: {user}");
        *by_owner
            .entry(
                identities[0]["external_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
            .or_default() += 1;
    }
    let users_twice = by_owner.values().filter(|count| **count > 1).count();
    // An invitation is one Message-ID. The same message arriving twice is the one duplicate
    // SMTP cannot rule out (a process killed, or the database unreachable, after the server
    // accepted it and before it was recorded as sent); two different messages for one person
    // would be a second invitation.
    let (per_recipient, deliveries) = eventually(
        &format!("{name}: every user's invitation"),
        SETTLE,
        || async {
            let (per_recipient, deliveries) = invitations(&fleet.smtp.messages());
            (per_recipient.len() >= users.len()).then_some((per_recipient, deliveries))
        },
    )
    .await;
    let invited_twice = per_recipient.values().filter(|ids| ids.len() > 1).count();
    let resent_in_smtp_window =
        deliveries - per_recipient.values().map(HashSet::len).sum::<usize>();
    println!(
        "{name}: sent {}, accepted {}, applied {}, dead-lettered {}, lost {lost}, duplicated {duplicated} \
         (users {}, users twice {users_twice}, invitations {}, invited twice {invited_twice}, \
         re-sent in the SMTP window {resent_in_smtp_window})",
        sent.sent,
        sent.accepted.len(),
        logged.len(),
        dead.len(),
        users.len(),
        per_recipient.len(),
    );
    assert_eq!(lost, 0, "{name}: lost events");
    assert_eq!(
        duplicated, 0,
        "{name}: events both applied and dead-lettered, or twice"
    );
    assert_eq!(users_twice, 0, "{name}: an owner with two users");
    assert_eq!(invited_twice, 0, "{name}: an invitation sent twice");
    assert_eq!(
        per_recipient.len(),
        users.len(),
        "{name}: one invitation per user"
    );
}

/// Per recipient, the distinct Message-IDs received; and how many messages arrived in all.
fn invitations(messages: &[String]) -> (HashMap<String, HashSet<String>>, usize) {
    let mut per_recipient: HashMap<String, HashSet<String>> = HashMap::new();
    for message in messages {
        let header = |name: &str| {
            message
                .lines()
                .find(|line| {
                    line.to_ascii_lowercase()
                        .starts_with(&name.to_ascii_lowercase())
                })
                .unwrap_or("")
                .to_owned()
        };
        per_recipient
            .entry(header("To:"))
            .or_default()
            .insert(header("Message-ID:"));
    }
    (per_recipient, messages.len())
}

async fn all_users(client: &Client) -> Vec<Value> {
    let mut users = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("?limit=500&cursor={cursor}"),
            None => "?limit=500".to_owned(),
        };
        let (_, page) = client.get(&format!("/v1/users{query}")).await;
        users.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    users
}

#[tokio::test]
async fn the_broker_link_is_cut_mid_load_and_restored() {
    let Some(fleet) = Fleet::start(Vec::new()).await else {
        return;
    };
    let load = fleet.send(events(0));
    fleet.until_processed(EVENTS / 4).await;
    fleet.broker.cut();
    tokio::time::sleep(OUTAGE).await;
    fleet.broker.restore();
    let sent = load.await.expect("load");
    settle_and_check("broker link cut", &fleet, &sent).await;
    fleet.env.cleanup().await;
}

#[tokio::test]
async fn the_database_link_is_cut_mid_load_and_restored() {
    let Some(fleet) = Fleet::start(Vec::new()).await else {
        return;
    };
    let load = fleet.send(events(0));
    fleet.until_processed(EVENTS / 4).await;
    fleet.db.cut();
    tokio::time::sleep(OUTAGE).await;
    fleet.db.restore();
    let sent = load.await.expect("load");
    settle_and_check("database link cut", &fleet, &sent).await;
    fleet.env.cleanup().await;
}

#[tokio::test]
async fn a_worker_is_killed_mid_load_and_restarted() {
    let Some(mut fleet) = Fleet::start(Vec::new()).await else {
        return;
    };
    let load = fleet.send(events(0));
    fleet.until_processed(EVENTS / 4).await;
    fleet.worker.kill().await;
    tokio::time::sleep(OUTAGE).await;
    let options = fleet.spawn_options(vec!["worker"], Vec::new());
    fleet.worker = fleet.env.spawn(options).await;
    let sent = load.await.expect("load");
    settle_and_check("worker killed", &fleet, &sent).await;
    fleet.env.cleanup().await;
}

#[tokio::test]
async fn the_ingress_is_killed_mid_load_and_restarted() {
    let Some(mut fleet) = Fleet::start(Vec::new()).await else {
        return;
    };
    let load = fleet.send(events(0));
    fleet.until_processed(EVENTS / 4).await;
    fleet.ingress.kill().await;
    tokio::time::sleep(OUTAGE).await;
    let options = fleet.spawn_options(vec!["ingress"], Vec::new());
    fleet.ingress = fleet.env.spawn(options).await;
    *fleet.ingress_url.write().await = fleet.ingress.ingress_url().to_owned();
    let sent = load.await.expect("load");
    settle_and_check("ingress killed", &fleet, &sent).await;
    fleet.env.cleanup().await;
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_without_holding_up_the_rest_and_replays_once() {
    const POISON: usize = 5;
    let failpoint = vec![("FAILPOINTS".to_owned(), "process-event=return".to_owned())];
    let Some(mut fleet) = Fleet::start(failpoint).await else {
        return;
    };
    let sent = fleet.send(events(POISON)).await.expect("load");
    settle_and_check("poison event", &fleet, &sent).await;
    let client = fleet.client.clone();
    let (dead, page) = client.get("/v1/dead-letters?limit=100").await;
    assert_eq!(dead, 200);
    let letters = page["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(letters.len(), POISON, "{letters:#?}");
    for letter in &letters {
        assert_eq!(letter["reason"], "attempts_exhausted");
        assert_eq!(letter["attempts"], 12);
        let errors = letter["errors"].as_array().cloned().unwrap_or_default();
        assert_eq!(errors.len(), 12, "every attempt's error is kept: {letter}");
        assert!(
            errors[0]["error"]
                .as_str()
                .unwrap_or("")
                .contains("injected failure")
        );
        assert!(errors[0]["at"].is_string());
        assert!(
            letter["provider_event_id"]
                .as_str()
                .unwrap_or("")
                .starts_with("poison")
        );
    }

    // The cause is fixed (a worker without the fault), then the poison events are replayed,
    // twice in a row: each is applied once.
    fleet.worker.kill().await;
    let options = fleet.spawn_options(vec!["worker"], Vec::new());
    fleet.worker = fleet.env.spawn(options).await;
    let filter = json!({"integration_id": fleet.integration.id, "dry_run": true});
    let (status, dry) = client.post("/v1/dead-letters/replay", &filter).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry, json!({"matched": POISON}));
    let ids: Vec<Value> = letters.iter().map(|letter| letter["id"].clone()).collect();
    for _ in 0..2 {
        let (status, report) = client
            .post("/v1/dead-letters/replay", &json!({"ids": ids}))
            .await;
        assert_eq!(status, 200, "{report}");
    }
    let replayed: Vec<String> = letters
        .iter()
        .map(|l| l["event_id"].as_str().unwrap_or("").to_owned())
        .collect();
    eventually("the replays to be applied", SETTLE, || async {
        let (logged, dead) = logged_and_dead(&client).await;
        (dead.is_empty() && replayed.iter().all(|id| logged.contains(id))).then_some(())
    })
    .await;
    let (logged, _) = logged_and_dead(&client).await;
    for id in &replayed {
        assert_eq!(
            logged.iter().filter(|logged| *logged == id).count(),
            1,
            "{id} applied once"
        );
        let (_, event) = client.get(&format!("/v1/events/{id}")).await;
        assert_eq!(event["replayed_by"], "operator", "{event}");
        assert!(event["replayed_at"].is_string());
    }
    assert_eq!(all_users(&client).await.len(), OWNERS);
    fleet.env.cleanup().await;
}

#[tokio::test]
async fn sigterm_hands_back_in_flight_work_and_exits_cleanly() {
    let Some(mut fleet) = Fleet::start(Vec::new()).await else {
        return;
    };
    let load = fleet.send(events(0));
    fleet.until_processed(EVENTS / 4).await;
    let pid = fleet.worker.child.id().expect("pid").to_string();
    let signalled = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(signalled.success());
    let status = tokio::time::timeout(Duration::from_secs(40), fleet.worker.child.wait())
        .await
        .expect("the worker exits within its drain timeout")
        .expect("exit status");
    assert!(status.success(), "a SIGTERM'd worker exits 0: {status:?}");
    assert!(
        fleet.worker.logs().contains("shutting down"),
        "{}",
        fleet.worker.logs()
    );
    let options = fleet.spawn_options(vec!["worker"], Vec::new());
    fleet.worker = fleet.env.spawn(options).await;
    let sent = load.await.expect("load");
    settle_and_check("worker stopped with SIGTERM", &fleet, &sent).await;
    fleet.env.cleanup().await;
}
