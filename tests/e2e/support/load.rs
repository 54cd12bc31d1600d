//! A load client that behaves like a CRM: it signs each event, retries it until the ingress
//! accepts it (or a deadline passes), and records every event the ingress answered 2xx for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{RwLock, Semaphore};

use super::app::{Client, Integration};
use super::{now_seconds, sign};

/// What the client saw.
#[derive(Debug, Default)]
pub struct Sent {
    pub sent: usize,
    /// Event ids the ingress answered 2xx for.
    pub accepted: Vec<String>,
    /// Events never accepted before the deadline.
    pub given_up: usize,
}

/// Posts every `(delivery id, body)` with `concurrency` requests in flight, each retried (as a
/// CRM does after a 503 or a refused connection) until accepted or `deadline` passes. The
/// ingress URL is read before each attempt, so a test can restart the ingress elsewhere.
pub async fn send_all(
    ingress: Arc<RwLock<String>>,
    integration: &Integration,
    events: Vec<(String, String)>,
    concurrency: usize,
    deadline: Duration,
) -> Sent {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let slots = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(events.len());
    let total = events.len();
    for (delivery_id, body) in events {
        let slot = Arc::clone(&slots).acquire_owned().await.expect("semaphore");
        let http = http.clone();
        let ingress = Arc::clone(&ingress);
        let integration = integration.clone();
        tasks.push(tokio::spawn(async move {
            let _slot = slot;
            loop {
                let base = ingress.read().await.clone();
                let mut request = http
                    .post(format!("{base}/hooks/{}", integration.id))
                    .header("content-type", "application/json")
                    .body(body.clone());
                for (name, value) in sign(&integration.secret, &delivery_id, now_seconds(), &body) {
                    request = request.header(name, value);
                }
                if let Ok(response) = request.send().await
                    && response.status().is_success()
                    && let Ok(answer) = response.json::<Value>().await
                    && let Some(id) = answer["event_id"].as_str()
                {
                    return Some(id.to_owned());
                }
                if started.elapsed() > deadline {
                    return None;
                }
                // A CRM backs off before retrying.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    let mut sent = Sent {
        sent: total,
        ..Sent::default()
    };
    for task in tasks {
        match task.await.ok().flatten() {
            Some(id) => sent.accepted.push(id),
            None => sent.given_up += 1,
        }
    }
    sent
}

/// Every event id in the event log, and every event id in the dead-letter store.
pub async fn logged_and_dead(client: &Client) -> (Vec<String>, Vec<String>) {
    let collect = |path: &'static str| {
        let client = client.clone();
        async move {
            let mut ids = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let query = match &cursor {
                    Some(cursor) => format!("{path}?limit=500&cursor={cursor}"),
                    None => format!("{path}?limit=500"),
                };
                let (status, page) = client.get(&query).await;
                assert_eq!(status, 200, "{page}");
                for item in page["items"].as_array().cloned().unwrap_or_default() {
                    let id = if path == "/v1/events" {
                        &item["id"]
                    } else {
                        &item["event_id"]
                    };
                    ids.push(id.as_str().unwrap_or_default().to_owned());
                }
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            ids
        }
    };
    (
        collect("/v1/events").await,
        collect("/v1/dead-letters").await,
    )
}
