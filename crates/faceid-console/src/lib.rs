//! The faceid operator console: a native egui window onto a kiosk's local API or a central
//! server, with an operator or admin key. It never opens a gallery itself (sled allows one
//! process per database); everything comes over `/v1`.
//!
//! Data flows one way: [`backend`] (a thread, the only place that talks to the server)
//! sends replies; [`state`] folds them in; [`ui`] draws the state and queues requests.
//! [`live`] feeds the live view from a camera source through `/v1/frame`. The pure rules
//! of the screens live beside them: [`audit_log`] (filters, CSV), [`metrics`] (rates from
//! `/metrics`), [`calibration`] (the `faceid eval` report, histograms).

pub mod api;
pub mod app;
pub mod audit_log;
pub mod backend;
pub mod calibration;
pub mod i18n;
pub mod live;
pub mod metrics;
pub mod state;
pub mod ui;

pub use app::{ConsoleApp, ConsoleOptions};
