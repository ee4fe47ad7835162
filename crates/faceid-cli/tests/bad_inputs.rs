//! The bad-input table of the README, every surface, on the real server: each its answer, nothing changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::*;

/// Expected answers to one bad input: surface 1 (status, reason), surface 2 (status,
/// errors), surface 5 (status, code), surface 3 error_code, /v1 (status, errors).
type Row = (
    u16,
    &'static str,
    u16,
    Value,
    u16,
    u8,
    &'static str,
    u16,
    Value,
);

/// A noisy JPEG of just over 6 MB: a real image, above the 5 MB limit.
fn six_mb_jpeg() -> Vec<u8> {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut side = 1800;
    loop {
        let noise = image::RgbImage::from_fn(side, side, |_, _| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            image::Rgb([seed as u8, (seed >> 8) as u8, (seed >> 16) as u8])
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&noise)
            .unwrap();
        if jpeg.len() >= 6_000_000 {
            assert!(jpeg.len() < 7_500_000, "{}", jpeg.len());
            return jpeg;
        }
        side += 200;
    }
}

/// What the gallery holds, as an admin sees it.
async fn snapshot(client: &reqwest::Client, server: &Server) -> Value {
    client
        .get(format!("{}/v1/subjects?limit=1000", server.base))
        .header("x-api-key", &server.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_their_documented_errors_and_change_nothing() {
    let server = start();
    let base = server.base.clone();
    let client = faceid_e2e::http();
    // One subject, so that "unchanged" means something.
    let r = client
        .post(format!("{base}/users/baseline"))
        .header("x-api-key", &server.key)
        .json(&json!({"face": b64(&faceid_e2e::kiosk_frame(3, 1050.0..1300.0))}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let before = snapshot(&client, &server).await;
    assert_eq!(before.as_array().unwrap().len(), 1);

    let sample = faceid_e2e::sample_bytes(3);
    let truncated = sample[..sample.len() / 2].to_vec();
    let huge_png = faceid_e2e::png_header_only(30_000, 30_000);
    let text = b"Dear kiosk, this is a text file named photo.jpg\n".to_vec();
    let big = six_mb_jpeg();
    let no_frames =
        std::fs::read(faceid_e2e::derived_video(faceid_e2e::DerivedVideo::NoFrames).unwrap())
            .unwrap();
    let inputs: [(&str, Vec<u8>); 5] = [
        ("truncated JPEG", truncated),
        ("PNG declaring 30000x30000", huge_png),
        ("zero-byte upload", Vec::new()),
        ("text file named .jpg", text),
        ("6 MB image", big),
    ];
    let json_of = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)),
        )
    };
    let multipart = |url: String, field: &'static str, bytes: Vec<u8>| {
        let request = client
            .post(url)
            .multipart(form(&[(field, "photo.jpg", bytes)]));
        async move { json_of(request.send().await.unwrap()).await }
    };
    let surface_2 = |id: &str, bytes: &[u8]| {
        let request = client
            .post(format!("{base}/users/{id}"))
            .header("x-api-key", &server.key)
            .json(&json!({"face": b64(bytes)}));
        async move { json_of(request.send().await.unwrap()).await }
    };
    let surface_5 = |bytes: Vec<u8>| {
        let request = client
            .post(format!("{base}/api/v1.0/add"))
            .header("APP-ID", &server.app_id)
            .header("APP-KEY", &server.key)
            .multipart(form(&[("photo", "photo.jpg", bytes)]));
        async move { json_of(request.send().await.unwrap()).await }
    };
    let native = |path: &str, body: Value| {
        let request = client
            .post(format!("{base}/v1{path}"))
            .header("x-api-key", &server.key)
            .json(&body);
        async move { json_of(request.send().await.unwrap()).await }
    };
    let reason = |(status, body): (u16, Value)| (status, body["DecisionReason"].clone());
    let errors = |(status, body): (u16, Value)| (status, body["errors"].clone());
    let code_5 = |(status, body): (u16, Value)| (status, body["result"]["code"].clone());
    let code_3 = |(status, body): (u16, Value)| (status, body["error_code"].clone());
    let unreadable = json!(["face is not a readable JPEG or PNG image"]);

    // Each input, on every surface that takes an image; expected answers as documented in
    // the README's bad-input table.
    let expected: [Row; 5] = [
        (
            200,
            "CORRUPT_IMAGE",
            400,
            unreadable.clone(),
            400,
            2,
            "INVALID_IMAGE",
            400,
            json!(["CORRUPT_IMAGE"]),
        ),
        (
            200,
            "IMAGE_TOO_LARGE",
            413,
            Value::Null,
            413,
            2,
            "IMAGE_TOO_LARGE",
            400,
            json!(["IMAGE_TOO_LARGE"]),
        ),
        (
            200,
            "EMPTY_FILE",
            400,
            json!(["face is required"]),
            400,
            1,
            "INVALID_IMAGE",
            400,
            json!(["EMPTY_INPUT"]),
        ),
        (
            200,
            "UNSUPPORTED_FORMAT",
            400,
            unreadable.clone(),
            400,
            2,
            "INVALID_IMAGE",
            400,
            json!(["UNSUPPORTED_FORMAT"]),
        ),
        (
            413,
            "FILE_TOO_LARGE",
            413,
            Value::Null,
            413,
            2,
            "IMAGE_TOO_LARGE",
            413,
            Value::Null,
        ),
    ];
    for ((label, bytes), (s1, r1, s2, e2, s5, c5, c3, sv, ev)) in inputs.iter().zip(expected) {
        let got = reason(
            multipart(
                format!("{base}/api/enroll?username=newcomer"),
                "cin_file",
                bytes.clone(),
            )
            .await,
        );
        assert_eq!(got, (s1, json!(r1)), "surface 1 enroll, {label}");
        let got = errors(surface_2("newcomer", bytes).await);
        assert_eq!(got, (s2, e2), "surface 2 enroll, {label}");
        let got = code_3(multipart(format!("{base}/check_liveness"), "image", bytes.clone()).await);
        assert_eq!(got, (200, json!(c3)), "surface 3 check_liveness, {label}");
        let got = code_5(surface_5(bytes.clone()).await);
        assert_eq!(got, (s5, json!(c5)), "surface 5 add, {label}");
        let got = errors(native("/subjects", json!({"id": "newcomer", "image": b64(bytes)})).await);
        assert_eq!(got, (sv, ev), "/v1/subjects, {label}");
    }

    // A video with no frames, where videos are taken.
    let got = reason(
        multipart(
            format!("{base}/api/authentificate?username=baseline"),
            "auth_video",
            no_frames.clone(),
        )
        .await,
    );
    assert_eq!(got, (200, json!("NO_FRAMES")), "surface 1 authentificate");
    let got = errors(
        native(
            "/verify",
            json!({"subject_id": "baseline", "media": b64(&no_frames)}),
        )
        .await,
    );
    assert_eq!(got, (400, json!(["NO_FRAMES"])), "/v1/verify");

    // Wrong content type: JSON where a form is expected, text where JSON is expected.
    let wrong = |url: String| {
        let request = client
            .post(url)
            .header("x-api-key", &server.key)
            .header("APP-ID", &server.app_id)
            .header("APP-KEY", &server.key)
            .header("content-type", "text/plain")
            .body("face=not-json");
        async move { json_of(request.send().await.unwrap()).await }
    };
    assert_eq!(
        reason(wrong(format!("{base}/api/enroll?username=newcomer")).await),
        (200, json!("MALFORMED_REQUEST"))
    );
    let (status, body) = wrong(format!("{base}/users/newcomer")).await;
    assert_eq!(status, 400);
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("request body is not valid JSON"),
        "{body}"
    );
    assert_eq!(
        code_3(wrong(format!("{base}/check_liveness")).await),
        (200, json!("INVALID_IMAGE"))
    );
    assert_eq!(
        code_5(wrong(format!("{base}/api/v1.0/add")).await),
        (400, json!(1))
    );
    let (status, body) = wrong(format!(
        "{base}/identity/silent_image_verification/stateless"
    ))
    .await;
    assert_eq!((status, body["code"].clone()), (400, json!(1200)));
    assert_eq!(wrong(format!("{base}/v1/subjects")).await.0, 400);

    // Invalid UTF-8 in the username / user id.
    let got = reason(
        multipart(
            format!("{base}/api/enroll?username=%C3%28%FF"),
            "cin_file",
            sample.clone(),
        )
        .await,
    );
    assert_eq!(got, (200, json!("INVALID_USERNAME")));
    let got = errors(surface_2("%C3%28%FF", &sample).await);
    assert_eq!(got, (400, json!(["invalid userId"])));

    assert_eq!(
        snapshot(&client, &server).await,
        before,
        "the gallery is unchanged"
    );
    let audit: Value = client
        .get(format!("{base}/v1/audit"))
        .header("x-api-key", &server.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit["chain_valid"], true);
    let changes: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .filter(|a| matches!(*a, "enroll" | "delete" | "reset"))
        .collect();
    assert_eq!(
        changes,
        ["enroll"],
        "only the baseline enrollment changed the gallery"
    );
}
