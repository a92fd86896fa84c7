//! The token cache against the emulator: one token request for 100 concurrent callers, and
//! a refresh before the token expires.

mod common;

use std::time::Duration;

use common::{GRAPH_DEFAULT, Harness};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_callers_cause_one_token_request() {
    let h = Harness::start();
    let credential = common::as_dyn(h.connector());
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let credential = credential.clone();
        tasks.push(tokio::spawn(async move {
            credential
                .get_token(&[GRAPH_DEFAULT], None)
                .await
                .map(|t| t.token.secret().to_owned())
        }));
    }
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap().unwrap());
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "every caller got the same token");
    let stats = h.identity.cache().stats();
    assert_eq!(stats.fetches, 1, "{stats:?}");
    assert_eq!(stats.hits, 99, "{stats:?}");
}

#[tokio::test]
async fn tokens_are_refreshed_before_they_expire() {
    let h = Harness::start();
    h.faults(json!({ "token_lifetime_secs": 8 })).await;
    let credential = h.connector();
    let first = credential.token(&[GRAPH_DEFAULT]).await.unwrap();
    // Within the first three quarters of the lifetime: the cached token.
    let again = credential.token(&[GRAPH_DEFAULT]).await.unwrap();
    assert_eq!(first.token.secret(), again.token.secret());
    // In the last quarter (8 s tokens are refreshed 2 s before expiry) the cache fetches a
    // new token while the old one is still valid.
    tokio::time::sleep(Duration::from_millis(6_500)).await;
    assert!(first.expires_on > azure_core::time::OffsetDateTime::now_utc());
    let refreshed = credential.token(&[GRAPH_DEFAULT]).await.unwrap();
    assert_ne!(first.token.secret(), refreshed.token.secret());
    assert!(refreshed.expires_on > first.expires_on);
    assert_eq!(h.identity.cache().stats().fetches, 2);
}
