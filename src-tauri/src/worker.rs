//! The kiosk's moving parts: opening the engine, gallery and settings; the capture loop;
//! the analysis worker that feeds the newest frame to the flow and sends the UI a new view
//! whenever it changes; the optional local API.

use faceid_gallery::prelude::*;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use faceid_kiosk_core::camera::{self, CameraSpec};
use faceid_kiosk_core::capture::{CameraState, Capture, preview_jpeg};
use faceid_kiosk_core::flow::{Kiosk, KioskOptions, Screen};
use faceid_kiosk_core::settings::Settings;
use serde::Serialize;

use crate::OperatorSession;
use crate::options::Options;

/// Receives views.
pub type ViewSink = Box<dyn FnMut(View) + Send>;

/// Analyses per second at most (the rest of the frames only preview).
const ANALYSIS_INTERVAL: Duration = Duration::from_millis(80);
/// Preview frames are sent at most this wide.
const PREVIEW_WIDTH: u32 = 640;

/// What the UI renders.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    /// The flow's screen.
    pub screen: Screen,
    /// The camera's state.
    pub camera: CameraState,
    /// UI language.
    pub language: String,
    /// A visible note (e.g. running on the demo video).
    pub note: Option<String>,
    /// Whether the operator is signed in.
    pub operator: bool,
    /// Whether prompts are spoken.
    pub speech: bool,
}

/// One preview frame.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// Capture sequence number (ask for frames after it).
    pub seq: u64,
    /// JPEG data URL.
    pub jpeg: String,
}

/// Everything the commands and the worker share.
#[derive(Debug)]
pub struct Shared {
    /// The flows.
    pub kiosk: Mutex<Kiosk>,
    /// Operator settings.
    pub settings: Mutex<Settings>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// The capture loop (replaced when the camera setting changes); shared with the local
    /// API, which shows its newest frame to the operator console.
    pub capture: Arc<Mutex<Option<Capture>>>,
    /// Note shown on every screen.
    pub note: Mutex<Option<String>>,
    /// Operator session.
    pub operator: OperatorSession,
    /// Bumped by commands so the worker re-sends the view.
    pub dirty: std::sync::atomic::AtomicBool,
    /// The server this kiosk syncs with, when sync runs.
    pub sync_server: Option<String>,
    /// Spoken prompts.
    pub speech: Mutex<crate::speech::Speech>,
    /// Demo mode: no camera, the demo clip plays, nothing is enrolled.
    pub demo: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// The current view.
    pub fn view(&self) -> View {
        let screen = self
            .kiosk
            .lock()
            .map(|k| k.screen().clone())
            .unwrap_or(Screen::Start);
        let camera = self
            .capture
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(Capture::state))
            .unwrap_or(CameraState::Starting);
        let language = self
            .settings
            .lock()
            .map(|s| s.language.clone())
            .unwrap_or_else(|_| "fr".into());
        View {
            screen,
            camera,
            language,
            note: self.note.lock().ok().and_then(|n| n.clone()),
            operator: crate::cmd::operator_active(self),
            speech: self.speech.lock().map(|s| s.enabled()).unwrap_or(false),
        }
    }

    /// Whether the kiosk runs on the demo clip.
    pub fn demo(&self) -> bool {
        self.demo.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The newest camera frame as a JPEG data URL, if newer than frame `after`. The UI asks
    /// for the next one only once it has shown this one, so a slow screen skips frames
    /// instead of piling them up.
    pub fn preview(&self, after: u64) -> Option<Preview> {
        let (seq, image) = self
            .capture
            .lock()
            .ok()
            .and_then(|c| c.as_ref().and_then(Capture::newest))?;
        if seq <= after {
            return None;
        }
        let jpeg = preview_jpeg(&image, PREVIEW_WIDTH, 75);
        Some(Preview {
            seq,
            jpeg: format!(
                "data:image/jpeg;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(jpeg)
            ),
        })
    }

    /// Asks the worker to send the view now.
    pub fn changed(&self) {
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The demo clip made by `make setup` from the fetched sample photos.
pub fn demo_video() -> PathBuf {
    faceid_core::models::default_dir().join("demo/selfie.mp4")
}

/// Opens the engine, the gallery (creating its key on first run) and the settings.
pub fn open(options: &Options) -> Result<Shared, String> {
    let data_dir = options.data_dir();
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| format!("creating {}: {e}", data_dir.display()))?;
    let mut settings = Settings::load(&data_dir).map_err(|e| e.to_string())?;
    if let Some(camera) = &options.camera {
        settings.camera = camera.clone();
    }
    if let Some(card) = &options.card_source {
        settings.card_source = card.clone();
    }
    if let Some(language) = &options.language {
        settings.language = language.clone();
    }
    if let Some(pin) = &options.operator_pin {
        settings.set_pin(pin).map_err(|e| e.to_string())?;
    }
    settings.validate().map_err(|e| e.to_string())?;
    settings.save(&data_dir).map_err(|e| e.to_string())?;

    let (key, source) =
        faceid_gallery::GalleryKey::from_env_or_file(&options.key_path(), &data_dir)
            .map_err(|e| e.to_string())?;
    tracing::info!(source = ?source, "gallery key");
    // Every local change is queued for the server in its own transaction, whether or not
    // a server is configured yet: enrollments made offline are pushed once one is.
    let gallery = Arc::new(
        faceid_gallery::Gallery::open_with(
            &data_dir.join("gallery"),
            &key,
            faceid_gallery::GalleryOptions { outbox: true },
        )
        .map_err(|e| e.to_string())?,
    );
    let sync_server = start_sync(&gallery, &settings, &data_dir);
    let engine = Arc::new(
        faceid_core::Engine::load(
            &faceid_core::models::default_dir(),
            faceid_core::EngineConfig::default(),
        )
        .map_err(|e| e.to_string())?,
    );
    let capture = Arc::new(Mutex::new(None));
    if let Some(addr) = &options.local_api {
        let camera = Arc::new(KioskCamera {
            capture: capture.clone(),
        });
        local_api(engine.clone(), gallery.clone(), camera, &data_dir, addr)?;
    }
    let kiosk = Kiosk::new(engine, gallery, kiosk_options(&settings, false));
    let speech = crate::speech::Speech::new(settings.spoken_prompts);
    Ok(Shared {
        kiosk: Mutex::new(kiosk),
        settings: Mutex::new(settings),
        data_dir,
        capture,
        note: Mutex::new(None),
        operator: OperatorSession::default(),
        dirty: std::sync::atomic::AtomicBool::new(true),
        sync_server,
        speech: Mutex::new(speech),
        demo: std::sync::atomic::AtomicBool::new(false),
    })
}

/// Environment variable holding the device token when `device-token` is absent.
pub const DEVICE_TOKEN_ENV: &str = "FACEID_DEVICE_TOKEN";

/// Starts the sync loop on its own thread when a server is configured and a device token
/// is present (`device-token` in the data directory or `$FACEID_DEVICE_TOKEN`); returns the
/// server it syncs with. A bad setting is logged and kept in the sync status, never fatal:
/// the kiosk works offline.
fn start_sync(
    gallery: &Arc<faceid_gallery::Gallery>,
    settings: &Settings,
    data_dir: &std::path::Path,
) -> Option<String> {
    let server = settings.server_url.clone()?;
    let token = std::fs::read_to_string(data_dir.join("device-token"))
        .ok()
        .or_else(|| std::env::var(DEVICE_TOKEN_ENV).ok())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    let note = |error: String| {
        tracing::warn!(%error, "sync not started");
        let _ = gallery.note_sync(faceid_gallery::SyncStep::Push, Some(error));
    };
    let Some(token) = token else {
        note(format!(
            "no device token: put it in {} or set {DEVICE_TOKEN_ENV}",
            data_dir.join("device-token").display()
        ));
        return None;
    };
    let mut config = faceid_sync::SyncConfig::new(server.clone(), token);
    if let Some(ca) = &settings.server_ca_file {
        match std::fs::read(ca) {
            Ok(pem) => config.ca_pem = Some(pem),
            Err(e) => {
                note(format!("{}: {e}", ca.display()));
                return None;
            }
        }
    }
    let client = match faceid_sync::SyncClient::new(gallery.clone(), config) {
        Ok(client) => client,
        Err(e) => {
            note(e.to_string());
            return None;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("faceid-sync".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(client.run(std::future::pending()));
        });
    spawned.is_ok().then_some(server)
}

/// The flow options a settings value gives.
pub fn kiosk_options(settings: &Settings, demo: bool) -> KioskOptions {
    KioskOptions {
        kiosk_id: "kiosk".into(),
        preset: settings.preset(),
        retain_images: settings.retain_images,
        inactivity: Duration::from_secs(settings.inactivity_secs),
        challenge: settings.challenge(),
        demo,
    }
}

/// The kiosk camera as the local API serves it: the capture loop's newest frame.
#[derive(Debug)]
struct KioskCamera {
    capture: Arc<Mutex<Option<Capture>>>,
}

/// Frames for the console are sent at most this wide (its live view analyses at 960).
const CONSOLE_FRAME_WIDTH: u32 = 960;

impl faceid_server::CameraView for KioskCamera {
    fn newest_jpeg(&self) -> Option<(u64, Vec<u8>)> {
        let (seq, image) = self
            .capture
            .lock()
            .ok()
            .and_then(|c| c.as_ref().and_then(Capture::newest))?;
        Some((seq, preview_jpeg(&image, CONSOLE_FRAME_WIDTH, 90)))
    }
}

/// Serves the native and admin API on loopback for the operator console (keys from the
/// data directory's key store, e.g. an operator key made with `faceid keys create`).
fn local_api(
    engine: Arc<faceid_core::Engine>,
    gallery: Arc<faceid_gallery::Gallery>,
    camera: Arc<KioskCamera>,
    data_dir: &std::path::Path,
    addr: &str,
) -> Result<(), String> {
    let socket: std::net::SocketAddr = addr
        .parse()
        .map_err(|e| format!("--local-api {addr}: {e}"))?;
    if !socket.ip().is_loopback() {
        return Err("--local-api must be a loopback address".into());
    }
    let keys = faceid_server::keys::ApiKeys::load(data_dir).map_err(|e| e.to_string())?;
    let limits = faceid_server::ServerLimits {
        keyless_loopback: false,
        ..faceid_server::ServerLimits::default()
    };
    let state = faceid_server::AppState::new(engine, gallery.clone(), keys, &limits)
        .with_local_sync(gallery)
        .with_camera(camera);
    let router = faceid_server::app(state, &limits);
    std::thread::Builder::new()
        .name("faceid-local-api".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                match tokio::net::TcpListener::bind(socket).await {
                    Ok(listener) => {
                        tracing::info!(%socket, "local API listening");
                        let _ =
                            faceid_server::serve(listener, router, std::future::pending()).await;
                    }
                    Err(e) => tracing::error!(%socket, error = %e, "local API could not bind"),
                }
            });
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// (Re)starts the capture loop for the camera in the settings. Without a webcam it falls
/// back to the demo video, with a note on screen, and the kiosk enrolls nobody.
pub fn start_capture(shared: &Arc<Shared>) {
    let (camera, pinned) = shared
        .settings
        .lock()
        .map(|s| (s.camera.clone(), s.camera_id.clone()))
        .unwrap_or_else(|_| ("webcam".into(), String::new()));
    let mut spec = CameraSpec::parse(&camera).unwrap_or(CameraSpec::Webcam(None));
    let mut note = None;
    if matches!(spec, CameraSpec::Webcam(_))
        && crate::webcam::list().is_empty()
        && demo_video().exists()
    {
        // No webcam on this machine: the demo clip stands in, and the screen says so.
        spec = CameraSpec::Video(demo_video());
        note = Some("demo".to_string());
    }
    let demo = note.is_some();
    shared
        .demo
        .store(demo, std::sync::atomic::Ordering::Relaxed);
    if let (Ok(mut kiosk), Ok(settings)) = (shared.kiosk.lock(), shared.settings.lock()) {
        kiosk.set_options(kiosk_options(&settings, demo));
    }
    if let Ok(mut slot) = shared.note.lock() {
        *slot = note;
    }
    let capture = Capture::start(
        Box::new(move || match &spec {
            CameraSpec::Webcam(index) => crate::webcam::open(*index, &pinned),
            other => camera::open(other),
        }),
        // The UI pulls previews (`Shared::preview`): nothing is pushed, nothing queues.
        Box::new(|_| {}),
    );
    if let Ok(mut slot) = shared.capture.lock() {
        *slot = Some(capture);
    }
}

/// Starts the capture loop and the analysis worker.
pub fn start(shared: Arc<Shared>, mut send_view: ViewSink) {
    start_capture(&shared);
    let _ = std::thread::Builder::new()
        .name("faceid-analysis".into())
        .spawn(move || {
            let mut last: Option<View> = None;
            let mut card_offered = false;
            // The scanner file last offered as a card's back (path and time): a new scan is
            // offered once, the front's own file never (a zone beside its portrait, on a
            // passport page, is read with the front).
            let mut back_offered: Option<(PathBuf, std::time::SystemTime)> = None;
            loop {
                let began = Instant::now();
                let frame = shared
                    .capture
                    .lock()
                    .ok()
                    .and_then(|c| c.as_ref().and_then(Capture::newest));
                let card_file = shared
                    .settings
                    .lock()
                    .ok()
                    .and_then(|s| s.card_source.strip_prefix("file:").map(PathBuf::from));
                // The kiosk is locked only to read and apply: the frame's inference runs
                // between the two, so commands from the UI never wait behind it.
                let mut job = None;
                if let Ok(mut kiosk) = shared.kiosk.lock() {
                    kiosk.tick(began);
                    if kiosk.wants_card() && card_file.is_some() {
                        if !card_offered {
                            card_offered = true;
                            let newest = card_file.as_deref().and_then(newest_card_file);
                            let card = newest.as_ref().and_then(|(path, _)| open_card(path));
                            back_offered = newest;
                            let taken = card.is_some_and(|c| kiosk.offer_card(&c, began));
                            if !taken {
                                kiosk.card_unreadable(began);
                            }
                        }
                    } else if kiosk.wants_card_back() && card_file.is_some() {
                        card_offered = false;
                        let newest = card_file.as_deref().and_then(newest_card_file);
                        if newest.is_some() && newest != back_offered {
                            back_offered = newest.clone();
                            if let Some(back) = newest.and_then(|(path, _)| open_card(&path)) {
                                kiosk.offer_card_back(&back, began);
                            }
                        }
                    } else {
                        card_offered = false;
                        back_offered = None;
                        if let Some((seq, image)) = frame.as_ref() {
                            job = kiosk.frame_job(*seq, began).map(|j| (j, image.clone()));
                        }
                    }
                }
                if let Some((job, image)) = job
                    && let Some(analysed) = job.run(&image)
                    && let Ok(mut kiosk) = shared.kiosk.lock()
                {
                    kiosk.on_analysed(analysed, &image, Instant::now());
                }
                let view = shared.view();
                let forced = shared
                    .dirty
                    .swap(false, std::sync::atomic::Ordering::Relaxed);
                if forced || last.as_ref() != Some(&view) {
                    send_view(view.clone());
                    last = Some(view);
                }
                if let Some(rest) = ANALYSIS_INTERVAL.checked_sub(began.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
        });
}

/// A scanned card image (from [`newest_card_file`]), decoded.
fn open_card(file: &std::path::Path) -> Option<image::RgbImage> {
    image::open(file).ok().map(|i| i.to_rgb8())
}

/// The file of a `file:` card source (itself, or a scanner folder's newest) and when it was
/// written.
fn newest_card_file(path: &std::path::Path) -> Option<(PathBuf, std::time::SystemTime)> {
    let modified = |p: &std::path::Path| p.metadata().and_then(|m| m.modified()).ok();
    if path.is_dir() {
        std::fs::read_dir(path)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter_map(|p| modified(&p).map(|t| (p, t)))
            .max_by_key(|(_, t)| *t)
    } else {
        modified(path).map(|t| (path.to_path_buf(), t))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use faceid_kiosk_core::flow::FlowKind;

    /// While the analysis worker runs a frame's inference (over 100 ms a frame), the kiosk
    /// stays free: a UI command locking it waits microseconds, not behind the inference.
    #[test]
    fn commands_never_wait_behind_a_frames_inference() {
        let dir = tempfile::tempdir().unwrap();
        let args = [
            "--data".to_string(),
            dir.path().join("data").display().to_string(),
            "--key-file".to_string(),
            dir.path().join("gallery.key").display().to_string(),
            "--camera".to_string(),
            format!("video:{}", demo_video().display()),
        ];
        let options = Options::from_args(args.into_iter()).unwrap();
        let shared = Arc::new(open(&options).unwrap());
        {
            let mut kiosk = shared.kiosk.lock().unwrap();
            kiosk.start(FlowKind::Identify, Instant::now());
            assert!(kiosk.wants_frames(), "{:?}", kiosk.screen());
        }
        start(shared.clone(), Box::new(|_| {}));
        let mut waits = Vec::new();
        let until = Instant::now() + Duration::from_millis(2500);
        while Instant::now() < until {
            let asked = Instant::now();
            let kiosk = shared.kiosk.lock().unwrap();
            waits.push(asked.elapsed());
            let capturing = kiosk.wants_frames();
            drop(kiosk);
            if !capturing && waits.len() > 20 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // The worker analysed frames meanwhile: the flow left its capture screen, or it
        // was still capturing when time ran out (both took inference).
        assert!(waits.len() > 20, "{} lock requests", waits.len());
        waits.sort();
        let p90 = waits[waits.len() * 9 / 10];
        assert!(
            p90 < Duration::from_millis(40),
            "a tenth of {} lock requests waited {p90:?} or more: the kiosk is held during inference",
            waits.len()
        );
    }
}
