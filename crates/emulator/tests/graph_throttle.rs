//! Graph throttling over real HTTPS: resource-unit budgets per app and tenant, 429 with
//! Retry-After and the throttle headers, per-item throttling inside `$batch`, the reports
//! budget, and no throttling when it is off.

mod common;

use std::time::Duration;

use common::Harness;
use serde_json::{Value, json};

async fn token(h: &Harness, tenant: &str, client_id: &str) -> String {
    h.mint(
        tenant,
        json!({ "client_id": client_id, "roles": ["User.Read.All", "AuditLog.Read.All"] }),
    )
    .await
}

async fn throttling(h: &Harness, mode: &str) {
    let res = h
        .client
        .put(h.url("/_emulator/faults"))
        .json(&json!({ "throttling": mode }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn get(h: &Harness, token: &str, path: &str) -> reqwest::Response {
    h.client
        .get(h.url(&format!("/v1.0{path}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

const CHEAP: &str = "/users/delta?$deltatoken=latest";

#[tokio::test]
async fn aggressive_budget_throttles_until_retry_after() {
    let h = Harness::start();
    let tenant = h.tenant().to_owned();
    let app = h.emulator.multi_tenant_app().client_id.clone();
    let token = token(&h, &tenant, &app).await;
    throttling(&h, "aggressive").await;

    // 60 users: a medium tenant, 5,000 resource units per 10 s, a tenth of it when aggressive.
    // A delta request costs 1. One request, then batches of 20 until the budget runs out
    // part way through a batch.
    let first = get(&h, &token, CHEAP).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-ms-resource-unit"), Some("1"));
    assert!(header(&first, "x-ms-throttle-limit-percentage").is_none());
    let requests: Vec<Value> = (0..20)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": CHEAP}))
        .collect();
    let mut sent = 1;
    let mut saw_percentage = false;
    let mixed = loop {
        assert!(sent < 600, "the aggressive budget never ran out");
        let res = h
            .client
            .post(h.url("/v1.0/$batch"))
            .bearer_auth(&token)
            .json(&json!({ "requests": requests }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "the batch itself is never throttled");
        let body: Value = res.json().await.unwrap();
        sent += 20;
        let responses = body["responses"].as_array().unwrap().clone();
        for r in &responses {
            if r["status"] == 200 {
                assert_eq!(r["headers"]["x-ms-resource-unit"], "1");
                if let Some(p) = r["headers"]["x-ms-throttle-limit-percentage"].as_str() {
                    let p: f64 = p.parse().unwrap();
                    assert!((0.8..=1.8).contains(&p), "{p}");
                    saw_percentage = true;
                }
            }
        }
        if responses.iter().any(|r| r["status"] == 429) {
            break responses;
        }
    };
    assert_eq!(sent, 501, "500 units fit, the 501st does not");
    assert!(saw_percentage, "past 80% answers say how much is used");
    let ok = mixed.iter().filter(|r| r["status"] == 200).count();
    assert_eq!(
        ok, 19,
        "the batch's first items fit, the last one is throttled"
    );
    for r in mixed.iter().filter(|r| r["status"] == 429) {
        let retry: u64 = r["headers"]["Retry-After"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=10).contains(&retry), "{retry}");
        assert_eq!(r["body"]["error"]["code"], "TooManyRequests");
    }

    // A single request now: 429 with the documented headers.
    let res = get(&h, &token, CHEAP).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = header(&res, "retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry));
    assert_eq!(
        header(&res, "x-ms-throttle-scope"),
        Some(format!("Tenant_Application/ReadWrite/{app}/{tenant}").as_str())
    );
    assert_eq!(
        header(&res, "x-ms-throttle-information"),
        Some("ResourceUnitLimitExceeded")
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests");

    // The budget is per app and tenant: the same app in the other tenant is not throttled.
    let other = h.emulator.tenants()[1].tenant_id.clone();
    let other_token = self::token(&h, &other, &app).await;
    assert_eq!(get(&h, &other_token, CHEAP).await.status(), 200);

    // After Retry-After the window has room again.
    tokio::time::sleep(Duration::from_secs(retry) + Duration::from_millis(200)).await;
    let res = get(&h, &token, CHEAP).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "x-ms-resource-unit"), Some("1"));
}

#[tokio::test]
async fn reports_have_their_own_small_budget_and_off_never_throttles() {
    let h = Harness::start();
    let tenant = h.tenant().to_owned();
    let app = h.emulator.tenants()[0].connector_app.client_id.clone();
    let token = token(&h, &tenant, &app).await;

    // Off (the default): a burst goes through, and identity answers still carry their cost.
    for _ in 0..40 {
        let res = get(&h, &token, CHEAP).await;
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "x-ms-resource-unit"), Some("1"));
    }

    // Realistic: identity and access reports allow 5 requests per 10 s per app and tenant.
    throttling(&h, "realistic").await;
    for n in 0..5 {
        let res = get(&h, &token, "/auditLogs/signIns").await;
        assert_ne!(res.status(), 429, "request {n} is within the budget");
    }
    let res = get(&h, &token, "/auditLogs/directoryAudits").await;
    assert_eq!(res.status(), 429);
    let retry: u64 = header(&res, "retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry));
    // Directory reads are a separate budget and still go through.
    let res = get(&h, &token, CHEAP).await;
    assert_eq!(res.status(), 200);
    assert!(header(&res, "x-ms-throttle-limit-percentage").is_none());

    // Back off: nothing is throttled any more.
    throttling(&h, "off").await;
    assert_ne!(get(&h, &token, "/auditLogs/signIns").await.status(), 429);
}
