//! Credentials on the protected APIs (docs/architecture.md, ways to authenticate, RFC 6750), revocation by deleting the
//! account access, and the account-access e-mail.

use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::Value;

use grantry_core::admin;
use grantry_core::model::Role;
use grantry_core::GrantSet;

use crate::both;
use crate::harness::TestApp;

const GET_LISTS: &str =
    "<Envelope><Body><GetLists><VISIBILITY>1</VISIBILITY></GetLists></Body></Envelope>";

async fn get_json(app: &TestApp, path: &str) -> Value {
    let r = app.http.get(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// Introspection or revocation of `token`, the caller authenticating with HTTP Basic.
async fn token_query(
    app: &TestApp,
    path: &str,
    id: &str,
    secret: &str,
    token: &str,
) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

async fn rest_raw(app: &TestApp, auth: Option<&str>) -> (u16, Option<String>, Value) {
    let mut req = app.http.get(app.url("/rest/databases"));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let r = req.send().await.unwrap();
    let ch = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), ch, r.json().await.unwrap())
}

both!(
    bad_credentials_get_401_with_bearer_challenge,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let _ = app.access_token(&i).await;

        // No credential at all: a bare challenge (RFC 6750 §3.1).
        let (s, ch, body) = rest_raw(&app, None).await;
        assert_eq!(s, 401);
        assert_eq!(ch.as_deref(), Some("Bearer realm=\"grantry\""));
        assert!(body["meta"]["generalErrors"][0]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer"));

        for (auth, expect) in [
            (
                "Bearer gat_test-1_unknownunknownunknownunknownunknownunkno",
                "unknown",
            ),
            ("Bearer nonsense", "unknown"),
            ("Bearer ", "empty"),
            ("Token abc", "scheme"),
            (
                "Bearer gat_us-9_unknownunknownunknownunknownunknownunkno",
                "pod us-9",
            ),
            (&format!("Bearer {}", i.refresh_token), "refresh token"),
        ] {
            let (s, ch, body) = rest_raw(&app, Some(auth)).await;
            assert_eq!(s, 401, "{auth}");
            let ch = ch.unwrap();
            assert!(
                ch.starts_with(
                    "Bearer realm=\"grantry\", error=\"invalid_token\", error_description=\""
                ),
                "{ch}"
            );
            assert!(
                body["meta"]["generalErrors"][0]
                    .as_str()
                    .unwrap()
                    .contains(expect),
                "{auth}: {body}"
            );

            // The XML API refuses the same credential, in its own format.
            let (s, xml, ch) = app.xml_with(Some(auth), GET_LISTS).await;
            assert_eq!(s, 401, "{auth}: {xml}");
            let ch = ch.unwrap();
            assert!(
                ch.starts_with("Bearer realm=\"grantry\", error=\"invalid_token\""),
                "{auth}: {ch}"
            );
            assert!(xml.contains("<errorid>145</errorid>"), "{xml}");
            assert!(
                xml.contains("<FaultString>Session expired or invalid: ") && xml.contains(expect),
                "{auth}: {xml}"
            );
        }
        let (s, xml, ch) = app
            .xml(
                Some("gat_test-1_unknownunknownunknownunknownunknownunkno"),
                GET_LISTS,
            )
            .await;
        assert_eq!(s, 401);
        assert!(ch.unwrap().contains("error=\"invalid_token\""));
        assert!(
            xml.contains("<SUCCESS>false</SUCCESS>") && xml.contains("<errorid>145</errorid>"),
            "{xml}"
        );
    }
);

both!(
    credentials_of_another_pod_are_refused_everywhere,
    |app: TestApp| async move {
        // Real credentials, minted and stored by a deployment of pod eu-1 on the same data.
        let eu = app.other_pod("eu-1").await;
        let i = eu.integration("acme").await;
        let key = eu.api_user("acme", "bot", "lists:read").await;
        let at = eu.access_token(&i).await;
        assert!(i.refresh_token.starts_with("grt_eu-1_") && at.starts_with("gat_eu-1_"));
        assert!(i.client_secret.starts_with("gcs_eu-1_"));
        assert_eq!(
            eu.get_lists(&format!("Bearer {at}")).await,
            200,
            "valid on its own pod"
        );

        // Each refusal names the pod, with its name and URL from the pods table.
        let named = |what: &str| {
            assert!(
                what.contains("pod eu-1 (EU 1) at https://api-eu-1.example.com"),
                "{what}"
            );
        };
        for auth in [format!("Bearer {at}"), format!("Bearer {}", key.bearer)] {
            let (s, ch, body) = rest_raw(&app, Some(&auth)).await;
            assert_eq!(s, 401, "{auth}");
            assert!(ch.unwrap().contains("error=\"invalid_token\""));
            named(body["meta"]["generalErrors"][0].as_str().unwrap());
            let (s, xml, _) = app.xml_with(Some(&auth), GET_LISTS).await;
            assert_eq!(s, 401);
            assert!(xml.contains("<errorid>145</errorid>"));
            named(&xml);
            let r = app
                .http
                .post(app.url("/campaignapi/resources/v3/events"))
                .header("authorization", &auth)
                .json(&serde_json::json!({"event-id": "signup", "event-key": "a@example.com"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
            assert!(r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token"));
            let v: Value = r.json().await.unwrap();
            named(v["description"].as_str().unwrap());
        }

        // The token endpoint: another pod's client secret is refused before any lookup...
        let r = app.refresh(&i).await;
        assert_eq!(r.status(), 401);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_client");
        named(v["error_description"].as_str().unwrap());
        // ...and so is its refresh token presented by a client of this pod (RFC 6749 §5.2:
        // a grant is invalid_grant).
        let (local_id, local_secret) = app.app("acme", "Local", None).await;
        let r = app
            .token(&[
                ("grant_type", "refresh_token"),
                ("client_id", &local_id),
                ("client_secret", &local_secret),
                ("refresh_token", &i.refresh_token),
            ])
            .await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_grant");
        named(v["error_description"].as_str().unwrap());
        let r = app
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &key.key_id),
                ("client_secret", &key.secret),
            ])
            .await;
        assert_eq!(r.status(), 401);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_client");
        named(v["error_description"].as_str().unwrap());

        // Introspection and revocation: a caller authenticating with another pod's client
        // secret or secret key is refused naming it.
        for path in ["/oauth/introspect", "/oauth/revoke"] {
            for (id, secret) in [(&i.client_id, &i.client_secret), (&key.key_id, &key.secret)] {
                let r = token_query(&app, path, id, secret, &at).await;
                assert_eq!(r.status(), 401, "{path}");
                assert!(r.headers().contains_key("www-authenticate"));
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["error"], "invalid_client");
                named(v["error_description"].as_str().unwrap());
            }
        }
        // A client of this pod asking about another pod's token learns only that it is not
        // active here (RFC 7662 §2.2), and revoking it is a no-op (RFC 7009 §2.2).
        let r = token_query(&app, "/oauth/introspect", &local_id, &local_secret, &at).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            serde_json::json!({"active": false})
        );
        assert_eq!(
            eu.get_lists(&format!("Bearer {at}")).await,
            200,
            "still valid on its own pod"
        );

        // The pods table, and the metadata naming this pod.
        let v: Value = get_json(&app, "/pods").await;
        assert_eq!(v["pod"], "test-1");
        assert_eq!(
            v["pods"],
            serde_json::json!([
                {"id": "test-1", "name": "test-1", "url": app.settings.issuer()},
                {"id": "eu-1", "name": "EU 1", "url": "https://api-eu-1.example.com"},
            ])
        );
        let m: Value = get_json(&app, "/.well-known/oauth-authorization-server").await;
        assert_eq!(
            m["pod"],
            serde_json::json!({"id": "test-1", "name": "test-1"})
        );
        assert_eq!(
            m["pods_endpoint"],
            format!("{}/pods", app.settings.issuer())
        );
    }
);

both!(
    deleting_account_access_revokes_refresh_and_access_tokens_at_once,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let at = app.access_token(&i).await;
        let (s, _) = app.rest(Method::GET, "/rest/databases", &at, None).await;
        assert_eq!(s, 200);
        let listed = admin::list_account_access(&app.cx(), "acme").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].created_by.as_deref(), Some("admin"));

        admin::delete_account_access(&app.cx(), "acme", &i.client_id, "admin")
            .await
            .unwrap();
        assert!(admin::list_account_access(&app.cx(), "acme")
            .await
            .unwrap()
            .is_empty());

        let (s, body) = app.rest(Method::GET, "/rest/databases", &at, None).await;
        assert_eq!(s, 401);
        assert!(body["meta"]["generalErrors"][0]
            .as_str()
            .unwrap()
            .contains("revoked"));
        let (s, xml, _) = app.xml(Some(&at), GET_LISTS).await;
        assert_eq!(s, 401);
        assert!(xml.contains("revoked"));
        let r = app.refresh(&i).await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_grant");
        assert_eq!(app.audit_count("acme", "account_access.deleted").await, 1);

        // Deleting again says there is nothing to delete; adding anew gives a new refresh token.
        match admin::delete_account_access(&app.cx(), "acme", &i.client_id, "admin").await {
            Err(admin::AdminError::NotFound(m)) => assert_eq!(
                m,
                format!(
                    "admin has no account access for application {}",
                    i.client_id
                )
            ),
            other => panic!("deleting twice: {other:?}"),
        }
        let fresh = app.access("acme", &i.client_id, "admin").await;
        assert_ne!(fresh, i.refresh_token);
    }
);

both!(
    account_access_mails_the_refresh_token_to_creator_and_principal_admin,
    |app: TestApp| async move {
        app.org("acme").await;
        app.ui_user("acme", "ops", Role::OrgAdmin, GrantSet::empty())
            .await;
        app.ui_user(
            "acme",
            "worker",
            Role::User,
            GrantSet::parse_scope("lists:read").unwrap(),
        )
        .await;
        let (cid, _) = app.app("acme", "Sync", None).await;
        let added =
            admin::add_account_access(&app.cx(), &*app.outbox, "acme", &cid, "worker", "ops")
                .await
                .unwrap();
        let sent = app.outbox.0.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        let to: Vec<_> = sent[0].to.iter().map(|(_, a)| a.as_str()).collect();
        assert_eq!(to, ["ops@acme.example.com", "admin@acme.example.com"]);
        assert!(sent[0].body.contains(added.refresh_token.expose_secret()));
        assert!(sent[0].body.contains(&cid));

        // Only org admins add account access, and only for UI users.
        match admin::add_account_access(&app.cx(), &*app.outbox, "acme", &cid, "admin", "worker")
            .await
        {
            Err(admin::AdminError::Invalid(m)) => assert_eq!(
                m,
                "worker is not an org admin of acme; account access is added by an org admin"
            ),
            other => panic!("added by a user: {:?}", other.map(|a| a.access)),
        }
        app.api_user("acme", "bot", "lists:read").await;
        match admin::add_account_access(&app.cx(), &*app.outbox, "acme", &cid, "bot", "ops").await {
            Err(admin::AdminError::Invalid(m)) => {
                assert!(
                    m.starts_with(
                        "bot is an API user; API users call APIs with their own secret keys"
                    ),
                    "{m}"
                )
            }
            other => panic!("added for an API user: {:?}", other.map(|a| a.access)),
        }
        assert_eq!(
            app.outbox.0.lock().unwrap().len(),
            1,
            "no mail for refused access"
        );
    }
);

both!(
    effective_grants_are_app_scopes_intersected_with_user_grants,
    |app: TestApp| async move {
        app.org("acme").await;
        app.ui_user(
            "acme",
            "reader",
            Role::User,
            GrantSet::parse_scope("lists:read contacts:read").unwrap(),
        )
        .await;
        let (cid, secret) = app
            .app(
                "acme",
                "Sync",
                Some(GrantSet::parse_scope("lists:read lists:write").unwrap()),
            )
            .await;
        let rt = app.access("acme", &cid, "reader").await;
        let r = app
            .token(&[
                ("grant_type", "refresh_token"),
                ("client_id", &cid),
                ("client_secret", &secret),
                ("refresh_token", &rt),
            ])
            .await;
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["scope"], "lists:read");
        let at = v["access_token"].as_str().unwrap();
        let (s, _) = app.rest(Method::GET, "/rest/databases", at, None).await;
        assert_eq!(s, 200);
        let r = app
            .http
            .post(app.url("/rest/databases"))
            .bearer_auth(at)
            .json(&serde_json::json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let ch = r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            ch.contains("error=\"insufficient_scope\"") && ch.contains("scope=\"lists:write\""),
            "{ch}"
        );

        // Taking the grant away from the user takes effect on the next request.
        admin::set_grant(
            &app.cx(),
            "acme",
            "reader",
            grantry_core::Grant::ListsRead,
            false,
        )
        .await
        .unwrap();
        let (s, body) = app.rest(Method::GET, "/rest/databases", at, None).await;
        assert_eq!(s, 403);
        assert!(body["meta"]["generalErrors"][0]
            .as_str()
            .unwrap()
            .contains("lists:read"));
    }
);

both!(
    first_use_of_an_access_token_is_audited_once,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let at = app.access_token(&i).await;
        for _ in 0..3 {
            let (s, _) = app.rest(Method::GET, "/rest/databases", &at, None).await;
            assert_eq!(s, 200);
        }
        assert_eq!(app.audit_count("acme", "access_token.first_used").await, 1);
    }
);

both!(health_and_readiness, |app: TestApp| async move {
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
});
