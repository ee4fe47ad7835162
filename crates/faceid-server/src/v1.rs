//! The native API, `/v1/...`: JSON in and out, images and videos as base64, errors as
//! problem JSON whose `errors` carry the engine's stable codes (`NO_FACE`, `TOO_DARK`, ...).
//! Every call needs an `x-api-key`; the role each needs is in its OpenAPI description
//! (served at `/v1/openapi.json`, browsable at `/swagger-ui`).
//!
//! Statuses: 400 unreadable input, 401/403 key, 404 unknown subject or key, 409 duplicate
//! id, 413 too large, 422 readable but unusable (no face, several faces, quality gate),
//! 503 busy (Retry-After), 500 server fault.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use faceid_core::Gate;
use faceid_gallery::{AuditContext, NewSubject, Subject};
use faceid_service::{Enrollment, Failure, Selfie, Service};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::access::keyed;
use crate::keys::Role;
use crate::problem::Problem;
use crate::selfie::{base64_media, frames};
use crate::{AppState, RequestId};

/// The OpenAPI document of the native API.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "faceid native API",
        description = "On-device face identity: enrollment, 1:1 verification and 1:N identification with calibrated scores and passive liveness. Authenticate with `x-api-key`."
    ),
    paths(
        list_subjects, get_subject, enroll, delete_subject, subject_image, verify, identify,
        liveness, crate::challenge::issue, crate::challenge::check, quality, frame, card, audit, camera, create_key, list_keys, revoke_key, reset, status,
        crate::sync::push, crate::sync::pull, crate::sync::list_devices,
        crate::sync::issue_device, crate::sync::revoke_device, crate::sync::local_status
    ),
    components(schemas(
        SubjectView, EnrollRequest, MediaRequest, IdentifyRequest, VerifyRequest, VerifyResponse, LivenessView,
        crate::challenge::ChallengeView, crate::challenge::CheckRequest, crate::challenge::CheckResponse,
        crate::challenge::StepView, crate::challenge::CuesView,
        IdentifyResponse, QualityResponse, FrameResponse, FrameMain, FrameIdentity, CardResponse, CardPortraitView, AuditResponse, KeyRequest, KeyView,
        StatusResponse, Problem, crate::keys::NewKey, crate::sync::PushRequest,
        crate::sync::PushResponse, crate::sync::PushResult, crate::sync::DevicesResponse,
        crate::sync::DeviceView, crate::sync::DeviceSeen, crate::sync::DeviceRequest
    )),
    modifiers(&ApiKeyScheme),
    security(("api_key" = []))
)]
pub struct ApiDoc;

struct ApiKeyScheme;

impl utoipa::Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
    }
}

// ---- shapes ----

/// An enrolled person (never their template).
#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectView {
    /// Stable id.
    id: String,
    /// Name shown to operators.
    display_name: Option<String>,
    /// Creation time, ms since the Unix epoch.
    created_at_ms: u64,
    /// Last change, ms since the Unix epoch.
    updated_at_ms: u64,
    /// Kiosk or server that enrolled the subject.
    source: Option<String>,
    /// Number of templates.
    templates: usize,
    /// Whether an enrollment image is retained (encrypted).
    has_image: bool,
    /// Whether the subject enrolled with an identity document whose machine-readable zone
    /// was verified (the document itself is kept as a keyed hash).
    document: bool,
    /// `STATE/NUMBER` of that document, only when the engine configuration keeps it
    /// (`keep_document_number`, off by default).
    document_number: Option<String>,
    /// In the answer to an enrollment from a card's front and back only: the fields on
    /// which the front disagrees with the back's zone (`number`, `surname`,
    /// `given_names`), reported and audited as `card_front`, never resolved. Absent when
    /// they agree.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    card_mismatch: Vec<&'static str>,
}

impl From<Subject> for SubjectView {
    fn from(s: Subject) -> Self {
        SubjectView {
            templates: s.template_tags.len(),
            has_image: s.has_image,
            document: s.document_tag.is_some(),
            document_number: s.document_number,
            id: s.id,
            display_name: s.display_name,
            created_at_ms: s.created_at_ms,
            updated_at_ms: s.updated_at_ms,
            source: s.source,
            card_mismatch: Vec::new(),
        }
    }
}

/// Enroll a new subject from one photo.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EnrollRequest {
    /// New subject id (1-128 printable characters).
    id: String,
    /// Optional name shown to operators.
    display_name: Option<String>,
    /// Base64 JPEG, PNG, WebP or BMP with exactly one face.
    image: String,
    /// Keep the image (encrypted) for operators; off by default.
    #[serde(default)]
    retain_image: bool,
    /// Enrolling kiosk or system, recorded with the subject.
    source: Option<String>,
    /// With a `challenge_id` from `POST /v1/liveness/challenge`, `image` is the video
    /// recorded for it: the challenge and liveness must pass before the quality gate.
    challenge_id: Option<String>,
    /// Base64 image of the identity document's side with the portrait (an ID card's front,
    /// a passport's photo page): the face must match it, and its template is stored too.
    card: Option<String>,
    /// Base64 image of the document's other side (an ID card's back, with its
    /// machine-readable zone); needs `card` (400 `CARD_BACK_WITHOUT_CARD`). A zone on either side must have valid check
    /// digits (`MRZ_CHECK_FAILED`) and must not have expired (`DOCUMENT_EXPIRED`); the
    /// document then enrolls only this subject (409 `DUPLICATE_DOCUMENT`).
    card_back: Option<String>,
}

/// A photo, or for verify/identify/liveness also a selfie video (MP4/MOV/WebM), base64.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MediaRequest {
    /// Base64 bytes.
    media: String,
}

/// 1:1: is this the claimed person?
#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyRequest {
    /// The claimed identity.
    subject_id: String,
    /// Base64 selfie photo or video.
    media: String,
    /// A challenge the video answers (`POST /v1/liveness/challenge`): required to pass.
    challenge_id: Option<String>,
}

/// 1:N: who is this?
#[derive(Debug, Deserialize, ToSchema)]
pub struct IdentifyRequest {
    /// Base64 selfie photo or video.
    media: String,
    /// A challenge the video answers (`POST /v1/liveness/challenge`): required to pass.
    challenge_id: Option<String>,
}

/// Liveness by the fused rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct LivenessView {
    /// Probability of a live face re-centred on the preset: live when >= 0.5.
    probability: f32,
    /// Raw log-odds (bigger = more live).
    score: f32,
    /// Whether it passes the configured preset (the fused rule: passive network, planarity
    /// over the frames, and the challenge when one was answered).
    live: bool,
    /// Why not: `SPOOF_SUSPECTED`, `FLAT_FACE`, or a challenge's reason.
    reason: Option<String>,
    /// Planarity depth over the frames (`null`: one frame, or the face did not move enough).
    depth: Option<f32>,
    /// Frames accumulated.
    frames: usize,
    /// Preset applied (SOFT, REGULAR, HARDENED).
    preset: String,
}

/// Verification decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyResponse {
    /// Accepted as the claimed identity (live, good quality, score at the threshold).
    accepted: bool,
    /// `MATCH`, `NO_MATCH`, `LIVENESS_FAILED` or the quality code of the chosen frame.
    reason: String,
    /// Calibrated score 0..1: a score s means an impostor reaches it with probability
    /// 10^(3 - 10 s) (0.6 = 1e-3). Null when refused before the comparison (liveness or
    /// quality): a refused probe learns nothing about its score.
    score: Option<f32>,
    /// Threshold applied.
    threshold: f32,
    /// Liveness behind the decision.
    liveness: LivenessView,
}

/// Identification decision: a named subject or nobody, never "the closest person".
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentifyResponse {
    /// Whether someone cleared the threshold.
    matched: bool,
    /// Who, when matched.
    subject_id: Option<String>,
    /// `MATCH`, `NO_MATCH`, `LIVENESS_FAILED` or the quality code of the chosen frame.
    reason: String,
    /// Calibrated score of the best candidate (null for an empty gallery, or when refused
    /// before the search).
    score: Option<f32>,
    /// Threshold for this gallery size (keeps false positives near the configured FPIR);
    /// null when refused before the search.
    threshold: Option<f32>,
    /// Subjects searched.
    gallery_size: usize,
    /// Liveness of the probe.
    liveness: LivenessView,
}

/// Quality of the face in a photo.
#[derive(Debug, Serialize, ToSchema)]
pub struct QualityResponse {
    /// Whether every measure passes the gate.
    passed: bool,
    /// The first failing measure's code, in the order a person can act on.
    failure: Option<String>,
    /// Every measure: value and whether it passes.
    #[schema(value_type = Object)]
    measures: faceid_core::Quality,
}

/// What one side of an identity document shows: its holder's portrait and its
/// machine-readable zone (`faceid card --json` prints the same fields).
#[derive(Debug, Serialize, ToSchema)]
pub struct CardResponse {
    /// The portrait; `null` on a side without one (the back of an ID card).
    portrait: Option<CardPortraitView>,
    /// The machine-readable zone: `format` (TD1, TD2, TD3, MRV-A, MRV-B), `lines`,
    /// `fields`, `checks` (each check digit: true, false, or null when the format has
    /// none), `valid` (every check passed), `repaired` (lookalikes the check digits
    /// confirmed); `null` on a side without one.
    #[schema(value_type = Option<Object>)]
    mrz: Option<faceid_core::MachineZone>,
    /// The side with the portrait: `lines` of Latin text read, the card `number` printed on
    /// it, and `matches_zone` (`number`, `surname`, `given_names`) when the same image
    /// shows the zone; a mismatch is reported, never resolved. `null` on a side without a
    /// portrait.
    #[schema(value_type = Option<Object>)]
    front: Option<faceid_core::CardFront>,
}

/// The holder's portrait on an identity document.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardPortraitView {
    /// Clockwise quarter turn that makes the document upright (0, 90, 180, 270).
    rotation_degrees: u16,
    /// Portrait face box and landmarks in the upright document.
    #[schema(value_type = Object)]
    face: faceid_core::Face,
    /// The portrait (face box grown 1.4x), base64 JPEG.
    portrait_jpeg: String,
}

/// A camera frame as the console's live view draws it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FrameResponse {
    /// Frame width in pixels (the coordinates below are in this frame).
    width: u32,
    /// Frame height in pixels.
    height: u32,
    /// Every face, largest first: box, detector score, 68 landmarks.
    #[schema(value_type = Vec<Object>)]
    faces: Vec<faceid_core::Face>,
    /// What the engine makes of the largest face (absent without a face).
    main: Option<FrameMain>,
}

/// The main face of a frame.
#[derive(Debug, Serialize, ToSchema)]
pub struct FrameMain {
    /// Why the engine would refuse this frame as a probe (`MULTIPLE_FACES`...), if it would.
    refusal: Option<String>,
    /// Passive liveness of this one frame.
    liveness: Option<LivenessView>,
    /// Quality measures and the first failing one.
    quality: Option<QualityResponse>,
    /// 1:N against the gallery; liveness is not applied here.
    identity: Option<FrameIdentity>,
}

/// Who the main face of a frame is, by the identification rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct FrameIdentity {
    /// The subject who cleared the threshold, if anyone.
    subject_id: Option<String>,
    /// Calibrated score of the best candidate.
    score: Option<f32>,
    /// Threshold for this gallery size.
    threshold: f32,
    /// Subjects searched.
    gallery_size: usize,
}

/// Audit events and the state of the hash chain.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditResponse {
    /// Events after `after`, oldest first.
    #[schema(value_type = Vec<Object>)]
    events: Vec<faceid_gallery::AuditEvent>,
    /// Whether the whole chain verifies.
    chain_valid: bool,
    /// Events in the log.
    chain_events: u64,
    /// First event that fails verification, if any.
    first_invalid_seq: Option<u64>,
}

/// Which events to read.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Only events with a larger sequence number.
    after: Option<u64>,
    /// At most this many (default 100, max 1000).
    limit: Option<usize>,
    /// Only events about this subject.
    subject: Option<String>,
}

/// Which subjects to list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only ids or names containing this text (case-insensitive).
    search: Option<String>,
    /// At most this many (default 100, max 1000).
    limit: Option<usize>,
}

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct KeyRequest {
    /// client, operator or admin.
    role: String,
}

/// A stored key (never its secret or hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// Public id.
    id: String,
    /// Surface 5's APP-ID.
    app_id: String,
    /// Role.
    role: String,
}

/// Server state for operators.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusResponse {
    /// Server version.
    version: String,
    /// Recognition model id.
    model: String,
    /// Enrolled subjects.
    gallery_size: usize,
    /// Bytes held by the 1:N index.
    index_memory_bytes: usize,
    /// Engine jobs waiting.
    queue_depth: usize,
}

// ---- helpers ----

pub(crate) fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, Problem> {
    body.map(|Json(b)| b).map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::too_large()
        } else {
            Problem::bad_request([format!("request body: {}", e.body_text())])
        }
    })
}

/// The native answer for an upload that gave no frames.
pub(crate) fn selfie_refusal(error: crate::selfie::SelfieError) -> Problem {
    use faceid_video::VideoError;
    match error {
        crate::selfie::SelfieError::Engine(e) => Problem::from(Failure::Engine(e)),
        crate::selfie::SelfieError::Video(VideoError::NoFrames) => {
            Problem::bad_request(["NO_FRAMES"])
        }
        crate::selfie::SelfieError::Video(e @ VideoError::Io(_)) => Problem::internal(e),
        crate::selfie::SelfieError::Video(VideoError::TooLarge { .. }) => {
            Problem::bad_request(["IMAGE_TOO_LARGE"])
        }
        crate::selfie::SelfieError::Video(_) => Problem::bad_request(["UNSUPPORTED_FORMAT"]),
    }
}

fn liveness_view(
    liveness: &faceid_core::Liveness,
    preset: faceid_core::LivenessPreset,
) -> LivenessView {
    let judged = liveness.judge(preset);
    LivenessView {
        probability: liveness.probability_at(preset),
        score: liveness.score,
        live: judged.live,
        reason: judged.failure.map(|f| f.code().to_string()),
        depth: liveness.planarity.and_then(|p| p.depth),
        frames: liveness.frames,
        preset: preset.name().to_string(),
    }
}

fn ctx(actor: String, request_id: &RequestId) -> AuditContext {
    AuditContext {
        actor,
        request_id: request_id.0.clone(),
    }
}

/// The selfie endpoints' path: a base64 photo or video within the video limit, turned into
/// frames (stills decoded, videos sampled) and given to `job` on the inference pool.
async fn on_selfie<T: Send + 'static>(
    state: &AppState,
    media: &str,
    challenge_id: Option<&str>,
    job: impl FnOnce(&Service, Selfie) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Problem> {
    let challenge = crate::challenge::redeem(state, challenge_id)?;
    let bytes = base64_media(media, state.video_plan_bytes)?;
    let plan = state.video_plan;
    state
        .run(move |service| -> Result<T, Problem> {
            let recording = frames(service.engine(), &bytes, &plan).map_err(selfie_refusal)?;
            Ok(job(
                service,
                crate::challenge::selfie(challenge, recording),
            )?)
        })
        .await?
}

// ---- subjects ----

/// List subjects (operator).
#[utoipa::path(get, path = "/v1/subjects", params(ListQuery), tag = "subjects",
    responses((status = 200, body = Vec<SubjectView>), (status = 401, body = Problem)))]
pub async fn list_subjects(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<SubjectView>>, Problem> {
    keyed(&state, &headers, Role::Operator)?;
    let needle = query.search.unwrap_or_default().to_lowercase();
    let limit = query.limit.unwrap_or(100).min(1000);
    let subjects = state
        .run(|service| service.gallery().subjects())
        .await?
        .map_err(Problem::internal)?;
    Ok(Json(
        subjects
            .into_iter()
            .filter(|s| {
                needle.is_empty()
                    || s.id.to_lowercase().contains(&needle)
                    || s.display_name
                        .as_deref()
                        .is_some_and(|n| n.to_lowercase().contains(&needle))
            })
            .take(limit)
            .map(SubjectView::from)
            .collect(),
    ))
}

/// One subject (operator).
#[utoipa::path(get, path = "/v1/subjects/{id}", tag = "subjects",
    responses((status = 200, body = SubjectView), (status = 404, body = Problem)))]
pub async fn get_subject(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<SubjectView>, Problem> {
    keyed(&state, &headers, Role::Operator)?;
    match state
        .run(move |service| service.gallery().subject(&id))
        .await?
    {
        Ok(Some(s)) => Ok(Json(s.into())),
        Ok(None) => Err(Problem::not_found()),
        Err(e) => Err(Problem::internal(e)),
    }
}

/// Enroll a subject from one photo (client). The face must pass the quality gate.
#[utoipa::path(post, path = "/v1/subjects", request_body = EnrollRequest, tag = "subjects",
    responses((status = 201, body = SubjectView), (status = 409, body = Problem),
              (status = 422, body = Problem, description = "no face, several faces, or quality gate")))]
pub async fn enroll(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    request: Result<Json<EnrollRequest>, JsonRejection>,
) -> Result<Response, Problem> {
    let request = body(request)?;
    let actor = keyed(&state, &headers, Role::Client)?;
    let challenge = crate::challenge::redeem(&state, request.challenge_id.as_deref())?;
    let limit = if challenge.is_some() {
        state.video_plan_bytes
    } else {
        state.engine.config().max_image_bytes
    };
    let bytes = base64_media(&request.image, limit)?;
    let max_image = state.engine.config().max_image_bytes;
    let card = request
        .card
        .as_deref()
        .map(|media| base64_media(media, max_image))
        .transpose()?;
    let card_back = match (&card, request.card_back.as_deref()) {
        (_, None) => None,
        (Some(_), Some(media)) => Some(base64_media(media, max_image)?),
        (None, Some(_)) => {
            return Err(Problem::bad_request(["CARD_BACK_WITHOUT_CARD"]));
        }
    };
    let audit = ctx(actor, &request_id);
    let plan = state.video_plan;
    let enrolled = state
        .run(move |service| -> Result<_, Problem> {
            // An uploaded photo is not a live capture: the gate is quality only. A
            // recording answering a challenge is, and must pass liveness too.
            let gate = Gate {
                liveness: challenge.is_some(),
                ..service.gate()
            };
            let selfie = if challenge.is_some() {
                let recording = frames(service.engine(), &bytes, &plan).map_err(selfie_refusal)?;
                crate::challenge::selfie(challenge, recording)
            } else {
                Selfie::photo(service.engine().decode(&bytes).map_err(Failure::from)?)
            };
            // The document: its portrait's template, and the zone of whichever side has one.
            let (card, document, mismatch) = match (card, card_back) {
                (None, _) => (None, None, Vec::new()),
                (Some(front), back) => {
                    let decode = |bytes: &[u8]| service.engine().decode(bytes);
                    let front = decode(&front).map_err(Failure::from)?;
                    let back = back
                        .map(|b| decode(&b))
                        .transpose()
                        .map_err(Failure::from)?;
                    let card = service.admit_card(&front, back.as_ref(), &audit)?;
                    let mismatch = card.front.map(|c| c.disagreements()).unwrap_or_default();
                    (Some(card.template), card.document, mismatch)
                }
            };
            let enrolled = service.enroll(
                Enrollment {
                    subject: NewSubject {
                        id: request.id,
                        display_name: request.display_name,
                        source: request.source.or(Some("server".into())),
                        document,
                        ..Default::default()
                    },
                    selfie,
                    gate,
                    card,
                    retained_image: request.retain_image.then_some(bytes),
                },
                &audit,
            )?;
            Ok((enrolled, mismatch))
        })
        .await??;
    let (enrolled, card_mismatch) = enrolled;
    let Some(subject) = enrolled.subject else {
        state.metrics.decision("enroll", "rejected");
        return Err(Problem::unprocessable([enrolled.verdict.reason.code()]));
    };
    state.metrics.decision("enroll", "ok");
    let view = SubjectView {
        card_mismatch,
        ..SubjectView::from(subject)
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Erase a subject: templates, image and index entries (operator).
#[utoipa::path(delete, path = "/v1/subjects/{id}", tag = "subjects",
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_subject(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let actor = keyed(&state, &headers, Role::Operator)?;
    let audit = ctx(actor, &request_id);
    if state
        .run(move |service| service.erase(&id, &audit))
        .await??
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found())
    }
}

/// The retained enrollment image, as uploaded (operator; 404 when none is kept).
#[utoipa::path(get, path = "/v1/subjects/{id}/image", tag = "subjects",
    responses((status = 200, content_type = "application/octet-stream"), (status = 404, body = Problem)))]
pub async fn subject_image(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    keyed(&state, &headers, Role::Operator)?;
    match state
        .run(move |service| service.gallery().image(&id))
        .await?
    {
        Ok(Some(bytes)) => {
            Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
        }
        Ok(None) => Err(Problem::not_found()),
        Err(e) => Err(Problem::internal(e)),
    }
}

// ---- decisions ----

/// 1:1 verification of a selfie photo or video against a subject (client).
#[utoipa::path(post, path = "/v1/verify", request_body = VerifyRequest, tag = "decisions",
    responses((status = 200, body = VerifyResponse), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn verify(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    request: Result<Json<VerifyRequest>, JsonRejection>,
) -> Result<Json<VerifyResponse>, Problem> {
    let request = body(request)?;
    let actor = keyed(&state, &headers, Role::Client)?;
    let audit = ctx(actor, &request_id);
    let subject = request.subject_id;
    let challenge_id = request.challenge_id.as_deref();
    let (verdict, _) = on_selfie(
        &state,
        &request.media,
        challenge_id,
        move |service, selfie| service.verify(&subject, selfie, service.gate(), &audit),
    )
    .await?;
    let accepted = verdict.accepted();
    state
        .metrics
        .decision("verify", if accepted { "accepted" } else { "rejected" });
    let preset = state.engine.config().liveness_preset;
    Ok(Json(VerifyResponse {
        accepted,
        reason: verdict.reason.code().to_string(),
        score: verdict.decision.map(|d| d.comparison.score),
        threshold: state.engine.config().verify_threshold,
        liveness: liveness_view(&verdict.liveness, preset),
    }))
}

/// 1:N identification of a selfie photo or video (client).
#[utoipa::path(post, path = "/v1/identify", request_body = IdentifyRequest, tag = "decisions",
    responses((status = 200, body = IdentifyResponse), (status = 422, body = Problem)))]
pub async fn identify(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    request: Result<Json<IdentifyRequest>, JsonRejection>,
) -> Result<Json<IdentifyResponse>, Problem> {
    let request = body(request)?;
    let actor = keyed(&state, &headers, Role::Client)?;
    let audit = ctx(actor, &request_id);
    let challenge_id = request.challenge_id.as_deref();
    let (verdict, gallery_size) = on_selfie(
        &state,
        &request.media,
        challenge_id,
        move |service, selfie| {
            let (verdict, _) = service.identify(selfie, service.gate(), &audit)?;
            Ok((verdict, service.gallery().len()))
        },
    )
    .await?;
    let subject_id = verdict.subject().cloned();
    state.metrics.decision(
        "identify",
        if subject_id.is_some() {
            "match"
        } else {
            "no_match"
        },
    );
    let preset = state.engine.config().liveness_preset;
    Ok(Json(IdentifyResponse {
        matched: subject_id.is_some(),
        subject_id,
        reason: verdict.reason.code().to_string(),
        score: verdict.best_score,
        threshold: verdict.threshold(),
        gallery_size,
        liveness: liveness_view(&verdict.liveness, preset),
    }))
}

/// Passive liveness of a photo or a video, accumulated over frames (client).
#[utoipa::path(post, path = "/v1/liveness", request_body = MediaRequest, tag = "analysis",
    responses((status = 200, body = LivenessView), (status = 422, body = Problem)))]
pub async fn liveness(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<Json<MediaRequest>, JsonRejection>,
) -> Result<Json<LivenessView>, Problem> {
    let request = body(request)?;
    keyed(&state, &headers, Role::Client)?;
    let sequence = on_selfie(&state, &request.media, None, |service, selfie| {
        service.analyze(selfie)
    })
    .await?;
    let preset = state.engine.config().liveness_preset;
    let view = liveness_view(&sequence.liveness, preset);
    state
        .metrics
        .decision("liveness", if view.live { "live" } else { "not_live" });
    Ok(Json(view))
}

/// The analysis endpoints' path: the caller's key, a base64 photo within the image limit,
/// decoded and given to `job` on the inference pool.
async fn on_photo<T: Send + 'static>(
    state: &AppState,
    headers: &HeaderMap,
    role: Role,
    request: Result<Json<MediaRequest>, JsonRejection>,
    job: impl FnOnce(&Service, faceid_core::Image) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Problem> {
    let request = body(request)?;
    keyed(state, headers, role)?;
    let bytes = base64_media(&request.media, state.engine.config().max_image_bytes)?;
    Ok(state
        .run(move |service| {
            let image = service.engine().decode(&bytes)?;
            job(service, image)
        })
        .await??)
}

fn quality_response(measures: faceid_core::Quality) -> QualityResponse {
    QualityResponse {
        passed: measures.passed(),
        failure: measures
            .first_failure()
            .map(|f| f.code().as_str().to_string()),
        measures,
    }
}

/// Quality measures of the face in a photo (client).
#[utoipa::path(post, path = "/v1/quality", request_body = MediaRequest, tag = "analysis",
    responses((status = 200, body = QualityResponse), (status = 422, body = Problem)))]
pub async fn quality(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<Json<MediaRequest>, JsonRejection>,
) -> Result<Json<QualityResponse>, Problem> {
    let sequence = on_photo(&state, &headers, Role::Client, request, |service, image| {
        service.analyze(Selfie::photo(image))
    })
    .await?;
    Ok(Json(quality_response(sequence.best.quality)))
}

/// One camera frame analysed for the operator console's live view (operator): every face
/// with its box and landmarks and, for the main face, liveness (this frame only), quality
/// and the 1:N match rule alone (not gated by liveness or quality, so the operator sees
/// who the camera sees). A preview, not a decision: nothing is audited (the verify and
/// identify decisions are), and it never refuses for a second face, it reports it.
#[utoipa::path(post, path = "/v1/frame", request_body = MediaRequest, tag = "analysis",
    responses((status = 200, body = FrameResponse), (status = 400, body = Problem)))]
pub async fn frame(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<Json<MediaRequest>, JsonRejection>,
) -> Result<Json<FrameResponse>, Problem> {
    let (width, height, preview) = on_photo(
        &state,
        &headers,
        Role::Operator,
        request,
        |service, image| Ok((image.width(), image.height(), service.preview(image)?)),
    )
    .await?;
    let preset = state.engine.config().liveness_preset;
    let main = match preview.main {
        None => None,
        Some(Err(e)) => Some(FrameMain {
            refusal: Some(e.code().as_str().to_string()),
            liveness: None,
            quality: None,
            identity: None,
        }),
        Some(Ok((sequence, identified))) => Some(FrameMain {
            refusal: None,
            liveness: Some(liveness_view(&sequence.liveness, preset)),
            quality: Some(quality_response(sequence.best.quality)),
            identity: Some(FrameIdentity {
                subject_id: identified.subject().cloned(),
                score: identified.best_score,
                // The preview gate is off, so the search always ran and set a threshold.
                threshold: identified.threshold().unwrap_or_default(),
                gallery_size: preview.gallery_size,
            }),
        }),
    };
    state.metrics.decision("frame", "analysed");
    Ok(Json(FrameResponse {
        width,
        height,
        faces: preview.faces,
        main,
    }))
}

/// One side of an ID document photo or scan, any orientation: the holder's portrait and
/// the machine-readable zone with its check digits (client). 422 `NO_PORTRAIT` when the
/// image shows neither.
#[utoipa::path(post, path = "/v1/card", request_body = MediaRequest, tag = "analysis",
    responses((status = 200, body = CardResponse), (status = 422, body = Problem)))]
pub async fn card(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<Json<MediaRequest>, JsonRejection>,
) -> Result<Json<CardResponse>, Problem> {
    let side = on_photo(&state, &headers, Role::Client, request, |service, image| {
        service.judge().read_document(&image)
    })
    .await?;
    let portrait = match side.portrait {
        None => None,
        Some(portrait) => {
            let upright = &portrait.upright;
            let crop = portrait.face.bbox.grown_within(
                1.4,
                upright.width() as f32,
                upright.height() as f32,
            );
            let portrait_jpeg = crate::selfie::jpeg_base64(upright, Some(&crop))
                .ok_or_else(|| Problem::internal("the portrait could not be encoded as JPEG"))?;
            Some(CardPortraitView {
                rotation_degrees: portrait.rotation.degrees(),
                face: portrait.face,
                portrait_jpeg,
            })
        }
    };
    Ok(Json(CardResponse {
        portrait,
        mrz: side.zone,
        front: side.front,
    }))
}

// ---- audit and admin ----

/// Audit events with the hash-chain verification (operator).
#[utoipa::path(get, path = "/v1/audit", params(AuditQuery), tag = "admin",
    responses((status = 200, body = AuditResponse)))]
pub async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditResponse>, Problem> {
    keyed(&state, &headers, Role::Operator)?;
    let (chain, events) = state
        .run(|service| {
            let gallery = service.gallery();
            Ok::<_, faceid_gallery::Error>((gallery.verify_audit()?, gallery.audit()?))
        })
        .await?
        .map_err(Problem::internal)?;
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(100).min(1000);
    let events = events
        .into_iter()
        .filter(|e| e.seq > after)
        .filter(|e| {
            query
                .subject
                .as_ref()
                .is_none_or(|s| e.subject.as_ref() == Some(s))
        })
        .take(limit)
        .collect();
    Ok(Json(AuditResponse {
        events,
        chain_valid: chain.valid,
        chain_events: chain.events,
        first_invalid_seq: chain.first_invalid_seq,
    }))
}

/// The kiosk camera's newest frame, JPEG, with its sequence number in `x-frame-seq`
/// (operator; served by a kiosk's local API for the console's live view, 404 on a central
/// server, 503 before the camera's first frame). Watching is not a state change: not audited.
#[utoipa::path(get, path = "/v1/admin/camera", tag = "admin",
    responses((status = 200, content_type = "image/jpeg"), (status = 404, body = Problem),
              (status = 503, body = Problem)))]
pub async fn camera(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    keyed(&state, &headers, Role::Operator)?;
    let camera = state.camera.clone().ok_or_else(Problem::not_found)?;
    let (seq, jpeg) = tokio::task::spawn_blocking(move || camera.newest_jpeg())
        .await
        .map_err(Problem::internal)?
        .ok_or_else(Problem::no_frame)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg".to_string()),
            (
                header::HeaderName::from_static("x-frame-seq"),
                seq.to_string(),
            ),
        ],
        jpeg,
    )
        .into_response())
}

/// Create an API key (admin); the secret is in this answer only.
#[utoipa::path(post, path = "/v1/admin/keys", request_body = KeyRequest, tag = "admin",
    responses((status = 201, body = crate::keys::NewKey), (status = 403, body = Problem)))]
pub async fn create_key(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    request: Result<Json<KeyRequest>, JsonRejection>,
) -> Result<Response, Problem> {
    let request = body(request)?;
    let actor = keyed(&state, &headers, Role::Admin)?;
    let role = Role::parse(&request.role).ok_or_else(|| Problem::bad_request(["INVALID_ROLE"]))?;
    let audit = ctx(actor, &request_id);
    let keys = state.keys.clone();
    let new = state
        .run(move |service| -> Result<_, Problem> {
            let new = keys.issue(role).map_err(Problem::internal)?;
            // An admin action that cannot be audited does not happen: the key is withdrawn.
            if let Err(e) = service
                .gallery()
                .record("key_create", None, &new.id, &audit)
            {
                let _ = keys.revoke(&new.id);
                return Err(Problem::internal(e));
            }
            Ok(new)
        })
        .await??;
    Ok((StatusCode::CREATED, Json(new)).into_response())
}

/// List API keys (admin): ids, app ids and roles only.
#[utoipa::path(get, path = "/v1/admin/keys", tag = "admin",
    responses((status = 200, body = Vec<KeyView>)))]
pub async fn list_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<KeyView>>, Problem> {
    keyed(&state, &headers, Role::Admin)?;
    Ok(Json(
        state
            .keys
            .list()
            .into_iter()
            .map(|k| KeyView {
                id: k.id,
                app_id: k.app_id,
                role: format!("{:?}", k.role).to_lowercase(),
            })
            .collect(),
    ))
}

/// Revoke an API key (admin).
#[utoipa::path(delete, path = "/v1/admin/keys/{id}", tag = "admin",
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let actor = keyed(&state, &headers, Role::Admin)?;
    let audit = ctx(actor, &request_id);
    let keys = state.keys.clone();
    state
        .run(move |service| {
            // Revoking is safe to do before the audit (a key that may not be audited is
            // better gone); the answer is an error when the audit fails.
            match keys.revoke(&id) {
                Ok(true) => service
                    .gallery()
                    .record("key_revoke", None, &id, &audit)
                    .map(|_| StatusCode::NO_CONTENT)
                    .map_err(Problem::internal),
                Ok(false) => Err(Problem::not_found()),
                Err(e) => Err(Problem::internal(e)),
            }
        })
        .await?
}

/// Erase every subject (admin).
#[utoipa::path(post, path = "/v1/admin/reset", tag = "admin", responses((status = 204)))]
pub async fn reset(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let actor = keyed(&state, &headers, Role::Admin)?;
    let audit = ctx(actor, &request_id);
    state.run(move |service| service.reset(&audit)).await??;
    Ok(StatusCode::NO_CONTENT)
}

/// Version, model, gallery size, index memory and queue depth (operator).
#[utoipa::path(get, path = "/v1/admin/status", tag = "admin",
    responses((status = 200, body = StatusResponse)))]
pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<StatusResponse>, Problem> {
    keyed(&state, &headers, Role::Operator)?;
    Ok(Json(StatusResponse {
        version: env!("CARGO_PKG_VERSION").into(),
        model: state.engine.model_id().into(),
        gallery_size: state.gallery.len(),
        index_memory_bytes: state.gallery.index_memory_bytes(),
        queue_depth: state.pool.depth(),
    }))
}
