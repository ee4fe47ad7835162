//! Surface 2, the face collection (1:N): `POST /users/{id}`, `POST /users/search`,
//! `DELETE /users/{id}`, authenticated with `x-api-key`. Shapes and error strings are the
//! existing clients' (DESIGN.md, appendix A).
//!
//! `similarity` is the engine's calibrated score in percent: a `threshold` of 80 accepts
//! impostors at about 1 in 100,000 per comparison (see the calibration table in the README).

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use faceid_core::{Comparison, ErrorCode};
use faceid_gallery::gallery::validate_subject_id;
use faceid_gallery::{AuditContext, NewSubject};
use serde::{Deserialize, Serialize};

use crate::access::keyed;
use crate::keys::Role;
use crate::problem::{Problem, messages};
use crate::selfie::base64_media;
use crate::{AppState, RequestId};

/// Body of enroll and search.
#[derive(Debug, Deserialize)]
pub struct FaceBody {
    /// Base64 JPEG or PNG (standard alphabet, optional data-URL prefix).
    face: Option<String>,
    /// Search only: minimum similarity in percent (default 80).
    threshold: Option<f64>,
}

/// One search result.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    user_id: String,
    similarity: f64,
}

/// Search answer.
#[derive(Debug, Serialize)]
pub struct Matches {
    matches: Vec<Match>,
}

const DEFAULT_THRESHOLD_PERCENT: f64 = 80.0;
const MAX_MATCHES: usize = 10;

fn image_bytes(
    body: Result<Json<FaceBody>, JsonRejection>,
    max_bytes: usize,
) -> Result<(Vec<u8>, Option<f64>), Problem> {
    let Json(body) = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::too_large()
        } else {
            Problem::bad_request([format!("request body is not valid JSON: {}", e.body_text())])
        }
    })?;
    let face = body
        .face
        .filter(|f| !f.is_empty())
        .ok_or_else(|| Problem::bad_request(["face is required"]))?;
    let bytes = base64_media(&face, max_bytes).map_err(|p| {
        if p.status == 413 {
            p
        } else {
            Problem::bad_request(["face is not valid base64"])
        }
    })?;
    Ok((bytes, body.threshold))
}

/// The `{USER_ID}` path segment: 400 when it is not UTF-8 once percent-decoded.
fn path_id(user_id: Result<Path<String>, PathRejection>) -> Result<String, Problem> {
    user_id
        .map(|Path(id)| id)
        .map_err(|_| Problem::bad_request(["invalid userId"]))
}

/// Maps an engine refusal to the surface's 400/413 answers.
fn engine_problem(error: &faceid_core::Error) -> Problem {
    match error.code() {
        ErrorCode::NoFace => Problem::bad_request([messages::NO_FACE]),
        ErrorCode::MultipleFaces => {
            Problem::bad_request(["more than one face detected in the provided image"])
        }
        ErrorCode::InputTooLarge | ErrorCode::ImageTooLarge => Problem::too_large(),
        ErrorCode::UnsupportedFormat | ErrorCode::CorruptImage | ErrorCode::EmptyInput => {
            Problem::bad_request(["face is not a readable JPEG or PNG image"])
        }
        code if code.is_capture_problem() => {
            Problem::bad_request([format!("face quality too low: {code}")])
        }
        _ => Problem::internal(),
    }
}

/// `POST /users/{USER_ID}`: enroll one face under a new id.
pub async fn enroll(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    user_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<FaceBody>, JsonRejection>,
) -> Result<Response, Problem> {
    let actor = keyed(&state, &headers, Role::Client)?;
    let user_id = path_id(user_id)?;
    validate_subject_id(&user_id).map_err(|_| Problem::bad_request(["invalid userId"]))?;
    let (bytes, _) = image_bytes(body, state.engine.config().max_image_bytes)?;
    if state
        .gallery
        .subject(&user_id)
        .map_err(|_| Problem::internal())?
        .is_some()
    {
        return Err(Problem::bad_request([messages::DUPLICATE_ID]));
    }
    let engine = state.engine.clone();
    let analysis = state
        .pool
        .run(move || -> faceid_core::Result<faceid_core::Analysis> {
            let image = engine.decode(&bytes)?;
            let analysis = engine.analyze(&image)?;
            match analysis.quality.first_failure() {
                Some(failure) => Err(failure),
                None => Ok(analysis),
            }
        })
        .await
        .map_err(|_| Problem::busy())?
        .map_err(|e| engine_problem(&e))?;
    let ctx = AuditContext {
        actor,
        request_id: request_id.0.clone(),
    };
    let new = NewSubject {
        id: user_id,
        display_name: None,
        source: Some("server".into()),
    };
    match state.gallery.enroll(&new, &[analysis.template], None, &ctx) {
        Ok(_) => {
            state.metrics.decision("enroll", "ok");
            Ok(StatusCode::OK.into_response())
        }
        Err(faceid_gallery::Error::DuplicateSubject(_)) => {
            Err(Problem::bad_request([messages::DUPLICATE_ID]))
        }
        Err(e) => {
            tracing::error!(request_id = %request_id.0, error = %e, "enrollment failed");
            Err(Problem::internal())
        }
    }
}

/// `POST /users/search`: the enrolled people whose similarity reaches the threshold.
pub async fn search(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    body: Result<Json<FaceBody>, JsonRejection>,
) -> Result<Json<Matches>, Problem> {
    let actor = keyed(&state, &headers, Role::Client)?;
    let (bytes, threshold) = image_bytes(body, state.engine.config().max_image_bytes)?;
    let threshold = threshold.unwrap_or(DEFAULT_THRESHOLD_PERCENT);
    if !(0.0..=100.0).contains(&threshold) {
        return Err(Problem::bad_request([
            "threshold must be between 0 and 100",
        ]));
    }
    let engine = state.engine.clone();
    let (_, probe) = state
        .pool
        .run(move || {
            let image = engine.decode(&bytes)?;
            engine.largest_face_template(&image)
        })
        .await
        .map_err(|_| Problem::busy())?
        .map_err(|e| engine_problem(&e))?;
    let candidates = state
        .gallery
        .search(&probe, MAX_MATCHES)
        .map_err(|_| Problem::internal())?;
    let calibration = state.engine.calibration();
    let matches: Vec<Match> = candidates
        .into_iter()
        .map(|c| (c.subject, Comparison::new(c.cosine, calibration)))
        .filter(|(_, cmp)| f64::from(cmp.score) * 100.0 >= threshold)
        .map(|(subject, cmp)| Match {
            user_id: subject,
            similarity: (f64::from(cmp.score) * 100.0 * 100_000.0).round() / 100_000.0,
        })
        .collect();
    let ctx = AuditContext {
        actor,
        request_id: request_id.0,
    };
    let outcome = if matches.is_empty() {
        "no_match"
    } else {
        "match"
    };
    state.metrics.decision("identify", outcome);
    let _ = state.gallery.record(
        "identify",
        matches.first().map(|m| m.user_id.as_str()),
        outcome,
        &ctx,
    );
    if matches.is_empty() {
        return Err(Problem::not_found());
    }
    Ok(Json(Matches { matches }))
}

/// `DELETE /users/{USER_ID}`: erasure.
pub async fn delete(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    user_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let actor = keyed(&state, &headers, Role::Client)?;
    let user_id = path_id(user_id)?;
    let ctx = AuditContext {
        actor,
        request_id: request_id.0,
    };
    match state.gallery.delete(&user_id, &ctx) {
        Ok(true) => Ok(StatusCode::OK.into_response()),
        Ok(false) => Err(Problem::not_found()),
        Err(_) => Err(Problem::internal()),
    }
}
