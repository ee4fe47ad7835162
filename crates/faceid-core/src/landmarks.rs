//! Stage 3: [`Detection`] -> [`Face`] with 68 landmarks and the five alignment points.

use serde::Serialize;

use crate::detect::Detection;
use crate::error::Result;
use crate::geometry::{BoundingBox, Point};
use crate::image::Image;
use crate::models::{Channels, InputSpec, ModelSource, OnnxModel, Scale};
use crate::sampling::Resample;

const SIDE: u32 = 64;

/// The 68 facial landmarks (iBUG 300-W order, 0-based) in image pixels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Landmarks {
    points: Vec<Point>,
}

impl Landmarks {
    /// All 68 points.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Centre of the eye on the image's left (the subject's right eye): mean of points 36-41.
    pub fn left_eye(&self) -> Point {
        Point::mean(&self.points[36..42])
    }

    /// Centre of the eye on the image's right: mean of points 42-47.
    pub fn right_eye(&self) -> Point {
        Point::mean(&self.points[42..48])
    }

    /// Distance between the eye centres, in pixels: the standard face-size measure.
    pub fn inter_eye_distance(&self) -> f32 {
        self.left_eye().distance(self.right_eye())
    }

    /// The five points of the ArcFace template: eye centres, nose tip (30), mouth corners
    /// (48, 54), in that order.
    pub fn five(&self) -> [Point; 5] {
        [
            self.left_eye(),
            self.right_eye(),
            self.points[30],
            self.points[48],
            self.points[54],
        ]
    }

    /// Wraps 68 points.
    pub fn from_points(points: Vec<Point>) -> Option<Landmarks> {
        (points.len() == 68).then_some(Landmarks { points })
    }
}

/// A detected face with its landmarks: the unit every later stage works on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Face {
    /// Face box in image pixels.
    pub bbox: BoundingBox,
    /// Detector confidence, 0..1.
    pub score: f32,
    /// The 68 landmarks.
    pub landmarks: Landmarks,
}

/// The 68-point landmark model.
#[derive(Debug)]
pub(crate) struct LandmarkModel {
    model: OnnxModel,
}

impl LandmarkModel {
    pub(crate) const FILE: &'static str = "fr_landmark.onnx";

    /// 64x64 luma, v/255.
    const INPUT: InputSpec = InputSpec {
        width: SIDE,
        height: SIDE,
        channels: Channels::Gray,
        resample: Resample::Area,
        scale: Scale::Unit,
    };

    pub(crate) fn load(source: &ModelSource) -> Result<LandmarkModel> {
        Ok(LandmarkModel {
            model: source.open(Self::FILE, Self::INPUT)?,
        })
    }

    /// Landmarks for one detection. The crop is the square around the box: the network
    /// predicts coordinates normalised to that square.
    pub(crate) fn locate(&self, image: &Image, detection: &Detection) -> Result<Face> {
        let region = crop_region(detection.bbox);
        let out = self.model.infer(image, region, &["output"])?;
        let points = out[0]
            .chunks_exact(2)
            .take(68)
            .map(|p| {
                Point::new(
                    region.x1 + p[0] * region.width(),
                    region.y1 + p[1] * region.height(),
                )
            })
            .collect();
        let landmarks = Landmarks::from_points(points).ok_or_else(|| {
            crate::error::Error::Runtime(format!("{}: expected 136 outputs", Self::FILE))
        })?;
        Ok(Face {
            bbox: detection.bbox,
            score: detection.score,
            landmarks,
        })
    }
}

fn crop_region(bbox: BoundingBox) -> BoundingBox {
    bbox.squared()
}
