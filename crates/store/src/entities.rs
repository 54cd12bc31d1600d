//! sea-orm entities, one module per table (see the `migrations` crate for the schema).
//! Generated shapes only: queries live in the modules that use them. The tables a batch
//! inserts into in bulk derive `Serialize`: on PostgreSQL their rows travel as one JSON
//! parameter (see `staged`).

#![allow(missing_docs, unreachable_pub)]

pub mod tenant {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenants")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub name: String,
        pub created_at: i64,
        /// JSON: `domain::TenantInvitationSettings`; `NULL` = defaults.
        pub invitation_settings: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod api_token {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Option<Uuid>,
        pub kind: String,
        pub name: String,
        pub token_hash: String,
        pub created_at: i64,
        pub last_used_at: Option<i64>,
        pub revoked_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod integration {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "integrations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub name: String,
        pub source: String,
        pub verification: String,
        pub settings: String,
        pub state: String,
        pub created_at: i64,
        pub updated_at: i64,
        pub published_at: Option<i64>,
        pub revoked_at: Option<i64>,
        /// JSON: base URL, credential names, credentials sealed (see `integrations.rs`).
        pub directory: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod integration_secret {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "integration_secrets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub integration_id: Uuid,
        pub ciphertext: String,
        pub created_at: i64,
        pub expires_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod team {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "teams")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub name: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub email: String,
        pub email_normalized: String,
        pub first_name: String,
        pub last_name: String,
        pub avatar_url: Option<String>,
        pub title: Option<String>,
        pub department: Option<String>,
        pub location: Option<String>,
        pub employee_ids: String,
        pub member_type: Option<String>,
        pub role: String,
        pub status: String,
        pub team_id: Option<Uuid>,
        pub source_updated_at: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod identity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "identities")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub user_id: Uuid,
        pub integration_id: Uuid,
        pub external_id: String,
        pub avatar_url: Option<String>,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub integration_id: Uuid,
        pub provider_event_id: String,
        pub event_type: String,
        pub occurred_at: Option<i64>,
        pub received_at: i64,
        pub processed_at: i64,
        pub outcome: String,
        pub reason: Option<String>,
        pub user_id: Option<Uuid>,
        pub external_id: Option<String>,
        pub shadow: bool,
        pub attempts: i32,
        pub details: String,
        pub replayed_at: Option<i64>,
        pub replayed_by: Option<String>,
        pub sync_run_id: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod invitation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize)]
    #[sea_orm(table_name = "invitations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub user_id: Uuid,
        pub status: String,
        pub token_hash: Option<String>,
        pub token_ciphertext: Option<String>,
        pub attempts: i32,
        pub next_attempt_at: i64,
        pub claimed_until: Option<i64>,
        pub expires_at: Option<i64>,
        pub sent_at: Option<i64>,
        pub accepted_at: Option<i64>,
        pub last_error: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod queue_job {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "queue_jobs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub event_id: Uuid,
        pub envelope: String,
        pub attempts: i32,
        pub available_at: i64,
        pub locked_until: Option<i64>,
        pub errors: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod setting {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        pub value: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod issue {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "issues")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub integration_id: Uuid,
        pub external_id: String,
        pub kind: String,
        pub missing: String,
        pub detail: String,
        pub occurrences: i32,
        pub first_event_id: Uuid,
        pub last_event_id: Uuid,
        pub opened_at: i64,
        pub updated_at: i64,
        pub resolved_at: Option<i64>,
        pub resolved_by_event_id: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod dead_letter {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "dead_letters")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub integration_id: Uuid,
        pub event_id: Uuid,
        pub provider_event_id: String,
        pub event_type: String,
        pub envelope: String,
        pub errors: String,
        pub attempts: i32,
        pub reason: String,
        pub first_failed_at: i64,
        pub dead_at: i64,
        pub replayed_at: Option<i64>,
        pub replayed_by: Option<String>,
        pub replay_count: i32,
        pub sync_run_id: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod sync_run {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sync_runs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub tenant_id: Uuid,
        pub integration_id: Uuid,
        pub kind: String,
        pub day: Option<String>,
        pub file_name: Option<String>,
        pub state: String,
        pub full_roster: bool,
        pub max_deactivate_percent: i32,
        pub rows_read: i64,
        pub rows_queued: i64,
        pub rows_invalid: i64,
        pub absent: Option<i64>,
        pub stop_reason: Option<String>,
        pub options: String,
        pub created_by: String,
        pub started_at: i64,
        pub queued_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod sync_run_error {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sync_run_errors")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub sync_run_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub row: i64,
        pub external_id: Option<String>,
        pub reason: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod roster_id {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "roster_ids")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub sync_run_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub external_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
