//! What this machine can do at best, measured in the same run: an HTTP endpoint that only
//! verifies the HMAC (the HTTP ceiling), a bare lapin publisher with confirms to a quorum queue
//! like rollcall's (the broker ceiling), the same HTTP endpoint answering only once the body
//! is confirmed by that queue (the broker ceiling measured through HTTP: durable 2xx per
//! second, what rollcall's ingress does at the least), and single-row transactional inserts
//! into PostgreSQL (the database ceiling).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use sea_orm::{ConnectionTrait, Database, TransactionTrait};
use sha2::Sha256;

/// A throughput figure.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct Ceiling {
    pub per_second: f64,
    pub concurrency: usize,
    pub seconds: f64,
}

/// Where the durable ceiling server puts what it accepts.
#[derive(Clone)]
struct Durable {
    channel: lapin::Channel,
    queue: String,
}

/// The minimal webhook endpoint: read the body, verify the Standard Webhooks HMAC, answer 202;
/// with `amqp_url`, publish the body to a quorum queue and wait for the confirm before
/// answering. Runs as its own process (`rollcall-bench ceiling-server`), like rollcall.
pub(crate) async fn serve_http_ceiling(
    addr: &str,
    secret: &str,
    amqp_url: Option<&str>,
    queue: &str,
) -> anyhow::Result<()> {
    let key = Arc::new(STANDARD.decode(secret.trim_start_matches("whsec_"))?);
    let durable = match amqp_url {
        Some(url) => {
            let connection = Connection::connect(url, ConnectionProperties::default()).await?;
            let channel = connection.create_channel().await?;
            declare_quorum_queue(&channel, queue).await?;
            let queue = queue.to_owned();
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            // The connection lives as long as the process.
            std::mem::forget(connection);
            Some(Durable { channel, queue })
        }
        None => None,
    };
    let app = Router::new().route(
        "/hooks/{id}",
        post(move |request: Request| {
            let key = Arc::clone(&key);
            let durable = durable.clone();
            async move {
                let headers = request.headers().clone();
                let Ok(body) = axum::body::to_bytes(request.into_body(), 1 << 20).await else {
                    return StatusCode::PAYLOAD_TOO_LARGE;
                };
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                };
                let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&key) else {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                };
                mac.update(header("webhook-id").as_bytes());
                mac.update(b".");
                mac.update(header("webhook-timestamp").as_bytes());
                mac.update(b".");
                mac.update(&body);
                let given = header("webhook-signature").trim_start_matches("v1,");
                let verified = STANDARD
                    .decode(given)
                    .is_ok_and(|signature| mac.verify_slice(&signature).is_ok());
                if !verified {
                    return StatusCode::UNAUTHORIZED;
                }
                let Some(durable) = durable else {
                    return StatusCode::ACCEPTED;
                };
                match publish(&durable.channel, &durable.queue, &body).await {
                    Ok(true) => StatusCode::ACCEPTED,
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on http://{}", listener.local_addr()?)?;
    out.flush()?;
    drop(out);
    axum::serve(listener, app).await?;
    Ok(())
}

/// Confirmed persistent publishes to a quorum queue declared like rollcall's work queue, with
/// `concurrency` publishes in flight on one channel (as the ingress does).
pub(crate) async fn broker(
    amqp_url: &str,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Ceiling> {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let queue = ceiling_queue_name();
    declare_quorum_queue(&channel, &queue).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    // About the size of one of rollcall's queued events.
    let payload = Arc::new(vec![b'x'; 700]);
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (channel, payload, done, queue) = (
            channel.clone(),
            Arc::clone(&payload),
            Arc::clone(&done),
            queue.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < duration {
                if publish(&channel, &queue, &payload).await? {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<(), lapin::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = connection.close(200, "done".into()).await;
    Ok(Ceiling {
        per_second: done.load(Ordering::Relaxed) as f64 / seconds,
        concurrency,
        seconds,
    })
}

/// A persistent, mandatory publish to `queue`, waiting for the broker's confirm.
async fn publish(channel: &lapin::Channel, queue: &str, body: &[u8]) -> lapin::Result<bool> {
    let confirm = channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            body,
            BasicProperties::default().with_delivery_mode(2),
        )
        .await?
        .await?;
    Ok(confirm.is_ack() && confirm.take_message().is_none())
}

/// A fresh name for a ceiling's queue.
pub(crate) fn ceiling_queue_name() -> String {
    format!("bench-ceiling-{}", uuid::Uuid::new_v4().simple())
}

/// Deletes a ceiling's queue at once, so the broker's work of removing its messages does not
/// fall on whatever is measured next.
pub(crate) async fn delete_queue(amqp_url: &str, queue: &str) -> anyhow::Result<()> {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await?;
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}

/// A quorum queue named `queue`, declared like rollcall's work queue.
async fn declare_quorum_queue(channel: &lapin::Channel, queue: &str) -> lapin::Result<()> {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args.insert("x-delivery-limit".into(), AMQPValue::LongInt(20));
    // Gone a minute after its last use, even when its process is killed.
    args.insert("x-expires".into(), AMQPValue::LongInt(60_000));
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            args,
        )
        .await?;
    Ok(())
}

/// Single-row transactional inserts (BEGIN, INSERT, COMMIT) on `concurrency` connections.
pub(crate) async fn database(
    pg_url: &str,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Ceiling> {
    let mut options = sea_orm::ConnectOptions::new(pg_url.to_owned());
    options
        .max_connections(u32::try_from(concurrency).unwrap_or(u32::MAX))
        .sqlx_logging(false);
    let db = Database::connect(options).await?;
    let table = format!("bench_ceiling_{}", uuid::Uuid::new_v4().simple());
    db.execute_unprepared(&format!(
        "CREATE TABLE {table} (id uuid PRIMARY KEY, body text NOT NULL, created_at bigint NOT NULL)"
    ))
    .await?;
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (db, done, table) = (db.clone(), Arc::clone(&done), table.clone());
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < duration {
                let tx = db.begin().await?;
                tx.execute_unprepared(&format!(
                    "INSERT INTO {table} (id, body, created_at) VALUES ('{}', 'x', 0)",
                    uuid::Uuid::new_v4()
                ))
                .await?;
                tx.commit().await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), sea_orm::DbErr>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    db.execute_unprepared(&format!("DROP TABLE {table}"))
        .await?;
    Ok(Ceiling {
        per_second: done.load(Ordering::Relaxed) as f64 / seconds,
        concurrency,
        seconds,
    })
}
