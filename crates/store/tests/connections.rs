//! Connections over their life (disconnect keeps the synced data, purge deletes it,
//! reconnect) and pending OAuth requests (single use, expiry, scoping), on both backends.

use chrono::{Duration, NaiveDateTime};
use tenantlink_store::testing::TestDb;
use tenantlink_store::*;

fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

fn new_connection(org: &str, tenant: &str, secret: &str) -> NewConnection {
    NewConnection {
        organization_id: org.into(),
        tenant_id: tenant.into(),
        client_id: "app".into(),
        auth_kind: AuthKind::ClientSecret,
        secret: Some((secret.as_bytes().to_vec(), "key-a".into())),
        secret_expires_at: None,
        granted_permissions: vec!["User.Read.All".into()],
        missing_permissions: vec![],
    }
}

fn state(org: &str, connection: &str, hash: &str, expires_at: NaiveDateTime) -> OAuthState {
    OAuthState {
        state_hash: hash.into(),
        organization_id: org.into(),
        connection_id: connection.into(),
        kind: "sign_in".into(),
        verifier_ciphertext: b"verifier-ciphertext".to_vec(),
        key_id: "key-a".into(),
        tenant: "tenant".into(),
        client_id: "platform-app".into(),
        redirect_uri: "https://platform.example/v1/oauth/microsoft/callback".into(),
        scopes: "openid offline_access".into(),
        created_at: now(),
        expires_at,
    }
}

async fn synced_user(db: &Db, connection: &Connection) {
    let page = PageWrite {
        users: vec![UserRow {
            id: "u1".into(),
            display_name: Some("Adele".into()),
            ..UserRow::default()
        }],
        ..PageWrite::default()
    };
    let cursor = Cursor {
        connection_id: connection.id.clone(),
        resource: "users".into(),
        round: 1,
        full_round: true,
        run_id: None,
        next_link: None,
        delta_link: None,
        time_cursor: None,
        round_started_at: Some(now()),
        pages: 1,
        rows_written: 1,
        updated_at: now(),
    };
    db.write_page(&page, &cursor, now()).await.unwrap();
}

#[tokio::test]
async fn disconnect_keeps_data_purge_deletes_it_and_reconnect_restores() {
    for t in TestDb::all().await {
        let db = &t.db;
        let org = db.create_organization("Contoso").await.unwrap();
        let other = db.create_organization("Fabrikam").await.unwrap();
        let c = db
            .create_connection(new_connection(&org.id, "t1", "ct-1"))
            .await
            .unwrap();
        synced_user(db, &c).await;
        db.put_delegated_token(&DelegatedToken {
            connection_id: c.id.clone(),
            principal: "oid-1".into(),
            token_ciphertext: b"rt".to_vec(),
            key_id: "key-a".into(),
            expires_at: None,
            updated_at: now(),
        })
        .await
        .unwrap();
        db.put_oauth_state(&state(&org.id, &c.id, "h1", now() + Duration::minutes(10)))
            .await
            .unwrap();

        // Another organization cannot disconnect, find or reconnect it.
        let e = db
            .disconnect_connection(&other.id, &c.id)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
        assert!(
            db.connection_by_tenant(&other.id, "t1")
                .await
                .unwrap()
                .is_none()
        );
        let e = db
            .replace_connection_credentials(&c.id, new_connection(&other.id, "t1", "x"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e:?}");

        let d = db.disconnect_connection(&org.id, &c.id).await.unwrap();
        assert_eq!(d.status, "disconnected");
        assert!(d.secret_ciphertext.is_none() && d.secret_key_id.is_none());
        assert!(db.delegated_tokens(&c.id).await.unwrap().is_empty());
        assert_eq!(db.oauth_states_of(&c.id).await.unwrap(), 0);
        assert_eq!(db.users(&c.id).await.unwrap().len(), 1, "{:?}", t.backend());
        assert_eq!(db.secrets_per_key().await.unwrap(), vec![]);

        // Reconnect with a new secret: active again, same id, data still there.
        let r = db
            .replace_connection_credentials(&c.id, new_connection(&org.id, "T1", "ct-2"))
            .await
            .unwrap();
        assert_eq!(
            (r.id.as_str(), r.status.as_str()),
            (c.id.as_str(), "active")
        );
        assert_eq!(r.secret_ciphertext.as_deref(), Some(b"ct-2".as_slice()));
        assert!(
            db.connection_by_tenant(&org.id, "t1")
                .await
                .unwrap()
                .is_some()
        );
        db.set_connection_consented(&org.id, &c.id, now())
            .await
            .unwrap();
        assert!(
            db.connection(&org.id, &c.id)
                .await
                .unwrap()
                .consented_at
                .is_some()
        );
        let e = db
            .set_connection_consented(&other.id, &c.id, now())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e:?}");

        // Purge: the connection and its data go.
        db.delete_connection(&org.id, &c.id).await.unwrap();
        assert!(db.users(&c.id).await.unwrap().is_empty());
        assert!(db.connections(&org.id).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn oauth_states_are_single_use_expire_and_belong_to_their_organization() {
    for t in TestDb::all().await {
        let db = &t.db;
        let org = db.create_organization("Contoso").await.unwrap();
        let other = db.create_organization("Fabrikam").await.unwrap();
        let c = db
            .create_connection(new_connection(&org.id, "t1", "ct-1"))
            .await
            .unwrap();

        // A state bound to another organization's connection is refused.
        let e = db
            .put_oauth_state(&state(
                &other.id,
                &c.id,
                "h0",
                now() + Duration::minutes(10),
            ))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e:?}");

        let s = state(&org.id, &c.id, "h1", now() + Duration::minutes(10));
        db.put_oauth_state(&s).await.unwrap();
        let taken = db.take_oauth_state("h1", now()).await.unwrap().unwrap();
        assert_eq!(
            (taken.connection_id, taken.verifier_ciphertext, taken.scopes),
            (
                s.connection_id.clone(),
                s.verifier_ciphertext.clone(),
                s.scopes.clone()
            ),
            "{:?}",
            t.backend()
        );
        // Replayed: gone.
        assert!(db.take_oauth_state("h1", now()).await.unwrap().is_none());
        assert!(
            db.take_oauth_state("unknown", now())
                .await
                .unwrap()
                .is_none()
        );

        // Expired: refused, and deleted too.
        db.put_oauth_state(&state(&org.id, &c.id, "h2", now() + Duration::minutes(10)))
            .await
            .unwrap();
        let later = now() + Duration::minutes(11);
        assert!(db.take_oauth_state("h2", later).await.unwrap().is_none());
        assert_eq!(db.oauth_states_of(&c.id).await.unwrap(), 0);

        // Expired states are swept when a new one is kept.
        db.put_oauth_state(&state(&org.id, &c.id, "h3", now() - Duration::seconds(1)))
            .await
            .unwrap();
        db.put_oauth_state(&state(&org.id, &c.id, "h4", now() + Duration::minutes(10)))
            .await
            .unwrap();
        assert_eq!(db.oauth_states_of(&c.id).await.unwrap(), 1);

        // Concurrent takes of one state: exactly one wins.
        db.put_oauth_state(&state(&org.id, &c.id, "h5", now() + Duration::minutes(10)))
            .await
            .unwrap();
        let (a, b) = tokio::join!(
            db.take_oauth_state("h5", now()),
            db.take_oauth_state("h5", now())
        );
        assert_eq!(
            usize::from(a.unwrap().is_some()) + usize::from(b.unwrap().is_some()),
            1
        );

        // Deleting the connection drops its pending states.
        db.delete_connection(&org.id, &c.id).await.unwrap();
        assert_eq!(db.oauth_states_of(&c.id).await.unwrap(), 0);
    }
}
