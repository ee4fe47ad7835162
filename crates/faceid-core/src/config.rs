//! The one configuration type of the engine. Shells embed it in their own config files
//! (TOML section `[engine]`); every field has a documented default.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::liveness::LivenessPreset;

/// Engine settings: resource limits, runtime threads and the quality gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Cores the engine may use for one probe (default 2): detection gets them all, the two
    /// parallel branches of `Engine::analyze` (embedding | liveness + quality) split them;
    /// 1 runs everything in sequence on one core. ONNX Runtime spinning is always off: with
    /// several sessions on few cores, spinning threads starve each other (measured 2.3x).
    pub inference_threads: usize,
    /// Largest encoded image accepted, in bytes (default 5 MB).
    pub max_image_bytes: usize,
    /// Largest decoded image accepted, in pixels (default 40 Mpx), checked from the header
    /// before any pixel buffer is allocated.
    pub max_image_pixels: u64,
    /// Minimum detector confidence for a face (default 0.6).
    pub detection_threshold: f32,
    /// A second face counts as a bystander when its width is at least this fraction of the
    /// main face's width (default 0.35).
    pub bystander_width_ratio: f32,
    /// Quality gate applied at enrollment and verification.
    pub quality: QualityLimits,
    /// Liveness operating point (default REGULAR).
    pub liveness_preset: LivenessPreset,
    /// Calibrated score a 1:1 verification must reach (default 0.6 = 1 false accept in 1,000).
    pub verify_threshold: f32,
    /// Target false-positive identification rate for 1:N (default 1e-3); the per-comparison
    /// threshold tightens with gallery size (FPIR ~ N x FAR).
    pub identify_fpir: f64,
    /// Shortest selfie video accepted, in seconds (default 2): passive liveness needs
    /// several moments of the face, and a very short clip is a classic replay trick.
    pub min_video_seconds: f32,
    /// Days after its printed expiry an identity document is still accepted for enrollment
    /// (default 0: valid through its expiry day, refused the day after).
    #[serde(default)]
    pub document_grace_days: u32,
    /// Keep an enrolled document's issuing state and number in clear with the subject
    /// (default off: only a keyed hash is kept, enough to refuse the same document for
    /// another subject; Moroccan law 09-08 treats ID numbers as needing authorisation).
    #[serde(default)]
    pub keep_document_number: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            inference_threads: 2,
            max_image_bytes: 5 * 1024 * 1024,
            max_image_pixels: 40_000_000,
            detection_threshold: 0.6,
            bystander_width_ratio: 0.35,
            quality: QualityLimits::default(),
            liveness_preset: LivenessPreset::Regular,
            verify_threshold: 0.6,
            identify_fpir: 1e-3,
            min_video_seconds: 2.0,
            document_grace_days: 0,
            keep_document_number: false,
        }
    }
}

impl EngineConfig {
    /// Rejects impossible settings before any model is loaded.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::InvalidConfig(what.to_string()));
        if self.inference_threads == 0 || self.inference_threads > 64 {
            return bad("inference_threads must be 1..=64");
        }
        if self.max_image_bytes == 0 {
            return bad("max_image_bytes must be positive");
        }
        if self.max_image_pixels < 64 * 64 {
            return bad("max_image_pixels must be at least 4096");
        }
        if !(0.05..1.0).contains(&self.detection_threshold) {
            return bad("detection_threshold must be in 0.05..1");
        }
        if !(0.0..=1.0).contains(&self.bystander_width_ratio) {
            return bad("bystander_width_ratio must be in 0..=1");
        }
        if !(0.0..=1.0).contains(&self.verify_threshold) {
            return bad("verify_threshold must be in 0..=1");
        }
        if !(self.identify_fpir > 0.0 && self.identify_fpir < 1.0) {
            return bad("identify_fpir must be in (0, 1)");
        }
        if !(0.0..=60.0).contains(&self.min_video_seconds) {
            return bad("min_video_seconds must be in 0..=60");
        }
        self.quality.validate()
    }
}

/// Limits of the quality gate, in the spirit of ISO/IEC 29794-5. Values are measured on
/// every face; a face passes when every measure is within its limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QualityLimits {
    /// Minimum inter-eye distance in pixels of the original image (default 28).
    pub min_inter_eye_px: f32,
    /// Maximum absolute yaw in degrees (default 30).
    pub max_yaw_deg: f32,
    /// Maximum absolute pitch in degrees (default 25).
    pub max_pitch_deg: f32,
    /// Maximum absolute roll in degrees (default 25).
    pub max_roll_deg: f32,
    /// Minimum probability that each eye is open (default 0.5).
    pub min_eye_open: f32,
    /// Accepted mean brightness of the face, 0..1 (default 0.2..0.85).
    pub exposure_range: (f32, f32),
    /// Minimum RMS contrast of the face, 0..1 (default 0.06).
    pub min_contrast: f32,
    /// Minimum left/right illumination uniformity, 0..1 (default 0.6).
    pub min_uniformity: f32,
    /// Minimum sharpness, 0..1 (default 0.15; see `quality::sharpness`).
    pub min_sharpness: f32,
}

impl Default for QualityLimits {
    fn default() -> Self {
        QualityLimits {
            min_inter_eye_px: 28.0,
            max_yaw_deg: 30.0,
            max_pitch_deg: 25.0,
            max_roll_deg: 25.0,
            min_eye_open: 0.5,
            exposure_range: (0.2, 0.85),
            min_contrast: 0.06,
            min_uniformity: 0.6,
            min_sharpness: 0.15,
        }
    }
}

impl QualityLimits {
    fn validate(&self) -> Result<()> {
        let (lo, hi) = self.exposure_range;
        if !(0.0..=1.0).contains(&lo) || !(0.0..=1.0).contains(&hi) || lo >= hi {
            return Err(Error::InvalidConfig(
                "quality.exposure_range must be two increasing values in 0..=1".into(),
            ));
        }
        if self.min_inter_eye_px < 0.0
            || self.max_yaw_deg <= 0.0
            || self.max_pitch_deg <= 0.0
            || self.max_roll_deg <= 0.0
        {
            return Err(Error::InvalidConfig(
                "quality limits must be positive".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_round_trips_through_toml() {
        let config = EngineConfig::default();
        config.validate().unwrap();
        let text = toml::to_string(&config).unwrap();
        let back: EngineConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn impossible_values_are_rejected() {
        let config = EngineConfig {
            inference_threads: 0,
            ..EngineConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().code(),
            crate::ErrorCode::InvalidConfig
        );
        let mut config = EngineConfig::default();
        config.quality.exposure_range = (0.9, 0.1);
        assert!(config.validate().is_err());
        let err = toml::from_str::<EngineConfig>("no_such_field = 1").unwrap_err();
        assert!(err.to_string().contains("no_such_field"));
    }
}
