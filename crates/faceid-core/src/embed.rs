//! Stage 5: [`AlignedFace`] -> [`Template`] (512-d, L2-normalised).

use crate::align::{ALIGNED_SIDE, AlignedFace};
use crate::error::Result;
use crate::models::{Channels, InputSpec, ModelSource, OnnxModel, Scale};
use crate::sampling::Resample;
use crate::template::Template;

/// The face embedding network: 112x112 ArcFace-aligned crop, (v-127)/128, BGR planes ->
/// 512 floats, L2-normalised into a [`Template`].
#[derive(Debug)]
pub(crate) struct Embedder {
    model: OnnxModel,
    model_id: String,
}

impl Embedder {
    pub(crate) const FILE: &'static str = "fr_feature.onnx";

    /// 112x112, (v-127)/128, BGR: on the shared set BGR beats RGB on every group
    /// (accuracy 95.1 vs 94.7 %, TAR@1e-3 81.7 vs 78.6 %, ID-card pairs 98.2 vs 97.6 %).
    const INPUT: InputSpec = InputSpec {
        width: ALIGNED_SIDE,
        height: ALIGNED_SIDE,
        channels: Channels::Bgr,
        resample: Resample::Area,
        scale: Scale::Centered,
    };

    pub(crate) fn load(source: &ModelSource, threads: usize) -> Result<Embedder> {
        Ok(Embedder {
            model: source.open_with_threads(Self::FILE, Self::INPUT, threads)?,
            model_id: source.model_id(Self::FILE),
        })
    }

    /// Id written into every template this embedder makes.
    pub(crate) fn model_id(&self) -> &str {
        &self.model_id
    }

    pub(crate) fn embed(&self, face: &AlignedFace) -> Result<Template> {
        let mut out = self.model.infer_whole(face.image(), &["output"])?;
        Template::new(self.model_id.clone(), std::mem::take(&mut out[0]))
    }
}
