//! The planarity cue: is the face in front of the camera flat?
//!
//! A print, an ID card or a phone screen is a plane, and the images of a plane taken from
//! any two positions are related exactly by a homography (a 3x3 projective map), whatever
//! the attacker does with it: tilt it, turn it, move it closer. A real head is not flat:
//! when it turns or comes closer, the nose, the eyes and the cheek contour move against each
//! other (parallax) and no single homography maps one frame's landmarks onto the other's.
//!
//! The rule, for each pair of frames of a sequence:
//!
//! - `motion`: how far the 68 landmarks are from a mere similarity (shift, rotation, scale)
//!   of each other: the trimmed RMS residual of the best similarity, divided by the
//!   inter-ocular distance (IOD). A still face, or a print slid across the table, has no
//!   motion that could reveal depth; a head turn and a tilted print both do.
//! - `residual`: the same trimmed RMS residual for the best homography. A plane leaves only
//!   landmark noise; a head leaves parallax.
//!
//! Over all pairs, the sequence's `depth` is the least-squares slope of `residual` against
//! `motion`: how much of each extra unit of motion no plane explains. Landmark noise adds
//! about the same residual to every pair, which the fit's intercept takes; a plane's
//! residual stays at that noise however far it tilts (slope near 0), a head's grows with its
//! turn (slope near 1). Measured on the shared set (BENCHMARKS.md): live faces 0.6-1.0,
//! prints 0.15-0.4. The cue decides only when some pair moved at least [`MIN_MOTION`] and
//! the motions spread; otherwise it is undecided: the face never moved enough to tell.
//! Only the 51 inner landmarks (brows, eyes, nose, mouth) are used: the jaw contour is a
//! silhouette whose points slide with the pose even on a flat picture.
//!
//! The residuals are trimmed (the worst 10 % of points dropped) so one misplaced landmark
//! cannot fake depth. A replay of a video of a moving head shows real parallax (the screen
//! shows a 3D head); the planarity cue does not catch replays, the passive network and the
//! challenge do.

use serde::Serialize;

use crate::geometry::Point;

/// Least similarity residual (in IODs) the sequence must reach somewhere for the cue to
/// decide (landmark noise alone gives about 0.01-0.03).
pub const MIN_MOTION: f32 = 0.04;
/// Least spread (standard deviation) of the pairs' motions for a slope to mean anything.
pub const MIN_SPREAD: f32 = 0.008;
/// Least number of frame pairs (three frames).
pub const MIN_PAIRS: usize = 3;
/// A 3x3 matrix, row-major.
type Matrix3 = [f64; 9];

/// Frames compared at most (evenly spaced), so the cost stays bounded on long clips.
pub const MAX_FRAMES: usize = 12;

/// What the planarity cue saw over a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Planarity {
    /// The sequence's depth evidence: the slope of the homography residual against the
    /// motion over the frame pairs; `None` when the face did not move enough (undecided).
    pub depth: Option<f32>,
    /// Largest similarity residual seen between two frames, in IODs.
    pub max_motion: f32,
    /// Frame pairs compared.
    pub pairs: usize,
}

/// The trimmed residuals of one frame pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairResidual {
    /// Best-similarity residual, in IODs.
    pub motion: f32,
    /// Best-homography residual, in IODs.
    pub residual: f32,
}

/// Measures the cue over the landmarks of a sequence's frames (each 68 points, in frame
/// order); frames beyond [`MAX_FRAMES`] are sampled evenly.
pub fn measure(frames: &[&[Point]]) -> Planarity {
    let chosen: Vec<&[Point]> = if frames.len() > MAX_FRAMES {
        (0..MAX_FRAMES)
            .map(|i| frames[i * (frames.len() - 1) / (MAX_FRAMES - 1)])
            .collect()
    } else {
        frames.to_vec()
    };
    let mut pairs: Vec<PairResidual> = Vec::new();
    for i in 0..chosen.len() {
        for j in i + 1..chosen.len() {
            pairs.extend(pair_residual(chosen[i], chosen[j]));
        }
    }
    let max_motion = pairs.iter().map(|p| p.motion).fold(0.0f32, f32::max);
    let depth = (max_motion >= MIN_MOTION && pairs.len() >= MIN_PAIRS)
        .then(|| slope(&pairs))
        .flatten();
    Planarity {
        depth,
        max_motion,
        pairs: pairs.len(),
    }
}

/// The least-squares slope of `residual` on `motion` over the pairs (its intercept takes
/// the landmark noise); `None` when the motions do not spread.
fn slope(pairs: &[PairResidual]) -> Option<f32> {
    let n = pairs.len() as f64;
    let mx = pairs.iter().map(|p| f64::from(p.motion)).sum::<f64>() / n;
    let my = pairs.iter().map(|p| f64::from(p.residual)).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for p in pairs {
        let dx = f64::from(p.motion) - mx;
        sxy += dx * (f64::from(p.residual) - my);
        sxx += dx * dx;
    }
    ((sxx / n).sqrt() >= f64::from(MIN_SPREAD)).then(|| (sxy / sxx).max(0.0) as f32)
}

/// The residuals of mapping `a` onto `b` (same landmark order) by the best similarity and
/// the best homography, in units of `a`'s inter-ocular distance; `None` when the points are
/// too few or degenerate.
pub fn pair_residual(a: &[Point], b: &[Point]) -> Option<PairResidual> {
    if a.len() != b.len() || a.len() < 8 {
        return None;
    }
    let iod = inter_ocular(a)?;
    // The jaw contour (0-16) is a silhouette whose points slide with the pose even on a
    // flat picture: only the inner points (brows, eyes, nose, mouth) are compared.
    let (a, b) = if a.len() == 68 {
        (&a[17..], &b[17..])
    } else {
        (a, b)
    };
    let similarity = fit_similarity(a, b)?;
    let homography = fit_homography(a, b)?;
    let motion = trimmed_rms(a, b, |p| similarity.apply(p)) / iod;
    let residual = trimmed_rms(a, b, |p| apply(&homography, p)) / iod;
    (motion.is_finite() && residual.is_finite()).then_some(PairResidual { motion, residual })
}

/// Inter-ocular distance of 68 iBUG landmarks (eye centres: means of 36-41 and 42-47); the
/// spread of the points for other layouts.
fn inter_ocular(points: &[Point]) -> Option<f32> {
    let d = if points.len() == 68 {
        Point::mean(&points[36..42]).distance(Point::mean(&points[42..48]))
    } else {
        let c = Point::mean(points);
        (points.iter().map(|p| p.distance(c).powi(2)).sum::<f32>() / points.len() as f32).sqrt()
    };
    (d > 1e-3).then_some(d)
}

/// RMS of the point errors after dropping the worst 10 %.
fn trimmed_rms(a: &[Point], b: &[Point], map: impl Fn(Point) -> Point) -> f32 {
    let mut errors: Vec<f32> = a
        .iter()
        .zip(b)
        .map(|(&p, &q)| {
            let m = map(p);
            (m.x - q.x).powi(2) + (m.y - q.y).powi(2)
        })
        .collect();
    errors.sort_by(f32::total_cmp);
    let keep = (errors.len() * 9).div_ceil(10).max(1);
    (errors[..keep].iter().sum::<f32>() / keep as f32).sqrt()
}

/// A similarity transform: `q = R(c, s) (p - from) + to`.
struct Similarity {
    c: f64,
    s: f64,
    from: Point,
    to: Point,
}

impl Similarity {
    fn apply(&self, p: Point) -> Point {
        let (x, y) = (f64::from(p.x - self.from.x), f64::from(p.y - self.from.y));
        Point::new(
            (self.c * x - self.s * y) as f32 + self.to.x,
            (self.s * x + self.c * y) as f32 + self.to.y,
        )
    }
}

/// The least-squares similarity mapping `a` onto `b` (Umeyama without reflection).
fn fit_similarity(a: &[Point], b: &[Point]) -> Option<Similarity> {
    let (ca, cb) = (Point::mean(a), Point::mean(b));
    let (mut sxx, mut sxy, mut var) = (0.0f64, 0.0f64, 0.0f64);
    for (p, q) in a.iter().zip(b) {
        let (px, py) = (f64::from(p.x - ca.x), f64::from(p.y - ca.y));
        let (qx, qy) = (f64::from(q.x - cb.x), f64::from(q.y - cb.y));
        sxx += px * qx + py * qy;
        sxy += px * qy - py * qx;
        var += px * px + py * py;
    }
    (var >= 1e-9).then(|| Similarity {
        c: sxx / var,
        s: sxy / var,
        from: ca,
        to: cb,
    })
}

/// Applies a homography (row-major, `h[8] = 1`).
fn apply(h: &[f64; 9], p: Point) -> Point {
    let (x, y) = (f64::from(p.x), f64::from(p.y));
    let w = h[6] * x + h[7] * y + h[8];
    if w.abs() < 1e-12 {
        return Point::new(f32::INFINITY, f32::INFINITY);
    }
    Point::new(
        ((h[0] * x + h[1] * y + h[2]) / w) as f32,
        ((h[3] * x + h[4] * y + h[5]) / w) as f32,
    )
}

/// The least-squares homography mapping `a` onto `b`: the direct linear transform on
/// Hartley-normalised points with `h33 = 1`, solved by the normal equations.
pub(crate) fn fit_homography(a: &[Point], b: &[Point]) -> Option<[f64; 9]> {
    let (ta, na) = normalise(a)?;
    let (tb, nb) = normalise(b)?;
    let mut ata = [[0.0f64; 8]; 8];
    let mut atb = [0.0f64; 8];
    for (p, q) in na.iter().zip(&nb) {
        let (x, y, u, v) = (p.0, p.1, q.0, q.1);
        let rows = [
            ([x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y], u),
            ([0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y], v),
        ];
        for (row, rhs) in rows {
            for i in 0..8 {
                atb[i] += row[i] * rhs;
                for j in 0..8 {
                    ata[i][j] += row[i] * row[j];
                }
            }
        }
    }
    let h = solve8(ata, atb)?;
    let hn = [h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0];
    // Undo the normalisations: H = Tb^-1 * Hn * Ta.
    let full = mul3(&inverse_scale_shift(&tb), &mul3(&hn, &ta));
    let s = full[8];
    if s.abs() < 1e-12 || !s.is_finite() {
        return None;
    }
    Some(full.map(|v| v / s))
}

/// Centres the points and scales them to a mean distance of sqrt(2); returns the
/// normalising transform (as a 3x3 matrix) and the points.
fn normalise(points: &[Point]) -> Option<(Matrix3, Vec<(f64, f64)>)> {
    let n = points.len() as f64;
    let cx = points.iter().map(|p| f64::from(p.x)).sum::<f64>() / n;
    let cy = points.iter().map(|p| f64::from(p.y)).sum::<f64>() / n;
    let spread = points
        .iter()
        .map(|p| ((f64::from(p.x) - cx).powi(2) + (f64::from(p.y) - cy).powi(2)).sqrt())
        .sum::<f64>()
        / n;
    if spread < 1e-9 {
        return None;
    }
    let k = std::f64::consts::SQRT_2 / spread;
    let t = [k, 0.0, -k * cx, 0.0, k, -k * cy, 0.0, 0.0, 1.0];
    let normalised = points
        .iter()
        .map(|p| ((f64::from(p.x) - cx) * k, (f64::from(p.y) - cy) * k))
        .collect();
    Some((t, normalised))
}

/// The inverse of a `normalise` transform.
fn inverse_scale_shift(t: &[f64; 9]) -> [f64; 9] {
    let k = t[0];
    [
        1.0 / k,
        0.0,
        -t[2] / k,
        0.0,
        1.0 / k,
        -t[5] / k,
        0.0,
        0.0,
        1.0,
    ]
}

fn mul3(a: &[f64; 9], b: &[f64; 9]) -> [f64; 9] {
    let mut out = [0.0; 9];
    for r in 0..3 {
        for c in 0..3 {
            out[r * 3 + c] = (0..3).map(|k| a[r * 3 + k] * b[k * 3 + c]).sum();
        }
    }
    out
}

/// Solves an 8x8 system by Gaussian elimination with partial pivoting.
fn solve8(mut m: [[f64; 8]; 8], mut rhs: [f64; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))?;
        if m[pivot][col].abs() < 1e-12 {
            return None;
        }
        m.swap(col, pivot);
        rhs.swap(col, pivot);
        let (top, rest) = m.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (offset, row) in rest.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (cell, above) in row.iter_mut().zip(pivot_row).skip(col) {
                *cell -= f * above;
            }
            rhs[col + 1 + offset] -= f * rhs[col];
        }
    }
    let mut x = [0.0; 8];
    for row in (0..8).rev() {
        let tail: f64 = (row + 1..8).map(|k| m[row][k] * x[k]).sum();
        x[row] = (rhs[row] - tail) / m[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::liveness::LivenessPreset;

    /// A crude 3D face: 68 points on a grid with depth bulging at the centre (the nose).
    fn head() -> Vec<[f64; 3]> {
        (0..68)
            .map(|i| {
                let (gx, gy) = ((i % 9) as f64 - 4.0, (i / 9) as f64 - 3.5);
                let z = 3.0 * (-(gx * gx + gy * gy) / 6.0).exp();
                [gx * 10.0, gy * 10.0, z * 10.0]
            })
            .collect()
    }

    /// Perspective image of 3D points after a yaw of `yaw` radians, camera at distance `d`.
    fn project(points: &[[f64; 3]], yaw: f64, d: f64, shift: f64) -> Vec<Point> {
        points
            .iter()
            .map(|&[x, y, z]| {
                let (xr, zr) = (
                    x * yaw.cos() + z * yaw.sin(),
                    -x * yaw.sin() + z * yaw.cos(),
                );
                let w = d - zr;
                Point::new(
                    (500.0 * xr / w + 320.0 + shift) as f32,
                    (500.0 * y / w + 240.0) as f32,
                )
            })
            .collect()
    }

    fn flat(points: &[[f64; 3]]) -> Vec<[f64; 3]> {
        points.iter().map(|&[x, y, _]| [x, y, 0.0]).collect()
    }

    #[test]
    fn a_homography_maps_a_plane_exactly_and_a_head_not() {
        let (plane, face) = (flat(&head()), head());
        let p = pair_residual(
            &project(&plane, 0.0, 200.0, 0.0),
            &project(&plane, 0.35, 150.0, 30.0),
        )
        .unwrap();
        assert!(p.motion > MIN_MOTION, "{p:?}");
        assert!(p.residual < 1e-3, "a plane leaves no residual: {p:?}");
        let h = pair_residual(
            &project(&face, 0.0, 200.0, 0.0),
            &project(&face, 0.35, 200.0, 0.0),
        )
        .unwrap();
        assert!(
            h.residual / h.motion > 0.2,
            "a turning head leaves parallax: {h:?}"
        );
    }

    #[test]
    fn a_still_face_is_undecided_and_a_tilted_print_is_flat() {
        let face = head();
        let still: Vec<Vec<Point>> = (0..5)
            .map(|i| project(&face, 0.0, 200.0, i as f64))
            .collect();
        let refs: Vec<&[Point]> = still.iter().map(Vec::as_slice).collect();
        assert_eq!(measure(&refs).depth, None);

        let plane = flat(&face);
        let tilted: Vec<Vec<Point>> = (0..6)
            .map(|i| project(&plane, 0.1 * i as f64, 200.0 - 10.0 * i as f64, 0.0))
            .collect();
        let refs: Vec<&[Point]> = tilted.iter().map(Vec::as_slice).collect();
        let cue = measure(&refs);
        assert!(cue.pairs > 0 && cue.depth.unwrap() < 0.05, "{cue:?}");
        assert!(cue.depth.unwrap() < LivenessPreset::Soft.min_depth());

        let turning: Vec<Vec<Point>> = (0..6)
            .map(|i| project(&face, 0.08 * i as f64, 200.0, 0.0))
            .collect();
        let refs: Vec<&[Point]> = turning.iter().map(Vec::as_slice).collect();
        let cue = measure(&refs);
        assert!(
            cue.depth.unwrap() > LivenessPreset::Hardened.min_depth(),
            "{cue:?}"
        );
    }

    #[test]
    fn degenerate_points_are_refused_not_divided_by_zero() {
        let same = vec![Point::new(1.0, 1.0); 68];
        assert!(pair_residual(&same, &same).is_none());
        assert!(pair_residual(&same[..4], &same[..4]).is_none());
    }
}
