//! Certificate credentials: a client assertion (RFC 7523, `private_key_jwt`) signed with a
//! key whose certificate is registered on the app, over real HTTPS.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::Harness;
use rand_core::SeedableRng as _;
use rsa::pkcs8::EncodePrivateKey as _;
use serde_json::{Value, json};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An RSA key and a self-signed certificate for it (rcgen).
struct TestCert {
    key: ring::signature::RsaKeyPair,
    pem: String,
    der: Vec<u8>,
}

fn test_cert(seed: u64) -> TestCert {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let private = rsa::PrivateKey::new(&mut rng, 2048).expect("RSA key");
    let pkcs8 = private.to_pkcs8_der().expect("PKCS#8").as_bytes().to_vec();
    let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.clone()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .expect("rcgen reads the key");
    let cert = rcgen::CertificateParams::new(vec!["tenantlink-test-client".into()])
        .expect("params")
        .self_signed(&key_pair)
        .expect("self-signed certificate");
    TestCert {
        key: ring::signature::RsaKeyPair::from_pkcs8(&pkcs8).expect("ring reads the key"),
        pem: cert.pem(),
        der: cert.der().to_vec(),
    }
}

fn assertion(cert: &TestCert, header: Value, claims: Value) -> String {
    let _ = &cert.der;
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let mut sig = vec![0u8; cert.key.public().modulus_len()];
    cert.key
        .sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .expect("sign");
    format!("{input}.{}", B64.encode(sig))
}

async fn token(h: &Harness, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
    h.token_endpoint(tenant, form).await
}

#[tokio::test]
async fn client_assertion_signed_with_a_registered_certificate() {
    let h = Harness::start();
    let t = &h.emulator.tenants()[0];
    let app = &t.connector_app;
    let cert = test_cert(11);
    let s256 = B64.encode(ring::digest::digest(&ring::digest::SHA256, &cert.der));
    let s1 = B64.encode(ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        &cert.der,
    ));
    let endpoint = h.url(&format!("/{}/oauth2/v2.0/token", t.tenant_id));
    let now = chrono::Utc::now().timestamp();
    let claims = |jti: &str, aud: &str| {
        json!({"aud": aud, "iss": app.client_id, "sub": app.client_id, "jti": jti,
               "nbf": now, "iat": now, "exp": now + 600})
    };
    let request = |jwt: &str| {
        [
            ("grant_type", "client_credentials"),
            ("client_id", app.client_id.as_str()),
            ("client_assertion_type", JWT_BEARER),
            ("scope", "https://graph.microsoft.com/.default"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .chain([("client_assertion".to_owned(), jwt.to_owned())])
        .collect::<Vec<_>>()
    };
    let send = |form: Vec<(String, String)>| {
        let h = &h;
        let tenant = t.tenant_id.clone();
        async move {
            let pairs: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            token(h, &tenant, &pairs).await
        }
    };

    // Not registered yet: the key is not found.
    let first = assertion(
        &cert,
        json!({"alg": "RS256", "typ": "JWT", "x5t#S256": s256}),
        claims("jti-0", &endpoint),
    );
    let (status, body) = send(request(&first)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error_codes"], json!([700_027]));

    // Register the certificate through the control API.
    let res = h
        .client
        .post(h.url(&format!("/_emulator/apps/{}/certificates", app.client_id)))
        .json(&json!({"pem": cert.pem}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let registered: Value = res.json().await.unwrap();
    assert_eq!(registered["x5t#S256"], s256);
    assert_eq!(registered["x5t"], s1);

    let good = assertion(
        &cert,
        json!({"alg": "RS256", "typ": "JWT", "x5t#S256": s256}),
        claims("jti-1", &endpoint),
    );
    let (status, body) = send(request(&good)).await;
    assert_eq!(status, 200, "{body}");
    let at = body["access_token"].as_str().unwrap();
    let claims_at: Value =
        serde_json::from_slice(&B64.decode(at.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims_at["appid"], app.client_id);
    assert_eq!(claims_at["tid"], t.tenant_id);

    // The same assertion again: its jti is spent.
    let (status, body) = send(request(&good)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");

    // The SHA-1 thumbprint (`x5t`) older clients send works too.
    let sha1 = assertion(
        &cert,
        json!({"alg": "RS256", "typ": "JWT", "x5t": s1}),
        claims("jti-2", &endpoint),
    );
    let (status, body) = send(request(&sha1)).await;
    assert_eq!(status, 200, "{body}");

    // Wrong audience, wrong issuer, expired, tampered.
    let wrong_aud = assertion(
        &cert,
        json!({"alg": "RS256", "x5t#S256": s256}),
        claims("jti-3", "https://login.example.com/token"),
    );
    let (status, body) = send(request(&wrong_aud)).await;
    assert_eq!(
        (status, body["error_codes"].clone()),
        (401, json!([700_023]))
    );
    let mut other_iss = claims("jti-4", &endpoint);
    other_iss["iss"] = json!("someone-else");
    let bad_iss = assertion(&cert, json!({"alg": "RS256", "x5t#S256": s256}), other_iss);
    let (status, body) = send(request(&bad_iss)).await;
    assert_eq!(
        (status, body["error_codes"].clone()),
        (401, json!([700_021]))
    );
    let mut old = claims("jti-5", &endpoint);
    old["exp"] = json!(now - 3600);
    old["nbf"] = json!(now - 7200);
    let expired = assertion(&cert, json!({"alg": "RS256", "x5t#S256": s256}), old);
    let (status, body) = send(request(&expired)).await;
    assert_eq!(
        (status, body["error_codes"].clone()),
        (401, json!([700_024]))
    );
    let fresh = assertion(
        &cert,
        json!({"alg": "RS256", "x5t#S256": s256}),
        claims("jti-6", &endpoint),
    );
    let (head, _) = fresh.rsplit_once('.').unwrap();
    let other_signature = good.rsplit_once('.').unwrap().1;
    let (status, body) = send(request(&format!("{head}.{other_signature}"))).await;
    assert_eq!(
        (status, body["error_codes"].clone()),
        (401, json!([700_027]))
    );
}
