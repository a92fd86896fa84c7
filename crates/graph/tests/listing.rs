//! Listing against the emulator: complete or a loud error, never short, through 429s,
//! 503s, dropped connections and expiring tokens.

mod common;

use std::time::{Duration, Instant};

use common::Harness;
use futures_util::StreamExt;
use serde_json::json;
use tenantlink_emulator::{EmulatorConfig, TenantSize};
use tenantlink_graph::{Error, ListQuery, RetryPolicy, collect};

fn tenant(users: usize) -> EmulatorConfig {
    EmulatorConfig {
        tenants: 1,
        size: TenantSize {
            users,
            ..TenantSize::SMALL
        },
        ..EmulatorConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_page_37_of_101_is_retried_and_the_listing_is_complete() {
    let h = Harness::with(tenant(10_100), |o| o.page_size = Some(100));
    let truth = h.active_users().await;
    assert!(truth > 10_000);
    let mut pages = h
        .client
        .list_users(&ListQuery::select(["id", "displayName"]));
    let mut users = 0;
    let mut page_no = 0;
    while let Some(page) = if page_no == 36 {
        // Every Graph answer is a 429 for 2.5 s while page 37 is asked for.
        h.faults(json!({"rate_429": 1.0})).await;
        let (page, ()) = tokio::join!(pages.next(), async {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            h.faults(json!({"rate_429": 0.0})).await;
        });
        page
    } else {
        pages.next().await
    } {
        let page = page.expect("every page arrives");
        page_no += 1;
        users += page.items.len();
    }
    assert_eq!(page_no, truth.div_ceil(100));
    assert_eq!(users, truth, "the listing is complete");
    let stats = h.client.stats();
    assert!(stats.throttled >= 1, "page 37 was throttled: {stats:?}");
    assert_eq!(stats.retries, stats.throttled);
    assert_eq!(stats.requests, page_no as u64 + stats.retries);
    assert!(stats.waited >= Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_that_never_ends_is_a_throttled_error_after_the_budget_not_a_short_list() {
    let h = Harness::with(tenant(500), |o| {
        o.page_size = Some(50);
        o.retry = RetryPolicy {
            budget: Duration::from_secs(5),
            ..o.retry.clone()
        };
    });
    let mut pages = h.client.list_users(&ListQuery::default());
    let first = pages.next().await.expect("a page").expect("page 1");
    assert_eq!(first.items.len(), 50);
    // The body it was read from: 50 users of a few hundred bytes each.
    assert!(
        (50 * 100..50 * 4096).contains(&first.body_len),
        "{}",
        first.body_len
    );
    h.faults(json!({"rate_429": 1.0})).await;
    let started = Instant::now();
    // Page 2 was asked for as page 1 was handed out, perhaps before the 429s began; page 3
    // was asked for after page 2 came, so one of the two is the error.
    let mut next = pages.next().await.expect("an answer");
    if next.is_ok() {
        next = pages.next().await.expect("an answer");
    }
    assert!(
        matches!(
            next,
            Err(Error::Throttled {
                retry_after: Some(_)
            })
        ),
        "{next:?}"
    );
    // The 5 s retry budget ends the retries: far from "never" or a fixed 180 s, with room
    // for a slow, busy machine (speed itself is measured by `cargo xtask bench graph`).
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "retries stopped at the budget"
    );
    assert!(
        pages.next().await.is_none(),
        "the stream ends with the error"
    );
    // The same through collect: an error, never a short Vec.
    let all = collect(h.client.list_users(&ListQuery::default())).await;
    assert!(matches!(all, Err(Error::Throttled { .. })));
    assert!(h.client.stats().throttled >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expiring_during_a_long_listing_is_refreshed_without_a_failed_request() {
    let h = Harness::with(tenant(2_000), |o| o.page_size = Some(100));
    h.faults(json!({"token_lifetime_secs": 2, "latency_ms": 200}))
        .await;
    let started = Instant::now();
    let users = collect(h.client.list_users(&ListQuery::select(["id"])))
        .await
        .expect("the listing outlives its tokens");
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "the listing outlived tokens"
    );
    h.faults(json!({"token_lifetime_secs": 3600, "latency_ms": 0}))
        .await;
    assert_eq!(users.len(), h.active_users().await);
    let stats = h.client.stats();
    assert_eq!(stats.unauthorized, 0, "no request was refused");
    assert_eq!(stats.retries, 0);
    assert!(
        h.credential.calls() >= stats.requests,
        "a token was asked for before every request"
    );
    assert!(
        h.credential.fetched() >= 3,
        "tokens were refreshed: {}",
        h.credential.fetched()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_503_and_dropped_connections_are_survived() {
    let h = Harness::with(tenant(2_000), |o| o.page_size = Some(100));
    h.faults(json!({"rate_503": 0.15, "drop_rate": 0.15})).await;
    let users = collect(
        h.client
            .list_users(&ListQuery::select(["id", "displayName"])),
    )
    .await
    .expect("complete despite faults");
    h.faults(json!({"rate_503": 0.0, "drop_rate": 0.0})).await;
    assert_eq!(users.len(), h.active_users().await);
    let stats = h.client.stats();
    assert!(stats.retries > 0, "{stats:?}");
    assert_eq!(stats.requests, 20 + stats.retries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_page_is_fetched_at_once_and_an_expired_page_token_is_a_typed_error() {
    let h = Harness::with(tenant(300), |o| o.page_size = Some(50));
    h.faults(json!({"page_token_lifetime_secs": 3})).await;
    let mut pages = h.client.list_users(&ListQuery::default());
    let first = pages.next().await.expect("a page").expect("page 1");
    // A caller slower than the token's lifetime still gets every page: each page's link is
    // followed as soon as the page is read, not when the caller asks for the next one.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let second = pages.next().await.expect("an answer").expect("page 2");
    assert_eq!(second.items.len(), 50);
    drop(pages);
    // Page 1's link, kept past its lifetime (as by a run resumed after a crash), is refused.
    let link = first.next_link.expect("more pages");
    let mut resumed = h
        .client
        .resume_pages::<tenantlink_graph::models::User>(&link, "User.Read.All");
    let next = resumed.next().await.expect("an answer");
    assert!(matches!(next, Err(Error::PageTokenExpired)), "{next:?}");
    assert!(next.expect_err("error").needs_restart());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advanced_queries_send_consistency_level_on_every_page() {
    let h = Harness::with(tenant(300), |o| o.page_size = Some(25));
    let query = ListQuery {
        select: vec!["id".into(), "displayName".into()],
        search: Some("\"displayName:a\"".into()),
        ..ListQuery::default()
    };
    let mut pages = h.client.list_users(&query);
    let mut total = 0;
    let mut count = None;
    let mut n = 0;
    while let Some(page) = pages.next().await {
        let page = page.expect("page");
        count = count.or(page.count);
        total += page.items.len();
        n += 1;
    }
    assert!(n > 1, "several pages");
    assert_eq!(Some(total as u64), count, "$count matches the listing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_slow_down_when_graph_reports_the_budget_nearly_spent() {
    // Aggressive throttling: 500 resource units per 10 s for a 60-user tenant;
    // transitiveMembers costs 5, so request 81 and later pass 80% of the budget.
    let h = Harness::with(
        EmulatorConfig {
            tenants: 1,
            throttling: tenantlink_emulator::ThrottleMode::Aggressive,
            ..EmulatorConfig::default()
        },
        |o| o.slow_down_delay = Duration::from_millis(20),
    );
    let groups = collect(h.client.list_groups(&ListQuery::select(["id"])))
        .await
        .expect("groups");
    for i in 0..88 {
        let group = &groups[i % groups.len()];
        collect(
            h.client
                .list_group_transitive_members(&group.id, &ListQuery::default()),
        )
        .await
        .expect("members");
    }
    let stats = h.client.stats();
    assert!(stats.slowdowns >= 3, "{stats:?}");
    assert_eq!(
        stats.throttled, 0,
        "slowed down before Graph throttled: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_advanced_filter_lists_every_match_across_pages() {
    let h = Harness::with(tenant(300), |o| o.page_size = Some(20));
    let guests = collect(
        h.client
            .list_users(&ListQuery::select(["id", "userType"]).filter("userType ne 'Member'")),
    )
    .await
    .expect("advanced filter");
    let state = h.state().await;
    let truth = state["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["_state"] == "active" && u["userType"] != "Member")
        .count();
    assert!(truth > 0);
    assert_eq!(guests.len(), truth);
    assert!(
        guests
            .iter()
            .all(|u| u.user_type.as_deref() != Some("Member"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_resumes_from_a_stored_next_link_and_refuses_foreign_links() {
    let h = Harness::with(tenant(50), |_| {});
    let query = ListQuery {
        page_size: Some(7),
        ..ListQuery::select(["id"])
    };
    let all = collect(h.client.list_users(&query)).await.expect("listing");
    let mut pages = h.client.list_users(&query);
    let first = pages.next().await.expect("a page").expect("first page");
    drop(pages);
    let link = first.next_link.expect("more pages");
    let rest = collect(
        h.client
            .resume_pages::<tenantlink_graph::models::User>(&link, "User.Read.All"),
    )
    .await
    .expect("resumed");
    assert_eq!(first.items.len() + rest.len(), all.len());
    let ids: Vec<&str> = first
        .items
        .iter()
        .chain(&rest)
        .map(|u| u.id.as_str())
        .collect();
    let expected: Vec<&str> = all.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, expected);

    let foreign = collect(h.client.resume_pages::<tenantlink_graph::models::User>(
        "https://evil.example/v1.0/users?$skiptoken=x",
        "User.Read.All",
    ))
    .await;
    assert!(
        matches!(foreign, Err(Error::UntrustedLink(_))),
        "{foreign:?}"
    );
}
