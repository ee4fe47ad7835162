//! Surface 4, photo-vs-video verification with sealed fields, on the real server over loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use base64::Engine as _;
use serde_json::{Value, json};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surface_4_photo_vs_video_verification_with_sealed_fields() {
    let Some(eval) =
        faceid_e2e::shared_eval("surface_4_photo_vs_video_verification_with_sealed_fields")
    else {
        return;
    };
    let server = start();
    let url = format!(
        "{}/identity/silent_image_verification/stateless",
        server.base
    );
    let client = faceid_e2e::http();
    let CardHolder {
        card,
        video,
        short_video: short,
        other_video: other,
        replay,
        no_frames,
        ..
    } = card_holder(&eval);
    let sealed_card = server.seal("encrypted_image", &card);
    let sealed_video = server.seal("encrypted_video", &video);

    let send = |fields: Vec<(&str, String)>| {
        let form = fields
            .into_iter()
            .fold(reqwest::multipart::Form::new(), |f, (k, v)| {
                f.text(k.to_string(), v)
            });
        let request = client.post(&url).multipart(form);
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let fields = |video: String, image: String, flags: &[(&'static str, &'static str)]| {
        let mut f = vec![("encrypted_video", video), ("encrypted_image", image)];
        f.extend(flags.iter().map(|(k, v)| (*k, v.to_string())));
        f
    };

    // The card holder's selfie video against the card photo (found by auto_rotate).
    let flags = [
        ("auto_rotate", "true"),
        ("check_quality", "true"),
        ("return_image", "true"),
        ("return_face_image", "true"),
        ("return_status", "true"),
    ];
    let (status, body) = send(fields(sealed_video.clone(), sealed_card.clone(), &flags)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], 1000);
    assert_eq!(body["passed"], true, "{body}");
    assert_eq!(body["liveness_status"], "ok");
    assert!(body["liveness_score"].as_f64().unwrap() >= 0.5);
    assert!(body["verification_score"].as_f64().unwrap() >= 0.6);
    assert!(body["image_timestamp"].as_u64().is_some());
    assert!(body["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    for field in ["base64_image", "base64_face_image"] {
        let jpeg = base64::engine::general_purpose::STANDARD
            .decode(body[field].as_str().unwrap())
            .unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "{field} is a JPEG");
    }
    assert_eq!(body["status"]["frames_with_face"], body["status"]["frames"]);

    // Without the flags: only the normal fields.
    let (status, body) = send(fields(
        sealed_video.clone(),
        sealed_card.clone(),
        &[("auto_rotate", "1")],
    ))
    .await;
    assert_eq!(status, 200);
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "code",
            "image_timestamp",
            "liveness_score",
            "liveness_status",
            "passed",
            "request_id",
            "verification_score"
        ]
    );

    // The same as a urlencoded form.
    let r = client
        .post(&url)
        .form(&[
            ("encrypted_video", sealed_video.as_str()),
            ("encrypted_image", sealed_card.as_str()),
            ("auto_rotate", "true"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["passed"], true);

    // Someone else, a replay, a short clip: answered, not passed.
    let (_, body) = send(fields(
        server.seal("encrypted_video", &other),
        sealed_card.clone(),
        &[("auto_rotate", "true")],
    ))
    .await;
    assert_eq!(
        (
            body["code"].clone(),
            body["passed"].clone(),
            body["liveness_status"].clone()
        ),
        (json!(1000), json!(false), json!("ok")),
        "{body}"
    );
    assert!(body["verification_score"].as_f64().unwrap() < 0.6);
    assert!(body.get("base64_image").is_none());
    let (_, body) = send(fields(
        server.seal("encrypted_video", &replay),
        sealed_card.clone(),
        &[("auto_rotate", "true"), ("return_image", "true")],
    ))
    .await;
    assert_eq!(
        (body["passed"].clone(), body["liveness_status"].clone()),
        (json!(false), json!("hack")),
        "{body}"
    );
    assert!(
        body.get("base64_image").is_none(),
        "images only when passed"
    );
    let (_, body) = send(fields(
        server.seal("encrypted_video", &short),
        sealed_card.clone(),
        &[("auto_rotate", "true")],
    ))
    .await;
    assert_eq!(
        (body["passed"].clone(), body["liveness_status"].clone()),
        (json!(false), json!("short_time")),
        "{body}"
    );

    // A real person at a webcam: the live lestari15 clip against a photo of its subject (a
    // frame of their other recording) passes (the passive network alone refused it:
    // liveness is the fused rule now); the phone replay against the same photo is a hack.
    let mut photo = Vec::new();
    faceid_e2e::ffmpeg_first_frame(&eval.join("video/spoof/lestari15_fake.mp4"))
        .write_to(
            &mut std::io::Cursor::new(&mut photo),
            image::ImageFormat::Png,
        )
        .unwrap();
    let live = std::fs::read(eval.join("video/live/lestari15_real.mp4")).unwrap();
    let sealed_photo = server.seal("encrypted_image", &photo);
    let (status, body) = send(fields(
        server.seal("encrypted_video", &live),
        sealed_photo.clone(),
        &[("auto_rotate", "true")],
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["passed"].clone(), body["liveness_status"].clone()),
        (json!(true), json!("ok")),
        "{body}"
    );
    let (_, body) = send(fields(
        server.seal("encrypted_video", &replay),
        sealed_photo,
        &[("auto_rotate", "true")],
    ))
    .await;
    assert_eq!(
        (body["passed"].clone(), body["liveness_status"].clone()),
        (json!(false), json!("hack")),
        "{body}"
    );

    // Abnormal answers.
    let abnormal = |status: u16, code: u16, message: &str| (status, code, message.to_string());
    let got = |(status, body): (u16, Value)| {
        assert!(body["request_id"].as_str().is_some(), "{body}");
        assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
        (
            status,
            body["code"].as_u64().unwrap() as u16,
            body["message"].as_str().unwrap().to_string(),
        )
    };
    let invalid = abnormal(400, 1200, "invalid argument");
    assert_eq!(
        got(send(vec![("encrypted_image", sealed_card.clone())]).await),
        invalid,
        "missing video"
    );
    assert_eq!(
        got(send(fields(String::new(), sealed_card.clone(), &[])).await),
        invalid,
        "empty video"
    );
    assert_eq!(
        got(send(fields("***".into(), sealed_card.clone(), &[])).await),
        invalid,
        "bad base64"
    );
    assert_eq!(
        got(send(fields(sealed_card.clone(), sealed_video.clone(), &[])).await),
        invalid,
        "fields swapped"
    );
    let foreign = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
    assert_eq!(
        got(send(fields(foreign, sealed_card.clone(), &[])).await),
        invalid,
        "wrong key"
    );
    assert_eq!(
        got(send(fields(
            sealed_video.clone(),
            sealed_card.clone(),
            &[("auto_rotate", "maybe")]
        ))
        .await),
        invalid,
        "bad flag"
    );
    let r = client
        .post(&url)
        .json(&json!({"encrypted_video": sealed_video}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        got((r.status().as_u16(), r.json().await.unwrap())),
        invalid,
        "JSON instead of a form"
    );
    let corrupt = abnormal(400, 2005, "invalid image type or corrupted");
    assert_eq!(
        got(send(fields(
            server.seal("encrypted_video", b"just some text"),
            sealed_card.clone(),
            &[]
        ))
        .await),
        corrupt
    );
    assert_eq!(
        got(send(fields(
            server.seal("encrypted_video", &no_frames),
            sealed_card.clone(),
            &[]
        ))
        .await),
        corrupt
    );
    assert_eq!(
        got(send(fields(
            sealed_video.clone(),
            server.seal("encrypted_image", b"GIF89a not really"),
            &[]
        ))
        .await),
        corrupt
    );
    assert_eq!(
        got(send(fields(
            sealed_video.clone(),
            server.seal("encrypted_image", &blank_png()),
            &[]
        ))
        .await),
        abnormal(400, 4000, "detection failed")
    );
    // Liveness is judged before quality: with check_quality the replay (whose best frame
    // also fails the quality gate) learns it was caught, not how to pass the gate, and
    // gets no verification score.
    let (status, body) = send(fields(
        server.seal("encrypted_video", &replay),
        sealed_card.clone(),
        &[("auto_rotate", "true"), ("check_quality", "true")],
    ))
    .await;
    assert_eq!(
        (
            status,
            body["code"].clone(),
            body["liveness_status"].clone(),
            body["verification_score"].clone()
        ),
        (200, json!(1000), json!("hack"), Value::Null),
        "{body}"
    );
    let big = vec![0u8; 6 * 1024 * 1024];
    assert_eq!(
        got(send(fields(
            sealed_video.clone(),
            server.seal("encrypted_image", &big),
            &[]
        ))
        .await),
        abnormal(413, 2004, "invalid content length")
    );
}
