//! Black-box tests of the `rollcall` binary: real processes, real HTTP, real PostgreSQL,
//! RabbitMQ and SMTP, exactly as a CRM and an operator would use them.

// A failed expectation in test support is the test failing; skips are announced on stderr and
// fault scenarios print their summaries on stdout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    unreachable_pub
)]

mod api;
mod backbone;
mod dead_letters;
mod faults;
mod imports;
mod ingress;
mod invitations;
mod openapi;
mod operations;
mod provisioning;
mod sources;
mod support;
