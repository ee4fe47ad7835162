//! The backend thread: every call to the server, every file and every child process runs
//! here, never on the UI thread. The UI sends [`Request`]s and drains [`Reply`]s each frame;
//! the backend wakes the UI when a reply is ready.
//!
//! The backend also owns the connection state: the first call that cannot reach the server
//! turns it to [`Connection::Lost`], a health probe then retries with backoff (1, 2, 4, 5 s)
//! until the server answers, and [`Connection::Online`] tells the UI to reload its screen.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crate::api::{Api, ApiError, AuditPage, Devices, LocalSync, ServerStatus, Subject};
use crate::calibration::EvalReport;
use crate::metrics::MetricsSample;

/// Health is polled this often while connected (the request-rate window).
pub const HEALTH_EVERY: Duration = Duration::from_secs(2);
/// Longest wait between reconnection attempts.
pub const MAX_RETRY: Duration = Duration::from_secs(5);
/// Thumbnails are scaled to fit this many pixels.
pub const THUMBNAIL_PX: u32 = 96;

/// Work for the backend.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// List subjects matching `search`.
    Subjects {
        /// Id or name fragment; empty for all.
        search: String,
    },
    /// Fetch and shrink a subject's retained image.
    Thumbnail {
        /// Subject id.
        id: String,
    },
    /// Erase a subject (already confirmed by the operator).
    Delete {
        /// Subject id.
        id: String,
    },
    /// Read the audit log after `after`, optionally about one subject.
    Audit {
        /// Last sequence number already held (0 for all).
        after: u64,
        /// Subject filter sent to the server; empty for all.
        subject: String,
    },
    /// Poll status, metrics, devices and kiosk sync now.
    Health,
    /// Write CSV text to a file.
    Export {
        /// Target file.
        path: PathBuf,
        /// The CSV.
        csv: String,
    },
    /// Load an evaluation report from a file, or run `faceid eval` over a folder.
    Calibration(CalibrationSource),
}

/// Where an evaluation report comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum CalibrationSource {
    /// A saved `faceid --json eval` output.
    File(PathBuf),
    /// A dataset folder to evaluate now.
    Folder(PathBuf),
}

/// The state of the link to the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    /// No answer yet.
    Connecting,
    /// The last call was answered.
    Online,
    /// The last call got no answer; retrying on its own.
    Lost {
        /// What went wrong.
        error: String,
        /// When the next attempt is due.
        next_attempt: Instant,
    },
}

/// A small RGBA picture made off the UI thread.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    /// Width and height in pixels.
    pub size: [usize; 2],
    /// RGBA bytes, row by row.
    pub rgba: Vec<u8>,
    /// Unique per picture made: the UI uploads a picture's texture once, when it first
    /// sees this number.
    pub serial: u64,
}

impl Picture {
    /// From an RGB image.
    pub fn from_rgb(image: &image::RgbImage) -> Picture {
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let rgba = image::DynamicImage::ImageRgb8(image.clone()).into_rgba8();
        Picture {
            size: [rgba.width() as usize, rgba.height() as usize],
            rgba: rgba.into_raw(),
            serial: SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// One health poll.
#[derive(Debug, Clone)]
pub struct Health {
    /// When it was taken.
    pub at: Instant,
    /// `/v1/admin/status`.
    pub status: Result<ServerStatus, ApiError>,
    /// `/metrics`, parsed.
    pub metrics: Result<MetricsSample, ApiError>,
    /// `/v1/admin/devices` (admin keys only).
    pub devices: Result<Devices, ApiError>,
    /// `/v1/admin/sync` (kiosks only).
    pub local_sync: Result<LocalSync, ApiError>,
}

/// What the backend tells the UI.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The link changed state.
    Connection(Connection),
    /// Subjects for a search.
    Subjects {
        /// The search they answer.
        search: String,
        /// Matches.
        subjects: Vec<Subject>,
    },
    /// A thumbnail (`None`: no retained image or not decodable).
    Thumbnail {
        /// Subject id.
        id: String,
        /// The picture.
        picture: Option<Picture>,
    },
    /// A subject was erased (or not).
    Deleted {
        /// Subject id.
        id: String,
        /// Why not.
        result: Result<(), String>,
    },
    /// Audit events.
    Audit(AuditPage),
    /// A health poll.
    Health(Box<Health>),
    /// An export finished.
    Exported(Result<PathBuf, String>),
    /// An evaluation report (or why none).
    Calibration(Result<Box<EvalReport>, String>),
    /// A request failed for a reason other than the connection.
    Failed {
        /// What was asked (`subjects`, `audit`...).
        what: &'static str,
        /// Why.
        error: ApiError,
    },
}

/// The UI's handle on the backend thread; dropping it stops the thread.
#[derive(Debug)]
pub struct Backend {
    requests: Sender<Request>,
    replies: Receiver<Reply>,
}

impl Backend {
    /// Starts the backend for `api`. `faceid` is the CLI used for evaluation runs; `wake` is
    /// called after every reply (the UI passes its repaint request).
    pub fn spawn(api: Api, faceid: PathBuf, wake: impl Fn() + Send + Sync + 'static) -> Backend {
        let (requests, inbox) = std::sync::mpsc::channel();
        let (outbox, replies) = std::sync::mpsc::channel();
        let wake: std::sync::Arc<dyn Fn() + Send + Sync> = std::sync::Arc::new(wake);
        let spawned = std::thread::Builder::new()
            .name("faceid-console-backend".into())
            .spawn(move || {
                let worker = Worker {
                    api,
                    faceid,
                    replies: outbox,
                    wake,
                    connection: Connection::Connecting,
                    failures: 0,
                };
                worker.run(inbox);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the console backend");
        }
        Backend { requests, replies }
    }

    /// Queues a request (never blocks).
    pub fn send(&self, request: Request) {
        let _ = self.requests.send(request);
    }

    /// Every reply ready now (never blocks).
    pub fn drain(&self) -> Vec<Reply> {
        self.replies.try_iter().collect()
    }
}

struct Worker {
    api: Api,
    faceid: PathBuf,
    replies: Sender<Reply>,
    wake: std::sync::Arc<dyn Fn() + Send + Sync>,
    connection: Connection,
    failures: u32,
}

impl Worker {
    fn run(mut self, inbox: Receiver<Request>) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                self.reply(Reply::Connection(Connection::Lost {
                    error: format!("no async runtime: {e}"),
                    next_attempt: Instant::now() + Duration::from_secs(3600),
                }));
                return;
            }
        };
        let mut next_poll = Instant::now();
        loop {
            let wait = next_poll.saturating_duration_since(Instant::now());
            match inbox.recv_timeout(wait) {
                Ok(request) => runtime.block_on(self.handle(request)),
                Err(RecvTimeoutError::Timeout) => {
                    runtime.block_on(self.health());
                    next_poll = match &self.connection {
                        Connection::Lost { next_attempt, .. } => *next_attempt,
                        _ => Instant::now() + HEALTH_EVERY,
                    };
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if let Connection::Lost { next_attempt, .. } = &self.connection {
                next_poll = next_poll.min(*next_attempt);
            }
        }
    }

    fn reply(&self, reply: Reply) {
        let _ = self.replies.send(reply);
        (self.wake)();
    }

    /// Notes whether `result` reached the server; `Some(value)` when it succeeded, else
    /// reports a non-connection failure as `what`.
    fn settle<T>(&mut self, what: &'static str, result: Result<T, ApiError>) -> Option<T> {
        match result {
            Ok(value) => {
                self.reached();
                Some(value)
            }
            Err(error) if error.is_connection_lost() => {
                self.lost(&error);
                None
            }
            Err(error) => {
                self.reached();
                self.reply(Reply::Failed { what, error });
                None
            }
        }
    }

    fn reached(&mut self) {
        self.failures = 0;
        if self.connection != Connection::Online {
            tracing::info!("connected to {}", self.api.base());
            self.connection = Connection::Online;
            self.reply(Reply::Connection(Connection::Online));
        }
    }

    fn lost(&mut self, error: &ApiError) {
        if !matches!(self.connection, Connection::Lost { .. }) {
            tracing::warn!("connection to {} lost: {error}", self.api.base());
        }
        self.failures += 1;
        let backoff =
            Duration::from_secs(1 << self.failures.saturating_sub(1).min(3)).min(MAX_RETRY);
        self.connection = Connection::Lost {
            error: error.to_string(),
            next_attempt: Instant::now() + backoff,
        };
        self.reply(Reply::Connection(self.connection.clone()));
    }

    async fn handle(&mut self, request: Request) {
        match request {
            Request::Subjects { search } => {
                let result = self.api.subjects(&search).await;
                if let Some(subjects) = self.settle("subjects", result) {
                    self.reply(Reply::Subjects { search, subjects });
                }
            }
            Request::Thumbnail { id } => {
                let picture = match self.api.subject_image(&id).await {
                    Ok(bytes) => {
                        self.reached();
                        thumbnail(&bytes)
                    }
                    Err(e) if e.is_connection_lost() => {
                        self.lost(&e);
                        return;
                    }
                    Err(_) => None,
                };
                self.reply(Reply::Thumbnail { id, picture });
            }
            Request::Delete { id } => {
                let result = self.api.delete_subject(&id).await;
                let result = match result {
                    Ok(()) => {
                        self.reached();
                        Ok(())
                    }
                    Err(e) => {
                        if e.is_connection_lost() {
                            self.lost(&e);
                        }
                        Err(e.to_string())
                    }
                };
                self.reply(Reply::Deleted { id, result });
            }
            Request::Audit { after, subject } => {
                let result = self.api.audit(after, Some(&subject)).await;
                if let Some(page) = self.settle("audit", result) {
                    self.reply(Reply::Audit(page));
                }
            }
            Request::Health => self.health().await,
            Request::Export { path, csv } => {
                // Small and local, but still file I/O: here, not on the UI thread.
                let result = std::fs::write(&path, csv)
                    .map(|()| path.clone())
                    .map_err(|e| format!("writing {}: {e}", path.display()));
                self.reply(Reply::Exported(result));
            }
            Request::Calibration(source) => {
                // An evaluation run takes minutes: its own thread, so the backend goes on
                // answering.
                let replies = self.replies.clone();
                let wake = self.wake.clone();
                let faceid = self.faceid.clone();
                let _ = std::thread::Builder::new()
                    .name("faceid-console-eval".into())
                    .spawn(move || {
                        let report = match source {
                            CalibrationSource::File(path) => EvalReport::read(&path),
                            CalibrationSource::Folder(folder) => EvalReport::run(&faceid, &folder),
                        };
                        let _ = replies.send(Reply::Calibration(
                            report.map(Box::new).map_err(|e| e.to_string()),
                        ));
                        wake();
                    });
            }
        }
    }

    async fn health(&mut self) {
        let status = self.api.status().await;
        if let Err(e) = &status
            && e.is_connection_lost()
        {
            self.lost(e);
            return;
        }
        self.reached();
        let metrics = self.api.metrics().await.map(|t| MetricsSample::parse(&t));
        let devices = self.api.devices().await;
        let local_sync = self.api.local_sync().await;
        self.reply(Reply::Health(Box::new(Health {
            at: Instant::now(),
            status,
            metrics,
            devices,
            local_sync,
        })));
    }
}

/// A retained image shrunk to a thumbnail; `None` when it does not decode.
fn thumbnail(bytes: &[u8]) -> Option<Picture> {
    let image = image::load_from_memory(bytes).ok()?;
    let small = image.thumbnail(THUMBNAIL_PX, THUMBNAIL_PX).into_rgb8();
    Some(Picture::from_rgb(&small))
}
