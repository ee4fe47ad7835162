//! The selfie stage: the face first fills an oval drawn at a random place and size, then the
//! person performs the engine's active challenge (2-3 random steps: turn left or right, look
//! up, blink, come closer), then faces the camera for one good frame, and the attempt is
//! judged.
//!
//! ```text
//! Placing (oval, corrections) ─filled for OVAL_FRAMES─> Challenge (step k of n, percent)
//!     ─every step done─> Closing (one frame passing the quality gate) ─> judged
//!               └─ timeout, wrong step, face lost ─> a new oval and a new challenge
//! ```
//!
//! The random oval makes the person move before the challenge starts (a fixed replay does
//! not land in it); the challenge is the engine's [`ChallengeTracker`], whose verdict joins
//! the frames' passive and planarity cues ([`ChallengeTracker::finish`]), so the decision is
//! the same rule the server applies to a recorded challenge. Every frame of the challenge
//! also goes to the sequence rule ([`FrameAccumulator`]) that picks the frame to match.
//! Nothing here decides a match; [`crate::flow`] does, through the service's use cases.

use std::time::Instant;

use faceid_core::geometry::BoundingBox;
use faceid_core::{
    Analysis, Challenge, ChallengeConfig, ChallengeFailure, ChallengeTracker, Engine, ErrorCode,
    FrameAccumulator, FrameStep, LivenessPreset, Observation, SequenceAnalysis, Step,
};
use serde::Serialize;

use crate::guidance::Guidance;

/// Consecutive analysed frames with the face in the oval that start the challenge.
pub const OVAL_FRAMES: usize = 3;
/// Longest wait, after the last step, for a frame facing the camera that passes the quality
/// gate; the attempt is then judged on what it has.
pub const CLOSING_MS: u64 = 2_000;

/// The oval guide, in thousandths of the camera frame's width and height (the camera's own
/// coordinates: the UI mirrors the preview and the oval together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Oval {
    /// Centre, horizontally.
    pub cx: u16,
    /// Centre, vertically.
    pub cy: u16,
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
}

/// Face box height over oval height when the face fills the oval, and the band accepted.
const FILL: (f32, f32) = (0.58, 0.95);
/// Largest offset of the face's centre from the oval's, as a share of the oval's size.
const CENTRE_SLACK: f32 = 0.22;

impl Oval {
    /// An oval at a random place and size: centre within the middle fifth-to-two-fifths of
    /// the frame, height 42-58 % of it, a face's proportions in a 4:3 frame.
    pub fn random(rng: &mut fastrand::Rng) -> Oval {
        let height = 420 + rng.u16(0..=160);
        Oval {
            cx: 380 + rng.u16(0..=240),
            cy: 430 + rng.u16(0..=140),
            // Width in frame-width units: 0.78 of the height, in a 4:3 frame.
            width: (f32::from(height) * 0.78 * 0.75).round() as u16,
            height,
        }
    }

    /// What the person must do for `face` (in a `width` x `height` frame) to fill the oval;
    /// `None` when it does.
    pub fn correction(&self, face: &BoundingBox, width: u32, height: u32) -> Option<Guidance> {
        let (w, h) = (width.max(1) as f32, height.max(1) as f32);
        let oval_h = f32::from(self.height) / 1000.0 * h;
        let oval_w = f32::from(self.width) / 1000.0 * w;
        let centre = face.center();
        let (dx, dy) = (
            centre.x - f32::from(self.cx) / 1000.0 * w,
            centre.y - f32::from(self.cy) / 1000.0 * h,
        );
        let fill = face.height() / oval_h;
        if fill < FILL.0 * 0.8 {
            // Far away: coming closer comes first, the centre follows.
            return Some(Guidance::MoveCloser);
        }
        if dx.abs() > CENTRE_SLACK * oval_w || dy.abs() > CENTRE_SLACK * oval_h {
            return Some(Guidance::CenterFace);
        }
        if fill < FILL.0 {
            return Some(Guidance::MoveCloser);
        }
        if fill > FILL.1 {
            return Some(Guidance::MoveBack);
        }
        None
    }
}

/// The step being asked for, as the UI shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StepPrompt {
    /// What to do.
    pub step: Step,
    /// Which step, from 1.
    pub number: u8,
    /// Steps in the challenge.
    pub of: u8,
    /// How far into this step, percent.
    pub percent: u8,
}

/// Where the stage is.
#[derive(Debug)]
enum Phase {
    /// Waiting for the face to fill the oval: consecutive frames that did.
    Placing { filled: usize },
    /// The challenge runs.
    Challenge {
        tracker: Box<ChallengeTracker>,
        sequence: FrameAccumulator,
    },
    /// Every step done: waiting for a frame facing the camera.
    Closing {
        tracker: Box<ChallengeTracker>,
        sequence: FrameAccumulator,
        since_ms: u64,
    },
}

/// What the stage shows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SelfieView {
    /// The oval.
    pub oval: Oval,
    /// The step asked for, while the challenge runs.
    pub step: Option<StepPrompt>,
    /// The correction (or [`Guidance::Good`]).
    pub guidance: Guidance,
    /// Progress through the whole challenge, percent.
    pub progress: u8,
    /// A new challenge after a failed one: the UI says so.
    pub retry: bool,
}

/// What a frame did to the stage.
#[derive(Debug)]
pub enum StageEvent {
    /// Keep going; show this.
    Continue(SelfieView),
    /// The challenge failed in a way the person can retry (timeout, wrong step, face lost):
    /// count a failure, then [`SelfieStage::retry`].
    Retry(ChallengeFailure),
    /// Two faces, or another person's face: the attempt ends with this failure.
    Refuse(ChallengeFailure),
    /// Done: the sequence with the challenge's verdict in its liveness, for the use case.
    Judge(Box<SequenceAnalysis>),
    /// A fault that is not the person's (the engine failed).
    Fault(faceid_core::Error),
}

/// One selfie stage: an oval, then a challenge, re-drawn after each retry.
#[derive(Debug)]
pub struct SelfieStage {
    config: ChallengeConfig,
    preset: LivenessPreset,
    rng: fastrand::Rng,
    epoch: Instant,
    oval: Oval,
    phase: Phase,
    retry: bool,
    guidance: Guidance,
}

impl SelfieStage {
    /// A stage starting at `now`, drawing its ovals and challenges from `config`.
    pub fn new(config: ChallengeConfig, preset: LivenessPreset, now: Instant) -> SelfieStage {
        let mut rng = fastrand::Rng::new();
        let oval = Oval::random(&mut rng);
        SelfieStage {
            config,
            preset,
            rng,
            epoch: now,
            oval,
            phase: Phase::Placing { filled: 0 },
            retry: false,
            guidance: Guidance::LookAtCamera,
        }
    }

    /// A new oval and, once it is filled, a new challenge (after [`StageEvent::Retry`]).
    pub fn retry(&mut self) {
        self.oval = Oval::random(&mut self.rng);
        self.phase = Phase::Placing { filled: 0 };
        self.retry = true;
        self.guidance = Guidance::LookAtCamera;
    }

    /// Whether the challenge has started (the oval was filled).
    pub fn challenged(&self) -> bool {
        !matches!(self.phase, Phase::Placing { .. })
    }

    /// The challenge being performed, once the oval was filled.
    pub fn challenge(&self) -> Option<&Challenge> {
        match &self.phase {
            Phase::Placing { .. } => None,
            Phase::Challenge { tracker, .. } | Phase::Closing { tracker, .. } => {
                Some(tracker.challenge())
            }
        }
    }

    fn at_ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// What to show now.
    pub fn view(&self) -> SelfieView {
        let (step, progress) = match &self.phase {
            Phase::Placing { .. } => (None, 0),
            // The neutral pose is being taken: hold still in the oval, no step yet.
            Phase::Challenge { tracker, .. } if !tracker.ready() => (None, 0),
            Phase::Challenge { tracker, .. } => {
                let p = tracker.progress();
                let of = tracker.challenge().steps.len().max(1);
                let step = p.step.map(|step| StepPrompt {
                    step,
                    number: (p.done + 1).min(of) as u8,
                    of: of as u8,
                    percent: (p.fraction * 100.0).round() as u8,
                });
                let overall = (p.done as f32 + p.fraction) / of as f32;
                (step, (overall * 100.0).round().min(100.0) as u8)
            }
            Phase::Closing { .. } => (None, 100),
        };
        SelfieView {
            oval: self.oval,
            step,
            guidance: self.guidance,
            progress,
            retry: self.retry,
        }
    }

    /// Adds one analysed camera frame of `width` x `height` at `now`.
    pub fn observe(
        &mut self,
        engine: &Engine,
        analysed: faceid_core::Result<Analysis>,
        width: u32,
        height: u32,
        now: Instant,
    ) -> StageEvent {
        let at_ms = self.at_ms(now);
        let Some(observation) = Observation::analysed(at_ms, &analysed) else {
            return match analysed {
                Err(e) => StageEvent::Fault(e),
                Ok(_) => StageEvent::Continue(self.view()),
            };
        };
        if observation.faces > 1 {
            return StageEvent::Refuse(ChallengeFailure::MultipleFaces);
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Placing { filled: 0 });
        self.phase = match phase {
            Phase::Placing { filled } => {
                let correction = match &analysed {
                    Ok(a) => self.oval.correction(&a.face.bbox, width, height),
                    Err(e) => Some(Guidance::for_error(e.code())),
                };
                self.guidance = correction.unwrap_or(Guidance::Good);
                match correction {
                    Some(_) => Phase::Placing { filled: 0 },
                    None if filled + 1 >= OVAL_FRAMES => {
                        let mut entropy = [0u8; 32];
                        self.rng.fill(&mut entropy);
                        let challenge = Challenge::draw(&self.config, entropy, at_ms);
                        Phase::Challenge {
                            tracker: Box::new(
                                engine.challenge_tracker(challenge, self.config.clone()),
                            ),
                            sequence: FrameAccumulator::new(),
                        }
                    }
                    None => Phase::Placing { filled: filled + 1 },
                }
            }
            Phase::Challenge {
                mut tracker,
                mut sequence,
            } => {
                let progress = tracker.observe(&observation);
                let seen = match sequence.observe(analysed) {
                    Ok(seen) => seen,
                    Err(e) => return StageEvent::Fault(e),
                };
                if let Some(failure) = progress.failed {
                    return match failure {
                        ChallengeFailure::MultipleFaces | ChallengeFailure::FaceChanged => {
                            StageEvent::Refuse(failure)
                        }
                        _ => StageEvent::Retry(failure),
                    };
                }
                self.guidance = match seen.step {
                    FrameStep::Skipped(code) => Guidance::for_error(code),
                    _ if progress.return_to_centre => Guidance::FaceTheCamera,
                    // A turned head fails the pose measures by design: only light is told.
                    _ => match seen.failure {
                        Some(
                            code @ (ErrorCode::TooDark
                            | ErrorCode::TooBright
                            | ErrorCode::UnevenLighting),
                        ) => Guidance::for_error(code),
                        _ => Guidance::Good,
                    },
                };
                if progress.step.is_none() {
                    Phase::Closing {
                        tracker,
                        sequence,
                        since_ms: at_ms,
                    }
                } else {
                    Phase::Challenge { tracker, sequence }
                }
            }
            Phase::Closing {
                mut tracker,
                mut sequence,
                since_ms,
            } => {
                tracker.observe(&observation);
                let seen = match sequence.observe(analysed) {
                    Ok(seen) => seen,
                    Err(e) => return StageEvent::Fault(e),
                };
                self.guidance = Guidance::for_frame(&seen, width, height);
                let facing = seen.face.is_some() && seen.failure.is_none();
                if facing || at_ms.saturating_sub(since_ms) >= CLOSING_MS {
                    let outcome = tracker.finish(self.preset);
                    tracing::info!(
                        passed = outcome.passed,
                        reason = outcome.reason.map(|r| r.code()),
                        "challenge done"
                    );
                    return match sequence.finish_judged(outcome.liveness) {
                        Ok(probe) => StageEvent::Judge(Box::new(probe)),
                        Err(e) => StageEvent::Fault(e),
                    };
                }
                Phase::Closing {
                    tracker,
                    sequence,
                    since_ms,
                }
            }
        };
        StageEvent::Continue(self.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(cx: f32, cy: f32, h: f32) -> BoundingBox {
        BoundingBox::new(cx - h * 0.4, cy - h / 2.0, cx + h * 0.4, cy + h / 2.0)
    }

    #[test]
    fn random_ovals_stay_inside_the_frame_and_vary() {
        let mut rng = fastrand::Rng::with_seed(7);
        let ovals: Vec<Oval> = (0..200).map(|_| Oval::random(&mut rng)).collect();
        for o in &ovals {
            assert!(o.cx >= o.width / 2 && o.cx + o.width / 2 <= 1000, "{o:?}");
            assert!(o.cy >= o.height / 2 && o.cy + o.height / 2 <= 1000, "{o:?}");
        }
        let places: std::collections::HashSet<(u16, u16)> =
            ovals.iter().map(|o| (o.cx / 50, o.cy / 50)).collect();
        assert!(places.len() >= 10, "ovals land in {} places", places.len());
    }

    #[test]
    fn the_face_must_fill_the_oval() {
        let oval = Oval {
            cx: 500,
            cy: 500,
            width: 300,
            height: 500,
        };
        // 640x480 frame: the oval is 240 px high, centred at (320, 240).
        assert_eq!(oval.correction(&face(320.0, 240.0, 180.0), 640, 480), None);
        assert_eq!(
            oval.correction(&face(320.0, 240.0, 120.0), 640, 480),
            Some(Guidance::MoveCloser)
        );
        assert_eq!(
            oval.correction(&face(320.0, 240.0, 80.0), 640, 480),
            Some(Guidance::MoveCloser),
            "far away: closer first"
        );
        assert_eq!(
            oval.correction(&face(320.0, 240.0, 260.0), 640, 480),
            Some(Guidance::MoveBack)
        );
        assert_eq!(
            oval.correction(&face(420.0, 240.0, 180.0), 640, 480),
            Some(Guidance::CenterFace)
        );
        assert_eq!(
            oval.correction(&face(320.0, 320.0, 180.0), 640, 480),
            Some(Guidance::CenterFace)
        );
    }
}
