//! Cost of in-document adaptation (`bltpatch::adapt`): the embedded default model's surprisals
//! (bits/byte) on 1 MiB of real text (the first MiB of `../shared/corpora/en_books.txt` when
//! present, else `datasets/tiny.txt` repeated), on one thread, with its `adapt` record and
//! without it (the model alone), and the counts of the adaptation alone (a model whose
//! surprisals cost nothing). Patch boundaries do not use the adaptation: segmentation speed is
//! unchanged.
//!
//! Run: `cargo bench --bench adapt` (under a minute).

use std::hint::black_box;
use std::ops::Range;

mod common;

use bltpatch::adapt::{AdaptConfig, Adaptive};
use bltpatch::checkpoint::{Config, Weights};
use bltpatch::{EntropyModel, EntropyStream, Model};
use common::best;

fn text() -> Vec<u8> {
    let root = env!("CARGO_MANIFEST_DIR");
    match std::fs::read(format!("{root}/../shared/corpora/en_books.txt")) {
        Ok(mut t) => {
            t.truncate(1 << 20);
            t
        }
        Err(_) => {
            let base = std::fs::read(format!("{root}/datasets/tiny.txt")).expect("tiny.txt");
            base.iter().copied().cycle().take(1 << 20).collect()
        }
    }
}

/// A model whose surprisals are free (a constant), to time the adaptation alone.
struct Free;

impl EntropyModel for Free {
    fn context(&self) -> usize {
        0
    }
    fn entropies(&self, _: &[u8], _: Range<usize>, out: &mut [f32]) {
        out.fill(1.0);
    }
    fn surprisals(&self, _: &[u8], _: Range<usize>, out: &mut [f32]) {
        out.fill(1.0);
    }
    fn stream(&self) -> Box<dyn EntropyStream + '_> {
        unimplemented!("not timed")
    }
}

fn main() {
    let doc = text();
    let with = Model::default_model();
    let mut config = Config::from_json(bltpatch::DEFAULT_CONFIG_JSON).expect("config");
    config.adapt = None;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("checkpoints/default");
    let without = Model::from_parts(config, &Weights::open(&dir).expect("weights")).expect("model");
    let counts = Adaptive::new(Free, AdaptConfig::default()).expect("valid");
    let mut out = vec![0f32; doc.len()];
    let mut time = |m: &dyn EntropyModel| {
        best(3, || {
            m.surprisals(&doc, 0..doc.len(), &mut out);
            black_box(&out);
        })
    };
    let (a, b, c) = (time(&with), time(&without), time(&counts));
    let mb = |s: f64| doc.len() as f64 / s / 1e6;
    println!(
        "surprisals of {} bytes on 1 thread: default with adaptation {:.2} MB/s, without {:.2} MB/s; adaptation alone {:.2} MB/s",
        doc.len(),
        mb(a),
        mb(b),
        mb(c)
    );
}
