//! The actix-web application: middleware (request ids, JSON access logs, metrics, request
//! timeout), body limits, the route table, and running it with a graceful shutdown.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpMessage as _, HttpServer, ResponseError as _, web};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::metrics::{HttpLabels, RouteLabels};
use crate::state::AppState;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, if any.
pub(crate) fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The request id header, taken from the client when it is sane, else made here.
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

/// A request's id, in its extensions.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub(crate) String);

fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// Request ids, the timeout, one JSON log line and metrics per request.
async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(&req);
    req.extensions_mut().insert(RequestId(id.clone()));
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let timeout = state
        .as_ref()
        .map_or(Duration::from_secs(30), |s| s.settings.request_timeout);
    let method = req.method().to_string();
    // The path only: query strings can carry OAuth codes and states.
    let path = req.path().to_owned();
    // The handler runs as its own task on this worker and always runs to completion, even
    // when the client goes away or the timeout answers first: a database call is never
    // dropped half-way (diesel-async's SQLite wrapper would block the worker to finish it,
    // which a single-threaded worker cannot do).
    let task = actix_web::rt::spawn(REQUEST_ID.scope(id.clone(), next.call(req)));
    let outcome = match tokio::time::timeout(timeout, task).await {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(panicked)) => Ok(Err(ApiError::internal(format!(
            "the request handler panicked: {panicked}"
        ))
        .into())),
        Err(elapsed) => Err(elapsed),
    };
    let line = |status: u16, route: String, caller: Option<Caller>| Line {
        state: state.as_ref().map(|s| &***s),
        id: &id,
        method: &method,
        path: &path,
        route,
        status,
        elapsed: started.elapsed(),
        caller,
    };
    match outcome {
        Ok(Ok(mut res)) => {
            if let Ok(value) = HeaderValue::from_str(&id) {
                res.headers_mut()
                    .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
            }
            let route = res
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned());
            let caller = res.request().extensions().get::<Caller>().cloned();
            line(res.status().as_u16(), route, caller).record();
            Ok(res)
        }
        Ok(Err(err)) => {
            line(
                err.as_response_error().status_code().as_u16(),
                "-".into(),
                None,
            )
            .record();
            Err(err)
        }
        Err(_) => {
            let err = ApiError::Unavailable(format!(
                "the request took longer than {} s; retry later",
                timeout.as_secs()
            ));
            line(err.status_code().as_u16(), "-".into(), None).record();
            Err(err.into())
        }
    }
}

/// One request's log line and metrics.
struct Line<'a> {
    state: Option<&'a AppState>,
    id: &'a str,
    method: &'a str,
    path: &'a str,
    route: String,
    status: u16,
    elapsed: Duration,
    caller: Option<Caller>,
}

impl Line<'_> {
    fn record(self) {
        let (organization_id, key_id) = match &self.caller {
            Some(Caller::Organization {
                organization_id,
                key_id,
            }) => (organization_id.as_str(), key_id.as_str()),
            Some(Caller::Admin) => ("-", "admin"),
            None => ("-", "-"),
        };
        if let Some(state) = self.state {
            state
                .metrics
                .http_requests
                .get_or_create(&HttpLabels {
                    method: self.method.to_owned(),
                    route: self.route.clone(),
                    status: self.status,
                })
                .inc();
            state
                .metrics
                .http_latency
                .get_or_create(&RouteLabels {
                    route: self.route.clone(),
                })
                .observe(self.elapsed.as_secs_f64());
        }
        tracing::info!(
            request_id = %self.id,
            method = %self.method,
            path = %self.path,
            route = %self.route,
            status = self.status,
            latency_ms = self.elapsed.as_secs_f64() * 1000.0,
            organization_id,
            key_id,
            "request"
        );
    }
}

/// Registers the state, the body limits and every route.
pub(crate) fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let limit = state.settings.max_body_bytes;
        cfg.app_data(state)
            .app_data(
                web::JsonConfig::default()
                    .limit(limit)
                    .error_handler(move |err, _req| crate::error::json_error(err, limit)),
            )
            .app_data(web::PayloadConfig::new(limit))
            .app_data(web::QueryConfig::default().error_handler(crate::error::query_error))
            .app_data(web::PathConfig::default().error_handler(crate::error::path_error))
            .configure(crate::routes::configure);
    }
}

/// Background tasks of a server and the signals that stop them.
pub(crate) struct Background {
    /// Tells workers, the scheduler and housekeeping to stop.
    pub(crate) shutdown: tokio::sync::watch::Sender<bool>,
    /// Those tasks.
    pub(crate) tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Tells the audit task to drain its queue and end: sent last, once requests and
    /// workers (which record events) have stopped.
    pub(crate) audit_stop: tokio::sync::watch::Sender<bool>,
    /// The audit task.
    pub(crate) audit_task: Option<tokio::task::JoinHandle<()>>,
}

/// How long a graceful stop waits for background tasks, all together.
const STOP_WAIT: Duration = Duration::from_secs(60);

/// Runs the server on `listener` until SIGINT or SIGTERM, then stops taking requests,
/// tells workers to stop (their running pages commit), waits for both, and last lets the
/// audit trail drain.
pub(crate) async fn run(
    state: AppState,
    listener: TcpListener,
    background: Background,
) -> anyhow::Result<()> {
    let Background {
        shutdown,
        tasks: mut background,
        audit_stop,
        audit_task,
    } = background;
    let data = web::Data::new(state.clone());
    // actix-web runs in its own thread and system (its workers are single-threaded
    // runtimes); sync workers and everything else stay on the caller's tokio runtime.
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("tenantlink-http".into())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        // The last wrap is outermost: request ids and logs around the audit.
                        .wrap(from_fn(crate::audit::audit_middleware))
                        .wrap(from_fn(observe))
                        .configure(configure(data.clone()))
                        .default_service(web::to(not_found))
                })
                .workers(2)
                .disable_signals()
                .shutdown_timeout(30)
                .listen(listener);
                match server {
                    Ok(server) => {
                        let server = server.run();
                        let _ = tx.send(Ok(server.handle()));
                        let _ = server.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        })?;
    let handle = tokio::task::spawn_blocking(move || rx.recv())
        .await?
        .map_err(|_| anyhow::anyhow!("the HTTP server thread stopped during start-up"))??;
    let limits = state.limits.clone();
    let mut stopping = state.shutdown.clone();
    background.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = tick.tick() => limits.shrink(),
                _ = stopping.wait_for(|stop| *stop) => return,
            }
        }
    }));
    wait_for_signal().await;
    tracing::info!("shutting down: no new requests or jobs; running pages are committed");
    let _ = shutdown.send(true);
    handle.stop(true).await;
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    // Workers see the shutdown flag, finish the page they are writing and return; then the
    // audit task commits what they and the last requests recorded. One deadline for all.
    let deadline = tokio::time::Instant::now() + STOP_WAIT;
    for mut task in background {
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            tracing::warn!("a background task did not stop in time; stopping it");
            task.abort();
        }
    }
    let _ = audit_stop.send(true);
    if let Some(mut task) = audit_task
        && tokio::time::timeout_at(deadline + Duration::from_secs(10), &mut task)
            .await
            .is_err()
    {
        tracing::warn!("the audit trail did not drain in time");
        task.abort();
    }
    Ok(())
}

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound { what: "route" })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
