//! What the operator changes, persisted as `kiosk.toml` in the kiosk's data directory
//! (written atomically). The operator PIN is stored as a salted sha256, never in clear.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Languages of the kiosk.
pub const LANGUAGES: [&str; 3] = ["fr", "ar", "en"];

/// The kiosk's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Camera spec: `webcam[:N]`, `file:DIR`, `video:FILE`.
    pub camera: String,
    /// Where ID cards come from: `camera` (the same camera), or `file:PATH` (an image or a
    /// scanner folder whose newest image is taken).
    pub card_source: String,
    /// Liveness preset: SOFT, REGULAR or HARDENED.
    pub liveness_preset: String,
    /// Challenge steps that may be drawn: `turn_left`, `turn_right`, `look_up`, `blink`,
    /// `come_closer` (at least two).
    pub challenge_steps: Vec<String>,
    /// Steps per challenge: 2 or 3.
    pub challenge_length: usize,
    /// Speak the prompts aloud (espeak-ng, in the screen's language).
    pub spoken_prompts: bool,
    /// The webcam this kiosk accepts, by stable id: a `/dev/v4l/by-id/...` path or a USB
    /// `vendor:product` (hex). Empty: the first camera that is not virtual.
    pub camera_id: String,
    /// Language of the start screen: fr, ar or en.
    pub language: String,
    /// Central server for sync; `None` keeps every request on this machine.
    pub server_url: Option<String>,
    /// PEM certificate of the authority that signed the server's certificate (the kiosk
    /// trusts nothing else). The device token is read from `device-token` in the data
    /// directory, or `$FACEID_DEVICE_TOKEN`.
    pub server_ca_file: Option<PathBuf>,
    /// Keep enrollment selfies (encrypted) for operators.
    pub retain_images: bool,
    /// Seconds without a touch before any screen returns to the start.
    pub inactivity_secs: u64,
    /// Salted sha256 of the operator PIN, `salt$hex`.
    pub operator_pin: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            camera: "webcam".into(),
            card_source: "camera".into(),
            liveness_preset: "REGULAR".into(),
            challenge_steps: faceid_core::Step::ALL
                .iter()
                .map(|s| s.name().to_string())
                .collect(),
            challenge_length: 2,
            spoken_prompts: true,
            camera_id: String::new(),
            language: "fr".into(),
            server_url: None,
            server_ca_file: None,
            retain_images: false,
            inactivity_secs: 60,
            operator_pin: hash_pin("0000", "faceid"),
        }
    }
}

/// Why settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value out of range.
    #[error("invalid setting: {0}")]
    Invalid(String),
    /// The file could not be read or written.
    #[error("settings file: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not valid TOML for these settings.
    #[error("settings file: {0}")]
    Parse(String),
}

fn hash_pin(pin: &str, salt: &str) -> String {
    let digest = Sha256::digest(format!("{salt}:{pin}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{salt}${hex}")
}

impl Settings {
    /// The settings file of a data directory.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("kiosk.toml")
    }

    /// Loads the settings of `data_dir` (defaults when absent).
    pub fn load(data_dir: &Path) -> Result<Settings, SettingsError> {
        match std::fs::read_to_string(Settings::path(data_dir)) {
            Ok(text) => {
                let settings: Settings =
                    toml::from_str(&text).map_err(|e| SettingsError::Parse(e.to_string()))?;
                settings.validate()?;
                Ok(settings)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |what: &str| Err(SettingsError::Invalid(what.into()));
        if faceid_core::LivenessPreset::parse(&self.liveness_preset).is_none() {
            return bad("liveness_preset must be SOFT, REGULAR or HARDENED");
        }
        let steps = self.steps();
        if steps.len() != self.challenge_steps.len() {
            return bad("challenge_steps: turn_left, turn_right, look_up, blink, come_closer");
        }
        if steps.len() < 2 {
            return bad("challenge_steps must allow at least two steps");
        }
        if !(2..=3).contains(&self.challenge_length) {
            return bad("challenge_length must be 2 or 3");
        }
        if !LANGUAGES.contains(&self.language.as_str()) {
            return bad("language must be fr, ar or en");
        }
        if crate::camera::CameraSpec::parse(&self.camera).is_err() {
            return bad("camera must be webcam[:N], file:DIR, video:FILE or watch:DIR");
        }
        if self.card_source != "camera" && !self.card_source.starts_with("file:") {
            return bad("card_source must be camera or file:PATH");
        }
        if !(10..=3600).contains(&self.inactivity_secs) {
            return bad("inactivity_secs must be 10..=3600");
        }
        if let Some(url) = &self.server_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return bad("server_url must start with http:// or https://");
        }
        Ok(())
    }

    /// Saves atomically into `data_dir`.
    pub fn save(&self, data_dir: &Path) -> Result<(), SettingsError> {
        self.validate()?;
        let text = toml::to_string(self).map_err(|e| SettingsError::Parse(e.to_string()))?;
        let path = Settings::path(data_dir);
        let partial = path.with_extension("toml.partial");
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, &path)?;
        Ok(())
    }

    /// Sets a new operator PIN (4 to 12 digits).
    pub fn set_pin(&mut self, pin: &str) -> Result<(), SettingsError> {
        if !(4..=12).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SettingsError::Invalid(
                "the PIN must be 4 to 12 digits".into(),
            ));
        }
        let salt = format!(
            "{:016x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        );
        self.operator_pin = hash_pin(pin, &salt);
        Ok(())
    }

    /// Whether `pin` is the operator PIN.
    pub fn pin_matches(&self, pin: &str) -> bool {
        self.operator_pin
            .split_once('$')
            .is_some_and(|(salt, _)| hash_pin(pin, salt) == self.operator_pin)
    }

    /// The challenge steps allowed, parsed (unknown names left out).
    pub fn steps(&self) -> Vec<faceid_core::Step> {
        faceid_core::Step::ALL
            .into_iter()
            .filter(|s| self.challenge_steps.iter().any(|n| n == s.name()))
            .collect()
    }

    /// The challenges this kiosk draws.
    pub fn challenge(&self) -> faceid_core::ChallengeConfig {
        faceid_core::ChallengeConfig {
            steps: self.challenge_length,
            allowed: self.steps(),
            ..faceid_core::ChallengeConfig::default()
        }
    }

    /// The liveness preset.
    pub fn preset(&self) -> faceid_core::LivenessPreset {
        faceid_core::LivenessPreset::parse(&self.liveness_preset)
            .unwrap_or(faceid_core::LivenessPreset::Regular)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_pin_and_validation() {
        let dir = std::env::temp_dir().join(format!("faceid-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = Settings::load(&dir).unwrap();
        assert_eq!(s, Settings::default());
        assert!(s.pin_matches("0000"));
        s.set_pin("482913").unwrap();
        assert!(s.pin_matches("482913") && !s.pin_matches("0000"));
        assert!(s.set_pin("12a4").is_err());
        s.language = "ar".into();
        s.camera = "video:/tmp/demo.mp4".into();
        s.save(&dir).unwrap();
        assert_eq!(Settings::load(&dir).unwrap(), s);
        let text = std::fs::read_to_string(Settings::path(&dir)).unwrap();
        assert!(!text.contains("482913"), "the PIN is stored hashed");
        s.language = "de".into();
        assert!(s.save(&dir).is_err());
        s.language = "fr".into();
        s.challenge_steps = vec!["turn_left".into(), "wink".into()];
        assert!(s.save(&dir).is_err(), "an unknown step is refused");
        s.challenge_steps = vec!["blink".into()];
        assert!(s.save(&dir).is_err(), "one step is not a challenge");
        s.challenge_steps = vec!["turn_left".into(), "turn_right".into()];
        s.challenge_length = 3;
        s.save(&dir).unwrap();
        let challenge = Settings::load(&dir).unwrap().challenge();
        assert_eq!(
            challenge.allowed,
            [faceid_core::Step::TurnLeft, faceid_core::Step::TurnRight]
        );
        assert_eq!(challenge.steps, 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
