//! `faceid eval`'s presentation-attack section, in ISO/IEC 30107-3 terms, over sequences:
//! the shared set's per-subject frame sets (`spoof/<class>/<source>`, grouped by the
//! MANIFEST's `subject=`), its selfie videos (`video/live`, `video/spoof`), and planar attacks
//! the evaluation simulates itself from the print and card images.
//!
//! **Your own recordings.** A folder `pad/` beside them (or alone) is read too:
//! `pad/live/<subject>/<clip>` for bona fide recordings and `pad/attack/<species>/<clip>` for
//! attacks (species: the folder's name, such as `print`, `replay`, `mask`), each clip a video
//! or an image. A sidecar `<clip>.json` (what `faceid challenge new --json` prints) holds the
//! challenge that was shown during the recording; the clip is then tracked against it and
//! its verdict joins the cues (at the configured preset). So a bank measures BPCER and APCER
//! on its own kiosks' recordings with `faceid eval DIR`.
//!
//! Every sequence is judged by the engine's fused rule (`Liveness::judge`: passive network
//! accumulated, planarity over the landmarks and their texture) at each preset. A sequence in which no frame
//! shows a face gets no decision: it counts towards APNRR / BPNRR, not APCER / BPCER.
//!
//! **Simulated planar attacks.** A print or a card is a plane, and the images of a plane
//! from any two camera positions are exactly related by a homography. Each simulated
//! sequence takes one print or card image, scales it so the face is kiosk-sized (70-110 px
//! between the eyes), and renders six views of it turned from one side to the other (12-35
//! degrees each way, as a head turns for a challenge), tilted, rolled, moved and brought
//! closer along a random path (`faceid_core::evaluation::planar_view`). This is physically
//! faithful for the geometry; it does not simulate paper texture, glare or bending, so the
//! passive network's figures on simulated attacks say less than the planarity figures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use faceid_core::evaluation::{PadRates, PlanarPose, planar_view};
use faceid_core::geometry::Point;
use faceid_core::planarity::{self, FaceView, Texture};
use faceid_core::{Engine, Image, Liveness, LivenessAccumulator, LivenessPreset};
use serde::Serialize;

/// The presets every figure is given at.
const PRESETS: [LivenessPreset; 3] = [
    LivenessPreset::Soft,
    LivenessPreset::Regular,
    LivenessPreset::Hardened,
];
/// Views per simulated attack.
const SIMULATED_FRAMES: usize = 6;
/// Seed of the simulated attacks (reproducible figures).
const SEED: u64 = 30107;

/// The presentation-attack report.
#[derive(Debug, Serialize)]
pub struct PadReport {
    /// Per attack species, per preset: APCER, BPCER, APNRR, BPNRR and their counts (BPCER
    /// and BPNRR over every bona fide sequence, the same for each species).
    pub species: BTreeMap<String, BTreeMap<String, PadRates>>,
    /// Per bona fide source, per preset.
    pub bona_fide: BTreeMap<String, BTreeMap<String, PadRates>>,
    /// The simulated species with the passive network switched off (planarity alone).
    pub geometry_only: BTreeMap<String, BTreeMap<String, PadRates>>,
    /// Every real sequence with its cues and verdicts (simulated ones are only counted).
    pub sequences: Vec<SequenceOutcome>,
    /// Simulated attacks generated.
    pub simulated: usize,
    /// How they were generated.
    pub simulation: &'static str,
}

/// One real sequence and what the rule made of it.
#[derive(Debug, Clone, Serialize)]
pub struct SequenceOutcome {
    /// Source (`nuaa`, `apfol`, `video`, ...).
    pub source: String,
    /// `bona_fide` or the attack species (`print`, `replay`).
    pub species: String,
    /// Subject or clip.
    pub subject: String,
    /// Frames given.
    pub frames: usize,
    /// Frames with a face.
    pub frames_with_face: usize,
    /// Accumulated passive live probability.
    pub passive: Option<f32>,
    /// Planarity depth: the nose tip's parallax, in IODs (`None`: fewer than three frames
    /// with a face).
    pub depth: Option<f32>,
    /// How much the face turned against the camera (planarity deformation).
    pub deformation: Option<f32>,
    /// Verdict per preset: `LIVE`, `SPOOF_SUSPECTED`, `FLAT_FACE` or `NO_FACE`.
    pub verdicts: BTreeMap<String, String>,
}

/// What the rule saw of one sequence: `None` when no frame had a face.
struct Judged {
    liveness: Option<Liveness>,
    frames: usize,
    with_face: usize,
}

/// Runs the section; `None` when the folder has neither `spoof/` nor `video/`.
pub fn run(
    engine: &Engine,
    root: &Path,
    simulated: usize,
    progress: crate::eval::Progress<'_>,
) -> anyhow::Result<Option<PadReport>> {
    if !["spoof", "video", "pad"]
        .iter()
        .any(|d| root.join(d).is_dir())
    {
        return Ok(None);
    }
    let labels = crate::eval::manifest_labels(root);
    let real = real_sequences(root, &labels);
    let mut sequences = Vec::new();
    let mut outcomes: Vec<(String, String, Judged)> = Vec::new();
    let total = real.len() + simulated;
    for (i, sequence) in real.into_iter().enumerate() {
        progress(i + 1, total, "presentation attacks");
        let judged = match &sequence.challenge {
            Some(file) => judge_challenge(engine, &sequence, file),
            None => judge(engine, &sequence.frames(engine)),
        };
        sequences.push(outcome(&sequence, &judged));
        outcomes.push((sequence.source.clone(), sequence.species.clone(), judged));
    }
    let pictures = attack_pictures(root, &labels);
    let mut rng = fastrand::Rng::with_seed(SEED);
    let mut simulated_outcomes: Vec<(String, Judged)> = Vec::new();
    if !pictures.is_empty() {
        for i in 0..simulated {
            progress(outcomes.len() + i + 1, total, "simulated planar attacks");
            let (species, path) = &pictures[rng.usize(..pictures.len())];
            let frames = simulate(engine, path, &mut rng).unwrap_or_default();
            simulated_outcomes.push((species.clone(), judge(engine, &frames)));
        }
    }
    let bona_fide: Vec<&Judged> = outcomes
        .iter()
        .filter(|(_, s, _)| s == "bona_fide")
        .map(|(_, _, j)| j)
        .collect();
    let mut species_groups: BTreeMap<String, Vec<&Judged>> = BTreeMap::new();
    for (_, species, judged) in &outcomes {
        if species != "bona_fide" {
            species_groups
                .entry(species.clone())
                .or_default()
                .push(judged);
        }
    }
    let mut geometry_groups: BTreeMap<String, Vec<&Judged>> = BTreeMap::new();
    for (species, judged) in &simulated_outcomes {
        species_groups
            .entry(species.clone())
            .or_default()
            .push(judged);
        geometry_groups
            .entry(species.clone())
            .or_default()
            .push(judged);
    }
    let per_preset = |attacks: &[&Judged], live: &[&Judged], passive: bool| {
        PRESETS
            .iter()
            .map(|&p| (p.name().to_string(), rates(attacks, live, p, passive)))
            .collect::<BTreeMap<_, _>>()
    };
    let species = species_groups
        .iter()
        .map(|(name, attacks)| (name.clone(), per_preset(attacks, &bona_fide, true)))
        .collect();
    let geometry_only = geometry_groups
        .iter()
        .map(|(name, attacks)| (name.clone(), per_preset(attacks, &bona_fide, false)))
        .collect();
    let mut by_source: BTreeMap<String, Vec<&Judged>> = BTreeMap::new();
    for (source, species, judged) in &outcomes {
        if species == "bona_fide" {
            by_source.entry(source.clone()).or_default().push(judged);
        }
    }
    let bona_fide_sources = by_source
        .iter()
        .map(|(name, live)| (name.clone(), per_preset(&[], live, true)))
        .collect();
    Ok(Some(PadReport {
        species,
        bona_fide: bona_fide_sources,
        geometry_only,
        sequences,
        simulated: simulated_outcomes.len(),
        simulation: "planar views of print and card images (homographies from random turns, tilts, rolls, moves and approaches; 6 views each; face 70-110 px between the eyes)",
    }))
}

/// One real sequence to judge: image files of one subject, or one video.
struct RealSequence {
    source: String,
    species: String,
    subject: String,
    files: Vec<PathBuf>,
    /// The challenge shown during the recording (`pad/` clips with a sidecar).
    challenge: Option<PathBuf>,
}

impl RealSequence {
    fn frames(&self, engine: &Engine) -> Vec<Image> {
        self.recording(engine).into_iter().map(|(_, i)| i).collect()
    }

    /// Every frame of every file with its time in milliseconds (a video's own clock; 0 for
    /// an image), unreadable files skipped.
    fn recording(&self, engine: &Engine) -> Vec<(u64, Image)> {
        self.files
            .iter()
            .flat_map(|file| {
                crate::commands::load_frames(engine, file)
                    .map(|(images, times)| {
                        times
                            .into_iter()
                            .map(|t| (t * 1000.0).round().max(0.0) as u64)
                            .zip(images)
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// A `pad/` clip tracked against the challenge in its sidecar; no decision when the
/// sidecar is unreadable or no frame shows a face.
fn judge_challenge(engine: &Engine, sequence: &RealSequence, file: &Path) -> Judged {
    let recording = sequence.recording(engine);
    let challenge = std::fs::read_to_string(file)
        .ok()
        .and_then(|text| serde_json::from_str::<faceid_core::Challenge>(&text).ok());
    let frames: Vec<(u64, &Image)> = recording.iter().map(|(t, i)| (*t, i)).collect();
    let tracked = challenge.and_then(|c| {
        engine
            .track_challenge(c, faceid_core::ChallengeConfig::default(), &frames)
            .ok()
    });
    Judged {
        liveness: tracked.as_ref().map(|(_, probe)| probe.liveness),
        frames: recording.len(),
        with_face: tracked.map_or(0, |(_, probe)| probe.frames_with_face),
    }
}

/// The species of a MANIFEST label: `bona_fide` for `live|...`, else the attack type.
fn species_of(label: Option<&String>, live: bool) -> String {
    if live {
        return "bona_fide".into();
    }
    label
        .and_then(|l| l.split('|').next())
        .and_then(|kind| kind.strip_prefix("spoof:"))
        .map(|t| t.split(['(', '/']).next().unwrap_or(t).to_string())
        .unwrap_or_else(|| "replay".into())
}

fn real_sequences(
    root: &Path,
    labels: &std::collections::HashMap<String, String>,
) -> Vec<RealSequence> {
    let relative = |p: &Path| {
        p.strip_prefix(root)
            .unwrap_or(p)
            .to_string_lossy()
            .replace('\\', "/")
    };
    let mut groups: BTreeMap<(String, String, String), Vec<PathBuf>> = BTreeMap::new();
    for (class, live) in [("live", true), ("spoof", false)] {
        for source in crate::eval::subdirectories(&root.join("spoof").join(class)) {
            let name = file_name(&source);
            for file in crate::eval::image_files(&source) {
                let label = labels.get(&relative(&file));
                let subject = label
                    .and_then(|l| l.split('|').find_map(|kv| kv.strip_prefix("subject=")))
                    .unwrap_or(&name)
                    .to_string();
                groups
                    .entry((name.clone(), species_of(label, live), subject))
                    .or_default()
                    .push(file);
            }
        }
        for clip in crate::eval::image_files(&root.join("video").join(class)) {
            let label = labels.get(&relative(&clip));
            groups
                .entry(("video".into(), species_of(label, live), file_name(&clip)))
                .or_default()
                .push(clip);
        }
    }
    let mut sequences: Vec<RealSequence> = groups
        .into_iter()
        .map(|((source, species, subject), files)| RealSequence {
            source,
            species,
            subject,
            files,
            challenge: None,
        })
        .collect();
    // Recordings in the documented `pad/` layout, one sequence per clip.
    for (class, live) in [("live", true), ("attack", false)] {
        for folder in crate::eval::subdirectories(&root.join("pad").join(class)) {
            let name = file_name(&folder);
            for clip in crate::eval::image_files(&folder) {
                if clip.extension().is_some_and(|e| e == "json") {
                    continue;
                }
                let sidecar = clip.with_extension(format!(
                    "{}.json",
                    clip.extension().map_or("", |e| e.to_str().unwrap_or(""))
                ));
                let plain = clip.with_extension("json");
                let challenge = [sidecar, plain].into_iter().find(|p| p.is_file());
                sequences.push(RealSequence {
                    source: if live {
                        format!("pad:{name}")
                    } else {
                        "pad".into()
                    },
                    species: if live {
                        "bona_fide".into()
                    } else {
                        name.clone()
                    },
                    subject: file_name(&clip),
                    files: vec![clip],
                    challenge,
                });
            }
        }
    }
    sequences
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The print and card images attacks are simulated from, with their species.
fn attack_pictures(
    root: &Path,
    labels: &std::collections::HashMap<String, String>,
) -> Vec<(String, PathBuf)> {
    let mut pictures = Vec::new();
    for source in crate::eval::subdirectories(&root.join("spoof").join("spoof")) {
        for file in crate::eval::image_files(&source) {
            let relative = file
                .strip_prefix(root)
                .unwrap_or(&file)
                .to_string_lossy()
                .replace('\\', "/");
            if species_of(labels.get(&relative), false) == "print" {
                pictures.push(("simulated_planar_print".to_string(), file));
            }
        }
    }
    for file in crate::eval::image_files(&root.join("idcards").join("synthetic")) {
        if file_name(&file).contains("_card.") {
            pictures.push(("simulated_planar_card".to_string(), file));
        }
    }
    pictures
}

/// Six views of the picture at `path` along a random path; empty when it has no face.
fn simulate(engine: &Engine, path: &Path, rng: &mut fastrand::Rng) -> Option<Vec<Image>> {
    let picture = engine.decode(&std::fs::read(path).ok()?).ok()?;
    let face = engine.faces(&picture).ok()?.into_iter().next()?;
    let scale = f64::from(70.0 + 40.0 * rng.f32()) / f64::from(face.landmarks.inter_eye_distance());
    let canvas = kiosk_canvas(&picture, &face.bbox, scale)?;
    let turn =
        |rng: &mut fastrand::Rng, max_deg: f64| (rng.f64() * 2.0 - 1.0) * max_deg.to_radians();
    // The attacker turns the picture as a person would turn their head for a challenge:
    // from one side to the other, 12-35 degrees each way.
    let side = if rng.bool() { 1.0 } else { -1.0 };
    let (yaw0, yaw1) = (
        -side * (12.0 + 23.0 * rng.f64()).to_radians(),
        side * (12.0 + 23.0 * rng.f64()).to_radians(),
    );
    let (pitch0, pitch1) = (turn(rng, 20.0), turn(rng, 20.0));
    let (roll0, roll1) = (turn(rng, 10.0), turn(rng, 10.0));
    let (near, far) = (0.8 + 0.15 * rng.f64(), 1.0 + 0.2 * rng.f64());
    let (dx, dy) = (turn(rng, 40.0).to_degrees(), turn(rng, 30.0).to_degrees());
    (0..SIMULATED_FRAMES)
        .map(|i| {
            let t = i as f64 / (SIMULATED_FRAMES - 1) as f64;
            let lerp = |a: f64, b: f64| a + (b - a) * t;
            planar_view(
                &canvas,
                PlanarPose {
                    yaw: lerp(yaw0, yaw1),
                    pitch: lerp(pitch0, pitch1),
                    roll: lerp(roll0, roll1),
                    distance: lerp(far, near),
                    shift: (lerp(-dx, dx), lerp(-dy, dy)),
                },
            )
            .ok()
        })
        .collect()
}

/// A 640x480 frame with the picture scaled by `scale` and its face in the middle.
fn kiosk_canvas(
    picture: &Image,
    face: &faceid_core::geometry::BoundingBox,
    scale: f64,
) -> Option<Image> {
    const W: u32 = 640;
    const H: u32 = 480;
    let rgb = image::RgbImage::from_raw(picture.width(), picture.height(), picture.rgb().to_vec())?;
    let (sw, sh) = (
        ((f64::from(picture.width()) * scale).round() as u32).max(1),
        ((f64::from(picture.height()) * scale).round() as u32).max(1),
    );
    let scaled = image::imageops::resize(&rgb, sw, sh, image::imageops::FilterType::Triangle);
    let (fx, fy) = (
        f64::from((face.x1 + face.x2) / 2.0) * scale,
        f64::from((face.y1 + face.y2) / 2.0) * scale,
    );
    let mut canvas = image::RgbImage::new(W, H);
    let (ox, oy) = (f64::from(W) / 2.0 - fx, f64::from(H) / 2.0 - fy);
    image::imageops::overlay(&mut canvas, &scaled, ox.round() as i64, oy.round() as i64);
    Image::from_rgb(W, H, canvas.into_raw()).ok()
}

/// The liveness cues of the sequence rule over `frames`: the main face of each frame (the
/// largest), its passive score accumulated and the planarity cue over its landmarks. The
/// full rule (`Engine::analyze_sequence`) also embeds and grades every frame; the cues are
/// the same, at a fraction of the cost, which matters for a thousand simulated sequences.
fn judge(engine: &Engine, frames: &[Image]) -> Judged {
    let mut passive = LivenessAccumulator::new();
    let mut landmarks: Vec<(Vec<Point>, Option<Texture>)> = Vec::new();
    for frame in frames {
        let Some(face) = engine.faces(frame).ok().and_then(|f| f.into_iter().next()) else {
            continue;
        };
        if let Ok(l) = engine.liveness(frame, &face) {
            passive.add(l);
            let points = face.landmarks.points();
            landmarks.push((points.to_vec(), Texture::around(frame, points)));
        }
    }
    let liveness = passive.result().ok().map(|l| {
        if landmarks.len() > 1 {
            let refs: Vec<FaceView<'_>> = landmarks
                .iter()
                .map(|(landmarks, texture)| FaceView {
                    landmarks,
                    texture: texture.as_ref(),
                })
                .collect();
            l.with_planarity(planarity::measure(&refs))
        } else {
            l
        }
    });
    Judged {
        liveness,
        frames: frames.len(),
        with_face: landmarks.len(),
    }
}

fn outcome(sequence: &RealSequence, judged: &Judged) -> SequenceOutcome {
    SequenceOutcome {
        source: sequence.source.clone(),
        species: sequence.species.clone(),
        subject: sequence.subject.clone(),
        frames: judged.frames,
        frames_with_face: judged.with_face,
        passive: judged.liveness.map(|l| l.probability),
        depth: judged
            .liveness
            .and_then(|l| l.planarity)
            .and_then(|p| p.depth),
        deformation: judged
            .liveness
            .and_then(|l| l.planarity)
            .map(|p| p.deformation),
        verdicts: PRESETS
            .iter()
            .map(|&p| {
                let verdict = match judged.liveness.map(|l| l.judge(p)) {
                    None => "NO_FACE".to_string(),
                    Some(j) if j.live => "LIVE".to_string(),
                    Some(j) => j.failure.map_or("REFUSED", |f| f.code()).to_string(),
                };
                (p.name().to_string(), verdict)
            })
            .collect(),
    }
}

fn rates(attacks: &[&Judged], live: &[&Judged], preset: LivenessPreset, passive: bool) -> PadRates {
    let accepted = |j: &&&Judged| {
        j.liveness
            .is_some_and(|l| l.judge_cues(preset, passive).live)
    };
    let decided = |j: &&&Judged| j.liveness.is_some();
    let ratio = |n: usize, d: usize| (d > 0).then(|| n as f64 / d as f64);
    let attacks_decided = attacks.iter().filter(decided).count();
    let live_decided = live.iter().filter(decided).count();
    let attacks_accepted = attacks.iter().filter(accepted).count();
    let bona_fide_rejected = live_decided - live.iter().filter(accepted).count();
    PadRates {
        attacks: attacks.len(),
        attacks_accepted,
        attacks_no_response: attacks.len() - attacks_decided,
        bona_fide: live.len(),
        bona_fide_rejected,
        bona_fide_no_response: live.len() - live_decided,
        apcer: ratio(attacks_accepted, attacks_decided),
        bpcer: ratio(bona_fide_rejected, live_decided),
        apnrr: ratio(attacks.len() - attacks_decided, attacks.len()),
        bpnrr: ratio(live.len() - live_decided, live.len()),
    }
}

/// The section as text: one line per species and preset, then the real sequences.
pub fn render(report: &PadReport, out: &mut String) {
    use std::fmt::Write as _;
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1} %", v * 100.0));
    let _ = writeln!(
        out,
        "\nPresentation attacks (ISO/IEC 30107-3, per sequence; {} simulated)",
        report.simulated
    );
    let _ = writeln!(
        out,
        "  {:<28} {:<9} {:>7} {:>9} {:>7} {:>9}",
        "species", "preset", "attacks", "APCER", "APNRR", "BPCER"
    );
    for (title, table) in [
        ("", &report.species),
        (" (planarity alone)", &report.geometry_only),
    ] {
        for (species, presets) in table {
            for (preset, r) in presets {
                let _ = writeln!(
                    out,
                    "  {:<28} {:<9} {:>7} {:>9} {:>7} {:>9}",
                    format!("{species}{title}"),
                    preset,
                    r.attacks,
                    pct(r.apcer),
                    pct(r.apnrr),
                    pct(r.bpcer)
                );
            }
        }
    }
    let _ = writeln!(out, "  real sequences (verdict at REGULAR):");
    for s in &report.sequences {
        let _ = writeln!(
            out,
            "    {:<10} {:<10} {:<26} passive {:>6} depth {:>6} turn {:>6}  {}",
            s.source,
            s.species,
            s.subject,
            s.passive.map_or("-".into(), |p| format!("{p:.3}")),
            s.depth.map_or("-".into(), |d| format!("{d:.3}")),
            s.deformation.map_or("-".into(), |d| format!("{d:.3}")),
            s.verdicts.get("REGULAR").map_or("-", String::as_str)
        );
    }
}
