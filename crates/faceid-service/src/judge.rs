//! The use cases that need no gallery: analysing a selfie by the sequence rule, judging a
//! photo for enrollment into a template file, liveness alone, the card portrait. The
//! `faceid` command runs them on files; [`crate::Service`] builds on them.

use std::sync::Arc;

use faceid_core::{
    Analysis, CardPortrait, Challenge, ChallengeConfig, ChallengeOutcome, Engine,
    EnrollmentVerdict, Gate, Image, Liveness, SequenceAnalysis, Template,
};

use crate::failure::Failure;

/// One side of an identity document as read ([`Judge::read_document`]); at least one of the
/// two is present.
#[derive(Debug, Clone)]
pub struct DocumentSide {
    /// The holder's portrait, upright.
    pub portrait: Option<CardPortrait>,
    /// The machine-readable zone with its checks.
    pub zone: Option<faceid_core::MachineZone>,
    /// The Latin text of a side with a portrait (the front) and its card number, compared
    /// with the zone when the same image shows one.
    pub front: Option<faceid_core::CardFront>,
}

/// A probe of one person: frames still to analyse (a photo, a video's frames) or a sequence
/// the caller already accumulated (the kiosk's camera, with [`faceid_core::FrameAccumulator`]).
#[derive(Debug)]
pub enum Selfie {
    /// Frames to analyse, with the clip length for a video (`None` for stills).
    Frames {
        /// Upright frames, in order.
        images: Vec<Image>,
        /// Clip length in seconds for a video, checked against the minimum.
        duration_secs: Option<f64>,
    },
    /// A sequence already analysed frame by frame.
    Analysed(Box<SequenceAnalysis>),
    /// A recording answering an active challenge: its frames with their times. The
    /// challenge is tracked over the frames and its verdict joins the liveness cues.
    Challenged(Box<Challenged>),
}

/// A recording made for one challenge.
#[derive(Debug)]
pub struct Challenged {
    /// The challenge the person was shown.
    pub challenge: Challenge,
    /// How it is tracked (thresholds, time limits).
    pub config: ChallengeConfig,
    /// Upright frames, in order.
    pub images: Vec<Image>,
    /// Each frame's time from the start of the recording, milliseconds.
    pub times_ms: Vec<u64>,
}

impl Selfie {
    /// One still photo.
    pub fn photo(image: Image) -> Selfie {
        Selfie::Frames {
            images: vec![image],
            duration_secs: None,
        }
    }
}

/// The gallery-free use cases over one engine.
#[derive(Debug, Clone)]
pub struct Judge {
    engine: Arc<Engine>,
}

impl Judge {
    /// The use cases over `engine`.
    pub fn new(engine: Arc<Engine>) -> Judge {
        Judge { engine }
    }

    /// The engine (for stages a shell shows but does not decide with: boxes, attributes).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The gate in force (configured preset, liveness and quality required).
    pub fn gate(&self) -> Gate {
        self.engine.gate()
    }

    /// Analyses a selfie by the engine's sequence rule (a no-op for an analysed one).
    pub fn analyze(&self, selfie: Selfie) -> Result<SequenceAnalysis, Failure> {
        match selfie {
            Selfie::Frames {
                images,
                duration_secs,
            } => Ok(self.engine.analyze_sequence(&images, duration_secs)?),
            Selfie::Analysed(sequence) => Ok(*sequence),
            Selfie::Challenged(recording) => Ok(self.challenge(*recording)?.1),
        }
    }

    /// One camera frame through the pipeline, to add to a sequence the caller keeps with
    /// [`faceid_core::FrameAccumulator::observe`] (the kiosk analyses outside its lock, then adds).
    pub fn analyze_frame(&self, frame: &Image) -> Result<Analysis, faceid_core::Error> {
        self.engine.analyze(frame)
    }

    /// Judges a selfie for enrollment (the enrollment gate, and the card match when a card
    /// template is given), without storing anything.
    pub fn enrollment(
        &self,
        selfie: Selfie,
        gate: Gate,
        card: Option<&Template>,
    ) -> Result<(EnrollmentVerdict, SequenceAnalysis), Failure> {
        let probe = self.analyze(selfie)?;
        let verdict = self.engine.enrollment(&probe, gate, card)?;
        Ok((verdict, probe))
    }

    /// Liveness only (no identity): the sequence rule, then the engine's liveness check
    /// (refused when the face is too small to judge).
    pub fn liveness(&self, selfie: Selfie) -> Result<(Liveness, SequenceAnalysis), Failure> {
        let probe = self.analyze(selfie)?;
        Ok((self.engine.liveness_check(&probe)?, probe))
    }

    /// Tracks a challenge over its recording ([`Engine::track_challenge`]); the returned
    /// sequence's liveness carries the challenge's verdict.
    pub fn challenge(
        &self,
        recording: Challenged,
    ) -> Result<(ChallengeOutcome, SequenceAnalysis), Failure> {
        let frames: Vec<(u64, &Image)> = recording
            .times_ms
            .iter()
            .copied()
            .zip(recording.images.iter())
            .collect();
        Ok(self
            .engine
            .track_challenge(recording.challenge, recording.config, &frames)?)
    }

    /// The portrait of an identity document and its template (`NO_PORTRAIT` when none).
    pub fn card(&self, card: &Image) -> Result<(CardPortrait, Template), Failure> {
        Ok(self.engine.card_template(card)?)
    }

    /// What one side of an identity document shows: its portrait (with the Latin text and
    /// card number around it), its machine-readable zone, or both (the front of a passport
    /// page has both, the back of an ID card only the zone). `NO_PORTRAIT` only when it
    /// shows neither.
    pub fn read_document(&self, side: &Image) -> Result<DocumentSide, Failure> {
        let portrait = match self.engine.card_portrait(side) {
            Ok(portrait) => Some(portrait),
            Err(faceid_core::Error::NoPortrait) => None,
            Err(e) => return Err(e.into()),
        };
        // A zone beside the portrait is upright with it; a side without one is searched.
        let (zone, front) = match &portrait {
            Some(p) => {
                let (zone, front) = self.engine.read_portrait_side(p)?;
                (zone, Some(front))
            }
            None => (self.engine.read_zone(side)?, None),
        };
        if portrait.is_none() && zone.is_none() {
            return Err(faceid_core::Error::NoPortrait.into());
        }
        Ok(DocumentSide {
            portrait,
            zone,
            front,
        })
    }

    /// The template of the one face of a reference photo (a passport-style photo sent with
    /// a probe, or a file to compare): no gate, the photo is not a live capture.
    pub fn photo_template(&self, photo: &Image) -> Result<Template, Failure> {
        let face = self.engine.single_face(photo)?;
        Ok(self.engine.embed(&self.engine.align(photo, &face)?)?)
    }
}
