//! `/admin/v1/users`: the org's UI users and API users (add, read, change role and grants,
//! disable, enable, delete), and an API user's secret keys (generate, list, delete).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::WithRejection;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use grantry_core::admin::{self, api_keys, UserChange, UserInput};
use grantry_core::model::{ApiKey, Role, User, UserKind};

use super::apps::scopes;
use super::{gone, no_content};
use super::{json, replayed, tagged, time, Body, IfMatch, Page, Paging, PathOf, QueryOf};
use super::{once, Made, Reader, Result, Writer};
use crate::error::problem::ProblemBody;
use crate::error::Problem;
use crate::AppState;

/// A user as the admin API shows it; its `ETag` is this representation's.
#[derive(Serialize, ToSchema)]
pub struct UserView {
    #[schema(example = "crm-bot")]
    pub username: String,
    pub email: String,
    /// `ui` (console, password) or `api` (secret keys).
    #[schema(example = "api")]
    pub kind: String,
    /// `org_admin` or `user`.
    #[schema(example = "user")]
    pub role: String,
    /// The grants given to the user (org admins hold every grant whatever this says).
    #[schema(example = json!(["lists:read"]))]
    pub grants: Vec<String>,
    /// API users: the Key ID their secret keys are presented with.
    pub key_id: Option<String>,
    /// The org's principal org admin, who cannot be disabled, demoted or deleted.
    pub principal: bool,
    pub disabled: bool,
    pub created_at: String,
}

pub fn view(u: &User) -> UserView {
    UserView {
        username: u.username.clone(),
        email: u.email.clone(),
        kind: u.kind.as_str().into(),
        role: u.role.as_str().into(),
        grants: u.grants.names().into_iter().map(String::from).collect(),
        key_id: u.key_id.clone(),
        principal: u.principal,
        disabled: u.disabled,
        created_at: time(u.created_at),
    }
}

/// What `POST /admin/v1/users` takes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    /// `ui` or `api`.
    pub kind: String,
    /// `org_admin` or `user` (default).
    pub role: Option<String>,
    #[serde(default)]
    pub grants: Vec<String>,
    /// UI users: the password to set (at least 12 characters); omitted, one is generated
    /// and returned once, to be changed at the first sign-in.
    pub password: Option<String>,
}

/// A new user, with the generated password of a UI user: shown in this answer only.
#[derive(Serialize, ToSchema)]
pub struct CreatedUser {
    #[serde(flatten)]
    pub user: UserView,
    pub password: Option<String>,
}

/// What `PATCH /admin/v1/users/{username}` takes: the role, and the whole set of grants.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub role: Option<String>,
    pub grants: Option<Vec<String>>,
}

/// An API user's secret keys (at most two, in slots 1 and 2).
#[derive(Serialize, ToSchema)]
pub struct KeysView {
    pub key_id: String,
    pub keys: Vec<KeyView>,
}

/// One secret key; deleted keys are listed until they stop working.
#[derive(Serialize, ToSchema)]
pub struct KeyView {
    /// 1 or 2; `null` once deleted.
    pub slot: Option<u8>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub deleted_at: Option<String>,
    /// When a deleted key stops working.
    pub stops_at: Option<String>,
}

fn key_view(k: &ApiKey) -> KeyView {
    KeyView {
        slot: k.slot,
        created_at: time(k.created_at),
        last_used_at: k.last_used_at.map(time),
        deleted_at: k.deleted_at.map(time),
        stops_at: k.stops_at.map(time),
    }
}

/// A new secret key: shown in this answer only.
#[derive(Serialize, ToSchema)]
pub struct GeneratedKey {
    pub key_id: String,
    pub slot: u8,
    pub secret_key: String,
    /// `base64(<key id>:<secret key>)`, for `Authorization: Bearer`.
    pub bearer: String,
}

/// A deleted secret key.
#[derive(Serialize, ToSchema)]
pub struct DeletedKey {
    pub deleted_slot: u8,
    /// When the key stops working everywhere (after `api_keys.delete_grace`).
    pub stops_at: String,
    /// The key of slot 2 moved to slot 1.
    pub promoted: bool,
}

fn role(s: &str) -> Result<Role> {
    Role::parse(s).ok_or_else(|| {
        Problem::of(
            "invalid",
            format!("role {s:?} is neither \"org_admin\" nor \"user\""),
        )
    })
}

type UserPath = PathOf<String>;

/// The org's users, UI and API, by username.
#[utoipa::path(get, path = "/admin/v1/users", tag = "users", params(Paging),
    security(("bearer" = ["admin:read"])),
    responses((status = 200, body = Page<UserView>), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn list(
    State(s): State<AppState>,
    caller: Reader,
    WithRejection(Query(paging), _): QueryOf<Paging>,
) -> Result<Response> {
    let all = admin::list_users(&caller.ctx(&s, None), &caller.org.name).await?;
    let page = paging.page(all.iter().map(view).collect(), |u: &UserView| {
        u.username.clone()
    })?;
    Ok(json(StatusCode::OK, &page))
}

/// Adds a UI user or an API user. Send an `Idempotency-Key` to make a retried create safe.
#[utoipa::path(post, path = "/admin/v1/users", tag = "users", request_body = NewUser,
    security(("bearer" = ["admin:write"])),
    params(("Idempotency-Key" = Option<String>, Header, description = "makes a retried create return the first one's user")),
    responses((status = 201, body = CreatedUser), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn create(
    State(s): State<AppState>,
    caller: Writer,
    body: Body<NewUser>,
) -> Result<Response> {
    let cx = caller.ctx(&s, body.idempotency.as_ref());
    let req = body.value;
    let kind = UserKind::parse(&req.kind).ok_or_else(|| {
        Problem::of(
            "invalid",
            format!("kind {:?} is neither \"ui\" nor \"api\"", req.kind),
        )
    })?;
    let input = UserInput {
        username: req.username,
        email: req.email,
        kind,
        role: req
            .role
            .as_deref()
            .map(role)
            .transpose()?
            .unwrap_or(Role::User),
        grants: scopes(&req.grants)?,
        password: req.password.map(SecretString::from),
    };
    let added = match once(
        &cx,
        &caller.org.name,
        admin::add_user(&cx, &caller.org.name, input),
    )
    .await?
    {
        Made::New(added) => added,
        Made::Before(target) => {
            let username = target.strip_prefix("user:").unwrap_or(&target);
            let user = admin::find_user(&cx, &caller.org.name, username)
                .await
                .map_err(|_| gone(&target))?;
            return Ok(replayed(&CreatedUser {
                user: view(&user),
                password: None,
            }));
        }
    };
    let created = CreatedUser {
        user: view(&added.user),
        password: added.password.map(|p| p.expose_secret().to_string()),
    };
    Ok(json(StatusCode::CREATED, &created))
}

/// One user; its `ETag` goes in the `If-Match` of an update.
#[utoipa::path(get, path = "/admin/v1/users/{username}", tag = "users",
    params(("username" = String, Path)), security(("bearer" = ["admin:read"])),
    responses((status = 200, body = UserView, headers(("ETag" = String))), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn get(
    State(s): State<AppState>,
    caller: Reader,
    WithRejection(Path(username), _): UserPath,
) -> Result<Response> {
    let user = admin::find_user(&caller.ctx(&s, None), &caller.org.name, &username).await?;
    Ok(tagged(StatusCode::OK, &view(&user)))
}

/// Changes the role and grants. Needs `If-Match`.
#[utoipa::path(patch, path = "/admin/v1/users/{username}", tag = "users", request_body = UserPatch,
    params(("username" = String, Path), ("If-Match" = String, Header, description = "the ETag of the user as read")),
    security(("bearer" = ["admin:write"])),
    responses((status = 200, body = UserView, headers(("ETag" = String))), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn update(
    State(s): State<AppState>,
    caller: Writer,
    WithRejection(Path(username), _): UserPath,
    headers: HeaderMap,
    body: Body<UserPatch>,
) -> Result<Response> {
    let if_match = IfMatch::required(&headers)?;
    let change = UserChange {
        role: body.value.role.as_deref().map(role).transpose()?,
        grants: body.value.grants.as_deref().map(scopes).transpose()?,
    };
    let current = |u: &User| if_match.matches(&super::etag(&view(u)));
    let cx = caller.ctx(&s, None);
    let user = admin::update_user(&cx, &caller.org.name, &username, change, &current).await?;
    Ok(tagged(StatusCode::OK, &view(&user)))
}

async fn change_grant(
    s: &AppState,
    caller: &Writer,
    username: &str,
    grant: &str,
    on: bool,
) -> Result<Response> {
    let grant = grantry_core::Grant::parse(grant)
        .ok_or_else(|| Problem::of("invalid", format!("{grant:?} is not a grant")))?;
    let cx = caller.ctx(s, None);
    let user = admin::set_grant(&cx, &caller.org.name, username, grant, on).await?;
    Ok(tagged(StatusCode::OK, &view(&user)))
}

/// Gives the user one grant, in place: a concurrent change of another grant is kept. No
/// `If-Match` needed.
#[utoipa::path(put, path = "/admin/v1/users/{username}/grants/{grant}", tag = "users",
    params(("username" = String, Path), ("grant" = String, Path, example = "lists:read")),
    security(("bearer" = ["admin:write"])),
    responses((status = 200, body = UserView), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn add_grant(
    State(s): State<AppState>,
    caller: Writer,
    WithRejection(Path((username, grant)), _): PathOf<(String, String)>,
) -> Result<Response> {
    change_grant(&s, &caller, &username, &grant, true).await
}

/// Takes one grant from the user, in place (org admins hold every grant: refused).
#[utoipa::path(delete, path = "/admin/v1/users/{username}/grants/{grant}", tag = "users",
    params(("username" = String, Path), ("grant" = String, Path, example = "lists:read")),
    security(("bearer" = ["admin:write"])),
    responses((status = 200, body = UserView), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn remove_grant(
    State(s): State<AppState>,
    caller: Writer,
    WithRejection(Path((username, grant)), _): PathOf<(String, String)>,
) -> Result<Response> {
    change_grant(&s, &caller, &username, &grant, false).await
}

async fn set_disabled(s: &AppState, caller: &Writer, username: &str, on: bool) -> Result<Response> {
    let user = admin::set_disabled(&caller.ctx(s, None), &caller.org.name, username, on).await?;
    Ok(tagged(StatusCode::OK, &view(&user)))
}

/// Disables the user: their keys, tokens and sessions stop at once.
#[utoipa::path(post, path = "/admin/v1/users/{username}/disable", tag = "users",
    params(("username" = String, Path)), security(("bearer" = ["admin:write"])),
    responses((status = 200, body = UserView), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn disable(
    State(s): State<AppState>,
    caller: Writer,
    WithRejection(Path(username), _): UserPath,
) -> Result<Response> {
    set_disabled(&s, &caller, &username, true).await
}

/// Enables a disabled user again.
#[utoipa::path(post, path = "/admin/v1/users/{username}/enable", tag = "users",
    params(("username" = String, Path)), security(("bearer" = ["admin:write"])),
    responses((status = 200, body = UserView), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn enable(
    State(s): State<AppState>,
    caller: Writer,
    WithRejection(Path(username), _): UserPath,
) -> Result<Response> {
    set_disabled(&s, &caller, &username, false).await
}

/// Deletes the user with their keys, account accesses and tokens.
#[utoipa::path(delete, path = "/admin/v1/users/{username}", tag = "users",
    params(("username" = String, Path)), security(("bearer" = ["admin:write"])),
    responses((status = 204), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn delete(
    State(s): State<AppState>,
    caller: Writer,
    WithRejection(Path(username), _): UserPath,
) -> Result<Response> {
    admin::delete_user(&caller.ctx(&s, None), &caller.org.name, &username).await?;
    Ok(no_content())
}

/// An API user's secret keys.
#[utoipa::path(get, path = "/admin/v1/users/{username}/keys", tag = "api keys",
    params(("username" = String, Path)), security(("bearer" = ["admin:read"])),
    responses((status = 200, body = KeysView), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn keys(
    State(s): State<AppState>,
    caller: Reader,
    WithRejection(Path(username), _): UserPath,
) -> Result<Response> {
    let (key_id, keys) = api_keys::list(&caller.ctx(&s, None), &caller.org.name, &username).await?;
    let keys = keys.iter().map(key_view).collect();
    Ok(json(StatusCode::OK, &KeysView { key_id, keys }))
}

/// Generates a secret key in the free slot (both taken: refused; delete one first).
#[utoipa::path(post, path = "/admin/v1/users/{username}/keys", tag = "api keys",
    params(("username" = String, Path)), security(("bearer" = ["admin:write"])),
    responses((status = 201, body = GeneratedKey), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn generate_key(
    State(s): State<AppState>,
    caller: Writer,
    WithRejection(Path(username), _): UserPath,
) -> Result<Response> {
    let k = api_keys::generate(&caller.ctx(&s, None), &caller.org.name, &username).await?;
    let generated = GeneratedKey {
        key_id: k.key_id,
        slot: k.slot,
        secret_key: k.secret.expose_secret().to_string(),
        bearer: k.bearer.expose_secret().to_string(),
    };
    Ok(json(StatusCode::CREATED, &generated))
}

/// Deletes the key of a slot; it keeps working for `api_keys.delete_grace`.
#[utoipa::path(delete, path = "/admin/v1/users/{username}/keys/{slot}", tag = "api keys",
    params(("username" = String, Path), ("slot" = u8, Path)), security(("bearer" = ["admin:write"])),
    responses((status = 200, body = DeletedKey), (status = "default", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn delete_key(
    State(s): State<AppState>,
    caller: Writer,
    WithRejection(Path((username, slot)), _): PathOf<(String, String)>,
) -> Result<Response> {
    let slot = slot
        .parse::<u8>()
        .map_err(|_| Problem::of("invalid", "the slot is 1 or 2"))?;
    let d = api_keys::delete(&caller.ctx(&s, None), &caller.org.name, &username, slot).await?;
    let deleted = DeletedKey {
        deleted_slot: d.deleted_slot,
        stops_at: time(d.stops_at),
        promoted: d.promoted,
    };
    Ok(json(StatusCode::OK, &deleted))
}
