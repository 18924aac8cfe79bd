//! `/admin/v1/org`, `/admin/v1/account-accesses` (add, list, delete) and `/admin/v1/audit`
//! (filtered, a page at a time).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::WithRejection;
use base64::Engine;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use grantry_core::admin;
use grantry_core::model::{Role, UserKind};
use grantry_core::store::{AccessSummary, AuditEvent, AuditQuery};
use grantry_core::Timestamp;

use super::{gone, no_content};
use super::{json, replayed, time, Body, Page, Paging, PathOf, QueryOf};
use super::{once, Made, Reader, Result, Writer};
use crate::error::problem::ProblemBody;
use crate::error::Problem;
use crate::AppState;

/// The caller's organization.
#[derive(Serialize, ToSchema)]
pub struct OrgView {
    #[schema(example = "acme")]
    pub name: String,
    pub created_at: String,
    /// The pod (regional deployment) the org lives in.
    pub pod_id: String,
}

/// The caller's organization.
#[utoipa::path(get, path = "/admin/v1/org", tag = "organization",
    security(("bearer" = ["admin:read"])),
    responses((status = 200, body = OrgView), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn org(State(s): State<AppState>, caller: Reader) -> Result<Response> {
    let view = OrgView {
        name: caller.org.name.clone(),
        created_at: time(caller.org.created_at),
        pod_id: s.settings.pod_id.clone(),
    };
    Ok(json(StatusCode::OK, &view))
}

/// An account access: an application acting for a UI user.
#[derive(Serialize, ToSchema)]
pub struct AccessView {
    pub client_id: String,
    pub application: String,
    pub username: String,
    /// The org admin who added it; `null` when the user gave it by consent.
    pub created_by: Option<String>,
    /// The most it grants (bounded further by the application's scopes and the user's
    /// grants): what the user consented to, or every grant for access an admin added.
    pub scopes: Vec<String>,
    pub created_at: String,
    /// When its refresh token last issued an access token.
    pub last_used_at: Option<String>,
}

fn names(g: grantry_core::GrantSet) -> Vec<String> {
    g.names().into_iter().map(String::from).collect()
}

fn access_view(a: &AccessSummary) -> AccessView {
    AccessView {
        client_id: a.client_id.clone(),
        application: a.application.clone(),
        username: a.username.clone(),
        created_by: a.created_by.clone(),
        scopes: names(a.access.scopes),
        created_at: time(a.access.created_at),
        last_used_at: a.last_used_at.map(time),
    }
}

/// What `POST /admin/v1/account-accesses` takes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccess {
    pub client_id: String,
    /// A UI user of the org.
    pub username: String,
    /// The org admin expected to add it (the CLI's `--by`): refused unless it is the one
    /// who does, the caller (or, for an API user calling, the principal org admin).
    pub by: Option<String>,
}

/// A new account access and its refresh token: shown in this answer only (and mailed to
/// the org admins, as the console does).
#[derive(Serialize, ToSchema)]
pub struct CreatedAccess {
    #[serde(flatten)]
    pub access: AccessView,
    /// `null` when a retried create is answered.
    pub refresh_token: Option<String>,
    pub mailed_to: Vec<String>,
}

/// The org's account accesses.
#[utoipa::path(get, path = "/admin/v1/account-accesses", tag = "account access", params(Paging),
    security(("bearer" = ["admin:read"])),
    responses((status = 200, body = Page<AccessView>), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn list(
    State(s): State<AppState>,
    caller: Reader,
    WithRejection(Query(paging), _): QueryOf<Paging>,
) -> Result<Response> {
    let all = admin::list_account_access(&caller.ctx(&s, None), &caller.org.name).await?;
    let items = all.iter().map(access_view).collect();
    let page = paging.page(items, |a: &AccessView| {
        format!("{}\u{1f}{}", a.client_id, a.username)
    })?;
    Ok(json(StatusCode::OK, &page))
}

async fn find_access(
    s: &AppState,
    caller: &Writer,
    client_id: &str,
    username: &str,
) -> Result<AccessSummary> {
    admin::list_account_access(&caller.ctx(s, None), &caller.org.name)
        .await?
        .into_iter()
        .find(|a| a.client_id == client_id && a.username == username)
        .ok_or_else(|| Problem::of("not-found", "no such account access"))
}

/// Adds account access for a UI user; its refresh token is in this answer only. Added by
/// the calling org admin, or, when an API user calls, in the name of the principal org admin.
#[utoipa::path(post, path = "/admin/v1/account-accesses", tag = "account access",
    request_body = NewAccess, security(("bearer" = ["admin:write"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "makes a retried create return the first one's account access")),
    responses((status = 201, body = CreatedAccess), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn create(
    State(s): State<AppState>,
    caller: Writer,
    body: Body<NewAccess>,
) -> Result<Response> {
    let cx = caller.ctx(&s, body.idempotency.as_ref());
    let req = &body.value;
    let p = &caller.principal;
    let by = if p.user_kind == UserKind::Ui {
        p.username.clone()
    } else {
        let principal = s
            .store
            .principal_admin(p.org_id)
            .await
            .map_err(admin::AdminError::from)?;
        principal
            .filter(|u| u.role == Role::OrgAdmin)
            .map(|u| u.username)
            .ok_or_else(|| Problem::of("conflict", "the organization has no principal org admin"))?
    };
    if let Some(expected) = req.by.as_deref().filter(|b| *b != by) {
        return Err(Problem::of(
            "invalid",
            format!("through the admin API account access is added by {by:?} (the caller), not {expected:?}"),
        ));
    }
    let create = admin::add_account_access(
        &cx,
        &*s.mailer,
        &caller.org.name,
        &req.client_id,
        &req.username,
        &by,
    );
    let added = match once(&cx, &caller.org.name, create).await? {
        Made::New(added) => added,
        Made::Before(target) => {
            let found = find_access(&s, &caller, &req.client_id, &req.username)
                .await
                .map_err(|_| gone(&target))?;
            return Ok(replayed(&CreatedAccess {
                access: access_view(&found),
                refresh_token: None,
                mailed_to: Vec::new(),
            }));
        }
    };
    let view = AccessView {
        client_id: added.application.client_id.clone(),
        application: added.application.name.clone(),
        username: added.user.username.clone(),
        created_by: Some(by),
        scopes: names(added.access.scopes),
        created_at: time(added.access.created_at),
        last_used_at: None,
    };
    let created = CreatedAccess {
        access: view,
        refresh_token: Some(added.refresh_token.expose_secret().to_string()),
        mailed_to: added.mailed_to,
    };
    Ok(json(StatusCode::CREATED, &created))
}

/// Deletes an account access: its refresh token and access tokens stop at once.
#[utoipa::path(delete, path = "/admin/v1/account-accesses/{client_id}/{username}", tag = "account access",
    params(("client_id" = String, Path), ("username" = String, Path)),
    security(("bearer" = ["admin:write"])),
    responses((status = 204), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn delete(
    State(s): State<AppState>,
    caller: Writer,
    WithRejection(Path((client_id, username)), _): PathOf<(String, String)>,
) -> Result<Response> {
    let cx = caller.ctx(&s, None);
    admin::delete_account_access(&cx, &caller.org.name, &client_id, &username).await?;
    Ok(no_content())
}

/// An audit event.
#[derive(Serialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    pub at: String,
    /// Who did it: a username, `cli`, `system`, or a client id.
    pub actor: String,
    #[schema(example = "application.created")]
    pub action: String,
    #[schema(example = "application:6f1c2a8e-4d1b-4c36-9a63-0f5d8e0b7c21")]
    pub target: String,
    /// Facts of the event (never a secret); `request_id` for changes made through this API.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// How many refusals of one credential this event counts.
    pub count: i64,
    pub last_at: String,
}

fn audit_view(e: AuditEvent) -> AuditView {
    AuditView {
        id: e.id,
        at: time(e.at),
        actor: e.actor,
        action: e.action,
        target: e.target,
        detail: e.detail,
        count: e.count,
        last_at: time(e.last_at),
    }
}

/// The audit log's filter and page.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Actions starting with this, e.g. `application.`.
    pub action: Option<String>,
    /// Events at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Events before this time (RFC 3339).
    pub to: Option<String>,
    /// At most this many events (1-200, default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn instant(field: &str, v: Option<&str>) -> Result<Option<Timestamp>> {
    v.map(|s| {
        Timestamp::parse_rfc3339(s).ok_or_else(|| {
            Problem::of(
                "invalid",
                format!("{field} {s:?} is not an RFC 3339 time, e.g. 2026-12-01T00:00:00Z"),
            )
        })
    })
    .transpose()
}

/// `<at ms>.<id>` of the last event of a page, opaque to the client.
fn cursor(e: &AuditView, at: Timestamp) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}.{}", at.0, e.id))
}

fn after(c: &str) -> Result<(Timestamp, i64)> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (at, id) = s.split_once('.')?;
            Some((Timestamp(at.parse().ok()?), id.parse().ok()?))
        })
        .ok_or_else(|| Problem::of("invalid", "the cursor is not one this list gave out"))
}

/// The org's audit log, newest first.
#[utoipa::path(get, path = "/admin/v1/audit", tag = "audit", params(AuditFilter),
    security(("bearer" = ["admin:read"])),
    responses((status = 200, body = Page<AuditView>), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn audit(
    State(s): State<AppState>,
    caller: Reader,
    WithRejection(Query(f), _): QueryOf<AuditFilter>,
) -> Result<Response> {
    let limit = super::limit(f.limit)?;
    let query = AuditQuery {
        actor: f.actor.filter(|a| !a.is_empty()),
        action_prefix: f.action.filter(|a| !a.is_empty()),
        from: instant("from", f.from.as_deref())?,
        to: instant("to", f.to.as_deref())?,
        before: f.cursor.as_deref().map(after).transpose()?,
        limit: limit as u32 + 1,
    };
    let mut events = admin::audit_page(&caller.ctx(&s, None), &caller.org.name, &query).await?;
    let more = events.len() > limit;
    events.truncate(limit);
    let last_at = events.last().map(|e| e.at);
    let items: Vec<AuditView> = events.into_iter().map(audit_view).collect();
    let next_cursor = match (more, items.last(), last_at) {
        (true, Some(e), Some(at)) => Some(cursor(e, at)),
        _ => None,
    };
    Ok(json(StatusCode::OK, &Page { items, next_cursor }))
}
