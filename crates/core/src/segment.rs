//! Segmentation of one byte slice.

use crate::model::EntropyModel;
use crate::rule::{PatchConfig, lengths_from_entropies};

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
