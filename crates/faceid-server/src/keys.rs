//! API keys: random 256-bit secrets shown once at creation; only their sha256 is stored
//! (`api-keys.json` in the data directory), with a role and, for surface 5, an app id.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Enroll, verify, identify, liveness.
    Client,
    /// Client rights plus subject lists, deletion and audit reads.
    Operator,
    /// Everything, including reset and key management.
    Admin,
}

impl Role {
    /// Parses `client`, `operator` or `admin`.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "client" => Some(Role::Client),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A stored key: never the secret itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredKey {
    /// Public identifier (appears in audit events and logs).
    pub id: String,
    /// Surface 5's `APP-ID`.
    pub app_id: String,
    /// Role.
    pub role: Role,
    /// Hex sha256 of the secret.
    pub sha256: String,
}

/// The key store.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    keys: Vec<StoredKey>,
}

/// A key just created: the secret is shown once.
#[derive(Debug, Clone, Serialize)]
pub struct NewKey {
    /// The secret, for `x-api-key` / `APP-KEY`.
    pub key: String,
    /// Surface 5's `APP-ID`.
    pub app_id: String,
    /// Public id.
    pub id: String,
    /// Role.
    pub role: Role,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// The key file of a data directory.
pub fn key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("api-keys.json")
}

impl ApiKeys {
    /// Loads the keys of `data_dir` (none when the file is absent).
    pub fn load(data_dir: &Path) -> std::io::Result<ApiKeys> {
        match std::fs::read(key_file(data_dir)) {
            Ok(bytes) => Ok(ApiKeys {
                keys: serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ApiKeys::default()),
            Err(e) => Err(e),
        }
    }

    /// Creates a key with `role`, saves the store atomically, returns the secret once.
    pub fn create(data_dir: &Path, role: Role) -> std::io::Result<NewKey> {
        let mut store = ApiKeys::load(data_dir)?;
        let secret = hex(uuid::Uuid::new_v4().as_bytes()) + &hex(uuid::Uuid::new_v4().as_bytes());
        let id = format!("key-{}", &hex(uuid::Uuid::new_v4().as_bytes())[..12]);
        let app_id = uuid::Uuid::new_v4().to_string();
        store.keys.push(StoredKey {
            id: id.clone(),
            app_id: app_id.clone(),
            role,
            sha256: digest(&secret),
        });
        std::fs::create_dir_all(data_dir)?;
        let path = key_file(data_dir);
        let partial = path.with_extension("json.partial");
        std::fs::write(
            &partial,
            serde_json::to_vec_pretty(&store.keys).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&partial, &path)?;
        Ok(NewKey {
            key: secret,
            app_id,
            id,
            role,
        })
    }

    /// The key whose secret is `secret`, compared by hash.
    pub fn find(&self, secret: &str) -> Option<&StoredKey> {
        let wanted = digest(secret);
        self.keys.iter().find(|k| k.sha256 == wanted)
    }

    /// The key with this app id and secret (surface 5).
    pub fn find_app(&self, app_id: &str, secret: &str) -> Option<&StoredKey> {
        self.find(secret).filter(|k| k.app_id == app_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stored_hashed_and_found_by_secret() {
        let dir = tempfile::tempdir().unwrap();
        let new = ApiKeys::create(dir.path(), Role::Client).unwrap();
        let text = std::fs::read_to_string(key_file(dir.path())).unwrap();
        assert!(!text.contains(&new.key), "the secret is never stored");
        let keys = ApiKeys::load(dir.path()).unwrap();
        assert_eq!(keys.find(&new.key).unwrap().role, Role::Client);
        assert!(keys.find("guess").is_none());
        assert!(keys.find_app(&new.app_id, &new.key).is_some());
        assert!(keys.find_app("other", &new.key).is_none());
    }
}
