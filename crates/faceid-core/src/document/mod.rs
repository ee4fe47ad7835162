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

pub mod front;
pub mod mrz;
pub mod text;

use crate::error::{Error, Result};
use crate::geometry::{BoundingBox, Point};
use crate::image::{Image, Rotation};
use crate::models::ModelSource;

pub use self::front::{CardFront, FrontCheck};
pub use self::mrz::{Day, MachineZone, MrzChecks, MrzFields, MrzFormat};
use self::text::{TextBox, TextDetector, TextLine, TextRecognizer};

/// A line is an MRZ candidate when it is at least this many times longer than thick.
const MIN_ELONGATION: f32 = 7.0;
/// At most this many candidate lines are read (the longest first).
const MAX_CANDIDATES: usize = 12;
/// How much of its length a line is grown by at each end when the lines as detected give no
/// valid zone.
const MISSED_RUN: f32 = 0.6;
/// A trailing run of at least this many fillers is cut off and the line read again.
const FILLER_RUN: usize = 6;
/// At most this many lines of a card's front are read (the longest).
const MAX_FRONT_LINES: usize = 16;
/// How far from the portrait's face a card's front text is looked for, in face heights (an
/// ID-1 card is about four face heights tall).
const FRONT_REACH: f32 = 2.4;
/// The longest lines, read both ways round, that decide the reading direction.
const DIRECTION_LINES: usize = 3;
/// Lines read with fewer characters cannot belong to a zone.
const MIN_CHARACTERS: usize = 20;

/// The text boxes long and thick enough to be a zone line.
fn long(boxes: Vec<TextBox>) -> Vec<TextBox> {
    boxes
        .into_iter()
        .filter(|b| b.elongation() >= MIN_ELONGATION && b.thickness >= 4.0)
        .collect()
}

/// Whether a document may be enrolled from, by its zone: every check digit must agree (a
/// zone that was read but fails is a misread to rescan or a forged number, refused with the
/// digits that disagree), and it must not have expired more than `grace_days` before
/// `today`. A zone without a readable expiry is refused as invalid.
pub fn admit(zone: &MachineZone, today: Day, grace_days: u32) -> Result<()> {
    if !zone.valid {
        return Err(Error::MrzCheckFailed {
            failed: zone.checks.failed().join(", "),
        });
    }
    match zone.expired_on(today, grace_days) {
        Some(false) => Ok(()),
        Some(true) => Err(Error::DocumentExpired {
            expiry: zone.fields.expiry_date.clone(),
        }),
        None => Err(Error::MrzCheckFailed {
            failed: "expiry_date".into(),
        }),
    }
}

/// Reads the machine-readable zone of documents. Loaded on first use by the engine.
#[derive(Debug)]
pub struct DocumentReader {
    detector: TextDetector,
    recognizer: TextRecognizer,
}

/// Where the longest run of `<` starts in `text` (bytes; the text is ASCII) and how long it is.
fn longest_filler_run(text: &str) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), '#')))
    {
        match (c == '<', start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if best.is_none_or(|(_, n)| i - s > n) {
                    best = Some((s, i - s));
                }
                start = None;
            }
            _ => {}
        }
    }
    best
}

/// The MRZ alphabet.
/// A document's lines being read: the direction chosen, the lines read so far (top to
/// bottom) and the candidates not read yet.
struct Reading {
    /// The first candidate's axis: every other is folded onto it.
    reference: Option<Point>,
    /// Whether lines read along the reference axis read forwards.
    forward: bool,
    lines: Vec<TextLine>,
    rest: Vec<TextBox>,
}

impl Reading {
    fn aligned(&self, axis: Point) -> bool {
        self.reference
            .is_none_or(|r| axis.x * r.x + axis.y * r.y >= 0.0)
    }

    /// Whether a box along `axis` is read in the chosen direction as it is.
    fn agrees(&self, axis: Point) -> bool {
        self.aligned(axis) == self.forward
    }
}

/// The zone the lines hold, with [`MrzChecks::letters`] judged from their probabilities.
fn parse(lines: &[TextLine]) -> Option<MachineZone> {
    let texts: Vec<String> = lines.iter().map(|l| l.text.clone()).collect();
    let mut zone = mrz::parse_lines(&texts)?;
    zone.set_letters(letters_sure(&zone, lines));
    Some(zone)
}

/// Whether every letter of `zone` that no digit covers was read with at least
/// [`mrz::MIN_LETTER_PROBABILITY`]: each zone line is matched to the reading that agrees
/// with it in the most cells, and the letters of its unchecked cells are looked up there.
/// A letter the parser put where the reading had something else (a repair, a filler run
/// widened) has no probability of its own and is not judged.
fn letters_sure(zone: &MachineZone, lines: &[TextLine]) -> bool {
    zone.unchecked_letter_cells()
        .into_iter()
        .all(|(row, cells)| {
            let Some(expected) = zone.lines.get(row) else {
                return true;
            };
            let agreement = |l: &TextLine| {
                l.text
                    .bytes()
                    .zip(expected.bytes())
                    .filter(|(a, b)| a == b)
                    .count()
            };
            let Some(reading) = lines.iter().max_by_key(|l| agreement(l)) else {
                return true;
            };
            let read = reading.text.as_bytes();
            cells
                .filter(|&i| i < read.len() && i < expected.len())
                .all(|i| {
                    let c = read[i];
                    !c.is_ascii_uppercase()
                        || c != expected.as_bytes()[i]
                        || reading
                            .probabilities
                            .get(i)
                            .is_none_or(|&p| p >= mrz::MIN_LETTER_PROBABILITY)
                })
        })
}

/// What a card's front prints in Latin script.
fn front_character(c: char) -> bool {
    c.is_ascii_alphanumeric() || " ./-'".contains(c)
}

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
    ///
    /// The detector draws looser boxes around vertical text than around horizontal text (and
    /// the recogniser then drops characters), so a document whose long lines run vertically
    /// is turned a quarter and detected again; and because on some images the detector finds
    /// a zone in one orientation and not in another, the other turns are tried (see
    /// `turns`) until one gives a valid zone. In each orientation, when the lines give no valid zone they are
    /// read once more grown by [`MISSED_RUN`] of their length at each end: the detector can
    /// miss a whole run of fillers, leaving a line too short to parse. What a longer reading
    /// adds beyond a zone's width is trimmed by the parser's width rules. The first valid
    /// zone wins; with none, the first zone read (invalid) is returned.
    pub fn read_zone(&self, image: &Image) -> Result<Option<MachineZone>> {
        let mut fallback = None;
        let found = self.long_boxes(image)?;
        for &turn in Self::turns(&found) {
            let (view, boxes) = self.view(image, &found, turn)?;
            if let Some(zone) = self.valid_zone_on(&view, &boxes, &mut fallback)? {
                return Ok(Some(zone));
            }
        }
        Ok(fallback)
    }

    /// The zone on the side of a document that shows the portrait (a passport page, both
    /// sides of a card scanned on one page), `upright` as the portrait is: a zone printed
    /// beside a portrait is upright with it, so the other turns [`DocumentReader::read_zone`]
    /// tries are skipped (on a card front without a zone, a third of the time). A zone read
    /// but failing its check digits is read once more from the image turned upside down,
    /// as [`DocumentReader::read_zone`] would: the resampled pixels are a second chance.
    pub fn read_zone_upright(&self, upright: &Image) -> Result<Option<MachineZone>> {
        self.zone_upright_among(upright, self.detector.detect(upright)?)
    }

    /// The side of a document that shows the portrait, `upright` as the portrait is, with
    /// the holder's `face` on it: its zone ([`DocumentReader::read_zone_upright`]) and its
    /// front's text compared with that zone ([`DocumentReader::read_front`]), from one text
    /// detection.
    pub fn read_portrait_side(
        &self,
        upright: &Image,
        face: &BoundingBox,
    ) -> Result<(Option<MachineZone>, CardFront)> {
        let detected = self.detector.detect(upright)?;
        let zone = self.zone_upright_among(upright, detected.clone())?;
        let front = self.front_among(upright, face, detected, zone.as_ref())?;
        Ok((zone, front))
    }

    /// [`DocumentReader::read_zone_upright`] among the text boxes `detected` on `upright`.
    fn zone_upright_among(
        &self,
        upright: &Image,
        detected: Vec<TextBox>,
    ) -> Result<Option<MachineZone>> {
        let mut fallback = None;
        let found = long(detected);
        if let Some(zone) = self.valid_zone_on(upright, &found, &mut fallback)? {
            return Ok(Some(zone));
        }
        if fallback.is_some() {
            let (view, boxes) = self.view(upright, &found, Rotation::Cw180)?;
            if let Some(zone) = self.valid_zone_on(&view, &boxes, &mut fallback)? {
                return Ok(Some(zone));
            }
        }
        Ok(fallback)
    }

    /// The valid zone the lines `boxes` of `view` give, as found or grown by
    /// [`MISSED_RUN`]; the first invalid one read is kept in `fallback`.
    fn valid_zone_on(
        &self,
        view: &Image,
        boxes: &[TextBox],
        fallback: &mut Option<MachineZone>,
    ) -> Result<Option<MachineZone>> {
        for grow in [0.0, MISSED_RUN] {
            let zone = self.zone_on(view, boxes, grow)?;
            if zone.as_ref().is_some_and(|z| z.valid) {
                return Ok(zone);
            }
            if fallback.is_none() {
                *fallback = zone;
            }
        }
        Ok(None)
    }

    /// The Latin text on the front of a card, `upright` (the portrait's orientation) with
    /// the holder's `face` on it, and the card number among it, compared with `zone` when
    /// the document's zone is known. The longest [`MAX_FRONT_LINES`] lines that run across
    /// the card within [`FRONT_REACH`] face heights above or below the face are read (a
    /// scanned page may hold the back, or other papers, beside the front).
    pub fn read_front(
        &self,
        upright: &Image,
        face: &BoundingBox,
        zone: Option<&MachineZone>,
    ) -> Result<CardFront> {
        self.front_among(upright, face, self.detector.detect(upright)?, zone)
    }

    /// [`DocumentReader::read_front`] among the text boxes `detected` on `upright`.
    fn front_among(
        &self,
        upright: &Image,
        face: &BoundingBox,
        detected: Vec<TextBox>,
        zone: Option<&MachineZone>,
    ) -> Result<CardFront> {
        let reach = FRONT_REACH * face.height();
        let centre = face.center().y;
        let mut boxes: Vec<TextBox> = detected
            .into_iter()
            .filter(|b| b.axis.y.abs() < 0.3 && b.thickness >= 6.0 && b.elongation() >= 1.5)
            .filter(|b| (b.center.y - centre).abs() <= reach)
            .collect();
        boxes.sort_by(|a, b| b.length.total_cmp(&a.length));
        boxes.truncate(MAX_FRONT_LINES);
        boxes.sort_by(|a, b| {
            (a.center.y, a.center.x)
                .partial_cmp(&(b.center.y, b.center.x))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut lines = Vec::new();
        for b in boxes {
            let region = if b.axis.x < 0.0 { b.flipped() } else { b };
            let line = self.recognizer.read(upright, &region, front_character)?;
            if line.confidence >= 0.5 && line.text.trim().len() >= 2 {
                lines.push(line.text);
            }
        }
        Ok(CardFront::from_lines(lines, zone))
    }

    /// The quarter turns to try, in order: as it is and upside down, or, when most of the
    /// long lines (`boxes`, found on the image as it is) run vertically, a quarter turn
    /// either way first.
    fn turns(boxes: &[TextBox]) -> &'static [Rotation] {
        let vertical: f32 = boxes
            .iter()
            .map(|b| {
                if b.axis.y.abs() > b.axis.x.abs() {
                    b.length
                } else {
                    -b.length
                }
            })
            .sum();
        if vertical > 0.0 {
            &[Rotation::Cw90, Rotation::Cw270, Rotation::None]
        } else {
            &[Rotation::None, Rotation::Cw180]
        }
    }

    /// The image turned, and its long text boxes (those of the image as it is are `found`).
    fn view(
        &self,
        image: &Image,
        found: &[TextBox],
        turn: Rotation,
    ) -> Result<(Image, Vec<TextBox>)> {
        if turn == Rotation::None {
            return Ok((image.clone(), found.to_vec()));
        }
        let view = image.rotated(turn);
        let boxes = self.long_boxes(&view)?;
        Ok((view, boxes))
    }

    /// The detector's boxes on `image` long and thick enough to be a zone line.
    fn long_boxes(&self, image: &Image) -> Result<Vec<TextBox>> {
        Ok(long(self.detector.detect(image)?))
    }

    /// A line holding a long run of fillers (a name line, the second line of TD1 and TD2)
    /// has the parts before and after the run read again on their own: the recogniser drops
    /// characters next to a long run of chevrons, and reads the same characters whole when
    /// the run is cut off. The run's ends are where the CTC alignment put them. A second
    /// reading replaces the first's text on its side only when it holds more characters.
    fn reread_around_fillers(&self, image: &Image, line: TextLine) -> Result<TextLine> {
        let Some((start, run)) = longest_filler_run(&line.text) else {
            return Ok(line);
        };
        if run < FILLER_RUN || start < 2 {
            return Ok(line);
        }
        let stop = start + run; // first character after the run
        let p = &line.positions;
        let (Some(&first), Some(&before)) = (p.get(start), p.get(start - 1)) else {
            return Ok(line);
        };
        let pitch = (first - before).max(0.0);
        // The head: up to one and a half characters into the run.
        let cut = (first + 1.5 * pitch).min(1.0);
        let part = self
            .recognizer
            .read(image, &line.region.part(0.0, cut), mrz_character)?;
        let mut head = line.text[..start].to_string();
        let mut head_probabilities =
            line.probabilities[..start.min(line.probabilities.len())].to_vec();
        let reread = part.text.trim_end_matches('<');
        if reread.len() > head.len() {
            head = reread.to_string();
            head_probabilities = part.probabilities[..reread.len()].to_vec();
        }
        // The tail: from one and a half characters before the run's end.
        let mut tail = line.text[stop..].to_string();
        let mut tail_probabilities =
            line.probabilities[stop.min(line.probabilities.len())..].to_vec();
        if let Some(&last) = p.get(stop - 1) {
            let cut = (last - 1.5 * pitch).max(0.0);
            let part = self
                .recognizer
                .read(image, &line.region.part(cut, 1.0), mrz_character)?;
            let reread = part.text.trim_start_matches('<');
            if reread.len() > tail.len() {
                tail = reread.to_string();
                let skipped = part.text.len() - reread.len();
                tail_probabilities =
                    part.probabilities[skipped.min(part.probabilities.len())..].to_vec();
            }
        }
        let text = format!("{head}{}{tail}", "<".repeat(run));
        let run_probabilities = &line.probabilities[start..stop.min(line.probabilities.len())];
        let probabilities = [
            head_probabilities,
            run_probabilities.to_vec(),
            tail_probabilities,
        ]
        .concat();
        Ok(TextLine {
            text,
            probabilities,
            ..line
        })
    }

    /// The long lines of text in the first orientation [`DocumentReader::read_zone`] tries,
    /// each read in its better direction, top to bottom (for looking at what the reader sees).
    pub fn zone_lines(&self, image: &Image, grow: f32) -> Result<Vec<TextLine>> {
        let found = self.long_boxes(image)?;
        let (view, boxes) = self.view(image, &found, Self::turns(&found)[0])?;
        self.lines_on(&view, &boxes, grow)
    }

    /// The lines of `boxes` on `image`, each read in its better direction, top to bottom in
    /// the direction most of them agree on.
    fn lines_on(&self, image: &Image, boxes: &[TextBox], grow: f32) -> Result<Vec<TextLine>> {
        let mut reading = self.start_reading(image, boxes, grow)?;
        self.read_rest(image, &mut reading)?;
        Ok(reading.lines)
    }

    /// The zone on `image` from `boxes`: the longest lines first (a zone's lines are usually
    /// the longest on the document), parsed at once; the other lines only when those give no
    /// valid zone.
    fn zone_on(&self, image: &Image, boxes: &[TextBox], grow: f32) -> Result<Option<MachineZone>> {
        let mut reading = self.start_reading(image, boxes, grow)?;
        let zone = parse(&reading.lines);
        if zone.as_ref().is_some_and(|z| z.valid) || reading.rest.is_empty() {
            return Ok(zone);
        }
        self.read_rest(image, &mut reading)?;
        Ok(parse(&reading.lines))
    }

    /// The candidate lines of `boxes` (the longest, stretched to their parallel neighbours,
    /// grown by `grow`), the reading direction, and the longest [`DIRECTION_LINES`] read.
    fn start_reading(&self, image: &Image, boxes: &[TextBox], grow: f32) -> Result<Reading> {
        let mut candidates = boxes.to_vec();
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
        // Two pieces of one line stretched to the same neighbour are one line.
        let mut unique: Vec<TextBox> = Vec::new();
        for b in stretched {
            if !unique.iter().any(|u| text::same_line(u, &b)) {
                unique.push(b);
            }
        }
        let candidates: Vec<TextBox> = unique.iter().map(|b| b.extended(grow)).collect();
        // The reading direction is the one the confident long lines agree on: the longest
        // lines are read both ways, and each votes with its better reading's axis (folded
        // onto the first line's), weighted by its length and by how much more confident
        // that reading is. The other lines are then read in that direction only.
        let reference = candidates.first().map(|c| c.axis);
        let mut reading = Reading {
            reference,
            forward: true,
            lines: Vec::new(),
            rest: candidates.iter().skip(DIRECTION_LINES).copied().collect(),
        };
        let mut vote = 0.0;
        let mut both = Vec::new();
        for region in candidates.iter().take(DIRECTION_LINES) {
            let forward = self.recognizer.read(image, region, mrz_character)?;
            let backward = self
                .recognizer
                .read(image, &region.flipped(), mrz_character)?;
            let sign = if reading.aligned(region.axis) {
                1.0
            } else {
                -1.0
            };
            vote += sign * region.length * (forward.confidence - backward.confidence);
            both.push((forward, backward));
        }
        reading.forward = vote >= 0.0;
        let mut lines = Vec::new();
        for (forward, backward) in both {
            lines.push(if reading.agrees(forward.region.axis) {
                forward
            } else {
                backward
            });
        }
        self.add_lines(image, &mut reading, lines)?;
        Ok(reading)
    }

    /// Reads the candidate lines not read yet, in the reading's direction.
    fn read_rest(&self, image: &Image, reading: &mut Reading) -> Result<()> {
        let mut lines = Vec::new();
        for region in std::mem::take(&mut reading.rest) {
            let region = if reading.agrees(region.axis) {
                region
            } else {
                region.flipped()
            };
            lines.push(self.recognizer.read(image, &region, mrz_character)?);
        }
        self.add_lines(image, reading, lines)
    }

    /// Adds the lines long enough to belong to a zone, each re-read around its filler run,
    /// keeping the reading's lines top to bottom.
    fn add_lines(&self, image: &Image, reading: &mut Reading, lines: Vec<TextLine>) -> Result<()> {
        for line in lines {
            if line.text.len() >= MIN_CHARACTERS {
                reading.lines.push(self.reread_around_fillers(image, line)?);
            }
        }
        let down = reading
            .lines
            .first()
            .map_or(Point::new(0.0, 1.0), |l| l.region.down());
        reading.lines.sort_by(|a, b| {
            let pa = a.region.center.x * down.x + a.region.center.y * down.y;
            let pb = b.region.center.x * down.x + b.region.center.y * down.y;
            pa.total_cmp(&pb)
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> MachineZone {
        mrz::parse_exact(&[
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
            "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
        ])
        .unwrap()
    }

    #[test]
    fn an_expired_document_is_refused_after_its_grace_days() {
        let z = zone(); // expires 2012-04-15
        let day = |year, month, day| Day { year, month, day };
        assert!(admit(&z, day(2012, 4, 15), 0).is_ok());
        let refused = admit(&z, day(2012, 4, 16), 0).unwrap_err();
        assert_eq!(refused.code(), crate::ErrorCode::DocumentExpired);
        assert!(refused.to_string().contains("2012-04-15"));
        assert!(admit(&z, day(2012, 4, 25), 10).is_ok());
        assert!(admit(&z, day(2012, 4, 26), 10).is_err());
    }

    #[test]
    fn a_zone_whose_digits_disagree_is_refused_naming_them() {
        let z = mrz::parse_exact(&[
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
            "L898902C36UTO7408122F1204159ZE184226B<<<<<19",
        ])
        .unwrap();
        let refused = admit(
            &z,
            Day {
                year: 2010,
                month: 1,
                day: 1,
            },
            0,
        )
        .unwrap_err();
        assert_eq!(refused.code(), crate::ErrorCode::MrzCheckFailed);
        assert!(refused.to_string().contains("composite"), "{refused}");
    }
}
