//! The admin API (`/admin/v1`, docs/architecture.md, the admin API): who may call it, each
//! resource's happy path and refusals in RFC 9457 form, `ETag`/`If-Match`, `Idempotency-Key`,
//! the audit records of its changes, and what the database holds afterwards.

use grantry_core::admin;
use grantry_core::model::Role;
use grantry_core::{Clock, Grant, GrantSet};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both;
use crate::harness::TestApp;

/// An admin API call with `Authorization: Bearer <bearer>`: status, headers, JSON body.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = app
        .http
        .request(method, app.url(&format!("/admin/v1{path}")))
        .header("authorization", format!("Bearer {bearer}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, headers, body)
}

/// The problem details of a refusal: checks the media type and fields; returns `type`'s name.
fn problem(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &Value,
    want: u16,
) -> String {
    assert_eq!(status.as_u16(), want, "{body}");
    assert_eq!(
        headers["content-type"], "application/problem+json",
        "{body}"
    );
    assert_eq!(body["status"], want);
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    let kind = body["type"].as_str().unwrap();
    kind.strip_prefix("/admin/v1/docs#problem-")
        .unwrap()
        .to_string()
}

/// A create sent twice under one idempotency key: both answered 201, the first with its
/// one-time `secret`, the second marked as a replay and without it. Both bodies.
async fn created_twice(
    app: &TestApp,
    path: &str,
    bearer: &str,
    body: Value,
    key: &str,
    secret: &str,
) -> (Value, Value) {
    let key = [("idempotency-key", key)];
    let (s, h, first) = call(app, Method::POST, path, bearer, Some(body.clone()), &key).await;
    assert_eq!(s, 201, "{first}");
    assert!(h.get("idempotent-replayed").is_none());
    assert!(first[secret].is_string(), "{first}");
    let (s, h, again) = call(app, Method::POST, path, bearer, Some(body), &key).await;
    assert_eq!(s, 201, "{again}");
    assert_eq!(h["idempotent-replayed"], "true");
    assert_eq!(
        again[secret],
        Value::Null,
        "a one-time secret is never shown twice"
    );
    (first, again)
}

/// Org `acme` with an API user holding `grants`; its bearer value.
async fn caller(app: &TestApp, grants: &str) -> String {
    app.org("acme").await;
    app.api_user("acme", "ops", grants).await.bearer
}

both!(
    the_admin_api_needs_a_credential_carrying_its_scopes,
    |app: TestApp| async move {
        let writer = caller(&app, "admin:read admin:write").await;
        let reader = app.api_user("acme", "auditor", "admin:read").await.bearer;
        let data = app.api_user("acme", "sync", "lists:read").await.bearer;

        let r = app
            .http
            .get(app.url("/admin/v1/applications"))
            .send()
            .await
            .unwrap();
        let (s, h) = (r.status(), r.headers().clone());
        let b: Value = r.json().await.unwrap();
        assert_eq!(problem(s, &h, &b, 401), "unauthenticated");
        assert!(h["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer realm=\"grantry\""));

        let (s, h, b) = call(&app, Method::GET, "/applications", "bogus", None, &[]).await;
        assert_eq!(problem(s, &h, &b, 401), "unauthenticated");

        let (s, h, b) = call(&app, Method::GET, "/applications", &data, None, &[]).await;
        assert_eq!(problem(s, &h, &b, 403), "forbidden");
        let challenge = h["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains("error=\"insufficient_scope\"")
                && challenge.contains("scope=\"admin:read\""),
            "{challenge}"
        );

        let (s, _, b) = call(&app, Method::GET, "/applications", &reader, None, &[]).await;
        assert_eq!(s, 200, "{b}");
        let new_app = json!({"name": "CRM sync"});
        let (s, h, b) = call(
            &app,
            Method::POST,
            "/applications",
            &reader,
            Some(new_app.clone()),
            &[],
        )
        .await;
        assert_eq!(problem(s, &h, &b, 403), "forbidden");
        assert!(h["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("scope=\"admin:write\""));
        assert!(admin::list_applications(&app.cx(), "acme")
            .await
            .unwrap()
            .is_empty());

        // Writing implies reading.
        let (s, _, b) = call(
            &app,
            Method::POST,
            "/applications",
            &writer,
            Some(new_app),
            &[],
        )
        .await;
        assert_eq!(s, 201, "{b}");
        let (s, _, b) = call(&app, Method::GET, "/applications", &writer, None, &[]).await;
        assert_eq!(
            (s.as_u16(), b["items"].as_array().unwrap().len()),
            (200, 1),
            "{b}"
        );
    }
);

both!(
    a_ui_user_who_is_not_an_org_admin_never_holds_the_admin_scopes,
    |app: TestApp| async move {
        let writer = caller(&app, "admin:write").await;
        let body = json!({"username": "carol", "email": "carol@acme.example.com", "kind": "ui", "grants": ["admin:read"]});
        let (s, h, b) = call(&app, Method::POST, "/users", &writer, Some(body), &[]).await;
        assert_eq!(problem(s, &h, &b, 422), "invalid");
        assert!(b["detail"].as_str().unwrap().contains("admin:read"), "{b}");
        assert!(admin::find_user(&app.cx(), "acme", "carol").await.is_err());
        // Stored for such a user all the same (the store does not check), the grant opens
        // nothing: their access token from an application with every scope is refused.
        app.ui_user("acme", "dave", Role::User, GrantSet::empty())
            .await;
        let dave = admin::find_user(&app.cx(), "acme", "dave").await.unwrap();
        let stored = grantry_core::store::NewAudit::new(
            None,
            app.clock.now(),
            "test",
            "user.grant_added",
            "user:dave",
        );
        app.store
            .set_user_grants(dave.id, GrantSet::all(), stored)
            .await
            .unwrap();
        let (client_id, client_secret) = app.app("acme", "Everything", Some(GrantSet::all())).await;
        let refresh_token = app.access("acme", &client_id, "dave").await;
        let i = crate::harness::Integration {
            client_id,
            client_secret,
            refresh_token,
        };
        let token = app.access_token(&i).await;
        let (s, h, b) = call(&app, Method::GET, "/org", &token, None, &[]).await;
        assert_eq!(problem(s, &h, &b, 403), "forbidden");
        assert_eq!(
            app.get_lists(&format!("Bearer {token}")).await,
            200,
            "the data grants still hold"
        );
        let e = admin::set_grant(&app.cx(), "acme", "dave", Grant::AdminWrite, true).await;
        assert!(matches!(e, Err(admin::AdminError::Invalid(_))));
    }
);

both!(
    an_org_admins_access_token_from_an_application_with_the_admin_scopes_opens_the_api,
    |app: TestApp| async move {
        app.org("acme").await;
        let all = GrantSet::all();
        let (client_id, client_secret) = app.app("acme", "Provisioner", Some(all)).await;
        let refresh_token = app.access("acme", &client_id, "admin").await;
        let i = crate::harness::Integration {
            client_id,
            client_secret,
            refresh_token,
        };
        let token = app.access_token(&i).await;
        let (s, _, b) = call(&app, Method::GET, "/org", &token, None, &[]).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["name"], "acme");
        // An application registered without a scope list gets the data APIs only.
        let plain = app.integration("other").await;
        let token = app.access_token(&plain).await;
        let (s, h, b) = call(&app, Method::GET, "/org", &token, None, &[]).await;
        assert_eq!(problem(s, &h, &b, 403), "forbidden");
    }
);

both!(
    applications_are_created_read_updated_under_if_match_and_deleted,
    |app: TestApp| async move {
        let w = caller(&app, "admin:read admin:write").await;
        let body = json!({"name": "CRM sync", "description": "nightly", "redirect_uris": ["https://crm.example.com/cb"], "scopes": ["lists:read", "contacts:read"]});
        let (s, h, b) = call(
            &app,
            Method::POST,
            "/applications",
            &w,
            Some(body),
            &[("x-request-id", "req-42")],
        )
        .await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(h["cache-control"], "no-store");
        let client_id = b["client_id"].as_str().unwrap().to_string();
        let secret = b["client_secret"].as_str().unwrap().to_string();
        assert_eq!(b["scopes"], json!(["lists:read", "contacts:read"]));
        assert_eq!(b["public"], false);
        // The secret works at the token endpoint, and the change is audited with the caller and the request.
        let r = app
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("client_secret", &secret),
            ])
            .await;
        assert_ne!(r.status(), 401);
        let events = admin::audit_log(&app.cx(), "acme", None).await.unwrap();
        let created = events
            .iter()
            .find(|e| e.action == "application.created")
            .unwrap();
        assert_eq!(created.actor, "ops");
        assert_eq!(created.detail["request_id"], "req-42");
        assert_eq!(created.target, format!("application:{client_id}"));

        let path = format!("/applications/{client_id}");
        let (s, h, b) = call(&app, Method::GET, &path, &w, None, &[]).await;
        assert_eq!(s, 200);
        assert!(b.get("client_secret").is_none(), "{b}");
        let etag = h["etag"].to_str().unwrap().to_string();
        assert!(etag.starts_with('"') && etag.ends_with('"'));

        let change =
            json!({"redirect_uris": ["https://crm.example.com/cb2"], "scopes": ["lists:read"]});
        let (s, h, b) = call(&app, Method::PATCH, &path, &w, Some(change.clone()), &[]).await;
        assert_eq!(problem(s, &h, &b, 428), "precondition-required");
        let (s, h, b) = call(
            &app,
            Method::PATCH,
            &path,
            &w,
            Some(change.clone()),
            &[("if-match", "\"not-it\"")],
        )
        .await;
        assert_eq!(problem(s, &h, &b, 412), "stale");
        let (s, h, b) = call(
            &app,
            Method::PATCH,
            &path,
            &w,
            Some(change.clone()),
            &[("if-match", &format!("W/{etag}"))],
        )
        .await;
        assert_eq!(problem(s, &h, &b, 412), "stale", "a weak tag never matches");
        let (s, h, b) = call(
            &app,
            Method::PATCH,
            &path,
            &w,
            Some(change.clone()),
            &[("if-match", &etag)],
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let new_etag = h["etag"].to_str().unwrap().to_string();
        assert_ne!(new_etag, etag);
        assert_eq!(b["redirect_uris"], json!(["https://crm.example.com/cb2"]));
        let stored = admin::find_application(&app.cx(), "acme", &client_id)
            .await
            .unwrap();
        assert_eq!(stored.redirect_uris, ["https://crm.example.com/cb2"]);
        assert_eq!(stored.scopes.names(), ["lists:read"]);
        assert_eq!(stored.description, "nightly");
        // A second admin holding the first ETag cannot overwrite the change.
        let other = json!({"name": "Overwritten"});
        let (s, h, b) = call(
            &app,
            Method::PATCH,
            &path,
            &w,
            Some(other),
            &[("if-match", &etag)],
        )
        .await;
        assert_eq!(problem(s, &h, &b, 412), "stale");
        assert_eq!(
            admin::find_application(&app.cx(), "acme", &client_id)
                .await
                .unwrap()
                .name,
            "CRM sync"
        );
        assert_eq!(app.audit_count("acme", "application.updated").await, 1);

        // Bad input changes nothing.
        for (bad, kind) in [
            (json!({"redirect_uris": ["javascript:alert(1)"]}), "invalid"),
            (json!({"scopes": ["bogus"]}), "invalid"),
            (json!({"scopes": []}), "invalid"),
            (json!({"nmae": "typo"}), "invalid-request"),
            (json!({"name": "a\u{0}b"}), "invalid"),
        ] {
            let (s, h, b) = call(
                &app,
                Method::PATCH,
                &path,
                &w,
                Some(bad.clone()),
                &[("if-match", &new_etag)],
            )
            .await;
            let want = if kind == "invalid" { 422 } else { 400 };
            assert_eq!(problem(s, &h, &b, want), kind, "{bad}");
        }
        assert_eq!(
            admin::find_application(&app.cx(), "acme", &client_id)
                .await
                .unwrap(),
            stored
        );

        let (s, _, b) = call(
            &app,
            Method::POST,
            &format!("{path}/secrets"),
            &w,
            Some(json!({"overlap_seconds": 60})),
            &[],
        )
        .await;
        assert_eq!(s, 201, "{b}");
        assert_ne!(b["client_secret"].as_str().unwrap(), secret);

        let (s, _, _) = call(&app, Method::DELETE, &path, &w, None, &[]).await;
        assert_eq!(s, 204);
        assert!(admin::find_application(&app.cx(), "acme", &client_id)
            .await
            .is_err());
        let (s, h, b) = call(&app, Method::DELETE, &path, &w, None, &[]).await;
        assert_eq!(problem(s, &h, &b, 404), "not-found");
    }
);

both!(
    a_create_retried_under_its_idempotency_key_makes_one_application,
    |app: TestApp| async move {
        let w = caller(&app, "admin:write").await;
        let body = json!({"name": "Billing"});
        let (first, again) = created_twice(
            &app,
            "/applications",
            &w,
            body,
            "6b1f0b5e-retry",
            "client_secret",
        )
        .await;
        assert_eq!(again["client_id"], first["client_id"]);
        let key = [("idempotency-key", "6b1f0b5e-retry")];
        assert_eq!(
            admin::list_applications(&app.cx(), "acme")
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(app.audit_count("acme", "application.created").await, 1);

        let (s, h, b) = call(
            &app,
            Method::POST,
            "/applications",
            &w,
            Some(json!({"name": "Other"})),
            &key,
        )
        .await;
        assert_eq!(problem(s, &h, &b, 422), "invalid");
        assert!(
            b["detail"].as_str().unwrap().contains("different request"),
            "{b}"
        );
        assert_eq!(
            admin::list_applications(&app.cx(), "acme")
                .await
                .unwrap()
                .len(),
            1
        );

        // Concurrent creates under one fresh key: one application, and every answer names it.
        let key = [("idempotency-key", "burst")];
        let body = json!({"name": "Burst"});
        let answers = futures::future::join_all((0..6).map(|_| {
            call(
                &app,
                Method::POST,
                "/applications",
                &w,
                Some(body.clone()),
                &key,
            )
        }))
        .await;
        let apps = admin::list_applications(&app.cx(), "acme").await.unwrap();
        let burst: Vec<_> = apps.iter().filter(|a| a.app.name == "Burst").collect();
        assert_eq!(burst.len(), 1);
        for (s, _, b) in answers {
            match s.as_u16() {
                201 => assert_eq!(b["client_id"], burst[0].app.client_id.as_str()),
                409 => assert!(
                    b["detail"].as_str().unwrap().contains("idempotency key"),
                    "{b}"
                ),
                other => panic!("{other}: {b}"),
            }
        }
        // The same key in another org is another key.
        app.org("beta").await;
        let beta = app.api_user("beta", "ops", "admin:write").await.bearer;
        let (s, _, b) = call(
            &app,
            Method::POST,
            "/applications",
            &beta,
            Some(json!({"name": "Billing"})),
            &[("idempotency-key", "6b1f0b5e-retry")],
        )
        .await;
        assert_eq!(s, 201, "{b}");
        assert!(b["client_secret"].is_string());
    }
);

both!(
    another_orgs_resources_are_not_found_and_untouched,
    |app: TestApp| async move {
        let w = caller(&app, "admin:read admin:write").await;
        app.org("beta").await;
        let (theirs, _) = app.app("beta", "Theirs", None).await;
        app.api_user("beta", "bot", "lists:read").await;
        let path = format!("/applications/{theirs}");
        for (method, path, body) in [
            (Method::GET, path.clone(), None),
            (Method::DELETE, path.clone(), None),
            (Method::POST, format!("{path}/secrets"), Some(json!({}))),
            (Method::GET, "/users/bot".to_string(), None),
            (Method::DELETE, "/users/bot".to_string(), None),
            (Method::POST, "/users/bot/keys".to_string(), None),
        ] {
            let (s, h, b) = call(&app, method.clone(), &path, &w, body, &[]).await;
            assert_eq!(problem(s, &h, &b, 404), "not-found", "{method} {path}");
        }
        let (s, h, b) = call(
            &app,
            Method::PATCH,
            &path,
            &w,
            Some(json!({"name": "x"})),
            &[("if-match", "*")],
        )
        .await;
        assert_eq!(problem(s, &h, &b, 404), "not-found");
        assert_eq!(
            admin::find_application(&app.cx(), "beta", &theirs)
                .await
                .unwrap()
                .name,
            "Theirs"
        );
        assert!(admin::find_user(&app.cx(), "beta", "bot").await.is_ok());
        let (_, _, b) = call(&app, Method::GET, "/applications", &w, None, &[]).await;
        assert_eq!(b["items"], json!([]));
    }
);

both!(
    users_and_their_keys_are_managed_through_the_api,
    |app: TestApp| async move {
        let w = caller(&app, "admin:read admin:write").await;
        let body = json!({"username": "etl", "email": "etl@acme.example.com", "kind": "api", "grants": ["lists:read"]});
        let (s, _, b) = call(
            &app,
            Method::POST,
            "/users",
            &w,
            Some(body),
            &[("idempotency-key", "u1")],
        )
        .await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(
            (
                b["kind"].as_str(),
                b["role"].as_str(),
                b["password"].clone()
            ),
            (Some("api"), Some("user"), Value::Null)
        );
        let (s, _, key) = call(&app, Method::POST, "/users/etl/keys", &w, None, &[]).await;
        assert_eq!(s, 201, "{key}");
        assert_eq!(key["slot"], 1);
        let bearer = format!("Bearer {}", key["bearer"].as_str().unwrap());
        assert_eq!(app.get_lists(&bearer).await, 200);

        let (_, h, _) = call(&app, Method::GET, "/users/etl", &w, None, &[]).await;
        let etag = h["etag"].to_str().unwrap().to_string();
        let (s, _, b) = call(
            &app,
            Method::PATCH,
            "/users/etl",
            &w,
            Some(json!({"grants": ["contacts:read"]})),
            &[("if-match", &etag)],
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["grants"], json!(["contacts:read"]));
        // Acts on the very next request.
        assert_eq!(app.get_lists(&bearer).await, 403);
        let (s, h, b) = call(
            &app,
            Method::PATCH,
            "/users/etl",
            &w,
            Some(json!({"role": "org_admin"})),
            &[("if-match", "*")],
        )
        .await;
        assert_eq!(problem(s, &h, &b, 422), "invalid");

        let (s, _, b) = call(&app, Method::POST, "/users/etl/disable", &w, None, &[]).await;
        assert_eq!((s.as_u16(), b["disabled"].clone()), (200, json!(true)));
        assert_eq!(app.get_lists(&bearer).await, 401);
        let (s, _, _) = call(&app, Method::POST, "/users/etl/enable", &w, None, &[]).await;
        assert_eq!(s, 200);
        let (s, _, b) = call(&app, Method::GET, "/users/etl/keys", &w, None, &[]).await;
        assert_eq!(s, 200);
        assert_eq!(b["keys"].as_array().unwrap().len(), 1);
        assert_eq!(b["key_id"], key["key_id"]);
        let (s, _, b) = call(&app, Method::DELETE, "/users/etl/keys/1", &w, None, &[]).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["deleted_slot"], 1);
        let (s, h, b) = call(&app, Method::DELETE, "/users/etl/keys/3", &w, None, &[]).await;
        assert_eq!(problem(s, &h, &b, 422), "invalid");

        // A UI user gets a generated one-time password, shown once.
        let body = json!({"username": "bob", "email": "bob@acme.example.com", "kind": "ui"});
        let (s, _, b) = call(&app, Method::POST, "/users", &w, Some(body), &[]).await;
        assert_eq!(s, 201, "{b}");
        assert!(b["password"].as_str().is_some_and(|p| p.len() >= 12));
        let (s, _, _) = call(&app, Method::DELETE, "/users/bob", &w, None, &[]).await;
        assert_eq!(s, 204);
        assert!(admin::find_user(&app.cx(), "acme", "bob").await.is_err());
        let (s, h, b) = call(&app, Method::DELETE, "/users/admin", &w, None, &[]).await;
        assert_eq!(
            problem(s, &h, &b, 422),
            "invalid",
            "the principal org admin stays"
        );

        let (_, _, page) = call(&app, Method::GET, "/users?limit=2", &w, None, &[]).await;
        let names: Vec<_> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].clone())
            .collect();
        assert_eq!(names, [json!("admin"), json!("etl")]);
        let cursor = page["next_cursor"].as_str().unwrap();
        let (_, _, page) = call(
            &app,
            Method::GET,
            &format!("/users?limit=2&cursor={cursor}"),
            &w,
            None,
            &[],
        )
        .await;
        let names: Vec<_> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].clone())
            .collect();
        assert_eq!(names, [json!("ops")]);
        assert_eq!(page["next_cursor"], Value::Null);
        let (s, h, b) = call(&app, Method::GET, "/users?cursor=!!", &w, None, &[]).await;
        assert_eq!(problem(s, &h, &b, 422), "invalid");
        let (s, h, b) = call(&app, Method::GET, "/users?limit=0", &w, None, &[]).await;
        assert_eq!(problem(s, &h, &b, 422), "invalid");
    }
);

both!(
    account_access_is_added_listed_and_deleted_through_the_api,
    |app: TestApp| async move {
        let w = caller(&app, "admin:read admin:write").await;
        let (client_id, client_secret) = app.app("acme", "Sync", None).await;
        let body = json!({"client_id": client_id, "username": "admin"});
        let (s, _, b) = call(
            &app,
            Method::POST,
            "/account-accesses",
            &w,
            Some(body.clone()),
            &[],
        )
        .await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(b["created_by"], "admin");
        let refresh_token = b["refresh_token"].as_str().unwrap().to_string();
        let i = crate::harness::Integration {
            client_id: client_id.clone(),
            client_secret,
            refresh_token,
        };
        assert_eq!(app.refresh(&i).await.status(), 200);
        let (s, h, b) = call(&app, Method::POST, "/account-accesses", &w, Some(body), &[]).await;
        assert_eq!(problem(s, &h, &b, 409), "conflict");
        let (s, h, b) = call(
            &app,
            Method::POST,
            "/account-accesses",
            &w,
            Some(json!({"client_id": client_id, "username": "ops"})),
            &[],
        )
        .await;
        assert_eq!(
            problem(s, &h, &b, 422),
            "invalid",
            "API users have their own keys"
        );

        let (_, _, page) = call(&app, Method::GET, "/account-accesses", &w, None, &[]).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        assert_eq!(page["items"][0]["username"], "admin");
        let (s, _, _) = call(
            &app,
            Method::DELETE,
            &format!("/account-accesses/{client_id}/admin"),
            &w,
            None,
            &[],
        )
        .await;
        assert_eq!(s, 204);
        assert_eq!(app.refresh(&i).await.status(), 400);
        let (_, _, page) = call(&app, Method::GET, "/account-accesses", &w, None, &[]).await;
        assert_eq!(page["items"], json!([]));
    }
);

both!(
    the_audit_log_is_filtered_and_paged_with_a_cursor,
    |app: TestApp| async move {
        let w = caller(&app, "admin:read admin:write").await;
        for n in 0..3 {
            let (s, _, _) = call(
                &app,
                Method::POST,
                "/applications",
                &w,
                Some(json!({"name": format!("App {n}")})),
                &[],
            )
            .await;
            assert_eq!(s, 201);
            app.advance(std::time::Duration::from_secs(1));
        }
        let (s, _, page) = call(
            &app,
            Method::GET,
            "/audit?action=application.&limit=2",
            &w,
            None,
            &[],
        )
        .await;
        assert_eq!(s, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["detail"]["name"], "App 2", "newest first");
        assert_eq!(items[0]["actor"], "ops");
        assert!(
            items[0]["detail"]["request_id"].is_string(),
            "every change names its request"
        );
        let cursor = page["next_cursor"].as_str().unwrap();
        let (_, _, page) = call(
            &app,
            Method::GET,
            &format!("/audit?action=application.&limit=2&cursor={cursor}"),
            &w,
            None,
            &[],
        )
        .await;
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["detail"]["name"], "App 0");
        assert_eq!(page["next_cursor"], Value::Null);
        let (_, _, page) = call(&app, Method::GET, "/audit?actor=nobody", &w, None, &[]).await;
        assert_eq!(page["items"], json!([]));
        for nul in ["actor=a%00b", "action=%00", "actor=%00&action=app%00"] {
            let (s, _, page) =
                call(&app, Method::GET, &format!("/audit?{nul}"), &w, None, &[]).await;
            assert_eq!(
                (s.as_u16(), page["items"].clone()),
                (200, json!([])),
                "{nul}"
            );
        }
        let (s, h, b) = call(&app, Method::GET, "/audit?from=yesterday", &w, None, &[]).await;
        assert_eq!(problem(s, &h, &b, 422), "invalid");
    }
);

both!(
    requests_the_api_cannot_read_are_problem_details,
    |app: TestApp| async move {
        let w = caller(&app, "admin:read admin:write").await;
        let send = |method: Method, path: &str, ct: Option<&str>, body: &'static str| {
            let mut req = app
                .http
                .request(method, app.url(path))
                .header("authorization", format!("Bearer {w}"))
                .body(body);
            if let Some(ct) = ct {
                req = req.header("content-type", ct);
            }
            req.send()
        };
        for (method, path, ct, body, want, kind) in [
            (
                Method::POST,
                "/admin/v1/applications",
                Some("application/json"),
                "{not json",
                400,
                "invalid-request",
            ),
            (
                Method::POST,
                "/admin/v1/applications",
                Some("text/plain"),
                "{}",
                415,
                "unsupported-media-type",
            ),
            (
                Method::POST,
                "/admin/v1/applications",
                None,
                "{}",
                415,
                "unsupported-media-type",
            ),
            (
                Method::GET,
                "/admin/v1/nothing-here",
                None,
                "",
                404,
                "not-found",
            ),
            (
                Method::PUT,
                "/admin/v1/applications",
                None,
                "",
                405,
                "method-not-allowed",
            ),
            (
                Method::GET,
                "/admin/v1/users?limit=x",
                None,
                "",
                400,
                "invalid-request",
            ),
            (
                Method::GET,
                "/admin/v1/users/%FF",
                None,
                "",
                400,
                "invalid-request",
            ),
        ] {
            let r = send(method.clone(), path, ct, body).await.unwrap();
            let (s, h) = (r.status(), r.headers().clone());
            let b: Value = r.json().await.unwrap();
            assert_eq!(problem(s, &h, &b, want), kind, "{method} {path}");
        }
        let big = format!("{{\"name\": \"{}\"}}", "x".repeat(70 * 1024));
        let r = app
            .http
            .post(app.url("/admin/v1/applications"))
            .header("authorization", format!("Bearer {w}"))
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .unwrap();
        let (s, h) = (r.status(), r.headers().clone());
        let b: Value = r.json().await.unwrap();
        assert_eq!(problem(s, &h, &b, 413), "too-large");
        assert!(admin::list_applications(&app.cx(), "acme")
            .await
            .unwrap()
            .is_empty());
        let (s, h, b) = call(
            &app,
            Method::POST,
            "/applications",
            &w,
            Some(json!({"name": "x"})),
            &[("idempotency-key", "")],
        )
        .await;
        assert_eq!(problem(s, &h, &b, 422), "invalid");
    }
);

both!(
    the_openapi_document_and_its_reference_page_are_served,
    |app: TestApp| async move {
        let r = app
            .http
            .get(app.url("/admin/v1/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/json");
        let doc: Value = r.json().await.unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"]["/admin/v1/applications/{client_id}"]["patch"].is_object());
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        let r = app
            .http
            .get(app.url("/admin/v1/docs"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
        let html = r.text().await.unwrap();
        assert!(html.contains("/admin/v1/applications/{client_id}"));
        assert!(html.contains("id=\"problem-stale\""));
    }
);

both!(
    one_grant_is_given_and_taken_in_place_without_if_match,
    |app: TestApp| async move {
        let w = caller(&app, "admin:write").await;
        app.api_user("acme", "etl", "lists:read").await;
        let (s, _, b) = call(
            &app,
            Method::PUT,
            "/users/etl/grants/contacts:read",
            &w,
            None,
            &[],
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["grants"], json!(["lists:read", "contacts:read"]));
        let (s, _, b) = call(
            &app,
            Method::DELETE,
            "/users/etl/grants/lists:read",
            &w,
            None,
            &[],
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["grants"], json!(["contacts:read"]));
        let held = admin::find_user(&app.cx(), "acme", "etl")
            .await
            .unwrap()
            .grants;
        assert_eq!(held.names(), ["contacts:read"]);
        assert_eq!(app.audit_count("acme", "user.grant_added").await, 1);
        assert_eq!(app.audit_count("acme", "user.grant_revoked").await, 1);
        let (s, h, b) = call(&app, Method::PUT, "/users/etl/grants/bogus", &w, None, &[]).await;
        assert_eq!(problem(s, &h, &b, 422), "invalid");
        let (s, h, b) = call(
            &app,
            Method::DELETE,
            "/users/admin/grants/lists:read",
            &w,
            None,
            &[],
        )
        .await;
        assert_eq!(
            problem(s, &h, &b, 422),
            "invalid",
            "org admins hold every grant"
        );
    }
);

both!(
    only_the_operator_token_creates_organizations,
    |app: TestApp| async move {
        let body = json!({"name": "newco", "admin": "nina", "email": "nina@newco.example.com"});
        // Without an operator token configured, nobody can.
        let w = caller(&app, "admin:read admin:write").await;
        let (s, h, b) = call(&app, Method::POST, "/orgs", &w, Some(body.clone()), &[]).await;
        assert_eq!(problem(s, &h, &b, 401), "unauthenticated");
        assert!(
            b["detail"]
                .as_str()
                .unwrap()
                .contains("admin.operator_token_sha256"),
            "{b}"
        );

        let token = "gop_local_operator-secret-for-tests";
        let app = app
            .restarted_with(|state| {
                state.with_operator_token(grantry_core::credential::Digest::of(token))
            })
            .await;
        // An org admin's credential is not the operator's.
        let (s, h, b) = call(&app, Method::POST, "/orgs", &w, Some(body.clone()), &[]).await;
        assert_eq!(problem(s, &h, &b, 401), "unauthenticated");
        assert!(admin::find_user(&app.cx(), "newco", "nina").await.is_err());
        let (s, _, b) = call(&app, Method::POST, "/orgs", token, Some(body.clone()), &[]).await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(
            (b["org"].as_str(), b["admin"].as_str()),
            (Some("newco"), Some("nina"))
        );
        assert!(b["password"].as_str().is_some_and(|p| p.len() >= 12));
        let nina = admin::find_user(&app.cx(), "newco", "nina").await.unwrap();
        assert!(nina.principal && nina.role == Role::OrgAdmin);
        let events = admin::audit_log(&app.cx(), "newco", None).await.unwrap();
        assert_eq!(events[0].actor, "operator");
        let (s, h, b) = call(&app, Method::POST, "/orgs", token, Some(body), &[]).await;
        assert_eq!(problem(s, &h, &b, 409), "conflict");
        // The operator token opens nothing else.
        let (s, h, b) = call(&app, Method::GET, "/applications", token, None, &[]).await;
        assert_eq!(problem(s, &h, &b, 401), "unauthenticated");
        // Guessing at it is limited like any secret.
        let mut last = 0;
        for n in 0..40 {
            let (s, _, _) = call(
                &app,
                Method::POST,
                "/orgs",
                &format!("gop_local_guess{n}"),
                Some(json!({"name": "x", "admin": "y", "email": "y@x.example.com"})),
                &[],
            )
            .await;
            last = s.as_u16();
            if last == 429 {
                break;
            }
        }
        assert_eq!(last, 429);
    }
);

both!(
    every_operation_in_the_document_refuses_a_credential_without_its_scope,
    |app: TestApp| async move {
        app.org("acme").await;
        let reader = app.api_user("acme", "auditor", "admin:read").await.bearer;
        let data = app
            .api_user("acme", "sync", "lists:read lists:write contacts:read")
            .await
            .bearer;
        let (client_id, _) = app.app("acme", "Sync", None).await;
        app.api_user("acme", "etl", "lists:read").await;
        let before = admin::audit_log(&app.cx(), "acme", None)
            .await
            .unwrap()
            .len();
        let doc: Value = app
            .http
            .get(app.url("/admin/v1/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut seen = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            if path == "/admin/v1/orgs" {
                continue;
            }
            for (method, op) in item.as_object().unwrap() {
                let scope = op["security"][0]["bearer"][0].as_str().unwrap();
                let concrete = path
                    .strip_prefix("/admin/v1")
                    .unwrap()
                    .replace("{client_id}", &client_id)
                    .replace("{username}", "etl")
                    .replace("{slot}", "1")
                    .replace("{grant}", "contacts:read");
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let body =
                    matches!(m, Method::POST | Method::PATCH | Method::PUT).then(|| json!({}));
                let mut refused_by = vec![&data];
                if scope == "admin:write" {
                    refused_by.push(&reader);
                }
                for bearer in refused_by {
                    let (s, h, b) = call(
                        &app,
                        m.clone(),
                        &concrete,
                        bearer,
                        body.clone(),
                        &[("if-match", "*")],
                    )
                    .await;
                    assert_eq!(problem(s, &h, &b, 403), "forbidden", "{method} {path}");
                    let challenge = h["www-authenticate"].to_str().unwrap();
                    assert!(
                        challenge.contains(&format!("scope=\"{scope}\"")),
                        "{method} {path}: {challenge}"
                    );
                }
                seen += 1;
            }
        }
        assert_eq!(seen, 23);
        // Nothing was changed or recorded by any of them.
        assert_eq!(
            admin::audit_log(&app.cx(), "acme", None)
                .await
                .unwrap()
                .len(),
            before
        );
        assert!(admin::find_application(&app.cx(), "acme", &client_id)
            .await
            .is_ok());
        let etl = admin::find_user(&app.cx(), "acme", "etl").await.unwrap();
        assert_eq!(
            (etl.grants.names(), etl.disabled),
            (vec!["lists:read"], false)
        );
    }
);

both!(
    users_and_account_accesses_are_created_once_per_key_and_updated_only_as_read,
    |app: TestApp| async move {
        let w = caller(&app, "admin:read admin:write").await;
        let body = json!({"username": "bob", "email": "bob@acme.example.com", "kind": "ui"});
        let (_, again) = created_twice(&app, "/users", &w, body, "bob-1", "password").await;
        assert_eq!(again["username"], "bob");
        assert_eq!(
            app.audit_count("acme", "user.created").await,
            2,
            "ops and bob, once each"
        );

        let (client_id, _) = app.app("acme", "Sync", None).await;
        let body = json!({"client_id": client_id, "username": "bob"});
        let (first, again) = created_twice(
            &app,
            "/account-accesses",
            &w,
            body,
            "bob-sync",
            "refresh_token",
        )
        .await;
        assert_eq!(again["client_id"], first["client_id"]);
        assert_eq!(app.audit_count("acme", "account_access.created").await, 1);
        let by = json!({"client_id": client_id, "username": "admin", "by": "someone"});
        let (s, h, b) = call(&app, Method::POST, "/account-accesses", &w, Some(by), &[]).await;
        assert_eq!(problem(s, &h, &b, 422), "invalid");
        assert_eq!(app.audit_count("acme", "account_access.created").await, 1);

        // A user changed since it was read is not overwritten.
        let (_, h, _) = call(&app, Method::GET, "/users/bob", &w, None, &[]).await;
        let etag = h["etag"].to_str().unwrap().to_string();
        let (s, _, _) = call(
            &app,
            Method::PUT,
            "/users/bob/grants/lists:read",
            &w,
            None,
            &[],
        )
        .await;
        assert_eq!(s, 200);
        let (s, h, b) = call(
            &app,
            Method::PATCH,
            "/users/bob",
            &w,
            Some(json!({"grants": []})),
            &[("if-match", &etag)],
        )
        .await;
        assert_eq!(problem(s, &h, &b, 412), "stale");
        let bob = admin::find_user(&app.cx(), "acme", "bob").await.unwrap();
        assert_eq!(bob.grants.names(), ["lists:read"]);

        // Another org's account access is not found, and stays.
        app.org("beta").await;
        let (theirs, _) = app.app("beta", "Theirs", None).await;
        app.access("beta", &theirs, "admin").await;
        let (s, h, b) = call(
            &app,
            Method::DELETE,
            &format!("/account-accesses/{theirs}/admin"),
            &w,
            None,
            &[],
        )
        .await;
        assert_eq!(problem(s, &h, &b, 404), "not-found");
        assert_eq!(
            admin::list_account_access(&app.cx(), "beta")
                .await
                .unwrap()
                .len(),
            1
        );
    }
);
