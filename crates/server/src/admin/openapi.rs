//! The admin API's OpenAPI 3.1 document, generated from the handlers and their types
//! (`GET /admin/v1/openapi.json`), and a reference page rendered from it
//! (`GET /admin/v1/docs`).

use std::sync::LazyLock;

use askama::Template;
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

use super::{access, apps, operator, users};
use crate::error::problem::{ProblemBody, TYPES};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "grantry admin API",
        description = "Everything the console does, as JSON. Call it with an access token or an API secret key (`Authorization: Bearer`) carrying `admin:read` (reads) or `admin:write` (changes); every call acts in the caller's own organization. Errors are RFC 9457 problem details. Updates need `If-Match` with the resource's `ETag`; creates take an `Idempotency-Key`.",
        license(name = "Apache-2.0")
    ),
    paths(
        access::org, operator::create,
        apps::list, apps::create, apps::get, apps::update, apps::rotate_secret, apps::delete,
        access::list, access::create, access::delete,
        users::list, users::create, users::get, users::update, users::add_grant, users::remove_grant,
        users::disable, users::enable,
        users::delete, users::keys, users::generate_key, users::delete_key,
        access::audit,
    ),
    components(schemas(ProblemBody)),
    modifiers(&Bearer),
    tags(
        (name = "organization"), (name = "applications"), (name = "account access"),
        (name = "users"), (name = "api keys"), (name = "audit"),
    )
)]
struct AdminApiDoc;

/// Every call takes `Authorization: Bearer` (an access token, or an API secret key as
/// `base64(<key id>:<secret key>)`).
struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "an access token with admin:read / admin:write, or an API user's secret key",
            ))
            .build();
        let operator = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "the platform operator's token (admin.operator_token_sha256): creating organizations only",
            ))
            .build();
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
        components.add_security_scheme("operator", SecurityScheme::Http(operator));
    }
}

/// The document, built once.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(AdminApiDoc::openapi);

/// The document as JSON, built once.
static DOCUMENT_JSON: LazyLock<String> =
    LazyLock::new(|| DOCUMENT.to_pretty_json().unwrap_or_default());

/// The OpenAPI document (no credential needed: it describes, it opens nothing).
pub async fn document() -> Response {
    let mut resp = DOCUMENT_JSON.as_str().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

struct Op {
    method: &'static str,
    path: String,
    anchor: String,
    summary: String,
    description: String,
    scope: String,
    params: String,
}

#[derive(Template)]
#[template(path = "admin/docs.html")]
struct Reference {
    ops: Vec<Op>,
    problems: Vec<(&'static str, u16, &'static str)>,
}

fn op(method: &'static str, path: &str, o: &Operation) -> Op {
    let scope = o
        .security
        .iter()
        .flatten()
        .filter_map(|r| serde_json::to_value(r).ok())
        .filter_map(|v| v.as_object().cloned())
        .flat_map(|m| {
            m.into_iter().map(|(scheme, scopes)| {
                let scopes: Vec<String> = scopes
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect();
                match scheme.as_str() {
                    "bearer" => scopes.join(", "),
                    _ => "operator token".to_string(),
                }
            })
        })
        .collect::<Vec<_>>()
        .join(", ");
    let params = o
        .parameters
        .iter()
        .flatten()
        .map(|p| p.name.clone())
        .collect::<Vec<_>>()
        .join(", ");
    Op {
        method,
        path: path.to_string(),
        anchor: format!("{method}-{path}").replace(['/', '{', '}'], "-"),
        summary: o.summary.clone().unwrap_or_default(),
        description: o.description.clone().unwrap_or_default(),
        scope,
        params,
    }
}

/// The operations of the document, in its order.
fn operations() -> Vec<Op> {
    let mut ops = Vec::new();
    for (path, item) in &DOCUMENT.paths.paths {
        let methods = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PATCH", &item.patch),
            ("PUT", &item.put),
            ("DELETE", &item.delete),
        ];
        for (m, o) in methods {
            if let Some(o) = o {
                ops.push(op(m, path, o));
            }
        }
    }
    ops
}

/// The reference page.
pub async fn page() -> Response {
    let page = Reference {
        ops: operations(),
        problems: TYPES.to_vec(),
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => crate::error::Problem::server(e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_document_with_its_scope() {
        let ops = operations();
        assert_eq!(ops.len(), 24);
        for o in ops.iter().filter(|o| o.path != "/admin/v1/orgs") {
            assert!(
                o.scope == "admin:read" || o.scope == "admin:write",
                "{} {}: {:?}",
                o.method,
                o.path,
                o.scope
            );
            assert!(
                !o.summary.is_empty(),
                "{} {} has no summary",
                o.method,
                o.path
            );
        }
        let json: serde_json::Value = serde_json::from_str(&DOCUMENT_JSON).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
    }
}
