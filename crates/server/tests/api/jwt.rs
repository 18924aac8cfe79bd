//! JWT access tokens (RFC 9068) as an application option, and their signing keys at
//! `/oauth/jwks`.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use grantry_core::admin::{self, AppInput};
use grantry_core::model::TokenFormat;
use grantry_core::Clock;

use crate::both;
use crate::harness::{Integration, TestApp};

async fn jwt_integration(app: &TestApp) -> Integration {
    app.org("acme").await;
    let input = AppInput {
        name: "Signed".into(),
        description: String::new(),
        redirect_uris: vec![],
        scopes: None,
        public: false,
        rotate_refresh_tokens: false,
        token_format: TokenFormat::Jwt,
    };
    let (a, secret) = admin::add_application(&app.cx(), "acme", input)
        .await
        .unwrap();
    use secrecy::ExposeSecret;
    let client_secret = secret.unwrap().expose_secret().to_string();
    let refresh_token = app.access("acme", &a.client_id, "admin").await;
    Integration {
        client_id: a.client_id,
        client_secret,
        refresh_token,
    }
}

async fn jwks(app: &TestApp) -> Vec<Value> {
    let v: Value = app
        .http
        .get(app.url("/oauth/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["keys"].as_array().unwrap().clone()
}

fn verify(token: &str, keys: &[Value], audience: &str) -> jsonwebtoken::TokenData<Value> {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.unwrap();
    let jwk = keys
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the signing key is published");
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().unwrap(),
        jwk["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[audience]);
    v.validate_exp = false;
    jsonwebtoken::decode::<Value>(token, &key, &v).unwrap()
}

both!(
    rfc9068_jwt_access_tokens_verify_with_the_published_key_and_revocation_still_wins,
    |app: TestApp| async move {
        let i = jwt_integration(&app).await;
        let token = app.access_token(&i).await;
        let keys = jwks(&app).await;
        assert_eq!(
            keys.len(),
            2,
            "the active key and its successor are published"
        );
        let data = verify(&token, &keys, &app.settings.public_url);
        let c = &data.claims;
        assert_eq!(c["iss"], app.settings.public_url.as_str());
        assert_eq!(c["client_id"], i.client_id.as_str());
        assert_eq!(
            c["scope"],
            "lists:read lists:write contacts:read contacts:write events:write"
        );
        assert_eq!(c["iat"].as_i64().unwrap(), app.clock.now().0 / 1000);
        assert_eq!(c["exp"].as_i64().unwrap(), app.clock.now().0 / 1000 + 14400);
        assert!(c["sub"].is_string() && c["jti"].is_string());

        // Inside the window the same JWT comes back; it opens grantry's APIs.
        app.advance(Duration::from_secs(600));
        assert_eq!(app.access_token(&i).await, token);
        let (s, _) = app.rest(Method::GET, "/rest/databases", &token, None).await;
        assert_eq!(s, 200);
        let r = app
            .http
            .post(app.url("/oauth/introspect"))
            .basic_auth(&i.client_id, Some(&i.client_secret))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["active"], true);

        // The signature stays valid, but grantry's own APIs honour the revocation.
        admin::delete_account_access(&app.cx(), "acme", &i.client_id, "admin")
            .await
            .unwrap();
        let (s, _) = app.rest(Method::GET, "/rest/databases", &token, None).await;
        assert_eq!(s, 401);

        let meta: Value = app
            .http
            .get(app.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            meta["jwks_uri"],
            format!("{}/oauth/jwks", app.settings.public_url)
        );
    }
);

both!(
    signing_keys_rotate_on_schedule_and_the_old_key_stays_until_its_last_token_expires,
    |app: TestApp| async move {
        let i = jwt_integration(&app).await;
        let first = app.access_token(&i).await;
        let kid1 = jsonwebtoken::decode_header(&first).unwrap().kid.unwrap();
        let keys = jwks(&app).await;
        let kid2 = keys
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .find(|k| *k != kid1)
            .unwrap();

        // 30 days later the successor, published all along, signs. The token request makes
        // no key: the schedule's next round publishes the successor's successor.
        app.advance(Duration::from_secs(30 * 24 * 3600));
        let second = app.access_token(&i).await;
        assert_eq!(app.store.signing_keys().await.unwrap().len(), 2);
        app.keep_keys().await;
        assert_eq!(app.store.signing_keys().await.unwrap().len(), 3);
        assert_eq!(
            jsonwebtoken::decode_header(&second).unwrap().kid.unwrap(),
            kid2
        );
        let keys = jwks(&app).await;
        let kids: Vec<_> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert!(
            kids.contains(&kid1.as_str()) && kids.contains(&kid2.as_str()),
            "{kids:?}"
        );
        assert_eq!(kids.len(), 3, "old, active and the next successor");
        verify(&second, &keys, &app.settings.public_url);

        // Once every token the old key signed has expired, it is no longer published.
        app.advance(Duration::from_secs(4 * 3600));
        let kids: Vec<String> = jwks(&app)
            .await
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect();
        assert!(!kids.contains(&kid1), "{kids:?}");
        assert!(kids.contains(&kid2));
    }
);
