//! Throughput benchmarks (bytes/s): the rules alone on precomputed entropies (global, relative,
//! combined, budget, and the plain reference loop), the static and space baselines,
//! and segmentation with the embedded model (batch on 1 and 2 threads, streaming).
//!
//! Run: `cargo bench --bench segment`. Input: the committed `datasets/` text, repeated to 4 MiB.

use std::hint::black_box;

use bltpatch::{
    EntropyModel, Model, PatchConfig, Rule, lengths_from_entropies, segment_chunked,
    segment_streaming, space_lengths, static_lengths,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn text(len: usize) -> Vec<u8> {
    let mut base = Vec::new();
    for f in ["tiny.txt", "en_books_slice.txt", "code_rust_slice.txt"] {
        let p = format!("{}/datasets/{f}", env!("CARGO_MANIFEST_DIR"));
        base.extend(std::fs::read(p).expect("datasets/ text"));
    }
    base.iter().copied().cycle().take(len).collect()
}

fn rules(c: &mut Criterion) {
    let model = Model::default_model();
    let doc = text(4 << 20);
    let mut h = vec![0f32; doc.len()];
    model.entropies(&doc, 0..doc.len(), &mut h);
    let t = model.patch_config().unwrap().rule();
    let threshold = match t {
        Rule::Global { threshold } => threshold,
        _ => 2.0,
    };
    let mut g = c.benchmark_group("rules");
    g.throughput(Throughput::Bytes(doc.len() as u64));
    g.sample_size(20);
    let configs = [
        (
            "global",
            PatchConfig::new(Rule::Global { threshold }).unwrap(),
        ),
        (
            "relative",
            PatchConfig::new(Rule::Relative {
                relative_threshold: 0.5,
            })
            .unwrap(),
        ),
        (
            "combined",
            PatchConfig::new(Rule::Combined {
                threshold,
                relative_threshold: 0.2,
            })
            .unwrap(),
        ),
        (
            "global_max16",
            PatchConfig::new(Rule::Global { threshold })
                .unwrap()
                .with_max_patch_len(Some(16))
                .unwrap(),
        ),
    ];
    for (name, cfg) in configs {
        g.bench_function(name, |b| {
            b.iter(|| lengths_from_entropies(black_box(&h), &cfg))
        });
    }
    g.bench_function("reference_global", |b| {
        b.iter(|| bltpatch_core::reference::entropy_lengths(black_box(&h), &configs[0].1))
    });
    let budget = bltpatch::calibrate(&[&h], bltpatch::CalibrationTarget::Budget, 4.5, None)
        .unwrap()
        .config;
    g.bench_function("budget", |b| {
        b.iter(|| lengths_from_entropies(black_box(&h), &budget))
    });
    g.bench_function("static_4.5", |b| {
        b.iter(|| static_lengths(black_box(doc.len()), 4.5))
    });
    g.bench_function("space", |b| b.iter(|| space_lengths(black_box(&doc), None)));
    g.finish();
}

fn model_segmentation(c: &mut Criterion) {
    let model = Model::default_model();
    let cfg = model.patch_config().unwrap();
    let doc = text(1 << 20);
    let mut g = c.benchmark_group("default_model");
    g.throughput(Throughput::Bytes(doc.len() as u64));
    g.sample_size(10);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        g.bench_function(format!("segment_{threads}_threads"), |b| {
            b.iter(|| pool.install(|| segment_chunked(&model, black_box(&doc), &cfg, 1 << 16)))
        });
    }
    let short = &doc[..256 << 10];
    g.throughput(Throughput::Bytes(short.len() as u64));
    g.bench_function("streaming_decoder", |b| {
        b.iter(|| segment_streaming(&model, black_box(short), &cfg))
    });
    g.finish();
}

criterion_group!(benches, rules, model_segmentation);
criterion_main!(benches);
