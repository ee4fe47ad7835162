//! One decision layer: the same five inputs through the five compatible surfaces, the native
//! `/v1` API and the kiosk flow get the same decision and the same reason class everywhere.
//! The server is the real `faceid serve` on loopback; the kiosk is the real flow on the real
//! engine with a camera that plays the image.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use faceid_e2e::server::ServerHome;
use faceid_kiosk_core::camera::{self, CameraSpec};
use faceid_kiosk_core::flow::{FlowKind, Kiosk, KioskOptions, Outcome, Refusal, Screen};
use serde_json::{Value, json};

const EXE: &str = env!("CARGO_BIN_EXE_faceid");

/// What a surface decided, in the words common to all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Accepted: the claimed or a named person, live; or enrolled; or live (liveness only).
    Accepted,
    /// Refused on liveness.
    NotLive,
    /// Refused: more than one person in the picture.
    MultipleFaces,
    /// Refused by the quality gate.
    Quality,
    /// Live and good, but not the person (1:1) / nobody in the gallery (1:N).
    NoMatch,
}

impl Class {
    /// What a liveness-only surface (3) decides for an input of this class.
    fn liveness_only(self) -> Class {
        match self {
            Class::Quality | Class::NoMatch => Class::Accepted,
            other => other,
        }
    }

    /// What the kiosk decides for a still photo held to its camera: it asks for the face in
    /// a random oval and an active challenge, which a photo cannot answer, so it never
    /// accepts one; two faces are refused as such at once.
    fn at_kiosk(self) -> Class {
        match self {
            Class::MultipleFaces => Class::MultipleFaces,
            _ => Class::NotLive,
        }
    }

    /// What an enrollment (surface 5, no claimed identity) decides.
    fn enrollment(self) -> Class {
        match self {
            Class::NoMatch => Class::Accepted,
            other => other,
        }
    }
}

const QUALITY_CODES: [&str; 8] = [
    "FACE_TOO_SMALL",
    "BAD_POSE",
    "EYES_CLOSED",
    "TOO_DARK",
    "TOO_BRIGHT",
    "TOO_BLURRY",
    "LOW_CONTRAST",
    "UNEVEN_LIGHTING",
];

fn reason_class(reason: &str) -> Class {
    match reason {
        "MATCH" | "AUTHENTIFICATION_SUCCESS" => Class::Accepted,
        "LIVENESS_FAILED" => Class::NotLive,
        "MULTIPLE_FACES" => Class::MultipleFaces,
        "NO_MATCH" => Class::NoMatch,
        code if QUALITY_CODES.contains(&code) => Class::Quality,
        other => panic!("unexpected reason {other}"),
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The holder's selfie turned by about 34 degrees (roll): live, but out of the pose limits.
fn tilted(selfie: &Path, dir: &Path) -> PathBuf {
    let out = dir.join("tilted.jpg");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(selfie)
        .args(["-vf", "rotate=0.6:fillcolor=gray", "-q:v", "2"])
        .arg(&out)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    out
}

struct Inputs {
    card: Vec<u8>,
    cases: Vec<(&'static str, Class, PathBuf)>,
    _dir: tempfile::TempDir,
}

fn inputs(eval: &Path) -> Inputs {
    let dir = tempfile::tempdir().unwrap();
    let synthetic = eval.join("idcards/synthetic");
    let selfie = synthetic.join("celeba_07207_selfie.jpg");
    let cases = vec![
        ("live selfie of the holder", Class::Accepted, selfie.clone()),
        (
            "print attack",
            Class::NotLive,
            eval.join("spoof/spoof/nuaa/0001_00_00_01_0.jpg"),
        ),
        (
            "two people",
            Class::MultipleFaces,
            faceid_e2e::sample_path(1),
        ),
        (
            "the holder, head tilted",
            Class::Quality,
            tilted(&selfie, dir.path()),
        ),
        (
            "another live person",
            Class::NoMatch,
            synthetic.join("celeba_07462_selfie.jpg"),
        ),
    ];
    Inputs {
        card: std::fs::read(synthetic.join("celeba_07207_card.jpg")).unwrap(),
        cases,
        _dir: dir,
    }
}

/// The verdict of every server surface on one input.
struct ServerAnswers {
    surface_1: Class,
    surface_2: Class,
    surface_3: Class,
    surface_4: Class,
    v1_verify: Class,
    v1_identify: Class,
}

async fn server_answers(
    client: &reqwest::Client,
    base: &str,
    home: &ServerHome,
    key: &str,
    card: &[u8],
    image: &[u8],
) -> ServerAnswers {
    // Surface 1: authenticate the enrolled holder from the image.
    let form = reqwest::multipart::Form::new().part(
        "auth_video",
        reqwest::multipart::Part::bytes(image.to_vec()).file_name("probe.jpg"),
    );
    let body: Value = client
        .post(format!("{base}/api/authentificate?username=holder"))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let surface_1 = reason_class(body["DecisionReason"].as_str().unwrap());

    // Surface 2: search, at the 1:1 threshold's similarity.
    let r = client
        .post(format!("{base}/users/search"))
        .header("x-api-key", key)
        .json(&json!({"face": b64(image), "threshold": 60.0}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    let message = body["errors"][0].as_str().unwrap_or_default().to_string();
    let surface_2 = match status {
        200 if body["matches"][0]["userId"] == "holder" => Class::Accepted,
        404 => Class::NoMatch,
        400 if message.contains("liveness") => Class::NotLive,
        400 if message.contains("more than one face") => Class::MultipleFaces,
        400 if message.starts_with("face quality too low") => Class::Quality,
        _ => panic!("surface 2: {status} {body}"),
    };

    // Surface 3: liveness only.
    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(image.to_vec()).file_name("probe.jpg"),
    );
    let body: Value = client
        .post(format!("{base}/check_liveness"))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let surface_3 = match (body["error_code"].as_str(), body["probability"].as_f64()) {
        (Some("TOO_MANY_FACES"), _) => Class::MultipleFaces,
        (None, Some(p)) if p >= 0.5 => Class::Accepted,
        (None, Some(_)) => Class::NotLive,
        _ => panic!("surface 3: {body}"),
    };

    // Surface 4: the image against the holder's card, quality checked.
    let form = [
        ("encrypted_video", home.seal("encrypted_video", image)),
        ("encrypted_image", home.seal("encrypted_image", card)),
        ("auto_rotate", "true".to_string()),
        ("check_quality", "true".to_string()),
    ]
    .into_iter()
    .fold(reqwest::multipart::Form::new(), |f, (k, v)| f.text(k, v));
    let body: Value = client
        .post(format!(
            "{base}/identity/silent_image_verification/stateless"
        ))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let surface_4 = match (
        body["code"].as_u64(),
        body["passed"].as_bool(),
        body["liveness_status"].as_str(),
    ) {
        (Some(1000), Some(true), _) => Class::Accepted,
        (Some(1000), Some(false), Some("hack")) => Class::NotLive,
        (Some(1000), Some(false), Some("ok")) => Class::NoMatch,
        (Some(4000), _, _) => Class::MultipleFaces,
        (Some(4004), _, _) => Class::Quality,
        _ => panic!("surface 4: {body}"),
    };

    // The native API, 1:1 and 1:N.
    let v1 = |path: &str, body: Value| {
        let request = client
            .post(format!("{base}/v1/{path}"))
            .header("x-api-key", key)
            .json(&body);
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let native = |(status, body): (u16, Value)| match status {
        200 => reason_class(body["reason"].as_str().unwrap()),
        422 => reason_class(body["errors"][0].as_str().unwrap()),
        _ => panic!("/v1: {status} {body}"),
    };
    let (status, verdict) = v1(
        "verify",
        json!({"subject_id": "holder", "media": b64(image)}),
    )
    .await;
    let v1_verify = native((status, verdict.clone()));
    if v1_verify == Class::Accepted {
        assert_eq!(verdict["accepted"], true, "{verdict}");
    }
    let (status, found) = v1("identify", json!({"media": b64(image)})).await;
    let v1_identify = native((status, found.clone()));
    if v1_identify == Class::Accepted {
        assert_eq!(found["subject_id"], "holder", "{found}");
    }
    ServerAnswers {
        surface_1,
        surface_2,
        surface_3,
        surface_4,
        v1_verify,
        v1_identify,
    }
}

/// Surface 5 enrolls with liveness checked: its enrollment gate's answer.
async fn surface_5(client: &reqwest::Client, base: &str, app: &Value, image: &[u8]) -> Class {
    let form = reqwest::multipart::Form::new().part(
        "photo",
        reqwest::multipart::Part::bytes(image.to_vec()).file_name("photo.jpg"),
    );
    let r = client
        .post(format!("{base}/api/v1.0/add?check_liveness=true"))
        .header("APP-ID", app["app_id"].as_str().unwrap())
        .header("APP-KEY", app["key"].as_str().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    let result = &body["result"];
    match (status, result["code"].as_u64(), result["info"].as_str()) {
        (200, _, _) => Class::Accepted,
        (400, Some(3), _) => Class::MultipleFaces,
        (400, Some(7), Some("liveness check failed")) => Class::NotLive,
        (400, Some(7), Some(info)) if info.starts_with("face quality too low") => Class::Quality,
        _ => panic!("surface 5: {status} {body}"),
    }
}

/// The kiosk's verify flow, with a camera playing `image`: its outcome as a class.
fn kiosk_verify(engine: &Arc<faceid_core::Engine>, card: &[u8], image: &Path) -> Class {
    let dir = tempfile::tempdir().unwrap();
    let gallery = Arc::new(
        faceid_gallery::Gallery::open(
            &dir.path().join("g"),
            &faceid_gallery::GalleryKey::generate(),
        )
        .unwrap(),
    );
    let options = KioskOptions {
        kiosk_id: "kiosk-decisions".into(),
        preset: engine.config().liveness_preset,
        retain_images: false,
        inactivity: Duration::from_secs(60),
        challenge: faceid_core::ChallengeConfig::default(),
        demo: false,
    };
    let mut kiosk = Kiosk::new(engine.clone(), gallery, options);
    let ctx = faceid_gallery::AuditContext {
        actor: "test".into(),
        request_id: "enroll-holder".into(),
    };
    let card_image = engine.decode(card).unwrap();
    kiosk
        .service()
        .enroll_card(
            faceid_gallery::NewSubject {
                id: "holder".into(),
                display_name: None,
                source: None,
                ..Default::default()
            },
            &card_image,
            &ctx,
        )
        .unwrap();
    let mut now = Instant::now();
    kiosk.start(FlowKind::Verify, now);
    kiosk.claim("holder", now);
    let spec = CameraSpec::parse(&format!("file:{}", image.display())).unwrap();
    let mut source = camera::open(&spec).unwrap();
    for seq in 1..=60 {
        let frame = Arc::new(source.next_frame().unwrap().image);
        now += Duration::from_millis(100);
        kiosk.on_frame(seq, &frame, now);
        if !kiosk.wants_frames() {
            break;
        }
    }
    match kiosk.screen() {
        Screen::Result { outcome } => match outcome {
            Outcome::Verified { .. } => Class::Accepted,
            Outcome::NotVerified => Class::NoMatch,
            Outcome::Refused {
                reason: Refusal::NotLive,
            } => Class::NotLive,
            Outcome::Refused {
                reason: Refusal::OnePerson,
            } => Class::MultipleFaces,
            Outcome::Refused {
                reason: Refusal::PoorCapture,
            } => Class::Quality,
            other => panic!("kiosk: {other:?}"),
        },
        // A still photo cannot fill a random oval and answer a challenge: the kiosk keeps
        // guiding (or draws new challenges) and never decides for it.
        Screen::Selfie { .. } => Class::NotLive,
        other => panic!("kiosk: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_surface_and_the_kiosk_decide_alike() {
    let Some(eval) = faceid_e2e::shared_eval("every_surface_and_the_kiosk_decide_alike") else {
        return;
    };
    let inputs = inputs(&eval);
    let home = ServerHome::new(EXE.as_ref(), None);
    let key = home.create_key("client");
    let app = home.issue_key("client");
    let transport = home.transport_key();
    let server = home.serve(
        "127.0.0.1:0",
        &["--transport-key-file", transport.to_str().unwrap()],
    );
    let base = server.base.clone();
    let client = faceid_e2e::http();

    // The holder is enrolled from the ID card (surface 1).
    let form = reqwest::multipart::Form::new().part(
        "cin_file",
        reqwest::multipart::Part::bytes(inputs.card.clone()).file_name("card.jpg"),
    );
    let body: Value = client
        .post(format!("{base}/api/enroll?username=holder"))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["DecisionReason"], "ENROLLED_AS_USER", "{body}");

    let engine = Arc::new(
        faceid_core::Engine::load(
            &faceid_core::models::default_dir(),
            faceid_core::EngineConfig::default(),
        )
        .unwrap(),
    );
    let mut table = Vec::new();
    for (name, expected, path) in &inputs.cases {
        let image = std::fs::read(path).unwrap();
        let got = server_answers(&client, &base, &home, &key, &inputs.card, &image).await;
        let kiosk = {
            let (engine, card, path) = (engine.clone(), inputs.card.clone(), path.clone());
            tokio::task::spawn_blocking(move || kiosk_verify(&engine, &card, &path))
                .await
                .unwrap()
        };
        let rows = [
            ("surface 1 authenticate", got.surface_1, *expected),
            ("surface 2 search", got.surface_2, *expected),
            (
                "surface 3 check_liveness",
                got.surface_3,
                expected.liveness_only(),
            ),
            ("surface 4 photo vs video", got.surface_4, *expected),
            ("/v1/verify", got.v1_verify, *expected),
            ("/v1/identify", got.v1_identify, *expected),
            ("kiosk verify flow", kiosk, expected.at_kiosk()),
        ];
        for (surface, got, want) in rows {
            println!("{name:28} {surface:26} {got:?}");
            table.push((*name, surface, got, want));
        }
    }
    // Surface 5 enrolls: run last, so its new subjects do not change the 1:N answers above.
    for (name, expected, path) in &inputs.cases {
        let image = std::fs::read(path).unwrap();
        let got = surface_5(&client, &base, &app, &image).await;
        println!("{name:28} {:26} {got:?}", "surface 5 enrollment");
        table.push((*name, "surface 5 enrollment", got, expected.enrollment()));
    }
    let wrong: Vec<_> = table
        .iter()
        .filter(|(_, _, got, want)| got != want)
        .collect();
    assert!(wrong.is_empty(), "decisions that differ: {wrong:#?}");
}
