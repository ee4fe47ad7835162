//! Reads `../tauri.conf.json` (the configuration lives at the repository root) and declares
//! the commands the UI may call; `capabilities/main.json` grants them to the main window.
fn main() {
    let manifest = tauri_build::AppManifest::new().commands(&[
        "view",
        "preview",
        "start_flow",
        "claim",
        "confirm_details",
        "skip_card_back",
        "cancel",
        "touch",
        "set_language",
        "operator_unlock",
        "operator_lock",
        "settings",
        "save_settings",
        "subjects",
        "delete_subject",
        "sync_status",
        "resolve_conflict",
        "set_speech",
        "speak",
    ]);
    let attributes = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(manifest);
    if let Err(e) = tauri_build::try_build(attributes) {
        println!("cargo:warning=tauri-build: {e:#}");
        std::process::exit(1);
    }
}
