//! grantry's HTTP surface: the router, the extractors ([`extract`]), the handlers (thin:
//! extract, call one core function, map the result), the success responders (`respond`),
//! the pages (`pages`) and, in [`error`], the one place where outcomes become status codes.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use grantry_core::{Clock, Settings, Store};

mod authorize;
mod docs;
pub mod error;
mod events;
pub mod extract;
mod health;
pub mod limits;
mod oauth;
mod pages;
mod respond;
mod rest;
pub mod tasks;
mod xmlapi;

/// Largest request body any endpoint accepts.
pub const MAX_BODY: usize = 1024 * 1024;

/// What every handler is given: the store, the clock, the validated settings, the limits
/// on guessing secrets and the pool passwords are checked on.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    pub guard: Arc<limits::Guard>,
    pub passwords: Arc<limits::PasswordPool>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: Settings) -> Self {
        let guard = limits::Guard::new(store.clone(), clock.clone(), settings.limits.clone());
        AppState {
            store,
            clock,
            settings: Arc::new(settings),
            guard: Arc::new(guard),
            passwords: Arc::new(limits::PasswordPool::per_core()),
        }
    }
}

/// The whole application as a router, ready to serve or to drive in tests.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/oauth/token", post(oauth::token))
        .merge(pages::with_security_headers(
            Router::new()
                .route("/oauth/authorize", get(authorize::start).post(authorize::decide))
                .route("/oauth/authorize/login", post(authorize::login))
                .route("/docs/api-keys", get(docs::api_keys)),
        ))
        .route("/oauth/introspect", post(oauth::introspect))
        .route("/oauth/revoke", post(oauth::revoke))
        .route("/oauth/jwks", get(oauth::jwks))
        .route("/.well-known/oauth-authorization-server", get(oauth::metadata))
        .route("/XMLAPI", post(xmlapi::call))
        .route(
            "/campaignapi/resources/v3/events",
            post(events::submit)
                .layer(DefaultBodyLimit::max(grantry_core::platform::events::MAX_BODY)),
        )
        .nest("/rest", rest::routes())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(
            // Logs method, path and status only: never the query string, headers or bodies,
            // any of which can carry a credential.
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    tracing::info_span!("request", method = %req.method(), path = %loggable_path(req.uri()))
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}

/// The request path as logged: no query string, and no `;` path parameters (a legacy
/// `;jsessionid=` carries a session id).
fn loggable_path(uri: &axum::http::Uri) -> &str {
    let path = uri.path();
    path.split(';').next().unwrap_or(path)
}

/// Serves `app` on `listener` until `shutdown` completes, then drains in-flight requests;
/// the scheduled work of [`tasks`] runs alongside.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let keys = tokio::spawn(tasks::keep_signing_keys(
        state.store.clone(),
        state.clock.clone(),
        state.settings.tokens.key_rotation,
    ));
    let lockouts = tokio::spawn(tasks::mirror_lockouts(state.guard.clone()));
    let sweeper = tokio::spawn(tasks::sweep_expired(
        state.store.clone(),
        state.clock.clone(),
        state.settings.audit.retention,
    ));
    let service = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await;
    keys.abort();
    lockouts.abort();
    sweeper.abort();
    served
}
