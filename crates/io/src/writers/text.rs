//! `--format text`: the input with visible patch boundaries, for people.

use std::io::Write;

use super::{PatchWriter, check_document};
use crate::{IoError, OutputFile};

/// Entropy (nats) drawn with the warmest colour; lower means are spread linearly below it.
/// A trained byte model rarely exceeds this on average over a patch (uniform is ln 256 = 5.55).
const ENTROPY_SCALE: f64 = 4.0;

/// (background, foreground) ANSI 256-colour pairs from low entropy (dark blue) to high (red),
/// with a foreground that stays readable on each background.
const PALETTE: [(u8, u8); 16] = [
    (17, 231),
    (18, 231),
    (19, 231),
    (25, 231),
    (31, 231),
    (37, 16),
    (36, 16),
    (71, 16),
    (107, 16),
    (143, 16),
    (179, 16),
    (215, 16),
    (209, 16),
    (203, 16),
    (197, 231),
    (160, 231),
];

/// Two neutral greys that alternate when no entropies are given.
const NEUTRAL: [(u8, u8); 2] = [(238, 231), (244, 16)];

/// Resets all ANSI attributes.
const RESET: &[u8] = b"\x1b[0m";

/// Writes each document's bytes with a visible separator between patches.
///
/// - Without colour: patches are separated by `|`; in the text itself a `|` is written `\|` and
///   a `\` is written `\\`, so every bare `|` is a boundary and the output reads back
///   unambiguously.
/// - With colour (for a terminal): each patch gets an ANSI 256-colour background whose shade
///   follows the mean entropy of its bytes, from dark blue (0 nats) to red (4 nats or more), and
///   patches are separated by `│`. Without entropies, patches alternate between two greys.
///
/// Bytes are written as they are, control bytes and newlines included (a patch holding `\n`
/// keeps the line break; colours are reset before it so the background does not fill the rest of
/// the line). Invalid UTF-8, and a UTF-8 character cut by a patch boundary, is shown as `\xNN`
/// escapes, one per byte. Each document ends with a newline (added if missing) and documents are
/// separated by a blank line.
///
/// ```
/// use bltpatch_io::{OutputFile, PatchWriter, TextWriter};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("patches.txt");
/// let mut writer = Box::new(TextWriter::new(OutputFile::create(Some(&path))?, false));
/// writer.write_document("a.txt", b"hello world", &[6, 5], None)?;
/// writer.finish()?;
/// assert_eq!(std::fs::read_to_string(&path)?, "hello |world\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TextWriter {
    out: OutputFile,
    colour: bool,
    documents: usize,
    buf: Vec<u8>,
}

impl TextWriter {
    /// A writer to `out`, with ANSI colours if `colour`.
    pub fn new(out: OutputFile, colour: bool) -> Self {
        TextWriter {
            out,
            colour,
            documents: 0,
            buf: Vec::new(),
        }
    }

    /// Renders one patch into `self.buf`, in `style` if given.
    fn render_patch(&mut self, patch: &[u8], style: Option<&[u8]>) {
        let plain = !self.colour;
        let mut out = Styled {
            buf: &mut self.buf,
            style,
            on: false,
        };
        let text = |out: &mut Styled, line: &str| {
            if plain && line.contains(['|', '\\']) {
                out.text(line.replace('\\', "\\\\").replace('|', "\\|").as_bytes());
            } else {
                out.text(line.as_bytes());
            }
        };
        for chunk in patch.utf8_chunks() {
            let mut lines = chunk.valid().split('\n');
            if let Some(first) = lines.next() {
                text(&mut out, first);
            }
            for line in lines {
                out.newline();
                text(&mut out, line);
            }
            for &byte in chunk.invalid() {
                out.text(&escape(byte));
            }
        }
        out.reset();
    }
}

/// A buffer that switches `style` on before text and off before a newline, so that no
/// background colour runs to the edge of the terminal.
struct Styled<'a> {
    buf: &'a mut Vec<u8>,
    style: Option<&'a [u8]>,
    on: bool,
}

impl Styled<'_> {
    fn text(&mut self, text: &[u8]) {
        if text.is_empty() {
            return;
        }
        if let (Some(style), false) = (self.style, self.on) {
            self.buf.extend_from_slice(style);
            self.on = true;
        }
        self.buf.extend_from_slice(text);
    }

    fn newline(&mut self) {
        self.reset();
        self.buf.push(b'\n');
    }

    fn reset(&mut self) {
        if self.on {
            self.buf.extend_from_slice(RESET);
            self.on = false;
        }
    }
}

impl PatchWriter for TextWriter {
    fn write_document(
        &mut self,
        name: &str,
        bytes: &[u8],
        lengths: &[usize],
        entropies: Option<&[f32]>,
    ) -> Result<(), IoError> {
        check_document(name, bytes, lengths, entropies)?;
        self.buf.clear();
        if self.documents > 0 {
            self.buf.push(b'\n');
        }
        self.documents += 1;
        let separator: &[u8] = if self.colour { "│".as_bytes() } else { b"|" };
        let mut start = 0;
        for (k, &len) in lengths.iter().enumerate() {
            let end = start + len;
            if k > 0 {
                self.buf.extend_from_slice(separator);
            }
            let style = self.colour.then(|| {
                let (bg, fg) = match entropies {
                    Some(h) => PALETTE[shade(&h[start..end])],
                    None => NEUTRAL[k % 2],
                };
                format!("\x1b[48;5;{bg};38;5;{fg}m").into_bytes()
            });
            self.render_patch(&bytes[start..end], style.as_deref());
            start = end;
            if self.buf.len() >= 1 << 16 {
                self.out
                    .write_all(&self.buf)
                    .map_err(|source| IoError::write(self.out.path(), source))?;
                self.buf.clear();
            }
        }
        if !bytes.ends_with(b"\n") {
            self.buf.push(b'\n');
        }
        self.out
            .write_all(&self.buf)
            .map_err(|source| IoError::write(self.out.path(), source))
    }

    /// `false`: the text format prints each document's bytes, so it takes whole documents.
    fn is_incremental(&self) -> bool {
        false
    }

    /// Fails with [`IoError::NotIncremental`]: use [`PatchWriter::write_document`].
    fn begin_document(&mut self, _name: &str, _bytes: usize) -> Result<(), IoError> {
        Err(NOT_INCREMENTAL)
    }

    /// Fails with [`IoError::NotIncremental`].
    fn write_lengths(&mut self, _lengths: &[usize]) -> Result<(), IoError> {
        Err(NOT_INCREMENTAL)
    }

    /// Fails with [`IoError::NotIncremental`].
    fn end_document(&mut self) -> Result<(), IoError> {
        Err(NOT_INCREMENTAL)
    }

    fn finish(self: Box<Self>) -> Result<(), IoError> {
        self.out.commit()
    }
}

/// The error of the incremental methods.
const NOT_INCREMENTAL: IoError = IoError::NotIncremental { format: "text" };

/// The palette index for a patch's entropies: their mean, scaled linearly to
/// `0..=`[`ENTROPY_SCALE`] nats and clamped (NaN counts as 0).
fn shade(h: &[f32]) -> usize {
    let mean = h.iter().map(|&h| f64::from(h)).sum::<f64>() / h.len().max(1) as f64;
    let scaled = (mean / ENTROPY_SCALE).clamp(0.0, 1.0);
    if scaled.is_nan() {
        0
    } else {
        (scaled * (PALETTE.len() - 1) as f64).round() as usize
    }
}

/// `\xNN` (lowercase hex) for a byte that is not shown as text.
fn escape(byte: u8) -> [u8; 4] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    [
        b'\\',
        b'x',
        HEX[usize::from(byte >> 4)],
        HEX[usize::from(byte & 15)],
    ]
}

#[cfg(test)]
mod tests {
    use super::super::tests::render;
    use super::super::{Format, PatchWriter};
    use super::*;

    fn text(docs: &[(&str, &[u8], &[usize])]) -> String {
        String::from_utf8(render(Format::Text, false, docs)).unwrap()
    }

    #[test]
    fn a_literal_separator_is_escaped() {
        // Patches `a|` and `b\c`: the only bare `|` is the boundary.
        assert_eq!(text(&[("a", b"a|b\\c", &[2, 3])]), "a\\||b\\\\c\n");
        assert_eq!(text(&[("a", b"a|b", &[1, 2])]), "a|\\|b\n");
        // Invalid UTF-8 stays distinguishable from a literal `\x..` in the text.
        assert_eq!(text(&[("a", b"\\xff\xff", &[4, 1])]), "\\\\xff|\\xff\n");
    }

    #[test]
    fn plain_separators_and_documents() {
        assert_eq!(
            text(&[
                ("a", b"hello world", &[6, 5]),
                ("b", b"line one\nline two\n", &[5, 6, 5, 2]),
                ("c", b"", &[]),
                ("d", b"x", &[1]),
            ]),
            "hello |world\n\nline |one\nli|ne tw|o\n\n\n\nx\n"
        );
    }

    #[test]
    fn invalid_and_cut_utf8_is_escaped() {
        // "é" is C3 A9: the first is whole, a boundary cuts the second; FF is never valid
        let bytes = b"a\xc3\xa9b\xc3\xa9\xffz";
        assert_eq!(
            text(&[("u", bytes, &[3, 2, 3])]),
            "a\u{e9}|b\\xc3|\\xa9\\xffz\n"
        );
    }

    #[test]
    fn control_bytes_are_kept() {
        assert_eq!(text(&[("c", b"\t\r\x00\x1b", &[2, 2])]), "\t\r|\x00\x1b\n");
    }

    #[test]
    fn colour_follows_entropy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut writer = Box::new(TextWriter::new(
            OutputFile::create(Some(&path)).unwrap(),
            true,
        ));
        writer
            .write_document("a", b"ab\ncd", &[3, 2], Some(&[0.0, 0.0, 0.0, 4.0, 8.0]))
            .unwrap();
        writer.finish().unwrap();
        let out = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            out,
            "\x1b[48;5;17;38;5;231mab\x1b[0m\n│\
             \x1b[48;5;160;38;5;231mcd\x1b[0m\n"
        );
    }

    #[test]
    fn colour_without_entropies_alternates() {
        let out =
            String::from_utf8(render(Format::Text, true, &[("a", b"abc", &[1, 1, 1])])).unwrap();
        assert_eq!(
            out,
            "\x1b[48;5;238;38;5;231ma\x1b[0m│\x1b[48;5;244;38;5;16mb\x1b[0m│\
             \x1b[48;5;238;38;5;231mc\x1b[0m\n"
        );
    }

    #[test]
    fn shades() {
        assert_eq!(shade(&[]), 0);
        assert_eq!(shade(&[f32::NAN]), 0);
        assert_eq!(shade(&[-1.0]), 0);
        assert_eq!(shade(&[2.0]), 8);
        assert_eq!(shade(&[100.0]), 15);
        assert_eq!(shade(&[f32::INFINITY]), 15);
    }
}
