//! Prometheus metrics (docs/architecture.md, metrics and logs): one recorder per process,
//! installed by `grantry serve`, fed through the `metrics` facade by the layers that know each
//! figure (this module for requests, the guard for failures and locks, the token endpoint for
//! issuance, the store for its cache, pools and commits), rendered at `GET /metrics` in the
//! Prometheus text format.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// Request latency buckets, in seconds: the cached paths answer in well under a millisecond,
/// durable writes in a few.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Writes per group commit.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Installs the process's recorder (once; a second call answers the first one's handle is
/// already set, so callers keep the handle they got).
pub fn install() -> Result<PrometheusHandle, String> {
    let latency = Matcher::Suffix("_seconds".into());
    PrometheusBuilder::new()
        .set_buckets_for_metric(latency, LATENCY_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("grantry_group_commit_batch_size".into()),
                BATCH_BUCKETS,
            )
        })
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))
}

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Folds the histograms' recorded samples into their buckets every [`UPKEEP_EVERY`]: the
/// recorder keeps each sample until then, so without it memory would grow with the traffic
/// between two scrapes (or forever, when nobody scrapes).
pub async fn upkeep(handle: PrometheusHandle) {
    let mut tick = tokio::time::interval(UPKEEP_EVERY);
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

/// Counts every request and its latency by route template (never the path itself, which
/// can carry an id or a session), method and status; nothing when no recorder is installed.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(metrics) = state.metrics.as_deref() else {
        return next.run(req).await;
    };
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = method_label(req.method());
    let started = started();
    let response = next.run(req).await;
    let took = started.elapsed();
    let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    let (requests, latency) = metrics.requests.get(route, method, response.status());
    requests.increment(1);
    latency.record(took.as_secs_f64());
    response
}

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// The method label: the methods of RFC 9110 §9 and PATCH by name, any other as `other`, so
/// a client inventing methods cannot add series to the recorder without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// The process's recorder (what `GET /metrics` renders) and the request series registered
/// with it.
pub struct Metrics {
    handle: PrometheusHandle,
    requests: RequestMetrics,
}

impl Metrics {
    pub fn new(handle: PrometheusHandle) -> Self {
        Metrics {
            handle,
            requests: RequestMetrics::default(),
        }
    }
}

/// The request counters and latency histograms already registered with the recorder, by
/// route template, method and status. A request finds its two handles here under a shared
/// lock instead of building six owned labels and looking each series up in the recorder's
/// registry; the first request of a kind registers them. Routes are the router's templates,
/// methods and statuses are bounded (see [`method_label`]), so the table stays small.
#[derive(Default)]
struct RequestMetrics {
    routes: RwLock<HashMap<Box<str>, Vec<Series>>>,
}

/// The handles of one route, method and status.
struct Series {
    method: &'static str,
    status: StatusCode,
    requests: Counter,
    latency: Histogram,
}

impl RequestMetrics {
    fn get(&self, route: &str, method: &'static str, status: StatusCode) -> (Counter, Histogram) {
        let find = |series: &[Series]| {
            series
                .iter()
                .find(|s| s.method == method && s.status == status)
                .map(|s| (s.requests.clone(), s.latency.clone()))
        };
        if let Some(found) = self
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(route)
            .and_then(|series| find(series))
        {
            return found;
        }
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        let series = routes.entry(route.into()).or_default();
        if let Some(found) = find(series) {
            return found;
        }
        let route = route.to_string();
        let requests = metrics::counter!("grantry_http_requests_total", "route" => route.clone(), "method" => method, "status" => status.as_u16().to_string());
        let latency = metrics::histogram!("grantry_http_request_duration_seconds", "route" => route, "method" => method);
        series.push(Series {
            method,
            status,
            requests: requests.clone(),
            latency: latency.clone(),
        });
        (requests, latency)
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "request latency is measured in monotonic time for metrics only; no protocol decision reads it"
)]
fn started() -> std::time::Instant {
    std::time::Instant::now()
}

/// `GET /metrics`: the Prometheus text format, with the store's pool and cache figures read
/// at scrape time.
pub async fn render(State(state): State<AppState>) -> Response {
    let Some(Metrics { handle, .. }) = state.metrics.as_deref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let stats = state.store.stats();
    for pool in &stats.pools {
        let in_use = pool.size.saturating_sub(pool.idle);
        metrics::gauge!("grantry_db_pool_connections", "pool" => pool.name, "state" => "in_use")
            .set(f64::from(in_use));
        metrics::gauge!("grantry_db_pool_connections", "pool" => pool.name, "state" => "idle")
            .set(f64::from(pool.idle));
        metrics::gauge!("grantry_db_pool_max_connections", "pool" => pool.name)
            .set(f64::from(pool.max));
    }
    // How long ago the credential cache last confirmed the authorization epoch; past one
    // second the cache no longer answers (docs/architecture.md, the credential cache).
    let age = stats
        .epoch_confirmed_ago
        .map_or(f64::INFINITY, |d: Duration| d.as_secs_f64());
    metrics::gauge!("grantry_credential_cache_epoch_age_seconds").set(age);
    // One cheap query; while the database is down the gauges keep their last values and
    // `grantry_db_up` says why.
    match state.store.live_sessions(state.clock.now()).await {
        Ok(live) => {
            metrics::gauge!("grantry_live_sessions", "kind" => "console").set(live.console as f64);
            metrics::gauge!("grantry_live_sessions", "kind" => "xml").set(live.xml as f64);
            metrics::gauge!("grantry_db_up").set(1.0);
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: counting live sessions failed");
            metrics::gauge!("grantry_db_up").set(0.0);
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}
