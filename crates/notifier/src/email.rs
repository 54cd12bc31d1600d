//! The invitation message.

use domain::Timestamp;
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use store::ClaimedInvitation;

/// Builds the email for a claimed invitation carrying `link`.
pub(crate) fn invitation_message(
    from: &Mailbox,
    message_id_domain: &str,
    invitation: &ClaimedInvitation,
    link: &str,
) -> Result<Message, String> {
    let full_name = format!("{} {}", invitation.first_name, invitation.last_name);
    let to = Mailbox::new(
        Some(full_name.clone()),
        invitation
            .email
            .parse()
            .map_err(|err| format!("recipient {:?}: {err}", invitation.email))?,
    );
    let expires = expiry_date(invitation.expires_at);
    let text = format!(
        "Hi {first},\n\n\
         {tenant} has created an account for you.\n\n\
         Accept your invitation here:\n{link}\n\n\
         This link works once and expires on {expires}.\n",
        first = invitation.first_name,
        tenant = invitation.tenant_name,
    );
    let html = format!(
        "<!doctype html><html><body>\
         <p>Hi {first},</p>\
         <p>{tenant} has created an account for you.</p>\
         <p><a href=\"{link}\">Accept your invitation</a></p>\
         <p>This link works once and expires on {expires}.</p>\
         </body></html>",
        first = escape_html(&invitation.first_name),
        tenant = escape_html(&invitation.tenant_name),
        link = escape_html(link),
    );
    Message::builder()
        .from(from.clone())
        .to(to)
        // One Message-ID per invitation: a re-send after a crash in the SMTP window is the
        // same message, which mail clients show once.
        .message_id(Some(format!(
            "<invitation-{}@{message_id_domain}>",
            invitation.id
        )))
        .subject(format!("{} invited you", invitation.tenant_name))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
        )
        .map_err(|err| err.to_string())
}

/// `2026-11-29 10:00 UTC`.
fn expiry_date(at: Timestamp) -> String {
    let text = at.to_rfc3339();
    match (text.get(..10), text.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => text,
    }
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape_html("<b>\"A&B\"</b>"),
            "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt;"
        );
    }

    #[test]
    fn formats_the_expiry() {
        let at = Timestamp::parse_rfc3339("2026-11-29T10:00:00Z").unwrap();
        assert_eq!(expiry_date(at), "2026-11-29 10:00 UTC");
    }
}
