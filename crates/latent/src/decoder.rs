//! The local decoder: predicts every byte from byte-level states and the global output of
//! earlier patches.
//!
//! Position `j` predicts byte `x[j]`. Its input is the encoder state of the byte before,
//! `e[j-1]` (a learned start vector for `j = 0`), so it sees `x[0 .. j)`. Before each block, a
//! linear map of one global output is added: `g[k - 1]` with `k = index[j]`, or a learned
//! global start vector for `k = 0` (see [`crate::batch`] for how `index` comes from
//! `patch_ids`: for byte `j` of patch `p` it is `p`, so byte `j` sees the global output of the
//! previous patch, which ends at or before `j - 1`). This is BLT's decoder cross-attention: with
//! a single patch to attend to, softmax weights are 1 and multi-head cross-attention reduces to
//! a linear map of that patch's output. Causal windowed blocks follow, then a norm and the head
//! that gives 256 logits.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, RmsNorm};
use burn::prelude::{Int, Tensor};

use crate::nn::{Init, SelfMask, TransformerBlock, TransformerBlockConfig};

/// Configuration of the [`LocalDecoder`].
#[derive(Config, Debug)]
pub struct LocalDecoderConfig {
    /// Width of the byte states (the encoder's).
    pub d_model: usize,
    /// Width of the global outputs.
    pub d_global: usize,
    /// Transformer blocks.
    pub n_layers: usize,
    /// Attention heads.
    pub n_heads: usize,
    /// Hidden width of the MLPs.
    pub d_hidden: usize,
    /// Bytes each position attends to, itself included.
    pub window: usize,
}

impl LocalDecoderConfig {
    /// The decoder with fresh weights.
    pub fn init(&self, init: &mut Init) -> LocalDecoder {
        let (d, g) = (self.d_model, self.d_global);
        let gain = 1.0 / ((2 * self.n_layers.max(1)) as f64).sqrt();
        let block = self.block();
        let byte_start = init.normal(d, 1.0);
        let global_start = init.normal(g, 1.0);
        LocalDecoder {
            byte_start: init.param(byte_start, [1, 1, d]),
            global_start: init.param(global_start, [1, 1, g]),
            inject: (0..self.n_layers)
                .map(|_| init.linear(g, d, 1.0, false))
                .collect(),
            blocks: (0..self.n_layers).map(|_| block.init(init, gain)).collect(),
            norm: init.rms_norm(d, 1e-5),
            head: init.linear(d, 256, 1.0, true),
            n_heads: self.n_heads,
            window: self.window,
        }
    }

    /// The configuration of each block.
    pub fn block(&self) -> TransformerBlockConfig {
        TransformerBlockConfig::new(self.d_model, self.n_heads, self.d_hidden)
    }

    /// FLOPs per byte: per block the injection of the global output, the projections and MLP
    /// and attention over `window` keys; then the head.
    pub fn flops_per_byte(&self) -> u64 {
        let (d, g) = (self.d_model as u64, self.d_global as u64);
        let attn = 2 * self.window as u64 * d;
        let per_block = g * d + self.block().macs_per_position() + attn;
        2 * (self.n_layers as u64 * per_block + d * 256)
    }
}

/// Byte-level blocks that read the previous patches' global outputs.
#[derive(Module, Debug)]
pub struct LocalDecoder {
    /// The byte state before the first byte, `[1, 1, d]`.
    pub byte_start: Param<Tensor<3>>,
    /// The global output seen by the first patch, `[1, 1, d_global]`.
    pub global_start: Param<Tensor<3>>,
    /// Per block, the map of the global output into the byte states, `[d_global, d]`.
    pub inject: Vec<Linear>,
    /// The blocks.
    pub blocks: Vec<TransformerBlock>,
    /// Final norm.
    pub norm: RmsNorm,
    /// Output layer `[d, 256]`.
    pub head: Linear,
    /// Attention heads.
    pub n_heads: usize,
    /// Attention window in bytes.
    pub window: usize,
}

impl LocalDecoder {
    /// Logits `[B, L, 256]` (position `j` predicts `x[j]`) from the encoder states `e`
    /// `[B, L, d]`, the global outputs `g` `[B, P, d_global]` and `index` `[B·L]`: for row `b`,
    /// position `j`, the row `b·(P+1) + k` of `[global_start, g[b, 0], ..., g[b, P-1]]` flattened
    /// to `[B·(P+1), d_global]`, where `k = 0` selects the start vector and `k >= 1` selects
    /// `g[b, k-1]`.
    pub fn forward(&self, e: Tensor<3>, g: Tensor<3>, index: Tensor<1, Int>) -> Tensor<3> {
        let [b, l, d] = e.dims();
        let [_, p, dg] = g.dims();
        let start = self.byte_start.val().expand([b, 1, d]);
        let x = if l > 1 {
            Tensor::cat(vec![start, e.narrow(1, 0, l - 1)], 1)
        } else {
            start
        };
        let g_ext = Tensor::cat(vec![self.global_start.val().expand([b, 1, dg]), g], 1);
        let seen = g_ext
            .reshape([b * (p + 1), dg])
            .select(0, index)
            .reshape([b, l, dg]);
        let mask = SelfMask::windowed(l, self.n_heads, self.window, &x.device());
        let mut x = x;
        for (inject, block) in self.inject.iter().zip(&self.blocks) {
            x = block.forward(x + inject.forward(seen.clone()), &mask);
        }
        self.head.forward(self.norm.forward(x))
    }
}
