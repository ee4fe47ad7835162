//! Stage 4: [`Face`] -> [`AlignedFace`], the 112x112 crop the embedding network expects.
//!
//! The embedding model was trained on faces warped onto the ArcFace five-point template, so
//! every face is brought onto it with the least-squares similarity over all five points
//! (rotation, scale, shift; no shear), which spreads landmark noise instead of bending the
//! face the way an exact three-point affine does.

use crate::error::Result;
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
pub fn aligned_from_image(image: &Image, face: &Face) -> Result<AlignedFace> {
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
    Ok(AlignedFace {
        image: warp_similarity(image, transform, ALIGNED_SIDE, ALIGNED_SIDE)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BoundingBox;
    use crate::landmarks::Landmarks;

    #[test]
    fn the_five_points_land_on_the_template() {
        // A 300x300 picture with a bright dot at each of five points: the template scaled 2x,
        // turned 20 degrees and shifted. After alignment the dots sit on the template.
        let t = Similarity {
            a: 2.0 * 20f32.to_radians().cos(),
            b: 2.0 * 20f32.to_radians().sin(),
            tx: 60.0,
            ty: 30.0,
        };
        let five: Vec<Point> = ARCFACE_TEMPLATE.iter().map(|&p| t.apply(p)).collect();
        let mut rgb = vec![0u8; 300 * 300 * 3];
        for p in &five {
            for dy in -2i32..=2 {
                for dx in -2i32..=2 {
                    let (x, y) = (
                        (p.x.round() as i32 + dx) as usize,
                        (p.y.round() as i32 + dy) as usize,
                    );
                    rgb[(y * 300 + x) * 3..(y * 300 + x) * 3 + 3].copy_from_slice(&[255, 255, 255]);
                }
            }
        }
        let image = Image::from_rgb(300, 300, rgb).unwrap();
        let mut points = vec![Point::new(150.0, 150.0); 68];
        points[36..42].fill(five[0]);
        points[42..48].fill(five[1]);
        points[30] = five[2];
        points[48] = five[3];
        points[54] = five[4];
        let face = Face {
            bbox: BoundingBox::new(50.0, 50.0, 250.0, 250.0),
            score: 1.0,
            landmarks: Landmarks::from_points(points).unwrap(),
        };
        let aligned = aligned_from_image(&image, &face).unwrap();
        assert_eq!(
            (aligned.image().width(), aligned.image().height()),
            (112, 112)
        );
        for p in ARCFACE_TEMPLATE {
            let v = aligned
                .image()
                .pixel(p.x.round() as i64, p.y.round() as i64);
            assert!(v[0] > 150, "no dot at {p:?}: {v:?}");
        }
        assert!(aligned.image().pixel(5, 5)[0] < 10, "background stays dark");
    }
}
