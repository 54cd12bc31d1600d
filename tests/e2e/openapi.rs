//! The OpenAPI document against the running API: every route of the contract is documented,
//! every documented operation is served, and a schema-driven fuzzer (schemathesis) finds no
//! server error and no answer that the document does not describe.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

use crate::support::services::skip_or_fail;
use crate::support::{Backend, Client, Spawn, TestEnv};

/// The internal API routes the contract (`api.md`) fixes, as `METHOD path`.
const CONTRACT: &[&str] = &[
    "POST /v1/tenants",
    "GET /v1/tenants",
    "POST /v1/tenants/{id}/tokens",
    "DELETE /v1/tokens/{id}",
    "POST /v1/integrations",
    "GET /v1/integrations",
    "GET /v1/integrations/{id}",
    "PATCH /v1/integrations/{id}",
    "DELETE /v1/integrations/{id}",
    "POST /v1/integrations/{id}/publish",
    "POST /v1/integrations/{id}/test",
    "POST /v1/integrations/{id}/secrets/rotate",
    "GET /v1/users",
    "GET /v1/users/{id}",
    "POST /v1/users",
    "PATCH /v1/users/{id}",
    "POST /v1/users/{id}/deactivate",
    "POST /v1/users/{id}/reactivate",
    "POST /v1/users/{id}/invitations",
    "POST /v1/teams",
    "GET /v1/teams",
    "PATCH /v1/teams/{id}",
    "DELETE /v1/teams/{id}",
    "PUT /v1/teams/{id}/members/{user_id}",
    "DELETE /v1/teams/{id}/members/{user_id}",
    "GET /v1/events",
    "GET /v1/events/{id}",
    "GET /v1/issues",
    "GET /v1/issues.csv",
    "GET /v1/dead-letters",
    "GET /v1/dead-letters/{id}",
    "POST /v1/dead-letters/{id}/replay",
    "DELETE /v1/dead-letters/{id}",
    "POST /v1/dead-letters/replay",
];

async fn document(client: &Client) -> Value {
    // Public: the document describes the API and holds no data.
    let response = client
        .http
        .get(format!("{}/openapi.json", client.admin))
        .send()
        .await
        .expect("GET /openapi.json");
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.expect("a JSON document")
}

fn operations(document: &Value) -> BTreeSet<String> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().cloned().unwrap_or_default() {
        for method in ["get", "put", "post", "patch", "delete"] {
            if item.get(method).is_some() {
                operations.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    operations
}

#[tokio::test]
async fn the_document_and_the_router_describe_the_same_routes() {
    let Some(env) = TestEnv::new(Backend::SqliteEmbedded).await else {
        return;
    };
    let process = env.spawn(Spawn::default()).await;
    let client = Client::new(&process);
    let document = document(&client).await;
    assert!(
        document["openapi"]
            .as_str()
            .unwrap_or("")
            .starts_with("3.1"),
        "{}",
        document["openapi"]
    );
    let documented = operations(&document);
    for route in CONTRACT {
        assert!(documented.contains(*route), "{route} is not documented");
    }
    // Every documented operation is served: with made-up ids each answers from its handler
    // (problem+json such as 404 or 400), never the router's bare 404 or a 405.
    let placeholder = "0190f3a4-0000-7000-8000-000000000000";
    for operation in &documented {
        let (method, path) = operation.split_once(' ').expect("METHOD path");
        let path = path
            .replace("{id}", placeholder)
            .replace("{user_id}", placeholder)
            .replace("{token}", "unknown-token");
        let url = format!("{}{path}", client.admin);
        let request = match method {
            "GET" => client.http.get(&url),
            "PUT" => client.http.put(&url),
            "PATCH" => client.http.patch(&url),
            "DELETE" => client.http.delete(&url),
            _ => client.http.post(&url),
        };
        let response = request
            .bearer_auth(&client.token)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert_ne!(status, 405, "{operation} is documented but not served");
        assert!(
            status != 404 || content_type == "application/problem+json",
            "{operation} is documented but the router does not know it ({status}, {content_type:?})"
        );
        assert!(status < 500, "{operation}: {status}");
    }
    // And nothing is served under /v1 that the document leaves out: an undocumented path is
    // the router's 404, not a handler's.
    let (status, _) = client.get("/v1/not-a-route").await;
    assert_eq!(status, 404);
    env.cleanup().await;
}

/// The schemathesis command line: `ROLLCALL_SCHEMATHESIS`, or the one `make test` installs in
/// the workspace's `.venv`.
fn schemathesis() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ROLLCALL_SCHEMATHESIS") {
        return Some(PathBuf::from(path));
    }
    let installed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/st");
    installed.exists().then_some(installed)
}

#[tokio::test]
async fn a_schema_driven_fuzzer_finds_no_server_error_and_no_undocumented_answer() {
    let Some(st) = schemathesis() else {
        skip_or_fail(
            "schemathesis",
            ".venv/bin/st",
            &"not installed (make test installs it)",
        );
        return;
    };
    // PostgreSQL: it is where production data lives, and it refuses more than SQLite does.
    let Some(env) = TestEnv::new(Backend::PostgresEmbedded).await else {
        return;
    };
    let process = env.spawn(Spawn::default()).await;
    let client = Client::new(&process);
    let output = tokio::process::Command::new(&st)
        .arg("run")
        .arg(format!("{}/openapi.json", client.admin))
        .args(["--header", &format!("Authorization: Bearer {}", client.token)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--mode", "all", "--max-examples", "25", "--seed", "1", "--no-color"])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .await
        .expect("running schemathesis");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}\nrollcall's log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        process.logs()
    );
    assert!(report.contains("passed"), "{report}");
    env.cleanup().await;
}
