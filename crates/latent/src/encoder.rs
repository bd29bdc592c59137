//! The local encoder: bytes to byte states.
//!
//! Position `j`'s input is the embedding of byte `x[j]` plus, for every hash order `n`, the
//! embedding of the hashed n-gram `x[j-n+1 ..= j]` (BLT's hash n-gram embeddings; positions with
//! fewer than `n` bytes so far use the table's extra "absent" row). Causal transformer blocks
//! with windowed attention follow, so the state `e[j]` depends on `x[0 ..= j]` only.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Embedding, RmsNorm};
use burn::prelude::{Int, Tensor};

use crate::nn::{Init, SelfMask, TransformerBlock, TransformerBlockConfig};

/// Configuration of the [`LocalEncoder`].
#[derive(Config, Debug)]
pub struct LocalEncoderConfig {
    /// Width of the byte states.
    pub d_model: usize,
    /// Transformer blocks.
    pub n_layers: usize,
    /// Attention heads.
    pub n_heads: usize,
    /// Hidden width of the MLPs.
    pub d_hidden: usize,
    /// Bytes each position attends to, itself included.
    pub window: usize,
    /// Lengths of the hashed n-grams.
    pub hash_orders: Vec<usize>,
    /// Buckets per hash table (each table has one more row, for "absent").
    pub hash_buckets: usize,
}

impl LocalEncoderConfig {
    /// The encoder with fresh weights.
    pub fn init(&self, init: &mut Init) -> LocalEncoder {
        let orders = self.hash_orders.len().max(1) as f64;
        let gain = 1.0 / ((2 * self.n_layers.max(1)) as f64).sqrt();
        let block = self.block();
        LocalEncoder {
            embed: init.embedding(256, self.d_model, 1.0),
            hash: self
                .hash_orders
                .iter()
                .map(|_| init.embedding(self.hash_buckets + 1, self.d_model, 1.0 / orders.sqrt()))
                .collect(),
            blocks: (0..self.n_layers).map(|_| block.init(init, gain)).collect(),
            norm: init.rms_norm(self.d_model, 1e-5),
            n_heads: self.n_heads,
            window: self.window,
        }
    }

    /// The configuration of each block.
    pub fn block(&self) -> TransformerBlockConfig {
        TransformerBlockConfig::new(self.d_model, self.n_heads, self.d_hidden)
    }

    /// The hash-table row of every position of `bytes` for each order, `[orders][len]`, `len`
    /// at least `bytes.len()`; positions past the bytes (padding) and positions with fewer than
    /// `n` bytes so far get the "absent" row `hash_buckets`.
    pub fn hash_ids(&self, bytes: &[u8], len: usize) -> Vec<Vec<i64>> {
        self.hash_orders
            .iter()
            .map(|&n| {
                (0..len)
                    .map(|j| {
                        if j >= bytes.len() || j + 1 < n {
                            self.hash_buckets as i64
                        } else {
                            (ngram_hash(&bytes[j + 1 - n..=j]) % self.hash_buckets as u64) as i64
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// FLOPs per byte (2 per multiply-accumulate): the blocks' projections and MLPs, and their
    /// attention over `window` keys (look-ups cost none).
    pub fn flops_per_byte(&self) -> u64 {
        let attn = 2 * (self.window as u64) * self.d_model as u64;
        2 * self.n_layers as u64 * (self.block().macs_per_position() + attn)
    }
}

/// FNV-1a over the bytes, then a final avalanche (SplitMix64's finaliser).
fn ngram_hash(gram: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ gram.len() as u64;
    for &b in gram {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Byte and hashed n-gram embeddings, then causal windowed transformer blocks.
#[derive(Module, Debug)]
pub struct LocalEncoder {
    /// Byte embedding `[256, d]`.
    pub embed: Embedding,
    /// One table `[hash_buckets + 1, d]` per hash order.
    pub hash: Vec<Embedding>,
    /// The blocks.
    pub blocks: Vec<TransformerBlock>,
    /// Final norm, `gamma: [d]`.
    pub norm: RmsNorm,
    /// Attention heads.
    pub n_heads: usize,
    /// Attention window in bytes.
    pub window: usize,
}

impl LocalEncoder {
    /// Byte states: `tokens` `[B, L]` (bytes), `hash` one `[B, L]` row index per order
    /// ([`LocalEncoderConfig::hash_ids`]) -> `[B, L, d]`; `e[j]` depends on `x[0 ..= j]` only.
    pub fn forward(&self, tokens: Tensor<2, Int>, hash: &[Tensor<2, Int>]) -> Tensor<3> {
        let [_, l] = tokens.dims();
        let device = tokens.device();
        let mut x = self.embed.forward(tokens);
        for (table, ids) in self.hash.iter().zip(hash) {
            x = x + table.forward(ids.clone());
        }
        let mask = SelfMask::windowed(l, self.n_heads, self.window, &device);
        for block in &self.blocks {
            x = block.forward(x, &mask);
        }
        self.norm.forward(x)
    }
}
