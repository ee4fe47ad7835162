//! Why a use case did not produce a verdict, classified once for every shell.

use faceid_core::ErrorClass;

/// What kind of failure: the rows of every shell's answer table (HTTP status, kiosk screen,
/// CLI exit). A refusal by a verdict (liveness, quality, no match) is not a failure: it is
/// an outcome with a [`faceid_core::Reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// The request is malformed: bad bytes, an invalid subject id.
    Input,
    /// The request exceeds a configured limit.
    TooLarge,
    /// The capture cannot be used (no face, two faces, ...): retry with guidance.
    Capture,
    /// The subject named does not exist.
    NotFound,
    /// The subject id is already enrolled.
    Conflict,
    /// The installation is broken (a model, the configuration).
    Installation,
    /// Storage or inference failed: not the caller's fault; logged, shown as out of service.
    Internal,
}

impl From<ErrorClass> for Class {
    fn from(class: ErrorClass) -> Class {
        match class {
            ErrorClass::Input => Class::Input,
            ErrorClass::TooLarge => Class::TooLarge,
            ErrorClass::Capture => Class::Capture,
            ErrorClass::Installation => Class::Installation,
            ErrorClass::Internal => Class::Internal,
        }
    }
}

/// A use case that ended without a verdict.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The engine refused the input or the capture (its code says which).
    #[error(transparent)]
    Engine(#[from] faceid_core::Error),
    /// The subject id is not acceptable (empty, too long, control characters).
    #[error("invalid subject id: {0}")]
    InvalidSubjectId(String),
    /// The subject id is already enrolled.
    #[error("subject {0:?} already exists")]
    DuplicateSubject(String),
    /// The identity document already enrolled another subject (which one is not said:
    /// the gallery's audit log and operators know).
    #[error("this identity document is already enrolled")]
    DuplicateDocument,
    /// No subject with that id.
    #[error("no subject {0:?}")]
    UnknownSubject(String),
    /// The gallery could not read, write or audit.
    #[error("storage: {0}")]
    Storage(#[source] faceid_gallery::Error),
}

impl Failure {
    /// The class of the failure.
    pub fn class(&self) -> Class {
        match self {
            Failure::Engine(e) => e.code().class().into(),
            Failure::InvalidSubjectId(_) => Class::Input,
            Failure::DuplicateSubject(_) | Failure::DuplicateDocument => Class::Conflict,
            Failure::UnknownSubject(_) => Class::NotFound,
            Failure::Storage(_) => Class::Internal,
        }
    }

    /// The stable code a shell prints: the engine's code, or `INVALID_SUBJECT_ID`,
    /// `DUPLICATE_SUBJECT`, `DUPLICATE_DOCUMENT`, `UNKNOWN_SUBJECT`, `STORAGE_ERROR`.
    pub fn code(&self) -> &'static str {
        match self {
            Failure::Engine(e) => e.code().as_str(),
            Failure::InvalidSubjectId(_) => "INVALID_SUBJECT_ID",
            Failure::DuplicateSubject(_) => "DUPLICATE_SUBJECT",
            Failure::DuplicateDocument => "DUPLICATE_DOCUMENT",
            Failure::UnknownSubject(_) => "UNKNOWN_SUBJECT",
            Failure::Storage(_) => "STORAGE_ERROR",
        }
    }
}

impl From<faceid_gallery::Error> for Failure {
    fn from(e: faceid_gallery::Error) -> Failure {
        match e {
            faceid_gallery::Error::DuplicateSubject(id) => Failure::DuplicateSubject(id),
            faceid_gallery::Error::DuplicateDocument { .. } => Failure::DuplicateDocument,
            faceid_gallery::Error::UnknownSubject(id) => Failure::UnknownSubject(id),
            faceid_gallery::Error::InvalidSubjectId(why) => Failure::InvalidSubjectId(why),
            faceid_gallery::Error::Engine(e) => Failure::Engine(e),
            e => Failure::Storage(e),
        }
    }
}
