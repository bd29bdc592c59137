//! The model families that [`train`](crate::train()) builds, and what the training loop needs of
//! each: hyper-parameters, initialisation, the loss of a batch of windows, held-out evaluation,
//! export to checkpoint tensors and the canonical engine that scores the final checkpoint.
//!
//! The loop ([`crate::train()`]) is generic over the crate-private trait `Family`; the
//! implementations are `conv` ([`crate::model`]) and `hashmlp` ([`crate::hashmlp`]).

use std::fmt::Debug;
use std::str::FromStr;

use bltpatch_checkpoint::Tensor as CkptTensor;
use bltpatch_core::EntropyModel;
use burn::module::Module;
use burn::prelude::{Device, Tensor};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ModelError;
use crate::model::Window;

/// Hands out a tensor's elements (C order) by name and shape, to build a model.
pub type TensorSource<'a> = &'a mut dyn FnMut(&str, &[usize]) -> Result<Vec<f32>, ModelError>;

/// A model family that `train` can build (`--arch` on the command line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Arch {
    /// The causal dilated-convolution byte model ([`crate::ConvLm`], `"conv"`).
    #[default]
    Conv,
    /// Hashed n-gram tables with a next-byte head and a distilled entropy head
    /// ([`crate::HashMlpLm`], `"hashmlp"`).
    HashMlp,
}

impl Arch {
    /// Every family name, as accepted by [`FromStr`] and written to `config.json`.
    pub const NAMES: [&'static str; 2] = ["conv", "hashmlp"];

    /// The family's name (its `config.json` `arch`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::Conv => "conv",
            Arch::HashMlp => "hashmlp",
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "conv" => Ok(Arch::Conv),
            "hashmlp" => Ok(Arch::HashMlp),
            _ => Err(ModelError::InvalidOption(format!(
                "unknown architecture {s:?} (expected one of: {})",
                Arch::NAMES.join(", ")
            ))),
        }
    }
}

/// The shape of the training windows a family needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// The context `C` in bytes.
    pub context: usize,
    /// Warm-up positions before the counted part of a window (the receptive field of a
    /// convolution stack; 0 when a position's input is the bytes before it alone).
    pub receptive_field: usize,
    /// Bytes before a window's first position that its inputs read.
    pub max_order: usize,
}

/// The loss of one training batch.
pub struct Loss {
    /// What the optimizer minimises (one element).
    pub total: Tensor<1>,
    /// Mean next-byte cross-entropy in nats over the counted positions (one element): what
    /// `train_bpb` reports.
    pub nll: Tensor<1>,
    /// Positions that count in the loss.
    pub counted: usize,
}

/// The values of one evaluated window's counted positions.
pub struct Scored {
    /// `H` as segmentation uses it (nats).
    pub entropies: Vec<f32>,
    /// Next-byte negative log-likelihood (nats).
    pub nll: Vec<f32>,
    /// For families whose `H` is a prediction of the entropy of their next-byte distribution:
    /// that entropy (nats), to measure how well `H` predicts it.
    pub distribution_entropies: Option<Vec<f32>>,
}

/// What the training loop needs of a model family.
pub(crate) trait Family: 'static {
    /// The hyper-parameters (`config.json`'s `architecture`).
    type Config: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync;
    /// The burn module.
    type Lm: Module;

    /// `config.json`'s `arch`.
    const ARCH: &'static str;

    /// The hyper-parameters of a preset, with an optional minimum context.
    fn config(preset: &str, context: Option<usize>) -> Result<Self::Config, ModelError>;
    /// Checks hyper-parameters.
    fn validate(cfg: &Self::Config) -> Result<(), String>;
    /// The window shape.
    fn geometry(cfg: &Self::Config) -> Geometry;
    /// Number of parameters.
    fn parameters(cfg: &Self::Config) -> usize;
    /// Floating-point operations per byte of segmentation.
    fn flops_per_byte(cfg: &Self::Config) -> usize;

    /// A freshly initialised model (deterministic in `seed`).
    fn init(cfg: &Self::Config, seed: u64, device: &Device) -> Self::Lm;
    /// A model from tensor values: `get(name, shape)` returns each tensor's elements.
    fn build(
        cfg: &Self::Config,
        device: &Device,
        get: TensorSource<'_>,
    ) -> Result<Self::Lm, ModelError>;
    /// Every parameter as an `F32` checkpoint tensor named by its burn path.
    fn to_tensors(lm: &Self::Lm) -> Vec<CkptTensor>;
    /// The tensors as the checkpoint stores them (a family may round some to `F16`).
    fn export(cfg: &Self::Config, tensors: Vec<CkptTensor>) -> Vec<CkptTensor> {
        let _ = cfg;
        tensors
    }

    /// The loss of a batch of windows (at least one).
    fn loss(
        lm: &Self::Lm,
        cfg: &Self::Config,
        windows: &[Window<'_>],
        extra: &FamilyHyper,
        device: &Device,
    ) -> Loss;
    /// Evaluates windows with a model on a device without autodiff.
    fn score(
        lm: &Self::Lm,
        cfg: &Self::Config,
        windows: &[Window<'_>],
        device: &Device,
    ) -> Vec<Scored>;
    /// The canonical engine for exported checkpoint tensors ([`Family::export`]).
    fn engine(
        cfg: &Self::Config,
        tensors: &[CkptTensor],
    ) -> Result<Box<dyn FinalScorer>, ModelError>;
}

/// The canonical engine that scores the final checkpoint.
pub(crate) trait FinalScorer: EntropyModel {
    /// For a family whose `H` predicts the entropy of its own next-byte distribution: writes
    /// that entropy for `range` into `out` and returns `true`; otherwise `false`.
    fn distribution_entropies(
        &self,
        doc: &[u8],
        range: std::ops::Range<usize>,
        out: &mut [f32],
    ) -> bool {
        let _ = (doc, range, out);
        false
    }
}

impl FinalScorer for bltpatch_engine::ConvModel {}

impl FinalScorer for bltpatch_engine::hashmlp::HashMlpModel {
    fn distribution_entropies(
        &self,
        doc: &[u8],
        range: std::ops::Range<usize>,
        out: &mut [f32],
    ) -> bool {
        bltpatch_engine::hashmlp::HashMlpModel::distribution_entropies(self, doc, range, out);
        true
    }
}

/// Family-specific training hyper-parameters (saved with the resume state).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct FamilyHyper {
    /// `hashmlp`: weight of the entropy head's squared error (nats²) next to the
    /// cross-entropy (nats).
    #[serde(default = "default_entropy_weight")]
    pub entropy_weight: f64,
    /// `hashmlp`: whether the entropy head's error also trains the tables (the default), or
    /// only the head learns from it and the tables from the cross-entropy alone.
    #[serde(default = "yes")]
    pub entropy_trains_tables: bool,
    /// `hashmlp`: label smoothing `ε` of the next-byte cross-entropy, in `[0, 1)`: the
    /// training target is `(1 - ε) · one-hot + ε · uniform` (0, the default: none). The
    /// reported bits/byte are always those of the plain cross-entropy.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub label_smoothing: f64,
    /// `hashmlp`: the probability, in `[0, 1)`, that a training position reads a random row
    /// instead of its own in each hashed table of whole bytes (order 2 and up; order 1 and the
    /// tables of byte classes are never replaced), so that the model learns not to trust one
    /// table's row blindly, as it must on text whose contexts were never seen and whose rows
    /// belong to other contexts (0, the default: none). Evaluation reads the true rows.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub row_noise: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn default_entropy_weight() -> f64 {
    1.0
}

fn yes() -> bool {
    true
}

impl Default for FamilyHyper {
    fn default() -> Self {
        Self {
            entropy_weight: default_entropy_weight(),
            entropy_trains_tables: true,
            label_smoothing: 0.0,
            row_noise: 0.0,
        }
    }
}

/// Looks up the `F32` data of a tensor by name in exported tensors.
pub(crate) fn tensor_data(tensors: &[CkptTensor], name: &str) -> Option<Vec<f32>> {
    tensors
        .iter()
        .find(|t| t.name == name)
        .and_then(|t| match &t.data {
            bltpatch_checkpoint::TensorData::F32(v) => Some(v.clone()),
            bltpatch_checkpoint::TensorData::F16(v) => Some(
                v.iter()
                    .map(|&h| bltpatch_checkpoint::f16_to_f32(h))
                    .collect(),
            ),
            _ => None,
        })
}

/// The `conv` family ([`crate::model`]).
pub(crate) struct ConvFamily;

impl Family for ConvFamily {
    type Config = bltpatch_engine::ConvConfig;
    type Lm = crate::model::ConvLm;

    const ARCH: &'static str = bltpatch_engine::arch::ARCH;

    fn config(preset: &str, context: Option<usize>) -> Result<Self::Config, ModelError> {
        crate::train::conv_config(preset, context)
    }

    fn validate(cfg: &Self::Config) -> Result<(), String> {
        cfg.validate()
    }

    fn geometry(cfg: &Self::Config) -> Geometry {
        Geometry {
            context: cfg.context(),
            receptive_field: cfg.receptive_field(),
            max_order: cfg.max_order(),
        }
    }

    fn parameters(cfg: &Self::Config) -> usize {
        cfg.parameters()
    }

    fn flops_per_byte(cfg: &Self::Config) -> usize {
        cfg.flops_per_byte()
    }

    fn init(cfg: &Self::Config, seed: u64, device: &Device) -> Self::Lm {
        crate::model::ConvLm::init(cfg, seed, device)
    }

    fn build(
        cfg: &Self::Config,
        device: &Device,
        get: TensorSource<'_>,
    ) -> Result<Self::Lm, ModelError> {
        crate::model::ConvLm::build(cfg, device, get)
    }

    fn to_tensors(lm: &Self::Lm) -> Vec<CkptTensor> {
        lm.to_tensors()
    }

    fn loss(
        lm: &Self::Lm,
        cfg: &Self::Config,
        windows: &[Window<'_>],
        _extra: &FamilyHyper,
        device: &Device,
    ) -> Loss {
        let batch = crate::model::HostBatch::new(cfg, windows);
        let nll = crate::model::loss(lm, &batch, device);
        Loss {
            total: nll.clone(),
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
        let batch = crate::model::HostBatch::new(cfg, windows);
        let logits = lm.forward(&batch.input(device));
        let (h, nll) = crate::model::entropy_and_nll(logits, batch.targets(device));
        let h: Vec<f32> = h.try_into_vec_as::<f32>().expect("f32 entropies");
        let nll: Vec<f32> = nll.try_into_vec_as::<f32>().expect("f32 losses");
        windows
            .iter()
            .enumerate()
            .map(|(r, w)| {
                let from = r * batch.len + (w.count_from - w.start);
                let to = r * batch.len + (w.end - w.start);
                Scored {
                    entropies: h[from..to].to_vec(),
                    nll: nll[from..to].to_vec(),
                    distribution_entropies: None,
                }
            })
            .collect()
    }

    fn engine(
        cfg: &Self::Config,
        tensors: &[CkptTensor],
    ) -> Result<Box<dyn FinalScorer>, ModelError> {
        let engine = bltpatch_engine::ConvModel::from_tensors(cfg.clone(), |name, _| {
            tensor_data(tensors, name).ok_or_else(|| {
                bltpatch_engine::EngineError::InvalidConfig(format!("no tensor {name}"))
            })
        })
        .map_err(|e| ModelError::InvalidCheckpoint(format!("the trained weights: {e}")))?;
        Ok(Box::new(engine))
    }
}
