//! bltpatch next to peer tokenizers, in the same run and on the same files: encode throughput
//! (bytes/s) and compression (input bytes per token, or per patch for bltpatch).
//!
//! Run: `cargo bench --bench peers` (a few minutes). Filter as usual with criterion, e.g.
//! `cargo bench --bench peers -- tiktoken`.
//!
//! Tokenizers:
//! - bltpatch: [`segment_chunked`] with the model's calibrated [`PatchConfig`], on a rayon pool of
//!   1 thread and of all available threads;
//! - bltpatch with a second model, the `conv` model of `checkpoints/conv` (the neural model
//!   that was the embedded default before the `hashmlp` one), the same way
//!   (`bltpatch_second_segment_*`);
//! - `tiktoken-rs` `cl100k_base` and `o200k_base`: `CoreBPE::encode_ordinary` (one thread);
//! - `bpe-openai` `cl100k_base` and `o200k_base`: `Tokenizer::encode` (one thread).
//!
//! The peers are dev-dependencies of the workspace root only; no shipped crate depends on them.
//!
//! Inputs: `../shared/corpora/{en_books,code_rust,zh_docs,structured}.txt` (relative to the
//! workspace root) when that folder exists, else the committed `datasets/*.txt`; each is cut to
//! its first 1 MiB at a UTF-8 character boundary. Before the timings of each input, one line per
//! tokenizer gives its bytes/token (bytes/patch).
//!
//! Environment: `BLTPATCH_BENCH_MODEL=DIR` makes bltpatch load the checkpoint directory `DIR`
//! (`config.json` + `model.safetensors`, with a calibration) instead of the embedded default
//! model; `BLTPATCH_BENCH_SECOND_MODEL=DIR` replaces `checkpoints/conv`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bltpatch::{DEFAULT_CHUNK_LEN, Model, PatchConfig, segment_chunked};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Each input is cut to this many bytes (at a character boundary).
const MAX_INPUT: usize = 1 << 20;

/// The shared corpora used when present, in this order.
const CORPORA: [&str; 4] = ["en_books", "code_rust", "zh_docs", "structured"];

struct Input {
    name: String,
    text: String,
}

/// `text` cut to at most `max` bytes, at a UTF-8 character boundary.
fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn read_input(path: &Path) -> Input {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (inputs must be UTF-8 text)", path.display()));
    let name = path
        .file_stem()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    Input {
        name,
        text: cut(text, MAX_INPUT),
    }
}

fn inputs() -> Vec<Input> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpora = root.join("../shared/corpora");
    let paths: Vec<PathBuf> = if corpora.is_dir() {
        CORPORA
            .iter()
            .map(|n| corpora.join(format!("{n}.txt")))
            .collect()
    } else {
        let mut p: Vec<PathBuf> = std::fs::read_dir(root.join("datasets"))
            .expect("datasets/")
            .map(|e| e.expect("datasets/ entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        p.sort();
        p
    };
    assert!(!paths.is_empty(), "no input files");
    paths.iter().map(|p| read_input(p)).collect()
}

/// The model and a label for it: `BLTPATCH_BENCH_MODEL=DIR` or the embedded default.
fn model() -> (Model, String) {
    match std::env::var_os("BLTPATCH_BENCH_MODEL") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let model = Model::load(&dir).unwrap_or_else(|e| {
                panic!("BLTPATCH_BENCH_MODEL={}: {e}", dir.display());
            });
            (model, dir.display().to_string())
        }
        None => (Model::default_model(), "embedded default".to_string()),
    }
}

/// The second model and its label: `BLTPATCH_BENCH_SECOND_MODEL=DIR` or `checkpoints/conv`.
fn second_model() -> (Model, String) {
    let dir = std::env::var_os("BLTPATCH_BENCH_SECOND_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints/conv"));
    let model = Model::load(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let label = format!("{}, {}", dir.display(), model.config().arch);
    (model, label)
}

fn per_token(bytes: usize, tokens: usize) -> f64 {
    bytes as f64 / tokens.max(1) as f64
}

fn peers(c: &mut Criterion) {
    let (model, label) = model();
    let cfg: PatchConfig = model
        .patch_config()
        .expect("the model's checkpoint carries no calibrated patch config");
    let (second, second_label) = second_model();
    let second_cfg: PatchConfig = second
        .patch_config()
        .expect("the second model's checkpoint carries no calibrated patch config");
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut thread_counts = vec![1];
    if all > 1 {
        thread_counts.push(all);
    }
    let pools: Vec<(usize, rayon::ThreadPool)> = thread_counts
        .iter()
        .map(|&t| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .expect("rayon pool");
            (t, pool)
        })
        .collect();

    let tik_cl100k = tiktoken_rs::cl100k_base_singleton();
    let tik_o200k = tiktoken_rs::o200k_base_singleton();
    let bpe_cl100k = bpe_openai::cl100k_base();
    let bpe_o200k = bpe_openai::o200k_base();

    for input in inputs() {
        let text = input.text.as_str();
        let bytes = text.as_bytes();
        let n = bytes.len();

        // Token counts, once per input, before the timings.
        let patches = segment_chunked(&model, bytes, &cfg, DEFAULT_CHUNK_LEN);
        assert_eq!(patches.iter().sum::<usize>(), n);
        let second_patches = segment_chunked(&second, bytes, &second_cfg, DEFAULT_CHUNK_LEN);
        assert_eq!(second_patches.iter().sum::<usize>(), n);
        let counts = [
            (format!("bltpatch ({label})"), "patch", patches.len()),
            (
                format!("bltpatch ({second_label})"),
                "patch",
                second_patches.len(),
            ),
            (
                "tiktoken-rs cl100k_base".to_string(),
                "token",
                tik_cl100k.encode_ordinary(text).len(),
            ),
            (
                "tiktoken-rs o200k_base".to_string(),
                "token",
                tik_o200k.encode_ordinary(text).len(),
            ),
            (
                "bpe-openai cl100k_base".to_string(),
                "token",
                bpe_cl100k.encode(text).len(),
            ),
            (
                "bpe-openai o200k_base".to_string(),
                "token",
                bpe_o200k.encode(text).len(),
            ),
        ];
        println!("\n{}: {n} bytes", input.name);
        for (who, unit, count) in &counts {
            println!(
                "  {:<48} bytes/{unit} = {:>6.3}  ({count} {unit}{})",
                who,
                per_token(n, *count),
                if *unit == "patch" { "es" } else { "s" },
            );
        }
        println!();

        let mut g = c.benchmark_group(format!("peers/{}", input.name));
        g.throughput(Throughput::Bytes(n as u64));
        g.sample_size(10);
        g.warm_up_time(Duration::from_secs(1));
        g.measurement_time(Duration::from_secs(3));
        for (threads, pool) in &pools {
            g.bench_function(format!("bltpatch_segment_{threads}t"), |b| {
                b.iter(|| {
                    pool.install(|| {
                        segment_chunked(&model, black_box(bytes), &cfg, DEFAULT_CHUNK_LEN)
                    })
                })
            });
        }
        for (threads, pool) in &pools {
            g.bench_function(format!("bltpatch_second_segment_{threads}t"), |b| {
                b.iter(|| {
                    pool.install(|| {
                        segment_chunked(&second, black_box(bytes), &second_cfg, DEFAULT_CHUNK_LEN)
                    })
                })
            });
        }
        g.bench_function("tiktoken_cl100k", |b| {
            b.iter(|| tik_cl100k.encode_ordinary(black_box(text)))
        });
        g.bench_function("tiktoken_o200k", |b| {
            b.iter(|| tik_o200k.encode_ordinary(black_box(text)))
        });
        g.bench_function("bpe_openai_cl100k", |b| {
            b.iter(|| bpe_cl100k.encode(black_box(text)))
        });
        g.bench_function("bpe_openai_o200k", |b| {
            b.iter(|| bpe_o200k.encode(black_box(text)))
        });
        g.finish();
    }
}

criterion_group!(benches, peers);
criterion_main!(benches);
