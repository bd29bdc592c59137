//! [`Patcher`]: a model and a scheme, with every way of segmenting; [`Decoder`]: its
//! byte-by-byte form.

use bltpatch_core::{
    BatchLayout, DEFAULT_CHUNK_LEN, EntropyModel, PatchConfig, SpaceTracker, StaticTracker,
    StreamingDecoder, entropies_chunked_into, lengths_from_entropies_into, par_map, patch_starts,
    segment_chunked_into, space_lengths, static_lengths,
};

use crate::known::{KnownPatches, NEVER};
use crate::{Error, Scheme};

/// A model and a patching scheme: segments bytes, batches of documents (BLT's layout), and
/// streams (the generation-time decoder), all with the same boundaries.
///
/// Long inputs are scored in parallel chunks on the current rayon pool (run inside
/// `ThreadPool::install` to choose the thread count); the result is the same for every chunking
/// and thread count (SPEC §3).
///
/// ```
/// use bltpatch::{Model, Patcher, Rule, PatchConfig, Scheme};
///
/// let model = Model::default_model();
/// let patcher = model.patcher().unwrap(); // the checkpoint's calibrated rule
/// let text = b"Patches end where the next byte is hard to guess.";
/// let lengths = patcher.segment(text);
/// assert_eq!(lengths.iter().sum::<usize>(), text.len());
///
/// // Any rule or baseline, on the same model.
/// let budget = Scheme::Entropy(PatchConfig::new(Rule::Budget { budget: 8.0 }).unwrap());
/// let lengths = Patcher::new(model.clone(), budget).unwrap().segment(text);
/// assert_eq!(lengths.iter().sum::<usize>(), text.len());
/// let fixed = Patcher::new(model, Scheme::Static { size: 4.5 }).unwrap().segment(text);
/// assert_eq!(fixed.len(), 11);
/// ```
#[derive(Clone, Debug)]
pub struct Patcher<M> {
    model: M,
    scheme: Scheme,
}

impl<M: EntropyModel> Patcher<M> {
    /// A patcher with this model and scheme (the model is unused by the baselines).
    ///
    /// # Errors
    /// A static size below 1 or not finite, or a `max_patch_len` of 0 for space patching.
    pub fn new(model: M, scheme: Scheme) -> Result<Self, Error> {
        match scheme {
            Scheme::Static { size } => {
                StaticTracker::new(size)?;
            }
            Scheme::Space { max_patch_len } => {
                SpaceTracker::new(max_patch_len)?;
            }
            Scheme::Entropy(_) | Scheme::Bpe => {}
        }
        Ok(Self { model, scheme })
    }

    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Patch lengths of `doc`: all >= 1, summing to `doc.len()` (none for empty input).
    pub fn segment(&self, doc: &[u8]) -> Vec<usize> {
        let mut out = Vec::with_capacity(doc.len() / 4 + 1);
        self.segment_into(doc, |l| out.push(l));
        out
    }

    /// Like [`segment`](Self::segment), handing each length to `emit` as soon as it is known, in
    /// memory bounded by the chunks in flight (`O(threads × chunk)`), whatever `doc.len()`.
    pub fn segment_into(&self, doc: &[u8], emit: impl FnMut(usize)) {
        match self.scheme {
            Scheme::Entropy(cfg) => {
                segment_chunked_into(&self.model, doc, &cfg, DEFAULT_CHUNK_LEN, emit)
            }
            Scheme::Static { size } => static_lengths(doc.len(), size)
                .expect("checked by Patcher::new")
                .into_iter()
                .for_each(emit),
            Scheme::Space { max_patch_len } => space_lengths(doc, max_patch_len)
                .expect("checked by Patcher::new")
                .into_iter()
                .for_each(emit),
            Scheme::Bpe => crate::bpe::bpe_lengths_into(doc, emit),
        }
    }

    /// `H[0..n)` of `doc` in nats (parallel chunks).
    pub fn entropies(&self, doc: &[u8]) -> Vec<f32> {
        let mut h = Vec::with_capacity(doc.len());
        entropies_chunked_into(&self.model, doc, DEFAULT_CHUNK_LEN, |part| {
            h.extend_from_slice(part)
        });
        h
    }

    /// Patch lengths of `doc` whose entropies `h` are already known (`h.len() == doc.len()`);
    /// the baselines read `doc` only.
    pub fn lengths_from_entropies(&self, doc: &[u8], h: &[f32]) -> Vec<usize> {
        assert_eq!(doc.len(), h.len(), "one entropy per byte");
        match self.scheme {
            Scheme::Entropy(cfg) => {
                let mut out = Vec::with_capacity(doc.len() / 4 + 1);
                lengths_from_entropies_into(h, &cfg, |l| out.push(l));
                out
            }
            _ => self.segment(doc),
        }
    }

    /// Patch lengths and the entropies `H[0..n)` (computed for every scheme).
    pub fn segment_with_entropies(&self, doc: &[u8]) -> (Vec<usize>, Vec<f32>) {
        let h = self.entropies(doc);
        (self.lengths_from_entropies(doc, &h), h)
    }

    /// Segments every document (each from an empty context; in parallel on the current rayon
    /// pool) into BLT's layout: `patch_lengths` `[batch, max_patches]` right-padded with 0 and
    /// `patch_ids` `[batch, max_len]`.
    ///
    /// # Panics
    /// If a document holds `u32::MAX` bytes or more.
    pub fn segment_batch(&self, docs: &[&[u8]]) -> BatchLayout {
        let lengths = par_map(docs, |d| self.segment(d));
        BatchLayout::from_lengths(&lengths)
    }

    /// Patch lengths of `doc` (those of [`segment`](Self::segment)) and, for each patch, the
    /// number of bytes that must be seen before it is complete and its end certain
    /// ([`crate::known`]): its end for entropy rules and static patches, one byte more for a
    /// space-patching start that its own byte decides, the settled pre-token for BPE. The last
    /// patch is known at `doc.len()` if the next byte would start a patch whatever it is, else
    /// never. Entropy rules score `doc` and the next byte's entropy in parallel chunks.
    pub fn segment_known_at(&self, doc: &[u8]) -> KnownPatches {
        let n = doc.len();
        // Patch starts in `0..=n`, with `n` when the byte after `doc` would start a patch
        // whatever it is, and whether each start was decided before its own byte.
        let (starts, decided_before): (Vec<usize>, Vec<bool>) = match self.scheme {
            Scheme::Bpe => return crate::bpe::bpe_known_at(doc),
            Scheme::Entropy(cfg) => {
                // `H[n]` needs only `doc`: score it as the entropy of one more (unread) byte.
                let mut ext = Vec::with_capacity(n + 1);
                ext.extend_from_slice(doc);
                ext.push(0);
                let h = self.entropies(&ext);
                let lengths = lengths_from_entropies_with(&h, &cfg);
                let starts = patch_starts(&lengths);
                let count = starts.len();
                (starts, vec![true; count])
            }
            Scheme::Static { size } => {
                let lengths = static_lengths(n + 1, size).expect("checked by Patcher::new");
                let starts = patch_starts(&lengths);
                let count = starts.len();
                (starts, vec![true; count])
            }
            Scheme::Space { max_patch_len } => {
                let mut t = SpaceTracker::new(max_patch_len).expect("checked by Patcher::new");
                let mut starts = Vec::new();
                let mut before = Vec::new();
                for (i, &b) in doc.iter().enumerate() {
                    let decided = t.would_start();
                    if t.step(b) {
                        starts.push(i);
                        before.push(decided.is_some());
                    }
                }
                if n > 0 && t.would_start() == Some(true) {
                    starts.push(n);
                    before.push(true);
                }
                (starts, before)
            }
        };
        let mut out = KnownPatches::default();
        for (p, &s) in starts.iter().enumerate() {
            if s == n {
                break;
            }
            let end = starts.get(p + 1).copied().unwrap_or(n);
            let known_at = match starts.get(p + 1) {
                Some(_) if decided_before[p + 1] => end,
                Some(_) => end + 1,
                None => NEVER,
            };
            out.push(end - s, known_at);
        }
        out.seal();
        out
    }

    /// A byte-by-byte decoder at the start of a document, with the same boundaries as
    /// [`segment`](Self::segment).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for BPE, whose token boundaries depend on bytes that come later.
    pub fn decoder(&self) -> Result<Decoder<'_>, Error> {
        let inner = match self.scheme {
            Scheme::Entropy(cfg) => Inner::Entropy(StreamingDecoder::new(&self.model, cfg)),
            Scheme::Static { size } => {
                Inner::Static(StaticTracker::new(size).expect("checked by Patcher::new"))
            }
            Scheme::Space { max_patch_len } => {
                Inner::Space(SpaceTracker::new(max_patch_len).expect("checked by Patcher::new"))
            }
            Scheme::Bpe => {
                return Err(Error::Unsupported(
                    "BPE token boundaries depend on later bytes: there is no byte-by-byte decoder for --rule bpe".into(),
                ));
            }
        };
        Ok(Decoder {
            inner,
            pushed: 0,
            patches: 0,
            current: 0,
        })
    }
}

/// Pushes bytes one at a time and says whether each starts a patch, exactly as the
/// [`Patcher`] that made it segments a whole document.
///
/// For entropy patching and static patches the answer is known before the byte exists
/// ([`next_starts_patch`](Self::next_starts_patch)): a generator opens the new patch first.
/// Space patching depends on the byte itself.
///
/// ```
/// use bltpatch::Model;
///
/// let patcher = Model::default_model().patcher().unwrap();
/// let text = b"one byte at a time";
/// let mut decoder = patcher.decoder().unwrap();
/// let mut starts = Vec::new();
/// for (i, &b) in text.iter().enumerate() {
///     let known = decoder.next_starts_patch(); // before the byte exists
///     let starts_patch = decoder.push(b);
///     assert_eq!(known, Some(starts_patch));
///     if starts_patch { starts.push(i); }
/// }
/// assert_eq!(starts, bltpatch::patch_starts(&patcher.segment(text)));
/// ```
pub struct Decoder<'m> {
    inner: Inner<'m>,
    pushed: usize,
    patches: usize,
    current: usize,
}

enum Inner<'m> {
    Entropy(StreamingDecoder<'m>),
    Static(StaticTracker),
    Space(SpaceTracker),
}

impl Decoder<'_> {
    /// Whether the byte to come starts a patch whatever its value (`Some`), or whether that
    /// depends on the byte (`None`, space patching after a space-like byte).
    pub fn next_starts_patch(&mut self) -> Option<bool> {
        match &mut self.inner {
            Inner::Entropy(d) => Some(d.next_starts_patch()),
            Inner::Static(t) => Some(t.would_start()),
            Inner::Space(t) => t.would_start(),
        }
    }

    /// The entropy `H` of the byte to come (entropy patching only).
    pub fn next_entropy(&mut self) -> Option<f32> {
        match &mut self.inner {
            Inner::Entropy(d) => Some(d.next_entropy()),
            _ => None,
        }
    }

    /// Appends one byte; returns whether it starts a patch.
    pub fn push(&mut self, byte: u8) -> bool {
        let starts = match &mut self.inner {
            Inner::Entropy(d) => d.push(byte).starts_patch,
            Inner::Static(t) => t.step(),
            Inner::Space(t) => t.step(byte),
        };
        self.pushed += 1;
        self.patches += starts as usize;
        self.current = if starts { 1 } else { self.current + 1 };
        starts
    }

    /// Appends a slice; `on_byte` sees, for each byte in order, whether it starts a patch.
    pub fn push_slice(&mut self, bytes: &[u8], mut on_byte: impl FnMut(bool)) {
        for &b in bytes {
            on_byte(self.push(b));
        }
    }

    /// Appends a slice; `emit` gets the length of every patch that a pushed byte closes (by
    /// starting the next one). With [`finish`](Self::finish), the document's patch lengths in
    /// bounded memory.
    pub fn push_slice_lengths(&mut self, bytes: &[u8], mut emit: impl FnMut(usize)) {
        for &b in bytes {
            let open = self.current;
            if self.push(b) && open > 0 {
                emit(open);
            }
        }
    }

    /// Ends the document: the length of the open patch (`None` when nothing was pushed).
    pub fn finish(self) -> Option<usize> {
        (self.pushed > 0).then_some(self.current)
    }

    /// Bytes pushed since the start of the document.
    pub fn len(&self) -> usize {
        self.pushed
    }

    /// Whether no byte has been pushed.
    pub fn is_empty(&self) -> bool {
        self.pushed == 0
    }

    /// Patches started so far.
    pub fn patches(&self) -> usize {
        self.patches
    }

    /// Bytes in the open patch (0 before the first byte).
    pub fn current_patch_len(&self) -> usize {
        self.current
    }

    /// Starts a new document.
    pub fn reset(&mut self) {
        match &mut self.inner {
            Inner::Entropy(d) => d.reset(),
            Inner::Static(t) => t.reset(),
            Inner::Space(t) => t.reset(),
        }
        self.pushed = 0;
        self.patches = 0;
        self.current = 0;
    }
}

fn lengths_from_entropies_with(h: &[f32], cfg: &PatchConfig) -> Vec<usize> {
    let mut out = Vec::with_capacity(h.len() / 4 + 1);
    lengths_from_entropies_into(h, cfg, |l| out.push(l));
    out
}
