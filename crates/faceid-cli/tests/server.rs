//! The real server (`faceid serve`) on a loopback port, called as existing clients call it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use faceid_e2e::server::ServerHome;
use serde_json::{Value, json};

const EXE: &str = env!("CARGO_BIN_EXE_faceid");

/// A `faceid serve` with a client key, an admin key and a transport key for surface 4.
struct Server {
    base: String,
    key: String,
    app_id: String,
    admin: String,
    // Field order: the process stops before its home is deleted.
    running: Option<faceid_e2e::server::Server>,
    home: ServerHome,
}

impl Server {
    /// SIGKILLs the process, keeping its home on disk.
    fn kill(&mut self) {
        if let Some(running) = self.running.take() {
            running.kill();
        }
    }

    /// Seals `bytes` for a surface-4 field with this server's transport key.
    fn seal(&self, field: &str, bytes: &[u8]) -> String {
        self.home.seal(field, bytes)
    }
}

fn start() -> Server {
    start_on(ServerHome::new(EXE.as_ref(), None))
}

/// Serves `home` (new, or taken from a stopped server) with a new client key.
fn start_on(home: ServerHome) -> Server {
    start_with(home, &[])
}

fn start_with(home: ServerHome, extra_args: &[&str]) -> Server {
    let created = home.issue_key("client");
    let transport_file = home.transport_key();
    let mut args = vec!["--transport-key-file", transport_file.to_str().unwrap()];
    args.extend_from_slice(extra_args);
    let running = home.serve("127.0.0.1:0", &args);
    Server {
        base: running.base.clone(),
        key: created["key"].as_str().unwrap().to_string(),
        app_id: created["app_id"].as_str().unwrap().to_string(),
        admin: home.admin.clone(),
        running: Some(running),
        home,
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn problem_400(errors: &[&str]) -> Value {
    json!({"status":400,"title":"Bad Request","detail":"Invalid request.",
           "type":"https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/400","errors":errors})
}

fn problem_404() -> Value {
    json!({"status":404,"title":"Not Found","detail":"Server cannot find the requested resource.",
           "type":"https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/404"})
}

async fn gallery_size(client: &reqwest::Client, base: &str) -> u64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("faceid_gallery_subjects "))
        .and_then(|v| v.trim().parse().ok())
        .expect("gallery gauge")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surface_2_face_collection_as_existing_clients_call_it() {
    let server = start();
    let (base, key) = (server.base.clone(), server.key.clone());
    let client = faceid_e2e::http();
    // The same woman: right of sample1 (head tilted), middle of sample3 (frontal).
    let enroll_frame = faceid_e2e::kiosk_frame(3, 1050.0..1300.0);
    let probe_frame = faceid_e2e::kiosk_frame(1, 1400.0..1750.0);
    let stranger = faceid_e2e::kiosk_frame(5, 0.0..2000.0);
    let post = |path: &str, body: Value, key: Option<&str>| {
        let mut request = client.post(format!("{base}{path}")).json(&body);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        request.send()
    };

    // Without or with a wrong key: 401, nothing stored.
    let r = post("/users/alice", json!({"face": b64(&enroll_frame)}), None)
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = post(
        "/users/alice",
        json!({"face": b64(&enroll_frame)}),
        Some("wrong"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(gallery_size(&client, &base).await, 0);

    // Enrollment: 200 with an empty body, then the duplicate is refused.
    let r = post(
        "/users/alice",
        json!({"face": b64(&enroll_frame)}),
        Some(&key),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert!(r.headers().contains_key("x-request-id"));
    let r = post(
        "/users/alice",
        json!({"face": b64(&enroll_frame)}),
        Some(&key),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        problem_400(&["provided userId already exists"])
    );

    // Bad input: each its answer, the gallery unchanged.
    let blank = {
        let mut png = Vec::new();
        image::RgbImage::from_pixel(320, 240, image::Rgb([180, 180, 180]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    };
    let before = gallery_size(&client, &base).await;
    let r = post("/users/bob", json!({"face": b64(&blank)}), Some(&key))
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        problem_400(&["no face detected in the provided image"])
    );
    let r = post(
        "/users/bob",
        json!({"face": "%%% not base64 %%%"}),
        Some(&key),
    )
    .await
    .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        problem_400(&["face is not valid base64"])
    );
    let r = post(
        "/users/bob",
        json!({"face": b64(&enroll_frame[..enroll_frame.len() / 2])}),
        Some(&key),
    )
    .await
    .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        problem_400(&["face is not a readable JPEG or PNG image"])
    );
    let r = client
        .post(format!("{base}/users/bob"))
        .header("x-api-key", &key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = post(
        "/users/bob",
        json!({"face": b64(&vec![0u8; 6 * 1024 * 1024])}),
        Some(&key),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(gallery_size(&client, &base).await, before);

    // Search is the 1:N verdict: liveness, then quality, then the gallery. Her other photo
    // has her head tilted: refused by the quality gate whatever the threshold. The
    // stranger is live and good, and not in the gallery.
    let r = post(
        "/users/search",
        json!({"face": b64(&probe_frame), "threshold": 1.0}),
        Some(&key),
    )
    .await
    .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        problem_400(&["face quality too low: BAD_POSE"])
    );
    let r = post(
        "/users/search",
        json!({"face": b64(&stranger), "threshold": 75.5}),
        Some(&key),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap(), problem_404());
    // A live person enrolled from a photo is found; another live person is not; after the
    // erasure nobody is.
    if let Some(eval) = faceid_e2e::shared_eval("surface 2 search of a live person") {
        let synthetic = eval.join("idcards/synthetic");
        let holder = std::fs::read(synthetic.join("celeba_07207_selfie.jpg")).unwrap();
        let other = std::fs::read(synthetic.join("celeba_07462_selfie.jpg")).unwrap();
        let r = post("/users/holder", json!({"face": b64(&holder)}), Some(&key))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = post("/users/search", json!({"face": b64(&holder)}), Some(&key))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let found = r.json::<Value>().await.unwrap();
        assert_eq!(found["matches"][0]["userId"], "holder", "{found}");
        assert!(
            found["matches"][0]["similarity"].as_f64().unwrap() >= 80.0,
            "{found}"
        );
        let r = post(
            "/users/search",
            json!({"face": b64(&other), "threshold": 75.5}),
            Some(&key),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(r.json::<Value>().await.unwrap(), problem_404());
        let r = client
            .delete(format!("{base}/users/holder"))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = post("/users/search", json!({"face": b64(&holder)}), Some(&key))
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "an erased subject is never found");
    }

    // Erasure.
    let delete = |id: &str| {
        client
            .delete(format!("{base}/users/{id}"))
            .header("x-api-key", &key)
            .send()
    };
    assert_eq!(delete("alice").await.unwrap().status(), 200);
    let r = delete("alice").await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap(), problem_404());
    // Operations endpoints.
    assert_eq!(
        client
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("faceid_requests_total{route=\"/users/{user_id}\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("faceid_decisions_total{kind=\"identify\",outcome=\"match\"} 1"),
        "{metrics}"
    );
}

fn blank_png() -> Vec<u8> {
    let mut png = Vec::new();
    image::RgbImage::from_pixel(320, 240, image::Rgb([180, 180, 180]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

fn form(files: &[(&str, &str, Vec<u8>)]) -> reqwest::multipart::Form {
    files.iter().fold(
        reqwest::multipart::Form::new(),
        |form, (field, name, bytes)| {
            form.part(
                field.to_string(),
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string()),
            )
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surface_3_liveness_server_as_existing_clients_call_it() {
    let server = start();
    let base = server.base.clone();
    let client = faceid_e2e::http();
    let live = faceid_e2e::kiosk_frame(1, 1400.0..1750.0);
    let far = faceid_e2e::distant_frame(3, 1050.0..1300.0, 4);

    let version: Value = client
        .get(format!("{base}/api_version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(version["defaultPipeline"], "passive");
    assert_eq!(version["availablePipelines"], json!(["passive"]));
    for key in ["product", "version", "expirationDate"] {
        assert!(version[key].is_string(), "{key}");
    }

    // Two frames of a live person: one accumulated result with exactly three fields.
    let r = client
        .post(format!("{base}/check_liveness"))
        .multipart(form(&[
            ("image", "a.jpg", live.clone()),
            ("image", "b.jpg", live.clone()),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    assert!(body["probability"].as_f64().unwrap() >= 0.5, "{body}");
    assert!((0.0..=1.0).contains(&body["quality"].as_f64().unwrap()));
    assert!(body["score"].as_f64().unwrap() > 0.0);

    // Refusals answer 200 with error and error_code.
    let check = |files: Vec<(&'static str, &'static str, Vec<u8>)>, query: &'static str| {
        let url = format!("{base}/check_liveness{query}");
        let client = client.clone();
        async move {
            client
                .post(url)
                .multipart(form(&files))
                .send()
                .await
                .unwrap()
        }
    };
    let r = check(vec![("image", "x.png", blank_png())], "").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "Failed to detect face", "error_code": "FACE_NOT_FOUND"})
    );
    let r = check(vec![("image", "far.jpg", far.clone())], "").await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "Interpupillary distance is too small", "error_code": "FACE_TOO_SMALL"})
    );
    let r = check(vec![("image", "a.jpg", live.clone())], "?pipeline=unknown").await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "The request contains an unsupported pipeline, rejecting", "error_code": null})
    );
    let r = check(
        vec![("image", "t.jpg", b"plain text, not an image".to_vec())],
        "",
    )
    .await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["error_code"],
        "INVALID_IMAGE"
    );

    // Batch: one result per file, named.
    let r = client
        .post(format!("{base}/check_liveness_batch"))
        .multipart(form(&[
            ("image1", "image1", live.clone()),
            ("image3", "image3", far.clone()),
        ]))
        .send()
        .await
        .unwrap();
    let results: Value = r.json().await.unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 2);
    let by_name = |name: &str| {
        results
            .iter()
            .find(|r| r["file_name"] == name)
            .unwrap()
            .clone()
    };
    assert!(by_name("image1")["probability"].as_f64().unwrap() >= 0.5);
    assert_eq!(by_name("image3")["error_code"], "FACE_TOO_SMALL");

    // check_image: per pipeline and calibration; malformed data is 400.
    let data = json!({"domain": "DESKTOP", "pipelines": [
        {"pipeline": "passive", "calibration": "HARDENED"},
        {"pipeline": "other", "calibration": "REGULAR"}]});
    let image_form = |data: String| {
        reqwest::multipart::Form::new()
            .part(
                "image",
                reqwest::multipart::Part::bytes(live.clone()).file_name("s.jpg"),
            )
            .text("data", data)
    };
    let r = client
        .post(format!("{base}/check_image"))
        .multipart(image_form(data.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body["serverVersion"].is_string() && body["licenseExpirationDate"].is_string());
    let first = &body["results"][0];
    assert_eq!(
        (first["pipeline"].as_str(), first["calibration"].as_str()),
        (Some("passive"), Some("HARDENED"))
    );
    for key in ["score", "probability", "quality"] {
        assert!(first[key].is_number(), "{key}: {body}");
    }
    assert_eq!(body["results"][1]["error_code"], "UNSUPPORTED_PIPELINE");
    for bad in [
        "{not json",
        r#"{"domain":"MOBILE","pipelines":[]}"#,
        r#"{"pipelines":[{"pipeline":"passive","calibration":"REGULAR"}]}"#,
    ] {
        let r = client
            .post(format!("{base}/check_image"))
            .multipart(image_form(bad.to_string()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }

    // BI: every check that ran was recorded (4 single checks, 2 batch files, 1 check_image
    // pipeline; requests refused for an unsupported pipeline are not checks); histogram keys
    // as the clients expect.
    let report: Value = client
        .get(format!("{base}/bi_report"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let total = report["total"].as_u64().unwrap();
    assert_eq!(total, 7, "{report}");
    assert!(
        report["passive_UNKNOWN_FACE_NOT_FOUND"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert!(
        report["passive_UNKNOWN_FACE_TOO_SMALL"].as_u64().unwrap() >= 2,
        "{report}"
    );
    assert!(
        report
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("passive_DESKTOP_probability_")),
        "{report}"
    );
    let records: Value = client
        .get(format!(
            "{base}/bi_records?date_from=2000-01-01&date_to=2999-12-31"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(records.as_array().unwrap().len() as u64, total);
    let none: Value = client
        .get(format!("{base}/bi_records?date_to=2000-01-01"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(none.as_array().unwrap().is_empty());
    let r = client
        .get(format!("{base}/bi_report?date_from=21-11-2026"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// A card holder from the shared synthetic ID cards, with the clips the video surfaces need.
struct CardHolder {
    card: Vec<u8>,
    selfie: Vec<u8>,
    video: Vec<u8>,
    short_video: Vec<u8>,
    other_video: Vec<u8>,
    replay: Vec<u8>,
    audio_only: Vec<u8>,
    no_frames: Vec<u8>,
}

fn card_holder(eval: &std::path::Path) -> CardHolder {
    use faceid_e2e::{DerivedVideo, derived_video, still_video};
    let read = |p: &std::path::Path| std::fs::read(p).unwrap();
    let synthetic = eval.join("idcards/synthetic");
    let selfie_path = synthetic.join("celeba_07207_selfie.jpg");
    CardHolder {
        card: read(&synthetic.join("celeba_07207_card.jpg")),
        selfie: read(&selfie_path),
        video: read(&still_video(&selfie_path, 3.0)),
        short_video: read(&still_video(&selfie_path, 1.0)),
        // Another identity, live and of good quality.
        other_video: read(&still_video(
            &synthetic.join("celeba_07462_selfie.jpg"),
            3.0,
        )),
        replay: read(&eval.join("video/spoof/lestari15_fake.mp4")),
        audio_only: read(&derived_video(DerivedVideo::AudioOnly).unwrap()),
        no_frames: read(&derived_video(DerivedVideo::NoFrames).unwrap()),
    }
}

/// Multipart parts: (field, file name, bytes).
type Parts<'a> = Vec<(&'a str, &'a str, Vec<u8>)>;

fn surface_1_body(trained: bool, reason: &str) -> Value {
    if trained {
        json!({"trained":"success","EnrollStatus":"APPROVED","DecisionReason":reason})
    } else {
        json!({"trained":"failed","EnrollStatus":"REJECTED","DecisionReason":reason})
    }
}

fn rejected(reason: &str) -> Value {
    json!({"score":null,"Decision":"REJECTED","DecisionReason":reason})
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_v1_api_with_roles_audit_and_openapi() {
    let server = start();
    let base = format!("{}/v1", server.base);
    let client = faceid_e2e::http();
    let enroll_frame = faceid_e2e::kiosk_frame(3, 1050.0..1300.0);
    let stranger = faceid_e2e::kiosk_frame(5, 0.0..2000.0);
    let call = |method: reqwest::Method, path: &str, key: &str, body: Option<Value>| {
        let mut request = client
            .request(method, format!("{base}{path}"))
            .header("x-api-key", key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        }
    };
    use reqwest::Method;
    let (client_key, admin) = (server.key.as_str(), server.admin.as_str());

    // Keys and roles.
    assert_eq!(call(Method::GET, "/subjects", "wrong", None).await.0, 401);
    assert_eq!(
        call(Method::GET, "/subjects", client_key, None).await.0,
        403,
        "listing needs operator"
    );
    let (status, operator) = call(
        Method::POST,
        "/admin/keys",
        admin,
        Some(json!({"role": "operator"})),
    )
    .await;
    assert_eq!(status, 201, "{operator}");
    let operator = operator["key"].as_str().unwrap().to_string();
    assert_eq!(
        call(Method::GET, "/subjects", &operator, None).await,
        (200, json!([]))
    );
    assert_eq!(
        call(
            Method::POST,
            "/admin/keys",
            &operator,
            Some(json!({"role": "admin"}))
        )
        .await
        .0,
        403
    );

    // Enrollment.
    let enroll = json!({"id": "alice", "display_name": "Alice A.", "image": b64(&enroll_frame), "retain_image": true});
    let (status, subject) = call(Method::POST, "/subjects", client_key, Some(enroll.clone())).await;
    assert_eq!(status, 201, "{subject}");
    assert_eq!(
        (
            subject["id"].clone(),
            subject["templates"].clone(),
            subject["has_image"].clone()
        ),
        (json!("alice"), json!(1), json!(true))
    );
    let (status, dup) = call(Method::POST, "/subjects", client_key, Some(enroll)).await;
    assert_eq!(
        (status, dup["errors"].clone()),
        (409, json!(["DUPLICATE_SUBJECT"]))
    );
    let (status, none) = call(
        Method::POST,
        "/subjects",
        client_key,
        Some(json!({"id": "blank", "image": b64(&blank_png())})),
    )
    .await;
    assert_eq!((status, none["errors"].clone()), (422, json!(["NO_FACE"])));
    let (status, bad) = call(
        Method::POST,
        "/subjects",
        client_key,
        Some(json!({"id": "x", "image": "***"})),
    )
    .await;
    assert_eq!(
        (status, bad["errors"].clone()),
        (400, json!(["INVALID_BASE64"]))
    );
    let (status, _) = call(
        Method::POST,
        "/subjects",
        client_key,
        Some(json!({"id": "x"})),
    )
    .await;
    assert_eq!(status, 400, "missing image");
    let (status, list) = call(Method::GET, "/subjects?search=ALI", &operator, None).await;
    assert_eq!((status, list.as_array().unwrap().len()), (200, 1));
    let r = client
        .get(format!("{base}/subjects/alice/image"))
        .header("x-api-key", &operator)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        enroll_frame.as_slice(),
        "retained image round trip"
    );

    // Decisions. The kiosk frame is cut from a group photo and is not live: same face,
    // refused on liveness.
    let (status, verdict) = call(
        Method::POST,
        "/verify",
        client_key,
        Some(json!({"subject_id": "alice", "media": b64(&enroll_frame)})),
    )
    .await;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(
        (verdict["accepted"].clone(), verdict["reason"].clone()),
        (json!(false), json!("LIVENESS_FAILED")),
        "{verdict}"
    );
    assert!(
        verdict["score"].is_null(),
        "refused on liveness before any comparison: {verdict}"
    );
    assert_eq!(verdict["liveness"]["live"], false);
    let (_, verdict) = call(
        Method::POST,
        "/verify",
        client_key,
        Some(json!({"subject_id": "alice", "media": b64(&stranger)})),
    )
    .await;
    assert_eq!(
        (verdict["accepted"].clone(), verdict["reason"].clone()),
        (json!(false), json!("NO_MATCH")),
        "{verdict}"
    );
    assert!(verdict["score"].as_f64().unwrap() < 0.6);
    assert_eq!(
        call(
            Method::POST,
            "/verify",
            client_key,
            Some(json!({"subject_id": "nobody", "media": b64(&stranger)}))
        )
        .await
        .0,
        404
    );
    let (_, nobody) = call(
        Method::POST,
        "/identify",
        client_key,
        Some(json!({"media": b64(&stranger)})),
    )
    .await;
    assert_eq!(
        (
            nobody["matched"].clone(),
            nobody["subject_id"].clone(),
            nobody["gallery_size"].clone()
        ),
        (json!(false), Value::Null, json!(1)),
        "{nobody}"
    );
    assert_eq!(nobody["reason"], "NO_MATCH", "{nobody}");
    let (status, multi) = call(
        Method::POST,
        "/identify",
        client_key,
        Some(json!({"media": b64(&faceid_e2e::sample_bytes(1))})),
    )
    .await;
    assert_eq!(
        (status, multi["errors"].clone()),
        (422, json!(["MULTIPLE_FACES"]))
    );
    // A live person: the card holder, enrolled from the selfie, found from a selfie video.
    if let Some(eval) =
        faceid_e2e::shared_eval("native_v1_api live verification and identification")
    {
        let holder = card_holder(&eval);
        let (status, _) = call(
            Method::POST,
            "/subjects",
            client_key,
            Some(json!({"id": "holder", "image": b64(&holder.selfie)})),
        )
        .await;
        assert_eq!(status, 201);
        let (_, verdict) = call(
            Method::POST,
            "/verify",
            client_key,
            Some(json!({"subject_id": "holder", "media": b64(&holder.video)})),
        )
        .await;
        assert_eq!(
            (verdict["accepted"].clone(), verdict["reason"].clone()),
            (json!(true), json!("MATCH")),
            "{verdict}"
        );
        assert_eq!(
            verdict["liveness"]["frames"], 8,
            "frames of the video accumulated"
        );
        let (_, found) = call(
            Method::POST,
            "/identify",
            client_key,
            Some(json!({"media": b64(&holder.video)})),
        )
        .await;
        assert_eq!(
            (found["matched"].clone(), found["subject_id"].clone()),
            (json!(true), json!("holder")),
            "{found}"
        );
        let (_, replay) = call(
            Method::POST,
            "/verify",
            client_key,
            Some(json!({"subject_id": "holder", "media": b64(&holder.replay)})),
        )
        .await;
        assert_eq!(replay["reason"], "LIVENESS_FAILED");
        assert_eq!(
            call(Method::DELETE, "/subjects/holder", &operator, None)
                .await
                .0,
            204
        );
    }

    // Analysis.
    let (status, live) = call(
        Method::POST,
        "/liveness",
        client_key,
        Some(json!({"media": b64(&enroll_frame)})),
    )
    .await;
    assert_eq!(
        (status, live["frames"].clone(), live["preset"].clone()),
        (200, json!(1), json!("REGULAR"))
    );
    let (status, quality) = call(
        Method::POST,
        "/quality",
        client_key,
        Some(json!({"media": b64(&enroll_frame)})),
    )
    .await;
    assert_eq!(
        (
            status,
            quality["passed"].clone(),
            quality["failure"].clone()
        ),
        (200, json!(true), Value::Null),
        "{quality}"
    );
    assert!(
        quality["measures"]["inter_eye_px"]["value"]
            .as_f64()
            .unwrap()
            > 28.0
    );
    let (status, card) = call(
        Method::POST,
        "/card",
        client_key,
        Some(json!({"media": b64(&enroll_frame)})),
    )
    .await;
    assert_eq!(
        (status, card["rotation_degrees"].clone()),
        (200, json!(0)),
        "{card}"
    );
    assert!(card["portrait_jpeg"].as_str().unwrap().len() > 100);

    // Audit, status, erasure, key revocation.
    let (_, audit) = call(Method::GET, "/audit?subject=alice", &operator, None).await;
    assert_eq!(audit["chain_valid"], true);
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..3],
        &["enroll", "verify", "verify"],
        "{actions:?}"
    );
    assert!(
        audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !e["request_id"].as_str().unwrap().is_empty())
    );
    let (_, status) = call(Method::GET, "/admin/status", &operator, None).await;
    assert_eq!(status["gallery_size"], 1);
    assert_eq!(
        call(Method::DELETE, "/subjects/alice", client_key, None)
            .await
            .0,
        403
    );
    assert_eq!(
        call(Method::DELETE, "/subjects/alice", &operator, None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(Method::GET, "/subjects/alice", &operator, None)
            .await
            .0,
        404
    );
    assert_eq!(
        call(Method::DELETE, "/subjects/alice", &operator, None)
            .await
            .0,
        404
    );
    let (_, keys) = call(Method::GET, "/admin/keys", admin, None).await;
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 3);
    assert!(
        keys.iter()
            .all(|k| k.get("sha256").is_none() && k.get("key").is_none())
    );
    let operator_id = keys.iter().find(|k| k["role"] == "operator").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        call(
            Method::DELETE,
            &format!("/admin/keys/{operator_id}"),
            admin,
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        call(Method::GET, "/subjects", &operator, None).await.0,
        401,
        "revoked at once"
    );
    assert_eq!(call(Method::POST, "/admin/reset", admin, None).await.0, 204);

    // The OpenAPI document and Swagger UI.
    let doc: Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/v1/subjects",
        "/v1/subjects/{id}",
        "/v1/verify",
        "/v1/identify",
        "/v1/liveness",
        "/v1/quality",
        "/v1/card",
        "/v1/audit",
        "/v1/admin/keys",
        "/v1/admin/reset",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    let ui = client
        .get(format!("{}/swagger-ui/", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger"));
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surface_5_template_enrollment_with_quality_report() {
    let server = start();
    let (base, key, app_id) = (
        server.base.clone(),
        server.key.clone(),
        server.app_id.clone(),
    );
    let client = faceid_e2e::http();
    let photo = faceid_e2e::kiosk_frame(3, 1050.0..1300.0);
    let add = |query: &'static str, parts: Vec<(&'static str, Vec<u8>)>, auth: bool| {
        let mut form = reqwest::multipart::Form::new();
        for (name, bytes) in parts {
            form = if name == "photo" {
                form.part(
                    name,
                    reqwest::multipart::Part::bytes(bytes).file_name("photo.jpg"),
                )
            } else {
                form.text(name, String::from_utf8(bytes).unwrap())
            };
        }
        let mut request = client
            .post(format!("{base}/api/v1.0/add{query}"))
            .multipart(form);
        if auth {
            request = request.header("APP-ID", &app_id).header("APP-KEY", &key);
        }
        request.send()
    };

    let r = add("", vec![("photo", photo.clone())], false)
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["result"]["code"], 6);

    // With check_liveness the enrollment gate judges liveness first: the photo is cut
    // from a printed group photo and is refused, nothing stored.
    let r = add(
        "?check_liveness=true&check_deepfake=true",
        vec![("photo", photo.clone())],
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["result"],
        json!({"status": "error", "code": 7, "info": "liveness check failed"})
    );
    // A live person passes with check_liveness, and the report says so.
    if let Some(eval) = faceid_e2e::shared_eval("surface 5 enrollment of a live person") {
        let selfie = std::fs::read(eval.join("idcards/synthetic/celeba_07207_selfie.jpg")).unwrap();
        let r = add("?check_liveness=true", vec![("photo", selfie)], true)
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        let liveness = &body["result"]["face"]["liveness"];
        assert!(
            liveness["score"].as_f64().unwrap() >= 0.5 && liveness["fine"] == true,
            "{body}"
        );
    }

    let r = add("?check_deepfake=true", vec![("photo", photo.clone())], true)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(
        uuid_like(&body["transactionId"]) && uuid_like(&body["result"]["templateId"]),
        "{body}"
    );
    let face = &body["result"]["face"];
    assert!(face.get("liveness").is_none(), "{face}");
    assert_eq!(face["deepfake"], json!({"score": null, "fine": null}));
    let quality = &face["quality"];
    assert!(quality["race"].is_null());
    assert!(quality["gender"] == "male" || quality["gender"] == "female");
    for angle in ["age", "pitch", "yaw", "roll"] {
        assert!(quality[angle].is_number(), "{angle}");
    }
    for measure in ["uniformity", "exposure", "contrast"] {
        assert!(
            quality[measure]["value"].is_number() && quality[measure]["fine"].is_boolean(),
            "{measure}"
        );
    }
    for measure in [
        "blur",
        "emotion",
        "left_eye_closed",
        "right_eye_closed",
        "crfiqa",
    ] {
        assert!(
            quality[measure]["score"].is_number() && quality[measure]["fine"].is_boolean(),
            "{measure}"
        );
    }
    for unmeasured in ["flare", "macroblocks", "distortion", "occlusion"] {
        assert_eq!(
            quality[unmeasured],
            json!({"score": null, "fine": null}),
            "{unmeasured}"
        );
    }
    for side in ["x", "y", "w", "h"] {
        assert!(face["box"][side].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(face["landmarks"].as_array().unwrap().len(), 5);

    // Flags off: no liveness, no deepfake. A given templateId is kept, and only once.
    let id = "3f1c2b7e-2d4a-4c1e-9a1b-5d6e7f809a1b";
    let r = add(
        "",
        vec![
            ("photo", photo.clone()),
            ("templateId", id.as_bytes().to_vec()),
        ],
        true,
    )
    .await
    .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["result"]["templateId"], id);
    assert!(
        body["result"]["face"].get("liveness").is_none()
            && body["result"]["face"].get("deepfake").is_none()
    );
    let r = add(
        "",
        vec![
            ("photo", photo.clone()),
            ("templateId", id.as_bytes().to_vec()),
        ],
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["result"]["code"], 4);

    // No face: the exact answer existing clients expect.
    let r = add("", vec![("photo", blank_png())], true).await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(uuid_like(&body["transactionId"]));
    assert_eq!(
        body["result"],
        json!({"status": "error", "code": 5, "info": "can not detect face"})
    );
    let r = add("", vec![("templateId", b"not-a-uuid".to_vec())], true)
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["result"]["code"], 1);
}

fn uuid_like(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 36 && s.matches('-').count() == 4)
}

/// SIGKILL the server during a stream of enrollments; after a restart every acknowledged
/// enrollment is present and intact, none is half-written, and the audit chain is valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_acknowledged_enrollment() {
    let mut server = start();
    let client = faceid_e2e::http();
    // A frame that passes the enrollment quality gate; each enrollment gets its own id.
    let frames = [faceid_e2e::kiosk_frame(3, 1050.0..1300.0)];
    // Two writers stream enrollments; the server is killed while they run.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for writer in 0..2 {
        let (client, base, key, acked) = (
            client.clone(),
            server.base.clone(),
            server.key.clone(),
            acked.clone(),
        );
        let frames = frames.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let id = format!("w{writer}-{i:04}");
                let body = json!({"face": b64(&frames[i % frames.len()])});
                match client
                    .post(format!("{base}/users/{id}"))
                    .header("x-api-key", &key)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().push(id),
                    Ok(r) => panic!("{id}: {}", r.status()),
                    Err(_) => break, // the server is gone
                }
            }
        }));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while acked.lock().unwrap().len() < 12 {
        assert!(std::time::Instant::now() < deadline, "enrollments stalled");
        assert!(
            writers.iter().any(|w| !w.is_finished()),
            "both writers stopped early"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    server.kill();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 12);

    // Restart on the same data and key: every acknowledged id exists (re-enrolling it is a
    // duplicate) and is found by search.
    let key = server.key.clone();
    let Server { home, .. } = server;
    let key_file = home.key_file.clone();
    let data_path = home.data.path().to_path_buf();
    let restarted = start_on(home);
    for id in &acked {
        let r = client
            .post(format!("{}/users/{id}", restarted.base))
            .header("x-api-key", &key)
            .json(&json!({"face": b64(&frames[0])}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            problem_400(&["provided userId already exists"]),
            "{id}"
        );
    }
    // Stop it (sled allows one process per database) but keep its directories.
    let mut restarted = restarted;
    restarted.kill();
    // Directly on the store: complete subjects only, audit chain valid.
    let gallery_key = faceid_gallery::GalleryKey::from_file(&key_file, &data_path).unwrap();
    let gallery = faceid_gallery::Gallery::open(&data_path, &gallery_key).unwrap();
    for id in &acked {
        assert_eq!(gallery.templates(id).unwrap().len(), 1, "{id}");
    }
    for subject in gallery.subjects().unwrap() {
        assert_eq!(
            gallery.templates(&subject.id).unwrap().len(),
            1,
            "{}",
            subject.id
        );
    }
    assert!(gallery.verify_audit().unwrap().valid);
    drop(restarted);
}

/// Regression: a request refused for its credentials must not leave its body unread on a
/// keep-alive connection, or the client's next request on it is cut off (IncompleteMessage).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_does_not_break_the_next_one_on_the_same_connection() {
    let server = start();
    let client = faceid_e2e::http_builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let body = vec![7u8; 300_000];
    for round in 0..20 {
        let form = reqwest::multipart::Form::new().part(
            "photo",
            reqwest::multipart::Part::bytes(body.clone()).file_name("p.jpg"),
        );
        let r = client
            .post(format!("{}/api/v1.0/add", server.base))
            .multipart(form)
            .send()
            .await;
        assert_eq!(
            r.unwrap_or_else(|e| panic!("round {round}: {e}")).status(),
            401
        );
        let form = reqwest::multipart::Form::new().text("templateId", "x");
        let r = client
            .post(format!("{}/api/v1.0/add", server.base))
            .header("APP-ID", &server.app_id)
            .header("APP-KEY", &server.key)
            .multipart(form)
            .send()
            .await;
        assert_eq!(
            r.unwrap_or_else(|e| panic!("round {round}: {e}")).status(),
            400
        );
    }
}
