//! A selfie sequence (video frames, a burst of photos, or the kiosk's camera) -> one
//! [`SequenceAnalysis`].
//!
//! The rules for a sequence live here, in [`FrameAccumulator`], so that the server's video
//! endpoints, the CLI and the kiosk's camera loop decide alike:
//! - a clip shorter than [`EngineConfig::min_video_seconds`](crate::EngineConfig) is refused
//!   (`VIDEO_TOO_SHORT`);
//! - a frame with two sizeable faces refuses the whole sequence (`MULTIPLE_FACES`): a
//!   bystander or a photo held beside the subject never passes, even briefly;
//! - a frame refused for a capture reason (no face, too small, ...) is skipped and counted;
//!   any other error ends the sequence with that error;
//! - liveness is accumulated over every frame with one face (mean log-odds) and the
//!   planarity cue is measured over their landmarks; `Liveness::judge` fuses the two;
//! - the frame matched is the best by overall quality, preferring frames that pass the
//!   quality gate;
//! - a sequence with no usable frame is refused with the most frequent per-frame reason.

use crate::engine::{Analysis, Engine};
use crate::error::{Error, ErrorCode, Result};
use crate::geometry::{BoundingBox, Point};
use crate::image::Image;
use crate::liveness::{Liveness, LivenessAccumulator};
use crate::planarity::{self, Texture};

/// What a sequence of frames showed.
#[derive(Debug, Clone)]
pub struct SequenceAnalysis {
    /// The analysis of the frame chosen for matching.
    pub best: Analysis,
    /// Index of that frame in the input.
    pub best_frame: usize,
    /// Liveness over every frame with one face: the passive network accumulated, and the
    /// planarity cue when there were two frames or more.
    pub liveness: Liveness,
    /// Frames given.
    pub frames: usize,
    /// Frames in which one face was analysed.
    pub frames_with_face: usize,
}

/// What one frame did to a sequence (the kiosk turns it into guidance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStep {
    /// The frame was analysed and became the best so far.
    Best,
    /// The frame was analysed; an earlier one stays the best.
    Kept,
    /// The frame was refused for a capture reason and skipped.
    Skipped(ErrorCode),
}

/// What one frame showed, for live guidance (the kiosk): the step, and when the frame had
/// one face, its box and the first quality measure it fails.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameSeen {
    /// What the frame did to the sequence.
    pub step: FrameStep,
    /// The face's box, when one face was analysed.
    pub face: Option<BoundingBox>,
    /// The first failing quality measure of that face, if any.
    pub failure: Option<ErrorCode>,
}

/// The sequence rule, one frame at a time. [`Engine::analyze_sequence`] feeds it a whole
/// clip; the kiosk feeds it camera frames as they arrive and decides once enough frames
/// pass the quality gate ([`FrameAccumulator::passing_frames`]).
#[derive(Debug, Default)]
pub struct FrameAccumulator {
    liveness: LivenessAccumulator,
    best: Option<(usize, Analysis)>,
    refusals: Vec<Error>,
    frames: usize,
    passing: usize,
    /// Landmarks and texture of every analysed face, in order, for the planarity cue.
    landmarks: Vec<(Vec<Point>, Option<Texture>)>,
}

impl FrameAccumulator {
    /// An empty sequence.
    pub fn new() -> FrameAccumulator {
        FrameAccumulator::default()
    }

    /// Adds the analysis of the next frame. `Err` ends the sequence: two sizeable faces
    /// (`MULTIPLE_FACES`), or an error that is not about the capture (corrupt input, a
    /// runtime failure).
    pub fn add(&mut self, analysed: Result<Analysis>) -> Result<FrameStep> {
        let index = self.frames;
        self.frames += 1;
        let analysis = match analysed {
            Ok(analysis) => analysis,
            Err(e @ Error::MultipleFaces { .. }) => return Err(e),
            Err(e) if e.code().is_capture_problem() => {
                let code = e.code();
                self.refusals.push(e);
                return Ok(FrameStep::Skipped(code));
            }
            Err(e) => return Err(e),
        };
        self.liveness.add(analysis.liveness);
        self.landmarks.push((
            analysis.face.landmarks.points().to_vec(),
            analysis.texture.clone(),
        ));
        if analysis.quality.passed() {
            self.passing += 1;
        }
        let better = self
            .best
            .as_ref()
            .is_none_or(|(_, current)| rank(&analysis) > rank(current));
        if better {
            self.best = Some((index, analysis));
            Ok(FrameStep::Best)
        } else {
            Ok(FrameStep::Kept)
        }
    }

    /// [`FrameAccumulator::add`], also telling what the frame showed (for guidance). The
    /// analysis may be made elsewhere (the kiosk analyses outside its lock) with
    /// [`Engine::analyze`].
    pub fn observe(&mut self, analysed: Result<Analysis>) -> Result<FrameSeen> {
        let (face, failure) = match &analysed {
            Ok(a) => (
                Some(a.face.bbox),
                a.quality.first_failure().map(|e| e.code()),
            ),
            Err(_) => (None, None),
        };
        Ok(FrameSeen {
            step: self.add(analysed)?,
            face,
            failure,
        })
    }

    /// Frames added so far.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Frames in which one face was analysed.
    pub fn frames_with_face(&self) -> usize {
        self.liveness.frames()
    }

    /// Frames whose face passed the quality gate.
    pub fn passing_frames(&self) -> usize {
        self.passing
    }

    /// The sequence so far: `NO_FRAMES` when nothing was added, the most frequent capture
    /// refusal when no frame had a usable face.
    pub fn finish(self) -> Result<SequenceAnalysis> {
        if self.frames == 0 {
            return Err(Error::NoFrames);
        }
        let Some((best_frame, best)) = self.best else {
            return Err(most_frequent(self.refusals));
        };
        let mut liveness = self.liveness.result()?;
        if self.landmarks.len() > 1 {
            liveness = liveness.with_planarity(planarity::measure_kept(&self.landmarks));
        }
        Ok(SequenceAnalysis {
            best,
            best_frame,
            liveness,
            frames: self.frames,
            frames_with_face: self.liveness.frames(),
        })
    }
}

impl FrameAccumulator {
    /// The sequence with its liveness cues already judged elsewhere (a challenge tracker
    /// that saw the same frames): the frames' own passive and planarity cues are not
    /// measured again. Without `cues` (no face reached the tracker), as [`Self::finish`].
    pub fn finish_judged(self, cues: Option<Liveness>) -> Result<SequenceAnalysis> {
        let Some(liveness) = cues else {
            return self.finish();
        };
        if self.frames == 0 {
            return Err(Error::NoFrames);
        }
        let Some((best_frame, best)) = self.best else {
            return Err(most_frequent(self.refusals));
        };
        Ok(SequenceAnalysis {
            best,
            best_frame,
            liveness,
            frames: self.frames,
            frames_with_face: self.liveness.frames(),
        })
    }
}

impl Engine {
    /// The clip-length rule: a video (`Some(seconds)`) shorter than `min_video_seconds` is
    /// `VIDEO_TOO_SHORT`; stills (`None`) have no length.
    pub fn check_duration(&self, duration_secs: Option<f64>) -> Result<()> {
        let min_seconds = self.config().min_video_seconds;
        match duration_secs {
            Some(seconds) if seconds < f64::from(min_seconds) => Err(Error::VideoTooShort {
                seconds: seconds as f32,
                min_seconds,
            }),
            _ => Ok(()),
        }
    }

    /// Analyses a sequence of frames of one person. `duration_secs` is the clip length when
    /// the frames come from a video (checked against the minimum), `None` for still photos.
    pub fn analyze_sequence(
        &self,
        frames: &[Image],
        duration_secs: Option<f64>,
    ) -> Result<SequenceAnalysis> {
        if frames.is_empty() {
            return Err(Error::NoFrames);
        }
        self.check_duration(duration_secs)?;
        let mut sequence = FrameAccumulator::new();
        for frame in frames {
            self.add_frame(&mut sequence, frame)?;
        }
        sequence.finish()
    }

    /// Analyses the next frame of `sequence` and adds it by the sequence rule. `Err` ends
    /// the sequence (two sizeable faces, or a fault that is not about the capture).
    pub fn add_frame(&self, sequence: &mut FrameAccumulator, frame: &Image) -> Result<FrameSeen> {
        sequence.observe(self.analyze(frame))
    }
}

/// Frames passing the quality gate first, then by overall quality.
fn rank(analysis: &Analysis) -> (bool, f32) {
    (analysis.quality.passed(), analysis.quality.overall)
}

fn most_frequent(refusals: Vec<Error>) -> Error {
    let mut counts: Vec<(ErrorCode, usize)> = Vec::new();
    for e in &refusals {
        match counts.iter_mut().find(|(c, _)| *c == e.code()) {
            Some((_, n)) => *n += 1,
            None => counts.push((e.code(), 1)),
        }
    }
    let top = counts
        .iter()
        .max_by_key(|(_, n)| *n)
        .map(|(c, _)| *c)
        .unwrap_or(ErrorCode::NoFace);
    refusals
        .into_iter()
        .find(|e| e.code() == top)
        .unwrap_or(Error::NoFace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_sequence_has_no_frames_and_skipped_frames_give_the_common_reason() {
        assert_eq!(
            FrameAccumulator::new().finish().unwrap_err().code(),
            ErrorCode::NoFrames
        );
        let mut sequence = FrameAccumulator::new();
        assert_eq!(
            sequence.add(Err(Error::NoFace)).unwrap(),
            FrameStep::Skipped(ErrorCode::NoFace)
        );
        sequence.add(Err(Error::EyesClosed)).unwrap();
        sequence.add(Err(Error::EyesClosed)).unwrap();
        assert_eq!(sequence.frames(), 3);
        assert_eq!(sequence.finish().unwrap_err().code(), ErrorCode::EyesClosed);
    }

    #[test]
    fn two_faces_or_a_non_capture_error_end_the_sequence() {
        let mut sequence = FrameAccumulator::new();
        sequence.add(Err(Error::NoFace)).unwrap();
        assert_eq!(
            sequence
                .add(Err(Error::MultipleFaces { count: 2 }))
                .unwrap_err()
                .code(),
            ErrorCode::MultipleFaces
        );
        assert_eq!(
            sequence
                .add(Err(Error::CorruptImage { reason: "x".into() }))
                .unwrap_err()
                .code(),
            ErrorCode::CorruptImage
        );
    }
}
