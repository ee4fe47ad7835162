//! What the loopback server tests share: `faceid serve` with its keys, request helpers and
//! the expected bodies. Each test file uses part of it.
#![allow(dead_code)]

use base64::Engine as _;
use faceid_e2e::server::ServerHome;
use serde_json::{Value, json};

pub const EXE: &str = env!("CARGO_BIN_EXE_faceid");

/// A `faceid serve` with a client key, an admin key and a transport key for surface 4.
pub struct Server {
    pub base: String,
    pub key: String,
    pub app_id: String,
    pub admin: String,
    // Field order: the process stops before its home is deleted.
    pub running: Option<faceid_e2e::server::Server>,
    pub home: ServerHome,
}

impl Server {
    /// SIGKILLs the process, keeping its home on disk.
    pub fn kill(&mut self) {
        if let Some(running) = self.running.take() {
            running.kill();
        }
    }

    /// Seals `bytes` for a surface-4 field with this server's transport key.
    pub fn seal(&self, field: &str, bytes: &[u8]) -> String {
        self.home.seal(field, bytes)
    }
}

pub fn start() -> Server {
    start_on(ServerHome::new(EXE.as_ref(), None))
}

/// Serves `home` (new, or taken from a stopped server) with a new client key.
pub fn start_on(home: ServerHome) -> Server {
    start_with(home, &[])
}

pub fn start_with(home: ServerHome, extra_args: &[&str]) -> Server {
    let created = home.issue_key("client");
    let transport_file = home.transport_key();
    let mut args = vec!["--transport-key-file", transport_file.to_str().unwrap()];
    args.extend_from_slice(extra_args);
    let running = home.serve("127.0.0.1:0", &args);
    Server {
        base: running.base.clone(),
        key: created["key"].as_str().unwrap().to_string(),
        app_id: created["app_id"].as_str().unwrap().to_string(),
        admin: home.admin.clone(),
        running: Some(running),
        home,
    }
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn problem_400(errors: &[&str]) -> Value {
    json!({"status":400,"title":"Bad Request","detail":"Invalid request.",
           "type":"https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/400","errors":errors})
}

pub fn problem_404() -> Value {
    json!({"status":404,"title":"Not Found","detail":"Server cannot find the requested resource.",
           "type":"https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/404"})
}

pub async fn gallery_size(client: &reqwest::Client, base: &str) -> u64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("faceid_gallery_subjects "))
        .and_then(|v| v.trim().parse().ok())
        .expect("gallery gauge")
}

pub fn blank_png() -> Vec<u8> {
    let mut png = Vec::new();
    image::RgbImage::from_pixel(320, 240, image::Rgb([180, 180, 180]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

pub fn form(files: &[(&str, &str, Vec<u8>)]) -> reqwest::multipart::Form {
    files.iter().fold(
        reqwest::multipart::Form::new(),
        |form, (field, name, bytes)| {
            form.part(
                field.to_string(),
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string()),
            )
        },
    )
}

/// A card holder from the shared synthetic ID cards, with the clips the video surfaces need.
pub struct CardHolder {
    pub card: Vec<u8>,
    pub selfie: Vec<u8>,
    pub video: Vec<u8>,
    pub short_video: Vec<u8>,
    pub other_video: Vec<u8>,
    pub replay: Vec<u8>,
    pub audio_only: Vec<u8>,
    pub no_frames: Vec<u8>,
}

pub fn card_holder(eval: &std::path::Path) -> CardHolder {
    use faceid_e2e::{DerivedVideo, derived_video, still_video};
    let read = |p: &std::path::Path| std::fs::read(p).unwrap();
    let synthetic = eval.join("idcards/synthetic");
    let selfie_path = synthetic.join("celeba_07207_selfie.jpg");
    CardHolder {
        card: read(&synthetic.join("celeba_07207_card.jpg")),
        selfie: read(&selfie_path),
        video: read(&still_video(&selfie_path, 3.0)),
        short_video: read(&still_video(&selfie_path, 1.0)),
        // Another identity, live and of good quality.
        other_video: read(&still_video(
            &synthetic.join("celeba_07462_selfie.jpg"),
            3.0,
        )),
        replay: read(&eval.join("video/spoof/lestari15_fake.mp4")),
        audio_only: read(&derived_video(DerivedVideo::AudioOnly).unwrap()),
        no_frames: read(&derived_video(DerivedVideo::NoFrames).unwrap()),
    }
}

/// Multipart parts: (field, file name, bytes).
pub type Parts<'a> = Vec<(&'a str, &'a str, Vec<u8>)>;

pub fn surface_1_body(trained: bool, reason: &str) -> Value {
    if trained {
        json!({"trained":"success","EnrollStatus":"APPROVED","DecisionReason":reason})
    } else {
        json!({"trained":"failed","EnrollStatus":"REJECTED","DecisionReason":reason})
    }
}

pub fn rejected(reason: &str) -> Value {
    json!({"score":null,"Decision":"REJECTED","DecisionReason":reason})
}

pub fn uuid_like(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 36 && s.matches('-').count() == 4)
}
