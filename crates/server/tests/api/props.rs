//! Property tests at the HTTP surface: generated and random requests, with and without real
//! credentials, sent through `app(state)` to every API; none is answered with a server
//! error. `PROPTEST_CASES` raises the case count.

use axum::body::Body;
use axum::http::{HeaderValue, Request};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::json;
use tower::ServiceExt;

use grantry_server::AppState;

use crate::both;
use crate::harness::{Integration, TestApp};

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// A request as the properties describe it.
#[derive(Clone, Debug)]
struct Req {
    method: &'static str,
    path: String,
    content_type: Option<String>,
    authorization: Option<String>,
    body: Vec<u8>,
}

/// Values a client might send: the real ones, near misses, and hostile ones.
fn value(real: Vec<String>) -> impl Strategy<Value = String> {
    let real = proptest::sample::select(real);
    prop_oneof![
        3 => real,
        1 => any::<String>(),
        1 => Just("\u{0}".to_string()),
        1 => Just("x\u{0}y".to_string()),
        1 => Just("99999999999999999999".to_string()),
        1 => Just("-1".to_string()),
        1 => Just(String::new()),
        1 => "[ -~]{0,20}",
    ]
}

fn authorization(real: Vec<String>) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        3 => proptest::sample::select(real).prop_map(Some),
        1 => any::<String>().prop_map(Some),
        1 => any::<String>().prop_map(|s| Some(format!("Bearer {s}"))),
        1 => (any::<String>(), any::<String>())
            .prop_map(|(u, p)| Some(format!("Basic {}", STANDARD.encode(format!("{u}:{p}"))))),
        1 => (any::<String>(), any::<String>())
            .prop_map(|(u, p)| Some(format!("Bearer {}", STANDARD.encode(format!("{u}:{p}"))))),
    ]
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..200)
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Sends `r` through the router; the status.
fn send(router: &axum::Router, r: &Req) -> u16 {
    let mut b = Request::builder().method(r.method).uri(&r.path);
    if let Some(ct) = &r.content_type {
        b = b.header("content-type", ct);
    }
    if let Some(a) = r
        .authorization
        .as_ref()
        .and_then(|a| HeaderValue::from_bytes(a.as_bytes()).ok())
    {
        b = b.header("authorization", a);
    }
    let req = b.body(Body::from(r.body.clone())).unwrap();
    let router = router.clone();
    let handle = tokio::runtime::Handle::current();
    let resp = tokio::task::block_in_place(|| handle.block_on(router.oneshot(req))).unwrap();
    resp.status().as_u16()
}

fn check(router: &axum::Router, strategy: impl Strategy<Value = Req>) {
    let mut runner = TestRunner::new(config());
    runner
        .run(&strategy, |r| {
            let status = send(router, &r);
            prop_assert!(status < 500, "{status} for {r:?}");
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

both!(
    generated_requests_never_get_a_server_error,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let token = app.access_token(&i).await;
        let key = app
            .api_user(
                "acme",
                "bot",
                "events:write lists:read lists:write contacts:read contacts:write",
            )
            .await;
        let (_, v) = app
            .rest(
                Method::POST,
                "/rest/databases",
                &token,
                Some(json!({"name": "L"})),
            )
            .await;
        let db = v["data"]["id"].as_i64().unwrap().to_string();
        let (_, v) = app
            .rest(
                Method::POST,
                &format!("/rest/databases/{db}/contacts"),
                &token,
                Some(json!({"email": "ann@example.com"})),
            )
            .await;
        let contact = v["data"]["id"].as_i64().unwrap().to_string();
        let router = grantry_server::app(AppState::new(
            app.store.clone(),
            app.clock.clone(),
            app.settings.clone(),
        ));
        let bearers = vec![
            format!("Bearer {token}"),
            format!("Bearer {}", key.bearer),
            format!(
                "Basic {}",
                STANDARD.encode(format!("{}:{}", i.client_id, i.client_secret))
            ),
            format!("Basic {}", STANDARD.encode(format!("bot:{}", key.secret))),
        ];

        // The token endpoint family: forms of its parameters, or anything at all.
        let names = proptest::sample::select(vec![
            "grant_type",
            "client_id",
            "client_secret",
            "refresh_token",
            "token",
            "scope",
            "code",
            "redirect_uri",
            "callback_uri",
            "code_verifier",
            "token_type_hint",
            "x",
        ]);
        let values = value(vec![
            "refresh_token".into(),
            "client_credentials".into(),
            "authorization_code".into(),
            i.client_id.clone(),
            i.client_secret.clone(),
            i.refresh_token.clone(),
            token.clone(),
            key.key_id.clone(),
            key.secret.clone(),
            "lists:read".into(),
            "access_token".into(),
        ]);
        let form = proptest::collection::vec((names, values), 0..6).prop_map(|pairs| {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
                .into_bytes()
        });
        check(
            &router,
            (
                proptest::sample::select(vec![
                    "/oauth/token",
                    "/oauth/introspect",
                    "/oauth/revoke",
                ]),
                proptest::option::of(proptest::sample::select(vec![
                    "application/x-www-form-urlencoded".to_string(),
                    "application/x-www-form-urlencoded; charset=utf-8".into(),
                    "application/json".into(),
                ])),
                authorization(bearers.clone()),
                prop_oneof![4 => form, 1 => bytes()],
            )
                .prop_map(|(path, content_type, authorization, body)| Req {
                    method: "POST",
                    path: path.into(),
                    content_type,
                    authorization,
                    body,
                }),
        );

        // The XML API: envelopes of its operations with generated fields, or any bytes.
        let ops = proptest::sample::select(vec![
            "GetLists",
            "SelectRecipientData",
            "AddRecipient",
            "UpdateRecipient",
            "RemoveRecipient",
            "Login",
            "Nothing",
        ]);
        let fields = proptest::sample::select(vec![
            "LIST_ID",
            "EMAIL",
            "RECIPIENT_ID",
            "OLD_EMAIL",
            "UPDATE_IF_FOUND",
            "COLUMN",
        ]);
        let field_values = value(vec![
            db.clone(),
            contact.clone(),
            "ann@example.com".into(),
            "TRUE".into(),
            "<NAME>EMAIL</NAME><VALUE>bob@example.com</VALUE>".into(),
            "<NAME>City</NAME><VALUE>Bern</VALUE>".into(),
            "&#0;".into(),
            "&amp;".into(),
        ]);
        let envelope = (ops, proptest::collection::vec((fields, field_values), 0..6)).prop_map(
            |(op, fields)| {
                let inner: String = fields
                    .iter()
                    .map(|(k, v)| format!("<{k}>{v}</{k}>"))
                    .collect();
                format!("<Envelope><Body><{op}>{inner}</{op}></Body></Envelope>").into_bytes()
            },
        );
        check(
            &router,
            (
                prop_oneof![envelope, bytes()],
                any::<bool>(),
                authorization(bearers.clone()),
            )
                .prop_map(|(xml, as_form, authorization)| {
                    let (content_type, body) = if as_form {
                        let x = String::from_utf8_lossy(&xml).to_string();
                        (
                            "application/x-www-form-urlencoded",
                            format!("xml={}", encode(&x)).into_bytes(),
                        )
                    } else {
                        ("text/xml", xml)
                    };
                    Req {
                        method: "POST",
                        path: "/XMLAPI".into(),
                        content_type: Some(content_type.into()),
                        authorization,
                        body,
                    }
                }),
        );

        // The REST API: its routes with generated ids, queries (paging) and JSON bodies.
        let segment =
            || value(vec![db.clone(), contact.clone(), "0".into()]).prop_map(|s| encode(&s));
        let query = proptest::collection::vec(
            (
                proptest::sample::select(vec!["page", "pageSize", "email", "x"]),
                value(vec![
                    "1".into(),
                    "2".into(),
                    "1000".into(),
                    "1001".into(),
                    "0".into(),
                    "ann@example.com".into(),
                ]),
            ),
            0..4,
        )
        .prop_map(|pairs| {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
        });
        let json_body = prop_oneof![
            (
                value(vec!["N2".into()]),
                value(vec!["bob@example.com".into()]),
                proptest::collection::btree_map(any::<String>(), any::<String>(), 0..4)
            )
                .prop_map(|(name, email, columns)| {
                    json!({"name": name, "email": email, "columns": columns})
                        .to_string()
                        .into_bytes()
                }),
            (
                value(vec!["ann@example.com".into()]),
                proptest::collection::btree_map("[A-Za-z]{1,5}", any::<String>(), 0..4)
            )
                .prop_map(|(email, columns)| {
                    json!({"email": email, "columns": columns})
                        .to_string()
                        .into_bytes()
                }),
            bytes(),
        ];
        check(
            &router,
            (
                proptest::sample::select(vec![
                    ("GET", 0),
                    ("POST", 0),
                    ("GET", 1),
                    ("DELETE", 1),
                    ("GET", 2),
                    ("POST", 2),
                    ("GET", 3),
                    ("PATCH", 3),
                    ("DELETE", 3),
                    ("PUT", 1),
                ]),
                segment(),
                segment(),
                query,
                json_body,
                authorization(bearers.clone()),
                proptest::option::of(Just("application/json".to_string())),
            )
                .prop_map(
                    |((method, shape), a, b, q, body, authorization, content_type)| {
                        let path = match shape {
                            0 => "/rest/databases".to_string(),
                            1 => format!("/rest/databases/{a}"),
                            2 => format!("/rest/databases/{a}/contacts?{q}"),
                            _ => format!("/rest/databases/{a}/contacts/{b}"),
                        };
                        Req {
                            method,
                            path,
                            content_type,
                            authorization,
                            body,
                        }
                    },
                ),
        );

        // The Event API: generated events, JSON-ish text and any bytes.
        let event = (
            value(vec!["signup".into()]),
            value(vec!["ann@example.com".into()]),
            proptest::collection::btree_map(any::<String>(), any::<String>(), 0..5),
        )
            .prop_map(|(id, key, params)| {
                json!({"event-id": id, "event-key": key, "event-params": params})
                    .to_string()
                    .into_bytes()
            });
        check(
            &router,
            (
                prop_oneof![3 => event, 1 => bytes()],
                authorization(bearers.clone()),
            )
                .prop_map(|(body, authorization)| Req {
                    method: "POST",
                    path: "/campaignapi/resources/v3/events".into(),
                    content_type: Some("application/json".into()),
                    authorization,
                    body,
                }),
        );

        // Paging: answered as a reference reads the parameters (each once, whole numbers,
        // page from 1, pageSize 1-1000), never otherwise.
        let number = prop_oneof![
            (-3i64..1100).prop_map(|n| n.to_string()),
            Just("1e3".to_string()),
            Just(" 1".to_string()),
            Just("+2".to_string()),
            Just("99999999999999999999".to_string()),
            "[0-9a-z%]{0,4}",
        ];
        let paging = proptest::collection::vec(
            (proptest::sample::select(vec!["page", "pageSize"]), number),
            0..3,
        );
        // A list and a token of its own: the REST property above may have deleted the first
        // list, and the token endpoint property may have revoked the first token (it sends
        // `/oauth/revoke` with the real token and the application's credentials).
        let (client_id, client_secret) = app.app("acme", "Paging", None).await;
        let paging_token = app
            .access_token(&Integration {
                refresh_token: app.access("acme", &client_id, "admin").await,
                client_id,
                client_secret,
            })
            .await;
        let (status, v) = app
            .rest(
                Method::POST,
                "/rest/databases",
                &paging_token,
                Some(json!({"name": "Paged"})),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        let paged = v["data"]["id"].as_i64().unwrap();
        let mut runner = TestRunner::new(config());
        let bearer = format!("Bearer {paging_token}");
        runner
            .run(&paging, |pairs| {
                let query = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(&pairs)
                    .finish();
                let status = send(
                    &router,
                    &Req {
                        method: "GET",
                        path: format!("/rest/databases/{paged}/contacts?{query}"),
                        content_type: None,
                        authorization: Some(bearer.clone()),
                        body: vec![],
                    },
                );
                let get = |k: &str| -> Vec<&String> {
                    pairs
                        .iter()
                        .filter(|(n, _)| *n == k)
                        .map(|(_, v)| v)
                        .collect()
                };
                let read = |k: &str, default: i64| -> Option<i64> {
                    match get(k).as_slice() {
                        [] => Some(default),
                        [v] => v.parse().ok(),
                        _ => None,
                    }
                };
                let ok = match (read("page", 1), read("pageSize", 50)) {
                    (Some(page), Some(size)) => page >= 1 && (1..=1000).contains(&size),
                    _ => false,
                };
                prop_assert_eq!(status, if ok { 200 } else { 400 }, "{}", query);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));

        // Any Authorization header on a protected read.
        check(
            &router,
            authorization(bearers).prop_map(|authorization| Req {
                method: "GET",
                path: "/rest/databases".into(),
                content_type: None,
                authorization,
                body: vec![],
            }),
        );
    }
);
