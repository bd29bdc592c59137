//! Baseline patchers with the same output type as entropy patching.
//!
//! - `static`: patches of a fixed size `s` bytes (MegaByte). A fractional `s` spreads the
//!   boundaries evenly: byte `i` starts a patch when `i == ceil(j · s)` for some `j >= 0` (the
//!   product computed in `f64`, exact IEEE arithmetic), so the mean patch length is `s` up to
//!   the last patch, which may be shorter. A whole `s = k` gives `k`-byte patches.
//! - `space`: a patch starts at a byte that follows a space-like byte and is not space-like
//!   itself (SpaceByte's rule, which BLT's "space" patching follows), so a run of spaces or
//!   punctuation stays with the word before it. Space-like bytes are ASCII bytes that are neither
//!   letters nor digits (white space, punctuation, control characters); bytes >= 0x80 are never
//!   space-like, so multi-byte UTF-8 characters are never split. An optional `max_patch_len`
//!   forces a start after that many bytes, as for entropy patching.
//!
//! Both are also available byte by byte ([`StaticTracker`], [`SpaceTracker`]) with the same
//! results, for streaming. A static start is known before its byte exists; a space start
//! depends on the byte itself.

use crate::Error;
use crate::rule::LengthBuilder;

/// Whether a byte counts as space-like for the `space` baseline.
#[inline]
pub fn is_space_like(b: u8) -> bool {
    b < 0x80 && !b.is_ascii_alphanumeric()
}

/// Checks a static patch size: finite and `>= 1`.
fn check_size(size: f64) -> Result<(), Error> {
    if size.is_finite() && size >= 1.0 {
        Ok(())
    } else {
        Err(Error::InvalidPatchSize(size))
    }
}

/// Static patches of `size` bytes over `n` bytes (see the module docs); `O(n / size)`.
///
/// ```
/// use bltpatch_core::static_lengths;
///
/// assert_eq!(static_lengths(10, 4.0).unwrap(), [4, 4, 2]);
/// assert_eq!(static_lengths(9, 4.5).unwrap(), [5, 4]);
/// ```
///
/// # Errors
/// A size below 1, NaN or infinite.
pub fn static_lengths(n: usize, size: f64) -> Result<Vec<usize>, Error> {
    let mut out = Vec::with_capacity((n as f64 / size.max(1.0)) as usize + 1);
    let mut t = StaticTracker::new(size)?;
    let mut pos = 0;
    while pos < n {
        // `pos` is a patch start: the patch runs to the next one.
        t.advance_past(pos);
        let next = t.next.min(n);
        out.push(next - pos);
        pos = next;
    }
    Ok(out)
}

/// The static baseline byte by byte: whether each byte starts a patch, known before it exists.
#[derive(Clone, Debug)]
pub struct StaticTracker {
    size: f64,
    /// Bytes seen.
    pos: usize,
    /// Index `j` of the next start `ceil(j · size)`.
    j: u64,
    /// The next start at or after `pos`.
    next: usize,
}

impl StaticTracker {
    /// A tracker at the start of a document.
    ///
    /// # Errors
    /// A size below 1, NaN or infinite.
    pub fn new(size: f64) -> Result<Self, Error> {
        check_size(size)?;
        Ok(Self {
            size,
            pos: 0,
            j: 0,
            next: 0,
        })
    }

    /// Whether the next byte starts a patch.
    pub fn would_start(&self) -> bool {
        self.pos == self.next
    }

    /// Advances past one byte; returns whether it started a patch.
    pub fn step(&mut self) -> bool {
        let start = self.would_start();
        self.pos += 1;
        if start {
            self.advance_start();
        }
        start
    }

    /// Back to the start of a document.
    pub fn reset(&mut self) {
        *self = Self::new(self.size).expect("size was checked");
    }

    /// Moves the next start past byte offset `pos`.
    fn advance_past(&mut self, pos: usize) {
        self.pos = pos + 1;
        while self.next <= pos {
            self.advance_start();
        }
    }

    fn advance_start(&mut self) {
        self.j += 1;
        self.next = (self.j as f64 * self.size).ceil() as usize;
    }
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

/// The space baseline byte by byte.
#[derive(Clone, Debug)]
pub struct SpaceTracker {
    max_patch_len: Option<usize>,
    /// Whether the previous byte was space-like; `None` at the start of a document.
    prev_space: Option<bool>,
    current_len: usize,
}

impl SpaceTracker {
    /// A tracker at the start of a document.
    ///
    /// # Errors
    /// `max_patch_len == Some(0)`.
    pub fn new(max_patch_len: Option<usize>) -> Result<Self, Error> {
        if max_patch_len == Some(0) {
            return Err(Error::InvalidMaxPatchLen);
        }
        Ok(Self {
            max_patch_len,
            prev_space: None,
            current_len: 0,
        })
    }

    /// Whether the next byte starts a patch whatever its value (`Some(true)`: the first byte
    /// or a forced start), cannot start one (`Some(false)`: the previous byte is not
    /// space-like), or it depends on the byte (`None`).
    pub fn would_start(&self) -> Option<bool> {
        match self.prev_space {
            None => Some(true),
            _ if self.max_patch_len.is_some_and(|m| self.current_len >= m) => Some(true),
            Some(false) => Some(false),
            Some(true) => None,
        }
    }

    /// Advances past `byte`; returns whether it started a patch.
    pub fn step(&mut self, byte: u8) -> bool {
        let space = is_space_like(byte);
        let start = self.would_start().unwrap_or(!space);
        self.current_len = if start { 1 } else { self.current_len + 1 };
        self.prev_space = Some(space);
        start
    }

    /// Back to the start of a document.
    pub fn reset(&mut self) {
        self.prev_space = None;
        self.current_len = 0;
    }
}
