//! Segmentation of one byte slice.

use crate::model::EntropyModel;
use crate::rule::{PatchConfig, lengths_from_entropies};
use crate::{Error, baseline};

/// Patch lengths of `doc` under entropy patching (batch path, one thread).
///
/// The lengths are all >= 1 and sum to `doc.len()`; empty input has no patches.
/// Cost: one model evaluation of every byte plus `O(n)` for the rule; memory `4n` bytes for the
/// entropies (use [`crate::segment_chunked_into`] for inputs that should not be held at once).
pub fn segment(model: &dyn EntropyModel, doc: &[u8], cfg: &PatchConfig) -> Vec<usize> {
    segment_with_entropies(model, doc, cfg).0
}

/// Like [`segment`], also returning the entropies `H[0..n)` that decided the boundaries.
pub fn segment_with_entropies(
    model: &dyn EntropyModel,
    doc: &[u8],
    cfg: &PatchConfig,
) -> (Vec<usize>, Vec<f32>) {
    let mut h = vec![0f32; doc.len()];
    model.entropies(doc, 0..doc.len(), &mut h);
    (lengths_from_entropies(&h, cfg), h)
}

/// The start offset of every patch, from patch lengths (an exclusive prefix sum).
pub fn patch_starts(lengths: &[usize]) -> Vec<usize> {
    let mut pos = 0;
    lengths
        .iter()
        .map(|&l| {
            let s = pos;
            pos += l;
            s
        })
        .collect()
}

/// Any of the patching schemes, with one entry point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Patcher {
    /// Entropy patching with a model.
    Entropy(PatchConfig),
    /// Fixed-size patches of this many bytes.
    Static(usize),
    /// Space patching with an optional maximum patch length.
    Space {
        /// Forced start after this many bytes.
        max_patch_len: Option<usize>,
    },
}

impl Patcher {
    /// Patch lengths of `doc`; `model` is used by `Entropy` only.
    ///
    /// # Errors
    /// Invalid baseline parameters (a static size or maximum length of 0).
    pub fn segment(&self, model: &dyn EntropyModel, doc: &[u8]) -> Result<Vec<usize>, Error> {
        match *self {
            Patcher::Entropy(cfg) => Ok(segment(model, doc, &cfg)),
            Patcher::Static(k) => baseline::static_lengths(doc.len(), k),
            Patcher::Space { max_patch_len } => baseline::space_lengths(doc, max_patch_len),
        }
    }
}
