//! Throttling and injected faults. Faults (a share of 429, 500 and 503 answers, dropped
//! connections) apply to whole HTTP requests; throttling budgets apply per request, batch
//! items included.
//!
//! The budgets are those of "Microsoft Graph service-specific throttling limits":
//! - identity and access (users, groups, directory objects): a resource-unit budget per
//!   app and tenant of 3,500 / 5,000 / 8,000 per 10 seconds for tenants under 50 users, 50 to
//!   500 users and above 500 users; 150,000 per 20 seconds per app across tenants; writes
//!   3,000 per 150 seconds per app and tenant, 70,000 per 5 minutes per app and 18,000 per
//!   5 minutes per tenant. Costs: `GET users` 2, `GET groups/{id}/members` 3,
//!   `GET groups/{id}/transitiveMembers` 5, `GET users/{id}/memberOf` and
//!   `transitiveMemberOf` 2, anything else 1; `$select` -1, `$expand` +1, `$top` under 20 -1;
//!   never below 1. Answers carry `x-ms-resource-unit`, and `x-ms-throttle-limit-percentage`
//!   past 80% of the budget;
//! - identity and access reports (`/auditLogs`): 5 requests per 10 seconds per app and tenant;
//! - Intune devices (`/deviceManagement`): 2,000 requests per 20 seconds per app and tenant
//!   (writes 200), 4,000 per tenant for all apps (writes 400);
//! - security alerts (`/security`): 150 requests per minute per app and tenant;
//! - every request: 130,000 per 10 seconds per app across tenants.
//!
//! `Aggressive` divides every budget by ten. Windows slide: a request is admitted when its
//! cost fits what the window's earlier requests left, and a refused one learns in
//! `Retry-After` when enough of them will have aged out.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use actix_web::HttpResponse;

use super::auth::Caller;
use super::{GraphRequest, GraphResponse, graph_error_with};
use crate::config::ThrottleMode;
use crate::model::ObjState;
use crate::state::{Faults, State};

/// Throttling windows per limit and scope (app, tenant, or app and tenant).
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    windows: HashMap<(&'static str, String), Window>,
}

/// What the requests of one scope spent in the last `period`, oldest first.
#[derive(Debug, Default)]
struct Window {
    spent: VecDeque<(Instant, u64)>,
    total: u64,
}

impl Window {
    fn prune(&mut self, now: Instant, period: Duration) {
        while let Some(&(at, cost)) = self.spent.front() {
            if now.duration_since(at) < period {
                break;
            }
            self.spent.pop_front();
            self.total -= cost;
        }
    }

    /// Seconds until `cost` more fits in `budget` (at least 1).
    fn retry_after(&self, now: Instant, period: Duration, budget: u64, cost: u64) -> u64 {
        let need = (self.total + cost).saturating_sub(budget);
        let mut freed = 0;
        for &(at, spent) in &self.spent {
            freed += spent;
            if freed >= need {
                let wait = (at + period).saturating_duration_since(now);
                return wait.as_secs_f64().ceil().max(1.0) as u64;
            }
        }
        period.as_secs().max(1)
    }
}

/// One limit a request counts against.
struct Rule {
    /// Which limit (part of the window key).
    limit: &'static str,
    /// The scope's identifiers (the rest of the key).
    scope_key: String,
    budget: u64,
    period: Duration,
    cost: u64,
    /// `x-ms-throttle-scope` when this rule throttles.
    scope_header: String,
    /// `x-ms-throttle-information` when this rule throttles.
    information: &'static str,
    /// Whether this is the identity resource-unit budget (drives the percentage header).
    resource_units: bool,
}

/// What a request admitted by the throttle carries to [`finish`].
#[derive(Debug, Default)]
pub(crate) struct Ticket {
    /// `x-ms-resource-unit`, for identity requests.
    resource_unit: Option<u64>,
    /// Share of the resource-unit budget used, when past 0.8.
    limit_percentage: Option<f64>,
}

/// The service a request path belongs to, for throttling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Identity,
    Reports,
    Intune,
    Security,
}

fn service(segments: &[&str]) -> Option<Service> {
    match segments.first().copied() {
        None | Some("$batch") => None,
        Some("auditLogs") => Some(Service::Reports),
        Some("deviceManagement") => Some(Service::Intune),
        Some("security") => Some(Service::Security),
        Some(_) => Some(Service::Identity),
    }
}

/// The documented resource-unit cost of an identity request and its write cost.
fn identity_cost(req: &GraphRequest, segments: &[&str]) -> (u64, u64) {
    let get = req.method.eq_ignore_ascii_case("GET");
    let base: i64 = match (get, segments) {
        (true, ["users" | "applications" | "oauth2PermissionGrants"]) => 2,
        (true, ["subscribedSkus" | "contracts"]) => 3,
        (true, ["groups", _, "members"]) => 3,
        (true, ["groups", _, "transitiveMembers"]) => 5,
        (
            true,
            [
                "me" | "users",
                ..,
                "memberOf" | "transitiveMemberOf" | "ownedObjects" | "licenseDetails",
            ],
        ) => 2,
        (true, ["servicePrincipals", _, "appRoleAssignments"]) => 2,
        (false, ["directoryObjects", "getByIds"] | ["getObjectsById"]) => 3,
        (
            false,
            [
                "me" | "users",
                ..,
                "checkMemberGroups" | "checkMemberObjects",
            ],
        ) => 4,
        (false, ["me" | "users", .., "getMemberGroups" | "getMemberObjects"]) => 2,
        _ => 1,
    };
    let mut cost = base;
    if req.query("$select").is_some() {
        cost -= 1;
    }
    if req.query("$expand").is_some() {
        cost += 1;
    }
    if req
        .query("$top")
        .and_then(|t| t.trim().parse::<u32>().ok())
        .is_some_and(|t| t < 20)
    {
        cost -= 1;
    }
    let write_cost = match (get, segments) {
        (true, _) => 0,
        (false, ["directoryObjects", "getByIds"] | ["getObjectsById"]) => 0,
        (false, ["me" | "users", .., last]) if last.starts_with("checkMember") => 0,
        (false, ["me" | "users", .., last]) if last.starts_with("getMember") => 0,
        (false, _) => 1,
    };
    (u64::try_from(cost.max(1)).unwrap_or(1), write_cost)
}

/// The app+tenant resource-unit budget per 10 seconds by tenant size (users).
fn tenant_budget(users: usize) -> u64 {
    match users {
        0..50 => 3_500,
        50..=500 => 5_000,
        _ => 8_000,
    }
}

fn rules(state: &State, caller: &Caller, req: &GraphRequest, scale: u64) -> Vec<Rule> {
    let segments = req.segments();
    let Some(service) = service(&segments) else {
        return Vec::new();
    };
    let app = caller.client_id.as_str();
    let tenant = caller.tenant_id.as_str();
    let app_tenant = format!("{app}/{tenant}");
    let budget = |n: u64| (n / scale).max(1);
    let write = !req.method.eq_ignore_ascii_case("GET");
    let rule = |limit, key: &str, n, secs, cost, scope: &str, info| Rule {
        limit,
        scope_key: key.to_owned(),
        budget: budget(n),
        period: Duration::from_secs(secs),
        cost,
        scope_header: format!("{scope}/{app}/{tenant}"),
        information: info,
        resource_units: false,
    };
    let mut out = vec![rule(
        "global",
        app,
        130_000,
        10,
        1,
        "Application/ReadWrite",
        "RequestLimitExceeded",
    )];
    match service {
        Service::Identity => {
            let users = state.read().tenants[caller.tenant_pos]
                .dir
                .users
                .iter()
                .filter(|u| u.state == ObjState::Active)
                .count();
            let (units, write_units) = identity_cost(req, &segments);
            let mut per_pair = rule(
                "identity-ru",
                &app_tenant,
                tenant_budget(users),
                10,
                units,
                "Tenant_Application/ReadWrite",
                "ResourceUnitLimitExceeded",
            );
            per_pair.resource_units = true;
            out.push(per_pair);
            out.push(rule(
                "identity-ru-app",
                app,
                150_000,
                20,
                units,
                "Application/ReadWrite",
                "ResourceUnitLimitExceeded",
            ));
            if write_units > 0 {
                out.push(rule(
                    "identity-write",
                    &app_tenant,
                    3_000,
                    150,
                    write_units,
                    "Tenant_Application/Write",
                    "WriteLimitExceeded",
                ));
                out.push(rule(
                    "identity-write-app",
                    app,
                    70_000,
                    300,
                    write_units,
                    "Application/Write",
                    "WriteLimitExceeded",
                ));
                out.push(rule(
                    "identity-write-tenant",
                    tenant,
                    18_000,
                    300,
                    write_units,
                    "Tenant/Write",
                    "WriteLimitExceeded",
                ));
            }
        }
        Service::Reports => out.push(rule(
            "reports",
            &app_tenant,
            5,
            10,
            1,
            "Tenant_Application/ReadWrite",
            "RequestLimitExceeded",
        )),
        Service::Intune => {
            out.push(rule(
                "intune",
                &app_tenant,
                2_000,
                20,
                1,
                "Tenant_Application/ReadWrite",
                "RequestLimitExceeded",
            ));
            out.push(rule(
                "intune-tenant",
                tenant,
                4_000,
                20,
                1,
                "Tenant/ReadWrite",
                "RequestLimitExceeded",
            ));
            if write {
                out.push(rule(
                    "intune-write",
                    &app_tenant,
                    200,
                    20,
                    1,
                    "Tenant_Application/Write",
                    "WriteLimitExceeded",
                ));
                out.push(rule(
                    "intune-write-tenant",
                    tenant,
                    400,
                    20,
                    1,
                    "Tenant/Write",
                    "WriteLimitExceeded",
                ));
            }
        }
        Service::Security => out.push(rule(
            "security",
            &app_tenant,
            150,
            60,
            1,
            "Tenant_Application/ReadWrite",
            "RequestLimitExceeded",
        )),
    }
    out
}

/// Admits a request or answers 429.
pub(crate) fn admit(
    state: &State,
    caller: &Caller,
    req: &GraphRequest,
) -> Result<Ticket, GraphResponse> {
    let scale = match state.faults().throttling {
        ThrottleMode::Off => {
            // No budgets, but identity answers still say what they cost.
            let segments = req.segments();
            let resource_unit = (service(&segments) == Some(Service::Identity))
                .then(|| identity_cost(req, &segments).0);
            return Ok(Ticket {
                resource_unit,
                limit_percentage: None,
            });
        }
        ThrottleMode::Realistic => 1,
        ThrottleMode::Aggressive => 10,
    };
    let rules = rules(state, caller, req, scale);
    let now = Instant::now();
    let mut throttle = state
        .throttle
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for rule in &rules {
        let window = throttle
            .windows
            .entry((rule.limit, rule.scope_key.clone()))
            .or_default();
        window.prune(now, rule.period);
        if window.total + rule.cost > rule.budget {
            let retry = window.retry_after(now, rule.period, rule.budget, rule.cost);
            return Err(graph_error_with(
                429,
                "TooManyRequests",
                "Too many requests. Please retry after the time given in the Retry-After header.",
                vec![
                    ("Retry-After".into(), retry.to_string()),
                    ("x-ms-throttle-scope".into(), rule.scope_header.clone()),
                    ("x-ms-throttle-information".into(), rule.information.into()),
                ],
            ));
        }
    }
    let mut ticket = Ticket::default();
    for rule in &rules {
        let window = throttle
            .windows
            .entry((rule.limit, rule.scope_key.clone()))
            .or_default();
        window.spent.push_back((now, rule.cost));
        window.total += rule.cost;
        if rule.resource_units {
            ticket.resource_unit = Some(rule.cost);
            let used = window.total as f64 / rule.budget as f64;
            ticket.limit_percentage = (used > 0.8).then_some(used);
        }
    }
    Ok(ticket)
}

/// Adds throttling headers to an answer.
pub(crate) fn finish(
    _state: &State,
    _caller: &Caller,
    ticket: Ticket,
    mut response: GraphResponse,
) -> GraphResponse {
    if let Some(units) = ticket.resource_unit {
        response
            .headers
            .push(("x-ms-resource-unit".into(), units.to_string()));
    }
    if let Some(share) = ticket.limit_percentage {
        response.headers.push((
            "x-ms-throttle-limit-percentage".into(),
            format!("{share:.2}"),
        ));
    }
    response
}

/// A fault chosen for one HTTP request.
pub(crate) enum Injected {
    /// Answer this instead.
    Respond(GraphResponse),
    /// Drop the connection part way through the answer.
    Drop,
}

fn roll() -> f64 {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).expect("the OS random number generator works");
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Picks the fault for this request, if any, from the configured shares.
pub(crate) fn injected_fault(faults: &Faults) -> Option<Injected> {
    let total = faults.rate_429 + faults.rate_500 + faults.rate_503 + faults.drop_rate;
    if total <= 0.0 {
        return None;
    }
    let r = roll();
    let mut edge = faults.rate_429;
    if r < edge {
        let retry = 1 + (roll() * 2.0) as u64;
        return Some(Injected::Respond(graph_error_with(
            429,
            "TooManyRequests",
            "Too many requests. Please retry after the time given in the Retry-After header.",
            vec![("Retry-After".into(), retry.to_string())],
        )));
    }
    edge += faults.rate_500;
    if r < edge {
        return Some(Injected::Respond(graph_error_with(
            500,
            "generalException",
            "An internal server error occurred.",
            Vec::new(),
        )));
    }
    edge += faults.rate_503;
    if r < edge {
        return Some(Injected::Respond(graph_error_with(
            503,
            "serviceNotAvailable",
            "The service is temporarily unavailable. Please retry later.",
            vec![("Retry-After".into(), "1".into())],
        )));
    }
    edge += faults.drop_rate;
    (r < edge).then_some(Injected::Drop)
}

/// An answer whose body breaks off: the client sees the connection drop mid-response.
pub(crate) fn dropped_connection() -> HttpResponse {
    let chunks: Vec<Result<actix_web::web::Bytes, std::io::Error>> = vec![
        Ok(actix_web::web::Bytes::from_static(b"{\"value\":[{\"id\":")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fault injection: connection dropped",
        )),
    ];
    HttpResponse::Ok()
        .content_type("application/json")
        .streaming(futures_stream(chunks))
}

fn futures_stream(
    items: Vec<Result<actix_web::web::Bytes, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<actix_web::web::Bytes, std::io::Error>> {
    struct Iter(std::vec::IntoIter<Result<actix_web::web::Bytes, std::io::Error>>);
    impl futures_core::Stream for Iter {
        type Item = Result<actix_web::web::Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Iter(items.into_iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, query: &[(&str, &str)]) -> GraphRequest {
        GraphRequest {
            method: "GET".into(),
            path: path.into(),
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            headers: Vec::new(),
            body: None,
            base_url: String::new(),
        }
    }

    fn cost(req: &GraphRequest) -> u64 {
        identity_cost(req, &req.segments()).0
    }

    #[test]
    fn documented_costs() {
        assert_eq!(cost(&get("/users", &[])), 2);
        assert_eq!(cost(&get("/users", &[("$select", "id")])), 1);
        assert_eq!(cost(&get("/users", &[("$select", "id"), ("$top", "5")])), 1);
        assert_eq!(cost(&get("/users/delta", &[])), 1);
        assert_eq!(cost(&get("/groups/g/members", &[])), 3);
        assert_eq!(
            cost(&get("/groups/g/transitiveMembers", &[("$expand", "x")])),
            6
        );
        assert_eq!(cost(&get("/users/u/memberOf", &[])), 2);
        assert_eq!(tenant_budget(49), 3_500);
        assert_eq!(tenant_budget(50), 5_000);
        assert_eq!(tenant_budget(501), 8_000);
    }

    #[test]
    fn window_frees_budget_as_requests_age() {
        let mut w = Window::default();
        let start = Instant::now();
        let period = Duration::from_secs(10);
        w.spent.push_back((start, 3));
        w.spent.push_back((start + Duration::from_secs(4), 3));
        w.total = 6;
        // Budget 6: one more unit must wait for the first entry (10 s after start).
        assert_eq!(
            w.retry_after(start + Duration::from_secs(1), period, 6, 1),
            9
        );
        w.prune(start + Duration::from_secs(10), period);
        assert_eq!(w.total, 3);
    }
}
