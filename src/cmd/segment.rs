//! `bltpatch segment`.
//!
//! With a fixed rule, documents go through in bounded memory: an input file is memory-mapped,
//! a large document is segmented by the library in parallel chunks
//! ([`Patcher::segment_into`]) or byte by byte by its decoder (`--streaming`), and its patch
//! lengths go to the writer as patches close; the pages of the map that no chunk will read
//! again are released as the work advances. Peak memory is then a few megabytes beyond the
//! model, whatever the input's size, for the `lengths`, `jsonl` and `npy` formats (`text`
//! prints whole documents, so it holds one document's lengths, and its entropies when
//! colouring). Calibrating on the input (`--target-patch-size`) needs every entropy first and
//! holds them.

use std::ops::Range;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::Result;
use bltpatch::{
    DEFAULT_CHUNK_LEN, EntropyModel, EntropyStream, LengthScanner, Model, Patcher, Scheme,
    entropies_chunked_into,
};
use bltpatch_io::{Format, Input, IoError, PatchWriter, writer};
use rayon::prelude::*;

use crate::args::{OutputFormat, SegmentArgs};
use crate::common::{
    Document, document_iter, documents, load_model, pool, read_inputs, require_output,
    resolve_rule, scheme_for,
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
/// Chunk rounds of the chunked segmentation that may still be in flight behind the chunk being
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
    args.rule.spec().validate()?;
    if format == Format::Npy {
        require_output(&args.output, "--format npy")?;
    }
    let model = load_model(&args.model)?;
    let plan = resolve_rule(&args.rule, &model)?;
    if let (true, bltpatch::Plan::Fixed(Scheme::Bpe)) = (args.streaming, plan) {
        Patcher::new(&model, Scheme::Bpe)?.decoder()?;
    }
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
        bltpatch::Plan::Fixed(scheme) => {
            for f in &files {
                // A whole file is one document, borrowed from the map: its pages can be released.
                let source = args.input.jsonl_field.is_none().then_some(&f.data);
                let mut docs = document_iter(f, &args.input);
                loop {
                    let group = next_group(&mut docs)?;
                    if group.is_empty() {
                        break;
                    }
                    job.group(&group, source, scheme, out.as_mut())?;
                }
            }
        }
        bltpatch::Plan::Calibrate { .. } => {
            // Calibration on the input needs every entropy first.
            let mut docs = Vec::new();
            for f in &files {
                docs.extend(documents(f, &args.input)?);
            }
            let tracked = Tracked::new(&model, &progress, None, 0);
            let all_h: Vec<Vec<f32>> = pool.install(|| {
                docs.iter()
                    .map(|d| {
                        let mut h = Vec::with_capacity(d.bytes.len());
                        entropies_chunked_into(&tracked, &d.bytes, DEFAULT_CHUNK_LEN, |part| {
                            h.extend_from_slice(part)
                        });
                        h
                    })
                    .collect()
            });
            let refs: Vec<&[f32]> = all_h.iter().map(Vec::as_slice).collect();
            let scheme = scheme_for(&plan, &refs)?;
            let patcher = Patcher::new(&model, scheme)?;
            for (d, h) in docs.iter().zip(&all_h) {
                let lengths = match (job.streaming, scheme) {
                    // the decoder's state machine on the same entropies
                    (true, Scheme::Entropy(cfg)) => {
                        let mut lengths = Vec::with_capacity(h.len() / 4 + 1);
                        let mut scanner = LengthScanner::new(cfg);
                        for &e in h.iter() {
                            scanner.push(e, |l| lengths.push(l));
                        }
                        scanner.finish(|l| lengths.push(l));
                        lengths
                    }
                    _ => patcher.lengths_from_entropies(&d.bytes, h),
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
        scheme: Scheme,
        out: &mut dyn PatchWriter,
    ) -> Result<()> {
        let large = |d: &Document| docs.len() == 1 || d.bytes.len() >= LARGE_DOC;
        let small: Vec<Option<Segmented>> = self.pool.install(|| {
            docs.par_iter()
                .map(|d| {
                    let model = Tracked::new(self.model, self.progress, None, 0);
                    let patcher = Patcher::new(&model, scheme).expect("a resolved scheme");
                    (!large(d)).then(|| self.whole(&patcher, &d.bytes))
                })
                .collect()
        });
        for (d, segmented) in docs.iter().zip(small) {
            match segmented {
                Some((lengths, h)) => {
                    out.write_document(&d.name, &d.bytes, &lengths, h.as_deref())?
                }
                None => self.large(d, source, scheme, out)?,
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
        scheme: Scheme,
        out: &mut dyn PatchWriter,
    ) -> Result<()> {
        let behind = ROUNDS_BEHIND * self.pool.current_num_threads() * DEFAULT_CHUNK_LEN;
        let model = Tracked::new(self.model, self.progress, source, behind);
        let patcher = Patcher::new(&model, scheme)?;
        let doc = &d.bytes[..];
        if !out.is_incremental() {
            let (lengths, h) = self.pool.install(|| self.whole(&patcher, doc));
            out.write_document(&d.name, doc, &lengths, h.as_deref())?;
        } else {
            self.stream_to(&patcher, d, out)?;
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
        patcher: &Patcher<&Tracked>,
        d: &Document,
        out: &mut dyn PatchWriter,
    ) -> Result<()> {
        let doc = &d.bytes[..];
        let model = *patcher.model();
        out.begin_document(&d.name, doc.len())?;
        let mut sink = Sink {
            out: &mut *out,
            buf: Vec::with_capacity(SINK_LEN),
            error: None,
            cancelled: &model.cancelled,
        };
        if self.streaming {
            let mut decoder = patcher.decoder()?;
            for (k, piece) in doc.chunks(DECODE_STEP).enumerate() {
                if model.is_cancelled() {
                    break;
                }
                model.release_before((k * DECODE_STEP).saturating_sub(model.context() + 1));
                decoder.push_slice_lengths(piece, |len| sink.push(len));
                model.progress.inc(piece.len() as u64);
            }
            if let Some(last) = decoder.finish() {
                sink.push(last);
            }
        } else {
            self.pool
                .install(|| patcher.segment_into(doc, |len| sink.push(len)));
        }
        sink.finish()?;
        out.end_document()?;
        Ok(())
    }

    /// A document's lengths (and entropies if kept), whole.
    fn whole(&self, patcher: &Patcher<&Tracked>, doc: &[u8]) -> Segmented {
        let keep = self.keep_entropies && patcher.scheme().uses_entropy();
        if self.streaming {
            let mut decoder = patcher.decoder().expect("checked before the run");
            let mut lengths = Vec::with_capacity(doc.len() / 4 + 1);
            let mut h = Vec::with_capacity(if keep { doc.len() } else { 0 });
            for &b in doc {
                if keep {
                    h.extend(decoder.next_entropy());
                }
                let open = decoder.current_patch_len();
                if decoder.push(b) && open > 0 {
                    lengths.push(open);
                }
            }
            lengths.extend(decoder.finish());
            patcher.model().progress.inc(doc.len() as u64);
            return (lengths, keep.then_some(h));
        }
        if keep {
            let (lengths, h) = patcher.segment_with_entropies(doc);
            return (lengths, Some(h));
        }
        (patcher.segment(doc), None)
    }
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

/// The model as `segment` runs it on one document: it counts the bytes scored for the progress
/// bar; once the output has failed, it stops computing (the rest of the document is scored 0
/// and its patches are discarded); and as the chunks advance it releases the input pages that
/// no chunk will read again.
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
