//! grantry's HTTP surface: the router, the extractors ([`extract`]), the handlers (thin:
//! extract, call one core function, map the result), the success responders (`respond`),
//! the pages (`pages`) and, in [`error`], the one place where outcomes become status codes.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use grantry_core::mail::Mailer;
use grantry_core::{Clock, Settings, Store};

use crate::error::RouteProblem;
use crate::extract::{Now, Source};
pub use crate::limits::Limits;

mod admin;
mod authorize;
mod console;
mod docs;
pub mod error;
mod events;
pub mod extract;
pub mod guard;
mod health;
pub mod limits;
pub mod metrics;
mod oauth;
mod oauth1;
mod pages;
mod respond;
mod rest;
pub mod tasks;
mod xmlapi;

/// What every handler is given: the store, the clock and the validated settings, the
/// limits on guessing secrets and the pool passwords are checked on; and what [`serve`]
/// allows each connection ([`Limits`]). One shared allocation, so handing it to a request
/// (each extractor of `State` clones it) costs one reference count, not one per part.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The parts of [`AppState`], reached through it (`state.store`).
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    pub guard: Arc<guard::Guard>,
    pub passwords: Arc<guard::PasswordPool>,
    /// Where the console's notifications go (account access, as the CLI mails them).
    pub mailer: Arc<dyn Mailer>,
    pub limits: Limits,
    /// The process's metrics recorder and the request series registered with it, when
    /// `GET /metrics` is served.
    pub metrics: Option<Arc<metrics::Metrics>>,
    /// Whether `GET /metrics` is on the API listener (else only on [`metrics_app`]'s).
    pub metrics_on_api: bool,
    /// Proxies (`http.trusted_proxies`) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// The digest of the platform operator's token (`admin.operator_token_sha256`), which
    /// alone creates organizations through the admin API.
    pub operator_token: Option<grantry_core::credential::Digest>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// The state with the default [`Limits`].
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: Settings) -> Self {
        let guard = guard::Guard::new(store.clone(), clock.clone(), settings.limits.clone());
        AppState(Arc::new(Shared {
            store,
            clock,
            settings: Arc::new(settings),
            guard: Arc::new(guard),
            passwords: Arc::new(guard::PasswordPool::per_core()),
            mailer: Arc::new(NoMail),
            limits: Limits::default(),
            metrics: None,
            metrics_on_api: false,
            trusted_proxies: Arc::new([]),
            operator_token: None,
        }))
    }

    /// The same state accepting the operator token whose SHA-256 digest is `digest`.
    pub fn with_operator_token(self, digest: grantry_core::credential::Digest) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.0);
        shared.operator_token = Some(digest);
        AppState(Arc::new(shared))
    }

    /// The same state taking the client's address from `X-Forwarded-For` on connections
    /// from `proxies` (a load balancer in front of grantry).
    pub fn with_trusted_proxies(self, proxies: Vec<ipnet::IpNet>) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.0);
        shared.trusted_proxies = proxies.into();
        AppState(Arc::new(shared))
    }

    /// The same state serving `GET /metrics` from `handle`'s recorder: on the API listener
    /// when `on_api`, else only through [`metrics_app`] on a listener of its own.
    pub fn with_metrics(
        self,
        handle: metrics_exporter_prometheus::PrometheusHandle,
        on_api: bool,
    ) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.0);
        shared.metrics = Some(Arc::new(metrics::Metrics::new(handle)));
        shared.metrics_on_api = on_api;
        AppState(Arc::new(shared))
    }

    /// The same state sending mail with `mailer`.
    pub fn with_mailer(self, mailer: Arc<dyn Mailer>) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.0);
        shared.mailer = mailer;
        AppState(Arc::new(shared))
    }

    /// The same state with `limits` (`[http]` in the configuration).
    pub fn with_limits(self, limits: Limits) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.0);
        shared.limits = limits;
        AppState(Arc::new(shared))
    }
}

/// The mailer of a state built without one: every message fails, and the console says so.
struct NoMail;

#[async_trait::async_trait]
impl Mailer for NoMail {
    async fn send(&self, _: grantry_core::mail::Message) -> Result<(), String> {
        Err("this server has no mail set up".into())
    }
}

/// The request id header (docs/architecture.md, metrics and logs).
const REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// `GET /metrics` alone, for a listener of its own (`metrics.listen`).
pub fn metrics_app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::render))
        .with_state(state)
}

/// Serves [`metrics_app`] on `listener` until the process ends.
pub async fn serve_metrics(listener: tokio::net::TcpListener, state: AppState) {
    if let Err(e) = axum::serve(listener, metrics_app(state)).await {
        tracing::error!(error = %e, "the metrics listener stopped");
    }
}

/// The whole application as a router, ready to serve or to drive in tests. Each API family
/// has its body limit ([`limits`]) and answers unknown paths, wrong methods
/// and unreadable bodies in its own format (docs/architecture.md, the serving loop).
pub fn app(state: AppState) -> Router {
    let token_family = Router::new()
        .route("/token", post(oauth::token))
        .route("/introspect", post(oauth::introspect))
        .route("/revoke", post(oauth::revoke))
        .layer(DefaultBodyLimit::max(limits::TOKEN_BODY));
    let authorize = pages::with_security_headers(
        Router::new()
            .route("/authorize", get(authorize::start).post(authorize::decide))
            .route("/authorize/login", post(authorize::login))
            .layer(DefaultBodyLimit::max(limits::AUTHORIZE_BODY)),
    );
    let oauth = token_family
        .merge(authorize)
        .route("/jwks", get(oauth::jwks))
        .fallback(|| async { error::oauth::route_refused(RouteProblem::NotFound) })
        .method_not_allowed_fallback(|| async {
            error::oauth::route_refused(RouteProblem::MethodNotAllowed)
        });
    let oauth1 = Router::new()
        .route("/request_token", post(oauth1::request_token))
        .route("/access_token", post(oauth1::access_token))
        .layer(DefaultBodyLimit::max(limits::TOKEN_BODY))
        .merge(pages::with_security_headers(
            Router::new()
                .route("/authorize", get(oauth1::start).post(oauth1::decide))
                .route("/authorize/login", post(oauth1::login))
                .layer(DefaultBodyLimit::max(limits::AUTHORIZE_BODY)),
        ));
    let xml = post(xmlapi::call)
        .fallback(|| async { error::xml::route_refused(RouteProblem::MethodNotAllowed) })
        .layer(DefaultBodyLimit::max(limits::XML_BODY));
    let events = post(events::submit)
        .fallback(|| async { error::events::route_refused(RouteProblem::MethodNotAllowed) })
        .layer(DefaultBodyLimit::max(limits::EVENTS_BODY));
    let router = Router::new()
        .nest("/oauth", oauth)
        .nest("/oauth1", oauth1)
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata),
        )
        .route("/XMLAPI", xml)
        .route("/campaignapi/resources/v3/events", events)
        .merge(pages::with_security_headers(
            Router::new()
                .route("/docs/api-keys", get(docs::api_keys))
                .route("/docs/oauth1", get(docs::oauth1)),
        ))
        .nest(
            "/rest",
            rest::routes().layer(DefaultBodyLimit::max(limits::REST_BODY)),
        )
        .nest(
            "/admin/v1",
            admin::routes().layer(DefaultBodyLimit::max(limits::ADMIN_BODY)),
        )
        .route("/", get(|| async { pages::see_other("/console") }))
        .merge(console::routes())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/pods", get(health::pods));
    let router = if state.metrics.is_some() && state.metrics_on_api {
        router.route("/metrics", get(metrics::render))
    } else {
        router
    };
    router
        .fallback(unrouted.layer(DefaultBodyLimit::max(limits::XML_BODY)))
        .layer(DefaultBodyLimit::max(limits::OTHER_BODY))
        .layer(axum::middleware::map_response(error::retry_after_on_503))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(
            // Logs method, path, status and the request id only: never the query string,
            // other headers or bodies, any of which can carry a credential.
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %loggable_path(req.uri()), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        // Every request has an id (the client's or the load balancer's `X-Request-Id` when
        // it sent one, else a new UUID), on its log lines and in the response.
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// A path no route matches: `/XMLAPI;jsessionid=...` is the XML API's, anything under the
/// Event API's prefix is answered in its format, the rest is a bare 404.
async fn unrouted(
    State(state): State<AppState>,
    Now(now): Now,
    source: Source,
    req: Request,
) -> Response {
    let path = req.uri().path();
    if path.starts_with("/XMLAPI;") {
        let uri = req.uri().clone();
        let method = req.method().clone();
        let headers = req.headers().clone();
        let body =
            <axum::body::Bytes as axum::extract::FromRequest<()>>::from_request(req, &()).await;
        return xmlapi::with_path_parameters(state, now, source, method, uri, headers, body).await;
    }
    if path.starts_with("/campaignapi/") {
        return error::events::route_refused(RouteProblem::NotFound);
    }
    RouteProblem::NotFound.status().into_response()
}

/// The request path as logged: no query string, and no `;` path parameters (a legacy
/// `;jsessionid=` carries a session id).
fn loggable_path(uri: &axum::http::Uri) -> &str {
    let path = uri.path();
    path.split(';').next().unwrap_or(path)
}

/// Serves `app` on `listener` until `shutdown` completes, then drains in-flight requests;
/// the scheduled work of [`tasks`] runs alongside. The connection limits are the state's
/// [`Limits`].
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
        state.settings.clone(),
    ));
    let store = state.store.clone();
    let served = accept_loop(listener, state, shutdown).await;
    keys.abort();
    lockouts.abort();
    sweeper.abort();
    // Every answered request has committed; nothing is left to flush but the database itself.
    store.close().await;
    served
}

/// The serving loop (docs/architecture.md, the serving loop): HTTP/1.1 with keep-alive,
/// a header read timeout and header limits from hyper, a deadline on each body, and at
/// most `max_connections` connections at once. At the cap the loop stops accepting until
/// a connection closes; new connections wait in the listen backlog rather than being
/// accepted and dropped.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits;
    let http = limits.http1();
    let trusted = state.trusted_proxies.clone();
    let router = app(state);
    let body_timeout = limits.body_read_timeout;
    let service = router.map_request(move |req: Request<hyper::body::Incoming>| {
        req.map(|b| Body::new(limits::DeadlineBody::new(b, body_timeout)))
    });
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // Only a trusted proxy's connection may say who the client is.
        let trusted = trusted
            .iter()
            .any(|net| net.contains(&peer.ip()))
            .then(|| trusted.clone());
        let conn = http.serve_connection(
            TokioIo::new(stream),
            // The peer's address, for the limits on guessing secrets (extract::Source).
            TowerToHyperService::new(service.clone().map_request(
                move |mut req: Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    if let Some(client) = trusted
                        .as_deref()
                        .and_then(|t| extract::forwarded_client(req.headers(), t))
                    {
                        req.extensions_mut().insert(extract::ClientAddr(client));
                    }
                    req
                },
            )),
        );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    // Shutdown (docs/architecture.md, the serving loop): stop accepting, let the requests
    // being served finish (idle keep-alive connections close now, busy ones after their
    // answer), within `drain_timeout`.
    drop(listener);
    let busy = limits.max_connections - slots.available_permits();
    tracing::info!(
        connections = busy,
        "shutting down: no longer accepting; finishing the requests being served"
    );
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout = ?limits.drain_timeout,
            "requests still running after http.drain_timeout; closing their connections"
        );
    }
    Ok(())
}

/// An accept that failed: a connection the client gave up on is skipped; anything else
/// (out of file descriptors) is logged and retried after a pause, as the descriptors of
/// closing connections come back.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in 1s");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logged_path_never_carries_a_session_id() {
        for (uri, logged) in [
            ("/XMLAPI;jsessionid=gxs_p_SECRET", "/XMLAPI"),
            ("/XMLAPI;JSESSIONID=gxs_p_SECRET;other=1", "/XMLAPI"),
            ("/XMLAPI?jsessionid=gxs_p_SECRET", "/XMLAPI"),
            ("/rest/databases", "/rest/databases"),
        ] {
            let uri: axum::http::Uri = uri.parse().unwrap();
            assert_eq!(loggable_path(&uri), logged);
        }
    }
}
