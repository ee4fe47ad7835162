//! Stage 4: [`Face`] -> [`AlignedFace`], the 112x112 crop the embedding network expects.
//!
//! The embedding model was trained on faces warped onto the ArcFace five-point template, so
//! every face is brought onto it with the least-squares similarity over all five points
//! (rotation, scale, shift; no shear), which spreads landmark noise instead of bending the
//! face the way an exact three-point affine does.

use crate::geometry::{Point, Similarity};
use crate::image::Image;
use crate::landmarks::Face;
use crate::sampling::warp_similarity;

/// Side of the aligned crop, pixels.
pub const ALIGNED_SIDE: u32 = 112;

/// The ArcFace reference positions of (left eye, right eye, nose tip, left mouth corner,
/// right mouth corner) in a 112x112 crop.
pub const ARCFACE_TEMPLATE: [Point; 5] = [
    Point::new(38.2946, 51.6963),
    Point::new(73.5318, 51.5014),
    Point::new(56.0252, 71.7366),
    Point::new(41.5493, 92.3655),
    Point::new(70.7299, 92.2041),
];

/// A face warped onto the ArcFace template.
#[derive(Debug, Clone)]
pub struct AlignedFace {
    image: Image,
}

impl AlignedFace {
    /// Wraps an already aligned 112x112 crop (e.g. from a dataset of aligned faces).
    pub fn from_image(image: Image) -> AlignedFace {
        AlignedFace { image }
    }

    /// The 112x112 RGB crop.
    pub fn image(&self) -> &Image {
        &self.image
    }
}

/// Aligns `face` of `image` onto the ArcFace template. A degenerate landmark set (all
/// points equal) falls back to the detection box mapped onto the crop.
pub fn aligned_from_image(image: &Image, face: &Face) -> AlignedFace {
    let five = face.landmarks.five();
    let transform = Similarity::estimate(&five, &ARCFACE_TEMPLATE).unwrap_or_else(|| {
        let s = ALIGNED_SIDE as f32 / face.bbox.width().max(1.0);
        Similarity {
            a: s,
            b: 0.0,
            tx: -face.bbox.x1 * s,
            ty: -face.bbox.y1 * s,
        }
    });
    AlignedFace {
        image: warp_similarity(image, transform, ALIGNED_SIDE, ALIGNED_SIDE),
    }
}
