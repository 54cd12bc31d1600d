//! Invitation emails: the relay that drains the invitation outbox into a mail transport
//! (SMTP through lettre, or `.eml` files in a directory when no SMTP server is configured).
//!
//! This crate is the only one that knows SMTP. It owns the invitation token (generated at
//! send time, stored only as a hash) and the delivery bookkeeping: claim before sending,
//! record `sent` after, retry transient refusals with backoff, mark permanent ones `failed`;
//! and the email's templates. It never creates invitations: the provisioner writes them with
//! the user, the internal API when an admin sends or resends one.

mod email;
mod relay;
mod templates;

pub use relay::{MailTransport, Relay, RelayConfig, TransportError};
pub use templates::{
    InvitationVars, RenderedInvitation, TemplateError, Templates, check_tenant_settings,
};
