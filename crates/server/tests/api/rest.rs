//! The REST API (docs/architecture.md, protected APIs): databases and contacts, grants, org isolation.

use reqwest::Method;
use serde_json::json;

use crate::both;
use crate::harness::TestApp;

both!(
    databases_and_contacts_round_trip,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let t = app.access_token(&i).await;
        let (s, v) = app
            .rest(
                Method::POST,
                "/rest/databases",
                &t,
                Some(json!({"name": "Newsletter"})),
            )
            .await;
        assert_eq!(s, 201);
        let db = v["data"]["id"].as_i64().unwrap();
        assert_eq!(v["meta"]["generalErrors"], json!([]));

        let (s, v) = app
            .rest(
                Method::POST,
                "/rest/databases",
                &t,
                Some(json!({"name": "Newsletter"})),
            )
            .await;
        assert_eq!(s, 409, "{v}");

        let path = format!("/rest/databases/{db}/contacts");
        let mut ids = vec![];
        for n in 0..5 {
            let (s, v) = app
            .rest(Method::POST, &path, &t, Some(json!({"email": format!("p{n}@example.com"), "columns": {"First": format!("P{n}")}})))
            .await;
            assert_eq!(s, 201, "{v}");
            ids.push(v["data"]["id"].as_i64().unwrap());
        }
        let (s, v) = app
            .rest(
                Method::POST,
                &path,
                &t,
                Some(json!({"email": "P0@EXAMPLE.com"})),
            )
            .await;
        assert_eq!(s, 409, "{v}");
        let (s, v) = app
            .rest(
                Method::POST,
                &path,
                &t,
                Some(json!({"email": "not-an-address"})),
            )
            .await;
        assert_eq!(s, 400);
        assert!(v["meta"]["fieldErrors"]["email"].is_string());
        let (s, v) = app
            .rest(
                Method::POST,
                &path,
                &t,
                Some(json!({"mail": "x@example.com"})),
            )
            .await;
        assert_eq!(s, 400);
        assert!(!v["meta"]["generalErrors"][0].as_str().unwrap().is_empty());

        let (s, v) = app
            .rest(Method::GET, &format!("/rest/databases/{db}"), &t, None)
            .await;
        assert_eq!((s, v["data"]["size"].as_i64()), (200, Some(5)));

        let (s, v) = app
            .rest(Method::GET, &format!("{path}?page=2&pageSize=2"), &t, None)
            .await;
        assert_eq!(s, 200);
        let page: Vec<_> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect();
        assert_eq!(page, ids[2..4]);
        assert_eq!(v["meta"]["attributes"]["total"], 5);
        let (s, _) = app
            .rest(Method::GET, &format!("{path}?pageSize=0"), &t, None)
            .await;
        assert_eq!(s, 400);

        let (s, v) = app
            .rest(
                Method::GET,
                &format!("{path}?email=P3@example.com"),
                &t,
                None,
            )
            .await;
        assert_eq!(s, 200);
        assert_eq!(v["data"][0]["id"].as_i64(), Some(ids[3]));
        assert_eq!(v["data"][0]["columns"]["First"], "P3");

        let one = format!("{path}/{}", ids[1]);
        let (s, v) = app
            .rest(
                Method::PATCH,
                &one,
                &t,
                Some(json!({"email": "new@example.com", "columns": {"Last": "L"}})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = app.rest(Method::GET, &one, &t, None).await;
        assert_eq!(s, 200);
        assert_eq!(v["data"]["email"], "new@example.com");
        assert_eq!(v["data"]["columns"], json!({"First": "P1", "Last": "L"}));

        let (s, _) = app.rest(Method::DELETE, &one, &t, None).await;
        assert_eq!(s, 200);
        let (s, _) = app.rest(Method::GET, &one, &t, None).await;
        assert_eq!(s, 404);
        let (s, _) = app
            .rest(Method::GET, &format!("{path}/abc"), &t, None)
            .await;
        assert_eq!(s, 400);

        let (s, _) = app
            .rest(Method::DELETE, &format!("/rest/databases/{db}"), &t, None)
            .await;
        assert_eq!(s, 200);
        let (s, _) = app.rest(Method::GET, &path, &t, None).await;
        assert_eq!(s, 404);
    }
);

both!(
    one_org_cannot_see_or_touch_another_orgs_data,
    |app: TestApp| async move {
        let a = app.integration("alpha").await;
        let b = app.integration("beta").await;
        let ta = app.access_token(&a).await;
        let tb = app.access_token(&b).await;
        let (_, v) = app
            .rest(
                Method::POST,
                "/rest/databases",
                &ta,
                Some(json!({"name": "Secret"})),
            )
            .await;
        let db = v["data"]["id"].as_i64().unwrap();
        let (_, v) = app
            .rest(
                Method::POST,
                &format!("/rest/databases/{db}/contacts"),
                &ta,
                Some(json!({"email": "vip@example.com"})),
            )
            .await;
        let cid = v["data"]["id"].as_i64().unwrap();

        let (s, v) = app.rest(Method::GET, "/rest/databases", &tb, None).await;
        assert_eq!((s, v["data"].as_array().unwrap().len()), (200, 0));
        for (m, p, body) in [
            (Method::GET, format!("/rest/databases/{db}"), None),
            (Method::DELETE, format!("/rest/databases/{db}"), None),
            (Method::GET, format!("/rest/databases/{db}/contacts"), None),
            (
                Method::POST,
                format!("/rest/databases/{db}/contacts"),
                Some(json!({"email": "x@example.com"})),
            ),
            (
                Method::GET,
                format!("/rest/databases/{db}/contacts/{cid}"),
                None,
            ),
            (
                Method::PATCH,
                format!("/rest/databases/{db}/contacts/{cid}"),
                Some(json!({"columns": {"a": "b"}})),
            ),
            (
                Method::DELETE,
                format!("/rest/databases/{db}/contacts/{cid}"),
                None,
            ),
        ] {
            let (s, _) = app.rest(m.clone(), &p, &tb, body).await;
            assert_eq!(s, 404, "{m} {p}");
        }
        // Org A's data is untouched.
        let (s, v) = app
            .rest(
                Method::GET,
                &format!("/rest/databases/{db}/contacts/{cid}"),
                &ta,
                None,
            )
            .await;
        assert_eq!(s, 200);
        assert_eq!(v["data"]["columns"], json!({}));
    }
);

both!(
    unknown_rest_routes_answer_in_rest_format,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let t = app.access_token(&i).await;
        let (s, v) = app.rest(Method::GET, "/rest/nothing", &t, None).await;
        assert_eq!(s, 404);
        assert!(v["meta"]["generalErrors"].is_array());
    }
);

both!(
    repeated_updates_cannot_grow_a_contact_without_bound,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let t = app.access_token(&i).await;
        let (_, v) = app
            .rest(
                Method::POST,
                "/rest/databases",
                &t,
                Some(json!({"name": "N"})),
            )
            .await;
        let db = v["data"]["id"].as_i64().unwrap();
        let (s, v) = app
            .rest(
                Method::POST,
                &format!("/rest/databases/{db}/contacts"),
                &t,
                Some(json!({"email": "ann@example.com"})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let cid = v["data"]["id"].as_i64().unwrap();
        let path = format!("/rest/databases/{db}/contacts/{cid}");
        let cols = |from: usize| -> serde_json::Map<String, serde_json::Value> {
            (from..from + 80)
                .map(|n| (format!("C{n}"), json!("v")))
                .collect()
        };
        for from in [0, 80] {
            let (s, v) = app
                .rest(
                    Method::PATCH,
                    &path,
                    &t,
                    Some(json!({"columns": cols(from)})),
                )
                .await;
            assert_eq!(s, 200, "{v}");
        }
        let (s, v) = app
            .rest(
                Method::PATCH,
                &path,
                &t,
                Some(json!({"columns": cols(160)})),
            )
            .await;
        assert_eq!(s, 400, "{v}");
        assert!(
            v["meta"]["fieldErrors"]["columns"]
                .as_str()
                .unwrap()
                .contains("at most 200 columns"),
            "{v}"
        );
        let (_, v) = app.rest(Method::GET, &path, &t, None).await;
        assert_eq!(v["data"]["columns"].as_object().unwrap().len(), 160);

        // The XML API's UpdateRecipient meets the same limit, as Fault 126.
        let update: String = (160..240)
            .map(|n| format!("<COLUMN><NAME>C{n}</NAME><VALUE>v</VALUE></COLUMN>"))
            .collect();
        let env = format!(
            "<Envelope><Body><UpdateRecipient><LIST_ID>{db}</LIST_ID><RECIPIENT_ID>{cid}</RECIPIENT_ID>{update}</UpdateRecipient></Body></Envelope>"
        );
        let (s, xml, _) = app.xml(Some(&t), &env).await;
        assert_eq!(s, 400, "{xml}");
        assert!(
            xml.contains("<errorid>126</errorid>") && xml.contains("at most 200 columns"),
            "{xml}"
        );
        let (_, v) = app.rest(Method::GET, &path, &t, None).await;
        assert_eq!(v["data"]["columns"].as_object().unwrap().len(), 160);
    }
);

both!(
    paging_parameters_are_each_sent_once,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let t = app.access_token(&i).await;
        let (_, v) = app
            .rest(
                Method::POST,
                "/rest/databases",
                &t,
                Some(json!({"name": "N"})),
            )
            .await;
        let db = v["data"]["id"].as_i64().unwrap();
        for (q, field) in [
            ("page=1&page=2", "page"),
            ("pageSize=5&pageSize=5", "pageSize"),
            ("email=a@example.com&email=b@example.com", "email"),
        ] {
            let (s, v) = app
                .rest(
                    Method::GET,
                    &format!("/rest/databases/{db}/contacts?{q}"),
                    &t,
                    None,
                )
                .await;
            assert_eq!(s, 400, "{q}: {v}");
            assert!(
                v["meta"]["fieldErrors"][field]
                    .as_str()
                    .unwrap()
                    .contains("more than once"),
                "{v}"
            );
        }
        let (s, v) = app
            .rest(
                Method::GET,
                &format!("/rest/databases/{db}/contacts?page=1&pageSize=5&x=1&x=2"),
                &t,
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
);
