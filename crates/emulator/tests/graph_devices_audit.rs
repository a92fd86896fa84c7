//! Intune managed devices, audit logs and security alerts over real HTTPS, checked against
//! the control API's ground truth: paging to the end, newest first, `$filter`, get by id,
//! `$top` bounds and permissions.

mod common;

use common::Harness;
use serde_json::{Value, json};
use tenantlink_emulator::{EmulatorConfig, TenantSize};

fn medium() -> Harness {
    Harness::with(EmulatorConfig {
        size: TenantSize::MEDIUM,
        tenants: 1,
        ..Default::default()
    })
}

async fn tokens(h: &Harness) -> (String, String) {
    let t = &h.emulator.tenants()[0];
    let (full, limited) = (
        t.connector_app.client_id.clone(),
        t.limited_app.client_id.clone(),
    );
    (h.app_token(&full).await, h.app_token(&limited).await)
}

async fn get(h: &Harness, token: &str, url: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let url = if url.starts_with("https://") {
        url.to_owned()
    } else {
        h.url(&format!("/v1.0{url}"))
    };
    let mut req = h.client.get(url).bearer_auth(token);
    if !query.is_empty() {
        req = req.query(query);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn all_pages(
    h: &Harness,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
) -> (Vec<Value>, Vec<usize>) {
    let (status, mut page) = get(h, token, path, query).await;
    assert_eq!(status, 200, "{page}");
    let mut items = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let value = page["value"].as_array().unwrap().clone();
        sizes.push(value.len());
        items.extend(value);
        let Some(next) = page["@odata.nextLink"].as_str().map(str::to_owned) else {
            break;
        };
        let (status, body) = get(h, token, &next, &[]).await;
        assert_eq!(status, 200, "{body}");
        page = body;
    }
    (items, sizes)
}

/// Which ground-truth objects a filter case keeps.
type Keep = Box<dyn Fn(&Value) -> bool>;

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

/// An ISO 8601 instant an hour earlier.
fn chrono_minus_one_hour(iso: &str) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(iso).unwrap() - chrono::Duration::hours(1);
    t.to_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

async fn audit_state(h: &Harness) -> Value {
    let res = h
        .client
        .get(h.url(&format!(
            "/_emulator/tenants/{}/state?include_audit=true",
            h.tenant()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Ground-truth records newest first (the state lists them oldest first).
fn newest_first(state: &Value, set: &str, keep: impl Fn(&Value) -> bool) -> Vec<String> {
    state[set]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .filter(|r| keep(r))
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn managed_devices_page_filter_and_get() {
    let h = medium();
    let (t, limited) = tokens(&h).await;
    let tenant = h.tenant().to_owned();
    let state = h.state(&tenant).await;
    let devices: Vec<&Value> = state["managedDevices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["_state"] == "active")
        .collect();
    let truth: Vec<String> = devices
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();

    let (items, sizes) = all_pages(&h, &t, "/deviceManagement/managedDevices", &[]).await;
    assert_eq!(ids(&items), truth);
    assert_eq!(sizes[0], 1000.min(truth.len()));
    assert_eq!(items[0]["@odata.type"], "#microsoft.graph.managedDevice");
    let (items, sizes) = all_pages(
        &h,
        &t,
        "/deviceManagement/managedDevices",
        &[("$top", "400")],
    )
    .await;
    assert_eq!(ids(&items), truth);
    assert_eq!(sizes.len(), truth.len().div_ceil(400));

    let os = devices[0]["operatingSystem"].as_str().unwrap().to_owned();
    let since = devices[devices.len() / 2]["lastSyncDateTime"]
        .as_str()
        .unwrap()
        .to_owned();
    let cases: Vec<(String, Keep)> = vec![
        (
            format!("operatingSystem eq '{os}'"),
            Box::new(move |d: &Value| d["operatingSystem"] == os.as_str()),
        ),
        (
            "complianceState eq 'noncompliant'".into(),
            Box::new(|d: &Value| d["complianceState"] == "noncompliant"),
        ),
        (
            format!("lastSyncDateTime ge {since}"),
            Box::new({
                let since = since.clone();
                move |d: &Value| d["lastSyncDateTime"].as_str().unwrap() >= since.as_str()
            }),
        ),
        (
            format!("complianceState eq 'compliant' and lastSyncDateTime lt {since}"),
            Box::new({
                let since = since.clone();
                move |d: &Value| {
                    d["complianceState"] == "compliant"
                        && d["lastSyncDateTime"].as_str().unwrap() < since.as_str()
                }
            }),
        ),
    ];
    for (filter, keep) in &cases {
        let expected: Vec<String> = devices
            .iter()
            .filter(|d| keep(d))
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(!expected.is_empty(), "{filter}");
        let (items, _) = all_pages(
            &h,
            &t,
            "/deviceManagement/managedDevices",
            &[("$filter", filter), ("$top", "250")],
        )
        .await;
        assert_eq!(ids(&items), expected, "{filter}");
    }

    let (status, page) = get(
        &h,
        &t,
        "/deviceManagement/managedDevices",
        &[("$select", "id,deviceName,complianceState"), ("$top", "3")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["value"][0]["deviceName"], devices[0]["deviceName"]);
    assert!(page["value"][0].get("osVersion").is_none());

    let id = truth[3].clone();
    let (status, one) = get(
        &h,
        &t,
        &format!("/deviceManagement/managedDevices/{id}"),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one["serialNumber"], devices[3]["serialNumber"]);
    let res = h
        .client
        .delete(h.url(&format!("/_emulator/tenants/{tenant}/managedDevices/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (status, _) = get(
        &h,
        &t,
        &format!("/deviceManagement/managedDevices/{id}"),
        &[],
    )
    .await;
    assert_eq!(status, 404);
    let (items, _) = all_pages(&h, &t, "/deviceManagement/managedDevices", &[]).await;
    assert_eq!(items.len(), truth.len() - 1);
    assert!(!ids(&items).contains(&id));

    let (status, body) = get(&h, &limited, "/deviceManagement/managedDevices", &[]).await;
    assert_eq!((status, code(&body)), (403, "Authorization_RequestDenied"));
}

#[tokio::test]
async fn sign_ins_newest_first_paged_and_filtered() {
    let h = medium();
    let (t, limited) = tokens(&h).await;
    let state = audit_state(&h).await;
    let truth = newest_first(&state, "signIns", |_| true);
    assert_eq!(truth.len(), 20_000);

    let (items, sizes) = all_pages(&h, &t, "/auditLogs/signIns", &[]).await;
    assert_eq!(sizes[0], 1000, "the default page is 1,000 sign-ins");
    assert_eq!(ids(&items), truth);
    let (status, body) = get(&h, &t, "/auditLogs/signIns", &[("$top", "1001")]).await;
    assert_eq!((status, code(&body)), (400, "Request_UnsupportedQuery"));

    let records = state["signIns"].as_array().unwrap();
    let from = records[records.len() / 4]["createdDateTime"]
        .as_str()
        .unwrap()
        .to_owned();
    let to = records[records.len() / 2]["createdDateTime"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = records[10]["userId"].as_str().unwrap().to_owned();
    let app = records[20]["appId"].as_str().unwrap().to_owned();
    let cases: Vec<(String, Keep)> = vec![
        (
            format!("createdDateTime ge {from} and createdDateTime le {to}"),
            Box::new({
                let (from, to) = (from.clone(), to.clone());
                move |r: &Value| {
                    let c = r["createdDateTime"].as_str().unwrap();
                    c >= from.as_str() && c <= to.as_str()
                }
            }),
        ),
        (
            format!("createdDateTime gt {from} and status/errorCode eq 0"),
            Box::new({
                let from = from.clone();
                move |r: &Value| {
                    r["createdDateTime"].as_str().unwrap() > from.as_str()
                        && r["status"]["errorCode"] == 0
                }
            }),
        ),
        (
            "status/errorCode ne 0".into(),
            Box::new(|r: &Value| r["status"]["errorCode"] != 0),
        ),
        (
            format!("userId eq '{user}'"),
            Box::new(move |r: &Value| r["userId"] == user.as_str()),
        ),
        (
            format!("appId eq '{app}' and createdDateTime lt {to}"),
            Box::new({
                let to = to.clone();
                move |r: &Value| {
                    r["appId"] == app.as_str()
                        && r["createdDateTime"].as_str().unwrap() < to.as_str()
                }
            }),
        ),
    ];
    for (filter, keep) in &cases {
        let expected = newest_first(&state, "signIns", keep);
        assert!(!expected.is_empty(), "{filter}");
        let (items, _) = all_pages(
            &h,
            &t,
            "/auditLogs/signIns",
            &[("$filter", filter), ("$top", "500")],
        )
        .await;
        assert_eq!(ids(&items), expected, "{filter}");
    }

    let (status, one) = get(&h, &t, &format!("/auditLogs/signIns/{}", truth[42]), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(one["id"], truth[42].as_str());
    let (status, _) = get(&h, &t, "/auditLogs/signIns/nope", &[]).await;
    assert_eq!(status, 404);

    // A new sign-in comes first.
    let tenant = h.tenant().to_owned();
    let created: Value = h
        .client
        .post(h.url(&format!("/_emulator/tenants/{tenant}/signIns")))
        .json(&json!({"userId": records[0]["userId"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (_, page) = get(&h, &t, "/auditLogs/signIns", &[("$top", "1")]).await;
    assert_eq!(page["value"][0]["id"], created["id"]);

    // A record inserted into the middle of the log while paging (an older sign-in shifts
    // every stored position): the skiptoken still resumes at the right record.
    let (_, first) = get(&h, &t, "/auditLogs/signIns", &[("$top", "1000")]).await;
    let mut seen = ids(first["value"].as_array().unwrap());
    let oldest = records[0]["createdDateTime"].as_str().unwrap();
    let old_time = chrono_minus_one_hour(oldest);
    let backdated: Value = h
        .client
        .post(h.url(&format!("/_emulator/tenants/{tenant}/signIns")))
        .json(&json!({"userId": records[0]["userId"], "createdDateTime": old_time}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut next = first["@odata.nextLink"].as_str().map(str::to_owned);
    while let Some(link) = next {
        let (status, page) = get(&h, &t, &link, &[]).await;
        assert_eq!(status, 200);
        seen.extend(ids(page["value"].as_array().unwrap()));
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
    }
    let mut expected = truth.clone();
    expected.insert(0, created["id"].as_str().unwrap().to_owned());
    expected.push(backdated["id"].as_str().unwrap().to_owned());
    assert_eq!(seen, expected);

    let (status, body) = get(&h, &limited, "/auditLogs/signIns", &[]).await;
    assert_eq!((status, code(&body)), (403, "Authorization_RequestDenied"));
}

#[tokio::test]
async fn directory_audits_and_alerts() {
    let h = medium();
    let (t, limited) = tokens(&h).await;
    let state = audit_state(&h).await;

    let truth = newest_first(&state, "directoryAudits", |_| true);
    let (items, _) = all_pages(&h, &t, "/auditLogs/directoryAudits", &[("$top", "700")]).await;
    assert_eq!(ids(&items), truth);
    let records = state["directoryAudits"].as_array().unwrap();
    let since = records[records.len() * 3 / 4]["activityDateTime"]
        .as_str()
        .unwrap()
        .to_owned();
    let filter = format!("activityDateTime ge {since} and result eq 'failure'");
    let expected = newest_first(&state, "directoryAudits", |r| {
        r["activityDateTime"].as_str().unwrap() >= since.as_str() && r["result"] == "failure"
    });
    let (items, _) = all_pages(
        &h,
        &t,
        "/auditLogs/directoryAudits",
        &[("$filter", &filter)],
    )
    .await;
    assert_eq!(ids(&items), expected);
    let (status, one) = get(
        &h,
        &t,
        &format!("/auditLogs/directoryAudits/{}", truth[0]),
        &[],
    )
    .await;
    assert_eq!((status, &one["id"]), (200, &json!(truth[0])));

    let alerts = newest_first(&state, "alerts", |_| true);
    let (items, sizes) = all_pages(&h, &t, "/security/alerts_v2", &[]).await;
    assert_eq!(ids(&items), alerts);
    assert_eq!(sizes.len(), 1);
    let (items, _) = all_pages(&h, &t, "/security/alerts_v2", &[("$top", "7")]).await;
    assert_eq!(ids(&items), alerts);
    let expected = newest_first(&state, "alerts", |a| {
        a["severity"] == "high" || a["status"] == "new"
    });
    let (items, _) = all_pages(
        &h,
        &t,
        "/security/alerts_v2",
        &[("$filter", "severity eq 'high' or status eq 'new'")],
    )
    .await;
    assert_eq!(ids(&items), expected);
    let (status, one) = get(&h, &t, &format!("/security/alerts_v2/{}", alerts[1]), &[]).await;
    assert_eq!((status, &one["id"]), (200, &json!(alerts[1])));

    for path in ["/auditLogs/directoryAudits", "/security/alerts_v2"] {
        let (status, body) = get(&h, &limited, path, &[]).await;
        assert_eq!(
            (status, code(&body)),
            (403, "Authorization_RequestDenied"),
            "{path}"
        );
    }
}
