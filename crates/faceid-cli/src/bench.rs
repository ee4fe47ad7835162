//! `faceid bench`: per-stage latency on one image at 1 and 2 inference threads.
//! A command, not a timed test: results go to BENCHMARKS.md with the machine they ran on.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use faceid_core::geometry::BoundingBox;
use faceid_core::sampling::crop_resized;
use faceid_core::{Engine, EngineConfig, Image};
use serde::Serialize;

/// Latency summary of one stage, milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Fastest run.
    pub min_ms: f64,
    /// Median run.
    pub median_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
}

impl Latency {
    fn of(mut samples: Vec<f64>) -> Latency {
        samples.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
        Latency {
            min_ms: samples[0],
            median_ms: at(0.5),
            p95_ms: at(0.95),
        }
    }
}

/// Results at one thread count.
#[derive(Debug, Serialize)]
pub struct ThreadResult {
    /// Each stage alone.
    pub stages: BTreeMap<&'static str, Latency>,
    /// The whole probe pipeline (detect, landmarks, align, embed, liveness, quality) as
    /// `Engine::analyze` runs it; decoding excluded.
    pub pipeline: Latency,
}

/// The bench report.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// Image benchmarked.
    pub image: String,
    /// Whether a 640x480 kiosk frame was cut from it.
    pub kiosk_frame: bool,
    /// Its size.
    pub width: u32,
    /// Its size.
    pub height: u32,
    /// Timed runs per stage.
    pub runs: usize,
    /// Logical CPUs of the machine.
    pub cpus: usize,
    /// Results keyed by inference threads.
    pub threads: BTreeMap<String, ThreadResult>,
}

fn time(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<Latency> {
    for _ in 0..3.min(runs) {
        f()?;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        f()?;
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(Latency::of(samples))
}

/// A 640x480 kiosk-camera frame cut from `image` around its largest face: a 4:3 window
/// 3.2 face-widths wide, resized to 640x480, encoded as JPEG (quality 90) so the decode
/// stage measures what a webcam frame costs.
pub fn kiosk_frame(engine: &Engine, image: &Image) -> Result<Vec<u8>> {
    let face = *engine
        .detect(image)?
        .first()
        .context("no face in the bench image")?;
    let c = face.bbox.center();
    let w = face.bbox.width() * 3.2;
    let region = BoundingBox::new(
        c.x - w / 2.0,
        c.y - w * 3.0 / 8.0,
        c.x + w / 2.0,
        c.y + w * 3.0 / 8.0,
    );
    let frame = crop_resized(image, region, 640, 480);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode(frame.rgb(), 640, 480, image::ExtendedColorType::Rgb8)
        .context("encoding the bench frame")?;
    Ok(jpeg)
}

/// Benchmarks every stage on `image_path` (cut to a 640x480 kiosk frame when `frame`)
/// with `runs` timed runs per stage.
pub fn run(
    models: &Path,
    image_path: &Path,
    frame: bool,
    runs: usize,
    thread_counts: &[usize],
) -> Result<BenchReport> {
    let runs = runs.max(1);
    let mut bytes =
        std::fs::read(image_path).with_context(|| format!("reading {}", image_path.display()))?;
    if frame {
        let engine = Engine::load(models, EngineConfig::default())?;
        bytes = kiosk_frame(&engine, &engine.decode(&bytes)?)?;
    }
    let mut threads = BTreeMap::new();
    let mut size = (0, 0);
    for &n in thread_counts {
        let config = EngineConfig {
            inference_threads: n,
            ..EngineConfig::default()
        };
        let engine = Engine::load(models, config)?;
        let image = engine.decode(&bytes)?;
        size = (image.width(), image.height());
        let face = engine.single_face(&image)?;
        let detection = *engine
            .detect(&image)?
            .first()
            .context("no face in the bench image")?;
        let aligned = engine.align(&image, &face);
        let mut stages = BTreeMap::new();
        stages.insert(
            "decode",
            time(runs, || Ok(engine.decode(&bytes).map(drop)?))?,
        );
        stages.insert(
            "detect",
            time(runs, || Ok(engine.detect(&image).map(drop)?))?,
        );
        stages.insert(
            "landmarks",
            time(runs, || Ok(engine.locate(&image, &detection).map(drop)?))?,
        );
        stages.insert(
            "align",
            time(runs, || {
                engine.align(&image, &face);
                Ok(())
            })?,
        );
        stages.insert(
            "embed",
            time(runs, || Ok(engine.embed(&aligned).map(drop)?))?,
        );
        stages.insert(
            "liveness",
            time(runs, || Ok(engine.liveness(&image, &face).map(drop)?))?,
        );
        stages.insert(
            "quality",
            time(runs, || {
                Ok(engine.quality(&image, &face, &aligned).map(drop)?)
            })?,
        );
        let pipeline = time(runs, || Ok(engine.analyze(&image).map(drop)?))?;
        threads.insert(n.to_string(), ThreadResult { stages, pipeline });
    }
    Ok(BenchReport {
        image: image_path.display().to_string(),
        kiosk_frame: frame,
        width: size.0,
        height: size.1,
        runs,
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        threads,
    })
}

/// The human-readable table.
pub fn render(report: &BenchReport) -> String {
    use std::fmt::Write;
    let mut out = format!(
        "faceid bench  {} ({}x{}), {} runs per stage, {} CPUs\n",
        report.image, report.width, report.height, report.runs, report.cpus
    );
    let _ = writeln!(
        out,
        "{:<10} {:>8} {:>12} {:>12} {:>12}",
        "threads", "stage", "min ms", "median ms", "p95 ms"
    );
    for (n, result) in &report.threads {
        for (stage, l) in result
            .stages
            .iter()
            .map(|(k, v)| (*k, v))
            .chain([("pipeline", &result.pipeline)])
        {
            let _ = writeln!(
                out,
                "{:<10} {:>8} {:>12.2} {:>12.2} {:>12.2}",
                n, stage, l.min_ms, l.median_ms, l.p95_ms
            );
        }
    }
    out
}
