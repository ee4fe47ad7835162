//! WebDriver for the kiosk: Xvfb when there is no display, Debian's WebKitWebDriver, and a
//! small client for the few WebDriver calls the kiosk tests and measurements make. The
//! session asks for the same `webkitgtk:browserOptions` (binary + arguments) that
//! tauri-driver forwards, with `TAURI_WEBVIEW_AUTOMATION` set on the driver.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used, missing_docs)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Xvfb (when no display is set) and WebKitWebDriver, stopped on drop.
#[derive(Debug)]
pub struct Harness {
    driver: Child,
    _xvfb: crate::xvfb::Display,
    pub display: String,
    pub port: u16,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

use crate::server::free_port;

pub fn harness() -> Harness {
    let display = crate::xvfb::display(1280, 800);
    let port = free_port();
    let driver = Command::new("WebKitWebDriver")
        .arg(format!("--port={port}"))
        .env("DISPLAY", &display.name)
        .env("TAURI_WEBVIEW_AUTOMATION", "true")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
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
        driver,
        display: display.name.clone(),
        _xvfb: display,
        port,
    }
}

/// One kiosk process driven through WebDriver.
#[derive(Debug)]
pub struct Kiosk {
    client: reqwest::Client,
    session: String,
    /// The kiosk's arguments, to tell when its process has exited.
    args: Vec<String>,
}

impl Kiosk {
    pub async fn launch(h: &Harness, binary: &Path, args: &[String]) -> Kiosk {
        let client = crate::http();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "webkitgtk:browserOptions": {"binary": binary, "args": args}
        }}});
        // A new session starts the kiosk; under heavy load it once never answered. Fail
        // clearly after two minutes rather than hang the whole run (no retry: a second
        // kiosk on the same data directory would find the gallery locked).
        let r: Value = client
            .post(format!("http://127.0.0.1:{}/session", h.port))
            .json(&caps)
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver new session (the kiosk's launch): {e}"))
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
            args: args.to_vec(),
        }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    pub async fn js(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await["value"]
            .clone()
    }

    pub async fn element(&self, css: &str) -> String {
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

    pub async fn click(&self, css: &str) {
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

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn text(&self, css: &str) -> String {
        let id = self.element(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until the UI shows `screen` (the `data-screen` of the body).
    pub async fn wait_screen(&self, screen: &str, timeout: Duration) {
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

    /// Clicks `css` until the page leaves screen `from` (at most three clicks, 5 s apart).
    /// WebKitWebDriver now and then reports a click on a button that the page never saw
    /// (seen on the claim screen under load); a retry is printed so it stays visible.
    pub async fn click_leaving(&self, css: &str, from: &str) {
        for attempt in 1..=3 {
            self.click(css).await;
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                if self.js("return document.body.dataset.screen || ''").await != from {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            println!("click on {css} not seen by the page (attempt {attempt}); clicking again");
        }
        panic!("three clicks on {css} did not leave screen {from}");
    }

    /// Waits until `script` returns `expected`.
    pub async fn wait_js(&self, script: &str, expected: Value, timeout: Duration) {
        let started = Instant::now();
        loop {
            let now = self.js(script).await;
            if now == expected {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "waited {timeout:?} for `{script}` to be {expected}, still {now}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    pub async fn screenshot(&self, name: &str) {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png["value"].as_str().unwrap())
            .unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screens");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }

    /// Ends the session and waits (up to 30 s) for the kiosk process to exit: it holds its
    /// gallery locked until then, and a loaded machine takes seconds to end it.
    pub async fn quit(self) {
        let _ = self.client.delete(&self.session).send().await;
        let started = Instant::now();
        while running(&self.args) && started.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Whether a process runs with `args`, in that order, on its command line (Linux `/proc`).
fn running(args: &[String]) -> bool {
    let needle = args.join("\0").into_bytes();
    if needle.is_empty() {
        return false;
    }
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return false;
    };
    processes.flatten().any(|process| {
        std::fs::read(process.path().join("cmdline"))
            .is_ok_and(|line| line.windows(needle.len()).any(|w| w == needle))
    })
}
