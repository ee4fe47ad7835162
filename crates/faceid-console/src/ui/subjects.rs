//! Subjects: search, list with thumbnails, details, erasure with confirmation.
//! Keys: Ctrl+F search, Up/Down move, Delete asks to erase, Enter confirms, Escape cancels.

use eframe::egui;
use egui::RichText;

use super::{notice_ui, palette, texture, utc};
use crate::backend::Request;
use crate::i18n::{fill, t, visual};
use crate::state::ConsoleState;

const ROW_HEIGHT: f32 = 56.0;

pub(super) fn subjects_ui(
    ui: &mut egui::Ui,
    state: &mut ConsoleState,
    requests: &mut Vec<Request>,
) {
    let search_id = egui::Id::unique("subjects-search");
    let lang = state.language;
    ui.horizontal(|ui| {
        ui.label(t(lang, "Search"));
        let search = ui.add(
            egui::TextEdit::singleline(&mut state.subjects.search)
                .id(search_id)
                .hint_text(t(lang, "id or name (Ctrl+F)"))
                .desired_width(320.0),
        );
        if search.changed() {
            requests.push(Request::Subjects {
                search: state.subjects.search.clone(),
            });
        }
        if ui
            .button(t(lang, "Reload"))
            .on_hover_text("Ctrl+R")
            .clicked()
        {
            requests.push(Request::Subjects {
                search: state.subjects.search.clone(),
            });
        }
        let count = state.subjects.list.len().to_string();
        ui.label(match &state.subjects.shown_search {
            None => t(lang, "loading…").to_string(),
            Some(s) if s.is_empty() => fill(t(lang, "{n} subjects"), &[("n", &count)]),
            Some(s) => fill(
                t(lang, "{n} subjects matching “{search}”"),
                &[("n", &count), ("search", s)],
            ),
        });
    });
    notice_ui(ui, &state.subjects.notice);
    keys(ui, state, search_id);

    egui::Panel::right("subject-detail")
        .resizable(false)
        .exact_size(340.0)
        .show(ui, |ui| detail_ui(ui, state));
    list_ui(ui, state);
    confirm_ui(ui, state, requests);
}

fn keys(ui: &mut egui::Ui, state: &mut ConsoleState, search_id: egui::Id) {
    use egui::{Key, Modifiers};
    if ui.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::F)) {
        ui.memory_mut(|m| m.request_focus(search_id));
    }
    // Arrows and Delete act on the list unless a text box has the keyboard.
    if state.subjects.confirm_delete.is_some()
        || ui.memory(|m| m.focused().is_some_and(|f| f == search_id))
    {
        return;
    }
    let len = state.subjects.list.len();
    if len == 0 {
        return;
    }
    let selected = state.subjects.selected.unwrap_or(0);
    if ui.input_mut(|i| i.consume_key(Modifiers::NONE, Key::ArrowDown)) {
        state.subjects.selected = Some((selected + 1).min(len - 1));
    }
    if ui.input_mut(|i| i.consume_key(Modifiers::NONE, Key::ArrowUp)) {
        state.subjects.selected = Some(selected.saturating_sub(1));
    }
    if ui.input_mut(|i| i.consume_key(Modifiers::NONE, Key::Delete)) {
        state.subjects.confirm_delete = state.selected_subject().cloned();
    }
}

/// "1 template", "2 templates", "2 modèle(s)"...
fn templates_text(lang: crate::i18n::Language, n: usize) -> String {
    match lang {
        crate::i18n::Language::En if n == 1 => "1 template".into(),
        crate::i18n::Language::En => format!("{n} templates"),
        _ => fill(t(lang, "{n} template(s)"), &[("n", &n.to_string())]),
    }
}

fn list_ui(ui: &mut egui::Ui, state: &mut ConsoleState) {
    let rows = state.subjects.list.len();
    let lang = state.language;
    egui::ScrollArea::vertical()
        .auto_shrink(false)
        .show_rows(ui, ROW_HEIGHT, rows, |ui, range| {
            for i in range {
                let Some(subject) = state.subjects.list.get(i) else {
                    continue;
                };
                let selected = state.subjects.selected == Some(i);
                let name = subject
                    .display_name
                    .clone()
                    .unwrap_or_else(|| subject.id.clone());
                let response = ui
                    .horizontal(|ui| {
                        ui.set_min_height(ROW_HEIGHT - 6.0);
                        thumbnail_ui(ui, state, &subject.id, 44.0);
                        let row = ui.selectable_label(
                            selected,
                            format!(
                                "{}\n{} · {} · {} · {}",
                                visual(&name, false),
                                subject.id,
                                subject
                                    .source
                                    .as_deref()
                                    .unwrap_or(t(lang, "unknown source")),
                                templates_text(lang, subject.templates),
                                fill(
                                    t(lang, "enrolled {date}"),
                                    &[("date", &utc(subject.created_at_ms))]
                                ),
                            ),
                        );
                        if selected {
                            row.scroll_to_me(None);
                        }
                        row
                    })
                    .inner;
                if response.clicked() {
                    state.subjects.selected = Some(i);
                }
            }
        });
}

fn thumbnail_ui(ui: &mut egui::Ui, state: &ConsoleState, id: &str, side: f32) {
    let size = egui::vec2(side, side);
    match state.subjects.thumbnails.get(id) {
        Some(Some(picture)) => {
            let texture = texture(ui, &format!("thumb-{id}"), picture);
            ui.add(egui::Image::new(&texture).fit_to_exact_size(size));
        }
        _ => {
            let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
            ui.painter().rect_stroke(
                rect,
                4.0,
                ui.visuals().widgets.noninteractive.bg_stroke,
                egui::StrokeKind::Inside,
            );
            ui.painter().text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                t(state.language, "no image"),
                egui::FontId::proportional(10.0),
                ui.visuals().weak_text_color(),
            );
        }
    }
}

fn detail_ui(ui: &mut egui::Ui, state: &mut ConsoleState) {
    let Some(subject) = state.selected_subject().cloned() else {
        ui.label(t(state.language, "Select a subject."));
        return;
    };
    let lang = state.language;
    ui.heading(visual(
        subject.display_name.as_deref().unwrap_or(&subject.id),
        false,
    ));
    thumbnail_ui(ui, state, &subject.id, 160.0);
    egui::Grid::new("subject-facts")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label(t(lang, "Id"));
            ui.label(RichText::new(&subject.id).monospace());
            ui.end_row();
            ui.label(t(lang, "Source"));
            ui.label(subject.source.as_deref().unwrap_or(t(lang, "unknown")));
            ui.end_row();
            ui.label(t(lang, "Enrolled"));
            ui.label(utc(subject.created_at_ms));
            ui.end_row();
            ui.label(t(lang, "Changed"));
            ui.label(utc(subject.updated_at_ms));
            ui.end_row();
            ui.label(t(lang, "Templates"));
            ui.label(subject.templates.to_string());
            ui.end_row();
            ui.label(t(lang, "Image kept"));
            ui.label(if subject.has_image {
                t(lang, "yes (encrypted)")
            } else {
                t(lang, "no")
            });
            ui.end_row();
        });
    ui.add_space(12.0);
    let erase = egui::Button::new(RichText::new(t(lang, "Erase subject…")).color(palette(ui).bad));
    if ui.add(erase).on_hover_text("Delete").clicked() {
        state.subjects.confirm_delete = Some(subject);
    }
}

fn confirm_ui(ui: &mut egui::Ui, state: &mut ConsoleState, requests: &mut Vec<Request>) {
    let Some(subject) = state.subjects.confirm_delete.clone() else {
        return;
    };
    let lang = state.language;
    let name = subject
        .display_name
        .clone()
        .unwrap_or_else(|| subject.id.clone());
    let modal = egui::Modal::new(egui::Id::unique("confirm-erase")).show(ui.ctx(), |ui| {
        ui.set_max_width(420.0);
        ui.heading(fill(t(lang, "Erase {name}?"), &[("name", &name)]));
        ui.label(fill(
            t(
                lang,
                "Subject {id} loses every template, the retained image and its index entries. This cannot be undone; the erasure is written to the audit log.",
            ),
            &[("id", &subject.id)],
        ));
        ui.add_space(8.0);
        let mut decided = None;
        ui.horizontal(|ui| {
            let erase = ui.button(RichText::new(t(lang, "Erase")).color(palette(ui).bad).strong());
            if erase.clicked()
                || ui.input_mut(|i| i.consume_key(egui::Modifiers::NONE, egui::Key::Enter))
            {
                decided = Some(true);
            }
            if ui.button(t(lang, "Cancel")).clicked() {
                decided = Some(false);
            }
        });
        decided
    });
    let decided = modal.inner.or(modal.should_close().then_some(false));
    match decided {
        Some(true) => {
            requests.push(Request::Delete { id: subject.id });
            state.subjects.confirm_delete = None;
        }
        Some(false) => state.subjects.confirm_delete = None,
        None => {}
    }
}
