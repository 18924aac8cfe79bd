//! Requests no handler accepts (unknown paths, wrong methods, undecodable paths, bodies of
//! the wrong type) are answered in the format of the API they were sent to, never as plain
//! text (docs/architecture.md, the serving loop).

use reqwest::Method;
use serde_json::{json, Value};

use crate::both;
use crate::harness::TestApp;

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = app
        .http
        .request(method, app.url(path))
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.unwrap())
}

fn rest_error(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v["links"], json!([]), "{v}");
    assert_eq!(v["data"], Value::Null, "{v}");
    v["meta"]["generalErrors"][0].as_str().unwrap().to_string()
}

both!(rest_rejections_are_rest_errors, |app: TestApp| async move {
    let i = app.integration("acme").await;
    let t = app.access_token(&i).await;

    let (s, h, b) = send(&app, Method::PUT, "/rest/databases", Some(&t), None, "").await;
    assert_eq!(s, 405, "{b}");
    assert!(rest_error(&b).contains("does not take this method"));
    let allow = h["allow"].to_str().unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    // Without a credential too: the route is refused before any lookup.
    let (s, _, b) = send(
        &app,
        Method::PUT,
        "/rest/databases/1/contacts/2",
        None,
        None,
        "",
    )
    .await;
    assert_eq!(s, 405);
    rest_error(&b);

    let (s, _, b) = send(&app, Method::GET, "/rest/nowhere", Some(&t), None, "").await;
    assert_eq!(s, 404);
    assert_eq!(rest_error(&b), "no such REST resource");

    let (s, _, b) = send(&app, Method::GET, "/rest/databases/%FF", Some(&t), None, "").await;
    assert_eq!(s, 400, "{b}");
    assert!(rest_error(&b).starts_with("the path is not valid"), "{b}");
    let (s, _, b) = send(
        &app,
        Method::GET,
        "/rest/databases/1/contacts/%C3%28",
        Some(&t),
        None,
        "",
    )
    .await;
    assert_eq!(s, 400, "{b}");
    rest_error(&b);

    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let (s, _, b) = send(
            &app,
            Method::POST,
            "/rest/databases",
            Some(&t),
            ct,
            r#"{"name": "N"}"#,
        )
        .await;
        assert_eq!(s, 415, "{ct:?}: {b}");
        assert!(rest_error(&b).contains("application/json"));
    }
    let json_ct = Some("application/json; charset=utf-8");
    for bad in [
        "{",
        "[]",
        r#"{"name": 5}"#,
        r#"{"name": "N", "x": 1}"#,
        "\u{0}",
    ] {
        let (s, _, b) = send(
            &app,
            Method::POST,
            "/rest/databases",
            Some(&t),
            json_ct,
            bad,
        )
        .await;
        assert_eq!(s, 400, "{bad:?}: {b}");
        assert!(
            rest_error(&b).starts_with("the request body is not valid JSON"),
            "{b}"
        );
    }
    let (s, _, b) = send(
        &app,
        Method::POST,
        "/rest/databases",
        Some(&t),
        json_ct,
        r#"{"name": "N"}"#,
    )
    .await;
    assert_eq!(s, 201, "{b}");
});

both!(
    event_api_rejections_are_event_errors,
    |app: TestApp| async move {
        let (s, h, b) = send(
            &app,
            Method::GET,
            "/campaignapi/resources/v3/events",
            None,
            None,
            "",
        )
        .await;
        assert_eq!(s, 405);
        assert_eq!(h["allow"], "POST");
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["code"], 1007, "{v}");
        assert_eq!(v["description"], "send events with POST");

        let (s, _, b) = send(
            &app,
            Method::POST,
            "/campaignapi/resources/v3/other",
            None,
            None,
            "",
        )
        .await;
        assert_eq!(s, 404);
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["code"], 1007, "{v}");
    }
);

both!(xml_api_rejections_are_faults, |app: TestApp| async move {
    let (s, h, b) = send(&app, Method::GET, "/XMLAPI", None, None, "").await;
    assert_eq!(s, 405, "{b}");
    assert_eq!(h["allow"], "POST");
    assert!(
        b.contains("<errorid>51</errorid>") && b.contains("send the envelope with POST"),
        "{b}"
    );
    assert!(h["content-type"].to_str().unwrap().contains("xml"));

    // A legacy client's session id in the path: no session matches it (an Authorization
    // header does not stand in for the session the path names).
    let i = app.integration("acme").await;
    let t = app.access_token(&i).await;
    let env = "<Envelope><Body><GetLists/></Body></Envelope>";
    for path in ["/XMLAPI;jsessionid=ABC123", "/XMLAPI;JSESSIONID=x;other=1"] {
        for token in [None, Some(t.as_str())] {
            let (s, h, b) = send(&app, Method::POST, path, token, Some("text/xml"), env).await;
            assert_eq!(s, 401, "{path}: {b}");
            assert!(b.contains("<errorid>145</errorid>"), "{b}");
            assert!(
                b.contains(
                    "Session expired or invalid: the session is unknown, ended or was idle too long"
                ),
                "{b}"
            );
            assert!(h["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer realm=\"grantry\", error=\"invalid_token\""));
        }
    }
    let (s, _, b) = send(
        &app,
        Method::POST,
        "/XMLAPI;foo=bar",
        None,
        Some("text/xml"),
        env,
    )
    .await;
    assert_eq!(s, 404, "{b}");
    assert!(b.contains("<errorid>51</errorid>"), "{b}");
    // The plain path still serves the same envelope.
    let (s, _, b) = send(
        &app,
        Method::POST,
        "/XMLAPI",
        Some(&t),
        Some("text/xml"),
        env,
    )
    .await;
    assert_eq!(s, 200, "{b}");
});

both!(
    oauth_rejections_are_rfc6749_errors,
    |app: TestApp| async move {
        let check = |s: u16, h: &reqwest::header::HeaderMap, b: &str, want: u16| {
            assert_eq!(s, want, "{b}");
            let v: Value = serde_json::from_str(b).unwrap_or_else(|e| panic!("{e}: {b}"));
            assert_eq!(v["error"], "invalid_request", "{v}");
            assert!(!v["error_description"].as_str().unwrap().is_empty());
            assert_eq!(h["cache-control"], "no-store");
        };
        for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
            let (s, h, b) = send(&app, Method::GET, path, None, None, "").await;
            check(s, &h, &b, 405);
            assert_eq!(h["allow"], "POST");
        }
        let (s, h, b) = send(&app, Method::DELETE, "/oauth/authorize", None, None, "").await;
        check(s, &h, &b, 405);
        let (s, h, b) = send(&app, Method::POST, "/oauth/jwks", None, None, "").await;
        check(s, &h, &b, 405);
        let (s, h, b) = send(&app, Method::GET, "/oauth/nothing", None, None, "").await;
        check(s, &h, &b, 404);
        assert!(b.contains("/.well-known/oauth-authorization-server"));
    }
);
