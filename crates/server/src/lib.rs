//! grantry's HTTP surface: the router, the handlers (thin: extract, call one core function,
//! map the result) and, in [`error`], the one place where outcomes become status codes.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use grantry_core::{Clock, Settings, Store};

pub mod error;
mod extract;
mod health;
mod oauth;
mod rest;
mod xmlapi;

/// Largest request body any endpoint accepts.
pub const MAX_BODY: usize = 1024 * 1024;

/// What every handler is given: the store, the clock and the validated settings.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: Settings) -> Self {
        AppState {
            store,
            clock,
            settings: Arc::new(settings),
        }
    }
}

/// The whole application as a router, ready to serve or to drive in tests.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/oauth/token", post(oauth::token))
        .route("/XMLAPI", post(xmlapi::call))
        .nest("/rest", rest::routes())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(
            // Logs method, path and status only: never headers or bodies, which carry secrets.
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` completes, then drains in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
