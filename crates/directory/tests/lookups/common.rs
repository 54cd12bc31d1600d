//! Helpers shared by the per-CRM tests: a directory, one "subject" per API under test (a fake
//! CRM, the lookup to make, ids of the right form), and the battery of failure modes every
//! directory API must map the same way.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use crm_fakes::{Canned, CrmFake, FakeCrm, FakeUser};
use domain::{DirectoryAccess, IntegrationId, OwnerFacts, Source};
use rollcall_directory::{Directory, DirectoryOptions, LookupError};

pub(crate) fn directory() -> Directory {
    directory_with(Duration::from_secs(5), Duration::from_secs(60))
}

pub(crate) fn directory_with(timeout: Duration, cache_ttl: Duration) -> Directory {
    Directory::new(DirectoryOptions { timeout, cache_ttl })
}

/// Polls `condition` until it holds, failing the test after 10 s.
pub(crate) async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if condition().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Which lookup a subject makes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lookup {
    Owner,
    Record(&'static str),
}

/// One directory API under test: its fake, the lookup, and a known id (`id(1)`).
pub(crate) struct Subject {
    pub(crate) fake: CrmFake,
    pub(crate) source: Source,
    pub(crate) lookup: Lookup,
}

impl Subject {
    /// Starts the fake for `kind` and seeds `id(1)` (an owner, or a record owned by one).
    pub(crate) async fn start(kind: FakeCrm, lookup: Lookup) -> Subject {
        let fake = CrmFake::start(kind).await;
        let source = kind.source();
        let subject = Subject {
            fake,
            source,
            lookup,
        };
        let owner_id = subject.owner_id(1);
        subject.fake.add_user(
            owner_id.clone(),
            FakeUser::new("ada@example.com", "Ada", "Lovelace"),
        );
        if let Lookup::Record(object) = lookup {
            subject
                .fake
                .add_record(object, subject.id(1), vec![owner_id]);
        }
        subject
    }

    /// The `n`th id of the right form for the looked-up thing.
    pub(crate) fn id(&self, n: u32) -> String {
        match (self.fake.kind(), self.lookup) {
            (FakeCrm::Jobber, _) => format!("Z2lkOi8vSm9iYmVyL1Zpc2l0L{n}"),
            (FakeCrm::Salesforce, Lookup::Record(_)) => format!("006{n:012}AAA"),
            (FakeCrm::Salesforce, Lookup::Owner) => format!("005{n:012}AAA"),
            (_, Lookup::Record(_)) => format!("{}", 7_000 + n),
            (_, Lookup::Owner) => format!("{}", 100 + n),
        }
    }

    /// The `n`th owner id.
    pub(crate) fn owner_id(&self, n: u32) -> String {
        match self.fake.kind() {
            FakeCrm::Jobber => format!("Z2lkOi8vSm9iYmVyL1VzZXIv{n}"),
            FakeCrm::Salesforce => format!("005{n:012}AAA"),
            _ => format!("{}", 100 + n),
        }
    }

    pub(crate) async fn ask(
        &self,
        directory: &Directory,
        integration: IntegrationId,
        access: Option<&DirectoryAccess>,
        id: &str,
    ) -> Result<Vec<OwnerFacts>, LookupError> {
        match self.lookup {
            Lookup::Owner => directory
                .owner(integration, self.source, access, id)
                .await
                .map(|owner| vec![owner]),
            Lookup::Record(object) => {
                directory
                    .record_owners(integration, self.source, access, object, id)
                    .await
            }
        }
    }

    fn secrets(&self) -> Vec<String> {
        self.fake.credentials().into_values().collect()
    }

    /// One line, no credential.
    fn assert_clean(&self, err: &LookupError) {
        let message = err.to_string();
        assert!(!message.is_empty());
        assert!(!message.contains('\n'), "{message}");
        for secret in self.secrets() {
            assert!(!message.contains(&secret), "{message} leaks a credential");
        }
        for secret in self.secrets() {
            assert!(
                !format!("{err:?}").contains(&secret),
                "{err:?} leaks a credential"
            );
        }
    }

    /// Every failure mode the brief names, mapped the same way for every API.
    pub(crate) async fn standard_failures(&self) {
        self.finds_the_known_id().await;
        self.not_found().await;
        self.unauthorized().await;
        self.missing_credentials().await;
        self.rate_limited().await;
        self.transient().await;
        self.timeout().await;
        self.hostile_ids().await;
    }

    async fn finds_the_known_id(&self) {
        let access = self.fake.access();
        let owners = self
            .ask(
                &directory(),
                IntegrationId::new(),
                Some(&access),
                &self.id(1),
            )
            .await
            .unwrap();
        assert_eq!(owners.len(), 1, "{owners:?}");
        assert_eq!(owners[0].external_id, self.owner_id(1));
        assert_eq!(owners[0].email.as_deref(), Some("ada@example.com"));
    }

    async fn not_found(&self) {
        let access = self.fake.access();
        let unknown = self.id(2);
        let err = self
            .ask(&directory(), IntegrationId::new(), Some(&access), &unknown)
            .await
            .unwrap_err();
        assert!(matches!(err, LookupError::NotFound(_)), "{err:?}");
        assert!(err.to_string().contains(&unknown), "{err}");
        self.assert_clean(&err);

        self.fake.respond(self.id(3), Canned::NotFound);
        let err = self
            .ask(
                &directory(),
                IntegrationId::new(),
                Some(&access),
                &self.id(3),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, LookupError::NotFound(_)), "{err:?}");
    }

    async fn unauthorized(&self) {
        let access = self.fake.access();
        self.fake.respond(self.id(4), Canned::Unauthorized);
        let err = self
            .ask(
                &directory(),
                IntegrationId::new(),
                Some(&access),
                &self.id(4),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, LookupError::Refused(_)), "{err:?}");
        assert!(err.to_string().contains("401"), "{err}");
        self.assert_clean(&err);

        // A wrong credential gets the CRM's own 401.
        let mut wrong = access.clone();
        for value in wrong.credentials.values_mut() {
            value.push_str("-revoked");
        }
        let err = self
            .ask(
                &directory(),
                IntegrationId::new(),
                Some(&wrong),
                &self.id(1),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, LookupError::Refused(_)), "{err:?}");
        assert!(err.to_string().contains("401"), "{err}");
        for value in wrong.credentials.values() {
            assert!(!err.to_string().contains(value.as_str()), "{err}");
        }
        self.assert_clean(&err);
    }

    async fn missing_credentials(&self) {
        let access = self.fake.access();
        let before = self.fake.request_count();
        for name in access.credentials.keys() {
            for blank in [None, Some("  ")] {
                let mut partial = access.clone();
                match blank {
                    None => {
                        partial.credentials.remove(name);
                    }
                    Some(blank) => {
                        partial.credentials.insert(name.clone(), blank.to_owned());
                    }
                }
                let err = self
                    .ask(
                        &directory(),
                        IntegrationId::new(),
                        Some(&partial),
                        &self.id(1),
                    )
                    .await
                    .unwrap_err();
                assert!(matches!(err, LookupError::Refused(_)), "{err:?}");
                assert!(
                    err.to_string().contains(name.as_str()),
                    "{err} should name {name}"
                );
                self.assert_clean(&err);
            }
        }
        let err = self
            .ask(&directory(), IntegrationId::new(), None, &self.id(1))
            .await
            .unwrap_err();
        assert!(matches!(err, LookupError::Refused(_)), "{err:?}");
        assert!(
            access
                .credentials
                .keys()
                .any(|name| err.to_string().contains(name.as_str())),
            "{err} should name a needed credential"
        );
        assert_eq!(
            self.fake.request_count(),
            before,
            "no request without credentials"
        );
    }

    async fn rate_limited(&self) {
        let access = self.fake.access();
        let directory = directory();
        let integration = IntegrationId::new();
        self.fake.respond(
            self.id(5),
            Canned::RateLimited {
                retry_after_secs: 1,
            },
        );
        let started = Instant::now();
        let err = self
            .ask(&directory, integration, Some(&access), &self.id(5))
            .await
            .unwrap_err();
        let LookupError::RateLimited { retry_after, .. } = &err else {
            panic!("expected RateLimited, got {err:?}");
        };
        assert!(
            *retry_after > Duration::from_millis(500) && *retry_after <= Duration::from_secs(1),
            "{retry_after:?}"
        );
        self.assert_clean(&err);

        // Until the moment passes, nothing is asked of the CRM for this integration...
        let count = self.fake.request_count();
        let err = self
            .ask(&directory, integration, Some(&access), &self.id(1))
            .await
            .unwrap_err();
        assert!(matches!(err, LookupError::RateLimited { .. }), "{err:?}");
        assert_eq!(
            self.fake.request_count(),
            count,
            "asked the CRM while slowed down"
        );

        // ...another integration of the same CRM is not held back...
        let other = self
            .ask(&directory, IntegrationId::new(), Some(&access), &self.id(1))
            .await;
        assert!(other.is_ok(), "{other:?}");
        let count = self.fake.request_count();

        // ...and afterwards it asks again, once.
        loop {
            match self
                .ask(&directory, integration, Some(&access), &self.id(1))
                .await
            {
                Ok(owners) => {
                    assert_eq!(owners[0].external_id, self.owner_id(1));
                    break;
                }
                Err(LookupError::RateLimited { .. }) => {
                    assert_eq!(self.fake.request_count(), count, "asked while slowed down");
                    assert!(started.elapsed() < Duration::from_secs(10), "never let go");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        assert!(started.elapsed() >= Duration::from_millis(900));
        assert!(self.fake.request_count() > count);
    }

    async fn transient(&self) {
        let access = self.fake.access();
        for (n, canned) in [
            (6, Canned::Malformed),
            (7, Canned::UnexpectedShape),
            (8, Canned::ServerError),
        ] {
            self.fake.respond(self.id(n), canned.clone());
            let err = self
                .ask(
                    &directory(),
                    IntegrationId::new(),
                    Some(&access),
                    &self.id(n),
                )
                .await
                .unwrap_err();
            assert!(
                matches!(err, LookupError::Unavailable(_)),
                "{canned:?}: {err:?}"
            );
            self.assert_clean(&err);
        }
    }

    async fn timeout(&self) {
        let access = self.fake.access();
        self.fake.respond(self.id(9), Canned::Hang);
        let quick = directory_with(Duration::from_millis(300), Duration::from_secs(60));
        let err = self
            .ask(&quick, IntegrationId::new(), Some(&access), &self.id(9))
            .await
            .unwrap_err();
        assert!(matches!(err, LookupError::Unavailable(_)), "{err:?}");
        assert!(err.to_string().contains("no answer within"), "{err}");
    }

    async fn hostile_ids(&self) {
        let access = self.fake.access();
        let known = self.id(1);
        let hostile = [
            format!("{known}/../../owners"),
            format!("{known}?archived=true"),
            format!("{known}#x"),
            format!("../{known}"),
            format!("{known}%2F1"),
            format!("{known}\n"),
        ];
        if matches!(self.fake.kind(), FakeCrm::Jobber) {
            // Jobber ids travel as GraphQL variables: the path never changes.
            for id in &hostile {
                let _ = self
                    .ask(&directory(), IntegrationId::new(), Some(&access), id)
                    .await;
            }
            let paths: BTreeSet<String> =
                self.fake.requests().into_iter().map(|r| r.path).collect();
            assert_eq!(paths, BTreeSet::from(["/api/graphql".to_owned()]));
            return;
        }
        let before = self.fake.request_count();
        for id in hostile.iter().chain([&String::new()]) {
            let err = self
                .ask(&directory(), IntegrationId::new(), Some(&access), id)
                .await
                .unwrap_err();
            assert!(matches!(err, LookupError::NotFound(_)), "{id:?}: {err:?}");
            self.assert_clean(&err);
        }
        assert_eq!(
            self.fake.request_count(),
            before,
            "a hostile id reached the CRM"
        );
    }
}
