//! The `"hashmlp"` entropy model ([`bltpatch_engine::hashmlp`]) as a burn module: hashed n-gram
//! tables summed into a trunk `e`, a next-byte head (`rmsnorm → linear → ReLU → linear`, 256
//! logits) and an entropy head (`linear → ReLU → linear`, one output) trained to predict the
//! entropy of the next-byte head's own distribution.
//!
//! The module's parameter paths are the checkpoint's tensor names
//! ([`HashMlpConfig::tensors`]): `tables.{j}.weight`, `norm.gamma`, `hidden.weight`,
//! `hidden.bias`, `head.weight`, `head.bias`, `entropy.proj.weight`, `entropy.proj.bias`,
//! `entropy.out.weight`, `entropy.out.bias`, and with [`HashMlpConfig::escape`]
//! `escape.tables.{i}.weight` (`[rows, 1]`) and `escape.bias` (`[1]`).
//!
//! # Loss
//!
//! For the counted positions of a batch, with `p` the next-byte distribution and `Ĥ` the entropy
//! head's output (before the engine's clamp to `[0, ln 256]`):
//! `loss = mean(-ln p(x_t)) + λ · mean((Ĥ - sg(H(p)))²)`, where `sg` stops the gradient, so the
//! regression moves only `Ĥ`: the next-byte head learns from the cross-entropy alone (with label
//! smoothing `ε`, [`FamilyHyper::label_smoothing`], the first term becomes
//! `mean((1-ε)·(-ln p(x_t)) + ε·mean_v(-ln p(v)))`). The
//! regression's gradient also reaches the tables (through the trunk `e`), so they learn to
//! carry what the entropy head needs; with [`FamilyHyper::entropy_trains_tables`] off it stops
//! at the trunk and the entropy head is a pure read-out of tables trained by the cross-entropy
//! alone. `λ` = [`FamilyHyper::entropy_weight`] (1). With [`FamilyHyper::row_noise`] `ρ`, each
//! training position reads, in each hashed table of whole bytes, a random row instead of its
//! own with probability `ρ` ([`HostBatch::with_row_noise`]).
//!
//! With an escape logit `z` (a bias plus one scalar per row of order 1 and of the class tables),
//! `p` is the 257-way softmax of `[logits, z]` with the 257th share spread evenly over the 256
//! byte values ([`log_probs`]), as the engine computes it.

use bltpatch_checkpoint::Tensor as CkptTensor;
use bltpatch_engine::EngineError;
use bltpatch_engine::arch::VOCAB_OUT;
use bltpatch_engine::hashmlp::{self as engine, HashMlpConfig, HashMlpModel};
use burn::module::{Module, Param};
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::prelude::{Device, Int, Tensor, TensorData};
use burn::tensor::activation::{log_softmax, relu};

use crate::error::ModelError;
use crate::family::{
    Family, FamilyHyper, FinalScorer, Geometry, Loss, Scored, TensorSource, tensor_data,
};
use crate::model::{Export, Window, param};
use crate::rng::SplitMix64;

/// The entropy head: `[.., F] -> [.., g] -> [.., 1]`.
#[derive(Module, Debug)]
pub struct EntropyHead {
    /// Linear `F -> g`, weight `[F, g]`, bias `[g]` (folded into the tables by the engine).
    pub proj: Linear,
    /// Linear `g -> 1`, weight `[g, 1]`, bias `[1]`.
    pub out: Linear,
}

/// The escape logit ([`HashMlpConfig::escape`]): `z = bias + Σ_i tables_i[r_(j_i)]` over the
/// tables [`HashMlpConfig::escape_tables`] lists.
#[derive(Module, Debug)]
pub struct EscapeHead {
    /// One scalar per row of each table the escape reads, `[rows_j, 1]`.
    pub tables: Vec<Embedding>,
    /// `[1]`.
    pub bias: Param<Tensor<1>>,
    /// The index `j` of the model's table that each of `tables` reads.
    #[module(skip)]
    pub reads: Vec<usize>,
}

/// The whole `"hashmlp"` model. Position `t` of a window predicts byte `t` of the document.
#[derive(Module, Debug)]
pub struct HashMlpLm {
    /// One table `[rows_j, F]` per order.
    pub tables: Vec<Embedding>,
    /// RMSNorm of the next-byte head, `gamma: [F]`.
    pub norm: RmsNorm,
    /// Linear `F -> h`, weight `[F, h]`, bias `[h]`.
    pub hidden: Linear,
    /// Linear `h -> 256`, weight `[h, 256]`, bias `[256]`.
    pub head: Linear,
    /// The entropy head.
    pub entropy: EntropyHead,
    /// The escape logit, when [`HashMlpConfig::escape`].
    pub escape: Option<EscapeHead>,
}

/// The model's outputs for a batch of `B` windows of `L` positions.
pub struct Outputs {
    /// Next-byte logits, `[B, L, 256]`.
    pub logits: Tensor<3>,
    /// The escape logit, `[B, L, 1]`, when the model has one.
    pub escape: Option<Tensor<3>>,
    /// The entropy head's output before the clamp, `[B, L]`.
    pub entropy: Tensor<2>,
}

impl HashMlpLm {
    /// A freshly initialised model (deterministic in `seed`): tables `N(0, 1/orders)`, linear
    /// weights uniform in `±1/√fan_in`, biases zero except the entropy head's output bias (2
    /// nats, about the mean entropy of text), norm gains one.
    pub fn init(cfg: &HashMlpConfig, seed: u64, device: &Device) -> Self {
        let mut rng = SplitMix64::new(seed ^ 0x6861_7368_6d6c_7021);
        let orders = cfg.orders.len().max(1) as f64;
        let result = Self::build(cfg, device, &mut |name, shape| {
            let n: usize = shape.iter().product();
            let leaf = name.rsplit('.').next().unwrap_or("");
            Ok(if name == "entropy.out.bias" {
                vec![2.0; n]
            } else if name.starts_with("escape.") {
                // The escape starts as one more logit of zero.
                vec![0.0; n]
            } else if leaf == "gamma" {
                vec![1.0; n]
            } else if leaf == "bias" {
                vec![0.0; n]
            } else if name.starts_with("tables.") {
                let s = 1.0 / orders.sqrt();
                (0..n).map(|_| (rng.normal() * s) as f32).collect()
            } else {
                let bound = 1.0 / (shape[0] as f64).sqrt();
                (0..n)
                    .map(|_| ((rng.unit() * 2.0 - 1.0) * bound) as f32)
                    .collect()
            })
        });
        result.expect("initialisation produces every tensor with its shape")
    }

    /// Builds the model from tensor values: `get(name, shape)` returns the elements (C order)
    /// of every tensor of [`HashMlpConfig::tensors`].
    ///
    /// # Errors
    /// Whatever `get` returns; a value with the wrong number of elements is
    /// [`ModelError::InvalidCheckpoint`].
    pub fn build(
        cfg: &HashMlpConfig,
        device: &Device,
        get: TensorSource<'_>,
    ) -> Result<Self, ModelError> {
        let mut take = |name: &str, shape: &[usize]| -> Result<Vec<f32>, ModelError> {
            let data = get(name, shape)?;
            if data.len() != shape.iter().product::<usize>() {
                return Err(ModelError::InvalidCheckpoint(format!(
                    "tensor {name} has {} elements (expected shape {shape:?})",
                    data.len()
                )));
            }
            Ok(data)
        };
        let (d, h, g) = (cfg.d_model, cfg.d_hidden, cfg.entropy_hidden);
        let mut tables = Vec::with_capacity(cfg.orders.len());
        for (j, &rows) in cfg.rows.iter().enumerate() {
            let data = take(&format!("tables.{j}.weight"), &[rows, d])?;
            tables.push(Embedding {
                weight: param(data, [rows, d], device),
            });
        }
        let mut linear = |name: &str, i: usize, o: usize| -> Result<Linear, ModelError> {
            Ok(Linear {
                weight: param(take(&format!("{name}.weight"), &[i, o])?, [i, o], device),
                bias: Some(param(take(&format!("{name}.bias"), &[o])?, [o], device)),
            })
        };
        let hidden = linear("hidden", d, h)?;
        let head = linear("head", h, VOCAB_OUT)?;
        let entropy = EntropyHead {
            proj: linear("entropy.proj", d, g)?,
            out: linear("entropy.out", g, 1)?,
        };
        let escape = if cfg.escape {
            let mut tables = Vec::new();
            for (i, j) in cfg.escape_tables().into_iter().enumerate() {
                let rows = cfg.rows[j];
                let data = take(&format!("escape.tables.{i}.weight"), &[rows, 1])?;
                tables.push(Embedding {
                    weight: param(data, [rows, 1], device),
                });
            }
            let bias = param(take("escape.bias", &[1])?, [1], device);
            Some(EscapeHead {
                tables,
                bias,
                reads: cfg.escape_tables(),
            })
        } else {
            None
        };
        let gamma = take("norm.gamma", &[d])?;
        Ok(Self {
            tables,
            norm: RmsNorm {
                gamma: param(gamma, [d], device),
                epsilon: cfg.norm_eps as f64,
            },
            hidden,
            head,
            entropy,
            escape,
        })
    }

    /// Every parameter as a checkpoint tensor, named by its burn path.
    pub fn to_tensors(&self) -> Vec<CkptTensor> {
        let mut export = Export::default();
        self.visit(&mut export);
        export.out
    }

    /// Both heads for every position: `rows[j]` holds order `j`'s table rows, `[B, L]`.
    /// With `detach_trunk`, the entropy head reads the trunk without passing gradients to it.
    pub fn forward(&self, rows: &[Tensor<2, Int>], detach_trunk: bool) -> Outputs {
        let mut e = self.tables[0].forward(rows[0].clone()); // [B, L, F]
        for (table, r) in self.tables.iter().zip(rows).skip(1) {
            e = e + table.forward(r.clone());
        }
        let trunk = if detach_trunk {
            e.clone().detach()
        } else {
            e.clone()
        };
        let s = relu(self.entropy.proj.forward(trunk)); // [B, L, g]
        let entropy = self.entropy.out.forward(s).squeeze_dim::<2>(2); // [B, L]
        let escape = self.escape.as_ref().map(|esc| {
            let mut z = esc.bias.val().reshape([1, 1, 1]); // [1, 1, 1]
            for (table, &j) in esc.tables.iter().zip(&esc.reads) {
                z = z + table.forward(rows[j].clone()); // [B, L, 1]
            }
            z
        });
        let logits = self
            .head
            .forward(relu(self.hidden.forward(self.norm.forward(e)))); // [B, L, 256]
        Outputs {
            logits,
            escape,
            entropy,
        }
    }
}

/// A batch assembled on the host: `B` windows right-padded to the longest, `L` positions.
pub struct HostBatch {
    /// Rows `B`.
    pub rows: usize,
    /// Positions per row `L`.
    pub len: usize,
    /// Per order, the table rows `[B, L]` (0 in the padding).
    table_rows: Vec<Vec<i64>>,
    targets: Vec<i64>,
    weights: Vec<f32>,
    /// Positions that count in the loss.
    pub counted: usize,
}

impl HostBatch {
    /// Assembles `windows` (each with `start < end`) with [`engine::arch::inputs`].
    pub fn new(cfg: &HashMlpConfig, windows: &[Window<'_>]) -> Self {
        Self::with_row_noise(cfg, windows, 0.0)
    }

    /// As [`new`](Self::new), then each row of a hashed table of whole bytes (order 2 and up)
    /// is replaced, with probability `noise`, by a row drawn uniformly from that table
    /// ([`FamilyHyper::row_noise`]). The draws depend only on each window's `start` and `end`,
    /// so a batch is the same whenever it is assembled (and a resumed run equals an
    /// uninterrupted one).
    pub fn with_row_noise(cfg: &HashMlpConfig, windows: &[Window<'_>], noise: f64) -> Self {
        let rows = windows.len();
        let len = windows.iter().map(|w| w.end - w.start).max().unwrap_or(0);
        let k = cfg.orders.len();
        let mut b = Self {
            rows,
            len,
            table_rows: vec![vec![0; rows * len]; k],
            targets: vec![0; rows * len],
            weights: vec![0.0; rows * len],
            counted: 0,
        };
        let noisy: Vec<usize> = (0..k)
            .filter(|&j| cfg.orders[j] >= 2 && cfg.mask(j) == engine::arch::FULL_MASK)
            .collect();
        for (r, w) in windows.iter().enumerate() {
            let inputs = engine::arch::inputs(cfg, w.doc, w.start, w.end);
            let mut rng = SplitMix64::new((w.start as u64) << 24 ^ w.end as u64 ^ 0x006e_6f69_7365);
            for (p, t) in (w.start..w.end).enumerate() {
                let at = r * len + p;
                for j in 0..k {
                    b.table_rows[j][at] = inputs[p * k + j] as i64;
                }
                if noise > 0.0 {
                    for &j in &noisy {
                        if rng.unit() < noise {
                            b.table_rows[j][at] = (rng.next_u64() % cfg.rows[j] as u64) as i64;
                        }
                    }
                }
                b.targets[at] = w.doc[t] as i64;
                if t >= w.count_from {
                    b.weights[at] = 1.0;
                    b.counted += 1;
                }
            }
        }
        b
    }

    /// The table rows of every order on `device`, `[B, L]` each.
    pub fn inputs(&self, device: &Device) -> Vec<Tensor<2, Int>> {
        self.table_rows
            .iter()
            .map(|v| Tensor::from_data(TensorData::new(v.clone(), [self.rows, self.len]), device))
            .collect()
    }

    /// Target bytes `[B, L]`.
    pub fn targets(&self, device: &Device) -> Tensor<2, Int> {
        Tensor::from_data(
            TensorData::new(self.targets.clone(), [self.rows, self.len]),
            device,
        )
    }

    /// Loss weights `[B, L]`: 1 where the position counts, else 0.
    pub fn weights(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(self.weights.clone(), [self.rows, self.len]),
            device,
        )
    }
}

/// The next-byte log-probabilities, `[B, L, 256]`: `log_softmax(logits)`, or with an escape
/// logit `z` (`[B, L, 1]`) `ln(q_v + q_z / 256)` where `q` is the 257-way softmax of
/// `[logits, z]` (a mixture of the softmax over the 256 bytes and the uniform distribution).
pub fn log_probs(logits: Tensor<3>, escape: Option<Tensor<3>>) -> Tensor<3> {
    let Some(z) = escape else {
        return log_softmax(logits, 2);
    };
    let v = logits.dims()[2];
    // With m = max(max_v l_v, z) (a constant: it cancels), a_v = e^(l_v - m) + e^(z - m) / 256
    // and S = Σ_v a_v, the probabilities are a_v / S.
    let m = logits.clone().max_dim(2).max_pair(z.clone()).detach(); // [B, L, 1]
    let share = (z - m.clone()).exp().div_scalar(v as f32); // [B, L, 1]
    let a = (logits - m).exp() + share; // [B, L, 256]
    let s = a.clone().sum_dim(2); // [B, L, 1]
    // a_v >= e^(z - m) / 256 > 0 unless that underflows; the floor keeps the log finite.
    a.clamp_min(f32::MIN_POSITIVE).log() - s.log()
}

/// Negative log-likelihood of the targets and entropy of the distribution, both in nats:
/// logits `[B, L, 256]`, escape `[B, L, 1]` ([`log_probs`]), targets `[B, L]` ->
/// `([B, L], [B, L])`.
pub fn nll_and_entropy(
    logits: Tensor<3>,
    escape: Option<Tensor<3>>,
    targets: Tensor<2, Int>,
) -> (Tensor<2>, Tensor<2>) {
    log_prob_terms(log_probs(logits, escape), targets)
}

/// [`nll_and_entropy`] from the log-probabilities `logp` ([`log_probs`]), `[B, L, 256]`.
fn log_prob_terms(logp: Tensor<3>, targets: Tensor<2, Int>) -> (Tensor<2>, Tensor<2>) {
    let nll = logp
        .clone()
        .gather(2, targets.unsqueeze_dim::<3>(2))
        .squeeze_dim::<2>(2)
        .neg();
    let h = (logp.clone().exp() * logp)
        .sum_dim(2)
        .squeeze_dim::<2>(2)
        .neg();
    (nll, h)
}

/// The `hashmlp` family.
pub(crate) struct HashMlpFamily;

impl Family for HashMlpFamily {
    type Config = HashMlpConfig;
    type Lm = HashMlpLm;

    const ARCH: &'static str = engine::ARCH;

    fn config(preset: &str, context: Option<usize>) -> Result<Self::Config, ModelError> {
        if context.is_some() {
            return Err(ModelError::InvalidOption(
                "--context applies to --arch conv (a hashmlp model's context is its largest order)"
                    .into(),
            ));
        }
        HashMlpConfig::preset(preset).ok_or_else(|| {
            ModelError::InvalidOption(format!(
                "unknown hashmlp preset {preset:?} (expected one of: {})",
                HashMlpConfig::PRESETS.join(", ")
            ))
        })
    }

    fn validate(cfg: &Self::Config) -> Result<(), String> {
        cfg.validate()
    }

    fn geometry(cfg: &Self::Config) -> Geometry {
        Geometry {
            context: cfg.context(),
            receptive_field: 0,
            max_order: cfg.context(),
        }
    }

    fn parameters(cfg: &Self::Config) -> usize {
        cfg.parameters()
    }

    fn flops_per_byte(cfg: &Self::Config) -> usize {
        cfg.flops_per_byte()
    }

    fn init(cfg: &Self::Config, seed: u64, device: &Device) -> Self::Lm {
        HashMlpLm::init(cfg, seed, device)
    }

    fn build(
        cfg: &Self::Config,
        device: &Device,
        get: TensorSource<'_>,
    ) -> Result<Self::Lm, ModelError> {
        HashMlpLm::build(cfg, device, get)
    }

    fn to_tensors(lm: &Self::Lm) -> Vec<CkptTensor> {
        lm.to_tensors()
    }

    /// The tables as `F16` (half the size; the engine widens them exactly), the rest `F32`.
    fn export(_cfg: &Self::Config, tensors: Vec<CkptTensor>) -> Vec<CkptTensor> {
        tensors
            .into_iter()
            .map(|t| match (&t.data, t.name.starts_with("tables.")) {
                (bltpatch_checkpoint::TensorData::F32(v), true) => {
                    CkptTensor::f16(t.name.clone(), t.shape.clone(), v)
                }
                _ => t,
            })
            .collect()
    }

    fn loss(
        lm: &Self::Lm,
        cfg: &Self::Config,
        windows: &[Window<'_>],
        extra: &FamilyHyper,
        device: &Device,
    ) -> Loss {
        let batch = HostBatch::with_row_noise(cfg, windows, extra.row_noise);
        let out = lm.forward(&batch.inputs(device), !extra.entropy_trains_tables);
        let eps = extra.label_smoothing as f32;
        let logp = log_probs(out.logits, out.escape);
        // With label smoothing, the cross-entropy against the uniform distribution: [B, L].
        let uniform = (eps > 0.0).then(|| logp.clone().mean_dim(2).squeeze_dim::<2>(2).neg());
        let (nll, h) = log_prob_terms(logp, batch.targets(device));
        let w = batch.weights(device);
        let n = batch.counted.max(1) as f32;
        let target = match uniform {
            Some(u) => nll.clone().mul_scalar(1.0 - eps) + u.mul_scalar(eps),
            None => nll.clone(),
        };
        let ce = (target * w.clone()).sum().div_scalar(n);
        let nll = (nll * w.clone()).sum().div_scalar(n);
        let err = out.entropy - h.detach();
        let mse = (err.clone() * err * w).sum().div_scalar(n);
        Loss {
            total: ce + mse.mul_scalar(extra.entropy_weight as f32),
            nll,
            counted: batch.counted,
        }
    }

    fn score(
        lm: &Self::Lm,
        cfg: &Self::Config,
        windows: &[Window<'_>],
        device: &Device,
    ) -> Vec<Scored> {
        let batch = HostBatch::new(cfg, windows);
        let out = lm.forward(&batch.inputs(device), false);
        let (nll, h) = nll_and_entropy(out.logits, out.escape, batch.targets(device));
        let nll: Vec<f32> = nll.try_into_vec_as::<f32>().expect("f32 losses");
        let h: Vec<f32> = h.try_into_vec_as::<f32>().expect("f32 entropies");
        let pred: Vec<f32> = out
            .entropy
            .clamp(0.0, 256f32.ln())
            .try_into_vec_as::<f32>()
            .expect("f32 entropies");
        windows
            .iter()
            .enumerate()
            .map(|(r, w)| {
                let from = r * batch.len + (w.count_from - w.start);
                let to = r * batch.len + (w.end - w.start);
                Scored {
                    entropies: pred[from..to].to_vec(),
                    nll: nll[from..to].to_vec(),
                    distribution_entropies: Some(h[from..to].to_vec()),
                }
            })
            .collect()
    }

    fn engine(
        cfg: &Self::Config,
        tensors: &[CkptTensor],
    ) -> Result<Box<dyn FinalScorer>, ModelError> {
        let engine = HashMlpModel::from_tensors(cfg.clone(), |name, _| {
            tensor_data(tensors, name)
                .ok_or_else(|| EngineError::InvalidConfig(format!("no tensor {name}")))
        })
        .map_err(|e| ModelError::InvalidCheckpoint(format!("the trained weights: {e}")))?;
        Ok(Box::new(engine))
    }
}
