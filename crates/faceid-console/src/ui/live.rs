//! Live view: a camera or clip with the engine's view drawn over each frame: face boxes,
//! landmarks, liveness, quality flags and the 1:N answer.

use eframe::egui;
use egui::{Color32, RichText, Stroke};

use super::{notice_ui, palette, texture};
use crate::i18n::{fill, t};
use crate::live::LiveControl;
use crate::state::{ConsoleState, Notice};

pub(super) fn live_ui(ui: &mut egui::Ui, state: &mut ConsoleState, live: &mut LiveControl) {
    let lang = state.language;
    let live_state = &mut state.live;
    ui.horizontal(|ui| {
        ui.label(t(lang, "Camera"));
        ui.add(
            egui::TextEdit::singleline(&mut live_state.spec)
                .hint_text("kiosk, video:FILE or file:DIR")
                .desired_width(360.0),
        );
        if live.running() {
            if ui.button(t(lang, "Stop")).clicked() {
                live.stop();
            }
        } else if ui.button(t(lang, "Start")).clicked() {
            live_state.notice = match live.start(&live_state.spec) {
                Ok(()) => None,
                Err(e) => Notice::error(e),
            };
        }
        if let Some(frame) = &live_state.frame {
            ui.label(fill(
                t(lang, "{fps} frames/s · answer in {ms} ms · frame {n}"),
                &[
                    ("fps", &format!("{:.1}", live_state.fps)),
                    ("ms", &format!("{:.0}", frame.latency_ms)),
                    ("n", &frame.number.to_string()),
                ],
            ));
        }
    });
    notice_ui(ui, &live_state.notice);
    let Some(frame) = &live_state.frame else {
        ui.label(t(
            lang,
            "Start a camera: the kiosk's own (kiosk), a clip (video:FILE) or a folder of photos (file:DIR). Each frame goes to the server's /v1/frame and comes back with what the engine saw.",
        ));
        return;
    };
    let colors = palette(ui);
    egui::Panel::right("live-facts")
        .resizable(false)
        .exact_size(320.0)
        .show(ui, |ui| match &frame.analysis {
            Err(e) => {
                ui.label(
                    RichText::new(fill(t(lang, "No analysis: {error}"), &[("error", e)]))
                        .color(colors.bad),
                );
            }
            Ok(analysis) => {
                ui.heading(fill(
                    t(lang, "{n} face(s)"),
                    &[("n", &analysis.faces.len().to_string())],
                ));
                let Some(main) = &analysis.main else {
                    ui.label(t(lang, "No face in this frame."));
                    return;
                };
                if let Some(refusal) = &main.refusal {
                    ui.label(
                        RichText::new(fill(t(lang, "Would refuse: {code}"), &[("code", refusal)]))
                            .color(colors.bad)
                            .strong(),
                    );
                }
                if let Some(identity) = &main.identity {
                    let score = identity
                        .score
                        .map_or_else(|| "—".to_string(), |s| format!("{s:.2}"));
                    let threshold = format!("{:.2}", identity.threshold);
                    match &identity.subject_id {
                        Some(id) => ui.label(
                            RichText::new(fill(
                                t(lang, "Match: {id} (score {score} ≥ {threshold})"),
                                &[("id", id), ("score", &score), ("threshold", &threshold)],
                            ))
                            .color(colors.good)
                            .strong(),
                        ),
                        None => ui.label(fill(
                            t(lang, "No match (best {score} < {threshold})"),
                            &[("score", &score), ("threshold", &threshold)],
                        )),
                    };
                }
                if let Some(liveness) = &main.liveness {
                    let verdict = t(lang, if liveness.live { "live" } else { "not live" });
                    let text = fill(
                        t(lang, "Liveness {p} ({preset}): {verdict}"),
                        &[
                            ("p", &format!("{:.2}", liveness.probability)),
                            ("preset", &liveness.preset),
                            ("verdict", verdict),
                        ],
                    );
                    ui.label(RichText::new(text).color(if liveness.live {
                        colors.good
                    } else {
                        colors.bad
                    }));
                }
                if let Some(quality) = &main.quality {
                    if quality.passed {
                        ui.label(RichText::new(t(lang, "Quality: passes")).color(colors.good));
                    } else {
                        ui.label(
                            RichText::new(fill(
                                t(lang, "Quality: {failure}"),
                                &[("failure", quality.failure.as_deref().unwrap_or("?"))],
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
                        .unwrap_or_else(|| t(state.language, "nobody").into()),
                );
            }
            if let Some(liveness) = &main.liveness {
                caption.push(format!(
                    "{} {:.2}",
                    t(state.language, "live"),
                    liveness.probability
                ));
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
