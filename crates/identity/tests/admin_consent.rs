//! Admin consent for the emulator's multi-tenant app: URL, callback, then client
//! credentials in the consenting tenant.

mod common;

use std::time::Duration;

use common::{GRAPH_DEFAULT, Harness, REDIRECT};
use tenantlink_identity::{
    AdminConsentCallback, AdminConsentRequest, Error, ExposeSecret as _, MemoryPendingStore,
    check_admin_consent, granted_roles,
};

const MAX_AGE: Duration = Duration::from_secs(600);

#[tokio::test]
async fn admin_consent_lets_the_multi_tenant_app_into_tenant_1() {
    let h = Harness::start();
    let t1 = &h.emulator.tenants()[1];
    let app = h.emulator.multi_tenant_app();
    let credential = h.secret_credential(&t1.tenant_id, &app.client_id, &app.client_secret);
    let e = credential.token(&[GRAPH_DEFAULT]).await.unwrap_err();
    assert!(matches!(e, Error::AppNotFoundInTenant(_)), "{e:?}");

    let store = MemoryPendingStore::default();
    let request = AdminConsentRequest {
        tenant: "organizations".into(),
        client_id: app.client_id.clone(),
        redirect_uri: REDIRECT.into(),
    };
    let url = h
        .identity
        .admin_consent_url(&request, &store)
        .await
        .unwrap();
    assert!(url.contains("/organizations/adminconsent?"), "{url}");
    let mut hinted = reqwest::Url::parse(&url).unwrap();
    hinted
        .query_pairs_mut()
        .append_pair("login_hint", &t1.users[0]);
    let (status, location) = h.follow(hinted.as_str()).await;
    assert_eq!(status, 302);
    let location = location.unwrap();

    // A forged state is refused; the real callback is accepted once.
    let forged = location.replace("state=", "state=x");
    let e = h
        .identity
        .complete_admin_consent(&forged, &store, MAX_AGE)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::StateMismatch), "{e:?}");
    let granted = h
        .identity
        .complete_admin_consent(&location, &store, MAX_AGE)
        .await
        .unwrap();
    assert_eq!(granted.tenant_id, t1.tenant_id);
    let e = h
        .identity
        .complete_admin_consent(&location, &store, MAX_AGE)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::StateReplayed), "{e:?}");

    // Now the app gets tokens in tenant 1.
    let token = credential.token(&[GRAPH_DEFAULT]).await.unwrap();
    assert!(
        granted_roles(token.token.secret())
            .unwrap()
            .contains(&"User.Read.All".to_owned())
    );
}

#[tokio::test]
async fn admin_consent_callback_parsing() {
    let h = Harness::start();
    let app = h.emulator.multi_tenant_app();
    let start = h
        .identity
        .admin_consent_start(&AdminConsentRequest {
            tenant: "common".into(),
            client_id: app.client_id.clone(),
            redirect_uri: REDIRECT.into(),
        })
        .unwrap();
    let state = start.pending.state.expose_secret().to_owned();
    let ok = AdminConsentCallback::parse(&format!(
        "{REDIRECT}?tenant=t-1&state={state}&admin_consent=True"
    ));
    assert_eq!(
        check_admin_consent(&start.pending, &ok, MAX_AGE)
            .unwrap()
            .tenant_id,
        "t-1"
    );
    let declined = AdminConsentCallback::parse(&format!(
        "{REDIRECT}?error=access_denied&error_description=AADSTS65004%3A+declined&state={state}"
    ));
    let e = check_admin_consent(&start.pending, &declined, MAX_AGE).unwrap_err();
    assert!(matches!(e, Error::AuthorizationDenied { ref error, .. } if error == "access_denied"));
    let wrong = AdminConsentCallback::parse("tenant=t-1&state=nope&admin_consent=True");
    assert!(matches!(
        check_admin_consent(&start.pending, &wrong, MAX_AGE),
        Err(Error::StateMismatch)
    ));
    let mut old = start.pending.clone();
    old.created_at -= chrono::Duration::hours(1);
    assert!(matches!(
        check_admin_consent(&old, &ok, MAX_AGE),
        Err(Error::StateExpired)
    ));
}
