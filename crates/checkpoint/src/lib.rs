//! # bltpatch-checkpoint
//!
//! The checkpoint directory format shared by every bltpatch entropy-model architecture (the
//! count-based n-gram model, and later neural ones).
//!
//! A checkpoint is a directory holding two files:
//!
//! - [`CONFIG_FILE`] (`config.json`): a [`Config`]: the format version ([`FORMAT_VERSION`]), the
//!   architecture name and its hyper-parameters, the context length `C` in bytes, a training
//!   summary, the calibrated patching thresholds ([`CalibrationRecord`]) and, optionally, the
//!   in-document adaptation of bits/byte ([`bltpatch_core::adapt::AdaptConfig`], which never
//!   changes `H`);
//! - [`WEIGHTS_FILE`] (`model.safetensors`): the tensors, in the
//!   [safetensors](https://huggingface.co/docs/safetensors) format (little-endian, C order), so that
//!   numpy (`safetensors.numpy.load_file`) and PyTorch read them directly. The header metadata
//!   carries `"format": "bltpatch"`. Each architecture documents its tensor names, dtypes and
//!   shapes.
//!
//! Other files (for example training state for `--resume`) may sit beside them; loading ignores
//! them and [`write_checkpoint`] carries them over when it replaces a checkpoint.
//!
//! Reading checks the format version, the presence of both files, the integrity of the
//! safetensors file, and (through the typed accessors of [`Weights`]) every tensor's dtype and
//! shape. Every error is a [`CheckpointError`] whose one-line message says what is wrong and where.
//!
//! ```
//! use bltpatch_checkpoint::{read_config, write_checkpoint, Config, Tensor, Weights};
//!
//! let tmp = tempfile::tempdir().unwrap();
//! let dir = tmp.path().join("my-model");
//! let config = Config::new("ngram", 3, serde_json::json!({ "order": 4 }));
//! let tensors = vec![Tensor::f32("bias", vec![2], vec![0.5, -1.0])];
//! write_checkpoint(&dir, &config, &tensors).unwrap();
//!
//! assert_eq!(read_config(&dir).unwrap(), config);
//! let weights = Weights::open(&dir).unwrap();
//! let (shape, data) = weights.f32("bias", Some(&[2])).unwrap();
//! assert_eq!((shape, data), (vec![2], vec![0.5, -1.0]));
//! // A wrong expectation is an error that names the tensor.
//! let err = weights.u32("bias", None).unwrap_err();
//! assert!(err.to_string().contains("tensor bias has dtype F32 (expected U32)"));
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bltpatch_core::{PatchConfig, Rule};
use safetensors::{Dtype, SafeTensors, View};
use serde::{Deserialize, Serialize};

/// The checkpoint format version this build reads and writes (`config.json`'s
/// `format_version`).
pub const FORMAT_VERSION: u32 = 1;

/// The name of the configuration file inside a checkpoint directory.
pub const CONFIG_FILE: &str = "config.json";

/// The name of the weights file inside a checkpoint directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// The contents of `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Config {
    /// The checkpoint format version; [`FORMAT_VERSION`] for checkpoints this build can read.
    pub format_version: u32,
    /// The architecture: `"ngram"`, or a neural one (for example `"transformer"`).
    pub arch: String,
    /// `C`, the model's context length in bytes: `H[i]` depends on `x[max(0, i-C) .. i)` only.
    pub context: usize,
    /// The architecture's hyper-parameters (its own serde structure, stored as a JSON value).
    pub architecture: serde_json::Value,
    /// A summary of training (corpus files, bytes, time, held-out bits/byte, ...); free-form.
    #[serde(default)]
    pub training: serde_json::Value,
    /// The patching rule and threshold calibrated for this model, if any.
    #[serde(default)]
    pub calibration: Option<CalibrationRecord>,
    /// In-document adaptation of the model's surprisals (bits/byte), if any; absent from
    /// checkpoints without it, which score exactly as before. It never changes `H`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapt: Option<bltpatch_core::adapt::AdaptConfig>,
}

/// A patching rule calibrated on some text, stored with the model so that segmentation without
/// explicit rule flags uses it.
///
/// In `config.json` the rule is a tagged record flattened into this one, e.g.
/// `{"rule": "budget", "budget": 7.25, "max_patch_len": null, "target_patch_size": 4.5, ...}`
/// or `{"rule": "global", "threshold": 2.36, ...}`; a record whose rule lacks its parameter,
/// names an unknown rule or holds an invalid value (negative, not finite) is an error when the
/// checkpoint is read, never a silent "not calibrated".
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CalibrationRecord {
    /// The rule and its calibrated parameter.
    #[serde(flatten)]
    pub rule: Rule,
    /// The maximum patch length used during calibration, if any.
    pub max_patch_len: Option<usize>,
    /// The mean patch length (bytes per patch) that was asked for.
    pub target_patch_size: f64,
    /// The mean patch length achieved on the calibration text.
    pub mean_patch_len: f64,
    /// Bytes of calibration text.
    pub calibration_bytes: usize,
}

impl CalibrationRecord {
    /// Calibrates `target` to `target_patch_size` bytes per patch on documents given by their
    /// entropies ([`bltpatch_core::calibrate`]) and records the result.
    ///
    /// # Errors
    /// As [`bltpatch_core::calibrate`]: a target below 1, no text, a `max_patch_len` of 0.
    pub fn calibrate(
        entropies: &[&[f32]],
        target: bltpatch_core::CalibrationTarget,
        target_patch_size: f64,
        max_patch_len: Option<usize>,
    ) -> Result<Self, bltpatch_core::Error> {
        let c = bltpatch_core::calibrate(entropies, target, target_patch_size, max_patch_len)?;
        Ok(Self {
            rule: c.config.rule(),
            max_patch_len: c.config.max_patch_len(),
            target_patch_size,
            mean_patch_len: c.mean_patch_len,
            calibration_bytes: c.bytes,
        })
    }

    /// The validated patching configuration: the rule and `max_patch_len`.
    ///
    /// # Errors
    /// A parameter that is negative or not finite, or a `max_patch_len` of 0.
    pub fn patch_config(&self) -> Result<PatchConfig, bltpatch_core::Error> {
        PatchConfig::new(self.rule)?.with_max_patch_len(self.max_patch_len)
    }
}

/// One training corpus file as a checkpoint's training summary records it: by file name, size
/// and SHA-256, never by the path of the machine that trained it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CorpusFile {
    /// The file's name (its last path component; `-` for standard input).
    pub file: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// The SHA-256 of its bytes, in lowercase hex.
    pub sha256: String,
}

impl CorpusFile {
    /// Describes the file at `path` whose contents are `data`.
    ///
    /// ```
    /// let f = bltpatch_checkpoint::CorpusFile::describe("/data/corpus/abc.txt".as_ref(), b"abc");
    /// assert_eq!(f.file, "abc.txt");
    /// assert_eq!(f.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /// ```
    pub fn describe(path: &Path, data: &[u8]) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(data);
        Self {
            file: path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            bytes: data.len() as u64,
            sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

/// Everything that can go wrong reading or writing a checkpoint. Each message is one line that
/// says what is wrong and where (the path, or the origin of the weights).
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// An I/O error reading `path`.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The checkpoint directory does not exist.
    #[error("checkpoint directory {} does not exist", .0.display())]
    NotFound(PathBuf),
    /// The checkpoint path exists but is not a directory.
    #[error("{} is not a checkpoint directory (it is not a directory)", .0.display())]
    NotADirectory(PathBuf),
    /// The checkpoint directory lacks one of its files.
    #[error("checkpoint {} has no {file}", .dir.display())]
    MissingFile {
        /// The checkpoint directory.
        dir: PathBuf,
        /// The missing file's name ([`CONFIG_FILE`] or [`WEIGHTS_FILE`]).
        file: &'static str,
    },
    /// `config.json` is not valid JSON, or not a valid [`Config`].
    #[error("{path}: not a valid checkpoint config: {message}")]
    InvalidJson {
        /// Where the text came from (the path of `config.json`).
        path: String,
        /// serde's message, with line and column.
        message: String,
    },
    /// `config.json` declares a format version that this build cannot read.
    #[error("{path}: checkpoint format version {found}, this build reads version {expected}")]
    VersionMismatch {
        /// Where the config came from.
        path: String,
        /// The version in the file.
        found: u64,
        /// [`FORMAT_VERSION`].
        expected: u32,
    },
    /// The safetensors file is truncated, has garbage bytes, or an inconsistent header.
    #[error("{origin}: corrupt or truncated safetensors file: {message}")]
    CorruptWeights {
        /// Where the bytes came from (the path of `model.safetensors`, or `<embedded>`).
        origin: String,
        /// What the parser found.
        message: String,
    },
    /// A tensor that the architecture needs is absent.
    #[error("{origin}: missing tensor {name}")]
    MissingTensor {
        /// Where the weights came from.
        origin: String,
        /// The tensor's name.
        name: String,
    },
    /// A tensor has another dtype than expected.
    #[error("{origin}: tensor {name} has dtype {found} (expected {expected})")]
    WrongDtype {
        /// Where the weights came from.
        origin: String,
        /// The tensor's name.
        name: String,
        /// The dtype in the file (safetensors spelling: `F32`, `U32`, ...).
        found: String,
        /// The dtype asked for.
        expected: String,
    },
    /// A tensor has another shape than expected.
    #[error("{origin}: tensor {name} has shape {found:?} (expected {expected:?})")]
    WrongShape {
        /// Where the weights came from.
        origin: String,
        /// The tensor's name.
        name: String,
        /// The shape in the file.
        found: Vec<usize>,
        /// The shape asked for.
        expected: Vec<usize>,
    },
    /// Writing the checkpoint at `path` failed (not writable, disk full, ...).
    #[error("cannot write checkpoint {}: {source}", .path.display())]
    Write {
        /// The checkpoint directory (or the file or folder that could not be written).
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Any other problem, for example a model-specific consistency check; the message says what
    /// and where.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// A configuration of the current [`FORMAT_VERSION`] with an empty training summary and no
    /// calibration.
    pub fn new(arch: &str, context: usize, architecture: serde_json::Value) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            arch: arch.to_string(),
            context,
            architecture,
            training: serde_json::Value::Null,
            calibration: None,
            adapt: None,
        }
    }

    /// Parses the text of a `config.json`.
    ///
    /// # Errors
    /// [`CheckpointError::InvalidJson`] for text that is not JSON or lacks a field, and
    /// [`CheckpointError::VersionMismatch`] when `format_version` is not [`FORMAT_VERSION`]
    /// (checked before the other fields, so a newer format is reported as such).
    pub fn from_json(text: &str) -> Result<Self, CheckpointError> {
        Self::from_json_at(text, CONFIG_FILE)
    }

    fn from_json_at(text: &str, origin: &str) -> Result<Self, CheckpointError> {
        let invalid = |e: serde_json::Error| CheckpointError::InvalidJson {
            path: origin.to_string(),
            message: e.to_string(),
        };
        let value: serde_json::Value = serde_json::from_str(text).map_err(invalid)?;
        if let Some(found) = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            && found != u64::from(FORMAT_VERSION)
        {
            return Err(CheckpointError::VersionMismatch {
                path: origin.to_string(),
                found,
                expected: FORMAT_VERSION,
            });
        }
        let config: Config = serde_json::from_value(value).map_err(invalid)?;
        if let Some(c) = &config.calibration {
            c.patch_config().map_err(|e| CheckpointError::InvalidJson {
                path: origin.to_string(),
                message: format!("invalid calibration: {e}"),
            })?;
        }
        if let Some(a) = &config.adapt {
            a.validate().map_err(|e| CheckpointError::InvalidJson {
                path: origin.to_string(),
                message: format!("invalid adapt record: {e}"),
            })?;
        }
        Ok(config)
    }

    /// The configuration as pretty-printed JSON (the text of `config.json`, without a final
    /// newline).
    pub fn to_json_pretty(&self) -> String {
        // Serialising these types cannot fail: every map key is a string. (Non-finite floats
        // become `null`; `write_checkpoint` rejects them before they get here.)
        serde_json::to_string_pretty(self).expect("a Config always serialises to JSON")
    }
}

/// Checks that `dir` exists and is a directory.
fn check_dir(dir: &Path) -> Result<(), CheckpointError> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(CheckpointError::NotADirectory(dir.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(CheckpointError::NotFound(dir.to_path_buf()))
        }
        Err(e) => Err(CheckpointError::Io {
            path: dir.to_path_buf(),
            source: e,
        }),
    }
}

/// Reads one file of a checkpoint directory, mapping a missing file to
/// [`CheckpointError::MissingFile`].
fn read_member(dir: &Path, file: &'static str) -> Result<Vec<u8>, CheckpointError> {
    check_dir(dir)?;
    let path = dir.join(file);
    fs::read(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            CheckpointError::MissingFile {
                dir: dir.to_path_buf(),
                file,
            }
        } else {
            CheckpointError::Io { path, source: e }
        }
    })
}

/// Reads and parses `dir/config.json`, checking its format version.
///
/// # Errors
/// A missing or unreadable directory or file, invalid JSON, or another format version.
pub fn read_config(dir: &Path) -> Result<Config, CheckpointError> {
    let bytes = read_member(dir, CONFIG_FILE)?;
    let origin = dir.join(CONFIG_FILE).display().to_string();
    let text = String::from_utf8(bytes).map_err(|e| CheckpointError::InvalidJson {
        path: origin.clone(),
        message: format!("not UTF-8: {e}"),
    })?;
    Config::from_json_at(&text, &origin)
}

/// Reads a whole checkpoint: its [`Config`] (version checked) and its [`Weights`] (integrity
/// checked; tensors are checked when the architecture reads them).
///
/// # Errors
/// As [`read_config`] and [`Weights::open`].
pub fn read_checkpoint(dir: &Path) -> Result<(Config, Weights), CheckpointError> {
    Ok((read_config(dir)?, Weights::open(dir)?))
}

/// Where one tensor lies in a safetensors buffer.
#[derive(Debug, Clone)]
struct Entry {
    dtype: Dtype,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// The tensors of a `model.safetensors` file: owns the file's bytes, parsed and validated once.
///
/// Accessors check the dtype and (when asked) the exact shape, and return owned data decoded
/// from little-endian.
pub struct Weights {
    bytes: Vec<u8>,
    origin: String,
    entries: BTreeMap<String, Entry>,
    metadata: BTreeMap<String, String>,
}

impl std::fmt::Debug for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Weights")
            .field("origin", &self.origin)
            .field("bytes", &self.bytes.len())
            .field("tensors", &self.entries.len())
            .finish()
    }
}

impl Weights {
    /// Reads and validates `dir/model.safetensors`.
    ///
    /// # Errors
    /// A missing or unreadable directory or file, or a corrupt or truncated file.
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        let bytes = read_member(dir, WEIGHTS_FILE)?;
        Self::parse(bytes, dir.join(WEIGHTS_FILE).display().to_string())
    }

    /// Validates the bytes of a safetensors file, for example a model embedded in a binary with
    /// `include_bytes!` (`include_bytes!(...).to_vec()`). Errors name the origin `<embedded>`.
    ///
    /// # Errors
    /// [`CheckpointError::CorruptWeights`] for bytes that are not a valid safetensors file.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, CheckpointError> {
        Self::parse(bytes, "<embedded>".to_string())
    }

    fn parse(bytes: Vec<u8>, origin: String) -> Result<Self, CheckpointError> {
        // `read_metadata` checks the header and that the tensors tile the data exactly.
        let (header_len, meta) =
            SafeTensors::read_metadata(&bytes).map_err(|e| CheckpointError::CorruptWeights {
                origin: origin.clone(),
                message: e.to_string(),
            })?;
        let data_start = 8 + header_len;
        let entries = meta
            .tensors()
            .into_iter()
            .map(|(name, info)| {
                let entry = Entry {
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                    start: data_start + info.data_offsets.0,
                    end: data_start + info.data_offsets.1,
                };
                (name, entry)
            })
            .collect();
        let metadata = meta
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Ok(Self {
            bytes,
            origin,
            entries,
            metadata,
        })
    }

    /// Where the weights came from: the path of the file, or `<embedded>`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The names of all tensors, sorted.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// Whether a tensor of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The shape of a tensor, if it exists.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|e| e.shape.as_slice())
    }

    /// The dtype of a tensor in safetensors spelling (`"F32"`, `"U32"`, ...), if it exists.
    pub fn dtype(&self, name: &str) -> Option<String> {
        self.entries.get(name).map(|e| e.dtype.to_string())
    }

    /// The string metadata of the safetensors header (`__metadata__`), for example
    /// `"format": "bltpatch"`.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Finds a tensor and checks its dtype and shape; returns its shape and raw bytes.
    fn raw(
        &self,
        name: &str,
        dtype: Dtype,
        shape: Option<&[usize]>,
    ) -> Result<(Vec<usize>, &[u8]), CheckpointError> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| CheckpointError::MissingTensor {
                origin: self.origin.clone(),
                name: name.to_string(),
            })?;
        if entry.dtype != dtype {
            return Err(CheckpointError::WrongDtype {
                origin: self.origin.clone(),
                name: name.to_string(),
                found: entry.dtype.to_string(),
                expected: dtype.to_string(),
            });
        }
        if let Some(expected) = shape
            && expected != entry.shape.as_slice()
        {
            return Err(CheckpointError::WrongShape {
                origin: self.origin.clone(),
                name: name.to_string(),
                found: entry.shape.clone(),
                expected: expected.to_vec(),
            });
        }
        Ok((entry.shape.clone(), &self.bytes[entry.start..entry.end]))
    }

    /// An `F32` tensor: its shape and its elements in C order.
    ///
    /// # Errors
    /// A missing tensor, another dtype, or (when `shape` is given) another shape.
    pub fn f32(
        &self,
        name: &str,
        shape: Option<&[usize]>,
    ) -> Result<(Vec<usize>, Vec<f32>), CheckpointError> {
        let (shape, raw) = self.raw(name, Dtype::F32, shape)?;
        Ok((
            shape,
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
        ))
    }

    /// A `U32` tensor: its shape and its elements in C order.
    ///
    /// # Errors
    /// As [`f32`](Self::f32).
    pub fn u32(
        &self,
        name: &str,
        shape: Option<&[usize]>,
    ) -> Result<(Vec<usize>, Vec<u32>), CheckpointError> {
        let (shape, raw) = self.raw(name, Dtype::U32, shape)?;
        Ok((
            shape,
            raw.chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
        ))
    }

    /// A `U64` tensor: its shape and its elements in C order.
    ///
    /// # Errors
    /// As [`f32`](Self::f32).
    pub fn u64(
        &self,
        name: &str,
        shape: Option<&[usize]>,
    ) -> Result<(Vec<usize>, Vec<u64>), CheckpointError> {
        let (shape, raw) = self.raw(name, Dtype::U64, shape)?;
        Ok((
            shape,
            raw.chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
        ))
    }

    /// A `U8` tensor: its shape and its elements in C order.
    ///
    /// # Errors
    /// As [`f32`](Self::f32).
    pub fn u8(
        &self,
        name: &str,
        shape: Option<&[usize]>,
    ) -> Result<(Vec<usize>, Vec<u8>), CheckpointError> {
        let (shape, raw) = self.raw(name, Dtype::U8, shape)?;
        Ok((shape, raw.to_vec()))
    }

    /// An `F16` tensor: its shape and its elements in C order, each widened exactly to `f32`
    /// ([`f16_to_f32`]).
    ///
    /// # Errors
    /// As [`f32`](Self::f32).
    pub fn f16(
        &self,
        name: &str,
        shape: Option<&[usize]>,
    ) -> Result<(Vec<usize>, Vec<f32>), CheckpointError> {
        let (shape, raw) = self.raw(name, Dtype::F16, shape)?;
        Ok((
            shape,
            raw.chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
        ))
    }

    /// An `I8` tensor: its shape and its elements in C order.
    ///
    /// # Errors
    /// As [`f32`](Self::f32).
    pub fn i8(
        &self,
        name: &str,
        shape: Option<&[usize]>,
    ) -> Result<(Vec<usize>, Vec<i8>), CheckpointError> {
        let (shape, raw) = self.raw(name, Dtype::I8, shape)?;
        Ok((shape, raw.iter().map(|&b| b as i8).collect()))
    }

    /// A floating-point tensor stored as `F32`, `F16` (widened exactly) or row-scaled `I8`
    /// (element `[r, ..]` is `q as f32 * s[r]`, one `f32` product, with `s` the `F32` or `F16`
    /// tensor [`row_scale_name`]`(name)` of shape `[rows]`): its shape and its elements in C
    /// order. For architectures that let each tensor choose its storage.
    ///
    /// # Errors
    /// A missing tensor, a dtype other than `F32`, `F16` and `I8` (reported as expecting
    /// `F32`), (when `shape` is given) another shape, or an `I8` tensor without a scalar shape
    /// whose scales are missing or of another shape.
    pub fn float(
        &self,
        name: &str,
        shape: Option<&[usize]>,
    ) -> Result<(Vec<usize>, Vec<f32>), CheckpointError> {
        match self.entries.get(name) {
            Some(e) if e.dtype == Dtype::F16 => self.f16(name, shape),
            Some(e) if e.dtype == Dtype::I8 && !e.shape.is_empty() => {
                let (shape, q) = self.i8(name, shape)?;
                let rows = shape[0];
                let (_, s) = self.float(&row_scale_name(name), Some(&[rows]))?;
                let cols = q.len().checked_div(rows).unwrap_or(0);
                let values = q
                    .chunks_exact(cols.max(1))
                    .zip(&s)
                    .flat_map(|(row, &s)| row.iter().map(move |&q| q as f32 * s))
                    .collect();
                Ok((shape, values))
            }
            _ => self.f32(name, shape),
        }
    }
}

/// The name of the per-row scales of a row-scaled `I8` tensor (see [`Weights::float`]):
/// `"{name}.scale"`.
pub fn row_scale_name(name: &str) -> String {
    format!("{name}.scale")
}

/// Rounds a matrix `[rows, cols]` (C order) to row-scaled 8-bit integers: per row, the scale
/// `s` is the smallest binary16 number with `127 · s >= max |x|` and `q = round(x / s)` (ties
/// to even, in `-127..=127`); a row of zeros has `s = 0`. Returns `(q, s as binary16 bits)`;
/// `q[i] as f32 * s` is the stored value ([`Weights::float`]). The error of an element is at
/// most `s / 2`.
///
/// `None` when a value is not finite or a row's scale exceeds binary16's range
/// (`max |x| > 127 · 65504`), or when `cols` is 0 or does not divide `data.len()`.
pub fn quantize_rows(data: &[f32], cols: usize) -> Option<(Vec<i8>, Vec<u16>)> {
    if cols == 0 || !data.len().is_multiple_of(cols) || data.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut q = Vec::with_capacity(data.len());
    let mut scales = Vec::with_capacity(data.len() / cols);
    for row in data.chunks_exact(cols) {
        let max = row.iter().fold(0f32, |m, x| m.max(x.abs()));
        let mut h = f32_to_f16(max / 127.0);
        while f16_to_f32(h) * 127.0 < max {
            h += 1; // the next binary16 up (positive numbers order like their bits)
        }
        let s = f16_to_f32(h);
        if !s.is_finite() {
            return None;
        }
        scales.push(h);
        q.extend(row.iter().map(|&x| {
            if s == 0.0 {
                0
            } else {
                (x / s).round_ties_even().clamp(-127.0, 127.0) as i8
            }
        }));
    }
    Some((q, scales))
}

/// The row-scaled 8-bit form of a matrix `[rows, cols]` whose every element it reproduces
/// exactly (`q as f32 * s`, bit for bit), as after [`quantize_rows`]: `(q, s as binary16 bits)`,
/// or `None` if some row has no such form. For writers that keep a quantised tensor quantised.
pub fn exact_rows(data: &[f32], cols: usize) -> Option<(Vec<i8>, Vec<u16>)> {
    if cols == 0 || !data.len().is_multiple_of(cols) {
        return None;
    }
    let mut q = Vec::with_capacity(data.len());
    let mut scales = Vec::with_capacity(data.len() / cols);
    for row in data.chunks_exact(cols) {
        let max = row.iter().fold(0f32, |m, x| m.max(x.abs()));
        if !max.is_finite() {
            return None;
        }
        // The largest |q| of the row is max / s for some m in 1..=127 (or the row is +0.0).
        let found = (1..=127u8).rev().find_map(|m| {
            let s = max / m as f32;
            let h = f32_to_f16(s);
            if f16_to_f32(h) != s {
                return None;
            }
            let qs: Option<Vec<i8>> = row
                .iter()
                .map(|&x| {
                    let v = (x / s).round_ties_even();
                    (v.abs() <= 127.0 && ((v as i8) as f32 * s).to_bits() == x.to_bits())
                        .then_some(v as i8)
                })
                .collect();
            qs.map(|qs| (qs, h))
        });
        let (qs, h) = match found {
            Some(f) => f,
            None if row.iter().all(|x| x.to_bits() == 0) => (vec![0; cols], 0),
            None => return None,
        };
        q.extend(qs);
        scales.push(h);
    }
    Some((q, scales))
}

/// Widens IEEE-754 binary16 bits to the `f32` of the same value (exact: every binary16 value,
/// subnormals, infinities and NaN included, is an `f32`; a NaN keeps its sign and payload).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: man · 2^-24, normalised for f32.
            let shift = man.leading_zeros() - 21; // bring the leading one to bit 10
            let man = (man << shift) & 0x3ff;
            let exp = 127 - 15 + 1 - shift;
            sign | (exp << 23) | (man << 13)
        }
        (0x1f, _) => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Rounds an `f32` to the nearest IEEE-754 binary16 (ties to even), as its bits: values beyond
/// the binary16 range become infinities, tiny values subnormals or zero; NaN stays NaN.
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x7f_ffff;
    if exp == 0xff {
        // Infinity, or NaN with a quiet bit so that it stays a NaN.
        let nan = if man != 0 {
            0x200 | (man >> 13) as u16
        } else {
            0
        };
        return sign | 0x7c00 | nan;
    }
    // The value is m · 2^(e - 23) with m = 1.man (or 0.man for f32 subnormals).
    let (m, e) = if exp == 0 {
        (man, -126)
    } else {
        (man | 0x80_0000, exp - 127)
    };
    // binary16 keeps 11 significant bits for normals (e >= -14) and a fixed 2^-24 quantum below.
    let shift = if e >= -14 { 13 } else { 13 + (-14 - e) } as u32;
    if shift > 24 + 1 {
        return sign; // far below half the smallest subnormal
    }
    let q = m >> shift;
    let rem = m & ((1u32 << shift) - 1);
    let half = 1u32 << (shift - 1);
    let q = if rem > half || (rem == half && q & 1 == 1) {
        q + 1
    } else {
        q
    };
    // Assemble: for normals q holds the implicit one at bit 10; a carry out of the significand
    // moves into the exponent, which the addition below does by itself.
    let out = if e >= -14 {
        let biased = (e + 15) as u32;
        (biased << 10) + (q - 0x400)
    } else {
        q // subnormal (a carry to 0x400 is the smallest normal, also correct)
    };
    if out >= 0x7c00 {
        sign | 0x7c00
    } else {
        sign | out as u16
    }
}

/// The elements of a [`Tensor`] to write, in C order.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// `F32` elements.
    F32(Vec<f32>),
    /// `F16` elements, as their IEEE-754 binary16 bits ([`f32_to_f16`] rounds to them).
    F16(Vec<u16>),
    /// `U32` elements.
    U32(Vec<u32>),
    /// `U64` elements.
    U64(Vec<u64>),
    /// `U8` elements.
    U8(Vec<u8>),
    /// `I8` elements.
    I8(Vec<i8>),
}

impl TensorData {
    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::F16(v) => v.len(),
            TensorData::U32(v) => v.len(),
            TensorData::U64(v) => v.len(),
            TensorData::U8(v) => v.len(),
            TensorData::I8(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dtype in safetensors spelling (`"F32"`, `"F16"`, `"U32"`, `"U64"`, `"U8"`, `"I8"`).
    pub fn dtype_name(&self) -> &'static str {
        match self {
            TensorData::F32(_) => "F32",
            TensorData::F16(_) => "F16",
            TensorData::U32(_) => "U32",
            TensorData::U64(_) => "U64",
            TensorData::U8(_) => "U8",
            TensorData::I8(_) => "I8",
        }
    }

    fn dtype(&self) -> Dtype {
        match self {
            TensorData::F32(_) => Dtype::F32,
            TensorData::F16(_) => Dtype::F16,
            TensorData::U32(_) => Dtype::U32,
            TensorData::U64(_) => Dtype::U64,
            TensorData::U8(_) => Dtype::U8,
            TensorData::I8(_) => Dtype::I8,
        }
    }

    fn le_bytes(&self) -> Vec<u8> {
        match self {
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::U64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::U8(v) => v.clone(),
            TensorData::I8(v) => v.iter().map(|&x| x as u8).collect(),
        }
    }
}

/// A named tensor to write with [`write_checkpoint`].
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The tensor's name in the safetensors file.
    pub name: String,
    /// Its shape; the product of the dimensions must equal the number of elements.
    pub shape: Vec<usize>,
    /// Its elements in C order.
    pub data: TensorData,
}

impl Tensor {
    /// An `F32` tensor.
    pub fn f32(name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> Self {
        Self {
            name: name.into(),
            shape,
            data: TensorData::F32(data),
        }
    }
    /// An `F16` tensor holding `data` rounded to binary16 ([`f32_to_f16`]).
    pub fn f16(name: impl Into<String>, shape: Vec<usize>, data: &[f32]) -> Self {
        Self {
            name: name.into(),
            shape,
            data: TensorData::F16(data.iter().map(|&x| f32_to_f16(x)).collect()),
        }
    }
    /// A `U32` tensor.
    pub fn u32(name: impl Into<String>, shape: Vec<usize>, data: Vec<u32>) -> Self {
        Self {
            name: name.into(),
            shape,
            data: TensorData::U32(data),
        }
    }
    /// A `U64` tensor.
    pub fn u64(name: impl Into<String>, shape: Vec<usize>, data: Vec<u64>) -> Self {
        Self {
            name: name.into(),
            shape,
            data: TensorData::U64(data),
        }
    }
    /// A `U8` tensor.
    pub fn u8(name: impl Into<String>, shape: Vec<usize>, data: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            shape,
            data: TensorData::U8(data),
        }
    }
    /// A row-scaled `I8` matrix `[rows, cols]` as its two tensors: `name` (`I8`, `q`) and
    /// [`row_scale_name`]`(name)` (`F16`, `[rows]`), from the output of [`quantize_rows`] or
    /// [`exact_rows`]. [`Weights::float`] reads them back as `f32`.
    pub fn i8_rows(
        name: impl Into<String>,
        shape: Vec<usize>,
        q: Vec<i8>,
        scales: Vec<u16>,
    ) -> [Self; 2] {
        let name = name.into();
        let rows = scales.len();
        [
            Self {
                name: row_scale_name(&name),
                shape: vec![rows],
                data: TensorData::F16(scales),
            },
            Self {
                name,
                shape,
                data: TensorData::I8(q),
            },
        ]
    }
}

/// A tensor prepared for `safetensors::serialize`.
struct Prepared {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Prepared {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Serialises tensors to the bytes of a safetensors file (names sorted, metadata
/// `"format": "bltpatch"`), as [`write_checkpoint`] writes them. Useful to embed a model or to
/// test.
///
/// # Errors
/// [`CheckpointError::Invalid`] for an empty or duplicate name, or a shape whose element count
/// differs from the data's.
pub fn serialize_tensors(tensors: &[Tensor]) -> Result<Vec<u8>, CheckpointError> {
    let mut prepared: BTreeMap<&str, Prepared> = BTreeMap::new();
    for t in tensors {
        if t.name.is_empty() {
            return Err(CheckpointError::Invalid(
                "cannot write a tensor with an empty name".into(),
            ));
        }
        let elements = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if elements != Some(t.data.len()) {
            return Err(CheckpointError::Invalid(format!(
                "cannot write tensor {}: shape {:?} does not hold its {} elements",
                t.name,
                t.shape,
                t.data.len()
            )));
        }
        let p = Prepared {
            dtype: t.data.dtype(),
            shape: t.shape.clone(),
            bytes: t.data.le_bytes(),
        };
        if prepared.insert(&t.name, p).is_some() {
            return Err(CheckpointError::Invalid(format!(
                "cannot write two tensors named {}",
                t.name
            )));
        }
    }
    let metadata = HashMap::from([("format".to_string(), "bltpatch".to_string())]);
    safetensors::serialize(prepared.iter().map(|(k, v)| (*k, v)), Some(metadata))
        .map_err(|e| CheckpointError::Invalid(format!("cannot serialise tensors: {e}")))
}

/// Rejects a configuration that would not read back (non-finite numbers become JSON `null`).
fn check_config(config: &Config) -> Result<(), CheckpointError> {
    if let Some(c) = &config.calibration {
        let finite = c.patch_config().is_ok()
            && c.target_patch_size.is_finite()
            && c.mean_patch_len.is_finite();
        if !finite {
            return Err(CheckpointError::Invalid(format!(
                "cannot write a calibration with a non-finite number: {c:?}"
            )));
        }
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Flushes a directory's entries to disk (best effort: not every platform can open a directory).
fn sync_dir(dir: &Path) {
    if let Ok(f) = File::open(dir) {
        let _ = f.sync_all();
    }
}

/// A name for a temporary sibling that no other writer (thread or process) uses.
fn sibling(parent: &Path, name: &str, what: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    parent.join(format!(".{name}.{what}-{}-{n}-{nanos}", std::process::id()))
}

/// Replaces the `config.json` of the existing checkpoint directory `dir` atomically (a
/// temporary sibling file, fsynced, then renamed over it), leaving the weights as they are:
/// how a checkpoint is recalibrated.
///
/// # Errors
/// `dir` is not a checkpoint directory, the configuration holds a non-finite or invalid
/// calibration, or the file cannot be written.
pub fn write_config(dir: &Path, config: &Config) -> Result<(), CheckpointError> {
    check_config(config)?;
    read_member(dir, CONFIG_FILE)?;
    let mut json = config.to_json_pretty();
    json.push('\n');
    let tmp = sibling(dir, CONFIG_FILE, "tmp");
    let path = dir.join(CONFIG_FILE);
    let written = write_file(&tmp, json.as_bytes()).and_then(|()| fs::rename(&tmp, &path));
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(CheckpointError::Write { path, source });
    }
    sync_dir(dir);
    Ok(())
}

/// Writes a checkpoint directory `dir` (`config.json` + `model.safetensors`) atomically.
///
/// Both files are written into a temporary sibling directory (same parent, so the same file
/// system), each file and the directory are fsynced, and the directory is then renamed to `dir`.
/// Readers therefore never see a half-written checkpoint: `dir` holds either the old complete
/// checkpoint or the new one. Parent directories are created as needed.
///
/// An existing checkpoint directory at `dir` is replaced: it is first renamed aside, the new one
/// renamed into place, then every *other* entry of the old directory (files besides
/// `config.json` and `model.safetensors`, such as training state) is moved into the new one and
/// the old directory is removed. (Between the two renames `dir` is briefly absent; if the process
/// dies there, the old checkpoint survives as a hidden `.NAME.old-*` sibling.)
///
/// # Errors
/// [`CheckpointError::Write`] with the path when the location is not writable (or the disk is
/// full); [`CheckpointError::NotADirectory`] when `dir` exists and is not a directory;
/// [`CheckpointError::Invalid`] for tensors that cannot be serialised (see
/// [`serialize_tensors`]), a calibration with non-finite numbers, or a `dir` without a final
/// name component.
pub fn write_checkpoint(
    dir: &Path,
    config: &Config,
    tensors: &[Tensor],
) -> Result<(), CheckpointError> {
    check_config(config)?;
    let weights = serialize_tensors(tensors)?;
    let mut json = config.to_json_pretty();
    json.push('\n');

    let name = match dir.file_name() {
        Some(n) => n.to_string_lossy().into_owned(),
        None => {
            return Err(CheckpointError::Invalid(format!(
                "cannot write a checkpoint at {}: the path has no directory name",
                dir.display()
            )));
        }
    };
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CheckpointError::Write { path, source }
    };
    fs::create_dir_all(&parent).map_err(write_err(&parent))?;
    let existing = match fs::metadata(dir) {
        Ok(m) if m.is_dir() => true,
        Ok(_) => return Err(CheckpointError::NotADirectory(dir.to_path_buf())),
        Err(_) => false,
    };

    let tmp = sibling(&parent, &name, "tmp");
    fs::create_dir(&tmp).map_err(write_err(dir))?;
    let filled = write_file(&tmp.join(CONFIG_FILE), json.as_bytes())
        .and_then(|()| write_file(&tmp.join(WEIGHTS_FILE), &weights));
    if let Err(e) = filled {
        let _ = fs::remove_dir_all(&tmp);
        return Err(CheckpointError::Write {
            path: dir.to_path_buf(),
            source: e,
        });
    }
    sync_dir(&tmp);

    if existing {
        let old = sibling(&parent, &name, "old");
        if let Err(e) = fs::rename(dir, &old) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(CheckpointError::Write {
                path: dir.to_path_buf(),
                source: e,
            });
        }
        if let Err(e) = fs::rename(&tmp, dir) {
            let _ = fs::rename(&old, dir);
            let _ = fs::remove_dir_all(&tmp);
            return Err(CheckpointError::Write {
                path: dir.to_path_buf(),
                source: e,
            });
        }
        // Carry the other entries (training state, notes) over into the new checkpoint.
        let mut all_moved = true;
        if let Ok(entries) = fs::read_dir(&old) {
            for entry in entries.flatten() {
                let file_name = entry.file_name();
                if file_name == CONFIG_FILE || file_name == WEIGHTS_FILE {
                    continue;
                }
                all_moved &= fs::rename(entry.path(), dir.join(&file_name)).is_ok();
            }
        }
        if all_moved {
            let _ = fs::remove_dir_all(&old);
        }
    } else if let Err(e) = fs::rename(&tmp, dir) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(CheckpointError::Write {
            path: dir.to_path_buf(),
            source: e,
        });
    }
    sync_dir(&parent);
    Ok(())
}

#[cfg(test)]
mod tests;
