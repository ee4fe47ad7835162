//! The gallery contract, one suite run on both backends: sled (the default) and PostgreSQL
//! (a throwaway cluster on loopback). Whatever the server does through `GalleryStore` must
//! mean the same on either: enroll, duplicate and invalid ids, 1:N search, erasure, reset,
//! the audit chain, exactly-once push, conflicts and same-person adoption, pull by cursor.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use faceid_gallery::prelude::*;
use faceid_gallery::{
    DocumentId, Error, ErrorKind, EventBody, Gallery, GalleryKey, GalleryOptions, GalleryStore,
    NewSubject, PulledChange, PushOutcome, SyncEvent,
};
use support::{ctx, new, same_person, template};

/// A kiosk's enrollment of `id` with `template`, as the event it pushes.
fn pushed_enrollment(id: &str, axis: usize) -> SyncEvent {
    let dir = tempfile::tempdir().unwrap();
    let kiosk = Gallery::open_with(
        dir.path(),
        &GalleryKey::generate(),
        GalleryOptions { outbox: true },
    )
    .unwrap();
    kiosk
        .enroll(&new(id), &[template(axis)], None, &ctx())
        .unwrap();
    let mut batch = kiosk.outbox_batch(10).unwrap();
    assert_eq!(batch.len(), 1);
    let event = batch.remove(0).event;
    assert!(matches!(event.body, EventBody::Enroll { .. }));
    event
}

fn contract(store: &dyn GalleryStore) {
    // Enroll; the same id again and a bad id are refused and change nothing.
    assert!(store.is_empty());
    let subject = store
        .enroll(&new("alice"), &[template(1)], None, &ctx())
        .unwrap();
    assert_eq!(subject.id, "alice");
    assert!(matches!(
        store.enroll(&new("alice"), &[template(2)], None, &ctx()),
        Err(Error::DuplicateSubject(_))
    ));
    assert!(matches!(
        store.enroll(&new(""), &[template(2)], None, &ctx()),
        Err(Error::InvalidSubjectId(_))
    ));
    assert_eq!(store.len(), 1);
    assert_eq!(store.templates("alice").unwrap(), vec![template(1)]);
    assert!(matches!(
        store.templates("nobody"),
        Err(Error::UnknownSubject(_))
    ));

    // 1:N: candidates with exact cosines, best first.
    store
        .enroll(&new("bob"), &[template(2)], None, &ctx())
        .unwrap();
    let found = store.search(&template(1), 5).unwrap();
    assert_eq!(found[0].subject, "alice");
    assert!(found[0].cosine > 0.99, "{found:?}");

    // A decision that changes no data is audited; the chain holds.
    store
        .record("verify", Some("alice"), "accepted", &ctx())
        .unwrap();
    let audit = store.audit().unwrap();
    assert_eq!(
        audit.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["enroll", "enroll", "verify"]
    );
    let chain = store.verify_audit().unwrap();
    assert!(chain.valid && chain.events == 3, "{chain:?}");

    // Exactly-once push: a replayed event gets the same answer and applies once.
    let carol = pushed_enrollment("carol", 3);
    for _ in 0..3 {
        assert_eq!(
            store.apply_pushed("kiosk-1", &carol, &same_person).unwrap(),
            PushOutcome::Applied
        );
    }
    assert_eq!(store.len(), 3);
    let enrolls = |store: &dyn GalleryStore| {
        store
            .audit()
            .unwrap()
            .iter()
            .filter(|e| e.action == "enroll")
            .count()
    };
    assert_eq!(enrolls(store), 3);

    // Another kiosk enrolls alice: the same person is adopted, a different one conflicts.
    let same = pushed_enrollment("alice", 1);
    assert_eq!(
        store.apply_pushed("kiosk-2", &same, &same_person).unwrap(),
        PushOutcome::AlreadyEnrolled
    );
    let other = pushed_enrollment("alice", 4);
    assert!(matches!(
        store.apply_pushed("kiosk-2", &other, &same_person).unwrap(),
        PushOutcome::Conflict { .. }
    ));
    assert_eq!(store.templates("alice").unwrap(), vec![template(1)]);

    // Pull by cursor: every enrollment, in feed order, then nothing past the head.
    let head = store.change_head().unwrap();
    let page = store.changes_since(0, 100).unwrap();
    let enrolled: Vec<&str> = page
        .changes
        .iter()
        .filter_map(|c| match c {
            PulledChange::Enroll { remote, .. } => Some(remote.subject.id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(enrolled, ["alice", "bob", "carol"]);
    assert_eq!(page.next_cursor, head);
    assert!(!page.more);
    let first = store.changes_since(0, 1).unwrap();
    assert!(first.more && first.next_cursor < head);
    assert!(store.changes_since(head, 100).unwrap().changes.is_empty());

    // Erasure: gone from reads and search, once.
    assert!(store.delete("alice", &ctx()).unwrap());
    assert!(!store.delete("alice", &ctx()).unwrap());
    assert!(store.subject("alice").unwrap().is_none());
    assert!(
        store
            .search(&template(1), 5)
            .unwrap()
            .iter()
            .all(|c| c.subject != "alice")
    );

    // Reset: nothing left, the chain still valid and longer.
    store.reset(&ctx()).unwrap();
    assert!(store.is_empty());
    assert!(store.search(&template(2), 5).unwrap().is_empty());
    let chain = store.verify_audit().unwrap();
    assert!(chain.valid, "{chain:?}");
    assert_eq!(store.audit().unwrap().last().unwrap().action, "reset");
}

/// Writers at once: `stores` are handles on one gallery (one sled gallery shared by threads,
/// or several PostgreSQL processes). The audit chain stays one valid chain, every
/// enrollment lands once, and one pushed event raced from every handle applies once.
fn concurrent(stores: &[&dyn GalleryStore]) {
    const EACH: usize = 4;
    let before = stores[0].audit().unwrap().len();
    std::thread::scope(|scope| {
        for (w, store) in stores.iter().enumerate() {
            scope.spawn(move || {
                for i in 0..EACH {
                    let id = format!("writer{w}-{i}");
                    store
                        .enroll(&new(&id), &[template(10 + i)], None, &ctx())
                        .unwrap();
                    store
                        .record("verify", Some(&id), "accepted", &ctx())
                        .unwrap();
                }
            });
        }
    });
    let dave = pushed_enrollment("dave", 30);
    let outcomes: Vec<PushOutcome> = std::thread::scope(|scope| {
        let racers: Vec<_> = stores
            .iter()
            .flat_map(|store| [store, store])
            .map(|store| {
                let dave = &dave;
                scope.spawn(move || store.apply_pushed("kiosk-9", dave, &same_person).unwrap())
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert!(
        outcomes.iter().all(|o| *o == PushOutcome::Applied),
        "{outcomes:?}"
    );

    let store = stores[0];
    let audit = store.audit().unwrap();
    let writes = stores.len() * EACH;
    assert_eq!(
        audit.len() - before,
        2 * writes + 1,
        "one event per write, one per push"
    );
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.action == "enroll" && e.subject.as_deref() == Some("dave"))
            .count(),
        1
    );
    let chain = store.verify_audit().unwrap();
    assert!(chain.valid, "{chain:?}");
    let page = store.changes_since(0, 1000).unwrap();
    let daves = page
        .changes
        .iter()
        .filter(|c| matches!(c, PulledChange::Enroll { remote, .. } if remote.subject.id == "dave"))
        .count();
    assert_eq!(daves, 1);
    assert_eq!(store.subjects().unwrap().len(), writes + 1);
}

/// Pushed decisions raced from several threads at once, many rounds: each event id is
/// audited once, whichever racer wins (a sled transaction that finds the id already applied
/// rolls back its audit event).
fn raced_decisions(stores: &[&dyn GalleryStore]) {
    const ROUNDS: usize = 40;
    let before = stores[0].audit().unwrap().len();
    for round in 0..ROUNDS {
        let event = SyncEvent {
            id: format!("decision-{round}"),
            at_ms: 1_700_000_000_000,
            body: EventBody::Audit {
                action: "verify".into(),
                subject: Some("alice".into()),
                outcome: "accepted".into(),
                actor: "operator".into(),
                request_id: format!("local-{round}"),
            },
        };
        let barrier = std::sync::Barrier::new(stores.len() * 2);
        std::thread::scope(|scope| {
            for store in stores.iter().flat_map(|s| [s, s]) {
                let (event, barrier) = (&event, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let outcome = store.apply_pushed("kiosk-9", event, &same_person).unwrap();
                    assert_eq!(outcome, PushOutcome::Applied);
                });
            }
        });
    }
    let audit = stores[0].audit().unwrap();
    assert_eq!(
        audit.len() - before,
        ROUNDS,
        "one audit event per pushed event"
    );
    assert!(stores[0].verify_audit().unwrap().valid);
}

#[test]
fn a_decision_pushed_by_racing_retries_is_audited_once_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = Gallery::open(dir.path(), &GalleryKey::generate()).unwrap();
    raced_decisions(&[&gallery, &gallery, &gallery]);
}

#[test]
fn errors_say_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = Gallery::open(dir.path(), &GalleryKey::generate()).unwrap();
    gallery
        .enroll(&new("a"), &[template(1)], None, &ctx())
        .unwrap();
    let kind =
        |r: faceid_gallery::Result<_>| r.map(|_: faceid_gallery::Subject| ()).unwrap_err().kind();
    assert_eq!(
        kind(gallery.enroll(&new("a"), &[template(1)], None, &ctx())),
        ErrorKind::Duplicate
    );
    assert_eq!(
        kind(gallery.enroll(&new(""), &[template(1)], None, &ctx())),
        ErrorKind::Invalid
    );
    assert_eq!(
        gallery.templates("nobody").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    drop(gallery);
    let reopened = Gallery::open(dir.path(), &GalleryKey::generate()).unwrap_err();
    assert_eq!(reopened.kind(), ErrorKind::Key);
}

#[test]
fn concurrent_writers_keep_one_chain_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = Gallery::open(dir.path(), &GalleryKey::generate()).unwrap();
    concurrent(&[&gallery, &gallery, &gallery]);
}

#[test]
fn concurrent_processes_keep_one_chain_on_postgresql() {
    let pg = faceid_e2e::postgres::Postgres::start();
    let key = GalleryKey::generate();
    let a = faceid_gallery::postgres::PgGallery::connect(&pg.url, &key).unwrap();
    let b = faceid_gallery::postgres::PgGallery::connect(&pg.url, &key).unwrap();
    concurrent(&[&a, &b, &a]);
    raced_decisions(&[&a, &b]);
    b.catch_up().unwrap();
    assert_eq!(
        b.len(),
        a.len(),
        "the other process's index follows the feed"
    );
}

/// `id` enrolling with the Moroccan document `number`, kept in clear when `keep`.
fn with_document(id: &str, number: &str, keep: bool) -> NewSubject {
    NewSubject {
        document: Some(DocumentId {
            issuing_state: "MAR".into(),
            number: number.into(),
        }),
        keep_document_number: keep,
        ..new(id)
    }
}

/// One identity document enrolls one subject: found again by its keyed hash however it
/// is written, refused for another subject (nothing written), free again once its holder
/// is erased; the number is kept in clear only when asked.
fn one_document_one_subject(store: &dyn GalleryStore) {
    let with = with_document;
    let first = store
        .enroll(
            &with("dina", "AB123456", false),
            &[template(5)],
            None,
            &ctx(),
        )
        .unwrap();
    let tag = first.document_tag.clone().unwrap();
    assert_eq!(tag.len(), 64, "HMAC-SHA256, hex");
    assert!(!tag.contains("AB123456"));
    assert_eq!(first.document_number, None, "not kept unless asked");
    assert_eq!(
        store.subject("dina").unwrap().unwrap().document_tag,
        Some(tag)
    );

    // The same document, written with fillers and in lower case, for someone else.
    let before = (store.len(), store.audit().unwrap().len());
    match store.enroll(
        &with("eve", "ab123456<<", true),
        &[template(6)],
        None,
        &ctx(),
    ) {
        Err(Error::DuplicateDocument { holder }) => assert_eq!(holder, "dina"),
        other => panic!("expected DuplicateDocument, got {other:?}"),
    }
    assert_eq!((store.len(), store.audit().unwrap().len()), before);
    assert!(store.subject("eve").unwrap().is_none());

    // Another number enrolls; kept in clear when asked.
    let other = store
        .enroll(
            &with("fred", "ZZ999999", true),
            &[template(7)],
            None,
            &ctx(),
        )
        .unwrap();
    assert_eq!(other.document_number.as_deref(), Some("MAR/ZZ999999"));

    // Once dina is erased, her document can enroll again.
    assert!(store.delete("dina", &ctx()).unwrap());
    store
        .enroll(
            &with("eve", "AB123456", false),
            &[template(6)],
            None,
            &ctx(),
        )
        .unwrap();
}

#[test]
fn the_contract_holds_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = Gallery::open(dir.path(), &GalleryKey::generate()).unwrap();
    contract(&gallery);
    let dir = tempfile::tempdir().unwrap();
    let gallery = Gallery::open(dir.path(), &GalleryKey::generate()).unwrap();
    one_document_one_subject(&gallery);
    // A reset frees every document.
    gallery.reset(&ctx()).unwrap();
    gallery
        .enroll(
            &with_document("gina", "ZZ999999", false),
            &[template(8)],
            None,
            &ctx(),
        )
        .unwrap();
}

#[test]
fn the_contract_holds_on_postgresql() {
    let pg = faceid_e2e::postgres::Postgres::start();
    let gallery =
        faceid_gallery::postgres::PgGallery::connect(&pg.url, &GalleryKey::generate()).unwrap();
    contract(&gallery);
    one_document_one_subject(&gallery);
}

#[test]
fn document_tags_depend_on_the_gallery_key() {
    let tag = |key: &GalleryKey| {
        let dir = tempfile::tempdir().unwrap();
        let gallery = Gallery::open(dir.path(), key).unwrap();
        gallery
            .enroll(
                &with_document("h", "AB123456", false),
                &[template(1)],
                None,
                &ctx(),
            )
            .unwrap()
            .document_tag
            .unwrap()
    };
    let key = GalleryKey::generate();
    assert_eq!(tag(&key), tag(&key));
    assert_ne!(tag(&key), tag(&GalleryKey::generate()));
}
