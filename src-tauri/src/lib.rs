//! # faceid-kiosk: the Tauri shell
//!
//! A thin window over [`faceid_kiosk_core`]: it opens the engine and the gallery, starts the
//! capture loop (the UI pulls the newest preview frame whenever it has shown the last), runs
//! the analysis worker on the newest frame, and exposes the small set of commands in
//! [`cmd`] that the UI needs. The UI renders the flow's `Screen` (sent as `view` events) and
//! never sees a score.
//!
//! ```text
//! faceid-kiosk [--data DIR] [--key-file FILE] [--camera SPEC] [--card-source SPEC]
//!              [--lang fr|ar|en] [--windowed] [--local-api 127.0.0.1:PORT]
//! ```
//! Without a webcam the kiosk starts on the demo video (`models/demo/selfie.mp4`, made by
//! `make setup`) and says so on screen.
#![deny(missing_docs)]

pub mod cmd;
pub mod options;
pub mod speech;
pub mod webcam;
pub mod worker;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use tauri::{Emitter, Manager};

use crate::options::Options;
use crate::worker::Shared;

/// Runs the kiosk until its window closes.
pub fn run() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let options = match Options::from_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("faceid-kiosk: {message}\n\n{}", options::USAGE);
            return ExitCode::from(2);
        }
    };
    let shared = match worker::open(&options) {
        Ok(shared) => Arc::new(shared),
        Err(message) => {
            eprintln!("faceid-kiosk: {message}");
            return ExitCode::FAILURE;
        }
    };
    let windowed = options.windowed;
    let result = tauri::Builder::default()
        .manage(shared.clone())
        .invoke_handler(tauri::generate_handler![
            cmd::view,
            cmd::preview,
            cmd::start_flow,
            cmd::claim,
            cmd::confirm_details,
            cmd::skip_card_back,
            cmd::cancel,
            cmd::touch,
            cmd::set_language,
            cmd::operator_unlock,
            cmd::operator_lock,
            cmd::settings,
            cmd::save_settings,
            cmd::subjects,
            cmd::sync_status,
            cmd::resolve_conflict,
            cmd::delete_subject,
            cmd::set_speech,
            cmd::speak,
        ])
        .setup(move |app| {
            tauri::WebviewWindowBuilder::new(
                app,
                "main",
                tauri::WebviewUrl::App("index.html".into()),
            )
            .title("faceid")
            .fullscreen(!windowed)
            .decorations(windowed)
            .closable(windowed)
            .inner_size(1280.0, 800.0)
            .build()?;
            let handle = app.handle().clone();
            let state: tauri::State<'_, Arc<Shared>> = app.state();
            let shared = state.inner().clone();
            worker::start(
                shared,
                Box::new(move |view| {
                    let _ = handle.emit("view", view);
                }),
            );
            Ok(())
        })
        .run(tauri::generate_context!("../tauri.conf.json"));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faceid-kiosk: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The operator session: unlocked by the PIN, locked again after five idle minutes.
#[derive(Debug, Default)]
pub struct OperatorSession(Mutex<Option<std::time::Instant>>);
