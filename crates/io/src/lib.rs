//! Input and output for bltpatch: bytes in, patch lengths and entropies out.
//!
//! This crate knows nothing of models or rules: it reads inputs as byte slices
//! ([`read_input`], memory-mapped), splits JSON Lines corpora into documents
//! ([`jsonl_documents`]), and writes segmentations in the formats of `bltpatch segment`
//! ([`Format`], [`writer`], one [`PatchWriter`] per format) and entropies in those of
//! `bltpatch entropy` ([`write_entropy_tsv`], [`NpyF32Writer`]). Every file output is atomic
//! ([`OutputFile`]): it appears complete at [`PatchWriter::finish`], or not at all.
//!
//! ```
//! use bltpatch_io::{Format, writer};
//!
//! let dir = tempfile::tempdir()?;
//! let corpus = dir.path().join("corpus.jsonl");
//! std::fs::write(&corpus, "{\"text\": \"hello world\"}\n{\"text\": \"hi\"}\n")?;
//!
//! let input = bltpatch_io::read_input(&corpus)?;
//! let out = dir.path().join("lengths.txt");
//! let mut patches = writer(Format::Lengths, Some(&out), false)?;
//! for (i, doc) in bltpatch_io::jsonl_documents(&input, "text").enumerate() {
//!     let doc = doc?;
//!     let lengths = [doc.len()]; // a real segmenter goes here
//!     patches.write_document(&format!("corpus.jsonl:{}", i + 1), &doc, &lengths, None)?;
//! }
//! patches.finish()?;
//! assert_eq!(std::fs::read_to_string(&out)?, "11\n2\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod entropy;
mod error;
mod input;
mod jsonl_input;
mod npy;
mod output;
mod writers;

pub use entropy::{NpyF32Writer, write_entropy_tsv};
pub use error::IoError;
pub use input::{Input, display_name, is_stdin, read_input};
pub use jsonl_input::{JsonlDocuments, jsonl_documents};
pub use output::{OutputFile, is_terminal_stdout};
pub use writers::{Format, JsonlWriter, LengthsWriter, NpyWriter, PatchWriter, TextWriter, writer};
