//! Delta query for users and groups over real HTTPS: a replica kept by delta rounds must equal
//! the control API's ground truth after every round.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::Harness;
use serde_json::{Value, json};

struct Graph<'a> {
    h: &'a Harness,
    tenant: String,
    token: String,
}

impl<'a> Graph<'a> {
    async fn new(h: &'a Harness, client_id: &str) -> Self {
        let tenant = h.tenant().to_owned();
        let token = h.app_token(client_id).await;
        Self { h, tenant, token }
    }

    async fn connector(h: &'a Harness) -> Self {
        let app = h.emulator.tenants()[0].connector_app.client_id.clone();
        Self::new(h, &app).await
    }

    /// GET an absolute URL or a path under `/v1.0`.
    async fn get(
        &self,
        url: &str,
        page_size: Option<usize>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let url = if url.starts_with("https://") {
            url.to_owned()
        } else {
            self.h.url(&format!("/v1.0{url}"))
        };
        let mut req = self.h.client.get(url).bearer_auth(&self.token);
        if let Some(n) = page_size {
            req = req.header("Prefer", format!("odata.maxpagesize={n}"));
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, headers, res.json().await.unwrap())
    }

    /// Follows nextLinks to the end: every page's items and the deltaLink.
    async fn round(&self, start: &str, page_size: Option<usize>) -> (Vec<Vec<Value>>, String) {
        let mut pages = Vec::new();
        let mut url = start.to_owned();
        for _ in 0..10_000 {
            let (status, _, body) = self.get(&url, page_size).await;
            assert_eq!(status, 200, "{body}");
            assert!(
                body.get("@odata.nextLink").is_none() || body.get("@odata.deltaLink").is_none(),
                "never both links on one page"
            );
            let items = body["value"].as_array().unwrap().clone();
            if let Some(n) = page_size {
                assert!(items.len() <= n, "a page holds at most {n} objects");
            }
            pages.push(items);
            if let Some(next) = body["@odata.nextLink"].as_str() {
                assert!(next.contains("$skiptoken=") || next.contains("%24skiptoken="));
                url = next.to_owned();
            } else {
                let delta = body["@odata.deltaLink"]
                    .as_str()
                    .expect("deltaLink")
                    .to_owned();
                assert!(
                    delta.starts_with("https://127.0.0.1:"),
                    "absolute link: {delta}"
                );
                return (pages, delta);
            }
        }
        panic!("the round never ended");
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.h.client.request(
            method,
            self.h
                .url(&format!("/_emulator/tenants/{}{path}", self.tenant)),
        );
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        if res.status() == 204 {
            Value::Null
        } else {
            res.json().await.unwrap()
        }
    }
}

/// A local copy of users or groups kept by applying delta items, as a sync client does.
#[derive(Default, Debug)]
struct Replica {
    objects: BTreeMap<String, Value>,
    members: BTreeMap<String, BTreeSet<String>>,
}

impl Replica {
    fn apply(&mut self, item: &Value) {
        let id = item["id"].as_str().unwrap().to_owned();
        if item.get("@removed").is_some() {
            self.objects.remove(&id);
            self.members.remove(&id);
            return;
        }
        let entry = self.objects.entry(id.clone()).or_insert_with(|| json!({}));
        for (k, v) in item.as_object().unwrap() {
            if !k.ends_with("@delta") {
                entry[k] = v.clone();
            }
        }
        if let Some(changes) = item.get("members@delta").and_then(Value::as_array) {
            let set = self.members.entry(id).or_default();
            for m in changes {
                let mid = m["id"].as_str().unwrap().to_owned();
                assert!(m["@odata.type"].is_string());
                if m.get("@removed").is_some() {
                    assert_eq!(m["@removed"]["reason"], "deleted");
                    set.remove(&mid);
                } else {
                    set.insert(mid);
                }
            }
        }
    }
}

fn live<'v>(state: &'v Value, kind: &str) -> Vec<&'v Value> {
    state[kind]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["_state"] == "active")
        .collect()
}

fn by_id(items: &[Value]) -> BTreeMap<String, Value> {
    items
        .iter()
        .map(|i| (i["id"].as_str().unwrap().to_owned(), i.clone()))
        .collect()
}

#[tokio::test]
async fn users_delta_rounds_follow_every_change() {
    let h = Harness::start();
    let g = Graph::connector(&h).await;
    let truth = h.state(&g.tenant).await;
    let domain = truth["domain"].as_str().unwrap().to_owned();

    // A full round, paged 7 at a time, equals the live users.
    let (pages, delta_link) = g.round("/users/delta", Some(7)).await;
    assert!(pages.len() >= 9, "60 users over pages of 7");
    let all: Vec<Value> = pages.concat();
    let ids: BTreeSet<&str> = all.iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), all.len(), "each user once");
    let live_ids: BTreeSet<&str> = live(&truth, "users")
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, live_ids);
    let first = &all[0];
    assert!(first["userPrincipalName"].is_string() && first["displayName"].is_string());
    assert!(
        first.get("accountEnabled").is_none(),
        "default properties only"
    );
    assert!(first.get("signInActivity").is_none());

    // Changes through the control API.
    let users = live(&truth, "users");
    let updated = users[3]["id"].as_str().unwrap().to_owned();
    let soft = users[4]["id"].as_str().unwrap().to_owned();
    let hard = users[5]["id"].as_str().unwrap().to_owned();
    let restored = users[6]["id"].as_str().unwrap().to_owned();
    let mut created = BTreeSet::new();
    for n in 0..2 {
        let user = g
            .control(
                reqwest::Method::POST,
                "/users",
                Some(json!({"displayName": format!("Delta New {n}"), "userPrincipalName": format!("delta.new{n}@{domain}")})),
            )
            .await;
        created.insert(user["id"].as_str().unwrap().to_owned());
    }
    g.control(
        reqwest::Method::PATCH,
        &format!("/users/{updated}"),
        Some(json!({"jobTitle": "Delta Tester"})),
    )
    .await;
    g.control(reqwest::Method::DELETE, &format!("/users/{soft}"), None)
        .await;
    g.control(
        reqwest::Method::DELETE,
        &format!("/users/{hard}?permanent=true"),
        None,
    )
    .await;
    g.control(reqwest::Method::DELETE, &format!("/users/{restored}"), None)
        .await;
    g.control(
        reqwest::Method::POST,
        &format!("/users/{restored}/restore"),
        None,
    )
    .await;

    // The next round shows exactly those changes.
    let (pages, next_link) = g.round(&delta_link, Some(2)).await;
    let changes = by_id(&pages.concat());
    let mut expected: BTreeSet<String> = created.clone();
    expected.extend([
        updated.clone(),
        soft.clone(),
        hard.clone(),
        restored.clone(),
    ]);
    assert_eq!(changes.keys().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(changes[&updated]["displayName"], users[3]["displayName"]);
    assert_eq!(changes[&soft]["@removed"]["reason"], "changed");
    assert_eq!(changes[&hard]["@removed"]["reason"], "deleted");
    assert!(changes[&restored].get("@removed").is_none());
    assert!(changes[&restored]["userPrincipalName"].is_string());
    for id in &created {
        assert!(
            changes[id]["displayName"]
                .as_str()
                .unwrap()
                .starts_with("Delta New")
        );
    }

    // Nothing changed since: an empty round.
    let (pages, _) = g.round(&next_link, None).await;
    assert!(pages.concat().is_empty());

    // The replica kept by both rounds equals the ground truth.
    let truth = h.state(&g.tenant).await;
    let mut replica = Replica::default();
    let (pages, latest_base) = g.round("/users/delta()", None).await;
    for item in pages.concat() {
        replica.apply(&item);
    }
    let live_ids: BTreeSet<String> = live(&truth, "users")
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        replica.objects.keys().cloned().collect::<BTreeSet<_>>(),
        live_ids
    );
    assert!(latest_base.contains("deltatoken"));

    // `$deltatoken=latest`: no data now, then only what changes next.
    let (status, _, body) = g.get("/users/delta?$deltatoken=latest", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["value"], json!([]));
    assert!(body.get("@odata.nextLink").is_none());
    let latest = body["@odata.deltaLink"].as_str().unwrap().to_owned();
    g.control(
        reqwest::Method::PATCH,
        &format!("/users/{updated}"),
        Some(json!({"department": "Sync"})),
    )
    .await;
    let (pages, _) = g.round(&latest, None).await;
    let items = pages.concat();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], updated.as_str());
}

#[tokio::test]
async fn users_delta_select_and_permissions() {
    let h = Harness::start();
    let g = Graph::connector(&h).await;
    let truth = h.state(&g.tenant).await;

    let (pages, delta_link) = g
        .round("/users/delta?$select=displayName,jobTitle", Some(25))
        .await;
    let all = pages.concat();
    assert_eq!(all.len(), live(&truth, "users").len());
    for user in &all {
        let keys: BTreeSet<&str> = user
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["id", "displayName", "jobTitle"]));
    }
    // The selection travels in the token: the next round returns the same shape.
    let someone = all[0]["id"].as_str().unwrap().to_owned();
    g.control(
        reqwest::Method::PATCH,
        &format!("/users/{someone}"),
        Some(json!({"jobTitle": "Selected"})),
    )
    .await;
    let (pages, _) = g.round(&delta_link, None).await;
    let items = pages.concat();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["jobTitle"], "Selected");
    assert!(items[0].get("userPrincipalName").is_none());

    // `$filter` by id tracks just the named users, in later rounds too.
    let (a, b, c) = (
        all[1]["id"].as_str().unwrap().to_owned(),
        all[2]["id"].as_str().unwrap().to_owned(),
        all[3]["id"].as_str().unwrap().to_owned(),
    );
    let (pages, filtered_link) = g
        .round(
            &format!("/users/delta?$filter=id eq '{a}' or id eq '{b}'"),
            None,
        )
        .await;
    let ids: BTreeSet<String> = pages
        .concat()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, BTreeSet::from([a.clone(), b.clone()]));
    for id in [&b, &c] {
        g.control(
            reqwest::Method::PATCH,
            &format!("/users/{id}"),
            Some(json!({"officeLocation": "Filtered"})),
        )
        .await;
    }
    let (pages, _) = g.round(&filtered_link, None).await;
    let items = pages.concat();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], b.as_str());
    let (status, _, _) = g.get("/users/delta?$filter=displayName eq 'x'", None).await;
    assert_eq!(status, 400);

    let (status, _, body) = g.get("/users/delta?$select=nope", None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "Request_BadRequest");
    let (status, _, body) = g
        .get("/users/delta?$select=displayName,signInActivity", None)
        .await;
    assert_eq!(
        status, 400,
        "signInActivity is not supported in delta: {body}"
    );

    // The limited app may read users but not groups.
    let limited = h.emulator.tenants()[0].limited_app.client_id.clone();
    let lg = Graph::new(&h, &limited).await;
    let (status, _, _) = lg.get("/users/delta", None).await;
    assert_eq!(status, 200);
    let (status, _, body) = lg.get("/groups/delta", None).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
}

fn group_truth(state: &Value) -> (BTreeSet<String>, BTreeMap<String, BTreeSet<String>>) {
    let groups = live(state, "groups");
    let ids = groups
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_owned())
        .collect();
    let members = groups
        .iter()
        .map(|g| {
            (
                g["id"].as_str().unwrap().to_owned(),
                g["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["id"].as_str().unwrap().to_owned())
                    .collect::<BTreeSet<_>>(),
            )
        })
        .filter(|(_, m)| !m.is_empty())
        .collect();
    (ids, members)
}

fn replica_members(replica: &Replica) -> BTreeMap<String, BTreeSet<String>> {
    replica
        .members
        .iter()
        .filter(|(id, m)| replica.objects.contains_key(*id) && !m.is_empty())
        .map(|(id, m)| (id.clone(), m.clone()))
        .collect()
}

#[tokio::test]
async fn groups_delta_splits_members_and_tracks_membership() {
    let h = Harness::start();
    let g = Graph::connector(&h).await;
    let truth = h.state(&g.tenant).await;
    let users: Vec<String> = live(&truth, "users")
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    let groups: Vec<String> = live(&truth, "groups")
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_owned())
        .collect();

    // Make the first group big: every user a member.
    let big = groups[0].clone();
    let big_members: BTreeSet<String> = live(&truth, "groups")[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    for u in users.iter().take(30) {
        if !big_members.contains(u) {
            g.control(
                reqwest::Method::POST,
                &format!("/groups/{big}/members"),
                Some(json!({ "id": u })),
            )
            .await;
        }
    }

    // Initial round, four per page: the big group's members arrive in slices over several
    // pages, the group repeated each time; merged, everything equals the ground truth.
    let truth = h.state(&g.tenant).await;
    let (pages, delta_link) = g.round("/groups/delta", Some(4)).await;
    let big_pages = pages
        .iter()
        .filter(|p| p.iter().any(|o| o["id"] == big.as_str()))
        .count();
    assert!(
        big_pages >= 7,
        "30+ members in slices of 4: {big_pages} pages"
    );
    for page in &pages {
        let members: usize = page
            .iter()
            .map(|o| o["members@delta"].as_array().map_or(0, Vec::len))
            .sum();
        assert!(members <= 4, "a page holds at most 4 member entries");
    }
    let mut replica = Replica::default();
    for item in pages.concat() {
        assert!(
            item["displayName"].is_string(),
            "the repeated group keeps its properties"
        );
        replica.apply(&item);
    }
    let (truth_ids, truth_members) = group_truth(&truth);
    assert_eq!(
        replica.objects.keys().cloned().collect::<BTreeSet<_>>(),
        truth_ids
    );
    assert_eq!(replica_members(&replica), truth_members);

    // Membership and group changes.
    let small = groups[1].clone();
    let nested = g
        .control(
            reqwest::Method::POST,
            "/groups",
            Some(json!({"displayName": "Nested group", "mailNickname": "nestedgroup", "securityEnabled": true})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let soft = groups[3].clone();
    let hard = groups[4].clone();
    let renamed = groups[5].clone();
    let big_now: Vec<String> = truth_members[&big].iter().cloned().collect();
    for removed in big_now.iter().take(5) {
        g.control(
            reqwest::Method::DELETE,
            &format!("/groups/{big}/members/{removed}"),
            None,
        )
        .await;
    }
    let outsider = users
        .iter()
        .find(|u| !truth_members.get(&small).is_some_and(|m| m.contains(*u)))
        .unwrap()
        .clone();
    g.control(
        reqwest::Method::POST,
        &format!("/groups/{small}/members"),
        Some(json!({ "id": outsider })),
    )
    .await;
    g.control(
        reqwest::Method::POST,
        &format!("/groups/{small}/members"),
        Some(json!({ "id": nested })),
    )
    .await;
    g.control(reqwest::Method::DELETE, &format!("/groups/{soft}"), None)
        .await;
    g.control(
        reqwest::Method::DELETE,
        &format!("/groups/{hard}?permanent=true"),
        None,
    )
    .await;
    g.control(
        reqwest::Method::PATCH,
        &format!("/groups/{renamed}"),
        Some(json!({"displayName": "Renamed by delta test"})),
    )
    .await;
    let created = g
        .control(
            reqwest::Method::POST,
            "/groups",
            Some(json!({"displayName": "Delta group", "mailNickname": "deltagroup", "securityEnabled": true, "members": [users[0], users[1]]})),
        )
        .await;
    let created = created["id"].as_str().unwrap().to_owned();

    // The next round, one object per page, shows exactly those changes.
    let (pages, link2) = g.round(&delta_link, Some(1)).await;
    let items = pages.concat();
    let ids: BTreeSet<String> = items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let mut nested_in_deleted = BTreeSet::new();
    let mut expected = BTreeSet::from([
        big.clone(),
        small.clone(),
        soft.clone(),
        hard.clone(),
        renamed.clone(),
        created.clone(),
        nested.clone(),
    ]);
    // Groups the deleted ones were nested in saw a membership change too.
    let truth_after = h.state(&g.tenant).await;
    for group in live(&truth, "groups") {
        let gid = group["id"].as_str().unwrap();
        let had = |x: &str| {
            group["members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["id"] == x)
        };
        if had(&soft) || had(&hard) {
            expected.insert(gid.to_owned());
            nested_in_deleted.insert(gid.to_owned());
        }
    }
    assert_eq!(ids, expected);
    let find = |id: &str| -> Vec<&Value> { items.iter().filter(|i| i["id"] == id).collect() };
    assert_eq!(find(&soft)[0]["@removed"]["reason"], "changed");
    assert_eq!(find(&hard)[0]["@removed"]["reason"], "deleted");
    let big_changes: Vec<&Value> = find(&big)
        .into_iter()
        .flat_map(|i| i["members@delta"].as_array().unwrap())
        .collect();
    assert!(
        big_changes
            .iter()
            .all(|m| m["@removed"]["reason"] == "deleted")
    );
    for removed in big_now.iter().take(5) {
        assert!(big_changes.iter().any(|m| m["id"] == removed.as_str()));
    }
    assert!(find(&big).len() >= 5, "one member entry per page");
    let small_changes: Vec<&Value> = find(&small)
        .into_iter()
        .flat_map(|i| i["members@delta"].as_array().unwrap())
        .collect();
    assert!(small_changes.iter().any(|m| m["id"] == outsider.as_str()
        && m["@odata.type"] == "#microsoft.graph.user"
        && m.get("@removed").is_none()));
    assert!(
        small_changes
            .iter()
            .any(|m| m["id"] == nested.as_str() && m["@odata.type"] == "#microsoft.graph.group")
    );
    assert_eq!(find(&renamed)[0]["displayName"], "Renamed by delta test");
    if !nested_in_deleted.contains(&renamed) {
        assert!(find(&renamed)[0].get("members@delta").is_none());
    }

    // Applied to the replica, the round brings it to the ground truth.
    for item in &items {
        replica.apply(item);
    }
    let (truth_ids, truth_members) = group_truth(&truth_after);
    assert_eq!(
        replica.objects.keys().cloned().collect::<BTreeSet<_>>(),
        truth_ids
    );
    assert_eq!(replica_members(&replica), truth_members);
    assert_eq!(
        replica.objects[&renamed]["displayName"],
        "Renamed by delta test"
    );

    // A restored group comes back with its members.
    g.control(
        reqwest::Method::POST,
        &format!("/groups/{soft}/restore"),
        None,
    )
    .await;
    let (pages, _) = g.round(&link2, Some(3)).await;
    let items = pages.concat();
    assert!(
        items
            .iter()
            .any(|i| i["id"] == soft.as_str() && i.get("@removed").is_none())
    );
    for item in &items {
        replica.apply(item);
    }
    let truth_restored = h.state(&g.tenant).await;
    let (truth_ids, truth_members) = group_truth(&truth_restored);
    assert!(truth_ids.contains(&soft));
    assert_eq!(
        replica.objects.keys().cloned().collect::<BTreeSet<_>>(),
        truth_ids
    );
    assert_eq!(replica_members(&replica), truth_members);

    // `$select=displayName,members` tracks just those.
    let (pages, _) = g
        .round("/groups/delta?$select=displayName,members", None)
        .await;
    let items = pages.concat();
    assert!(items.iter().all(|i| {
        i.as_object()
            .unwrap()
            .keys()
            .all(|k| ["id", "displayName", "members@delta"].contains(&k.as_str()))
    }));
    assert!(items.iter().any(|i| i.get("members@delta").is_some()));
    let (pages, _) = g.round("/groups/delta?$select=displayName", None).await;
    assert!(
        pages
            .concat()
            .iter()
            .all(|i| i.get("members@delta").is_none())
    );
}

#[tokio::test]
async fn expired_tampered_and_foreign_tokens_need_a_resync() {
    let h = Harness::start();
    let g = Graph::connector(&h).await;

    let (_, _, body) = g.get("/users/delta?$deltatoken=latest", None).await;
    let link = body["@odata.deltaLink"].as_str().unwrap().to_owned();
    let (status, _, _) = g.get(&link, None).await;
    assert_eq!(status, 200);

    // Tampered: one character of the token changed.
    let (base, token) = link.split_once("deltatoken=").unwrap();
    let mut chars: Vec<char> = token.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered = format!("{base}deltatoken={}", chars.into_iter().collect::<String>());
    for url in [
        tampered,
        format!("{base}deltatoken=not-a-token"),
        // A users token on groups.
        link.replace("/users/delta", "/groups/delta"),
    ] {
        let (status, _, body) = g.get(&url, None).await;
        assert_eq!(status, 400, "{url}");
        assert_eq!(body["error"]["code"], "syncStateNotFound");
    }

    // Expired: the lifetime drops to one second.
    let res = h
        .client
        .put(h.url("/_emulator/faults"))
        .json(&json!({"delta_token_lifetime_secs": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _, body) = g.get(&link, None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "syncStateNotFound");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("synchronized again")
    );

    // A full resync works and yields a fresh link.
    let (pages, fresh) = g.round("/users/delta", None).await;
    assert!(!pages.concat().is_empty());
    let (status, _, _) = g.get(&fresh, None).await;
    assert_eq!(status, 200);
}
