//! `faceid models fetch|verify`: downloads every pinned artefact with the registry's own
//! client (`npm pack`, `pip download`), extracts the listed members and checks each sha256
//! before moving it into place. Idempotent: files already present and correct are skipped,
//! so a provisioned machine never touches the network again.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use faceid_core::models::{Artefact, Manifest, Package, PackageKind, read_verified, sha256_hex};

/// State of one artefact on disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtefactState {
    /// Present with the pinned checksum.
    Ok,
    /// Absent.
    Missing,
    /// Present with another checksum.
    Corrupt,
}

/// One line of a verification report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArtefactStatus {
    /// Path relative to the model directory.
    pub file: String,
    /// What was found.
    pub state: ArtefactState,
}

/// Checks every artefact of the manifest in `dir`.
pub fn verify(dir: &Path) -> Result<Vec<ArtefactStatus>> {
    let manifest = Manifest::pinned()?;
    Ok(manifest
        .artefacts
        .iter()
        .map(|a| ArtefactStatus {
            file: a.file.clone(),
            state: match read_verified(dir, &manifest, &a.file) {
                Ok(_) => ArtefactState::Ok,
                Err(e) if e.code() == faceid_core::ErrorCode::ModelMissing => {
                    ArtefactState::Missing
                }
                Err(_) => ArtefactState::Corrupt,
            },
        })
        .collect())
}

/// Fetches whatever is missing or corrupt into `dir`; returns the files it wrote.
pub fn fetch(dir: &Path, log: &mut dyn FnMut(&str)) -> Result<Vec<String>> {
    let manifest = Manifest::pinned()?;
    let needed: Vec<&Artefact> = verify(dir)?
        .iter()
        .filter(|s| s.state != ArtefactState::Ok)
        .filter_map(|s| manifest.artefact(&s.file))
        .collect();
    if needed.is_empty() {
        log("all artefacts present and verified");
        return Ok(Vec::new());
    }
    let staging = dir.join(".download");
    let mut written = Vec::new();
    for package in &manifest.packages {
        let members: Vec<&&Artefact> = needed
            .iter()
            .filter(|a| a.package == package.name)
            .collect();
        if members.is_empty() {
            continue;
        }
        let work = staging.join(&package.name);
        if work.exists() {
            std::fs::remove_dir_all(&work)
                .with_context(|| format!("cleaning {}", work.display()))?;
        }
        std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
        log(&format!("fetching {} ({})", package.spec, package.license));
        let archive = download(package, &work)?;
        for artefact in members {
            let extracted = extract(package, &archive, &artefact.member, &work)?;
            let bytes = std::fs::read(&extracted)
                .with_context(|| format!("reading {}", extracted.display()))?;
            let actual = sha256_hex(&bytes);
            if actual != artefact.sha256 {
                bail!(
                    "{} from {} has sha256 {actual}, expected {}: the registry served different bytes; refusing to install",
                    artefact.member,
                    package.spec,
                    artefact.sha256
                );
            }
            let target = dir.join(&artefact.file);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            // Same file system: the rename is atomic, so a reader never sees half a model.
            let partial = target.with_extension("partial");
            std::fs::write(&partial, &bytes)
                .with_context(|| format!("writing {}", partial.display()))?;
            std::fs::rename(&partial, &target)
                .with_context(|| format!("installing {}", target.display()))?;
            log(&format!("  {} ok", artefact.file));
            written.push(artefact.file.clone());
        }
    }
    let _ = std::fs::remove_dir_all(&staging);
    Ok(written)
}

fn run(command: &mut Command, what: &str) -> Result<String> {
    let output = command.output().with_context(|| {
        format!(
            "{what}: could not start {:?} (is it installed?)",
            command.get_program()
        )
    })?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Downloads the package archive into `work` and returns its path.
fn download(package: &Package, work: &Path) -> Result<PathBuf> {
    match package.kind {
        PackageKind::Npm => {
            run(
                Command::new("npm")
                    .args(["pack", &package.spec, "--silent", "--pack-destination"])
                    .arg(work),
                &format!("npm pack {}", package.spec),
            )?;
        }
        PackageKind::PypiWheel => {
            let mut command = Command::new("python3");
            command.args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--quiet",
                "--disable-pip-version-check",
            ]);
            if let Some(python) = &package.wheel_python {
                command.args(["--python-version", python]);
            }
            if let Some(platform) = &package.wheel_platform {
                command.args(["--platform", platform]);
            }
            command.arg("-d").arg(work).arg(&package.spec);
            run(&mut command, &format!("pip download {}", package.spec))?;
        }
    }
    let wanted = match package.kind {
        PackageKind::Npm => "tgz",
        PackageKind::PypiWheel => "whl",
    };
    std::fs::read_dir(work)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == wanted))
        .with_context(|| format!("{}: no .{wanted} archive was downloaded", package.spec))
}

/// Extracts one member of the archive into `work` and returns its path.
fn extract(package: &Package, archive: &Path, member: &str, work: &Path) -> Result<PathBuf> {
    let out = work.join("x");
    std::fs::create_dir_all(&out)?;
    match package.kind {
        PackageKind::Npm => {
            run(
                Command::new("tar")
                    .arg("-xzf")
                    .arg(archive)
                    .arg("-C")
                    .arg(&out)
                    .arg(member),
                &format!("extracting {member}"),
            )?;
        }
        PackageKind::PypiWheel => {
            run(
                Command::new("python3")
                    .args(["-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])"])
                    .arg(archive)
                    .arg(member)
                    .arg(&out),
                &format!("extracting {member}"),
            )?;
        }
    }
    Ok(out.join(member))
}
