//! The kiosk binary: everything is in the library (`faceid_kiosk::run`).
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    faceid_kiosk::run()
}
