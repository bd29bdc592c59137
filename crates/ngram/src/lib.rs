//! # bltpatch-ngram
//!
//! A deterministic, count-based byte n-gram model that implements
//! [`bltpatch_core::EntropyModel`]: a real baseline entropy model that trains in seconds, and the
//! model that tests use when no neural one is at hand.
//!
//! ## The model
//!
//! An order-`k` model ([`NgramConfig::order`], `1..=8`, default 6) predicts byte `x[i]` from the
//! context of the `C = k - 1` bytes before it (fewer at the start of a document, where the
//! context is the whole prefix). For every context length `L = 0..=C` ("order" `o = L + 1`) it
//! keeps the **nodes**: the contexts `s` of `L` bytes seen in training followed by some byte,
//! each with the counts `c(s, b)` of the bytes `b` that followed it.
//!
//! - At the highest order (`L = C`), `c(s, b)` is the raw count of the `k`-gram `s·b` over all
//!   positions with a full context of `C` bytes.
//! - At lower orders (`L < C`), `c(s, b)` is the Kneser-Ney continuation count `N1+(• s b)`: the
//!   number of distinct bytes `a` such that `a·s·b` occurs, plus one when `s·b` occurs at the start
//!   of a document (the document start counts as one more distinct left context, as `<s>` does
//!   in KenLM). With this rule the order-`o` n-grams are exactly the `o`-byte substrings of the
//!   training documents, and the nodes at length `L` are exactly the `L`-byte substrings that
//!   some byte follows. Documents are counted separately: no n-gram crosses two documents.
//!
//! ## Smoothing: interpolated Kneser-Ney
//!
//! With `T(s) = Σ_b c(s, b)`, `N1+(s•)` the number of distinct bytes `b` with `c(s, b) > 0`, and
//! `D_o` the discount of order `o`:
//!
//! ```text
//! P_s(b) = ( max(c(s,b) - D_o, 0) + D_o · N1+(s•) · P_suffix(s)(b) ) / T(s)
//! ```
//!
//! where `suffix(s)` drops the first (oldest) byte of `s`; below the empty context is the uniform
//! distribution `1/256`. Every byte has a positive probability. The discount of each order is
//! the Ney estimate `D_o = n1 / (n1 + 2·n2)`, with `n1`, `n2` the numbers of order-`o` n-grams
//! of count 1 and 2; a value outside `[0.05, 0.95]` is clamped into it, and `0.5` is used when
//! `n1 + n2 = 0`. Discounts are rounded to `f32` (as stored) before any use.
//!
//! A context that is not a node (`T(s) = 0`) has exactly the distribution of its suffix, so the
//! distribution at a position is that of the **longest suffix of its context that is a node**.
//! Nodes are suffix-closed (and prefix-closed), so existence is monotone in the length, and the
//! longest one is found by a binary search over the length in a hash map ([`rustc_hash`]'s
//! `FxHashMap`, deterministic) from a packed key (`length << 56 | context bytes`) to the node.
//!
//! ## Entropies and determinism
//!
//! The entropy `H = -Σ_b P_s(b) ln P_s(b)` of every node is computed once, when training, in
//! `f64` with [`libm::log`] (never the platform's `ln`), node by node (in parallel with rayon:
//! every node is independent, so the result does not depend on the thread count), and stored as
//! `f32`. Only the bytes seen after the node need their own terms; the rest of the sum follows
//! from the parent's entropy, because there `P_s(b) = λ·P_suffix(s)(b)` with
//! `λ = D_o·N1+(s•)/T(s)`:
//!
//! ```text
//! H_s = -Σ_{b∈S} P_s(b) ln P_s(b) - λ ln λ · (1 - Σ_{b∈S} P_p(b))
//!       + λ · (H_p + Σ_{b∈S} P_p(b) ln P_p(b))          (S: bytes seen after s, p = suffix(s))
//! ```
//!
//! [`EntropyModel::entropies`] is therefore only the longest-suffix lookup of each position, and
//! its `f32` values are the same for batch, any chunking, any thread count, the streaming state
//! ([`NgramStream`]) and every CPU. [`EntropyModel::surprisals`] evaluates the recursion above
//! for the actual byte in `f64` with [`libm::log`] (IEEE operations in a fixed order, no FMA),
//! then rounds to `f32`.
//!
//! ## Complexity
//!
//! - Training: `O(n log n)` time for `n` training bytes (one sort per order), about
//!   `8·n` bytes of working memory plus the model. A 10 MB corpus at order 6 takes seconds.
//! - Model size: `N_o` nodes and `M_o` n-grams per order, `M_o <= n`; about
//!   `29·N + 5·M` bytes in memory.
//! - `entropies`: `O(1)` expected hash probes per byte (the longest node at `i` is at most one
//!   byte longer than at `i - 1`, so the search starts there and usually stops at once; a full
//!   binary search at the start of a range takes `O(log C)`).
//! - `surprisals`: `O(C log 256)` per byte.
//!
//! ## Checkpoint tensor layout
//!
//! [`NgramModel::save`] writes a `bltpatch-checkpoint` directory whose `config.json` has
//! `"arch": "ngram"`, `"context": k - 1` and `"architecture": {"order": k}`. Its
//! `model.safetensors` holds, for every order `o = 1..=k` (context length `L = o - 1`), with
//! `N_o` nodes and `M_o` n-grams (all little-endian, C order):
//!
//! | name | dtype | shape | contents |
//! |---|---|---|---|
//! | `order{o}.contexts` | U64 | `[N_o]` | the `L` context bytes of each node read as a big-endian integer (oldest byte most significant, the byte just before the predicted one least significant); strictly increasing. For `o = 1` a single `0`. |
//! | `order{o}.entropy` | F32 | `[N_o]` | `H` in nats of the node's distribution |
//! | `order{o}.total` | U32 | `[N_o]` | `T(s)`, the sum of the node's counts |
//! | `order{o}.offsets` | U32 | `[N_o + 1]` | the node's n-grams are `offsets[j] .. offsets[j+1]` of the two arrays below; `offsets[0] = 0`, strictly increasing, `offsets[N_o] = M_o` |
//! | `order{o}.next_bytes` | U8 | `[M_o]` | the bytes `b` seen after the node, increasing within a node |
//! | `order{o}.next_counts` | U32 | `[M_o]` | `c(s, b)`: raw counts for `o = k`, continuation counts below |
//! | `discounts` | F32 | `[k]` | `D_o` at index `o - 1` |
//!
//! `N1+(s•)` is `offsets[j+1] - offsets[j]`. In numpy, the distribution of node `j` of order `o`
//! follows from the formula above with `safetensors.numpy.load_file`. Loading checks every
//! tensor's presence, dtype and shape, and the consistency of the whole (sorted contexts,
//! monotone offsets in range, counts summing to totals, every node's suffix and prefix present),
//! so a corrupt file is an error, never a panic.
//!
//! ## Example
//!
//! ```
//! use bltpatch_core::EntropyModel;
//! use bltpatch_ngram::{NgramConfig, NgramModel};
//!
//! let text = b"the cat sat on the mat. the cat sat on the hat.";
//! let model = NgramModel::train(&[text], &NgramConfig { order: 4 }).unwrap();
//! assert_eq!(model.context(), 3);
//!
//! let doc = b"the cat sat";
//! let mut h = vec![0f32; doc.len()];
//! model.entropies(doc, 0..doc.len(), &mut h);
//! // After "the c", "at" is certain-ish: low entropy; the first byte is hard.
//! assert!(h[5] < h[0]);
//!
//! // Streaming gives the same bits.
//! let mut s = model.stream();
//! for (i, &b) in doc.iter().enumerate() {
//!     assert_eq!(s.entropy().to_bits(), h[i].to_bits());
//!     s.push(b);
//! }
//!
//! // Save and load.
//! let dir = tempfile::tempdir().unwrap();
//! model.save(dir.path(), serde_json::json!({"bytes": text.len()}), None).unwrap();
//! let (loaded, config) = NgramModel::load(dir.path()).unwrap();
//! assert_eq!(config.context, 3);
//! let mut h2 = vec![0f32; doc.len()];
//! loaded.entropies(doc, 0..doc.len(), &mut h2);
//! assert_eq!(h, h2);
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::ops::Range;

use bltpatch_checkpoint::CheckpointError;
use bltpatch_core::{EntropyModel, EntropyStream};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

mod ckpt;
mod fit;
pub use fit::{Fit, FitOptions, fit};
mod train;

/// The architecture name in `config.json`.
pub const ARCH: &str = "ngram";
/// The highest supported order (7 context bytes fit a packed key).
pub const MAX_ORDER: usize = 8;
/// The default order.
pub const DEFAULT_ORDER: usize = 6;

/// The hyper-parameters of an n-gram model (stored as `config.json`'s `architecture`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NgramConfig {
    /// `k`, the n-gram length including the predicted byte, `1..=8`; the context is `k - 1`
    /// bytes.
    pub order: usize,
}

impl Default for NgramConfig {
    fn default() -> Self {
        Self {
            order: DEFAULT_ORDER,
        }
    }
}

impl NgramConfig {
    /// Checks the order.
    ///
    /// # Errors
    /// [`NgramError::InvalidOrder`] unless `1 <= order <= 8`.
    pub fn validate(&self) -> Result<(), NgramError> {
        if (1..=MAX_ORDER).contains(&self.order) {
            Ok(())
        } else {
            Err(NgramError::InvalidOrder(self.order))
        }
    }

    /// The context length `C = order - 1`.
    pub fn context(&self) -> usize {
        self.order.saturating_sub(1)
    }
}

/// Errors from training, saving or loading an n-gram model.
#[derive(Debug, thiserror::Error)]
pub enum NgramError {
    /// An order outside `1..=8`.
    #[error("invalid n-gram order {0}: it must be between 1 and 8")]
    InvalidOrder(usize),
    /// Training data without a single byte.
    #[error("cannot train an n-gram model on an empty corpus")]
    EmptyCorpus,
    /// More training bytes than the 32-bit counts hold.
    #[error("corpus of {0} bytes is too large for the n-gram model (at most 4294967295 bytes)")]
    CorpusTooLarge(u64),
    /// A checkpoint of another architecture.
    #[error("{origin}: checkpoint architecture is \"{arch}\", expected \"ngram\"")]
    WrongArch {
        /// The `arch` in `config.json`.
        arch: String,
        /// Where the checkpoint came from.
        origin: String,
    },
    /// A checkpoint problem: I/O, format, a missing or mis-shaped tensor, or inconsistent data
    /// ([`CheckpointError::Invalid`], with the origin and what is wrong).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// The nodes of one context length `L` (order `L + 1`), sorted by packed context.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Level {
    /// Packed context bytes (big-endian integer of the `L` bytes), strictly increasing.
    pub(crate) contexts: Vec<u64>,
    /// `H` of each node, nats.
    pub(crate) entropy: Vec<f32>,
    /// `T(s)`.
    pub(crate) total: Vec<u32>,
    /// `[N + 1]` offsets into `next_bytes` / `next_counts`.
    pub(crate) offsets: Vec<u32>,
    /// Bytes seen after each node, increasing within a node.
    pub(crate) next_bytes: Vec<u8>,
    /// Their counts.
    pub(crate) next_counts: Vec<u32>,
    /// Index of `suffix(s)` in the level below (empty for `L = 0`); not stored in checkpoints.
    pub(crate) parent: Vec<u32>,
}

impl Level {
    fn len(&self) -> usize {
        self.contexts.len()
    }

    /// `P_s(b)` given `P_suffix(s)(b) = lower`, in f64 (fixed operation order).
    #[inline]
    fn prob(&self, node: usize, b: u8, d: f64, lower: f64) -> f64 {
        let (lo, hi) = (self.offsets[node] as usize, self.offsets[node + 1] as usize);
        let seen = match self.next_bytes[lo..hi].binary_search(&b) {
            Ok(j) => self.next_counts[lo + j] as f64 - d,
            Err(_) => 0.0,
        };
        let distinct = (hi - lo) as f64;
        (seen.max(0.0) + d * distinct * lower) / self.total[node] as f64
    }
}

/// Masks for the low `L` bytes of a packed context, `L = 0..=8`.
const MASKS: [u64; 9] = {
    let mut m = [0u64; 9];
    let mut l = 1;
    while l < 8 {
        m[l] = (1u64 << (8 * l)) - 1;
        l += 1;
    }
    m[8] = u64::MAX;
    m
};

/// The hash-map key of the context made of the low `len` bytes of `reg`.
#[inline]
fn map_key(reg: u64, len: usize) -> u64 {
    ((len as u64) << 56) | (reg & MASKS[len])
}

/// Packs bytes as a big-endian integer (the last byte least significant); keeps the last 8.
#[inline]
fn pack(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |r, &b| (r << 8) | b as u64)
}

/// A trained byte n-gram model with interpolated Kneser-Ney smoothing. See the
/// [crate docs](crate) for the model, its formulas and its checkpoint layout.
#[derive(Clone)]
pub struct NgramModel {
    order: usize,
    /// `D_o` at index `o - 1`, as stored (f32).
    discounts: Vec<f32>,
    /// Index `L` = context length.
    levels: Vec<Level>,
    /// `map_key(context, L)` → (node index in level `L`, entropy).
    map: FxHashMap<u64, (u32, f32)>,
}

impl std::fmt::Debug for NgramModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NgramModel")
            .field("order", &self.order)
            .field("discounts", &self.discounts)
            .field("nodes_per_order", &self.nodes_per_order())
            .finish()
    }
}

impl NgramModel {
    /// Assembles a model from its levels, computing parents (when absent) and the lookup map.
    /// The levels must already be consistent (checked by the caller).
    fn assemble(order: usize, discounts: Vec<f32>, levels: Vec<Level>) -> Self {
        let nodes: usize = levels.iter().map(Level::len).sum();
        let mut map = FxHashMap::with_capacity_and_hasher(nodes, Default::default());
        for (l, level) in levels.iter().enumerate() {
            for (j, (&ctx, &h)) in level.contexts.iter().zip(&level.entropy).enumerate() {
                map.insert(map_key(ctx, l), (j as u32, h));
            }
        }
        Self {
            order,
            discounts,
            levels,
            map,
        }
    }

    /// The order `k`.
    pub fn order(&self) -> usize {
        self.order
    }

    /// The hyper-parameters.
    pub fn config(&self) -> NgramConfig {
        NgramConfig { order: self.order }
    }

    /// The discounts `D_o`, index `o - 1`.
    pub fn discounts(&self) -> &[f32] {
        &self.discounts
    }

    /// The number of nodes (contexts) of each order `o = 1..=k`, index `o - 1`.
    pub fn nodes_per_order(&self) -> Vec<usize> {
        self.levels.iter().map(Level::len).collect()
    }

    /// The number of n-grams (stored counts) of each order `o = 1..=k`, index `o - 1`.
    pub fn ngrams_per_order(&self) -> Vec<usize> {
        self.levels.iter().map(|l| l.next_bytes.len()).collect()
    }

    /// The node of the low `len` bytes of `reg`, with its entropy.
    #[inline]
    fn node(&self, reg: u64, len: usize) -> Option<(u32, f32)> {
        self.map.get(&map_key(reg, len)).copied()
    }

    /// The longest node among the suffixes of length `0..=ub` of the context in `reg` (the
    /// caller guarantees that no suffix longer than `ub` is a node, or that `ub` is the
    /// available context). Returns its length, index and entropy.
    #[inline]
    fn longest(&self, reg: u64, ub: usize) -> (usize, u32, f32) {
        if let Some((j, h)) = self.node(reg, ub) {
            return (ub, j, h);
        }
        // Length 0 always exists (checked at load; a model has at least one byte).
        let (mut lo, mut best) = (0, self.node(reg, 0).expect("the empty context is a node"));
        let mut hi = ub;
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            match self.node(reg, mid) {
                Some(n) => {
                    lo = mid;
                    best = n;
                }
                None => hi = mid,
            }
        }
        (lo, best.0, best.1)
    }

    /// The context register for position `i` of `doc`, and the available context length.
    fn register_at(&self, doc: &[u8], i: usize) -> (u64, usize) {
        let avail = i.min(self.context());
        (pack(&doc[i - avail..i]), avail)
    }

    /// `P(b | node)` of node `j` of level `len`, by the recursion down the suffix chain (f64).
    fn prob_at(&self, len: usize, j: u32, b: u8) -> f64 {
        // Collect the chain of node indices from `len` down to 0, then evaluate upwards.
        let mut chain = [0u32; MAX_ORDER];
        chain[len] = j;
        for l in (1..=len).rev() {
            chain[l - 1] = self.levels[l].parent[chain[l] as usize];
        }
        let mut p = 1.0 / 256.0;
        for (l, &node) in chain.iter().enumerate().take(len + 1) {
            let d = self.discounts[l] as f64;
            p = self.levels[l].prob(node as usize, b, d, p);
        }
        p
    }

    /// The model's full next-byte distribution after `context` (of which only the last `C`
    /// bytes count): `P(b)` for `b = 0..=255`, in `f64`. It sums to 1 up to rounding; its
    /// entropy is the `H` that [`EntropyModel::entropies`] reports (up to `f32` rounding).
    pub fn distribution(&self, context: &[u8]) -> [f64; 256] {
        let (reg, avail) = self.register_at(context, context.len());
        let (len, j, _) = self.longest(reg, avail);
        let mut chain = [0u32; MAX_ORDER];
        chain[len] = j;
        for l in (1..=len).rev() {
            chain[l - 1] = self.levels[l].parent[chain[l] as usize];
        }
        let mut p = [1.0 / 256.0; 256];
        for (l, &node) in chain.iter().enumerate().take(len + 1) {
            let level = &self.levels[l];
            let node = node as usize;
            let d = self.discounts[l] as f64;
            let (lo, hi) = (
                level.offsets[node] as usize,
                level.offsets[node + 1] as usize,
            );
            let t = level.total[node] as f64;
            let lambda = d * (hi - lo) as f64;
            let mut q = [0f64; 256];
            for (qb, &pb) in q.iter_mut().zip(&p) {
                *qb = lambda * pb / t;
            }
            for k in lo..hi {
                let b = level.next_bytes[k] as usize;
                q[b] = ((level.next_counts[k] as f64 - d).max(0.0) + lambda * p[b]) / t;
            }
            p = q;
        }
        p
    }

    /// A streaming state at the start of a document (the concrete type behind
    /// [`EntropyModel::stream`]).
    pub fn ngram_stream(&self) -> NgramStream<'_> {
        NgramStream {
            model: self,
            reg: 0,
            avail: 0,
            bound: 0,
            cached: None,
        }
    }
}

impl EntropyModel for NgramModel {
    fn context(&self) -> usize {
        self.order - 1
    }

    fn entropies(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
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
        let c = self.context();
        let (mut reg, mut avail) = self.register_at(doc, range.start);
        let mut bound = avail;
        let last = range.end - 1;
        for (o, i) in out.iter_mut().zip(range) {
            let (len, _, h) = self.longest(reg, bound.min(avail));
            *o = h;
            if i < last {
                reg = (reg << 8) | doc[i] as u64;
                avail = (avail + 1).min(c);
                bound = len + 1;
            }
        }
    }

    fn surprisals(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
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
        let c = self.context();
        let (mut reg, mut avail) = self.register_at(doc, range.start);
        let mut bound = avail;
        for (o, i) in out.iter_mut().zip(range) {
            let (len, j, _) = self.longest(reg, bound.min(avail));
            let p = self.prob_at(len, j, doc[i]);
            *o = (-libm::log(p)) as f32;
            reg = (reg << 8) | doc[i] as u64;
            avail = (avail + 1).min(c);
            bound = len + 1;
        }
    }

    fn stream(&self) -> Box<dyn EntropyStream + '_> {
        Box::new(self.ngram_stream())
    }
}

/// The streaming state of an [`NgramModel`]: keeps the last `C` bytes (packed in one register)
/// and gives bit-identical values to [`EntropyModel::entropies`]. `O(1)` expected per byte.
#[derive(Clone, Debug)]
pub struct NgramStream<'m> {
    model: &'m NgramModel,
    /// The bytes pushed so far, the most recent least significant.
    reg: u64,
    /// Available context: `min(pushed, C)`.
    avail: usize,
    /// No node longer than this exists for the current position.
    bound: usize,
    /// The current position's longest node length and entropy, once computed.
    cached: Option<(usize, f32)>,
}

impl EntropyStream for NgramStream<'_> {
    fn entropy(&mut self) -> f32 {
        if let Some((_, h)) = self.cached {
            return h;
        }
        let (len, _, h) = self.model.longest(self.reg, self.bound.min(self.avail));
        self.cached = Some((len, h));
        h
    }

    fn push(&mut self, byte: u8) {
        self.reg = (self.reg << 8) | byte as u64;
        self.avail = (self.avail + 1).min(self.model.context());
        self.bound = match self.cached.take() {
            Some((len, _)) => len + 1,
            None => self.model.context(),
        };
    }

    fn reset(&mut self) {
        self.reg = 0;
        self.avail = 0;
        self.bound = 0;
        self.cached = None;
    }
}

#[cfg(test)]
mod tests;
