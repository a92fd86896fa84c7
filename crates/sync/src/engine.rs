//! Applying: runs, resources, rounds and pages. Each resource's pages are fetched and
//! planned in a task of their own while the previous page is written (one page ahead, and
//! only while the run's page budget has room), and each page is written with its
//! checkpoint in one transaction.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use futures_util::{Stream, StreamExt};
use tenantlink_graph::models::{ManagedDevice, User};
use tenantlink_graph::{DeltaPage, DeltaStart, GraphClient, ListQuery, Page, PageStream};
use tenantlink_store::{Cursor, Db, GroupRow, PAGES_IN_FLIGHT, PageOrder, PageWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::Error;
use crate::plan;
use crate::report::{
    Completeness, Mode, ProgressEvent, Resource, ResourceReport, RunReport, SyncOptions, SyncType,
};

/// `$select` of a users delta round; `manager` makes Graph send `manager@delta`.
const USER_SELECT: &[&str] = &[
    "id",
    "displayName",
    "userPrincipalName",
    "givenName",
    "surname",
    "mail",
    "department",
    "jobTitle",
    "officeLocation",
    "mobilePhone",
    "accountEnabled",
    "userType",
    "createdDateTime",
    "manager",
];

/// `$select` of a groups delta round; `members` makes Graph send `members@delta`.
const GROUP_SELECT: &[&str] = &[
    "id",
    "displayName",
    "description",
    "mail",
    "mailNickname",
    "groupTypes",
    "mailEnabled",
    "securityEnabled",
    "visibility",
    "createdDateTime",
    "members",
];

/// The managedDevice properties stored (Graph sends about 50 when none are selected: a
/// page of 1,000 would be three times larger).
const DEVICE_SELECT: &[&str] = &[
    "id",
    "deviceName",
    "userId",
    "userPrincipalName",
    "operatingSystem",
    "osVersion",
    "complianceState",
    "managedDeviceOwnerType",
    "isEncrypted",
    "manufacturer",
    "model",
    "serialNumber",
    "azureADDeviceId",
    "enrolledDateTime",
    "lastSyncDateTime",
];

/// Pages fetched ahead of the one being written.
const PAGES_AHEAD: usize = 1;

const DEVICES_PERMISSION: &str = "DeviceManagementManagedDevices.Read.All";
const AUDIT_PERMISSION: &str = "AuditLog.Read.All";
const ALERTS_PERMISSION: &str = "SecurityAlert.Read.All";

fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

fn odata_time(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn back(t: NaiveDateTime, by: Duration) -> NaiveDateTime {
    t - chrono::Duration::from_std(by).unwrap_or(chrono::Duration::zero())
}

/// A page fetched and planned, ready to write.
struct Planned {
    write: PageWrite,
    next_link: Option<String>,
    delta_link: Option<String>,
    latest: Option<NaiveDateTime>,
}

impl Planned {
    fn removed(&self) -> u64 {
        let w = &self.write;
        (w.users_deleted.len()
            + w.users_soft_deleted.len()
            + w.groups_deleted.len()
            + w.groups_soft_deleted.len()
            + w.members_removed.len()) as u64
    }
}

/// Why a round stopped.
enum Failure {
    Graph(tenantlink_graph::Error),
    Store(tenantlink_store::Error),
    /// Told to stop; the last committed page is the checkpoint.
    Stopped,
}

impl From<tenantlink_store::Error> for Failure {
    fn from(e: tenantlink_store::Error) -> Self {
        Self::Store(e)
    }
}

impl Failure {
    fn needs_restart(&self) -> bool {
        matches!(self, Self::Graph(e) if e.needs_restart())
    }

    /// Marks `report` partial or failed, as the failure says.
    fn record(self, report: &mut ResourceReport) {
        match self {
            Self::Graph(tenantlink_graph::Error::Throttled { .. }) => {
                report.status = Completeness::Partial;
                report.reason = Some("throttled past the retry budget".into());
            }
            Self::Graph(e @ tenantlink_graph::Error::Forbidden { .. }) => {
                report.status = Completeness::Partial;
                if let tenantlink_graph::Error::Forbidden { permission, .. } = &e {
                    report.missing_permission = Some(permission.clone());
                }
                report.reason = Some(e.to_string());
            }
            Self::Graph(e) => {
                report.status = Completeness::Failed;
                report.reason = Some(e.to_string());
            }
            Self::Store(e) => {
                report.status = Completeness::Failed;
                report.reason = Some(e.to_string());
            }
            Self::Stopped => {
                report.status = Completeness::Failed;
                report.reason = Some("stopped between pages".into());
            }
        }
    }
}

/// Page memory a run holds at once across its resources (estimated, see [`weight`] and
/// [`READ_FACTOR`]): pages being fetched and read, pages fetched ahead and pages being
/// written. A resource waits for room before it fetches its next page, so a large tenant,
/// whose resources all run long and side by side, holds no more pages than a small one.
/// That includes the answer of the one request each resource's page stream sends ahead
/// (tenantlink-graph asks for the next page as it reads one): a page keeps room for one more
/// body like its own until it is written.
/// 8 MiB: with 4 MiB, a users page being read (five times a body of several hundred KiB)
/// left the groups resource, the longest, waiting for room while a core sat idle; a
/// 100,000-user full sync into PostgreSQL took 17.4-19.8 s, with 8 MiB 14.9-16.3 s, for
/// about 4 MiB more peak memory at 10,000 users and at 100,000 alike.
const PAGE_BUDGET_KIB: u32 = 8 * 1024;

/// What the first page of a listing is assumed to weigh before one was seen.
const FIRST_PAGE_KIB: u32 = 512;

/// Heap a page holds while it is read, per byte of its body: the body itself, and the
/// objects read from it, which take several times its size (JSON maps before a delta item
/// is typed; a record kept whole keeps its text beside its model). Measured with heaptrack
/// on a 100,000-user tenant: 4.5 for sign-ins, 6 for users delta pages; reading pages is
/// most of a sync's heap at its peak.
const READ_FACTOR: usize = 5;

/// [`PAGE_BUDGET_KIB`] as permits of 1 KiB, shared by the resources of an engine's run.
#[derive(Clone)]
struct PageBudget(Arc<Semaphore>);

impl PageBudget {
    fn new() -> Self {
        Self(Arc::new(Semaphore::new(PAGE_BUDGET_KIB as usize)))
    }

    /// Room for `kib` (at most the whole budget, so that any page fits), once the pages
    /// that hold it were written. Never waits on the caller's own next page: what holds
    /// room is a page already fetched, and its write does not depend on any fetch. `None`
    /// only if the semaphore were closed, which it never is.
    async fn room(&self, kib: u32) -> Option<OwnedSemaphorePermit> {
        self.0
            .clone()
            .acquire_many_owned(kib.clamp(1, PAGE_BUDGET_KIB))
            .await
            .ok()
    }
}

/// Gives back what `room` holds beyond `kib` (at least 1 KiB is kept).
fn shrink(room: &mut Option<OwnedSemaphorePermit>, kib: u32) {
    if let Some(permit) = room {
        let keep = kib.max(1) as usize;
        if permit.num_permits() > keep {
            drop(permit.split(permit.num_permits() - keep));
        }
    }
}

/// KiB, rounded up, of `bytes`.
fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

/// A page as fetched: the size of the body it was read from.
trait Fetched {
    fn body_len(&self) -> usize;
}

impl<T> Fetched for Page<T> {
    fn body_len(&self) -> usize {
        self.body_len
    }
}

impl<T> Fetched for DeltaPage<T> {
    fn body_len(&self) -> usize {
        self.body_len
    }
}

/// About the heap a planned page holds, in KiB: its rows' fixed parts and strings.
fn weight(w: &PageWrite) -> u32 {
    let ids = |v: &[String]| v.iter().map(|s| 24 + s.len()).sum::<usize>();
    let raw = w.sign_ins.iter().map(|r| r.raw.len()).sum::<usize>()
        + w.audits.iter().map(|r| r.raw.len()).sum::<usize>()
        + w.alerts.iter().map(|r| r.raw.len()).sum::<usize>();
    let bytes = w.users.len() * 640
        + w.groups.len() * 480
        + w.members_added.len() * 160
        + w.members_removed.len() * 120
        + w.sign_in_activity.len() * 96
        + w.devices.len() * 560
        + (w.sign_ins.len() + w.audits.len() + w.alerts.len()) * 256
        + raw
        + ids(&w.users_deleted)
        + ids(&w.users_soft_deleted)
        + ids(&w.groups_deleted)
        + ids(&w.groups_soft_deleted);
    kib(bytes)
}

/// A planned page and the room it holds in the run's [`PageBudget`] until it is written.
struct Budgeted {
    page: Planned,
    room: Option<OwnedSemaphorePermit>,
}

/// Fetches and plans pages in a task of its own, at most [`PAGES_AHEAD`] ahead of the
/// writer, each once the run's page budget has room for it: as much as the page before
/// needed while it was read ([`READ_FACTOR`] times its body) or once planned ([`weight`]),
/// whichever is more. A planned page keeps room for its weight until it is written. An
/// error ends the stream; dropping the receiver stops the task.
fn pipeline<S, P, F>(
    budget: &PageBudget,
    stream: S,
    plan: F,
) -> mpsc::Receiver<Result<Budgeted, tenantlink_graph::Error>>
where
    S: Stream<Item = Result<P, tenantlink_graph::Error>> + Send + Unpin + 'static,
    P: Fetched + Send + 'static,
    F: Fn(P) -> Planned + Send + 'static,
{
    let (tx, rx) = mpsc::channel(PAGES_AHEAD);
    let mut stream = stream;
    let budget = budget.clone();
    tokio::spawn(async move {
        let mut estimate = FIRST_PAGE_KIB;
        loop {
            let mut room = budget.room(estimate).await;
            let Some(item) = stream.next().await else {
                break;
            };
            let failed = item.is_err();
            let item = item.map(|p| {
                let body = p.body_len();
                let reading = kib(body.saturating_mul(READ_FACTOR));
                let page = plan(p);
                // The stream already asked for the next page, if any: its body (about this
                // one's size) is held from now until that page is read.
                let ahead = if page.next_link.is_some() {
                    kib(body)
                } else {
                    0
                };
                let planned = weight(&page.write).saturating_add(ahead);
                shrink(&mut room, planned);
                estimate = reading.max(planned);
                Budgeted { page, room }
            });
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    rx
}

/// How many users' `signInActivity` one write carries at least. Graph lists it 120 users a
/// page (its limit with `signInActivity`), and a transaction per page of 120 small updates
/// cost more than the updates: 834 of them for 100,000 users.
const SIGN_IN_ACTIVITY_ROWS: usize = 960;

/// Pages of `stream` joined, in order, into pages of at least `rows` items (the last may
/// hold fewer), for a listing whose pages are not checkpoints. A joined page carries the
/// last part's links and the sum of its parts' bodies. An error comes after the pages
/// joined before it, which are not lost, and ends the stream.
fn joined<T: Send + 'static>(
    stream: PageStream<T>,
    rows: usize,
) -> impl Stream<Item = Result<Page<T>, tenantlink_graph::Error>> + Send + Unpin + 'static {
    enum State<T> {
        Reading(PageStream<T>),
        Failed(tenantlink_graph::Error),
        Done,
    }
    Box::pin(futures_util::stream::unfold(
        State::Reading(stream),
        move |state| async move {
            let mut stream = match state {
                State::Reading(stream) => stream,
                State::Failed(e) => return Some((Err(e), State::Done)),
                State::Done => return None,
            };
            let mut page: Option<Page<T>> = None;
            while page.as_ref().is_none_or(|p| p.items.len() < rows) {
                let next = match stream.next().await {
                    Some(Ok(next)) => next,
                    Some(Err(e)) => {
                        return Some(match page {
                            Some(page) => (Ok(page), State::Failed(e)),
                            None => (Err(e), State::Done),
                        });
                    }
                    None => return page.map(|page| (Ok(page), State::Done)),
                };
                match &mut page {
                    None => page = Some(next),
                    Some(page) => {
                        page.items.extend(next.items);
                        page.next_link = next.next_link;
                        page.delta_link = next.delta_link;
                        page.body_len += next.body_len;
                    }
                }
            }
            page.map(|page| (Ok(page), State::Reading(stream)))
        },
    ))
}

fn delta_planned<T>(
    page: DeltaPage<T>,
    plan: fn(Vec<tenantlink_graph::DeltaChange<T>>) -> PageWrite,
) -> Planned {
    Planned {
        write: plan(page.changes),
        next_link: page.next_link,
        delta_link: page.delta_link,
        latest: None,
    }
}

fn list_planned<T>(
    page: Page<T>,
    plan: fn(Vec<T>) -> (PageWrite, Option<NaiveDateTime>),
) -> Planned {
    let (write, latest) = plan(page.items);
    Planned {
        write,
        next_link: page.next_link,
        delta_link: None,
        latest,
    }
}

/// A page's write under way in a task of its own.
struct InFlight {
    /// Gives the page back with the write's outcome.
    task: tokio::task::JoinHandle<(PageWrite, Result<Option<usize>, tenantlink_store::Error>)>,
    rows: u64,
    removed: u64,
    /// Whether the page inserts rows.
    inserts: bool,
    /// The cursor written with the page, and when.
    cursor: Cursor,
    at: NaiveDateTime,
}

/// What a finished round leaves behind.
#[derive(Default)]
struct RoundEnd {
    delta_link: Option<String>,
    latest: Option<NaiveDateTime>,
}

/// A run in progress, shared by its resources.
struct RunCtx<'a> {
    run_id: String,
    sync_type: SyncType,
    options: &'a SyncOptions,
    progress: &'a (dyn Fn(&ProgressEvent) + Send + Sync),
    resumed: bool,
    started: Instant,
    /// Reports of the resources finished so far.
    finished: Mutex<Vec<ResourceReport>>,
    last_beat: Mutex<Instant>,
    /// Resources that stopped when told to (not finished: they go on from their cursor).
    stopped: Mutex<Vec<Resource>>,
}

impl RunCtx<'_> {
    fn report(&self, connection_id: &str) -> RunReport {
        let finished = self.finished.lock().map(|f| f.clone()).unwrap_or_default();
        RunReport::of(
            &self.run_id,
            connection_id,
            self.sync_type,
            self.resumed,
            finished,
            self.started.elapsed(),
        )
    }

    fn mark_stopped(&self, resource: Resource) {
        if let Ok(mut stopped) = self.stopped.lock() {
            stopped.push(resource);
        }
    }

    fn was_stopped(&self, resource: Resource) -> bool {
        self.stopped.lock().is_ok_and(|s| s.contains(&resource))
    }

    fn any_stopped(&self) -> bool {
        self.stopped.lock().is_ok_and(|s| !s.is_empty())
    }

    fn report_json(&self, connection_id: &str) -> String {
        serde_json::to_string(&self.report(connection_id)).unwrap_or_else(|_| "{}".into())
    }

    /// Whether the run row's `updated_at` is due a refresh (so a live run never looks
    /// interrupted).
    fn beat_due(&self) -> bool {
        let Ok(mut last) = self.last_beat.lock() else {
            return false;
        };
        if last.elapsed() >= self.options.stale_after / 4 {
            *last = Instant::now();
            true
        } else {
            false
        }
    }
}

/// How a round starts.
struct Start {
    mode: Mode,
    cursor: Cursor,
}

/// A new full round after `stored`.
fn full_cursor(
    stored: Option<Cursor>,
    connection_id: &str,
    resource: Resource,
    run_id: &str,
) -> Cursor {
    let at = now();
    let base = stored.unwrap_or_else(|| Cursor {
        connection_id: connection_id.to_owned(),
        resource: resource.as_str().to_owned(),
        round: 0,
        full_round: false,
        run_id: None,
        next_link: None,
        delta_link: None,
        time_cursor: None,
        round_started_at: None,
        pages: 0,
        rows_written: 0,
        updated_at: at,
    });
    Cursor {
        round: base.round + 1,
        full_round: true,
        run_id: Some(run_id.to_owned()),
        next_link: None,
        round_started_at: Some(at),
        pages: 0,
        rows_written: 0,
        updated_at: at,
        ..base
    }
}

/// Touches a live run every `every` until dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    fn start(db: Db, run_id: String, every: Duration) -> Self {
        Self(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(250)));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = db.touch_run(&run_id).await {
                    tracing::warn!(%run_id, error = %e, "could not record the sync run's heartbeat");
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Syncs one connection's tenant into the store. See the crate documentation.
pub struct SyncEngine {
    db: Db,
    graph: GraphClient,
    connection_id: String,
    /// Turns true when the run should stop at the next page boundary.
    stop: Option<tokio::sync::watch::Receiver<bool>>,
    /// A run the caller knows is nobody's any more, taken up whatever its age.
    take_over: Option<String>,
    /// Room for pages in memory, shared by the resources of a run.
    budget: PageBudget,
}

impl std::fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngine")
            .field("connection_id", &self.connection_id)
            .finish_non_exhaustive()
    }
}

impl SyncEngine {
    /// An engine writing `graph`'s tenant into `db` as connection `connection_id`.
    pub fn new(db: Db, graph: GraphClient, connection_id: impl Into<String>) -> Self {
        Self {
            db,
            graph,
            connection_id: connection_id.into(),
            stop: None,
            take_over: None,
            budget: PageBudget::new(),
        }
    }

    /// Stops the run when `stop` turns true: each resource stops before its next page
    /// (the page being written commits first), the run stays `running` and [`Self::run`]
    /// answers [`Error::Stopped`]. The run goes on later from its cursors.
    pub fn with_stop(mut self, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Takes up the interrupted run `run_id` at once, without waiting for it to be silent
    /// for `stale_after`: for a caller that knows its process is gone (it holds the job
    /// lease that process lost or gave back).
    pub fn taking_over(mut self, run_id: Option<String>) -> Self {
        self.take_over = run_id;
        self
    }

    fn stop_requested(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| *s.borrow())
    }

    /// Resolves when told to stop (never, without a stop signal).
    async fn stopping(&self) {
        match &self.stop {
            Some(stop) => {
                let mut stop = stop.clone();
                if stop.wait_for(|s| *s).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }

    /// Runs a sync: takes up an interrupted run of the same type (one whose last update is
    /// older than `stale_after`) where it stopped, else starts one; syncs its resources,
    /// up to `concurrency` at once; finishes the run row with the report. Fails only when
    /// the run cannot start or be recorded ([`Error::AlreadyRunning`], the database);
    /// a resource's failure is in its report.
    pub async fn run(
        &self,
        options: &SyncOptions,
        progress: &(dyn Fn(&ProgressEvent) + Send + Sync),
    ) -> Result<RunReport, Error> {
        options.validate()?;
        let started = Instant::now();
        let type_name = options.sync_type.as_str();
        let already = |run_id: String, sync_type: String| Error::AlreadyRunning {
            connection_id: self.connection_id.clone(),
            sync_type,
            run_id,
        };
        // One live run per connection, whatever its type (the store enforces it too): two
        // runs would move the same cursors and sweep each other's rows.
        let interrupted = match self.db.running_run(&self.connection_id).await? {
            Some(run) => {
                let age = (now() - run.updated_at).to_std().unwrap_or(Duration::ZERO);
                let handed_over = self.take_over.as_deref() == Some(run.id.as_str());
                if (age < options.stale_after && !handed_over)
                    || !self.db.claim_run(&run.id, run.updated_at).await?
                {
                    return Err(already(run.id, run.sync_type));
                }
                if run.sync_type == type_name {
                    Some(run)
                } else {
                    // An interrupted run of another type: closed as failed. What it
                    // committed stays; its resources' cursors are taken up by this run.
                    self.db
                        .finish_run(
                            &run.id,
                            "failed",
                            &run.report,
                            Some("interrupted, then superseded by a run of another type"),
                        )
                        .await?;
                    None
                }
            }
            None => None,
        };
        let (run_id, resumed, done) = match interrupted {
            Some(run) => {
                // Resources the interrupted run finished (not failed) are not redone: those
                // its report records, and those whose round it ended (a crash can fall
                // between a round's last commit and the report's update).
                let mut done: Vec<ResourceReport> = serde_json::from_str::<RunReport>(&run.report)
                    .map(|r| r.resources)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| r.status != Completeness::Failed)
                    .collect();
                for cursor in self.db.cursors(&self.connection_id).await? {
                    let Some(resource) = Resource::ALL
                        .into_iter()
                        .find(|r| r.as_str() == cursor.resource)
                    else {
                        continue;
                    };
                    if cursor.run_id.as_deref() == Some(run.id.as_str())
                        && cursor.next_link.is_none()
                        && !done.iter().any(|d| d.resource == resource)
                    {
                        let mode = if options.sync_type == SyncType::Full {
                            Mode::Full
                        } else {
                            Mode::Incremental
                        };
                        let mut report = ResourceReport::new(resource, mode);
                        report.pages = u64::try_from(cursor.pages).unwrap_or(0);
                        report.rows = u64::try_from(cursor.rows_written).unwrap_or(0);
                        done.push(report);
                    }
                }
                tracing::info!(run_id = %run.id, done = done.len(), "taking up an interrupted sync run");
                (run.id, true, done)
            }
            None => match self.db.create_run(&self.connection_id, type_name).await {
                Ok(run) => (run.id, false, Vec::new()),
                // Another process started one between our look and our insert.
                Err(tenantlink_store::Error::Conflict(_)) => {
                    let live = self.db.running_run(&self.connection_id).await?;
                    return Err(match live {
                        Some(r) => already(r.id, r.sync_type),
                        None => already(String::new(), type_name.to_owned()),
                    });
                }
                Err(e) => return Err(e.into()),
            },
        };
        // The run stays visibly alive while a page is slow (throttled, retried): a
        // heartbeat apart from page progress, stopped when this function returns.
        let _heartbeat = Heartbeat::start(self.db.clone(), run_id.clone(), options.stale_after / 4);
        progress(&ProgressEvent::RunStarted {
            run_id: run_id.clone(),
            resumed,
        });
        let todo: Vec<Resource> = options
            .sync_type
            .resources()
            .iter()
            .copied()
            .filter(|r| !done.iter().any(|d| d.resource == *r))
            .collect();
        let ctx = RunCtx {
            run_id,
            sync_type: options.sync_type,
            options,
            progress,
            resumed,
            started,
            finished: Mutex::new(done),
            last_beat: Mutex::new(Instant::now()),
            stopped: Mutex::new(Vec::new()),
        };
        let ctx = &ctx;
        // Users and groups first: the largest, so they start at once.
        // Each resource records its own end inside its future: awaiting the database here,
        // between polls of the stream, would stall the other resources mid-transaction (on
        // SQLite, while they hold the write lock this write waits for).
        let mut reports = futures_util::stream::iter(todo)
            .map(|resource| async move {
                if self.stop_requested() {
                    ctx.mark_stopped(resource);
                    return Ok(());
                }
                let report = self.resource(ctx, resource).await;
                if ctx.was_stopped(resource) {
                    // Not finished: its cursor holds where it goes on.
                    return Ok(());
                }
                (ctx.progress)(&ProgressEvent::ResourceFinished(report.clone()));
                if let Ok(mut finished) = ctx.finished.lock() {
                    finished.push(report);
                }
                self.db
                    .update_run(&ctx.run_id, &ctx.report_json(&self.connection_id))
                    .await
            })
            .buffer_unordered(options.concurrency);
        // Drain every resource even after an error: a resource dropped mid-page could leave
        // a transaction open on its pooled connection.
        let mut first_error = None;
        while let Some(recorded) = reports.next().await {
            if let Err(e) = recorded {
                first_error.get_or_insert(e);
            }
        }
        drop(reports);
        if let Some(e) = first_error {
            return Err(e.into());
        }
        if ctx.any_stopped() {
            tracing::info!(run_id = %ctx.run_id, "sync run stopped between pages; it stays resumable");
            return Err(Error::Stopped {
                run_id: ctx.run_id.clone(),
            });
        }
        let report = ctx.report(&self.connection_id);
        let error = report
            .resources
            .iter()
            .filter(|r| r.status == Completeness::Failed)
            .map(|r| {
                format!(
                    "{}: {}",
                    r.resource,
                    r.reason.as_deref().unwrap_or("failed")
                )
            })
            .collect::<Vec<_>>();
        let json = serde_json::to_string(&report).unwrap_or_else(|_| "{}".into());
        self.db
            .finish_run(
                &report.run_id,
                report.status.as_str(),
                &json,
                (!error.is_empty()).then(|| error.join("; ")).as_deref(),
            )
            .await?;
        progress(&ProgressEvent::RunFinished(report.clone()));
        Ok(report)
    }

    async fn resource(&self, ctx: &RunCtx<'_>, resource: Resource) -> ResourceReport {
        let started = Instant::now();
        let before = self.graph.stats();
        let mut report = match resource {
            Resource::Users | Resource::Groups => self.delta_resource(ctx, resource).await,
            Resource::Devices => {
                self.listing_resource(ctx, resource, |engine, mode, cursor, options| {
                    let stream = match (mode, cursor.next_link.as_deref()) {
                        (Mode::Resumed, Some(link)) => {
                            engine.graph.resume_pages(link, DEVICES_PERMISSION)
                        }
                        (Mode::Incremental, _) => {
                            let since = back(
                                cursor.time_cursor.unwrap_or_else(now),
                                options.audit_overlap,
                            );
                            engine.graph.list_managed_devices(
                                &ListQuery::select(DEVICE_SELECT.iter().copied())
                                    .filter(format!("lastSyncDateTime ge {}", odata_time(since))),
                            )
                        }
                        _ => engine.graph.list_managed_devices(&ListQuery::select(
                            DEVICE_SELECT.iter().copied(),
                        )),
                    };
                    pipeline(&engine.budget, stream, |p: Page<ManagedDevice>| {
                        list_planned(p, plan::devices_page)
                    })
                })
                .await
            }
            Resource::SignIns => {
                self.listing_resource(ctx, resource, |engine, mode, cursor, options| {
                    let start = audit_start(mode, cursor, options, "createdDateTime");
                    let stream =
                        engine.audit_pages(start, AUDIT_PERMISSION, GraphClient::list_sign_ins_raw);
                    pipeline(&engine.budget, stream, |p| {
                        list_planned(p, plan::sign_ins_page)
                    })
                })
                .await
            }
            Resource::DirectoryAudits => {
                self.listing_resource(ctx, resource, |engine, mode, cursor, options| {
                    let start = audit_start(mode, cursor, options, "activityDateTime");
                    let stream = engine.audit_pages(
                        start,
                        AUDIT_PERMISSION,
                        GraphClient::list_directory_audits_raw,
                    );
                    pipeline(&engine.budget, stream, |p| {
                        list_planned(p, plan::audits_page)
                    })
                })
                .await
            }
            Resource::Alerts => {
                self.listing_resource(ctx, resource, |engine, mode, cursor, options| {
                    // By last update: an old alert that changed status comes again.
                    let start = audit_start(mode, cursor, options, "lastUpdateDateTime");
                    let stream =
                        engine.audit_pages(start, ALERTS_PERMISSION, GraphClient::list_alerts_raw);
                    pipeline(&engine.budget, stream, |p| {
                        list_planned(p, plan::alerts_page)
                    })
                })
                .await
            }
        };
        let after = self.graph.stats();
        report.requests = after.requests.saturating_sub(before.requests);
        report.retries = after.retries.saturating_sub(before.retries);
        report.throttled = after.waited.saturating_sub(before.waited);
        report.elapsed = started.elapsed();
        tracing::info!(
            resource = %resource,
            status = %report.status,
            pages = report.pages,
            rows = report.rows,
            elapsed_ms = report.elapsed.as_millis() as u64,
            "resource synced"
        );
        report
    }

    /// Where `resource`'s round starts: the interrupted round of this run, an incremental
    /// round when `incremental` allows it, else a new full round.
    async fn begin(
        &self,
        ctx: &RunCtx<'_>,
        resource: Resource,
        incremental: impl Fn(&Cursor) -> bool,
    ) -> Result<Start, tenantlink_store::Error> {
        let stored = self
            .db
            .cursor(&self.connection_id, resource.as_str())
            .await?;
        match stored {
            Some(c)
                if ctx.resumed
                    && c.run_id.as_deref() == Some(ctx.run_id.as_str())
                    && c.next_link.is_some() =>
            {
                Ok(Start {
                    mode: Mode::Resumed,
                    cursor: c,
                })
            }
            Some(c) if ctx.sync_type != SyncType::Full && incremental(&c) => Ok(Start {
                mode: Mode::Incremental,
                cursor: Cursor {
                    full_round: false,
                    run_id: Some(ctx.run_id.clone()),
                    next_link: None,
                    pages: 0,
                    rows_written: 0,
                    updated_at: now(),
                    ..c
                },
            }),
            other => Ok(Start {
                mode: Mode::Full,
                cursor: full_cursor(other, &self.connection_id, resource, &ctx.run_id),
            }),
        }
    }

    /// Writes the pages of `rx` in order, each with its checkpoint. When `stoppable` and
    /// told to stop, returns [`Failure::Stopped`] before the next page (the cursor stored
    /// with the last page says where the round goes on).
    ///
    /// A page's write starts while the one before it commits ([`Db::write_page_after`]):
    /// on PostgreSQL the two run on two connections, so a round is not held to one
    /// backend's pace. Pages still commit in order, each with its cursor.
    async fn apply(
        &self,
        ctx: &RunCtx<'_>,
        cursor: &mut Cursor,
        mut rx: mpsc::Receiver<Result<Budgeted, tenantlink_graph::Error>>,
        report: &mut ResourceReport,
        started: Instant,
        stoppable: bool,
    ) -> Result<RoundEnd, Failure> {
        let mut end = RoundEnd::default();
        // Writes started and not yet landed, oldest first: at most PAGES_IN_FLIGHT.
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        // The groups of the page before, as received: a group whose members go on over
        // several pages comes again, unchanged, at the top of the next one.
        let mut groups_before: Vec<GroupRow> = Vec::new();
        // Whether a page's write failed: the pages in flight behind it are then not
        // written again (see `land_all`).
        let mut write_failed = false;
        let result = loop {
            let next = if stoppable {
                tokio::select! {
                    biased;
                    () = self.stopping() => {
                        ctx.mark_stopped(report.resource);
                        break Err(Failure::Stopped);
                    }
                    page = rx.recv() => page,
                }
            } else {
                rx.recv().await
            };
            let Some(page) = next else { break Ok(()) };
            let (page, room) = match page {
                Ok(Budgeted { page, room }) => (page, room),
                Err(e) => break Err(Failure::Graph(e)),
            };
            let at = now();
            let rows = page.write.rows() as u64;
            let removed = page.removed();
            cursor.next_link = page.next_link;
            cursor.pages += 1;
            cursor.rows_written += rows as i64;
            cursor.updated_at = at;
            if page.delta_link.is_some() {
                end.delta_link = page.delta_link;
            }
            end.latest = end.latest.max(page.latest);
            let mut write = page.write;
            // A page that deletes or updates rows in place would not see the rows an
            // uncommitted page before it inserted: it starts once those pages committed.
            if write.changes_rows_in_place()
                && in_flight.iter().any(|w| w.inserts)
                && let Err(f) = self
                    .land_all(ctx, &mut in_flight, report, started, false)
                    .await
            {
                write_failed = true;
                break Err(f);
            }
            let (turn, has_turn) = tokio::sync::oneshot::channel();
            let order = PageOrder {
                previous: in_flight.back().map(|w| w.cursor.clone()),
                started: Some(turn),
            };
            // That group's row is written by the page before (which commits first, or
            // neither does). Writing it again would lock a row the page before may be
            // about to write, while that page waits for this one's lock: a deadlock
            // PostgreSQL resolves only after a second.
            let received = write.groups.clone();
            write.groups.retain(|g| !groups_before.contains(g));
            groups_before = received;
            let inserts = write.inserts_rows();
            let (db, written) = (self.db.clone(), cursor.clone());
            let task = tokio::spawn(async move {
                let result = db.write_page_after(&write, &written, at, order).await;
                // Written (or failed): the next page of any resource may be fetched.
                drop(room);
                (write, result)
            });
            // Once this write holds its turn, the next page's may follow it.
            let _ = has_turn.await;
            let this = InFlight {
                task,
                rows,
                removed,
                inserts,
                cursor: cursor.clone(),
                at,
            };
            in_flight.push_back(this);
            if in_flight.len() >= PAGES_IN_FLIGHT
                && let Some(oldest) = in_flight.pop_front()
                && let Err(f) = self.landed(ctx, oldest, report, started, true).await
            {
                write_failed = true;
                break Err(f);
            }
        };
        // The last write (or the one under way when the round stopped or failed) ends
        // before the round does; the first failure is the one reported.
        let landed = self
            .land_all(ctx, &mut in_flight, report, started, write_failed)
            .await;
        result.and(landed)?;
        Ok(end)
    }

    /// Waits for every write in `in_flight`, in order; the first failure is returned once
    /// all have ended. After a page's write failed (here, or before when `write_failed`),
    /// the pages behind it are not written again (see [`Self::landed`]).
    async fn land_all(
        &self,
        ctx: &RunCtx<'_>,
        in_flight: &mut VecDeque<InFlight>,
        report: &mut ResourceReport,
        started: Instant,
        write_failed: bool,
    ) -> Result<(), Failure> {
        let mut first = Ok(());
        while let Some(write) = in_flight.pop_front() {
            let rewrite = !write_failed && first.is_ok();
            let landed = self.landed(ctx, write, report, started, rewrite).await;
            first = first.and(landed);
        }
        first
    }

    /// Waits for a page's write; counts it and reports progress once it committed. A page
    /// that did not commit because the page before it had not is written again, alone,
    /// when `rewrite` (the page before went again and committed); otherwise (the page
    /// before failed) it is left out: committing it would move the cursor past the page
    /// that failed, and the round goes on from the stored cursor.
    async fn landed(
        &self,
        ctx: &RunCtx<'_>,
        write: InFlight,
        report: &mut ResourceReport,
        started: Instant,
        rewrite: bool,
    ) -> Result<(), Failure> {
        let (page, result) = write.task.await.map_err(|e| {
            tenantlink_store::Error::Database(format!("a page write did not finish: {e}"))
        })?;
        if result?.is_none() {
            if !rewrite {
                return Ok(());
            }
            self.db.write_page(&page, &write.cursor, write.at).await?;
        }
        report.pages += 1;
        report.rows += write.rows;
        report.removed += write.removed;
        let secs = started.elapsed().as_secs_f64();
        (ctx.progress)(&ProgressEvent::Page {
            resource: report.resource,
            pages: report.pages,
            rows: report.rows,
            rows_per_sec: if secs > 0.0 {
                report.rows as f64 / secs
            } else {
                0.0
            },
        });
        if ctx.beat_due() {
            self.db
                .update_run(&ctx.run_id, &ctx.report_json(&self.connection_id))
                .await?;
        }
        Ok(())
    }

    /// Ends a round: stores the cursor with no round in progress, sweeping what a full
    /// round did not see. Returns the rows swept.
    async fn finish(&self, mut cursor: Cursor) -> Result<u64, tenantlink_store::Error> {
        // No next link: the round is over. The run id stays, saying which run finished it
        // (a run taken up after a crash does not redo it).
        cursor.next_link = None;
        cursor.updated_at = now();
        if cursor.full_round {
            cursor.full_round = false;
            Ok(self.db.finish_full_round(&cursor).await? as u64)
        } else {
            self.db.put_cursor(&cursor).await?;
            Ok(0)
        }
    }

    /// Users or groups, by delta; users then their `signInActivity`.
    async fn delta_resource(&self, ctx: &RunCtx<'_>, resource: Resource) -> ResourceReport {
        let started = Instant::now();
        let start = match self.begin(ctx, resource, |c| c.delta_link.is_some()).await {
            Ok(s) => s,
            Err(e) => {
                let mut report = ResourceReport::new(resource, Mode::Full);
                Failure::Store(e).record(&mut report);
                return report;
            }
        };
        let mut report = ResourceReport::new(resource, start.mode);
        (ctx.progress)(&ProgressEvent::ResourceStarted {
            resource,
            mode: start.mode,
        });
        let mut cursor = start.cursor;
        let mut mode = start.mode;
        loop {
            let link = match mode {
                Mode::Resumed => cursor.next_link.clone(),
                Mode::Incremental => cursor.delta_link.clone(),
                Mode::Full => None,
            };
            let delta_start = match link {
                Some(link) => DeltaStart::Resume(link),
                None => DeltaStart::Initial {
                    select: match resource {
                        Resource::Users => USER_SELECT,
                        _ => GROUP_SELECT,
                    }
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
                },
            };
            let rx = if resource == Resource::Users {
                pipeline(
                    &self.budget,
                    self.graph.users_delta_pages(&delta_start),
                    |p| delta_planned(p, plan::users_page),
                )
            } else {
                pipeline(
                    &self.budget,
                    self.graph.groups_delta_pages(&delta_start),
                    |p| delta_planned(p, plan::groups_page),
                )
            };
            let result = self
                .apply(ctx, &mut cursor, rx, &mut report, started, true)
                .await;
            match result {
                Ok(end) => {
                    let Some(delta_link) = end.delta_link else {
                        Failure::Graph(tenantlink_graph::Error::Decode(
                            "the delta round ended without an @odata.deltaLink".into(),
                        ))
                        .record(&mut report);
                        return report;
                    };
                    cursor.delta_link = Some(delta_link);
                    let full = cursor.full_round;
                    match self.finish(cursor.clone()).await {
                        Ok(swept) => report.swept += swept,
                        Err(e) => {
                            Failure::Store(e).record(&mut report);
                            return report;
                        }
                    }
                    cursor.full_round = false;
                    cursor.next_link = None;
                    cursor.run_id = None;
                    if resource == Resource::Users {
                        self.sign_in_activity(ctx, cursor, full, &mut report, started)
                            .await;
                    }
                    return report;
                }
                Err(f) if f.needs_restart() && report.fell_back_to_full.is_none() => {
                    if let Failure::Graph(e) = &f {
                        report.fell_back_to_full = Some(e.to_string());
                        tracing::warn!(resource = %resource, error = %e, "starting a full round again");
                    }
                    cursor = full_cursor(Some(cursor), &self.connection_id, resource, &ctx.run_id);
                    mode = Mode::Full;
                    report.mode = Mode::Full;
                }
                Err(f) => {
                    f.record(&mut report);
                    return report;
                }
            }
        }
    }

    /// `signInActivity` of users (not in delta): all of it after a full round, else what
    /// changed since the time cursor. A failure here leaves users partial, not failed.
    async fn sign_in_activity(
        &self,
        ctx: &RunCtx<'_>,
        mut cursor: Cursor,
        full: bool,
        report: &mut ResourceReport,
        started: Instant,
    ) {
        let mut query = ListQuery::select(["id", "signInActivity"]);
        if !full && let Some(t) = cursor.time_cursor {
            query = query.filter(format!(
                "signInActivity/lastSignInDateTime ge {}",
                odata_time(back(t, ctx.options.audit_overlap))
            ));
        }
        let rx = pipeline(
            &self.budget,
            joined(self.graph.list_users(&query), SIGN_IN_ACTIVITY_ROWS),
            |page: Page<User>| Planned {
                latest: plan::latest_sign_in(&page.items),
                write: plan::sign_in_activity_page(page.items),
                // Not a checkpoint: the listing is cheap to redo and never resumed.
                next_link: None,
                delta_link: None,
            },
        );
        let old = cursor.time_cursor;
        // Not stoppable: the listing is not resumed, and its round is already over.
        match self
            .apply(ctx, &mut cursor, rx, report, started, false)
            .await
        {
            Ok(end) => {
                cursor.time_cursor = old.max(end.latest);
                cursor.updated_at = now();
                if let Err(e) = self.db.put_cursor(&cursor).await {
                    Failure::Store(e).record(report);
                }
            }
            Err(f @ (Failure::Store(_) | Failure::Stopped)) => f.record(report),
            Err(Failure::Graph(e)) => {
                report.status = Completeness::Partial;
                if matches!(e, tenantlink_graph::Error::Forbidden { .. }) {
                    report.missing_permission = Some(AUDIT_PERMISSION.into());
                }
                report.reason = Some(match e {
                    tenantlink_graph::Error::Throttled { .. } => {
                        "signInActivity: throttled past the retry budget".into()
                    }
                    e => format!("signInActivity not synced: {e}"),
                });
            }
        }
    }

    /// Devices and audit data: plain listings with a time cursor.
    async fn listing_resource<F>(
        &self,
        ctx: &RunCtx<'_>,
        resource: Resource,
        open: F,
    ) -> ResourceReport
    where
        F: Fn(
            &Self,
            Mode,
            &Cursor,
            &SyncOptions,
        ) -> mpsc::Receiver<Result<Budgeted, tenantlink_graph::Error>>,
    {
        let started = Instant::now();
        let incremental = |c: &Cursor| {
            c.time_cursor.is_some()
                && (resource != Resource::Devices
                    || c.round_started_at.is_some_and(|t| {
                        (now() - t)
                            .to_std()
                            .is_ok_and(|age| age < ctx.options.devices_full_every)
                    }))
        };
        let start = match self.begin(ctx, resource, incremental).await {
            Ok(s) => s,
            Err(e) => {
                let mut report = ResourceReport::new(resource, Mode::Full);
                Failure::Store(e).record(&mut report);
                return report;
            }
        };
        let mut report = ResourceReport::new(resource, start.mode);
        (ctx.progress)(&ProgressEvent::ResourceStarted {
            resource,
            mode: start.mode,
        });
        let mut cursor = start.cursor;
        let mut mode = start.mode;
        loop {
            let rx = open(self, mode, &cursor, ctx.options);
            match self
                .apply(ctx, &mut cursor, rx, &mut report, started, true)
                .await
            {
                Ok(end) => {
                    cursor.time_cursor = cursor.time_cursor.max(end.latest);
                    match self.finish(cursor).await {
                        Ok(swept) => report.swept += swept,
                        Err(e) => Failure::Store(e).record(&mut report),
                    }
                    return report;
                }
                Err(f) if f.needs_restart() && report.fell_back_to_full.is_none() => {
                    if let Failure::Graph(e) = &f {
                        report.fell_back_to_full = Some(e.to_string());
                        tracing::warn!(resource = %resource, error = %e, "starting a full round again");
                    }
                    cursor = full_cursor(Some(cursor), &self.connection_id, resource, &ctx.run_id);
                    mode = Mode::Full;
                    report.mode = Mode::Full;
                }
                Err(f) => {
                    f.record(&mut report);
                    return report;
                }
            }
        }
    }
}

/// Where an audit listing starts.
enum AuditStart {
    /// Records since the time cursor less the overlap, or since the lookback.
    Query(ListQuery),
    /// The stored link an interrupted round goes on from.
    Resume(String),
}

impl SyncEngine {
    /// The pages of an audit listing: a new query, or the stored link it goes on from.
    fn audit_pages<T>(
        &self,
        start: AuditStart,
        permission: &'static str,
        list: impl Fn(&GraphClient, &ListQuery) -> PageStream<T>,
    ) -> PageStream<T>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        match start {
            AuditStart::Query(q) => list(&self.graph, &q),
            AuditStart::Resume(link) => self.graph.resume_pages(&link, permission),
        }
    }
}

fn audit_start(
    mode: Mode,
    cursor: &Cursor,
    options: &SyncOptions,
    time_property: &str,
) -> AuditStart {
    if mode == Mode::Resumed
        && let Some(link) = &cursor.next_link
    {
        return AuditStart::Resume(link.clone());
    }
    let since = match (mode, cursor.time_cursor) {
        (Mode::Incremental, Some(t)) => back(t, options.audit_overlap),
        _ => back(now(), options.audit_lookback),
    };
    AuditStart::Query(
        ListQuery::default().filter(format!("{time_property} ge {}", odata_time(since))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_page_larger_than_the_budget_still_gets_room_once_the_rest_is_written() {
        let budget = PageBudget::new();
        let held = budget.room(1024).await.expect("room");
        // More than the whole budget: clamped, so it waits for the held page, not forever.
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.room(u32::MAX).await.is_some() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the budget is full");
        drop(held);
        assert!(waiting.await.expect("task"));
    }

    /// The pipeline of a stream that answers one page of a 512 KiB body (with `next_link`),
    /// then never answers again; the page it planned (no rows).
    async fn one_page(
        budget: &PageBudget,
        next_link: Option<&str>,
    ) -> (
        mpsc::Receiver<Result<Budgeted, tenantlink_graph::Error>>,
        Budgeted,
    ) {
        let page = Page::<u32> {
            items: vec![1, 2, 3],
            next_link: next_link.map(str::to_owned),
            delta_link: None,
            count: None,
            body_len: 512 * 1024,
        };
        let stream = futures_util::stream::iter([Ok(page)]).chain(futures_util::stream::pending());
        let mut rx = pipeline(budget, stream, |p: Page<u32>| Planned {
            write: PageWrite::default(),
            next_link: p.next_link,
            delta_link: None,
            latest: None,
        });
        let first = rx.recv().await.expect("a page").expect("ok");
        (rx, first)
    }

    #[tokio::test]
    async fn a_page_holds_room_for_reading_its_body_until_planned_then_for_its_rows() {
        let budget = PageBudget::new();
        let (_rx, first) = one_page(&budget, None).await;
        // Planned, the page keeps room for its (empty) rows only...
        assert_eq!(first.room.as_ref().map(|r| r.num_permits()), Some(1));
        // ...and the next fetch waits with room for reading a body like it.
        let reading = READ_FACTOR * 512;
        for _ in 0..100 {
            if budget.0.available_permits() == PAGE_BUDGET_KIB as usize - 1 - reading {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} KiB left", budget.0.available_permits());
    }

    #[tokio::test]
    async fn a_page_with_a_next_page_holds_room_for_that_body_too() {
        let budget = PageBudget::new();
        let link = "https://graph.example/v1.0/users?$skiptoken=x";
        let (_rx, first) = one_page(&budget, Some(link)).await;
        // No rows, but the next page's body, asked for already, is held until it is read.
        assert_eq!(first.room.as_ref().map(|r| r.num_permits()), Some(512));
    }

    fn part(items: std::ops::Range<u32>, last: bool) -> Page<u32> {
        Page {
            next_link: (!last)
                .then(|| format!("https://graph.example/v1.0/users?after={}", items.end)),
            items: items.collect(),
            delta_link: None,
            count: None,
            body_len: 10,
        }
    }

    #[tokio::test]
    async fn joined_pages_hold_at_least_the_rows_asked_for_in_order_and_the_last_part_s_link() {
        let parts = [
            part(0..3, false),
            part(3..6, false),
            part(6..9, false),
            part(9..10, true),
        ];
        let stream: PageStream<u32> = Box::pin(futures_util::stream::iter(parts.map(Ok)));
        let pages: Vec<Page<u32>> = joined(stream, 5)
            .map(|p| p.expect("a page"))
            .collect()
            .await;
        let items: Vec<Vec<u32>> = pages.iter().map(|p| p.items.clone()).collect();
        assert_eq!(items, [vec![0, 1, 2, 3, 4, 5], vec![6, 7, 8, 9]]);
        assert_eq!(
            pages[0].next_link.as_deref(),
            Some("https://graph.example/v1.0/users?after=6")
        );
        assert_eq!(pages[1].next_link, None);
        assert_eq!((pages[0].body_len, pages[1].body_len), (20, 20));
    }

    #[tokio::test]
    async fn a_listing_error_comes_after_the_pages_joined_before_it() {
        let parts = [
            Ok(part(0..3, false)),
            Err(tenantlink_graph::Error::Network("connection reset".into())),
            Ok(part(3..6, true)),
        ];
        let stream: PageStream<u32> = Box::pin(futures_util::stream::iter(parts));
        let got: Vec<_> = joined(stream, 5).collect().await;
        assert_eq!(got.len(), 2, "the error ends the stream");
        assert_eq!(
            got[0].as_ref().map(|p| p.items.clone()).ok(),
            Some(vec![0, 1, 2])
        );
        assert!(matches!(got[1], Err(tenantlink_graph::Error::Network(_))));
    }

    #[test]
    fn a_page_weighs_its_rows_and_raw_records() {
        let mut page = PageWrite::default();
        assert_eq!(weight(&page), 0);
        page.sign_ins = (0..1000)
            .map(|i| tenantlink_store::SignInRow {
                id: i.to_string(),
                created_at: now(),
                user_id: None,
                user_principal_name: None,
                app_display_name: None,
                ip_address: None,
                status_code: None,
                raw: "x".repeat(1024),
            })
            .collect();
        // 1,000 records of 1 KiB, and their rows.
        assert!((1200..1300).contains(&weight(&page)), "{}", weight(&page));
    }
}
