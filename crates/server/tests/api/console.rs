//! The admin console over HTTP, as a browser drives it: sign-in (one-time password, lockout,
//! expiry), the CSRF token on every form, the one-time display of secrets, and that nothing of
//! another organization is reachable by changing an id.

use std::time::Duration;

use secrecy::ExposeSecret;

use grantry_core::admin;
use grantry_core::model::Role;
use grantry_core::GrantSet;

use crate::both;
use crate::harness::TestApp;

/// A browser: its own cookies, redirects not followed (tests read them).
struct Browser {
    http: reqwest::Client,
    base: String,
}

/// What a page answered.
struct Page {
    status: u16,
    location: Option<String>,
    set_cookies: Vec<String>,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    async fn of(r: reqwest::Response) -> Page {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let location = headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        let set_cookies = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        Page {
            status,
            location,
            set_cookies,
            headers,
            body: r.text().await.unwrap(),
        }
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a form with a csrf field") + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_string()
    }

    /// The value of the read-only field `id` on a one-time page.
    fn shown(&self, id: &str) -> String {
        let marker = format!("id=\"{id}\" class=\"secret\" value=\"");
        let start = self.body.find(&marker).expect("the one-time field") + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_string()
    }
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        Page::of(
            self.http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Posts `form` to `path` with `csrf` added.
    async fn post_with(&self, path: &str, csrf: &str, form: &[(&str, &str)]) -> Page {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        fields.push(("csrf", csrf));
        Page::of(
            self.http
                .post(format!("{}{path}", self.base))
                .form(&fields)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Posts `form` to `path` with the CSRF token of the page `from`, as a user filling in
    /// the form on that page.
    async fn post(&self, from: &str, path: &str, form: &[(&str, &str)]) -> Page {
        let csrf = self.get(from).await.csrf();
        self.post_with(path, &csrf, form).await
    }

    async fn sign_in(&self, org: &str, username: &str, password: &str) -> Page {
        let form = self.get("/console/sign-in").await;
        let fields = [("org", org), ("username", username), ("password", password)];
        self.post_with("/console/sign-in", &form.csrf(), &fields)
            .await
    }
}

/// A UI user of `org` with a known password, signed in; for an org admin created with a
/// one-time password, after setting a new one.
async fn signed_in(app: &TestApp, org: &str, username: &str, role: Role) -> Browser {
    let password = "correct horse battery";
    app.ui_user_with_password(org, username, GrantSet::empty(), password)
        .await;
    if role == Role::OrgAdmin {
        admin::set_role(&app.cx(), org, username, Role::OrgAdmin)
            .await
            .unwrap();
    }
    let b = Browser::new(app);
    let r = b.sign_in(org, username, password).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/console"));
    b
}

/// The org `acme` with its bootstrap admin, and an org admin `ops` signed in.
async fn acme_admin(app: &TestApp) -> Browser {
    app.org("acme").await;
    signed_in(app, "acme", "ops", Role::OrgAdmin).await
}

both!(
    the_root_leads_to_the_console_and_the_console_to_its_sign_in,
    |app| async move {
        let b = Browser::new(&app);
        let r = b.get("/").await;
        assert_eq!((r.status, r.location.as_deref()), (303, Some("/console")));
        let r = b.get("/console").await;
        assert_eq!(
            (r.status, r.location.as_deref()),
            (303, Some("/console/sign-in"))
        );
        let r = b.get("/console/settings").await;
        assert_eq!(
            (r.status, r.location.as_deref()),
            (303, Some("/console/sign-in"))
        );
        let page = b.get("/console/sign-in").await;
        assert_eq!(page.status, 200);
        for label in ["Organization", "Username", "Password", "Sign in"] {
            assert!(page.body.contains(label), "{label}");
        }
        assert_eq!(page.headers["cache-control"], "no-store");
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
    }
);

both!(
    the_bootstrap_admin_signs_in_with_the_one_time_password_and_must_set_a_new_one,
    |app| async move {
        let created = admin::create_org(&app.cx(), "acme", "admin", "admin@acme.example.com")
            .await
            .unwrap();
        let one_time = created.password.expose_secret().to_string();
        let b = Browser::new(&app);
        let r = b.sign_in("acme", "admin", &one_time).await;
        assert_eq!(
            (r.status, r.location.as_deref()),
            (303, Some("/console/password"))
        );
        let cookie = r
            .set_cookies
            .iter()
            .find(|c| c.starts_with("grantry_session="))
            .expect("a session cookie")
            .to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        assert!(
            !cookie.contains("Secure"),
            "plain HTTP on loopback: {cookie}"
        );
        let sid = cookie
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("grantry_session=");

        // Every page waits for the new password.
        let r = b.get("/console/settings").await;
        assert_eq!(r.location.as_deref(), Some("/console/password"));
        let page = b.get("/console/password").await;
        assert!(page.body.contains("Set a new password"));
        assert!(!page.body.contains("Current password"));
        let csrf = page.csrf();
        let short = b
            .post_with(
                "/console/password",
                &csrf,
                &[("new", "short"), ("repeat", "short")],
            )
            .await;
        assert_eq!(short.location.as_deref(), Some("/console/password"));
        let new = "a much longer password";
        let r = b
            .post_with("/console/password", &csrf, &[("new", new), ("repeat", new)])
            .await;
        assert_eq!((r.status, r.location.as_deref()), (303, Some("/console")));
        let settings = b.get("/console/settings").await;
        assert_eq!(settings.status, 200);
        assert!(settings.body.contains("Application Account Access"));
        assert!(settings.body.contains("Your password was changed."));

        // The one-time password no longer opens anything; the new one does.
        let again = Browser::new(&app);
        assert_eq!(again.sign_in("acme", "admin", &one_time).await.status, 401);
        assert_eq!(
            again
                .sign_in("acme", "admin", new)
                .await
                .location
                .as_deref(),
            Some("/console")
        );
        assert_eq!(app.audit_count("acme", "user.password_changed").await, 1);

        // Sign out ends the session: the old cookie opens nothing.
        let csrf = b.get("/console/settings").await.csrf();
        let out = b.post_with("/console/sign-out", &csrf, &[]).await;
        assert_eq!(out.location.as_deref(), Some("/console/sign-in"));
        let removal = out
            .set_cookies
            .iter()
            .find(|c| c.starts_with("grantry_session="))
            .expect("sign-out removes the session cookie");
        assert!(removal.contains("Max-Age=0"), "{removal}");
        assert_eq!(
            b.get("/console/settings").await.location.as_deref(),
            Some("/console/sign-in")
        );
        let replay = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(app.url("/console/settings"))
            .header("cookie", format!("grantry_session={sid}"))
            .send()
            .await
            .unwrap();
        assert_eq!(replay.status(), 303);
    }
);

both!(
    a_user_who_must_set_a_new_password_can_still_sign_out,
    |app| async move {
        let created = admin::create_org(&app.cx(), "acme", "admin", "admin@acme.example.com")
            .await
            .unwrap();
        let b = Browser::new(&app);
        b.sign_in("acme", "admin", created.password.expose_secret())
            .await;
        let csrf = b.get("/console/password").await.csrf();
        let out = b.post_with("/console/sign-out", &csrf, &[]).await;
        assert_eq!(out.location.as_deref(), Some("/console/sign-in"));
        assert_eq!(
            b.get("/console/password").await.location.as_deref(),
            Some("/console/sign-in")
        );
    }
);

both!(
    a_wrong_password_an_unknown_org_and_an_api_user_are_refused_alike,
    |app| async move {
        app.org("acme").await;
        app.api_user("acme", "bot", "lists:read").await;
        let b = Browser::new(&app);
        for (org, user, pw) in [
            ("acme", "admin", "wrong password!"),
            ("nowhere", "admin", "wrong password!"),
            ("acme", "bot", "anything at all"),
        ] {
            let r = b.sign_in(org, user, pw).await;
            assert_eq!(r.status, 401, "{org}/{user}");
            assert!(r.body.contains("Wrong organization, username or password"));
            assert!(
                r.body.contains("API users cannot sign in"),
                "the page says why"
            );
        }
    }
);

both!(
    repeated_wrong_sign_ins_lock_the_account_with_429_and_retry_after,
    |app| async move {
        app.org("acme").await;
        let b = Browser::new(&app);
        let after = app.settings.limits.lockout_after;
        for _ in 0..after {
            assert_eq!(
                b.sign_in("acme", "admin", "wrong password!").await.status,
                401
            );
        }
        let r = b.sign_in("acme", "admin", "wrong password!").await;
        assert_eq!(r.status, 429, "{}", r.body);
        assert!(r.headers.contains_key("retry-after"));
        assert!(r.body.contains("Too many failed sign-ins"));
        assert!(app.audit_occurrences("acme", "authentication.failed").await >= after as i64);
    }
);

both!(
    a_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing,
    |app| async move {
        let b = acme_admin(&app).await;
        let form = [
            ("name", "CRM"),
            ("scope", "lists:read"),
            ("client_type", "confidential"),
        ];
        let r = b.post_with("/console/applications", "", &form).await;
        assert_eq!(r.status, 403);
        let other = signed_in(&app, "acme", "eve", Role::OrgAdmin).await;
        let foreign = other.get("/console/settings").await.csrf();
        let r = b.post_with("/console/applications", &foreign, &form).await;
        assert_eq!(r.status, 403, "another session's token");
        let cx = app.cx();
        assert!(admin::list_applications(&cx, "acme")
            .await
            .unwrap()
            .is_empty());
        // The sign-in form is bound to its browser too (login CSRF).
        let fresh = Browser::new(&app);
        let r = fresh
            .post_with(
                "/console/sign-in",
                "",
                &[("org", "acme"), ("username", "ops"), ("password", "x")],
            )
            .await;
        assert_eq!(r.status, 403);
    }
);

both!(
    add_application_and_account_access_show_their_secrets_once_and_they_work,
    |app| async move {
        let b = acme_admin(&app).await;
        let page = b
            .post(
                "/console/settings",
                "/console/applications",
                &[
                    ("name", "CRM sync"),
                    ("description", "Nightly contact sync"),
                    ("scope", "lists:read"),
                    ("scope", "contacts:read"),
                    ("client_type", "confidential"),
                    ("token_format", "opaque"),
                ],
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.headers["cache-control"], "no-store");
        let (client_id, secret) = (page.shown("client-id"), page.shown("client-secret"));
        assert!(secret.starts_with("gcs_"), "{secret}");
        assert_eq!(app.audit_count("acme", "application.created").await, 1);

        let settings = b.get("/console/settings").await;
        assert!(settings.body.contains("CRM sync") && settings.body.contains(&client_id));
        assert!(
            !settings.body.contains(&secret),
            "the secret is never shown again"
        );

        let page = b
            .post(
                "/console/settings",
                "/console/access",
                &[("application", &client_id), ("account", "ops")],
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let refresh = page.shown("refresh-token");
        assert!(refresh.starts_with("grt_"), "{refresh}");
        assert!(page.body.contains("Mailed to"), "{}", page.body);
        let sent = app.outbox.0.lock().unwrap().clone();
        let last = sent.last().expect("the notification went out");
        let to: Vec<&str> = last.to.iter().map(|(_, a)| a.as_str()).collect();
        assert_eq!(
            to,
            ["ops@acme.example.com", "admin@acme.example.com"],
            "the admin who added it and the principal org admin"
        );

        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
            ("refresh_token", refresh.as_str()),
        ];
        let r = app.token(&form).await;
        assert_eq!(r.status(), 200);
        let access: serde_json::Value = r.json().await.unwrap();
        let bearer = format!("Bearer {}", access["access_token"].as_str().unwrap());
        assert_eq!(app.get_lists(&bearer).await, 200);

        let settings = b.get("/console/settings").await;
        assert!(!settings.body.contains(&refresh));
        assert!(settings.body.contains("admin"), "made by an admin");

        // Delete: behind a confirmation, then refused from the next request on.
        let confirm = b
            .get(&format!(
                "/console/access/delete?client_id={client_id}&username=ops"
            ))
            .await;
        assert_eq!(confirm.status, 200);
        assert!(confirm.body.contains("refused from the next request on"));
        let r = b
            .post_with(
                "/console/access/delete",
                &confirm.csrf(),
                &[("client_id", &client_id), ("username", "ops")],
            )
            .await;
        assert_eq!(r.location.as_deref(), Some("/console/settings"));
        assert_eq!(app.get_lists(&bearer).await, 401);
        assert_eq!(app.token(&form).await.status(), 400);
        assert_eq!(app.audit_count("acme", "account_access.deleted").await, 1);
    }
);

both!(rotating_and_deleting_an_application, |app| async move {
    let b = acme_admin(&app).await;
    let (client_id, old_secret) = app.app("acme", "Sync", None).await;
    let refresh = app.access("acme", &client_id, "ops").await;
    let path = format!("/console/applications/{client_id}");
    let page = b.get(&path).await;
    assert_eq!(page.status, 200);
    let rotated = b
        .post_with(
            &format!("{path}/rotate"),
            &page.csrf(),
            &[("overlap", "1h")],
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new_secret = rotated.shown("client-secret");
    assert_ne!(new_secret, old_secret);
    for secret in [&old_secret, &new_secret] {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret.as_str()),
            ("refresh_token", refresh.as_str()),
        ];
        assert_eq!(app.token(&form).await.status(), 200, "inside the overlap");
    }
    let confirm = b.get(&format!("{path}/delete")).await;
    assert!(confirm.body.contains("stop working at once"));
    let r = b
        .post_with(&format!("{path}/delete"), &confirm.csrf(), &[])
        .await;
    assert_eq!(r.location.as_deref(), Some("/console/settings"));
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", client_id.as_str()),
        ("client_secret", new_secret.as_str()),
        ("refresh_token", refresh.as_str()),
    ];
    assert_eq!(app.token(&form).await.status(), 401);
    assert_eq!(b.get(&path).await.status, 404);
    assert_eq!(app.audit_count("acme", "application.deleted").await, 1);
});

both!(
    api_user_keys_are_generated_shown_once_deleted_with_grace_and_promoted,
    |app| async move {
        let b = acme_admin(&app).await;
        let r = b
            .post(
                "/console/api-users",
                "/console/api-users",
                &[
                    ("username", "bot"),
                    ("email", "bot@acme.example.com"),
                    ("grant", "lists:read"),
                ],
            )
            .await;
        assert_eq!(r.location.as_deref(), Some("/console/api-users/bot"));
        let path = "/console/api-users/bot";
        let page = b.get(path).await;
        assert!(page.body.contains("Key ID") && page.body.contains("Generate key"));
        let k1 = b
            .post_with(&format!("{path}/keys"), &page.csrf(), &[])
            .await;
        assert_eq!(k1.status, 200, "{}", k1.body);
        assert!(k1.body.contains("API secret key 1"));
        let bearer1 = k1.shown("bearer");
        let k2 = b.post(path, &format!("{path}/keys"), &[]).await;
        assert!(k2.body.contains("API secret key 2"));
        let bearer2 = k2.shown("bearer");
        let page = b.get(path).await;
        assert!(
            !page.body.contains("Generate key</button>"),
            "both slots are taken"
        );
        assert_eq!(
            page.body.matches("<td>never</td>").count(),
            2,
            "neither key used yet"
        );
        assert_eq!(app.get_lists(&format!("Bearer {bearer2}")).await, 200);
        let page = b.get(path).await;
        assert_eq!(
            page.body.matches("<td>never</td>").count(),
            1,
            "key 2's use is shown"
        );
        assert!(!page.body.contains(&bearer1) && !page.body.contains(&k1.shown("secret-key")));

        let confirm = b.get(&format!("{path}/keys/1/delete")).await;
        assert!(confirm
            .body
            .contains("API secret key 2, if there is one, becomes API secret key 1"));
        let r = b
            .post_with(&format!("{path}/keys/1/delete"), &confirm.csrf(), &[])
            .await;
        assert_eq!(r.location.as_deref(), Some(path));
        let page = b.get(path).await;
        assert!(
            page.body
                .contains("API secret key 2 is now API secret key 1"),
            "{}",
            page.body
        );
        assert!(
            page.body.contains("data-until="),
            "the countdown of the deleted key"
        );
        assert!(!page.body.contains("API secret key 2</td>"));
        assert_eq!(
            app.get_lists(&format!("Bearer {bearer1}")).await,
            200,
            "inside the grace"
        );
        assert_eq!(app.get_lists(&format!("Bearer {bearer2}")).await, 200);
        app.advance(app.settings.api_keys.delete_grace + Duration::from_secs(1));
        assert_eq!(app.get_lists(&format!("Bearer {bearer1}")).await, 401);
        assert_eq!(app.get_lists(&format!("Bearer {bearer2}")).await, 200);
    }
);

both!(
    nothing_of_another_org_is_reachable_by_changing_an_id,
    |app| async move {
        let b = acme_admin(&app).await;
        let other = app.integration("globex").await;
        app.ui_user("globex", "gina", Role::User, GrantSet::empty())
            .await;
        app.api_user("globex", "gbot", "lists:read").await;
        let cid = &other.client_id;
        for path in [
            format!("/console/applications/{cid}"),
            format!("/console/applications/{cid}/delete"),
            "/console/users/gina".to_string(),
            "/console/users/gina/delete".to_string(),
            "/console/api-users/gbot".to_string(),
            "/console/api-users/gbot/keys/1/delete".to_string(),
            format!("/console/access/delete?client_id={cid}&username=admin"),
        ] {
            assert_eq!(b.get(&path).await.status, 404, "GET {path}");
        }
        let csrf = b.get("/console/settings").await.csrf();
        for (path, form) in [
            (format!("/console/applications/{cid}/delete"), vec![]),
            (
                format!("/console/applications/{cid}/rotate"),
                vec![("overlap", "0s")],
            ),
            ("/console/users/gina/disable".to_string(), vec![]),
            ("/console/users/gina/reset-password".to_string(), vec![]),
            ("/console/users/gina/delete".to_string(), vec![]),
            ("/console/api-users/gbot/keys".to_string(), vec![]),
            ("/console/api-users/gbot/keys/1/delete".to_string(), vec![]),
            (
                "/console/access/delete".to_string(),
                vec![("client_id", cid.as_str()), ("username", "admin")],
            ),
            (
                "/console/access".to_string(),
                vec![("application", cid.as_str()), ("account", "ops")],
            ),
            (
                "/console/users/gina/role".to_string(),
                vec![("role", "org_admin")],
            ),
            (
                "/console/users/gbot/grants".to_string(),
                vec![("grant", "lists:write")],
            ),
            (
                "/console/account/consents/delete".to_string(),
                vec![("client_id", cid.as_str())],
            ),
        ] {
            let r = b.post_with(&path, &csrf, &form).await;
            assert!(
                r.status == 404 || r.status == 303,
                "POST {path}: {}",
                r.status
            );
            if r.status == 303 {
                let shown = b.get(r.location.as_deref().unwrap()).await;
                let refused = shown.status == 404 || shown.body.contains("flash error");
                assert!(refused, "POST {path} was refused: {}", shown.body);
            }
        }
        // Globex is untouched: its integration still trades its refresh token.
        assert_eq!(app.refresh(&other).await.status(), 200);
        let cx = app.cx();
        let users = admin::list_users(&cx, "globex").await.unwrap();
        assert!(users
            .iter()
            .any(|u| u.username == "gina" && !u.disabled && u.role == Role::User));
        let gbot = users.iter().find(|u| u.username == "gbot").unwrap();
        assert_eq!(gbot.grants, GrantSet::parse_scope("lists:read").unwrap());
        assert_eq!(app.audit_count("globex", "application.deleted").await, 0);
    }
);

both!(
    a_user_role_account_sees_only_its_own_page,
    |app| async move {
        app.org("acme").await;
        let b = signed_in(&app, "acme", "alice", Role::User).await;
        assert_eq!(
            b.get("/console").await.location.as_deref(),
            Some("/console/account")
        );
        let page = b.get("/console/account").await;
        assert_eq!(page.status, 200);
        assert!(!page.body.contains("Organization Settings") && !page.body.contains("API Users"));
        for path in [
            "/console/settings",
            "/console/users",
            "/console/api-users",
            "/console/audit",
        ] {
            let r = b.get(path).await;
            assert_eq!(r.status, 403, "{path}");
            assert!(
                r.body.contains("Only org admins can open this page"),
                "{}",
                r.body
            );
        }
        let csrf = page.csrf();
        let r = b
            .post_with(
                "/console/api-users",
                &csrf,
                &[("username", "sneaky"), ("email", "s@acme.example.com")],
            )
            .await;
        assert_eq!(r.status, 403);
        let cx = app.cx();
        assert!(!admin::list_users(&cx, "acme")
            .await
            .unwrap()
            .iter()
            .any(|u| u.username == "sneaky"));
    }
);

both!(my_account_withdraws_an_application, |app| async move {
    app.org("acme").await;
    let b = signed_in(&app, "acme", "alice", Role::User).await;
    let (client_id, secret) = app.app("acme", "Reports", None).await;
    let refresh = app.access("acme", &client_id, "alice").await;
    let page = b.get("/console/account").await;
    assert!(page.body.contains("Reports"));
    let r = b
        .post_with(
            "/console/account/consents/delete",
            &page.csrf(),
            &[("client_id", &client_id)],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/console/account"));
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", client_id.as_str()),
        ("client_secret", secret.as_str()),
        ("refresh_token", refresh.as_str()),
    ];
    assert_eq!(app.token(&form).await.status(), 400);
    assert!(!b
        .get("/console/account")
        .await
        .body
        .contains("Reports</td>"));
});

both!(
    a_session_ends_after_the_idle_timeout_and_after_its_lifetime,
    |app| async move {
        let b = acme_admin(&app).await;
        let idle = app.settings.console.idle_timeout;
        app.advance(idle - Duration::from_secs(1));
        assert_eq!(
            b.get("/console/settings").await.status,
            200,
            "used just in time"
        );
        app.advance(idle - Duration::from_secs(1));
        assert_eq!(
            b.get("/console/settings").await.status,
            200,
            "each use starts the idle time again"
        );
        // It ends between the idle timeout and that plus the touch interval after its last
        // use (which is recorded once per interval), never earlier.
        let touch = app.settings.console.touch();
        app.advance(idle + touch + Duration::from_secs(1));
        assert_eq!(
            b.get("/console/settings").await.location.as_deref(),
            Some("/console/sign-in")
        );

        // Used often, a session still ends at its absolute lifetime.
        let b = signed_in(&app, "acme", "ops2", Role::OrgAdmin).await;
        let step = idle / 2;
        let mut used = Duration::ZERO;
        while used + step < grantry_core::sessions::SESSION_TTL {
            app.advance(step);
            used += step;
            assert_eq!(b.get("/console/account").await.status, 200, "at {used:?}");
        }
        app.advance(step);
        assert_eq!(b.get("/console/account").await.status, 303);
    }
);

both!(
    the_audit_log_shows_the_console_actions_newest_first_and_filters,
    |app| async move {
        let b = acme_admin(&app).await;
        b.post(
            "/console/settings",
            "/console/applications",
            &[
                ("name", "CRM"),
                ("scope", "lists:read"),
                ("client_type", "confidential"),
            ],
        )
        .await;
        b.post(
            "/console/api-users",
            "/console/api-users",
            &[("username", "bot"), ("email", "bot@acme.example.com")],
        )
        .await;
        let page = b.get("/console/audit").await;
        assert_eq!(page.status, 200);
        let created = page.body.find("user.created").unwrap();
        let app_created = page.body.find("application.created").unwrap();
        assert!(created < app_created, "newest first");
        let page = b.get("/console/audit?kind=application.&actor=ops").await;
        assert!(page.body.contains("application.created"));
        assert!(!page.body.contains("user.created"));
        let page = b.get("/console/audit?actor=nobody").await;
        assert!(page.body.contains("No events match."));
    }
);
