//! The `"hashmlp"` entropy model: hashed n-gram tables feeding two small heads, one that predicts
//! the next byte (for bits/byte) and one that predicts the entropy of that prediction directly
//! (for segmentation), so that a byte of segmentation costs a few table look-ups and a few dozen
//! additions and multiplications instead of a neural network and a 256-way softmax.
//!
//! ```
//! use bltpatch_core::EntropyModel;
//! use bltpatch_engine::hashmlp::{HashMlpConfig, HashMlpModel};
//!
//! let model = HashMlpModel::random(HashMlpConfig::preset("tiny").unwrap(), 7);
//! let doc = b"the cat sat on the mat";
//! let mut h = vec![0f32; doc.len()];
//! model.entropies(doc, 0..doc.len(), &mut h);
//! assert!(h.iter().all(|&x| (0.0..=256f32.ln() + 1e-6).contains(&x)));
//!
//! // Any sub-range, and the byte-by-byte decoder, give the same bits.
//! let mut tail = vec![0f32; 5];
//! model.entropies(doc, 17..22, &mut tail);
//! assert_eq!(tail, h[17..22]);
//! let mut s = model.stream();
//! for (i, &b) in doc.iter().enumerate() {
//!     assert_eq!(s.entropy().to_bits(), h[i].to_bits());
//!     s.push(b);
//! }
//! ```
//!
//! # The model
//!
//! Position `t` of a document predicts byte `x[t]` from the context `x[t-C .. t)`, `C` = the
//! largest order (at most 8 bytes). For every order `n_j` of [`HashMlpConfig::orders`] a table
//! `E_j` (`[rows_j, F]`) holds one row per context: order 1 reads row `x[t-1]` (row 256 at the
//! start of the document), order `n >= 2` reads the row that hashes the key of the
//! `m = min(t, n)` bytes before `t` ([`arch::hashed_row`]: multiply-shift by a constant that
//! depends on the table and on `m`, so the shorter keys at the start of a document have rows
//! of their own), each byte and-ed with the table's byte mask (`0xff`, or `0xe0` for a table
//! of byte classes). Let `e = E_0[r_0] + E_1[r_1] + …` (`[F]`). Then:
//!
//! - **next-byte head** (bits/byte, [`EntropyModel::surprisals`]):
//!   `logits = head(relu(hidden(rmsnorm(e))))`, a 256-way softmax over `[F] -> [h] -> [256]`;
//!   with an [escape](HashMlpConfig::escape) logit `z = b + Σ_i s_i[r_(j_i)]` (one scalar per
//!   row of order 1 and of the class tables, [`HashMlpConfig::escape_tables`]), a 257-way
//!   softmax whose last share is spread evenly over the 256 bytes:
//!   `p_v = (e^l_v + e^z / 256) / (Σ_u e^l_u + e^z)`;
//! - **entropy head** (segmentation, [`EntropyModel::entropies`]):
//!   `H = clamp(out_b + Σ_i out_w[i] · relu(proj_b[i] + (e · proj_w)[i]))` with a hidden layer of
//!   `g` units (`[F] -> [g] -> [1]`), clamped to `[0, ln 256]`.
//!
//! **What `H` means here:** the entropy head's output, in nats. Training regresses it onto the
//! entropy of the next-byte head's own distribution at the same position (a stop-gradient
//! target, jointly with the next-byte cross-entropy), so `H` is the model's *prediction* of the
//! entropy of its next-byte distribution. It is not computed from that distribution: the 256-way
//! head runs only for bits/byte (and for [`HashMlpModel::distribution_entropies`], which gives
//! the entropy it was trained to match).
//!
//! Because the entropy head's first layer is linear in `e`, it is folded into the tables when
//! the model is built: `P_j = E_j · proj_w` (`[rows_j, g]`), and `P_j` is stored as 16-bit
//! integers in units of one power-of-two step `2^e` shared by all tables, so a byte of
//! segmentation reads one `g·2`-byte row per order, adds integers (exact in any order), and does
//! no matrix product at all.
//!
//! # Presets
//!
//! | preset | orders (rows) | `F` | `h` | `g` | parameters | checkpoint (tables F16) |
//! |---|---|---|---|---|---|---|
//! | `tiny` | 1 (257), 2 (2^12), 3, 4, 6 (2^14) | 32 | 256 | 8 | 1,786,705 | 3.7 MB |
//! | `small` | 1 (257), 2 (2^12), 3, 4, 5, 6 (2^14), 8 (2^13) | 48 | 256 | 8 | 3,826,673 | 7.8 MB |
//! | `base` | 1 (257), 2 (2^12), 3 (2^14), 4, 5, 6, 8 (2^13) | 64 | 512 | 8 | 3,589,521 | 7.5 MB |
//! | `broad` | 1 (257), 2 (2^12), 3, 4, 5, 6 (2^14), 8 (2^12), classes 8 (2^12) | 48 | 256 | 8 | 3,826,673 | 7.8 MB |
//!
//! `broad` is `small` with half of order 8's rows given to a table of byte *classes*
//! ([`HashMlpConfig::masks`]: the top three bits of each of the last 8 bytes), which every
//! script and every byte sequence shares with the training text: what follows a UTF-8 lead byte
//! in a script never seen, what follows bytes that are not text. It is the embedded default's
//! preset (measurements in `bltpatch_model`'s crate docs). No preset has the next-byte head's
//! escape logit ([`HashMlpConfig::escape`], measured and not used by the default); it changes
//! only bits/byte and the distribution the entropy head is trained to match, not the
//! arithmetic of `H`.
//!
//! Training, the measured candidates and what was dropped: `bltpatch_model`'s crate docs.
//!
//! # Canonical arithmetic
//!
//! As in the [conv engine](crate), every floating-point operation is one IEEE-754 binary32
//! operation with round-to-nearest-even, in an order fixed by the model; integer operations are
//! exact. The scalar [`reference`](mod@reference) spells it out:
//!
//! 1. **Folding** (once, when the model is built): `P_j[r][o] = 0.0`, then
//!    `P_j[r][o] = fma(proj_w[i][o], E_j[r][i], P_j[r][o])` for `i = 0..F` (the engine's dense
//!    kernel: vectorised across outputs `o`, so the same bits on every CPU).
//! 2. **Quantisation** (once): `M` = the largest `|P_j[r][o]|` over every table, `e` = the
//!    smallest integer `>= -126` with `M <= 4095 · 2^e` ([`quant_exponent`]), and
//!    `Q_j[r][o] = round_ties_even(P_j[r][o] / 2^e)` (exact in `f64`), an integer in
//!    `[-4095, 4095]`. A sum of at most 8 of them (one per order) fits in 16 bits.
//! 3. **Entropy** of a position with rows `r_j`: `q[o] = Σ_j Q_j[r_j][o]` (integers);
//!    `s[o] = proj_b[o] + (q[o] as f32) · 2^e` (an exact product, one rounded addition);
//!    `a[l] = out_w[l] · relu(s[l])` for the first 8 units, then
//!    `a[l] = a[l] + out_w[8c + l] · relu(s[8c + l])` for each further group `c` of 8 (a
//!    multiplication and an addition, never contracted); the fixed tree
//!    `z = ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`, `z = z + out_b`;
//!    `H = min(max(z, 0), ln 256)` (`max` as `relu`: `+0.0` for `z <= 0` and NaN). The tree is
//!    part of the definition, whatever the vector width: the AVX2 kernel (`vpaddw`, `vmaxps`,
//!    `vmulps`, `vaddps`, shuffles of the same tree) and the portable code compute the same
//!    operations.
//! 4. **Next-byte head**: `e` summed row by row in table order (plain additions from `E_0`),
//!    then RMSNorm, the hidden layer (bias then fma chain over inputs, ReLU), the 256 logits and
//!    the softmax, each exactly as the conv engine computes them ([`crate::reference`]). The
//!    escape logit is its bias, then `+ s_i[r_(j_i)]` for each of its tables in order; the
//!    mixture's surprisals and entropy follow [`reference`](mod@reference) (the maximum over the
//!    256 logits and then `z`, `expf` of the differences, the sums in byte order).
//!
//! The quantisation changes `H` by at most `orders · 2^e / 2 · Σ|out_w|` nats from the
//! unquantised head (a model test checks burn's head against the engine with that bound).
//! Table rows are integers computed with wrapping 64-bit multiplication: no floating point
//! enters them. The tables may be stored as `F16` in the checkpoint (widened exactly to `f32`),
//! or as row-scaled `I8` (`tables.{j}.weight` of 8-bit integers `q` and `F16` scales
//! `tables.{j}.weight.scale`, `[rows_j]`: `E_j[r][i] = (q[r][i] as f32) · s[r]`, one exact
//! product; [`HashMlpModel::quantized`]).
//!
//! # Evaluation and streaming
//!
//! `H[t]` reads nothing but the rows of position `t`, which depend on `x[t - C .. t)` and, for
//! `t < C`, on `t`: a range is evaluated with no warm-up, in blocks of 256 positions (rows of the
//! block first, then the head). The stream keeps the last 8 bytes and the position; a byte costs
//! one position of the same code.
//!
//! # Complexity
//!
//! Segmentation: per byte, one multiply-shift hash and one `g`-value row read per order, `g`
//! integer additions per order, then about `5·g` floating-point operations
//! ([`HashMlpConfig::flops_per_byte`]). Memory: the quantised tables take `2·g·Σ rows_j` bytes
//! (the working set of segmentation), the tables `4·F·Σ rows_j` (kept for the next-byte head).
//! Bits/byte: `2·(F·h + 256·h)` more per byte plus the softmax.

pub mod arch;
mod forward;
pub mod reference;
mod stream;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::path::Path;

use bltpatch_checkpoint::{Config, Tensor, Weights};
use bltpatch_core::{EntropyModel, EntropyStream};

pub use arch::{ARCH, HashMlpConfig};
pub use stream::HashMlpStream;

use crate::arch::VOCAB_OUT;
use crate::kernels::{self, Finish, LANES, Packed, Store};
use crate::{EngineError, checked_architecture, simd_available, uniform_weights};
use forward::{BLOCK, HeadState};

/// The escape logit's weights: `z = bias + Σ tables[i].1[row of table tables[i].0]`.
#[derive(Clone, Debug)]
struct Escape {
    /// `(j, escape.tables.{i}.weight)`: the index of the table read and one scalar per row.
    tables: Vec<(usize, Vec<f32>)>,
    /// `escape.bias`.
    bias: f32,
}

/// The `"hashmlp"` entropy model with its weights, ready for canonical inference.
///
/// Implements [`EntropyModel`]: `entropies` is the entropy head, `surprisals` the next-byte
/// head; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct HashMlpModel {
    cfg: HashMlpConfig,
    /// The tensors of `cfg.tensors()`, in that order.
    tensors: Vec<Vec<f32>>,
    names: Vec<(String, Vec<usize>)>,
    /// `Q_j = round(P_j / 2^e)` of every order (`[rows_j, g]`, one after the other), where
    /// `P_j = E_j · proj_w`.
    quantized: Vec<i16>,
    /// `2^e`, the value of one quantisation step.
    scale: f32,
    /// How the rows of positions `t >= 8` are found in `quantized`.
    fast: forward::FastRows,
    ent_bias: Vec<f32>,
    ent_out: Vec<f32>,
    ent_out_bias: f32,
    hidden: Packed,
    head: Packed,
    /// The escape logit, when [`HashMlpConfig::escape`].
    escape: Option<Escape>,
    simd: bool,
    /// Row strides of `F`- and `h`-wide activations.
    ds: usize,
    hs: usize,
}

impl HashMlpModel {
    /// Builds a model from its tensors: `get(name, shape)` returns the elements (C order) of
    /// each tensor listed by [`HashMlpConfig::tensors`], in that order.
    ///
    /// # Errors
    /// An invalid configuration, an error of `get`, a tensor with another number of elements
    /// than its shape's, or a non-finite weight.
    pub fn from_tensors(
        cfg: HashMlpConfig,
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
        Ok(Self::build(cfg, names, tensors, simd_available()))
    }

    /// Builds a model from a checkpoint's `config.json` and weights (tensors `F32` or `F16`,
    /// tables also row-scaled `I8`).
    ///
    /// # Errors
    /// `config.arch` is not `"hashmlp"`, invalid hyper-parameters, a `context` that differs
    /// from [`HashMlpConfig::context`], or a missing, mis-typed, mis-shaped or non-finite tensor.
    pub fn from_checkpoint(config: &Config, weights: &Weights) -> Result<Self, EngineError> {
        let cfg: HashMlpConfig = checked_architecture(
            config,
            ARCH,
            HashMlpConfig::validate,
            HashMlpConfig::context,
        )?;
        Self::from_tensors(cfg, |name, shape| Ok(weights.float(name, Some(shape))?.1))
    }

    /// Reads a checkpoint directory and builds the model.
    ///
    /// # Errors
    /// As [`bltpatch_checkpoint::read_checkpoint`] and [`HashMlpModel::from_checkpoint`].
    pub fn load(dir: &Path) -> Result<Self, EngineError> {
        let (config, weights) = bltpatch_checkpoint::read_checkpoint(dir)?;
        Self::from_checkpoint(&config, &weights)
    }

    /// A model with deterministic pseudo-random weights (a function of `cfg` and `seed`),
    /// scaled so that entropies spread over `(0, ln 256)`; table values are binary16 numbers, so
    /// that [`to_checkpoint_tensors`](Self::to_checkpoint_tensors) stores them exactly. For tests,
    /// examples and benchmarks.
    ///
    /// # Panics
    /// If `cfg` is invalid ([`HashMlpConfig::validate`]).
    pub fn random(cfg: HashMlpConfig, seed: u64) -> Self {
        if let Err(e) = cfg.validate() {
            panic!("invalid hashmlp configuration: {e}");
        }
        let mut uniform = uniform_weights(seed ^ 0x2545_f491_4f6c_dd1d);
        let (d, h, g) = (
            cfg.d_model as f32,
            cfg.d_hidden as f32,
            cfg.entropy_hidden as f32,
        );
        let k = cfg.orders.len() as f32;
        let names = cfg.tensors();
        let tensors = names
            .iter()
            .map(|(name, shape)| {
                let n: usize = shape.iter().product();
                let (offset, scale) = match name.as_str() {
                    "norm.gamma" => (1.0, 0.1),
                    "hidden.weight" => (0.0, (3.0 / d).sqrt()),
                    "head.weight" => (0.0, 2.0 * (3.0 / h).sqrt()),
                    "entropy.proj.weight" => (0.0, (3.0 / d).sqrt()),
                    "entropy.out.weight" => (0.3, 0.5 * (3.0 / g).sqrt()),
                    "entropy.out.bias" => (2.5, 0.5),
                    "escape.bias" => (-1.0, 1.0),
                    n if n.starts_with("escape.") => (0.0, 2.0),
                    n if n.starts_with("tables.") => (0.0, 1.0 / k.sqrt()),
                    _ => (0.0, 0.1),
                };
                let table = name.starts_with("tables.");
                (0..n)
                    .map(|_| {
                        let x = offset + scale * uniform();
                        if table { round_f16(x) } else { x }
                    })
                    .collect()
            })
            .collect();
        Self::build(cfg, names, tensors, simd_available())
    }

    fn build(
        cfg: HashMlpConfig,
        names: Vec<(String, Vec<usize>)>,
        tensors: Vec<Vec<f32>>,
        simd: bool,
    ) -> Self {
        let (d, h, g) = (cfg.d_model, cfg.d_hidden, cfg.entropy_hidden);
        let k = cfg.orders.len();
        let t = |name: &str| &tensors[names.iter().position(|(n, _)| n == name).unwrap()];
        let (hw, hb) = (t("hidden.weight"), t("hidden.bias"));
        // [d, h] = [in, out]
        let hidden = Packed::new(h, d, 1, |o, i, _| hw[i * h + o], hb);
        let (ow, ob) = (t("head.weight"), t("head.bias"));
        let head = Packed::new(VOCAB_OUT, h, 1, |o, i, _| ow[i * VOCAB_OUT + o], ob);
        let pw = t("entropy.proj.weight");
        let proj = Packed::new(g, d, 1, |o, i, _| pw[i * g + o], &vec![0.0; g]);
        let folded: Vec<Vec<f32>> = (0..k).map(|j| fold(simd, &proj, &tensors[j], d)).collect();
        let (quantized, scale) = quantize(&folded);
        let escape = cfg.escape.then(|| Escape {
            tables: (cfg.escape_tables().into_iter().enumerate())
                .map(|(i, j)| (j, t(&format!("escape.tables.{i}.weight")).clone()))
                .collect(),
            bias: t("escape.bias")[0],
        });
        Self {
            fast: forward::FastRows::new(&cfg),
            quantized,
            scale,
            ent_bias: t("entropy.proj.bias").clone(),
            ent_out: t("entropy.out.weight").clone(),
            ent_out_bias: t("entropy.out.bias")[0],
            ds: d.next_multiple_of(LANES),
            hs: h.next_multiple_of(LANES),
            hidden,
            head,
            escape,
            simd,
            cfg,
            tensors,
            names,
        }
    }

    /// Forces the portable arithmetic path (no SIMD) even where AVX2 and FMA are available, and
    /// folds the tables again with it. Results are bit-identical; this exists to prove it.
    pub fn portable(self) -> Self {
        Self::build(self.cfg, self.names, self.tensors, false)
    }

    /// Whether this model runs the AVX2 + FMA kernels.
    pub fn uses_simd(&self) -> bool {
        self.simd
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &HashMlpConfig {
        &self.cfg
    }

    /// The elements (C order) of the tensor `name` of [`HashMlpConfig::tensors`], if it exists.
    pub fn tensor(&self, name: &str) -> Option<&[f32]> {
        self.names
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| self.tensors[i].as_slice())
    }

    /// The quantised entropy table of order index `j`, `[rows_j, g]` (row-major): each value
    /// times [`quantum`](Self::quantum) approximates the folded table `E_j · proj_w`.
    pub fn quantized_table(&self, j: usize) -> &[i16] {
        let start = self.fast.base[j];
        &self.quantized[start..start + self.cfg.rows[j] * self.cfg.entropy_hidden]
    }

    /// `2^e`, the value of one step of the quantised tables.
    pub fn quantum(&self) -> f32 {
        self.scale
    }

    /// Every tensor with its name and shape for
    /// [`bltpatch_checkpoint::write_checkpoint`], each table in the smallest storage that holds
    /// its values exactly: row-scaled `I8` (as after [`quantized`](Self::quantized); two
    /// tensors, see [`bltpatch_checkpoint::Weights::float`]), else `F16` when every value is a
    /// binary16 number (as after [`random`](Self::random) or a trainer's export), else `F32`;
    /// the other tensors `F32`.
    pub fn to_checkpoint_tensors(&self) -> Vec<Tensor> {
        let mut out = Vec::with_capacity(self.names.len() + self.cfg.rows.len());
        for ((name, shape), data) in self.names.iter().zip(&self.tensors) {
            let table = name.starts_with("tables.");
            if let Some((q, s)) = table
                .then(|| bltpatch_checkpoint::exact_rows(data, self.cfg.d_model))
                .flatten()
            {
                out.extend(Tensor::i8_rows(name.clone(), shape.clone(), q, s));
            } else if table && data.iter().all(|&x| round_f16(x).to_bits() == x.to_bits()) {
                out.push(Tensor::f16(name.clone(), shape.clone(), data));
            } else {
                out.push(Tensor::f32(name.clone(), shape.clone(), data.clone()));
            }
        }
        out
    }

    /// The same model with every table rounded to row-scaled 8-bit integers
    /// ([`bltpatch_checkpoint::quantize_rows`]: per row a binary16 scale `s` and `q` in
    /// `-127..=127`, each value becoming `q · s`): half the size of `F16` tables in a
    /// checkpoint ([`to_checkpoint_tensors`](Self::to_checkpoint_tensors) writes them as `I8`).
    /// An approximation: entropies and bits/byte move slightly, so a calibrated rule should be
    /// calibrated again. Quantising a quantised model changes nothing.
    ///
    /// # Errors
    /// [`EngineError::InvalidConfig`] when a table row's largest magnitude exceeds
    /// `127 · 65504` (beyond binary16 scales).
    pub fn quantized(&self) -> Result<Self, EngineError> {
        let d = self.cfg.d_model;
        let mut tensors = self.tensors.clone();
        for (j, table) in tensors.iter_mut().take(self.cfg.rows.len()).enumerate() {
            if bltpatch_checkpoint::exact_rows(table, d).is_some() {
                continue;
            }
            let (q, s) = bltpatch_checkpoint::quantize_rows(table, d).ok_or_else(|| {
                EngineError::InvalidConfig(format!("table {j} has values beyond 8-bit rows"))
            })?;
            for (row, (q, &h)) in table.chunks_exact_mut(d).zip(q.chunks_exact(d).zip(&s)) {
                let s = bltpatch_checkpoint::f16_to_f32(h);
                for (x, &q) in row.iter_mut().zip(q) {
                    *x = q as f32 * s;
                }
            }
        }
        Ok(Self::build(
            self.cfg.clone(),
            self.names.clone(),
            tensors,
            self.simd,
        ))
    }

    /// The same function with `factor` (a power of two `>= 2`) times as many rows in every
    /// hashed table of whole bytes (orders `>= 2`, mask [`arch::FULL_MASK`]); order 1 and the
    /// tables of byte classes keep theirs. Row `r` of a widened table is row `r / factor` of
    /// the old one: multiply-shift hashing ([`arch::hashed_row`]) with `log2(factor)` more
    /// bits finds a row whose top bits are the old row, so every key reads the values it read
    /// before and entropies, boundaries and bits/byte are bit-identical. The start of more
    /// training (`bltpatch train --init`) with fewer hash collisions, at `factor` times the
    /// memory of those tables.
    ///
    /// # Errors
    /// [`EngineError::InvalidConfig`] for a factor that is not a power of two `>= 2`, a model
    /// without such a table, or rows beyond `2^30`.
    pub fn widened(&self, factor: usize) -> Result<Self, EngineError> {
        if factor < 2 || !factor.is_power_of_two() {
            return Err(EngineError::InvalidConfig(format!(
                "the widening factor must be a power of two >= 2, not {factor}"
            )));
        }
        let wide: Vec<bool> = (0..self.cfg.orders.len())
            .map(|j| self.cfg.orders[j] >= 2 && self.cfg.mask(j) == arch::FULL_MASK)
            .collect();
        if !wide.contains(&true) {
            return Err(EngineError::InvalidConfig(
                "the model has no hashed table of whole bytes to widen".into(),
            ));
        }
        let mut cfg = self.cfg.clone();
        for (rows, _) in cfg.rows.iter_mut().zip(&wide).filter(|(_, w)| **w) {
            *rows = rows.checked_mul(factor).unwrap_or(usize::MAX);
        }
        cfg.validate().map_err(EngineError::InvalidConfig)?;
        // The escape logit reads only order 1 and the class tables, which keep their rows.
        let names = cfg.tensors();
        let tensors = names
            .iter()
            .map(|(name, _)| {
                let old = self.tensor(name).expect("the same tensor names");
                let table = name
                    .strip_prefix("tables.")
                    .and_then(|r| r.strip_suffix(".weight"))
                    .and_then(|j| j.parse::<usize>().ok());
                match table {
                    Some(j) if wide[j] => old
                        .chunks_exact(self.cfg.d_model)
                        .flat_map(|row| std::iter::repeat_n(row, factor).flatten())
                        .copied()
                        .collect(),
                    _ => old.to_vec(),
                }
            })
            .collect();
        Ok(Self::build(cfg, names, tensors, self.simd))
    }

    /// The `config.json` of a checkpoint of this model (no training summary, no calibration).
    pub fn checkpoint_config(&self) -> Config {
        let architecture =
            serde_json::to_value(&self.cfg).expect("a HashMlpConfig always serialises to JSON");
        Config::new(ARCH, self.cfg.context(), architecture)
    }

    /// Number of parameters.
    pub fn parameters(&self) -> usize {
        self.cfg.parameters()
    }

    /// A streaming state at the start of a document (the concrete type of
    /// [`EntropyModel::stream`]).
    pub fn hashmlp_stream(&self) -> HashMlpStream<'_> {
        HashMlpStream::new(self)
    }

    /// The entropy (nats) of the next-byte head's distribution for every `i` in `range`: what
    /// the entropy head was trained to predict (shapes as in [`EntropyModel::entropies`]).
    ///
    /// # Panics
    /// As [`EntropyModel::entropies`].
    pub fn distribution_entropies(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
        self.next_byte(doc, range, out, false);
    }

    /// `norm.gamma`, `[F]`.
    fn norm_gamma(&self) -> &[f32] {
        &self.tensors[self.cfg.orders.len()]
    }

    fn check(doc: &[u8], range: &Range<usize>, out: &[f32]) {
        assert!(
            range.start <= range.end && range.end <= doc.len(),
            "range out of bounds"
        );
        assert_eq!(
            out.len(),
            range.len(),
            "output length differs from the range's"
        );
    }

    /// The next-byte head over `range`: surprisals or distribution entropies.
    fn next_byte(&self, doc: &[u8], range: Range<usize>, out: &mut [f32], surprisal: bool) {
        Self::check(doc, &range, out);
        let k = self.cfg.orders.len();
        let mut rows = vec![0u32; BLOCK.min(range.len()).max(1) * k];
        let mut st = HeadState::new(self, BLOCK.min(range.len()).max(1));
        let mut s = range.start;
        while s < range.end {
            let n = BLOCK.min(range.end - s);
            forward::block_rows(self, doc, s, n, &mut rows);
            let what = if surprisal {
                Finish::Surprisal(&doc[s..s + n])
            } else {
                Finish::Entropy
            };
            let dst = &mut out[s - range.start..][..n];
            st.run(self, &rows, n, what, dst);
            s += n;
        }
    }

    /// `H` at position `t` from the `min(t, 8)` bytes before it (`prev`).
    fn entropy_at(&self, t: usize, prev: &[u8]) -> f32 {
        let mut out = [0f32];
        // `prev` as a document whose position `min(t, 8)` is `t`: rows depend on `t` only
        // through `min(t, C)`, and `C <= 8`.
        let mut doc = [0u8; arch::MAX_ORDER + 1];
        doc[..prev.len()].copy_from_slice(prev);
        let p = prev.len();
        debug_assert_eq!(p, t.min(arch::MAX_ORDER));
        forward::entropies_block(self, &doc[..p + 1], p, 1, &mut out);
        out[0]
    }
}

/// `P = E · proj` for every row of `table` (`[rows, d]`), with the dense kernel.
fn fold(simd: bool, proj: &Packed, table: &[f32], d: usize) -> Vec<f32> {
    let g = proj.padded_out();
    let rows = table.len() / d;
    let mut out = vec![0f32; rows * g];
    const CHUNK: usize = 1024;
    let ident: Vec<usize> = (0..CHUNK).collect();
    let mut r = 0;
    while r < rows {
        let n = CHUNK.min(rows - r);
        kernels::dense(
            simd,
            proj,
            &table[r * d..(r + n) * d],
            d,
            &ident,
            n,
            &mut out[r * g..(r + n) * g],
            g,
            Store::Plain,
        );
        r += n;
    }
    out
}

/// The largest magnitude of a quantised value: a sum of 8 of them (one per order) fits 16 bits.
pub const QUANT_MAX: i32 = 4095;

/// The exponent `e` of the quantisation step `2^e` for folded tables whose largest magnitude
/// is `max`: the smallest `e >= -126` with `max <= 4095 · 2^e` (`0` when `max` is `0`).
pub fn quant_exponent(max: f32) -> i32 {
    if max == 0.0 {
        return 0;
    }
    let fits = |e: i32| (max as f64) <= QUANT_MAX as f64 * 2f64.powi(e);
    let mut e = ((max as f64 / QUANT_MAX as f64).log2().ceil() as i32).clamp(-126, 127);
    while e < 127 && !fits(e) {
        e += 1;
    }
    while e > -126 && fits(e - 1) {
        e -= 1;
    }
    e
}

/// Quantises the folded tables (concatenated) with one step `2^e` for all of them: each value
/// becomes `round_ties_even(p / 2^e)` (exact arithmetic in `f64`), in `[-4095, 4095]`.
fn quantize(folded: &[Vec<f32>]) -> (Vec<i16>, f32) {
    let max = folded
        .iter()
        .flatten()
        .fold(0f32, |m, &x| if x.abs() > m { x.abs() } else { m });
    let e = quant_exponent(max);
    let step = 2f64.powi(e);
    let q = folded
        .iter()
        .flatten()
        .map(|&x| {
            let v = (x as f64 / step).round_ties_even();
            v.clamp(-QUANT_MAX as f64, QUANT_MAX as f64) as i16
        })
        .collect();
    (q, step as f32)
}

/// `x` rounded to the nearest binary16 value and widened back.
fn round_f16(x: f32) -> f32 {
    bltpatch_checkpoint::f16_to_f32(bltpatch_checkpoint::f32_to_f16(x))
}

impl EntropyModel for HashMlpModel {
    fn context(&self) -> usize {
        self.cfg.context()
    }

    /// The entropy head, single-threaded over `range`, in bounded memory.
    fn entropies(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
        Self::check(doc, &range, out);
        forward::entropies_block(self, doc, range.start, range.len(), out);
    }

    fn surprisals(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
        self.next_byte(doc, range, out, true);
    }

    fn stream(&self) -> Box<dyn EntropyStream + '_> {
        Box::new(self.hashmlp_stream())
    }
}
