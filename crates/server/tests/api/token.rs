//! `POST /oauth/token` with `grant_type=refresh_token` (docs/architecture.md, token rules; RFC 6749 §5-§6).

use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use grantry_core::settings::ReissuePolicy;
use grantry_core::Clock;

use crate::both;
use crate::harness::TestApp;

async fn json_error(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    assert_eq!(r.headers()["cache-control"], "no-store");
    (status, r.json().await.unwrap())
}

both!(
    refresh_token_grant_returns_the_seed_response,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let r = app.refresh(&i).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let v: Value = r.json().await.unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "access_token",
                "token_type",
                "refresh_token",
                "expires_in",
                "scope"
            ]
        );
        assert_eq!(v["token_type"], "bearer");
        assert_eq!(v["refresh_token"], i.refresh_token.as_str());
        assert_eq!(v["expires_in"], 14399);
        assert!(v["access_token"]
            .as_str()
            .unwrap()
            .starts_with("gat_test-1_"));
        assert_eq!(app.audit_count("acme", "access_token.issued").await, 1);
    }
);

both!(client_secret_basic_is_accepted, |app: TestApp| async move {
    let i = app.integration("acme").await;
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&i.client_id, Some(&i.client_secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &i.refresh_token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
});

both!(
    reissue_within_three_hours_returns_same_token,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let first = app.access_token(&i).await;
        app.advance(Duration::from_secs(3 * 3600 - 60));
        let r: Value = app.refresh(&i).await.json().await.unwrap();
        assert_eq!(r["access_token"], first.as_str());
        assert_eq!(r["expires_in"], 3600 + 60 - 1);
        assert_eq!(app.audit_count("acme", "access_token.issued").await, 1);

        // After three hours a second token is issued and the first stays valid until its expiry.
        app.advance(Duration::from_secs(60));
        let r: Value = app.refresh(&i).await.json().await.unwrap();
        let second = r["access_token"].as_str().unwrap().to_string();
        assert_ne!(second, first);
        assert_eq!(r["expires_in"], 14399);
        assert_eq!(app.audit_count("acme", "access_token.issued").await, 2);
        let (s, _) = app
            .rest(reqwest::Method::GET, "/rest/databases", &first, None)
            .await;
        assert_eq!(s, 200);

        // At four hours the first has expired; the second still works.
        app.advance(Duration::from_secs(3600));
        let (s, body) = app
            .rest(reqwest::Method::GET, "/rest/databases", &first, None)
            .await;
        assert_eq!(s, 401);
        assert!(body["meta"]["generalErrors"][0]
            .as_str()
            .unwrap()
            .contains("expired"));
        let (s, _) = app
            .rest(reqwest::Method::GET, "/rest/databases", &second, None)
            .await;
        assert_eq!(s, 200);
    }
);

both!(
    reject_policy_answers_429_with_retry_after,
    ReissuePolicy::Reject,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let first = app.access_token(&i).await;
        app.advance(Duration::from_secs(3600));
        let r = app.refresh(&i).await;
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "7200");
        let (_, v) = json_error(r).await;
        assert_eq!(v["error"], "slow_down");
        assert!(v["error_description"]
            .as_str()
            .unwrap()
            .contains("in 7200 s"));
        app.advance(Duration::from_secs(7200));
        let second = app.access_token(&i).await;
        assert_ne!(first, second);
    }
);

both!(
    parallel_refreshes_in_the_window_issue_one_token,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let app = std::sync::Arc::new(app);
        let i = std::sync::Arc::new(i);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (app, i) = (app.clone(), i.clone());
                tokio::spawn(async move { app.access_token(&i).await })
            })
            .collect();
        let mut tokens = Vec::new();
        for t in tasks {
            tokens.push(t.await.unwrap());
        }
        tokens.dedup();
        assert_eq!(tokens.len(), 1, "all parallel requests get the same token");
        assert_eq!(app.audit_count("acme", "access_token.issued").await, 1);
    }
);

both!(
    unknown_client_is_invalid_client_naming_it,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let r = app
            .token(&[
                ("grant_type", "refresh_token"),
                ("client_id", "no-such-client"),
                ("client_secret", "x"),
                ("refresh_token", &i.refresh_token),
            ])
            .await;
        let (s, v) = json_error(r).await;
        assert_eq!(s, 401);
        assert_eq!(v["error"], "invalid_client");
        assert_eq!(
            v["error_description"],
            "Unable to find matching client for no-such-client"
        );
        assert_eq!(app.audit_count("acme", "access_token.issued").await, 0);
    }
);

both!(
    wrong_client_secret_is_invalid_client,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let r = app
            .token(&[
                ("grant_type", "refresh_token"),
                ("client_id", &i.client_id),
                (
                    "client_secret",
                    "gcs_test-1_wrongwrongwrongwrongwrongwrongwrongwro",
                ),
                ("refresh_token", &i.refresh_token),
            ])
            .await;
        assert!(r.headers().get("www-authenticate").is_none());
        let (s, v) = json_error(r).await;
        assert_eq!((s, v["error"].as_str().unwrap()), (401, "invalid_client"));

        // With HTTP Basic the 401 carries a Basic challenge (RFC 6749 §5.2).
        let r = app
            .http
            .post(app.url("/oauth/token"))
            .basic_auth(&i.client_id, Some("wrong"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &i.refresh_token),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic realm="));
        assert_eq!(app.audit_count("acme", "access_token.issued").await, 0);
    }
);

both!(
    unknown_or_foreign_refresh_token_is_invalid_grant,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let (other_id, other_secret) = app.app("acme", "Other", None).await;
        let cases = [
            (
                i.client_id.as_str(),
                i.client_secret.as_str(),
                "grt_test-1_unknownunknownunknownunknownunknownunkno",
            ),
            (
                other_id.as_str(),
                other_secret.as_str(),
                i.refresh_token.as_str(),
            ),
            (
                i.client_id.as_str(),
                i.client_secret.as_str(),
                "grt_eu-9_unknownunknownunknownunknownunknownunkno",
            ),
        ];
        for (cid, secret, rt) in cases {
            let r = app
                .token(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", cid),
                    ("client_secret", secret),
                    ("refresh_token", rt),
                ])
                .await;
            let (s, v) = json_error(r).await;
            assert_eq!(
                (s, v["error"].as_str().unwrap()),
                (400, "invalid_grant"),
                "{v}"
            );
        }
        let r = app
            .token(&[
                ("grant_type", "refresh_token"),
                ("client_id", &i.client_id),
                ("client_secret", &i.client_secret),
                (
                    "refresh_token",
                    "grt_eu-9_unknownunknownunknownunknownunknownunkno",
                ),
            ])
            .await;
        let (_, v) = json_error(r).await;
        assert!(v["error_description"]
            .as_str()
            .unwrap()
            .contains("pod eu-9"));
        assert_eq!(app.audit_count("acme", "access_token.issued").await, 0);
    }
);

both!(
    malformed_requests_are_invalid_request,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let base = format!(
            "client_id={}&client_secret={}&refresh_token={}",
            i.client_id, i.client_secret, i.refresh_token
        );
        let cases = [
            (base.clone(), "grant_type is required"),
            (format!("grant_type=&{base}"), "grant_type is required"),
            (
                format!("grant_type=refresh_token&grant_type=refresh_token&{base}"),
                "more than once",
            ),
            (
                format!(
                    "grant_type=refresh_token&client_id={}&client_secret={}",
                    i.client_id, i.client_secret
                ),
                "refresh_token is required",
            ),
        ];
        for (body, expect) in cases {
            let r = app
                .http
                .post(app.url("/oauth/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            let (s, v) = json_error(r).await;
            assert_eq!((s, v["error"].as_str().unwrap()), (400, "invalid_request"));
            assert!(
                v["error_description"].as_str().unwrap().contains(expect),
                "{v}"
            );
        }
        // Basic and client_secret together: two authentication methods (RFC 6749 §2.3).
        let r = app
            .http
            .post(app.url("/oauth/token"))
            .basic_auth(&i.client_id, Some(&i.client_secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_secret", &i.client_secret),
                ("refresh_token", &i.refresh_token),
            ])
            .send()
            .await
            .unwrap();
        let (s, v) = json_error(r).await;
        assert_eq!((s, v["error"].as_str().unwrap()), (400, "invalid_request"));
        // JSON instead of a form.
        let r = app
            .http
            .post(app.url("/oauth/token"))
            .json(&serde_json::json!({"grant_type": "refresh_token"}))
            .send()
            .await
            .unwrap();
        let (s, v) = json_error(r).await;
        assert_eq!((s, v["error"].as_str().unwrap()), (400, "invalid_request"));
        assert!(v["error_description"]
            .as_str()
            .unwrap()
            .contains("x-www-form-urlencoded"));
        // Missing client authentication altogether.
        let r = app
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &i.refresh_token),
            ])
            .await;
        let (s, v) = json_error(r).await;
        assert_eq!((s, v["error"].as_str().unwrap()), (401, "invalid_client"));
        // Garbage Basic credentials.
        let r = app
            .http
            .post(app.url("/oauth/token"))
            .header("authorization", "Basic !!!notbase64")
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &i.refresh_token),
            ])
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("www-authenticate").is_some());
        let (s, v) = json_error(r).await;
        assert_eq!((s, v["error"].as_str().unwrap()), (401, "invalid_client"));
        assert_eq!(app.audit_count("acme", "access_token.issued").await, 0);
    }
);

both!(
    unsupported_grant_type_is_refused,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        for gt in ["password", "urn:ietf:params:oauth:grant-type:device_code"] {
            let r = app
                .token(&[
                    ("grant_type", gt),
                    ("client_id", &i.client_id),
                    ("client_secret", &i.client_secret),
                ])
                .await;
            let (s, v) = json_error(r).await;
            assert_eq!(
                (s, v["error"].as_str().unwrap()),
                (400, "unsupported_grant_type")
            );
        }
        let r = app.http.get(app.url("/oauth/token")).send().await.unwrap();
        assert_eq!(r.status(), 405);
    }
);

both!(
    basic_credentials_are_form_urlencoded,
    |app: TestApp| async move {
        // RFC 6749 §2.3.1: the client id and secret are form-encoded before base64. A client
        // may escape any character, so every byte escaped must still authenticate, and the
        // plain form too (grantry's ids and secrets need no escaping).
        let i = app.integration("acme").await;
        let escaped = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
        let forms = [
            format!("{}:{}", i.client_id, i.client_secret),
            format!("{}:{}", escaped(&i.client_id), escaped(&i.client_secret)),
        ];
        for raw in forms {
            let header = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(&raw)
            );
            let r = app
                .http
                .post(app.url("/oauth/token"))
                .header("authorization", header)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &i.refresh_token),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{raw}");
            let v: Value = r.json().await.unwrap();
            assert!(
                v["access_token"].as_str().unwrap().starts_with("gat_"),
                "{v}"
            );
        }
    }
);

both!(
    requested_scope_narrows_and_cannot_widen,
    |app: TestApp| async move {
        app.org("acme").await;
        let limited = grantry_core::GrantSet::parse_scope("lists:read contacts:read").unwrap();
        let (cid, secret) = app.app("acme", "Reader", Some(limited)).await;
        let rt = app.access("acme", &cid, "admin").await;
        let r = app
            .token(&[
                ("grant_type", "refresh_token"),
                ("client_id", &cid),
                ("client_secret", &secret),
                ("refresh_token", &rt),
                ("scope", "lists:write"),
            ])
            .await;
        let (s, v) = json_error(r).await;
        assert_eq!((s, v["error"].as_str().unwrap()), (400, "invalid_scope"));
        let r = app
            .token(&[
                ("grant_type", "refresh_token"),
                ("client_id", &cid),
                ("client_secret", &secret),
                ("refresh_token", &rt),
                ("scope", "lists:read"),
            ])
            .await;
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["scope"], "lists:read");
        let narrow = v["access_token"].as_str().unwrap().to_string();

        // Inside the 3-hour window: the same scope (or none) gets the same token back; another
        // scope is refused until the window ends, never answered with a different token.
        let refresh = |scope: Option<&'static str>| {
            let app = &app;
            let (cid, secret, rt) = (cid.clone(), secret.clone(), rt.clone());
            async move {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("client_id", cid),
                    ("client_secret", secret),
                    ("refresh_token", rt),
                ];
                if let Some(s) = scope {
                    form.push(("scope", s.to_string()));
                }
                let r = app
                    .http
                    .post(app.url("/oauth/token"))
                    .form(&form)
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        app.advance(Duration::from_secs(3600));
        let (s, v) = refresh(Some("lists:read")).await;
        assert_eq!(
            (s, v["access_token"].as_str()),
            (200, Some(narrow.as_str()))
        );
        let (s, v) = refresh(None).await;
        assert_eq!(
            (s, v["access_token"].as_str()),
            (200, Some(narrow.as_str()))
        );
        for other in ["lists:read contacts:read", "contacts:read"] {
            let (s, v) = refresh(Some(other)).await;
            assert_eq!(
                (s, v["error"].as_str()),
                (400, Some("invalid_scope")),
                "{other}: {v}"
            );
            assert!(v["error_description"]
                .as_str()
                .unwrap()
                .contains("another scope"));
        }
        assert_eq!(app.audit_count("acme", "access_token.issued").await, 1);
        // After the window the other scope is issued.
        app.advance(Duration::from_secs(2 * 3600));
        let (s, v) = refresh(Some("contacts:read")).await;
        assert_eq!(
            (s, v["scope"].as_str()),
            (200, Some("contacts:read")),
            "{v}"
        );
        assert_ne!(v["access_token"].as_str(), Some(narrow.as_str()));
    }
);

both!(
    a_client_asking_for_a_form_gets_a_form_encoded_token_response,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let r = app
            .http
            .post(app.url("/oauth/token"))
            .header("accept", "application/x-www-form-urlencoded")
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", &i.client_id),
                ("client_secret", &i.client_secret),
                ("refresh_token", &i.refresh_token),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body = r.text().await.unwrap();
        let fields: std::collections::HashMap<String, String> =
            form_urlencoded::parse(body.as_bytes())
                .into_owned()
                .collect();
        assert_eq!(fields["token_type"], "bearer");
        assert_eq!(fields["expires_in"], "14399");
        assert_eq!(fields["refresh_token"], i.refresh_token);
        assert!(fields["access_token"].starts_with("gat_"));
    }
);

both!(
    a_rotated_client_secret_overlaps_the_old_one_for_the_chosen_time,
    |app: TestApp| async move {
        use secrecy::ExposeSecret;
        let i = app.integration("acme").await;
        let (new, until) = grantry_core::admin::rotate_client_secret(
            &app.cx(),
            "acme",
            &i.client_id,
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
        assert_eq!(until, app.clock.now().plus(Duration::from_secs(3600)));
        let with = |secret: String| {
            let (app, i) = (&app, &i);
            async move {
                app.token(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", &i.client_id),
                    ("client_secret", &secret),
                    ("refresh_token", &i.refresh_token),
                ])
                .await
                .status()
                .as_u16()
            }
        };
        let new = new.expose_secret().to_string();
        assert_eq!(with(i.client_secret.clone()).await, 200);
        assert_eq!(with(new.clone()).await, 200);
        app.advance(Duration::from_secs(3600));
        assert_eq!(with(i.client_secret.clone()).await, 401);
        assert_eq!(with(new.clone()).await, 200);
        assert_eq!(
            app.audit_count("acme", "application.secret_rotated").await,
            1
        );
    }
);
