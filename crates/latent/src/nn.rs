//! The building blocks shared by the model's parts: seeded parameter initialisation, attention
//! with ALiBi position biases (windowed over bytes, dense over patches), and the pre-norm
//! transformer block.
//!
//! Positions enter only through ALiBi (Press et al. 2022): head `h` of `H` adds
//! `-slope_h · (i - j)` to the score of query `i` for key `j`, with `slope_h = 2^(-8(h+1)/H)`.
//! The bias is a constant tensor added with the causal mask, so no absolute position enters
//! the model (BLT uses rotary embeddings; ALiBi costs nothing beyond the mask that is needed
//! anyway, and a model that has no absolute position can generate past its training length).

use bltpatch_model::rng::SplitMix64;
use burn::config::Config;
use burn::module::{Module, Param, ParamId};
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::prelude::{Device, Tensor, TensorData};
use burn::tensor::activation::{gelu, softmax};

/// Score added where attention is not allowed (finite, so a row with every key masked stays a
/// number; its output is never read).
pub const MASKED: f32 = -1e9;

/// Seeded initialisation of parameters on one device (independent of burn's global RNG, so a
/// seed gives the same weights whatever else the process does).
pub struct Init {
    rng: SplitMix64,
    device: Device,
}

impl Init {
    /// Parameters from `seed` on `device` (they require gradients on an autodiff device).
    pub fn new(seed: u64, device: &Device) -> Self {
        Self {
            rng: SplitMix64::new(seed ^ 0x6c61_7465_6e74),
            device: device.clone(),
        }
    }

    /// The device the parameters are created on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A parameter of `shape` from `data` (C order).
    pub fn param<const D: usize>(&self, data: Vec<f32>, shape: [usize; D]) -> Param<Tensor<D>> {
        let t = Tensor::<D>::from_data(TensorData::new(data, shape), &self.device);
        let t = if self.device.is_autodiff() {
            t.require_grad()
        } else {
            t
        };
        Param::initialized(ParamId::new(), t)
    }

    /// `n` values uniform in `±bound`.
    pub fn uniform(&mut self, n: usize, bound: f64) -> Vec<f32> {
        (0..n)
            .map(|_| ((self.rng.unit() * 2.0 - 1.0) * bound) as f32)
            .collect()
    }

    /// `n` values `N(0, std²)`.
    pub fn normal(&mut self, n: usize, std: f64) -> Vec<f32> {
        (0..n).map(|_| (self.rng.normal() * std) as f32).collect()
    }

    /// A linear layer `d_in -> d_out` (weight `[d_in, d_out]`, burn's layout), weights uniform
    /// in `±gain/√d_in`, bias zero (or none).
    pub fn linear(&mut self, d_in: usize, d_out: usize, gain: f64, bias: bool) -> Linear {
        let w = self.uniform(d_in * d_out, gain / (d_in as f64).sqrt());
        Linear {
            weight: self.param(w, [d_in, d_out]),
            bias: bias.then(|| self.param(vec![0.0; d_out], [d_out])),
        }
    }

    /// An embedding table `[rows, d]`, entries `N(0, std²)`.
    pub fn embedding(&mut self, rows: usize, d: usize, std: f64) -> Embedding {
        let w = self.normal(rows * d, std);
        Embedding {
            weight: self.param(w, [rows, d]),
        }
    }

    /// An RMSNorm over `d` features with unit gain.
    pub fn rms_norm(&mut self, d: usize, eps: f64) -> RmsNorm {
        RmsNorm {
            gamma: self.param(vec![1.0; d], [d]),
            epsilon: eps,
        }
    }
}

/// ALiBi slope of head `h` of `heads`: `2^(-8(h+1)/heads)`.
pub fn alibi_slope(h: usize, heads: usize) -> f32 {
    2f32.powf(-8.0 * (h + 1) as f32 / heads as f32)
}

/// How the queries of a self-attention may see its keys.
#[derive(Clone, Debug)]
pub enum SelfMask {
    /// Causal over a window of `window` positions (key `j` is visible from query `i` when
    /// `i - window < j <= i`), computed in blocks of `window` queries that see their own block
    /// and the one before. `bias`: `[1, H, blocks, window · 2·window]`.
    Windowed {
        /// Positions each query sees, itself included.
        window: usize,
        /// ALiBi and mask, per head, block, query and key of the two blocks.
        bias: Tensor<4>,
    },
    /// Causal over the whole sequence. `bias`: `[1, H, L, L]`.
    Causal {
        /// ALiBi and mask, per head, query and key.
        bias: Tensor<4>,
    },
}

impl SelfMask {
    /// The windowed mask for `len` positions and `heads` heads.
    pub fn windowed(len: usize, heads: usize, window: usize, device: &Device) -> Self {
        let w = window.max(1);
        let blocks = len.div_ceil(w).max(1);
        let mut bias = vec![MASKED; heads * blocks * w * 2 * w];
        for h in 0..heads {
            let slope = alibi_slope(h, heads);
            for c in 0..blocks {
                for qi in 0..w {
                    let q = (c * w + qi) as i64;
                    for kk in 0..2 * w {
                        let k = (c * w + kk) as i64 - w as i64;
                        if k >= 0 && k <= q && q - k < w as i64 {
                            let at = ((h * blocks + c) * w + qi) * 2 * w + kk;
                            bias[at] = -slope * (q - k) as f32;
                        }
                    }
                }
            }
        }
        SelfMask::Windowed {
            window: w,
            bias: Tensor::from_data(TensorData::new(bias, [1, heads, blocks, 2 * w * w]), device),
        }
    }

    /// The dense causal mask for `len` positions and `heads` heads.
    pub fn causal(len: usize, heads: usize, device: &Device) -> Self {
        let mut bias = vec![MASKED; heads * len * len];
        for h in 0..heads {
            let slope = alibi_slope(h, heads);
            for q in 0..len {
                for k in 0..=q {
                    bias[(h * len + q) * len + k] = -slope * (q - k) as f32;
                }
            }
        }
        SelfMask::Causal {
            bias: Tensor::from_data(TensorData::new(bias, [1, heads, len, len]), device),
        }
    }
}

/// Splits `[B, L, H·dh]` into heads: `[B, H, L, dh]`.
pub fn split_heads(x: Tensor<3>, heads: usize) -> Tensor<4> {
    let [b, l, d] = x.dims();
    x.reshape([b, l, heads, d / heads]).swap_dims(1, 2)
}

/// Joins heads: `[B, H, L, dh] -> [B, L, H·dh]`.
pub fn join_heads(x: Tensor<4>) -> Tensor<3> {
    let [b, h, l, dh] = x.dims();
    x.swap_dims(1, 2).reshape([b, l, h * dh])
}

/// Scaled dot-product attention of `q` `[B, H, Lq, dh]` over `k`, `v` `[B, H, Lk, dh]` with an
/// additive `bias` that broadcasts to `[B, H, Lq, Lk]`: `[B, H, Lq, dh]`.
pub fn attend(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, bias: Tensor<4>) -> Tensor<4> {
    let dh = q.dims()[3];
    let scores = q
        .matmul(k.swap_dims(2, 3))
        .mul_scalar(1.0 / (dh as f32).sqrt())
        + bias;
    softmax(scores, 3).matmul(v)
}

/// Self-attention of `q`, `k`, `v` (`[B, H, L, dh]`) under `mask`: `[B, H, L, dh]`.
///
/// The windowed form pads `L` to whole blocks of `window`, lets each block of queries attend to
/// the keys of its own block and of the block before (`2·window` keys, the masked half
/// included), and cuts the padding off again: `O(L · window)` instead of `O(L²)`.
pub fn self_attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, mask: &SelfMask) -> Tensor<4> {
    match mask {
        SelfMask::Causal { bias } => attend(q, k, v, bias.clone()),
        SelfMask::Windowed { window, bias } => {
            let [b, h, l, dh] = q.dims();
            let w = *window;
            let blocks = bias.dims()[2];
            let lp = blocks * w;
            assert!(lp >= l, "mask built for {lp} positions, input has {l}");
            let device = q.device();
            let pad = |x: Tensor<4>| {
                if lp == l {
                    x
                } else {
                    Tensor::cat(vec![x, Tensor::zeros([b, h, lp - l, dh], &device)], 2)
                }
            };
            let blocked = |x: Tensor<4>| pad(x).reshape([b * h, blocks, w, dh]);
            // Each block's keys: the previous block (zeros before the first) then its own.
            let two_blocks = |x: Tensor<4>| {
                let x = blocked(x);
                let zeros = Tensor::zeros([b * h, 1, w, dh], &device);
                let prev = if blocks > 1 {
                    Tensor::cat(vec![zeros, x.clone().narrow(1, 0, blocks - 1)], 1)
                } else {
                    zeros
                };
                Tensor::cat(vec![prev, x], 2)
            };
            let (q, k, v) = (blocked(q), two_blocks(k), two_blocks(v));
            let scores = q
                .matmul(k.swap_dims(2, 3))
                .mul_scalar(1.0 / (dh as f32).sqrt())
                .reshape([b, h, blocks, w * 2 * w])
                + bias.clone();
            let attn = softmax(scores.reshape([b * h, blocks, w, 2 * w]), 3);
            attn.matmul(v).reshape([b, h, lp, dh]).narrow(2, 0, l)
        }
    }
}

/// Configuration of a [`TransformerBlock`].
#[derive(Config, Debug)]
pub struct TransformerBlockConfig {
    /// Width of the residual stream.
    pub d_model: usize,
    /// Attention heads (`d_model` must be a multiple).
    pub n_heads: usize,
    /// Hidden width of the MLP.
    pub d_hidden: usize,
    /// RMSNorm epsilon.
    #[config(default = 1e-5)]
    pub norm_eps: f64,
}

impl TransformerBlockConfig {
    /// A block with fresh weights; the output projections are scaled by `residual_gain`
    /// (`1/√(2·layers)` keeps the residual stream's scale at initialisation).
    pub fn init(&self, init: &mut Init, residual_gain: f64) -> TransformerBlock {
        let d = self.d_model;
        TransformerBlock {
            attn_norm: init.rms_norm(d, self.norm_eps),
            qkv: init.linear(d, 3 * d, 1.0, false),
            out: init.linear(d, d, residual_gain, false),
            mlp_norm: init.rms_norm(d, self.norm_eps),
            up: init.linear(d, self.d_hidden, 1.0, true),
            down: init.linear(self.d_hidden, d, residual_gain, true),
            n_heads: self.n_heads,
        }
    }

    /// Multiply-accumulates per position, apart from attention scores: `4d² + 2·d·f`.
    pub fn macs_per_position(&self) -> u64 {
        let (d, f) = (self.d_model as u64, self.d_hidden as u64);
        4 * d * d + 2 * d * f
    }
}

/// A pre-norm transformer block: `x + attn(norm(x))`, then `x + mlp(norm(x))` with a GELU MLP.
#[derive(Module, Debug)]
pub struct TransformerBlock {
    /// Norm before attention, `gamma: [d]`.
    pub attn_norm: RmsNorm,
    /// Query, key and value projections together, `[d, 3d]`.
    pub qkv: Linear,
    /// Attention output projection, `[d, d]`.
    pub out: Linear,
    /// Norm before the MLP.
    pub mlp_norm: RmsNorm,
    /// MLP up projection, `[d, f]`.
    pub up: Linear,
    /// MLP down projection, `[f, d]`.
    pub down: Linear,
    /// Attention heads.
    pub n_heads: usize,
}

impl TransformerBlock {
    /// `[B, L, d] -> [B, L, d]`, attention under `mask`.
    pub fn forward(&self, x: Tensor<3>, mask: &SelfMask) -> Tensor<3> {
        let [_, _, d] = x.dims();
        let qkv = self.qkv.forward(self.attn_norm.forward(x.clone()));
        let heads = |i: usize| split_heads(qkv.clone().narrow(2, i * d, d), self.n_heads);
        let a = self_attention(heads(0), heads(1), heads(2), mask);
        let x = x + self.out.forward(join_heads(a));
        let h = gelu(self.up.forward(self.mlp_norm.forward(x.clone())));
        x + self.down.forward(h)
    }
}
