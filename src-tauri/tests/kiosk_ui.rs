//! The real kiosk binary under Xvfb, driven through its real UI with WebDriver: Debian's
//! WebKitWebDriver, given the same `webkitgtk:browserOptions` capabilities tauri-driver
//! would forward (binary + arguments), with `TAURI_WEBVIEW_AUTOMATION` set. The camera is the
//! file/video source; assertions are on the screens shown and on the gallery afterwards.
//! Screenshots of the start, card-scan, selfie-guidance and result screens in each language
//! are written to `docs/screens/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Xvfb (when no display is set) and WebKitWebDriver, stopped on drop.
struct Harness {
    xvfb: Option<Child>,
    driver: Child,
    display: String,
    port: u16,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        if let Some(x) = self.xvfb.as_mut() {
            let _ = x.kill();
            let _ = x.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn harness() -> Harness {
    let (xvfb, display) = match std::env::var("DISPLAY") {
        Ok(d) if !d.is_empty() => (None, d),
        _ => {
            let display = format!(":{}", 90 + std::process::id() % 100);
            let child = Command::new("Xvfb")
                .args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb (make setup installs xvfb)");
            std::thread::sleep(Duration::from_millis(800));
            (Some(child), display)
        }
    };
    let port = free_port();
    let driver = Command::new("WebKitWebDriver")
        .arg(format!("--port={port}"))
        .env("DISPLAY", &display)
        .env("TAURI_WEBVIEW_AUTOMATION", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("WebKitWebDriver (make setup installs webkit2gtk-driver)");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "WebKitWebDriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Harness {
        xvfb,
        driver,
        display,
        port,
    }
}

/// One kiosk process driven through WebDriver.
struct Kiosk {
    client: reqwest::Client,
    session: String,
}

impl Kiosk {
    async fn launch(h: &Harness, args: &[String]) -> Kiosk {
        let client = reqwest::Client::new();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "webkitgtk:browserOptions": {"binary": env!("CARGO_BIN_EXE_faceid-kiosk"), "args": args}
        }}});
        let r: Value = client
            .post(format!("http://127.0.0.1:{}/session", h.port))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        Kiosk {
            client,
            session: format!("http://127.0.0.1:{}/session/{id}", h.port),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    async fn js(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await["value"]
            .clone()
    }

    async fn element(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let r = self
                .call(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            if let Some(id) = r["value"][ELEMENT].as_str() {
                return id.to_string();
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no element {css}: {r}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        let r = self
            .call(
                reqwest::Method::POST,
                &format!("/element/{id}/click"),
                Some(json!({})),
            )
            .await;
        assert!(r["value"].is_null(), "click {css}: {r}");
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let id = self.element(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until the UI shows `screen` (the `data-screen` of the body).
    async fn wait_screen(&self, screen: &str, timeout: Duration) {
        let started = Instant::now();
        loop {
            let now = self.js("return document.body.dataset.screen || ''").await;
            if now == screen {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "waited {timeout:?} for screen {screen}, still on {now}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn screenshot(&self, name: &str) {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png["value"].as_str().unwrap())
            .unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screens");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }

    async fn quit(self) {
        let _ = self.client.delete(&self.session).send().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
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
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(kiosk.js("return document.documentElement.lang").await, lang);
        let dir = kiosk.js("return document.documentElement.dir").await;
        assert_eq!(dir, if lang == "ar" { "rtl" } else { "ltr" });
        kiosk.screenshot(&format!("start-{lang}")).await;
        kiosk.click("#go-enroll").await;
        kiosk.wait_screen("camera", Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(
            kiosk
                .js("return document.getElementById('instruction').dataset.key")
                .await,
            "place_card"
        );
        kiosk.screenshot(&format!("card-scan-{lang}")).await;
        kiosk.click("#screen-camera .cancel").await;
        kiosk.wait_screen("start", Duration::from_secs(10)).await;
        kiosk.click("#go-identify").await;
        kiosk.wait_screen("camera", Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(
            kiosk
                .js("return document.getElementById('instruction').dataset.key")
                .await,
            "look_at_camera"
        );
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
    kiosk.click("#details-go").await;
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
    kiosk.click("#claim-go").await;
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
    kiosk.click("#claim-go").await;
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
    let _ = h.display.len();
}
