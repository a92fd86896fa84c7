//! What a sync is asked to do and what it reports: sync types, options, per-resource and
//! per-run reports, progress events. Nothing here holds a link or a token.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Error;

/// What a run syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncType {
    /// Users, groups, devices and audit data, each as a full round (then a sweep).
    Full,
    /// The same, each incremental when it has a cursor, else full.
    Incremental,
    /// Users (and their `signInActivity`) alone.
    Users,
    /// Groups and memberships alone.
    Groups,
    /// Intune managed devices alone.
    Devices,
    /// Sign-ins, directory audits and security alerts.
    Audit,
}

impl SyncType {
    /// Every type, in the order of [`SyncType::as_str`]'s names.
    pub const ALL: [Self; 6] = [
        Self::Full,
        Self::Incremental,
        Self::Users,
        Self::Groups,
        Self::Devices,
        Self::Audit,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Incremental => "incremental",
            Self::Users => "users",
            Self::Groups => "groups",
            Self::Devices => "devices",
            Self::Audit => "audit",
        }
    }

    /// The resources a run of this type syncs, in order.
    pub fn resources(self) -> &'static [Resource] {
        match self {
            Self::Full | Self::Incremental => &Resource::ALL,
            Self::Users => &[Resource::Users],
            Self::Groups => &[Resource::Groups],
            Self::Devices => &[Resource::Devices],
            Self::Audit => &[
                Resource::SignIns,
                Resource::DirectoryAudits,
                Resource::Alerts,
            ],
        }
    }
}

impl std::fmt::Display for SyncType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SyncType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|t| t.as_str()).collect();
                Error::Invalid(format!(
                    "unknown sync type {s:?}: expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// One kind of synced data, with its own cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// Users (delta), then their `signInActivity`.
    Users,
    /// Groups and direct memberships (delta).
    Groups,
    /// Intune managed devices.
    Devices,
    /// Sign-in logs.
    SignIns,
    /// Directory audit logs.
    DirectoryAudits,
    /// Security alerts (v2).
    Alerts,
}

impl Resource {
    /// Every resource.
    pub const ALL: [Self; 6] = [
        Self::Users,
        Self::Groups,
        Self::Devices,
        Self::SignIns,
        Self::DirectoryAudits,
        Self::Alerts,
    ];

    /// The stored name (the cursor's `resource`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Groups => "groups",
            Self::Devices => "devices",
            Self::SignIns => "sign_ins",
            Self::DirectoryAudits => "directory_audits",
            Self::Alerts => "alerts",
        }
    }
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a resource was synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Everything listed in a new round; rows not seen are swept (users, groups, devices).
    Full,
    /// Changes since the cursor.
    Incremental,
    /// An interrupted round went on from its last committed page.
    Resumed,
}

/// How complete a resource or run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Completeness {
    /// Everything was synced.
    Complete,
    /// Some of it (throttled past the retry budget, a permission missing).
    Partial,
    /// It failed.
    Failed,
}

impl Mode {
    /// Its name in reports (`full`, `incremental`, `resumed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Incremental => "incremental",
            Self::Resumed => "resumed",
        }
    }
}

impl Completeness {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Partial => "partial",
            Self::Failed => "failed",
        }
    }
}

impl std::fmt::Display for Completeness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run goes about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOptions {
    /// What to sync.
    pub sync_type: SyncType,
    /// Resources synced at once (at least 1).
    pub concurrency: usize,
    /// How far before a time cursor an incremental listing starts again (late records).
    pub audit_overlap: Duration,
    /// How far back audit data is read on its first sync or a full one.
    pub audit_lookback: Duration,
    /// A `running` run not updated for this long was interrupted and is resumed.
    pub stale_after: Duration,
    /// Devices have no delta: an incremental run lists only devices that checked in since
    /// the last run (`lastSyncDateTime`), which cannot see deleted ones, so it does a full
    /// listing that sweeps them when the last full one started longer ago than this
    /// (default a day; zero: every run).
    pub devices_full_every: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            sync_type: SyncType::Incremental,
            concurrency: 3,
            // Sign-in and audit records can reach Graph hours late; re-reading two hours
            // costs little (writes are idempotent by id) and misses nothing that late.
            audit_overlap: Duration::from_secs(2 * 3600),
            audit_lookback: Duration::from_secs(30 * 24 * 3600),
            stale_after: Duration::from_secs(2 * 60),
            devices_full_every: Duration::from_secs(24 * 3600),
        }
    }
}

impl SyncOptions {
    /// Options for a run of `sync_type`, the rest by default.
    pub fn of(sync_type: SyncType) -> Self {
        Self {
            sync_type,
            ..Self::default()
        }
    }

    /// Refuses options that cannot work.
    pub fn validate(&self) -> Result<(), Error> {
        if self.concurrency == 0 || self.concurrency > 16 {
            return Err(Error::Invalid(format!(
                "concurrency must be between 1 and 16, not {}",
                self.concurrency
            )));
        }
        if self.audit_lookback.is_zero() {
            return Err(Error::Invalid("audit_lookback must be above zero".into()));
        }
        if self.audit_overlap >= self.audit_lookback {
            return Err(Error::Invalid(
                "audit_overlap must be shorter than audit_lookback".into(),
            ));
        }
        if self.stale_after < Duration::from_secs(1) {
            return Err(Error::Invalid(
                "stale_after must be at least a second".into(),
            ));
        }
        Ok(())
    }
}

/// What happened to one resource in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceReport {
    /// The resource.
    pub resource: Resource,
    /// How it was synced.
    pub mode: Mode,
    /// How complete.
    pub status: Completeness,
    /// Why it is partial or failed, for people.
    pub reason: Option<String>,
    /// The application permission that was missing, if that is why it is partial.
    pub missing_permission: Option<String>,
    /// Why an incremental round became a full one (an expired delta or page token).
    pub fell_back_to_full: Option<String>,
    /// Pages committed.
    pub pages: u64,
    /// Rows written (upserted, deleted, marked).
    pub rows: u64,
    /// Rows removed by changes (deleted or soft-deleted objects, edges removed).
    pub removed: u64,
    /// Rows a full round swept (not seen in it).
    pub swept: u64,
    /// Graph requests sent (approximate when resources run at once).
    pub requests: u64,
    /// Graph retries (approximate when resources run at once).
    pub retries: u64,
    /// Time spent waiting on throttling (approximate when resources run at once). In JSON,
    /// `throttled_seconds`.
    #[serde(rename = "throttled_seconds", alias = "throttled", with = "seconds")]
    pub throttled: Duration,
    /// Wall time. In JSON, `elapsed_seconds`.
    #[serde(rename = "elapsed_seconds", alias = "elapsed", with = "seconds")]
    pub elapsed: Duration,
}

/// Durations in JSON as seconds (a number, as the API gives them). Reports stored before
/// they were, with serde's `{"secs", "nanos"}` under `elapsed`/`throttled`, still read.
mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        d.as_secs_f64().serialize(s)
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Seconds(f64),
        Parts { secs: u64, nanos: u32 },
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Stored::deserialize(d)? {
            Stored::Seconds(s) => Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom),
            Stored::Parts { secs, nanos } => Ok(Duration::new(secs, nanos)),
        }
    }
}

impl ResourceReport {
    /// A report of nothing done yet.
    pub fn new(resource: Resource, mode: Mode) -> Self {
        Self {
            resource,
            mode,
            status: Completeness::Complete,
            reason: None,
            missing_permission: None,
            fell_back_to_full: None,
            pages: 0,
            rows: 0,
            removed: 0,
            swept: 0,
            requests: 0,
            retries: 0,
            throttled: Duration::ZERO,
            elapsed: Duration::ZERO,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The run's id.
    pub run_id: String,
    /// The connection synced.
    pub connection_id: String,
    /// What was synced.
    pub sync_type: SyncType,
    /// The worst of its resources.
    pub status: Completeness,
    /// Whether it went on with an interrupted run.
    pub resumed: bool,
    /// Per resource, in [`Resource`] order.
    pub resources: Vec<ResourceReport>,
    /// Rows written, all resources.
    pub rows: u64,
    /// Wall time (of this process's part, for a resumed run). In JSON, `elapsed_seconds`.
    #[serde(rename = "elapsed_seconds", alias = "elapsed", with = "seconds")]
    pub elapsed: Duration,
}

impl RunReport {
    /// The report of `resources`: status the worst of theirs, rows summed.
    pub(crate) fn of(
        run_id: &str,
        connection_id: &str,
        sync_type: SyncType,
        resumed: bool,
        mut resources: Vec<ResourceReport>,
        elapsed: Duration,
    ) -> Self {
        resources.sort_by_key(|r| r.resource);
        Self {
            run_id: run_id.to_owned(),
            connection_id: connection_id.to_owned(),
            sync_type,
            status: resources
                .iter()
                .map(|r| r.status)
                .max()
                .unwrap_or(Completeness::Complete),
            resumed,
            rows: resources.iter().map(|r| r.rows).sum(),
            resources,
            elapsed,
        }
    }
}

/// What a run reports as it goes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// The run started (or an interrupted one was taken up).
    RunStarted {
        /// Its id.
        run_id: String,
        /// Whether it goes on with an interrupted run.
        resumed: bool,
    },
    /// A resource started.
    ResourceStarted {
        /// Which.
        resource: Resource,
        /// How.
        mode: Mode,
    },
    /// A page was committed.
    Page {
        /// Which resource.
        resource: Resource,
        /// Pages committed so far (in this process).
        pages: u64,
        /// Rows written so far.
        rows: u64,
        /// Rows per second over the resource so far.
        rows_per_sec: f64,
    },
    /// A resource finished.
    ResourceFinished(ResourceReport),
    /// The run finished.
    RunFinished(RunReport),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_types_parse_and_print() {
        for t in SyncType::ALL {
            assert_eq!(t.as_str().parse::<SyncType>().expect("parses"), t);
            assert_eq!(t.to_string(), t.as_str());
        }
        let err = "everything".parse::<SyncType>().expect_err("unknown");
        assert!(
            err.to_string()
                .contains("full, incremental, users, groups, devices, audit")
        );
    }

    #[test]
    fn default_options_are_valid_and_bad_ones_are_refused() {
        assert!(SyncOptions::default().validate().is_ok());
        let bad = SyncOptions {
            concurrency: 0,
            ..SyncOptions::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn run_status_is_the_worst_resource_status() {
        let mut a = ResourceReport::new(Resource::Groups, Mode::Full);
        a.rows = 3;
        let mut b = ResourceReport::new(Resource::Users, Mode::Incremental);
        b.status = Completeness::Partial;
        b.rows = 2;
        let r = RunReport::of("r", "c", SyncType::Full, false, vec![a, b], Duration::ZERO);
        assert_eq!(r.status, Completeness::Partial);
        assert_eq!(r.rows, 5);
        assert_eq!(r.resources[0].resource, Resource::Users);
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["resources"][0]["resource"], "users");
        assert_eq!(json["status"], "partial");
    }

    #[test]
    fn durations_are_seconds_and_reports_stored_as_parts_still_read() {
        let mut a = ResourceReport::new(Resource::Users, Mode::Full);
        a.elapsed = Duration::from_millis(1500);
        a.throttled = Duration::from_millis(250);
        let r = RunReport::of(
            "r",
            "c",
            SyncType::Full,
            false,
            vec![a],
            Duration::from_secs(2),
        );
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["elapsed_seconds"], 2.0);
        assert_eq!(json["resources"][0]["elapsed_seconds"], 1.5);
        assert_eq!(json["resources"][0]["throttled_seconds"], 0.25);
        let back: RunReport = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, r);

        // As serde wrote a `Duration` before: `{"secs", "nanos"}` under the old names.
        let mut stored = serde_json::to_value(&r).expect("json");
        let old = |secs: u64, nanos: u32| serde_json::json!({"secs": secs, "nanos": nanos});
        let o = stored.as_object_mut().expect("object");
        o.remove("elapsed_seconds");
        o.insert("elapsed".into(), old(2, 0));
        let res = o["resources"][0].as_object_mut().expect("resource");
        res.remove("elapsed_seconds");
        res.remove("throttled_seconds");
        res.insert("elapsed".into(), old(1, 500_000_000));
        res.insert("throttled".into(), old(0, 250_000_000));
        let back: RunReport = serde_json::from_value(stored).expect("reads a stored report");
        assert_eq!(back, r);

        let negative = serde_json::json!(-1.0);
        assert!(
            seconds::deserialize(negative).is_err(),
            "no negative durations"
        );
    }
}
