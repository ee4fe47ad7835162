//! The engine's error type and the stable error codes every shell reports.
//!
//! Codes are part of the public contract: the kiosk, the server and the CLI all print
//! `Error::code()` verbatim, so a code never changes meaning once released.

use std::fmt;

use serde::Serialize;

/// Stable, machine-readable identifier of an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorCode {
    /// No face was found in the image.
    NoFace,
    /// More than one sizeable face: a bystander or a photo next to the subject.
    MultipleFaces,
    /// The face is too small (inter-eye distance below the configured minimum).
    FaceTooSmall,
    /// Head turned or tilted beyond the configured limits.
    BadPose,
    /// One or both eyes closed.
    EyesClosed,
    /// Face under-exposed.
    TooDark,
    /// Face over-exposed.
    TooBright,
    /// Face not sharp enough.
    TooBlurry,
    /// Too little contrast on the face.
    LowContrast,
    /// One side of the face much brighter than the other.
    UnevenLighting,
    /// Zero-byte input.
    EmptyInput,
    /// The encoded input exceeds the byte limit.
    InputTooLarge,
    /// The image declares more pixels than the pixel limit.
    ImageTooLarge,
    /// Not one of the supported image formats.
    UnsupportedFormat,
    /// Recognised format but the data is truncated or corrupt.
    CorruptImage,
    /// No portrait found on an identity document.
    NoPortrait,
    /// The identity document's machine-readable zone says it has expired (beyond the
    /// configured grace days).
    DocumentExpired,
    /// The identity document's machine-readable zone was read but its check digits
    /// disagree: a misread (rescan) or a forged number.
    MrzCheckFailed,
    /// Templates made by different models cannot be compared.
    ModelMismatch,
    /// A serialised template could not be read.
    InvalidTemplate,
    /// A model or runtime file is absent.
    ModelMissing,
    /// A model or runtime file does not match its pinned checksum.
    ModelCorrupt,
    /// ONNX Runtime could not be loaded or failed during inference.
    RuntimeError,
    /// An impossible configuration value.
    InvalidConfig,
    /// An empty sequence of frames was given where at least one is needed.
    NoFrames,
    /// A selfie video shorter than the configured minimum (`min_video_seconds`).
    VideoTooShort,
    /// A crop or warp of the image could not be made (never replaced by a black crop).
    ImageProcessingFailed,
}

impl ErrorCode {
    /// The code as printed on the wire, e.g. `NO_FACE`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NoFace => "NO_FACE",
            ErrorCode::MultipleFaces => "MULTIPLE_FACES",
            ErrorCode::FaceTooSmall => "FACE_TOO_SMALL",
            ErrorCode::BadPose => "BAD_POSE",
            ErrorCode::EyesClosed => "EYES_CLOSED",
            ErrorCode::TooDark => "TOO_DARK",
            ErrorCode::TooBright => "TOO_BRIGHT",
            ErrorCode::TooBlurry => "TOO_BLURRY",
            ErrorCode::LowContrast => "LOW_CONTRAST",
            ErrorCode::UnevenLighting => "UNEVEN_LIGHTING",
            ErrorCode::EmptyInput => "EMPTY_INPUT",
            ErrorCode::InputTooLarge => "INPUT_TOO_LARGE",
            ErrorCode::ImageTooLarge => "IMAGE_TOO_LARGE",
            ErrorCode::UnsupportedFormat => "UNSUPPORTED_FORMAT",
            ErrorCode::CorruptImage => "CORRUPT_IMAGE",
            ErrorCode::NoPortrait => "NO_PORTRAIT",
            ErrorCode::DocumentExpired => "DOCUMENT_EXPIRED",
            ErrorCode::MrzCheckFailed => "MRZ_CHECK_FAILED",
            ErrorCode::ModelMismatch => "MODEL_MISMATCH",
            ErrorCode::InvalidTemplate => "INVALID_TEMPLATE",
            ErrorCode::ModelMissing => "MODEL_MISSING",
            ErrorCode::ModelCorrupt => "MODEL_CORRUPT",
            ErrorCode::RuntimeError => "RUNTIME_ERROR",
            ErrorCode::InvalidConfig => "INVALID_CONFIG",
            ErrorCode::NoFrames => "NO_FRAMES",
            ErrorCode::VideoTooShort => "VIDEO_TOO_SHORT",
            ErrorCode::ImageProcessingFailed => "IMAGE_PROCESSING_FAILED",
        }
    }

    /// The class of the code. Total (no wildcard): adding a code means deciding its class.
    pub fn class(self) -> ErrorClass {
        match self {
            ErrorCode::NoFace
            | ErrorCode::MultipleFaces
            | ErrorCode::FaceTooSmall
            | ErrorCode::BadPose
            | ErrorCode::EyesClosed
            | ErrorCode::TooDark
            | ErrorCode::TooBright
            | ErrorCode::TooBlurry
            | ErrorCode::LowContrast
            | ErrorCode::UnevenLighting
            | ErrorCode::NoPortrait
            | ErrorCode::DocumentExpired
            | ErrorCode::MrzCheckFailed
            | ErrorCode::VideoTooShort => ErrorClass::Capture,
            ErrorCode::EmptyInput
            | ErrorCode::UnsupportedFormat
            | ErrorCode::CorruptImage
            | ErrorCode::ModelMismatch
            | ErrorCode::InvalidTemplate
            | ErrorCode::NoFrames
            | ErrorCode::ImageTooLarge => ErrorClass::Input,
            ErrorCode::InputTooLarge => ErrorClass::TooLarge,
            ErrorCode::ModelMissing | ErrorCode::ModelCorrupt | ErrorCode::InvalidConfig => {
                ErrorClass::Installation
            }
            ErrorCode::RuntimeError | ErrorCode::ImageProcessingFailed => ErrorClass::Internal,
        }
    }

    /// Whether the code describes the person's capture (retry with guidance) rather than
    /// the input file or the installation.
    pub fn is_capture_problem(self) -> bool {
        self.class() == ErrorClass::Capture
    }
}

/// What kind of problem a code is: the one classification every shell's answer table is a
/// total mapping of (HTTP status, kiosk screen, CLI exit code), so a new code can never fall
/// through to a silent "internal error".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The request's bytes are wrong: empty, not an image, corrupt, not a template.
    Input,
    /// The request's bytes exceed the configured limit (a declared pixel count over the
    /// limit is `Input`: the bytes arrived, the image they describe is refused).
    TooLarge,
    /// The person's capture cannot be used: retry with guidance.
    Capture,
    /// The installation is broken: a model is missing or corrupt, the configuration is wrong.
    Installation,
    /// The engine failed at run time (inference): not the caller's fault.
    Internal,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything the engine can refuse or fail at. Messages never contain image or template bytes.
/// Each variant is documented by its message and by its [`ErrorCode`].
#[allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("no face found in the image")]
    NoFace,
    #[error("{count} sizeable faces in the image; exactly one person must be in frame")]
    MultipleFaces { count: usize },
    #[error("face too small: inter-eye distance {ied_px:.0} px")]
    FaceTooSmall { ied_px: f32 },
    #[error(
        "head pose out of range: yaw {yaw_deg:.0}, pitch {pitch_deg:.0}, roll {roll_deg:.0} degrees"
    )]
    BadPose {
        yaw_deg: f32,
        pitch_deg: f32,
        roll_deg: f32,
    },
    #[error("eyes closed")]
    EyesClosed,
    #[error("face too dark (exposure {exposure:.2})")]
    TooDark { exposure: f32 },
    #[error("face too bright (exposure {exposure:.2})")]
    TooBright { exposure: f32 },
    #[error("face too blurry (sharpness {sharpness:.2})")]
    TooBlurry { sharpness: f32 },
    #[error("too little contrast on the face ({contrast:.2})")]
    LowContrast { contrast: f32 },
    #[error("uneven lighting on the face (uniformity {uniformity:.2})")]
    UnevenLighting { uniformity: f32 },
    #[error("empty input: zero bytes")]
    EmptyInput,
    #[error("input is {bytes} bytes, the limit is {max_bytes}")]
    InputTooLarge { bytes: usize, max_bytes: usize },
    #[error("image is {width}x{height} pixels, the limit is {max_pixels} pixels")]
    ImageTooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error("unsupported image format; supported: JPEG, PNG, WebP, BMP")]
    UnsupportedFormat,
    #[error("corrupt or truncated image: {reason}")]
    CorruptImage { reason: String },
    #[error("no portrait found on the identity document")]
    NoPortrait,
    #[error("the identity document expired on {expiry}")]
    DocumentExpired { expiry: String },
    #[error("the identity document's machine-readable zone fails its check digits: {failed}")]
    MrzCheckFailed { failed: String },
    #[error("templates come from different models ({left} vs {right})")]
    ModelMismatch { left: String, right: String },
    #[error("invalid template: {reason}")]
    InvalidTemplate { reason: String },
    #[error("missing model file {}: run `{fetch_command}`", path.display())]
    ModelMissing {
        path: std::path::PathBuf,
        fetch_command: &'static str,
    },
    #[error("model file {} is corrupt (sha256 {actual}, expected {expected}): run `{fetch_command}`", path.display())]
    ModelCorrupt {
        path: std::path::PathBuf,
        expected: String,
        actual: String,
        fetch_command: &'static str,
    },
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("no frames given")]
    NoFrames,
    #[error("the video lasts {seconds:.1} s; at least {min_seconds:.1} s are needed")]
    VideoTooShort { seconds: f32, min_seconds: f32 },
    #[error("image processing failed: {0}")]
    Resize(String),
}

impl Error {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::NoFace => ErrorCode::NoFace,
            Error::MultipleFaces { .. } => ErrorCode::MultipleFaces,
            Error::FaceTooSmall { .. } => ErrorCode::FaceTooSmall,
            Error::BadPose { .. } => ErrorCode::BadPose,
            Error::EyesClosed => ErrorCode::EyesClosed,
            Error::TooDark { .. } => ErrorCode::TooDark,
            Error::TooBright { .. } => ErrorCode::TooBright,
            Error::TooBlurry { .. } => ErrorCode::TooBlurry,
            Error::LowContrast { .. } => ErrorCode::LowContrast,
            Error::UnevenLighting { .. } => ErrorCode::UnevenLighting,
            Error::EmptyInput => ErrorCode::EmptyInput,
            Error::InputTooLarge { .. } => ErrorCode::InputTooLarge,
            Error::ImageTooLarge { .. } => ErrorCode::ImageTooLarge,
            Error::UnsupportedFormat => ErrorCode::UnsupportedFormat,
            Error::CorruptImage { .. } => ErrorCode::CorruptImage,
            Error::NoPortrait => ErrorCode::NoPortrait,
            Error::DocumentExpired { .. } => ErrorCode::DocumentExpired,
            Error::MrzCheckFailed { .. } => ErrorCode::MrzCheckFailed,
            Error::ModelMismatch { .. } => ErrorCode::ModelMismatch,
            Error::InvalidTemplate { .. } => ErrorCode::InvalidTemplate,
            Error::ModelMissing { .. } => ErrorCode::ModelMissing,
            Error::ModelCorrupt { .. } => ErrorCode::ModelCorrupt,
            Error::Runtime(_) => ErrorCode::RuntimeError,
            Error::InvalidConfig(_) => ErrorCode::InvalidConfig,
            Error::NoFrames => ErrorCode::NoFrames,
            Error::VideoTooShort { .. } => ErrorCode::VideoTooShort,
            Error::Resize(_) => ErrorCode::ImageProcessingFailed,
        }
    }
}

impl From<ort::Error> for Error {
    fn from(e: ort::Error) -> Self {
        Error::Runtime(e.to_string())
    }
}

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_screaming_snake_and_serialise_as_printed() {
        let all = [
            Error::NoFace,
            Error::MultipleFaces { count: 2 },
            Error::FaceTooSmall { ied_px: 10.0 },
            Error::BadPose {
                yaw_deg: 50.0,
                pitch_deg: 0.0,
                roll_deg: 0.0,
            },
            Error::EyesClosed,
            Error::TooDark { exposure: 0.1 },
            Error::TooBright { exposure: 0.9 },
            Error::TooBlurry { sharpness: 0.0 },
            Error::LowContrast { contrast: 0.0 },
            Error::UnevenLighting { uniformity: 0.1 },
            Error::EmptyInput,
            Error::InputTooLarge {
                bytes: 2,
                max_bytes: 1,
            },
            Error::ImageTooLarge {
                width: 1,
                height: 1,
                max_pixels: 0,
            },
            Error::UnsupportedFormat,
            Error::CorruptImage { reason: "x".into() },
            Error::NoPortrait,
            Error::DocumentExpired {
                expiry: "2020-01-01".into(),
            },
            Error::MrzCheckFailed {
                failed: "composite".into(),
            },
            Error::ModelMismatch {
                left: "a".into(),
                right: "b".into(),
            },
            Error::InvalidTemplate { reason: "x".into() },
            Error::ModelMissing {
                path: "m".into(),
                fetch_command: "f",
            },
            Error::ModelCorrupt {
                path: "m".into(),
                expected: "e".into(),
                actual: "a".into(),
                fetch_command: "f",
            },
            Error::Runtime("x".into()),
            Error::InvalidConfig("x".into()),
            Error::NoFrames,
            Error::VideoTooShort {
                seconds: 1.0,
                min_seconds: 2.0,
            },
            Error::Resize("x".into()),
        ];
        let mut seen = std::collections::HashSet::new();
        for e in &all {
            let code = e.code();
            assert!(seen.insert(code), "{code} used twice");
            let s = code.as_str();
            assert!(s.chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{s}");
            assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{s}\""));
            assert!(!e.to_string().is_empty());
        }
        assert!(ErrorCode::NoFace.is_capture_problem());
        assert!(!ErrorCode::CorruptImage.is_capture_problem());
        assert_eq!(ErrorCode::CorruptImage.class(), ErrorClass::Input);
        assert_eq!(ErrorCode::ImageTooLarge.class(), ErrorClass::Input);
        assert_eq!(ErrorCode::InputTooLarge.class(), ErrorClass::TooLarge);
        assert_eq!(ErrorCode::ModelMissing.class(), ErrorClass::Installation);
        assert_eq!(ErrorCode::RuntimeError.class(), ErrorClass::Internal);
    }
}
