//! Selfie videos through `faceid-video` and the engine's sequence rules, on the shared clips
//! and on clips derived from them the way phones and browsers record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use faceid_core::{ErrorCode, Image};
use faceid_e2e::{DerivedVideo, derived_video, engine, ffmpeg_first_frame, shared_eval};
use faceid_video::{Clip, SamplingPlan, VideoError, decode_file};

fn clip(path: &std::path::Path) -> Clip {
    decode_file(path, &SamplingPlan::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn images(clip: &Clip) -> Vec<Image> {
    clip.frames
        .iter()
        .map(|f| {
            Image::from_rgb(f.image.width(), f.image.height(), f.image.as_raw().clone()).unwrap()
        })
        .collect()
}

#[test]
fn shared_clips_decode_with_their_codec_size_and_length() {
    let Some(eval) = shared_eval("shared_clips_decode_with_their_codec_size_and_length") else {
        return;
    };
    // From ../shared/eval/README.md, section D.
    let expected = [
        ("video/live/apfol_real2.webm", "vp8", (640, 480), 11.7),
        ("video/spoof/apfol_fake2.webm", "vp8", (640, 480), 15.3),
        ("video/live/lestari15_real.mp4", "h264", (1080, 720), 3.8),
        ("video/spoof/lestari15_fake.mp4", "h264", (1080, 720), 2.6),
    ];
    for (file, codec, (w, h), seconds) in expected {
        let clip = clip(&eval.join(file));
        println!(
            "{file}: {} frames, {:.2} s, {}",
            clip.frames.len(),
            clip.duration_secs,
            clip.codec
        );
        assert_eq!(clip.codec, codec, "{file}");
        assert_eq!(clip.rotation_degrees, 0, "{file}");
        assert_eq!(
            clip.frames.len(),
            8,
            "{file}: eight frames spread over the clip"
        );
        assert_eq!(clip.frames[0].image.dimensions(), (w, h), "{file}");
        assert!(
            (clip.duration_secs - seconds).abs() < 0.1,
            "{file}: {}",
            clip.duration_secs
        );
        let times: Vec<f64> = clip.frames.iter().map(|f| f.at_secs).collect();
        assert!(times.windows(2).all(|t| t[1] > t[0]), "{file}: {times:?}");
        let last = *times.last().unwrap();
        assert!(
            last > seconds.min(10.0) * 0.6,
            "{file}: frames spread, last at {last}"
        );
    }
}

#[test]
fn fragmented_mp4_and_vp9_webm_decode() {
    let (Some(fragmented), Some(vp9)) = (
        derived_video(DerivedVideo::Fragmented),
        derived_video(DerivedVideo::Vp9),
    ) else {
        return;
    };
    let clip_f = clip(&fragmented);
    assert_eq!(clip_f.codec, "h264");
    assert_eq!(clip_f.frames.len(), 8);
    assert!(
        (clip_f.duration_secs - 3.8).abs() < 0.1,
        "{}",
        clip_f.duration_secs
    );
    let clip_v = clip(&vp9);
    assert_eq!(clip_v.codec, "vp9");
    assert_eq!(clip_v.frames[0].image.dimensions(), (480, 320));
    assert!((clip_v.duration_secs - 3.0).abs() < 0.1);
    let faces = engine().faces(&images(&clip_v)[0]).unwrap();
    assert_eq!(faces.len(), 1, "the subject is found in the VP9 frame");
}

#[test]
fn rotation_metadata_is_applied_like_ffmpegs_player() {
    let Some(rotated) = derived_video(DerivedVideo::Rotated) else {
        return;
    };
    let clip = clip(&rotated);
    // Stored 360x540 (turned), shown 540x360 (upright).
    assert_eq!(clip.rotation_degrees, 270);
    let ours = &clip.frames[0].image;
    let theirs = ffmpeg_first_frame(&rotated);
    assert_eq!(ours.dimensions(), theirs.dimensions());
    let diff: f64 = ours
        .as_raw()
        .iter()
        .zip(theirs.as_raw())
        .map(|(a, b)| f64::from(a.abs_diff(*b)))
        .sum::<f64>()
        / ours.as_raw().len() as f64;
    assert!(diff < 6.0, "mean absolute difference {diff:.2}");
    // Upright: the face's eyes lie above its mouth.
    let face = &engine().faces(&images(&clip)[0]).unwrap()[0];
    let [le, re, _, lm, rm] = face.landmarks.five();
    assert!(
        le.y.max(re.y) < lm.y.min(rm.y),
        "eyes above mouth: {:?}",
        face.landmarks.five()
    );
}

#[test]
fn clips_without_usable_video_get_their_own_errors() {
    let (Some(audio), Some(empty)) = (
        derived_video(DerivedVideo::AudioOnly),
        derived_video(DerivedVideo::NoFrames),
    ) else {
        return;
    };
    let plan = SamplingPlan::default();
    match decode_file(&audio, &plan) {
        Err(VideoError::Unsupported(why)) => assert!(why.contains("no video stream"), "{why}"),
        other => panic!("audio-only: {other:?}"),
    }
    assert!(matches!(
        decode_file(&empty, &plan),
        Err(VideoError::NoFrames)
    ));
    let bytes = std::fs::read(&empty).unwrap();
    assert!(faceid_video::looks_like_video(&bytes));
    assert!(matches!(
        faceid_video::decode(&bytes, &plan),
        Err(VideoError::NoFrames)
    ));
}

#[test]
fn short_clip_is_refused_by_the_engine_rule() {
    let Some(short) = derived_video(DerivedVideo::Short) else {
        return;
    };
    let clip = clip(&short);
    assert!(clip.duration_secs < 2.0, "{}", clip.duration_secs);
    let err = engine()
        .analyze_sequence(&images(&clip), Some(clip.duration_secs))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::VideoTooShort);
    // The same frames as stills (no duration) are analysed.
    assert!(engine().analyze_sequence(&images(&clip), None).is_ok());
}

#[test]
fn sequences_accumulate_liveness_and_match_the_same_person() {
    let Some(eval) = shared_eval("sequences_accumulate_liveness_and_match_the_same_person") else {
        return;
    };
    let run = |file: &str| {
        let clip = clip(&eval.join(file));
        let seq = engine()
            .analyze_sequence(&images(&clip), Some(clip.duration_secs))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        println!(
            "{file}: {}/{} frames with a face, liveness p={:.3} score={:.2}, best frame {} quality {:.2}",
            seq.frames_with_face,
            seq.frames,
            seq.liveness.probability,
            seq.liveness.score,
            seq.best_frame,
            seq.best.quality.overall
        );
        seq
    };
    let lestari_live = run("video/live/lestari15_real.mp4");
    let lestari_replay = run("video/spoof/lestari15_fake.mp4");
    let apfol_live = run("video/live/apfol_real2.webm");
    let apfol_replay = run("video/spoof/apfol_fake2.webm");
    for seq in [&lestari_live, &apfol_live] {
        assert_eq!(seq.frames_with_face, seq.frames);
        assert_eq!(seq.liveness.frames, seq.frames_with_face);
    }
    let e = engine();
    let same = e
        .verify(&lestari_live.best.template, &lestari_replay.best.template)
        .unwrap();
    let other = e
        .verify(&lestari_live.best.template, &apfol_live.best.template)
        .unwrap();
    println!("lestari live vs replay: {same:?}\nlestari vs apfol: {other:?}");
    assert!(same.accepted, "same person in both lestari clips");
    assert!(!other.accepted, "different people");
    // The fused liveness rule at REGULAR: both live webcam clips pass (the passive network
    // alone refused them), both phone replays are refused on strong passive evidence.
    let regular = faceid_core::LivenessPreset::Regular;
    for (name, seq) in [("lestari live", &lestari_live), ("apfol live", &apfol_live)] {
        let judged = seq.liveness.judge(regular);
        assert!(judged.live, "{name}: {judged:?} {:?}", seq.liveness);
        assert!(
            seq.liveness.probability < regular.threshold(),
            "{name}: the network alone refused it"
        );
    }
    // apfol turns its head: the geometry took part and found depth.
    assert!(apfol_live.liveness.judge(regular).geometry);
    for (name, seq) in [
        ("lestari replay", &lestari_replay),
        ("apfol replay", &apfol_replay),
    ] {
        let judged = seq.liveness.judge(regular);
        assert_eq!(
            judged.failure,
            Some(faceid_core::LivenessFailure::SpoofSuspected),
            "{name}: {:?}",
            seq.liveness
        );
    }
}

#[test]
fn frame_stream_plays_every_frame_in_order_upright() {
    let (Some(rotated), Some(vp9)) = (
        derived_video(DerivedVideo::Rotated),
        derived_video(DerivedVideo::Vp9),
    ) else {
        return;
    };
    for (path, size) in [(rotated, (540, 360)), (vp9, (480, 320))] {
        let mut stream = faceid_video::FrameStream::open(&path, 4096 * 2304).unwrap();
        let mut times = Vec::new();
        while let Some(frame) = stream.next_frame() {
            assert_eq!(frame.image.dimensions(), size, "{}", path.display());
            times.push(frame.at_secs);
        }
        // 3 s of a 30 fps source.
        assert!(
            (85..=95).contains(&times.len()),
            "{}: {} frames",
            path.display(),
            times.len()
        );
        assert!(times.windows(2).all(|t| t[1] > t[0]));
        assert!(stream.next_frame().is_none(), "stays at the end");
    }
}
