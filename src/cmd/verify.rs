//! `bltpatch verify`: batch vs streaming vs thread counts vs random chunkings, bit for bit.

use std::process::ExitCode;

use anyhow::Result;
use bltpatch::{
    EntropyModel, PatchConfig, Scheme, StreamingDecoder, entropies_chunked_into,
    lengths_from_entropies, patch_starts, segment_chunked, surprisals_chunked_into,
};

use crate::args::VerifyArgs;
use crate::common::{documents, load_model, pool, read_inputs, resolve_rule, scheme_for};
use crate::progress::{Counted, Progress};

/// Thread counts that every file is checked with.
const THREADS: [usize; 3] = [1, 2, 3];
/// Random chunkings per file.
const RANDOM_CHUNKINGS: usize = 3;
/// Times each byte is scored: the reference, streaming, and entropies plus segmentation for
/// every thread count and random chunking.
const PASSES: usize = 2 + 2 * (THREADS.len() + RANDOM_CHUNKINGS);

pub fn run(args: VerifyArgs) -> Result<ExitCode> {
    args.rule.spec().validate()?;
    let model = load_model(&args.model)?;
    let plan = resolve_rule(&args.rule, &model)?;
    if let bltpatch::Plan::Fixed(s @ (Scheme::Static { .. } | Scheme::Space { .. } | Scheme::Bpe)) =
        plan
    {
        return Err(bltpatch::Error::Usage(format!(
            "verify checks entropy patching; the {} baseline does not use the model",
            s.name()
        ))
        .into());
    }
    let files = read_inputs(&args.files)?;
    let pools = THREADS
        .iter()
        .map(|&t| pool(Some(t)))
        .collect::<Result<Vec<_>>>()?;
    let mut rng = SplitMix(args.seed);
    let mut any = false;
    for f in &files {
        let docs = documents(f, &args.input)?;
        let total: usize = docs.iter().map(|d| d.bytes.len()).sum();
        let progress = Progress::new("verify", (PASSES * total) as u64);
        let model = Counted {
            model: &model,
            progress: &progress,
        };
        // The reference: the batch path, one thread, whole documents.
        let hs: Vec<Vec<f32>> = docs
            .iter()
            .map(|d| {
                let mut h = vec![0f32; d.bytes.len()];
                model.entropies(&d.bytes, 0..d.bytes.len(), &mut h);
                h
            })
            .collect();
        let refs: Vec<&[f32]> = hs.iter().map(Vec::as_slice).collect();
        let Scheme::Entropy(cfg) = scheme_for(&plan, &refs)? else {
            unreachable!("baselines were refused above")
        };
        // Chunk lengths: log-uniform from 1 byte to 64 KiB.
        let chunkings: Vec<usize> = (0..RANDOM_CHUNKINGS).map(|_| rng.chunk_len()).collect();
        let mut report = Tally::default();
        let mut bytes = 0;
        for (d, h) in docs.iter().zip(&hs) {
            let doc = &d.bytes[..];
            bytes += doc.len();
            let lengths = lengths_from_entropies(h, &cfg);
            report.patches += lengths.len();
            let starts = start_flags(&lengths, doc.len());
            // Streaming, byte by byte.
            let (s_lengths, s_h) = streaming(&model, doc, &cfg);
            report.compare(&starts, h, &s_lengths, &s_h);
            // Thread counts with the default chunk length, then random chunkings on 2 threads.
            let mut runs: Vec<(usize, usize)> = THREADS
                .iter()
                .enumerate()
                .map(|(i, _)| (i, bltpatch::DEFAULT_CHUNK_LEN))
                .collect();
            runs.extend(chunkings.iter().map(|&c| (1, c)));
            if args.surprisals {
                let mut whole = vec![0f32; doc.len()];
                model.model.surprisals(doc, 0..doc.len(), &mut whole);
                for &(p, chunk) in &runs {
                    let mut parts = Vec::with_capacity(doc.len());
                    pools[p].install(|| {
                        surprisals_chunked_into(model.model, doc, chunk, |part| {
                            parts.extend_from_slice(part)
                        })
                    });
                    report.surprisal_mismatches += whole.len().abs_diff(parts.len())
                        + whole
                            .iter()
                            .zip(&parts)
                            .filter(|(a, b)| a.to_bits() != b.to_bits())
                            .count();
                }
            }
            for (p, chunk) in runs {
                let (c_lengths, c_h) = pools[p].install(|| {
                    let mut c_h = Vec::with_capacity(doc.len());
                    entropies_chunked_into(&model, doc, chunk, |part| c_h.extend_from_slice(part));
                    (segment_chunked(&model, doc, &cfg, chunk), c_h)
                });
                report.compare(&starts, h, &c_lengths, &c_h);
            }
        }
        progress.finish();
        any |= report.mismatches + report.surprisal_mismatches > 0;
        let surprisals = if args.surprisals {
            format!("; surprisals: {} mismatches", report.surprisal_mismatches)
        } else {
            String::new()
        };
        println!(
            "{}: {} bytes, {} documents, {} patches; batch vs streaming vs 1/2/3 threads vs \
             chunks of {:?} bytes: {} mismatches{surprisals}",
            crate::common::display(&f.path),
            bytes,
            docs.len(),
            report.patches,
            chunkings,
            report.mismatches
        );
    }
    Ok(if any {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Default)]
struct Tally {
    patches: usize,
    mismatches: usize,
    surprisal_mismatches: usize,
}

impl Tally {
    /// Counts the positions whose start decision or entropy bits differ from the reference.
    fn compare(&mut self, starts: &[bool], h: &[f32], lengths: &[usize], other_h: &[f32]) {
        // Lengths must also be a valid segmentation: all >= 1, summing to n.
        let sum: usize = lengths.iter().sum();
        self.mismatches += sum.abs_diff(starts.len()) + lengths.iter().filter(|&&l| l == 0).count();
        let other = start_flags(lengths, starts.len());
        self.mismatches += starts.iter().zip(&other).filter(|(a, b)| a != b).count();
        self.mismatches += h
            .iter()
            .zip(other_h)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        self.mismatches += h.len().abs_diff(other_h.len());
    }
}

/// Per-byte start flags of a segmentation (lengths that overrun `n` are cut off, too few leave
/// `false`, so any difference shows up as mismatches).
fn start_flags(lengths: &[usize], n: usize) -> Vec<bool> {
    let mut flags = vec![false; n];
    for s in patch_starts(lengths) {
        if s < n {
            flags[s] = true;
        }
    }
    flags
}

/// The generation-time decoder's boundaries and entropies, byte by byte.
fn streaming(model: &dyn EntropyModel, doc: &[u8], cfg: &PatchConfig) -> (Vec<usize>, Vec<f32>) {
    let mut decoder = StreamingDecoder::new(model, *cfg);
    let mut h = Vec::with_capacity(doc.len());
    let mut lengths = Vec::with_capacity(doc.len() / 4 + 1);
    for &b in doc {
        let open = decoder.current_patch_len();
        let d = decoder.push(b);
        h.push(d.entropy);
        if d.starts_patch && open > 0 {
            lengths.push(open);
        }
    }
    lengths.extend(decoder.finish());
    (lengths, h)
}

/// A tiny deterministic generator for the random chunkings.
struct SplitMix(u64);

impl SplitMix {
    /// A chunk length, log-uniform from 1 byte to 128 KiB.
    fn chunk_len(&mut self) -> usize {
        let base = 1usize << (self.next() % 17);
        base + (self.next() as usize % base)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
