//! End-to-end tests of the engine with the real models on the fetched sample photos.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use faceid_core::geometry::BoundingBox;
use faceid_core::sampling::crop_resized;
use faceid_core::{ErrorCode, Image, LivenessAccumulator, Rotation, Template};
use faceid_e2e::{engine, sample, sample_bytes, shared_eval};

fn template_near(image: &Image, x_range: std::ops::Range<f32>) -> Template {
    let e = engine();
    let face = e
        .faces(image)
        .unwrap()
        .into_iter()
        .find(|f| x_range.contains(&f.bbox.center().x))
        .expect("a face in the expected place");
    e.embed(&e.align(image, &face).unwrap()).unwrap()
}

#[test]
fn counts_faces_in_the_group_photos() {
    let expected = [(1, 3), (2, 3), (3, 3), (4, 4), (5, 5), (6, 4)];
    for (n, count) in expected {
        let faces = engine().faces(&sample(n)).unwrap();
        assert_eq!(faces.len(), count, "sample{n}.jpg");
        // Largest first.
        assert!(
            faces
                .windows(2)
                .all(|w| w[0].bbox.area() >= w[1].bbox.area()),
            "sample{n}.jpg order"
        );
        for f in &faces {
            assert!(f.score >= 0.6 && f.landmarks.inter_eye_distance() > 20.0);
        }
    }
}

#[test]
fn the_same_person_in_two_photos_matches() {
    let e = engine();
    // The woman on the right of sample1 is in the middle of sample3.
    let a = template_near(&sample(1), 1400.0..1750.0);
    let b = template_near(&sample(3), 1050.0..1300.0);
    let decision = e.verify(&a, &b).unwrap();
    assert!(decision.accepted, "{decision:?}");
    assert!(decision.comparison.score > 0.8, "{decision:?}");
}

#[test]
fn different_people_in_one_photo_do_not_match() {
    let e = engine();
    let mut compared = 0;
    for n in 1..=6 {
        let image = sample(n);
        let templates: Vec<Template> = e
            .faces(&image)
            .unwrap()
            .iter()
            .map(|f| e.embed(&e.align(&image, f).unwrap()).unwrap())
            .collect();
        for i in 0..templates.len() {
            for j in i + 1..templates.len() {
                let decision = e.verify(&templates[i], &templates[j]).unwrap();
                assert!(
                    !decision.accepted,
                    "sample{n} faces {i} and {j}: {decision:?}"
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 3 + 3 + 3 + 6 + 10 + 6);
}

#[test]
fn a_photo_with_several_people_is_refused_for_enrollment() {
    let err = engine().single_face(&sample(1)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::MultipleFaces);
    assert!(matches!(
        engine().analyze(&sample(4)).unwrap_err().code(),
        ErrorCode::MultipleFaces
    ));
}

/// A synthetic identity card: a light card with text bars and a portrait cut from a photo.
fn card_with_portrait(photo: &Image, portrait: BoundingBox) -> Image {
    let (w, h) = (900u32, 570u32);
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 3) as usize;
            let bar = x > 360 && (y / 30) % 2 == 1 && x < 820 && y > 90 && y < 480;
            let v = if bar { 60 } else { 225 };
            rgb[i..i + 3].copy_from_slice(&[v, v, (v as f32 * 0.95) as u8]);
        }
    }
    let face = crop_resized(photo, portrait, 260, 330).unwrap();
    for y in 0..330 {
        for x in 0..260 {
            let i = (((y + 120) * w + x + 60) * 3) as usize;
            rgb[i..i + 3].copy_from_slice(&face.pixel(x as i64, y as i64));
        }
    }
    Image::from_rgb(w, h, rgb).unwrap()
}

#[test]
fn a_rotated_card_yields_its_portrait() {
    let e = engine();
    let photo = sample(1);
    let face = e
        .faces(&photo)
        .unwrap()
        .into_iter()
        .find(|f| f.bbox.center().x > 1400.0)
        .unwrap();
    let c = face.bbox.center();
    let side = face.bbox.width() * 1.6;
    let portrait = BoundingBox::new(
        c.x - side / 2.0,
        c.y - side * 0.6,
        c.x + side / 2.0,
        c.y + side * 0.67,
    );
    let card = card_with_portrait(&photo, portrait);
    let reference = e.embed(&e.align(&photo, &face).unwrap()).unwrap();
    // Turned a quarter clockwise, the card needs a quarter counter-clockwise to be upright.
    for (turn, undo) in [
        (Rotation::None, Rotation::None),
        (Rotation::Cw90, Rotation::Cw270),
        (Rotation::Cw180, Rotation::Cw180),
        (Rotation::Cw270, Rotation::Cw90),
    ] {
        let (found, template) = e.card_template(&card.rotated(turn)).unwrap();
        assert_eq!(found.rotation, undo, "card turned {turn:?}");
        let decision = e.verify(&template, &reference).unwrap();
        assert!(decision.accepted, "card turned {turn:?}: {decision:?}");
    }
}

#[test]
fn a_blank_document_has_no_portrait() {
    let blank = Image::from_rgb(400, 250, vec![200; 400 * 250 * 3]).unwrap();
    assert_eq!(
        engine().card_portrait(&blank).unwrap_err().code(),
        ErrorCode::NoPortrait
    );
    assert_eq!(
        engine().single_face(&blank).unwrap_err().code(),
        ErrorCode::NoFace
    );
}

#[test]
fn a_face_that_fills_the_frame_is_found_by_padding() {
    let e = engine();
    let photo = sample(3);
    let face = e.faces(&photo).unwrap().remove(0);
    // An aligned 112x112 crop, as face datasets ship them.
    let aligned = e.align(&photo, &face).unwrap();
    let found = e.faces(aligned.image()).unwrap();
    assert_eq!(found.len(), 1);
    let again = e
        .embed(&e.align(aligned.image(), &found[0]).unwrap())
        .unwrap();
    let original = e.embed(&aligned).unwrap();
    assert!(e.verify(&again, &original).unwrap().accepted);
}

#[test]
fn truncated_and_oversized_inputs_have_their_codes() {
    let e = engine();
    let bytes = sample_bytes(2);
    assert_eq!(
        e.decode(&bytes[..bytes.len() / 3]).unwrap_err().code(),
        ErrorCode::CorruptImage
    );
    assert_eq!(e.decode(&[]).unwrap_err().code(), ErrorCode::EmptyInput);
    assert_eq!(
        e.decode(b"%PDF-1.4 not an image").unwrap_err().code(),
        ErrorCode::UnsupportedFormat
    );
    // A PNG header declaring 20000x20000: refused from the header, nothing allocated.
    let png = faceid_e2e::png_header_only(20_000, 20_000);
    let err = e.decode(&png).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ImageTooLarge, "{err}");
    let oversized = vec![0xFFu8; e.config().max_image_bytes + 1];
    assert_eq!(
        e.decode(&oversized).unwrap_err().code(),
        ErrorCode::InputTooLarge
    );
}

#[test]
fn analysis_measures_a_live_frontal_face() {
    let e = engine();
    // The right-hand woman of sample1, cut out as a kiosk frame would show her.
    let frame = faceid_e2e::kiosk_frame_image(1, 1400.0..1750.0);
    let analysis = e.analyze(&frame).unwrap();
    assert!(
        analysis.liveness.probability > 0.5,
        "{:?}",
        analysis.liveness
    );
    let q = &analysis.quality;
    assert!(
        q.inter_eye_px.passed && q.left_eye_open.passed && q.right_eye_open.passed,
        "{q:?}"
    );
    assert!(q.yaw_deg.value.abs() < 45.0 && (0.0..=1.0).contains(&q.exposure.value));
    let mut acc = LivenessAccumulator::new();
    for _ in 0..3 {
        acc.add(e.liveness(&frame, &analysis.face).unwrap());
    }
    assert_eq!(acc.result().unwrap().frames, 3);
    let attributes = e.attributes(&frame, &analysis.face).unwrap();
    assert!((1.0..100.0).contains(&attributes.age_years));
}

#[test]
fn templates_survive_serialisation_and_identify_the_right_subject() {
    let e = engine();
    let a = template_near(&sample(1), 1400.0..1750.0);
    let b = template_near(&sample(3), 1050.0..1300.0);
    let back = Template::from_bytes(&a.to_bytes()).unwrap();
    assert_eq!(back, a);
    let others: Vec<(String, Template)> = e
        .faces(&sample(2))
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (
                format!("other-{i}"),
                e.embed(&e.align(&sample(2), f).unwrap()).unwrap(),
            )
        })
        .chain([("her".to_string(), back)])
        .collect();
    let found = e
        .identify(&b, others.iter().map(|(id, t)| (id, t)), others.len())
        .unwrap();
    assert!(
        matches!(found, faceid_core::Identification::Match { ref subject, .. } if subject == "her"),
        "{found:?}"
    );
    let stranger = template_near(&sample(5), 0.0..2000.0);
    let gallery: Vec<(String, Template)> =
        others.into_iter().filter(|(id, _)| id != "her").collect();
    let none = e
        .identify(
            &stranger,
            gallery.iter().map(|(id, t)| (id, t)),
            gallery.len(),
        )
        .unwrap();
    assert!(
        matches!(none, faceid_core::Identification::NoMatch { .. }),
        "{none:?}"
    );
}

#[test]
fn shared_eval_id_cards_all_yield_a_portrait() {
    let Some(root) = shared_eval("shared_eval_id_cards_all_yield_a_portrait") else {
        return;
    };
    let mut cards: Vec<_> = std::fs::read_dir(root.join("idcards/synthetic"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("_card."))
        .collect();
    cards.sort();
    assert_eq!(cards.len(), 60);
    for card in cards {
        let image = engine().decode(&std::fs::read(&card).unwrap()).unwrap();
        assert!(engine().card_portrait(&image).is_ok(), "{}", card.display());
    }
}
