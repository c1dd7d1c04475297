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
    /// A setting is out of range: which one, the value given and what is allowed.
    #[error("invalid configuration: {parameter} {value} must be {expected}")]
    InvalidConfig {
        /// The setting, as the builder method or option names it (`threads`, `tile`, …).
        parameter: &'static str,
        /// The value given.
        value: String,
        /// What is allowed (a range or a list).
        expected: String,
    },
    /// A resource limit would be exceeded: an input, output or buffer too large.
    #[error("limit exceeded: {what} needs {requested} {unit}, the limit is {limit}")]
    Limits {
        /// What would exceed the limit (`input 9000×9000`, `output buffer of 36000×36000`, …).
        what: String,
        /// How much it needs.
        requested: u64,
        /// The limit.
        limit: u64,
        /// The unit of `requested` and `limit` (`pixels`, `bytes`).
        unit: &'static str,
    },
    /// Memory for a buffer could not be allocated.
    #[error("cannot allocate {bytes} bytes for {what}")]
    OutOfMemory {
        /// The buffer (`a 4000×3000 output`, …).
        what: String,
        /// Its size.
        bytes: u64,
    },
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

    pub(crate) fn config(
        parameter: &'static str,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Error {
        Error::InvalidConfig {
            parameter,
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    pub(crate) fn limits(
        what: impl Into<String>,
        requested: u64,
        limit: u64,
        unit: &'static str,
    ) -> Error {
        Error::Limits {
            what: what.into(),
            requested,
            limit,
            unit,
        }
    }

    pub(crate) fn out_of_memory(what: impl Into<String>, bytes: usize) -> Error {
        Error::OutOfMemory {
            what: what.into(),
            bytes: bytes as u64,
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
