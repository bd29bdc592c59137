//! The streaming (generation-time) state of a [`HashMlpModel`].

use bltpatch_core::EntropyStream;

use super::HashMlpModel;
use super::arch::MAX_ORDER;

/// Byte-by-byte evaluation of a [`HashMlpModel`], bit-identical to
/// [`bltpatch_core::EntropyModel::entropies`]: it keeps the last 8 bytes and the position, and
/// computes the entropy head of one position when asked (`O(orders · g)` per byte; `push` alone
/// costs nothing but the copy of one byte).
pub struct HashMlpStream<'m> {
    model: &'m HashMlpModel,
    /// Bytes pushed since the start: the position whose entropy comes next.
    pos: usize,
    /// The last `min(pos, 8)` bytes, oldest first, in `hist[8 - len ..]`.
    hist: [u8; MAX_ORDER],
    cached: Option<f32>,
}

impl<'m> HashMlpStream<'m> {
    /// A stream at the start of a document.
    pub fn new(model: &'m HashMlpModel) -> Self {
        Self {
            model,
            pos: 0,
            hist: [0; MAX_ORDER],
            cached: None,
        }
    }

    /// Bytes pushed since the start (or the last reset).
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl EntropyStream for HashMlpStream<'_> {
    fn entropy(&mut self) -> f32 {
        if let Some(h) = self.cached {
            return h;
        }
        let len = self.pos.min(MAX_ORDER);
        let h = self
            .model
            .entropy_at(self.pos, &self.hist[MAX_ORDER - len..]);
        self.cached = Some(h);
        h
    }

    fn push(&mut self, byte: u8) {
        self.hist.copy_within(1.., 0);
        self.hist[MAX_ORDER - 1] = byte;
        self.pos += 1;
        self.cached = None;
    }

    fn reset(&mut self) {
        self.pos = 0;
        self.hist = [0; MAX_ORDER];
        self.cached = None;
    }
}
