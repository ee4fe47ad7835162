//! Identity documents beyond the portrait: the machine-readable zone, found and read on a
//! photo or scan in any orientation, the card not filling the frame.
//!
//! ```text
//! Image ─ text::TextDetector ─> TextBox (rotated lines) ─ text::TextRecognizer ─> TextLine
//!       ─ mrz::parse_lines ─> MachineZone (fields, each check digit, valid)
//! ```
//!
//! The zone is looked for among the long, thin lines of text (an MRZ line holds 30-44
//! characters). Each is read both ways round, and the reading direction most of the long
//! lines agree on orders them top to bottom; the parser then picks the lines that form a
//! zone. A quarter-turned document needs nothing special: the line detector is
//! rotation-free.

pub mod mrz;
pub mod text;

use crate::error::Result;
use crate::geometry::Point;
use crate::image::Image;
use crate::models::ModelSource;

pub use self::mrz::{Day, MachineZone, MrzChecks, MrzFields, MrzFormat};
use self::text::{TextBox, TextDetector, TextLine, TextRecognizer};

/// A line is an MRZ candidate when it is at least this many times longer than thick.
const MIN_ELONGATION: f32 = 7.0;
/// At most this many candidate lines are read (the longest first).
const MAX_CANDIDATES: usize = 12;
/// Lines read with fewer characters cannot belong to a zone.
const MIN_CHARACTERS: usize = 20;

/// Reads the machine-readable zone of documents. Loaded on first use by the engine.
#[derive(Debug)]
pub struct DocumentReader {
    detector: TextDetector,
    recognizer: TextRecognizer,
}

/// The MRZ alphabet.
fn mrz_character(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || c == '<'
}

impl DocumentReader {
    /// Opens both OCR networks.
    pub fn load(source: &ModelSource) -> Result<DocumentReader> {
        Ok(DocumentReader {
            detector: TextDetector::load(source)?,
            recognizer: TextRecognizer::load(source)?,
        })
    }

    /// The zone on `image`, or `None` when there is none (or none could be read).
    pub fn read_zone(&self, image: &Image) -> Result<Option<MachineZone>> {
        let lines = self.zone_lines(image)?;
        Ok(mrz::parse_lines(
            &lines.into_iter().map(|l| l.text).collect::<Vec<_>>(),
        ))
    }

    /// The long lines of text, each read in its better direction, top to bottom in the
    /// direction most of them agree on.
    pub fn zone_lines(&self, image: &Image) -> Result<Vec<TextLine>> {
        let mut candidates: Vec<TextBox> = self
            .detector
            .detect(image)?
            .into_iter()
            .filter(|b| b.elongation() >= MIN_ELONGATION && b.thickness >= 4.0)
            .collect();
        candidates.sort_by(|a, b| b.length.total_cmp(&a.length));
        candidates.truncate(MAX_CANDIDATES);
        // A line much shorter than a parallel neighbour is stretched to it (a zone's lines
        // have one length; a faint run of fillers is easily missed).
        let stretched: Vec<TextBox> = candidates
            .iter()
            .map(|c| {
                candidates
                    .iter()
                    .filter_map(|n| text::stretched_to(c, n))
                    .max_by(|a, b| a.length.total_cmp(&b.length))
                    .unwrap_or(*c)
            })
            .collect();
        let candidates = stretched;
        let mut readings = Vec::new();
        for region in &candidates {
            let forward = self.recognizer.read(image, region, mrz_character)?;
            let backward = self
                .recognizer
                .read(image, &region.flipped(), mrz_character)?;
            if forward.text.len().max(backward.text.len()) >= MIN_CHARACTERS {
                readings.push((forward, backward));
            }
        }
        // The reading direction is the one the confident long lines agree on: each votes
        // with its better reading's axis (folded onto the first line's), weighted by its
        // length and by how much more confident that reading is.
        let reference = readings.first().map(|(f, _)| f.region.axis);
        let mut vote = 0.0;
        for (forward, backward) in &readings {
            let (Some(reference), axis) = (reference, forward.region.axis) else {
                continue;
            };
            let aligned = if axis.x * reference.x + axis.y * reference.y >= 0.0 {
                1.0
            } else {
                -1.0
            };
            vote += aligned * forward.region.length * (forward.confidence - backward.confidence);
        }
        let mut lines: Vec<TextLine> = readings
            .into_iter()
            .map(|(forward, backward)| {
                let Some(reference) = reference else {
                    return forward;
                };
                let a = forward.region.axis;
                let agrees = (a.x * reference.x + a.y * reference.y >= 0.0) == (vote >= 0.0);
                if agrees { forward } else { backward }
            })
            .filter(|l| l.text.len() >= MIN_CHARACTERS)
            .collect();
        let down = lines
            .first()
            .map_or(Point::new(0.0, 1.0), |l| l.region.down());
        lines.sort_by(|a, b| {
            let pa = a.region.center.x * down.x + a.region.center.y * down.y;
            let pb = b.region.center.x * down.x + b.region.center.y * down.y;
            pa.total_cmp(&pb)
        });
        Ok(lines)
    }
}
