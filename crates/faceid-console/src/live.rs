//! The live view's feed: frames from the kiosk's own camera (`kiosk`, through its local
//! API) or a camera spec on this computer (`video:FILE`, `file:DIR`), each sent to the
//! server's `/v1/frame` and handed to the UI with what the engine saw in it.
//!
//! For a local source, two threads: the capture thread reads the source at its own pace and
//! keeps only the newest frame; the analysis thread takes the newest, asks the server, and
//! publishes the pair. For the kiosk camera, one thread fetches the newest frame and has it
//! analysed, in turn. The UI takes the latest published pair each repaint, so nothing queues up: the
//! view runs at the rate answers arrive and never shows an overlay on the wrong frame.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use faceid_kiosk_core::camera::{self, CameraSpec};

use crate::api::{Api, ApiError, FrameAnalysis};
use crate::backend::Picture;

/// The spec naming the kiosk's own camera (served by its local API).
pub const KIOSK: &str = "kiosk";

/// Frames are scaled down to at most this width before analysis (a preview, not a probe).
pub const MAX_WIDTH: u32 = 960;

/// A frame and what the engine saw in it.
#[derive(Debug, Clone)]
pub struct LiveFrame {
    /// The pixels shown.
    pub picture: Picture,
    /// The analysis, or why there is none.
    pub analysis: Result<FrameAnalysis, String>,
    /// Time to answer, milliseconds.
    pub latency_ms: f64,
    /// Frames published since the feed started.
    pub number: u64,
}

/// What the feed is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedState {
    /// Playing.
    Running,
    /// The source failed; the reason.
    Failed(String),
}

#[derive(Debug, Default)]
struct Slots {
    captured: Mutex<Option<image::RgbImage>>,
    fresh: Condvar,
    published: Mutex<Option<LiveFrame>>,
    failure: Mutex<Option<String>>,
}

/// A running feed; dropping it stops both threads.
#[derive(Debug)]
pub struct LiveFeed {
    stop: Arc<AtomicBool>,
    slots: Arc<Slots>,
    /// The source as the operator named it.
    pub spec: String,
}

impl Drop for LiveFeed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.slots.fresh.notify_all();
    }
}

impl LiveFeed {
    /// Opens `spec` and starts both threads; `wake` repaints the UI.
    pub fn start(
        api: Api,
        spec: &str,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Result<LiveFeed, String> {
        if spec.trim() == KIOSK {
            return Ok(LiveFeed::kiosk(api, Arc::new(wake)));
        }
        let parsed = CameraSpec::parse(spec.trim()).map_err(|e| e.to_string())?;
        let mut source = camera::open(&parsed).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let slots = Arc::new(Slots::default());
        let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(wake);

        let (capture_stop, capture_slots, capture_wake) =
            (stop.clone(), slots.clone(), wake.clone());
        std::thread::Builder::new()
            .name("faceid-console-capture".into())
            .spawn(move || {
                while !capture_stop.load(Ordering::Relaxed) {
                    match source.next_frame() {
                        Ok(frame) => {
                            *lock(&capture_slots.captured) = Some(frame.image);
                            capture_slots.fresh.notify_one();
                            std::thread::sleep(frame.interval);
                        }
                        Err(e) => {
                            *lock(&capture_slots.failure) = Some(e.to_string());
                            capture_wake();
                            return;
                        }
                    }
                }
            })
            .map_err(|e| e.to_string())?;

        let (analysis_stop, analysis_slots) = (stop.clone(), slots.clone());
        std::thread::Builder::new()
            .name("faceid-console-analysis".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                let mut number = 0;
                while !analysis_stop.load(Ordering::Relaxed) {
                    let Some(image) = next_captured(&analysis_slots, &analysis_stop) else {
                        return;
                    };
                    let image = shrink(image);
                    let started = Instant::now();
                    let analysis = match jpeg(&image) {
                        Some(bytes) => runtime
                            .block_on(api.frame(&bytes))
                            .map_err(|e| e.to_string()),
                        None => Err("the frame could not be encoded".into()),
                    };
                    number += 1;
                    *lock(&analysis_slots.published) = Some(LiveFrame {
                        picture: Picture::from_rgb(&image),
                        analysis,
                        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                        number,
                    });
                    wake();
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(LiveFeed {
            stop,
            slots,
            spec: spec.trim().to_string(),
        })
    }

    /// The kiosk's own camera: fetch its newest frame, have it analysed, publish, repeat.
    fn kiosk(api: Api, wake: Arc<dyn Fn() + Send + Sync>) -> LiveFeed {
        let stop = Arc::new(AtomicBool::new(false));
        let slots = Arc::new(Slots::default());
        let (thread_stop, thread_slots) = (stop.clone(), slots.clone());
        let spawned = std::thread::Builder::new()
            .name("faceid-console-kiosk-camera".into())
            .spawn(move || {
                let fail = |reason: String| {
                    *lock(&thread_slots.failure) = Some(reason);
                    wake();
                };
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return fail("no async runtime".into());
                };
                let (mut last_seq, mut number) = (0, 0);
                while !thread_stop.load(Ordering::Relaxed) {
                    let (seq, jpeg) = match runtime.block_on(api.camera()) {
                        Ok(frame) => frame,
                        Err(ApiError::NotFound) => {
                            return fail(
                                "this server has no camera: connect the console to a kiosk's --local-api"
                                    .into(),
                            );
                        }
                        Err(ApiError::Refused { status: 503, .. }) => {
                            std::thread::sleep(Duration::from_millis(200));
                            continue;
                        }
                        Err(e) => return fail(e.to_string()),
                    };
                    if seq == last_seq {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    last_seq = seq;
                    let Ok(image) = image::load_from_memory(&jpeg) else {
                        return fail("the kiosk sent a frame that does not decode".into());
                    };
                    let started = Instant::now();
                    let analysis = runtime.block_on(api.frame(&jpeg)).map_err(|e| e.to_string());
                    number += 1;
                    *lock(&thread_slots.published) = Some(LiveFrame {
                        picture: Picture::from_rgb(&image.into_rgb8()),
                        analysis,
                        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                        number,
                    });
                    wake();
                }
            });
        if let Err(e) = spawned {
            *lock(&slots.failure) = Some(e.to_string());
        }
        LiveFeed {
            stop,
            slots,
            spec: KIOSK.into(),
        }
    }

    /// The newest analysed frame not yet taken.
    pub fn take(&self) -> Option<LiveFrame> {
        lock(&self.slots.published).take()
    }

    /// Running, or why the source stopped.
    pub fn state(&self) -> FeedState {
        match lock(&self.slots.failure).clone() {
            Some(reason) => FeedState::Failed(reason),
            None => FeedState::Running,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Waits for a frame newer than the last one taken; `None` once stopped.
fn next_captured(slots: &Slots, stop: &AtomicBool) -> Option<image::RgbImage> {
    let mut captured = lock(&slots.captured);
    loop {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        if let Some(image) = captured.take() {
            return Some(image);
        }
        captured = slots
            .fresh
            .wait_timeout(captured, Duration::from_millis(200))
            .map(|(guard, _)| guard)
            .unwrap_or_else(|e| e.into_inner().0);
    }
}

fn shrink(image: image::RgbImage) -> image::RgbImage {
    if image.width() <= MAX_WIDTH {
        return image;
    }
    let height =
        (u64::from(image.height()) * u64::from(MAX_WIDTH) / u64::from(image.width())) as u32;
    image::imageops::resize(
        &image,
        MAX_WIDTH,
        height.max(1),
        image::imageops::FilterType::Triangle,
    )
}

fn jpeg(image: &image::RgbImage) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
        .encode_image(image)
        .ok()?;
    Some(bytes)
}

/// The live view's one feed at a time: started and stopped by the operator, polled by the
/// app each frame.
pub struct LiveControl {
    api: Api,
    wake: Arc<dyn Fn() + Send + Sync>,
    feed: Option<LiveFeed>,
}

impl std::fmt::Debug for LiveControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveControl")
            .field("feed", &self.feed)
            .finish()
    }
}

impl LiveControl {
    /// No feed yet; `wake` repaints the UI when a frame is ready.
    pub fn new(api: Api, wake: Arc<dyn Fn() + Send + Sync>) -> LiveControl {
        LiveControl {
            api,
            wake,
            feed: None,
        }
    }

    /// Starts a feed from `spec`, replacing any running one.
    pub fn start(&mut self, spec: &str) -> Result<(), String> {
        self.feed = None;
        let wake = self.wake.clone();
        self.feed = Some(LiveFeed::start(self.api.clone(), spec, move || wake())?);
        Ok(())
    }

    /// Stops the feed.
    pub fn stop(&mut self) {
        self.feed = None;
    }

    /// Whether a feed runs.
    pub fn running(&self) -> bool {
        self.feed.is_some()
    }

    /// Moves a new frame, or the feed's failure, into the state.
    pub fn poll(&mut self, state: &mut crate::state::LiveState) {
        let Some(feed) = &self.feed else {
            return;
        };
        if let Some(frame) = feed.take() {
            state.show(frame, Instant::now());
        }
        if let FeedState::Failed(reason) = feed.state() {
            state.notice = Some(crate::state::Notice {
                text: format!("{} stopped: {reason}", feed.spec),
                is_error: true,
            });
            self.feed = None;
        }
    }
}

/// What [`measure`] saw.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LiveRate {
    /// The source.
    pub source: String,
    /// Analysed frames shown.
    pub frames: usize,
    /// Of which the server could not analyse.
    pub failed: usize,
    /// Length of the run.
    pub seconds: f64,
    /// Frames shown per second.
    pub frames_per_second: f64,
    /// Median time to answer one frame, ms.
    pub latency_median_ms: f64,
    /// 90th percentile, ms.
    pub latency_p90_ms: f64,
}

/// Runs the live view's feed from `spec` for `duration` without a window and reports the
/// rate the view would show (`faceid-console --measure-live SECS`).
pub fn measure(api: Api, spec: &str, duration: Duration) -> Result<LiveRate, String> {
    let feed = LiveFeed::start(api, spec, || {})?;
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut failed = 0;
    while started.elapsed() < duration {
        if let FeedState::Failed(reason) = feed.state() {
            return Err(reason);
        }
        match feed.take() {
            Some(frame) => {
                failed += usize::from(frame.analysis.is_err());
                latencies.push(frame.latency_ms);
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok(LiveRate {
        source: feed.spec.clone(),
        frames: latencies.len(),
        failed,
        seconds,
        frames_per_second: latencies.len() as f64 / seconds,
        latency_median_ms: at(0.5),
        latency_p90_ms: at(0.9),
    })
}
