//! Surface 1: enroll from a national ID card, authenticate from a selfie video.
//!
//! - `POST /api/enroll?username=NAME`, multipart `cin_file` (the card image): the holder's
//!   portrait is found on the card (any orientation) and enrolled under `NAME`. When the
//!   image also shows the card's machine-readable zone (a scan of both sides), an expired
//!   card or one whose check digits fail is refused.
//! - `POST /api/authentificate?username=NAME`, multipart `auth_video` (a video or a single
//!   image): frames sampled, liveness accumulated, the best-quality frame matched against
//!   `NAME`'s templates. `score` is the engine's calibrated score (0..1, 0.6 = FAR 1e-3).
//! - `POST /api/reset`: erases every subject.
//!
//! Existing clients send no credentials, so callers on loopback need none; others need an
//! `x-api-key` (admin for reset). Shapes and spellings (`authentificate`, `DecisionReason`)
//! are the existing clients' (DESIGN.md, appendix A). Decisions answer 200, also when
//! rejected; only transport problems change the status.
//!
//! `DecisionReason` values, one per case:
//!
//! | reason | when | status |
//! |---|---|---|
//! | `ENROLLED_AS_USER` | enrolled | 200 |
//! | `AUTHENTIFICATION_SUCCESS` | authenticated | 200 |
//! | `MISSING_USERNAME` | no `username` parameter | 200 |
//! | `EMPTY_USERNAME` | `username=` | 200 |
//! | `INVALID_USERNAME` | not UTF-8, control characters, over 128 bytes | 200 |
//! | `MISSING_FILE` | no `cin_file` / `auth_video` part | 200 |
//! | `EMPTY_FILE` | the part is zero bytes | 200 |
//! | `MALFORMED_REQUEST` | not a multipart body | 200 |
//! | `DUPLICATE_USERNAME` | enroll of an existing username | 200 |
//! | `UNKNOWN_USERNAME` | authenticate of a username never enrolled | 200 |
//! | `UNSUPPORTED_FORMAT` | not an image or a video this server decodes | 200 |
//! | `CORRUPT_IMAGE` | truncated or corrupt image | 200 |
//! | `IMAGE_TOO_LARGE` | more pixels than the limit (checked before decoding) | 200 |
//! | `NO_FRAMES` | a video with no decodable frame | 200 |
//! | `VIDEO_TOO_SHORT` | a video under 2 s | 200 |
//! | `NO_FACE` | no face (enroll: no portrait on the card) | 200 |
//! | `DOCUMENT_EXPIRED` | enroll: the card's machine-readable zone says it has expired (beyond the configured grace days) | 200 |
//! | `MRZ_CHECK_FAILED` | enroll: the card's machine-readable zone was read but its check digits disagree (rescan, or a forged number) | 200 |
//! | `DUPLICATE_DOCUMENT` | enroll: the card's document (issuing state and number, from its zone) already enrolled another username | 200 |
//! | `MULTIPLE_FACES` | two sizeable faces in a frame | 200 |
//! | `FACE_TOO_SMALL`, `BAD_POSE`, `EYES_CLOSED`, `TOO_DARK`, `TOO_BRIGHT`, `TOO_BLURRY`, `LOW_CONTRAST`, `UNEVEN_LIGHTING` | the best frame fails the quality gate | 200 |
//! | `LIVENESS_FAILED` | accumulated liveness below the preset | 200 |
//! | `NO_MATCH` | the face is not `NAME`'s | 200 |
//! | `FILE_TOO_LARGE` | over the body limit (image 5 MB, video configurable) | 413 |
//! | `UNAUTHORIZED` | remote caller without a valid key | 401 |
//! | `SERVER_BUSY` | inference queue full (Retry-After) | 503 |
//! | `INTERNAL_ERROR` | storage failure (logged under the request id) | 500 |

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use faceid_core::ErrorCode;
use faceid_gallery::{AuditContext, NewSubject};
use faceid_service::{Class, Failure, Selfie};
use serde_json::json;

use crate::access::{CallerParts, Part, read_parts};
use crate::keys::Role;
use crate::selfie::{SelfieError, frames};
use crate::{AppState, RequestId};

/// Which of the two decisions a refusal belongs to (they spell their fields differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Enroll,
    Authenticate,
}

/// A refusal: the reason and the HTTP status it travels with.
#[derive(Debug)]
struct Refusal {
    reason: String,
    status: StatusCode,
}

impl Refusal {
    fn new(reason: impl Into<String>) -> Refusal {
        Refusal {
            reason: reason.into(),
            status: StatusCode::OK,
        }
    }

    fn with_status(mut self, status: StatusCode) -> Refusal {
        self.status = status;
        self
    }

    fn respond(self, flow: Flow) -> Response {
        let body = match flow {
            Flow::Enroll => {
                json!({"trained": "failed", "EnrollStatus": "REJECTED", "DecisionReason": self.reason})
            }
            Flow::Authenticate => {
                json!({"score": null, "Decision": "REJECTED", "DecisionReason": self.reason})
            }
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }

    fn busy() -> Refusal {
        Refusal::new("SERVER_BUSY").with_status(StatusCode::SERVICE_UNAVAILABLE)
    }

    /// 500; the cause is logged, never returned.
    fn internal(cause: impl std::fmt::Display) -> Refusal {
        tracing::error!(error = %cause, "internal error");
        Refusal::new("INTERNAL_ERROR").with_status(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The reason for a use case that ended without a verdict: one total mapping of its
    /// class, renamed where this surface has its own word.
    fn failure(failure: &Failure) -> Refusal {
        let code = match failure {
            Failure::Engine(e) => Some(e.code()),
            _ => None,
        };
        match (failure.class(), code) {
            (_, Some(ErrorCode::EmptyInput)) => Refusal::new("EMPTY_FILE"),
            (_, Some(ErrorCode::NoPortrait)) => Refusal::new("NO_FACE"),
            (Class::TooLarge, _) => {
                Refusal::new("FILE_TOO_LARGE").with_status(StatusCode::PAYLOAD_TOO_LARGE)
            }
            (Class::Input, _) if matches!(failure, Failure::InvalidSubjectId(_)) => {
                Refusal::new("INVALID_USERNAME")
            }
            (Class::Input | Class::Capture, _) => Refusal::new(failure.code()),
            (Class::Conflict, _) if matches!(failure, Failure::DuplicateDocument) => {
                Refusal::new("DUPLICATE_DOCUMENT")
            }
            (Class::Conflict, _) => Refusal::new("DUPLICATE_USERNAME"),
            (Class::NotFound, _) => Refusal::new("UNKNOWN_USERNAME"),
            (Class::Installation | Class::Internal, _) => Refusal::internal(failure),
        }
    }

    fn selfie(error: SelfieError) -> Refusal {
        match error {
            SelfieError::Engine(e) => Refusal::failure(&Failure::Engine(e)),
            SelfieError::Video(faceid_video::VideoError::Empty) => Refusal::new("EMPTY_FILE"),
            SelfieError::Video(faceid_video::VideoError::NoFrames) => Refusal::new("NO_FRAMES"),
            SelfieError::Video(faceid_video::VideoError::TooLarge { .. }) => {
                Refusal::new("IMAGE_TOO_LARGE")
            }
            SelfieError::Video(faceid_video::VideoError::Unsupported(_)) => {
                Refusal::new("UNSUPPORTED_FORMAT")
            }
            SelfieError::Video(e @ faceid_video::VideoError::Io(_)) => Refusal::internal(e),
        }
    }
}

/// The `username` query parameter, percent-decoded and checked.
fn username(raw_query: Option<&str>) -> Result<String, Refusal> {
    let value = raw_query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(name, _)| *name == "username")
        .map(|(_, value)| value)
        .ok_or_else(|| Refusal::new("MISSING_USERNAME"))?;
    let bytes: Vec<u8> =
        percent_encoding::percent_decode(value.replace('+', " ").as_bytes()).collect();
    let name = String::from_utf8(bytes).map_err(|_| Refusal::new("INVALID_USERNAME"))?;
    let name = name.trim().to_string();
    if name.is_empty() {
        return Err(Refusal::new("EMPTY_USERNAME"));
    }
    faceid_gallery::gallery::validate_subject_id(&name)
        .map_err(|_| Refusal::new("INVALID_USERNAME"))?;
    Ok(name)
}

/// Reads the body, then checks the caller, the username and the file part, in the order a
/// client can act on. The caller is checked after the body (see [`crate::access`]).
async fn prologue(
    state: &AppState,
    caller: &CallerParts,
    raw_query: Option<&str>,
    multipart: Result<Multipart, MultipartRejection>,
    file_field: &str,
) -> Result<(String, Vec<u8>, String), Refusal> {
    let parts: Result<Vec<Part>, Refusal> = match multipart {
        Ok(multipart) => read_parts(multipart).await.map_err(|e| {
            if e.contains("length limit") {
                Refusal::new("FILE_TOO_LARGE").with_status(StatusCode::PAYLOAD_TOO_LARGE)
            } else {
                Refusal::new("MALFORMED_REQUEST")
            }
        }),
        Err(_) => Err(Refusal::new("MALFORMED_REQUEST")),
    };
    let actor = caller
        .actor(state, Role::Client)
        .ok_or_else(|| Refusal::new("UNAUTHORIZED").with_status(StatusCode::UNAUTHORIZED))?;
    let name = username(raw_query)?;
    let bytes = parts?
        .into_iter()
        .find(|(field, _, _)| field == file_field)
        .map(|(_, _, bytes)| bytes)
        .ok_or_else(|| Refusal::new("MISSING_FILE"))?;
    if bytes.is_empty() {
        return Err(Refusal::new("EMPTY_FILE"));
    }
    Ok((name, bytes, actor))
}

/// `POST /api/enroll?username=NAME` with the card image in `cin_file`.
pub async fn enroll(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: CallerParts,
    RawQuery(query): RawQuery,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    match enroll_card(&state, &request_id, &caller, query.as_deref(), multipart).await {
        Ok(()) => Json(json!({
            "trained": "success",
            "EnrollStatus": "APPROVED",
            "DecisionReason": "ENROLLED_AS_USER",
        }))
        .into_response(),
        Err(refusal) => {
            state.metrics.decision("enroll", "rejected");
            refusal.respond(Flow::Enroll)
        }
    }
}

async fn enroll_card(
    state: &AppState,
    request_id: &RequestId,
    caller: &CallerParts,
    query: Option<&str>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(), Refusal> {
    let (name, bytes, actor) = prologue(state, caller, query, multipart, "cin_file").await?;
    let ctx = AuditContext {
        actor,
        request_id: request_id.0.clone(),
    };
    state
        .run(move |service| {
            let card = service.engine().decode(&bytes).map_err(Failure::from)?;
            let new = NewSubject {
                id: name,
                display_name: None,
                source: Some("id-card".into()),
                ..Default::default()
            };
            service.enroll_card(new, &card, &ctx)
        })
        .await
        .map_err(|_| Refusal::busy())?
        .map_err(|f| Refusal::failure(&f))?;
    state.metrics.decision("enroll", "ok");
    Ok(())
}

/// `POST /api/authentificate?username=NAME` with a video or an image in `auth_video`.
pub async fn authenticate(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: CallerParts,
    RawQuery(query): RawQuery,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let outcome =
        authenticate_selfie(&state, &request_id, &caller, query.as_deref(), multipart).await;
    state.metrics.decision(
        "authenticate",
        if outcome.is_ok() {
            "approved"
        } else {
            "rejected"
        },
    );
    match outcome {
        Ok(score) => Json(json!({
            "score": score,
            "Decision": "APPROVED",
            "DecisionReason": "AUTHENTIFICATION_SUCCESS",
        }))
        .into_response(),
        Err(refusal) => refusal.respond(Flow::Authenticate),
    }
}

/// The 1:1 use case on the upload; the calibrated score when approved.
async fn authenticate_selfie(
    state: &AppState,
    request_id: &RequestId,
    caller: &CallerParts,
    query: Option<&str>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<f64, Refusal> {
    let (name, bytes, actor) = prologue(state, caller, query, multipart, "auth_video").await?;
    let ctx = AuditContext {
        actor,
        request_id: request_id.0.clone(),
    };
    let plan = state.video_plan;
    let (verdict, _) = state
        .run(move |service| {
            // Unknown usernames are told before the upload is decoded.
            if service
                .gallery()
                .templates(&name)
                .map_err(|e| Refusal::failure(&e.into()))?
                .is_empty()
            {
                return Err(Refusal::new("UNKNOWN_USERNAME"));
            }
            let selfie = frames(service.engine(), &bytes, &plan).map_err(Refusal::selfie)?;
            let selfie = Selfie::Frames {
                images: selfie.images,
                duration_secs: selfie.duration_secs,
            };
            service
                .verify(&name, selfie, service.gate(), &ctx)
                .map_err(|f| Refusal::failure(&f))
        })
        .await
        .map_err(|_| Refusal::busy())??;
    match verdict.decision {
        Some(d) if verdict.accepted() => {
            Ok((f64::from(d.comparison.score) * 10_000.0).round() / 10_000.0)
        }
        _ => Err(Refusal::new(verdict.reason.code())),
    }
}

/// `POST /api/reset`: erases every subject (admin key when not on loopback).
pub async fn reset(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: CallerParts,
) -> Response {
    let Some(actor) = caller.actor(&state, Role::Admin) else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": 401, "msg": "ERROR_DETECTED : missing or invalid API key"})),
        )
            .into_response();
    };
    let ctx = AuditContext {
        actor,
        request_id: request_id.0.clone(),
    };
    match state.run(move |service| service.reset(&ctx)).await {
        Ok(Ok(())) => Json(json!({"code": 200, "msg": "DONE"})).into_response(),
        // The cause is logged under the request id; the client learns only that it failed.
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reset failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"code": 500, "msg": "ERROR_DETECTED : internal error"})),
            )
                .into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"code": 503, "msg": "ERROR_DETECTED : server busy"})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(username(Some("username=brahim")).unwrap(), "brahim");
        assert_eq!(
            username(Some("a=1&username=J%C3%A9r%C3%B4me+B")).unwrap(),
            "Jérôme B"
        );
        assert_eq!(username(None).unwrap_err().reason, "MISSING_USERNAME");
        assert_eq!(
            username(Some("user=x")).unwrap_err().reason,
            "MISSING_USERNAME"
        );
        assert_eq!(
            username(Some("username=")).unwrap_err().reason,
            "EMPTY_USERNAME"
        );
        assert_eq!(
            username(Some("username")).unwrap_err().reason,
            "EMPTY_USERNAME"
        );
        assert_eq!(
            username(Some("username=%FF%FE")).unwrap_err().reason,
            "INVALID_USERNAME"
        );
        assert_eq!(
            username(Some("username=a%00b")).unwrap_err().reason,
            "INVALID_USERNAME"
        );
    }
}
