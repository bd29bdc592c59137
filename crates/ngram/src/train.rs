//! Training: counting, continuation counts, discounts and node entropies.

use rayon::prelude::*;

use crate::{Level, MASKS, NgramConfig, NgramError, NgramModel, pack};

/// Sorted distinct keys and their multiplicities.
fn run_lengths(mut keys: Vec<u64>) -> (Vec<u64>, Vec<u32>) {
    keys.par_sort_unstable();
    let mut out_keys = Vec::new();
    let mut out_counts: Vec<u32> = Vec::new();
    for k in keys {
        if out_keys.last() == Some(&k) {
            *out_counts.last_mut().unwrap() += 1;
        } else {
            out_keys.push(k);
            out_counts.push(1);
        }
    }
    (out_keys, out_counts)
}

/// The Ney discount `n1 / (n1 + 2 n2)` of a list of counts, clamped into `[0.05, 0.95]`
/// (`0.5` when undefined), rounded to f32.
fn discount(counts: &[u32]) -> f32 {
    let n1 = counts.iter().filter(|&&c| c == 1).count() as f64;
    let n2 = counts.iter().filter(|&&c| c == 2).count() as f64;
    let d = if n1 + n2 == 0.0 {
        0.5
    } else {
        n1 / (n1 + 2.0 * n2)
    };
    d.clamp(0.05, 0.95) as f32
}

/// Groups the sorted n-grams of one order (key = context << 8 | byte) into nodes.
fn build_level(keys: &[u64], counts: &[u32]) -> Level {
    let mut level = Level::default();
    for (&key, &count) in keys.iter().zip(counts) {
        let ctx = key >> 8;
        if level.contexts.last() != Some(&ctx) {
            level.contexts.push(ctx);
            level.offsets.push(level.next_bytes.len() as u32);
            level.total.push(0);
        }
        level.next_bytes.push(key as u8);
        level.next_counts.push(count);
        *level.total.last_mut().unwrap() += count;
    }
    level.offsets.push(level.next_bytes.len() as u32);
    level
}

/// Index of `suffix` contexts of every node of `level` (length `l >= 1`) in `lower`.
pub(crate) fn parents(l: usize, level: &Level, lower: &Level) -> Option<Vec<u32>> {
    level
        .contexts
        .par_iter()
        .map(|&ctx| {
            lower
                .contexts
                .binary_search(&(ctx & MASKS[l - 1]))
                .ok()
                .map(|j| j as u32)
        })
        .collect()
}

/// `-p ln p` for `p > 0`, with the portable `libm`.
#[inline]
fn plogp(p: f64) -> f64 {
    if p > 0.0 { p * libm::log(p) } else { 0.0 }
}

/// The entropies (f64) of every node of level `l`, given the levels below (with parents) and
/// the f64 entropies of level `l - 1`.
fn level_entropies(levels: &[Level], discounts: &[f32], l: usize, lower_h: &[f64]) -> Vec<f64> {
    let level = &levels[l];
    let d = discounts[l] as f64;
    (0..level.len())
        .into_par_iter()
        .map(|j| {
            let (lo, hi) = (level.offsets[j] as usize, level.offsets[j + 1] as usize);
            let t = level.total[j] as f64;
            let distinct = hi - lo;
            let lambda = d * distinct as f64 / t;
            // Chain of ancestors: chain[m] is the node of length m, for m < l.
            let mut chain = [0u32; crate::MAX_ORDER];
            if l > 0 {
                chain[l - 1] = level.parent[j];
                for m in (1..l).rev() {
                    chain[m - 1] = levels[m].parent[chain[m] as usize];
                }
            }
            let parent_h = if l == 0 {
                libm::log(256.0)
            } else {
                lower_h[chain[l - 1] as usize]
            };
            let mut seen_terms = 0.0; // Σ_{b∈S} P_s(b) ln P_s(b)
            let mut parent_mass = 0.0; // Σ_{b∈S} P_p(b)
            let mut parent_terms = 0.0; // Σ_{b∈S} P_p(b) ln P_p(b)
            for k in lo..hi {
                let b = level.next_bytes[k];
                let mut pp = 1.0 / 256.0;
                for (m, &node) in chain.iter().enumerate().take(l) {
                    pp = levels[m].prob(node as usize, b, discounts[m] as f64, pp);
                }
                let ps =
                    ((level.next_counts[k] as f64 - d).max(0.0) + d * distinct as f64 * pp) / t;
                seen_terms += plogp(ps);
                parent_mass += pp;
                parent_terms += plogp(pp);
            }
            let rest = if distinct == 256 {
                0.0
            } else {
                plogp(lambda) * (1.0 - parent_mass) - lambda * (parent_h + parent_terms)
            };
            (-(seen_terms + rest)).max(0.0)
        })
        .collect()
}

impl NgramModel {
    /// Trains a model on documents (each counted separately: no n-gram crosses two documents).
    ///
    /// Deterministic: the same documents and order give the same model, bit for bit, for any
    /// thread count. Takes `O(n log n)` time for `n` bytes and about `8·n` bytes of working
    /// memory besides the model.
    ///
    /// # Errors
    /// An invalid order, no bytes at all, or more than `u32::MAX` bytes.
    pub fn train(docs: &[&[u8]], cfg: &NgramConfig) -> Result<NgramModel, NgramError> {
        cfg.validate()?;
        let bytes: u64 = docs.iter().map(|d| d.len() as u64).sum();
        if bytes == 0 {
            return Err(NgramError::EmptyCorpus);
        }
        if bytes > u32::MAX as u64 {
            return Err(NgramError::CorpusTooLarge(bytes));
        }
        let k = cfg.order;
        let c = k - 1;

        // Highest order: raw counts of every k-gram (key: the k bytes, big-endian).
        let grams: Vec<u64> = docs
            .par_iter()
            .flat_map_iter(|d| {
                let mut reg = 0u64;
                d.iter().enumerate().filter_map(move |(i, &b)| {
                    reg = (reg << 8) | b as u64;
                    (i + 1 >= k).then_some(reg & MASKS[k])
                })
            })
            .collect();
        let mut ngrams: Vec<(Vec<u64>, Vec<u32>)> = vec![(Vec::new(), Vec::new()); k];
        ngrams[c] = run_lengths(grams);

        // Lower orders: continuation counts (distinct left extensions, plus document starts).
        for l in (0..c).rev() {
            let mask = MASKS[l + 1];
            let mut list: Vec<u64> = ngrams[l + 1].0.par_iter().map(|&g| g & mask).collect();
            let mut starts: Vec<u64> = docs
                .iter()
                .filter(|d| d.len() > l)
                .map(|d| pack(&d[..=l]))
                .collect();
            starts.sort_unstable();
            starts.dedup();
            list.extend(starts);
            ngrams[l] = run_lengths(list);
        }

        let discounts: Vec<f32> = ngrams.iter().map(|(_, counts)| discount(counts)).collect();
        let mut levels: Vec<Level> = ngrams
            .iter()
            .map(|(keys, counts)| build_level(keys, counts))
            .collect();
        drop(ngrams);
        for l in 1..k {
            let (below, above) = levels.split_at_mut(l);
            above[0].parent =
                parents(l, &above[0], &below[l - 1]).expect("training builds suffix-closed nodes");
        }
        let mut lower_h: Vec<f64> = Vec::new();
        for l in 0..k {
            let h = level_entropies(&levels, &discounts, l, &lower_h);
            levels[l].entropy = h.iter().map(|&x| x as f32).collect();
            lower_h = h;
        }
        Ok(NgramModel::assemble(k, discounts, levels))
    }
}
