//! Planning, without IO: what one page of Graph objects changes in the store, as a
//! [`PageWrite`]. The engine applies the plan; these functions only decide it.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use tenantlink_graph::models::{Group, GroupKind, ManagedDevice, ODataType, Raw, User};
use tenantlink_graph::{DeltaChange, MemberChange, MemberChangeKind, RemovedReason};
use tenantlink_store::{
    AlertRow, AuditRow, DeviceRow, GroupRow, MemberRow, PageWrite, SignInActivityRow, SignInRow,
    UserRow,
};

fn naive(t: Option<DateTime<Utc>>) -> Option<NaiveDateTime> {
    t.map(|t| t.naive_utc())
}

/// The manager named by a user's `manager@delta` (sent when `manager` is selected in a
/// delta round), else by an expanded `manager`. An entry marked `@removed` means none.
pub fn manager_id(user: &User) -> Option<String> {
    if let Some(Value::Array(entries)) = user.extra.get("manager@delta") {
        return entries
            .iter()
            .find(|e| e.get("@removed").is_none())
            .and_then(|e| e.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    user.manager.as_ref().map(|m| m.id.clone())
}

/// The stored row of a user.
pub fn user_row(user: &User) -> UserRow {
    UserRow {
        id: user.id.clone(),
        display_name: user.display_name.clone(),
        user_principal_name: user.user_principal_name.clone(),
        given_name: user.given_name.clone(),
        surname: user.surname.clone(),
        mail: user.mail.clone(),
        department: user.department.clone(),
        job_title: user.job_title.clone(),
        office_location: user.office_location.clone(),
        mobile_phone: user.mobile_phone.clone(),
        account_enabled: user.account_enabled,
        user_type: user.user_type.clone(),
        created_at: naive(user.created_date_time),
        manager_id: manager_id(user),
        last_sign_in_at: None,
        last_non_interactive_sign_in_at: None,
        deleted_at: None,
    }
}

/// The stored name of a group kind.
pub fn kind_name(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::Microsoft365 => "microsoft365",
        GroupKind::Security => "security",
        GroupKind::MailEnabledSecurity => "mail_enabled_security",
        GroupKind::Distribution => "distribution",
        GroupKind::Unknown => "unknown",
    }
}

/// The stored name of a member's `@odata.type` (`user`, `group`, `servicePrincipal`...).
pub fn member_type(odata_type: Option<&ODataType>) -> String {
    match odata_type {
        Some(ODataType::User) => "user".into(),
        Some(ODataType::Group) => "group".into(),
        Some(ODataType::Device) => "device".into(),
        Some(ODataType::ServicePrincipal) => "servicePrincipal".into(),
        Some(ODataType::OrgContact) => "orgContact".into(),
        Some(ODataType::Application) => "application".into(),
        Some(ODataType::Other(t)) => t.trim_start_matches("#microsoft.graph.").to_owned(),
        None => "unknown".into(),
    }
}

/// Whether a delta item is only a group repeated to carry more `members@delta` (Graph
/// sends it with its id alone): its properties must not overwrite the stored ones.
pub fn is_id_only(group: &Group) -> bool {
    group.security_enabled.is_none() && group.mail_enabled.is_none()
}

/// The stored row of a group.
pub fn group_row(group: &Group) -> GroupRow {
    GroupRow {
        id: group.id.clone(),
        display_name: group.display_name.clone(),
        description: group.description.clone(),
        mail: group.mail.clone(),
        mail_nickname: group.mail_nickname.clone(),
        kind: kind_name(group.kind()).into(),
        group_types: group.group_types.as_deref().unwrap_or_default().join(","),
        mail_enabled: group.mail_enabled,
        security_enabled: group.security_enabled,
        visibility: group.visibility.clone(),
        created_at: naive(group.created_date_time),
        deleted_at: None,
    }
}

/// Indexes of the changes that decide each object: its last one on the page (an object
/// updated then deleted on one page ends deleted, and the reverse ends present).
fn last_per_id<T>(changes: &[DeltaChange<T>], id: impl Fn(&T) -> &str) -> Vec<bool> {
    let mut last = std::collections::HashMap::new();
    for (i, change) in changes.iter().enumerate() {
        let key = match change {
            DeltaChange::Upserted { item, .. } => id(item),
            DeltaChange::Removed { id, .. } => id.as_str(),
        };
        last.insert(key.to_owned(), i);
    }
    let mut decides = vec![false; changes.len()];
    for i in last.into_values() {
        decides[i] = true;
    }
    decides
}

/// A page of a users delta round. Each user appears once in the page's write: the last
/// change Graph sent for it wins.
pub fn users_page(changes: Vec<DeltaChange<User>>) -> PageWrite {
    let decides = last_per_id(&changes, |u: &User| u.id.as_str());
    let mut page = PageWrite::default();
    for (change, decides) in changes.into_iter().zip(decides) {
        if !decides {
            continue;
        }
        match change {
            DeltaChange::Upserted { item, .. } => page.users.push(user_row(&item)),
            DeltaChange::Removed { id, reason } => match reason {
                RemovedReason::Deleted => page.users_deleted.push(id),
                RemovedReason::Changed | RemovedReason::Other(_) => {
                    page.users_soft_deleted.push(id);
                }
            },
        }
    }
    page
}

fn member_changes(page: &mut PageWrite, group_id: &str, members: Vec<MemberChange>) {
    for m in members {
        match m.change {
            MemberChangeKind::Added => page.members_added.push(MemberRow {
                group_id: group_id.to_owned(),
                member_type: member_type(m.odata_type.as_ref()),
                member_id: m.id,
            }),
            MemberChangeKind::Removed => page.members_removed.push((group_id.to_owned(), m.id)),
        }
    }
}

/// A page of a groups delta round: groups, their removals and their membership changes.
/// A group repeated with only its id writes only its edges. Each group and each edge
/// appears once in the page's write: the last change Graph sent for it wins.
pub fn groups_page(changes: Vec<DeltaChange<Group>>) -> PageWrite {
    // Id-only repeats carry members, not the group: they do not decide the group itself.
    let decides = last_per_id(&changes, |g: &Group| g.id.as_str());
    let mut last_full: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, change) in changes.iter().enumerate() {
        match change {
            DeltaChange::Upserted { item, .. } if !is_id_only(item) => {
                last_full.insert(item.id.clone(), i);
            }
            DeltaChange::Removed { id, .. } => {
                last_full.insert(id.clone(), i);
            }
            DeltaChange::Upserted { .. } => {}
        }
    }
    let mut page = PageWrite::default();
    let mut edges: Vec<(String, MemberChange)> = Vec::new();
    for (i, (change, decides)) in changes.into_iter().zip(decides).enumerate() {
        match change {
            DeltaChange::Upserted { item, members } => {
                if last_full.get(&item.id) == Some(&i) {
                    page.groups.push(group_row(&item));
                }
                edges.extend(members.into_iter().map(|m| (item.id.clone(), m)));
            }
            DeltaChange::Removed { id, reason } if decides => match reason {
                RemovedReason::Deleted => page.groups_deleted.push(id),
                RemovedReason::Changed | RemovedReason::Other(_) => {
                    page.groups_soft_deleted.push(id);
                }
            },
            DeltaChange::Removed { .. } => {}
        }
    }
    // The last change of each edge wins.
    let mut last_edge = std::collections::HashMap::new();
    for (i, (group, m)) in edges.iter().enumerate() {
        last_edge.insert((group.clone(), m.id.clone()), i);
    }
    for (i, (group, m)) in edges.into_iter().enumerate() {
        if last_edge.get(&(group.clone(), m.id.clone())) == Some(&i) {
            member_changes(&mut page, &group, vec![m]);
        }
    }
    page
}

/// A page of users listed with `signInActivity`.
pub fn sign_in_activity_page(users: Vec<User>) -> PageWrite {
    let sign_in_activity = users
        .into_iter()
        .map(|u| {
            let a = u.sign_in_activity;
            SignInActivityRow {
                id: u.id,
                last_sign_in_at: naive(a.as_ref().and_then(|a| a.last_sign_in_date_time)),
                last_non_interactive_sign_in_at: naive(
                    a.as_ref()
                        .and_then(|a| a.last_non_interactive_sign_in_date_time),
                ),
            }
        })
        .collect();
    PageWrite {
        sign_in_activity,
        ..PageWrite::default()
    }
}

/// The latest `lastSignInDateTime` of a page of users (the sign-in activity time cursor).
pub fn latest_sign_in(users: &[User]) -> Option<NaiveDateTime> {
    users
        .iter()
        .filter_map(|u| u.sign_in_activity.as_ref()?.last_sign_in_date_time)
        .max()
        .map(|t| t.naive_utc())
}

/// A page of managed devices, and the latest `lastSyncDateTime` on it.
pub fn devices_page(devices: Vec<ManagedDevice>) -> (PageWrite, Option<NaiveDateTime>) {
    let latest = devices
        .iter()
        .filter_map(|d| d.last_sync_date_time)
        .max()
        .map(|t| t.naive_utc());
    let devices = devices
        .into_iter()
        .map(|d| DeviceRow {
            id: d.id,
            device_name: d.device_name,
            user_id: d.user_id,
            user_principal_name: d.user_principal_name,
            operating_system: d.operating_system,
            os_version: d.os_version,
            compliance_state: d.compliance_state,
            owner_type: d.managed_device_owner_type,
            is_encrypted: d.is_encrypted,
            manufacturer: d.manufacturer,
            model: d.model,
            serial_number: d.serial_number,
            azure_ad_device_id: d.azure_ad_device_id,
            enrolled_at: naive(d.enrolled_date_time),
            last_sync_at: naive(d.last_sync_date_time),
        })
        .collect();
    (
        PageWrite {
            devices,
            ..PageWrite::default()
        },
        latest,
    )
}

// The audit records are stored whole, as their JSON, with a few properties beside it in
// columns. They are read into the structs below, which name only those properties: serde
// skips the rest of a record. The crate's models (`SignIn`...) would keep that rest in a map
// per record (about 20 nested values for a sign-in), built and dropped unread; it was most
// of what a page of sign-ins weighed while it was read, and most of the sync's CPU for it.

/// The properties of a sign-in the store keeps in columns.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInColumns {
    /// Event id.
    pub id: String,
    /// When it happened.
    #[serde(default)]
    pub created_date_time: Option<DateTime<Utc>>,
    /// The user's id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The user's UPN.
    #[serde(default)]
    pub user_principal_name: Option<String>,
    /// The application's name.
    #[serde(default)]
    pub app_display_name: Option<String>,
    /// Client IP address.
    #[serde(default)]
    pub ip_address: Option<String>,
    /// The outcome's error code (0 is success).
    #[serde(default)]
    pub status: Option<SignInStatusColumns>,
}

/// The stored part of a sign-in's `status`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInStatusColumns {
    /// 0 on success, else the AADSTS error number.
    #[serde(default)]
    pub error_code: Option<i64>,
}

/// The properties of a directory audit record the store keeps in columns.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditColumns {
    /// Record id.
    pub id: String,
    /// When it happened.
    #[serde(default)]
    pub activity_date_time: Option<DateTime<Utc>>,
    /// What happened.
    #[serde(default)]
    pub activity_display_name: Option<String>,
    /// Category.
    #[serde(default)]
    pub category: Option<String>,
    /// `success` or `failure`.
    #[serde(default)]
    pub result: Option<String>,
}

/// The properties of a security alert the store keeps in columns.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertColumns {
    /// Alert id.
    pub id: String,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Severity.
    #[serde(default)]
    pub severity: Option<String>,
    /// Status.
    #[serde(default)]
    pub status: Option<String>,
    /// When it was created.
    #[serde(default)]
    pub created_date_time: Option<DateTime<Utc>>,
    /// When it last changed.
    #[serde(default)]
    pub last_update_date_time: Option<DateTime<Utc>>,
}

/// A page of sign-ins, and the latest `createdDateTime` on it. Records without a time are
/// left out (Graph always sends one; the store needs it). Each keeps its JSON as sent.
pub fn sign_ins_page(items: Vec<Raw<SignInColumns>>) -> (PageWrite, Option<NaiveDateTime>) {
    let sign_ins: Vec<SignInRow> = items
        .into_iter()
        .filter_map(|Raw { value: s, json }| {
            Some(SignInRow {
                created_at: s.created_date_time?.naive_utc(),
                status_code: s.status.as_ref().and_then(|st| st.error_code),
                id: s.id,
                user_id: s.user_id,
                user_principal_name: s.user_principal_name,
                app_display_name: s.app_display_name,
                ip_address: s.ip_address,
                raw: json,
            })
        })
        .collect();
    let latest = sign_ins.iter().map(|s| s.created_at).max();
    (
        PageWrite {
            sign_ins,
            ..PageWrite::default()
        },
        latest,
    )
}

/// A page of directory audits, and the latest `activityDateTime` on it.
pub fn audits_page(items: Vec<Raw<AuditColumns>>) -> (PageWrite, Option<NaiveDateTime>) {
    let audits: Vec<AuditRow> = items
        .into_iter()
        .filter_map(|Raw { value: a, json }| {
            Some(AuditRow {
                activity_at: a.activity_date_time?.naive_utc(),
                id: a.id,
                activity_display_name: a.activity_display_name,
                category: a.category,
                result: a.result,
                raw: json,
            })
        })
        .collect();
    let latest = audits.iter().map(|a| a.activity_at).max();
    (
        PageWrite {
            audits,
            ..PageWrite::default()
        },
        latest,
    )
}

/// A page of security alerts, and the latest `createdDateTime` on it.
pub fn alerts_page(items: Vec<Raw<AlertColumns>>) -> (PageWrite, Option<NaiveDateTime>) {
    let alerts: Vec<AlertRow> = items
        .into_iter()
        .filter_map(|Raw { value: a, json }| {
            Some(AlertRow {
                created_at: a.created_date_time?.naive_utc(),
                updated_at: naive(a.last_update_date_time),
                id: a.id,
                title: a.title,
                severity: a.severity,
                status: a.status,
                raw: json,
            })
        })
        .collect();
    // Alerts are listed by last update (they change status after they are created).
    let latest = alerts
        .iter()
        .map(|a| a.updated_at.unwrap_or(a.created_at))
        .max();
    (
        PageWrite {
            alerts,
            ..PageWrite::default()
        },
        latest,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(v: Value) -> User {
        serde_json::from_value(v).expect("user")
    }

    fn group(v: Value) -> Group {
        serde_json::from_value(v).expect("group")
    }

    fn member(id: &str, t: Option<ODataType>, change: MemberChangeKind) -> MemberChange {
        MemberChange {
            id: id.into(),
            odata_type: t,
            change,
        }
    }

    fn edge(g: &str, m: &str, t: &str) -> MemberRow {
        MemberRow {
            group_id: g.into(),
            member_id: m.into(),
            member_type: t.into(),
        }
    }

    #[test]
    fn users_upserts_and_removals() {
        let cases: Vec<(&str, Vec<DeltaChange<User>>, PageWrite)> = vec![
            (
                "upsert with manager@delta",
                vec![DeltaChange::Upserted {
                    item: user(json!({
                        "id": "u1", "displayName": "Ann", "accountEnabled": true,
                        "createdDateTime": "2024-01-02T03:04:05Z",
                        "manager@delta": [{"@odata.type": "#microsoft.graph.user", "id": "m1"}]
                    })),
                    members: vec![],
                }],
                PageWrite {
                    users: vec![UserRow {
                        id: "u1".into(),
                        display_name: Some("Ann".into()),
                        account_enabled: Some(true),
                        created_at: DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z")
                            .ok()
                            .map(|t| t.naive_utc()),
                        manager_id: Some("m1".into()),
                        ..UserRow::default()
                    }],
                    ..PageWrite::default()
                },
            ),
            (
                "manager removed",
                vec![DeltaChange::Upserted {
                    item: user(json!({"id": "u2", "manager@delta": [
                        {"id": "m1", "@removed": {"reason": "deleted"}}
                    ]})),
                    members: vec![],
                }],
                PageWrite {
                    users: vec![UserRow {
                        id: "u2".into(),
                        ..UserRow::default()
                    }],
                    ..PageWrite::default()
                },
            ),
            (
                "deleted for good vs soft-deleted",
                vec![
                    DeltaChange::Removed {
                        id: "u3".into(),
                        reason: RemovedReason::Deleted,
                    },
                    DeltaChange::Removed {
                        id: "u4".into(),
                        reason: RemovedReason::Changed,
                    },
                ],
                PageWrite {
                    users_deleted: vec!["u3".into()],
                    users_soft_deleted: vec!["u4".into()],
                    ..PageWrite::default()
                },
            ),
        ];
        for (name, changes, expected) in cases {
            assert_eq!(users_page(changes), expected, "{name}");
        }
    }

    #[test]
    fn groups_members_and_repeats() {
        let full = json!({
            "id": "g1", "displayName": "Sales", "groupTypes": ["Unified"],
            "mailEnabled": true, "securityEnabled": false, "visibility": "Private"
        });
        let cases: Vec<(&str, Vec<DeltaChange<Group>>, PageWrite)> = vec![
            (
                "group with members added and removed, typed",
                vec![DeltaChange::Upserted {
                    item: group(full.clone()),
                    members: vec![
                        member("u1", Some(ODataType::User), MemberChangeKind::Added),
                        member("g2", Some(ODataType::Group), MemberChangeKind::Added),
                        member(
                            "s1",
                            Some(ODataType::Other("#microsoft.graph.servicePrincipal".into())),
                            MemberChangeKind::Added,
                        ),
                        member("u9", Some(ODataType::User), MemberChangeKind::Removed),
                    ],
                }],
                PageWrite {
                    groups: vec![GroupRow {
                        id: "g1".into(),
                        display_name: Some("Sales".into()),
                        kind: "microsoft365".into(),
                        group_types: "Unified".into(),
                        mail_enabled: Some(true),
                        security_enabled: Some(false),
                        visibility: Some("Private".into()),
                        ..GroupRow::default()
                    }],
                    members_added: vec![
                        edge("g1", "u1", "user"),
                        edge("g1", "g2", "group"),
                        edge("g1", "s1", "servicePrincipal"),
                    ],
                    members_removed: vec![("g1".into(), "u9".into())],
                    ..PageWrite::default()
                },
            ),
            (
                "a group repeated with only its id writes only its edges",
                vec![DeltaChange::Upserted {
                    item: group(json!({"id": "g1", "displayName": null})),
                    members: vec![member("u2", Some(ODataType::User), MemberChangeKind::Added)],
                }],
                PageWrite {
                    members_added: vec![edge("g1", "u2", "user")],
                    ..PageWrite::default()
                },
            ),
            (
                "security group kind; removals",
                vec![
                    DeltaChange::Upserted {
                        item: group(
                            json!({"id": "g3", "mailEnabled": false, "securityEnabled": true}),
                        ),
                        members: vec![],
                    },
                    DeltaChange::Removed {
                        id: "g4".into(),
                        reason: RemovedReason::Deleted,
                    },
                    DeltaChange::Removed {
                        id: "g5".into(),
                        reason: RemovedReason::Changed,
                    },
                ],
                PageWrite {
                    groups: vec![GroupRow {
                        id: "g3".into(),
                        kind: "security".into(),
                        mail_enabled: Some(false),
                        security_enabled: Some(true),
                        ..GroupRow::default()
                    }],
                    groups_deleted: vec!["g4".into()],
                    groups_soft_deleted: vec!["g5".into()],
                    ..PageWrite::default()
                },
            ),
        ];
        for (name, changes, expected) in cases {
            assert_eq!(groups_page(changes), expected, "{name}");
        }
    }

    #[test]
    fn the_last_change_of_an_object_or_edge_on_a_page_wins() {
        let u = |id: &str, name: &str| DeltaChange::Upserted {
            item: user(json!({"id": id, "displayName": name})),
            members: vec![],
        };
        let gone = |id: &str| DeltaChange::Removed {
            id: id.into(),
            reason: RemovedReason::Deleted,
        };
        let page = users_page(vec![
            u("a", "one"),
            u("a", "two"),
            u("b", "x"),
            gone("b"),
            gone("c"),
            u("c", "back"),
        ]);
        let names: Vec<_> = page
            .users
            .iter()
            .map(|r| (r.id.as_str(), r.display_name.as_deref()))
            .collect();
        assert_eq!(names, vec![("a", Some("two")), ("c", Some("back"))]);
        assert_eq!(page.users_deleted, vec!["b".to_owned()]);

        let g = |v: Value, members: Vec<MemberChange>| DeltaChange::Upserted {
            item: group(v),
            members,
        };
        let full =
            json!({"id": "g", "displayName": "G", "securityEnabled": true, "mailEnabled": false});
        let page = groups_page(vec![
            g(
                full.clone(),
                vec![
                    member("u1", None, MemberChangeKind::Added),
                    member("u2", None, MemberChangeKind::Added),
                ],
            ),
            g(
                json!({"id": "g"}),
                vec![
                    member("u1", None, MemberChangeKind::Removed),
                    member("u2", None, MemberChangeKind::Added),
                ],
            ),
        ]);
        assert_eq!(page.groups.len(), 1, "one row for the group");
        assert_eq!(page.members_added.len(), 1, "{:?}", page.members_added);
        assert_eq!(page.members_added[0].member_id, "u2");
        assert_eq!(
            page.members_removed,
            vec![("g".to_owned(), "u1".to_owned())]
        );
    }

    #[test]
    fn member_types_from_odata_type() {
        let cases = [
            (Some(ODataType::User), "user"),
            (Some(ODataType::Group), "group"),
            (Some(ODataType::Device), "device"),
            (Some(ODataType::OrgContact), "orgContact"),
            (
                Some(ODataType::Other("#microsoft.graph.thing".into())),
                "thing",
            ),
            (None, "unknown"),
        ];
        for (t, expected) in cases {
            assert_eq!(member_type(t.as_ref()), expected);
        }
    }

    #[test]
    fn audit_pages_keep_raw_records_and_the_latest_time() {
        // Each record keeps its JSON byte for byte, as Graph sent it.
        let oslo = r#"{ "id": "b", "createdDateTime": "2024-05-03T00:00:00Z", "location": {"city": "Oslo"} }"#;
        let items: Vec<Raw<SignInColumns>> = serde_json::from_str(&format!(
            r#"[{{"id": "a", "createdDateTime": "2024-05-01T00:00:00Z", "status": {{"errorCode": 50126}}}}, {oslo}, {{"id": "c"}}]"#
        ))
        .expect("sign-ins");
        let (page, latest) = sign_ins_page(items);
        assert_eq!(page.sign_ins.len(), 2);
        assert_eq!(page.sign_ins[0].status_code, Some(50126));
        assert_eq!(page.sign_ins[1].raw, oslo);
        assert_eq!(page.sign_ins[1].id, "b");
        assert_eq!(
            latest.map(|t| t.to_string()).as_deref(),
            Some("2024-05-03 00:00:00")
        );

        let devices: Vec<ManagedDevice> = serde_json::from_value(json!([
            {"id": "d1", "managedDeviceOwnerType": "company", "lastSyncDateTime": "2024-05-02T00:00:00Z"}
        ]))
        .expect("devices");
        let (page, latest) = devices_page(devices);
        assert_eq!(page.devices[0].owner_type.as_deref(), Some("company"));
        assert!(latest.is_some());

        let users: Vec<User> = serde_json::from_value(json!([
            {"id": "u1", "signInActivity": {"lastSignInDateTime": "2024-05-02T00:00:00Z"}},
            {"id": "u2"}
        ]))
        .expect("users");
        assert!(latest_sign_in(&users).is_some());
        let page = sign_in_activity_page(users);
        assert_eq!(page.sign_in_activity.len(), 2);
        assert!(page.sign_in_activity[1].last_sign_in_at.is_none());
    }
}
