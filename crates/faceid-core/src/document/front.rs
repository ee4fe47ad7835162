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
        self.number != Some(false) && self.surname && self.given_names
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
        let named = zone
            .map(|z| z.fields.document_number.as_str())
            .filter(|n| printed.iter().any(|l| l.contains(n)));
        let number = named.map(str::to_string).or_else(|| {
            words
                .iter()
                .find(|w| card_number_shaped(w))
                .map(|w| (*w).to_string())
        });
        let matches_zone = zone.map(|z| {
            let on_front = |name: &str| {
                let name = compact(name);
                !name.is_empty() && printed.iter().any(|l| l.contains(&name))
            };
            FrontCheck {
                number: number.as_ref().map(|n| *n == z.fields.document_number),
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
/// CNIE's `BK123456`).
fn card_number_shaped(word: &str) -> bool {
    let letters = word.chars().take_while(char::is_ascii_uppercase).count();
    let digits = word.len() - letters;
    (1..=3).contains(&letters)
        && (4..=8).contains(&digits)
        && word[letters..].chars().all(|c| c.is_ascii_digit())
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
        assert!(!check.consistent());
        // Another name.
        let mut other = lines(&zone.fields.document_number);
        other[2] = "Bennani".into();
        other[4] = "FatimaZahra".into(); // OCR dropped the space: still found
        let check = CardFront::from_lines(other, Some(&zone))
            .matches_zone
            .expect("compared");
        assert!(!check.surname && check.given_names && !check.consistent());
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
                && !card_number_shaped("MAROC")
                && !card_number_shaped("2031")
        );
    }
}
