//! The outbox relay.
//!
//! Delivery window: an invitation is claimed (status `sending`, `claimed_until` set) before
//! the SMTP conversation starts, and marked `sent` right after the server accepted the
//! message. If the process dies between the server's acceptance and that mark, the claim
//! expires and the invitation is sent again: the one duplicate SMTP cannot rule out (the
//! server may have accepted a message whose acceptance we never heard). A crash before the
//! send loses nothing either: the expired claim is taken over.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::{InvitationId, Timestamp};
use lettre::message::Mailbox;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::email::invitation_message;

/// Where emails go.
#[derive(Debug, Clone)]
pub enum MailTransport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// One `.eml` file per message in this directory.
    Files(PathBuf),
}

/// A mail transport that could not be set up.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(String);

impl MailTransport {
    /// SMTP from a URL (`smtp://host:port`, `smtps://user:pass@host`, see lettre's
    /// `from_url` for TLS options).
    pub fn smtp(url: &str) -> Result<Self, TransportError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|err| TransportError(format!("ROLLCALL_SMTP_URL: {err}")))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        Ok(MailTransport::Smtp(transport))
    }

    async fn send(&self, message: Message) -> Result<(), SendFailure> {
        match self {
            MailTransport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|err| {
                if err.is_permanent() {
                    SendFailure::Permanent(err.to_string())
                } else {
                    SendFailure::Transient(err.to_string())
                }
            }),
            MailTransport::Files(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|err| SendFailure::Transient(format!("{}: {err}", dir.display())))?;
                AsyncFileTransport::<Tokio1Executor>::new(dir)
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|err| SendFailure::Transient(err.to_string()))
            }
        }
    }
}

enum SendFailure {
    Transient(String),
    Permanent(String),
}

/// What the relay needs besides the store.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub from: Mailbox,
    /// Base of invitation links: `{public_url}/invitations/{token}`.
    pub public_url: String,
    pub invitation_ttl: Duration,
    /// How long a claim lasts before another relay may take the invitation over.
    pub claim_timeout: Duration,
    /// How often to look for due invitations when not woken.
    pub poll_interval: Duration,
    /// The domain part of `Message-ID`s (the public URL's host).
    pub message_id_domain: String,
}

impl RelayConfig {
    #[must_use]
    pub fn new(from: Mailbox, public_url: &str) -> Self {
        let host = public_url
            .split("://")
            .nth(1)
            .unwrap_or(public_url)
            .split(['/', ':'])
            .next()
            .filter(|host| !host.is_empty())
            .unwrap_or("rollcall.invalid");
        Self {
            message_id_domain: host.to_owned(),
            from,
            public_url: public_url.trim_end_matches('/').to_owned(),
            invitation_ttl: Duration::from_secs(7 * 24 * 3600),
            claim_timeout: Duration::from_secs(120),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Drains the invitation outbox.
#[derive(Debug)]
pub struct Relay {
    store: Store,
    transport: MailTransport,
    config: RelayConfig,
    wake: Arc<Notify>,
}

/// 10 s doubling per attempt up to 30 min, with jitter.
fn retry_delay(attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(8);
    let base = Duration::from_secs(10u64 << exp).min(Duration::from_secs(1800));
    base.mul_f64(1.0 + rand::random_range(0.0..0.25))
}

/// A fresh invitation token: 256 random bits, URL-safe.
fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Relay {
    /// `wake` is signalled by the provisioner when it queued invitations.
    #[must_use]
    pub fn new(
        store: Store,
        transport: MailTransport,
        config: RelayConfig,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            transport,
            config,
            wake,
        }
    }

    /// Sends due invitations until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let woken = self.wake.notified();
            let sent_any = match self.drain_once().await {
                Ok(count) => count > 0,
                Err(err) => {
                    tracing::warn!(error = %err, "invitation relay cannot read the outbox");
                    false
                }
            };
            if sent_any {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = woken => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    /// Sends what is due now; answers how many invitations it handled.
    pub async fn drain_once(&self) -> Result<usize, store::StoreError> {
        let due = self.store.due_invitations(Timestamp::now(), 32).await?;
        let mut handled = 0;
        for id in due {
            if self.deliver(id).await? {
                handled += 1;
            }
        }
        Ok(handled)
    }

    async fn deliver(&self, id: InvitationId) -> Result<bool, store::StoreError> {
        let now = Timestamp::now();
        let Some(invitation) = self
            .store
            .claim_invitation(
                id,
                &new_token(),
                now.plus(self.config.invitation_ttl),
                now.plus(self.config.claim_timeout),
                now,
            )
            .await?
        else {
            return Ok(false);
        };
        let link = format!(
            "{}/invitations/{}",
            self.config.public_url, invitation.token
        );
        let message = match invitation_message(
            &self.config.from,
            &self.config.message_id_domain,
            &invitation,
            &link,
        ) {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(invitation_id = %id, error = %err, "invitation cannot be built");
                self.store
                    .mark_invitation_failed(id, &err, Timestamp::now())
                    .await?;
                return Ok(true);
            }
        };
        match self.transport.send(message).await {
            Ok(()) => {
                self.store
                    .mark_invitation_sent(id, Timestamp::now())
                    .await?;
                tracing::debug!(invitation_id = %id, user_id = %invitation.user_id, "invitation sent");
            }
            Err(SendFailure::Transient(err)) => {
                let delay = retry_delay(invitation.attempts);
                tracing::warn!(invitation_id = %id, error = %err, retry_in_s = delay.as_secs(), "invitation not sent; will retry");
                let now = Timestamp::now();
                self.store
                    .retry_invitation(id, now.plus(delay), &err, now)
                    .await?;
            }
            Err(SendFailure::Permanent(err)) => {
                tracing::warn!(invitation_id = %id, error = %err, "mail server refused the invitation");
                self.store
                    .mark_invitation_failed(id, &err, Timestamp::now())
                    .await?;
            }
        }
        Ok(true)
    }
}
