//! Benchmarks of the canonical neural engine (`bltpatch-engine`'s `ConvModel`) for each preset,
//! with random weights (speed does not depend on their values):
//!
//! - `entropies_1t`: batch `H` of a slice of `datasets/tiny.txt` on the calling thread;
//! - `chunked_1t`, `chunked_2t`: `segment_chunked` (4 chunks) on a rayon pool of 1 and 2 threads;
//! - `streaming`: the generation-time path, `entropy()` then `push()` per byte (time per byte);
//! - `sgemm_*`: `matrixmultiply::sgemm` (one thread) on the engine's matrix shapes for a block of
//!   256 positions: the convolution `[256, k·d] × [k·d, f]`, the projection `[256, f] × [f, d]`
//!   and the head `[256, d] × [d, 256]`, as a reference of what a tuned GEMM achieves here.
//!
//! Throughputs are in bytes (elements = flops for the GEMMs). At the end a summary line per
//! preset, timed in the same run, compares the engine's achieved GFLOP/s
//! (`flops_per_byte × bytes/s`, 1 thread) with sgemm on the same mix of shapes.
//!
//! A last summary line per `hashmlp` preset (`bltpatch_engine::hashmlp`, random weights) gives
//! the throughput of its entropy head (AVX2 and portable paths), of `segment_chunked` on 1 and 2
//! threads, and the streaming time per byte, on the first MiB of
//! `../shared/corpora/en_books.txt` when present (else `datasets/tiny.txt` repeated: a text
//! that repeats every 100 KB keeps the tables' working set unrealistically small).
//!
//! Run: `cargo bench --bench engine` (about four minutes on two cores).

use std::hint::black_box;
use std::time::Duration;

mod common;

use bltpatch::{EntropyModel, PatchConfig, Rule, segment_chunked};
use bltpatch_engine::hashmlp::{HashMlpConfig, HashMlpModel};
use bltpatch_engine::{ConvConfig, ConvModel};
use common::best;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

/// Positions evaluated together by the engine's batch path.
const BLOCK: usize = 256;

/// The presets with the length of their batch input and of their streaming run, in bytes.
const PRESETS: [(&str, usize, usize); 3] = [
    ("tiny", 64 << 10, 2048),
    ("small", 16 << 10, 512),
    ("base", 8 << 10, 128),
];

fn text(len: usize) -> Vec<u8> {
    let p = format!("{}/datasets/tiny.txt", env!("CARGO_MANIFEST_DIR"));
    let base = std::fs::read(p).expect("datasets/tiny.txt");
    base.iter().copied().cycle().take(len).collect()
}

fn model(name: &str) -> ConvModel {
    ConvModel::random(ConvConfig::preset(name).expect("a preset"), 7)
}

fn rule() -> PatchConfig {
    PatchConfig::new(Rule::Global { threshold: 3.0 }).expect("a valid rule")
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
}

/// Batch `H` of the whole of `doc` on this thread.
fn entropies(model: &ConvModel, doc: &[u8], out: &mut [f32]) {
    model.entropies(doc, 0..doc.len(), out);
}

/// `entropy()` then `push()` for every byte of `doc`, from an empty context.
fn stream(model: &ConvModel, doc: &[u8]) -> f32 {
    let mut s = model.stream();
    let mut sum = 0.0;
    for &b in doc {
        sum += s.entropy();
        s.push(b);
    }
    sum
}

/// One GEMM shape `[m, k] × [k, n]` with its operands.
struct Gemm {
    m: usize,
    k: usize,
    n: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

impl Gemm {
    fn new(m: usize, k: usize, n: usize) -> Self {
        let fill = |len: usize| {
            (0..len)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0)
                .collect()
        };
        Gemm {
            m,
            k,
            n,
            a: fill(m * k),
            b: fill(k * n),
            c: vec![0.0; m * n],
        }
    }

    fn flops(&self) -> u64 {
        2 * (self.m * self.k * self.n) as u64
    }

    /// `C = A·B`, row-major operands.
    fn run(&mut self) {
        let (m, k, n) = (self.m, self.k, self.n);
        // SAFETY: the pointers and row strides describe `a` ([m, k]), `b` ([k, n]) and `c`
        // ([m, n]), all row-major and of exactly these sizes.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                self.a.as_ptr(),
                k as isize,
                1,
                self.b.as_ptr(),
                n as isize,
                1,
                0.0,
                self.c.as_mut_ptr(),
                n as isize,
                1,
            );
        }
        black_box(&self.c);
    }
}

/// The GEMMs of one block of [`BLOCK`] positions: (name, shape, times per block).
fn gemms(cfg: &ConvConfig) -> Vec<(&'static str, Gemm, usize)> {
    let (d, f, k, l) = (
        cfg.d_model,
        cfg.d_hidden,
        cfg.kernel_size,
        cfg.dilations.len(),
    );
    vec![
        ("sgemm_conv", Gemm::new(BLOCK, k * d, f), l),
        ("sgemm_proj", Gemm::new(BLOCK, f, d), l),
        ("sgemm_head", Gemm::new(BLOCK, d, 256), 1),
    ]
}

fn engine(c: &mut Criterion) {
    let pools = [(1, pool(1)), (2, pool(2))];
    let cfg = rule();
    for (name, len, stream_len) in PRESETS {
        let model = model(name);
        let doc = text(len);
        let mut g = c.benchmark_group(format!("engine_{name}"));
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3))
            .sampling_mode(SamplingMode::Flat);

        g.throughput(Throughput::Bytes(doc.len() as u64));
        let mut out = vec![0f32; doc.len()];
        g.bench_function("entropies_1t", |b| {
            b.iter(|| entropies(&model, black_box(&doc), &mut out))
        });
        for (threads, pool) in &pools {
            g.bench_function(format!("chunked_{threads}t"), |b| {
                b.iter(|| {
                    pool.install(|| segment_chunked(&model, black_box(&doc), &cfg, doc.len() / 4))
                })
            });
        }

        let short = &doc[..stream_len];
        g.throughput(Throughput::Bytes(short.len() as u64));
        g.bench_function("streaming", |b| b.iter(|| stream(&model, black_box(short))));

        for (gemm_name, mut gemm, _) in gemms(model.config()) {
            g.throughput(Throughput::Elements(gemm.flops()));
            g.bench_function(gemm_name, |b| b.iter(|| gemm.run()));
        }
        g.finish();
    }
}

/// One line per preset: bytes/s at 1 and 2 threads, achieved GFLOP/s against sgemm on the same
/// shapes, streaming time per byte. Timed here, in the same process as the benchmarks above.
fn summary(_: &mut Criterion) {
    let pools = [pool(1), pool(2)];
    let cfg = rule();
    eprintln!();
    for (name, len, stream_len) in PRESETS {
        let model = model(name);
        let doc = text(len);
        let mut out = vec![0f32; doc.len()];
        let t1 = best(3, || entropies(&model, &doc, &mut out));
        let chunked = |pool: &rayon::ThreadPool| {
            best(3, || {
                black_box(pool.install(|| segment_chunked(&model, &doc, &cfg, doc.len() / 4)));
            })
        };
        let (c1, c2) = (chunked(&pools[0]), chunked(&pools[1]));
        let ts = best(3, || {
            black_box(stream(&model, &doc[..stream_len]));
        });

        // sgemm over the engine's mix of shapes: the flops of one block over its time
        let (mut flops, mut secs, mut conv) = (0u64, 0f64, 0f64);
        for (gemm_name, mut gemm, times) in gemms(model.config()) {
            let t = best(20, || gemm.run());
            flops += gemm.flops() * times as u64;
            secs += t * times as f64;
            if gemm_name == "sgemm_conv" {
                conv = gemm.flops() as f64 / t / 1e9;
            }
        }
        let sgemm = flops as f64 / secs / 1e9;
        let bps = len as f64 / t1;
        let achieved = model.flops_per_byte() as f64 * bps / 1e9;
        eprintln!(
            "engine {name:5} ({} params, {} flop/byte, simd {}): entropies 1 thread {:.1} KB/s = \
             {achieved:.2} GFLOP/s vs sgemm {sgemm:.2} GFLOP/s on the same shapes ({:.0}%; conv \
             shape alone {conv:.2}); segment_chunked {:.1} KB/s on 1 thread, {:.1} KB/s on 2 \
             ({:.2}x); streaming {:.1} us/byte",
            model.parameters(),
            model.flops_per_byte(),
            model.uses_simd(),
            bps / 1e3,
            100.0 * achieved / sgemm,
            len as f64 / c1 / 1e3,
            len as f64 / c2 / 1e3,
            c1 / c2,
            ts / stream_len as f64 * 1e6,
        );
    }
}

/// The text of the hashmlp summary: 1 MiB of real text, not repeating.
fn hashmlp_text() -> Vec<u8> {
    let books = format!(
        "{}/../shared/corpora/en_books.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    match std::fs::read(books) {
        Ok(mut t) => {
            t.truncate(1 << 20);
            t
        }
        Err(_) => text(1 << 20),
    }
}

/// One line per hashmlp preset: entropy head throughput (AVX2 and portable), segmentation on 1
/// and 2 threads, streaming time per byte.
fn hashmlp_summary(_: &mut Criterion) {
    let pools = [pool(1), pool(2)];
    let cfg = rule();
    let doc = hashmlp_text();
    let mb = |secs: f64| doc.len() as f64 / secs / 1e6;
    for name in HashMlpConfig::PRESETS {
        let model = HashMlpModel::random(HashMlpConfig::preset(name).expect("a preset"), 7);
        let portable = model.clone().portable();
        let mut out = vec![0f32; doc.len()];
        let t1 = best(5, || model.entropies(&doc, 0..doc.len(), &mut out));
        let tp = best(3, || portable.entropies(&doc, 0..doc.len(), &mut out));
        let chunked = |pool: &rayon::ThreadPool| {
            best(5, || {
                black_box(pool.install(|| segment_chunked(&model, &doc, &cfg, 1 << 16)));
            })
        };
        let (c1, c2) = (chunked(&pools[0]), chunked(&pools[1]));
        let n = doc.len().min(200_000);
        let ts = best(3, || {
            let mut s = model.stream();
            let mut sum = 0f32;
            for &b in &doc[..n] {
                sum += s.entropy();
                s.push(b);
            }
            black_box(sum);
        });
        eprintln!(
            "hashmlp {name:5} ({} params, simd {}): entropies {:.1} MB/s (portable {:.1}); \
             segment_chunked {:.1} MB/s on 1 thread, {:.1} MB/s on 2; streaming {:.3} us/byte",
            model.parameters(),
            model.uses_simd(),
            mb(t1),
            mb(tp),
            mb(c1),
            mb(c2),
            ts / n as f64 * 1e6,
        );
    }
}

criterion_group!(benches, engine, summary, hashmlp_summary);
criterion_main!(benches);
