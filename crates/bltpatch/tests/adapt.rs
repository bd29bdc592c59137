//! In-document adaptation as the embedded default uses it, on the committed real-text slices
//! (`datasets/heldout/`, several scripts, and random bytes): the fast path equals the plain
//! reference, every chunking and thread count gives the same bits, boundaries are those of the
//! model without adaptation, and random bytes cost no more than a uniform guess.

use std::path::{Path, PathBuf};

use bltpatch::adapt::{AdaptConfig, reference_surprisals};
use bltpatch::checkpoint::{Config, Weights};
use bltpatch::{EntropyModel, Model, surprisals_chunked_into};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn slice(name: &str) -> Vec<u8> {
    std::fs::read(root().join("datasets/heldout").join(name)).unwrap()
}

/// The embedded default model with another `adapt` record (or none).
fn default_with(adapt: Option<AdaptConfig>) -> Model {
    let mut config = Config::from_json(bltpatch::DEFAULT_CONFIG_JSON).unwrap();
    config.adapt = adapt;
    let weights = Weights::open(&root().join("checkpoints/default")).unwrap();
    Model::from_parts(config, &weights).unwrap()
}

fn bits_per_byte(model: &Model, doc: &[u8]) -> f64 {
    let mut s = vec![0f32; doc.len()];
    model.surprisals(doc, 0..doc.len(), &mut s);
    s.iter().map(|&v| v as f64).sum::<f64>() / doc.len() as f64 / 2f64.ln()
}

#[test]
fn the_default_model_adapts_with_the_default_parameters() {
    let model = Model::default_model();
    assert_eq!(model.config().adapt, Some(AdaptConfig::default()));
    assert_eq!(model.config().context, 8);
    assert_eq!(model.context(), AdaptConfig::default().context_with(8));
}

#[test]
fn fast_path_equals_reference_on_real_text() {
    let model = Model::default_model();
    let cfg = AdaptConfig::default();
    let inner = default_with(None);
    for name in ["ka_ui.txt", "python_src.py.txt", "zh_quotes.txt"] {
        let doc = slice(name);
        let range = 3000..4200;
        let want = reference_surprisals(&inner, &cfg, &doc, range.clone());
        let mut got = vec![0f32; range.len()];
        model.surprisals(&doc, range, &mut got);
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "{name}: position {}", 3000 + i);
        }
    }
}

#[test]
fn a_window_shorter_than_the_text_slides_exactly() {
    // The default's window is longer than the slices: a small one makes counts leave it.
    let cfg = AdaptConfig {
        window: 700,
        memory: 9,
        ..AdaptConfig::default()
    };
    let model = default_with(Some(cfg.clone()));
    let inner = default_with(None);
    let doc = slice("hy_ui.txt");
    let want = reference_surprisals(&inner, &cfg, &doc, 0..2500);
    let mut got = vec![0f32; 2500];
    model.surprisals(&doc, 0..2500, &mut got);
    assert_eq!(got, want);
}

#[test]
fn every_chunking_and_thread_count_gives_the_same_bits() {
    let model = Model::default_model();
    for name in ["ar_docs.txt", "si_ui.txt", "c_src.txt", "random.bin"] {
        let doc = slice(name);
        let mut whole = vec![0f32; doc.len()];
        model.surprisals(&doc, 0..doc.len(), &mut whole);
        for (chunk, threads) in [(1000, 1), (4096, 3), (1 << 16, 2)] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut got = Vec::new();
            pool.install(|| {
                surprisals_chunked_into(&model, &doc, chunk, |s| got.extend_from_slice(s))
            });
            assert!(
                got == whole,
                "{name}: chunks of {chunk} on {threads} threads"
            );
        }
    }
}

/// Every committed slice, one after the other (326 KB): longer than twice the default's window,
/// so that ranges and chunks warm up counts and matches from a window that slides.
fn long_text() -> Vec<u8> {
    let dir = root().join("datasets/heldout");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    names
        .iter()
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect()
}

#[test]
fn the_default_window_slides_exactly_on_long_text() {
    let model = Model::default_model();
    let doc = long_text();
    let w = AdaptConfig::default().window;
    assert!(doc.len() > 4 * w);
    let mut whole = vec![0f32; doc.len()];
    model.surprisals(&doc, 0..doc.len(), &mut whole);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for chunk in [20_000, 70_001] {
        let mut got = Vec::new();
        pool.install(|| surprisals_chunked_into(&model, &doc, chunk, |s| got.extend_from_slice(s)));
        assert!(got == whole, "chunks of {chunk}");
    }
    // The plain reference, well past two windows.
    let range = 3 * w..3 * w + 150;
    let want = reference_surprisals(
        &default_with(None),
        &AdaptConfig::default(),
        &doc,
        range.clone(),
    );
    assert_eq!(want, whole[range]);
}

#[test]
fn boundaries_are_those_of_the_model_without_adaptation() {
    let (with, without) = (Model::default_model(), default_with(None));
    for name in ["my_ui.txt", "en_gcide.txt", "random.bin"] {
        let doc = slice(name);
        let a = with.patcher().unwrap().segment(&doc);
        let b = without.patcher().unwrap().segment(&doc);
        assert_eq!(a, b, "{name}");
    }
}

#[test]
fn random_bytes_cost_a_uniform_guess_and_unseen_scripts_far_less() {
    let (with, without) = (Model::default_model(), default_with(None));
    let random = slice("random.bin");
    let (a, b) = (
        bits_per_byte(&with, &random),
        bits_per_byte(&without, &random),
    );
    assert!(a < 8.02, "random bytes: {a} bits/byte with adaptation");
    assert!(
        b > 8.2,
        "random bytes: {b} bits/byte without (the remedy's reason)"
    );
    // Georgian is absent from the training data: the counts learn it within the slice.
    let ka = slice("ka_ui.txt");
    let (a, b) = (bits_per_byte(&with, &ka), bits_per_byte(&without, &ka));
    assert!(a < 0.5 * b, "Georgian: {a} with adaptation, {b} without");
}
