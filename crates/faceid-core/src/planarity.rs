//! The planarity cue: is the face in front of the camera flat?
//!
//! A print, an ID card or a phone screen is a plane, and the images of a plane taken from
//! any two positions are related exactly by a homography (a 3x3 projective map), whatever
//! the attacker does with it: tilt it, turn it, move it closer. A real head is not flat: its
//! nose stands about half an inter-ocular distance (IOD) in front of the eyes and the mouth,
//! so when the head turns the nose tip moves against them (parallax).
//!
//! The rule, for each pair of frames of a sequence (68 iBUG landmarks each):
//!
//! - `parallax`: fit the best homography to the 42 points that lie close to one plane on a
//!   face (brows, eyes, mouth) and measure how far the six nose-tip points (30-35) land from
//!   where that homography puts them: the length of their mean displacement, in IODs. On a
//!   plane it is what is left of the correspondences' error; a head turned by 20 degrees
//!   gives about 0.1.
//! - `deformation`: how far the best affine map of those 42 points is from a similarity
//!   (the ratio of its two singular values, minus one), from the landmarks as placed. It
//!   measures how much the face turned against the camera: a picture turned or tilted by 20
//!   degrees foreshortens by about 6 %, a face that stays still 1-2.5 % (landmark noise).
//!
//! **Texture, not only landmarks.** The landmark network places points to within a few
//! pixels, and its error grows on blurred, upscaled or foreshortened faces (an ID-card
//! portrait held close to the camera): enough to look like parallax. When the frames carry
//! their [`Texture`] (the grey image around the face), each landmark of frame `a` is
//! followed into frame `b` by matching its patch (normalised cross-correlation, the patch
//! warped by the face plane's homography, sub-pixel peak), so the correspondences are those
//! of the image itself: a plane's points then fit a homography to a fraction of a pixel,
//! and the nose's parallax shows at a few degrees of turn. A point whose patch has no
//! texture or no clear match is left out, and a pair with too few points left does not
//! count (the landmark network's positions would bring their noise back).
//!
//! Over a sequence each is the largest value over frame pairs **with any one frame left
//! out** (the least such maximum), so one misplaced frame can neither fake depth nor fake a
//! turn. The sequence's `depth` is that parallax, its `deformation` that turn. The verdict
//! is the preset's (`Liveness::judge`): a depth of at least
//! [`crate::LivenessPreset::min_depth`] is a head; otherwise a face that turned (deformation
//! of at least [`crate::LivenessPreset::min_turn`]) without parallax is flat; a face that
//! neither turned nor showed parallax leaves the cue undecided, and the passive network
//! (and at the kiosk the challenge) decide.
//!
//! Measured with the texture followed (BENCHMARKS.md "Presentation attacks"): heads that
//! turn 0.09-0.14, people who shift a little 0.03-0.1, faces held still below 0.025;
//! simulated planar prints and cards 0.003 (median), 99 % below 0.02; real warped paper
//! (NUAA prints) 0.01-0.04. Turn: still faces 0.01-0.025, pictures turned 12-35 degrees
//! each way 0.03 and more. The cue does not catch a replay of a moving head (the screen
//! shows real parallax): the passive network and the challenge do.

use serde::Serialize;

use crate::geometry::Point;

/// Least number of frames (with one left out, two remain).
pub const MIN_FRAMES: usize = 3;
/// Frames compared at most (see [`sample`]), so the cost stays bounded on long clips (66
/// pairs). Fewer lose the pairs where a person moved most: at 8 frames five NUAA live
/// sets measured under REGULAR's depth (BENCHMARKS.md).
pub const MAX_FRAMES: usize = 12;

/// The points that lie close to one plane on a face: brows (17-26), eyes (36-47), mouth
/// (48-67).
const PLANE: [usize; 42] = [
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49,
    50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67,
];
/// The nose tip and nostrils, in front of that plane.
const NOSE_TIP: std::ops::Range<usize> = 30..36;

/// A 3x3 matrix, row-major.
type Matrix3 = [f64; 9];

/// What the planarity cue saw over a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Planarity {
    /// The sequence's depth evidence: the nose tip's parallax against the plane of the
    /// brows, eyes and mouth, in IODs; `None` with fewer than [`MIN_FRAMES`] usable frames.
    pub depth: Option<f32>,
    /// How much the face turned against the camera (affine anisotropy, 0 = none).
    pub deformation: f32,
    /// Frame pairs compared.
    pub pairs: usize,
}

/// The cue's two measures over one frame pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairCue {
    /// The nose tip's displacement against the face plane's homography, in IODs.
    pub parallax: f32,
    /// Affine anisotropy of the face plane's points.
    pub deformation: f32,
}

/// One frame as the cue sees it: the face's 68 landmarks and, when the caller kept it, the
/// grey image around them.
#[derive(Debug, Clone, Copy)]
pub struct FaceView<'a> {
    /// The 68 iBUG landmarks, in image pixels.
    pub landmarks: &'a [Point],
    /// The grey image around the face ([`Texture::around`]).
    pub texture: Option<&'a Texture>,
}

impl<'a> FaceView<'a> {
    /// Landmarks alone (correspondences as the landmark network placed them).
    pub fn landmarks(landmarks: &'a [Point]) -> FaceView<'a> {
        FaceView {
            landmarks,
            texture: None,
        }
    }
}

/// The grey image around a face, kept with its landmarks so the cue can follow them from
/// frame to frame by their texture.
#[derive(Clone, PartialEq)]
pub struct Texture {
    left: i64,
    top: i64,
    width: usize,
    height: usize,
    grey: Vec<f32>,
}

impl std::fmt::Debug for Texture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Texture({}x{} at {},{})",
            self.width, self.height, self.left, self.top
        )
    }
}

impl Texture {
    /// The grey image of the landmarks' box widened by half an inter-ocular distance
    /// (clipped to the image); `None` for another layout or an empty box.
    pub fn around(image: &crate::Image, landmarks: &[Point]) -> Option<Texture> {
        if landmarks.len() != 68 {
            return None;
        }
        let margin = inter_ocular(landmarks)? * 0.5;
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for p in landmarks {
            (x0, y0, x1, y1) = (x0.min(p.x), y0.min(p.y), x1.max(p.x), y1.max(p.y));
        }
        let left = ((x0 - margin).floor() as i64).max(0);
        let top = ((y0 - margin).floor() as i64).max(0);
        let right = ((x1 + margin).ceil() as i64).min(i64::from(image.width()));
        let bottom = ((y1 + margin).ceil() as i64).min(i64::from(image.height()));
        if right - left < 8 || bottom - top < 8 {
            return None;
        }
        let (width, height) = ((right - left) as usize, (bottom - top) as usize);
        let mut grey = Vec::with_capacity(width * height);
        for y in top..bottom {
            for x in left..right {
                let [r, g, b] = image.pixel(x, y);
                grey.push(0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b));
            }
        }
        Some(Texture {
            left,
            top,
            width,
            height,
            grey,
        })
    }

    /// The bilinear grey value at image point (x, y); `None` outside the kept box.
    fn sample(&self, x: f32, y: f32) -> Option<f32> {
        let (fx, fy) = (x - self.left as f32, y - self.top as f32);
        if !(fx >= 0.0 && fy >= 0.0) {
            return None;
        }
        let (x0, y0) = (fx as usize, fy as usize);
        if x0 + 1 >= self.width || y0 + 1 >= self.height {
            return None;
        }
        let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
        let at = |xx: usize, yy: usize| self.grey[yy * self.width + xx];
        Some(
            at(x0, y0) * (1.0 - ax) * (1.0 - ay)
                + at(x0 + 1, y0) * ax * (1.0 - ay)
                + at(x0, y0 + 1) * (1.0 - ax) * ay
                + at(x0 + 1, y0 + 1) * ax * ay,
        )
    }
}

/// Which [`MAX_FRAMES`] of more frames (68 landmarks each) to compare, in frame order: half
/// evenly spaced in time, half the poses farthest from those already chosen. Evenly spaced
/// frames alone miss a turn that took a second of a long wait (a person who read the
/// prompt before moving), and the turn is where the depth shows.
fn sample(frames: &[FaceView<'_>]) -> Vec<usize> {
    let n = frames.len();
    let even = MAX_FRAMES / 2;
    let mut chosen: Vec<usize> = (0..even).map(|i| i * (n - 1) / (even - 1)).collect();
    chosen.dedup();
    // The nose tip's offset from the eyes' midpoint, in inter-ocular distances: where
    // the head points.
    let pose: Vec<Option<Point>> = frames
        .iter()
        .map(|f| {
            let iod = inter_ocular(f.landmarks)?;
            let eyes = Point::mean(&f.landmarks[36..48]);
            let nose = f.landmarks[30];
            Some(Point::new((nose.x - eyes.x) / iod, (nose.y - eyes.y) / iod))
        })
        .collect();
    let distance = |a: usize, b: usize| match (pose[a], pose[b]) {
        (Some(p), Some(q)) => p.distance(q),
        _ => 0.0,
    };
    while chosen.len() < MAX_FRAMES {
        let farthest = (0..n)
            .filter(|i| !chosen.contains(i))
            .map(|i| {
                let nearest = chosen
                    .iter()
                    .map(|&c| distance(i, c))
                    .fold(f32::INFINITY, f32::min);
                (i, nearest)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match farthest {
            Some((i, _)) => chosen.push(i),
            None => break,
        }
    }
    chosen.sort_unstable();
    chosen
}

/// Measures the cue over a sequence's frames (in frame order); beyond [`MAX_FRAMES`] the
/// frames are chosen by [`sample`], frames whose landmarks have another layout are
/// skipped.
pub fn measure(frames: &[FaceView<'_>]) -> Planarity {
    let usable: Vec<FaceView<'_>> = frames
        .iter()
        .copied()
        .filter(|f| f.landmarks.len() == 68)
        .collect();
    let chosen: Vec<FaceView<'_>> = if usable.len() > MAX_FRAMES {
        sample(&usable).into_iter().map(|i| usable[i]).collect()
    } else {
        usable
    };
    let n = chosen.len();
    let mut cues: Vec<(usize, usize, PairCue)> = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            if let Some(cue) = pair_cue(chosen[i], chosen[j]) {
                cues.push((i, j, cue));
            }
        }
    }
    let undecided = Planarity {
        depth: None,
        deformation: 0.0,
        pairs: cues.len(),
    };
    if n < MIN_FRAMES {
        return undecided;
    }
    // The largest value over the pairs that do not involve frame `k`, least over `k`;
    // `None` when leaving some frame out leaves no pair.
    let robust_max = |value: fn(&PairCue) -> f32| {
        (0..n)
            .map(|k| {
                cues.iter()
                    .filter(|(i, j, _)| *i != k && *j != k)
                    .map(|(_, _, c)| value(c))
                    .reduce(f32::max)
            })
            .try_fold(f32::INFINITY, |least, max| Some(least.min(max?)))
    };
    let (Some(parallax), Some(deformation)) =
        (robust_max(|c| c.parallax), robust_max(|c| c.deformation))
    else {
        return undecided;
    };
    Planarity {
        depth: Some(parallax),
        deformation,
        pairs: cues.len(),
    }
}

/// [`measure`] over frames kept as owned landmarks and texture (what the sequence
/// accumulator and the challenge tracker hold).
pub fn measure_kept(frames: &[(Vec<Point>, Option<Texture>)]) -> Planarity {
    let views: Vec<FaceView<'_>> = frames
        .iter()
        .map(|(landmarks, texture)| FaceView {
            landmarks,
            texture: texture.as_ref(),
        })
        .collect();
    measure(&views)
}

/// The cue's measures from frame `a` to frame `b` (68 landmarks each, in `a`'s IODs);
/// `None` for another layout or degenerate points.
pub fn pair_cue(a: FaceView<'_>, b: FaceView<'_>) -> Option<PairCue> {
    let (la, lb) = (a.landmarks, b.landmarks);
    if la.len() != 68 || lb.len() != 68 {
        return None;
    }
    let iod = inter_ocular(la)?;
    let plane_a: Vec<Point> = PLANE.iter().map(|&i| la[i]).collect();
    let plane_b: Vec<Point> = PLANE.iter().map(|&i| lb[i]).collect();
    let guide = fit_homography(&plane_a, &plane_b)?;
    let deformation = anisotropy(&plane_a, &plane_b)?;
    // Where each point of `a` is in `b`: followed by its texture when both frames kept it
    // (points that cannot be followed are left out), else where the network put it.
    let seen = |i: usize| match (a.texture, b.texture) {
        (Some(ta), Some(tb)) => follow(ta, la[i], tb, lb[i], &guide, iod),
        _ => Some(lb[i]),
    };
    let (mut from, mut to) = (
        Vec::with_capacity(PLANE.len()),
        Vec::with_capacity(PLANE.len()),
    );
    for &i in &PLANE {
        if let Some(q) = seen(i) {
            from.push(la[i]);
            to.push(q);
        }
    }
    if from.len() < MIN_PLANE_POINTS {
        return None;
    }
    let homography = fit_homography(&from, &to)?;
    let (mut dx, mut dy, mut tips) = (0.0f32, 0.0f32, 0usize);
    for i in NOSE_TIP {
        if let Some(q) = seen(i) {
            let mapped = apply(&homography, la[i]);
            dx += q.x - mapped.x;
            dy += q.y - mapped.y;
            tips += 1;
        }
    }
    if tips < MIN_NOSE_POINTS {
        return None;
    }
    let tips = tips as f32;
    let parallax = (dx / tips).hypot(dy / tips) / iod;
    (parallax.is_finite() && deformation.is_finite()).then_some(PairCue {
        parallax,
        deformation,
    })
}

/// Least face-plane points followed for a frame pair to count.
const MIN_PLANE_POINTS: usize = 16;
/// Least nose-tip points followed for a frame pair to count.
const MIN_NOSE_POINTS: usize = 3;
/// Half-width of the patch followed, in IODs.
const PATCH: f32 = 0.15;
/// Patch samples each side of the centre.
const PATCH_STEPS: i32 = 5;
/// Patch samples per side (11).
const PATCH_SIDE: i32 = 2 * PATCH_STEPS + 1;
/// Patch samples (11 x 11).
const SAMPLES: usize = (PATCH_SIDE * PATCH_SIDE) as usize;
/// How far from the landmark network's position the match is searched, in IODs.
const SEARCH: f32 = 0.1;
/// Least normalised cross-correlation of a match.
const MIN_MATCH: f32 = 0.8;

/// Where the texture around `from` (in frame `a`) lies in frame `b`: the patch, warped by
/// the local linear part of `guide` (the face plane's homography a -> b), is matched around
/// `guess` by normalised cross-correlation, every other pixel then every pixel, and the
/// peak refined to sub-pixel by parabolas. `None` when the patch leaves the kept texture,
/// has no texture, or matches nowhere clearly.
fn follow(
    a: &Texture,
    from: Point,
    b: &Texture,
    guess: Point,
    guide: &Matrix3,
    iod: f32,
) -> Option<Point> {
    let step = PATCH * iod / PATCH_STEPS as f32;
    let mut offsets = [(0.0f32, 0.0f32); SAMPLES];
    for (k, offset) in offsets.iter_mut().enumerate() {
        let (u, v) = (k as i32 % PATCH_SIDE, k as i32 / PATCH_SIDE);
        *offset = (
            (u - PATCH_STEPS) as f32 * step,
            (v - PATCH_STEPS) as f32 * step,
        );
    }
    let mut template = [0.0f32; SAMPLES];
    for (value, &(u, v)) in template.iter_mut().zip(&offsets) {
        *value = a.sample(from.x + u, from.y + v)?;
    }
    standardise(&mut template)?;
    let j = jacobian(guide, from)?;
    let warped = offsets.map(|(u, v)| (j[0] * u + j[1] * v, j[2] * u + j[3] * v));
    let score = |x: f32, y: f32| -> Option<f32> {
        let mut patch = [0.0f32; SAMPLES];
        for (value, &(u, v)) in patch.iter_mut().zip(&warped) {
            *value = b.sample(x + u, y + v)?;
        }
        standardise(&mut patch)?;
        Some(template.iter().zip(&patch).map(|(p, q)| p * q).sum())
    };
    let scale = (j[0] * j[3] - j[1] * j[2]).abs().sqrt();
    let radius = ((SEARCH * iod * scale).ceil() as i32).clamp(2, 16);
    let mut best: Option<(f32, i32, i32)> = None;
    let consider = |dx: i32, dy: i32, best: &mut Option<(f32, i32, i32)>| {
        if let Some(s) = score(guess.x + dx as f32, guess.y + dy as f32)
            && best.is_none_or(|(top, _, _)| s > top)
        {
            *best = Some((s, dx, dy));
        }
    };
    for dy in (-radius..=radius).step_by(2) {
        for dx in (-radius..=radius).step_by(2) {
            consider(dx, dy, &mut best);
        }
    }
    let (_, cx, cy) = best?;
    for dy in cy - 1..=cy + 1 {
        for dx in cx - 1..=cx + 1 {
            consider(dx, dy, &mut best);
        }
    }
    let (top, bx, by) = best?;
    if top < MIN_MATCH {
        return None;
    }
    let at = |dx: i32, dy: i32| score(guess.x + dx as f32, guess.y + dy as f32);
    let peak = |minus: Option<f32>, plus: Option<f32>| match (minus, plus) {
        (Some(m), Some(p)) => {
            let curve = m - 2.0 * top + p;
            if curve < -1e-6 {
                (0.5 * (m - p) / curve).clamp(-0.5, 0.5)
            } else {
                0.0
            }
        }
        _ => 0.0,
    };
    let sx = peak(at(bx - 1, by), at(bx + 1, by));
    let sy = peak(at(bx, by - 1), at(bx, by + 1));
    Some(Point::new(
        guess.x + bx as f32 + sx,
        guess.y + by as f32 + sy,
    ))
}

/// Makes `values` zero-mean and unit-length (so the dot product of two is their normalised
/// cross-correlation); `None` for a flat patch.
fn standardise(values: &mut [f32; SAMPLES]) -> Option<()> {
    let n = SAMPLES as f32;
    let mean = values.iter().sum::<f32>() / n;
    let mut norm = 0.0f32;
    for v in values.iter_mut() {
        *v -= mean;
        norm += *v * *v;
    }
    // Less than one grey level of spread: nothing to follow.
    if norm < n {
        return None;
    }
    let k = norm.sqrt().recip();
    values.iter_mut().for_each(|v| *v *= k);
    Some(())
}

/// The local linear part of homography `h` at `p`: `[dX/dx, dX/dy, dY/dx, dY/dy]`.
fn jacobian(h: &Matrix3, p: Point) -> Option<[f32; 4]> {
    let (x, y) = (f64::from(p.x), f64::from(p.y));
    let w = h[6] * x + h[7] * y + h[8];
    if w.abs() < 1e-12 {
        return None;
    }
    let mx = (h[0] * x + h[1] * y + h[2]) / w;
    let my = (h[3] * x + h[4] * y + h[5]) / w;
    let j = [
        (h[0] - mx * h[6]) / w,
        (h[1] - mx * h[7]) / w,
        (h[3] - my * h[6]) / w,
        (h[4] - my * h[7]) / w,
    ];
    j.iter().all(|v| v.is_finite()).then(|| j.map(|v| v as f32))
}

/// The ratio of the singular values of the best affine map of `a` onto `b`, minus one:
/// 0 for a similarity (shift, rotation, scale), `1/cos(t) - 1` for a plane turned by `t`.
fn anisotropy(a: &[Point], b: &[Point]) -> Option<f32> {
    let (ca, cb) = (Point::mean(a), Point::mean(b));
    let (mut sxx, mut sxy, mut syy) = (0.0f64, 0.0f64, 0.0f64);
    let (mut ux, mut uy, mut vx, mut vy) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (p, q) in a.iter().zip(b) {
        let (px, py) = (f64::from(p.x - ca.x), f64::from(p.y - ca.y));
        let (qx, qy) = (f64::from(q.x - cb.x), f64::from(q.y - cb.y));
        sxx += px * px;
        sxy += px * py;
        syy += py * py;
        ux += qx * px;
        uy += qx * py;
        vx += qy * px;
        vy += qy * py;
    }
    let det = sxx * syy - sxy * sxy;
    if det.abs() < 1e-9 {
        return None;
    }
    // A = [[ux, uy], [vx, vy]] * inverse([[sxx, sxy], [sxy, syy]]).
    let (i00, i01, i11) = (syy / det, -sxy / det, sxx / det);
    let (a00, a01) = (ux * i00 + uy * i01, ux * i01 + uy * i11);
    let (a10, a11) = (vx * i00 + vy * i01, vx * i01 + vy * i11);
    // Singular values of a 2x2 matrix: q + r and |q - r|.
    let q = ((a00 + a11) / 2.0).hypot((a10 - a01) / 2.0);
    let r = ((a00 - a11) / 2.0).hypot((a10 + a01) / 2.0);
    let smallest = (q - r).abs();
    (smallest > 1e-9).then(|| ((q + r) / smallest - 1.0) as f32)
}

/// Inter-ocular distance of 68 iBUG landmarks (eye centres: means of 36-41 and 42-47).
fn inter_ocular(points: &[Point]) -> Option<f32> {
    let d = Point::mean(&points[36..42]).distance(Point::mean(&points[42..48]));
    (d > 1e-3).then_some(d)
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
fn fit_homography(a: &[Point], b: &[Point]) -> Option<[f64; 9]> {
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

    /// A crude 3D head in the iBUG 68-point layout, in IODs (eye centres at x = -0.5 and
    /// 0.5): the jaw and the eyes at the back, brows and mouth a little forward, the nose
    /// tip 0.8 in front.
    fn head() -> Vec<[f64; 3]> {
        let mut p = Vec::with_capacity(68);
        for i in 0..17 {
            let t = std::f64::consts::PI * i as f64 / 16.0;
            p.push([-t.cos(), 0.9 * t.sin() - 0.1, -0.3 + 0.2 * t.sin()]);
        }
        for start in [-0.85, 0.2] {
            for k in 0..5 {
                p.push([start + 0.16 * k as f64, -0.55, 0.1]);
            }
        }
        for k in 0..4 {
            p.push([0.0, -0.35 + 0.15 * k as f64, 0.2 + 0.2 * k as f64]);
        }
        for k in 0..5 {
            let x = -0.2 + 0.1 * k as f64;
            p.push([x, 0.3, 0.6 - 0.5 * x.abs()]);
        }
        for cx in [-0.5, 0.5] {
            for k in 0..6 {
                let t = std::f64::consts::PI * k as f64 / 3.0;
                p.push([cx - 0.15 * t.cos(), -0.3 - 0.06 * t.sin(), 0.0]);
            }
        }
        for k in 0..12 {
            let t = std::f64::consts::PI * k as f64 / 6.0;
            p.push([
                -0.4 * t.cos(),
                0.6 - 0.15 * t.sin(),
                0.2 - 0.1 * t.cos().abs(),
            ]);
        }
        for k in 0..8 {
            let t = std::f64::consts::PI * k as f64 / 4.0;
            p.push([-0.3 * t.cos(), 0.6 - 0.05 * t.sin(), 0.2]);
        }
        p
    }

    /// Perspective image (70 px per IOD, camera 8 IODs away) after turning by `yaw` and
    /// `pitch` radians, brought closer by `closer` IODs and shifted by `shift` pixels.
    fn project(points: &[[f64; 3]], yaw: f64, pitch: f64, closer: f64, shift: f64) -> Vec<Point> {
        points
            .iter()
            .map(|&[x, y, z]| {
                let (x, z) = (
                    x * yaw.cos() + z * yaw.sin(),
                    -x * yaw.sin() + z * yaw.cos(),
                );
                let (y, z) = (
                    y * pitch.cos() - z * pitch.sin(),
                    y * pitch.sin() + z * pitch.cos(),
                );
                let w = 8.0 - closer - z;
                Point::new(
                    (560.0 * x / w + 320.0 + shift) as f32,
                    (560.0 * y / w + 240.0) as f32,
                )
            })
            .collect()
    }

    fn flat(points: &[[f64; 3]]) -> Vec<[f64; 3]> {
        points.iter().map(|&[x, y, _]| [x, y, 0.0]).collect()
    }

    fn cue(frames: &[Vec<Point>]) -> Planarity {
        let views: Vec<FaceView<'_>> = frames.iter().map(|f| FaceView::landmarks(f)).collect();
        measure(&views)
    }

    #[test]
    fn a_turned_plane_deforms_without_parallax_and_a_head_shows_its_nose() {
        let (plane, face) = (flat(&head()), head());
        let (a, b) = (
            project(&plane, 0.0, 0.0, 0.0, 0.0),
            project(&plane, 0.4, 0.1, 1.0, 30.0),
        );
        let p = pair_cue(FaceView::landmarks(&a), FaceView::landmarks(&b)).unwrap();
        assert!(p.deformation > LivenessPreset::Hardened.min_turn(), "{p:?}");
        assert!(p.parallax < 1e-3, "a plane has no parallax: {p:?}");
        let (a, b) = (
            project(&face, 0.0, 0.0, 0.0, 0.0),
            project(&face, 0.26, 0.0, 0.0, 0.0),
        );
        let h = pair_cue(FaceView::landmarks(&a), FaceView::landmarks(&b)).unwrap();
        assert!(h.parallax > 0.1, "a head turned by 15 degrees: {h:?}");
    }

    #[test]
    fn still_faces_neither_turn_nor_show_depth_turned_pictures_are_flat_heads_deep() {
        let face = head();
        let still: Vec<Vec<Point>> = (0..5)
            .map(|i| project(&face, 0.0, 0.0, 0.0, i as f64))
            .collect();
        let still = cue(&still);
        assert!(
            still.depth.unwrap() < 0.01 && still.deformation < 0.01,
            "{still:?}"
        );

        let plane = flat(&face);
        let turned: Vec<Vec<Point>> = (0..6)
            .map(|i| {
                project(
                    &plane,
                    -0.4 + 0.16 * i as f64,
                    0.05 * i as f64,
                    0.2 * i as f64,
                    0.0,
                )
            })
            .collect();
        let picture = cue(&turned);
        assert!(picture.depth.unwrap() < 0.01, "{picture:?}");
        assert!(
            picture.deformation > LivenessPreset::Regular.min_turn(),
            "{picture:?}"
        );
        assert!(picture.depth.unwrap() < LivenessPreset::Soft.min_depth());

        let turning: Vec<Vec<Point>> = (0..6)
            .map(|i| project(&face, -0.3 + 0.12 * i as f64, 0.0, 0.0, 0.0))
            .collect();
        let head = cue(&turning);
        assert!(
            head.depth.unwrap() > LivenessPreset::Hardened.min_depth(),
            "{head:?}"
        );
    }

    #[test]
    fn one_misplaced_frame_fakes_nothing() {
        let plane = flat(&head());
        let mut frames: Vec<Vec<Point>> = (0..6)
            .map(|i| project(&plane, -0.4 + 0.16 * i as f64, 0.0, 0.0, 0.0))
            .collect();
        // One frame whose nose the landmark network put far off.
        for p in &mut frames[3][30..36] {
            p.x += 30.0;
        }
        assert!(cue(&frames).depth.unwrap() < 0.01);
        // Two frames are not enough to leave one out.
        assert_eq!(cue(&frames[..2]).depth, None);
    }

    /// A 640x480 image with texture everywhere (waves of three sizes), and the same scene
    /// seen through homography `h` (each output pixel sampled at `h^-1`).
    fn textured_pair(h: &Matrix3) -> (crate::Image, crate::Image) {
        let (w, hgt) = (640usize, 480usize);
        let value = |x: f64, y: f64| {
            120.0
                + 50.0 * (x / 17.0).sin() * (y / 23.0).cos()
                + 40.0 * (x / 5.0 + y / 7.0).sin()
                + 30.0 * (x / 3.1 - y / 4.3).cos()
        };
        let inverse = invert(h);
        let mut a = Vec::with_capacity(w * hgt * 3);
        let mut b = Vec::with_capacity(w * hgt * 3);
        for y in 0..hgt {
            for x in 0..w {
                let v = value(x as f64, y as f64).clamp(0.0, 255.0) as u8;
                a.extend([v, v, v]);
                let p = apply(&inverse, Point::new(x as f32, y as f32));
                let v = value(f64::from(p.x), f64::from(p.y)).clamp(0.0, 255.0) as u8;
                b.extend([v, v, v]);
            }
        }
        (
            crate::Image::from_rgb(w as u32, hgt as u32, a).unwrap(),
            crate::Image::from_rgb(w as u32, hgt as u32, b).unwrap(),
        )
    }

    fn invert(m: &Matrix3) -> Matrix3 {
        let det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6])
            + m[2] * (m[3] * m[7] - m[4] * m[6]);
        [
            (m[4] * m[8] - m[5] * m[7]) / det,
            (m[2] * m[7] - m[1] * m[8]) / det,
            (m[1] * m[5] - m[2] * m[4]) / det,
            (m[5] * m[6] - m[3] * m[8]) / det,
            (m[0] * m[8] - m[2] * m[6]) / det,
            (m[2] * m[3] - m[0] * m[5]) / det,
            (m[3] * m[7] - m[4] * m[6]) / det,
            (m[1] * m[6] - m[0] * m[7]) / det,
            (m[0] * m[4] - m[1] * m[3]) / det,
        ]
    }

    #[test]
    fn following_the_texture_removes_the_landmark_networks_wobble() {
        // A picture turned a little: an exact homography between the two frames.
        let h = [0.95, 0.04, 20.0, -0.03, 1.02, 5.0, 0.0002, -0.0001, 1.0];
        let (image_a, image_b) = textured_pair(&h);
        let a = project(&flat(&head()), 0.0, 0.0, 0.0, 0.0);
        // The network places frame b's points up to 3 px off, the nose tip coherently so.
        let b: Vec<Point> = a
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let q = apply(&h, p);
                let wobble = if (30..36).contains(&i) {
                    (3.0, -2.0)
                } else {
                    ((i as f32 * 1.7).sin() * 2.0, (i as f32 * 2.3).cos() * 2.0)
                };
                Point::new(q.x + wobble.0, q.y + wobble.1)
            })
            .collect();
        let plain = pair_cue(FaceView::landmarks(&a), FaceView::landmarks(&b)).unwrap();
        assert!(
            plain.parallax > 0.04,
            "the wobble looks like depth: {plain:?}"
        );
        let (ta, tb) = (
            Texture::around(&image_a, &a).unwrap(),
            Texture::around(&image_b, &b).unwrap(),
        );
        let followed = pair_cue(
            FaceView {
                landmarks: &a,
                texture: Some(&ta),
            },
            FaceView {
                landmarks: &b,
                texture: Some(&tb),
            },
        )
        .unwrap();
        assert!(
            followed.parallax < 0.01,
            "the texture says flat: {followed:?}"
        );
    }

    #[test]
    fn degenerate_points_are_refused_not_divided_by_zero() {
        let same = vec![Point::new(1.0, 1.0); 68];
        let view = FaceView::landmarks(&same);
        assert!(pair_cue(view, view).is_none());
        let short = FaceView::landmarks(&same[..4]);
        assert!(pair_cue(short, short).is_none());
        assert_eq!(measure(&[view, view, view]).depth, None);
    }
}
