//! Property tests of the parsers that read client bytes: they never panic, they refuse
//! malformed input as the protocol's client error (never a server error), and they agree with
//! a straightforward reference where one exists. `PROPTEST_CASES` raises the case count.

use std::collections::HashSet;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use proptest::prelude::*;
use proptest::test_runner::Config;
use secrecy::ExposeSecret;

use grantry_core::apikeys;
use grantry_core::oauth::client_auth::{ClientAuth, ClientAuthMethod};
use grantry_core::oauth::{ErrorCode, Params};
use grantry_core::platform::events::{self, EventErrorKind};
use grantry_core::platform::xmlapi::{self, FaultKind};

/// The case count: `PROPTEST_CASES`, else a number that keeps `cargo test` quick.
fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Text built from the characters that matter to a form body, and some that do not.
fn form_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("&".to_string()),
            Just("=".to_string()),
            Just("+".to_string()),
            Just("%".to_string()),
            Just("%3D".to_string()),
            Just("%26".to_string()),
            Just("%00".to_string()),
            Just("%FF".to_string()),
            Just("a".to_string()),
            Just("b".to_string()),
            Just("grant_type".to_string()),
            any::<char>().prop_map(|c| c.to_string()),
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

/// The reference form decoding of RFC 6749 Appendix B: `url`'s form_urlencoded, then each
/// name at most once and no NUL anywhere.
fn reference_params(body: &[u8]) -> Option<Vec<(String, String)>> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let mut seen = HashSet::new();
    let ok = pairs
        .iter()
        .all(|(k, v)| !k.contains('\0') && !v.contains('\0') && seen.insert(k.clone()));
    ok.then_some(pairs)
}

fn check_params(body: &[u8]) -> Result<(), TestCaseError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let parsed = Params::parse(pairs);
    match (parsed, reference_params(body)) {
        (Ok(p), Some(reference)) => {
            for (k, v) in &reference {
                let want = (!v.is_empty()).then_some(v.as_str());
                prop_assert_eq!(p.get(k), want, "parameter {:?}", k);
            }
        }
        (Err(e), None) => prop_assert_eq!(e.code, ErrorCode::InvalidRequest),
        (Ok(_), None) => prop_assert!(false, "accepted a body the reference refuses"),
        (Err(e), Some(_)) => prop_assert!(false, "refused a body the reference accepts: {e:?}"),
    }
    Ok(())
}

/// The reference decoding of HTTP Basic client credentials (RFC 7617 §2; RFC 6749 §2.3.1:
/// each part form-urlencoded before base64).
fn reference_basic(header: &str) -> Option<(String, String)> {
    let rest = header.trim();
    let (scheme, b64) = rest.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (u, p) = raw.split_once(':')?;
    let dec = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (u, p) = (dec(u), dec(p));
    (!u.is_empty()).then_some((u, p))
}

fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn form_bodies_parse_like_the_reference(body in form_text()) {
        check_params(body.as_bytes())?;
    }

    #[test]
    fn arbitrary_bytes_as_form_bodies_parse_like_the_reference(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_params(&body)?;
    }

    #[test]
    fn generated_forms_round_trip(pairs in proptest::collection::vec(("[a-z_]{1,8}", any::<String>()), 0..8)) {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        check_params(body.as_bytes())?;
    }

    #[test]
    fn basic_client_credentials_decode_like_the_reference(header in prop_oneof![
        any::<String>(),
        any::<String>().prop_map(|s| format!("Basic {s}")),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| format!("Basic {}", STANDARD.encode(b))),
    ]) {
        let params = Params::parse(vec![]).unwrap();
        let got = ClientAuth::from_request(&params, Some(&header));
        match (got, reference_basic(&header)) {
            (Ok(a), Some((u, p))) => {
                prop_assert_eq!(a.method, ClientAuthMethod::Basic);
                prop_assert_eq!(a.client_id, u);
                prop_assert_eq!(a.secret.as_ref().map(|s| s.expose_secret().to_string()), (!p.is_empty()).then_some(p));
            }
            (Err(e), None) => prop_assert_eq!(e.code, ErrorCode::InvalidClient),
            (got, reference) => prop_assert!(false, "got {:?}, reference {:?}", got.map(|a| a.client_id), reference),
        }
    }

    #[test]
    fn basic_client_credentials_round_trip(id in any::<String>().prop_filter("a client id", |s| !s.is_empty()), secret in any::<String>()) {
        let header = format!("Basic {}", STANDARD.encode(format!("{}:{}", form_encode(&id), form_encode(&secret))));
        let params = Params::parse(vec![]).unwrap();
        let a = ClientAuth::from_request(&params, Some(&header)).unwrap();
        prop_assert_eq!(a.client_id, id);
        prop_assert_eq!(a.secret.map(|s| s.expose_secret().to_string()), (!secret.is_empty()).then_some(secret));
    }

    #[test]
    fn api_key_bearer_values_decode_like_the_reference(value in prop_oneof![
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| STANDARD.encode(b)),
    ]) {
        let reference = STANDARD
            .decode(value.trim())
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|raw| {
                let (k, s) = raw.split_once(':')?;
                (!k.is_empty() && !s.is_empty()).then(|| (k.to_string(), s.to_string()))
            });
        let got = apikeys::parse_bearer(&value).map(|(k, s)| (k, s.expose_secret().to_string()));
        prop_assert_eq!(got, reference);
    }

    #[test]
    fn api_key_bearer_values_round_trip(key_id in "[^:]{1,40}", secret in ".{1,80}") {
        let value = STANDARD.encode(format!("{key_id}:{secret}"));
        let (k, s) = apikeys::parse_bearer(&value).unwrap();
        prop_assert_eq!(k, key_id);
        prop_assert_eq!(s.expose_secret(), secret.as_str());
    }

    #[test]
    fn xml_envelopes_of_any_bytes_are_refused_as_bad_requests(body in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        xml_soup().prop_map(String::into_bytes),
    ]) {
        if let Err(f) = xmlapi::parse(&body) {
            prop_assert_eq!(f.kind, FaultKind::BadRequest, "{}", f);
            prop_assert_eq!(f.errorid, xmlapi::ERR_INVALID_REQUEST);
        }
    }

    #[test]
    fn generated_xml_envelopes_round_trip(
        op in "[A-Z][A-Za-z]{0,12}",
        fields in proptest::collection::vec(("[A-Z_]{1,10}", any::<String>()), 0..6),
    ) {
        let fields: Vec<(String, String)> = fields
            .into_iter()
            .map(|(k, v)| (k, v.chars().filter(|c| xml_allowed(*c)).collect()))
            .collect();
        let inner: String = fields
            .iter()
            .map(|(k, v)| format!("<{k}>{}</{k}>", xmlapi::escape(v)))
            .collect();
        let body = format!("<Envelope><Body><{op}>{inner}</{op}></Body></Envelope>");
        let req = xmlapi::parse(body.as_bytes()).unwrap();
        prop_assert_eq!(&req.op, &op);
        prop_assert_eq!(req.element.children.len(), fields.len());
        for (child, (k, v)) in req.element.children.iter().zip(&fields) {
            prop_assert_eq!(&child.name, k);
            // `\r` is normalised by XML 1.0 §2.11 unless written as a reference.
            prop_assert_eq!(child.text.replace('\r', "\n"), v.replace("\r\n", "\n").replace('\r', "\n"));
        }
    }

    #[test]
    fn event_bodies_of_any_bytes_are_refused_as_bad_requests(body in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        json_soup().prop_map(String::into_bytes),
    ]) {
        if let Err(e) = events::parse(&body) {
            prop_assert_eq!(e.kind, EventErrorKind::BadRequest, "{:?}", e);
        }
    }

    #[test]
    fn generated_events_round_trip(
        id in "[a-zA-Z0-9][^\\x00]{0,39}",
        key in "[a-zA-Z0-9][^\\x00]{0,39}",
        params in proptest::collection::btree_map("[a-zA-Z0-9_.-]{1,12}", ".{0,30}", 0..10),
    ) {
        let body = serde_json::json!({"event-id": id, "event-key": key, "event-params": params});
        match events::parse(body.to_string().as_bytes()) {
            Ok((i, k, p)) => {
                prop_assert_eq!(i, id);
                prop_assert_eq!(k, key);
                prop_assert_eq!(p.len(), params.len());
                for (name, v) in &params {
                    prop_assert_eq!(p[name].as_str(), Some(v.as_str()));
                }
            }
            Err(e) => prop_assert_eq!(e.kind, EventErrorKind::BadRequest, "{:?}", e),
        }
    }
}

/// A character the round-trip test may put in element text (XML 1.0 §2.2).
fn xml_allowed(c: char) -> bool {
    !matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

/// XML-looking text: tags, entities, declarations, CDATA and stray characters.
fn xml_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("<Envelope>".to_string()),
            Just("</Envelope>".to_string()),
            Just("<Body>".to_string()),
            Just("</Body>".to_string()),
            Just("<GetLists/>".to_string()),
            Just("<AddRecipient>".to_string()),
            Just("<LIST_ID>1</LIST_ID>".to_string()),
            Just("<!DOCTYPE x [<!ENTITY e \"v\">]>".to_string()),
            Just("&e;".to_string()),
            Just("&#0;".to_string()),
            Just("&#x10FFFF;".to_string()),
            Just("&amp;".to_string()),
            Just("<![CDATA[".to_string()),
            Just("]]>".to_string()),
            Just("<?xml version=\"1.0\"?>".to_string()),
            Just("<a b=\"&lt;\" c='".to_string()),
            Just("<".to_string()),
            Just(">".to_string()),
            any::<char>().prop_map(|c| c.to_string()),
        ],
        0..30,
    )
    .prop_map(|v| v.concat())
}

/// JSON-looking text: brackets, the event's fields, numbers, escapes and stray characters.
fn json_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("{".to_string()),
            Just("}".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just(":".to_string()),
            Just(",".to_string()),
            Just("\"event-id\"".to_string()),
            Just("\"event-key\"".to_string()),
            Just("\"event-params\"".to_string()),
            Just("\"v\"".to_string()),
            Just("\"\\u0000\"".to_string()),
            Just("\"\\ud800\"".to_string()),
            Just("1e999".to_string()),
            Just("-0".to_string()),
            Just("null".to_string()),
            Just("true".to_string()),
            any::<char>().prop_map(|c| c.to_string()),
        ],
        0..30,
    )
    .prop_map(|v| v.concat())
}
