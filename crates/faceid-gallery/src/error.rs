//! Gallery errors.

/// Everything the gallery can refuse or fail at. Messages carry ids, never biometric bytes
/// or key material.
#[allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("subject {0:?} already exists")]
    DuplicateSubject(String),
    #[error("no subject {0:?}")]
    UnknownSubject(String),
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
    #[error("database: {0}")]
    Database(String),
    #[error("storage: {0}")]
    Storage(#[from] sled::Error),
    #[error(transparent)]
    Engine(#[from] faceid_core::Error),
}

impl From<sled::transaction::TransactionError<Error>> for Error {
    fn from(e: sled::transaction::TransactionError<Error>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => Error::Storage(e),
        }
    }
}

/// Result alias for the gallery.
pub type Result<T, E = Error> = std::result::Result<T, E>;
