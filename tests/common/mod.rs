//! Shared helpers for the end-to-end tests: the engine loaded once per test binary from
//! the fetched models, the fetched sample photos, and the shared evaluation folder.
#![allow(clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use faceid_core::{Engine, EngineConfig, Image, models};

pub mod actor;
pub mod document;
pub mod person;
pub mod postgres;
pub mod server;
pub mod webdriver;
pub mod xvfb;

/// An HTTP client builder for the tests. The workspace's reqwest has rustls without a
/// built-in crypto provider (the sync client brings its own, ring): install ring as the
/// process default once, so plain clients build.
pub fn http_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// A plain HTTP client for the tests (see [`http_builder`]).
pub fn http() -> reqwest::Client {
    http_builder().build().expect("an HTTP client builds")
}

/// The engine, loaded once. Panics with the fetch command when the models are missing:
/// the README's test command fetches them first, so absence is a setup error, not a skip.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::load(&models::default_dir(), EngineConfig::default()).unwrap_or_else(|e| {
            panic!(
                "cannot load the engine ({e}); run `make setup` or `{}`",
                models::FETCH_COMMAND
            )
        })
    })
}

/// Path of a fetched sample photo (`sample1.jpg` ... `sample6.jpg`).
pub fn sample_path(n: u32) -> PathBuf {
    models::default_dir().join(format!("samples/sample{n}.jpg"))
}

/// Bytes of a fetched sample photo.
pub fn sample_bytes(n: u32) -> Vec<u8> {
    std::fs::read(sample_path(n))
        .unwrap_or_else(|e| panic!("sample{n}.jpg: {e}; run `{}`", models::FETCH_COMMAND))
}

/// A decoded sample photo.
pub fn sample(n: u32) -> Image {
    engine()
        .decode(&sample_bytes(n))
        .expect("sample photos decode")
}

/// The shared evaluation folder, or `None` after printing why the caller skips.
pub fn shared_eval(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/eval");
    if dir.join("faces/pairs.tsv").exists() {
        Some(dir)
    } else {
        println!(
            "SKIPPED {test}: ../shared/eval is absent on this machine (it holds the research-use evaluation set)"
        );
        None
    }
}

/// A 640x480 "kiosk frame" around the face of sample `n` whose centre lies in `x_range`
/// (3.2 face widths wide): one person in frame, as a kiosk camera sees them.
pub fn kiosk_frame_image(n: u32, x_range: std::ops::Range<f32>) -> Image {
    let photo = sample(n);
    let face = engine()
        .faces(&photo)
        .expect("faces")
        .into_iter()
        .find(|f| x_range.contains(&f.bbox.center().x))
        .unwrap_or_else(|| panic!("no face of sample{n} in {x_range:?}"));
    faceid_core::sampling::frame_around(&photo, face.bbox, 3.2, 640, 480)
        .expect("a kiosk frame around the face")
}

/// [`kiosk_frame_image`] encoded as JPEG (quality 90), as a webcam would send it.
pub fn kiosk_frame(n: u32, x_range: std::ops::Range<f32>) -> Vec<u8> {
    jpeg(&kiosk_frame_image(n, x_range))
}

/// A 640x480 JPEG of one person standing far away: the kiosk frame of sample `n` shrunk
/// `shrink` times and centred on a grey background (only that one face in view).
pub fn distant_frame(n: u32, x_range: std::ops::Range<f32>, shrink: u32) -> Vec<u8> {
    let near = kiosk_frame_image(n, x_range);
    let (w, h) = (640 / shrink.max(1), 480 / shrink.max(1));
    let small = faceid_core::sampling::crop_resized(
        &near,
        faceid_core::geometry::BoundingBox::new(0.0, 0.0, 640.0, 480.0),
        w,
        h,
    )
    .expect("the frame shrinks");
    let mut rgb = vec![128u8; 640 * 480 * 3];
    let (ox, oy) = ((640 - w) / 2, (480 - h) / 2);
    for y in 0..h {
        for x in 0..w {
            let i = (((y + oy) * 640 + x + ox) * 3) as usize;
            rgb[i..i + 3].copy_from_slice(&small.pixel(i64::from(x), i64::from(y)));
        }
    }
    jpeg(&Image::from_rgb(640, 480, rgb).expect("frame"))
}

/// JPEG (quality 90) of an image.
pub fn jpeg(frame: &Image) -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode(
            frame.rgb(),
            frame.width(),
            frame.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("encode");
    jpeg
}

/// A PNG that declares `width` x `height` in its header and carries no pixel data: decoding
/// it must be refused from the header alone.
pub fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&width.to_be_bytes());
    chunk.extend_from_slice(&height.to_be_bytes());
    chunk.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut crc = 0xFFFF_FFFFu32;
    for &b in &chunk {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                0xEDB8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
        }
    }
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13];
    png.extend_from_slice(&chunk);
    png.extend_from_slice(&(!crc).to_be_bytes());
    png
}

/// Clips derived from the shared selfie videos with the `ffmpeg` command (installed by
/// `make setup`) into a temporary folder, so the decoder meets what phones and browsers
/// record without copying the research-use data into the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerivedVideo {
    /// H.264 in fragmented MP4 (`frag_keyframe+empty_moov`), as streaming recorders write.
    Fragmented,
    /// Pixels stored turned a quarter clockwise with a display matrix that turns them back,
    /// as a phone held upright records.
    Rotated,
    /// VP9 in WebM (browser MediaRecorder).
    Vp9,
    /// The first second only: below the 2 s minimum.
    Short,
    /// An MP4 with a sound track and no video stream.
    AudioOnly,
    /// A fragmented MP4 cut after its header: a video stream with no frames.
    NoFrames,
}

/// Path of a derived clip, or `None` after printing why the caller skips (the clips cut
/// from the shared videos need `../shared/eval`; `AudioOnly` and `NoFrames` are synthetic).
pub fn derived_video(kind: DerivedVideo) -> Option<PathBuf> {
    let synthetic = matches!(kind, DerivedVideo::AudioOnly | DerivedVideo::NoFrames);
    let eval = if synthetic {
        None
    } else {
        Some(shared_eval(&format!("derived video {kind:?}"))?)
    };
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temporary folder"));
    let source = eval
        .map(|e| e.join("video/live/lestari15_real.mp4"))
        .unwrap_or_default();
    let out = |name: &str| dir.path().join(name);
    let ffmpeg = |args: &[&str]| {
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y"])
            .args(args)
            .status()
            .expect("the ffmpeg command (make setup installs it)");
        assert!(status.success(), "ffmpeg {args:?} failed");
    };
    let src = source.to_str().expect("utf-8 path");
    let path = match kind {
        DerivedVideo::Fragmented => out("fragmented.mp4"),
        DerivedVideo::Rotated => out("rotated.mp4"),
        DerivedVideo::Vp9 => out("vp9.webm"),
        DerivedVideo::Short => out("short.mp4"),
        DerivedVideo::AudioOnly => out("audio-only.mp4"),
        DerivedVideo::NoFrames => out("no-frames.mp4"),
    };
    if path.exists() {
        return Some(path);
    }
    let dst = path.to_str().expect("utf-8 path");
    match kind {
        DerivedVideo::Fragmented => ffmpeg(&[
            "-i",
            src,
            "-c",
            "copy",
            "-movflags",
            "frag_keyframe+empty_moov",
            dst,
        ]),
        DerivedVideo::Rotated => {
            let sideways = out("sideways.mp4");
            let sideways = sideways.to_str().expect("utf-8 path");
            ffmpeg(&[
                "-i",
                src,
                "-t",
                "3",
                "-vf",
                "transpose=1,scale=360:-2",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-an",
                sideways,
            ]);
            ffmpeg(&[
                "-i",
                sideways,
                "-c",
                "copy",
                "-metadata:s:v:0",
                "rotate=90",
                dst,
            ]);
        }
        DerivedVideo::Vp9 => ffmpeg(&[
            "-i",
            src,
            "-t",
            "3",
            "-vf",
            "scale=480:-2",
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "600k",
            "-an",
            dst,
        ]),
        DerivedVideo::Short => ffmpeg(&["-i", src, "-t", "1", "-c", "copy", dst]),
        DerivedVideo::AudioOnly => ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=8000:cl=mono",
            "-t",
            "3",
            "-c:a",
            "aac",
            dst,
        ]),
        DerivedVideo::NoFrames => {
            let full = out("testsrc-fragmented.mp4");
            let full_str = full.to_str().expect("utf-8 path");
            ffmpeg(&[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=15",
                "-t",
                "2",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-movflags",
                "frag_keyframe+empty_moov",
                full_str,
            ]);
            let bytes = std::fs::read(&full).expect("fragmented clip");
            let moof = bytes
                .windows(4)
                .position(|w| w == b"moof")
                .expect("a fragmented MP4 has a moof box");
            std::fs::write(&path, &bytes[..moof - 4]).expect("write clip");
        }
    }
    Some(path)
}

/// What FFmpeg's own player shows as the first frame of `path` (autorotation applied). The
/// frame is written to a temporary folder: `path` may be in the read-only shared set, which
/// must never gain files (the evaluation would count them).
pub fn ffmpeg_first_frame(path: &Path) -> image::RgbImage {
    let dir = tempfile::tempdir().expect("temporary folder");
    let png = dir.path().join("first.png");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(path)
        .args(["-frames:v", "1"])
        .arg(&png)
        .status()
        .expect("the ffmpeg command");
    assert!(status.success());
    image::open(&png).expect("ffmpeg's frame").to_rgb8()
}

/// A clip of `seconds` showing the still image `image` (H.264 in MP4, made with the `ffmpeg`
/// command into a temporary folder): a selfie video whose face is known.
pub fn still_video(image: &Path, seconds: f32) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    // Tests run in parallel threads: one makes a clip while the others wait, and the clip
    // appears under its name only once complete.
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temporary folder"));
    let stem = image
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("still");
    let out = dir.path().join(format!("{stem}-{seconds}s.mp4"));
    if !out.exists() {
        let partial = dir.path().join(format!("{stem}-{seconds}s.partial.mp4"));
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-loop", "1", "-framerate", "15", "-i"])
            .arg(image)
            .args([
                "-t",
                &seconds.to_string(),
                "-vf",
                "scale=trunc(iw/2)*2:trunc(ih/2)*2",
            ])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-crf",
                "18",
                "-pix_fmt",
                "yuv420p",
            ])
            .arg(&partial)
            .status()
            .expect("the ffmpeg command (make setup installs it)");
        assert!(
            status.success(),
            "ffmpeg could not make a clip of {}",
            image.display()
        );
        std::fs::rename(&partial, &out).expect("clip in place");
    }
    out
}

/// A clip of a person turning, made from real photos: `frames` image files shown in order,
/// four per second, each scaled up `scale` times (H.264 in MP4 with the `ffmpeg` command, in
/// a temporary folder that lives as long as the returned handle).
pub fn photo_clip(frames: &[PathBuf], scale: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary folder");
    for (i, file) in frames.iter().enumerate() {
        let rgb = image::open(file).expect("a photo").to_rgb8();
        let (w, h) = ((rgb.width() * scale) & !1, (rgb.height() * scale) & !1);
        image::imageops::resize(&rgb, w, h, image::imageops::FilterType::CatmullRom)
            .save(dir.path().join(format!("f{i:03}.png")))
            .expect("a frame");
    }
    let out = dir.path().join("clip.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-framerate", "4", "-i"])
        .arg(dir.path().join("f%03d.png"))
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-crf", "18"])
        .args(["-pix_fmt", "yuv420p"])
        .arg(&out)
        .status()
        .expect("the ffmpeg command (make setup installs it)");
    assert!(status.success(), "ffmpeg made no clip");
    (dir, out)
}
