//! # bltpatch-engine
//!
//! The canonical, framework-free inference engine of bltpatch's neural entropy model, the
//! architecture `"conv"` defined in [`arch`]: a causal stack of dilated convolutions over byte
//! and hashed n-gram embeddings. Its `f32` results **are** the definition of `H`: the trainer
//! (on burn) approximates this function, the engine computes it, bit for bit the same on every
//! CPU, for every range, chunking and thread count, and byte by byte when streaming.
//!
//! The module [`hashmlp`] holds the second family, `"hashmlp"`: hashed n-gram tables with a
//! distilled entropy head that segments at a few table look-ups per byte, under the same
//! contract and reusing these kernels (the rest of this page is about `"conv"`).
//!
//! ```
//! use bltpatch_core::EntropyModel;
//! use bltpatch_engine::{ConvConfig, ConvModel};
//!
//! let model = ConvModel::random(ConvConfig::preset("tiny").unwrap(), 7);
//! let doc = b"the cat sat on the mat";
//! let mut h = vec![0f32; doc.len()];
//! model.entropies(doc, 0..doc.len(), &mut h);
//! assert!(h.iter().all(|&x| (0.0..=256f32.ln() + 1e-6).contains(&x)));
//!
//! // Any sub-range gives the same bits (the model re-reads its receptive field).
//! let mut tail = vec![0f32; 5];
//! model.entropies(doc, 17..22, &mut tail);
//! assert_eq!(tail, h[17..22]);
//!
//! // So does the byte-by-byte decoder.
//! let mut s = model.stream();
//! for (i, &b) in doc.iter().enumerate() {
//!     assert_eq!(s.entropy().to_bits(), h[i].to_bits());
//!     s.push(b);
//! }
//! ```
//!
//! ## Canonical arithmetic (why the bits are portable)
//!
//! Every operation is a single IEEE-754 binary32 operation with round-to-nearest-even, in an
//! order fixed by the model alone:
//!
//! - **Dot products** (convolution, projection, head, the RMSNorm sum of squares and the
//!   softmax's `Σ e·δ`) start from the bias (or `0.0`) and add one term at a time in increasing
//!   index order, each step a **fused multiply-add** `acc = fma(w, x, acc)`. The convolution
//!   reduces over `(tap j, input i)` with `j` outer; the projection over its `f` inputs; the head
//!   over its `d` inputs. An FMA is correctly rounded by definition, so it has one result on
//!   every machine: the x86-64 kernels use the hardware instruction (`vfmadd`, AVX2 + FMA,
//!   detected at run time), everywhere else [`libm::fmaf`] computes the same bits (see
//!   [`ConvModel::portable`] to force that path).
//! - SIMD kernels vectorise **across outputs** and tile across positions, never across a
//!   reduction index, so neither the SIMD width nor the number of positions evaluated together
//!   changes any output's sequence of operations. There is no BLAS, no reduction whose order
//!   depends on batch shape, chunking or thread count, and no contraction of `a·b + c` into an
//!   FMA where the definition has two operations (Rust never contracts).
//! - Other sums (the softmax's `Σ e`, embedding sums, the residual update) are plain sequential
//!   additions in index order; `sqrt` is IEEE's correctly rounded square root; `exp` and `ln`
//!   are [`libm::expf`] and [`libm::logf`] (a portable implementation, never the platform's).
//!   The x86-64 path evaluates `expf` eight lanes at a time with exactly `libm::expf`'s
//!   operations on `[-80, 80]` (other lanes call `libm::expf`); a test compares it with
//!   `libm::expf` on every `f32` of that domain.
//!
//! The exact formulas, operation by operation, are those of [`reference`](mod@reference), a plain scalar
//! implementation that the fast paths are tested against bit for bit.
//!
//! ## Batch evaluation and warm-up
//!
//! [`EntropyModel::entropies`] for `range = a..b` evaluates the window of positions
//! `w = a.saturating_sub(R) .. b`, `R` = [`ConvConfig::receptive_field`]. Activations before the
//! window start are zero vectors, exactly as before the document start; that padding only
//! reaches block outputs at positions `< w + R <= a`, so every position of `a..b` sees the same
//! values as in an evaluation of the whole document. Model inputs are computed from absolute
//! positions (the beginning-of-document token at position 0, hashed terms present when
//! `t >= n_j`), which for positions `>= C` never differ: `H[i]` is a function of
//! `x[max(0, i-C) .. i)` only.
//!
//! The window is processed in blocks of 256 positions. Each block runs layer by layer over its
//! positions with blocked kernels (6 positions × 16 outputs per register tile); the only state
//! carried from one block to the next is, per layer, a ring buffer of the last
//! `(k-1)·dil_l` normalised inputs, so memory is bounded whatever the range length (about
//! `(R + 256·L)·d + 256·(f + 2d + 256)` floats). Padding positions go through the same
//! operations as real ones. The head (final norm, `d × 256` projection and softmax) runs only for
//! positions in `a..b`.
//!
//! ## Streaming
//!
//! [`ConvModel::stream`] keeps the same per-layer ring buffers (capacity `(k-1)·dil_l + 1`) and
//! the last `n_max` bytes, and evaluates only the new position per byte with the same kernels
//! (one position × up to 64 outputs per tile), so it gives the batch path's bits. Cost per byte:
//! `O(L·(k·d·f + f·d) + d·256)` multiply-adds; [`EntropyStream::push`] without a preceding
//! [`EntropyStream::entropy`] skips the head.
//!
//! ## Complexity
//!
//! [`ConvModel::flops_per_byte`] = `2·(L·(k·d·f + f·d) + 256·d)` floating-point operations per
//! byte plus `O(L·d + 256)` for norms, embeddings and the softmax; a range of `n` bytes costs
//! `n + R` positions of the trunk and `n` of the head.

#![deny(missing_docs)]

pub mod arch;
mod forward;
pub mod hashmlp;
mod kernels;
pub mod reference;
mod stream;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::path::Path;

use bltpatch_checkpoint::{CheckpointError, Config, Tensor, Weights};
use bltpatch_core::{EntropyModel, EntropyStream};

pub use arch::{ARCH, ConvConfig};
pub use stream::ConvStream;

use forward::{BLOCK, State};
use kernels::{Finish, LANES, Packed};

/// Everything that can go wrong building a [`ConvModel`]. Each message is one line.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Reading the checkpoint or one of its tensors failed (missing tensor, wrong dtype or
    /// shape, corrupt file, ...).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The checkpoint is of another architecture.
    #[error("checkpoint architecture is {found:?}, this engine runs {expected:?}")]
    WrongArch {
        /// The `arch` of the checkpoint.
        found: String,
        /// The architecture that was asked for.
        expected: &'static str,
    },
    /// The hyper-parameters do not parse or do not describe a buildable model.
    #[error("invalid architecture: {0}")]
    InvalidConfig(String),
    /// `config.json`'s `context` differs from the one the hyper-parameters imply.
    #[error("checkpoint context is {found} bytes but the architecture's is {expected}")]
    ContextMismatch {
        /// The `context` of `config.json`.
        found: usize,
        /// [`ConvConfig::context`].
        expected: usize,
    },
    /// A tensor handed to [`ConvModel::from_tensors`] has the wrong number of elements.
    #[error("tensor {name} has {found} elements (expected shape {expected:?})")]
    WrongSize {
        /// The tensor's name.
        name: String,
        /// Its number of elements.
        found: usize,
        /// The shape that the architecture requires.
        expected: Vec<usize>,
    },
    /// A tensor holds NaN or an infinity.
    #[error("tensor {name} holds a non-finite value ({value}) at index {index}")]
    NonFinite {
        /// The tensor's name.
        name: String,
        /// The flat index (C order) of the first non-finite element.
        index: usize,
        /// The value.
        value: f32,
    },
}

/// The `"conv"` entropy model with its weights, ready for canonical inference.
///
/// Implements [`EntropyModel`] (batch entropies and surprisals over any range, and a streaming
/// state); see the [crate docs](crate) for the arithmetic and the evaluation scheme.
#[derive(Clone, Debug)]
pub struct ConvModel {
    cfg: ConvConfig,
    /// The tensors of `cfg.tensors()`, in that order, as stored in checkpoints.
    tensors: Vec<Vec<f32>>,
    names: Vec<(String, Vec<usize>)>,
    conv: Vec<Packed>,
    proj: Vec<Packed>,
    head: Packed,
    /// Whether the AVX2 + FMA kernels run (detected, and not forced off).
    simd: bool,
    /// Row stride of `d`-wide activations (`d` rounded up to the SIMD width).
    ds: usize,
    /// Row stride of `f`-wide activations.
    fs: usize,
}

/// Whether this CPU runs the hardware-FMA kernels (x86-64 with AVX2 and FMA).
pub fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl ConvModel {
    /// Builds a model from its tensors: `get(name, shape)` returns the elements (C order) of
    /// each tensor listed by [`ConvConfig::tensors`], in that order.
    ///
    /// # Errors
    /// An invalid configuration, an error of `get`, a tensor with another number of elements
    /// than its shape's, or a non-finite weight.
    pub fn from_tensors(
        cfg: ConvConfig,
        mut get: impl FnMut(&str, &[usize]) -> Result<Vec<f32>, EngineError>,
    ) -> Result<Self, EngineError> {
        cfg.validate().map_err(EngineError::InvalidConfig)?;
        let names = cfg.tensors();
        let mut tensors = Vec::with_capacity(names.len());
        for (name, shape) in &names {
            let data = get(name, shape)?;
            let expected: usize = shape.iter().product();
            if data.len() != expected {
                return Err(EngineError::WrongSize {
                    name: name.clone(),
                    found: data.len(),
                    expected: shape.clone(),
                });
            }
            if let Some(index) = data.iter().position(|x| !x.is_finite()) {
                return Err(EngineError::NonFinite {
                    name: name.clone(),
                    index,
                    value: data[index],
                });
            }
            tensors.push(data);
        }
        Ok(Self::build(cfg, names, tensors))
    }

    /// Builds a model from a checkpoint's `config.json` and weights.
    ///
    /// # Errors
    /// `config.arch` is not `"conv"`, `config.architecture` is not a valid [`ConvConfig`],
    /// `config.context` differs from [`ConvConfig::context`], or a tensor is missing, of another
    /// dtype or shape, or holds a non-finite value.
    pub fn from_checkpoint(config: &Config, weights: &Weights) -> Result<Self, EngineError> {
        let cfg: ConvConfig =
            checked_architecture(config, ARCH, ConvConfig::validate, ConvConfig::context)?;
        Self::from_tensors(cfg, |name, shape| Ok(weights.f32(name, Some(shape))?.1))
    }

    /// Reads a checkpoint directory (see [`bltpatch_checkpoint::read_checkpoint`]) and builds
    /// the model.
    ///
    /// # Errors
    /// As [`bltpatch_checkpoint::read_checkpoint`] and [`ConvModel::from_checkpoint`].
    pub fn load(dir: &Path) -> Result<Self, EngineError> {
        let (config, weights) = bltpatch_checkpoint::read_checkpoint(dir)?;
        Self::from_checkpoint(&config, &weights)
    }

    /// A model with deterministic pseudo-random weights (a function of `cfg` and `seed` only),
    /// scaled so that activations stay of order one and entropies spread over `(0, ln 256)`:
    /// for tests, examples and benchmarks.
    ///
    /// # Panics
    /// If `cfg` is invalid ([`ConvConfig::validate`]).
    pub fn random(cfg: ConvConfig, seed: u64) -> Self {
        if let Err(e) = cfg.validate() {
            panic!("invalid conv configuration: {e}");
        }
        let mut uniform = uniform_weights(seed ^ 0x5851_f42d_4c95_7f2d);
        let (d, f, k) = (
            cfg.d_model as f32,
            cfg.d_hidden as f32,
            cfg.kernel_size as f32,
        );
        let names = cfg.tensors();
        let tensors = names
            .iter()
            .map(|(name, shape)| {
                let n: usize = shape.iter().product();
                let (offset, scale) = match name.rsplit('.').take(2).collect::<Vec<_>>()[..] {
                    ["weight", "embed"] => (0.0, 1.0),
                    ["gamma", _] => (1.0, 0.1),
                    ["weight", "conv"] => (0.0, (3.0 / (k * d)).sqrt()),
                    ["bias", "conv"] => (0.0, 0.1),
                    ["weight", "proj"] => (0.0, 0.5 * (3.0 / f).sqrt()),
                    ["bias", "proj"] => (0.0, 0.05),
                    ["weight", "head"] => (0.0, 2.0 * (3.0 / d).sqrt()),
                    ["bias", "head"] => (0.0, 0.5),
                    _ => (0.0, 0.5), // hashed embeddings
                };
                (0..n).map(|_| offset + scale * uniform()).collect()
            })
            .collect();
        Self::build(cfg, names, tensors)
    }

    fn build(cfg: ConvConfig, names: Vec<(String, Vec<usize>)>, tensors: Vec<Vec<f32>>) -> Self {
        let (d, f, k) = (cfg.d_model, cfg.d_hidden, cfg.kernel_size);
        let h = cfg.hash_orders.len();
        let mut conv = Vec::new();
        let mut proj = Vec::new();
        for l in 0..cfg.dilations.len() {
            let base = 1 + h + 5 * l;
            let (cw, cb) = (&tensors[base + 1], &tensors[base + 2]);
            // conv.weight: [f, d, k] = [out, in, tap]
            conv.push(Packed::new(f, d, k, |o, i, j| cw[(o * d + i) * k + j], cb));
            let (pw, pb) = (&tensors[base + 3], &tensors[base + 4]);
            // proj.weight: [f, d] = [in, out]
            proj.push(Packed::new(d, f, 1, |o, i, _| pw[i * d + o], pb));
        }
        let base = 1 + h + 5 * cfg.dilations.len();
        let (hw, hb) = (&tensors[base + 1], &tensors[base + 2]);
        // head.weight: [d, 256] = [in, out]
        let head = Packed::new(
            arch::VOCAB_OUT,
            d,
            1,
            |o, i, _| hw[i * arch::VOCAB_OUT + o],
            hb,
        );
        Self {
            ds: d.next_multiple_of(LANES),
            fs: f.next_multiple_of(LANES),
            cfg,
            tensors,
            names,
            conv,
            proj,
            head,
            simd: simd_available(),
        }
    }

    /// Forces the portable arithmetic path (scalar [`libm::fmaf`], no SIMD) even where the
    /// hardware-FMA kernels are available. Results are bit-identical; this exists to prove it.
    pub fn portable(mut self) -> Self {
        self.simd = false;
        self
    }

    /// Whether this model runs the AVX2 + FMA kernels (false after [`portable`](Self::portable)
    /// or on CPUs without them).
    pub fn uses_simd(&self) -> bool {
        self.simd
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &ConvConfig {
        &self.cfg
    }

    /// The elements (C order) of the tensor `name` of [`ConvConfig::tensors`], if it exists.
    pub fn tensor(&self, name: &str) -> Option<&[f32]> {
        self.names
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| self.tensors[i].as_slice())
    }

    /// Every tensor with its name and shape, in the order of [`ConvConfig::tensors`], for
    /// [`bltpatch_checkpoint::write_checkpoint`].
    pub fn to_checkpoint_tensors(&self) -> Vec<Tensor> {
        self.names
            .iter()
            .zip(&self.tensors)
            .map(|((name, shape), data)| Tensor::f32(name.clone(), shape.clone(), data.clone()))
            .collect()
    }

    /// The `config.json` of a checkpoint of this model: `arch` `"conv"`, its context and
    /// hyper-parameters, no training summary and no calibration.
    pub fn checkpoint_config(&self) -> Config {
        let architecture =
            serde_json::to_value(&self.cfg).expect("a ConvConfig always serialises to JSON");
        Config::new(ARCH, self.cfg.context(), architecture)
    }

    /// Floating-point operations per byte (see [`ConvConfig::flops_per_byte`]).
    pub fn flops_per_byte(&self) -> usize {
        self.cfg.flops_per_byte()
    }

    /// Number of parameters.
    pub fn parameters(&self) -> usize {
        self.cfg.parameters()
    }

    /// `R`, the positions of warm-up before a range (see [`ConvConfig::receptive_field`]).
    pub fn receptive_field(&self) -> usize {
        self.cfg.receptive_field()
    }

    /// A streaming state at the start of a document (the concrete type of
    /// [`EntropyModel::stream`]).
    pub fn conv_stream(&self) -> ConvStream<'_> {
        ConvStream::new(self)
    }

    /// `embed.weight`, `[257, d]`.
    fn embed(&self) -> &[f32] {
        &self.tensors[0]
    }

    /// `hash.{j}.weight`, `[buckets, d]`.
    fn hash(&self, j: usize) -> &[f32] {
        &self.tensors[1 + j]
    }

    /// `blocks.{l}.norm.gamma`, `[d]`.
    fn block_gamma(&self, l: usize) -> &[f32] {
        &self.tensors[1 + self.cfg.hash_orders.len() + 5 * l]
    }

    /// `norm.gamma`, `[d]`.
    fn norm_gamma(&self) -> &[f32] {
        &self.tensors[1 + self.cfg.hash_orders.len() + 5 * self.cfg.dilations.len()]
    }

    /// The batch path: entropies or surprisals of `range` into `out`.
    fn batch(&self, doc: &[u8], range: Range<usize>, out: &mut [f32], surprisal: bool) {
        assert!(
            range.start <= range.end && range.end <= doc.len(),
            "range out of bounds"
        );
        assert_eq!(
            out.len(),
            range.len(),
            "output length differs from the range's"
        );
        if range.is_empty() {
            return;
        }
        let (a, b) = (range.start, range.end);
        let w = a.saturating_sub(self.cfg.receptive_field());
        let mut st = State::new(self, BLOCK.min(b - w));
        let mut s = w;
        while s < b {
            let n = st.block().min(b - s);
            st.embed_block(self, doc, s, n);
            st.trunk(self, s - w, n);
            let first = a.max(s) - s;
            if first < n {
                let dst = &mut out[s + first - a..s + n - a];
                let what = if surprisal {
                    Finish::Surprisal(&doc[s + first..s + n])
                } else {
                    Finish::Entropy
                };
                st.head(self, first, n, what, dst);
            }
            s += n;
        }
    }
}

impl EntropyModel for ConvModel {
    fn context(&self) -> usize {
        self.cfg.context()
    }

    /// Single-threaded over `range`, in bounded memory; see the [crate docs](crate).
    fn entropies(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
        self.batch(doc, range, out, false);
    }

    fn surprisals(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
        self.batch(doc, range, out, true);
    }

    fn stream(&self) -> Box<dyn EntropyStream + '_> {
        Box::new(self.conv_stream())
    }
}

/// Uniform numbers in `[-1, 1)` from splitmix64 started at `state`: the deterministic weights of
/// the models' `random` constructors.
pub(crate) fn uniform_weights(mut state: u64) -> impl FnMut() -> f32 {
    move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 40) as f32) * (2.0 / (1u64 << 24) as f32) - 1.0
    }
}

/// The architecture of a checkpoint of family `arch`: the family's name, its `architecture`
/// object parsed and validated, and `context` equal to what that architecture implies.
pub(crate) fn checked_architecture<C: serde::de::DeserializeOwned>(
    config: &Config,
    arch: &'static str,
    validate: impl Fn(&C) -> Result<(), String>,
    context: impl Fn(&C) -> usize,
) -> Result<C, EngineError> {
    if config.arch != arch {
        return Err(EngineError::WrongArch {
            found: config.arch.clone(),
            expected: arch,
        });
    }
    let cfg: C = serde_json::from_value(config.architecture.clone())
        .map_err(|e| EngineError::InvalidConfig(e.to_string()))?;
    validate(&cfg).map_err(EngineError::InvalidConfig)?;
    if config.context != context(&cfg) {
        return Err(EngineError::ContextMismatch {
            found: config.context,
            expected: context(&cfg),
        });
    }
    Ok(cfg)
}
