//! Entra ID over real HTTPS: discovery, the token endpoint's grants and errors, the
//! authorize and admin consent flows, and the tokens' claims and signatures.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::Harness;
use serde_json::{Value, json};

const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";
const REDIRECT: &str = "http://localhost/callback";

/// POSTs a form to a tenant's token endpoint; the status and JSON body.
async fn token(h: &Harness, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
    h.token_endpoint(tenant, form).await
}

/// Asserts an error answer has Entra ID's documented shape and the given AADSTS code.
fn assert_aadsts(status: u16, body: &Value, expected_status: u16, error: &str, code: u64) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    for line in ["\r\nTrace ID: ", "\r\nCorrelation ID: ", "\r\nTimestamp: "] {
        assert!(description.contains(line), "{description}");
    }
    assert_eq!(body["trace_id"].as_str().unwrap().len(), 36);
    assert_eq!(body["correlation_id"].as_str().unwrap().len(), 36);
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(
        body["error_uri"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/error?code={code}"))
    );
}

/// Verifies a JWT's RS256 signature with the emulator's published JWKS and returns the
/// header and claims.
async fn verified(h: &Harness, tenant: &str, jwt: &str) -> (Value, Value) {
    let config: Value = h
        .client
        .get(h.url(&format!("/{tenant}/v2.0/.well-known/openid-configuration")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks: Value = h
        .client
        .get(config["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the token's kid is in the JWKS");
    let public = ring::signature::RsaPublicKeyComponents {
        n: B64.decode(key["n"].as_str().unwrap()).unwrap(),
        e: B64.decode(key["e"].as_str().unwrap()).unwrap(),
    };
    public
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &B64.decode(parts[2]).unwrap(),
        )
        .expect("the signature verifies with the JWKS key");
    assert_eq!(header["alg"], "RS256");
    (header, claims)
}

/// Redeems a code as a public client (no secret) at the usual redirect URI.
async fn redeem_as(
    h: &Harness,
    tenant: &str,
    client_id: &str,
    code: &str,
    verifier: &str,
) -> (u16, Value) {
    token(
        h,
        tenant,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// A client-credentials form.
fn cc<'a>(id: &'a str, secret: &'a str, scope: &'a str) -> [(&'static str, &'a str); 4] {
    [
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
        ("scope", scope),
    ]
}

/// GETs a URL without following redirects; status, Location and body.
async fn get(h: &Harness, url: &str) -> (u16, Option<String>, String) {
    let res = h.client.get(url).send().await.unwrap();
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, location, res.text().await.unwrap())
}

/// The query parameters of a redirect's Location.
fn location_params(location: &str) -> Vec<(String, String)> {
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn get_param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn authorize_url(h: &Harness, tenant: &str, params: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    h.url(&format!("/{tenant}/oauth2/v2.0/authorize?{}", s.finish()))
}

fn pkce() -> (String, String) {
    let verifier = tenantlink_emulator::rng::random_token(48);
    let challenge = B64.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ));
    (verifier, challenge)
}

/// Runs authorize with a login_hint and returns the code.
async fn code_for(
    h: &Harness,
    tenant: &str,
    client_id: &str,
    user: &str,
    scope: &str,
    challenge: &str,
) -> String {
    let url = authorize_url(
        h,
        tenant,
        &[
            ("client_id", client_id),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("state", "st-123"),
            ("nonce", "n-456"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("login_hint", user),
        ],
    );
    let (status, location, body) = get(h, &url).await;
    assert_eq!(status, 302, "{body}");
    let location = location.unwrap();
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    let params = location_params(&location);
    assert_eq!(get_param(&params, "state"), Some("st-123"));
    assert!(get_param(&params, "session_state").is_some());
    get_param(&params, "code").unwrap().to_owned()
}

#[tokio::test]
async fn discovery_metadata_keys_and_instance_discovery() {
    let h = Harness::start();
    let t = &h.emulator.tenants()[0];
    let base = h.emulator.https_url();
    for segment in [t.tenant_id.as_str(), t.domain.as_str()] {
        let (status, _, body) = get(
            &h,
            &h.url(&format!("/{segment}/v2.0/.well-known/openid-configuration")),
        )
        .await;
        assert_eq!(status, 200);
        let config: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(config["issuer"], format!("{base}/{}/v2.0", t.tenant_id));
        assert_eq!(
            config["token_endpoint"],
            format!("{base}/{segment}/oauth2/v2.0/token")
        );
        assert_eq!(
            config["authorization_endpoint"],
            format!("{base}/{segment}/oauth2/v2.0/authorize")
        );
        assert_eq!(
            config["jwks_uri"],
            format!("{base}/{segment}/discovery/v2.0/keys")
        );
        assert_eq!(
            config["end_session_endpoint"],
            format!("{base}/{segment}/oauth2/v2.0/logout")
        );
        assert!(
            config["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("private_key_jwt"))
        );
    }
    for segment in ["common", "organizations"] {
        let config: Value = h
            .client
            .get(h.url(&format!("/{segment}/v2.0/.well-known/openid-configuration")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(config["issuer"], format!("{base}/{{tenantid}}/v2.0"));
        assert_eq!(
            config["token_endpoint"],
            format!("{base}/{segment}/oauth2/v2.0/token")
        );
    }

    let jwks: Value = h
        .client
        .get(h.url(&format!("/{}/discovery/v2.0/keys", t.tenant_id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));

    let host = base.trim_start_matches("https://");
    let authorization_endpoint = format!("{base}/{}/oauth2/v2.0/authorize", t.tenant_id);
    let discovery: Value = h
        .client
        .get(h.url("/common/discovery/instance"))
        .query(&[
            ("api-version", "1.1"),
            ("authorization_endpoint", authorization_endpoint.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["tenant_discovery_endpoint"],
        format!(
            "{base}/{}/v2.0/.well-known/openid-configuration",
            t.tenant_id
        )
    );
    assert_eq!(discovery["metadata"][0]["preferred_network"], host);
    assert_eq!(discovery["metadata"][0]["preferred_cache"], host);
    assert_eq!(discovery["metadata"][0]["aliases"], json!([host]));

    // Unknown tenant: AADSTS90002, with the caller's client-request-id as correlation id.
    let res = h
        .client
        .get(h.url("/nosuch.onmicrosoft.com/v2.0/.well-known/openid-configuration"))
        .header("client-request-id", "0c5a4b2e-7d0e-4f5a-9c1b-2b6f3f1d9e11")
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_aadsts(status, &body, 400, "invalid_tenant", 90002);
    assert_eq!(
        body["correlation_id"],
        "0c5a4b2e-7d0e-4f5a-9c1b-2b6f3f1d9e11"
    );
    let (status, body) = token(
        &h,
        "nosuch.onmicrosoft.com",
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_aadsts(status, &body, 400, "invalid_request", 90002);

    // error_uri leads to a page about the code.
    let (status, _, page) = get(&h, body["error_uri"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("AADSTS90002") && page.contains("tenant was not found"),
        "{page}"
    );

    // Client credentials need a tenant, not `common`.
    let app = &t.connector_app;
    let (status, body) = token(
        &h,
        "common",
        &cc(&app.client_id, &app.client_secret, GRAPH_DEFAULT),
    )
    .await;
    assert_aadsts(status, &body, 400, "invalid_request", 900_023);

    // Sign-out returns to a registered URI with the state.
    let (status, location, _) = get(
        &h,
        &h.url(&format!(
            "/common/oauth2/v2.0/logout?post_logout_redirect_uri={}&state=bye",
            form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
        )),
    )
    .await;
    assert_eq!(status, 302);
    assert_eq!(
        location.as_deref(),
        Some(format!("{REDIRECT}?state=bye").as_str())
    );
}

#[tokio::test]
async fn client_credentials_with_secret_in_body_and_basic() {
    let h = Harness::start();
    let t = &h.emulator.tenants()[0];
    let app = &t.connector_app;
    let (status, body) = token(
        &h,
        &t.tenant_id,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
            ("scope", GRAPH_DEFAULT),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 3000);
    assert_eq!(body["ext_expires_in"], body["expires_in"]);
    assert!(body.get("refresh_token").is_none());
    let access = body["access_token"].as_str().unwrap();
    let (_, claims) = verified(&h, &t.tenant_id, access).await;
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
    assert_eq!(claims["tid"], t.tenant_id);
    assert_eq!(claims["appid"], app.client_id);
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(
        claims["iss"],
        format!("{}/{}/v2.0", h.emulator.https_url(), t.tenant_id)
    );
    let mut roles: Vec<String> = serde_json::from_value(claims["roles"].clone()).unwrap();
    roles.sort();
    let mut granted = app.roles.clone();
    granted.sort();
    assert_eq!(roles, granted);

    // Graph accepts it (its own bearer validation) and rejects a tampered one.
    let graph = |token: String| {
        h.client
            .get(format!("{}/users", h.emulator.graph_url()))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(graph(access.to_owned()).await.unwrap().status(), 200);
    assert_eq!(graph(format!("{access}x")).await.unwrap().status(), 401);

    // client_secret_basic, URL-encoded id and secret; the limited app gets its one role.
    let limited = &t.limited_app;
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        encode(&limited.client_id),
        encode(&limited.client_secret)
    ));
    let res = h
        .client
        .post(h.url(&format!("/{}/oauth2/v2.0/token", t.domain)))
        .header("Authorization", format!("Basic {basic}"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "00000003-0000-0000-c000-000000000000/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let (_, claims) = verified(&h, &t.tenant_id, body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["roles"], json!(["User.Read.All"]));
    assert_eq!(claims["aud"], "https://graph.microsoft.com");

    // ARM (both forms) and Storage: the resource's audience, no Graph roles.
    for (scope, aud) in [
        (
            "https://management.azure.com/.default",
            "https://management.azure.com",
        ),
        (
            "https://management.core.windows.net//.default",
            "https://management.azure.com",
        ),
        (
            "https://storage.azure.com/.default",
            "https://storage.azure.com",
        ),
    ] {
        let (status, body) = token(
            &h,
            &t.tenant_id,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &app.client_id),
                ("client_secret", &app.client_secret),
                ("scope", scope),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (_, claims) = verified(&h, &t.tenant_id, body["access_token"].as_str().unwrap()).await;
        assert_eq!(claims["aud"], aud);
        assert_eq!(claims["roles"], json!([]));
    }

    // The token lifetime follows the fault settings.
    let res = h
        .client
        .patch(h.url("/_emulator/faults"))
        .json(&json!({"token_lifetime_secs": 600}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let (_, body) = token(
        &h,
        &t.tenant_id,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
            ("scope", GRAPH_DEFAULT),
        ],
    )
    .await;
    assert_eq!(body["expires_in"], 600);
    let (_, claims) = verified(&h, &t.tenant_id, body["access_token"].as_str().unwrap()).await;
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
}

#[tokio::test]
async fn token_endpoint_errors_have_documented_codes() {
    let h = Harness::start();
    let t0 = &h.emulator.tenants()[0];
    let t1 = &h.emulator.tenants()[1];
    let app = &t0.connector_app;
    let id = app.client_id.as_str();
    let secret = app.client_secret.as_str();

    let (s, b) = token(&h, &t0.tenant_id, &cc(id, "wrong-secret", GRAPH_DEFAULT)).await;
    assert_aadsts(s, &b, 401, "invalid_client", 7_000_215);
    let expired = app.expired_client_secret.as_str();
    let (s, b) = token(&h, &t0.tenant_id, &cc(id, expired, GRAPH_DEFAULT)).await;
    assert_aadsts(s, &b, 401, "invalid_client", 7_000_222);
    let (s, b) = token(
        &h,
        &t0.tenant_id,
        &cc(
            "11111111-2222-4333-8444-555555555555",
            secret,
            GRAPH_DEFAULT,
        ),
    )
    .await;
    assert_aadsts(s, &b, 400, "unauthorized_client", 700_016);
    // The app exists, but has no service principal in the other tenant.
    let (s, b) = token(&h, &t1.tenant_id, &cc(id, secret, GRAPH_DEFAULT)).await;
    assert_aadsts(s, &b, 400, "unauthorized_client", 700_016);
    let (s, b) = token(
        &h,
        &t0.tenant_id,
        &cc(id, secret, "https://example.com/.default"),
    )
    .await;
    assert_aadsts(s, &b, 400, "invalid_scope", 70011);
    let (s, b) = token(
        &h,
        &t0.tenant_id,
        &cc(
            id,
            secret,
            "https://graph.microsoft.com/.default https://management.azure.com/.default",
        ),
    )
    .await;
    assert_aadsts(s, &b, 400, "invalid_scope", 700_022);
    let (s, b) = token(
        &h,
        &t0.tenant_id,
        &cc(id, secret, "https://graph.microsoft.com/User.Read.All"),
    )
    .await;
    assert_aadsts(s, &b, 400, "invalid_scope", 1_002_012);
    let (s, b) = token(
        &h,
        &t0.tenant_id,
        &[("grant_type", "password"), ("client_id", id)],
    )
    .await;
    assert_aadsts(s, &b, 400, "unsupported_grant_type", 70003);
    let (s, b) = token(&h, &t0.tenant_id, &[("client_id", id)]).await;
    assert_aadsts(s, &b, 400, "invalid_request", 900_144);
    assert!(
        b["error_description"]
            .as_str()
            .unwrap()
            .contains("'grant_type'")
    );
    let (s, b) = token(
        &h,
        &t0.tenant_id,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ],
    )
    .await;
    assert_aadsts(s, &b, 400, "invalid_request", 900_144);
    assert!(b["error_description"].as_str().unwrap().contains("'scope'"));
    let (s, b) = token(
        &h,
        &t0.tenant_id,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("scope", GRAPH_DEFAULT),
        ],
    )
    .await;
    assert_aadsts(s, &b, 401, "invalid_client", 7_000_218);
    let (s, b) = token(
        &h,
        &t0.tenant_id,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", id),
            ("code", "nope"),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_aadsts(s, &b, 400, "invalid_grant", 70008);
    let (s, b) = token(
        &h,
        &t0.tenant_id,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", id),
            ("refresh_token", "nope"),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(b["error"], "invalid_grant");
}

#[tokio::test]
async fn code_flow_with_pkce_refresh_rotation_and_revocation() {
    let h = Harness::start();
    let t = &h.emulator.tenants()[0];
    let app = &t.connector_app;
    let user = &t.users[0];
    let scope = "https://graph.microsoft.com/User.Read offline_access openid profile";
    let (verifier, challenge) = pkce();
    let code = code_for(&h, &t.tenant_id, &app.client_id, user, scope, &challenge).await;
    let redeem = |code: String, verifier: String| {
        let h = &h;
        let app_id = app.client_id.clone();
        let secret = app.client_secret.clone();
        let tenant = t.tenant_id.clone();
        async move {
            token(
                h,
                &tenant,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", &app_id),
                    ("client_secret", &secret),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", &verifier),
                    ("scope", scope),
                ],
            )
            .await
        }
    };
    let (status, body) = redeem(code.clone(), verifier.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    assert!(body["ext_expires_in"].as_u64().unwrap() > 0);
    let granted: Vec<&str> = body["scope"].as_str().unwrap().split(' ').collect();
    for s in [
        "https://graph.microsoft.com/User.Read",
        "openid",
        "profile",
        "offline_access",
    ] {
        assert!(granted.contains(&s), "{granted:?}");
    }
    let state = h.state(&t.tenant_id).await;
    let expected = state["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["userPrincipalName"] == user.as_str())
        .unwrap()
        .clone();
    let oid = expected["id"].as_str().unwrap();

    let (_, id_claims) = verified(&h, &t.tenant_id, body["id_token"].as_str().unwrap()).await;
    assert_eq!(id_claims["aud"], app.client_id);
    assert_eq!(
        id_claims["iss"],
        format!("{}/{}/v2.0", h.emulator.https_url(), t.tenant_id)
    );
    assert_eq!(id_claims["tid"], t.tenant_id);
    assert_eq!(id_claims["oid"], oid);
    assert_eq!(id_claims["preferred_username"], user.as_str());
    assert_eq!(id_claims["name"], expected["displayName"]);
    assert_eq!(id_claims["nonce"], "n-456");
    assert_eq!(id_claims["ver"], "2.0");
    assert!(id_claims["sub"].as_str().is_some_and(|s| !s.is_empty()));
    let client_info: Value =
        serde_json::from_slice(&B64.decode(body["client_info"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(client_info, json!({"uid": oid, "utid": t.tenant_id}));

    let (_, at) = verified(&h, &t.tenant_id, body["access_token"].as_str().unwrap()).await;
    assert_eq!(at["aud"], "https://graph.microsoft.com");
    assert_eq!(at["idtyp"], "user");
    assert_eq!(at["oid"], oid);
    let scp: Vec<&str> = at["scp"].as_str().unwrap().split(' ').collect();
    assert!(scp.contains(&"User.Read"), "{scp:?}");
    assert!(!scp.contains(&"offline_access"));
    // As Entra ID does, the token carries every permission consented for the resource, not
    // only those asked for.
    assert!(scp.contains(&"Group.Read.All"), "{scp:?}");
    // Graph accepts the delegated token.
    let res = h
        .client
        .get(format!("{}/users/{oid}", h.emulator.graph_url()))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap()["userPrincipalName"],
        user.as_str()
    );

    // The code is single use.
    let (s, b) = redeem(code, verifier).await;
    assert_aadsts(s, &b, 400, "invalid_grant", 54005);

    // Refresh, refresh again; every use rotates and the old one stops working.
    let refresh = |rt: String, scope: &'static str| {
        let h = &h;
        let app_id = app.client_id.clone();
        let tenant = t.tenant_id.clone();
        async move {
            token(
                h,
                &tenant,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &app_id),
                    ("refresh_token", &rt),
                    ("scope", scope),
                ],
            )
            .await
        }
    };
    let rt1 = body["refresh_token"].as_str().unwrap().to_owned();
    let (s, b) = refresh(rt1.clone(), scope).await;
    assert_eq!(s, 200, "{b}");
    let rt2 = b["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    let (_, at2) = verified(&h, &t.tenant_id, b["access_token"].as_str().unwrap()).await;
    assert_eq!(at2["oid"], oid);
    // Another consented Graph scope through the refresh token.
    let (s, b) = refresh(
        rt2.clone(),
        "https://graph.microsoft.com/Group.Read.All offline_access",
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let granted = b["scope"].as_str().unwrap();
    assert!(
        granted.contains("https://graph.microsoft.com/Group.Read.All"),
        "{granted}"
    );
    // The ID token keeps coming: the grant had `openid`.
    assert!(b["id_token"].is_string());
    let (_, at3) = verified(&h, &t.tenant_id, b["access_token"].as_str().unwrap()).await;
    let scp: Vec<&str> = at3["scp"].as_str().unwrap().split(' ').collect();
    assert!(scp.contains(&"Group.Read.All"), "{scp:?}");
    let rt3 = b["refresh_token"].as_str().unwrap().to_owned();
    let (s, b) = refresh(rt1, scope).await;
    assert_aadsts(s, &b, 400, "invalid_grant", 700_082);
    let (s, b) = refresh(rt2, scope).await;
    assert_aadsts(s, &b, 400, "invalid_grant", 700_082);

    // Revoking the user's sessions ends rt3.
    let res = h
        .client
        .post(h.url(&format!(
            "/_emulator/tenants/{}/revoke-sessions",
            t.tenant_id
        )))
        .json(&json!({"user": user}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["revoked"], 1);
    let (s, b) = refresh(rt3, scope).await;
    assert_aadsts(s, &b, 400, "invalid_grant", 700_082);
}

#[tokio::test]
async fn code_redemption_errors() {
    let h = Harness::start();
    let t = &h.emulator.tenants()[0];
    let app = &t.connector_app;
    let user = &t.users[1];
    let scope = "User.Read openid offline_access";
    let redeem = |code: String, verifier: String, redirect: &'static str| {
        let h = &h;
        let app_id = app.client_id.clone();
        let tenant = t.tenant_id.clone();
        async move {
            token(
                h,
                &tenant,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", &app_id),
                    ("code", &code),
                    ("redirect_uri", redirect),
                    ("code_verifier", &verifier),
                ],
            )
            .await
        }
    };
    // PKCE mismatch.
    let (verifier, challenge) = pkce();
    let code = code_for(&h, &t.tenant_id, &app.client_id, user, scope, &challenge).await;
    let (s, b) = redeem(code.clone(), format!("{verifier}x"), REDIRECT).await;
    assert_aadsts(s, &b, 400, "invalid_grant", 501_481);
    // Another redirect URI than the authorize request's.
    let (s, b) = redeem(code.clone(), verifier.clone(), "https://localhost/callback").await;
    assert_aadsts(s, &b, 400, "invalid_grant", 500_112);
    // A public client (no secret) with the right verifier succeeds; bare scopes mean Graph.
    let (s, b) = redeem(code, verifier, REDIRECT).await;
    assert_eq!(s, 200, "{b}");
    assert!(
        b["scope"]
            .as_str()
            .unwrap()
            .contains("https://graph.microsoft.com/User.Read")
    );

    // plain PKCE when the authorize request said so.
    let plain = "p".repeat(50);
    let url = authorize_url(
        &h,
        &t.domain,
        &[
            ("client_id", &app.client_id),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("code_challenge", &plain),
            ("code_challenge_method", "plain"),
            ("login_hint", user),
        ],
    );
    let (status, location, _) = get(&h, &url).await;
    assert_eq!(status, 302);
    let code = get_param(&location_params(&location.unwrap()), "code")
        .unwrap()
        .to_owned();
    let (s, b) = redeem(code, plain, REDIRECT).await;
    assert_eq!(s, 200, "{b}");

    // The limited app's users consented to User.Read and openid only: that is all it gets.
    let limited = &t.limited_app;
    let (verifier, challenge) = pkce();
    let code = code_for(
        &h,
        &t.tenant_id,
        &limited.client_id,
        user,
        "User.Read openid",
        &challenge,
    )
    .await;
    let (s, b) = redeem_as(&h, &t.tenant_id, &limited.client_id, &code, &verifier).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["scope"], "https://graph.microsoft.com/User.Read openid");
    assert!(
        b.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    let (_, at) = verified(&h, &t.tenant_id, b["access_token"].as_str().unwrap()).await;
    assert_eq!(at["scp"], "User.Read openid");

    // Consent: the limited app was never granted Group.Read.All.
    let (verifier, challenge) = pkce();
    let code = code_for(
        &h,
        &t.tenant_id,
        &limited.client_id,
        user,
        "Group.Read.All openid",
        &challenge,
    )
    .await;
    let (s, b) = token(
        &h,
        &t.tenant_id,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &limited.client_id),
            ("client_secret", &limited.client_secret),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_aadsts(s, &b, 400, "invalid_grant", 65001);
}

#[tokio::test]
async fn authorize_page_errors_and_redirected_errors() {
    let h = Harness::start();
    let t = &h.emulator.tenants()[0];
    let app = &t.connector_app;

    // The sign-in page lists the tenant's users, each continuing the flow.
    let base = [
        ("client_id", app.client_id.as_str()),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid User.Read"),
        ("state", "s1"),
    ];
    let (status, _, page) = get(&h, &authorize_url(&h, &t.tenant_id, &base)).await;
    assert_eq!(status, 200);
    for upn in &t.users {
        assert!(
            page.contains(&format!("data-upn=\"{upn}\"")),
            "{upn} not listed"
        );
    }
    let links = page.matches("class=\"user\"").count();
    assert!((5..=20).contains(&links), "{links} users listed");
    let href = page
        .split("href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    let (status, location, _) = get(&h, &h.url(&href)).await;
    assert_eq!(status, 302);
    let params = location_params(&location.unwrap());
    assert!(get_param(&params, "code").is_some());
    assert_eq!(get_param(&params, "state"), Some("s1"));

    // Unregistered redirect URI: an error page, never a redirect.
    let mut bad = base.to_vec();
    bad[2] = ("redirect_uri", "https://evil.example/cb");
    let (status, location, page) = get(&h, &authorize_url(&h, &t.tenant_id, &bad)).await;
    assert_eq!(status, 400);
    assert!(location.is_none());
    assert!(page.contains("AADSTS50011"), "{page}");
    // Unknown app: a page too.
    let mut bad = base.to_vec();
    bad[0] = ("client_id", "11111111-2222-4333-8444-555555555555");
    let (status, location, page) = get(&h, &authorize_url(&h, &t.tenant_id, &bad)).await;
    assert_eq!((status, location.is_none()), (400, true));
    assert!(page.contains("AADSTS700016"), "{page}");

    // Invalid scope: redirected with error, description and state.
    let mut bad = base.to_vec();
    bad[3] = ("scope", "https://example.com/Read");
    let (status, location, _) = get(&h, &authorize_url(&h, &t.tenant_id, &bad)).await;
    assert_eq!(status, 302);
    let params = location_params(&location.unwrap());
    assert_eq!(get_param(&params, "error"), Some("invalid_scope"));
    assert!(
        get_param(&params, "error_description")
            .unwrap()
            .starts_with("AADSTS70011: ")
    );
    assert_eq!(get_param(&params, "state"), Some("s1"));

    // A disabled user cannot sign in.
    let state = h.state(&t.tenant_id).await;
    let victim = state["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["accountEnabled"] == true && u["userPrincipalName"] != t.users[0].as_str())
        .unwrap();
    let id = victim["id"].as_str().unwrap();
    let res = h
        .client
        .patch(h.url(&format!("/_emulator/tenants/{}/users/{id}", t.tenant_id)))
        .json(&json!({"accountEnabled": false}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let upn = victim["userPrincipalName"].as_str().unwrap();
    let mut hinted = base.to_vec();
    hinted.push(("login_hint", upn));
    let (status, location, page) = get(&h, &authorize_url(&h, &t.tenant_id, &hinted)).await;
    assert_eq!((status, location.is_none()), (400, true));
    assert!(page.contains("AADSTS50057"), "{page}");

    // form_post answers an auto-submitting form.
    let mut form_post = base.to_vec();
    form_post.push(("login_hint", &t.users[0]));
    form_post.push(("response_mode", "form_post"));
    let (status, _, page) = get(&h, &authorize_url(&h, "common", &form_post)).await;
    assert_eq!(status, 200);
    assert!(page.contains("name=\"code\""), "{page}");
    assert!(page.contains(&format!("action=\"{REDIRECT}\"")));
}

#[tokio::test]
async fn admin_consent_lets_a_multi_tenant_app_into_another_tenant() {
    let h = Harness::start();
    let t1 = &h.emulator.tenants()[1];
    let app = h.emulator.multi_tenant_app();
    let before = token(
        &h,
        &t1.tenant_id,
        &cc(&app.client_id, &app.client_secret, GRAPH_DEFAULT),
    )
    .await;
    assert_aadsts(before.0, &before.1, 400, "unauthorized_client", 700_016);

    let consent = |extra: &[(&str, &str)]| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("client_id", &app.client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("state", "c-1");
        for (k, v) in extra {
            s.append_pair(k, v);
        }
        h.url(&format!("/organizations/adminconsent?{}", s.finish()))
    };
    // The picker page: admins to accept as, and a cancel link.
    let (status, _, page) = get(&h, &consent(&[])).await;
    assert_eq!(status, 200);
    assert!(page.contains("class=\"accept\""));
    assert!(page.contains(&t1.domain));
    let cancel = page
        .split("id=\"cancel\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    let (status, location, _) = get(&h, &h.url(&cancel)).await;
    assert_eq!(status, 302);
    let params = location_params(&location.unwrap());
    assert_eq!(get_param(&params, "error"), Some("access_denied"));
    assert!(
        get_param(&params, "error_description")
            .unwrap()
            .starts_with("AADSTS")
    );
    assert_eq!(get_param(&params, "state"), Some("c-1"));

    // Unknown app and unregistered redirect URI: pages.
    let (status, _, page) = get(
        &h,
        &h.url("/common/adminconsent?client_id=11111111-2222-4333-8444-555555555555&redirect_uri=http%3A%2F%2Flocalhost%2Fcallback"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("AADSTS700016"));
    let (status, _, page) = get(
        &h,
        &h.url(&format!(
            "/common/adminconsent?client_id={}&redirect_uri=https%3A%2F%2Fevil.example%2F",
            app.client_id
        )),
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("AADSTS50011"));

    // A user who is not an administrator cannot consent for the tenant.
    let state = h.state(&t1.tenant_id).await;
    let plain_user = state["users"]
        .as_array()
        .unwrap()
        .iter()
        .skip(10)
        .find(|u| u["accountEnabled"] == true && u["userType"] == "Member")
        .unwrap()["userPrincipalName"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, location, page) = get(&h, &consent(&[("login_hint", &plain_user)])).await;
    assert_eq!((status, location), (400, None));
    assert!(page.contains("AADSTS90094"), "{page}");

    // An admin of tenant 1 (picked by login_hint's domain) accepts.
    let admin = &t1.users[0];
    let (status, location, body) = get(&h, &consent(&[("login_hint", admin)])).await;
    assert_eq!(status, 302, "{body}");
    let params = location_params(&location.unwrap());
    assert_eq!(get_param(&params, "tenant"), Some(t1.tenant_id.as_str()));
    assert_eq!(get_param(&params, "state"), Some("c-1"));
    assert_eq!(get_param(&params, "admin_consent"), Some("True"));

    let (status, body) = token(
        &h,
        &t1.tenant_id,
        &cc(&app.client_id, &app.client_secret, GRAPH_DEFAULT),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = verified(&h, &t1.tenant_id, body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["tid"], t1.tenant_id);
    assert!(
        claims["roles"]
            .as_array()
            .unwrap()
            .contains(&json!("User.Read.All"))
    );
}
