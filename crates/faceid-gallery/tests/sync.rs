//! The sync rules of the sled gallery, both sides in one process: exactly-once apply,
//! conflicts, stale erasures, and pulls that never overwrite what waits to be pushed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use faceid_gallery::prelude::*;
use faceid_gallery::{EventBody, Gallery, GalleryKey, GalleryOptions, PushOutcome, Resolution};
use support::{ctx, new, same_person, template};

struct Pair {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    server: Gallery,
    kiosk: Gallery,
}

fn pair() -> Pair {
    let (s, k) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = Gallery::open(s.path(), &GalleryKey::generate()).unwrap();
    let kiosk = Gallery::open_with(
        k.path(),
        &GalleryKey::generate(),
        GalleryOptions { outbox: true },
    )
    .unwrap();
    Pair {
        _dirs: (s, k),
        server,
        kiosk,
    }
}

#[test]
fn a_pushed_event_applies_once_and_a_repeat_gets_the_same_answer() {
    let p = pair();
    p.kiosk
        .enroll(&new("x"), &[template(1)], None, &ctx())
        .unwrap();
    p.kiosk
        .record("verify", Some("x"), "approved", &ctx())
        .unwrap();
    assert!(
        p.server.outbox_batch(10).unwrap().is_empty(),
        "a server has no outbox"
    );
    let batch = p.kiosk.outbox_batch(10).unwrap();
    assert_eq!(batch.len(), 2);
    assert!(matches!(batch[0].event.body, EventBody::Enroll { .. }));
    for _ in 0..3 {
        for entry in &batch {
            let outcome = p
                .server
                .apply_pushed("k1", &entry.event, &same_person)
                .unwrap();
            assert_eq!(outcome, PushOutcome::Applied);
        }
    }
    assert_eq!(p.server.len(), 1);
    let audit = p.server.audit().unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "enroll").count(), 1);
    assert_eq!(audit.iter().filter(|e| e.action == "verify").count(), 1);
    let held = p.server.subject("x").unwrap().unwrap();
    assert_eq!(held.origin, batch[0].event.id);
    assert_eq!(held.source.as_deref(), Some("k1"));
    for entry in &batch {
        p.kiosk
            .settle(entry, &PushOutcome::Applied, None, &ctx())
            .unwrap();
    }
    assert_eq!(p.kiosk.pending(), 0);
    // The server's feed gives the kiosk back its own enrollment: nothing changes.
    let page = p.server.changes_since(0, 100).unwrap();
    assert_eq!(p.kiosk.apply_page(&page, &ctx()).unwrap(), 0);
    assert_eq!(p.kiosk.sync_cursor().unwrap(), page.next_cursor);
}

#[test]
fn an_id_held_for_another_person_is_a_conflict_the_kiosk_keeps_aside() {
    let p = pair();
    p.server
        .enroll(&new("x"), &[template(1)], None, &ctx())
        .unwrap();
    p.kiosk
        .enroll(&new("x"), &[template(2)], None, &ctx())
        .unwrap();
    let entry = p.kiosk.outbox_batch(1).unwrap().remove(0);
    let outcome = p
        .server
        .apply_pushed("k1", &entry.event, &same_person)
        .unwrap();
    let PushOutcome::Conflict { message } = &outcome else {
        panic!("{outcome:?}")
    };
    assert!(message.contains("different person"), "{message}");
    // The server kept its record.
    assert_eq!(p.server.templates("x").unwrap()[0], template(1));
    let record = p.server.remote_subject("x").unwrap();
    p.kiosk
        .settle(&entry, &outcome, record.as_ref(), &ctx())
        .unwrap();
    assert_eq!(p.kiosk.pending(), 0);
    assert_eq!(
        p.kiosk.templates("x").unwrap()[0],
        template(1),
        "server's record"
    );
    assert_eq!(p.kiosk.search(&template(1), 1).unwrap()[0].subject, "x");
    let conflicts = p.kiosk.conflicts().unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].subject.as_deref(), Some("x"));
    // The operator enrolls the refused person under a new id: queued like any enrollment.
    let again = p
        .kiosk
        .resolve_conflict(
            &conflicts[0].event_id,
            &Resolution::Reenroll { id: "x2".into() },
            &ctx(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(again.id, "x2");
    assert_eq!(p.kiosk.templates("x2").unwrap()[0], template(2));
    assert!(p.kiosk.conflicts().unwrap().is_empty());
    assert_eq!(p.kiosk.pending(), 1);
    assert!(p.kiosk.verify_audit().unwrap().valid);
}

#[test]
fn the_same_person_under_the_same_id_is_adopted_not_duplicated() {
    let p = pair();
    p.server
        .enroll(&new("x"), &[template(1)], None, &ctx())
        .unwrap();
    p.kiosk
        .enroll(&new("x"), &[template(1)], None, &ctx())
        .unwrap();
    let entry = p.kiosk.outbox_batch(1).unwrap().remove(0);
    let outcome = p
        .server
        .apply_pushed("k1", &entry.event, &same_person)
        .unwrap();
    assert_eq!(outcome, PushOutcome::AlreadyEnrolled);
    let record = p.server.remote_subject("x").unwrap().unwrap();
    p.kiosk
        .settle(&entry, &outcome, Some(&record), &ctx())
        .unwrap();
    assert_eq!(
        p.kiosk.subject("x").unwrap().unwrap().origin,
        record.subject.origin
    );
    assert!(p.kiosk.conflicts().unwrap().is_empty());
    assert_eq!(p.server.len(), 1);
}

#[test]
fn a_pull_never_overwrites_an_enrollment_waiting_to_be_pushed() {
    let p = pair();
    p.server
        .enroll(&new("x"), &[template(1)], None, &ctx())
        .unwrap();
    p.server
        .enroll(&new("y"), &[template(3)], None, &ctx())
        .unwrap();
    p.kiosk
        .enroll(&new("x"), &[template(2)], None, &ctx())
        .unwrap();
    let page = p.server.changes_since(0, 100).unwrap();
    assert_eq!(page.changes.len(), 2);
    assert_eq!(
        p.kiosk.apply_page(&page, &ctx()).unwrap(),
        1,
        "only y applies"
    );
    assert_eq!(
        p.kiosk.templates("x").unwrap()[0],
        template(2),
        "x waits for its push"
    );
    assert_eq!(p.kiosk.templates("y").unwrap()[0], template(3));
    // Replaying the page changes nothing.
    assert_eq!(p.kiosk.apply_page(&page, &ctx()).unwrap(), 0);
    assert_eq!(p.kiosk.len(), 2);
}

#[test]
fn erasures_apply_only_to_the_enrollment_they_name() {
    let p = pair();
    p.server
        .enroll(&new("x"), &[template(1)], None, &ctx())
        .unwrap();
    let page = p.server.changes_since(0, 100).unwrap();
    p.kiosk.apply_page(&page, &ctx()).unwrap();
    // Erased on the server, then re-enrolled there (another person, same id).
    p.server.delete("x", &ctx()).unwrap();
    p.server
        .enroll(&new("x"), &[template(4)], None, &ctx())
        .unwrap();
    let page = p.server.changes_since(page.next_cursor, 100).unwrap();
    assert_eq!(page.changes.len(), 2);
    p.kiosk.apply_page(&page, &ctx()).unwrap();
    assert_eq!(p.kiosk.templates("x").unwrap()[0], template(4));
    assert_eq!(
        p.kiosk
            .search(&template(1), 1)
            .unwrap()
            .first()
            .map(|c| c.cosine < 0.5),
        Some(true)
    );
    // A kiosk erasure of an enrollment the server no longer holds is stale there.
    let old_origin = "an-old-enrollment";
    let stale = faceid_gallery::SyncEvent {
        id: "e-stale".into(),
        at_ms: 0,
        body: EventBody::Delete {
            subject: "x".into(),
            origin: old_origin.into(),
        },
    };
    assert_eq!(
        p.server.apply_pushed("k1", &stale, &same_person).unwrap(),
        PushOutcome::Stale
    );
    assert!(p.server.subject("x").unwrap().is_some());
    // The kiosk's own erasure of the server's record erases it on the server.
    p.kiosk.delete("x", &ctx()).unwrap();
    let entry = p.kiosk.outbox_batch(1).unwrap().remove(0);
    assert_eq!(
        p.server
            .apply_pushed("k1", &entry.event, &same_person)
            .unwrap(),
        PushOutcome::Applied
    );
    assert!(p.server.subject("x").unwrap().is_none());
    assert!(p.server.verify_audit().unwrap().valid);
}

#[test]
fn a_malformed_enrollment_is_rejected_for_the_operator() {
    let p = pair();
    let bad = faceid_gallery::SyncEvent {
        id: "e-bad".into(),
        at_ms: 0,
        body: EventBody::Enroll {
            subject: "x".into(),
            display_name: None,
            templates: vec!["not base64!".into()],
        },
    };
    let outcome = p.server.apply_pushed("k1", &bad, &same_person).unwrap();
    assert!(outcome.needs_operator(), "{outcome:?}");
    assert!(p.server.is_empty());
}
