//! The server's documentation pages: `GET /docs/api-keys`, which the `Deprecation` link of the
//! short-lived token path points to, telling integrators what to use instead, and
//! `GET /docs/oauth1`, the OAuth 1.0a endpoints and rules.

use axum::response::Html;

pub async fn api_keys() -> Html<&'static str> {
    Html(include_str!("docs_api_keys.html"))
}

pub async fn oauth1() -> Html<&'static str> {
    Html(include_str!("docs_oauth1.html"))
}
