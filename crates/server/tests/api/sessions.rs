//! XML API `Login` sessions: `Login`, calls on `;jsessionid=` and the `JSESSIONID` cookie,
//! `Logout`, the idle rule, the per-org cap, refused logins and ended sessions.

use std::time::Duration;

use grantry_core::admin;
use grantry_core::GrantSet;

use crate::both;
use crate::harness::*;

const GET_LISTS: &str = "<Envelope><Body><GetLists/></Body></Envelope>";
const LOGOUT: &str = "<Envelope><Body><Logout/></Body></Envelope>";

fn login_body(username: &str, password: &str) -> String {
    format!(
        "<Envelope><Body><Login><USERNAME>{username}</USERNAME><PASSWORD>{password}</PASSWORD>\
         </Login></Body></Envelope>"
    )
}

/// `POST path` with an XML body and optional cookie: status, body, headers.
async fn post(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    body: &str,
) -> (u16, String, reqwest::header::HeaderMap) {
    let mut req = app
        .http
        .post(app.url(path))
        .header("content-type", "text/xml;charset=utf-8")
        .body(body.to_string());
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.text().await.unwrap(), headers)
}

fn between<'a>(body: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body
        .find(&open)
        .unwrap_or_else(|| panic!("no {tag} in {body}"))
        + open.len();
    let end = body[start..].find(&close).unwrap() + start;
    &body[start..end]
}

/// Logs in; the session id.
async fn login(app: &TestApp, username: &str, secret: &str) -> String {
    let (s, b, _) = post(app, "/XMLAPI", None, &login_body(username, secret)).await;
    assert_eq!(s, 200, "{b}");
    between(&b, "SESSIONID").to_string()
}

async fn on_session(app: &TestApp, id: &str, body: &str) -> (u16, String) {
    let (s, b, _) = post(app, &format!("/XMLAPI;jsessionid={id}"), None, body).await;
    (s, b)
}

fn errorid(body: &str) -> &str {
    between(body, "errorid")
}

both!(
    login_opens_a_session_used_by_path_and_cookie_until_logout,
    |app: TestApp| async move {
        app.org("acme").await;
        let k = app.api_user("acme", "feeder", "lists:read").await;
        let (s, b, _) = post(&app, "/XMLAPI", None, &login_body("feeder", &k.secret)).await;
        assert_eq!(s, 200, "{b}");
        assert!(b.contains("<SUCCESS>TRUE</SUCCESS>"), "{b}");
        let id = between(&b, "SESSIONID").to_string();
        assert!(id.starts_with("gxs_test-1_"), "{id}");
        assert_eq!(between(&b, "SESSION_ENCODING"), format!(";jsessionid={id}"));
        assert!(between(&b, "ORGANIZATION_ID").parse::<i64>().is_ok(), "{b}");
        assert_eq!(app.audit_count("acme", "xml_session.started").await, 1);

        let (s, b) = on_session(&app, &id, GET_LISTS).await;
        assert_eq!(s, 200, "{b}");
        assert!(b.contains("<SUCCESS>TRUE</SUCCESS>"), "{b}");
        let cookie = format!("JSESSIONID={id}");
        let (s, b, _) = post(&app, "/XMLAPI", Some(&cookie), GET_LISTS).await;
        assert_eq!(s, 200, "{b}");

        let (s, b) = on_session(&app, &id, LOGOUT).await;
        assert_eq!(s, 200, "{b}");
        assert!(b.contains("<SUCCESS>TRUE</SUCCESS>"), "{b}");
        assert_eq!(app.audit_count("acme", "xml_session.ended").await, 1);
        let (s, b) = on_session(&app, &id, GET_LISTS).await;
        assert_eq!((s, errorid(&b)), (401, "145"), "{b}");
        let (s, b, h) = post(&app, "/XMLAPI", Some(&cookie), GET_LISTS).await;
        assert_eq!((s, errorid(&b)), (401, "145"), "{b}");
        assert!(h["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
        // Logout naming no session.
        let (s, b, _) = post(&app, "/XMLAPI", None, LOGOUT).await;
        assert_eq!((s, errorid(&b)), (401, "145"), "{b}");
    }
);

both!(
    a_session_acts_with_the_users_grants_at_each_call,
    |app: TestApp| async move {
        app.org("acme").await;
        let k = app.api_user("acme", "feeder", "lists:read").await;
        let id = login(&app, "feeder", &k.secret).await;
        let add = "<Envelope><Body><AddRecipient><LIST_ID>1</LIST_ID><COLUMN><NAME>EMAIL</NAME>\
               <VALUE>a@b.example</VALUE></COLUMN></AddRecipient></Body></Envelope>";
        let (s, b) = on_session(&app, &id, add).await;
        assert_eq!((s, errorid(&b)), (403, "146"), "{b}");
        // A grant taken away applies to the next call.
        let org = app.store.org_by_name("acme").await.unwrap().unwrap();
        let user = app
            .store
            .user_by_username(org.id, "feeder")
            .await
            .unwrap()
            .unwrap();
        let audit =
            grantry_core::store::NewAudit::new(Some(org.id), START, "test", "user.grants", "x");
        app.store
            .set_user_grants(
                user.id,
                GrantSet::parse_scope("contacts:read").unwrap(),
                audit,
            )
            .await
            .unwrap();
        let (s, b) = on_session(&app, &id, GET_LISTS).await;
        assert_eq!((s, errorid(&b)), (403, "146"), "{b}");
    }
);

both!(
    sessions_end_after_the_idle_timeout_never_before,
    |app: TestApp| async move {
        app.org("acme").await;
        let k = app.api_user("acme", "feeder", "lists:read").await;
        let idle = app.settings.sessions.idle_timeout;
        let touch = app.settings.sessions.touch();
        assert_eq!(
            (idle, touch),
            (Duration::from_secs(1800), Duration::from_secs(60))
        );

        // Untouched since Login: live at exactly idle + touch, gone one millisecond later.
        let a = login(&app, "feeder", &k.secret).await;
        let b = login(&app, "feeder", &k.secret).await;
        app.advance(idle + touch);
        assert_eq!(on_session(&app, &a, GET_LISTS).await.0, 200);
        app.advance(Duration::from_millis(1));
        let (s, body) = on_session(&app, &b, GET_LISTS).await;
        assert_eq!((s, errorid(&body)), (401, "145"), "{body}");
        // `a` was touched by its call, so it lives on.
        assert_eq!(on_session(&app, &a, GET_LISTS).await.0, 200);

        // A call too soon after the recorded one is not recorded, yet the session still lasts
        // idle_timeout after that call.
        let c = login(&app, "feeder", &k.secret).await;
        app.advance(touch - Duration::from_millis(1));
        assert_eq!(on_session(&app, &c, GET_LISTS).await.0, 200);
        app.advance(idle);
        assert_eq!(on_session(&app, &c, GET_LISTS).await.0, 200);
        app.advance(idle + touch + Duration::from_millis(1));
        assert_eq!(on_session(&app, &c, GET_LISTS).await.0, 401);
    }
);

both!(
    the_org_cap_refuses_the_next_login_until_one_logs_out,
    |app: TestApp| async move {
        app.org("acme").await;
        let k = app.api_user("acme", "feeder", "lists:read").await;
        let max = app.settings.sessions.max_per_org;
        assert_eq!(max, 20);
        let mut ids = Vec::new();
        for _ in 0..max {
            ids.push(login(&app, "feeder", &k.secret).await);
        }
        let (s, b, _) = post(&app, "/XMLAPI", None, &login_body("feeder", &k.secret)).await;
        assert_eq!((s, errorid(&b)), (200, "147"), "{b}");
        assert!(
            b.contains("sessions.max_per_org") && b.contains("Logout"),
            "{b}"
        );
        assert_eq!(on_session(&app, &ids[0], LOGOUT).await.0, 200);
        login(&app, "feeder", &k.secret).await;
    }
);

both!(
    failed_logins_are_140_and_never_say_who_exists,
    |app: TestApp| async move {
        app.org("acme").await;
        let k = app.api_user("acme", "feeder", "lists:read").await;
        app.ui_user_with_password(
            "acme",
            "alice",
            GrantSet::parse_scope("lists:read").unwrap(),
            "correct horse battery",
        )
        .await;
        let mut bodies = Vec::new();
        for (user, secret) in [
            ("nobody", k.secret.as_str()),
            ("feeder", "gsk_test-1_wrongwrongwrong"),
            ("alice", "correct horse battery"),
        ] {
            let (s, b, h) = post(&app, "/XMLAPI", None, &login_body(user, secret)).await;
            assert_eq!((s, errorid(&b)), (401, "140"), "{user}: {b}");
            assert!(
                b.contains("a UI user&apos;s password never opens the XML API"),
                "{b}"
            );
            assert!(h.contains_key("www-authenticate"));
            bodies.push(b);
        }
        assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
    }
);

both!(
    logins_are_throttled_with_retry_after,
    |app: TestApp| async move {
        app.org("acme").await;
        app.api_user("acme", "feeder", "lists:read").await;
        let mut throttled = None;
        for _ in 0..100 {
            let (s, b, h) = post(
                &app,
                "/XMLAPI",
                None,
                &login_body("feeder", "gsk_test-1_nope"),
            )
            .await;
            assert_ne!(s, 500, "{b}");
            if s == 429 {
                throttled = Some((b, h));
                break;
            }
        }
        let (b, h) = throttled.expect("repeated failed logins are throttled");
        assert_eq!(errorid(&b), "140", "{b}");
        assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    }
);

both!(
    deleting_the_key_or_disabling_or_deleting_the_user_ends_sessions,
    |app: TestApp| async move {
        app.org("acme").await;
        let k = app.api_user("acme", "feeder", "lists:read").await;
        let id = login(&app, "feeder", &k.secret).await;
        admin::api_keys::delete(&app.cx(), "acme", "feeder", k.slot)
            .await
            .unwrap();
        // Within the grace the session works; past it, it has ended.
        assert_eq!(on_session(&app, &id, GET_LISTS).await.0, 200);
        app.advance(app.settings.api_keys.delete_grace + Duration::from_secs(1));
        let (s, b) = on_session(&app, &id, GET_LISTS).await;
        assert_eq!((s, errorid(&b)), (401, "145"), "{b}");

        let k = app.key("acme", "feeder").await;
        let id = login(&app, "feeder", &k.secret).await;
        admin::users::set_disabled(&app.cx(), "acme", "feeder", true)
            .await
            .unwrap();
        let (s, b) = on_session(&app, &id, GET_LISTS).await;
        assert_eq!((s, errorid(&b)), (401, "145"), "{b}");
        admin::users::set_disabled(&app.cx(), "acme", "feeder", false)
            .await
            .unwrap();
        assert_eq!(on_session(&app, &id, GET_LISTS).await.0, 200);
        admin::users::delete_user(&app.cx(), "acme", "feeder")
            .await
            .unwrap();
        let (s, b) = on_session(&app, &id, GET_LISTS).await;
        assert_eq!((s, errorid(&b)), (401, "145"), "{b}");
    }
);

both!(
    bad_login_inputs_are_faults_never_500,
    |app: TestApp| async move {
        app.org("acme").await;
        let k = app.api_user("acme", "feeder", "lists:read").await;
        let huge = "x".repeat(5000);
        let cases = [
        "<Envelope><Body><Login><PASSWORD>p</PASSWORD></Login></Body></Envelope>".to_string(),
        "<Envelope><Body><Login><USERNAME>feeder</USERNAME></Login></Body></Envelope>".to_string(),
        login_body("fee&#0;der", &k.secret),
        login_body("feeder\u{0}", &k.secret),
        login_body(&huge, &k.secret),
        login_body("feeder", &huge),
        "<Envelope><Body><Login><USERNAME>a</USERNAME><USERNAME>b</USERNAME><PASSWORD>p</PASSWORD></Login></Body></Envelope>".to_string(),
    ];
        for body in &cases {
            let (s, b, _) = post(&app, "/XMLAPI", None, body).await;
            assert_eq!(s, 400, "{body}: {b}");
            assert!(["51", "126"].contains(&errorid(&b)), "{b}");
        }
        // A malformed session id is just unknown.
        for id in ["", "gxs_test-1_", "%00", "x".repeat(3000).as_str()] {
            let (s, b) = on_session(&app, id, GET_LISTS).await;
            assert_eq!((s, errorid(&b)), (401, "145"), "{id}: {b}");
        }
        let (s, b) = on_session(&app, "gxs_other_abc", GET_LISTS).await;
        assert_eq!(s, 401, "{b}");
        assert!(b.contains("pod other"), "{b}");
    }
);
