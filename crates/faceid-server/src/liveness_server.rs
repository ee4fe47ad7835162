//! Surface 3, the liveness server: `GET /api_version`, `POST /check_liveness` (several
//! images, one accumulated result), `POST /check_liveness_batch` (one result per file),
//! `POST /check_image` (per pipeline and calibration), `GET /bi_report`, `GET /bi_records`.
//! Checks answer 200 even when an image is refused; the refusal is in `error`/`error_code`.
//!
//! `probability` is the engine's live probability re-centred on the calibration preset, so
//! live is always `>= 0.5`; `score` is the raw log-odds; `quality` the engine's overall
//! quality score. Keyless callers are accepted from loopback only, others need `x-api-key`.
//!
//! Error codes: `FACE_NOT_FOUND`, `TOO_MANY_FACES`, `FACE_TOO_SMALL`, `INVALID_IMAGE`,
//! `IMAGE_TOO_LARGE`, `NO_IMAGE`, `UNSUPPORTED_PIPELINE`, `INVALID_DATA`, `INVALID_DATE`,
//! `INTERNAL_ERROR`.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use faceid_core::{ErrorCode, Liveness, LivenessPreset};
use faceid_gallery::BiRecord;
use faceid_service::{Class, Failure, Selfie, Service};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

use crate::access::{CallerParts, Part, read_parts};
use crate::{AppState, RequestId};

/// The one liveness pipeline this server runs.
pub const PIPELINE: &str = "passive";
const LICENSE_EXPIRATION: &str = "9999-12-31T23:59:59Z";

/// Optional `pipeline` query parameter.
#[derive(Debug, Deserialize)]
pub struct PipelineQuery {
    pipeline: Option<String>,
}

/// Optional date range, `yyyy-MM-dd`, inclusive.
#[derive(Debug, Deserialize)]
pub struct DateRange {
    date_from: Option<String>,
    date_to: Option<String>,
}

fn error_body(message: &str, code: Option<&str>) -> Value {
    json!({"error": message, "error_code": code})
}

/// The surface's message and code for a refusal: one total mapping of the failure class.
fn refusal(failure: &Failure) -> (&'static str, &'static str) {
    let code = match failure {
        Failure::Engine(e) => Some(e.code()),
        _ => None,
    };
    match (failure.class(), code) {
        (_, Some(ErrorCode::NoFace)) => ("Failed to detect face", "FACE_NOT_FOUND"),
        (_, Some(ErrorCode::MultipleFaces)) => {
            ("More than one face in the image", "TOO_MANY_FACES")
        }
        (_, Some(ErrorCode::FaceTooSmall)) => {
            ("Interpupillary distance is too small", "FACE_TOO_SMALL")
        }
        (_, Some(ErrorCode::ImageTooLarge)) | (Class::TooLarge, _) => {
            ("The image is too large", "IMAGE_TOO_LARGE")
        }
        (Class::Input, _) => ("The image could not be read", "INVALID_IMAGE"),
        (Class::Capture, _) => ("Failed to detect face", "FACE_NOT_FOUND"),
        (Class::NotFound | Class::Conflict | Class::Installation | Class::Internal, _) => {
            tracing::error!(error = %failure, "liveness check failed");
            ("Internal error", "INTERNAL_ERROR")
        }
    }
}

/// One check: liveness and the best frame's overall quality, or the refusal.
type Checked = Result<(Liveness, f32), Failure>;

/// The liveness use case on the images of one check, as one sequence.
fn check(service: &Service, images: &[Vec<u8>]) -> Checked {
    let frames = images
        .iter()
        .map(|bytes| service.engine().decode(bytes))
        .collect::<Result<Vec<_>, _>>()?;
    let (liveness, probe) = service.liveness(Selfie::Frames {
        images: frames,
        duration_secs: None,
    })?;
    Ok((liveness, probe.best.quality.overall))
}

/// Runs each group of images as one check on the pool; `None` when the pool is saturated.
async fn check_all(state: &AppState, groups: Vec<Vec<Vec<u8>>>) -> Option<Vec<Checked>> {
    state
        .run(move |service| groups.iter().map(|images| check(service, images)).collect())
        .await
        .ok()
}

fn result_body(liveness: &Liveness, quality: f32, preset: LivenessPreset) -> Value {
    json!({"probability": liveness.probability_at(preset), "quality": quality, "score": liveness.score})
}

/// Counts one check's result and queues its BI record in `records` (written by [`store`]).
fn record(
    state: &AppState,
    request_id: &RequestId,
    domain: &str,
    outcome: Result<(f32, f32), &str>,
    records: &mut Vec<BiRecord>,
) {
    let (probability, quality, error_code) = match outcome {
        Ok((p, q)) => (Some(p), Some(q), None),
        Err(code) => (None, None, Some(code.to_string())),
    };
    records.push(BiRecord {
        at_ms: 0,
        date: String::new(),
        pipeline: PIPELINE.into(),
        domain: domain.into(),
        probability,
        quality,
        error_code,
        request_id: request_id.0.clone(),
    });
    state.metrics.decision(
        "liveness",
        if probability.is_some_and(|p| p >= 0.5) {
            "live"
        } else {
            "not_live"
        },
    );
}

/// Writes the BI records of one request off the executor before it answers (a report read
/// right after sees them). Statistics, not audit events: a failure is logged.
async fn store(state: &AppState, records: Vec<BiRecord>) {
    let gallery = state.gallery.clone();
    let written = tokio::task::spawn_blocking(move || {
        records
            .into_iter()
            .try_for_each(|r| gallery.record_bi(r).map(drop))
    })
    .await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "BI record not stored"),
        Err(e) => tracing::error!(error = %e, "BI record not stored"),
    }
}

fn busy() -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(error_body(
            "The server is busy; retry shortly",
            Some("BUSY"),
        )),
    )
        .into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    response
}

/// The 401 answer of this surface.
fn refused() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "Missing or invalid API key", "error_code": "UNAUTHORIZED"})),
    )
        .into_response()
}

fn unsupported_pipeline(query: &PipelineQuery) -> bool {
    query.pipeline.as_deref().is_some_and(|p| p != PIPELINE)
}

/// `GET /api_version`.
pub async fn api_version() -> Json<Value> {
    Json(json!({
        "product": "faceid",
        "version": env!("CARGO_PKG_VERSION"),
        "defaultPipeline": PIPELINE,
        "availablePipelines": [PIPELINE],
        "expirationDate": LICENSE_EXPIRATION,
    }))
}

/// Reads the parts of a check request, then checks the caller and the pipeline (in that
/// order: see [`crate::access`]). `Err` is the answer to send instead.
async fn read_images(
    state: &AppState,
    caller: &CallerParts,
    query: &PipelineQuery,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Vec<Part>, Box<Response>> {
    let read = match multipart {
        Ok(multipart) => read_parts(multipart).await,
        Err(e) => Err(e.body_text()),
    };
    if !caller.allowed(state) {
        return Err(Box::new(refused()));
    }
    if unsupported_pipeline(query) {
        let body = error_body(
            "The request contains an unsupported pipeline, rejecting",
            None,
        );
        return Err(Box::new(Json(body).into_response()));
    }
    read.map_err(|e| {
        let body = error_body(
            &format!("Malformed multipart body: {e}"),
            Some("INVALID_IMAGE"),
        );
        Box::new(Json(body).into_response())
    })
}

/// `POST /check_liveness`: every image part accumulated into one result.
pub async fn check_liveness(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: CallerParts,
    Query(query): Query<PipelineQuery>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let images: Vec<Vec<u8>> = match read_images(&state, &caller, &query, multipart).await {
        Ok(parts) => parts.into_iter().map(|(_, _, bytes)| bytes).collect(),
        Err(answer) => return *answer,
    };
    if images.is_empty() {
        return Json(error_body("No image in the request", Some("NO_IMAGE"))).into_response();
    }
    let Some(mut checked) = check_all(&state, vec![images]).await else {
        return busy();
    };
    let preset = state.engine.config().liveness_preset;
    match checked.pop() {
        Some(Ok((liveness, quality))) => {
            let mut records = Vec::new();
            record(
                &state,
                &request_id,
                "UNKNOWN",
                Ok((liveness.probability_at(preset), quality)),
                &mut records,
            );
            store(&state, records).await;
            Json(result_body(&liveness, quality, preset)).into_response()
        }
        Some(Err(e)) => {
            let (message, code) = refusal(&e);
            let mut records = Vec::new();
            record(&state, &request_id, "UNKNOWN", Err(code), &mut records);
            store(&state, records).await;
            Json(error_body(message, Some(code))).into_response()
        }
        None => Json(error_body("No image in the request", Some("NO_IMAGE"))).into_response(),
    }
}

/// `POST /check_liveness_batch`: one result per file, each with its `file_name`.
pub async fn check_liveness_batch(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: CallerParts,
    Query(query): Query<PipelineQuery>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let files = match read_images(&state, &caller, &query, multipart).await {
        Ok(files) => files,
        Err(answer) => return *answer,
    };
    let names: Vec<String> = files
        .iter()
        .map(|(name, file, _)| file.clone().unwrap_or_else(|| name.clone()))
        .collect();
    let Some(checked) = check_all(
        &state,
        files.into_iter().map(|(_, _, bytes)| vec![bytes]).collect(),
    )
    .await
    else {
        return busy();
    };
    let preset = state.engine.config().liveness_preset;
    let mut records = Vec::new();
    let results: Vec<Value> = names
        .into_iter()
        .zip(checked)
        .map(|(file_name, result)| match result {
            Ok((liveness, quality)) => {
                record(
                    &state,
                    &request_id,
                    "UNKNOWN",
                    Ok((liveness.probability_at(preset), quality)),
                    &mut records,
                );
                let mut body = result_body(&liveness, quality, preset);
                body["file_name"] = json!(file_name);
                body
            }
            Err(e) => {
                let (message, code) = refusal(&e);
                record(&state, &request_id, "UNKNOWN", Err(code), &mut records);
                json!({"file_name": file_name, "error": message, "error_code": code})
            }
        })
        .collect();
    store(&state, records).await;
    Json(Value::Array(results)).into_response()
}

/// The `data` part of `/check_image`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckImageData {
    domain: String,
    pipelines: Vec<PipelineRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineRequest {
    pipeline: String,
    calibration: String,
}

/// `POST /check_image`: one image, results per requested pipeline and calibration.
/// 400 when the `data` part is missing or malformed.
pub async fn check_image(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    caller: CallerParts,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let read = match multipart {
        Ok(multipart) => read_parts(multipart).await,
        Err(e) => Err(e.body_text()),
    };
    if !caller.allowed(&state) {
        return refused();
    }
    let bad = |message: String| {
        (
            StatusCode::BAD_REQUEST,
            Json(error_body(&message, Some("INVALID_DATA"))),
        )
            .into_response()
    };
    let parts = match read {
        Ok(parts) => parts,
        Err(e) => return bad(format!("Malformed multipart body: {e}")),
    };
    let Some((_, _, data)) = parts.iter().find(|(name, _, _)| name == "data") else {
        return bad("The data part is missing".into());
    };
    let data: CheckImageData = match serde_json::from_slice(data) {
        Ok(data) => data,
        Err(e) => return bad(format!("The data part is malformed: {e}")),
    };
    if !matches!(data.domain.as_str(), "GENERAL" | "DESKTOP") {
        return bad("domain must be GENERAL or DESKTOP".into());
    }
    if data.pipelines.is_empty() {
        return bad("pipelines must list at least one pipeline".into());
    }
    let Some((_, _, image)) = parts.into_iter().find(|(name, _, _)| name == "image") else {
        return Json(error_body("No image in the request", Some("NO_IMAGE"))).into_response();
    };
    let Some(mut checked) = check_all(&state, vec![vec![image]]).await else {
        return busy();
    };
    let checked = checked
        .pop()
        .unwrap_or(Err(Failure::Engine(faceid_core::Error::NoFrames)));
    let mut records = Vec::new();
    let results: Vec<Value> = data
        .pipelines
        .iter()
        .map(|request| {
            let head = json!({"pipeline": request.pipeline, "calibration": request.calibration});
            let preset = LivenessPreset::parse(&request.calibration);
            let mut body = match (&checked, preset) {
                _ if request.pipeline != PIPELINE => {
                    error_body("Unsupported pipeline", Some("UNSUPPORTED_PIPELINE"))
                }
                (_, None) => error_body("Unsupported calibration", Some("INVALID_DATA")),
                (Ok((liveness, quality)), Some(preset)) => {
                    record(
                        &state,
                        &request_id,
                        &data.domain,
                        Ok((liveness.probability_at(preset), *quality)),
                        &mut records,
                    );
                    result_body(liveness, *quality, preset)
                }
                (Err(e), Some(_)) => {
                    let (message, code) = refusal(e);
                    record(&state, &request_id, &data.domain, Err(code), &mut records);
                    error_body(message, Some(code))
                }
            };
            if let (Value::Object(map), Value::Object(head)) = (&mut body, head) {
                for (k, v) in head {
                    map.insert(k, v);
                }
            }
            body
        })
        .collect();
    store(&state, records).await;
    Json(json!({
        "serverVersion": env!("CARGO_PKG_VERSION"),
        "licenseExpirationDate": LICENSE_EXPIRATION,
        "results": results,
    }))
    .into_response()
}

fn valid_date(date: &Option<String>) -> bool {
    date.as_deref().is_none_or(|d| {
        let b = d.as_bytes();
        b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
    })
}

/// The BI records in the range; a bad date is 400.
async fn records(
    state: &AppState,
    range: &DateRange,
) -> Result<Vec<BiRecord>, (StatusCode, Json<Value>)> {
    if !valid_date(&range.date_from) || !valid_date(&range.date_to) {
        return Err((
            StatusCode::BAD_REQUEST,
            Json(error_body("Dates must be yyyy-MM-dd", Some("INVALID_DATE"))),
        ));
    }
    let (from, to) = (range.date_from.clone(), range.date_to.clone());
    let internal = |cause: String| {
        tracing::error!(error = %cause, "BI records unreadable");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(error_body("Internal error", Some("INTERNAL_ERROR"))),
        )
    };
    state
        .run(move |service| service.gallery().bi_records(from.as_deref(), to.as_deref()))
        .await
        .map_err(|_| internal("the pool is saturated".into()))?
        .map_err(|e| internal(e.to_string()))
}

fn bin(value: f32) -> String {
    let lower = ((value.clamp(0.0, 1.0) * 10.0).floor() as i32).min(9);
    format!(
        "{:.1}-{:.1}",
        f64::from(lower) / 10.0,
        f64::from(lower + 1) / 10.0
    )
}

/// `GET /bi_report`: counts per pipeline, domain and 0.1 bin of probability and quality,
/// and per error code, plus `total`.
pub async fn bi_report(
    State(state): State<AppState>,
    caller: CallerParts,
    Query(range): Query<DateRange>,
) -> Response {
    if !caller.allowed(&state) {
        return refused();
    }
    let records = match records(&state, &range).await {
        Ok(r) => r,
        Err(refused) => return refused.into_response(),
    };
    let mut report: BTreeMap<String, u64> = BTreeMap::new();
    for r in &records {
        if let Some(p) = r.probability {
            *report
                .entry(format!(
                    "{}_{}_probability_{}",
                    r.pipeline,
                    r.domain,
                    bin(p)
                ))
                .or_default() += 1;
        }
        if let Some(q) = r.quality {
            *report
                .entry(format!("{}_{}_quality_{}", r.pipeline, r.domain, bin(q)))
                .or_default() += 1;
        }
        if let Some(code) = &r.error_code {
            *report
                .entry(format!("{}_{}_{}", r.pipeline, r.domain, code))
                .or_default() += 1;
        }
    }
    report.insert("total".into(), records.len() as u64);
    Json(report).into_response()
}

/// `GET /bi_records`: the individual records.
pub async fn bi_records(
    State(state): State<AppState>,
    caller: CallerParts,
    Query(range): Query<DateRange>,
) -> Response {
    if !caller.allowed(&state) {
        return refused();
    }
    match records(&state, &range).await {
        Ok(records) => Json(records).into_response(),
        Err(refused) => refused.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_and_dates() {
        assert_eq!(bin(0.95), "0.9-1.0");
        assert_eq!(bin(1.0), "0.9-1.0");
        assert_eq!(bin(0.0), "0.0-0.1");
        assert_eq!(bin(0.72), "0.7-0.8");
        assert!(valid_date(&Some("2026-11-21".into())));
        assert!(valid_date(&None));
        assert!(!valid_date(&Some("21/11/2026".into())));
        assert!(!valid_date(&Some("2026-1-21".into())));
    }
}
