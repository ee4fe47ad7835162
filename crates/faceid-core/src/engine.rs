//! The [`Engine`] facade: loads every model once and exposes each pipeline stage, plus the
//! composed operations the shells call. `Send + Sync`; share it behind an `Arc`.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::align::{AlignedFace, aligned_from_image};
use crate::attributes::{AttributeModels, Attributes};
use crate::calibration::Calibration;
use crate::card::{self, CardPortrait};
use crate::config::EngineConfig;
use crate::decision::{self, Comparison, Decision, Identification};
use crate::detect::{Detection, Detector};
use crate::document::{DocumentReader, MachineZone};
use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::image::{self, DecodeLimits, Image};
use crate::landmarks::{Face, LandmarkModel};
use crate::liveness::{Liveness, LivenessModel};
use crate::models::ModelSource;
use crate::planarity::Texture;
use crate::quality::{self, EyeModel, PoseModel, Quality};
use crate::template::Template;

/// Everything the engine measures about the one face of a probe image.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The face.
    pub face: Face,
    /// Its template.
    pub template: Template,
    /// Its liveness (one frame).
    pub liveness: Liveness,
    /// Its quality.
    pub quality: Quality,
    /// The grey image around it, for the planarity cue over a sequence (`None` when the
    /// face's box is degenerate).
    pub texture: Option<crate::planarity::Texture>,
}

/// The face engine. Construct once with [`Engine::load`]; every method is `&self`.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    calibration: Calibration,
    detector: Detector,
    landmarks: LandmarkModel,
    embedder: Embedder,
    liveness: LivenessModel,
    pose: PoseModel,
    eyes: EyeModel,
    attributes: AttributeModels,
    /// Where the models are, for those opened on first use.
    source: ModelSource,
    /// The OCR networks, opened by the first document read (most shells never read one).
    documents: Mutex<Option<Arc<DocumentReader>>>,
}

impl Engine {
    /// Loads and checks every model from `models_dir` (see `models::default_dir`).
    pub fn load(models_dir: &Path, config: EngineConfig) -> Result<Engine> {
        config.validate()?;
        let source = ModelSource::new(models_dir, config.inference_threads)?;
        // `inference_threads` is the engine's core budget for one probe. Detection and
        // landmarks run alone and get all of it; in `analyze` the embedding runs beside
        // liveness + quality, so those models split it. Measured on 2 cores: intra-op threads
        // speed one model up by 1.1-1.3x, two branches side by side by nearly 2x, and two
        // 2-thread sessions side by side oversubscribe the cores.
        let branch = (config.inference_threads / 2).max(1);
        Ok(Engine {
            calibration: Calibration::FR_FEATURE,
            detector: Detector::load(&source)?,
            landmarks: LandmarkModel::load(&source)?,
            embedder: Embedder::load(&source, branch)?,
            liveness: LivenessModel::load(&source, branch)?,
            pose: PoseModel::load(&source, branch)?,
            eyes: EyeModel::load(&source, branch)?,
            attributes: AttributeModels::load(&source)?,
            source,
            documents: Mutex::new(None),
            config,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The score calibration in force.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// Id of the embedding model; every template records it.
    pub fn model_id(&self) -> &str {
        self.embedder.model_id()
    }

    // ---- stages, in pipeline order ----

    /// Stage 1: decode untrusted bytes under the configured limits.
    pub fn decode(&self, bytes: &[u8]) -> Result<Image> {
        image::decode(
            bytes,
            DecodeLimits {
                max_bytes: self.config.max_image_bytes,
                max_pixels: self.config.max_image_pixels,
            },
        )
    }

    /// Stage 2: every face box, largest first (padding fallback included).
    pub fn detect(&self, image: &Image) -> Result<Vec<Detection>> {
        self.detector.detect(image, self.config.detection_threshold)
    }

    /// Stage 3: landmarks of one detection.
    pub fn locate(&self, image: &Image, detection: &Detection) -> Result<Face> {
        self.landmarks.locate(image, detection)
    }

    /// Stage 4: the aligned 112x112 crop.
    pub fn align(&self, image: &Image, face: &Face) -> Result<AlignedFace> {
        aligned_from_image(image, face)
    }

    /// Stage 5: the template of an aligned face.
    pub fn embed(&self, aligned: &AlignedFace) -> Result<Template> {
        self.embedder.embed(aligned)
    }

    /// Stage 5: one-frame liveness of a face.
    pub fn liveness(&self, image: &Image, face: &Face) -> Result<Liveness> {
        self.liveness.check(image, face)
    }

    /// Stage 5: quality of a face (pass `aligned` when already computed).
    pub fn quality(&self, image: &Image, face: &Face, aligned: &AlignedFace) -> Result<Quality> {
        let pose = self.pose.estimate(image, face.bbox)?;
        let eyes = self.eyes.open_probabilities(image, face)?;
        let photometric = quality::photometric(aligned);
        Ok(quality::assess(
            face,
            pose,
            eyes,
            photometric,
            &self.config.quality,
        ))
    }

    /// Estimated age, gender and expression (descriptive only; never used in decisions).
    pub fn attributes(&self, image: &Image, face: &Face) -> Result<Attributes> {
        self.attributes.estimate(image, face)
    }

    // ---- composed operations ----

    /// Every face with landmarks, largest first.
    pub fn faces(&self, image: &Image) -> Result<Vec<Face>> {
        self.detect(image)?
            .iter()
            .map(|d| self.locate(image, d))
            .collect()
    }

    /// The one subject of a probe or enrollment image. `NO_FACE` when none; `MULTIPLE_FACES`
    /// when a second face is sizeable (width at least `bystander_width_ratio` of the main
    /// one): a bystander or a photo held up beside the subject must not pass.
    pub fn single_face(&self, image: &Image) -> Result<Face> {
        let detections = self.detect(image)?;
        let main = detections.first().ok_or(Error::NoFace)?;
        let sizeable = detections
            .iter()
            .filter(|d| d.bbox.width() >= self.config.bystander_width_ratio * main.bbox.width())
            .count();
        if sizeable > 1 {
            return Err(Error::MultipleFaces { count: sizeable });
        }
        self.locate(image, main)
    }

    /// The template of the largest face (no bystander check; for galleries of photos).
    pub fn largest_face_template(&self, image: &Image) -> Result<(Face, Template)> {
        let detection = *self.detect(image)?.first().ok_or(Error::NoFace)?;
        let face = self.locate(image, &detection)?;
        let template = self.embed(&self.align(image, &face)?)?;
        Ok((face, template))
    }

    /// The whole pipeline on a probe: one face, then template, liveness and quality. With a
    /// budget of two or more threads the embedding runs beside liveness and quality on a
    /// second thread (they share only the decoded image, read-only); with one, in sequence.
    pub fn analyze(&self, image: &Image) -> Result<Analysis> {
        let face = self.single_face(image)?;
        let aligned = self.align(image, &face)?;
        if self.config.inference_threads < 2 {
            return Ok(Analysis {
                template: self.embed(&aligned)?,
                liveness: self.liveness(image, &face)?,
                quality: self.quality(image, &face, &aligned)?,
                texture: Texture::around(image, face.landmarks.points()),
                face,
            });
        }
        let (template, side) = std::thread::scope(|scope| {
            let side = scope.spawn(|| -> Result<(Liveness, Quality)> {
                Ok((
                    self.liveness(image, &face)?,
                    self.quality(image, &face, &aligned)?,
                ))
            });
            let template = self.embed(&aligned);
            let side = side
                .join()
                .unwrap_or_else(|_| Err(Error::Runtime("analysis thread panicked".into())));
            (template, side)
        });
        let (liveness, quality) = side?;
        Ok(Analysis {
            template: template?,
            liveness,
            quality,
            texture: Texture::around(image, face.landmarks.points()),
            face,
        })
    }

    /// Finds the holder's portrait on an identity document in any orientation.
    pub fn card_portrait(&self, image: &Image) -> Result<CardPortrait> {
        let mut best: Option<CardPortrait> = None;
        for rotation in card::SEARCH_ORDER {
            let upright = image.rotated(rotation);
            let Some(detection) = self.detect(&upright)?.first().copied() else {
                continue;
            };
            let face = self.locate(&upright, &detection)?;
            if best.as_ref().is_none_or(|b| card::better(&face, &b.face)) {
                best = Some(CardPortrait {
                    rotation,
                    face,
                    upright,
                });
            }
        }
        best.ok_or(Error::NoPortrait)
    }

    /// Reads the machine-readable zone of an identity document (any orientation, photo or
    /// scan). `Ok(None)` when the document has none or it could not be read; a zone that was
    /// read but whose check digits disagree comes back with `valid: false`.
    pub fn read_zone(&self, image: &Image) -> Result<Option<MachineZone>> {
        self.document_reader()?.read_zone(image)
    }

    /// The machine-readable zone on the side of a document that shows `portrait` (a
    /// passport page), read upright with the portrait only: faster than
    /// [`Engine::read_zone`] on a side whose orientation the portrait already gave.
    pub fn read_zone_beside(&self, portrait: &CardPortrait) -> Result<Option<MachineZone>> {
        self.document_reader()?.read_zone_upright(&portrait.upright)
    }

    /// The side of a document that shows `portrait`: the zone beside it
    /// ([`Engine::read_zone_beside`]) and the front's text compared with that zone
    /// ([`Engine::read_front`]), the text found once for both.
    pub fn read_portrait_side(
        &self,
        portrait: &CardPortrait,
    ) -> Result<(Option<MachineZone>, crate::document::CardFront)> {
        self.document_reader()?
            .read_portrait_side(&portrait.upright, &portrait.face.bbox)
    }

    /// The Latin text on the front of an identity card around its `portrait` and the card
    /// number, compared with the document's `zone` when known.
    pub fn read_front(
        &self,
        portrait: &CardPortrait,
        zone: Option<&MachineZone>,
    ) -> Result<crate::document::CardFront> {
        self.document_reader()?
            .read_front(&portrait.upright, &portrait.face.bbox, zone)
    }

    /// Whether an identity document may be enrolled from, by its zone: valid check digits
    /// and not expired on `today` beyond the configured grace days (see
    /// [`crate::document::admit`]).
    pub fn admit_document(&self, zone: &MachineZone, today: crate::document::Day) -> Result<()> {
        crate::document::admit(zone, today, self.config.document_grace_days)
    }

    /// The OCR networks, opened once on first use (a missing model is an error naming the
    /// fetch command, and is tried again next time).
    fn document_reader(&self) -> Result<Arc<DocumentReader>> {
        let mut slot = self
            .documents
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(reader) = slot.as_ref() {
            return Ok(Arc::clone(reader));
        }
        let reader = Arc::new(DocumentReader::load(&self.source)?);
        *slot = Some(Arc::clone(&reader));
        Ok(reader)
    }

    /// The portrait of a document and its template.
    pub fn card_template(&self, image: &Image) -> Result<(CardPortrait, Template)> {
        let portrait = self.card_portrait(image)?;
        let template = self.embed(&self.align(&portrait.upright, &portrait.face)?)?;
        Ok((portrait, template))
    }

    /// Compares two templates (calibrated).
    pub fn compare(&self, a: &Template, b: &Template) -> Result<Comparison> {
        Ok(Comparison::new(a.cosine(b)?, &self.calibration))
    }

    /// 1:1 decision at the configured threshold.
    pub fn verify(&self, probe: &Template, reference: &Template) -> Result<Decision> {
        Ok(decision::verify(
            self.compare(probe, reference)?,
            self.config.verify_threshold,
        ))
    }

    /// 1:1 against a subject enrolled with several templates (selfie, card, ...): the
    /// decision of the best-scoring one; `None` when there are none.
    pub fn verify_subject(
        &self,
        probe: &Template,
        references: &[Template],
    ) -> Result<Option<Decision>> {
        let mut best: Option<Decision> = None;
        for reference in references {
            let decision = self.verify(probe, reference)?;
            if best.is_none_or(|b| decision.comparison.score > b.comparison.score) {
                best = Some(decision);
            }
        }
        Ok(best)
    }

    /// Whether two template sets belong to the same person: the best 1:1 decision between
    /// them accepts. Sync uses it to tell "one person enrolled at two kiosks under one id"
    /// from "an id already taken by someone else".
    pub fn same_person(&self, a: &[Template], b: &[Template]) -> Result<bool> {
        for probe in a {
            if self
                .verify_subject(probe, b)?
                .is_some_and(|decision| decision.accepted)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// 1:N decision over candidates already compared by cosine (an index's exact re-rank),
    /// from a gallery of `gallery_size`: calibrated here, thresholded for the gallery size.
    pub fn identify_cosines<Id>(
        &self,
        candidates: Vec<(Id, f32)>,
        gallery_size: usize,
    ) -> Identification<Id> {
        let compared = candidates
            .into_iter()
            .map(|(id, cosine)| (id, Comparison::new(cosine, &self.calibration)))
            .collect();
        decision::identify(compared, gallery_size, self.config.identify_fpir)
    }

    /// 1:N decision over `(subject, template)` candidates from a gallery of `gallery_size`.
    pub fn identify<'a, Id: Clone + 'a>(
        &self,
        probe: &Template,
        candidates: impl IntoIterator<Item = (&'a Id, &'a Template)>,
        gallery_size: usize,
    ) -> Result<Identification<Id>> {
        let compared = candidates
            .into_iter()
            .map(|(id, t)| Ok((id.clone(), self.compare(probe, t)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(decision::identify(
            compared,
            gallery_size,
            self.config.identify_fpir,
        ))
    }
}
