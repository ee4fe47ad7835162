//! The front of an identity card: the Latin text printed on it, the card number among it,
//! and both checked against the machine-readable zone.
//!
//! Only Latin script is read: the OCR shipped (PP-OCRv4, Chinese and Latin) has no Arabic,
//! so the Arabic names of a CNIE are not read.
//!
//! A mismatch between the front and the zone is reported ([`FrontCheck`]), never resolved:
//! which side is wrong (a misread, a forged zone, a forged front) is for a person to decide.

use serde::Serialize;

use super::mrz::MachineZone;

/// What the front of a card says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardFront {
    /// The lines of Latin text read, top to bottom, upper case.
    pub lines: Vec<String>,
    /// The card number printed on the front: the zone's document number when it is printed
    /// there, else the first word shaped like a card number (one to three letters, then four
    /// to eight digits).
    pub number: Option<String>,
    /// The front against the machine-readable zone of the same document, when one is known.
    pub matches_zone: Option<FrontCheck>,
}

/// The front against the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FrontCheck {
    /// The number on the front is the zone's document number (`None`: no number was read on
    /// the front).
    pub number: Option<bool>,
    /// The zone's surname is printed on the front (its letters, spaces aside).
    pub surname: bool,
    /// Each of the zone's given names is printed on the front.
    pub given_names: bool,
}

impl FrontCheck {
    /// Whether nothing compared disagrees.
    pub fn consistent(&self) -> bool {
        self.disagreements().is_empty()
    }

    /// The fields on which the front disagrees with the zone, by name (`number`,
    /// `surname`, `given_names`), in that order: what a mismatch is reported as.
    pub fn disagreements(&self) -> Vec<&'static str> {
        [
            (self.number == Some(false), "number"),
            (!self.surname, "surname"),
            (!self.given_names, "given_names"),
        ]
        .into_iter()
        .filter_map(|(disagrees, field)| disagrees.then_some(field))
        .collect()
    }
}

impl CardFront {
    /// The front from its lines of text (upper-cased here), compared with `zone` when given.
    ///
    /// OCR often drops the spaces between printed words, so names and numbers are looked
    /// for in each line's run of letters and digits. A line that is the zone itself (a
    /// passport page shows both) is not counted as the front.
    pub fn from_lines(lines: Vec<String>, zone: Option<&MachineZone>) -> CardFront {
        let lines: Vec<String> = lines
            .into_iter()
            .map(|l| l.trim().to_uppercase())
            .filter(|l| !l.is_empty())
            .collect();
        let compact =
            |text: &str| -> String { text.chars().filter(char::is_ascii_alphanumeric).collect() };
        let zone_text: Vec<String> = zone
            .map(|z| z.lines.iter().map(|l| compact(l)).collect())
            .unwrap_or_default();
        let printed: Vec<String> = lines
            .iter()
            .map(|l| compact(l))
            .filter(|l| {
                // Most of a zone line, read as text: the zone, not the front.
                !zone_text
                    .iter()
                    .any(|z| l.len() * 10 >= z.len() * 7 && z.contains(l.as_str()))
            })
            .collect();
        let words: Vec<&str> = lines
            .iter()
            .flat_map(|l| l.split(|c: char| !c.is_ascii_alphanumeric()))
            .filter(|w| !w.is_empty())
            .collect();
        let named = zone.map(|z| z.fields.document_number.as_str()).filter(|n| {
            printed
                .iter()
                .any(|l| look_alike(l).contains(&look_alike(n)))
        });
        // A number with its letters first; one read all in digits only failing that.
        let shaped = |with_letters: bool| {
            words
                .iter()
                .filter(|w| w.starts_with(|c: char| c.is_ascii_uppercase()) == with_letters)
                .find(|w| card_number_shaped(w))
                .map(|w| (*w).to_string())
        };
        let number = named
            .map(str::to_string)
            .or_else(|| shaped(true))
            .or_else(|| shaped(false));
        let matches_zone = zone.map(|z| {
            let on_front = |name: &str| {
                let name = compact(name);
                !name.is_empty() && printed.iter().any(|l| l.contains(&name))
            };
            FrontCheck {
                number: number
                    .as_ref()
                    .map(|n| look_alike(n) == look_alike(&z.fields.document_number)),
                surname: on_front(&z.fields.surname),
                given_names: z.fields.given_names.trim().is_empty()
                    || z.fields.given_names.split(' ').all(on_front),
            }
        });
        CardFront {
            lines,
            number,
            matches_zone,
        }
    }
}

/// One to three letters then four to eight digits: how ID card numbers are printed (the
/// CNIE's `BK123456`); or six to nine digits, the letters having been read as the digits
/// they look like (`O26194` read `026194`). Dates, printed with separators, split into
/// shorter words.
fn card_number_shaped(word: &str) -> bool {
    let letters = word.chars().take_while(char::is_ascii_uppercase).count();
    let digits = word.len() - letters;
    let all_digits = word[letters..].chars().all(|c| c.is_ascii_digit());
    all_digits
        && match letters {
            0 => (6..=9).contains(&digits) && !date_shaped(word),
            1..=3 => (4..=8).contains(&digits),
            _ => false,
        }
}

/// Eight digits that read as a date, day first or year first (`26111977`, `19771126`): a
/// date whose separators OCR dropped, not a number.
fn date_shaped(word: &str) -> bool {
    let part = |range: std::ops::Range<usize>| word.get(range).and_then(|p| p.parse::<u32>().ok());
    let date = |day: Option<u32>, month: Option<u32>, year: Option<u32>| {
        matches!(
            (day, month, year),
            (Some(1..=31), Some(1..=12), Some(1900..=2099))
        )
    };
    word.len() == 8
        && (date(part(0..2), part(2..4), part(4..8)) || date(part(6..8), part(4..6), part(0..4)))
}

/// `text` with the letters OCR confuses with digits folded into them (O and Q to 0, I to 1,
/// Z to 2, S to 5, G to 6, B to 8): card numbers are compared this way, since a printed
/// `O` and `0` (the CNIE's fonts draw them alike) are one character to the reader.
fn look_alike(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'O' | 'Q' => '0',
            'I' => '1',
            'Z' => '2',
            'S' => '5',
            'G' => '6',
            'B' => '8',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> MachineZone {
        super::super::mrz::parse_exact(&[
            "IDMARBK12345675<<<<<<<<<<<<<<<",
            "8501019F3001019MAR<<<<<<<<<<<2",
            "EL<ALAMI<<FATIMA<ZAHRA<<<<<<<<",
        ])
        .expect("zone parses")
    }

    #[test]
    fn a_front_agreeing_with_its_zone_and_one_that_does_not() {
        let zone = zone();
        let lines = |number: &str| {
            vec![
                "Royaume du Maroc".to_string(),
                "Nom / Name".to_string(),
                "El Alami".to_string(),
                "Prenom / Given names".to_string(),
                "Fatima Zahra".to_string(),
                number.to_string(),
            ]
        };
        let front = CardFront::from_lines(lines(&zone.fields.document_number), Some(&zone));
        assert_eq!(
            front.number.as_deref(),
            Some(zone.fields.document_number.as_str())
        );
        let check = front.matches_zone.expect("compared");
        assert!(check.consistent(), "{check:?}");
        // Another number on the front: reported, not resolved.
        let front = CardFront::from_lines(lines("BK7654321"), Some(&zone));
        assert_eq!(front.number.as_deref(), Some("BK7654321"));
        let check = front.matches_zone.expect("compared");
        assert_eq!(check.number, Some(false));
        assert_eq!(check.disagreements(), ["number"]);
        // Another name.
        let mut other = lines(&zone.fields.document_number);
        other[2] = "Bennani".into();
        other[4] = "FatimaZahra".into(); // OCR dropped the space: still found
        let check = CardFront::from_lines(other, Some(&zone))
            .matches_zone
            .expect("compared");
        assert!(!check.surname && check.given_names && !check.consistent());
        assert_eq!(check.disagreements(), ["surname"]);
        // The zone read as text on a passport page is not the front.
        let page = vec![zone.lines[2].replace('<', "")];
        let check = CardFront::from_lines(page, Some(&zone))
            .matches_zone
            .expect("compared");
        assert!(!check.surname);
        // Without a zone nothing is compared.
        assert_eq!(CardFront::from_lines(lines("BK1"), None).matches_zone, None);
        assert!(
            card_number_shaped("BK123456")
                && card_number_shaped("026194")
                && !card_number_shaped("MAROC")
                && !card_number_shaped("2031")
                && !card_number_shaped("26111977")
                && !card_number_shaped("19771126")
        );
    }

    #[test]
    fn numbers_compare_up_to_the_letters_ocr_reads_as_digits() {
        let zone = zone(); // number BK1234567
        let front = |number: &str| {
            let lines = vec!["EL ALAMI".to_string(), "FATIMA ZAHRA".into(), number.into()];
            CardFront::from_lines(lines, Some(&zone))
        };
        // B read as 8: the zone's number, agreeing.
        let read = front("8K1234567");
        assert_eq!(read.number.as_deref(), Some("BK1234567"));
        assert_eq!(read.matches_zone.map(|c| c.consistent()), Some(true));
        // A number all in digits is compared; another one disagrees.
        let read = front("81234560");
        assert_eq!(read.number.as_deref(), Some("81234560"));
        assert_eq!(read.matches_zone.and_then(|c| c.number), Some(false));
        // A date whose dots were dropped is not taken for the number.
        let read = front("01011985");
        assert_eq!(read.number, None);
        assert_eq!(read.matches_zone.and_then(|c| c.number), None);
    }
}
