//! The calibration screen's data: the report of `faceid --json eval` (read from a file or
//! produced by running it over a dataset folder), and score histograms.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The engine's own figure types, read back from the report.
pub use faceid_core::evaluation::{DetPoint, PadFigures, PadRates};

/// The parts of an evaluation report the console plots.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EvalReport {
    /// Face verification, when the set has pairs.
    pub verification: Option<Verification>,
    /// Liveness, when the set has live and spoof images.
    pub liveness: Option<LivenessFigures>,
    /// Presentation attacks over sequences, when the set has `spoof/`, `video/` or `pad/`.
    #[serde(default)]
    pub pad: Option<PadSequences>,
}

/// The presentation-attack section of the report: per attack species, per preset.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PadSequences {
    /// The fused rule (passive network and planarity), by species then preset.
    pub species: BTreeMap<String, BTreeMap<String, PadRates>>,
    /// The simulated species with the passive network off (planarity alone).
    pub geometry_only: BTreeMap<String, BTreeMap<String, PadRates>>,
    /// Simulated attacks generated.
    pub simulated: usize,
}

/// Verification figures and the scores behind them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Verification {
    /// Pairs compared.
    pub pairs: usize,
    /// Pairs where a side had no face.
    pub failed_pairs: usize,
    /// Equal error rate.
    pub eer: Option<f64>,
    /// Calibrated scores by class.
    pub scores: Scores,
    /// DET curve over calibrated scores.
    pub det: Vec<DetPoint>,
    /// Threshold presets and their observed error rates.
    pub operating_points: Vec<OperatingPoint>,
}

/// Calibrated scores of the scored pairs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Scores {
    /// Same-person pairs.
    pub genuine: Vec<f32>,
    /// Different-person pairs.
    pub impostor: Vec<f32>,
}

/// A threshold preset.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OperatingPoint {
    /// `FAR 1e-3`.
    pub name: String,
    /// Its calibrated score.
    pub score: f32,
    /// The FAR the calibration states.
    pub stated_far: f64,
    /// What it does on this set.
    pub observed: Option<DetPoint>,
}

/// Liveness error rates per preset.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LivenessFigures {
    /// By preset name (`SOFT`, `REGULAR`, `HARDENED`).
    pub presets: BTreeMap<String, PadFigures>,
}

/// Why no report could be shown.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file or folder could not be read, or `faceid eval` could not start.
    #[error("{0}")]
    Io(String),
    /// `faceid eval` failed.
    #[error("faceid eval failed: {0}")]
    Eval(String),
    /// Not an evaluation report.
    #[error("not a faceid eval --json report: {0}")]
    Format(String),
}

impl EvalReport {
    /// Parses `faceid --json eval` output.
    pub fn parse(json: &[u8]) -> Result<EvalReport, ReportError> {
        serde_json::from_slice(json).map_err(|e| ReportError::Format(e.to_string()))
    }

    /// Reads a saved report.
    pub fn read(path: &Path) -> Result<EvalReport, ReportError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ReportError::Io(format!("reading {}: {e}", path.display())))?;
        EvalReport::parse(&bytes)
    }

    /// Runs `faceid --json eval FOLDER` (the engine and its models live with the CLI, not in
    /// the console) and parses its report. Takes as long as the evaluation: call it off the
    /// UI thread.
    pub fn run(faceid: &Path, folder: &Path) -> Result<EvalReport, ReportError> {
        if !folder.is_dir() {
            return Err(ReportError::Io(format!(
                "{} is not a folder",
                folder.display()
            )));
        }
        let out = std::process::Command::new(faceid)
            .arg("--json")
            .arg("eval")
            .arg(folder)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| ReportError::Io(format!("starting {}: {e}", faceid.display())))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            return Err(ReportError::Eval(last.to_string()));
        }
        EvalReport::parse(&out.stdout)
    }
}

/// One histogram bar: the bin's lower edge and the share of scores in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bin {
    /// Lower edge.
    pub from: f64,
    /// Fraction of all scores (the bars of one class sum to 1).
    pub share: f64,
}

/// `bins` equal bins over 0..1 (calibrated scores), as shares of `scores`.
pub fn histogram(scores: &[f32], bins: usize) -> Vec<Bin> {
    let bins = bins.max(1);
    let mut counts = vec![0usize; bins];
    for &s in scores.iter().filter(|s| s.is_finite()) {
        let i = ((f64::from(s) * bins as f64) as usize).min(bins - 1);
        counts[i] += 1;
    }
    let total = scores.len().max(1) as f64;
    counts
        .into_iter()
        .enumerate()
        .map(|(i, n)| Bin {
            from: i as f64 / bins as f64,
            share: n as f64 / total,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_shares_sum_to_one_and_clamp_the_top() {
        let bins = histogram(&[0.0, 0.05, 0.55, 1.0], 10);
        assert_eq!(bins.len(), 10);
        assert_eq!(bins[0].share, 0.5);
        assert_eq!(bins[5].share, 0.25);
        assert_eq!(bins[9].share, 0.25);
        assert!((bins.iter().map(|b| b.share).sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_report_without_scores_is_refused_with_the_reason() {
        let err = EvalReport::parse(br#"{"verification": {"pairs": 3}}"#).unwrap_err();
        assert!(err.to_string().contains("missing field"), "{err}");
        let ok = EvalReport::parse(br#"{"verification": null, "liveness": null}"#).unwrap();
        assert!(ok.verification.is_none());
    }
}
