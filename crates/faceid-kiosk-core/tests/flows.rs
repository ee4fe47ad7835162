//! The kiosk's flows on the real engine, a real (temporary) gallery and the file/video camera
//! sources, without a window: what the Tauri shell shows is `Kiosk::screen`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use faceid_core::Step;
use faceid_e2e::document::Cnie;
use faceid_e2e::person::{Answer, Follower, Oval, Person, Print};
use faceid_kiosk_core::camera::{self, CameraSpec};
use faceid_kiosk_core::flow::{
    CardHint, FlowKind, Kiosk, KioskOptions, Outcome, Prefill, Refusal, Screen,
};
use faceid_kiosk_core::guidance::Guidance;

struct Setup {
    kiosk: Kiosk,
    _dir: tempfile::TempDir,
    seq: u64,
    now: Instant,
}

/// The challenges of these tests: the steps the clip's person performs with a clear margin,
/// its real left turn (30 degrees) and its blink. Its right turn is the left one mirrored and
/// reaches 12 degrees from its neutral pose; its look-up and an approach show little depth
/// (see BENCHMARKS.md, "Kiosk challenge").
fn challenge() -> faceid_core::ChallengeConfig {
    faceid_core::ChallengeConfig {
        allowed: vec![Step::TurnLeft, Step::Blink],
        ..faceid_core::ChallengeConfig::default()
    }
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let key = faceid_gallery::GalleryKey::generate();
    let gallery = Arc::new(faceid_gallery::Gallery::open(&dir.path().join("g"), &key).unwrap());
    let engine = Arc::new(
        faceid_core::Engine::load(
            &faceid_core::models::default_dir(),
            faceid_core::EngineConfig::default(),
        )
        .unwrap(),
    );
    let options = KioskOptions {
        kiosk_id: "kiosk-test".into(),
        preset: faceid_core::LivenessPreset::Regular,
        retain_images: true,
        inactivity: Duration::from_secs(60),
        challenge: challenge(),
        demo: false,
    };
    Setup {
        kiosk: Kiosk::new(engine, gallery, options),
        _dir: dir,
        seq: 0,
        now: Instant::now(),
    }
}

/// Analysed frames are this far apart (the kiosk analyses 6-7 frames a second).
const FRAME_MS: u64 = 150;

impl Setup {
    /// Feeds frames of `spec` until the screen is no longer a capture screen (at most 90).
    fn run_camera(&mut self, spec: &str) -> Vec<Screen> {
        let mut source = camera::open(&CameraSpec::parse(spec).unwrap()).unwrap();
        let mut seen = Vec::new();
        for _ in 0..90 {
            let frame = Arc::new(source.next_frame().unwrap().image);
            self.seq += 1;
            self.now += Duration::from_millis(100);
            self.kiosk.on_frame(self.seq, &frame, self.now);
            seen.push(self.kiosk.screen().clone());
            if !self.kiosk.wants_frames() {
                break;
            }
        }
        seen
    }

    /// Shows the kiosk what `show` renders for each screen (the person in front of the
    /// camera reacting to it) until it leaves the capture screens or `frames` were shown.
    fn run(&mut self, frames: usize, show: impl FnMut(&Screen) -> image::RgbImage) -> Vec<Screen> {
        self.run_until(frames, |_| false, show)
    }

    /// [`Setup::run`], stopping early at the first screen `until` accepts.
    fn run_until(
        &mut self,
        frames: usize,
        until: impl Fn(&Screen) -> bool,
        mut show: impl FnMut(&Screen) -> image::RgbImage,
    ) -> Vec<Screen> {
        let mut seen = Vec::new();
        for _ in 0..frames {
            let frame = Arc::new(show(self.kiosk.screen()));
            self.seq += 1;
            self.now += Duration::from_millis(FRAME_MS);
            self.kiosk.on_frame(self.seq, &frame, self.now);
            seen.push(self.kiosk.screen().clone());
            if !self.kiosk.wants_frames() || until(self.kiosk.screen()) {
                break;
            }
        }
        seen
    }

    /// A person who answers the prompts so, until a result (at most `frames` frames).
    fn person_for(&mut self, person: &Person, answer: Answer, frames: usize) -> Vec<Screen> {
        let mut follower = Follower::new(answer);
        self.run(frames, |screen| {
            let (oval, step) = prompt(screen);
            person.frame(
                follower.shot(step.as_ref().map(|(s, n)| (s.as_str(), *n))),
                oval,
            )
        })
    }

    /// A person who answers the prompts so, until a result (at most 200 frames).
    fn person(&mut self, person: &Person, answer: Answer) -> Vec<Screen> {
        self.person_for(person, answer, 200)
    }

    fn outcome(&self) -> Outcome {
        match self.kiosk.screen() {
            Screen::Result { outcome } => outcome.clone(),
            other => panic!("not a result screen: {other:?}"),
        }
    }
}

/// The oval and the step a selfie screen shows.
fn prompt(screen: &Screen) -> (Oval, Option<(String, u8)>) {
    match screen {
        Screen::Selfie { oval, step, .. } => (
            (oval.cx, oval.cy, oval.width, oval.height),
            step.map(|p| (p.step.name().to_string(), p.number)),
        ),
        _ => ((500, 500, 330, 560), None),
    }
}

#[test]
fn a_person_following_the_prompts_enrolls_verifies_and_is_identified() {
    let Some(eval) = faceid_e2e::shared_eval(
        "a_person_following_the_prompts_enrolls_verifies_and_is_identified",
    ) else {
        return;
    };
    let person = Person::apfol(&eval);
    let card = Person::card(&eval);
    let mut s = setup();

    // Enroll: the card's front (portrait), its back (no zone on this older card: the
    // person says so), the oval, the challenge, details, stored.
    s.kiosk.start(FlowKind::Enroll, s.now);
    assert_eq!(
        s.kiosk.screen(),
        &Screen::CardScan {
            hint: CardHint::PlaceCard
        }
    );
    assert!(
        s.kiosk.offer_card(&card, s.now),
        "the card's portrait is found"
    );
    assert_eq!(
        s.kiosk.screen(),
        &Screen::CardScan {
            hint: CardHint::TurnCard
        }
    );
    assert!(
        !s.kiosk.offer_card_back(&card, s.now),
        "no zone on this card: the kiosk waits for the back"
    );
    s.kiosk.skip_card_back(s.now);
    let seen = s.person(&person, Answer::Follow);
    let steps: Vec<(Step, u8)> = seen
        .iter()
        .filter_map(|screen| match screen {
            Screen::Selfie { step: Some(p), .. } => Some((p.step, p.number)),
            _ => None,
        })
        .collect();
    assert!(
        seen.iter().any(|screen| matches!(
            screen,
            Screen::Selfie {
                step: None,
                progress: 0,
                ..
            }
        )),
        "the oval comes first"
    );
    assert!(steps.iter().any(|(_, n)| *n == 1) && steps.iter().any(|(_, n)| *n == 2));
    assert!(
        seen.iter().any(|screen| matches!(
            screen,
            Screen::Selfie { step: Some(p), .. } if p.percent > 0
        )),
        "live progress on a step"
    );
    assert_eq!(
        s.kiosk.screen(),
        &Screen::Details {
            error: None,
            prefill: None
        },
        "{:?}",
        seen.last()
    );
    s.kiosk.confirm_details("", "x", s.now);
    assert_eq!(
        s.kiosk.screen(),
        &Screen::Details {
            error: Some(Refusal::InvalidId),
            prefill: None
        }
    );
    s.kiosk.confirm_details("s01", "Person One", s.now);
    assert_eq!(
        s.outcome(),
        Outcome::Enrolled {
            name: "Person One".into()
        }
    );
    let subject = s.kiosk.gallery().subject("s01").unwrap().unwrap();
    assert_eq!(subject.template_tags.len(), 2, "selfie and card templates");
    assert_eq!(subject.source.as_deref(), Some("kiosk-test"));
    assert_eq!(
        subject.document_tag, None,
        "a card without a zone names no document"
    );
    assert!(
        s.kiosk.gallery().image("s01").unwrap().is_some(),
        "retained, encrypted"
    );

    // Verify and identify, each with a new challenge.
    s.kiosk.start(FlowKind::Verify, s.now);
    s.kiosk.claim("s01", s.now);
    s.person(&person, Answer::Follow);
    assert_eq!(
        s.outcome(),
        Outcome::Verified {
            name: "Person One".into()
        }
    );
    s.kiosk.start(FlowKind::Identify, s.now);
    s.person(&person, Answer::Follow);
    assert_eq!(
        s.outcome(),
        Outcome::Identified {
            name: "Person One".into()
        }
    );

    // The wrong steps: refused, and a new oval and challenge are shown. A wrong movement
    // the kiosk sees fails at once (WRONG_ORDER); one too small to count (this clip's
    // look-up is at the threshold) leaves the step to time out: a retry either way.
    s.kiosk.start(FlowKind::Verify, s.now);
    s.kiosk.claim("s01", s.now);
    let mut follower = Follower::new(Answer::Wrong);
    let seen = s.run_until(
        120,
        |screen| matches!(screen, Screen::Selfie { retry: true, .. }),
        |screen| {
            let (oval, step) = prompt(screen);
            person.frame(
                follower.shot(step.as_ref().map(|(s, n)| (s.as_str(), *n))),
                oval,
            )
        },
    );
    let retried = seen.iter().position(|screen| {
        matches!(
            screen,
            Screen::Selfie {
                retry: true,
                step: None,
                ..
            }
        )
    });
    assert!(
        retried.is_some(),
        "a new challenge after the wrong step: {:?}",
        seen.last()
    );
    // ... and the person, now following, is verified.
    s.person(&person, Answer::Follow);
    assert_eq!(
        s.outcome(),
        Outcome::Verified {
            name: "Person One".into()
        }
    );

    // Five wrong challenges in three minutes lock the identity: the staff fallback.
    s.kiosk.start(FlowKind::Verify, s.now);
    s.kiosk.claim("s01", s.now);
    // (Up to five timed-out steps of 8 s each.)
    s.person_for(&person, Answer::Wrong, 500);
    assert_eq!(s.outcome(), Outcome::Locked);

    // Every attempt is in the audit log, chained.
    let audit = s.kiosk.gallery().audit().unwrap();
    let outcomes: Vec<&str> = audit
        .iter()
        .filter(|e| e.action == "verify")
        .map(|e| e.outcome.as_str())
        .collect();
    assert!(outcomes.contains(&"accepted"), "{outcomes:?}");
    let failed = |o: &&&str| matches!(**o, "rejected:WRONG_ORDER" | "rejected:TIMEOUT");
    assert!(outcomes.iter().filter(failed).count() >= 5, "{outcomes:?}");
    assert!(s.kiosk.gallery().verify_audit().unwrap().valid);
}

#[test]
fn another_person_and_a_turned_print_are_refused() {
    let Some(eval) = faceid_e2e::shared_eval("another_person_and_a_turned_print_are_refused")
    else {
        return;
    };
    let synthetic = eval.join("idcards/synthetic");
    let card = image::open(synthetic.join("celeba_07207_card.jpg"))
        .unwrap()
        .to_rgb8();
    let person = Person::apfol(&eval);
    let mut s = setup();

    // The card's holder is someone else: the challenge passes, the match does not.
    s.kiosk.start(FlowKind::Enroll, s.now);
    assert!(s.kiosk.offer_card(&card, s.now));
    s.kiosk.skip_card_back(s.now);
    s.person(&person, Answer::Follow);
    assert_eq!(
        s.outcome(),
        Outcome::Refused {
            reason: Refusal::CardMismatch
        }
    );

    // A print moved into the oval and turned for each step: never accepted. A plane must
    // turn far before the pose network sees a turn, so the step times out (a new challenge),
    // or the turn is seen and the geometry calls the face flat.
    let print = Print::nuaa(&eval);
    s.kiosk.start(FlowKind::Identify, s.now);
    let mut follower = Follower::new(Answer::Follow);
    let seen = s.run(160, |screen| {
        let (oval, step) = prompt(screen);
        print.frame(
            follower
                .shot(step.as_ref().map(|(s, n)| (s.as_str(), *n)))
                .act,
            oval,
        )
    });
    let retried = seen
        .iter()
        .any(|screen| matches!(screen, Screen::Selfie { retry: true, .. }));
    let refused = matches!(
        s.kiosk.screen(),
        Screen::Result {
            outcome: Outcome::Refused {
                reason: Refusal::NotLive
            }
        }
    );
    println!(
        "print: retried {retried}, last screen {:?}",
        s.kiosk.screen()
    );
    assert!(retried || refused, "{:?}", s.kiosk.screen());
    let audit = s.kiosk.gallery().audit().unwrap();
    assert!(
        audit
            .iter()
            .filter(|e| e.action == "identify")
            .all(|e| e.outcome.starts_with("rejected:")),
        "{audit:?}"
    );
}

#[test]
fn two_people_in_frame_are_refused_and_screens_time_out() {
    let mut s = setup();
    s.kiosk.start(FlowKind::Identify, s.now);
    let two_faces = format!("file:{}", faceid_e2e::sample_path(1).display());
    let seen = s.run_camera(&two_faces);
    assert_eq!(
        s.outcome(),
        Outcome::Refused {
            reason: Refusal::OnePerson
        }
    );
    // The sequence rule: one frame with two sizeable faces refuses the attempt.
    assert_eq!(seen.len(), 1);
    assert_eq!(
        Guidance::for_error(faceid_core::ErrorCode::MultipleFaces),
        Guidance::OnePerson
    );

    // The result returns to the start by itself; so does an abandoned screen.
    s.kiosk.tick(s.now + Duration::from_secs(3));
    assert!(matches!(s.kiosk.screen(), Screen::Result { .. }));
    s.kiosk.tick(s.now + Duration::from_secs(9));
    assert_eq!(s.kiosk.screen(), &Screen::Start);
    s.kiosk.start(FlowKind::Verify, s.now);
    s.kiosk.tick(s.now + Duration::from_secs(59));
    assert_eq!(s.kiosk.screen(), &Screen::Claim);
    s.kiosk.tick(s.now + Duration::from_secs(61));
    assert_eq!(s.kiosk.screen(), &Screen::Start);
}

#[test]
fn capture_loop_previews_at_the_source_rate_and_keeps_only_the_newest_frame() {
    let Some(clip) = faceid_e2e::derived_video(faceid_e2e::DerivedVideo::Vp9) else {
        return;
    };
    let spec = CameraSpec::parse(&format!("video:{}", clip.display())).unwrap();
    let previews = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = previews.clone();
    let capture = faceid_kiosk_core::capture::Capture::start(
        Box::new(move || camera::open(&spec)),
        Box::new(move |image| {
            let jpeg = faceid_kiosk_core::capture::preview_jpeg(image, 640, 80);
            assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }),
    );
    std::thread::sleep(Duration::from_millis(2500));
    let rate = capture.frame_rate();
    let (seq, newest) = capture.newest().unwrap();
    println!(
        "video source: {rate:.1} frames/s, {seq} frames, newest {:?}",
        newest.dimensions()
    );
    assert!(
        (24.0..=33.0).contains(&rate),
        "the clip's 30 fps, paced: {rate}"
    );
    assert_eq!(newest.dimensions(), (480, 320));
    assert!(matches!(
        capture.state(),
        faceid_kiosk_core::capture::CameraState::Running(_)
    ));
    let shown = previews.load(std::sync::atomic::Ordering::Relaxed) as u64;
    assert!(shown + 2 >= seq, "every frame previewed: {shown} of {seq}");
}

#[test]
fn a_missing_camera_is_reported_and_retried() {
    let spec = CameraSpec::parse("file:/nonexistent/faceid/camera").unwrap();
    let capture = faceid_kiosk_core::capture::Capture::start(
        Box::new(move || camera::open(&spec)),
        Box::new(|_| {}),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(matches!(
        capture.state(),
        faceid_kiosk_core::capture::CameraState::NoCamera(_)
    ));
    assert!(capture.newest().is_none());
}

#[test]
fn demo_mode_runs_the_challenge_and_enrolls_nobody() {
    let Some(eval) = faceid_e2e::shared_eval("demo_mode_runs_the_challenge_and_enrolls_nobody")
    else {
        return;
    };
    let person = Person::apfol(&eval);
    let mut s = setup();
    let demo = KioskOptions {
        kiosk_id: "kiosk-demo".into(),
        preset: faceid_core::LivenessPreset::Regular,
        retain_images: false,
        inactivity: Duration::from_secs(60),
        challenge: challenge(),
        demo: true,
    };
    s.kiosk.set_options(demo);
    s.kiosk.start(FlowKind::Enroll, s.now);
    assert!(s.kiosk.offer_card(&Person::card(&eval), s.now));
    s.kiosk.skip_card_back(s.now);
    let seen = s.person(&person, Answer::Follow);
    assert!(
        seen.iter()
            .any(|screen| matches!(screen, Screen::Selfie { step: Some(_), .. })),
        "the demo shows the challenge's prompts"
    );
    assert_eq!(
        s.outcome(),
        Outcome::Refused {
            reason: Refusal::DemoMode
        }
    );
    assert!(s.kiosk.gallery().is_empty(), "nothing stored in demo mode");
}

#[test]
fn the_card_back_fills_the_details_and_expired_forged_or_enrolled_cards_are_refused() {
    let Some(eval) = faceid_e2e::shared_eval(
        "the_card_back_fills_the_details_and_expired_forged_or_enrolled_cards_are_refused",
    ) else {
        return;
    };
    let person = Person::apfol(&eval);
    let portrait = Person::portrait(&eval);
    let mut s = setup();
    let enroll_front = |s: &mut Setup, card: &Cnie| {
        s.kiosk.start(FlowKind::Enroll, s.now);
        assert!(s.kiosk.offer_card(&card.front, s.now), "portrait found");
        assert_eq!(
            s.kiosk.screen(),
            &Screen::CardScan {
                hint: CardHint::TurnCard
            }
        );
    };

    // An expired card: refused at its back, before any selfie, and audited.
    let expired = Cnie::new(&portrait, 2019, 11);
    enroll_front(&mut s, &expired);
    assert!(s.kiosk.offer_card_back(&expired.back, s.now));
    assert_eq!(
        s.outcome(),
        Outcome::Refused {
            reason: Refusal::DocumentExpired
        }
    );

    // A passport page: the zone beside its portrait is read with it, no back is asked for.
    // The ICAO specimen expired in 2012: refused as expired.
    let page = image::open(eval.join("idcards/specimen/PassportEye__passport-td3.jpg"))
        .unwrap()
        .to_rgb8();
    s.kiosk.start(FlowKind::Enroll, s.now);
    assert!(s.kiosk.offer_card(&page, s.now), "portrait found");
    assert_eq!(
        s.outcome(),
        Outcome::Refused {
            reason: Refusal::DocumentExpired
        }
    );

    // A zone whose check digits do not agree (one digit of the number changed after the
    // check digit was computed): refused, audited.
    let valid = Cnie::new(&portrait, 2031, 12);
    let mut forged_lines = valid.fields.td1();
    let digit = forged_lines[0]
        .char_indices()
        .skip(5)
        .find(|(_, c)| c.is_ascii_digit());
    let (at, c) = digit.unwrap();
    let other = char::from(b'0' + (c as u8 - b'0' + 1) % 10);
    forged_lines[0].replace_range(at..=at, &other.to_string());
    let forged_back = {
        use faceid_e2e::document::{Capture, Fonts, capture, render_back_with};
        let mut rng = fastrand::Rng::with_seed(13);
        let back = render_back_with(&Fonts::load(), &valid.fields, &forged_lines, &mut rng);
        image::load_from_memory(&capture(&back, Capture::Scan, 0, &mut rng))
            .unwrap()
            .to_rgb8()
    };
    enroll_front(&mut s, &valid);
    assert!(s.kiosk.offer_card_back(&forged_back, s.now));
    assert_eq!(
        s.outcome(),
        Outcome::Refused {
            reason: Refusal::DocumentInvalid
        }
    );

    // A valid card, its back shown to the camera: the details are read from its zone.
    enroll_front(&mut s, &valid);
    let back = Arc::new(valid.back.clone());
    let seen = s.run_until(
        20,
        |screen| matches!(screen, Screen::Selfie { .. }),
        |_| (*back).clone(),
    );
    assert!(
        matches!(s.kiosk.screen(), Screen::Selfie { .. }),
        "the back is read from camera frames: {seen:?}"
    );
    s.person(&person, Answer::Follow);
    let prefill = Prefill {
        id: valid.fields.number.clone(),
        name: format!("{} {}", valid.fields.given_names, valid.fields.surname),
        mismatch: vec![], // the front's number and names agree with the back
    };
    assert_eq!(
        s.kiosk.screen(),
        &Screen::Details {
            error: None,
            prefill: Some(prefill.clone())
        }
    );
    s.kiosk.confirm_details(&prefill.id, &prefill.name, s.now);
    assert_eq!(
        s.outcome(),
        Outcome::Enrolled {
            name: prefill.name.clone()
        }
    );
    let subject = s.kiosk.gallery().subject(&prefill.id).unwrap().unwrap();
    assert!(subject.document_tag.is_some(), "enrolled with its document");
    assert_eq!(
        subject.document_number, None,
        "the number is not kept in clear"
    );

    // The same card for someone else (another id): refused as already enrolled.
    enroll_front(&mut s, &valid);
    assert!(s.kiosk.offer_card_back(&valid.back, s.now));
    s.person(&person, Answer::Follow);
    assert!(matches!(s.kiosk.screen(), Screen::Details { .. }));
    s.kiosk
        .confirm_details("someone-else", "Someone Else", s.now);
    assert_eq!(
        s.outcome(),
        Outcome::Refused {
            reason: Refusal::DuplicateDocument
        }
    );
    assert!(s.kiosk.gallery().subject("someone-else").unwrap().is_none());

    // The front of one card with the back of another: the back's zone is admitted, the
    // disagreement is shown on the details screen (not resolved) and audited.
    let other = Cnie::new(&portrait, 2032, 15);
    assert_ne!(other.fields.number, valid.fields.number);
    enroll_front(&mut s, &valid);
    assert!(s.kiosk.offer_card_back(&other.back, s.now));
    s.person(&person, Answer::Follow);
    let Screen::Details {
        prefill: Some(mismatched),
        ..
    } = s.kiosk.screen().clone()
    else {
        panic!("details expected: {:?}", s.kiosk.screen());
    };
    assert_eq!(mismatched.id, other.fields.number, "the zone's number");
    assert!(
        mismatched.mismatch.contains(&"number"),
        "{:?}",
        mismatched.mismatch
    );
    s.kiosk.cancel(s.now);

    // Every refusal of a document is audited.
    let audit = s.kiosk.gallery().audit().unwrap();
    let outcomes: Vec<&str> = audit
        .iter()
        .filter(|e| e.action == "enroll")
        .map(|e| e.outcome.as_str())
        .collect();
    for code in ["DOCUMENT_EXPIRED", "MRZ_CHECK_FAILED", "DUPLICATE_DOCUMENT"] {
        assert!(
            outcomes.contains(&format!("rejected:{code}").as_str()),
            "{code}: {outcomes:?}"
        );
    }
    let mismatches: Vec<&str> = audit
        .iter()
        .filter(|e| e.action == "card_front")
        .map(|e| e.outcome.as_str())
        .collect();
    assert_eq!(
        mismatches.len(),
        1,
        "only the mismatched card: {mismatches:?}"
    );
    assert!(
        mismatches[0].starts_with("mismatch:number"),
        "{mismatches:?}"
    );
}
