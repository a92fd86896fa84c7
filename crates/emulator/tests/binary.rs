//! The real `tenantlink-emulator` binary: its `--json` start-up line is enough for a script
//! to reach every service, and it stops cleanly on SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

#[tokio::test]
async fn json_line_describes_a_reachable_emulator_and_sigterm_stops_it() {
    let ca_path = std::env::temp_dir().join(format!("tl-emulator-bin-{}.pem", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenantlink-emulator"))
        .args([
            "--https-port",
            "0",
            "--http-port",
            "0",
            "--size",
            "small",
            "--json",
        ])
        .arg("--ca-path")
        .arg(&ca_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tenantlink-emulator");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let described: Value = serde_json::from_str(&line).expect("one JSON line");
    assert_eq!(
        described["ca_path"].as_str().unwrap(),
        ca_path.to_str().unwrap()
    );
    let tenants = described["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 2);
    for key in ["tenant_id", "domain"] {
        assert!(
            tenants[0][key].as_str().is_some_and(|v| !v.is_empty()),
            "{key}"
        );
    }
    assert!(
        tenants[0]["connector_app"]["client_secret"]
            .as_str()
            .unwrap()
            .len()
            >= 30
    );

    let pem = std::fs::read(&ca_path).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let control: Value = client
        .get(format!(
            "{}/_emulator",
            described["https_url"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(control["tenants"][0]["tenantId"], tenants[0]["tenant_id"]);
    let graph = client
        .get(format!(
            "{}/users",
            described["graph_url_http"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        graph.status(),
        401,
        "Graph over HTTP answers, and wants a token"
    );

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM ends it cleanly: {status:?}");
    assert!(
        ca_path.exists(),
        "a CA written to a path the user chose is kept"
    );
    std::fs::remove_file(&ca_path).unwrap();
}

#[test]
fn bad_flags_exit_non_zero_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_tenantlink-emulator"))
        .args(["--size", "gigantic"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("small, medium, large or a number of users"),
        "{stderr}"
    );
}
