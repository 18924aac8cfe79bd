//! The Event API: stored durably, errors as `{code, description}`.

use grantry_core::Clock;
use serde_json::{json, Value};

use crate::both;
use crate::harness::TestApp;

async fn post(
    app: &TestApp,
    auth: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Option<String>, Value) {
    let mut req = app
        .http
        .post(app.url("/campaignapi/resources/v3/events"))
        .header("content-type", content_type)
        .body(body);
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
    events_are_stored_and_answered_with_a_transaction_id,
    |app: TestApp| async move {
        app.org("acme").await;
        let k = app.api_user("acme", "bot", "events:write").await;
        let auth = format!("Bearer {}", k.bearer);
        let body = json!({"event-id": "evt_15675803030001", "event-key": "john@example.com", "event-params": {"EMAIL": "john", "SCORE": 7}});
        let (s, _, v) = post(
            &app,
            Some(&auth),
            "application/json",
            body.to_string().into_bytes(),
        )
        .await;
        assert_eq!(s, 200);
        let tx1 = v["transaction-id"].as_str().unwrap().to_string();
        let (_, _, v) = post(
            &app,
            Some(&auth),
            "application/json",
            body.to_string().into_bytes(),
        )
        .await;
        assert_ne!(v["transaction-id"].as_str().unwrap(), tx1);

        let stored = app.store.events(1).await.unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0].transaction_id, tx1);
        assert_eq!(stored[0].event_id, "evt_15675803030001");
        assert_eq!(stored[0].event_key, "john@example.com");
        assert_eq!(stored[0].params["SCORE"], 7);
        assert_eq!(stored[0].received_at, app.clock.now());
    }
);

both!(
    bad_events_get_code_and_description_and_store_nothing,
    |app: TestApp| async move {
        app.org("acme").await;
        let k = app.api_user("acme", "bot", "events:write").await;
        let auth = format!("Bearer {}", k.bearer);
        let many: serde_json::Map<String, Value> = (0..401)
            .map(|i| (format!("p{i}"), Value::from(i)))
            .collect();
        let cases: Vec<(Vec<u8>, &str, u16, u64)> = vec![
            (b"{not json".to_vec(), "application/json", 400, 1000),
            (
                b"{\"event-key\": \"k\"}".to_vec(),
                "application/json",
                400,
                1001,
            ),
            (
                b"{\"event-id\": \"\", \"event-key\": \"k\"}".to_vec(),
                "application/json",
                400,
                1001,
            ),
            (
                b"{\"event-id\": 1, \"event-key\": \"k\"}".to_vec(),
                "application/json",
                400,
                1002,
            ),
            (
                json!({"event-id": "i", "event-key": "k", "event-params": many})
                    .to_string()
                    .into_bytes(),
                "application/json",
                400,
                1003,
            ),
            (vec![b' '; 300 * 1024], "application/json", 413, 1004),
            (b"{}".to_vec(), "text/plain", 415, 1005),
        ];
        for (body, ct, status, code) in cases {
            let (s, _, v) = post(&app, Some(&auth), ct, body).await;
            assert_eq!((s, v["code"].as_u64()), (status, Some(code)), "{v}");
            assert!(v["description"].as_str().is_some_and(|d| !d.is_empty()));
        }
        // With 400 parameters exactly, it is accepted.
        let ok: serde_json::Map<String, Value> = (0..400)
            .map(|i| (format!("p{i}"), Value::from(i)))
            .collect();
        let (s, _, _) = post(
            &app,
            Some(&auth),
            "application/json",
            json!({"event-id": "i", "event-key": "k", "event-params": ok})
                .to_string()
                .into_bytes(),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(app.store.events(1).await.unwrap().len(), 1);

        let (s, ch, v) = post(&app, None, "application/json", b"{}".to_vec()).await;
        assert_eq!((s, v["code"].as_u64()), (401, Some(2001)));
        assert_eq!(ch.as_deref(), Some("Bearer realm=\"grantry\""));
        let (s, ch, v) = post(
            &app,
            Some("Bearer bm9wZTpub3Bl"),
            "application/json",
            b"{}".to_vec(),
        )
        .await;
        assert_eq!((s, v["code"].as_u64()), (401, Some(2001)));
        assert!(ch.unwrap().contains("invalid_token"));
    }
);
