//! azure_identity's `ClientSecretCredential` against the emulator, through this crate's
//! transport (one rustls stack), used as the same `Arc<dyn TokenCredential>` ours are.

mod common;

use std::sync::Arc;

use azure_core::credentials::{Secret, TokenCredential};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use common::{GRAPH_DEFAULT, Harness};
use tenantlink_identity::TokenClaims;

#[tokio::test]
async fn azure_identity_credential_plugs_in() {
    let h = Harness::start();
    let t = &h.emulator.tenants()[0];
    let mut options = ClientSecretCredentialOptions::default();
    options.client_options.transport = Some(h.identity.azure_core_transport().into_transport());
    options.client_options.cloud = Some(Arc::new(h.identity.cloud().to_azure_core()));
    let theirs: Arc<dyn TokenCredential> = ClientSecretCredential::new(
        &t.tenant_id,
        t.connector_app.client_id.clone(),
        Secret::new(t.connector_app.client_secret.clone()),
        Some(options),
    )
    .unwrap();
    let ours: Arc<dyn TokenCredential> = Arc::new(h.connector());
    for credential in [theirs, ours] {
        let token = credential.get_token(&[GRAPH_DEFAULT], None).await.unwrap();
        let claims = TokenClaims::decode_unverified(token.token.secret()).unwrap();
        assert_eq!(claims.tid.as_deref(), Some(t.tenant_id.as_str()));
        assert!(claims.roles.contains(&"User.Read.All".to_owned()));
    }
}
