//! Seeded random change of a tenant ("churn"): a share of its users, groups, memberships and
//! devices created, updated, soft-deleted, hard-deleted or restored at once, for
//! incremental-sync tests, benchmarks and demos.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{Directory, Member, MemberKind, ObjState, User};
use crate::rng::Rng;

/// What one churn changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChurnReport {
    /// Users whose job title and department changed.
    pub users_updated: usize,
    /// Users created.
    pub users_created: usize,
    /// Users soft-deleted.
    pub users_soft_deleted: usize,
    /// Users deleted for good.
    pub users_hard_deleted: usize,
    /// Soft-deleted users restored.
    pub users_restored: usize,
    /// Groups whose description changed.
    pub groups_updated: usize,
    /// Membership edges added.
    pub members_added: usize,
    /// Membership edges removed.
    pub members_removed: usize,
    /// Devices that checked in (new `lastSyncDateTime`, possibly a new compliance state).
    pub devices_updated: usize,
}

impl ChurnReport {
    /// Objects and edges changed in all.
    pub fn total(&self) -> usize {
        self.users_updated
            + self.users_created
            + self.users_soft_deleted
            + self.users_hard_deleted
            + self.users_restored
            + self.groups_updated
            + self.members_added
            + self.members_removed
            + self.devices_updated
    }
}

fn live_users(dir: &Directory) -> Vec<u32> {
    (0..dir.users.len() as u32)
        .filter(|&i| dir.users[i as usize].state == ObjState::Active)
        .collect()
}

/// Changes about `fraction` of the tenant's users, groups and devices (at least one of
/// each kind of change when `fraction > 0`), deterministically for a `seed`. Of the users
/// touched: 60% updated, 15% created, 10% soft-deleted, 10% hard-deleted, 5% restored.
pub fn churn(dir: &mut Directory, fraction: f64, seed: u64, now: DateTime<Utc>) -> ChurnReport {
    let mut report = ChurnReport::default();
    if fraction <= 0.0 {
        return report;
    }
    let mut rng = Rng::fork(seed, "churn");
    let share = |n: usize, part: f64| ((n as f64 * fraction * part).round() as usize).max(1);
    let users = live_users(dir);
    if users.is_empty() {
        return report;
    }
    let domain = dir.users[users[0] as usize]
        .user_principal_name
        .split_once('@')
        .map_or("example.test".to_owned(), |(_, d)| d.to_owned());

    // Restores first, from users soft-deleted before this churn.
    let soft: Vec<u32> = (0..dir.users.len() as u32)
        .filter(|&i| dir.users[i as usize].state == ObjState::SoftDeleted)
        .collect();
    for _ in 0..share(users.len(), 0.05).min(soft.len()) {
        if dir.restore_user(*rng.pick(&soft)) {
            report.users_restored += 1;
        }
    }
    for _ in 0..share(users.len(), 0.6) {
        let idx = *rng.pick(&users);
        if dir.users[idx as usize].state != ObjState::Active {
            continue;
        }
        let version = dir.bump();
        let user = &mut dir.users[idx as usize];
        user.job_title = Some(format!("Churned title {}", rng.below(1000)));
        user.department = Some(format!("Department {}", rng.below(40)));
        user.version = version;
        report.users_updated += 1;
    }
    for _ in 0..share(users.len(), 0.15) {
        let n = rng.below(1_000_000_000);
        let upn = format!("churn.{n}@{domain}");
        if dir.live_user(&upn).is_some() {
            continue;
        }
        let mut user = User::new(rng.guid(), format!("Churn User {n}"), upn);
        user.department = Some("Churn".into());
        user.created_date_time = now;
        user.version = dir.bump();
        dir.push_user(user);
        report.users_created += 1;
    }
    for _ in 0..share(users.len(), 0.1) {
        let idx = *rng.pick(&users);
        if dir.users[idx as usize].state == ObjState::Active {
            dir.soft_delete_user(idx, now);
            report.users_soft_deleted += 1;
        }
    }
    for _ in 0..share(users.len(), 0.1) {
        let idx = *rng.pick(&users);
        if dir.users[idx as usize].state == ObjState::Active {
            dir.hard_delete_user(idx, now);
            report.users_hard_deleted += 1;
        }
    }

    let groups: Vec<u32> = (0..dir.groups.len() as u32)
        .filter(|&i| dir.groups[i as usize].state == ObjState::Active)
        .collect();
    if !groups.is_empty() {
        for _ in 0..share(groups.len(), 1.0) {
            let idx = *rng.pick(&groups);
            let version = dir.bump();
            let group = &mut dir.groups[idx as usize];
            group.description = Some(format!("Churned description {}", rng.below(1000)));
            group.version = version;
            report.groups_updated += 1;
        }
        let live = live_users(dir);
        for _ in 0..share(groups.len(), 2.0) {
            if live.is_empty() {
                break;
            }
            let group = *rng.pick(&groups);
            let member = Member {
                kind: MemberKind::User,
                idx: *rng.pick(&live),
            };
            if dir.add_member(group, member) {
                report.members_added += 1;
            }
            let group = *rng.pick(&groups);
            let members = &dir.groups[group as usize].members;
            if !members.is_empty() {
                let member = members[rng.below(members.len())];
                if dir.remove_member(group, member) {
                    report.members_removed += 1;
                }
            }
        }
    }

    let devices: Vec<usize> = (0..dir.devices.len())
        .filter(|&i| !dir.devices[i].deleted)
        .collect();
    if !devices.is_empty() {
        for _ in 0..share(devices.len(), 1.0) {
            let device = &mut dir.devices[*rng.pick(&devices)];
            device.last_sync_date_time = now;
            if rng.chance(0.3) {
                device.compliance_state = if device.compliance_state == "compliant" {
                    "noncompliant".into()
                } else {
                    "compliant".into()
                };
            }
            report.devices_updated += 1;
        }
    }
    report
}
