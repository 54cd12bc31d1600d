//! Salesforce outbound messages carry no signature. What identifies a genuine one: the
//! `OrganizationId` in the SOAP body is the configured org (Salesforce ids come in a
//! case-sensitive 15-character form and an 18-character form with a case-insensitive checksum
//! suffix; both are accepted and compared by their canonical 18-character form), and the
//! webhook URL carries the integration's token (`?token=…`), which only Salesforce's outbound
//! message configuration knows.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use crate::token::query_param;
use crate::{Rejection, Request, Secret, Verified, ct_eq};

const CHECKSUM_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// The canonical 18-character form of a 15- or 18-character Salesforce id; `None` for text
/// that is not one (wrong length, characters, or an 18-character id whose suffix does not
/// match its first 15 characters).
#[must_use]
pub fn normalize_org_id(id: &str) -> Option<String> {
    let id = id.trim();
    if !(id.len() == 15 || id.len() == 18) || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let base = &id[..15];
    let mut suffix = String::with_capacity(3);
    for chunk in base.as_bytes().chunks(5) {
        let bits = chunk
            .iter()
            .enumerate()
            .filter(|(_, byte)| byte.is_ascii_uppercase())
            .fold(0usize, |bits, (i, _)| bits | (1 << i));
        suffix.push(char::from(CHECKSUM_ALPHABET[bits]));
    }
    if id.len() == 18 && !id[15..].eq_ignore_ascii_case(&suffix) {
        return None;
    }
    Some(format!("{base}{suffix}"))
}

/// The text of the first `OrganizationId` element, whatever its namespace prefix. A document
/// type declaration is refused outright: outbound messages never have one, and refusing it
/// closes the door on entity-expansion attacks.
pub(crate) fn organization_id(body: &[u8]) -> Result<String, Rejection> {
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut inside = false;
    let mut depth = 0usize;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|_| Rejection::MalformedBody("body is not well-formed XML"))?;
        match event {
            Event::DocType(_) => {
                return Err(Rejection::MalformedBody(
                    "XML document type declarations are not accepted",
                ));
            }
            Event::Start(start) => {
                depth += 1;
                if depth > 64 {
                    return Err(Rejection::MalformedBody("XML nested too deeply"));
                }
                inside = start.local_name().as_ref() == "OrganizationId";
            }
            Event::Text(text) if inside => {
                let value: &str = text.as_ref();
                return Ok(value.trim().to_owned());
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                inside = false;
            }
            Event::Eof => return Err(Rejection::MalformedBody("no OrganizationId in the message")),
            _ => {}
        }
        buf.clear();
    }
}

pub(crate) fn verify(
    configured_org: &str,
    secrets: &[Secret],
    request: &Request<'_>,
) -> Result<Verified, Rejection> {
    let presented = query_param(request.url, "token").ok_or(Rejection::BadCredentials)?;
    let token_ok = secrets.iter().fold(false, |found, secret| {
        ct_eq(secret.expose().as_bytes(), presented.as_bytes()) | found
    });
    if !token_ok {
        return Err(Rejection::BadCredentials);
    }
    let expected = normalize_org_id(configured_org).ok_or(Rejection::WrongOrganization)?;
    let sent = organization_id(request.body)?;
    if normalize_org_id(&sent).is_some_and(|sent| sent == expected) {
        Ok(Verified::default())
    } else {
        Err(Rejection::WrongOrganization)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_id_forms_normalize_to_the_same_18_characters() {
        // A documented pair: 00D000000000062 ↔ 00D000000000062EAA.
        assert_eq!(
            normalize_org_id("00D000000000062").as_deref(),
            Some("00D000000000062EAA")
        );
        assert_eq!(
            normalize_org_id("00D000000000062EAA").as_deref(),
            Some("00D000000000062EAA")
        );
        assert_eq!(
            normalize_org_id("00D000000000062eaa").as_deref(),
            Some("00D000000000062EAA")
        );
        // A wrong suffix, or a case change in the case-sensitive part, is another id.
        assert_eq!(normalize_org_id("00D000000000062EAB"), None);
        assert_ne!(
            normalize_org_id("00d000000000062"),
            normalize_org_id("00D000000000062")
        );
        assert_eq!(normalize_org_id("00D0000"), None);
        assert_eq!(normalize_org_id("00D00000000006!"), None);
    }

    #[test]
    fn reads_the_organization_id_and_refuses_doctypes() {
        let soap = br#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>00D000000000062EAA</OrganizationId></notifications></soapenv:Body></soapenv:Envelope>"#;
        assert_eq!(organization_id(soap).unwrap(), "00D000000000062EAA");
        let bomb = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><a><OrganizationId>&lol2;</OrganizationId></a>"#;
        assert_eq!(
            organization_id(bomb),
            Err(Rejection::MalformedBody(
                "XML document type declarations are not accepted"
            ))
        );
        assert!(organization_id(b"<a><b>").is_err());
    }
}
