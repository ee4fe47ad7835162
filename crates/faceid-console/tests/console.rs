//! The console against a real `faceid serve` on loopback, driven through egui_kittest (the
//! same accessibility tree a screen reader sees), rendered with wgpu for the screenshots in
//! `docs/screens/`. And the real binary in a real window under Xvfb.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use faceid_console::api::FrameAnalysis;
use faceid_console::backend::Connection;
use faceid_console::i18n::Language;
use faceid_console::state::{Screen, Theme};
use faceid_console::{ConsoleApp, ConsoleOptions};
use faceid_e2e::server::{Server, ServerHome, faceid_exe, free_port};
use serde_json::{Value, json};

/// People enrolled by the tests: (id, display name).
const PEOPLE: [(&str, &str); 4] = [
    ("p-ada", "Ada Lovelace"),
    ("p-grace", "Grace Hopper"),
    ("p-alan", "Alan Turing"),
    ("p-leila", "Leïla Ben Ali ليلى بن علي"),
];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// One call to the server: status and JSON body.
fn call(method: reqwest::Method, url: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    runtime().block_on(async {
        let mut request = faceid_e2e::http()
            .request(method, url)
            .header("x-api-key", key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
}

/// One-person kiosk frames cut around the faces of the sample photos, in a fixed order.
fn one_person_frames() -> Vec<Vec<u8>> {
    let engine = faceid_e2e::engine();
    let mut frames = Vec::new();
    for n in 1..=6 {
        let photo = faceid_e2e::sample(n);
        for face in engine.faces(&photo).unwrap() {
            let frame =
                faceid_core::sampling::frame_around(&photo, face.bbox, 3.2, 640, 480).unwrap();
            frames.push(faceid_e2e::jpeg(&frame));
        }
    }
    frames
}

/// Enrolls [`PEOPLE`] through `/v1/subjects` as a kiosk would (image retained), each
/// from the next frame the quality gate accepts; returns each one's enrollment frame.
fn enroll_people(base: &str, client: &str) -> Vec<Vec<u8>> {
    let mut frames = one_person_frames().into_iter();
    let mut enrolled = Vec::new();
    for (id, name) in PEOPLE {
        loop {
            let frame = frames
                .next()
                .expect("enough enrollable faces in the samples");
            let (status, body) = call(
                reqwest::Method::POST,
                &format!("{base}/v1/subjects"),
                client,
                Some(json!({
                    "id": id, "display_name": name, "retain_image": true, "source": "kiosk-lobby",
                    "image": base64::engine::general_purpose::STANDARD.encode(&frame),
                })),
            );
            if status == 201 {
                enrolled.push(frame);
                break;
            }
            assert_eq!(status, 422, "enrolling {id}: {body}");
        }
    }
    enrolled
}

struct Setup {
    home: ServerHome,
    server: Option<Server>,
    listen: String,
    operator: String,
    /// The enrollment frame of each of [`PEOPLE`].
    frames: Vec<Vec<u8>>,
}

impl Setup {
    fn new() -> Setup {
        let home = ServerHome::new(&faceid_exe(), None);
        // Keys are made offline, as an installer would, before the server reads them.
        let client = home.create_key("client");
        let operator = home.create_key("operator");
        let listen = format!("127.0.0.1:{}", free_port());
        let server = home.serve(&listen, &[]);
        let frames = enroll_people(&server.base, &client);
        Setup {
            home,
            server: Some(server),
            listen,
            operator,
            frames,
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.listen)
    }

    fn options(&self, key: &str) -> ConsoleOptions {
        options_for(&self.base(), key)
    }
}

/// A console on `base` with `key`, opening on the subjects.
fn options_for(base: &str, key: &str) -> ConsoleOptions {
    ConsoleOptions {
        server: base.to_string(),
        key: key.to_string(),
        ca_pem: None,
        faceid: faceid_exe(),
        camera: String::new(),
        report: None,
        screen: Screen::Subjects,
        theme: Theme::Dark,
        language: Language::En,
    }
}

/// Opens the live view on `camera`, starts it and waits for its third analysed frame.
fn live_view(
    mut options: ConsoleOptions,
    camera: &str,
) -> (Harness<'static, ConsoleApp>, FrameAnalysis) {
    options.camera = camera.to_string();
    options.screen = Screen::Live;
    let mut harness = console(options);
    wait_for(&mut harness, "the connection", |h| {
        h.state().state.connection == Connection::Online
    });
    harness.get_by_label("Start").click();
    wait_for(&mut harness, "three analysed frames", |h| {
        h.state()
            .state
            .live
            .frame
            .as_ref()
            .is_some_and(|f| f.number >= 3)
    });
    let frame = harness.state().state.live.frame.clone().unwrap();
    let analysis = frame.analysis.expect("the server analysed the frame");
    (harness, analysis)
}

fn console(options: ConsoleOptions) -> Harness<'static, ConsoleApp> {
    Harness::builder()
        .with_size(egui::vec2(1366.0, 768.0))
        .wgpu()
        .build_eframe(move |cc| ConsoleApp::new(&cc.egui_ctx, options).unwrap())
}

/// Steps the UI until `done` holds (the backend answers on its own thread), up to 30 s.
fn wait_for(
    harness: &mut Harness<'static, ConsoleApp>,
    what: &str,
    done: impl Fn(&Harness<'static, ConsoleApp>) -> bool,
) {
    let started = Instant::now();
    loop {
        harness.step();
        if done(harness) {
            // Let layout settle (egui sizes new content over a frame or two).
            harness.run_steps(3);
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn shows(harness: &Harness<'static, ConsoleApp>, text: &str) -> bool {
    harness.query_all_by_label_contains(text).next().is_some()
}

fn screens_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screens")
}

/// Renders the window and writes `docs/screens/NAME.png`.
fn screenshot(harness: &mut Harness<'static, ConsoleApp>, name: &str) {
    harness.remove_cursor();
    harness.step();
    let image = harness.render().expect("wgpu renders the console");
    std::fs::create_dir_all(screens_dir()).unwrap();
    image
        .save(screens_dir().join(format!("{name}.png")))
        .unwrap();
}

fn subject_ids(base: &str, key: &str) -> Vec<String> {
    let (status, list) = call(
        reqwest::Method::GET,
        &format!("{base}/v1/subjects"),
        key,
        None,
    );
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn operator_lists_searches_and_erases_subjects_of_a_real_server() {
    let setup = Setup::new();
    let base = setup.base();
    let mut harness = console(setup.options(&setup.operator));

    // The list: every person enrolled above, with source and templates, thumbnails fetched.
    wait_for(&mut harness, "the subject list", |h| {
        h.state().state.subjects.list.len() == PEOPLE.len()
    });
    for (_, name) in PEOPLE {
        // As drawn: an Arabic name's words in right-to-left order.
        let drawn = faceid_console::i18n::visual(name, false);
        assert!(shows(&harness, &drawn), "{name} is listed");
    }
    assert!(shows(&harness, "kiosk-lobby"));
    wait_for(&mut harness, "thumbnails", |h| {
        let thumbs = &h.state().state.subjects.thumbnails;
        PEOPLE
            .iter()
            .all(|(id, _)| thumbs.get(*id).is_some_and(Option::is_some))
    });
    assert!(matches!(
        harness.state().state.connection,
        Connection::Online
    ));
    assert!(shows(&harness, &format!("Connected to {base}")));
    screenshot(&mut harness, "console-subjects");

    // Search, typed into the search box: the server filters.
    // The one text box of the screen.
    harness
        .get_by_role(egui::accesskit::Role::TextInput)
        .click();
    harness.step();
    harness
        .get_by_role(egui::accesskit::Role::TextInput)
        .type_text("grace");
    wait_for(&mut harness, "the search answer", |h| {
        h.state().state.subjects.shown_search.as_deref() == Some("grace")
    });
    assert_eq!(harness.state().state.subjects.list.len(), 1);
    assert!(shows(&harness, "Grace Hopper"));
    assert!(
        !shows(&harness, "Ada Lovelace"),
        "the search hides the others"
    );

    // Erase with confirmation: the button opens a dialog; Cancel changes nothing.
    harness.get_by_label("Erase subject…").click();
    harness.run_steps(2);
    assert!(shows(&harness, "Erase Grace Hopper?"));
    screenshot(&mut harness, "console-erase-confirm");
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    assert!(!shows(&harness, "Erase Grace Hopper?"));
    assert!(subject_ids(&base, &setup.operator).contains(&"p-grace".to_string()));

    // Keyboard: Delete asks, Enter confirms.
    harness.key_press(egui::Key::Escape);
    harness.step();
    harness.state_mut().state.subjects.selected = Some(0);
    harness.key_press(egui::Key::Delete);
    harness.run_steps(2);
    assert!(
        shows(&harness, "Erase Grace Hopper?"),
        "Delete asks for confirmation"
    );
    harness.get_by_label("Erase").click();
    wait_for(&mut harness, "the erasure", |h| {
        h.state()
            .state
            .subjects
            .notice
            .as_ref()
            .is_some_and(|n| n.text.contains("p-grace erased"))
    });
    wait_for(&mut harness, "the emptied search", |h| {
        h.state().state.subjects.list.is_empty()
    });

    // The server confirms: gone from the list, 404 by id, and audited.
    let ids = subject_ids(&base, &setup.operator);
    assert!(!ids.contains(&"p-grace".to_string()), "{ids:?}");
    assert_eq!(ids.len(), PEOPLE.len() - 1);
    let (status, _) = call(
        reqwest::Method::GET,
        &format!("{base}/v1/subjects/p-grace"),
        &setup.operator,
        None,
    );
    assert_eq!(status, 404);
    let (_, audit) = call(
        reqwest::Method::GET,
        &format!("{base}/v1/audit?subject=p-grace"),
        &setup.operator,
        None,
    );
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["enroll", "delete"], "{audit}");

    // The audit screen (F2) shows the same log and its chain.
    harness.key_press(egui::Key::F2);
    wait_for(&mut harness, "the audit log", |h| {
        h.state().state.audit.page.is_some()
    });
    assert_eq!(harness.state().state.screen, Screen::Audit);
    assert!(shows(&harness, "Hash chain verified"));
    let chain_events = harness
        .state()
        .state
        .audit
        .page
        .as_ref()
        .unwrap()
        .chain_events;
    assert!(
        chain_events >= 5,
        "4 enrollments and an erasure: {chain_events}"
    );
    harness.state_mut().state.audit.filter.decision = "delete".into();
    harness.run_steps(2);
    assert!(shows(&harness, "1 events shown"));
    let export = tempfile::tempdir().unwrap();
    let csv_path = export.path().join("audit.csv");
    harness.state_mut().state.audit.export_path = csv_path.display().to_string();
    harness.run_steps(1);
    harness.get_by_label("Export CSV").click();
    wait_for(&mut harness, "the export", |h| {
        h.state()
            .state
            .audit
            .notice
            .as_ref()
            .is_some_and(|n| n.text.starts_with("exported"))
    });
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(
        csv.lines().nth(1).unwrap().contains(",delete,p-grace,ok,"),
        "{csv}"
    );
    harness.state_mut().state.audit.filter.decision.clear();
    harness.run_steps(2);
    screenshot(&mut harness, "console-audit");

    // Health (F5) with an operator key: server figures; per-kiosk sync needs admin.
    harness.key_press(egui::Key::F5);
    wait_for(&mut harness, "two health polls", |h| {
        !h.state().state.health.rates.is_empty()
    });
    assert!(shows(&harness, "3 subjects"));
    assert!(shows(&harness, "needs an admin key"));
    assert!(shows(&harness, "Not a kiosk"));
    assert!(shows(&harness, "/v1/subjects"));
}

#[test]
fn a_lost_connection_is_shown_and_recovers_by_itself() {
    let mut setup = Setup::new();
    let admin = setup.home.admin.clone();
    let mut harness = console(setup.options(&admin));
    wait_for(&mut harness, "the subject list", |h| {
        h.state().state.subjects.list.len() == PEOPLE.len()
    });

    // The server dies: the header says so and the UI keeps drawing.
    setup.server.take().unwrap().kill();
    harness.state_mut().state.subjects.search = "a".into();
    harness.get_by_label("Reload").click();
    wait_for(&mut harness, "the lost connection", |h| {
        matches!(h.state().state.connection, Connection::Lost { .. })
    });
    assert!(shows(&harness, "Connection lost"));
    // Every step returns at once while the backend retries (nothing waits on the network).
    let started = Instant::now();
    harness.run_steps(20);
    let twenty_frames = started.elapsed();
    assert!(
        twenty_frames < Duration::from_secs(3),
        "20 frames took {twenty_frames:?}"
    );
    screenshot(&mut harness, "console-connection-lost");

    // Back on the same address: reconnects on its own and reloads the screen.
    setup.server = Some(setup.home.serve(&setup.listen, &[]));
    wait_for(&mut harness, "the reconnection", |h| {
        h.state().state.connection == Connection::Online
            && h.state().state.subjects.shown_search.as_deref() == Some("a")
    });
    assert!(shows(&harness, "Connected to"));
    assert!(!shows(&harness, "Connection lost"));
    assert_eq!(
        harness.state().state.subjects.list.len(),
        4,
        "names and ids containing 'a'"
    );

    // With an admin key the health screen lists kiosks (none have tokens here).
    harness.key_press(egui::Key::F5);
    wait_for(&mut harness, "health", |h| {
        h.state().state.health.latest.is_some()
    });
    assert!(shows(&harness, "No kiosk has a device token"));
    screenshot(&mut harness, "console-health");
}

#[test]
fn live_view_draws_the_engine_view_of_a_clip() {
    let setup = Setup::new();
    // A clip of Ada in front of the camera (her enrollment frame, held three seconds).
    let dir = tempfile::tempdir().unwrap();
    let still = dir.path().join("ada.jpg");
    std::fs::write(&still, &setup.frames[0]).unwrap();
    let clip = faceid_e2e::still_video(&still, 3.0);
    let (mut harness, analysis) = live_view(
        setup.options(&setup.operator),
        &format!("video:{}", clip.display()),
    );
    assert_eq!(analysis.faces.len(), 1, "one person in the clip");
    assert_eq!(analysis.faces[0].landmarks.points.len(), 68);
    let main = analysis.main.expect("a main face");
    assert_eq!(main.refusal, None);
    let identity = main.identity.expect("a 1:N answer");
    assert_eq!(identity.subject_id.as_deref(), Some("p-ada"));
    assert!(identity.score.unwrap() >= identity.threshold);
    assert!(main.liveness.is_some() && main.quality.is_some());
    assert!(shows(&harness, "Match: p-ada"));
    assert!(shows(&harness, "Liveness"));
    assert!(harness.state().state.live.fps > 0.0);
    screenshot(&mut harness, "console-live");
    harness.get_by_label("Stop").click();
    harness.step();
}

#[test]
fn calibration_plots_a_real_evaluation_run() {
    let setup = Setup::new();
    // A small dataset in the shared layout: pairs of sample faces (same photo = genuine).
    let data = tempfile::tempdir().unwrap();
    let faces = data.path().join("faces");
    let frames = one_person_frames();
    let mut pairs = String::new();
    for (i, frame) in frames.iter().enumerate().take(8) {
        let dir = faces.join(format!("person_{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("1.jpg"), frame).unwrap();
        let image = image::load_from_memory(frame).unwrap().fliph();
        image.save(dir.join("2.jpg")).unwrap();
        pairs.push_str(&format!("person_{i}/1.jpg\tperson_{i}/2.jpg\t1\n"));
        if i > 0 {
            pairs.push_str(&format!("person_{i}/1.jpg\tperson_{}/1.jpg\t0\n", i - 1));
        }
    }
    std::fs::write(faces.join("pairs.tsv"), pairs).unwrap();

    let mut options = setup.options(&setup.operator);
    options.screen = Screen::Calibration;
    let mut harness = console(options);
    harness.state_mut().state.calibration.path = data.path().display().to_string();
    harness.run_steps(1);
    harness.get_by_label("Run evaluation").click();
    wait_for(&mut harness, "the evaluation", |h| {
        let c = &h.state().state.calibration;
        !c.running && (c.report.is_some() || c.notice.is_some())
    });
    let calibration = &harness.state().state.calibration;
    assert!(calibration.notice.is_none(), "{:?}", calibration.notice);
    let report = calibration.report.as_ref().unwrap();
    let verification = report.verification.as_ref().unwrap();
    assert_eq!(verification.pairs, 15);
    assert_eq!(
        verification.scores.genuine.len()
            + verification.scores.impostor.len()
            + verification.failed_pairs,
        15
    );
    assert!(!verification.det.is_empty());
    let names: Vec<&str> = verification
        .operating_points
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["FAR 1e-2", "FAR 1e-3", "FAR 1e-4"]);
    assert!(shows(&harness, "Threshold presets"));
    assert!(shows(&harness, "FAR 1e-3"));

    // The full shared set, when present, makes the documented screenshot.
    match faceid_e2e::shared_eval("calibration_plots_a_real_evaluation_run (full-set screenshot)") {
        Some(eval) => {
            let report =
                std::env::temp_dir().join(format!("faceid-eval-{}.json", std::process::id()));
            // A few simulated attacks only: the screenshot needs the figures, not their
            // precision (BENCHMARKS.md records the 1,000 of the default).
            let out = Command::new(faceid_exe())
                .arg("--json")
                .arg("eval")
                .arg(&eval)
                .args(["--pad-sims", "20"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(&report, &out.stdout).unwrap();
            harness.state_mut().state.calibration.path = report.display().to_string();
            harness.run_steps(1);
            harness.get_by_label("Open report").click();
            wait_for(&mut harness, "the full report", |h| {
                h.state()
                    .state
                    .calibration
                    .report
                    .as_ref()
                    .is_some_and(|r| r.liveness.is_some())
            });
            assert!(shows(&harness, "HARDENED"));
            // The presentation-attack figures over sequences, per species.
            let pad = harness
                .state()
                .state
                .calibration
                .report
                .as_ref()
                .unwrap()
                .pad
                .clone();
            let pad = pad.expect("the shared set has spoof sequences");
            assert!(
                pad.species.contains_key("replay") && pad.simulated == 20,
                "{pad:?}"
            );
            assert!(shows(&harness, "Presentation attacks (sequences)"));
            assert!(shows(&harness, "BPCER (bona fide)"));
            screenshot(&mut harness, "console-calibration");
            harness.state_mut().state.theme = Theme::Light;
            harness.run_steps(3);
            screenshot(&mut harness, "console-calibration-light");
            let _ = std::fs::remove_file(report);
        }
        None => screenshot(&mut harness, "console-calibration"),
    }
}

#[test]
fn the_console_binary_opens_a_window_under_xvfb_and_connects() {
    let setup = Setup::new();
    let display = faceid_e2e::xvfb::display(1366, 768);
    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key_file.path(), &setup.operator).unwrap();
    let exe = env!("CARGO_BIN_EXE_faceid-console");
    let mut child = Command::new(exe)
        .args(["--server", &setup.base(), "--key-file"])
        .arg(key_file.path())
        .env("DISPLAY", &display.name)
        .env_remove("WAYLAND_DISPLAY")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });
    let started = Instant::now();
    let mut log = Vec::new();
    let connected = loop {
        match lines.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let done = line.contains(&format!("connected to {}", setup.base()));
                log.push(line);
                if done {
                    break true;
                }
            }
            Err(_) if started.elapsed() > Duration::from_secs(60) => break false,
            Err(_) => {}
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the console exited: {log:#?}"
        );
    };
    assert!(connected, "no connection logged: {log:#?}");
    // Still running with its window open a moment later.
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the console exited: {log:#?}"
    );
    assert!(
        !log.iter().any(|l| l.contains(&setup.operator)),
        "the key was logged"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Kills a child process on drop.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn live_view_and_health_of_a_real_kiosk_through_its_local_api() {
    let kiosk_exe = faceid_exe().with_file_name("faceid-kiosk");
    assert!(
        kiosk_exe.exists(),
        "{} is built with the workspace (make setup, or cargo test --workspace)",
        kiosk_exe.display()
    );
    let data = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key_for = |role: &str| {
        let out = Command::new(faceid_exe())
            .args(["keys", "create", "--role", role, "--data"])
            .arg(data.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        let made: Value = serde_json::from_slice(&out.stdout).unwrap();
        made["key"].as_str().unwrap().to_string()
    };
    let (operator, client) = (key_for("operator"), key_for("client"));
    // The kiosk's camera plays a clip of one person, who is enrolled below.
    let engine = faceid_e2e::engine();
    let frame = one_person_frames()
        .into_iter()
        .find(|f| {
            let image = engine.decode(f).unwrap();
            engine
                .analyze(&image)
                .is_ok_and(|a| a.quality.first_failure().is_none())
        })
        .expect("an enrollable face among the samples");
    let still = keys.path().join("person.jpg");
    std::fs::write(&still, &frame).unwrap();
    let clip = faceid_e2e::still_video(&still, 6.0);
    let display = faceid_e2e::xvfb::display(1280, 800);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _kiosk = Running(
        Command::new(&kiosk_exe)
            .arg("--data")
            .arg(data.path())
            .arg("--key-file")
            .arg(keys.path().join("gallery.key"))
            .arg("--camera")
            .arg(format!("video:{}", clip.display()))
            .args(["--windowed", "--local-api", &format!("127.0.0.1:{port}")])
            .env("DISPLAY", &display.name)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    loop {
        let up = runtime().block_on(async {
            faceid_e2e::http()
                .get(format!("{base}/v1/admin/camera"))
                .header("x-api-key", &operator)
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        if up.as_ref().is_ok_and(|s| *s == 200) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the kiosk's camera never served a frame: {up:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let (status, body) = call(
        reqwest::Method::POST,
        &format!("{base}/v1/subjects"),
        &client,
        Some(json!({
            "id": "p-ada", "display_name": "Ada Lovelace", "source": "kiosk-lobby",
            "image": base64::engine::general_purpose::STANDARD.encode(&frame),
        })),
    );
    assert_eq!(status, 201, "{body}");

    let (mut harness, analysis) = live_view(options_for(&base, &operator), "kiosk");
    assert_eq!(analysis.faces.len(), 1);
    let identity = analysis.main.unwrap().identity.unwrap();
    assert_eq!(identity.subject_id.as_deref(), Some("p-ada"));
    assert!(shows(&harness, "Match: p-ada"));
    screenshot(&mut harness, "console-live-kiosk");
    harness.get_by_label("Stop").click();

    // Health of a kiosk: its own outbox holds the enrollment (no sync server set).
    harness.key_press(egui::Key::F5);
    wait_for(&mut harness, "health", |h| {
        h.state().state.health.latest.is_some()
    });
    let health = harness.state().state.health.latest.clone().unwrap();
    let local = health
        .local_sync
        .as_ref()
        .expect("a kiosk serves its sync state");
    assert!(local.status.pending >= 1, "{:?}", local.status);
    assert!(shows(&harness, "This kiosk's sync"));
    assert!(shows(&harness, "Waiting to push"));
}

#[test]
fn a_server_without_a_camera_says_so_in_the_live_view() {
    let setup = Setup::new();
    let mut options = setup.options(&setup.operator);
    options.camera = "kiosk".into();
    options.screen = Screen::Live;
    let mut harness = console(options);
    wait_for(&mut harness, "the connection", |h| {
        h.state().state.connection == Connection::Online
    });
    harness.get_by_label("Start").click();
    wait_for(&mut harness, "the refusal", |h| {
        h.state().state.live.notice.is_some()
    });
    assert!(shows(&harness, "this server has no camera"));
    assert!(harness.state().state.live.frame.is_none());
    // A bad spec is refused with the accepted forms, nothing starts.
    harness.state_mut().state.live.spec = "camera 3".into();
    harness.run_steps(1);
    harness.get_by_label("Start").click();
    harness.run_steps(2);
    assert!(shows(
        &harness,
        "use webcam[:N], file:DIR, video:FILE or watch:DIR"
    ));
}

#[test]
fn the_console_speaks_french_and_arabic() {
    let setup = Setup::new();
    let mut options = setup.options(&setup.operator);
    options.language = Language::Fr;
    let mut harness = console(options);
    wait_for(&mut harness, "the subject list", |h| {
        h.state().state.subjects.list.len() == PEOPLE.len()
    });
    wait_for(&mut harness, "thumbnails", |h| {
        let thumbs = &h.state().state.subjects.thumbnails;
        PEOPLE
            .iter()
            .all(|(id, _)| thumbs.get(*id).is_some_and(Option::is_some))
    });
    for label in [
        "Personnes",
        "Caméra en direct",
        "Effacer la personne…",
        "4 personnes",
        "Connecté à",
    ] {
        assert!(shows(&harness, label), "{label} in French");
    }
    harness.get_by_label("Effacer la personne…").click();
    harness.run_steps(2);
    assert!(shows(&harness, "Effacer Ada Lovelace ?"));
    harness.get_by_label("Annuler").click();
    harness.run_steps(2);
    screenshot(&mut harness, "console-subjects-fr");

    // Switched in the window: the header's language menu.
    harness.state_mut().state.language = Language::Ar;
    harness.run_steps(3);
    use faceid_console::i18n::{fill, t};
    let ar = Language::Ar;
    for label in [
        t(ar, "Subjects").to_string(),
        t(ar, "Erase subject…").to_string(),
        fill(t(ar, "{n} subjects"), &[("n", "4")]),
        fill(t(ar, "Connected to {server}"), &[("server", &setup.base())]),
    ] {
        assert!(shows(&harness, &label), "{label} in Arabic");
    }
    harness.key_press(egui::Key::F5);
    wait_for(&mut harness, "health", |h| {
        h.state().state.health.latest.is_some()
    });
    assert!(shows(&harness, t(ar, "Gallery size")));
    screenshot(&mut harness, "console-health-ar");
}
