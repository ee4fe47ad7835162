//! # faceid-server: the REST shell over the engine and the gallery
//!
//! Thin axum handlers: each extracts typed input, runs engine work on the bounded
//! [`pool::InferencePool`], stores through the gallery and answers in the shape of its API
//! surface. Every request gets an id (`x-request-id`) carried into logs and audit events.
//!
//! Implemented so far: surface 2 (face collection, [`collection`]), surface 3 (liveness,
//! [`liveness_server`]), surface 5 (template enrollment, [`templates_api`]), `GET /health`,
//! `GET /metrics`. Surfaces 1, 4 and the native
//! `/v1` API of DESIGN.md section 5 come next.
#![deny(missing_docs)]

pub mod collection;
pub mod keys;
pub mod liveness_server;
pub mod metrics;
pub mod pool;
pub mod problem;
pub mod templates_api;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use faceid_core::Engine;
use faceid_gallery::Gallery;

use crate::keys::ApiKeys;
use crate::metrics::Metrics;
use crate::pool::InferencePool;

/// The id of one request, in every log line and audit event it causes.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Limits of the server.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Concurrent engine jobs (default: CPU count).
    pub workers: usize,
    /// Engine jobs allowed to wait (default 32); beyond, 503 with Retry-After.
    pub queue: usize,
    /// Largest request body in bytes (default 8 MiB: a 5 MB image in base64 plus JSON).
    pub max_body_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            queue: 32,
            max_body_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Everything the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The engine (models loaded once).
    pub engine: Arc<Engine>,
    /// The gallery.
    pub gallery: Arc<Gallery>,
    /// API keys (hashes).
    pub keys: Arc<ApiKeys>,
    /// Admission control for engine work.
    pub pool: InferencePool,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// State over a loaded engine and an open gallery.
    pub fn new(
        engine: Arc<Engine>,
        gallery: Arc<Gallery>,
        keys: ApiKeys,
        limits: &ServerLimits,
    ) -> AppState {
        AppState {
            engine,
            gallery,
            keys: Arc::new(keys),
            pool: InferencePool::new(limits.workers, limits.queue),
            metrics: Arc::new(Metrics::default()),
        }
    }
}

/// The router; tests can drive it without a socket, `serve` puts it on one.
pub fn app(state: AppState, limits: &ServerLimits) -> Router {
    Router::new()
        .route("/users/search", post(collection::search))
        .route(
            "/users/{user_id}",
            post(collection::enroll).delete(collection::delete),
        )
        .route("/api_version", get(liveness_server::api_version))
        .route("/check_liveness", post(liveness_server::check_liveness))
        .route(
            "/check_liveness_batch",
            post(liveness_server::check_liveness_batch),
        )
        .route("/check_image", post(liveness_server::check_image))
        .route("/bi_report", get(liveness_server::bi_report))
        .route("/bi_records", get(liveness_server::bi_records))
        .route("/api/v1.0/add", post(templates_api::add))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Assigns the request id, logs the request and feeds the per-route metrics.
async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = request.method().clone();
    let start = Instant::now();
    let mut response = next.run(request).await;
    let seconds = start.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    state.metrics.observe(&route, status, seconds);
    tracing::info!(request_id = %id, %method, route = %route, status, ms = seconds * 1000.0, "request");
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// `GET /health`: 200 when the gallery answers, 503 otherwise.
async fn health(State(state): State<AppState>) -> Response {
    match state.gallery.subject("\u{1}health") {
        Ok(_) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok"})),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "unavailable"})),
        )
            .into_response(),
    }
}

/// `GET /metrics`: Prometheus text.
async fn metrics(State(state): State<AppState>) -> Response {
    let text = state
        .metrics
        .render(state.gallery.len(), state.pool.depth());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response()
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
