//! The text: each corpus file's first 95 % trains, its last 5 % is held out (the split of
//! [`bltpatch_model::data::Corpus`], on which the library's default entropy model was trained).
//! The held-out part is cut in two: its first half is the **validation** text, on which every
//! scheme's parameter is set; its second half is the **test** text, which the learning curve and
//! the final score read. Neither model trains on either half.
//!
//! Training windows are `seq_len` bytes at uniformly random offsets of the training parts
//! (a file drawn in proportion to its size); validation and test windows are `seq_len` bytes at
//! evenly spaced offsets of each file's half, the same for every scheme. Every window
//! is a document of its own: the entropy model and the latent model both start it from an empty
//! context.

use std::path::{Path, PathBuf};

use bltpatch_model::data::Corpus;
use bltpatch_model::rng::SplitMix64;

use crate::error::LatentError;

/// The share of each file held out at its end.
pub const VAL_FRACTION: f64 = 0.05;

/// The corpus files and their split.
pub struct Text {
    corpus: Corpus,
    names: Vec<String>,
}

impl Text {
    /// Opens the files (memory-mapped) and splits each one.
    ///
    /// # Errors
    /// A missing, unreadable or empty corpus.
    pub fn open(paths: &[PathBuf]) -> Result<Self, LatentError> {
        let corpus = Corpus::open(paths, VAL_FRACTION)?;
        let names = paths
            .iter()
            .map(|p| {
                p.file_name()
                    .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
            })
            .collect();
        Ok(Self { corpus, names })
    }

    /// The `*.txt` files of a directory, sorted by name, without `tiny.txt` (a mix cut from
    /// the others).
    ///
    /// # Errors
    /// An unreadable directory.
    pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>, LatentError> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            LatentError::InvalidOption(format!("cannot read {}: {e}", dir.display()))
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .filter(|p| p.file_name().is_some_and(|n| n != "tiny.txt"))
            .collect();
        files.sort();
        Ok(files)
    }

    /// The file names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The training part of every file.
    pub fn train(&self) -> Vec<&[u8]> {
        self.corpus.train_docs()
    }

    /// The held-out part of every file.
    pub fn held_out(&self) -> Vec<&[u8]> {
        self.corpus.val_docs()
    }

    /// The first half of every file's held-out part: calibration text.
    pub fn validation(&self) -> Vec<&[u8]> {
        self.held_out()
            .into_iter()
            .map(|d| &d[..d.len() / 2])
            .collect()
    }

    /// The second half of every file's held-out part: evaluation text.
    pub fn test(&self) -> Vec<&[u8]> {
        self.held_out()
            .into_iter()
            .map(|d| &d[d.len() / 2..])
            .collect()
    }
}

/// Draws training windows.
pub struct Sampler<'a> {
    docs: Vec<&'a [u8]>,
    /// Cumulative bytes, for drawing a file in proportion to its size.
    cumulative: Vec<u64>,
    seq_len: usize,
}

impl<'a> Sampler<'a> {
    /// Windows of `seq_len` bytes (shorter only from a shorter file) from `docs`.
    pub fn new(docs: Vec<&'a [u8]>, seq_len: usize) -> Self {
        let mut total = 0u64;
        let cumulative = docs
            .iter()
            .map(|d| {
                total += d.len() as u64;
                total
            })
            .collect();
        Self {
            docs,
            cumulative,
            seq_len: seq_len.max(1),
        }
    }

    /// One random window.
    pub fn window(&self, rng: &mut SplitMix64) -> &'a [u8] {
        let total = *self.cumulative.last().unwrap_or(&0);
        let at = rng.below(total.max(1));
        let f = self.cumulative.partition_point(|&c| c <= at);
        let doc = self.docs[f.min(self.docs.len() - 1)];
        let n = self.seq_len.min(doc.len());
        let start = rng.below((doc.len() - n + 1) as u64) as usize;
        &doc[start..start + n]
    }

    /// `count` random windows.
    pub fn windows(&self, rng: &mut SplitMix64, count: usize) -> Vec<&'a [u8]> {
        (0..count).map(|_| self.window(rng)).collect()
    }
}

/// `per_doc` windows of `seq_len` bytes at evenly spaced offsets of each document (the first
/// at its start, the last at its end), with the index of the document they come from.
pub fn spaced_windows<'a>(
    docs: &[&'a [u8]],
    per_doc: usize,
    seq_len: usize,
) -> Vec<(usize, &'a [u8])> {
    let mut out = Vec::new();
    for (d, doc) in docs.iter().enumerate() {
        let n = seq_len.min(doc.len());
        if n == 0 {
            continue;
        }
        let room = doc.len() - n;
        let count = per_doc.min(room / n + 1).max(1);
        for i in 0..count {
            let start = if count == 1 {
                0
            } else {
                room * i / (count - 1)
            };
            out.push((d, &doc[start..start + n]));
        }
    }
    out
}
