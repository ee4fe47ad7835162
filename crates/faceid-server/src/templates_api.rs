//! Surface 5, template enrollment with a quality report: `POST /api/v1.0/add`
//! (`check_liveness`, `check_deepfake` query flags; multipart `photo`, optional
//! `templateId`), authenticated with `APP-ID` / `APP-KEY`.
//!
//! Quality fields map to the engine's measures: `blur` = 1 - sharpness, `left/right_eye_closed`
//! = 1 - open probability, `emotion` = 1 - P(neutral), `crfiqa` = the overall quality score.
//! Measures the engine does not make (`flare`, `macroblocks`, `distortion`, `occlusion`,
//! `deepfake`) are `{"score": null, "fine": null}`: no invented numbers. `race` is always
//! `null`: faceid does not infer race.
//!
//! Error `code`s: 1 invalid request (no photo, bad templateId), 2 unreadable image,
//! 3 more than one face, 4 templateId already exists, 5 can not detect face,
//! 6 missing or invalid APP-ID/APP-KEY (401), 7 refused by the enrollment gate (`face
//! quality too low: CODE`, or `liveness check failed` with `check_liveness`), 8 server busy
//! (503). The gate is the engine's: liveness first when asked, then every quality measure.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use faceid_core::{ErrorCode, Gate, Reason};
use faceid_gallery::{AuditContext, NewSubject};
use faceid_service::{Class, Enrollment, Failure, Selfie};
use serde::Deserialize;
use serde_json::json;

use crate::{AppState, RequestId};

/// Query flags.
#[derive(Debug, Deserialize)]
pub struct AddQuery {
    #[serde(default)]
    check_liveness: bool,
    #[serde(default)]
    check_deepfake: bool,
}

/// The surface's answer for a use case that ended without a verdict: one total mapping of
/// the failure class.
fn failure_answer(f: &Failure, transaction: &str) -> Response {
    let code = match f {
        Failure::Engine(e) => Some(e.code()),
        _ => None,
    };
    let (status, number, info) = match (f.class(), code) {
        (_, Some(ErrorCode::NoFace)) => (StatusCode::BAD_REQUEST, 5, "can not detect face"),
        (_, Some(ErrorCode::MultipleFaces)) => (StatusCode::BAD_REQUEST, 3, "more than one face"),
        (_, Some(ErrorCode::ImageTooLarge)) | (Class::TooLarge, _) => {
            (StatusCode::PAYLOAD_TOO_LARGE, 2, "image too large")
        }
        (Class::Input, _) if matches!(f, Failure::InvalidSubjectId(_)) => {
            (StatusCode::BAD_REQUEST, 1, "templateId is not acceptable")
        }
        (Class::Input, _) => (StatusCode::BAD_REQUEST, 2, "image can not be read"),
        (Class::Capture, _) => (StatusCode::BAD_REQUEST, 7, "face quality too low"),
        (Class::Conflict, _) => (StatusCode::BAD_REQUEST, 4, "templateId already exists"),
        (Class::NotFound | Class::Installation | Class::Internal, _) => {
            tracing::error!(error = %f, "template enrollment failed");
            (StatusCode::INTERNAL_SERVER_ERROR, 1, "internal error")
        }
    };
    failure(status, transaction, number, info)
}

fn failure(status: StatusCode, transaction: &str, code: u8, info: &str) -> Response {
    let mut response = (
        status,
        Json(json!({"transactionId": transaction, "result": {"status": "error", "code": code, "info": info}})),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
    }
    response
}

/// `POST /api/v1.0/add`.
pub async fn add(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Query(query): Query<AddQuery>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let transaction = uuid::Uuid::new_v4().to_string();
    let Ok(mut multipart) = multipart else {
        return failure(
            StatusCode::BAD_REQUEST,
            &transaction,
            1,
            "malformed multipart body",
        );
    };
    let (mut photo, mut template_id) = (None, None);
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_string();
                let Ok(bytes) = field.bytes().await else {
                    return failure(
                        StatusCode::BAD_REQUEST,
                        &transaction,
                        1,
                        "malformed multipart body",
                    );
                };
                match name.as_str() {
                    "photo" => photo = Some(bytes.to_vec()),
                    "templateId" => {
                        template_id = Some(String::from_utf8_lossy(&bytes).trim().to_string())
                    }
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(_) => {
                return failure(
                    StatusCode::BAD_REQUEST,
                    &transaction,
                    1,
                    "malformed multipart body",
                );
            }
        }
    }
    // Authorise only once the body is read: answering before it leaves unread bytes on a
    // keep-alive connection, which the client then reuses and sees cut off.
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let Some(key) = state.keys.find_app(&header("APP-ID"), &header("APP-KEY")) else {
        return failure(
            StatusCode::UNAUTHORIZED,
            &transaction,
            6,
            "missing or invalid APP-ID / APP-KEY",
        );
    };
    let Some(photo) = photo.filter(|p| !p.is_empty()) else {
        return failure(
            StatusCode::BAD_REQUEST,
            &transaction,
            1,
            "photo is required",
        );
    };
    let template_id = match template_id.filter(|t| !t.is_empty()) {
        Some(t) => match uuid::Uuid::parse_str(&t) {
            Ok(id) => id.to_string(),
            Err(_) => {
                return failure(
                    StatusCode::BAD_REQUEST,
                    &transaction,
                    1,
                    "templateId must be a UUID",
                );
            }
        },
        None => uuid::Uuid::new_v4().to_string(),
    };
    let ctx = AuditContext {
        actor: key.id.clone(),
        request_id: request_id.0.clone(),
    };
    let check_liveness = query.check_liveness;
    let new = NewSubject {
        id: template_id.clone(),
        display_name: None,
        source: Some("server".into()),
        ..Default::default()
    };
    let analysed = state
        .run(move |service| -> Result<_, Failure> {
            let image = service.engine().decode(&photo)?;
            // The enrollment gate: quality always, liveness when the caller asks for it.
            let gate = Gate {
                liveness: check_liveness,
                ..service.gate()
            };
            let enrolled = service.enroll(
                Enrollment {
                    subject: new,
                    selfie: Selfie::photo(image.clone()),
                    gate,
                    card: None,
                    retained_image: None,
                },
                &ctx,
            )?;
            // Descriptive only (age, gender, expression): never part of a decision.
            let attributes = service
                .engine()
                .attributes(&image, &enrolled.probe.best.face)?;
            Ok((enrolled, attributes))
        })
        .await;
    let (enrolled, attributes) = match analysed {
        Err(_) => {
            return failure(
                StatusCode::SERVICE_UNAVAILABLE,
                &transaction,
                8,
                "server busy, retry shortly",
            );
        }
        Ok(Err(f)) => return failure_answer(&f, &transaction),
        Ok(Ok(done)) => done,
    };
    match enrolled.verdict.reason {
        Reason::Match => state.metrics.decision("enroll", "ok"),
        refused => {
            state.metrics.decision("enroll", "rejected");
            let info = match refused {
                Reason::LivenessFailed => "liveness check failed".to_string(),
                other => format!("face quality too low: {}", other.code()),
            };
            return failure(StatusCode::BAD_REQUEST, &transaction, 7, &info);
        }
    }
    let analysis = &enrolled.probe.best;
    let q = &analysis.quality;
    let scored = |score: f32, fine: bool| json!({"score": score, "fine": fine});
    let valued = |m: faceid_core::Measure| json!({"value": m.value, "fine": m.passed});
    let unmeasured = json!({"score": null, "fine": null});
    let neutral = attributes
        .expression_probabilities
        .get(6)
        .copied()
        .unwrap_or(0.0);
    let mut face = json!({
        "quality": {
            "age": attributes.age_years.round(),
            "gender": attributes.gender(),
            "race": null,
            "pitch": q.pitch_deg.value,
            "yaw": q.yaw_deg.value,
            "roll": q.roll_deg.value,
            "uniformity": valued(q.uniformity),
            "exposure": valued(q.exposure),
            "contrast": valued(q.contrast),
            "flare": unmeasured,
            "blur": scored(1.0 - q.sharpness.value, q.sharpness.passed),
            "macroblocks": unmeasured,
            "distortion": unmeasured,
            "occlusion": unmeasured,
            "emotion": scored(1.0 - neutral, neutral >= 0.5),
            "left_eye_closed": scored(1.0 - q.left_eye_open.value, q.left_eye_open.passed),
            "right_eye_closed": scored(1.0 - q.right_eye_open.value, q.right_eye_open.passed),
            "crfiqa": scored(q.overall, q.passed()),
        },
        "box": {
            "x": analysis.face.bbox.x1.round(),
            "y": analysis.face.bbox.y1.round(),
            "w": analysis.face.bbox.width().round(),
            "h": analysis.face.bbox.height().round(),
        },
        "landmarks": analysis.face.landmarks.five().iter().map(|p| [p.x.round(), p.y.round()]).collect::<Vec<_>>(),
    });
    if query.check_liveness {
        let preset = state.engine.config().liveness_preset;
        face["liveness"] = json!({"score": analysis.liveness.probability_at(preset), "fine": analysis.liveness.is_live(preset)});
    }
    if query.check_deepfake {
        face["deepfake"] = unmeasured;
    }
    Json(json!({"transactionId": transaction, "result": {"templateId": template_id, "face": face}}))
        .into_response()
}
