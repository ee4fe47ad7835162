//! Surface 5, template enrollment with a quality report, on the real server over loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::*;

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
