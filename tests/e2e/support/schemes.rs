//! How each CRM signs a request, written independently of rollcall's verifier, and a local
//! ConnectWise key server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// A request ready to post: extra query string and headers.
#[derive(Debug, Clone, Default)]
pub struct Signed {
    pub query: String,
    pub headers: Vec<(&'static str, String)>,
}

/// Signs `body` the way `scheme` does, with `secret`, delivery id `id`, at Unix time `now`
/// (seconds). `url` is the full webhook URL the sender calls (HubSpot signs it).
pub fn sign(scheme: &str, secret: &str, id: &str, now: i64, url: &str, body: &str) -> Signed {
    let body_bytes = body.as_bytes();
    match scheme {
        "standard-webhooks" => Signed {
            query: String::new(),
            headers: super::sign(secret, id, now, body),
        },
        "stripe" => {
            let signature = hex::encode(mac(
                secret.as_bytes(),
                &[now.to_string().as_bytes(), b".", body_bytes],
            ));
            Signed {
                query: String::new(),
                headers: vec![("stripe-signature", format!("t={now},v1={signature}"))],
            }
        }
        "github" => Signed {
            query: String::new(),
            headers: vec![
                (
                    "x-hub-signature-256",
                    format!(
                        "sha256={}",
                        hex::encode(mac(secret.as_bytes(), &[body_bytes]))
                    ),
                ),
                ("x-github-delivery", id.to_owned()),
            ],
        },
        "hubspot" => {
            let millis = (now * 1000).to_string();
            let signature = STANDARD.encode(mac(
                secret.as_bytes(),
                &[b"POST", url.as_bytes(), body_bytes, millis.as_bytes()],
            ));
            Signed {
                query: String::new(),
                headers: vec![
                    ("x-hubspot-signature-v3", signature),
                    ("x-hubspot-request-timestamp", millis),
                ],
            }
        }
        "jobber" => Signed {
            query: String::new(),
            headers: vec![(
                "x-jobber-hmac-sha256",
                STANDARD.encode(mac(secret.as_bytes(), &[body_bytes])),
            )],
        },
        "connectwise" => {
            let key = Sha256::digest(secret.as_bytes());
            Signed {
                query: String::new(),
                headers: vec![(
                    "x-content-signature",
                    STANDARD.encode(mac(&key, &[body_bytes])),
                )],
            }
        }
        "hmac" => {
            let ts = now.to_string();
            let signature = hex::encode(mac(secret.as_bytes(), &[ts.as_bytes(), b".", body_bytes]));
            Signed {
                query: String::new(),
                headers: vec![
                    ("x-signature", format!("sha256={signature}")),
                    ("x-timestamp", ts),
                ],
            }
        }
        "basic" => Signed {
            query: String::new(),
            headers: vec![(
                "authorization",
                format!("Basic {}", STANDARD.encode(secret)),
            )],
        },
        "token" => Signed {
            query: String::new(),
            headers: vec![("x-webhook-token", secret.to_owned())],
        },
        "salesforce-outbound" => Signed {
            query: format!("?token={secret}"),
            headers: Vec::new(),
        },
        other => panic!("no signer for {other}"),
    }
}

/// The `verification` object for an integration of `scheme`.
pub fn verification(scheme: &str) -> Value {
    match scheme {
        "hmac" => json!({
            "scheme": "hmac", "header": "X-Signature", "prefix": "sha256=", "encoding": "hex",
            "timestamp_header": "X-Timestamp", "signed_content": "{timestamp}.{body}"
        }),
        "token" => json!({"scheme": "token", "header": "X-Webhook-Token"}),
        "salesforce-outbound" => {
            json!({"scheme": "salesforce-outbound", "organization_id": SALESFORCE_ORG})
        }
        "connectwise" => json!({"scheme": "connectwise"}),
        other => json!({"scheme": other}),
    }
}

/// Whether `scheme` refuses stale timestamps.
pub fn has_timestamp(scheme: &str) -> bool {
    matches!(scheme, "standard-webhooks" | "stripe" | "hubspot" | "hmac")
}

/// Whether the CRM, not rollcall, issues the scheme's secret.
pub fn crm_issues_secret(scheme: &str) -> bool {
    matches!(scheme, "stripe" | "hubspot" | "jobber")
}

pub const SALESFORCE_ORG: &str = "00D5w000004qGTO";

/// An outbound message with one opportunity notification.
pub fn salesforce_message(org: &str, notification_id: &str, owner_id: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>{org}</OrganizationId><ActionId>04k5w000000TSwMAAW</ActionId><Notification><Id>{notification_id}</Id><sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"><sf:Id>0065w000023STAmAAO</sf:Id><sf:LastModifiedDate>2026-11-21T10:00:00.000Z</sf:LastModifiedDate><sf:OwnerId>{owner_id}</sf:OwnerId></sObject></Notification></notifications></soapenv:Body></soapenv:Envelope>"#
    )
}

/// A loopback HTTP server that answers every request with `{"signing_key": key}` and counts
/// the connections it accepted.
#[derive(Debug, Clone)]
pub struct KeyServer {
    pub addr: String,
    connections: Arc<AtomicUsize>,
}

impl KeyServer {
    pub async fn start(key: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let body = json!({"signing_key": key}).to_string();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let body = body.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Self { addr, connections }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn key_url(&self) -> String {
        format!(
            "http://{}/v4_6_release/system/callbackkey/index.rails?companyName=myCompany&id=1",
            self.addr
        )
    }
}
