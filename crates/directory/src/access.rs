//! What each source's directory needs from an integration's [`DirectoryAccess`], checked when
//! an operator saves it (without asking the CRM).

use domain::{DirectoryAccess, Source};

use crate::call::{crm_name, parse_base_url};

/// Why directory access cannot work: the field at fault (`directory.base_url`,
/// `directory.credentials.access_token`, …) and a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct AccessProblem {
    pub field: &'static str,
    pub message: String,
}

/// Whether a source's directory needs the CRM's address from the integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseUrl {
    /// Per account (Salesforce instance URL, ConnectWise site): must be given.
    Required,
    /// The CRM has one public address (this one); an integration may give another (a data
    /// centre, a company domain).
    Default(&'static str),
}

/// What `source`'s directory needs: the credential names and the base URL rule (`None`: the
/// source has no directory lookup).
#[must_use]
pub fn requirements(source: Source) -> Option<(&'static [&'static str], BaseUrl)> {
    match source {
        Source::Hubspot => Some((
            &["access_token"],
            BaseUrl::Default("https://api.hubapi.com"),
        )),
        Source::SalesforceOutbound => Some((&["access_token"], BaseUrl::Required)),
        Source::Pipedrive => Some((
            &["api_token"],
            BaseUrl::Default("https://api.pipedrive.com"),
        )),
        Source::Connectwise => Some((
            &["company_id", "public_key", "private_key", "client_id"],
            BaseUrl::Required,
        )),
        Source::Jobber => Some((
            &["access_token"],
            BaseUrl::Default("https://api.getjobber.com/api/graphql"),
        )),
        Source::Zoho => Some((
            &["access_token"],
            BaseUrl::Default("https://www.zohoapis.com/crm/v8"),
        )),
        Source::HousecallPro | Source::Freshteam | Source::Rollcall | Source::Json => None,
    }
}

/// The credential names `source`'s directory needs (empty: no directory lookup).
#[must_use]
pub fn credential_names(source: Source) -> &'static [&'static str] {
    requirements(source).map_or(&[], |(names, _)| names)
}

fn credential_field(name: &str) -> &'static str {
    match name {
        "access_token" => "directory.credentials.access_token",
        "api_token" => "directory.credentials.api_token",
        "company_id" => "directory.credentials.company_id",
        "public_key" => "directory.credentials.public_key",
        "private_key" => "directory.credentials.private_key",
        "client_id" => "directory.credentials.client_id",
        _ => "directory.credentials",
    }
}

/// Checks that `access` gives `source`'s directory what it needs: a usable base URL where one
/// is required or given, every credential (not blank), and no credential it does not use.
///
/// # Errors
/// The first problem found.
pub fn check_access(source: Source, access: &DirectoryAccess) -> Result<(), AccessProblem> {
    let crm = crm_name(source);
    let Some((names, base_url)) = requirements(source) else {
        return Err(AccessProblem {
            field: "directory",
            message: format!("{source} has no directory lookup; its payloads carry the owner"),
        });
    };
    let given = access
        .base_url
        .as_deref()
        .map(str::trim)
        .filter(|url| !url.is_empty());
    match (given, base_url) {
        (None, BaseUrl::Required) => {
            return Err(AccessProblem {
                field: "directory.base_url",
                message: format!("{crm}'s API address is per account and must be given"),
            });
        }
        (Some(url), _) => {
            if let Err(why) = parse_base_url(url) {
                return Err(AccessProblem {
                    field: "directory.base_url",
                    message: format!("directory.base_url {why}"),
                });
            }
        }
        (None, BaseUrl::Default(_)) => {}
    }
    for name in names {
        if access.credential(name).is_none() {
            return Err(AccessProblem {
                field: credential_field(name),
                message: format!("{crm}'s directory needs the `{name}` credential"),
            });
        }
    }
    if let Some(unknown) = access
        .credentials
        .keys()
        .find(|name| !names.contains(&name.as_str()))
    {
        let shown: String = unknown.chars().take(64).collect();
        return Err(AccessProblem {
            field: "directory.credentials",
            message: format!(
                "{crm}'s directory does not use a `{shown}` credential (it uses {})",
                names
                    .iter()
                    .map(|name| format!("`{name}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn access(base_url: Option<&str>, credentials: &[(&str, &str)]) -> DirectoryAccess {
        DirectoryAccess {
            base_url: base_url.map(str::to_owned),
            credentials: credentials
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn complete_access_passes() {
        check_access(Source::Hubspot, &access(None, &[("access_token", "pat")])).unwrap();
        check_access(
            Source::Connectwise,
            &access(
                Some("https://api-na.myconnectwise.net/v4_6_release/apis/3.0"),
                &[
                    ("company_id", "acme"),
                    ("public_key", "pub"),
                    ("private_key", "priv"),
                    ("client_id", "cid"),
                ],
            ),
        )
        .unwrap();
        check_access(
            Source::SalesforceOutbound,
            &access(
                Some("https://acme.my.salesforce.com"),
                &[("access_token", "t")],
            ),
        )
        .unwrap();
    }

    #[test]
    fn problems_name_the_field() {
        let problem = check_access(
            Source::SalesforceOutbound,
            &access(None, &[("access_token", "t")]),
        )
        .unwrap_err();
        assert_eq!(problem.field, "directory.base_url");
        let problem = check_access(
            Source::Pipedrive,
            &access(Some("http://acme.pipedrive.com"), &[("api_token", "t")]),
        )
        .unwrap_err();
        assert_eq!(problem.field, "directory.base_url");
        assert!(problem.message.contains("https"), "{problem}");
        let problem = check_access(
            Source::Connectwise,
            &access(
                Some("https://api-na.myconnectwise.net/v4_6_release/apis/3.0"),
                &[
                    ("company_id", "acme"),
                    ("public_key", "pub"),
                    ("private_key", " "),
                ],
            ),
        )
        .unwrap_err();
        assert_eq!(problem.field, "directory.credentials.private_key");
        let problem = check_access(
            Source::Pipedrive,
            &access(None, &[("api_token", "t"), ("api_key", "x")]),
        )
        .unwrap_err();
        assert_eq!(problem.field, "directory.credentials");
        assert!(problem.message.contains("api_key"), "{problem}");
        let problem = check_access(Source::Json, &access(None, &[])).unwrap_err();
        assert_eq!(problem.field, "directory");
    }

    #[test]
    fn credential_names_per_source() {
        assert_eq!(credential_names(Source::Zoho), ["access_token"]);
        assert_eq!(credential_names(Source::Pipedrive), ["api_token"]);
        assert_eq!(credential_names(Source::Connectwise).len(), 4);
        assert!(credential_names(Source::Freshteam).is_empty());
    }
}
