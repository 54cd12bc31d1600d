//! Every CRM source end to end: the CRM's own payload, signed its own way, posted to the
//! ingress; owners named only by id or by record looked up in a local stand-in of the CRM's
//! users API (`crm-fakes`, answering that API's documented shapes); the user provisioned. And
//! what the directory's refusals, unknowns and rate limits turn into.

use std::time::{Duration, Instant};

use crm_fakes::{Canned, CrmFake, FakeCrm, FakeUser};
use serde_json::{Value, json};

use crate::support::schemes::{self, KeyServer, SALESFORCE_ORG, salesforce_message, sign};
use crate::support::{Backend, Client, Spawn, TestEnv, eventually, now_seconds};

const JSON: &str = "application/json";

/// A live integration of `source`; answers its id and secret.
async fn live(
    client: &Client,
    tenant: &str,
    source: &str,
    verification: Value,
    secret: Option<&str>,
    extra: Value,
) -> (String, String) {
    let mut request = json!({
        "tenant_id": tenant, "name": source, "source": source, "verification": verification,
    });
    if let Some(secret) = secret {
        request["secret"] = json!(secret);
    }
    if let (Value::Object(request), Value::Object(extra)) = (&mut request, extra) {
        request.extend(extra);
    }
    let created = client.create_draft(&request).await;
    let id = created["id"].as_str().expect("integration id").to_owned();
    let (status, published) = client
        .post(&format!("/v1/integrations/{id}/publish"), &json!({}))
        .await;
    assert_eq!(status, 200, "publishing {source}: {published}");
    let secret = created["secret"].as_str().unwrap_or_default().to_owned();
    (id, secret)
}

fn directory_of(fake: &CrmFake) -> Value {
    json!({"base_url": fake.base_url(), "credentials": fake.credentials()})
}

/// Posts `body` signed with `scheme` and asserts the ingress took it.
async fn post_signed(
    client: &Client,
    integration: &str,
    scheme: &str,
    secret: &str,
    delivery: &str,
    content_type: &str,
    body: &str,
) {
    let url = format!("http://127.0.0.1:8080/hooks/{integration}");
    let signed = sign(scheme, secret, delivery, now_seconds(), &url, body);
    let (status, answer, _) = client
        .hook(
            integration,
            &signed.query,
            content_type,
            body.to_owned(),
            &signed
                .headers
                .iter()
                .map(|(name, value)| (*name, value.clone()))
                .collect::<Vec<_>>(),
        )
        .await;
    assert!(
        (200..300).contains(&status),
        "{scheme} webhook refused: {status} {answer}"
    );
}

/// Waits for the user with `email` and checks who they are.
async fn user(client: &Client, email: &str, first: &str, last: &str) -> Value {
    let query = format!("?q={email}");
    let found = eventually(&format!("user {email}"), Duration::from_secs(30), || {
        let client = client.clone();
        let query = query.clone();
        async move {
            client
                .users(&query)
                .await
                .into_iter()
                .find(|user| user["email"] == email)
        }
    })
    .await;
    assert_eq!(found["first_name"], first, "{found}");
    assert_eq!(found["last_name"], last, "{found}");
    found
}

/// Waits for an open issue of `kind` for owner `external_id`.
async fn issue(client: &Client, integration: &str, external_id: &str, kind: &str) -> Value {
    let query = format!("?integration_id={integration}");
    eventually(
        &format!("{kind} issue for {external_id}"),
        Duration::from_secs(30),
        || {
            let client = client.clone();
            let query = query.clone();
            async move {
                client
                    .issues(&query)
                    .await
                    .into_iter()
                    .find(|issue| issue["external_id"] == external_id && issue["kind"] == kind)
            }
        },
    )
    .await
}

#[tokio::test]
async fn every_source_turns_its_crms_signed_webhook_into_users() {
    let Some(env) = TestEnv::new(Backend::SqliteEmbedded).await else {
        return;
    };
    let key_server = KeyServer::start("connectwise-signing-key").await;
    let process = env
        .spawn(Spawn {
            env: vec![
                (
                    "ROLLCALL_CONNECTWISE_KEY_HOSTS".to_owned(),
                    key_server.addr.clone(),
                ),
                (
                    "ROLLCALL_CONNECTWISE_ALLOW_HTTP".to_owned(),
                    "true".to_owned(),
                ),
            ],
            ..Spawn::default()
        })
        .await;
    let client = Client::new(&process);
    let tenant = client.create_tenant("Acme").await;

    // HubSpot: an owner change names the owner id; a deal creation names only the deal.
    let hubspot = CrmFake::start(FakeCrm::Hubspot).await;
    hubspot.add_user("1001", FakeUser::new("ann.lee@example.com", "Ann", "Lee"));
    hubspot.add_user("1002", FakeUser::new("ben.ng@example.com", "Ben", "Ng"));
    hubspot.add_record("deals", "5001", vec!["1002".to_owned()]);
    let (id, _) = live(
        &client,
        &tenant,
        "hubspot",
        json!({"scheme": "hubspot"}),
        Some("hubspot-client-secret"),
        json!({"directory": directory_of(&hubspot)}),
    )
    .await;
    let occurred = now_seconds() * 1000;
    let body = json!([
        {"eventId": 1, "subscriptionId": 25, "portalId": 62515, "appId": 1, "occurredAt": occurred,
         "subscriptionType": "deal.propertyChange", "attemptNumber": 0, "objectId": 9876543210_u64,
         "propertyName": "hubspot_owner_id", "propertyValue": "1001", "changeSource": "CRM_UI"},
        {"eventId": 2, "subscriptionId": 22, "portalId": 62515, "appId": 1, "occurredAt": occurred,
         "subscriptionType": "deal.creation", "attemptNumber": 0, "objectId": 5001}
    ])
    .to_string();
    post_signed(
        &client,
        &id,
        "hubspot",
        "hubspot-client-secret",
        "h1",
        JSON,
        &body,
    )
    .await;
    user(&client, "ann.lee@example.com", "Ann", "Lee").await;
    user(&client, "ben.ng@example.com", "Ben", "Ng").await;
    // The integration shows which credentials it holds, never their values.
    let (_, shown) = client.get(&format!("/v1/integrations/{id}")).await;
    assert_eq!(shown["directory"]["credentials"], json!(["access_token"]));
    let token = hubspot.credentials()["access_token"].clone();
    assert!(!shown.to_string().contains(&token), "{shown}");

    // Salesforce: an Opportunity's OwnerId, looked up as a User sObject.
    let salesforce = CrmFake::start(FakeCrm::Salesforce).await;
    salesforce.add_user(
        "0055w00000BhqR0AAJ",
        FakeUser::new("carla.diaz@example.com", "Carla", "Diaz"),
    );
    let (id, secret) = live(
        &client,
        &tenant,
        "salesforce-outbound",
        schemes::verification("salesforce-outbound"),
        None,
        json!({"directory": directory_of(&salesforce)}),
    )
    .await;
    let body = salesforce_message(SALESFORCE_ORG, "04l5w00005286hAAAQ", "0055w00000BhqR0AAJ");
    post_signed(
        &client,
        &id,
        "salesforce-outbound",
        &secret,
        "s1",
        "text/xml",
        &body,
    )
    .await;
    user(&client, "carla.diaz@example.com", "Carla", "Diaz").await;

    // Pipedrive: v1 and v2 deal webhooks name the owner's user id.
    let pipedrive = CrmFake::start(FakeCrm::Pipedrive).await;
    pipedrive.add_user("2001", FakeUser::new("dan.roe@example.com", "Dan", "Roe"));
    pipedrive.add_user("2002", FakeUser::new("eva.lind@example.com", "Eva", "Lind"));
    let (id, secret) = live(
        &client,
        &tenant,
        "pipedrive",
        json!({"scheme": "basic"}),
        None,
        json!({"directory": directory_of(&pipedrive)}),
    )
    .await;
    let v1 = json!({
        "v": 1, "meta": {"v": 1, "action": "updated", "object": "deal", "id": 201, "company_id": 1,
        "user_id": 2001, "timestamp": now_seconds(), "webhook_id": "171"},
        "current": {"id": 201, "title": "Acme", "user_id": 2001, "owner_name": "Dan Roe"},
        "previous": {"id": 201, "stage_id": 1}, "event": "updated.deal", "retry": 0
    });
    let v2 = json!({
        "meta": {"action": "change", "entity": "deal", "version": "2.0", "company_id": 1,
        "user_id": 2002, "id": 7, "entity_id": 7, "webhook_id": 99, "attempt": 1,
        "timestamp": now_seconds()},
        "data": {"id": 7, "title": "Beta", "owner_id": 2002}, "previous": null
    });
    for (n, body) in [v1, v2].iter().enumerate() {
        let delivery = format!("p{n}");
        post_signed(
            &client,
            &id,
            "basic",
            &secret,
            &delivery,
            JSON,
            &body.to_string(),
        )
        .await;
    }
    user(&client, "dan.roe@example.com", "Dan", "Roe").await;
    user(&client, "eva.lind@example.com", "Eva", "Lind").await;

    // ConnectWise: a member callback carries the person; an opportunity names its sales rep.
    let connectwise = CrmFake::start(FakeCrm::Connectwise).await;
    connectwise.add_user("178", FakeUser::new("jane.doe@example.com", "Jane", "Doe"));
    let (id, _) = live(
        &client,
        &tenant,
        "connectwise",
        json!({"scheme": "connectwise"}),
        None,
        json!({"directory": directory_of(&connectwise)}),
    )
    .await;
    let callback = |message: &str, kind: &str, entity: &Value| {
        json!({
            "MessageId": message, "FromUrl": "sandbox-na.myconnectwise.net", "CompanyId": "myCompany",
            "MemberId": "admin", "Action": "updated", "Type": kind, "ID": 1,
            "Entity": entity.to_string(), "Metadata": {"key_url": key_server.key_url()}
        })
        .to_string()
    };
    let member = json!({
        "id": 179, "identifier": "fkahn", "firstName": "Farah", "lastName": "Kahn",
        "primaryEmail": "farah.kahn@example.com", "inactiveFlag": false, "licenseClass": "F",
        "defaultDepartment": {"id": 10, "identifier": "Services", "name": "Services"},
        "workRole": {"id": 5, "name": "Field Technician"}
    });
    let opportunity = json!({
        "id": 44, "name": "Renewal", "primarySalesRep": {"id": 178, "identifier": "jdoe", "name": "Jane Doe"}
    });
    for (message, kind, entity) in [
        ("cw-1", "member", &member),
        ("cw-2", "opportunity", &opportunity),
    ] {
        let body = callback(message, kind, entity);
        post_signed(
            &client,
            &id,
            "connectwise",
            "connectwise-signing-key",
            message,
            JSON,
            &body,
        )
        .await;
    }
    let farah = user(&client, "farah.kahn@example.com", "Farah", "Kahn").await;
    assert_eq!(farah["title"], "Field Technician", "{farah}");
    assert_eq!(farah["department"], "Services", "{farah}");
    assert_eq!(farah["member_type"], "F", "{farah}");
    user(&client, "jane.doe@example.com", "Jane", "Doe").await;

    // Jobber: a thin visit event; every user assigned to the visit is an owner.
    let jobber = CrmFake::start(FakeCrm::Jobber).await;
    jobber.add_user(
        "Z2lkOi8vSm9iYmVyL1VzZXIvMQ==",
        FakeUser::new("gus.hale@example.com", "Gus", "Hale"),
    );
    jobber.add_user(
        "Z2lkOi8vSm9iYmVyL1VzZXIvMg==",
        FakeUser::new("hana.ito@example.com", "Hana", "Ito"),
    );
    jobber.add_record(
        "visit",
        "Z2lkOi8vSm9iYmVyL1Zpc2l0LzIxNjA5MTE0MDE=",
        vec![
            "Z2lkOi8vSm9iYmVyL1VzZXIvMQ==".to_owned(),
            "Z2lkOi8vSm9iYmVyL1VzZXIvMg==".to_owned(),
        ],
    );
    let (id, _) = live(
        &client,
        &tenant,
        "jobber",
        json!({"scheme": "jobber"}),
        Some("jobber-client-secret"),
        json!({"directory": directory_of(&jobber)}),
    )
    .await;
    let body = json!({"data": {"webHookEvent": {
        "topic": "VISIT_COMPLETE", "appId": "3ef22a50-072d-430c-a78f-b7646657560b",
        "accountId": "MQ==", "itemId": "Z2lkOi8vSm9iYmVyL1Zpc2l0LzIxNjA5MTE0MDE=",
        "occurredAt": "2026-11-21T16:31:36-06:00"}}})
    .to_string();
    post_signed(
        &client,
        &id,
        "jobber",
        "jobber-client-secret",
        "j1",
        JSON,
        &body,
    )
    .await;
    user(&client, "gus.hale@example.com", "Gus", "Hale").await;
    user(&client, "hana.ito@example.com", "Hana", "Ito").await;

    // Zoho: the callback names the record; its Owner comes from the record.
    let zoho = CrmFake::start(FakeCrm::Zoho).await;
    zoho.add_user(
        "6756839000000411001",
        FakeUser::new("ivan.petrov@example.com", "Ivan", "Petrov"),
    );
    zoho.add_record(
        "Deals",
        "6756839000000575405",
        vec!["6756839000000411001".to_owned()],
    );
    let (id, secret) = live(
        &client,
        &tenant,
        "zoho",
        json!({"scheme": "token", "json_pointer": "/token"}),
        None,
        json!({"directory": directory_of(&zoho)}),
    )
    .await;
    let body = json!({
        "server_time": 1_750_102_639_787_u64, "query_params": {}, "module": "Deals",
        "resource_uri": "https://www.zohoapis.com/crm/v8/Deals", "ids": ["6756839000000575405"],
        "affected_fields": [], "operation": "update", "channel_id": "1105420521999070702",
        "token": secret
    })
    .to_string();
    let (status, answer, _) = client.hook(&id, "", JSON, body, &[]).await;
    assert_eq!(status, 202, "zoho: {answer}");
    user(&client, "ivan.petrov@example.com", "Ivan", "Petrov").await;
    // The token is a credential: the event log must not keep it.
    let events = client.events(&format!("?integration_id={id}")).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (_, event) = client
        .get(&format!("/v1/events/{}", events[0]["id"].as_str().unwrap()))
        .await;
    assert!(!event.to_string().contains(&secret), "{event}");

    // Housecall Pro: the job carries its assigned employees; no lookup.
    let (id, secret) = live(
        &client,
        &tenant,
        "housecall-pro",
        schemes::verification("hmac"),
        None,
        json!({}),
    )
    .await;
    let body = json!({"event": "job.scheduled", "company_id": "c1", "job": {
        "id": "job_3f6c", "work_status": "scheduled", "updated_at": "2026-11-21T10:00:00Z",
        "assigned_employees": [
            {"id": "pro_a1", "first_name": "Jon", "last_name": "Kerr", "email": "jon.kerr@example.com", "role": "field tech"},
            {"id": "pro_b2", "first_name": "Kim", "last_name": "Lowe", "email": "kim.lowe@example.com", "role": "field tech"}
        ]}})
    .to_string();
    post_signed(&client, &id, "hmac", &secret, "hcp1", JSON, &body).await;
    user(&client, "jon.kerr@example.com", "Jon", "Kerr").await;
    user(&client, "kim.lowe@example.com", "Kim", "Lowe").await;

    // Freshteam: the employee is the owner; a terminated employee becomes a leaver.
    let (id, secret) = live(
        &client,
        &tenant,
        "freshteam",
        schemes::verification("token"),
        None,
        json!({}),
    )
    .await;
    let employee = |terminated: bool| {
        json!({"account_id": 77, "domain": "acme.freshteam.com", "event": "onEmployeeUpdate",
        "region": "US", "timestamp": now_seconds() + i64::from(terminated),
        "data": {"employee": {"id": 5_000_123_456_u64, "employee_id": "EMP-0042",
            "first_name": "Priya", "last_name": "Nair", "official_email": "priya.nair@example.com",
            "personal_email": "priya@example.net", "status": "active", "terminated": terminated,
            "deleted": false, "draft": false, "designation": "Field Technician"}},
        "iparams": {"api_key": "never-stored"}})
        .to_string()
    };
    post_signed(&client, &id, "token", &secret, "f1", JSON, &employee(false)).await;
    let priya = user(&client, "priya.nair@example.com", "Priya", "Nair").await;
    assert_eq!(priya["status"], "active");
    post_signed(&client, &id, "token", &secret, "f2", JSON, &employee(true)).await;
    eventually("Priya to leave", Duration::from_secs(30), || {
        let client = client.clone();
        async move {
            client
                .users("?q=priya.nair@example.com")
                .await
                .into_iter()
                .find(|user| user["status"] == "leaver")
        }
    })
    .await;

    // Any JSON, read only through the field mapping: a crew of two.
    let (id, secret) = live(
        &client,
        &tenant,
        "json",
        json!({"scheme": "standard-webhooks"}),
        None,
        json!({"settings": {"field_mapping": {
            "event_id": "/delivery", "event_type": "/kind", "owners": "/crew", "id": "/uid",
            "email": "/mail", "name": "/full_name"}}}),
    )
    .await;
    let body = json!({"delivery": "d-1", "kind": "job.done", "crew": [
        {"uid": "u1", "mail": "lea.moss@example.com", "full_name": "Lea Moss"},
        {"uid": "u2", "mail": "max.orr@example.com", "full_name": "Max Orr"}]})
    .to_string();
    post_signed(
        &client,
        &id,
        "standard-webhooks",
        &secret,
        "x1",
        JSON,
        &body,
    )
    .await;
    user(&client, "lea.moss@example.com", "Lea", "Moss").await;
    user(&client, "max.orr@example.com", "Max", "Orr").await;

    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn directory_answers_become_issues_retries_or_users() {
    let Some(env) = TestEnv::new(Backend::PostgresRabbit).await else {
        return;
    };
    let process = env.spawn(Spawn::default()).await;
    let client = Client::new(&process);
    let tenant = client.create_tenant("Acme").await;
    let hubspot = CrmFake::start(FakeCrm::Hubspot).await;
    let (id, _) = live(
        &client,
        &tenant,
        "hubspot",
        json!({"scheme": "hubspot"}),
        Some("hubspot-client-secret"),
        json!({"directory": directory_of(&hubspot)}),
    )
    .await;
    let send = |event: u64, owner: &str| {
        let body = json!([{"eventId": event, "subscriptionId": 25, "portalId": 62515, "appId": 1,
            "occurredAt": now_seconds() * 1000, "subscriptionType": "deal.propertyChange",
            "objectId": 1, "propertyName": "hubspot_owner_id", "propertyValue": owner}])
        .to_string();
        let client = client.clone();
        let id = id.clone();
        async move {
            post_signed(
                &client,
                &id,
                "hubspot",
                "hubspot-client-secret",
                &event.to_string(),
                JSON,
                &body,
            )
            .await;
        }
    };

    // 404: the owner is unknown to HubSpot.
    hubspot.respond("3001", Canned::NotFound);
    send(1, "3001").await;
    let found = issue(&client, &id, "3001", "owner_not_found").await;
    assert!(
        found["detail"].as_str().unwrap().contains("3001"),
        "{found}"
    );

    // 401: the token is refused.
    hubspot.respond("3002", Canned::Unauthorized);
    send(2, "3002").await;
    issue(&client, &id, "3002", "directory_refused").await;

    // Malformed JSON is transient: retried, and provisioned once HubSpot answers properly.
    hubspot.add_user("3004", FakeUser::new("nia.park@example.com", "Nia", "Park"));
    hubspot.respond("3004", Canned::Malformed);
    send(4, "3004").await;
    eventually("a malformed answer", Duration::from_secs(30), || async {
        (hubspot.hits("/crm/v3/owners/3004") >= 1).then_some(())
    })
    .await;
    hubspot.clear_responses();
    user(&client, "nia.park@example.com", "Nia", "Park").await;

    // 429 with Retry-After: the event comes back no sooner than HubSpot asked, and no lookup
    // of this integration reaches HubSpot meanwhile.
    hubspot.add_user(
        "3003",
        FakeUser::new("omar.quinn@example.com", "Omar", "Quinn"),
    );
    hubspot.respond(
        "3003",
        Canned::RateLimited {
            retry_after_secs: 2,
        },
    );
    send(3, "3003").await;
    eventually(
        "the rate-limited lookup",
        Duration::from_secs(30),
        || async { (hubspot.hits("/crm/v3/owners/3003") >= 1).then_some(()) },
    )
    .await;
    let limited_at = Instant::now();
    hubspot.clear_responses();
    let before = hubspot.request_count();
    hubspot.add_user("3005", FakeUser::new("pia.rhee@example.com", "Pia", "Rhee"));
    send(5, "3005").await;
    user(&client, "omar.quinn@example.com", "Omar", "Quinn").await;
    assert!(
        limited_at.elapsed() >= Duration::from_millis(1500),
        "retried {:?} after a Retry-After of 2 s",
        limited_at.elapsed()
    );
    user(&client, "pia.rhee@example.com", "Pia", "Rhee").await;
    // Each of the two owners was asked once after the wait: nothing was spent meanwhile.
    assert_eq!(
        hubspot.request_count() - before,
        2,
        "{:?}",
        hubspot.requests()
    );

    // No directory configured: an issue naming what is missing.
    let (bare, _) = live(
        &client,
        &tenant,
        "hubspot",
        json!({"scheme": "hubspot"}),
        Some("hubspot-client-secret"),
        json!({}),
    )
    .await;
    let body = json!([{"eventId": 9, "subscriptionId": 25, "portalId": 62515, "appId": 1,
        "occurredAt": now_seconds() * 1000, "subscriptionType": "deal.propertyChange",
        "objectId": 1, "propertyName": "hubspot_owner_id", "propertyValue": "3009"}])
    .to_string();
    post_signed(
        &client,
        &bare,
        "hubspot",
        "hubspot-client-secret",
        "b9",
        JSON,
        &body,
    )
    .await;
    let missing = issue(&client, &bare, "3009", "directory_refused").await;
    assert!(
        missing["detail"].as_str().unwrap().contains("access_token"),
        "{missing}"
    );

    // A preview asks the directory too.
    let (status, preview) = client
        .post_raw(
            &format!("/v1/integrations/{id}/test"),
            JSON,
            json!([{"eventId": 10, "subscriptionId": 25, "portalId": 62515, "appId": 1,
                "occurredAt": now_seconds() * 1000, "subscriptionType": "deal.propertyChange",
                "objectId": 1, "propertyName": "hubspot_owner_id", "propertyValue": "3005"}])
            .to_string(),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        preview["events"][0]["owners"][0]["action"], "none",
        "{preview}"
    );

    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn directory_access_is_checked_shown_without_secrets_and_removable() {
    let Some(env) = TestEnv::new(Backend::SqliteEmbedded).await else {
        return;
    };
    let process = env.spawn(Spawn::default()).await;
    let client = Client::new(&process);
    let tenant = client.create_tenant("Acme").await;
    let base = json!({"tenant_id": tenant, "name": "CRM", "verification": {"scheme": "basic"}});
    let with = |source: &str, directory: Value| {
        let mut request = base.clone();
        request["source"] = json!(source);
        request["directory"] = directory;
        request
    };
    for (request, field) in [
        (
            with(
                "pipedrive",
                json!({"credentials": {"api_token": "t", "api_tokn": "x"}}),
            ),
            "directory.credentials",
        ),
        (
            with("pipedrive", json!({"credentials": {}})),
            "directory.credentials.api_token",
        ),
        (
            with(
                "salesforce-outbound",
                json!({"credentials": {"access_token": "t"}}),
            ),
            "directory.base_url",
        ),
        (
            with(
                "pipedrive",
                json!({"base_url": "ftp://x", "credentials": {"api_token": "t"}}),
            ),
            "directory.base_url",
        ),
        (
            with("freshteam", json!({"credentials": {"access_token": "t"}})),
            "directory",
        ),
    ] {
        let (status, problem) = client.post("/v1/integrations", &request).await;
        assert_eq!(status, 422, "{request}: {problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }
    let (status, problem) = client
        .post(
            "/v1/integrations",
            &with(
                "pipedrive",
                json!({"credentials": {"api_token": "t"}, "extra": 1}),
            ),
        )
        .await;
    assert_eq!(status, 400, "{problem}");

    let created = client
        .create_draft(&with(
            "pipedrive",
            json!({"base_url": "https://acme.pipedrive.com", "credentials": {"api_token": "pd-s3cret"}}),
        ))
        .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        created["directory"],
        json!({"base_url": "https://acme.pipedrive.com", "credentials": ["api_token"]})
    );
    let (_, listed) = client.get("/v1/integrations").await;
    assert!(!listed.to_string().contains("pd-s3cret"), "{listed}");
    let (status, changed) = client
        .patch(
            &format!("/v1/integrations/{id}"),
            &json!({"directory": {"credentials": {"api_token": "pd-n3w"}}}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["directory"]["base_url"], Value::Null);
    let (status, removed) = client
        .patch(
            &format!("/v1/integrations/{id}"),
            &json!({"directory": null}),
        )
        .await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["directory"], Value::Null);
    let (status, kept) = client
        .patch(
            &format!("/v1/integrations/{id}"),
            &json!({"name": "Renamed"}),
        )
        .await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["directory"], Value::Null);

    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn malformed_payloads_of_every_source_are_refused_with_400() {
    let Some(env) = TestEnv::new(Backend::SqliteEmbedded).await else {
        return;
    };
    let process = env.spawn(Spawn::default()).await;
    let client = Client::new(&process);
    let tenant = client.create_tenant("Acme").await;
    let nested = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let nul_name = json!({"event": "job.scheduled", "job": {"id": "job_1", "updated_at": "2026-11-21T10:00:00Z",
        "assigned_employees": [{"id": "pro_1", "first_name": "Jo\u{0}n", "last_name": "K", "email": "j@example.com"}]}})
    .to_string();
    let too_many_hubspot = Value::Array(
        (0..101)
            .map(|n| json!({"portalId": 1, "eventId": n, "subscriptionId": 1, "occurredAt": 1, "subscriptionType": "deal.creation", "objectId": n}))
            .collect(),
    )
    .to_string();
    let billion_laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><notifications><OrganizationId>&lol2;</OrganizationId></notifications></soapenv:Body></soapenv:Envelope>"#;
    let external_entity = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Envelope><Body><notifications><Notification><Id>&xxe;</Id></Notification></notifications></Body></Envelope>"#;
    let cases: Vec<(&str, &str, String, &str)> = vec![
        ("hubspot", JSON, nested.clone(), "recursion limit"),
        ("hubspot", JSON, too_many_hubspot, "more than 100"),
        ("hubspot", JSON, r#"[{"portalId": 1, "eventId": 1, "occurredAt": "soon", "subscriptionType": "deal.creation"}]"#.to_owned(), "occurredAt"),
        ("salesforce-outbound", "text/xml", billion_laughs.to_owned(), "document type"),
        ("salesforce-outbound", "text/xml", external_entity.to_owned(), "document type"),
        ("pipedrive", JSON, r#"{"meta": {"v": 1, "action": "updated", "object": "deal", "id": 1, "timestamp": 1, "webhook_id": "1"}, "current": {"id": 1, "user_id": {"not": "an id"}}}"#.to_owned(), "user_id"),
        ("connectwise", JSON, r#"{"MessageId": "m", "Type": "opportunity", "Action": "updated", "Entity": "{not json"}"#.to_owned(), "Entity"),
        ("jobber", JSON, r#"{"data": {"webHookEvent": {"topic": "JOB_UPDATE", "accountId": "MQ=="}}}"#.to_owned(), "itemId"),
        ("housecall-pro", JSON, nul_name, "U+0000"),
        ("freshteam", JSON, r#"{"account_id": 1, "event": "onEmployeeCreate", "timestamp": 1, "data": {"employee": {"id": 5, "official_email": 7}}}"#.to_owned(), "official_email"),
        ("zoho", JSON, r#"{"module": "Deals", "operation": "update", "channel_id": "1", "server_time": 1, "ids": "6756839000000575405"}"#.to_owned(), "ids"),
        ("json", JSON, r#"{"id": "e1", "type": "x", "owner": {"id": "o1"}}"#.to_owned(), "crew is required"),
    ];
    let mut integrations = std::collections::HashMap::new();
    for (n, (source, content_type, body, expected)) in cases.iter().enumerate() {
        if !integrations.contains_key(source) {
            // The payload, not the signature, is under test: every source signed one way.
            let settings = if *source == "json" {
                json!({"settings": {"field_mapping": {"owners": "/crew", "id": "/uid"}}})
            } else {
                json!({})
            };
            let created = live(
                &client,
                &tenant,
                source,
                json!({"scheme": "standard-webhooks"}),
                None,
                settings,
            )
            .await;
            integrations.insert(*source, created);
        }
        let (id, secret) = &integrations[source];
        let url = format!("http://127.0.0.1:8080/hooks/{id}");
        let signed = sign(
            "standard-webhooks",
            secret,
            &format!("bad-{n}"),
            now_seconds(),
            &url,
            body,
        );
        let (status, answer, _) = client
            .hook(
                id,
                "",
                content_type,
                body.clone(),
                &signed
                    .headers
                    .iter()
                    .map(|(name, value)| (*name, value.clone()))
                    .collect::<Vec<_>>(),
            )
            .await;
        assert_eq!(status, 400, "{source} {expected}: {answer}");
        let problem: Value = serde_json::from_str(&answer).expect("problem+json");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(expected),
            "{source}: expected {expected:?} in {problem}"
        );
    }
    // Nothing was queued.
    assert!(client.events("").await.is_empty());
    drop(process);
    env.cleanup().await;
}
