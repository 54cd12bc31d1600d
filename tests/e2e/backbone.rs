//! A signed webhook becomes an invited user, on every database/queue pair.

use std::time::Duration;

use serde_json::json;

use crate::support::{
    Backend, Client, Process, Spawn, TestEnv, eml_files, event, eventually, now_seconds, only,
    owner, sign, unfold_quoted_printable,
};
use smtp_sink::SmtpSink;

const WAIT: Duration = Duration::from_secs(30);

/// Runs the whole path on one backend pair: create tenant and integration over HTTP, post a
/// signed webhook, see the user, the event and the invitation email.
async fn webhook_becomes_invited_user(backend: Backend, smtp: Option<SmtpSink>) {
    let Some(env) = TestEnv::new(backend).await else {
        return;
    };
    let process = env
        .spawn(Spawn {
            smtp_url: smtp.as_ref().map(|sink| sink.url.clone()),
            ..Spawn::default()
        })
        .await;
    let client = Client::new(&process);
    let tenant = client.create_tenant("Acme Corp").await;
    let integration = client.create_integration(&tenant, json!({})).await;
    assert!(integration.secret.starts_with("whsec_"));
    assert_eq!(
        integration.body["webhook_url"],
        format!("http://127.0.0.1:8080/hooks/{}", integration.id)
    );

    let body = event(
        "evt_1",
        "opportunity.updated",
        &owner("005A000001", "Ann", "Lee", "Ann.Lee@example.com"),
    );
    let (status, answer) = client.send(&integration, "msg_1", &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "queued");
    let event_id = answer["event_id"].as_str().expect("event id").to_owned();

    let user = eventually("the user to be listed", WAIT, || async {
        client.users("").await.into_iter().next()
    })
    .await;
    assert_eq!(user["email"], "Ann.Lee@example.com");
    assert_eq!(user["first_name"], "Ann");
    assert_eq!(user["last_name"], "Lee");
    assert_eq!(user["status"], "active");
    assert_eq!(user["role"], "member");
    assert_eq!(user["tenant_id"], tenant.as_str());
    let identity = only(
        user["identities"].as_array().expect("identities"),
        "identity",
    );
    assert_eq!(identity["integration_id"], integration.id.as_str());
    assert_eq!(identity["external_id"], "005A000001");

    let logged = only(&client.events("").await, "event");
    assert_eq!(logged["id"], event_id.as_str());
    assert_eq!(logged["outcome"], "created");
    assert_eq!(logged["user_id"], user["id"]);
    assert_eq!(logged["provider_event_id"], "msg_1");
    let (status, one) = client.get(&format!("/v1/events/{event_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["outcome"], "created");

    let email = match &smtp {
        Some(sink) => {
            eventually("the invitation to reach the SMTP server", WAIT, || async {
                sink.messages().into_iter().next()
            })
            .await
        }
        None => {
            eventually("the invitation .eml file", WAIT, || async {
                eml_files(&env.outbox()).into_iter().next()
            })
            .await
        }
    };
    let email = unfold_quoted_printable(&email);
    assert!(
        email.contains("To: \"Ann Lee\" <Ann.Lee@example.com>"),
        "{email}"
    );
    assert!(email.contains("Hi Ann"), "{email}");
    assert!(email.contains("Acme Corp"), "{email}");
    assert!(
        email.contains("http://127.0.0.1:8080/invitations/"),
        "{email}"
    );
    let user_id = user["id"].as_str().expect("user id");
    let sent = eventually("the invitation to be recorded as sent", WAIT, || async {
        let (_, user) = client.get(&format!("/v1/users/{user_id}")).await;
        (user["invitation"]["state"] == "sent").then_some(user)
    })
    .await;
    assert!(sent["invitation"]["sent_at"].is_string());

    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn sqlite_and_embedded_queue_invite_by_eml_file() {
    webhook_becomes_invited_user(Backend::SqliteEmbedded, None).await;
}

#[tokio::test]
async fn postgres_and_rabbitmq_invite_over_smtp() {
    let sink = SmtpSink::start().await.expect("an SMTP sink on loopback");
    webhook_becomes_invited_user(Backend::PostgresRabbit, Some(sink)).await;
}

#[tokio::test]
async fn sqlite_and_rabbitmq_work_together() {
    webhook_becomes_invited_user(Backend::SqliteRabbit, None).await;
}

#[tokio::test]
async fn postgres_and_embedded_queue_work_together() {
    let sink = SmtpSink::start().await.expect("an SMTP sink on loopback");
    webhook_becomes_invited_user(Backend::PostgresEmbedded, Some(sink)).await;
}

/// The same webhook twice and 20 different webhooks for one new owner at once: one user, one
/// invitation.
async fn duplicates_make_one_user(backend: Backend) {
    let Some(env) = TestEnv::new(backend).await else {
        return;
    };
    let sink = SmtpSink::start().await.expect("an SMTP sink on loopback");
    let process = env
        .spawn(Spawn {
            smtp_url: Some(sink.url.clone()),
            ..Spawn::default()
        })
        .await;
    let client = Client::new(&process);
    let tenant = client.create_tenant("Acme").await;
    let integration = client.create_integration(&tenant, json!({})).await;

    let ann = owner("005A", "Ann", "Lee", "ann@example.com");
    let body = event("evt_dup", "opportunity.updated", &ann);
    let (first, answer) = client.send(&integration, "msg_dup", &body).await;
    assert_eq!(first, 202, "{answer}");
    let event_id = answer["event_id"].clone();
    eventually("the first delivery to be processed", WAIT, || async {
        (client.events("").await.len() == 1).then_some(())
    })
    .await;
    // The CRM retries the same delivery (a later timestamp, so a fresh signature).
    let (second, answer) = client.send(&integration, "msg_dup", &body).await;
    assert_eq!(second, 200, "{answer}");
    assert_eq!(answer["status"], "duplicate");
    assert_eq!(answer["event_id"], event_id);

    // Twenty different events for a second new owner, all at once.
    let bob = owner("005B", "Bob", "Stone", "bob@example.com");
    let mut posts = Vec::new();
    for n in 0..20 {
        let client = client.clone();
        let integration = integration.clone();
        let body = event(&format!("evt_b{n}"), "opportunity.updated", &bob);
        posts.push(tokio::spawn(async move {
            client
                .send(&integration, &format!("msg_b{n}"), &body)
                .await
                .0
        }));
    }
    for post in posts {
        assert_eq!(post.await.expect("post task"), 202);
    }
    let events = eventually("all 21 events to be processed", WAIT, || async {
        let events = client.events("?limit=100").await;
        (events.len() == 21).then_some(events)
    })
    .await;
    let created = events.iter().filter(|e| e["outcome"] == "created").count();
    assert_eq!(created, 2, "one creation per owner: {events:#?}");
    let users = client.users("").await;
    assert_eq!(users.len(), 2, "{users:#?}");
    let invitations = eventually("both invitations to be sent", WAIT, || async {
        let messages = sink.messages();
        (messages.len() >= 2).then_some(messages)
    })
    .await;
    // Let any duplicate that would be sent have its chance: wait until both invitations are
    // recorded as sent, then count again.
    for user in &users {
        let id = user["id"].as_str().expect("id");
        eventually("the invitation to be recorded", WAIT, || async {
            let (_, user) = client.get(&format!("/v1/users/{id}")).await;
            (user["invitation"]["state"] == "sent").then_some(())
        })
        .await;
    }
    assert_eq!(invitations.len(), 2);
    assert_eq!(sink.messages().len(), 2, "one invitation per user");
    assert_eq!(
        sink.messages()
            .iter()
            .filter(|m| m.contains("bob@example.com"))
            .count(),
        1
    );

    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn duplicates_make_one_user_on_sqlite_and_embedded_queue() {
    duplicates_make_one_user(Backend::SqliteEmbedded).await;
}

#[tokio::test]
async fn duplicates_make_one_user_on_postgres_and_rabbitmq() {
    duplicates_make_one_user(Backend::PostgresRabbit).await;
}

/// A retry is recognised whichever ingress process it reaches: one that was running while
/// another accepted the event learns of it from the event log, and one started afterwards reads
/// it there at start-up.
#[tokio::test]
async fn every_ingress_process_recognises_a_duplicate() {
    let Some(env) = TestEnv::new(Backend::PostgresRabbit).await else {
        return;
    };
    let process = env.spawn(Spawn::default()).await;
    let intake = |process: &Process, client: &Client| Client {
        ingress: process.ingress.clone().expect("ingress address"),
        ..client.clone()
    };
    let running = env
        .spawn(Spawn {
            roles: vec!["ingress", "admin"],
            ..Spawn::default()
        })
        .await;
    let client = Client::new(&process);
    let tenant = client.create_tenant("Acme").await;
    let integration = client.create_integration(&tenant, json!({})).await;
    let body = event(
        "evt_retry",
        "opportunity.updated",
        &owner("005R", "Rae", "Ng", "rae@example.com"),
    );
    let event_id = client
        .send_processed(&integration, "msg_retry", &body)
        .await;

    // The running process reads what the log gained within a second. (Until then it would
    // take the retry for a new event, publish it again for the consumer to ignore, and know
    // it from then on: asking before it has read would not show that it reads.)
    let metrics = format!("{}/metrics", running.admin_url());
    eventually(
        "the other ingress process to read the event",
        WAIT,
        || async {
            let text = client
                .http
                .get(&metrics)
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let read: f64 = text
                .lines()
                .find_map(|line| line.strip_prefix("rollcall_event_log_ids_read_total "))?
                .parse()
                .ok()?;
            (read >= 1.0).then_some(())
        },
    )
    .await;
    let (status, answer) = intake(&running, &client)
        .send(&integration, "msg_retry", &body)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "duplicate");
    assert_eq!(answer["event_id"], event_id);

    let late = env
        .spawn(Spawn {
            roles: vec!["ingress"],
            ..Spawn::default()
        })
        .await;
    let (status, answer) = intake(&late, &client)
        .send(&integration, "msg_retry", &body)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "duplicate");
    assert_eq!(answer["event_id"], event_id);

    // However often it was published, it was processed once.
    assert_eq!(client.events("").await.len(), 1);
    assert_eq!(client.users("").await.len(), 1);

    drop((process, running, late));
    env.cleanup().await;
}

/// Bad signature, stale timestamp, malformed JSON, unknown integration, oversized body: the
/// documented status, and nothing queued or created.
async fn bad_requests_change_nothing(backend: Backend) {
    let Some(env) = TestEnv::new(backend).await else {
        return;
    };
    let process = env.spawn(Spawn::default()).await;
    let client = Client::new(&process);
    let tenant = client.create_tenant("Acme").await;
    let integration = client
        .create_integration(&tenant, json!({"max_body_bytes": 4096}))
        .await;
    let body = event(
        "evt_x",
        "opportunity.updated",
        &owner("X1", "Eve", "Bad", "eve@example.com"),
    );
    let problem = |value: &serde_json::Value, status: u16| {
        assert_eq!(value["status"], status, "{value}");
        assert!(
            value["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("https://")),
            "{value}"
        );
        assert!(value["detail"].is_string(), "{value}");
        // A detail never carries the secret or an expected signature.
        let text = value.to_string();
        assert!(!text.contains(&integration.secret));
        assert!(!text.contains(integration.secret.trim_start_matches("whsec_")));
    };

    // A signature made with another secret.
    let forged = sign(
        "whsec_bm90LXRoZS1yaWdodC1zZWNyZXQtMDEyMzQ1Njc4OQ==",
        "msg_x",
        now_seconds(),
        &body,
    );
    let (status, answer, headers) = client
        .post_hook(&integration.id, body.clone(), &forged)
        .await;
    assert_eq!(status, 401);
    problem(&answer, 401);
    assert_eq!(headers["content-type"], "application/problem+json");

    // Correctly signed, but 301 seconds old.
    let stale = sign(&integration.secret, "msg_x", now_seconds() - 301, &body);
    let (status, answer, _) = client
        .post_hook(&integration.id, body.clone(), &stale)
        .await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap_or("")
            .contains("tolerance"),
        "{answer}"
    );

    // No signature at all.
    let (status, _, _) = client.post_hook(&integration.id, body.clone(), &[]).await;
    assert_eq!(status, 401);

    // Correctly signed, but not JSON, and JSON missing the owner.
    for malformed in ["{\"id\": \"evt\", \"type\":", r#"{"id":"evt","type":"x"}"#] {
        let headers = sign(&integration.secret, "msg_m", now_seconds(), malformed);
        let (status, answer, _) = client
            .post_hook(&integration.id, malformed.to_owned(), &headers)
            .await;
        assert_eq!(status, 400, "{malformed}: {answer}");
        problem(&answer, 400);
    }

    // No such integration, and not even an id.
    let headers = sign(&integration.secret, "msg_u", now_seconds(), &body);
    for id in ["01a2013a-0000-7000-8000-000000000000", "not-an-id"] {
        let (status, answer, _) = client.post_hook(id, body.clone(), &headers).await;
        assert_eq!(status, 404, "{answer}");
        problem(&answer, 404);
    }

    // Over the integration's 4 KiB limit, signed correctly.
    let big = event(
        "evt_big",
        "opportunity.updated",
        &json!({"id": "B1", "title": "x".repeat(5000)}),
    );
    let headers = sign(&integration.secret, "msg_big", now_seconds(), &big);
    let (status, answer, _) = client.post_hook(&integration.id, big, &headers).await;
    assert_eq!(status, 413, "{answer}");
    problem(&answer, 413);

    // A good event after all of them: once it is processed, it must be the only effect.
    let good = event(
        "evt_ok",
        "opportunity.updated",
        &owner("G1", "Gil", "Good", "gil@example.com"),
    );
    let (status, _) = client.send(&integration, "msg_ok", &good).await;
    assert_eq!(status, 202);
    let events = eventually("the good event to be processed", WAIT, || async {
        let events = client.events("").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(
        events.len(),
        1,
        "only the good event is in the log: {events:#?}"
    );
    assert_eq!(events[0]["provider_event_id"], "msg_ok");
    let users = client.users("").await;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["email"], "gil@example.com");
    if let Some(rabbit) = &env.rabbit {
        assert_eq!(rabbit.work_queue_depth().await, 0, "nothing left queued");
    }

    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn bad_requests_change_nothing_on_sqlite_and_embedded_queue() {
    bad_requests_change_nothing(Backend::SqliteEmbedded).await;
}

#[tokio::test]
async fn bad_requests_change_nothing_on_postgres_and_rabbitmq() {
    bad_requests_change_nothing(Backend::PostgresRabbit).await;
}

#[tokio::test]
async fn unreachable_rabbitmq_answers_503_and_is_not_ready() {
    let Some(env) = TestEnv::new(Backend::SqliteEmbedded).await else {
        return;
    };
    // A port nothing listens on: bind one, note it, close it.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let process = env
        .spawn(Spawn {
            amqp_url: Some(format!("amqp://guest:guest@127.0.0.1:{closed}/%2f")),
            expect_unready: true,
            ..Spawn::default()
        })
        .await;
    let client = Client::new(&process);
    let tenant = client.create_tenant("Acme").await;
    let integration = client.create_integration(&tenant, json!({})).await;
    let body = event(
        "evt_1",
        "opportunity.updated",
        &owner("A1", "Ann", "Lee", "ann@example.com"),
    );
    let headers = sign(&integration.secret, "msg_1", now_seconds(), &body);
    let (status, answer, response_headers) =
        client.post_hook(&integration.id, body, &headers).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(response_headers["retry-after"], "5");
    assert_eq!(answer["status"], 503);

    for base in [client.ingress.as_str(), client.admin.as_str()] {
        let response = client
            .http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("readyz");
        assert_eq!(response.status().as_u16(), 503);
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["queue"], "unreachable");
        assert_eq!(body["database"], "ok");
        let alive = client
            .http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("healthz");
        assert_eq!(alive.status().as_u16(), 200);
    }
    assert!(client.users("").await.is_empty());
    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn first_start_prints_an_operator_token_that_works() {
    let Some(env) = TestEnv::new(Backend::SqliteEmbedded).await else {
        return;
    };
    let process = env
        .spawn(Spawn {
            generated_token: true,
            ..Spawn::default()
        })
        .await;
    let token = process
        .operator_token
        .clone()
        .expect("the token is printed on first start");
    assert!(token.starts_with("rc_op_"));
    let client = Client::new(&process);
    client.create_tenant("Acme").await;
    let mut wrong = client.clone();
    wrong.token = "rc_op_wrong".to_owned();
    let (status, body) = wrong.get("/v1/tenants").await;
    assert_eq!(status, 401, "{body}");
    drop(process);

    // A second start on the same database does not print (or change) it.
    let again = env
        .spawn(Spawn {
            generated_token: true,
            ..Spawn::default()
        })
        .await;
    assert!(
        again.operator_token.is_none(),
        "the token is shown only once"
    );
    let mut client = Client::new(&again);
    client.token = token;
    let (status, tenants) = client.get("/v1/tenants").await;
    assert_eq!(status, 200);
    assert_eq!(tenants["items"].as_array().map(Vec::len), Some(1));
    drop(again);
    env.cleanup().await;
}

#[tokio::test]
async fn the_command_line_creates_tenants_and_integrations_and_sends_a_test_event() {
    let Some(env) = TestEnv::new(Backend::SqliteEmbedded).await else {
        return;
    };
    let run = |args: &[&str]| {
        let mut command = env.command();
        command.args(args);
        async move {
            let output = command.output().await.expect("running rollcall");
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        }
    };
    let (code, out, err) = run(&["tenant", "create", "--name", "Acme", "--json"]).await;
    assert_eq!(code, Some(0), "{err}");
    let tenant: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let tenant_id = tenant["id"].as_str().expect("id").to_owned();

    let (code, out, err) = run(&[
        "integration",
        "create",
        "--tenant",
        &tenant_id,
        "--name",
        "CRM",
        "--publish",
        "--json",
    ])
    .await;
    assert_eq!(code, Some(0), "{err}");
    let integration: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(integration["state"], "live");
    let id = integration["id"].as_str().expect("id").to_owned();
    let secret = integration["secret"].as_str().expect("secret").to_owned();

    // Bad input: one line on stderr, non-zero exit.
    let (code, _, err) = run(&["integration", "create", "--tenant", "nope", "--name", "CRM"]).await;
    assert_ne!(code, Some(0));
    assert!(err.contains("--tenant"), "{err}");
    let (code, _, err) = run(&[
        "integration",
        "create",
        "--tenant",
        &tenant_id,
        "--name",
        "CRM",
        "--settings",
        "{\"auto_creat\": false}",
    ])
    .await;
    assert_ne!(code, Some(0));
    assert!(err.contains("auto_creat"), "{err}");

    let process = env.spawn(Spawn::default()).await;
    let (code, out, err) = run(&[
        "send-test-event",
        "--integration",
        &id,
        "--secret",
        &secret,
        "--url",
        process.ingress_url(),
        "--email",
        "cli@example.com",
        "--first-name",
        "Cli",
        "--last-name",
        "User",
    ])
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("202 "), "{out}");
    let client = Client::new(&process);
    eventually("the test event's user", WAIT, || async {
        client
            .users("")
            .await
            .into_iter()
            .find(|u| u["email"] == "cli@example.com")
    })
    .await;
    let (code, out, _) = run(&["users", "list"]).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("Cli User <cli@example.com>"), "{out}");
    drop(process);
    env.cleanup().await;
}
