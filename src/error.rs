//! The error type of the runtime, sorted by whose fault it is.

use std::path::PathBuf;

/// Everything that can go wrong in `savl`, sorted by fault.
///
/// Engine errors (tract) are kept as an opaque [`std::error::Error`] source, never exposed as
/// types.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The model file is missing, corrupt, or does not follow the savl model contract.
    #[error("model {path}: {reason}")]
    Model {
        /// The file (or `<embedded>` / `<bytes>` for in-memory models).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// The engine's own error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// The input image cannot be processed (for example it is empty).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A builder setting is out of range; the message states the allowed range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A resource limit would be exceeded (image or output too large).
    #[error("limit exceeded: {0}")]
    Limits(String),
    /// The request is valid but not supported by this model or build (for example a precision
    /// the model file lacks, or degradation outputs of a model that has none).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// An I/O error, with the path it concerns.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Running the model failed (a bug or an engine limitation, not bad input).
    #[error("inference failed: {0}")]
    Runtime(String),
    /// An error raised by a caller's callback (for example the row sink of
    /// [`crate::Upscaler::upscale_rows`]), passed through unchanged.
    #[error("{0}")]
    Sink(Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    pub(crate) fn model(
        path: impl Into<PathBuf>,
        reason: impl Into<String>,
        source: Option<anyhow_like::BoxError>,
    ) -> Error {
        Error::Model {
            path: path.into(),
            reason: reason.into(),
            source,
        }
    }

    pub(crate) fn runtime(e: impl std::fmt::Display) -> Error {
        Error::Runtime(format!("{e:#}"))
    }
}

pub(crate) mod anyhow_like {
    pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

    /// tract's error (anyhow) as a boxed std error, keeping its whole chain in the message.
    pub(crate) fn boxed(e: impl std::fmt::Display) -> BoxError {
        format!("{e:#}").into()
    }
}

/// Shorthand for `Result<T, savl::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
