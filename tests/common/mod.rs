//! Shared helpers for the end-to-end tests: the engine loaded once per test binary from
//! the fetched models, the fetched sample photos, and the shared evaluation folder.
#![allow(clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use faceid_core::{Engine, EngineConfig, Image, models};

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
    );
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
