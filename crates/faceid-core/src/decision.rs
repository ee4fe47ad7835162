//! Stage 6: scores -> [`Decision`]. The one place thresholds are applied, so a score means
//! the same thing in the kiosk, the server and the CLI.

use serde::Serialize;

use crate::calibration::{Calibration, far_for_score, score_for_far};

/// The outcome of comparing a probe with one reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Comparison {
    /// Raw cosine similarity, -1..1.
    pub cosine: f32,
    /// Calibrated score 0..1 (0.6 = 1 false accept in 1,000).
    pub score: f32,
}

impl Comparison {
    /// Compares by cosine under `calibration`.
    pub fn new(cosine: f32, calibration: &Calibration) -> Comparison {
        Comparison {
            cosine,
            score: calibration.score(cosine),
        }
    }

    /// False-accept rate of a threshold at this score (meaningful for scores >= 0.4).
    pub fn far(&self) -> f64 {
        far_for_score(self.score.max(0.4))
    }
}

/// A 1:1 decision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Decision {
    /// Whether the probe is accepted as the claimed identity.
    pub accepted: bool,
    /// The comparison behind it.
    pub comparison: Comparison,
    /// The calibrated threshold applied.
    pub threshold: f32,
}

/// Accepts when the calibrated score reaches `threshold`.
pub fn verify(comparison: Comparison, threshold: f32) -> Decision {
    Decision {
        accepted: comparison.score >= threshold,
        comparison,
        threshold,
    }
}

/// The calibrated threshold for 1:N search in a gallery of `gallery_size` subjects so that
/// the false-positive identification rate stays near `fpir`: with N independent impostor
/// comparisons FPIR ~ N x FAR, so each comparison must reach FAR = fpir / N.
pub fn identification_threshold(gallery_size: usize, fpir: f64) -> f32 {
    score_for_far(fpir / gallery_size.max(1) as f64)
}

/// The result of a 1:N search: a named subject, or no match. Never "the closest person".
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Identification<Id> {
    /// The best candidate cleared the gallery-size threshold.
    Match {
        /// Subject id.
        subject: Id,
        /// Its comparison.
        comparison: Comparison,
        /// Threshold that was applied.
        threshold: f32,
    },
    /// Nobody cleared the threshold.
    NoMatch {
        /// Threshold that was applied.
        threshold: f32,
    },
}

/// Picks the best of `candidates` (subject, comparison) if it clears the threshold for a
/// gallery of `gallery_size`.
pub fn identify<Id>(
    candidates: Vec<(Id, Comparison)>,
    gallery_size: usize,
    fpir: f64,
) -> Identification<Id> {
    let threshold = identification_threshold(gallery_size, fpir);
    match candidates
        .into_iter()
        .max_by(|a, b| a.1.score.total_cmp(&b.1.score))
    {
        Some((subject, comparison)) if comparison.score >= threshold => Identification::Match {
            subject,
            comparison,
            threshold,
        },
        _ => Identification::NoMatch { threshold },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(score: f32) -> Comparison {
        Comparison { cosine: 0.0, score }
    }

    #[test]
    fn verification_threshold_is_inclusive() {
        assert!(verify(cmp(0.6), 0.6).accepted);
        assert!(!verify(cmp(0.5999), 0.6).accepted);
    }

    #[test]
    fn identification_threshold_tightens_with_gallery_size() {
        assert!((identification_threshold(1, 1e-3) - 0.6).abs() < 1e-6);
        assert!((identification_threshold(1000, 1e-3) - 0.9).abs() < 1e-6);
        assert!(identification_threshold(100_000, 1e-3) > identification_threshold(1000, 1e-3));
    }

    #[test]
    fn identification_names_a_subject_or_says_no_match() {
        let found = identify(vec![("a", cmp(0.5)), ("b", cmp(0.95))], 100, 1e-3);
        assert!(matches!(found, Identification::Match { subject: "b", .. }));
        let none = identify(vec![("a", cmp(0.7)), ("b", cmp(0.75))], 100, 1e-3);
        assert!(
            matches!(none, Identification::NoMatch { .. }),
            "the closest person is not a match"
        );
        assert!(matches!(
            identify::<&str>(vec![], 0, 1e-3),
            Identification::NoMatch { .. }
        ));
    }
}
