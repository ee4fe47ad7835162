//! # faceid-sync: a kiosk's link to the central server
//!
//! [`SyncClient`] pushes the kiosk gallery's outbox in batches and pulls the server's change
//! feed; [`SyncClient::run`] repeats that for as long as the kiosk runs, backing off
//! exponentially with jitter while the server is unreachable. Everything it needs to resume
//! after a restart (the outbox, the pull cursor) lives in the gallery, written in the same
//! transactions as the changes themselves, so a kiosk killed at any instant neither loses
//! nor repeats an event: the server applies an event id once and answers a repeat with the
//! first answer.
//!
//! Biometric data crosses the network only inside TLS: [`SyncConfig::server`] must be
//! `https://` (verified against the system-independent root given in
//! [`SyncConfig::ca_pem`]), or `http://` to a loopback address for local development.
//! The protocol is described in `docs/sync.md`.
#![deny(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use faceid_gallery::{
    AuditContext, ChangePage, KioskGallery, OutboxEntry, PushOutcome, RemoteSubject, SyncEvent,
    SyncStep,
};
use serde::{Deserialize, Serialize};

/// Why a sync step failed. Messages carry no token and no biometric data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The server URL is not `https://` and not plain HTTP on loopback.
    #[error("refusing to sync biometric data over plain HTTP to {0}: use https://")]
    Insecure(String),
    /// The URL does not parse.
    #[error("bad server URL {0:?}")]
    BadUrl(String),
    /// The CA certificate does not parse.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The server could not be reached (down, network, TLS handshake).
    #[error("server unreachable: {0}")]
    Unreachable(String),
    /// The server refused the device token (revoked or wrong).
    #[error("the server refused this device's token (HTTP {0})")]
    Unauthorized(u16),
    /// The server answered with an error.
    #[error("server answered HTTP {status}: {body}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Body, shortened.
        body: String,
    },
    /// The server's answer does not match what was pushed.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The local gallery failed.
    #[error("local gallery: {0}")]
    Gallery(#[from] faceid_gallery::Error),
}

impl SyncError {
    /// Whether retrying later may help (the server down or busy), as opposed to a setting
    /// an operator must fix (a revoked token, a bad URL).
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Unreachable(_) | SyncError::Protocol(_) => true,
            SyncError::Server { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// Where and how a kiosk syncs.
#[derive(Clone)]
pub struct SyncConfig {
    /// Server base URL, e.g. `https://faceid.bank.example:8443`.
    pub server: String,
    /// This device's token (`faceid devices issue NAME`).
    pub token: String,
    /// PEM certificate of the authority that signed the server's certificate; when `None`
    /// the client trusts no one and only plain loopback HTTP works.
    pub ca_pem: Option<Vec<u8>>,
    /// Events per push (default 100, server maximum 500).
    pub batch: usize,
    /// Rows per pull (default 1000).
    pub pull_page: usize,
    /// Pause between cycles when all is well (default 5 s).
    pub interval: Duration,
    /// Longest pause after failures (default 60 s).
    pub max_backoff: Duration,
    /// Time one request may take (default 60 s).
    pub request_timeout: Duration,
}

impl std::fmt::Debug for SyncConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncConfig")
            .field("server", &self.server)
            .field("token", &"<secret>")
            .field("batch", &self.batch)
            .field("pull_page", &self.pull_page)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl SyncConfig {
    /// A configuration with the defaults.
    pub fn new(server: impl Into<String>, token: impl Into<String>) -> SyncConfig {
        SyncConfig {
            server: server.into(),
            token: token.into(),
            ca_pem: None,
            batch: 100,
            pull_page: 1000,
            interval: Duration::from_secs(5),
            max_backoff: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// What one push did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PushReport {
    /// Events the server answered.
    pub pushed: usize,
    /// Of those, conflicts or rejections now waiting for the operator.
    pub conflicts: usize,
}

/// What one pull did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PullReport {
    /// Rows received.
    pub received: usize,
    /// Changes applied to the local gallery.
    pub applied: usize,
    /// Cursor reached.
    pub cursor: u64,
}

/// One push-then-pull cycle.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CycleReport {
    /// The push.
    pub push: PushReport,
    /// The pull (skipped while events are still waiting to be pushed).
    pub pull: Option<PullReport>,
}

#[derive(Serialize)]
struct PushBody<'a> {
    events: Vec<&'a SyncEvent>,
}

#[derive(Deserialize)]
struct PushAnswer {
    results: Vec<PushResult>,
}

#[derive(Deserialize)]
struct PushResult {
    event_id: String,
    outcome: PushOutcome,
    server_record: Option<RemoteSubject>,
}

/// Syncs one kiosk gallery with one server.
#[derive(Debug, Clone)]
pub struct SyncClient {
    gallery: Arc<dyn KioskGallery>,
    http: reqwest::Client,
    base: String,
    config: SyncConfig,
}

fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl SyncClient {
    /// A client for `gallery` (opened with an outbox). Refuses plain HTTP beyond loopback.
    pub fn new(
        gallery: Arc<dyn KioskGallery>,
        config: SyncConfig,
    ) -> Result<SyncClient, SyncError> {
        let base = checked_base_url(&config.server)?;
        let http = https_client(config.ca_pem.as_deref(), config.request_timeout)?;
        Ok(SyncClient {
            gallery,
            http,
            base,
            config,
        })
    }

    fn ctx(&self) -> AuditContext {
        AuditContext {
            actor: "sync".into(),
            request_id: uuid_like(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, SyncError> {
        let response = request
            .header("x-api-key", &self.config.token)
            .send()
            .await
            .map_err(|e| SyncError::Unreachable(error_chain(&e)))?;
        let status = response.status().as_u16();
        match status {
            200..=299 => Ok(response),
            401 | 403 => Err(SyncError::Unauthorized(status)),
            _ => {
                let mut body = response.text().await.unwrap_or_default();
                body.truncate(300);
                Err(SyncError::Server { status, body })
            }
        }
    }

    async fn push_batch(&self, entries: &[OutboxEntry]) -> Result<PushReport, SyncError> {
        let body = PushBody {
            events: entries.iter().map(|e| &e.event).collect(),
        };
        let answer: PushAnswer = self
            .send(
                self.http
                    .post(format!("{}/v1/sync/push", self.base))
                    .json(&body),
            )
            .await?
            .json()
            .await
            .map_err(|e| SyncError::Protocol(e.to_string()))?;
        if answer.results.len() != entries.len() {
            return Err(SyncError::Protocol(format!(
                "{} answers for {} events",
                answer.results.len(),
                entries.len()
            )));
        }
        let mut report = PushReport::default();
        let ctx = self.ctx();
        for (entry, result) in entries.iter().zip(&answer.results) {
            if result.event_id != entry.event.id {
                return Err(SyncError::Protocol("answers out of order".into()));
            }
            self.gallery
                .settle(entry, &result.outcome, result.server_record.as_ref(), &ctx)?;
            report.pushed += 1;
            if result.outcome.needs_operator() {
                tracing::warn!(event = %entry.event.id, outcome = ?result.outcome, "sync conflict for the operator");
                report.conflicts += 1;
            }
        }
        Ok(report)
    }

    /// Pushes the outbox in batches until it is empty.
    pub async fn push(&self) -> Result<PushReport, SyncError> {
        let mut total = PushReport::default();
        loop {
            let entries = self.gallery.outbox_batch(self.config.batch.clamp(1, 500))?;
            if entries.is_empty() {
                return Ok(total);
            }
            let report = self.push_batch(&entries).await?;
            total.pushed += report.pushed;
            total.conflicts += report.conflicts;
        }
    }

    /// Pulls the change feed from the stored cursor until the server has no more.
    pub async fn pull(&self) -> Result<PullReport, SyncError> {
        let mut report = PullReport {
            cursor: self.gallery.sync_cursor()?,
            ..PullReport::default()
        };
        loop {
            let page: ChangePage = self
                .send(self.http.get(format!(
                    "{}/v1/sync/pull?cursor={}&limit={}",
                    self.base,
                    report.cursor,
                    self.config.pull_page.clamp(1, 2000)
                )))
                .await?
                .json()
                .await
                .map_err(|e| SyncError::Protocol(e.to_string()))?;
            if page.next_cursor < report.cursor {
                return Err(SyncError::Protocol("the cursor went backwards".into()));
            }
            report.received += page.changes.len();
            report.applied += self.gallery.apply_page(&page, &self.ctx())?;
            report.cursor = page.next_cursor;
            if !page.more {
                return Ok(report);
            }
        }
    }

    /// Pushes everything waiting, then (when nothing is left waiting) pulls. The outcome of
    /// each step is recorded in the gallery's sync status.
    pub async fn cycle(&self) -> Result<CycleReport, SyncError> {
        let push = self.push().await;
        self.gallery
            .note_sync(SyncStep::Push, push.as_ref().err().map(ToString::to_string))?;
        let push = push?;
        let pull = if self.gallery.pending() == 0 {
            let pull = self.pull().await;
            self.gallery
                .note_sync(SyncStep::Pull, pull.as_ref().err().map(ToString::to_string))?;
            Some(pull?)
        } else {
            None
        };
        Ok(CycleReport { push, pull })
    }

    /// Cycles until `shutdown` resolves: every `interval` while the server answers, with
    /// exponential backoff and full jitter (1 s doubling up to `max_backoff`) while it does
    /// not. Errors are logged and kept in the gallery's sync status, never fatal.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut failures: u32 = 0;
        loop {
            let pause = match self.cycle().await {
                Ok(report) => {
                    failures = 0;
                    if report.push.pushed > 0 || report.pull.as_ref().is_some_and(|p| p.applied > 0)
                    {
                        tracing::info!(?report, "sync cycle");
                    }
                    self.config.interval
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let pause = backoff(failures, self.config.max_backoff);
                    tracing::warn!(%error, retry_in_ms = pause.as_millis() as u64, "sync failed");
                    pause
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

/// `url` without its trailing slash, if it is `https://` or plain HTTP on loopback.
pub fn checked_base_url(url: &str) -> Result<String, SyncError> {
    let base = url.trim_end_matches('/').to_string();
    if base.starts_with("https://") || is_loopback_http(&base) {
        Ok(base)
    } else if base.starts_with("http://") {
        Err(SyncError::Insecure(base))
    } else {
        Err(SyncError::BadUrl(base))
    }
}

/// An HTTP client that trusts only the authority in `ca_pem` (rustls with ring; no system
/// roots, so a kiosk talks to its own server and nothing else).
pub fn https_client(
    ca_pem: Option<&[u8]>,
    timeout: Duration,
) -> Result<reqwest::Client, SyncError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.unwrap_or_default()) {
        let cert = cert.map_err(|e| SyncError::Tls(format!("CA certificate: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| SyncError::Tls(format!("CA certificate: {e}")))?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SyncError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| SyncError::Tls(e.to_string()))
}

/// The pause after `failures` consecutive failures: uniform in `[0, min(cap, 1 s * 2^(n-1))]`
/// ("full jitter"), so kiosks that lost the server together do not return together.
pub fn backoff(failures: u32, cap: Duration) -> Duration {
    let exp = Duration::from_secs(1)
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(cap);
    let millis = exp.as_millis() as u64;
    Duration::from_millis(fastrand::u64(millis / 10..=millis.max(1)))
}

fn uuid_like() -> String {
    format!("sync-{:016x}", fastrand::u64(..))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_only_for_loopback() {
        assert!(is_loopback_http("http://127.0.0.1:8080"));
        assert!(is_loopback_http("http://localhost:1/x"));
        assert!(is_loopback_http("http://[::1]:9"));
        assert!(!is_loopback_http("http://10.0.0.2:8080"));
        assert!(!is_loopback_http("http://faceid.example"));
        assert!(!is_loopback_http("https://127.0.0.1"));
    }

    #[test]
    fn backoff_grows_to_its_cap_and_is_jittered() {
        let cap = Duration::from_secs(60);
        for failures in 1..40 {
            let pause = backoff(failures, cap);
            let ceiling = Duration::from_secs(1u64 << (failures - 1).min(16)).min(cap);
            assert!(pause <= ceiling, "{failures}: {pause:?} > {ceiling:?}");
        }
        let samples: std::collections::HashSet<_> = (0..50).map(|_| backoff(8, cap)).collect();
        assert!(samples.len() > 10, "no jitter: {samples:?}");
    }
}
