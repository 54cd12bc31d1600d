use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use store::{IssueFilter, IssueRecord, Page};

use crate::error::{AdminError, ApiResult};
use crate::extract::{ApiQuery, parse_id};
use crate::{AdminState, Principal};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[param(format = Uuid)]
    integration_id: Option<String>,
    /// `true`: open issues only; `false`: resolved only.
    open: Option<bool>,
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
    cursor: Option<String>,
}

fn filter(principal: Principal, query: &ListQuery) -> ApiResult<IssueFilter> {
    Ok(IssueFilter {
        tenant: principal.scope(),
        integration_id: query
            .integration_id
            .as_deref()
            .map(|v| parse_id("integration_id", v))
            .transpose()?,
        open: query.open,
    })
}

/// `GET /v1/issues`: provisioning issues, newest first.
#[utoipa::path(get, path = "/v1/issues", tag = "issues", params(ListQuery), responses((status = 200, description = "OK", body = Page<IssueRecord>)))]
pub(crate) async fn list(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<IssueRecord>>> {
    let filter = filter(principal, &query)?;
    let after = super::cursor(query.cursor.as_deref())?;
    Ok(Json(
        state
            .store
            .list_issues(&filter, after.as_ref(), super::limit(query.limit)?)
            .await?,
    ))
}

/// `GET /v1/issues.csv`: every issue matching the filters, as CSV.
#[utoipa::path(get, path = "/v1/issues.csv", tag = "issues", params(ListQuery), responses((status = 200, description = "Every matching issue as CSV", body = String, content_type = "text/csv")))]
pub(crate) async fn csv(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    let filter = filter(principal, &query)?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let internal = |err: csv::Error| AdminError::Internal(err.to_string());
    writer
        .write_record([
            "id",
            "integration_id",
            "owner_id",
            "kind",
            "missing_fields",
            "detail",
            "occurrences",
            "opened_at",
            "updated_at",
            "resolved_at",
            "status",
        ])
        .map_err(internal)?;
    let mut after = super::cursor(query.cursor.as_deref())?;
    loop {
        let page = state
            .store
            .list_issues(&filter, after.as_ref(), Some(500))
            .await?;
        for issue in &page.items {
            writer
                .write_record([
                    issue.id.to_string(),
                    issue.integration_id.to_string(),
                    issue.external_id.clone(),
                    issue.kind.as_str().to_owned(),
                    issue.missing.join(" "),
                    issue.detail.clone(),
                    issue.occurrences.to_string(),
                    issue.opened_at.to_rfc3339(),
                    issue.updated_at.to_rfc3339(),
                    issue
                        .resolved_at
                        .map(|at| at.to_rfc3339())
                        .unwrap_or_default(),
                    if issue.open { "open" } else { "resolved" }.to_owned(),
                ])
                .map_err(internal)?;
        }
        match page.next_cursor {
            Some(cursor) => after = super::cursor(Some(&cursor))?,
            None => break,
        }
    }
    let body = writer
        .into_inner()
        .map_err(|err| AdminError::Internal(err.to_string()))?;
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"issues.csv\""),
    );
    Ok(response)
}
