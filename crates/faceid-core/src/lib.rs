//! # faceid-core: the face engine
//!
//! Bytes in, decisions out, with no I/O but reading the model files. A frame flows one way
//! through one module per stage:
//!
//! ```text
//! bytes ─ image ─> Image ─ detect ─> Detection ─ landmarks ─> Face ─ align ─> AlignedFace
//!                                                              │               │
//!                                          liveness, quality <─┘     embed ─> Template
//!                                                                              │
//!                                       calibration ─> Comparison ─ decision ─> Decision
//!
//! frames ─ sequence ─> SequenceAnalysis ─ verdict ─> EnrollmentVerdict / Verification / Identified
//! ```
//!
//! The verdicts ([`verdict`]) are the product's decision rules, written once: liveness first,
//! then quality, then the match. Shells reach them through `faceid-service`.
//!
//! [`Engine`] loads the models once (checking their pinned sha256) and exposes every stage
//! plus the composed operations the kiosk, server and CLI share: [`Engine::analyze`],
//! [`Engine::card_portrait`], [`Engine::read_zone`], [`Engine::verify`], [`Engine::identify`]. Thresholds,
//! calibration and error codes live here and nowhere else.
#![deny(missing_docs)]

pub mod align;
pub mod attributes;
pub mod calibration;
pub mod card;
pub mod challenge;
pub mod config;
pub mod decision;
pub mod detect;
pub mod document;
mod embed;
pub mod engine;
pub mod error;
pub mod evaluation;
pub mod geometry;
pub mod image;
pub mod landmarks;
pub mod liveness;
pub mod models;
pub mod planarity;
pub mod quality;
pub mod sampling;
pub mod sequence;
pub mod template;
pub mod verdict;

pub use crate::align::AlignedFace;
pub use crate::attributes::Attributes;
pub use crate::calibration::Calibration;
pub use crate::card::CardPortrait;
pub use crate::challenge::{
    Challenge, ChallengeConfig, ChallengeFailure, ChallengeOutcome, ChallengeTracker, Observation,
    Step,
};
pub use crate::config::{EngineConfig, QualityLimits};
pub use crate::decision::{Comparison, Decision, Identification};
pub use crate::detect::Detection;
pub use crate::document::{
    CardFront, Day, FrontCheck, MachineZone, MrzChecks, MrzFields, MrzFormat,
};
pub use crate::engine::{Analysis, Engine};
pub use crate::error::{Error, ErrorClass, ErrorCode, Result};
pub use crate::image::{DecodeLimits, Image, Rotation};
pub use crate::landmarks::{Face, Landmarks};
pub use crate::liveness::{
    ChallengeVerdict, Liveness, LivenessAccumulator, LivenessFailure, LivenessJudgement,
    LivenessPreset,
};
pub use crate::planarity::Planarity;
pub use crate::quality::{Measure, Quality};
pub use crate::sequence::{FrameAccumulator, FrameSeen, FrameStep, SequenceAnalysis};
pub use crate::template::Template;
pub use crate::verdict::{EnrollmentVerdict, Gate, Identified, Reason, Verification};
