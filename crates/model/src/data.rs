//! Training data: memory-mapped corpus files, the held-out split, and random training windows.
//!
//! Every file is split once, deterministically: its last `val_fraction` of bytes (rounded down)
//! is held out for validation and calibration, the rest is training text. Each part is treated
//! as a document of its own (its first byte follows the beginning-of-document token).
//!
//! A training batch is a set of random windows of `R + T` positions (`R`: the receptive field,
//! `T`: `seq_len`) whose last `T` positions, which see their full context, count in the loss;
//! with probability `doc_start_fraction` a window instead starts a new document at a line start
//! (or at the start of a file) and all its positions count, so that the behaviour at the start
//! of a document, where the context is shorter than `C`, is learned too.

use std::fs::File;
use std::path::{Path, PathBuf};

use bltpatch_engine::arch::ConvConfig;
use memmap2::Mmap;

use crate::error::ModelError;
use crate::model::Window;
use crate::rng::SplitMix64;

/// One memory-mapped corpus file and its split.
struct CorpusFile {
    path: PathBuf,
    /// `None` for an empty file (which cannot be mapped).
    map: Option<Mmap>,
    train_len: usize,
}

impl CorpusFile {
    fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// The corpus: memory-mapped files (never read into memory as a whole) split into training and
/// held-out parts.
pub struct Corpus {
    files: Vec<CorpusFile>,
}

impl std::fmt::Debug for Corpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.files
                    .iter()
                    .map(|c| (&c.path, c.bytes().len(), c.train_len)),
            )
            .finish()
    }
}

impl Corpus {
    /// Maps `paths` and splits each file: the last `val_fraction` (in `[0, 1)`) is held out.
    ///
    /// # Errors
    /// [`ModelError::NoCorpus`] for no paths, [`ModelError::Unreadable`] for a file that cannot
    /// be opened or mapped (or is not a regular file), [`ModelError::EmptyCorpus`] when every
    /// file is empty.
    pub fn open(paths: &[PathBuf], val_fraction: f64) -> Result<Self, ModelError> {
        if paths.is_empty() {
            return Err(ModelError::NoCorpus);
        }
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let unreadable = |reason: String| ModelError::Unreadable {
                path: path.clone(),
                reason,
            };
            let file = File::open(path).map_err(|e| unreadable(e.to_string()))?;
            let meta = file.metadata().map_err(|e| unreadable(e.to_string()))?;
            if !meta.is_file() {
                return Err(unreadable("not a regular file".into()));
            }
            let map = if meta.len() == 0 {
                None
            } else {
                // SAFETY: the map is only read. Like every memory-mapped reader, training sees
                // changed bytes if another process modifies the file meanwhile (and may fault if
                // it is truncated); corpus files are expected to stay unchanged while training.
                let map = unsafe { Mmap::map(&file) }.map_err(|e| unreadable(e.to_string()))?;
                Some(map)
            };
            let len = map.as_deref().map_or(0, <[u8]>::len);
            let val_len = ((len as f64) * val_fraction).floor() as usize;
            files.push(CorpusFile {
                path: path.clone(),
                map,
                train_len: len - val_len.min(len),
            });
        }
        if files.iter().all(|f| f.bytes().is_empty()) {
            let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            return Err(ModelError::EmptyCorpus(names.join(", ")));
        }
        Ok(Self { files })
    }

    /// The files: path and total bytes.
    pub fn files(&self) -> Vec<(PathBuf, usize)> {
        self.files
            .iter()
            .map(|f| (f.path.clone(), f.bytes().len()))
            .collect()
    }

    /// Every file by name, size and SHA-256 (for the checkpoint's training summary).
    pub fn describe(&self) -> Vec<bltpatch_checkpoint::CorpusFile> {
        self.files
            .iter()
            .map(|f| bltpatch_checkpoint::CorpusFile::describe(&f.path, f.bytes()))
            .collect()
    }

    /// Total bytes of all files.
    pub fn total_bytes(&self) -> usize {
        self.files.iter().map(|f| f.bytes().len()).sum()
    }

    /// The training part of every file.
    pub fn train_docs(&self) -> Vec<&[u8]> {
        self.files
            .iter()
            .map(|f| &f.bytes()[..f.train_len])
            .collect()
    }

    /// The held-out part of every non-empty split, in file order.
    pub fn val_docs(&self) -> Vec<&[u8]> {
        self.files
            .iter()
            .map(|f| &f.bytes()[f.train_len..])
            .filter(|d| !d.is_empty())
            .collect()
    }

    /// The held-out documents truncated so that together they hold at most `max_bytes` (each
    /// keeps its prefix, in proportion to its length).
    pub fn val_docs_capped(&self, max_bytes: usize) -> Vec<&[u8]> {
        cap_docs(&self.val_docs(), max_bytes)
    }
}

/// Truncates documents to prefixes so that together they hold at most `max_bytes`, each in
/// proportion to its length.
pub fn cap_docs<'a>(docs: &[&'a [u8]], max_bytes: usize) -> Vec<&'a [u8]> {
    let total: usize = docs.iter().map(|d| d.len()).sum();
    if total <= max_bytes {
        return docs.to_vec();
    }
    docs.iter()
        .map(|d| {
            let keep = (d.len() as u128 * max_bytes as u128 / total as u128) as usize;
            &d[..keep]
        })
        .filter(|d| !d.is_empty())
        .collect()
}

/// Draws training windows.
pub(crate) struct Sampler<'a> {
    docs: Vec<&'a [u8]>,
    /// Training positions per window `T`.
    pub seq_len: usize,
    receptive: usize,
    n_max: usize,
    /// Documents that hold a full mid-document window, with cumulative weights.
    mid: Vec<(usize, u64)>,
    /// Non-empty documents with cumulative weights (for document-start windows).
    starts: Vec<(usize, u64)>,
    doc_start_fraction: f64,
}

impl<'a> Sampler<'a> {
    /// A sampler over `docs` for the model `cfg` with `T = min(seq_len, longest - C)`.
    ///
    /// # Errors
    /// [`ModelError::CorpusTooShort`] when no document holds `C + 1` bytes.
    pub fn new(
        cfg: &ConvConfig,
        docs: Vec<&'a [u8]>,
        seq_len: usize,
        doc_start_fraction: f64,
    ) -> Result<Self, ModelError> {
        let context = cfg.context();
        let longest = docs.iter().map(|d| d.len()).max().unwrap_or(0);
        if longest <= context {
            return Err(ModelError::CorpusTooShort {
                longest,
                context,
                needed: context + 1,
            });
        }
        let seq_len = seq_len.clamp(1, longest - context);
        let mut mid = Vec::new();
        let mut starts = Vec::new();
        let (mut wm, mut ws) = (0u64, 0u64);
        for (i, d) in docs.iter().enumerate() {
            if d.len() >= context + seq_len {
                wm += (d.len() - context - seq_len + 1) as u64;
                mid.push((i, wm));
            }
            if !d.is_empty() {
                ws += d.len() as u64;
                starts.push((i, ws));
            }
        }
        Ok(Self {
            docs,
            seq_len,
            receptive: cfg.receptive_field(),
            n_max: cfg.max_order(),
            mid,
            starts,
            doc_start_fraction,
        })
    }

    /// Positions per window `L = R + T`.
    pub fn window_len(&self) -> usize {
        self.receptive + self.seq_len
    }

    fn pick(table: &[(usize, u64)], rng: &mut SplitMix64) -> (usize, u64) {
        let total = table.last().map_or(0, |t| t.1);
        let x = rng.below(total);
        let k = table.partition_point(|&(_, c)| c <= x);
        let before = if k == 0 { 0 } else { table[k - 1].1 };
        (table[k].0, x - before)
    }

    /// One random window.
    pub fn window(&self, rng: &mut SplitMix64) -> Window<'a> {
        let l = self.window_len();
        if rng.unit() < self.doc_start_fraction {
            let (i, off) = Self::pick(&self.starts, rng);
            let doc = self.docs[i];
            // A document start: the file start, or the start of a line near a random position.
            let mut s = off as usize;
            if rng.below(16) == 0 {
                s = 0;
            } else if s > 0 {
                let look = &doc[s - 1..doc.len().min(s - 1 + 256)];
                s = match look.iter().position(|&b| b == b'\n') {
                    Some(p) => s + p,
                    None => s,
                };
            }
            let s = s.min(doc.len() - 1);
            let doc = &doc[s..(s + l).min(doc.len())];
            Window {
                doc,
                start: 0,
                end: doc.len(),
                count_from: 0,
            }
        } else {
            let (i, off) = Self::pick(&self.mid, rng);
            // Window positions s .. s+L with s >= n_max, so all hashed terms are present.
            let start = self.n_max + off as usize;
            Window {
                doc: self.docs[i],
                start,
                end: start + l,
                count_from: start + self.receptive,
            }
        }
    }
}

/// Evenly spaced chunks of the held-out documents for the periodic validation estimate: up to
/// `count` chunks of `len` counted positions, each with a warm-up of `receptive` positions.
pub(crate) fn val_sample<'a>(
    docs: &[&'a [u8]],
    count: usize,
    len: usize,
    receptive: usize,
) -> Vec<Window<'a>> {
    let total: usize = docs.iter().map(|d| d.len()).sum();
    let len = len.max(1);
    if total == 0 || count == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let step = (total / count).max(len);
    let mut at = 0;
    while at < total && out.len() < count {
        // Locate global offset `at`.
        let mut off = at;
        let mut di = 0;
        while off >= docs[di].len() {
            off -= docs[di].len();
            di += 1;
        }
        let doc = docs[di];
        let end = (off + len).min(doc.len());
        out.push(Window {
            doc,
            start: off.saturating_sub(receptive),
            end,
            count_from: off,
        });
        at += step;
    }
    out
}

/// Checks that `path` names a writable location for a checkpoint directory (a new directory, an
/// empty one or a checkpoint): creates it (and its parents) if needed and writes and removes a
/// probe file in it and in its parent.
///
/// # Errors
/// [`ModelError::OutputNotWritable`].
pub(crate) fn check_writable(path: &Path) -> Result<(), ModelError> {
    let err = |e: std::io::Error| ModelError::OutputNotWritable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    if path.exists() && !path.is_dir() {
        return Err(ModelError::OutputNotWritable {
            path: path.to_path_buf(),
            reason: "it exists and is not a directory".into(),
        });
    }
    if path.file_name().is_none() {
        return Err(ModelError::OutputNotWritable {
            path: path.to_path_buf(),
            reason: "give the checkpoint a directory name of its own".into(),
        });
    }
    if let Ok(mut entries) = std::fs::read_dir(path) {
        let checkpoint = path.join(bltpatch_checkpoint::CONFIG_FILE).is_file()
            || path.join(crate::train::RESUME_FILE).is_file();
        if !checkpoint && entries.next().is_some() {
            return Err(ModelError::OutputNotWritable {
                path: path.to_path_buf(),
                reason: "it is a non-empty directory that holds no checkpoint (its contents \
                         would be moved); choose a new or empty directory"
                    .into(),
            });
        }
    }
    std::fs::create_dir_all(path).map_err(err)?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    for dir in [path, parent.as_path()] {
        let probe = dir.join(format!(".bltpatch-write-probe-{}", std::process::id()));
        std::fs::write(&probe, b"probe").map_err(err)?;
        std::fs::remove_file(&probe).map_err(err)?;
    }
    Ok(())
}
