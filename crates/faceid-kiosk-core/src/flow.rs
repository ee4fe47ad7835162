//! The three kiosk flows as one state machine. The shell feeds it user actions
//! ([`Kiosk::start`], [`Kiosk::claim`], [`Kiosk::confirm_details`], [`Kiosk::cancel`]),
//! camera frames ([`Kiosk::on_frame`]) and the clock ([`Kiosk::tick`]); the UI renders
//! [`Kiosk::screen`], which never carries a score.
//!
//! - **Enroll**: card scan -> portrait -> selfie with live guidance -> liveness accumulated
//!   over [`GOOD_FRAMES`] usable frames -> card-vs-selfie match -> quality gate (every frame
//!   counted passed it) -> id and name -> stored in the gallery -> result.
//! - **Verify** (1:1): claimed id -> selfie -> live and the claimed person's -> result.
//! - **Identify** (1:N): selfie -> live and someone in the gallery -> result.
//!
//! Two sizeable faces in [`MULTI_FACE_FRAMES`] analysed frames in a row refuse the attempt;
//! [`crate::lockout`] counts failures; inactivity returns to the start screen.

use std::sync::Arc;
use std::time::{Duration, Instant};

use faceid_core::geometry::BoundingBox;
use faceid_core::{
    Analysis, Engine, Error, Identification, Image, LivenessAccumulator, LivenessPreset, Template,
};
use faceid_gallery::{AuditContext, Gallery, NewSubject};
use serde::Serialize;

use crate::guidance::Guidance;
use crate::lockout::{Lockout, Scope};

/// Usable selfie frames accumulated before deciding.
pub const GOOD_FRAMES: usize = 5;
/// Consecutive two-face frames that refuse the attempt.
pub const MULTI_FACE_FRAMES: usize = 3;
/// Consecutive steady card detections that capture the card.
pub const STEADY_CARD_FRAMES: usize = 3;
/// Time allowed for the selfie or card stage.
pub const STAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a result screen stays before returning to the start.
pub const RESULT_SECS: Duration = Duration::from_secs(8);

/// Which flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// Enroll from an ID card and a selfie.
    Enroll,
    /// 1:1 against a claimed identity.
    Verify,
    /// 1:N against the gallery.
    Identify,
}

/// What the card stage asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CardHint {
    /// No card portrait seen yet.
    PlaceCard,
    /// A portrait is seen: keep the card still in the guide.
    HoldCardStill,
}

/// Why an attempt ended without the wanted result (message keys for the UI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// More than one person in frame.
    OnePerson,
    /// Liveness failed.
    NotLive,
    /// The selfie is not the card's holder.
    CardMismatch,
    /// No portrait found on the card.
    CardUnreadable,
    /// No usable selfie in time.
    TimedOut,
    /// The id is already enrolled.
    DuplicateId,
    /// The id is not acceptable (empty, too long, control characters).
    InvalidId,
    /// The kiosk could not store or read (logged).
    Storage,
}

/// The end of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Enrolled.
    Enrolled {
        /// Name (or id) shown.
        name: String,
    },
    /// The claimed person.
    Verified {
        /// Name (or id) shown.
        name: String,
    },
    /// Not the claimed person (or unknown id: the kiosk does not say which).
    NotVerified,
    /// Recognised.
    Identified {
        /// Name (or id) shown.
        name: String,
    },
    /// Nobody in the gallery.
    NotRecognised,
    /// Stopped for a reason the person can act on.
    Refused {
        /// Why.
        reason: Refusal,
    },
    /// Too many failures: see a staff member.
    Locked,
}

/// What the UI shows. Never a score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "screen", rename_all = "snake_case")]
pub enum Screen {
    /// Choose a flow and a language.
    Start,
    /// Enroll: scanning the ID card.
    CardScan {
        /// What to do.
        hint: CardHint,
    },
    /// Verify: type the claimed identity.
    Claim,
    /// Selfie with live guidance.
    Selfie {
        /// Which flow.
        flow: FlowKind,
        /// What to do now.
        guidance: Guidance,
        /// Usable frames so far, percent.
        progress: u8,
    },
    /// Enroll: id and name entry.
    Details {
        /// Why the last entry was refused, if it was.
        error: Option<Refusal>,
    },
    /// The end.
    Result {
        /// What happened.
        outcome: Outcome,
    },
}

/// Data of the flow in progress.
#[derive(Debug)]
struct Attempt {
    kind: FlowKind,
    card: Option<Template>,
    claim: Option<String>,
    liveness: LivenessAccumulator,
    best: Option<(Analysis, Arc<image::RgbImage>)>,
    good_frames: usize,
    multi_face_streak: usize,
    steady_card: Option<(BoundingBox, usize)>,
    stage_started: Instant,
}

impl Attempt {
    fn new(kind: FlowKind, now: Instant) -> Attempt {
        Attempt {
            kind,
            card: None,
            claim: None,
            liveness: LivenessAccumulator::new(),
            best: None,
            good_frames: 0,
            multi_face_streak: 0,
            steady_card: None,
            stage_started: now,
        }
    }
}

/// How the kiosk is set up.
#[derive(Debug, Clone)]
pub struct KioskOptions {
    /// This kiosk's id (source of its enrollments, actor of its audit events).
    pub kiosk_id: String,
    /// Liveness preset.
    pub preset: LivenessPreset,
    /// Keep enrollment selfies (encrypted).
    pub retain_images: bool,
    /// Idle time before returning to the start screen.
    pub inactivity: Duration,
}

/// The kiosk's decisions over one engine and one gallery.
#[derive(Debug)]
pub struct Kiosk {
    engine: Arc<Engine>,
    gallery: Arc<Gallery>,
    options: KioskOptions,
    screen: Screen,
    attempt: Option<Attempt>,
    lockout: Lockout,
    last_touch: Instant,
    last_frame: u64,
    events: u64,
}

impl Kiosk {
    /// A kiosk on its start screen.
    pub fn new(engine: Arc<Engine>, gallery: Arc<Gallery>, options: KioskOptions) -> Kiosk {
        Kiosk {
            engine,
            gallery,
            options,
            screen: Screen::Start,
            attempt: None,
            lockout: Lockout::default(),
            last_touch: Instant::now(),
            last_frame: 0,
            events: 0,
        }
    }

    /// What the UI shows now.
    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    /// The gallery (operator screens).
    pub fn gallery(&self) -> &Arc<Gallery> {
        &self.gallery
    }

    /// Changes the options (operator settings).
    pub fn set_options(&mut self, options: KioskOptions) {
        self.options = options;
    }

    /// Whether the current screen consumes camera frames.
    pub fn wants_frames(&self) -> bool {
        matches!(self.screen, Screen::Selfie { .. } | Screen::CardScan { .. })
    }

    /// Whether the card stage is waiting (the shell may offer a scanned card).
    pub fn wants_card(&self) -> bool {
        matches!(self.screen, Screen::CardScan { .. })
    }

    fn show(&mut self, screen: Screen, now: Instant) {
        self.screen = screen;
        self.last_touch = now;
    }

    fn finish(&mut self, outcome: Outcome, now: Instant) {
        self.attempt = None;
        self.show(Screen::Result { outcome }, now);
    }

    fn audit(&mut self, action: &str, subject: Option<&str>, outcome: &str) {
        self.events += 1;
        let ctx = AuditContext {
            actor: self.options.kiosk_id.clone(),
            request_id: format!("{}-{}", self.options.kiosk_id, self.events),
        };
        if let Err(e) = self.gallery.record(action, subject, outcome, &ctx) {
            tracing::error!(error = %e, "audit append failed");
        }
    }

    /// A touch on the screen (resets the inactivity timer).
    pub fn touch(&mut self, now: Instant) {
        self.last_touch = now;
    }

    /// Starts a flow from the start screen.
    pub fn start(&mut self, kind: FlowKind, now: Instant) {
        if self.lockout.locked(&Scope::Kiosk, now) {
            return self.finish(Outcome::Locked, now);
        }
        self.attempt = Some(Attempt::new(kind, now));
        let screen = match kind {
            FlowKind::Enroll => Screen::CardScan {
                hint: CardHint::PlaceCard,
            },
            FlowKind::Verify => Screen::Claim,
            FlowKind::Identify => Screen::Selfie {
                flow: kind,
                guidance: Guidance::LookAtCamera,
                progress: 0,
            },
        };
        self.show(screen, now);
    }

    /// Verify: the claimed identity, typed by the person.
    pub fn claim(&mut self, id: &str, now: Instant) {
        let Some(attempt) = self.attempt.as_mut().filter(|a| a.kind == FlowKind::Verify) else {
            return;
        };
        let id = id.trim().to_string();
        if faceid_gallery::gallery::validate_subject_id(&id).is_err() {
            return self.finish(
                Outcome::Refused {
                    reason: Refusal::InvalidId,
                },
                now,
            );
        }
        if self.lockout.locked(&Scope::Identity(id.clone()), now) {
            self.audit("verify", Some(&id), "rejected:LOCKED");
            return self.finish(Outcome::Locked, now);
        }
        attempt.claim = Some(id);
        attempt.stage_started = now;
        self.show(
            Screen::Selfie {
                flow: FlowKind::Verify,
                guidance: Guidance::LookAtCamera,
                progress: 0,
            },
            now,
        );
    }

    /// Enroll: an ID card image (from the camera or a scanner). Returns whether a portrait
    /// was found and the flow moved on to the selfie.
    pub fn offer_card(&mut self, card: &image::RgbImage, now: Instant) -> bool {
        if !self.wants_card() {
            return false;
        }
        let Ok(image) = to_image(card) else {
            return false;
        };
        match self.engine.card_template(&image) {
            Ok((_, template)) => {
                if let Some(attempt) = self.attempt.as_mut() {
                    attempt.card = Some(template);
                    attempt.stage_started = now;
                }
                self.show(
                    Screen::Selfie {
                        flow: FlowKind::Enroll,
                        guidance: Guidance::LookAtCamera,
                        progress: 0,
                    },
                    now,
                );
                true
            }
            Err(_) => false,
        }
    }

    /// A scanned card that has no portrait ends the attempt (a camera card keeps trying).
    pub fn card_unreadable(&mut self, now: Instant) {
        if self.wants_card() {
            self.finish(
                Outcome::Refused {
                    reason: Refusal::CardUnreadable,
                },
                now,
            );
        }
    }

    /// A camera frame. `seq` increases with every captured frame; a frame already seen is
    /// ignored.
    pub fn on_frame(&mut self, seq: u64, frame: &Arc<image::RgbImage>, now: Instant) {
        if seq <= self.last_frame || !self.wants_frames() {
            return;
        }
        self.last_frame = seq;
        if self
            .attempt
            .as_ref()
            .is_some_and(|a| now.duration_since(a.stage_started) > STAGE_TIMEOUT)
        {
            return self.finish(
                Outcome::Refused {
                    reason: Refusal::TimedOut,
                },
                now,
            );
        }
        match self.screen {
            Screen::CardScan { .. } => self.card_frame(frame, now),
            Screen::Selfie { .. } => self.selfie_frame(frame, now),
            _ => {}
        }
    }

    fn card_frame(&mut self, frame: &Arc<image::RgbImage>, now: Instant) {
        let Ok(image) = to_image(frame) else { return };
        let Ok(portrait) = self.engine.card_portrait(&image) else {
            if let Some(a) = self.attempt.as_mut() {
                a.steady_card = None;
            }
            self.screen = Screen::CardScan {
                hint: CardHint::PlaceCard,
            };
            return;
        };
        let Some(attempt) = self.attempt.as_mut() else {
            return;
        };
        let steady = match attempt.steady_card {
            Some((previous, n)) if previous.iou(&portrait.face.bbox) > 0.8 => n + 1,
            _ => 1,
        };
        attempt.steady_card = Some((portrait.face.bbox, steady));
        if steady >= STEADY_CARD_FRAMES {
            self.offer_card(frame, now);
        } else {
            self.screen = Screen::CardScan {
                hint: CardHint::HoldCardStill,
            };
        }
    }

    fn selfie_frame(&mut self, frame: &Arc<image::RgbImage>, now: Instant) {
        let Ok(image) = to_image(frame) else { return };
        let analysed = self.engine.analyze(&image);
        let Some(attempt) = self.attempt.as_mut() else {
            return;
        };
        let guidance = match analysed {
            Err(Error::MultipleFaces { .. }) => {
                // Whatever was gathered may include the other person: start over.
                attempt.multi_face_streak += 1;
                attempt.liveness = LivenessAccumulator::new();
                attempt.best = None;
                attempt.good_frames = 0;
                if attempt.multi_face_streak >= MULTI_FACE_FRAMES {
                    let kind = attempt.kind;
                    self.audit(action(kind), None, "rejected:MULTIPLE_FACES");
                    return self.finish(
                        Outcome::Refused {
                            reason: Refusal::OnePerson,
                        },
                        now,
                    );
                }
                Guidance::OnePerson
            }
            Err(e) => {
                attempt.multi_face_streak = 0;
                Guidance::for_error(e.code())
            }
            Ok(analysis) => {
                attempt.multi_face_streak = 0;
                let guidance = Guidance::for_analysis(&analysis, frame.width(), frame.height());
                if guidance == Guidance::Good {
                    attempt.liveness.add(analysis.liveness);
                    attempt.good_frames += 1;
                    let better = attempt
                        .best
                        .as_ref()
                        .is_none_or(|(b, _)| analysis.quality.overall > b.quality.overall);
                    if better {
                        attempt.best = Some((analysis, frame.clone()));
                    }
                }
                guidance
            }
        };
        let (kind, good) = (attempt.kind, attempt.good_frames);
        if good >= GOOD_FRAMES {
            return self.decide(now);
        }
        self.screen = Screen::Selfie {
            flow: kind,
            guidance,
            progress: (good * 100 / GOOD_FRAMES) as u8,
        };
    }

    fn decide(&mut self, now: Instant) {
        let Some(attempt) = self.attempt.take() else {
            return;
        };
        let Some((best, frame)) = attempt.best else {
            return;
        };
        let live = attempt
            .liveness
            .result()
            .is_ok_and(|l| l.is_live(self.options.preset));
        let scope = match (&attempt.kind, &attempt.claim) {
            (FlowKind::Verify, Some(id)) => Scope::Identity(id.clone()),
            _ => Scope::Kiosk,
        };
        if !live {
            self.lockout.fail(scope, now);
            self.audit(
                action(attempt.kind),
                attempt.claim.as_deref(),
                "rejected:LIVENESS_FAILED",
            );
            return self.finish(
                Outcome::Refused {
                    reason: Refusal::NotLive,
                },
                now,
            );
        }
        match attempt.kind {
            FlowKind::Enroll => {
                let matches = attempt
                    .card
                    .as_ref()
                    .and_then(|card| self.engine.verify(&best.template, card).ok())
                    .is_some_and(|d| d.accepted);
                if !matches {
                    self.lockout.fail(Scope::Kiosk, now);
                    self.audit("enroll", None, "rejected:CARD_MISMATCH");
                    return self.finish(
                        Outcome::Refused {
                            reason: Refusal::CardMismatch,
                        },
                        now,
                    );
                }
                self.attempt = Some(Attempt {
                    best: Some((best, frame)),
                    ..attempt
                });
                self.show(Screen::Details { error: None }, now);
            }
            FlowKind::Verify => {
                let id = attempt.claim.unwrap_or_default();
                let references = self.gallery.templates(&id).unwrap_or_default();
                let accepted = self
                    .engine
                    .verify_subject(&best.template, &references)
                    .ok()
                    .flatten()
                    .is_some_and(|d| d.accepted);
                if accepted {
                    self.lockout.clear(&scope);
                    self.audit("verify", Some(&id), "accepted");
                    let name = self.display_name(&id);
                    self.finish(Outcome::Verified { name }, now);
                } else {
                    self.lockout.fail(scope, now);
                    self.audit("verify", Some(&id), "rejected:NO_MATCH");
                    self.finish(Outcome::NotVerified, now);
                }
            }
            FlowKind::Identify => {
                let candidates = self.gallery.search(&best.template, 5).unwrap_or_default();
                let found = self.engine.identify_cosines(
                    candidates
                        .into_iter()
                        .map(|c| (c.subject, c.cosine))
                        .collect(),
                    self.gallery.len(),
                );
                match found {
                    Identification::Match { subject, .. } => {
                        self.audit("identify", Some(&subject), "match");
                        let name = self.display_name(&subject);
                        self.finish(Outcome::Identified { name }, now);
                    }
                    Identification::NoMatch { .. } => {
                        self.lockout.fail(Scope::Kiosk, now);
                        self.audit("identify", None, "no_match");
                        self.finish(Outcome::NotRecognised, now);
                    }
                }
            }
        }
    }

    fn display_name(&self, id: &str) -> String {
        self.gallery
            .subject(id)
            .ok()
            .flatten()
            .and_then(|s| s.display_name)
            .unwrap_or_else(|| id.to_string())
    }

    /// Enroll: the id and name typed on the details screen. Stores the selfie's and the
    /// card's templates (and the selfie, encrypted, when images are retained).
    pub fn confirm_details(&mut self, id: &str, name: &str, now: Instant) {
        if !matches!(self.screen, Screen::Details { .. }) {
            return;
        }
        let id = id.trim().to_string();
        let name = name.trim();
        if faceid_gallery::gallery::validate_subject_id(&id).is_err() {
            return self.show(
                Screen::Details {
                    error: Some(Refusal::InvalidId),
                },
                now,
            );
        }
        let Some(attempt) = self.attempt.as_ref() else {
            return;
        };
        let Some((best, frame)) = attempt.best.as_ref() else {
            return;
        };
        let mut templates = vec![best.template.clone()];
        templates.extend(attempt.card.clone());
        let image = self
            .options
            .retain_images
            .then(|| crate::capture::preview_jpeg(frame, 640, 90));
        let new = NewSubject {
            id: id.clone(),
            display_name: (!name.is_empty()).then(|| name.to_string()),
            source: Some(self.options.kiosk_id.clone()),
        };
        self.events += 1;
        let ctx = AuditContext {
            actor: self.options.kiosk_id.clone(),
            request_id: format!("{}-{}", self.options.kiosk_id, self.events),
        };
        match self
            .gallery
            .enroll(&new, &templates, image.as_deref(), &ctx)
        {
            Ok(_) => {
                let shown = new.display_name.unwrap_or(id);
                self.finish(Outcome::Enrolled { name: shown }, now);
            }
            Err(faceid_gallery::Error::DuplicateSubject(_)) => {
                self.show(
                    Screen::Details {
                        error: Some(Refusal::DuplicateId),
                    },
                    now,
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "enrollment failed");
                self.finish(
                    Outcome::Refused {
                        reason: Refusal::Storage,
                    },
                    now,
                );
            }
        }
    }

    /// Back to the start screen, dropping the attempt.
    pub fn cancel(&mut self, now: Instant) {
        self.attempt = None;
        self.show(Screen::Start, now);
    }

    /// The clock: results return to the start after [`RESULT_SECS`], any screen after the
    /// inactivity time.
    pub fn tick(&mut self, now: Instant) {
        let idle = now.duration_since(self.last_touch);
        let expired = match self.screen {
            Screen::Start => false,
            Screen::Result { .. } => idle >= RESULT_SECS,
            _ => idle >= self.options.inactivity,
        };
        if expired {
            self.cancel(now);
        }
    }
}

fn action(kind: FlowKind) -> &'static str {
    match kind {
        FlowKind::Enroll => "enroll",
        FlowKind::Verify => "verify",
        FlowKind::Identify => "identify",
    }
}

fn to_image(frame: &image::RgbImage) -> faceid_core::Result<Image> {
    Image::from_rgb(frame.width(), frame.height(), frame.as_raw().clone())
}
