//! The dead-letter store on the embedded queue: retries, permanent failures, panics, the API
//! and the command line.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::app::MAX_ATTEMPTS;
use crate::support::{Backend, Client, Spawn, TestEnv, eventually, now_seconds, sign};

const WAIT: Duration = Duration::from_secs(60);

fn event(delivery: &str, owner: u32) -> String {
    json!({
        "id": delivery, "type": "deal.updated", "occurred_at": "2026-11-21T10:00:00Z",
        "owner": {"id": format!("O{owner}"), "first_name": "Owen", "last_name": format!("N{owner}"), "email": format!("o{owner}@example.com")},
    })
    .to_string()
}

async fn dead_letters(client: &Client, query: &str) -> Vec<Value> {
    let (status, page) = client.get(&format!("/v1/dead-letters{query}")).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().cloned().unwrap_or_default()
}

async fn run(env: &TestEnv, args: &[&str]) -> (Option<i32>, String, String) {
    let output = env
        .command()
        .args(args)
        .output()
        .await
        .expect("running rollcall");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn failing_events_are_retried_then_dead_lettered_and_replayed_from_the_api_and_cli() {
    let Some(env) = TestEnv::new(Backend::SqliteEmbedded).await else {
        return;
    };
    let faulty = env
        .spawn(Spawn {
            env: vec![("FAILPOINTS".to_owned(), "process-event=return".to_owned())],
            ..Spawn::default()
        })
        .await;
    let client = Client::new(&faulty);
    let tenant = client.create_tenant("Acme").await;
    let integration = client.create_integration(&tenant, json!({})).await;
    for (delivery, owner) in [
        ("poison-1", 1),
        ("ok-1", 2),
        ("poison-2", 3),
        ("ok-2", 4),
        ("poison-3", 5),
    ] {
        let body = event(delivery, owner);
        let headers = sign(&integration.secret, delivery, now_seconds(), &body);
        assert_eq!(
            client.post_hook(&integration.id, body, &headers).await.0,
            202
        );
    }
    // The healthy events are not held up by the failing ones.
    client.processed(&integration.id, "ok-1").await;
    client.processed(&integration.id, "ok-2").await;
    let letters = eventually("three dead letters", WAIT, || async {
        let letters = dead_letters(&client, "").await;
        (letters.len() == 3).then_some(letters)
    })
    .await;
    for letter in &letters {
        assert_eq!(letter["reason"], "attempts_exhausted", "{letter}");
        assert_eq!(letter["attempts"], MAX_ATTEMPTS);
        let errors = letter["errors"].as_array().cloned().unwrap_or_default();
        assert_eq!(errors.len(), MAX_ATTEMPTS as usize, "{letter}");
        assert!(errors.iter().all(|e| {
            e["error"]
                .as_str()
                .unwrap_or("")
                .contains("injected failure")
        }));
        assert_eq!(letter["integration_id"], integration.id.as_str());
        assert_eq!(
            letter["envelope"]["provider_event_id"],
            letter["provider_event_id"]
        );
    }
    // Retries wait longer each time: the attempts' times are increasingly far apart.
    let times: Vec<i64> = letters[0]["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["at"].as_str())
                .filter_map(|at| domain::Timestamp::parse_rfc3339(at).ok())
                .map(domain::Timestamp::millis)
                .collect()
        })
        .unwrap_or_default();
    assert!(
        times.windows(2).all(|pair| pair[1] >= pair[0] + 150),
        "{times:?}"
    );

    // Reading them.
    let id = letters[0]["id"].as_str().unwrap_or("").to_owned();
    let (status, one) = client.get(&format!("/v1/dead-letters/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["id"], id.as_str());
    assert!(
        dead_letters(&client, "?since=2999-01-01T00:00:00Z")
            .await
            .is_empty()
    );
    assert_eq!(
        dead_letters(&client, "?until=2999-01-01T00:00:00Z")
            .await
            .len(),
        3
    );
    assert!(
        dead_letters(
            &client,
            "?integration_id=01a2013a-0000-7000-8000-000000000000"
        )
        .await
        .is_empty()
    );
    let (status, problem) = client.get("/v1/dead-letters?since=yesterday").await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["field"], "since");
    let (status, _) = client
        .get("/v1/dead-letters/01a2013a-0000-7000-8000-000000000000")
        .await;
    assert_eq!(status, 404);
    let (status, dry) = client
        .post(
            "/v1/dead-letters/replay",
            &json!({"integration_id": integration.id, "dry_run": true}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(dry, json!({"matched": 3}));
    let (status, problem) = client
        .post("/v1/dead-letters/replay", &json!({"ids": []}))
        .await;
    assert_eq!(status, 422, "{problem}");

    // The command line: list, dry run, drop one, refuse to drop everything by accident.
    drop(faulty);
    let (code, out, err) = run(&env, &["dlq", "list", "--json"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out)
            .map(|v| v.as_array().map(Vec::len))
            .ok()
            .flatten(),
        Some(3)
    );
    let (code, out, _) = run(&env, &["dlq", "replay", "--dry-run"]).await;
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), "3 dead letter(s) would be replayed");
    let (code, out, _) = run(&env, &["dlq", "drop", &id]).await;
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), "dropped 1 dead letter(s)");
    let (code, _, err) = run(&env, &["dlq", "drop"]).await;
    assert_ne!(code, Some(0));
    assert!(err.contains("--all"), "{err}");
    let (code, _, err) = run(&env, &["dlq", "list", "--since", "soon"]).await;
    assert_ne!(code, Some(0));
    assert!(err.contains("--since"), "{err}");

    // Fixed, then replayed from the command line: applied once each, with the replay recorded.
    let healthy = env.spawn(Spawn::default()).await;
    let client = Client::new(&healthy);
    let (code, out, err) = run(&env, &["dlq", "replay", "--integration", &integration.id]).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "replayed 2 of 2 dead letter(s)");
    let remaining: Vec<String> = letters
        .iter()
        .filter(|letter| letter["id"] != id.as_str())
        .map(|letter| {
            letter["provider_event_id"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    for delivery in &remaining {
        let logged = client.processed(&integration.id, delivery).await;
        assert_eq!(logged["outcome"], "created");
        assert!(
            logged["replayed_by"]
                .as_str()
                .unwrap_or("")
                .starts_with("cli ("),
            "{logged}"
        );
    }
    assert!(
        dead_letters(&client, "").await.is_empty(),
        "replayed events leave the store"
    );
    assert_eq!(client.users("").await.len(), 4);
    drop(healthy);
    env.cleanup().await;
}

#[tokio::test]
async fn a_panic_while_processing_dead_letters_that_event_and_the_consumer_carries_on() {
    let Some(env) = TestEnv::new(Backend::SqliteEmbedded).await else {
        return;
    };
    let process = env
        .spawn(Spawn {
            env: vec![("FAILPOINTS".to_owned(), "process-event=panic".to_owned())],
            ..Spawn::default()
        })
        .await;
    let client = Client::new(&process);
    let tenant = client.create_tenant("Acme").await;
    let integration = client.create_integration(&tenant, json!({})).await;
    for (delivery, owner) in [("poison-boom", 1), ("after-the-panic", 2)] {
        let body = event(delivery, owner);
        let headers = sign(&integration.secret, delivery, now_seconds(), &body);
        assert_eq!(
            client.post_hook(&integration.id, body, &headers).await.0,
            202
        );
    }
    client.processed(&integration.id, "after-the-panic").await;
    let letters = eventually("the dead letter", WAIT, || async {
        let letters = dead_letters(&client, "").await;
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    assert_eq!(
        letters[0]["reason"], "permanent",
        "a bug does not fix itself on retry"
    );
    assert_eq!(letters[0]["attempts"], 1);
    assert!(
        letters[0]["errors"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("panicked"),
        "{}",
        letters[0]
    );
    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn an_undecodable_event_goes_straight_to_the_dead_letter_store_on_both_queues() {
    for backend in [Backend::SqliteEmbedded, Backend::PostgresRabbit] {
        let Some(env) = TestEnv::new(backend).await else {
            return;
        };
        let process = env.spawn(Spawn::default()).await;
        let client = Client::new(&process);
        let event_id = uuid::Uuid::new_v4();
        // Something that is not an event reaches the queue (a bug elsewhere, a stray publisher).
        match &env.rabbit {
            Some(rabbit) => {
                use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
                let connection =
                    lapin::Connection::connect(&rabbit.url, lapin::ConnectionProperties::default())
                        .await
                        .expect("connect");
                let channel = connection.create_channel().await.expect("channel");
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await
                    .expect("confirms");
                let topology = bus::Topology::new(&rabbit.prefix, &rabbit.retry);
                channel
                    .basic_publish(
                        topology.events_exchange().as_str().into(),
                        "work".into(),
                        BasicPublishOptions::default(),
                        b"{not an event",
                        lapin::BasicProperties::default()
                            .with_delivery_mode(2)
                            .with_message_id(event_id.to_string().as_str().into()),
                    )
                    .await
                    .expect("publish")
                    .await
                    .expect("confirm");
                let _ = connection.close(200, "done".into()).await;
            }
            None => {
                use sea_orm::ConnectionTrait;
                let db = sea_orm::Database::connect(&env.database_url)
                    .await
                    .expect("database");
                db.execute_unprepared(&format!(
                    "INSERT INTO queue_jobs (event_id, envelope, attempts, available_at, errors, created_at) \
                     VALUES (x'{}', '{{not an event', 0, 0, '[]', 0)",
                    event_id.simple()
                ))
                .await
                .expect("insert");
            }
        }
        let letters = eventually("the dead letter", WAIT, || async {
            let letters = dead_letters(&client, "").await;
            (!letters.is_empty()).then_some(letters)
        })
        .await;
        assert_eq!(letters[0]["event_id"], event_id.to_string(), "{backend:?}");
        assert_eq!(letters[0]["reason"], "permanent", "{backend:?}");
        assert_eq!(letters[0]["attempts"], 1, "{backend:?}");
        assert_eq!(letters[0]["envelope"], "{not an event", "kept as it was");
        drop(process);
        env.cleanup().await;
    }
}
