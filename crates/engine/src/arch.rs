//! The neural entropy model's architecture: its hyper-parameters, presets, the exact forward
//! computation that defines `H`, and the names and shapes of its tensors.
//!
//! This module is shared by the trainer (on burn) and the canonical engine (plain Rust), so both
//! compute the same function; the engine's arithmetic is the definition.
//!
//! # The model ("conv")
//!
//! A causal stack of dilated convolutions over byte embeddings with hashed n-gram embeddings,
//! with no absolute positions. Position `t` predicts byte `x[t]`.
//!
//! 1. Input, `[T, d]`: `x0[t] = embed[tok(t)] + Σ_j hash_j[bucket_j(x[t-n_j .. t))]`, where
//!    `tok(0) = BOS = 256` and `tok(t) = x[t-1]` for `t >= 1`; the hashed term of order `n_j` is
//!    present only when `t >= n_j`. Summed in that order: byte embedding, then each hash order
//!    in the listed order.
//! 2. Block `l` (residual), `[T, d] -> [T, d]`:
//!    `a = rmsnorm(h; blocks.l.norm.gamma)`,
//!    `c[t][o] = conv.bias[o] + Σ_{j<k} Σ_{i<d} conv.weight[o][i][j] · a[t - (k-1-j)·dil_l][i]`,
//!    where `a` at a position before the start of the document (or of the evaluated window) is
//!    a zero vector (`[T, f]`),
//!    `h[t][p] += proj.bias[p] + Σ_{o<f} proj.weight[o][p] · relu(c[t][o])`.
//! 3. Output: `z = rmsnorm(h; norm.gamma)`, `logits[v] = head.bias[v] + Σ_i head.weight[i][v]·z[i]`
//!    (`[T, 256]`).
//! 4. `rmsnorm(x; γ)_i = (x_i · r) · γ_i` with `r = 1 / sqrt(Σ_i x_i² / d + eps)`.
//! 5. Entropy in nats: `m = max_v logits[v]`, `e_v = exp(logits[v] - m)`, `S = Σ_v e_v`,
//!    `H = ln S - (Σ_v e_v · (logits[v] - m)) / S`; surprisal of byte `b`: `ln S - (logits[b] - m)`.
//!
//! Receptive field: block outputs at `t` read block inputs at `t - R ..= t` with
//! `R = Σ_l (k-1)·dil_l`, and the input at `s` reads bytes `x[s - n_max .. s)`, so `H[t]` is a
//! function of `x[t - C .. t)` with **`C = R + n_max`**, `n_max = max(1, max hash order)`. The
//! beginning-of-document token and the missing hashed terms are only visible when `t < C`, that
//! is when the context is the whole (shorter) prefix of the document.
//!
//! Tensor names and shapes (f32, as burn's safetensors store names a module's fields; linear
//! layers are `[in, out]`, convolutions `[out, in, k]`) are listed by [`ConvConfig::tensors`].

use serde::{Deserialize, Serialize};

/// The architecture's name in `config.json`.
pub const ARCH: &str = "conv";
/// Input vocabulary: the 256 byte values and the beginning-of-document token.
pub const VOCAB_IN: usize = 257;
/// The beginning-of-document token.
pub const BOS: usize = 256;
/// Output vocabulary: the next byte.
pub const VOCAB_OUT: usize = 256;

/// Hyper-parameters of the convolutional entropy model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvConfig {
    /// Width of the residual stream `d`.
    pub d_model: usize,
    /// Width of each block's convolution output `f`.
    pub d_hidden: usize,
    /// Convolution taps `k` (>= 1).
    pub kernel_size: usize,
    /// One dilation per block (each >= 1).
    pub dilations: Vec<usize>,
    /// Byte n-gram lengths of the hashed embeddings (each in `1..=8`), in summation order.
    pub hash_orders: Vec<usize>,
    /// Buckets of each hashed embedding table (>= 1 when `hash_orders` is not empty).
    pub hash_buckets: usize,
    /// RMSNorm epsilon.
    pub norm_eps: f32,
}

impl ConvConfig {
    /// The named presets: `tiny`, `small`, `base`.
    pub fn preset(name: &str) -> Option<Self> {
        let (d, f, dilations, hash_orders, hash_buckets): (
            usize,
            usize,
            &[usize],
            &[usize],
            usize,
        ) = match name {
            "tiny" => (32, 64, &[1, 2, 4, 8, 16, 32], &[2, 3, 4], 4096),
            "small" => (64, 128, &[1, 2, 4, 8, 16, 32, 64, 1], &[2, 3, 4, 6], 8192),
            "base" => (
                128,
                256,
                &[1, 2, 4, 8, 16, 32, 64, 128, 1, 2],
                &[2, 3, 4, 6],
                16384,
            ),
            _ => return None,
        };
        Some(Self {
            d_model: d,
            d_hidden: f,
            kernel_size: 2,
            dilations: dilations.to_vec(),
            hash_orders: hash_orders.to_vec(),
            hash_buckets,
            norm_eps: 1e-5,
        })
    }

    /// Names of the presets.
    pub const PRESETS: [&'static str; 3] = ["tiny", "small", "base"];

    /// Checks that the hyper-parameters describe a buildable model.
    pub fn validate(&self) -> Result<(), String> {
        if self.d_model == 0 || self.d_hidden == 0 || self.kernel_size == 0 {
            return Err("d_model, d_hidden and kernel_size must be >= 1".into());
        }
        if self.dilations.contains(&0) {
            return Err("dilations must be >= 1".into());
        }
        if self.hash_orders.iter().any(|&n| !(1..=8).contains(&n)) {
            return Err("hash orders must be in 1..=8".into());
        }
        if !self.hash_orders.is_empty() && self.hash_buckets == 0 {
            return Err("hash_buckets must be >= 1".into());
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            return Err("norm_eps must be > 0".into());
        }
        Ok(())
    }

    /// `R = Σ_l (k-1)·dil_l`: how many earlier positions a block output reads.
    pub fn receptive_field(&self) -> usize {
        self.dilations
            .iter()
            .map(|d| (self.kernel_size - 1) * d)
            .sum()
    }

    /// `n_max = max(1, max hash order)`.
    pub fn max_order(&self) -> usize {
        self.hash_orders.iter().copied().max().unwrap_or(1).max(1)
    }

    /// The context length `C = R + n_max` in bytes.
    pub fn context(&self) -> usize {
        self.receptive_field() + self.max_order()
    }

    /// Every tensor of the model: name and shape, in a fixed order.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let (d, f, k) = (self.d_model, self.d_hidden, self.kernel_size);
        let mut t = vec![("embed.weight".to_string(), vec![VOCAB_IN, d])];
        for j in 0..self.hash_orders.len() {
            t.push((format!("hash.{j}.weight"), vec![self.hash_buckets, d]));
        }
        for l in 0..self.dilations.len() {
            t.push((format!("blocks.{l}.norm.gamma"), vec![d]));
            t.push((format!("blocks.{l}.conv.weight"), vec![f, d, k]));
            t.push((format!("blocks.{l}.conv.bias"), vec![f]));
            t.push((format!("blocks.{l}.proj.weight"), vec![f, d]));
            t.push((format!("blocks.{l}.proj.bias"), vec![d]));
        }
        t.push(("norm.gamma".to_string(), vec![d]));
        t.push(("head.weight".to_string(), vec![d, VOCAB_OUT]));
        t.push(("head.bias".to_string(), vec![VOCAB_OUT]));
        t
    }

    /// Number of parameters.
    pub fn parameters(&self) -> usize {
        self.tensors()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    /// Floating-point operations per byte of inference (a multiply-add counts 2; embedding
    /// look-ups, norms and the softmax are not counted).
    pub fn flops_per_byte(&self) -> usize {
        let (d, f, k) = (self.d_model, self.d_hidden, self.kernel_size);
        let blocks = self.dilations.len() * (k * d * f + f * d);
        2 * (blocks + d * VOCAB_OUT)
    }
}

/// The bucket of the hashed embedding with index `order_index` for the n-gram `bytes`
/// (FNV-1a, 64 bits, seeded per table, reduced modulo `buckets`).
#[inline]
pub fn ngram_bucket(bytes: &[u8], order_index: usize, buckets: usize) -> usize {
    let mut h =
        0xcbf2_9ce4_8422_2325u64 ^ (order_index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 29;
    (h % buckets as u64) as usize
}

/// The model's input at every position `t` of `start..end` of a document: the byte token
/// `tok(t)` and, per hash order, the bucket or `None` when `t < n_j`.
///
/// Shapes: returns `tokens: [end - start]`, `buckets: [end - start, hash_orders.len()]`
/// (row-major, `u32::MAX` for an absent term). Reads `doc[start - n_max .. end - 1]`.
pub fn inputs(cfg: &ConvConfig, doc: &[u8], start: usize, end: usize) -> (Vec<u32>, Vec<u32>) {
    let h = cfg.hash_orders.len();
    let mut tokens = Vec::with_capacity(end - start);
    let mut buckets = Vec::with_capacity((end - start) * h);
    for t in start..end {
        tokens.push(if t == 0 {
            BOS as u32
        } else {
            doc[t - 1] as u32
        });
        for (j, &n) in cfg.hash_orders.iter().enumerate() {
            buckets.push(if t >= n {
                ngram_bucket(&doc[t - n..t], j, cfg.hash_buckets) as u32
            } else {
                u32::MAX
            });
        }
    }
    (tokens, buckets)
}
