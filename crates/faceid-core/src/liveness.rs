//! Stage 5 (beside embedding): passive liveness, the chance that the face in front of the
//! camera is a live person rather than a print, a screen replay or a mask.
//!
//! One frame gives a [`Liveness`]; a burst of kiosk frames or a video is accumulated by
//! [`LivenessAccumulator`] with a documented rule: **the mean of the per-frame log-odds**
//! (each clipped to +-8), turned back into a probability. Averaging log-odds treats frames
//! as independent pieces of evidence, and the clip keeps one wild frame from deciding alone.
//!
//! The network is one cue. Over a sequence the planarity cue ([`crate::planarity`]) is
//! measured too, and [`Liveness::judge`] fuses both with a documented rule.

use serde::{Deserialize, Serialize};

use crate::challenge::ChallengeFailure;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::landmarks::Face;
use crate::models::{Channels, InputSpec, ModelSource, OnnxModel, Scale};
use crate::planarity::Planarity;
use crate::sampling::Resample;

const SIDE: u32 = 128;
/// The network looks at the face in context (hair, background, screen or paper edges).
const CONTEXT_SCALE: f32 = 2.7;
const MAX_LOG_ODDS: f32 = 8.0;

/// Liveness operating points: how much attack acceptance is traded against rejecting live
/// people. Each preset sets the three thresholds of the fused rule ([`Liveness::judge`]);
/// they were chosen on sequences of the shared evaluation set (see BENCHMARKS.md for the
/// APCER/BPCER each gives per source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LivenessPreset {
    /// Fewer false rejections; for assisted, low-risk check-in.
    Soft,
    /// The default balance.
    #[default]
    Regular,
    /// Fewer accepted attacks; for unattended account opening.
    Hardened,
}

impl LivenessPreset {
    /// Live probability the passive network must reach on one photo, where no geometry
    /// can be measured (chosen per image on NUAA).
    pub fn threshold(self) -> f32 {
        match self {
            LivenessPreset::Soft => 0.3,
            LivenessPreset::Regular => 0.5,
            LivenessPreset::Hardened => 0.8,
        }
    }

    /// On a sequence, below this accumulated live probability the passive network's
    /// evidence of an attack is strong enough to refuse whatever the geometry says
    /// (`SPOOF_SUSPECTED`). Chosen on sequences: live webcam clips accumulate 0.06-0.2,
    /// phone replays and prints below 0.001 (BENCHMARKS.md); a person following the kiosk's
    /// challenge in a dim room (the `apfol_real2` clip's frames, moved into the oval)
    /// accumulates 0.02-0.07, so REGULAR keeps a tenfold margin over attacks, not more.
    pub fn spoof_floor(self) -> f32 {
        match self {
            LivenessPreset::Soft => 0.005,
            LivenessPreset::Regular => 0.01,
            LivenessPreset::Hardened => 0.1,
        }
    }

    /// The floor of [`LivenessPreset::spoof_floor`] for a sequence whose geometry showed a
    /// head (depth at least [`LivenessPreset::min_depth`]): the passive network then refuses
    /// only on overwhelming evidence. Replays and prints accumulate below 0.001; a person
    /// following the kiosk's challenge in a dim room 0.002-0.05 (the `apfol_real2` clip's
    /// frames moved into the oval, BENCHMARKS.md "Kiosk challenge").
    pub fn spoof_floor_with_head(self) -> f32 {
        match self {
            LivenessPreset::Soft => 0.001,
            LivenessPreset::Regular => 0.002,
            LivenessPreset::Hardened => 0.02,
        }
    }

    /// Depth (the nose tip's parallax against the face plane, in inter-ocular distances,
    /// see [`crate::planarity`]) that shows a head. Measured with the texture followed:
    /// heads that turn 0.09-0.14, people shifting a little 0.03-0.1; simulated planar
    /// pictures 0.003 (median), 99 % below 0.017, the worst of 400 at 0.048.
    pub fn min_depth(self) -> f32 {
        match self {
            LivenessPreset::Soft => 0.025,
            LivenessPreset::Regular => 0.03,
            LivenessPreset::Hardened => 0.04,
        }
    }

    /// Turn (planarity deformation) past which a face without [`Self::min_depth`] is flat
    /// (`FLAT_FACE`); below it, and without depth, the geometry is undecided. Faces held
    /// still measure 0.01-0.025; pictures turned by 12-35 degrees each way 0.03 and more;
    /// people who shifted a little 0.03-0.09, which SOFT lets the passive network judge.
    pub fn min_turn(self) -> f32 {
        match self {
            LivenessPreset::Soft => 0.1,
            LivenessPreset::Regular | LivenessPreset::Hardened => 0.03,
        }
    }

    /// Parses `SOFT`, `REGULAR` or `HARDENED` (any case).
    pub fn parse(name: &str) -> Option<LivenessPreset> {
        match name.to_ascii_uppercase().as_str() {
            "SOFT" => Some(LivenessPreset::Soft),
            "REGULAR" => Some(LivenessPreset::Regular),
            "HARDENED" => Some(LivenessPreset::Hardened),
            _ => None,
        }
    }

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            LivenessPreset::Soft => "SOFT",
            LivenessPreset::Regular => "REGULAR",
            LivenessPreset::Hardened => "HARDENED",
        }
    }
}

/// A liveness estimate: the passive network's accumulated evidence and, over a sequence,
/// the planarity cue. [`Liveness::judge`] fuses them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Liveness {
    /// Probability that the face is live by the passive network alone, 0..1.
    pub probability: f32,
    /// Raw unbounded passive score: the log-odds of `probability` (bigger = more live).
    pub score: f32,
    /// Number of frames behind the estimate.
    pub frames: usize,
    /// The planarity cue over the frames (`None` for one frame).
    pub planarity: Option<Planarity>,
    /// The active challenge's verdict, when the frames answered one: its failure refuses.
    pub challenge: Option<ChallengeVerdict>,
}

/// What an active challenge concluded ([`crate::challenge::ChallengeTracker::finish`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChallengeVerdict {
    /// Whether every step was performed in order, in time, by one person.
    pub passed: bool,
    /// Why not.
    pub reason: Option<ChallengeFailure>,
}

/// Why the fused rule refused a face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LivenessFailure {
    /// The passive network's evidence of an attack is strong, or (without usable
    /// geometry) not live enough.
    SpoofSuspected,
    /// The face moved, and moved like a plane: a print, a card or a screen.
    FlatFace,
    /// The active challenge failed, for this reason.
    Challenge(ChallengeFailure),
}

impl LivenessFailure {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            LivenessFailure::SpoofSuspected => "SPOOF_SUSPECTED",
            LivenessFailure::FlatFace => "FLAT_FACE",
            LivenessFailure::Challenge(reason) => reason.code(),
        }
    }
}

/// The fused verdict at one preset, with the margin it was decided by.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LivenessJudgement {
    /// Whether the face passes.
    pub live: bool,
    /// Why not, when it does not.
    pub failure: Option<LivenessFailure>,
    /// The decisive margin in log-odds units (>= 0 exactly when live); `probability_at`
    /// is its logistic.
    pub margin: f32,
    /// Whether the geometry took part (the face moved enough to tell).
    pub geometry: bool,
}

impl Liveness {
    /// Builds a passive estimate from log-odds.
    pub fn from_score(score: f32, frames: usize) -> Liveness {
        let score = score.clamp(-MAX_LOG_ODDS, MAX_LOG_ODDS);
        Liveness {
            probability: 1.0 / (1.0 + (-score).exp()),
            score,
            frames,
            planarity: None,
            challenge: None,
        }
    }

    /// Builds a one-frame estimate from a probability.
    pub fn from_probability(probability: f32) -> Liveness {
        let p = probability.clamp(1e-6, 1.0 - 1e-6);
        Liveness::from_score((p / (1.0 - p)).ln(), 1)
    }

    /// The fused rule at `preset`, in order:
    ///
    /// 1. the passive network: on one photo its probability must reach
    ///    [`LivenessPreset::threshold`]; on a sequence it must not fall below
    ///    [`LivenessPreset::spoof_floor`] ([`LivenessPreset::spoof_floor_with_head`] when the
    ///    geometry showed a head); else `SPOOF_SUSPECTED`;
    /// 2. the planarity cue: a depth of [`LivenessPreset::min_depth`] is a head; a face
    ///    that turned ([`LivenessPreset::min_turn`]) without it is `FLAT_FACE`; a face that
    ///    did neither leaves the geometry undecided;
    /// 3. otherwise the face passes.
    ///
    /// When the frames answered an active challenge, a failed challenge refuses first, with
    /// its reason (its own verdict already applied steps 1 and 2 to the same frames).
    ///
    /// On a sequence the passive network is one cue: it refuses on strong evidence of an
    /// attack and otherwise leaves the decision to the geometry (and, at the kiosk, to the
    /// challenge).
    pub fn judge(&self, preset: LivenessPreset) -> LivenessJudgement {
        self.judge_cues(preset, true)
    }

    /// [`Liveness::judge`] with the passive cue switched off (`passive = false`): the
    /// geometry alone, where a face that never moved enough passes nothing. For measuring
    /// what each cue contributes.
    pub fn judge_cues(&self, preset: LivenessPreset, passive: bool) -> LivenessJudgement {
        let geometric = self.planarity.and_then(|p| {
            let (depth, min) = (p.depth?, preset.min_depth());
            (depth >= min || p.deformation >= preset.min_turn())
                .then(|| (MAX_LOG_ODDS * (depth - min) / min).clamp(-MAX_LOG_ODDS, MAX_LOG_ODDS))
        });
        if let Some(ChallengeVerdict {
            passed: false,
            reason,
        }) = self.challenge
        {
            return LivenessJudgement {
                live: false,
                failure: Some(LivenessFailure::Challenge(
                    reason.unwrap_or(ChallengeFailure::Timeout),
                )),
                margin: -MAX_LOG_ODDS,
                geometry: geometric.is_some(),
            };
        }
        let head = self
            .planarity
            .and_then(|p| p.depth)
            .is_some_and(|d| d >= preset.min_depth());
        let passive_margin = if self.frames <= 1 {
            self.score - logit(preset.threshold())
        } else if head {
            self.score - logit(preset.spoof_floor_with_head())
        } else {
            self.score - logit(preset.spoof_floor())
        };
        let (margin, failure) = match (passive, geometric) {
            (true, _) if passive_margin < 0.0 => (passive_margin, LivenessFailure::SpoofSuspected),
            (true, Some(g)) => (g.min(passive_margin), LivenessFailure::FlatFace),
            (true, None) => (passive_margin, LivenessFailure::SpoofSuspected),
            (false, Some(g)) => (g, LivenessFailure::FlatFace),
            (false, None) => (-MAX_LOG_ODDS, LivenessFailure::FlatFace),
        };
        let live = margin >= 0.0;
        LivenessJudgement {
            live,
            failure: (!live).then_some(failure),
            margin,
            geometry: geometric.is_some(),
        }
    }

    /// The fused verdict as a probability re-centred on `preset`: `>= 0.5` exactly when the
    /// face passes, whatever the preset (the logistic of [`LivenessJudgement::margin`]).
    pub fn probability_at(&self, preset: LivenessPreset) -> f32 {
        1.0 / (1.0 + (-self.judge(preset).margin).exp())
    }

    /// Whether the face passes the fused rule at `preset`.
    pub fn is_live(&self, preset: LivenessPreset) -> bool {
        self.judge(preset).live
    }

    /// The same estimate with the planarity cue measured over its frames.
    pub fn with_planarity(mut self, planarity: Planarity) -> Liveness {
        self.planarity = Some(planarity);
        self
    }
}

fn logit(p: f32) -> f32 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

/// Accumulates per-frame [`Liveness`] into one estimate (mean of clipped log-odds).
#[derive(Debug, Clone, Default)]
pub struct LivenessAccumulator {
    sum: f64,
    frames: usize,
}

impl LivenessAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one frame (or an already accumulated estimate, weighted by its frames).
    pub fn add(&mut self, liveness: Liveness) {
        let weight = liveness.frames.max(1);
        self.sum += f64::from(liveness.score.clamp(-MAX_LOG_ODDS, MAX_LOG_ODDS)) * weight as f64;
        self.frames += weight;
    }

    /// Frames seen so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// The accumulated estimate; `NO_FRAMES` when nothing was added.
    pub fn result(&self) -> Result<Liveness> {
        if self.frames == 0 {
            return Err(Error::NoFrames);
        }
        Ok(Liveness::from_score(
            (self.sum / self.frames as f64) as f32,
            self.frames,
        ))
    }
}

/// The passive liveness network.
#[derive(Debug)]
pub(crate) struct LivenessModel {
    model: OnnxModel,
}

impl LivenessModel {
    pub(crate) const FILE: &'static str = "fr_liveness.onnx";

    /// 128x128, raw 0..255, BGR, OpenCV-style linear resize: the network comes from an
    /// OpenCV pipeline. Measured on the shared set: RGB input rejects 61 % of live NUAA
    /// frames against 5 % with BGR; linear instead of area resampling moves all sources
    /// from APCER 7.2 / BPCER 22.3 % to 6.6 / 21.7 % per image (NUAA unchanged).
    const INPUT: InputSpec = InputSpec {
        width: SIDE,
        height: SIDE,
        channels: Channels::Bgr,
        resample: Resample::Linear,
        scale: Scale::Raw,
    };

    pub(crate) fn load(source: &ModelSource, threads: usize) -> Result<LivenessModel> {
        Ok(LivenessModel {
            model: source.open_with_threads(Self::FILE, Self::INPUT, threads)?,
        })
    }

    /// One-frame liveness: the network's 3 logits, class 0 = live, turned into the log-odds
    /// of live against the two attack classes.
    pub(crate) fn check(&self, image: &Image, face: &Face) -> Result<Liveness> {
        let region =
            face.bbox
                .grown_within(CONTEXT_SCALE, image.width() as f32, image.height() as f32);
        let out = self.model.infer(image, region, &["output"])?;
        let logits = &out[0];
        if logits.len() < 2 {
            return Err(Error::Runtime(format!("{}: expected 3 logits", Self::FILE)));
        }
        // Log-odds of "live" against every other class, from the logits directly (stable).
        let max = logits.iter().copied().fold(f32::MIN, f32::max);
        let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let live = exp[0];
        let other: f32 = exp[1..].iter().sum();
        let score = (live.max(1e-30) / other.max(1e-30)).ln();
        Ok(Liveness::from_score(score, 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sequence of `frames` frames with passive probability `p` and planarity `depth`.
    fn sequence(p: f32, depth: Option<f32>) -> Liveness {
        let mut l = Liveness::from_probability(p);
        l.frames = 8;
        l.with_planarity(Planarity {
            depth,
            deformation: if depth.is_some() { 0.1 } else { 0.0 },
            pairs: 28,
        })
    }

    #[test]
    fn the_fused_rule_in_order() {
        let regular = LivenessPreset::Regular;
        // A still live face at a webcam: the passive network is unsure, the geometry
        // cannot tell, no strong attack evidence: live.
        assert!(sequence(0.2, None).is_live(regular));
        // A replay: strong passive evidence refuses, whatever the geometry.
        let replay = sequence(0.0005, Some(0.3)).judge(regular);
        assert_eq!(replay.failure, Some(LivenessFailure::SpoofSuspected));
        // A print that moved: flat, even with a confident passive network.
        let print = sequence(0.99, Some(0.005)).judge(regular);
        assert_eq!(print.failure, Some(LivenessFailure::FlatFace));
        assert!(print.geometry);
        // A head that turned: live.
        assert!(sequence(0.1, Some(0.25)).is_live(regular));
        // One photo keeps the per-image rule: 0.2 is not live at REGULAR.
        let photo = Liveness::from_probability(0.2).judge(regular);
        assert_eq!(photo.failure, Some(LivenessFailure::SpoofSuspected));
        // The probability follows the verdict at every preset.
        for preset in [LivenessPreset::Soft, regular, LivenessPreset::Hardened] {
            for l in [
                sequence(0.2, None),
                sequence(0.99, Some(0.005)),
                sequence(0.1, Some(0.25)),
            ] {
                assert_eq!(l.probability_at(preset) >= 0.5, l.is_live(preset));
            }
        }
    }

    #[test]
    fn planarity_alone_passes_only_a_face_that_moved_in_depth() {
        let regular = LivenessPreset::Regular;
        assert!(sequence(0.0001, Some(0.25)).judge_cues(regular, false).live);
        assert!(!sequence(0.99, Some(0.005)).judge_cues(regular, false).live);
        assert!(!sequence(0.99, None).judge_cues(regular, false).live);
    }

    #[test]
    fn accumulation_is_the_mean_of_log_odds() {
        let mut acc = LivenessAccumulator::new();
        assert_eq!(acc.result().unwrap_err().code().as_str(), "NO_FRAMES");
        acc.add(Liveness::from_probability(0.9));
        acc.add(Liveness::from_probability(0.1));
        let r = acc.result().unwrap();
        assert!((r.probability - 0.5).abs() < 1e-4);
        assert_eq!(r.frames, 2);
        acc.add(Liveness::from_probability(0.99));
        assert!(acc.result().unwrap().probability > 0.5);
    }

    #[test]
    fn one_extreme_frame_is_clipped() {
        let mut acc = LivenessAccumulator::new();
        for _ in 0..4 {
            acc.add(Liveness::from_probability(0.1));
        }
        acc.add(Liveness::from_score(1000.0, 1));
        // Unclipped, the one frame would outvote four confident ones.
        assert!(acc.result().unwrap().probability < 0.5);
    }

    #[test]
    fn preset_probabilities_put_each_threshold_at_one_half() {
        for preset in [
            LivenessPreset::Soft,
            LivenessPreset::Regular,
            LivenessPreset::Hardened,
        ] {
            let at = Liveness::from_probability(preset.threshold());
            assert!((at.probability_at(preset) - 0.5).abs() < 1e-4, "{preset:?}");
            let live = Liveness::from_probability(0.7);
            assert_eq!(
                live.probability_at(preset) >= 0.5,
                live.is_live(preset),
                "{preset:?}"
            );
        }
    }

    #[test]
    fn presets_are_ordered_and_parse() {
        assert!(LivenessPreset::Soft.threshold() < LivenessPreset::Regular.threshold());
        assert!(LivenessPreset::Regular.threshold() < LivenessPreset::Hardened.threshold());
        assert_eq!(
            LivenessPreset::parse("hardened"),
            Some(LivenessPreset::Hardened)
        );
        assert_eq!(LivenessPreset::parse("x"), None);
    }
}
