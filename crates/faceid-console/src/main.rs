//! `faceid-console`: the operator console window.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use faceid_console::state::{Screen, Theme};
use faceid_console::{ConsoleApp, ConsoleOptions};

/// Operator console for a faceid kiosk (its --local-api) or server.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Server or kiosk local API address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// File holding an operator or admin API key (else $FACEID_CONSOLE_KEY).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// PEM CA certificate that signed the server's certificate.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Camera for the live view: `kiosk` (the kiosk's own, through its local API),
    /// video:FILE or file:DIR on this computer.
    #[arg(long, default_value = "kiosk")]
    camera: String,
    /// An evaluation report (`faceid --json eval DIR > eval.json`) to open.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The faceid command for evaluation runs (default: beside this program, else PATH).
    #[arg(long)]
    faceid: Option<PathBuf>,
    /// Language: en, fr or ar (switchable in the window).
    #[arg(long, default_value = "en", value_parser = parse_language)]
    lang: faceid_console::i18n::Language,
    /// Start in the light theme.
    #[arg(long)]
    light: bool,
    /// Measure the live view without a window: run the camera's feed for this many seconds
    /// and print its rate and latencies as JSON.
    #[arg(long, value_name = "SECS")]
    measure_live: Option<f64>,
}

fn parse_language(code: &str) -> Result<faceid_console::i18n::Language, String> {
    faceid_console::i18n::Language::parse(code).ok_or_else(|| format!("{code}: use en, fr or ar"))
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let key = match &args.key_file {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("reading the key file {}", file.display()))?
            .trim()
            .to_string(),
        None => std::env::var("FACEID_CONSOLE_KEY")
            .context("no API key: give --key-file or set FACEID_CONSOLE_KEY")?,
    };
    let ca_pem = match &args.ca {
        Some(file) => {
            Some(std::fs::read(file).with_context(|| format!("reading {}", file.display()))?)
        }
        None => None,
    };
    if let Some(secs) = args.measure_live {
        let api = faceid_console::api::Api::new(&args.server, &key, ca_pem.as_deref())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let rate = faceid_console::live::measure(
            api,
            &args.camera,
            std::time::Duration::from_secs_f64(secs.max(1.0)),
        )
        .map_err(|e| anyhow::anyhow!("live view of {}: {e}", args.camera))?;
        println!("{}", serde_json::to_string(&rate)?);
        return Ok(());
    }
    let faceid = args.faceid.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("faceid")))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("faceid"))
    });
    let options = ConsoleOptions {
        server: args.server.clone(),
        key,
        ca_pem,
        faceid,
        camera: args.camera.clone(),
        report: args.report.clone(),
        screen: Screen::Subjects,
        language: args.lang,
        theme: if args.light {
            Theme::Light
        } else {
            Theme::Dark
        },
    };
    let native = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("faceid console")
            .with_inner_size([1366.0, 768.0])
            .with_min_inner_size([1024.0, 640.0]),
        ..Default::default()
    };
    eframe::run_native(
        "faceid console",
        native,
        Box::new(move |cc| Ok(Box::new(ConsoleApp::new(&cc.egui_ctx, options)?))),
    )
    .map_err(|e| anyhow::anyhow!("the window could not open: {e}"))
}
