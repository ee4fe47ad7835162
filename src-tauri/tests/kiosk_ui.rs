//! The real kiosk binary under Xvfb, driven through its real UI with WebDriver: Debian's
//! WebKitWebDriver, given the same `webkitgtk:browserOptions` capabilities tauri-driver
//! would forward (binary + arguments), with `TAURI_WEBVIEW_AUTOMATION` set. The camera is the
//! file/video source; assertions are on the screens shown and on the gallery afterwards.
//! Screenshots of the start, card-scan, selfie-guidance and result screens in each language
//! are written to `docs/screens/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use faceid_gallery::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

use faceid_e2e::webdriver::{Harness, harness};
use serde_json::json;

/// One kiosk at a time: each test starts its own Xvfb, WebKit and kiosk, and three of them
/// at once on two cores make every timing in the UI a race.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The kiosk under test.
struct Kiosk;

impl Kiosk {
    async fn launch(h: &Harness, args: &[String]) -> faceid_e2e::webdriver::Kiosk {
        faceid_e2e::webdriver::Kiosk::launch(h, Path::new(env!("CARGO_BIN_EXE_faceid-kiosk")), args)
            .await
    }
}

struct Place {
    data: tempfile::TempDir,
    keys: tempfile::TempDir,
}

impl Place {
    fn new() -> Place {
        Place {
            data: tempfile::tempdir().unwrap(),
            keys: tempfile::tempdir().unwrap(),
        }
    }

    fn args(&self, camera: &str, card: &str, lang: &str) -> Vec<String> {
        [
            "--data",
            self.data.path().to_str().unwrap(),
            "--key-file",
            self.keys.path().join("g.key").to_str().unwrap(),
            "--camera",
            camera,
            "--card-source",
            card,
            "--lang",
            lang,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn gallery(&self) -> faceid_gallery::Gallery {
        let key = faceid_gallery::GalleryKey::from_file(
            &self.keys.path().join("g.key"),
            self.data.path(),
        )
        .unwrap();
        faceid_gallery::Gallery::open(&self.data.path().join("gallery"), &key).unwrap()
    }
}

fn blank_camera(dir: &Path) -> PathBuf {
    let path = dir.join("blank.png");
    image::RgbImage::from_pixel(640, 480, image::Rgb([90, 96, 104]))
        .save(&path)
        .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screens_in_every_language_and_a_two_face_frame_refused() {
    let _serial = SERIAL.lock().await;
    let h = harness();
    let place = Place::new();
    let blank = blank_camera(place.keys.path());
    let kiosk = Kiosk::launch(
        &h,
        &place.args(&format!("file:{}", blank.display()), "camera", "en"),
    )
    .await;
    kiosk.wait_screen("start", Duration::from_secs(30)).await;
    for lang in ["en", "fr", "ar"] {
        kiosk.click(&format!(".lang[data-lang={lang}]")).await;
        let wait = Duration::from_secs(15);
        kiosk
            .wait_js("return document.documentElement.lang", json!(lang), wait)
            .await;
        let dir = kiosk.js("return document.documentElement.dir").await;
        assert_eq!(dir, if lang == "ar" { "rtl" } else { "ltr" });
        kiosk.screenshot(&format!("start-{lang}")).await;
        kiosk.click("#go-enroll").await;
        kiosk.wait_screen("camera", Duration::from_secs(10)).await;
        let instruction = "return document.getElementById('instruction').dataset.key";
        kiosk.wait_js(instruction, json!("place_card"), wait).await;
        kiosk.screenshot(&format!("card-scan-{lang}")).await;
        kiosk.click("#screen-camera .cancel").await;
        kiosk.wait_screen("start", Duration::from_secs(10)).await;
        kiosk.click("#go-identify").await;
        kiosk.wait_screen("camera", Duration::from_secs(10)).await;
        kiosk
            .wait_js(instruction, json!("look_at_camera"), wait)
            .await;
        // The preview is running behind the guidance before the screenshot.
        let preview = "return document.getElementById('preview').src.startsWith('data:image/jpeg')";
        kiosk.wait_js(preview, json!(true), wait).await;
        kiosk.screenshot(&format!("selfie-guidance-{lang}")).await;
        kiosk.click("#screen-camera .cancel").await;
        kiosk.wait_screen("start", Duration::from_secs(10)).await;
    }
    // The settings persist the last language chosen.
    kiosk.quit().await;
    let saved = std::fs::read_to_string(place.data.path().join("kiosk.toml")).unwrap();
    assert!(saved.contains("language = \"ar\""), "{saved}");

    // Two people in frame: refused, in every language.
    let two = faceid_e2e::sample_path(1);
    let kiosk = Kiosk::launch(
        &h,
        &place.args(&format!("file:{}", two.display()), "camera", "en"),
    )
    .await;
    kiosk.wait_screen("start", Duration::from_secs(30)).await;
    for lang in ["en", "fr", "ar"] {
        kiosk.click(&format!(".lang[data-lang={lang}]")).await;
        // The page re-lays itself out in the new language (right to left for Arabic): click
        // only once it has.
        let wait = Duration::from_secs(15);
        kiosk
            .wait_js("return document.documentElement.lang", json!(lang), wait)
            .await;
        kiosk.click("#go-identify").await;
        kiosk.wait_screen("result", Duration::from_secs(20)).await;
        assert_eq!(
            kiosk
                .js("return document.getElementById('result-title').dataset.outcome")
                .await,
            "refused"
        );
        assert_eq!(
            kiosk
                .js("return document.getElementById('result-text').dataset.reason")
                .await,
            "one_person"
        );
        assert!(!kiosk.text("#result-text").await.is_empty());
        assert!(
            !kiosk.text("#result-title").await.contains('0'),
            "no score on a result screen"
        );
        kiosk.screenshot(&format!("result-refused-{lang}")).await;
        kiosk.click("#screen-result .cancel").await;
        kiosk.wait_screen("start", Duration::from_secs(10)).await;
    }
    kiosk.quit().await;
    assert!(place.gallery().is_empty(), "nothing enrolled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_from_card_and_video_then_verify_identify_and_reject() {
    let _serial = SERIAL.lock().await;
    let Some(eval) =
        faceid_e2e::shared_eval("enroll_from_card_and_video_then_verify_identify_and_reject")
    else {
        return;
    };
    let synthetic = eval.join("idcards/synthetic");
    let card = synthetic.join("celeba_07207_card.jpg");
    let holder = faceid_e2e::still_video(&synthetic.join("celeba_07207_selfie.jpg"), 3.0);
    let other = faceid_e2e::still_video(&synthetic.join("celeba_07462_selfie.jpg"), 3.0);
    let h = harness();
    let place = Place::new();
    let args = place.args(
        &format!("video:{}", holder.display()),
        &format!("file:{}", card.display()),
        "en",
    );
    let kiosk = Kiosk::launch(&h, &args).await;
    kiosk.wait_screen("start", Duration::from_secs(30)).await;

    // Enrollment: card from the scanner folder, selfie from the camera, details typed.
    kiosk.click("#go-enroll").await;
    kiosk.wait_screen("details", Duration::from_secs(40)).await;
    kiosk.type_into("#details-id", "brahim").await;
    kiosk.type_into("#details-name", "Brahim A.").await;
    kiosk.click_leaving("#details-go", "details").await;
    kiosk.wait_screen("result", Duration::from_secs(10)).await;
    assert_eq!(
        kiosk
            .js("return document.getElementById('result-title').dataset.outcome")
            .await,
        "enrolled"
    );
    kiosk.screenshot("result-enrolled-en").await;
    kiosk.click("#screen-result .cancel").await;
    kiosk.wait_screen("start", Duration::from_secs(10)).await;

    // Verification of the same person.
    kiosk.click("#go-verify").await;
    kiosk.wait_screen("claim", Duration::from_secs(10)).await;
    kiosk.type_into("#claim-id", "brahim").await;
    kiosk
        .wait_js(
            "return document.getElementById('claim-id').value",
            json!("brahim"),
            Duration::from_secs(10),
        )
        .await;
    kiosk.click_leaving("#claim-go", "claim").await;
    kiosk.wait_screen("result", Duration::from_secs(40)).await;
    assert_eq!(
        kiosk
            .js("return document.getElementById('result-title').dataset.outcome")
            .await,
        "verified"
    );
    assert_eq!(kiosk.text("#result-text").await, "Brahim A.");
    kiosk.click("#screen-result .cancel").await;
    kiosk.wait_screen("start", Duration::from_secs(10)).await;

    // Identification.
    kiosk.click("#go-identify").await;
    kiosk.wait_screen("result", Duration::from_secs(40)).await;
    assert_eq!(
        kiosk
            .js("return document.getElementById('result-title').dataset.outcome")
            .await,
        "identified"
    );
    assert_eq!(kiosk.text("#result-text").await, "Brahim A.");
    kiosk.quit().await;

    // Another person's video claiming the same identity: rejected.
    let args = place.args(
        &format!("video:{}", other.display()),
        &format!("file:{}", card.display()),
        "en",
    );
    let kiosk = Kiosk::launch(&h, &args).await;
    kiosk.wait_screen("start", Duration::from_secs(30)).await;
    kiosk.click("#go-verify").await;
    kiosk.wait_screen("claim", Duration::from_secs(10)).await;
    kiosk.type_into("#claim-id", "brahim").await;
    kiosk
        .wait_js(
            "return document.getElementById('claim-id').value",
            json!("brahim"),
            Duration::from_secs(10),
        )
        .await;
    kiosk.click_leaving("#claim-go", "claim").await;
    kiosk.wait_screen("result", Duration::from_secs(40)).await;
    assert_eq!(
        kiosk
            .js("return document.getElementById('result-title').dataset.outcome")
            .await,
        "not_verified"
    );
    assert!(
        kiosk
            .js("return !document.getElementById('result-fallback').hidden")
            .await
            .as_bool()
            .unwrap()
    );
    kiosk.screenshot("result-not-verified-en").await;
    kiosk.quit().await;

    // The gallery afterwards: one subject, selfie and card templates, decisions audited.
    {
        let gallery = place.gallery();
        let subjects = gallery.subjects().unwrap();
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].id, "brahim");
        assert_eq!(subjects[0].display_name.as_deref(), Some("Brahim A."));
        assert_eq!(subjects[0].template_tags.len(), 2);
        let audit = gallery.audit().unwrap();
        let outcomes: Vec<(String, String)> = audit
            .iter()
            .filter(|e| matches!(e.action.as_str(), "enroll" | "verify" | "identify"))
            .map(|e| (e.action.clone(), e.outcome.clone()))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("enroll".to_string(), "ok".to_string()),
                ("verify".into(), "accepted".into()),
                ("identify".into(), "match".into()),
                ("verify".into(), "rejected:NO_MATCH".into()),
            ]
        );
        assert!(gallery.verify_audit().unwrap().valid);
    }

    // The operator: the local API for the console, then the PIN screen, the subject list and
    // an erasure through the kiosk's own UI.
    let operator = faceid_server::keys::ApiKeys::create(
        place.data.path(),
        faceid_server::keys::Role::Operator,
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // An enrollment the server refused (its answer stands in for the server here), for the
    // operator to resolve.
    {
        let key = faceid_gallery::GalleryKey::from_file(
            &place.keys.path().join("g.key"),
            place.data.path(),
        )
        .unwrap();
        let gallery = faceid_gallery::Gallery::open_with(
            &place.data.path().join("gallery"),
            &key,
            faceid_gallery::GalleryOptions { outbox: true },
        )
        .unwrap();
        let ctx = faceid_gallery::AuditContext::default();
        let template = gallery.templates("brahim").unwrap();
        gallery
            .enroll(
                &faceid_gallery::NewSubject {
                    id: "amina".into(),
                    ..Default::default()
                },
                &template,
                None,
                &ctx,
            )
            .unwrap();
        let entry = gallery
            .outbox_batch(1000)
            .unwrap()
            .into_iter()
            .find(|e| e.event.subject() == Some("amina"))
            .unwrap();
        let refused = faceid_gallery::PushOutcome::Conflict {
            message: "the server already holds \"amina\" for a different person".into(),
        };
        gallery.settle(&entry, &refused, None, &ctx).unwrap();
        assert_eq!(gallery.conflicts().unwrap().len(), 1);
    }
    let mut args = place.args(&format!("video:{}", holder.display()), "camera", "en");
    args.extend(["--local-api".to_string(), format!("127.0.0.1:{port}")]);
    let kiosk = Kiosk::launch(&h, &args).await;
    kiosk.wait_screen("start", Duration::from_secs(30)).await;
    let listed: serde_json::Value = faceid_e2e::http()
        .get(format!("http://127.0.0.1:{port}/v1/subjects"))
        .header("x-api-key", &operator.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["id"], "brahim", "{listed}");
    // With no server configured, every change waits in the outbox for one.
    let sync: serde_json::Value = faceid_e2e::http()
        .get(format!("http://127.0.0.1:{port}/v1/admin/sync"))
        .header("x-api-key", &operator.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pending = sync["status"]["pending"].as_u64().unwrap_or(0);
    assert!(pending > 0, "{sync}");
    kiosk.click("#go-operator").await;
    kiosk.wait_screen("operator", Duration::from_secs(10)).await;
    kiosk.type_into("#pin", "1234").await;
    kiosk.click("#pin-go").await;
    let wait = Duration::from_secs(15);
    kiosk
        .wait_js(
            "return !document.getElementById('pin-error').hidden",
            json!(true),
            wait,
        )
        .await;
    kiosk
        .js("document.getElementById('pin').value = ''; return 0")
        .await;
    kiosk.type_into("#pin", "0000").await;
    kiosk.click("#pin-go").await;

    let panel = "return !document.getElementById('operator-panel').hidden";
    kiosk.wait_js(panel, json!(true), wait).await;
    let listed = "return document.getElementById('subject-list').textContent";
    kiosk
        .wait_js(listed, json!("Brahim A. (brahim)Delete"), wait)
        .await;
    let sync_line = "return document.getElementById('sync-state').textContent.startsWith('No server: this kiosk works alone · Waiting to be sent: ')";
    kiosk.wait_js(sync_line, json!(true), wait).await;
    kiosk.screenshot("operator-en").await;
    kiosk.click("button[data-subject=brahim]").await;
    let armed =
        "return document.querySelector('button[data-subject=brahim]').dataset.confirm || ''";
    kiosk.wait_js(armed, json!("1"), wait).await;
    kiosk.click("button[data-subject=brahim]").await;
    let rows = "return document.getElementById('subject-list').children.length";
    kiosk.wait_js(rows, json!(0), wait).await;
    // The refused enrollment is enrolled again under a new id. An id the gallery refuses
    // first: the reason is shown (the command's error message, never "[object Object]").
    let conflicts = "return document.getElementById('conflict-list').children.length";
    kiosk.wait_js(conflicts, json!(1), wait).await;
    kiosk
        .type_into("#conflict-list input", &"x".repeat(200))
        .await;
    kiosk
        .click("#conflict-list button[data-action=reenroll]")
        .await;
    let shown = "const t = document.querySelector('#conflict-list span').textContent; \
                 return t.includes('invalid subject id') && !t.includes('[object')";
    kiosk.wait_js(shown, json!(true), wait).await;
    kiosk
        .js("document.querySelector('#conflict-list input').value = ''; return 0")
        .await;
    kiosk.type_into("#conflict-list input", "amina-2").await;
    kiosk
        .click("#conflict-list button[data-action=reenroll]")
        .await;
    kiosk.wait_js(conflicts, json!(0), wait).await;
    kiosk.wait_js(rows, json!(1), wait).await;
    kiosk.quit().await;
    let gallery = place.gallery();
    assert!(gallery.subject("brahim").unwrap().is_none(), "erased");
    assert!(gallery.subject("amina-2").unwrap().is_some(), "re-enrolled");
    assert!(
        gallery
            .audit()
            .unwrap()
            .iter()
            .any(|e| e.action == "delete" && e.actor == "operator")
    );
    assert!(gallery.verify_audit().unwrap().valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_webcam_the_demo_clip_plays_with_a_visible_note() {
    let _serial = SERIAL.lock().await;
    let webcams = faceid_kiosk::webcam::list();
    let h = harness();
    let place = Place::new();
    let kiosk = Kiosk::launch(&h, &place.args("webcam", "camera", "fr")).await;
    kiosk.wait_screen("start", Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let note_shown = kiosk
        .js("return !document.getElementById('note').hidden")
        .await
        .as_bool()
        .unwrap();
    let preview = kiosk
        .js("return document.getElementById('preview').src.startsWith('data:image/jpeg')")
        .await
        .as_bool()
        .unwrap();
    if webcams.is_empty() {
        assert!(note_shown, "no webcam: the demo note is shown");
        assert!(
            kiosk.text("#note").await.contains("démonstration"),
            "in the kiosk's language"
        );
        assert!(preview, "the demo clip is previewed");
    } else {
        println!("webcams present ({webcams:?}): the demo note must stay hidden");
        assert!(!note_shown);
    }
    kiosk.quit().await;
}
