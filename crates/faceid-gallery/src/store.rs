//! The gallery interface the server is written against: sled ([`crate::Gallery`], the
//! default) and PostgreSQL (`crate::postgres::PgGallery`, for several server processes
//! sharing one database) both implement it, with the same semantics: durable before `Ok`,
//! templates encrypted at rest, a hash-chained audit log, a change feed for kiosks and an
//! in-memory 1:N index kept current.

use faceid_core::Template;

use crate::error::Result;
use crate::gallery::{
    AuditContext, AuditEvent, AuditVerification, BiRecord, Candidate, Gallery, NewSubject, Subject,
};
use crate::sync::{ChangePage, PushOutcome, RemoteSubject, SyncEvent};

/// A gallery of subjects, as the server uses it. See [`Gallery`] for each method's contract.
pub trait GalleryStore: Send + Sync + std::fmt::Debug {
    /// Enrolls a new subject; `DuplicateSubject` when the id exists.
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
    /// A subject's retained image, if any.
    fn image(&self, id: &str) -> Result<Option<Vec<u8>>>;
    /// Erases a subject; whether it existed.
    fn delete(&self, id: &str, ctx: &AuditContext) -> Result<bool>;
    /// Removes every subject.
    fn reset(&self, ctx: &AuditContext) -> Result<()>;
    /// Audits a decision that changes no data.
    fn record(
        &self,
        action: &str,
        subject: Option<&str>,
        outcome: &str,
        ctx: &AuditContext,
    ) -> Result<AuditEvent>;
    /// The audit log, oldest first.
    fn audit(&self) -> Result<Vec<AuditEvent>>;
    /// Checks the audit chain.
    fn verify_audit(&self) -> Result<AuditVerification>;
    /// 1:N candidates with exact cosines, best first.
    fn search(&self, probe: &Template, max_subjects: usize) -> Result<Vec<Candidate>>;
    /// Stores a BI record.
    fn record_bi(&self, record: BiRecord) -> Result<BiRecord>;
    /// BI records between two dates.
    fn bi_records(&self, from: Option<&str>, to: Option<&str>) -> Result<Vec<BiRecord>>;
    /// Bytes held by the in-memory index.
    fn index_memory_bytes(&self) -> usize;
    /// Applies one event pushed by a kiosk, exactly once.
    fn apply_pushed(
        &self,
        device: &str,
        event: &SyncEvent,
        same_person: &dyn Fn(&[Template], &[Template]) -> bool,
    ) -> Result<PushOutcome>;
    /// A subject as kiosks receive it.
    fn remote_subject(&self, id: &str) -> Result<Option<RemoteSubject>>;
    /// Change-feed rows after `cursor`.
    fn changes_since(&self, cursor: u64, limit: usize) -> Result<ChangePage>;
    /// The last change-feed position.
    fn change_head(&self) -> Result<u64>;
}

impl GalleryStore for Gallery {
    fn enroll(
        &self,
        new: &NewSubject,
        templates: &[Template],
        image: Option<&[u8]>,
        ctx: &AuditContext,
    ) -> Result<Subject> {
        Gallery::enroll(self, new, templates, image, ctx)
    }
    fn subject(&self, id: &str) -> Result<Option<Subject>> {
        Gallery::subject(self, id)
    }
    fn subjects(&self) -> Result<Vec<Subject>> {
        Gallery::subjects(self)
    }
    fn len(&self) -> usize {
        Gallery::len(self)
    }
    fn templates(&self, id: &str) -> Result<Vec<Template>> {
        Gallery::templates(self, id)
    }
    fn image(&self, id: &str) -> Result<Option<Vec<u8>>> {
        Gallery::image(self, id)
    }
    fn delete(&self, id: &str, ctx: &AuditContext) -> Result<bool> {
        Gallery::delete(self, id, ctx)
    }
    fn reset(&self, ctx: &AuditContext) -> Result<()> {
        Gallery::reset(self, ctx)
    }
    fn record(
        &self,
        action: &str,
        subject: Option<&str>,
        outcome: &str,
        ctx: &AuditContext,
    ) -> Result<AuditEvent> {
        Gallery::record(self, action, subject, outcome, ctx)
    }
    fn audit(&self) -> Result<Vec<AuditEvent>> {
        Gallery::audit(self)
    }
    fn verify_audit(&self) -> Result<AuditVerification> {
        Gallery::verify_audit(self)
    }
    fn search(&self, probe: &Template, max_subjects: usize) -> Result<Vec<Candidate>> {
        Gallery::search(self, probe, max_subjects)
    }
    fn record_bi(&self, record: BiRecord) -> Result<BiRecord> {
        Gallery::record_bi(self, record)
    }
    fn bi_records(&self, from: Option<&str>, to: Option<&str>) -> Result<Vec<BiRecord>> {
        Gallery::bi_records(self, from, to)
    }
    fn index_memory_bytes(&self) -> usize {
        Gallery::index_memory_bytes(self)
    }
    fn apply_pushed(
        &self,
        device: &str,
        event: &SyncEvent,
        same_person: &dyn Fn(&[Template], &[Template]) -> bool,
    ) -> Result<PushOutcome> {
        Gallery::apply_pushed(self, device, event, same_person)
    }
    fn remote_subject(&self, id: &str) -> Result<Option<RemoteSubject>> {
        Gallery::remote_subject(self, id)
    }
    fn changes_since(&self, cursor: u64, limit: usize) -> Result<ChangePage> {
        Gallery::changes_since(self, cursor, limit)
    }
    fn change_head(&self) -> Result<u64> {
        Gallery::change_head(self)
    }
}
