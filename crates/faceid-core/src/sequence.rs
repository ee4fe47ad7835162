//! A selfie sequence (video frames or a burst of photos) -> one [`SequenceAnalysis`].
//!
//! The rules for a sequence live here so that the server's video endpoints and the kiosk's
//! camera loop decide alike:
//! - a clip shorter than [`EngineConfig::min_video_seconds`](crate::EngineConfig) is refused
//!   (`VIDEO_TOO_SHORT`);
//! - a frame with two sizeable faces refuses the whole sequence (`MULTIPLE_FACES`): a
//!   bystander or a photo held beside the subject never passes, even briefly;
//! - liveness is accumulated over every frame with one face (mean log-odds);
//! - the frame matched is the best by overall quality, preferring frames that pass the
//!   quality gate;
//! - a sequence with no usable frame is refused with the most frequent per-frame reason.

use crate::engine::{Analysis, Engine};
use crate::error::{Error, ErrorCode, Result};
use crate::image::Image;
use crate::liveness::{Liveness, LivenessAccumulator};

/// What a sequence of frames showed.
#[derive(Debug, Clone)]
pub struct SequenceAnalysis {
    /// The analysis of the frame chosen for matching.
    pub best: Analysis,
    /// Index of that frame in the input.
    pub best_frame: usize,
    /// Liveness accumulated over every frame with one face.
    pub liveness: Liveness,
    /// Frames given.
    pub frames: usize,
    /// Frames in which one face was analysed.
    pub frames_with_face: usize,
}

impl Engine {
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
        if let Some(seconds) = duration_secs {
            let min_seconds = self.config().min_video_seconds;
            if seconds < f64::from(min_seconds) {
                return Err(Error::VideoTooShort {
                    seconds: seconds as f32,
                    min_seconds,
                });
            }
        }
        let mut liveness = LivenessAccumulator::new();
        let mut best: Option<(usize, Analysis)> = None;
        let mut refusals: Vec<Error> = Vec::new();
        for (index, frame) in frames.iter().enumerate() {
            let analysis = match self.analyze(frame) {
                Ok(analysis) => analysis,
                Err(e @ Error::MultipleFaces { .. }) => return Err(e),
                Err(e) if e.code().is_capture_problem() => {
                    refusals.push(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            liveness.add(analysis.liveness);
            let better = match &best {
                None => true,
                Some((_, current)) => rank(&analysis) > rank(current),
            };
            if better {
                best = Some((index, analysis));
            }
        }
        let Some((best_frame, best)) = best else {
            return Err(most_frequent(refusals));
        };
        Ok(SequenceAnalysis {
            best,
            best_frame,
            liveness: liveness.result()?,
            frames: frames.len(),
            frames_with_face: liveness.frames(),
        })
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
