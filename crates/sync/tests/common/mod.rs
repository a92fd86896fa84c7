//! Acceptance harness of the sync engine: an emulator with a small seeded tenant, Graph
//! clients signing in with the identity crate's `AppCredential`, a connection in each test
//! database, and a comparison of what the database holds with the emulator's ground truth
//! (`GET /_emulator/tenants/{tenant}/state`).

#![expect(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses part of the harness"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use tenantlink_emulator::{AppCredentials, Emulator, EmulatorConfig, TenantInfo, TenantSize};
use tenantlink_graph::{GraphClient, GraphClientOptions, RetryPolicy};
use tenantlink_identity::{
    AppCredentialConfig, ClientAuth, Cloud, IdentityClient, IdentityClientOptions, SecretString,
};
use tenantlink_store::testing::TestDb;
use tenantlink_store::{AuthKind, Db, NewConnection};
use tenantlink_sync::{ProgressEvent, Resource, RunReport, SyncEngine, SyncOptions, SyncType};

/// Page size asked of Graph: small, so the small tenant takes many pages.
pub const PAGE_SIZE: u32 = 20;

/// How far back audit data is synced in these tests: past the seeded 30 days, so every
/// record of the emulator is in the window and no record sits on its edge.
pub const LOOKBACK: Duration = Duration::from_secs(60 * 24 * 3600);

/// The longest a sync run may take before the test fails (a generous bound, not a
/// measurement).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// The tenant seeded for these tests: the emulator's small tenant.
pub const SIZE: TenantSize = TenantSize::SMALL;

/// What a Graph client needs, cloneable and `Send`, so a client can be built in another
/// runtime (the kill-and-resume test runs its first run on a runtime it then kills).
#[derive(Clone)]
pub struct GraphSetup {
    pub https_url: String,
    pub graph_url: String,
    pub ca_pem: String,
    pub tenant_id: String,
    pub app: AppCredentials,
    pub retry: RetryPolicy,
}

impl GraphSetup {
    /// A Graph client signing in with the identity crate's app credential, asking for
    /// [`PAGE_SIZE`] objects a page.
    pub fn client(&self) -> GraphClient {
        self.client_paged(PAGE_SIZE)
    }

    /// [`Self::client`] asking for `page_size` objects a page.
    pub fn client_paged(&self, page_size: u32) -> GraphClient {
        let identity = IdentityClient::new(
            Cloud::Custom {
                base_url: self.https_url.clone(),
            },
            &IdentityClientOptions {
                root_certificates_pem: vec![self.ca_pem.clone()],
                ..IdentityClientOptions::default()
            },
        )
        .expect("identity client");
        let credential = identity
            .app_credential(AppCredentialConfig {
                tenant_id: self.tenant_id.clone(),
                client_id: self.app.client_id.clone(),
                auth: ClientAuth::Secret(SecretString::from(self.app.client_secret.clone())),
            })
            .expect("app credential");
        GraphClient::new(
            Arc::new(credential),
            GraphClientOptions {
                base_url: self.graph_url.clone(),
                extra_root_certificates: vec![self.ca_pem.clone()],
                page_size: Some(page_size),
                retry: self.retry.clone(),
                ..GraphClientOptions::default()
            },
        )
        .expect("Graph client")
    }
}

/// A retry policy that rides out injected faults quickly: many retries, short backoffs.
pub fn patient_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 60,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(500),
        budget: Duration::from_secs(300),
    }
}

/// A running emulator with one small tenant and a control API client.
pub struct Harness {
    pub emulator: Emulator,
    pub control: reqwest::Client,
}

impl Harness {
    /// One small tenant, seed `seed`, no throttling.
    pub fn start(seed: u64) -> Self {
        let emulator = Emulator::start(EmulatorConfig {
            seed,
            tenants: 1,
            size: SIZE,
            ..EmulatorConfig::default()
        })
        .expect("the emulator starts");
        let ca = reqwest::Certificate::from_pem(emulator.ca_pem().as_bytes()).expect("CA");
        let control = reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .expect("control client");
        Self { emulator, control }
    }

    pub fn tenant_info(&self) -> &TenantInfo {
        &self.emulator.tenants()[0]
    }

    pub fn tenant(&self) -> String {
        self.tenant_info().tenant_id.clone()
    }

    pub fn domain(&self) -> String {
        self.tenant_info().domain.clone()
    }

    /// How to reach Graph as `app`.
    pub fn setup(&self, app: &AppCredentials) -> GraphSetup {
        GraphSetup {
            https_url: self.emulator.https_url().to_owned(),
            graph_url: self.emulator.graph_url(),
            ca_pem: self.emulator.ca_pem(),
            tenant_id: self.tenant(),
            app: app.clone(),
            retry: patient_retry(),
        }
    }

    /// How to reach Graph as the connector app (every permission).
    pub fn connector(&self) -> GraphSetup {
        self.setup(&self.tenant_info().connector_app)
    }

    /// How to reach Graph as the limited app (`User.Read.All` only).
    pub fn limited(&self) -> GraphSetup {
        self.setup(&self.tenant_info().limited_app)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.https_url())
    }

    /// A control API call (`{t}` in `path` is the tenant): the status and the JSON answer.
    pub async fn try_control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let path = path.replace("{t}", &self.tenant());
        let mut req = self.control.request(method, self.url(&path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("control API");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A control API call that must succeed.
    pub async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.try_control(method, path, body.clone()).await;
        assert!(
            (200..300).contains(&status),
            "control {path} {body:?}: {status} {answer}"
        );
        answer
    }

    /// Sets fault injection.
    pub async fn faults(&self, faults: Value) {
        self.control(reqwest::Method::PUT, "/_emulator/faults", Some(faults))
            .await;
    }

    /// The tenant's ground truth, audit records included.
    pub async fn truth(&self) -> Truth {
        let state = self
            .control(
                reqwest::Method::GET,
                "/_emulator/tenants/{t}/state?include_audit=true",
                None,
            )
            .await;
        Truth::from_state(&state)
    }
}

/// An organization and a connection to the harness's tenant in one test database.
pub async fn connection(db: &Db, tenant_id: &str, client_id: &str) -> String {
    let org = db
        .create_organization(&format!("acceptance-{}", uuid_like()))
        .await
        .expect("create organization");
    db.create_connection(NewConnection {
        organization_id: org.id,
        tenant_id: tenant_id.to_owned(),
        client_id: client_id.to_owned(),
        auth_kind: AuthKind::ClientSecret,
        secret: None,
        secret_expires_at: None,
        granted_permissions: Vec::new(),
        missing_permissions: Vec::new(),
    })
    .await
    .expect("create connection")
    .id
}

fn uuid_like() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Sync options of these tests: the given type, the wide audit window.
pub fn options(sync_type: SyncType) -> SyncOptions {
    SyncOptions {
        sync_type,
        audit_lookback: LOOKBACK,
        ..SyncOptions::default()
    }
}

/// What a run reported through its progress callback.
#[derive(Debug, Default)]
pub struct Seen {
    /// `Page` events: pages this run fetched and wrote.
    pub pages: u64,
    /// `RunStarted { resumed }`.
    pub started_resumed: Option<bool>,
    /// `RunFinished` arrived.
    pub finished: bool,
}

/// Runs a sync to its end (within [`RUN_TIMEOUT`]), counting progress events.
pub async fn run(engine: &SyncEngine, options: &SyncOptions) -> (RunReport, Seen) {
    let pages = AtomicU64::new(0);
    let resumed = std::sync::Mutex::new(None);
    let finished = std::sync::atomic::AtomicBool::new(false);
    let progress = |event: &ProgressEvent| match event {
        ProgressEvent::Page { .. } => {
            pages.fetch_add(1, Ordering::SeqCst);
        }
        ProgressEvent::RunStarted { resumed: r, .. } => {
            *resumed.lock().expect("lock") = Some(*r);
        }
        ProgressEvent::RunFinished(_) => finished.store(true, Ordering::SeqCst),
        _ => {}
    };
    let report = tokio::time::timeout(RUN_TIMEOUT, engine.run(options, &progress))
        .await
        .expect("the run ends within the timeout")
        .expect("the run succeeds");
    let seen = Seen {
        pages: pages.load(Ordering::SeqCst),
        started_resumed: *resumed.lock().expect("lock"),
        finished: finished.load(Ordering::SeqCst),
    };
    (report, seen)
}

/// The report of one resource.
pub fn resource(report: &RunReport, resource: Resource) -> &tenantlink_sync::ResourceReport {
    report
        .resources
        .iter()
        .find(|r| r.resource == resource)
        .unwrap_or_else(|| panic!("the report has no {resource:?}: {report:#?}"))
}

/// Every resource the engine syncs in a full run.
pub const ALL: [Resource; 6] = [
    Resource::Users,
    Resource::Groups,
    Resource::Devices,
    Resource::SignIns,
    Resource::DirectoryAudits,
    Resource::Alerts,
];

/// A short description of each resource's result, for failure messages.
pub fn summary(report: &RunReport) -> String {
    report
        .resources
        .iter()
        .map(|r| {
            format!(
                "{:?}: {:?} {:?} pages {} rows {} removed {} swept {} retries {} reason {:?} missing {:?} fell back {:?}",
                r.resource,
                r.mode,
                r.status,
                r.pages,
                r.rows,
                r.removed,
                r.swept,
                r.retries,
                r.reason,
                r.missing_permission,
                r.fell_back_to_full
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

fn opt(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.is_empty())
}

fn time_secs(v: &Value) -> Option<String> {
    let t = DateTime::parse_from_rfc3339(v.as_str()?).ok()?;
    Some(
        t.with_timezone(&Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
    )
}

fn naive_secs(t: &Option<NaiveDateTime>) -> Option<String> {
    t.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// A user as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    pub display_name: Option<String>,
    pub upn: Option<String>,
    pub department: Option<String>,
    pub job_title: Option<String>,
    pub account_enabled: Option<bool>,
    pub manager_id: Option<String>,
}

/// A group as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub mail_enabled: Option<bool>,
    pub security_enabled: Option<bool>,
}

/// A managed device as the tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceView {
    pub compliance_state: Option<String>,
    pub operating_system: Option<String>,
    pub last_sync: Option<String>,
    pub user_id: Option<String>,
}

/// The emulator's ground truth, in the shape the database is compared with.
#[derive(Debug, Clone)]
pub struct Truth {
    /// Active users.
    pub users: BTreeMap<String, UserView>,
    /// Soft-deleted users (in the recycle bin).
    pub soft_deleted_users: BTreeSet<String>,
    /// Active groups.
    pub groups: BTreeMap<String, GroupView>,
    /// Soft-deleted groups.
    pub soft_deleted_groups: BTreeSet<String>,
    /// Direct membership edges of active groups to active members: (group, member) → type.
    pub edges: BTreeMap<(String, String), String>,
    /// Devices not deleted.
    pub devices: BTreeMap<String, DeviceView>,
    /// Sign-in ids with their times.
    pub sign_ins: BTreeMap<String, DateTime<Utc>>,
    /// Directory audit ids with their times.
    pub audits: BTreeMap<String, DateTime<Utc>>,
    /// Alert ids.
    pub alerts: BTreeSet<String>,
}

fn record_times(state: &Value, key: &str, time_key: &str) -> BTreeMap<String, DateTime<Utc>> {
    state[key]
        .as_array()
        .unwrap_or_else(|| panic!("state has {key}"))
        .iter()
        .map(|r| {
            let id = r["id"].as_str().expect("record id").to_owned();
            let t = DateTime::parse_from_rfc3339(r[time_key].as_str().expect("record time"))
                .expect("ISO time")
                .with_timezone(&Utc);
            (id, t)
        })
        .collect()
}

impl Truth {
    fn from_state(state: &Value) -> Self {
        let mut users = BTreeMap::new();
        let mut soft_deleted_users = BTreeSet::new();
        for u in state["users"].as_array().expect("users") {
            let id = u["id"].as_str().expect("user id").to_owned();
            match u["_state"].as_str().unwrap_or("active") {
                "active" => {
                    users.insert(
                        id,
                        UserView {
                            display_name: text(&u["displayName"]),
                            upn: text(&u["userPrincipalName"]),
                            department: text(&u["department"]),
                            job_title: text(&u["jobTitle"]),
                            account_enabled: u["accountEnabled"].as_bool(),
                            manager_id: text(&u["managerId"]),
                        },
                    );
                }
                "softDeleted" => {
                    soft_deleted_users.insert(id);
                }
                _ => {}
            }
        }
        let mut groups = BTreeMap::new();
        let mut soft_deleted_groups = BTreeSet::new();
        let mut raw_edges = Vec::new();
        for g in state["groups"].as_array().expect("groups") {
            let id = g["id"].as_str().expect("group id").to_owned();
            match g["_state"].as_str().unwrap_or("active") {
                "active" => {
                    groups.insert(
                        id.clone(),
                        GroupView {
                            display_name: text(&g["displayName"]),
                            description: text(&g["description"]),
                            mail_enabled: g["mailEnabled"].as_bool(),
                            security_enabled: g["securityEnabled"].as_bool(),
                        },
                    );
                    for m in g["members"].as_array().expect("members") {
                        let kind = match m["@odata.type"].as_str() {
                            Some("#microsoft.graph.group") => "group",
                            _ => "user",
                        };
                        raw_edges.push((
                            id.clone(),
                            m["id"].as_str().expect("member id").to_owned(),
                            kind.to_owned(),
                        ));
                    }
                }
                "softDeleted" => {
                    soft_deleted_groups.insert(id);
                }
                _ => {}
            }
        }
        let edges = raw_edges
            .into_iter()
            .filter(|(_, m, kind)| match kind.as_str() {
                "group" => groups.contains_key(m),
                _ => users.contains_key(m),
            })
            .map(|(g, m, kind)| ((g, m), kind))
            .collect();
        let devices = state["managedDevices"]
            .as_array()
            .expect("devices")
            .iter()
            .filter(|d| d["_state"].as_str() != Some("deleted"))
            .map(|d| {
                (
                    d["id"].as_str().expect("device id").to_owned(),
                    DeviceView {
                        compliance_state: text(&d["complianceState"]),
                        operating_system: text(&d["operatingSystem"]),
                        last_sync: time_secs(&d["lastSyncDateTime"]),
                        user_id: text(&d["userId"]),
                    },
                )
            })
            .collect();
        Self {
            users,
            soft_deleted_users,
            groups,
            soft_deleted_groups,
            edges,
            devices,
            sign_ins: record_times(state, "signIns", "createdDateTime"),
            audits: record_times(state, "directoryAudits", "activityDateTime"),
            alerts: state["alerts"]
                .as_array()
                .expect("alerts")
                .iter()
                .map(|a| a["id"].as_str().expect("alert id").to_owned())
                .collect(),
        }
    }

    /// Ids of everything under `group`, through nested groups, from the ground truth.
    pub fn transitive_members(&self, group: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo = vec![group.to_owned()];
        while let Some(g) = todo.pop() {
            for ((eg, m), kind) in &self.edges {
                if *eg == g && out.insert(m.clone()) && kind == "group" {
                    todo.push(m.clone());
                }
            }
        }
        out
    }

    /// Groups with at least one group among their direct members.
    pub fn nested_groups(&self) -> Vec<String> {
        self.edges
            .iter()
            .filter(|(_, kind)| *kind == "group")
            .map(|((g, _), _)| g.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Ids of users that manage someone.
    pub fn managers(&self) -> BTreeSet<String> {
        self.users
            .values()
            .filter_map(|u| u.manager_id.clone())
            .collect()
    }
}

/// A snapshot of one connection's data in the database, for "nothing changed" checks.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub users: Vec<tenantlink_store::models::UserRow>,
    pub groups: Vec<tenantlink_store::models::GroupRow>,
    pub members: Vec<tenantlink_store::models::MemberRow>,
    pub devices: Vec<tenantlink_store::models::DeviceRow>,
    pub sign_ins: Vec<String>,
    pub audits: Vec<String>,
    pub alerts: Vec<String>,
}

pub async fn snapshot(db: &Db, conn: &str) -> Snapshot {
    Snapshot {
        users: db.users(conn).await.expect("users"),
        groups: db.groups(conn).await.expect("groups"),
        members: db.group_members(conn).await.expect("members"),
        devices: db.devices(conn).await.expect("devices"),
        sign_ins: db
            .sign_ins(conn)
            .await
            .expect("sign-ins")
            .into_iter()
            .map(|r| r.id)
            .collect(),
        audits: db
            .directory_audits(conn)
            .await
            .expect("audits")
            .into_iter()
            .map(|r| r.id)
            .collect(),
        alerts: db
            .alerts(conn)
            .await
            .expect("alerts")
            .into_iter()
            .map(|r| r.id)
            .collect(),
    }
}

/// Differences between two keyed maps, as lines for a failure message.
fn diff<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    what: &str,
    expected: &BTreeMap<K, V>,
    actual: &BTreeMap<K, V>,
    problems: &mut Vec<String>,
) {
    for (k, v) in expected {
        match actual.get(k) {
            None => problems.push(format!("{what} {k:?} missing from the database ({v:?})")),
            Some(a) if a != v => problems.push(format!(
                "{what} {k:?} differs:\n    emulator {v:?}\n    database {a:?}"
            )),
            Some(_) => {}
        }
    }
    for (k, v) in actual {
        if !expected.contains_key(k) {
            problems.push(format!(
                "{what} {k:?} in the database but not in the tenant ({v:?})"
            ));
        }
    }
}

fn unique<K: Ord + Clone + std::fmt::Debug, V>(
    what: &str,
    rows: Vec<(K, V)>,
    problems: &mut Vec<String>,
) -> BTreeMap<K, V> {
    let n = rows.len();
    let mut out = BTreeMap::new();
    for (k, v) in rows {
        if out.contains_key(&k) {
            problems.push(format!("{what} {k:?} stored twice"));
        }
        out.insert(k, v);
    }
    if out.len() != n {
        problems.push(format!("{what}: {n} rows for {} keys", out.len()));
    }
    out
}

/// Asserts that what the database holds for `conn` is the ground truth: active users,
/// groups, direct membership edges, devices, audit data ids within the lookback window,
/// soft-deleted users (and groups) only as rows marked deleted, every id in
/// `must_be_soft_deleted` present and marked deleted, row counts without doubles, and
/// transitive membership of every nested group.
pub async fn assert_matches(
    label: &str,
    db: &Db,
    conn: &str,
    truth: &Truth,
    must_be_soft_deleted: &[String],
) {
    let mut problems = Vec::new();

    let rows = db.users(conn).await.expect("users");
    let deleted_users: BTreeSet<String> = rows
        .iter()
        .filter(|u| u.deleted_at.is_some())
        .map(|u| u.id.clone())
        .collect();
    let users = unique(
        "user",
        rows.into_iter()
            .filter(|u| u.deleted_at.is_none())
            .map(|u| {
                (
                    u.id,
                    UserView {
                        display_name: opt(&u.display_name),
                        upn: opt(&u.user_principal_name),
                        department: opt(&u.department),
                        job_title: opt(&u.job_title),
                        account_enabled: u.account_enabled,
                        manager_id: opt(&u.manager_id),
                    },
                )
            })
            .collect(),
        &mut problems,
    );
    diff("active user", &truth.users, &users, &mut problems);
    for id in &deleted_users {
        if !truth.soft_deleted_users.contains(id) {
            problems.push(format!(
                "user {id} is marked deleted in the database but is not soft-deleted in the tenant (active: {})",
                truth.users.contains_key(id)
            ));
        }
    }
    for id in must_be_soft_deleted {
        if !deleted_users.contains(id) {
            problems.push(format!(
                "soft-deleted user {id} has no row marked deleted (a soft delete keeps the row with deleted_at)"
            ));
        }
    }

    let rows = db.groups(conn).await.expect("groups");
    let deleted_groups: BTreeSet<String> = rows
        .iter()
        .filter(|g| g.deleted_at.is_some())
        .map(|g| g.id.clone())
        .collect();
    let groups = unique(
        "group",
        rows.into_iter()
            .filter(|g| g.deleted_at.is_none())
            .map(|g| {
                (
                    g.id,
                    GroupView {
                        display_name: opt(&g.display_name),
                        description: opt(&g.description),
                        mail_enabled: g.mail_enabled,
                        security_enabled: g.security_enabled,
                    },
                )
            })
            .collect(),
        &mut problems,
    );
    diff("active group", &truth.groups, &groups, &mut problems);
    for id in &deleted_groups {
        if !truth.soft_deleted_groups.contains(id) {
            problems.push(format!(
                "group {id} is marked deleted in the database but is not soft-deleted in the tenant"
            ));
        }
    }

    let edges = unique(
        "membership",
        db.group_members(conn)
            .await
            .expect("members")
            .into_iter()
            // Edges of a group the database keeps as soft-deleted are not compared.
            .filter(|m| !deleted_groups.contains(&m.group_id))
            .map(|m| ((m.group_id, m.member_id), m.member_type))
            .collect(),
        &mut problems,
    );
    diff("membership edge", &truth.edges, &edges, &mut problems);

    let devices = unique(
        "device",
        db.devices(conn)
            .await
            .expect("devices")
            .into_iter()
            .map(|d| {
                (
                    d.id,
                    DeviceView {
                        compliance_state: opt(&d.compliance_state),
                        operating_system: opt(&d.operating_system),
                        last_sync: naive_secs(&d.last_sync_at),
                        user_id: opt(&d.user_id),
                    },
                )
            })
            .collect(),
        &mut problems,
    );
    diff("device", &truth.devices, &devices, &mut problems);

    let cutoff = Utc::now() - chrono::Duration::from_std(LOOKBACK).expect("lookback");
    let in_window = |m: &BTreeMap<String, DateTime<Utc>>| -> BTreeMap<String, ()> {
        m.iter()
            .filter(|(_, t)| **t > cutoff)
            .map(|(id, _)| (id.clone(), ()))
            .collect()
    };
    let sign_ins = unique(
        "sign-in",
        db.sign_ins(conn)
            .await
            .expect("sign-ins")
            .into_iter()
            .map(|r| (r.id, ()))
            .collect(),
        &mut problems,
    );
    diff(
        "sign-in",
        &in_window(&truth.sign_ins),
        &sign_ins,
        &mut problems,
    );
    let audits = unique(
        "directory audit",
        db.directory_audits(conn)
            .await
            .expect("audits")
            .into_iter()
            .map(|r| (r.id, ()))
            .collect(),
        &mut problems,
    );
    diff(
        "directory audit",
        &in_window(&truth.audits),
        &audits,
        &mut problems,
    );
    let alerts = unique(
        "alert",
        db.alerts(conn)
            .await
            .expect("alerts")
            .into_iter()
            .map(|r| (r.id, ()))
            .collect(),
        &mut problems,
    );
    let expected_alerts = truth.alerts.iter().map(|a| (a.clone(), ())).collect();
    diff("alert", &expected_alerts, &alerts, &mut problems);

    let counts = db.counts(conn).await.expect("counts");
    let expect_users = (truth.users.len() + deleted_users.len()) as i64;
    if counts.users != expect_users {
        problems.push(format!(
            "counts.users {} but {} active + {} marked deleted",
            counts.users,
            truth.users.len(),
            deleted_users.len()
        ));
    }
    if counts.devices != truth.devices.len() as i64 {
        problems.push(format!(
            "counts.devices {} but the tenant has {}",
            counts.devices,
            truth.devices.len()
        ));
    }

    let nested = truth.nested_groups();
    for g in &nested {
        let expected: BTreeSet<String> = truth.transitive_members(g);
        let actual: BTreeSet<String> = db
            .transitive_members(conn, g)
            .await
            .expect("transitive members")
            .into_iter()
            .collect();
        if expected != actual {
            problems.push(format!(
                "transitive members of nested group {g}: missing {:?}, extra {:?}",
                expected.difference(&actual).collect::<Vec<_>>(),
                actual.difference(&expected).collect::<Vec<_>>()
            ));
        }
    }

    assert!(
        problems.is_empty(),
        "{label}: the database differs from the tenant in {} ways:\n{}",
        problems.len(),
        problems
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A backend to run a scenario on.
#[derive(Debug, Clone, Copy)]
pub enum Which {
    /// Always.
    Sqlite,
    /// When `TENANTLINK_TEST_DATABASE_URL` is set (`TestDb::all` includes it then).
    Postgres,
}

/// The test database of a backend (none for PostgreSQL when no server is configured, as
/// `TestDb::all` leaves it out), with a connection.
pub async fn databases(which: Which, tenant_id: &str, client_id: &str) -> Vec<(TestDb, String)> {
    let dbs: Vec<TestDb> = match which {
        Which::Sqlite => vec![TestDb::sqlite().await],
        Which::Postgres => TestDb::postgres().await.into_iter().collect(),
    };
    let mut out = Vec::new();
    for testdb in dbs {
        let conn = connection(&testdb.db, tenant_id, client_id).await;
        out.push((testdb, conn));
    }
    out
}
