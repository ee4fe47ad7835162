//! Stage 1: untrusted bytes -> [`Image`].
//!
//! Inputs come from cameras, uploads and scanners, so decoding is defensive: the byte size
//! is bounded, the declared pixel count is read from the header and refused *before* any
//! pixel buffer is allocated, EXIF orientation is applied, and truncated or corrupt data is
//! an error, never a panic or a half-grey picture.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::error::{Error, Result};

/// Formats the engine decodes.
pub const SUPPORTED_FORMATS: &[&str] = &["JPEG", "PNG", "WebP", "BMP"];

/// Limits applied while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted encoded size in bytes.
    pub max_bytes: usize,
    /// Largest accepted width x height.
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_bytes: 5 * 1024 * 1024,
            max_pixels: 40_000_000,
        }
    }
}

/// An 8-bit RGB image, rows top to bottom, upright (orientation already applied).
#[derive(Clone, PartialEq, Eq)]
pub struct Image {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Image({}x{})", self.width, self.height)
    }
}

/// A quarter-turn rotation, clockwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Rotation {
    /// Upright.
    None,
    /// 90 degrees clockwise.
    Cw90,
    /// 180 degrees.
    Cw180,
    /// 270 degrees clockwise (90 counter-clockwise).
    Cw270,
}

impl Rotation {
    /// All four rotations, upright first.
    pub const ALL: [Rotation; 4] = [
        Rotation::None,
        Rotation::Cw90,
        Rotation::Cw180,
        Rotation::Cw270,
    ];

    /// Degrees clockwise.
    pub fn degrees(self) -> u16 {
        match self {
            Rotation::None => 0,
            Rotation::Cw90 => 90,
            Rotation::Cw180 => 180,
            Rotation::Cw270 => 270,
        }
    }
}

impl Image {
    /// Wraps an RGB buffer of `width * height * 3` bytes.
    pub fn from_rgb(width: u32, height: u32, rgb: Vec<u8>) -> Result<Image> {
        if width == 0 || height == 0 || rgb.len() != width as usize * height as usize * 3 {
            return Err(Error::CorruptImage {
                reason: format!(
                    "{} bytes do not form a {width}x{height} RGB image",
                    rgb.len()
                ),
            });
        }
        Ok(Image { width, height, rgb })
    }

    /// An all-black image; zero dimensions become one.
    pub fn black(width: u32, height: u32) -> Image {
        let (width, height) = (width.max(1), height.max(1));
        Image {
            width,
            height,
            rgb: vec![0; width as usize * height as usize * 3],
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The interleaved RGB bytes.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }

    /// The RGB value at (x, y); (0,0,0) outside the image.
    #[inline]
    pub fn pixel(&self, x: i64, y: i64) -> [u8; 3] {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            return [0, 0, 0];
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// This image turned by `rotation` (clockwise).
    pub fn rotated(&self, rotation: Rotation) -> Image {
        let (w, h) = (self.width as usize, self.height as usize);
        let (nw, nh) = match rotation {
            Rotation::None => return self.clone(),
            Rotation::Cw180 => (w, h),
            Rotation::Cw90 | Rotation::Cw270 => (h, w),
        };
        let mut out = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let (nx, ny) = match rotation {
                    Rotation::Cw90 => (h - 1 - y, x),
                    Rotation::Cw180 => (w - 1 - x, h - 1 - y),
                    Rotation::Cw270 => (y, w - 1 - x),
                    Rotation::None => (x, y),
                };
                let src = (y * w + x) * 3;
                let dst = (ny * nw + nx) * 3;
                out[dst..dst + 3].copy_from_slice(&self.rgb[src..src + 3]);
            }
        }
        Image {
            width: nw as u32,
            height: nh as u32,
            rgb: out,
        }
    }

    /// Encodes as PNG (for debugging crops and for shells that return images).
    pub fn to_png(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        image::RgbImage::from_raw(self.width, self.height, self.rgb.clone())
            .ok_or_else(|| Error::CorruptImage {
                reason: "buffer size".into(),
            })?
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .map_err(|e| Error::CorruptImage {
                reason: e.to_string(),
            })?;
        Ok(out)
    }
}

/// Decodes untrusted bytes into an upright RGB [`Image`].
///
/// Errors: `EMPTY_INPUT`, `INPUT_TOO_LARGE`, `UNSUPPORTED_FORMAT`, `IMAGE_TOO_LARGE` (from
/// the header, nothing allocated), `CORRUPT_IMAGE`.
pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<Image> {
    if bytes.is_empty() {
        return Err(Error::EmptyInput);
    }
    if bytes.len() > limits.max_bytes {
        return Err(Error::InputTooLarge {
            bytes: bytes.len(),
            max_bytes: limits.max_bytes,
        });
    }
    let format = image::guess_format(bytes).map_err(|_| Error::UnsupportedFormat)?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Bmp
    ) {
        return Err(Error::UnsupportedFormat);
    }
    if format == ImageFormat::Jpeg && !has_jpeg_end_marker(bytes) {
        // The JPEG decoder fills a truncated scan with grey instead of failing; a face
        // template from half a picture is worse than an error.
        return Err(Error::CorruptImage {
            reason: "JPEG data is truncated (no end-of-image marker)".into(),
        });
    }
    // Refuse huge pictures from the declared size alone, before any decoder reads ahead.
    if let Some((width, height)) = declared_size(format, bytes)
        && u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(Error::ImageTooLarge {
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(4).saturating_add(1 << 20));
    reader.limits(decoder_limits);
    let corrupt = |e: image::ImageError| match e {
        image::ImageError::Limits(_) => Error::ImageTooLarge {
            width: 0,
            height: 0,
            max_pixels: limits.max_pixels,
        },
        image::ImageError::Unsupported(_) => Error::UnsupportedFormat,
        other => Error::CorruptImage {
            reason: other.to_string(),
        },
    };
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(Error::CorruptImage {
            reason: "zero width or height".into(),
        });
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(Error::ImageTooLarge {
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut picture = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    picture.apply_orientation(orientation);
    let rgb = picture.into_rgb8();
    let (width, height) = rgb.dimensions();
    Image::from_rgb(width, height, rgb.into_raw())
}

/// Width and height as declared in a PNG IHDR or BMP header, read without decoding.
fn declared_size(format: ImageFormat, bytes: &[u8]) -> Option<(u32, u32)> {
    let be = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let le = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    match format {
        ImageFormat::Png if bytes.get(12..16) == Some(b"IHDR") => Some((be(16)?, be(20)?)),
        ImageFormat::Bmp => Some((le(18)?.unsigned_abs(), le(22)?.unsigned_abs())),
        _ => None,
    }
}

/// Whether a JPEG stream ends with EOI (0xFFD9), allowing trailing padding bytes.
fn has_jpeg_end_marker(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
        let img = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8])
        });
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
    }

    /// A PNG whose header declares `width` x `height` but carries no pixel data.
    pub(crate) fn png_header_only(width: u32, height: u32) -> Vec<u8> {
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        png.extend_from_slice(&13u32.to_be_bytes());
        let mut chunk = b"IHDR".to_vec();
        chunk.extend_from_slice(&ihdr);
        let crc = crc32(&chunk);
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc.to_be_bytes());
        png
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    0xEDB8_8320 ^ (crc >> 1)
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn decodes_every_supported_format() {
        for format in [
            ImageFormat::Jpeg,
            ImageFormat::Png,
            ImageFormat::WebP,
            ImageFormat::Bmp,
        ] {
            let img = decode(&encode(40, 30, format), DecodeLimits::default()).unwrap();
            assert_eq!((img.width(), img.height()), (40, 30), "{format:?}");
        }
    }

    #[test]
    fn empty_and_oversized_inputs_are_refused() {
        assert_eq!(
            decode(&[], DecodeLimits::default())
                .unwrap_err()
                .code()
                .as_str(),
            "EMPTY_INPUT"
        );
        let limits = DecodeLimits {
            max_bytes: 10,
            max_pixels: 1 << 20,
        };
        assert_eq!(
            decode(&[0u8; 11], limits).unwrap_err().code().as_str(),
            "INPUT_TOO_LARGE"
        );
    }

    #[test]
    fn text_is_unsupported() {
        let err = decode(
            b"hello, this is not an image at all",
            DecodeLimits::default(),
        )
        .unwrap_err();
        assert_eq!(err.code().as_str(), "UNSUPPORTED_FORMAT");
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
        assert_eq!(
            decode(gif, DecodeLimits::default())
                .unwrap_err()
                .code()
                .as_str(),
            "UNSUPPORTED_FORMAT"
        );
    }

    #[test]
    fn truncated_jpeg_and_png_are_corrupt() {
        let jpeg = encode(64, 64, ImageFormat::Jpeg);
        let err = decode(&jpeg[..jpeg.len() / 2], DecodeLimits::default()).unwrap_err();
        assert_eq!(err.code().as_str(), "CORRUPT_IMAGE");
        let png = encode(64, 64, ImageFormat::Png);
        let err = decode(&png[..png.len() / 2], DecodeLimits::default()).unwrap_err();
        assert_eq!(err.code().as_str(), "CORRUPT_IMAGE");
    }

    #[test]
    fn huge_declared_png_is_refused_from_its_header() {
        let png = png_header_only(20_000, 20_000);
        let err = decode(&png, DecodeLimits::default()).unwrap_err();
        assert_eq!(err.code().as_str(), "IMAGE_TOO_LARGE");
        assert!(err.to_string().contains("20000x20000"), "{err}");
    }

    #[test]
    fn rotations_compose_to_identity() {
        let img = decode(&encode(5, 3, ImageFormat::Png), DecodeLimits::default()).unwrap();
        let r90 = img.rotated(Rotation::Cw90);
        assert_eq!((r90.width(), r90.height()), (3, 5));
        // The top-left pixel moves to the top-right corner after a clockwise quarter turn.
        assert_eq!(r90.pixel(2, 0), img.pixel(0, 0));
        let back = r90.rotated(Rotation::Cw270);
        assert_eq!(back, img);
        assert_eq!(img.rotated(Rotation::Cw180).rotated(Rotation::Cw180), img);
    }

    #[test]
    fn exif_orientation_is_applied() {
        // A JPEG with an EXIF APP1 segment saying "rotate 90 CW" (orientation 6).
        let jpeg = encode(40, 20, ImageFormat::Jpeg);
        let mut exif =
            b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0".to_vec();
        let len = (exif.len() + 2) as u16;
        let mut app1 = vec![0xFF, 0xE1];
        app1.extend_from_slice(&len.to_be_bytes());
        app1.append(&mut exif);
        let mut tagged = jpeg[..2].to_vec();
        tagged.extend_from_slice(&app1);
        tagged.extend_from_slice(&jpeg[2..]);
        let img = decode(&tagged, DecodeLimits::default()).unwrap();
        assert_eq!((img.width(), img.height()), (20, 40));
    }
}
