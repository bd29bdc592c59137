//! Plain, obviously-correct loops that define every rule. The fast kernels are tested against
//! these on random and real data; nothing else should call them.

use crate::rule::{PatchConfig, Rule};

/// Converts per-byte start flags (`starts[0]` must be true when non-empty) to patch lengths.
pub fn lengths_from_starts(starts: &[bool]) -> Vec<usize> {
    let mut lengths: Vec<usize> = Vec::new();
    for &s in starts {
        if s || lengths.is_empty() {
            lengths.push(1);
        } else {
            *lengths.last_mut().unwrap() += 1;
        }
    }
    lengths
}

/// Entropy patching, written straight from the definition. The budget rule's sum is recomputed
/// from the current patch's start at every byte.
pub fn entropy_starts(h: &[f32], cfg: &PatchConfig) -> Vec<bool> {
    let mut starts = vec![false; h.len()];
    let mut current = 0usize;
    let mut patch_start = 0usize;
    for i in 0..h.len() {
        let by_rule = if i == 0 {
            true
        } else {
            match cfg.rule() {
                Rule::Global { threshold } => h[i] > threshold,
                Rule::Relative { relative_threshold } => h[i] - h[i - 1] > relative_threshold,
                Rule::Combined {
                    threshold,
                    relative_threshold,
                } => h[i] > threshold && h[i] - h[i - 1] > relative_threshold,
                Rule::Budget { budget } => {
                    let mut sum = 0f64;
                    for &x in &h[patch_start..i] {
                        sum += x as f64;
                    }
                    sum >= budget
                }
            }
        };
        let forced = match cfg.max_patch_len() {
            Some(m) => i > 0 && current == m,
            None => false,
        };
        starts[i] = by_rule || forced;
        current = if starts[i] { 1 } else { current + 1 };
        if starts[i] {
            patch_start = i;
        }
    }
    starts
}

/// Entropy patching lengths from the definition.
pub fn entropy_lengths(h: &[f32], cfg: &PatchConfig) -> Vec<usize> {
    lengths_from_starts(&entropy_starts(h, cfg))
}

/// Static patching of size `size` from the definition: byte `i` starts a patch when
/// `i == ceil(j · size)` for some `j >= 0` (the product in `f64`); for a whole `size = k`, when
/// `i % k == 0`.
pub fn static_lengths(n: usize, size: f64) -> Vec<usize> {
    let starts: Vec<bool> = (0..n)
        .map(|i| (0..=i).any(|j| (j as f64 * size).ceil() == i as f64))
        .collect();
    lengths_from_starts(&starts)
}

/// Space patching from the definition (see [`crate::baseline`]).
pub fn space_lengths(bytes: &[u8], max_patch_len: Option<usize>) -> Vec<usize> {
    let mut starts = vec![false; bytes.len()];
    let mut current = 0usize;
    for i in 0..bytes.len() {
        let natural = i == 0
            || (crate::baseline::is_space_like(bytes[i - 1])
                && !crate::baseline::is_space_like(bytes[i]));
        let forced = max_patch_len.is_some_and(|m| i > 0 && current == m);
        starts[i] = natural || forced;
        current = if starts[i] { 1 } else { current + 1 };
    }
    lengths_from_starts(&starts)
}
