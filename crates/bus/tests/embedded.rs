//! The embedded queue commits concurrent publishes together: every publish is durable when it
//! is answered, an event is queued once however often and however concurrently it is published,
//! and exactly one of its publishes is told it queued it.

// Test code: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};

use domain::{EventEnvelope, EventId, IntegrationId, TenantId, Timestamp};
use rollcall_bus::{Bus, ConsumeOptions, Published, RetryPolicy};
use store::{SecretCipher, Store, StoreOptions};
use tokio_util::sync::CancellationToken;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("queue.sqlite").display()
    );
    let store = Store::connect(
        &StoreOptions::new(url),
        SecretCipher::from_base64(KEY).expect("key"),
    )
    .await
    .expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn envelope(integration: IntegrationId, provider_event_id: &str) -> EventEnvelope {
    EventEnvelope {
        event_id: EventId::derive(integration, provider_event_id),
        tenant_id: TenantId::new(),
        integration_id: integration,
        provider_event_id: provider_event_id.to_owned(),
        event_type: "deal.updated".to_owned(),
        occurred_at: None,
        received_at: Timestamp::now(),
        payload: serde_json::json!({ "delivery": provider_event_id }),
        replay: None,
        import_id: None,
        request_id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_queue_each_event_once_and_say_so_once() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = sqlite_store(&dir).await;
    let bus = Bus::embedded(store, RetryPolicy::default());
    let integration = IntegrationId::new();

    // 300 events, the first 100 of them published three times in a row (so that copies
    // share a commit), all at once.
    let mut publishes = tokio::task::JoinSet::new();
    for n in 0..300 {
        let copies = if n < 100 { 3 } else { 1 };
        for _ in 0..copies {
            let bus = bus.clone();
            let envelope = envelope(integration, &format!("delivery-{n}"));
            publishes.spawn(async move { (envelope.event_id, bus.publish(&envelope).await) });
        }
    }
    let mut queued_answers: HashMap<EventId, usize> = HashMap::new();
    let mut answers = 0;
    while let Some(joined) = publishes.join_next().await {
        let (event_id, published) = joined.expect("publish task");
        answers += 1;
        match published.expect("publish") {
            Published::Queued => *queued_answers.entry(event_id).or_default() += 1,
            Published::AlreadyQueued => {}
        }
    }
    assert_eq!(answers, 500);
    assert_eq!(
        queued_answers.len(),
        300,
        "every event was queued by some publish"
    );
    assert!(
        queued_answers.values().all(|&count| count == 1),
        "an event was reported queued by more than one publish"
    );
    assert_eq!(bus.depths().await.expect("depths").work, 300);

    // Already committed: a later publish changes nothing.
    assert_eq!(
        bus.publish(&envelope(integration, "delivery-7"))
            .await
            .expect("publish"),
        Published::AlreadyQueued
    );

    // What was answered is what a consumer gets: each event once, with its body.
    let shutdown = CancellationToken::new();
    let mut consumer = bus.consumer(ConsumeOptions::default(), shutdown.clone());
    let mut delivered = HashSet::new();
    while delivered.len() < 300 {
        let delivery = consumer.next().await.expect("a delivery");
        let envelope = EventEnvelope::from_json(&delivery.body).expect("envelope");
        assert_eq!(delivery.event_id, Some(envelope.event_id));
        assert!(delivered.insert(envelope.event_id), "delivered twice");
        delivery.ack().await.expect("ack");
    }
    assert_eq!(bus.depths().await.expect("depths").work, 0);
    shutdown.cancel();
}
