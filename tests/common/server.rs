//! A real `faceid serve` for the tests: its home on disk (data directory with API keys, a
//! gallery key) and the process, stopped on drop.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The `faceid` binary built beside the running test (cargo puts every workspace binary of
/// one build in the same profile folder as the tests' `deps/`).
pub fn faceid_exe() -> PathBuf {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|t| t.parent()?.parent().map(|d| d.join("faceid")))
        .filter(|p| p.exists());
    exe.expect("the faceid binary beside the tests: run through `cargo test --workspace` or build -p faceid-cli first")
}

/// A running `faceid serve`.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT` (or https).
    pub base: String,
}

impl Server {
    /// Stops the process now (as a crash would: SIGKILL).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a server needs on disk: data directory (API keys, sled gallery), gallery key and
/// an admin key. Serve it as often as needed (one process at a time for sled).
#[derive(Debug)]
pub struct ServerHome {
    exe: PathBuf,
    pub data: tempfile::TempDir,
    pub key_file: PathBuf,
    /// Holds the gallery key (unless shared) and any other key file a test makes.
    pub key_dir: tempfile::TempDir,
    pub admin: String,
}

impl ServerHome {
    /// A fresh home for `exe`, with a new gallery key unless `key_file` shares one.
    pub fn new(exe: &Path, key_file: Option<&Path>) -> ServerHome {
        let data = tempfile::tempdir().unwrap();
        let key_dir = tempfile::tempdir().unwrap();
        let key_file = match key_file {
            Some(shared) => shared.to_path_buf(),
            None => {
                let file = key_dir.path().join("gallery.key");
                let made = Command::new(exe)
                    .args(["keys", "gallery"])
                    .arg(&file)
                    .status()
                    .unwrap();
                assert!(made.success(), "faceid keys gallery");
                file
            }
        };
        let mut home = ServerHome {
            exe: exe.to_path_buf(),
            data,
            key_file,
            key_dir,
            admin: String::new(),
        };
        home.admin = home.create_key("admin");
        home
    }

    /// A new API key of `role` (`client`, `operator`, `admin`), made offline by
    /// `faceid keys create` as an installer would: the secret.
    pub fn create_key(&self, role: &str) -> String {
        self.issue_key(role)["key"].as_str().unwrap().to_string()
    }

    /// The same, with everything `faceid keys create` prints (`key`, `id`, `app_id`, `role`).
    pub fn issue_key(&self, role: &str) -> Value {
        let out = Command::new(&self.exe)
            .args(["keys", "create", "--role", role, "--data"])
            .arg(self.data.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "faceid keys create --role {role}");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The transport key of surface 4's sealed fields (made by `faceid keys transport` on
    /// first use, in `key_dir`).
    pub fn transport_key(&self) -> PathBuf {
        let file = self.key_dir.path().join("transport.key");
        if !file.exists() {
            let made = Command::new(&self.exe)
                .args(["keys", "transport"])
                .arg(&file)
                .status()
                .unwrap();
            assert!(made.success(), "faceid keys transport");
        }
        file
    }

    /// Seals `bytes` for surface 4's field `field` with [`ServerHome::transport_key`], as a
    /// client would (`faceid encrypt`).
    pub fn seal(&self, field: &str, bytes: &[u8]) -> String {
        let plain = self.key_dir.path().join("plain.bin");
        std::fs::write(&plain, bytes).unwrap();
        let out = Command::new(&self.exe)
            .args(["encrypt", "--field", field, "--key-file"])
            .arg(self.transport_key())
            .arg(&plain)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Starts `faceid serve` on `listen` (`127.0.0.1:0` for any port) and waits until it
    /// listens.
    pub fn serve(&self, listen: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(&self.exe)
            .args(["serve", "--listen", listen, "--data"])
            .arg(self.data.path())
            .arg("--key-file")
            .arg(&self.key_file)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            if let Some(addr) = line.strip_prefix("faceid serving on ") {
                break addr.trim().to_string();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, base }
    }
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
