//! The console's view of the `/v1` API: the answers it reads (its own deserialising copies
//! of the server's shapes, only the fields it shows) and [`Api`], one call per endpoint.
//! Every call is async and runs on the backend thread, never on the UI thread.

use std::time::Duration;

use faceid_gallery::{AuditEvent, SyncStatus};
use serde::Deserialize;

/// Why a call failed, in the terms the console shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No answer: the server is down, the network is gone, or it timed out. The console
    /// shows the connection as lost and keeps retrying.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The key is unknown or revoked.
    #[error("the server refused the key (401)")]
    Unauthorized,
    /// The key's role is too low for this call.
    #[error("this needs a higher role than the key's (403)")]
    Forbidden,
    /// The thing asked for does not exist (or, for `/v1/admin/sync`, this is not a kiosk).
    #[error("not found (404)")]
    NotFound,
    /// Any other refusal, with the server's problem detail.
    #[error("the server answered {status}: {detail}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The body, as the server gave it.
        detail: String,
    },
    /// The answer did not have the expected shape (a different server version?).
    #[error("unexpected answer: {0}")]
    Decode(String),
}

impl ApiError {
    /// Whether the failure is the connection itself rather than the request.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, ApiError::Unreachable(_))
    }
}

/// An enrolled person, as `/v1/subjects` lists them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Subject {
    /// Stable id.
    pub id: String,
    /// Name shown to operators.
    pub display_name: Option<String>,
    /// Enrollment time, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// Last change, ms since the Unix epoch.
    pub updated_at_ms: u64,
    /// Kiosk or server that enrolled the subject.
    pub source: Option<String>,
    /// Templates held.
    pub templates: usize,
    /// Whether an enrollment image is retained.
    pub has_image: bool,
}

/// A page of the audit log and the state of its hash chain.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AuditPage {
    /// Events, oldest first.
    pub events: Vec<AuditEvent>,
    /// Whether the whole chain verifies.
    pub chain_valid: bool,
    /// Events in the whole log.
    pub chain_events: u64,
    /// First event failing verification.
    pub first_invalid_seq: Option<u64>,
}

/// `/v1/admin/status`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ServerStatus {
    /// Server version.
    pub version: String,
    /// Recognition model id.
    pub model: String,
    /// Enrolled subjects.
    pub gallery_size: usize,
    /// Bytes held by the 1:N index.
    pub index_memory_bytes: usize,
    /// Engine jobs waiting.
    pub queue_depth: usize,
}

/// `/v1/admin/devices`: each kiosk's sync state as the server saw it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Devices {
    /// Change-feed head: a kiosk whose cursor is here is up to date.
    pub change_head: u64,
    /// Devices with a token.
    pub devices: Vec<Device>,
}

/// One kiosk known to a server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Device {
    /// Device name.
    pub name: String,
    /// Last push, ms since the Unix epoch.
    pub last_push_ms: Option<u64>,
    /// Last pull, ms since the Unix epoch.
    pub last_pull_ms: Option<u64>,
    /// Cursor of its last pull.
    pub cursor: Option<u64>,
    /// Events pushed since the server started.
    pub events_pushed: u64,
    /// Conflicts reported back to it.
    pub conflicts: u64,
}

/// `/v1/admin/sync`, served by a kiosk's local API: its own sync state.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LocalSync {
    /// Outbox, cursor, last push and pull, last error.
    pub status: SyncStatus,
}

/// `/v1/frame`: one camera frame as the engine sees it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FrameAnalysis {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Every face, largest first.
    pub faces: Vec<FrameFace>,
    /// The main face's liveness, quality and identity.
    pub main: Option<FrameMain>,
}

/// A face box with its landmarks, in frame pixels.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FrameFace {
    /// Box corners.
    pub bbox: PixelBox,
    /// Detector confidence.
    pub score: f32,
    /// The 68 landmarks.
    pub landmarks: Landmarks,
}

/// Corners of a box, pixels.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct PixelBox {
    /// Left.
    pub x1: f32,
    /// Top.
    pub y1: f32,
    /// Right.
    pub x2: f32,
    /// Bottom.
    pub y2: f32,
}

/// Landmark points.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Landmarks {
    /// Points, pixels.
    pub points: Vec<PixelPoint>,
}

/// A point, pixels.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct PixelPoint {
    /// From the left.
    pub x: f32,
    /// From the top.
    pub y: f32,
}

/// What the engine makes of the main face of a frame.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FrameMain {
    /// Why it would refuse this frame as a probe (`MULTIPLE_FACES`...).
    pub refusal: Option<String>,
    /// One-frame passive liveness.
    pub liveness: Option<FrameLiveness>,
    /// Quality gate.
    pub quality: Option<FrameQuality>,
    /// 1:N answer.
    pub identity: Option<FrameIdentity>,
}

/// Liveness of one frame.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FrameLiveness {
    /// Live probability re-centred on the preset (live at 0.5 and above).
    pub probability: f32,
    /// Whether it passes the preset.
    pub live: bool,
    /// The preset.
    pub preset: String,
}

/// Quality of one frame's face.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FrameQuality {
    /// Every measure passes.
    pub passed: bool,
    /// First failing measure's code.
    pub failure: Option<String>,
    /// Every measure (`{value, passed}` objects, and a few plain numbers).
    pub measures: serde_json::Map<String, serde_json::Value>,
}

impl FrameQuality {
    /// Names of the measures that fail, in the server's order.
    pub fn failing(&self) -> Vec<&str> {
        self.measures
            .iter()
            .filter(|(_, m)| m.get("passed").and_then(serde_json::Value::as_bool) == Some(false))
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

/// Who the main face is.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FrameIdentity {
    /// The subject over the threshold, if any.
    pub subject_id: Option<String>,
    /// Best candidate's calibrated score.
    pub score: Option<f32>,
    /// Threshold for this gallery size.
    pub threshold: f32,
}

/// A kiosk's local API or a server, reached with one operator or admin key. Use one per
/// thread (runtime): pooled connections belong to the runtime that opened them.
#[derive(Clone)]
pub struct Api {
    base: String,
    key: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for Api {
    // The key stays out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("base", &self.base).finish()
    }
}

/// How long one call may take before the connection counts as lost.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

impl Api {
    /// A client for `base`: `https://` trusting only the CA in `ca_pem` (the one that signed
    /// the server's certificate, as for kiosk sync), or plain `http://` (loopback: a kiosk's
    /// local API).
    pub fn new(base: &str, key: &str, ca_pem: Option<&[u8]>) -> Result<Api, ApiError> {
        let client =
            faceid_sync::https_client(ca_pem, CALL_TIMEOUT).map_err(|e| ApiError::Refused {
                status: 0,
                detail: e.to_string(),
            })?;
        Ok(Api {
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
            client,
        })
    }

    /// The address the console talks to.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiError> {
        let response = request
            .header("x-api-key", &self.key)
            .send()
            .await
            .map_err(|e| ApiError::Unreachable(without_url(&e)))?;
        match response.status().as_u16() {
            200..=299 => Ok(response),
            401 => Err(ApiError::Unauthorized),
            403 => Err(ApiError::Forbidden),
            404 => Err(ApiError::NotFound),
            status => Err(ApiError::Refused {
                status,
                detail: response.text().await.unwrap_or_default(),
            }),
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let url = format!("{}{path}", self.base);
        let response = self.send(self.client.get(url)).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ApiError::Unreachable(without_url(&e)))?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// Subjects whose id or name contains `search` (all when empty), at most 1,000.
    pub async fn subjects(&self, search: &str) -> Result<Vec<Subject>, ApiError> {
        let search = percent_encode(search);
        self.json(&format!("/v1/subjects?limit=1000&search={search}"))
            .await
    }

    /// The retained enrollment image of `id` (`NotFound` when none is kept).
    pub async fn subject_image(&self, id: &str) -> Result<Vec<u8>, ApiError> {
        let url = format!("{}/v1/subjects/{}/image", self.base, percent_encode(id));
        let response = self.send(self.client.get(url)).await?;
        response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| ApiError::Unreachable(without_url(&e)))
    }

    /// Erases `id`: templates, image, index entries (audited by the server).
    pub async fn delete_subject(&self, id: &str) -> Result<(), ApiError> {
        let url = format!("{}/v1/subjects/{}", self.base, percent_encode(id));
        self.send(self.client.delete(url)).await.map(|_| ())
    }

    /// Audit events after `after` (at most 1,000), optionally about one subject.
    pub async fn audit(&self, after: u64, subject: Option<&str>) -> Result<AuditPage, ApiError> {
        let mut path = format!("/v1/audit?limit=1000&after={after}");
        if let Some(subject) = subject.filter(|s| !s.is_empty()) {
            path.push_str(&format!("&subject={}", percent_encode(subject)));
        }
        self.json(&path).await
    }

    /// Version, model, gallery size, index memory, queue depth.
    pub async fn status(&self) -> Result<ServerStatus, ApiError> {
        self.json("/v1/admin/status").await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> Result<String, ApiError> {
        let url = format!("{}/metrics", self.base);
        let response = self.send(self.client.get(url)).await?;
        response
            .text()
            .await
            .map_err(|e| ApiError::Unreachable(without_url(&e)))
    }

    /// Each kiosk's sync state (admin keys only; `Forbidden` for an operator key).
    pub async fn devices(&self) -> Result<Devices, ApiError> {
        self.json("/v1/admin/devices").await
    }

    /// A kiosk's own sync state (`NotFound` on a central server).
    pub async fn local_sync(&self) -> Result<LocalSync, ApiError> {
        self.json("/v1/admin/sync").await
    }

    /// A kiosk camera's newest frame (JPEG) and its sequence number (`NotFound`: not a
    /// kiosk; `Refused` 503: no frame yet).
    pub async fn camera(&self) -> Result<(u64, Vec<u8>), ApiError> {
        let url = format!("{}/v1/admin/camera", self.base);
        let response = self.send(self.client.get(url)).await?;
        let seq = response
            .headers()
            .get("x-frame-seq")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ApiError::Unreachable(without_url(&e)))?;
        Ok((seq, bytes.to_vec()))
    }

    /// Faces, liveness, quality and identity of one JPEG frame.
    pub async fn frame(&self, jpeg: &[u8]) -> Result<FrameAnalysis, ApiError> {
        use base64::Engine as _;
        let media = base64::engine::general_purpose::STANDARD.encode(jpeg);
        let url = format!("{}/v1/frame", self.base);
        let response = self
            .send(
                self.client
                    .post(url)
                    .json(&serde_json::json!({ "media": media })),
            )
            .await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ApiError::Unreachable(without_url(&e)))?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode(e.to_string()))
    }
}

/// A transport error without its URL (the URL is on screen already; the key never is).
fn without_url(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection refused"
    } else {
        "connection failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(e) = source {
        detail = e.to_string();
        source = e.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({detail})")
    }
}

/// Percent-encodes a path segment or query value.
fn percent_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(percent_encode("ada l/é&x"), "ada%20l%2F%C3%A9%26x");
    }

    #[test]
    fn failing_quality_measures_are_listed() {
        let quality: FrameQuality = serde_json::from_value(serde_json::json!({
            "passed": false, "failure": "FACE_TOO_SMALL",
            "measures": {"inter_eye_px": {"value": 20.0, "passed": false}, "face_width_px": 50.0,
                         "yaw_deg": {"value": 3.0, "passed": true},
                         "sharpness": {"value": 0.1, "passed": false}, "overall": 0.4}
        }))
        .unwrap();
        assert_eq!(quality.failing(), vec!["inter_eye_px", "sharpness"]);
    }
}
