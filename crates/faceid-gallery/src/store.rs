//! The gallery's public face, one trait per role. sled ([`crate::Gallery`], the default)
//! and PostgreSQL (`crate::postgres::PgGallery`, for several server processes sharing one
//! database) implement them with the same semantics, from the same rules
//! (`crate::policy`): durable before `Ok`, templates encrypted at rest, a hash-chained audit
//! log, a change feed for kiosks and an in-memory 1:N index kept current.
//!
//! A caller names the roles it needs: the server holds a [`GalleryStore`] (every server
//! role), a kiosk a [`KioskGallery`] (its local gallery with the kiosk side of sync).

use faceid_core::Template;

use crate::error::Result;
use crate::gallery::{
    AuditContext, AuditEvent, AuditVerification, BiRecord, Candidate, NewSubject, Subject,
};
use crate::sync::{
    ChangePage, Conflict, OutboxEntry, PushOutcome, RemoteSubject, Resolution, SyncEvent,
    SyncStatus, SyncStep,
};

/// Enrolled people: enroll, read, erase, reset. Each change is audited in its own
/// transaction and fed to kiosks.
pub trait Subjects: Send + Sync + std::fmt::Debug {
    /// Enrolls a new subject with its templates (and, when given, an image kept encrypted).
    /// `DuplicateSubject` when the id exists; nothing is written then. On a kiosk, the
    /// enrollment is queued for the server in the same transaction.
    fn enroll(
        &self,
        new: &NewSubject,
        templates: &[Template],
        image: Option<&[u8]>,
        ctx: &AuditContext,
    ) -> Result<Subject>;
    /// The subject with `id`, if any.
    fn subject(&self, id: &str) -> Result<Option<Subject>>;
    /// Every subject, ordered by id.
    fn subjects(&self) -> Result<Vec<Subject>>;
    /// Number of subjects.
    fn len(&self) -> usize;
    /// Whether there are no subjects.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A subject's decrypted templates (`UnknownSubject` when absent).
    fn templates(&self, id: &str) -> Result<Vec<Template>>;
    /// A subject's retained image, decrypted, if any.
    fn image(&self, id: &str) -> Result<Option<Vec<u8>>>;
    /// Erases a subject (record, templates, image, index rows) with its audit event; whether
    /// it existed (an absent one is audited too). On a kiosk the erasure is queued.
    fn delete(&self, id: &str, ctx: &AuditContext) -> Result<bool>;
    /// Removes every subject. The audit log keeps its history and records the reset first;
    /// the change feed gets a `reset` row. A kiosk's reset is local: never pushed.
    fn reset(&self, ctx: &AuditContext) -> Result<()>;
}

/// The hash-chained audit log.
pub trait AuditLog: Send + Sync {
    /// Appends an audit event for a decision that changes no data (verify, identify,
    /// liveness), durably; on a kiosk it is queued for the server too.
    fn record(
        &self,
        action: &str,
        subject: Option<&str>,
        outcome: &str,
        ctx: &AuditContext,
    ) -> Result<AuditEvent>;
    /// The audit log, oldest first.
    fn audit(&self) -> Result<Vec<AuditEvent>>;
    /// Recomputes every hash and link of the chain and checks the stored head.
    fn verify_audit(&self) -> Result<AuditVerification>;
}

/// 1:N search over the in-memory index.
pub trait Search: Send + Sync {
    /// The subjects whose templates are most similar to `probe`, best first, with exact
    /// cosines: the int8 index proposes `4 * max_subjects` (at least 32) rows, the float
    /// templates re-rank them. The engine turns cosines into a decision.
    fn search(&self, probe: &Template, max_subjects: usize) -> Result<Vec<Candidate>>;
    /// Bytes held by the in-memory index.
    fn index_memory_bytes(&self) -> usize;
}

/// Business-intelligence records of surface 1 (no biometric data).
pub trait BiStore: Send + Sync {
    /// Stores a BI record (fields filled by the caller; `at_ms`/`date` set here).
    fn record_bi(&self, record: BiRecord) -> Result<BiRecord>;
    /// Records whose date lies in `[from, to]` (inclusive, `yyyy-MM-dd`; open ends when
    /// `None`), oldest first.
    fn bi_records(&self, from: Option<&str>, to: Option<&str>) -> Result<Vec<BiRecord>>;
}

/// The server side of sync: kiosks push their changes and pull the change feed.
pub trait SyncServer: Send + Sync {
    /// Applies one event pushed by `device`, exactly once: the outcome is recorded under the
    /// event id in the same transaction as its effect, and a repeat returns it unchanged.
    /// `same_person` is the engine's rule for two template sets (the gallery never decides).
    fn apply_pushed(
        &self,
        device: &str,
        event: &SyncEvent,
        same_person: &(dyn Fn(&[Template], &[Template]) -> bool + Sync),
    ) -> Result<PushOutcome>;
    /// A subject's record and templates as kiosks receive them.
    fn remote_subject(&self, id: &str) -> Result<Option<RemoteSubject>>;
    /// Up to `limit` change-feed rows after `cursor`. An enrollment row whose subject was
    /// erased or re-enrolled since is left out (a later row covers it).
    fn changes_since(&self, cursor: u64, limit: usize) -> Result<ChangePage>;
    /// The last change-feed position.
    fn change_head(&self) -> Result<u64>;
}

/// The kiosk side of sync: the outbox of local changes, the pulled feed, conflicts.
pub trait SyncKiosk: Send + Sync {
    /// Events waiting in the outbox.
    fn pending(&self) -> usize;
    /// Up to `max` queued events, oldest first.
    fn outbox_batch(&self, max: usize) -> Result<Vec<OutboxEntry>>;
    /// Applies the server's answer to a pushed event, in one transaction: the event leaves
    /// the outbox; on `AlreadyEnrolled` the server's record replaces the local one; on a
    /// conflict or rejection the local enrollment is moved aside for the operator (audited
    /// `sync_conflict`) and the server's record, when given, takes its place.
    fn settle(
        &self,
        entry: &OutboxEntry,
        outcome: &PushOutcome,
        server_record: Option<&RemoteSubject>,
        ctx: &AuditContext,
    ) -> Result<()>;
    /// Applies a pulled page and moves the cursor to `page.next_cursor`, in one
    /// transaction (a crash replays the whole page, which applies idempotently).
    fn apply_page(&self, page: &ChangePage, ctx: &AuditContext) -> Result<usize>;
    /// The change-feed cursor this kiosk has pulled up to.
    fn sync_cursor(&self) -> Result<u64>;
    /// Sync progress: cursor, last push and pull, last error, pending and conflict counts.
    fn sync_status(&self) -> Result<SyncStatus>;
    /// Records the outcome of a sync step: a success clears the last error, a failure
    /// keeps the previous success times.
    fn note_sync(&self, step: SyncStep, error: Option<String>) -> Result<()>;
    /// Events the server refused, for the operator.
    fn conflicts(&self) -> Result<Vec<Conflict>>;
    /// Resolves a conflict: re-enrolls its templates under a new id (queued like any
    /// enrollment) or drops them. `UnknownSubject` when there is no such conflict.
    fn resolve_conflict(
        &self,
        event_id: &str,
        resolution: &Resolution,
        ctx: &AuditContext,
    ) -> Result<Option<Subject>>;
}

/// The roles the use cases need (enroll, verify, identify, erase, audit), on a server or a
/// kiosk alike.
pub trait IdentityStore: Subjects + AuditLog + Search {}

impl<T: Subjects + AuditLog + Search + ?Sized> IdentityStore for T {}

/// Every role a server needs.
pub trait GalleryStore: IdentityStore + BiStore + SyncServer {}

impl<T: IdentityStore + BiStore + SyncServer + ?Sized> GalleryStore for T {}

/// Every role a kiosk needs: its local gallery and the kiosk side of sync.
pub trait KioskGallery: IdentityStore + SyncKiosk {}

impl<T: IdentityStore + SyncKiosk + ?Sized> KioskGallery for T {}
