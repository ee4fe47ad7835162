//! Gallery errors.
//!
//! One error type for both backends: no sled or PostgreSQL type appears in it, and callers
//! decide by [`Error::kind`] (a caller's mistake, a conflict with what is stored, or a fault
//! of the installation or the storage), never by parsing messages.

/// Everything the gallery can refuse or fail at. Messages carry ids, never biometric bytes
/// or key material.
#[allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("subject {0:?} already exists")]
    DuplicateSubject(String),
    /// The identity document already enrolled `holder` (found by its keyed hash).
    #[error("the identity document is already enrolled (subject {holder:?})")]
    DuplicateDocument { holder: String },
    #[error("no subject {0:?}")]
    UnknownSubject(String),
    /// A pushed event already has an outcome: a racing push of the same event won, and
    /// this attempt changes nothing (the caller answers the stored outcome).
    #[error("pushed event {0:?} is already applied")]
    AlreadyApplied(String),
    #[error("invalid subject id: {0}")]
    InvalidSubjectId(String),
    #[error("the gallery key does not open this gallery (wrong key?)")]
    WrongKey,
    #[error("gallery key: {0}")]
    Key(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("could not encode a record: {0}")]
    Encode(String),
    #[error("could not encrypt a record")]
    Seal,
    /// The PostgreSQL backend failed (connection, statement).
    #[error("database: {0}")]
    Database(String),
    /// The sled backend failed (disk, I/O).
    #[error("storage: {0}")]
    Storage(String),
    /// A transaction met a concurrent one and is run again; never leaves the crate.
    #[doc(hidden)]
    #[error("transaction conflict (retried)")]
    Retry,
    #[error(transparent)]
    Engine(#[from] faceid_core::Error),
}

/// What kind of failure an [`Error`] is, for callers that map it to an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The subject id is taken.
    Duplicate,
    /// No such subject (or conflict).
    NotFound,
    /// The caller's input is unusable (an invalid id, no template).
    Invalid,
    /// The key does not open the gallery, or cannot be read.
    Key,
    /// A stored record does not decode or decrypt.
    Corrupt,
    /// The storage or database failed, or a record could not be written.
    Storage,
    /// The engine refused a template (a wrong model or size).
    Engine,
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::DuplicateSubject(_)
            | Error::DuplicateDocument { .. }
            | Error::AlreadyApplied(_) => ErrorKind::Duplicate,
            Error::UnknownSubject(_) => ErrorKind::NotFound,
            Error::InvalidSubjectId(_) => ErrorKind::Invalid,
            Error::WrongKey | Error::Key(_) => ErrorKind::Key,
            Error::Corrupt(_) => ErrorKind::Corrupt,
            Error::Encode(_) | Error::Seal | Error::Database(_) | Error::Storage(_) => {
                ErrorKind::Storage
            }
            Error::Retry => ErrorKind::Storage,
            Error::Engine(_) => ErrorKind::Engine,
        }
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

impl From<sled::transaction::TransactionError<Error>> for Error {
    fn from(e: sled::transaction::TransactionError<Error>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => e.into(),
        }
    }
}

/// Result alias for the gallery.
pub type Result<T, E = Error> = std::result::Result<T, E>;
