//! App-only tokens from the emulator: a client secret, a certificate, granted roles, and
//! credentials whose Debug output shows no secret.

mod common;

use std::sync::Arc;

use common::{GRAPH_DEFAULT, Harness, test_certificate};
use tenantlink_identity::{
    AppCredentialConfig, ClientAuth, ClientCertificate, TokenClaims, granted_roles, missing_roles,
};

#[tokio::test]
async fn secret_credential_gets_a_graph_token_with_roles() {
    let h = Harness::start();
    let t = &h.emulator.tenants()[0];
    let credential = common::as_dyn(h.connector());
    let token = credential.get_token(&[GRAPH_DEFAULT], None).await.unwrap();
    let claims = TokenClaims::decode_unverified(token.token.secret()).unwrap();
    assert_eq!(claims.tid.as_deref(), Some(t.tenant_id.as_str()));
    assert_eq!(claims.aud.as_deref(), Some("https://graph.microsoft.com"));
    let roles = granted_roles(token.token.secret()).unwrap();
    for role in &t.connector_app.roles {
        assert!(roles.contains(role), "{role} in {roles:?}");
    }
    assert!(token.expires_on > azure_core::time::OffsetDateTime::now_utc());
    // The token works at Graph.
    let res = h
        .http
        .get(format!("{}/users?$top=1", h.emulator.graph_url()))
        .bearer_auth(token.token.secret())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn certificate_credential_signs_a_client_assertion() {
    let h = Harness::start();
    let t = &h.emulator.tenants()[0];
    let (key_pem, cert_pem) = test_certificate(7);
    let certificate = ClientCertificate::from_pem(&key_pem, &cert_pem).unwrap();
    let registered = h
        .register_certificate(&t.connector_app.client_id, &cert_pem)
        .await;
    assert_eq!(registered, certificate.x5t_s256());
    let credential = h
        .identity
        .app_credential(AppCredentialConfig {
            tenant_id: t.tenant_id.clone(),
            client_id: t.connector_app.client_id.clone(),
            auth: ClientAuth::Certificate(Arc::new(certificate)),
        })
        .unwrap();
    let token = credential.token(&[GRAPH_DEFAULT]).await.unwrap();
    let claims = TokenClaims::decode_unverified(token.token.secret()).unwrap();
    assert_eq!(
        claims.appid.as_deref(),
        Some(t.connector_app.client_id.as_str())
    );
    assert!(!claims.roles.is_empty());
    // A second credential asks again: a fresh assertion (new jti) is accepted.
    h.identity.forget_tenant(&t.tenant_id);
    credential.token(&[GRAPH_DEFAULT]).await.unwrap();
    let debug = format!("{credential:?}");
    assert!(!debug.contains("PRIVATE"), "{debug}");
    assert!(!debug.contains(&key_pem_body(&key_pem)), "{debug}");
}

fn key_pem_body(pem: &tenantlink_identity::SecretString) -> String {
    use tenantlink_identity::ExposeSecret as _;
    pem.expose_secret().lines().nth(1).unwrap().to_owned()
}

#[tokio::test]
async fn missing_roles_of_the_limited_app() {
    let h = Harness::start();
    let t = &h.emulator.tenants()[0];
    let limited = h.secret_credential(
        &t.tenant_id,
        &t.limited_app.client_id,
        &t.limited_app.client_secret,
    );
    let token = limited.token(&[GRAPH_DEFAULT]).await.unwrap();
    let missing = missing_roles(
        token.token.secret(),
        &["User.Read.All", "Group.Read.All", "AuditLog.Read.All"],
    )
    .unwrap();
    assert_eq!(missing, vec!["Group.Read.All", "AuditLog.Read.All"]);
    let full = h.connector().token(&[GRAPH_DEFAULT]).await.unwrap();
    assert!(
        missing_roles(full.token.secret(), &["User.Read.All", "Group.Read.All"])
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn debug_output_shows_no_secret() {
    let h = Harness::start();
    let t = &h.emulator.tenants()[0];
    let credential = h.connector();
    let token = credential.token(&[GRAPH_DEFAULT]).await.unwrap();
    let secret = &t.connector_app.client_secret;
    for debug in [
        format!("{credential:?}"),
        format!("{:?}", h.identity),
        format!("{:?}", h.identity.cache()),
        format!("{token:?}"),
    ] {
        assert!(!debug.contains(secret.as_str()), "{debug}");
        assert!(!debug.contains(token.token.secret()), "{debug}");
    }
    assert!(format!("{credential:?}").contains(&t.connector_app.client_id));
}
