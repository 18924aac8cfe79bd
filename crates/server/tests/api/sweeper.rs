//! The sweeper (`grantry_server::tasks::sweep_once`) purges expired access tokens without
//! changing what the token endpoint answers: the re-issue rule and rotation's reuse
//! detection work on what it leaves.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use grantry_core::{Clock, GrantSet};

use crate::both;
use crate::harness::{Integration, TestApp};

const HOUR: Duration = Duration::from_secs(3600);

/// One sweep at the test's time. The server's own sweeper also runs at start; on PostgreSQL
/// a round that finds it holding the sweeper's lock is skipped, so this waits for a round
/// that ran.
async fn sweep(app: &TestApp) -> grantry_core::store::SweepReport {
    for _ in 0..100 {
        if let Some(r) =
            grantry_server::tasks::sweep_once(&*app.store, &*app.clock, &app.settings).await
        {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("every sweep was skipped for 2 s: another sweeper held the lock")
}

async fn refreshed(app: &TestApp, i: &Integration) -> Value {
    let r = app.refresh(i).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

both!(
    after_a_sweep_the_reissue_rule_still_holds,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let first = refreshed(&app, &i).await;
        let a = first["access_token"].as_str().unwrap().to_string();
        assert_eq!(first["expires_in"], 14399);

        // Nothing is expired yet: a sweep purges nothing and the same token comes back.
        app.advance(HOUR);
        assert_eq!(sweep(&app).await.access_tokens, 0);
        let again = refreshed(&app, &i).await;
        assert_eq!(again["access_token"], first["access_token"]);
        let (s, _) = app.rest(Method::GET, "/rest/databases", &a, None).await;
        assert_eq!(s, 200);

        // Once it expired, the sweep purges it and the next refresh issues a new one, which
        // is then reused inside its own window.
        app.advance(4 * HOUR);
        assert_eq!(sweep(&app).await.access_tokens, 1);
        let (s, _) = app.rest(Method::GET, "/rest/databases", &a, None).await;
        assert_eq!(s, 401);
        let next = refreshed(&app, &i).await;
        let b = next["access_token"].as_str().unwrap().to_string();
        assert_ne!(b, a);
        assert_eq!(next["expires_in"], 14399);
        app.advance(HOUR);
        let reused = refreshed(&app, &i).await;
        assert_eq!(reused["access_token"].as_str(), Some(b.as_str()));
        let (s, _) = app.rest(Method::GET, "/rest/databases", &b, None).await;
        assert_eq!(s, 200);
    }
);

both!(
    after_a_sweep_a_rotated_refresh_token_still_detects_reuse,
    |app: TestApp| async move {
        app.org("acme").await;
        app.ui_user(
            "acme",
            "alice",
            grantry_core::model::Role::User,
            GrantSet::apis(),
        )
        .await;
        let input = grantry_core::admin::AppInput {
            name: "Rotating".into(),
            description: String::new(),
            redirect_uris: vec![],
            scopes: None,
            public: false,
            rotate_refresh_tokens: true,
            token_format: grantry_core::model::TokenFormat::Opaque,
        };
        let (rotating, secret) = grantry_core::admin::add_application(&app.cx(), "acme", input)
            .await
            .unwrap();
        let secret = secrecy::ExposeSecret::expose_secret(&secret.unwrap()).to_string();
        let client_id = rotating.client_id;
        let rt1 = app.access("acme", &client_id, "alice").await;
        let refresh = |rt: String| {
            let (app, client_id, secret) = (&app, client_id.clone(), secret.clone());
            async move {
                let r = app
                    .token(&[
                        ("grant_type", "refresh_token"),
                        ("client_id", &client_id),
                        ("client_secret", &secret),
                        ("refresh_token", &rt),
                    ])
                    .await;
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap())
            }
        };
        let (s, v) = refresh(rt1.clone()).await;
        assert_eq!(s, 200, "{v}");
        let rt2 = v["refresh_token"].as_str().unwrap().to_string();
        assert_ne!(rt2, rt1);

        // Every access token has expired and is purged; the refresh tokens stay.
        app.advance(5 * HOUR);
        assert!(sweep(&app).await.access_tokens >= 1);

        let (s, v) = refresh(rt1).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_grant")),
            "{v}"
        );
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("already used"),
            "{v}"
        );
        let (s, v) = refresh(rt2).await;
        assert_eq!(s, 400, "the family was revoked: {v}");
    }
);

both!(
    a_sweep_forgets_failure_counts_older_than_the_failure_memory,
    |app: TestApp| async move {
        let memory = app.settings.limits.failure_memory;
        let now = app.clock.now();
        let (old, recent) = ("client:old", "client:recent");
        app.store
            .count_failure(old, now, now.minus(memory))
            .await
            .unwrap();
        app.advance(memory);
        let now = app.clock.now();
        app.store
            .count_failure(recent, now, now.minus(memory))
            .await
            .unwrap();
        app.advance(Duration::from_secs(1));
        sweep(&app).await;
        // What a count says next shows whether the sweep forgot it: the forget window is
        // passed as the epoch, so only a purged row starts again at one.
        let now = app.clock.now();
        let epoch = grantry_core::Timestamp(0);
        assert_eq!(
            app.store.count_failure(old, now, epoch).await.unwrap(),
            1,
            "purged"
        );
        assert_eq!(
            app.store.count_failure(recent, now, epoch).await.unwrap(),
            2,
            "kept"
        );
    }
);
