//! Every call into the `bltpatch` library lives here: loading the entropy model, the patching
//! schemes, their calibration to a target mean patch length, and the batch layout with the
//! position at which each patch becomes known.
//!
//! Library calls made (the whole surface this crate depends on):
//! [`bltpatch::Model::default_model`], [`bltpatch::Model::load`],
//! [`bltpatch::EntropyModel::entropies`] (calibration text), [`bltpatch::Plan::Calibrate`] /
//! [`bltpatch::Plan::scheme_for`] with [`bltpatch::CalibrationTarget::Global`] and
//! [`bltpatch::CalibrationTarget::Budget`], [`bltpatch::PatchConfig`] / [`bltpatch::Rule`],
//! [`bltpatch::Scheme`], [`bltpatch::Patcher::new`], [`bltpatch::Patcher::segment`],
//! [`bltpatch::Patcher::segment_known_at`] ([`bltpatch::KnownPatches`], [`bltpatch::NEVER`]) and
//! [`bltpatch::BatchLayout::from_lengths`] (BLT's `patch_lengths` / `patch_ids`).
//!
//! A scheme is one [`Scheme`] variant and one arm in each `match` below.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use bltpatch::{
    BatchLayout, CalibrationTarget, EntropyModel as _, KnownPatches, NEVER, PatchConfig, Patcher,
    Plan, Rule,
};
use rayon::prelude::*;
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
        bltpatch::Model::load(dir).map(Self).map_err(lib)
    }

    /// `H[0..n)` of every document (each from an empty context).
    fn entropies(&self, docs: &[&[u8]]) -> Vec<Vec<f32>> {
        docs.par_iter()
            .map(|d| {
                let mut h = vec![0f32; d.len()];
                self.0.entropies(d, 0..d.len(), &mut h);
                h
            })
            .collect()
    }
}

fn lib(e: impl Into<bltpatch::Error>) -> LatentError {
    LatentError::Patching(e.into().to_string())
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
    /// Entropy patching with the budget rule (a patch closes once the entropy summed over it
    /// reaches the budget), the budget calibrated to the target mean.
    EntropyBudget,
    /// The boundaries of cl100k BPE tokens, as they are: no parameter.
    Bpe,
}

impl Scheme {
    /// Every scheme, in table order.
    pub const ALL: [Scheme; 5] = [
        Scheme::Static,
        Scheme::Space,
        Scheme::EntropyGlobal,
        Scheme::EntropyBudget,
        Scheme::Bpe,
    ];

    /// The scheme's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Static => "static",
            Scheme::Space => "space",
            Scheme::EntropyGlobal => "entropy-global",
            Scheme::EntropyBudget => "entropy-budget",
            Scheme::Bpe => "bpe",
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
                LatentError::InvalidOption(format!(
                    "unknown scheme {s:?} (known: {})",
                    known.join(", ")
                ))
            })
    }
}

/// The patch layout of a batch of documents: BLT's `patch_lengths` `[B, P]` and `patch_ids`
/// `[B, L]` (the library's [`bltpatch::BatchLayout`]), and when each patch becomes known.
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
    /// `[batch, max_patches]`: the number of bytes of its document that must be seen before
    /// each patch is complete and its end certain ([`bltpatch::KnownPatches::known_at`]),
    /// non-decreasing along a row; [`Layout::NEVER`] for a patch the document does not settle
    /// and on padding.
    pub known_at: Vec<u32>,
}

impl Layout {
    /// `known_at` of a patch that no byte of its document may read.
    pub const NEVER: u32 = u32::MAX;

    /// The layout of documents given their patch lengths and, per patch, the number of bytes
    /// after which it is known ([`bltpatch::NEVER`] for never).
    ///
    /// # Panics
    /// Rows of different lengths, or a document of `u32::MAX` bytes or more.
    pub fn new(lengths: &[Vec<usize>], known_at: &[Vec<usize>]) -> Self {
        assert_eq!(
            lengths.len(),
            known_at.len(),
            "one known_at row per document"
        );
        let l = BatchLayout::from_lengths(lengths);
        let mut known = vec![Self::NEVER; l.batch * l.max_patches];
        for (b, row) in known_at.iter().enumerate() {
            assert_eq!(row.len(), lengths[b].len(), "one known_at per patch");
            for (o, &k) in known[b * l.max_patches..].iter_mut().zip(row) {
                *o = if k == NEVER {
                    Self::NEVER
                } else {
                    u32::try_from(k).expect("a document shorter than 4 GiB")
                };
            }
        }
        Self {
            batch: l.batch,
            max_patches: l.max_patches,
            max_len: l.max_len,
            patch_lengths: l.patch_lengths,
            patch_ids: l.patch_ids,
            known_at: known,
        }
    }

    /// The layout of documents segmented with their known-at positions.
    pub fn from_known(docs: &[KnownPatches]) -> Self {
        let lengths: Vec<Vec<usize>> = docs.iter().map(|k| k.lengths.clone()).collect();
        let known: Vec<Vec<usize>> = docs.iter().map(|k| k.known_at.clone()).collect();
        Self::new(&lengths, &known)
    }

    /// Bytes of document `b` (the sum of its patch lengths).
    pub fn doc_len(&self, b: usize) -> usize {
        self.row(&self.patch_lengths, b)
            .iter()
            .map(|&l| l as usize)
            .sum()
    }

    /// Patches of document `b`.
    pub fn doc_patches(&self, b: usize) -> usize {
        self.row(&self.patch_lengths, b)
            .iter()
            .filter(|&&l| l > 0)
            .count()
    }

    /// The patches of document `b` known once `j` bytes are seen: the first this many.
    pub fn known_patches(&self, b: usize, j: usize) -> usize {
        self.row(&self.known_at, b)
            .partition_point(|&k| k != Self::NEVER && k as usize <= j)
    }

    /// Over the patches of document `b` that it settles: the summed delay `known_at - end`
    /// (bytes) and their number.
    pub fn known_delay(&self, b: usize) -> (u64, usize) {
        let (mut end, mut sum, mut count) = (0u64, 0u64, 0);
        for (&len, &k) in self
            .row(&self.patch_lengths, b)
            .iter()
            .zip(self.row(&self.known_at, b))
        {
            end += len as u64;
            if len > 0 && k != Self::NEVER {
                sum += k as u64 - end;
                count += 1;
            }
        }
        (sum, count)
    }

    fn row<'a>(&self, v: &'a [u32], b: usize) -> &'a [u32] {
        &v[b * self.max_patches..(b + 1) * self.max_patches]
    }
}

/// A scheme with its parameter set, ready to segment.
pub struct Patching {
    scheme: Scheme,
    patcher: Patcher<bltpatch::Model>,
    parameter: String,
    calibration_mean: f64,
}

impl Patching {
    /// Static patches of `size` bytes on average (fractional sizes spread the boundaries
    /// evenly).
    ///
    /// # Errors
    /// A size below 1.
    pub fn static_size(model: &EntropyModel, size: f64) -> Result<Self, LatentError> {
        Self::new(
            Scheme::Static,
            model,
            bltpatch::Scheme::Static { size },
            format!("size {size:.4}"),
        )
    }

    /// Space patching with an optional maximum patch length.
    ///
    /// # Errors
    /// `Some(0)`.
    pub fn space(model: &EntropyModel, max_patch_len: Option<usize>) -> Result<Self, LatentError> {
        let parameter =
            max_patch_len.map_or("no max_patch_len".into(), |m| format!("max_patch_len {m}"));
        Self::new(
            Scheme::Space,
            model,
            bltpatch::Scheme::Space { max_patch_len },
            parameter,
        )
    }

    /// Entropy patching with the global rule at `threshold` nats.
    ///
    /// # Errors
    /// A threshold that is negative or not finite.
    pub fn entropy_global(model: &EntropyModel, threshold: f32) -> Result<Self, LatentError> {
        let config = PatchConfig::new(Rule::Global { threshold }).map_err(lib)?;
        Self::entropy(Scheme::EntropyGlobal, model, config)
    }

    /// Entropy patching with the budget rule at `budget` nats per patch.
    ///
    /// # Errors
    /// A budget that is negative or not finite.
    pub fn entropy_budget(model: &EntropyModel, budget: f64) -> Result<Self, LatentError> {
        let config = PatchConfig::new(Rule::Budget { budget }).map_err(lib)?;
        Self::entropy(Scheme::EntropyBudget, model, config)
    }

    /// cl100k BPE token boundaries.
    pub fn bpe(model: &EntropyModel) -> Self {
        Self::new(
            Scheme::Bpe,
            model,
            bltpatch::Scheme::Bpe,
            "cl100k_base".into(),
        )
        .expect("BPE has no parameter")
    }

    fn entropy(
        scheme: Scheme,
        model: &EntropyModel,
        config: PatchConfig,
    ) -> Result<Self, LatentError> {
        let parameter = match config.rule() {
            Rule::Global { threshold } => format!("threshold {threshold:.4} nats"),
            Rule::Budget { budget } => format!("budget {budget:.4} nats"),
            rule => format!("{rule:?}"),
        };
        Self::new(scheme, model, bltpatch::Scheme::Entropy(config), parameter)
    }

    fn new(
        scheme: Scheme,
        model: &EntropyModel,
        library: bltpatch::Scheme,
        parameter: String,
    ) -> Result<Self, LatentError> {
        Ok(Self {
            scheme,
            patcher: Patcher::new(model.0.clone(), library).map_err(lib)?,
            parameter,
            calibration_mean: f64::NAN,
        })
    }

    /// Sets `scheme`'s parameter so that its mean patch length on `docs` (each segmented as a
    /// document of its own) is as near `target` as the scheme allows: the static size is the
    /// target itself, the space scheme's maximum patch length is the best of none and `1..=64`,
    /// the entropy threshold or budget comes from the library's calibration on the model's
    /// entropies, and BPE has no parameter.
    ///
    /// # Errors
    /// A target below 1, or no bytes in `docs`.
    pub fn calibrate(
        scheme: Scheme,
        model: &EntropyModel,
        docs: &[&[u8]],
        target: f64,
    ) -> Result<Self, LatentError> {
        let bytes: usize = docs.iter().map(|d| d.len()).sum();
        if bytes == 0 || !(target.is_finite() && target >= 1.0) {
            return Err(LatentError::InvalidOption(format!(
                "cannot calibrate to a mean patch length of {target} on {bytes} bytes"
            )));
        }
        let entropy = |kind: CalibrationTarget| -> Result<PatchConfig, LatentError> {
            let h = model.entropies(docs);
            let refs: Vec<&[f32]> = h.iter().map(Vec::as_slice).collect();
            let plan = Plan::Calibrate {
                target: kind,
                size: target,
                max_patch_len: None,
            };
            match plan.scheme_for(&refs).map_err(lib)? {
                (bltpatch::Scheme::Entropy(cfg), _) => Ok(cfg),
                (other, _) => unreachable!("an entropy plan gave {other:?}"),
            }
        };
        let mut p = match scheme {
            Scheme::Static => Self::static_size(model, target)?,
            Scheme::Space => {
                let mean = |m: Option<usize>| -> Result<f64, LatentError> {
                    Ok(Self::space(model, m)?.mean_patch_len(docs))
                };
                let natural = mean(None)?;
                let mut best = (None, (natural - target).abs());
                for m in (1..=64).rev() {
                    let err = (mean(Some(m))? - target).abs();
                    if err < best.1 {
                        best = (Some(m), err);
                    }
                }
                let mut p = Self::space(model, best.0)?;
                p.parameter = format!("{} (mean {natural:.2} without)", p.parameter);
                p
            }
            Scheme::EntropyGlobal => {
                Self::entropy(scheme, model, entropy(CalibrationTarget::Global)?)?
            }
            Scheme::EntropyBudget => {
                Self::entropy(scheme, model, entropy(CalibrationTarget::Budget)?)?
            }
            Scheme::Bpe => Self::bpe(model),
        };
        p.calibration_mean = p.mean_patch_len(docs);
        Ok(p)
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The mean patch length reached on the calibration text (NaN for a scheme built with a
    /// fixed parameter).
    pub fn calibration_mean(&self) -> f64 {
        self.calibration_mean
    }

    /// The parameter, in words (for reports).
    pub fn describe(&self) -> String {
        self.parameter.clone()
    }

    /// Bytes per patch over `docs`, each segmented as a document of its own.
    pub fn mean_patch_len(&self, docs: &[&[u8]]) -> f64 {
        let bytes: usize = docs.iter().map(|d| d.len()).sum();
        let patches: usize = docs.par_iter().map(|d| self.lengths(d).len()).sum();
        bytes as f64 / patches.max(1) as f64
    }

    /// Patch lengths of one document.
    pub fn lengths(&self, doc: &[u8]) -> Vec<usize> {
        self.patcher.segment(doc)
    }

    /// Patch lengths of one document and when each patch becomes known to a reader of its
    /// bytes ([`bltpatch::Patcher::segment_known_at`]): computed from `doc` alone, so the
    /// patches known after `t` bytes of a longer text are those of its first `t` bytes.
    pub fn known(&self, doc: &[u8]) -> KnownPatches {
        self.patcher.segment_known_at(doc)
    }

    /// The layout of a batch of documents (each segmented from an empty context, in parallel).
    pub fn layout(&self, docs: &[&[u8]]) -> Layout {
        let known: Vec<KnownPatches> = docs.par_iter().map(|d| self.known(d)).collect();
        Layout::from_known(&known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_says_which_patches_each_byte_may_read() {
        // Document 0: patches of 2, 3, 1 bytes known at 3 (one byte late), 5, never;
        // document 1: one patch of 4 bytes, never known.
        let layout = Layout::new(&[vec![2, 3, 1], vec![4]], &[vec![3, 5, NEVER], vec![NEVER]]);
        assert_eq!(
            layout.known_at,
            [
                3,
                5,
                Layout::NEVER,
                Layout::NEVER,
                Layout::NEVER,
                Layout::NEVER
            ]
        );
        let reads: Vec<usize> = (0..6).map(|j| layout.known_patches(0, j)).collect();
        assert_eq!(reads, [0, 0, 0, 1, 1, 2]);
        assert_eq!((0..4).map(|j| layout.known_patches(1, j)).max(), Some(0));
        // Delays: patch 0 ends at 2, known at 3; patch 1 ends at 5, known at 5.
        assert_eq!(layout.known_delay(0), (1, 2));
        assert_eq!(layout.known_delay(1), (0, 0));
        assert_eq!((layout.doc_len(0), layout.doc_patches(0)), (6, 3));
    }
}
