//! The emulated world: tenants, app registrations and each tenant's directory, as plain data.
//!
//! Every directory object carries the `version` of the tenant-wide change counter at its last
//! change, and deleted objects stay as tombstones: that is what delta queries are computed
//! from. Membership changes are logged with their version for `members@delta`.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Microsoft Graph's application permissions the emulator knows and enforces.
pub const GRAPH_APP_PERMISSIONS: &[&str] = &[
    "User.Read.All",
    "Group.Read.All",
    "GroupMember.Read.All",
    "Device.Read.All",
    "DeviceManagementManagedDevices.Read.All",
    "AuditLog.Read.All",
    "SecurityAlert.Read.All",
    "Directory.Read.All",
];

/// Well-known resources (audiences) that hand out tokens.
pub mod resources {
    /// Microsoft Graph.
    pub const GRAPH: &str = "https://graph.microsoft.com";
    /// Azure Resource Manager.
    pub const ARM: &str = "https://management.azure.com";
    /// Azure Storage.
    pub const STORAGE: &str = "https://storage.azure.com";
    /// Microsoft Graph's application id, the `aud` of Graph tokens as some SDKs expect it.
    pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
}

/// An app registration (one per client id, in its home tenant).
#[derive(Debug, Clone)]
pub struct AppRegistration {
    /// The application (client) id.
    pub client_id: String,
    /// Its display name.
    pub display_name: String,
    /// The tenant it is registered in.
    pub home_tenant: String,
    /// Whether other tenants may consent to it.
    pub multi_tenant: bool,
    /// Client secrets, some of them possibly expired.
    pub secrets: Vec<ClientSecret>,
    /// Certificates whose keys may sign client assertions.
    pub certificates: Vec<AppCertificate>,
    /// Redirect URIs accepted in the authorization-code flow.
    pub redirect_uris: Vec<String>,
    /// Application permissions the app asks for (granted per tenant in [`AppGrant`]).
    pub requested_roles: BTreeSet<String>,
}

/// A client secret of an app.
#[derive(Clone)]
pub struct ClientSecret {
    /// The credential's key id.
    pub key_id: String,
    /// The secret itself.
    pub value: String,
    /// When it stops working.
    pub expires: DateTime<Utc>,
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecret")
            .field("key_id", &self.key_id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// A certificate credential: the public key that verifies client assertions.
#[derive(Debug, Clone)]
pub struct AppCertificate {
    /// base64url SHA-256 thumbprint of the certificate's DER (`x5t#S256`).
    pub thumbprint_sha256: String,
    /// base64url SHA-1 thumbprint (`x5t`), which older clients send.
    pub thumbprint_sha1: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// When it stops working.
    pub expires: DateTime<Utc>,
}

/// What a tenant's admin granted an app (its service principal in that tenant).
#[derive(Debug, Clone, Default)]
pub struct AppGrant {
    /// Granted application permissions (`roles` in app tokens).
    pub roles: BTreeSet<String>,
    /// Consented delegated permissions (`scp` in user tokens).
    pub scopes: BTreeSet<String>,
}

/// One tenant.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// The tenant id (GUID).
    pub id: String,
    /// Display name of the organization.
    pub display_name: String,
    /// The verified `*.onmicrosoft.com` domain.
    pub domain: String,
    /// Apps that have a service principal here, by client id.
    pub grants: HashMap<String, AppGrant>,
    /// The directory.
    pub dir: Directory,
}

/// Whether an object is live or deleted (deleted objects stay as tombstones for delta).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjState {
    /// Live.
    Active,
    /// In the recycle bin (`deletedItems`); restorable; delta says `"reason": "changed"`.
    SoftDeleted,
    /// Gone for good; delta says `"reason": "deleted"`.
    HardDeleted,
}

/// The kind of a directory object that can be a group member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberKind {
    /// `#microsoft.graph.user`.
    User,
    /// `#microsoft.graph.group`.
    Group,
}

impl MemberKind {
    /// The `@odata.type` of this kind.
    pub fn odata_type(self) -> &'static str {
        match self {
            Self::User => "#microsoft.graph.user",
            Self::Group => "#microsoft.graph.group",
        }
    }
}

/// A member of a group: an index into the tenant's users or groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Member {
    /// User or group.
    pub kind: MemberKind,
    /// Index into [`Directory::users`] or [`Directory::groups`].
    pub idx: u32,
}

/// `signInActivity` of a user.
#[derive(Debug, Clone, Default)]
pub struct SignInActivity {
    /// Last interactive sign-in.
    pub last_sign_in: Option<DateTime<Utc>>,
    /// Last non-interactive sign-in.
    pub last_non_interactive_sign_in: Option<DateTime<Utc>>,
    /// Last successful sign-in of either kind.
    pub last_successful_sign_in: Option<DateTime<Utc>>,
    /// Request id of the last interactive sign-in.
    pub last_sign_in_request_id: Option<String>,
}

/// A user (`#microsoft.graph.user`).
#[derive(Debug, Clone)]
#[expect(
    missing_docs,
    reason = "fields are Graph's user properties of the same names"
)]
pub struct User {
    pub id: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub mail_nickname: String,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub office_location: Option<String>,
    pub company_name: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub usage_location: Option<String>,
    pub mobile_phone: Option<String>,
    pub business_phones: Vec<String>,
    pub employee_id: Option<String>,
    pub preferred_language: Option<String>,
    pub account_enabled: bool,
    /// `Member` or `Guest`.
    pub user_type: String,
    pub created_date_time: DateTime<Utc>,
    /// Index of the manager in [`Directory::users`].
    pub manager: Option<u32>,
    pub sign_in_activity: SignInActivity,
    /// Properties set through the control API that have no field here, kept and returned.
    pub extra: serde_json::Map<String, Value>,
    pub state: ObjState,
    pub deleted_date_time: Option<DateTime<Utc>>,
    /// Groups the user was removed from by a soft delete, given back on restore.
    pub memberships_before_delete: Vec<u32>,
    /// Change counter at the last change.
    pub version: u64,
}

impl User {
    /// A live, enabled member user with only the required properties set.
    pub fn new(id: String, display_name: String, user_principal_name: String) -> Self {
        let mail_nickname = user_principal_name
            .split('@')
            .next()
            .unwrap_or_default()
            .to_owned();
        Self {
            id,
            display_name,
            given_name: None,
            surname: None,
            user_principal_name,
            mail: None,
            mail_nickname,
            job_title: None,
            department: None,
            office_location: None,
            company_name: None,
            city: None,
            country: None,
            usage_location: None,
            mobile_phone: None,
            business_phones: Vec::new(),
            employee_id: None,
            preferred_language: None,
            account_enabled: true,
            user_type: "Member".into(),
            created_date_time: Utc::now(),
            manager: None,
            sign_in_activity: SignInActivity::default(),
            extra: serde_json::Map::new(),
            state: ObjState::Active,
            deleted_date_time: None,
            memberships_before_delete: Vec::new(),
            version: 0,
        }
    }
}

/// A group (`#microsoft.graph.group`).
#[derive(Debug, Clone)]
#[expect(
    missing_docs,
    reason = "fields are Graph's group properties of the same names"
)]
pub struct Group {
    pub id: String,
    pub display_name: String,
    pub description: Option<String>,
    pub mail: Option<String>,
    pub mail_enabled: bool,
    pub mail_nickname: String,
    pub security_enabled: bool,
    /// `["Unified"]` for Microsoft 365 groups, `[]` otherwise.
    pub group_types: Vec<String>,
    pub visibility: Option<String>,
    pub created_date_time: DateTime<Utc>,
    /// Direct members, in the order they were added.
    pub members: Vec<Member>,
    pub extra: serde_json::Map<String, Value>,
    pub state: ObjState,
    pub deleted_date_time: Option<DateTime<Utc>>,
    /// Change counter at the last change of the group's own properties.
    pub version: u64,
}

/// The three kinds of groups Microsoft 365 has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    /// `groupTypes` has `Unified`.
    Microsoft365,
    /// Security-enabled, not mail-enabled.
    Security,
    /// Mail-enabled security group.
    MailEnabledSecurity,
    /// Mail-enabled, not security-enabled.
    Distribution,
}

impl Group {
    /// The kind, from `groupTypes`, `mailEnabled` and `securityEnabled` (as documented).
    pub fn kind(&self) -> GroupKind {
        if self.group_types.iter().any(|t| t == "Unified") {
            GroupKind::Microsoft365
        } else if self.security_enabled && self.mail_enabled {
            GroupKind::MailEnabledSecurity
        } else if self.security_enabled {
            GroupKind::Security
        } else {
            GroupKind::Distribution
        }
    }
}

/// An Intune managed device (`#microsoft.graph.managedDevice`).
#[derive(Debug, Clone)]
#[expect(
    missing_docs,
    reason = "fields are Graph's managedDevice properties of the same names"
)]
pub struct ManagedDevice {
    pub id: String,
    pub device_name: String,
    pub user_id: Option<String>,
    pub user_principal_name: Option<String>,
    pub user_display_name: Option<String>,
    pub email_address: Option<String>,
    pub operating_system: String,
    pub os_version: String,
    /// unknown, compliant, noncompliant, conflict, error, inGracePeriod, configManager.
    pub compliance_state: String,
    /// company or personal.
    pub managed_device_owner_type: String,
    pub management_agent: String,
    pub enrolled_date_time: DateTime<Utc>,
    pub last_sync_date_time: DateTime<Utc>,
    pub azure_ad_device_id: String,
    pub azure_ad_registered: bool,
    pub device_enrollment_type: String,
    pub manufacturer: String,
    pub model: String,
    pub serial_number: String,
    pub is_encrypted: bool,
    pub is_supervised: bool,
    pub jail_broken: String,
    pub total_storage_space_in_bytes: i64,
    pub free_storage_space_in_bytes: i64,
    pub extra: serde_json::Map<String, Value>,
    pub deleted: bool,
}

/// A record of an audit log (sign-in, directory audit or security alert): its id, the time
/// it is filtered and ordered by, and its JSON exactly as Graph returns it.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// The record id.
    pub id: String,
    /// `createdDateTime` (sign-ins, alerts) or `activityDateTime` (directory audits).
    pub time: DateTime<Utc>,
    /// The full JSON object.
    pub body: Value,
}

/// One membership change, for `members@delta`.
#[derive(Debug, Clone, Copy)]
pub struct MembershipEvent {
    /// Change counter when it happened.
    pub version: u64,
    /// Index of the group.
    pub group: u32,
    /// The member added or removed.
    pub member: Member,
    /// Added (true) or removed (false).
    pub added: bool,
}

/// A tenant's directory and Intune and audit data.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Users, including tombstones.
    pub users: Vec<User>,
    /// Groups, including tombstones.
    pub groups: Vec<Group>,
    /// Intune managed devices, including deleted ones.
    pub devices: Vec<ManagedDevice>,
    /// Sign-ins, oldest first.
    pub sign_ins: Vec<AuditRecord>,
    /// Directory audits, oldest first.
    pub directory_audits: Vec<AuditRecord>,
    /// Security alerts (alerts_v2), oldest first.
    pub alerts: Vec<AuditRecord>,
    /// The change counter; every change takes the next value.
    pub version: u64,
    /// Membership changes in order.
    pub membership_log: Vec<MembershipEvent>,
    /// The lowest version a delta token may still start from (older ones need a resync).
    pub delta_floor: u64,
    user_ids: HashMap<String, u32>,
    user_upns: HashMap<String, u32>,
    group_ids: HashMap<String, u32>,
    device_ids: HashMap<String, u32>,
}

impl Directory {
    /// Takes the next change counter value.
    pub fn bump(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    /// Adds a user and indexes it; returns its index.
    pub fn push_user(&mut self, user: User) -> u32 {
        let idx = u32::try_from(self.users.len()).expect("fewer than 2^32 users");
        self.user_ids.insert(user.id.clone(), idx);
        self.user_upns
            .insert(user.user_principal_name.to_ascii_lowercase(), idx);
        self.users.push(user);
        idx
    }

    /// Adds a group and indexes it; returns its index.
    pub fn push_group(&mut self, group: Group) -> u32 {
        let idx = u32::try_from(self.groups.len()).expect("fewer than 2^32 groups");
        self.group_ids.insert(group.id.clone(), idx);
        self.groups.push(group);
        idx
    }

    /// Adds a managed device and indexes it; returns its index.
    pub fn push_device(&mut self, device: ManagedDevice) -> u32 {
        let idx = u32::try_from(self.devices.len()).expect("fewer than 2^32 devices");
        self.device_ids.insert(device.id.clone(), idx);
        self.devices.push(device);
        idx
    }

    /// A user's index by id or userPrincipalName (case-insensitive), tombstones included.
    pub fn user_idx(&self, id_or_upn: &str) -> Option<u32> {
        self.user_ids
            .get(id_or_upn)
            .or_else(|| self.user_upns.get(&id_or_upn.to_ascii_lowercase()))
            .copied()
    }

    /// A live user by id or userPrincipalName.
    pub fn live_user(&self, id_or_upn: &str) -> Option<u32> {
        self.user_idx(id_or_upn)
            .filter(|&i| self.users[i as usize].state == ObjState::Active)
    }

    /// Re-indexes a user's userPrincipalName after it changed.
    pub fn reindex_upn(&mut self, idx: u32, old_upn: &str) {
        self.user_upns.remove(&old_upn.to_ascii_lowercase());
        let upn = self.users[idx as usize]
            .user_principal_name
            .to_ascii_lowercase();
        self.user_upns.insert(upn, idx);
    }

    /// A group's index by id, tombstones included.
    pub fn group_idx(&self, id: &str) -> Option<u32> {
        self.group_ids.get(id).copied()
    }

    /// A live group by id.
    pub fn live_group(&self, id: &str) -> Option<u32> {
        self.group_idx(id)
            .filter(|&i| self.groups[i as usize].state == ObjState::Active)
    }

    /// A managed device's index by id (deleted ones included).
    pub fn device_idx(&self, id: &str) -> Option<u32> {
        self.device_ids.get(id).copied()
    }

    /// The id of a member.
    pub fn member_id(&self, member: Member) -> &str {
        match member.kind {
            MemberKind::User => &self.users[member.idx as usize].id,
            MemberKind::Group => &self.groups[member.idx as usize].id,
        }
    }

    /// Whether a member object is live.
    pub fn member_live(&self, member: Member) -> bool {
        match member.kind {
            MemberKind::User => self.users[member.idx as usize].state == ObjState::Active,
            MemberKind::Group => self.groups[member.idx as usize].state == ObjState::Active,
        }
    }

    /// Adds a member to a group (no-op if present); logs the change. Returns whether it
    /// changed anything.
    pub fn add_member(&mut self, group: u32, member: Member) -> bool {
        if self.groups[group as usize].members.contains(&member) {
            return false;
        }
        let version = self.bump();
        self.groups[group as usize].members.push(member);
        self.membership_log.push(MembershipEvent {
            version,
            group,
            member,
            added: true,
        });
        true
    }

    /// Removes a member from a group; logs the change. Returns whether it was a member.
    pub fn remove_member(&mut self, group: u32, member: Member) -> bool {
        let members = &mut self.groups[group as usize].members;
        let Some(pos) = members.iter().position(|m| *m == member) else {
            return false;
        };
        members.remove(pos);
        let version = self.bump();
        self.membership_log.push(MembershipEvent {
            version,
            group,
            member,
            added: false,
        });
        true
    }

    /// Soft-deletes a user: it leaves its groups (logged, remembered for a restore) and
    /// delta reports it as removed with reason `changed`.
    pub fn soft_delete_user(&mut self, idx: u32, now: DateTime<Utc>) {
        let member = Member {
            kind: MemberKind::User,
            idx,
        };
        let groups = self.groups_of(member);
        for &g in &groups {
            self.remove_member(g, member);
        }
        let version = self.bump();
        let user = &mut self.users[idx as usize];
        user.memberships_before_delete = groups;
        user.state = ObjState::SoftDeleted;
        user.deleted_date_time = Some(now);
        user.version = version;
    }

    /// Restores a soft-deleted user with its group memberships. False if not soft-deleted.
    pub fn restore_user(&mut self, idx: u32) -> bool {
        if self.users[idx as usize].state != ObjState::SoftDeleted {
            return false;
        }
        let version = self.bump();
        let groups = {
            let user = &mut self.users[idx as usize];
            user.state = ObjState::Active;
            user.deleted_date_time = None;
            user.version = version;
            std::mem::take(&mut user.memberships_before_delete)
        };
        for g in groups {
            if self.groups[g as usize].state == ObjState::Active {
                self.add_member(
                    g,
                    Member {
                        kind: MemberKind::User,
                        idx,
                    },
                );
            }
        }
        true
    }

    /// Deletes a user for good (from live or soft-deleted).
    pub fn hard_delete_user(&mut self, idx: u32, now: DateTime<Utc>) {
        if self.users[idx as usize].state == ObjState::Active {
            self.soft_delete_user(idx, now);
        }
        let version = self.bump();
        let user = &mut self.users[idx as usize];
        user.state = ObjState::HardDeleted;
        user.memberships_before_delete.clear();
        user.version = version;
    }

    /// Soft-deletes a group: it leaves the groups it was nested in; its own member list is
    /// kept for a restore.
    pub fn soft_delete_group(&mut self, idx: u32, now: DateTime<Utc>) {
        let member = Member {
            kind: MemberKind::Group,
            idx,
        };
        for g in self.groups_of(member) {
            self.remove_member(g, member);
        }
        let version = self.bump();
        let group = &mut self.groups[idx as usize];
        group.state = ObjState::SoftDeleted;
        group.deleted_date_time = Some(now);
        group.version = version;
    }

    /// Restores a soft-deleted group. False if it was not soft-deleted.
    pub fn restore_group(&mut self, idx: u32) -> bool {
        if self.groups[idx as usize].state != ObjState::SoftDeleted {
            return false;
        }
        let version = self.bump();
        let group = &mut self.groups[idx as usize];
        group.state = ObjState::Active;
        group.deleted_date_time = None;
        group.version = version;
        // Its kept members come back into view: logged so `members@delta` reports them to a
        // client that dropped the group when it was deleted.
        let members: Vec<Member> = group.members.clone();
        for member in members {
            if self.member_live(member) {
                self.membership_log.push(MembershipEvent {
                    version,
                    group: idx,
                    member,
                    added: true,
                });
            }
        }
        true
    }

    /// Deletes a group for good.
    pub fn hard_delete_group(&mut self, idx: u32, now: DateTime<Utc>) {
        if self.groups[idx as usize].state == ObjState::Active {
            self.soft_delete_group(idx, now);
        }
        let version = self.bump();
        let group = &mut self.groups[idx as usize];
        group.state = ObjState::HardDeleted;
        group.version = version;
    }

    /// Live direct groups of a member (users or groups), in group order.
    pub fn groups_of(&self, member: Member) -> Vec<u32> {
        self.groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.state == ObjState::Active && g.members.contains(&member))
            .map(|(i, _)| u32::try_from(i).expect("fewer than 2^32 groups"))
            .collect()
    }

    /// Every group a member belongs to directly or through nested groups, each once.
    pub fn transitive_groups_of(&self, member: Member) -> Vec<u32> {
        let mut seen = BTreeSet::new();
        let mut order = Vec::new();
        let mut frontier = vec![member];
        while let Some(current) = frontier.pop() {
            for group in self.groups_of(current) {
                if seen.insert(group) {
                    order.push(group);
                    frontier.push(Member {
                        kind: MemberKind::Group,
                        idx: group,
                    });
                }
            }
        }
        order
    }

    /// Every live member of a group, directly or through nested groups, each once (nested
    /// groups themselves included, as Graph's transitiveMembers does).
    pub fn transitive_members_of(&self, group: u32) -> Vec<Member> {
        let mut seen = std::collections::HashSet::new();
        let mut order = Vec::new();
        let mut visited_groups = BTreeSet::from([group]);
        let mut frontier = vec![group];
        while let Some(current) = frontier.pop() {
            for &member in &self.groups[current as usize].members {
                let is_root = member.kind == MemberKind::Group && member.idx == group;
                if is_root || !self.member_live(member) || !seen.insert(member) {
                    continue;
                }
                order.push(member);
                if member.kind == MemberKind::Group && visited_groups.insert(member.idx) {
                    frontier.push(member.idx);
                }
            }
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> User {
        User::new(id.into(), id.into(), format!("{id}@t.onmicrosoft.com"))
    }

    fn group(id: &str) -> Group {
        Group {
            id: id.into(),
            display_name: id.into(),
            description: None,
            mail: None,
            mail_enabled: false,
            mail_nickname: id.into(),
            security_enabled: true,
            group_types: vec![],
            visibility: None,
            created_date_time: Utc::now(),
            members: vec![],
            extra: Default::default(),
            state: ObjState::Active,
            deleted_date_time: None,
            version: 0,
        }
    }

    #[test]
    fn nested_membership_is_walked_once_even_with_cycles() {
        let mut dir = Directory::default();
        let u = dir.push_user(user("u"));
        let a = dir.push_group(group("a"));
        let b = dir.push_group(group("b"));
        let user = Member {
            kind: MemberKind::User,
            idx: u,
        };
        let ga = Member {
            kind: MemberKind::Group,
            idx: a,
        };
        let gb = Member {
            kind: MemberKind::Group,
            idx: b,
        };
        assert!(dir.add_member(a, user));
        assert!(!dir.add_member(a, user));
        assert!(dir.add_member(b, ga));
        assert!(dir.add_member(a, gb)); // a cycle: a -> b -> a
        assert_eq!(dir.transitive_groups_of(user).len(), 2);
        assert_eq!(dir.transitive_members_of(b).len(), 2); // a and u; never b itself
        assert_eq!(dir.membership_log.len(), 3);
        assert_eq!(dir.user_idx("U@T.onmicrosoft.com"), Some(u));
        assert!(dir.remove_member(a, user));
        assert!(dir.transitive_groups_of(user).is_empty());
    }
}
