//! Every call into the `bltpatch` library lives here: loading the entropy model, the patching
//! schemes, their calibration to a target mean patch length, the batch layout and the
//! streaming boundaries used while generating.
//!
//! Library calls made (the whole surface this crate depends on):
//! [`bltpatch::Model::default_model`], [`bltpatch::Model::load`],
//! [`bltpatch::EntropyModel::entropies`] (calibration text), [`bltpatch::calibrate()`] with
//! [`bltpatch::CalibrationTarget::Global`], [`bltpatch::PatchConfig`] / [`bltpatch::Rule`],
//! [`bltpatch::segment()`], [`bltpatch::segment_batch`] (BLT's `patch_lengths` / `patch_ids`),
//! [`bltpatch::BatchLayout::from_lengths`] (the baselines' layout),
//! [`bltpatch::static_lengths`], [`bltpatch::space_lengths`] and
//! [`bltpatch::StreamingDecoder`].
//!
//! A scheme is one [`Scheme`] variant and one arm in each `match` below.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use bltpatch::{BatchLayout, CalibrationTarget, EntropyModel as _, PatchConfig, StreamingDecoder};
use serde::{Deserialize, Serialize};

use crate::error::LatentError;

/// The entropy model that places the boundaries of the entropy schemes.
pub struct EntropyModel(bltpatch::Model);

impl EntropyModel {
    /// The model embedded in the `bltpatch` library (trained on the first 95 % of each
    /// reference corpus).
    pub fn default_model() -> Self {
        Self(bltpatch::Model::default_model())
    }

    /// A checkpoint directory.
    ///
    /// # Errors
    /// [`LatentError::Patching`] with the library's message.
    pub fn load(dir: &Path) -> Result<Self, LatentError> {
        bltpatch::Model::load(dir)
            .map(Self)
            .map_err(|e| LatentError::Patching(e.to_string()))
    }
}

/// A patching scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// Fixed-size patches; a fractional size spreads the boundaries evenly (MegaByte).
    Static,
    /// A patch starts at a byte that follows a space-like byte and is not space-like itself
    /// (SpaceByte / BLT "space"), with a maximum patch length calibrated to the target mean.
    Space,
    /// Entropy patching with the global rule `H[i] > threshold` and the library's default
    /// model, the threshold calibrated to the target mean.
    EntropyGlobal,
}

impl Scheme {
    /// Every scheme, in table order.
    pub const ALL: [Scheme; 3] = [Scheme::Static, Scheme::Space, Scheme::EntropyGlobal];

    /// The scheme's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Static => "static",
            Scheme::Space => "space",
            Scheme::EntropyGlobal => "entropy-global",
        }
    }

    /// How many bytes after byte `j` must be known to decide whether `j` starts a patch.
    ///
    /// 0 for the static and entropy schemes (the entropy `H[j]` depends on `x[0 .. j)` only).
    /// 1 for `space`: whether byte `j` starts a patch depends on `x[j]` itself (it must not be
    /// space-like), so a decoder that used the boundary at `j` while predicting `x[j]` would
    /// learn from it whether `x[j]` is space-like. The batch layout therefore gives byte `j`
    /// the global output of the patch before the one holding byte `j - lookahead`
    /// ([`crate::batch`]); the causality test checks both cases.
    pub fn lookahead(self) -> usize {
        match self {
            Scheme::Static | Scheme::EntropyGlobal => 0,
            Scheme::Space => 1,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scheme {
    type Err = LatentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Scheme::ALL.iter().map(|k| k.name()).collect();
                let later = "entropy-budget and bpe come once the library has them";
                LatentError::InvalidOption(format!(
                    "unknown scheme {s:?} (known: {}; {later})",
                    known.join(", ")
                ))
            })
    }
}

/// The patch layout of a batch of documents, in BLT's form (the library's
/// [`bltpatch::BatchLayout`] with `u32` entries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Documents.
    pub batch: usize,
    /// Most patches in any document.
    pub max_patches: usize,
    /// Longest document in bytes.
    pub max_len: usize,
    /// `[batch, max_patches]`, right-padded with 0.
    pub patch_lengths: Vec<u32>,
    /// `[batch, max_len]`: the patch of every byte (positions past a document's end hold
    /// `max_patches - 1`, as BLT's formula gives).
    pub patch_ids: Vec<u32>,
}

impl Layout {
    fn from_library(l: BatchLayout) -> Self {
        Self {
            batch: l.batch,
            max_patches: l.max_patches,
            max_len: l.max_len,
            patch_lengths: l.patch_lengths,
            patch_ids: l.patch_ids,
        }
    }

    /// Bytes of document `b` (the sum of its patch lengths).
    pub fn doc_len(&self, b: usize) -> usize {
        let row = &self.patch_lengths[b * self.max_patches..(b + 1) * self.max_patches];
        row.iter().map(|&l| l as usize).sum()
    }

    /// Patches of document `b`.
    pub fn doc_patches(&self, b: usize) -> usize {
        let row = &self.patch_lengths[b * self.max_patches..(b + 1) * self.max_patches];
        row.iter().filter(|&&l| l > 0).count()
    }
}

/// The calibrated parameter of a scheme.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Params {
    Static {
        size: f64,
    },
    Space {
        max_patch_len: Option<usize>,
        /// Mean patch length without a maximum on the calibration text (NaN if not measured).
        natural_mean: f64,
    },
    Entropy {
        config: PatchConfig,
        threshold: f32,
    },
}

/// A scheme calibrated to a target mean patch length, ready to segment.
pub struct Patching<'m> {
    scheme: Scheme,
    model: &'m EntropyModel,
    params: Params,
    calibration_mean: f64,
}

impl<'m> Patching<'m> {
    /// Static patches of `size` bytes on average (fractional sizes spread the boundaries
    /// evenly).
    ///
    /// # Errors
    /// A size below 1.
    pub fn static_size(model: &'m EntropyModel, size: f64) -> Result<Self, LatentError> {
        if !(size.is_finite() && size >= 1.0) {
            return Err(LatentError::InvalidOption(format!(
                "invalid static size {size}"
            )));
        }
        Ok(Self::fixed(Scheme::Static, model, Params::Static { size }))
    }

    /// Space patching with an optional maximum patch length.
    ///
    /// # Errors
    /// `Some(0)`.
    pub fn space(
        model: &'m EntropyModel,
        max_patch_len: Option<usize>,
    ) -> Result<Self, LatentError> {
        if max_patch_len == Some(0) {
            return Err(LatentError::InvalidOption(
                "max_patch_len must be at least 1".into(),
            ));
        }
        let params = Params::Space {
            max_patch_len,
            natural_mean: f64::NAN,
        };
        Ok(Self::fixed(Scheme::Space, model, params))
    }

    /// Entropy patching with the global rule at `threshold` nats.
    ///
    /// # Errors
    /// A threshold that is negative or not finite.
    pub fn entropy_global(model: &'m EntropyModel, threshold: f32) -> Result<Self, LatentError> {
        let config = PatchConfig::new(bltpatch::Rule::Global { threshold })
            .map_err(|e| LatentError::Patching(e.to_string()))?;
        Ok(Self::fixed(
            Scheme::EntropyGlobal,
            model,
            Params::Entropy { config, threshold },
        ))
    }

    fn fixed(scheme: Scheme, model: &'m EntropyModel, params: Params) -> Self {
        Self {
            scheme,
            model,
            params,
            calibration_mean: f64::NAN,
        }
    }

    /// Calibrates `scheme` so that its mean patch length on `docs` (each segmented as a
    /// document of its own) is as near `target` as the scheme allows: the static size is the
    /// target itself, the space scheme's maximum patch length is the best of none and `1..=64`,
    /// and the entropy threshold comes from [`bltpatch::calibrate()`] on the model's entropies.
    ///
    /// # Errors
    /// A target below 1, or no bytes in `docs`.
    pub fn calibrate(
        scheme: Scheme,
        model: &'m EntropyModel,
        docs: &[&[u8]],
        target: f64,
    ) -> Result<Self, LatentError> {
        let lib = |e: bltpatch::Error| LatentError::Patching(e.to_string());
        let bytes: usize = docs.iter().map(|d| d.len()).sum();
        if bytes == 0 || !(target.is_finite() && target >= 1.0) {
            return Err(LatentError::InvalidOption(format!(
                "cannot calibrate to a mean patch length of {target} on {bytes} bytes"
            )));
        }
        let params = match scheme {
            Scheme::Static => Params::Static { size: target },
            Scheme::Space => {
                let mean = |m: Option<usize>| -> Result<f64, LatentError> {
                    let mut patches = 0;
                    for d in docs {
                        patches += bltpatch::space_lengths(d, m)
                            .map_err(|e| lib(e.into()))?
                            .len();
                    }
                    Ok(bytes as f64 / patches as f64)
                };
                let natural_mean = mean(None)?;
                let mut best = (None, (natural_mean - target).abs());
                for m in (1..=64).rev() {
                    let err = (mean(Some(m))? - target).abs();
                    if err < best.1 {
                        best = (Some(m), err);
                    }
                }
                Params::Space {
                    max_patch_len: best.0,
                    natural_mean,
                }
            }
            Scheme::EntropyGlobal => {
                let entropies: Vec<Vec<f32>> = docs
                    .iter()
                    .map(|d| {
                        let mut h = vec![0f32; d.len()];
                        model.0.entropies(d, 0..d.len(), &mut h);
                        h
                    })
                    .collect();
                let refs: Vec<&[f32]> = entropies.iter().map(Vec::as_slice).collect();
                let c = bltpatch::calibrate(&refs, CalibrationTarget::Global, target, None)
                    .map_err(|e| lib(e.into()))?;
                Params::Entropy {
                    config: c.config,
                    threshold: c.value as f32,
                }
            }
        };
        let mut p = Self::fixed(scheme, model, params);
        let layout = p.layout(docs);
        let patches: usize = (0..layout.batch).map(|b| layout.doc_patches(b)).sum();
        p.calibration_mean = bytes as f64 / patches as f64;
        Ok(p)
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// See [`Scheme::lookahead`].
    pub fn lookahead(&self) -> usize {
        self.scheme.lookahead()
    }

    /// The mean patch length reached on the calibration text (NaN for a scheme built with a
    /// fixed parameter).
    pub fn calibration_mean(&self) -> f64 {
        self.calibration_mean
    }

    /// The calibrated parameter, in words (for reports).
    pub fn describe(&self) -> String {
        match self.params {
            Params::Static { size } => format!("size {size}"),
            Params::Space {
                max_patch_len,
                natural_mean,
            } => {
                let m = max_patch_len
                    .map_or("no max_patch_len".into(), |m| format!("max_patch_len {m}"));
                if natural_mean.is_nan() {
                    m
                } else {
                    format!("{m} (mean {natural_mean:.2} without)")
                }
            }
            Params::Entropy { threshold, .. } => format!("threshold {threshold:.4} nats"),
        }
    }

    /// Patch lengths of one document.
    pub fn lengths(&self, doc: &[u8]) -> Vec<usize> {
        match self.params {
            Params::Static { size } => {
                bltpatch::static_lengths(doc.len(), size).expect("size >= 1")
            }
            Params::Space { max_patch_len, .. } => {
                bltpatch::space_lengths(doc, max_patch_len).expect("max_patch_len >= 1")
            }
            Params::Entropy { config, .. } => bltpatch::segment(&self.model.0, doc, &config),
        }
    }

    /// The layout of a batch of documents (each segmented from an empty context).
    pub fn layout(&self, docs: &[&[u8]]) -> Layout {
        let lengths: Vec<Vec<usize>> = docs.iter().map(|d| self.lengths(d)).collect();
        Layout::from_library(BatchLayout::from_lengths(&lengths))
    }

    /// A stream of boundary decisions for generating a document byte by byte.
    pub fn stream(&self) -> BoundaryStream<'_> {
        let inner = match self.params {
            Params::Entropy { config, .. } => {
                Stream::Entropy(StreamingDecoder::new(&self.model.0, config))
            }
            _ => Stream::Recompute(Vec::new()),
        };
        BoundaryStream {
            patching: self,
            inner,
        }
    }
}

enum Stream<'m> {
    Entropy(StreamingDecoder<'m>),
    /// The bytes so far; the baselines are cheap enough to re-segment.
    Recompute(Vec<u8>),
}

/// Boundary decisions while a document is generated byte by byte.
pub struct BoundaryStream<'m> {
    patching: &'m Patching<'m>,
    inner: Stream<'m>,
}

impl BoundaryStream<'_> {
    /// Whether the next byte will start a patch, whatever its value: known before the byte
    /// exists for schemes with [`Scheme::lookahead`] 0 (for the entropy scheme the library's
    /// streaming decoder says so), `None` for the others.
    pub fn next_starts_patch(&mut self) -> Option<bool> {
        if self.patching.lookahead() > 0 {
            return None;
        }
        Some(match &mut self.inner {
            Stream::Entropy(d) => d.next_starts_patch(),
            Stream::Recompute(bytes) => {
                // The static scheme's boundaries depend on positions only: probe with any byte.
                let mut probe = bytes.clone();
                probe.push(0);
                let lengths = self.patching.lengths(&probe);
                lengths.last() == Some(&1)
            }
        })
    }

    /// Appends a byte; returns whether it started a patch.
    pub fn push(&mut self, byte: u8) -> bool {
        match &mut self.inner {
            Stream::Entropy(d) => d.push(byte).starts_patch,
            Stream::Recompute(bytes) => {
                bytes.push(byte);
                self.patching.lengths(bytes).last() == Some(&1)
            }
        }
    }
}
