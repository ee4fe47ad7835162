//! The capture loop: one thread reads the camera at the source's pace, hands every frame to
//! the preview sink (the UI) and keeps only the newest frame for analysis. Analysis runs on
//! its own thread at its own rate and always takes the newest frame: a slow analysis skips
//! frames, it never builds a queue.
//!
//! A source that fails is reopened every second (an unplugged webcam comes back by itself);
//! the loop's [`CameraState`] says what the person at the kiosk should be told meanwhile.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use image::RgbImage;

use crate::camera::{CameraError, FrameSource};

/// Opens (or reopens) the camera.
pub type Opener = Box<dyn FnMut() -> Result<Box<dyn FrameSource>, CameraError> + Send>;
/// Receives every frame for the preview.
pub type PreviewSink = Box<dyn FnMut(&RgbImage) + Send>;

/// What the camera is doing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum CameraState {
    /// Opening.
    Starting,
    /// Frames are flowing from the described source.
    Running(String),
    /// No camera (the UI shows "no camera"; the loop keeps trying).
    NoCamera(String),
    /// Camera held by another program.
    Busy(String),
}

#[derive(Debug, Default)]
struct Shared {
    newest: Mutex<Option<(u64, Arc<RgbImage>)>>,
    state: Mutex<Option<CameraState>>,
    frames: AtomicU64,
    stop: AtomicBool,
    started: Mutex<Option<Instant>>,
}

/// A running capture loop; stops when dropped.
#[derive(Debug)]
pub struct Capture {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Capture {
    /// Starts the loop on its own thread.
    pub fn start(mut opener: Opener, mut preview: PreviewSink) -> Capture {
        let shared = Arc::new(Shared::default());
        let inner = shared.clone();
        let thread = std::thread::Builder::new()
            .name("faceid-capture".into())
            .spawn(move || {
                let set_state = |state: CameraState| {
                    if let Ok(mut s) = inner.state.lock() {
                        *s = Some(state);
                    }
                };
                set_state(CameraState::Starting);
                let mut source: Option<Box<dyn FrameSource>> = None;
                while !inner.stop.load(Ordering::Relaxed) {
                    let Some(camera) = source.as_mut() else {
                        match opener() {
                            Ok(opened) => {
                                set_state(CameraState::Running(opened.describe()));
                                source = Some(opened);
                            }
                            Err(CameraError::Busy(why)) => {
                                set_state(CameraState::Busy(why));
                                std::thread::sleep(Duration::from_secs(1));
                            }
                            Err(e) => {
                                set_state(CameraState::NoCamera(e.to_string()));
                                std::thread::sleep(Duration::from_secs(1));
                            }
                        }
                        continue;
                    };
                    let began = Instant::now();
                    match camera.next_frame() {
                        Ok(frame) => {
                            let image = Arc::new(frame.image);
                            let seq = inner.frames.fetch_add(1, Ordering::Relaxed) + 1;
                            if let Ok(mut started) = inner.started.lock() {
                                started.get_or_insert_with(Instant::now);
                            }
                            if let Ok(mut newest) = inner.newest.lock() {
                                *newest = Some((seq, image.clone()));
                            }
                            preview(&image);
                            if let Some(rest) = frame.interval.checked_sub(began.elapsed()) {
                                std::thread::sleep(rest);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "camera lost; reopening");
                            set_state(CameraState::NoCamera(e.to_string()));
                            source = None;
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                }
            })
            .ok();
        Capture { shared, thread }
    }

    /// The newest frame and its sequence number (to skip frames already analysed).
    pub fn newest(&self) -> Option<(u64, Arc<RgbImage>)> {
        self.shared.newest.lock().ok().and_then(|n| n.clone())
    }

    /// The camera's state.
    pub fn state(&self) -> CameraState {
        self.shared
            .state
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .unwrap_or(CameraState::Starting)
    }

    /// Frames delivered per second since the first one.
    pub fn frame_rate(&self) -> f64 {
        let frames = self.shared.frames.load(Ordering::Relaxed) as f64;
        let elapsed = self
            .shared
            .started
            .lock()
            .ok()
            .and_then(|s| *s)
            .map(|s| s.elapsed().as_secs_f64())
            .unwrap_or(0.0);
        if elapsed > 0.0 {
            (frames - 1.0).max(0.0) / elapsed
        } else {
            0.0
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A preview JPEG of `image`, scaled down to at most `max_width` pixels wide.
pub fn preview_jpeg(image: &RgbImage, max_width: u32, quality: u8) -> Vec<u8> {
    let scaled;
    let view = if image.width() > max_width {
        let height = (u64::from(image.height()) * u64::from(max_width) / u64::from(image.width()))
            .max(1) as u32;
        scaled = image::imageops::resize(
            image,
            max_width,
            height,
            image::imageops::FilterType::Triangle,
        );
        &scaled
    } else {
        image
    };
    let mut out = Vec::new();
    let _ =
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(view);
    out
}
