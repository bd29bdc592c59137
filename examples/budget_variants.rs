//! Which form of the budget rule gives the most even patches? A measurement, not a feature.
//!
//! For each file: the patching model's entropies `H` and a reference model's surprisals (the
//! information of each byte); every variant is calibrated to the same mean patch length (the
//! file's cl100k BPE mean, or `--mean`), and the information per patch is summarised (CV,
//! share under 2 bits), next to the global threshold and fixed-size patches.
//!
//! Variants (byte `i > s` starts a patch, `s` the start of the current patch):
//! - `budget` (the shipped rule): `H[s] + ... + H[i-1] >= B`;
//! - `overflow`: `H[s] + ... + H[i] > B` (the byte that would overflow starts the next patch);
//! - `spike(q)`: `budget` or `H[i] > T`, with `T` the `q` quantile of `H` on the file;
//! - `nearest`: `H[s] + ... + H[i-1] + H[i] / 2 > B` (cut where the sum is nearest the budget).
//!
//! ```sh
//! cargo run --release --example budget_variants -- \
//!     --reference /tmp/ref-ngram4 /tmp/tails/*.tail.txt
//! ```

use std::path::PathBuf;

use bltpatch::quality::PatchStats;
use bltpatch::{DEFAULT_CHUNK_LEN, Model, entropies_chunked_into, surprisals_chunked_into};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut reference = None;
    let mut model = None;
    let mut mean = None;
    let mut files = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reference" => reference = args.next().map(PathBuf::from),
            "-m" | "--model" => model = args.next().map(PathBuf::from),
            "--mean" => mean = args.next().map(|m| m.parse::<f64>().expect("--mean F")),
            _ => files.push(PathBuf::from(a)),
        }
    }
    let model = model.map_or_else(Model::default_model, |d| Model::load(d).expect("model"));
    let reference = Model::load(reference.expect("--reference DIR is required")).expect("ref");
    println!(
        "| file | mean | global | budget | overflow | spike(0.9) | spike(0.97) | nearest | static |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for f in files {
        let doc = std::fs::read(&f).expect("input");
        let mut h = Vec::with_capacity(doc.len());
        entropies_chunked_into(&model, &doc, DEFAULT_CHUNK_LEN, |p| h.extend_from_slice(p));
        let mut info = Vec::with_capacity(doc.len());
        surprisals_chunked_into(&reference, &doc, DEFAULT_CHUNK_LEN, |p| {
            info.extend_from_slice(p)
        });
        let target = mean
            .unwrap_or_else(|| doc.len() as f64 / bltpatch::bpe::bpe_lengths(&doc).len() as f64);
        let wanted = (doc.len() as f64 / target).round() as usize;
        let mut sorted = h.clone();
        sorted.sort_by(f32::total_cmp);
        let quantile = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize];
        let cell = |lengths: Vec<usize>| {
            let mut s = PatchStats::default();
            s.add(&lengths, &info);
            let m = s.summary();
            format!(
                "{:.3} / {:.1}%",
                m.patch_information_cv,
                100.0 * m.share_under_2_bits
            )
        };
        let global = calibrated(wanted, |t| threshold(&h, t));
        let budget = calibrated(wanted, |b| scan(&h, |sum, _| sum >= b));
        let overflow = calibrated(wanted, |b| scan(&h, |sum, x| sum + x > b));
        let spike = |q: f64| {
            let t = quantile(q) as f64;
            calibrated(wanted, |b| scan(&h, |sum, x| sum >= b || x > t))
        };
        let nearest = calibrated(wanted, |b| scan(&h, |sum, x| sum + x / 2.0 > b));
        let fixed = bltpatch::static_lengths(doc.len(), doc.len() as f64 / wanted as f64)
            .expect("size >= 1");
        println!(
            "| {} | {:.2} | {} | {} | {} | {} | {} | {} | {} |",
            f.file_name().unwrap().to_string_lossy(),
            target,
            cell(global),
            cell(budget),
            cell(overflow),
            cell(spike(0.9)),
            cell(spike(0.97)),
            cell(nearest),
            cell(fixed),
        );
    }
}

/// Lengths of a sequential rule: byte `i > s` starts a patch when `starts(H[s..i] summed, H[i])`.
fn scan(h: &[f32], starts: impl Fn(f64, f64) -> bool) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut sum, mut open) = (0f64, 0usize);
    for &x in h {
        if open > 0 && starts(sum, x as f64) {
            out.push(open);
            open = 0;
            sum = 0.0;
        }
        open += 1;
        sum += x as f64;
    }
    if open > 0 {
        out.push(open);
    }
    out
}

/// The global threshold rule.
fn threshold(h: &[f32], t: f64) -> Vec<usize> {
    scan(h, |_, x| x > t)
}

/// The segmentation whose patch count is nearest `wanted`, by bisection on the parameter (the
/// count falls as it rises).
fn calibrated(wanted: usize, segment: impl Fn(f64) -> Vec<usize>) -> Vec<usize> {
    let (mut lo, mut hi) = (0f64, 1000f64);
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if segment(mid).len() > wanted {
            lo = mid
        } else {
            hi = mid
        }
    }
    let (a, b) = (segment(lo), segment(hi));
    if a.len().abs_diff(wanted) < b.len().abs_diff(wanted) {
        a
    } else {
        b
    }
}
