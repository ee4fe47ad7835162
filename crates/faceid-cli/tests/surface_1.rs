//! Surface 1, ID-card enrollment and selfie authentication, on the real server over loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::*;

/// Both sides of a synthetic CNIE on one scanned page: `portrait` (a face photo) on the front
/// and a zone expiring in `expiry_year`, with a wrong composite digit when `forged`.
fn scanned_card(portrait: &[u8], expiry_year: u32, forged: bool) -> Vec<u8> {
    use faceid_e2e::document::{CardFields, Fonts, both_sides, render_back_with, render_front};
    let fonts = Fonts::load();
    let mut rng = fastrand::Rng::with_seed(u64::from(expiry_year));
    let fields = CardFields::random(&mut rng, expiry_year);
    let mut lines = fields.td1();
    if forged {
        let last = lines[1].pop().unwrap();
        lines[1].push(if last == '9' {
            '0'
        } else {
            char::from(last as u8 + 1)
        });
    }
    let portrait = image::load_from_memory(portrait).unwrap().to_rgb8();
    let front = render_front(&fonts, &fields, &portrait, &mut rng);
    let back = render_back_with(&fonts, &fields, &lines, &mut rng);
    both_sides(&front, &back)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surface_1_id_card_enrollment_and_video_authentication() {
    let Some(eval) =
        faceid_e2e::shared_eval("surface_1_id_card_enrollment_and_video_authentication")
    else {
        return;
    };
    let server = start();
    let base = server.base.clone();
    let client = faceid_e2e::http();
    let CardHolder {
        card,
        selfie,
        video: selfie_video,
        short_video,
        other_video,
        replay,
        audio_only,
        no_frames,
    } = card_holder(&eval);

    let call = |path: &str, query: &str, parts: Vec<(&str, &str, Vec<u8>)>| {
        let request = client
            .post(format!("{base}{path}{query}"))
            .multipart(form(&parts));
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let enroll = |query: &str, parts| call("/api/enroll", query, parts);
    let auth = |query: &str, parts| call("/api/authentificate", query, parts);

    // Enrollment refusals, one reason each, nothing stored.
    let cases: Vec<(&str, Parts, &str)> = vec![
        (
            "",
            vec![("cin_file", "card.jpg", card.clone())],
            "MISSING_USERNAME",
        ),
        (
            "?username=",
            vec![("cin_file", "card.jpg", card.clone())],
            "EMPTY_USERNAME",
        ),
        (
            "?username=%FF%FEbad",
            vec![("cin_file", "card.jpg", card.clone())],
            "INVALID_USERNAME",
        ),
        (
            "?username=brahim",
            vec![("other", "card.jpg", card.clone())],
            "MISSING_FILE",
        ),
        (
            "?username=brahim",
            vec![("cin_file", "card.jpg", Vec::new())],
            "EMPTY_FILE",
        ),
        (
            "?username=brahim",
            vec![("cin_file", "blank.png", blank_png())],
            "NO_FACE",
        ),
        (
            "?username=brahim",
            vec![("cin_file", "notes.jpg", b"not an image at all".to_vec())],
            "UNSUPPORTED_FORMAT",
        ),
        (
            "?username=brahim",
            vec![(
                "cin_file",
                "expired.jpg",
                scanned_card(&selfie, 2019, false),
            )],
            "DOCUMENT_EXPIRED",
        ),
        (
            "?username=brahim",
            vec![("cin_file", "forged.jpg", scanned_card(&selfie, 2031, true))],
            "MRZ_CHECK_FAILED",
        ),
    ];
    for (query, parts, reason) in cases {
        let (status, body) = enroll(query, parts).await;
        assert_eq!(
            (status, body),
            (200, surface_1_body(false, reason)),
            "enroll{query}"
        );
    }
    assert_eq!(gallery_size(&client, &base).await, 0);

    // Enrollment from the card, then the same username again.
    let (status, body) = enroll(
        "?username=brahim",
        vec![("cin_file", "card.jpeg", card.clone())],
    )
    .await;
    assert_eq!(
        (status, body),
        (200, surface_1_body(true, "ENROLLED_AS_USER"))
    );
    let (status, body) = enroll(
        "?username=brahim",
        vec![("cin_file", "card.jpeg", card.clone())],
    )
    .await;
    assert_eq!(
        (status, body),
        (200, surface_1_body(false, "DUPLICATE_USERNAME"))
    );
    assert_eq!(gallery_size(&client, &base).await, 1);

    // Authentication: the holder's selfie, as a video and as a single image.
    for (name, bytes) in [
        ("brahim.mp4", selfie_video.clone()),
        ("brahim.jpg", selfie.clone()),
    ] {
        let (status, body) = auth("?username=brahim", vec![("auth_video", name, bytes)]).await;
        assert_eq!(status, 200, "{name}");
        assert_eq!(body["Decision"], "APPROVED", "{name}: {body}");
        assert_eq!(body["DecisionReason"], "AUTHENTIFICATION_SUCCESS");
        let score = body["score"].as_f64().unwrap();
        assert!(
            (0.6..=1.0).contains(&score),
            "{name}: calibrated score {score}"
        );
        assert_eq!(body.as_object().unwrap().len(), 3);
    }

    // Every refusal has its own reason.
    let cases: Vec<(&str, Parts, &str)> = vec![
        (
            "",
            vec![("auth_video", "v.mp4", selfie_video.clone())],
            "MISSING_USERNAME",
        ),
        (
            "?username=",
            vec![("auth_video", "v.mp4", selfie_video.clone())],
            "EMPTY_USERNAME",
        ),
        (
            "?username=nobody",
            vec![("auth_video", "v.mp4", selfie_video.clone())],
            "UNKNOWN_USERNAME",
        ),
        (
            "?username=brahim",
            vec![("video", "v.mp4", selfie_video.clone())],
            "MISSING_FILE",
        ),
        (
            "?username=brahim",
            vec![("auth_video", "v.mp4", Vec::new())],
            "EMPTY_FILE",
        ),
        (
            "?username=brahim",
            vec![("auth_video", "v.mp4", short_video)],
            "VIDEO_TOO_SHORT",
        ),
        (
            "?username=brahim",
            vec![("auth_video", "v.mp4", other_video)],
            "NO_MATCH",
        ),
        (
            "?username=brahim",
            vec![("auth_video", "v.mp4", replay)],
            "LIVENESS_FAILED",
        ),
        (
            "?username=brahim",
            vec![("auth_video", "v.jpg", faceid_e2e::sample_bytes(1))],
            "MULTIPLE_FACES",
        ),
        (
            "?username=brahim",
            vec![("auth_video", "a.mp4", audio_only)],
            "UNSUPPORTED_FORMAT",
        ),
        (
            "?username=brahim",
            vec![("auth_video", "n.mp4", no_frames)],
            "NO_FRAMES",
        ),
        (
            "?username=brahim",
            vec![("auth_video", "t.mp4", b"plain text, not a video".to_vec())],
            "UNSUPPORTED_FORMAT",
        ),
    ];
    for (query, parts, reason) in cases {
        let (status, body) = auth(query, parts).await;
        assert_eq!(
            (status, body),
            (200, rejected(reason)),
            "authentificate{query} -> {reason}"
        );
    }

    // One document, one person: a card whose document already enrolled someone is refused
    // for another username, and nothing is stored.
    let document = scanned_card(&selfie, 2031, false);
    let (_, body) = enroll(
        "?username=nadia",
        vec![("cin_file", "cnie.jpg", document.clone())],
    )
    .await;
    assert_eq!(body, surface_1_body(true, "ENROLLED_AS_USER"));
    let (_, body) = enroll("?username=omar", vec![("cin_file", "cnie.jpg", document)]).await;
    assert_eq!(body, surface_1_body(false, "DUPLICATE_DOCUMENT"));
    assert_eq!(gallery_size(&client, &base).await, 2);

    // Reset erases everything.
    let r = client
        .post(format!("{base}/api/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"code":200,"msg":"DONE"})
    );
    assert_eq!(gallery_size(&client, &base).await, 0);
    let (_, body) = auth("?username=brahim", vec![("auth_video", "v.jpg", selfie)]).await;
    assert_eq!(body, rejected("UNKNOWN_USERNAME"));
}
