//! `GET /docs/api-keys`: the page the `Deprecation` link of the short-lived token path points
//! to, telling integrators what to use instead.

use axum::response::Html;

pub async fn api_keys() -> Html<&'static str> {
    Html(include_str!("docs_api_keys.html"))
}
