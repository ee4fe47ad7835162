//! Audit: the hash-chained log with filters, chain status and CSV export.

use eframe::egui;
use egui::RichText;

use super::{notice_ui, now_ms, palette, utc};
use crate::audit_log::{Period, to_csv};
use crate::backend::Request;
use crate::i18n::{fill, t};
use crate::state::ConsoleState;

const ROW_HEIGHT: f32 = 22.0;

pub(super) fn audit_ui(ui: &mut egui::Ui, state: &mut ConsoleState, requests: &mut Vec<Request>) {
    let colors = palette(ui);
    let lang = state.language;
    match &state.audit.page {
        None => {
            ui.label(t(lang, "Reading the audit log…"));
        }
        Some(page) if page.chain_valid => {
            ui.label(
                RichText::new(fill(
                    t(
                        lang,
                        "Hash chain verified: {n} events, each linked to the one before",
                    ),
                    &[("n", &page.chain_events.to_string())],
                ))
                .color(colors.good)
                .strong(),
            );
        }
        Some(page) => {
            ui.label(
                RichText::new(fill(
                    t(lang, "Hash chain BROKEN at event {seq}: the log was altered after it was written"),
                    &[("seq", &page.first_invalid_seq
                        .map_or_else(|| "?".to_string(), |s| s.to_string()))],
                ))
                .color(colors.bad)
                .strong(),
            );
        }
    }
    let filter = &mut state.audit.filter;
    let mut reload = false;
    ui.horizontal_wrapped(|ui| {
        let period_label = ui.label(t(lang, "Period"));
        egui::ComboBox::from_id_salt("audit-period")
            .selected_text(t(lang, filter.period.label()))
            .show_ui(ui, |ui| {
                for period in Period::ALL {
                    ui.selectable_value(&mut filter.period, period, t(lang, period.label()));
                }
            })
            .response
            .labelled_by(period_label.id);
        ui.label(t(lang, "Subject"));
        reload |= ui
            .add(
                egui::TextEdit::singleline(&mut filter.subject)
                    .hint_text(t(lang, "exact id"))
                    .desired_width(140.0),
            )
            .changed();
        ui.label(t(lang, "Decision"));
        ui.add(
            egui::TextEdit::singleline(&mut filter.decision)
                .hint_text("verify, rejected…")
                .desired_width(140.0),
        );
        ui.label(t(lang, "Kiosk"));
        ui.add(
            egui::TextEdit::singleline(&mut filter.kiosk)
                .hint_text(t(lang, "device or key"))
                .desired_width(140.0),
        );
        if ui
            .button(t(lang, "Reload"))
            .on_hover_text("Ctrl+R")
            .clicked()
        {
            reload = true;
        }
    });
    if reload {
        requests.push(Request::Audit {
            after: 0,
            subject: state.audit.filter.subject.trim().to_string(),
        });
    }
    let now = now_ms();
    let events: Vec<&faceid_gallery::AuditEvent> = state
        .audit
        .page
        .iter()
        .flat_map(|p| p.events.iter().rev())
        .filter(|e| state.audit.filter.keeps(e, now))
        .collect();
    ui.horizontal(|ui| {
        ui.label(fill(
            t(lang, "{n} events shown, newest first"),
            &[("n", &events.len().to_string())],
        ));
        ui.separator();
        ui.add(egui::TextEdit::singleline(&mut state.audit.export_path).desired_width(220.0));
        if ui.button(t(lang, "Export CSV")).clicked() {
            requests.push(Request::Export {
                path: state.audit.export_path.trim().into(),
                csv: to_csv(events.iter().rev().copied()),
            });
        }
    });
    notice_ui(ui, &state.audit.notice);
    ui.separator();
    egui::Grid::new("audit-head")
        .num_columns(6)
        .min_col_width(90.0)
        .show(ui, |ui| {
            for title in ["#", "time", "action", "subject", "outcome", "actor"] {
                ui.label(RichText::new(t(lang, title)).strong());
            }
            ui.end_row();
        });
    egui::ScrollArea::vertical().auto_shrink(false).show_rows(
        ui,
        ROW_HEIGHT,
        events.len(),
        |ui, range| {
            egui::Grid::new("audit-rows")
                .num_columns(6)
                .min_col_width(90.0)
                .striped(true)
                .show(ui, |ui| {
                    for event in &events[range] {
                        ui.label(RichText::new(event.seq.to_string()).monospace());
                        ui.label(utc(event.at_ms));
                        ui.label(&event.action);
                        ui.label(event.subject.as_deref().unwrap_or("—"));
                        let refused = event.outcome.starts_with("rejected")
                            || event.outcome.contains("conflict");
                        ui.label(if refused {
                            RichText::new(&event.outcome).color(colors.bad)
                        } else {
                            RichText::new(&event.outcome)
                        });
                        ui.label(&event.actor);
                        ui.end_row();
                    }
                });
        },
    );
}
