//! Everything the console knows, apart from how it is drawn. Replies from the backend are
//! folded in by [`ConsoleState::apply`], which answers with the requests they call for
//! (reload after an erasure, reload the screen after a reconnection). Drawing code reads
//! this state and queues requests; it never talks to the server itself.

use std::collections::HashMap;
use std::time::Instant;

use crate::api::{AuditPage, Subject};
use crate::audit_log::AuditFilter;
use crate::backend::{Connection, Health, Picture, Reply, Request};
use crate::calibration::EvalReport;
use crate::i18n::{Language, fill, t};
use crate::live::LiveFrame;
use crate::metrics::RouteRate;

/// The console's screens, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Screen {
    /// Enrolled people.
    #[default]
    Subjects,
    /// The audit log.
    Audit,
    /// A camera with the engine's view drawn over it.
    Live,
    /// Score distributions and operating points.
    Calibration,
    /// Server and kiosk health.
    Health,
}

impl Screen {
    /// Every screen, in tab order (F1..F5).
    pub const ALL: [Screen; 5] = [
        Screen::Subjects,
        Screen::Audit,
        Screen::Live,
        Screen::Calibration,
        Screen::Health,
    ];

    /// Tab label.
    pub fn label(self) -> &'static str {
        match self {
            Screen::Subjects => "Subjects",
            Screen::Audit => "Audit",
            Screen::Live => "Live view",
            Screen::Calibration => "Calibration",
            Screen::Health => "Health",
        }
    }

    /// What opening the screen asks the server for.
    pub fn reload(self, state: &ConsoleState) -> Vec<Request> {
        match self {
            Screen::Subjects => vec![Request::Subjects {
                search: state.subjects.search.clone(),
            }],
            Screen::Audit => vec![Request::Audit {
                after: 0,
                subject: state.audit.filter.subject.trim().to_string(),
            }],
            Screen::Health => vec![Request::Health],
            Screen::Live | Screen::Calibration => Vec::new(),
        }
    }
}

/// Dark or light.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Theme {
    /// Light text on dark (the default: control rooms are dim).
    #[default]
    Dark,
    /// Dark text on light.
    Light,
}

/// The subjects screen.
#[derive(Debug, Default)]
pub struct SubjectsState {
    /// The search box.
    pub search: String,
    /// The search the list answers (`None` before the first answer).
    pub shown_search: Option<String>,
    /// The list.
    pub list: Vec<Subject>,
    /// Index of the highlighted row.
    pub selected: Option<usize>,
    /// A subject waiting for the operator to confirm erasure.
    pub confirm_delete: Option<Subject>,
    /// Thumbnails fetched so far (`None`: no image or undecodable).
    pub thumbnails: HashMap<String, Option<Picture>>,
    /// Last outcome to tell the operator.
    pub notice: Option<Notice>,
}

/// A line for the operator: success or trouble.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The text.
    pub text: String,
    /// Whether it is a problem.
    pub is_error: bool,
}

impl Notice {
    /// A success line.
    pub fn ok(text: impl Into<String>) -> Option<Notice> {
        Some(Notice {
            text: text.into(),
            is_error: false,
        })
    }

    /// A problem line.
    pub fn error(text: impl Into<String>) -> Option<Notice> {
        Some(Notice {
            text: text.into(),
            is_error: true,
        })
    }
}

/// The audit screen.
#[derive(Debug, Default)]
pub struct AuditState {
    /// Filters.
    pub filter: AuditFilter,
    /// The last page read.
    pub page: Option<AuditPage>,
    /// File the CSV export writes.
    pub export_path: String,
    /// Last outcome.
    pub notice: Option<Notice>,
}

/// The health screen.
#[derive(Debug, Default)]
pub struct HealthState {
    /// Latest poll.
    pub latest: Option<Box<Health>>,
    /// Request rates between the last two polls.
    pub rates: Vec<RouteRate>,
}

/// The live view.
#[derive(Debug, Default)]
pub struct LiveState {
    /// Camera spec typed by the operator.
    pub spec: String,
    /// Latest analysed frame.
    pub frame: Option<LiveFrame>,
    /// Frames shown per second, over the last few.
    pub fps: f64,
    /// When recent frames arrived.
    pub arrivals: Vec<Instant>,
    /// Why the feed stopped or did not start.
    pub notice: Option<Notice>,
}

impl LiveState {
    /// Takes in a new frame and updates the rate.
    pub fn show(&mut self, frame: LiveFrame, now: Instant) {
        self.arrivals.push(now);
        if self.arrivals.len() > 10 {
            self.arrivals.remove(0);
        }
        if let (Some(first), Some(last)) = (self.arrivals.first(), self.arrivals.last())
            && self.arrivals.len() > 1
        {
            let span = last.duration_since(*first).as_secs_f64();
            self.fps = if span > 0.0 {
                (self.arrivals.len() - 1) as f64 / span
            } else {
                0.0
            };
        }
        self.frame = Some(frame);
    }
}

/// The calibration screen.
#[derive(Debug, Default)]
pub struct CalibrationState {
    /// A saved report file or a dataset folder.
    pub path: String,
    /// The report shown.
    pub report: Option<Box<EvalReport>>,
    /// Whether a load or run is under way.
    pub running: bool,
    /// Last outcome.
    pub notice: Option<Notice>,
}

/// The whole console.
#[derive(Debug)]
pub struct ConsoleState {
    /// Server address, for the header.
    pub server: String,
    /// Screen shown.
    pub screen: Screen,
    /// Theme.
    pub theme: Theme,
    /// Language of the screens.
    pub language: Language,
    /// Link to the server.
    pub connection: Connection,
    /// Screens.
    pub subjects: SubjectsState,
    /// Audit.
    pub audit: AuditState,
    /// Health.
    pub health: HealthState,
    /// Live view.
    pub live: LiveState,
    /// Calibration.
    pub calibration: CalibrationState,
}

impl ConsoleState {
    /// A console for `server`, before any answer.
    pub fn new(server: &str) -> ConsoleState {
        ConsoleState {
            server: server.to_string(),
            screen: Screen::Subjects,
            theme: Theme::Dark,
            language: Language::En,
            connection: Connection::Connecting,
            subjects: SubjectsState::default(),
            audit: AuditState {
                export_path: "faceid-audit.csv".into(),
                ..AuditState::default()
            },
            health: HealthState::default(),
            live: LiveState::default(),
            calibration: CalibrationState::default(),
        }
    }

    /// Switches screen; returns what the new screen needs loaded.
    pub fn open(&mut self, screen: Screen) -> Vec<Request> {
        self.screen = screen;
        screen.reload(self)
    }

    /// The subject highlighted in the list.
    pub fn selected_subject(&self) -> Option<&Subject> {
        self.subjects
            .selected
            .and_then(|i| self.subjects.list.get(i))
    }

    /// Folds a reply in; returns the requests it calls for.
    pub fn apply(&mut self, reply: Reply) -> Vec<Request> {
        match reply {
            Reply::Connection(connection) => {
                let recovered = connection == Connection::Online
                    && matches!(
                        self.connection,
                        Connection::Lost { .. } | Connection::Connecting
                    );
                self.connection = connection;
                if recovered {
                    return self.screen.reload(self);
                }
            }
            Reply::Subjects { search, subjects } => {
                // An answer to an older search is dropped; the newer one is on its way.
                if search == self.subjects.search {
                    let selected_id = self.selected_subject().map(|s| s.id.clone());
                    self.subjects.list = subjects;
                    self.subjects.shown_search = Some(search);
                    self.subjects.selected = selected_id
                        .and_then(|id| self.subjects.list.iter().position(|s| s.id == id))
                        .or((!self.subjects.list.is_empty()).then_some(0));
                    return self
                        .subjects
                        .list
                        .iter()
                        .filter(|s| s.has_image && !self.subjects.thumbnails.contains_key(&s.id))
                        .map(|s| Request::Thumbnail { id: s.id.clone() })
                        .collect();
                }
            }
            Reply::Thumbnail { id, picture } => {
                self.subjects.thumbnails.insert(id, picture);
            }
            Reply::Deleted { id, result } => {
                let lang = self.language;
                self.subjects.notice = match result {
                    Ok(()) => {
                        self.subjects.thumbnails.remove(&id);
                        Notice::ok(fill(
                            t(lang, "{id} erased: templates, image and index entries"),
                            &[("id", &id)],
                        ))
                    }
                    Err(e) => Notice::error(fill(
                        t(lang, "{id} was not erased: {error}"),
                        &[("id", &id), ("error", &e)],
                    )),
                };
                return vec![Request::Subjects {
                    search: self.subjects.search.clone(),
                }];
            }
            Reply::Audit(page) => {
                // The log is read newest-last; a long log is read from its last 1,000.
                let start = page.chain_events.saturating_sub(1000);
                let wants_tail = self.audit.filter.subject.trim().is_empty()
                    && page.events.first().is_some_and(|e| e.seq <= start);
                self.audit.page = Some(page);
                if wants_tail {
                    return vec![Request::Audit {
                        after: start,
                        subject: String::new(),
                    }];
                }
            }
            Reply::Health(health) => {
                if let (Some(previous), Ok(now)) = (self.health.latest.as_ref(), &health.metrics)
                    && let Ok(before) = &previous.metrics
                {
                    let elapsed = health.at.duration_since(previous.at).as_secs_f64();
                    self.health.rates = now.rates_since(before, elapsed);
                }
                self.health.latest = Some(health);
            }
            Reply::Exported(result) => {
                self.audit.notice = match result {
                    Ok(path) => Notice::ok(fill(
                        t(self.language, "exported to {path}"),
                        &[("path", &path.display().to_string())],
                    )),
                    Err(e) => Notice::error(e),
                };
            }
            Reply::Calibration(result) => {
                self.calibration.running = false;
                match result {
                    Ok(report) => {
                        self.calibration.report = Some(report);
                        self.calibration.notice = None;
                    }
                    Err(e) => self.calibration.notice = Notice::error(e),
                }
            }
            Reply::Failed { what, error } => {
                let notice = Notice::error(format!("{what}: {error}"));
                match what {
                    "audit" => self.audit.notice = notice,
                    _ => self.subjects.notice = notice,
                }
            }
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(id: &str) -> Subject {
        Subject {
            id: id.into(),
            display_name: None,
            created_at_ms: 0,
            updated_at_ms: 0,
            source: None,
            templates: 1,
            has_image: true,
        }
    }

    #[test]
    fn a_reconnection_reloads_the_screen_and_stale_searches_are_dropped() {
        let mut state = ConsoleState::new("http://x");
        state.subjects.search = "ad".into();
        let lost = Reply::Connection(Connection::Lost {
            error: "refused".into(),
            next_attempt: Instant::now(),
        });
        assert!(state.apply(lost).is_empty());
        assert_eq!(
            state.apply(Reply::Connection(Connection::Online)),
            vec![Request::Subjects {
                search: "ad".into()
            }]
        );
        // An answer to "a" arrives after the operator typed "ad": ignored.
        state.apply(Reply::Subjects {
            search: "a".into(),
            subjects: vec![subject("alan")],
        });
        assert!(state.subjects.list.is_empty());
        let asks = state.apply(Reply::Subjects {
            search: "ad".into(),
            subjects: vec![subject("ada")],
        });
        assert_eq!(asks, vec![Request::Thumbnail { id: "ada".into() }]);
        assert_eq!(state.selected_subject().map(|s| s.id.as_str()), Some("ada"));
    }

    #[test]
    fn an_erasure_reloads_the_list_and_says_what_happened() {
        let mut state = ConsoleState::new("http://x");
        let asks = state.apply(Reply::Deleted {
            id: "ada".into(),
            result: Err("not found (404)".into()),
        });
        assert_eq!(
            asks,
            vec![Request::Subjects {
                search: String::new()
            }]
        );
        let notice = state.subjects.notice.clone().unwrap();
        assert!(notice.is_error && notice.text.contains("ada was not erased"));
    }
}
