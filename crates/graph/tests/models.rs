//! Typed models deserialize every emulator answer; 403 names the permission.

mod common;

use std::collections::HashSet;

use common::Harness;
use tenantlink_graph::models::{GroupKind, ODataType};
use tenantlink_graph::{Error, ListQuery, collect};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_models_read_every_listing() {
    let h = Harness::start();
    let state = h.state().await;
    let live = |kind: &str| {
        state[kind]
            .as_array()
            .expect("array")
            .iter()
            .filter(|o| o["_state"].as_str().is_none_or(|s| s == "active"))
            .count()
    };

    // Users with signInActivity (page size capped at 120) and the manager expanded.
    let users = collect(h.client.list_users(&ListQuery::select([
        "id",
        "displayName",
        "userPrincipalName",
        "department",
        "jobTitle",
        "accountEnabled",
        "userType",
        "signInActivity",
    ])))
    .await
    .expect("users");
    assert_eq!(users.len(), live("users"));
    assert!(
        users
            .iter()
            .any(|u| u.user_type.as_deref() == Some("Guest"))
    );
    assert!(users.iter().any(|u| u.account_enabled == Some(false)));
    assert!(users.iter().all(|u| u.sign_in_activity.is_some()));
    assert!(users.iter().any(|u| {
        u.sign_in_activity
            .as_ref()
            .is_some_and(|a| a.last_sign_in_date_time.is_some())
    }));
    let with_manager = collect(h.client.list_users(&ListQuery {
        expand: Some("manager".into()),
        ..ListQuery::default()
    }))
    .await
    .expect("users with manager");
    assert!(with_manager.iter().any(|u| u.manager.is_some()));
    assert!(
        with_manager
            .iter()
            .all(|u| u.extra.contains_key("businessPhones")),
        "unknown properties are kept"
    );

    // Groups of every kind, members with their @odata.type.
    let groups = collect(h.client.list_groups(&ListQuery::default()))
        .await
        .expect("groups");
    assert_eq!(groups.len(), live("groups"));
    let kinds: HashSet<GroupKind> = groups.iter().map(|g| g.kind()).collect();
    for kind in [
        GroupKind::Microsoft365,
        GroupKind::Security,
        GroupKind::MailEnabledSecurity,
        GroupKind::Distribution,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} in {kinds:?}");
    }
    let mut types = HashSet::new();
    for g in &groups {
        let members = collect(h.client.list_group_members(&g.id, &ListQuery::default()))
            .await
            .expect("members");
        types.extend(members.into_iter().filter_map(|m| m.odata_type));
    }
    assert!(types.contains(&ODataType::User));
    let nested = state["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["members"].as_array().expect("members").iter())
        .any(|m| m["@odata.type"] == "#microsoft.graph.group");
    assert_eq!(types.contains(&ODataType::Group), nested, "{types:?}");

    let devices = collect(h.client.list_managed_devices(&ListQuery::default()))
        .await
        .expect("devices");
    assert_eq!(devices.len(), live("managedDevices"));
    assert!(devices.iter().all(|d| d.compliance_state.is_some()));

    let sign_ins = collect(h.client.list_sign_ins(&ListQuery::default()))
        .await
        .expect("sign-ins");
    assert!(!sign_ins.is_empty());
    assert!(
        sign_ins
            .iter()
            .all(|s| s.created_date_time.is_some() && s.status.is_some())
    );

    let audits = collect(h.client.list_directory_audits(&ListQuery::default()))
        .await
        .expect("audits");
    assert!(!audits.is_empty());
    assert!(audits.iter().all(|a| a.activity_date_time.is_some()));

    let alerts = collect(h.client.list_alerts(&ListQuery::default()))
        .await
        .expect("alerts");
    assert!(!alerts.is_empty());
    assert!(alerts.iter().all(|a| a.severity.is_some()));

    let one = h
        .client
        .get_user(&users[0].id, &ListQuery::select(["id", "displayName"]))
        .await
        .expect("user");
    assert_eq!(one.id, users[0].id);
    let missing = h
        .client
        .get_user(
            "00000000-0000-0000-0000-000000000000",
            &ListQuery::default(),
        )
        .await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limited_app_gets_forbidden_naming_the_permission() {
    let h = Harness::start();
    let limited = h.limited_client();
    let users = collect(limited.list_users(&ListQuery::default()))
        .await
        .expect("User.Read.All is granted");
    assert!(!users.is_empty());
    let groups = collect(limited.list_groups(&ListQuery::default())).await;
    match groups {
        Err(Error::Forbidden { permission, .. }) => {
            assert!(permission.contains("GroupMember.Read.All"));
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    let member_of = collect(limited.list_user_member_of(&users[0].id, &ListQuery::default())).await;
    assert!(
        matches!(&member_of, Err(Error::Forbidden { permission, .. }) if permission == "GroupMember.Read.All"),
        "{member_of:?}"
    );
    let activity = collect(limited.list_users(&ListQuery::select(["id", "signInActivity"]))).await;
    match activity {
        Err(e @ Error::Forbidden { .. }) => {
            assert!(e.to_string().contains("AuditLog.Read.All"), "{e}");
            assert!(!format!("{e:?}").contains("eyJ"), "no token in the error");
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    let devices = collect(limited.list_managed_devices(&ListQuery::default())).await;
    assert!(
        matches!(&devices, Err(Error::Forbidden { permission, .. }) if permission == "DeviceManagementManagedDevices.Read.All"),
        "{devices:?}"
    );
}
