//! The gallery's rules, written once for both backends.
//!
//! A backend (sled in [`crate::gallery`], PostgreSQL in `crate::postgres`) provides only
//! primitives: one write transaction ([`GalleryTx`]: read, put and remove a subject, append
//! an audit event or a change-feed row, mark a pushed event applied) and a few reads
//! ([`Backend`]). Everything that makes those writes a gallery lives here: what an
//! enrollment, an erasure and a reset write together, the audit hash chain and its
//! verification, the exactly-once application of a pushed event and its re-check, and the
//! record a kiosk receives.

use faceid_core::Template;

use crate::error::{Error, Result};
use crate::gallery::{
    AuditContext, AuditEvent, AuditVerification, BiRecord, Candidate, DocumentId, GENESIS_HASH,
    NewSubject, Subject, now_ms, utc_date, validate_subject_id,
};
use crate::store::{AuditLog, BiStore, Search, Subjects, SyncServer};
use crate::sync::{
    Change, ChangeKind, ChangePage, EventBody, PushOutcome, RemoteSubject, SyncEvent,
    device_context, encode_templates, enrollment_outcome, erasure_outcome, incoming_templates,
    pulled_change,
};

/// The primitive writes of one transaction. Everything a transaction writes commits
/// together or not at all.
pub trait GalleryTx {
    /// The subject record with `id`, as this transaction sees it.
    fn subject(&mut self, id: &str) -> Result<Option<Subject>>;
    /// The subject enrolled with the document whose tag ([`Subject::document_tag`]) is
    /// `tag`, as this transaction sees it.
    fn document_holder(&mut self, tag: &str) -> Result<Option<String>>;
    /// Writes a subject record with its sealed templates and optional sealed image.
    fn put_subject(
        &mut self,
        subject: &Subject,
        templates: &[Template],
        image: Option<&[u8]>,
    ) -> Result<()>;
    /// Removes a subject's record, templates and image; returns the record.
    fn remove_subject(&mut self, id: &str) -> Result<Option<Subject>>;
    /// The last audit event's position and hash (`(0, GENESIS_HASH)` when empty).
    fn audit_head(&mut self) -> Result<(u64, String)>;
    /// Appends `event` and makes it the head.
    fn append_audit(&mut self, event: &AuditEvent) -> Result<()>;
    /// Appends a change-feed row under the next position.
    fn append_change(
        &mut self,
        kind: ChangeKind,
        subject: Option<&str>,
        origin: &str,
    ) -> Result<()>;
    /// Records the outcome of a pushed event under its id; [`Error::AlreadyApplied`] (and
    /// the whole transaction rolls back) when a racing attempt recorded one first.
    fn mark_applied(&mut self, event_id: &str, outcome: &PushOutcome) -> Result<()>;
    /// Queues a local change for the server: a kiosk gallery's outbox; nothing elsewhere.
    fn queue(&mut self, event: &SyncEvent) -> Result<()>;
}

/// A transaction body, run by [`Backend::write`] (perhaps more than once, on a conflict).
pub type TxBody<'a, T> = &'a (dyn Fn(&mut dyn GalleryTx) -> Result<T> + Sync);

/// What a backend provides the rules: transactions, reads and its in-memory index. Every
/// backend gets the public roles ([`Subjects`], [`AuditLog`], [`Search`], [`BiStore`],
/// [`SyncServer`]) from the implementations below. (Public in a private module: callers
/// cannot name it, so only this crate's backends exist.)
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Runs `body` in one transaction and makes it durable before returning.
    fn write<T: Send>(&self, body: TxBody<'_, T>) -> Result<T>;
    /// `n` fresh template tags.
    fn new_tags(&self, n: usize) -> Result<Vec<u64>>;
    /// The keyed hash of `document` under this gallery's key.
    fn document_tag(&self, document: &DocumentId) -> Result<String>;
    /// The subject with `id`, if any.
    fn read_subject(&self, id: &str) -> Result<Option<Subject>>;
    /// A stored subject's decrypted templates.
    fn read_templates(&self, subject: &Subject) -> Result<Vec<Template>>;
    /// The outcome recorded for a pushed event, if it was applied.
    fn applied_outcome(&self, event_id: &str) -> Result<Option<PushOutcome>>;
    /// The audit log as stored, oldest first: each row's key and its event (`None` when the
    /// row does not decode).
    fn audit_rows(&self) -> Result<Vec<(u64, Option<AuditEvent>)>>;
    /// The stored head of the audit chain, if any (`None` when it does not decode either).
    fn stored_audit_head(&self) -> Result<Option<(u64, String)>>;
    /// Removes every subject, template and image (after the reset is audited).
    fn clear_subjects(&self) -> Result<()>;
    /// Up to `limit` change-feed rows after `cursor`, in order.
    fn changes_after(&self, cursor: u64, limit: usize) -> Result<Vec<Change>>;
    /// Every subject, ordered by id.
    fn read_subjects(&self) -> Result<Vec<Subject>>;
    /// Number of subjects.
    fn count(&self) -> usize;
    /// A subject's retained image, decrypted, if any.
    fn read_image(&self, id: &str) -> Result<Option<Vec<u8>>>;
    /// The audit log, oldest first.
    fn read_audit(&self) -> Result<Vec<AuditEvent>>;
    /// 1:N candidates from the in-memory index, re-ranked exactly.
    fn search_index(&self, probe: &Template, max_subjects: usize) -> Result<Vec<Candidate>>;
    /// Bytes the in-memory index holds.
    fn index_bytes(&self) -> usize;
    /// Stores a complete BI record.
    fn store_bi(&self, record: &BiRecord) -> Result<()>;
    /// BI records dated within `[from, to]`, oldest first.
    fn read_bi(&self, from: &str, to: &str) -> Result<Vec<BiRecord>>;
    /// The last change-feed position.
    fn feed_head(&self) -> Result<u64>;
    /// Adds a committed subject to the in-memory index.
    fn index_add(&self, subject: &Subject, templates: &[Template]);
    /// Removes a subject from the in-memory index.
    fn index_remove(&self, id: &str);
    /// Empties the in-memory index.
    fn index_clear(&self);
}

/// Appends the next event of the hash chain.
pub(crate) fn audit(
    tx: &mut dyn GalleryTx,
    action: &str,
    subject: Option<&str>,
    outcome: &str,
    ctx: &AuditContext,
) -> Result<AuditEvent> {
    let (seq, hash) = tx.audit_head()?;
    let event = AuditEvent::chained(seq, hash, action, subject, outcome, ctx)?;
    tx.append_audit(&event)?;
    Ok(event)
}

/// A new subject record for `new` with fresh template tags.
pub(crate) fn new_record(
    backend: &impl Backend,
    new: &NewSubject,
    templates: &[Template],
    has_image: bool,
    origin: String,
) -> Result<Subject> {
    validate_subject_id(&new.id)?;
    if templates.is_empty() {
        return Err(Error::Corrupt(
            "an enrollment needs at least one template".into(),
        ));
    }
    let now = now_ms();
    Ok(Subject {
        id: new.id.clone(),
        display_name: new.display_name.clone(),
        created_at_ms: now,
        updated_at_ms: now,
        source: new.source.clone(),
        template_tags: backend.new_tags(templates.len())?,
        template_models: templates.iter().map(|t| t.model_id().to_string()).collect(),
        has_image,
        origin,
        document_tag: new
            .document
            .as_ref()
            .map(|d| backend.document_tag(d))
            .transpose()?,
        document_number: new
            .document
            .as_ref()
            .filter(|_| new.keep_document_number)
            .map(DocumentId::canonical),
    })
}

/// What an enrollment writes, inside its transaction: the subject, its audit event, its
/// change-feed row and (on a kiosk) its outbox event. `DuplicateSubject` when the id is
/// taken, `DuplicateDocument` when its document enrolled another subject.
pub(crate) fn enroll_in(
    tx: &mut dyn GalleryTx,
    subject: &Subject,
    templates: &[Template],
    image: Option<&[u8]>,
    ctx: &AuditContext,
) -> Result<()> {
    if tx.subject(&subject.id)?.is_some() {
        return Err(Error::DuplicateSubject(subject.id.clone()));
    }
    if let Some(tag) = &subject.document_tag
        && let Some(holder) = tx.document_holder(tag)?
    {
        return Err(Error::DuplicateDocument { holder });
    }
    tx.put_subject(subject, templates, image)?;
    audit(tx, "enroll", Some(&subject.id), "ok", ctx)?;
    tx.append_change(ChangeKind::Enroll, Some(&subject.id), &subject.origin)?;
    tx.queue(&SyncEvent::enroll(subject, templates))
}

/// Enrolls a new subject; see [`crate::Subjects::enroll`].
pub(crate) fn enroll(
    backend: &impl Backend,
    new: &NewSubject,
    templates: &[Template],
    image: Option<&[u8]>,
    ctx: &AuditContext,
) -> Result<Subject> {
    let origin = uuid::Uuid::new_v4().to_string();
    let subject = new_record(backend, new, templates, image.is_some(), origin)?;
    backend.write(&|tx| enroll_in(tx, &subject, templates, image, ctx))?;
    backend.index_add(&subject, templates);
    Ok(subject)
}

/// Erases a subject; see [`crate::Subjects::delete`].
pub(crate) fn delete(backend: &impl Backend, id: &str, ctx: &AuditContext) -> Result<bool> {
    let event_id = uuid::Uuid::new_v4().to_string();
    let existed = backend.write(&|tx| {
        let Some(subject) = tx.remove_subject(id)? else {
            audit(tx, "delete", Some(id), "unknown_subject", ctx)?;
            return Ok(false);
        };
        audit(tx, "delete", Some(id), "ok", ctx)?;
        tx.append_change(ChangeKind::Delete, Some(id), &subject.origin)?;
        tx.queue(&SyncEvent::delete(event_id.clone(), id, &subject.origin))?;
        Ok(true)
    })?;
    if existed {
        backend.index_remove(id);
    }
    Ok(existed)
}

/// Removes every subject; see [`crate::Subjects::reset`]. The reset is audited and fed
/// first, so an interrupted reset is visible and simply run again.
pub(crate) fn reset(backend: &impl Backend, ctx: &AuditContext) -> Result<()> {
    backend.write(&|tx| {
        audit(tx, "reset", None, "ok", ctx)?;
        tx.append_change(ChangeKind::Reset, None, "")
    })?;
    backend.clear_subjects()?;
    backend.index_clear();
    Ok(())
}

/// Audits a decision that changes no data; see [`crate::AuditLog::record`].
pub(crate) fn record(
    backend: &impl Backend,
    action: &str,
    subject: Option<&str>,
    outcome: &str,
    ctx: &AuditContext,
) -> Result<AuditEvent> {
    let event_id = uuid::Uuid::new_v4().to_string();
    backend.write(&|tx| {
        let event = audit(tx, action, subject, outcome, ctx)?;
        tx.queue(&SyncEvent::audit(event_id.clone(), &event))?;
        Ok(event)
    })
}

/// Recomputes every hash and link of the audit chain, and checks the stored head.
pub(crate) fn verify_audit(backend: &impl Backend) -> Result<AuditVerification> {
    let mut prev = GENESIS_HASH.to_string();
    let mut events = 0;
    for (key, event) in backend.audit_rows()? {
        events += 1;
        let intact = event.as_ref().is_some_and(|e| {
            key == e.seq
                && e.seq == events
                && e.prev_hash == prev
                && e.compute_hash().is_ok_and(|hash| hash == e.hash)
        });
        match event {
            Some(e) if intact => prev = e.hash,
            _ => {
                return Ok(AuditVerification {
                    events,
                    valid: false,
                    first_invalid_seq: Some(events),
                });
            }
        }
    }
    let valid = match backend.stored_audit_head()? {
        Some((seq, hash)) => seq == events && hash == prev,
        None => events == 0,
    };
    Ok(AuditVerification {
        events,
        valid,
        first_invalid_seq: (!valid).then_some(events + 1),
    })
}

/// A subject as kiosks receive it; see [`crate::SyncServer::remote_subject`].
pub(crate) fn remote_subject(backend: &impl Backend, id: &str) -> Result<Option<RemoteSubject>> {
    let Some(subject) = backend.read_subject(id)? else {
        return Ok(None);
    };
    let templates = encode_templates(&backend.read_templates(&subject)?);
    Ok(Some(RemoteSubject { subject, templates }))
}

/// Up to `limit` change-feed rows after `cursor`; see [`crate::SyncServer::changes_since`].
pub(crate) fn changes_since(
    backend: &impl Backend,
    cursor: u64,
    limit: usize,
) -> Result<ChangePage> {
    let rows = backend.changes_after(cursor, limit.saturating_add(1))?;
    let mut page = ChangePage {
        changes: Vec::new(),
        next_cursor: cursor,
        more: rows.len() > limit,
    };
    for change in rows.into_iter().take(limit) {
        page.next_cursor = change.seq;
        if let Some(pulled) = pulled_change(change, |id| remote_subject(backend, id))? {
            page.changes.push(pulled);
        }
    }
    Ok(page)
}

/// Applies one event pushed by `device`, exactly once; see [`crate::SyncServer::apply_pushed`].
///
/// The outcome is recorded under the event id in the same transaction as its effect. The
/// decision is taken on what is held before the write; the write checks again and the
/// event is decided anew if the subject changed meanwhile. A write that fails because a
/// concurrent push of the same event recorded its outcome first answers that outcome.
pub(crate) fn apply_pushed(
    backend: &impl Backend,
    device: &str,
    event: &SyncEvent,
    same_person: &(dyn Fn(&[Template], &[Template]) -> bool + Sync),
) -> Result<PushOutcome> {
    loop {
        if let Some(outcome) = backend.applied_outcome(&event.id)? {
            return Ok(outcome);
        }
        match apply_once(backend, device, event, same_person) {
            Ok(Some(outcome)) => return Ok(outcome),
            Ok(None) => continue, // the subject changed meanwhile: decide again
            Err(e) => {
                return match backend.applied_outcome(&event.id)? {
                    Some(outcome) => Ok(outcome),
                    None => Err(e),
                };
            }
        }
    }
}

/// One attempt of [`apply_pushed`]; `None` when the subject changed between the decision
/// and the write.
fn apply_once(
    backend: &impl Backend,
    device: &str,
    event: &SyncEvent,
    same_person: &(dyn Fn(&[Template], &[Template]) -> bool + Sync),
) -> Result<Option<PushOutcome>> {
    let ctx = AuditContext {
        actor: format!("device:{device}"),
        request_id: event.id.clone(),
    };
    // An outcome with its audit event and nothing else.
    let answer = |outcome: PushOutcome, action: &str, subject: Option<&str>, audited: &str| {
        let ctx = match &event.body {
            EventBody::Audit {
                actor, request_id, ..
            } => device_context(device, actor, request_id),
            _ => ctx.clone(),
        };
        backend.write(&|tx| {
            audit(tx, action, subject, audited, &ctx)?;
            tx.mark_applied(&event.id, &outcome)
        })?;
        Ok(Some(outcome))
    };
    match &event.body {
        EventBody::Enroll {
            subject,
            display_name,
            templates,
        } => {
            let incoming = match incoming_templates(subject, templates) {
                Ok(t) => t,
                Err(outcome) => return answer(outcome, "sync_push", Some(subject), "rejected"),
            };
            let held = match backend.read_subject(subject)? {
                Some(h) => {
                    let theirs = backend.read_templates(&h)?;
                    Some((h, theirs))
                }
                None => None,
            };
            let outcome = enrollment_outcome(
                &event.id,
                held.as_ref().map(|(s, t)| (s, t.as_slice())),
                &incoming,
                same_person,
            );
            if outcome != PushOutcome::Applied || held.is_some() {
                let label = outcome.label();
                return answer(outcome, "sync_push", Some(subject), label);
            }
            let new = NewSubject {
                id: subject.clone(),
                display_name: display_name.clone(),
                source: Some(device.to_string()),
                // Documents stay on the device that read them: tags are keyed per gallery.
                ..NewSubject::default()
            };
            let mut record = new_record(backend, &new, &incoming, false, event.id.clone())?;
            record.created_at_ms = event.at_ms;
            let stored = backend.write(&|tx| {
                if tx.subject(subject)?.is_some() {
                    return Ok(false);
                }
                tx.put_subject(&record, &incoming, None)?;
                audit(tx, "enroll", Some(subject), "ok", &ctx)?;
                tx.append_change(ChangeKind::Enroll, Some(subject), &event.id)?;
                tx.mark_applied(&event.id, &PushOutcome::Applied)?;
                Ok(true)
            })?;
            if !stored {
                return Ok(None);
            }
            backend.index_add(&record, &incoming);
            Ok(Some(PushOutcome::Applied))
        }
        EventBody::Delete { subject, origin } => {
            let (outcome, erased) = backend.write(&|tx| {
                let held = tx.subject(subject)?;
                let (outcome, audited) = erasure_outcome(held.as_ref(), origin);
                let erased = held.is_some() && outcome == PushOutcome::Applied;
                if erased {
                    tx.remove_subject(subject)?;
                    tx.append_change(ChangeKind::Delete, Some(subject), origin)?;
                }
                audit(tx, "delete", Some(subject), audited, &ctx)?;
                tx.mark_applied(&event.id, &outcome)?;
                Ok((outcome, erased))
            })?;
            if erased {
                backend.index_remove(subject);
            }
            Ok(Some(outcome))
        }
        EventBody::Audit {
            action,
            subject,
            outcome,
            ..
        } => answer(PushOutcome::Applied, action, subject.as_deref(), outcome),
    }
}

impl<B: Backend> Subjects for B {
    fn enroll(
        &self,
        new: &NewSubject,
        templates: &[Template],
        image: Option<&[u8]>,
        ctx: &AuditContext,
    ) -> Result<Subject> {
        enroll(self, new, templates, image, ctx)
    }
    fn subject(&self, id: &str) -> Result<Option<Subject>> {
        self.read_subject(id)
    }
    fn subjects(&self) -> Result<Vec<Subject>> {
        self.read_subjects()
    }
    fn len(&self) -> usize {
        self.count()
    }
    fn templates(&self, id: &str) -> Result<Vec<Template>> {
        let subject = self
            .read_subject(id)?
            .ok_or_else(|| Error::UnknownSubject(id.to_string()))?;
        self.read_templates(&subject)
    }
    fn image(&self, id: &str) -> Result<Option<Vec<u8>>> {
        self.read_image(id)
    }
    fn delete(&self, id: &str, ctx: &AuditContext) -> Result<bool> {
        delete(self, id, ctx)
    }
    fn reset(&self, ctx: &AuditContext) -> Result<()> {
        reset(self, ctx)
    }
}

impl<B: Backend> AuditLog for B {
    fn record(
        &self,
        action: &str,
        subject: Option<&str>,
        outcome: &str,
        ctx: &AuditContext,
    ) -> Result<AuditEvent> {
        record(self, action, subject, outcome, ctx)
    }
    fn audit(&self) -> Result<Vec<AuditEvent>> {
        self.read_audit()
    }
    fn verify_audit(&self) -> Result<AuditVerification> {
        verify_audit(self)
    }
}

impl<B: Backend> Search for B {
    fn search(&self, probe: &Template, max_subjects: usize) -> Result<Vec<Candidate>> {
        self.search_index(probe, max_subjects)
    }
    fn index_memory_bytes(&self) -> usize {
        self.index_bytes()
    }
}

impl<B: Backend> BiStore for B {
    fn record_bi(&self, mut record: BiRecord) -> Result<BiRecord> {
        record.at_ms = now_ms();
        record.date = utc_date(record.at_ms);
        self.store_bi(&record)?;
        Ok(record)
    }
    fn bi_records(&self, from: Option<&str>, to: Option<&str>) -> Result<Vec<BiRecord>> {
        self.read_bi(from.unwrap_or("0000-00-00"), to.unwrap_or("9999-99-99"))
    }
}

impl<B: Backend> SyncServer for B {
    fn apply_pushed(
        &self,
        device: &str,
        event: &SyncEvent,
        same_person: &(dyn Fn(&[Template], &[Template]) -> bool + Sync),
    ) -> Result<PushOutcome> {
        apply_pushed(self, device, event, same_person)
    }
    fn remote_subject(&self, id: &str) -> Result<Option<RemoteSubject>> {
        remote_subject(self, id)
    }
    fn changes_since(&self, cursor: u64, limit: usize) -> Result<ChangePage> {
        changes_since(self, cursor, limit)
    }
    fn change_head(&self) -> Result<u64> {
        self.feed_head()
    }
}
