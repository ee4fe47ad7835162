//! Webcams through nokhwa (V4L2 on Linux). Which device and which mode are the kiosk core's
//! rules ([`faceid_kiosk_core::camera::choose_device`], [`choose_mode`]); this module only
//! asks the system: the video nodes with their capabilities (V4L2) and stable names
//! (`/dev/v4l/by-id`, `/dev/v4l/by-path`, the USB vendor:product from sysfs), then opens the
//! chosen camera in the chosen mode. The camera is read on its own thread (the driver handle
//! stays there) and frames cross over a two-slot channel; the capture loop's watchdog and
//! reopening handle a camera that hangs or is unplugged, and each opening lists the devices
//! again, so a camera plugged back in under another `/dev/videoN` is found by its pin.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use faceid_kiosk_core::camera::{
    CameraError, CapturedFrame, DeviceInfo, Encoding, FrameSource, Mode, choose_device, choose_mode,
};
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType};

/// Every `/dev/videoN` node with what the kiosk needs to know about it.
pub fn devices() -> Vec<DeviceInfo> {
    let Ok(entries) = std::fs::read_dir("/sys/class/video4linux") else {
        return Vec::new();
    };
    let stable = stable_names();
    let mut devices: Vec<DeviceInfo> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let node = e.file_name().to_string_lossy().to_string();
            let index: u32 = node.strip_prefix("video")?.parse().ok()?;
            let sys = e.path();
            let name = std::fs::read_to_string(sys.join("name"))
                .map(|n| n.trim().to_string())
                .unwrap_or_else(|_| node.clone());
            let dev = PathBuf::from("/dev").join(&node);
            let stable_ids = stable
                .iter()
                .filter(|(_, target)| *target == dev)
                .map(|(link, _)| link.display().to_string())
                .collect();
            Some(DeviceInfo {
                index,
                name,
                captures_video: captures_video(&dev),
                stable_ids,
                usb_id: usb_id(&sys),
            })
        })
        .collect();
    devices.sort_by_key(|d| d.index);
    devices
}

/// The video capture devices, as (index, name): what the operator screen and the demo
/// fallback look at.
pub fn list() -> Vec<(u32, String)> {
    devices()
        .into_iter()
        .filter(|d| d.captures_video)
        .map(|d| (d.index, d.name))
        .collect()
}

/// `/dev/v4l/by-id` and `/dev/v4l/by-path` links with the node each points to.
fn stable_names() -> Vec<(PathBuf, PathBuf)> {
    ["/dev/v4l/by-id", "/dev/v4l/by-path"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let link = e.path();
            let target = std::fs::canonicalize(&link).ok()?;
            Some((link, target))
        })
        .collect()
}

/// Whether the node captures video (its own V4L2 capabilities: a UVC camera's metadata
/// node does not).
fn captures_video(dev: &Path) -> bool {
    let Ok(device) = v4l::Device::with_path(dev) else {
        return false;
    };
    // v4l decodes the driver's strings with `unwrap`: a driver's bad name must not take
    // the kiosk down.
    std::panic::catch_unwind(|| device.query_caps())
        .ok()
        .and_then(Result::ok)
        .is_some_and(|caps| {
            caps.capabilities
                .contains(v4l::capability::Flags::VIDEO_CAPTURE)
        })
}

/// The USB vendor:product of a video node, from sysfs (the node's device is a USB
/// interface whose parent is the USB device).
fn usb_id(sys: &Path) -> Option<String> {
    let interface = std::fs::canonicalize(sys.join("device")).ok()?;
    let usb = interface.parent()?;
    let read = |f: &str| {
        std::fs::read_to_string(usb.join(f))
            .ok()
            .map(|s| s.trim().to_lowercase())
    };
    Some(format!("{}:{}", read("idVendor")?, read("idProduct")?))
}

/// A webcam being read on its own thread.
#[derive(Debug)]
pub struct Webcam {
    name: String,
    mode: String,
    frames: mpsc::Receiver<Result<image::RgbImage, CameraError>>,
}

fn classify(message: String) -> CameraError {
    let lower = message.to_lowercase();
    if lower.contains("busy") || lower.contains("resource") {
        CameraError::Busy(message)
    } else {
        CameraError::NoCamera(message)
    }
}

fn mode_of(format: &CameraFormat) -> Mode {
    Mode {
        encoding: match format.format() {
            FrameFormat::MJPEG => Encoding::Mjpeg,
            FrameFormat::YUYV => Encoding::Yuyv,
            _ => Encoding::Other,
        },
        width: format.width(),
        height: format.height(),
        fps: format.frame_rate(),
    }
}

/// Opens the webcam the settings allow: `pinned` (a stable id, or empty), `index` when
/// the camera spec names one. Virtual and unpinned cameras are refused.
pub fn open(index: Option<u32>, pinned: &str) -> Result<Box<dyn FrameSource>, CameraError> {
    let devices = devices();
    let device = choose_device(&devices, pinned, index)?.clone();
    let (opened_tx, opened_rx) = mpsc::channel::<Result<String, CameraError>>();
    let (frames_tx, frames) = mpsc::sync_channel(2);
    std::thread::Builder::new()
        .name("faceid-webcam".into())
        .spawn(move || {
            let any = RequestedFormat::new::<RgbFormat>(RequestedFormatType::None);
            let opened = nokhwa::Camera::new(CameraIndex::Index(device.index), any).and_then(
                |mut camera| {
                    let formats = camera.compatible_camera_formats().unwrap_or_default();
                    let modes: Vec<(Mode, CameraFormat)> =
                        formats.iter().map(|f| (mode_of(f), *f)).collect();
                    let chosen = choose_mode(&modes.iter().map(|m| m.0).collect::<Vec<_>>());
                    if let Some(format) = chosen
                        .and_then(|c| modes.iter().find(|(m, _)| *m == c))
                        .map(|(_, f)| *f)
                    {
                        camera.set_camera_requset(RequestedFormat::new::<RgbFormat>(
                            RequestedFormatType::Exact(format),
                        ))?;
                    }
                    camera.open_stream()?;
                    Ok(camera)
                },
            );
            let mut camera = match opened {
                Ok(camera) => camera,
                Err(e) => {
                    let _ = opened_tx.send(Err(classify(e.to_string())));
                    return;
                }
            };
            let _ = opened_tx.send(Ok(camera.camera_format().to_string()));
            loop {
                let frame = camera
                    .frame()
                    .and_then(|buffer| buffer.decode_image::<RgbFormat>())
                    .map_err(|e| CameraError::Disconnected(e.to_string()));
                let failed = frame.is_err();
                if frames_tx.send(frame).is_err() || failed {
                    let _ = camera.stop_stream();
                    return;
                }
            }
        })
        .map_err(|e| CameraError::NoCamera(e.to_string()))?;
    let mode = opened_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| CameraError::NoCamera("the webcam did not answer".into()))??;
    tracing::info!(camera = %device.name, %mode, "webcam opened");
    Ok(Box::new(Webcam {
        name: device.name,
        mode,
        frames,
    }))
}

impl FrameSource for Webcam {
    fn next_frame(&mut self) -> Result<CapturedFrame, CameraError> {
        let image = self
            .frames
            .recv()
            .map_err(|_| CameraError::Disconnected(format!("{} stopped", self.name)))??;
        Ok(CapturedFrame {
            image,
            // The camera paces itself: read as fast as it delivers.
            interval: Duration::ZERO,
        })
    }

    fn describe(&self) -> String {
        format!("webcam: {} ({})", self.name, self.mode)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// With `FACEID_TEST_CAMERA` naming a device (`/dev/v4l/by-id/...`, `vendor:product`,
    /// or an index), the real camera opens in the chosen mode and delivers frames.
    #[test]
    fn a_real_camera_when_one_is_named() {
        let Ok(named) = std::env::var("FACEID_TEST_CAMERA") else {
            println!("FACEID_TEST_CAMERA is not set: the real-camera test is skipped");
            return;
        };
        let (index, pinned) = match named.parse::<u32>() {
            Ok(i) => (Some(i), String::new()),
            Err(_) => (None, named.clone()),
        };
        let mut camera = open(index, &pinned).unwrap();
        println!("{}", camera.describe());
        for _ in 0..10 {
            let frame = camera.next_frame().unwrap();
            assert!(frame.image.width() >= 320, "{}", frame.image.width());
        }
    }

    /// The system's list never holds a node that cannot capture video.
    #[test]
    fn the_system_list_holds_video_capture_devices_only() {
        let all = devices();
        println!("video nodes: {all:?}");
        assert_eq!(
            list().len(),
            all.iter().filter(|d| d.captures_video).count()
        );
    }
}
