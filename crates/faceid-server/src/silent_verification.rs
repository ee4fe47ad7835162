//! Surface 4, photo-vs-video verification:
//! `POST /identity/silent_image_verification/stateless`.
//!
//! Form fields (multipart or `application/x-www-form-urlencoded`): `encrypted_video` (the
//! selfie video) and `encrypted_image` (the reference photo), each sealed with the server's
//! transport key ([`crate::transport`]); flags `auto_rotate` (look for the face in the photo
//! in all four orientations), `check_quality` (the chosen video frame must pass the quality
//! gate), `return_image`, `return_face_image` (the chosen frame and its face as base64 JPEG,
//! only when `passed`), `return_status` (adds `status`: frames, frames with a face, clip
//! length). Flags accept `true`/`false`/`1`/`0`, default false. Callers on loopback need no
//! key (unless `--require-keys`); others send `x-api-key`.
//!
//! Normal answer, HTTP 200, `code` 1000: `passed` (live, and the same person at the engine's
//! verify threshold), `liveness_score` (0..1, live when >= 0.5 at the configured preset),
//! `liveness_status` (`ok`, `hack`, or `short_time` for a clip under 2 s, which never passes),
//! `verification_score` (the calibrated score of section 3: 0.6 = FAR 1e-3),
//! `image_timestamp` (milliseconds into the clip of the chosen frame), `request_id`.
//!
//! Abnormal answers, `{"code","message","request_id"}`:
//!
//! | code | message | HTTP | when |
//! |---|---|---|---|
//! | 1200 | invalid argument | 400 | a field missing or empty, bad base64, does not decrypt, bad flag, wrong content type |
//! | 1200 | invalid argument | 401 | remote caller without a valid key |
//! | 2003 | invalid image size | 400 | more pixels than the limit |
//! | 2004 | invalid content length | 413 | the photo over 5 MB or the body over the video limit |
//! | 2005 | invalid image type or corrupted | 400 | not a decodable image / video, or a video with no frames |
//! | 4000 | detection failed | 400 | no face, or several faces, in the photo or the video |
//! | 4004 | face occlusion | 400 | `check_quality` and the chosen frame fails the gate |
//! | 4007 | liveness silent check failed | 400 | no frame of the video could be checked |
//! | 5000 | server busy | 503 | inference queue full (Retry-After) |
//! | 5001 | internal error | 500 | no transport key configured, or a server fault |

use std::collections::HashMap;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form, Json};
use faceid_core::{ErrorCode, Gate, Image, Reason, Template};
use faceid_gallery::AuditContext;
use faceid_service::{Class, Failure as ServiceFailure, Selfie, Service};
use serde_json::{Value, json};

use crate::access::{CallerParts, read_parts};
use crate::keys::Role;
use crate::selfie::{SelfieError, frames, jpeg_base64};
use crate::{AppState, RequestId};

/// An abnormal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    InvalidArgument,
    Unauthorized,
    ImageSize,
    ContentLength,
    ImageType,
    Detection,
    Occlusion,
    Liveness,
    Busy,
    Internal,
}

impl Failure {
    fn parts(self) -> (u16, &'static str, StatusCode) {
        match self {
            Failure::InvalidArgument => (1200, "invalid argument", StatusCode::BAD_REQUEST),
            Failure::Unauthorized => (1200, "invalid argument", StatusCode::UNAUTHORIZED),
            Failure::ImageSize => (2003, "invalid image size", StatusCode::BAD_REQUEST),
            Failure::ContentLength => (
                2004,
                "invalid content length",
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            Failure::ImageType => (
                2005,
                "invalid image type or corrupted",
                StatusCode::BAD_REQUEST,
            ),
            Failure::Detection => (4000, "detection failed", StatusCode::BAD_REQUEST),
            Failure::Occlusion => (4004, "face occlusion", StatusCode::BAD_REQUEST),
            Failure::Liveness => (
                4007,
                "liveness silent check failed",
                StatusCode::BAD_REQUEST,
            ),
            Failure::Busy => (5000, "server busy", StatusCode::SERVICE_UNAVAILABLE),
            Failure::Internal => (5001, "internal error", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    fn respond(self, request_id: &RequestId) -> Response {
        let (code, message, status) = self.parts();
        let mut response = (
            status,
            Json(json!({"code": code, "message": message, "request_id": request_id.0})),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }

    /// The answer for a refusal of the photo: one total mapping of the failure class.
    fn photo(failure: &ServiceFailure) -> Failure {
        let code = match failure {
            ServiceFailure::Engine(e) => Some(e.code()),
            _ => None,
        };
        match (failure.class(), code) {
            (_, Some(ErrorCode::ImageTooLarge)) => Failure::ImageSize,
            (Class::TooLarge, _) => Failure::ContentLength,
            (Class::Input, _) => Failure::ImageType,
            (Class::Capture, _) => Failure::Detection,
            (Class::NotFound | Class::Conflict | Class::Installation | Class::Internal, _) => {
                tracing::error!(error = %failure, "reference photo failed");
                Failure::Internal
            }
        }
    }

    /// The answer for a refusal of the video.
    fn video(error: SelfieError) -> Failure {
        match error {
            SelfieError::Engine(e) => Failure::photo(&ServiceFailure::Engine(e)),
            SelfieError::Video(faceid_video::VideoError::TooLarge { .. }) => Failure::ImageSize,
            SelfieError::Video(faceid_video::VideoError::Io(_)) => Failure::Internal,
            SelfieError::Video(_) => Failure::ImageType,
        }
    }
}

/// The form: field name -> bytes.
type Fields = HashMap<String, Vec<u8>>;

async fn read_form(request: Request, state: &AppState) -> Result<Fields, Failure> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let too_large = |text: &str| text.contains("length limit") || text.contains("too large");
    if content_type.starts_with("multipart/form-data") {
        let multipart = Multipart::from_request(request, state)
            .await
            .map_err(|_| Failure::InvalidArgument)?;
        let parts = read_parts(multipart).await.map_err(|e| {
            if too_large(&e) {
                Failure::ContentLength
            } else {
                Failure::InvalidArgument
            }
        })?;
        Ok(parts
            .into_iter()
            .map(|(name, _, bytes)| (name, bytes))
            .collect())
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let Form(form) = Form::<HashMap<String, String>>::from_request(request, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Failure::ContentLength
                } else {
                    Failure::InvalidArgument
                }
            })?;
        Ok(form.into_iter().map(|(k, v)| (k, v.into_bytes())).collect())
    } else {
        Err(Failure::InvalidArgument)
    }
}

/// A boolean flag: absent = false.
fn flag(fields: &Fields, name: &str) -> Result<bool, Failure> {
    match fields
        .get(name)
        .map(|v| String::from_utf8_lossy(v).trim().to_ascii_lowercase())
    {
        None => Ok(false),
        Some(v) if v.is_empty() || v == "false" || v == "0" => Ok(false),
        Some(v) if v == "true" || v == "1" => Ok(true),
        Some(_) => Err(Failure::InvalidArgument),
    }
}

/// The options of one request.
#[derive(Debug, Clone, Copy)]
struct Options {
    auto_rotate: bool,
    check_quality: bool,
    return_image: bool,
    return_face_image: bool,
    return_status: bool,
}

/// What the engine concluded.
#[derive(Debug)]
struct Verdict {
    passed: bool,
    liveness_score: f32,
    liveness_status: &'static str,
    /// `None` when refused before the comparison (liveness): a replay learns no score.
    verification_score: Option<f32>,
    image_timestamp_ms: u64,
    frames: usize,
    frames_with_face: usize,
    duration_secs: Option<f64>,
    frame: Option<Image>,
    face_box: Option<faceid_core::geometry::BoundingBox>,
    options: Options,
}

/// `POST /identity/silent_image_verification/stateless`.
pub async fn verify(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: CallerParts,
    request: Request,
) -> Response {
    let result = run(&state, &request_id, &caller, request).await;
    state.metrics.decision(
        "photo_video",
        if result.as_ref().is_ok_and(|v| v.passed) {
            "passed"
        } else {
            "failed"
        },
    );
    match result {
        Ok(verdict) => Json(body(&verdict, &request_id)).into_response(),
        Err(failure) => failure.respond(&request_id),
    }
}

async fn run(
    state: &AppState,
    request_id: &RequestId,
    caller: &CallerParts,
    request: Request,
) -> Result<Verdict, Failure> {
    let fields = read_form(request, state).await;
    if !caller.allowed(state) {
        return Err(Failure::Unauthorized);
    }
    let fields = fields?;
    let options = Options {
        auto_rotate: flag(&fields, "auto_rotate")?,
        check_quality: flag(&fields, "check_quality")?,
        return_image: flag(&fields, "return_image")?,
        return_face_image: flag(&fields, "return_face_image")?,
        return_status: flag(&fields, "return_status")?,
    };
    let key = state.transport_key.clone().ok_or_else(|| {
        tracing::error!("surface 4 called but no transport key is configured");
        Failure::Internal
    })?;
    let open = |name: &str| -> Result<Vec<u8>, Failure> {
        let sealed = fields
            .get(name)
            .filter(|v| !v.is_empty())
            .ok_or(Failure::InvalidArgument)?;
        let text = std::str::from_utf8(sealed).map_err(|_| Failure::InvalidArgument)?;
        key.open(name, text).map_err(|_| Failure::InvalidArgument)
    };
    let video = open("encrypted_video")?;
    let photo = open("encrypted_image")?;
    if photo.len() > state.engine.config().max_image_bytes {
        return Err(Failure::ContentLength);
    }
    let plan = state.video_plan;
    // Each verification is an attempt of the caller's, audited once by the use case.
    let ctx = AuditContext {
        actor: caller
            .actor(state, Role::Client)
            .unwrap_or_else(|| "surface-4".into()),
        request_id: request_id.0.clone(),
    };
    state
        .run(move |service| decide(service, &photo, &video, &plan, options, &ctx))
        .await
        .map_err(|_| Failure::Busy)?
}

/// The reference photo's template: the portrait of a document in any orientation with
/// `auto_rotate`, otherwise the photo's one face.
fn reference_template(
    service: &Service,
    photo: &[u8],
    auto_rotate: bool,
) -> Result<Template, Failure> {
    let image = service
        .engine()
        .decode(photo)
        .map_err(|e| Failure::photo(&e.into()))?;
    let template = if auto_rotate {
        service.card(&image).map(|(_, t)| t)
    } else {
        service.photo_template(&image)
    };
    template.map_err(|f| Failure::photo(&f))
}

fn decide(
    service: &Service,
    photo: &[u8],
    video: &[u8],
    plan: &faceid_video::SamplingPlan,
    options: Options,
    ctx: &AuditContext,
) -> Result<Verdict, Failure> {
    let reference = reference_template(service, photo, options.auto_rotate)?;
    let selfie = frames(service.engine(), video, plan).map_err(Failure::video)?;
    // Too short never passes, but the clip is still judged so the caller learns why.
    let short = service
        .engine()
        .check_duration(selfie.duration_secs)
        .is_err();
    let wants_pixels = options.return_image || options.return_face_image;
    let kept = wants_pixels.then(|| selfie.images.clone());
    let gate = Gate {
        quality: options.check_quality,
        ..service.gate()
    };
    let (verdict, sequence) = service
        .verify_against(
            None,
            &[reference],
            Selfie::Frames {
                images: selfie.images,
                duration_secs: None,
            },
            gate,
            ctx,
        )
        .map_err(|f| sequence_failure(&f))?;
    let liveness_status = match (short, verdict.reason) {
        (true, _) => "short_time",
        (false, Reason::LivenessFailed) => "hack",
        (false, _) => "ok",
    };
    if !short && matches!(verdict.reason, Reason::Quality(_)) {
        return Err(Failure::Occlusion);
    }
    let passed = !short && verdict.accepted();
    let at_secs = selfie
        .times_secs
        .get(sequence.best_frame)
        .copied()
        .unwrap_or(0.0);
    let preset = service.gate().preset;
    Ok(Verdict {
        passed,
        liveness_score: verdict.liveness.probability_at(preset),
        liveness_status,
        verification_score: verdict.decision.map(|d| d.comparison.score),
        image_timestamp_ms: (at_secs * 1000.0).round() as u64,
        frames: sequence.frames,
        frames_with_face: sequence.frames_with_face,
        duration_secs: selfie.duration_secs,
        frame: passed
            .then(|| kept.and_then(|images| images.into_iter().nth(sequence.best_frame)))
            .flatten(),
        face_box: (passed && options.return_face_image).then_some(sequence.best.face.bbox),
        options,
    })
}

/// The answer for a video that gave no verdict.
fn sequence_failure(failure: &ServiceFailure) -> Failure {
    match failure {
        ServiceFailure::Engine(e) if e.code() == ErrorCode::MultipleFaces => Failure::Detection,
        f if f.class() == Class::Capture => Failure::Liveness,
        f => {
            tracing::error!(error = %f, "photo-vs-video verification failed");
            Failure::Internal
        }
    }
}

fn body(verdict: &Verdict, request_id: &RequestId) -> Value {
    let options = verdict.options;
    let mut body = json!({
        "code": 1000,
        "passed": verdict.passed,
        "liveness_score": verdict.liveness_score,
        "liveness_status": verdict.liveness_status,
        "verification_score": verdict.verification_score,
        "image_timestamp": verdict.image_timestamp_ms,
        "request_id": request_id.0,
    });
    if let Some(frame) = &verdict.frame {
        if options.return_image
            && let Some(encoded) = jpeg_base64(frame, None)
        {
            body["base64_image"] = json!(encoded);
        }
        if let Some(bbox) = verdict.face_box {
            let crop = bbox.grown_within(1.3, frame.width() as f32, frame.height() as f32);
            if let Some(encoded) = jpeg_base64(frame, Some(&crop)) {
                body["base64_face_image"] = json!(encoded);
            }
        }
    }
    if options.return_status {
        body["status"] = json!({
            "frames": verdict.frames,
            "frames_with_face": verdict.frames_with_face,
            "duration_seconds": verdict.duration_secs,
        });
    }
    body
}
