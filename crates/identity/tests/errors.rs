//! Entra ID's AADSTS errors from the emulator, mapped to variants with actionable messages
//! and no secret in Display or Debug.

mod common;

use common::{GRAPH_DEFAULT, Harness};
use tenantlink_identity::Error;

/// Asserts an error is the expected variant, says what to do, keeps the support ids, and
/// shows none of the secrets.
fn check(error: &Error, code: u64, advice: &str, secrets: &[&str]) {
    let display = error.to_string();
    let debug = format!("{error:?}");
    assert!(display.contains(advice), "{display}");
    assert!(display.contains(&format!("AADSTS{code}")), "{display}");
    let details = error.aad_details().expect("AADSTS details");
    assert_eq!(details.error_codes, vec![code]);
    assert!(details.trace_id.is_some() && details.correlation_id.is_some());
    assert!(display.contains(details.trace_id.as_deref().unwrap()));
    for secret in secrets {
        assert!(!display.contains(secret), "{display}");
        assert!(!debug.contains(secret), "{debug}");
    }
}

#[tokio::test]
async fn client_credential_errors_map_to_actionable_variants() {
    let h = Harness::start();
    let t0 = &h.emulator.tenants()[0];
    let t1 = &h.emulator.tenants()[1];
    let app = &t0.connector_app;
    let secrets = [
        app.client_secret.as_str(),
        app.expired_client_secret.as_str(),
        "wrong-secret-value",
    ];

    let e = h
        .secret_credential(&t0.tenant_id, &app.client_id, "wrong-secret-value")
        .token(&[GRAPH_DEFAULT])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidClientSecret(_)), "{e:?}");
    check(&e, 7_000_215, "create a new client secret", &secrets);

    let e = h
        .secret_credential(&t0.tenant_id, &app.client_id, &app.expired_client_secret)
        .token(&[GRAPH_DEFAULT])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ClientSecretExpired(_)), "{e:?}");
    check(&e, 7_000_222, "create a new client secret", &secrets);

    let e = h
        .secret_credential(
            &t0.tenant_id,
            "11111111-2222-4333-8444-555555555555",
            &app.client_secret,
        )
        .token(&[GRAPH_DEFAULT])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::AppNotFoundInTenant(_)), "{e:?}");
    check(&e, 700_016, "admin consent", &secrets);
    let e = h
        .secret_credential(&t1.tenant_id, &app.client_id, &app.client_secret)
        .token(&[GRAPH_DEFAULT])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::AppNotFoundInTenant(_)), "{e:?}");

    let e = h
        .secret_credential(
            "00000000-1111-4222-8333-444444444444",
            &app.client_id,
            &app.client_secret,
        )
        .token(&[GRAPH_DEFAULT])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::TenantNotFound(_)), "{e:?}");
    check(&e, 90002, "check the tenant id", &secrets);

    let connector = h.connector();
    let e = connector
        .token(&["https://example.com/.default"])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidScope(_)), "{e:?}");
    check(&e, 70011, "one resource per token", &secrets);
    let e = connector
        .token(&[GRAPH_DEFAULT, "https://management.azure.com/.default"])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidScope(_)), "{e:?}");
    check(&e, 700_022, "one resource per token", &secrets);

    // Through azure_core's TokenCredential the variant is still there.
    let dynamic =
        common::as_dyn(h.secret_credential(&t0.tenant_id, &app.client_id, "wrong-secret-value"));
    let e = dynamic.get_token(&[GRAPH_DEFAULT], None).await.unwrap_err();
    assert_eq!(*e.kind(), azure_core::error::ErrorKind::Credential);
    let inner = e.downcast_ref::<Error>().expect("our error inside");
    assert!(matches!(inner, Error::InvalidClientSecret(_)));
    assert!(!format!("{e:?}").contains("wrong-secret-value"));
}

#[tokio::test]
async fn unreachable_authority_is_a_network_error() {
    use tenantlink_identity::{
        AppCredentialConfig, ClientAuth, Cloud, IdentityClient, IdentityClientOptions, SecretString,
    };
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let identity = IdentityClient::new(
        Cloud::Custom {
            base_url: format!("https://127.0.0.1:{port}"),
        },
        &IdentityClientOptions::default(),
    )
    .unwrap();
    let credential = identity
        .app_credential(AppCredentialConfig {
            tenant_id: "contoso.onmicrosoft.com".into(),
            client_id: "00000000-0000-0000-0000-000000000000".into(),
            auth: ClientAuth::Secret(SecretString::from("network-test-secret")),
        })
        .unwrap();
    let e = credential.token(&[GRAPH_DEFAULT]).await.unwrap_err();
    assert!(matches!(e, Error::Network(_)), "{e:?}");
    assert!(e.to_string().contains("check the network"), "{e}");
    assert!(!format!("{e:?}").contains("network-test-secret"));
    assert!(!format!("{credential:?}").contains("network-test-secret"));
}
