//! Microsoft's own Graph SDK for Python (msgraph-sdk, pinned in python/requirements.txt)
//! against the emulator: listing users to the end, reading group members and a users delta
//! round, with only the base URL, the CA and instance discovery changed.

mod common;

use std::process::Command;

use common::{Harness, python, workspace};
use tenantlink_emulator::{EmulatorConfig, TenantSize};

#[tokio::test]
async fn msgraph_sdk_lists_users_reads_members_and_runs_delta() {
    let h = Harness::with(EmulatorConfig {
        tenants: 1,
        size: TenantSize {
            users: 1_500,
            ..TenantSize::SMALL
        },
        ..EmulatorConfig::default()
    });
    let tenant = h.emulator.tenants()[0].clone();
    let state = h.state(&tenant.tenant_id).await;
    let live_users = state["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["_state"] == "active")
        .count();
    let group = &state["groups"][1];
    let script = workspace().join("python/sdk/graph_check.py");
    let python = python();
    let output = Command::new(&python)
        .arg(&script)
        .env("TL_AUTHORITY", h.emulator.https_url())
        .env("TL_GRAPH_URL", h.emulator.graph_url())
        .env(
            "TL_CONTROL_URL",
            format!("{}/_emulator", h.emulator.https_url()),
        )
        .env("TL_CA", h.emulator.ca_path())
        .env("TL_TENANT", &tenant.tenant_id)
        .env("TL_DOMAIN", &tenant.domain)
        .env("TL_CLIENT_ID", &tenant.connector_app.client_id)
        .env("TL_CLIENT_SECRET", &tenant.connector_app.client_secret)
        .env("TL_EXPECTED_USERS", live_users.to_string())
        .env("TL_GROUP_ID", group["id"].as_str().unwrap())
        .env(
            "TL_EXPECTED_MEMBERS",
            group["members"].as_array().unwrap().len().to_string(),
        )
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); run `cargo xtask pyenv` (or `cargo xtask ci`) first",
                python.display()
            )
        });
    assert!(
        output.status.success(),
        "msgraph-sdk check failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
