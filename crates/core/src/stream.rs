//! The streaming (generation-time) decoder.
//!
//! A model that generates bytes one at a time asks, before producing each byte, whether it will
//! start a new patch, then pushes the byte. The answers are exactly the boundaries that batch
//! segmentation finds, because both read the same entropies (the [`EntropyModel`] contract) and
//! apply the same rule through the same state machine ([`BoundaryTracker`]).
//!
//! The decoder keeps no history: its memory is the model's streaming state plus a few numbers,
//! whatever the document's length. [`segment_streaming_into`] hands each patch length to a sink
//! as its patch closes.

use crate::model::{EntropyModel, EntropyStream};
use crate::rule::{BoundaryTracker, PatchConfig};

/// What the decoder decided for one pushed byte.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    /// Whether this byte starts a new patch.
    pub starts_patch: bool,
    /// The byte's entropy `H[i]` in nats.
    pub entropy: f32,
}

/// Pushes bytes one at a time and learns, at each byte, whether it starts a new patch.
///
/// ```
/// use bltpatch_core::{segment, PatchConfig, Rule, StreamingDecoder, testing::HashModel};
///
/// let model = HashModel::new(3);
/// let cfg = PatchConfig::new(Rule::Budget { budget: 6.0 }).unwrap();
/// let text = b"streaming equals batch";
/// let mut decoder = StreamingDecoder::new(&model, cfg);
/// let mut starts = Vec::new();
/// for (i, &b) in text.iter().enumerate() {
///     // Known before the byte exists: a generator can open a new patch first.
///     let will_start = decoder.next_starts_patch();
///     assert_eq!(decoder.push(b).starts_patch, will_start);
///     if will_start { starts.push(i); }
/// }
/// let batch = bltpatch_core::patch_starts(&segment(&model, text, &cfg));
/// assert_eq!(starts, batch);
/// ```
pub struct StreamingDecoder<'m> {
    stream: Box<dyn EntropyStream + 'm>,
    tracker: BoundaryTracker,
    pending: Option<f32>,
    pushed: usize,
    patches: usize,
}

impl<'m> StreamingDecoder<'m> {
    /// A decoder at the start of a document.
    pub fn new(model: &'m dyn EntropyModel, cfg: PatchConfig) -> Self {
        Self {
            stream: model.stream(),
            tracker: BoundaryTracker::new(cfg),
            pending: None,
            pushed: 0,
            patches: 0,
        }
    }

    /// The entropy of the byte to come.
    pub fn next_entropy(&mut self) -> f32 {
        *self.pending.get_or_insert_with(|| self.stream.entropy())
    }

    /// Whether the byte to come will start a new patch, whatever its value.
    pub fn next_starts_patch(&mut self) -> bool {
        let h = self.next_entropy();
        self.tracker.would_start(h)
    }

    /// Appends one byte and returns the decision for it.
    pub fn push(&mut self, byte: u8) -> Decision {
        let entropy = self.next_entropy();
        let starts_patch = self.tracker.step(entropy);
        self.stream.push(byte);
        self.pending = None;
        self.pushed += 1;
        self.patches += starts_patch as usize;
        Decision {
            starts_patch,
            entropy,
        }
    }

    /// Appends a slice; `on_decision` sees every byte's decision in order.
    pub fn push_slice(&mut self, bytes: &[u8], mut on_decision: impl FnMut(Decision)) {
        for &b in bytes {
            on_decision(self.push(b));
        }
    }

    /// Appends a slice; `emit` gets the length of every patch that a pushed byte closes (by
    /// starting the next one), as it closes. With [`finish`](Self::finish) this gives the
    /// document's patch lengths in bounded memory.
    pub fn push_slice_lengths(&mut self, bytes: &[u8], mut emit: impl FnMut(usize)) {
        for &b in bytes {
            let open = self.tracker.current_len();
            if self.push(b).starts_patch && open > 0 {
                emit(open);
            }
        }
    }

    /// Ends the document: the length of the open patch (`None` when nothing was pushed).
    pub fn finish(self) -> Option<usize> {
        (self.pushed > 0).then(|| self.tracker.current_len())
    }

    /// Bytes pushed since the start of the document.
    pub fn len(&self) -> usize {
        self.pushed
    }

    /// Whether no byte has been pushed.
    pub fn is_empty(&self) -> bool {
        self.pushed == 0
    }

    /// Patches started so far (the last one may still grow).
    pub fn patches(&self) -> usize {
        self.patches
    }

    /// Bytes in the current (open) patch; 0 before the first byte.
    pub fn current_patch_len(&self) -> usize {
        self.tracker.current_len()
    }

    /// The entropy summed over the open patch, `H[s] + ... + H[i-1]` (what the budget rule
    /// compares with its budget).
    pub fn patch_entropy(&self) -> f64 {
        self.tracker.patch_entropy()
    }

    /// Starts a new document (empty context, no patches).
    pub fn reset(&mut self) {
        self.stream.reset();
        self.tracker.reset();
        self.pending = None;
        self.pushed = 0;
        self.patches = 0;
    }
}

/// Segments `doc` by pushing it byte by byte through a [`StreamingDecoder`]; each patch length
/// goes to `emit` as soon as its patch closes (bounded memory).
pub fn segment_streaming_into(
    model: &dyn EntropyModel,
    doc: &[u8],
    cfg: &PatchConfig,
    mut emit: impl FnMut(usize),
) {
    let mut decoder = StreamingDecoder::new(model, *cfg);
    decoder.push_slice_lengths(doc, &mut emit);
    if let Some(last) = decoder.finish() {
        emit(last);
    }
}

/// Segments `doc` by pushing it byte by byte through a [`StreamingDecoder`].
pub fn segment_streaming(model: &dyn EntropyModel, doc: &[u8], cfg: &PatchConfig) -> Vec<usize> {
    let mut out = Vec::with_capacity(doc.len() / 4 + 1);
    segment_streaming_into(model, doc, cfg, |l| out.push(l));
    out
}
