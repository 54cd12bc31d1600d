//! Bulk imports end to end: the CLI and the API, a 50,000-row roster on PostgreSQL and
//! RabbitMQ, re-imports, the full-roster safeguard, the errors file, bad files, and the sync
//! runs webhook days make.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Backend, Client, Spawn, TestEnv, event, eventually, only, owner};

/// Runs `rollcall` with `args`; answers the exit code, stdout and stderr.
async fn cli(env: &TestEnv, args: &[&str]) -> (Option<i32>, String, String) {
    let output = env
        .command()
        .args(args)
        .output()
        .await
        .expect("running rollcall");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn roster_csv(range: std::ops::Range<usize>) -> String {
    let mut csv = String::from("Employee,Work Email,first_name,last_name,department,Desk\n");
    for n in range {
        csv.push_str(&format!(
            "E{n:05},person{n}@example.com,First{n},Last{n},Team {},desk-{n}\n",
            n % 7
        ));
    }
    csv
}

/// Waits until the run is completed (or stopped) and answers it.
async fn finished(client: &Client, run: &str) -> Value {
    eventually(
        &format!("import {run} to finish"),
        Duration::from_secs(120),
        || {
            let client = client.clone();
            let path = format!("/v1/imports/{run}");
            async move {
                let (status, run) = client.get(&path).await;
                assert_eq!(status, 200, "{run}");
                matches!(
                    run["state"].as_str(),
                    Some("completed" | "stopped" | "failed")
                )
                .then_some(run)
            }
        },
    )
    .await
}

#[tokio::test]
async fn a_50000_row_roster_is_imported_once_and_importing_it_again_changes_nothing() {
    let Some(env) = TestEnv::new(Backend::PostgresRabbit).await else {
        return;
    };
    let process = env.spawn(Spawn::default()).await;
    let client = Client::new(&process);
    let tenant = client.create_tenant("Acme").await;
    // No invitations: 50,000 emails would measure the mail relay, not the import.
    let integration = client
        .create_integration(&tenant, json!({"invite_mode": "off"}))
        .await;
    let file = env.dir.path().join("roster.csv");
    std::fs::write(&file, roster_csv(0..50_000)).unwrap();
    let file = file.to_str().unwrap().to_owned();
    let args = [
        "import",
        "--integration",
        &integration.id,
        &file,
        "--map",
        "Employee=id",
        "--map",
        "Work Email=email",
    ];

    let (code, out, err) = cli(&env, &args).await;
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    // Progress lines (stderr is not a terminal here: one line at a time), then the summary.
    let progress: Vec<&str> = err
        .lines()
        .filter(|line| line.starts_with("read "))
        .collect();
    assert!(!progress.is_empty(), "no progress lines in {err}");
    let last = progress.last().unwrap();
    assert!(
        last.contains("queued 50000") && last.contains("applied 50000") && last.contains("ETA"),
        "{last}"
    );
    assert!(
        out.contains("50000 rows read, 50000 queued, 0 invalid"),
        "{out}"
    );
    assert!(
        out.contains("created 50000 · updated 0 · unchanged 0 · deactivated 0"),
        "{out}"
    );
    let run_id = out
        .split_whitespace()
        .nth(1)
        .expect("the summary names the import")
        .to_owned();
    let run = finished(&client, &run_id).await;
    assert_eq!(run["kind"], "import");
    assert_eq!(run["state"], "completed");
    assert_eq!(run["counts"]["created"], 50_000);
    assert_eq!(run["processed"], 50_000);
    assert_eq!(run["options"]["ignored_columns"], json!(["Desk"]));
    let user = only(
        &client.users("?q=person49999@example.com").await,
        "the last row's user",
    );
    assert_eq!(user["first_name"], "First49999");
    assert_eq!(user["department"], "Team 5");

    // The same file again: every row decides "unchanged"; nobody is created twice.
    let (code, out, err) = cli(&env, &args).await;
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("created 0 · updated 0 · unchanged 50000 · deactivated 0"),
        "{out}"
    );
    let (_, runs) = client
        .get(&format!(
            "/v1/imports?integration_id={}&kind=import",
            integration.id
        ))
        .await;
    let runs = runs["items"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[1]["id"], run_id, "newest first");
    assert_eq!(runs[0]["counts"]["unchanged"], 50_000);

    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn a_full_roster_deactivates_absentees_only_within_the_safeguard() {
    let Some(env) = TestEnv::new(Backend::SqliteEmbedded).await else {
        return;
    };
    let process = env.spawn(Spawn::default()).await;
    let client = Client::new(&process);
    let tenant = client.create_tenant("Acme").await;
    let integration = client
        .create_integration(&tenant, json!({"invite_mode": "off"}))
        .await;
    let path = format!("/v1/integrations/{}/imports", integration.id);
    let csv = |range: std::ops::Range<usize>| {
        roster_csv(range).replace("Employee,Work Email", "id,email")
    };
    let (status, run) = client.post_raw(&path, "text/csv", csv(0..20)).await;
    assert_eq!(status, 202, "{run}");
    let run = finished(&client, run["id"].as_str().unwrap()).await;
    assert_eq!(run["counts"]["created"], 20, "{run}");

    // 18 of 20: two absentees, 10% — within the default safeguard.
    let (status, run) = client
        .post_raw(&format!("{path}?full_roster=true"), "text/csv", csv(2..20))
        .await;
    assert_eq!(status, 202, "{run}");
    let run = finished(&client, run["id"].as_str().unwrap()).await;
    assert_eq!(run["state"], "completed", "{run}");
    assert_eq!(run["absent"], 2, "{run}");
    assert_eq!(run["counts"]["deactivated"], 2, "{run}");
    assert_eq!(run["counts"]["unchanged"], 18, "{run}");
    for n in [0, 1] {
        let user = only(
            &client.users(&format!("?q=person{n}@example.com")).await,
            "an absentee",
        );
        assert_eq!(user["status"], "leaver", "{user}");
    }

    // 12 of the 18 still here: 6 absentees, 33% — the run stops and changes nobody. Through
    // the CLI, which says why and fails.
    let file = env.dir.path().join("roster.csv");
    std::fs::write(&file, csv(8..20)).unwrap();
    let (code, out, err) = cli(
        &env,
        &[
            "import",
            "--integration",
            &integration.id,
            file.to_str().unwrap(),
            "--full-roster",
        ],
    )
    .await;
    assert_eq!(code, Some(1), "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains("leaves out 6 of the integration's 18 current owners (33%)")
            && err.contains("nobody was changed"),
        "{err}"
    );
    assert!(
        out.contains("created 0 · updated 0 · unchanged 0 · deactivated 0"),
        "{out}"
    );
    let user = only(&client.users("?q=person2@example.com").await, "user 2");
    assert_eq!(user["status"], "active", "{user}");
    // Allowed explicitly, the same file goes through.
    let (code, out, err) = cli(
        &env,
        &[
            "import",
            "--integration",
            &integration.id,
            file.to_str().unwrap(),
            "--full-roster",
            "--max-deactivate-percent",
            "40",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("deactivated 6"), "{out}");
    assert!(out.contains("6 absent from the roster"), "{out}");

    drop(process);
    env.cleanup().await;
}

#[tokio::test]
async fn bad_rows_are_listed_in_the_errors_file_and_bad_files_are_refused() {
    let Some(env) = TestEnv::new(Backend::SqliteEmbedded).await else {
        return;
    };
    let process = env.spawn(Spawn::default()).await;
    let client = Client::new(&process);
    let tenant = client.create_tenant("Acme").await;
    let integration = client
        .create_integration(&tenant, json!({"invite_mode": "off"}))
        .await;
    let path = format!("/v1/integrations/{}/imports", integration.id);
    let csv = "id,email,first_name,last_name,status\n\
               A1,ann@example.com,Ann,Lee,active\n\
               A2,ben@example.com,Ben\n\
               ,cy@example.com,Cy,Roe,active\n\
               A4,dee@example.com,Dee,Ng,on holiday\n\
               A5,not-an-email,Eve,Ode,active\n\
               A6,fay@example.com,Fay,Poe,active\n";
    let (status, run) = client
        .post_raw(
            &format!("{path}?file_name=june.csv"),
            "text/csv",
            csv.to_owned(),
        )
        .await;
    assert_eq!(status, 202, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let run = finished(&client, &id).await;
    assert_eq!(run["file_name"], "june.csv");
    assert_eq!(run["rows_read"], 6, "{run}");
    assert_eq!(run["rows_invalid"], 3, "{run}");
    assert_eq!(run["counts"]["created"], 2, "{run}");
    assert_eq!(run["counts"]["issues"], 1, "{run}");
    assert_eq!(run["counts"]["failed"], 3, "{run}");
    let (status, errors) = client
        .get_text(&format!("/v1/imports/{id}/errors.csv"))
        .await;
    assert_eq!(status, 200, "{errors}");
    let lines: Vec<&str> = errors.lines().collect();
    assert_eq!(lines[0], "row,owner_id,reason");
    assert_eq!(lines.len(), 5, "{errors}");
    assert!(
        lines[1].starts_with("2,A2,") && lines[1].contains("fields"),
        "{errors}"
    );
    assert!(
        lines[2].starts_with("3,,") && lines[2].contains("id"),
        "{errors}"
    );
    assert!(
        lines[3].starts_with("4,A4,") && lines[3].contains("on holiday"),
        "{errors}"
    );
    assert!(
        lines[4].starts_with("5,A5,") && lines[4].contains("email"),
        "{errors}"
    );

    // File-level problems: refused before anything starts.
    for (content_type, body, expected) in [
        (
            "text/csv",
            "email,name\nx@example.com,X\n".as_bytes().to_vec(),
            "id",
        ),
        ("text/csv", b"id,\xff\xfe\n1,2\n".to_vec(), "UTF-8"),
        ("application/x-ndjson", Vec::new(), "empty"),
    ] {
        let (status, problem) = client.post_bytes(&path, content_type, body).await;
        assert_eq!(status, 422, "{expected}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(expected),
            "{expected}: {problem}"
        );
    }
    let (status, problem) = client
        .post_raw(&path, "application/pdf", "%PDF".to_owned())
        .await;
    assert_eq!(status, 400, "{problem}");
    let (status, problem) = client
        .post_raw(
            &format!("{path}?max_deactivate_percent=150"),
            "text/csv",
            csv.to_owned(),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    let (code, _, err) = cli(
        &env,
        &[
            "import",
            "--integration",
            &integration.id,
            "/nonexistent/roster.csv",
        ],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot read /nonexistent/roster.csv"), "{err}");
    let (code, _, err) = cli(
        &env,
        &[
            "import",
            "--integration",
            &integration.id,
            "x.csv",
            "--map",
            "nofield",
        ],
    )
    .await;
    assert_eq!(code, Some(1));
    assert!(err.contains("nofield"), "{err}");

    // A browser form upload: the `file` part is the roster, other parts are options.
    let form = "--XyZ\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\nmail=email\r\n\
                --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"team.csv\"\r\n\
                Content-Type: text/csv\r\n\r\n\
                id,mail,name\nM1,mo@example.com,Mo Tate\nM2,nia@example.com,Nia Ube\n\r\n\
                --XyZ--\r\n";
    let (status, run) = client
        .post_bytes(
            &path,
            "multipart/form-data; boundary=XyZ",
            form.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(status, 202, "{run}");
    let run = finished(&client, run["id"].as_str().unwrap()).await;
    assert_eq!(run["file_name"], "team.csv", "{run}");
    assert_eq!(run["counts"]["created"], 2, "{run}");
    let (status, problem) = client
        .post_bytes(
            &path,
            "multipart/form-data; boundary=XyZ",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\nmail=email\r\n--XyZ--\r\n"
                .to_vec(),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["field"], "file", "{problem}");

    // A dry run shows the decisions and writes nothing.
    let file = env.dir.path().join("more.jsonl");
    std::fs::write(
        &file,
        "{\"id\": \"A1\", \"email\": \"ann@example.com\", \"first_name\": \"Ann\", \"last_name\": \"Lee\"}\n\
         {\"id\": \"B1\", \"email\": \"bo@example.com\", \"name\": \"Bo Diaz\"}\n",
    )
    .unwrap();
    let (code, out, err) = cli(
        &env,
        &[
            "import",
            "--integration",
            &integration.id,
            file.to_str().unwrap(),
            "--dry-run",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("row 2: create B1"), "{out}");
    assert!(out.contains("would create 1 · none 1"), "{out}");
    assert!(client.users("?q=bo@example.com").await.is_empty());

    // Webhooks make a sync run per integration and day.
    let (status, _) = client
        .send(
            &integration,
            "wh-1",
            &event(
                "wh-1",
                "opportunity.updated",
                &owner("W1", "Wes", "Hale", "wes@example.com"),
            ),
        )
        .await;
    assert_eq!(status, 202);
    let day = eventually("the webhook day's run", Duration::from_secs(30), || {
        let client = client.clone();
        let path = format!(
            "/v1/imports?integration_id={}&kind=webhooks",
            integration.id
        );
        async move {
            let (_, runs) = client.get(&path).await;
            runs["items"]
                .as_array()
                .and_then(|runs| runs.first().cloned())
                .filter(|run| run["counts"]["created"] == 1)
        }
    })
    .await;
    assert_eq!(day["state"], "open");
    assert!(day["day"].as_str().unwrap().starts_with("20"), "{day}");

    drop(process);
    env.cleanup().await;
}
