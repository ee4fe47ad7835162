//! Stage 5 output: [`Template`], the L2-normalised face embedding, tagged with the exact
//! model that produced it.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Dimension of the embeddings of the default model.
pub const TEMPLATE_DIM: usize = 512;

const MAGIC: &[u8; 4] = b"FIDT";
const FORMAT_VERSION: u8 = 1;

/// A face template: a unit vector plus the id of the model that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    model_id: String,
    vector: Vec<f32>,
}

impl Template {
    /// Builds a template from a raw embedding, L2-normalising it. Refuses empty, non-finite
    /// or all-zero vectors.
    pub fn new(model_id: impl Into<String>, mut vector: Vec<f32>) -> Result<Template> {
        if vector.is_empty() || vector.iter().any(|v| !v.is_finite()) {
            return Err(Error::InvalidTemplate {
                reason: "embedding is empty or not finite".into(),
            });
        }
        let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm < 1e-12 {
            return Err(Error::InvalidTemplate {
                reason: "embedding is all zeros".into(),
            });
        }
        vector.iter_mut().for_each(|v| *v /= norm);
        Ok(Template {
            model_id: model_id.into(),
            vector,
        })
    }

    /// The model that made this template, e.g. `fr_feature@87aacdfe`.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The unit vector.
    pub fn vector(&self) -> &[f32] {
        &self.vector
    }

    /// Cosine similarity in -1..1 (the raw score; see `calibration` for what it means).
    /// Templates of different models are not comparable: `MODEL_MISMATCH`.
    pub fn cosine(&self, other: &Template) -> Result<f32> {
        if self.model_id != other.model_id || self.vector.len() != other.vector.len() {
            return Err(Error::ModelMismatch {
                left: self.model_id.clone(),
                right: other.model_id.clone(),
            });
        }
        Ok(self
            .vector
            .iter()
            .zip(&other.vector)
            .map(|(a, b)| a * b)
            .sum::<f32>()
            .clamp(-1.0, 1.0))
    }

    /// Compact binary form: `FIDT`, version, model-id length (u8) and bytes, dimension
    /// (u16 LE), then f32 LE values.
    pub fn to_bytes(&self) -> Vec<u8> {
        let id = self.model_id.as_bytes();
        let id_len = id.len().min(255);
        let mut out = Vec::with_capacity(8 + id_len + self.vector.len() * 4);
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_VERSION);
        out.push(id_len as u8);
        out.extend_from_slice(&id[..id_len]);
        out.extend_from_slice(&(self.vector.len() as u16).to_le_bytes());
        for v in &self.vector {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Reads the form written by [`Template::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Template> {
        let bad = |reason: &str| Error::InvalidTemplate {
            reason: reason.into(),
        };
        if bytes.len() < 8 || &bytes[..4] != MAGIC {
            return Err(bad("not a faceid template"));
        }
        if bytes[4] != FORMAT_VERSION {
            return Err(bad("unknown template format version"));
        }
        let id_len = bytes[5] as usize;
        let rest = &bytes[6..];
        if rest.len() < id_len + 2 {
            return Err(bad("truncated"));
        }
        let model_id =
            std::str::from_utf8(&rest[..id_len]).map_err(|_| bad("model id is not UTF-8"))?;
        let dim = u16::from_le_bytes([rest[id_len], rest[id_len + 1]]) as usize;
        let values = &rest[id_len + 2..];
        if values.len() != dim * 4 {
            return Err(bad("length does not match dimension"));
        }
        let vector: Vec<f32> = values
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        // Stored templates are already unit vectors: keep their exact bits (re-normalising
        // would drift them by an ulp on every round trip) but refuse anything else.
        let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt();
        if vector.is_empty() || !norm.is_finite() || (norm - 1.0).abs() > 1e-3 {
            return Err(bad("vector is not a unit vector"));
        }
        Ok(Template {
            model_id: model_id.to_string(),
            vector,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_normalised_and_round_trip() {
        let t = Template::new("m@1", vec![3.0, 4.0]).unwrap();
        assert_eq!(t.vector(), &[0.6, 0.8]);
        let back = Template::from_bytes(&t.to_bytes()).unwrap();
        assert_eq!(back, t);
        assert!((t.cosine(&back).unwrap() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn different_models_are_not_comparable() {
        let a = Template::new("m@1", vec![1.0, 0.0]).unwrap();
        let b = Template::new("m@2", vec![1.0, 0.0]).unwrap();
        assert_eq!(a.cosine(&b).unwrap_err().code().as_str(), "MODEL_MISMATCH");
    }

    #[test]
    fn bad_vectors_and_bytes_are_invalid() {
        assert!(Template::new("m", vec![]).is_err());
        assert!(Template::new("m", vec![0.0, 0.0]).is_err());
        assert!(Template::new("m", vec![f32::NAN]).is_err());
        let t = Template::new("m@1", vec![1.0, 2.0]).unwrap();
        let bytes = t.to_bytes();
        for cut in [0, 3, 7, bytes.len() - 1] {
            assert_eq!(
                Template::from_bytes(&bytes[..cut])
                    .unwrap_err()
                    .code()
                    .as_str(),
                "INVALID_TEMPLATE"
            );
        }
    }
}
