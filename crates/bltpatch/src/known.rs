//! When each patch's end becomes certain as bytes arrive one at a time.
//!
//! A model that reads patches while it predicts bytes left to right (a byte-latent transformer's
//! local decoder reads the global model's output for earlier patches) may use a patch at byte `j`
//! only if `x[0..j)` already determines that patch: all its bytes are seen and no byte to come can
//! move its end. Otherwise the layout itself tells the model something about `x[j..]`.
//! [`KnownPatches::known_at`] gives, per patch, the number of bytes after which that holds
//! ([`Patcher::segment_known_at`](crate::Patcher::segment_known_at)):
//!
//! - **entropy rules and static patches**: the patch's end `e`. Whether byte `e` starts a patch
//!   is decided before byte `e` exists (the entropy of the next byte, or its position).
//! - **space patching**: `e + 1`, since whether byte `e` starts a patch depends on byte `e`
//!   itself (it must not be space-like); `e` when `max_patch_len` forces the start.
//! - **BPE**: when the bytes seen settle the token's pre-token ([`crate::bpe`]).
//!
//! The last patch of an input is known only if the next byte starts a patch whatever it is;
//! otherwise its entry is [`NEVER`]. So for every scheme, segmenting a prefix `x[0..t)` gives the
//! same first [`KnownPatches::closed`]`(t)` patches with the same `known_at` as segmenting the
//! whole input: a test checks it on every prefix.

/// `known_at` of a patch whose end the input does not settle.
pub const NEVER: usize = usize::MAX;

/// Patch lengths with, for each patch, the number of bytes that must be seen before the patch
/// is complete and its end certain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownPatches {
    /// Patch lengths (>= 1), summing to the input's length.
    pub lengths: Vec<usize>,
    /// Per patch: the least `t` such that `x[0..t)` determines the patch (>= its end,
    /// non-decreasing), or [`NEVER`].
    pub known_at: Vec<usize>,
}

impl KnownPatches {
    /// The number of patches known once `t` bytes have been seen: they are the first ones, since
    /// `known_at` is non-decreasing. The decoder's prediction of byte `t` may read exactly these.
    pub fn closed(&self, t: usize) -> usize {
        self.known_at.partition_point(|&k| k <= t)
    }

    /// Adds a patch whose end is certain once `known_at` bytes are seen (any value; [`seal`]
    /// makes them consistent).
    ///
    /// [`seal`]: Self::seal
    pub(crate) fn push(&mut self, len: usize, known_at: usize) {
        self.lengths.push(len);
        self.known_at.push(known_at);
    }

    /// Makes `known_at` at least each patch's end and non-decreasing: a patch is known only once
    /// its bytes are seen and every earlier patch is known.
    pub(crate) fn seal(&mut self) {
        let (mut end, mut floor) = (0, 0);
        for (k, &len) in self.known_at.iter_mut().zip(&self.lengths) {
            end += len;
            floor = floor.max(*k).max(end);
            *k = floor;
        }
    }
}
