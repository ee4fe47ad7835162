//! Kiosk sync, `/v1/sync/*`, and the devices that may use it, `/v1/admin/devices`.
//!
//! A kiosk authenticates with its device token (`x-api-key`, role `device`; issued and
//! revoked by an admin, `faceid devices`). `POST /v1/sync/push` applies its outbox events in
//! order, each exactly once (the gallery records the event id with its outcome);
//! `GET /v1/sync/pull?cursor=N` returns the change feed after `N`. The protocol, its ordering
//! and its conflict rules are described in `docs/sync.md`.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use faceid_gallery::{AuditContext, ChangePage, PushOutcome, RemoteSubject, SyncEvent};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::access::keyed;
use crate::keys::Role;
use crate::problem::Problem;
use crate::{AppState, RequestId};

/// Most events one push may carry.
pub const MAX_PUSH_EVENTS: usize = 500;
/// Most change-feed rows one pull returns.
pub const MAX_PULL_ROWS: usize = 2000;

/// What the server last saw of each device (per server process).
#[derive(Debug, Default)]
pub struct DeviceActivity {
    seen: Mutex<HashMap<String, DeviceSeen>>,
}

/// One device's last contact.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct DeviceSeen {
    /// Last push, ms since the Unix epoch.
    pub last_push_ms: Option<u64>,
    /// Last pull, ms since the Unix epoch.
    pub last_pull_ms: Option<u64>,
    /// Cursor of its last pull.
    pub cursor: Option<u64>,
    /// Events it pushed since this process started.
    pub events_pushed: u64,
    /// Conflicts reported back to it since this process started.
    pub conflicts: u64,
}

impl DeviceActivity {
    fn update(&self, device: &str, change: impl FnOnce(&mut DeviceSeen)) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        change(seen.entry(device.to_string()).or_default());
    }

    fn get(&self, device: &str) -> DeviceSeen {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(device)
            .cloned()
            .unwrap_or_default()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The device name behind a device token: 401 without one, 403 for another role.
fn device(state: &AppState, headers: &HeaderMap) -> Result<String, Problem> {
    let secret = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(Problem::unauthorized)?;
    let key = state.keys.find(secret).ok_or_else(Problem::unauthorized)?;
    if key.role != Role::Device {
        return Err(Problem::forbidden());
    }
    Ok(key.app_id)
}

/// A batch of outbox events, oldest first.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PushRequest {
    /// Events in outbox order (at most 500).
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<SyncEvent>,
}

/// The outcome of each pushed event, in the same order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PushResponse {
    /// One per event.
    pub results: Vec<PushResult>,
}

/// The server's answer to one event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PushResult {
    /// The event's id.
    pub event_id: String,
    /// `applied`, `already_enrolled`, `conflict` (with `message`), `stale`, `rejected`
    /// (with `reason`).
    #[schema(value_type = Object)]
    pub outcome: PushOutcome,
    /// The server's record of the subject when the kiosk must adopt it (after
    /// `already_enrolled` or `conflict`).
    #[schema(value_type = Option<Object>)]
    pub server_record: Option<RemoteSubject>,
}

/// Apply a kiosk's outbox events (device token).
#[utoipa::path(post, path = "/v1/sync/push", request_body = PushRequest, tag = "sync",
    responses((status = 200, body = PushResponse), (status = 400, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn push(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<PushRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<PushResponse>, Problem> {
    let device = device(&state, &headers)?;
    let Json(request) = body.map_err(|e| Problem::bad_request([e.body_text()]))?;
    if request.events.len() > MAX_PUSH_EVENTS {
        return Err(Problem::bad_request([format!(
            "at most {MAX_PUSH_EVENTS} events per push"
        )]));
    }
    let gallery = state.gallery.clone();
    let engine = state.engine.clone();
    let who = device.clone();
    let results = tokio::task::spawn_blocking(move || {
        let same_person = |a: &[faceid_core::Template], b: &[faceid_core::Template]| -> bool {
            engine.same_person(a, b).unwrap_or(false)
        };
        request
            .events
            .iter()
            .map(|event| {
                let outcome = gallery.apply_pushed(&who, event, &same_person)?;
                let server_record = match (&outcome, event.subject()) {
                    (
                        PushOutcome::AlreadyEnrolled | PushOutcome::Conflict { .. },
                        Some(subject),
                    ) => gallery.remote_subject(subject)?,
                    _ => None,
                };
                Ok(PushResult {
                    event_id: event.id.clone(),
                    outcome,
                    server_record,
                })
            })
            .collect::<faceid_gallery::Result<Vec<_>>>()
    })
    .await
    .map_err(Problem::internal)?
    .map_err(Problem::internal)?;
    let conflicts = results
        .iter()
        .filter(|r| r.outcome.needs_operator())
        .count() as u64;
    state.devices.update(&device, |seen| {
        seen.last_push_ms = Some(now_ms());
        seen.events_pushed += results.len() as u64;
        seen.conflicts += conflicts;
    });
    Ok(Json(PushResponse { results }))
}

/// Where a pull starts.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PullQuery {
    /// Last change-feed position the kiosk holds (0 for a fresh kiosk).
    #[serde(default)]
    pub cursor: u64,
    /// Rows to return (default and maximum 2000).
    pub limit: Option<usize>,
}

/// Changes of the gallery after a cursor (device token).
#[utoipa::path(get, path = "/v1/sync/pull", params(PullQuery), tag = "sync",
    responses((status = 200, body = Object), (status = 401, body = Problem)))]
pub async fn pull(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<PullQuery>,
) -> Result<Json<ChangePage>, Problem> {
    let device = device(&state, &headers)?;
    let limit = query.limit.unwrap_or(MAX_PULL_ROWS).clamp(1, MAX_PULL_ROWS);
    let gallery = state.gallery.clone();
    let page = tokio::task::spawn_blocking(move || gallery.changes_since(query.cursor, limit))
        .await
        .map_err(Problem::internal)?
        .map_err(Problem::internal)?;
    state.devices.update(&device, |seen| {
        seen.last_pull_ms = Some(now_ms());
        seen.cursor = Some(page.next_cursor);
    });
    Ok(Json(page))
}

/// A device and what this server process saw of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    /// Device name.
    pub name: String,
    /// Public id of its token.
    pub key_id: String,
    /// Last contact.
    #[serde(flatten)]
    pub seen: DeviceSeen,
}

/// The devices and their sync state, with the change-feed head (admin).
#[derive(Debug, Serialize, ToSchema)]
pub struct DevicesResponse {
    /// Last change-feed position: a device whose cursor is here is up to date.
    pub change_head: u64,
    /// Every device with a token.
    pub devices: Vec<DeviceView>,
}

/// List devices and their sync state (admin).
#[utoipa::path(get, path = "/v1/admin/devices", tag = "admin",
    responses((status = 200, body = DevicesResponse)))]
pub async fn list_devices(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<DevicesResponse>, Problem> {
    keyed(&state, &headers, Role::Admin)?;
    let devices = state
        .keys
        .list()
        .into_iter()
        .filter(|k| k.role == Role::Device)
        .map(|k| DeviceView {
            seen: state.devices.get(&k.app_id),
            name: k.app_id,
            key_id: k.id,
        })
        .collect();
    let change_head = state
        .run(|service| service.gallery().change_head())
        .await?
        .map_err(Problem::internal)?;
    Ok(Json(DevicesResponse {
        change_head,
        devices,
    }))
}

/// A device to issue a token for.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeviceRequest {
    /// Device name: 1-64 of `A-Z a-z 0-9 . _ -`.
    pub name: String,
}

/// Issue a device token (admin); the secret is in the answer once.
#[utoipa::path(post, path = "/v1/admin/devices", request_body = DeviceRequest, tag = "admin",
    responses((status = 201, body = crate::keys::NewKey), (status = 400, body = Problem),
        (status = 409, body = Problem)))]
pub async fn issue_device(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    body: Result<Json<DeviceRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<crate::keys::NewKey>), Problem> {
    let actor = keyed(&state, &headers, Role::Admin)?;
    let Json(request) = body.map_err(|e| Problem::bad_request([e.body_text()]))?;
    let key = state
        .keys
        .issue_device(&request.name)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => Problem::bad_request(["INVALID_DEVICE_NAME"]),
            std::io::ErrorKind::AlreadyExists => Problem::conflict(["DEVICE_EXISTS"]),
            _ => Problem::internal(e),
        })?;
    let ctx = AuditContext {
        actor,
        request_id: request_id.0,
    };
    let keys = state.keys.clone();
    let name = request.name;
    state
        .run(move |service| {
            // An admin action that cannot be audited does not happen: the token is withdrawn.
            if let Err(e) = service.gallery().record("device_issue", None, &name, &ctx) {
                let _ = keys.revoke_device(&name);
                return Err(Problem::internal(e));
            }
            Ok(())
        })
        .await??;
    Ok((StatusCode::CREATED, Json(key)))
}

/// Revoke a device's token (admin): its next push or pull is refused.
#[utoipa::path(delete, path = "/v1/admin/devices/{name}", tag = "admin",
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn revoke_device(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    let actor = keyed(&state, &headers, Role::Admin)?;
    let ctx = AuditContext {
        actor,
        request_id: request_id.0,
    };
    let keys = state.keys.clone();
    state
        .run(move |service| match keys.revoke_device(&name) {
            // Revoked first (a token that may not be audited is better gone); the answer is
            // an error when the audit fails.
            Ok(true) => service
                .gallery()
                .record("device_revoke", None, &name, &ctx)
                .map(|_| StatusCode::NO_CONTENT)
                .map_err(Problem::internal),
            Ok(false) => Err(Problem::not_found()),
            Err(e) => Err(Problem::internal(e)),
        })
        .await?
}

/// This kiosk's sync state and the conflicts waiting for its operator (operator; served
/// by a kiosk's local API, 404 on a central server).
#[utoipa::path(get, path = "/v1/admin/sync", tag = "admin",
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn local_status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, Problem> {
    keyed(&state, &headers, Role::Operator)?;
    let gallery = state.local_sync.as_ref().ok_or_else(Problem::not_found)?;
    let status = gallery.sync_status().map_err(Problem::internal)?;
    let conflicts = gallery.conflicts().map_err(Problem::internal)?;
    Ok(Json(
        serde_json::json!({"status": status, "conflicts": conflicts}),
    ))
}
