//! Delta rounds with typed changes and resync; `$batch` with per-item retry.

mod common;

use std::time::Duration;

use common::Harness;
use reqwest::Method;
use serde_json::json;
use tenantlink_emulator::{EmulatorConfig, ThrottleMode};
use tenantlink_graph::{
    BatchRequest, DeltaChange, DeltaStart, Error, MemberChangeKind, RemovedReason,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_round_trip_surfaces_typed_user_and_membership_changes() {
    let h = Harness::with(
        EmulatorConfig {
            tenants: 1,
            ..EmulatorConfig::default()
        },
        |o| o.page_size = Some(7),
    );
    let domain = h.emulator.tenants()[0].domain.clone();
    let start = DeltaStart::Initial {
        select: vec!["displayName".into(), "jobTitle".into()],
    };
    let first = h.client.users_delta(&start).await.expect("initial round");
    assert_eq!(first.changes.len(), h.active_users().await);
    let groups_first = h
        .client
        .groups_delta(&DeltaStart::Initial { select: vec![] })
        .await
        .expect("initial groups round");
    // Members are merged per group across pages: one change per group.
    let state = h.state().await;
    let live_groups: Vec<&serde_json::Value> = state["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter(|g| g["_state"] == "active")
        .collect();
    assert_eq!(groups_first.changes.len(), live_groups.len());
    assert!(
        live_groups
            .iter()
            .any(|g| g["members"].as_array().is_some_and(|m| m.len() > 7)),
        "some group spans pages"
    );
    for g in &live_groups {
        let change = groups_first
            .changes
            .iter()
            .find(|c| matches!(c, DeltaChange::Upserted { item, .. } if item.id == g["id"]))
            .expect("the group is in the round");
        let DeltaChange::Upserted { item, members } = change else {
            unreachable!()
        };
        assert_eq!(
            members.len(),
            g["members"].as_array().expect("members").len(),
            "all members of {}",
            g["id"]
        );
        // A group split over pages keeps the properties its first page gave.
        assert_eq!(
            item.display_name.as_deref(),
            g["displayName"].as_str(),
            "displayName of {}",
            g["id"]
        );
    }

    // Changes: create, update, soft and hard delete; group membership added and removed.
    let users: Vec<String> = state["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["_state"] == "active")
        .map(|u| u["id"].as_str().expect("id").to_owned())
        .collect();
    let created = h
        .control(
            Method::POST,
            "/_emulator/tenants/{t}/users",
            Some(json!({"displayName": "Delta New", "userPrincipalName": format!("delta.new@{domain}")})),
        )
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (updated, soft, hard) = (&users[3], &users[4], &users[5]);
    h.control(
        Method::PATCH,
        &format!("/_emulator/tenants/{{t}}/users/{updated}"),
        Some(json!({"jobTitle": "Delta Tester"})),
    )
    .await;
    h.control(
        Method::DELETE,
        &format!("/_emulator/tenants/{{t}}/users/{soft}"),
        None,
    )
    .await;
    h.control(
        Method::DELETE,
        &format!("/_emulator/tenants/{{t}}/users/{hard}?permanent=true"),
        None,
    )
    .await;
    let group = live_groups
        .iter()
        .find(|g| !g["members"].as_array().expect("members").is_empty())
        .expect("a group with members");
    let group_id = group["id"].as_str().expect("id").to_owned();
    let removed_member = group["members"][0]["id"].as_str().expect("id").to_owned();
    h.control(
        Method::DELETE,
        &format!("/_emulator/tenants/{{t}}/groups/{group_id}/members/{removed_member}"),
        None,
    )
    .await;
    h.control(
        Method::POST,
        &format!("/_emulator/tenants/{{t}}/groups/{group_id}/members"),
        Some(json!({"id": created})),
    )
    .await;

    let next = h
        .client
        .users_delta(&DeltaStart::Resume(first.delta_link.clone()))
        .await
        .expect("users round");
    let find = |id: &str| {
        next.changes
            .iter()
            .find(|c| match c {
                DeltaChange::Upserted { item, .. } => item.id == id,
                DeltaChange::Removed { id: r, .. } => r == id,
            })
            .unwrap_or_else(|| panic!("{id} changed"))
            .clone()
    };
    assert!(
        matches!(find(&created), DeltaChange::Upserted { item, .. } if item.display_name.as_deref() == Some("Delta New"))
    );
    assert!(
        matches!(find(updated), DeltaChange::Upserted { item, .. } if item.job_title.as_deref() == Some("Delta Tester"))
    );
    assert!(matches!(
        find(soft),
        DeltaChange::Removed {
            reason: RemovedReason::Changed,
            ..
        }
    ));
    assert!(matches!(
        find(hard),
        DeltaChange::Removed {
            reason: RemovedReason::Deleted,
            ..
        }
    ));
    assert_ne!(next.delta_link, first.delta_link);

    let groups_next = h
        .client
        .groups_delta(&DeltaStart::Resume(groups_first.delta_link.clone()))
        .await
        .expect("groups round");
    let change = groups_next
        .changes
        .iter()
        .find(|c| matches!(c, DeltaChange::Upserted { item, .. } if item.id == group_id))
        .expect("the group changed");
    let DeltaChange::Upserted { members, .. } = change else {
        unreachable!()
    };
    assert!(
        members
            .iter()
            .any(|m| m.id == created && m.change == MemberChangeKind::Added)
    );
    assert!(
        members
            .iter()
            .any(|m| m.id == removed_member && m.change == MemberChangeKind::Removed)
    );

    // Nothing changed since: an empty round; latest gives a link and no objects.
    let quiet = h
        .client
        .users_delta(&DeltaStart::Resume(next.delta_link.clone()))
        .await
        .expect("quiet round");
    assert!(quiet.changes.is_empty(), "{:?}", quiet.changes);
    let latest = h
        .client
        .users_delta(&DeltaStart::Latest { select: vec![] })
        .await
        .expect("latest");
    assert!(latest.changes.is_empty());
    assert!(latest.delta_link.contains("deltatoken"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_or_unknown_delta_token_is_resync_required() {
    let h = Harness::start();
    h.faults(json!({"delta_token_lifetime_secs": 1})).await;
    let round = h
        .client
        .users_delta(&DeltaStart::Latest { select: vec![] })
        .await
        .expect("latest");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let expired = h
        .client
        .users_delta(&DeltaStart::Resume(round.delta_link.clone()))
        .await;
    assert!(
        matches!(expired, Err(Error::ResyncRequired { .. })),
        "{expired:?}"
    );
    let base = round.delta_link.split('?').next().expect("base").to_owned();
    let unknown = h
        .client
        .groups_delta(&DeltaStart::Resume(format!("{base}?$deltatoken=bm9wZQ")))
        .await;
    assert!(
        matches!(&unknown, Err(Error::ResyncRequired { code }) if code == "syncStateNotFound"),
        "{unknown:?}"
    );
    assert!(unknown.expect_err("error").needs_restart());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_batch_items_are_retried_and_the_rest_are_not_resent() {
    // Realistic limits: identity and access reports take 5 requests per 10 s per app.
    let h = Harness::with(
        EmulatorConfig {
            tenants: 1,
            throttling: ThrottleMode::Realistic,
            ..EmulatorConfig::default()
        },
        |_| {},
    );
    let users: Vec<BatchRequest> = (0..4)
        .map(|i| BatchRequest::get(format!("u{i}"), "/users?$top=1"))
        .collect();
    let audits: Vec<BatchRequest> = (0..8)
        .map(|i| BatchRequest::get(format!("a{i}"), "/auditLogs/directoryAudits?$top=1"))
        .collect();
    let requests: Vec<BatchRequest> = users.into_iter().chain(audits).collect();
    let responses = h.client.batch(requests).await.expect("batch");
    assert_eq!(responses.len(), 12);
    assert!(responses.iter().all(|r| r.is_success()), "{responses:?}");
    let stats = h.client.stats();
    assert!(stats.throttled >= 3, "{stats:?}");
    let resent: u64 = responses.iter().map(|r| u64::from(r.attempts) - 1).sum();
    assert_eq!(stats.batch_items_sent, 12 + resent);
    for r in &responses {
        if r.id.starts_with('u') {
            assert_eq!(
                r.attempts, 1,
                "{} succeeded first time and was not re-sent",
                r.id
            );
        }
    }
    assert!(responses.iter().filter(|r| r.attempts > 1).count() >= 3);
    let page: serde_json::Value = responses[4].json().expect("audit page");
    assert!(page["value"].is_array());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_reports_failed_dependencies_per_item_and_chunks_past_twenty() {
    let h = Harness::start();
    let mut requests = vec![
        BatchRequest::get("missing", "/users/00000000-0000-0000-0000-000000000000"),
        BatchRequest::get("after", "/users?$top=1").depends_on("missing"),
    ];
    requests.extend((0..30).map(|i| BatchRequest::get(format!("r{i}"), "/groups?$top=2")));
    let responses = h.client.batch(requests).await.expect("batch");
    assert_eq!(responses.len(), 32);
    assert_eq!(responses[0].id, "missing");
    assert!(matches!(responses[0].error(), Some(Error::NotFound { .. })));
    assert_eq!(responses[1].status, 424);
    assert!(
        matches!(
            responses[1].error(),
            Some(Error::BadRequest { status: 424, .. })
        ),
        "{:?}",
        responses[1]
    );
    assert!(responses[2..].iter().all(|r| r.is_success()));
    assert_eq!(h.client.stats().requests, 2, "two batches of at most 20");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_link_to_another_host_is_refused_without_a_request() {
    let h = Harness::start();
    // A second listener: the link points at it, and nothing may arrive there.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    trap.set_nonblocking(true).expect("nonblocking");
    let port = trap.local_addr().expect("addr").port();
    let link = format!("http://127.0.0.1:{port}/v1.0/users/delta?$deltatoken=SECRET-TOKEN");
    let err = h
        .client
        .users_delta(&DeltaStart::Resume(link))
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::UntrustedLink(_)), "{err:?}");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains("deltatoken"), "{shown}");
        assert!(!shown.contains("SECRET-TOKEN"), "{shown}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        trap.accept().err().map(|e| e.kind()),
        Some(std::io::ErrorKind::WouldBlock),
        "no connection reached the other host"
    );
}
