//! The `faceid` binary as a user runs it, and the evaluation floors on the shared set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use faceid_core::models;

fn faceid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faceid"))
        .args(args)
        .output()
        .expect("run faceid")
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn sample(n: u32) -> String {
    models::default_dir()
        .join(format!("samples/sample{n}.jpg"))
        .display()
        .to_string()
}

#[test]
fn models_verify_reports_every_artefact_ok() {
    let out = faceid(&["models", "verify", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = json(&out);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 18);
    assert!(list.iter().all(|a| a["state"] == "ok"));
}

#[test]
fn models_verify_names_the_fetch_command_when_files_are_missing() {
    let empty = tempfile::tempdir().unwrap();
    let out = faceid(&[
        "models",
        "verify",
        "--models",
        empty.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("faceid models fetch"));
    let out = faceid(&[
        "detect",
        &sample(1),
        "--json",
        "--models",
        empty.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert_eq!(json(&out)["error"]["code"], "MODEL_MISSING");
}

/// `faceid card` reads both the portrait and the machine-readable zone of a passport page,
/// and only the zone on the back of an ID card (no portrait there, and no error).
#[test]
fn card_reads_the_portrait_and_the_machine_readable_zone() {
    let Some(root) =
        faceid_e2e::shared_eval("card_reads_the_portrait_and_the_machine_readable_zone")
    else {
        return;
    };
    let specimen = |f: &str| root.join("idcards/specimen").join(f).display().to_string();
    let out = faceid(&["card", &specimen("PassportEye__passport-td3.jpg"), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    assert!(r["portrait"]["bbox"].is_object(), "{r}");
    let mrz = &r["mrz"];
    assert_eq!(mrz["format"], "TD3", "{r}");
    assert_eq!(mrz["valid"], true, "{r}");
    assert_eq!(mrz["fields"]["document_number"], "L898902C3");
    assert_eq!(mrz["fields"]["surname"], "ERIKSSON");
    assert_eq!(mrz["fields"]["birth_date"], "1974-08-12");
    assert_eq!(mrz["checks"]["composite"], true);

    let out = faceid(&["card", &specimen("PassportEye__53_id-d.jpg"), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    assert!(r["portrait"].is_null(), "{r}");
    assert_eq!(r["mrz"]["format"], "TD1", "{r}");
    assert_eq!(r["mrz"]["fields"]["document_number"], "T22000129");
    assert_eq!(r["mrz"]["valid"], true);
}

#[test]
fn detect_lists_faces_largest_first() {
    let out = faceid(&["detect", &sample(5), "--json"]);
    assert!(out.status.success());
    let report = json(&out);
    let faces = report["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 5);
    assert_eq!(faces[0]["landmarks"].as_array().unwrap().len(), 5);
}

#[test]
fn enroll_from_a_card_then_verify_the_template() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("her.fidt");
    // sample1 has three people: enrollment from it must refuse.
    let out = faceid(&[
        "enroll",
        &sample(1),
        "-o",
        template.to_str().unwrap(),
        "--json",
    ]);
    assert!(!out.status.success());
    assert_eq!(json(&out)["error"]["code"], "MULTIPLE_FACES");
    assert!(!template.exists(), "a refused enrollment writes nothing");
    // As a document, the largest portrait is taken.
    let out = faceid(&[
        "enroll",
        "--card",
        &sample(1),
        "-o",
        template.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(template.exists());
    // The same woman is in sample3, but so are two others: verify picks the one face only.
    let out = faceid(&["verify", template.to_str().unwrap(), &sample(3), "--json"]);
    assert_eq!(json(&out)["error"]["code"], "MULTIPLE_FACES");
    let out = faceid(&[
        "verify",
        template.to_str().unwrap(),
        template.to_str().unwrap(),
        "--json",
    ]);
    let report = json(&out);
    assert_eq!(report["accepted"], true);
    assert!(report["comparison"]["score"].as_f64().unwrap() > 0.99);
}

#[test]
fn bad_input_gets_a_code_and_a_failure_exit() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("half.jpg");
    let bytes = std::fs::read(sample(2)).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let out = faceid(&["detect", truncated.to_str().unwrap(), "--json"]);
    assert!(!out.status.success());
    assert_eq!(json(&out)["error"]["code"], "CORRUPT_IMAGE");
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, "just text").unwrap();
    let out = faceid(&["quality", text.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("UNSUPPORTED_FORMAT"));
}

#[test]
fn liveness_accumulates_the_frames_given() {
    let out = faceid(&["liveness", &sample(1), &sample(2), "--json"]);
    let report = json(&out);
    // Group photos are refused frame by frame (several people), so nothing accumulates.
    assert_eq!(report["files"].as_array().unwrap().len(), 2);
    assert_eq!(report["files"][0]["error"], "MULTIPLE_FACES");
    assert!(report["live"].is_null());
    assert_eq!(report["reason"], "MULTIPLE_FACES");
}

#[test]
fn eval_reads_labelled_challenge_recordings() {
    let Some(eval) = faceid_e2e::shared_eval("eval_reads_labelled_challenge_recordings") else {
        return;
    };
    // The documented layout: pad/live/<subject>/<clip>, pad/attack/<species>/<clip>, a
    // sidecar <clip>.json with the challenge that was shown.
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("pad/live/lestari15");
    let attack = dir.path().join("pad/attack/replay");
    std::fs::create_dir_all(&live).unwrap();
    std::fs::create_dir_all(&attack).unwrap();
    std::fs::copy(
        eval.join("video/live/lestari15_real.mp4"),
        live.join("plain.mp4"),
    )
    .unwrap();
    std::fs::copy(
        eval.join("video/live/lestari15_real.mp4"),
        live.join("asked.mp4"),
    )
    .unwrap();
    std::fs::copy(
        eval.join("video/spoof/lestari15_fake.mp4"),
        attack.join("replay.mp4"),
    )
    .unwrap();
    let challenge = faceid(&["challenge", "new", "--json"]).stdout;
    std::fs::write(live.join("asked.mp4.json"), &challenge).unwrap();
    std::fs::write(attack.join("replay.mp4.json"), &challenge).unwrap();
    let out = faceid(&[
        "eval",
        dir.path().to_str().unwrap(),
        "--pad-sims",
        "0",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pad = json(&out)["pad"].clone();
    let verdict = |subject: &str| {
        pad["sequences"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subject"] == subject)
            .map(|s| s["verdicts"]["REGULAR"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no {subject} in {pad}"))
    };
    // Without a challenge the fused passive + planarity rule; a clip that did not perform
    // the challenge shown times out; the replay is refused.
    assert_eq!(verdict("plain.mp4"), "LIVE");
    assert_eq!(verdict("asked.mp4"), "TIMEOUT");
    assert_ne!(verdict("replay.mp4"), "LIVE");
    let replay = &pad["species"]["replay"]["REGULAR"];
    assert_eq!(
        (replay["attacks"].as_u64(), replay["apcer"].as_f64()),
        (Some(1), Some(0.0))
    );
    assert_eq!(pad["bona_fide"]["pad:lestari15"]["REGULAR"]["bona_fide"], 2);
}

#[test]
fn liveness_and_challenges_on_videos() {
    let Some(eval) = faceid_e2e::shared_eval("liveness_and_challenges_on_videos") else {
        return;
    };
    let clip = |name: &str| eval.join(name).to_str().unwrap().to_string();
    // The fused rule on a live webcam clip and on a phone replay.
    let live = json(&faceid(&[
        "liveness",
        &clip("video/live/lestari15_real.mp4"),
        "--json",
    ]));
    assert_eq!(live["live"], true, "{live}");
    assert!(live["cues"]["passive"].as_f64().unwrap() < 0.5, "{live}");
    let replay = json(&faceid(&[
        "liveness",
        &clip("video/spoof/lestari15_fake.mp4"),
        "--json",
    ]));
    assert_eq!(
        (replay["live"].clone(), replay["reason"].clone()),
        (
            serde_json::json!(false),
            serde_json::json!("SPOOF_SUSPECTED")
        ),
        "{replay}"
    );
    // A challenge drawn, saved, and checked against a recording made for no challenge.
    let dir = tempfile::tempdir().unwrap();
    let drawn = faceid(&["challenge", "new", "--steps", "3", "--json"]);
    let challenge = json(&drawn);
    assert_eq!(
        challenge["steps"].as_array().unwrap().len(),
        3,
        "{challenge}"
    );
    let file = dir.path().join("challenge.json");
    std::fs::write(&file, &drawn.stdout).unwrap();
    let checked = json(&faceid(&[
        "challenge",
        "check",
        "--challenge",
        file.to_str().unwrap(),
        &clip("video/live/lestari15_real.mp4"),
        "--json",
    ]));
    assert_eq!(checked["passed"], false, "{checked}");
    assert!(checked["reason"].is_string(), "{checked}");
    assert_eq!(checked["steps"].as_array().unwrap().len(), 3);
}

#[test]
fn bench_reports_every_stage_at_each_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let frame = dir.path().join("frame.jpg");
    let out = faceid(&[
        "bench",
        "--runs",
        "3",
        "--json",
        "--save-frame",
        frame.to_str().unwrap(),
    ]);
    let detected = json(&faceid(&["detect", frame.to_str().unwrap(), "--json"]));
    assert_eq!(
        (detected["width"].as_u64(), detected["height"].as_u64()),
        (Some(640), Some(480))
    );
    assert_eq!(
        detected["faces"].as_array().unwrap().len(),
        1,
        "the benchmarked frame shows one person"
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(
        (report["width"].as_u64(), report["height"].as_u64()),
        (Some(640), Some(480))
    );
    for threads in ["1", "2"] {
        let stages = &report["threads"][threads]["stages"];
        for stage in [
            "decode",
            "detect",
            "landmarks",
            "align",
            "embed",
            "liveness",
            "quality",
        ] {
            assert!(
                stages[stage]["median_ms"].as_f64().unwrap() > 0.0,
                "{threads} {stage}"
            );
        }
        assert!(
            report["threads"][threads]["pipeline"]["p95_ms"]
                .as_f64()
                .unwrap()
                > 0.0
        );
    }
}

/// The floors of issue 2, measured on the shared evaluation set with failures to acquire
/// counted as non-matches. A regression in any stage shows up here.
#[test]
fn eval_on_the_shared_set_meets_the_floors() {
    let Some(root) = faceid_e2e::shared_eval("eval_on_the_shared_set_meets_the_floors") else {
        return;
    };
    // 100 simulated attacks here; BENCHMARKS.md records the 1,000 of the default.
    let out = faceid(&[
        "eval",
        root.to_str().unwrap(),
        "--pad-sims",
        "100",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    // Presentation attacks over sequences, by the fused rule at REGULAR: both live selfie
    // videos pass, both replays and every NUAA print sequence are refused.
    let pad = &r["pad"];
    let verdict = |source: &str, subject: &str| {
        pad["sequences"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["source"] == source && s["subject"] == subject)
            .map(|s| s["verdicts"]["REGULAR"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no sequence {source}/{subject}"))
    };
    assert_eq!(verdict("video", "apfol_real2.webm"), "LIVE");
    assert_eq!(verdict("video", "lestari15_real.mp4"), "LIVE");
    assert_ne!(verdict("video", "apfol_fake2.webm"), "LIVE");
    assert_ne!(verdict("video", "lestari15_fake.mp4"), "LIVE");
    let print = &pad["species"]["print"]["REGULAR"];
    assert_eq!(print["attacks_accepted"], 0, "{print}");
    let simulated = &pad["species"]["simulated_planar_print"]["REGULAR"];
    assert!(simulated["attacks"].as_u64().unwrap() > 0, "{simulated}");
    assert!(simulated["apcer"].as_f64().unwrap() <= 0.01, "{simulated}");
    for key in ["apcer", "bpcer", "apnrr", "bpnrr", "attacks", "bona_fide"] {
        assert!(
            !pad["species"]["replay"]["HARDENED"][key].is_null(),
            "{key}"
        );
    }
    let v = &r["verification"];
    let f = |x: &serde_json::Value| x.as_f64().unwrap();
    assert_eq!(v["pairs"], 3360);
    assert!(f(&v["accuracy"]) >= 0.935, "accuracy {}", v["accuracy"]);
    assert!(
        f(&v["tar_at_far"]["1e-2"]) >= 0.86,
        "TAR@1e-2 {}",
        v["tar_at_far"]["1e-2"]
    );
    assert!(
        f(&v["fta_images"]) / f(&v["images"]) < 0.01,
        "no face on {} images",
        v["fta_images"]
    );
    for group in ["celeba", "named", "orl"] {
        assert!(v["groups"][group]["accuracy"].is_number(), "{group}");
    }
    let nuaa = &r["liveness"]["sources"]["nuaa"];
    for unit in ["image", "sequence"] {
        assert!(
            f(&nuaa[unit]["apcer"]) <= 0.08,
            "NUAA {unit} APCER {}",
            nuaa[unit]["apcer"]
        );
        assert!(
            f(&nuaa[unit]["bpcer"]) <= 0.15,
            "NUAA {unit} BPCER {}",
            nuaa[unit]["bpcer"]
        );
    }
    let cards = &r["idcards"];
    assert!(
        f(&cards["accuracy"]) >= 0.975,
        "ID-card accuracy {}",
        cards["accuracy"]
    );
    assert_eq!(
        f(&cards["portrait_found_visible"]),
        1.0,
        "missing: {}",
        cards["portrait_missing"]
    );
    assert!(f(&cards["sets"]["pairs"]["accuracy"]) >= 0.975);
    // Machine-readable zones of the specimens (issue 15): found and valid on 90 % of those
    // printed conformant. The exact-field floor is what the OCR reaches today (names carry
    // no check digit and long filler runs make it drop letters); it must not fall.
    let zones = &r["zones"]["all"];
    let share = |k: &str| f(&zones[k]) / f(&zones["documents"]);
    assert_eq!(zones["documents"], 30, "{zones}");
    assert!(share("found") >= 0.9, "{zones}");
    assert!(share("valid") >= 0.9, "{zones}");
    assert!(share("exact") >= 0.75, "{zones}");
    // The calibration in force states its false-accept rates honestly on this set.
    for anchor in r["calibration"]["anchors"].as_array().unwrap() {
        let stated = f(&anchor["stated_far"]);
        let observed = f(&anchor["observed_far"]);
        let impostors = f(&r["calibration"]["impostors"]);
        // Within 3 binomial standard deviations (plus one pair of slack).
        let sd = (stated * (1.0 - stated) / impostors).sqrt();
        assert!(
            observed <= stated + 3.0 * sd + 1.0 / impostors,
            "score {} states {stated}, observed {observed}",
            anchor["score"]
        );
    }
}

#[test]
fn gallery_bench_reports_recall_and_latency() {
    let out = faceid(&["bench", "--gallery", "3000", "--queries", "20", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    assert_eq!(r["templates"], 3000);
    assert!(r["recall_at_1"].as_f64().unwrap() >= 0.95, "{r}");
    assert!(r["search"]["median_ms"].as_f64().unwrap() > 0.0);
    // 512 int8 codes + scale + tag + subject per template.
    assert!(r["index_memory_bytes"].as_u64().unwrap() >= 3000 * 512);
    let genuine = r["mean_genuine_cosine"].as_f64().unwrap();
    assert!(
        (0.5..0.95).contains(&genuine),
        "probes look like genuine captures: {genuine}"
    );
}

/// `faceid serve --data DIR` with no key anywhere: the first start creates the gallery key
/// (0600) in the configuration directory, never beside the data, says where, and the second
/// start uses the same key (the gallery opens).
#[test]
fn serve_without_a_key_creates_one_outside_the_data_and_keeps_using_it() {
    use std::io::{BufRead, BufReader};
    let config = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let serve_once = || -> Vec<String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_faceid"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .env("XDG_CONFIG_HOME", config.path())
            .env_remove("FACEID_GALLERY_KEY")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut seen = Vec::new();
        for line in BufReader::new(child.stderr.take().unwrap()).lines() {
            let line = line.unwrap();
            let listening = line.starts_with("faceid serving on ");
            seen.push(line);
            if listening {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        seen
    };
    let first = serve_once();
    let key = config.path().join("faceid/gallery.key");
    assert!(
        first.iter().any(
            |l| l.contains("created the gallery key") && l.contains(&key.display().to_string())
        ),
        "{first:?}"
    );
    assert!(
        first.iter().any(|l| l.starts_with("faceid serving on ")),
        "{first:?}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(!key.starts_with(data.path()));
    let second = serve_once();
    assert!(
        second.iter().any(|l| l.starts_with("faceid serving on ")),
        "the same key opens the gallery again: {second:?}"
    );
    assert!(!second.iter().any(|l| l.contains("created")), "{second:?}");
}
