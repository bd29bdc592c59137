//! The whole byte-latent transformer: local encoder, pooling, global model, local decoder.
//!
//! ```text
//! bytes x[0..L) ──encoder──> e [B, L, d_local] ──pooling (patch_ids)──> patches [B, P, d_global]
//!                              │                                              │
//!                              │                                   global (causal over patches)
//!                              │                                              │
//!                              └──────> decoder (e[j-1], g[patch of j - 1]) <─┘ ──> logits [B, L, 256]
//! ```

use burn::config::Config;
use burn::module::Module;
use burn::prelude::{Device, Int, Tensor, TensorData};
use burn::tensor::activation::log_softmax;
use serde::Serialize;

use crate::batch::HostBatch;
use crate::decoder::{LocalDecoder, LocalDecoderConfig};
use crate::encoder::{LocalEncoder, LocalEncoderConfig};
use crate::global::{GlobalConfig, GlobalModel};
use crate::nn::Init;
use crate::pooling::{Pooling, PoolingConfig, PoolingKind};

/// Configuration of the whole [`LatentModel`].
#[derive(Config, Debug)]
pub struct LatentConfig {
    /// The local encoder.
    pub encoder: LocalEncoderConfig,
    /// The pooling of byte states into patch vectors.
    pub pooling: PoolingConfig,
    /// The global model.
    pub global: GlobalConfig,
    /// The local decoder.
    pub decoder: LocalDecoderConfig,
}

/// The names accepted by [`LatentConfig::preset`].
pub const PRESETS: [&str; 2] = ["tiny", "small"];

impl LatentConfig {
    /// A named size: `tiny` (for tests: a few thousand FLOPs per byte) or `small` (the
    /// experiment's model, see the crate docs), with the given pooling.
    pub fn preset(name: &str, pooling: PoolingKind) -> Option<Self> {
        // (d_local, local heads, local hidden, window, enc layers, dec layers,
        //  d_global, global heads, global hidden, global layers, hash orders, buckets)
        let (dl, hl, fl, w, le, ld, dg, hg, fg, lg, orders, buckets) = match name {
            "tiny" => (16, 2, 32, 8, 1, 1, 24, 2, 48, 1, vec![2, 3], 64),
            "small" => (64, 2, 128, 64, 1, 2, 160, 4, 480, 3, vec![2, 3, 4, 6], 8192),
            _ => return None,
        };
        Some(Self::new(
            LocalEncoderConfig::new(dl, le, hl, fl, w, orders, buckets),
            PoolingConfig::new(pooling, dl, dg, hl),
            GlobalConfig::new(dg, lg, hg, fg),
            LocalDecoderConfig::new(dl, dg, ld, hl, fl, w),
        ))
    }

    /// Checks that the widths fit together and divide into heads.
    ///
    /// # Errors
    /// A message naming the first inconsistency.
    pub fn validate(&self) -> Result<(), String> {
        let (e, p, g, d) = (&self.encoder, &self.pooling, &self.global, &self.decoder);
        let heads = [
            ("encoder", e.d_model, e.n_heads),
            ("pooling", p.d_local, p.n_heads),
            ("global", g.d_model, g.n_heads),
            ("decoder", d.d_model, d.n_heads),
        ];
        for (part, width, n) in heads {
            if n == 0 || width == 0 || width % n != 0 {
                return Err(format!(
                    "{part}: width {width} is not a multiple of {n} heads"
                ));
            }
        }
        if p.d_local != e.d_model || d.d_model != e.d_model {
            return Err("pooling and decoder must take the encoder's width".into());
        }
        if p.d_global != g.d_model || d.d_global != g.d_model {
            return Err("pooling and decoder must use the global model's width".into());
        }
        if e.window == 0 || d.window == 0 || e.hash_buckets == 0 {
            return Err("windows and hash buckets must be at least 1".into());
        }
        Ok(())
    }

    /// The model with fresh weights from `seed` (the same seed gives the same weights).
    pub fn init(&self, seed: u64, device: &Device) -> LatentModel {
        let mut init = Init::new(seed, device);
        LatentModel {
            encoder: self.encoder.init(&mut init),
            pooling: self.pooling.init(&mut init),
            global: self.global.init(&mut init),
            decoder: self.decoder.init(&mut init),
        }
    }

    /// FLOPs per byte of each part (forward pass, 2 per multiply-accumulate) at a mean patch
    /// length of `mean_patch_len` bytes in sequences of `seq_len` bytes.
    pub fn flops_per_byte(&self, mean_patch_len: f64, seq_len: usize) -> Flops {
        let patches = seq_len as f64 / mean_patch_len;
        let global_per_patch = self.global.flops_per_patch(patches);
        let pooling = self.pooling.flops_per_byte() as f64
            + self.pooling.flops_per_patch() as f64 / mean_patch_len;
        let encoder = self.encoder.flops_per_byte() as f64;
        let global = global_per_patch / mean_patch_len;
        let decoder = self.decoder.flops_per_byte() as f64;
        Flops {
            encoder,
            pooling,
            global_per_patch,
            global,
            decoder,
            total: encoder + pooling + global + decoder,
            mean_patch_len,
        }
    }
}

/// Parameters of each part of the model ([`LatentModel::parameters`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Parameters {
    /// Local encoder (most of them in the hashed n-gram tables, which cost a look-up).
    pub encoder: usize,
    /// Pooling.
    pub pooling: usize,
    /// Global model.
    pub global: usize,
    /// Local decoder with its head.
    pub decoder: usize,
    /// Everything.
    pub total: usize,
}

/// FLOPs per byte of each part of the model ([`LatentConfig::flops_per_byte`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Flops {
    /// Local encoder, per byte.
    pub encoder: f64,
    /// Pooling into patch vectors, per byte (its per-patch share divided by the mean length).
    pub pooling: f64,
    /// Global model, per patch.
    pub global_per_patch: f64,
    /// Global model, per byte (`global_per_patch / mean_patch_len`).
    pub global: f64,
    /// Local decoder with its head, per byte.
    pub decoder: f64,
    /// Everything, per byte.
    pub total: f64,
    /// The mean patch length it was computed at.
    pub mean_patch_len: f64,
}

/// A byte-latent transformer: see the module docs.
#[derive(Module, Debug)]
pub struct LatentModel {
    /// Bytes to byte states.
    pub encoder: LocalEncoder,
    /// Byte states to patch vectors.
    pub pooling: Pooling,
    /// Causal transformer over patch vectors.
    pub global: GlobalModel,
    /// Byte states and earlier patches' global outputs to next-byte logits.
    pub decoder: LocalDecoder,
}

/// A batch on the device: the tensors of a [`HostBatch`].
#[derive(Clone, Debug)]
pub struct LatentInput {
    /// Bytes `[B, L]` (0 past a document's end).
    pub tokens: Tensor<2, Int>,
    /// Hash-table rows `[B, L]`, one per hash order.
    pub hash: Vec<Tensor<2, Int>>,
    /// Mean-pooling weights `[B, P, L]`.
    pub pool_weights: Tensor<3>,
    /// Patch-membership bias `[B, 1, P, L]` for cross-attention pooling.
    pub pool_bias: Option<Tensor<4>>,
    /// The global output each byte sees, `[B·L]` (see [`LocalDecoder::forward`]).
    pub decoder_index: Tensor<1, Int>,
    /// Target bytes `[B, L]`.
    pub targets: Tensor<2, Int>,
    /// Loss weights `[B, L]`: 1 on bytes, 0 on padding.
    pub weights: Tensor<2>,
}

impl LatentInput {
    /// Moves a host batch to `device`.
    pub fn new(batch: &HostBatch, device: &Device) -> Self {
        let (b, l, p) = (batch.rows, batch.len, batch.patches);
        let int2 =
            |v: &[i64]| Tensor::<2, Int>::from_data(TensorData::new(v.to_vec(), [b, l]), device);
        LatentInput {
            tokens: int2(&batch.tokens),
            hash: batch.hash.iter().map(|h| int2(h)).collect(),
            pool_weights: Tensor::from_data(
                TensorData::new(batch.pool_weights.clone(), [b, p, l]),
                device,
            ),
            pool_bias: batch
                .pool_bias
                .as_ref()
                .map(|m| Tensor::from_data(TensorData::new(m.clone(), [b, 1, p, l]), device)),
            decoder_index: Tensor::from_data(
                TensorData::new(batch.decoder_index.clone(), [b * l]),
                device,
            ),
            targets: int2(&batch.targets),
            weights: Tensor::from_data(TensorData::new(batch.weights.clone(), [b, l]), device),
        }
    }
}

impl LatentModel {
    /// Parameters of each part.
    pub fn parameters(&self) -> Parameters {
        let (e, p, g, d) = (
            self.encoder.num_params(),
            self.pooling.num_params(),
            self.global.num_params(),
            self.decoder.num_params(),
        );
        Parameters {
            encoder: e,
            pooling: p,
            global: g,
            decoder: d,
            total: e + p + g + d,
        }
    }

    /// Logits `[B, L, 256]`: position `j` predicts byte `j` from bytes `0 .. j` (and the patch
    /// layout of those bytes).
    pub fn forward(&self, input: &LatentInput) -> Tensor<3> {
        let e = self.encoder.forward(input.tokens.clone(), &input.hash);
        let patches = self.pooling.forward(
            e.clone(),
            input.pool_weights.clone(),
            input.pool_bias.clone(),
        );
        let g = self.global.forward(patches);
        self.decoder.forward(e, g, input.decoder_index.clone())
    }

    /// Negative log-likelihood in nats of every target: `[B, L]`.
    pub fn nll(&self, input: &LatentInput) -> Tensor<2> {
        let logp = log_softmax(self.forward(input), 2);
        logp.gather(2, input.targets.clone().unsqueeze_dim::<3>(2))
            .squeeze_dim::<2>(2)
            .neg()
    }

    /// The training loss: mean negative log-likelihood (nats) over the bytes of the batch, a
    /// one-element tensor.
    pub fn loss(&self, input: &LatentInput, bytes: usize) -> Tensor<1> {
        (self.nll(input) * input.weights.clone())
            .sum()
            .div_scalar(bytes.max(1) as f32)
    }
}
