//! The patching rules of entropy patching, and the fast kernels that apply them.
//!
//! For bytes `x[0..n)` with entropies `H[0..n)`:
//!
//! - byte 0 always starts a patch;
//! - for `i >= 1`, byte `i` starts a patch when the [`Rule`] holds:
//!   `Global`: `H[i] > threshold`; `Relative`: `H[i] - H[i-1] > relative_threshold` (computed in
//!   `f32`); `Combined`: both; `Budget`: with `s` the start of the current patch,
//!   `H[s] + H[s+1] + ... + H[i-1] >= budget` (an `f64` sum of the exact `f32` values, left to
//!   right, starting from `0.0`);
//! - with `max_patch_len = M`, a byte also starts a patch when the current patch already holds
//!   `M` bytes. For the threshold rules such a forced start changes no decision after it; for
//!   `Budget` it starts a new sum like any other start.
//!
//! Threshold comparisons are strict, the budget's is `>=`. The plain loops in
//! [`crate::reference`] are the definition that the kernels here are tested against.
//!
//! The threshold rules are *local*: whether byte `i` starts a patch by the rule depends on
//! `H[i-1]` and `H[i]` only, so segmentation splits into two steps: find the *natural* starts
//! (independent per position, so they vectorise and parallelise), then cut every gap longer than
//! `M` into pieces of `M` ([`LengthBuilder`]). The budget rule depends on the previous boundary:
//! it is a sequential scan over `H` ([`LengthScanner`]), cheap next to computing `H`.
//!
//! # Why the budget rule
//!
//! Entropy patching spends one step of the large model per patch, so patches should carry
//! similar amounts of information. `H[i]` is the information the model *expects* byte `i` to
//! carry, so closing a patch once the expected information in it reaches a budget gives patches
//! of roughly equal information, whatever the local difficulty of the text; a global threshold
//! instead cuts every hard byte into its own patch and merges long predictable runs. Measured
//! with an independent reference model (`bltpatch eval --reference-model`, README "Patch
//! quality"), budget patches are more even than BPE tokens and fixed-size patches at the same
//! mean length.
//!
//! Variants measured and dropped (`cargo run --release --example budget_variants --
//! -m checkpoints/conv --reference /tmp/ref-ngram4 /tmp/tails/*.tail.txt`: the entropies of
//! the `conv` model, the default when this was measured, on the held-out tail of each
//! reference corpus, information from an order-4 n-gram trained on the same training parts,
//! every variant calibrated to the file's cl100k mean token length;
//! coefficient of variation of the bits per patch / share of patches under 2 bits):
//!
//! | file | global | **budget** | overflow | spike (q 0.9) | spike (q 0.97) | nearest | static |
//! |---|---|---|---|---|---|---|---|
//! | code_rust | 0.928 / 10.3% | **0.575 / 3.0%** | 0.604 / 3.7% | 0.664 / 9.0% | 0.598 / 4.9% | 0.579 / 3.2% | 0.672 / 12.8% |
//! | de_docs | 0.746 / 8.0% | **0.465 / 0.8%** | 0.471 / 1.7% | 0.549 / 7.4% | 0.482 / 2.7% | 0.451 / 1.0% | 0.548 / 4.5% |
//! | en_books | 0.803 / 4.5% | **0.451 / 0.1%** | 0.459 / 0.4% | 0.569 / 7.4% | 0.488 / 3.0% | 0.449 / 0.2% | 0.490 / 0.9% |
//! | en_docs | 0.661 / 3.2% | **0.382 / 0.1%** | 0.383 / 0.3% | 0.534 / 8.1% | 0.418 / 2.7% | 0.373 / 0.2% | 0.479 / 0.9% |
//! | fr_docs | 0.718 / 4.7% | **0.427 / 0.2%** | 0.433 / 1.0% | 0.509 / 6.7% | 0.450 / 2.5% | 0.417 / 0.4% | 0.497 / 2.1% |
//! | ru_docs | 0.926 / 9.5% | **0.444 / 0.5%** | 0.494 / 2.1% | 0.570 / 8.2% | 0.488 / 4.6% | 0.459 / 1.0% | 0.496 / 0.5% |
//! | structured | 1.062 / 5.9% | **0.526 / 0.3%** | 0.536 / 0.5% | 0.589 / 2.7% | 0.550 / 1.5% | 0.523 / 0.4% | 0.544 / 3.1% |
//! | zh_docs | 0.763 / 11.6% | **0.589 / 5.4%** | 0.572 / 5.2% | 0.620 / 7.9% | 0.589 / 6.6% | 0.571 / 4.9% | 0.732 / 12.8% |
//!
//! - *overflow* (the byte whose entropy would take the sum past the budget starts the next
//!   patch: `H[s] + ... + H[i] > budget`): as even or less, with more nearly empty patches
//!   (they end before their last, informative byte);
//! - *spike* (budget, or `H[i] > T` with `T` the `q` quantile of `H`): every spike cuts a patch
//!   short, so less even (0.03-0.15 higher CV) and 1.5-8 % more nearly empty patches;
//! - *nearest* (`H[s] + ... + H[i-1] + H[i] / 2 > budget`, the cut nearest the budget): within
//!   ±0.015 CV of the budget rule, better on five files and worse on three, with more nearly
//!   empty patches on seven: no gain worth a second definition.
//!
//! So the rule is the plain budget, the simplest of the even ones.

use crate::Error;

/// Which entropy condition starts a patch at byte `i >= 1`.
///
/// Serialised as an internally tagged record, e.g. `{"rule": "budget", "budget": 7.5}` or
/// `{"rule": "global", "threshold": 2.3}` (with the `serde` feature).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(tag = "rule", rename_all = "lowercase")
)]
pub enum Rule {
    /// `H[i] > threshold`.
    Global {
        /// Entropy threshold in nats.
        threshold: f32,
    },
    /// `H[i] - H[i-1] > relative_threshold`: BLT's "approximate monotonicity" constraint.
    Relative {
        /// Threshold on the entropy increase, in nats.
        relative_threshold: f32,
    },
    /// Both the global and the relative condition.
    Combined {
        /// Entropy threshold in nats.
        threshold: f32,
        /// Threshold on the entropy increase, in nats.
        relative_threshold: f32,
    },
    /// A patch closes once the entropy summed over it reaches the budget: byte `i > s` starts
    /// a patch when `H[s] + ... + H[i-1] >= budget` (`s` the current patch's start).
    Budget {
        /// Entropy budget per patch in nats.
        budget: f64,
    },
}

impl Rule {
    /// For a local (threshold) rule, whether a byte with entropy `h`, following a byte with
    /// entropy `prev`, starts a patch (positions `i >= 1`). Always `false` for
    /// [`Rule::Budget`], whose decision depends on the previous boundary (see
    /// [`BoundaryTracker`]).
    #[inline(always)]
    pub fn starts(&self, h: f32, prev: f32) -> bool {
        match *self {
            Rule::Global { threshold } => h > threshold,
            Rule::Relative { relative_threshold } => h - prev > relative_threshold,
            Rule::Combined {
                threshold,
                relative_threshold,
            } => (h > threshold) & (h - prev > relative_threshold),
            Rule::Budget { .. } => false,
        }
    }

    /// Whether the rule reads `H[i-1]`.
    pub fn uses_previous(&self) -> bool {
        !matches!(self, Rule::Global { .. })
    }

    /// Whether each decision depends on `H[i-1]` and `H[i]` only (the threshold rules), so that
    /// positions can be decided independently; `false` for [`Rule::Budget`].
    pub fn is_local(&self) -> bool {
        !matches!(self, Rule::Budget { .. })
    }

    /// The rule's name as the command line and `config.json` spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Global { .. } => "global",
            Rule::Relative { .. } => "relative",
            Rule::Combined { .. } => "combined",
            Rule::Budget { .. } => "budget",
        }
    }

    fn validate(&self) -> Result<(), Error> {
        let check_t = |t: f32| {
            if t.is_finite() && t >= 0.0 {
                Ok(())
            } else {
                Err(Error::InvalidThreshold(t))
            }
        };
        let check_r = |r: f32| {
            if r.is_finite() && r >= 0.0 {
                Ok(())
            } else {
                Err(Error::InvalidRelativeThreshold(r))
            }
        };
        match *self {
            Rule::Global { threshold } => check_t(threshold),
            Rule::Relative { relative_threshold } => check_r(relative_threshold),
            Rule::Combined {
                threshold,
                relative_threshold,
            } => check_t(threshold).and(check_r(relative_threshold)),
            Rule::Budget { budget } => {
                if budget.is_finite() && budget >= 0.0 {
                    Ok(())
                } else {
                    Err(Error::InvalidBudget(budget))
                }
            }
        }
    }
}

/// A validated entropy-patching configuration: a [`Rule`] and an optional `max_patch_len`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PatchConfig {
    pub(crate) rule: Rule,
    pub(crate) max_patch_len: Option<usize>,
}

impl PatchConfig {
    /// A configuration with no maximum patch length.
    ///
    /// # Errors
    /// Thresholds or a budget that are NaN, infinite or negative.
    pub fn new(rule: Rule) -> Result<Self, Error> {
        rule.validate()?;
        Ok(Self {
            rule,
            max_patch_len: None,
        })
    }

    /// Sets (or clears) the maximum patch length.
    ///
    /// # Errors
    /// `Some(0)`.
    pub fn with_max_patch_len(mut self, max_patch_len: Option<usize>) -> Result<Self, Error> {
        if max_patch_len == Some(0) {
            return Err(Error::InvalidMaxPatchLen);
        }
        self.max_patch_len = max_patch_len;
        Ok(self)
    }

    /// The rule.
    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// The maximum patch length, if any.
    pub fn max_patch_len(&self) -> Option<usize> {
        self.max_patch_len
    }
}

/// The sequential boundary state machine of every rule: it sees one entropy at a time and says
/// whether that byte starts a patch. The streaming decoder and [`LengthScanner`] run on it.
#[derive(Clone, Debug)]
pub struct BoundaryTracker {
    cfg: PatchConfig,
    prev: Option<f32>,
    current_len: usize,
    /// `H[s] + ... + H[i-1]` over the open patch (budget rule).
    sum: f64,
}

impl BoundaryTracker {
    /// A tracker at the start of a document.
    pub fn new(cfg: PatchConfig) -> Self {
        Self {
            cfg,
            prev: None,
            current_len: 0,
            sum: 0.0,
        }
    }

    /// Whether a byte with entropy `h` would start a patch here (does not advance). For the
    /// budget rule the answer does not depend on `h`.
    #[inline]
    pub fn would_start(&self, h: f32) -> bool {
        match self.prev {
            None => true,
            Some(prev) => {
                let by_rule = match self.cfg.rule {
                    Rule::Budget { budget } => self.sum >= budget,
                    rule => rule.starts(h, prev),
                };
                by_rule
                    || self
                        .cfg
                        .max_patch_len
                        .is_some_and(|m| self.current_len >= m)
            }
        }
    }

    /// Advances past a byte with entropy `h`; returns whether it started a patch.
    #[inline]
    pub fn step(&mut self, h: f32) -> bool {
        let start = self.would_start(h);
        if start {
            self.current_len = 1;
            self.sum = 0.0;
        } else {
            self.current_len += 1;
        }
        self.sum += h as f64;
        self.prev = Some(h);
        start
    }

    /// Back to the start of a document.
    pub fn reset(&mut self) {
        self.prev = None;
        self.current_len = 0;
        self.sum = 0.0;
    }

    /// Bytes in the current (open) patch.
    pub fn current_len(&self) -> usize {
        self.current_len
    }

    /// The entropy summed over the open patch so far, `H[s] + ... + H[i-1]` (nats): what the
    /// budget rule compares.
    pub fn patch_entropy(&self) -> f64 {
        self.sum
    }

    /// The configuration.
    pub fn config(&self) -> &PatchConfig {
        &self.cfg
    }
}

/// Patch lengths from entropies fed in order, in bounded memory: the [`BoundaryTracker`] plus
/// the length of the open patch. Each length goes to `emit` as soon as its patch closes.
///
/// ```
/// use bltpatch_core::{LengthScanner, PatchConfig, Rule, lengths_from_entropies};
///
/// let h = [3.0f32, 1.0, 0.5, 2.5, 0.1, 0.2, 4.0];
/// let cfg = PatchConfig::new(Rule::Budget { budget: 2.5 }).unwrap();
/// let mut lengths = Vec::new();
/// let mut scanner = LengthScanner::new(cfg);
/// scanner.feed(&h[..3], |l| lengths.push(l));
/// scanner.feed(&h[3..], |l| lengths.push(l));
/// scanner.finish(|l| lengths.push(l));
/// assert_eq!(lengths, [1, 3, 3]); // 3.0 | 1.0 + 0.5 + 2.5 | 0.1 + 0.2 + 4.0
/// assert_eq!(lengths, lengths_from_entropies(&h, &cfg));
/// ```
#[derive(Clone, Debug)]
pub struct LengthScanner {
    tracker: BoundaryTracker,
    open: usize,
}

impl LengthScanner {
    /// A scanner at the start of a document.
    pub fn new(cfg: PatchConfig) -> Self {
        Self {
            tracker: BoundaryTracker::new(cfg),
            open: 0,
        }
    }

    /// The next byte's entropy; emits the length of the patch it closes, if it starts one.
    #[inline]
    pub fn push(&mut self, h: f32, mut emit: impl FnMut(usize)) {
        if self.tracker.step(h) && self.open > 0 {
            emit(self.open);
            self.open = 0;
        }
        self.open += 1;
    }

    /// [`push`](Self::push) for every entropy of `h`, in order.
    pub fn feed(&mut self, mut h: &[f32], mut emit: impl FnMut(usize)) {
        if self.tracker.prev.is_none() {
            let Some((&first, rest)) = h.split_first() else {
                return;
            };
            self.push(first, &mut emit);
            h = rest;
        }
        let Rule::Budget { budget } = self.tracker.cfg.rule else {
            for &x in h {
                self.push(x, &mut emit);
            }
            return;
        };
        // The budget rule's hot loop: the tracker's decision with its state in registers.
        let max = self.tracker.cfg.max_patch_len.unwrap_or(usize::MAX);
        let (mut sum, mut open) = (self.tracker.sum, self.open);
        for &x in h {
            if sum >= budget || open >= max {
                emit(open);
                open = 0;
                sum = 0.0;
            }
            open += 1;
            sum += x as f64;
        }
        self.tracker.sum = sum;
        self.tracker.current_len = open;
        self.open = open;
        if let Some(&last) = h.last() {
            self.tracker.prev = Some(last);
        }
    }

    /// Ends the document: emits the open patch, if any.
    pub fn finish(self, mut emit: impl FnMut(usize)) {
        if self.open > 0 {
            emit(self.open);
        }
    }
}

/// Turns an increasing sequence of *natural* patch starts into patch lengths, inserting the
/// forced starts of `max_patch_len` in every longer gap.
///
/// Position 0 is the implicit first start; feed the later natural starts in increasing order
/// with [`start_at`](Self::start_at), then [`finish`](Self::finish) with the total length.
#[derive(Debug)]
pub struct LengthBuilder<F: FnMut(usize)> {
    last_start: usize,
    max_patch_len: Option<usize>,
    emit: F,
}

impl<F: FnMut(usize)> LengthBuilder<F> {
    /// A builder whose first patch starts at byte 0; each finished length goes to `emit`.
    pub fn new(max_patch_len: Option<usize>, emit: F) -> Self {
        Self {
            last_start: 0,
            max_patch_len,
            emit,
        }
    }

    /// A natural start at `pos` (> every previous start).
    #[inline]
    pub fn start_at(&mut self, pos: usize) {
        debug_assert!(pos > self.last_start);
        self.close(pos);
        self.last_start = pos;
    }

    #[inline]
    fn close(&mut self, end: usize) {
        let mut gap = end - self.last_start;
        if let Some(m) = self.max_patch_len {
            while gap > m {
                (self.emit)(m);
                gap -= m;
            }
        }
        (self.emit)(gap);
    }

    /// Ends the document at byte `n` (> 0) and emits the last patch(es).
    pub fn finish(mut self, n: usize) {
        if n > self.last_start {
            self.close(n);
        }
    }
}

/// Width of the blocks in which natural starts are found with a bit mask.
const BLOCK: usize = 64;

/// Calls `f(i)` for every natural start `i` in `from..entropies.len()` (`from >= 1`) of a local
/// rule ([`Rule::is_local`]), in increasing order. `entropies[i - 1]` is read for the relative
/// rules. A [`Rule::Budget`] has no natural starts: nothing is called.
///
/// The comparisons of a block of 64 positions are gathered into a `u64` mask without branches
/// (SSE2 compare + movemask on x86-64, a plain loop elsewhere; comparisons and the `f32`
/// subtraction are exact IEEE operations, so every target decides the same), then the set bits
/// are visited.
#[inline]
pub fn for_each_natural_start(
    rule: Rule,
    entropies: &[f32],
    from: usize,
    mut f: impl FnMut(usize),
) {
    assert!(from >= 1, "position 0 always starts a patch");
    if !rule.is_local() {
        return;
    }
    let n = entropies.len();
    let mut base = from;
    while base < n {
        let end = (base + BLOCK).min(n);
        let mut mask = if end - base == BLOCK {
            block_mask(rule, &entropies[base - 1..end])
        } else {
            tail_mask(rule, &entropies[base - 1..end])
        };
        while mask != 0 {
            f(base + mask.trailing_zeros() as usize);
            mask &= mask - 1;
        }
        base = end;
    }
}

/// The start mask of `w[1..]` given `w[j]` as the previous entropy of `w[j + 1]`
/// (`w.len() <= 65`).
#[inline]
fn tail_mask(rule: Rule, w: &[f32]) -> u64 {
    let mut mask = 0u64;
    for j in 1..w.len() {
        mask |= (rule.starts(w[j], w[j - 1]) as u64) << (j - 1);
    }
    mask
}

/// [`tail_mask`] for a full block: `w.len() == 65`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn block_mask(rule: Rule, w: &[f32]) -> u64 {
    use std::arch::x86_64::*;
    assert_eq!(w.len(), BLOCK + 1);
    let cur = w[1..].as_ptr();
    let prev = w.as_ptr();
    let mut mask = 0u64;
    // SAFETY: SSE2 is part of the x86-64 baseline; every load reads 4 floats inside `w`
    // (offsets 0..64 of `cur` = w[1..65], of `prev` = w[0..64]).
    unsafe {
        match rule {
            Rule::Global { threshold } => {
                let t = _mm_set1_ps(threshold);
                for g in 0..BLOCK / 4 {
                    let h = _mm_loadu_ps(cur.add(4 * g));
                    mask |= (_mm_movemask_ps(_mm_cmpgt_ps(h, t)) as u64) << (4 * g);
                }
            }
            Rule::Relative { relative_threshold } => {
                let r = _mm_set1_ps(relative_threshold);
                for g in 0..BLOCK / 4 {
                    let h = _mm_loadu_ps(cur.add(4 * g));
                    let p = _mm_loadu_ps(prev.add(4 * g));
                    mask |= (_mm_movemask_ps(_mm_cmpgt_ps(_mm_sub_ps(h, p), r)) as u64) << (4 * g);
                }
            }
            Rule::Combined {
                threshold,
                relative_threshold,
            } => {
                let t = _mm_set1_ps(threshold);
                let r = _mm_set1_ps(relative_threshold);
                for g in 0..BLOCK / 4 {
                    let h = _mm_loadu_ps(cur.add(4 * g));
                    let p = _mm_loadu_ps(prev.add(4 * g));
                    let both = _mm_and_ps(_mm_cmpgt_ps(h, t), _mm_cmpgt_ps(_mm_sub_ps(h, p), r));
                    mask |= (_mm_movemask_ps(both) as u64) << (4 * g);
                }
            }
            Rule::Budget { .. } => {}
        }
    }
    mask
}

/// [`tail_mask`] for a full block: `w.len() == 65`.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn block_mask(rule: Rule, w: &[f32]) -> u64 {
    tail_mask(rule, w)
}

/// Patch lengths of a document from its entropies `H[0..n)` (fast kernels: the block kernel of
/// natural starts for the threshold rules, the [`LengthScanner`] for the budget rule).
///
/// Shapes: `entropies: [n]` → lengths summing to `n` (empty for `n == 0`). `O(n)`.
pub fn lengths_from_entropies(entropies: &[f32], cfg: &PatchConfig) -> Vec<usize> {
    let n = entropies.len();
    let mut out = Vec::with_capacity(n / 4 + 1);
    lengths_from_entropies_into(entropies, cfg, |l| out.push(l));
    out
}

/// Like [`lengths_from_entropies`], handing each length to `emit` in order.
pub fn lengths_from_entropies_into(
    entropies: &[f32],
    cfg: &PatchConfig,
    mut emit: impl FnMut(usize),
) {
    let n = entropies.len();
    if n == 0 {
        return;
    }
    if !cfg.rule.is_local() {
        let mut scanner = LengthScanner::new(*cfg);
        scanner.feed(entropies, &mut emit);
        scanner.finish(emit);
        return;
    }
    let mut builder = LengthBuilder::new(cfg.max_patch_len, emit);
    for_each_natural_start(cfg.rule, entropies, 1, |i| builder.start_at(i));
    builder.finish(n);
}
