//! API tokens. Only their SHA-256 is stored; the value is shown once, at creation.

use domain::{TenantId, Timestamp, TokenId};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

use crate::by_key::ByKey;
use crate::entities::api_token;
use crate::page::{self, Cursor, Page};
use crate::{Result, Store, StoreError, token_hash};

/// What a token may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Every tenant, and the operator-only routes.
    Operator,
    /// One tenant.
    Tenant,
}

impl TokenKind {
    const fn as_str(self) -> &'static str {
        match self {
            TokenKind::Operator => "operator",
            TokenKind::Tenant => "tenant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiToken {
    pub id: TokenId,
    pub kind: TokenKind,
    pub tenant_id: Option<TenantId>,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl TryFrom<api_token::Model> for ApiToken {
    type Error = StoreError;
    fn try_from(row: api_token::Model) -> Result<Self> {
        let kind = match row.kind.as_str() {
            "operator" => TokenKind::Operator,
            "tenant" => TokenKind::Tenant,
            other => return Err(StoreError::corrupt(format!("token kind {other:?}"))),
        };
        Ok(Self {
            id: row.id.into(),
            kind,
            tenant_id: row.tenant_id.map(TenantId::from),
            name: row.name,
            created_at: Timestamp::from_millis(row.created_at),
            last_used_at: row.last_used_at.map(Timestamp::from_millis),
            revoked_at: row.revoked_at.map(Timestamp::from_millis),
        })
    }
}

impl Store {
    /// Stores a token by its hash. `tenant_id` is `None` exactly for operator tokens.
    pub async fn insert_token(
        &self,
        kind: TokenKind,
        tenant_id: Option<TenantId>,
        name: &str,
        value: &str,
        now: Timestamp,
    ) -> Result<ApiToken> {
        let id = TokenId::new();
        api_token::Entity::insert(api_token::ActiveModel {
            id: Set(id.as_uuid()),
            tenant_id: Set(tenant_id.map(TenantId::as_uuid)),
            kind: Set(kind.as_str().to_owned()),
            name: Set(name.to_owned()),
            token_hash: Set(token_hash(value)),
            created_at: Set(now.millis()),
            last_used_at: Set(None),
            revoked_at: Set(None),
        })
        .exec_without_returning(self.writer())
        .await?;
        Ok(ApiToken {
            id,
            kind,
            tenant_id,
            name: name.to_owned(),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        })
    }

    /// The unrevoked token whose value hashes to `hash`. Lookup by an indexed hash is a
    /// constant-time comparison in effect: the secret value itself is never compared.
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>> {
        api_token::Entity::find()
            .filter(api_token::Column::TokenHash.eq(hash))
            .filter(api_token::Column::RevokedAt.is_null())
            .by_key(self.db())
            .await?
            .map(ApiToken::try_from)
            .transpose()
    }

    /// Whether any unrevoked operator token is stored.
    pub async fn has_operator_token(&self) -> Result<bool> {
        Ok(api_token::Entity::find()
            .filter(api_token::Column::Kind.eq(TokenKind::Operator.as_str()))
            .filter(api_token::Column::RevokedAt.is_null())
            .one(self.db())
            .await?
            .is_some())
    }

    /// Records that a token was used (at most about once a minute per token, by the caller).
    pub async fn touch_token(&self, id: TokenId, now: Timestamp) -> Result<()> {
        api_token::Entity::update_many()
            .col_expr(api_token::Column::LastUsedAt, now.millis().into())
            .filter(api_token::Column::Id.eq(id.as_uuid()))
            .exec(self.writer())
            .await?;
        Ok(())
    }

    /// A tenant's tokens (revoked ones included, so an admin sees what was revoked and when),
    /// in creation order.
    pub async fn list_tokens(
        &self,
        tenant: TenantId,
        after: Option<&Cursor>,
        limit: Option<u64>,
    ) -> Result<Page<ApiToken>> {
        let limit = page::page_size(limit);
        let mut query = api_token::Entity::find()
            .filter(api_token::Column::TenantId.eq(tenant.as_uuid()))
            .order_by_asc(api_token::Column::Id);
        if let Some(after) = after {
            query = query.filter(api_token::Column::Id.gt(after.id));
        }
        let rows = query.limit(limit + 1).all(self.db()).await?;
        page::finish(
            rows,
            limit,
            |row| Cursor::new(0, row.id),
            ApiToken::try_from,
        )
    }

    pub async fn token(&self, id: TokenId) -> Result<Option<ApiToken>> {
        api_token::Entity::find_by_id(id.as_uuid())
            .by_key(self.db())
            .await?
            .map(ApiToken::try_from)
            .transpose()
    }

    /// Revokes a token from `now` on; revoking twice keeps the first time. Answers the token
    /// as it now is, or `None` when there is no such token.
    pub async fn revoke_token(&self, id: TokenId, now: Timestamp) -> Result<Option<ApiToken>> {
        api_token::Entity::update_many()
            .col_expr(api_token::Column::RevokedAt, now.millis().into())
            .filter(api_token::Column::Id.eq(id.as_uuid()))
            .filter(api_token::Column::RevokedAt.is_null())
            .exec(self.writer())
            .await?;
        self.token(id).await
    }
}
