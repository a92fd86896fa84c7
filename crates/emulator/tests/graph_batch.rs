//! JSON batching over real HTTPS: per-item answers, dependsOn and 424, malformed batches.

mod common;

use std::collections::BTreeSet;

use common::Harness;
use serde_json::{Value, json};

async fn token(h: &Harness, client_id: &str) -> String {
    h.app_token(client_id).await
}

async fn batch(h: &Harness, token: &str, body: Value) -> (u16, Value) {
    let res = h
        .client
        .post(h.url("/v1.0/$batch"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

fn response<'a>(body: &'a Value, id: &str) -> &'a Value {
    body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no response {id} in {body}"))
}

#[tokio::test]
async fn batch_items_answer_one_by_one() {
    let h = Harness::start();
    let app = h.emulator.tenants()[0].connector_app.client_id.clone();
    let token = token(&h, &app).await;
    let truth = h.state(h.tenant()).await;
    let live_users = truth["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["_state"] == "active")
        .count();

    let (status, body) = batch(
        &h,
        &token,
        json!({"requests": [
            {"id": "1", "method": "GET", "url": "/users/delta?$select=displayName"},
            {"id": "2", "method": "GET", "url": "users/delta", "headers": {"Prefer": "odata.maxpagesize=3"}},
            {"id": "3", "method": "GET", "url": "/users/delta?$select=nope"},
            {"id": "4", "method": "GET", "url": "/users/delta", "dependsOn": ["3"]},
            {"id": "5", "method": "GET", "url": "/users/delta?$deltatoken=latest", "dependsOn": ["1"]},
            {"id": "6", "method": "GET", "url": "/nothing/here"},
            {"id": "7", "method": "DELETE", "url": "/users/delta"},
            {"id": "8", "method": "GET", "url": "/groups/delta", "dependsOn": ["4"]},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ids: BTreeSet<&str> = body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from(["1", "2", "3", "4", "5", "6", "7", "8"])
    );

    let one = response(&body, "1");
    assert_eq!(one["status"], 200);
    assert!(
        one["headers"]["Content-Type"]
            .as_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(one["headers"]["x-ms-resource-unit"].is_string());
    let users = one["body"]["value"].as_array().unwrap();
    assert_eq!(
        users.len(),
        live_users,
        "{live_users} users on the default page"
    );
    assert!(users.iter().all(|u| u.as_object().unwrap().len() == 2));
    assert!(
        one["body"]["@odata.deltaLink"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );

    let two = response(&body, "2");
    assert_eq!(two["status"], 200);
    assert_eq!(
        two["body"]["value"].as_array().unwrap().len(),
        3,
        "item headers apply"
    );
    assert!(two["body"]["@odata.nextLink"].is_string());

    let three = response(&body, "3");
    assert_eq!(three["status"], 400);
    assert_eq!(three["body"]["error"]["code"], "Request_BadRequest");
    assert!(three["body"]["error"]["innerError"]["request-id"].is_string());

    for failed in ["4", "8"] {
        let r = response(&body, failed);
        assert_eq!(r["status"], 424, "{failed} depends on a failure: {r}");
        assert!(r["body"]["error"]["code"].is_string());
    }
    let five = response(&body, "5");
    assert_eq!(five["status"], 200);
    assert_eq!(five["body"]["value"], json!([]));

    let six = response(&body, "6");
    assert_eq!(six["status"], 400);
    assert!(
        six["body"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("here")
    );
    assert_eq!(response(&body, "7")["status"], 400);

    // The item runs with the batch's caller: the limited app gets 403 for groups.
    let limited = h.emulator.tenants()[0].limited_app.client_id.clone();
    let limited = self::token(&h, &limited).await;
    let (status, body) = batch(
        &h,
        &limited,
        json!({"requests": [
            {"id": "a", "method": "GET", "url": "/users/delta"},
            {"id": "b", "method": "GET", "url": "/groups/delta"},
        ]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(response(&body, "a")["status"], 200);
    assert_eq!(response(&body, "b")["status"], 403);

    // Without a token the whole batch is refused.
    let res = h
        .client
        .post(h.url("/v1.0/$batch"))
        .json(&json!({"requests": [{"id": "1", "method": "GET", "url": "/users/delta"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn malformed_batches_are_refused_whole() {
    let h = Harness::start();
    let app = h.emulator.tenants()[0].connector_app.client_id.clone();
    let token = token(&h, &app).await;

    let many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users/delta"}))
        .collect();
    let (status, body) = batch(&h, &token, json!({ "requests": many })).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "BadRequest");
    assert!(body["error"]["message"].as_str().unwrap().contains("20"));

    let twenty: Vec<Value> = (0..20)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users/delta?$deltatoken=latest"}))
        .collect();
    let (status, body) = batch(&h, &token, json!({ "requests": twenty })).await;
    assert_eq!(status, 200);
    assert_eq!(body["responses"].as_array().unwrap().len(), 20);

    for bad in [
        json!({"requests": [
            {"id": "1", "method": "GET", "url": "/users/delta"},
            {"id": "1", "method": "GET", "url": "/groups/delta"},
        ]}),
        // Ids are not case-sensitive.
        json!({"requests": [
            {"id": "a", "method": "GET", "url": "/users/delta"},
            {"id": "A", "method": "GET", "url": "/groups/delta"},
        ]}),
        json!({"requests": [{"method": "GET", "url": "/users/delta"}]}),
        json!({"requests": [{"id": "1", "url": "/users/delta"}]}),
        json!({"requests": [{"id": "1", "method": "GET"}]}),
        json!({"requests": [{"id": "1", "method": "GET", "url": "/users/delta", "dependsOn": ["2"]}]}),
        json!({"requests": [
            {"id": "1", "method": "GET", "url": "/users/delta", "dependsOn": ["2"]},
            {"id": "2", "method": "GET", "url": "/users/delta", "dependsOn": ["1"]},
        ]}),
        json!({"requests": [{"id": "1", "method": "POST", "url": "/users", "body": {"a": 1}}]}),
        json!({"requests": []}),
        json!({"nothing": true}),
    ] {
        let (status, body) = batch(&h, &token, bad.clone()).await;
        assert_eq!(status, 400, "{bad} -> {body}");
        assert!(body["error"]["message"].is_string());
    }
}
