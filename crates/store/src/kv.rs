//! A small key/value table for instance-wide facts (e.g. that the operator token exists).

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};

use crate::by_key::ByKey;
use crate::entities::setting;
use crate::{Result, Store};

impl Store {
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(setting::Entity::find_by_id(key.to_owned())
            .by_key(self.db())
            .await?
            .map(|row| row.value))
    }

    /// Stores `value` under `key` unless a value is already there; says whether it stored.
    pub async fn set_setting_if_absent(&self, key: &str, value: &str) -> Result<bool> {
        let result = setting::Entity::insert(setting::ActiveModel {
            key: Set(key.to_owned()),
            value: Set(value.to_owned()),
        })
        .on_conflict(
            OnConflict::column(setting::Column::Key)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(self.writer())
        .await?;
        Ok(result > 0)
    }
}
