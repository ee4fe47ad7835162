//! Pixel sampling shared by the stages: resized crops (SIMD resizer) and affine warps.
//! Regions may extend past the image edge; the outside is black, as in padding.

use fast_image_resize::images::ImageRef;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::error::{Error, Result};
use crate::geometry::{BoundingBox, Point, Similarity};
use crate::image::Image;

/// How a crop is resampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resample {
    /// Bilinear convolution that widens with the shrink factor: downscaled faces keep their
    /// detail without aliasing. The default.
    #[default]
    Area,
    /// Fixed 2x2 bilinear interpolation, like OpenCV's `INTER_LINEAR`: for networks trained
    /// on crops resized that way (the liveness network).
    Linear,
}

impl Resample {
    fn algorithm(self) -> ResizeAlg {
        match self {
            Resample::Area => ResizeAlg::Convolution(FilterType::Bilinear),
            Resample::Linear => ResizeAlg::Interpolation(FilterType::Bilinear),
        }
    }
}

fn resize_error(what: impl std::fmt::Display) -> Error {
    Error::Resize(what.to_string())
}

/// Resizes `region` of `image` to `out_w` x `out_h` RGB bytes with `resample`, written
/// into `out`. A region under one pixel, an empty output or a resizer failure is an error:
/// a black crop must never reach a network as if it were a face.
pub fn crop_resized_into(
    image: &Image,
    region: BoundingBox,
    out_w: u32,
    out_h: u32,
    resample: Resample,
    out: &mut Vec<u8>,
) -> Result<()> {
    out.clear();
    out.resize(out_w as usize * out_h as usize * 3, 0);
    let (w, h) = (image.width() as f32, image.height() as f32);
    let inside = region.x1 >= 0.0 && region.y1 >= 0.0 && region.x2 <= w && region.y2 <= h;
    if !(region.width() >= 1.0 && region.height() >= 1.0) || out_w == 0 || out_h == 0 {
        return Err(resize_error(format_args!(
            "cannot resize a {:.1}x{:.1} region to {out_w}x{out_h}",
            region.width(),
            region.height()
        )));
    }
    let options = ResizeOptions::new().resize_alg(resample.algorithm());
    let mut resizer = Resizer::new();
    if inside {
        let src = ImageRef::new(image.width(), image.height(), image.rgb(), PixelType::U8x3)
            .map_err(resize_error)?;
        // The width is clamped in f64: `x1 + (x2 - x1)` rounded in f32 can pass the edge by
        // an ulp, which the resizer refuses (a region that touches the border, common in
        // video frames).
        let (left, top) = (f64::from(region.x1), f64::from(region.y1));
        let options = options.crop(
            left,
            top,
            f64::from(region.width()).min(f64::from(image.width()) - left),
            f64::from(region.height()).min(f64::from(image.height()) - top),
        );
        let mut dst =
            fast_image_resize::images::Image::from_slice_u8(out_w, out_h, out, PixelType::U8x3)
                .map_err(resize_error)?;
        return resizer
            .resize(&src, &mut dst, &options)
            .map_err(resize_error);
    }
    // Part of the region lies outside: copy it onto a black canvas first.
    let (cw, ch) = (
        region.width().round().max(1.0) as u32,
        region.height().round().max(1.0) as u32,
    );
    let (ox, oy) = (region.x1.round() as i64, region.y1.round() as i64);
    let mut canvas = vec![0u8; cw as usize * ch as usize * 3];
    for y in 0..ch as i64 {
        let sy = oy + y;
        if sy < 0 || sy >= image.height() as i64 {
            continue;
        }
        let x_start = (-ox).max(0);
        let x_end = (image.width() as i64 - ox).min(cw as i64);
        if x_start >= x_end {
            continue;
        }
        let src_off = ((sy as usize * image.width() as usize) + (ox + x_start) as usize) * 3;
        let dst_off = ((y as usize * cw as usize) + x_start as usize) * 3;
        let len = (x_end - x_start) as usize * 3;
        canvas[dst_off..dst_off + len].copy_from_slice(&image.rgb()[src_off..src_off + len]);
    }
    let src = ImageRef::new(cw, ch, &canvas, PixelType::U8x3).map_err(resize_error)?;
    let mut dst =
        fast_image_resize::images::Image::from_slice_u8(out_w, out_h, out, PixelType::U8x3)
            .map_err(resize_error)?;
    resizer
        .resize(&src, &mut dst, &options)
        .map_err(resize_error)
}

/// Convenience form of [`crop_resized_into`] returning an [`Image`].
pub fn crop_resized(image: &Image, region: BoundingBox, out_w: u32, out_h: u32) -> Result<Image> {
    let mut out = Vec::new();
    crop_resized_into(image, region, out_w, out_h, Resample::Area, &mut out)?;
    Image::from_rgb(out_w, out_h, out)
}

/// A `out_w` x `out_h` frame centred on `face`, `widths` face widths wide (aspect kept):
/// how a camera at kiosk distance frames a person. Used by `faceid bench` and the tests.
pub fn frame_around(
    image: &Image,
    face: BoundingBox,
    widths: f32,
    out_w: u32,
    out_h: u32,
) -> Result<Image> {
    let c = face.center();
    let w = face.width() * widths;
    let h = w * out_h as f32 / out_w.max(1) as f32;
    crop_resized(
        image,
        BoundingBox::new(c.x - w / 2.0, c.y - h / 2.0, c.x + w / 2.0, c.y + h / 2.0),
        out_w,
        out_h,
    )
}

/// Warps `image` into an `out_w` x `out_h` image where output pixel p samples the source at
/// `to_output.inverse()(p)`, bilinearly. When the warp shrinks the face by more than 2x the
/// source is first reduced with the SIMD resizer so the warp does not alias.
/// A transform that cannot be inverted is an error.
pub fn warp_similarity(
    image: &Image,
    to_output: Similarity,
    out_w: u32,
    out_h: u32,
) -> Result<Image> {
    let scale = to_output.scale();
    if scale < 0.5 && scale > 0.0 {
        // Pre-shrink the region the output covers to about 2x the output resolution.
        let inv = to_output
            .inverse()
            .ok_or_else(|| resize_error("degenerate warp"))?;
        let corners = [
            inv.apply(Point::new(0.0, 0.0)),
            inv.apply(Point::new(out_w as f32, 0.0)),
            inv.apply(Point::new(0.0, out_h as f32)),
            inv.apply(Point::new(out_w as f32, out_h as f32)),
        ];
        let region = BoundingBox::new(
            corners.iter().map(|p| p.x).fold(f32::MAX, f32::min).floor(),
            corners.iter().map(|p| p.y).fold(f32::MAX, f32::min).floor(),
            corners.iter().map(|p| p.x).fold(f32::MIN, f32::max).ceil(),
            corners.iter().map(|p| p.y).fold(f32::MIN, f32::max).ceil(),
        );
        let factor = (scale * 2.0).min(1.0);
        let (rw, rh) = (
            (region.width() * factor).round().max(1.0) as u32,
            (region.height() * factor).round().max(1.0) as u32,
        );
        let reduced = crop_resized(image, region, rw, rh)?;
        let sx = rw as f32 / region.width();
        let sy = rh as f32 / region.height();
        let s = (sx + sy) / 2.0;
        // output <- reduced: first map reduced coords back to the source, then apply.
        let reduced_to_source = Similarity {
            a: 1.0 / s,
            b: 0.0,
            tx: region.x1,
            ty: region.y1,
        };
        let compose = Similarity {
            a: to_output.a * reduced_to_source.a - to_output.b * reduced_to_source.b,
            b: to_output.b * reduced_to_source.a + to_output.a * reduced_to_source.b,
            tx: to_output.a * reduced_to_source.tx - to_output.b * reduced_to_source.ty
                + to_output.tx,
            ty: to_output.b * reduced_to_source.tx
                + to_output.a * reduced_to_source.ty
                + to_output.ty,
        };
        return warp_bilinear(&reduced, compose, out_w, out_h);
    }
    warp_bilinear(image, to_output, out_w, out_h)
}

fn warp_bilinear(image: &Image, to_output: Similarity, out_w: u32, out_h: u32) -> Result<Image> {
    let inv = to_output
        .inverse()
        .ok_or_else(|| resize_error("degenerate warp"))?;
    let mut out = vec![0u8; out_w as usize * out_h as usize * 3];
    for y in 0..out_h {
        for x in 0..out_w {
            let p = inv.apply(Point::new(x as f32, y as f32));
            let (x0, y0) = (p.x.floor(), p.y.floor());
            let (fx, fy) = (p.x - x0, p.y - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let c00 = image.pixel(x0, y0);
            let c10 = image.pixel(x0 + 1, y0);
            let c01 = image.pixel(x0, y0 + 1);
            let c11 = image.pixel(x0 + 1, y0 + 1);
            let o = (y as usize * out_w as usize + x as usize) * 3;
            for c in 0..3 {
                let top = f32::from(c00[c]) * (1.0 - fx) + f32::from(c10[c]) * fx;
                let bottom = f32::from(c01[c]) * (1.0 - fx) + f32::from(c11[c]) * fx;
                out[o + c] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    Image::from_rgb(out_w, out_h, out)
}

/// ITU-R BT.601 luma of an RGB buffer, one byte per pixel.
pub fn luma(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .map(|p| {
            ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114 + 500) / 1000)
                as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> Image {
        let mut rgb = Vec::new();
        for y in 0..h {
            for x in 0..w {
                rgb.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 100]);
            }
        }
        Image::from_rgb(w, h, rgb).unwrap()
    }

    #[test]
    fn a_crop_that_cannot_be_made_is_an_error_not_a_black_image() {
        let img = gradient(100, 80);
        for (region, w, h) in [
            (BoundingBox::new(10.0, 10.0, 10.2, 40.0), 64, 64),
            (BoundingBox::new(10.0, 10.0, 50.0, 40.0), 0, 64),
            (BoundingBox::new(f32::NAN, 10.0, 50.0, 40.0), 64, 64),
        ] {
            let mut out = Vec::new();
            let result = crop_resized_into(&img, region, w, h, Resample::Area, &mut out);
            assert_eq!(
                result.unwrap_err().code(),
                crate::error::ErrorCode::ImageProcessingFailed,
                "{region:?} -> {w}x{h}"
            );
        }
    }

    #[test]
    fn a_region_ending_on_the_border_is_cropped_not_refused() {
        let img = gradient(641, 480);
        // f32 rounding: x1 + (x2 - x1) lands past 641 by an ulp.
        let region = BoundingBox::new(0.0137, 10.0, 641.0, 480.0);
        let crop = crop_resized(&img, region, 128, 128).unwrap();
        assert_ne!(crop.pixel(127, 64), [0, 0, 0]);
    }

    #[test]
    fn crop_outside_the_image_is_black_there() {
        let img = gradient(100, 80);
        let crop = crop_resized(&img, BoundingBox::new(-50.0, 0.0, 50.0, 80.0), 100, 80).unwrap();
        assert_eq!(crop.pixel(10, 40), [0, 0, 0]);
        assert_eq!(crop.pixel(80, 40)[2], 100);
    }

    #[test]
    fn identity_warp_copies_pixels() {
        let img = gradient(60, 40);
        let out = warp_similarity(
            &img,
            Similarity {
                a: 1.0,
                b: 0.0,
                tx: 0.0,
                ty: 0.0,
            },
            60,
            40,
        )
        .unwrap();
        assert_eq!(out.pixel(30, 20), img.pixel(30, 20));
    }

    #[test]
    fn shrinking_warp_matches_direct_sampling_on_smooth_images() {
        let img = gradient(800, 800);
        let t = Similarity {
            a: 0.14,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        };
        let out = warp_similarity(&img, t, 112, 112).unwrap();
        let direct = warp_bilinear(&img, t, 112, 112).unwrap();
        for (x, y) in [(10, 10), (56, 56), (100, 30)] {
            let (a, b) = (out.pixel(x, y), direct.pixel(x, y));
            for c in 0..3 {
                assert!(
                    (i32::from(a[c]) - i32::from(b[c])).abs() <= 6,
                    "{a:?} vs {b:?} at {x},{y}"
                );
            }
        }
    }

    #[test]
    fn luma_of_white_and_black() {
        assert_eq!(luma(&[255, 255, 255, 0, 0, 0]), vec![255, 0]);
    }
}
