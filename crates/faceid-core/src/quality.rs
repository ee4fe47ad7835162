//! Stage 5 (beside embedding): per-face quality in the spirit of ISO/IEC 29794-5. Each
//! measure carries its value and whether it passes the configured limit; the first failure,
//! in a fixed order, becomes the stable error code the kiosk turns into guidance.

use serde::Serialize;

use crate::align::AlignedFace;
use crate::config::QualityLimits;
use crate::error::{Error, Result};
use crate::geometry::{BoundingBox, Point};
use crate::image::Image;
use crate::landmarks::Face;
use crate::models::{Channels, InputSpec, ModelSource, OnnxModel, Scale};
use crate::sampling::Resample;
use crate::sampling::luma;

/// One measured value and whether it is within its limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Measure {
    /// The measured value (unit in the field name).
    pub value: f32,
    /// Whether the value is within the configured limit.
    pub passed: bool,
}

/// Quality of one face.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quality {
    /// Distance between eye centres in pixels of the original image.
    pub inter_eye_px: Measure,
    /// Face box width in pixels.
    pub face_width_px: f32,
    /// Head yaw (left/right turn), degrees.
    pub yaw_deg: Measure,
    /// Head pitch (up/down), degrees.
    pub pitch_deg: Measure,
    /// Head roll (tilt), degrees.
    pub roll_deg: Measure,
    /// Probability the image-left eye is open.
    pub left_eye_open: Measure,
    /// Probability the image-right eye is open.
    pub right_eye_open: Measure,
    /// Sharpness 0..1 (Laplacian energy of the aligned face, `v / (v + 100)`).
    pub sharpness: Measure,
    /// Mean brightness of the face 0..1.
    pub exposure: Measure,
    /// RMS contrast of the face 0..1.
    pub contrast: Measure,
    /// Left/right illumination balance 0..1 (1 = even).
    pub uniformity: Measure,
    /// How suitable the face is for recognition and liveness, 0..1: the mean of one 0..1
    /// score per measure, each reaching 0.5 at its limit (see `assess`).
    pub overall: f32,
}

impl Quality {
    /// Whether every measure passes.
    pub fn passed(&self) -> bool {
        self.first_failure().is_none()
    }

    /// The first failing measure as an error, in the order a person can act on:
    /// size, pose, eyes, light, contrast, sharpness.
    pub fn first_failure(&self) -> Option<Error> {
        if !self.inter_eye_px.passed {
            return Some(Error::FaceTooSmall {
                ied_px: self.inter_eye_px.value,
            });
        }
        if !(self.yaw_deg.passed && self.pitch_deg.passed && self.roll_deg.passed) {
            return Some(Error::BadPose {
                yaw_deg: self.yaw_deg.value,
                pitch_deg: self.pitch_deg.value,
                roll_deg: self.roll_deg.value,
            });
        }
        if !(self.left_eye_open.passed && self.right_eye_open.passed) {
            return Some(Error::EyesClosed);
        }
        if !self.exposure.passed {
            let exposure = self.exposure.value;
            return Some(if exposure < 0.5 {
                Error::TooDark { exposure }
            } else {
                Error::TooBright { exposure }
            });
        }
        if !self.uniformity.passed {
            return Some(Error::UnevenLighting {
                uniformity: self.uniformity.value,
            });
        }
        if !self.contrast.passed {
            return Some(Error::LowContrast {
                contrast: self.contrast.value,
            });
        }
        if !self.sharpness.passed {
            return Some(Error::TooBlurry {
                sharpness: self.sharpness.value,
            });
        }
        None
    }
}

/// Head pose network (66 bins per angle, 3 degrees each).
#[derive(Debug)]
pub(crate) struct PoseModel {
    model: OnnxModel,
}

/// Eye open/closed network.
#[derive(Debug)]
pub(crate) struct EyeModel {
    model: OnnxModel,
}

const POSE_SIDE: u32 = 224;
const EYE_SIDE: u32 = 24;
/// Index of the "open" class in the eye network's two outputs.
const EYE_OPEN_CLASS: usize = 1;

impl PoseModel {
    pub(crate) const FILE: &'static str = "fr_pose.onnx";

    /// 224x224, ImageNet statistics, RGB.
    const INPUT: InputSpec = InputSpec {
        width: POSE_SIDE,
        height: POSE_SIDE,
        channels: Channels::Rgb,
        resample: Resample::Area,
        scale: Scale::ImageNet,
    };

    pub(crate) fn load(source: &ModelSource, threads: usize) -> Result<PoseModel> {
        Ok(PoseModel {
            model: source.open_with_threads(Self::FILE, Self::INPUT, threads)?,
        })
    }

    /// (yaw, pitch, roll) in degrees. The crop is the box grown by a quarter on each side.
    pub(crate) fn estimate(&self, image: &Image, bbox: BoundingBox) -> Result<(f32, f32, f32)> {
        let (w, h) = (bbox.width(), bbox.height());
        let region = BoundingBox::new(
            bbox.x1 - w / 4.0,
            bbox.y1 - h / 4.0,
            bbox.x2 + w / 4.0,
            bbox.y2 + h / 4.0,
        )
        .clipped(image.width() as f32, image.height() as f32);
        let out = self.model.infer(image, region, &["output", "617", "618"])?;
        let angle = |bins: &[f32]| expectation(bins) * 3.0 - 99.0;
        Ok((angle(&out[0]), angle(&out[1]), angle(&out[2])))
    }
}

impl EyeModel {
    pub(crate) const FILE: &'static str = "fr_eye.onnx";

    /// 24x24 luma, v/255.
    const INPUT: InputSpec = InputSpec {
        width: EYE_SIDE,
        height: EYE_SIDE,
        channels: Channels::Gray,
        resample: Resample::Area,
        scale: Scale::Unit,
    };

    pub(crate) fn load(source: &ModelSource, threads: usize) -> Result<EyeModel> {
        Ok(EyeModel {
            model: source.open_with_threads(Self::FILE, Self::INPUT, threads)?,
        })
    }

    /// Probability that each eye (image-left, image-right) is open.
    pub(crate) fn open_probabilities(&self, image: &Image, face: &Face) -> Result<(f32, f32)> {
        let p = face.landmarks.points();
        let left = self.open_probability(image, &p[36..42])?;
        let right = self.open_probability(image, &p[42..48])?;
        Ok((left, right))
    }

    fn open_probability(&self, image: &Image, eye: &[Point]) -> Result<f32> {
        // Centre from the four lid points, size from the corners, as the network was trained.
        let center = Point::mean(&[eye[1], eye[2], eye[4], eye[5]]);
        let half = ((eye[3].x - eye[0].x).abs() * 1.6 / 2.0).max(2.0);
        let region = BoundingBox::new(
            center.x - half,
            center.y - half,
            center.x + half,
            center.y + half,
        );
        let out = self.model.infer(image, region, &["output"])?;
        Ok(softmax(&out[0]).get(EYE_OPEN_CLASS).copied().unwrap_or(0.0))
    }
}

/// Image measures on the aligned crop (fixed geometry, so limits mean the same for every
/// face): exposure, contrast, uniformity and sharpness over the central face region.
pub(crate) fn photometric(aligned: &AlignedFace) -> (f32, f32, f32, f32) {
    let gray = luma(aligned.image().rgb());
    let side = aligned.image().width() as usize;
    // Central region of the template: eyes to mouth, cheek to cheek.
    let (x0, x1, y0, y1) = (24usize, 88usize, 36usize, 100usize);
    let mut sum = 0f64;
    let mut sum_sq = 0f64;
    let (mut left, mut right) = (0f64, 0f64);
    let mut n = 0f64;
    for y in y0..y1 {
        for x in x0..x1 {
            let v = f64::from(gray[y * side + x]);
            sum += v;
            sum_sq += v * v;
            n += 1.0;
            if x < side / 2 { left += v } else { right += v }
        }
    }
    let mean = sum / n;
    let exposure = (mean / 255.0) as f32;
    let contrast = ((sum_sq / n - mean * mean).max(0.0).sqrt() / 255.0) as f32;
    let uniformity = if left.max(right) > 0.0 {
        (left.min(right) / left.max(right)) as f32
    } else {
        0.0
    };
    let mut lap_sum = 0f64;
    let mut lap_sq = 0f64;
    let mut m = 0f64;
    for y in y0.max(1)..y1.min(side - 1) {
        for x in x0.max(1)..x1.min(side - 1) {
            let c = f64::from(gray[y * side + x]);
            let l = f64::from(gray[y * side + x - 1])
                + f64::from(gray[y * side + x + 1])
                + f64::from(gray[(y - 1) * side + x])
                + f64::from(gray[(y + 1) * side + x])
                - 4.0 * c;
            lap_sum += l;
            lap_sq += l * l;
            m += 1.0;
        }
    }
    let lap_var = (lap_sq / m - (lap_sum / m).powi(2)).max(0.0);
    let sharpness = (lap_var / (lap_var + 100.0)) as f32;
    (exposure, contrast, uniformity, sharpness)
}

/// Assembles a [`Quality`] from the measured values and the limits.
pub(crate) fn assess(
    face: &Face,
    pose: (f32, f32, f32),
    eyes: (f32, f32),
    photometric: (f32, f32, f32, f32),
    limits: &QualityLimits,
) -> Quality {
    let (yaw, pitch, roll) = pose;
    let (exposure, contrast, uniformity, sharpness) = photometric;
    let ied = face.landmarks.inter_eye_distance();
    let m = |value: f32, passed: bool| Measure { value, passed };
    // Per-measure suitability in 0..1, 0.5 exactly at the limit.
    let ratio = |value: f32, limit: f32| (value / (2.0 * limit).max(1e-6)).clamp(0.0, 1.0);
    let within =
        |value: f32, limit: f32| (1.0 - value.abs() / (2.0 * limit).max(1e-6)).clamp(0.0, 1.0);
    let (lo, hi) = limits.exposure_range;
    let exposure_score = if exposure < lo {
        0.5 * exposure / lo.max(1e-6)
    } else if exposure > hi {
        0.5 * (1.0 - exposure) / (1.0 - hi).max(1e-6)
    } else {
        1.0
    };
    let scores = [
        ratio(ied, limits.min_inter_eye_px),
        within(yaw, limits.max_yaw_deg)
            .min(within(pitch, limits.max_pitch_deg))
            .min(within(roll, limits.max_roll_deg)),
        eyes.0.min(eyes.1),
        exposure_score.clamp(0.0, 1.0),
        ratio(contrast, limits.min_contrast),
        ratio(uniformity, limits.min_uniformity),
        ratio(sharpness, limits.min_sharpness),
    ];
    let overall = scores.iter().sum::<f32>() / scores.len() as f32;
    Quality {
        overall,
        inter_eye_px: m(ied, ied >= limits.min_inter_eye_px),
        face_width_px: face.bbox.width(),
        yaw_deg: m(yaw, yaw.abs() <= limits.max_yaw_deg),
        pitch_deg: m(pitch, pitch.abs() <= limits.max_pitch_deg),
        roll_deg: m(roll, roll.abs() <= limits.max_roll_deg),
        left_eye_open: m(eyes.0, eyes.0 >= limits.min_eye_open),
        right_eye_open: m(eyes.1, eyes.1 >= limits.min_eye_open),
        sharpness: m(sharpness, sharpness >= limits.min_sharpness),
        exposure: m(
            exposure,
            (limits.exposure_range.0..=limits.exposure_range.1).contains(&exposure),
        ),
        contrast: m(contrast, contrast >= limits.min_contrast),
        uniformity: m(uniformity, uniformity >= limits.min_uniformity),
    }
}

/// Numerically stable softmax.
pub(crate) fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::MIN, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|e| e / sum.max(1e-30)).collect()
}

/// Softmax expectation of the bin index.
fn expectation(logits: &[f32]) -> f32 {
    softmax(logits)
        .iter()
        .enumerate()
        .map(|(i, p)| i as f32 * p)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_expectation_of_a_peak_is_its_index() {
        let p = softmax(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let mut bins = vec![-50.0; 66];
        bins[33] = 50.0;
        assert!(
            (expectation(&bins) * 3.0 - 99.0).abs() < 1e-3,
            "bin 33 is 0 degrees"
        );
    }

    fn aligned(f: impl Fn(usize, usize) -> u8) -> AlignedFace {
        let mut rgb = Vec::new();
        for y in 0..112 {
            for x in 0..112 {
                let v = f(x, y);
                rgb.extend_from_slice(&[v, v, v]);
            }
        }
        crate::align::AlignedFace::from_image(Image::from_rgb(112, 112, rgb).unwrap())
    }

    fn passing() -> Quality {
        let ok = |value| Measure {
            value,
            passed: true,
        };
        Quality {
            inter_eye_px: ok(60.0),
            face_width_px: 150.0,
            yaw_deg: ok(0.0),
            pitch_deg: ok(0.0),
            roll_deg: ok(0.0),
            left_eye_open: ok(1.0),
            right_eye_open: ok(1.0),
            sharpness: ok(0.8),
            exposure: ok(0.5),
            contrast: ok(0.2),
            uniformity: ok(0.9),
            overall: 0.9,
        }
    }

    #[test]
    fn every_quality_failure_has_its_code_in_a_fixed_order() {
        use crate::ErrorCode as C;
        assert!(passing().first_failure().is_none() && passing().passed());
        let fail = |edit: &dyn Fn(&mut Quality)| {
            let mut q = passing();
            edit(&mut q);
            q.first_failure().map(|e| e.code())
        };
        assert_eq!(
            fail(&|q| q.inter_eye_px.passed = false),
            Some(C::FaceTooSmall)
        );
        assert_eq!(fail(&|q| q.roll_deg.passed = false), Some(C::BadPose));
        assert_eq!(
            fail(&|q| q.right_eye_open.passed = false),
            Some(C::EyesClosed)
        );
        assert_eq!(
            fail(&|q| q.exposure = Measure {
                value: 0.1,
                passed: false
            }),
            Some(C::TooDark)
        );
        assert_eq!(
            fail(&|q| q.exposure = Measure {
                value: 0.95,
                passed: false
            }),
            Some(C::TooBright)
        );
        assert_eq!(
            fail(&|q| q.uniformity.passed = false),
            Some(C::UnevenLighting)
        );
        assert_eq!(fail(&|q| q.contrast.passed = false), Some(C::LowContrast));
        assert_eq!(fail(&|q| q.sharpness.passed = false), Some(C::TooBlurry));
        // Size comes before everything a person cannot fix by stepping closer.
        let both = fail(&|q| {
            q.sharpness.passed = false;
            q.inter_eye_px.passed = false;
        });
        assert_eq!(both, Some(C::FaceTooSmall));
    }

    #[test]
    fn assess_applies_the_limits() {
        let points: Vec<Point> = (0..68)
            .map(|i| match i {
                36..=41 => Point::new(40.0, 50.0),
                42..=47 => Point::new(60.0, 50.0),
                _ => Point::new(50.0, 70.0),
            })
            .collect();
        let face = Face {
            bbox: BoundingBox::new(20.0, 20.0, 80.0, 100.0),
            score: 0.9,
            landmarks: crate::landmarks::Landmarks::from_points(points).unwrap(),
        };
        let limits = QualityLimits::default();
        let q = assess(
            &face,
            (45.0, 0.0, 0.0),
            (0.9, 0.2),
            (0.5, 0.2, 0.9, 0.8),
            &limits,
        );
        assert!(!q.inter_eye_px.passed, "20 px between the eyes is under 28");
        assert!(!q.yaw_deg.passed && q.pitch_deg.passed);
        assert!(q.left_eye_open.passed && !q.right_eye_open.passed);
        assert!(q.exposure.passed && q.sharpness.passed);
        assert!((0.0..=1.0).contains(&q.overall));
        let good = assess(
            &face,
            (0.0, 0.0, 0.0),
            (1.0, 1.0),
            (0.5, 0.3, 1.0, 0.9),
            &QualityLimits {
                min_inter_eye_px: 10.0,
                ..limits.clone()
            },
        );
        assert!(
            good.overall > q.overall && good.overall > 0.9,
            "{} vs {}",
            good.overall,
            q.overall
        );
    }

    #[test]
    fn photometric_measures_separate_flat_dark_uneven_and_sharp_faces() {
        let (exposure, contrast, uniformity, sharpness) = photometric(&aligned(|_, _| 20));
        assert!(exposure < 0.1 && contrast < 0.01 && sharpness < 0.01);
        assert!((uniformity - 1.0).abs() < 1e-6);
        let (_, _, uniformity, _) = photometric(&aligned(|x, _| if x < 56 { 40 } else { 200 }));
        assert!(uniformity < 0.3);
        let (_, contrast, _, sharpness) =
            photometric(&aligned(
                |x, y| if (x / 2 + y / 2) % 2 == 0 { 30 } else { 220 },
            ));
        assert!(contrast > 0.3 && sharpness > 0.9);
    }
}
