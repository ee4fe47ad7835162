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
use faceid_core::{ErrorCode, Gate, Reason};
use faceid_gallery::gallery::validate_subject_id;
use faceid_gallery::{AuditContext, NewSubject};
use faceid_service::{Class, Enrollment, Failure, Selfie};
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

/// The surface's answer for a use case that ended without a verdict: one total mapping of
/// the failure class, with the messages its clients match on.
fn failure_problem(failure: &Failure) -> Problem {
    match (failure.class(), failure) {
        (_, Failure::Engine(e)) if e.code() == ErrorCode::NoFace => {
            Problem::bad_request([messages::NO_FACE])
        }
        (_, Failure::Engine(e)) if e.code() == ErrorCode::MultipleFaces => {
            Problem::bad_request(["more than one face detected in the provided image"])
        }
        (_, Failure::Engine(e)) if e.code() == ErrorCode::ImageTooLarge => Problem::too_large(),
        (Class::Input, Failure::InvalidSubjectId(_)) => Problem::bad_request(["invalid userId"]),
        (Class::Input, _) => Problem::bad_request(["face is not a readable JPEG or PNG image"]),
        (Class::TooLarge, _) => Problem::too_large(),
        (Class::Capture, _) => {
            Problem::bad_request([format!("face quality too low: {}", failure.code())])
        }
        (Class::Conflict, _) => Problem::bad_request([messages::DUPLICATE_ID]),
        (Class::NotFound, _) => Problem::not_found(),
        (Class::Installation | Class::Internal, _) => Problem::internal(failure),
    }
}

/// The surface's answer for a verdict that refused before the match.
fn refused_problem(reason: Reason) -> Problem {
    match reason {
        Reason::LivenessFailed => Problem::bad_request([messages::NOT_LIVE]),
        reason => Problem::bad_request([format!("face quality too low: {}", reason.code())]),
    }
}

fn audit(actor: String, request_id: &RequestId) -> AuditContext {
    AuditContext {
        actor,
        request_id: request_id.0.clone(),
    }
}

/// `POST /users/{USER_ID}`: enroll one face under a new id (an uploaded photo: the
/// enrollment gate without liveness).
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
    let ctx = audit(actor, &request_id);
    let enrolled = state
        .run(move |service| {
            let image = service.engine().decode(&bytes).map_err(Failure::from)?;
            service.enroll(
                Enrollment {
                    subject: NewSubject {
                        id: user_id,
                        display_name: None,
                        source: Some("server".into()),
                        ..Default::default()
                    },
                    selfie: Selfie::photo(image),
                    gate: Gate {
                        liveness: false,
                        ..service.gate()
                    },
                    card: None,
                    retained_image: None,
                },
                &ctx,
            )
        })
        .await?
        .map_err(|f| failure_problem(&f))?;
    if enrolled.subject.is_none() {
        state.metrics.decision("enroll", "rejected");
        return Err(refused_problem(enrolled.verdict.reason));
    }
    state.metrics.decision("enroll", "ok");
    Ok(StatusCode::OK.into_response())
}

/// `POST /users/search`: the 1:N verdict (liveness, quality, then the gallery-size
/// threshold), listed as the people whose similarity reaches both that threshold and the
/// client's: the client's threshold can only make the search stricter.
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
    let ctx = audit(actor, &request_id);
    let (verdict, _) = state
        .run(move |service| {
            let image = service.engine().decode(&bytes).map_err(Failure::from)?;
            service.identify(Selfie::photo(image), service.gate(), &ctx)
        })
        .await?
        .map_err(|f| failure_problem(&f))?;
    match verdict.reason {
        Reason::Match | Reason::NoMatch => {}
        refused => {
            state.metrics.decision("identify", "rejected");
            return Err(refused_problem(refused));
        }
    }
    let floor = verdict.threshold().map_or(1.0, f64::from) * 100.0;
    let matches: Vec<Match> = verdict
        .candidates
        .into_iter()
        .filter(|_| verdict.reason.accepted())
        .map(|(subject, cmp)| (subject, f64::from(cmp.score) * 100.0))
        .filter(|(_, similarity)| *similarity >= threshold && *similarity >= floor)
        .take(MAX_MATCHES)
        .map(|(subject, similarity)| Match {
            user_id: subject,
            similarity: (similarity * 100_000.0).round() / 100_000.0,
        })
        .collect();
    state.metrics.decision(
        "identify",
        if matches.is_empty() {
            "no_match"
        } else {
            "match"
        },
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
    let ctx = audit(actor, &request_id);
    match state
        .run(move |service| service.erase(&user_id, &ctx))
        .await?
    {
        Ok(true) => Ok(StatusCode::OK.into_response()),
        Ok(false) => Err(Problem::not_found()),
        Err(f) => Err(failure_problem(&f)),
    }
}
