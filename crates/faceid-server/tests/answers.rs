//! The answer tables of the five surfaces and `/v1`, driven through `app()` without a
//! socket (`tower::ServiceExt::oneshot`): each failure class of the use-case layer, and
//! each refusal before it, gets its surface's documented status and body. The engine and
//! the sled gallery are real; only the network is left out, so the whole table runs in
//! well under a second after the models load. (The loopback tests in `faceid-cli/tests`
//! run the same surfaces through the real binary.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use faceid_server::keys::{ApiKeys, Role};
use faceid_server::{AppState, ServerLimits, app};
use serde_json::{Value, json};
use tower::ServiceExt;

fn engine() -> Arc<faceid_core::Engine> {
    static ENGINE: OnceLock<Arc<faceid_core::Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            Arc::new(
                faceid_core::Engine::load(
                    &faceid_core::models::default_dir(),
                    faceid_core::EngineConfig::default(),
                )
                .expect("models: run `faceid models fetch`"),
            )
        })
        .clone()
}

/// A server over a fresh gallery, with a client key and a surface-5 app id.
struct Server {
    router: Router,
    key: String,
    app_id: String,
    _dir: tempfile::TempDir,
}

fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let gallery = Arc::new(
        faceid_gallery::Gallery::open(dir.path(), &faceid_gallery::GalleryKey::generate()).unwrap(),
    );
    let keys = ApiKeys::default();
    let client = keys.issue(Role::Client).unwrap();
    let limits = ServerLimits::default();
    let state = AppState::new(engine(), gallery, keys, &limits);
    Server {
        router: app(state, &limits),
        key: client.key,
        app_id: client.app_id,
        _dir: dir,
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn blank_png() -> Vec<u8> {
    let mut png = Vec::new();
    image::RgbImage::from_pixel(320, 240, image::Rgb([180, 180, 180]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

/// A multipart body of `(field, bytes)` parts.
fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "faceid-answers-boundary";
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Server {
    /// Sends one request from loopback; the status and the JSON body.
    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let mut request = request;
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn json(&self, path: &str, key: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/json");
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        self.send(request.body(Body::from(body.to_string())).unwrap())
            .await
    }

    async fn form(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        parts: &[(&str, &[u8])],
    ) -> (StatusCode, Value) {
        let (content_type, body) = multipart(parts);
        let mut request = Request::post(path).header(header::CONTENT_TYPE, content_type);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::from(body)).unwrap()).await
    }
}

#[tokio::test]
async fn native_api_answers_each_failure_class_with_its_status() {
    let s = server();
    let key = s.key.clone();
    let enroll = |image: Vec<u8>| json!({"id": "alice", "image": b64(&image)});
    let codes = |(status, body): (StatusCode, Value)| (status.as_u16(), body["errors"].clone());
    // Refusals before the use case: the key, the body.
    assert_eq!(
        s.json("/v1/subjects", None, enroll(blank_png())).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.json("/v1/subjects", Some(&key), json!({"id": "alice"}))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    // Input, too large, capture, not found: one total mapping of the class.
    assert_eq!(
        codes(s.json("/v1/subjects", Some(&key), enroll(Vec::new())).await),
        (400, json!(["EMPTY_INPUT"]))
    );
    assert_eq!(
        codes(
            s.json("/v1/subjects", Some(&key), enroll(b"not an image".to_vec()))
                .await
        ),
        (400, json!(["UNSUPPORTED_FORMAT"]))
    );
    assert_eq!(
        codes(
            s.json("/v1/subjects", Some(&key), enroll(blank_png()))
                .await
        ),
        (422, json!(["NO_FACE"]))
    );
    assert_eq!(
        s.json(
            "/v1/subjects",
            Some(&key),
            enroll(vec![0u8; 6 * 1024 * 1024])
        )
        .await
        .0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        codes(
            s.json(
                "/v1/subjects",
                Some(&key),
                json!({"id": "", "image": b64(&blank_png())})
            )
            .await
        ),
        (400, json!(["INVALID_SUBJECT_ID"]))
    );
    assert_eq!(
        s.json(
            "/v1/verify",
            Some(&key),
            json!({"subject_id": "nobody", "media": b64(&blank_png())})
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        codes(
            s.json(
                "/v1/identify",
                Some(&key),
                json!({"media": b64(&blank_png())})
            )
            .await
        ),
        (422, json!(["NO_FACE"]))
    );
}

#[tokio::test]
async fn compatible_surfaces_answer_in_their_own_words() {
    let s = server();
    let key = s.key.clone();
    let blank = blank_png();

    // Surface 1: 200 with the reason, also when refused.
    let (status, body) = s
        .form("/api/enroll?username=alice", &[], &[("cin_file", &blank)])
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"trained":"failed","EnrollStatus":"REJECTED","DecisionReason":"NO_FACE"})
        )
    );
    let (_, body) = s
        .form("/api/enroll?username=alice", &[], &[("cin_file", b"text")])
        .await;
    assert_eq!(body["DecisionReason"], "UNSUPPORTED_FORMAT");
    let (_, body) = s
        .form(
            "/api/authentificate?username=nobody",
            &[],
            &[("auth_video", &blank)],
        )
        .await;
    assert_eq!(
        body,
        json!({"score": null, "Decision": "REJECTED", "DecisionReason": "UNKNOWN_USERNAME"})
    );

    // Surface 2: problem JSON with the clients' messages.
    let (status, body) = s
        .json("/users/alice", Some(&key), json!({"face": b64(&blank)}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["errors"],
        json!(["no face detected in the provided image"])
    );
    let (status, body) = s
        .json(
            "/users/alice",
            Some(&key),
            json!({"face": b64(b"not an image")}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["errors"],
        json!(["face is not a readable JPEG or PNG image"])
    );
    assert_eq!(
        s.json("/users/search", None, json!({"face": b64(&blank)}))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    // Surface 3: always 200, the refusal in error_code.
    let (status, body) = s.form("/check_liveness", &[], &[("image", &blank)]).await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (StatusCode::OK, json!("FACE_NOT_FOUND"))
    );
    let (_, body) = s.form("/check_liveness", &[], &[("image", b"text")]).await;
    assert_eq!(body["error_code"], "INVALID_IMAGE");

    // Surface 4: without a transport key configured, a server fault (5001, 500).
    let (status, body) = s
        .form(
            "/identity/silent_image_verification/stateless",
            &[],
            &[("encrypted_video", b"x"), ("encrypted_image", b"y")],
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::INTERNAL_SERVER_ERROR, json!(5001))
    );

    // Surface 5: numeric codes.
    let (app_id, secret) = (s.app_id.clone(), s.key.clone());
    let auth = [("APP-ID", app_id.as_str()), ("APP-KEY", secret.as_str())];
    let (status, body) = s.form("/api/v1.0/add", &auth, &[("photo", &blank)]).await;
    assert_eq!(
        (status, body["result"].clone()),
        (
            StatusCode::BAD_REQUEST,
            json!({"status": "error", "code": 5, "info": "can not detect face"})
        )
    );
    let (status, body) = s.form("/api/v1.0/add", &auth, &[("photo", b"text")]).await;
    assert_eq!(
        (status, body["result"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(2))
    );
    let (status, body) = s.form("/api/v1.0/add", &[], &[("photo", &blank)]).await;
    assert_eq!(
        (status, body["result"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!(6))
    );
}

/// A real sled gallery with one storage fault; every other call passes through.
#[derive(Debug)]
struct Faulty(faceid_gallery::Gallery, Fault);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// The audit log stops accepting events and reset fails: the faults an admin action or
    /// a decision must not survive unaudited, and whose cause the server logs but never
    /// returns.
    AuditFails,
    /// Listing subjects takes a second, as a busy disk or a distant PostgreSQL would.
    SlowReads,
}

const FAULT: &str = "the audit log is full";

/// Everything the server logs in this test binary (one global subscriber: handlers log from
/// the runtime's and the inference pool's threads).
fn logs() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOGS: OnceLock<&'static std::sync::Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer: &'static std::sync::Mutex<Vec<u8>> =
            Box::leak(Box::new(std::sync::Mutex::new(Vec::new())));
        let writer = move || LogWriter(buffer);
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(writer)
            .init();
        buffer
    })
}

struct LogWriter(&'static std::sync::Mutex<Vec<u8>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

mod faulty {
    //! The roles of [`super::Faulty`]: each passes through but for its fault.
    use faceid_core::Template;
    use faceid_gallery::prelude::*;
    use faceid_gallery::sync::{ChangePage, PushOutcome, RemoteSubject, SyncEvent};
    use faceid_gallery::{
        AuditContext, AuditEvent, AuditVerification, BiRecord, Candidate, Error, NewSubject,
        Result, Subject,
    };

    use super::Fault;

    impl Subjects for super::Faulty {
        fn enroll(
            &self,
            new: &NewSubject,
            templates: &[Template],
            image: Option<&[u8]>,
            ctx: &AuditContext,
        ) -> Result<Subject> {
            self.0.enroll(new, templates, image, ctx)
        }
        fn subject(&self, id: &str) -> Result<Option<Subject>> {
            self.0.subject(id)
        }
        fn subjects(&self) -> Result<Vec<Subject>> {
            if self.1 == Fault::SlowReads {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            self.0.subjects()
        }
        fn len(&self) -> usize {
            self.0.len()
        }
        fn templates(&self, id: &str) -> Result<Vec<Template>> {
            self.0.templates(id)
        }
        fn image(&self, id: &str) -> Result<Option<Vec<u8>>> {
            self.0.image(id)
        }
        fn delete(&self, id: &str, ctx: &AuditContext) -> Result<bool> {
            self.0.delete(id, ctx)
        }
        fn reset(&self, ctx: &AuditContext) -> Result<()> {
            match self.1 {
                Fault::AuditFails => Err(Error::Database(super::FAULT.into())),
                Fault::SlowReads => self.0.reset(ctx),
            }
        }
    }

    impl AuditLog for super::Faulty {
        fn record(
            &self,
            action: &str,
            subject: Option<&str>,
            outcome: &str,
            ctx: &AuditContext,
        ) -> Result<AuditEvent> {
            match self.1 {
                Fault::AuditFails => Err(Error::Database(super::FAULT.into())),
                Fault::SlowReads => self.0.record(action, subject, outcome, ctx),
            }
        }
        fn audit(&self) -> Result<Vec<AuditEvent>> {
            self.0.audit()
        }
        fn verify_audit(&self) -> Result<AuditVerification> {
            self.0.verify_audit()
        }
    }

    impl Search for super::Faulty {
        fn search(&self, probe: &Template, max_subjects: usize) -> Result<Vec<Candidate>> {
            self.0.search(probe, max_subjects)
        }
        fn index_memory_bytes(&self) -> usize {
            self.0.index_memory_bytes()
        }
    }

    impl BiStore for super::Faulty {
        fn record_bi(&self, record: BiRecord) -> Result<BiRecord> {
            self.0.record_bi(record)
        }
        fn bi_records(&self, from: Option<&str>, to: Option<&str>) -> Result<Vec<BiRecord>> {
            self.0.bi_records(from, to)
        }
    }

    impl SyncServer for super::Faulty {
        fn apply_pushed(
            &self,
            device: &str,
            event: &SyncEvent,
            same_person: &(dyn Fn(&[Template], &[Template]) -> bool + Sync),
        ) -> Result<PushOutcome> {
            self.0.apply_pushed(device, event, same_person)
        }
        fn remote_subject(&self, id: &str) -> Result<Option<RemoteSubject>> {
            self.0.remote_subject(id)
        }
        fn changes_since(&self, cursor: u64, limit: usize) -> Result<ChangePage> {
            self.0.changes_since(cursor, limit)
        }
        fn change_head(&self) -> Result<u64> {
            self.0.change_head()
        }
    }
}

#[tokio::test]
async fn actions_that_cannot_be_audited_fail_and_leave_nothing_behind() {
    let logs = logs();
    let dir = tempfile::tempdir().unwrap();
    let gallery =
        faceid_gallery::Gallery::open(dir.path(), &faceid_gallery::GalleryKey::generate()).unwrap();
    let keys = ApiKeys::default();
    let admin = keys.issue(Role::Admin).unwrap();
    let limits = ServerLimits::default();
    let state = AppState::new(
        engine(),
        Arc::new(Faulty(gallery, Fault::AuditFails)),
        keys,
        &limits,
    );
    let keys = state.keys.clone();
    let s = Server {
        router: app(state, &limits),
        key: admin.key.clone(),
        app_id: admin.app_id,
        _dir: dir,
    };
    // Issuing a key that cannot be audited: 500, and the key is withdrawn.
    let before = keys.list().len();
    let (status, body) = s
        .json("/v1/admin/keys", Some(&s.key), json!({"role": "client"}))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.get("key").is_none(), "no secret handed out: {body}");
    assert_eq!(keys.list().len(), before);
    // A decision that cannot be audited is not answered as a decision.
    let (status, _) = s
        .json(
            "/v1/identify",
            Some(&s.key),
            json!({"media": b64(&blank_png())}),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    // Surface 1's reset fails: the client learns that it failed, never the cause.
    let (status, body) = s
        .send(
            Request::post("/api/reset")
                .header("x-api-key", &s.key)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"code": 500, "msg": "ERROR_DETECTED : internal error"})
        )
    );
    // Each of these 500s logged its cause.
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(
        logged.matches(FAULT).count() >= 3,
        "every cause is logged: {logged}"
    );
}

/// The challenge endpoints: a challenge is issued with 2-3 steps; its id is single use,
/// expires and cannot be forged; a recording that performs the steps in another order fails
/// `WRONG_ORDER`, a phone replay fails the challenge it was not recorded for.
#[tokio::test]
async fn challenges_are_signed_single_use_expiring_and_tracked() {
    let mut s = server();
    let key = s.key.clone();
    let key = Some(key.as_str());
    let (status, issued) = s.json("/v1/liveness/challenge", key, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert!(
        (2..=3).contains(&issued["steps"].as_array().unwrap().len()),
        "{issued}"
    );
    let id = issued["challenge_id"].as_str().unwrap().to_string();
    let check = |id: &str, media: &[u8]| json!({"challenge_id": id, "media": b64(media)});

    // Wrong and altered ids are refused before anything is decoded.
    let (status, body) = s
        .json("/v1/liveness/check", key, check("nonsense", &blank_png()))
        .await;
    assert_eq!(
        (status, body["errors"][0].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_CHALLENGE"))
    );
    let altered = format!("{}0", &id[..id.len() - 1]);
    let (status, _) = s
        .json("/v1/liveness/check", key, check(&altered, &blank_png()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The id is spent by its first use, whatever the recording.
    let (status, _) = s
        .json("/v1/liveness/check", key, check(&id, &blank_png()))
        .await;
    assert_ne!(status, StatusCode::CONFLICT);
    let (status, body) = s
        .json("/v1/liveness/check", key, check(&id, &blank_png()))
        .await;
    assert_eq!(
        (status, body["errors"][0].as_str()),
        (StatusCode::CONFLICT, Some("CHALLENGE_USED"))
    );
    // A decision with a spent id is refused too.
    let (status, _) = s
        .json(
            "/v1/verify",
            key,
            json!({"subject_id": "x", "media": b64(&blank_png()), "challenge_id": id}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let Some(eval) =
        faceid_e2e::shared_eval("challenges_are_signed_single_use_expiring_and_tracked")
    else {
        return;
    };
    // A phone replay answers a challenge it was not recorded for: refused.
    let replay = std::fs::read(eval.join("video/spoof/lestari15_fake.mp4")).unwrap();
    let (_, issued) = s.json("/v1/liveness/challenge", key, json!({})).await;
    let (status, verdict) = s
        .json(
            "/v1/liveness/check",
            key,
            check(issued["challenge_id"].as_str().unwrap(), &replay),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{verdict}");
    assert_eq!(verdict["passed"], false, "{verdict}");

    // Turns only, so a clip of orl_s01 turning left then right answers one of the two
    // orders: the other order fails WRONG_ORDER.
    let turns = faceid_core::ChallengeConfig {
        allowed: vec![faceid_core::Step::TurnLeft, faceid_core::Step::TurnRight],
        ..Default::default()
    };
    let mut state = AppState::new(
        engine(),
        Arc::new(
            faceid_gallery::Gallery::open(
                s._dir.path().join("turns").as_path(),
                &faceid_gallery::GalleryKey::generate(),
            )
            .unwrap(),
        ),
        ApiKeys::default(),
        &ServerLimits::default(),
    );
    let client = state.keys.issue(Role::Client).unwrap();
    state.challenges = Arc::new(faceid_server::challenge::ChallengeBook::new(turns));
    s.router = app(state, &ServerLimits::default());
    let key = Some(client.key.as_str());
    let photo = |i: u32| eval.join(format!("faces/orl_s01/{i}.png"));
    let order = [1, 1, 1, 1, 4, 4, 4, 1, 1, 1, 5, 5, 5, 1, 1, 1];
    let (_clip_dir, clip) = faceid_e2e::photo_clip(&order.map(photo), 4);
    let clip = std::fs::read(clip).unwrap();
    let mut wrong = None;
    for _ in 0..20 {
        let (_, issued) = s.json("/v1/liveness/challenge", key, json!({})).await;
        if issued["steps"][0] == "turn_right" {
            wrong = Some(issued["challenge_id"].as_str().unwrap().to_string());
            break;
        }
    }
    let wrong = wrong.expect("a right-first challenge in 20 draws");
    let (status, verdict) = s
        .json("/v1/liveness/check", key, check(&wrong, &clip))
        .await;
    assert_eq!(status, StatusCode::OK, "{verdict}");
    assert_eq!(verdict["passed"], false, "{verdict}");
    assert_eq!(verdict["reason"], "WRONG_ORDER", "{verdict}");

    // An expired id.
    let mut state = AppState::new(
        engine(),
        Arc::new(
            faceid_gallery::Gallery::open(
                s._dir.path().join("late").as_path(),
                &faceid_gallery::GalleryKey::generate(),
            )
            .unwrap(),
        ),
        ApiKeys::default(),
        &ServerLimits::default(),
    );
    let client = state.keys.issue(Role::Client).unwrap();
    state.challenges = Arc::new(faceid_server::challenge::ChallengeBook::new(
        faceid_core::ChallengeConfig {
            total_timeout_ms: 0,
            ..Default::default()
        },
    ));
    s.router = app(state, &ServerLimits::default());
    let key = Some(client.key.as_str());
    let (_, issued) = s.json("/v1/liveness/challenge", key, json!({})).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (status, body) = s
        .json(
            "/v1/liveness/check",
            key,
            check(issued["challenge_id"].as_str().unwrap(), &clip),
        )
        .await;
    assert_eq!(
        (status, body["errors"][0].as_str()),
        (StatusCode::GONE, Some("CHALLENGE_EXPIRED"))
    );
}

/// Gallery calls run off the async executor: on a one-thread runtime, while a slow gallery
/// read holds its request for a second, another request is still answered at once (a
/// handler that called the gallery on the executor would hold the only thread).
#[tokio::test(flavor = "current_thread")]
async fn a_slow_gallery_never_holds_the_executor() {
    let dir = tempfile::tempdir().unwrap();
    let gallery = Arc::new(Faulty(
        faceid_gallery::Gallery::open(dir.path(), &faceid_gallery::GalleryKey::generate()).unwrap(),
        Fault::SlowReads,
    ));
    let keys = ApiKeys::default();
    let operator = keys.issue(Role::Operator).unwrap();
    let limits = ServerLimits::default();
    let router = app(AppState::new(engine(), gallery, keys, &limits), &limits);
    let request = |path: &str, key: Option<&str>| {
        let mut request = Request::get(path);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let mut request = request.body(Body::empty()).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
        request
    };
    let started = std::time::Instant::now();
    let slow = tokio::spawn(
        router
            .clone()
            .oneshot(request("/v1/subjects", Some(&operator.key))),
    );
    // Let the slow request start and reach the gallery.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let quick = tokio::time::timeout(
        std::time::Duration::from_millis(600),
        router.clone().oneshot(request("/v1/openapi.json", None)),
    )
    .await
    .expect("answered while the slow read runs")
    .unwrap();
    assert_eq!(quick.status(), StatusCode::OK);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(700),
        "answered after {:?}: the slow read held the executor",
        started.elapsed()
    );
    let listed = slow.await.unwrap().unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
}
