//! Live view: a camera or clip with the engine's view drawn over each frame: face boxes,
//! landmarks, liveness, quality flags and the 1:N answer.

use eframe::egui;
use egui::{Color32, RichText, Stroke};

use super::{notice_ui, palette, texture};
use crate::live::LiveControl;
use crate::state::{ConsoleState, Notice};

pub(super) fn live_ui(ui: &mut egui::Ui, state: &mut ConsoleState, live: &mut LiveControl) {
    let live_state = &mut state.live;
    ui.horizontal(|ui| {
        ui.label("Camera");
        ui.add(
            egui::TextEdit::singleline(&mut live_state.spec)
                .hint_text("kiosk, video:FILE or file:DIR")
                .desired_width(360.0),
        );
        if live.running() {
            if ui.button("Stop").clicked() {
                live.stop();
            }
        } else if ui.button("Start").clicked() {
            live_state.notice = match live.start(&live_state.spec) {
                Ok(()) => None,
                Err(e) => Notice::error(e),
            };
        }
        if let Some(frame) = &live_state.frame {
            ui.label(format!(
                "{:.1} frames/s · answer in {:.0} ms · frame {}",
                live_state.fps, frame.latency_ms, frame.number
            ));
        }
    });
    notice_ui(ui, &live_state.notice);
    let Some(frame) = &live_state.frame else {
        ui.label("Start a camera: the kiosk's own (kiosk), a clip (video:FILE) or a folder of photos (file:DIR). Each frame goes to the server's /v1/frame and comes back with what the engine saw.");
        return;
    };
    let colors = palette(ui);
    egui::Panel::right("live-facts")
        .resizable(false)
        .exact_size(320.0)
        .show(ui, |ui| match &frame.analysis {
            Err(e) => {
                ui.label(RichText::new(format!("No analysis: {e}")).color(colors.bad));
            }
            Ok(analysis) => {
                ui.heading(format!("{} face(s)", analysis.faces.len()));
                let Some(main) = &analysis.main else {
                    ui.label("No face in this frame.");
                    return;
                };
                if let Some(refusal) = &main.refusal {
                    ui.label(
                        RichText::new(format!("Would refuse: {refusal}"))
                            .color(colors.bad)
                            .strong(),
                    );
                }
                if let Some(identity) = &main.identity {
                    let score = identity
                        .score
                        .map_or_else(|| "—".to_string(), |s| format!("{s:.2}"));
                    match &identity.subject_id {
                        Some(id) => ui.label(
                            RichText::new(format!(
                                "Match: {id} (score {score} ≥ {:.2})",
                                identity.threshold
                            ))
                            .color(colors.good)
                            .strong(),
                        ),
                        None => ui.label(format!(
                            "No match (best {score} < {:.2})",
                            identity.threshold
                        )),
                    };
                }
                if let Some(liveness) = &main.liveness {
                    let text = format!(
                        "Liveness {:.2} ({}): {}",
                        liveness.probability,
                        liveness.preset,
                        if liveness.live { "live" } else { "not live" }
                    );
                    ui.label(RichText::new(text).color(if liveness.live {
                        colors.good
                    } else {
                        colors.bad
                    }));
                }
                if let Some(quality) = &main.quality {
                    if quality.passed {
                        ui.label(RichText::new("Quality: passes").color(colors.good));
                    } else {
                        ui.label(
                            RichText::new(format!(
                                "Quality: {}",
                                quality.failure.as_deref().unwrap_or("fails")
                            ))
                            .color(colors.warn),
                        );
                        for flag in quality.failing() {
                            ui.label(RichText::new(format!("  - {flag}")).color(colors.warn));
                        }
                    }
                }
            }
        });
    frame_ui(ui, state);
}

/// The frame scaled into the space left, with the overlay in frame coordinates.
fn frame_ui(ui: &mut egui::Ui, state: &ConsoleState) {
    let Some(frame) = &state.live.frame else {
        return;
    };
    let colors = palette(ui);
    let texture = texture(ui, "live-frame", &frame.picture);
    let [w, h] = frame.picture.size;
    let available = ui.available_size();
    let scale = (available.x / w as f32)
        .min(available.y / h as f32)
        .max(0.05);
    let (rect, _) =
        ui.allocate_exact_size(egui::vec2(w as f32, h as f32) * scale, egui::Sense::hover());
    let painter = ui.painter_at(rect);
    painter.image(
        texture.id(),
        rect,
        egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
        Color32::WHITE,
    );
    let Ok(analysis) = &frame.analysis else {
        return;
    };
    // The analysis is in the coordinates of the frame the server decoded (same pixels).
    let sx = rect.width() / analysis.width.max(1) as f32;
    let sy = rect.height() / analysis.height.max(1) as f32;
    let at = |x: f32, y: f32| egui::pos2(rect.min.x + x * sx, rect.min.y + y * sy);
    for (n, face) in analysis.faces.iter().enumerate() {
        let main = analysis.main.as_ref().filter(|_| n == 0);
        let matched = main
            .and_then(|m| m.identity.as_ref())
            .is_some_and(|i| i.subject_id.is_some());
        let live = main
            .and_then(|m| m.liveness.as_ref())
            .is_some_and(|l| l.live);
        let color = if main.is_none() {
            colors.warn
        } else if matched && live {
            colors.good
        } else {
            colors.bad
        };
        let b = face.bbox;
        painter.rect_stroke(
            egui::Rect::from_min_max(at(b.x1, b.y1), at(b.x2, b.y2)),
            2.0,
            Stroke::new(3.0, color),
            egui::StrokeKind::Outside,
        );
        for p in &face.landmarks.points {
            painter.circle_filled(at(p.x, p.y), 1.8, Color32::from_rgb(80, 200, 255));
        }
        if let Some(main) = main {
            let mut caption = Vec::new();
            if let Some(identity) = &main.identity {
                caption.push(
                    identity
                        .subject_id
                        .clone()
                        .unwrap_or_else(|| "unknown".into()),
                );
            }
            if let Some(liveness) = &main.liveness {
                caption.push(format!("live {:.2}", liveness.probability));
            }
            if let Some(refusal) = &main.refusal {
                caption.push(refusal.clone());
            }
            if let Some(failure) = main.quality.as_ref().and_then(|q| q.failure.clone()) {
                caption.push(failure);
            }
            let text_pos = at(b.x1, b.y1) - egui::vec2(0.0, 4.0);
            let galley = painter.layout_no_wrap(
                caption.join(" · "),
                egui::FontId::proportional(15.0),
                Color32::BLACK,
            );
            let label = egui::Rect::from_min_size(
                text_pos - egui::vec2(0.0, galley.size().y),
                galley.size(),
            )
            .expand(3.0);
            painter.rect_filled(label, 3.0, color);
            painter.galley(label.min + egui::vec2(3.0, 3.0), galley, Color32::BLACK);
        }
    }
}
