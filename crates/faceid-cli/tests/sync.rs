//! Kiosk-to-server sync with real processes on loopback: `faceid serve` (HTTPS with a
//! test CA, or PostgreSQL behind it) and headless kiosks, each a sled gallery enrolled
//! directly and synced by `faceid sync`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use faceid_gallery::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use faceid_core::Template;
use faceid_e2e::server::{ServerHome, free_port};
use faceid_e2e::{engine, shared_eval};
use faceid_gallery::{AuditContext, Gallery, GalleryKey, GalleryOptions, NewSubject};
use serde_json::Value;

const EXE: &str = env!("CARGO_BIN_EXE_faceid");

/// Test TLS material: a CA and a server certificate for 127.0.0.1 and localhost.
struct Tls {
    dir: tempfile::TempDir,
}

impl Tls {
    fn new() -> Tls {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        Tls { dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

/// An HTTP client trusting the test CA (the sync client's own TLS setup).
fn http(tls: Option<&Tls>) -> reqwest::Client {
    let pem = tls.map(|t| std::fs::read(t.ca()).unwrap());
    faceid_sync::https_client(pem.as_deref(), Duration::from_secs(60)).unwrap()
}

/// Runs a request on the tests' one runtime and returns its status and JSON body.
fn call(request: reqwest::RequestBuilder) -> (u16, Value) {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    });
    runtime.block_on(async {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
}

fn get_json(client: &reqwest::Client, url: &str, key: &str) -> Value {
    let (status, body) = call(client.get(url).header("x-api-key", key));
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}

/// Issues a device token through `faceid devices issue` and writes it to a file.
fn issue_device(
    server: &str,
    home: &ServerHome,
    tls: Option<&Tls>,
    name: &str,
    dir: &Path,
) -> PathBuf {
    let mut command = Command::new(EXE);
    command
        .args(["devices", "--server", server])
        .env("FACEID_ADMIN_KEY", &home.admin);
    if let Some(tls) = tls {
        command.arg("--ca").arg(tls.ca());
    }
    let out = command.args(["issue", name]).output().unwrap();
    assert!(
        out.status.success(),
        "devices issue: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let issued: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(issued["app_id"], name);
    assert_eq!(issued["role"], "device");
    let file = dir.join(format!("{name}.token"));
    std::fs::write(&file, issued["key"].as_str().unwrap()).unwrap();
    file
}

/// A headless kiosk: a sled gallery with an outbox, opened only while the test enrolls or
/// inspects (sled allows one process per gallery), synced by `faceid sync`.
struct Kiosk {
    name: String,
    dir: tempfile::TempDir,
    key_file: PathBuf,
    token: PathBuf,
}

impl Kiosk {
    fn new(name: &str, key_dir: &Path, token: PathBuf) -> Kiosk {
        let key_file = key_dir.join(format!("{name}.key"));
        GalleryKey::generate().write_new(&key_file).unwrap();
        Kiosk {
            name: name.into(),
            dir: tempfile::tempdir().unwrap(),
            key_file,
            token,
        }
    }

    fn gallery(&self) -> Gallery {
        let key = GalleryKey::from_file(&self.key_file, self.dir.path()).unwrap();
        Gallery::open_with(self.dir.path(), &key, GalleryOptions { outbox: true }).unwrap()
    }

    fn ctx(&self) -> AuditContext {
        AuditContext {
            actor: format!("operator@{}", self.name),
            request_id: "test".into(),
        }
    }

    fn sync_command(&self, server: &str, ca: Option<&Path>) -> Command {
        let mut command = Command::new(EXE);
        command
            .args(["--json", "sync", "--server", server, "--gallery"])
            .arg(self.dir.path())
            .arg("--key-file")
            .arg(&self.key_file)
            .arg("--token-file")
            .arg(&self.token);
        if let Some(ca) = ca {
            command.arg("--ca").arg(ca);
        }
        command
    }

    /// One `faceid sync --once`; the JSON it printed, or its error output.
    fn sync_once(&self, server: &str, ca: Option<&Path>) -> Result<Value, String> {
        let out = self
            .sync_command(server, ca)
            .arg("--once")
            .output()
            .unwrap();
        if out.status.success() {
            Ok(serde_json::from_slice(&out.stdout).unwrap())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

fn template_of(path: &Path) -> Template {
    let image = engine().decode(&std::fs::read(path).unwrap()).unwrap();
    engine().analyze(&image).unwrap().template
}

fn enroll(gallery: &Gallery, ctx: &AuditContext, id: &str, photo: &Path) {
    gallery
        .enroll(
            &NewSubject {
                id: id.into(),
                display_name: Some(id.to_uppercase()),
                source: None,
                ..Default::default()
            },
            &[template_of(photo)],
            None,
            ctx,
        )
        .unwrap();
}

/// (id, origin) of every subject, sorted.
fn holdings(gallery: &Gallery) -> Vec<(String, String)> {
    gallery
        .subjects()
        .unwrap()
        .into_iter()
        .map(|s| (s.id, s.origin))
        .collect()
}

fn server_subjects(client: &reqwest::Client, server: &str, admin: &str) -> Vec<String> {
    let list = get_json(client, &format!("{server}/v1/subjects?limit=1000"), admin);
    let mut ids: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("no subject list in {list}"))
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn two_offline_kiosks_converge_share_erasures_and_report_conflicts() {
    let Some(eval) = shared_eval("two_offline_kiosks_converge_share_erasures_and_report_conflicts")
    else {
        return;
    };
    let faces = eval.join("faces");
    let tls = Tls::new();
    let home = ServerHome::new(EXE.as_ref(), None);
    let listen = format!("127.0.0.1:{}", free_port());
    let tls_args = [
        "--tls-cert",
        tls.dir.path().join("cert.pem").to_str().unwrap(),
        "--tls-key",
        tls.dir.path().join("key.pem").to_str().unwrap(),
    ]
    .map(str::to_string);
    let tls_args: Vec<&str> = tls_args.iter().map(String::as_str).collect();
    let keys = tempfile::tempdir().unwrap();

    // Tokens are issued while the server is up; then it goes down.
    let server = home.serve(&listen, &tls_args);
    let base = server.base.clone();
    assert!(base.starts_with("https://"), "{base}");
    let token_a = issue_device(&base, &home, Some(&tls), "branch-a", keys.path());
    let token_b = issue_device(&base, &home, Some(&tls), "branch-b", keys.path());
    drop(server);

    let a = Kiosk::new("branch-a", keys.path(), token_a);
    let b = Kiosk::new("branch-b", keys.path(), token_b);
    {
        let ga = a.gallery();
        enroll(&ga, &a.ctx(), "p-obama", &faces.join("Barack_Obama/10.jpg"));
        enroll(&ga, &a.ctx(), "p-musk", &faces.join("Elon_Musk/1.jpg"));
        ga.record("verify", Some("p-obama"), "approved", &a.ctx())
            .unwrap();
        let gb = b.gallery();
        enroll(&gb, &b.ctx(), "p-bezos", &faces.join("Jeff_Bezos/1.jpg"));
        // The same person enrolled at both kiosks under one id...
        enroll(&gb, &b.ctx(), "p-musk", &faces.join("Elon_Musk/2.jpg"));
        // ...and an id that branch A gives to someone else.
        enroll(
            &gb,
            &b.ctx(),
            "p-obama",
            &faces.join("George_Clooney/1.jpg"),
        );
        assert_eq!(gb.pending(), 3);
    }

    // Offline: the sync fails, nothing is lost, the error is kept for the operator.
    let down = a.sync_once(&base, Some(&tls.ca())).unwrap_err();
    assert!(down.contains("unreachable"), "{down}");
    {
        let status = a.gallery().sync_status().unwrap();
        assert_eq!(status.pending, 3, "{status:?}");
        assert!(status.last_error.is_some_and(|e| e.contains("unreachable")));
    }

    let server = home.serve(&listen, &tls_args);
    // A client that does not trust the server's authority does not talk to it.
    let untrusted = a.sync_once(&base, None).unwrap_err();
    assert!(
        untrusted.to_lowercase().contains("certificate"),
        "{untrusted}"
    );
    // A first, then B (which loses p-obama), then A again to pull B's enrollment.
    let first = a.sync_once(&base, Some(&tls.ca())).unwrap();
    assert_eq!(first["cycle"]["push"]["pushed"], 3, "{first}");
    let second = b.sync_once(&base, Some(&tls.ca())).unwrap();
    assert_eq!(second["cycle"]["push"]["pushed"], 3, "{second}");
    assert_eq!(second["cycle"]["push"]["conflicts"], 1, "{second}");
    assert_eq!(second["status"]["conflicts"], 1, "{second}");
    a.sync_once(&base, Some(&tls.ca())).unwrap();
    b.sync_once(&base, Some(&tls.ca())).unwrap();

    let client = http(Some(&tls));
    let expected = vec!["p-bezos", "p-musk", "p-obama"];
    assert_eq!(server_subjects(&client, &base, &home.admin), expected);
    let (held_a, held_b) = (holdings(&a.gallery()), holdings(&b.gallery()));
    assert_eq!(held_a, held_b, "the kiosks hold different galleries");
    assert_eq!(
        held_a.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        expected
    );

    // The kiosk that lost sees the conflict; its p-obama is now the server's (Obama), and
    // offline 1:N on either kiosk finds Obama under p-obama.
    {
        let gb = b.gallery();
        let conflicts = gb.conflicts().unwrap();
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        assert_eq!(conflicts[0].subject.as_deref(), Some("p-obama"));
        assert!(
            conflicts[0].message.contains("different person"),
            "{conflicts:?}"
        );
        let probe = template_of(&faces.join("Barack_Obama/12.jpg"));
        let hits = gb.search(&probe, 1).unwrap();
        assert_eq!(hits[0].subject, "p-obama");
        let decision = engine().identify_cosines(
            hits.iter().map(|c| (c.subject.clone(), c.cosine)).collect(),
            gb.len(),
        );
        assert!(
            matches!(&decision, faceid_core::Identification::Match { subject, .. } if subject == "p-obama"),
            "{decision:?}"
        );
        let audit = gb.audit().unwrap();
        assert!(
            audit
                .iter()
                .any(|e| e.action == "sync_conflict" && e.subject.as_deref() == Some("p-obama"))
        );
        // The operator gives Clooney's enrollment a new id; it syncs like any other.
        let resolved = gb
            .resolve_conflict(
                &conflicts[0].event_id,
                &faceid_gallery::Resolution::Reenroll {
                    id: "p-clooney".into(),
                },
                &b.ctx(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(resolved.id, "p-clooney");
        assert!(gb.conflicts().unwrap().is_empty());
    }
    b.sync_once(&base, Some(&tls.ca())).unwrap();
    a.sync_once(&base, Some(&tls.ca())).unwrap();
    assert!(
        holdings(&a.gallery())
            .iter()
            .any(|(id, _)| id == "p-clooney")
    );

    // An erasure made through the server reaches both kiosks.
    let (erased, _) = call(
        client
            .delete(format!("{base}/v1/subjects/p-bezos"))
            .header("x-api-key", &home.admin),
    );
    assert_eq!(erased, 204);
    a.sync_once(&base, Some(&tls.ca())).unwrap();
    b.sync_once(&base, Some(&tls.ca())).unwrap();
    for kiosk in [&a, &b] {
        let gallery = kiosk.gallery();
        assert!(
            gallery.subject("p-bezos").unwrap().is_none(),
            "{}",
            kiosk.name
        );
        assert!(
            gallery
                .audit()
                .unwrap()
                .iter()
                .any(|e| e.action == "sync_delete")
        );
        assert!(gallery.verify_audit().unwrap().valid);
    }
    assert_eq!(holdings(&a.gallery()), holdings(&b.gallery()));

    // The server's audit has the kiosks' decisions, and the admin API their sync state.
    let audit = get_json(&client, &format!("{base}/v1/audit?limit=1000"), &home.admin);
    let events = audit["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["action"] == "verify"
            && e["actor"].as_str().unwrap().starts_with("device:branch-a/"))
    );
    assert_eq!(audit["chain_valid"], true, "{audit}");
    let devices = get_json(&client, &format!("{base}/v1/admin/devices"), &home.admin);
    let head = devices["change_head"].as_u64().unwrap();
    for device in devices["devices"].as_array().unwrap() {
        assert!(device["last_push_ms"].is_u64(), "{device}");
        assert_eq!(device["cursor"].as_u64(), Some(head), "{device}");
    }

    // A revoked device is refused, and says so.
    let revoked = Command::new(EXE)
        .args(["devices", "--server", &base, "--ca"])
        .arg(tls.ca())
        .args(["revoke", "branch-a"])
        .env("FACEID_ADMIN_KEY", &home.admin)
        .status()
        .unwrap();
    assert!(revoked.success());
    let refused = a.sync_once(&base, Some(&tls.ca())).unwrap_err();
    assert!(refused.contains("refused this device"), "{refused}");
    drop(server);
}

/// Templates that are not faces but are valid templates: enough for exactly-once checks.
fn synthetic_template(seed: u64) -> Template {
    let mut rng = fastrand::Rng::with_seed(seed);
    let vector = (0..faceid_core::template::TEMPLATE_DIM)
        .map(|_| rng.f32() - 0.5)
        .collect();
    Template::new(engine().model_id(), vector).unwrap()
}

#[test]
fn a_kiosk_killed_mid_push_neither_loses_nor_repeats_an_event() {
    const ENROLLMENTS: usize = 240;
    const DECISIONS: usize = 60;
    let home = ServerHome::new(EXE.as_ref(), None);
    let server = home.serve("127.0.0.1:0", &[]);
    let keys = tempfile::tempdir().unwrap();
    let token = issue_device(&server.base, &home, None, "field-1", keys.path());
    let kiosk = Kiosk::new("field-1", keys.path(), token);
    {
        let gallery = kiosk.gallery();
        for i in 0..ENROLLMENTS {
            gallery
                .enroll(
                    &NewSubject {
                        id: format!("s-{i:04}"),
                        ..NewSubject::default()
                    },
                    &[synthetic_template(i as u64)],
                    None,
                    &kiosk.ctx(),
                )
                .unwrap();
            if i % 4 == 0 {
                gallery
                    .record(
                        "verify",
                        Some(&format!("s-{i:04}")),
                        "approved",
                        &kiosk.ctx(),
                    )
                    .unwrap();
            }
        }
        assert_eq!(gallery.pending(), ENROLLMENTS + DECISIONS);
    }
    let client = http(None);
    let pushed = || -> u64 {
        let devices = get_json(
            &client,
            &format!("{}/v1/admin/devices", server.base),
            &home.admin,
        );
        devices["devices"][0]["events_pushed"].as_u64().unwrap_or(0)
    };
    // SIGKILL the syncing kiosk at several points of its push, restarting it each time.
    let mut kills = 0;
    for threshold in [20u64, 90, 160] {
        let mut child = kiosk
            .sync_command(&server.base, None)
            .args(["--batch", "10", "--interval-secs", "0.2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while pushed() < threshold && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
    }
    assert_eq!(kills, 3);
    let after_kills = kiosk.gallery().pending();
    assert!(
        after_kills > 0 && after_kills < ENROLLMENTS + DECISIONS,
        "the kills did not land mid-push ({after_kills} pending)"
    );
    // Restarted once more, it finishes.
    let done = kiosk.sync_once(&server.base, None).unwrap();
    assert_eq!(done["status"]["pending"], 0, "{done}");
    assert_eq!(done["status"]["conflicts"], 0, "{done}");

    let ids = server_subjects(&client, &server.base, &home.admin);
    assert_eq!(ids.len(), ENROLLMENTS, "lost or extra subjects");
    let audit = get_json(
        &client,
        &format!("{}/v1/audit?limit=1000", server.base),
        &home.admin,
    );
    let events = audit["events"].as_array().unwrap();
    let enrolls = events
        .iter()
        .filter(|e| e["action"] == "enroll" && e["actor"] == "device:field-1")
        .count();
    let decisions = events.iter().filter(|e| e["action"] == "verify").count();
    assert_eq!(
        enrolls, ENROLLMENTS,
        "enrollments applied more or less than once"
    );
    assert_eq!(
        decisions, DECISIONS,
        "decisions applied more or less than once"
    );
    assert_eq!(audit["chain_valid"], true);
    println!(
        "killed 3 times mid-push ({after_kills} events still pending after the kills); the server answered {} pushed events for {} distinct ones and holds {} subjects, {enrolls} enroll and {decisions} verify events",
        pushed(),
        ENROLLMENTS + DECISIONS,
        ids.len()
    );
}

#[test]
fn two_servers_on_one_postgres_identify_each_others_enrollments_within_a_second() {
    let Some(eval) =
        shared_eval("two_servers_on_one_postgres_identify_each_others_enrollments_within_a_second")
    else {
        return;
    };
    let faces = eval.join("faces");
    let pg = faceid_e2e::postgres::Postgres::start();
    let first = ServerHome::new(EXE.as_ref(), None);
    let second = ServerHome::new(EXE.as_ref(), Some(&first.key_file));
    let pg_args = ["--postgres", pg.url.as_str()];
    let one = first.serve("127.0.0.1:0", &pg_args);
    let two = second.serve("127.0.0.1:0", &pg_args);
    let client = http(None);
    use base64::Engine as _;
    let b64 = |path: &Path| {
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
    };

    let people = [
        ("p-obama", "Barack_Obama/10.jpg", "Barack_Obama/12.jpg"),
        ("p-musk", "Elon_Musk/1.jpg", "Elon_Musk/2.jpg"),
        ("p-bezos", "Jeff_Bezos/1.jpg", "Jeff_Bezos/2.jpg"),
    ];
    let mut delays = Vec::new();
    for (id, enroll_photo, probe_photo) in people {
        let (status, body) = call(
            client
                .post(format!("{}/v1/subjects", one.base))
                .header("x-api-key", &first.admin)
                .json(&serde_json::json!({"id": id, "image": b64(&faces.join(enroll_photo))})),
        );
        assert_eq!(status, 201, "{body}");
        let acknowledged = Instant::now();
        let probe = serde_json::json!({"media": b64(&faces.join(probe_photo))});
        loop {
            let (status, answer) = call(
                client
                    .post(format!("{}/v1/identify", two.base))
                    .header("x-api-key", &second.admin)
                    .json(&probe),
            );
            assert_eq!(status, 200, "{answer}");
            if answer["subject_id"] == id {
                delays.push(acknowledged.elapsed());
                break;
            }
            assert!(
                acknowledged.elapsed() < Duration::from_secs(1),
                "{id} enrolled through one server is not identifiable through the other after 1 s: {answer}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    println!("enrollment on server 1 -> identified on server 2 after {delays:?}");

    // An erasure through the second reaches the first's index too.
    let (erased, _) = call(
        client
            .delete(format!("{}/v1/subjects/p-musk", two.base))
            .header("x-api-key", &second.admin),
    );
    assert_eq!(erased, 204);
    let started = Instant::now();
    loop {
        let status = get_json(
            &client,
            &format!("{}/v1/admin/status", one.base),
            &first.admin,
        );
        if status["gallery_size"] == 2 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(1), "{status}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Both wrote to one audit chain, which holds.
    let audit = get_json(
        &client,
        &format!("{}/v1/audit?limit=1000", one.base),
        &first.admin,
    );
    assert_eq!(audit["chain_valid"], true, "{audit}");
}
