use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use domain::{InvitationStatus, Timestamp, UserId, UserStatus};
use serde::{Deserialize, Serialize};
use store::{IdentityRecord, InvitationRecord, Page, UserFilter, UserRecord};

use crate::error::{AdminError, ApiResult};
use crate::extract::{ApiQuery, parse_id};
use crate::{AdminState, Principal};

/// Where a user's invitation stands, as the API names it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct InvitationView {
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    queued_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    attempts: i32,
}

impl InvitationView {
    pub(crate) fn of(invitation: Option<&InvitationRecord>, now: Timestamp) -> Self {
        let Some(invitation) = invitation else {
            return Self {
                state: "not_sent",
                queued_at: None,
                sent_at: None,
                accepted_at: None,
                expires_at: None,
                last_error: None,
                attempts: 0,
            };
        };
        let expired = invitation.expires_at.is_some_and(|at| at <= now);
        let state = match invitation.status {
            InvitationStatus::Queued | InvitationStatus::Sending => "queued",
            InvitationStatus::Sent if expired => "expired",
            InvitationStatus::Sent => "sent",
            InvitationStatus::Failed => "failed",
            InvitationStatus::Accepted => "accepted",
            InvitationStatus::Superseded => "expired",
        };
        Self {
            state,
            queued_at: Some(invitation.created_at),
            sent_at: invitation.sent_at,
            accepted_at: invitation.accepted_at,
            expires_at: invitation.expires_at,
            last_error: invitation.last_error.clone(),
            attempts: invitation.attempts,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct UserView {
    #[serde(flatten)]
    user: UserRecord,
    identities: Vec<IdentityRecord>,
    invitation: InvitationView,
}

/// One user as the API shows it.
pub(crate) async fn view_of(state: &AdminState, user: UserRecord) -> ApiResult<UserView> {
    views(state, vec![user])
        .await?
        .pop()
        .ok_or(AdminError::NotFound("user"))
}

async fn views(state: &AdminState, users: Vec<UserRecord>) -> ApiResult<Vec<UserView>> {
    let ids: Vec<UserId> = users.iter().map(|user| user.id).collect();
    let mut identities = state.store.identities_of(&ids).await?;
    let invitations: HashMap<UserId, InvitationRecord> =
        state.store.latest_invitations_of(&ids).await?;
    let now = Timestamp::now();
    Ok(users
        .into_iter()
        .map(|user| UserView {
            identities: identities.remove(&user.id).unwrap_or_default(),
            invitation: InvitationView::of(invitations.get(&user.id), now),
            user,
        })
        .collect())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    status: Option<String>,
    team_id: Option<String>,
    integration_id: Option<String>,
    q: Option<String>,
    limit: Option<u64>,
    cursor: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<UserView>>> {
    let status = query
        .status
        .as_deref()
        .map(|value| {
            value
                .parse::<UserStatus>()
                .map_err(|err| AdminError::bad_request(Some("status"), err.to_string()))
        })
        .transpose()?;
    let filter = UserFilter {
        tenant: principal.scope(),
        status,
        team_id: query
            .team_id
            .as_deref()
            .map(|v| parse_id("team_id", v))
            .transpose()?,
        integration_id: query
            .integration_id
            .as_deref()
            .map(|v| parse_id("integration_id", v))
            .transpose()?,
        q: query.q,
    };
    let after = super::cursor(query.cursor.as_deref())?;
    let page = state
        .store
        .list_users(&filter, after.as_ref(), query.limit)
        .await?;
    Ok(Json(Page {
        items: views(&state, page.items).await?,
        next_cursor: page.next_cursor,
    }))
}

pub(crate) async fn show(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<UserView>> {
    let id: UserId = parse_id("id", &id)?;
    let user = state
        .store
        .user(id)
        .await?
        .filter(|user| principal.sees(user.tenant_id))
        .ok_or(AdminError::NotFound("user"))?;
    view_of(&state, user).await.map(Json)
}
