//! The internal API as its users see it: tenant tokens and tenant isolation, users created and
//! edited by hand, teams and the pending-until-team gate, departments mapped to teams,
//! validation errors that name the field, and pagination under concurrent writes.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Backend, Client, Spawn, TestEnv, event, eventually, owner};

const WAIT: Duration = Duration::from_secs(30);

/// One process on the embedded defaults, and an operator client.
async fn start() -> Option<(TestEnv, crate::support::Process, Client)> {
    let env = TestEnv::new(Backend::SqliteEmbedded).await?;
    let process = env.spawn(Spawn::default()).await;
    let client = Client::new(&process);
    Some((env, process, client))
}

/// A client acting with another bearer token.
fn as_token(client: &Client, token: &str) -> Client {
    Client {
        token: token.to_owned(),
        ..client.clone()
    }
}

async fn create_user(client: &Client, body: Value) -> Value {
    let (status, user) = client.post("/v1/users", &body).await;
    assert_eq!(status, 201, "creating a user: {user}");
    user
}

async fn create_team(client: &Client, tenant: &str, name: &str) -> Value {
    let (status, team) = client
        .post("/v1/teams", &json!({"tenant_id": tenant, "name": name}))
        .await;
    assert_eq!(status, 201, "creating a team: {team}");
    team
}

async fn user(client: &Client, id: &str) -> Value {
    let (status, user) = client.get(&format!("/v1/users/{id}")).await;
    assert_eq!(status, 200, "{user}");
    user
}

async fn team(client: &Client, id: &str) -> Value {
    let (status, team) = client.get(&format!("/v1/teams/{id}")).await;
    assert_eq!(status, 200, "{team}");
    team
}

/// Waits until the user's invitation has left the outbox.
async fn invitation_sent(client: &Client, id: &str) {
    eventually(
        &format!("user {id}'s invitation to be sent"),
        WAIT,
        || async { (user(client, id).await["invitation"]["state"] == "sent").then_some(()) },
    )
    .await;
}

/// `(name, member_count)` of each team on a page.
fn member_counts(page: &Value) -> Vec<(String, i64)> {
    page["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or("").to_owned(),
                t["member_count"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|item| item["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn tenant_tokens_are_shown_once_record_use_and_stop_working_when_revoked() {
    let Some((env, _process, operator)) = start().await else {
        return;
    };
    let tenant = operator.create_tenant("Acme").await;
    let (status, created) = operator
        .post(
            &format!("/v1/tenants/{tenant}/tokens"),
            &json!({"name": "SalesScreen sync"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let value = created["value"].as_str().expect("the token's value");
    assert!(value.starts_with("rc_tk_"), "{value}");
    assert_eq!(created["tenant_id"], tenant.as_str());
    assert!(created["last_used_at"].is_null());
    let token_id = created["id"].as_str().expect("id").to_owned();

    // The tenant's own token sees its tenant and manages its own tokens.
    let acme = as_token(&operator, value);
    let (status, seen) = acme.get(&format!("/v1/tenants/{tenant}")).await;
    assert_eq!(status, 200, "{seen}");
    let (status, listed) = acme.get(&format!("/v1/tenants/{tenant}/tokens")).await;
    assert_eq!(status, 200, "{listed}");
    let listed = listed["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0].get("value").is_none(),
        "the value is never shown again: {listed:?}"
    );
    assert!(
        listed[0]["last_used_at"].is_string(),
        "use is recorded: {listed:?}"
    );
    // Operator-only routes stay closed to it.
    let (status, _) = acme.post("/v1/tenants", &json!({"name": "Other"})).await;
    assert_eq!(status, 403);

    // Blank names are refused, naming the field.
    let (status, problem) = operator
        .post(
            &format!("/v1/tenants/{tenant}/tokens"),
            &json!({"name": "  "}),
        )
        .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (422, Some("name")),
        "{problem}"
    );

    let (status, revoked) = acme.delete(&format!("/v1/tokens/{token_id}")).await;
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    let (status, problem) = acme.get(&format!("/v1/tenants/{tenant}")).await;
    assert_eq!(
        status, 401,
        "a revoked token stops working at once: {problem}"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn another_tenants_token_finds_nothing_and_changes_nothing() {
    // Events whose delivery id starts with "poison" fail until dead-lettered, so tenant A has
    // a dead letter too.
    let Some(env) = TestEnv::new(Backend::SqliteEmbedded).await else {
        return;
    };
    let process = env
        .spawn(Spawn {
            env: vec![("FAILPOINTS".to_owned(), "process-event=return".to_owned())],
            ..Spawn::default()
        })
        .await;
    let operator = Client::new(&process);
    // Tenant A with one of everything.
    let a = operator.create_tenant("A").await;
    let integration = operator.create_integration(&a, json!({})).await;
    let (status, _) = operator
        .send(
            &integration,
            "msg-a1",
            &event(
                "evt-a1",
                "deal.updated",
                &owner("A1", "Ann", "Lee", "ann@a.example"),
            ),
        )
        .await;
    assert_eq!(status, 202);
    let logged = operator.processed(&integration.id, "msg-a1").await;
    let event_id = logged["id"].as_str().expect("event id").to_owned();
    let a_user = logged["user_id"].as_str().expect("user id").to_owned();
    let no_email = json!({"id": "A2", "first_name": "Bo", "last_name": "Ek"});
    operator
        .send(
            &integration,
            "msg-a2",
            &event("evt-a2", "deal.updated", &no_email),
        )
        .await;
    operator
        .send(
            &integration,
            "poison-a3",
            &event(
                "evt-a3",
                "deal.updated",
                &owner("A3", "Cy", "Fa", "cy@a.example"),
            ),
        )
        .await;
    let dead_letter = eventually("A's dead letter", WAIT, || async {
        let (_, page) = operator.get("/v1/dead-letters").await;
        page["items"][0]["id"].as_str().map(str::to_owned)
    })
    .await;
    let issue = eventually("A's issue", WAIT, || async {
        operator.issues("").await.first()?["id"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    // A's invitation link, from the email in the outbox.
    let token = eventually("A's invitation email", WAIT, || async {
        crate::support::eml_files(&env.outbox())
            .iter()
            .map(|email| crate::support::unfold_quoted_printable(email))
            .find_map(|email| {
                let start = email.find("/invitations/")? + "/invitations/".len();
                Some(
                    email[start..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                        .collect::<String>(),
                )
            })
    })
    .await;
    let a_team = create_team(&operator, &a, "Closers").await["id"]
        .as_str()
        .expect("team id")
        .to_owned();
    let (_, a_token) = operator
        .post(&format!("/v1/tenants/{a}/tokens"), &json!({"name": "a"}))
        .await;
    let a_token_id = a_token["id"].as_str().expect("token id").to_owned();

    // Tenant B and its token.
    let b = operator.create_tenant("B").await;
    let b_team = create_team(&operator, &b, "Openers").await["id"]
        .as_str()
        .expect("team id")
        .to_owned();
    let (_, b_token) = operator
        .post(&format!("/v1/tenants/{b}/tokens"), &json!({"name": "b"}))
        .await;
    let b_client = as_token(&operator, b_token["value"].as_str().expect("value"));

    // What A's objects look like before B tries anything.
    let snapshot = |client: Client| {
        let paths = [
            format!("/v1/tenants/{a}"),
            format!("/v1/integrations/{}", integration.id),
            format!("/v1/users/{a_user}"),
            format!("/v1/teams/{a_team}"),
            format!("/v1/events/{event_id}"),
            format!("/v1/dead-letters/{dead_letter}"),
            format!("/v1/tenants/{a}/tokens"),
        ];
        async move {
            let mut seen = Vec::new();
            for path in paths {
                let (status, body) = client.get(&path).await;
                assert_eq!(status, 200, "{path}: {body}");
                seen.push(body);
            }
            seen
        }
    };
    let before = snapshot(operator.clone()).await;

    let i = &integration.id;
    let body = json!({});
    let rename = json!({"name": "Taken over"});
    type Call = (&'static str, String, Value);
    let calls: Vec<Call> = vec![
        ("GET", format!("/v1/tenants/{a}"), Value::Null),
        ("PATCH", format!("/v1/tenants/{a}"), rename.clone()),
        (
            "POST",
            format!("/v1/tenants/{a}/tokens"),
            json!({"name": "x"}),
        ),
        ("GET", format!("/v1/tenants/{a}/tokens"), Value::Null),
        ("DELETE", format!("/v1/tokens/{a_token_id}"), Value::Null),
        ("GET", format!("/v1/integrations/{i}"), Value::Null),
        (
            "PATCH",
            format!("/v1/integrations/{i}"),
            json!({"name": "x"}),
        ),
        (
            "POST",
            format!("/v1/integrations/{i}/publish"),
            body.clone(),
        ),
        (
            "POST",
            format!("/v1/integrations/{i}/secrets/rotate"),
            body.clone(),
        ),
        (
            "POST",
            format!("/v1/integrations/{i}/test"),
            json!({"id": "e", "type": "t", "owner": {"id": "o"}}),
        ),
        ("DELETE", format!("/v1/integrations/{i}"), Value::Null),
        ("GET", format!("/v1/users/{a_user}"), Value::Null),
        (
            "PATCH",
            format!("/v1/users/{a_user}"),
            json!({"title": "x"}),
        ),
        (
            "POST",
            format!("/v1/users/{a_user}/deactivate"),
            body.clone(),
        ),
        (
            "POST",
            format!("/v1/users/{a_user}/reactivate"),
            body.clone(),
        ),
        (
            "POST",
            format!("/v1/users/{a_user}/invitations"),
            body.clone(),
        ),
        ("GET", format!("/v1/teams/{a_team}"), Value::Null),
        ("PATCH", format!("/v1/teams/{a_team}"), rename.clone()),
        (
            "DELETE",
            format!("/v1/teams/{a_team}?force=true"),
            Value::Null,
        ),
        (
            "PUT",
            format!("/v1/teams/{a_team}/members/{a_user}"),
            Value::Null,
        ),
        (
            "DELETE",
            format!("/v1/teams/{a_team}/members/{a_user}"),
            Value::Null,
        ),
        // B's own team, A's user.
        (
            "PUT",
            format!("/v1/teams/{b_team}/members/{a_user}"),
            Value::Null,
        ),
        ("GET", format!("/v1/events/{event_id}"), Value::Null),
        (
            "GET",
            format!("/v1/dead-letters/{dead_letter}"),
            Value::Null,
        ),
        (
            "POST",
            format!("/v1/dead-letters/{dead_letter}/replay"),
            body.clone(),
        ),
        (
            "DELETE",
            format!("/v1/dead-letters/{dead_letter}"),
            Value::Null,
        ),
        (
            "POST",
            format!("/v1/invitations/{token}/accept"),
            body.clone(),
        ),
    ];
    for (method, path, body) in &calls {
        let url = format!("{}{path}", b_client.admin);
        let request = match *method {
            "GET" => b_client.http.get(&url),
            "POST" => b_client.http.post(&url).json(body),
            "PATCH" => b_client.http.patch(&url).json(body),
            "PUT" => b_client.http.put(&url),
            _ => b_client.http.delete(&url),
        };
        let response = request
            .bearer_auth(&b_client.token)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let problem: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(
            status, 404,
            "{method} {path} with another tenant's token: {problem}"
        );
        assert_eq!(
            problem["type"].as_str().map(|t| t.ends_with("not-found")),
            Some(true),
            "{problem}"
        );
    }
    // Lists show B nothing of A's, even when asked by A's id.
    for path in [
        "/v1/users".to_owned(),
        "/v1/teams".to_owned(),
        format!("/v1/teams?tenant_id={a}"),
        "/v1/events".to_owned(),
        "/v1/integrations".to_owned(),
        format!("/v1/integrations?tenant_id={a}"),
        "/v1/issues".to_owned(),
        "/v1/dead-letters".to_owned(),
    ] {
        let (status, page) = b_client.get(&path).await;
        assert_eq!(status, 200, "{path}: {page}");
        let listed = ids(&page);
        for foreign in [
            &a_user,
            &a_team,
            &event_id,
            &integration.id,
            &dead_letter,
            &issue,
        ] {
            assert!(!listed.contains(foreign), "{path} shows A's {foreign}");
        }
    }
    let (status, csv) = b_client.get_text("/v1/issues.csv").await;
    assert_eq!(status, 200);
    assert!(!csv.contains(&issue), "B's CSV shows A's issue: {csv}");
    // A bulk replay naming A's dead letter matches nothing.
    let (status, report) = b_client
        .post("/v1/dead-letters/replay", &json!({"ids": [dead_letter]}))
        .await;
    assert_eq!(
        (status, report["matched"].as_i64()),
        (200, Some(0)),
        "{report}"
    );
    // Naming A in a body reads as naming a tenant that does not exist.
    let (status, problem) = b_client
        .post(
            "/v1/users",
            &json!({"tenant_id": a, "email": "x@a.example", "first_name": "X", "last_name": "Y"}),
        )
        .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (422, Some("tenant_id")),
        "{problem}"
    );

    let after = snapshot(operator.clone()).await;
    // The invitation is still redeemable by A.
    let (status, accepted) = operator
        .post(&format!("/v1/invitations/{token}/accept"), &json!({}))
        .await;
    assert_eq!(status, 200, "{accepted}");
    for (before, after) in before.iter().zip(&after) {
        // The tokens list records its own reads; everything else must be byte-identical.
        if before.get("items").is_some() {
            assert_eq!(ids(before), ids(after));
            assert_eq!(after["items"][0]["revoked_at"], Value::Null);
        } else {
            assert_eq!(before, after, "A's object changed");
        }
    }
    env.cleanup().await;
}

#[tokio::test]
async fn teams_hold_pending_users_until_placed_then_activate_and_invite_them() {
    let Some((env, _process, client)) = start().await else {
        return;
    };
    let tenant = client.create_tenant("Acme").await;
    let integration = client
        .create_integration(&tenant, json!({"pending_until_team": true}))
        .await;
    client
        .send(
            &integration,
            "msg-1",
            &event(
                "evt-1",
                "deal.updated",
                &owner("O1", "Ann", "Lee", "ann@example.com"),
            ),
        )
        .await;
    let user_id = client.processed(&integration.id, "msg-1").await["user_id"]
        .as_str()
        .expect("user")
        .to_owned();
    let pending = user(&client, &user_id).await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["invitation"]["state"], "not_sent");

    let closers = create_team(&client, &tenant, "Closers").await;
    assert_eq!(closers["member_count"], 0);
    let closers = closers["id"].as_str().expect("id").to_owned();
    let (status, problem) = client
        .post(
            "/v1/teams",
            &json!({"tenant_id": tenant, "name": "Closers"}),
        )
        .await;
    assert_eq!(status, 409, "team names are unique per tenant: {problem}");

    // Placing the pending user activates them and sends the invitation they were held from.
    let (status, placed) = client
        .http
        .put(format!(
            "{}/v1/teams/{closers}/members/{user_id}",
            client.admin
        ))
        .bearer_auth(&client.token)
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .expect("PUT");
    let placed: Value = placed.json().await.expect("json");
    assert_eq!(status, 200, "{placed}");
    assert_eq!(placed["status"], "active");
    assert_eq!(placed["team_id"], closers.as_str());
    invitation_sent(&client, &user_id).await;
    let detail = user(&client, &user_id).await;
    assert_eq!(detail["team"]["name"], "Closers");
    assert_eq!(team(&client, &closers).await["member_count"], 1);

    // Moving: a user is on at most one team.
    let openers = create_team(&client, &tenant, "Openers").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let put = |team: String| {
        let client = client.clone();
        let user_id = user_id.clone();
        async move {
            client
                .http
                .put(format!(
                    "{}/v1/teams/{team}/members/{user_id}",
                    client.admin
                ))
                .bearer_auth(&client.token)
                .send()
                .await
                .expect("PUT")
                .status()
                .as_u16()
        }
    };
    assert_eq!(put(openers.clone()).await, 200);
    assert_eq!(team(&client, &closers).await["member_count"], 0);
    assert_eq!(team(&client, &openers).await["member_count"], 1);
    let on_openers = client.users(&format!("?team_id={openers}")).await;
    assert_eq!(on_openers.len(), 1);
    // Placing again changes nothing and invites no one twice.
    assert_eq!(put(openers.clone()).await, 200);
    let (_, listed) = client.get("/v1/teams").await;
    let counts = member_counts(&listed);
    assert_eq!(
        counts,
        vec![("Closers".to_owned(), 0), ("Openers".to_owned(), 1)]
    );

    // Renaming, and the uniqueness it must respect.
    let (status, problem) = client
        .patch(&format!("/v1/teams/{openers}"), &json!({"name": "Closers"}))
        .await;
    assert_eq!(status, 409, "{problem}");
    let (status, renamed) = client
        .patch(&format!("/v1/teams/{openers}"), &json!({"name": "Hunters"}))
        .await;
    assert_eq!(
        (status, renamed["name"].as_str()),
        (200, Some("Hunters")),
        "{renamed}"
    );

    // Deleting: refused while it has members, unless forced (members move out, stay active).
    let (status, problem) = client.delete(&format!("/v1/teams/{openers}")).await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("force=true"),
        "{problem}"
    );
    let (status, deleted) = client
        .delete(&format!("/v1/teams/{openers}?force=true"))
        .await;
    assert_eq!(
        (status, deleted["members_moved_out"].as_i64()),
        (200, Some(1)),
        "{deleted}"
    );
    let after = user(&client, &user_id).await;
    assert_eq!(
        (after["team_id"].clone(), after["status"].clone()),
        (Value::Null, json!("active"))
    );
    let (status, _) = client.get(&format!("/v1/teams/{openers}")).await;
    assert_eq!(status, 404);

    // Removing a membership that does not exist is a 404; an empty team deletes plainly.
    let (status, _) = client
        .delete(&format!("/v1/teams/{closers}/members/{user_id}"))
        .await;
    assert_eq!(status, 404);
    assert_eq!(put(closers.clone()).await, 200);
    let response = client
        .http
        .delete(format!(
            "{}/v1/teams/{closers}/members/{user_id}",
            client.admin
        ))
        .bearer_auth(&client.token)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(response.status().as_u16(), 204);
    let (status, _) = client.delete(&format!("/v1/teams/{closers}")).await;
    assert_eq!(status, 200);

    // The user was invited exactly once through all of it.
    assert_eq!(user(&client, &user_id).await["invitation"]["attempts"], 1);
    env.cleanup().await;
}

#[tokio::test]
async fn a_crm_department_places_users_on_the_team_of_that_name() {
    let Some((env, _process, client)) = start().await else {
        return;
    };
    let tenant = client.create_tenant("Acme").await;
    let integration = client
        .create_integration(
            &tenant,
            json!({"department_to_team": true, "pending_until_team": true}),
        )
        .await;
    let with_department = |id: &str, email: &str, department: &str| {
        let mut owner = owner(id, "Sam", id, email);
        owner["department"] = json!(department);
        owner
    };
    for (n, (id, email, department)) in [
        ("O1", "o1@example.com", "Sales East"),
        ("O2", "o2@example.com", "Sales East"),
        ("O3", "o3@example.com", "Sales West"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = event(
            &format!("evt-{n}"),
            "deal.updated",
            &with_department(id, email, department),
        );
        client.send(&integration, &format!("msg-{n}"), &body).await;
        client.processed(&integration.id, &format!("msg-{n}")).await;
    }
    let (_, teams) = client.get(&format!("/v1/teams?tenant_id={tenant}")).await;
    let teams = member_counts(&teams);
    assert_eq!(
        teams,
        vec![("Sales East".to_owned(), 2), ("Sales West".to_owned(), 1)]
    );
    for user in client.users("").await {
        assert_eq!(
            user["status"], "active",
            "on a team, so not held pending: {user}"
        );
    }

    // O1 moves department: they follow it to the other team.
    let body = event(
        "evt-move",
        "deal.updated",
        &with_department("O1", "o1@example.com", "Sales West"),
    );
    let mut moved: Value = serde_json::from_str(&body).expect("json");
    moved["occurred_at"] = json!("2026-11-21T11:00:00Z");
    client
        .send(&integration, "msg-move", &moved.to_string())
        .await;
    let logged = client.processed(&integration.id, "msg-move").await;
    let detail = user(&client, logged["user_id"].as_str().expect("user")).await;
    assert_eq!(detail["team"]["name"], "Sales West", "{detail}");
    assert_eq!(detail["department"], "Sales West");
    env.cleanup().await;
}

#[tokio::test]
async fn users_created_and_edited_by_hand_follow_the_same_rules() {
    let Some((env, _process, client)) = start().await else {
        return;
    };
    let tenant = client.create_tenant("Acme").await;
    let ann = create_user(
        &client,
        json!({"tenant_id": tenant, "email": "Ann.Lee@Example.com", "first_name": "Ann",
               "last_name": "Lee", "title": "AE", "department": "East", "employee_ids": ["AL01"]}),
    )
    .await;
    let ann_id = ann["id"].as_str().expect("id").to_owned();
    assert_eq!(ann["status"], "active");
    assert_eq!(ann["role"], "member");
    invitation_sent(&client, &ann_id).await;

    // One user per email in a tenant, however it is spelled.
    let (status, problem) = client
        .post(
            "/v1/users",
            &json!({"tenant_id": tenant, "email": "ann.lee@example.COM", "first_name": "A", "last_name": "L"}),
        )
        .await;
    assert_eq!(status, 409, "{problem}");

    // `invite: false` holds the invitation back.
    let bob = create_user(
        &client,
        json!({"tenant_id": tenant, "email": "bob@example.com", "first_name": "Bob",
               "last_name": "Roe", "invite": false, "role": "manager"}),
    )
    .await;
    assert_eq!(bob["invitation"]["state"], "not_sent");
    assert_eq!(bob["role"], "manager");
    let bob_id = bob["id"].as_str().expect("id").to_owned();

    // Linked to an integration's owner, its settings apply, and its webhooks find the same user.
    let integration = client
        .create_integration(
            &tenant,
            json!({"pending_until_team": true, "default_role": "rep"}),
        )
        .await;
    let cy = create_user(
        &client,
        json!({"tenant_id": tenant, "email": "cy@example.com", "first_name": "Cy", "last_name": "Poe",
               "integration_id": integration.id, "external_id": "O-CY"}),
    )
    .await;
    assert_eq!(
        (cy["status"].as_str(), cy["role"].as_str()),
        (Some("pending"), Some("rep")),
        "{cy}"
    );
    assert_eq!(cy["invitation"]["state"], "not_sent");
    client
        .send(
            &integration,
            "msg-cy",
            &event(
                "evt-cy",
                "deal.updated",
                &owner("O-CY", "Cy", "Poe", "cy@example.com"),
            ),
        )
        .await;
    let logged = client.processed(&integration.id, "msg-cy").await;
    assert_eq!(
        logged["user_id"], cy["id"],
        "the webhook found the user made by hand"
    );
    assert_eq!(client.users("?q=cy@").await.len(), 1);
    let (status, problem) = client
        .post(
            "/v1/users",
            &json!({"tenant_id": tenant, "email": "other@example.com", "first_name": "O", "last_name": "T",
                    "integration_id": integration.id, "external_id": "O-CY"}),
        )
        .await;
    assert_eq!(status, 409, "that owner already has a user: {problem}");

    // Editing: set, clear, and the email uniqueness again.
    let (status, edited) = client
        .patch(
            &format!("/v1/users/{ann_id}"),
            &json!({"title": "Senior AE", "department": null, "last_name": "Lee-Smith"}),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["title"], "Senior AE");
    assert_eq!(edited["department"], Value::Null);
    assert_eq!(edited["last_name"], "Lee-Smith");
    assert_eq!(
        edited["employee_ids"],
        json!(["AL01"]),
        "untouched fields stay"
    );
    let (status, problem) = client
        .patch(
            &format!("/v1/users/{bob_id}"),
            &json!({"email": "ann.lee@example.com"}),
        )
        .await;
    assert_eq!(status, 409, "{problem}");

    // Leaver and back; a pending user is activated through a team instead.
    let (status, left) = client
        .post(&format!("/v1/users/{ann_id}/deactivate"), &json!({}))
        .await;
    assert_eq!(
        (status, left["status"].as_str()),
        (200, Some("leaver")),
        "{left}"
    );
    assert_eq!(client.users("?status=leaver").await.len(), 1);
    let (status, back) = client
        .post(&format!("/v1/users/{ann_id}/reactivate"), &json!({}))
        .await;
    assert_eq!(
        (status, back["status"].as_str()),
        (200, Some("active")),
        "{back}"
    );
    assert_eq!(back["invitation"]["attempts"], 1, "no second invitation");
    let (status, problem) = client
        .post(
            &format!("/v1/users/{}/reactivate", cy["id"].as_str().unwrap_or("")),
            &json!({}),
        )
        .await;
    assert_eq!(status, 409, "{problem}");

    // The detail view carries the events that touched the user.
    let detail = user(&client, cy["id"].as_str().expect("id")).await;
    let events = detail["recent_events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(events.len(), 1, "{detail}");
    assert_eq!(events[0]["provider_event_id"], "msg-cy");
    env.cleanup().await;
}

#[tokio::test]
async fn bad_requests_name_the_field_and_change_nothing() {
    let Some((env, _process, client)) = start().await else {
        return;
    };
    let tenant = client.create_tenant("Acme").await;
    let valid =
        json!({"tenant_id": tenant, "email": "a@example.com", "first_name": "A", "last_name": "B"});
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let mut unknown = valid.clone();
    unknown["nickname"] = json!("Al");
    let mut missing = valid.clone();
    missing.as_object_mut().expect("object").remove("email");
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (unknown, 400, "", "nickname"),
        (missing, 400, "", "email"),
        (
            with("first_name", json!(5)),
            400,
            "first_name",
            "first_name",
        ),
        (with("email", json!("not an email")), 422, "email", "email"),
        (
            with("first_name", json!("   ")),
            422,
            "first_name",
            "first_name",
        ),
        (
            with("tenant_id", json!("nope")),
            400,
            "tenant_id",
            "tenant_id",
        ),
        (
            with("team_id", json!("0190f3a4-0000-7000-8000-000000000000")),
            422,
            "team_id",
            "team",
        ),
        (
            with(
                "integration_id",
                json!("0190f3a4-0000-7000-8000-000000000000"),
            ),
            422,
            "external_id",
            "external_id",
        ),
        (with("invite", json!("yes")), 400, "invite", "invite"),
        (
            with("last_name", json!("Lee\u{0}")),
            400,
            "last_name",
            "U+0000",
        ),
    ];
    for (body, status, field, mentions) in cases {
        let (got, problem) = client.post("/v1/users", &body).await;
        assert_eq!(got, status, "{body}: {problem}");
        if !field.is_empty() {
            assert_eq!(problem["field"], field, "{body}: {problem}");
        }
        assert!(
            problem["detail"].as_str().unwrap_or("").contains(mentions),
            "{body}: the detail names {mentions}: {problem}"
        );
        assert_eq!(problem["status"], status);
    }
    assert!(client.users("").await.is_empty(), "nothing was created");

    for (path, status, field) in [
        ("/v1/users?limit=0", 422, "limit"),
        ("/v1/users?limit=501", 422, "limit"),
        ("/v1/users?limit=ten", 400, ""),
        ("/v1/users?status=sleeping", 400, "status"),
        ("/v1/users?team_id=7", 400, "team_id"),
        ("/v1/users?cursor=garbage", 400, "cursor"),
        ("/v1/users?colour=red", 400, ""),
        ("/v1/users/not-a-uuid", 400, "id"),
        ("/v1/teams/not-a-uuid", 400, "id"),
        ("/v1/teams?limit=1000", 422, "limit"),
    ] {
        let (got, problem) = client.get(path).await;
        assert_eq!(got, status, "{path}: {problem}");
        if !field.is_empty() {
            assert_eq!(problem["field"], field, "{path}: {problem}");
        }
    }
    let (status, problem) = client
        .post_raw("/v1/teams", "application/json", "{\"name\": ".to_owned())
        .await;
    assert_eq!(status, 400, "{problem}");
    let (status, problem) = client
        .post_raw("/v1/teams", "text/plain", "name=x".to_owned())
        .await;
    assert_eq!(status, 400, "{problem}");
    env.cleanup().await;
}

#[tokio::test]
async fn pages_neither_skip_nor_repeat_while_users_arrive() {
    let Some((env, _process, client)) = start().await else {
        return;
    };
    let tenant = client.create_tenant("Acme").await;
    let mut existing = HashSet::new();
    for n in 0..30 {
        let user = create_user(
            &client,
            json!({"tenant_id": tenant, "email": format!("u{n}@example.com"), "first_name": "U",
                   "last_name": format!("{n}"), "invite": false}),
        )
        .await;
        existing.insert(user["id"].as_str().expect("id").to_owned());
    }
    let writer = {
        let client = client.clone();
        let tenant = tenant.clone();
        tokio::spawn(async move {
            for n in 30..50 {
                create_user(
                    &client,
                    json!({"tenant_id": tenant, "email": format!("u{n}@example.com"), "first_name": "U",
                           "last_name": format!("{n}"), "invite": false}),
                )
                .await;
            }
        })
    };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("/v1/users?limit=7&cursor={cursor}"),
            None => "/v1/users?limit=7".to_owned(),
        };
        let (status, page) = client.get(&query).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    writer.await.expect("writer");
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "an item was repeated");
    for id in &existing {
        assert!(seen.contains(id), "{id} was skipped");
    }
    env.cleanup().await;
}
