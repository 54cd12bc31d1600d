//! Sending, resending and redeeming invitations.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use domain::{Timestamp, UserId};
use store::{GoneReason, InviteRefusal, Redemption};

use super::users::{InvitationView, UserView, view_of};
use crate::error::{AdminError, ApiResult};
use crate::extract::parse_id;
use crate::{AdminState, Principal};

/// `POST /v1/users/{id}/invitations`: send the user an invitation now, or a new one. Any open
/// invitation is superseded, so its link stops working. Works whatever the integration's
/// invite mode: an admin asking is the point of `manual`, and an explicit override of `off`.
#[utoipa::path(post, path = "/v1/users/{id}/invitations", tag = "invitations", params(("id" = domain::UserId, Path, description = "user id (UUID)")), responses((status = 202, description = "Queued", body = InvitationView)))]
pub(crate) async fn send(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<InvitationView>)> {
    let id: UserId = parse_id("id", &id)?;
    let now = Timestamp::now();
    match state.store.invite_user(id, principal.scope(), now).await? {
        Ok(invitation) => {
            tracing::info!(user_id = %id, invitation_id = %invitation.id, "invitation queued by an admin");
            Ok((
                StatusCode::ACCEPTED,
                Json(InvitationView::of(Some(&invitation), now)),
            ))
        }
        Err(InviteRefusal::NotActive(status)) => Err(AdminError::Conflict(format!(
            "the user is {status}: only active users are invited"
        ))),
        Err(InviteRefusal::AlreadyAccepted) => Err(AdminError::Conflict(
            "the user already accepted an invitation".to_owned(),
        )),
    }
}

/// `POST /v1/invitations/{token}/accept`: the host application redeems the link's token and
/// gets the user back.
#[utoipa::path(post, path = "/v1/invitations/{token}/accept", tag = "invitations", params(("token" = String, Path, description = "the token from the invitation link")), responses((status = 200, description = "OK", body = UserView)))]
pub(crate) async fn accept(
    State(state): State<AdminState>,
    Extension(principal): Extension<Principal>,
    Path(token): Path<String>,
) -> ApiResult<Json<UserView>> {
    // Tokens are 43 URL-safe base64 characters; anything else cannot match and is not looked up.
    if token.is_empty()
        || token.len() > 128
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(AdminError::NotFound("invitation"));
    }
    match state
        .store
        .accept_invitation(&token, principal.scope(), Timestamp::now())
        .await?
    {
        Redemption::Accepted { user_id } => {
            tracing::info!(%user_id, "invitation accepted");
            let user = state
                .store
                .user(user_id)
                .await?
                .ok_or(AdminError::NotFound("user"))?;
            Ok(Json(view_of(&state, user).await?))
        }
        Redemption::Unknown => Err(AdminError::NotFound("invitation")),
        Redemption::Gone(reason) => {
            let (kind, message) = match reason {
                GoneReason::AlreadyAccepted => (
                    "invitation-already-accepted",
                    "this invitation was already accepted",
                ),
                GoneReason::Superseded => (
                    "invitation-superseded",
                    "this invitation was replaced by a newer one; use the link in the latest email",
                ),
                GoneReason::Expired => (
                    "invitation-expired",
                    "this invitation has expired; ask for a new one",
                ),
                GoneReason::Failed => (
                    "invitation-failed",
                    "this invitation could not be delivered",
                ),
                GoneReason::UserNotActive => (
                    "invitation-user-not-active",
                    "the invited user is no longer active",
                ),
            };
            Err(AdminError::Gone {
                kind,
                message: message.to_owned(),
            })
        }
    }
}
