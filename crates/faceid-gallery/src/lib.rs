//! # faceid-gallery: where enrolled people live
//!
//! An embedded sled store of subjects and their templates, encrypted at rest with
//! AES-256-GCM under a key kept away from the data, with a hash-chained append-only audit
//! log and an in-memory int8 1:N index re-ranked exactly. Writes are acknowledged only once
//! durable; a crash leaves no half-written subject.
//!
//! The gallery stores and searches; it never decides. Turning a cosine into "match" is the
//! engine's job (`faceid_core::decision`), so every shell applies the same thresholds.
#![deny(missing_docs)]

pub mod error;
pub mod gallery;
pub mod index;
pub mod key;
mod policy;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod store;
pub mod sync;

pub use crate::error::{Error, ErrorKind, Result};
pub use crate::gallery::{
    AuditContext, AuditEvent, AuditVerification, BiRecord, Candidate, DocumentId, Gallery,
    GalleryOptions, NewSubject, Subject,
};
pub use crate::key::GalleryKey;
pub use crate::store::{
    AuditLog, BiStore, GalleryStore, IdentityStore, KioskGallery, Search, Subjects, SyncKiosk,
    SyncServer,
};
pub use crate::sync::{
    ChangePage, Conflict, EventBody, OutboxEntry, PulledChange, PushOutcome, RemoteSubject,
    Resolution, SyncEvent, SyncStatus, SyncStep,
};

/// The role traits, for callers that use a concrete gallery's methods:
/// `use faceid_gallery::prelude::*;`.
pub mod prelude {
    pub use crate::store::{
        AuditLog, BiStore, GalleryStore, IdentityStore, KioskGallery, Search, Subjects, SyncKiosk,
        SyncServer,
    };
}
