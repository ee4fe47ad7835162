//! Frame sources: what the kiosk's camera loop reads from.
//!
//! A source is named by a spec string (`--camera`, the operator settings):
//! - `file:DIR`: the images in `DIR` in name order, each held for [`FILE_HOLD`], then the
//!   next, looping: a scanner folder, a demo, a test;
//! - `video:FILE`: a recorded clip (MP4/MOV/WebM) played at its own pace, looping;
//! - `webcam` / `webcam:N`: a real camera, when the shell is built with one (the Tauri shell
//!   opens it with nokhwa and feeds frames through [`FrameSource`] too).

use std::path::{Path, PathBuf};
use std::time::Duration;

use image::RgbImage;

/// How long a `file:` source shows each image.
pub const FILE_HOLD: Duration = Duration::from_secs(2);
/// Preview rate of a `file:` source.
const FILE_FPS: f64 = 25.0;

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
    /// The spec is not `file:DIR`, `video:FILE` or `webcam[:N]`.
    #[error("unknown camera spec {0:?}: use file:DIR, video:FILE or webcam[:N]")]
    BadSpec(String),
}

/// What a camera spec names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraSpec {
    /// Images in a folder.
    Files(PathBuf),
    /// A video file.
    Video(PathBuf),
    /// A webcam by index.
    Webcam(u32),
}

impl CameraSpec {
    /// Parses `file:DIR`, `video:FILE`, `webcam` or `webcam:N`.
    pub fn parse(spec: &str) -> Result<CameraSpec, CameraError> {
        let bad = || CameraError::BadSpec(spec.to_string());
        match spec.split_once(':') {
            Some(("file", dir)) if !dir.is_empty() => Ok(CameraSpec::Files(dir.into())),
            Some(("video", file)) if !file.is_empty() => Ok(CameraSpec::Video(file.into())),
            Some(("webcam", n)) => n.parse().map(CameraSpec::Webcam).map_err(|_| bad()),
            None if spec == "webcam" => Ok(CameraSpec::Webcam(0)),
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

/// Opens a file or video source. Webcams are opened by the shell, which owns the camera
/// library; here they are [`CameraError::NoCamera`].
pub fn open(spec: &CameraSpec) -> Result<Box<dyn FrameSource>, CameraError> {
    match spec {
        CameraSpec::Files(dir) => Ok(Box::new(FileSource::open(dir)?)),
        CameraSpec::Video(file) => Ok(Box::new(VideoSource::open(file)?)),
        CameraSpec::Webcam(n) => Err(CameraError::NoCamera(format!(
            "webcam {n} is not available in this build"
        ))),
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
        assert_eq!(CameraSpec::parse("webcam").unwrap(), CameraSpec::Webcam(0));
        assert_eq!(
            CameraSpec::parse("webcam:2").unwrap(),
            CameraSpec::Webcam(2)
        );
        for bad in ["", "file:", "usb:1", "webcam:x", "video"] {
            assert!(CameraSpec::parse(bad).is_err(), "{bad}");
        }
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
