//! Provisioning rules through the running binary: what each kind of event does to accounts,
//! issues and the event log; shadow mode and previews; and the races.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Backend, Client, Spawn, TestEnv, eventually, now_seconds, sign};
use smtp_sink::SmtpSink;

const WAIT: Duration = Duration::from_secs(30);

/// A canonical event.
fn event(id: &str, kind: &str, occurred_at: &str, owner: &Value) -> String {
    json!({"id": id, "type": kind, "occurred_at": occurred_at, "owner": owner}).to_string()
}

/// Sends `body` with delivery id `id` and waits until it is processed; answers the log row.
async fn deliver(
    client: &Client,
    integration: &crate::support::app::Integration,
    id: &str,
    body: &str,
) -> Value {
    let headers = sign(&integration.secret, id, now_seconds(), body);
    let (status, answer, _) = client
        .post_hook(&integration.id, body.to_owned(), &headers)
        .await;
    assert_eq!(status, 202, "{answer}");
    client.processed(&integration.id, id).await
}

async fn start(backend: Backend) -> Option<(TestEnv, crate::support::Process, Client)> {
    let env = TestEnv::new(backend).await?;
    let process = env.spawn(Spawn::default()).await;
    let client = Client::new(&process);
    Some((env, process, client))
}

fn ann(extra: Value) -> Value {
    let mut owner = json!({"id": "005A", "first_name": "Ann", "last_name": "Lee", "email": "ann@example.com", "status": "active"});
    if let (Some(owner), Some(extra)) = (owner.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            owner.insert(key.clone(), value.clone());
        }
    }
    owner
}

#[tokio::test]
async fn missing_fields_open_an_issue_that_a_later_event_closes_on_sqlite_and_embedded_queue() {
    missing_fields_open_an_issue_that_a_later_event_closes(Backend::SqliteEmbedded).await;
}

#[tokio::test]
async fn missing_fields_open_an_issue_that_a_later_event_closes_on_postgres_and_rabbitmq() {
    missing_fields_open_an_issue_that_a_later_event_closes(Backend::PostgresRabbit).await;
}

async fn missing_fields_open_an_issue_that_a_later_event_closes(backend: Backend) {
    let Some((env, process, client)) = start(backend).await else {
        return;
    };
    let tenant = client.create_tenant("Acme").await;
    let integration = client.create_integration(&tenant, json!({})).await;

    let partial = json!({"id": "005A", "email": "ann@example.com"});
    let logged = deliver(
        &client,
        &integration,
        "m1",
        &event("e1", "deal.updated", "2026-11-21T10:00:00Z", &partial),
    )
    .await;
    assert_eq!(logged["outcome"], "issue");
    assert_eq!(logged["reason"], "missing first_name, last_name");
    assert!(client.users("").await.is_empty());
    let logged = deliver(
        &client,
        &integration,
        "m2",
        &event("e2", "deal.updated", "2026-11-21T10:01:00Z", &partial),
    )
    .await;
    assert_eq!(logged["outcome"], "issue");

    let issues = client.issues("?open=true").await;
    assert_eq!(
        issues.len(),
        1,
        "one open issue per owner and kind: {issues:#?}"
    );
    let issue = &issues[0];
    assert_eq!(issue["kind"], "missing_fields");
    assert_eq!(issue["external_id"], "005A");
    assert_eq!(issue["missing"], json!(["first_name", "last_name"]));
    assert_eq!(issue["occurrences"], 2);
    assert_eq!(issue["integration_id"], integration.id.as_str());
    let (status, csv) = client.get_text("/v1/issues.csv").await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,integration_id,owner_id,kind,missing_fields,detail,occurrences,opened_at,updated_at,resolved_at,status"
    );
    assert!(
        lines[1].contains(
            ",005A,missing_fields,first_name last_name,\"missing first_name, last_name\",2,"
        ),
        "{csv}"
    );
    assert!(lines[1].ends_with(",open"), "{csv}");

    let logged = deliver(
        &client,
        &integration,
        "m3",
        &event(
            "e3",
            "deal.updated",
            "2026-11-21T10:02:00Z",
            &ann(json!({})),
        ),
    )
    .await;
    assert_eq!(logged["outcome"], "created");
    assert!(
        client.issues("?open=true").await.is_empty(),
        "the issue closed itself"
    );
    let resolved = client.issues("?open=false").await;
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["resolved_by_event_id"], logged["id"]);
    let (status, problem) = client.get("/v1/issues?open=maybe").await;
    assert_eq!(status, 400, "{problem}");
    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn auto_create_workflows_and_completed_work_decide_what_counts() {
    let Some((env, process, client)) = start(Backend::SqliteEmbedded).await else {
        return;
    };
    let tenant = client.create_tenant("Acme").await;

    let off = client
        .create_integration(&tenant, json!({"auto_create": false}))
        .await;
    let logged = deliver(
        &client,
        &off,
        "a1",
        &event(
            "a1",
            "deal.updated",
            "2026-11-21T10:00:00Z",
            &ann(json!({})),
        ),
    )
    .await;
    assert_eq!(logged["outcome"], "ignored");
    assert_eq!(
        logged["reason"],
        "auto_create is off: unknown owners are not created"
    );

    let deals = client
        .create_integration(&tenant, json!({"workflows": ["deal.*"]}))
        .await;
    let logged = deliver(
        &client,
        &deals,
        "w1",
        &event(
            "w1",
            "contact.creation",
            "2026-11-21T10:00:00Z",
            &ann(json!({})),
        ),
    )
    .await;
    assert_eq!(logged["outcome"], "ignored");
    assert!(
        logged["reason"]
            .as_str()
            .unwrap_or("")
            .contains("contact.creation is not one of"),
        "{logged}"
    );
    let logged = deliver(
        &client,
        &deals,
        "w2",
        &event(
            "w2",
            "deal.propertyChange",
            "2026-11-21T10:00:00Z",
            &ann(json!({})),
        ),
    )
    .await;
    assert_eq!(logged["outcome"], "created");

    let jobs = client
        .create_integration(
            &tenant,
            json!({"require_completed_work": true, "completed_work_events": ["job.completed"]}),
        )
        .await;
    let bob =
        json!({"id": "T1", "first_name": "Bob", "last_name": "Fix", "email": "bob@example.com"});
    let logged = deliver(
        &client,
        &jobs,
        "j1",
        &event("j1", "job.created", "2026-11-21T10:00:00Z", &bob),
    )
    .await;
    assert_eq!(logged["outcome"], "ignored");
    assert!(
        logged["reason"]
            .as_str()
            .unwrap_or("")
            .starts_with("no completed work yet"),
        "{logged}"
    );
    assert!(client.users("?q=bob").await.is_empty());
    let logged = deliver(
        &client,
        &jobs,
        "j2",
        &event("j2", "job.completed", "2026-11-21T11:00:00Z", &bob),
    )
    .await;
    assert_eq!(logged["outcome"], "created");
    assert_eq!(client.users("?q=bob").await.len(), 1);
    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn matching_policies_link_by_email_only_as_allowed_on_sqlite_and_embedded_queue() {
    matching_policies_link_by_email_only_as_allowed(Backend::SqliteEmbedded).await;
}

#[tokio::test]
async fn matching_policies_link_by_email_only_as_allowed_on_postgres_and_rabbitmq() {
    matching_policies_link_by_email_only_as_allowed(Backend::PostgresRabbit).await;
}

async fn matching_policies_link_by_email_only_as_allowed(backend: Backend) {
    let Some((env, process, client)) = start(backend).await else {
        return;
    };
    let tenant = client.create_tenant("Acme").await;
    // A user who already exists (created through another integration of the tenant).
    let first = client.create_integration(&tenant, json!({})).await;
    let existing = json!({"id": "HR-1", "first_name": "Ann", "last_name": "Lee", "email": "Ann@Example.com", "employee_ids": ["AL01"]});
    assert_eq!(
        deliver(
            &client,
            &first,
            "x1",
            &event("x1", "t", "2026-11-21T10:00:00Z", &existing)
        )
        .await["outcome"],
        "created"
    );
    let user_id = client.users("").await[0]["id"].clone();

    let owner = json!({"id": "CRM-9", "first_name": "Ann", "last_name": "Lee", "email": "ann@example.com", "employee_ids": ["al01"]});
    // external_id (the default): an issue, never a merge.
    let strict = client.create_integration(&tenant, json!({})).await;
    let logged = deliver(
        &client,
        &strict,
        "s1",
        &event("s1", "t", "2026-11-21T10:00:00Z", &owner),
    )
    .await;
    assert_eq!(logged["outcome"], "issue");
    assert_eq!(
        client
            .issues(&format!("?integration_id={}", strict.id))
            .await[0]["kind"],
        "email_conflict"
    );
    // email_and_id with a case-different employee id: still an issue.
    let crewhu = client
        .create_integration(&tenant, json!({"match": "email_and_id"}))
        .await;
    let logged = deliver(
        &client,
        &crewhu,
        "c1",
        &event("c1", "t", "2026-11-21T10:00:00Z", &owner),
    )
    .await;
    assert_eq!(logged["outcome"], "issue");
    assert_eq!(
        client
            .issues(&format!("?integration_id={}", crewhu.id))
            .await[0]["kind"],
        "employee_id_mismatch"
    );
    // ... and linked with the exact id.
    let exact = json!({"id": "CRM-9", "first_name": "Ann", "last_name": "Lee", "email": "ann@example.com", "employee_ids": ["AL01"]});
    let logged = deliver(
        &client,
        &crewhu,
        "c2",
        &event("c2", "t", "2026-11-21T10:01:00Z", &exact),
    )
    .await;
    assert_eq!(logged["outcome"], "updated");
    assert_eq!(logged["user_id"], user_id);
    // email: linked, case-insensitively.
    let idibu = client
        .create_integration(&tenant, json!({"match": "email"}))
        .await;
    let logged = deliver(
        &client,
        &idibu,
        "i1",
        &event("i1", "t", "2026-11-21T10:00:00Z", &owner),
    )
    .await;
    assert_eq!(logged["user_id"], user_id);
    let (_, user) = client
        .get(&format!("/v1/users/{}", user_id.as_str().unwrap_or("")))
        .await;
    assert_eq!(
        user["identities"].as_array().map(Vec::len),
        Some(3),
        "{user}"
    );
    assert_eq!(client.users("").await.len(), 1, "still one user");
    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn users_are_kept_in_step_and_stale_events_do_not_overwrite() {
    let Some((env, process, client)) = start(Backend::SqliteEmbedded).await else {
        return;
    };
    let tenant = client.create_tenant("Acme").await;
    let integration = client.create_integration(&tenant, json!({})).await;
    deliver(
        &client,
        &integration,
        "u1",
        &event("u1", "t", "2026-11-21T10:00:00Z", &ann(json!({}))),
    )
    .await;

    let changed = ann(
        json!({"email": "ann.lee@newco.example", "title": "VP Sales", "department": "Sales East", "location": "Boston", "avatar_url": "https://cdn.example.com/ann.png"}),
    );
    let logged = deliver(
        &client,
        &integration,
        "u2",
        &event("u2", "t", "2026-11-21T11:00:00Z", &changed),
    )
    .await;
    assert_eq!(logged["outcome"], "updated");
    let user = &client.users("").await[0];
    assert_eq!(
        user["email"], "ann.lee@newco.example",
        "the email change followed the identity link"
    );
    assert_eq!(user["title"], "VP Sales");
    assert_eq!(user["department"], "Sales East");
    assert_eq!(user["avatar_url"], "https://cdn.example.com/ann.png");

    // Older than the last applied event: logged as stale, nothing overwritten.
    let old = ann(json!({"title": "Intern"}));
    let logged = deliver(
        &client,
        &integration,
        "u3",
        &event("u3", "t", "2026-11-21T10:30:00Z", &old),
    )
    .await;
    assert_eq!(logged["outcome"], "ignored");
    assert!(
        logged["reason"].as_str().unwrap_or("").starts_with("stale"),
        "{logged}"
    );
    assert_eq!(client.users("").await[0]["title"], "VP Sales");

    // The same facts again: unchanged, and no second invitation.
    let logged = deliver(
        &client,
        &integration,
        "u4",
        &event("u4", "t", "2026-11-21T12:00:00Z", &changed),
    )
    .await;
    assert_eq!(logged["outcome"], "unchanged");
    eventually("the invitation file", WAIT, || async {
        (crate::support::eml_files(&env.outbox()).len() == 1).then_some(())
    })
    .await;
    let (_, detail) = client
        .get(&format!(
            "/v1/users/{}",
            client.users("").await[0]["id"].as_str().unwrap_or("")
        ))
        .await;
    assert_eq!(detail["invitation"]["attempts"], 1);

    // Timings are in the log.
    assert!(logged["processing_ms"].as_i64().is_some_and(|ms| ms >= 0));
    assert!(logged["received_at"].is_string() && logged["processed_at"].is_string());
    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn leavers_are_deactivated_never_deleted_and_can_come_back() {
    let Some((env, process, client)) = start(Backend::SqliteEmbedded).await else {
        return;
    };
    let tenant = client.create_tenant("Acme").await;
    let integration = client.create_integration(&tenant, json!({})).await;
    deliver(
        &client,
        &integration,
        "l1",
        &event("l1", "t", "2026-11-21T10:00:00Z", &ann(json!({}))),
    )
    .await;
    let logged = deliver(
        &client,
        &integration,
        "l2",
        &event(
            "l2",
            "t",
            "2026-11-21T11:00:00Z",
            &ann(json!({"status": "terminated"})),
        ),
    )
    .await;
    assert_eq!(logged["outcome"], "deactivated");
    let users = client.users("?status=leaver").await;
    assert_eq!(users.len(), 1, "the leaver is kept");
    let logged = deliver(
        &client,
        &integration,
        "l3",
        &event(
            "l3",
            "t",
            "2026-11-21T12:00:00Z",
            &ann(json!({"status": "active"})),
        ),
    )
    .await;
    assert_eq!(logged["outcome"], "reactivated");
    assert_eq!(client.users("?status=active").await.len(), 1);

    // Status filter and member types.
    let all = client
        .create_integration(
            &tenant,
            json!({"status_filter": "all", "member_types": ["F"]}),
        )
        .await;
    let sleeper = json!({"id": "S1", "first_name": "Sam", "last_name": "Day", "email": "sam@example.com", "status": "inactive", "member_type": "F"});
    assert_eq!(
        deliver(
            &client,
            &all,
            "f1",
            &event("f1", "t", "2026-11-21T10:00:00Z", &sleeper)
        )
        .await["outcome"],
        "created"
    );
    assert_eq!(client.users("?q=sam").await[0]["status"], "inactive");
    let contractor = json!({"id": "S2", "first_name": "Cal", "last_name": "Sub", "email": "cal@example.com", "member_type": "X"});
    let logged = deliver(
        &client,
        &all,
        "f2",
        &event("f2", "t", "2026-11-21T10:00:00Z", &contractor),
    )
    .await;
    assert_eq!(logged["outcome"], "ignored");
    assert!(
        logged["reason"]
            .as_str()
            .unwrap_or("")
            .contains("member type X does not sync"),
        "{logged}"
    );
    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn roles_pending_users_and_field_mapping() {
    let Some((env, process, client)) = start(Backend::SqliteEmbedded).await else {
        return;
    };
    let tenant = client.create_tenant("Acme").await;
    let integration = client
        .create_integration(
            &tenant,
            json!({"default_role": "sales-rep", "pending_until_team": true, "field_mapping": {"email": "/work_email"}}),
        )
        .await;
    let owner = json!({"id": "P1", "first_name": "Pat", "last_name": "Kim", "work_email": "pat@example.com", "email": "private@example.org"});
    let logged = deliver(
        &client,
        &integration,
        "p1",
        &event("p1", "t", "2026-11-21T10:00:00Z", &owner),
    )
    .await;
    assert_eq!(logged["outcome"], "created");
    let user = &client.users("").await[0];
    assert_eq!(
        user["email"], "pat@example.com",
        "the mapped field was used"
    );
    assert_eq!(user["role"], "sales-rep");
    assert_eq!(user["status"], "pending");
    assert_eq!(
        user["invitation"]["state"], "not_sent",
        "pending users are not invited yet"
    );
    // Activity of a pending user is recorded and flagged.
    let busy = json!({"id": "P1", "first_name": "Pat", "last_name": "Kim", "work_email": "pat@example.com", "title": "Rep"});
    let logged = deliver(
        &client,
        &integration,
        "p2",
        &event("p2", "t", "2026-11-21T11:00:00Z", &busy),
    )
    .await;
    assert_eq!(logged["outcome"], "updated");
    assert_eq!(logged["reason"], "pending: the user is not on a team yet");
    // A mapping key that does not exist is refused with the field named.
    let (status, problem) = client
        .post("/v1/integrations", &json!({"tenant_id": tenant, "name": "x", "settings": {"field_mapping": {"mail": "/m"}}}))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["field"], "settings.field_mapping");
    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn draft_integrations_run_in_shadow_and_previews_write_nothing() {
    let Some((env, process, client)) = start(Backend::SqliteEmbedded).await else {
        return;
    };
    let tenant = client.create_tenant("Acme").await;
    let created = client
        .create_draft(&json!({"tenant_id": tenant, "name": "CRM"}))
        .await;
    assert_eq!(created["state"], "draft");
    let id = created["id"].as_str().unwrap_or("").to_owned();
    let secret = created["secret"].as_str().unwrap_or("").to_owned();

    // Preview: the decisions, nothing written.
    let sample = event(
        "s1",
        "deal.updated",
        "2026-11-21T10:00:00Z",
        &ann(json!({})),
    );
    let (status, preview) = client
        .post_raw(
            &format!("/v1/integrations/{id}/test"),
            "application/json",
            sample.clone(),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    let owner = &preview["events"][0]["owners"][0];
    assert_eq!(owner["action"], "create");
    assert_eq!(owner["outcome"], "created");
    assert_eq!(owner["status"], "active");
    assert_eq!(owner["invite"], true);
    let incomplete = event(
        "s2",
        "deal.updated",
        "2026-11-21T10:00:00Z",
        &json!({"id": "X"}),
    );
    let (_, preview) = client
        .post_raw(
            &format!("/v1/integrations/{id}/test"),
            "application/json",
            incomplete,
        )
        .await;
    assert_eq!(preview["events"][0]["owners"][0]["action"], "issue");
    let (status, problem) = client
        .post_raw(
            &format!("/v1/integrations/{id}/test"),
            "application/json",
            "{".to_owned(),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert!(client.users("").await.is_empty());
    assert!(client.events("").await.is_empty());
    assert!(client.issues("").await.is_empty());

    // A draft verifies, decides and logs, but creates nobody.
    let headers = sign(&secret, "d1", now_seconds(), &sample);
    let (status, _, _) = client.post_hook(&id, sample.clone(), &headers).await;
    assert_eq!(status, 202);
    let logged = client.processed(&id, "d1").await;
    assert_eq!(logged["shadow"], true);
    assert_eq!(
        logged["outcome"], "created",
        "the decision that would have been taken"
    );
    assert!(
        client.users("").await.is_empty(),
        "shadow mode creates nobody"
    );
    assert!(crate::support::eml_files(&env.outbox()).is_empty());

    // Published: live.
    let (status, live) = client
        .post(&format!("/v1/integrations/{id}/publish"), &json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(live["state"], "live");
    let again = event(
        "s3",
        "deal.updated",
        "2026-11-21T10:05:00Z",
        &ann(json!({})),
    );
    let headers = sign(&secret, "d2", now_seconds(), &again);
    client.post_hook(&id, again, &headers).await;
    let logged = client.processed(&id, "d2").await;
    assert_eq!(logged["shadow"], false);
    assert_eq!(logged["outcome"], "created");
    assert_eq!(client.users("").await.len(), 1);
    drop(process);
    env.cleanup().await;
}

/// Several processes on PostgreSQL and RabbitMQ: one ingress/API process and two workers.
async fn fleet(smtp: &SmtpSink) -> Option<(TestEnv, Vec<crate::support::Process>, Client)> {
    let env = TestEnv::new(Backend::PostgresRabbit).await?;
    let front = env
        .spawn(Spawn {
            roles: vec!["ingress", "admin"],
            ..Spawn::default()
        })
        .await;
    let client = Client::new(&front);
    let mut processes = vec![front];
    for _ in 0..2 {
        processes.push(
            env.spawn(Spawn {
                roles: vec!["worker"],
                smtp_url: Some(smtp.url.clone()),
                ..Spawn::default()
            })
            .await,
        );
    }
    Some((env, processes, client))
}

#[tokio::test]
async fn fifty_events_for_one_new_owner_on_two_workers_make_one_user() {
    let smtp = SmtpSink::start().await.expect("an SMTP sink on loopback");
    let Some((env, processes, client)) = fleet(&smtp).await else {
        return;
    };
    let tenant = client.create_tenant("Acme").await;
    let integration = client.create_integration(&tenant, json!({})).await;
    let mut posts = Vec::new();
    for n in 0..50 {
        let client = client.clone();
        let integration = integration.clone();
        posts.push(tokio::spawn(async move {
            let body = event(
                &format!("e{n}"),
                "deal.updated",
                "2026-11-21T10:00:00Z",
                &ann(json!({})),
            );
            let headers = sign(&integration.secret, &format!("m{n}"), now_seconds(), &body);
            client.post_hook(&integration.id, body, &headers).await.0
        }));
    }
    for post in posts {
        assert_eq!(post.await.expect("task"), 202);
    }
    let events = eventually("all 50 events to be processed", WAIT, || async {
        let events = client.events("?limit=100").await;
        (events.len() == 50).then_some(events)
    })
    .await;
    assert_eq!(
        events.iter().filter(|e| e["outcome"] == "created").count(),
        1,
        "{events:#?}"
    );
    let users = client.users("").await;
    assert_eq!(users.len(), 1);
    assert_eq!(
        users[0]["identities"].as_array().map(Vec::len),
        Some(1),
        "one identity link"
    );
    eventually("the invitation", WAIT, || async {
        (!smtp.messages().is_empty()).then_some(())
    })
    .await;
    let id = users[0]["id"].as_str().unwrap_or("").to_owned();
    eventually("the invitation to be recorded", WAIT, || async {
        let (_, user) = client.get(&format!("/v1/users/{id}")).await;
        (user["invitation"]["state"] == "sent").then_some(())
    })
    .await;
    assert_eq!(smtp.messages().len(), 1, "one invitation");
    drop(processes);
    env.cleanup().await;
}

#[tokio::test]
async fn two_owners_racing_for_one_email_make_one_user_and_one_issue() {
    let smtp = SmtpSink::start().await.expect("an SMTP sink on loopback");
    let Some((env, processes, client)) = fleet(&smtp).await else {
        return;
    };
    let tenant = client.create_tenant("Acme").await;
    let integration = client
        .create_integration(&tenant, json!({"match": "email"}))
        .await;
    let mut posts = Vec::new();
    for n in 0..2 {
        let client = client.clone();
        let integration = integration.clone();
        posts.push(tokio::spawn(async move {
            let owner = json!({"id": format!("OWNER-{n}"), "first_name": "Sam", "last_name": "Same", "email": "same@example.com"});
            let body = event(&format!("r{n}"), "deal.updated", "2026-11-21T10:00:00Z", &owner);
            let headers = sign(&integration.secret, &format!("r{n}"), now_seconds(), &body);
            client.post_hook(&integration.id, body, &headers).await.0
        }));
    }
    for post in posts {
        assert_eq!(post.await.expect("task"), 202);
    }
    let events = eventually("both events", WAIT, || async {
        let events = client.events("").await;
        (events.len() == 2).then_some(events)
    })
    .await;
    let mut outcomes: Vec<&str> = events
        .iter()
        .filter_map(|e| e["outcome"].as_str())
        .collect();
    outcomes.sort_unstable();
    assert_eq!(outcomes, ["created", "issue"], "{events:#?}");
    assert_eq!(client.users("").await.len(), 1);
    let issues = client.issues("").await;
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0]["kind"], "email_conflict");
    drop(processes);
    env.cleanup().await;
}

#[tokio::test]
async fn an_event_redelivered_after_a_crash_between_commit_and_ack_has_no_second_effect() {
    let smtp = SmtpSink::start().await.expect("an SMTP sink on loopback");
    let Some(env) = TestEnv::new(Backend::PostgresRabbit).await else {
        return;
    };
    let front = env
        .spawn(Spawn {
            roles: vec!["ingress", "admin"],
            ..Spawn::default()
        })
        .await;
    let client = Client::new(&front);
    let tenant = client.create_tenant("Acme").await;
    let integration = client.create_integration(&tenant, json!({})).await;
    // This worker aborts right after its first commit, before acknowledging.
    let mut doomed = env
        .spawn(Spawn {
            roles: vec!["worker"],
            smtp_url: Some(smtp.url.clone()),
            env: vec![
                (
                    "FAILPOINTS".to_owned(),
                    "worker-after-commit=1*return".to_owned(),
                ),
                // Should it die holding the invitation's claim, the claim expires quickly.
                (
                    "ROLLCALL_INVITATION_CLAIM_SECONDS".to_owned(),
                    "2".to_owned(),
                ),
            ],
            ..Spawn::default()
        })
        .await;
    let body = event(
        "c1",
        "deal.updated",
        "2026-11-21T10:00:00Z",
        &ann(json!({})),
    );
    let headers = sign(&integration.secret, "crash-1", now_seconds(), &body);
    assert_eq!(
        client.post_hook(&integration.id, body, &headers).await.0,
        202
    );
    let status = tokio::time::timeout(WAIT, doomed.child.wait())
        .await
        .expect("the worker crashed")
        .expect("status");
    assert!(
        !status.success(),
        "the worker died at the failpoint: {status:?}"
    );
    // Committed, not acknowledged: the event is in the log and still in the queue.
    let logged = client.processed(&integration.id, "crash-1").await;
    assert_eq!(logged["outcome"], "created");
    let rabbit = env.rabbit.clone().expect("rabbitmq");
    eventually(
        "the unacknowledged message to be back in the queue",
        WAIT,
        || {
            let rabbit = rabbit.clone();
            async move { (rabbit.work_queue_depth().await == 1).then_some(()) }
        },
    )
    .await;

    // A healthy worker takes the redelivery: no second user, event or invitation.
    let _healthy = env
        .spawn(Spawn {
            roles: vec!["worker"],
            smtp_url: Some(smtp.url.clone()),
            ..Spawn::default()
        })
        .await;
    eventually("the redelivery to be consumed", WAIT, || {
        let rabbit = rabbit.clone();
        async move { (rabbit.work_queue_depth().await == 0).then_some(()) }
    })
    .await;
    eventually("the invitation", WAIT, || async {
        (!smtp.messages().is_empty()).then_some(())
    })
    .await;
    assert_eq!(client.events("").await.len(), 1);
    assert_eq!(client.users("").await.len(), 1);
    let id = client.users("").await[0]["id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    eventually("the invitation to be recorded", WAIT, || async {
        let (_, user) = client.get(&format!("/v1/users/{id}")).await;
        (user["invitation"]["state"] == "sent").then_some(())
    })
    .await;
    assert_eq!(smtp.messages().len(), 1);
    drop(front);
    env.cleanup().await;
}
