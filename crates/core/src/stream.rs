//! The streaming (generation-time) decoder.
//!
//! A model that generates bytes one at a time asks, before producing each byte, whether it will
//! start a new patch, then pushes the byte. The answers are exactly the boundaries that batch
//! segmentation finds, because both read the same entropies (the [`EntropyModel`] contract) and
//! apply the same rule.

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
/// let cfg = PatchConfig::new(Rule::Global { threshold: 2.5 }).unwrap();
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
    lengths: Vec<usize>,
}

impl<'m> StreamingDecoder<'m> {
    /// A decoder at the start of a document.
    pub fn new(model: &'m dyn EntropyModel, cfg: PatchConfig) -> Self {
        Self {
            stream: model.stream(),
            tracker: BoundaryTracker::new(cfg),
            pending: None,
            pushed: 0,
            lengths: Vec::new(),
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
        if starts_patch {
            self.lengths.push(1);
        } else if let Some(last) = self.lengths.last_mut() {
            *last += 1;
        }
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

    /// Bytes pushed since the start of the document.
    pub fn len(&self) -> usize {
        self.pushed
    }

    /// Whether no byte has been pushed.
    pub fn is_empty(&self) -> bool {
        self.pushed == 0
    }

    /// Lengths of the patches so far (the last one may still grow).
    pub fn patch_lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// Starts a new document (empty context, no patches).
    pub fn reset(&mut self) {
        self.stream.reset();
        self.tracker.reset();
        self.pending = None;
        self.pushed = 0;
        self.lengths.clear();
    }

    /// Ends the document and returns its patch lengths.
    pub fn finish(self) -> Vec<usize> {
        self.lengths
    }
}

/// Segments `doc` by pushing it byte by byte through a [`StreamingDecoder`].
pub fn segment_streaming(model: &dyn EntropyModel, doc: &[u8], cfg: &PatchConfig) -> Vec<usize> {
    let mut decoder = StreamingDecoder::new(model, *cfg);
    decoder.push_slice(doc, |_| {});
    decoder.finish()
}
