//! Active liveness challenges over HTTP.
//!
//! `POST /v1/liveness/challenge` draws a challenge (2-3 random steps) and returns it with a
//! `challenge_id`: the challenge itself, signed with HMAC-SHA256 under a key this process
//! drew at start. The id is checked, never looked up: a forged or altered id is
//! `INVALID_CHALLENGE`, a late one `CHALLENGE_EXPIRED`, and an id already redeemed in this
//! process `CHALLENGE_USED` (single use; several server processes behind one address need
//! sticky routing for challenges). `POST /v1/liveness/check` takes the id and the recording
//! and answers the challenge's verdict; `/v1/verify`, `/v1/identify` and `/v1/subjects`
//! accept a `challenge_id` and then require the challenge before deciding.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use faceid_core::{Challenge, ChallengeConfig};
use faceid_gallery::AuditContext;
use faceid_service::{Challenged, Selfie};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::keys::Role;
use crate::problem::Problem;
use crate::selfie::{SelfieFrames, base64_media, frames};
use crate::{AppState, RequestId};

/// Issues and redeems challenges.
#[derive(Debug)]
pub struct ChallengeBook {
    key: [u8; 32],
    config: ChallengeConfig,
    /// Redeemed ids with their expiry (pruned once expired: an expired id is refused anyway).
    used: Mutex<HashMap<String, u64>>,
}

/// Why a `challenge_id` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not an id this process issued (or altered).
    Invalid,
    /// Past its deadline.
    Expired,
    /// Redeemed before.
    Used,
}

impl Refusal {
    /// The answer: 400 `INVALID_CHALLENGE`, 410 `CHALLENGE_EXPIRED`, 409 `CHALLENGE_USED`.
    pub fn problem(self) -> Problem {
        match self {
            Refusal::Invalid => Problem::bad_request(["INVALID_CHALLENGE"]),
            Refusal::Expired => Problem::gone(["CHALLENGE_EXPIRED"]),
            Refusal::Used => Problem::conflict(["CHALLENGE_USED"]),
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn random_bytes() -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    out[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    out
}

/// HMAC-SHA256 (RFC 2104).
fn hmac(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut inner = Sha256::new();
    let mut outer = Sha256::new();
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

impl ChallengeBook {
    /// A book with a fresh signing key.
    pub fn new(config: ChallengeConfig) -> ChallengeBook {
        ChallengeBook {
            key: random_bytes(),
            config,
            used: Mutex::new(HashMap::new()),
        }
    }

    /// How challenges are drawn and tracked.
    pub fn config(&self) -> &ChallengeConfig {
        &self.config
    }

    /// Draws a challenge; returns it with its signed id (an error, never an id over an
    /// empty payload, if it cannot be encoded).
    pub fn issue(&self, now_ms: u64) -> Result<(Challenge, String), serde_json::Error> {
        let challenge = Challenge::draw(&self.config, random_bytes(), now_ms);
        let payload = serde_json::to_vec(&challenge)?;
        let mac = hmac(&self.key, &payload);
        let id = format!(
            "{}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&payload),
            mac.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        Ok((challenge, id))
    }

    /// Checks a signed id and marks it used.
    pub fn redeem(&self, id: &str, now_ms: u64) -> Result<Challenge, Refusal> {
        let (payload, mac) = id.split_once('.').ok_or(Refusal::Invalid)?;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| Refusal::Invalid)?;
        let expected: String = hmac(&self.key, &payload)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        // Constant-time comparison of the hex digests.
        let same = expected.len() == mac.len()
            && expected
                .bytes()
                .zip(mac.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return Err(Refusal::Invalid);
        }
        let challenge: Challenge =
            serde_json::from_slice(&payload).map_err(|_| Refusal::Invalid)?;
        if now_ms > challenge.expires_at_ms {
            return Err(Refusal::Expired);
        }
        let mut used = self
            .used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        used.retain(|_, expires| *expires >= now_ms);
        if used
            .insert(challenge.id.clone(), challenge.expires_at_ms)
            .is_some()
        {
            return Err(Refusal::Used);
        }
        Ok(challenge)
    }
}

/// A drawn challenge as the client shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengeView {
    /// Send this back with the recording.
    pub challenge_id: String,
    /// The steps in order: `turn_left`, `turn_right`, `look_up`, `blink`, `come_closer`
    /// (left and right are the person's own).
    pub steps: Vec<String>,
    /// Issue time, milliseconds since the Unix epoch.
    pub issued_at_ms: u64,
    /// Deadline, milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
    /// Time allowed for each step, milliseconds.
    pub step_timeout_ms: u64,
}

/// A recording answering a challenge.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CheckRequest {
    /// The id `POST /v1/liveness/challenge` returned.
    pub challenge_id: String,
    /// Base64 video (MP4/MOV/WebM) recorded from the challenge's issue.
    pub media: String,
}

/// One step's result.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    /// The step.
    pub step: String,
    /// Whether it was performed.
    pub done: bool,
}

/// The cues behind a verdict, for audit.
#[derive(Debug, Serialize, ToSchema)]
pub struct CuesView {
    /// Accumulated passive live probability.
    pub passive: Option<f32>,
    /// Planarity depth (`null`: the face did not move enough to tell).
    pub depth: Option<f32>,
    /// Frames with a face.
    pub frames: usize,
}

/// A challenge's verdict.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResponse {
    /// Whether the person passed.
    pub passed: bool,
    /// Why not: `TIMEOUT`, `WRONG_ORDER`, `FACE_CHANGED`, `MULTIPLE_FACES`, `FLAT_FACE`,
    /// `SPOOF_SUSPECTED`, `FACE_LOST`.
    pub reason: Option<String>,
    /// Each step.
    pub steps: Vec<StepView>,
    /// The cues.
    pub cues: CuesView,
}

/// Draw a liveness challenge (client).
#[utoipa::path(post, path = "/v1/liveness/challenge", tag = "analysis",
    responses((status = 201, body = ChallengeView), (status = 401, body = Problem)))]
pub async fn issue(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<ChallengeView>), Problem> {
    crate::access::keyed(&state, &headers, Role::Client)?;
    let (challenge, id) = state
        .challenges
        .issue(now_ms())
        .map_err(Problem::internal)?;
    Ok((
        StatusCode::CREATED,
        Json(ChallengeView {
            challenge_id: id,
            steps: challenge
                .steps
                .iter()
                .map(|s| s.name().to_string())
                .collect(),
            issued_at_ms: challenge.issued_at_ms,
            expires_at_ms: challenge.expires_at_ms,
            step_timeout_ms: state.challenges.config().step_timeout_ms,
        }),
    ))
}

/// Check a recording against its challenge (client): the steps in order and in time, one
/// person throughout, and the liveness cues of its frames.
#[utoipa::path(post, path = "/v1/liveness/check", request_body = CheckRequest, tag = "analysis",
    responses((status = 200, body = CheckResponse), (status = 400, body = Problem),
              (status = 409, body = Problem, description = "CHALLENGE_USED"),
              (status = 410, body = Problem, description = "CHALLENGE_EXPIRED"),
              (status = 422, body = Problem)))]
pub async fn check(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    request: Result<Json<CheckRequest>, JsonRejection>,
) -> Result<Json<CheckResponse>, Problem> {
    let request = crate::v1::body(request)?;
    let actor = crate::access::keyed(&state, &headers, Role::Client)?;
    let challenge = state
        .challenges
        .redeem(&request.challenge_id, now_ms())
        .map_err(Refusal::problem)?;
    let bytes = base64_media(&request.media, state.video_plan_bytes)?;
    let plan = state.video_plan;
    let config = state.challenges.config().clone();
    let audit = AuditContext {
        actor,
        request_id: request_id.0.clone(),
    };
    let outcome = state
        .run(move |service| -> Result<_, Problem> {
            let recording =
                frames(service.engine(), &bytes, &plan).map_err(crate::v1::selfie_refusal)?;
            let (outcome, _) = service
                .judge()
                .challenge(challenged(challenge, config, recording))?;
            let label = outcome.reason.map_or("passed", |r| r.code());
            service
                .gallery()
                .record("liveness_challenge", None, label, &audit)
                .map_err(Problem::internal)?;
            Ok(outcome)
        })
        .await??;
    let liveness = outcome.liveness;
    Ok(Json(CheckResponse {
        passed: outcome.passed,
        reason: outcome.reason.map(|r| r.code().to_string()),
        steps: outcome
            .steps
            .iter()
            .map(|s| StepView {
                step: s.step.name().to_string(),
                done: s.done_at_ms.is_some(),
            })
            .collect(),
        cues: CuesView {
            passive: liveness.map(|l| l.probability),
            depth: liveness.and_then(|l| l.planarity).and_then(|p| p.depth),
            frames: liveness.map_or(0, |l| l.frames),
        },
    }))
}

/// A decoded recording with its challenge, for the use cases.
pub fn challenged(
    challenge: Challenge,
    config: ChallengeConfig,
    recording: SelfieFrames,
) -> Challenged {
    Challenged {
        challenge,
        config,
        times_ms: recording
            .times_secs
            .iter()
            .map(|t| (t * 1000.0).round().max(0.0) as u64)
            .collect(),
        images: recording.images,
    }
}

/// The selfie of a decision: the challenged recording when a `challenge_id` came with it
/// (redeemed here), the plain frames otherwise.
pub fn selfie(challenge: Option<(Challenge, ChallengeConfig)>, recording: SelfieFrames) -> Selfie {
    match challenge {
        Some((challenge, config)) => {
            Selfie::Challenged(Box::new(challenged(challenge, config, recording)))
        }
        None => Selfie::Frames {
            images: recording.images,
            duration_secs: recording.duration_secs,
        },
    }
}

/// Redeems an optional `challenge_id` of a decision request.
pub fn redeem(
    state: &AppState,
    id: Option<&str>,
) -> Result<Option<(Challenge, ChallengeConfig)>, Problem> {
    id.map(|id| {
        state
            .challenges
            .redeem(id, now_ms())
            .map(|c| (c, state.challenges.config().clone()))
            .map_err(Refusal::problem)
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_are_signed_single_use_and_expire() {
        let book = ChallengeBook::new(ChallengeConfig::default());
        let (challenge, id) = book.issue(1_000).unwrap();
        assert_eq!(book.redeem(&id, 2_000).unwrap(), challenge);
        assert_eq!(book.redeem(&id, 2_000), Err(Refusal::Used));
        let (_, late) = book.issue(1_000).unwrap();
        assert_eq!(book.redeem(&late, 1_000 + 60_000), Err(Refusal::Expired));
        let (_, other) = book.issue(1_000).unwrap();
        let forged = format!("{}x", &other[..other.len() - 1]);
        assert_eq!(book.redeem(&forged, 2_000), Err(Refusal::Invalid));
        assert_eq!(book.redeem("nonsense", 2_000), Err(Refusal::Invalid));
        // Another process's key does not verify.
        let (_, foreign) = ChallengeBook::new(ChallengeConfig::default())
            .issue(1_000)
            .unwrap();
        assert_eq!(book.redeem(&foreign, 2_000), Err(Refusal::Invalid));
    }
}
