//! Webcams through nokhwa (V4L2 on Linux). The camera is opened and read on its own thread
//! (the driver handle stays there) and frames cross over a two-slot channel, like the video
//! source; the capture loop reopens it when it disappears.

use std::sync::mpsc;
use std::time::Duration;

use faceid_kiosk_core::camera::{CameraError, CapturedFrame, FrameSource};
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{ApiBackend, CameraIndex, RequestedFormat, RequestedFormatType};

/// The webcams the system lists, as (index, name).
pub fn list() -> Vec<(u32, String)> {
    nokhwa::query(ApiBackend::Auto)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|info| match info.index() {
            CameraIndex::Index(i) => Some((*i, info.human_name())),
            CameraIndex::String(_) => None,
        })
        .collect()
}

/// A webcam being read on its own thread.
#[derive(Debug)]
pub struct Webcam {
    name: String,
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

/// Opens webcam `index`.
pub fn open(index: u32) -> Result<Box<dyn FrameSource>, CameraError> {
    let name = list()
        .into_iter()
        .find(|(i, _)| *i == index)
        .map(|(_, name)| name)
        .ok_or_else(|| CameraError::NoCamera(format!("no webcam {index}")))?;
    let (opened_tx, opened_rx) = mpsc::channel::<Result<(), CameraError>>();
    let (frames_tx, frames) = mpsc::sync_channel(2);
    std::thread::Builder::new()
        .name("faceid-webcam".into())
        .spawn(move || {
            let format =
                RequestedFormat::new::<RgbFormat>(RequestedFormatType::AbsoluteHighestFrameRate);
            let mut camera = match nokhwa::Camera::new(CameraIndex::Index(index), format)
                .and_then(|mut c| c.open_stream().map(|()| c))
            {
                Ok(camera) => camera,
                Err(e) => {
                    let _ = opened_tx.send(Err(classify(e.to_string())));
                    return;
                }
            };
            let _ = opened_tx.send(Ok(()));
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
    opened_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| CameraError::NoCamera("the webcam did not answer".into()))??;
    Ok(Box::new(Webcam { name, frames }))
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
        format!("webcam: {}", self.name)
    }
}
