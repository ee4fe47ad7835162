//! The three kiosk flows as one state machine. The shell feeds it user actions
//! ([`Kiosk::start`], [`Kiosk::claim`], [`Kiosk::confirm_details`], [`Kiosk::cancel`]),
//! camera frames ([`Kiosk::on_frame`]) and the clock ([`Kiosk::tick`]); the UI renders
//! [`Kiosk::screen`], which never carries a score.
//!
//! The kiosk decides nothing itself: the selfie stage ([`crate::selfie`]) has the face fill a
//! random oval and perform the engine's active challenge, camera frames analysed through
//! `faceid_service::Judge::analyze_frame`; the sequence it ends with carries the challenge's
//! verdict in its liveness and is judged by the same use cases as every server surface.
//!
//! - **Enroll**: card front -> portrait -> card back -> machine-readable zone (check digits,
//!   expiry: [`Service::admit_zone`]) -> oval + challenge -> the enrollment gate (liveness,
//!   quality, card-vs-selfie match) -> id and name, pre-filled from the zone, confirmed ->
//!   stored with its document (one document, one subject) -> result. A card without a zone
//!   (older cards) is admitted on its portrait: the person says so ([`Kiosk::skip_card_back`]).
//! - **Verify** (1:1): claimed id -> oval + challenge -> the 1:1 verdict -> result.
//! - **Identify** (1:N): oval + challenge -> the 1:N verdict -> result.
//!
//! A challenge that times out or sees the wrong step counts as a failure and a new oval and
//! challenge are shown; [`crate::lockout`] counts failures (five in three minutes send the
//! person to staff). A frame with two sizeable faces refuses the attempt; a storage fault is
//! shown as out of service and never counts as a failed attempt; inactivity returns to the
//! start screen. In demo mode (no camera: the demo clip plays) nothing is enrolled.

use std::sync::Arc;
use std::time::{Duration, Instant};

use faceid_core::geometry::BoundingBox;
use faceid_core::{
    Analysis, CardPortrait, ChallengeConfig, ChallengeFailure, Engine, FrontCheck, Gate, Image,
    LivenessPreset, MachineZone, Reason, SequenceAnalysis, Template,
};
use faceid_gallery::{AuditContext, DocumentId, KioskGallery, NewSubject};
use faceid_service::{Class, Enrollment, Failure, Judge, Selfie, Service};
use serde::Serialize;

use crate::guidance::Guidance;
use crate::lockout::{Lockout, Scope};
use crate::selfie::{Oval, SelfieStage, StageEvent, StepPrompt};
/// Consecutive steady card detections that capture the card.
pub const STEADY_CARD_FRAMES: usize = 3;
/// Time allowed for the card stage, for filling the oval, and for one challenge.
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
    /// The portrait is taken: show the back of the card (its machine-readable zone).
    TurnCard,
    /// A zone is seen but its check digits do not agree yet: hold it flat and still.
    HoldZoneStill,
}

impl CardHint {
    /// Whether the hint is about the back of the card.
    fn back(self) -> bool {
        matches!(self, CardHint::TurnCard | CardHint::HoldZoneStill)
    }
}

/// What the person confirms on the details screen, read from the card's verified zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prefill {
    /// The document number (proposed as the subject id).
    pub id: String,
    /// Given names then surname, as the zone spells them.
    pub name: String,
    /// The fields the card's front disagrees with its back on (`number`, `surname`,
    /// `given_names`: [`faceid_core::FrontCheck::disagreements`]), shown for the person
    /// to check; empty when they agree or the front has no readable text.
    pub mismatch: Vec<&'static str>,
}

impl Prefill {
    fn from_zone(zone: &MachineZone, front: Option<FrontCheck>) -> Prefill {
        let f = &zone.fields;
        let name = [f.given_names.trim(), f.surname.trim()]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Prefill {
            id: f.document_number.clone(),
            name,
            mismatch: front.map(|c| c.disagreements()).unwrap_or_default(),
        }
    }
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
    /// The card's machine-readable zone has expired (`DOCUMENT_EXPIRED`).
    DocumentExpired,
    /// The card's machine-readable zone fails its check digits (`MRZ_CHECK_FAILED`).
    DocumentInvalid,
    /// The card is already enrolled under another person (`DUPLICATE_DOCUMENT`).
    DuplicateDocument,
    /// No usable selfie in time.
    TimedOut,
    /// The id is already enrolled.
    DuplicateId,
    /// The id is not acceptable (empty, too long, control characters).
    InvalidId,
    /// The kiosk could not store an enrollment (logged).
    Storage,
    /// The best picture failed the quality gate.
    PoorCapture,
    /// Demo mode (no camera): nothing is enrolled.
    DemoMode,
    /// The kiosk cannot decide: its storage or engine failed (logged). Not the person's
    /// failure: it never counts towards a lockout.
    OutOfService,
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
    /// Enroll: scanning the ID card, front ([`CardHint::PlaceCard`],
    /// [`CardHint::HoldCardStill`]) then back ([`CardHint::TurnCard`],
    /// [`CardHint::HoldZoneStill`]).
    CardScan {
        /// What to do.
        hint: CardHint,
    },
    /// Verify: type the claimed identity.
    Claim,
    /// Selfie: the oval, then the challenge's steps, with live corrections.
    Selfie {
        /// Which flow.
        flow: FlowKind,
        /// Where the face must be, in thousandths of the camera frame.
        oval: Oval,
        /// The challenge step asked for; `None` while the face is placed in the oval and
        /// once every step is done.
        step: Option<StepPrompt>,
        /// The correction, or [`Guidance::Good`].
        guidance: Guidance,
        /// Progress through the challenge, percent.
        progress: u8,
        /// A new challenge after one that failed.
        retry: bool,
    },
    /// Enroll: id and name entry.
    Details {
        /// Why the last entry was refused, if it was.
        error: Option<Refusal>,
        /// The id and name read from the card, for the person to confirm.
        prefill: Option<Prefill>,
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
    /// Tells this attempt's frames from a later attempt's.
    id: u64,
    kind: FlowKind,
    card: Option<Template>,
    /// Enroll: the card's portrait and upright front, compared with the back's zone.
    card_front: Option<CardPortrait>,
    /// Enroll: the document admitted from the card's zone, and what it pre-fills.
    document: Option<(DocumentId, Prefill)>,
    /// Enroll: a zone was seen whose check digits failed (the camera keeps trying).
    invalid_zone: bool,
    claim: Option<String>,
    /// The selfie stage, once reached.
    selfie: Option<SelfieStage>,
    /// The camera frame facing the camera at the end of the challenge (kept for retention).
    best_frame: Option<Arc<image::RgbImage>>,
    /// Enroll: the judged selfie, waiting for the id and name.
    judged: Option<SequenceAnalysis>,
    steady_card: Option<(BoundingBox, usize)>,
    stage_started: Instant,
}

impl Attempt {
    fn new(id: u64, kind: FlowKind, now: Instant) -> Attempt {
        Attempt {
            id,
            kind,
            card: None,
            card_front: None,
            document: None,
            invalid_zone: false,
            claim: None,
            selfie: None,
            best_frame: None,
            judged: None,
            steady_card: None,
            stage_started: now,
        }
    }
}

/// Which capture stage a frame was analysed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Card,
    CardBack,
    Selfie,
}

/// The analysis one camera frame needs ([`Kiosk::frame_job`]), to run without holding the
/// kiosk: inference takes tens of milliseconds and every command would wait behind it.
#[derive(Debug, Clone)]
pub struct FrameJob {
    judge: Judge,
    stage: Stage,
    attempt: u64,
}

/// What a stage's analysis found.
#[derive(Debug)]
enum StageResult {
    Card(Result<(CardPortrait, Template), Failure>),
    CardBack(faceid_core::Result<Option<MachineZone>>),
    Selfie(faceid_core::Result<Analysis>),
}

/// A frame analysed by [`FrameJob::run`], for [`Kiosk::on_analysed`].
#[derive(Debug)]
pub struct AnalysedFrame {
    attempt: u64,
    result: StageResult,
}

impl FrameJob {
    /// Runs the analysis (card portrait, or the selfie pipeline); `None` for a frame that
    /// is not a valid image.
    pub fn run(self, frame: &image::RgbImage) -> Option<AnalysedFrame> {
        let image = to_image(frame).ok()?;
        let result = match self.stage {
            Stage::Card => StageResult::Card(self.judge.card(&image)),
            Stage::CardBack => StageResult::CardBack(self.judge.engine().read_zone(&image)),
            Stage::Selfie => StageResult::Selfie(self.judge.analyze_frame(&image)),
        };
        Some(AnalysedFrame {
            attempt: self.attempt,
            result,
        })
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
    /// The challenges drawn (steps allowed, how many, time limits).
    pub challenge: ChallengeConfig,
    /// Demo mode: the camera is the demo clip; nothing is enrolled.
    pub demo: bool,
}

/// The kiosk's decisions over one engine and one gallery.
#[derive(Debug)]
pub struct Kiosk {
    service: Service<dyn KioskGallery>,
    options: KioskOptions,
    screen: Screen,
    attempt: Option<Attempt>,
    lockout: Lockout,
    last_touch: Instant,
    last_frame: u64,
    events: u64,
    attempts: u64,
}

impl Kiosk {
    /// A kiosk on its start screen.
    pub fn new(
        engine: Arc<Engine>,
        gallery: Arc<dyn KioskGallery>,
        options: KioskOptions,
    ) -> Kiosk {
        Kiosk {
            service: Service::new(engine, gallery),
            options,
            screen: Screen::Start,
            attempt: None,
            lockout: Lockout::default(),
            last_touch: Instant::now(),
            last_frame: 0,
            events: 0,
            attempts: 0,
        }
    }

    /// What the UI shows now.
    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    /// The use cases (operator screens: erasure).
    pub fn service(&self) -> &Service<dyn KioskGallery> {
        &self.service
    }

    /// The gallery (operator screens).
    pub fn gallery(&self) -> &Arc<dyn KioskGallery> {
        self.service.gallery()
    }

    /// Changes the options (operator settings).
    pub fn set_options(&mut self, options: KioskOptions) {
        self.options = options;
    }

    /// Whether the current screen consumes camera frames.
    pub fn wants_frames(&self) -> bool {
        matches!(self.screen, Screen::Selfie { .. } | Screen::CardScan { .. })
    }

    /// Whether the card stage waits for the front (the shell may offer a scanned card).
    pub fn wants_card(&self) -> bool {
        matches!(self.screen, Screen::CardScan { hint } if !hint.back())
    }

    /// Whether the card stage waits for the back (the shell may offer a scanned back).
    pub fn wants_card_back(&self) -> bool {
        matches!(self.screen, Screen::CardScan { hint } if hint.back())
    }

    fn show(&mut self, screen: Screen, now: Instant) {
        self.screen = screen;
        self.last_touch = now;
    }

    fn finish(&mut self, outcome: Outcome, now: Instant) {
        self.attempt = None;
        self.show(Screen::Result { outcome }, now);
    }

    /// The audit context of the next event of this kiosk.
    fn context(&mut self) -> AuditContext {
        self.events += 1;
        AuditContext {
            actor: self.options.kiosk_id.clone(),
            request_id: format!("{}-{}", self.options.kiosk_id, self.events),
        }
    }

    /// The gate at this kiosk's liveness preset.
    fn gate(&self) -> Gate {
        Gate {
            preset: self.options.preset,
            ..self.service.gate()
        }
    }

    /// Ends the attempt on a failure without a verdict: a storage or engine fault is out of
    /// service (logged, not the person's failure); a capture refusal is the person's.
    fn fail(&mut self, failure: Failure, now: Instant) {
        let reason = match failure.class() {
            Class::Capture if failure.code() == "MULTIPLE_FACES" => Refusal::OnePerson,
            Class::Capture => Refusal::PoorCapture,
            Class::Input
            | Class::TooLarge
            | Class::NotFound
            | Class::Conflict
            | Class::Installation
            | Class::Internal => {
                tracing::error!(error = %failure, "the kiosk could not decide");
                Refusal::OutOfService
            }
        };
        self.finish(Outcome::Refused { reason }, now);
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
        self.attempts += 1;
        self.attempt = Some(Attempt::new(self.attempts, kind, now));
        let screen = match kind {
            FlowKind::Enroll => Screen::CardScan {
                hint: CardHint::PlaceCard,
            },
            FlowKind::Verify => Screen::Claim,
            FlowKind::Identify => return self.enter_selfie(now),
        };
        self.show(screen, now);
    }

    /// On to the selfie stage: a new oval, then a new challenge.
    fn enter_selfie(&mut self, now: Instant) {
        let Some(attempt) = self.attempt.as_mut() else {
            return;
        };
        let stage = SelfieStage::new(self.options.challenge.clone(), self.options.preset, now);
        let view = stage.view();
        attempt.selfie = Some(stage);
        attempt.stage_started = now;
        let flow = attempt.kind;
        self.show(selfie_screen(flow, view), now);
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
            let ctx = self.context();
            if let Err(e) =
                self.service
                    .gallery()
                    .record("verify", Some(&id), "rejected:LOCKED", &ctx)
            {
                return self.fail(e.into(), now);
            }
            return self.finish(Outcome::Locked, now);
        }
        attempt.claim = Some(id);
        self.enter_selfie(now);
    }

    /// Enroll: a scanned ID card image. Returns whether a portrait was found and the flow
    /// moved on: to the card's back, or, when a zone is printed beside the portrait (a
    /// passport page), straight to the zone's admission as a back's would be.
    pub fn offer_card(&mut self, card: &image::RgbImage, now: Instant) -> bool {
        if !self.wants_card() {
            return false;
        }
        let Ok(image) = to_image(card) else {
            return false;
        };
        let Ok((portrait, template)) = self.service.card(&image) else {
            return false;
        };
        let zone = self.service.engine().read_zone_beside(&portrait);
        self.take_card(portrait, template, now);
        match zone {
            Ok(Some(zone)) => self.take_zone(&zone, true, now),
            Ok(None) => {}
            Err(error) => self.fail(error.into(), now),
        }
        true
    }

    /// The card's portrait is taken: on to its back.
    fn take_card(&mut self, portrait: CardPortrait, template: Template, now: Instant) {
        if let Some(attempt) = self.attempt.as_mut() {
            attempt.card = Some(template);
            attempt.card_front = Some(portrait);
            attempt.stage_started = now;
        }
        self.show(
            Screen::CardScan {
                hint: CardHint::TurnCard,
            },
            now,
        );
    }

    /// Enroll: an image of the back of the card (from a scanner; the camera's frames are
    /// read by [`Kiosk::frame_job`]). Returns whether the image showed a machine-readable
    /// zone: a valid one moves on (to the selfie, or to the refusal of an expired card),
    /// one whose check digits fail is refused (a scan is sharp: reading it again would
    /// read the same), none leaves the kiosk waiting for the back.
    pub fn offer_card_back(&mut self, back: &image::RgbImage, now: Instant) -> bool {
        if !self.wants_card_back() {
            return false;
        }
        let Ok(image) = to_image(back) else {
            return false;
        };
        match self.service.engine().read_zone(&image) {
            Ok(Some(zone)) => {
                self.take_zone(&zone, true, now);
                true
            }
            Ok(None) => false,
            Err(error) => {
                self.fail(error.into(), now);
                true
            }
        }
    }

    /// Enroll: the person says the card has no machine-readable zone on its back (older
    /// cards): it is admitted on its portrait, as every surface admits such a card.
    pub fn skip_card_back(&mut self, now: Instant) {
        if self.wants_card_back() {
            self.enter_selfie(now);
        }
    }

    /// A zone read from the back: admitted (valid, not expired) moves on to the selfie with
    /// the document and its pre-filled details, with what the front disagrees on
    /// ([`Service::check_front`], audited); refused is audited and ends the attempt.
    /// A zone that fails its check digits on a camera frame (not `scanned`) is read again
    /// on the next frame; the stage's timeout then refuses it.
    fn take_zone(&mut self, zone: &MachineZone, scanned: bool, now: Instant) {
        match self.service.admit_zone(zone) {
            Ok(document) => {
                let ctx = self.context();
                let portrait = self.attempt.as_ref().and_then(|a| a.card_front.as_ref());
                let front = match portrait.map(|p| self.service.check_front(p, zone, &ctx)) {
                    Some(Ok(check)) => check,
                    Some(Err(failure)) => return self.fail(failure, now),
                    None => None,
                };
                if let Some(attempt) = self.attempt.as_mut() {
                    attempt.document = Some((document, Prefill::from_zone(zone, front)));
                }
                self.enter_selfie(now);
            }
            Err(failure) if failure.code() == "MRZ_CHECK_FAILED" && !scanned => {
                if let Some(attempt) = self.attempt.as_mut() {
                    attempt.invalid_zone = true;
                }
                self.screen = Screen::CardScan {
                    hint: CardHint::HoldZoneStill,
                };
            }
            Err(failure) => self.refuse_document(failure, now),
        }
    }

    /// Ends the attempt on a refused document, audited as `rejected:CODE`. Not counted
    /// towards a lockout: the card, not the person at the camera, is refused.
    fn refuse_document(&mut self, failure: Failure, now: Instant) {
        let reason = match failure.code() {
            "DOCUMENT_EXPIRED" => Refusal::DocumentExpired,
            "MRZ_CHECK_FAILED" => Refusal::DocumentInvalid,
            _ => return self.fail(failure, now),
        };
        let ctx = self.context();
        if let Err(e) = self.service.refused("enroll", None, &failure, &ctx) {
            return self.fail(e, now);
        }
        self.finish(Outcome::Refused { reason }, now);
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

    /// A camera frame, analysed and applied at once (tests and single-threaded shells; the
    /// Tauri shell analyses outside its lock with [`Kiosk::frame_job`]). `seq` increases
    /// with every captured frame; a frame already seen is ignored.
    pub fn on_frame(&mut self, seq: u64, frame: &Arc<image::RgbImage>, now: Instant) {
        if let Some(job) = self.frame_job(seq, now)
            && let Some(analysed) = job.run(frame)
        {
            self.on_analysed(analysed, frame, now);
        }
    }

    /// The analysis the newest camera frame needs, if the screen wants one; the caller runs
    /// it ([`FrameJob::run`]) without holding the kiosk, then gives the result to
    /// [`Kiosk::on_analysed`]. A stage that has run out of time ends here.
    pub fn frame_job(&mut self, seq: u64, now: Instant) -> Option<FrameJob> {
        if seq <= self.last_frame || !self.wants_frames() {
            return None;
        }
        self.last_frame = seq;
        let attempt = self.attempt.as_ref()?;
        if now.duration_since(attempt.stage_started) > STAGE_TIMEOUT {
            if self.wants_card_back() && attempt.invalid_zone {
                // The zone was seen all along and never agreed with its check digits.
                let failure = faceid_core::Error::MrzCheckFailed {
                    failed: "no reading agreed with its check digits".into(),
                };
                self.refuse_document(failure.into(), now);
            } else {
                self.finish(
                    Outcome::Refused {
                        reason: Refusal::TimedOut,
                    },
                    now,
                );
            }
            return None;
        }
        let stage = match self.screen {
            Screen::CardScan { hint } if hint.back() => Stage::CardBack,
            Screen::CardScan { .. } => Stage::Card,
            _ => Stage::Selfie,
        };
        Some(FrameJob {
            judge: self.service.judge().clone(),
            stage,
            attempt: attempt.id,
        })
    }

    /// Applies a frame analysed by [`FrameJob::run`]; ignored when the attempt or its stage
    /// changed meanwhile (cancelled, timed out, moved on).
    pub fn on_analysed(
        &mut self,
        analysed: AnalysedFrame,
        frame: &Arc<image::RgbImage>,
        now: Instant,
    ) {
        let current = match (&self.attempt, &self.screen) {
            (Some(a), Screen::CardScan { hint }) if hint.back() => Some((a.id, Stage::CardBack)),
            (Some(a), Screen::CardScan { .. }) => Some((a.id, Stage::Card)),
            (Some(a), Screen::Selfie { .. }) => Some((a.id, Stage::Selfie)),
            _ => None,
        };
        let AnalysedFrame { attempt, result } = analysed;
        match (result, current) {
            (StageResult::Card(card), Some((id, Stage::Card))) if id == attempt => {
                self.card_frame(card, now)
            }
            (StageResult::CardBack(zone), Some((id, Stage::CardBack))) if id == attempt => {
                match zone {
                    Ok(Some(zone)) => self.take_zone(&zone, false, now),
                    Ok(None) => {}
                    Err(error) => self.fail(error.into(), now),
                }
            }
            (StageResult::Selfie(analysis), Some((id, Stage::Selfie))) if id == attempt => {
                self.selfie_frame(analysis, frame, now)
            }
            _ => {}
        }
    }

    fn card_frame(&mut self, card: Result<(CardPortrait, Template), Failure>, now: Instant) {
        let Some(attempt) = self.attempt.as_mut() else {
            return;
        };
        let Ok((portrait, template)) = card else {
            attempt.steady_card = None;
            self.screen = Screen::CardScan {
                hint: CardHint::PlaceCard,
            };
            return;
        };
        let steady = match attempt.steady_card {
            Some((previous, n)) if previous.iou(&portrait.face.bbox) > 0.8 => n + 1,
            _ => 1,
        };
        attempt.steady_card = Some((portrait.face.bbox, steady));
        if steady >= STEADY_CARD_FRAMES {
            self.take_card(portrait, template, now);
        } else {
            self.screen = Screen::CardScan {
                hint: CardHint::HoldCardStill,
            };
        }
    }

    fn selfie_frame(
        &mut self,
        analysis: faceid_core::Result<Analysis>,
        frame: &Arc<image::RgbImage>,
        now: Instant,
    ) {
        let engine = self.service.engine().clone();
        let Some(attempt) = self.attempt.as_mut() else {
            return;
        };
        let Some(stage) = attempt.selfie.as_mut() else {
            return;
        };
        let (kind, claim) = (attempt.kind, attempt.claim.clone());
        match stage.observe(&engine, analysis, frame.width(), frame.height(), now) {
            StageEvent::Continue(view) => {
                // Corrections and progress change the screen, not the inactivity clock.
                self.screen = selfie_screen(kind, view);
            }
            StageEvent::Judge(probe) => {
                attempt.best_frame = Some(frame.clone());
                self.decide(*probe, now);
            }
            StageEvent::Retry(failure) => {
                tracing::warn!(
                    failure = failure.code(),
                    "challenge failed: a new one is drawn"
                );
                // A failed challenge is a failed attempt: audited, counted, then a new one.
                let scope = scope(kind, claim.as_deref());
                self.lockout.fail(scope.clone(), now);
                if let Err(e) = self.audit_challenge(kind, claim.as_deref(), failure) {
                    return self.fail(e.into(), now);
                }
                if self.lockout.locked(&scope, now) {
                    return self.finish(Outcome::Locked, now);
                }
                if let Some(stage) = self.attempt.as_mut().and_then(|a| {
                    a.stage_started = now;
                    a.selfie.as_mut()
                }) {
                    stage.retry();
                    let view = stage.view();
                    self.show(selfie_screen(kind, view), now);
                }
            }
            StageEvent::Refuse(failure) => {
                if let Err(e) = self.audit_challenge(kind, claim.as_deref(), failure) {
                    return self.fail(e.into(), now);
                }
                let reason = if failure == ChallengeFailure::MultipleFaces {
                    Refusal::OnePerson
                } else {
                    // Another face took over mid-challenge: a presence-check failure.
                    self.lockout.fail(scope(kind, claim.as_deref()), now);
                    Refusal::NotLive
                };
                self.finish(Outcome::Refused { reason }, now);
            }
            StageEvent::Fault(error) => self.fail(error.into(), now),
        }
    }

    /// Audits a failed challenge as `rejected:CODE`.
    fn audit_challenge(
        &mut self,
        kind: FlowKind,
        claim: Option<&str>,
        failure: ChallengeFailure,
    ) -> Result<(), faceid_gallery::Error> {
        let ctx = self.context();
        let outcome = format!("rejected:{}", failure.code());
        self.service
            .gallery()
            .record(action(kind), claim, &outcome, &ctx)
            .map(|_| ())
    }

    /// Judges the attempt by the use case of its flow.
    fn decide(&mut self, probe: SequenceAnalysis, now: Instant) {
        let Some(mut attempt) = self.attempt.take() else {
            return;
        };
        attempt.selfie = None;
        let scope = scope(attempt.kind, attempt.claim.as_deref());
        let gate = self.gate();
        let ctx = self.context();
        match attempt.kind {
            FlowKind::Enroll => {
                let verdict =
                    match self
                        .service
                        .judge_enrollment(&probe, gate, attempt.card.as_ref(), &ctx)
                    {
                        Ok(verdict) => verdict,
                        Err(failure) => return self.fail(failure, now),
                    };
                if !verdict.reason.accepted() {
                    self.lockout.fail(scope, now);
                    return self.finish(
                        Outcome::Refused {
                            reason: refusal(verdict.reason),
                        },
                        now,
                    );
                }
                if self.options.demo {
                    // The demo clip is nobody: shown to the end, never stored.
                    return self.finish(
                        Outcome::Refused {
                            reason: Refusal::DemoMode,
                        },
                        now,
                    );
                }
                attempt.judged = Some(probe);
                let prefill = attempt.document.as_ref().map(|(_, p)| p.clone());
                self.attempt = Some(attempt);
                self.show(
                    Screen::Details {
                        error: None,
                        prefill,
                    },
                    now,
                );
            }
            FlowKind::Verify => {
                let id = attempt.claim.unwrap_or_default();
                let verdict =
                    match self
                        .service
                        .verify(&id, Selfie::Analysed(Box::new(probe)), gate, &ctx)
                    {
                        Ok((verdict, _)) => verdict.reason,
                        // The kiosk does not tell an unknown id from another person.
                        Err(Failure::UnknownSubject(_)) => Reason::NoMatch,
                        Err(failure) => return self.fail(failure, now),
                    };
                match verdict {
                    Reason::Match => {
                        self.lockout.clear(&scope);
                        let name = self.display_name(&id);
                        self.finish(Outcome::Verified { name }, now);
                    }
                    Reason::NoMatch => {
                        self.lockout.fail(scope, now);
                        self.finish(Outcome::NotVerified, now);
                    }
                    refused => {
                        self.lockout.fail(scope, now);
                        self.finish(
                            Outcome::Refused {
                                reason: refusal(refused),
                            },
                            now,
                        );
                    }
                }
            }
            FlowKind::Identify => {
                let verdict =
                    match self
                        .service
                        .identify(Selfie::Analysed(Box::new(probe)), gate, &ctx)
                    {
                        Ok((verdict, _)) => verdict,
                        Err(failure) => return self.fail(failure, now),
                    };
                match (verdict.reason, verdict.subject()) {
                    (Reason::Match, Some(subject)) => {
                        let name = self.display_name(subject);
                        self.finish(Outcome::Identified { name }, now);
                    }
                    (Reason::Match | Reason::NoMatch, _) => {
                        self.lockout.fail(Scope::Kiosk, now);
                        self.finish(Outcome::NotRecognised, now);
                    }
                    (refused, _) => {
                        self.lockout.fail(Scope::Kiosk, now);
                        self.finish(
                            Outcome::Refused {
                                reason: refusal(refused),
                            },
                            now,
                        );
                    }
                }
            }
        }
    }

    fn display_name(&self, id: &str) -> String {
        self.service
            .gallery()
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
        let Some(attempt) = self.attempt.as_mut() else {
            return;
        };
        let prefill = attempt.document.as_ref().map(|(_, p)| p.clone());
        if faceid_gallery::gallery::validate_subject_id(&id).is_err() {
            return self.show(
                Screen::Details {
                    error: Some(Refusal::InvalidId),
                    prefill,
                },
                now,
            );
        }
        let Some(probe) = attempt.judged.take() else {
            return;
        };
        let retained = match (&attempt.best_frame, self.options.retain_images) {
            (Some(frame), true) => Some(crate::capture::preview_jpeg(frame, 640, 90)),
            _ => None,
        };
        let card = attempt.card.clone();
        let new = NewSubject {
            id: id.clone(),
            display_name: (!name.is_empty()).then(|| name.to_string()),
            source: Some(self.options.kiosk_id.clone()),
            document: attempt.document.as_ref().map(|(d, _)| d.clone()),
            ..Default::default()
        };
        let shown = new.display_name.clone().unwrap_or(id);
        let request = Enrollment {
            subject: new,
            selfie: Selfie::Analysed(Box::new(probe.clone())),
            gate: self.gate(),
            card,
            retained_image: retained,
        };
        let ctx = self.context();
        match self.service.enroll(request, &ctx) {
            Ok(enrolled) if enrolled.subject.is_some() => {
                self.finish(Outcome::Enrolled { name: shown }, now);
            }
            // Judged before the details screen with the same rule: cannot differ.
            Ok(enrolled) => self.finish(
                Outcome::Refused {
                    reason: refusal(enrolled.verdict.reason),
                },
                now,
            ),
            Err(Failure::DuplicateSubject(_)) => {
                if let Some(attempt) = self.attempt.as_mut() {
                    attempt.judged = Some(probe);
                }
                self.show(
                    Screen::Details {
                        error: Some(Refusal::DuplicateId),
                        prefill,
                    },
                    now,
                );
            }
            // Audited by the use case; the card, not the typed id, is at fault.
            Err(Failure::DuplicateDocument) => self.finish(
                Outcome::Refused {
                    reason: Refusal::DuplicateDocument,
                },
                now,
            ),
            Err(failure) => {
                tracing::error!(error = %failure, "enrollment failed");
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

/// The screen of the selfie stage.
fn selfie_screen(flow: FlowKind, view: crate::selfie::SelfieView) -> Screen {
    Screen::Selfie {
        flow,
        oval: view.oval,
        step: view.step,
        guidance: view.guidance,
        progress: view.progress,
        retry: view.retry,
    }
}

/// Whose failures an attempt counts: the claimed identity (verify) or the kiosk.
fn scope(kind: FlowKind, claim: Option<&str>) -> Scope {
    match (kind, claim) {
        (FlowKind::Verify, Some(id)) => Scope::Identity(id.to_string()),
        _ => Scope::Kiosk,
    }
}

fn action(kind: FlowKind) -> &'static str {
    match kind {
        FlowKind::Enroll => "enroll",
        FlowKind::Verify => "verify",
        FlowKind::Identify => "identify",
    }
}

/// The kiosk's word for a verdict's refusal.
fn refusal(reason: Reason) -> Refusal {
    match reason {
        Reason::LivenessFailed => Refusal::NotLive,
        Reason::CardMismatch => Refusal::CardMismatch,
        Reason::Quality(_) => Refusal::PoorCapture,
        // Not refusals: callers show their own outcome for these.
        Reason::Match | Reason::NoMatch => Refusal::CardMismatch,
    }
}

fn to_image(frame: &image::RgbImage) -> faceid_core::Result<Image> {
    Image::from_rgb(frame.width(), frame.height(), frame.as_raw().clone())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_storage_fault_is_out_of_service_and_never_counts_towards_a_lockout() {
        let dir = tempfile::tempdir().unwrap();
        let gallery = Arc::new(
            faceid_gallery::Gallery::open(dir.path(), &faceid_gallery::GalleryKey::generate())
                .unwrap(),
        );
        let engine = Arc::new(
            Engine::load(
                &faceid_core::models::default_dir(),
                faceid_core::EngineConfig::default(),
            )
            .unwrap(),
        );
        let options = KioskOptions {
            kiosk_id: "kiosk-unit".into(),
            preset: LivenessPreset::Regular,
            retain_images: false,
            inactivity: Duration::from_secs(60),
            challenge: ChallengeConfig::default(),
            demo: false,
        };
        let mut kiosk = Kiosk::new(engine, gallery, options);
        let now = Instant::now();
        let storage = || Failure::Storage(faceid_gallery::Error::Database("disk gone".into()));
        for _ in 0..10 {
            kiosk.start(FlowKind::Identify, now);
            kiosk.fail(storage(), now);
            assert_eq!(
                kiosk.screen(),
                &Screen::Result {
                    outcome: Outcome::Refused {
                        reason: Refusal::OutOfService
                    }
                }
            );
        }
        kiosk.start(FlowKind::Identify, now);
        assert!(
            matches!(kiosk.screen(), Screen::Selfie { .. }),
            "ten storage faults lock nothing: {:?}",
            kiosk.screen()
        );
        // Two people in frame is the person's refusal, told as such.
        kiosk.fail(
            Failure::Engine(faceid_core::Error::MultipleFaces { count: 2 }),
            now,
        );
        assert_eq!(
            kiosk.screen(),
            &Screen::Result {
                outcome: Outcome::Refused {
                    reason: Refusal::OnePerson
                }
            }
        );
    }
}
