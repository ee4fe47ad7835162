//! Drawing: one module per screen, each a `*_ui` function over the state. Functions here
//! read [`ConsoleState`] and push [`Request`]s; they never wait on the network.

mod audit;
mod calibration;
mod health;
mod live;
mod subjects;

use eframe::egui;
use egui::{Color32, RichText};

use crate::backend::{Connection, Request};
use crate::i18n::{Language, fill, t};
use crate::state::{ConsoleState, Notice, Screen, Theme};

/// Colours with at least 7:1 contrast on their theme's background.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    /// Good: online, verified, live, matched.
    pub good: Color32,
    /// Bad: lost, broken, refused.
    pub bad: Color32,
    /// Attention: retrying, a quality flag.
    pub warn: Color32,
}

/// The palette of the current theme.
pub fn palette(ui: &egui::Ui) -> Palette {
    if ui.visuals().dark_mode {
        Palette {
            good: Color32::from_rgb(120, 230, 140),
            bad: Color32::from_rgb(255, 140, 130),
            warn: Color32::from_rgb(255, 210, 90),
        }
    } else {
        Palette {
            good: Color32::from_rgb(0, 90, 25),
            bad: Color32::from_rgb(160, 0, 0),
            warn: Color32::from_rgb(110, 60, 0),
        }
    }
}

/// Applies the theme and the text sizes (readable at 1366x768 from arm's length).
pub fn apply_theme(ctx: &egui::Context, theme: Theme) {
    ctx.set_theme(match theme {
        Theme::Dark => egui::Theme::Dark,
        Theme::Light => egui::Theme::Light,
    });
    ctx.all_styles_mut(|style| {
        use egui::{FontFamily, FontId, TextStyle};
        style.text_styles = [
            (
                TextStyle::Heading,
                FontId::new(22.0, FontFamily::Proportional),
            ),
            (TextStyle::Body, FontId::new(15.0, FontFamily::Proportional)),
            (
                TextStyle::Monospace,
                FontId::new(14.0, FontFamily::Monospace),
            ),
            (
                TextStyle::Button,
                FontId::new(15.0, FontFamily::Proportional),
            ),
            (
                TextStyle::Small,
                FontId::new(12.5, FontFamily::Proportional),
            ),
        ]
        .into();
        style.spacing.item_spacing = egui::vec2(8.0, 6.0);
        style.spacing.button_padding = egui::vec2(10.0, 5.0);
    });
}

/// System fonts added after egui's own, so that names in Arabic (and any script these
/// fonts cover) and symbols render instead of boxes. Debian's `fonts-dejavu-core` provides
/// the first; missing files are skipped.
const FALLBACK_FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf",
];

/// Adds [`FALLBACK_FONTS`] that exist to both families (read once, at start).
pub fn install_fonts(ctx: &egui::Context) {
    use egui::epaint::text::{FontInsert, FontPriority, InsertFontFamily};
    for path in FALLBACK_FONTS {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let families = [egui::FontFamily::Proportional, egui::FontFamily::Monospace]
            .into_iter()
            .map(|family| InsertFontFamily {
                family,
                priority: FontPriority::Lowest,
            })
            .collect();
        ctx.add_font(FontInsert::new(
            path,
            egui::FontData::from_owned(bytes),
            families,
        ));
    }
}

/// Keyboard shortcuts that work on every screen: F1-F5 switch screens, Ctrl+R reloads,
/// Ctrl+T switches theme.
pub fn global_keys(ctx: &egui::Context, state: &mut ConsoleState, requests: &mut Vec<Request>) {
    use egui::Key;
    let keys = [Key::F1, Key::F2, Key::F3, Key::F4, Key::F5];
    for (key, screen) in keys.into_iter().zip(Screen::ALL) {
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::NONE, key)) {
            requests.extend(state.open(screen));
        }
    }
    if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, Key::R)) {
        requests.extend(state.screen.reload(state));
    }
    if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, Key::T)) {
        state.theme = match state.theme {
            Theme::Dark => Theme::Light,
            Theme::Light => Theme::Dark,
        };
    }
}

/// The header: screens, the connection, the theme switch.
pub fn header_ui(ui: &mut egui::Ui, state: &mut ConsoleState, requests: &mut Vec<Request>) {
    let colors = palette(ui);
    let lang = state.language;
    ui.horizontal_wrapped(|ui| {
        ui.heading("faceid console");
        ui.separator();
        for (n, screen) in Screen::ALL.into_iter().enumerate() {
            let tab = ui
                .selectable_label(state.screen == screen, t(lang, screen.label()))
                .on_hover_text(format!("F{}", n + 1));
            if tab.clicked() {
                requests.extend(state.open(screen));
            }
        }
        ui.separator();
        let theme_label = t(
            lang,
            match state.theme {
                Theme::Dark => "Light theme",
                Theme::Light => "Dark theme",
            },
        );
        if ui.button(theme_label).on_hover_text("Ctrl+T").clicked() {
            state.theme = match state.theme {
                Theme::Dark => Theme::Light,
                Theme::Light => Theme::Dark,
            };
        }
        egui::ComboBox::from_label(t(lang, "Language"))
            .selected_text(state.language.name())
            .show_ui(ui, |ui| {
                for language in Language::ALL {
                    ui.selectable_value(&mut state.language, language, language.name());
                }
            });
    });
    ui.horizontal_wrapped(|ui| {
        match &state.connection {
            Connection::Connecting => {
                let text = fill(t(lang, "Connecting to {server}…"), &[("server", &state.server)]);
                ui.label(RichText::new(text).color(colors.warn));
            }
            Connection::Online => {
                let text = fill(t(lang, "Connected to {server}"), &[("server", &state.server)]);
                ui.label(RichText::new(text).color(colors.good));
            }
            Connection::Lost {
                error,
                next_attempt,
            } => {
                let secs = next_attempt
                    .saturating_duration_since(std::time::Instant::now())
                    .as_secs_f32()
                    .ceil();
                let text = fill(
                    t(
                        lang,
                        "Connection lost to {server}: {error}. Retrying in {secs} s; the data below may be out of date.",
                    ),
                    &[
                        ("server", &state.server),
                        ("error", error),
                        ("secs", &format!("{secs:.0}")),
                    ],
                );
                ui.label(RichText::new(text).color(colors.bad).strong());
                // The countdown moves on its own.
                ui.ctx().request_repaint_after(std::time::Duration::from_millis(500));
            }
        }
    });
}

/// The active screen.
pub fn screen_ui(
    ui: &mut egui::Ui,
    state: &mut ConsoleState,
    live: &mut crate::live::LiveControl,
    requests: &mut Vec<Request>,
) {
    match state.screen {
        Screen::Subjects => subjects::subjects_ui(ui, state, requests),
        Screen::Audit => audit::audit_ui(ui, state, requests),
        Screen::Live => live::live_ui(ui, state, live),
        Screen::Calibration => calibration::calibration_ui(ui, state, requests),
        Screen::Health => health::health_ui(ui, state),
    }
}

/// The texture of `picture`, uploaded once per picture (not re-built on every repaint).
fn texture(ui: &egui::Ui, key: &str, picture: &crate::backend::Picture) -> egui::TextureHandle {
    let id = egui::Id::unique(("texture", key));
    let ctx = ui.ctx();
    if let Some((serial, handle)) = ctx.data(|d| d.get_temp::<(u64, egui::TextureHandle)>(id))
        && serial == picture.serial
    {
        return handle;
    }
    let handle = ctx.load_texture(
        key,
        egui::ColorImage::from_rgba_unmultiplied(picture.size, &picture.rgba),
        egui::TextureOptions::LINEAR,
    );
    ctx.data_mut(|d| d.insert_temp(id, (picture.serial, handle.clone())));
    handle
}

fn notice_ui(ui: &mut egui::Ui, notice: &Option<Notice>) {
    if let Some(notice) = notice {
        let colors = palette(ui);
        let color = if notice.is_error {
            colors.bad
        } else {
            colors.good
        };
        ui.label(RichText::new(&notice.text).color(color));
    }
}

/// `2026-11-22 09:41:07 UTC` from ms since the Unix epoch (the date by the gallery's rule).
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000 % 86_400;
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        faceid_gallery::gallery::utc_date(ms),
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// "3 s ago", "5 min ago"... from ms since the epoch.
pub fn ago(lang: Language, ms: Option<u64>) -> String {
    let Some(ms) = ms else {
        return t(lang, "never").into();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let secs = now.saturating_sub(ms) / 1000;
    let (template, n) = match secs {
        0..=59 => ("{n} s ago", secs),
        60..=3599 => ("{n} min ago", secs / 60),
        3600..=86_399 => ("{n} h ago", secs / 3600),
        _ => ("{n} d ago", secs / 86_400),
    };
    fill(t(lang, template), &[("n", &n.to_string())])
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(1_795_340_467_000), "2026-11-22 09:41:07 UTC");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }
}
