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

use crate::Error;
use crate::rule::{LengthBuilder, PatchConfig, Rule, for_each_natural_start};

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
}

/// The result of a calibration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calibration {
    /// The calibrated configuration.
    pub config: PatchConfig,
    /// The calibrated value (the global threshold, or the relative one for `Relative`).
    pub value: f32,
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
            }
        }
    }
    out
}

/// Number of patches that `rule` and `max_patch_len` give on the documents.
pub fn count_patches(docs: &[&[f32]], rule: Rule, max_patch_len: Option<usize>) -> usize {
    let mut count = 0;
    for h in docs.iter().filter(|h| !h.is_empty()) {
        let mut builder = LengthBuilder::new(max_patch_len, |_| count += 1);
        for_each_natural_start(rule, h, 1, |i| builder.start_at(i));
        builder.finish(h.len());
    }
    count
}
