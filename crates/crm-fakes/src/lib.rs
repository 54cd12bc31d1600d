//! **Test-only** stand-ins for the CRM directory APIs rollcall asks about owners (HubSpot,
//! Salesforce, Pipedrive, ConnectWise PSA, Jobber, Zoho CRM), which a test machine cannot reach.
//!
//! Each fake is a real HTTP server on `127.0.0.1:0` that answers the *documented* shapes of its
//! CRM: the same paths under the same kind of base URL, the same authentication scheme (a wrong
//! or missing credential gets that API's documented `401` body), the same success JSON, the same
//! not-found answer, and `429` with `Retry-After`. Tests can force an answer per id
//! ([`CrmFake::respond`]): not found, unauthorized, rate limited, the CRM's own in-body quota
//! answer, malformed JSON, an undocumented shape, a server error, or no answer at all. Every
//! request is recorded (without its headers, so never with a credential) for assertions such as
//! "the cache made no second call" or "rate limiting stopped the calls".
//!
//! The shapes mirror, per CRM:
//! - HubSpot: <https://developers.hubspot.com/docs/api-reference/latest/crm/owners/get-owner>
//!   (`GET /crm/v3/owners/{ownerId}`, `archived` query), CRM objects
//!   (`GET /crm/v3/objects/{objectType}/{objectId}?properties=`), error bodies
//!   <https://developers.hubspot.com/docs/faq/api-error-responses> and the `RATE_LIMIT` body in
//!   <https://developers.hubspot.com/docs/api/usage-details>.
//! - Salesforce REST API: sObject rows (`GET /services/data/vXX.X/sobjects/{sObject}/{id}?fields=`)
//!   and error arrays `[{"message", "errorCode"}]`:
//!   <https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm>.
//! - Pipedrive: `GET /api/v1/users/{id}` with the `x-api-token` header
//!   <https://pipedrive.readme.io/docs/core-api-concepts-authentication>, response envelopes
//!   <https://pipedrive.readme.io/docs/core-api-concepts-responses>, rate limits
//!   <https://pipedrive.readme.io/docs/core-api-concepts-rate-limiting>.
//! - ConnectWise PSA: `GET {site}/v4_6_release/apis/3.0/system/members/{id}`, Basic
//!   `companyId+publicKey:privateKey` plus the `clientId` header, errors `{code, message}`
//!   (<https://developer.connectwise.com/Products/Manage/REST>).
//! - Jobber: `POST /api/graphql` with `X-JOBBER-GRAPHQL-VERSION`, `visit`/`job` objects, the
//!   `THROTTLED` error and `extensions.cost`:
//!   <https://developer.getjobber.com/docs/using_jobbers_api/api_queries_and_mutations>,
//!   <https://developer.getjobber.com/docs/using_jobbers_api/api_rate_limits>.
//! - Zoho CRM v8: `GET /crm/v8/{module}/{id}?fields=Owner`, `GET /crm/v8/users/{id}`,
//!   `Authorization: Zoho-oauthtoken …`, errors `{code, details, message, status}`, `204` for no
//!   data: <https://www.zoho.com/crm/developer/docs/api/v8/status-codes.html>.
//!
//! Where a vendor does not document an exact body (ConnectWise's `401`, Jobber's `401`), the fake
//! answers with that vendor's general error envelope: rollcall must not depend on those bodies.

mod connectwise;
mod hubspot;
mod jobber;
mod pipedrive;
mod salesforce;
mod zoho;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::DirectoryAccess;
use serde_json::Value;
use tokio::task::JoinHandle;

/// Which CRM a fake plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FakeCrm {
    Hubspot,
    Salesforce,
    Pipedrive,
    Connectwise,
    Jobber,
    Zoho,
}

impl FakeCrm {
    /// The rollcall source whose directory this fake plays.
    #[must_use]
    pub fn source(self) -> domain::Source {
        match self {
            FakeCrm::Hubspot => domain::Source::Hubspot,
            FakeCrm::Salesforce => domain::Source::SalesforceOutbound,
            FakeCrm::Pipedrive => domain::Source::Pipedrive,
            FakeCrm::Connectwise => domain::Source::Connectwise,
            FakeCrm::Jobber => domain::Source::Jobber,
            FakeCrm::Zoho => domain::Source::Zoho,
        }
    }

    pub const ALL: &'static [FakeCrm] = &[
        FakeCrm::Hubspot,
        FakeCrm::Salesforce,
        FakeCrm::Pipedrive,
        FakeCrm::Connectwise,
        FakeCrm::Jobber,
        FakeCrm::Zoho,
    ];
}

/// A person in the fake CRM's directory. Each fake renders the fields its CRM has (see the
/// field docs); the rest are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    /// `None` renders as the CRM's "no email" (`null`, or `""` where the field is required).
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// HubSpot: not archived; Salesforce `IsActive`; Pipedrive `active_flag`; ConnectWise
    /// `!inactiveFlag`; Jobber `status`; Zoho `status`.
    pub active: bool,
    /// Pipedrive `is_deleted`; Zoho `status: "deleted"`.
    pub deleted: bool,
    /// Salesforce `Title`; ConnectWise `title`; Zoho `role.name`.
    pub title: Option<String>,
    /// HubSpot primary team; Salesforce `Department`; ConnectWise `defaultDepartment.name`.
    pub department: Option<String>,
    /// Salesforce `City`; ConnectWise `defaultLocation.name`; Zoho `city`.
    pub location: Option<String>,
    /// Salesforce `EmployeeNumber`; ConnectWise `identifier`.
    pub employee_id: Option<String>,
    /// HubSpot `type`; Salesforce `UserType`; ConnectWise `licenseClass`; Zoho `profile.name`.
    pub member_type: Option<String>,
    /// Salesforce `FullPhotoUrl`; Pipedrive `icon_url`.
    pub avatar_url: Option<String>,
}

impl FakeUser {
    /// An active user with an email and a name, nothing else.
    #[must_use]
    pub fn new(email: &str, first_name: &str, last_name: &str) -> Self {
        Self {
            email: Some(email.to_owned()),
            first_name: Some(first_name.to_owned()),
            last_name: Some(last_name.to_owned()),
            ..Self::default()
        }
    }

    fn full_name(&self) -> String {
        [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Default for FakeUser {
    fn default() -> Self {
        Self {
            email: None,
            first_name: None,
            last_name: None,
            active: true,
            deleted: false,
            title: None,
            department: None,
            location: None,
            employee_id: None,
            member_type: None,
            avatar_url: None,
        }
    }
}

/// An answer forced for one id (an owner id or a record id, whichever the request names) or,
/// with [`CrmFake::respond_all`], for every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canned {
    /// The CRM's documented not-found answer (`404` body; Zoho `204`; Jobber `data.x: null`).
    NotFound,
    /// The CRM's documented `401` answer, as for a wrong credential.
    Unauthorized,
    /// `429 Too Many Requests` with `Retry-After: {retry_after_secs}` and the CRM's body.
    RateLimited { retry_after_secs: u64 },
    /// `429` with this raw `Retry-After` value (an HTTP-date, garbage) or none at all.
    RateLimitedWith { retry_after: Option<String> },
    /// The CRM's own documented quota answer without `Retry-After`: HubSpot `429` with
    /// `policyName: DAILY`, Salesforce `403 REQUEST_LIMIT_EXCEEDED`, Jobber `200` with a
    /// `THROTTLED` GraphQL error and `extensions.cost`, Zoho `429 TOO_MANY_REQUESTS`, Pipedrive
    /// and ConnectWise `429` without `Retry-After`.
    Throttled,
    /// `200` with a body that is not JSON.
    Malformed,
    /// `200` with JSON that is not the documented shape.
    UnexpectedShape,
    /// `503 Service Unavailable`.
    ServerError,
    /// Never answers (the request hangs until the client gives up).
    Hang,
}

/// One request the fake received. Headers are not kept: they carry the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// As received (still percent-encoded).
    pub path: String,
    pub query: Option<String>,
    /// The body as text (Jobber's GraphQL document and variables); empty for `GET`.
    pub body: String,
}

/// A running fake CRM. Stops when dropped.
#[derive(Debug)]
pub struct CrmFake {
    kind: FakeCrm,
    origin: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl CrmFake {
    /// Starts the fake on `127.0.0.1` with a free port. Needs a Tokio runtime.
    ///
    /// # Panics
    /// When no local port can be bound (the test cannot go on without its fake).
    pub async fn start(kind: FakeCrm) -> CrmFake {
        match Self::try_start(kind).await {
            Ok(fake) => fake,
            Err(err) => panic!("could not start the {kind:?} fake on 127.0.0.1: {err}"),
        }
    }

    /// Starts the fake on `127.0.0.1` with a free port.
    ///
    /// # Errors
    /// When no local port can be bound.
    pub async fn try_start(kind: FakeCrm) -> std::io::Result<CrmFake> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            kind,
            state: Mutex::new(FakeState::default()),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(CrmFake {
            kind,
            origin: format!("http://{address}"),
            shared,
            task,
        })
    }

    #[must_use]
    pub fn kind(&self) -> FakeCrm {
        self.kind
    }

    /// The base URL to configure, shaped like the real one: the origin for HubSpot, Salesforce
    /// (instance URL) and Pipedrive (company domain); `…/v4_6_release/apis/3.0` for
    /// ConnectWise; `…/api/graphql` for Jobber; `…/crm/v8` for Zoho.
    #[must_use]
    pub fn base_url(&self) -> String {
        match self.kind {
            FakeCrm::Hubspot | FakeCrm::Salesforce | FakeCrm::Pipedrive => self.origin.clone(),
            FakeCrm::Connectwise => format!("{}{}", self.origin, connectwise::BASE_PATH),
            FakeCrm::Jobber => format!("{}{}", self.origin, jobber::PATH),
            FakeCrm::Zoho => format!("{}{}", self.origin, zoho::BASE_PATH),
        }
    }

    /// `http://127.0.0.1:{port}`.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The credentials the fake accepts, named as rollcall's directory expects them.
    #[must_use]
    pub fn credentials(&self) -> BTreeMap<String, String> {
        credentials(self.kind)
    }

    /// Ready-made directory access: [`CrmFake::base_url`] and [`CrmFake::credentials`].
    #[must_use]
    pub fn access(&self) -> DirectoryAccess {
        DirectoryAccess {
            base_url: Some(self.base_url()),
            credentials: self.credentials(),
        }
    }

    /// Adds (or replaces) a user with the CRM's id `id`. Numeric CRMs (HubSpot, Pipedrive,
    /// ConnectWise, Zoho) want digits.
    pub fn add_user(&self, id: impl Into<String>, user: FakeUser) {
        self.shared.lock().users.insert(id.into(), user);
    }

    /// Adds a record and who owns or works it: HubSpot `object` (`deals`, `contacts`…) owned by
    /// the first id (`hubspot_owner_id`; none: empty); Salesforce sObject (`Opportunity`…)
    /// `OwnerId`; Zoho module (`Deals`…) `Owner`; Jobber `visit` assigned to all of them, or
    /// `job` with one visit assigned to all of them (see [`CrmFake::add_job_visits`]).
    pub fn add_record(
        &self,
        object: impl Into<String>,
        id: impl Into<String>,
        owner_ids: Vec<String>,
    ) {
        let (object, id) = (object.into(), id.into());
        let mut state = self.shared.lock();
        if self.kind == FakeCrm::Jobber && object == "job" {
            state
                .jobs
                .insert(id.clone(), vec![(format!("{id}-visit-1"), owner_ids)]);
        } else {
            state.records.insert((object, id), owner_ids);
        }
    }

    /// Jobber: a job with these visits, each `(visit id, assigned user ids)`.
    pub fn add_job_visits(&self, job_id: impl Into<String>, visits: Vec<(String, Vec<String>)>) {
        self.shared.lock().jobs.insert(job_id.into(), visits);
    }

    /// Forces the answer to any request naming `id` (until [`CrmFake::clear_responses`]).
    pub fn respond(&self, id: impl Into<String>, canned: Canned) {
        self.shared.lock().canned.insert(id.into(), canned);
    }

    /// Forces the answer to every request, before even checking credentials.
    pub fn respond_all(&self, canned: Canned) {
        self.shared.lock().canned_all = Some(canned);
    }

    /// Drops every forced answer.
    pub fn clear_responses(&self) {
        let mut state = self.shared.lock();
        state.canned.clear();
        state.canned_all = None;
    }

    /// Every request received so far, oldest first.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// How many requests were received so far.
    #[must_use]
    pub fn request_count(&self) -> usize {
        self.shared.lock().requests.len()
    }

    /// How many requests were received for exactly this path (e.g. `/crm/v3/owners/101`).
    #[must_use]
    pub fn hits(&self, path: &str) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|request| request.path == path)
            .count()
    }
}

impl Drop for CrmFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn credentials(kind: FakeCrm) -> BTreeMap<String, String> {
    let pairs: &[(&str, &str)] = match kind {
        FakeCrm::Hubspot => &[("access_token", hubspot::TOKEN)],
        FakeCrm::Salesforce => &[("access_token", salesforce::TOKEN)],
        FakeCrm::Pipedrive => &[("api_token", pipedrive::TOKEN)],
        FakeCrm::Connectwise => &[
            ("company_id", connectwise::COMPANY_ID),
            ("public_key", connectwise::PUBLIC_KEY),
            ("private_key", connectwise::PRIVATE_KEY),
            ("client_id", connectwise::CLIENT_ID),
        ],
        FakeCrm::Jobber => &[("access_token", jobber::TOKEN)],
        FakeCrm::Zoho => &[("access_token", zoho::TOKEN)],
    };
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

#[derive(Debug)]
struct Shared {
    kind: FakeCrm,
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    users: BTreeMap<String, FakeUser>,
    records: BTreeMap<(String, String), Vec<String>>,
    jobs: BTreeMap<String, Vec<(String, Vec<String>)>>,
    canned: HashMap<String, Canned>,
    canned_all: Option<Canned>,
    requests: Vec<RecordedRequest>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn user(&self, id: &str) -> Option<FakeUser> {
        self.lock().users.get(id).cloned()
    }

    fn canned(&self, id: &str) -> Option<Canned> {
        self.lock().canned.get(id).cloned()
    }
}

/// A received request, as the CRM modules see it.
#[derive(Debug)]
struct Incoming {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

impl Incoming {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
    }

    /// The path's segments after `prefix` (`None` when the path does not start with it).
    fn segments_after(&self, prefix: &str) -> Option<Vec<&str>> {
        let rest = self.path.strip_prefix(prefix)?;
        Some(rest.trim_matches('/').split('/').collect())
    }

    /// A query parameter, percent-decoded.
    fn query_param(&self, name: &str) -> Option<String> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("");
                if let Ok(byte) = u8::from_str_radix(hex, 16) {
                    out.push(byte);
                    index += 3;
                    continue;
                }
                out.push(b'%');
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a request was about, for the not-found answers.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    /// A user / owner / member by id.
    User(&'a str),
    /// A record (`object`, `id`).
    Record(&'a str, &'a str),
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let incoming = Incoming {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
    };
    let forced = {
        let mut state = shared.lock();
        state.requests.push(RecordedRequest {
            method: incoming.method.clone(),
            path: incoming.path.clone(),
            query: incoming.query.clone(),
            body: String::from_utf8_lossy(&incoming.body).into_owned(),
        });
        state.canned_all.clone()
    };
    if let Some(canned) = forced {
        return render(&shared, &canned, Target::User("")).await;
    }
    match shared.kind {
        FakeCrm::Hubspot => hubspot::handle(&shared, &incoming).await,
        FakeCrm::Salesforce => salesforce::handle(&shared, &incoming).await,
        FakeCrm::Pipedrive => pipedrive::handle(&shared, &incoming).await,
        FakeCrm::Connectwise => connectwise::handle(&shared, &incoming).await,
        FakeCrm::Jobber => jobber::handle(&shared, &incoming).await,
        FakeCrm::Zoho => zoho::handle(&shared, &incoming).await,
    }
}

/// The canned answer in the fake's CRM's own shapes.
async fn render(shared: &Shared, canned: &Canned, target: Target<'_>) -> Response {
    let kind = shared.kind;
    match canned {
        Canned::NotFound => match kind {
            FakeCrm::Hubspot => hubspot::not_found(target),
            FakeCrm::Salesforce => salesforce::not_found(),
            FakeCrm::Pipedrive => pipedrive::not_found(target),
            FakeCrm::Connectwise => connectwise::not_found(target),
            FakeCrm::Jobber => jobber::not_found(target),
            FakeCrm::Zoho => zoho::not_found(),
        },
        Canned::Unauthorized => unauthorized(kind),
        Canned::RateLimited { retry_after_secs } => {
            rate_limited(kind, Some(retry_after_secs.to_string()))
        }
        Canned::RateLimitedWith { retry_after } => rate_limited(kind, retry_after.clone()),
        Canned::Throttled => match kind {
            FakeCrm::Hubspot => hubspot::daily_limit(),
            FakeCrm::Salesforce => salesforce::request_limit_exceeded(),
            FakeCrm::Jobber => jobber::throttled(),
            FakeCrm::Pipedrive | FakeCrm::Connectwise | FakeCrm::Zoho => rate_limited(kind, None),
        },
        Canned::Malformed => (
            StatusCode::OK,
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            "{\"id\": \"1\", \"email\": ",
        )
            .into_response(),
        Canned::UnexpectedShape => json(StatusCode::OK, serde_json::json!({ "unexpected": true })),
        Canned::ServerError => {
            (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
        }
        Canned::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

fn unauthorized(kind: FakeCrm) -> Response {
    match kind {
        FakeCrm::Hubspot => hubspot::unauthorized(),
        FakeCrm::Salesforce => salesforce::unauthorized(),
        FakeCrm::Pipedrive => pipedrive::unauthorized(),
        FakeCrm::Connectwise => connectwise::unauthorized(),
        FakeCrm::Jobber => jobber::unauthorized(),
        FakeCrm::Zoho => zoho::unauthorized(),
    }
}

fn rate_limited(kind: FakeCrm, retry_after: Option<String>) -> Response {
    let mut response = match kind {
        FakeCrm::Hubspot => hubspot::secondly_limit(),
        FakeCrm::Salesforce => salesforce::too_many_requests(),
        FakeCrm::Pipedrive => pipedrive::too_many_requests(),
        FakeCrm::Connectwise => connectwise::too_many_requests(),
        FakeCrm::Jobber => jobber::too_many_requests(),
        FakeCrm::Zoho => zoho::too_many_requests(),
    };
    if let Some(value) = retry_after.and_then(|value| HeaderValue::from_str(&value).ok()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

fn json(status: StatusCode, value: Value) -> Response {
    (status, axum::Json(value)).into_response()
}

fn method_not_allowed() -> Response {
    json(
        StatusCode::METHOD_NOT_ALLOWED,
        serde_json::json!({ "message": "method not allowed" }),
    )
}

/// A user's id as the CRM's integer, where it has one.
fn numeric(id: &str) -> Value {
    id.parse::<u64>()
        .map_or_else(|_| Value::String(id.to_owned()), Value::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(percent_decode("Id%2CEmail"), "Id,Email");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
