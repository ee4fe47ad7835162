//! The server under faults: SIGKILL during enrollments, refused requests on kept-alive connections.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use faceid_gallery::prelude::*;
use serde_json::{Value, json};
use support::*;

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
