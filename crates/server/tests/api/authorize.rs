//! The web-server flow (docs/architecture.md, OAuth 2.0 surface): tests named after the MUSTs of RFC 6749 §4.1,
//! RFC 7636 §4.6 and RFC 9700 §2.1/§4.1/§4.5 they check.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use grantry_core::{Clock, GrantSet};

use crate::both;
use crate::harness::TestApp;

/// Form fields of a token request.
type Form<'a> = Vec<(&'a str, &'a str)>;

pub const CB: &str = "https://partner.example/cb";
pub const PASSWORD: &str = "correct horse battery staple";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn std_query(client_id: &str) -> String {
    query(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CB),
        ("scope", "lists:read contacts:read"),
        ("state", "af0ifjsldkj"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ])
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `grantry_login=...` pre-session cookie a sign-in page set.
fn pre_session_cookie(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("grantry_login="))
        .expect("the sign-in page sets its pre-session cookie")
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    // Undo HTML escaping as a browser would.
    html[start..end]
        .replace("&#38;", "&")
        .replace("&#39;", "'")
        .replace("&#34;", "\"")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Org `acme` with UI user `alice` (all grants) and a confidential client.
async fn setup(app: &TestApp) -> (String, String) {
    app.org("acme").await;
    app.ui_user_with_password("acme", "alice", GrantSet::apis(), PASSWORD)
        .await;
    let (id, secret) = app.client("acme", "Partner", CB, false).await;
    (id, secret.unwrap())
}

/// Signs in as `username` and answers the consent page; the final redirect's Location.
pub async fn consent(app: &TestApp, q: &str, username: &str, decision: &str) -> String {
    let b = app.browser();
    let r = b
        .get(app.url(&format!("/oauth/authorize?{q}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r_login = r.headers().clone();
    let login = r.text().await.unwrap();
    assert!(login.contains("name=\"username\"") && login.contains("name=\"password\""));
    let r = b
        .post(app.url("/oauth/authorize/login"))
        .header("cookie", pre_session_cookie(&r_login))
        .form(&[
            ("username", username),
            ("password", PASSWORD),
            ("query", &hidden(&login, "query")),
            ("csrf", &hidden(&login, "csrf")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let r = b
        .get(app.url(&location(&r)))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Partner") && page.contains("see your databases and lists"),
        "{page}"
    );
    let r = b
        .post(app.url("/oauth/authorize"))
        .header("cookie", &cookie)
        .form(&[
            ("query", hidden(&page, "query")),
            ("csrf", hidden(&page, "csrf")),
            ("decision", decision.into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    location(&r)
}

async fn redeem(app: &TestApp, form: &[(&str, &str)]) -> (u16, Value) {
    let r = app.token(form).await;
    (r.status().as_u16(), r.json().await.unwrap())
}

both!(
    rfc6749_4_1_code_flow_with_pkce_issues_tokens_and_creates_account_access,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let loc = consent(&app, &std_query(&id), "alice", "allow").await;
        assert!(loc.starts_with(&format!("{CB}?code=gac_test-1_")), "{loc}");
        assert_eq!(param(&loc, "state").as_deref(), Some("af0ifjsldkj"));
        assert_eq!(param(&loc, "iss").as_deref(), Some(app.settings.issuer()));
        let code = param(&loc, "code").unwrap();
        let (s, v) = redeem(
            &app,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", VERIFIER),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["token_type"], "bearer");
        assert_eq!(v["expires_in"], 14399);
        assert_eq!(v["scope"], "lists:read contacts:read");
        let rt = v["refresh_token"].as_str().unwrap().to_string();
        let at = v["access_token"].as_str().unwrap().to_string();
        let (s, _) = app.rest(Method::GET, "/rest/databases", &at, None).await;
        assert_eq!(s, 200);
        let (s, _) = app
            .rest(
                Method::POST,
                "/rest/databases",
                &at,
                Some(serde_json::json!({"name": "x"})),
            )
            .await;
        assert_eq!(s, 403, "only the consented scope");

        // Consent created the account access the admin can see and delete.
        let alice = app
            .store
            .user_by_username(1, "alice")
            .await
            .unwrap()
            .unwrap();
        let partner = app
            .store
            .application_by_client_id(&id)
            .await
            .unwrap()
            .unwrap();
        assert!(app
            .store
            .account_access(partner.id, alice.id)
            .await
            .unwrap()
            .is_some());
        assert_eq!(app.audit_count("acme", "account_access.granted").await, 1);
        let listed = grantry_core::admin::list_account_access(&app.cx(), "acme")
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (listed[0].username.as_str(), listed[0].created_by.as_deref()),
            ("alice", None)
        );
        assert_eq!(
            listed[0].access.scopes.to_scope(),
            "lists:read contacts:read"
        );
        let (s, v) = redeem(
            &app,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
        )
        .await;
        assert_eq!(
            (s, v["access_token"].as_str()),
            (200, Some(at.as_str())),
            "same token inside the window"
        );
        grantry_core::admin::delete_account_access(&app.cx(), "acme", &id, "alice")
            .await
            .unwrap();
        let (s, _) = app.rest(Method::GET, "/rest/databases", &at, None).await;
        assert_eq!(s, 401);
    }
);

both!(
    rfc6749_4_1_2_1_errors_before_the_redirect_uri_is_trusted_are_rendered,
    |app: TestApp| async move {
        let (id, _) = setup(&app).await;
        let cases = [
            query(&[
                ("response_type", "code"),
                ("client_id", "nope"),
                ("redirect_uri", CB),
            ]),
            query(&[("response_type", "code"), ("redirect_uri", CB)]),
            query(&[
                ("response_type", "code"),
                ("client_id", &id),
                ("redirect_uri", "https://evil.example/cb"),
            ]),
            query(&[
                ("response_type", "code"),
                ("client_id", &id),
                ("redirect_uri", &format!("{CB}/more")),
            ]),
            query(&[
                ("response_type", "code"),
                ("client_id", &id),
                ("redirect_uri", CB),
                ("callback_uri", "https://evil.example/"),
            ]),
            query(&[
                ("response_type", "code"),
                ("client_id", &id),
                ("client_id", &id),
                ("redirect_uri", CB),
            ]),
        ];
        for q in cases {
            let r = app
                .browser()
                .get(app.url(&format!("/oauth/authorize?{q}")))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "{q}");
            assert!(r.headers().get("location").is_none(), "{q}");
            assert!(r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"));
            assert!(r.text().await.unwrap().contains("cannot continue"));
        }
    }
);

both!(
    rfc9700_4_1_3_redirect_uri_matches_exactly_and_callback_uri_is_a_synonym,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let q = query(&[
            ("response_type", "code"),
            ("client_id", &id),
            ("callback_uri", CB),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]);
        // The token endpoint takes callback_uri where it takes redirect_uri, and compares it
        // the same way (RFC 6749 §4.1.3).
        for (uri, status) in [(CB, 200), ("https://evil.example/", 400)] {
            let loc = consent(&app, &q, "alice", "allow").await;
            let code = param(&loc, "code").unwrap();
            let (s, v) = redeem(
                &app,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("callback_uri", uri),
                    ("code_verifier", VERIFIER),
                    ("client_id", &id),
                    ("client_secret", &secret),
                ],
            )
            .await;
            assert_eq!(s, status, "{uri}: {v}");
        }
        let loc = consent(&app, &q, "alice", "allow").await;
        let code = param(&loc, "code").unwrap();
        let (s, v) = redeem(
            &app,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("callback_uri", CB),
                ("code_verifier", VERIFIER),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
        )
        .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_request")),
            "{v}"
        );
    }
);

both!(
    rfc6749_4_1_2_1_errors_after_trust_redirect_with_state,
    |app: TestApp| async move {
        let (id, _) = setup(&app).await;
        let base = [
            ("client_id", id.as_str()),
            ("redirect_uri", CB),
            ("state", "s1"),
        ];
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (
                vec![("response_type", "token")],
                "unsupported_response_type",
            ),
            (vec![], "invalid_request"),
            (
                vec![("response_type", "code"), ("scope", "bogus")],
                "invalid_scope",
            ),
            // RFC 7636 §4.2 / RFC 9700 §2.1.1: plain is refused.
            (
                vec![
                    ("response_type", "code"),
                    ("code_challenge", CHALLENGE),
                    ("code_challenge_method", "plain"),
                ],
                "invalid_request",
            ),
            (
                vec![("response_type", "code"), ("code_challenge", CHALLENGE)],
                "invalid_request",
            ),
            (
                vec![("response_type", "code"), ("state", "s2")],
                "invalid_request",
            ),
        ];
        for (extra, error) in cases {
            let mut all: Vec<(&str, &str)> = base.to_vec();
            all.extend(extra);
            let r = app
                .browser()
                .get(app.url(&format!("/oauth/authorize?{}", query(&all))))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303);
            let loc = location(&r);
            assert!(loc.starts_with(CB), "{loc}");
            assert_eq!(param(&loc, "error").as_deref(), Some(error), "{loc}");
            assert_eq!(param(&loc, "state").as_deref(), Some("s1"));
            // RFC 9207 §2: the issuer goes with error responses too.
            assert_eq!(param(&loc, "iss").as_deref(), Some(app.settings.issuer()));
        }
    }
);

both!(
    rfc6749_4_1_2_1_denial_redirects_access_denied,
    |app: TestApp| async move {
        let (id, _) = setup(&app).await;
        let loc = consent(&app, &std_query(&id), "alice", "deny").await;
        assert_eq!(param(&loc, "error").as_deref(), Some("access_denied"));
        assert_eq!(param(&loc, "state").as_deref(), Some("af0ifjsldkj"));
        assert!(param(&loc, "code").is_none());
    }
);

both!(
    rfc9700_2_1_1_public_clients_must_use_pkce,
    |app: TestApp| async move {
        app.org("acme").await;
        app.ui_user_with_password("acme", "alice", GrantSet::apis(), PASSWORD)
            .await;
        let (id, secret) = app.client("acme", "Partner", CB, true).await;
        assert!(secret.is_none());
        let q = query(&[
            ("response_type", "code"),
            ("client_id", &id),
            ("redirect_uri", CB),
            ("state", "s"),
        ]);
        let r = app
            .browser()
            .get(app.url(&format!("/oauth/authorize?{q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            param(&location(&r), "error").as_deref(),
            Some("invalid_request")
        );

        let loc = consent(&app, &std_query(&id), "alice", "allow").await;
        let code = param(&loc, "code").unwrap();
        // RFC 7636 §4.6: a wrong verifier fails (and spends the code).
        let (s, v) = redeem(
            &app,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", &VERIFIER.replace('d', "e")),
                ("client_id", &id),
            ],
        )
        .await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")));
        assert!(v["error_description"]
            .as_str()
            .unwrap()
            .contains("does not match"));
        // The code is spent: even the right verifier cannot redeem it now.
        let (s, v) = redeem(
            &app,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", VERIFIER),
                ("client_id", &id),
            ],
        )
        .await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")));
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("already used"),
            "{v}"
        );
        assert!(v.get("access_token").is_none());
        let loc = consent(&app, &std_query(&id), "alice", "allow").await;
        let code = param(&loc, "code").unwrap();
        let (s, v) = redeem(
            &app,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("client_id", &id),
            ],
        )
        .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (400, Some("invalid_grant")),
            "verifier missing"
        );
        let loc = consent(&app, &std_query(&id), "alice", "allow").await;
        let code = param(&loc, "code").unwrap();
        let (s, v) = redeem(
            &app,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", VERIFIER),
                ("client_id", &id),
            ],
        )
        .await;
        assert_eq!(s, 200, "{v}");
    }
);

both!(
    rfc9700_4_5_a_reused_code_is_refused_and_revokes_its_tokens,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let loc = consent(&app, &std_query(&id), "alice", "allow").await;
        let code = param(&loc, "code").unwrap();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ];
        let (s, v) = redeem(&app, &form).await;
        assert_eq!(s, 200);
        let at = v["access_token"].as_str().unwrap().to_string();
        let rt = v["refresh_token"].as_str().unwrap().to_string();
        let (s, v) = redeem(&app, &form).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")));
        let (s, _) = app.rest(Method::GET, "/rest/databases", &at, None).await;
        assert_eq!(s, 401);
        let (s, v) = redeem(
            &app,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
        )
        .await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")));
    }
);

both!(
    rfc6749_4_1_3_the_code_is_bound_to_client_redirect_uri_and_lifetime,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let (other, other_secret) = app.client("acme", "Other", CB, false).await;
        let other_secret = other_secret.unwrap();
        let cases: Vec<(Form<'_>, Option<Duration>)> = vec![
            (
                vec![
                    ("redirect_uri", CB),
                    ("client_id", &other),
                    ("client_secret", &other_secret),
                ],
                None,
            ),
            (
                vec![
                    ("redirect_uri", "https://partner.example/other"),
                    ("client_id", &id),
                    ("client_secret", &secret),
                ],
                None,
            ),
            (vec![("client_id", &id), ("client_secret", &secret)], None),
            (
                vec![
                    ("redirect_uri", CB),
                    ("client_id", &id),
                    ("client_secret", &secret),
                ],
                Some(Duration::from_secs(61)),
            ),
        ];
        for (extra, wait) in cases {
            let loc = consent(&app, &std_query(&id), "alice", "allow").await;
            let code = param(&loc, "code").unwrap();
            if let Some(w) = wait {
                app.advance(w);
            }
            let mut form = vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("code_verifier", VERIFIER),
            ];
            form.extend(extra);
            let (s, v) = redeem(&app, &form).await;
            assert_eq!(
                (s, v["error"].as_str()),
                (400, Some("invalid_grant")),
                "{v}"
            );
        }
    }
);

both!(
    the_same_code_redeemed_by_16_parallel_requests_leaves_no_live_token,
    |app: TestApp| async move {
        // RFC 6749 §4.1.2: a code used more than once is refused, and what it issued is
        // revoked; a reuse during the first redemption leaves that one without tokens.
        let (id, secret) = setup(&app).await;
        let loc = consent(&app, &std_query(&id), "alice", "allow").await;
        let code = param(&loc, "code").unwrap();
        let app = Arc::new(app);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (app, code, id, secret) =
                    (app.clone(), code.clone(), id.clone(), secret.clone());
                tokio::spawn(async move {
                    redeem(
                        &app,
                        &[
                            ("grant_type", "authorization_code"),
                            ("code", &code),
                            ("redirect_uri", CB),
                            ("code_verifier", VERIFIER),
                            ("client_id", &id),
                            ("client_secret", &secret),
                        ],
                    )
                    .await
                })
            })
            .collect();
        let mut won = Vec::new();
        for t in tasks {
            let (status, v) = t.await.unwrap();
            match status {
                200 => won.push(v["access_token"].as_str().unwrap().to_string()),
                _ => assert_eq!(
                    (status, v["error"].as_str()),
                    (400, Some("invalid_grant")),
                    "{v}"
                ),
            }
        }
        assert!(won.len() <= 1, "{won:?}");
        for token in &won {
            let (s, _) = app.rest(Method::GET, "/rest/databases", token, None).await;
            assert_eq!(s, 401, "a token of a code used 16 times still works");
        }
        assert_eq!(
            app.audit_count("acme", "account_access.granted").await,
            won.len()
        );
    }
);

both!(
    login_refuses_wrong_passwords_and_api_users_and_checks_csrf,
    |app: TestApp| async move {
        let (id, _) = setup(&app).await;
        app.api_user("acme", "bot", "lists:read").await;
        let b = app.browser();
        let q = std_query(&id);
        for (user, pw) in [
            ("alice", "wrong password!"),
            ("bot", PASSWORD),
            ("nobody", PASSWORD),
        ] {
            let r = app.post_login(&q, user, pw).await;
            assert_eq!(r.status(), 401, "{user}");
            let cookies: Vec<_> = r.headers().get_all("set-cookie").iter().collect();
            assert!(
                !format!("{cookies:?}").contains("grantry_session"),
                "{cookies:?}"
            );
            assert!(r
                .text()
                .await
                .unwrap()
                .contains("Wrong username or password"));
        }
        assert!(app.audit_count("acme", "authentication.failed").await >= 1);
        // A consent POST without the session's CSRF token changes nothing.
        let r = app.post_login(&q, "alice", PASSWORD).await;
        assert_eq!(r.status(), 303);
        let session = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(session.starts_with("grantry_session=") && session.contains("HttpOnly"));
        let cookie = session.split(';').next().unwrap().to_string();
        let r = b
            .post(app.url("/oauth/authorize"))
            .header("cookie", &cookie)
            .form(&[
                ("query", q.as_str()),
                ("csrf", "forged"),
                ("decision", "allow"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.headers().get("location").is_none());
    }
);

both!(
    a_sign_in_posted_from_another_site_is_refused_unchecked,
    |app: TestApp| async move {
        let (id, _) = setup(&app).await;
        let q = std_query(&id);
        let (cookie, csrf) = app.login_form(&q).await;
        let (other_cookie, other_csrf) = app.login_form(&q).await;
        let other_query = q.replace("af0ifjsldkj", "other-state");
        // login CSRF: no pre-session cookie, a token of another browser, a token for
        // another request, no token at all.
        let cases: [(Option<&str>, &str, &str); 4] = [
            (None, &csrf, &q),
            (Some(&cookie), &other_csrf, &q),
            (Some(&other_cookie), &csrf, &q),
            (Some(&cookie), &csrf, &other_query),
        ];
        for (n, (cookie, csrf, query)) in cases.into_iter().enumerate() {
            let mut req = app.browser().post(app.url("/oauth/authorize/login"));
            if let Some(c) = cookie {
                req = req.header("cookie", c);
            }
            let r = req
                .form(&[
                    ("username", "alice"),
                    ("password", PASSWORD),
                    ("query", query),
                    ("csrf", csrf),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "case {n}");
            let cookies = format!(
                "{:?}",
                r.headers().get_all("set-cookie").iter().collect::<Vec<_>>()
            );
            assert!(!cookies.contains("grantry_session"), "case {n}: {cookies}");
            let page = r.text().await.unwrap();
            assert!(
                page.contains("out of date") && page.contains("name=\"csrf\""),
                "{page}"
            );
        }
        assert_eq!(app.audit_count("acme", "user.signed_in").await, 0);
        assert_eq!(app.audit_count("acme", "authentication.failed").await, 0);
        assert!(app
            .store
            .active_lockouts(app.clock.now())
            .await
            .unwrap()
            .is_empty());
        // The form as shown signs in.
        let r = app
            .browser()
            .post(app.url("/oauth/authorize/login"))
            .header("cookie", &cookie)
            .form(&[
                ("username", "alice"),
                ("password", PASSWORD),
                ("query", &q),
                ("csrf", &csrf),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let login_cookie = app
            .browser()
            .get(app.url(&format!("/oauth/authorize?{q}")))
            .send()
            .await
            .unwrap()
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("grantry_login="))
            .unwrap();
        for attr in ["HttpOnly", "SameSite=Lax", "Path=/oauth/authorize"] {
            assert!(login_cookie.contains(attr), "{login_cookie}");
        }
    }
);

both!(
    rfc7662_and_rfc7009_introspection_stays_inside_the_org_and_revocation_with_the_client,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let at = app.access_token(&i).await;
        let k = app.api_user("acme", "bot", "events:write").await;
        let r = app
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &k.key_id),
                ("client_secret", &k.secret),
            ])
            .await;
        let key_token = r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let other = app.integration("beta").await;

        let introspect = |client: (String, String), token: String| {
            let app = &app;
            async move {
                let r = app
                    .http
                    .post(app.url("/oauth/introspect"))
                    .basic_auth(&client.0, Some(&client.1))
                    .form(&[("token", token.as_str())])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                assert_eq!(r.headers()["cache-control"], "no-store");
                r.json::<Value>().await.unwrap()
            }
        };
        let me = (i.client_id.clone(), i.client_secret.clone());
        let v = introspect(me.clone(), at.clone()).await;
        assert_eq!(v["active"], true);
        assert_eq!(v["client_id"], i.client_id.as_str());
        assert_eq!(v["username"], "admin");
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(
            v["exp"].as_i64().unwrap(),
            crate::harness::START.0 / 1000 + 14400
        );
        let v = introspect(me.clone(), i.refresh_token.clone()).await;
        assert_eq!(
            (v["active"].as_bool(), v["token_type"].as_str()),
            (Some(true), Some("refresh_token"))
        );
        let v = introspect(me.clone(), key_token.clone()).await;
        assert_eq!(
            (v["active"].as_bool(), v["client_id"].as_str()),
            (Some(true), Some(k.key_id.as_str()))
        );
        assert_eq!(v["scope"], "events:write");
        // A disabled user's token is inactive, and active again once the user is enabled.
        grantry_core::admin::set_disabled(&app.cx(), "acme", "bot", true)
            .await
            .unwrap();
        assert_eq!(
            introspect(me.clone(), key_token.clone()).await["active"],
            false
        );
        grantry_core::admin::set_disabled(&app.cx(), "acme", "bot", false)
            .await
            .unwrap();
        assert_eq!(
            introspect(me.clone(), key_token.clone()).await["active"],
            true
        );
        // Another org's client sees nothing.
        let them = (other.client_id.clone(), other.client_secret.clone());
        assert_eq!(
            introspect(them.clone(), at.clone()).await,
            serde_json::json!({"active": false})
        );
        assert_eq!(
            introspect(me.clone(), "garbage".into()).await,
            serde_json::json!({"active": false})
        );

        // Revocation (RFC 7009 §2.1): only the client a token was issued to revokes it;
        // another client is refused and the token lives on; unknown tokens are 200.
        let revoke = |client: (String, String), token: String| {
            let app = &app;
            async move {
                app.http
                    .post(app.url("/oauth/revoke"))
                    .basic_auth(&client.0, Some(&client.1))
                    .form(&[("token", token.as_str())])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(revoke(them, at.clone()).await, 400);
        assert_eq!(introspect(me.clone(), at.clone()).await["active"], true);
        assert_eq!(revoke(me.clone(), "unknown-token".into()).await, 200);
        assert_eq!(revoke(me.clone(), at.clone()).await, 200);
        assert_eq!(introspect(me.clone(), at.clone()).await["active"], false);
        let (s, _) = app.rest(Method::GET, "/rest/databases", &at, None).await;
        assert_eq!(s, 401);
        // The API user's token is its own: the application may not revoke it, the API user
        // may (authenticated as for client_credentials).
        assert_eq!(revoke(me.clone(), key_token.clone()).await, 400);
        assert_eq!(
            introspect(me.clone(), key_token.clone()).await["active"],
            true
        );
        let bot = (k.key_id.clone(), k.secret.clone());
        assert_eq!(revoke(bot, key_token.clone()).await, 200);
        assert_eq!(app.get_lists(&format!("Bearer {key_token}")).await, 401);
        // Revoking the refresh token ends it and its access tokens.
        app.advance(Duration::from_secs(3 * 3600));
        let at2 = app.access_token(&i).await;
        assert_eq!(revoke(me.clone(), i.refresh_token.clone()).await, 200);
        assert_eq!(app.refresh(&i).await.status(), 400);
        let (s, _) = app.rest(Method::GET, "/rest/databases", &at2, None).await;
        assert_eq!(s, 401);

        // Client authentication is required.
        let r = app
            .http
            .post(app.url("/oauth/introspect"))
            .form(&[("token", at.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
);

both!(
    rfc8414_metadata_lists_what_is_supported,
    |app: TestApp| async move {
        let v: Value = app
            .http
            .get(app.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let issuer = v["issuer"].as_str().unwrap();
        assert_eq!(v["token_endpoint"], format!("{issuer}/oauth/token"));
        assert_eq!(
            v["authorization_endpoint"],
            format!("{issuer}/oauth/authorize")
        );
        assert_eq!(
            v["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(v["authorization_response_iss_parameter_supported"], true);
        assert_eq!(v["issuer"], app.settings.issuer());
        assert_eq!(v["response_types_supported"], serde_json::json!(["code"]));
        assert!(v["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("authorization_code")));
    }
);

both!(
    the_rust_oauth2_crate_completes_the_code_flow,
    |app: TestApp| async move {
        use oauth2::basic::BasicClient;
        use oauth2::{
            AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
            RedirectUrl, RefreshToken, Scope, TokenResponse, TokenUrl,
        };
        let (id, secret) = setup(&app).await;
        let client = BasicClient::new(ClientId::new(id.clone()))
            .set_client_secret(ClientSecret::new(secret))
            .set_auth_uri(AuthUrl::new(app.url("/oauth/authorize")).unwrap())
            .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap())
            .set_redirect_uri(RedirectUrl::new(CB.into()).unwrap());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, csrf) = client
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("lists:read".into()))
            .set_pkce_challenge(challenge)
            .url();
        let q = url.query().unwrap().to_string();
        let loc = consent(&app, &q, "alice", "allow").await;
        assert_eq!(
            param(&loc, "state").as_deref(),
            Some(csrf.secret().as_str())
        );
        let http = oauth2::reqwest::Client::builder()
            .redirect(oauth2::reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let tokens = client
            .exchange_code(AuthorizationCode::new(param(&loc, "code").unwrap()))
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .unwrap();
        assert_eq!(tokens.expires_in(), Some(Duration::from_secs(14399)));
        let (s, _) = app
            .rest(
                Method::GET,
                "/rest/databases",
                tokens.access_token().secret(),
                None,
            )
            .await;
        assert_eq!(s, 200);
        let again = client
            .exchange_refresh_token(&RefreshToken::new(
                tokens.refresh_token().unwrap().secret().clone(),
            ))
            .request_async(&http)
            .await
            .unwrap();
        assert_eq!(
            again.access_token().secret(),
            tokens.access_token().secret()
        );
    }
);

both!(
    rfc9700_4_14_rotation_returns_a_new_refresh_token_and_reuse_revokes_the_family,
    |app: TestApp| async move {
        app.org("acme").await;
        app.ui_user_with_password("acme", "alice", GrantSet::apis(), PASSWORD)
            .await;
        let input = grantry_core::admin::AppInput {
            name: "Partner Mobile".into(),
            description: String::new(),
            redirect_uris: vec![CB.into()],
            scopes: None,
            public: true,
            rotate_refresh_tokens: true,
            token_format: grantry_core::model::TokenFormat::Opaque,
        };
        let (mobile, _) = grantry_core::admin::add_application(&app.cx(), "acme", input)
            .await
            .unwrap();
        let id = mobile.client_id;
        let loc = consent(&app, &std_query(&id), "alice", "allow").await;
        let code = param(&loc, "code").unwrap();
        let (_, v) = redeem(
            &app,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", CB),
                ("code_verifier", VERIFIER),
                ("client_id", &id),
            ],
        )
        .await;
        let rt1 = v["refresh_token"].as_str().unwrap().to_string();

        let refresh = |rt: String| {
            let (app, id) = (&app, id.clone());
            async move {
                redeem(
                    app,
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", &rt),
                        ("client_id", &id),
                    ],
                )
                .await
            }
        };
        let (s, a) = refresh(rt1.clone()).await;
        assert_eq!(s, 200);
        let rt2 = a["refresh_token"].as_str().unwrap().to_string();
        assert_ne!(rt2, rt1);
        let at2 = a["access_token"].as_str().unwrap().to_string();

        // The response was lost: inside the grace the old token gets the same answer again.
        app.advance(Duration::from_secs(5));
        let (s, b) = refresh(rt1.clone()).await;
        assert_eq!(s, 200);
        assert_eq!(b["refresh_token"], a["refresh_token"]);
        assert_eq!(b["access_token"], a["access_token"]);

        // The new token rotates on.
        let (s, c) = refresh(rt2.clone()).await;
        assert_eq!(s, 200);
        let rt3 = c["refresh_token"].as_str().unwrap().to_string();
        let at3 = c["access_token"].as_str().unwrap().to_string();

        // After the grace, presenting a used token revokes the whole family.
        app.advance(Duration::from_secs(10));
        let (s, v) = refresh(rt1.clone()).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")));
        for rt in [rt2, rt3] {
            let (s, _) = refresh(rt).await;
            assert_eq!(s, 400);
        }
        for at in [at2, at3] {
            let (s, _) = app.rest(Method::GET, "/rest/databases", &at, None).await;
            assert_eq!(s, 401);
        }
        let log = grantry_core::admin::audit_log(&app.cx(), "acme", None)
            .await
            .unwrap();
        let reuse = log
            .iter()
            .filter(|e| {
                e.detail["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("family was revoked"))
            })
            .count();
        assert_eq!(reuse, 1);
    }
);

both!(
    an_api_user_introspects_and_revokes_the_tokens_of_its_keys_only,
    |app: TestApp| async move {
        // One configuration for everything, as openid-client uses it: the Key ID and a secret
        // key as client credentials for client_credentials, introspection and revocation.
        let i = app.integration("acme").await;
        let at = app.access_token(&i).await;
        let bot = app.api_user("acme", "bot", "lists:read").await;
        let other = app.api_user("acme", "other", "lists:read").await;
        let key_token = |k: &crate::harness::Key| {
            let app = &app;
            let (id, secret) = (k.key_id.clone(), k.secret.clone());
            async move {
                let r = app
                    .token(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", &id),
                        ("client_secret", &secret),
                    ])
                    .await;
                r.json::<Value>().await.unwrap()["access_token"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
        };
        let (mine, theirs) = (key_token(&bot).await, key_token(&other).await);
        let call = |path: &'static str, token: String| {
            let app = &app;
            let (id, secret) = (bot.key_id.clone(), bot.secret.clone());
            async move {
                let r = app
                    .http
                    .post(app.url(path))
                    .form(&[
                        ("client_id", id.as_str()),
                        ("client_secret", secret.as_str()),
                        ("token", token.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            }
        };
        let (s, v) = call("/oauth/introspect", mine.clone()).await;
        assert_eq!((s, v["active"].as_bool()), (200, Some(true)), "{v}");
        assert_eq!(v["client_id"], bot.key_id.as_str());
        assert_eq!(v["username"], "bot");
        for foreign in [theirs.clone(), at.clone(), i.refresh_token.clone()] {
            let (s, v) = call("/oauth/introspect", foreign).await;
            assert_eq!((s, v), (200, serde_json::json!({"active": false})));
        }
        for foreign in [theirs.clone(), at.clone()] {
            let (s, v) = call("/oauth/revoke", foreign).await;
            assert_eq!(
                (s, v["error"].as_str()),
                (400, Some("invalid_request")),
                "{v}"
            );
        }
        assert_eq!(app.get_lists(&format!("Bearer {theirs}")).await, 200);
        let (s, _) = app.rest(Method::GET, "/rest/databases", &at, None).await;
        assert_eq!(s, 200);
        let (s, _) = call("/oauth/revoke", mine.clone()).await;
        assert_eq!(s, 200);
        assert_eq!(app.get_lists(&format!("Bearer {mine}")).await, 401);
        let (_, v) = call("/oauth/introspect", mine).await;
        assert_eq!(v["active"], false);
        // A wrong secret key is invalid_client, as at the token endpoint.
        let r = app
            .http
            .post(app.url("/oauth/introspect"))
            .form(&[
                ("client_id", bot.key_id.as_str()),
                ("client_secret", "gsk_test-1_nope"),
                ("token", "x"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(app.audit_count("acme", "token.revoked").await, 1);
    }
);

both!(
    rfc7662_a_rotated_away_refresh_token_is_inactive,
    |app: TestApp| async move {
        app.org("acme").await;
        let input = grantry_core::admin::AppInput {
            name: "Rotating".into(),
            description: String::new(),
            redirect_uris: vec![],
            scopes: None,
            public: false,
            rotate_refresh_tokens: true,
            token_format: grantry_core::model::TokenFormat::Opaque,
        };
        let (a, secret) = grantry_core::admin::add_application(&app.cx(), "acme", input)
            .await
            .unwrap();
        let secret = secrecy::ExposeSecret::expose_secret(&secret.unwrap()).to_string();
        let client_id = a.client_id;
        let old = app.access("acme", &client_id, "admin").await;
        let r = app
            .token(&[
                ("grant_type", "refresh_token"),
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("refresh_token", &old),
            ])
            .await;
        let v: Value = r.json().await.unwrap();
        let new = v["refresh_token"].as_str().unwrap().to_string();
        assert_ne!(new, old);
        let introspect = |token: String| {
            let app = &app;
            let (id, secret) = (client_id.clone(), secret.clone());
            async move {
                app.http
                    .post(app.url("/oauth/introspect"))
                    .basic_auth(&id, Some(&secret))
                    .form(&[("token", token.as_str())])
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            }
        };
        assert_eq!(introspect(old).await, serde_json::json!({"active": false}));
        assert_eq!(introspect(new).await["active"], true);
    }
);

both!(
    rfc6749_4_1_3_a_code_of_another_client_is_refused_before_it_is_spent,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let (thief, thief_secret) = app.client("acme", "Thief", CB, false).await;
        let thief_secret = thief_secret.unwrap();
        let loc = consent(&app, &std_query(&id), "alice", "allow").await;
        let code = param(&loc, "code").unwrap();
        let by = |client: &str, secret: &str| {
            vec![
                ("grant_type".to_string(), "authorization_code".to_string()),
                ("code".into(), code.clone()),
                ("redirect_uri".into(), CB.into()),
                ("code_verifier".into(), VERIFIER.into()),
                ("client_id".into(), client.into()),
                ("client_secret".into(), secret.into()),
            ]
        };
        let post = |form: Vec<(String, String)>| {
            let app = &app;
            async move {
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
        let (s, v) = post(by(&thief, &thief_secret)).await;
        assert_eq!((s, v["error"].as_str()), (400, Some("invalid_grant")));
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("another client"),
            "{v}"
        );
        // The rightful client still redeems it, and the thief's second try revokes nothing.
        let (s, v) = post(by(&id, &secret)).await;
        assert_eq!(s, 200, "{v}");
        let at = v["access_token"].as_str().unwrap().to_string();
        let (s, _) = post(by(&thief, &thief_secret)).await;
        assert_eq!(s, 400);
        let (s, _) = app.rest(Method::GET, "/rest/databases", &at, None).await;
        assert_eq!(s, 200);
    }
);

both!(
    rfc9700_2_1_redirect_uris_at_registration_are_https_or_loopback_http,
    |app: TestApp| async move {
        app.org("acme").await;
        let register = |uri: &str| grantry_core::admin::AppInput {
            name: format!("App {uri}"),
            description: String::new(),
            redirect_uris: vec![uri.to_string()],
            scopes: None,
            public: false,
            rotate_refresh_tokens: false,
            token_format: grantry_core::model::TokenFormat::Opaque,
        };
        for bad in [
            "http://partner.example/cb",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://partner.example/cb#frag",
            "https://pärtner.example/cb",
        ] {
            let e = grantry_core::admin::add_application(&app.cx(), "acme", register(bad))
                .await
                .err();
            assert!(
                matches!(&e, Some(grantry_core::admin::AdminError::Invalid(m)) if m.contains(bad)),
                "{bad}: {e:?}"
            );
        }
        for good in [
            "https://partner.example/cb",
            "http://127.0.0.1:9/cb",
            "http://[::1]/cb",
        ] {
            grantry_core::admin::add_application(&app.cx(), "acme", register(good))
                .await
                .unwrap();
        }
        assert_eq!(app.audit_count("acme", "application.created").await, 3);
    }
);

both!(
    every_page_forbids_framing_referrers_and_caching,
    |app: TestApp| async move {
        let (id, _) = setup(&app).await;
        let q = std_query(&id);
        let b = app.browser();
        let mut answers = vec![
            (
                "sign-in page",
                b.get(app.url(&format!("/oauth/authorize?{q}")))
                    .send()
                    .await
                    .unwrap(),
            ),
            (
                "error page",
                b.get(app.url("/oauth/authorize?client_id=nope"))
                    .send()
                    .await
                    .unwrap(),
            ),
            (
                "failed sign-in",
                app.post_login(&q, "alice", "wrong password!").await,
            ),
            (
                "api-keys docs",
                b.get(app.url("/docs/api-keys")).send().await.unwrap(),
            ),
        ];
        let signed_in = app.post_login(&q, "alice", PASSWORD).await;
        let session = signed_in.headers()["set-cookie"].to_str().unwrap();
        let session = session.split(';').next().unwrap().to_string();
        let consent = b
            .get(app.url(&format!("/oauth/authorize?{q}")))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        let consent_headers = consent.headers().clone();
        let page = consent.text().await.unwrap();
        let csrf = hidden(&page, "csrf");
        answers.push(("sign-in redirect", signed_in));
        // The redirect that carries the code back to the client.
        let code_redirect = b
            .post(app.url("/oauth/authorize"))
            .header("cookie", &session)
            .form(&[
                ("query", q.as_str()),
                ("csrf", csrf.as_str()),
                ("decision", "allow"),
            ])
            .send()
            .await
            .unwrap();
        assert!(location(&code_redirect).contains("code="));
        answers.push(("code redirect", code_redirect));
        let mut all: Vec<(&str, reqwest::header::HeaderMap)> = answers
            .into_iter()
            .map(|(n, r)| (n, r.headers().clone()))
            .collect();
        all.push(("consent page", consent_headers));
        for (name, h) in all {
            let get = |k: &str| {
                h.get(k)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default()
            };
            assert!(
                get("content-security-policy").contains("frame-ancestors 'none'"),
                "{name}: {h:?}"
            );
            assert!(
                get("content-security-policy").contains("default-src 'none'"),
                "{name}"
            );
            assert_eq!(get("x-frame-options"), "DENY", "{name}");
            assert_eq!(get("referrer-policy"), "no-referrer", "{name}");
            assert_eq!(get("cache-control"), "no-store", "{name}");
        }
    }
);
