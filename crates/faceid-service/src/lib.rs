//! # faceid-service: the use cases, once
//!
//! Every way into faceid (the five HTTP surfaces, the native `/v1` API, the kiosk flow and
//! the `faceid` command) does the same few things: enroll, verify, identify, erase, reset.
//! [`Service`] does each of them over the engine and a gallery, in one order:
//!
//! ```text
//! Selfie (frames or an analysed sequence)
//!   ─ Engine::analyze_sequence ─> SequenceAnalysis          (capture refusals audited)
//!   ─ Engine::{enrollment, verification, identification} ─> verdict   (faceid-core::verdict)
//!   ─ gallery write / read ─> audit event, exactly one per attempt
//!   ─> typed outcome (the shell only translates it to its wire form)
//! ```
//!
//! The calls block (inference, durable writes): async shells run them off the executor.
//! Failures carry a [`Class`], so each shell's answer table is one total mapping.
#![deny(missing_docs)]

mod failure;
mod judge;
mod usecase;

pub use crate::failure::{Class, Failure};
pub use crate::judge::{Challenged, DocumentSide, Judge, Selfie};
pub use crate::usecase::{AdmittedCard, Enrolled, Enrollment, Preview, Service};
