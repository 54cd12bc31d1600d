//! The consumer side of the pipeline: takes events off the queue, reads their owners through
//! the integration's source format, decides what each owner's event means for their account
//! (a pure function: [`decide`]), and has the provisioner apply it.
//!
//! The decision logic takes no clock and does no IO: everything it needs (owner facts, the
//! stored state, the settings, the event's type and time) comes in as values, which is what
//! makes the rules table-testable. The worker around it owns acknowledgement, retries and
//! crash containment; it never acknowledges an event before its effects are committed.

mod decide;
mod lookup;
mod manual;
mod worker;

pub use decide::{DecisionContext, decide};
pub use manual::{invites_when_activated, manual_creation};
pub use worker::{Worker, WorkerOptions};

mod preview;

pub use preview::{OwnerPreview, PreviewError, PreviewedEvent, preview, preview_roster};
