//! Synthetic identity cards with known fields: a CNIE-style TD1 back (machine-readable zone
//! in OCR-B, from Debian's `fonts-ocr-b`) and front (names, number, a portrait), rendered
//! clean, then degraded as a flatbed scan or as a phone photo, in any quarter turn.
//!
//! The zone is composed here with its own check-digit code (not the parser's), so a test
//! compares the engine's reading with fields it did not produce.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::{Rgb, RgbImage};

/// OCR-B, installed by `scripts/setup.sh` (Debian `fonts-ocr-b`).
pub const OCR_B: &str = "/usr/share/fonts/opentype/ocr-b/OCRB.otf";
/// The face of the card's printed text (`fonts-dejavu-core`).
pub const DEJAVU: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Card size in pixels: ID-1 (85.6 x 54 mm) at 300 dpi.
pub const CARD: (u32, u32) = (1012, 638);

const SURNAMES: &[&str] = &[
    "EL AMRANI",
    "BENNANI",
    "ALAOUI",
    "TAZI",
    "BERRADA",
    "EL IDRISSI",
    "CHRAIBI",
    "FASSI FIHRI",
    "OUAZZANI",
    "BENJELLOUN",
    "LAHLOU",
    "SEKKAT",
    "EL MANSOURI",
    "ZIANI",
    "AIT BENHADDOU",
    "MOUSSAOUI",
    "HAJJI",
    "KETTANI",
    "BOUZIDI",
    "NACIRI",
];
const GIVEN: &[&str] = &[
    "FATIMA ZAHRA",
    "MOHAMED",
    "YOUSSEF",
    "KHADIJA",
    "AMINE",
    "SALMA",
    "HAMZA",
    "NADIA",
    "OMAR",
    "IMANE",
    "MEHDI",
    "SOUKAINA",
    "ANAS",
    "HIBA",
    "KARIM",
    "LEILA",
    "RACHID",
    "SARA",
    "ILYAS",
    "MERIEM",
];

/// The fields printed on a synthetic card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardFields {
    /// Card number, e.g. `BK123456`.
    pub number: String,
    /// Surname, spaces between parts.
    pub surname: String,
    /// Given names, spaces between parts.
    pub given_names: String,
    /// `YYMMDD`.
    pub birth: String,
    /// `M` or `F`.
    pub sex: char,
    /// `YYMMDD`.
    pub expiry: String,
}

impl CardFields {
    /// Random fields; `expiry_year` is the full year of expiry.
    pub fn random(rng: &mut fastrand::Rng, expiry_year: u32) -> CardFields {
        let letters = |rng: &mut fastrand::Rng, n: usize| {
            (0..n)
                .map(|_| char::from(b'A' + rng.u8(0..26)))
                .collect::<String>()
        };
        let digits = |rng: &mut fastrand::Rng, n: usize| {
            (0..n)
                .map(|_| char::from(b'0' + rng.u8(0..10)))
                .collect::<String>()
        };
        let prefix = rng.usize(1..=2);
        let count = rng.usize(5..=7);
        let number = letters(rng, prefix) + &digits(rng, count);
        let date = |rng: &mut fastrand::Rng, year: u32| {
            format!(
                "{:02}{:02}{:02}",
                year % 100,
                rng.u32(1..=12),
                rng.u32(1..=28)
            )
        };
        let birth_year = rng.u32(1950..=2005);
        CardFields {
            number,
            surname: SURNAMES[rng.usize(..SURNAMES.len())].to_string(),
            given_names: GIVEN[rng.usize(..GIVEN.len())].to_string(),
            birth: date(rng, birth_year),
            sex: if rng.bool() { 'M' } else { 'F' },
            expiry: date(rng, expiry_year),
        }
    }

    /// The three 30-character lines of the TD1 zone (issuing state and nationality MAR).
    pub fn td1(&self) -> [String; 3] {
        let pad = |s: &str, n: usize| format!("{s:<<n$}");
        let number = pad(&self.number, 9);
        let line1 = pad(&format!("IDMAR{number}{}", check_digit(&number)), 30);
        let mut line2 = format!(
            "{}{}{}{}{}MAR",
            self.birth,
            check_digit(&self.birth),
            self.sex,
            self.expiry,
            check_digit(&self.expiry)
        );
        line2 = pad(&line2, 29);
        let composite = format!(
            "{}{}{}{}",
            &line1[5..30],
            &line2[0..7],
            &line2[8..15],
            &line2[18..29]
        );
        line2.push(check_digit(&composite));
        let name = |s: &str| s.replace(' ', "<");
        let line3 = pad(
            &format!("{}<<{}", name(&self.surname), name(&self.given_names)),
            30,
        );
        let line3: String = line3.chars().take(30).collect();
        [line1, line2, line3]
    }
}

/// ICAO 9303 check digit (weights 7, 3, 1; `<` = 0, A = 10).
pub fn check_digit(field: &str) -> char {
    let sum: u32 = field
        .bytes()
        .zip([7u32, 3, 1].iter().cycle())
        .map(|(b, w)| {
            let v = match b {
                b'0'..=b'9' => u32::from(b - b'0'),
                b'A'..=b'Z' => u32::from(b - b'A') + 10,
                _ => 0,
            };
            v * w
        })
        .sum();
    char::from(b'0' + (sum % 10) as u8)
}

/// Fonts loaded once.
#[allow(missing_debug_implementations)]
pub struct Fonts {
    ocr_b: Vec<u8>,
    sans: Vec<u8>,
}

impl Fonts {
    /// Loads OCR-B and DejaVu Sans; panics naming the package when one is missing.
    pub fn load() -> Fonts {
        let read = |path: &str, package: &str| {
            std::fs::read(path).unwrap_or_else(|e| {
                panic!("{path}: {e}: install Debian's {package} (scripts/setup.sh does)")
            })
        };
        Fonts {
            ocr_b: read(OCR_B, "fonts-ocr-b"),
            sans: read(DEJAVU, "fonts-dejavu-core"),
        }
    }

    fn ocr_b(&self) -> FontRef<'_> {
        FontRef::try_from_slice(&self.ocr_b).expect("OCR-B parses")
    }

    fn sans(&self) -> FontRef<'_> {
        FontRef::try_from_slice(&self.sans).expect("DejaVu parses")
    }
}

/// Draws `text` with its baseline-left at (x, y), each glyph advanced by `pitch` pixels when
/// given (the MRZ is monospaced at 2.54 mm) or by the font's own advance.
pub fn draw_text(
    canvas: &mut RgbImage,
    font: &FontRef<'_>,
    size: f32,
    (x, y): (f32, f32),
    pitch: Option<f32>,
    color: [u8; 3],
    text: &str,
) {
    let scaled = font.as_scaled(PxScale::from(size));
    let mut pen = x;
    for c in text.chars() {
        let id = font.glyph_id(c);
        let glyph = id.with_scale_and_position(size, ab_glyph::point(pen, y));
        if let Some(outline) = font.outline_glyph(glyph) {
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let px = bounds.min.x as i64 + i64::from(gx);
                let py = bounds.min.y as i64 + i64::from(gy);
                if px < 0
                    || py < 0
                    || px >= i64::from(canvas.width())
                    || py >= i64::from(canvas.height())
                {
                    return;
                }
                let p = canvas.get_pixel_mut(px as u32, py as u32);
                for (channel, ink) in p.0.iter_mut().zip(color) {
                    let under = f32::from(*channel);
                    *channel = (under + (f32::from(ink) - under) * coverage.min(1.0)) as u8;
                }
            });
        }
        pen += pitch.unwrap_or_else(|| scaled.h_advance(id));
    }
}

/// A pale background with a guilloche-like pattern, as security printing has.
fn background(rng: &mut fastrand::Rng, (w, h): (u32, u32)) -> RgbImage {
    let tint = [rng.u8(215..=245), rng.u8(220..=245), rng.u8(215..=245)];
    let f1 = rng.f32() * 0.05 + 0.02;
    let f2 = rng.f32() * 0.05 + 0.02;
    RgbImage::from_fn(w, h, |x, y| {
        let (x, y) = (x as f32, y as f32);
        let wave = ((x * f1 + (y * f2).sin() * 3.0).sin() * (y * f1 * 0.7).cos()).abs();
        let line = if wave > 0.96 { 22.0 } else { 0.0 };
        Rgb(tint.map(|t| (f32::from(t) - line).max(0.0) as u8))
    })
}

/// The back of the card: printed address lines and the machine-readable zone.
pub fn render_back(fonts: &Fonts, fields: &CardFields, rng: &mut fastrand::Rng) -> RgbImage {
    render_back_with(fonts, fields, &fields.td1(), rng)
}

/// The back of the card with the zone's `lines` as given (a forged or misprinted zone).
pub fn render_back_with(
    fonts: &Fonts,
    fields: &CardFields,
    lines: &[String; 3],
    rng: &mut fastrand::Rng,
) -> RgbImage {
    let mut card = background(rng, CARD);
    let sans = fonts.sans();
    let ink = [40, 40, 60];
    draw_text(
        &mut card,
        &sans,
        24.0,
        (40.0, 60.0),
        None,
        ink,
        "Adresse / Address",
    );
    draw_text(
        &mut card,
        &sans,
        28.0,
        (40.0, 100.0),
        None,
        ink,
        "12 RUE DES ORANGERS, RABAT",
    );
    draw_text(
        &mut card,
        &sans,
        24.0,
        (40.0, 160.0),
        None,
        ink,
        "Etat civil / Civil status",
    );
    draw_text(
        &mut card,
        &sans,
        28.0,
        (40.0, 200.0),
        None,
        ink,
        &format!("N° {}", fields.number),
    );
    // The zone: 3 lines of 30 at a 2.54 mm pitch (30 px at 300 dpi), 3.7 mm apart.
    let ocr = fonts.ocr_b();
    let pitch = CARD.0 as f32 * 2.54 / 85.6;
    let x = (CARD.0 as f32 - 30.0 * pitch) / 2.0;
    let base = CARD.1 as f32 - 40.0 - 2.0 * 44.0;
    for (i, line) in lines.iter().enumerate() {
        draw_text(
            &mut card,
            &ocr,
            41.0,
            (x, base + 44.0 * i as f32),
            Some(pitch),
            [10, 10, 10],
            line,
        );
    }
    card
}

/// The front of the card: title, names, number, dates and a portrait (any RGB face image).
pub fn render_front(
    fonts: &Fonts,
    fields: &CardFields,
    portrait: &RgbImage,
    rng: &mut fastrand::Rng,
) -> RgbImage {
    let mut card = background(rng, CARD);
    let sans = fonts.sans();
    let ink = [30, 30, 50];
    draw_text(
        &mut card,
        &sans,
        34.0,
        (300.0, 60.0),
        None,
        [150, 20, 20],
        "ROYAUME DU MAROC",
    );
    draw_text(
        &mut card,
        &sans,
        22.0,
        (300.0, 95.0),
        None,
        ink,
        "CARTE NATIONALE D'IDENTITE",
    );
    let photo = image::imageops::resize(portrait, 240, 300, image::imageops::FilterType::Triangle);
    image::imageops::overlay(&mut card, &photo, 40, 140);
    let rows = [
        ("Nom / Name", fields.surname.clone()),
        ("Prenom / Given names", fields.given_names.clone()),
        ("Ne le / Date of birth", yymmdd_to_dmy(&fields.birth, 1900)),
        (
            "Valable jusqu'au / Expiry",
            yymmdd_to_dmy(&fields.expiry, 2000),
        ),
    ];
    for (i, (label, value)) in rows.iter().enumerate() {
        let y = 170.0 + 80.0 * i as f32;
        draw_text(
            &mut card,
            &sans,
            20.0,
            (320.0, y),
            None,
            [90, 90, 110],
            label,
        );
        draw_text(&mut card, &sans, 30.0, (320.0, y + 34.0), None, ink, value);
    }
    draw_text(
        &mut card,
        &sans,
        34.0,
        (700.0, 600.0),
        None,
        [150, 20, 20],
        &fields.number,
    );
    card
}

fn yymmdd_to_dmy(d: &str, century: u32) -> String {
    let year: u32 = d[0..2].parse().unwrap_or(0);
    let year = if century == 1900 && year < 30 {
        2000 + year
    } else {
        century + year
    };
    format!("{}.{}.{year}", &d[4..6], &d[2..4])
}

/// Both sides of a card scanned on one white page, front above back, as JPEG bytes: what a
/// branch's flatbed scanner gives for `/api/enroll`.
pub fn both_sides(front: &RgbImage, back: &RgbImage) -> Vec<u8> {
    let margin = 60;
    let mut page = RgbImage::from_pixel(
        front.width().max(back.width()) + 2 * margin,
        front.height() + back.height() + 3 * margin,
        Rgb([250, 250, 248]),
    );
    image::imageops::overlay(&mut page, front, i64::from(margin), i64::from(margin));
    image::imageops::overlay(
        &mut page,
        back,
        i64::from(margin),
        i64::from(2 * margin + front.height()),
    );
    // A flatbed scan is slightly soft.
    let page = image::imageops::blur(&page, 0.7);
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
        .encode_image(&page)
        .expect("JPEG encodes");
    bytes
}

/// How the card reaches the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// A flatbed scan: the card on white, straight within a degree, slightly soft.
    Scan,
    /// A phone photo: the card on a desk, in perspective, tilted, unevenly lit, noisy, soft.
    Photo,
}

/// The card as captured, then turned by `quarter_turns` x 90 degrees clockwise, as JPEG
/// bytes.
pub fn capture(
    card: &RgbImage,
    how: Capture,
    quarter_turns: u32,
    rng: &mut fastrand::Rng,
) -> Vec<u8> {
    let (cw, ch) = (card.width() as f32, card.height() as f32);
    let (out_w, out_h, fill, tilt, jitter, quality) = match how {
        Capture::Scan => (1240u32, 860u32, [250u8, 250, 248], 1.0f32, 0.0f32, 88u8),
        Capture::Photo => (
            1280,
            960,
            [rng.u8(60..120), rng.u8(50..90), rng.u8(30..70)],
            6.0,
            0.04,
            72,
        ),
    };
    // Where the card's corners land: centred, 70-85 % of the width, tilted, each corner
    // pushed by up to `jitter` of the card width (perspective).
    let scale = out_w as f32 * (0.70 + 0.15 * rng.f32()) / cw;
    let angle = ((rng.f32() * 2.0 - 1.0) * tilt).to_radians();
    let (cx, cy) = (
        out_w as f32 / 2.0 + (rng.f32() - 0.5) * 40.0,
        out_h as f32 / 2.0 + (rng.f32() - 0.5) * 40.0,
    );
    let corners = [(0.0, 0.0), (cw, 0.0), (cw, ch), (0.0, ch)];
    let placed: Vec<(f32, f32)> = corners
        .iter()
        .map(|&(x, y)| {
            let (dx, dy) = ((x - cw / 2.0) * scale, (y - ch / 2.0) * scale);
            let (rx, ry) = (
                dx * angle.cos() - dy * angle.sin(),
                dx * angle.sin() + dy * angle.cos(),
            );
            let j = jitter * cw * scale;
            (
                cx + rx + (rng.f32() * 2.0 - 1.0) * j,
                cy + ry + (rng.f32() * 2.0 - 1.0) * j,
            )
        })
        .collect();
    // Output pixel -> card pixel.
    let back = homography(&placed, &corners).expect("a card's corners are in general position");
    let light = (rng.f32() * 0.3 + 0.75, rng.f32() * 0.3 + 0.85);
    let mut photo = RgbImage::from_fn(out_w, out_h, |x, y| {
        let (u, v) = apply(&back, x as f32 + 0.5, y as f32 + 0.5);
        let base = if u >= 0.0 && v >= 0.0 && u < cw - 1.0 && v < ch - 1.0 {
            bilinear(card, u, v)
        } else {
            fill.map(f32::from)
        };
        let gain = match how {
            Capture::Scan => 1.0,
            Capture::Photo => light.0 + (light.1 - light.0) * x as f32 / out_w as f32,
        };
        Rgb(base.map(|c| (c * gain).clamp(0.0, 255.0) as u8))
    });
    let sigma = match how {
        Capture::Scan => 0.6,
        Capture::Photo => 0.8 + rng.f32() * 0.6,
    };
    photo = image::imageops::blur(&photo, sigma);
    if how == Capture::Photo {
        for p in photo.pixels_mut() {
            let n = rng.i16(-8..=8);
            p.0 = p.0.map(|c| (i16::from(c) + n).clamp(0, 255) as u8);
        }
    }
    let turned = match quarter_turns % 4 {
        1 => image::imageops::rotate90(&photo),
        2 => image::imageops::rotate180(&photo),
        3 => image::imageops::rotate270(&photo),
        _ => photo,
    };
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
        .encode_image(&turned)
        .expect("JPEG encodes");
    bytes
}

fn bilinear(img: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let p = |x: u32, y: u32| {
        img.get_pixel(x.min(img.width() - 1), y.min(img.height() - 1))
            .0
    };
    let (a, b, c, d) = (p(x0, y0), p(x0 + 1, y0), p(x0, y0 + 1), p(x0 + 1, y0 + 1));
    let mut out = [0.0; 3];
    for i in 0..3 {
        let top = f32::from(a[i]) * (1.0 - fx) + f32::from(b[i]) * fx;
        let bottom = f32::from(c[i]) * (1.0 - fx) + f32::from(d[i]) * fx;
        out[i] = top * (1.0 - fy) + bottom * fy;
    }
    out
}

/// The 3x3 homography taking the four `from` points to the four `to` points.
fn homography(from: &[(f32, f32)], to: &[(f32, f32)]) -> Option<[f64; 9]> {
    let mut a = [[0f64; 9]; 8];
    for i in 0..4 {
        let (x, y) = (f64::from(from[i].0), f64::from(from[i].1));
        let (u, v) = (f64::from(to[i].0), f64::from(to[i].1));
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    // Gaussian elimination with partial pivoting on the 8x8 system.
    for col in 0..8 {
        let pivot = (col..8).max_by(|&r, &s| a[r][col].abs().total_cmp(&a[s][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        for row in 0..8 {
            if row != col {
                let f = a[row][col] / a[col][col];
                let pivot_row = a[col];
                for (cell, p) in a[row].iter_mut().zip(pivot_row).skip(col) {
                    *cell -= f * p;
                }
            }
        }
    }
    let h: Vec<f64> = (0..8).map(|i| a[i][8] / a[i][i]).collect();
    Some([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0])
}

fn apply(h: &[f64; 9], x: f32, y: f32) -> (f32, f32) {
    let (x, y) = (f64::from(x), f64::from(y));
    let w = h[6] * x + h[7] * y + h[8];
    (
        ((h[0] * x + h[1] * y + h[2]) / w) as f32,
        ((h[3] * x + h[4] * y + h[5]) / w) as f32,
    )
}

/// A synthetic CNIE-style card: its fields, and both sides as a flatbed scan gives them
/// (upright, decoded).
#[derive(Debug, Clone)]
pub struct Cnie {
    /// What is printed and encoded in the zone.
    pub fields: CardFields,
    /// The front: portrait, names, number.
    pub front: RgbImage,
    /// The back: the TD1 zone.
    pub back: RgbImage,
}

impl Cnie {
    /// The card of `portrait`'s holder, expiring in `expiry_year`; `seed` draws the fields.
    pub fn new(portrait: &RgbImage, expiry_year: u32, seed: u64) -> Cnie {
        let fonts = Fonts::load();
        let mut rng = fastrand::Rng::with_seed(seed);
        let fields = CardFields::random(&mut rng, expiry_year);
        let front = render_front(&fonts, &fields, portrait, &mut rng);
        let back = render_back(&fonts, &fields, &mut rng);
        let scan = |side: &RgbImage, rng: &mut fastrand::Rng| {
            image::load_from_memory(&capture(side, Capture::Scan, 0, rng))
                .expect("the scan decodes")
                .to_rgb8()
        };
        Cnie {
            front: scan(&front, &mut rng),
            back: scan(&back, &mut rng),
            fields,
        }
    }
}
