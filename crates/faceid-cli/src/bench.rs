//! `faceid bench`: per-stage latency on one image at 1 and 2 inference threads.
//! A command, not a timed test: results go to BENCHMARKS.md with the machine they ran on.

use faceid_gallery::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use faceid_core::sampling::frame_around;
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
        if samples.is_empty() {
            return Latency {
                min_ms: 0.0,
                median_ms: 0.0,
                p95_ms: 0.0,
            };
        }
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
    let frame = frame_around(image, face.bbox, 3.2, 640, 480)?;
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
        let aligned = engine.align(&image, &face)?;
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
            time(runs, || Ok(engine.align(&image, &face).map(drop)?))?,
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
        // The liveness cues a sequence adds on top of its frames' analyses: the planarity
        // cue over 12 frames (the most it compares), and the challenge tracker per frame.
        let analysis = engine.analyze(&image)?;
        let frames: Vec<Vec<faceid_core::geometry::Point>> = (0..12)
            .map(|i| {
                let shift = i as f32 * 1.5;
                analysis
                    .face
                    .landmarks
                    .points()
                    .iter()
                    .map(|p| faceid_core::geometry::Point::new(p.x + shift, p.y - shift * 0.5))
                    .collect()
            })
            .collect();
        let refs: Vec<faceid_core::planarity::FaceView<'_>> = frames
            .iter()
            .map(|landmarks| faceid_core::planarity::FaceView {
                landmarks,
                texture: analysis.texture.as_ref(),
            })
            .collect();
        stages.insert(
            "planarity (12 frames, texture followed)",
            time(runs, || {
                std::hint::black_box(faceid_core::planarity::measure(&refs));
                Ok(())
            })?,
        );
        let challenge = faceid_core::Challenge {
            id: "bench".into(),
            steps: vec![faceid_core::Step::TurnLeft, faceid_core::Step::Blink],
            issued_at_ms: 0,
            expires_at_ms: u64::MAX,
        };
        let mut tracker =
            engine.challenge_tracker(challenge, faceid_core::ChallengeConfig::default());
        let mut at = 0;
        stages.insert(
            "challenge tracker (1 frame)",
            time(runs, || {
                at += 1;
                let observation = faceid_core::Observation::face(at, &analysis);
                std::hint::black_box(tracker.observe(&observation));
                Ok(())
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
        "{:<10} {:>28} {:>12} {:>12} {:>12}",
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
                "{:<10} {:>28} {:>12.2} {:>12.2} {:>12.2}",
                n, stage, l.min_ms, l.median_ms, l.p95_ms
            );
        }
    }
    out
}

/// Results of the 1:N benchmark.
#[derive(Debug, Serialize)]
pub struct GalleryBenchReport {
    /// Templates in the synthetic gallery.
    pub templates: usize,
    /// Probe searches timed.
    pub queries: usize,
    /// Threads the index scan used.
    pub threads: usize,
    /// Bytes held by the int8 index.
    pub index_memory_bytes: usize,
    /// Seconds to generate and index the gallery.
    pub build_seconds: f64,
    /// Index search: int8 scan for 32 candidates, then exact float re-rank.
    pub search: Latency,
    /// Brute-force exact float search, for comparison.
    pub exact: Latency,
    /// Share of probes where the index returns the same best template as exact search.
    pub recall_at_1: f64,
    /// Mean cosine between a probe and the template it was made from.
    pub mean_genuine_cosine: f64,
}

/// Deterministic normal samples (xorshift64* + Box-Muller).
struct Normal(u64);

impl Normal {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn sample(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}

const EFFECTIVE_DIM: usize = 40;

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|a| *a /= n);
    v
}

/// A synthetic template: a point of a 40-dimensional subspace of R^512 plus a little
/// isotropic noise. Real templates of different people have cosine sd ~0.16 (about
/// 1/sqrt(40)); uniformly random 512-d vectors would have 0.044 and make 1:N trivially easy.
fn synthetic(basis: &[Vec<f32>], z: &[f32], rng: &mut Normal) -> Vec<f32> {
    let dim = basis[0].len();
    let mut v = vec![0f32; dim];
    for (b, &zi) in basis.iter().zip(z) {
        v.iter_mut().zip(b).for_each(|(a, &x)| *a += zi * x);
    }
    let v = unit(v);
    let noise = 0.1 / (dim as f32).sqrt();
    unit(v.into_iter().map(|a| a + noise * rng.sample()).collect())
}

/// Benchmarks 1:N search over `n` synthetic templates with `queries` probes, each a
/// template of the gallery moved to cosine ~0.75 (a typical genuine score).
pub fn gallery(n: usize, queries: usize, seed: u64) -> Result<GalleryBenchReport> {
    use faceid_gallery::index::QuantizedIndex;
    let dim = faceid_core::template::TEMPLATE_DIM;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let start = Instant::now();
    let mut rng = Normal(seed | 1);
    let basis: Vec<Vec<f32>> = (0..EFFECTIVE_DIM)
        .map(|_| unit((0..dim).map(|_| rng.sample()).collect()))
        .collect();
    let mut latent: Vec<Vec<f32>> = Vec::with_capacity(n);
    let mut exact_rows: Vec<f32> = Vec::with_capacity(n * dim);
    let mut index = QuantizedIndex::new(dim);
    index.reserve(n);
    let subject: std::sync::Arc<str> = std::sync::Arc::from("synthetic");
    for i in 0..n {
        let z: Vec<f32> = (0..EFFECTIVE_DIM).map(|_| rng.sample()).collect();
        let v = synthetic(&basis, &z, &mut rng);
        index.add(i as u64, subject.clone(), &v);
        exact_rows.extend_from_slice(&v);
        if i < queries * 50 {
            latent.push(z);
        }
    }
    let build_seconds = start.elapsed().as_secs_f64();
    let exact_best = |q: &[f32]| -> (usize, f32) {
        exact_rows
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, row)| (i, row.iter().zip(q).map(|(a, b)| a * b).sum::<f32>()))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0))
    };
    let (mut search_ms, mut exact_ms) = (Vec::new(), Vec::new());
    let (mut agree, mut genuine) = (0usize, 0f64);
    for q in 0..queries {
        let source = (q * 37) % latent.len().max(1);
        let z: Vec<f32> = latent[source]
            .iter()
            .map(|&a| a + 0.9 * rng.sample())
            .collect();
        let probe = synthetic(&basis, &z, &mut rng);
        genuine += f64::from(
            exact_rows[source * dim..(source + 1) * dim]
                .iter()
                .zip(&probe)
                .map(|(a, b)| a * b)
                .sum::<f32>(),
        );
        let t = Instant::now();
        let hits = index.search(&probe, 32, threads);
        let best = hits
            .iter()
            .map(|h| {
                let row = &exact_rows[h.tag as usize * dim..(h.tag as usize + 1) * dim];
                (
                    h.tag as usize,
                    row.iter().zip(&probe).map(|(a, b)| a * b).sum::<f32>(),
                )
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        search_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let truth = exact_best(&probe);
        exact_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if best.is_some_and(|b| b.0 == truth.0) {
            agree += 1;
        }
    }
    Ok(GalleryBenchReport {
        templates: n,
        queries,
        threads,
        index_memory_bytes: index.memory_bytes(),
        build_seconds,
        search: Latency::of(search_ms),
        exact: Latency::of(exact_ms),
        recall_at_1: agree as f64 / queries.max(1) as f64,
        mean_genuine_cosine: genuine / queries.max(1) as f64,
    })
}

/// The human-readable 1:N table.
pub fn render_gallery(r: &GalleryBenchReport) -> String {
    format!(
        "faceid bench --gallery {}: {} probes, {} threads, built in {:.1} s\n\
         index memory {:.1} MiB ({:.0} bytes per template)\n\
         index search (int8 scan + exact re-rank of 32): min {:.2} / median {:.2} / p95 {:.2} ms\n\
         exact brute force (f32):                      min {:.2} / median {:.2} / p95 {:.2} ms\n\
         recall@1 of the index against exact search: {:.2} % (mean genuine cosine {:.3})\n",
        r.templates,
        r.queries,
        r.threads,
        r.build_seconds,
        r.index_memory_bytes as f64 / (1024.0 * 1024.0),
        r.index_memory_bytes as f64 / r.templates.max(1) as f64,
        r.search.min_ms,
        r.search.median_ms,
        r.search.p95_ms,
        r.exact.min_ms,
        r.exact.median_ms,
        r.exact.p95_ms,
        r.recall_at_1 * 100.0,
        r.mean_genuine_cosine
    )
}

/// What `faceid bench --sync-push N --sync-pull M` measured.
#[derive(Debug, Serialize)]
pub struct SyncBenchReport {
    /// Enrollments waiting in the kiosk's outbox before the push.
    pub pending: usize,
    /// Seconds to push them all (batches of 100, each applied and acknowledged durably).
    pub push_seconds: f64,
    /// Subjects the server held for the fresh kiosk's pull.
    pub pulled_subjects: usize,
    /// Seconds for a fresh kiosk to pull them all (pages of 1000, each applied in one
    /// transaction with its cursor).
    pub pull_seconds: f64,
    /// In-memory index of the kiosk after the pull, bytes.
    pub kiosk_index_bytes: usize,
    /// Seconds spent seeding the server (not part of the figures).
    pub seed_seconds: f64,
}

/// Measures sync over real HTTP on loopback against an in-process server on a sled
/// gallery: a kiosk pushing `pending` queued enrollments, then a fresh kiosk pulling the
/// server's `pull` subjects (seeded directly, with synthetic templates) plus the pushed
/// ones.
pub fn sync(models: &Path, pending: usize, pull: usize) -> Result<SyncBenchReport> {
    use faceid_gallery::{
        AuditContext, ChangePage, Gallery, GalleryKey, GalleryOptions, NewSubject, PulledChange,
        RemoteSubject, Subject,
    };
    let engine = std::sync::Arc::new(Engine::load(models, faceid_core::EngineConfig::default())?);
    let model = engine.model_id().to_string();
    let mut rng = Normal(0x5EED);
    let mut template = || -> Result<faceid_core::Template> {
        let v = unit(
            (0..faceid_core::template::TEMPLATE_DIM)
                .map(|_| rng.sample())
                .collect(),
        );
        Ok(faceid_core::Template::new(model.clone(), v)?)
    };
    let root = tempfile::tempdir()?;
    let key = GalleryKey::generate();
    let ctx = AuditContext {
        actor: "bench".into(),
        request_id: "bench".into(),
    };

    // The server's gallery, seeded page by page as a pull would write it.
    let seeded = Instant::now();
    let server_gallery = std::sync::Arc::new(Gallery::open(&root.path().join("server"), &key)?);
    let mut seq = 0;
    while seq < pull {
        let mut page = ChangePage::default();
        for _ in 0..1000.min(pull - seq) {
            seq += 1;
            let t = template()?;
            page.changes.push(PulledChange::Enroll {
                seq: seq as u64,
                remote: RemoteSubject {
                    subject: Subject {
                        id: format!("seed-{seq:07}"),
                        display_name: None,
                        created_at_ms: 0,
                        updated_at_ms: 0,
                        source: Some("bench".into()),
                        template_tags: vec![0],
                        template_models: vec![model.clone()],
                        has_image: false,
                        origin: format!("seed-origin-{seq}"),
                        document_tag: None,
                        document_number: None,
                    },
                    templates: faceid_gallery::sync::encode_templates(&[t]),
                },
            });
        }
        page.next_cursor = seq as u64;
        server_gallery.apply_page(&page, &ctx)?;
    }
    let seed_seconds = seeded.elapsed().as_secs_f64();

    let data = root.path().join("server-data");
    std::fs::create_dir_all(&data)?;
    let keys = faceid_server::keys::ApiKeys::load(&data)?;
    let token = keys.issue_device("bench")?.key;
    let limits = faceid_server::ServerLimits::default();
    let state = faceid_server::AppState::new(engine, server_gallery, keys, &limits);
    let router = faceid_server::app(state, &limits);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let base = format!("http://{}", listener.local_addr()?);
    runtime.spawn(faceid_server::serve(
        listener,
        router,
        std::future::pending(),
    ));

    let kiosk = |name: &str| -> Result<std::sync::Arc<Gallery>> {
        Ok(std::sync::Arc::new(Gallery::open_with(
            &root.path().join(name),
            &key,
            GalleryOptions { outbox: true },
        )?))
    };
    let pusher = kiosk("kiosk-push")?;
    for i in 0..pending {
        pusher.enroll(
            &NewSubject {
                id: format!("kiosk-{i:05}"),
                ..NewSubject::default()
            },
            &[template()?],
            None,
            &ctx,
        )?;
    }
    let client =
        faceid_sync::SyncClient::new(pusher.clone(), faceid_sync::SyncConfig::new(&base, &token))?;
    let pushed = Instant::now();
    let report = runtime.block_on(client.push())?;
    let push_seconds = pushed.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.pushed == pending && pusher.pending() == 0,
        "push incomplete"
    );

    let fresh = kiosk("kiosk-fresh")?;
    let client =
        faceid_sync::SyncClient::new(fresh.clone(), faceid_sync::SyncConfig::new(&base, &token))?;
    let pulled = Instant::now();
    runtime.block_on(client.pull())?;
    let pull_seconds = pulled.elapsed().as_secs_f64();
    anyhow::ensure!(
        fresh.len() == pull + pending,
        "pull incomplete: {}",
        fresh.len()
    );
    let report = SyncBenchReport {
        pending,
        push_seconds,
        pulled_subjects: fresh.len(),
        pull_seconds,
        kiosk_index_bytes: fresh.index_memory_bytes(),
        seed_seconds,
    };
    runtime.shutdown_background();
    Ok(report)
}

/// Text form of [`SyncBenchReport`].
pub fn render_sync(r: &SyncBenchReport) -> String {
    format!(
        "push of {} pending enrollments: {:.2} s ({:.0} events/s)\npull of {} subjects to a fresh kiosk: {:.2} s ({:.0} subjects/s), kiosk index {:.1} MiB\n(seeding the server took {:.1} s, not counted)\n",
        r.pending,
        r.push_seconds,
        r.pending as f64 / r.push_seconds.max(1e-9),
        r.pulled_subjects,
        r.pull_seconds,
        r.pulled_subjects as f64 / r.pull_seconds.max(1e-9),
        r.kiosk_index_bytes as f64 / (1024.0 * 1024.0),
        r.seed_seconds
    )
}
