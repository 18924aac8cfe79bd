//! API users and their secret keys (docs/architecture.md, ways to authenticate): bearer and Basic use, rotation
//! with promotion and grace, grants, the deprecated client_credentials path, disabling.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use grantry_core::admin::api_keys as apikey;
use grantry_core::{admin, Clock, Grant};
use reqwest::Method;
use serde_json::{json, Value};

use crate::both;
use crate::harness::TestApp;

fn basic(user: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    )
}

async fn event(app: &TestApp, auth: &str) -> u16 {
    app.http
        .post(app.url("/campaignapi/resources/v3/events"))
        .header("authorization", auth)
        .json(&json!({"event-id": "e1", "event-key": "k@example.com", "event-params": {"EMAIL": "k"}}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

both!(
    a_secret_key_opens_every_api_as_bearer_and_as_basic,
    |app: TestApp| async move {
        app.org("acme").await;
        let k = app
            .api_user(
                "acme",
                "bot",
                "lists:read lists:write contacts:read events:write",
            )
            .await;
        assert_eq!(k.slot, 1);
        let bearer = format!("Bearer {}", k.bearer);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&k.bearer)
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            format!("{}:{}", k.key_id, k.secret)
        );
        for auth in [bearer.clone(), basic("bot", &k.secret)] {
            assert_eq!(app.get_lists(&auth).await, 200);
            assert_eq!(event(&app, &auth).await, 200);
            let r = app
                .http
                .post(app.url("/XMLAPI"))
                .header("authorization", &auth)
                .body("<Envelope><Body><GetLists/></Body></Envelope>")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        // The key with another user's name, or another key id, opens nothing.
        assert_eq!(app.get_lists(&basic("admin", &k.secret)).await, 401);
        let wrong = base64::engine::general_purpose::STANDARD
            .encode(format!("00000000-0000-0000-0000-000000000000:{}", k.secret));
        assert_eq!(app.get_lists(&format!("Bearer {wrong}")).await, 401);
    }
);

both!(
    rotation_promotes_key_two_and_the_deleted_key_stops_after_the_grace,
    |app: TestApp| async move {
        app.org("acme").await;
        let k1 = app.api_user("acme", "bot", "lists:read").await;
        let k2 = app.key("acme", "bot").await;
        assert_eq!((k1.slot, k2.slot), (1, 2));
        assert_eq!(k1.key_id, k2.key_id);
        // No third key while two exist.
        let third = apikey::generate(&app.cx(), "acme", "bot")
            .await
            .err()
            .unwrap();
        assert!(third.to_string().contains("two secret keys"));

        let (b1, b2) = (
            format!("Bearer {}", k1.bearer),
            format!("Bearer {}", k2.bearer),
        );
        assert_eq!(app.get_lists(&b1).await, 200);
        assert_eq!(app.get_lists(&b2).await, 200);

        let d = apikey::delete(&app.cx(), "acme", "bot", 1).await.unwrap();
        assert!(d.promoted);
        assert_eq!(d.stops_at, app.clock.now().plus(Duration::from_secs(300)));
        let user = app.store.user_by_username(1, "bot").await.unwrap().unwrap();
        let keys = app.store.api_keys(user.id, app.clock.now()).await.unwrap();
        assert_eq!(
            keys.iter().map(|k| k.slot).collect::<Vec<_>>(),
            [Some(1), None]
        );

        app.advance(Duration::from_secs(299));
        assert_eq!(
            app.get_lists(&b1).await,
            200,
            "inside the grace the deleted key works"
        );
        app.advance(Duration::from_secs(1));
        let r = app
            .http
            .get(app.url("/rest/databases"))
            .header("authorization", &b1)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
        let v: Value = r.json().await.unwrap();
        assert!(
            v["meta"]["generalErrors"][0]
                .as_str()
                .unwrap()
                .contains("deleted"),
            "{v}"
        );
        assert_eq!(app.get_lists(&basic("bot", &k1.secret)).await, 401);
        assert_eq!(app.get_lists(&b2).await, 200);
        // Both refusals are of key 1 of bot: one event that counts them.
        assert_eq!(app.audit_count("acme", "authentication.failed").await, 1);
        assert_eq!(
            app.audit_occurrences("acme", "authentication.failed").await,
            2
        );

        // A new key fills the free slot 2.
        assert_eq!(app.key("acme", "bot").await.slot, 2);
        match apikey::delete(&app.cx(), "acme", "bot", 3).await {
            Err(admin::AdminError::Invalid(m)) => assert_eq!(m, "the slot is 1 or 2"),
            other => panic!("slot 3: {:?}", other.map(|d| d.deleted_slot)),
        }
        let bot = app.store.user_by_username(1, "bot").await.unwrap().unwrap();
        let slots: Vec<_> = app
            .store
            .api_keys(bot.id, app.clock.now())
            .await
            .unwrap()
            .iter()
            .map(|k| k.slot)
            .collect();
        assert_eq!(
            slots,
            [Some(1), Some(2)],
            "a refused delete changes nothing"
        );
    }
);

both!(
    concurrent_key_changes_are_serialized,
    |app: TestApp| async move {
        app.org("acme").await;
        app.api_user("acme", "bot", "lists:read").await;
        app.key("acme", "bot").await;
        let app = Arc::new(app);
        // Two deletions of slot 1 at once: they run one after the other, each deleting a key.
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(
                    async move { apikey::delete(&app.cx(), "acme", "bot", 1).await.is_ok() },
                )
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap());
        }
        let user = app.store.user_by_username(1, "bot").await.unwrap().unwrap();
        let live = |keys: Vec<grantry_core::model::ApiKey>| {
            keys.iter().filter(|k| k.slot.is_some()).count()
        };
        assert_eq!(
            live(app.store.api_keys(user.id, app.clock.now()).await.unwrap()),
            0
        );

        // Generations racing each other and a deletion behave as if run one at a time: the
        // live keys are exactly the successful generations less the successful deletion, in
        // distinct slots, never more than two.
        let mut tasks = Vec::new();
        for i in 0..6 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                if i == 3 {
                    (
                        0,
                        apikey::delete(&app.cx(), "acme", "bot", 1).await.is_ok() as usize,
                    )
                } else {
                    (
                        apikey::generate(&app.cx(), "acme", "bot").await.is_ok() as usize,
                        0,
                    )
                }
            }));
        }
        let (mut generated, mut deleted) = (0, 0);
        for t in tasks {
            let (g, d) = t.await.unwrap();
            generated += g;
            deleted += d;
        }
        let keys = app.store.api_keys(user.id, app.clock.now()).await.unwrap();
        let mut slots: Vec<_> = keys.iter().filter_map(|k| k.slot).collect();
        slots.sort();
        assert_eq!(slots.len(), generated - deleted);
        assert!(slots == [1] || slots == [1, 2], "{slots:?}");
        assert!((2..=3).contains(&generated), "{generated} generated");
    }
);

both!(
    grants_take_effect_on_the_next_request,
    |app: TestApp| async move {
        app.org("acme").await;
        let k = app.api_user("acme", "bot", "lists:read").await;
        let auth = format!("Bearer {}", k.bearer);
        let r = app
            .http
            .post(app.url("/campaignapi/resources/v3/events"))
            .header("authorization", &auth)
            .json(&json!({"event-id": "e", "event-key": "k"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("scope=\"events:write\""));
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], 2003);
        assert!(v["description"].as_str().unwrap().contains("events:write"));

        admin::set_grant(&app.cx(), "acme", "bot", Grant::EventsWrite, true)
            .await
            .unwrap();
        assert_eq!(event(&app, &auth).await, 200);
        admin::set_grant(&app.cx(), "acme", "bot", Grant::EventsWrite, false)
            .await
            .unwrap();
        assert_eq!(event(&app, &auth).await, 403);
        let r = app
        .http
        .post(app.url("/XMLAPI"))
        .header("authorization", &auth)
        .body("<Envelope><Body><RemoveRecipient><LIST_ID>1</LIST_ID><EMAIL>a@example.com</EMAIL></RemoveRecipient></Body></Envelope>")
        .send()
        .await
        .unwrap();
        assert_eq!(r.status(), 403);
        assert!(r.text().await.unwrap().contains("contacts:write"));
    }
);

both!(
    a_ui_users_password_never_opens_an_api,
    |app: TestApp| async move {
        app.org("acme").await;
        let added = admin::add_user(
            &app.cx(),
            "acme",
            admin::UserInput {
                username: "alice".into(),
                email: "alice@example.com".into(),
                kind: grantry_core::model::UserKind::Ui,
                role: grantry_core::model::Role::User,
                grants: grantry_core::GrantSet::apis(),
                password: Some("correct horse battery".to_string().into()),
            },
        )
        .await
        .unwrap();
        assert!(added.password.is_none());
        let r = app
            .http
            .get(app.url("/rest/databases"))
            .header("authorization", basic("alice", "correct horse battery"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let v: Value = r.json().await.unwrap();
        let msg = v["meta"]["generalErrors"][0].as_str().unwrap();
        assert!(
            msg.contains("UI user") && msg.contains("never opens an API"),
            "{msg}"
        );
    }
);

both!(
    client_credentials_with_a_key_is_deprecated_and_dies_with_the_key,
    |app: TestApp| async move {
        app.org("acme").await;
        let k = app.api_user("acme", "bot", "lists:read events:write").await;
        let r = app
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &k.key_id),
                ("client_secret", &k.secret),
            ])
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["deprecation"], "@1704067200");
        let link = r.headers()["link"].to_str().unwrap().to_string();
        assert!(
            link.contains("/docs/api-keys>") && link.contains("rel=\"deprecation\""),
            "{link}"
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["token_type"], "bearer");
        assert_eq!(v["expires_in"], 3599);
        assert_eq!(v["scope"], "lists:read events:write");
        assert!(v.get("refresh_token").is_none());
        let token = v["access_token"].as_str().unwrap().to_string();
        let (s, _) = app.rest(Method::GET, "/rest/databases", &token, None).await;
        assert_eq!(s, 200);
        let docs = app
            .http
            .get(app.url("/docs/api-keys"))
            .send()
            .await
            .unwrap();
        assert_eq!(docs.status(), 200);

        // Basic works too; a narrower scope is honoured, a wider one refused.
        let r = app
            .http
            .post(app.url("/oauth/token"))
            .basic_auth(&k.key_id, Some(&k.secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "events:write"),
            ])
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["scope"], "events:write");
        let r = app
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &k.key_id),
                ("client_secret", &k.secret),
                ("scope", "lists:write"),
            ])
            .await;
        assert_eq!(r.status(), 400);

        // Wrong secret, unknown key id, an application's credentials.
        let r = app
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &k.key_id),
                ("client_secret", "gsk_test-1_nope"),
            ])
            .await;
        assert_eq!(r.status(), 401);
        let (cid, secret) = app.app("acme", "Sync", None).await;
        let r = app
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &cid),
                ("client_secret", &secret),
            ])
            .await;
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "unauthorized_client");

        // The token expires after api_keys.token_ttl.
        app.advance(Duration::from_secs(3600));
        let (s, _) = app.rest(Method::GET, "/rest/databases", &token, None).await;
        assert_eq!(s, 401);

        // A fresh token stops when its key is deleted and the grace is over.
        let r = app
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &k.key_id),
                ("client_secret", &k.secret),
            ])
            .await;
        let v: Value = r.json().await.unwrap();
        let token = v["access_token"].as_str().unwrap().to_string();
        apikey::delete(&app.cx(), "acme", "bot", 1).await.unwrap();
        let (s, _) = app.rest(Method::GET, "/rest/databases", &token, None).await;
        assert_eq!(s, 200);
        app.advance(Duration::from_secs(300));
        let (s, v) = app.rest(Method::GET, "/rest/databases", &token, None).await;
        assert_eq!(s, 401);
        assert!(v["meta"]["generalErrors"][0]
            .as_str()
            .unwrap()
            .contains("deleted"));
        let r = app
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &k.key_id),
                ("client_secret", &k.secret),
            ])
            .await;
        assert_eq!(r.status(), 401);
    }
);

both!(
    disabling_or_deleting_an_api_user_stops_its_keys_and_tokens_at_once,
    |app: TestApp| async move {
        app.org("acme").await;
        let k = app.api_user("acme", "bot", "lists:read").await;
        let auth = format!("Bearer {}", k.bearer);
        let r = app
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &k.key_id),
                ("client_secret", &k.secret),
            ])
            .await;
        let v: Value = r.json().await.unwrap();
        let token = v["access_token"].as_str().unwrap().to_string();

        admin::set_disabled(&app.cx(), "acme", "bot", true)
            .await
            .unwrap();
        assert_eq!(app.get_lists(&auth).await, 401);
        assert_eq!(app.get_lists(&basic("bot", &k.secret)).await, 401);
        assert_eq!(app.get_lists(&format!("Bearer {token}")).await, 401);
        admin::set_disabled(&app.cx(), "acme", "bot", false)
            .await
            .unwrap();
        assert_eq!(app.get_lists(&auth).await, 200);
        assert_eq!(app.audit_count("acme", "user.disabled").await, 1);

        admin::delete_user(&app.cx(), "acme", "bot").await.unwrap();
        assert_eq!(app.get_lists(&auth).await, 401);
        assert_eq!(app.get_lists(&format!("Bearer {token}")).await, 401);
        assert!(app
            .store
            .user_by_username(1, "bot")
            .await
            .unwrap()
            .is_none());
        match admin::set_disabled(&app.cx(), "acme", "admin", true).await {
            Err(admin::AdminError::Invalid(m)) => assert_eq!(
                m,
                "admin is the principal org admin of acme and cannot be disabled"
            ),
            other => panic!("the principal admin stays: {:?}", other.map(|u| u.disabled)),
        }
        let principal = app
            .store
            .user_by_username(1, "admin")
            .await
            .unwrap()
            .unwrap();
        assert!(!principal.disabled);
    }
);

both!(
    a_refused_basic_request_is_challenged_for_basic_too,
    |app: TestApp| async move {
        // RFC 7617 §2 / RFC 7235 §4.1: the scheme the client used is among the challenges.
        app.org("acme").await;
        let k = app.api_user("acme", "bot", "lists:read").await;
        let basic_challenge = "Basic realm=\"grantry\", charset=\"UTF-8\"";
        for auth in [basic("bot", "gsk_test-1_wrong"), "Basic !!!".to_string()] {
            let r = app
                .http
                .get(app.url("/rest/databases"))
                .header("authorization", &auth)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
            let ch = r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_string();
            assert!(
                ch.starts_with("Bearer realm=\"grantry\", error=\"invalid_token\""),
                "{ch}"
            );
            assert!(ch.ends_with(basic_challenge), "{ch}");
            let (s, _, ch) = app
                .xml_with(Some(&auth), "<Envelope><Body><GetLists/></Body></Envelope>")
                .await;
            assert_eq!(s, 401);
            assert!(ch.unwrap().ends_with(basic_challenge));
        }
        // A Bearer refusal stays a Bearer challenge alone; a Basic caller lacking a grant is
        // 403, which challenges for nothing new.
        let r = app
            .http
            .get(app.url("/rest/databases"))
            .bearer_auth("gat_test-1_unknownunknownunknownunknownunknownunkno")
            .send()
            .await
            .unwrap();
        assert!(!r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("Basic"));
        let r = app
            .http
            .post(app.url("/rest/databases"))
            .header("authorization", basic("bot", &k.secret))
            .json(&serde_json::json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert!(!r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("Basic"));
    }
);

both!(
    grant_changes_made_at_once_all_hold_and_org_admins_keep_every_grant,
    |app: TestApp| async move {
        app.org("acme").await;
        app.api_user("acme", "bot", "lists:read lists:write").await;
        let app = std::sync::Arc::new(app);
        let changes = [
            (Grant::ContactsRead, true),
            (Grant::ContactsWrite, true),
            (Grant::EventsWrite, true),
            (Grant::ListsRead, false),
            (Grant::ListsWrite, false),
        ];
        let tasks: Vec<_> = changes
            .into_iter()
            .map(|(g, on)| {
                let app = app.clone();
                tokio::spawn(async move {
                    admin::set_grant(&app.cx(), "acme", "bot", g, on)
                        .await
                        .unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let bot = app.store.user_by_username(1, "bot").await.unwrap().unwrap();
        assert_eq!(
            bot.grants.to_scope(),
            "contacts:read contacts:write events:write"
        );

        match admin::set_grant(&app.cx(), "acme", "admin", Grant::ListsRead, false).await {
            Err(admin::AdminError::Invalid(m)) => {
                assert!(m.contains("org admins hold every grant"), "{m}")
            }
            other => panic!("revoking from an org admin: {:?}", other.map(|u| u.grants)),
        }
        assert_eq!(app.audit_count("acme", "user.grant_revoked").await, 2);
    }
);
