//! Threshold calibration: the threshold that gives a target mean patch length on given text.
//!
//! Without `max_patch_len`, the number of patches at threshold `t` is
//! `docs + #{ i >= 1 : v[i] > t }`, where `v[i]` is the value the rule compares (`H[i]` for the
//! global rule, `H[i] - H[i-1]` for the relative one, `H[i]` among positions that pass the fixed
//! relative condition for the combined one). That is a quantile question: the values are sorted
//! once and every candidate threshold is answered by a binary search, so calibration is exact
//! and `O(n log n)`. With `max_patch_len` the count also depends on the gaps, but it still falls
//! as `t` rises, so a binary search over the same sorted candidates, counting patches in `O(n)`
//! each time, finds the best one in `O(n log n)`.
//!
//! The chosen threshold lies in the middle of the interval of thresholds that all give the
//! chosen count, away from the entropies themselves. The reported mean is measured by
//! segmenting with the chosen configuration.
//!
//! The budget rule's patch count also falls as the budget rises (a larger budget never closes a
//! patch earlier, and a later start never makes the next patch close earlier, since `H >= 0`),
//! but it is a sequential scan, not a quantile: the budget is found by bisection over the `f64`
//! bit patterns of `[0, Σ H]` (about 64 scans, each `O(n)`), once for the lowest budget giving
//! the chosen count and once for the lowest giving fewer; the budget returned is the midpoint of
//! that interval.

use crate::Error;
use crate::rule::{LengthBuilder, LengthScanner, PatchConfig, Rule, for_each_natural_start};

/// Which parameter to calibrate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CalibrationTarget {
    /// The threshold of [`Rule::Global`].
    Global,
    /// The relative threshold of [`Rule::Relative`].
    Relative,
    /// The global threshold of [`Rule::Combined`], with this relative threshold fixed.
    Combined {
        /// The fixed relative threshold.
        relative_threshold: f32,
    },
    /// The budget of [`Rule::Budget`].
    Budget,
}

/// The result of a calibration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calibration {
    /// The calibrated configuration.
    pub config: PatchConfig,
    /// The calibrated value (the global threshold, the relative one for `Relative`, the budget
    /// for `Budget`).
    pub value: f64,
    /// The mean patch length it achieves on the calibration text.
    pub mean_patch_len: f64,
    /// Patches on the calibration text.
    pub patches: usize,
    /// Bytes of calibration text.
    pub bytes: usize,
}

/// Finds the threshold whose mean patch length on the documents (given by their entropies
/// `H[0..n_d)`) is closest to `target_mean_len`.
///
/// ```
/// use bltpatch_core::{calibrate, CalibrationTarget};
///
/// let h: Vec<f32> = (0..1000).map(|i| ((i * 37) % 101) as f32 / 20.0).collect();
/// let c = calibrate(&[&h], CalibrationTarget::Global, 4.0, None).unwrap();
/// assert!((c.mean_patch_len - 4.0).abs() < 0.04);
/// ```
///
/// # Errors
/// A target below 1 or not finite, `max_patch_len == Some(0)`, or no bytes at all.
pub fn calibrate(
    docs: &[&[f32]],
    target: CalibrationTarget,
    target_mean_len: f64,
    max_patch_len: Option<usize>,
) -> Result<Calibration, Error> {
    if !(target_mean_len.is_finite() && target_mean_len >= 1.0) {
        return Err(Error::InvalidTarget(target_mean_len));
    }
    if max_patch_len == Some(0) {
        return Err(Error::InvalidMaxPatchLen);
    }
    let bytes: usize = docs.iter().map(|d| d.len()).sum();
    if bytes == 0 {
        return Err(Error::EmptyCalibrationText);
    }
    if target == CalibrationTarget::Budget {
        return calibrate_budget(docs, target_mean_len, max_patch_len, bytes);
    }
    let nonempty = docs.iter().filter(|d| !d.is_empty()).count();
    let rule_at = |t: f32| match target {
        CalibrationTarget::Global => Rule::Global { threshold: t },
        CalibrationTarget::Relative => Rule::Relative {
            relative_threshold: t,
        },
        CalibrationTarget::Combined { relative_threshold } => Rule::Combined {
            threshold: t,
            relative_threshold,
        },
        CalibrationTarget::Budget => unreachable!("handled above"),
    };

    let mut values = compared_values(docs, target);
    values.sort_unstable_by(f32::total_cmp);
    // Candidate thresholds: 0 and every distinct compared value above it, ascending.
    let mut candidates = vec![0f32];
    for &v in &values {
        if v > *candidates.last().unwrap() {
            candidates.push(v);
        }
    }
    let patches_at = |t: f32| -> usize {
        match max_patch_len {
            None => nonempty + values.len() - values.partition_point(|&v| v <= t),
            Some(_) => count_patches(docs, rule_at(t), max_patch_len),
        }
    };
    let wanted = bytes as f64 / target_mean_len;
    let err = |p: usize| (p as f64 - wanted).abs();
    // patches_at falls as the threshold rises: find the first candidate at or below `wanted`.
    let (mut lo, mut hi) = (0, candidates.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if (patches_at(candidates[mid]) as f64) <= wanted {
            hi = mid
        } else {
            lo = mid + 1
        }
    }
    let k = match lo {
        0 => 0,
        k if k == candidates.len() => k - 1,
        k if err(patches_at(candidates[k - 1])) <= err(patches_at(candidates[k])) => k - 1,
        k => k,
    };
    let value = match candidates.get(k + 1) {
        Some(&next) => midpoint(candidates[k], next),
        None => candidates[k],
    };
    let config = PatchConfig::new(rule_at(value))?.with_max_patch_len(max_patch_len)?;
    let patches = count_patches(docs, config.rule(), max_patch_len);
    Ok(Calibration {
        config,
        value: value as f64,
        mean_patch_len: bytes as f64 / patches as f64,
        patches,
        bytes,
    })
}

/// [`calibrate`] for the budget rule (see the module docs).
fn calibrate_budget(
    docs: &[&[f32]],
    target_mean_len: f64,
    max_patch_len: Option<usize>,
    bytes: usize,
) -> Result<Calibration, Error> {
    let count = |b: f64| count_patches(docs, Rule::Budget { budget: b }, max_patch_len);
    // Budgets above the largest document's whole entropy give the fewest patches.
    let top = docs
        .iter()
        .map(|h| h.iter().map(|&x| x as f64).sum::<f64>())
        .fold(0f64, f64::max)
        .max(0.0)
        * 2.0
        + 1.0;
    // The lowest budget in [0, top] whose count is at most `k` (count falls as budget rises).
    let lowest_at_most = |k: usize| -> f64 {
        let (mut lo, mut hi) = (0u64, top.to_bits());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if count(f64::from_bits(mid)) <= k {
                hi = mid
            } else {
                lo = mid + 1
            }
        }
        f64::from_bits(lo)
    };
    let wanted = bytes as f64 / target_mean_len;
    let at_or_below = lowest_at_most(wanted.floor() as usize);
    let below_count = count(at_or_below);
    // The nearest count above `wanted`: the one just below `at_or_below`.
    let above = if at_or_below > 0.0 {
        Some(count(f64::from_bits(at_or_below.to_bits() - 1)))
    } else {
        None
    };
    let err = |p: usize| (p as f64 - wanted).abs();
    let chosen = match above {
        Some(a) if err(a) < err(below_count) => a,
        _ => below_count,
    };
    // The interval of budgets giving exactly `chosen`: [lowest_at_most(chosen), lowest_at_most(chosen - 1)).
    let lo = lowest_at_most(chosen);
    let hi = if chosen > 0 {
        lowest_at_most(chosen - 1)
    } else {
        lo
    };
    let mid = lo + (hi - lo) / 2.0;
    let value = if mid >= lo && mid < hi && count(mid) == chosen {
        mid
    } else {
        lo
    };
    let config =
        PatchConfig::new(Rule::Budget { budget: value })?.with_max_patch_len(max_patch_len)?;
    let patches = count(value);
    Ok(Calibration {
        config,
        value,
        mean_patch_len: bytes as f64 / patches as f64,
        patches,
        bytes,
    })
}

/// A value in `[a, b)`, as near the middle as `f32` allows.
fn midpoint(a: f32, b: f32) -> f32 {
    let m = ((a as f64 + b as f64) / 2.0) as f32;
    if m >= a && m < b { m } else { a }
}

/// The value each position `i >= 1` compares against the calibrated threshold; positions that
/// can never start a patch under the target rule are left out.
fn compared_values(docs: &[&[f32]], target: CalibrationTarget) -> Vec<f32> {
    let mut out = Vec::with_capacity(docs.iter().map(|d| d.len()).sum());
    for h in docs {
        for i in 1..h.len() {
            match target {
                CalibrationTarget::Global => out.push(h[i]),
                CalibrationTarget::Relative => out.push(h[i] - h[i - 1]),
                CalibrationTarget::Combined { relative_threshold } => {
                    if h[i] - h[i - 1] > relative_threshold {
                        out.push(h[i]);
                    }
                }
                CalibrationTarget::Budget => {}
            }
        }
    }
    out
}

/// Number of patches that `rule` and `max_patch_len` give on the documents.
pub fn count_patches(docs: &[&[f32]], rule: Rule, max_patch_len: Option<usize>) -> usize {
    let mut count = 0;
    if !rule.is_local() {
        let cfg = PatchConfig {
            rule,
            max_patch_len,
        };
        for h in docs.iter().filter(|h| !h.is_empty()) {
            let mut scanner = LengthScanner::new(cfg);
            scanner.feed(h, |_| count += 1);
            scanner.finish(|_| count += 1);
        }
        return count;
    }
    for h in docs.iter().filter(|h| !h.is_empty()) {
        let mut builder = LengthBuilder::new(max_patch_len, |_| count += 1);
        for_each_natural_start(rule, h, 1, |i| builder.start_at(i));
        builder.finish(h.len());
    }
    count
}
