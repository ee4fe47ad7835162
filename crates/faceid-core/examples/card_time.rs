//! Times reading identity documents in one process, models loaded once (what a server or
//! kiosk pays per card): the portrait and its template, the zone searched in every turn,
//! the zone beside the portrait (upright with it), the front's text.
//!
//! `cargo run --release -p faceid-core --example card_time -- IMAGE...`
use std::time::Instant;

use faceid_core::{DecodeLimits, Engine, EngineConfig, image, models::default_dir};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::load(&default_dir(), EngineConfig::default())?;
    for path in std::env::args().skip(1) {
        let img = image::decode(&std::fs::read(&path)?, DecodeLimits::default())?;
        // The first read opens the OCR networks: not counted.
        let _ = engine.read_zone(&img)?;
        let (mut portrait, mut zone, mut beside, mut front) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 {
            // What enrollment needs of a front: the portrait and its template.
            let t = Instant::now();
            let found = engine.card_template(&img).ok();
            portrait.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let z = engine.read_zone(&img)?;
            zone.push(t.elapsed().as_secs_f64());
            if let Some((p, _)) = &found {
                let t = Instant::now();
                engine.read_zone_beside(p)?;
                beside.push(t.elapsed().as_secs_f64());
                let t = Instant::now();
                engine.read_front(p, z.as_ref())?;
                front.push(t.elapsed().as_secs_f64());
            }
        }
        let shown = |v: &mut Vec<f64>| {
            if v.is_empty() {
                "-".to_string()
            } else {
                format!("{:.2} s", median(v))
            }
        };
        println!(
            "{path}: {}x{} portrait and template {:.2} s, zone {:.2} s, zone beside the portrait {}, front text {} (medians of 3)",
            img.width(),
            img.height(),
            median(&mut portrait),
            median(&mut zone),
            shown(&mut beside),
            shown(&mut front)
        );
    }
    Ok(())
}
