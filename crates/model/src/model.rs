//! The "conv" entropy model ([`bltpatch_engine::arch`]) as a burn module, its inputs, its loss,
//! and the conversion of its parameters to and from checkpoint tensors.
//!
//! The module's fields are named so that burn's own parameter paths are the tensor names of
//! [`ConvConfig::tensors`]: `embed.weight`, `hash.{j}.weight`, `blocks.{l}.norm.gamma`,
//! `blocks.{l}.conv.weight`, `blocks.{l}.conv.bias`, `blocks.{l}.proj.weight`,
//! `blocks.{l}.proj.bias`, `norm.gamma`, `head.weight`, `head.bias`. Export walks the parameters
//! with a [`ModuleVisitor`], so a renamed field cannot silently produce a wrong checkpoint (a
//! test compares the names and shapes with [`ConvConfig::tensors`]).

use std::path::Path;

use bltpatch_checkpoint::{Config, Tensor as CkptTensor, Weights, read_checkpoint};
use bltpatch_engine::arch::{self, ConvConfig, VOCAB_IN, VOCAB_OUT};
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::prelude::{Device, Int, Tensor, TensorData};
use burn::tensor::activation::{log_softmax, relu};

use crate::error::ModelError;
use crate::rng::SplitMix64;

/// A causal dilated convolution computed as one matrix product over shifted copies of its
/// input: `c[t][o] = bias[o] + Σ_{j<k} Σ_{i<d} weight[o][i][j] · a[t - (k-1-j)·dilation][i]`,
/// with `a` zero before the start of the window.
#[derive(Module, Debug)]
pub struct CausalConv {
    /// `[f, d, k]` (output channels, input channels, taps), as burn's `Conv1d`.
    pub weight: Param<Tensor<3>>,
    /// `[f]`.
    pub bias: Param<Tensor<1>>,
    /// Spacing of the taps.
    pub dilation: usize,
}

impl CausalConv {
    /// `[B, L, d] -> [B, L, f]`.
    pub fn forward(&self, a: Tensor<3>) -> Tensor<3> {
        let [b, l, d] = a.dims();
        let [f, _, k] = self.weight.dims();
        let taps: Vec<Tensor<3>> = (0..k)
            .map(|j| shift_right(a.clone(), (k - 1 - j) * self.dilation))
            .collect();
        // [B, L, k·d], feature index j·d + i.
        let stacked = if k == 1 {
            taps.into_iter().next().unwrap()
        } else {
            Tensor::cat(taps, 2)
        };
        // weight [f, d, k] -> [k, d, f] -> [k·d, f], row index j·d + i.
        let w = self.weight.val().permute([2, 1, 0]).reshape([k * d, f]);
        let c = stacked.reshape([b * l, k * d]).matmul(w) + self.bias.val().unsqueeze_dim(0);
        c.reshape([b, l, f])
    }
}

/// Moves `a` (`[B, L, d]`) `s` positions later along `L`, filling with zeros: `out[t] = a[t-s]`.
fn shift_right(a: Tensor<3>, s: usize) -> Tensor<3> {
    if s == 0 {
        return a;
    }
    let [b, l, d] = a.dims();
    let device = a.device();
    if s >= l {
        return Tensor::zeros([b, l, d], &device);
    }
    let kept = a.slice([0..b, 0..l - s, 0..d]);
    Tensor::cat(vec![Tensor::zeros([b, s, d], &device), kept], 1)
}

/// One residual block: `h + proj(relu(conv(rmsnorm(h))))`.
#[derive(Module, Debug)]
pub struct ConvBlock {
    /// RMSNorm, `gamma: [d]`.
    pub norm: RmsNorm,
    /// The causal dilated convolution `d -> f`.
    pub conv: CausalConv,
    /// Linear `f -> d`, weight `[f, d]` (burn's row layout, `[in, out]`), bias `[d]`.
    pub proj: Linear,
}

impl ConvBlock {
    /// `[B, L, d] -> [B, L, d]`.
    pub fn forward(&self, h: Tensor<3>) -> Tensor<3> {
        let a = self.norm.forward(h.clone());
        let c = relu(self.conv.forward(a));
        h + self.proj.forward(c)
    }
}

/// The whole "conv" model. Position `t` of a window predicts byte `t` of the document.
#[derive(Module, Debug)]
pub struct ConvLm {
    /// Byte-token embedding `[257, d]` (token 256 = beginning of document).
    pub embed: Embedding,
    /// One hashed n-gram table `[hash_buckets, d]` per hash order.
    pub hash: Vec<Embedding>,
    /// The residual blocks, one per dilation.
    pub blocks: Vec<ConvBlock>,
    /// Final RMSNorm, `gamma: [d]`.
    pub norm: RmsNorm,
    /// Output layer `d -> 256`, weight `[d, 256]`, bias `[256]`.
    pub head: Linear,
}

/// The model's input for a batch of `B` windows of `L` positions.
#[derive(Clone, Debug)]
pub struct ModelInput {
    /// Byte tokens `tok(t)`, `[B, L]` (256 = beginning of document).
    pub tokens: Tensor<2, Int>,
    /// Per hash order, the bucket at every position, `[B, L]` (0 where the term is absent).
    pub hash: Vec<Tensor<2, Int>>,
    /// Per hash order, `[B, L, 1]` with 1 where the hashed term is present and 0 where it is
    /// absent (`t < n_j` in a document); `None` when it is present everywhere.
    pub hash_mask: Vec<Option<Tensor<3>>>,
}

impl ConvLm {
    /// A freshly initialised model (deterministic in `seed`, independent of burn's global RNG):
    /// embeddings `N(0, 1)` (hash tables `N(0, 1/√orders)`), convolution and linear weights
    /// uniform in `±1/√fan_in` (block projections further scaled by `1/√(2·blocks)`), biases
    /// zero, norm gains one. Parameters require gradients when `device` is an autodiff device.
    pub fn init(cfg: &ConvConfig, seed: u64, device: &Device) -> Self {
        let mut rng = SplitMix64::new(seed ^ 0x006c_7470_6174_6368);
        let orders = cfg.hash_orders.len().max(1) as f64;
        let blocks = cfg.dilations.len().max(1) as f64;
        let result: Result<Self, ModelError> = Self::build(cfg, device, |name, shape| {
            let n: usize = shape.iter().product();
            let leaf = name.rsplit('.').next().unwrap_or("");
            let data: Vec<f32> = if leaf == "gamma" {
                vec![1.0; n]
            } else if leaf == "bias" {
                vec![0.0; n]
            } else if name == "embed.weight" {
                (0..n).map(|_| rng.normal() as f32).collect()
            } else if name.starts_with("hash.") {
                let s = 1.0 / orders.sqrt();
                (0..n).map(|_| (rng.normal() * s) as f32).collect()
            } else {
                // Linear [in, out] and conv [out, in, k]: fan_in = in (· k).
                let fan_in = if shape.len() == 3 {
                    shape[1] * shape[2]
                } else {
                    shape[0]
                };
                let mut bound = 1.0 / (fan_in as f64).sqrt();
                if name.ends_with("proj.weight") {
                    bound /= (2.0 * blocks).sqrt();
                }
                (0..n)
                    .map(|_| ((rng.unit() * 2.0 - 1.0) * bound) as f32)
                    .collect()
            };
            Ok(data)
        });
        result.expect("initialisation produces every tensor with its shape")
    }

    /// Builds the model from tensor values: `get(name, shape)` returns the elements (C order)
    /// of the tensor `name` of shape `shape`, for every tensor of [`ConvConfig::tensors`].
    ///
    /// # Errors
    /// Whatever `get` returns, or [`ModelError::Checkpoint`]-style errors it produces; a value
    /// with the wrong number of elements is reported as [`ModelError::InvalidCheckpoint`].
    pub fn build(
        cfg: &ConvConfig,
        device: &Device,
        mut get: impl FnMut(&str, &[usize]) -> Result<Vec<f32>, ModelError>,
    ) -> Result<Self, ModelError> {
        let (d, f, k) = (cfg.d_model, cfg.d_hidden, cfg.kernel_size);
        let mut take = |name: String, shape: Vec<usize>| -> Result<Vec<f32>, ModelError> {
            let data = get(&name, &shape)?;
            if data.len() != shape.iter().product::<usize>() {
                return Err(ModelError::InvalidCheckpoint(format!(
                    "tensor {name} has {} elements (expected shape {shape:?})",
                    data.len()
                )));
            }
            Ok(data)
        };
        let embed = Embedding {
            weight: param(
                take("embed.weight".into(), vec![VOCAB_IN, d])?,
                [VOCAB_IN, d],
                device,
            ),
        };
        let mut hash = Vec::with_capacity(cfg.hash_orders.len());
        for j in 0..cfg.hash_orders.len() {
            let shape = [cfg.hash_buckets, d];
            let data = take(format!("hash.{j}.weight"), shape.to_vec())?;
            hash.push(Embedding {
                weight: param(data, shape, device),
            });
        }
        let mut blocks = Vec::with_capacity(cfg.dilations.len());
        for (l, &dilation) in cfg.dilations.iter().enumerate() {
            let gamma = take(format!("blocks.{l}.norm.gamma"), vec![d])?;
            let cw = take(format!("blocks.{l}.conv.weight"), vec![f, d, k])?;
            let cb = take(format!("blocks.{l}.conv.bias"), vec![f])?;
            let pw = take(format!("blocks.{l}.proj.weight"), vec![f, d])?;
            let pb = take(format!("blocks.{l}.proj.bias"), vec![d])?;
            blocks.push(ConvBlock {
                norm: rms_norm(gamma, cfg.norm_eps, device),
                conv: CausalConv {
                    weight: param(cw, [f, d, k], device),
                    bias: param(cb, [f], device),
                    dilation,
                },
                proj: Linear {
                    weight: param(pw, [f, d], device),
                    bias: Some(param(pb, [d], device)),
                },
            });
        }
        let norm = rms_norm(take("norm.gamma".into(), vec![d])?, cfg.norm_eps, device);
        let head = Linear {
            weight: param(
                take("head.weight".into(), vec![d, VOCAB_OUT])?,
                [d, VOCAB_OUT],
                device,
            ),
            bias: Some(param(
                take("head.bias".into(), vec![VOCAB_OUT])?,
                [VOCAB_OUT],
                device,
            )),
        };
        Ok(Self {
            embed,
            hash,
            blocks,
            norm,
            head,
        })
    }

    /// Builds the model from checkpoint weights, checking every tensor's name, dtype and shape.
    ///
    /// # Errors
    /// [`ModelError::Checkpoint`] naming a missing tensor or a wrong dtype or shape.
    pub fn from_weights(
        cfg: &ConvConfig,
        weights: &Weights,
        device: &Device,
    ) -> Result<Self, ModelError> {
        Self::build(cfg, device, |name, shape| {
            Ok(weights.f32(name, Some(shape))?.1)
        })
    }

    /// Loads a "conv" checkpoint directory: its configuration, hyper-parameters and model.
    ///
    /// # Errors
    /// A missing or invalid checkpoint, another architecture, or invalid hyper-parameters.
    pub fn load(dir: &Path, device: &Device) -> Result<(Self, ConvConfig, Config), ModelError> {
        let (config, weights) = read_checkpoint(dir)?;
        let cfg = conv_config_of(&config, dir)?;
        let model = Self::from_weights(&cfg, &weights, device)?;
        Ok((model, cfg, config))
    }

    /// Every parameter as a checkpoint tensor, named by burn's parameter path (see the module
    /// docs), in traversal order.
    pub fn to_tensors(&self) -> Vec<CkptTensor> {
        let mut export = Export::default();
        self.visit(&mut export);
        export.out
    }

    /// Logits for every position of every window: `[B, L, 256]`.
    pub fn forward(&self, input: &ModelInput) -> Tensor<3> {
        let mut x = self.embed.forward(input.tokens.clone()); // [B, L, d]
        for ((table, idx), mask) in self.hash.iter().zip(&input.hash).zip(&input.hash_mask) {
            let e = table.forward(idx.clone());
            x = x + match mask {
                Some(m) => e * m.clone(),
                None => e,
            };
        }
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.head.forward(self.norm.forward(x))
    }
}

/// The [`ConvConfig`] stored in a checkpoint's `config.json`, checked.
///
/// # Errors
/// [`ModelError::ForeignCheckpoint`] for another architecture or unreadable hyper-parameters.
pub fn conv_config_of(config: &Config, dir: &Path) -> Result<ConvConfig, ModelError> {
    let foreign = |reason: String| ModelError::ForeignCheckpoint {
        path: dir.to_path_buf(),
        reason,
    };
    if config.arch != arch::ARCH {
        return Err(foreign(format!(
            "architecture {:?}, this trainer builds {:?}",
            config.arch,
            arch::ARCH
        )));
    }
    let cfg: ConvConfig = serde_json::from_value(config.architecture.clone())
        .map_err(|e| foreign(format!("invalid conv hyper-parameters: {e}")))?;
    cfg.validate().map_err(foreign)?;
    if cfg.context() != config.context {
        return Err(foreign(format!(
            "context {} does not match the hyper-parameters' context {}",
            config.context,
            cfg.context()
        )));
    }
    Ok(cfg)
}

/// A parameter `[shape]` from row-major `data`, tracked for gradients on an autodiff device.
pub(crate) fn param<const D: usize>(
    data: Vec<f32>,
    shape: [usize; D],
    device: &Device,
) -> Param<Tensor<D>> {
    let t = Tensor::<D>::from_data(TensorData::new(data, shape), device);
    let t = if device.is_autodiff() {
        t.require_grad()
    } else {
        t
    };
    Param::initialized(ParamId::new(), t)
}

fn rms_norm(gamma: Vec<f32>, eps: f32, device: &Device) -> RmsNorm {
    let d = gamma.len();
    RmsNorm {
        gamma: param(gamma, [d], device),
        epsilon: eps as f64,
    }
}

/// Collects every float parameter with its burn path (the checkpoint tensor names).
#[derive(Default)]
pub(crate) struct Export {
    path: Vec<String>,
    pub(crate) out: Vec<CkptTensor>,
}

impl ModuleVisitor for Export {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val().inner();
        let shape = t.dims().to_vec();
        let data = t
            .try_into_vec_as::<f32>()
            .expect("float parameters convert to f32");
        self.out
            .push(CkptTensor::f32(self.path.join("."), shape, data));
    }
}

/// One window of a document for a batch: positions `start..end` are evaluated (the model sees
/// zeros before `start`, and the hashed terms read the document's bytes before `start`), and
/// positions `count_from..end` count in the loss.
#[derive(Clone, Copy, Debug)]
pub struct Window<'a> {
    /// The whole document (its byte 0 is preceded by the beginning-of-document token).
    pub doc: &'a [u8],
    /// First evaluated position.
    pub start: usize,
    /// One past the last evaluated position (`<= doc.len()`).
    pub end: usize,
    /// First position that counts in the loss (`start..=end`).
    pub count_from: usize,
}

/// A batch assembled on the host: `B` windows right-padded to the longest, `L` positions.
#[derive(Clone, Debug)]
pub struct HostBatch {
    /// Rows `B`.
    pub rows: usize,
    /// Positions per row `L`.
    pub len: usize,
    tokens: Vec<i64>,
    hash: Vec<Vec<i64>>,
    mask: Vec<Vec<f32>>,
    any_absent: Vec<bool>,
    targets: Vec<i64>,
    weights: Vec<f32>,
    /// Positions that count in the loss.
    pub counted: usize,
}

impl HostBatch {
    /// Assembles `windows` (at least one, each with `start < end`) with [`arch::inputs`].
    pub fn new(cfg: &ConvConfig, windows: &[Window<'_>]) -> Self {
        let rows = windows.len();
        let len = windows.iter().map(|w| w.end - w.start).max().unwrap_or(0);
        let orders = cfg.hash_orders.len();
        let mut b = Self {
            rows,
            len,
            tokens: vec![0; rows * len],
            hash: vec![vec![0; rows * len]; orders],
            mask: vec![vec![1.0; rows * len]; orders],
            any_absent: vec![false; orders],
            targets: vec![0; rows * len],
            weights: vec![0.0; rows * len],
            counted: 0,
        };
        for (r, w) in windows.iter().enumerate() {
            let (tokens, buckets) = arch::inputs(cfg, w.doc, w.start, w.end);
            for (p, t) in (w.start..w.end).enumerate() {
                let at = r * len + p;
                b.tokens[at] = tokens[p] as i64;
                for j in 0..orders {
                    let bucket = buckets[p * orders + j];
                    if bucket == u32::MAX {
                        b.mask[j][at] = 0.0;
                        b.any_absent[j] = true;
                    } else {
                        b.hash[j][at] = bucket as i64;
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

    /// The model input on `device`.
    pub fn input(&self, device: &Device) -> ModelInput {
        let shape = [self.rows, self.len];
        let int =
            |v: &Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v.clone(), shape), device);
        ModelInput {
            tokens: int(&self.tokens),
            hash: self.hash.iter().map(int).collect(),
            hash_mask: self
                .mask
                .iter()
                .zip(&self.any_absent)
                .map(|(m, &absent)| {
                    absent.then(|| {
                        Tensor::<3>::from_data(
                            TensorData::new(m.clone(), [self.rows, self.len, 1]),
                            device,
                        )
                    })
                })
                .collect(),
        }
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

    /// The loss weight of row `r`, position `p`.
    pub fn weight_at(&self, r: usize, p: usize) -> f32 {
        self.weights[r * self.len + p]
    }
}

/// Negative log-likelihood in nats of each target: `[B, L, 256]`, `[B, L] -> [B, L]`.
pub fn nll(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<2> {
    let logp = log_softmax(logits, 2);
    logp.gather(2, targets.unsqueeze_dim::<3>(2))
        .squeeze_dim::<2>(2)
        .neg()
}

/// The mean negative log-likelihood (nats) over the counted positions of `batch`: the
/// training loss, a one-element tensor.
pub fn loss(model: &ConvLm, batch: &HostBatch, device: &Device) -> Tensor<1> {
    let logits = model.forward(&batch.input(device));
    let nll = nll(logits, batch.targets(device));
    (nll * batch.weights(device))
        .sum()
        .div_scalar(batch.counted.max(1) as f32)
}

/// Entropy (nats) of the predicted distribution and negative log-likelihood (nats) of the
/// target at every position: `[B, L, 256]`, `[B, L] -> ([B, L], [B, L])`.
pub fn entropy_and_nll(logits: Tensor<3>, targets: Tensor<2, Int>) -> (Tensor<2>, Tensor<2>) {
    let logp = log_softmax(logits, 2);
    let nll = logp
        .clone()
        .gather(2, targets.unsqueeze_dim::<3>(2))
        .squeeze_dim::<2>(2)
        .neg();
    let h = (logp.clone().exp() * logp)
        .sum_dim(2)
        .squeeze_dim::<2>(2)
        .neg();
    (h, nll)
}

/// The entropies `H[i]` (nats) of a whole document, computed with the burn forward in windows
/// of `chunk` positions (each preceded by a warm-up of the receptive field), so every position
/// sees its full context. `model` must not be on an autodiff device (use `model.valid()`).
pub fn entropies(
    model: &ConvLm,
    cfg: &ConvConfig,
    doc: &[u8],
    chunk: usize,
    device: &Device,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(doc.len());
    for_each_chunk(model, cfg, &[doc], chunk, 8, device, |_, h, _| {
        out.extend_from_slice(h)
    });
    out
}

/// Evaluates documents in chunks of `chunk` counted positions (with a warm-up of the receptive
/// field before each), `rows` chunks per batch, and calls `f(doc_index, entropies, nlls)` for
/// each chunk in document order, with the values of its counted positions.
pub(crate) fn for_each_chunk(
    model: &ConvLm,
    cfg: &ConvConfig,
    docs: &[&[u8]],
    chunk: usize,
    rows: usize,
    device: &Device,
    mut f: impl FnMut(usize, &[f32], &[f32]),
) {
    let r = cfg.receptive_field();
    let chunk = chunk.max(1);
    let mut pending: Vec<(usize, Window<'_>)> = Vec::new();
    let mut flush = |pending: &mut Vec<(usize, Window<'_>)>| {
        if pending.is_empty() {
            return;
        }
        let windows: Vec<Window<'_>> = pending.iter().map(|(_, w)| *w).collect();
        let batch = HostBatch::new(cfg, &windows);
        let logits = model.forward(&batch.input(device));
        let (h, nll) = entropy_and_nll(logits, batch.targets(device));
        let h: Vec<f32> = h.try_into_vec_as::<f32>().expect("f32 entropies");
        let nll: Vec<f32> = nll.try_into_vec_as::<f32>().expect("f32 losses");
        for (row, (d, w)) in pending.iter().enumerate() {
            let from = row * batch.len + (w.count_from - w.start);
            let to = row * batch.len + (w.end - w.start);
            f(*d, &h[from..to], &nll[from..to]);
        }
        pending.clear();
    };
    for (d, doc) in docs.iter().enumerate() {
        let mut s = 0;
        while s < doc.len() {
            let e = (s + chunk).min(doc.len());
            pending.push((
                d,
                Window {
                    doc,
                    start: s.saturating_sub(r),
                    end: e,
                    count_from: s,
                },
            ));
            if pending.len() == rows {
                flush(&mut pending);
            }
            s = e;
        }
    }
    flush(&mut pending);
}
