//! # faceid-server: the REST shell over the engine and the gallery
//!
//! Thin axum handlers: each extracts typed input, runs engine work on the bounded
//! [`pool::InferencePool`], stores through the gallery and answers in the shape of its API
//! surface. Every request gets an id (`x-request-id`) carried into logs and audit events.
//!
//! Surfaces (DESIGN.md section 5): 1, ID card and selfie video ([`card_auth`]); 2, face
//! collection ([`collection`]); 3, liveness ([`liveness_server`]); 5, template enrollment
//! ([`templates_api`]); 4, photo-vs-video verification ([`silent_verification`], fields
//! sealed as [`transport`] says); plus `GET /health` and `GET /metrics`. Callers without credentials
//! are handled in [`access`]; selfie uploads (video or still) in [`selfie`].
#![deny(missing_docs)]

pub mod access;
pub mod card_auth;
pub mod challenge;
pub mod collection;
pub mod keys;
pub mod liveness_server;
pub mod metrics;
pub mod pool;
pub mod problem;
pub mod selfie;
pub mod silent_verification;
pub mod sync;
pub mod templates_api;
pub mod transport;
pub mod v1;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use faceid_core::Engine;
use faceid_gallery::{GalleryStore, KioskGallery};
use faceid_service::Service;

use crate::keys::ApiKeys;
use crate::metrics::Metrics;
use crate::pool::InferencePool;
use crate::problem::Problem;

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
    /// Time a request may take, body and inference included (default 30 s); beyond, 503
    /// with Retry-After.
    pub request_timeout: std::time::Duration,
    /// Largest body of the endpoints that take a selfie video (default 50 MiB).
    pub max_video_bytes: usize,
    /// How many frames are sampled from a selfie video, over how many seconds.
    pub video_plan: faceid_video::SamplingPlan,
    /// Whether callers on loopback may use surfaces 1 and 3 without a key (their existing
    /// clients send none). `faceid serve --require-keys` turns it off.
    pub keyless_loopback: bool,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            queue: 32,
            max_body_bytes: 8 * 1024 * 1024,
            request_timeout: std::time::Duration::from_secs(30),
            max_video_bytes: 50 * 1024 * 1024,
            video_plan: faceid_video::SamplingPlan::default(),
            keyless_loopback: true,
        }
    }
}

/// Everything the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The engine (models loaded once).
    pub engine: Arc<Engine>,
    /// The gallery (sled or PostgreSQL).
    pub gallery: Arc<dyn GalleryStore>,
    /// The use cases over the engine and the gallery: every decision goes through it.
    pub service: Service,
    /// API keys (hashes).
    pub keys: Arc<ApiKeys>,
    /// Admission control for engine work.
    pub pool: InferencePool,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Frame sampling for selfie videos.
    pub video_plan: faceid_video::SamplingPlan,
    /// Largest selfie video accepted, in bytes.
    pub video_plan_bytes: usize,
    /// See [`ServerLimits::keyless_loopback`].
    pub keyless_loopback: bool,
    /// See [`ServerLimits::request_timeout`].
    pub request_timeout: std::time::Duration,
    /// Key of surface 4's encrypted fields; without one, surface 4 answers 500.
    pub transport_key: Option<transport::TransportKey>,
    /// What this process saw of each kiosk's sync.
    pub devices: Arc<sync::DeviceActivity>,
    /// The kiosk's own gallery when this server is a kiosk's local API: its sync state and
    /// conflicts are served at `/v1/admin/sync`.
    pub local_sync: Option<Arc<dyn KioskGallery>>,
    /// The kiosk's camera when this server is a kiosk's local API, served at
    /// `/v1/admin/camera` for the operator console's live view.
    pub camera: Option<Arc<dyn CameraView>>,
    /// Active liveness challenges issued by this process.
    pub challenges: Arc<challenge::ChallengeBook>,
}

/// A kiosk's camera as its local API shows it to the operator console.
pub trait CameraView: Send + Sync + std::fmt::Debug {
    /// The newest frame as a JPEG, with its sequence number; `None` before the first frame
    /// or while the camera is away.
    fn newest_jpeg(&self) -> Option<(u64, Vec<u8>)>;
}

impl AppState {
    /// State over a loaded engine and an open gallery.
    pub fn new(
        engine: Arc<Engine>,
        gallery: Arc<dyn GalleryStore>,
        keys: ApiKeys,
        limits: &ServerLimits,
    ) -> AppState {
        AppState {
            service: Service::new(engine.clone(), gallery.clone()),
            engine,
            gallery,
            keys: Arc::new(keys),
            pool: InferencePool::new(limits.workers, limits.queue),
            metrics: Arc::new(Metrics::default()),
            video_plan: limits.video_plan,
            video_plan_bytes: limits.max_video_bytes,
            keyless_loopback: limits.keyless_loopback,
            request_timeout: limits.request_timeout,
            transport_key: None,
            devices: Arc::new(sync::DeviceActivity::default()),
            local_sync: None,
            camera: None,
            challenges: Arc::new(challenge::ChallengeBook::new(
                faceid_core::ChallengeConfig::default(),
            )),
        }
    }

    /// Runs blocking work (a use case: inference, durable writes) on the inference pool, off
    /// the async executor; 503 with Retry-After when the pool is saturated.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Service) -> T + Send + 'static,
    ) -> Result<T, Problem> {
        let service = self.service.clone();
        self.pool
            .run(move || job(&service))
            .await
            .map_err(|_| Problem::busy())
    }

    /// The same state serving a kiosk's camera (a kiosk's local API).
    pub fn with_camera(mut self, camera: Arc<dyn CameraView>) -> AppState {
        self.camera = Some(camera);
        self
    }

    /// The same state serving a kiosk's sync state (a kiosk's local API).
    pub fn with_local_sync(mut self, gallery: Arc<dyn KioskGallery>) -> AppState {
        self.local_sync = Some(gallery);
        self
    }

    /// The same state with surface 4's transport key.
    pub fn with_transport_key(mut self, key: transport::TransportKey) -> AppState {
        self.transport_key = Some(key);
        self
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
        .route("/api/enroll", post(card_auth::enroll))
        .route(
            "/api/authentificate",
            post(card_auth::authenticate).layer(DefaultBodyLimit::max(limits.max_video_bytes)),
        )
        .route("/api/reset", post(card_auth::reset))
        .route(
            "/identity/silent_image_verification/stateless",
            post(silent_verification::verify)
                .layer(DefaultBodyLimit::max(limits.max_video_bytes * 4 / 3 + 4096)),
        )
        .nest("/v1", native(limits))
        .merge(utoipa_swagger_ui::SwaggerUi::new("/swagger-ui").url(
            "/v1/openapi.json",
            <v1::ApiDoc as utoipa::OpenApi>::openapi(),
        ))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// The native API's routes (under `/v1`).
fn native(limits: &ServerLimits) -> Router<AppState> {
    use axum::routing::delete;
    let selfie_limit = DefaultBodyLimit::max(limits.max_video_bytes * 4 / 3 + 4096);
    Router::new()
        .route("/subjects", get(v1::list_subjects).post(v1::enroll))
        .route(
            "/subjects/{id}",
            get(v1::get_subject).delete(v1::delete_subject),
        )
        .route("/subjects/{id}/image", get(v1::subject_image))
        .route("/verify", post(v1::verify).layer(selfie_limit))
        .route("/identify", post(v1::identify).layer(selfie_limit))
        .route("/liveness", post(v1::liveness).layer(selfie_limit))
        .route("/liveness/challenge", post(challenge::issue))
        .route(
            "/liveness/check",
            post(challenge::check).layer(selfie_limit),
        )
        .route("/quality", post(v1::quality))
        .route("/frame", post(v1::frame))
        .route("/card", post(v1::card))
        .route("/audit", get(v1::audit))
        .route("/admin/keys", get(v1::list_keys).post(v1::create_key))
        .route("/admin/keys/{id}", delete(v1::revoke_key))
        .route("/admin/reset", post(v1::reset))
        .route("/admin/status", get(v1::status))
        .route(
            "/admin/devices",
            get(sync::list_devices).post(sync::issue_device),
        )
        .route("/admin/devices/{name}", delete(sync::revoke_device))
        .route("/admin/sync", get(sync::local_status))
        .route("/admin/camera", get(v1::camera))
        .route(
            "/sync/push",
            post(sync::push).layer(DefaultBodyLimit::max(64 * 1024 * 1024)),
        )
        .route("/sync/pull", get(sync::pull))
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
    // Every log line of the request, in handlers and below, carries its id.
    let span = tracing::info_span!("request", request_id = %id);
    let work = tracing::Instrument::instrument(next.run(request), span);
    let mut response = match tokio::time::timeout(state.request_timeout, work).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(request_id = %id, route = %route, "request timed out");
            let mut timed_out = (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"error": "the request took too long", "error_code": "TIMEOUT"})),
            )
                .into_response();
            timed_out.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from_static("1"),
            );
            timed_out
        }
    };
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
    let gallery = state.gallery.clone();
    let answered = tokio::task::spawn_blocking(move || gallery.subject("\u{1}health").map(drop))
        .await
        .map_err(|e| e.to_string())
        .and_then(|read| read.map_err(|e| e.to_string()));
    match answered {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok"})),
        )
            .into_response(),
        Err(cause) => {
            tracing::error!(error = %cause, "health: the gallery does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"status": "unavailable"})),
            )
                .into_response()
        }
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

/// TLS material of the server: a PEM certificate chain and its PEM private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain (PEM), leaf first.
    pub cert: std::path::PathBuf,
    /// Private key (PEM).
    pub key: std::path::PathBuf,
}

/// Serves `router` over TLS (rustls, ring) on `listener` until `shutdown` resolves, then
/// finishes in-flight requests.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    router: Router,
    tls: &TlsFiles,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| std::io::Error::other(format!("{}: {e}", tls.cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| std::io::Error::other(format!("{}: {e}", tls.key.display())))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(std::io::Error::other)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let config = axum_server::tls_rustls::RustlsConfig::from_config(std::sync::Arc::new(config));
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    listener.set_nonblocking(true)?;
    axum_server::from_tcp_rustls(listener, config)?
        .handle(handle)
        .serve(router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await
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
