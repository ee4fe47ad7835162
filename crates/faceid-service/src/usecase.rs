//! The use cases. Each one analyses (when given frames), judges with the engine's verdict,
//! reads or writes the gallery, and audits exactly once: an accepted enrollment, an erasure
//! and a reset are audited by the gallery in the same transaction as the change; every other
//! attempt that reached the engine (a capture refusal or a verdict) by one `record`.

use std::sync::Arc;

use faceid_core::{
    CardPortrait, Engine, EnrollmentVerdict, Face, FrontCheck, Gate, Identified, Image, Liveness,
    MachineZone, Reason, SequenceAnalysis, Template, Verification,
};
use faceid_gallery::{AuditContext, DocumentId, GalleryStore, IdentityStore, NewSubject, Subject};

use crate::failure::{Class, Failure};
use crate::judge::{Judge, Selfie};

/// An enrollment to judge and store.
#[derive(Debug)]
pub struct Enrollment {
    /// Id, name and source of the new subject.
    pub subject: NewSubject,
    /// The person's face.
    pub selfie: Selfie,
    /// Checks to apply (liveness is off for enrollment from an uploaded photo).
    pub gate: Gate,
    /// The identity document's portrait template: the selfie must match it, and both are
    /// stored.
    pub card: Option<Template>,
    /// Bytes to retain (encrypted) with the subject, when configured.
    pub retained_image: Option<Vec<u8>>,
}

/// An identity document admitted for an enrollment (see [`Service::admit_card`]).
#[derive(Debug)]
pub struct AdmittedCard {
    /// The portrait found on the front, and the upright front.
    pub portrait: CardPortrait,
    /// The portrait's template.
    pub template: Template,
    /// The document named by a verified, unexpired zone; `None` for a card without one.
    pub document: Option<DocumentId>,
    /// The front's printed number and names against the back's zone (see
    /// [`Service::check_front`]); `None` when the zone was not read from a back.
    pub front: Option<FrontCheck>,
}

/// The answer to an enrollment attempt.
#[derive(Debug)]
pub struct Enrolled {
    /// The verdict (`Match` when stored).
    pub verdict: EnrollmentVerdict,
    /// The stored subject, when the verdict accepted.
    pub subject: Option<Subject>,
    /// What the engine saw (for quality reports).
    pub probe: SequenceAnalysis,
}

/// What the live view shows of one frame ([`Service::preview`]).
#[derive(Debug)]
pub struct Preview {
    /// Every face, largest first.
    pub faces: Vec<Face>,
    /// The main face: its analysis and the 1:N match rule's answer, or the capture refusal
    /// a probe would get (several faces); `None` without a face.
    pub main: Option<Result<(SequenceAnalysis, Identified<String>), faceid_core::Error>>,
    /// Subjects in the gallery.
    pub gallery_size: usize,
}

/// The use cases over one engine and one gallery. `G` is the gallery's roles: a server's
/// [`GalleryStore`] (the default) or a kiosk's [`faceid_gallery::KioskGallery`]; the use
/// cases need only [`IdentityStore`].
#[derive(Debug)]
pub struct Service<G: ?Sized = dyn GalleryStore> {
    judge: Judge,
    gallery: Arc<G>,
}

impl<G: ?Sized> Clone for Service<G> {
    fn clone(&self) -> Self {
        Service {
            judge: self.judge.clone(),
            gallery: self.gallery.clone(),
        }
    }
}

impl<G: IdentityStore + ?Sized> Service<G> {
    /// The use cases over `engine` and `gallery`.
    pub fn new(engine: Arc<Engine>, gallery: Arc<G>) -> Service<G> {
        Service {
            judge: Judge::new(engine),
            gallery,
        }
    }

    /// The gallery-free use cases (analysis, card, liveness).
    pub fn judge(&self) -> &Judge {
        &self.judge
    }

    /// The engine (for stages a shell shows but does not decide with, such as preview boxes).
    pub fn engine(&self) -> &Arc<Engine> {
        self.judge.engine()
    }

    /// The gallery.
    pub fn gallery(&self) -> &Arc<G> {
        &self.gallery
    }

    /// The gate in force (configured preset, liveness and quality required).
    pub fn gate(&self) -> Gate {
        self.judge.gate()
    }

    /// See [`Judge::analyze`].
    pub fn analyze(&self, selfie: Selfie) -> Result<SequenceAnalysis, Failure> {
        self.judge.analyze(selfie)
    }

    /// Audits an attempt at `action` that ended without a verdict (a capture refusal such
    /// as two people in frame).
    pub fn refused(
        &self,
        action: &str,
        subject: Option<&str>,
        failure: &Failure,
        ctx: &AuditContext,
    ) -> Result<(), Failure> {
        self.audit(
            action,
            subject,
            &format!("rejected:{}", failure.code()),
            ctx,
        )
    }

    /// Analyses for an attempt at `action`: a capture refusal is audited as
    /// `rejected:CODE`; an input error (bad bytes) is not an attempt and is not audited.
    fn attempt(
        &self,
        action: &str,
        subject: Option<&str>,
        selfie: Selfie,
        ctx: &AuditContext,
    ) -> Result<SequenceAnalysis, Failure> {
        self.analyze(selfie).or_else(|failure| {
            if failure.class() == Class::Capture {
                self.refused(action, subject, &failure, ctx)?;
            }
            Err(failure)
        })
    }

    /// Appends a decision to the audit log. A decision that cannot be audited fails.
    fn audit(
        &self,
        action: &str,
        subject: Option<&str>,
        outcome: &str,
        ctx: &AuditContext,
    ) -> Result<(), Failure> {
        self.gallery
            .record(action, subject, outcome, ctx)
            .map(drop)
            .map_err(Failure::from)
    }

    /// Judges an enrollment without storing it (the kiosk asks for the id and name only
    /// after the person passed). A refusal is audited; an acceptance is audited when
    /// [`Service::enroll`] stores it.
    pub fn judge_enrollment(
        &self,
        probe: &SequenceAnalysis,
        gate: Gate,
        card: Option<&Template>,
        ctx: &AuditContext,
    ) -> Result<EnrollmentVerdict, Failure> {
        let verdict = self.engine().enrollment(probe, gate, card)?;
        if !verdict.reason.accepted() {
            self.audit("enroll", None, &verdict.reason.outcome(), ctx)?;
        }
        Ok(verdict)
    }

    /// Enrolls a person: the id must be free, the selfie must pass the enrollment gate (and
    /// match the card when one is given); the selfie's template (and the card's) are stored
    /// durably with the audit event.
    pub fn enroll(&self, mut request: Enrollment, ctx: &AuditContext) -> Result<Enrolled, Failure> {
        self.document_policy(&mut request.subject);
        let id = request.subject.id.clone();
        faceid_gallery::gallery::validate_subject_id(&id)?;
        if self.gallery.subject(&id)?.is_some() {
            return Err(Failure::DuplicateSubject(id));
        }
        let probe = self.attempt("enroll", None, request.selfie, ctx)?;
        let verdict = self
            .engine()
            .enrollment(&probe, request.gate, request.card.as_ref())?;
        if !verdict.reason.accepted() {
            self.audit("enroll", None, &verdict.reason.outcome(), ctx)?;
            return Ok(Enrolled {
                verdict,
                subject: None,
                probe,
            });
        }
        let mut templates = vec![probe.best.template.clone()];
        templates.extend(request.card);
        let subject = self.store(
            &request.subject,
            &templates,
            request.retained_image.as_deref(),
            ctx,
        )?;
        Ok(Enrolled {
            verdict,
            subject: Some(subject),
            probe,
        })
    }

    /// Enrolls the holder of an identity document from a scan of it: the rule is that a
    /// portrait is found (in any orientation) and the document is admitted (see
    /// [`Service::admit_zone`]); the portrait's template is stored. No liveness: the
    /// document is a photo by nature, so such a subject must later prove liveness at each
    /// verification.
    ///
    /// The document read from the zone is enrolled with the subject (as a keyed hash, see
    /// [`NewSubject::document`]): the same document presented for another subject is
    /// refused as `DUPLICATE_DOCUMENT`, audited.
    pub fn enroll_card(
        &self,
        mut subject: NewSubject,
        card: &Image,
        ctx: &AuditContext,
    ) -> Result<(Subject, CardPortrait), Failure> {
        faceid_gallery::gallery::validate_subject_id(&subject.id)?;
        if self.gallery.subject(&subject.id)?.is_some() {
            return Err(Failure::DuplicateSubject(subject.id));
        }
        let card = self.admit_card(card, None, ctx)?;
        if card.document.is_some() {
            subject.document = card.document;
        }
        self.document_policy(&mut subject);
        let stored = self.store(&subject, &[card.template], None, ctx)?;
        Ok((stored, card.portrait))
    }

    /// The identity document presented for an enrollment: its portrait (upright) and the
    /// portrait's template, and the document named by the zone of whichever side has one
    /// (the back first, where an ID card has it; then the front, where a passport page has
    /// it), admitted by [`Service::admit_zone`]. A zone read from the back is compared with
    /// the front ([`Service::check_front`]). A refusal (no portrait, a zone failing its
    /// check digits, an expired document) is audited as `rejected:CODE`.
    pub fn admit_card(
        &self,
        front: &Image,
        back: Option<&Image>,
        ctx: &AuditContext,
    ) -> Result<AdmittedCard, Failure> {
        let admitted = self.card(front).and_then(|(portrait, template)| {
            let back_zone = match back {
                Some(back) => self.engine().read_zone(back)?,
                None => None,
            };
            let (document, front_check) = match back_zone {
                Some(zone) => (
                    Some(self.admit_zone(&zone)?),
                    self.check_front(&portrait, &zone, ctx)?,
                ),
                None => match self.engine().read_zone_beside(&portrait)? {
                    Some(zone) => (Some(self.admit_zone(&zone)?), None),
                    None => (None, None),
                },
            };
            Ok(AdmittedCard {
                portrait,
                template,
                document,
                front: front_check,
            })
        });
        admitted.or_else(|failure| {
            if failure.class() == Class::Capture {
                self.refused("enroll", None, &failure, ctx)?;
            }
            Err(failure)
        })
    }

    /// The card's front against the zone read from its back: the number and names printed
    /// on the front are read and compared with the zone's. A disagreement is audited as
    /// `card_front` `mismatch:FIELD+FIELD` (fields as [`FrontCheck::disagreements`] names
    /// them) and returned for the caller to show; it is never resolved either way: the
    /// front may be misread, or the back may belong to another card.
    pub fn check_front(
        &self,
        portrait: &CardPortrait,
        zone: &MachineZone,
        ctx: &AuditContext,
    ) -> Result<Option<FrontCheck>, Failure> {
        let check = self.engine().read_front(portrait, Some(zone))?.matches_zone;
        if let Some(check) = check.filter(|c| !c.consistent()) {
            let outcome = format!("mismatch:{}", check.disagreements().join("+"));
            self.audit("card_front", None, &outcome, ctx)?;
        }
        Ok(check)
    }

    /// Whether the subject's document number is kept in clear: the engine configuration's
    /// `keep_document_number`, whatever the caller asked.
    fn document_policy(&self, subject: &mut NewSubject) {
        subject.keep_document_number =
            subject.document.is_some() && self.engine().config().keep_document_number;
    }

    /// Stores `subject`, auditing a refused duplicate document.
    fn store(
        &self,
        subject: &NewSubject,
        templates: &[Template],
        image: Option<&[u8]>,
        ctx: &AuditContext,
    ) -> Result<Subject, Failure> {
        self.gallery
            .enroll(subject, templates, image, ctx)
            .or_else(|e| {
                let failure = Failure::from(e);
                if matches!(failure, Failure::DuplicateDocument) {
                    self.refused("enroll", Some(&subject.id), &failure, ctx)?;
                }
                Err(failure)
            })
    }

    /// An identity document's machine-readable zone must have valid check digits and must
    /// not have expired (the engine's rule, with today's date); the document it names is
    /// returned. A document without a zone (older cards) is admitted on its portrait alone:
    /// [`Service::admit_card`] does not call this rule for it. The kiosk calls it for the
    /// zone it read from the back of the card in its camera frames.
    pub fn admit_zone(&self, zone: &MachineZone) -> Result<DocumentId, Failure> {
        self.engine().admit_document(zone, today())?;
        Ok(DocumentId {
            issuing_state: zone.fields.issuing_state.clone(),
            number: zone.fields.document_number.clone(),
        })
    }

    /// See [`Judge::card`].
    pub fn card(&self, card: &Image) -> Result<(CardPortrait, Template), Failure> {
        self.judge.card(card)
    }

    /// See [`Judge::photo_template`].
    pub fn photo_template(&self, photo: &Image) -> Result<Template, Failure> {
        self.judge.photo_template(photo)
    }

    /// 1:1: is the person in the selfie the subject `id`? `UnknownSubject` before any
    /// analysis when the id has no templates.
    pub fn verify(
        &self,
        id: &str,
        selfie: Selfie,
        gate: Gate,
        ctx: &AuditContext,
    ) -> Result<(Verification, SequenceAnalysis), Failure> {
        let references = self.gallery.templates(id)?;
        if references.is_empty() {
            return Err(Failure::UnknownSubject(id.to_string()));
        }
        self.verify_against(Some(id), &references, selfie, gate, ctx)
    }

    /// 1:1 against templates the caller holds (a reference photo or card sent with the
    /// probe); audited under `subject` when there is one.
    pub fn verify_against(
        &self,
        subject: Option<&str>,
        references: &[Template],
        selfie: Selfie,
        gate: Gate,
        ctx: &AuditContext,
    ) -> Result<(Verification, SequenceAnalysis), Failure> {
        let probe = self.attempt("verify", subject, selfie, ctx)?;
        let verdict = self.engine().verification(&probe, references, gate)?;
        self.audit("verify", subject, &verdict.reason.outcome(), ctx)?;
        Ok((verdict, probe))
    }

    /// 1:N: who in the gallery is the person in the selfie, if anyone.
    pub fn identify(
        &self,
        selfie: Selfie,
        gate: Gate,
        ctx: &AuditContext,
    ) -> Result<(Identified<String>, SequenceAnalysis), Failure> {
        let probe = self.attempt("identify", None, selfie, ctx)?;
        let verdict = self.search(&probe, gate)?;
        let outcome = match verdict.reason {
            Reason::Match => "match".to_string(),
            Reason::NoMatch => "no_match".to_string(),
            refused => refused.outcome(),
        };
        self.audit(
            "identify",
            verdict.subject().map(String::as_str),
            &outcome,
            ctx,
        )?;
        Ok((verdict, probe))
    }

    /// The 1:N verdict without an audit event: a preview (the console's live view), not an
    /// attempt.
    pub fn search(
        &self,
        probe: &SequenceAnalysis,
        gate: Gate,
    ) -> Result<Identified<String>, Failure> {
        self.engine().identification(probe, gate, |template| {
            let candidates = self.gallery.search(template, 5)?;
            Ok::<_, Failure>((
                candidates
                    .into_iter()
                    .map(|c| (c.subject, c.cosine))
                    .collect(),
                self.gallery.len(),
            ))
        })
    }

    /// See [`Judge::liveness`].
    pub fn liveness(&self, selfie: Selfie) -> Result<(Liveness, SequenceAnalysis), Failure> {
        self.judge.liveness(selfie)
    }

    /// A camera frame as the operator's live view shows it: every face, and for the main
    /// face its one-frame analysis and the 1:N match rule alone (liveness and quality are
    /// shown, not applied). Not an attempt: nothing is audited.
    pub fn preview(&self, image: Image) -> Result<Preview, Failure> {
        let faces = self.engine().faces(&image)?;
        let gallery_size = self.gallery.len();
        if faces.is_empty() {
            return Ok(Preview {
                faces,
                main: None,
                gallery_size,
            });
        }
        let main = match self
            .engine()
            .analyze_sequence(std::slice::from_ref(&image), None)
        {
            Ok(sequence) => {
                let shown = Gate {
                    liveness: false,
                    quality: false,
                    ..self.gate()
                };
                let identified = self.search(&sequence, shown)?;
                Ok((sequence, identified))
            }
            Err(e) if e.code().is_capture_problem() => Err(e),
            Err(e) => return Err(e.into()),
        };
        Ok(Preview {
            faces,
            main: Some(main),
            gallery_size,
        })
    }

    /// Erases a subject (templates, image, index entries); whether it existed. Audited by
    /// the gallery with the erasure.
    pub fn erase(&self, id: &str, ctx: &AuditContext) -> Result<bool, Failure> {
        Ok(self.gallery.delete(id, ctx)?)
    }

    /// Removes every subject; audited with the reset.
    pub fn reset(&self, ctx: &AuditContext) -> Result<(), Failure> {
        Ok(self.gallery.reset(ctx)?)
    }
}

/// Today's date (UTC), for document expiry.
fn today() -> faceid_core::Day {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    faceid_core::Day::from_ordinal(days as i64)
}
