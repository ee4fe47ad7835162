//! The commands the UI may call (declared in `build.rs`, granted in
//! `capabilities/main.json`). Each is small: it takes typed input, calls the flow or the
//! gallery, and returns a typed reply; errors reach the UI as a rejected promise carrying a
//! message key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use faceid_gallery::AuditContext;
use faceid_kiosk_core::flow::FlowKind;
use faceid_kiosk_core::settings::Settings;
use serde::{Deserialize, Serialize};
use tauri::State;

use crate::worker::{Shared, View, kiosk_options};

/// Operator sessions end after this long without a command.
const OPERATOR_IDLE: Duration = Duration::from_secs(300);

/// A refused command: a message key the UI translates.
#[derive(Debug, Serialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum CommandError {
    /// The operator is not signed in.
    #[error("operator sign-in required")]
    OperatorRequired,
    /// A setting was refused.
    #[error("invalid setting: {message}")]
    InvalidSetting {
        /// What was wrong.
        message: String,
    },
    /// Storage failed (logged).
    #[error("storage error")]
    Storage,
    /// The operator's input was refused (e.g. an id already taken).
    #[error("{message}")]
    Refused {
        /// What was wrong.
        message: String,
    },
}

type Shell<'a> = State<'a, Arc<Shared>>;

fn with_kiosk(shared: &Shared, f: impl FnOnce(&mut faceid_kiosk_core::flow::Kiosk, Instant)) {
    if let Ok(mut kiosk) = shared.kiosk.lock() {
        f(&mut kiosk, Instant::now());
    }
    shared.changed();
}

/// Whether the operator session is open (and still fresh).
pub fn operator_active(shared: &Shared) -> bool {
    shared
        .operator
        .0
        .lock()
        .ok()
        .and_then(|s| *s)
        .is_some_and(|since| since.elapsed() < OPERATOR_IDLE)
}

fn require_operator(shared: &Shared) -> Result<(), CommandError> {
    if !operator_active(shared) {
        return Err(CommandError::OperatorRequired);
    }
    if let Ok(mut session) = shared.operator.0.lock() {
        *session = Some(Instant::now());
    }
    Ok(())
}

/// The current view (the UI also receives `view` events).
#[tauri::command]
pub fn view(shared: Shell<'_>) -> View {
    shared.view()
}

/// The newest preview frame after `after`, or `None` when there is none yet (async: JPEG
/// encoding stays off the window's thread).
#[tauri::command]
pub async fn preview(
    shared: Shell<'_>,
    after: u64,
) -> Result<Option<crate::worker::Preview>, CommandError> {
    Ok(shared.preview(after))
}

/// Starts enroll, verify or identify.
#[tauri::command]
pub fn start_flow(shared: Shell<'_>, flow: FlowKind) {
    with_kiosk(&shared, |k, now| k.start(flow, now));
}

/// Verify: the claimed identity.
#[tauri::command]
pub fn claim(shared: Shell<'_>, id: String) {
    with_kiosk(&shared, |k, now| k.claim(&id, now));
}

/// Enroll: id and name.
#[tauri::command]
pub fn confirm_details(shared: Shell<'_>, id: String, name: String) {
    with_kiosk(&shared, |k, now| k.confirm_details(&id, &name, now));
}

/// Enroll: the card has no machine-readable zone on its back (older cards).
#[tauri::command]
pub fn skip_card_back(shared: Shell<'_>) {
    with_kiosk(&shared, |k, now| k.skip_card_back(now));
}

/// Back to the start screen.
#[tauri::command]
pub fn cancel(shared: Shell<'_>) {
    with_kiosk(&shared, |k, now| k.cancel(now));
}

/// A touch (keeps the screen from timing out). Changes nothing on screen, so it sends no
/// new view: a re-render under a finger can swallow the touch.
#[tauri::command]
pub fn touch(shared: Shell<'_>) {
    if let Ok(mut kiosk) = shared.kiosk.lock() {
        kiosk.touch(Instant::now());
    }
}

/// Changes the language (start screen), persisted.
#[tauri::command]
pub fn set_language(shared: Shell<'_>, language: String) -> Result<(), CommandError> {
    let mut settings = shared.settings.lock().map_err(|_| CommandError::Storage)?;
    let mut next = settings.clone();
    next.language = language;
    next.save(&shared.data_dir)
        .map_err(|e| CommandError::InvalidSetting {
            message: e.to_string(),
        })?;
    *settings = next;
    drop(settings);
    shared.changed();
    Ok(())
}

/// Turns the spoken prompts on or off (the speaker button on the capture screens).
#[tauri::command]
pub fn set_speech(shared: Shell<'_>, on: bool) {
    if let Ok(mut speech) = shared.speech.lock() {
        speech.set_enabled(on);
    }
    shared.changed();
}

/// Speaks `text` (the UI's own translation of the prompt on screen) in `language`, when
/// spoken prompts are on; a new prompt cuts the one being spoken.
#[tauri::command]
pub fn speak(shared: Shell<'_>, text: String, language: String) {
    if let Ok(mut speech) = shared.speech.lock() {
        speech.say(&text, &language);
    }
}

/// Signs the operator in with the PIN.
#[tauri::command]
pub fn operator_unlock(shared: Shell<'_>, pin: String) -> bool {
    let matches = shared
        .settings
        .lock()
        .map(|s| s.pin_matches(&pin))
        .unwrap_or(false);
    // A sign-in that cannot be audited does not happen.
    let audited = shared.kiosk.lock().is_ok_and(|kiosk| {
        let ctx = AuditContext {
            actor: "operator".into(),
            request_id: "kiosk-operator".into(),
        };
        let outcome = if matches { "ok" } else { "rejected" };
        kiosk
            .gallery()
            .record("operator_sign_in", None, outcome, &ctx)
            .inspect_err(|e| tracing::error!(error = %e, "operator sign-in not audited"))
            .is_ok()
    });
    let ok = matches && audited;
    if let Ok(mut session) = shared.operator.0.lock() {
        *session = ok.then(Instant::now);
    }
    shared.changed();
    ok
}

/// Signs the operator out.
#[tauri::command]
pub fn operator_lock(shared: Shell<'_>) {
    if let Ok(mut session) = shared.operator.0.lock() {
        *session = None;
    }
    shared.changed();
}

/// Settings as the operator screen edits them (the PIN hash is never sent).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SettingsForm {
    /// Camera spec.
    pub camera: String,
    /// Card source.
    pub card_source: String,
    /// Liveness preset.
    pub liveness_preset: String,
    /// Language.
    pub language: String,
    /// Sync server, empty for none.
    pub server_url: String,
    /// Keep enrollment selfies.
    pub retain_images: bool,
    /// Challenge steps allowed (wire names).
    pub challenge_steps: Vec<String>,
    /// Steps per challenge.
    pub challenge_length: usize,
    /// Spoken prompts on by default.
    pub spoken_prompts: bool,
    /// The pinned webcam's stable id, empty for none.
    pub camera_id: String,
    /// New PIN, empty to keep.
    pub new_pin: String,
}

/// The settings (operator).
#[tauri::command]
pub fn settings(shared: Shell<'_>) -> Result<SettingsForm, CommandError> {
    require_operator(&shared)?;
    let s = shared.settings.lock().map_err(|_| CommandError::Storage)?;
    Ok(SettingsForm {
        camera: s.camera.clone(),
        card_source: s.card_source.clone(),
        liveness_preset: s.liveness_preset.clone(),
        language: s.language.clone(),
        server_url: s.server_url.clone().unwrap_or_default(),
        retain_images: s.retain_images,
        challenge_steps: s.challenge_steps.clone(),
        challenge_length: s.challenge_length,
        spoken_prompts: s.spoken_prompts,
        camera_id: s.camera_id.clone(),
        new_pin: String::new(),
    })
}

/// Saves the settings (operator); a camera change restarts the capture loop.
#[tauri::command]
pub fn save_settings(shared: Shell<'_>, form: SettingsForm) -> Result<(), CommandError> {
    require_operator(&shared)?;
    let invalid = |e: faceid_kiosk_core::settings::SettingsError| CommandError::InvalidSetting {
        message: e.to_string(),
    };
    let mut settings = shared.settings.lock().map_err(|_| CommandError::Storage)?;
    let mut next: Settings = settings.clone();
    next.camera = form.camera;
    next.card_source = form.card_source;
    next.liveness_preset = form.liveness_preset;
    next.language = form.language;
    next.server_url = Some(form.server_url).filter(|u| !u.trim().is_empty());
    next.retain_images = form.retain_images;
    next.challenge_steps = form.challenge_steps;
    next.challenge_length = form.challenge_length;
    next.spoken_prompts = form.spoken_prompts;
    next.camera_id = form.camera_id.trim().to_string();
    if !form.new_pin.is_empty() {
        next.set_pin(&form.new_pin).map_err(invalid)?;
    }
    next.save(&shared.data_dir).map_err(invalid)?;
    let camera_changed = next.camera != settings.camera || next.camera_id != settings.camera_id;
    if let Ok(mut kiosk) = shared.kiosk.lock() {
        kiosk.set_options(kiosk_options(&next, shared.demo()));
    }
    if let Ok(mut speech) = shared.speech.lock() {
        speech.set_enabled(next.spoken_prompts);
    }
    *settings = next;
    drop(settings);
    if camera_changed {
        crate::worker::start_capture(&shared);
    }
    shared.changed();
    Ok(())
}

/// One row of the operator's subject list.
#[derive(Debug, Serialize)]
pub struct SubjectRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Enrolled at, ms since the epoch.
    pub created_at_ms: u64,
}

/// The enrolled subjects (operator).
#[tauri::command]
pub fn subjects(shared: Shell<'_>) -> Result<Vec<SubjectRow>, CommandError> {
    require_operator(&shared)?;
    let kiosk = shared.kiosk.lock().map_err(|_| CommandError::Storage)?;
    let subjects = kiosk
        .gallery()
        .subjects()
        .map_err(|_| CommandError::Storage)?;
    Ok(subjects
        .into_iter()
        .map(|s| SubjectRow {
            id: s.id,
            name: s.display_name,
            created_at_ms: s.created_at_ms,
        })
        .collect())
}

/// Erases a subject (operator).
#[tauri::command]
pub fn delete_subject(shared: Shell<'_>, id: String) -> Result<bool, CommandError> {
    require_operator(&shared)?;
    let kiosk = shared.kiosk.lock().map_err(|_| CommandError::Storage)?;
    let ctx = AuditContext {
        actor: "operator".into(),
        request_id: format!("kiosk-delete-{id}"),
    };
    kiosk.service().erase(&id, &ctx).map_err(|e| {
        tracing::error!(error = %e, "erasure failed");
        CommandError::Storage
    })
}

/// The kiosk's sync state, for the operator screen.
#[derive(Debug, Serialize)]
pub struct SyncView {
    /// The server synced with; `None` when the kiosk works alone.
    pub server: Option<String>,
    /// Cursor, last push and pull, last error, pending and conflict counts.
    pub status: faceid_gallery::SyncStatus,
    /// Enrollments the server refused, for the operator to resolve.
    pub conflicts: Vec<faceid_gallery::Conflict>,
}

/// Sync state and conflicts (operator).
#[tauri::command]
pub fn sync_status(shared: Shell<'_>) -> Result<SyncView, CommandError> {
    require_operator(&shared)?;
    let kiosk = shared.kiosk.lock().map_err(|_| CommandError::Storage)?;
    let gallery = kiosk.gallery();
    Ok(SyncView {
        server: shared.sync_server.clone(),
        status: gallery.sync_status().map_err(|_| CommandError::Storage)?,
        conflicts: gallery.conflicts().map_err(|_| CommandError::Storage)?,
    })
}

/// Resolves a conflict (operator): enrolls the refused templates again under `new_id`
/// (queued for the server like any enrollment), or drops them when `new_id` is `None`.
#[tauri::command]
pub fn resolve_conflict(
    shared: Shell<'_>,
    event_id: String,
    new_id: Option<String>,
) -> Result<(), CommandError> {
    require_operator(&shared)?;
    let kiosk = shared.kiosk.lock().map_err(|_| CommandError::Storage)?;
    let resolution = match new_id.map(|id| id.trim().to_string()) {
        Some(id) if !id.is_empty() => faceid_gallery::Resolution::Reenroll { id },
        _ => faceid_gallery::Resolution::Discard,
    };
    let ctx = AuditContext {
        actor: "operator".into(),
        request_id: format!("kiosk-conflict-{event_id}"),
    };
    kiosk
        .gallery()
        .resolve_conflict(&event_id, &resolution, &ctx)
        .map(|_| ())
        .map_err(|e| match e.kind() {
            faceid_gallery::ErrorKind::Duplicate | faceid_gallery::ErrorKind::Invalid => {
                CommandError::Refused {
                    message: e.to_string(),
                }
            }
            _ => CommandError::Storage,
        })
}
