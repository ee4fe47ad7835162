//! Health: server status, request rates and latencies, each kiosk's sync state.

use eframe::egui;
use egui::RichText;

use super::{ago, palette};
use crate::api::ApiError;
use crate::i18n::{fill, t};
use crate::state::ConsoleState;

pub(super) fn health_ui(ui: &mut egui::Ui, state: &mut ConsoleState) {
    let colors = palette(ui);
    let lang = state.language;
    let Some(health) = &state.health.latest else {
        ui.label(t(lang, "Waiting for the first health poll…"));
        return;
    };
    egui::ScrollArea::vertical()
        .auto_shrink(false)
        .show(ui, |ui| {
            ui.heading(t(lang, "Server"));
            match &health.status {
                Ok(status) => {
                    egui::Grid::new("health-status")
                        .num_columns(2)
                        .show(ui, |ui| {
                            ui.label(t(lang, "Version"));
                            ui.label(&status.version);
                            ui.end_row();
                            ui.label(t(lang, "Model"));
                            ui.label(&status.model);
                            ui.end_row();
                            ui.label(t(lang, "Gallery size"));
                            ui.label(
                                RichText::new(fill(
                                    t(lang, "{n} subjects"),
                                    &[("n", &status.gallery_size.to_string())],
                                ))
                                .strong(),
                            );
                            ui.end_row();
                            ui.label(t(lang, "1:N index memory"));
                            ui.label(format!(
                                "{:.1} MiB",
                                status.index_memory_bytes as f64 / 1_048_576.0
                            ));
                            ui.end_row();
                            ui.label(t(lang, "Engine queue"));
                            ui.label(fill(
                                t(lang, "{n} waiting"),
                                &[("n", &status.queue_depth.to_string())],
                            ));
                            ui.end_row();
                        });
                }
                Err(e) => {
                    ui.label(RichText::new(format!("status: {e}")).color(colors.bad));
                }
            }

            ui.add_space(8.0);
            ui.heading(t(lang, "Requests (last 2 s)"));
            if let Err(e) = &health.metrics {
                ui.label(RichText::new(format!("metrics: {e}")).color(colors.bad));
            } else if state.health.rates.is_empty() {
                ui.label(t(lang, "Measuring: rates appear after the second poll."));
            } else {
                egui::Grid::new("health-rates")
                    .num_columns(5)
                    .striped(true)
                    .show(ui, |ui| {
                        for title in [
                            "route",
                            "requests/s",
                            "mean latency",
                            "errors/s",
                            "since start",
                        ] {
                            ui.label(RichText::new(title).strong());
                        }
                        ui.end_row();
                        for rate in &state.health.rates {
                            ui.label(RichText::new(&rate.route).monospace());
                            ui.label(format!("{:.1}", rate.per_second));
                            ui.label(
                                rate.mean_ms
                                    .map_or_else(|| "—".to_string(), |ms| format!("{ms:.0} ms")),
                            );
                            let errors = format!("{:.1}", rate.errors_per_second);
                            ui.label(if rate.errors_per_second > 0.0 {
                                RichText::new(errors).color(colors.warn)
                            } else {
                                RichText::new(errors)
                            });
                            ui.label(rate.total.to_string());
                            ui.end_row();
                        }
                    });
            }

            ui.add_space(8.0);
            ui.heading(t(lang, "Kiosks syncing with this server"));
            match &health.devices {
                Ok(devices) if devices.devices.is_empty() => {
                    ui.label(t(lang, "No kiosk has a device token."));
                }
                Ok(devices) => {
                    egui::Grid::new("health-devices")
                        .num_columns(6)
                        .striped(true)
                        .show(ui, |ui| {
                            for title in [
                                "kiosk",
                                "last push",
                                "last pull",
                                "behind",
                                "pushed",
                                "conflicts",
                            ]
                            .map(|w| t(lang, w))
                            {
                                ui.label(RichText::new(title).strong());
                            }
                            ui.end_row();
                            for device in &devices.devices {
                                ui.label(&device.name);
                                ui.label(ago(lang, device.last_push_ms));
                                ui.label(ago(lang, device.last_pull_ms));
                                match device.cursor {
                                    Some(c) if c >= devices.change_head => {
                                        ui.label(
                                            RichText::new(t(lang, "up to date")).color(colors.good),
                                        );
                                    }
                                    Some(c) => {
                                        ui.label(
                                            RichText::new(format!(
                                                "{} changes",
                                                devices.change_head - c
                                            ))
                                            .color(colors.warn),
                                        );
                                    }
                                    None => {
                                        ui.label(t(lang, "not seen"));
                                    }
                                }
                                ui.label(device.events_pushed.to_string());
                                ui.label(if device.conflicts > 0 {
                                    RichText::new(device.conflicts.to_string()).color(colors.bad)
                                } else {
                                    RichText::new("0")
                                });
                                ui.end_row();
                            }
                        });
                }
                Err(ApiError::Forbidden) => {
                    ui.label(t(lang, "Per-kiosk sync state needs an admin key."));
                }
                Err(e) => {
                    ui.label(RichText::new(format!("devices: {e}")).color(colors.bad));
                }
            }

            ui.add_space(8.0);
            ui.heading(t(lang, "This kiosk's sync"));
            match &health.local_sync {
                Ok(local) => {
                    let s = &local.status;
                    egui::Grid::new("health-local")
                        .num_columns(2)
                        .show(ui, |ui| {
                            ui.label(t(lang, "Waiting to push"));
                            ui.label(fill(
                                t(lang, "{n} events"),
                                &[("n", &s.pending.to_string())],
                            ));
                            ui.end_row();
                            ui.label(t(lang, "Last push"));
                            ui.label(ago(lang, s.last_push_ms));
                            ui.end_row();
                            ui.label(t(lang, "Last pull"));
                            ui.label(ago(lang, s.last_pull_ms));
                            ui.end_row();
                            ui.label(t(lang, "Conflicts"));
                            ui.label(s.conflicts.to_string());
                            ui.end_row();
                            ui.label(t(lang, "Last error"));
                            match &s.last_error {
                                Some(e) => ui.label(RichText::new(e).color(colors.bad)),
                                None => ui.label(t(lang, "none")),
                            };
                            ui.end_row();
                        });
                }
                Err(ApiError::NotFound) => {
                    ui.label(t(
                        lang,
                        "Not a kiosk: this is a central server (its kiosks are listed above).",
                    ));
                }
                Err(e) => {
                    ui.label(RichText::new(format!("kiosk sync: {e}")).color(colors.bad));
                }
            }
        });
}
