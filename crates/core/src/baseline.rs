//! Baseline patchers with the same output type as entropy patching.
//!
//! - `static`: fixed-size patches of `k` bytes (MegaByte); the last one may be shorter.
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
