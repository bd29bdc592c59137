//! The streaming (generation-time) state of a [`ConvModel`].

use bltpatch_core::EntropyStream;

use crate::ConvModel;
use crate::forward::State;
use crate::kernels::Finish;

/// Byte-by-byte evaluation of a [`ConvModel`] with cached per-layer activations, bit-identical
/// to [`bltpatch_core::EntropyModel::entropies`].
///
/// Per layer it keeps a ring buffer of the last `(k-1)·dil_l + 1` normalised block inputs, and
/// it keeps the last `n_max` bytes for the hashed embeddings, so each byte costs one position
/// of the forward pass: `O(L·(k·d·f + f·d))` for the trunk plus `O(d·256)` for the head, which
/// only runs when [`entropy`](EntropyStream::entropy) is asked for.
pub struct ConvStream<'m> {
    model: &'m ConvModel,
    state: State,
    /// Bytes pushed so far: the position whose entropy comes next.
    pos: usize,
    /// The last `min(pos, 8)` bytes, oldest first, in `hist[8 - len ..]`.
    hist: [u8; 8],
    /// Whether the trunk has run for position `pos`.
    trunk_done: bool,
    cached: Option<f32>,
}

impl<'m> ConvStream<'m> {
    /// A stream at the start of a document.
    pub fn new(model: &'m ConvModel) -> Self {
        Self {
            model,
            state: State::new(model, 1),
            pos: 0,
            hist: [0; 8],
            trunk_done: false,
            cached: None,
        }
    }

    /// Bytes pushed since the start (or the last reset).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Pushes every byte of `bytes` (as [`EntropyStream::push`] one at a time).
    pub fn push_slice(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }

    fn run_trunk(&mut self) {
        if !self.trunk_done {
            let m = self.model;
            let len = self.pos.min(m.cfg.max_order());
            self.state.embed(m, 0, self.pos, &self.hist[8 - len..]);
            self.state.trunk(m, self.pos, 1);
            self.trunk_done = true;
        }
    }
}

impl EntropyStream for ConvStream<'_> {
    fn entropy(&mut self) -> f32 {
        if let Some(h) = self.cached {
            return h;
        }
        self.run_trunk();
        let mut out = [0f32];
        self.state.head(self.model, 0, 1, Finish::Entropy, &mut out);
        self.cached = Some(out[0]);
        out[0]
    }

    fn push(&mut self, byte: u8) {
        // The activations of this position feed the following ones.
        self.run_trunk();
        self.hist.copy_within(1.., 0);
        self.hist[7] = byte;
        self.pos += 1;
        self.trunk_done = false;
        self.cached = None;
    }

    fn reset(&mut self) {
        self.state.reset();
        self.pos = 0;
        self.hist = [0; 8];
        self.trunk_done = false;
        self.cached = None;
    }
}
