//! What to tell the person in front of the camera. Each [`Guidance`] is a message key the UI
//! translates; the mapping from the engine's verdicts lives here and nowhere else.

use faceid_core::{ErrorCode, FrameSeen, FrameStep};
use serde::Serialize;

/// A live instruction (or the all-clear).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Guidance {
    /// No face yet.
    LookAtCamera,
    /// Two or more people in frame.
    OnePerson,
    /// Face too small.
    MoveCloser,
    /// Face too large for the oval.
    MoveBack,
    /// Face near the edge of the frame, or outside the oval.
    CenterFace,
    /// A turn or look-up is done: face the camera again before the next step.
    FaceTheCamera,
    /// Head turned or tilted.
    LookStraight,
    /// Eyes closed.
    OpenEyes,
    /// Too dark or uneven light.
    MoreLight,
    /// Too bright.
    LessLight,
    /// Blurred: moving or out of focus.
    HoldStill,
    /// A usable frame: keep still while it is checked.
    Good,
}

impl Guidance {
    /// The instruction for an engine refusal of a frame.
    pub fn for_error(code: ErrorCode) -> Guidance {
        match code {
            ErrorCode::MultipleFaces => Guidance::OnePerson,
            ErrorCode::FaceTooSmall => Guidance::MoveCloser,
            ErrorCode::BadPose => Guidance::LookStraight,
            ErrorCode::EyesClosed => Guidance::OpenEyes,
            ErrorCode::TooDark | ErrorCode::UnevenLighting | ErrorCode::LowContrast => {
                Guidance::MoreLight
            }
            ErrorCode::TooBright => Guidance::LessLight,
            ErrorCode::TooBlurry => Guidance::HoldStill,
            _ => Guidance::LookAtCamera,
        }
    }

    /// The instruction for a frame of `width` x `height` as the sequence rule saw it:
    /// a skipped frame's refusal, then off-centre faces (the person can fix it at once),
    /// then the quality gate's first failure.
    pub fn for_frame(seen: &FrameSeen, width: u32, height: u32) -> Guidance {
        if let FrameStep::Skipped(code) = seen.step {
            return Guidance::for_error(code);
        }
        let Some(face) = seen.face else {
            return Guidance::LookAtCamera;
        };
        let center = face.center();
        let (fx, fy) = (
            center.x / width.max(1) as f32,
            center.y / height.max(1) as f32,
        );
        if !(0.2..=0.8).contains(&fx) || !(0.15..=0.85).contains(&fy) {
            return Guidance::CenterFace;
        }
        match seen.failure {
            Some(code) => Guidance::for_error(code),
            None => Guidance::Good,
        }
    }
}
