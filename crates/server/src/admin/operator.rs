//! `POST /admin/v1/orgs`: the platform operator creates an organization and its principal
//! org admin, with the operator token (docs/architecture.md, the admin API); no org admin's
//! credential opens it.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use grantry_core::admin::{self, Ctx};
use grantry_core::gate;

use super::{json, time, Body, Result};
use crate::error::problem::ProblemBody;
use crate::extract::{self, Now, Source};
use crate::AppState;

/// What `POST /admin/v1/orgs` takes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    #[schema(example = "acme")]
    pub name: String,
    /// The principal org admin's username.
    #[schema(example = "alice")]
    pub admin: String,
    pub email: String,
}

/// A new organization, with its principal org admin's one-time password: shown in this
/// answer only.
#[derive(Serialize, ToSchema)]
pub struct CreatedOrg {
    pub org: String,
    pub admin: String,
    pub password: String,
    pub created_at: String,
}

/// Creates an organization and its principal org admin. Needs the operator token
/// (`admin.operator_token_sha256`), never an org admin's credential.
#[utoipa::path(post, path = "/admin/v1/orgs", tag = "organization", request_body = NewOrg,
    security(("operator" = [])),
    responses((status = 201, body = CreatedOrg), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn create(
    State(s): State<AppState>,
    Now(now): Now,
    source: Source,
    headers: HeaderMap,
    body: Body<NewOrg>,
) -> Result<Response> {
    let authorization = extract::authorization(&headers)?;
    gate::operator(s.operator_token.as_ref(), s.attempt(source), authorization).await?;
    let request_id = headers.get(crate::REQUEST_ID).and_then(|v| v.to_str().ok());
    let cx = Ctx {
        store: &*s.store,
        now,
        settings: &s.settings,
        actor: "operator",
        request_id,
        idempotency: None,
    };
    let req = body.value;
    let made = admin::create_org(&cx, &req.name, &req.admin, &req.email).await?;
    let created = CreatedOrg {
        org: made.org.name,
        admin: made.admin.username,
        password: made.password.expose_secret().to_string(),
        created_at: time(made.org.created_at),
    };
    Ok(json(StatusCode::CREATED, &created))
}
