//! `faceid sync` (a headless kiosk's sync loop) and `faceid devices` (device tokens on a
//! running server).

use faceid_gallery::prelude::*;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use faceid_gallery::{Gallery, GalleryKey, GalleryOptions};
use faceid_sync::{SyncClient, SyncConfig};

/// Environment variable holding a device token when no `--token-file` is given.
pub const DEVICE_TOKEN_ENV: &str = "FACEID_DEVICE_TOKEN";
/// Environment variable holding the admin key `faceid devices` uses.
pub const ADMIN_KEY_ENV: &str = "FACEID_ADMIN_KEY";

/// What `faceid sync` was asked.
#[derive(Debug)]
pub struct SyncArgs<'a> {
    /// Kiosk gallery directory.
    pub gallery: &'a Path,
    /// Gallery key file (else the environment).
    pub key_file: Option<&'a Path>,
    /// Server base URL.
    pub server: &'a str,
    /// Device token file (else the environment).
    pub token_file: Option<&'a Path>,
    /// CA certificate file.
    pub ca: Option<&'a Path>,
    /// One cycle, then exit.
    pub once: bool,
    /// Events per push.
    pub batch: usize,
    /// Pause between cycles.
    pub interval: Duration,
    /// Print JSON.
    pub json: bool,
}

fn read_ca(ca: Option<&Path>) -> Result<Option<Vec<u8>>> {
    ca.map(|path| std::fs::read(path).with_context(|| format!("reading {}", path.display())))
        .transpose()
}

/// Runs the sync of a kiosk gallery: one cycle with `once`, else until Ctrl-C.
pub fn run(args: &SyncArgs) -> Result<()> {
    let key = match args.key_file {
        Some(file) => GalleryKey::from_file(file, args.gallery)?,
        None => GalleryKey::from_env().with_context(|| {
            format!(
                "no gallery key: pass --key-file FILE or set {}",
                faceid_gallery::key::KEY_ENV
            )
        })??,
    };
    let token = match args.token_file {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => std::env::var(DEVICE_TOKEN_ENV).with_context(|| {
            format!("no device token: pass --token-file FILE or set {DEVICE_TOKEN_ENV}")
        })?,
    };
    let gallery = Arc::new(Gallery::open_with(
        args.gallery,
        &key,
        GalleryOptions { outbox: true },
    )?);
    let mut config = SyncConfig::new(args.server, token.trim());
    config.ca_pem = read_ca(args.ca)?;
    config.batch = args.batch;
    config.interval = args.interval;
    let client = SyncClient::new(gallery.clone(), config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if args.once {
        let report = runtime.block_on(client.cycle());
        let status = gallery.sync_status()?;
        let report = report?;
        let out = serde_json::json!({"cycle": report, "status": status});
        if args.json {
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            println!(
                "pushed {} ({} conflicts), pulled {} (applied {}), cursor {}, pending {}",
                report.push.pushed,
                report.push.conflicts,
                report.pull.as_ref().map_or(0, |p| p.received),
                report.pull.as_ref().map_or(0, |p| p.applied),
                status.cursor,
                status.pending
            );
        }
        return Ok(());
    }
    eprintln!(
        "syncing {} with {} ({} events pending)",
        args.gallery.display(),
        args.server,
        gallery.pending()
    );
    runtime.block_on(client.run(async {
        let _ = tokio::signal::ctrl_c().await;
    }));
    Ok(())
}

/// What `faceid devices` does.
#[derive(Debug)]
pub enum DeviceAction<'a> {
    /// Issue a token.
    Issue(&'a str),
    /// Revoke a token.
    Revoke(&'a str),
    /// List devices.
    List,
}

/// Calls the server's admin API for device tokens and prints its answer.
pub fn devices(server: &str, ca: Option<&Path>, action: DeviceAction) -> Result<()> {
    let admin = std::env::var(ADMIN_KEY_ENV)
        .with_context(|| format!("set {ADMIN_KEY_ENV} to an admin key of the server"))?;
    let base = faceid_sync::checked_base_url(server)?;
    let http = faceid_sync::https_client(read_ca(ca)?.as_deref(), Duration::from_secs(30))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let request = match action {
            DeviceAction::Issue(name) => http
                .post(format!("{base}/v1/admin/devices"))
                .json(&serde_json::json!({ "name": name })),
            DeviceAction::Revoke(name) => {
                http.delete(format!("{base}/v1/admin/devices/{}", percent_encode(name)))
            }
            DeviceAction::List => http.get(format!("{base}/v1/admin/devices")),
        };
        let response = request
            .header("x-api-key", admin.trim())
            .send()
            .await
            .with_context(|| format!("reaching {base}"))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "the server answered {status}: {body}");
        if !body.is_empty() {
            println!("{body}");
        }
        Ok(())
    })
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
