//! The library's error type.

use bltpatch_checkpoint::CheckpointError;
use bltpatch_engine::EngineError;
use bltpatch_ngram::NgramError;

/// Everything that can go wrong in the library. Each message is one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The checkpoint directory or its files are unusable.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The n-gram weights are inconsistent.
    #[error(transparent)]
    Ngram(#[from] NgramError),
    /// The neural model's weights do not match its configuration.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// `config.json` names an architecture this build does not know.
    #[error("unknown model architecture `{0}` in config.json (this build knows: conv, ngram)")]
    UnknownArch(String),
    /// An invalid rule parameter (a negative threshold, a budget that is not finite, ...).
    #[error(transparent)]
    Rule(#[from] bltpatch_core::Error),
    /// A combination of rule parameters that does not fit (a budget with the global rule, a
    /// parameter that neither the caller nor the checkpoint gives, ...).
    #[error("{0}")]
    Usage(String),
    /// An operation the chosen scheme cannot do (a streaming decoder for BPE, ...).
    #[error("{0}")]
    Unsupported(String),
}
