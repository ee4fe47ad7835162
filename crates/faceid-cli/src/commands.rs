//! The single-image commands: detect, enroll, verify, liveness, quality, card. Each reads
//! its inputs, calls one gallery-free use case (`faceid_service::Judge`) and returns a
//! serialisable report; `main.rs` prints it as JSON or text.

use std::path::Path;

use anyhow::{Context, Result};
use faceid_core::geometry::{BoundingBox, Point};
use faceid_core::{
    Attributes, Decision, Engine, Gate, Image, Liveness, MachineZone, Quality, Rotation, Template,
};
use faceid_service::{Judge, Selfie};
use serde::Serialize;

/// Reads and decodes an image file under the engine's limits.
pub fn load_image(engine: &Engine, path: &Path) -> Result<Image> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    engine
        .decode(&bytes)
        .with_context(|| format!("decoding {}", path.display()))
}

/// One face as printed by `detect`.
#[derive(Debug, Serialize)]
pub struct FaceReport {
    /// Box in image pixels.
    pub bbox: BoundingBox,
    /// Detector confidence.
    pub score: f32,
    /// Eyes, nose tip, mouth corners.
    pub landmarks: [Point; 5],
    /// Inter-eye distance in pixels.
    pub inter_eye_px: f32,
}

/// `faceid detect`.
#[derive(Debug, Serialize)]
pub struct DetectReport {
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Faces, largest first.
    pub faces: Vec<FaceReport>,
}

/// Every face in an image.
pub fn detect(engine: &Engine, path: &Path) -> Result<DetectReport> {
    let image = load_image(engine, path)?;
    let faces = engine.faces(&image)?;
    Ok(DetectReport {
        width: image.width(),
        height: image.height(),
        faces: faces
            .iter()
            .map(|f| FaceReport {
                bbox: f.bbox,
                score: f.score,
                landmarks: f.landmarks.five(),
                inter_eye_px: f.landmarks.inter_eye_distance(),
            })
            .collect(),
    })
}

/// `faceid enroll`.
#[derive(Debug, Serialize)]
pub struct EnrollReport {
    /// Where the template was written.
    pub template_file: String,
    /// Model that made it.
    pub model_id: String,
    /// The face used.
    pub bbox: BoundingBox,
    /// Rotation applied (documents only).
    pub rotation: Option<Rotation>,
    /// Quality of the face (selfies only: card portraits are printed, not captured).
    pub quality: Option<Quality>,
}

/// Makes a template from a selfie (the enrollment gate of an uploaded photo: one face,
/// quality, no liveness) or an ID document's portrait.
pub fn enroll(judge: &Judge, path: &Path, card: bool, output: &Path) -> Result<EnrollReport> {
    let image = load_image(judge.engine(), path)?;
    let (template, bbox, rotation, quality) = if card {
        let (portrait, template) = judge.card(&image)?;
        (template, portrait.face.bbox, Some(portrait.rotation), None)
    } else {
        let gate = Gate {
            liveness: false,
            ..judge.gate()
        };
        let (verdict, probe) = judge.enrollment(Selfie::photo(image), gate, None)?;
        if !verdict.reason.accepted() {
            anyhow::bail!(
                "{}: the face does not pass the enrollment gate",
                verdict.reason.code()
            );
        }
        let best = probe.best;
        (best.template, best.face.bbox, None, Some(best.quality))
    };
    std::fs::write(output, template.to_bytes())
        .with_context(|| format!("writing {}", output.display()))?;
    Ok(EnrollReport {
        template_file: output.display().to_string(),
        model_id: template.model_id().to_string(),
        bbox,
        rotation,
        quality,
    })
}

/// A template file (`FIDT` magic) or an image with one face.
pub fn load_template(judge: &Judge, path: &Path) -> Result<Template> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(b"FIDT") {
        return Template::from_bytes(&bytes)
            .with_context(|| format!("reading template {}", path.display()));
    }
    let image = judge
        .engine()
        .decode(&bytes)
        .with_context(|| format!("decoding {}", path.display()))?;
    judge
        .photo_template(&image)
        .with_context(|| format!("{}", path.display()))
}

/// `faceid verify`.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// The decision.
    #[serde(flatten)]
    pub decision: Decision,
    /// False-accept rate the score stands for.
    pub far: f64,
}

/// 1:1 decision between two images or template files.
pub fn verify(judge: &Judge, a: &Path, b: &Path) -> Result<VerifyReport> {
    let (ta, tb) = (load_template(judge, a)?, load_template(judge, b)?);
    let decision = judge.engine().verify(&ta, &tb)?;
    Ok(VerifyReport {
        far: decision.comparison.far(),
        decision,
    })
}

/// One file's liveness (or its error): an image alone, or a video as its sequence.
#[derive(Debug, Serialize)]
pub struct FrameLiveness {
    /// The file.
    pub file: String,
    /// The estimate, when a face was found.
    pub liveness: Option<Liveness>,
    /// Whether it passes the configured preset on its own.
    pub live: Option<bool>,
    /// Error code otherwise.
    pub error: Option<String>,
}

/// The cues behind a liveness verdict.
#[derive(Debug, Serialize)]
pub struct Cues {
    /// Accumulated passive live probability.
    pub passive: f32,
    /// Planarity depth (`null`: one frame, or the face did not move enough).
    pub depth: Option<f32>,
    /// Frames with a face.
    pub frames: usize,
}

/// `faceid liveness`.
#[derive(Debug, Serialize)]
pub struct LivenessReport {
    /// Whether every frame of every file, as one sequence, passes the fused rule.
    pub live: Option<bool>,
    /// Why not: `SPOOF_SUSPECTED`, `FLAT_FACE`, or the capture refusal (`NO_FACE`, ...).
    pub reason: Option<String>,
    /// The cues of that sequence.
    pub cues: Option<Cues>,
    /// The preset applied.
    pub preset: &'static str,
    /// Each file.
    pub files: Vec<FrameLiveness>,
}

/// The upright frames of a file: a video's sampled frames with their times (seconds), or
/// one image at time 0.
pub fn load_frames(engine: &Engine, path: &Path) -> Result<(Vec<Image>, Vec<f64>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let plan = faceid_video::SamplingPlan {
        max_frames: 16,
        ..Default::default()
    };
    // The engine's own error stays in the chain, so its code is printed.
    let recording = faceid_server::selfie::frames(engine, &bytes, &plan)
        .map_err(|e| match e {
            faceid_server::selfie::SelfieError::Engine(e) => anyhow::Error::new(e),
            faceid_server::selfie::SelfieError::Video(e) => anyhow::Error::new(e),
        })
        .with_context(|| format!("decoding {}", path.display()))?;
    Ok((recording.images, recording.times_secs))
}

/// Liveness of each file (an image, or a video's frames as one sequence), and of all the
/// frames as one sequence, by the engine's fused rule (passive network and planarity).
pub fn liveness(judge: &Judge, paths: &[std::path::PathBuf]) -> Result<LivenessReport> {
    let preset = judge.gate().preset;
    let mut files = Vec::new();
    let mut all = Vec::new();
    for path in paths {
        let result = load_frames(judge.engine(), path).and_then(|(images, _)| {
            all.extend(images.iter().cloned());
            let (liveness, _) = judge.liveness(Selfie::Frames {
                images,
                duration_secs: None,
            })?;
            Ok(liveness)
        });
        let (liveness, error) = match result {
            Ok(l) => (Some(l), None),
            Err(e) => (None, Some(error_code(&e))),
        };
        files.push(FrameLiveness {
            file: path.display().to_string(),
            live: liveness.map(|l| l.is_live(preset)),
            liveness,
            error,
        });
    }
    let sequence = judge.liveness(Selfie::Frames {
        images: all,
        duration_secs: None,
    });
    let (live, reason, cues) = match sequence {
        Ok((l, _)) => {
            let judged = l.judge(preset);
            let cues = Cues {
                passive: l.probability,
                depth: l.planarity.and_then(|p| p.depth),
                frames: l.frames,
            };
            (
                Some(judged.live),
                judged.failure.map(|f| f.code().to_string()),
                Some(cues),
            )
        }
        Err(e) => (None, Some(e.code().to_string()), None),
    };
    Ok(LivenessReport {
        live,
        reason,
        cues,
        preset: preset.name(),
        files,
    })
}

/// `faceid challenge check`.
#[derive(Debug, Serialize)]
pub struct ChallengeReport {
    /// Whether the recording passed.
    pub passed: bool,
    /// Why not.
    pub reason: Option<String>,
    /// Each step and when it was done (milliseconds from the challenge's issue).
    pub steps: Vec<faceid_core::challenge::StepResult>,
    /// The cues of the recording.
    pub cues: Option<Cues>,
}

/// Draws a challenge of `steps` steps.
pub fn new_challenge(steps: usize) -> faceid_core::Challenge {
    let mut entropy = [0u8; 32];
    entropy[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    entropy[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let config = faceid_core::ChallengeConfig {
        steps,
        ..Default::default()
    };
    faceid_core::Challenge::draw(&config, entropy, now)
}

/// Checks a recording against a challenge (a file written by `faceid challenge new`): the
/// recording's clock starts at the challenge's issue.
pub fn check_challenge(judge: &Judge, challenge: &Path, video: &Path) -> Result<ChallengeReport> {
    let text = std::fs::read_to_string(challenge)
        .with_context(|| format!("reading {}", challenge.display()))?;
    let challenge: faceid_core::Challenge = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a challenge", challenge.display()))?;
    let (images, times) = load_frames(judge.engine(), video)?;
    let (outcome, _) = judge.challenge(faceid_service::Challenged {
        challenge,
        config: faceid_core::ChallengeConfig::default(),
        times_ms: times
            .iter()
            .map(|t| (t * 1000.0).round().max(0.0) as u64)
            .collect(),
        images,
    })?;
    Ok(ChallengeReport {
        passed: outcome.passed,
        reason: outcome.reason.map(|r| r.code().to_string()),
        steps: outcome.steps,
        cues: outcome.liveness.map(|l| Cues {
            passive: l.probability,
            depth: l.planarity.and_then(|p| p.depth),
            frames: l.frames,
        }),
    })
}

/// `faceid quality`.
#[derive(Debug, Serialize)]
pub struct QualityReport {
    /// Every measure with its pass flag.
    pub quality: Quality,
    /// Whether every measure passes.
    pub passed: bool,
    /// First failure's code.
    pub failure: Option<String>,
    /// Age, gender, expression (descriptive only).
    pub attributes: Attributes,
}

/// Quality of the one face of an image.
pub fn quality(judge: &Judge, path: &Path) -> Result<QualityReport> {
    let image = load_image(judge.engine(), path)?;
    let probe = judge.analyze(Selfie::photo(image.clone()))?;
    let best = probe.best;
    let failure = best.quality.first_failure().map(|e| e.code().to_string());
    Ok(QualityReport {
        passed: failure.is_none(),
        failure,
        attributes: judge.engine().attributes(&image, &best.face)?,
        quality: best.quality,
    })
}

/// `faceid card`: what was read on an identity document.
#[derive(Debug, Serialize)]
pub struct CardReport {
    /// The holder's portrait (`null` on a side without one, e.g. the back of an ID card).
    pub portrait: Option<PortraitReport>,
    /// The machine-readable zone with each check digit (`null` when the side has none).
    pub mrz: Option<MachineZone>,
    /// The Latin text and card number of the side with the portrait, compared with the zone
    /// when the same image shows it (`null` without a portrait).
    pub front: Option<faceid_core::CardFront>,
}

/// The portrait found on a document.
#[derive(Debug, Serialize)]
pub struct PortraitReport {
    /// Quarter turn that makes the document upright.
    pub rotation: Rotation,
    /// Portrait box in the upright document.
    pub bbox: BoundingBox,
    /// Detector confidence.
    pub score: f32,
    /// Where the aligned portrait was written, if asked.
    pub portrait_file: Option<String>,
}

/// Reads a document: its portrait (optionally written as an aligned 112x112 PNG) and its
/// machine-readable zone. `NO_PORTRAIT` only when the image shows neither.
pub fn card(judge: &Judge, path: &Path, portrait_out: Option<&Path>) -> Result<CardReport> {
    let image = load_image(judge.engine(), path)?;
    let side = judge.read_document(&image)?;
    let (mrz, front) = (side.zone, side.front);
    let Some(portrait) = side.portrait else {
        return Ok(CardReport {
            portrait: None,
            mrz,
            front,
        });
    };
    if let Some(out) = portrait_out {
        let aligned = judge.engine().align(&portrait.upright, &portrait.face)?;
        std::fs::write(out, aligned.image().to_png()?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(CardReport {
        portrait: Some(PortraitReport {
            rotation: portrait.rotation,
            bbox: portrait.face.bbox,
            score: portrait.face.score,
            portrait_file: portrait_out.map(|p| p.display().to_string()),
        }),
        mrz,
        front,
    })
}

/// The stable code of an engine error inside an anyhow chain, or `ERROR`.
pub fn error_code(error: &anyhow::Error) -> String {
    error
        .chain()
        .find_map(|e| {
            e.downcast_ref::<faceid_core::Error>()
                .map(|e| e.code().to_string())
                .or_else(|| {
                    e.downcast_ref::<faceid_service::Failure>()
                        .map(|f| f.code().to_string())
                })
        })
        .unwrap_or_else(|| "ERROR".to_string())
}
