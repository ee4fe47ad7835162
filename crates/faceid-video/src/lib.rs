//! # faceid-video: selfie videos in, sampled upright frames out
//!
//! Phones and browsers record MP4/MOV with H.264 (often fragmented MP4) and WebM with VP8 or
//! VP9 (MediaRecorder). One decoder covers all of them: FFmpeg through `ffmpeg-next`, over
//! Debian's `libav*` libraries. The pure-Rust alternative (`openh264` + `re_mp4`) decodes H.264
//! only, so WebM would still need FFmpeg or libvpx: two decoders, two sets of bugs. FFmpeg
//! also reads the rotation a phone writes (display matrix or the old `rotate` tag), which this
//! crate applies so every frame comes out upright.
//!
//! The input is untrusted: the byte size is bounded by the caller, the frame size is checked
//! before any conversion, decoding stops after [`SamplingPlan::max_seconds`], and anything
//! FFmpeg cannot open as a video is [`VideoError::Unsupported`], never a panic.
//!
//! This crate only decodes. What the frames mean (liveness accumulated, best frame matched,
//! the 2-second minimum) is the engine's rule: `faceid_core::Engine::analyze_sequence`.
#![deny(missing_docs)]

use std::io::Write;
use std::path::Path;
use std::sync::Once;

use ffmpeg::format::Pixel;
use ffmpeg::media::Type;
use ffmpeg::software::scaling::{context::Context as Scaler, flag::Flags};
use ffmpeg::util::frame::video::Video as VideoFrame;
use ffmpeg_next as ffmpeg;
use image::RgbImage;

/// Why a video could not be turned into frames.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// Zero bytes.
    #[error("the video is empty")]
    Empty,
    /// Not a container/codec FFmpeg can decode, or no video stream in it.
    #[error("unsupported video format: {0}")]
    Unsupported(String),
    /// A readable container whose video stream yields no decodable frame.
    #[error("the video contains no decodable frames")]
    NoFrames,
    /// Frames larger than [`SamplingPlan::max_pixels`].
    #[error("video frames of {width}x{height} exceed the pixel limit")]
    TooLarge {
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
    },
    /// The temporary copy FFmpeg reads from could not be written.
    #[error("could not stage the video for decoding: {0}")]
    Io(#[from] std::io::Error),
}

/// How frames are picked from a clip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingPlan {
    /// At most this many frames are returned, spread evenly over the clip.
    pub max_frames: usize,
    /// Only the first `max_seconds` are decoded (bounds the work per request).
    pub max_seconds: f64,
    /// Largest accepted frame (width x height) before any conversion.
    pub max_pixels: u64,
    /// Decoder threads (frame threading); 1 decodes on the calling thread only.
    pub decode_threads: usize,
}

impl Default for SamplingPlan {
    fn default() -> Self {
        SamplingPlan {
            max_frames: 8,
            max_seconds: 10.0,
            max_pixels: 4096 * 2304,
            decode_threads: 2,
        }
    }
}

/// One sampled frame, upright.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Presentation time from the start of the clip, in seconds.
    pub at_secs: f64,
    /// The pixels, rotation already applied.
    pub image: RgbImage,
}

/// What was decoded from a clip.
#[derive(Debug, Clone)]
pub struct Clip {
    /// Sampled frames in presentation order (at least one).
    pub frames: Vec<Frame>,
    /// Length of the clip in seconds (container duration, or the span of its frames when the
    /// container does not say, as with MediaRecorder WebM).
    pub duration_secs: f64,
    /// Codec name as FFmpeg reports it (`h264`, `vp8`, `vp9`, ...).
    pub codec: String,
    /// Clockwise rotation applied to the stored frames, in degrees (0, 90, 180, 270).
    pub rotation_degrees: u32,
}

/// Whether `bytes` start like a video container this crate is meant for (ISO BMFF `ftyp`,
/// Matroska/WebM EBML, AVI): lets a shell accept "a video or a single image" in one field.
pub fn looks_like_video(bytes: &[u8]) -> bool {
    let iso = bytes.len() >= 12 && matches!(&bytes[4..8], b"ftyp" | b"moov" | b"mdat" | b"free");
    let ebml = bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]);
    let avi = bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"AVI ";
    iso || ebml || avi
}

/// Decodes a clip held in memory (an upload). FFmpeg reads from a private temporary file.
pub fn decode(bytes: &[u8], plan: &SamplingPlan) -> Result<Clip, VideoError> {
    if bytes.is_empty() {
        return Err(VideoError::Empty);
    }
    let mut staged = tempfile::Builder::new()
        .prefix("faceid-video-")
        .tempfile()?;
    staged.write_all(bytes)?;
    staged.flush()?;
    decode_file(staged.path(), plan)
}

/// A video stream opened for decoding.
struct Opened {
    input: ffmpeg::format::context::Input,
    stream_index: usize,
    time_base: f64,
    rotation_degrees: u32,
    container_secs: Option<f64>,
    decoder: ffmpeg::decoder::Video,
    codec: String,
}

fn open(path: &Path, max_pixels: u64, decode_threads: usize) -> Result<Opened, VideoError> {
    init();
    let input = ffmpeg::format::input(path)
        .map_err(|e| VideoError::Unsupported(format!("not a readable container ({e})")))?;
    let stream = input
        .streams()
        .best(Type::Video)
        .ok_or_else(|| VideoError::Unsupported("no video stream".into()))?;
    let stream_index = stream.index();
    let time_base = f64::from(stream.time_base());
    let rotation_degrees = stream_rotation(&stream);
    let container_secs = (input.duration() > 0)
        .then(|| input.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE));
    let mut context = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| VideoError::Unsupported(format!("codec parameters ({e})")))?;
    let mut threading =
        ffmpeg::codec::threading::Config::kind(ffmpeg::codec::threading::Type::Frame);
    threading.count = decode_threads.max(1);
    context.set_threading(threading);
    let decoder = context
        .decoder()
        .video()
        .map_err(|e| VideoError::Unsupported(format!("no decoder for this codec ({e})")))?;
    let codec = decoder
        .codec()
        .map(|c| c.name().to_string())
        .unwrap_or_else(|| "unknown".into());
    let (width, height) = (decoder.width(), decoder.height());
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(VideoError::TooLarge { width, height });
    }
    Ok(Opened {
        input,
        stream_index,
        time_base,
        rotation_degrees,
        container_secs,
        decoder,
        codec,
    })
}

/// Decodes a clip from a file (the CLI; uploads go through [`decode`]).
pub fn decode_file(path: &Path, plan: &SamplingPlan) -> Result<Clip, VideoError> {
    let Opened {
        mut input,
        stream_index,
        time_base,
        rotation_degrees,
        container_secs,
        mut decoder,
        codec,
    } = open(path, plan.max_pixels, plan.decode_threads)?;

    // Sample times: evenly over the known duration, else every 0.5 s.
    let span = container_secs
        .unwrap_or(plan.max_seconds)
        .min(plan.max_seconds);
    let step = if container_secs.is_some() {
        (span / plan.max_frames.max(1) as f64).max(0.04)
    } else {
        0.5
    };
    let mut sampler = Sampler {
        plan: *plan,
        step,
        next_at: 0.0,
        first_pts: None,
        last_at: 0.0,
        decoded: 0,
        converter: Converter::default(),
        rotation_degrees,
        frames: Vec::new(),
    };

    for (packet_stream, packet) in input.packets() {
        if packet_stream.index() != stream_index {
            continue;
        }
        // A corrupt packet is skipped; a clip with no good packet ends as NoFrames.
        if decoder.send_packet(&packet).is_ok() {
            sampler.drain(&mut decoder, time_base)?;
        }
        if sampler.done() {
            break;
        }
    }
    if !sampler.done() && decoder.send_eof().is_ok() {
        sampler.drain(&mut decoder, time_base)?;
    }
    if sampler.frames.is_empty() {
        return Err(VideoError::NoFrames);
    }
    let frame_span = sampler.last_at
        + if sampler.decoded > 1 {
            step.min(0.04)
        } else {
            0.0
        };
    Ok(Clip {
        duration_secs: container_secs.unwrap_or(frame_span),
        frames: sampler.frames,
        codec,
        rotation_degrees,
    })
}

/// Every frame of a video in order, decoded as they are asked for: the kiosk's `video:`
/// camera source plays one at the clip's own pace.
pub struct FrameStream {
    opened: Opened,
    converter: Converter,
    first_pts: Option<i64>,
    finished: bool,
}

impl std::fmt::Debug for FrameStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FrameStream({})", self.opened.codec)
    }
}

impl FrameStream {
    /// Opens `path`; frames larger than `max_pixels` are refused up front.
    pub fn open(path: &Path, max_pixels: u64) -> Result<FrameStream, VideoError> {
        Ok(FrameStream {
            opened: open(path, max_pixels, 1)?,
            converter: Converter::default(),
            first_pts: None,
            finished: false,
        })
    }

    /// The codec name (`h264`, `vp8`, ...).
    pub fn codec(&self) -> &str {
        &self.opened.codec
    }

    /// The next frame, upright, or `None` at the end of the clip.
    pub fn next_frame(&mut self) -> Option<Frame> {
        let mut decoded = VideoFrame::empty();
        loop {
            if self.opened.decoder.receive_frame(&mut decoded).is_ok() {
                let pts = decoded.timestamp().or(decoded.pts()).unwrap_or(0);
                let first = *self.first_pts.get_or_insert(pts);
                let at_secs = (pts - first) as f64 * self.opened.time_base;
                let image = self.converter.convert(&decoded)?;
                return Some(Frame {
                    at_secs,
                    image: rotate(image, self.opened.rotation_degrees),
                });
            }
            if self.finished {
                return None;
            }
            let index = self.opened.stream_index;
            let packet = self
                .opened
                .input
                .packets()
                .find(|(stream, _)| stream.index() == index)
                .map(|(_, packet)| packet);
            match packet {
                Some(packet) => {
                    let _ = self.opened.decoder.send_packet(&packet);
                }
                None => {
                    self.finished = true;
                    let _ = self.opened.decoder.send_eof();
                }
            }
        }
    }
}

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = ffmpeg::init();
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    });
}

/// Picks frames at the sample times and converts only those to RGB.
struct Sampler {
    plan: SamplingPlan,
    step: f64,
    next_at: f64,
    first_pts: Option<i64>,
    last_at: f64,
    decoded: usize,
    converter: Converter,
    rotation_degrees: u32,
    frames: Vec<Frame>,
}

impl Sampler {
    fn done(&self) -> bool {
        self.frames.len() >= self.plan.max_frames || self.last_at > self.plan.max_seconds
    }

    fn drain(
        &mut self,
        decoder: &mut ffmpeg::decoder::Video,
        time_base: f64,
    ) -> Result<(), VideoError> {
        let mut decoded = VideoFrame::empty();
        while decoder.receive_frame(&mut decoded).is_ok() {
            let pts = decoded.timestamp().or(decoded.pts()).unwrap_or(0);
            let first = *self.first_pts.get_or_insert(pts);
            let at = (pts - first) as f64 * time_base;
            self.last_at = self.last_at.max(at);
            self.decoded += 1;
            if self.done() || at + 1e-6 < self.next_at {
                continue;
            }
            let (width, height) = (decoded.width(), decoded.height());
            if u64::from(width) * u64::from(height) > self.plan.max_pixels {
                return Err(VideoError::TooLarge { width, height });
            }
            if let Some(image) = self.converter.convert(&decoded) {
                self.frames.push(Frame {
                    at_secs: at,
                    image: rotate(image, self.rotation_degrees),
                });
                self.next_at = at + self.step;
            }
        }
        Ok(())
    }
}

/// Decoded frames -> RGB, with a new scaler when the frame size or pixel format changes (as
/// it may mid-stream in WebM).
#[derive(Default)]
struct Converter {
    scaler: Option<Scaler>,
}

impl Converter {
    fn convert(&mut self, frame: &VideoFrame) -> Option<RgbImage> {
        let (width, height, format) = (frame.width(), frame.height(), frame.format());
        let stale = self.scaler.as_ref().is_none_or(|s| {
            s.input().width != width || s.input().height != height || s.input().format != format
        });
        if stale {
            self.scaler = Scaler::get(
                format,
                width,
                height,
                Pixel::RGB24,
                width,
                height,
                Flags::BILINEAR,
            )
            .ok();
        }
        let scaler = self.scaler.as_mut()?;
        let mut rgb = VideoFrame::empty();
        scaler.run(frame, &mut rgb).ok()?;
        let stride = rgb.stride(0);
        let row = width as usize * 3;
        let data = rgb.data(0);
        let mut pixels = Vec::with_capacity(row * height as usize);
        for y in 0..height as usize {
            pixels.extend_from_slice(data.get(y * stride..y * stride + row)?);
        }
        RgbImage::from_raw(width, height, pixels)
    }
}

/// The clockwise rotation a player applies to show the stream upright: from the stream's
/// display matrix (FFmpeg's `-autorotate` rule) or the legacy `rotate` metadata tag.
fn stream_rotation(stream: &ffmpeg::format::stream::Stream) -> u32 {
    for side in stream.side_data() {
        if side.kind() == ffmpeg::codec::packet::side_data::Type::DisplayMatrix
            && let Some(degrees) = display_matrix_rotation(side.data())
        {
            return degrees;
        }
    }
    stream
        .metadata()
        .get("rotate")
        .and_then(|r| r.trim().parse::<i64>().ok())
        .map(|r| quarter_turns(r as f64))
        .unwrap_or(0)
}

/// Clockwise degrees from a 3x3 display matrix of native-endian i32 (16.16 fixed point):
/// the negation of FFmpeg's `av_display_rotation_get` (what `-autorotate` applies), rounded
/// to a quarter turn.
fn display_matrix_rotation(data: &[u8]) -> Option<u32> {
    if data.len() < 36 {
        return None;
    }
    let at = |i: usize| -> Option<f64> {
        let bytes: [u8; 4] = data.get(i * 4..i * 4 + 4)?.try_into().ok()?;
        Some(f64::from(i32::from_ne_bytes(bytes)) / 65536.0)
    };
    let (m0, m1, m3, m4) = (at(0)?, at(1)?, at(3)?, at(4)?);
    let scale0 = m0.hypot(m3);
    let scale1 = m1.hypot(m4);
    if scale0 == 0.0 || scale1 == 0.0 {
        return None;
    }
    let clockwise = (m1 / scale1).atan2(m0 / scale0).to_degrees();
    Some(quarter_turns(clockwise))
}

fn quarter_turns(degrees: f64) -> u32 {
    let turns = (degrees / 90.0).round() as i64;
    (turns.rem_euclid(4) * 90) as u32
}

fn rotate(image: RgbImage, clockwise_degrees: u32) -> RgbImage {
    match clockwise_degrees {
        90 => image::imageops::rotate90(&image),
        180 => image::imageops::rotate180(&image),
        270 => image::imageops::rotate270(&image),
        _ => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(a: i32, b: i32, c: i32, d: i32) -> Vec<u8> {
        [a, b, 0, c, d, 0, 0, 0, 1 << 30]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect()
    }

    #[test]
    fn display_matrix_quarter_turns() {
        let one = 1 << 16;
        assert_eq!(display_matrix_rotation(&matrix(one, 0, 0, one)), Some(0));
        // A phone held upright writes a matrix that rotates 90 degrees: [0 1; -1 0].
        assert_eq!(display_matrix_rotation(&matrix(0, one, -one, 0)), Some(90));
        assert_eq!(display_matrix_rotation(&matrix(0, -one, one, 0)), Some(270));
        assert_eq!(
            display_matrix_rotation(&matrix(-one, 0, 0, -one)),
            Some(180)
        );
        assert_eq!(display_matrix_rotation(&[0u8; 8]), None);
    }

    #[test]
    fn sniffing() {
        assert!(looks_like_video(b"\0\0\0\x20ftypisom\0\0\0\0"));
        assert!(looks_like_video(&[0x1A, 0x45, 0xDF, 0xA3, 1, 2]));
        assert!(!looks_like_video(&[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(!looks_like_video(b"hello world, not a video"));
    }

    #[test]
    fn garbage_is_unsupported_not_a_panic() {
        let plan = SamplingPlan::default();
        assert!(matches!(decode(&[], &plan), Err(VideoError::Empty)));
        assert!(matches!(
            decode(b"this is a text file pretending to be an mp4", &plan),
            Err(VideoError::Unsupported(_) | VideoError::NoFrames)
        ));
    }
}
