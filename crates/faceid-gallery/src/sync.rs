//! What sync moves between a kiosk and the server, and how each side applies it.
//!
//! - A kiosk (a gallery opened with an outbox) queues a [`SyncEvent`] for every local
//!   enrollment, erasure and decision in the same transaction as the change itself.
//!   [`SyncKiosk::outbox_batch`] reads them in order; [`SyncKiosk::settle`] removes one once
//!   the server has answered, and on a conflict moves the local enrollment aside for the
//!   operator ([`SyncKiosk::conflicts`]) and installs the server's record instead.
//! - The server applies each pushed event once ([`crate::SyncServer::apply_pushed`]): the
//!   event id is recorded with its outcome in the same transaction, so a repeated push gets
//!   the same answer and changes nothing.
//! - Every change of the gallery's content is a row of the change feed; a kiosk pulls the
//!   rows after its cursor ([`crate::SyncServer::changes_since`]) and applies a page in one
//!   transaction with its new cursor ([`SyncKiosk::apply_page`]).
//!
//! The server is the source of truth for subject ids: an enrollment whose id the server
//! already holds for a different person is a [`PushOutcome::Conflict`], never a merge.

use std::collections::HashMap;

use base64::Engine as _;
use faceid_core::Template;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gallery::{
    AuditContext, AuditEvent, Gallery, NewSubject, Subject, Tx, TxResult, abort, decode, encode,
    lower, now_ms, tx_encode,
};
use crate::policy;
use crate::store::{Subjects, SyncKiosk};

const META_SYNC_CURSOR: &[u8] = b"sync_cursor";
const META_SYNC_STATUS: &[u8] = b"sync_status";
const PENDING_PREFIX: &[u8] = b"pending/";

/// One change made on a kiosk, as it is queued and pushed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncEvent {
    /// Unique id (a UUID); the server applies an id once.
    pub id: String,
    /// When it happened on the kiosk, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub body: EventBody,
}

/// What a [`SyncEvent`] carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    /// A local enrollment; its event id is the subject's `origin`.
    Enroll {
        /// Subject id.
        subject: String,
        /// Display name.
        display_name: Option<String>,
        /// Templates, each `Template::to_bytes` in standard base64.
        templates: Vec<String>,
    },
    /// A local erasure of the enrollment `origin` of `subject`.
    Delete {
        /// Subject id.
        subject: String,
        /// Origin of the record that was erased: the server erases only that enrollment.
        origin: String,
    },
    /// A decision (verify, identify, liveness...) for the server's audit log.
    Audit {
        /// Action.
        action: String,
        /// Subject, if any.
        subject: Option<String>,
        /// Outcome.
        outcome: String,
        /// Local actor.
        actor: String,
        /// Local request id.
        request_id: String,
    },
}

impl SyncEvent {
    /// The enrollment event of a new subject (its id is the subject's origin).
    pub(crate) fn enroll(subject: &Subject, templates: &[Template]) -> SyncEvent {
        SyncEvent {
            id: subject.origin.clone(),
            at_ms: subject.created_at_ms,
            body: EventBody::Enroll {
                subject: subject.id.clone(),
                display_name: subject.display_name.clone(),
                templates: encode_templates(templates),
            },
        }
    }

    pub(crate) fn delete(id: String, subject: &str, origin: &str) -> SyncEvent {
        SyncEvent {
            id,
            at_ms: now_ms(),
            body: EventBody::Delete {
                subject: subject.to_string(),
                origin: origin.to_string(),
            },
        }
    }

    pub(crate) fn audit(id: String, event: &AuditEvent) -> SyncEvent {
        SyncEvent {
            id,
            at_ms: event.at_ms,
            body: EventBody::Audit {
                action: event.action.clone(),
                subject: event.subject.clone(),
                outcome: event.outcome.clone(),
                actor: event.actor.clone(),
                request_id: event.request_id.clone(),
            },
        }
    }

    /// The subject the event concerns, if any.
    pub fn subject(&self) -> Option<&str> {
        match &self.body {
            EventBody::Enroll { subject, .. } | EventBody::Delete { subject, .. } => Some(subject),
            EventBody::Audit { subject, .. } => subject.as_deref(),
        }
    }
}

/// Templates as standard base64 of `Template::to_bytes`.
pub fn encode_templates(templates: &[Template]) -> Vec<String> {
    templates
        .iter()
        .map(|t| base64::engine::general_purpose::STANDARD.encode(t.to_bytes()))
        .collect()
}

/// The inverse of [`encode_templates`]; `Corrupt` for anything that is not a template.
pub fn decode_templates(encoded: &[String]) -> Result<Vec<Template>> {
    encoded
        .iter()
        .map(|text| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| Error::Corrupt(format!("template base64: {e}")))?;
            Ok(Template::from_bytes(&bytes)?)
        })
        .collect()
}

pub(crate) fn outbox_location(seq: u64) -> Vec<u8> {
    let mut loc = b"outbox/".to_vec();
    loc.extend_from_slice(&seq.to_be_bytes());
    loc
}

fn conflict_location(event_id: &str) -> Vec<u8> {
    let mut loc = b"conflicts/".to_vec();
    loc.extend_from_slice(event_id.as_bytes());
    loc
}

fn pending_key(origin: &str) -> Vec<u8> {
    let mut key = PENDING_PREFIX.to_vec();
    key.extend_from_slice(origin.as_bytes());
    key
}

/// What kind of change a change-feed row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A subject was enrolled.
    Enroll,
    /// A subject was erased.
    Delete,
    /// The gallery was reset.
    Reset,
}

impl ChangeKind {
    /// The stored name: `enroll`, `delete`, `reset`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Enroll => "enroll",
            ChangeKind::Delete => "delete",
            ChangeKind::Reset => "reset",
        }
    }

    /// Reads a stored name; anything else is a corrupt row (never taken for a reset, which
    /// would clear the index).
    pub fn parse(name: &str) -> crate::error::Result<ChangeKind> {
        match name {
            "enroll" => Ok(ChangeKind::Enroll),
            "delete" => Ok(ChangeKind::Delete),
            "reset" => Ok(ChangeKind::Reset),
            other => Err(crate::error::Error::Corrupt(format!(
                "unknown change kind {other:?}"
            ))),
        }
    }
}

/// One row of the change feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Position in the feed, from 1, gap-free.
    pub seq: u64,
    /// What happened.
    pub kind: ChangeKind,
    /// Subject concerned.
    pub subject: Option<String>,
    /// Origin of the enrollment concerned.
    pub origin: String,
}

/// The server's answer to one pushed event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PushOutcome {
    /// Applied (or, for an erasure, the record was already gone).
    Applied,
    /// The server already holds this id for the same person (enrolled elsewhere): its record
    /// is kept and the kiosk adopts it.
    AlreadyEnrolled,
    /// The server holds this id for a different person: the kiosk's enrollment is refused
    /// and shown to its operator.
    Conflict {
        /// What the operator reads.
        message: String,
    },
    /// An erasure of an enrollment the server no longer holds under that id (another
    /// enrollment has the id now): nothing erased.
    Stale,
    /// The event is malformed (bad id, unreadable template): shown to the operator.
    Rejected {
        /// Why.
        reason: String,
    },
}

impl PushOutcome {
    /// Whether the kiosk's operator must look at this event.
    pub fn needs_operator(&self) -> bool {
        matches!(
            self,
            PushOutcome::Conflict { .. } | PushOutcome::Rejected { .. }
        )
    }

    /// The outcome as the server's audit log records it.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            PushOutcome::Applied => "applied",
            PushOutcome::AlreadyEnrolled => "already_enrolled",
            PushOutcome::Conflict { .. } => "conflict",
            PushOutcome::Stale => "stale",
            PushOutcome::Rejected { .. } => "rejected",
        }
    }
}

/// A subject as the server sends it to kiosks: record and templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteSubject {
    /// The record (template tags are the sender's, re-assigned on arrival).
    pub subject: Subject,
    /// Templates in [`encode_templates`] form.
    pub templates: Vec<String>,
}

/// One change a kiosk pulls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PulledChange {
    /// A subject to hold (replacing a different enrollment under the same id, unless that
    /// one is still waiting to be pushed).
    Enroll {
        /// Feed position.
        seq: u64,
        /// The subject.
        #[serde(flatten)]
        remote: RemoteSubject,
    },
    /// An erasure of the enrollment `origin` of `subject`.
    Delete {
        /// Feed position.
        seq: u64,
        /// Subject id.
        subject: String,
        /// Origin of the erased enrollment.
        origin: String,
    },
    /// The server's gallery was reset: a kiosk drops every subject it holds except the
    /// ones still waiting to be pushed.
    Reset {
        /// Feed position.
        seq: u64,
    },
}

/// A page of the change feed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangePage {
    /// Changes in feed order (rows superseded by later ones are left out).
    pub changes: Vec<PulledChange>,
    /// Cursor to ask from next.
    pub next_cursor: u64,
    /// Whether more rows follow.
    pub more: bool,
}

/// A kiosk's sync progress, kept in its gallery.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// Change-feed cursor reached.
    pub cursor: u64,
    /// Last successful push, milliseconds since the Unix epoch.
    pub last_push_ms: Option<u64>,
    /// Last successful pull, milliseconds since the Unix epoch.
    pub last_pull_ms: Option<u64>,
    /// Last error, cleared by the next success.
    pub last_error: Option<String>,
    /// Events waiting in the outbox.
    pub pending: usize,
    /// Events the operator must look at.
    pub conflicts: usize,
}

/// A queued event and its place in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// Outbox position.
    pub seq: u64,
    /// The event.
    pub event: SyncEvent,
}

/// An event the server refused, kept for the kiosk's operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// Event id.
    pub event_id: String,
    /// Subject concerned.
    pub subject: Option<String>,
    /// When the event happened, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The server's answer.
    pub message: String,
}

#[derive(Serialize, Deserialize)]
struct StoredConflict {
    conflict: Conflict,
    event: SyncEvent,
}

/// What the operator decides for a conflict.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Enroll the refused templates again under a new id (queued for the server).
    Reenroll {
        /// The new id.
        id: String,
    },
    /// Drop the refused enrollment.
    Discard,
}

impl Tx<'_> {
    fn pending(&self, origin: &str) -> TxResult<bool> {
        Ok(self.meta.get(pending_key(origin))?.is_some())
    }

    /// Installs a subject received from the server under fresh local template tags.
    fn install(&self, subject: &Subject, templates: &[Template]) -> TxResult<()> {
        self.remove_subject(&subject.id)?;
        self.put_subject(subject, templates, None)?;
        self.change(ChangeKind::Enroll, Some(&subject.id), &subject.origin)
    }
}

/// A received subject with its templates decoded and local tags assigned.
struct Arrival {
    subject: Subject,
    templates: Vec<Template>,
}

impl Gallery {
    fn arrival(&self, remote: &RemoteSubject) -> Result<Arrival> {
        let templates = decode_templates(&remote.templates)?;
        let mut subject = remote.subject.clone();
        subject.template_tags = templates
            .iter()
            .map(|_| self.db.generate_id())
            .collect::<std::result::Result<_, _>>()?;
        subject.template_models = templates.iter().map(|t| t.model_id().to_string()).collect();
        subject.has_image = false;
        Ok(Arrival { subject, templates })
    }

    /// Marks an enrollment as waiting to be pushed (inside its transaction).
    pub(crate) fn mark_pending(&self, tx: &Tx, origin: &str) -> TxResult<()> {
        if self.options.outbox {
            tx.meta.insert(pending_key(origin), &[] as &[u8])?;
        }
        Ok(())
    }
}

impl SyncKiosk for Gallery {
    fn pending(&self) -> usize {
        self.outbox.len()
    }

    fn outbox_batch(&self, max: usize) -> Result<Vec<OutboxEntry>> {
        self.outbox
            .iter()
            .take(max)
            .map(|entry| {
                let (key, sealed) = entry?;
                let seq = u64::from_be_bytes(
                    key.as_ref()
                        .try_into()
                        .map_err(|_| Error::Corrupt("outbox key".into()))?,
                );
                let json = self.open_sealed(&sealed, &crate::sync::outbox_location(seq))?;
                Ok(OutboxEntry {
                    seq,
                    event: decode(&json)?,
                })
            })
            .collect()
    }

    fn settle(
        &self,
        entry: &OutboxEntry,
        outcome: &PushOutcome,
        server_record: Option<&RemoteSubject>,
        ctx: &AuditContext,
    ) -> Result<()> {
        let arrival = server_record.map(|r| self.arrival(r)).transpose()?;
        let event = &entry.event;
        let message = match outcome {
            PushOutcome::Conflict { message } => message.clone(),
            PushOutcome::Rejected { reason } => reason.clone(),
            _ => String::new(),
        };
        let changed = self.write(|tx| {
            if tx.outbox.remove(&entry.seq.to_be_bytes())?.is_none() {
                return Ok(None); // settled before
            }
            tx.meta.remove(pending_key(&event.id))?;
            let subject = event.subject();
            let local_is_this_event = match subject {
                Some(id) => tx.subject(id)?.is_some_and(|s| s.origin == event.id),
                None => false,
            };
            if outcome.needs_operator() {
                let stored = StoredConflict {
                    conflict: Conflict {
                        event_id: event.id.clone(),
                        subject: subject.map(str::to_string),
                        at_ms: event.at_ms,
                        message: message.clone(),
                    },
                    event: event.clone(),
                };
                let json = tx_encode(&stored)?;
                let sealed = self
                    .seal(&json, &conflict_location(&event.id))
                    .or_else(abort)?;
                tx.conflicts.insert(event.id.as_bytes(), sealed)?;
                tx.audit("sync_conflict", subject, outcome.label(), ctx)?;
                if local_is_this_event && let Some(id) = subject {
                    tx.remove_subject(id)?;
                    tx.change(ChangeKind::Delete, Some(id), &event.id)?;
                }
            }
            let adopt = outcome.needs_operator() || *outcome == PushOutcome::AlreadyEnrolled;
            match &arrival {
                Some(a)
                    if adopt && (local_is_this_event || tx.subject(&a.subject.id)?.is_none()) =>
                {
                    tx.install(&a.subject, &a.templates)?;
                    tx.audit("sync_enroll", Some(&a.subject.id), "adopted", ctx)?;
                    Ok(Some(true))
                }
                _ => Ok(Some(local_is_this_event && outcome.needs_operator())),
            }
        })?;
        if let (Some(true), Some(id)) = (changed, event.subject()) {
            self.index_remove(id);
            if let Some(a) = &arrival {
                self.index_add(&a.subject, &a.templates);
            }
        }
        Ok(())
    }

    fn apply_page(&self, page: &ChangePage, ctx: &AuditContext) -> Result<usize> {
        let mut arrivals = HashMap::new();
        for change in &page.changes {
            if let PulledChange::Enroll { seq, remote } = change {
                arrivals.insert(*seq, self.arrival(remote)?);
            }
        }
        // A reset removes what is held now, except enrollments still waiting to be pushed.
        let reset_victims: Vec<String> = if page
            .changes
            .iter()
            .any(|c| matches!(c, PulledChange::Reset { .. }))
        {
            self.subjects()?.into_iter().map(|s| s.id).collect()
        } else {
            Vec::new()
        };
        let (applied, added, removed) = self.write(|tx| {
            let mut applied = 0;
            let mut added: Vec<u64> = Vec::new();
            let mut removed: Vec<String> = Vec::new();
            for change in &page.changes {
                match change {
                    PulledChange::Enroll { seq, .. } => {
                        let Some(a) = arrivals.get(seq) else { continue };
                        let id = &a.subject.id;
                        if let Some(local) = tx.subject(id)? {
                            if local.origin == a.subject.origin || tx.pending(&local.origin)? {
                                continue;
                            }
                            removed.push(id.clone());
                        }
                        tx.install(&a.subject, &a.templates)?;
                        tx.audit("sync_enroll", Some(id), "ok", ctx)?;
                        added.push(*seq);
                        applied += 1;
                    }
                    PulledChange::Delete {
                        subject, origin, ..
                    } => {
                        let held = tx.subject(subject)?.is_some_and(|s| s.origin == *origin);
                        if held {
                            tx.remove_subject(subject)?;
                            tx.change(ChangeKind::Delete, Some(subject), origin)?;
                            tx.audit("sync_delete", Some(subject), "ok", ctx)?;
                            removed.push(subject.clone());
                            applied += 1;
                        }
                    }
                    PulledChange::Reset { .. } => {
                        for id in &reset_victims {
                            let Some(local) = tx.subject(id)? else {
                                continue;
                            };
                            if tx.pending(&local.origin)? {
                                continue;
                            }
                            tx.remove_subject(id)?;
                            tx.change(ChangeKind::Delete, Some(id), &local.origin)?;
                            removed.push(id.clone());
                        }
                        tx.audit("sync_reset", None, "ok", ctx)?;
                        applied += 1;
                    }
                }
            }
            tx.meta
                .insert(META_SYNC_CURSOR, tx_encode(&page.next_cursor)?)?;
            Ok((applied, added, removed))
        })?;
        for id in &removed {
            self.index_remove(id);
        }
        // The last arrival of each id in the page, if it is still what the gallery holds
        // (index removal scans the index, so it is done only for ids actually replaced).
        let mut last: HashMap<&str, u64> = HashMap::new();
        for seq in added {
            if let Some(a) = arrivals.get(&seq) {
                last.insert(a.subject.id.as_str(), seq);
            }
        }
        for seq in last.into_values() {
            if let Some(a) = arrivals.get(&seq)
                && self
                    .subject(&a.subject.id)?
                    .is_some_and(|s| s.origin == a.subject.origin)
            {
                self.index_add(&a.subject, &a.templates);
            }
        }
        Ok(applied)
    }

    fn sync_cursor(&self) -> Result<u64> {
        Ok(match self.meta.get(META_SYNC_CURSOR)? {
            Some(v) => decode(&v)?,
            None => 0,
        })
    }

    fn sync_status(&self) -> Result<SyncStatus> {
        let mut status: SyncStatus = match self.meta.get(META_SYNC_STATUS)? {
            Some(v) => decode(&v)?,
            None => SyncStatus::default(),
        };
        status.cursor = self.sync_cursor()?;
        status.pending = self.pending();
        status.conflicts = self.conflicts.len();
        Ok(status)
    }

    fn note_sync(&self, step: SyncStep, error: Option<String>) -> Result<()> {
        let mut status = self.sync_status()?;
        match (&error, step) {
            (None, SyncStep::Push) => status.last_push_ms = Some(now_ms()),
            (None, SyncStep::Pull) => status.last_pull_ms = Some(now_ms()),
            _ => {}
        }
        status.last_error = error;
        self.meta.insert(META_SYNC_STATUS, encode(&status)?)?;
        Ok(())
    }

    fn conflicts(&self) -> Result<Vec<Conflict>> {
        self.conflicts
            .iter()
            .map(|entry| {
                let (key, sealed) = entry?;
                let id = String::from_utf8_lossy(&key).to_string();
                let json = self.open_sealed(&sealed, &conflict_location(&id))?;
                Ok(decode::<StoredConflict>(&json)?.conflict)
            })
            .collect()
    }

    fn resolve_conflict(
        &self,
        event_id: &str,
        resolution: &Resolution,
        ctx: &AuditContext,
    ) -> Result<Option<Subject>> {
        let sealed = self
            .conflicts
            .get(event_id.as_bytes())?
            .ok_or_else(|| Error::UnknownSubject(format!("conflict {event_id}")))?;
        let stored: StoredConflict =
            decode(&self.open_sealed(&sealed, &conflict_location(event_id))?)?;
        match resolution {
            Resolution::Discard => {
                self.write(|tx| {
                    tx.conflicts.remove(event_id.as_bytes())?;
                    tx.audit(
                        "sync_conflict",
                        stored.conflict.subject.as_deref(),
                        "discarded",
                        ctx,
                    )?;
                    Ok(())
                })?;
                Ok(None)
            }
            Resolution::Reenroll { id } => {
                let EventBody::Enroll {
                    display_name,
                    templates,
                    ..
                } = &stored.event.body
                else {
                    return Err(Error::Corrupt(
                        "only a refused enrollment can be enrolled again".into(),
                    ));
                };
                let templates = decode_templates(templates)?;
                let new = NewSubject {
                    id: id.clone(),
                    display_name: display_name.clone(),
                    ..NewSubject::default()
                };
                let origin = uuid::Uuid::new_v4().to_string();
                let subject = policy::new_record(self, &new, &templates, false, origin)?;
                self.write(|tx| {
                    let mut each = *tx;
                    lower(policy::enroll_in(
                        &mut each, &subject, &templates, None, ctx,
                    ))?;
                    tx.conflicts.remove(event_id.as_bytes())?;
                    Ok(())
                })?;
                self.index_add(&subject, &templates);
                Ok(Some(subject))
            }
        }
    }
}

/// Who a decision pushed by `device` is audited as on the server: `device:NAME/actor`.
pub(crate) fn device_context(device: &str, actor: &str, request_id: &str) -> AuditContext {
    AuditContext {
        actor: format!("device:{device}/{actor}"),
        request_id: request_id.to_string(),
    }
}

/// Checks and decodes the templates of a pushed enrollment; `Rejected` when unusable.
pub(crate) fn incoming_templates(
    subject: &str,
    templates: &[String],
) -> std::result::Result<Vec<Template>, PushOutcome> {
    crate::gallery::validate_subject_id(subject)
        .and_then(|()| decode_templates(templates))
        .and_then(|t| {
            if t.is_empty() {
                Err(Error::Corrupt("no template".into()))
            } else {
                Ok(t)
            }
        })
        .map_err(|e| PushOutcome::Rejected {
            reason: e.to_string(),
        })
}

/// The server's rule for a pushed enrollment, given what it holds under the id: new ids
/// and repeats of the same enrollment apply; the same person enrolled elsewhere is
/// `AlreadyEnrolled`; anyone else is a `Conflict`.
pub(crate) fn enrollment_outcome(
    event_id: &str,
    held: Option<(&Subject, &[Template])>,
    incoming: &[Template],
    same_person: &dyn Fn(&[Template], &[Template]) -> bool,
) -> PushOutcome {
    match held {
        None => PushOutcome::Applied,
        Some((h, _)) if h.origin == event_id => PushOutcome::Applied,
        Some((_, theirs)) if same_person(incoming, theirs) => PushOutcome::AlreadyEnrolled,
        Some((h, _)) => PushOutcome::Conflict {
            message: format!(
                "the server already holds {:?} for a different person (enrolled by {} at {} ms)",
                h.id,
                h.source.as_deref().unwrap_or("the server"),
                h.created_at_ms
            ),
        },
    }
}

/// The server's rule for a pushed erasure of enrollment `origin`: erase it if that is what
/// the server holds, else nothing (`Stale` when another enrollment holds the id). Returns
/// the outcome and the audit outcome.
pub(crate) fn erasure_outcome(held: Option<&Subject>, origin: &str) -> (PushOutcome, &'static str) {
    match held {
        Some(h) if h.origin == origin => (PushOutcome::Applied, "ok"),
        Some(_) => (PushOutcome::Stale, "stale"),
        None => (PushOutcome::Applied, "unknown_subject"),
    }
}

/// What a kiosk receives for a change-feed row: an enrollment only while it is still the
/// subject's current one (a later row covers the rest).
pub(crate) fn pulled_change(
    change: Change,
    remote: impl FnOnce(&str) -> Result<Option<RemoteSubject>>,
) -> Result<Option<PulledChange>> {
    let subject = change.subject.clone().unwrap_or_default();
    Ok(match change.kind {
        ChangeKind::Enroll => remote(&subject)?
            .filter(|r| r.subject.origin == change.origin)
            .map(|remote| PulledChange::Enroll {
                seq: change.seq,
                remote,
            }),
        ChangeKind::Delete => Some(PulledChange::Delete {
            seq: change.seq,
            subject,
            origin: change.origin,
        }),
        ChangeKind::Reset => Some(PulledChange::Reset { seq: change.seq }),
    })
}

/// Which step of a sync cycle [`Gallery::note_sync`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncStep {
    /// Pushing the outbox.
    Push,
    /// Pulling the change feed.
    Pull,
}
