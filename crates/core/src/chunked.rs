//! Parallel chunked segmentation of one long input.
//!
//! The input is cut into chunks that are scored in parallel (on the current rayon pool: run it
//! inside `ThreadPool::install` to choose the thread count). No position loses context: each
//! chunk's entropies are computed by [`EntropyModel::entropies`] over the whole document slice, so
//! the model re-reads the `C` bytes of receptive field before the chunk's start (the "warm-up"),
//! and by the model's contract every `H[i]` has the same bits as in one sequential pass. Each
//! chunk also scores the byte before its start, which the relative rules compare against.
//!
//! For the threshold rules, chunks yield their *natural* starts; these are merged in order and
//! the forced starts of `max_patch_len` are inserted across chunk borders by one
//! [`LengthBuilder`]. For the budget rule, whose decisions depend on the previous boundary, the
//! chunks' entropies (computed in parallel) are scanned in order by one [`LengthScanner`]. Either
//! way the result is identical to [`crate::segment`] for every chunk length and thread count.
//!
//! Work proceeds in rounds of a few chunks per thread, so memory stays bounded by
//! `O(threads × chunk_len)` whatever the input length.

use std::ops::Range;

use crate::model::EntropyModel;
use crate::parallel::par_map;
use crate::rule::{LengthBuilder, LengthScanner, PatchConfig, Rule, for_each_natural_start};

/// The default chunk length in bytes.
pub const DEFAULT_CHUNK_LEN: usize = 1 << 16;

/// Chunks per thread in one round.
const CHUNKS_PER_THREAD: usize = 4;

/// Patch lengths of `doc`, scored in parallel chunks of `chunk_len` bytes (0 is taken as 1).
/// Identical to [`crate::segment`].
pub fn segment_chunked(
    model: &dyn EntropyModel,
    doc: &[u8],
    cfg: &PatchConfig,
    chunk_len: usize,
) -> Vec<usize> {
    let mut out = Vec::with_capacity(doc.len() / 4 + 1);
    segment_chunked_into(model, doc, cfg, chunk_len, |l| out.push(l));
    out
}

/// Like [`segment_chunked`], handing each patch length to `emit` in order as soon as it is
/// known, in bounded memory.
pub fn segment_chunked_into(
    model: &dyn EntropyModel,
    doc: &[u8],
    cfg: &PatchConfig,
    chunk_len: usize,
    emit: impl FnMut(usize),
) {
    let n = doc.len();
    if n == 0 {
        return;
    }
    if !cfg.rule().is_local() {
        let mut scanner = LengthScanner::new(*cfg);
        let mut emit = emit;
        entropies_chunked_into(model, doc, chunk_len, |h| scanner.feed(h, &mut emit));
        scanner.finish(emit);
        return;
    }
    let mut builder = LengthBuilder::new(cfg.max_patch_len(), emit);
    for_each_round(n, chunk_len, |chunks| {
        let starts = par_map(chunks, |r| {
            natural_starts(model, doc, cfg.rule(), r.clone())
        });
        for s in starts.into_iter().flatten() {
            builder.start_at(s);
        }
    });
    builder.finish(n);
}

/// Entropies `H[0..n)` of `doc`, computed in parallel chunks and handed to `emit` in order, one
/// slice per chunk (bounded memory).
pub fn entropies_chunked_into(
    model: &dyn EntropyModel,
    doc: &[u8],
    chunk_len: usize,
    emit: impl FnMut(&[f32]),
) {
    values_chunked_into(doc, chunk_len, |r, out| model.entropies(doc, r, out), emit);
}

/// Surprisals `-ln p(x[i] | context)` (nats) of every byte of `doc`, computed in parallel
/// chunks and handed to `emit` in order, one slice per chunk (bounded memory). Their sum over
/// a text divided by `ln 2` is the model's code length in bits.
pub fn surprisals_chunked_into(
    model: &dyn EntropyModel,
    doc: &[u8],
    chunk_len: usize,
    emit: impl FnMut(&[f32]),
) {
    values_chunked_into(doc, chunk_len, |r, out| model.surprisals(doc, r, out), emit);
}

/// One value per byte of `doc` from `compute(range, out)`, in parallel chunks, in order.
fn values_chunked_into(
    doc: &[u8],
    chunk_len: usize,
    compute: impl Fn(Range<usize>, &mut [f32]) + Sync,
    mut emit: impl FnMut(&[f32]),
) {
    for_each_round(doc.len(), chunk_len, |chunks| {
        let parts = par_map(chunks, |r| {
            let mut v = vec![0f32; r.len()];
            compute(r.clone(), &mut v);
            v
        });
        for p in &parts {
            emit(p);
        }
    });
}

/// Calls `round` with consecutive groups of chunk ranges that cover `0..n`.
fn for_each_round(n: usize, chunk_len: usize, mut round: impl FnMut(&[Range<usize>])) {
    let chunk_len = chunk_len.max(1);
    let per_round = rayon::current_num_threads().max(1) * CHUNKS_PER_THREAD;
    let mut start = 0;
    let mut chunks = Vec::with_capacity(per_round);
    while start < n {
        chunks.clear();
        while chunks.len() < per_round && start < n {
            let end = n.min(start.saturating_add(chunk_len));
            chunks.push(start..end);
            start = end;
        }
        round(&chunks);
    }
}

/// The natural starts (global positions >= 1) inside `range`.
fn natural_starts(
    model: &dyn EntropyModel,
    doc: &[u8],
    rule: Rule,
    range: Range<usize>,
) -> Vec<usize> {
    // One extra position before the chunk: the relative rules compare with H[start - 1].
    let lo = range.start.saturating_sub(1);
    let mut h = vec![0f32; range.end - lo];
    model.entropies(doc, lo..range.end, &mut h);
    let mut starts = Vec::with_capacity(h.len() / 4 + 1);
    for_each_natural_start(rule, &h, 1, |j| starts.push(lo + j));
    starts
}
