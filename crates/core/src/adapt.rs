//! In-document adaptation of a model's next-byte probabilities: a bounded-context mixture of the
//! model, byte counts of the document's own recent past, and the uniform distribution.
//!
//! A static model is overconfident where its training data was silent (random bytes, scripts it
//! never saw, a document's own identifiers), and there text compressors that learn from the
//! document itself (gzip, xz) beat it easily. [`Adaptive`] wraps any [`EntropyModel`] and
//! replaces its surprisals `-ln p(x[t] | context)` by those of a mixture of these experts:
//!
//! 1. the **model**: `p_m(x[t])` = `exp(-surprisal)` of the wrapped model (the surprisal capped
//!    at 600 nats);
//! 2. the **counts**: an interpolated (Dirichlet back-off) estimate from the byte counts of the
//!    last `W` positions of the document ([`AdaptConfig::window`]), order `J` down to 0 and then
//!    uniform: `p_{-1} = 1/256`,
//!    `p_j = (n_j(c_j, x) + β_j · p_{j-1}) / (N_j(c_j) + β_j)`, where `c_j` is the `j` bytes
//!    before the predicted byte, `n_j(c, x)` counts the positions `i` of the window whose `j`
//!    preceding bytes are `c` and whose byte is `x`, and `N_j(c) = Σ_x n_j(c, x)`. Order 0 has
//!    one context, order 1 one per byte value, orders `j >= 2` hash their context to one of
//!    `2^row_bits` rows (contexts that share a row share their counts, so every row is still a
//!    distribution over the 256 bytes);
//!
//!    With a match model ([`AdaptConfig::match_min`] `= L > 0`) the counts expert also looks
//!    for the latest earlier position `p` of the window whose `L` preceding bytes hash to the
//!    same table slot as the last `L` bytes, and, if at least `L` bytes before `p` equal those
//!    before `t` (`n` of them, counted up to [`AdaptConfig::match_max`]), predicts `y = x[p]`:
//!    `p_a' = q · [x = y] + (1 - q) · p_a`, where `q = (hits + 1/2) / (tries + 1)` over the
//!    window's bytes whose match had the same length bucket `min(n, match_max) - L`. A second
//!    match model of a longer `L'` ([`AdaptConfig::match_long`]) applies the same way on top.
//!    Long repeats (UI strings, code, logs) then cost a fraction of a bit per byte;
//! 3. the **uniform** distribution, `1/256`;
//! 4. **blends** `λ · p_m + (1 - λ) · p_a` for a few fixed `λ` ([`AdaptConfig::blends`]), for
//!    text where the model and the counts each know part of what comes next;
//! 5. the **backed counts** ([`AdaptConfig::backed_prior`] `> 0`): the same back-off chain over
//!    the same counts, started from the model instead of the uniform distribution,
//!    `p'_{-1} = p_m`, `p'_j = (n_j(c_j, x) + γ β_j · p'_{j-1}) / (N_j(c_j) + γ β_j)`
//!    ([`AdaptConfig::backed_scale`] `γ`), with the match models on top: a blend whose share of
//!    the model depends on the context, large where the window has seen the context rarely,
//!    small where it has seen it often.
//!
//! The experts are weighted by how well each predicted the last `K` bytes
//! ([`AdaptConfig::memory`]): `w_e ∝ π_e · Π_s p_e(x[s])^α` over `s ∈ [t-K, t)`, the posterior
//! of a Bayesian mixture restarted `K` bytes ago (tempered by `α`). The mixture's probability is
//! `p(x[t]) = Σ_e w_e p_e(x[t])`, never less than `w_u / 256`: on bytes no expert can predict
//! (random data) the uniform expert takes over and bits/byte stay at 8 plus the cost of the
//! switch, while text the model knows keeps the model's probabilities.
//!
//! # What changes and what does not
//!
//! Only [`EntropyModel::surprisals`] (bits/byte, and what [`crate::chunked`] scores with them)
//! changes. [`EntropyModel::entropies`] and [`EntropyModel::stream`] are the wrapped model's:
//! patch boundaries are exactly those of the model without adaptation.
//!
//! # Cost
//!
//! A range of `n` bytes costs the wrapped model's surprisals over `n + K` positions, `W` count
//! updates of warm-up plus two per byte (`J + 1` orders each), one back-off chain of `J + 1`
//! orders per byte and expert of counts (two with the backed counts, over the same counts), per
//! match model `2W` table insertions of warm-up plus one look-up and one insertion per byte
//! (its match applied to each expert of counts), and `O(E)` per byte for
//! the weights (`E` experts, running sums). Memory: `2 · 256 · (1 + 256 + (J - 1) ·
//! 2^row_bits)` bytes of counts and `8 · 2^match_bits` of table per match model (the default:
//! 24 MB and twice 2 MB), kept per thread for its next call with the same parameters (each call
//! returns them to zero by letting its last window's events leave and emptying the slots it
//! filled, cheaper than fresh zeroed pages), and `O(W + K)` more per call. On one thread the
//! default's adaptation runs at about 1.6 MB/s, its model's 256-way head at 0.56 MB/s
//! (`cargo bench --bench adapt`).
//!
//! # Bounded context and exact arithmetic
//!
//! The surprisal of `x[t]` reads the model's surprisals at `[t-K, t]` and the counts of the
//! windows of those positions, hence the bytes `x[t - K - max(C, W + J) ..= t]`:
//! [`Adaptive::context`] is `K + max(C, W + J)`, and `K + 2W + match_max` with a match model
//! (the hit statistics of a window's bytes come from matches in the window before each). The
//! match table keeps the latest position of each slot, which for every position of a window
//! is the same whether the table was filled from the document's start or from a window
//! earlier, so a range needs no more than that. Counts are integers, added and removed exactly
//! as the window slides, so they are a function of the window alone; every floating-point step is
//! one IEEE-754 binary64 operation in a fixed order, `exp` and `ln` are [`libm::exp`] and
//! [`libm::log`]. Each expert's log-probability of a byte is rounded to a fixed-point integer
//! (units of `2^-32` nats), so the windowed sums are exact integers: a running sum gives the same
//! value wherever a range starts. A range, any chunking of it and the plain
//! [`reference_surprisals`] give the same bits.
//!
//! ```
//! use bltpatch_core::EntropyModel;
//! use bltpatch_core::adapt::{AdaptConfig, Adaptive};
//! use bltpatch_core::testing::HashModel;
//!
//! let model = Adaptive::new(HashModel::new(4), AdaptConfig::default()).unwrap();
//! let doc = b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabcabc";
//! let mut s = vec![0f32; doc.len()];
//! model.surprisals(doc, 0..doc.len(), &mut s);
//! // The counts learn the repetition: the last bytes cost far less than a uniform guess.
//! assert!(s[doc.len() - 1] < 0.5 * 256f32.ln());
//! // Any sub-range gives the same bits.
//! let mut tail = vec![0f32; 10];
//! model.surprisals(doc, 40..50, &mut tail);
//! assert_eq!(tail, s[40..50]);
//! ```

use std::ops::Range;

use crate::model::{EntropyModel, EntropyStream};

/// The largest count-model order `J` (contexts of up to 8 bytes).
pub const MAX_ORDER: usize = 8;

/// The largest window: counts are 16-bit.
pub const MAX_WINDOW: usize = u16::MAX as usize;

/// Hash multipliers of the count tables of orders `j >= 2` (index `j`); part of the definition.
const ROW_MULT: [u64; MAX_ORDER + 1] = [
    0,
    0,
    0x9e37_79b9_7f4a_7c15,
    0xc2b2_ae3d_27d4_eb4f,
    0x1656_67b1_9e37_79f9,
    0xd6e8_feb8_6659_fd93,
    0xa076_1d64_78bd_642f,
    0xe703_7ed1_a0b4_28db,
    0x8ebc_6af0_9c88_c6e3,
];

/// The parameters of in-document adaptation (the `adapt` record of a checkpoint's
/// `config.json`). See the [module docs](self) for the formulas.
///
/// A record with a field this version does not know is refused rather than scored without it
/// (a later version's expert would otherwise silently drop out of the mixture).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct AdaptConfig {
    /// `W`: the counts cover the last `window` positions (at most [`MAX_WINDOW`]).
    pub window: usize,
    /// `K`: the experts are weighted by their probabilities of the last `memory` bytes.
    pub memory: usize,
    /// `β_j` for the count orders `j = 0 ..= J` (`J = len - 1`, at most [`MAX_ORDER`]): how many
    /// counts the back-off to order `j - 1` is worth.
    pub concentration: Vec<f64>,
    /// Orders `j >= 2` hash their context to `2^row_bits` rows (4 to 16).
    pub row_bits: u32,
    /// `π`: prior weights of the experts, in the order model, counts, uniform.
    pub prior: [f64; 3],
    /// `α` in `(0, 1]`: the exponent of the windowed likelihoods.
    pub temper: f64,
    /// `λ` of each blend expert `λ · p_m + (1 - λ) · p_a` (each in `(0, 1)`, at most 8).
    #[cfg_attr(feature = "serde", serde(default))]
    pub blends: Vec<f64>,
    /// The prior weight of each blend expert.
    #[cfg_attr(feature = "serde", serde(default))]
    pub blend_prior: f64,
    /// `L`: with `L > 0` the counts expert also predicts the byte that followed the latest
    /// earlier occurrence, within the window, of the last `L` bytes (0: no match model).
    #[cfg_attr(feature = "serde", serde(default))]
    pub match_min: usize,
    /// The match table has `2^match_bits` slots (8 to 24).
    #[cfg_attr(feature = "serde", serde(default))]
    pub match_bits: u32,
    /// `L'`: a second match model for the last `L'` bytes (`L < L' <= match_max`; 0: none),
    /// applied to the counts expert after the first: `p_a'' = q' · [x = y'] + (1 - q') · p_a'`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub match_long: usize,
    /// Match lengths are measured up to this many bytes (`L` to 255).
    #[cfg_attr(feature = "serde", serde(default))]
    pub match_max: usize,
    /// The prior weight of the **backed counts** expert (0: none): the counts expert's back-off
    /// chain started from the model's probability instead of `1/256` (`p_{-1} = p_m`), so that
    /// a context the window has seen often follows its counts and a rare one the model; the
    /// match models apply on top as for the counts expert.
    #[cfg_attr(feature = "serde", serde(default))]
    pub backed_prior: f64,
    /// `γ`: the backed counts expert's back-off to order `j - 1` is worth `γ β_j` counts
    /// (`β_j` of [`AdaptConfig::concentration`]); larger values trust the model longer.
    #[cfg_attr(feature = "serde", serde(default))]
    pub backed_scale: f64,
}

impl Default for AdaptConfig {
    /// The values the embedded default model uses.
    fn default() -> Self {
        Self {
            window: MAX_WINDOW,
            memory: 96,
            concentration: vec![1.0, 3.0, 9.0, 27.0, 27.0],
            row_bits: 14,
            prior: [0.3, 0.15, 0.1],
            temper: 0.5,
            blends: vec![0.1, 0.3, 0.5, 0.7, 0.9],
            blend_prior: 0.1,
            match_min: 6,
            match_long: 20,
            match_bits: 18,
            match_max: 32,
            backed_prior: 0.3,
            backed_scale: 16.0,
        }
    }
}

impl AdaptConfig {
    /// Checks every parameter; the message names the first that is out of range.
    ///
    /// # Errors
    /// A message for the first invalid parameter.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_WINDOW).contains(&self.window) {
            return Err(format!(
                "adapt.window must be 1..={MAX_WINDOW}, not {}",
                self.window
            ));
        }
        if !(1..=4096).contains(&self.memory) {
            return Err(format!(
                "adapt.memory must be 1..=4096, not {}",
                self.memory
            ));
        }
        if self.concentration.is_empty() || self.concentration.len() > MAX_ORDER + 1 {
            return Err(format!(
                "adapt.concentration needs 1..={} values, not {}",
                MAX_ORDER + 1,
                self.concentration.len()
            ));
        }
        if let Some(b) = self
            .concentration
            .iter()
            .find(|b| !(b.is_finite() && **b >= 1e-3))
        {
            return Err(format!(
                "adapt.concentration values must be at least 0.001, not {b}"
            ));
        }
        if !(self.backed_prior.is_finite() && self.backed_prior >= 0.0) {
            return Err(format!(
                "adapt.backed_prior must be 0 or positive, not {}",
                self.backed_prior
            ));
        }
        if self.backed_prior > 0.0 && !(self.backed_scale.is_finite() && self.backed_scale >= 1e-3)
        {
            return Err(format!(
                "adapt.backed_scale must be at least 0.001 when adapt.backed_prior is positive, not {}",
                self.backed_scale
            ));
        }
        if !(4..=16).contains(&self.row_bits) {
            return Err(format!(
                "adapt.row_bits must be 4..=16, not {}",
                self.row_bits
            ));
        }
        if let Some(p) = self.prior.iter().find(|p| !(p.is_finite() && **p > 0.0)) {
            return Err(format!("adapt.prior values must be positive, not {p}"));
        }
        if !(self.temper.is_finite() && self.temper > 0.0 && self.temper <= 1.0) {
            return Err(format!(
                "adapt.temper must be in (0, 1], not {}",
                self.temper
            ));
        }
        // The uniform expert's weight must stay a normal number: `K α ln 256 <= 555` nats.
        if self.memory as f64 * self.temper > 100.0 {
            return Err(format!(
                "adapt.memory × adapt.temper must be at most 100, not {}",
                self.memory as f64 * self.temper
            ));
        }
        if self.blends.len() > 8 || self.blends.iter().any(|l| !(*l > 0.0 && *l < 1.0)) {
            return Err("adapt.blends must be at most 8 values in (0, 1)".into());
        }
        let prior_ok = self.blend_prior.is_finite() && self.blend_prior > 0.0;
        if !self.blends.is_empty() && !prior_ok {
            return Err(format!(
                "adapt.blend_prior must be positive, not {}",
                self.blend_prior
            ));
        }
        if self.match_max > 255 || self.match_bits > 24 {
            return Err("adapt.match_max must be at most 255, adapt.match_bits at most 24".into());
        }
        if self.match_long > 0 && !(self.match_min > 0 && self.match_long > self.match_min) {
            return Err(format!(
                "adapt.match_long must be 0 or more than match_min, not {}",
                self.match_long
            ));
        }
        if self.match_long > self.match_max.max(self.match_min) {
            return Err(format!(
                "adapt.match_long must be at most match_max, not {}",
                self.match_long
            ));
        }
        if self.match_min > 0 {
            if !(2..=32).contains(&self.match_min) {
                return Err(format!(
                    "adapt.match_min must be 0 or 2..=32, not {}",
                    self.match_min
                ));
            }
            if !(8..=24).contains(&self.match_bits) {
                return Err(format!(
                    "adapt.match_bits must be 8..=24, not {}",
                    self.match_bits
                ));
            }
            if !(self.match_min..=255).contains(&self.match_max) {
                return Err(format!(
                    "adapt.match_max must be match_min..=255, not {}",
                    self.match_max
                ));
            }
        }
        Ok(())
    }

    /// The experts' probabilities of one byte, in the order model, counts, uniform, blends,
    /// backed counts (`p_b`, when [`AdaptConfig::backed_prior`] is positive).
    fn experts(&self, p_m: f64, p_a: f64, p_b: f64, out: &mut Vec<f64>) {
        out.clear();
        out.extend([p_m, p_a, 1.0 / 256.0]);
        out.extend(self.blends.iter().map(|&l| l * p_m + (1.0 - l) * p_a));
        if self.backed_prior > 0.0 {
            out.push(p_b);
        }
    }

    /// The experts' prior weights, in the order of `experts`.
    fn priors(&self) -> impl Iterator<Item = f64> + '_ {
        let backed = (self.backed_prior > 0.0).then_some(self.backed_prior);
        self.prior
            .iter()
            .copied()
            .chain(self.blends.iter().map(|_| self.blend_prior))
            .chain(backed)
    }

    /// The lengths `L` (then `L'`) of the match models in use, in the order they apply.
    fn match_lengths(&self) -> Vec<usize> {
        [self.match_min, self.match_long]
            .into_iter()
            .filter(|&l| l > 0)
            .collect()
    }

    /// `J`, the highest count order.
    pub fn order(&self) -> usize {
        self.concentration.len() - 1
    }

    /// The context the adaptation adds to a model of context `c`: [`Adaptive::context`] is
    /// `memory + max(c, window + J)`, and at least `memory + 2 · window + match_max` with a
    /// match model (the match statistics of the window's bytes read a window further back).
    pub fn context_with(&self, c: usize) -> usize {
        let matches = if self.match_min > 0 {
            2 * self.window + self.match_max
        } else {
            0
        };
        self.memory + c.max(self.window + self.order()).max(matches)
    }

    fn rows(&self, j: usize) -> usize {
        match j {
            0 => 1,
            1 => 256,
            _ => 1 << self.row_bits,
        }
    }
}

/// The row of the order-`j` count table for the byte at `i`: a function of `doc[i-j .. i)` only.
/// Requires `i >= j`.
fn row(cfg: &AdaptConfig, doc: &[u8], j: usize, i: usize) -> usize {
    match j {
        0 => 0,
        1 => doc[i - 1] as usize,
        _ => {
            let mut key = 0u64;
            for &b in &doc[i - j..i] {
                key = (key << 8) | b as u64;
            }
            (key.wrapping_mul(ROW_MULT[j]) >> (64 - cfg.row_bits)) as usize
        }
    }
}

/// The counts experts' probabilities of one byte given the counts `n_j`, `N_j` of its context
/// at orders `0 ..= J'`: the back-off chain from `1/256` upwards (the counts expert) and, with
/// a backed counts expert, the chain from the model's probability `p_m` with `γ β_j` (only
/// computed when the expert takes part; else 0).
fn back_off(cfg: &AdaptConfig, p_m: f64, counts: impl Iterator<Item = (u32, u32)>) -> [f64; 2] {
    let backed = cfg.backed_prior > 0.0;
    let (mut p, mut q) = (1.0 / 256.0, if backed { p_m } else { 0.0 });
    for ((n, total), &beta) in counts.zip(&cfg.concentration) {
        p = (n as f64 + beta * p) / (total as f64 + beta);
        if backed {
            let gamma = cfg.backed_scale * beta;
            q = (n as f64 + gamma * q) / (total as f64 + gamma);
        }
    }
    [p, q]
}

/// The match table slot of position `i`: a hash of `doc[i-L .. i)`. Requires `i >= L`.
fn match_slot(cfg: &AdaptConfig, doc: &[u8], i: usize, l: usize) -> usize {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in &doc[i - l..i] {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - cfg.match_bits)) as usize
}

/// The match at `s` given the candidate position `p` (`p < s`, `p >= s - W`, same slot): the
/// predicted byte `doc[p]` and the length bucket `min(n, match_max) - L`, where `n` is the
/// number of equal bytes before `p` and before `s`; none when `n < L`.
fn match_at(cfg: &AdaptConfig, doc: &[u8], p: usize, s: usize, l: usize) -> Option<(u8, u8)> {
    let mut n = 0;
    while n < cfg.match_max && n < p && doc[p - 1 - n] == doc[s - 1 - n] {
        n += 1;
    }
    // `match_max <= 255`, so the bucket fits.
    (n >= l).then(|| (doc[p], (n - l) as u8))
}

/// The counts expert with the match: `q · [x = y] + (1 - q) · p_a`, `q = (hits + 1/2) /
/// (tries + 1)` of the matches of the same length bucket among the window's bytes.
fn with_match(p_a: f64, x: u8, m: Option<(u8, u8)>, hits: &[u32], tries: &[u32]) -> f64 {
    match m {
        None => p_a,
        Some((y, b)) => {
            let b = b as usize;
            let q = (hits[b] as f64 + 0.5) / (tries[b] as f64 + 1.0);
            (1.0 - q) * p_a + if x == y { q } else { 0.0 }
        }
    }
}

/// The fast path's state of one match model (`L` = `min`): the latest position of each slot,
/// and the hit statistics of the matches of the window's bytes per length bucket.
struct Matcher<'c> {
    cfg: &'c AdaptConfig,
    min: usize,
    /// `position + 1` of the latest inserted position of each slot (0: none).
    table: Vec<u64>,
    hits: Vec<u32>,
    tries: Vec<u32>,
    /// The matches of the last `W + 1` positions (position modulo `W + 1`).
    recent: Vec<Option<(u8, u8)>>,
}

impl<'c> Matcher<'c> {
    /// An empty match model of length `min`, its table in `recycled` (all zero) if given.
    fn new(cfg: &'c AdaptConfig, min: usize, recycled: Option<Vec<u64>>) -> Self {
        let buckets = cfg.match_max - min + 1;
        Self {
            cfg,
            min,
            table: recycled.unwrap_or_else(|| vec![0; 1 << cfg.match_bits]),
            hits: vec![0; buckets],
            tries: vec![0; buckets],
            recent: vec![None; cfg.window + 1],
        }
    }

    /// The match of `s` from the positions inserted so far (all of `[s - W, s)` among them).
    fn find(&self, doc: &[u8], s: usize) -> Option<(u8, u8)> {
        if s < self.min {
            return None;
        }
        // `p <= s` always (only earlier positions are inserted).
        let p = self.table[match_slot(self.cfg, doc, s, self.min)] as usize;
        if p == 0 || p - 1 + self.cfg.window < s {
            return None;
        }
        match_at(self.cfg, doc, p - 1, s, self.min)
    }

    /// Writes `value` into the slot of position `i` (`i + 1` inserts it, 0 empties the slot).
    fn set_slot(&mut self, doc: &[u8], i: usize, value: u64) {
        if i >= self.min {
            self.table[match_slot(self.cfg, doc, i, self.min)] = value;
        }
    }

    /// Inserts position `i` into the table, records its match `m` and counts it.
    fn enter(&mut self, doc: &[u8], i: usize, m: Option<(u8, u8)>) {
        self.set_slot(doc, i, i as u64 + 1);
        self.recent[i % (self.cfg.window + 1)] = m;
        self.count(doc[i], m, true);
    }

    /// Removes the statistics of the match of position `i` (leaving the window).
    fn leave(&mut self, doc: &[u8], i: usize) {
        let m = self.recent[i % (self.cfg.window + 1)];
        self.count(doc[i], m, false);
    }

    /// Adds (`add`) or removes the statistics of the match `m` of the byte `x`.
    fn count(&mut self, x: u8, m: Option<(u8, u8)>, add: bool) {
        if let Some((y, b)) = m {
            let b = b as usize;
            let hit = (x == y) as u32;
            if add {
                self.hits[b] += hit;
                self.tries[b] += 1;
            } else {
                self.hits[b] -= hit;
                self.tries[b] -= 1;
            }
        }
    }
}

/// Sliding-window byte counts of every order (the fast path's state).
struct Counts<'c> {
    cfg: &'c AdaptConfig,
    /// Per order `j`: `rows_j × 256` counts.
    n: Vec<Vec<u16>>,
    /// Per order `j`: `rows_j` totals.
    total: Vec<Vec<u32>>,
}

impl<'c> Counts<'c> {
    /// Empty counts, in `recycled` buffers (all zero) when there are some.
    fn new(cfg: &'c AdaptConfig, recycled: Option<CountTables>) -> Self {
        let orders = cfg.order() + 1;
        let (n, total) = recycled.unwrap_or_else(|| {
            (
                (0..orders).map(|j| vec![0u16; cfg.rows(j) * 256]).collect(),
                (0..orders).map(|j| vec![0u32; cfg.rows(j)]).collect(),
            )
        });
        Self { cfg, n, total }
    }

    /// Adds (`add`) or removes the event at position `i`: byte `doc[i]` in each of its contexts.
    fn update(&mut self, doc: &[u8], i: usize, add: bool) {
        let x = doc[i] as usize;
        for j in 0..=self.cfg.order().min(i) {
            let r = row(self.cfg, doc, j, i);
            let (n, t) = (&mut self.n[j][r * 256 + x], &mut self.total[j][r]);
            if add {
                *n += 1;
                *t += 1;
            } else {
                *n -= 1;
                *t -= 1;
            }
        }
    }

    /// The counts and backed counts experts' probabilities of `doc[s]` (the model's is `p_m`),
    /// the window holding `[max(0, s-W), s)`.
    fn probs(&self, doc: &[u8], s: usize, p_m: f64) -> [f64; 2] {
        let x = doc[s] as usize;
        back_off(
            self.cfg,
            p_m,
            (0..=self.cfg.order().min(s)).map(|j| {
                let r = row(self.cfg, doc, j, s);
                (self.n[j][r * 256 + x] as u32, self.total[j][r])
            }),
        )
    }
}

/// The count tables of every order: `n` (`rows_j × 256`) and `total` (`rows_j`) of [`Counts`].
type CountTables = (Vec<Vec<u16>>, Vec<Vec<u32>>);

/// The large buffers of [`Adaptive::surprisals`], all zero, kept for the thread's next call.
struct Scratch {
    cfg: AdaptConfig,
    /// The count tables.
    counts: Option<CountTables>,
    /// The match tables, in the order of [`AdaptConfig::match_lengths`].
    tables: Vec<Vec<u64>>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Option<Scratch>> = const { std::cell::RefCell::new(None) };
}

/// Positions whose wrapped-model surprisals are computed together (bounds the memory of a call).
const SURPRISAL_BLOCK: usize = 1 << 16;

/// The model expert's probability of a byte from the wrapped model's surprisal (nats), which
/// is capped at 600 nats so that the probability stays a normal `f64`.
fn model_prob(surprisal: f32) -> f64 {
    libm::exp(-(surprisal as f64).min(600.0))
}

/// The most experts: model, counts, uniform, 8 blends and backed counts.
const MAX_EXPERTS: usize = 12;

/// One unit of the fixed-point log-likelihoods: `2^-32` nats.
const LOG_UNIT: f64 = 4_294_967_296.0;

/// An expert's log-probability of a byte in fixed point (units of `2^-32` nats, floored at
/// `-2^16` nats), so that windowed sums are exact integers whatever the order of additions.
fn fixed_log(p: f64) -> i64 {
    let l = libm::log(p).max(-65_536.0);
    libm::round(l * LOG_UNIT) as i64
}

/// The mixture's surprisal (nats) of a byte from the experts' windowed log-likelihoods
/// `sums[e]` (fixed point, see [`fixed_log`]) and their probabilities `p[e]` of this byte.
fn mix(cfg: &AdaptConfig, sums: &[i64], p: &[f64]) -> f32 {
    let mut ell = [0f64; MAX_EXPERTS];
    let mut top = f64::NEG_INFINITY;
    for ((l, prior), &sum) in ell.iter_mut().zip(cfg.priors()).zip(sums) {
        *l = libm::log(prior) + cfg.temper * (sum as f64 / LOG_UNIT);
        top = top.max(*l);
    }
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&l, &q) in ell.iter().zip(p) {
        let e = libm::exp(l - top);
        num += e * q;
        den += e;
    }
    -libm::log(num / den) as f32
}

/// A model whose surprisals adapt to the document: see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Adaptive<M> {
    inner: M,
    cfg: AdaptConfig,
}

impl<M: EntropyModel> Adaptive<M> {
    /// Wraps `inner`.
    ///
    /// # Errors
    /// The message of [`AdaptConfig::validate`].
    pub fn new(inner: M, cfg: AdaptConfig) -> Result<Self, String> {
        cfg.validate()?;
        Ok(Self { inner, cfg })
    }

    /// The wrapped model.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// The adaptation's parameters.
    pub fn config(&self) -> &AdaptConfig {
        &self.cfg
    }
}

impl<M: EntropyModel> EntropyModel for Adaptive<M> {
    fn context(&self) -> usize {
        self.cfg.context_with(self.inner.context())
    }

    fn entropies(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
        self.inner.entropies(doc, range, out)
    }

    /// Shapes: `doc: [n]`, `out: [range.len()]`. Cost: the wrapped model's surprisals over
    /// `range.len() + K` positions, `W + range.len()` count updates of `J + 1` orders, one or
    /// two back-off chains per byte (two with the backed counts), and `O(E)` per byte for the
    /// weights of the `E` experts (running sums over the last `K`).
    fn surprisals(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
        assert_eq!(out.len(), range.len());
        assert!(range.end <= doc.len());
        if range.is_empty() {
            return;
        }
        let cfg = &self.cfg;
        let first = range.start.saturating_sub(cfg.memory);
        // Buffers of this thread's previous call with the same parameters, all back at zero:
        // the tables are large and zeroing them anew costs more than the warm-up.
        let mut scratch = SCRATCH
            .with(|cell| cell.borrow_mut().take())
            .filter(|sc| sc.cfg == *cfg);
        let mut counts = Counts::new(cfg, scratch.as_mut().map(|sc| sc.counts.take().unwrap()));
        for i in first.saturating_sub(cfg.window)..first {
            counts.update(doc, i, true);
        }
        // Matches of the positions from `lo` on (the window of `first` and after); each table
        // is filled from a window further back so that each of them sees its own window.
        let lo = first.saturating_sub(cfg.window);
        let mut tables = scratch.map(|sc| sc.tables).unwrap_or_default().into_iter();
        let mut matchers: Vec<Matcher> = cfg
            .match_lengths()
            .into_iter()
            .map(|l| Matcher::new(cfg, l, tables.next()))
            .collect();
        for mt in &mut matchers {
            for i in lo.saturating_sub(cfg.window)..lo {
                mt.set_slot(doc, i, i as u64 + 1);
            }
            for i in lo..first {
                let m = mt.find(doc, i);
                mt.enter(doc, i, m);
            }
        }
        // Fixed-point log-probabilities of each expert for the last `K + 1` positions, and
        // their sums over the last `K` (exact integers, so a running sum is exact).
        let mut p = Vec::with_capacity(MAX_EXPERTS);
        cfg.experts(0.0, 0.0, 0.0, &mut p);
        let n_e = p.len();
        let slots = cfg.memory + 1;
        let mut logs = vec![0i64; n_e * slots];
        let mut sums = [0i64; MAX_EXPERTS];
        // The wrapped model's surprisals, a block at a time.
        let mut s_m = vec![0f32; SURPRISAL_BLOCK.min(range.end - first)];
        for s in first..range.end {
            let k = s - first;
            if k.is_multiple_of(SURPRISAL_BLOCK) {
                let block = s..range.end.min(s + SURPRISAL_BLOCK);
                self.inner
                    .surprisals(doc, block.clone(), &mut s_m[..block.len()]);
            }
            if k > 0 {
                let last = (k - 1) % slots;
                for e in 0..n_e {
                    sums[e] += logs[last * n_e + e];
                    if k > cfg.memory {
                        sums[e] -= logs[(k - 1 - cfg.memory) % slots * n_e + e];
                    }
                }
            }
            let p_m = model_prob(s_m[k % SURPRISAL_BLOCK]);
            let [mut p_a, mut p_b] = counts.probs(doc, s, p_m);
            let mut found = [None; 2];
            for (mt, f) in matchers.iter().zip(&mut found) {
                *f = mt.find(doc, s);
                p_a = with_match(p_a, doc[s], *f, &mt.hits, &mt.tries);
                p_b = with_match(p_b, doc[s], *f, &mt.hits, &mt.tries);
            }
            cfg.experts(p_m, p_a, p_b, &mut p);
            if s >= range.start {
                out[s - range.start] = mix(cfg, &sums[..n_e], &p);
            }
            let row = k % slots * n_e;
            for (l, &q) in logs[row..row + n_e].iter_mut().zip(&p) {
                *l = fixed_log(q);
            }
            // The event leaving the window first, so that no count ever exceeds `W`.
            if s >= cfg.window {
                let old = s - cfg.window;
                counts.update(doc, old, false);
                for mt in &mut matchers {
                    mt.leave(doc, old);
                }
            }
            counts.update(doc, s, true);
            for (mt, &f) in matchers.iter_mut().zip(&found) {
                mt.enter(doc, s, f);
            }
        }
        // Back to zero for the next call: the events of the last window leave, and the table
        // slots of every inserted position are emptied.
        for i in range.end.saturating_sub(cfg.window)..range.end {
            counts.update(doc, i, false);
        }
        let tables = matchers
            .into_iter()
            .map(|mut mt| {
                for i in lo.saturating_sub(cfg.window)..range.end {
                    mt.set_slot(doc, i, 0);
                }
                mt.table
            })
            .collect();
        let counts = Some((counts.n, counts.total));
        SCRATCH.with(|cell| {
            *cell.borrow_mut() = Some(Scratch {
                cfg: cfg.clone(),
                counts,
                tables,
            })
        });
    }

    fn stream(&self) -> Box<dyn EntropyStream + '_> {
        self.inner.stream()
    }
}

/// The counts expert's probability of `doc[s]`, computed plainly: every count read off the
/// window `[max(0, s-W), s)` afresh (`O(W · J)` per byte).
pub fn reference_count_prob(cfg: &AdaptConfig, doc: &[u8], s: usize) -> f64 {
    reference_count_probs(cfg, doc, s, 1.0 / 256.0)[0]
}

/// The counts and backed counts experts' probabilities of `doc[s]`, the model's being `p_m`,
/// computed plainly as [`reference_count_prob`] does.
pub fn reference_count_probs(cfg: &AdaptConfig, doc: &[u8], s: usize, p_m: f64) -> [f64; 2] {
    let x = doc[s];
    let window = s.saturating_sub(cfg.window)..s;
    back_off(
        cfg,
        p_m,
        (0..=cfg.order().min(s)).map(|j| {
            let r = row(cfg, doc, j, s);
            let (mut n, mut total) = (0u32, 0u32);
            for i in window.clone().filter(|&i| i >= j) {
                if row(cfg, doc, j, i) == r {
                    total += 1;
                    n += (doc[i] == x) as u32;
                }
            }
            (n, total)
        }),
    )
}

/// The match of `doc[s]` by the match model of length `l`, found plainly: the latest `p` in
/// `[max(l, s - W), s)` whose slot is that of `s` (the fast path's table keeps exactly that
/// position), then [`match_at`].
fn reference_match(cfg: &AdaptConfig, doc: &[u8], s: usize, l: usize) -> Option<(u8, u8)> {
    if s < l {
        return None;
    }
    let slot = match_slot(cfg, doc, s, l);
    (s.saturating_sub(cfg.window).max(l)..s)
        .rev()
        .find(|&p| match_slot(cfg, doc, p, l) == slot)
        .and_then(|p| match_at(cfg, doc, p, s, l))
}

/// [`Adaptive::surprisals`] computed plainly: the wrapped model's surprisal of each byte on its
/// own, [`reference_count_probs`] for the counts, each expert's fixed-point log-probability of
/// every byte from `range.start - K` on, and for each byte the sums over the `K` before it
/// added up afresh. The fast path must give the same bits.
pub fn reference_surprisals<M: EntropyModel>(
    inner: &M,
    cfg: &AdaptConfig,
    doc: &[u8],
    range: Range<usize>,
) -> Vec<f32> {
    let first = range.start.saturating_sub(cfg.memory);
    let lo = first.saturating_sub(cfg.window);
    // matches[k][i - lo]: the match of doc[i] by the k-th match model, found once.
    let matches: Vec<Vec<Option<(u8, u8)>>> = cfg
        .match_lengths()
        .into_iter()
        .map(|l| {
            (lo..range.end)
                .map(|i| reference_match(cfg, doc, i, l))
                .collect()
        })
        .collect();
    // experts[s - first]: every expert's probability of doc[s].
    let experts: Vec<Vec<f64>> = (first..range.end)
        .map(|s| {
            let mut o = [0f32];
            inner.surprisals(doc, s..s + 1, &mut o);
            let p_m = model_prob(o[0]);
            let [mut p_a, mut p_b] = reference_count_probs(cfg, doc, s, p_m);
            for found in &matches {
                let (mut hits, mut tries) = (vec![0u32; 256], vec![0u32; 256]);
                for i in s.saturating_sub(cfg.window)..s {
                    if let Some((y, b)) = found[i - lo] {
                        tries[b as usize] += 1;
                        hits[b as usize] += (doc[i] == y) as u32;
                    }
                }
                p_a = with_match(p_a, doc[s], found[s - lo], &hits, &tries);
                p_b = with_match(p_b, doc[s], found[s - lo], &hits, &tries);
            }
            let mut p = Vec::new();
            cfg.experts(p_m, p_a, p_b, &mut p);
            p
        })
        .collect();
    range
        .map(|t| {
            let p = &experts[t - first];
            let past = &experts[t.saturating_sub(cfg.memory) - first..t - first];
            let sums: Vec<i64> = (0..p.len())
                .map(|e| past.iter().map(|q| fixed_log(q[e])).sum())
                .collect();
            mix(cfg, &sums, p)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::HashModel;

    fn text() -> Vec<u8> {
        let mut t = Vec::new();
        for k in 0..60 {
            t.extend_from_slice(
                format!(
                    "fn item_{k}(x: u32) -> u32 {{ x * {k} + 1 }} // Ωμέγα {}\n",
                    k % 7
                )
                .as_bytes(),
            );
        }
        t
    }

    fn small() -> AdaptConfig {
        AdaptConfig {
            match_min: 3,
            match_long: 7,
            match_bits: 9,
            match_max: 12,
            blends: vec![0.3, 0.8],
            blend_prior: 0.05,
            window: 300,
            memory: 7,
            concentration: vec![0.5, 1.0, 2.0, 1.5],
            row_bits: 6,
            backed_prior: 0.2,
            backed_scale: 3.0,
            ..AdaptConfig::default()
        }
    }

    #[test]
    fn fast_equals_reference_on_every_range() {
        let doc = text();
        let cfg = small();
        let m = Adaptive::new(HashModel::new(3), cfg.clone()).unwrap();
        let want = reference_surprisals(m.inner(), &cfg, &doc, 0..doc.len());
        let mut got = vec![0f32; doc.len()];
        m.surprisals(&doc, 0..doc.len(), &mut got);
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "position {i}");
        }
        for r in [0..1, 5..9, 299..700, 1000..doc.len(), 301..302] {
            let mut part = vec![0f32; r.len()];
            m.surprisals(&doc, r.clone(), &mut part);
            assert_eq!(part, got[r]);
        }
    }

    /// Checks that `prob(d, s, x)`, an expert's probability of the byte value `x` at `s` of `d`,
    /// sums to 1 over the 256 values at several positions of the test text, alone and with the
    /// match model on top (for some hit statistics), and that some positions had a match.
    fn assert_distribution(cfg: &AdaptConfig, prob: impl Fn(&[u8], usize, u8) -> f64) {
        let doc = text();
        let (hits, tries) = (vec![3u32; 10], vec![5u32; 10]);
        let mut matched = 0;
        for s in [0, 1, 2, 50, 400, 2000] {
            let mut d = doc[..=s].to_vec();
            // The match reads the bytes before `s` only.
            let m = reference_match(cfg, &d, s, cfg.match_min);
            let (mut alone, mut with) = (0.0, 0.0);
            for x in 0..=255u8 {
                d[s] = x;
                let p = prob(&d, s, x);
                alone += p;
                with += with_match(p, x, m, &hits, &tries);
            }
            assert!((alone - 1.0).abs() < 1e-12, "position {s}: {alone}");
            assert!(
                (with - 1.0).abs() < 1e-12,
                "position {s} with a match: {with}"
            );
            matched += m.is_some() as usize;
        }
        assert!(matched >= 2, "the text repeats: positions with a match");
    }

    #[test]
    fn counts_are_a_distribution_over_bytes() {
        let cfg = small();
        assert_distribution(&cfg, |d, s, _| reference_count_prob(&cfg, d, s));
    }

    #[test]
    fn backed_counts_are_a_distribution_over_bytes() {
        // Whatever distribution the model gives (here one that puts almost nothing on most
        // bytes), the chain started from it is one too, with a match model on top as well.
        let cfg = small();
        let weight = |x: u8| {
            if x.is_multiple_of(5) {
                1.0
            } else {
                (-600f64).exp()
            }
        };
        let norm: f64 = (0..=255u8).map(weight).sum();
        assert_distribution(&cfg, |d, s, x| {
            reference_count_probs(&cfg, d, s, weight(x) / norm)[1]
        });
        // A context the window has seen many times follows its counts, not the model; one it
        // has not seen follows the model (scaled by the lower orders' counts).
        let d = b"ab".repeat(500);
        let [_, p_b] = reference_count_probs(&cfg, &d, 999, 1e-6);
        assert!(p_b > 0.9, "{p_b}");
        let strong = AdaptConfig {
            backed_scale: 1e6,
            ..small()
        };
        let [_, p_b] = reference_count_probs(&strong, &d, 999, 0.25);
        assert!((p_b - 0.25).abs() < 1e-3, "{p_b}");
    }

    #[test]
    fn without_a_backed_prior_the_mixture_is_the_one_before() {
        // Records written before the backed counts expert existed keep their bits: this
        // configuration gave exactly these values (a hash of all 3,400 surprisals) before it.
        let doc = text();
        let hash = |s: &[f32]| {
            s.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, v| {
                (h ^ v.to_bits() as u64).wrapping_mul(0x0000_0100_0000_01b3)
            })
        };
        for scale in [0.0, 3.0] {
            let cfg = AdaptConfig {
                backed_prior: 0.0,
                backed_scale: scale,
                ..small()
            };
            let m = Adaptive::new(HashModel::new(3), cfg).unwrap();
            let mut got = vec![0f32; doc.len()];
            m.surprisals(&doc, 0..doc.len(), &mut got);
            assert_eq!(got.len(), 3400);
            assert_eq!(got[100].to_bits(), 0x3cf8_032b);
            assert_eq!(hash(&got), 0x264c_e3ea_2f03_3fcf, "backed_scale {scale}");
        }
        // With a positive prior the backed expert takes part.
        let with = Adaptive::new(HashModel::new(3), small()).unwrap();
        let mut other = vec![0f32; doc.len()];
        with.surprisals(&doc, 0..doc.len(), &mut other);
        assert_ne!(hash(&other), 0x264c_e3ea_2f03_3fcf);
    }

    #[test]
    fn bounded_context_and_unchanged_entropies() {
        let doc = text();
        let cfg = small();
        let m = Adaptive::new(HashModel::new(3), cfg.clone()).unwrap();
        let c = m.context();
        assert_eq!(c, 7 + 2 * 300 + 12);
        let t = doc.len() - 1;
        let mut whole = [0f32];
        m.surprisals(&doc, t..t + 1, &mut whole);
        // Changing a byte before the context moves nothing; one inside it may.
        let mut d = doc.clone();
        d[t - c - 1] ^= 0x55;
        let mut cut = [0f32];
        m.surprisals(&d, t..t + 1, &mut cut);
        assert_eq!(whole, cut);
        let (mut h, mut h_inner) = (vec![0f32; doc.len()], vec![0f32; doc.len()]);
        m.entropies(&doc, 0..doc.len(), &mut h);
        m.inner().entropies(&doc, 0..doc.len(), &mut h_inner);
        assert_eq!(h, h_inner);
    }

    #[test]
    fn random_bytes_stay_near_eight_bits() {
        // A model that is confidently wrong everywhere: the uniform expert takes over.
        let mut x = 0x1234_5678_9abc_def0u64;
        let doc: Vec<u8> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 56) as u8
            })
            .collect();
        let m = Adaptive::new(HashModel::new(2), AdaptConfig::default()).unwrap();
        let mut s = vec![0f32; doc.len()];
        m.surprisals(&doc, 0..doc.len(), &mut s);
        let bits = s.iter().map(|&v| v as f64).sum::<f64>() / doc.len() as f64 / 2f64.ln();
        assert!(bits < 8.05, "{bits} bits/byte");
    }

    #[test]
    fn buffers_kept_between_calls_change_nothing() {
        // The thread's buffers after calls on other text give what a fresh thread gives.
        let cfg = small();
        let m = Adaptive::new(HashModel::new(3), cfg).unwrap();
        let doc = text();
        let other: Vec<u8> = doc.iter().rev().map(|b| b ^ 0x21).collect();
        let score = |d: &[u8], r: Range<usize>| {
            let mut s = vec![0f32; r.len()];
            m.surprisals(d, r, &mut s);
            s
        };
        let fresh = std::thread::scope(|sc| sc.spawn(|| score(&doc, 500..2500)).join().unwrap());
        score(&other, 0..other.len());
        score(&other, 1700..1900);
        assert_eq!(score(&doc, 500..2500), fresh);
    }

    #[test]
    fn the_largest_window_never_overflows_a_count() {
        // One byte value fills every count of its context: the window's count reaches W.
        let cfg = AdaptConfig {
            window: MAX_WINDOW,
            ..AdaptConfig::default()
        };
        let m = Adaptive::new(HashModel::new(2), cfg).unwrap();
        let doc = vec![0u8; MAX_WINDOW + 3];
        let mut s = vec![0f32; 4];
        m.surprisals(&doc, doc.len() - 4..doc.len(), &mut s);
        assert!(s.iter().all(|v| v.is_finite() && *v >= 0.0), "{s:?}");
    }

    #[test]
    fn invalid_parameters_are_named() {
        let bad = AdaptConfig {
            temper: 0.0,
            ..AdaptConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("temper"));
        let bad = AdaptConfig {
            window: 70_000,
            ..AdaptConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("window"));
        let bad = AdaptConfig {
            concentration: vec![],
            ..AdaptConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("concentration"));
        for (bad, name) in [
            (
                AdaptConfig {
                    concentration: vec![1e-300],
                    ..AdaptConfig::default()
                },
                "concentration",
            ),
            (
                AdaptConfig {
                    memory: 4096,
                    temper: 1.0,
                    ..AdaptConfig::default()
                },
                "memory",
            ),
            (
                AdaptConfig {
                    blends: vec![1.0],
                    ..AdaptConfig::default()
                },
                "blends",
            ),
            (
                AdaptConfig {
                    match_min: 0,
                    match_max: usize::MAX,
                    ..AdaptConfig::default()
                },
                "match_max",
            ),
            (
                AdaptConfig {
                    match_min: 40,
                    match_long: 0,
                    ..AdaptConfig::default()
                },
                "match_min",
            ),
            (
                AdaptConfig {
                    match_max: 3,
                    match_long: 0,
                    ..AdaptConfig::default()
                },
                "match_max",
            ),
            (
                AdaptConfig {
                    backed_scale: 0.0,
                    ..AdaptConfig::default()
                },
                "backed_scale",
            ),
            (
                AdaptConfig {
                    backed_scale: f64::NAN,
                    ..AdaptConfig::default()
                },
                "backed_scale",
            ),
            (
                AdaptConfig {
                    backed_prior: -1.0,
                    ..AdaptConfig::default()
                },
                "backed_prior",
            ),
        ] {
            let e = bad.validate().unwrap_err();
            assert!(e.starts_with(&format!("adapt.{name} ")), "{name}: {e}");
        }
    }
}
