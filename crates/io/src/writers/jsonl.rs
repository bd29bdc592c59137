//! `--format jsonl`: one JSON object per document.

use std::io::Write;

use super::{Open, PatchWriter, push_decimal};
use crate::{IoError, OutputFile};

/// Writes one compact JSON object per line and document:
/// `{"document":NAME,"bytes":N,"patch_lengths":[L1,L2,...]}`.
///
/// ```
/// use bltpatch_io::{JsonlWriter, OutputFile, PatchWriter};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("patches.jsonl");
/// let mut writer = Box::new(JsonlWriter::new(OutputFile::create(Some(&path))?));
/// writer.write_document("a.txt", b"hello world", &[6, 5], None)?;
/// writer.finish()?;
/// assert_eq!(
///     std::fs::read_to_string(&path)?,
///     "{\"document\":\"a.txt\",\"bytes\":11,\"patch_lengths\":[6,5]}\n"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct JsonlWriter {
    out: OutputFile,
    line: Vec<u8>,
    open: Open,
}

impl JsonlWriter {
    /// A writer to `out`.
    pub fn new(out: OutputFile) -> Self {
        JsonlWriter {
            out,
            line: Vec::new(),
            open: Open::default(),
        }
    }

    /// Writes `self.line` out.
    fn flush_line(&mut self) -> Result<(), IoError> {
        self.out
            .write_all(&self.line)
            .map_err(|source| IoError::write(self.out.path(), source))
    }
}

impl PatchWriter for JsonlWriter {
    fn begin_document(&mut self, name: &str, bytes: usize) -> Result<(), IoError> {
        self.open.begin(name, bytes)?;
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"document\":");
        serde_json::to_writer(&mut *line, name).expect("a string serializes into a Vec");
        line.extend_from_slice(b",\"bytes\":");
        push_decimal(line, bytes);
        line.extend_from_slice(b",\"patch_lengths\":[");
        self.flush_line()
    }

    fn write_lengths(&mut self, lengths: &[usize]) -> Result<(), IoError> {
        // a comma before every length but the document's first
        let mut first = self.open.add(lengths)? == 0;
        for chunk in lengths.chunks(16 * 1024) {
            let line = &mut self.line;
            line.clear();
            for &len in chunk {
                if !first {
                    line.push(b',');
                }
                first = false;
                push_decimal(line, len);
            }
            self.flush_line()?;
        }
        Ok(())
    }

    fn end_document(&mut self) -> Result<(), IoError> {
        self.open.end()?;
        self.line.clear();
        self.line.extend_from_slice(b"]}\n");
        self.flush_line()
    }

    fn finish(self: Box<Self>) -> Result<(), IoError> {
        self.open.check_closed()?;
        self.out.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::super::Format;
    use super::super::tests::render;

    #[test]
    fn exact_output() {
        let out = render(
            Format::Jsonl,
            false,
            &[
                ("a.txt", b"hello world", &[6, 5]),
                ("b \"q\".jsonl:3", b"", &[]),
            ],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"document\":\"a.txt\",\"bytes\":11,\"patch_lengths\":[6,5]}\n\
             {\"document\":\"b \\\"q\\\".jsonl:3\",\"bytes\":0,\"patch_lengths\":[]}\n"
        );
    }

    #[test]
    fn lines_parse_as_json() {
        let out = render(Format::Jsonl, false, &[("x\ny", b"abc", &[1, 2])]);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["document"], "x\ny");
        assert_eq!(value["bytes"], 3);
        assert_eq!(value["patch_lengths"], serde_json::json!([1, 2]));
    }
}
