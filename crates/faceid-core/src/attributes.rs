//! Demographic-free descriptive attributes: estimated age, gender and expression. They are
//! reported (surface 5 returns them) but never used in a decision. Race is not inferred.

use serde::Serialize;

use crate::error::Result;
use crate::geometry::BoundingBox;
use crate::image::Image;
use crate::landmarks::Face;
use crate::models::{Channels, InputSpec, ModelSource, OnnxModel, Scale};
use crate::quality::softmax;
use crate::sampling::Resample;

const SSR_SIDE: u32 = 64;
const EXPRESSION_SIDE: u32 = 224;
const SSR_OUTPUTS: [&str; 9] = [
    "prob_stage_1",
    "prob_stage_2",
    "prob_stage_3",
    "stage1_delta_k",
    "stage2_delta_k",
    "stage3_delta_k",
    "index_offset_stage1",
    "index_offset_stage2",
    "index_offset_stage3",
];

/// Expression classes, in the network's output order (FER-2013 convention).
pub const EXPRESSIONS: [&str; 7] = [
    "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral",
];

/// Estimated attributes of one face.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attributes {
    /// Estimated age in years.
    pub age_years: f32,
    /// Estimated probability-like score of "male" in 0..1 (SSR-Net regression output).
    pub male_score: f32,
    /// Most likely expression (one of [`EXPRESSIONS`]).
    pub expression: &'static str,
    /// Probability of each expression, in [`EXPRESSIONS`] order.
    pub expression_probabilities: Vec<f32>,
}

impl Attributes {
    /// `"male"` or `"female"`.
    pub fn gender(&self) -> &'static str {
        if self.male_score >= 0.5 {
            "male"
        } else {
            "female"
        }
    }
}

/// Age, gender and expression networks.
#[derive(Debug)]
pub(crate) struct AttributeModels {
    age: OnnxModel,
    gender: OnnxModel,
    expression: OnnxModel,
}

impl AttributeModels {
    /// SSR-Net age and gender: 64x64, ImageNet statistics, RGB.
    const SSR_INPUT: InputSpec = InputSpec {
        width: SSR_SIDE,
        height: SSR_SIDE,
        channels: Channels::Rgb,
        resample: Resample::Area,
        scale: Scale::ImageNet,
    };
    /// Expression: 224x224, v/255, RGB.
    const EXPRESSION_INPUT: InputSpec = InputSpec {
        width: EXPRESSION_SIDE,
        height: EXPRESSION_SIDE,
        channels: Channels::Rgb,
        resample: Resample::Area,
        scale: Scale::Unit,
    };

    pub(crate) fn load(source: &ModelSource) -> Result<AttributeModels> {
        Ok(AttributeModels {
            age: source.open("fr_age.onnx", Self::SSR_INPUT)?,
            gender: source.open("fr_gender.onnx", Self::SSR_INPUT)?,
            expression: source.open("fr_expression.onnx", Self::EXPRESSION_INPUT)?,
        })
    }

    pub(crate) fn estimate(&self, image: &Image, face: &Face) -> Result<Attributes> {
        let region = face
            .bbox
            .grown_within(1.4, image.width() as f32, image.height() as f32);
        let age = ssr_merge(
            &self.age.infer(image, region, &SSR_OUTPUTS)?.concat(),
            101.0,
        );
        let male = ssr_merge(
            &self.gender.infer(image, region, &SSR_OUTPUTS)?.concat(),
            1.0,
        );
        // The expression network was trained on the box extended right and down by a fifth.
        let b = face.bbox;
        let region = BoundingBox::new(b.x1, b.y1, b.x1 + b.width() * 1.2, b.y1 + b.height() * 1.2)
            .clipped(image.width() as f32, image.height() as f32);
        let probabilities = softmax(&self.expression.infer(image, region, &["output"])?[0]);
        let best = probabilities
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .unwrap_or(6);
        Ok(Attributes {
            age_years: age.clamp(0.0, 101.0),
            male_score: male.clamp(0.0, 1.0),
            expression: EXPRESSIONS.get(best).copied().unwrap_or("neutral"),
            expression_probabilities: probabilities,
        })
    }
}

/// SSR-Net soft stagewise regression: the stage probabilities, their index offsets and
/// the dynamic range deltas combine into one value scaled by `range`.
fn ssr_merge(x: &[f32], range: f32) -> f32 {
    if x.len() < 21 {
        return 0.0;
    }
    let (s1, s2, s3) = (3.0f32, 3.0f32, 3.0f32);
    let (lambda_local, lambda_d) = (1.0f32, 1.0f32);
    let mut a = 0.0;
    for i in 0..3 {
        a += (i as f32 + lambda_local * x[12 + i]) * x[i];
    }
    a /= s1 * (1.0 + lambda_d * x[9]);
    let mut b = 0.0;
    for i in 0..3 {
        b += (i as f32 + lambda_local * x[15 + i]) * x[3 + i];
    }
    b = b / (s1 * (1.0 + lambda_d * x[9])) / (s2 * (1.0 + lambda_d * x[10]));
    let mut c = 0.0;
    for i in 0..3 {
        c += (i as f32 + lambda_local * x[18 + i]) * x[6 + i];
    }
    c = c
        / (s1 * (1.0 + lambda_d * x[9]))
        / (s2 * (1.0 + lambda_d * x[10]))
        / (s3 * (1.0 + lambda_d * x[11]));
    (a + b + c) * range
}
