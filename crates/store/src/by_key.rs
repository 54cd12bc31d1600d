//! Reading the one row a unique key names, without sea-orm's `one()`.
//!
//! `one()` adds `LIMIT ?` and binds 1 to it. SQLite's planner may use the value of a `LIMIT`
//! parameter, so it marks the statement to be compiled again whenever that parameter is bound:
//! every `one()` on SQLite was a full compile, even from the connection's statement cache.
//! On the ingress's integration lookup that was one compile per webhook, 6–9% of the embedded
//! process's CPU under load. A query on a primary key or a unique index finds at most one row,
//! so it needs no limit, and without one its compiled statement is reused.
//!
//! Queries that may match several rows and want the first keep `one()`.

use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Select, Selector, SelectorTrait};

/// A query whose filter names at most one row through a unique key.
pub(crate) trait ByKey {
    type Item;

    /// The row, if there is one.
    async fn by_key<C: ConnectionTrait>(self, db: &C) -> Result<Option<Self::Item>, DbErr>;
}

impl<S: SelectorTrait> ByKey for Selector<S> {
    type Item = S::Item;

    async fn by_key<C: ConnectionTrait>(self, db: &C) -> Result<Option<S::Item>, DbErr> {
        let statement = self.into_statement(db.get_database_backend());
        db.query_one_raw(statement)
            .await?
            .map(S::from_raw_query_result)
            .transpose()
    }
}

impl<E: EntityTrait> ByKey for Select<E> {
    type Item = E::Model;

    async fn by_key<C: ConnectionTrait>(self, db: &C) -> Result<Option<E::Model>, DbErr> {
        self.into_model::<E::Model>().by_key(db).await
    }
}
