//! `faceid`: the command-line shell over the engine. Parses arguments, runs one command,
//! prints its report (JSON with `--json`), and reports an error once, with its stable code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use faceid_cli::{bench, commands, eval, provision, sync};
use faceid_core::{Engine, EngineConfig, models};
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "faceid",
    version,
    about = "On-device face identity: detect, enroll, verify, liveness, quality, ID cards"
)]
struct Cli {
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Model directory (default: $FACEID_MODELS_DIR, else the repository's models/).
    #[arg(long, global = true)]
    models: Option<PathBuf>,
    /// Engine configuration file (TOML, the fields of `[engine]`).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// ONNX Runtime threads per model (overrides the config file).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum ChallengeCommand {
    /// Draw a random challenge and print it (save it to a file for `check`).
    New {
        /// Steps (2 or 3).
        #[arg(long, default_value_t = 2)]
        steps: usize,
    },
    /// Check a recording against a challenge drawn by `new`.
    Check {
        /// The challenge file (JSON printed by `faceid challenge new --json`).
        #[arg(long)]
        challenge: PathBuf,
        /// The recording (video).
        video: PathBuf,
    },
}

#[derive(Subcommand)]
enum Command {
    /// List every face: box, confidence, five landmarks.
    Detect { image: PathBuf },
    /// Make a template file from a selfie (quality-gated) or, with --card, an ID document.
    Enroll {
        image: PathBuf,
        /// The image is an identity document: use its portrait.
        #[arg(long)]
        card: bool,
        /// Template file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// 1:1 decision between two images or template files.
    Verify { a: PathBuf, b: PathBuf },
    /// Liveness of each image or video, and of all their frames as one sequence (the fused
    /// rule: passive network and planarity).
    Liveness {
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Active liveness challenges: draw one, or check a recording against one.
    #[command(subcommand)]
    Challenge(ChallengeCommand),
    /// Quality measures and attributes of the one face of an image.
    Quality { image: PathBuf },
    /// Find the portrait on an identity document (any orientation).
    Card {
        image: PathBuf,
        /// Write the aligned 112x112 portrait here (PNG).
        #[arg(long)]
        portrait: Option<PathBuf>,
    },
    /// Verification, liveness and ID-card figures over a dataset folder.
    Eval {
        /// Folder in the shared eval layout.
        #[arg(default_value = "../shared/eval")]
        dir: PathBuf,
        /// Planar attacks to simulate from the print and card images.
        #[arg(long, default_value_t = 1000)]
        pad_sims: usize,
        /// Only the machine-readable zone section (the specimens against their transcription).
        #[arg(long)]
        mrz_only: bool,
    },
    /// Per-stage latency on one image at 1 and 2 inference threads.
    Bench {
        /// Image with one face (default: a 640x480 frame cut from the first sample photo).
        image: Option<PathBuf>,
        /// Timed runs per stage.
        #[arg(long, default_value_t = 200)]
        runs: usize,
        /// Benchmark the image as it is instead of a 640x480 kiosk frame cut around its largest face.
        #[arg(long)]
        as_is: bool,
        /// Instead of the stages: 1:N search over this many synthetic templates.
        #[arg(long)]
        gallery: Option<usize>,
        /// Probes for --gallery.
        #[arg(long, default_value_t = 100)]
        queries: usize,
        /// Also write the 640x480 kiosk frame that is benchmarked (JPEG) to this file.
        #[arg(long)]
        save_frame: Option<PathBuf>,
        /// Instead of the stages: sync over loopback HTTP, a kiosk pushing this many queued
        /// enrollments...
        #[arg(long)]
        sync_push: Option<usize>,
        /// ...and a fresh kiosk pulling this many subjects from the server.
        #[arg(long, default_value_t = 100_000)]
        sync_pull: usize,
    },
    /// Run the REST server on the gallery in --data.
    Serve {
        /// Address and port to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Gallery directory (created when absent).
        #[arg(long)]
        data: PathBuf,
        /// Gallery key file (0600, outside --data); default: $FACEID_GALLERY_KEY, else
        /// $XDG_CONFIG_HOME/faceid/gallery.key, created on first start.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Engine jobs allowed to wait before answering 503.
        #[arg(long, default_value_t = 32)]
        queue: usize,
        /// Largest selfie-video upload in MiB.
        #[arg(long, default_value_t = 50)]
        max_video_mb: usize,
        /// Seconds a request may take before it is answered 503 (Retry-After).
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
        /// Transport key of surface 4's encrypted fields (0600, outside --data); default:
        /// $FACEID_TRANSPORT_KEY. Without one, surface 4 answers 500.
        #[arg(long)]
        transport_key_file: Option<PathBuf>,
        /// Refuse keyless callers on loopback too (surfaces 1 and 3 accept them by default,
        /// as their existing clients send no credentials).
        #[arg(long)]
        require_keys: bool,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Keep the gallery in PostgreSQL (a libpq connection string, e.g.
        /// "host=127.0.0.1 port=5432 user=faceid dbname=faceid") instead of sled in --data,
        /// so several server processes can share it. --data still holds the API keys.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// A headless kiosk's sync: push the outbox of the gallery in --gallery to --server and
    /// pull the server's changes, every few seconds until interrupted (or once).
    Sync {
        /// Kiosk gallery directory.
        #[arg(long)]
        gallery: PathBuf,
        /// Gallery key file; default: $FACEID_GALLERY_KEY.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Server base URL (https://, or http:// on loopback only).
        #[arg(long)]
        server: String,
        /// File holding this device's token (`faceid devices issue`); default:
        /// $FACEID_DEVICE_TOKEN.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// PEM certificate of the authority that signed the server's certificate.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// Push and pull once, print what was done, exit (non-zero if the server could
        /// not be reached).
        #[arg(long)]
        once: bool,
        /// Events per push.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Seconds between cycles.
        #[arg(long, default_value_t = 5.0)]
        interval_secs: f64,
    },
    /// Issue, list or revoke kiosk device tokens on a running server (admin key in
    /// $FACEID_ADMIN_KEY).
    Devices {
        /// Server base URL.
        #[arg(long)]
        server: String,
        /// PEM certificate of the authority that signed the server's certificate.
        #[arg(long)]
        ca: Option<PathBuf>,
        #[command(subcommand)]
        action: DevicesAction,
    },
    /// Seal a file for one of surface 4's encrypted form fields (AES-256-GCM, base64 on
    /// stdout).
    Encrypt {
        /// Transport key file (64 hex digits); default: $FACEID_TRANSPORT_KEY.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// The form field the value is for: encrypted_video or encrypted_image.
        #[arg(long)]
        field: String,
        /// The file to seal.
        file: PathBuf,
    },
    /// Manage keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Download or check the pinned models, runtime and sample images.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Create an API key; prints {"key":..,"app_id":..,"id":..,"role":..} once.
    Create {
        /// Gallery directory whose server will accept the key.
        #[arg(long)]
        data: PathBuf,
        /// client, operator or admin.
        #[arg(long, default_value = "client")]
        role: String,
    },
    /// Write a new random gallery key to FILE (mode 0600). Keep it away from the data.
    Gallery { file: PathBuf },
    /// Write a new random transport key (surface 4's encrypted fields) to FILE (mode 0600);
    /// give it to the server (`serve --transport-key-file`) and to its clients.
    Transport { file: PathBuf },
}

#[derive(Subcommand)]
enum DevicesAction {
    /// Issue the token of a new device; prints {"key":..,"app_id":NAME,..} once.
    Issue { name: String },
    /// Revoke a device's token: its next push or pull is refused.
    Revoke { name: String },
    /// List devices and their sync state.
    List,
}

#[derive(Subcommand)]
enum ModelsAction {
    /// Download whatever is missing or corrupt (idempotent; offline once done).
    Fetch,
    /// Check every file against its pinned sha256.
    Verify,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = commands::error_code(&error);
            if json {
                #[derive(Serialize)]
                struct Failure {
                    error: ErrorBody,
                }
                #[derive(Serialize)]
                struct ErrorBody {
                    code: String,
                    message: String,
                }
                let body = Failure {
                    error: ErrorBody {
                        code,
                        message: format!("{error:#}"),
                    },
                };
                println!("{}", serde_json::to_string(&body).unwrap_or_default());
            } else {
                eprintln!("error [{code}]: {error:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn engine_config(cli: &Cli) -> Result<EngineConfig> {
    let mut config = match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str::<EngineConfig>(&text)
                .with_context(|| format!("parsing {}", path.display()))?
        }
        None => EngineConfig::default(),
    };
    if let Some(threads) = cli.threads {
        config.inference_threads = threads;
    }
    config.validate()?;
    Ok(config)
}

fn print<T: Serialize>(json: bool, report: &T, text: impl FnOnce(&T) -> String) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", text(report));
    }
    Ok(())
}

fn pretty<T: Serialize>(report: &T) -> String {
    // Text form of the small reports: indented JSON reads well enough for one face.
    serde_json::to_string_pretty(report)
        .map(|s| s + "\n")
        .unwrap_or_default()
}

fn run(cli: Cli) -> Result<()> {
    let models_dir = cli.models.clone().unwrap_or_else(models::default_dir);
    let load =
        |cli: &Cli| -> Result<Engine> { Ok(Engine::load(&models_dir, engine_config(cli)?)?) };
    let judge = |cli: &Cli| -> Result<faceid_service::Judge> {
        Ok(faceid_service::Judge::new(std::sync::Arc::new(load(cli)?)))
    };
    match &cli.command {
        Command::Models { action } => match action {
            ModelsAction::Fetch => {
                std::fs::create_dir_all(&models_dir)
                    .with_context(|| format!("creating {}", models_dir.display()))?;
                let written = provision::fetch(&models_dir, &mut |line| eprintln!("{line}"))?;
                let status = provision::verify(&models_dir)?;
                print(
                    cli.json,
                    &serde_json::json!({"written": written, "artefacts": status}),
                    |_| {
                        format!(
                            "{} artefacts verified in {}\n",
                            status.len(),
                            models_dir.display()
                        )
                    },
                )
            }
            ModelsAction::Verify => {
                let status = provision::verify(&models_dir)?;
                let bad: Vec<_> = status
                    .iter()
                    .filter(|s| s.state != provision::ArtefactState::Ok)
                    .collect();
                print(cli.json, &status, |s| {
                    s.iter()
                        .map(|a| {
                            format!(
                                "{:<8} {}\n",
                                format!("{:?}", a.state).to_lowercase(),
                                a.file
                            )
                        })
                        .collect()
                })?;
                anyhow::ensure!(
                    bad.is_empty(),
                    "{} artefacts missing or corrupt: run `{}`",
                    bad.len(),
                    models::FETCH_COMMAND
                );
                Ok(())
            }
        },
        Command::Detect { image } => {
            print(cli.json, &commands::detect(&load(&cli)?, image)?, |r| {
                let mut text = format!(
                    "{}x{}: {} face(s), largest first\n",
                    r.width,
                    r.height,
                    r.faces.len()
                );
                for f in &r.faces {
                    text += &format!(
                        "  box ({:.0}, {:.0})-({:.0}, {:.0})  confidence {:.2}  inter-eye {:.0} px\n",
                        f.bbox.x1, f.bbox.y1, f.bbox.x2, f.bbox.y2, f.score, f.inter_eye_px
                    );
                }
                text
            })
        }
        Command::Enroll {
            image,
            card,
            output,
        } => print(
            cli.json,
            &commands::enroll(&judge(&cli)?, image, *card, output)?,
            pretty,
        ),
        Command::Verify { a, b } => print(cli.json, &commands::verify(&judge(&cli)?, a, b)?, |r| {
            format!(
                "{}  score {:.3} (cosine {:.3}, FAR {:.1e}), threshold {:.2}\n",
                if r.decision.accepted {
                    "MATCH"
                } else {
                    "NO MATCH"
                },
                r.decision.comparison.score,
                r.decision.comparison.cosine,
                r.far,
                r.decision.threshold
            )
        }),
        Command::Liveness { images } => print(
            cli.json,
            &commands::liveness(&judge(&cli)?, images)?,
            pretty,
        ),
        Command::Challenge(ChallengeCommand::New { steps }) => {
            print(cli.json, &commands::new_challenge(*steps), pretty)
        }
        Command::Challenge(ChallengeCommand::Check { challenge, video }) => print(
            cli.json,
            &commands::check_challenge(&judge(&cli)?, challenge, video)?,
            pretty,
        ),
        Command::Quality { image } => {
            print(cli.json, &commands::quality(&judge(&cli)?, image)?, pretty)
        }
        Command::Card { image, portrait } => print(
            cli.json,
            &commands::card(&judge(&cli)?, image, portrait.as_deref())?,
            pretty,
        ),
        Command::Serve {
            listen,
            data,
            key_file,
            queue,
            max_video_mb,
            timeout_secs,
            transport_key_file,
            require_keys,
            tls_cert,
            tls_key,
            postgres,
        } => {
            // Without --key-file: $FACEID_GALLERY_KEY, else the key file in the user's
            // configuration directory, created on first start (0600, never in --data).
            let key = match key_file {
                Some(file) => faceid_gallery::GalleryKey::from_file(file, data)?,
                None => {
                    let path = faceid_gallery::key::default_key_path("gallery.key");
                    let (key, source) =
                        faceid_gallery::GalleryKey::from_env_or_file(&path, data)
                            .with_context(|| format!("the gallery key {}", path.display()))?;
                    match source {
                        faceid_gallery::key::KeySource::Created(path) => eprintln!(
                            "created the gallery key {} (mode 0600): back it up, the gallery cannot be read without it",
                            path.display()
                        ),
                        faceid_gallery::key::KeySource::File(path) => {
                            eprintln!("gallery key: {}", path.display())
                        }
                        faceid_gallery::key::KeySource::Environment => {
                            eprintln!("gallery key: ${}", faceid_gallery::key::KEY_ENV)
                        }
                    }
                    key
                }
            };
            let engine = std::sync::Arc::new(load(&cli)?);
            std::fs::create_dir_all(data)
                .with_context(|| format!("creating {}", data.display()))?;
            let gallery: std::sync::Arc<dyn faceid_gallery::GalleryStore> = match postgres {
                Some(url) => std::sync::Arc::new(
                    faceid_gallery::postgres::PgGallery::connect(url, &key)
                        .context("opening the PostgreSQL gallery")?,
                ),
                None => std::sync::Arc::new(faceid_gallery::Gallery::open(data, &key)?),
            };
            let keys = faceid_server::keys::ApiKeys::load(data)?;
            let limits = faceid_server::ServerLimits {
                queue: *queue,
                max_video_bytes: max_video_mb.saturating_mul(1024 * 1024),
                request_timeout: std::time::Duration::from_secs((*timeout_secs).max(1)),
                keyless_loopback: !*require_keys,
                ..faceid_server::ServerLimits::default()
            };
            let mut state = faceid_server::AppState::new(engine, gallery, keys, &limits);
            let transport = match transport_key_file {
                Some(file) => Some(faceid_server::transport::TransportKey::from_file(
                    file,
                    Some(data),
                )?),
                None => faceid_server::transport::TransportKey::from_env().transpose()?,
            };
            if let Some(key) = transport {
                state = state.with_transport_key(key);
            }
            let router = faceid_server::app(state, &limits);
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_writer(std::io::stderr)
                .init();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let tls = match (tls_cert, tls_key) {
                (Some(cert), Some(key)) => Some(faceid_server::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            };
            runtime.block_on(async {
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                match tls {
                    Some(tls) => {
                        let listener = std::net::TcpListener::bind(listen)
                            .with_context(|| format!("binding {listen}"))?;
                        eprintln!("faceid serving on https://{}", listener.local_addr()?);
                        faceid_server::serve_tls(listener, router, &tls, shutdown).await?;
                    }
                    None => {
                        let listener = tokio::net::TcpListener::bind(listen)
                            .await
                            .with_context(|| format!("binding {listen}"))?;
                        eprintln!("faceid serving on http://{}", listener.local_addr()?);
                        faceid_server::serve(listener, router, shutdown).await?;
                    }
                }
                anyhow::Ok(())
            })
        }
        Command::Sync {
            gallery,
            key_file,
            server,
            token_file,
            ca,
            once,
            batch,
            interval_secs,
        } => sync::run(&sync::SyncArgs {
            gallery,
            key_file: key_file.as_deref(),
            server,
            token_file: token_file.as_deref(),
            ca: ca.as_deref(),
            once: *once,
            batch: *batch,
            interval: std::time::Duration::from_secs_f64(interval_secs.clamp(0.05, 3600.0)),
            json: cli.json,
        }),
        Command::Devices { server, ca, action } => {
            let action = match action {
                DevicesAction::Issue { name } => sync::DeviceAction::Issue(name),
                DevicesAction::Revoke { name } => sync::DeviceAction::Revoke(name),
                DevicesAction::List => sync::DeviceAction::List,
            };
            sync::devices(server, ca.as_deref(), action)
        }
        Command::Keys { action } => match action {
            KeysAction::Create { data, role } => {
                let role = faceid_server::keys::Role::parse(role)
                    .context("role must be client, operator or admin")?;
                let key = faceid_server::keys::ApiKeys::create(data, role)?;
                println!("{}", serde_json::to_string(&key)?);
                Ok(())
            }
            KeysAction::Transport { file } => {
                faceid_gallery::GalleryKey::generate().write_new(file)?;
                eprintln!(
                    "wrote a new transport key to {} (mode 0600)",
                    file.display()
                );
                Ok(())
            }
            KeysAction::Gallery { file } => {
                faceid_gallery::GalleryKey::generate().write_new(file)?;
                eprintln!(
                    "wrote a new gallery key to {} (mode 0600); keep it outside the data directory",
                    file.display()
                );
                Ok(())
            }
        },
        Command::Encrypt {
            key_file,
            field,
            file,
        } => {
            anyhow::ensure!(
                matches!(field.as_str(), "encrypted_video" | "encrypted_image"),
                "--field must be encrypted_video or encrypted_image"
            );
            let key = match key_file {
                Some(path) => faceid_server::transport::TransportKey::from_file(path, None)?,
                None => {
                    faceid_server::transport::TransportKey::from_env().with_context(|| {
                        format!(
                            "no transport key: pass --key-file FILE or set {}",
                            faceid_server::transport::TRANSPORT_KEY_ENV
                        )
                    })??
                }
            };
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            println!("{}", key.seal(field, &bytes));
            Ok(())
        }
        Command::Eval {
            dir,
            pad_sims,
            mrz_only,
        } => {
            anyhow::ensure!(dir.is_dir(), "no evaluation folder at {}", dir.display());
            let engine = load(&cli)?;
            if *mrz_only {
                let report = faceid_cli::zones::evaluate(&engine, dir)?
                    .context("no idcards/specimen folder in the evaluation folder")?;
                return print(cli.json, &report, faceid_cli::zones::render);
            }
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg:>24} [{bar:40}] {pos}/{len} {elapsed}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let report = eval::run(&engine, dir, *pad_sims, &mut |done, total, phase| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message(phase.to_string());
            })?;
            bar.finish_and_clear();
            print(cli.json, &report, eval::render)
        }
        Command::Bench {
            sync_push: Some(pending),
            sync_pull,
            ..
        } => {
            let report = bench::sync(&models_dir, *pending, *sync_pull)?;
            print(cli.json, &report, bench::render_sync)
        }
        Command::Bench {
            gallery: Some(n),
            queries,
            ..
        } => {
            let report = bench::gallery(*n, *queries, 0x5EED)?;
            print(cli.json, &report, bench::render_gallery)
        }
        Command::Bench {
            image,
            runs,
            as_is,
            save_frame,
            ..
        } => {
            let image = image
                .clone()
                .unwrap_or_else(|| models_dir.join("samples/sample1.jpg"));
            if let Some(out) = save_frame {
                let engine = load(&cli)?;
                let frame = bench::kiosk_frame(&engine, &commands::load_image(&engine, &image)?)?;
                std::fs::write(out, frame).with_context(|| format!("writing {}", out.display()))?;
            }
            let threads = match cli.threads {
                Some(n) => vec![n],
                None => vec![1, 2],
            };
            let report = bench::run(&models_dir, &image, !as_is, *runs, &threads)?;
            print(cli.json, &report, bench::render)
        }
    }
}
