//! Compares entropy models on the held-out tails of corpus files, as in the candidate table of
//! `crates/model/src/lib.rs`:
//!
//! ```text
//! cargo run --release --example compare_models -- --reference REF_DIR [--corpus FILE]... \
//!     [--speed FILE] [--speed-reference] MODEL_DIR...
//! ```
//!
//! For the reference model and every other model it prints:
//!
//! - held-out bits/byte on each corpus file's tail (the trainer's held-out text: the last 5 % of
//!   each file, capped to 1 MiB in proportion) and overall;
//! - the F1 agreement of its patch starts with the reference model's on that text, both with the
//!   global threshold calibrated on the same text for a mean patch length of 4.5 bytes;
//! - for a `hashmlp` model, the root-mean-square error of its entropy head against the entropy
//!   of its own next-byte distribution, the share of that entropy's variance it explains (R²),
//!   the F1 of their patch starts, and the F1 of that distribution's starts with the reference's
//!   (what the model would agree on with an exact entropy);
//! - segmentation throughput (`segment_chunked`, 1 and 2 threads, best of 5) and streaming
//!   time per byte on the first MiB of the `--speed` file (default: en_books; for the reference
//!   model only with `--speed-reference`): wall-clock
//!   MiB/s, and on 1 thread also MiB per CPU-second of the process (where Linux reports it),
//!   which a loaded machine disturbs less.
//!
//! The corpus defaults to the eight files of `../shared/corpora`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use bltpatch::{
    CalibrationTarget, DEFAULT_CHUNK_LEN, EntropyModel, Model, PatchConfig, Rule, calibrate,
    lengths_from_entropies, patch_starts, segment_chunked,
};
use bltpatch_engine::hashmlp::HashMlpModel;

const CORPORA: [&str; 8] = [
    "en_books",
    "en_docs",
    "de_docs",
    "fr_docs",
    "ru_docs",
    "zh_docs",
    "code_rust",
    "structured",
];
const TARGET: f64 = 4.5;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Seconds of CPU time used by all threads of this process so far (Linux: the scheduler's
/// nanosecond counters of `/proc/self/task/*/schedstat`), else `None`.
fn cpu_seconds() -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 * 1e-9)
}

struct Scored {
    bpb: Vec<f64>,
    overall: f64,
    entropies: Vec<Vec<f32>>,
    threshold: f32,
}

fn score(model: &Model, docs: &[Vec<u8>]) -> Result<Scored, Box<dyn std::error::Error>> {
    let mut bpb = Vec::new();
    let mut entropies = Vec::new();
    let (mut nll, mut bytes) = (0f64, 0usize);
    for d in docs {
        let mut s = vec![0f32; d.len()];
        model.surprisals(d, 0..d.len(), &mut s);
        let sum: f64 = s.iter().map(|&x| x as f64).sum();
        bpb.push(sum / d.len() as f64 / std::f64::consts::LN_2);
        nll += sum;
        bytes += d.len();
        let mut h = vec![0f32; d.len()];
        model.entropies(d, 0..d.len(), &mut h);
        entropies.push(h);
    }
    let refs: Vec<&[f32]> = entropies.iter().map(Vec::as_slice).collect();
    let c = calibrate(&refs, CalibrationTarget::Global, TARGET, None)?;
    Ok(Scored {
        bpb,
        overall: nll / bytes as f64 / std::f64::consts::LN_2,
        entropies,
        threshold: c.value as f32,
    })
}

fn starts(entropies: &[Vec<f32>], threshold: f32) -> HashSet<(usize, usize)> {
    let cfg = PatchConfig::new(Rule::Global { threshold }).expect("a valid threshold");
    let mut out = HashSet::new();
    for (d, h) in entropies.iter().enumerate() {
        for s in patch_starts(&lengths_from_entropies(h, &cfg)) {
            out.insert((d, s));
        }
    }
    out
}

/// F1 of the starts of `b` against those of `a`.
fn f1(a: &HashSet<(usize, usize)>, b: &HashSet<(usize, usize)>) -> f64 {
    let common = a.intersection(b).count() as f64;
    2.0 * common / (a.len() + b.len()) as f64
}

fn speed(model: &Model, text: &[u8], threads: usize) -> (f64, f64) {
    let cfg = model
        .patch_config()
        .unwrap_or_else(|| PatchConfig::new(Rule::Global { threshold: 2.0 }).unwrap());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a pool");
    let (mut wall, mut cpu) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let (t, c) = (Instant::now(), cpu_seconds());
        let n = pool.install(|| segment_chunked(model, text, &cfg, DEFAULT_CHUNK_LEN).len());
        std::hint::black_box(n);
        wall = wall.min(t.elapsed().as_secs_f64());
        if let (Some(c0), Some(c1)) = (c, cpu_seconds()) {
            cpu = cpu.min(c1 - c0);
        }
    }
    let mib = text.len() as f64 / (1 << 20) as f64;
    (
        mib / wall,
        if cpu == f64::MAX { f64::NAN } else { mib / cpu },
    )
}

fn streaming_us(model: &Model, text: &[u8]) -> f64 {
    let n = text.len().min(200_000);
    let t = Instant::now();
    let mut s = model.stream();
    let mut acc = 0f32;
    for &b in &text[..n] {
        acc += s.entropy();
        s.push(b);
    }
    std::hint::black_box(acc);
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut reference: Option<PathBuf> = None;
    let mut corpus: Vec<PathBuf> = Vec::new();
    let mut models: Vec<PathBuf> = Vec::new();
    let mut speed_file: Option<PathBuf> = None;
    let mut speed_reference = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--reference" => reference = Some(value()?.into()),
            "--corpus" => corpus.push(value()?.into()),
            "--speed" => speed_file = Some(value()?.into()),
            "--speed-reference" => speed_reference = true,
            _ if a.starts_with('-') => return Err(format!("unknown flag {a}").into()),
            _ => models.push(a.into()),
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora");
    if corpus.is_empty() {
        corpus = CORPORA
            .iter()
            .map(|n| root.join(format!("{n}.txt")))
            .collect();
    }
    let reference = reference.ok_or("--reference DIR is required")?;
    let docs = bltpatch_model::held_out(&corpus, 0.05, 1 << 20)?;
    let speed_text = std::fs::read(speed_file.unwrap_or_else(|| root.join("en_books.txt")))?;
    let speed_text = &speed_text[..speed_text.len().min(1 << 20)];
    let names: Vec<String> = corpus
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    println!(
        "held-out bytes: {} ({})",
        docs.iter().map(Vec::len).sum::<usize>(),
        names.join(", ")
    );

    let ref_model = Model::load(&reference)?;
    let ref_scored = score(&ref_model, &docs)?;
    let ref_starts = starts(&ref_scored.entropies, ref_scored.threshold);
    for dir in std::iter::once(&reference).chain(&models) {
        let model = Model::load(dir)?;
        let t0 = Instant::now();
        let s = score(&model, &docs)?;
        let eval_s = t0.elapsed().as_secs_f64();
        let my_starts = starts(&s.entropies, s.threshold);
        let size = std::fs::metadata(dir.join("model.safetensors"))?.len();
        println!(
            "\n{} ({}, model.safetensors {:.2} MB, scored in {eval_s:.1} s)",
            dir.display(),
            model.config().arch,
            size as f64 / 1e6
        );
        let per: Vec<String> = names
            .iter()
            .zip(&s.bpb)
            .zip(&ref_scored.bpb)
            .map(|((n, b), r)| format!("{n} {b:.3} ({:+.1}%)", 100.0 * (b / r - 1.0)))
            .collect();
        println!(
            "  bits/byte {:.4} ({:+.1}% vs reference); {}",
            s.overall,
            100.0 * (s.overall / ref_scored.overall - 1.0),
            per.join(", ")
        );
        let ratios: Vec<f64> = s
            .bpb
            .iter()
            .zip(&ref_scored.bpb)
            .map(|(a, b)| a / b)
            .collect();
        let geo = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
        println!(
            "  geometric mean of per-file ratios {:.4}; F1 of patch starts vs reference {:.4} (threshold {:.4})",
            geo,
            f1(&ref_starts, &my_starts),
            s.threshold
        );
        if model.config().arch == bltpatch_engine::hashmlp::ARCH {
            let hm = HashMlpModel::load(dir)?;
            let (mut sq, mut n, mut sum, mut sum2) = (0f64, 0usize, 0f64, 0f64);
            let mut dist = Vec::new();
            for (d, h) in docs.iter().zip(&s.entropies) {
                let mut e = vec![0f32; d.len()];
                hm.distribution_entropies(d, 0..d.len(), &mut e);
                for (&a, &b) in h.iter().zip(&e) {
                    sq += (a as f64 - b as f64).powi(2);
                    sum += b as f64;
                    sum2 += (b as f64).powi(2);
                }
                n += d.len();
                dist.push(e);
            }
            let var = sum2 / n as f64 - (sum / n as f64).powi(2);
            let refs: Vec<&[f32]> = dist.iter().map(Vec::as_slice).collect();
            let c = calibrate(&refs, CalibrationTarget::Global, TARGET, None)?;
            let dist_starts = starts(&dist, c.value as f32);
            println!(
                "  entropy head: rms error {:.4} nats, R² {:.4} (distribution entropy mean {:.3}, std {:.3}); F1 of starts vs its own distribution's {:.4}; the distribution's starts vs reference {:.4}",
                (sq / n as f64).sqrt(),
                1.0 - sq / n as f64 / var,
                sum / n as f64,
                var.sqrt(),
                f1(&dist_starts, &my_starts),
                f1(&ref_starts, &dist_starts)
            );
        }
        if dir == &reference && !speed_reference {
            continue;
        }
        let (w1, c1) = speed(&model, speed_text, 1);
        let (w2, _) = speed(&model, speed_text, 2);
        println!(
            "  segment {:.1} MiB/s wall ({:.1} per CPU-second) on 1 thread, {:.1} MiB/s wall on 2; streaming {:.3} µs/byte",
            w1,
            c1,
            w2,
            streaming_us(&model, speed_text)
        );
    }
    Ok(())
}
