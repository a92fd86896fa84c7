//! The authorization code flow against the emulator: authorize URL, callback checks (state
//! mismatch, replay, expiry), PKCE, redemption errors, refresh-token rotation into the
//! caller's store, revocation and sign-out.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Harness, REDIRECT};
use serde_json::{Value, json};
use tenantlink_identity::{
    AccountId, AuthorizationCallback, AuthorizeRequest, ClientAuth, CodeFlow, CodeFlowConfig,
    Error, ExposeSecret as _, MemoryPendingStore, MemoryRefreshTokenStore, RefreshTokenStore,
    SecretString, TokenClaims,
};

const USER_READ: &str = "https://graph.microsoft.com/User.Read";

/// A refresh token store that records every token it is handed (the test's view of what a
/// server would encrypt and keep).
#[derive(Default)]
struct RecordingStore {
    inner: MemoryRefreshTokenStore,
    saved: Mutex<Vec<String>>,
}

impl std::fmt::Debug for RecordingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingStore")
            .field("inner", &self.inner)
            .field("saved", &self.saved.lock().unwrap().len())
            .finish()
    }
}

impl RecordingStore {
    fn saved(&self) -> Vec<String> {
        self.saved.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl RefreshTokenStore for RecordingStore {
    async fn load(&self, a: &AccountId, c: &str) -> Result<Option<SecretString>, Error> {
        self.inner.load(a, c).await
    }
    async fn save(&self, a: &AccountId, c: &str, rt: SecretString) -> Result<(), Error> {
        self.saved
            .lock()
            .unwrap()
            .push(rt.expose_secret().to_owned());
        self.inner.save(a, c, rt).await
    }
    async fn remove(&self, a: &AccountId, c: &str) -> Result<(), Error> {
        self.inner.remove(a, c).await
    }
    async fn remove_tenant(&self, t: &str) -> Result<(), Error> {
        self.inner.remove_tenant(t).await
    }
}

fn flow(h: &Harness, client_id: &str, secret: &str, store: Arc<RecordingStore>) -> CodeFlow {
    CodeFlow::new(
        &h.identity,
        CodeFlowConfig {
            client_id: client_id.to_owned(),
            auth: Some(ClientAuth::Secret(SecretString::from(secret))),
            redirect_uri: REDIRECT.to_owned(),
            max_pending_age: Duration::from_secs(600),
        },
        Arc::new(MemoryPendingStore::default()),
        store,
    )
    .unwrap()
}

fn request(tenant: &str, user: &str, scopes: &[&str]) -> AuthorizeRequest {
    AuthorizeRequest {
        tenant: tenant.to_owned(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        login_hint: Some(user.to_owned()),
        prompt: None,
    }
}

/// Follows an authorize URL (the emulator signs in the `login_hint` user): the callback URL.
async fn callback(h: &Harness, url: &str) -> String {
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let (status, location) = h.follow(url).await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    location
}

/// Replaces a query parameter's value in a URL.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == name {
                (k, value.to_owned())
            } else {
                (k, v)
            }
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.into()
}

#[tokio::test]
async fn sign_in_refresh_with_rotation_and_sign_out() {
    let h = Harness::start();
    let t = &h.emulator.tenants()[0];
    let app = &t.connector_app;
    let user = &t.users[0];
    let store = Arc::new(RecordingStore::default());
    let flow = flow(&h, &app.client_id, &app.client_secret, store.clone());

    let url = flow
        .authorize_url(&request(&t.tenant_id, user, &[USER_READ]))
        .await
        .unwrap();
    let location = callback(&h, &url).await;
    let signed = flow.complete(&location).await.unwrap();
    assert_eq!(signed.account.tenant_id, t.tenant_id);
    assert_eq!(signed.username.as_deref(), Some(user.as_str()));
    assert!(
        signed.scopes.iter().any(|s| s == USER_READ),
        "{:?}",
        signed.scopes
    );
    let claims = TokenClaims::decode_unverified(signed.access_token.token.secret()).unwrap();
    assert_eq!(
        claims.oid.as_deref(),
        Some(signed.account.object_id.as_str())
    );
    assert!(claims.scopes().contains(&"User.Read"));
    assert_eq!(store.saved().len(), 1, "the first refresh token is stored");

    // The same callback again is a replay.
    let e = flow.complete(&location).await.unwrap_err();
    assert!(matches!(e, Error::StateReplayed), "{e:?}");

    // A token for the account: the stored refresh token is redeemed and rotated.
    let account = signed.account.clone();
    let token = flow.access_token(&account, &[USER_READ]).await.unwrap();
    let saved = store.saved();
    assert_eq!(saved.len(), 2);
    assert_ne!(saved[0], saved[1]);
    // Cached now: no further rotation.
    let again = flow.access_token(&account, &[USER_READ]).await.unwrap();
    assert_eq!(token.token.secret(), again.token.secret());
    assert_eq!(store.saved().len(), 2);
    // The old refresh token is rejected by Entra ID (AADSTS700082).
    let res = h
        .http
        .post(h.url(&format!("/{}/oauth2/v2.0/token", t.tenant_id)))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.client_secret.as_str()),
            ("refresh_token", saved[0].as_str()),
            ("scope", USER_READ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error_codes"],
        json!([700_082])
    );

    // As a TokenCredential, for another consented scope: rotates again.
    let credential: Arc<dyn azure_core::credentials::TokenCredential> =
        Arc::new(flow.credential(account.clone()));
    let group = credential
        .get_token(&["https://graph.microsoft.com/Group.Read.All"], None)
        .await
        .unwrap();
    let claims = TokenClaims::decode_unverified(group.token.secret()).unwrap();
    assert!(claims.scopes().contains(&"Group.Read.All"));
    assert_eq!(store.saved().len(), 3);

    for debug in [
        format!("{flow:?}"),
        format!("{credential:?}"),
        format!("{store:?}"),
    ] {
        assert!(!debug.contains(&app.client_secret), "{debug}");
        for rt in store.saved() {
            assert!(!debug.contains(&rt), "{debug}");
        }
    }

    // Sign-out forgets the refresh token and the cached tokens.
    flow.sign_out(&account).await.unwrap();
    assert!(
        store
            .load(&account, &app.client_id)
            .await
            .unwrap()
            .is_none()
    );
    let e = flow.access_token(&account, &[USER_READ]).await.unwrap_err();
    assert!(matches!(e, Error::NotSignedIn), "{e:?}");

    // Sign in again; revoking the user's sessions makes the refresh token fail, and the
    // store forgets it.
    let url = flow
        .authorize_url(&request(&t.tenant_id, user, &[USER_READ]))
        .await
        .unwrap();
    let signed = flow.complete(&callback(&h, &url).await).await.unwrap();
    let res = h
        .http
        .post(h.url(&format!(
            "/_emulator/tenants/{}/revoke-sessions",
            t.tenant_id
        )))
        .json(&json!({ "user": user }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let e = flow
        .refresh_now(&signed.account, &[USER_READ])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RefreshTokenExpired(_)), "{e:?}");
    assert!(e.to_string().contains("sign the user in again"), "{e}");
    assert!(e.to_string().contains("AADSTS700082"), "{e}");
    for rt in store.saved() {
        assert!(!e.to_string().contains(&rt) && !format!("{e:?}").contains(&rt));
    }
    assert!(
        store
            .load(&signed.account, &app.client_id)
            .await
            .unwrap()
            .is_none()
    );

    // Sign-out of a whole tenant.
    let url = flow
        .authorize_url(&request(&t.tenant_id, user, &[USER_READ]))
        .await
        .unwrap();
    let signed = flow.complete(&callback(&h, &url).await).await.unwrap();
    flow.access_token(&signed.account, &[USER_READ])
        .await
        .unwrap();
    flow.sign_out_tenant(&t.tenant_id).await.unwrap();
    assert!(
        store
            .load(&signed.account, &app.client_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(h.identity.cache().is_empty());
}

#[tokio::test]
async fn callback_checks_pkce_and_code_errors() {
    let h = Harness::start();
    let t = &h.emulator.tenants()[0];
    let app = &t.connector_app;
    let user = &t.users[1];
    let flow = flow(&h, &app.client_id, &app.client_secret, Arc::default());

    // A state that matches no pending sign-in.
    let url = flow
        .authorize_url(&request(&t.tenant_id, user, &[USER_READ]))
        .await
        .unwrap();
    let location = callback(&h, &url).await;
    let forged = with_param(&location, "state", "forged-state");
    let e = flow.complete(&forged).await.unwrap_err();
    assert!(matches!(e, Error::StateMismatch), "{e:?}");
    let e = flow
        .complete(&format!("{REDIRECT}?code=abc"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::StateMismatch), "{e:?}");
    // The genuine callback still works once, then is a replay.
    flow.complete(&location).await.unwrap();
    let e = flow.complete(&location).await.unwrap_err();
    assert!(matches!(e, Error::StateReplayed), "{e:?}");

    // The caller keeps the pending request: wrong verifier, wrong state, expired.
    let start = flow
        .start(&request(&t.tenant_id, user, &[USER_READ]))
        .unwrap();
    let location = callback(&h, &start.url).await;
    let cb = AuthorizationCallback::parse(&location);
    let code = cb.code.as_ref().unwrap().expose_secret().to_owned();
    let verifier = start.pending.code_verifier.expose_secret().to_owned();
    let mut wrong = start.pending.clone();
    wrong.code_verifier = SecretString::from(format!("{verifier}x"));
    let e = flow.redeem(wrong, &cb).await.unwrap_err();
    assert!(matches!(e, Error::PkceMismatch(_)), "{e:?}");
    assert!(e.to_string().contains("AADSTS501481"), "{e}");
    let secrets = [code.as_str(), verifier.as_str(), app.client_secret.as_str()];
    let mut errors = vec![e];

    let e = flow
        .redeem(
            start.pending.clone(),
            &AuthorizationCallback::parse(&with_param(&location, "state", "other")),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::StateMismatch), "{e:?}");
    let mut old = start.pending.clone();
    old.created_at -= chrono::Duration::hours(1);
    let e = flow.redeem(old, &cb).await.unwrap_err();
    assert!(matches!(e, Error::StateExpired), "{e:?}");

    // Redeemed once; the second redemption is AADSTS54005; a made-up code AADSTS70008.
    flow.redeem(start.pending.clone(), &cb).await.unwrap();
    let e = flow.redeem(start.pending.clone(), &cb).await.unwrap_err();
    assert!(matches!(e, Error::InvalidAuthorizationCode(_)), "{e:?}");
    assert!(e.to_string().contains("AADSTS54005"), "{e}");
    errors.push(e);
    let bogus = AuthorizationCallback::parse(&with_param(&location, "code", "made-up-code"));
    let e = flow
        .redeem(start.pending.clone(), &bogus)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidAuthorizationCode(_)), "{e:?}");
    assert!(e.to_string().contains("AADSTS70008"), "{e}");
    assert!(e.to_string().contains("start the sign-in again"), "{e}");
    errors.push(e);

    // The authorize endpoint's own error in the callback.
    let start = flow
        .start(&request(&t.tenant_id, user, &[USER_READ]))
        .unwrap();
    let denied = AuthorizationCallback::parse(&format!(
        "error=access_denied&error_description=AADSTS65004&state={}",
        start.pending.state.expose_secret()
    ));
    let e = flow.redeem(start.pending, &denied).await.unwrap_err();
    assert!(matches!(e, Error::AuthorizationDenied { .. }), "{e:?}");

    for e in &errors {
        for secret in secrets {
            assert!(!e.to_string().contains(secret), "{e}");
            assert!(!format!("{e:?}").contains(secret), "{e:?}");
        }
    }
}

#[tokio::test]
async fn consent_required_for_an_ungranted_delegated_permission() {
    let h = Harness::start();
    let t = &h.emulator.tenants()[0];
    let limited = &t.limited_app;
    let flow = flow(
        &h,
        &limited.client_id,
        &limited.client_secret,
        Arc::default(),
    );
    let url = flow
        .authorize_url(&request(
            &t.tenant_id,
            &t.users[0],
            &["https://graph.microsoft.com/Group.Read.All"],
        ))
        .await
        .unwrap();
    let e = flow.complete(&callback(&h, &url).await).await.unwrap_err();
    assert!(matches!(e, Error::ConsentRequired(_)), "{e:?}");
    assert!(e.to_string().contains("AADSTS65001"), "{e}");
    assert!(e.to_string().contains("grant consent"), "{e}");
    assert!(!format!("{e:?}").contains(&limited.client_secret));
}

/// A refresh token store whose `save` can be held: the test's way to keep a refresh in flight.
#[derive(Default)]
struct GatedStore {
    inner: MemoryRefreshTokenStore,
    armed: std::sync::atomic::AtomicBool,
    entered: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

impl std::fmt::Debug for GatedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatedStore").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl RefreshTokenStore for GatedStore {
    async fn load(&self, a: &AccountId, c: &str) -> Result<Option<SecretString>, Error> {
        self.inner.load(a, c).await
    }
    async fn save(&self, a: &AccountId, c: &str, rt: SecretString) -> Result<(), Error> {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
        self.inner.save(a, c, rt).await
    }
    async fn remove(&self, a: &AccountId, c: &str) -> Result<(), Error> {
        self.inner.remove(a, c).await
    }
    async fn remove_tenant(&self, t: &str) -> Result<(), Error> {
        self.inner.remove_tenant(t).await
    }
}

async fn sign_out_waits_for_refresh_then_wins(tenant_wide: bool) {
    let h = Harness::start();
    let t = &h.emulator.tenants()[0];
    let app = &t.connector_app;
    let user = &t.users[0];
    let store = Arc::new(GatedStore::default());
    let flow = CodeFlow::new(
        &h.identity,
        CodeFlowConfig {
            client_id: app.client_id.clone(),
            auth: Some(ClientAuth::Secret(SecretString::from(
                app.client_secret.as_str(),
            ))),
            redirect_uri: REDIRECT.to_owned(),
            max_pending_age: Duration::from_secs(600),
        },
        Arc::new(MemoryPendingStore::default()),
        store.clone(),
    )
    .unwrap();
    let url = flow
        .authorize_url(&request(&t.tenant_id, user, &[USER_READ]))
        .await
        .unwrap();
    let location = callback(&h, &url).await;
    let account = flow.complete(&location).await.unwrap().account;
    let client_id = app.client_id.clone();

    // A refresh reaches the store's save with the rotated token and is held there.
    store.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let refresh = tokio::spawn({
        let (flow, account) = (flow.clone(), account.clone());
        async move { flow.refresh_now(&account, &[USER_READ]).await }
    });
    tokio::time::timeout(Duration::from_secs(10), store.entered.notified())
        .await
        .expect("the refresh reaches save");

    // The sign-out waits for the refresh in flight.
    let sign_out = tokio::spawn({
        let (flow, account, tenant) = (flow.clone(), account.clone(), t.tenant_id.clone());
        async move {
            if tenant_wide {
                flow.sign_out_tenant(&tenant).await
            } else {
                flow.sign_out(&account).await
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !sign_out.is_finished(),
        "sign-out must wait for the refresh"
    );
    // Meanwhile a second refresh waits too instead of running concurrently.
    let second = tokio::spawn({
        let (flow, account) = (flow.clone(), account.clone());
        async move { flow.refresh_now(&account, &[USER_READ]).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !second.is_finished(),
        "a second refresh must wait for the first"
    );

    store.release.notify_one();
    refresh.await.unwrap().unwrap();
    sign_out.await.unwrap().unwrap();
    // The sign-out won: no refresh token is stored, and refreshing finds the account signed out.
    assert!(
        store
            .inner
            .load(&account, &client_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(second.await.unwrap(), Err(Error::NotSignedIn)));
    assert!(matches!(
        flow.access_token(&account, &[USER_READ]).await,
        Err(Error::NotSignedIn)
    ));
}

#[tokio::test]
async fn sign_out_waits_for_an_in_flight_refresh_and_stays_signed_out() {
    sign_out_waits_for_refresh_then_wins(false).await;
}

#[tokio::test]
async fn tenant_sign_out_waits_for_an_in_flight_refresh_and_stays_signed_out() {
    sign_out_waits_for_refresh_then_wins(true).await;
}

/// A refresh token store where another process rotates the token right after this one
/// loads it: the test's view of two servers sharing one database.
#[derive(Default)]
struct RotatedElsewhereStore {
    inner: MemoryRefreshTokenStore,
    rotate_to: Mutex<Option<SecretString>>,
}

impl std::fmt::Debug for RotatedElsewhereStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedElsewhereStore")
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl RefreshTokenStore for RotatedElsewhereStore {
    async fn load(&self, a: &AccountId, c: &str) -> Result<Option<SecretString>, Error> {
        let loaded = self.inner.load(a, c).await?;
        let rotated = self.rotate_to.lock().unwrap().take();
        if let Some(rotated) = rotated {
            self.inner.save(a, c, rotated).await?;
        }
        Ok(loaded)
    }
    async fn save(&self, a: &AccountId, c: &str, rt: SecretString) -> Result<(), Error> {
        self.inner.save(a, c, rt).await
    }
    async fn remove(&self, a: &AccountId, c: &str) -> Result<(), Error> {
        self.inner.remove(a, c).await
    }
    async fn remove_tenant(&self, t: &str) -> Result<(), Error> {
        self.inner.remove_tenant(t).await
    }
}

#[tokio::test]
async fn a_dead_refresh_token_is_removed_only_if_still_stored() {
    let h = Harness::start();
    let t = &h.emulator.tenants()[0];
    let app = &t.connector_app;
    let user = &t.users[0];
    let store = Arc::new(RotatedElsewhereStore::default());
    let flow = CodeFlow::new(
        &h.identity,
        CodeFlowConfig {
            client_id: app.client_id.clone(),
            auth: Some(ClientAuth::Secret(SecretString::from(
                app.client_secret.as_str(),
            ))),
            redirect_uri: REDIRECT.to_owned(),
            max_pending_age: Duration::from_secs(600),
        },
        Arc::new(MemoryPendingStore::default()),
        store.clone(),
    )
    .unwrap();
    let url = flow
        .authorize_url(&request(&t.tenant_id, user, &[USER_READ]))
        .await
        .unwrap();
    let account = flow
        .complete(&callback(&h, &url).await)
        .await
        .unwrap()
        .account;
    let res = h
        .http
        .post(h.url(&format!(
            "/_emulator/tenants/{}/revoke-sessions",
            t.tenant_id
        )))
        .json(&json!({ "user": user }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Another process stores a new refresh token while this one sends the revoked one.
    *store.rotate_to.lock().unwrap() = Some(SecretString::from("rotated-elsewhere"));
    let e = flow.refresh_now(&account, &[USER_READ]).await.unwrap_err();
    assert!(matches!(e, Error::RefreshTokenExpired(_)), "{e:?}");
    let kept = store.inner.load(&account, &app.client_id).await.unwrap();
    assert_eq!(
        kept.as_ref().map(|s| s.expose_secret()),
        Some("rotated-elsewhere"),
        "the other process's token must be kept"
    );
}
