//! Command-line options of the kiosk.

use std::path::PathBuf;

use clap::Parser;

/// Usage, printed on a bad argument.
pub const USAGE: &str = "usage: faceid-kiosk [--data DIR] [--key-file FILE] [--camera webcam[:N]|file:DIR|video:FILE] \
[--card-source camera|file:PATH] [--lang fr|ar|en] [--windowed] [--local-api 127.0.0.1:PORT] [--operator-pin DIGITS]";

/// How the kiosk starts. Settings saved by the operator win over the defaults; options given
/// here win over both.
#[derive(Debug, Clone, Parser)]
#[command(name = "faceid-kiosk", about = "The faceid kiosk")]
pub struct Options {
    /// Data directory (gallery, settings); default: $XDG_DATA_HOME/faceid-kiosk.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Gallery key file (0600, outside the data directory); created when absent. Default:
    /// $XDG_CONFIG_HOME/faceid/kiosk-gallery.key, or $FACEID_GALLERY_KEY.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Camera: webcam[:N], file:DIR (images), video:FILE.
    #[arg(long)]
    pub camera: Option<String>,
    /// ID cards: camera (the same camera) or file:PATH (an image, or a scanner folder).
    #[arg(long)]
    pub card_source: Option<String>,
    /// Start-screen language.
    #[arg(long = "lang")]
    pub language: Option<String>,
    /// A normal window instead of fullscreen kiosk mode (development).
    #[arg(long)]
    pub windowed: bool,
    /// Serve the native and admin API on this loopback address for the operator console.
    #[arg(long)]
    pub local_api: Option<String>,
    /// Set the operator PIN (stored hashed).
    #[arg(long)]
    pub operator_pin: Option<String>,
}

impl Options {
    /// Parses `args` (without the program name).
    pub fn from_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
        Options::try_parse_from(std::iter::once("faceid-kiosk".to_string()).chain(args))
            .map_err(|e| e.to_string())
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.data.clone().unwrap_or_else(|| {
            std::env::var_os("XDG_DATA_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
                .unwrap_or_else(|| PathBuf::from("."))
                .join("faceid-kiosk")
        })
    }

    /// The gallery key file.
    pub fn key_path(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| faceid_gallery::key::default_key_path("kiosk-gallery.key"))
    }
}
