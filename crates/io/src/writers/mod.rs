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
/// A document is written whole with [`write_document`](Self::write_document), or incrementally:
/// [`begin_document`](Self::begin_document), any number of
/// [`write_lengths`](Self::write_lengths) as patches close, then
/// [`end_document`](Self::end_document). Both give the same output byte for byte. Memory stays
/// bounded by the largest document fed whole (incrementally: by the slices of lengths passed),
/// whatever the number and size of documents. Nothing is visible at the destination before
/// [`PatchWriter::finish`] (except on standard output); dropping a writer without finishing it
/// leaves no output behind, and after an error the writer should be dropped.
///
/// The `lengths`, `jsonl` and `npy` writers are incremental; the text writer prints each
/// document's bytes and accepts whole documents only ([`is_incremental`](Self::is_incremental)).
///
/// ```
/// use bltpatch_io::{Format, writer};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("patches.jsonl");
/// let mut out = writer(Format::Jsonl, Some(&path), false)?;
/// out.begin_document("big.txt", 11)?;
/// out.write_lengths(&[6])?; // as soon as a patch closes
/// out.write_lengths(&[3, 2])?;
/// out.end_document()?;
/// out.write_document("small.txt", b"abc", &[3], None)?;
/// out.finish()?;
/// assert_eq!(
///     std::fs::read_to_string(&path)?,
///     "{\"document\":\"big.txt\",\"bytes\":11,\"patch_lengths\":[6,3,2]}\n\
///      {\"document\":\"small.txt\",\"bytes\":3,\"patch_lengths\":[3]}\n"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Writers are [`Send`], so a segmenter may feed one from a worker thread.
pub trait PatchWriter: Send {
    /// One whole document: its display name (file name or "file:line"), its bytes (the text
    /// writer needs them), its patch lengths, and its entropies if available (the text writer
    /// colours by them). Checks everything before writing anything.
    ///
    /// # Errors
    ///
    /// [`IoError::LengthsMismatch`] if the lengths do not sum to `bytes.len()`,
    /// [`IoError::EntropiesMismatch`] if entropies are given and are not one per byte,
    /// [`IoError::OutOfOrder`] inside an incremental document, and [`IoError::Write`] if the
    /// output fails.
    fn write_document(
        &mut self,
        name: &str,
        bytes: &[u8],
        lengths: &[usize],
        entropies: Option<&[f32]>,
    ) -> Result<(), IoError> {
        check_document(name, bytes, lengths, entropies)?;
        self.begin_document(name, bytes.len())?;
        self.write_lengths(lengths)?;
        self.end_document()
    }

    /// Whether this writer takes documents incrementally (every format but text).
    fn is_incremental(&self) -> bool {
        true
    }

    /// Starts a document of `bytes` bytes named `name`, whose patch lengths follow in
    /// [`write_lengths`](Self::write_lengths).
    ///
    /// # Errors
    ///
    /// [`IoError::OutOfOrder`] if a document is already open, [`IoError::NotIncremental`] for
    /// the text writer, [`IoError::Write`] if the output fails.
    fn begin_document(&mut self, name: &str, bytes: usize) -> Result<(), IoError>;

    /// The next patch lengths of the open document, in order.
    ///
    /// # Errors
    ///
    /// [`IoError::OutOfOrder`] without an open document, [`IoError::LengthsMismatch`] as soon
    /// as the lengths so far sum to more than the document's bytes, [`IoError::Write`] if the
    /// output fails.
    fn write_lengths(&mut self, lengths: &[usize]) -> Result<(), IoError>;

    /// Ends the open document.
    ///
    /// # Errors
    ///
    /// [`IoError::OutOfOrder`] without an open document, [`IoError::LengthsMismatch`] if its
    /// lengths do not sum to its bytes, [`IoError::Write`] if the output fails.
    fn end_document(&mut self) -> Result<(), IoError>;

    /// Completes the output (headers, rename into place).
    ///
    /// # Errors
    ///
    /// [`IoError::OutOfOrder`] if a document is still open (nothing is written then);
    /// [`IoError::Write`] (or [`IoError::Destination`]) naming the destination.
    fn finish(self: Box<Self>) -> Result<(), IoError>;
}

/// The document being written incrementally, if any: what the length checks need.
#[derive(Debug, Default)]
struct Open(Option<OpenDocument>);

/// An open document.
#[derive(Debug)]
struct OpenDocument {
    name: String,
    bytes: usize,
    /// Sum of the lengths so far.
    sum: usize,
    /// Number of lengths so far.
    patches: usize,
}

impl Open {
    /// Opens a document.
    fn begin(&mut self, name: &str, bytes: usize) -> Result<(), IoError> {
        if self.0.is_some() {
            return Err(IoError::OutOfOrder {
                problem: "a document begins while another is open",
            });
        }
        self.0 = Some(OpenDocument {
            name: name.to_owned(),
            bytes,
            sum: 0,
            patches: 0,
        });
        Ok(())
    }

    /// Accounts for `lengths`; returns the number of lengths before them.
    fn add(&mut self, lengths: &[usize]) -> Result<usize, IoError> {
        let doc = self.0.as_mut().ok_or(IoError::OutOfOrder {
            problem: "patch lengths without an open document",
        })?;
        let sum = lengths
            .iter()
            .try_fold(doc.sum, |sum, &len| sum.checked_add(len))
            .unwrap_or(usize::MAX);
        if sum > doc.bytes {
            return Err(IoError::LengthsMismatch {
                document: doc.name.clone(),
                sum,
                bytes: doc.bytes,
            });
        }
        let before = doc.patches;
        doc.sum = sum;
        doc.patches += lengths.len();
        Ok(before)
    }

    /// Closes the document and returns it.
    fn end(&mut self) -> Result<OpenDocument, IoError> {
        let doc = self.0.take().ok_or(IoError::OutOfOrder {
            problem: "end of a document that was not begun",
        })?;
        if doc.sum != doc.bytes {
            return Err(IoError::LengthsMismatch {
                document: doc.name,
                sum: doc.sum,
                bytes: doc.bytes,
            });
        }
        Ok(doc)
    }

    /// Fails if a document is open (at `finish`).
    fn check_closed(&self) -> Result<(), IoError> {
        match self.0 {
            Some(_) => Err(IoError::OutOfOrder {
                problem: "finished with a document still open",
            }),
            None => Ok(()),
        }
    }
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

    /// Everything a writer of `format` wrote to `path` (a file, or the arrays of a directory).
    fn output(format: Format, path: &Path) -> Vec<u8> {
        match format {
            Format::Npy => ["patch_lengths", "document_offsets", "document_bytes"]
                .iter()
                .flat_map(|name| std::fs::read(path.join(format!("{name}.npy"))).unwrap())
                .collect(),
            _ => std::fs::read(path).unwrap(),
        }
    }

    #[test]
    fn incremental_equals_whole_documents() {
        let docs: [(&str, &[u8], &[usize]); 4] = [
            ("a", b"hello world", &[6, 5]),
            ("empty", b"", &[]),
            ("b \"q\"", b"abcdefgh", &[1, 2, 1, 1, 3]),
            ("c", b"xy", &[2]),
        ];
        let dir = tempfile::tempdir().unwrap();
        for format in [Format::Lengths, Format::Jsonl, Format::Npy] {
            let whole = dir.path().join(format!("whole.{format}"));
            let mut w = writer(format, Some(&whole), false).unwrap();
            for (name, bytes, lengths) in docs {
                w.write_document(name, bytes, lengths, None).unwrap();
            }
            w.finish().unwrap();

            // every way of cutting the lengths into pieces, empty pieces included
            for piece in 1..=3 {
                let parts = dir.path().join(format!("parts{piece}.{format}"));
                let mut w = writer(format, Some(&parts), false).unwrap();
                assert!(w.is_incremental());
                for (name, bytes, lengths) in docs {
                    w.begin_document(name, bytes.len()).unwrap();
                    w.write_lengths(&[]).unwrap();
                    for chunk in lengths.chunks(piece) {
                        w.write_lengths(chunk).unwrap();
                    }
                    w.end_document().unwrap();
                }
                w.finish().unwrap();
                assert_eq!(output(format, &parts), output(format, &whole), "{format}");
            }
        }
    }

    #[test]
    fn incremental_misuse_and_mismatches_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        for format in [Format::Lengths, Format::Jsonl, Format::Npy] {
            let path = dir.path().join(format.name());
            let message = |r: Result<(), IoError>| r.unwrap_err().to_string();
            let mut w = writer(format, Some(&path), false).unwrap();
            assert_eq!(
                message(w.write_lengths(&[1])),
                "patch writer used out of order: patch lengths without an open document"
            );
            assert!(matches!(w.end_document(), Err(IoError::OutOfOrder { .. })));
            w.begin_document("a.txt", 3).unwrap();
            assert!(matches!(
                w.begin_document("b.txt", 1),
                Err(IoError::OutOfOrder { .. })
            ));
            assert!(matches!(
                w.write_document("b.txt", b"b", &[1], None),
                Err(IoError::OutOfOrder { .. })
            ));
            w.write_lengths(&[2]).unwrap();
            assert_eq!(
                message(w.write_lengths(&[1, 1])),
                "document `a.txt`: patch lengths sum to 4 but it has 3 bytes"
            );
            assert_eq!(
                message(w.end_document()),
                "document `a.txt`: patch lengths sum to 2 but it has 3 bytes"
            );
            w.begin_document("c.txt", 1).unwrap();
            assert_eq!(
                message(w.finish()),
                "patch writer used out of order: finished with a document still open"
            );
            assert!(!path.exists(), "nothing committed");
        }
        let mut text = writer(Format::Text, Some(&dir.path().join("t")), false).unwrap();
        assert!(!text.is_incremental());
        assert_eq!(
            text.begin_document("a", 1).unwrap_err().to_string(),
            "the text format writes whole documents only"
        );
        text.write_document("a", b"a", &[1], None).unwrap();
        text.finish().unwrap();
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
