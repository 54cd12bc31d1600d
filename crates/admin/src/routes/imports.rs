//! Bulk imports and the sync-run history (imports and webhook days).

use std::io::Write;

use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use domain::ImportId;
use futures_util::StreamExt;
use importer::{Format, ImportRequest};
use serde::Deserialize;
use store::{Page, RunFilter, RunKind, SyncRun};

use crate::error::{AdminError, ApiResult};
use crate::extract::{ApiQuery, parse_id};
use crate::{AdminState, Principal};

/// The largest upload an import takes (it is spooled to disk, not held in memory).
const MAX_UPLOAD_BYTES: u64 = 2 << 30;

/// The import's options, from the query string: `full_roster`, `max_deactivate_percent`, and
/// `map=column=field`, repeatable.
#[derive(Debug, Default)]
struct ImportOptions {
    full_roster: bool,
    max_deactivate_percent: u8,
    map: Vec<String>,
    file_name: Option<String>,
}

fn options(query: Option<&str>) -> ApiResult<ImportOptions> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or_default())
        .map_err(|err| AdminError::bad_request(None, format!("query string: {err}")))?;
    let mut options = ImportOptions {
        max_deactivate_percent: 10,
        ..ImportOptions::default()
    };
    for (key, value) in pairs {
        options.set(&key, value)?;
    }
    Ok(options)
}

impl ImportOptions {
    /// One option, from the query string or a form field of a multipart upload.
    fn set(&mut self, key: &str, value: String) -> ApiResult<()> {
        match key {
            "full_roster" => {
                self.full_roster = value.parse().map_err(|_| {
                    AdminError::bad_request(
                        Some("full_roster"),
                        "full_roster must be true or false",
                    )
                })?;
            }
            "max_deactivate_percent" => {
                self.max_deactivate_percent = value
                    .parse::<u8>()
                    .ok()
                    .filter(|percent| *percent <= 100)
                    .ok_or_else(|| {
                        AdminError::invalid(
                            "max_deactivate_percent",
                            "max_deactivate_percent must be a whole number from 0 to 100",
                        )
                    })?;
            }
            "map" => self.map.push(value),
            "file_name" => self.file_name = Some(value.chars().take(200).collect()),
            other => {
                return Err(AdminError::bad_request(
                    Some(other),
                    format!(
                        "unknown parameter {other:?} (full_roster, max_deactivate_percent, map, file_name)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Writes an upload to the spool file, refusing one over the size limit; answers its size.
async fn spool_stream<S, E>(
    file: &mut std::fs::File,
    mut stream: S,
    size: &mut u64,
) -> ApiResult<()>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| AdminError::bad_request(None, format!("upload: {err}")))?;
        *size += chunk.len() as u64;
        if *size > MAX_UPLOAD_BYTES {
            return Err(AdminError::invalid(
                "file",
                format!("the file is larger than {} GiB", MAX_UPLOAD_BYTES >> 30),
            ));
        }
        file.write_all(&chunk)
            .map_err(|err| AdminError::Internal(format!("cannot spool the upload: {err}")))?;
    }
    Ok(())
}

fn file_error(err: importer::ImportError) -> AdminError {
    match err {
        importer::ImportError::File(err) => AdminError::invalid("file", err.to_string()),
        importer::ImportError::Store(err) => err.into(),
        other => AdminError::Internal(other.to_string()),
    }
}

/// `POST /v1/integrations/{id}/imports`: the body is the roster file (`text/csv`, or JSON
/// lines as `application/x-ndjson`). Answers `202` with the run once the file's header
/// checked out; rows are read and queued in the background (follow `GET /v1/imports/{id}`).
#[utoipa::path(post, path = "/v1/integrations/{id}/imports", tag = "imports",
    params(
        ("id" = domain::IntegrationId, Path, description = "integration id (UUID)"),
        ("full_roster" = Option<bool>, Query, description = "the file is the whole roster: owners absent from it leave"),
        ("max_deactivate_percent" = Option<u8>, Query, description = "full roster: the most owners that may leave, in percent (default 10)"),
        ("map" = Option<Vec<String>>, Query, description = "column=field, repeatable"),
        ("file_name" = Option<String>, Query, description = "shown in the import history"),
    ),
    request_body(content = String, content_type = "text/csv", description = "the roster: CSV with a header row, JSON lines (application/x-ndjson), or a multipart/form-data form whose `file` part is the roster (other parts: the same options as the query)"),
    responses((status = 202, description = "Started", body = SyncRun)))]
pub(crate) async fn create(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    request: Request,
) -> ApiResult<(StatusCode, Json<SyncRun>)> {
    let integration = super::integrations::visible(&state, principal, &id).await?;
    let mut options = options(query.as_deref())?;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // Spooled to disk: a large roster never sits in memory, and the importer reads it twice
    // for a full roster (once for who is in it, once to queue it).
    let spool = tempfile::NamedTempFile::new()
        .map_err(|err| AdminError::Internal(format!("cannot create a spool file: {err}")))?;
    let mut file = spool
        .reopen()
        .map_err(|err| AdminError::Internal(format!("cannot open the spool file: {err}")))?;
    let mut size: u64 = 0;
    let format = if content_type.starts_with("multipart/form-data") {
        // A browser form: the `file` part is the roster; other parts are options.
        let mut form = Multipart::from_request(request, &())
            .await
            .map_err(|err| AdminError::bad_request(None, err.body_text()))?;
        let mut format = None;
        let mut seen_file = false;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|err| AdminError::bad_request(None, err.body_text()))?
        {
            let name = field.name().unwrap_or_default().to_owned();
            if name == "file" {
                seen_file = true;
                let file_name = field.file_name().map(str::to_owned);
                format = field
                    .content_type()
                    .and_then(Format::from_content_type)
                    .or_else(|| {
                        file_name
                            .as_deref()
                            .map(|name| Format::detect(Some(name), b""))
                    });
                if options.file_name.is_none() {
                    options.file_name = file_name;
                }
                spool_stream(&mut file, field, &mut size).await?;
            } else {
                let value = field
                    .text()
                    .await
                    .map_err(|err| AdminError::bad_request(Some(&name), err.body_text()))?;
                options.set(&name, value)?;
            }
        }
        if !seen_file {
            return Err(AdminError::bad_request(
                Some("file"),
                "the form has no `file` part",
            ));
        }
        format
    } else {
        let format = Format::from_content_type(&content_type).ok_or_else(|| {
            AdminError::bad_request(
                Some("content-type"),
                "send the file as text/csv, application/x-ndjson, or multipart/form-data with a `file` part",
            )
        })?;
        spool_stream(&mut file, request.into_body().into_data_stream(), &mut size).await?;
        Some(format)
    };
    if size == 0 {
        return Err(AdminError::invalid("file", "the file is empty"));
    }
    drop(file);
    let request = ImportRequest {
        integration,
        path: spool.path().to_path_buf(),
        file_name: options.file_name,
        format,
        map: options.map,
        full_roster: options.full_roster,
        max_deactivate_percent: options.max_deactivate_percent,
        created_by: match principal {
            Principal::Operator => "operator".to_owned(),
            Principal::Tenant(_) => "tenant token".to_owned(),
        },
    };
    let started = importer::start(&state.store, &request)
        .await
        .map_err(file_error)?;
    let store = state.store.clone();
    let bus = state.bus.clone();
    tokio::spawn(async move {
        // The spool file lives until the import has read it.
        let _spool = spool;
        if let Err(err) = importer::run(&store, &bus, &request, started, &|_, _| {}).await {
            tracing::warn!(import_id = %started.run, error = %err, "import stopped");
        }
    });
    let run = state
        .store
        .sync_run(started.run)
        .await?
        .ok_or(AdminError::NotFound("import"))?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[param(format = Uuid)]
    integration_id: Option<String>,
    /// `import` or `webhooks`.
    kind: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
    cursor: Option<String>,
}

/// `GET /v1/imports`: sync runs, newest first: imports, and each integration's webhook days.
#[utoipa::path(get, path = "/v1/imports", tag = "imports", params(ListQuery), responses((status = 200, description = "OK", body = Page<SyncRun>)))]
pub(crate) async fn list(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<SyncRun>>> {
    let kind = match query.kind.as_deref() {
        None => None,
        Some("import") => Some(RunKind::Import),
        Some("webhooks") => Some(RunKind::Webhooks),
        Some(_) => {
            return Err(AdminError::bad_request(
                Some("kind"),
                "kind must be import or webhooks",
            ));
        }
    };
    let filter = RunFilter {
        tenant: principal.scope(),
        integration_id: query
            .integration_id
            .as_deref()
            .map(|v| parse_id("integration_id", v))
            .transpose()?,
        kind,
    };
    let after = super::cursor(query.cursor.as_deref())?;
    Ok(Json(
        state
            .store
            .list_sync_runs(&filter, after.as_ref(), super::limit(query.limit)?)
            .await?,
    ))
}

async fn visible_run(state: &AdminState, principal: Principal, id: &str) -> ApiResult<SyncRun> {
    let id: ImportId = parse_id("id", id)?;
    state
        .store
        .sync_run(id)
        .await?
        .filter(|run| principal.sees(run.tenant_id))
        .ok_or(AdminError::NotFound("import"))
}

/// `GET /v1/imports/{id}`: one run, with live progress while it runs.
#[utoipa::path(get, path = "/v1/imports/{id}", tag = "imports", params(("id" = domain::ImportId, Path, description = "import id (UUID)")), responses((status = 200, description = "OK", body = SyncRun)))]
pub(crate) async fn show(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<SyncRun>> {
    Ok(Json(visible_run(&state, principal, &id).await?))
}

/// `GET /v1/imports/{id}/errors.csv`: every row that did not turn out as asked: `row`,
/// `owner_id`, `reason`.
#[utoipa::path(get, path = "/v1/imports/{id}/errors.csv", tag = "imports", params(("id" = domain::ImportId, Path, description = "import id (UUID)")), responses((status = 200, description = "The rows with problems as CSV", body = String, content_type = "text/csv")))]
pub(crate) async fn errors(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let run = visible_run(&state, principal, &id).await?;
    let internal = |err: csv::Error| AdminError::Internal(err.to_string());
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(["row", "owner_id", "reason"])
        .map_err(internal)?;
    for error in state.store.run_errors(run.id).await? {
        writer
            .write_record([
                error.row.map(|row| row.to_string()).unwrap_or_default(),
                error.external_id.unwrap_or_default(),
                error.reason,
            ])
            .map_err(internal)?;
    }
    let body = writer
        .into_inner()
        .map_err(|err| AdminError::Internal(err.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"import-{}-errors.csv\"", run.id),
            ),
        ],
        body,
    )
        .into_response())
}
