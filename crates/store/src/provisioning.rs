//! The provisioning write transaction: everything a batch of events does (users, identity
//! links, invitation outbox rows, event-log rows) commits together or not at all. The batch's
//! reads and writes go through [`Staged`](crate::Staged) (see `staged.rs`).

use sea_orm::DatabaseTransaction;

use crate::{Backend, Result, StoreError};

/// An open write transaction. Dropping it without [`commit`](Self::commit) rolls back.
#[derive(Debug)]
pub struct WriteTx {
    pub(crate) tx: DatabaseTransaction,
    pub(crate) backend: Backend,
}

impl WriteTx {
    pub(crate) fn new(tx: DatabaseTransaction, backend: Backend) -> Self {
        Self { tx, backend }
    }

    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await.map_err(StoreError::from)
    }
}
