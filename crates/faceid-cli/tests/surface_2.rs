//! Surface 2, the face collection, on the real server over loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::*;

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
