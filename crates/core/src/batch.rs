//! Segmentation of a batch of documents into BLT's tensor layout.

use crate::model::EntropyModel;
use crate::parallel::par_map;
use crate::rule::PatchConfig;
use crate::segment::segment;

/// A batch of segmented documents in the layout of the Byte Latent Transformer, as row-major
/// `u32` arrays ready to become tensors (a document in a batch is shorter than 4 GiB).
///
/// - `patch_lengths`: `[batch, max_patches]`, each row the document's patch lengths, right-padded
///   with 0;
/// - `patch_ids`: `[batch, max_len]`, the index of the patch that holds each byte. Positions past
///   a document's end follow BLT's formula (`#{p : start[p] <= j} - 1` over the padded row), which
///   gives them `max_patches - 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchLayout {
    /// Number of documents.
    pub batch: usize,
    /// Most patches in any document (row width of `patch_lengths`).
    pub max_patches: usize,
    /// Longest document in bytes (row width of `patch_ids`).
    pub max_len: usize,
    /// `[batch, max_patches]`, row-major, right-padded with 0.
    pub patch_lengths: Vec<u32>,
    /// `[batch, max_len]`, row-major.
    pub patch_ids: Vec<u32>,
}

impl BatchLayout {
    /// Builds the layout from each document's patch lengths.
    ///
    /// # Panics
    /// If a document holds `u32::MAX` bytes or more.
    pub fn from_lengths(docs: &[Vec<usize>]) -> Self {
        let batch = docs.len();
        let max_patches = docs.iter().map(Vec::len).max().unwrap_or(0);
        let max_len = docs
            .iter()
            .map(|d| d.iter().sum::<usize>())
            .max()
            .unwrap_or(0);
        let mut patch_lengths = vec![0; batch * max_patches];
        let mut patch_ids = vec![0; batch * max_len];
        assert!(
            max_len < u32::MAX as usize,
            "a document of {max_len} bytes is too long for a u32 batch layout"
        );
        for (b, lengths) in docs.iter().enumerate() {
            let row = &mut patch_lengths[b * max_patches..b * max_patches + lengths.len()];
            for (o, &l) in row.iter_mut().zip(lengths) {
                *o = l as u32;
            }
            let row = &mut patch_ids[b * max_len..(b + 1) * max_len];
            let mut pos = 0;
            for (p, &l) in lengths.iter().enumerate() {
                row[pos..pos + l].fill(p as u32);
                pos += l;
            }
            // Padding: every padded (zero-length) patch starts at the document's end.
            row[pos..].fill(max_patches.saturating_sub(1) as u32);
        }
        Self {
            batch,
            max_patches,
            max_len,
            patch_lengths,
            patch_ids,
        }
    }

    /// Row `b` of `patch_lengths` without its padding.
    pub fn lengths(&self, b: usize) -> &[u32] {
        let row = &self.patch_lengths[b * self.max_patches..(b + 1) * self.max_patches];
        let used = row.iter().rposition(|&l| l != 0).map_or(0, |p| p + 1);
        &row[..used]
    }
}

/// Segments every document (in parallel on the current rayon pool; each document starts with an
/// empty context) and lays the result out as a [`BatchLayout`].
///
/// ```
/// use bltpatch_core::{segment_batch, PatchConfig, Rule, testing::HashModel};
///
/// let model = HashModel::new(4);
/// let cfg = PatchConfig::new(Rule::Global { threshold: 2.0 }).unwrap();
/// let docs: [&[u8]; 2] = [b"first document", b"second"];
/// let layout = segment_batch(&model, &docs, &cfg);
/// assert_eq!(layout.batch, 2);
/// assert_eq!(layout.max_len, 14);
/// assert_eq!(layout.lengths(1).iter().sum::<u32>(), 6);
/// ```
pub fn segment_batch(model: &dyn EntropyModel, docs: &[&[u8]], cfg: &PatchConfig) -> BatchLayout {
    let lengths = par_map(docs, |d| segment(model, d, cfg));
    BatchLayout::from_lengths(&lengths)
}
