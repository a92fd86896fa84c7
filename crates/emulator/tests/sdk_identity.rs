//! Microsoft's own SDK against the emulator: azure-identity (Python, pinned in
//! `python/requirements.txt`, installed by `cargo xtask pyenv`) runs
//! `python/sdk/identity_check.py`, which gets an app token with `ClientSecretCredential`
//! and a user token with `AuthorizationCodeCredential`, then lets it expire so the SDK
//! redeems the (rotating) refresh token twice.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Harness, python, workspace};
use tenantlink_emulator::EmulatorConfig;

#[test]
fn azure_identity_gets_app_and_user_tokens() {
    // Short-lived tokens, so the SDK has to refresh within the test.
    let h = Harness::with(EmulatorConfig {
        token_lifetime: Duration::from_secs(2),
        ..EmulatorConfig::default()
    });
    let tenant = &h.emulator.tenants()[0];
    let script = workspace().join("python/sdk/identity_check.py");
    let python = python();
    let output = Command::new(&python)
        .arg(&script)
        .env("EMULATOR_AUTHORITY", h.emulator.https_url())
        .env("EMULATOR_CA", h.emulator.ca_path())
        .env("EMULATOR_TENANT_ID", &tenant.tenant_id)
        .env("EMULATOR_CLIENT_ID", &tenant.connector_app.client_id)
        .env(
            "EMULATOR_CLIENT_SECRET",
            &tenant.connector_app.client_secret,
        )
        .env("EMULATOR_USER", &tenant.users[0])
        .env("EMULATOR_REDIRECT_URI", "http://localhost/callback")
        .env("REQUESTS_CA_BUNDLE", h.emulator.ca_path())
        .env("SSL_CERT_FILE", h.emulator.ca_path())
        .env_remove("AZURE_AUTHORITY_HOST")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); run `cargo xtask pyenv` (or `cargo xtask ci`) first",
                python.display()
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "identity_check.py failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(stdout.contains("identity_check: all passed"), "{stdout}");
}
