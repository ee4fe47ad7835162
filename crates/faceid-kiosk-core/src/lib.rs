//! # faceid-kiosk-core: the kiosk without its window
//!
//! Everything the kiosk decides, testable headless and shared by the Tauri shell
//! (`src-tauri`) and the operator console's live view:
//!
//! ```text
//! camera (webcam | file: | video:) ─> Capture ─┬─> preview JPEGs for the UI, steady rate
//!                                              └─> newest frame ─> Kiosk::on_frame ─> Flow ─> Screen
//! ```
//!
//! - [`camera`]: frame sources, including the file and video sources that stand in for a
//!   webcam in tests and demos;
//! - [`capture`]: the capture loop: preview at a steady rate, analysis always on the newest
//!   frame only (never a growing queue);
//! - [`guidance`]: what to tell the person in front of the camera, from the engine's verdicts;
//! - [`selfie`]: the selfie stage: the face fills a random oval, then performs the engine's
//!   active challenge;
//! - [`flow`]: the enroll, verify and identify state machines; the UI renders their
//!   [`flow::Screen`] and never sees a score;
//! - [`lockout`]: five failures in three minutes lock an identity or the kiosk;
//! - [`settings`]: what the operator changes, persisted.
#![deny(missing_docs)]

pub mod camera;
pub mod capture;
pub mod flow;
pub mod guidance;
pub mod lockout;
pub mod selfie;
pub mod settings;
