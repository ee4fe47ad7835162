//! Stage 7: a [`SequenceAnalysis`] -> a verdict. The enrollment gate, the 1:1 verdict and the
//! 1:N verdict are written here once; the kiosk, every server surface and the CLI reach them
//! through the use-case layer (`faceid-service`) and only translate the answer.
//!
//! Every verdict judges in the same order, and stops at the first refusal:
//! 1. **liveness** (when the [`Gate`] asks for it): a replay learns nothing about the quality
//!    gate or the match score;
//! 2. **quality** (when the gate asks for it): the best frame must pass every measure;
//! 3. **the match**: against the card portrait (enrollment), the claimed subject (1:1) or the
//!    gallery with its size-dependent threshold (1:N).
//!
//! A refusal before the match computes no comparison, so none can leak.

use serde::Serialize;

use crate::decision::{self, Comparison, Decision, Identification};
use crate::engine::Engine;
use crate::error::{ErrorCode, Result};
use crate::liveness::{Liveness, LivenessPreset};
use crate::sequence::SequenceAnalysis;
use crate::template::Template;

/// Which checks a verdict applies, at which liveness operating point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// The liveness operating point.
    pub preset: LivenessPreset,
    /// Whether liveness must pass.
    pub liveness: bool,
    /// Whether the best frame must pass the quality gate.
    pub quality: bool,
}

/// Why a verdict accepted or refused. Stable wire codes via [`Reason::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Reason {
    /// Accepted: every check passed and the face matched (1:1, 1:N, card), or, for an
    /// enrollment without a card, passed every gate.
    Match,
    /// The face did not pass liveness.
    LivenessFailed,
    /// The best frame failed the quality gate on this measure (a capture code such as
    /// `EYES_CLOSED`).
    Quality(ErrorCode),
    /// Enrollment: the selfie is not the card's holder.
    CardMismatch,
    /// 1:1: not the claimed subject; 1:N: nobody in the gallery cleared the threshold.
    NoMatch,
}

impl Reason {
    /// The wire code: `MATCH`, `LIVENESS_FAILED`, the quality code, `CARD_MISMATCH`,
    /// `NO_MATCH`.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Match => "MATCH",
            Reason::LivenessFailed => "LIVENESS_FAILED",
            Reason::Quality(code) => code.as_str(),
            Reason::CardMismatch => "CARD_MISMATCH",
            Reason::NoMatch => "NO_MATCH",
        }
    }

    /// Whether the verdict accepts.
    pub fn accepted(self) -> bool {
        self == Reason::Match
    }

    /// The audit outcome of a decision with this reason: `accepted` or `rejected:CODE`.
    pub fn outcome(self) -> String {
        if self.accepted() {
            "accepted".to_string()
        } else {
            format!("rejected:{}", self.code())
        }
    }
}

/// An enrollment verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnrollmentVerdict {
    /// `Match` when the probe may be enrolled.
    pub reason: Reason,
    /// The selfie-vs-card decision, when a card was given and compared.
    pub card: Option<Decision>,
}

/// A 1:1 verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verification {
    /// `Match` when the probe is the claimed subject.
    pub reason: Reason,
    /// The best decision over the subject's templates; `None` when refused before the match.
    pub decision: Option<Decision>,
    /// The accumulated liveness.
    pub liveness: Liveness,
}

impl Verification {
    /// Whether the probe is accepted as the claimed subject.
    pub fn accepted(&self) -> bool {
        self.reason.accepted()
    }
}

/// A 1:N verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Identified<Id> {
    /// `Match` when a subject is named.
    pub reason: Reason,
    /// The search's answer; `None` when refused before the search.
    pub identification: Option<Identification<Id>>,
    /// The calibrated score of the best candidate, if the search ran and found one.
    pub best_score: Option<f32>,
    /// The candidates the search compared, calibrated, best first (empty when refused
    /// before the search). Only the verdict names a subject; a listing surface may show
    /// those at or above [`Identified::threshold`].
    pub candidates: Vec<(Id, Comparison)>,
    /// The accumulated liveness.
    pub liveness: Liveness,
}

impl<Id> Identified<Id> {
    /// The named subject, only when the verdict accepts.
    pub fn subject(&self) -> Option<&Id> {
        match &self.identification {
            Some(Identification::Match { subject, .. }) if self.reason.accepted() => Some(subject),
            _ => None,
        }
    }

    /// The threshold the search applied, if it ran.
    pub fn threshold(&self) -> Option<f32> {
        match self.identification {
            Some(
                Identification::Match { threshold, .. } | Identification::NoMatch { threshold },
            ) => Some(threshold),
            None => None,
        }
    }
}

impl Engine {
    /// The gate in force: the configured preset, liveness and quality both required.
    pub fn gate(&self) -> Gate {
        Gate {
            preset: self.config().liveness_preset,
            liveness: true,
            quality: true,
        }
    }

    /// Steps 1 and 2 of every verdict: liveness, then quality.
    fn screen(&self, probe: &SequenceAnalysis, gate: Gate) -> Option<Reason> {
        if gate.liveness && !probe.liveness.is_live(gate.preset) {
            return Some(Reason::LivenessFailed);
        }
        if gate.quality
            && let Some(failure) = probe.best.quality.first_failure()
        {
            return Some(Reason::Quality(failure.code()));
        }
        None
    }

    /// The liveness of a probe as a liveness-only check reports it: the accumulated
    /// estimate, refused (`FACE_TOO_SMALL`) when the best frame's face is below the size
    /// limit, where the network's answer means little. Whether it passes is
    /// `Liveness::is_live` at the caller's preset.
    pub fn liveness_check(&self, probe: &SequenceAnalysis) -> Result<Liveness> {
        let size = probe.best.quality.inter_eye_px;
        if !size.passed {
            return Err(crate::error::Error::FaceTooSmall { ied_px: size.value });
        }
        Ok(probe.liveness)
    }

    /// The enrollment gate: liveness, quality, then (when enrolling from a card and a
    /// selfie) the selfie must be the card's holder at the 1:1 threshold.
    pub fn enrollment(
        &self,
        probe: &SequenceAnalysis,
        gate: Gate,
        card: Option<&Template>,
    ) -> Result<EnrollmentVerdict> {
        if let Some(reason) = self.screen(probe, gate) {
            return Ok(EnrollmentVerdict { reason, card: None });
        }
        let Some(card) = card else {
            return Ok(EnrollmentVerdict {
                reason: Reason::Match,
                card: None,
            });
        };
        let decision = self.verify(&probe.best.template, card)?;
        Ok(EnrollmentVerdict {
            reason: if decision.accepted {
                Reason::Match
            } else {
                Reason::CardMismatch
            },
            card: Some(decision),
        })
    }

    /// The 1:1 verdict against a subject's templates (the best-scoring one decides). No
    /// templates at all is `NoMatch`.
    pub fn verification(
        &self,
        probe: &SequenceAnalysis,
        references: &[Template],
        gate: Gate,
    ) -> Result<Verification> {
        let liveness = probe.liveness;
        if let Some(reason) = self.screen(probe, gate) {
            return Ok(Verification {
                reason,
                decision: None,
                liveness,
            });
        }
        let decision = self.verify_subject(&probe.best.template, references)?;
        Ok(Verification {
            reason: if decision.is_some_and(|d| d.accepted) {
                Reason::Match
            } else {
                Reason::NoMatch
            },
            decision,
            liveness,
        })
    }

    /// The 1:N verdict over the index's candidates `(subject, cosine)`, best first or not,
    /// from a gallery of `gallery_size`: names a subject or says no match, never "the
    /// closest person". `search` runs only once liveness and quality have passed.
    pub fn identification<Id: Clone, E>(
        &self,
        probe: &SequenceAnalysis,
        gate: Gate,
        search: impl FnOnce(&Template) -> std::result::Result<(Vec<(Id, f32)>, usize), E>,
    ) -> std::result::Result<Identified<Id>, E> {
        let liveness = probe.liveness;
        if let Some(reason) = self.screen(probe, gate) {
            return Ok(Identified {
                reason,
                identification: None,
                best_score: None,
                candidates: Vec::new(),
                liveness,
            });
        }
        let (found, gallery_size) = search(&probe.best.template)?;
        let mut candidates: Vec<(Id, Comparison)> = found
            .into_iter()
            .map(|(id, cosine)| (id, Comparison::new(cosine, self.calibration())))
            .collect();
        candidates.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
        let best_score = candidates.first().map(|(_, c)| c.score);
        let identification = decision::identify(
            candidates.clone(),
            gallery_size,
            self.config().identify_fpir,
        );
        let reason = match identification {
            Identification::Match { .. } => Reason::Match,
            Identification::NoMatch { .. } => Reason::NoMatch,
        };
        Ok(Identified {
            reason,
            identification: Some(identification),
            best_score,
            candidates,
            liveness,
        })
    }
}
