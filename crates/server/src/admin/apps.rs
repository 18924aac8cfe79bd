//! `/admin/v1/applications`: register, list, read, change, rotate the secret of, and delete
//! the org's applications (OAuth clients).

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::WithRejection;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use grantry_core::admin::{self, AppChange, AppInput};
use grantry_core::model::{Application, TokenFormat};
use grantry_core::store::AppSummary;
use grantry_core::GrantSet;

use super::{
    gone, json, no_content, replayed, tagged, time, Body, IfMatch, Page, Paging, PathOf, QueryOf,
};
use super::{once, Made, Reader, Result, Writer};
use crate::error::problem::ProblemBody;
use crate::error::Problem;
use crate::AppState;

/// An application as the admin API shows it; its `ETag` is this representation's.
#[derive(Serialize, ToSchema)]
pub struct AppView {
    #[schema(example = "6f1c2a8e-4d1b-4c36-9a63-0f5d8e0b7c21")]
    pub client_id: String,
    #[schema(example = "CRM sync")]
    pub name: String,
    pub description: String,
    #[schema(example = json!(["https://crm.example.com/callback"]))]
    pub redirect_uris: Vec<String>,
    /// The most the application may ask for.
    #[schema(example = json!(["lists:read", "contacts:read"]))]
    pub scopes: Vec<String>,
    /// A public client has no secret (PKCE only).
    pub public: bool,
    pub rotate_refresh_tokens: bool,
    /// `opaque` or `jwt` (RFC 9068) access tokens.
    #[schema(example = "opaque")]
    pub token_format: String,
    #[schema(example = "2026-12-01T09:30:00Z")]
    pub created_at: String,
}

/// An application in a list, with the latest use of its refresh tokens.
#[derive(Serialize, ToSchema)]
pub struct AppListItem {
    #[serde(flatten)]
    pub application: AppView,
    pub last_used_at: Option<String>,
}

/// A new application, with its client secret: shown in this answer only.
#[derive(Serialize, ToSchema)]
pub struct CreatedApp {
    #[serde(flatten)]
    pub application: AppView,
    /// `null` for public clients, and when a retried create is answered.
    pub client_secret: Option<String>,
}

pub fn view(a: &Application) -> AppView {
    AppView {
        client_id: a.client_id.clone(),
        name: a.name.clone(),
        description: a.description.clone(),
        redirect_uris: a.redirect_uris.clone(),
        scopes: a.scopes.names().into_iter().map(String::from).collect(),
        public: a.public,
        rotate_refresh_tokens: a.rotate_refresh_tokens,
        token_format: a.token_format.as_str().into(),
        created_at: time(a.created_at),
    }
}

/// A scope list in the admin API's words.
pub fn scopes(names: &[String]) -> Result<GrantSet> {
    names
        .iter()
        .map(|n| {
            grantry_core::Grant::parse(n)
                .ok_or_else(|| Problem::of("invalid", format!("{n:?} is not a scope")))
        })
        .collect()
}

/// What `POST /admin/v1/applications` takes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApp {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Omitted: every scope of the data APIs (not the admin API's).
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub rotate_refresh_tokens: bool,
    /// `opaque` (default) or `jwt`.
    pub token_format: Option<String>,
}

/// What `PATCH /admin/v1/applications/{client_id}` takes (RFC 7396 style: what is sent
/// changes, what is left out stays).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
}

/// What `POST /admin/v1/applications/{client_id}/secrets` takes.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// How long the older secrets keep working, in seconds (default 86400, at most 30 days).
    pub overlap_seconds: Option<u64>,
}

/// A new client secret: shown in this answer only.
#[derive(Serialize, ToSchema)]
pub struct RotatedSecret {
    pub client_secret: String,
    /// When the older secrets stop working.
    pub old_secrets_expire_at: String,
}

/// The org's applications, by name.
#[utoipa::path(get, path = "/admin/v1/applications", tag = "applications",
    params(Paging), security(("bearer" = ["admin:read"])),
    responses((status = 200, body = Page<AppListItem>), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn list(
    State(s): State<AppState>,
    caller: Reader,
    WithRejection(Query(paging), _): QueryOf<Paging>,
) -> Result<Response> {
    let all = admin::list_applications(&caller.ctx(&s, None), &caller.org.name).await?;
    let items = all
        .iter()
        .map(|AppSummary { app, last_used_at }| AppListItem {
            application: view(app),
            last_used_at: last_used_at.map(time),
        })
        .collect();
    let page = paging.page(items, |i: &AppListItem| {
        format!("{}\u{1f}{}", i.application.name, i.application.client_id)
    })?;
    Ok(json(StatusCode::OK, &page))
}

/// Registers an application. Send an `Idempotency-Key` to make a retried create safe.
#[utoipa::path(post, path = "/admin/v1/applications", tag = "applications",
    request_body = NewApp, security(("bearer" = ["admin:write"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "makes a retried create return the first one's application")),
    responses((status = 201, body = CreatedApp), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn create(
    State(s): State<AppState>,
    caller: Writer,
    body: Body<NewApp>,
) -> Result<Response> {
    let cx = caller.ctx(&s, body.idempotency.as_ref());
    let req = body.value;
    let token_format = match req.token_format.as_deref() {
        None | Some("opaque") => TokenFormat::Opaque,
        Some("jwt") => TokenFormat::Jwt,
        Some(other) => {
            return Err(Problem::of(
                "invalid",
                format!("token_format {other:?} is neither \"opaque\" nor \"jwt\""),
            ))
        }
    };
    let scopes = req.scopes.as_deref().map(scopes).transpose()?;
    if scopes.is_some_and(GrantSet::is_empty) {
        return Err(Problem::of(
            "invalid",
            "an application needs at least one scope",
        ));
    }
    let input = AppInput {
        name: req.name,
        description: req.description,
        redirect_uris: req.redirect_uris,
        scopes,
        public: req.public,
        rotate_refresh_tokens: req.rotate_refresh_tokens,
        token_format,
    };
    let (app, secret) = match once(
        &cx,
        &caller.org.name,
        admin::add_application(&cx, &caller.org.name, input),
    )
    .await?
    {
        Made::New(made) => made,
        Made::Before(target) => {
            let client_id = target.strip_prefix("application:").unwrap_or(&target);
            let app = admin::find_application(&cx, &caller.org.name, client_id)
                .await
                .map_err(|_| gone(&target))?;
            return Ok(replayed(&CreatedApp {
                application: view(&app),
                client_secret: None,
            }));
        }
    };
    let created = CreatedApp {
        application: view(&app),
        client_secret: secret.map(|s| s.expose_secret().to_string()),
    };
    Ok(json(StatusCode::CREATED, &created))
}

/// One application; its `ETag` goes in the `If-Match` of an update.
#[utoipa::path(get, path = "/admin/v1/applications/{client_id}", tag = "applications",
    params(("client_id" = String, Path)), security(("bearer" = ["admin:read"])),
    responses((status = 200, body = AppView, headers(("ETag" = String))), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn get(
    State(s): State<AppState>,
    caller: Reader,
    WithRejection(Path(client_id), _): PathOf<String>,
) -> Result<Response> {
    let app = admin::find_application(&caller.ctx(&s, None), &caller.org.name, &client_id).await?;
    Ok(tagged(StatusCode::OK, &view(&app)))
}

/// Changes the name, description, redirect URIs or scopes. Needs `If-Match`.
#[utoipa::path(patch, path = "/admin/v1/applications/{client_id}", tag = "applications",
    request_body = AppPatch, security(("bearer" = ["admin:write"])),
    params(("client_id" = String, Path), ("If-Match" = String, Header, description = "the ETag of the application as read")),
    responses((status = 200, body = AppView, headers(("ETag" = String))), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn update(
    State(s): State<AppState>,
    caller: Writer,
    WithRejection(Path(client_id), _): PathOf<String>,
    headers: HeaderMap,
    body: Body<AppPatch>,
) -> Result<Response> {
    let if_match = IfMatch::required(&headers)?;
    let req = body.value;
    let change = AppChange {
        name: req.name,
        description: req.description,
        redirect_uris: req.redirect_uris,
        scopes: req.scopes.as_deref().map(scopes).transpose()?,
    };
    let current = |a: &Application| if_match.matches(&super::etag(&view(a)));
    let cx = caller.ctx(&s, None);
    let app =
        admin::update_application(&cx, &caller.org.name, &client_id, change, &current).await?;
    Ok(tagged(StatusCode::OK, &view(&app)))
}

/// Issues a new client secret; the older ones keep working for the overlap.
#[utoipa::path(post, path = "/admin/v1/applications/{client_id}/secrets", tag = "applications",
    request_body = Rotation, security(("bearer" = ["admin:write"])),
    params(("client_id" = String, Path)),
    responses((status = 201, body = RotatedSecret), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn rotate_secret(
    State(s): State<AppState>,
    caller: Writer,
    WithRejection(Path(client_id), _): PathOf<String>,
    body: Body<Rotation>,
) -> Result<Response> {
    let overlap = body.value.overlap_seconds.unwrap_or(86_400);
    if overlap > 30 * 86_400 {
        return Err(Problem::of(
            "invalid",
            "overlap_seconds is at most 2592000 (30 days)",
        ));
    }
    let cx = caller.ctx(&s, None);
    let (secret, ends) = admin::rotate_client_secret(
        &cx,
        &caller.org.name,
        &client_id,
        Duration::from_secs(overlap),
    )
    .await?;
    let rotated = RotatedSecret {
        client_secret: secret.expose_secret().to_string(),
        old_secrets_expire_at: time(ends),
    };
    Ok(json(StatusCode::CREATED, &rotated))
}

/// Deletes the application: its secrets, account accesses and tokens stop at once.
#[utoipa::path(delete, path = "/admin/v1/applications/{client_id}", tag = "applications",
    params(("client_id" = String, Path)), security(("bearer" = ["admin:write"])),
    responses((status = 204), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn delete(
    State(s): State<AppState>,
    caller: Writer,
    WithRejection(Path(client_id), _): PathOf<String>,
) -> Result<Response> {
    admin::delete_application(&caller.ctx(&s, None), &caller.org.name, &client_id).await?;
    Ok(no_content())
}
