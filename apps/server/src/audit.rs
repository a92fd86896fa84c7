//! The audit recorder: `AuditLog` (in `AppState`) appends events to the store's hash-chained
//! trail by group commit, and `audit_middleware` records every `/v1/…` request through it.
//!
//! Group commit: callers queue events on a bounded channel; one background task takes
//! whatever is queued (up to [`MAX_BATCH`]) and appends it as one transaction, then acks
//! each caller. The middleware waits for its ack before the response leaves, so an answered
//! request is already in the trail (durable before answered); the wait is bounded by
//! [`ACK_WAIT`].
//!
//! When an event cannot be made durable (the store fails or the wait runs out), the request
//! is answered 503 `unavailable` instead of its own answer, reads included: an answer whose
//! trail is missing is not sent. A change the handler already committed stays committed, as
//! after any lost answer; the 503 tells the client the outcome is unknown. The cause is
//! logged (route and request id only; events never hold secrets).
//!
//! Recorded per request: the caller (`key:<key id>` and its organization, `admin`, or
//! `anonymous`), the method and route pattern, the path parameters, the status and the
//! request id. Never the query string (it can carry OAuth codes) and never a body.
//!
//! On shutdown the task stops taking events, appends what is queued and ends; events
//! recorded after that (requests still finishing) are appended one by one, directly.

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, ResponseError as _, web};
use tenantlink_store::{Db, NewAuditEvent};
use tokio::sync::{mpsc, oneshot, watch};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Most events appended in one transaction.
pub(crate) const MAX_BATCH: usize = 512;
/// Events waiting for the background task before callers wait for room.
const QUEUE: usize = 4096;
/// How long a request waits for its event to be durable.
pub(crate) const ACK_WAIT: Duration = Duration::from_secs(3);
/// Longest path parameter value or unmatched path kept in an event, in characters.
const MAX_VALUE: usize = 200;

/// An event could not be made durable.
#[derive(Debug, thiserror::Error)]
#[error("the audit trail is unavailable: {0}")]
pub(crate) struct AuditUnavailable(&'static str);

struct Pending {
    event: NewAuditEvent,
    ack: oneshot::Sender<bool>,
}

/// The audit recorder shared by handlers, workers and the middleware.
pub(crate) struct AuditLog {
    db: Db,
    queue: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

impl AuditLog {
    /// A recorder over `db` whose group-commit task runs on the current tokio runtime until
    /// `shutdown` turns true (then it appends what is queued and ends). Outside a runtime
    /// there is no task and every event is appended on its own.
    pub(crate) fn start(
        db: Db,
        shutdown: watch::Receiver<bool>,
    ) -> (Arc<Self>, Option<tokio::task::JoinHandle<()>>) {
        let (queue, rx) = mpsc::channel(QUEUE);
        let task = tokio::runtime::Handle::try_current()
            .ok()
            .map(|rt| rt.spawn(commit_loop(db.clone(), rx, shutdown)));
        (Arc::new(Self { db, queue }), task)
    }

    /// Appends `event` and waits (at most [`ACK_WAIT`]) until it is durable.
    pub(crate) async fn record(&self, event: NewAuditEvent) -> Result<(), AuditUnavailable> {
        let (ack, acked) = oneshot::channel();
        let wait = async {
            match self.queue.send(Pending { event, ack }).await {
                Ok(()) => match acked.await {
                    Ok(true) => Ok(()),
                    _ => Err(AuditUnavailable("the store refused the batch")),
                },
                // The task has ended (shutdown): append directly.
                Err(mpsc::error::SendError(pending)) => {
                    match self.db.append_audit(&[pending.event]).await {
                        Ok(_) => Ok(()),
                        Err(e) => {
                            tracing::error!(error = %e, "cannot append an audit event");
                            Err(AuditUnavailable("the store refused the event"))
                        }
                    }
                }
            }
        };
        tokio::time::timeout(ACK_WAIT, wait)
            .await
            .unwrap_or(Err(AuditUnavailable("timed out")))
    }

    /// Records a named action (`sync.run`, an outbound change…) by `actor` (`worker:<id>`,
    /// `system`…), in the current request if any.
    pub(crate) async fn record_action(
        &self,
        organization_id: Option<&str>,
        actor: &str,
        action: &str,
        target: &str,
        outcome: &str,
        detail: serde_json::Value,
    ) -> Result<(), AuditUnavailable> {
        self.record(NewAuditEvent {
            at: chrono::Utc::now().naive_utc(),
            organization_id: organization_id.map(str::to_owned),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            outcome: outcome.to_owned(),
            request_id: crate::app::current_request_id(),
            detail,
        })
        .await
    }
}

/// Takes whatever is queued, appends it as one batch, acks; on shutdown drains and ends.
async fn commit_loop(db: Db, mut rx: mpsc::Receiver<Pending>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let stopping = async {
            if shutdown.wait_for(|stop| *stop).await.is_err() {
                // No sender left: no shutdown will come.
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            biased;
            first = rx.recv() => {
                let Some(first) = first else { return };
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                commit(&db, batch).await;
            }
            () = stopping => {
                rx.close();
                let mut batch = Vec::new();
                while let Some(p) = rx.recv().await {
                    batch.push(p);
                    if batch.len() == MAX_BATCH {
                        commit(&db, std::mem::take(&mut batch)).await;
                    }
                }
                commit(&db, batch).await;
                return;
            }
        }
    }
}

async fn commit(db: &Db, batch: Vec<Pending>) {
    if batch.is_empty() {
        return;
    }
    let (events, acks): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| (p.event, p.ack)).unzip();
    let ok = match db.append_audit(&events).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, events = events.len(), "cannot append audit events");
            false
        }
    };
    for ack in acks {
        let _ = ack.send(ok);
    }
}

/// Whether a path is part of the audited API (`/v1/…`).
fn audited(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

fn clip(value: &str) -> String {
    value.chars().take(MAX_VALUE).collect()
}

/// Records every `/v1/…` request (see the module docs); use with
/// `actix_web::middleware::from_fn`, inside the request-id middleware.
pub(crate) async fn audit_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let Some(state) = state.filter(|_| audited(req.path())) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let at = chrono::Utc::now().naive_utc();
    let method = req.method().as_str().to_owned();
    // The path alone (never the query), for requests that match no route.
    let path = clip(req.path());
    let res = match next.call(req).await {
        Ok(res) => res,
        Err(err) => {
            // An error no handler turned into an answer: record it, then pass it on.
            let status = err.as_response_error().status_code().as_u16();
            let event = NewAuditEvent {
                at,
                organization_id: None,
                actor: "anonymous".into(),
                action: format!("{method} unmatched"),
                target: format!("path={path}"),
                outcome: status.to_string(),
                request_id: crate::app::current_request_id(),
                detail: serde_json::json!({}),
            };
            state.audit.record(event).await.map_err(unavailable)?;
            return Err(err);
        }
    };
    let event = {
        let request = res.request();
        let extensions = request.extensions();
        let (organization_id, actor) = match extensions.get::<Caller>() {
            Some(Caller::Organization {
                organization_id,
                key_id,
            }) => (Some(organization_id.clone()), format!("key:{key_id}")),
            Some(Caller::Admin) => (None, "admin".to_owned()),
            None => (None, "anonymous".to_owned()),
        };
        let (action, target) = match request.match_pattern() {
            Some(pattern) => (
                format!("{method} {pattern}"),
                request
                    .match_info()
                    .iter()
                    .map(|(name, value)| format!("{name}={}", clip(value)))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            None => (format!("{method} unmatched"), format!("path={path}")),
        };
        let request_id = extensions
            .get::<crate::app::RequestId>()
            .map(|id| id.0.clone())
            .or_else(crate::app::current_request_id);
        NewAuditEvent {
            at,
            organization_id,
            actor,
            action,
            target,
            outcome: res.status().as_u16().to_string(),
            request_id,
            detail: serde_json::json!({}),
        }
    };
    let action = event.action.clone();
    match state.audit.record(event).await {
        Ok(()) => Ok(res.map_into_boxed_body()),
        Err(e) => {
            tracing::error!(route = %action, error = %e, "request not answered: its audit event is not durable");
            let (request, _) = res.into_parts();
            let answer = unavailable(e).error_response();
            Ok(ServiceResponse::new(request, answer).map_into_boxed_body())
        }
    }
}

fn unavailable(_: AuditUnavailable) -> ApiError {
    ApiError::Unavailable("the audit trail is unavailable; retry shortly".into())
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::{App, test, web};
    use tenantlink_store::testing::TestDb;

    use super::audit_middleware;
    use crate::testing::{self, ADMIN_KEY};

    fn get(uri: &str, key: &str) -> test::TestRequest {
        test::TestRequest::get()
            .uri(uri)
            .insert_header(("authorization", format!("Bearer {key}")))
    }

    #[actix_web::test]
    async fn every_api_call_is_in_the_trail_and_each_organization_sees_only_its_own() {
        for db in TestDb::all().await {
            let backend = db.backend();
            let (state, stop) =
                testing::state(db.db.clone(), testing::offline_cloud(), testing::settings());
            let audit = state.audit.clone();
            let app = test::init_service(
                App::new()
                    .wrap(from_fn(audit_middleware))
                    .configure(crate::app::configure(web::Data::new(state))),
            )
            .await;
            let (org_a, key_a) = testing::org_with_key(&db.db, "Contoso").await;
            let (org_b, key_b) = testing::org_with_key(&db.db, "Fabrikam").await;

            let calls = [
                (get("/v1/organization", &key_a), 200),
                (
                    get("/v1/organization?code=OAUTHCODE123&state=S3CR3T", &key_a),
                    200,
                ),
                (get("/v1/organization", &key_b), 200),
                (get("/v1/organization", "tlk_0123_wrong"), 401),
                (get("/v1/organizations", ADMIN_KEY), 200),
                (
                    get(&format!("/v1/organizations/{org_a}/api-keys"), ADMIN_KEY),
                    200,
                ),
                (get("/v1/no-such-thing?token=S3CR3T", &key_a), 404),
                (get("/health", &key_a), 200),
            ];
            for (req, status) in calls {
                let res = test::call_service(&app, req.to_request()).await;
                assert_eq!(res.status(), status, "{backend:?}");
            }
            audit
                .record_action(
                    Some(&org_b),
                    "worker:test",
                    "sync.run",
                    "connection_id=c1 run_id=r1",
                    "complete",
                    serde_json::json!({"type": "full"}),
                )
                .await
                .unwrap();

            // Organization A: its two calls (by its key), nothing of B, admin or anonymous.
            let res: serde_json::Value =
                test::call_and_read_body_json(&app, get("/v1/audit", &key_a).to_request()).await;
            let items = res["items"].as_array().unwrap();
            let actions: Vec<_> = items
                .iter()
                .map(|e| e["action"].as_str().unwrap())
                .collect();
            // (The unmatched route ran no authentication: its event is anonymous.)
            assert_eq!(
                actions,
                ["GET /v1/organization", "GET /v1/organization"],
                "{backend:?}"
            );
            let key_id = &key_a[4..36];
            assert!(items.iter().all(|e| e["actor"] == format!("key:{key_id}")));
            assert_eq!(items[0]["outcome"], "200");
            assert_eq!(items[0]["target"], "");
            assert!(items[0].get("prev_hash").is_none() && items[0].get("seq").is_none());
            assert_eq!(items[0]["hash"].as_str().unwrap().len(), 64);

            // Organization B: its call, its sync run, and nothing of A.
            let res: serde_json::Value =
                test::call_and_read_body_json(&app, get("/v1/audit", &key_b).to_request()).await;
            let items = res["items"].as_array().unwrap();
            assert_eq!(items.len(), 2, "{backend:?}: {res}");
            assert_eq!(items[0]["action"], "sync.run");
            assert_eq!(items[0]["actor"], "worker:test");
            assert_eq!(items[0]["target"], "connection_id=c1 run_id=r1");
            assert_eq!(items[0]["detail"]["type"], "full");
            assert_eq!(items[1]["action"], "GET /v1/organization");

            // The whole trail: every /v1 call (the two listings included), not /health;
            // path parameters as targets; no query string, no key.
            let all = db.db.audit_chain_events(0, 1000).await.unwrap();
            assert_eq!(all.len(), 10, "{backend:?}: {all:?}");
            let admin = all
                .iter()
                .find(|e| e.action == "GET /v1/organizations/{organization_id}/api-keys")
                .unwrap();
            assert_eq!(admin.actor, "admin");
            assert_eq!(admin.organization_id, None);
            assert_eq!(admin.target, format!("organization_id={org_a}"));
            let anonymous = all.iter().find(|e| e.outcome == "401").unwrap();
            assert_eq!(anonymous.actor, "anonymous");
            assert_eq!(anonymous.organization_id, None);
            let unmatched = all.iter().find(|e| e.outcome == "404").unwrap();
            assert_eq!(unmatched.action, "GET unmatched");
            assert_eq!(unmatched.target, "path=/v1/no-such-thing");
            let text = format!("{all:?}");
            for secret in ["OAUTHCODE123", "S3CR3T", "?", &key_a[37..], &key_b[37..]] {
                assert!(!text.contains(secret), "{secret} in the trail");
            }
            let verified = db.db.verify_audit_chain(3).await.unwrap();
            assert_eq!(verified.first_broken, None);
            assert_eq!(verified.events_checked, 10);

            // After shutdown, events are still appended (directly).
            stop.send(true).unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let res = test::call_service(&app, get("/v1/organization", &key_a).to_request()).await;
            assert_eq!(res.status(), 200);
            assert!(db.db.verify_audit_chain(100).await.unwrap().is_intact());
            assert_eq!(
                db.db
                    .audit_events(&org_a, &Default::default(), None, 100)
                    .await
                    .unwrap()
                    .len(),
                4
            );
        }
    }

    #[actix_web::test]
    async fn the_listing_pages_with_an_opaque_cursor_and_refuses_bad_input() {
        for db in TestDb::all().await {
            let backend = db.backend();
            let (state, _stop) =
                testing::state(db.db.clone(), testing::offline_cloud(), testing::settings());
            let app = test::init_service(
                App::new()
                    .wrap(from_fn(audit_middleware))
                    .configure(crate::app::configure(web::Data::new(state))),
            )
            .await;
            let (_, key_a) = testing::org_with_key(&db.db, "Contoso").await;
            let (_, key_b) = testing::org_with_key(&db.db, "Fabrikam").await;
            for _ in 0..5 {
                let req = get("/v1/organization", &key_a).to_request();
                assert_eq!(test::call_service(&app, req).await.status(), 200);
            }
            let mut seen = Vec::new();
            let mut uri = "/v1/audit?limit=2&action=GET%20/v1/organization".to_owned();
            let mut cursors = Vec::new();
            loop {
                let page: serde_json::Value =
                    test::call_and_read_body_json(&app, get(&uri, &key_a).to_request()).await;
                for item in page["items"].as_array().unwrap() {
                    seen.push(item["hash"].as_str().unwrap().to_owned());
                }
                match page["next_cursor"].as_str() {
                    Some(c) => {
                        cursors.push(c.to_owned());
                        uri = format!("/v1/audit?limit=2&action=GET%20/v1/organization&cursor={c}");
                    }
                    None => break,
                }
            }
            assert_eq!(seen.len(), 5, "{backend:?}");
            seen.dedup();
            assert_eq!(seen.len(), 5);

            let cursor = &cursors[0];
            let mut tampered = cursor.clone().into_bytes();
            let i = tampered.len() / 2;
            tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap();
            let from = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let bad = [
                (format!("/v1/audit?cursor={tampered}"), key_a.as_str()),
                ("/v1/audit?cursor=garbage".to_owned(), key_a.as_str()),
                // A's cursor is not B's.
                (format!("/v1/audit?cursor={cursor}"), key_b.as_str()),
                ("/v1/audit?limit=0".to_owned(), key_a.as_str()),
                ("/v1/audit?limit=501".to_owned(), key_a.as_str()),
                ("/v1/audit?limit=x".to_owned(), key_a.as_str()),
                ("/v1/audit?from=yesterday".to_owned(), key_a.as_str()),
                (
                    format!("/v1/audit?from={from}&to=2000-01-01T00:00:00Z"),
                    key_a.as_str(),
                ),
            ];
            for (uri, key) in bad {
                let res = test::call_service(&app, get(&uri, key).to_request()).await;
                assert_eq!(res.status(), 400, "{backend:?} {uri}");
            }
            let req = get("/v1/audit", ADMIN_KEY).to_request();
            assert_eq!(test::call_service(&app, req).await.status(), 401);
            let res: serde_json::Value = test::call_and_read_body_json(
                &app,
                get(&format!("/v1/audit?from={from}&limit=500"), &key_a).to_request(),
            )
            .await;
            // Only the refused requests of this second (and no GET /v1/organization).
            assert!(
                res["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|e| e["action"] == "GET /v1/audit"),
                "{res}"
            );
            assert!(db.db.verify_audit_chain(4).await.unwrap().is_intact());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_records_are_group_committed_into_one_intact_chain() {
        for db in TestDb::all().await {
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let (log, task) = super::AuditLog::start(db.db.clone(), stop_rx);
            let started = std::time::Instant::now();
            let mut calls = Vec::new();
            for i in 0..1000 {
                let log = log.clone();
                calls.push(tokio::spawn(async move {
                    log.record_action(
                        Some("org"),
                        "system",
                        "test.event",
                        &format!("n={i}"),
                        "complete",
                        serde_json::json!({}),
                    )
                    .await
                }));
            }
            for call in calls {
                call.await.unwrap().unwrap();
            }
            let elapsed = started.elapsed();
            stop_tx.send(true).unwrap();
            task.unwrap().await.unwrap();
            let verified = db.db.verify_audit_chain(250).await.unwrap();
            assert_eq!(verified.first_broken, None);
            assert_eq!(verified.events_checked, 1000);
            // Group commit: tens of milliseconds here (one transaction per queued batch);
            // the bound is loose for slow machines.
            assert!(elapsed < std::time::Duration::from_secs(10), "{elapsed:?}");
            eprintln!(
                "{:?}: 1000 concurrent events durable in {elapsed:?}",
                db.backend()
            );
        }
    }
}
