//! What an operator watches: `/metrics` moving with traffic, request ids from the webhook to
//! the worker's log line, JSON logs, and no secret in any log line of a full run.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::app::OPERATOR_TOKEN;
use crate::support::{
    Backend, Client, Spawn, TestEnv, event, eventually, now_seconds, owner, sign,
};

/// `name{labels}` → value, from the Prometheus text format.
fn parse(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(client: &Client) -> BTreeMap<String, f64> {
    let response = client
        .http
        .get(format!("{}/metrics", client.admin))
        .send()
        .await
        .expect("scraping");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
    );
    parse(&response.text().await.unwrap())
}

/// The value of the first series whose name and labels contain every part.
fn value(metrics: &BTreeMap<String, f64>, parts: &[&str]) -> f64 {
    metrics
        .iter()
        .filter(|(series, _)| parts.iter().all(|part| series.contains(part)))
        .map(|(_, value)| *value)
        .sum()
}

#[tokio::test]
async fn metrics_move_request_ids_reach_the_worker_and_no_secret_is_logged() {
    let Some(env) = TestEnv::new(Backend::PostgresRabbit).await else {
        return;
    };
    let process = env
        .spawn(Spawn {
            env: vec![
                ("ROLLCALL_LOG_FORMAT".to_owned(), "json".to_owned()),
                (
                    "ROLLCALL_LOG".to_owned(),
                    "debug,sqlx=warn,lapin=info,hyper=info,h2=info,reqwest=info,rustls=info"
                        .to_owned(),
                ),
            ],
            ..Spawn::default()
        })
        .await;
    let client = Client::new(&process);
    let before = scrape(&client).await;
    for gauge in [
        "rollcall_queue_depth{queue=\"work\"}",
        "rollcall_queue_depth{queue=\"retry\"}",
        "rollcall_queue_depth{queue=\"dead_letter\"}",
        "rollcall_db_pool_connections{state=\"in_use\"}",
    ] {
        assert!(before.contains_key(gauge), "{gauge} missing: {before:?}");
    }
    let tenant = client.create_tenant("Acme").await;
    let integration = client.create_integration(&tenant, json!({})).await;

    // A genuine webhook with the sender's request id: answered back, and carried to the
    // worker's log line for the event.
    let body = event(
        "ops-1",
        "opportunity.updated",
        &owner("O1", "Olga", "Ruiz", "olga@example.com"),
    );
    let headers = sign(&integration.secret, "ops-1", now_seconds(), &body);
    let signature = headers
        .iter()
        .find(|(name, _)| *name == "webhook-signature")
        .map(|(_, value)| value.clone())
        .unwrap();
    let mut with_id = headers.clone();
    with_id.push(("x-request-id", "req-ops-1".to_owned()));
    let (status, answer, response_headers) = client
        .post_hook(&integration.id, body.clone(), &with_id)
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(response_headers["x-request-id"], "req-ops-1");
    // Without one, the listener makes one up and answers it.
    let forged = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "ops-2",
        now_seconds(),
        &body,
    );
    let (status, _, response_headers) = client
        .post_hook(&integration.id, body.clone(), &forged)
        .await;
    assert_eq!(status, 401);
    let generated = response_headers["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(generated.len(), 36, "{generated}");
    // Unknown integrations do not get a series each.
    let (status, _, _) = client
        .post_hook(&uuid::Uuid::now_v7().to_string(), body.clone(), &headers)
        .await;
    assert_eq!(status, 404);
    client.processed(&integration.id, "ops-1").await;

    let after = eventually("the worker's metrics", Duration::from_secs(30), || {
        let client = client.clone();
        async move {
            let after = scrape(&client).await;
            (value(&after, &["rollcall_event_processing_seconds_count"]) >= 1.0).then_some(after)
        }
    })
    .await;
    let moved = |parts: &[&str]| value(&after, parts) - value(&before, parts);
    assert_eq!(moved(&["rollcall_webhooks_received_total"]), 3.0);
    assert_eq!(
        moved(&[
            "rollcall_webhooks_accepted_total",
            &format!("integration=\"{}\"", integration.id)
        ]),
        1.0
    );
    assert_eq!(
        moved(&[
            "rollcall_webhooks_rejected_total",
            "reason=\"unauthorized\""
        ]),
        1.0,
        "{after:?}"
    );
    assert_eq!(
        moved(&[
            "rollcall_webhooks_rejected_total",
            "reason=\"unknown_integration\"",
            "integration=\"unknown\""
        ]),
        1.0,
        "{after:?}"
    );
    assert!(moved(&["rollcall_ingress_request_duration_seconds_count"]) >= 3.0);
    assert!(moved(&["rollcall_queue_publish_confirms_total"]) >= 1.0);
    assert_eq!(
        moved(&["rollcall_events_processed_total", "outcome=\"created\""]),
        1.0
    );
    assert!(after.contains_key("rollcall_ingress_request_duration_seconds_bucket{le=\"0.05\"}"));

    // JSON lines; the event's log line joins the request through its id.
    let logs = process.logs();
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let processed = lines
        .iter()
        .find(|line| line["message"] == "event processed" && line["request_id"] == "req-ops-1")
        .unwrap_or_else(|| panic!("no event line with the request id in {logs}"));
    assert_eq!(processed["tenant_id"], tenant.as_str());
    assert_eq!(processed["integration_id"], integration.id.as_str());
    assert!(processed["event_id"].as_str().is_some());
    // The ingress's own lines name the request too: the accepted event's, and the rejected
    // webhook's with the id the listener made up for it and the integration it was sent to.
    let accepted = lines
        .iter()
        .find(|line| line["message"] == "event accepted" && line["request_id"] == "req-ops-1")
        .unwrap_or_else(|| panic!("no ingress line with the request id in {logs}"));
    assert_eq!(accepted["event_id"], processed["event_id"]);
    let rejected = lines
        .iter()
        .find(|line| {
            line["message"] == "webhook rejected" && line["request_id"] == generated.as_str()
        })
        .unwrap_or_else(|| panic!("no rejection line with the generated request id in {logs}"));
    assert_eq!(rejected["integration_id"], integration.id.as_str());
    assert_eq!(rejected["reason"], "unauthorized");

    // A full run's logs, at debug level, hold no secret.
    for secret in [
        integration.secret.as_str(),
        signature.as_str(),
        OPERATOR_TOKEN,
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ] {
        assert!(!logs.contains(secret), "a secret is in the logs");
    }
    let key_part = signature.trim_start_matches("v1,");
    assert!(!logs.contains(key_part), "a signature is in the logs");

    drop(process);
    env.cleanup().await;
}
