//! `tenantlink connect`: verify a tenant's app credentials with Entra ID, then store them
//! encrypted. The secret comes from stdin or a prompt, never from an argument.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use tenantlink_identity::SecretString;
use tenantlink_store::Db;
use tenantlink_sync::credentials::{ConnectRequest, connect_tenant};
use zeroize::Zeroizing;

use crate::config;

/// The organization named `name`, created if missing.
pub(crate) async fn organization(db: &Db, name: &str) -> anyhow::Result<String> {
    if let Some(org) = db.organization_by_name(name).await? {
        return Ok(org.id);
    }
    Ok(db.create_organization(name).await?.id)
}

fn read_secret() -> anyhow::Result<SecretString> {
    let stdin = std::io::stdin();
    let secret = if stdin.is_terminal() {
        Zeroizing::new(
            rpassword::prompt_password("client secret (not echoed): ")
                .context("cannot read the secret from the terminal")?,
        )
    } else {
        let mut text = Zeroizing::new(String::new());
        stdin
            .lock()
            .read_to_string(&mut text)
            .context("cannot read the secret from stdin")?;
        text
    };
    let trimmed = secret.trim_end_matches(['\r', '\n']);
    if trimmed.is_empty() {
        bail!("no client secret given: pipe it on stdin or type it at the prompt");
    }
    Ok(SecretString::from(trimmed.to_owned()))
}

pub(crate) async fn connect(
    tenant_id: String,
    client_id: String,
    organization_name: String,
    secret_expires: Option<chrono::NaiveDate>,
) -> anyhow::Result<ExitCode> {
    let ring = config::vault_from_env()?.build()?;
    let cloud = config::cloud_from_env()?;
    let secret = read_secret()?;
    let db = super::db::open().await?;
    let identity = cloud.identity_client()?;
    let organization_id = organization(&db, &organization_name).await?;
    let (connection, permissions) = connect_tenant(
        &db,
        &ring,
        &identity,
        ConnectRequest {
            organization_id,
            tenant_id,
            client_id,
            secret,
            secret_expires_at: secret_expires.and_then(|d| d.and_hms_opt(0, 0, 0)),
        },
    )
    .await
    .context("the tenant was not connected")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "connected: {}", connection.id)?;
    writeln!(
        out,
        "  tenant {}  app {}",
        connection.tenant_id, connection.client_id
    )?;
    writeln!(
        out,
        "  secret stored encrypted under key {}",
        connection.secret_key_id.as_deref().unwrap_or("-")
    )?;
    writeln!(out, "  granted: {}", permissions.granted.join(", "))?;
    if permissions.missing.is_empty() {
        writeln!(out, "  every permission the sync needs is granted")?;
    } else {
        writeln!(
            out,
            "  missing: {} (ask the tenant's admin to grant and consent; the sync reports what it could not read)",
            permissions.missing.join(", ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
