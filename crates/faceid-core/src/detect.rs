//! Stage 2: [`Image`] -> [`Detection`]s (boxes and confidences), largest first.
//!
//! The detector (Ultra-Light RFB-320 family) sees a 320x240 picture. We letterbox rather
//! than stretch so faces keep their shape, and when nothing is found we pad the picture
//! with a black border and look again: the network's anchors stop at about 256 px of 320,
//! so a face that fills the frame (an ID-photo crop, an aligned 112x112 crop, a 92x112
//! portrait) is only found once it is surrounded by background.

use serde::Serialize;

use crate::error::Result;
use crate::geometry::{BoundingBox, nms};
use crate::image::Image;
use crate::models::{Channels, InputSpec, ModelSource, OnnxModel, Scale};
use crate::sampling::Resample;

const INPUT_W: u32 = 320;
const INPUT_H: u32 = 240;
const NMS_IOU: f32 = 0.4;
/// Border added on every side, as a fraction of the image's larger side, for the fallback.
const FALLBACK_PAD: f32 = 0.3;

/// A face found by the detector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Detection {
    /// Face box in image pixels (may extend slightly past the edges).
    pub bbox: BoundingBox,
    /// Detector confidence, 0..1.
    pub score: f32,
}

/// The face detector.
#[derive(Debug)]
pub(crate) struct Detector {
    model: OnnxModel,
}

impl Detector {
    pub(crate) const FILE: &'static str = "fr_detect.onnx";

    /// 320x240, (v-127)/128, RGB (BGR measured no better).
    const INPUT: InputSpec = InputSpec {
        width: INPUT_W,
        height: INPUT_H,
        channels: Channels::Rgb,
        resample: Resample::Area,
        scale: Scale::Centered,
    };

    pub(crate) fn load(source: &ModelSource) -> Result<Detector> {
        Ok(Detector {
            model: source.open(Self::FILE, Self::INPUT)?,
        })
    }

    /// Every face scoring at least `threshold`, largest first; pads and retries when the
    /// plain pass finds nothing.
    pub(crate) fn detect(&self, image: &Image, threshold: f32) -> Result<Vec<Detection>> {
        let (w, h) = (image.width() as f32, image.height() as f32);
        let mut found = self.detect_in(
            image,
            letterbox(BoundingBox::new(0.0, 0.0, w, h)),
            threshold,
        )?;
        if found.is_empty() {
            let pad = FALLBACK_PAD * w.max(h);
            let padded = BoundingBox::new(-pad, -pad, w + pad, h + pad);
            found = self.detect_in(image, letterbox(padded), threshold)?;
        }
        Ok(found)
    }

    /// Runs the network on `region` of `image` (4:3, may extend past the image).
    fn detect_in(
        &self,
        image: &Image,
        region: BoundingBox,
        threshold: f32,
    ) -> Result<Vec<Detection>> {
        let out = self.model.infer(image, region, &["scores", "boxes"])?;
        let (scores, boxes) = (&out[0], &out[1]);
        let mut candidates = Vec::new();
        for (i, s) in scores.chunks_exact(2).enumerate() {
            let score = s[1];
            if score < threshold || !score.is_finite() {
                continue;
            }
            let b = &boxes[i * 4..i * 4 + 4];
            let bbox = BoundingBox::new(
                region.x1 + b[0] * region.width(),
                region.y1 + b[1] * region.height(),
                region.x1 + b[2] * region.width(),
                region.y1 + b[3] * region.height(),
            );
            if bbox.width() >= 2.0 && bbox.height() >= 2.0 {
                candidates.push((bbox, score));
            }
        }
        let mut kept: Vec<Detection> = nms(candidates, NMS_IOU)
            .into_iter()
            .map(|(bbox, score)| Detection { bbox, score })
            .collect();
        kept.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        Ok(kept)
    }
}

/// The smallest 4:3 region centred on `region` that contains it.
fn letterbox(region: BoundingBox) -> BoundingBox {
    let (w, h) = (region.width(), region.height());
    let target = INPUT_W as f32 / INPUT_H as f32;
    let (nw, nh) = if w / h > target {
        (w, w / target)
    } else {
        (h * target, h)
    };
    let c = region.center();
    BoundingBox::new(
        c.x - nw / 2.0,
        c.y - nh / 2.0,
        c.x + nw / 2.0,
        c.y + nh / 2.0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_keeps_the_region_and_makes_it_four_by_three() {
        for (w, h) in [
            (640.0, 480.0),
            (480.0, 640.0),
            (112.0, 112.0),
            (1000.0, 200.0),
        ] {
            let r = letterbox(BoundingBox::new(0.0, 0.0, w, h));
            assert!((r.width() / r.height() - 4.0 / 3.0).abs() < 1e-4);
            assert!(r.x1 <= 0.0 && r.y1 <= 0.0 && r.x2 >= w && r.y2 >= h);
        }
    }
}
