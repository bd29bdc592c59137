//! The entropy-model abstraction: batch entropies over a range of a document, and a streaming
//! state for the generation-time decoder.

use std::ops::Range;

/// A causal next-byte model with a **bounded context** that gives the entropy of its prediction
/// for every byte of a document.
///
/// # Determinism contract
///
/// Every implementation promises, for a fixed model:
///
/// 1. **Bounded context.** `H[i]` (and the surprisal of `x[i]`) is a pure function of the bytes
///    `x[max(0, i - C) .. i)`, where `C` is [`context`](Self::context). It does not depend on
///    the absolute position `i`, on bytes before `i - C`, on bytes at or after `i`, nor on how
///    the document is cut into ranges. A context shorter than `C` occurs only at the start of a
///    document and is the whole prefix `x[0..i)`.
/// 2. **Bit-identical everywhere.** The `f32` bits of each value are the same for every `range`
///    that contains `i`, for every thread count, for the streaming state of
///    [`stream`](Self::stream), and on every CPU target: no reduction order that depends on batch
///    shape or thread count, no BLAS, no target-dependent FMA contraction, and no platform `libm`
///    (use a portable one, or integer arithmetic).
///
/// Patch boundaries are a function of these values only, which is what makes batch, chunked and
/// streaming segmentation agree exactly.
pub trait EntropyModel: Send + Sync {
    /// The context length `C` in bytes: the model sees at most this many preceding bytes.
    fn context(&self) -> usize;

    /// Writes `H[i]`, the entropy in nats of the predicted distribution of `doc[i]`, for every
    /// `i` in `range` into `out[i - range.start]`.
    ///
    /// Shapes: `doc: [n]`, `range ⊆ 0..n`, `out: [range.len()]`. The implementation reads only
    /// `doc[range.start.saturating_sub(C) .. range.end - 1]`; `doc[0]` is the document's start.
    ///
    /// # Panics
    /// If `range` is out of bounds of `doc` or `out.len() != range.len()`.
    fn entropies(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]);

    /// Writes the surprisal `-ln p(doc[i] | context)` in nats for every `i` in `range` into
    /// `out[i - range.start]` (shapes as in [`entropies`](Self::entropies)). Its mean over a
    /// text divided by `ln 2` is the model's bits per byte.
    fn surprisals(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]);

    /// A streaming state at the start of a document, for the generation-time decoder. It must
    /// give exactly the same `H` bits as [`entropies`](Self::entropies).
    fn stream(&self) -> Box<dyn EntropyStream + '_>;
}

/// The incremental side of an [`EntropyModel`]: bytes are pushed one at a time and the entropy of
/// the next (not yet seen) byte is available before it arrives.
pub trait EntropyStream: Send {
    /// `H` of the next byte given all bytes pushed so far (the context of the byte to come).
    fn entropy(&mut self) -> f32;
    /// Appends one byte to the context.
    fn push(&mut self, byte: u8);
    /// Returns to the start of a new document (empty context).
    fn reset(&mut self);
}

/// `EntropyModel` for the pointer types `$p<M>`: every method forwards to the model.
macro_rules! forward_entropy_model {
    ($($p:ty),*) => {$(
        impl<M: EntropyModel + ?Sized> EntropyModel for $p {
            fn context(&self) -> usize {
                (**self).context()
            }
            fn entropies(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
                (**self).entropies(doc, range, out)
            }
            fn surprisals(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
                (**self).surprisals(doc, range, out)
            }
            fn stream(&self) -> Box<dyn EntropyStream + '_> {
                (**self).stream()
            }
        }
    )*};
}

forward_entropy_model!(&M, Box<M>, std::sync::Arc<M>);

/// A generic [`EntropyStream`] for any model: it keeps the last `C` bytes and asks the model's
/// batch path for the entropy of the position after them. Correct for every model that honours
/// the bounded-context contract; models with cached state provide a faster stream of their own.
///
/// Cost per byte: one batch evaluation of a single position (`O(C)` bytes of context).
pub struct WindowStream<'m, M: EntropyModel + ?Sized> {
    model: &'m M,
    /// The last `min(pushed, C)` bytes, followed by one slot for the position being scored.
    window: Vec<u8>,
    cached: Option<f32>,
}

impl<'m, M: EntropyModel + ?Sized> WindowStream<'m, M> {
    /// A stream at the start of a document.
    pub fn new(model: &'m M) -> Self {
        Self {
            model,
            window: Vec::with_capacity(2 * model.context() + 2),
            cached: None,
        }
    }
}

impl<M: EntropyModel + ?Sized> EntropyStream for WindowStream<'_, M> {
    fn entropy(&mut self) -> f32 {
        if let Some(h) = self.cached {
            return h;
        }
        let n = self.window.len();
        // The scored position needs a byte slot; its value is never read (causality).
        self.window.push(0);
        let mut out = [0f32];
        self.model.entropies(&self.window, n..n + 1, &mut out);
        self.window.pop();
        self.cached = Some(out[0]);
        out[0]
    }

    fn push(&mut self, byte: u8) {
        let c = self.model.context();
        self.window.push(byte);
        if self.window.len() > 2 * c.max(1) {
            let cut = self.window.len() - c;
            self.window.drain(..cut);
        }
        self.cached = None;
    }

    fn reset(&mut self) {
        self.window.clear();
        self.cached = None;
    }
}
