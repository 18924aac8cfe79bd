//! The XML API (docs/architecture.md, protected APIs): the five data operations, both body forms, faults.

use grantry_core::model::Role;
use grantry_core::GrantSet;
use reqwest::Method;
use serde_json::json;

use crate::both;
use crate::harness::TestApp;

fn envelope(op: &str) -> String {
    format!("<Envelope><Body>{op}</Body></Envelope>")
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> &'a str {
    let start = s.find(open).unwrap_or_else(|| panic!("{open} in {s}")) + open.len();
    let end = s[start..].find(close).unwrap() + start;
    &s[start..end]
}

both!(recipient_operations_round_trip, |app: TestApp| async move {
    let i = app.integration("acme").await;
    let t = app.access_token(&i).await;
    let (_, v) = app
        .rest(
            Method::POST,
            "/rest/databases",
            &t,
            Some(json!({"name": "Main"})),
        )
        .await;
    let list = v["data"]["id"].as_i64().unwrap();

    let add = envelope(&format!(
        "<AddRecipient><LIST_ID>{list}</LIST_ID><CREATED_FROM>1</CREATED_FROM>\
         <COLUMN><NAME>EMAIL</NAME><VALUE>ann@example.com</VALUE></COLUMN>\
         <COLUMN><NAME>First Name</NAME><VALUE>Ann &amp; Co</VALUE></COLUMN></AddRecipient>"
    ));
    let (s, xml, _) = app.xml(Some(&t), &add).await;
    assert_eq!(s, 200, "{xml}");
    assert!(
        xml.starts_with("<Envelope><Body><RESULT><SUCCESS>TRUE</SUCCESS>"),
        "{xml}"
    );
    let rid: i64 = between(&xml, "<RecipientId>", "</RecipientId>")
        .parse()
        .unwrap();

    // Adding the same address again is a fault; the recipient is unchanged.
    let (s, xml, _) = app.xml(Some(&t), &add).await;
    assert_eq!(s, 200);
    assert!(
        xml.contains("<SUCCESS>false</SUCCESS>") && xml.contains("<errorid>122</errorid>"),
        "{xml}"
    );

    // The form-encoded body the original clients send.
    let select = envelope(&format!("<SelectRecipientData><LIST_ID>{list}</LIST_ID><EMAIL>ann@example.com</EMAIL></SelectRecipientData>"));
    let r = app
        .http
        .post(app.url("/XMLAPI"))
        .bearer_auth(&t)
        .form(&[("xml", select.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/xml;charset=utf-8");
    let xml = r.text().await.unwrap();
    assert_eq!(
        between(&xml, "<RecipientId>", "</RecipientId>"),
        rid.to_string()
    );
    assert!(
        xml.contains("<NAME>First Name</NAME><VALUE>Ann &amp; Co</VALUE>"),
        "{xml}"
    );

    let update = envelope(&format!(
        "<UpdateRecipient><LIST_ID>{list}</LIST_ID><RECIPIENT_ID>{rid}</RECIPIENT_ID>\
         <COLUMN><NAME>EMAIL</NAME><VALUE>ann@new.example.com</VALUE></COLUMN>\
         <COLUMN><NAME>City</NAME><VALUE>Oslo</VALUE></COLUMN></UpdateRecipient>"
    ));
    let (s, xml, _) = app.xml(Some(&t), &update).await;
    assert_eq!(s, 200, "{xml}");
    let (_, v) = app
        .rest(
            Method::GET,
            &format!("/rest/databases/{list}/contacts/{rid}"),
            &t,
            None,
        )
        .await;
    assert_eq!(v["data"]["email"], "ann@new.example.com");
    assert_eq!(
        v["data"]["columns"],
        json!({"City": "Oslo", "First Name": "Ann & Co"})
    );

    let (s, xml, _) = app
        .xml(
            Some(&t),
            &envelope("<GetLists><VISIBILITY>1</VISIBILITY><LIST_TYPE>2</LIST_TYPE></GetLists>"),
        )
        .await;
    assert_eq!(s, 200);
    assert!(
        xml.contains(&format!("<LIST><ID>{list}</ID><NAME>Main</NAME>"))
            && xml.contains("<SIZE>1</SIZE>"),
        "{xml}"
    );

    let remove = envelope(&format!("<RemoveRecipient><LIST_ID>{list}</LIST_ID><EMAIL>ann@new.example.com</EMAIL></RemoveRecipient>"));
    let (s, xml, _) = app.xml(Some(&t), &remove).await;
    assert_eq!(s, 200, "{xml}");
    assert!(xml.contains("<SUCCESS>TRUE</SUCCESS>"));
    let (s, xml, _) = app.xml(Some(&t), &remove).await;
    assert_eq!(s, 200);
    assert!(xml.contains("<errorid>128</errorid>"), "{xml}");
    let (_, v) = app
        .rest(Method::GET, &format!("/rest/databases/{list}"), &t, None)
        .await;
    assert_eq!(v["data"]["size"], 0);
});

both!(
    malformed_and_hostile_envelopes_are_fault_51,
    |app: TestApp| async move {
        let i = app.integration("acme").await;
        let t = app.access_token(&i).await;
        for body in [
        "",
        "<Envelope><Body><GetLists>",
        "<envelope><body><GetLists/></body></envelope>",
        "<Envelope><Body></Body></Envelope>",
        "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><Envelope><Body><GetLists/></Body></Envelope>",
        "<Envelope><Body><GetLists><VISIBILITY>&a;</VISIBILITY></GetLists></Body></Envelope>",
        "<Envelope><Body><NoSuchOperation/></Body></Envelope>",
    ] {
        let (s, xml, _) = app.xml(Some(&t), body).await;
        assert_eq!(s, 400, "{body}: {xml}");
        assert!(xml.contains("<errorid>51</errorid>") && xml.contains("<class>SP.API</class>"), "{body}: {xml}");
    }
    }
);

both!(
    xml_operations_check_their_grant,
    |app: TestApp| async move {
        app.org("acme").await;
        app.ui_user(
            "acme",
            "reader",
            Role::User,
            GrantSet::parse_scope("lists:read").unwrap(),
        )
        .await;
        let (cid, secret) = app.app("acme", "Sync", None).await;
        let rt = app.access("acme", &cid, "reader").await;
        let r = app
            .token(&[
                ("grant_type", "refresh_token"),
                ("client_id", &cid),
                ("client_secret", &secret),
                ("refresh_token", &rt),
            ])
            .await;
        let v: serde_json::Value = r.json().await.unwrap();
        let t = v["access_token"].as_str().unwrap();
        let (s, _, _) = app.xml(Some(t), &envelope("<GetLists/>")).await;
        assert_eq!(s, 200);
        let add = envelope("<AddRecipient><LIST_ID>1</LIST_ID><COLUMN><NAME>EMAIL</NAME><VALUE>a@example.com</VALUE></COLUMN></AddRecipient>");
        let (s, xml, ch) = app.xml(Some(t), &add).await;
        assert_eq!(s, 403);
        assert!(
            xml.contains("<errorid>146</errorid>") && xml.contains("contacts:write"),
            "{xml}"
        );
        assert!(ch.unwrap().contains("insufficient_scope"));
    }
);
