//! Invitations: modes, resend, redemption, expiry, SMTP refusals, a crash mid-send, templates
//! and non-ASCII names, against a real SMTP server on loopback.

use std::time::Duration;

use mail_parser::MessageParser;
use serde_json::{Value, json};

use crate::support::{
    Backend, Client, Integration, Process, Spawn, TestEnv, event, eventually, owner,
};
use smtp_sink::{DataReply, SmtpSink};

const WAIT: Duration = Duration::from_secs(30);

/// An email as the recipient's client shows it.
#[derive(Debug)]
struct Mail {
    to_name: String,
    to_address: String,
    subject: String,
    text: String,
    html: String,
    reply_to: Option<String>,
    message_id: String,
    has_date: bool,
}

fn parse(raw: &str) -> Mail {
    let message = MessageParser::default()
        .parse(raw.as_bytes())
        .expect("a parsable email");
    let to = message
        .to()
        .and_then(|to| to.first())
        .expect("a To address");
    Mail {
        to_name: to.name.as_deref().unwrap_or_default().to_owned(),
        to_address: to.address.as_deref().unwrap_or_default().to_owned(),
        subject: message.subject().unwrap_or_default().to_owned(),
        text: message.body_text(0).expect("a text part").into_owned(),
        html: message.body_html(0).expect("an HTML part").into_owned(),
        reply_to: message
            .reply_to()
            .and_then(|r| r.first())
            .and_then(|a| a.address.as_deref().map(str::to_owned)),
        message_id: message.message_id().unwrap_or_default().to_owned(),
        has_date: message.date().is_some(),
    }
}

/// The token after `marker` in the email's text.
fn token_after(text: &str, marker: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {text}"))
        + marker.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

fn link_token(mail: &Mail) -> String {
    token_after(&mail.text, "/invitations/")
}

/// The emails the sink accepted for `address`, parsed, oldest first.
fn mails_to(sink: &SmtpSink, address: &str) -> Vec<Mail> {
    sink.messages()
        .iter()
        .map(|raw| parse(raw))
        .filter(|mail| mail.to_address.eq_ignore_ascii_case(address))
        .collect()
}

async fn wait_for_mails(sink: &SmtpSink, address: &str, count: usize) -> Vec<Mail> {
    eventually(&format!("{count} email(s) to {address}"), WAIT, || async {
        let mails = mails_to(sink, address);
        (mails.len() >= count).then_some(mails)
    })
    .await
}

/// Waits until the user with `email` exists, and answers them.
async fn user_by_email(client: &Client, email: &str) -> Value {
    eventually(&format!("the user {email}"), WAIT, || async {
        client
            .users("")
            .await
            .into_iter()
            .find(|user| user["email"] == email)
    })
    .await
}

async fn invitation_state(client: &Client, user_id: &str) -> Value {
    let (status, user) = client.get(&format!("/v1/users/{user_id}")).await;
    assert_eq!(status, 200, "{user}");
    user["invitation"].clone()
}

async fn wait_for_state(client: &Client, user_id: &str, state: &str) -> Value {
    eventually(&format!("invitation state {state}"), WAIT, || async {
        let invitation = invitation_state(client, user_id).await;
        (invitation["state"] == state).then_some(invitation)
    })
    .await
}

async fn accept(client: &Client, token: &str) -> (u16, Value) {
    client
        .post(&format!("/v1/invitations/{token}/accept"), &json!({}))
        .await
}

async fn send_owner(
    client: &Client,
    integration: &Integration,
    id: &str,
    person: &Value,
) -> (u16, Value) {
    client
        .send(integration, id, &event(id, "opportunity.updated", person))
        .await
}

/// Settings for SMTP retries after 100 ms instead of 10 s.
fn fast_retries() -> Vec<(String, String)> {
    vec![(
        "ROLLCALL_INVITATION_RETRY_BASE_MS".to_owned(),
        "100".to_owned(),
    )]
}

/// One rollcall process mailing through an SMTP server on loopback.
struct Mailing {
    env: TestEnv,
    sink: SmtpSink,
    process: Process,
    client: Client,
}

/// Starts rollcall on `backend` with `sink` as its SMTP server and extra `settings`; `None`
/// when the backend's servers are unreachable (see `TestEnv::new`).
async fn mailing(
    backend: Backend,
    sink: SmtpSink,
    settings: Vec<(String, String)>,
) -> Option<Mailing> {
    let env = TestEnv::new(backend).await?;
    let process = env
        .spawn(Spawn {
            smtp_url: Some(sink.url.clone()),
            env: settings,
            ..Spawn::default()
        })
        .await;
    let client = Client::new(&process);
    Some(Mailing {
        env,
        sink,
        process,
        client,
    })
}

async fn modes_resend_and_redemption(backend: Backend) {
    let Some(Mailing {
        env,
        sink,
        process,
        client,
    }) = mailing(
        backend,
        SmtpSink::start().await.expect("an SMTP sink on loopback"),
        Vec::new(),
    )
    .await
    else {
        return;
    };
    let tenant = client.create_tenant("Acme Corp").await;
    let automatic = client.create_integration(&tenant, json!({})).await;
    let manual = client
        .create_integration(&tenant, json!({"invite_mode": "manual"}))
        .await;
    let off = client
        .create_integration(&tenant, json!({"invite_mode": "off"}))
        .await;

    let ann = owner("A1", "Ann", "Lee", "ann@example.com");
    let bob = owner("B1", "Bob", "Ray", "bob@example.com");
    let cat = owner("C1", "Cat", "Day", "cat@example.com");
    assert_eq!(send_owner(&client, &manual, "evt_b", &bob).await.0, 202);
    assert_eq!(send_owner(&client, &off, "evt_c", &cat).await.0, 202);
    assert_eq!(send_owner(&client, &automatic, "evt_a", &ann).await.0, 202);
    for (integration, id) in [(&manual, "evt_b"), (&off, "evt_c"), (&automatic, "evt_a")] {
        assert_eq!(
            client.processed(&integration.id, id).await["outcome"],
            "created"
        );
    }
    let ann_user = user_by_email(&client, "ann@example.com").await;
    let bob_user = user_by_email(&client, "bob@example.com").await;
    let cat_user = user_by_email(&client, "cat@example.com").await;
    let ann_id = ann_user["id"].as_str().unwrap();
    let bob_id = bob_user["id"].as_str().unwrap();
    let cat_id = cat_user["id"].as_str().unwrap();

    // Automatic: sent once. Manual and off: created, not invited.
    let sent = wait_for_state(&client, ann_id, "sent").await;
    assert!(
        sent["sent_at"].is_string() && sent["expires_at"].is_string(),
        "{sent}"
    );
    assert_eq!(invitation_state(&client, bob_id).await["state"], "not_sent");
    assert_eq!(invitation_state(&client, cat_id).await["state"], "not_sent");
    let ann_mail = wait_for_mails(&sink, "ann@example.com", 1).await;

    // An admin sends the manual one.
    let (status, queued) = client
        .post(&format!("/v1/users/{bob_id}/invitations"), &json!({}))
        .await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["state"], "queued");
    let bob_first = wait_for_mails(&sink, "bob@example.com", 1).await;
    wait_for_state(&client, bob_id, "sent").await;

    // Redeeming: the host application gets the user back; a second click is refused.
    let token = link_token(&ann_mail[0]);
    let (status, accepted) = accept(&client, &token).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["id"], ann_id);
    assert_eq!(accepted["email"], "ann@example.com");
    assert_eq!(accepted["invitation"]["state"], "accepted");
    assert!(accepted["invitation"]["accepted_at"].is_string());
    let (status, again) = accept(&client, &token).await;
    assert_eq!(status, 410, "{again}");
    assert!(
        again["type"]
            .as_str()
            .unwrap()
            .ends_with("invitation-already-accepted"),
        "{again}"
    );
    // Accepted users are not invited again.
    let (status, refused) = client
        .post(&format!("/v1/users/{ann_id}/invitations"), &json!({}))
        .await;
    assert_eq!(status, 409, "{refused}");

    // A resend issues a new token and the old link stops working.
    let (status, _) = client
        .post(&format!("/v1/users/{bob_id}/invitations"), &json!({}))
        .await;
    assert_eq!(status, 202);
    let bob_mails = wait_for_mails(&sink, "bob@example.com", 2).await;
    let old_token = link_token(&bob_first[0]);
    let new_token = link_token(&bob_mails[1]);
    assert_ne!(old_token, new_token);
    assert_ne!(bob_mails[0].message_id, bob_mails[1].message_id);
    wait_for_state(&client, bob_id, "sent").await;
    let (status, superseded) = accept(&client, &old_token).await;
    assert_eq!(status, 410, "{superseded}");
    assert!(
        superseded["type"]
            .as_str()
            .unwrap()
            .ends_with("invitation-superseded"),
        "{superseded}"
    );
    let (status, accepted) = accept(&client, &new_token).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["id"], bob_id);

    // Unknown, malformed and missing tokens; unknown and malformed users.
    let (status, unknown) = accept(&client, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!(status, 404, "{unknown}");
    assert_eq!(
        unknown["detail"], "invitation not found",
        "a clear reason: {unknown}"
    );
    let (status, _) = accept(&client, "not%20a%20token").await;
    assert_eq!(status, 404);
    let (status, _) = client
        .post(
            &format!("/v1/users/{}/invitations", uuid::Uuid::now_v7()),
            &json!({}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, malformed) = client
        .post("/v1/users/not-a-uuid/invitations", &json!({}))
        .await;
    assert_eq!(status, 400, "{malformed}");

    // Off means automatic sending is off; an admin may still invite explicitly.
    let (status, _) = client
        .post(&format!("/v1/users/{cat_id}/invitations"), &json!({}))
        .await;
    assert_eq!(status, 202);
    wait_for_mails(&sink, "cat@example.com", 1).await;

    // Exactly the emails asked for, no more.
    assert_eq!(mails_to(&sink, "ann@example.com").len(), 1);
    assert_eq!(mails_to(&sink, "bob@example.com").len(), 2);
    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn modes_resend_and_redemption_on_sqlite() {
    modes_resend_and_redemption(Backend::SqliteEmbedded).await;
}

#[tokio::test]
async fn modes_resend_and_redemption_on_postgres_and_rabbitmq() {
    modes_resend_and_redemption(Backend::PostgresRabbit).await;
}

#[tokio::test]
async fn an_expired_link_is_refused() {
    let Some(Mailing {
        env,
        sink,
        process,
        client,
    }) = mailing(
        Backend::SqliteEmbedded,
        SmtpSink::start().await.expect("an SMTP sink on loopback"),
        vec![("ROLLCALL_INVITATION_TTL_SECONDS".to_owned(), "2".to_owned())],
    )
    .await
    else {
        return;
    };
    let tenant = client.create_tenant("Acme Corp").await;
    let integration = client.create_integration(&tenant, json!({})).await;
    send_owner(
        &client,
        &integration,
        "evt_1",
        &owner("A1", "Ann", "Lee", "ann@example.com"),
    )
    .await;
    let user = user_by_email(&client, "ann@example.com").await;
    let mail = wait_for_mails(&sink, "ann@example.com", 1).await;
    // Polls until the expiry has passed (the state says so), then redeems.
    wait_for_state(&client, user["id"].as_str().unwrap(), "expired").await;
    let (status, expired) = accept(&client, &link_token(&mail[0])).await;
    assert_eq!(status, 410, "{expired}");
    assert!(
        expired["type"]
            .as_str()
            .unwrap()
            .ends_with("invitation-expired"),
        "{expired}"
    );
    // A resend sends a new link (redeeming one is covered above, without a 2-second race).
    let user_id = user["id"].as_str().unwrap();
    let (status, _) = client
        .post(&format!("/v1/users/{user_id}/invitations"), &json!({}))
        .await;
    assert_eq!(status, 202);
    let mails = wait_for_mails(&sink, "ann@example.com", 2).await;
    assert_ne!(link_token(&mails[0]), link_token(&mails[1]));
    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn a_busy_mail_server_gets_the_email_exactly_once() {
    let Some(Mailing {
        env,
        sink,
        process,
        client,
    }) = mailing(
        Backend::SqliteEmbedded,
        SmtpSink::scripted(vec![DataReply::Busy, DataReply::Busy])
            .await
            .expect("an SMTP sink on loopback"),
        fast_retries(),
    )
    .await
    else {
        return;
    };
    let tenant = client.create_tenant("Acme Corp").await;
    let integration = client.create_integration(&tenant, json!({})).await;
    send_owner(
        &client,
        &integration,
        "evt_1",
        &owner("A1", "Ann", "Lee", "ann@example.com"),
    )
    .await;
    let user = user_by_email(&client, "ann@example.com").await;
    let sent = wait_for_state(&client, user["id"].as_str().unwrap(), "sent").await;
    assert_eq!(sent["attempts"], 3, "{sent}");
    assert_eq!(sink.attempts(), 3, "two 421s, then the accepted one");
    assert_eq!(sink.messages().len(), 1);
    drop(process);
    env.cleanup().await;
}

/// Over SMTP, the relay keeps `ROLLCALL_SMTP_CONNECTIONS` emails in flight at once: an SMTP
/// exchange waits on the server several times, so one at a time would be latency-bound. The
/// sink holds each answer until four messages wait together (or five seconds passed), so the
/// test sees whether four were ever in flight without timing anything.
#[tokio::test]
async fn invitations_go_out_over_several_smtp_connections_at_once() {
    const AT_ONCE: usize = 4;
    let sink = SmtpSink::gathering(AT_ONCE, Duration::from_secs(5))
        .await
        .expect("an SMTP sink on loopback");
    let Some(Mailing {
        env,
        sink,
        process,
        client,
    }) = mailing(
        Backend::PostgresRabbit,
        sink,
        vec![("ROLLCALL_SMTP_CONNECTIONS".to_owned(), AT_ONCE.to_string())],
    )
    .await
    else {
        return;
    };
    let tenant = client.create_tenant("Acme Corp").await;
    let integration = client.create_integration(&tenant, json!({})).await;
    let people = 2 * AT_ONCE;
    for n in 0..people {
        let person = owner(
            &format!("P{n}"),
            "Pat",
            &format!("No{n}"),
            &format!("pat{n}@example.com"),
        );
        let (status, _) = send_owner(&client, &integration, &format!("evt_{n}"), &person).await;
        assert_eq!(status, 202);
    }
    for n in 0..people {
        let mails = wait_for_mails(&sink, &format!("pat{n}@example.com"), 1).await;
        assert_eq!(mails.len(), 1, "one invitation each");
    }
    assert_eq!(sink.messages().len(), people, "no email twice");
    assert_eq!(
        sink.most_waiting_at_once(),
        AT_ONCE,
        "the relay had {AT_ONCE} emails in flight at once, and no more"
    );
    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn a_refused_recipient_fails_the_invitation_without_retrying() {
    let Some(Mailing {
        env,
        sink,
        process,
        client,
    }) = mailing(
        Backend::SqliteEmbedded,
        SmtpSink::scripted(vec![DataReply::Reject])
            .await
            .expect("an SMTP sink on loopback"),
        fast_retries(),
    )
    .await
    else {
        return;
    };
    let tenant = client.create_tenant("Acme Corp").await;
    let integration = client.create_integration(&tenant, json!({})).await;
    send_owner(
        &client,
        &integration,
        "evt_1",
        &owner("A1", "Ann", "Lee", "gone@example.com"),
    )
    .await;
    let gone = user_by_email(&client, "gone@example.com").await;
    let failed = wait_for_state(&client, gone["id"].as_str().unwrap(), "failed").await;
    let reason = failed["last_error"].as_str().unwrap_or_default();
    assert!(reason.contains("550"), "the server's answer: {failed}");
    assert!(reason.contains("mailbox unavailable"), "{failed}");
    assert_eq!(failed["attempts"], 1);

    // The relay keeps working, and never comes back to the refused one: the next invitation
    // is the only other conversation the server sees.
    send_owner(
        &client,
        &integration,
        "evt_2",
        &owner("B1", "Bob", "Ray", "bob@example.com"),
    )
    .await;
    let bob = user_by_email(&client, "bob@example.com").await;
    wait_for_state(&client, bob["id"].as_str().unwrap(), "sent").await;
    assert_eq!(sink.attempts(), 2, "no retry of a permanent refusal");
    assert_eq!(
        invitation_state(&client, gone["id"].as_str().unwrap()).await["attempts"],
        1
    );
    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn a_process_killed_mid_send_sends_the_email_once_after_restart() {
    let Some(env) = TestEnv::new(Backend::SqliteEmbedded).await else {
        return;
    };
    // The first conversation never gets its answer: the process is killed while waiting.
    let sink = SmtpSink::scripted(vec![DataReply::Hang])
        .await
        .expect("an SMTP sink on loopback");
    let options = || Spawn {
        smtp_url: Some(sink.url.clone()),
        env: vec![(
            "ROLLCALL_INVITATION_CLAIM_SECONDS".to_owned(),
            "1".to_owned(),
        )],
        ..Spawn::default()
    };
    let mut process = env.spawn(options()).await;
    let client = Client::new(&process);
    let tenant = client.create_tenant("Acme Corp").await;
    let integration = client.create_integration(&tenant, json!({})).await;
    send_owner(
        &client,
        &integration,
        "evt_1",
        &owner("A1", "Ann", "Lee", "ann@example.com"),
    )
    .await;
    let user = user_by_email(&client, "ann@example.com").await;
    let user_id = user["id"].as_str().unwrap().to_owned();
    eventually("the relay to be mid-send", WAIT, || async {
        (sink.attempts() == 1).then_some(())
    })
    .await;
    assert_eq!(invitation_state(&client, &user_id).await["state"], "queued");
    process.kill().await;
    assert!(
        sink.messages().is_empty(),
        "nothing was accepted before the kill"
    );

    let process = env.spawn(options()).await;
    let client = Client::new(&process);
    wait_for_state(&client, &user_id, "sent").await;
    // Another invitation after it, to see the relay has moved on without a second copy.
    send_owner(
        &client,
        &integration,
        "evt_2",
        &owner("B1", "Bob", "Ray", "bob@example.com"),
    )
    .await;
    let bob = user_by_email(&client, "bob@example.com").await;
    wait_for_state(&client, bob["id"].as_str().unwrap(), "sent").await;
    assert_eq!(mails_to(&sink, "ann@example.com").len(), 1);
    assert_eq!(sink.messages().len(), 2);
    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn non_ascii_names_arrive_intact_in_both_parts() {
    let Some(Mailing {
        env,
        sink,
        process,
        client,
    }) = mailing(
        Backend::SqliteEmbedded,
        SmtpSink::start().await.expect("an SMTP sink on loopback"),
        Vec::new(),
    )
    .await
    else {
        return;
    };
    let tenant = client.create_tenant("Café Müller & Söhne").await;
    let integration = client.create_integration(&tenant, json!({})).await;
    send_owner(
        &client,
        &integration,
        "evt_1",
        &owner("Z1", "Zoë", "Ångström-Øster", "zoe@example.com"),
    )
    .await;
    let mail = wait_for_mails(&sink, "zoe@example.com", 1).await.remove(0);
    assert_eq!(mail.to_name, "Zoë Ångström-Øster");
    assert_eq!(mail.subject, "Café Müller & Söhne invited you");
    assert!(mail.text.contains("Hi Zoë,"), "{}", mail.text);
    assert!(
        mail.text.contains("Café Müller & Söhne has created"),
        "{}",
        mail.text
    );
    assert!(mail.html.contains("Hi Zoë,"), "{}", mail.html);
    assert!(
        mail.html.contains("Café Müller &amp; Söhne has created"),
        "{}",
        mail.html
    );
    assert!(mail.has_date, "a Date header");
    assert!(
        mail.message_id.starts_with("invitation-"),
        "{}",
        mail.message_id
    );
    // The raw headers are 7-bit: non-ASCII names are encoded words.
    let raw = sink.messages().remove(0);
    let headers = raw.split("\r\n\r\n").next().unwrap_or_default();
    assert!(headers.is_ascii(), "{headers}");
    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn tenant_templates_links_and_reply_to() {
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(
        templates.path().join("invitation.subject.txt"),
        "Join {{ tenant_name }} on rollcall",
    )
    .unwrap();
    let settings = vec![
        (
            "ROLLCALL_TEMPLATES_DIR".to_owned(),
            templates.path().display().to_string(),
        ),
        (
            "ROLLCALL_MAIL_REPLY_TO".to_owned(),
            "help@rollcall.example".to_owned(),
        ),
    ];
    let Some(Mailing {
        env,
        sink,
        process,
        client,
    }) = mailing(
        Backend::SqliteEmbedded,
        SmtpSink::start().await.expect("an SMTP sink on loopback"),
        settings,
    )
    .await
    else {
        return;
    };
    let plain = client.create_tenant("Plain Co").await;
    let custom = client.create_tenant("Custom Co").await;

    // Bad settings are refused, naming the field.
    let bad = [
        (
            json!({"html": "<p>{{ frist_name }}</p>"}),
            "invitation.html",
        ),
        (json!({"subject": "{{ tenant_name"}), "invitation.subject"),
        (
            json!({"link_template": "https://app.example.com/join"}),
            "invitation.link_template",
        ),
        (json!({"reply_to": "not an address"}), "invitation.reply_to"),
    ];
    for (settings, field) in bad {
        let (status, problem) = client
            .patch(
                &format!("/v1/tenants/{custom}"),
                &json!({"invitation": settings}),
            )
            .await;
        assert_eq!(status, 422, "{settings}: {problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }
    let (status, problem) = client
        .patch(
            &format!("/v1/tenants/{custom}"),
            &json!({"invitation": {"colour": "red"}}),
        )
        .await;
    assert_eq!(status, 400, "unknown fields are refused: {problem}");
    let (status, _) = client
        .patch(
            &format!("/v1/tenants/{}", uuid::Uuid::now_v7()),
            &json!({"name": "x"}),
        )
        .await;
    assert_eq!(status, 404);

    let settings = json!({
        "link_template": "https://app.example.com/join?invite={token}",
        "reply_to": "people@custom.example",
        "subject": "Welcome aboard, {{ first_name }}",
        "text": "Hello {{ full_name }}, start here: {{ link }} (until {{ expires_at }})",
        "html": "<p>Hello {{ full_name }}</p><a href=\"{{ link }}\">Start</a>"
    });
    let (status, tenant) = client
        .patch(
            &format!("/v1/tenants/{custom}"),
            &json!({"invitation": settings}),
        )
        .await;
    assert_eq!(status, 200, "{tenant}");
    assert_eq!(tenant["invitation"], settings);
    let (status, shown) = client.get(&format!("/v1/tenants/{custom}")).await;
    assert_eq!(status, 200);
    assert_eq!(shown["invitation"], settings);

    let custom_hooks = client.create_integration(&custom, json!({})).await;
    let plain_hooks = client.create_integration(&plain, json!({})).await;
    send_owner(
        &client,
        &custom_hooks,
        "evt_1",
        &owner("A1", "Ann", "Lee", "ann@custom.example"),
    )
    .await;
    send_owner(
        &client,
        &plain_hooks,
        "evt_2",
        &owner("B1", "Bob", "Ray", "bob@plain.example"),
    )
    .await;

    let mail = wait_for_mails(&sink, "ann@custom.example", 1)
        .await
        .remove(0);
    assert_eq!(mail.subject, "Welcome aboard, Ann");
    assert!(
        mail.text
            .starts_with("Hello Ann Lee, start here: https://app.example.com/join?invite="),
        "{}",
        mail.text
    );
    assert!(
        mail.html
            .contains("<a href=\"https://app.example.com/join?invite="),
        "{}",
        mail.html
    );
    assert_eq!(mail.reply_to.as_deref(), Some("people@custom.example"));
    let token = token_after(&mail.text, "invite=");
    let (status, accepted) = accept(&client, &token).await;
    assert_eq!(status, 200, "{accepted}");

    // The other tenant gets the directory's subject, the shipped bodies, the global reply-to.
    let mail = wait_for_mails(&sink, "bob@plain.example", 1)
        .await
        .remove(0);
    assert_eq!(mail.subject, "Join Plain Co on rollcall");
    assert!(mail.text.starts_with("Hi Bob,"), "{}", mail.text);
    assert_eq!(mail.reply_to.as_deref(), Some("help@rollcall.example"));

    // `{}` restores the defaults.
    let (status, tenant) = client
        .patch(&format!("/v1/tenants/{custom}"), &json!({"invitation": {}}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(tenant["invitation"], json!({}));
    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn a_user_created_inactive_is_invited_when_activated() {
    let Some(Mailing {
        env,
        sink,
        process,
        client,
    }) = mailing(
        Backend::SqliteEmbedded,
        SmtpSink::start().await.expect("an SMTP sink on loopback"),
        Vec::new(),
    )
    .await
    else {
        return;
    };
    let tenant = client.create_tenant("Acme Corp").await;
    let integration = client
        .create_integration(&tenant, json!({"status_filter": "all"}))
        .await;
    let mut person = owner("A1", "Ann", "Lee", "ann@example.com");
    person["status"] = json!("inactive");
    send_owner(&client, &integration, "evt_1", &person).await;
    assert_eq!(
        client.processed(&integration.id, "evt_1").await["outcome"],
        "created"
    );
    let user = user_by_email(&client, "ann@example.com").await;
    assert_eq!(user["status"], "inactive");
    assert_eq!(user["invitation"]["state"], "not_sent");

    person["status"] = json!("active");
    let body = json!({
        "id": "evt_2",
        "type": "opportunity.updated",
        "occurred_at": "2026-11-21T11:00:00Z",
        "owner": person,
    })
    .to_string();
    assert_eq!(client.send(&integration, "evt_2", &body).await.0, 202);
    assert_eq!(
        client.processed(&integration.id, "evt_2").await["outcome"],
        "reactivated"
    );
    wait_for_state(&client, user["id"].as_str().unwrap(), "sent").await;
    assert_eq!(mails_to(&sink, "ann@example.com").len(), 1);
    drop(process);
    env.cleanup().await;
}
