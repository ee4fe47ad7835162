//! The sled store. Trees: `subjects` (id -> JSON record), `templates` (tag -> encrypted
//! template), `images` (id -> encrypted image, only when retention is on), `audit`
//! (sequence -> hash-chained JSON event) and `meta` (key check, audit head).
//!
//! Every change is one sled transaction across the trees it touches, the audit event
//! included, followed by a flush to disk before the call returns: an acknowledged write is
//! durable, and a crash at any instant leaves either all of a change or none of it.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use faceid_core::Template;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use crate::error::{Error, Result};
use crate::index::QuantizedIndex;
use crate::key::GalleryKey;
use crate::policy::{self, Backend, GalleryTx, TxBody};
use crate::sync::{Change, ChangeKind, PushOutcome, SyncEvent, outbox_location};

pub(crate) const KEY_CHECK: &[u8] = b"faceid-gallery-key-check-v1";
const META_KEY_CHECK: &[u8] = b"key_check";
const META_AUDIT_HEAD: &[u8] = b"audit_head";
const META_CHANGE_HEAD: &[u8] = b"change_head";
const META_OUTBOX_HEAD: &[u8] = b"outbox_head";
pub(crate) const GENESIS_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";
/// Longest subject id accepted, in bytes.
pub const MAX_SUBJECT_ID_BYTES: usize = 128;

/// A person in the gallery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// Stable id (the server's source of truth).
    pub id: String,
    /// Name shown to operators, if any.
    pub display_name: Option<String>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Last change, milliseconds since the Unix epoch.
    pub updated_at_ms: u64,
    /// Kiosk or server that enrolled the subject.
    pub source: Option<String>,
    /// Template numbers (keys of the `templates` tree).
    pub template_tags: Vec<u64>,
    /// Model id of each template, in the same order.
    pub template_models: Vec<String>,
    /// Whether an encrypted image is retained.
    pub has_image: bool,
    /// Id of the enrollment event that created this record (a UUID). Sync compares it to
    /// tell "the same enrollment" from "another enrollment under the same id".
    #[serde(default)]
    pub origin: String,
    /// Keyed hash of the identity document the subject enrolled with ([`DocumentId`]):
    /// finds the same document enrolled twice without keeping its number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_tag: Option<String>,
    /// The document's issuing state and number in clear (`MAR/AB123456`), only when the
    /// enrollment asked to keep it ([`NewSubject::keep_document_number`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_number: Option<String>,
}

/// An identity document as the gallery knows it: issuing state and number (from a verified
/// machine-readable zone). One document enrolls one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentId {
    /// Three-letter issuing state or organisation (`MAR`, `FRA`, `D`).
    pub issuing_state: String,
    /// Document number, fillers (`<`) dropped.
    pub number: String,
}

impl DocumentId {
    /// `STATE/NUMBER`, upper case, fillers and spaces dropped: what is hashed and, when
    /// allowed, stored.
    pub fn canonical(&self) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_uppercase())
                .collect()
        };
        format!("{}/{}", clean(&self.issuing_state), clean(&self.number))
    }
}

/// What a caller supplies to enroll someone.
#[derive(Debug, Clone, Default)]
pub struct NewSubject {
    /// Stable id: 1-128 bytes of printable characters.
    pub id: String,
    /// Optional display name.
    pub display_name: Option<String>,
    /// Enrolling kiosk or server.
    pub source: Option<String>,
    /// The identity document enrolled from, if any: another subject already enrolled
    /// with it makes the enrollment `DuplicateDocument`.
    pub document: Option<DocumentId>,
    /// Keep the document's number in clear in the record. Off by default: Moroccan law
    /// 09-08 treats ID numbers as needing authorisation; the keyed hash suffices to refuse
    /// a second enrollment.
    pub keep_document_number: bool,
}

/// Who asked for a change, carried into the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditContext {
    /// Authenticated actor (API key id, operator, kiosk).
    pub actor: String,
    /// Request id of the call.
    pub request_id: String,
}

/// One audit event. `hash` = sha256(`prev_hash` + the event's other fields as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Position in the log, from 1.
    pub seq: u64,
    /// Time, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What happened: `enroll`, `delete`, `reset`, `verify`, `identify`, ...
    pub action: String,
    /// Subject concerned, if any.
    pub subject: Option<String>,
    /// Outcome: `ok`, `approved`, `rejected`, an error code...
    pub outcome: String,
    /// Who asked.
    pub actor: String,
    /// Request id.
    pub request_id: String,
    /// Hash of the previous event (all zeros for the first).
    pub prev_hash: String,
    /// Hash of this event.
    pub hash: String,
}

#[derive(Serialize)]
struct AuditBody<'a> {
    seq: u64,
    at_ms: u64,
    action: &'a str,
    subject: &'a Option<String>,
    outcome: &'a str,
    actor: &'a str,
    request_id: &'a str,
    prev_hash: &'a str,
}

impl AuditEvent {
    /// The event after `(prev_seq, prev_hash)`, hashed.
    pub(crate) fn chained(
        prev_seq: u64,
        prev_hash: String,
        action: &str,
        subject: Option<&str>,
        outcome: &str,
        ctx: &AuditContext,
    ) -> Result<AuditEvent> {
        let mut event = AuditEvent {
            seq: prev_seq + 1,
            at_ms: now_ms(),
            action: action.to_string(),
            subject: subject.map(str::to_string),
            outcome: outcome.to_string(),
            actor: ctx.actor.clone(),
            request_id: ctx.request_id.clone(),
            prev_hash,
            hash: String::new(),
        };
        event.hash = event.compute_hash()?;
        Ok(event)
    }

    pub(crate) fn compute_hash(&self) -> Result<String> {
        let body = AuditBody {
            seq: self.seq,
            at_ms: self.at_ms,
            action: &self.action,
            subject: &self.subject,
            outcome: &self.outcome,
            actor: &self.actor,
            request_id: &self.request_id,
            prev_hash: &self.prev_hash,
        };
        let json = encode(&body)?;
        let digest = Sha256::digest(&json);
        Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// Result of checking the audit chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditVerification {
    /// Events read.
    pub events: u64,
    /// Whether every hash and link checks out and the head matches the last event.
    pub valid: bool,
    /// First event that fails, if any.
    pub first_invalid_seq: Option<u64>,
}

/// One liveness check as the BI endpoints report it (no image, no template).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BiRecord {
    /// Time, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// UTC date, `yyyy-MM-dd`.
    pub date: String,
    /// Pipeline that ran.
    pub pipeline: String,
    /// Domain (`GENERAL`, `DESKTOP`, or `UNKNOWN` when not given).
    pub domain: String,
    /// Live probability, when the check ran.
    pub probability: Option<f32>,
    /// Image quality 0..1, when the check ran.
    pub quality: Option<f32>,
    /// Error code, when the image was refused.
    pub error_code: Option<String>,
    /// Request id.
    pub request_id: String,
}

/// The UTC date (`yyyy-MM-dd`) of a Unix time in milliseconds (proleptic Gregorian).
pub fn utc_date(at_ms: u64) -> String {
    let days = (at_ms / 86_400_000) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// A subject found by a 1:N search, with its best template's exact cosine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// Subject id.
    pub subject: String,
    /// Exact cosine of the best of its templates.
    pub cosine: f32,
}

/// How a gallery is opened.
#[derive(Debug, Clone, Copy, Default)]
pub struct GalleryOptions {
    /// Write every local change (enrollment, deletion, decision) to the sync outbox in the
    /// same transaction as the change: on for kiosks, off for a central server.
    pub outbox: bool,
}

/// Encryption at rest of every biometric record (sled and PostgreSQL alike).
pub(crate) struct Sealer {
    cipher: Aes256Gcm,
    /// Key of the document tags ([`Sealer::document_tag`]), derived from the gallery key.
    document_key: [u8; 32],
}

impl Sealer {
    pub(crate) fn new(key: &GalleryKey) -> Sealer {
        Sealer {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key.bytes())),
            document_key: key.derive(b"faceid document tag v1"),
        }
    }

    /// HMAC-SHA256 of the document's canonical form under a key derived from the gallery
    /// key, hex: equal for the same document, useless to whoever lacks the key.
    pub(crate) fn document_tag(&self, document: &DocumentId) -> Result<String> {
        use hmac::{KeyInit, Mac};
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.document_key)
            .map_err(|_| Error::Seal)?;
        mac.update(document.canonical().as_bytes());
        Ok(mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    }

    /// AES-256-GCM with a fresh random nonce; the record's location is the associated data,
    /// so a ciphertext moved to another key does not decrypt.
    /// Fails (never stores an empty ciphertext) when the cipher refuses the record.
    pub(crate) fn seal(&self, plain: &[u8], location: &[u8]) -> Result<Vec<u8>> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: location,
                },
            )
            .map_err(|_| Error::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub(crate) fn open(&self, sealed: &[u8], location: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < 12 + 16 {
            return Err(Error::Corrupt("sealed record too short".into()));
        }
        let (nonce, body) = sealed.split_at(12);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: location,
                },
            )
            .map_err(|_| Error::Corrupt("record does not decrypt".into()))
    }
}

/// The exact re-rank of int8 index hits: each hit's exact cosine (`None` for a row gone
/// meanwhile), the best per subject, best first, at most `max_subjects`.
pub(crate) fn rerank(
    hits: Vec<crate::index::RowHit>,
    max_subjects: usize,
    mut cosine: impl FnMut(u64) -> Result<Option<f32>>,
) -> Result<Vec<Candidate>> {
    let mut best: Vec<Candidate> = Vec::new();
    for hit in hits {
        let Some(cosine) = cosine(hit.tag)? else {
            continue;
        };
        match best.iter_mut().find(|c| *c.subject == *hit.subject) {
            Some(c) => c.cosine = c.cosine.max(cosine),
            None => best.push(Candidate {
                subject: hit.subject.to_string(),
                cosine,
            }),
        }
    }
    best.sort_by(|a, b| b.cosine.total_cmp(&a.cosine));
    best.truncate(max_subjects);
    Ok(best)
}

/// The gallery. `Send + Sync`; share it behind an `Arc`.
pub struct Gallery {
    pub(crate) db: sled::Db,
    pub(crate) subjects: sled::Tree,
    pub(crate) templates: sled::Tree,
    pub(crate) images: sled::Tree,
    pub(crate) audit: sled::Tree,
    pub(crate) meta: sled::Tree,
    pub(crate) outbox: sled::Tree,
    pub(crate) changes: sled::Tree,
    pub(crate) applied: sled::Tree,
    pub(crate) conflicts: sled::Tree,
    bi: sled::Tree,
    sealer: Sealer,
    pub(crate) index: RwLock<QuantizedIndex>,
    search_threads: usize,
    pub(crate) options: GalleryOptions,
}

impl std::fmt::Debug for Gallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gallery({} subjects)", self.subjects.len())
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn abort<T>(e: Error) -> std::result::Result<T, ConflictableTransactionError<Error>> {
    Err(ConflictableTransactionError::Abort(e))
}

/// Encodes one JSON record; a value that cannot be encoded is an error, never an empty
/// record.
pub(crate) fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Encode(e.to_string()))
}

/// [`encode`] inside a transaction, aborting it on failure.
pub(crate) fn tx_encode<T: serde::Serialize + ?Sized>(value: &T) -> TxResult<Vec<u8>> {
    encode(value).or_else(abort)
}

/// Decodes one JSON record.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt(e.to_string()))
}

/// Decodes every JSON record of a tree, in key order.
pub(crate) fn read_all<T: serde::de::DeserializeOwned>(tree: &sled::Tree) -> Result<Vec<T>> {
    tree.iter().map(|entry| decode(&entry?.1)).collect()
}

/// Checks a subject id: 1-128 bytes, no control characters.
pub fn validate_subject_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_SUBJECT_ID_BYTES || id.chars().any(char::is_control) {
        return Err(Error::InvalidSubjectId(format!(
            "must be 1-{MAX_SUBJECT_ID_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

/// Result of a step inside a transaction.
pub(crate) type TxResult<T> = std::result::Result<T, ConflictableTransactionError<Error>>;

/// Every tree of a change, inside one transaction: a change and everything it implies
/// (audit event, change-feed row, outbox event, applied marker) commit together or not at
/// all.
#[derive(Clone, Copy)]
pub(crate) struct Tx<'a> {
    pub(crate) gallery: &'a Gallery,
    pub(crate) subjects: &'a TransactionalTree,
    pub(crate) templates: &'a TransactionalTree,
    pub(crate) images: &'a TransactionalTree,
    pub(crate) audit: &'a TransactionalTree,
    pub(crate) meta: &'a TransactionalTree,
    pub(crate) outbox: &'a TransactionalTree,
    pub(crate) changes: &'a TransactionalTree,
    pub(crate) applied: &'a TransactionalTree,
    pub(crate) conflicts: &'a TransactionalTree,
}

/// Reads a JSON value inside a transaction, aborting on corruption.
pub(crate) fn tx_decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> TxResult<T> {
    serde_json::from_slice(bytes).or_else(|e| abort(Error::Corrupt(e.to_string())))
}

impl Tx<'_> {
    /// Takes the next number of a counter kept in `meta`.
    fn next(&self, counter: &[u8]) -> TxResult<u64> {
        let current = match self.meta.get(counter)? {
            Some(v) => tx_decode::<u64>(&v)?,
            None => 0,
        };
        let next = current + 1;
        self.meta.insert(counter, tx_encode(&next)?)?;
        Ok(next)
    }

    /// Appends an audit event (the chain step of [`policy::audit`]).
    pub(crate) fn audit(
        &self,
        action: &str,
        subject: Option<&str>,
        outcome: &str,
        ctx: &AuditContext,
    ) -> TxResult<AuditEvent> {
        let mut tx = *self;
        lower(policy::audit(&mut tx, action, subject, outcome, ctx))
    }

    /// Appends a row to the change feed that sync pulls read (no biometric data: the
    /// templates are read from their tree when a pull serves the row).
    pub(crate) fn change(
        &self,
        kind: ChangeKind,
        subject: Option<&str>,
        origin: &str,
    ) -> TxResult<()> {
        let seq = self.next(META_CHANGE_HEAD)?;
        let change = Change {
            seq,
            kind,
            subject: subject.map(str::to_string),
            origin: origin.to_string(),
        };
        self.changes
            .insert(&seq.to_be_bytes(), tx_encode(&change)?)?;
        Ok(())
    }

    /// Queues a sync event, sealed, when the gallery keeps an outbox; an enrollment is
    /// also marked pending until the server has answered it.
    pub(crate) fn outbox(&self, event: &SyncEvent) -> TxResult<()> {
        if !self.gallery.options.outbox {
            return Ok(());
        }
        if matches!(event.body, crate::sync::EventBody::Enroll { .. }) {
            self.gallery.mark_pending(self, &event.id)?;
        }
        let seq = self.next(META_OUTBOX_HEAD)?;
        let json = tx_encode(event)?;
        let sealed = self
            .gallery
            .seal(&json, &outbox_location(seq))
            .or_else(abort)?;
        self.outbox.insert(&seq.to_be_bytes(), sealed)?;
        Ok(())
    }

    /// Writes a subject record, its sealed templates and its optional image.
    pub(crate) fn put_subject(
        &self,
        subject: &Subject,
        templates: &[Template],
        image: Option<&[u8]>,
    ) -> TxResult<()> {
        for (tag, template) in subject.template_tags.iter().zip(templates) {
            let sealed = self
                .gallery
                .seal(&template.to_bytes(), &Gallery::template_location(*tag))
                .or_else(abort)?;
            self.templates.insert(&tag.to_be_bytes(), sealed)?;
        }
        if let Some(image) = image {
            let sealed = self
                .gallery
                .seal(image, &Gallery::image_location(&subject.id))
                .or_else(abort)?;
            self.images.insert(subject.id.as_bytes(), sealed)?;
        }
        let record = tx_encode(subject)?;
        self.subjects.insert(subject.id.as_bytes(), record)?;
        if let Some(tag) = &subject.document_tag {
            self.meta.insert(document_key(tag), subject.id.as_bytes())?;
        }
        Ok(())
    }

    /// The subject record with `id`, if any.
    pub(crate) fn subject(&self, id: &str) -> TxResult<Option<Subject>> {
        self.subjects
            .get(id.as_bytes())?
            .map(|v| tx_decode(&v))
            .transpose()
    }

    /// Removes a subject's record, templates and image; returns the record.
    pub(crate) fn remove_subject(&self, id: &str) -> TxResult<Option<Subject>> {
        let Some(record) = self.subjects.remove(id.as_bytes())? else {
            return Ok(None);
        };
        let subject: Subject = tx_decode(&record)?;
        for tag in &subject.template_tags {
            self.templates.remove(&tag.to_be_bytes())?;
        }
        self.images.remove(id.as_bytes())?;
        if let Some(tag) = &subject.document_tag {
            self.meta.remove(document_key(tag))?;
        }
        Ok(Some(subject))
    }
}

/// Prefix of the `meta` rows mapping a document tag to its subject's id.
const DOCUMENT_PREFIX: &[u8] = b"document/";

/// The `meta` row of a document tag.
fn document_key(tag: &str) -> Vec<u8> {
    [DOCUMENT_PREFIX, tag.as_bytes()].concat()
}

/// Opens the sled database in `dir`. sled releases its lock file only when its flusher
/// thread has seen the last handle go, a moment after the drop: a gallery reopened at once
/// (a worker restarted, a command run right after another) waits for it, up to three
/// seconds, instead of failing. A gallery held open elsewhere still fails after that.
fn open_db(dir: &std::path::Path) -> Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        match sled::Config::new().path(dir).open() {
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => return Ok(opened?),
        }
    }
}

impl Gallery {
    /// Opens (or creates) the gallery in `dir` with `key`, without an outbox. A key that did
    /// not create the gallery is `WrongKey` here, not garbage later.
    pub fn open(dir: &std::path::Path, key: &GalleryKey) -> Result<Gallery> {
        Gallery::open_with(dir, key, GalleryOptions::default())
    }

    /// Opens (or creates) the gallery in `dir` with `key` and `options`.
    pub fn open_with(
        dir: &std::path::Path,
        key: &GalleryKey,
        options: GalleryOptions,
    ) -> Result<Gallery> {
        let db = open_db(dir)?;
        let gallery = Gallery {
            subjects: db.open_tree("subjects")?,
            templates: db.open_tree("templates")?,
            images: db.open_tree("images")?,
            audit: db.open_tree("audit")?,
            meta: db.open_tree("meta")?,
            outbox: db.open_tree("outbox")?,
            changes: db.open_tree("changes")?,
            applied: db.open_tree("applied")?,
            conflicts: db.open_tree("conflicts")?,
            bi: db.open_tree("bi")?,
            db,
            sealer: Sealer::new(key),
            index: RwLock::new(QuantizedIndex::new(faceid_core::template::TEMPLATE_DIM)),
            search_threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            options,
        };
        match gallery.meta.get(META_KEY_CHECK)? {
            Some(sealed) => {
                let plain = gallery
                    .open_sealed(&sealed, META_KEY_CHECK)
                    .map_err(|_| Error::WrongKey)?;
                if plain != KEY_CHECK {
                    return Err(Error::WrongKey);
                }
            }
            None => {
                let sealed = gallery.seal(KEY_CHECK, META_KEY_CHECK)?;
                gallery.meta.insert(META_KEY_CHECK, sealed)?;
                gallery.db.flush()?;
            }
        }
        gallery.rebuild_index()?;
        Ok(gallery)
    }

    pub(crate) fn seal(&self, plain: &[u8], location: &[u8]) -> Result<Vec<u8>> {
        self.sealer.seal(plain, location)
    }

    pub(crate) fn open_sealed(&self, sealed: &[u8], location: &[u8]) -> Result<Vec<u8>> {
        self.sealer.open(sealed, location)
    }

    /// Runs `change` in one transaction over every tree, then flushes to disk before
    /// returning: what returns `Ok` is durable.
    pub(crate) fn write<T>(&self, change: impl Fn(&Tx) -> TxResult<T>) -> Result<T> {
        let out = (
            &self.subjects,
            &self.templates,
            &self.images,
            &self.audit,
            &self.meta,
            &self.outbox,
            &self.changes,
            &self.applied,
            &self.conflicts,
        )
            .transaction(
                |(
                    subjects,
                    templates,
                    images,
                    audit,
                    meta,
                    outbox,
                    changes,
                    applied,
                    conflicts,
                )| {
                    change(&Tx {
                        gallery: self,
                        subjects,
                        templates,
                        images,
                        audit,
                        meta,
                        outbox,
                        changes,
                        applied,
                        conflicts,
                    })
                },
            )?;
        self.db.flush()?;
        Ok(out)
    }

    pub(crate) fn template_location(tag: u64) -> Vec<u8> {
        let mut loc = b"templates/".to_vec();
        loc.extend_from_slice(&tag.to_be_bytes());
        loc
    }

    pub(crate) fn image_location(id: &str) -> Vec<u8> {
        let mut loc = b"images/".to_vec();
        loc.extend_from_slice(id.as_bytes());
        loc
    }

    fn rebuild_index(&self) -> Result<()> {
        let mut index = QuantizedIndex::new(faceid_core::template::TEMPLATE_DIM);
        for entry in self.subjects.iter() {
            let (_, value) = entry?;
            let subject: Subject =
                serde_json::from_slice(&value).map_err(|e| Error::Corrupt(e.to_string()))?;
            let name: Arc<str> = Arc::from(subject.id.as_str());
            for &tag in &subject.template_tags {
                let template = self.template(tag)?;
                index.add(tag, name.clone(), template.vector());
            }
        }
        *self.index.write().unwrap_or_else(PoisonError::into_inner) = index;
        Ok(())
    }

    pub(crate) fn template(&self, tag: u64) -> Result<Template> {
        let sealed = self
            .templates
            .get(tag.to_be_bytes())?
            .ok_or_else(|| Error::Corrupt(format!("template {tag} missing")))?;
        let bytes = self.open_sealed(&sealed, &Self::template_location(tag))?;
        Ok(Template::from_bytes(&bytes)?)
    }

    /// Adds a stored subject's templates to the in-memory index (after its commit).
    pub(crate) fn index_add(&self, subject: &Subject, templates: &[Template]) {
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        let name: Arc<str> = Arc::from(subject.id.as_str());
        for (tag, template) in subject.template_tags.iter().zip(templates) {
            index.add(*tag, name.clone(), template.vector());
        }
    }

    /// Removes a subject's rows from the in-memory index (after its commit).
    pub(crate) fn index_remove(&self, id: &str) {
        self.index
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove_subject(id);
    }
}

/// Turns the outcome of a sled transaction step into the gallery's error (a conflict
/// becomes [`Error::Retry`], so the transaction runs again).
pub(crate) fn lift<T>(step: TxResult<T>) -> Result<T> {
    step.map_err(|e| match e {
        ConflictableTransactionError::Abort(e) => e,
        ConflictableTransactionError::Conflict => Error::Retry,
        ConflictableTransactionError::Storage(e) => e.into(),
        #[allow(unreachable_patterns)]
        _ => Error::Retry,
    })
}

/// The inverse of [`lift`], for the rules run inside a sled transaction.
pub(crate) fn lower<T>(step: Result<T>) -> TxResult<T> {
    step.map_err(|e| match e {
        Error::Retry => ConflictableTransactionError::Conflict,
        e => ConflictableTransactionError::Abort(e),
    })
}

impl GalleryTx for Tx<'_> {
    fn subject(&mut self, id: &str) -> Result<Option<Subject>> {
        lift(Tx::subject(self, id))
    }
    fn put_subject(
        &mut self,
        subject: &Subject,
        templates: &[Template],
        image: Option<&[u8]>,
    ) -> Result<()> {
        lift(Tx::put_subject(self, subject, templates, image))
    }
    fn remove_subject(&mut self, id: &str) -> Result<Option<Subject>> {
        lift(Tx::remove_subject(self, id))
    }
    fn document_holder(&mut self, tag: &str) -> Result<Option<String>> {
        lift(match self.meta.get(document_key(tag)) {
            Ok(Some(id)) => Ok(Some(String::from_utf8_lossy(&id).into_owned())),
            Ok(None) => Ok(None),
            Err(e) => Err(e.into()),
        })
    }
    fn audit_head(&mut self) -> Result<(u64, String)> {
        lift(match self.meta.get(META_AUDIT_HEAD) {
            Ok(Some(head)) => tx_decode::<(u64, String)>(&head),
            Ok(None) => Ok((0, GENESIS_HASH.to_string())),
            Err(e) => Err(e.into()),
        })
    }
    fn append_audit(&mut self, event: &AuditEvent) -> Result<()> {
        lift((|| {
            self.audit
                .insert(&event.seq.to_be_bytes(), tx_encode(event)?)?;
            self.meta
                .insert(META_AUDIT_HEAD, tx_encode(&(event.seq, &event.hash))?)?;
            Ok(())
        })())
    }
    fn append_change(
        &mut self,
        kind: ChangeKind,
        subject: Option<&str>,
        origin: &str,
    ) -> Result<()> {
        lift(self.change(kind, subject, origin))
    }
    fn mark_applied(&mut self, event_id: &str, outcome: &PushOutcome) -> Result<()> {
        lift((|| {
            if self.applied.get(event_id.as_bytes())?.is_some() {
                return abort(Error::AlreadyApplied(event_id.to_string()));
            }
            self.applied
                .insert(event_id.as_bytes(), tx_encode(outcome)?)?;
            Ok(())
        })())
    }
    fn queue(&mut self, event: &SyncEvent) -> Result<()> {
        lift(self.outbox(event))
    }
}

impl Backend for Gallery {
    fn write<T: Send>(&self, body: TxBody<'_, T>) -> Result<T> {
        Gallery::write(self, |tx| {
            let mut tx = *tx;
            lower(body(&mut tx))
        })
    }
    fn new_tags(&self, n: usize) -> Result<Vec<u64>> {
        (0..n)
            .map(|_| self.db.generate_id().map_err(Error::from))
            .collect()
    }
    fn document_tag(&self, document: &DocumentId) -> Result<String> {
        self.sealer.document_tag(document)
    }
    fn read_subject(&self, id: &str) -> Result<Option<Subject>> {
        self.subjects
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }
    fn read_templates(&self, subject: &Subject) -> Result<Vec<Template>> {
        subject
            .template_tags
            .iter()
            .map(|&tag| self.template(tag))
            .collect()
    }
    fn applied_outcome(&self, event_id: &str) -> Result<Option<PushOutcome>> {
        self.applied
            .get(event_id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }
    fn audit_rows(&self) -> Result<Vec<(u64, Option<AuditEvent>)>> {
        self.audit
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                let seq = key.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
                Ok((seq, serde_json::from_slice(&value).ok()))
            })
            .collect()
    }
    fn stored_audit_head(&self) -> Result<Option<(u64, String)>> {
        // A head that does not decode matches no chain.
        Ok(self
            .meta
            .get(META_AUDIT_HEAD)?
            .map(|head| serde_json::from_slice(&head).unwrap_or((u64::MAX, String::new()))))
    }
    fn clear_subjects(&self) -> Result<()> {
        self.subjects.clear()?;
        self.templates.clear()?;
        self.images.clear()?;
        for row in self.meta.scan_prefix(DOCUMENT_PREFIX) {
            self.meta.remove(row?.0)?;
        }
        self.db.flush()?;
        Ok(())
    }
    fn changes_after(&self, cursor: u64, limit: usize) -> Result<Vec<Change>> {
        let start = cursor.saturating_add(1).to_be_bytes();
        self.changes
            .range(start..)
            .take(limit)
            .map(|entry| decode(&entry?.1))
            .collect()
    }
    fn read_subjects(&self) -> Result<Vec<Subject>> {
        read_all(&self.subjects)
    }
    fn count(&self) -> usize {
        self.subjects.len()
    }
    fn read_image(&self, id: &str) -> Result<Option<Vec<u8>>> {
        self.images
            .get(id.as_bytes())?
            .map(|sealed| self.open_sealed(&sealed, &Self::image_location(id)))
            .transpose()
    }
    fn read_audit(&self) -> Result<Vec<AuditEvent>> {
        read_all(&self.audit)
    }
    fn search_index(&self, probe: &Template, max_subjects: usize) -> Result<Vec<Candidate>> {
        let hits = {
            let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
            index.search(
                probe.vector(),
                (max_subjects * 4).max(32),
                self.search_threads,
            )
        };
        rerank(hits, max_subjects, |tag| {
            Ok(Some(probe.cosine(&self.template(tag)?)?))
        })
    }
    fn index_bytes(&self) -> usize {
        self.index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .memory_bytes()
    }
    fn store_bi(&self, record: &BiRecord) -> Result<()> {
        let key = self.db.generate_id()?.to_be_bytes();
        self.bi.insert(key, encode(record)?)?;
        Ok(())
    }
    fn read_bi(&self, from: &str, to: &str) -> Result<Vec<BiRecord>> {
        let all: Vec<BiRecord> = read_all(&self.bi)?;
        Ok(all
            .into_iter()
            .filter(|r| r.date.as_str() >= from && r.date.as_str() <= to)
            .collect())
    }
    fn feed_head(&self) -> Result<u64> {
        Ok(self
            .changes
            .last()?
            .map(|(_, v)| decode::<Change>(&v).map(|c| c.seq))
            .transpose()?
            .unwrap_or(0))
    }
    fn index_add(&self, subject: &Subject, templates: &[Template]) {
        Gallery::index_add(self, subject, templates)
    }
    fn index_remove(&self, id: &str) {
        Gallery::index_remove(self, id)
    }
    fn index_clear(&self) {
        self.index
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_record_that_cannot_be_encoded_is_an_error_never_an_empty_record() {
        // JSON object keys must be strings: this map cannot be encoded.
        let unencodable: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert!(matches!(encode(&unencodable), Err(Error::Encode(_))));
        assert!(tx_encode(&unencodable).is_err());
        assert_eq!(encode(&7u64).unwrap(), b"7");
    }

    #[test]
    fn unknown_change_kinds_are_corrupt_rows_not_resets() {
        for kind in [ChangeKind::Enroll, ChangeKind::Delete, ChangeKind::Reset] {
            assert_eq!(ChangeKind::parse(kind.as_str()).unwrap(), kind);
        }
        assert!(matches!(ChangeKind::parse("purge"), Err(Error::Corrupt(_))));
    }
}
