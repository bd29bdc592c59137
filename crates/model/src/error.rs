//! The errors of training and loading: one line each, saying what is wrong and where.

use std::path::PathBuf;

use bltpatch_checkpoint::CheckpointError;

/// Everything that can go wrong training or loading a model. Each message is one line, meant to
/// follow `error: ` on a terminal; nothing here panics on bad input.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// No corpus file was given.
    #[error("no corpus: give at least one text file to train on")]
    NoCorpus,
    /// Every corpus file is empty.
    #[error("empty corpus: {0} holds no bytes")]
    EmptyCorpus(String),
    /// No corpus file holds enough training text for one position with a full context.
    #[error(
        "corpus too short: the longest file has {longest} training bytes, but the model's context is {context} bytes (need at least {needed}); give more text, a smaller --context or a smaller preset"
    )]
    CorpusTooShort {
        /// Training bytes (after the held-out split) of the longest file.
        longest: usize,
        /// The model's context `C`.
        context: usize,
        /// The minimum: `C + 1`.
        needed: usize,
    },
    /// A corpus file cannot be opened, mapped or read.
    #[error("cannot read corpus file {}: {reason}", .path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The output directory cannot be created or written.
    #[error("output directory {} is not writable: {reason}", .path.display())]
    OutputNotWritable {
        /// The checkpoint directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// `--resume` was asked for but there is nothing to resume.
    #[error("cannot resume: {} holds no training checkpoint ({reason})", .path.display())]
    NoCheckpoint {
        /// The checkpoint directory.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// The checkpoint belongs to another architecture or another trainer, or is inconsistent.
    #[error("cannot use checkpoint {}: {reason}", .path.display())]
    ForeignCheckpoint {
        /// The checkpoint directory.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },
    /// Reading or writing a checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A checkpoint's tensors do not describe the model.
    #[error("invalid checkpoint: {0}")]
    InvalidCheckpoint(String),
    /// A training option is out of range (unknown preset, zero batch size, ...).
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The requested backend is not compiled in or has no device.
    #[error("{0}")]
    Backend(String),
    /// Threshold calibration failed.
    #[error("calibration failed: {0}")]
    Calibration(#[from] bltpatch_core::Error),
    /// Any other I/O error, with the path involved.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}
