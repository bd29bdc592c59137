//! Baseline patchers with the same output type as entropy patching.
//!
//! - `static`: fixed-size patches of `k` bytes (MegaByte); the last one may be shorter. A
//!   fractional size spreads the boundaries evenly ([`static_lengths_fractional`]).
//! - `space`: a patch starts at a byte that follows a space-like byte and is not space-like
//!   itself (SpaceByte's rule, which BLT's "space" patching follows), so a run of spaces or
//!   punctuation stays with the word before it. Space-like bytes are ASCII bytes that are neither
//!   letters nor digits (white space, punctuation, control characters); bytes >= 0x80 are never
//!   space-like, so multi-byte UTF-8 characters are never split. An optional `max_patch_len`
//!   forces a start after that many bytes, as for entropy patching.

use crate::Error;
use crate::rule::LengthBuilder;

/// Whether a byte counts as space-like for the `space` baseline.
#[inline]
pub fn is_space_like(b: u8) -> bool {
    b < 0x80 && !b.is_ascii_alphanumeric()
}

/// Fixed-size patches: `n / k` patches of `k` bytes and a shorter last one if `k` does not divide
/// `n`.
///
/// # Errors
/// `k == 0`.
pub fn static_lengths(n: usize, k: usize) -> Result<Vec<usize>, Error> {
    if k == 0 {
        return Err(Error::InvalidPatchSize);
    }
    let mut out = vec![k; n / k];
    if !n.is_multiple_of(k) {
        out.push(n % k);
    }
    Ok(out)
}

/// Fixed-size patches of a fractional mean size: patch `p` starts at byte `⌊p · size⌋`, so every
/// length is `⌊size⌋` or `⌈size⌉`, spread evenly (4.5 gives 4, 5, 4, 5, ...), and the mean over
/// a long input is `size`. The last patch may be shorter. An integer `size` gives exactly
/// [`static_lengths`]. The starts are computed in `f64` (one correctly rounded multiplication
/// each), so they are the same on every platform. `O(n / size)`.
///
/// ```
/// use bltpatch_core::static_lengths_fractional;
///
/// assert_eq!(static_lengths_fractional(20, 4.5).unwrap(), [4, 5, 4, 5, 2]);
/// assert_eq!(static_lengths_fractional(9, 3.0).unwrap(), [3, 3, 3]);
/// ```
///
/// # Errors
/// [`Error::InvalidTarget`] for a size below 1, NaN or infinite.
pub fn static_lengths_fractional(n: usize, size: f64) -> Result<Vec<usize>, Error> {
    if !(size.is_finite() && size >= 1.0) {
        return Err(Error::InvalidTarget(size));
    }
    let mut out = Vec::with_capacity((n as f64 / size) as usize + 1);
    let mut start = 0;
    let mut p = 1u64;
    while start < n {
        let next = ((p as f64 * size).floor() as usize).min(n);
        out.push(next - start);
        start = next;
        p += 1;
    }
    Ok(out)
}

/// Space patching of `bytes` (see the module docs). `O(n)`.
///
/// # Errors
/// `max_patch_len == Some(0)`.
pub fn space_lengths(bytes: &[u8], max_patch_len: Option<usize>) -> Result<Vec<usize>, Error> {
    if max_patch_len == Some(0) {
        return Err(Error::InvalidMaxPatchLen);
    }
    let mut out = Vec::with_capacity(bytes.len() / 5 + 1);
    if bytes.is_empty() {
        return Ok(out);
    }
    let mut builder = LengthBuilder::new(max_patch_len, |l| out.push(l));
    let mut prev_space = is_space_like(bytes[0]);
    for (i, &b) in bytes.iter().enumerate().skip(1) {
        let space = is_space_like(b);
        if prev_space && !space {
            builder.start_at(i);
        }
        prev_space = space;
    }
    builder.finish(bytes.len());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractional_static_spreads_boundaries_evenly() {
        for n in 0..200 {
            for k in 1..9 {
                assert_eq!(
                    static_lengths_fractional(n, k as f64).unwrap(),
                    static_lengths(n, k).unwrap()
                );
            }
            for size in [1.5, 2.25, 4.5, 6.8] {
                let lengths = static_lengths_fractional(n, size).unwrap();
                assert_eq!(lengths.iter().sum::<usize>(), n);
                let (lo, hi) = (size.floor() as usize, size.ceil() as usize);
                let (last, full) = lengths.split_last().unwrap_or((&0, &[]));
                assert!(
                    full.iter().all(|&l| l == lo || l == hi),
                    "{size}: {lengths:?}"
                );
                assert!((1..=hi).contains(last) || n == 0);
                // The number of patches is ⌈n / size⌉: the mean is `size` up to the last one.
                assert_eq!(lengths.len(), (n as f64 / size).ceil() as usize);
            }
        }
        assert_eq!(
            static_lengths_fractional(10, 0.5),
            Err(Error::InvalidTarget(0.5))
        );
        assert!(static_lengths_fractional(10, f64::NAN).is_err());
    }
}
