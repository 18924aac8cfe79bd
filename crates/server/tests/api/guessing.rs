//! Limits on guessing secrets (docs/architecture.md, limits): every door that checks a
//! secret counts failures per source address and per account, client or key, answers 429
//! with `Retry-After` in its own protocol's format, locks with exponential back-off that a
//! success clears, and a lock set on one instance holds on the others within one second.

use std::time::{Duration, Instant};

use base64::Engine;
use grantry_core::limits::Subject;
use grantry_core::{Clock, GrantSet};
use serde_json::{json, Value};

use crate::both;
use crate::harness::TestApp;

/// Failures before an account, client or key is locked (`limits.lockout_after`).
const AFTER: usize = 5;

async fn sign_in(
    app: &TestApp,
    client_id: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let query = format!("response_type=code&client_id={client_id}");
    app.post_login(&query, username, password).await
}

fn retry_after(r: &reqwest::Response) -> Option<u64> {
    r.headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap())
}

async fn locks(app: &TestApp) -> Vec<String> {
    let now = app.clock.now();
    let live = app.store.active_lockouts(now).await.unwrap();
    live.into_iter().map(|(s, _)| s).collect()
}

both!(
    wrong_passwords_lock_the_account_with_back_off_and_a_sign_in_clears_it,
    |app: TestApp| async move {
        app.org("acme").await;
        app.ui_user_with_password("acme", "ann", GrantSet::empty(), "right horse battery")
            .await;
        let (id, _) = app
            .client("acme", "Partner", "https://partner.example/cb", false)
            .await;
        for _ in 0..AFTER {
            let r = sign_in(&app, &id, "ann", "wrong").await;
            assert_eq!(r.status(), 401);
        }
        let org = app.store.org_by_name("acme").await.unwrap().unwrap().id;
        assert_eq!(locks(&app).await, vec![Subject::user(org, "ann").key()]);
        // Locked: even the right password is not checked.
        let r = sign_in(&app, &id, "ann", "right horse battery").await;
        assert_eq!(r.status(), 429);
        assert_eq!(retry_after(&r), Some(1));
        assert!(r.headers().get("set-cookie").is_none());
        assert!(r.text().await.unwrap().contains("Too many failed sign-ins"));
        // One audit event counts them (audit.failure_window); the throttled attempt is not among them.
        assert_eq!(
            app.audit_occurrences("acme", "authentication.failed").await,
            AFTER as i64
        );
        assert_eq!(app.audit_count("acme", "authentication.failed").await, 1);
        // Each failure past the threshold doubles the wait.
        app.advance(Duration::from_secs(1));
        assert_eq!(sign_in(&app, &id, "ann", "wrong").await.status(), 401);
        let r = sign_in(&app, &id, "ann", "right horse battery").await;
        assert_eq!((r.status().as_u16(), retry_after(&r)), (429, Some(2)));
        app.advance(Duration::from_secs(2));
        let r = sign_in(&app, &id, "ann", "right horse battery").await;
        assert_eq!(
            r.status(),
            303,
            "the lock ends and the right password signs in"
        );
        assert!(locks(&app).await.is_empty());
        // The success cleared the count: as many failures again before the next lock.
        for _ in 0..AFTER - 1 {
            assert_eq!(sign_in(&app, &id, "ann", "wrong").await.status(), 401);
        }
        assert_eq!(
            sign_in(&app, &id, "ann", "right horse battery")
                .await
                .status(),
            303
        );
    }
);

both!(
    a_locked_account_does_not_say_whether_it_exists,
    |app: TestApp| async move {
        app.org("acme").await;
        let (id, _) = app
            .client("acme", "Partner", "https://partner.example/cb", false)
            .await;
        for _ in 0..AFTER {
            assert_eq!(sign_in(&app, &id, "nobody", "x").await.status(), 401);
        }
        let r = sign_in(&app, &id, "nobody", "x").await;
        assert_eq!(r.status(), 429, "made-up names lock like real ones");
        assert_eq!(app.audit_count("acme", "authentication.failed").await, 0);
    }
);

both!(
    a_guessed_client_secret_locks_the_client_on_every_instance_within_a_second,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let twin = app.other_pod(&app.settings.pod_id).await;
        let wrong = |app: &TestApp| {
            let (id, rt) = (i.client_id.clone(), i.refresh_token.clone());
            let url = app.url("/oauth/token");
            let http = app.http.clone();
            async move {
                http.post(url)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("client_id", id.as_str()),
                        ("client_secret", "guess"),
                        ("refresh_token", rt.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap()
            }
        };
        for _ in 0..AFTER {
            let r = wrong(&app).await;
            assert_eq!(r.status(), 401);
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"], "invalid_client");
        }
        let r = app.refresh(&i).await;
        assert_eq!(r.status(), 429, "the right secret waits too");
        assert_eq!(retry_after(&r), Some(1));
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "slow_down");
        assert!(v["error_description"]
            .as_str()
            .unwrap()
            .contains("this account"));
        // The other instance learns of the lock from the store within one second, of real
        // time: the mirror runs on the runtime's timer, not the test's clock.
        #[allow(
            clippy::disallowed_methods,
            reason = "the propagation bound is real time"
        )]
        let started = Instant::now();
        loop {
            let status = twin.refresh(&i).await.status();
            if status == 429 {
                break;
            }
            assert_eq!(status, 200);
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "the twin never saw the lock"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Introspection authenticates the same client: locked there too.
        let r = app
            .http
            .post(app.url("/oauth/introspect"))
            .basic_auth(&i.client_id, Some(&i.client_secret))
            .form(&[("token", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        app.advance(Duration::from_secs(1));
        assert_eq!(app.refresh(&i).await.status(), 200);
    }
);

both!(
    one_address_guessing_client_ids_is_slowed_at_that_door_only,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let k = app.api_user("acme", "bot", "lists:read").await;
        let burst = app.settings.limits.source_failures as usize;
        for n in 0..burst {
            let id = format!("made-up-{n}");
            let r = app
                .token(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", &id),
                    ("client_secret", "x"),
                    ("refresh_token", "x"),
                ])
                .await;
            assert_eq!(r.status(), 401, "attempt {n}");
        }
        let r = app
            .token(&[
                ("grant_type", "refresh_token"),
                ("client_id", "one-more"),
                ("client_secret", "x"),
                ("refresh_token", "x"),
            ])
            .await;
        assert_eq!(r.status(), 429);
        let wait = retry_after(&r).unwrap();
        let v: Value = r.json().await.unwrap();
        assert!(v["error_description"]
            .as_str()
            .unwrap()
            .contains("this address"));
        assert_eq!(
            app.refresh(&i).await.status(),
            429,
            "the whole door waits for this address"
        );
        // Another door is not affected: the API key still opens the API.
        assert_eq!(app.get_lists(&format!("Bearer {}", k.bearer)).await, 200);
        app.advance(Duration::from_secs(wait));
        assert_eq!(app.refresh(&i).await.status(), 200);
    }
);

both!(
    a_guessed_api_key_is_refused_429_in_each_apis_own_format,
    |app: TestApp| async move {
        app.org("acme").await;
        let k = app.api_user("acme", "bot", "lists:read events:write").await;
        let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{}:guess", k.key_id));
        for _ in 0..AFTER {
            assert_eq!(app.get_lists(&format!("Bearer {wrong}")).await, 401);
        }
        let good = format!("Bearer {}", k.bearer);
        let r = app
            .http
            .get(app.url("/rest/databases"))
            .header("authorization", &good)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(retry_after(&r), Some(1));
        assert!(r.headers().get("www-authenticate").is_none());
        let v: Value = r.json().await.unwrap();
        assert!(v["meta"]["generalErrors"][0]
            .as_str()
            .unwrap()
            .contains("try again in 1 s"));
        let (status, xml, _) = app
            .xml_with(Some(&good), "<Envelope><Body><GetLists/></Body></Envelope>")
            .await;
        assert_eq!(status, 429);
        assert!(xml.contains("<Fault>") && xml.contains("145"), "{xml}");
        let r = app
            .http
            .post(app.url("/campaignapi/resources/v3/events"))
            .header("authorization", &good)
            .json(&json!({"event-id": "e1", "event-key": "k@example.com", "event-params": {}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(retry_after(&r), Some(1));
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], 2029);
        // client_credentials names the same key: locked there too.
        let r = app
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &k.key_id),
                ("client_secret", &k.secret),
            ])
            .await;
        assert_eq!(r.status(), 429);
        app.advance(Duration::from_secs(1));
        assert_eq!(app.get_lists(&good).await, 200);
    }
);

both!(
    basic_guesses_lock_that_username_for_basic,
    |app: TestApp| async move {
        app.org("acme").await;
        let k = app.api_user("acme", "bot", "lists:read").await;
        let basic = |secret: &str| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("bot:{secret}"));
            format!("Basic {b64}")
        };
        for _ in 0..AFTER {
            assert_eq!(app.get_lists(&basic("guess")).await, 401);
        }
        assert_eq!(app.get_lists(&basic(&k.secret)).await, 429);
        // The Key ID names the same user another way, under its own count.
        assert_eq!(app.get_lists(&format!("Bearer {}", k.bearer)).await, 200);
    }
);
