//! The REST API under `/rest` (docs/architecture.md, protected APIs): databases (lists) and their contacts, as JSON
//! wrapped in `{"meta": ..., "links": [], "data": ...}`.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use axum_extra::extract::WithRejection;
use serde::Deserialize;
use serde_json::{json, Value};

use grantry_core::model::{Contact, List};
use grantry_core::platform::data as platform;
use grantry_core::store::ContactKey;

use crate::error::RouteProblem;
use crate::error::{ApiError, RestError};
use crate::extract::{Caller, CallerWith, Now, Rest, Sent};
use crate::respond::rest_ok;
use crate::AppState;

type Result<T> = std::result::Result<T, ApiError>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/databases", get(lists).post(create_list))
        .route("/databases/{id}", get(list).delete(delete_list))
        .route("/databases/{id}/contacts", get(contacts).post(add_contact))
        .route(
            "/databases/{id}/contacts/{contact}",
            get(contact).patch(update_contact).delete(delete_contact),
        )
        .fallback(|| async { RestError::from(RouteProblem::NotFound) })
        .method_not_allowed_fallback(|| async { RestError::from(RouteProblem::MethodNotAllowed) })
}

/// A path parameter, refused in the REST format when it does not decode.
type RestPath<T> = WithRejection<Path<T>, RestError>;

/// The query string, refused in the REST format when it does not decode.
type RestQuery<T> = WithRejection<Query<T>, RestError>;

fn list_json(l: &List) -> Value {
    json!({"id": l.id, "name": l.name, "size": l.size, "createdAt": l.created_at.to_rfc3339()})
}

fn contact_json(c: &Contact) -> Value {
    json!({
        "id": c.id, "databaseId": c.list_id, "email": c.email, "columns": c.columns,
        "createdAt": c.created_at.to_rfc3339(), "updatedAt": c.updated_at.to_rfc3339(),
    })
}

fn id(field: &str, s: &str) -> std::result::Result<i64, RestError> {
    s.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| RestError::field(field, format!("{s:?} is not an id")))
}

/// Parses a JSON body, naming what is wrong in the REST error format.
fn body<T: for<'de> Deserialize<'de>>(sent: &Sent) -> std::result::Result<T, RestError> {
    if !crate::extract::is_json(sent.media_type.as_deref()) {
        return Err(RestError::unsupported_media_type());
    }
    serde_json::from_slice(&sent.body).map_err(|e| {
        RestError::general(
            StatusCode::BAD_REQUEST,
            format!("the request body is not valid JSON for this call: {e}"),
        )
    })
}

async fn lists(State(s): State<AppState>, Caller(p, _): Caller<Rest>) -> Result<Response> {
    let all = platform::lists(&*s.store, &p).await?;
    Ok(rest_ok(
        StatusCode::OK,
        all.iter().map(list_json).collect(),
        json!({"total": all.len()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewList {
    name: String,
}

async fn create_list(
    State(s): State<AppState>,
    Now(now): Now,
    CallerWith(p, b, _): CallerWith<Rest>,
) -> Result<Response> {
    let req: NewList = body(&b)?;
    let l = platform::create_list(&*s.store, now, &p, &req.name).await?;
    Ok(rest_ok(StatusCode::CREATED, list_json(&l), json!({})))
}

async fn list(
    State(s): State<AppState>,
    Caller(p, _): Caller<Rest>,
    WithRejection(Path(lid), _): RestPath<String>,
) -> Result<Response> {
    let l = platform::list(&*s.store, &p, id("id", &lid)?).await?;
    Ok(rest_ok(StatusCode::OK, list_json(&l), json!({})))
}

async fn delete_list(
    State(s): State<AppState>,
    Caller(p, _): Caller<Rest>,
    WithRejection(Path(lid), _): RestPath<String>,
) -> Result<Response> {
    platform::delete_list(&*s.store, &p, id("id", &lid)?).await?;
    Ok(rest_ok(StatusCode::OK, Value::Null, json!({})))
}

async fn contacts(
    State(s): State<AppState>,
    Caller(p, _): Caller<Rest>,
    WithRejection(Path(lid), _): RestPath<String>,
    WithRejection(Query(pairs), _): RestQuery<Vec<(String, String)>>,
) -> Result<Response> {
    let lid = id("id", &lid)?;
    let mut q = HashMap::new();
    for (k, v) in pairs {
        let known = matches!(k.as_str(), "email" | "page" | "pageSize");
        if q.insert(k.clone(), v).is_some() && known {
            return Err(
                RestError::field(&k, format!("{k} was sent more than once; send it once")).into(),
            );
        }
    }
    if let Some(email) = q.get("email") {
        let found = match platform::contact(&*s.store, &p, lid, ContactKey::Email(email)).await {
            Ok(c) => vec![contact_json(&c)],
            Err(platform::DataError::NotFound("contact")) => vec![],
            Err(e) => return Err(e.into()),
        };
        let n = found.len();
        return Ok(rest_ok(
            StatusCode::OK,
            Value::Array(found),
            json!({"total": n}),
        ));
    }
    let num = |k: &str, default: i64| -> std::result::Result<i64, RestError> {
        q.get(k)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| RestError::field(k, format!("{v:?} is not a number")))
            })
            .unwrap_or(Ok(default))
    };
    let (page, size) = (num("page", 1)?, num("pageSize", 50)?);
    let (items, total) = platform::contacts(&*s.store, &p, lid, page, size).await?;
    Ok(rest_ok(
        StatusCode::OK,
        items.iter().map(contact_json).collect(),
        json!({"page": page, "pageSize": size, "total": total}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewContact {
    email: String,
    #[serde(default)]
    columns: BTreeMap<String, String>,
}

async fn add_contact(
    State(s): State<AppState>,
    Now(now): Now,
    WithRejection(Path(lid), _): RestPath<String>,
    CallerWith(p, b, _): CallerWith<Rest>,
) -> Result<Response> {
    let lid = id("id", &lid)?;
    let req: NewContact = body(&b)?;
    let c = platform::add_contact(&*s.store, now, &p, lid, &req.email, &req.columns).await?;
    Ok(rest_ok(StatusCode::CREATED, contact_json(&c), json!({})))
}

async fn contact(
    State(s): State<AppState>,
    Caller(p, _): Caller<Rest>,
    WithRejection(Path((lid, cid)), _): RestPath<(String, String)>,
) -> Result<Response> {
    let c = platform::contact(
        &*s.store,
        &p,
        id("id", &lid)?,
        ContactKey::Id(id("contactId", &cid)?),
    )
    .await?;
    Ok(rest_ok(StatusCode::OK, contact_json(&c), json!({})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactChange {
    email: Option<String>,
    #[serde(default)]
    columns: BTreeMap<String, String>,
}

async fn update_contact(
    State(s): State<AppState>,
    Now(now): Now,
    WithRejection(Path((lid, cid)), _): RestPath<(String, String)>,
    CallerWith(p, b, _): CallerWith<Rest>,
) -> Result<Response> {
    let (lid, cid) = (id("id", &lid)?, id("contactId", &cid)?);
    let req: ContactChange = body(&b)?;
    let c = platform::update_contact(
        &*s.store,
        now,
        &p,
        lid,
        cid,
        req.email.as_deref(),
        &req.columns,
    )
    .await?;
    Ok(rest_ok(StatusCode::OK, contact_json(&c), json!({})))
}

async fn delete_contact(
    State(s): State<AppState>,
    Caller(p, _): Caller<Rest>,
    WithRejection(Path((lid, cid)), _): RestPath<(String, String)>,
) -> Result<Response> {
    platform::delete_contact(&*s.store, &p, id("id", &lid)?, id("contactId", &cid)?).await?;
    Ok(rest_ok(StatusCode::OK, Value::Null, json!({})))
}
