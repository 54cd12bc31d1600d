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
use domain::Timestamp;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use lettre::message::Mailbox;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use store::{ClaimedInvitation, Store};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::email::{expiry_date, invitation_message};
use crate::templates::{InvitationVars, Templates};

/// Where emails go.
#[derive(Debug, Clone)]
pub enum MailTransport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        connections: u32,
    },
    /// One `.eml` file per message in this directory.
    Files(PathBuf),
}

/// A mail transport that could not be set up.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(String);

impl MailTransport {
    /// SMTP from a URL (`smtp://host:port`, `smtps://user:pass@host`, see lettre's
    /// `from_url` for TLS options), sending over up to `connections` connections at once.
    pub fn smtp(url: &str, connections: u32) -> Result<Self, TransportError> {
        let connections = connections.max(1);
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|err| TransportError(format!("ROLLCALL_SMTP_URL: {err}")))?
            .timeout(Some(Duration::from_secs(20)))
            .pool_config(PoolConfig::new().max_size(connections))
            .build();
        Ok(MailTransport::Smtp {
            transport,
            connections,
        })
    }

    /// Emails the relay sends at once. An SMTP exchange waits on the server several times
    /// (MAIL, RCPT, DATA, the message), and lettre writes the message's final dot apart from
    /// it without disabling Nagle's algorithm, so each message also waits for the server's
    /// delayed ACK (40 ms on Linux): one connection at a time sends about 25 a second however
    /// fast both ends are. Files need no waiting, and one writer at a time keeps the outbox's
    /// bookkeeping off the provisioning transactions' way.
    fn sends_at_once(&self) -> usize {
        match self {
            MailTransport::Smtp { connections, .. } => {
                usize::try_from(*connections).unwrap_or(usize::MAX)
            }
            MailTransport::Files(_) => 1,
        }
    }

    async fn send(&self, message: Message) -> Result<(), SendFailure> {
        match self {
            MailTransport::Smtp { transport, .. } => {
                transport.send(message).await.map(|_| ()).map_err(|err| {
                    if err.is_permanent() {
                        SendFailure::Permanent(err.to_string())
                    } else {
                        SendFailure::Transient(err.to_string())
                    }
                })
            }
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
    /// `Reply-To` of invitations, unless the tenant sets its own.
    pub reply_to: Option<Mailbox>,
    /// Base of default invitation links: `{public_url}/invitations/{token}`.
    pub public_url: String,
    pub templates: Arc<Templates>,
    pub invitation_ttl: Duration,
    /// How long a claim lasts before another relay may take the invitation over.
    pub claim_timeout: Duration,
    /// How often to look for due invitations when not woken.
    pub poll_interval: Duration,
    /// The delay after the first transient refusal; it doubles per attempt (up to 30 min).
    pub retry_base: Duration,
    /// Attempts before a transiently refused invitation is given up as `failed`.
    pub max_attempts: u32,
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
            reply_to: None,
            public_url: public_url.trim_end_matches('/').to_owned(),
            templates: Arc::new(Templates::builtin()),
            invitation_ttl: Duration::from_secs(7 * 24 * 3600),
            claim_timeout: Duration::from_secs(120),
            poll_interval: Duration::from_secs(1),
            retry_base: Duration::from_secs(10),
            max_attempts: 12,
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

/// Invitations claimed per look at the outbox.
const CLAIM_BATCH: u64 = 16;

/// `base` doubling per attempt up to 30 min, with jitter (so a fleet of relays refused by one
/// busy server does not come back in step).
fn retry_delay(base: Duration, attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    let delay = base.saturating_mul(1 << exp).min(Duration::from_secs(1800));
    delay.mul_f64(1.0 + rand::random_range(0.0..0.25))
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

    /// Sends what is due now; answers how many invitations it handled. Claims are taken in
    /// batches (one commit for many emails); each email is then sent and recorded on its own,
    /// so a crash re-sends at most the ones in flight: one for files, up to the transport's
    /// connections over SMTP (see `MailTransport::sends_at_once`). Once recording fails, no
    /// further email of the batch is sent: their claims expire and another pass sends them.
    pub async fn drain_once(&self) -> Result<usize, store::StoreError> {
        let at_once = self.transport.sends_at_once();
        let now = Timestamp::now();
        let claimed = self
            .store
            .claim_due_invitations(
                CLAIM_BATCH.max(u64::try_from(at_once * 2).unwrap_or(u64::MAX)),
                now.plus(self.config.invitation_ttl),
                now.plus(self.config.claim_timeout),
                now,
                new_token,
            )
            .await?;
        let mut due = claimed.iter();
        let mut in_flight = FuturesUnordered::new();
        let mut handled = 0;
        let mut failure = None;
        loop {
            while failure.is_none() && in_flight.len() < at_once {
                let Some(invitation) = due.next() else { break };
                in_flight.push(self.deliver_claimed(invitation));
            }
            match in_flight.next().await {
                Some(Ok(sent)) => handled += usize::from(sent),
                Some(Err(err)) => {
                    failure.get_or_insert(err);
                }
                None => break,
            }
        }
        if let Some(err) = failure {
            return Err(err);
        }
        Ok(handled)
    }

    /// Delivers a claimed invitation unless its claim ran out while earlier emails of the
    /// batch were sent (a slow server): another relay may be sending it now, so it is left.
    async fn deliver_claimed(
        &self,
        invitation: &ClaimedInvitation,
    ) -> Result<bool, store::StoreError> {
        if Timestamp::now() >= invitation.claimed_until {
            return Ok(false);
        }
        self.deliver(invitation).await.map(|()| true)
    }

    async fn deliver(&self, invitation: &ClaimedInvitation) -> Result<(), store::StoreError> {
        let id = invitation.id;
        let message = match self.message(invitation) {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(invitation_id = %id, error = %err, "invitation cannot be built");
                metrics::counter!("rollcall_invitations_failed_total").increment(1);
                self.store
                    .mark_invitation_failed(id, &err, Timestamp::now())
                    .await?;
                return Ok(());
            }
        };
        match self.transport.send(message).await {
            Ok(()) => {
                self.store
                    .mark_invitation_sent(id, Timestamp::now())
                    .await?;
                metrics::counter!("rollcall_invitations_sent_total").increment(1);
                tracing::debug!(invitation_id = %id, user_id = %invitation.user_id, "invitation sent");
            }
            Err(SendFailure::Transient(err))
                if u32::try_from(invitation.attempts).unwrap_or(u32::MAX)
                    >= self.config.max_attempts =>
            {
                tracing::warn!(invitation_id = %id, error = %err, attempts = invitation.attempts, "invitation not sent; giving up");
                metrics::counter!("rollcall_invitations_failed_total").increment(1);
                self.store
                    .mark_invitation_failed(
                        id,
                        &format!("gave up after {} attempts: {err}", invitation.attempts),
                        Timestamp::now(),
                    )
                    .await?;
            }
            Err(SendFailure::Transient(err)) => {
                metrics::counter!("rollcall_invitation_retries_total").increment(1);
                let delay = retry_delay(self.config.retry_base, invitation.attempts);
                tracing::warn!(invitation_id = %id, error = %err, retry_in_s = delay.as_secs(), "invitation not sent; will retry");
                let now = Timestamp::now();
                self.store
                    .retry_invitation(id, now.plus(delay), &err, now)
                    .await?;
            }
            Err(SendFailure::Permanent(err)) => {
                metrics::counter!("rollcall_invitations_failed_total").increment(1);
                tracing::warn!(invitation_id = %id, error = %err, "mail server refused the invitation");
                self.store
                    .mark_invitation_failed(id, &err, Timestamp::now())
                    .await?;
            }
        }
        Ok(())
    }

    /// The email for a claimed invitation: its link, the tenant's templates and reply-to.
    fn message(&self, invitation: &ClaimedInvitation) -> Result<Message, String> {
        let settings = &invitation.tenant_settings;
        let link = settings.link(&self.config.public_url, &invitation.token);
        let full_name = format!("{} {}", invitation.first_name, invitation.last_name);
        let expires_at = expiry_date(invitation.expires_at);
        let rendered = self.config.templates.render(
            invitation.tenant_id,
            settings,
            &InvitationVars {
                first_name: &invitation.first_name,
                last_name: &invitation.last_name,
                full_name: &full_name,
                email: &invitation.email,
                tenant_name: &invitation.tenant_name,
                link: &link,
                expires_at: &expires_at,
            },
        )?;
        let reply_to = match &settings.reply_to {
            Some(address) => Some(
                address
                    .parse::<Mailbox>()
                    .map_err(|err| format!("reply_to {address:?}: {err}"))?,
            ),
            None => self.config.reply_to.clone(),
        };
        invitation_message(
            &self.config.from,
            reply_to.as_ref(),
            &self.config.message_id_domain,
            invitation,
            rendered,
        )
    }
}
