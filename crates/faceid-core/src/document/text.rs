//! Printed text in a document image: PP-OCRv4's detector finds text lines at any angle, its
//! recogniser reads a line into characters. One type per network, as for the face models.
//!
//! Both networks come from RapidOCR's wheel (see `models/manifest.toml`) and were trained
//! through OpenCV: BGR planes scaled to `(v / 255 - 0.5) / 0.5`.

use crate::error::{Error, Result};
use crate::geometry::Point;
use crate::image::Image;
use crate::models::{Channels, InputSpec, ModelSource, OnnxModel, Scale};
use crate::sampling::Resample;

/// The detector's input: a shorter side under this many pixels is enlarged to it (so a
/// 250-pixel-wide card still gives lines the network sees)...
const DETECT_MIN_SIDE: f32 = 736.0;
/// ...unless the longer side would exceed this (cost grows with the area).
const DETECT_MAX_SIDE: f32 = 1280.0;
/// A pixel of the probability map is text above this (the DB network's usual threshold).
const TEXT_PROBABILITY: f32 = 0.3;
/// A region is kept when its mean probability is at least this.
const REGION_SCORE: f32 = 0.5;
/// DB's unclip ratio: the shrunk text kernel is grown back by `area * ratio / perimeter`.
const UNCLIP_RATIO: f32 = 1.6;
/// Regions smaller than this many map pixels are specks.
const MIN_REGION_PIXELS: usize = 12;
/// The recogniser reads lines resampled to this height.
const LINE_HEIGHT: usize = 48;
/// Longest line crop, in pixels at [`LINE_HEIGHT`] (a 44-character line needs ~900).
const MAX_LINE_WIDTH: usize = 1600;

/// A text line found on the image: a rotated rectangle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextBox {
    /// Centre, in image pixels.
    pub center: Point,
    /// Unit vector along the line (the reading direction is either way; see [`TextBox::flipped`]).
    pub axis: Point,
    /// Extent along the axis, in pixels.
    pub length: f32,
    /// Extent across it, in pixels.
    pub thickness: f32,
    /// Mean text probability inside.
    pub score: f32,
}

impl TextBox {
    /// Length over thickness: MRZ lines are long and thin.
    pub fn elongation(&self) -> f32 {
        self.length / self.thickness.max(1.0)
    }

    /// The unit vector from the top of the letters to their foot, for reading along `axis`.
    pub fn down(&self) -> Point {
        Point::new(-self.axis.y, self.axis.x)
    }

    /// The box grown by `fraction` of its length at each end.
    pub fn extended(&self, fraction: f32) -> TextBox {
        self.part(-fraction, 1.0 + fraction)
    }

    /// The part of the box between `from` and `to` (fractions of its length, 0 = start).
    pub fn part(&self, from: f32, to: f32) -> TextBox {
        let mid = ((from + to) / 2.0 - 0.5) * self.length;
        TextBox {
            center: Point::new(
                self.center.x + mid * self.axis.x,
                self.center.y + mid * self.axis.y,
            ),
            length: (to - from) * self.length,
            ..*self
        }
    }

    /// The same box read the other way round (a document upside down).
    pub fn flipped(&self) -> TextBox {
        TextBox {
            axis: Point::new(-self.axis.x, -self.axis.y),
            ..*self
        }
    }
}

/// What the recogniser read on one line.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLine {
    /// The box read, oriented as it was read.
    pub region: TextBox,
    /// The characters.
    pub text: String,
    /// Mean probability of the characters read (0 for an empty line).
    pub confidence: f32,
    /// Where each character was read along the box, from 0 (start) to 1 (end): the CTC
    /// alignment, for re-reading part of a line.
    pub positions: Vec<f32>,
    /// Each character's probability (its best over the time steps it was read at).
    pub probabilities: Vec<f32>,
}

/// PP-OCRv4 text detector (differentiable binarisation).
pub struct TextDetector {
    model: OnnxModel,
}

impl std::fmt::Debug for TextDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TextDetector")
    }
}

/// Both OCR networks take any size; the spec only records the channel order and scaling,
/// which [`fill_planes`] applies.
const OCR_INPUT: InputSpec = InputSpec {
    width: 320,
    height: LINE_HEIGHT as u32,
    channels: Channels::Bgr,
    scale: Scale::Centered,
    resample: Resample::Linear,
};

impl TextDetector {
    /// The model file.
    pub const FILE: &'static str = "ocr_detect.onnx";

    /// Opens the network.
    pub fn load(source: &ModelSource) -> Result<TextDetector> {
        Ok(TextDetector {
            model: source.open(Self::FILE, OCR_INPUT)?,
        })
    }

    /// Every text line on `image`, in image coordinates.
    pub fn detect(&self, image: &Image) -> Result<Vec<TextBox>> {
        let (w, h) = (image.width() as f32, image.height() as f32);
        if w < 8.0 || h < 8.0 {
            return Ok(Vec::new());
        }
        // Small images are enlarged (shorter side to DETECT_MIN_SIDE), large ones only
        // brought under DETECT_MAX_SIDE: shrinking a page further loses its small print.
        let scale = (DETECT_MIN_SIDE / w.min(h))
            .max(1.0)
            .min(DETECT_MAX_SIDE / w.max(h));
        let round32 = |v: f32| (((v / 32.0).round() as usize).max(1)) * 32;
        let (mw, mh) = (round32(w * scale), round32(h * scale));
        let (sx, sy) = (w / mw as f32, h / mh as f32);
        let mut input = vec![0f32; 3 * mw * mh];
        fill_planes(&mut input, mw, mh, |x, y| {
            sample(
                image,
                (x as f32 + 0.5) * sx - 0.5,
                (y as f32 + 0.5) * sy - 0.5,
            )
        });
        let (dims, map) = self
            .model
            .run_tensor(&input, [1, 3, mh, mw], "sigmoid_0.tmp_0")?;
        if map.len() != mw * mh {
            return Err(Error::Runtime(format!(
                "{}: unexpected output shape {dims:?}",
                Self::FILE
            )));
        }
        Ok(joined(regions(&map, mw, mh))
            .into_iter()
            .map(|b| TextBox {
                center: Point::new(b.center.x * sx, b.center.y * sy),
                // The map is scaled almost evenly (32-pixel rounding aside); lengths follow
                // the axis' own scale.
                axis: b.axis,
                length: b.length * (b.axis.x.abs() * sx + b.axis.y.abs() * sy),
                thickness: b.thickness * (b.axis.y.abs() * sx + b.axis.x.abs() * sy),
                score: b.score,
            })
            .collect())
    }
}

/// PP-OCRv4 line recogniser (CTC over a 6,600-character table).
pub struct TextRecognizer {
    model: OnnxModel,
    /// Output index -> character; index 0 is the CTC blank.
    table: Vec<Option<char>>,
}

impl std::fmt::Debug for TextRecognizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TextRecognizer({} symbols)", self.table.len())
    }
}

impl TextRecognizer {
    /// The model file.
    pub const FILE: &'static str = "ocr_recognize.onnx";

    /// Opens the network; its character table is stored in the model's metadata.
    pub fn load(source: &ModelSource) -> Result<TextRecognizer> {
        let model = source.open(Self::FILE, OCR_INPUT)?;
        let characters = model.metadata("character")?.ok_or_else(|| {
            Error::Runtime(format!("{}: no character table in metadata", Self::FILE))
        })?;
        let mut table = vec![None];
        table.extend(characters.split('\n').map(|s| {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(c),
                _ => None,
            }
        }));
        table.push(Some(' '));
        Ok(TextRecognizer { model, table })
    }

    /// Reads the line in `region`, keeping only characters `allowed` accepts: at each time
    /// step the best allowed symbol (or the blank) wins, so a glyph the network half-confuses
    /// with a foreign one (`«` for `<`) is still read as the allowed one.
    pub fn read(
        &self,
        image: &Image,
        region: &TextBox,
        allowed: impl Fn(char) -> bool,
    ) -> Result<TextLine> {
        let height = LINE_HEIGHT;
        let width = ((height as f32 * region.elongation()).round() as usize)
            .clamp(height / 2, MAX_LINE_WIDTH);
        let down = region.down();
        let (len, thick) = (region.length, region.thickness);
        let mut input = vec![0f32; 3 * width * height];
        fill_planes(&mut input, width, height, |x, y| {
            let u = ((x as f32 + 0.5) / width as f32 - 0.5) * len;
            let v = ((y as f32 + 0.5) / height as f32 - 0.5) * thick;
            let p = Point::new(
                region.center.x + u * region.axis.x + v * down.x,
                region.center.y + u * region.axis.y + v * down.y,
            );
            sample(image, p.x, p.y)
        });
        let (dims, probs) =
            self.model
                .run_tensor(&input, [1, 3, height, width], "softmax_11.tmp_0")?;
        let classes = dims.last().copied().unwrap_or(0);
        if classes == 0 || classes > self.table.len() + 1 || probs.len() % classes != 0 {
            return Err(Error::Runtime(format!(
                "{}: unexpected output shape {dims:?}",
                Self::FILE
            )));
        }
        let candidates: Vec<(usize, char)> = self
            .table
            .iter()
            .enumerate()
            .take(classes)
            .filter_map(|(i, c)| c.filter(|&c| allowed(c)).map(|c| (i, c)))
            .collect();
        let (text, confidence, positions, probabilities) = ctc_greedy(&probs, classes, &candidates);
        Ok(TextLine {
            region: *region,
            text,
            confidence,
            positions,
            probabilities,
        })
    }
}

/// Greedy CTC decoding over the blank (index 0) and `candidates`: repeated symbols merge,
/// blanks separate. Returns the text, the mean probability of its characters, where each
/// was emitted (0..1 along the line) and each one's probability.
fn ctc_greedy(
    probs: &[f32],
    classes: usize,
    candidates: &[(usize, char)],
) -> (String, f32, Vec<f32>, Vec<f32>) {
    let mut text = String::new();
    let mut positions = Vec::new();
    let mut probabilities: Vec<f32> = Vec::new();
    let mut sum = 0.0;
    let mut previous = 0usize;
    let steps = (probs.len() / classes.max(1)).max(1) as f32;
    for (t, step) in probs.chunks_exact(classes).enumerate() {
        let mut best = (0usize, step[0], None);
        for &(i, c) in candidates {
            if step[i] > best.1 {
                best = (i, step[i], Some(c));
            }
        }
        if let Some(c) = best.2
            && best.0 != previous
        {
            text.push(c);
            positions.push((t as f32 + 0.5) / steps);
            probabilities.push(best.1);
            sum += best.1;
        } else if best.2.is_some()
            && best.0 == previous
            && let Some(last) = probabilities.last_mut()
        {
            // The same character read on: its probability is its best step's.
            *last = last.max(best.1);
        }
        previous = best.0;
    }
    let n = text.chars().count();
    let confidence = if n == 0 { 0.0 } else { sum / n as f32 };
    (text, confidence, positions, probabilities)
}

/// Writes BGR planes scaled to `(v / 255 - 0.5) / 0.5` from a per-pixel RGB source.
fn fill_planes(
    out: &mut [f32],
    width: usize,
    height: usize,
    rgb: impl Fn(usize, usize) -> [f32; 3],
) {
    let plane = width * height;
    for y in 0..height {
        for x in 0..width {
            let [r, g, b] = rgb(x, y);
            let i = y * width + x;
            out[i] = b / 127.5 - 1.0;
            out[plane + i] = g / 127.5 - 1.0;
            out[2 * plane + i] = r / 127.5 - 1.0;
        }
    }
}

/// Bilinear RGB sample at (x, y); white outside the image (documents are read on paper).
fn sample(image: &Image, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = (image.width() as f32, image.height() as f32);
    if x < -0.5 || y < -0.5 || x > w - 0.5 || y > h - 0.5 {
        return [255.0; 3];
    }
    let x = x.clamp(0.0, w - 1.0);
    let y = y.clamp(0.0, h - 1.0);
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let x1 = (x0 + 1).min(image.width() as i64 - 1);
    let y1 = (y0 + 1).min(image.height() as i64 - 1);
    let p = [
        image.pixel(x0, y0),
        image.pixel(x1, y0),
        image.pixel(x0, y1),
        image.pixel(x1, y1),
    ];
    let mut out = [0.0; 3];
    for (c, o) in out.iter_mut().enumerate() {
        let top = f32::from(p[0][c]) * (1.0 - fx) + f32::from(p[1][c]) * fx;
        let bottom = f32::from(p[2][c]) * (1.0 - fx) + f32::from(p[3][c]) * fx;
        *o = top * (1.0 - fy) + bottom * fy;
    }
    out
}

/// Text regions of a probability map: connected components of the thresholded (and
/// 2x2-dilated) map, each fitted with a rotated rectangle from its second moments and grown
/// back as DB's unclip does.
fn regions(map: &[f32], width: usize, height: usize) -> Vec<TextBox> {
    let mut mask: Vec<bool> = map.iter().map(|&p| p > TEXT_PROBABILITY).collect();
    // 2x2 dilation: a pixel is set when it or its left, upper or upper-left neighbour is.
    for y in (0..height).rev() {
        for x in (0..width).rev() {
            let i = y * width + x;
            mask[i] = mask[i]
                || (x > 0 && mask[i - 1])
                || (y > 0 && mask[i - width])
                || (x > 0 && y > 0 && mask[i - width - 1]);
        }
    }
    let mut label = vec![false; width * height];
    let mut boxes = Vec::new();
    let mut stack = Vec::new();
    let mut pixels = Vec::new();
    for start in 0..width * height {
        if !mask[start] || label[start] {
            continue;
        }
        pixels.clear();
        label[start] = true;
        stack.push(start);
        while let Some(i) = stack.pop() {
            pixels.push(i);
            let (x, y) = (i % width, i / width);
            let mut visit = |j: usize| {
                if mask[j] && !label[j] {
                    label[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < width {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - width);
            }
            if y + 1 < height {
                visit(i + width);
            }
        }
        if pixels.len() < MIN_REGION_PIXELS {
            continue;
        }
        if let Some(b) = fit(&pixels, width, map) {
            boxes.push(b);
        }
    }
    boxes
}

/// Pieces of one line joined: the detector splits a line where a long run of thin glyphs
/// (an MRZ's `<<<<<`) leaves a gap. Two boxes join when they lie along the same line (same
/// angle within 5 degrees, centres within half a thickness of each other's line, similar
/// thickness) and the gap between them is under two thicknesses.
fn joined(mut boxes: Vec<TextBox>) -> Vec<TextBox> {
    let mut merged = true;
    while merged {
        merged = false;
        'search: for i in 0..boxes.len() {
            for j in i + 1..boxes.len() {
                if let Some(union) = join(&boxes[i], &boxes[j]) {
                    boxes[i] = union;
                    boxes.swap_remove(j);
                    merged = true;
                    break 'search;
                }
            }
        }
    }
    boxes
}

/// The box covering `a` and `b` when they are pieces of one line.
fn join(a: &TextBox, b: &TextBox) -> Option<TextBox> {
    let cos = (a.axis.x * b.axis.x + a.axis.y * b.axis.y).abs();
    let thick = a.thickness.max(b.thickness);
    if cos < 5f32.to_radians().cos() || a.thickness.min(b.thickness) < 0.6 * thick {
        return None;
    }
    let down = a.down();
    let (dx, dy) = (b.center.x - a.center.x, b.center.y - a.center.y);
    if (dx * down.x + dy * down.y).abs() > 0.5 * thick {
        return None;
    }
    if gap_along(a, b) > 2.0 * thick {
        return None;
    }
    Some(span(a, b, thick))
}

/// The gap between two boxes along `a`'s axis (negative when they overlap).
fn gap_along(a: &TextBox, b: &TextBox) -> f32 {
    let along = (b.center.x - a.center.x) * a.axis.x + (b.center.y - a.center.y) * a.axis.y;
    let (a0, a1) = (-a.length / 2.0, a.length / 2.0);
    let (b0, b1) = (along - b.length / 2.0, along + b.length / 2.0);
    b0.max(a0) - a1.min(b1)
}

/// The box spanning `a` and `b` along their length-weighted axis, `thickness` thick.
fn span(a: &TextBox, b: &TextBox, thickness: f32) -> TextBox {
    let sign = if a.axis.x * b.axis.x + a.axis.y * b.axis.y >= 0.0 {
        1.0
    } else {
        -1.0
    };
    let ax = a.axis.x * a.length + sign * b.axis.x * b.length;
    let ay = a.axis.y * a.length + sign * b.axis.y * b.length;
    let norm = (ax * ax + ay * ay).sqrt().max(1e-6);
    let axis = Point::new(ax / norm, ay / norm);
    let down = Point::new(-axis.y, axis.x);
    let (mut u0, mut u1, mut v) = (f32::MAX, f32::MIN, 0.0);
    for (bx, weight) in [(a, a.length), (b, b.length)] {
        for end in [-0.5f32, 0.5] {
            let x = bx.center.x + end * bx.length * bx.axis.x;
            let y = bx.center.y + end * bx.length * bx.axis.y;
            let u = x * axis.x + y * axis.y;
            u0 = u0.min(u);
            u1 = u1.max(u);
        }
        v += (bx.center.x * down.x + bx.center.y * down.y) * weight;
    }
    let weight = a.length + b.length;
    v /= weight;
    let mid = (u0 + u1) / 2.0;
    TextBox {
        center: Point::new(mid * axis.x + v * down.x, mid * axis.y + v * down.y),
        axis,
        length: u1 - u0,
        thickness,
        score: (a.score * a.length + b.score * b.length) / weight,
    }
}

/// Whether two boxes cover mostly the same stretch of one line.
pub fn same_line(a: &TextBox, b: &TextBox) -> bool {
    let cos = (a.axis.x * b.axis.x + a.axis.y * b.axis.y).abs();
    let down = a.down();
    let across = ((b.center.x - a.center.x) * down.x + (b.center.y - a.center.y) * down.y).abs();
    let overlap = -gap_along(a, b);
    cos > 3f32.to_radians().cos()
        && across < 0.5 * a.thickness.min(b.thickness)
        && overlap > 0.5 * a.length.min(b.length)
}

/// `short` stretched along its own line to the extent of `long`, a parallel line next to it:
/// the lines of a machine-readable zone all have the same length, and the detector can miss
/// a faint run of fillers at the end of one.
pub fn stretched_to(short: &TextBox, long: &TextBox) -> Option<TextBox> {
    let cos = (short.axis.x * long.axis.x + short.axis.y * long.axis.y).abs();
    let down = short.down();
    let (dx, dy) = (
        long.center.x - short.center.x,
        long.center.y - short.center.y,
    );
    let across = (dx * down.x + dy * down.y).abs();
    if cos < 3f32.to_radians().cos()
        || across > 3.0 * short.thickness.max(long.thickness)
        || long.length < 1.15 * short.length
    {
        return None;
    }
    // Project `long` onto `short`'s line.
    let along = dx * short.axis.x + dy * short.axis.y;
    let shadow = TextBox {
        center: Point::new(
            short.center.x + along * short.axis.x,
            short.center.y + along * short.axis.y,
        ),
        axis: short.axis,
        length: long.length,
        thickness: short.thickness,
        score: short.score,
    };
    let mut out = span(short, &shadow, short.thickness);
    out.axis = short.axis;
    Some(out)
}

/// The rotated rectangle of one component (pixel indices into a `width`-wide map).
fn fit(pixels: &[usize], width: usize, map: &[f32]) -> Option<TextBox> {
    let n = pixels.len() as f32;
    let (mut mx, mut my, mut score) = (0.0f32, 0.0f32, 0.0f32);
    for &i in pixels {
        mx += (i % width) as f32;
        my += (i / width) as f32;
        score += map[i];
    }
    mx /= n;
    my /= n;
    score /= n;
    if score < REGION_SCORE {
        return None;
    }
    let (mut sxx, mut syy, mut sxy) = (0.0f32, 0.0f32, 0.0f32);
    for &i in pixels {
        let dx = (i % width) as f32 - mx;
        let dy = (i / width) as f32 - my;
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    let angle = 0.5 * (2.0 * sxy).atan2(sxx - syy);
    let axis = Point::new(angle.cos(), angle.sin());
    let down = Point::new(-axis.y, axis.x);
    let (mut u0, mut u1, mut v0, mut v1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for &i in pixels {
        let dx = (i % width) as f32 - mx;
        let dy = (i / width) as f32 - my;
        let u = dx * axis.x + dy * axis.y;
        let v = dx * down.x + dy * down.y;
        u0 = u0.min(u);
        u1 = u1.max(u);
        v0 = v0.min(v);
        v1 = v1.max(v);
    }
    let (length, thickness) = (u1 - u0 + 1.0, v1 - v0 + 1.0);
    let grow = length * thickness * UNCLIP_RATIO / (2.0 * (length + thickness));
    let (uc, vc) = ((u0 + u1) / 2.0, (v0 + v1) / 2.0);
    Some(TextBox {
        center: Point::new(
            mx + uc * axis.x + vc * down.x + 0.5,
            my + uc * axis.y + vc * down.y + 0.5,
        ),
        axis,
        length: length + 2.0 * grow,
        thickness: thickness + 2.0 * grow,
        score,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctc_merges_repeats_and_keeps_only_allowed_symbols() {
        // classes: 0 blank, 1 'A', 2 '<', 3 '«'
        let candidates = [(1, 'A'), (2, '<')];
        #[rustfmt::skip]
        let probs = [
            0.1, 0.8, 0.05, 0.05, // A
            0.1, 0.8, 0.05, 0.05, // A (repeat, merged)
            0.9, 0.05, 0.0, 0.05, // blank
            0.1, 0.7, 0.1, 0.1,   // A again
            0.1, 0.0, 0.3, 0.6,   // « is best, < is the best allowed
        ];
        let (text, confidence, positions, _) = ctc_greedy(&probs, 4, &candidates);
        assert_eq!(text, "AA<");
        assert_eq!(positions, [0.1, 0.7, 0.9]);
        assert!((confidence - (0.8 + 0.7 + 0.3) / 3.0).abs() < 1e-6);
    }

    #[test]
    fn a_tilted_bar_is_fitted_along_its_slope() {
        // A 60x6 bar tilted by about 5.7 degrees on a 100x40 map.
        let (w, h) = (100, 40);
        let mut map = vec![0.0; w * h];
        for t in 0..60 {
            for s in 0..6 {
                let x = 20 + t;
                let y = 10 + t / 10 + s;
                map[y * w + x] = 0.9;
            }
        }
        let boxes = regions(&map, w, h);
        assert_eq!(boxes.len(), 1);
        let b = boxes[0];
        let degrees = b.axis.y.atan2(b.axis.x).to_degrees();
        assert!((degrees - 5.7).abs() < 2.0, "{degrees}");
        assert!(b.length > 60.0 && b.length < 80.0, "{}", b.length);
        assert!(b.elongation() > 3.0, "{}", b.elongation());
    }

    #[test]
    fn a_flipped_box_reads_the_other_way() {
        let b = TextBox {
            center: Point::new(5.0, 5.0),
            axis: Point::new(1.0, 0.0),
            length: 10.0,
            thickness: 2.0,
            score: 1.0,
        };
        assert_eq!(b.down(), Point::new(0.0, 1.0));
        assert_eq!(b.flipped().down(), Point::new(0.0, -1.0));
    }
}
