//! The kiosk's flows on the real engine, a real (temporary) gallery and the file/video camera
//! sources, without a window: what the Tauri shell shows is `Kiosk::screen`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use faceid_kiosk_core::camera::{self, CameraSpec};
use faceid_kiosk_core::flow::{FlowKind, Kiosk, KioskOptions, Outcome, Refusal, Screen};
use faceid_kiosk_core::guidance::Guidance;

struct Setup {
    kiosk: Kiosk,
    _dir: tempfile::TempDir,
    seq: u64,
    now: Instant,
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
    };
    Setup {
        kiosk: Kiosk::new(engine, gallery, options),
        _dir: dir,
        seq: 0,
        now: Instant::now(),
    }
}

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

    fn outcome(&self) -> Outcome {
        match self.kiosk.screen() {
            Screen::Result { outcome } => outcome.clone(),
            other => panic!("not a result screen: {other:?}"),
        }
    }
}

fn video(path: &std::path::Path) -> String {
    format!("video:{}", faceid_e2e::still_video(path, 3.0).display())
}

#[test]
fn enroll_from_card_then_verify_identify_and_refuse() {
    let Some(eval) = faceid_e2e::shared_eval("enroll_from_card_then_verify_identify_and_refuse")
    else {
        return;
    };
    let synthetic = eval.join("idcards/synthetic");
    let card = image::open(synthetic.join("celeba_07207_card.jpg"))
        .unwrap()
        .to_rgb8();
    let holder = video(&synthetic.join("celeba_07207_selfie.jpg"));
    let other = video(&synthetic.join("celeba_07462_selfie.jpg"));
    let mut s = setup();

    // Enroll: card, selfie with guidance, details, stored.
    s.kiosk.start(FlowKind::Enroll, s.now);
    assert!(matches!(s.kiosk.screen(), Screen::CardScan { .. }));
    assert!(s.kiosk.offer_card(&card, s.now));
    let seen = s.run_camera(&holder);
    assert!(seen.iter().any(|screen| matches!(
        screen,
        Screen::Selfie { guidance: Guidance::Good, progress, .. } if *progress > 0
    )));
    assert_eq!(s.kiosk.screen(), &Screen::Details { error: None });
    s.kiosk.confirm_details("", "x", s.now);
    assert_eq!(
        s.kiosk.screen(),
        &Screen::Details {
            error: Some(Refusal::InvalidId)
        }
    );
    s.kiosk.confirm_details("brahim", "Brahim A.", s.now);
    assert_eq!(
        s.outcome(),
        Outcome::Enrolled {
            name: "Brahim A.".into()
        }
    );
    let subject = s.kiosk.gallery().subject("brahim").unwrap().unwrap();
    assert_eq!(subject.template_tags.len(), 2, "selfie and card templates");
    assert_eq!(subject.source.as_deref(), Some("kiosk-test"));
    assert!(
        s.kiosk.gallery().image("brahim").unwrap().is_some(),
        "retained, encrypted"
    );

    // Verify the holder; refuse the other person.
    s.kiosk.start(FlowKind::Verify, s.now);
    s.kiosk.claim("brahim", s.now);
    s.run_camera(&holder);
    assert_eq!(
        s.outcome(),
        Outcome::Verified {
            name: "Brahim A.".into()
        }
    );
    s.kiosk.start(FlowKind::Verify, s.now);
    s.kiosk.claim("brahim", s.now);
    s.run_camera(&other);
    assert_eq!(s.outcome(), Outcome::NotVerified);

    // Identify.
    s.kiosk.start(FlowKind::Identify, s.now);
    s.run_camera(&holder);
    assert_eq!(
        s.outcome(),
        Outcome::Identified {
            name: "Brahim A.".into()
        }
    );
    s.kiosk.start(FlowKind::Identify, s.now);
    s.run_camera(&other);
    assert_eq!(s.outcome(), Outcome::NotRecognised);

    // A card selfie by someone else is refused at enrollment.
    s.kiosk.start(FlowKind::Enroll, s.now);
    assert!(s.kiosk.offer_card(&card, s.now));
    s.run_camera(&other);
    assert_eq!(
        s.outcome(),
        Outcome::Refused {
            reason: Refusal::CardMismatch
        }
    );

    // Five failed verifications of one identity lock it.
    for _ in 0..4 {
        s.kiosk.start(FlowKind::Verify, s.now);
        s.kiosk.claim("brahim", s.now);
        s.run_camera(&other);
        assert_eq!(s.outcome(), Outcome::NotVerified);
    }
    s.kiosk.start(FlowKind::Verify, s.now);
    s.kiosk.claim("brahim", s.now);
    assert_eq!(s.outcome(), Outcome::Locked);

    // Every decision is in the audit log, chained.
    let audit = s.kiosk.gallery().audit().unwrap();
    assert!(audit.iter().filter(|e| e.action == "verify").count() >= 7);
    assert!(s.kiosk.gallery().verify_audit().unwrap().valid);
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
