//! Surface 3, the liveness server, on the real server over loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{Value, json};
use support::*;

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
