//! Starting and stopping the emulator: seeding, the CA, one actix-web server listening on
//! HTTP and HTTPS on 127.0.0.1, run on its own thread so callers may use any runtime.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use actix_web::{App, HttpResponse, HttpServer, web};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::config::EmulatorConfig;
use crate::error::Error;
use crate::jwt::Signer;
use crate::state::{Faults, State, WorldState};

/// An app's test credentials, printed at start.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppCredentials {
    /// The application (client) id.
    pub client_id: String,
    /// A client secret that works.
    pub client_secret: String,
    /// A client secret of the same app that has expired.
    pub expired_client_secret: String,
    /// The application permissions granted in this tenant.
    pub roles: Vec<String>,
}

/// A seeded tenant and its test apps.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TenantInfo {
    /// The tenant id (GUID).
    pub tenant_id: String,
    /// The verified domain.
    pub domain: String,
    /// The app with every Graph permission.
    pub connector_app: AppCredentials,
    /// The app with `User.Read.All` only.
    pub limited_app: AppCredentials,
    /// A few users that can sign in interactively (userPrincipalNames).
    pub users: Vec<String>,
}

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    state: Arc<State>,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    ca_path: PathBuf,
    tenants: Vec<TenantInfo>,
    multi_tenant_app: AppCredentials,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("https_url", &self.state.https_url)
            .field("http_url", &self.state.http_url)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Seeds the tenants, generates the CA, binds the ports and starts serving. Blocks until
    /// it is ready (seeding a large tenant takes a few seconds).
    pub fn start(config: EmulatorConfig) -> Result<Self, Error> {
        config.validate()?;
        let anchor = start_of_today();
        let world = crate::seed::world(config.seed, config.tenants, config.size, anchor);
        let signer = Signer::from_seed(config.seed);
        let tls = crate::tls::generate()?;

        let bind = |port: u16, what: &str| {
            TcpListener::bind((config.bind, port)).map_err(|source| Error::Io {
                context: format!("cannot listen for {what} on {}:{port}", config.bind),
                source,
            })
        };
        let http = bind(config.http_port, "HTTP")?;
        let https = bind(config.https_port, "HTTPS")?;
        let host = |l: &TcpListener| -> Result<String, Error> {
            let addr = l.local_addr().map_err(|source| Error::Io {
                context: "cannot read the bound address".into(),
                source,
            })?;
            Ok(addr.to_string())
        };
        let http_url = format!("http://{}", host(&http)?);
        let https_url = format!("https://{}", host(&https)?);

        let ca_path = match &config.ca_path {
            Some(path) => path.clone(),
            None => std::env::temp_dir().join(format!(
                "tenantlink-emulator-ca-{}-{}.pem",
                std::process::id(),
                crate::rng::random_token(6)
            )),
        };
        std::fs::write(&ca_path, &tls.ca_pem).map_err(|source| Error::Io {
            context: format!("cannot write the CA certificate to {}", ca_path.display()),
            source,
        })?;

        let tenants = tenant_infos(&world);
        let multi = &world.apps[&world.multi_tenant_app];
        let multi_tenant_app = credentials(multi, &world.tenants[0]);
        let state = Arc::new(State {
            faults: RwLock::new(Faults::from_config(&config)),
            sessions: Mutex::new(crate::entra::Sessions::default()),
            throttle: Mutex::new(crate::graph::Throttle::default()),
            world: RwLock::new(WorldState::from_world(world)),
            signer,
            https_url,
            http_url,
            anchor,
            config,
        });

        let (tx, rx) = std::sync::mpsc::channel();
        let server_state = state.clone();
        let server_config = tls.server_config.clone();
        let workers = state.config.workers;
        let thread = std::thread::Builder::new()
            .name("tenantlink-emulator".into())
            .spawn(move || {
                let system = actix_web::rt::System::new();
                system.block_on(async move {
                    let data = web::Data::from(server_state);
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .app_data(web::PayloadConfig::new(8 * 1024 * 1024))
                            .configure(routes)
                    })
                    .workers(workers)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .listen(http)
                    .and_then(|s| s.listen_rustls_0_23(https, (*server_config).clone()));
                    match server {
                        Ok(server) => {
                            let server = server.run();
                            let _ = tx.send(Ok(server.handle()));
                            let _ = server.await;
                        }
                        Err(source) => {
                            let _ = tx.send(Err(source));
                        }
                    }
                });
            })
            .map_err(|source| Error::Io {
                context: "cannot start the server thread".into(),
                source,
            })?;
        let handle = rx
            .recv()
            .map_err(|_| Error::Config("the server thread stopped during start-up".into()))?
            .map_err(|source| Error::Io {
                context: "cannot start the HTTP server".into(),
                source,
            })?;
        Ok(Self {
            state,
            handle,
            thread: Some(thread),
            ca_path,
            tenants,
            multi_tenant_app,
        })
    }

    /// `https://127.0.0.1:port`: the authority host for Entra ID and the root of every
    /// emulated service.
    pub fn https_url(&self) -> &str {
        &self.state.https_url
    }

    /// `http://127.0.0.1:port`: the same services over plain HTTP (Graph clients that cannot
    /// be given a CA).
    pub fn http_url(&self) -> &str {
        &self.state.http_url
    }

    /// The Graph v1.0 base URL over HTTPS, `https://127.0.0.1:port/v1.0`.
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.state.https_url)
    }

    /// Where the CA certificate (PEM) was written: what clients must trust.
    pub fn ca_path(&self) -> &std::path::Path {
        &self.ca_path
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(&self.ca_path).unwrap_or_default()
    }

    /// The seeded tenants and their test apps.
    pub fn tenants(&self) -> &[TenantInfo] {
        &self.tenants
    }

    /// The multi-tenant app (registered in the first tenant; others must consent).
    pub fn multi_tenant_app(&self) -> &AppCredentials {
        &self.multi_tenant_app
    }

    /// Everything a script needs, as one JSON object.
    pub fn describe(&self) -> Value {
        json!({
            "https_url": self.state.https_url,
            "http_url": self.state.http_url,
            "authority_host": self.state.https_url,
            "graph_url": self.graph_url(),
            "graph_url_http": format!("{}/v1.0", self.state.http_url),
            "control_url": format!("{}/_emulator", self.state.https_url),
            "ca_path": self.ca_path,
            "seed": self.state.config.seed,
            "tenants": self.tenants,
            "multi_tenant_app": self.multi_tenant_app,
        })
    }

    /// Changes `fraction` of a tenant's users, groups, memberships and devices at once
    /// (seeded; see [`crate::churn::churn`]), as `POST /_emulator/tenants/{t}/churn` does.
    /// `None` when there is no such tenant.
    pub fn churn(
        &self,
        tenant: &str,
        fraction: f64,
        seed: u64,
    ) -> Option<crate::churn::ChurnReport> {
        let mut world = self.state.write();
        world
            .tenant_mut(tenant)
            .map(|t| crate::churn::churn(&mut t.dir, fraction, seed, chrono::Utc::now()))
    }

    /// Stops the server and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if self.state.config.ca_path.is_none() {
            let _ = std::fs::remove_file(&self.ca_path);
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/_emulator").configure(crate::control::configure))
        .service(web::scope("/v1.0").configure(crate::graph::configure))
        .configure(crate::entra::configure)
        .route("/", web::get().to(index))
        .default_service(web::to(not_found));
}

async fn index(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "service": "tenantlink emulator",
        "services": {
            "entra_id": format!("{}/{{tenant}}/v2.0/.well-known/openid-configuration", state.https_url),
            "graph": format!("{}/v1.0", state.https_url),
            "control": format!("{}/_emulator", state.https_url),
        },
    }))
}

async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "error": {
            "code": "NotFound",
            "message": format!("The emulator serves nothing at {} {}.", req.method(), req.path()),
        }
    }))
}

fn start_of_today() -> DateTime<Utc> {
    let now = Utc::now();
    now.date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(now, |t| t.and_utc())
}

fn credentials(
    app: &crate::model::AppRegistration,
    tenant: &crate::model::Tenant,
) -> AppCredentials {
    let now = Utc::now();
    let valid = app.secrets.iter().find(|s| s.expires > now);
    let expired = app.secrets.iter().find(|s| s.expires <= now);
    AppCredentials {
        client_id: app.client_id.clone(),
        client_secret: valid.map(|s| s.value.clone()).unwrap_or_default(),
        expired_client_secret: expired.map(|s| s.value.clone()).unwrap_or_default(),
        roles: tenant
            .grants
            .get(&app.client_id)
            .map(|g| g.roles.iter().cloned().collect())
            .unwrap_or_default(),
    }
}

fn tenant_infos(world: &crate::seed::World) -> Vec<TenantInfo> {
    world
        .tenants
        .iter()
        .zip(&world.seeded_apps)
        .map(|(tenant, apps)| TenantInfo {
            tenant_id: tenant.id.clone(),
            domain: tenant.domain.clone(),
            connector_app: credentials(&world.apps[&apps.connector], tenant),
            limited_app: credentials(&world.apps[&apps.limited], tenant),
            users: tenant
                .dir
                .users
                .iter()
                .filter(|u| u.account_enabled && u.user_type == "Member")
                .take(5)
                .map(|u| u.user_principal_name.clone())
                .collect(),
        })
        .collect()
}
