//! The crate's error type.

/// Errors of the experiment and its parts.
#[derive(Debug, thiserror::Error)]
pub enum LatentError {
    /// A bad option value (the message says which and why).
    #[error("{0}")]
    InvalidOption(String),
    /// The patching library refused something (its message).
    #[error("patching: {0}")]
    Patching(String),
    /// The corpus could not be opened, or the backend is not available (the model crate's
    /// message).
    #[error(transparent)]
    Model(#[from] bltpatch_model::ModelError),
    /// An output file could not be written (the I/O crate's message).
    #[error(transparent)]
    Io(#[from] bltpatch_io::IoError),
}
