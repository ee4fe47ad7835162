//! A selfie upload, video or still, turned into frames for the engine's sequence rules.
//!
//! Shared by every endpoint that takes "a video or a single image" (surfaces 1 and 4, the
//! native verify): the container is sniffed, videos go through `faceid-video`, stills through
//! the engine's image decoder, and the engine's [`Engine::analyze_sequence`] decides.

use faceid_core::{Engine, Image};
use faceid_video::{SamplingPlan, VideoError};

/// The frames of one upload.
#[derive(Debug)]
pub struct SelfieFrames {
    /// Upright frames (one for a still).
    pub images: Vec<Image>,
    /// Clip length for videos, `None` for a still.
    pub duration_secs: Option<f64>,
    /// Time of each frame from the start of the clip, in seconds (0 for a still).
    pub times_secs: Vec<f64>,
}

/// Why an upload gave no frames.
#[derive(Debug, thiserror::Error)]
pub enum SelfieError {
    /// The video could not be decoded.
    #[error(transparent)]
    Video(#[from] VideoError),
    /// The still image could not be decoded (or a frame was refused by the engine).
    #[error(transparent)]
    Engine(#[from] faceid_core::Error),
}

/// Decodes an upload: a video when it starts like one, otherwise a still image.
pub fn frames(
    engine: &Engine,
    bytes: &[u8],
    plan: &SamplingPlan,
) -> Result<SelfieFrames, SelfieError> {
    if !faceid_video::looks_like_video(bytes) {
        return Ok(SelfieFrames {
            images: vec![engine.decode(bytes)?],
            duration_secs: None,
            times_secs: vec![0.0],
        });
    }
    let clip = faceid_video::decode(bytes, plan)?;
    let times_secs = clip.frames.iter().map(|f| f.at_secs).collect();
    let images = clip
        .frames
        .into_iter()
        .map(|f| {
            let (width, height) = f.image.dimensions();
            Image::from_rgb(width, height, f.image.into_raw())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SelfieFrames {
        images,
        duration_secs: Some(clip.duration_secs),
        times_secs,
    })
}
