//! One error enum, grouped by fault. Every variant that concerns a file names it.

use std::path::PathBuf;

/// Why a quantization step failed.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    /// A file could not be read or written.
    #[error("{path}: {err}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error (in the message, so not also a `source`).
        err: std::io::Error,
    },
    /// A file is not a valid ONNX protobuf.
    #[error("{path}: not a valid ONNX model: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// What the protobuf decoder said.
        reason: String,
    },
    /// tract refused or failed to run a model.
    #[error("{what}: tract: {reason}")]
    Tract {
        /// The model (file name or description).
        what: String,
        /// tract's error chain.
        reason: String,
    },
    /// The graph has a form this tool does not handle.
    #[error("{what}: unsupported graph: {reason}")]
    Graph {
        /// The model (file name or description).
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// No usable calibration or evaluation images.
    #[error("{dir}: {reason}")]
    Images {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An image could not be decoded.
    #[error("{path}: cannot decode image: {reason}")]
    Image {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },
    /// A `.npy` file has a form this tool does not read.
    #[error("{path}: {reason}")]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Two models or images cannot be compared.
    #[error("{what}: {reason}")]
    Mismatch {
        /// The pair being compared.
        what: String,
        /// What differs.
        reason: String,
    },
}

/// Result with [`QuantError`].
pub type Result<T, E = QuantError> = std::result::Result<T, E>;

impl QuantError {
    pub(crate) fn tract(what: impl Into<String>, e: impl std::fmt::Display) -> Self {
        QuantError::Tract {
            what: what.into(),
            reason: format!("{e:#}"),
        }
    }
    pub(crate) fn graph(what: impl Into<String>, reason: impl Into<String>) -> Self {
        QuantError::Graph {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
