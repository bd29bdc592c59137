//! Patch quality: how much information each patch carries, for a scheme and for the baselines
//! at the same mean patch length.
//!
//! Entropy patching exists to spend one step of a large model on each patch, so a good
//! segmentation gives patches of even information. The information of a patch is the sum of
//! its bytes' surprisals `-log2 p(x[i] | context)` under some model, in bits. A model judging
//! the patches it placed itself flatters itself, so the surprisals should come from another
//! model (`bltpatch eval --reference-model DIR`).
//!
//! Measures per scheme ([`PatchStats`]): the number of patches and their length statistics, the
//! mean information per patch, its coefficient of variation (standard deviation / mean; lower
//! is more even) and the share of patches under 2 bits (patches that carry almost nothing, a
//! waste of a large-model step).
//!
//! [`compare`] puts a segmentation next to the baselines at the same mean length:
//!
//! - `static` with the size whose patch count is nearest to the scheme's (a fractional size
//!   spreads boundaries evenly, so the mean matches exactly for one document and to within one
//!   patch per document otherwise);
//! - `space` as it is when its mean is already at or below the target, else capped by the
//!   `max_patch_len` whose mean is nearest the target (space patches cannot be made longer);
//!   the cap is reported;
//! - `bpe`: cl100k tokens as they are (their mean is their own: to compare at the same mean,
//!   calibrate the scheme to BPE's mean, as `bltpatch eval --at-bpe-mean` does).

use serde::Serialize;

use crate::bpe::bpe_lengths;
use bltpatch_core::{space_lengths, static_lengths};

/// Information below this many bits makes a patch "nearly empty".
pub const LOW_INFORMATION_BITS: f64 = 2.0;

/// The patches of one scheme over some documents, with each patch's information in bits.
#[derive(Clone, Debug, Default)]
pub struct PatchStats {
    lengths: Vec<usize>,
    information: Vec<f64>,
}

/// A summary of [`PatchStats`], as `bltpatch eval --json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Number of patches.
    pub patches: usize,
    /// Mean patch length in bytes.
    pub mean_patch_len: f64,
    /// Median patch length.
    pub median_patch_len: usize,
    /// 90th percentile of the patch length.
    pub p90_patch_len: usize,
    /// Longest patch.
    pub longest_patch: usize,
    /// Mean information per patch, bits.
    pub mean_patch_bits: f64,
    /// Coefficient of variation of the information per patch.
    pub patch_information_cv: f64,
    /// Share of patches under [`LOW_INFORMATION_BITS`].
    pub share_under_2_bits: f64,
}

impl PatchStats {
    /// Adds one document: its patch lengths and the surprisal of each byte in nats
    /// (`surprisal.len()` = the lengths' sum).
    pub fn add(&mut self, lengths: &[usize], surprisal: &[f32]) {
        assert_eq!(lengths.iter().sum::<usize>(), surprisal.len());
        let mut at = 0;
        for &l in lengths {
            let nats: f64 = surprisal[at..at + l].iter().map(|&x| x as f64).sum();
            self.information.push(nats / std::f64::consts::LN_2);
            at += l;
        }
        self.lengths.extend_from_slice(lengths);
    }

    /// The patch lengths, documents one after the other.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// Each patch's information in bits.
    pub fn information(&self) -> &[f64] {
        &self.information
    }

    /// Mean patch length (0 without patches).
    pub fn mean_len(&self) -> f64 {
        if self.lengths.is_empty() {
            return 0.0;
        }
        self.lengths.iter().sum::<usize>() as f64 / self.lengths.len() as f64
    }

    fn quantile(&self, q: f64) -> usize {
        if self.lengths.is_empty() {
            return 0;
        }
        let mut sorted = self.lengths.clone();
        sorted.sort_unstable();
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }

    /// Coefficient of variation (population std / mean) of the information per patch.
    pub fn information_cv(&self) -> f64 {
        let n = self.information.len() as f64;
        if n == 0.0 {
            return 0.0;
        }
        let mean = self.information.iter().sum::<f64>() / n;
        let var = self
            .information
            .iter()
            .map(|x| (x - mean).powi(2))
            .sum::<f64>()
            / n;
        if mean > 0.0 { var.sqrt() / mean } else { 0.0 }
    }

    /// The summary.
    pub fn summary(&self) -> Summary {
        let n = self.information.len();
        Summary {
            patches: self.lengths.len(),
            mean_patch_len: self.mean_len(),
            median_patch_len: self.quantile(0.5),
            p90_patch_len: self.quantile(0.9),
            longest_patch: self.lengths.iter().max().copied().unwrap_or(0),
            mean_patch_bits: if n > 0 {
                self.information.iter().sum::<f64>() / n as f64
            } else {
                0.0
            },
            patch_information_cv: self.information_cv(),
            share_under_2_bits: if n > 0 {
                self.information
                    .iter()
                    .filter(|&&b| b < LOW_INFORMATION_BITS)
                    .count() as f64
                    / n as f64
            } else {
                0.0
            },
        }
    }
}

/// A scheme's patches next to the baselines at the same mean length.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The scheme being judged.
    pub scheme: Summary,
    /// Static patches of `static_size` bytes.
    #[serde(rename = "static")]
    pub fixed: Summary,
    /// The static size used.
    pub static_size: f64,
    /// Space patches.
    pub space: Summary,
    /// The cap that brought space patches to the target mean, if one was needed.
    pub space_max_patch_len: Option<usize>,
    /// cl100k BPE tokens.
    pub bpe: Summary,
}

/// Compares a segmentation (`lengths[d]` of `docs[d]`) with the baselines at its mean length,
/// measuring information with `surprisal[d]` (nats per byte, from the reference model).
pub fn compare(docs: &[&[u8]], lengths: &[Vec<usize>], surprisal: &[Vec<f32>]) -> Comparison {
    assert!(docs.len() == lengths.len() && docs.len() == surprisal.len());
    let stats_of = |lens: &dyn Fn(usize) -> Vec<usize>| {
        let mut s = PatchStats::default();
        for (d, info) in surprisal.iter().enumerate() {
            s.add(&lens(d), info);
        }
        s
    };
    let scheme = stats_of(&|d| lengths[d].clone());
    let patches = scheme.lengths.len();
    let bytes: usize = docs.iter().map(|d| d.len()).sum();
    let target = if patches > 0 {
        bytes as f64 / patches as f64
    } else {
        1.0
    };
    let static_size = matched_static_size(docs, patches, target);
    let fixed = stats_of(&|d| static_lengths(docs[d].len(), static_size).expect("size >= 1"));
    let space_with = |m: Option<usize>| stats_of(&|d| space_lengths(docs[d], m).expect("m >= 1"));
    let mut space = space_with(None);
    let mut space_max_patch_len = None;
    if patches > 0 && space.mean_len() > target {
        let (best, _) = (1..=64usize)
            .map(|m| (m, (space_with(Some(m)).mean_len() - target).abs()))
            .fold((1, f64::INFINITY), |b, c| if c.1 < b.1 { c } else { b });
        space_max_patch_len = Some(best);
        space = space_with(Some(best));
    }
    let bpe = stats_of(&|d| bpe_lengths(docs[d]));
    Comparison {
        scheme: scheme.summary(),
        fixed: fixed.summary(),
        static_size,
        space: space.summary(),
        space_max_patch_len,
        bpe: bpe.summary(),
    }
}

/// The static size (>= 1) whose total patch count over `docs` is nearest `patches`.
fn matched_static_size(docs: &[&[u8]], patches: usize, target: f64) -> f64 {
    let count = |s: f64| -> usize {
        docs.iter()
            .map(|d| (d.len() as f64 / s).ceil() as usize)
            .sum()
    };
    if patches == 0 || target <= 1.0 {
        return 1.0;
    }
    // count falls as the size grows: the smallest size whose count is at most `patches`.
    let (mut lo, mut hi) = (1f64.to_bits(), (2.0 * target).max(2.0).to_bits());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if count(f64::from_bits(mid)) <= patches {
            hi = mid
        } else {
            lo = mid + 1
        }
    }
    let at_most = f64::from_bits(lo);
    let below = f64::from_bits(lo.saturating_sub(1)).max(1.0);
    let err = |s: f64| (count(s) as f64 - patches as f64).abs();
    if err(below) < err(at_most) {
        below
    } else {
        at_most
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn information_statistics() {
        let mut s = PatchStats::default();
        let ln2 = std::f32::consts::LN_2;
        // Two patches of 1 and 3 bits.
        s.add(&[1, 2], &[ln2, ln2, 2.0 * ln2]);
        let m = s.summary();
        assert_eq!(m.patches, 2);
        assert!((m.mean_patch_bits - 2.0).abs() < 1e-6);
        assert!((m.patch_information_cv - 0.5).abs() < 1e-6);
        assert_eq!(m.share_under_2_bits, 0.5);
        assert_eq!(m.mean_patch_len, 1.5);
    }

    #[test]
    fn baselines_are_matched_to_the_mean() {
        let text = include_bytes!("../../../datasets/en_books_slice.txt");
        let docs: Vec<&[u8]> = vec![&text[..]];
        let lengths = static_lengths(text.len(), 4.37).unwrap();
        let surprisal = vec![vec![1.0f32; text.len()]];
        let c = compare(&docs, std::slice::from_ref(&lengths), &surprisal);
        // Static patches at exactly the same count.
        assert_eq!(c.fixed.patches, lengths.len());
        assert!((c.fixed.mean_patch_len - c.scheme.mean_patch_len).abs() < 1e-9);
        // English words average more than 4.37 bytes with their space: space patches are capped.
        assert!(c.space_max_patch_len.is_some());
        assert!((c.space.mean_patch_len - c.scheme.mean_patch_len).abs() < 0.5);
        assert_eq!(c.bpe.patches, bpe_lengths(text).len());
    }
}
