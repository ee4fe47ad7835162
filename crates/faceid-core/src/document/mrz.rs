//! The machine-readable zone (ICAO 9303): OCR lines -> [`MachineZone`] with every check digit
//! verified.
//!
//! Parsing and the check-digit arithmetic are the `mrz` crate's (TD1, TD2, TD3, MRV-A,
//! MRV-B; 7-3-1 weights; the long document number continued in the optional data). Its
//! repairs of lookalike characters (O/0, I/1, B/8, ...) are made only where a check digit
//! agrees with the repaired field; a field no digit covers is kept as read. What this module
//! adds is what comes before the parser: the lines of a photographed zone, read by OCR, are
//! brought to their format's width (OCR drops or doubles a `<` in a long run of fillers).

use serde::Serialize;

/// Widths of the MRZ formats: TD1 (3 lines), TD2 and MRV-B (2), TD3 and MRV-A (2).
const WIDTHS: [usize; 3] = [30, 36, 44];
/// A line this much wider than a format's width is trimmed to it...
const WIDTH_SLACK: usize = 4;
/// ...and one this much narrower padded (a faint run of chevrons loses many at once).
const PADDING_SLACK: usize = 8;

/// Which ICAO 9303 layout the zone has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MrzFormat {
    /// Identity card: 3 lines of 30.
    #[serde(rename = "TD1")]
    Td1,
    /// Travel document / older ID: 2 lines of 36.
    #[serde(rename = "TD2")]
    Td2,
    /// Passport: 2 lines of 44.
    #[serde(rename = "TD3")]
    Td3,
    /// Visa, passport-sized: 2 lines of 44.
    #[serde(rename = "MRV-A")]
    MrvA,
    /// Visa, smaller: 2 lines of 36.
    #[serde(rename = "MRV-B")]
    MrvB,
}

/// The fields of the zone, as printed (fillers turned into spaces in names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MrzFields {
    /// Document code: `P`, `I`, `ID`, `V`, ...
    pub document_code: String,
    /// Issuing state (ICAO 3-letter code).
    pub issuing_state: String,
    /// The whole document number (a number longer than 9 characters continues in the
    /// optional data; it is reassembled here).
    pub document_number: String,
    /// Optional data (TD3: personal number), without the document number's continuation.
    pub optional_data: Option<String>,
    /// TD1's second optional data element.
    pub optional_data_2: Option<String>,
    /// Primary identifier.
    pub surname: String,
    /// Secondary identifier.
    pub given_names: String,
    /// Nationality (ICAO 3-letter code).
    pub nationality: String,
    /// Date of birth, `YYYY-MM-DD` (century inferred), or the raw field when it is not a date.
    pub birth_date: String,
    /// `M`, `F` or `<` (unspecified).
    pub sex: String,
    /// Date of expiry, `YYYY-MM-DD`, or the raw field when it is not a date.
    pub expiry_date: String,
}

/// Which check digits agree with their fields (`None`: the format prints no such digit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MrzChecks {
    /// Document number.
    pub document_number: Option<bool>,
    /// Date of birth.
    pub birth_date: Option<bool>,
    /// Date of expiry.
    pub expiry_date: Option<bool>,
    /// TD3's personal number.
    pub personal_number: Option<bool>,
    /// The composite digit over the number, dates and optional data.
    pub composite: Option<bool>,
    /// What no digit covers looks like a zone: a surname of at least two letters, and no
    /// lone character among an optional field's fillers. `A`, `K` and `U` weigh 0 like `<`,
    /// so a smudge read as one of them among fillers passes every digit; a whole name line
    /// misread passes them all too.
    pub layout: Option<bool>,
    /// Every letter no digit covers (the names, the states) was read with a probability of
    /// at least [`MIN_LETTER_PROBABILITY`]: a small, faint print's `M` read as `N` passes
    /// every digit, but the recogniser is unsure of it. `None` for a zone given as text.
    pub letters: Option<bool>,
}

/// The least probability a letter no check digit covers must be read with for the zone to
/// be valid (see [`MrzChecks::letters`]). On the public specimens the misread name letters
/// came at 0.41-0.48 and the least sure correct ones at 0.61.
pub const MIN_LETTER_PROBABILITY: f32 = 0.5;

impl MrzChecks {
    /// The names of the digits that disagree, in the zone's order (for refusal reasons).
    pub fn failed(&self) -> Vec<&'static str> {
        [
            ("document_number", self.document_number),
            ("birth_date", self.birth_date),
            ("expiry_date", self.expiry_date),
            ("personal_number", self.personal_number),
            ("composite", self.composite),
            ("layout", self.layout),
            ("letters", self.letters),
        ]
        .into_iter()
        .filter(|(_, v)| *v == Some(false))
        .map(|(name, _)| name)
        .collect()
    }
}

/// A machine-readable zone read and checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineZone {
    /// The layout.
    pub format: MrzFormat,
    /// The lines as validated (after any confirmed repair).
    pub lines: Vec<String>,
    /// The fields.
    pub fields: MrzFields,
    /// Each check digit.
    pub checks: MrzChecks,
    /// Every check digit the format prints agrees. A zone that is not valid must not be
    /// trusted for any field.
    pub valid: bool,
    /// Some character was changed from what the OCR read, each change confirmed by a check
    /// digit (or the width of a filler run adjusted).
    pub repaired: bool,
}

impl MachineZone {
    /// Records whether the letters no digit covers were read surely enough (see
    /// [`MrzChecks::letters`]); a zone read unsure is not valid.
    pub fn set_letters(&mut self, sure: bool) {
        self.checks.letters = Some(sure);
        self.valid &= sure;
    }

    /// The line holding the names (the last of TD1, the first of the others) and the cells
    /// of it and of the others whose letters no digit covers.
    pub fn unchecked_letter_cells(&self) -> Vec<(usize, std::ops::Range<usize>)> {
        match self.format {
            MrzFormat::Td1 => vec![(0, 2..5), (1, 15..18), (2, 0..30)],
            _ => {
                let width = self.lines.first().map_or(0, String::len);
                vec![(0, 2..width), (1, 10..13)]
            }
        }
    }
}

/// A calendar day (the engine has no clock: callers pass today).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Day {
    /// Year, e.g. 2026.
    pub year: i32,
    /// Month, 1-12.
    pub month: u32,
    /// Day of the month, 1-31.
    pub day: u32,
}

impl Day {
    /// Days since 1970-01-01 (proleptic Gregorian).
    pub fn ordinal(self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The day `days` after 1970-01-01 (the inverse of [`Day::ordinal`]).
    pub fn from_ordinal(days: i64) -> Day {
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Day { year, month, day }
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Day> {
        let mut parts = text.split('-');
        let year = parts.next()?.parse().ok()?;
        let month = parts.next()?.parse().ok()?;
        let day = parts.next()?.parse().ok()?;
        (parts.next().is_none() && (1..=12).contains(&month) && (1..=31).contains(&day))
            .then_some(Day { year, month, day })
    }
}

impl MachineZone {
    /// The expiry day, when the field holds a real date.
    pub fn expiry(&self) -> Option<Day> {
        Day::parse(&self.fields.expiry_date)
    }

    /// Whether the document has expired on `today`, allowing `grace_days` after the printed
    /// expiry (a document is valid through its expiry day). `None` when the zone carries no
    /// readable expiry.
    pub fn expired_on(&self, today: Day, grace_days: u32) -> Option<bool> {
        let expiry = self.expiry()?;
        Some(today.ordinal() > expiry.ordinal() + i64::from(grace_days))
    }
}

/// Reads the zone from OCR lines in reading order (other text on the document may be among
/// them: the parser picks the lines that form a zone). `None` when no zone is found.
pub fn parse_lines(lines: &[String]) -> Option<MachineZone> {
    let cleaned: Vec<String> = lines
        .iter()
        .map(|l| {
            l.chars()
                .filter(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '<')
                .collect::<String>()
        })
        .filter(|l| l.len() >= WIDTHS[0] - PADDING_SLACK)
        .collect();
    let widths: Vec<String> = cleaned.iter().map(|l| fit_width(l)).collect();
    let fitted: Vec<String> = (0..widths.len())
        .map(|i| letters_in(&widths[i], letter_cells(&widths, i)))
        .collect();
    let doc = mrz::find_and_parse(&fitted.join("\n")).ok()?;
    let validated: Vec<String> = doc.mrz_lines.lines().map(str::to_owned).collect();
    let repaired = validated.iter().any(|v| !cleaned.iter().any(|c| c == v));
    let read = zone(&doc, validated, repaired);
    if read.valid {
        return Some(read);
    }
    Some(substituted(&read).unwrap_or(read))
}

/// Where each check-digited field sits, by line width: (line, start, end, check digit
/// column, kind).
fn checked_fields(width: usize) -> [(usize, usize, usize, usize, mrz::FieldKind); 3] {
    use mrz::FieldKind::{Date, DocumentNumber};
    if width == 30 {
        [
            (0, 5, 14, 14, DocumentNumber),
            (1, 0, 6, 6, Date),
            (1, 8, 14, 14, Date),
        ]
    } else {
        [
            (1, 0, 9, 9, DocumentNumber),
            (1, 13, 19, 19, Date),
            (1, 21, 27, 27, Date),
        ]
    }
}

/// A zone whose check digits fail, repaired by swapping lookalike characters (O/0, I/1,
/// B/8, S/5, ...) inside each failing field where the field's own digit then agrees and the
/// composite singles out one swap; the result is kept only if every digit of the zone then
/// agrees. Anything less and the zone stays as read, invalid.
fn substituted(read: &MachineZone) -> Option<MachineZone> {
    let width = read.lines.first()?.len();
    let mut lines = read.lines.clone();
    let mut changed = false;
    for (line, start, end, check, kind) in checked_fields(width) {
        let text = lines.get(line)?;
        let (Some(field), Some(digit)) = (
            text.get(start..end),
            text.get(check..).and_then(|t| t.chars().next()),
        ) else {
            continue;
        };
        if mrz::verify(field, digit) {
            continue;
        }
        let candidates = match mrz::solve_substitution(field, digit, kind) {
            mrz::Resolution::Unique(fixed) => vec![fixed],
            // Swaps the digit confirms equally: only those the issuer could have printed.
            mrz::Resolution::Ambiguous { candidates } if kind == mrz::FieldKind::DocumentNumber => {
                candidates
                    .into_iter()
                    .filter(|c| issuer_prints(&read.fields.issuing_state, c))
                    .collect()
            }
            mrz::Resolution::Ambiguous { candidates } => candidates,
            _ => continue,
        };
        let agreeing: Vec<String> = candidates
            .into_iter()
            .filter(|fixed| {
                let mut trial = lines.clone();
                trial[line].replace_range(start..end, fixed);
                let refs: Vec<&str> = trial.iter().map(String::as_str).collect();
                parse_exact(&refs).is_some_and(|z| z.checks.composite != Some(false))
            })
            .collect();
        if let [fixed] = agreeing.as_slice() {
            lines[line].replace_range(start..end, fixed);
            changed = true;
        }
    }
    if !changed {
        return None;
    }
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut fixed = parse_exact(&refs)?;
    fixed.repaired = true;
    fixed.valid.then_some(fixed)
}

/// Whether the issuer `state` prints document numbers shaped like `number` (fillers
/// trimmed), for the issuers whose format is known: the Moroccan CNIE's number is one or
/// two letters then digits. Unknown issuers print anything.
///
/// Used only to choose among swaps the check digit confirms equally (the digit's weights
/// cannot tell `G0382601` from `GO382601` and `G03826Q1`): the issuer's format leaves one,
/// or the zone stays invalid.
fn issuer_prints(state: &str, number: &str) -> bool {
    let number = number.trim_end_matches('<');
    match state {
        "MAR" => {
            let letters = number.chars().take_while(char::is_ascii_uppercase).count();
            (1..=2).contains(&letters)
                && number.len() > letters
                && number[letters..].chars().all(|c| c.is_ascii_digit())
        }
        _ => true,
    }
}

/// Parses a zone given exactly, line by line, with no repair: the parser of each format.
pub fn parse_exact(lines: &[&str]) -> Option<MachineZone> {
    let doc = match lines {
        [a, b, c] => mrz::parse_td1(a, b, c).ok()?,
        [a, b] if a.len() == 44 && a.starts_with('V') => mrz::parse_mrv_a(a, b).ok()?,
        [a, b] if a.len() == 44 => mrz::parse_td3(a, b).ok()?,
        [a, b] if a.starts_with('V') => mrz::parse_mrv_b(a, b).ok()?,
        [a, b] => mrz::parse_td2(a, b).ok()?,
        _ => return None,
    };
    Some(zone(
        &doc,
        lines.iter().map(|l| (*l).to_owned()).collect(),
        false,
    ))
}

fn zone(doc: &mrz::MrzData, lines: Vec<String>, repaired: bool) -> MachineZone {
    let layout = plausible_layout(doc, &lines);
    let format = match doc.format {
        mrz::Format::Td1 => MrzFormat::Td1,
        mrz::Format::Td2 => MrzFormat::Td2,
        mrz::Format::MrvA => MrzFormat::MrvA,
        mrz::Format::MrvB => MrzFormat::MrvB,
        _ => MrzFormat::Td3,
    };
    MachineZone {
        format,
        fields: MrzFields {
            document_code: doc.document_type.clone(),
            issuing_state: doc.issuing_country.clone(),
            document_number: doc.full_document_number().to_owned(),
            optional_data: doc.optional_data_1.clone(),
            optional_data_2: doc.optional_data_2.clone(),
            surname: doc.surname.clone(),
            given_names: doc.given_names.clone(),
            nationality: doc.nationality.clone(),
            birth_date: doc.date_of_birth.to_string(),
            sex: doc.sex.to_string(),
            expiry_date: doc.date_of_expiry.to_string(),
        },
        checks: MrzChecks {
            document_number: doc.checks.document_number,
            birth_date: doc.checks.date_of_birth,
            expiry_date: doc.checks.date_of_expiry,
            personal_number: doc.checks.personal_number,
            composite: doc.checks.composite,
            layout: Some(layout),
            letters: None,
        },
        valid: doc.checksum_consistent() && layout,
        repaired,
        lines,
    }
}

/// The checks of [`MrzChecks::layout`]: the surname holds at least two letters, and each
/// optional-data field is its content then fillers, never a lone character after a run of
/// fillers.
fn plausible_layout(doc: &mrz::MrzData, lines: &[String]) -> bool {
    let surname = doc
        .surname
        .chars()
        .filter(char::is_ascii_alphabetic)
        .count();
    let optional: &[(usize, std::ops::Range<usize>)] = match doc.format {
        mrz::Format::Td1 => &[(0, 15..30), (1, 18..29)],
        mrz::Format::Td2 => &[(1, 28..35)],
        _ => &[],
    };
    // A lone character after a run of fillers, or a lone `A`, `K` or `U` (weight 0)
    // anywhere among fillers.
    let lone_after_fillers = |field: &str| {
        let mut fillers = 0;
        let tokens: Vec<&str> = field.split('<').collect();
        for (i, token) in tokens.iter().enumerate() {
            if token.is_empty() {
                fillers += 1;
                continue;
            }
            let among_fillers = fillers >= 1 || tokens.get(i + 1).is_some_and(|t| t.is_empty());
            let weightless = matches!(*token, "A" | "K" | "U");
            if token.len() == 1 && (fillers >= 2 || (weightless && among_fillers)) {
                return true;
            }
            fillers = 1;
        }
        false
    };
    surname >= 2
        && optional.iter().all(|(line, cells)| {
            lines
                .get(*line)
                .and_then(|l| l.get(cells.clone()))
                .is_none_or(|field| !lone_after_fillers(field))
        })
}

/// The cells of line `i` of `lines` (already brought to their widths) that hold letters
/// only (issuing state, nationality, names), from its place among its neighbours: three
/// lines of 30 are TD1 (state on line 1, nationality
/// on line 2, names on line 3), two of 36 or 44 are TD2/TD3/MRV (state and names on line
/// 1, nationality on line 2).
fn letter_cells(lines: &[String], i: usize) -> Option<std::ops::Range<usize>> {
    let width = |j: Option<usize>| j.and_then(|j| lines.get(j)).map(String::len);
    let at = |offset: isize| width(i.checked_add_signed(offset));
    let long = |w: Option<usize>| matches!(w, Some(36 | 44));
    match (at(-2), at(-1), at(0), at(1), at(2)) {
        (Some(30), Some(30), Some(30), _, _) => Some(0..30),
        (_, Some(30), Some(30), Some(30), _) => Some(15..18),
        (_, _, Some(30), Some(30), Some(30)) => Some(2..5),
        (_, _, here, next, _) if long(here) && long(next) => Some(2..here.unwrap_or(0)),
        (_, before, here, _, _) if long(before) && long(here) => Some(10..13),
        _ => None,
    }
}

/// Names never hold three fillers in a row (`<<` separates surname from given names, `<`
/// the parts of each): from the first `<<<` of a name field on, every cell is filler, and
/// what OCR read there (a card edge, a smudge) is dropped.
fn filler_after_names(line: &str, names: &std::ops::Range<usize>) -> String {
    if names.len() <= 3 {
        return line.to_owned();
    }
    let Some(field) = line.get(names.start..names.end.min(line.len())) else {
        return line.to_owned();
    };
    let Some(at) = field.find("<<<") else {
        return line.to_owned();
    };
    let cut = names.start + at;
    format!("{}{}", &line[..cut], "<".repeat(line.len() - cut))
}

/// Letters-only cells carry no check digit: a digit OCR reads there is the letter it looks
/// like (0 -> O, 1 -> I, 2 -> Z, 4 -> A, 5 -> S, 6 -> G, 8 -> B). This is the only repair
/// made without a check digit, because no other reading of a digit there is possible.
fn letters_in(line: &str, cells: Option<std::ops::Range<usize>>) -> String {
    let Some(cells) = cells else {
        return line.to_owned();
    };
    let line = filler_after_names(line, &cells);
    line.chars()
        .enumerate()
        .map(|(i, c)| {
            if !cells.contains(&i) {
                return c;
            }
            match c {
                '0' => 'O',
                '1' => 'I',
                '2' => 'Z',
                '4' => 'A',
                '5' => 'S',
                '6' => 'G',
                '8' => 'B',
                _ => c,
            }
        })
        .collect()
}

/// Brings a line read by OCR to the nearest format width by growing or shrinking its
/// longest run of fillers (where OCR loses or doubles a `<`). Lines far from every width
/// are left alone.
fn fit_width(line: &str) -> String {
    let len = line.len();
    // The nearest width it can reach: trimmed by at most WIDTH_SLACK, padded by at most
    // PADDING_SLACK.
    let Some(&target) = WIDTHS
        .iter()
        .filter(|&&w| len <= w + WIDTH_SLACK && w <= len + PADDING_SLACK)
        .min_by_key(|w| w.abs_diff(len))
    else {
        return line.to_owned();
    };
    if len == target {
        return line.to_owned();
    }
    // The longest run of '<' (the last one on a tie: trailing fillers are the usual place).
    let bytes = line.as_bytes();
    let (mut best, mut start) = ((0usize, 0usize), None);
    for (i, &b) in bytes.iter().chain(std::iter::once(&b'#')).enumerate() {
        match (b == b'<', start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s >= best.1 {
                    best = (s, i - s);
                }
                start = None;
            }
            _ => {}
        }
    }
    let (at, run) = best;
    if run == 0 {
        return line.to_owned();
    }
    if len < target {
        let mut out = line.to_owned();
        out.insert_str(at, &"<".repeat(target - len));
        out
    } else if run > len - target {
        let mut out = line.to_owned();
        out.replace_range(at..at + (len - target), "");
        out
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TD3: [&str; 2] = [
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
        "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
    ];
    const TD2: [&str; 2] = [
        "I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<",
        "D231458907UTO7408122F1204159<<<<<<<6",
    ];
    const TD1: [&str; 3] = [
        "I<UTOD231458907<<<<<<<<<<<<<<<",
        "7408122F1204159UTO<<<<<<<<<<<6",
        "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
    ];

    fn owned(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| (*l).to_owned()).collect()
    }

    #[test]
    fn td3_fields_and_every_check_digit() {
        let z = parse_exact(&TD3).unwrap();
        assert_eq!(z.format, MrzFormat::Td3);
        assert!(z.valid);
        assert_eq!(z.fields.document_code, "P");
        assert_eq!(z.fields.issuing_state, "UTO");
        assert_eq!(z.fields.document_number, "L898902C3");
        assert_eq!(z.fields.surname, "ERIKSSON");
        assert_eq!(z.fields.given_names, "ANNA MARIA");
        assert_eq!(z.fields.nationality, "UTO");
        assert_eq!(z.fields.birth_date, "1974-08-12");
        assert_eq!(z.fields.sex, "F");
        assert_eq!(z.fields.expiry_date, "2012-04-15");
        assert_eq!(z.fields.optional_data.as_deref(), Some("ZE184226B"));
        assert_eq!(
            z.checks,
            MrzChecks {
                document_number: Some(true),
                birth_date: Some(true),
                expiry_date: Some(true),
                personal_number: Some(true),
                composite: Some(true),
                layout: Some(true),
                letters: None,
            }
        );
    }

    #[test]
    fn td2_and_td1_parse_with_their_own_digits() {
        let z = parse_exact(&TD2).unwrap();
        assert_eq!(z.format, MrzFormat::Td2);
        assert!(z.valid);
        assert_eq!(z.checks.personal_number, None);
        assert_eq!(z.fields.document_number, "D23145890");
        let z = parse_exact(&TD1).unwrap();
        assert_eq!(z.format, MrzFormat::Td1);
        assert!(z.valid);
        assert_eq!(z.fields.document_code, "I");
        assert_eq!(z.fields.document_number, "D23145890");
        assert_eq!(z.fields.birth_date, "1974-08-12");
        assert_eq!(z.fields.surname, "ERIKSSON");
    }

    #[test]
    fn visas_have_no_composite_digit() {
        let z = parse_exact(&[
            "V<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
            "L8988901C4XXX4009078F96121096ZE184226B<<<<<<",
        ])
        .unwrap();
        assert_eq!(z.format, MrzFormat::MrvA);
        assert!(z.valid);
        assert_eq!(z.checks.composite, None);
    }

    #[test]
    fn each_wrong_check_digit_is_named() {
        // One digit changed in each checked field of the TD3 specimen, and the composite.
        let cases = [
            (9, "document_number"),
            (19, "birth_date"),
            (27, "expiry_date"),
            (42, "personal_number"),
            (43, "composite"),
        ];
        for (at, name) in cases {
            let mut line = TD3[1].as_bytes().to_vec();
            line[at] = if line[at] == b'9' { b'8' } else { b'9' };
            let line = String::from_utf8(line).unwrap();
            let z = parse_exact(&[TD3[0], &line]).unwrap();
            assert!(!z.valid, "{name}");
            assert!(z.checks.failed().contains(&name), "{name}: {:?}", z.checks);
        }
    }

    #[test]
    fn the_long_document_number_is_reassembled() {
        // ICAO 9303 part 5: a 12-character number, its 9 first characters, '<' in the check
        // digit cell, the rest and its check digit in the optional data.
        let lines = [
            "I<UTOD23145890<7349<<<<<<<<<<<",
            "7408122F1204159UTO<<<<<<<<<<<6",
            "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
        ];
        let z = parse_exact(&lines).unwrap();
        assert!(z.valid);
        assert_eq!(z.fields.document_number, "D23145890734");
    }

    #[test]
    fn a_lookalike_is_repaired_only_when_its_check_digit_agrees() {
        // O for 0 in the birth date: the check digit confirms the repair.
        let misread = TD3[1].replace("7408122", "74O8122");
        let z = parse_lines(&owned(&[TD3[0], &misread])).unwrap();
        assert!(z.valid);
        assert!(z.repaired);
        assert_eq!(z.fields.birth_date, "1974-08-12");
        assert_eq!(z.lines[1], TD3[1]);

        // The same O, but the birth date's check digit is also wrong: repairing the O would
        // not make the digit agree, so nothing may be reported valid.
        let mut both = misread.into_bytes();
        both[19] = b'5';
        let both = String::from_utf8(both).unwrap();
        let z = parse_lines(&owned(&[TD3[0], &both]));
        assert!(z.as_ref().is_none_or(|z| !z.valid), "{z:?}");
    }

    #[test]
    fn a_letter_read_as_a_digit_in_the_document_number_is_repaired_when_both_digits_agree() {
        // A number ending in the letter O, read as the digit 0: the number's check digit and
        // the composite both confirm the O.
        let lines = [
            "I<UTOD2314589O1<<<<<<<<<<<<<<<",
            "7408122F1204159UTO<<<<<<<<<<<8",
            "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
        ];
        assert!(parse_exact(&lines).unwrap().valid);
        let misread = lines[0].replace("D2314589O", "D23145890");
        let z = parse_lines(&owned(&[&misread, lines[1], lines[2]])).unwrap();
        assert!(z.valid, "{z:?}");
        assert!(z.repaired);
        assert_eq!(z.fields.document_number, "D2314589O");
        // A leading O read as 0, in a number padded with fillers.
        let lines = [
            "IDMAR0J54572<<4<<<<<<<<<<<<<<<",
            "7505043F3104046MAR<<<<<<<<<<<2",
            "SEKKAT<<HAMZA<<<<<<<<<<<<<<<<<",
        ];
        let z = parse_lines(&owned(&lines)).unwrap();
        assert!(z.valid, "{z:?}");
        assert!(z.repaired);
        assert_eq!(z.fields.document_number, "OJ54572");
    }

    #[test]
    fn lost_and_doubled_fillers_are_brought_to_the_format_width() {
        let short = TD1[0].replacen("<<<", "<", 1);
        let long = TD1[2].replacen("<<<", "<<<<<", 1);
        let z = parse_lines(&owned(&[&short, TD1[1], &long])).unwrap();
        assert!(z.valid);
        assert_eq!(z.lines, owned(&TD1));
    }

    #[test]
    fn a_digit_in_a_letters_only_cell_is_the_letter_it_looks_like() {
        let td3 = owned(&["P<UTOER1KSSON<<ANNA<MAR1A<<<<<<<<<<<<<<<<<<<", TD3[1]]);
        let z = parse_lines(&td3).unwrap();
        assert_eq!(z.fields.surname, "ERIKSSON");
        assert_eq!(z.fields.given_names, "ANNA MARIA");
        let td1 = owned(&[TD1[0], TD1[1], "ER1KSS0N<<ANNA<MAR1A<<<<<<<<<<"]);
        let z = parse_lines(&td1).unwrap();
        assert_eq!(z.fields.surname, "ERIKSSON");
        // The numeric cells are untouched: their digits are data.
        assert_eq!(z.lines[1], TD1[1]);
        // A 4 for the A of a nationality.
        let td1 = owned(&[TD1[0], &TD1[1].replace("UTO", "UT0"), TD1[2]]);
        assert_eq!(parse_lines(&td1).unwrap().fields.nationality, "UTO");
        let td3 = owned(&[TD3[0], &TD3[1].replace("9UTO7", "9UT07")]);
        assert_eq!(parse_lines(&td3).unwrap().fields.nationality, "UTO");
    }

    #[test]
    fn a_lone_character_among_fillers_or_a_one_letter_surname_is_not_a_valid_zone() {
        // `A` weighs 0 like `<`: every digit still agrees.
        let smudged = TD1[0].replacen("<<<<<<<<<<", "<<<<A<<<<<", 1);
        let z = parse_exact(&[&smudged, TD1[1], TD1[2]]).unwrap();
        assert_eq!(z.checks.failed(), vec!["layout"]);
        assert!(!z.valid);
        let z = parse_exact(&[TD1[0], TD1[1], "J<<<<<<<<<<<<<<<<<<<<<<<<<<<<<"]).unwrap();
        assert_eq!(z.checks.composite, Some(true));
        assert!(!z.valid, "a one-letter surname");
        // Content followed by fillers is what optional data looks like.
        let content = TD1[0].replacen("<<<<<<<<<<", "AB12<<<<<<", 1);
        let z = parse_exact(&[&content, TD1[1], TD1[2]]).unwrap();
        assert_eq!(z.checks.layout, Some(true));
        // Right after the nationality, in the second line's optional data.
        let smudged = TD1[1].replacen("UTO<<", "UTO<A", 1);
        let z = parse_exact(&[TD1[0], &smudged, TD1[2]]).unwrap();
        assert_eq!(z.checks.failed(), vec!["layout"]);
    }

    #[test]
    fn swaps_the_digit_confirms_equally_are_chosen_by_the_issuers_number_format() {
        // `GO382601` read `G0382601`: the check digit accepts `GO382601` and `G03826Q1`
        // alike; a CNIE number is one or two letters then digits.
        let read = owned(&[
            "IDMARG0382601<8<<<<<<<<<<<<<<<",
            "5903081M3112205MAR<<<<<<<<<<<0",
            "MOUSSAOUI<<YOUSSEF<<<<<<<<<<<<",
        ]);
        let z = parse_lines(&read).unwrap();
        assert!(z.valid && z.repaired);
        assert_eq!(z.fields.document_number, "GO382601");
        // Another issuer's number stays ambiguous, and the zone invalid.
        let elsewhere: Vec<String> = read.iter().map(|l| l.replace("MAR", "UTO")).collect();
        let z = parse_lines(&elsewhere).unwrap();
        assert!(!z.valid, "{:?}", z.lines);
        assert!(issuer_prints("MAR", "BK123456<"));
        assert!(!issuer_prints("MAR", "03300393"));
        assert!(!issuer_prints("MAR", "ABC12345"));
    }

    #[test]
    fn what_follows_the_names_is_filler() {
        let td1 = owned(&[TD1[0], TD1[1], "ERIKSSON<<ANNA<MARIA<<<<<<<XK<"]);
        let z = parse_lines(&td1).unwrap();
        assert_eq!(z.fields.given_names, "ANNA MARIA");
        assert_eq!(z.lines[2], TD1[2]);
    }

    #[test]
    fn the_zone_is_found_among_other_text() {
        let lines = owned(&["UTOPIA", "PASSPORT PASSEPORT", TD3[0], TD3[1], "<<<<<<<<"]);
        let z = parse_lines(&lines).unwrap();
        assert_eq!(z.format, MrzFormat::Td3);
        assert!(z.valid);
        assert!(!z.repaired);
        assert!(parse_lines(&owned(&["NOTHING HERE", "AT ALL"])).is_none());
    }

    #[test]
    fn expiry_counts_the_grace_days() {
        let z = parse_exact(&TD3).unwrap(); // expires 2012-04-15
        let day = |year, month, day| Day { year, month, day };
        assert_eq!(z.expired_on(day(2012, 4, 15), 0), Some(false));
        assert_eq!(z.expired_on(day(2012, 4, 16), 0), Some(true));
        assert_eq!(z.expired_on(day(2012, 5, 15), 30), Some(false));
        assert_eq!(z.expired_on(day(2012, 5, 16), 30), Some(true));
        assert_eq!(day(1970, 1, 1).ordinal(), 0);
        assert_eq!(day(2000, 3, 1).ordinal() - day(2000, 2, 28).ordinal(), 2);
        assert_eq!(Day::parse("2012-13-01"), None);
        for d in [
            day(2024, 2, 29),
            day(1999, 12, 31),
            day(2000, 1, 1),
            day(1970, 1, 1),
        ] {
            assert_eq!(Day::from_ordinal(d.ordinal()), d);
        }
    }
}
