//! The encrypted fields of surface 4 (`encrypted_video`, `encrypted_image`).
//!
//! Scheme: AES-256-GCM with a 256-bit key shared by the server and its clients.
//! `field = base64( nonce[12] || ciphertext || tag[16] )`, standard alphabet with padding;
//! the associated data is the form field's name, so a value sealed as `encrypted_image`
//! does not open as `encrypted_video`. A fresh random nonce per value. The key is 64 hex
//! digits in a 0600 file kept outside the data directory (`faceid serve
//! --transport-key-file`) or in `$FACEID_TRANSPORT_KEY`; clients seal with
//! `faceid encrypt --key-file KEY --field encrypted_video clip.mp4`.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;

/// Environment variable holding the transport key (64 hex digits).
pub const TRANSPORT_KEY_ENV: &str = "FACEID_TRANSPORT_KEY";

const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;

/// The shared transport key.
#[derive(Clone)]
pub struct TransportKey([u8; 32]);

impl std::fmt::Debug for TransportKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransportKey(..)")
    }
}

/// Why a sealed field did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    /// Not base64.
    #[error("not valid base64")]
    Base64,
    /// Shorter than a nonce and a tag.
    #[error("too short to be sealed data")]
    Truncated,
    /// Wrong key, wrong field, or altered bytes.
    #[error("does not decrypt with this server's key")]
    Decrypt,
}

impl TransportKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> TransportKey {
        TransportKey(bytes)
    }

    /// Reads a key file under the gallery key's rules (64 hex digits, mode 0600, and on a
    /// server not inside its `data_dir`; a client has none).
    pub fn from_file(
        path: &std::path::Path,
        data_dir: Option<&std::path::Path>,
    ) -> Result<TransportKey, faceid_gallery::Error> {
        let data_dir = data_dir.unwrap_or(std::path::Path::new(""));
        Ok(TransportKey(
            faceid_gallery::GalleryKey::from_file(path, data_dir)?.into_bytes(),
        ))
    }

    /// Reads the key from `$FACEID_TRANSPORT_KEY`, if set.
    pub fn from_env() -> Option<Result<TransportKey, faceid_gallery::Error>> {
        std::env::var(TRANSPORT_KEY_ENV)
            .ok()
            .map(|v| faceid_gallery::GalleryKey::from_hex(&v).map(|k| TransportKey(k.into_bytes())))
    }

    /// Seals `plaintext` for the form field `field`.
    pub fn seal(&self, field: &str, plaintext: &[u8]) -> String {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0));
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: field.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    /// Opens a value sealed for `field`.
    pub fn open(&self, field: &str, text: &str) -> Result<Vec<u8>, OpenError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| OpenError::Base64)?;
        if bytes.len() < NONCE_BYTES + TAG_BYTES {
            return Err(OpenError::Truncated);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0));
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: field.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_bound_to_key_and_field() {
        let key = TransportKey::from_bytes([7; 32]);
        let sealed = key.seal("encrypted_video", b"clip bytes");
        assert_eq!(key.open("encrypted_video", &sealed).unwrap(), b"clip bytes");
        assert_eq!(
            key.open("encrypted_image", &sealed),
            Err(OpenError::Decrypt)
        );
        let other = TransportKey::from_bytes([8; 32]);
        assert_eq!(
            other.open("encrypted_video", &sealed),
            Err(OpenError::Decrypt)
        );
        assert_eq!(key.open("encrypted_video", "%%%"), Err(OpenError::Base64));
        assert_eq!(
            key.open("encrypted_video", "AAAA"),
            Err(OpenError::Truncated)
        );
        assert_ne!(
            sealed,
            key.seal("encrypted_video", b"clip bytes"),
            "fresh nonce"
        );
    }
}
