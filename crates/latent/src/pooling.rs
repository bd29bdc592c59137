//! Pooling: the byte states of each patch become one patch vector for the global model.
//!
//! Which bytes belong to which patch comes from the batch layout's `patch_ids` alone
//! ([`crate::batch::HostBatch`] turns them into the tensors here):
//!
//! - [`PoolingKind::Mean`]: the mean of the patch's byte states (`weights · e`, with
//!   `weights[b, p, j] = 1/len(p)` where `patch_ids[b, j] = p`), then a linear map to the
//!   global width.
//! - [`PoolingKind::CrossAttention`] (BLT's encoder cross-attention): the patch's query is
//!   initialised from the mean-pooled states (BLT uses max pooling), attends with several heads
//!   to the byte states of its own patch only (`bias[b, 0, p, j] = 0` where
//!   `patch_ids[b, j] = p`, masked elsewhere), and the attended value is added to the query
//!   before the same linear map.
//!
//! The choice was measured on a short run: see the crate docs.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, RmsNorm};
use burn::prelude::Tensor;
use serde::{Deserialize, Serialize};

use crate::nn::{Init, attend, join_heads, split_heads};

/// How a patch's byte states become one vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolingKind {
    /// Mean of the byte states, then a linear map.
    Mean,
    /// Cross-attention from a mean-initialised patch query to the patch's byte states (BLT).
    CrossAttention,
}

/// Configuration of [`Pooling`].
#[derive(Config, Debug)]
pub struct PoolingConfig {
    /// Mean or cross-attention.
    pub kind: PoolingKind,
    /// Width of the byte states.
    pub d_local: usize,
    /// Width of the patch vectors (the global model's).
    pub d_global: usize,
    /// Heads of the cross-attention.
    pub n_heads: usize,
}

impl PoolingConfig {
    /// The pooling with fresh weights.
    pub fn init(&self, init: &mut Init) -> Pooling {
        let d = self.d_local;
        let cross = (self.kind == PoolingKind::CrossAttention).then(|| CrossAttentionPool {
            norm_q: init.rms_norm(d, 1e-5),
            norm_kv: init.rms_norm(d, 1e-5),
            query: init.linear(d, d, 1.0, false),
            key_value: init.linear(d, 2 * d, 1.0, false),
            out: init.linear(d, d, 1.0, false),
            n_heads: self.n_heads,
        });
        Pooling {
            cross,
            proj: init.linear(d, self.d_global, 1.0, true),
        }
    }

    /// FLOPs per byte: the sum into the mean (1 per feature), and for cross-attention the key
    /// and value projections and the scores and weighted values over the patch's bytes.
    pub fn flops_per_byte(&self) -> u64 {
        let d = self.d_local as u64;
        match self.kind {
            PoolingKind::Mean => d,
            PoolingKind::CrossAttention => d + 2 * (2 * d * d + 2 * d),
        }
    }

    /// FLOPs per patch: the linear map to the global width, and for cross-attention the query
    /// and output projections.
    pub fn flops_per_patch(&self) -> u64 {
        let (d, g) = (self.d_local as u64, self.d_global as u64);
        let cross = match self.kind {
            PoolingKind::Mean => 0,
            PoolingKind::CrossAttention => 2 * 2 * d * d,
        };
        2 * d * g + cross
    }
}

/// The cross-attention of [`PoolingKind::CrossAttention`].
#[derive(Module, Debug)]
pub struct CrossAttentionPool {
    /// Norm of the mean-pooled query input.
    pub norm_q: RmsNorm,
    /// Norm of the byte states.
    pub norm_kv: RmsNorm,
    /// Query projection `[d, d]`.
    pub query: Linear,
    /// Key and value projections together, `[d, 2d]`.
    pub key_value: Linear,
    /// Output projection `[d, d]`.
    pub out: Linear,
    /// Heads.
    pub n_heads: usize,
}

/// Byte states to patch vectors.
#[derive(Module, Debug)]
pub struct Pooling {
    /// Present for [`PoolingKind::CrossAttention`].
    pub cross: Option<CrossAttentionPool>,
    /// Map to the global width, `[d_local, d_global]`.
    pub proj: Linear,
}

impl Pooling {
    /// Patch vectors `[B, P, d_global]` from byte states `e` `[B, L, d_local]`, the mean
    /// weights `[B, P, L]` and, for cross-attention, the patch-membership bias
    /// `[B, 1, P, L]` (see the module docs). Padded (empty) patches give vectors that no byte
    /// reads.
    pub fn forward(&self, e: Tensor<3>, weights: Tensor<3>, bias: Option<Tensor<4>>) -> Tensor<3> {
        let mean = weights.matmul(e.clone());
        let pooled = match (&self.cross, bias) {
            (None, _) => mean,
            (Some(c), Some(bias)) => {
                let [_, _, d] = e.dims();
                let q = split_heads(c.query.forward(c.norm_q.forward(mean.clone())), c.n_heads);
                let kv = c.key_value.forward(c.norm_kv.forward(e));
                let k = split_heads(kv.clone().narrow(2, 0, d), c.n_heads);
                let v = split_heads(kv.narrow(2, d, d), c.n_heads);
                mean + c.out.forward(join_heads(attend(q, k, v, bias)))
            }
            (Some(_), None) => panic!("cross-attention pooling needs the membership bias"),
        };
        self.proj.forward(pooled)
    }
}
