//! The gallery key: 32 bytes for AES-256-GCM, from a file readable by its owner only
//! (mode 0600) or from an environment variable, never stored beside the data.

use std::path::Path;

use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore;

use crate::error::{Error, Result};

/// Environment variable holding the key as 64 hex digits.
pub const KEY_ENV: &str = "FACEID_GALLERY_KEY";

/// A 256-bit key. `Debug` never prints it.
#[derive(Clone)]
pub struct GalleryKey([u8; 32]);

impl std::fmt::Debug for GalleryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GalleryKey(..)")
    }
}

impl GalleryKey {
    /// A fresh random key from the operating system.
    pub fn generate() -> GalleryKey {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        GalleryKey(key)
    }

    /// Parses 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<GalleryKey> {
        let text = text.trim();
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Key("expected 64 hex digits".into()));
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16)
                .map_err(|_| Error::Key("bad hex".into()))?;
        }
        Ok(GalleryKey(key))
    }

    /// The key as 64 hex digits (for writing a new key file).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads a key file. Refuses a file others can read (mode must be 0600 or stricter) and
    /// a file inside `data_dir`: a key stored beside the data protects nothing.
    pub fn from_file(path: &Path, data_dir: &Path) -> Result<GalleryKey> {
        let canonical = path
            .canonicalize()
            .map_err(|e| Error::Key(format!("{}: {e}", path.display())))?;
        if let Ok(data) = data_dir.canonicalize()
            && canonical.starts_with(&data)
        {
            return Err(Error::Key(format!(
                "{} is inside the data directory; keep the key elsewhere",
                path.display()
            )));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&canonical)
                .map_err(|e| Error::Key(e.to_string()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(Error::Key(format!(
                    "{} is readable by others (mode {:o}); chmod 600 it",
                    path.display(),
                    mode & 0o777
                )));
            }
        }
        let text = std::fs::read_to_string(&canonical)
            .map_err(|e| Error::Key(format!("{}: {e}", path.display())))?;
        GalleryKey::from_hex(&text)
    }

    /// Reads the key from `$FACEID_GALLERY_KEY`, if set.
    pub fn from_env() -> Option<Result<GalleryKey>> {
        std::env::var(KEY_ENV)
            .ok()
            .map(|v| GalleryKey::from_hex(&v))
    }

    /// Writes a new key file with mode 0600 (refusing to overwrite).
    pub fn write_new(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(path)
            .map_err(|e| Error::Key(format!("{}: {e}", path.display())))?;
        file.write_all(self.to_hex().as_bytes())
            .map_err(|e| Error::Key(e.to_string()))?;
        file.sync_all().map_err(|e| Error::Key(e.to_string()))
    }

    /// The key a program uses when none is given: `$FACEID_GALLERY_KEY` if set, else the
    /// file `path`, created on first start (0600, its directory made) when absent. `path`
    /// must lie outside `data_dir` ([`GalleryKey::from_file`]). Returns the key and where it
    /// came from, for the log (never the key itself).
    pub fn from_env_or_file(path: &Path, data_dir: &Path) -> Result<(GalleryKey, KeySource)> {
        if let Some(key) = GalleryKey::from_env() {
            return Ok((key?, KeySource::Environment));
        }
        let created = !path.exists();
        if created {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| Error::Key(format!("{}: {e}", parent.display())))?;
            }
            GalleryKey::generate().write_new(path)?;
        }
        let key = GalleryKey::from_file(path, data_dir)?;
        let source = if created {
            KeySource::Created(path.to_path_buf())
        } else {
            KeySource::File(path.to_path_buf())
        };
        Ok((key, source))
    }

    /// The raw key, for other 256-bit secrets kept under the same file rules (the server's
    /// transport key for surface 4's encrypted fields).
    pub fn into_bytes(self) -> [u8; 32] {
        self.0
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A key for another purpose (`label`), derived one way from this one: SHA-256 of the
    /// label and the key, so the purposes never share a key.
    pub(crate) fn derive(&self, label: &[u8]) -> [u8; 32] {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        hash.update(b"faceid key derivation\0");
        hash.update(label);
        hash.update(self.0);
        hash.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects_garbage() {
        let k = GalleryKey::generate();
        assert_eq!(
            GalleryKey::from_hex(&k.to_hex()).unwrap().bytes(),
            k.bytes()
        );
        assert!(GalleryKey::from_hex("abc").is_err());
        assert!(GalleryKey::from_hex(&"zz".repeat(32)).is_err());
        assert_eq!(format!("{k:?}"), "GalleryKey(..)");
    }

    #[test]
    fn key_files_must_be_private_and_away_from_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let key = GalleryKey::generate();
        let outside = dir.path().join("gallery.key");
        key.write_new(&outside).unwrap();
        assert_eq!(
            GalleryKey::from_file(&outside, &data).unwrap().bytes(),
            key.bytes()
        );
        assert!(key.write_new(&outside).is_err(), "never overwrites a key");
        let inside = data.join("gallery.key");
        key.write_new(&inside).unwrap();
        assert!(
            GalleryKey::from_file(&inside, &data)
                .unwrap_err()
                .to_string()
                .contains("inside the data directory")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(
                GalleryKey::from_file(&outside, &data)
                    .unwrap_err()
                    .to_string()
                    .contains("chmod 600")
            );
        }
    }
}

/// Where a program's gallery key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `$FACEID_GALLERY_KEY`.
    Environment,
    /// An existing key file.
    File(std::path::PathBuf),
    /// A key file created on this start.
    Created(std::path::PathBuf),
}

/// `$XDG_CONFIG_HOME/faceid/NAME` (or `~/.config/faceid/NAME`): where programs keep their
/// gallery key by default, away from any data directory.
pub fn default_key_path(name: &str) -> std::path::PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| std::path::PathBuf::from("."))
        .join("faceid")
        .join(name)
}
