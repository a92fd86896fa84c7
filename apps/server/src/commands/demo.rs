//! `tenantlink demo` (and the setup `tenantlink sync --demo` shares): everything on embedded
//! defaults. The emulator runs in-process with a seeded tenant, an SQLite file holds the
//! data, a demo organization gets an API key, the tenant is connected and synced once, and
//! the server runs until Ctrl-C.

use std::io::Write as _;
use std::net::TcpListener;
use std::process::ExitCode;

use anyhow::Context as _;
use tenantlink_emulator::{Emulator, EmulatorConfig, TenantInfo, TenantSize};
use tenantlink_identity::{Cloud, SecretString};
use tenantlink_store::{Connection, Db, DbConfig};
use tenantlink_sync::SyncType;
use tenantlink_sync::credentials::{self, ConnectRequest};
use tenantlink_vault::{FernetKey, KeyRing};

use crate::config::{self, CloudSettings};

/// Where the demos keep their database (recreated on every demo run).
pub(crate) const DEMO_DATABASE: &str = "tenantlink-demo.db";

/// A connected demo tenant.
pub(crate) struct DemoSetup {
    /// The running emulator (stops when dropped).
    pub(crate) emulator: Emulator,
    /// Its seeded tenant.
    pub(crate) tenant: TenantInfo,
    /// The demo database.
    pub(crate) db: Db,
    /// The keys that sealed the stored secret.
    pub(crate) ring: KeyRing,
    /// Cloud settings pointing at the emulator.
    pub(crate) cloud: CloudSettings,
    /// The demo organization.
    pub(crate) organization_id: String,
    /// The connected tenant.
    pub(crate) connection: Connection,
}

/// Starts the emulator, recreates the demo database and connects the seeded tenant.
pub(crate) async fn setup() -> anyhow::Result<DemoSetup> {
    writeln!(
        std::io::stderr().lock(),
        "starting the offline emulator (Entra ID + Microsoft Graph) with a seeded tenant…"
    )?;
    let emulator = tokio::task::spawn_blocking(|| {
        Emulator::start(EmulatorConfig {
            tenants: 1,
            size: TenantSize::MEDIUM,
            ..EmulatorConfig::default()
        })
    })
    .await?
    .context("cannot start the emulator")?;
    let tenant = emulator
        .tenants()
        .first()
        .context("the emulator seeded no tenant")?
        .clone();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{DEMO_DATABASE}{suffix}"));
    }
    let db = Db::connect(&DbConfig::new(format!("sqlite://{DEMO_DATABASE}")))
        .await
        .context("cannot create the demo database")?;
    db.migrate().await?;
    // The demo database is throwaway: without a configured key, a throwaway key seals it.
    let ring = match config::vault_from_env() {
        Ok(vault) => vault.build()?,
        Err(_) => KeyRing::new(FernetKey::generate()?),
    };
    let cloud = CloudSettings::new(
        Cloud::Custom {
            base_url: emulator.https_url().trim_end_matches('/').to_owned(),
        },
        vec![emulator.ca_pem()],
    );
    let identity = cloud.identity_client()?;
    let organization_id = super::connect::organization(&db, "demo").await?;
    let (connection, permissions) = credentials::connect_tenant(
        &db,
        &ring,
        &identity,
        ConnectRequest {
            organization_id: organization_id.clone(),
            tenant_id: tenant.tenant_id.clone(),
            client_id: tenant.connector_app.client_id.clone(),
            secret: SecretString::from(tenant.connector_app.client_secret.clone()),
            secret_expires_at: None,
        },
    )
    .await
    .context("cannot connect the demo tenant")?;
    writeln!(
        std::io::stderr().lock(),
        "connected tenant {} ({}); secret stored encrypted under key {}; {} permissions granted\n",
        tenant.domain,
        tenant.tenant_id,
        ring.primary_id(),
        permissions.granted.len()
    )?;
    Ok(DemoSetup {
        emulator,
        tenant,
        db,
        ring,
        cloud,
        organization_id,
        connection,
    })
}

/// A random admin key for the demo server (when `TENANTLINK_ADMIN_KEY` is unset).
fn random_admin_key() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::getrandom(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) async fn demo() -> anyhow::Result<ExitCode> {
    // An operator's own admin key is never printed; a throwaway one is, to be used.
    let (admin_key, admin_shown) = match std::env::var(config::ADMIN_KEY_VAR) {
        Ok(key) if !key.trim().is_empty() => (key, format!("(from {})", config::ADMIN_KEY_VAR)),
        _ => {
            let key = random_admin_key()?;
            (key.clone(), key)
        }
    };
    let mut settings = config::demo_settings(&admin_key)?;
    let listener =
        TcpListener::bind((settings.bind.as_str(), settings.port)).with_context(|| {
            format!(
                "cannot listen on {}:{} (set {} to another port, or 0 for any free one)",
                settings.bind,
                settings.port,
                config::PORT_VAR
            )
        })?;
    settings.bound_to(listener.local_addr()?);
    let DemoSetup {
        emulator,
        db,
        ring,
        cloud,
        organization_id,
        connection,
        ..
    } = setup().await?;
    super::sync::sync_one(&db, &ring, &cloud, &connection, SyncType::Full, false).await?;
    let issued = crate::auth::issue_key().map_err(|e| anyhow::anyhow!("{e}"))?;
    db.create_api_key(&tenantlink_store::NewApiKey {
        id: issued.id.clone(),
        organization_id,
        name: "demo".into(),
        secret_hash: issued.secret_hash.clone(),
        expires_at: None,
    })
    .await?;
    let url = settings.public_url.clone();
    let c = &connection.id;
    writeln!(
        std::io::stdout().lock(),
        "\ntenantlink is serving the demo at {url}\n\
         \n  url:        {url}\n  api key:    {key}\n  admin key:  {admin}\n  connection: {c}\n\
         \ntry:\n  curl -H 'Authorization: Bearer {key}' '{url}/v1/connections/{c}/users?limit=5'\n  \
         curl -H 'Authorization: Bearer {key}' -X POST -H 'content-type: application/json' -d '{{\"type\":\"incremental\"}}' {url}/v1/connections/{c}/sync\n  \
         open {url}/docs for the API reference\n\
         \nCtrl-C stops it. The data stays in {DEMO_DATABASE}.",
        key = issued.key,
        admin = admin_shown,
    )?;
    // Logs go to stderr as JSON; the demo shows warnings only unless RUST_LOG says otherwise.
    super::serve::init_json_logs("warn");
    super::serve::run(
        super::serve::Parts {
            settings,
            db,
            ring,
            cloud,
        },
        listener,
    )
    .await?;
    emulator.stop();
    Ok(ExitCode::SUCCESS)
}
