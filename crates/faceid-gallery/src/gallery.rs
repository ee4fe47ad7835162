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

const KEY_CHECK: &[u8] = b"faceid-gallery-key-check-v1";
const META_KEY_CHECK: &[u8] = b"key_check";
const META_AUDIT_HEAD: &[u8] = b"audit_head";
const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
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
    fn compute_hash(&self) -> String {
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
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let digest = Sha256::digest(&json);
        digest.iter().map(|b| format!("{b:02x}")).collect()
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

/// The gallery. `Send + Sync`; share it behind an `Arc`.
pub struct Gallery {
    db: sled::Db,
    subjects: sled::Tree,
    templates: sled::Tree,
    images: sled::Tree,
    audit: sled::Tree,
    meta: sled::Tree,
    bi: sled::Tree,
    cipher: Aes256Gcm,
    index: RwLock<QuantizedIndex>,
    search_threads: usize,
}

impl std::fmt::Debug for Gallery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gallery({} subjects)", self.subjects.len())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn abort<T>(e: Error) -> std::result::Result<T, ConflictableTransactionError<Error>> {
    Err(ConflictableTransactionError::Abort(e))
}

/// Decodes one JSON record.
fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt(e.to_string()))
}

/// Decodes every JSON record of a tree, in key order.
fn read_all<T: serde::de::DeserializeOwned>(tree: &sled::Tree) -> Result<Vec<T>> {
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

impl Gallery {
    /// Opens (or creates) the gallery in `dir` with `key`. A key that did not create the
    /// gallery is `WrongKey` here, not garbage later.
    pub fn open(dir: &std::path::Path, key: &GalleryKey) -> Result<Gallery> {
        let db = sled::Config::new().path(dir).open()?;
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key.bytes()));
        let gallery = Gallery {
            subjects: db.open_tree("subjects")?,
            templates: db.open_tree("templates")?,
            images: db.open_tree("images")?,
            audit: db.open_tree("audit")?,
            meta: db.open_tree("meta")?,
            bi: db.open_tree("bi")?,
            db,
            cipher,
            index: RwLock::new(QuantizedIndex::new(faceid_core::template::TEMPLATE_DIM)),
            search_threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
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
                let sealed = gallery.seal(KEY_CHECK, META_KEY_CHECK);
                gallery.meta.insert(META_KEY_CHECK, sealed)?;
                gallery.db.flush()?;
            }
        }
        gallery.rebuild_index()?;
        Ok(gallery)
    }

    /// AES-256-GCM with a fresh random nonce; the record's location is the associated data,
    /// so a ciphertext moved to another key does not decrypt.
    fn seal(&self, plain: &[u8], location: &[u8]) -> Vec<u8> {
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
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    fn open_sealed(&self, sealed: &[u8], location: &[u8]) -> Result<Vec<u8>> {
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

    /// The trees a subject change touches, in the order the transactions name them:
    /// subjects, templates, images, audit, meta.
    fn data_trees(
        &self,
    ) -> (
        &sled::Tree,
        &sled::Tree,
        &sled::Tree,
        &sled::Tree,
        &sled::Tree,
    ) {
        (
            &self.subjects,
            &self.templates,
            &self.images,
            &self.audit,
            &self.meta,
        )
    }

    fn template_location(tag: u64) -> Vec<u8> {
        let mut loc = b"templates/".to_vec();
        loc.extend_from_slice(&tag.to_be_bytes());
        loc
    }

    fn image_location(id: &str) -> Vec<u8> {
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

    fn template(&self, tag: u64) -> Result<Template> {
        let sealed = self
            .templates
            .get(tag.to_be_bytes())?
            .ok_or_else(|| Error::Corrupt(format!("template {tag} missing")))?;
        let bytes = self.open_sealed(&sealed, &Self::template_location(tag))?;
        Ok(Template::from_bytes(&bytes)?)
    }

    /// Appends an audit event inside a transaction (reads and moves the chain head).
    fn append_audit(
        audit: &TransactionalTree,
        meta: &TransactionalTree,
        action: &str,
        subject: Option<&str>,
        outcome: &str,
        ctx: &AuditContext,
    ) -> std::result::Result<AuditEvent, ConflictableTransactionError<Error>> {
        let (prev_seq, prev_hash) = match meta.get(META_AUDIT_HEAD)? {
            Some(head) => match serde_json::from_slice::<(u64, String)>(&head) {
                Ok(head) => head,
                Err(e) => return abort(Error::Corrupt(format!("audit head: {e}"))),
            },
            None => (0, GENESIS_HASH.to_string()),
        };
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
        event.hash = event.compute_hash();
        let json = serde_json::to_vec(&event).unwrap_or_default();
        audit.insert(&event.seq.to_be_bytes(), json)?;
        let head = serde_json::to_vec(&(event.seq, &event.hash)).unwrap_or_default();
        meta.insert(META_AUDIT_HEAD, head)?;
        Ok(event)
    }

    /// Enrolls a new subject with its templates (and, when given, an image kept encrypted).
    /// `DuplicateSubject` when the id exists; nothing is written then.
    pub fn enroll(
        &self,
        new: &NewSubject,
        templates: &[Template],
        image: Option<&[u8]>,
        ctx: &AuditContext,
    ) -> Result<Subject> {
        validate_subject_id(&new.id)?;
        if templates.is_empty() {
            return Err(Error::Corrupt(
                "an enrollment needs at least one template".into(),
            ));
        }
        let tags: Vec<u64> = templates
            .iter()
            .map(|_| self.db.generate_id())
            .collect::<std::result::Result<_, _>>()?;
        let now = now_ms();
        let subject = Subject {
            id: new.id.clone(),
            display_name: new.display_name.clone(),
            created_at_ms: now,
            updated_at_ms: now,
            source: new.source.clone(),
            template_tags: tags.clone(),
            template_models: templates.iter().map(|t| t.model_id().to_string()).collect(),
            has_image: image.is_some(),
        };
        let record = serde_json::to_vec(&subject).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.data_trees()
            .transaction(|(subjects, stored, images, audit, meta)| {
                if subjects.get(new.id.as_bytes())?.is_some() {
                    return abort(Error::DuplicateSubject(new.id.clone()));
                }
                for (tag, template) in tags.iter().zip(templates) {
                    stored.insert(
                        &tag.to_be_bytes(),
                        self.seal(&template.to_bytes(), &Self::template_location(*tag)),
                    )?;
                }
                if let Some(image) = image {
                    images.insert(
                        new.id.as_bytes(),
                        self.seal(image, &Self::image_location(&new.id)),
                    )?;
                }
                subjects.insert(new.id.as_bytes(), record.clone())?;
                Self::append_audit(audit, meta, "enroll", Some(&new.id), "ok", ctx)?;
                Ok(())
            })?;
        self.db.flush()?;
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        let name: Arc<str> = Arc::from(new.id.as_str());
        for (tag, template) in tags.iter().zip(templates) {
            index.add(*tag, name.clone(), template.vector());
        }
        Ok(subject)
    }

    /// The subject with `id`, if any.
    pub fn subject(&self, id: &str) -> Result<Option<Subject>> {
        self.subjects
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Every subject, ordered by id.
    pub fn subjects(&self) -> Result<Vec<Subject>> {
        read_all(&self.subjects)
    }

    /// Number of subjects.
    pub fn len(&self) -> usize {
        self.subjects.len()
    }

    /// Whether the gallery has no subjects.
    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
    }

    /// The decrypted templates of a subject (`UnknownSubject` when absent).
    pub fn templates(&self, id: &str) -> Result<Vec<Template>> {
        let subject = self
            .subject(id)?
            .ok_or_else(|| Error::UnknownSubject(id.to_string()))?;
        subject
            .template_tags
            .iter()
            .map(|&tag| self.template(tag))
            .collect()
    }

    /// The retained image of a subject, decrypted, if any.
    pub fn image(&self, id: &str) -> Result<Option<Vec<u8>>> {
        self.images
            .get(id.as_bytes())?
            .map(|sealed| self.open_sealed(&sealed, &Self::image_location(id)))
            .transpose()
    }

    /// Erases a subject: record, templates, image and index rows, in one transaction with
    /// its audit event. Returns whether the subject existed (an absent one is audited too).
    pub fn delete(&self, id: &str, ctx: &AuditContext) -> Result<bool> {
        let existed =
            self.data_trees()
                .transaction(|(subjects, stored, images, audit, meta)| {
                    let Some(record) = subjects.remove(id.as_bytes())? else {
                        Self::append_audit(
                            audit,
                            meta,
                            "delete",
                            Some(id),
                            "unknown_subject",
                            ctx,
                        )?;
                        return Ok(false);
                    };
                    let subject: Subject = match serde_json::from_slice(&record) {
                        Ok(s) => s,
                        Err(e) => return abort(Error::Corrupt(e.to_string())),
                    };
                    for tag in &subject.template_tags {
                        stored.remove(&tag.to_be_bytes())?;
                    }
                    images.remove(id.as_bytes())?;
                    Self::append_audit(audit, meta, "delete", Some(id), "ok", ctx)?;
                    Ok(true)
                })?;
        self.db.flush()?;
        if existed {
            self.index
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove_subject(id);
        }
        Ok(existed)
    }

    /// Removes every subject, template and image. The audit log keeps its history and
    /// records the reset first, so an interrupted reset is visible and simply re-run.
    pub fn reset(&self, ctx: &AuditContext) -> Result<()> {
        self.record("reset", None, "ok", ctx)?;
        self.subjects.clear()?;
        self.templates.clear()?;
        self.images.clear()?;
        self.db.flush()?;
        self.index
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        Ok(())
    }

    /// Appends an audit event for a decision that changes no data (verify, identify,
    /// liveness), durably.
    pub fn record(
        &self,
        action: &str,
        subject: Option<&str>,
        outcome: &str,
        ctx: &AuditContext,
    ) -> Result<AuditEvent> {
        let event = (&self.audit, &self.meta).transaction(|(audit, meta)| {
            Self::append_audit(audit, meta, action, subject, outcome, ctx)
        })?;
        self.db.flush()?;
        Ok(event)
    }

    /// The audit log, oldest first.
    pub fn audit(&self) -> Result<Vec<AuditEvent>> {
        read_all(&self.audit)
    }

    /// Recomputes every hash and link of the audit chain.
    pub fn verify_audit(&self) -> Result<AuditVerification> {
        let mut prev = GENESIS_HASH.to_string();
        let mut expected_seq = 1;
        let mut events = 0;
        for entry in self.audit.iter() {
            let (key, value) = entry?;
            events += 1;
            let event: Option<AuditEvent> = serde_json::from_slice(&value).ok();
            let ok = event.as_ref().is_some_and(|e| {
                key.as_ref() == e.seq.to_be_bytes()
                    && e.seq == expected_seq
                    && e.prev_hash == prev
                    && e.compute_hash() == e.hash
            });
            if !ok {
                return Ok(AuditVerification {
                    events,
                    valid: false,
                    first_invalid_seq: Some(expected_seq),
                });
            }
            if let Some(e) = event {
                prev = e.hash;
            }
            expected_seq += 1;
        }
        let head_ok = match self.meta.get(META_AUDIT_HEAD)? {
            Some(head) => serde_json::from_slice::<(u64, String)>(&head)
                .is_ok_and(|(seq, hash)| seq == events && hash == prev),
            None => events == 0,
        };
        Ok(AuditVerification {
            events,
            valid: head_ok,
            first_invalid_seq: (!head_ok).then_some(expected_seq),
        })
    }

    /// The subjects whose templates are most similar to `probe`, best first, with exact
    /// cosines: the int8 index proposes `4 * max_subjects` (at least 32) rows, the float
    /// templates re-rank them. The caller turns cosines into a decision with the engine's
    /// calibration and the gallery-size threshold.
    pub fn search(&self, probe: &Template, max_subjects: usize) -> Result<Vec<Candidate>> {
        let hits = {
            let index = self.index.read().unwrap_or_else(PoisonError::into_inner);
            index.search(
                probe.vector(),
                (max_subjects * 4).max(32),
                self.search_threads,
            )
        };
        let mut best: Vec<Candidate> = Vec::new();
        for hit in hits {
            let template = self.template(hit.tag)?;
            let cosine = probe.cosine(&template)?;
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

    /// Stores a BI record (fields filled by the caller; `at_ms`/`date` set here).
    pub fn record_bi(&self, mut record: BiRecord) -> Result<BiRecord> {
        record.at_ms = now_ms();
        record.date = utc_date(record.at_ms);
        let key = self.db.generate_id()?.to_be_bytes();
        let json = serde_json::to_vec(&record).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.bi.insert(key, json)?;
        Ok(record)
    }

    /// BI records whose date lies in `[from, to]` (inclusive, `yyyy-MM-dd`; open ends when
    /// `None`), oldest first.
    pub fn bi_records(&self, from: Option<&str>, to: Option<&str>) -> Result<Vec<BiRecord>> {
        let all: Vec<BiRecord> = read_all(&self.bi)?;
        Ok(all
            .into_iter()
            .filter(|r| {
                from.is_none_or(|f| r.date.as_str() >= f) && to.is_none_or(|t| r.date.as_str() <= t)
            })
            .collect())
    }

    /// Bytes the in-memory index holds.
    pub fn index_memory_bytes(&self) -> usize {
        self.index
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .memory_bytes()
    }
}
