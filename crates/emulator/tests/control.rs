//! The control API over real HTTPS: changing a tenant and reading it back.

mod common;

use common::Harness;
use serde_json::{Value, json};

#[tokio::test]
async fn ground_truth_lifecycle_and_faults() {
    let h = Harness::start();
    let tenant = h.tenant().to_owned();
    let before = h.state(&tenant).await;
    let users_before = before["users"].as_array().unwrap().len();
    assert_eq!(users_before, 60);
    assert!(before["groups"].as_array().unwrap().len() >= 12);

    // Create, update, soft delete, restore, hard delete a user.
    let created: Value = h
        .client
        .post(h.url(&format!("/_emulator/tenants/{tenant}/users")))
        .json(&json!({"displayName": "Test User", "userPrincipalName": format!("test.user@{}", h.emulator.tenants()[0].domain), "department": "QA"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let group = before["groups"][1]["id"].as_str().unwrap().to_owned();
    let add = h
        .client
        .post(h.url(&format!(
            "/_emulator/tenants/{tenant}/groups/{group}/members"
        )))
        .json(&json!({"id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(add.status(), 204);
    let again = h
        .client
        .post(h.url(&format!(
            "/_emulator/tenants/{tenant}/groups/{group}/members"
        )))
        .json(&json!({"id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);

    let patched = h
        .client
        .patch(h.url(&format!("/_emulator/tenants/{tenant}/users/{id}")))
        .json(&json!({"jobTitle": "Tester", "accountEnabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let bad = h
        .client
        .patch(h.url(&format!("/_emulator/tenants/{tenant}/users/{id}")))
        .json(&json!({"accountEnabled": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let del = h
        .client
        .delete(h.url(&format!("/_emulator/tenants/{tenant}/users/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let state = h.state(&tenant).await;
    let user = state["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == id.as_str())
        .unwrap();
    assert_eq!(user["_state"], "softDeleted");
    assert_eq!(user["jobTitle"], "Tester");
    let group_state = state["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == group.as_str())
        .unwrap();
    assert!(
        !group_state["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == id.as_str())
    );

    let restored = h
        .client
        .post(h.url(&format!("/_emulator/tenants/{tenant}/users/{id}/restore")))
        .send()
        .await
        .unwrap();
    assert_eq!(restored.status(), 200);
    let state = h.state(&tenant).await;
    let group_state = state["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == group.as_str())
        .unwrap();
    assert!(
        group_state["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == id.as_str()),
        "restore gives memberships back"
    );

    // Groups: soft delete hides the group, a second soft delete is a 404, restore brings it back.
    let del = h
        .client
        .delete(h.url(&format!("/_emulator/tenants/{tenant}/groups/{group}")))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let again = h
        .client
        .delete(h.url(&format!("/_emulator/tenants/{tenant}/groups/{group}")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    let restored = h
        .client
        .post(h.url(&format!(
            "/_emulator/tenants/{tenant}/groups/{group}/restore"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(restored.status(), 200);
    let restored: Value = restored.json().await.unwrap();
    assert_eq!(restored["id"], group.as_str());

    let faults: Value = h
        .client
        .put(h.url("/_emulator/faults"))
        .json(&json!({"rate_429": 0.1, "latency_ms": 5, "throttling": "aggressive"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults["rate_429"], 0.1);
    assert_eq!(faults["throttling"], "aggressive");
    let bad = h
        .client
        .put(h.url("/_emulator/faults"))
        .json(&json!({"rate_429": 2.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let missing = h
        .client
        .get(h.url("/_emulator/tenants/nope/state"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let unknown = h.client.get(h.url("/nothing/here")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(unknown.json::<Value>().await.unwrap()["error"]["message"].is_string());
}

#[tokio::test]
async fn http_and_https_both_serve_and_describe_is_complete() {
    let h = Harness::start();
    let plain = reqwest::get(format!("{}/_emulator", h.emulator.http_url()))
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    let d = h.emulator.describe();
    assert_eq!(d["tenants"].as_array().unwrap().len(), 2);
    assert!(
        d["tenants"][0]["connector_app"]["client_secret"]
            .as_str()
            .unwrap()
            .len()
            >= 30
    );
    assert!(std::path::Path::new(d["ca_path"].as_str().unwrap()).exists());
    assert!(h.emulator.ca_pem().contains("BEGIN CERTIFICATE"));
}

#[tokio::test]
async fn minted_tokens_reach_graph_auth() {
    let h = Harness::start();
    let tenant = h.tenant().to_owned();
    let app = h.emulator.tenants()[0].connector_app.client_id.clone();
    let mint = |body: Value| h.mint(&tenant, body);
    let expired = mint(json!({"client_id": app, "skew_secs": -7200, "lifetime_secs": 60})).await;
    let res = h
        .client
        .get(h.url("/v1.0/users"))
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("request-id"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert!(body["error"]["innerError"]["request-id"].is_string());

    let arm = mint(json!({"client_id": app, "resource": "https://management.azure.com"})).await;
    let res = h
        .client
        .get(h.url("/v1.0/users"))
        .bearer_auth(&arm)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "an ARM token is not a Graph token");

    let none = h.client.get(h.url("/v1.0/users")).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let res = h
        .client
        .get(h.url("/v1.0/users"))
        .bearer_auth("not.a.jwt")
        .header("client-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["client-request-id"], "abc-123");
}

#[tokio::test]
async fn churn_changes_a_share_of_the_tenant_deterministically() {
    let h = Harness::start();
    let tenant = h.tenant().to_owned();
    let before = h.state(&tenant).await;
    let live = |state: &Value| {
        state["users"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["deletedDateTime"].is_null())
            .count()
    };
    let res = h
        .client
        .post(h.url(&format!("/_emulator/tenants/{tenant}/churn")))
        .json(&json!({"fraction": 0.1, "seed": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let report: Value = res.json().await.unwrap();
    for key in [
        "usersUpdated",
        "usersCreated",
        "usersSoftDeleted",
        "usersHardDeleted",
        "groupsUpdated",
        "membersAdded",
        "devicesUpdated",
    ] {
        assert!(report[key].as_u64().unwrap() >= 1, "{key}: {report}");
    }
    let after = h.state(&tenant).await;
    let created = report["usersCreated"].as_u64().unwrap() as usize;
    let gone = (report["usersSoftDeleted"].as_u64().unwrap()
        + report["usersHardDeleted"].as_u64().unwrap()) as usize;
    let restored = report["usersRestored"].as_u64().unwrap() as usize;
    assert_eq!(live(&after), live(&before) + created + restored - gone);

    // The same seed on a fresh emulator makes the same report.
    let other = Harness::start();
    let again = other
        .emulator
        .churn(other.tenant(), 0.1, 3)
        .expect("tenant exists");
    assert_eq!(serde_json::to_value(&again).unwrap(), report);

    let bad = h
        .client
        .post(h.url(&format!("/_emulator/tenants/{tenant}/churn")))
        .json(&json!({"fraction": 2.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
