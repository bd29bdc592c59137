//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while reading inputs or writing outputs.
///
/// Every message is a single line that says what failed and where (a path, a line number or a
/// document name), ready to be printed after `error: ` by a command-line tool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// An input file does not exist.
    #[error("`{}`: no such file", path.display())]
    NotFound {
        /// The path as it was given.
        path: PathBuf,
    },

    /// A directory was given where a file was expected.
    #[error("`{}` is a directory", path.display())]
    IsDirectory {
        /// The path as it was given.
        path: PathBuf,
    },

    /// An input exists but could not be read (permissions, I/O error, ...).
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The path as it was given (`-` for standard input).
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// An output could not be created, written, synced or renamed into place.
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        /// The destination (`-` for standard output).
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// An output destination exists and is not something this crate may replace.
    #[error("cannot write `{}`: {reason}", path.display())]
    Destination {
        /// The destination as it was given.
        path: PathBuf,
        /// Why it cannot be used, e.g. "it exists and holds other files".
        reason: &'static str,
    },

    /// A JSON Lines line is not valid JSON.
    #[error("invalid JSON on line {line}, column {column}: {message}")]
    InvalidJson {
        /// 1-based line number.
        line: usize,
        /// 1-based column (byte) within the line.
        column: usize,
        /// The parser's description of the problem.
        message: String,
    },

    /// A JSON Lines line holds valid JSON that is not an object.
    #[error("line {line} is not a JSON object")]
    NotAnObject {
        /// 1-based line number.
        line: usize,
    },

    /// A JSON Lines object lacks the requested field.
    #[error("line {line} has no field \"{field}\"")]
    MissingField {
        /// 1-based line number.
        line: usize,
        /// The requested field name.
        field: String,
    },

    /// A JSON Lines object has the requested field, but its value is not a string.
    #[error("field \"{field}\" on line {line} is not a string")]
    FieldNotString {
        /// 1-based line number.
        line: usize,
        /// The requested field name.
        field: String,
    },

    /// A format name that is none of `text`, `lengths`, `jsonl`, `npy`.
    #[error("unknown format `{name}` (expected one of: text, lengths, jsonl, npy)")]
    UnknownFormat {
        /// The name that was given.
        name: String,
    },

    /// The `npy` patch format was asked for without an output directory.
    #[error("the npy format writes a directory of arrays: give one with `-o DIR`")]
    NpyNeedsDirectory,

    /// A document's patch lengths do not add up to its number of bytes.
    #[error("document `{document}`: patch lengths sum to {sum} but it has {bytes} bytes")]
    LengthsMismatch {
        /// The document's display name.
        document: String,
        /// The sum of the patch lengths given.
        sum: usize,
        /// The number of bytes given.
        bytes: usize,
    },

    /// A document's entropies are not one per byte.
    #[error("document `{document}`: {entropies} entropies for {bytes} bytes")]
    EntropiesMismatch {
        /// The document's display name.
        document: String,
        /// The number of entropies given.
        entropies: usize,
        /// The number of bytes given.
        bytes: usize,
    },

    /// The incremental methods of a [`crate::PatchWriter`] were called out of order (a document
    /// begun while another is open, lengths or an end without a document, or `finish` with a
    /// document still open).
    #[error("patch writer used out of order: {problem}")]
    OutOfOrder {
        /// What was wrong.
        problem: &'static str,
    },

    /// A format that needs whole documents (the text format: it prints each document's bytes)
    /// was fed incrementally; use [`crate::PatchWriter::write_document`].
    #[error("the {format} format writes whole documents only")]
    NotIncremental {
        /// The format's command-line name.
        format: &'static str,
    },
}

impl IoError {
    /// Whether this is a write that failed because the reader went away (`bltpatch ... | head`):
    /// command-line tools usually exit quietly then.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, IoError::Write { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// A [`IoError::Write`] for `path`.
    pub(crate) fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IoError::Write {
            path: path.into(),
            source,
        }
    }
}
