//! Calibration: genuine and impostor score histograms, the DET curve with the threshold
//! presets marked, and liveness APCER/BPCER per preset, from a `faceid --json eval` report.

use eframe::egui;
use egui::{Color32, RichText};
use egui_plot::{Bar, BarChart, Legend, Line, MarkerShape, Plot, PlotPoints, Points, VLine};

use super::{notice_ui, palette};
use crate::backend::{CalibrationSource, Request};
use crate::calibration::{EvalReport, histogram};
use crate::i18n::{Language, fill, t};
use crate::state::ConsoleState;

const GENUINE: Color32 = Color32::from_rgb(60, 170, 90);
const IMPOSTOR: Color32 = Color32::from_rgb(220, 90, 70);
const BINS: usize = 50;
/// Rates below this are drawn at it on the log axes (a rate of 0 has no logarithm).
const FLOOR: f64 = 1e-4;

pub(super) fn calibration_ui(
    ui: &mut egui::Ui,
    state: &mut ConsoleState,
    requests: &mut Vec<Request>,
) {
    let lang = state.language;
    let calibration = &mut state.calibration;
    ui.horizontal(|ui| {
        ui.label(t(lang, "Report or dataset"));
        ui.add(
            egui::TextEdit::singleline(&mut calibration.path)
                .hint_text("eval.json, or a folder in the ../shared/eval layout")
                .desired_width(420.0),
        );
        let idle = !calibration.running;
        if ui
            .add_enabled(idle, egui::Button::new(t(lang, "Open report")))
            .clicked()
        {
            calibration.running = true;
            requests.push(Request::Calibration(CalibrationSource::File(
                calibration.path.trim().into(),
            )));
        }
        if ui
            .add_enabled(idle, egui::Button::new(t(lang, "Run evaluation")))
            .on_hover_text("faceid --json eval FOLDER, on this computer")
            .clicked()
        {
            calibration.running = true;
            requests.push(Request::Calibration(CalibrationSource::Folder(
                calibration.path.trim().into(),
            )));
        }
        if calibration.running {
            ui.spinner();
            ui.label(t(lang, "working…"));
        }
    });
    notice_ui(ui, &calibration.notice);
    let Some(report) = &calibration.report else {
        ui.label(t(
            lang,
            "Open a report saved from `faceid --json eval DIR > eval.json`, or run an evaluation over a dataset folder.",
        ));
        return;
    };
    report_ui(ui, report, lang);
}

fn report_ui(ui: &mut egui::Ui, report: &EvalReport, lang: Language) {
    let colors = palette(ui);
    let Some(verification) = &report.verification else {
        ui.label(t(lang, "This report has no verification pairs."));
        liveness_ui(ui, report, lang);
        return;
    };
    let eer = verification
        .eer
        .map_or_else(|| "—".into(), |e| format!("{:.2} %", e * 100.0));
    ui.label(fill(
        t(
            lang,
            "{pairs} pairs ({genuine} genuine, {impostor} impostor scored; {failed} without a face) · EER {eer}",
        ),
        &[
            ("pairs", &verification.pairs.to_string()),
            ("genuine", &verification.scores.genuine.len().to_string()),
            ("impostor", &verification.scores.impostor.len().to_string()),
            ("failed", &verification.failed_pairs.to_string()),
            ("eer", &eer),
        ],
    ));
    // Room under the plots for the preset tables (and the attack table when present).
    let tables = if report.pad.is_some() { 420.0 } else { 150.0 };
    let plot_height = (ui.available_height() - tables).clamp(160.0, 420.0);
    ui.columns(2, |columns| {
        columns[0].label(RichText::new(t(lang, "Score distributions (calibrated score)")).strong());
        let bar = |bins: Vec<crate::calibration::Bin>| -> Vec<Bar> {
            bins.into_iter()
                .map(|b| Bar::new(b.from + 0.5 / BINS as f64, b.share).width(1.0 / BINS as f64))
                .collect()
        };
        let genuine = bar(histogram(&verification.scores.genuine, BINS));
        let impostor = bar(histogram(&verification.scores.impostor, BINS));
        Plot::new("score-histogram")
            .height(plot_height)
            .legend(Legend::default())
            .x_axis_label(t(lang, "calibrated score"))
            .y_axis_label(t(lang, "share of pairs"))
            .include_x(0.0)
            .include_x(1.0)
            .auto_bounds(true)
            .allow_scroll(false)
            .show(&mut columns[0], |plot| {
                plot.bar_chart(BarChart::new(t(lang, "genuine"), genuine).color(GENUINE));
                plot.bar_chart(BarChart::new(t(lang, "impostor"), impostor).color(IMPOSTOR));
                for point in &verification.operating_points {
                    plot.vline(
                        VLine::new(point.name.clone(), f64::from(point.score)).color(colors.warn),
                    );
                }
            });

        columns[1].label(RichText::new(t(lang, "DET curve (log-log)")).strong());
        let log = |v: f64| v.max(FLOOR).log10();
        let curve: PlotPoints = verification
            .det
            .iter()
            .map(|p| [log(p.far), log(p.frr)])
            .collect();
        Plot::new("det-curve")
            .height(plot_height)
            .legend(Legend::default())
            .x_axis_label(t(lang, "false accept rate"))
            .y_axis_label(t(lang, "false reject rate"))
            .x_axis_formatter(|mark, _| rate_label(mark.value))
            .y_axis_formatter(|mark, _| rate_label(mark.value))
            .include_x(log(FLOOR))
            .include_x(0.0)
            .include_y(log(FLOOR))
            .include_y(0.0)
            .auto_bounds(true)
            .allow_scroll(false)
            .show(&mut columns[1], |plot| {
                plot.line(Line::new("DET", curve).color(colors.good).width(2.0));
                for point in &verification.operating_points {
                    if let Some(observed) = point.observed {
                        plot.points(
                            Points::new(
                                point.name.clone(),
                                vec![[log(observed.far), log(observed.frr)]],
                            )
                            .shape(MarkerShape::Diamond)
                            .radius(7.0)
                            .color(colors.warn),
                        );
                    }
                }
            });
    });
    ui.columns(2, |columns| {
        let ui = &mut columns[0];
        ui.label(RichText::new(t(lang, "Threshold presets")).strong());
        egui::Grid::new("operating-points")
            .num_columns(4)
            .striped(true)
            .show(ui, |ui| {
                for title in ["preset", "score", "observed FAR", "FRR"].map(|w| t(lang, w)) {
                    ui.label(RichText::new(title).strong());
                }
                ui.end_row();
                for point in &verification.operating_points {
                    ui.label(&point.name);
                    ui.label(format!("{:.2}", point.score));
                    match point.observed {
                        Some(o) => {
                            ui.label(format!("{:.4} %", o.far * 100.0));
                            ui.label(format!("{:.2} %", o.frr * 100.0));
                        }
                        None => {
                            ui.label("—");
                            ui.label("—");
                        }
                    }
                    ui.end_row();
                }
            });
        liveness_ui(&mut columns[1], report, lang);
    });
}

fn liveness_ui(ui: &mut egui::Ui, report: &EvalReport, lang: Language) {
    ui.label(RichText::new(t(lang, "Liveness presets")).strong());
    let Some(liveness) = &report.liveness else {
        ui.label(t(lang, "This report has no live/spoof images."));
        return;
    };
    let percent = |v: Option<f64>| v.map_or_else(|| "—".into(), |v| format!("{:.1} %", v * 100.0));
    egui::Grid::new("liveness-presets")
        .num_columns(4)
        .striped(true)
        .show(ui, |ui| {
            for title in ["preset", "threshold", "APCER", "BPCER"].map(|w| t(lang, w)) {
                ui.label(RichText::new(title).strong());
            }
            ui.end_row();
            for name in ["SOFT", "REGULAR", "HARDENED"] {
                if let Some(figures) = liveness.presets.get(name) {
                    ui.label(name);
                    ui.label(format!("{:.2}", figures.threshold));
                    ui.label(percent(figures.apcer));
                    ui.label(percent(figures.bpcer));
                    ui.end_row();
                }
            }
        });
    if let Some(pad) = &report.pad {
        pad_ui(ui, pad, lang);
    }
}

/// APCER per attack species and preset over sequences (the fused rule, then planarity
/// alone on the simulated species), and the bona fide BPCER.
fn pad_ui(ui: &mut egui::Ui, pad: &crate::calibration::PadSequences, lang: Language) {
    const PRESETS: [&str; 3] = ["SOFT", "REGULAR", "HARDENED"];
    ui.add_space(8.0);
    ui.label(RichText::new(t(lang, "Presentation attacks (sequences)")).strong());
    ui.label(fill(
        t(
            lang,
            "APCER per attack species; {n} simulated planar attacks",
        ),
        &[("n", &pad.simulated.to_string())],
    ));
    let cell = |rate: Option<f64>, errors: usize, decided: usize| match rate {
        Some(r) => format!("{:.1} % ({errors}/{decided})", r * 100.0),
        None => "—".into(),
    };
    egui::Grid::new("pad-sequences")
        .num_columns(4)
        .striped(true)
        .show(ui, |ui| {
            ui.label(RichText::new(t(lang, "attack")).strong());
            for preset in PRESETS {
                ui.label(RichText::new(preset).strong());
            }
            ui.end_row();
            let alone = t(lang, "planarity alone");
            let rows = pad
                .species
                .iter()
                .map(|(name, presets)| (name.clone(), presets))
                .chain(
                    pad.geometry_only
                        .iter()
                        .map(|(name, presets)| (format!("{name} ({alone})"), presets)),
                );
            for (name, presets) in rows {
                ui.label(name);
                for preset in PRESETS {
                    ui.label(presets.get(preset).map_or_else(
                        || "—".into(),
                        |r| {
                            cell(
                                r.apcer,
                                r.attacks_accepted,
                                r.attacks - r.attacks_no_response,
                            )
                        },
                    ));
                }
                ui.end_row();
            }
            if let Some(presets) = pad.species.values().next() {
                ui.label(RichText::new(t(lang, "BPCER (bona fide)")).strong());
                for preset in PRESETS {
                    ui.label(presets.get(preset).map_or_else(
                        || "—".into(),
                        |r| {
                            cell(
                                r.bpcer,
                                r.bona_fide_rejected,
                                r.bona_fide - r.bona_fide_no_response,
                            )
                        },
                    ));
                }
                ui.end_row();
            }
        });
}

/// `1e-3`-style labels for log10 axis marks.
fn rate_label(log10: f64) -> String {
    let rate = 10f64.powf(log10);
    if (log10 - log10.round()).abs() < 1e-6 {
        if log10.round() == 0.0 {
            "1".into()
        } else {
            format!("1e{}", log10.round())
        }
    } else {
        format!("{rate:.1e}")
    }
}
