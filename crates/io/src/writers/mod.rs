//! Patch writers: one trait, one file per output format.

mod jsonl;
mod lengths;
mod npy;
mod text;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

pub use jsonl::JsonlWriter;
pub use lengths::LengthsWriter;
pub use npy::NpyWriter;
pub use text::TextWriter;

use crate::input::is_stdin;
use crate::{IoError, OutputFile};

/// Writes segmented documents in one output format.
///
/// Documents are fed one at a time, so memory stays bounded by the largest document whatever the
/// number of documents. Nothing is visible at the destination before [`PatchWriter::finish`]
/// (except on standard output); dropping a writer without finishing it leaves no output behind.
pub trait PatchWriter {
    /// One document: its display name (file name or "file:line"), its bytes (the text writer needs
    /// them), its patch lengths, and its entropies if available (the text writer colours by them).
    ///
    /// # Errors
    ///
    /// [`IoError::LengthsMismatch`] if the lengths do not sum to `bytes.len()`,
    /// [`IoError::EntropiesMismatch`] if entropies are given and are not one per byte, and
    /// [`IoError::Write`] if the output fails.
    fn write_document(
        &mut self,
        name: &str,
        bytes: &[u8],
        lengths: &[usize],
        entropies: Option<&[f32]>,
    ) -> Result<(), IoError>;

    /// Completes the output (headers, rename into place).
    ///
    /// # Errors
    ///
    /// [`IoError::Write`] (or [`IoError::Destination`]) naming the destination.
    fn finish(self: Box<Self>) -> Result<(), IoError>;
}

/// The output formats of `bltpatch segment --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The input with visible patch separators, coloured by entropy on a terminal
    /// ([`TextWriter`]).
    Text,
    /// One decimal patch length per line ([`LengthsWriter`]).
    Lengths,
    /// One JSON object per document ([`JsonlWriter`]).
    Jsonl,
    /// A directory of NPY arrays ([`NpyWriter`]).
    Npy,
}

impl Format {
    /// Every format, in the order of the `--help` text.
    pub const ALL: [Format; 4] = [Format::Text, Format::Lengths, Format::Jsonl, Format::Npy];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Lengths => "lengths",
            Format::Jsonl => "jsonl",
            Format::Npy => "npy",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = IoError;

    /// Parses a format name (ASCII case ignored).
    ///
    /// ```
    /// use bltpatch_io::Format;
    /// assert_eq!("npy".parse::<Format>().unwrap(), Format::Npy);
    /// assert_eq!(
    ///     "csv".parse::<Format>().unwrap_err().to_string(),
    ///     "unknown format `csv` (expected one of: text, lengths, jsonl, npy)"
    /// );
    /// ```
    fn from_str(name: &str) -> Result<Self, IoError> {
        Format::ALL
            .into_iter()
            .find(|format| format.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| IoError::UnknownFormat {
                name: name.to_owned(),
            })
    }
}

/// A writer of `format` to `out` (`None` or `-`: standard output; for [`Format::Npy`], the
/// directory to create). `colour` selects ANSI colours for [`Format::Text`] (typically
/// [`crate::is_terminal_stdout`] when writing to standard output); other formats ignore it.
///
/// # Errors
///
/// [`IoError::NpyNeedsDirectory`] for `npy` without a directory, and the errors of
/// [`OutputFile::create`] and [`NpyWriter::create`].
pub fn writer(
    format: Format,
    out: Option<&Path>,
    colour: bool,
) -> Result<Box<dyn PatchWriter>, IoError> {
    Ok(match format {
        Format::Text => Box::new(TextWriter::new(OutputFile::create(out)?, colour)),
        Format::Lengths => Box::new(LengthsWriter::new(OutputFile::create(out)?)),
        Format::Jsonl => Box::new(JsonlWriter::new(OutputFile::create(out)?)),
        Format::Npy => match out {
            Some(dir) if !is_stdin(dir) => Box::new(NpyWriter::create(dir)?),
            _ => return Err(IoError::NpyNeedsDirectory),
        },
    })
}

/// Checks that a document's lengths and entropies match its bytes.
fn check_document(
    name: &str,
    bytes: &[u8],
    lengths: &[usize],
    entropies: Option<&[f32]>,
) -> Result<(), IoError> {
    let sum = lengths
        .iter()
        .try_fold(0usize, |sum, &len| sum.checked_add(len))
        .unwrap_or(usize::MAX);
    if sum != bytes.len() {
        return Err(IoError::LengthsMismatch {
            document: name.to_owned(),
            sum,
            bytes: bytes.len(),
        });
    }
    match entropies {
        Some(h) if h.len() != bytes.len() => Err(IoError::EntropiesMismatch {
            document: name.to_owned(),
            entropies: h.len(),
            bytes: bytes.len(),
        }),
        _ => Ok(()),
    }
}

/// Appends the decimal digits of `n` (faster than `write!` for the millions of small numbers of
/// the lengths and jsonl formats).
fn push_decimal(buf: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `format` over `docs` into a temporary file and returns what it wrote.
    pub(super) fn render(
        format: Format,
        colour: bool,
        docs: &[(&str, &[u8], &[usize])],
    ) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut writer = writer(format, Some(&path), colour).unwrap();
        for (name, bytes, lengths) in docs {
            writer.write_document(name, bytes, lengths, None).unwrap();
        }
        assert!(!path.exists(), "nothing visible before finish");
        writer.finish().unwrap();
        std::fs::read(&path).unwrap()
    }

    #[test]
    fn decimal() {
        for n in [0, 7, 10, 99, 100, 12345, usize::MAX] {
            let mut buf = b"x".to_vec();
            push_decimal(&mut buf, n);
            assert_eq!(buf, format!("x{n}").into_bytes());
        }
    }

    #[test]
    fn format_names_round_trip() {
        for format in Format::ALL {
            assert_eq!(format.to_string().parse::<Format>().unwrap(), format);
        }
        assert_eq!("JSONL".parse::<Format>().unwrap(), Format::Jsonl);
    }

    #[test]
    fn npy_needs_a_directory() {
        for out in [None, Some(Path::new("-"))] {
            let err = writer(Format::Npy, out, false).err().unwrap();
            assert!(matches!(err, IoError::NpyNeedsDirectory));
        }
    }

    #[test]
    fn mismatches_are_reported_for_every_format() {
        let dir = tempfile::tempdir().unwrap();
        for format in Format::ALL {
            let path = dir.path().join(format.name());
            let mut writer = writer(format, Some(&path), true).unwrap();
            let err = writer
                .write_document("a.txt", b"abc", &[1, 1], None)
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                "document `a.txt`: patch lengths sum to 2 but it has 3 bytes"
            );
            let err = writer
                .write_document("a.txt", b"abc", &[3], Some(&[1.0]))
                .unwrap_err();
            assert_eq!(err.to_string(), "document `a.txt`: 1 entropies for 3 bytes");
        }
    }
}
