//! Directory lookups over real HTTP against the CRM fakes: every mapped field, every failure
//! mode, the cache, rate limiting and id safety, per CRM.

// Test code: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod behaviour;
mod common;
mod connectwise;
mod hubspot;
mod jobber;
mod pipedrive;
mod salesforce;
mod zoho;
