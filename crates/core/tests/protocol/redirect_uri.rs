//! Redirect URIs (RFC 6749 §3.1.2, §4.1.3; RFC 9700 §4.1.3): exact matching at the
//! authorization endpoint, errors rendered until the URI is trusted and redirected after,
//! and the token request repeating the URI exactly when the authorization request named it.

use grantry_core::model::AuthCode;
use grantry_core::oauth::authorize::{self, AuthorizeError};
use grantry_core::oauth::grants::authorization_code::check_redirect_uri;
use grantry_core::oauth::ErrorCode;
use grantry_core::GrantSet;

use crate::fixtures::*;

const CB: &str = "https://partner.example/callback";
const ISS: &str = "https://as.example";

async fn validate(
    registered: &[&str],
    q: &[(&str, &str)],
) -> Result<authorize::AuthorizeRequest, AuthorizeError> {
    let registry = Registry(app(registered));
    let mut all = vec![("client_id", "c-1"), ("response_type", "code")];
    all.extend_from_slice(q);
    authorize::validate(&registry, ISS, &pairs(&all)).await
}

fn rendered(r: Result<authorize::AuthorizeRequest, AuthorizeError>) -> String {
    match r {
        Err(AuthorizeError::Render { description }) => description,
        other => panic!("expected a rendered error, got {other:?}"),
    }
}

#[tokio::test]
async fn only_an_exactly_registered_uri_is_accepted() {
    let ok = validate(&[CB], &[("redirect_uri", CB)])
        .await
        .expect("exact match");
    assert_eq!(
        (ok.redirect_uri.as_str(), ok.redirect_uri_given),
        (CB, true)
    );
    for near in [
        "https://partner.example/callback/",
        "https://partner.example/Callback",
        "https://PARTNER.example/callback",
        "https://partner.example/callback?x=1",
        "http://partner.example/callback",
        "https://partner.example:443/callback",
    ] {
        let d = rendered(validate(&[CB], &[("redirect_uri", near)]).await);
        assert!(d.contains("does not match"), "{near}: {d}");
    }
}

#[tokio::test]
async fn callback_uri_is_a_synonym_and_only_one_may_be_sent() {
    let ok = validate(&[CB], &[("callback_uri", CB)])
        .await
        .expect("synonym");
    assert!(ok.redirect_uri_given);
    let d = rendered(validate(&[CB], &[("redirect_uri", CB), ("callback_uri", CB)]).await);
    assert!(d.contains("once"), "{d}");
}

#[tokio::test]
async fn without_a_uri_the_only_registered_one_is_used() {
    let ok = validate(&[CB], &[]).await.expect("the only URI");
    assert_eq!(
        (ok.redirect_uri.as_str(), ok.redirect_uri_given),
        (CB, false)
    );
    let two = [CB, "https://partner.example/other"];
    assert!(rendered(validate(&two, &[]).await).contains("redirect_uri is required"));
    assert!(rendered(validate(&[], &[]).await).contains("no registered redirect URI"));
}

#[tokio::test]
async fn errors_after_the_uri_is_trusted_go_back_to_it_with_state() {
    let q = [("redirect_uri", CB), ("state", "s 1"), ("scope", "bogus")];
    match validate(&[CB], &q).await {
        Err(AuthorizeError::Redirect {
            redirect_uri,
            error,
            state,
            iss,
            ..
        }) => {
            assert_eq!((redirect_uri.as_str(), error), (CB, "invalid_scope"));
            assert_eq!(state.as_deref(), Some("s 1"));
            assert_eq!(iss, ISS, "RFC 9207 §2");
        }
        other => panic!("expected a redirect, got {other:?}"),
    }
    let url = authorize::error_redirect(CB, "access_denied", "no", Some("s 1"), ISS);
    let want = "error=access_denied&error_description=no&state=s+1&iss=https%3A%2F%2Fas.example";
    assert_eq!(url, format!("{CB}?{want}"));
}

fn code(redirect_uri_given: bool) -> AuthCode {
    AuthCode {
        id: 1,
        org_id: 1,
        app_id: 7,
        user_id: 3,
        redirect_uri: CB.into(),
        redirect_uri_given,
        scopes: GrantSet::all(),
        code_challenge: None,
        created_at: T0,
        expires_at: T0.plus(MINUTE),
    }
}

#[test]
fn the_token_request_repeats_a_named_uri_exactly() {
    assert!(check_redirect_uri(&code(true), Some(CB)).is_ok());
    for wrong in [None, Some("https://partner.example/callback/"), Some("")] {
        let e = check_redirect_uri(&code(true), wrong).expect_err("must repeat it");
        assert_eq!(e.code, ErrorCode::InvalidGrant, "{wrong:?}");
    }
}

#[test]
fn a_uri_the_authorization_request_did_not_name_may_be_omitted_or_repeated() {
    assert!(check_redirect_uri(&code(false), None).is_ok());
    assert!(check_redirect_uri(&code(false), Some(CB)).is_ok());
    let e = check_redirect_uri(&code(false), Some("https://evil.example/cb")).expect_err("other");
    assert_eq!(e.code, ErrorCode::InvalidGrant);
}
