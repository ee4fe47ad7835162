//! A selfie upload, video or still, turned into frames for the engine's sequence rules.
//!
//! Shared by every endpoint that takes "a video or a single image" (surfaces 1 and 4, the
//! native verify): the container is sniffed, videos go through `faceid-video`, stills through
//! the engine's image decoder, and the engine's [`Engine::analyze_sequence`] decides.

use base64::Engine as _;
use faceid_core::geometry::BoundingBox;
use faceid_core::{Engine, Image};

use crate::problem::Problem;
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

/// Decodes base64 media (standard alphabet, optional `data:...;base64,` prefix): 413 when
/// it would exceed `max_bytes` (checked before decoding), 400 when it is not base64.
pub fn base64_media(text: &str, max_bytes: usize) -> Result<Vec<u8>, Problem> {
    let data = text.split_once(";base64,").map_or(text, |(_, d)| d).trim();
    if data.len() / 4 * 3 > max_bytes + 3 {
        return Err(Problem::too_large());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| Problem::bad_request(["INVALID_BASE64"]))?;
    if bytes.len() > max_bytes {
        return Err(Problem::too_large());
    }
    Ok(bytes)
}

/// `image`, or the part of it inside `crop`, as base64 JPEG (quality 90).
pub fn jpeg_base64(image: &Image, crop: Option<&BoundingBox>) -> Option<String> {
    let full = image::RgbImage::from_raw(image.width(), image.height(), image.rgb().to_vec())?;
    let view = match crop {
        Some(b) => {
            let (x, y) = (b.x1.max(0.0) as u32, b.y1.max(0.0) as u32);
            let w = (b.width() as u32).min(image.width().saturating_sub(x));
            let h = (b.height() as u32).min(image.height().saturating_sub(y));
            if w == 0 || h == 0 {
                return None;
            }
            image::imageops::crop_imm(&full, x, y, w, h).to_image()
        }
        None => full,
    };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&view)
        .ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(out))
}
