//! The admin API under `/admin/v1` (docs/architecture.md, the admin API): every console
//! action as JSON, for automation. Callers present an access token or API key carrying
//! `admin:read` (reads) or `admin:write` (changes), and act in their own org only; errors are
//! RFC 9457 problem details; updates need `If-Match` with the resource's `ETag`; creates take
//! an `Idempotency-Key`. The handlers are thin: the work is core's `admin` module, the same
//! functions as the console's and the CLI's.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use grantry_core::admin::{AdminError, Ctx, Idempotency};
use grantry_core::gate::{BearerError, Principal};
use grantry_core::model::Org;
use grantry_core::{Grant, Timestamp};

use crate::error::{BodyProblem, Problem, RouteProblem};
use crate::extract::{self, Now, Presented, Source};
use crate::{limits, AppState};

mod access;
mod apps;
pub mod openapi;
mod operator;
mod users;

type Result<T> = std::result::Result<T, Problem>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/org", get(access::org))
        .route("/orgs", post(operator::create))
        .route("/applications", get(apps::list).post(apps::create))
        .route(
            "/applications/{client_id}",
            get(apps::get).patch(apps::update).delete(apps::delete),
        )
        .route(
            "/applications/{client_id}/secrets",
            post(apps::rotate_secret),
        )
        .route("/account-accesses", get(access::list).post(access::create))
        .route(
            "/account-accesses/{client_id}/{username}",
            delete(access::delete),
        )
        .route("/users", get(users::list).post(users::create))
        .route(
            "/users/{username}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .route(
            "/users/{username}/grants/{grant}",
            put(users::add_grant).delete(users::remove_grant),
        )
        .route("/users/{username}/disable", post(users::disable))
        .route("/users/{username}/enable", post(users::enable))
        .route(
            "/users/{username}/keys",
            get(users::keys).post(users::generate_key),
        )
        .route("/users/{username}/keys/{slot}", delete(users::delete_key))
        .route("/audit", get(access::audit))
        .route("/openapi.json", get(openapi::document))
        .merge(crate::pages::with_security_headers(
            Router::new().route("/docs", get(openapi::page)),
        ))
        .fallback(|| async { Problem::from(RouteProblem::NotFound) })
        .method_not_allowed_fallback(|| async { Problem::from(RouteProblem::MethodNotAllowed) })
}

/// An authenticated admin API caller holding `admin:write` (`WRITE`) or `admin:read`,
/// with its org's name and the request's id and time.
pub struct Admin<const WRITE: bool> {
    pub principal: Principal,
    pub org: Org,
    pub request_id: Option<String>,
    pub now: Timestamp,
}

/// A caller that may read.
pub type Reader = Admin<false>;
/// A caller that may change things.
pub type Writer = Admin<true>;

impl<const WRITE: bool> FromRequestParts<AppState> for Admin<WRITE> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let Ok(Now(now)) = Now::from_request_parts(parts, state).await;
        let source = Source::of(&parts.extensions);
        let principal = extract::principal(state, now, source, Presented::head(parts)).await?;
        // `admin:write` implies `admin:read`; a refusal names the scope the call needs
        // (RFC 6750 §3.1 `insufficient_scope`).
        let needs = if WRITE {
            Grant::AdminWrite
        } else {
            Grant::AdminRead
        };
        if !(principal.grants.contains(needs)
            || (!WRITE && principal.grants.contains(Grant::AdminWrite)))
        {
            return Err(BearerError::insufficient_scope(needs).into());
        }
        let org = state
            .store
            .org_by_id(principal.org_id)
            .await
            .map_err(grantry_core::admin::AdminError::from)?
            .ok_or_else(|| Problem::of("unauthenticated", "the caller's organization is gone"))?;
        let request_id = parts
            .headers
            .get(crate::REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Admin {
            principal,
            org,
            request_id,
            now,
        })
    }
}

impl<const WRITE: bool> Admin<WRITE> {
    /// The context of core's admin operations: this caller, at this request's time.
    pub fn ctx<'a>(&'a self, state: &'a AppState, idem: Option<&'a Idempotency>) -> Ctx<'a> {
        Ctx {
            store: &*state.store,
            now: self.now,
            settings: &state.settings,
            actor: &self.principal.username,
            request_id: self.request_id.as_deref(),
            idempotency: idem,
        }
    }
}

/// A JSON request body, refused in problem details form when it is not JSON or not the
/// call's shape.
pub struct Body<T> {
    pub value: T,
    /// The `Idempotency-Key` sent with it, as a key of this request.
    pub idempotency: Option<Idempotency>,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self> {
        let json = extract::is_json(extract::content_type(req.headers()).as_deref());
        let key = req
            .headers()
            .get("idempotency-key")
            .map(|v| v.to_str().map(str::to_string));
        let (method, path) = (req.method().clone(), req.uri().path().to_string());
        let raw = Bytes::from_request(req, state)
            .await
            .map_err(|r| Problem::from(BodyProblem::of(&r, limits::ADMIN_BODY)))?;
        if !json {
            return Err(Problem::of(
                "unsupported-media-type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let value = serde_json::from_slice(&raw).map_err(|e| {
            Problem::of(
                "invalid-request",
                format!("the request body is not valid JSON for this call: {e}"),
            )
        })?;
        let idempotency = match key {
            None => None,
            Some(Err(_)) => {
                return Err(Problem::of(
                    "invalid",
                    "the Idempotency-Key header must be visible ASCII",
                ))
            }
            Some(Ok(k)) => Some(
                Idempotency::new(&k, &[method.as_str().as_bytes(), path.as_bytes(), &raw])
                    .map_err(Problem::from)?,
            ),
        };
        Ok(Body { value, idempotency })
    }
}

/// A strong entity tag of a resource's JSON representation (RFC 9110 §8.8.3).
pub fn etag<T: Serialize>(view: &T) -> String {
    let json = serde_json::to_vec(view).unwrap_or_default();
    let digest = Sha256::digest(&json);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]);
    format!("\"{b64}\"")
}

/// The entity tags of an `If-Match` header (RFC 9110 §13.1.1): `Any` for `*`.
pub enum IfMatch {
    Any,
    Tags(Vec<String>),
}

impl IfMatch {
    /// The request's `If-Match`; updates need one (RFC 6585 §3, 428).
    pub fn required(headers: &HeaderMap) -> Result<IfMatch> {
        let mut tags = Vec::new();
        for v in headers.get_all(header::IF_MATCH) {
            let v = v
                .to_str()
                .map_err(|_| Problem::of("invalid-request", "If-Match must be ASCII"))?;
            for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if t == "*" {
                    return Ok(IfMatch::Any);
                }
                tags.push(t.to_string());
            }
        }
        if tags.is_empty() {
            return Err(Problem::of(
                "precondition-required",
                "send If-Match with the ETag of the resource as you read it, so a change made by someone else since is not overwritten",
            ));
        }
        Ok(IfMatch::Tags(tags))
    }

    /// Whether a resource whose entity tag is `current` matches (strong comparison: a weak
    /// tag never does).
    pub fn matches(&self, current: &str) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Tags(tags) => tags.iter().any(|t| t == current),
        }
    }
}

/// A JSON answer with `status`, never cached (it may carry a one-time secret).
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// One resource with its `ETag`.
pub fn tagged<T: Serialize>(status: StatusCode, view: &T) -> Response {
    let mut resp = json(status, view);
    if let Ok(v) = HeaderValue::from_str(&etag(view)) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// The answer to a create retried under its idempotency key: what the first one made, as
/// it is now, without its one-time secrets, marked as a replay.
pub fn replayed<T: Serialize>(view: &T) -> Response {
    let mut resp = tagged(StatusCode::CREATED, view);
    resp.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}

/// What a create under an idempotency key came to: made now, or made before by the first
/// request with the key (its audit target).
pub enum Made<T> {
    New(T),
    Before(String),
}

/// Runs `create` once per idempotency key of `cx`: a key already stored answers with what
/// its first request made; a create that conflicts because a concurrent request with the
/// same key committed first is answered the same way.
pub async fn once<T>(
    cx: &Ctx<'_>,
    org: &str,
    create: impl std::future::Future<Output = grantry_core::admin::Result<T>>,
) -> Result<Made<T>> {
    if let Some(target) = grantry_core::admin::replayed(cx, org).await? {
        return Ok(Made::Before(target));
    }
    match create.await {
        Ok(v) => Ok(Made::New(v)),
        Err(AdminError::Conflict(m)) if cx.idempotency.is_some() => {
            match grantry_core::admin::replayed(cx, org).await? {
                Some(target) => Ok(Made::Before(target)),
                None => Err(AdminError::Conflict(m).into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// A create's target, made by the first request with its idempotency key, that has been
/// deleted since.
pub fn gone(target: &str) -> Problem {
    Problem::of(
        "conflict",
        format!("{target}, made by the first request with this idempotency key, was deleted since; use a new key"),
    )
}

/// An answer without a body.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A time as the admin API writes it: RFC 3339, UTC.
pub fn time(t: Timestamp) -> String {
    t.to_rfc3339()
}

/// One page of a list and the cursor of the next (`None` on the last page).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Page<T: utoipa::ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// `?limit=&cursor=` of a list.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// At most this many items (1-200, default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A list's `limit`: 1-200 items, 50 when not sent.
pub fn limit(asked: Option<u32>) -> Result<usize> {
    match asked.unwrap_or(50) {
        n @ 1..=200 => Ok(n as usize),
        n => Err(Problem::of(
            "invalid",
            format!("limit {n} is out of range; ask for 1 to 200 items"),
        )),
    }
}

impl Paging {
    fn after(&self) -> Result<Option<String>> {
        self.cursor
            .as_deref()
            .map(|c| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        Problem::of("invalid", "the cursor is not one this list gave out")
                    })
            })
            .transpose()
    }

    /// The page of `items` after the cursor, in the order of `key` (unique per item).
    pub fn page<T: utoipa::ToSchema>(
        &self,
        mut items: Vec<T>,
        key: impl Fn(&T) -> String,
    ) -> Result<Page<T>> {
        let limit = limit(self.limit)?;
        let after = self.after()?;
        items.sort_by_cached_key(&key);
        let mut rest: Vec<T> = items
            .into_iter()
            .filter(|i| after.as_ref().is_none_or(|a| key(i) > *a))
            .collect();
        let more = rest.len() > limit;
        rest.truncate(limit);
        let next_cursor = rest
            .last()
            .filter(|_| more)
            .map(|i| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key(i)));
        Ok(Page {
            items: rest,
            next_cursor,
        })
    }
}

/// A path segment as text, refused in problem details form when it does not decode.
pub type PathOf<T> = axum_extra::extract::WithRejection<axum::extract::Path<T>, Problem>;
/// The query string, refused in problem details form when it does not decode.
pub type QueryOf<T> = axum_extra::extract::WithRejection<axum::extract::Query<T>, Problem>;
