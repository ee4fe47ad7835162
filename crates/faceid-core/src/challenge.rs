//! The active liveness challenge: a random sequence of 2-3 steps the person performs in
//! front of the camera (turn left, turn right, look up, blink, come closer), tracked frame
//! by frame.
//!
//! A print cannot turn or blink; a replay performs the steps of another challenge, in
//! another order, at other times. The tracker therefore checks, for every frame:
//!
//! - exactly one face (`MULTIPLE_FACES`), never absent for longer than
//!   [`ChallengeConfig::face_lost_ms`] (`FACE_LOST`);
//! - the same person throughout: each frame's template against the first one, at
//!   [`CONTINUITY_SCORE`] (`FACE_CHANGED`);
//! - the steps in the drawn order: a turn or a look-up other than the one asked for fails
//!   (`WRONG_ORDER`; blinks and small approaches happen unasked and are ignored);
//! - the deadline and each step's time limit (`TIMEOUT`).
//!
//! Turns and look-ups are measured against the pose of the first frames (the neutral pose)
//! by the pose network, with hysteresis: a step counts when the head passes the threshold
//! ([`ChallengeConfig::turn_deg`], [`ChallengeConfig::look_up_deg`]) and the next turn
//! counts only after the head came back past half of it. A blink is the eye model's
//! open -> closed for 80-400 ms -> open. Coming closer is the inter-ocular distance growing
//! by [`ChallengeConfig::closer_ratio`]. When every step is done, the frames' cues decide
//! as for any sequence ([`crate::Liveness::judge`]): strong passive evidence of an attack is
//! `SPOOF_SUSPECTED`, a face that turned like a plane is `FLAT_FACE`.
//!
//! Sign conventions: yaw is the pose network's (positive when the person turns to their
//! own left, measured on the shared set's turned faces), pitch positive when looking up.

use serde::{Deserialize, Serialize};

use crate::engine::Analysis;
use crate::geometry::Point;
use crate::liveness::{
    ChallengeVerdict, Liveness, LivenessAccumulator, LivenessFailure, LivenessPreset,
};
use crate::planarity::{self, Texture};
use crate::template::Template;

/// One thing the person is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Turn the head to one's own left.
    TurnLeft,
    /// Turn the head to one's own right.
    TurnRight,
    /// Look up.
    LookUp,
    /// Close and open the eyes.
    Blink,
    /// Come closer to the camera.
    ComeCloser,
}

impl Step {
    /// Every step, in a fixed order.
    pub const ALL: [Step; 5] = [
        Step::TurnLeft,
        Step::TurnRight,
        Step::LookUp,
        Step::Blink,
        Step::ComeCloser,
    ];

    /// The wire name (`turn_left`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Step::TurnLeft => "turn_left",
            Step::TurnRight => "turn_right",
            Step::LookUp => "look_up",
            Step::Blink => "blink",
            Step::ComeCloser => "come_closer",
        }
    }

    /// Whether doing this step unasked fails the challenge (a deliberate head movement);
    /// blinks and small approaches happen on their own.
    fn deliberate(self) -> bool {
        matches!(self, Step::TurnLeft | Step::TurnRight | Step::LookUp)
    }
}

/// How challenges are drawn and tracked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChallengeConfig {
    /// Steps per challenge (2 or 3).
    pub steps: usize,
    /// Steps that may be drawn.
    pub allowed: Vec<Step>,
    /// Time to complete the whole challenge from its issue, milliseconds.
    pub total_timeout_ms: u64,
    /// Time for one step once the previous one is done, milliseconds.
    pub step_timeout_ms: u64,
    /// Longest run without a face, milliseconds.
    pub face_lost_ms: u64,
    /// Yaw change from the neutral pose that counts as a turn, degrees.
    pub turn_deg: f32,
    /// Pitch change that counts as looking up, degrees.
    pub look_up_deg: f32,
    /// Growth of the inter-ocular distance that counts as coming closer.
    pub closer_ratio: f32,
}

impl Default for ChallengeConfig {
    fn default() -> Self {
        ChallengeConfig {
            steps: 2,
            allowed: Step::ALL.to_vec(),
            total_timeout_ms: 20_000,
            step_timeout_ms: 8_000,
            face_lost_ms: 1_000,
            turn_deg: 15.0,
            look_up_deg: 10.0,
            closer_ratio: 1.2,
        }
    }
}

/// A drawn challenge: what to do, in which order, until when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Challenge {
    /// Random nonce naming the challenge (hex).
    pub id: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// When it was issued, milliseconds since the Unix epoch.
    pub issued_at_ms: u64,
    /// When it expires, milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
}

impl Challenge {
    /// Draws a challenge from `entropy` (random bytes from the caller: the engine does no
    /// I/O): `config.steps` distinct steps (clamped to 2-3 and to what is allowed) in random
    /// order, the nonce from the same bytes.
    pub fn draw(config: &ChallengeConfig, entropy: [u8; 32], now_ms: u64) -> Challenge {
        let mut pool: Vec<Step> = Step::ALL
            .into_iter()
            .filter(|s| config.allowed.contains(s))
            .collect();
        if pool.len() < 2 {
            pool = Step::ALL.to_vec();
        }
        let count = config.steps.clamp(2, 3).min(pool.len());
        let mut steps = Vec::with_capacity(count);
        // One head turn whenever turns are allowed: the nose's parallax across a turn is
        // the planarity cue's evidence of a head (a look-up shows less, a blink or an
        // approach none), so a challenge without one leaves the passive network alone.
        let turns: Vec<Step> = pool
            .iter()
            .copied()
            .filter(|s| matches!(s, Step::TurnLeft | Step::TurnRight))
            .collect();
        if !turns.is_empty() {
            let turn = turns[usize::from(entropy[0]) % turns.len()];
            pool.retain(|s| *s != turn);
            steps.push(turn);
        }
        for byte in entropy[1..].iter().take(count - steps.len()) {
            let step = pool.remove(usize::from(*byte) % pool.len());
            steps.push(step);
        }
        // The turn's place in the order is random too.
        let place = usize::from(entropy[8]) % steps.len();
        let first = steps.remove(0);
        steps.insert(place, first);
        Challenge {
            id: entropy[16..].iter().map(|b| format!("{b:02x}")).collect(),
            steps,
            issued_at_ms: now_ms,
            expires_at_ms: now_ms + config.total_timeout_ms,
        }
    }
}

/// What one frame showed, as the tracker needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Frame time, milliseconds (same clock as the challenge).
    pub at_ms: u64,
    /// Sizeable faces in the frame.
    pub faces: usize,
    /// The face, when there was exactly one.
    pub face: Option<FaceObservation>,
}

/// The face of one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceObservation {
    /// The 68 landmarks.
    pub landmarks: Vec<Point>,
    /// Yaw, degrees (positive: turned to the person's own left).
    pub yaw_deg: f32,
    /// Pitch, degrees (positive: looking up).
    pub pitch_deg: f32,
    /// Probability both eyes are open (the less open eye).
    pub eyes_open: f32,
    /// Inter-ocular distance, pixels.
    pub inter_eye_px: f32,
    /// One-frame passive liveness.
    pub passive: Liveness,
    /// The face's template (identity throughout).
    pub template: Option<Template>,
    /// The grey image around the face, for the planarity cue.
    pub texture: Option<Texture>,
}

impl Observation {
    /// A frame with one analysed face.
    pub fn face(at_ms: u64, analysis: &Analysis) -> Observation {
        let q = &analysis.quality;
        Observation {
            at_ms,
            faces: 1,
            face: Some(FaceObservation {
                landmarks: analysis.face.landmarks.points().to_vec(),
                yaw_deg: q.yaw_deg.value,
                pitch_deg: q.pitch_deg.value,
                eyes_open: q.left_eye_open.value.min(q.right_eye_open.value),
                inter_eye_px: q.inter_eye_px.value,
                passive: analysis.liveness,
                template: Some(analysis.template.clone()),
                texture: analysis.texture.clone(),
            }),
        }
    }

    /// What an analysis result showed: one face, two faces, or no usable face (any capture
    /// refusal). `None` for a fault that is not about the capture (it ends the attempt).
    pub fn analysed(at_ms: u64, analysed: &crate::Result<Analysis>) -> Option<Observation> {
        match analysed {
            Ok(analysis) => Some(Observation::face(at_ms, analysis)),
            Err(crate::Error::MultipleFaces { count }) => {
                Some(Observation::several(at_ms, (*count).max(2)))
            }
            Err(e) if e.code().is_capture_problem() => Some(Observation::no_face(at_ms)),
            Err(_) => None,
        }
    }

    /// A frame without a face.
    pub fn no_face(at_ms: u64) -> Observation {
        Observation {
            at_ms,
            faces: 0,
            face: None,
        }
    }

    /// A frame with `faces` sizeable faces.
    pub fn several(at_ms: u64, faces: usize) -> Observation {
        Observation {
            at_ms,
            faces,
            face: None,
        }
    }
}

/// Why a challenge failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChallengeFailure {
    /// The deadline or a step's time limit passed, or the frames ended first.
    Timeout,
    /// A turn or look-up other than the one asked for.
    WrongOrder,
    /// Another person's face appeared.
    FaceChanged,
    /// Two faces in a frame.
    MultipleFaces,
    /// The face moved like a plane.
    FlatFace,
    /// The passive network found strong evidence of an attack.
    SpoofSuspected,
    /// No face for too long.
    FaceLost,
}

impl ChallengeFailure {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            ChallengeFailure::Timeout => "TIMEOUT",
            ChallengeFailure::WrongOrder => "WRONG_ORDER",
            ChallengeFailure::FaceChanged => "FACE_CHANGED",
            ChallengeFailure::MultipleFaces => "MULTIPLE_FACES",
            ChallengeFailure::FlatFace => "FLAT_FACE",
            ChallengeFailure::SpoofSuspected => "SPOOF_SUSPECTED",
            ChallengeFailure::FaceLost => "FACE_LOST",
        }
    }
}

/// What to tell the person now.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Progress {
    /// The step being asked for (`None` when all are done or the challenge failed).
    pub step: Option<Step>,
    /// Steps done so far.
    pub done: usize,
    /// How far into the current step, 0..1 (turn angle, eye closure, approach).
    pub fraction: f32,
    /// Whether the head must first come back to face the camera.
    pub return_to_centre: bool,
    /// The failure, once failed (the tracker stops there).
    pub failed: Option<ChallengeFailure>,
}

/// One step's result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StepResult {
    /// The step.
    pub step: Step,
    /// When it was completed, if it was.
    pub done_at_ms: Option<u64>,
}

/// The final verdict of a challenge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChallengeOutcome {
    /// Whether the person passed.
    pub passed: bool,
    /// Why not.
    pub reason: Option<ChallengeFailure>,
    /// Each step and when it was done.
    pub steps: Vec<StepResult>,
    /// The cues over the frames (passive accumulated, planarity), for audit.
    pub liveness: Option<Liveness>,
}

/// A blink in progress.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Eyes {
    Open,
    Closed { since_ms: u64 },
}

/// Follows one person through one challenge, frame by frame.
#[derive(Debug, Clone)]
pub struct ChallengeTracker {
    challenge: Challenge,
    config: ChallengeConfig,
    same_person_cosine: f32,
    neutral: Vec<(f32, f32, f32)>,
    done: Vec<Option<u64>>,
    step_started_ms: u64,
    /// A deliberate movement is held; the next counts after it is released.
    held: Option<Step>,
    eyes: Eyes,
    last_face_ms: Option<u64>,
    first_template: Option<Template>,
    passive: LivenessAccumulator,
    landmarks: Vec<(Vec<Point>, Option<Texture>)>,
    failed: Option<ChallengeFailure>,
    fraction: f32,
}

/// Frames that set the neutral pose.
const NEUTRAL_FRAMES: usize = 3;
/// Eye-open probability under which the eyes count as closed, and over which as open.
const EYES_CLOSED: f32 = 0.3;
const EYES_OPEN: f32 = 0.6;
/// A blink's closed phase, milliseconds: from a natural blink (80 ms) to the slow, deliberate
/// one people make when asked to close their eyes and open them (over a second is eyes
/// kept shut, not a blink).
const BLINK_MS: (u64, u64) = (80, 1_200);

impl ChallengeTracker {
    /// Tracks `challenge`; `same_person_cosine` is the template cosine under which a later
    /// face is another person ([`crate::Engine::challenge_tracker`] sets it from
    /// [`CONTINUITY_SCORE`]).
    pub fn new(
        challenge: Challenge,
        config: ChallengeConfig,
        same_person_cosine: f32,
    ) -> ChallengeTracker {
        let steps = challenge.steps.len();
        ChallengeTracker {
            step_started_ms: challenge.issued_at_ms,
            challenge,
            config,
            same_person_cosine,
            neutral: Vec::new(),
            done: vec![None; steps],
            held: None,
            eyes: Eyes::Open,
            last_face_ms: None,
            first_template: None,
            passive: LivenessAccumulator::new(),
            landmarks: Vec::new(),
            failed: None,
            fraction: 0.0,
        }
    }

    /// Whether the neutral pose is set (the first frames after the issue): until then the
    /// person should hold still, and a kiosk shows no step yet, so that a head already
    /// moving does not become the reference the turns are measured from.
    pub fn ready(&self) -> bool {
        self.neutral.len() >= NEUTRAL_FRAMES
    }

    /// The challenge tracked.
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    fn current(&self) -> Option<(usize, Step)> {
        self.done
            .iter()
            .position(Option::is_none)
            .map(|i| (i, self.challenge.steps[i]))
    }

    /// What to tell the person now (the last frame's progress).
    pub fn progress(&self) -> Progress {
        Progress {
            step: self
                .failed
                .is_none()
                .then(|| self.current().map(|(_, s)| s))
                .flatten(),
            done: self.done.iter().flatten().count(),
            fraction: self.fraction,
            return_to_centre: self.held.is_some(),
            failed: self.failed,
        }
    }

    fn fail(&mut self, failure: ChallengeFailure) -> Progress {
        self.failed = Some(failure);
        self.progress()
    }

    /// Adds the next frame and says what to show.
    pub fn observe(&mut self, observation: &Observation) -> Progress {
        if self.failed.is_some() {
            return self.progress();
        }
        let now = observation.at_ms;
        if self.current().is_some()
            && (now > self.challenge.expires_at_ms
                || now.saturating_sub(self.step_started_ms) > self.config.step_timeout_ms)
        {
            return self.fail(ChallengeFailure::Timeout);
        }
        if observation.faces > 1 {
            return self.fail(ChallengeFailure::MultipleFaces);
        }
        let Some(face) = &observation.face else {
            let since = self.last_face_ms.unwrap_or(self.challenge.issued_at_ms);
            if now.saturating_sub(since) > self.config.face_lost_ms {
                return self.fail(ChallengeFailure::FaceLost);
            }
            return self.progress();
        };
        self.last_face_ms = Some(now);
        if let Some(template) = &face.template {
            match &self.first_template {
                None => self.first_template = Some(template.clone()),
                Some(first) => {
                    if first.cosine(template).unwrap_or(-1.0) < self.same_person_cosine {
                        return self.fail(ChallengeFailure::FaceChanged);
                    }
                }
            }
        }
        self.passive.add(face.passive);
        self.landmarks
            .push((face.landmarks.clone(), face.texture.clone()));
        if self.neutral.len() < NEUTRAL_FRAMES {
            self.neutral
                .push((face.yaw_deg, face.pitch_deg, face.inter_eye_px.max(1.0)));
            if self.neutral.len() == NEUTRAL_FRAMES {
                self.step_started_ms = self.step_started_ms.max(now);
            }
            return self.progress();
        }
        let n = self.neutral.len() as f32;
        let yaw0 = self.neutral.iter().map(|v| v.0).sum::<f32>() / n;
        let pitch0 = self.neutral.iter().map(|v| v.1).sum::<f32>() / n;
        let iod0 = self.neutral.iter().map(|v| v.2).sum::<f32>() / n;
        let (dyaw, dpitch, scale) = (
            face.yaw_deg - yaw0,
            face.pitch_deg - pitch0,
            face.inter_eye_px / iod0,
        );
        let turn = self.config.turn_deg;
        let up = self.config.look_up_deg;
        // Which deliberate movement the head is making now, if any.
        let making = if dyaw >= turn {
            Some(Step::TurnLeft)
        } else if dyaw <= -turn {
            Some(Step::TurnRight)
        } else if dpitch >= up {
            Some(Step::LookUp)
        } else {
            None
        };
        if let Some(held) = self.held {
            let released = match held {
                Step::TurnLeft | Step::TurnRight => dyaw.abs() <= turn / 2.0,
                Step::LookUp => dpitch <= up / 2.0,
                _ => true,
            };
            if released {
                self.held = None;
            }
        }
        // Eyes are read only on a face near its neutral pose: on a turned or raised head the
        // eye-openness network reads shut eyes, and coming back would count as a blink.
        let frontal = self.held.is_none() && dyaw.abs() <= turn / 2.0 && dpitch.abs() <= up / 2.0;
        let closed_since = self.blink(face.eyes_open, frontal, now);
        let Some((index, step)) = self.current() else {
            return self.progress();
        };
        self.fraction = match step {
            Step::TurnLeft => (dyaw / turn).clamp(0.0, 1.0),
            Step::TurnRight => (-dyaw / turn).clamp(0.0, 1.0),
            Step::LookUp => (dpitch / up).clamp(0.0, 1.0),
            Step::Blink => (1.0 - face.eyes_open).clamp(0.0, 1.0),
            Step::ComeCloser => ((scale - 1.0) / (self.config.closer_ratio - 1.0)).clamp(0.0, 1.0),
        };
        if self.held.is_none()
            && let Some(movement) = making
            && movement != step
            && movement.deliberate()
        {
            return self.fail(ChallengeFailure::WrongOrder);
        }
        let completed = match step {
            // A blink answers the prompt when the eyes closed after it was shown.
            Step::Blink => closed_since.is_some_and(|since| since >= self.step_started_ms),
            Step::ComeCloser => scale >= self.config.closer_ratio,
            _ => self.held.is_none() && making == Some(step),
        };
        if completed {
            self.done[index] = Some(now);
            self.step_started_ms = now;
            self.fraction = 0.0;
            if step.deliberate() {
                self.held = Some(step);
            }
        }
        self.progress()
    }

    /// Follows the eyes of a `frontal` face; when a blink just ended, the time the eyes
    /// closed. A face turned away forgets a closing in progress.
    fn blink(&mut self, eyes_open: f32, frontal: bool, now: u64) -> Option<u64> {
        if !frontal {
            self.eyes = Eyes::Open;
            return None;
        }
        match self.eyes {
            Eyes::Open if eyes_open <= EYES_CLOSED => {
                self.eyes = Eyes::Closed { since_ms: now };
                None
            }
            Eyes::Closed { since_ms } if eyes_open >= EYES_OPEN => {
                self.eyes = Eyes::Open;
                let closed = now.saturating_sub(since_ms);
                (BLINK_MS.0..=BLINK_MS.1)
                    .contains(&closed)
                    .then_some(since_ms)
            }
            _ => None,
        }
    }

    /// The verdict once the frames end: every step done in order within time, and the cues
    /// of the frames pass the fused rule at `preset`.
    pub fn finish(self, preset: LivenessPreset) -> ChallengeOutcome {
        let liveness = self.passive.result().ok().map(|l| {
            if self.landmarks.len() > 1 {
                l.with_planarity(planarity::measure_kept(&self.landmarks))
            } else {
                l
            }
        });
        let cue = liveness.and_then(|l| {
            l.judge(preset).failure.map(|f| match f {
                LivenessFailure::FlatFace => ChallengeFailure::FlatFace,
                LivenessFailure::SpoofSuspected => ChallengeFailure::SpoofSuspected,
                LivenessFailure::Challenge(reason) => reason,
            })
        });
        // A flat face is the most telling reason: a print turned for the camera rarely
        // completes a turn (the pose network sees a frontal face), yet its geometry says why.
        let reason = match (self.failed, cue) {
            (Some(ChallengeFailure::MultipleFaces | ChallengeFailure::FaceChanged), _) => {
                self.failed
            }
            (_, Some(ChallengeFailure::FlatFace)) => cue,
            (Some(failed), _) => Some(failed),
            (None, _) if self.current().is_some() => Some(ChallengeFailure::Timeout),
            (None, cue) => cue,
        };
        let reason = if liveness.is_none() && reason.is_none() {
            Some(ChallengeFailure::FaceLost)
        } else {
            reason
        };
        let liveness = liveness.map(|l| Liveness {
            challenge: Some(ChallengeVerdict {
                passed: reason.is_none(),
                reason,
            }),
            ..l
        });
        ChallengeOutcome {
            passed: reason.is_none(),
            reason,
            steps: self
                .challenge
                .steps
                .iter()
                .zip(&self.done)
                .map(|(&step, &done_at_ms)| StepResult { step, done_at_ms })
                .collect(),
            liveness,
        }
    }
}

/// Calibrated score under which a later frame's face is another person (false accepts
/// 1 in 100): looser than the 1:1 threshold because the head turns between the frames
/// compared, which lowers the score of the same person (a 23-degree turn of an ORL
/// subject scores 0.58). The decision that follows still matches at its own threshold.
pub const CONTINUITY_SCORE: f32 = 0.5;

impl crate::Engine {
    /// A tracker for `challenge` that tells another person at [`CONTINUITY_SCORE`].
    pub fn challenge_tracker(
        &self,
        challenge: Challenge,
        config: ChallengeConfig,
    ) -> ChallengeTracker {
        let cosine = self.calibration().cosine_for_score(CONTINUITY_SCORE);
        ChallengeTracker::new(challenge, config, cosine)
    }

    /// Tracks `challenge` over a recording: `frames` with their times from the challenge's
    /// issue, in milliseconds. Every frame goes to the tracker (no face and two faces
    /// included) and, when it shows one face, to the sequence rule; the sequence's liveness
    /// carries the challenge's verdict, so every verdict built on it refuses a failed
    /// challenge. `Err` when no frame had a usable face, or on a fault.
    pub fn track_challenge(
        &self,
        challenge: Challenge,
        config: ChallengeConfig,
        frames: &[(u64, &crate::Image)],
    ) -> crate::Result<(ChallengeOutcome, crate::SequenceAnalysis)> {
        let preset = self.config().liveness_preset;
        let start = challenge.issued_at_ms;
        let mut tracker = self.challenge_tracker(challenge, config);
        let mut sequence = crate::FrameAccumulator::new();
        for &(at, image) in frames {
            let analysed = self.analyze(image);
            if let Some(observation) = Observation::analysed(start + at, &analysed) {
                tracker.observe(&observation);
            }
            // Two faces are the tracker's to refuse; a fault ends the recording here.
            if !matches!(analysed, Err(crate::Error::MultipleFaces { .. })) {
                sequence.add(analysed)?;
            }
        }
        let outcome = tracker.finish(preset);
        let probe = sequence.finish_judged(outcome.liveness)?;
        Ok((outcome, probe))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A 3D head (inner face bulging at the nose) seen at `yaw`/`pitch` degrees, `scale`.
    fn landmarks(yaw: f32, pitch: f32, scale: f32, flat: bool) -> Vec<Point> {
        let (y, p) = (f64::from(yaw).to_radians(), f64::from(pitch).to_radians());
        (0..68)
            .map(|i| {
                let (gx, gy) = ((i % 9) as f64 - 4.0, (i / 9) as f64 - 3.5);
                let z = if flat {
                    0.0
                } else {
                    30.0 * (-(gx * gx + gy * gy) / 6.0).exp()
                };
                let (x0, y0) = (gx * 10.0, gy * 10.0);
                let (x1, z1) = (x0 * y.cos() + z * y.sin(), -x0 * y.sin() + z * y.cos());
                let (y1, z2) = (y0 * p.cos() - z1 * p.sin(), y0 * p.sin() + z1 * p.cos());
                let w = 300.0 / f64::from(scale) - z2;
                Point::new(
                    (600.0 * x1 / w + 320.0) as f32,
                    (600.0 * y1 / w + 240.0) as f32,
                )
            })
            .collect()
    }

    fn template(axis: usize) -> Template {
        let mut v = vec![0.01; crate::template::TEMPLATE_DIM];
        v[axis] = 1.0;
        Template::new("m", v).unwrap()
    }

    /// One frame at `at_ms` with a face posed so.
    fn frame(at_ms: u64, yaw: f32, pitch: f32, eyes: f32, scale: f32) -> Observation {
        framed(at_ms, yaw, pitch, eyes, scale, false, 1)
    }

    fn framed(
        at_ms: u64,
        yaw: f32,
        pitch: f32,
        eyes: f32,
        scale: f32,
        flat: bool,
        person: usize,
    ) -> Observation {
        Observation {
            at_ms,
            faces: 1,
            face: Some(FaceObservation {
                landmarks: landmarks(yaw, pitch, scale, flat),
                yaw_deg: yaw,
                pitch_deg: pitch,
                eyes_open: eyes,
                inter_eye_px: 60.0 * scale,
                passive: Liveness::from_probability(0.3),
                template: Some(template(person)),
                texture: None,
            }),
        }
    }

    fn challenge(steps: &[Step]) -> Challenge {
        Challenge {
            id: "c".into(),
            steps: steps.to_vec(),
            issued_at_ms: 0,
            expires_at_ms: 20_000,
        }
    }

    fn run(steps: &[Step], frames: &[Observation]) -> ChallengeOutcome {
        let mut tracker = ChallengeTracker::new(challenge(steps), ChallengeConfig::default(), 0.5);
        for f in frames {
            tracker.observe(f);
        }
        tracker.finish(LivenessPreset::Regular)
    }

    /// Neutral frames, then `moves` (yaw, pitch, eyes, scale) every 100 ms.
    fn recording(moves: &[(f32, f32, f32, f32)]) -> Vec<Observation> {
        let neutral = [(0.0, 0.0, 0.9, 1.0); 3];
        neutral
            .iter()
            .chain(moves)
            .enumerate()
            .map(|(i, &(y, p, e, s))| frame(i as u64 * 100, y, p, e, s))
            .collect()
    }

    const LEFT: (f32, f32, f32, f32) = (25.0, 0.0, 0.9, 1.0);
    const RIGHT: (f32, f32, f32, f32) = (-25.0, 0.0, 0.9, 1.0);
    const CENTRE: (f32, f32, f32, f32) = (0.0, 0.0, 0.9, 1.0);
    const SHUT: (f32, f32, f32, f32) = (0.0, 0.0, 0.1, 1.0);
    const CLOSE: (f32, f32, f32, f32) = (0.0, 0.0, 0.9, 1.3);

    #[test]
    fn the_steps_in_order_pass() {
        let out = run(
            &[Step::TurnLeft, Step::Blink, Step::TurnRight],
            &recording(&[LEFT, LEFT, CENTRE, SHUT, SHUT, CENTRE, RIGHT, CENTRE]),
        );
        assert!(out.passed, "{out:?}");
        assert!(out.steps.iter().all(|s| s.done_at_ms.is_some()));
        assert!(out.liveness.unwrap().planarity.unwrap().depth.is_some());
    }

    #[test]
    fn eyes_read_shut_on_a_turned_head_are_not_a_blink() {
        // The eye network reads a turned head's eyes as shut: the turn, its way back, and
        // no blink at the centre must leave the blink undone.
        const TURNING: (f32, f32, f32, f32) = (15.0, 0.0, 0.0, 1.0);
        const LEFT_SHUT: (f32, f32, f32, f32) = (25.0, 0.0, 0.0, 1.0);
        const LEFT_OPEN: (f32, f32, f32, f32) = (25.0, 0.0, 0.7, 1.0);
        let turn = [TURNING, LEFT_SHUT, LEFT_OPEN, TURNING, CENTRE, CENTRE];
        let out = run(&[Step::TurnLeft, Step::Blink], &recording(&turn));
        assert_eq!(out.steps[1].done_at_ms, None, "{out:?}");
        assert_eq!(out.reason, Some(ChallengeFailure::Timeout));
        // The same turn, then a real blink at the centre: done.
        let mut blinked = turn.to_vec();
        blinked.extend([SHUT, SHUT, CENTRE]);
        let out = run(&[Step::TurnLeft, Step::Blink], &recording(&blinked));
        assert!(out.passed, "{out:?}");
    }

    #[test]
    fn a_turn_out_of_order_fails_wrong_order() {
        let out = run(
            &[Step::TurnLeft, Step::TurnRight],
            &recording(&[RIGHT, CENTRE, LEFT]),
        );
        assert_eq!(out.reason, Some(ChallengeFailure::WrongOrder));
    }

    #[test]
    fn an_unfinished_challenge_times_out() {
        let out = run(
            &[Step::TurnLeft, Step::ComeCloser],
            &recording(&[LEFT, CENTRE]),
        );
        assert_eq!(out.reason, Some(ChallengeFailure::Timeout));
        let mut late = recording(&[CENTRE]);
        late.push(frame(9_500, 0.0, 0.0, 0.9, 1.0));
        assert_eq!(
            run(&[Step::TurnLeft, Step::Blink], &late).reason,
            Some(ChallengeFailure::Timeout)
        );
    }

    #[test]
    fn another_face_fails_face_changed() {
        let mut frames = recording(&[LEFT]);
        frames.push(framed(700, 0.0, 0.0, 0.9, 1.0, false, 7));
        assert_eq!(
            run(&[Step::TurnLeft, Step::Blink], &frames).reason,
            Some(ChallengeFailure::FaceChanged)
        );
    }

    #[test]
    fn two_faces_fail_and_a_lost_face_fails() {
        let mut frames = recording(&[LEFT]);
        frames.push(Observation::several(500, 2));
        assert_eq!(
            run(&[Step::TurnLeft, Step::Blink], &frames).reason,
            Some(ChallengeFailure::MultipleFaces)
        );
        let mut frames = recording(&[LEFT]);
        frames.extend((5..20).map(|i| Observation::no_face(i * 100)));
        assert_eq!(
            run(&[Step::TurnLeft, Step::Blink], &frames).reason,
            Some(ChallengeFailure::FaceLost)
        );
    }

    #[test]
    fn a_turning_print_is_flat() {
        let moves = [
            (0.0, 0.0),
            (0.0, 0.0),
            (0.0, 0.0),
            (25.0, 0.0),
            (0.0, 0.0),
            (-25.0, 0.0),
        ];
        let frames: Vec<Observation> = moves
            .iter()
            .enumerate()
            .map(|(i, &(y, p))| framed(i as u64 * 100, y, p, 0.9, 1.0, true, 1))
            .collect();
        let out = run(&[Step::TurnLeft, Step::TurnRight], &frames);
        assert_eq!(out.reason, Some(ChallengeFailure::FlatFace), "{out:?}");
    }

    #[test]
    fn a_tilted_print_never_turns_and_is_flat() {
        // The print is tilted 30 degrees each way; the pose network sees its frontal face.
        let tilts = [0.0, 0.0, 0.0, 30.0, 15.0, 0.0, -15.0, -30.0];
        let frames: Vec<Observation> = tilts
            .iter()
            .enumerate()
            .map(|(i, &tilt)| {
                let mut f = framed(i as u64 * 100, 0.0, 0.0, 0.9, 1.0, true, 1);
                if let Some(face) = &mut f.face {
                    face.landmarks = landmarks(tilt, 0.0, 1.0, true);
                    face.yaw_deg = 2.0;
                }
                f
            })
            .collect();
        let out = run(&[Step::TurnLeft, Step::TurnRight], &frames);
        assert!(out.steps.iter().all(|s| s.done_at_ms.is_none()));
        assert_eq!(out.reason, Some(ChallengeFailure::FlatFace), "{out:?}");
    }

    #[test]
    fn strong_attack_evidence_fails_spoof_suspected() {
        let mut frames = recording(&[LEFT, CENTRE, CLOSE]);
        for f in &mut frames {
            if let Some(face) = &mut f.face {
                face.passive = Liveness::from_probability(0.0001);
            }
        }
        let out = run(&[Step::TurnLeft, Step::ComeCloser], &frames);
        assert_eq!(out.reason, Some(ChallengeFailure::SpoofSuspected));
    }

    #[test]
    fn drawn_challenges_are_distinct_steps_of_the_asked_count() {
        let config = ChallengeConfig {
            steps: 3,
            ..Default::default()
        };
        let mut seen = std::collections::HashSet::new();
        for seed in 0..=255u8 {
            // Random bytes, as the caller's entropy source gives them.
            let mut entropy = [0u8; 32];
            let mut x = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
            for b in &mut entropy {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = (x >> 24) as u8;
            }
            let c = Challenge::draw(&config, entropy, 1_000);
            assert_eq!(c.steps.len(), 3);
            let unique: std::collections::HashSet<_> = c.steps.iter().collect();
            assert_eq!(unique.len(), 3);
            assert_eq!(c.expires_at_ms, 1_000 + config.total_timeout_ms);
            assert!(
                c.steps
                    .iter()
                    .any(|s| matches!(s, Step::TurnLeft | Step::TurnRight)),
                "a head turn in every challenge: {:?}",
                c.steps
            );
            seen.insert(c.steps);
        }
        assert!(seen.len() > 10, "orders vary");
        let firsts: std::collections::HashSet<Step> = seen.iter().map(|s| s[0]).collect();
        assert!(
            firsts.len() >= 3,
            "the turn is not always first: {firsts:?}"
        );
        // Without turns allowed, the steps are drawn from what is.
        let no_turns = ChallengeConfig {
            allowed: vec![Step::Blink, Step::LookUp, Step::ComeCloser],
            ..Default::default()
        };
        let c = Challenge::draw(&no_turns, [7; 32], 0);
        assert_eq!(c.steps.len(), 2);
        assert!(c.steps.iter().all(|s| no_turns.allowed.contains(s)));
    }
}
