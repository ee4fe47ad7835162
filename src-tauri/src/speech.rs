//! Spoken prompts through the system's offline speech engine, `espeak-ng` (Debian package
//! `espeak-ng`, installed by `make setup`): French, Arabic and English voices ship with it.
//! The UI sends the sentence it shows, in its language; a new prompt cuts the one still
//! being spoken, so the voice never lags behind the screen. Without `espeak-ng` the kiosk
//! stays silent and says so once in its log.

use std::process::{Child, Command, Stdio};

/// The speech engine's command.
pub const ENGINE: &str = "espeak-ng";
/// Words per minute: slower than the default 175 for a public kiosk.
const RATE: &str = "145";

/// The espeak-ng voice of a kiosk language.
pub fn voice(language: &str) -> Option<&'static str> {
    match language {
        "fr" => Some("fr"),
        "ar" => Some("ar"),
        "en" => Some("en-gb"),
        _ => None,
    }
}

/// The kiosk's voice: on or off, and the utterance in progress.
#[derive(Debug)]
pub struct Speech {
    enabled: bool,
    speaking: Option<Child>,
    last: Option<(String, String)>,
    missing_logged: bool,
}

impl Speech {
    /// A voice, on or off.
    pub fn new(enabled: bool) -> Speech {
        Speech {
            enabled,
            speaking: None,
            last: None,
            missing_logged: false,
        }
    }

    /// Whether prompts are spoken.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Turns the voice on or off (off cuts the current prompt).
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
        self.last = None;
        if !on {
            self.stop();
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.speaking.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Speaks `text` in `language` (ignored when off, for an unknown language, or when it is
    /// the prompt just spoken).
    pub fn say(&mut self, text: &str, language: &str) {
        let Some(voice) = voice(language) else {
            return;
        };
        let text = text.trim();
        let key = (text.to_string(), language.to_string());
        if !self.enabled || text.is_empty() || self.last.as_ref() == Some(&key) {
            return;
        }
        self.stop();
        self.last = Some(key);
        match Command::new(ENGINE)
            .args(["-v", voice, "-s", RATE, "--", text])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => self.speaking = Some(child),
            Err(e) if !self.missing_logged => {
                self.missing_logged = true;
                tracing::warn!(error = %e, "no spoken prompts: install espeak-ng (make setup does)");
            }
            Err(_) => {}
        }
    }
}

impl Drop for Speech {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Renders `text` in `language` to a WAV file with the same engine and voice (tests, and
/// recording the prompts).
pub fn render(text: &str, language: &str, wav: &std::path::Path) -> std::io::Result<bool> {
    let Some(voice) = voice(language) else {
        return Ok(false);
    };
    Command::new(ENGINE)
        .args(["-v", voice, "-s", RATE, "-w"])
        .arg(wav)
        .args(["--", text])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every kiosk language has a voice that speaks (a WAV with sound in it).
    #[test]
    fn each_language_is_spoken() {
        let dir = tempfile::tempdir().unwrap();
        for (language, text) in [
            ("fr", "Tournez la tête vers la gauche"),
            ("ar", "أدر رأسك إلى اليسار"),
            ("en", "Turn your head to the left"),
        ] {
            let wav = dir.path().join(format!("{language}.wav"));
            assert!(
                render(text, language, &wav).unwrap(),
                "espeak-ng could not speak {language} (make setup installs it)"
            );
            let bytes = std::fs::read(&wav).unwrap();
            // Half a second of 22 kHz 16-bit audio at least, and not silence.
            assert!(bytes.len() > 22_050, "{language}: {} bytes", bytes.len());
            let loud = bytes[44..]
                .chunks_exact(2)
                .filter(|s| i16::from_le_bytes([s[0], s[1]]).unsigned_abs() > 1000)
                .count();
            assert!(loud > 1000, "{language}: {loud} loud samples");
        }
        assert!(voice("de").is_none());
        let mut speech = Speech::new(false);
        speech.say("hello", "en");
        assert!(speech.speaking.is_none(), "off says nothing");
    }
}
