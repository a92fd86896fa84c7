//! Graph v1.0 users and groups over real HTTPS, checked against the control API's ground
//! truth: paging to the end, `$select`, `$filter`, `$count`, `$search`, `$top` bounds,
//! manager and memberships, permissions, 404s, and tampered and expired skiptokens.

mod common;

use std::collections::{BTreeSet, HashMap, HashSet};

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

/// A Graph token for the tenant's connector app (every permission) or given roles.
async fn token(h: &Harness, roles: Option<&[&str]>) -> String {
    let tenant = h.tenant().to_owned();
    let app = h.emulator.tenants()[0].connector_app.client_id.clone();
    let mut body = json!({"client_id": app});
    if let Some(roles) = roles {
        body["roles"] = json!(roles);
    }
    h.mint(&tenant, body).await
}

/// A token of the seeded limited app (only `User.Read.All` granted).
async fn limited_token(h: &Harness) -> String {
    let app = h.emulator.tenants()[0].limited_app.client_id.clone();
    h.app_token(&app).await
}

/// GET a Graph URL (absolute, or a path under /v1.0) with optional query pairs and headers.
async fn get(
    h: &Harness,
    token: &str,
    url: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let url = if url.starts_with("https://") {
        url.to_owned()
    } else {
        h.url(&format!("/v1.0{url}"))
    };
    let mut req = h.client.get(url).bearer_auth(token);
    if !query.is_empty() {
        req = req.query(query);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Follows nextLinks to the end; returns every object and the page sizes.
async fn all_pages(
    h: &Harness,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> (Vec<Value>, Vec<usize>) {
    let (status, mut page) = get(h, token, path, query, headers).await;
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
        assert!(
            next.starts_with(&h.emulator.https_url().to_string()),
            "{next}"
        );
        assert!(next.contains("$skiptoken="), "{next}");
        let (status, body) = get(h, token, &next, &[], headers).await;
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

fn live<'a>(state: &'a Value, set: &str) -> Vec<&'a Value> {
    state[set]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["_state"] == "active")
        .collect()
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

const USER_DEFAULTS: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

#[tokio::test]
async fn users_page_to_the_end_like_the_ground_truth() {
    let h = medium();
    let t = token(&h, None).await;
    let state = h.state(h.tenant()).await;
    let truth: Vec<String> = live(&state, "users")
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(truth.len() >= 2000);

    // Default page: 100 users with exactly the default properties.
    let (status, first) = get(&h, &t, "/users", &[], &[]).await;
    assert_eq!(status, 200);
    assert!(
        first["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/v1.0/$metadata#users")
    );
    let value = first["value"].as_array().unwrap();
    assert_eq!(value.len(), 100);
    let keys: BTreeSet<&str> = value[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, USER_DEFAULTS.iter().copied().collect());
    assert!(first["@odata.nextLink"].is_string());

    // Full pages of 999 to the end equal the ground truth, in order, each once.
    let (items, sizes) = all_pages(&h, &t, "/users", &[("$top", "999")], &[]).await;
    assert_eq!(ids(&items), truth);
    assert_eq!(sizes[0], 999);
    assert_eq!(sizes.len(), truth.len().div_ceil(999));

    // The key may arrive percent-encoded.
    let raw = h.url("/v1.0/users?%24top=5&%24select=id");
    let (status, page) = get(&h, &t, &raw, &[], &[]).await;
    assert_eq!(status, 200);
    assert_eq!(page["value"].as_array().unwrap().len(), 5);
    let next = page["@odata.nextLink"].as_str().unwrap();
    let (_, second) = get(&h, &t, next, &[], &[]).await;
    assert_eq!(ids(second["value"].as_array().unwrap()), truth[5..10]);

    // $top out of range.
    for bad in ["1000", "0", "-1", "many"] {
        let (status, body) = get(&h, &t, "/users", &[("$top", bad)], &[]).await;
        assert_eq!(status, 400, "$top={bad}");
        assert_eq!(error_code(&body), "Request_UnsupportedQuery");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Must be between 1 and 999 inclusive")
        );
    }
}

#[tokio::test]
async fn select_filter_count_and_search_on_users() {
    let h = medium();
    let t = token(&h, None).await;
    let state = h.state(h.tenant()).await;
    let users = live(&state, "users");
    let eventual = [("ConsistencyLevel", "eventual")];

    // $select: case-insensitive names, canonical casing back, nothing else.
    let (status, page) = get(
        &h,
        &t,
        "/users",
        &[("$select", "DisplayName,ID,department")],
        &[],
    )
    .await;
    assert_eq!(status, 200);
    let first = page["value"][0].as_object().unwrap();
    let keys: BTreeSet<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["displayName", "id", "department"]));
    assert!(
        page["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#users(displayName,id,department)")
    );
    let (status, body) = get(&h, &t, "/users", &[("$select", "id,shoeSize")], &[]).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "Could not find a property named 'shoeSize' on type 'microsoft.graph.user'."
    );

    // $filter cases against the ground truth.
    let prefix: String = users[7]["displayName"]
        .as_str()
        .unwrap()
        .chars()
        .take(3)
        .collect();
    let cases: Vec<(String, Keep)> = vec![
        (
            format!("startswith(displayName,'{}')", prefix.replace('\'', "''")),
            Box::new({
                let p = prefix.to_lowercase();
                move |u: &Value| {
                    u["displayName"]
                        .as_str()
                        .unwrap()
                        .to_lowercase()
                        .starts_with(&p)
                }
            }),
        ),
        (
            "accountEnabled eq false".into(),
            Box::new(|u: &Value| u["accountEnabled"] == false),
        ),
        (
            "userType eq 'Guest'".into(),
            Box::new(|u: &Value| u["userType"] == "Guest"),
        ),
        (
            "userType eq 'Member' and (accountEnabled eq false or jobTitle eq null)".into(),
            Box::new(|u: &Value| {
                u["userType"] == "Member"
                    && (u["accountEnabled"] == false || u["jobTitle"].is_null())
            }),
        ),
    ];
    for (filter, keep) in &cases {
        let expected: Vec<String> = users
            .iter()
            .filter(|u| keep(u))
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(!expected.is_empty(), "{filter} selects something");
        let (items, _) = all_pages(
            &h,
            &t,
            "/users",
            &[("$filter", filter), ("$top", "300")],
            &[],
        )
        .await;
        assert_eq!(ids(&items), expected, "{filter}");
    }
    let upn = users[3]["userPrincipalName"]
        .as_str()
        .unwrap()
        .to_uppercase();
    let (_, page) = get(
        &h,
        &t,
        "/users",
        &[("$filter", &format!("userPrincipalName eq '{upn}'"))],
        &[],
    )
    .await;
    assert_eq!(page["value"].as_array().unwrap().len(), 1);
    let (status, body) = get(&h, &t, "/users", &[("$filter", "displayName eq")], &[]).await;
    assert_eq!((status, error_code(&body)), (400, "BadRequest"));
    let (status, body) = get(
        &h,
        &t,
        "/users",
        &[("$filter", "contains(displayName,'a')")],
        &[],
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, "BadRequest"));
    let (status, body) = get(&h, &t, "/users", &[("$filter", "shoeSize eq 4")], &[]).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'shoeSize'")
    );

    // `ne` is an advanced query: ConsistencyLevel and $count=true, or 400.
    let (status, body) = get(
        &h,
        &t,
        "/users",
        &[("$filter", "userType ne 'Member'")],
        &[],
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "Request_UnsupportedQuery")
    );
    let guests = users.iter().filter(|u| u["userType"] != "Member").count();
    let (status, page) = get(
        &h,
        &t,
        "/users",
        &[
            ("$filter", "userType ne 'Member'"),
            ("$count", "true"),
            ("$top", "999"),
        ],
        &eventual,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["@odata.count"], guests);

    // $count: with the header a total on every page; without it silently ignored.
    let (items, _) = all_pages(
        &h,
        &t,
        "/users",
        &[("$count", "true"), ("$top", "700")],
        &eventual,
    )
    .await;
    assert_eq!(items.len(), users.len());
    let (_, page) = get(&h, &t, "/users", &[("$count", "true")], &eventual).await;
    assert_eq!(page["@odata.count"], users.len());
    let (_, page2) = get(
        &h,
        &t,
        page["@odata.nextLink"].as_str().unwrap(),
        &[],
        &eventual,
    )
    .await;
    assert_eq!(page2["@odata.count"], users.len());
    let (status, page) = get(&h, &t, "/users", &[("$count", "true")], &[]).await;
    assert_eq!(status, 200);
    assert!(page.get("@odata.count").is_none());
    let (status, body) = get(&h, &t, "/users/$count", &[], &[]).await;
    assert_eq!((status, error_code(&body)), (400, "Request_BadRequest"));
    assert_eq!(
        body["error"]["message"],
        "$count is not currently supported."
    );
    let (status, n) = get(&h, &t, "/users/$count", &[], &eventual).await;
    assert_eq!((status, n), (200, json!(users.len())));

    // $search needs ConsistencyLevel.
    let word = users[11]["displayName"]
        .as_str()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let search = format!("\"displayName:{word}\"");
    let (status, body) = get(&h, &t, "/users", &[("$search", &search)], &[]).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "Request_UnsupportedQuery")
    );
    let (items, _) = all_pages(&h, &t, "/users", &[("$search", &search)], &eventual).await;
    assert!(items.iter().any(|u| u["id"] == users[11]["id"]));
    let w = word.to_lowercase();
    for u in &items {
        let name = u["displayName"].as_str().unwrap().to_lowercase();
        assert!(
            name.split(|c: char| !c.is_alphanumeric())
                .any(|t| t.starts_with(&w)),
            "{name}"
        );
    }
}

#[tokio::test]
async fn sign_in_activity_needs_audit_permission_and_smaller_pages() {
    let h = medium();
    let all = token(&h, None).await;
    let users_only = token(&h, Some(&["User.Read.All"])).await;
    let select = [
        ("$select", "id,displayName,signInActivity"),
        ("$top", "999"),
    ];

    let (status, page) = get(&h, &all, "/users", &select, &[]).await;
    assert_eq!(status, 200);
    let value = page["value"].as_array().unwrap();
    assert_eq!(
        value.len(),
        120,
        "pages with signInActivity hold at most 120 users"
    );
    assert!(value.iter().all(|u| u["signInActivity"].is_object()));
    let state = h.state(h.tenant()).await;
    let truth: HashMap<&str, &Value> = live(&state, "users")
        .iter()
        .map(|u| (u["id"].as_str().unwrap(), &u["signInActivity"]))
        .collect();
    for u in value {
        assert_eq!(
            u["signInActivity"]["lastSignInDateTime"],
            truth[u["id"].as_str().unwrap()]["lastSignInDateTime"]
        );
    }
    let (items, _) = all_pages(&h, &all, "/users", &select, &[]).await;
    assert_eq!(items.len(), truth.len());

    let (status, body) = get(&h, &users_only, "/users", &select, &[]).await;
    assert_eq!(
        (status, error_code(&body)),
        (403, "Authorization_RequestDenied")
    );
    let (status, page) = get(&h, &users_only, "/users", &[], &[]).await;
    assert_eq!(status, 200);
    assert!(page["value"][0].get("signInActivity").is_none());

    // Filtering on signInActivity: inactive users, as a sync would look for them.
    let mut times: Vec<&str> = truth
        .values()
        .filter_map(|a| a["lastSignInDateTime"].as_str())
        .collect();
    times.sort_unstable();
    let cutoff = times[times.len() / 3].to_owned();
    let expected: BTreeSet<&str> = truth
        .iter()
        .filter(|(_, a)| {
            a["lastSignInDateTime"]
                .as_str()
                .is_some_and(|t| t <= cutoff.as_str())
        })
        .map(|(id, _)| *id)
        .collect();
    let filter = format!("signInActivity/lastSignInDateTime le {cutoff}");
    let (items, sizes) = all_pages(&h, &all, "/users", &[("$filter", &filter)], &[]).await;
    assert!(sizes.iter().all(|&n| n <= 100));
    assert_eq!(
        ids(&items)
            .iter()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        expected
    );
    assert!(items[0].get("signInActivity").is_none(), "not selected");
    let (status, body) = get(
        &h,
        &all,
        "/users",
        &[("$filter", &format!("{filter} and accountEnabled eq true"))],
        &[],
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "Request_UnsupportedQuery")
    );
    let (status, _) = get(&h, &users_only, "/users", &[("$filter", &filter)], &[]).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn get_user_manager_and_memberships_match_the_model() {
    let h = medium();
    let t = token(&h, None).await;
    let state = h.state(h.tenant()).await;
    let users = live(&state, "users");
    let groups = live(&state, "groups");

    let u = users
        .iter()
        .find(|u| u["managerId"].is_string())
        .expect("a user with a manager");
    let id = u["id"].as_str().unwrap();
    let (status, by_id) = get(&h, &t, &format!("/users/{id}"), &[], &[]).await;
    assert_eq!(status, 200);
    assert_eq!(by_id["userPrincipalName"], u["userPrincipalName"]);
    assert!(
        by_id["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#users/$entity")
    );
    let upn = u["userPrincipalName"].as_str().unwrap();
    let (status, by_upn) = get(
        &h,
        &t,
        &format!("/users/{upn}"),
        &[("$select", "id,jobTitle")],
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(by_upn["id"], id);
    assert_eq!(by_upn["jobTitle"], u["jobTitle"]);

    let (status, manager) = get(&h, &t, &format!("/users/{id}/manager"), &[], &[]).await;
    assert_eq!(status, 200);
    assert_eq!(manager["id"], u["managerId"]);
    assert_eq!(manager["@odata.type"], "#microsoft.graph.user");
    let top = users.iter().find(|u| u["managerId"].is_null()).unwrap();
    let (status, body) = get(
        &h,
        &t,
        &format!("/users/{}/manager", top["id"].as_str().unwrap()),
        &[],
        &[],
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (404, "Request_ResourceNotFound")
    );

    let missing = "00000000-0000-0000-0000-000000000001";
    for path in [
        format!("/users/{missing}"),
        format!("/users/{missing}/manager"),
        format!("/users/{missing}/memberOf"),
    ] {
        let (status, body) = get(&h, &t, &path, &[], &[]).await;
        assert_eq!(
            (status, error_code(&body)),
            (404, "Request_ResourceNotFound"),
            "{path}"
        );
        assert_eq!(
            body["error"]["message"],
            format!(
                "Resource '{missing}' does not exist or one of its queried reference-property objects are not present."
            )
        );
    }

    // Direct and transitive memberships from the ground truth's member lists.
    let parents = |member: &str| -> Vec<String> {
        groups
            .iter()
            .filter(|g| {
                g["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m["id"] == member)
            })
            .map(|g| g["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let nested_member = users
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .find(|uid| parents(uid).iter().any(|g| !parents(g).is_empty()))
        .expect("a user in a nested group");
    let direct = parents(nested_member);
    let mut closure: BTreeSet<String> = BTreeSet::new();
    let mut frontier = direct.clone();
    while let Some(g) = frontier.pop() {
        if closure.insert(g.clone()) {
            frontier.extend(parents(&g));
        }
    }
    let (items, _) = all_pages(
        &h,
        &t,
        &format!("/users/{nested_member}/memberOf"),
        &[("$top", "2")],
        &[],
    )
    .await;
    assert!(
        items
            .iter()
            .all(|g| g["@odata.type"] == "#microsoft.graph.group")
    );
    assert_eq!(
        ids(&items).into_iter().collect::<BTreeSet<_>>(),
        direct.into_iter().collect()
    );
    let (items, _) = all_pages(
        &h,
        &t,
        &format!("/users/{nested_member}/transitiveMemberOf"),
        &[("$top", "3")],
        &[],
    )
    .await;
    assert_eq!(ids(&items).into_iter().collect::<BTreeSet<_>>(), closure);
    assert!(closure.len() > parents(nested_member).len());

    // The limited app reads users but not memberships or groups.
    let limited = limited_token(&h).await;
    let (status, _) = get(&h, &limited, &format!("/users/{id}"), &[], &[]).await;
    assert_eq!(status, 200);
    let (status, body) = get(&h, &limited, &format!("/users/{id}/memberOf"), &[], &[]).await;
    assert_eq!(
        (status, error_code(&body)),
        (403, "Authorization_RequestDenied")
    );
}

#[tokio::test]
async fn groups_members_and_transitive_members_match_the_model() {
    let h = medium();
    let t = token(&h, None).await;
    let state = h.state(h.tenant()).await;
    let groups = live(&state, "groups");
    let by_id: HashMap<&str, &Value> = groups
        .iter()
        .map(|g| (g["id"].as_str().unwrap(), *g))
        .collect();

    let (items, sizes) = all_pages(&h, &t, "/groups", &[("$top", "60")], &[]).await;
    assert_eq!(
        ids(&items),
        groups
            .iter()
            .map(|g| g["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    );
    assert_eq!(sizes[0], 60);
    assert!(items[0].get("groupTypes").is_some() && items[0].get("members").is_none());

    let kinds: Vec<(&str, Keep)> = vec![
        (
            "groupTypes/any(c:c eq 'Unified')",
            Box::new(|g: &Value| {
                g["groupTypes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t == "Unified")
            }),
        ),
        (
            "mailEnabled eq true",
            Box::new(|g: &Value| g["mailEnabled"] == true),
        ),
        (
            "securityEnabled eq true and mailEnabled eq false",
            Box::new(|g: &Value| g["securityEnabled"] == true && g["mailEnabled"] == false),
        ),
    ];
    for (filter, keep) in &kinds {
        let expected: Vec<String> = groups
            .iter()
            .filter(|g| keep(g))
            .map(|g| g["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(!expected.is_empty(), "{filter}");
        let (items, _) = all_pages(&h, &t, "/groups", &[("$filter", filter)], &[]).await;
        assert_eq!(ids(&items), expected, "{filter}");
    }

    // A group with nested groups: members and transitive members.
    let parent = groups
        .iter()
        .find(|g| {
            g["members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["@odata.type"] == "#microsoft.graph.group")
        })
        .expect("a group with a nested group");
    let gid = parent["id"].as_str().unwrap();
    let (status, one) = get(&h, &t, &format!("/groups/{gid}"), &[], &[]).await;
    assert_eq!((status, &one["displayName"]), (200, &parent["displayName"]));
    let (members, _) = all_pages(
        &h,
        &t,
        &format!("/groups/{gid}/members"),
        &[("$top", "7")],
        &[],
    )
    .await;
    let expected: Vec<(String, String)> = parent["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_owned(),
                m["@odata.type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let got: Vec<(String, String)> = members
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_owned(),
                m["@odata.type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    for m in &members {
        if m["@odata.type"] == "#microsoft.graph.user" {
            assert!(m.get("userPrincipalName").is_some() && m.get("groupTypes").is_none());
        } else {
            assert!(m.get("groupTypes").is_some() && m.get("userPrincipalName").is_none());
        }
    }
    let mut closure: HashSet<String> = HashSet::new();
    let mut frontier = vec![gid.to_owned()];
    while let Some(g) = frontier.pop() {
        for m in by_id[g.as_str()]["members"].as_array().unwrap() {
            let mid = m["id"].as_str().unwrap().to_owned();
            if mid != gid
                && closure.insert(mid.clone())
                && m["@odata.type"] == "#microsoft.graph.group"
            {
                frontier.push(mid);
            }
        }
    }
    let (transitive, _) = all_pages(
        &h,
        &t,
        &format!("/groups/{gid}/transitiveMembers"),
        &[("$top", "5")],
        &[],
    )
    .await;
    let got: Vec<String> = ids(&transitive);
    assert_eq!(got.len(), closure.len(), "each member once");
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), closure);

    let missing = "00000000-0000-0000-0000-0000000000aa";
    for path in [
        format!("/groups/{missing}"),
        format!("/groups/{missing}/members"),
    ] {
        let (status, body) = get(&h, &t, &path, &[], &[]).await;
        assert_eq!(
            (status, error_code(&body)),
            (404, "Request_ResourceNotFound")
        );
    }
    let limited = limited_token(&h).await;
    for path in [
        "/groups".to_owned(),
        format!("/groups/{gid}/members"),
        format!("/groups/{gid}"),
    ] {
        let (status, body) = get(&h, &limited, &path, &[], &[]).await;
        assert_eq!(
            (status, error_code(&body)),
            (403, "Authorization_RequestDenied"),
            "{path}"
        );
    }
    let group_member_only = token(&h, Some(&["GroupMember.Read.All"])).await;
    let (status, _) = get(
        &h,
        &group_member_only,
        &format!("/groups/{gid}/transitiveMembers"),
        &[],
        &[],
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn deleted_objects_vanish_and_skiptokens_are_checked() {
    let h = medium();
    let t = token(&h, None).await;
    let tenant = h.tenant().to_owned();
    let state = h.state(&tenant).await;
    let victim = live(&state, "users")[5]["id"].as_str().unwrap().to_owned();
    let res = h
        .client
        .delete(h.url(&format!("/_emulator/tenants/{tenant}/users/{victim}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (status, _) = get(&h, &t, &format!("/users/{victim}"), &[], &[]).await;
    assert_eq!(status, 404);
    let (items, _) = all_pages(&h, &t, "/users", &[("$top", "999"), ("$select", "id")], &[]).await;
    assert!(!ids(&items).contains(&victim));
    assert_eq!(items.len(), live(&h.state(&tenant).await, "users").len());

    // A tampered skiptoken, or one moved to another query, is refused.
    let (_, page) = get(&h, &t, "/users", &[("$top", "10")], &[]).await;
    let next = page["@odata.nextLink"].as_str().unwrap().to_owned();
    let (head, token_part) = next.split_once("$skiptoken=").unwrap();
    let mut chars: Vec<char> = token_part.chars().collect();
    chars[3] = if chars[3] == 'A' { 'B' } else { 'A' };
    let tampered = format!("{head}$skiptoken={}", chars.into_iter().collect::<String>());
    let (status, body) = get(&h, &t, &tampered, &[], &[]).await;
    assert_eq!((status, error_code(&body)), (400, "Request_BadRequest"));
    let moved = next
        .replace("%24top=10", "%24top=11")
        .replace("$top=10", "$top=11");
    let (status, _) = get(&h, &t, &moved, &[], &[]).await;
    assert_eq!(status, 400);
    let (status, _) = get(&h, &t, &next, &[], &[]).await;
    assert_eq!(status, 200);

    // An expired one answers Directory_ExpiredPageToken.
    let res = h
        .client
        .put(h.url("/_emulator/faults"))
        .json(&json!({"page_token_lifetime_secs": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = get(&h, &t, &next, &[], &[]).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "Directory_ExpiredPageToken")
    );
    assert_eq!(
        body["error"]["message"],
        "The specified page token value has expired and can no longer be included in your request."
    );
}

#[tokio::test]
async fn orderby_display_name_pages_in_sorted_order() {
    let h = medium();
    let t = token(&h, None).await;
    let state = h.state(h.tenant()).await;
    let sorted = |set: &str, desc: bool, keep: &dyn Fn(&Value) -> bool| -> Vec<String> {
        let mut objects: Vec<(String, usize, String)> = live(&state, set)
            .iter()
            .enumerate()
            .filter(|(_, o)| keep(o))
            .map(|(i, o)| {
                (
                    o["displayName"].as_str().unwrap().to_lowercase(),
                    i,
                    o["id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        objects.sort();
        if desc {
            objects.reverse();
        }
        objects.into_iter().map(|(_, _, id)| id).collect()
    };

    let (items, _) = all_pages(
        &h,
        &t,
        "/users",
        &[("$orderby", "displayName"), ("$top", "400")],
        &[],
    )
    .await;
    assert_eq!(ids(&items), sorted("users", false, &|_| true));
    let (items, _) = all_pages(
        &h,
        &t,
        "/groups",
        &[("$orderby", "displayName desc"), ("$top", "33")],
        &[],
    )
    .await;
    assert_eq!(ids(&items), sorted("groups", true, &|_| true));

    // With $filter it is an advanced query.
    let query = [
        ("$orderby", "displayName"),
        ("$filter", "mailEnabled eq true"),
        ("$count", "true"),
    ];
    let (status, body) = get(&h, &t, "/groups", &query, &[]).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "Request_UnsupportedQuery")
    );
    let (items, _) = all_pages(
        &h,
        &t,
        "/groups",
        &query,
        &[("ConsistencyLevel", "eventual")],
    )
    .await;
    assert_eq!(
        ids(&items),
        sorted("groups", false, &|g| g["mailEnabled"] == true)
    );

    let (status, body) = get(&h, &t, "/users", &[("$orderby", "jobTitle")], &[]).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "Request_UnsupportedQuery")
    );
    let (status, body) = get(&h, &t, "/users", &[("$orderby", "shoeSize")], &[]).await;
    assert_eq!((status, error_code(&body)), (400, "BadRequest"));
}

#[tokio::test]
async fn expand_manager_on_users() {
    let h = medium();
    let t = token(&h, None).await;
    let state = h.state(h.tenant()).await;
    let users = live(&state, "users");
    let managers: HashMap<&str, &Value> = users
        .iter()
        .map(|u| (u["id"].as_str().unwrap(), &u["managerId"]))
        .collect();

    let (items, _) = all_pages(
        &h,
        &t,
        "/users",
        &[
            ("$select", "id,displayName"),
            ("$expand", "manager($select=id,displayName)"),
            ("$top", "999"),
        ],
        &[],
    )
    .await;
    assert_eq!(items.len(), users.len());
    for u in &items {
        let expected = managers[u["id"].as_str().unwrap()];
        match u.get("manager") {
            Some(m) => {
                assert_eq!(&m["id"], expected);
                assert_eq!(m["@odata.type"], "#microsoft.graph.user");
                let keys: BTreeSet<&str> =
                    m.as_object().unwrap().keys().map(String::as_str).collect();
                assert_eq!(keys, BTreeSet::from(["@odata.type", "id", "displayName"]));
            }
            None => assert!(expected.is_null()),
        }
    }
    assert!(items.iter().any(|u| u.get("manager").is_some()));

    let with_manager = users.iter().find(|u| u["managerId"].is_string()).unwrap();
    let id = with_manager["id"].as_str().unwrap();
    let (status, one) = get(
        &h,
        &t,
        &format!("/users/{id}"),
        &[("$expand", "manager")],
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one["manager"]["id"], with_manager["managerId"]);
    assert!(one["manager"]["userPrincipalName"].is_string());
    let (status, body) = get(&h, &t, "/users", &[("$expand", "hobbies")], &[]).await;
    assert_eq!((status, error_code(&body)), (400, "BadRequest"));
}
