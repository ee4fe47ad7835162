//! Machine-readable zone figures for `faceid eval`: the specimens of `idcards/specimen`
//! against their hand transcription (`fixtures/specimen_mrz.tsv`), per format.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use faceid_core::Engine;
use faceid_core::document::mrz;
use serde::Serialize;

/// The hand transcription of every specimen zone, as printed.
pub const SPECIMEN_ZONES: &str = include_str!("../fixtures/specimen_mrz.tsv");

/// One transcribed document.
#[derive(Debug, Clone)]
pub struct Transcription {
    /// File name under `idcards/specimen`.
    pub file: String,
    /// The zone's lines as printed.
    pub lines: Vec<String>,
}

impl Transcription {
    /// Whether the printed zone is conformant: every character in the MRZ alphabet and every
    /// check digit agreeing. A specimen printed with wrong digits cannot be read as valid.
    pub fn conformant(&self) -> bool {
        let lines: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        mrz::parse_exact(&lines).is_some_and(|z| z.valid)
    }
}

/// Parses the transcription file (`file<TAB>line|line[|line]`, `#` comments).
pub fn transcriptions(text: &str) -> Vec<Transcription> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (file, zone) = l.split_once('\t')?;
            Some(Transcription {
                file: file.to_string(),
                lines: zone.split('|').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// Figures of one format (or of all documents).
#[derive(Debug, Default, Clone, Serialize)]
pub struct ZoneFigures {
    /// Transcribed documents of this format with a conformant zone.
    pub documents: usize,
    /// A zone was found.
    pub found: usize,
    /// Found and every check digit valid.
    pub valid: usize,
    /// Valid and every field equal to the transcription's.
    pub exact: usize,
    /// Reported valid with some field different from the transcription: the error that
    /// matters (names carry no check digit).
    pub valid_but_wrong: usize,
}

/// The zone section of the report.
#[derive(Debug, Serialize)]
pub struct ZoneReport {
    /// Per format (`TD1`, `TD2`, `TD3`, `MRV-A`, `MRV-B`).
    pub formats: BTreeMap<String, ZoneFigures>,
    /// All formats.
    pub all: ZoneFigures,
    /// Transcribed documents whose printed zone is not conformant (left out of the figures).
    pub nonconformant: Vec<String>,
    /// Per document: file, then what was read (`null` when nothing) and whether it was exact.
    pub documents: Vec<ZoneOutcome>,
}

/// What was read on one document.
#[derive(Debug, Serialize)]
pub struct ZoneOutcome {
    /// File name.
    pub file: String,
    /// Lines read (after confirmed repairs), `null` when no zone was found.
    pub read: Option<Vec<String>>,
    /// Every check digit valid.
    pub valid: bool,
    /// Every field equal to the transcription.
    pub exact: bool,
}

/// Reads every transcribed specimen under `root/idcards/specimen`. `None` when the folder is
/// absent.
pub fn evaluate(engine: &Engine, root: &Path) -> Result<Option<ZoneReport>> {
    let folder = root.join("idcards").join("specimen");
    if !folder.is_dir() {
        return Ok(None);
    }
    let mut report = ZoneReport {
        formats: BTreeMap::new(),
        all: ZoneFigures::default(),
        nonconformant: Vec::new(),
        documents: Vec::new(),
    };
    for t in transcriptions(SPECIMEN_ZONES) {
        let path = folder.join(&t.file);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let image = engine.decode(&bytes)?;
        let read = engine.read_zone(&image)?;
        let lines: Vec<&str> = t.lines.iter().map(String::as_str).collect();
        let truth = mrz::parse_exact(&lines).filter(|z| z.valid);
        let valid = read.as_ref().is_some_and(|z| z.valid);
        let exact = match (&read, &truth) {
            (Some(r), Some(t)) => valid && r.format == t.format && r.fields == t.fields,
            _ => false,
        };
        report.documents.push(ZoneOutcome {
            file: t.file.clone(),
            read: read.as_ref().map(|z| z.lines.clone()),
            valid,
            exact,
        });
        let Some(truth) = truth else {
            report.nonconformant.push(t.file.clone());
            continue;
        };
        let format = serde_json::to_value(truth.format)?
            .as_str()
            .unwrap_or("?")
            .to_string();
        for figures in [report.formats.entry(format).or_default(), &mut report.all] {
            figures.documents += 1;
            figures.found += usize::from(read.is_some());
            figures.valid += usize::from(valid);
            figures.exact += usize::from(exact);
            figures.valid_but_wrong += usize::from(valid && !exact);
        }
    }
    Ok(Some(report))
}

/// The text form of the section.
pub fn render(report: &ZoneReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let share = |n: usize, of: usize| {
        if of == 0 {
            "-".to_string()
        } else {
            format!("{:.1}%", 100.0 * n as f64 / of as f64)
        }
    };
    let _ = writeln!(
        out,
        "MRZ  specimens against their transcription ({} left out: printed zone not conformant: {})",
        report.nonconformant.len(),
        report.nonconformant.join(", ")
    );
    let _ = writeln!(
        out,
        "{:<8} {:>9} {:>8} {:>8} {:>8} {:>16}",
        "format", "documents", "found", "valid", "exact", "valid but wrong"
    );
    let rows = report
        .formats
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .chain(std::iter::once(("all", &report.all)));
    for (name, f) in rows {
        let _ = writeln!(
            out,
            "{:<8} {:>9} {:>8} {:>8} {:>8} {:>16}",
            name,
            f.documents,
            share(f.found, f.documents),
            share(f.valid, f.documents),
            share(f.exact, f.documents),
            f.valid_but_wrong
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transcription_has_its_format_width() {
        let all = transcriptions(SPECIMEN_ZONES);
        assert!(all.len() >= 30);
        for t in &all {
            let width = t.lines[0].chars().count();
            assert!(matches!(width, 30 | 36 | 44), "{}", t.file);
            assert!(
                t.lines.iter().all(|l| l.chars().count() == width),
                "{}",
                t.file
            );
            assert_eq!(t.lines.len(), if width == 30 { 3 } else { 2 }, "{}", t.file);
        }
        // Every specimen but the Spanish one (wrong digits, an Ñ) prints a conformant zone.
        let odd: Vec<&str> = all
            .iter()
            .filter(|t| !t.conformant())
            .map(|t| t.file.as_str())
            .collect();
        assert_eq!(odd, ["PassportEye__0_id-esp.png"]);
    }
}
