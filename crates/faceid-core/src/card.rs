//! ID-card portrait extraction: a photo or scan of an identity document, in any of the four
//! orientations and not necessarily filling the frame -> the holder's portrait face.
//!
//! Every quarter turn is searched. In each, the largest face is the portrait (secondary
//! "ghost" portraits are printed smaller); the orientation chosen is the one where that face
//! sits upright (eyes level and above the mouth, per the landmarks) with the highest
//! detector confidence.

use serde::Serialize;

use crate::image::{Image, Rotation};
use crate::landmarks::Face;

/// The portrait found on a document.
#[derive(Debug, Clone, Serialize)]
pub struct CardPortrait {
    /// Quarter turn that makes the document upright.
    pub rotation: Rotation,
    /// The portrait face, in the coordinates of the upright document.
    pub face: Face,
    /// The upright document.
    #[serde(skip)]
    pub upright: Image,
}

/// Whether a face's landmarks are upright: eye line above the mouth and roughly level,
/// image-left eye on the left.
pub(crate) fn is_upright(face: &Face) -> bool {
    let [le, re, _nose, lm, rm] = face.landmarks.five();
    let eye_y = (le.y + re.y) / 2.0;
    let mouth_y = (lm.y + rm.y) / 2.0;
    let eye_dx = re.x - le.x;
    mouth_y > eye_y && eye_dx > 0.0 && (re.y - le.y).abs() < eye_dx
}

/// Orders two candidate (rotation, face) pairs: upright first, then detector confidence.
pub(crate) fn better(candidate: &Face, than: &Face) -> bool {
    (is_upright(candidate), candidate.score) > (is_upright(than), than.score)
}

/// Rotations to search, upright first.
pub(crate) const SEARCH_ORDER: [Rotation; 4] = Rotation::ALL;
