//! `--format jsonl`: one JSON object per document.

use std::io::Write;

use super::{PatchWriter, check_document, push_decimal};
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
}

impl JsonlWriter {
    /// A writer to `out`.
    pub fn new(out: OutputFile) -> Self {
        JsonlWriter {
            out,
            line: Vec::new(),
        }
    }
}

impl PatchWriter for JsonlWriter {
    fn write_document(
        &mut self,
        name: &str,
        bytes: &[u8],
        lengths: &[usize],
        entropies: Option<&[f32]>,
    ) -> Result<(), IoError> {
        check_document(name, bytes, lengths, entropies)?;
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"document\":");
        serde_json::to_writer(&mut *line, name).expect("a string serializes into a Vec");
        line.extend_from_slice(b",\"bytes\":");
        push_decimal(line, bytes.len());
        line.extend_from_slice(b",\"patch_lengths\":[");
        for (i, &len) in lengths.iter().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            push_decimal(line, len);
        }
        line.extend_from_slice(b"]}\n");
        self.out
            .write_all(line)
            .map_err(|source| IoError::write(self.out.path(), source))
    }

    fn finish(self: Box<Self>) -> Result<(), IoError> {
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
