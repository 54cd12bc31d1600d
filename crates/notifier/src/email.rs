//! The invitation message.

use domain::Timestamp;
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use store::ClaimedInvitation;

use crate::templates::RenderedInvitation;

/// Builds the email for a claimed invitation from its rendered parts.
pub(crate) fn invitation_message(
    from: &Mailbox,
    reply_to: Option<&Mailbox>,
    message_id_domain: &str,
    invitation: &ClaimedInvitation,
    rendered: RenderedInvitation,
) -> Result<Message, String> {
    let full_name = format!("{} {}", invitation.first_name, invitation.last_name);
    let to = Mailbox::new(
        Some(full_name),
        invitation
            .email
            .parse()
            .map_err(|err| format!("recipient {:?}: {err}", invitation.email))?,
    );
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to)
        .date_now()
        // One Message-ID per invitation: a re-send after a crash in the SMTP window is the
        // same message, which mail clients show once.
        .message_id(Some(format!(
            "<invitation-{}@{message_id_domain}>",
            invitation.id
        )))
        .subject(rendered.subject);
    if let Some(reply_to) = reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(rendered.text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(rendered.html),
                ),
        )
        .map_err(|err| err.to_string())
}

/// `2026-11-29 10:00 UTC`.
pub(crate) fn expiry_date(at: Timestamp) -> String {
    let text = at.to_rfc3339();
    match (text.get(..10), text.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_expiry() {
        let at = Timestamp::parse_rfc3339("2026-11-29T10:00:00Z").unwrap();
        assert_eq!(expiry_date(at), "2026-11-29 10:00 UTC");
    }
}
