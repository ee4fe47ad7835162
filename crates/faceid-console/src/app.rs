//! The eframe application: each frame it folds the backend's replies into the state, draws
//! the state, and queues the requests the drawing asked for. Nothing here waits.

use std::path::PathBuf;
use std::sync::Arc;

use eframe::egui;

use crate::api::Api;
use crate::backend::{Backend, CalibrationSource, Request};
use crate::live::LiveControl;
use crate::state::{ConsoleState, Screen, Theme};
use crate::ui;

/// What the console connects to and starts with.
#[derive(Clone)]
pub struct ConsoleOptions {
    /// The kiosk's local API or the server (`https://...`, or `http://` on loopback).
    pub server: String,
    /// An operator or admin API key.
    pub key: String,
    /// PEM of the CA that signed the server's certificate, when it is not a public one.
    pub ca_pem: Option<Vec<u8>>,
    /// The `faceid` command, for evaluation runs.
    pub faceid: PathBuf,
    /// Camera spec pre-filled in the live view (`video:FILE`, `file:DIR`).
    pub camera: String,
    /// An evaluation report to open at start.
    pub report: Option<PathBuf>,
    /// The screen shown first.
    pub screen: Screen,
    /// The theme at start.
    pub theme: Theme,
    /// The language at start.
    pub language: crate::i18n::Language,
}

impl std::fmt::Debug for ConsoleOptions {
    // The key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleOptions")
            .field("server", &self.server)
            .field("camera", &self.camera)
            .finish_non_exhaustive()
    }
}

/// The console.
#[derive(Debug)]
pub struct ConsoleApp {
    /// Everything shown (public for tests and screenshots).
    pub state: ConsoleState,
    backend: Backend,
    live: LiveControl,
    theme_applied: Option<Theme>,
}

impl ConsoleApp {
    /// Starts the backend for `options`; `ctx` is woken whenever a reply arrives.
    pub fn new(ctx: &egui::Context, options: ConsoleOptions) -> anyhow::Result<ConsoleApp> {
        // One client per thread: a client's pooled connections are driven by the runtime
        // that opened them, so sharing one between the backend's and the live feed's
        // runtimes stalls each on the other (measured: 4 s per live frame instead of 25 ms).
        let connect = || {
            Api::new(&options.server, &options.key, options.ca_pem.as_deref()).map_err(|e| {
                anyhow::anyhow!("cannot set up the connection to {}: {e}", options.server)
            })
        };
        let (api, live_api) = (connect()?, connect()?);
        ui::install_fonts(ctx);
        let wake_ctx = ctx.clone();
        let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || wake_ctx.request_repaint());
        let backend_wake = wake.clone();
        let mut state = ConsoleState::new(api.base());
        let backend = Backend::spawn(api, options.faceid.clone(), move || backend_wake());
        state.theme = options.theme;
        state.language = options.language;
        state.live.spec = options.camera.clone();
        if let Some(report) = &options.report {
            state.calibration.path = report.display().to_string();
            state.calibration.running = true;
            backend.send(Request::Calibration(CalibrationSource::File(
                report.clone(),
            )));
        }
        for request in state.open(options.screen) {
            backend.send(request);
        }
        Ok(ConsoleApp {
            state,
            backend,
            live: LiveControl::new(live_api, wake),
            theme_applied: None,
        })
    }

    /// One frame's worth of work and drawing.
    pub fn frame_ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        let mut requests = Vec::new();
        for reply in self.backend.drain() {
            requests.extend(self.state.apply(reply));
        }
        self.live.poll(&mut self.state.live);
        ui::global_keys(&ctx, &mut self.state, &mut requests);
        if self.theme_applied != Some(self.state.theme) {
            ui::apply_theme(&ctx, self.state.theme);
            self.theme_applied = Some(self.state.theme);
        }
        egui::Panel::top("header").show(ui, |ui| {
            ui::header_ui(ui, &mut self.state, &mut requests);
        });
        egui::CentralPanel::default_margins().show(ui, |ui| {
            ui::screen_ui(ui, &mut self.state, &mut self.live, &mut requests);
        });
        for request in requests {
            self.backend.send(request);
        }
    }
}

impl eframe::App for ConsoleApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.frame_ui(ui);
    }
}
