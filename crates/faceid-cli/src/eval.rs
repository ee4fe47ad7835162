//! `faceid eval`: verification, liveness and ID-card figures over a folder in the
//! `../shared/eval` layout (see that folder's README). Reading the folder is here; every
//! statistic comes from `faceid_core::evaluation`, every decision from the engine.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use faceid_core::calibration::Calibration;
use faceid_core::evaluation::{
    DetPoint, FAR_POINTS, PadFigures, PairScore, VerificationFigures, det_curve, pad_figures,
    rates_at, verification_figures,
};
use faceid_core::{Engine, LivenessAccumulator, LivenessPreset, Template};
use serde::Serialize;

/// The whole report, printed as one table or one JSON object.
#[derive(Debug, Serialize)]
pub struct EvalReport {
    /// Face verification over `faces/pairs.tsv`.
    pub verification: Option<VerificationReport>,
    /// Liveness over `spoof/`, per image and per sequence (passive network alone).
    pub liveness: Option<LivenessReport>,
    /// Presentation attacks over sequences with the fused rule, real and simulated.
    pub pad: Option<crate::pad::PadReport>,
    /// Document portrait matching over the pair files of `idcards/`.
    pub idcards: Option<IdcardReport>,
    /// Fit of the score calibration on this set's impostor pairs.
    pub calibration: Option<CalibrationReport>,
    /// Machine-readable zones of the specimens against their transcription.
    pub zones: Option<crate::zones::ZoneReport>,
}

/// Verification figures, overall and per source group.
#[derive(Debug, Serialize)]
pub struct VerificationReport {
    /// Pooled figures (failures to acquire count as non-matches).
    #[serde(flatten)]
    pub overall: VerificationFigures,
    /// Distinct images referenced by the pairs.
    pub images: usize,
    /// Images where no face was found (failure to acquire).
    pub fta_images: usize,
    /// Figures per group (`celeba`, `named`, `orl`).
    pub groups: BTreeMap<String, VerificationFigures>,
    /// Every pair's calibrated score, for histograms (failures to acquire left out; they
    /// are counted in `failed_pairs`).
    pub scores: ScoreSample,
    /// The DET curve over calibrated scores (at most 200 points).
    pub det: Vec<DetPoint>,
    /// Observed error rates at each threshold preset (the calibrated score of a stated FAR;
    /// `FAR 1e-3` = 0.6 is the default verification threshold).
    pub operating_points: Vec<OperatingPoint>,
}

/// Calibrated scores of the scored pairs, by class.
#[derive(Debug, Serialize)]
pub struct ScoreSample {
    /// Same-person pairs.
    pub genuine: Vec<f32>,
    /// Different-person pairs.
    pub impostor: Vec<f32>,
}

/// A threshold preset and what it does on this set.
#[derive(Debug, Serialize)]
pub struct OperatingPoint {
    /// The preset, by its stated FAR (`FAR 1e-3`).
    pub name: String,
    /// Its calibrated score threshold.
    pub score: f32,
    /// The FAR the calibration states for it.
    pub stated_far: f64,
    /// Observed FAR and FRR on this set.
    pub observed: Option<DetPoint>,
}

/// Liveness figures at the default threshold, per image and per accumulated sequence.
#[derive(Debug, Serialize)]
pub struct LivenessReport {
    /// Live-probability threshold (the REGULAR preset).
    pub threshold: f32,
    /// APCER per image over all sources.
    pub apcer: Option<f64>,
    /// BPCER per image over all sources.
    pub bpcer: Option<f64>,
    /// Per source: per-image and per-sequence figures.
    pub sources: BTreeMap<String, SourceLiveness>,
    /// Per image, all sources, at each preset.
    pub presets: BTreeMap<String, PadFigures>,
}

/// Liveness figures of one source.
#[derive(Debug, Serialize)]
pub struct SourceLiveness {
    /// Each image on its own.
    pub image: PadFigures,
    /// Frames of one subject and class accumulated into one decision.
    pub sequence: PadFigures,
}

/// ID-card figures.
#[derive(Debug, Serialize)]
pub struct IdcardReport {
    /// Best-threshold accuracy over all ID-card pair files together.
    pub accuracy: Option<f64>,
    /// Equal error rate over all of them.
    pub eer: Option<f64>,
    /// Share of distinct documents whose portrait was found.
    pub portrait_found: Option<f64>,
    /// The same, leaving out documents whose MANIFEST label says the portrait is obscured
    /// (`portrait=yes(obscured)`: pixelated on purpose, no face to find).
    pub portrait_found_visible: Option<f64>,
    /// Distinct documents.
    pub cards: usize,
    /// Documents whose portrait was not found (paths relative to the root).
    pub portrait_missing: Vec<String>,
    /// Figures per pair file.
    pub sets: BTreeMap<String, VerificationFigures>,
}

/// How well the calibration's Gaussian tail describes this set's impostors.
#[derive(Debug, Serialize)]
pub struct CalibrationReport {
    /// The calibration compiled into the engine.
    pub in_force: Calibration,
    /// The calibration fitted on this set.
    pub fitted: Option<Calibration>,
    /// Impostor scores used.
    pub impostors: usize,
    /// Predicted vs observed false-accept rate at the in-force thresholds.
    pub anchors: Vec<CalibrationAnchor>,
}

/// One calibration check point.
#[derive(Debug, Serialize)]
pub struct CalibrationAnchor {
    /// The calibrated score of the threshold.
    pub score: f32,
    /// The FAR that score states.
    pub stated_far: f64,
    /// Its cosine threshold.
    pub cosine: f32,
    /// Impostor pairs at or above it.
    pub impostors_above: usize,
    /// Observed FAR.
    pub observed_far: f64,
}

/// Progress callback: (done, total, phase).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize, &str);

/// Runs every part whose files exist under `root`.
/// Runs every section over `root`; `simulated` planar attacks are generated for the
/// presentation-attack section.
pub fn run(
    engine: &Engine,
    root: &Path,
    simulated: usize,
    progress: Progress<'_>,
) -> Result<EvalReport> {
    let mut templates = TemplateCache::default();
    let verification = verification(engine, root, &mut templates, progress)?;
    let liveness = liveness(engine, root, progress)?;
    let pad = crate::pad::run(engine, root, simulated, progress)?;
    let idcards = idcards(engine, root, &mut templates, progress)?;
    progress(0, 1, "MRZ");
    let zones = crate::zones::evaluate(engine, root)?;
    let calibration = verification
        .as_ref()
        .map(|(_, impostors)| calibration_report(engine, impostors));
    Ok(EvalReport {
        verification: verification.map(|(v, _)| v),
        liveness,
        pad,
        idcards,
        calibration,
        zones,
    })
}

#[derive(Default)]
struct TemplateCache {
    by_path: HashMap<PathBuf, Option<Template>>,
}

impl TemplateCache {
    /// Template of the largest face (or of the document portrait), `None` when no face.
    fn get(&mut self, engine: &Engine, path: &Path, document: bool) -> Option<Template> {
        self.by_path
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                let bytes = std::fs::read(path).ok()?;
                let image = engine.decode(&bytes).ok()?;
                if document {
                    engine.card_template(&image).ok().map(|(_, t)| t)
                } else {
                    engine.largest_face_template(&image).ok().map(|(_, t)| t)
                }
            })
            .clone()
    }
}

struct Pair {
    a: PathBuf,
    b: PathBuf,
    genuine: bool,
}

fn read_pairs(file: &Path, base: &Path) -> Result<Vec<Pair>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            anyhow::ensure!(cols.len() >= 3, "{}: bad line {line:?}", file.display());
            Ok(Pair {
                a: base.join(cols[0]),
                b: base.join(cols[1]),
                genuine: cols[2].trim() == "1",
            })
        })
        .collect()
}

fn score_pairs(
    engine: &Engine,
    pairs: &[Pair],
    templates: &mut TemplateCache,
    document: impl Fn(&Path) -> bool,
    progress: Progress<'_>,
    phase: &str,
) -> Vec<PairScore> {
    let total = pairs.len();
    pairs
        .iter()
        .enumerate()
        .map(|(i, pair)| {
            progress(i + 1, total, phase);
            let a = templates.get(engine, &pair.a, document(&pair.a));
            let b = templates.get(engine, &pair.b, document(&pair.b));
            let score = match (a, b) {
                (Some(a), Some(b)) => a.cosine(&b).ok(),
                _ => None,
            };
            PairScore {
                genuine: pair.genuine,
                score,
            }
        })
        .collect()
}

fn group_of(path: &Path) -> String {
    let identity = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if identity.starts_with("celeba_") {
        "celeba".into()
    } else if identity.starts_with("orl_") {
        "orl".into()
    } else {
        "named".into()
    }
}

fn verification(
    engine: &Engine,
    root: &Path,
    templates: &mut TemplateCache,
    progress: Progress<'_>,
) -> Result<Option<(VerificationReport, Vec<f32>)>> {
    let file = root.join("faces/pairs.tsv");
    if !file.exists() {
        return Ok(None);
    }
    let pairs = read_pairs(&file, &root.join("faces"))?;
    let scores = score_pairs(
        engine,
        &pairs,
        templates,
        |_| false,
        progress,
        "verification",
    );
    let mut images: Vec<&PathBuf> = pairs.iter().flat_map(|p| [&p.a, &p.b]).collect();
    images.sort();
    images.dedup();
    let fta_images = images
        .iter()
        .filter(|p| {
            templates
                .by_path
                .get(p.as_path())
                .is_some_and(|t| t.is_none())
        })
        .count();
    let mut by_group: BTreeMap<String, Vec<PairScore>> = BTreeMap::new();
    for (pair, score) in pairs.iter().zip(&scores) {
        by_group.entry(group_of(&pair.a)).or_default().push(*score);
    }
    let impostors = scores
        .iter()
        .filter(|s| !s.genuine)
        .filter_map(|s| s.score)
        .collect();
    let calibrated: Vec<PairScore> = scores
        .iter()
        .map(|p| PairScore {
            genuine: p.genuine,
            score: p.score.map(|cosine| engine.calibration().score(cosine)),
        })
        .collect();
    let of_class = |genuine: bool| {
        calibrated
            .iter()
            .filter(|p| p.genuine == genuine)
            .filter_map(|p| p.score)
            .collect()
    };
    Ok(Some((
        VerificationReport {
            scores: ScoreSample {
                genuine: of_class(true),
                impostor: of_class(false),
            },
            det: det_curve(&calibrated, 200),
            operating_points: FAR_POINTS
                .iter()
                .map(|&(name, far)| {
                    let score = faceid_core::calibration::score_for_far(far);
                    OperatingPoint {
                        name: format!("FAR {name}"),
                        score,
                        stated_far: far,
                        observed: rates_at(&calibrated, score),
                    }
                })
                .collect(),
            overall: verification_figures(&scores),
            images: images.len(),
            fta_images,
            groups: by_group
                .into_iter()
                .map(|(g, s)| (g, verification_figures(&s)))
                .collect(),
        },
        impostors,
    )))
}

/// Labels from MANIFEST.tsv (`live|subject=...`), keyed by path relative to the root.
pub(crate) fn manifest_labels(root: &Path) -> HashMap<String, String> {
    let Ok(text) = std::fs::read_to_string(root.join("MANIFEST.tsv")) else {
        return HashMap::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (cols.len() > 5).then(|| (cols[0].to_string(), cols[5].to_string()))
        })
        .collect()
}

/// The sub-folders of `dir`, sorted (none when it does not exist).
pub(crate) fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// The files of `dir`, sorted (none when it does not exist).
pub(crate) fn image_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn liveness(
    engine: &Engine,
    root: &Path,
    progress: Progress<'_>,
) -> Result<Option<LivenessReport>> {
    let spoof = root.join("spoof");
    if !spoof.is_dir() {
        return Ok(None);
    }
    let labels = manifest_labels(root);
    // (source, live?) -> (subject, probability)
    let mut samples: Vec<(String, bool, String, Option<f32>)> = Vec::new();
    let mut work: Vec<(String, bool, PathBuf)> = Vec::new();
    for (class, live) in [("live", true), ("spoof", false)] {
        for source in subdirectories(&spoof.join(class)) {
            let name = source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for file in image_files(&source) {
                work.push((name.clone(), live, file));
            }
        }
    }
    let total = work.len();
    for (i, (source, live, file)) in work.into_iter().enumerate() {
        progress(i + 1, total, "liveness");
        let relative = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        let subject = labels
            .get(&relative)
            .and_then(|l| l.split('|').find_map(|kv| kv.strip_prefix("subject=")))
            .unwrap_or(&source)
            .to_string();
        let probability = std::fs::read(&file)
            .ok()
            .and_then(|bytes| engine.decode(&bytes).ok())
            .and_then(|image| {
                let face = engine.faces(&image).ok()?.into_iter().next()?;
                engine.liveness(&image, &face).ok()
            })
            .map(|l| l.probability);
        samples.push((source, live, subject, probability));
    }
    let threshold = LivenessPreset::Regular.threshold();
    let split = |items: &mut dyn Iterator<Item = &(String, bool, String, Option<f32>)>| {
        let (mut live, mut attack) = (Vec::new(), Vec::new());
        for (_, is_live, _, p) in items {
            if *is_live {
                live.push(*p)
            } else {
                attack.push(*p)
            }
        }
        (live, attack)
    };
    let (all_live, all_attack) = split(&mut samples.iter());
    let mut sources = BTreeMap::new();
    let names: std::collections::BTreeSet<&String> = samples.iter().map(|s| &s.0).collect();
    for name in names {
        let (live, attack) = split(&mut samples.iter().filter(|s| &s.0 == name));
        // Sequences: frames of one subject and class accumulated (no-face frames skipped;
        // a sequence with no face at all counts as rejected).
        let mut sequences: BTreeMap<(bool, &String), LivenessAccumulator> = BTreeMap::new();
        for (_, is_live, subject, p) in samples.iter().filter(|s| &s.0 == name) {
            let acc = sequences.entry((*is_live, subject)).or_default();
            if let Some(p) = p {
                acc.add(faceid_core::Liveness::from_probability(*p));
            }
        }
        let (mut seq_live, mut seq_attack) = (Vec::new(), Vec::new());
        for ((is_live, _), acc) in sequences {
            let p = acc.result().ok().map(|l| l.probability);
            if is_live {
                seq_live.push(p)
            } else {
                seq_attack.push(p)
            }
        }
        sources.insert(
            name.clone(),
            SourceLiveness {
                image: pad_figures(&live, &attack, threshold),
                sequence: pad_figures(&seq_live, &seq_attack, threshold),
            },
        );
    }
    let overall = pad_figures(&all_live, &all_attack, threshold);
    let presets = [
        LivenessPreset::Soft,
        LivenessPreset::Regular,
        LivenessPreset::Hardened,
    ]
    .into_iter()
    .map(|p| {
        (
            p.name().to_string(),
            pad_figures(&all_live, &all_attack, p.threshold()),
        )
    })
    .collect();
    Ok(Some(LivenessReport {
        threshold,
        apcer: overall.apcer,
        bpcer: overall.bpcer,
        sources,
        presets,
    }))
}

fn is_document(path: &Path) -> bool {
    let text = path.to_string_lossy();
    text.contains("idcards/specimen/") || text.ends_with("_card.jpg") || text.ends_with("_card.png")
}

fn idcards(
    engine: &Engine,
    root: &Path,
    templates: &mut TemplateCache,
    progress: Progress<'_>,
) -> Result<Option<IdcardReport>> {
    let mut sets = BTreeMap::new();
    let mut all = Vec::new();
    let mut documents: Vec<PathBuf> = Vec::new();
    for name in ["pairs", "specimen_pairs", "nuaa_print_vs_live_pairs"] {
        let file = root.join("idcards").join(format!("{name}.tsv"));
        if !file.exists() {
            continue;
        }
        let pairs = read_pairs(&file, root)?;
        documents.extend(
            pairs
                .iter()
                .flat_map(|p| [p.a.clone(), p.b.clone()])
                .filter(|p| is_document(p)),
        );
        let scores = score_pairs(engine, &pairs, templates, is_document, progress, name);
        all.extend_from_slice(&scores);
        sets.insert(name.to_string(), verification_figures(&scores));
    }
    if sets.is_empty() {
        return Ok(None);
    }
    documents.sort();
    documents.dedup();
    let labels = manifest_labels(root);
    let relative = |d: &Path| {
        d.strip_prefix(root)
            .unwrap_or(d)
            .to_string_lossy()
            .replace('\\', "/")
    };
    let obscured = |d: &Path| {
        labels
            .get(&relative(d))
            .is_some_and(|l| l.contains("portrait=yes(obscured)"))
    };
    let missing: Vec<&PathBuf> = documents
        .iter()
        .filter(|d| {
            !templates
                .by_path
                .get(d.as_path())
                .is_some_and(|t| t.is_some())
        })
        .collect();
    let visible = documents.iter().filter(|d| !obscured(d)).count();
    let visible_missing = missing.iter().filter(|d| !obscured(d)).count();
    let share = |found: usize, of: usize| (of > 0).then(|| found as f64 / of as f64);
    let overall = verification_figures(&all);
    Ok(Some(IdcardReport {
        accuracy: overall.accuracy,
        eer: overall.eer,
        portrait_found: share(documents.len() - missing.len(), documents.len()),
        portrait_found_visible: share(visible - visible_missing, visible),
        cards: documents.len(),
        portrait_missing: missing.iter().map(|d| relative(d)).collect(),
        sets,
    }))
}

fn calibration_report(engine: &Engine, impostors: &[f32]) -> CalibrationReport {
    let in_force = *engine.calibration();
    let anchors = [0.4f32, 0.5, 0.6, 0.7]
        .into_iter()
        .map(|score| {
            let cosine = in_force.cosine_for_score(score);
            let above = impostors.iter().filter(|&&s| s >= cosine).count();
            CalibrationAnchor {
                score,
                stated_far: faceid_core::calibration::far_for_score(score),
                cosine,
                impostors_above: above,
                observed_far: above as f64 / impostors.len().max(1) as f64,
            }
        })
        .collect();
    CalibrationReport {
        in_force,
        fitted: Calibration::fit(impostors),
        impostors: impostors.len(),
        anchors,
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.2} %", v * 100.0))
        .unwrap_or_else(|| "n/a".into())
}

/// The human-readable table.
pub fn render(report: &EvalReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if let Some(v) = &report.verification {
        let _ = writeln!(out, "VERIFICATION  faces/pairs.tsv  (no face = non-match)");
        let _ = writeln!(
            out,
            "{:<10} {:>6} {:>10} {:>9} {:>11} {:>11} {:>11} {:>7}",
            "group", "pairs", "accuracy", "EER", "TAR@1e-2", "TAR@1e-3", "TAR@1e-4", "failed"
        );
        let mut row = |name: &str, f: &VerificationFigures| {
            let _ = writeln!(
                out,
                "{:<10} {:>6} {:>10} {:>9} {:>11} {:>11} {:>11} {:>7}",
                name,
                f.pairs,
                pct(f.accuracy),
                pct(f.eer),
                pct(f.tar_at_far.get("1e-2").copied().flatten()),
                pct(f.tar_at_far.get("1e-3").copied().flatten()),
                pct(f.tar_at_far.get("1e-4").copied().flatten()),
                f.failed_pairs
            );
        };
        row("all", &v.overall);
        for (g, f) in &v.groups {
            row(g, f);
        }
        let _ = writeln!(
            out,
            "images {}  no face found {} ({})\n",
            v.images,
            v.fta_images,
            pct(Some(v.fta_images as f64 / v.images.max(1) as f64))
        );
    }
    if let Some(l) = &report.liveness {
        let _ = writeln!(
            out,
            "LIVENESS  spoof/  threshold {:.2} (REGULAR); sequence = frames of one subject accumulated",
            l.threshold
        );
        let _ = writeln!(
            out,
            "{:<12} {:>6} {:>8} {:>10} {:>10} {:>6} {:>14} {:>14}",
            "source", "live", "attacks", "APCER", "BPCER", "seqs", "seq APCER", "seq BPCER"
        );
        for (name, s) in &l.sources {
            let _ = writeln!(
                out,
                "{:<12} {:>6} {:>8} {:>10} {:>10} {:>6} {:>14} {:>14}",
                name,
                s.image.bona_fide,
                s.image.attacks,
                pct(s.image.apcer),
                pct(s.image.bpcer),
                s.sequence.bona_fide + s.sequence.attacks,
                pct(s.sequence.apcer),
                pct(s.sequence.bpcer)
            );
        }
        for (name, p) in &l.presets {
            let _ = writeln!(
                out,
                "preset {:<9} threshold {:.2}: APCER {} BPCER {} (all sources, per image)",
                name,
                p.threshold,
                pct(p.apcer),
                pct(p.bpcer)
            );
        }
        let _ = writeln!(out);
    }
    if let Some(c) = &report.idcards {
        let _ = writeln!(
            out,
            "ID CARDS  portrait found on {} of {} documents ({} of those with a visible portrait); missing: {}",
            pct(c.portrait_found),
            c.cards,
            pct(c.portrait_found_visible),
            if c.portrait_missing.is_empty() {
                "none".to_string()
            } else {
                c.portrait_missing.join(", ")
            }
        );
        let _ = writeln!(
            out,
            "{:<26} {:>6} {:>10} {:>9} {:>7}",
            "pairs", "pairs", "accuracy", "EER", "failed"
        );
        for (name, f) in &c.sets {
            let _ = writeln!(
                out,
                "{:<26} {:>6} {:>10} {:>9} {:>7}",
                name,
                f.pairs,
                pct(f.accuracy),
                pct(f.eer),
                f.failed_pairs
            );
        }
        let _ = writeln!(
            out,
            "{:<26} {:>6} {:>10} {:>9}\n",
            "all",
            c.sets.values().map(|f| f.pairs).sum::<usize>(),
            pct(c.accuracy),
            pct(c.eer)
        );
    }
    if let Some(z) = &report.zones {
        let _ = writeln!(out, "{}", crate::zones::render(z));
    }
    if let Some(c) = &report.calibration {
        let _ = writeln!(
            out,
            "CALIBRATION  in force: impostor mean {:.4} sd {:.4}; fitted here: {}",
            c.in_force.impostor_mean,
            c.in_force.impostor_sd,
            c.fitted
                .map(|f| format!("mean {:.4} sd {:.4}", f.impostor_mean, f.impostor_sd))
                .unwrap_or_else(|| "n/a".into())
        );
        for a in &c.anchors {
            let _ = writeln!(
                out,
                "  score {:.1}  states FAR {:.0e}  cosine {:.4}  observed {}/{} = {:.1e}",
                a.score, a.stated_far, a.cosine, a.impostors_above, c.impostors, a.observed_far
            );
        }
    }
    if let Some(pad) = &report.pad {
        crate::pad::render(pad, &mut out);
    }
    out
}
