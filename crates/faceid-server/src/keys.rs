//! API keys: random 256-bit secrets shown once at creation; only their sha256 is stored
//! (`api-keys.json` in the data directory), with a role and, for surface 5, an app id.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A kiosk's sync token: `/v1/sync/*` only. Its `app_id` is the device name.
    Device,
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

/// The key store of a data directory. The file is the truth: a running server sees keys
/// that `faceid keys create` adds to it (the file is re-read when its size or time
/// changes), and the admin API's changes re-read it before saving atomically, so neither
/// writer loses the other's keys.
#[derive(Debug, Default)]
pub struct ApiKeys {
    dir: Option<PathBuf>,
    keys: RwLock<Loaded>,
}

/// The keys as last read, and the file's stamp at that time.
#[derive(Debug, Default, Clone)]
struct Loaded {
    keys: Vec<StoredKey>,
    stamp: Option<(std::time::SystemTime, u64)>,
}

fn stamp(data_dir: &Path) -> Option<(std::time::SystemTime, u64)> {
    let meta = std::fs::metadata(key_file(data_dir)).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn load_stamped(data_dir: &Path) -> std::io::Result<Loaded> {
    let stamp = stamp(data_dir);
    Ok(Loaded {
        keys: read_keys(data_dir)?,
        stamp,
    })
}

/// A key just created: the secret is shown once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewKey {
    /// The secret, for `x-api-key` / `APP-KEY`.
    pub key: String,
    /// Surface 5's `APP-ID`.
    pub app_id: String,
    /// Public id.
    pub id: String,
    /// Role.
    #[schema(value_type = String, example = "client")]
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

fn read_keys(data_dir: &Path) -> std::io::Result<Vec<StoredKey>> {
    match std::fs::read(key_file(data_dir)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn write_keys(data_dir: &Path, keys: &[StoredKey]) -> std::io::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let path = key_file(data_dir);
    let partial = path.with_extension("json.partial");
    std::fs::write(
        &partial,
        serde_json::to_vec_pretty(keys).map_err(std::io::Error::other)?,
    )?;
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, &path)
}

fn mint(role: Role) -> (NewKey, StoredKey) {
    let secret = hex(uuid::Uuid::new_v4().as_bytes()) + &hex(uuid::Uuid::new_v4().as_bytes());
    let id = format!("key-{}", &hex(uuid::Uuid::new_v4().as_bytes())[..12]);
    let app_id = uuid::Uuid::new_v4().to_string();
    let stored = StoredKey {
        id: id.clone(),
        app_id: app_id.clone(),
        role,
        sha256: digest(&secret),
    };
    let new = NewKey {
        key: secret,
        app_id,
        id,
        role,
    };
    (new, stored)
}

impl ApiKeys {
    /// Loads the keys of `data_dir` (none when the file is absent).
    pub fn load(data_dir: &Path) -> std::io::Result<ApiKeys> {
        Ok(ApiKeys {
            dir: Some(data_dir.to_path_buf()),
            keys: RwLock::new(load_stamped(data_dir)?),
        })
    }

    /// The keys, re-read first when the file changed since the last read (a key added by
    /// `faceid keys create` works at once). An unreadable file keeps the keys in memory.
    fn current(&self) -> Vec<StoredKey> {
        let loaded = self.keys.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(dir) = &self.dir else {
            return loaded.keys;
        };
        if stamp(dir) == loaded.stamp {
            return loaded.keys;
        }
        match load_stamped(dir) {
            Ok(fresh) => {
                let keys = fresh.keys.clone();
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                keys
            }
            Err(e) => {
                tracing::error!(error = %e, "the API key file could not be re-read");
                loaded.keys
            }
        }
    }

    /// Applies `change` to the keys as the file has them now, saves, then takes effect.
    fn change<T>(
        &self,
        change: impl FnOnce(&mut Vec<StoredKey>) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        let mut loaded = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let mut next = match &self.dir {
            Some(dir) => read_keys(dir)?,
            None => loaded.keys.clone(),
        };
        let answer = change(&mut next)?;
        if let Some(dir) = &self.dir {
            write_keys(dir, &next)?;
            loaded.stamp = stamp(dir);
        }
        loaded.keys = next;
        Ok(answer)
    }

    /// Creates a key with `role` in the store of `data_dir` (the `faceid keys create`
    /// command), saves it atomically, returns the secret once.
    pub fn create(data_dir: &Path, role: Role) -> std::io::Result<NewKey> {
        let mut keys = read_keys(data_dir)?;
        let (new, stored) = mint(role);
        keys.push(stored);
        write_keys(data_dir, &keys)?;
        Ok(new)
    }

    /// Creates a key at run time (admin API): saved, then usable at once.
    pub fn issue(&self, role: Role) -> std::io::Result<NewKey> {
        let (new, stored) = mint(role);
        self.change(|keys| {
            keys.push(stored);
            Ok(())
        })?;
        Ok(new)
    }

    /// Revokes the key with public id `id`; false when there is none.
    pub fn revoke(&self, id: &str) -> std::io::Result<bool> {
        self.change(|keys| {
            let before = keys.len();
            keys.retain(|k| k.id != id);
            Ok(keys.len() != before)
        })
    }

    /// Every stored key (hashes, never secrets).
    pub fn list(&self) -> Vec<StoredKey> {
        self.current()
    }

    /// The key whose secret is `secret`, compared by hash.
    pub fn find(&self, secret: &str) -> Option<StoredKey> {
        let wanted = digest(secret);
        self.current().into_iter().find(|k| k.sha256 == wanted)
    }

    /// The key with this app id and secret (surface 5).
    pub fn find_app(&self, app_id: &str, secret: &str) -> Option<StoredKey> {
        self.find(secret)
            .filter(|k| k.app_id == app_id && k.role >= Role::Client)
    }

    /// Issues the sync token of kiosk `name` (1-64 of `A-Za-z0-9._-`); `AlreadyExists`
    /// when the device has one (revoke it first).
    pub fn issue_device(&self, name: &str) -> std::io::Result<NewKey> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a device name is 1-64 of A-Z a-z 0-9 . _ -",
            ));
        }
        let (mut new, mut stored) = mint(Role::Device);
        new.app_id = name.to_string();
        stored.app_id = name.to_string();
        self.change(|keys| {
            if keys
                .iter()
                .any(|k| k.role == Role::Device && k.app_id == name)
            {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("device {name} already has a token"),
                ));
            }
            keys.push(stored);
            Ok(())
        })?;
        Ok(new)
    }

    /// Revokes the token of device `name`; false when it has none.
    pub fn revoke_device(&self, name: &str) -> std::io::Result<bool> {
        let id = self
            .list()
            .into_iter()
            .find(|k| k.role == Role::Device && k.app_id == name)
            .map(|k| k.id);
        match id {
            Some(id) => self.revoke(&id),
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_created_beside_a_running_server_works_at_once_and_survives_its_changes() {
        let dir = tempfile::tempdir().unwrap();
        let running = ApiKeys::load(dir.path()).unwrap();
        // `faceid keys create --data DIR` while the server runs on DIR.
        let created = ApiKeys::create(dir.path(), Role::Client).unwrap();
        assert_eq!(
            running.find(&created.key).map(|k| k.role),
            Some(Role::Client),
            "the running server accepts the new key"
        );
        // A key issued through the admin API keeps the one the command added.
        let issued = running.issue(Role::Admin).unwrap();
        let reloaded = ApiKeys::load(dir.path()).unwrap();
        assert!(reloaded.find(&created.key).is_some());
        assert!(reloaded.find(&issued.key).is_some());
    }

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
        let issued = keys.issue(Role::Admin).unwrap();
        assert_eq!(keys.find(&issued.key).unwrap().role, Role::Admin);
        assert!(
            ApiKeys::load(dir.path())
                .unwrap()
                .find(&issued.key)
                .is_some(),
            "saved"
        );
        assert!(keys.revoke(&issued.id).unwrap());
        assert!(keys.find(&issued.key).is_none());
        assert!(!keys.revoke(&issued.id).unwrap());
        assert!(
            ApiKeys::load(dir.path())
                .unwrap()
                .find(&issued.key)
                .is_none(),
            "saved"
        );
    }
}
