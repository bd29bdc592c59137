//! The global model: a causal transformer over patch vectors.
//!
//! Its output `g[p]` depends on the patch vectors `0 ..= p` only (dense causal attention with
//! ALiBi over patch indices), so it summarises every byte up to the end of patch `p`.

use burn::config::Config;
use burn::module::Module;
use burn::nn::RmsNorm;
use burn::prelude::Tensor;

use crate::nn::{Init, SelfMask, TransformerBlock, TransformerBlockConfig};

/// Configuration of the [`GlobalModel`].
#[derive(Config, Debug)]
pub struct GlobalConfig {
    /// Width of the patch states.
    pub d_model: usize,
    /// Transformer blocks.
    pub n_layers: usize,
    /// Attention heads.
    pub n_heads: usize,
    /// Hidden width of the MLPs.
    pub d_hidden: usize,
}

impl GlobalConfig {
    /// The global model with fresh weights.
    pub fn init(&self, init: &mut Init) -> GlobalModel {
        let gain = 1.0 / ((2 * self.n_layers.max(1)) as f64).sqrt();
        let block = self.block();
        GlobalModel {
            blocks: (0..self.n_layers).map(|_| block.init(init, gain)).collect(),
            norm: init.rms_norm(self.d_model, 1e-5),
            n_heads: self.n_heads,
        }
    }

    /// The configuration of each block.
    pub fn block(&self) -> TransformerBlockConfig {
        TransformerBlockConfig::new(self.d_model, self.n_heads, self.d_hidden)
    }

    /// FLOPs per patch when a sequence holds `patches` patches: the blocks' projections and
    /// MLPs, and attention over `(patches + 1) / 2` earlier patches on average.
    pub fn flops_per_patch(&self, patches: f64) -> f64 {
        let attn = 2.0 * (patches + 1.0) / 2.0 * self.d_model as f64;
        2.0 * self.n_layers as f64 * (self.block().macs_per_position() as f64 + attn)
    }
}

/// Causal transformer blocks over patch vectors.
#[derive(Module, Debug)]
pub struct GlobalModel {
    /// The blocks.
    pub blocks: Vec<TransformerBlock>,
    /// Final norm.
    pub norm: RmsNorm,
    /// Attention heads.
    pub n_heads: usize,
}

impl GlobalModel {
    /// `[B, P, d] -> [B, P, d]`; output `p` depends on inputs `0 ..= p` only.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [_, p, _] = x.dims();
        let mask = SelfMask::causal(p, self.n_heads, &x.device());
        let mut x = x;
        for block in &self.blocks {
            x = block.forward(x, &mask);
        }
        self.norm.forward(x)
    }
}
