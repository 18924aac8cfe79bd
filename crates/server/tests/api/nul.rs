//! Text a backend cannot store (a NUL character) is refused before any store call, on every
//! endpoint and admin operation, in the protocol's own format, and changes nothing.

use reqwest::Method;
use serde_json::{json, Value};

use grantry_core::admin::{self, AdminError, AppInput, UserInput};
use grantry_core::model::{Role, TokenFormat, UserKind};
use grantry_core::{Clock, GrantSet};

use crate::both;
use crate::harness::TestApp;

async fn form(app: &TestApp, path: &str, body: &str) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

both!(
    nul_in_a_token_endpoint_parameter_is_invalid_request,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let issued = app.audit_count("acme", "access_token.issued").await;
        let cases = [
            "grant_type=refresh_token&client_id=a%00b&client_secret=x&refresh_token=y".to_string(),
            format!(
                "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token=%00",
                i.client_id, i.client_secret
            ),
            "grant_type=client_credentials&client_id=%00&client_secret=x".to_string(),
            format!("grant_type=refresh_token&client_id={}&x%00=1", i.client_id),
        ];
        for body in cases {
            let (s, v) = form(&app, "/oauth/token", &body).await;
            assert_eq!(
                (s, v["error"].as_str()),
                (400, Some("invalid_request")),
                "{body}: {v}"
            );
            assert!(
                v["error_description"].as_str().unwrap().contains("NUL"),
                "{v}"
            );
        }
        for path in ["/oauth/introspect", "/oauth/revoke"] {
            let body = format!(
                "client_id={}&client_secret={}&token=a%00b",
                i.client_id, i.client_secret
            );
            let (s, v) = form(&app, path, &body).await;
            assert_eq!(
                (s, v["error"].as_str()),
                (400, Some("invalid_request")),
                "{path}"
            );
        }
        assert_eq!(app.audit_count("acme", "access_token.issued").await, issued);
        assert_eq!(app.audit_count("acme", "authentication.failed").await, 0);
    }
);

both!(
    nul_at_the_authorization_endpoint_is_rendered_and_the_login_refused,
    |app: TestApp| async move {
        app.org("acme").await;
        let r = app
            .browser()
            .get(app.url("/oauth/authorize?client_id=a%00b&response_type=code"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("NUL"));
        let (id, _) = app
            .client("acme", "Partner", "https://partner.example/cb", false)
            .await;
        let query = format!("response_type=code&client_id={id}");
        let r = app.post_login(&query, "ad\0min", "x").await;
        assert_eq!(r.status(), 401);
        assert!(r.headers().get("set-cookie").is_none());
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("Wrong username or password"));
        assert_eq!(app.audit_count("acme", "user.signed_in").await, 0);
    }
);

both!(
    nul_in_the_protected_apis_is_a_field_error,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let at = app.access_token(&i).await;
        let (s, v) = app
            .rest(
                Method::POST,
                "/rest/databases",
                &at,
                Some(json!({"name": "a\u{0}b"})),
            )
            .await;
        assert_eq!(s, 400, "{v}");
        assert!(v["meta"]["fieldErrors"]["name"]
            .as_str()
            .unwrap()
            .contains("NUL"));
        let (s, v) = app
            .rest(
                Method::POST,
                "/rest/databases",
                &at,
                Some(json!({"name": "News"})),
            )
            .await;
        assert_eq!(s, 201);
        let list = v["data"]["id"].as_i64().unwrap();
        let contacts = format!("/rest/databases/{list}/contacts");
        let (s, v) = app
            .rest(Method::GET, &format!("{contacts}?email=a%00b"), &at, None)
            .await;
        assert_eq!(s, 400, "{v}");
        assert!(v["meta"]["fieldErrors"]["email"].as_str().is_some(), "{v}");
        let (s, _) = app
            .rest(
                Method::POST,
                &contacts,
                &at,
                Some(json!({"email": "a\u{0}@b.example"})),
            )
            .await;
        assert_eq!(s, 400);
        let (s, v) = app
            .rest(
                Method::POST,
                &contacts,
                &at,
                Some(json!({"email": "ann@b.example"})),
            )
            .await;
        assert_eq!(s, 201);
        let one = format!("{contacts}/{}", v["data"]["id"]);
        let (s, _) = app
            .rest(
                Method::PATCH,
                &one,
                &at,
                Some(json!({"email": "b\u{0}@b.example"})),
            )
            .await;
        assert_eq!(s, 400);
        let (_, v) = app.rest(Method::GET, &one, &at, None).await;
        assert_eq!(v["data"]["email"], "ann@b.example", "nothing changed");
        let (_, v) = app.rest(Method::GET, "/rest/databases", &at, None).await;
        assert_eq!(
            v["meta"]["attributes"]["total"], 1,
            "only the valid list was made"
        );

        // The XML API refuses a character reference to U+0000 as invalid XML.
        let select = format!(
            "<Envelope><Body><SelectRecipientData><LIST_ID>{list}</LIST_ID>\
             <EMAIL>a&#0;b</EMAIL></SelectRecipientData></Body></Envelope>"
        );
        let (s, xml, _) = app.xml(Some(&at), &select).await;
        assert_eq!(s, 400, "{xml}");
        assert!(xml.contains("<errorid>51</errorid>"), "{xml}");
    }
);

both!(
    nul_in_an_event_is_an_invalid_field,
    |app: TestApp| async move {
        app.org("acme").await;
        let k = app.api_user("acme", "bot", "events:write").await;
        for body in [
            json!({"event-id": "e\u{0}1", "event-key": "k"}),
            json!({"event-id": "e1", "event-key": "k\u{0}"}),
        ] {
            let r = app
                .http
                .post(app.url("/campaignapi/resources/v3/events"))
                .header("authorization", format!("Bearer {}", k.bearer))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400);
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["code"], 1002, "{v}");
        }
        assert!(app.store.events(1).await.unwrap().is_empty());
    }
);

both!(
    nul_in_admin_input_is_refused_before_the_store,
    |app: TestApp| async move {
        app.org("acme").await;
        let cx = app.cx();
        let app_input = |name: &str, description: &str, uri: &str| AppInput {
            name: name.into(),
            description: description.into(),
            redirect_uris: vec![uri.into()],
            scopes: None,
            public: false,
            rotate_refresh_tokens: false,
            token_format: TokenFormat::Opaque,
        };
        for input in [
            app_input("a\0b", "", "https://a.example/cb"),
            app_input("ok", "d\0", "https://a.example/cb"),
            app_input("ok", "", "https://a.example/c\0b"),
        ] {
            let e = admin::add_application(&cx, "acme", input).await.err();
            assert!(matches!(e, Some(AdminError::Invalid(_))), "{e:?}");
        }
        let user = |username: &str, email: &str| UserInput {
            username: username.into(),
            email: email.into(),
            kind: UserKind::Ui,
            role: Role::User,
            grants: GrantSet::empty(),
            password: None,
        };
        for input in [user("a\0b", "a@b.example"), user("ab", "a\0@b.example")] {
            let e = admin::add_user(&cx, "acme", input).await.err();
            assert!(matches!(e, Some(AdminError::Invalid(_))), "{e:?}");
        }
        let e = admin::delete_user(&cx, "ac\0me", "admin").await.err();
        assert!(matches!(e, Some(AdminError::NotFound(_))), "{e:?}");
        let e = admin::delete_account_access(&cx, "acme", "c\0", "admin")
            .await
            .err();
        assert!(matches!(e, Some(AdminError::NotFound(_))), "{e:?}");
        let e = admin::set_disabled(&cx, "acme", "ad\0min", true)
            .await
            .err();
        assert!(matches!(e, Some(AdminError::NotFound(_))), "{e:?}");
        let org = app.store.org_by_name("acme").await.unwrap().unwrap();
        let events = app.store.audit_events(org.id, None).await.unwrap();
        assert_eq!(events.len(), 1, "only the org's creation: {events:?}");
        assert_eq!(app.clock.now(), crate::harness::START);
    }
);
