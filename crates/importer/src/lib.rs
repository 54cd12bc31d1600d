//! Bulk import: a roster file (CSV or JSON lines) becomes one event per row, published on the
//! same queue as webhooks and applied by the same worker and rules; the import is a sync run
//! whose progress and outcome the event log gives; a full-roster import turns owners absent
//! from the file into leavers, behind a deletion safeguard.
//!
//! Owns reading roster files and orchestrating a run. Does not decide anything about users
//! (the resolver does) nor write users (the provisioner does): a row goes through the queue
//! like a webhook, so the same idempotency and the same rules hold.
//!
//! Memory stays flat whatever the file's size: rows are read on a blocking thread and handed
//! over in small chunks, a full roster's owner ids go to the database (`roster_ids`) rather
//! than into a set, and absent owners are read back a page at a time.

pub mod rows;

use std::path::PathBuf;

use bus::Bus;
use domain::{EventEnvelope, EventId, ImportId, OwnerFacts, OwnerStatus, Timestamp};
use futures_util::StreamExt;
use store::{Integration, NewImportRun, ReadingEnd, RunError, Store};
use tokio::sync::mpsc;

pub use rows::{ColumnMap, Format, Row, RowError, RowsError};

/// Rows handed from the reading thread at a time.
const CHUNK: usize = 500;
/// Events published at once (each waits for its broker confirm or commit).
const PUBLISH_CONCURRENCY: usize = 64;
/// The event type of a roster row, and of the leaver event for an owner a full roster omits.
pub const ROW_EVENT_TYPE: &str = "roster.import";
pub const ABSENT_EVENT_TYPE: &str = "roster.absent";

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub integration: Integration,
    pub path: PathBuf,
    /// Shown in the run (the uploaded or given file's name).
    pub file_name: Option<String>,
    /// `None`: from the file name or content.
    pub format: Option<Format>,
    /// `column=field` pairs for columns not named like the owner fields.
    pub map: Vec<String>,
    pub full_roster: bool,
    /// Full roster: stop, touching no one, if more than this share of the integration's
    /// current owners would become leavers.
    pub max_deactivate_percent: u8,
    /// Who started it (`cli`, a token's name).
    pub created_by: String,
}

/// Where the importer is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub rows_read: u64,
    pub rows_queued: u64,
    pub rows_invalid: u64,
}

/// Why an import could not run (file-level; row problems go to the run's errors instead).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    File(#[from] RowsError),
    #[error("cannot read {path}: {error}")]
    Open { path: String, error: String },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("the queue refused an event: {0}")]
    Bus(#[from] bus::BusError),
}

fn open(
    request: &ImportRequest,
) -> Result<rows::RowReader<std::io::BufReader<std::fs::File>>, ImportError> {
    let map = ColumnMap::parse(&request.map)?;
    let opened = |error: std::io::Error| ImportError::Open {
        path: request.path.display().to_string(),
        error: error.to_string(),
    };
    let mut file = std::io::BufReader::new(std::fs::File::open(&request.path).map_err(opened)?);
    let format = match request.format {
        Some(format) => format,
        None => {
            // Peeks at the buffered start of the file (not consumed) rather than opening it
            // a second time.
            let head = std::io::BufRead::fill_buf(&mut file).map_err(opened)?;
            let name = request
                .file_name
                .as_deref()
                .or_else(|| request.path.file_name().and_then(|name| name.to_str()));
            Format::detect(name, head.get(..64).unwrap_or(head))
        }
    };
    Ok(rows::RowReader::new(file, format, &map)?)
}

/// Checks the file's header and mapping without starting anything: a file-level problem
/// (not UTF-8, no `id` column, a mapped column missing) is an error here, before any run.
pub fn check(request: &ImportRequest) -> Result<Vec<String>, ImportError> {
    Ok(open(request)?.ignored_columns().to_vec())
}

/// Reads the file on a blocking thread, in chunks; a read failure part-way (a disk error)
/// ends the stream with that error.
fn read_rows(
    request: &ImportRequest,
) -> Result<mpsc::Receiver<Result<Vec<Row>, RowsError>>, ImportError> {
    let mut reader = open(request)?;
    let (sender, receiver) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(CHUNK);
        for row in reader.by_ref() {
            chunk.push(row);
            if chunk.len() == CHUNK
                && sender
                    .blocking_send(Ok(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))))
                    .is_err()
            {
                return;
            }
        }
        if !chunk.is_empty() && sender.blocking_send(Ok(chunk)).is_err() {
            return;
        }
        if let Some(err) = reader.read_error() {
            let _ = sender.blocking_send(Err(err.clone()));
        }
    });
    Ok(receiver)
}

fn envelope(
    integration: &Integration,
    run: ImportId,
    provider_event_id: String,
    event_type: &str,
    owner: &OwnerFacts,
    started: Timestamp,
) -> Result<EventEnvelope, ImportError> {
    Ok(EventEnvelope {
        event_id: EventId::derive(integration.id, &provider_event_id),
        tenant_id: integration.tenant_id,
        integration_id: integration.id,
        provider_event_id,
        event_type: event_type.to_owned(),
        // Every row of a file describes the roster at the moment of the import.
        occurred_at: Some(started),
        received_at: Timestamp::now(),
        payload: serde_json::to_value(owner)
            .map_err(|err| ImportError::Bus(bus::BusError::Encode(err.to_string())))?,
        replay: None,
        import_id: Some(run),
        request_id: None,
    })
}

async fn publish_all(bus: &Bus, envelopes: Vec<EventEnvelope>) -> Result<u64, ImportError> {
    let count = envelopes.len() as u64;
    let mut publishing = Vec::with_capacity(envelopes.len());
    for envelope in &envelopes {
        publishing.push(bus.publish(envelope));
    }
    let mut published =
        futures_util::stream::iter(publishing).buffer_unordered(PUBLISH_CONCURRENCY);
    while let Some(result) = published.next().await {
        result?;
    }
    Ok(count)
}

/// An import whose run exists and whose file checked out.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    pub run: ImportId,
    pub at: Timestamp,
}

/// Checks the file and starts its run (`reading`); nothing is queued yet.
pub async fn start(store: &Store, request: &ImportRequest) -> Result<Started, ImportError> {
    let ignored = check(request)?;
    let at = Timestamp::now();
    let options = serde_json::json!({
        "map": request.map,
        "ignored_columns": ignored,
    });
    let run = store
        .create_import_run(
            &NewImportRun {
                tenant_id: request.integration.tenant_id,
                integration_id: request.integration.id,
                file_name: request.file_name.clone(),
                full_roster: request.full_roster,
                max_deactivate_percent: request.max_deactivate_percent,
                options,
                created_by: request.created_by.clone(),
            },
            at,
        )
        .await?;
    Ok(Started { run, at })
}

/// Reads and queues a started import; returns once every row is queued (or the safeguard
/// stopped it). On a failure the run says why; rows queued before it still apply, and
/// importing the file again finishes the job (a row already applied decides `unchanged`).
pub async fn run(
    store: &Store,
    bus: &Bus,
    request: &ImportRequest,
    started: Started,
    progress: &(dyn Fn(ImportId, Progress) + Send + Sync),
) -> Result<(), ImportError> {
    let run = started.run;
    match run_import(store, bus, request, run, started.at, progress).await {
        Ok(()) => Ok(()),
        Err(err) => {
            let _ = store
                .finish_import_reading(
                    run,
                    ReadingEnd::Failed,
                    Some(&err.to_string()),
                    None,
                    Timestamp::now(),
                )
                .await;
            let _ = store.drop_roster_ids(run).await;
            Err(err)
        }
    }
}

/// [`start`] then [`run`].
pub async fn import(
    store: &Store,
    bus: &Bus,
    request: &ImportRequest,
    progress: &(dyn Fn(ImportId, Progress) + Send + Sync),
) -> Result<ImportId, ImportError> {
    let started = start(store, request).await?;
    run(store, bus, request, started, progress).await?;
    Ok(started.run)
}

async fn run_import(
    store: &Store,
    bus: &Bus,
    request: &ImportRequest,
    run: ImportId,
    started: Timestamp,
    progress: &(dyn Fn(ImportId, Progress) + Send + Sync),
) -> Result<(), ImportError> {
    let integration = &request.integration;
    if request.full_roster {
        // First pass: who the roster names, into the database; then the safeguard, before
        // anything is queued.
        let mut chunks = read_rows(request)?;
        while let Some(chunk) = chunks.recv().await {
            let chunk = chunk?;
            let ids: Vec<String> = chunk
                .iter()
                .filter_map(|row| match &row.result {
                    Ok(owner) => Some(owner.external_id.clone()),
                    // A row with a readable id but another problem still names its owner:
                    // a typo in a column must not make someone a leaver.
                    Err(error) => error.external_id.clone(),
                })
                .collect();
            store.add_roster_ids(run, &ids).await?;
        }
        let (current, absent) = store
            .roster_check(run, integration.tenant_id, integration.id)
            .await?;
        let allowed = current * u64::from(request.max_deactivate_percent) / 100;
        if absent > allowed {
            let percent = absent * 100 / current.max(1);
            let reason = format!(
                "the roster leaves out {absent} of the integration's {current} current owners \
                 ({percent}%), more than the {}% allowed; nobody was changed (check the file, \
                 or allow more with max_deactivate_percent)",
                request.max_deactivate_percent
            );
            store
                .finish_import_reading(
                    run,
                    ReadingEnd::Stopped,
                    Some(&reason),
                    Some(absent),
                    Timestamp::now(),
                )
                .await?;
            store.drop_roster_ids(run).await?;
            return Ok(());
        }
    }
    let mut state = Progress::default();
    let mut chunks = read_rows(request)?;
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk?;
        let mut errors = Vec::new();
        let mut envelopes = Vec::with_capacity(chunk.len());
        for row in chunk {
            state.rows_read += 1;
            match row.result {
                Ok(owner) => envelopes.push(envelope(
                    integration,
                    run,
                    store::import_row_event_id(run, row.number),
                    ROW_EVENT_TYPE,
                    &owner,
                    started,
                )?),
                Err(error) => {
                    state.rows_invalid += 1;
                    errors.push(RunError {
                        row: Some(row.number),
                        external_id: error.external_id,
                        reason: error.reason,
                    });
                }
            }
        }
        store.add_run_errors(run, &errors).await?;
        state.rows_queued += publish_all(bus, envelopes).await?;
        store
            .record_import_progress(run, state.rows_read, state.rows_queued, state.rows_invalid)
            .await?;
        progress(run, state);
    }
    let mut absent = None;
    if request.full_roster {
        let mut after: Option<String> = None;
        let mut count = 0;
        loop {
            let page = store
                .absent_owners(
                    run,
                    integration.tenant_id,
                    integration.id,
                    after.as_deref(),
                    CHUNK as u64,
                )
                .await?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            let envelopes = page
                .iter()
                .map(|external_id| {
                    envelope(
                        integration,
                        run,
                        store::import_absent_event_id(run, external_id),
                        ABSENT_EVENT_TYPE,
                        &OwnerFacts {
                            external_id: external_id.clone(),
                            status: Some(OwnerStatus::Terminated),
                            ..OwnerFacts::default()
                        },
                        started,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            count += publish_all(bus, envelopes).await?;
            after = Some(last);
        }
        absent = Some(count);
        store.drop_roster_ids(run).await?;
    }
    store
        .finish_import_reading(run, ReadingEnd::Queued, None, absent, Timestamp::now())
        .await?;
    Ok(())
}

/// What an import would do, without writing anything.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DryRun {
    pub rows_read: u64,
    pub rows_invalid: u64,
    /// Decisions by action (`create`, `update`, `none`, `issue`, …).
    pub actions: std::collections::BTreeMap<String, u64>,
    /// Every row's decision, in file order.
    pub decisions: Vec<RowDecision>,
    pub errors: Vec<RowErrorLine>,
    pub ignored_columns: Vec<String>,
}

/// One row's decision in a dry run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RowDecision {
    pub row: u64,
    #[serde(flatten)]
    pub decision: resolver::OwnerPreview,
}

/// One row the file could not give.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RowErrorLine {
    pub row: u64,
    pub external_id: Option<String>,
    pub reason: String,
}

/// Decides every row against the current state, writing nothing (a full roster's leavers
/// are not previewed: they depend on the rows being applied first).
pub async fn dry_run(store: &Store, request: &ImportRequest) -> Result<DryRun, ImportError> {
    let mut result = DryRun {
        ignored_columns: check(request)?,
        ..DryRun::default()
    };
    let mut chunks = read_rows(request)?;
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk?;
        let mut numbers = Vec::with_capacity(chunk.len());
        let mut owners = Vec::with_capacity(chunk.len());
        for row in chunk {
            result.rows_read += 1;
            match row.result {
                Ok(owner) => {
                    numbers.push(row.number);
                    owners.push(owner);
                }
                Err(error) => {
                    result.rows_invalid += 1;
                    result.errors.push(RowErrorLine {
                        row: row.number,
                        external_id: error.external_id,
                        reason: error.reason,
                    });
                }
            }
        }
        let previews = resolver::preview_roster(store, &request.integration, &owners)
            .await
            .map_err(|err| match err {
                resolver::PreviewError::Store(err) => ImportError::Store(err),
                other => ImportError::Open {
                    path: request.path.display().to_string(),
                    error: other.to_string(),
                },
            })?;
        for (row, decision) in numbers.into_iter().zip(previews) {
            *result
                .actions
                .entry(decision.action.to_owned())
                .or_default() += 1;
            result.decisions.push(RowDecision { row, decision });
        }
    }
    Ok(result)
}
