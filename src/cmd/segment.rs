//! `bltpatch segment`.
//!
//! With a fixed rule, documents go through in bounded memory: an input file is memory-mapped,
//! a large document is segmented in parallel chunks ([`segment_chunked_into`]) or byte by byte
//! (`--streaming`), and its patch lengths go to the writer as patches close; the pages of the
//! map that no chunk will read again are released as the work advances. Peak memory is then a
//! few megabytes beyond the model, whatever the input's size, for the `lengths`, `jsonl` and
//! `npy` formats (`text` prints whole documents, so it holds one document's lengths, and its
//! entropies when colouring). Calibrating on the input (`--target-patch-size`) needs every
//! entropy first and holds them.

use std::ops::Range;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::Result;
use bltpatch::{
    BoundaryTracker, DEFAULT_CHUNK_LEN, EntropyModel, EntropyStream, Model, PatchConfig,
    entropies_chunked_into, lengths_from_entropies, segment_chunked, segment_chunked_into,
};
use bltpatch_io::{Format, Input, IoError, PatchWriter, writer};
use rayon::prelude::*;

use crate::args::{OutputFormat, SegmentArgs};
use crate::common::{
    Document, RulePlan, document_iter, documents, load_model, pool, read_inputs, require_output,
};
use crate::progress::Progress;

/// Documents segmented at once when an input holds many (JSON Lines).
const DOCS_PER_GROUP: usize = 256;
/// A group of documents stops growing at this many bytes.
const GROUP_BYTES: usize = 64 << 20;
/// Documents at least this long are segmented one at a time with every thread, and streamed
/// to the writer.
const LARGE_DOC: usize = 1 << 20;
/// Patch lengths handed to the writer at once.
const SINK_LEN: usize = 1 << 16;
/// The input pages behind the work are released in steps of this many bytes.
const RELEASE_STEP: usize = 8 << 20;
/// Bytes between two checks of cancellation and release in the byte-by-byte decoder.
const DECODE_STEP: usize = 1 << 20;
/// Chunk rounds of [`segment_chunked_into`] that may still be in flight behind the chunk being
/// scored, counted in chunks per thread (it runs 4 per thread at once; twice that for margin).
const ROUNDS_BEHIND: usize = 8;

/// Runs `bltpatch segment`.
pub fn run(args: SegmentArgs) -> Result<ExitCode> {
    let format = match args.format {
        OutputFormat::Text => Format::Text,
        OutputFormat::Lengths => Format::Lengths,
        OutputFormat::Jsonl => Format::Jsonl,
        OutputFormat::Npy => Format::Npy,
    };
    if format == Format::Npy {
        require_output(&args.output, "--format npy")?;
    }
    let model = load_model(&args.model)?;
    let plan = RulePlan::resolve(&args.rule, &model)?;
    let files = read_inputs(&args.files)?;
    let pool = pool(args.threads)?;
    let colour =
        format == Format::Text && args.output.is_none() && bltpatch_io::is_terminal_stdout();
    let mut out = writer(format, args.output.as_deref(), colour)?;
    let total: usize = files.iter().map(|f| f.data.len()).sum();
    let progress = Progress::new("segment", total as u64);
    let job = Job {
        model: &model,
        progress: &progress,
        pool: &pool,
        streaming: args.streaming,
        // only the coloured text format shows entropies
        keep_entropies: colour,
    };

    match plan {
        RulePlan::Fixed(cfg) => {
            for f in &files {
                // A whole file is one document, borrowed from the map: its pages can be released.
                let source = args.input.jsonl_field.is_none().then_some(&f.data);
                let mut docs = document_iter(f, &args.input);
                loop {
                    let group = next_group(&mut docs)?;
                    if group.is_empty() {
                        break;
                    }
                    job.group(&group, source, &cfg, out.as_mut())?;
                }
            }
        }
        RulePlan::Calibrate { .. } => {
            // Calibration on the input needs every entropy first.
            let mut docs = Vec::new();
            for f in &files {
                docs.extend(documents(f, &args.input)?);
            }
            let all_h: Vec<Vec<f32>> =
                pool.install(|| docs.iter().map(|d| job.entropies(&d.bytes)).collect());
            let refs: Vec<&[f32]> = all_h.iter().map(Vec::as_slice).collect();
            let cfg = plan.config_for(&refs)?;
            for (d, h) in docs.iter().zip(&all_h) {
                let lengths = if job.streaming {
                    tracker_lengths(h, &cfg)
                } else {
                    lengths_from_entropies(h, &cfg)
                };
                let h = colour.then_some(h.as_slice());
                out.write_document(&d.name, &d.bytes, &lengths, h)?;
            }
        }
    }
    progress.finish();
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

/// The next documents to segment together: up to [`DOCS_PER_GROUP`] of them, and about
/// [`GROUP_BYTES`]; empty at the end.
fn next_group<'a>(
    docs: &mut dyn Iterator<Item = Result<Document<'a>>>,
) -> Result<Vec<Document<'a>>> {
    let mut group = Vec::new();
    let mut bytes = 0;
    while group.len() < DOCS_PER_GROUP && bytes < GROUP_BYTES {
        let Some(doc) = docs.next() else { break };
        let doc = doc?;
        bytes += doc.bytes.len();
        group.push(doc);
    }
    Ok(group)
}

/// What every document of one `segment` run shares.
struct Job<'a> {
    model: &'a Model,
    /// Bytes scored so far, on a terminal.
    progress: &'a Progress,
    pool: &'a rayon::ThreadPool,
    /// `--streaming`: the byte-by-byte decoder decides.
    streaming: bool,
    /// Whether the writer needs the entropies (coloured text).
    keep_entropies: bool,
}

/// A document's patch lengths, and its entropies if kept.
type Segmented = (Vec<usize>, Option<Vec<f32>>);

impl Job<'_> {
    /// Segments and writes a group of documents in order: small ones in parallel (one thread
    /// each), then each large one with every thread.
    fn group(
        &self,
        docs: &[Document],
        source: Option<&Input>,
        cfg: &PatchConfig,
        out: &mut dyn PatchWriter,
    ) -> Result<()> {
        let large = |d: &Document| docs.len() == 1 || d.bytes.len() >= LARGE_DOC;
        let small: Vec<Option<Segmented>> = self.pool.install(|| {
            docs.par_iter()
                .map(|d| {
                    let model = Tracked::new(self.model, self.progress, None, 0);
                    (!large(d)).then(|| self.whole(&model, &d.bytes, cfg))
                })
                .collect()
        });
        for (d, segmented) in docs.iter().zip(small) {
            match segmented {
                Some((lengths, h)) => {
                    out.write_document(&d.name, &d.bytes, &lengths, h.as_deref())?
                }
                None => self.large(d, source, cfg, out)?,
            }
        }
        Ok(())
    }

    /// Segments a large document with every thread (or byte by byte) and writes it; its lengths
    /// are streamed to the writer when the format allows.
    fn large(
        &self,
        d: &Document,
        source: Option<&Input>,
        cfg: &PatchConfig,
        out: &mut dyn PatchWriter,
    ) -> Result<()> {
        let behind = ROUNDS_BEHIND * self.pool.current_num_threads() * DEFAULT_CHUNK_LEN;
        let model = Tracked::new(self.model, self.progress, source, behind);
        let doc = &d.bytes[..];
        if !out.is_incremental() {
            let (lengths, h) = self.pool.install(|| self.whole(&model, doc, cfg));
            out.write_document(&d.name, doc, &lengths, h.as_deref())?;
        } else {
            self.stream_to(&model, d, cfg, out)?;
        }
        // done with this file: none of its pages need stay resident while other files are read
        if let Some(input) = source {
            input.release(0..input.len());
        }
        Ok(())
    }

    /// Segments a large document and hands its lengths to `out` as patches close.
    fn stream_to(
        &self,
        model: &Tracked,
        d: &Document,
        cfg: &PatchConfig,
        out: &mut dyn PatchWriter,
    ) -> Result<()> {
        let doc = &d.bytes[..];
        out.begin_document(&d.name, doc.len())?;
        let mut sink = Sink {
            out: &mut *out,
            buf: Vec::with_capacity(SINK_LEN),
            error: None,
            cancelled: &model.cancelled,
        };
        if self.streaming {
            decode_into(model, doc, cfg, |_| {}, |len| sink.push(len));
        } else {
            self.pool.install(|| {
                segment_chunked_into(model, doc, cfg, DEFAULT_CHUNK_LEN, |len| sink.push(len))
            });
        }
        sink.finish()?;
        out.end_document()?;
        Ok(())
    }

    /// A document's lengths (and entropies if kept), whole.
    fn whole(&self, model: &Tracked, doc: &[u8], cfg: &PatchConfig) -> Segmented {
        let keep = self.keep_entropies;
        if self.streaming {
            let mut lengths = Vec::with_capacity(doc.len() / 4 + 1);
            let mut h = Vec::with_capacity(if keep { doc.len() } else { 0 });
            decode_into(
                model,
                doc,
                cfg,
                |e| {
                    if keep {
                        h.push(e)
                    }
                },
                |len| lengths.push(len),
            );
            return (lengths, keep.then_some(h));
        }
        if keep {
            let h = self.entropies_of(model, doc);
            return (lengths_from_entropies(&h, cfg), Some(h));
        }
        (segment_chunked(model, doc, cfg, DEFAULT_CHUNK_LEN), None)
    }

    /// `H[0..n)` of a document: parallel chunks on the current pool, or the streaming decoder.
    fn entropies(&self, doc: &[u8]) -> Vec<f32> {
        self.entropies_of(&Tracked::new(self.model, self.progress, None, 0), doc)
    }

    fn entropies_of(&self, model: &Tracked, doc: &[u8]) -> Vec<f32> {
        let mut h = Vec::with_capacity(doc.len());
        if self.streaming {
            let mut s = model.stream();
            for &byte in doc {
                h.push(s.entropy());
                s.push(byte);
            }
            model.progress.inc(doc.len() as u64);
        } else {
            entropies_chunked_into(model, doc, DEFAULT_CHUNK_LEN, |part| {
                h.extend_from_slice(part)
            });
        }
        h
    }
}

/// Patch lengths of `doc` decided byte by byte, exactly as the generation-time decoder
/// ([`bltpatch::StreamingDecoder`]) decides them: the entropy of the next byte from the model's
/// streaming state, the decision from a [`BoundaryTracker`] (the decoder's state machine), then
/// the byte is pushed. Each entropy goes to `entropy` and each length to `emit` as soon as its
/// patch closes, so nothing grows with the document (the decoder itself keeps every length).
fn decode_into(
    model: &Tracked,
    doc: &[u8],
    cfg: &PatchConfig,
    mut entropy: impl FnMut(f32),
    mut emit: impl FnMut(usize),
) {
    let mut stream: Box<dyn EntropyStream + '_> = model.stream();
    let mut tracker = BoundaryTracker::new(*cfg);
    let mut open = 0;
    for (k, piece) in doc.chunks(DECODE_STEP).enumerate() {
        if model.is_cancelled() {
            return;
        }
        model.release_before((k * DECODE_STEP).saturating_sub(model.context() + 1));
        for &byte in piece {
            let h = stream.entropy();
            if tracker.step(h) && open > 0 {
                emit(open);
                open = 0;
            }
            entropy(h);
            stream.push(byte);
            open += 1;
        }
        model.progress.inc(piece.len() as u64);
    }
    if open > 0 {
        emit(open);
    }
}

/// The lengths that the decoder's state machine finds in known entropies.
fn tracker_lengths(h: &[f32], cfg: &PatchConfig) -> Vec<usize> {
    let mut tracker = BoundaryTracker::new(*cfg);
    let mut lengths: Vec<usize> = Vec::with_capacity(h.len() / 4 + 1);
    for &e in h {
        let starts = tracker.step(e);
        match lengths.last_mut() {
            Some(last) if !starts => *last += 1,
            _ => lengths.push(1),
        }
    }
    lengths
}

/// Hands patch lengths to a writer in slices of [`SINK_LEN`]. The first write error stops the
/// writing and cancels the segmentation (see [`Tracked`]); [`Sink::finish`] returns it.
struct Sink<'w> {
    out: &'w mut dyn PatchWriter,
    buf: Vec<usize>,
    error: Option<IoError>,
    cancelled: &'w AtomicBool,
}

impl Sink<'_> {
    fn push(&mut self, len: usize) {
        self.buf.push(len);
        if self.buf.len() >= SINK_LEN {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let written = match self.error {
            None => self.out.write_lengths(&self.buf),
            Some(_) => Ok(()),
        };
        if let Err(e) = written {
            self.error = Some(e);
            self.cancelled.store(true, Ordering::Relaxed);
        }
        self.buf.clear();
    }

    fn finish(mut self) -> Result<(), IoError> {
        self.flush();
        self.error.map_or(Ok(()), Err)
    }
}

/// The model as `segment` runs it on one document: once the output has failed, it stops
/// computing (the rest of the document is scored 0 and its patches are discarded), and as the
/// chunks advance it releases the input pages that no chunk will read again.
struct Tracked<'a> {
    model: &'a Model,
    /// Where scored bytes are counted.
    progress: &'a Progress,
    /// The mapped file that the document is, if it is one.
    input: Option<&'a Input>,
    /// How far behind the start of a chunk other chunks may still read.
    behind: usize,
    cancelled: AtomicBool,
    /// Input bytes `0..released` have been released.
    released: AtomicUsize,
}

impl<'a> Tracked<'a> {
    fn new(
        model: &'a Model,
        progress: &'a Progress,
        input: Option<&'a Input>,
        behind: usize,
    ) -> Self {
        Self {
            model,
            progress,
            input,
            behind,
            cancelled: AtomicBool::new(false),
            released: AtomicUsize::new(0),
        }
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// Nothing before `pos` will be read again: release it, in steps of [`RELEASE_STEP`].
    fn release_before(&self, pos: usize) {
        let Some(input) = self.input else { return };
        let done = self.released.load(Ordering::Relaxed);
        if pos >= done + RELEASE_STEP
            && self
                .released
                .compare_exchange(done, pos, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            input.release(done..pos);
        }
    }
}

impl EntropyModel for Tracked<'_> {
    fn context(&self) -> usize {
        self.model.context()
    }

    fn entropies(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
        if self.is_cancelled() {
            out.fill(0.0);
            return;
        }
        // a chunk reads from `start - context`; chunks still in flight start at most
        // `behind` before this one
        let reach = self.behind + self.model.context() + 1;
        self.release_before(range.start.saturating_sub(reach));
        self.model.entropies(doc, range.clone(), out);
        self.progress.inc(range.len() as u64);
    }

    fn surprisals(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
        self.model.surprisals(doc, range, out);
    }

    fn stream(&self) -> Box<dyn EntropyStream + '_> {
        self.model.stream()
    }
}
