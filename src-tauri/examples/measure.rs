//! Kiosk figures for BENCHMARKS.md: start-up time, preview frame rate, time from the start of
//! a selfie (face already in frame) to the decision, and resident memory, on the real binary
//! under Xvfb driven through WebDriver.
//!
//! `cargo run --release -p faceid-kiosk --example measure -- [CLIP] [RUNS]`
//! (CLIP defaults to the demo clip `models/demo/selfie.mp4`; the kiosk binary must be built.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use faceid_e2e::webdriver::{Kiosk, harness};

fn rss_mib() -> f64 {
    let out = std::process::Command::new("pgrep")
        .args(["-n", "faceid-kiosk"])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let clip = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| faceid_core::models::default_dir().join("demo/selfie.mp4"));
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(3);
    let binary = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/faceid-kiosk");
    let h = harness();
    println!(
        "| run | start-up to start screen | preview frames/s | selfie start to decision | resident memory |"
    );
    println!("|---|---|---|---|---|");
    for run in 1..=runs {
        let data = tempfile::tempdir().unwrap();
        let keys = tempfile::tempdir().unwrap();
        let args: Vec<String> = [
            "--data",
            data.path().to_str().unwrap(),
            "--key-file",
            keys.path().join("g.key").to_str().unwrap(),
            "--camera",
            &format!("video:{}", clip.display()),
            "--lang",
            "en",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let began = Instant::now();
        let kiosk = Kiosk::launch(&h, &binary, &args).await;
        kiosk.wait_screen("start", Duration::from_secs(60)).await;
        let startup = began.elapsed();
        kiosk
            .js("window.__frames = 0; new MutationObserver(() => window.__frames++).observe(document.getElementById('preview'), {attributes: true, attributeFilter: ['src']}); return 0")
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let frames = kiosk
            .js("return window.__frames")
            .await
            .as_f64()
            .unwrap_or(0.0);
        let clicked = Instant::now();
        kiosk.click("#go-identify").await;
        kiosk.wait_screen("result", Duration::from_secs(30)).await;
        let decision = clicked.elapsed();
        let outcome = kiosk
            .js("return document.getElementById('result-title').dataset.outcome")
            .await;
        let rss = rss_mib();
        println!(
            "| {run} | {:.2} s | {:.1} | {:.0} ms ({}) | {:.0} MiB |",
            startup.as_secs_f64(),
            frames / 5.0,
            decision.as_secs_f64() * 1000.0,
            outcome.as_str().unwrap_or("?"),
            rss
        );
        kiosk.quit().await;
    }
}
