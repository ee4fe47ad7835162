//! The machine-readable zone of synthetic TD1 cards (issue 15): 200 CNIE-style backs with
//! random valid fields, rendered in OCR-B, captured as flatbed scans and as phone photos, in
//! all four quarter turns.
//!
//! Issue 15 asks for 97 % read exactly and no zone ever reported valid with a wrong field;
//! both are asserted. Measured here (BENCHMARKS.md): 97.5 % exact, none valid but wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use faceid_core::MachineZone;
use faceid_e2e::document::{Capture, CardFields, Fonts, capture, render_back};

/// Cards rendered by the acceptance test (`FACEID_SYNTHETIC_CARDS` overrides, for a quick
/// run; `FACEID_SYNTHETIC_DUMP=DIR` writes the cards read wrongly there).
const CARDS: usize = 200;

fn expected(fields: &CardFields) -> MachineZone {
    let lines = fields.td1();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    faceid_core::document::mrz::parse_exact(&lines).expect("the composed zone parses")
}

#[test]
fn synthetic_td1_cards_are_read_exactly_in_every_capture_and_rotation() {
    let cards = std::env::var("FACEID_SYNTHETIC_CARDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CARDS);
    let engine = faceid_e2e::engine();
    let fonts = Fonts::load();
    let mut rng = fastrand::Rng::with_seed(15);
    // (capture, quarter turns) -> (cards, exact, valid but wrong)
    let mut table: BTreeMap<(String, u32), (usize, usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for i in 0..cards {
        let fields = CardFields::random(&mut rng, 2027 + (i as u32 % 10));
        let truth = expected(&fields);
        assert!(truth.valid, "composed zone {:?} must be valid", truth.lines);
        let how = if i % 2 == 0 {
            Capture::Scan
        } else {
            Capture::Photo
        };
        let turns = (i as u32 / 2) % 4;
        let card = render_back(&fonts, &fields, &mut rng);
        let bytes = capture(&card, how, turns, &mut rng);
        let image = engine.decode(&bytes).unwrap();
        let read = engine.read_zone(&image).unwrap();
        let exact = read
            .as_ref()
            .is_some_and(|z| z.valid && z.format == truth.format && z.fields == truth.fields);
        let wrong_but_valid = read.as_ref().is_some_and(|z| z.valid) && !exact;
        let row = table.entry((format!("{how:?}"), turns * 90)).or_default();
        row.0 += 1;
        row.1 += usize::from(exact);
        row.2 += usize::from(wrong_but_valid);
        if !exact {
            if let Ok(dir) = std::env::var("FACEID_SYNTHETIC_DUMP") {
                std::fs::write(format!("{dir}/card{i}.jpg"), &bytes).unwrap();
            }
            failures.push(format!(
                "card {i} ({how:?}, {}°): expected {:?}, read {:?}",
                turns * 90,
                truth.lines,
                read.map(|z| (z.valid, z.lines))
            ));
        }
    }
    println!("synthetic TD1 cards: capture, rotation, cards, read exactly, valid but wrong");
    for ((how, degrees), (n, exact, wrong)) in &table {
        println!("  {how:<6} {degrees:>3}°  {n:>4} {exact:>4} {wrong:>4}");
    }
    let exact: usize = table.values().map(|r| r.1).sum();
    let wrong: usize = table.values().map(|r| r.2).sum();
    println!(
        "  all          {cards:>4} {exact:>4} {wrong:>4}  ({:.1} % exact)",
        100.0 * exact as f64 / cards as f64
    );
    for f in &failures {
        println!("  {f}");
    }
    assert_eq!(wrong, 0, "zones reported valid with a wrong field");
    assert!(
        exact as f64 >= 0.97 * cards as f64,
        "{exact} of {cards} cards read exactly"
    );
}

/// Both sides of a synthetic CNIE on one scanned page: the front's Latin text is read, its
/// number and names agree with the zone; a front printed with another number is reported as
/// such (not resolved).
#[test]
fn the_front_of_a_card_is_read_and_checked_against_its_zone() {
    let Some(eval) =
        faceid_e2e::shared_eval("the_front_of_a_card_is_read_and_checked_against_its_zone")
    else {
        return;
    };
    let engine = faceid_e2e::engine();
    let fonts = Fonts::load();
    let selfie = eval.join("idcards/synthetic/celeba_07207_selfie.jpg");
    let portrait = image::open(selfie).unwrap().to_rgb8();
    let mut rng = fastrand::Rng::with_seed(77);
    let fields = CardFields::random(&mut rng, 2031);
    let back = render_back(&fonts, &fields, &mut rng);
    let read = |front_fields: &CardFields, rng: &mut fastrand::Rng| {
        let front = faceid_e2e::document::render_front(&fonts, front_fields, &portrait, rng);
        let page = engine
            .decode(&faceid_e2e::document::both_sides(&front, &back))
            .unwrap();
        let zone = engine.read_zone(&page).unwrap();
        assert!(zone.as_ref().is_some_and(|z| z.valid), "{zone:?}");
        let portrait = engine.card_portrait(&page).unwrap();
        engine.read_front(&portrait, zone.as_ref()).unwrap()
    };
    let front = read(&fields, &mut rng);
    println!("front: {front:?}");
    assert_eq!(front.number.as_deref(), Some(fields.number.as_str()));
    let check = front.matches_zone.unwrap();
    assert!(check.consistent(), "{check:?}");

    let mut forged = fields.clone();
    forged.number = format!("{}9", &fields.number[..fields.number.len() - 1]);
    if forged.number == fields.number {
        forged.number = format!("{}8", &fields.number[..fields.number.len() - 1]);
    }
    let front = read(&forged, &mut rng);
    println!("forged front: {front:?}");
    assert_eq!(front.number.as_deref(), Some(forged.number.as_str()));
    let check = front.matches_zone.unwrap();
    assert_eq!(check.number, Some(false));
    assert!(!check.consistent());
}
