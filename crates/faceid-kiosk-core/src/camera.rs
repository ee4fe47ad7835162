//! Frame sources: what the kiosk's camera loop reads from.
//!
//! A source is named by a spec string (`--camera`, the operator settings):
//! - `file:DIR`: the images in `DIR` in name order, each held for [`FILE_HOLD`], then the
//!   next, looping: a scanner folder, a demo, a test;
//! - `video:FILE`: a recorded clip (MP4/MOV/WebM) played at its own pace, looping;
//! - `watch:DIR`: the newest image another program writes into `DIR` (last by name), shown
//!   at 30 frames a second (a webcam's rate) until a newer one comes: a frame grabber's
//!   output, or a test acting as the person in front of the camera;
//! - `webcam` / `webcam:N`: a real camera, when the shell is built with one (the Tauri shell
//!   opens it with nokhwa and feeds frames through [`FrameSource`] too).

use std::path::{Path, PathBuf};
use std::time::Duration;

use image::RgbImage;

/// How long a `file:` source shows each image.
pub const FILE_HOLD: Duration = Duration::from_secs(2);
/// Preview rate of a `file:` source.
const FILE_FPS: f64 = 25.0;
/// Frame rate of a `watch:` source: a webcam's.
const WATCH_FPS: f64 = 30.0;

/// Why a source gives no frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CameraError {
    /// The spec names no usable camera (no webcam plugged in, empty folder).
    #[error("no camera: {0}")]
    NoCamera(String),
    /// Another program holds the camera.
    #[error("camera busy: {0}")]
    Busy(String),
    /// The camera went away (unplugged); the capture loop reconnects.
    #[error("camera disconnected: {0}")]
    Disconnected(String),
    /// A camera the kiosk will not use: a virtual camera (software can feed it any video),
    /// or not the camera pinned in the settings. Shown to the operator.
    #[error("camera refused: {0}")]
    Refused(String),
    /// The spec is not `file:DIR`, `video:FILE` or `webcam[:N]`.
    #[error("unknown camera spec {0:?}: use webcam[:N], file:DIR, video:FILE or watch:DIR")]
    BadSpec(String),
}

/// What a camera spec names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraSpec {
    /// Images in a folder.
    Files(PathBuf),
    /// A video file.
    Video(PathBuf),
    /// The newest image written into a folder.
    Watch(PathBuf),
    /// A webcam: by index, or (`None`) the pinned camera or else the first real one.
    Webcam(Option<u32>),
}

impl CameraSpec {
    /// Parses `file:DIR`, `video:FILE`, `webcam` or `webcam:N`.
    pub fn parse(spec: &str) -> Result<CameraSpec, CameraError> {
        let bad = || CameraError::BadSpec(spec.to_string());
        match spec.split_once(':') {
            Some(("file", dir)) if !dir.is_empty() => Ok(CameraSpec::Files(dir.into())),
            Some(("video", file)) if !file.is_empty() => Ok(CameraSpec::Video(file.into())),
            Some(("watch", dir)) if !dir.is_empty() => Ok(CameraSpec::Watch(dir.into())),
            Some(("webcam", n)) => n
                .parse()
                .map(|n| CameraSpec::Webcam(Some(n)))
                .map_err(|_| bad()),
            None if spec == "webcam" => Ok(CameraSpec::Webcam(None)),
            _ => Err(bad()),
        }
    }
}

/// One captured frame.
#[derive(Debug, Clone)]
pub struct CapturedFrame {
    /// The pixels, upright.
    pub image: RgbImage,
    /// When the source wants the next frame shown (its own pace).
    pub interval: Duration,
}

/// Anything that yields frames.
pub trait FrameSource: Send {
    /// The next frame; `Err` when the camera is gone or never was.
    fn next_frame(&mut self) -> Result<CapturedFrame, CameraError>;
    /// A short description for the operator screen.
    fn describe(&self) -> String;
}

/// A video device as the system lists it (the shell fills it from V4L2 and sysfs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The system's index (`/dev/videoN`).
    pub index: u32,
    /// The driver's name for it.
    pub name: String,
    /// Whether it captures video (a UVC camera also lists metadata nodes that do not).
    pub captures_video: bool,
    /// Stable paths naming it (`/dev/v4l/by-id/...`, `/dev/v4l/by-path/...`).
    pub stable_ids: Vec<String>,
    /// USB `vendor:product` in hex, for USB cameras.
    pub usb_id: Option<String>,
}

/// Names of virtual cameras: software can feed them any video, the attack no on-screen
/// check sees.
const VIRTUAL_NAMES: [&str; 6] = [
    "virtual",
    "obs",
    "v4l2loopback",
    "dummy",
    "manycam",
    "snap camera",
];

impl DeviceInfo {
    /// Whether the device is a virtual camera (by its name or its stable ids).
    pub fn is_virtual(&self) -> bool {
        let name = self.name.to_lowercase();
        VIRTUAL_NAMES.iter().any(|v| name.contains(v))
            || self
                .stable_ids
                .iter()
                .any(|id| id.to_lowercase().contains("v4l2loopback"))
    }

    /// Whether `pinned` (a stable path or a USB `vendor:product`) names this device.
    pub fn matches(&self, pinned: &str) -> bool {
        let pinned = pinned.trim();
        self.stable_ids.iter().any(|id| id == pinned)
            || self
                .usb_id
                .as_deref()
                .is_some_and(|usb| usb.eq_ignore_ascii_case(pinned))
    }
}

/// The devices the kiosk may list: those that capture video.
pub fn video_devices(devices: &[DeviceInfo]) -> Vec<&DeviceInfo> {
    devices.iter().filter(|d| d.captures_video).collect()
}

/// The camera to open: the pinned one when `pinned` is set (any other camera is refused),
/// else `index` when given, else the first real camera. A virtual camera is always refused.
pub fn choose_device<'a>(
    devices: &'a [DeviceInfo],
    pinned: &str,
    index: Option<u32>,
) -> Result<&'a DeviceInfo, CameraError> {
    let video = video_devices(devices);
    if video.is_empty() {
        return Err(CameraError::NoCamera("no video capture device".into()));
    }
    let refuse_virtual = |d: &'a DeviceInfo| {
        if d.is_virtual() {
            Err(CameraError::Refused(format!(
                "{} is a virtual camera",
                d.name
            )))
        } else {
            Ok(d)
        }
    };
    if !pinned.trim().is_empty() {
        return match video.iter().find(|d| d.matches(pinned)) {
            Some(d) => refuse_virtual(d),
            None => Err(CameraError::Refused(format!(
                "the pinned camera {pinned} is not connected; found: {}",
                video
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        };
    }
    if let Some(index) = index {
        return match video.iter().find(|d| d.index == index) {
            Some(d) => refuse_virtual(d),
            None => Err(CameraError::NoCamera(format!("no webcam {index}"))),
        };
    }
    match video.iter().find(|d| !d.is_virtual()) {
        Some(d) => Ok(d),
        None => refuse_virtual(video[0]),
    }
}

/// How a camera encodes its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Motion JPEG: compressed on the camera, the full frame rate over USB 2.
    Mjpeg,
    /// Raw YUYV: USB 2 bandwidth limits it to a few frames per second at 720p.
    Yuyv,
    /// Anything else.
    Other,
}

/// One mode a camera offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Encoding.
    pub encoding: Encoding,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

/// Resolutions the kiosk wants, best first: enough for a face at arm's length, cheap to
/// preview and analyse.
const WANTED: [(u32, u32); 2] = [(640, 480), (1280, 720)];
/// The preview needs this frame rate.
pub const MIN_FPS: u32 = 25;

/// The mode to open: at least [`MIN_FPS`] when any mode has it, MJPEG before other
/// encodings, then the resolution nearest 640x480 or 1280x720, then the higher frame rate.
pub fn choose_mode(modes: &[Mode]) -> Option<Mode> {
    let distance = |m: &Mode| {
        WANTED
            .iter()
            .enumerate()
            .map(|(rank, (w, h))| {
                (u64::from(m.width.abs_diff(*w)) + u64::from(m.height.abs_diff(*h))) * 4
                    + rank as u64
            })
            .min()
            .unwrap_or(u64::MAX)
    };
    modes
        .iter()
        .filter(|m| m.width >= 320 && m.height >= 240)
        .min_by_key(|m| {
            (
                m.fps < MIN_FPS,
                m.encoding != Encoding::Mjpeg,
                m.encoding == Encoding::Other,
                distance(m),
                u32::MAX - m.fps.min(60),
            )
        })
        .copied()
}

/// Opens a file or video source. Webcams are opened by the shell, which owns the camera
/// library; here they are [`CameraError::NoCamera`].
pub fn open(spec: &CameraSpec) -> Result<Box<dyn FrameSource>, CameraError> {
    match spec {
        CameraSpec::Files(dir) => Ok(Box::new(FileSource::open(dir)?)),
        CameraSpec::Video(file) => Ok(Box::new(VideoSource::open(file)?)),
        CameraSpec::Watch(dir) => Ok(Box::new(WatchSource::open(dir)?)),
        CameraSpec::Webcam(_) => Err(CameraError::NoCamera(
            "webcams are opened by the kiosk shell".into(),
        )),
    }
}

/// Images of a folder, in name order, each held for [`FILE_HOLD`], looping.
#[derive(Debug)]
pub struct FileSource {
    dir: PathBuf,
    images: Vec<RgbImage>,
    shown: usize,
}

impl FileSource {
    /// Loads every JPEG/PNG/WebP/BMP in `dir` (a single image file works too).
    pub fn open(dir: &Path) -> Result<FileSource, CameraError> {
        let mut paths: Vec<PathBuf> = if dir.is_file() {
            vec![dir.to_path_buf()]
        } else {
            std::fs::read_dir(dir)
                .map_err(|e| CameraError::NoCamera(format!("{}: {e}", dir.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        matches!(
                            e.to_ascii_lowercase().as_str(),
                            "jpg" | "jpeg" | "png" | "webp" | "bmp"
                        )
                    })
                })
                .collect()
        };
        paths.sort();
        let images: Vec<RgbImage> = paths
            .iter()
            .filter_map(|p| image::open(p).ok().map(|i| i.to_rgb8()))
            .collect();
        if images.is_empty() {
            return Err(CameraError::NoCamera(format!(
                "no readable image in {}",
                dir.display()
            )));
        }
        Ok(FileSource {
            dir: dir.to_path_buf(),
            images,
            shown: 0,
        })
    }
}

impl FrameSource for FileSource {
    fn next_frame(&mut self) -> Result<CapturedFrame, CameraError> {
        let per_image = (FILE_HOLD.as_secs_f64() * FILE_FPS).round().max(1.0) as usize;
        let index = (self.shown / per_image) % self.images.len();
        self.shown = self.shown.wrapping_add(1);
        Ok(CapturedFrame {
            image: self.images[index].clone(),
            interval: Duration::from_secs_f64(1.0 / FILE_FPS),
        })
    }

    fn describe(&self) -> String {
        format!("file:{} ({} images)", self.dir.display(), self.images.len())
    }
}

/// The newest image (last by name) written into a folder, re-read when a newer one comes.
/// Writers put each frame in place atomically (write, then rename).
#[derive(Debug)]
pub struct WatchSource {
    dir: PathBuf,
    shown: Option<(PathBuf, RgbImage)>,
}

impl WatchSource {
    /// Watches `dir`; [`CameraError::NoCamera`] until it holds a readable image.
    pub fn open(dir: &Path) -> Result<WatchSource, CameraError> {
        let mut source = WatchSource {
            dir: dir.to_path_buf(),
            shown: None,
        };
        source.refresh();
        if source.shown.is_none() {
            return Err(CameraError::NoCamera(format!(
                "no image yet in {}",
                dir.display()
            )));
        }
        Ok(source)
    }

    fn refresh(&mut self) {
        let newest = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e, "png" | "jpg" | "jpeg" | "bmp"))
            })
            .max();
        let Some(newest) = newest else {
            return;
        };
        if self.shown.as_ref().is_some_and(|(p, _)| *p == newest) {
            return;
        }
        // A frame removed between the listing and the read is skipped: the next one comes.
        if let Ok(image) = image::open(&newest) {
            self.shown = Some((newest, image.to_rgb8()));
        }
    }
}

impl FrameSource for WatchSource {
    fn next_frame(&mut self) -> Result<CapturedFrame, CameraError> {
        self.refresh();
        let (_, image) = self
            .shown
            .as_ref()
            .ok_or_else(|| CameraError::Disconnected(format!("{} emptied", self.dir.display())))?;
        Ok(CapturedFrame {
            image: image.clone(),
            interval: Duration::from_secs_f64(1.0 / WATCH_FPS),
        })
    }

    fn describe(&self) -> String {
        format!("watch:{}", self.dir.display())
    }
}

/// A video file played at its own pace, looping. FFmpeg's decoder state may not cross
/// threads, so a decoding thread owns it and hands frames over a two-slot channel.
#[derive(Debug)]
pub struct VideoSource {
    path: PathBuf,
    codec: String,
    frames: std::sync::mpsc::Receiver<faceid_video::Frame>,
    last_at: f64,
}

/// Frames larger than this are refused (4K).
const MAX_PIXELS: u64 = 4096 * 2304;

impl VideoSource {
    /// Opens `path` (checked here, decoded on the source's own thread).
    pub fn open(path: &Path) -> Result<VideoSource, CameraError> {
        let no_camera =
            |e: faceid_video::VideoError| CameraError::NoCamera(format!("{}: {e}", path.display()));
        let codec = faceid_video::FrameStream::open(path, MAX_PIXELS)
            .map_err(no_camera)?
            .codec()
            .to_string();
        let (sender, frames) = std::sync::mpsc::sync_channel(2);
        let file = path.to_path_buf();
        std::thread::Builder::new()
            .name("faceid-video-source".into())
            .spawn(move || {
                // Loops over the clip until the receiver is dropped.
                while let Ok(mut stream) = faceid_video::FrameStream::open(&file, MAX_PIXELS) {
                    let mut sent = false;
                    while let Some(frame) = stream.next_frame() {
                        if sender.send(frame).is_err() {
                            return;
                        }
                        sent = true;
                    }
                    if !sent {
                        return;
                    }
                }
            })
            .map_err(|e| CameraError::NoCamera(e.to_string()))?;
        Ok(VideoSource {
            path: path.to_path_buf(),
            codec,
            frames,
            last_at: 0.0,
        })
    }
}

impl FrameSource for VideoSource {
    fn next_frame(&mut self) -> Result<CapturedFrame, CameraError> {
        let frame = self.frames.recv().map_err(|_| {
            CameraError::Disconnected(format!("{} stopped decoding", self.path.display()))
        })?;
        // A loop restarts the clock at 0.
        let step = if frame.at_secs > self.last_at {
            frame.at_secs - self.last_at
        } else {
            1.0 / 30.0
        };
        self.last_at = frame.at_secs;
        Ok(CapturedFrame {
            image: frame.image,
            interval: Duration::from_secs_f64(step.clamp(1.0 / 60.0, 0.2)),
        })
    }

    fn describe(&self) -> String {
        format!("video:{} ({})", self.path.display(), self.codec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            CameraSpec::parse("file:/tmp/x").unwrap(),
            CameraSpec::Files("/tmp/x".into())
        );
        assert_eq!(
            CameraSpec::parse("video:a.mp4").unwrap(),
            CameraSpec::Video("a.mp4".into())
        );
        assert_eq!(
            CameraSpec::parse("webcam").unwrap(),
            CameraSpec::Webcam(None)
        );
        assert_eq!(
            CameraSpec::parse("webcam:2").unwrap(),
            CameraSpec::Webcam(Some(2))
        );
        assert_eq!(
            CameraSpec::parse("watch:/tmp/frames").unwrap(),
            CameraSpec::Watch("/tmp/frames".into())
        );
        for bad in ["", "file:", "usb:1", "webcam:x", "video", "watch:"] {
            assert!(CameraSpec::parse(bad).is_err(), "{bad}");
        }
    }

    fn device(index: u32, name: &str, video: bool, by_id: &str, usb: &str) -> DeviceInfo {
        DeviceInfo {
            index,
            name: name.into(),
            captures_video: video,
            stable_ids: vec![by_id.into()],
            usb_id: Some(usb.into()),
        }
    }

    fn devices() -> Vec<DeviceInfo> {
        vec![
            device(
                0,
                "HD Webcam C615",
                true,
                "/dev/v4l/by-id/usb-046d_C615-video-index0",
                "046d:082c",
            ),
            device(
                1,
                "HD Webcam C615",
                false,
                "/dev/v4l/by-id/usb-046d_C615-video-index1",
                "046d:082c",
            ),
            device(
                2,
                "OBS Virtual Camera",
                true,
                "/dev/v4l/by-path/platform-v4l2loopback-000-video-index0",
                "0000:0000",
            ),
            device(
                4,
                "Integrated Camera",
                true,
                "/dev/v4l/by-id/usb-Chicony_Integrated-video-index0",
                "04f2:b6dd",
            ),
        ]
    }

    #[test]
    fn only_video_capture_devices_are_listed() {
        let all = devices();
        let listed: Vec<u32> = video_devices(&all).iter().map(|d| d.index).collect();
        assert_eq!(
            listed,
            [0, 2, 4],
            "the metadata node /dev/video1 is left out"
        );
        assert!(matches!(
            choose_device(&all[1..2], "", None),
            Err(CameraError::NoCamera(_))
        ));
    }

    #[test]
    fn virtual_cameras_are_refused() {
        let all = devices();
        assert!(all[2].is_virtual() && !all[0].is_virtual());
        assert!(matches!(
            choose_device(&all, "", Some(2)),
            Err(CameraError::Refused(_))
        ));
        let only_virtual = vec![all[2].clone()];
        let refused = choose_device(&only_virtual, "", None).unwrap_err();
        assert!(
            refused.to_string().contains("OBS Virtual Camera"),
            "{refused}"
        );
        let loopback = device(
            7,
            "Dummy video device (0x0000)",
            true,
            "/dev/v4l/by-path/platform-v4l2loopback-000",
            "",
        );
        assert!(loopback.is_virtual());
        // Without a pin or an index: the first real camera.
        assert_eq!(choose_device(&all, "", None).unwrap().index, 0);
    }

    #[test]
    fn a_pinned_camera_is_the_only_one_accepted() {
        let all = devices();
        let by_id = "/dev/v4l/by-id/usb-Chicony_Integrated-video-index0";
        assert_eq!(choose_device(&all, by_id, None).unwrap().index, 4);
        assert_eq!(choose_device(&all, "04F2:B6DD", None).unwrap().index, 4);
        // The pin wins over an index.
        assert_eq!(choose_device(&all, by_id, Some(0)).unwrap().index, 4);
        // Unplugged (or swapped for another camera): refused, the operator told why.
        let swapped = vec![all[0].clone()];
        let refused = choose_device(&swapped, by_id, None).unwrap_err();
        assert!(matches!(refused, CameraError::Refused(_)));
        assert!(refused.to_string().contains("not connected"), "{refused}");
        // A virtual camera cannot be pinned in.
        assert!(matches!(
            choose_device(&all, "0000:0000", None),
            Err(CameraError::Refused(_))
        ));
    }

    #[test]
    fn mjpeg_near_640x480_at_full_rate_is_chosen() {
        let mode = |encoding, width, height, fps| Mode {
            encoding,
            width,
            height,
            fps,
        };
        let usual = [
            mode(Encoding::Yuyv, 640, 480, 30),
            mode(Encoding::Yuyv, 1280, 720, 10),
            mode(Encoding::Mjpeg, 1920, 1080, 30),
            mode(Encoding::Mjpeg, 1280, 720, 30),
            mode(Encoding::Mjpeg, 640, 480, 30),
            mode(Encoding::Mjpeg, 320, 240, 30),
        ];
        assert_eq!(
            choose_mode(&usual),
            Some(mode(Encoding::Mjpeg, 640, 480, 30))
        );
        // No 640x480 in MJPEG: 720p MJPEG before raw 640x480.
        let no_vga = [
            mode(Encoding::Yuyv, 640, 480, 30),
            mode(Encoding::Mjpeg, 1280, 720, 30),
            mode(Encoding::Mjpeg, 1920, 1080, 30),
        ];
        assert_eq!(
            choose_mode(&no_vga),
            Some(mode(Encoding::Mjpeg, 1280, 720, 30))
        );
        // Raw only: the full frame rate first (720p raw runs at 10 fps over USB 2).
        let raw = [
            mode(Encoding::Yuyv, 1280, 720, 10),
            mode(Encoding::Yuyv, 800, 600, 30),
        ];
        assert_eq!(choose_mode(&raw), Some(mode(Encoding::Yuyv, 800, 600, 30)));
        // Tiny modes are never chosen; nothing usable is None.
        assert_eq!(choose_mode(&[mode(Encoding::Mjpeg, 160, 120, 30)]), None);
        assert_eq!(choose_mode(&[]), None);
    }

    #[test]
    fn an_empty_folder_is_no_camera() {
        let dir = std::env::temp_dir().join(format!("faceid-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(
            FileSource::open(&dir),
            Err(CameraError::NoCamera(_))
        ));
        let _ = std::fs::remove_dir(&dir);
    }
}
