//! Pure geometry: points, boxes, non-maximum suppression and the least-squares similarity
//! transform used for alignment. No pixels here.

use serde::Serialize;

/// A point in image pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Point {
    /// Horizontal position, pixels from the left edge.
    pub x: f32,
    /// Vertical position, pixels from the top edge.
    pub y: f32,
}

impl Point {
    /// A point at (x, y).
    pub const fn new(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    /// Euclidean distance to `other`.
    pub fn distance(self, other: Point) -> f32 {
        ((self.x - other.x).powi(2) + (self.y - other.y).powi(2)).sqrt()
    }

    /// The mean of `points` (origin when empty).
    pub fn mean(points: &[Point]) -> Point {
        if points.is_empty() {
            return Point::default();
        }
        let n = points.len() as f32;
        Point::new(
            points.iter().map(|p| p.x).sum::<f32>() / n,
            points.iter().map(|p| p.y).sum::<f32>() / n,
        )
    }
}

/// An axis-aligned box in corner form, pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct BoundingBox {
    /// Left edge.
    pub x1: f32,
    /// Top edge.
    pub y1: f32,
    /// Right edge.
    pub x2: f32,
    /// Bottom edge.
    pub y2: f32,
}

impl BoundingBox {
    /// A box from its corners.
    pub const fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> BoundingBox {
        BoundingBox { x1, y1, x2, y2 }
    }

    /// Width (never negative).
    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    /// Height (never negative).
    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    /// Area in square pixels.
    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// Centre point.
    pub fn center(&self) -> Point {
        Point::new((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)
    }

    /// Intersection over union with `other`, 0 when disjoint.
    pub fn iou(&self, other: &BoundingBox) -> f32 {
        let ix = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let iy = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = ix * iy;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// The same centre, width and height multiplied by `factor`.
    pub fn scaled(&self, factor: f32) -> BoundingBox {
        let c = self.center();
        let (hw, hh) = (self.width() * factor / 2.0, self.height() * factor / 2.0);
        BoundingBox::new(c.x - hw, c.y - hh, c.x + hw, c.y + hh)
    }

    /// The smallest square with the same centre that contains this box.
    pub fn squared(&self) -> BoundingBox {
        let c = self.center();
        let half = self.width().max(self.height()) / 2.0;
        BoundingBox::new(c.x - half, c.y - half, c.x + half, c.y + half)
    }

    /// This box clipped to a `width` x `height` image.
    pub fn clipped(&self, width: f32, height: f32) -> BoundingBox {
        BoundingBox::new(
            self.x1.clamp(0.0, width),
            self.y1.clamp(0.0, height),
            self.x2.clamp(0.0, width),
            self.y2.clamp(0.0, height),
        )
    }

    /// The box grown `factor` times about its centre (less when the image is too small to
    /// hold it), then shifted to lie inside a `width` x `height` image. This is the context
    /// crop the liveness and attribute networks were trained on.
    pub fn grown_within(&self, factor: f32, width: f32, height: f32) -> BoundingBox {
        let (bw, bh) = (self.width().max(1.0), self.height().max(1.0));
        let scale = factor
            .min((height - 1.0) / bh)
            .min((width - 1.0) / bw)
            .max(1.0);
        let mut region = self.scaled(scale);
        if region.x1 < 0.0 {
            region.x2 -= region.x1;
            region.x1 = 0.0;
        }
        if region.y1 < 0.0 {
            region.y2 -= region.y1;
            region.y1 = 0.0;
        }
        if region.x2 > width {
            region.x1 -= region.x2 - width;
            region.x2 = width;
        }
        if region.y2 > height {
            region.y1 -= region.y2 - height;
            region.y2 = height;
        }
        region
    }

    /// Moved by (dx, dy) and scaled by `scale` about the origin: maps a box found in a
    /// resized or padded copy back to the original image.
    pub fn mapped(&self, dx: f32, dy: f32, scale: f32) -> BoundingBox {
        BoundingBox::new(
            (self.x1 + dx) * scale,
            (self.y1 + dy) * scale,
            (self.x2 + dx) * scale,
            (self.y2 + dy) * scale,
        )
    }
}

/// Greedy non-maximum suppression. `candidates` are (box, score); returns the kept ones,
/// highest score first. A candidate is dropped when it overlaps a kept one by more than
/// `iou_threshold`.
pub fn nms(mut candidates: Vec<(BoundingBox, f32)>, iou_threshold: f32) -> Vec<(BoundingBox, f32)> {
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut kept: Vec<(BoundingBox, f32)> = Vec::new();
    for (bbox, score) in candidates {
        if kept.iter().all(|(k, _)| k.iou(&bbox) <= iou_threshold) {
            kept.push((bbox, score));
        }
    }
    kept
}

/// A 2-D similarity transform (rotation, uniform scale, translation):
/// `x' = a*x - b*y + tx`, `y' = b*x + a*y + ty`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    /// scale * cos(angle)
    pub a: f32,
    /// scale * sin(angle)
    pub b: f32,
    /// Horizontal translation.
    pub tx: f32,
    /// Vertical translation.
    pub ty: f32,
}

impl Similarity {
    /// Applies the transform to `p`.
    pub fn apply(&self, p: Point) -> Point {
        Point::new(
            self.a * p.x - self.b * p.y + self.tx,
            self.b * p.x + self.a * p.y + self.ty,
        )
    }

    /// Uniform scale factor.
    pub fn scale(&self) -> f32 {
        (self.a * self.a + self.b * self.b).sqrt()
    }

    /// The inverse transform, or `None` when degenerate (zero scale).
    pub fn inverse(&self) -> Option<Similarity> {
        let d = self.a * self.a + self.b * self.b;
        if d < 1e-12 {
            return None;
        }
        let (a, b) = (self.a / d, -self.b / d);
        // p = R^-1 (p' - t)
        Some(Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        })
    }

    /// Least-squares similarity mapping `src[i]` onto `dst[i]` (Umeyama, 1991), using every
    /// point rather than an exact three-point affine: landmark noise averages out instead of
    /// shearing the face. `None` when the points are degenerate or the lengths differ.
    pub fn estimate(src: &[Point], dst: &[Point]) -> Option<Similarity> {
        if src.len() != dst.len() || src.len() < 2 {
            return None;
        }
        let n = src.len() as f64;
        let (ms, md) = (Point::mean(src), Point::mean(dst));
        let (mut sxx, mut sxy, mut var) = (0f64, 0f64, 0f64);
        for (s, d) in src.iter().zip(dst) {
            let (sx, sy) = (f64::from(s.x - ms.x), f64::from(s.y - ms.y));
            let (dx, dy) = (f64::from(d.x - md.x), f64::from(d.y - md.y));
            sxx += sx * dx + sy * dy; // sum of dot products
            sxy += sx * dy - sy * dx; // sum of cross products
            var += sx * sx + sy * sy;
        }
        if var < 1e-9 {
            return None;
        }
        let _ = n;
        let a = (sxx / var) as f32;
        let b = (sxy / var) as f32;
        let tx = md.x - (a * ms.x - b * ms.y);
        let ty = md.y - (b * ms.x + a * ms.y);
        Some(Similarity { a, b, tx, ty })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = BoundingBox::new(0.0, 0.0, 10.0, 10.0);
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.iou(&BoundingBox::new(20.0, 20.0, 30.0, 30.0)), 0.0);
        let b = BoundingBox::new(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
    }

    #[test]
    fn nms_keeps_the_best_of_each_cluster() {
        let kept = nms(
            vec![
                (BoundingBox::new(0.0, 0.0, 10.0, 10.0), 0.8),
                (BoundingBox::new(1.0, 1.0, 11.0, 11.0), 0.9),
                (BoundingBox::new(50.0, 50.0, 60.0, 60.0), 0.7),
            ],
            0.4,
        );
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].1, 0.9);
        assert_eq!(kept[1].1, 0.7);
    }

    #[test]
    fn similarity_recovers_a_known_transform_and_inverts() {
        let truth = Similarity {
            a: 1.2 * 0.3f32.cos(),
            b: 1.2 * 0.3f32.sin(),
            tx: 5.0,
            ty: -3.0,
        };
        let src = [
            Point::new(10.0, 20.0),
            Point::new(40.0, 22.0),
            Point::new(25.0, 40.0),
            Point::new(12.0, 60.0),
            Point::new(38.0, 61.0),
        ];
        let dst: Vec<Point> = src.iter().map(|&p| truth.apply(p)).collect();
        let est = Similarity::estimate(&src, &dst).unwrap();
        for (p, q) in src.iter().zip(&dst) {
            assert!(est.apply(*p).distance(*q) < 1e-3);
        }
        assert!((est.scale() - 1.2).abs() < 1e-4);
        let inv = est.inverse().unwrap();
        assert!(inv.apply(est.apply(src[2])).distance(src[2]) < 1e-3);
    }

    #[test]
    fn similarity_is_least_squares_under_noise() {
        // Move one of five points: the fit must spread the error (least squares), never do
        // worse than the transform that fits the other four exactly (the identity here).
        let src = [
            Point::new(0.0, 0.0),
            Point::new(10.0, 0.0),
            Point::new(5.0, 8.0),
            Point::new(0.0, 15.0),
            Point::new(10.0, 15.0),
        ];
        let mut dst = src;
        dst[2].x += 2.0;
        let est = Similarity::estimate(&src, &dst).unwrap();
        let sse = |t: &Similarity| -> f32 {
            src.iter()
                .zip(&dst)
                .map(|(p, q)| t.apply(*p).distance(*q).powi(2))
                .sum()
        };
        let identity = Similarity {
            a: 1.0,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        };
        assert!(
            sse(&est) < sse(&identity),
            "{} vs {}",
            sse(&est),
            sse(&identity)
        );
        assert!(
            est.apply(src[2]).distance(dst[2]) > 0.5,
            "the outlier is not fitted exactly"
        );
    }

    #[test]
    fn degenerate_points_give_none() {
        let p = [Point::new(1.0, 1.0); 5];
        assert!(Similarity::estimate(&p, &p).is_none());
        assert!(Similarity::estimate(&p[..2], &p[..3]).is_none());
    }

    #[test]
    fn grown_box_stays_inside_the_image() {
        let r = BoundingBox::new(0.0, 0.0, 100.0, 100.0).grown_within(2.7, 640.0, 480.0);
        assert!(r.x1 >= 0.0 && r.y1 >= 0.0 && r.x2 <= 640.0 && r.y2 <= 480.0);
        assert!((r.width() - 270.0).abs() < 1e-3);
        // A face filling the frame: the scale drops to what fits.
        let r = BoundingBox::new(0.0, 0.0, 100.0, 100.0).grown_within(2.7, 110.0, 110.0);
        assert!(r.width() <= 110.0);
    }

    #[test]
    fn box_helpers() {
        let b = BoundingBox::new(10.0, 20.0, 30.0, 60.0);
        assert_eq!(b.squared(), BoundingBox::new(0.0, 20.0, 40.0, 60.0));
        assert_eq!(b.scaled(2.0), BoundingBox::new(0.0, 0.0, 40.0, 80.0));
        assert_eq!(
            b.clipped(25.0, 50.0),
            BoundingBox::new(10.0, 20.0, 25.0, 50.0)
        );
        assert_eq!(
            b.mapped(-10.0, -20.0, 2.0),
            BoundingBox::new(0.0, 0.0, 40.0, 80.0)
        );
    }
}
