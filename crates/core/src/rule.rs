//! The patching rules of entropy patching, and the fast kernels that apply them.
//!
//! For bytes `x[0..n)` with entropies `H[0..n)`:
//!
//! - byte 0 always starts a patch;
//! - for `i >= 1`, byte `i` starts a patch when the [`Rule`] holds:
//!   `Global`: `H[i] > threshold`; `Relative`: `H[i] - H[i-1] > relative_threshold` (computed in
//!   `f32`); `Combined`: both;
//! - with `max_patch_len = M`, a byte also starts a patch when the current patch already holds
//!   `M` bytes. Such a forced start changes no entropy, so the rule decisions after it are
//!   unchanged.
//!
//! Comparisons are strict. The plain loops in [`crate::reference`] are the definition that the
//! kernels here are tested against.
//!
//! Because forced starts do not influence rule decisions, segmentation splits into two steps:
//! find the *natural* starts (independent per position, so they vectorise and parallelise), then
//! cut every gap longer than `M` into pieces of `M` ([`LengthBuilder`]).

use crate::Error;

/// Which entropy condition starts a patch at byte `i >= 1`.
#[derive(Clone, Copy, Debug, PartialEq)]
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
}

impl Rule {
    /// Whether a byte with entropy `h`, following a byte with entropy `prev`, starts a patch
    /// (for positions `i >= 1`).
    #[inline(always)]
    pub fn starts(&self, h: f32, prev: f32) -> bool {
        match *self {
            Rule::Global { threshold } => h > threshold,
            Rule::Relative { relative_threshold } => h - prev > relative_threshold,
            Rule::Combined {
                threshold,
                relative_threshold,
            } => (h > threshold) & (h - prev > relative_threshold),
        }
    }

    /// Whether the rule reads `H[i-1]`.
    pub fn uses_previous(&self) -> bool {
        !matches!(self, Rule::Global { .. })
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
        }
    }
}

/// A validated entropy-patching configuration: a [`Rule`] and an optional `max_patch_len`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PatchConfig {
    rule: Rule,
    max_patch_len: Option<usize>,
}

impl PatchConfig {
    /// A configuration with no maximum patch length.
    ///
    /// # Errors
    /// Thresholds that are NaN, infinite or negative.
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

/// The sequential boundary state machine used by the streaming decoder: it sees one entropy at a
/// time and says whether that byte starts a patch.
#[derive(Clone, Debug)]
pub struct BoundaryTracker {
    cfg: PatchConfig,
    prev: Option<f32>,
    current_len: usize,
}

impl BoundaryTracker {
    /// A tracker at the start of a document.
    pub fn new(cfg: PatchConfig) -> Self {
        Self {
            cfg,
            prev: None,
            current_len: 0,
        }
    }

    /// Whether a byte with entropy `h` would start a patch here (does not advance).
    #[inline]
    pub fn would_start(&self, h: f32) -> bool {
        match self.prev {
            None => true,
            Some(prev) => {
                self.cfg.rule.starts(h, prev)
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
        self.current_len = if start { 1 } else { self.current_len + 1 };
        self.prev = Some(h);
        start
    }

    /// Back to the start of a document.
    pub fn reset(&mut self) {
        self.prev = None;
        self.current_len = 0;
    }

    /// Bytes in the current (open) patch.
    pub fn current_len(&self) -> usize {
        self.current_len
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

/// Calls `f(i)` for every natural start `i` in `from..entropies.len()` (`from >= 1`), in
/// increasing order. `entropies[i - 1]` is read for the relative rules.
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

/// Patch lengths of a document from its entropies `H[0..n)` (fast kernel).
///
/// Shapes: `entropies: [n]` → lengths summing to `n` (empty for `n == 0`). `O(n)`.
pub fn lengths_from_entropies(entropies: &[f32], cfg: &PatchConfig) -> Vec<usize> {
    let n = entropies.len();
    let mut out = Vec::with_capacity(n / 4 + 1);
    if n == 0 {
        return out;
    }
    let mut builder = LengthBuilder::new(cfg.max_patch_len, |l| out.push(l));
    for_each_natural_start(cfg.rule, entropies, 1, |i| builder.start_at(i));
    builder.finish(n);
    out
}
