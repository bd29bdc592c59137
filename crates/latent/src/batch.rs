//! A batch assembled on the host from documents and their patch [`Layout`].
//!
//! The layout's `patch_ids` decide everything patch-related:
//!
//! - mean-pooling weights `[B, P, L]`: `1 / len(p)` where `patch_ids[b, j] = p` and `j` is a
//!   byte of document `b` (`len(p)` from `patch_lengths`), else 0;
//! - the cross-attention bias `[B, 1, P, L]`: 0 at the same places, masked elsewhere;
//! - the decoder index `[B·L]`: byte `j` reads `k` = the number of patches known once `j` bytes
//!   are seen (`known_at <= j`, [`Layout::known_patches`]); `k = 0` is the learned start vector
//!   and `k >= 1` the global output of patch `k - 1`. A patch is known only once it is complete
//!   and no later byte can move its end, so what byte `j` reads depends on `x[0..j)` only. For
//!   the entropy rules and static patches `known_at` is the patch's end, so byte `j` of patch `p`
//!   reads patch `p - 1` (BLT's rule); for space patching and BPE, whose boundaries depend on
//!   later bytes, the first bytes of a patch may read an earlier one.

use crate::model::LatentConfig;
use crate::nn::MASKED;
use crate::patching::Layout;

/// The model's inputs and targets for `B` documents, right-padded to `L` bytes, as row-major
/// host arrays ([`crate::model::LatentInput::new`] moves them to a device).
#[derive(Clone, Debug)]
pub struct HostBatch {
    /// Documents `B`.
    pub rows: usize,
    /// Positions per row `L` (the longest document).
    pub len: usize,
    /// Patches per row `P` (the most in any document).
    pub patches: usize,
    /// Bytes `[B, L]` (0 on padding).
    pub tokens: Vec<i64>,
    /// Hash-table rows `[B, L]` per hash order.
    pub hash: Vec<Vec<i64>>,
    /// Mean-pooling weights `[B, P, L]`.
    pub pool_weights: Vec<f32>,
    /// Cross-attention bias `[B, 1, P, L]`, when the model pools with cross-attention.
    pub pool_bias: Option<Vec<f32>>,
    /// Decoder index `[B·L]` into the flattened `[B·(P+1)]` global outputs.
    pub decoder_index: Vec<i64>,
    /// Target bytes `[B, L]`.
    pub targets: Vec<i64>,
    /// Loss weights `[B, L]`: 1 on bytes, 0 on padding.
    pub weights: Vec<f32>,
    /// Bytes in the batch (positions that count in the loss).
    pub bytes: usize,
}

impl HostBatch {
    /// Assembles `docs` (at least one byte in all) with their `layout` for a model of `cfg`.
    ///
    /// # Panics
    /// A layout that does not describe `docs`, or one in which a byte would read its own patch.
    pub fn new(cfg: &LatentConfig, docs: &[&[u8]], layout: &Layout) -> Self {
        let (rows, len, patches) = (docs.len(), layout.max_len, layout.max_patches);
        assert_eq!(layout.batch, rows, "layout of another batch");
        let cross = cfg.pooling.kind == crate::pooling::PoolingKind::CrossAttention;
        let mut b = Self {
            rows,
            len,
            patches,
            tokens: vec![0; rows * len],
            hash: vec![Vec::with_capacity(rows * len); cfg.encoder.hash_orders.len()],
            pool_weights: vec![0.0; rows * patches * len],
            pool_bias: cross.then(|| vec![MASKED; rows * patches * len]),
            decoder_index: vec![0; rows * len],
            targets: vec![0; rows * len],
            weights: vec![0.0; rows * len],
            bytes: 0,
        };
        for (r, doc) in docs.iter().enumerate() {
            assert_eq!(layout.doc_len(r), doc.len(), "layout of other documents");
            let ids = &layout.patch_ids[r * len..(r + 1) * len];
            let lengths = &layout.patch_lengths[r * patches..(r + 1) * patches];
            for (j, &byte) in doc.iter().enumerate() {
                let at = r * len + j;
                b.tokens[at] = byte as i64;
                b.targets[at] = byte as i64;
                b.weights[at] = 1.0;
                let p = ids[j] as usize;
                let member = (r * patches + p) * len + j;
                b.pool_weights[member] = 1.0 / lengths[p] as f32;
                if let Some(bias) = &mut b.pool_bias {
                    bias[member] = 0.0;
                }
                let k = layout.known_patches(r, j);
                assert!(k <= p, "byte {j} would read its own patch {p}");
                b.decoder_index[at] = (r * (patches + 1) + k) as i64;
            }
            // Padding positions read the start vector of their row; their loss weight is 0.
            for j in doc.len()..len {
                b.decoder_index[r * len + j] = (r * (patches + 1)) as i64;
            }
            for (order, ids) in b.hash.iter_mut().zip(cfg.encoder.hash_ids(doc, len)) {
                order.extend(ids);
            }
            b.bytes += doc.len();
        }
        b
    }
}
