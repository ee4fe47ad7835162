//! The capture loop: one thread reads the camera at the source's pace, hands every frame to
//! the preview sink (the UI) and keeps only the newest frame for analysis. Analysis runs on
//! its own thread at its own rate and always takes the newest frame: a slow analysis skips
//! frames, it never builds a queue.
//!
//! A source that fails is reopened every second (an unplugged webcam comes back by itself,
//! hot-plug without a restart); a source whose frames stop without an error (a webcam
//! driver that hangs) is caught by the frame watchdog ([`Watchdog`]) and reopened the same
//! way. The loop's [`CameraState`] says what the person at the kiosk (or the operator, for a
//! refused camera) should be told meanwhile.

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
    /// A camera the kiosk will not use (virtual, or not the pinned one): for the operator.
    Refused(String),
}

/// How the loop reacts to a failing camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureOptions {
    /// A source that gives no frame for this long is closed and reopened.
    pub watchdog: Duration,
    /// Wait before reopening a camera that failed or is absent.
    pub retry: Duration,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            watchdog: Duration::from_secs(3),
            retry: Duration::from_secs(1),
        }
    }
}

/// A frame source read on its own thread, so that a source whose frames stop (a hung
/// driver, a camera that stops streaming without an error) is noticed: no frame within the
/// watchdog time is [`CameraError::Disconnected`], and the capture loop reopens the camera.
/// The stalled reader thread ends as soon as its source returns.
pub struct Watchdog {
    frames: std::sync::mpsc::Receiver<Result<crate::camera::CapturedFrame, CameraError>>,
    timeout: Duration,
    describe: String,
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog")
            .field("source", &self.describe)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Watchdog {
    /// Watches `source`: at most `timeout` between frames.
    pub fn watch(mut source: Box<dyn FrameSource>, timeout: Duration) -> Watchdog {
        let describe = source.describe();
        let (sender, frames) = std::sync::mpsc::sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name("faceid-camera-reader".into())
            .spawn(move || {
                loop {
                    let frame = source.next_frame();
                    let failed = frame.is_err();
                    if sender.send(frame).is_err() || failed {
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "camera reader thread not started");
        }
        Watchdog {
            frames,
            timeout,
            describe,
        }
    }
}

impl FrameSource for Watchdog {
    fn next_frame(&mut self) -> Result<crate::camera::CapturedFrame, CameraError> {
        match self.frames.recv_timeout(self.timeout) {
            Ok(frame) => frame,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(CameraError::Disconnected(
                format!("{}: no frame for {:?}", self.describe, self.timeout),
            )),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(CameraError::Disconnected(
                format!("{} stopped", self.describe),
            )),
        }
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

#[derive(Debug, Default)]
struct Shared {
    newest: Mutex<Option<(u64, Arc<RgbImage>)>>,
    state: Mutex<Option<CameraState>>,
    frames: AtomicU64,
    opened: AtomicU64,
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
    /// Starts the loop on its own thread with the default watchdog and retry times.
    pub fn start(opener: Opener, preview: PreviewSink) -> Capture {
        Capture::start_with(opener, preview, CaptureOptions::default())
    }

    /// Starts the loop on its own thread.
    pub fn start_with(
        mut opener: Opener,
        mut preview: PreviewSink,
        options: CaptureOptions,
    ) -> Capture {
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
                                inner.opened.fetch_add(1, Ordering::Relaxed);
                                set_state(CameraState::Running(opened.describe()));
                                source = Some(Box::new(Watchdog::watch(opened, options.watchdog)));
                            }
                            Err(CameraError::Busy(why)) => {
                                set_state(CameraState::Busy(why));
                                std::thread::sleep(options.retry);
                            }
                            Err(CameraError::Refused(why)) => {
                                tracing::warn!(%why, "camera refused");
                                set_state(CameraState::Refused(why));
                                std::thread::sleep(options.retry);
                            }
                            Err(e) => {
                                set_state(CameraState::NoCamera(e.to_string()));
                                std::thread::sleep(options.retry);
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
                            std::thread::sleep(options.retry);
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

    /// How many times the camera was opened (1 + reopenings after a failure).
    pub fn openings(&self) -> u64 {
        self.shared.opened.load(Ordering::Relaxed)
    }

    /// Frames captured so far.
    pub fn frames(&self) -> u64 {
        self.shared.frames.load(Ordering::Relaxed)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::camera::CapturedFrame;
    use std::sync::atomic::AtomicUsize;

    /// A fake camera: `frames` frames at 100 fps, then stalls (no error, no frame) or fails.
    struct FakeCamera {
        frames: usize,
        stall: bool,
        given: usize,
    }

    impl FrameSource for FakeCamera {
        fn next_frame(&mut self) -> Result<CapturedFrame, CameraError> {
            if self.given >= self.frames {
                if self.stall {
                    // A hung driver: blocks far past the watchdog.
                    std::thread::sleep(Duration::from_secs(30));
                }
                return Err(CameraError::Disconnected("unplugged".into()));
            }
            self.given += 1;
            Ok(CapturedFrame {
                image: RgbImage::new(64, 48),
                interval: Duration::from_millis(10),
            })
        }

        fn describe(&self) -> String {
            "fake".into()
        }
    }

    fn options() -> CaptureOptions {
        CaptureOptions {
            watchdog: Duration::from_millis(300),
            retry: Duration::from_millis(100),
        }
    }

    fn wait_until(mut done: impl FnMut() -> bool) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn the_watchdog_reopens_a_camera_whose_frames_stop() {
        let opens = Arc::new(AtomicUsize::new(0));
        let counted = opens.clone();
        let capture = Capture::start_with(
            Box::new(move || {
                counted.fetch_add(1, Ordering::Relaxed);
                Ok(Box::new(FakeCamera {
                    frames: 5,
                    stall: true,
                    given: 0,
                }) as Box<dyn FrameSource>)
            }),
            Box::new(|_| {}),
            options(),
        );
        // Each opening gives 5 frames then hangs: more than 5 frames means it was reopened.
        assert!(
            wait_until(|| capture.frames() >= 12),
            "{} frames after {} openings",
            capture.frames(),
            capture.openings()
        );
        assert!(capture.openings() >= 3, "{} openings", capture.openings());
        assert_eq!(opens.load(Ordering::Relaxed) as u64, capture.openings());
    }

    #[test]
    fn unplugging_and_replugging_resumes_without_a_restart() {
        // Plugged (10 frames, then unplugged), absent for three tries, plugged again.
        let tries = Arc::new(AtomicUsize::new(0));
        let counted = tries.clone();
        let capture = Capture::start_with(
            Box::new(move || {
                let attempt = counted.fetch_add(1, Ordering::Relaxed);
                match attempt {
                    0 => Ok(Box::new(FakeCamera {
                        frames: 10,
                        stall: false,
                        given: 0,
                    }) as Box<dyn FrameSource>),
                    1..=3 => Err(CameraError::NoCamera("no webcam 0".into())),
                    _ => Ok(Box::new(FakeCamera {
                        frames: usize::MAX,
                        stall: false,
                        given: 0,
                    }) as Box<dyn FrameSource>),
                }
            }),
            Box::new(|_| {}),
            options(),
        );
        assert!(wait_until(|| matches!(
            capture.state(),
            CameraState::NoCamera(_)
        )));
        assert!(wait_until(|| capture.frames() > 30), "{}", capture.frames());
        assert!(matches!(capture.state(), CameraState::Running(_)));
        assert_eq!(capture.openings(), 2);
    }

    #[test]
    fn a_refused_camera_is_told_to_the_operator_and_never_read() {
        let capture = Capture::start_with(
            Box::new(|| {
                Err(CameraError::Refused(
                    "OBS Virtual Camera is a virtual camera".into(),
                ))
            }),
            Box::new(|_| {}),
            options(),
        );
        assert!(wait_until(|| matches!(
            capture.state(),
            CameraState::Refused(_)
        )));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(capture.frames(), 0);
        assert!(capture.newest().is_none());
    }
}
