//! Prints the long text lines the document reader sees on an image, in reading order, with
//! their confidence, then the zone parsed from them: the first thing to look at when a
//! document's MRZ is not read.
//!
//! `cargo run --release -p faceid-core --example zone_lines -- IMAGE...` (with
//! `ZONE_LINES_BOXES=1`, every box the text detector found too)

use faceid_core::document::DocumentReader;
use faceid_core::models::{ModelSource, default_dir};
use faceid_core::{DecodeLimits, image};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let source = ModelSource::new(default_dir(), 2)?;
    let reader = DocumentReader::load(&source)?;
    let detector = faceid_core::document::text::TextDetector::load(&source)?;
    let boxes = std::env::var_os("ZONE_LINES_BOXES").is_some();
    for path in std::env::args().skip(1) {
        let image = image::decode(&std::fs::read(&path)?, DecodeLimits::default())?;
        println!("== {path}");
        if boxes {
            // ZONE_LINES_BOXES=1: every box the detector found.
            for b in detector.detect(&image)? {
                println!(
                    "  box at ({:.0},{:.0}) axis ({:.2},{:.2}) {:.0}x{:.0} score {:.2}",
                    b.center.x, b.center.y, b.axis.x, b.axis.y, b.length, b.thickness, b.score
                );
            }
        }
        let grow = std::env::var("ZONE_LINES_GROW")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let lines = reader.zone_lines(&image, grow)?;
        for l in &lines {
            println!(
                "  {:.3} {:>4.0}x{:<3.0} {}",
                l.confidence, l.region.length, l.region.thickness, l.text
            );
            // The characters read with less than 0.9 probability.
            let unsure: Vec<String> = l
                .text
                .chars()
                .zip(&l.probabilities)
                .enumerate()
                .filter(|(_, (_, p))| **p < 0.9)
                .map(|(i, (c, p))| format!("{i}:{c}={p:.2}"))
                .collect();
            if !unsure.is_empty() {
                println!("        unsure: {}", unsure.join(" "));
            }
        }
        let texts: Vec<String> = lines.into_iter().map(|l| l.text).collect();
        match faceid_core::document::mrz::parse_lines(&texts) {
            Some(z) => println!("  -> {:?} valid={} {:?}", z.format, z.valid, z.lines),
            None => println!("  -> no zone"),
        }
    }
    Ok(())
}
