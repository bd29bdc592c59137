//! Causality: changing byte `j` changes no prediction for bytes `<= j` (position `i` predicts
//! byte `i`), on random weights, for random fixed patchings and for the library's schemes with
//! the layout recomputed from the changed text. The next prediction does change, so the
//! comparison is not vacuous, and the space scheme without its lookahead correction is shown
//! to leak.

mod common;

use bltpatch_latent::{EntropyModel, Patching, PoolingKind};
use burn::prelude::Device;
use common::{Lcg, doc_logits, layout_of, logits, max_diff, tiny};

/// Differences up to this are float noise (none is expected: masked keys get exactly zero
/// weight); a leak moves logits by orders of magnitude more.
const SAME: f32 = 1e-5;
/// The prediction right after a changed byte reads it, so it moves at least this much.
const MOVED: f32 = 1e-4;

const TEXT: &[u8] = b"It is a truth universally acknowledged, that a single man in possession \
of a good fortune, must be in want of a wife. fn main() { let x = 42; }";

fn random_lengths(rng: &mut Lcg, n: usize) -> Vec<u32> {
    let mut out = Vec::new();
    let mut left = n;
    while left > 0 {
        let l = (1 + rng.below(7) as usize).min(left);
        out.push(l as u32);
        left -= l;
    }
    out
}

fn fixed_layouts(pooling: PoolingKind) {
    let device = Device::flex();
    let cfg = tiny(pooling);
    let model = cfg.init(7, &device);
    let mut rng = Lcg(11);
    for trial in 0..4 {
        let (n0, n1) = (30 + 9 * trial, 23);
        let mut doc0: Vec<u8> = (0..n0).map(|_| rng.below(256) as u8).collect();
        let doc1: Vec<u8> = (0..n1).map(|_| rng.below(256) as u8).collect();
        let layout = layout_of(&[random_lengths(&mut rng, n0), random_lengths(&mut rng, n1)]);
        let l = layout.max_len;
        for lookahead in [0, 1] {
            let base = logits(&model, &cfg, &[&doc0, &doc1], &layout, lookahead, &device);
            for j in [0, 1, n0 / 2, n0 - 2, n0 - 1] {
                doc0[j] ^= 0x5a;
                let changed = logits(&model, &cfg, &[&doc0, &doc1], &layout, lookahead, &device);
                doc0[j] ^= 0x5a;
                let row = |v: &[f32], b: usize, i: usize| {
                    v[(b * l + i) * 256..(b * l + i + 1) * 256].to_vec()
                };
                for i in 0..=j {
                    let d = max_diff(&row(&base, 0, i), &row(&changed, 0, i));
                    assert!(
                        d <= SAME,
                        "{pooling:?} trial {trial}: byte {j} changed prediction {i} by {d}"
                    );
                }
                if j + 1 < n0 {
                    let d = max_diff(&row(&base, 0, j + 1), &row(&changed, 0, j + 1));
                    assert!(d > MOVED, "prediction {} ignores byte {j} ({d})", j + 1);
                }
                for i in 0..n1 {
                    let d = max_diff(&row(&base, 1, i), &row(&changed, 1, i));
                    assert!(d <= SAME, "another document's prediction {i} moved by {d}");
                }
            }
        }
    }
}

#[test]
fn fixed_layouts_mean_pooling() {
    fixed_layouts(PoolingKind::Mean);
}

#[test]
fn fixed_layouts_cross_attention_pooling() {
    fixed_layouts(PoolingKind::CrossAttention);
}

/// The byte put at `j`: a space after a letter or digit, else a letter, so the space
/// scheme's boundary at `j` (or `j + 1`) flips.
fn replacement(b: u8) -> u8 {
    if b.is_ascii_alphanumeric() {
        b' '
    } else {
        b'e'
    }
}

#[test]
fn library_schemes_with_recomputed_layouts() {
    let device = Device::flex();
    let entropy = EntropyModel::default_model();
    let schemes = [
        Patching::static_size(&entropy, 4.5).unwrap(),
        Patching::space(&entropy, None).unwrap(),
        Patching::space(&entropy, Some(6)).unwrap(),
        Patching::entropy_global(&entropy, 2.0).unwrap(),
    ];
    for pooling in [PoolingKind::Mean, PoolingKind::CrossAttention] {
        let cfg = tiny(pooling);
        let model = cfg.init(3, &device);
        for patching in &schemes {
            let base = doc_logits(&model, &cfg, patching, TEXT, &device);
            for j in (0..TEXT.len()).step_by(5) {
                let mut doc = TEXT.to_vec();
                doc[j] = replacement(doc[j]);
                let changed = doc_logits(&model, &cfg, patching, &doc, &device);
                for i in 0..=j {
                    let d = max_diff(&base[i], &changed[i]);
                    assert!(
                        d <= SAME,
                        "{} ({pooling:?}): byte {j} changed prediction {i} by {d}",
                        patching.describe()
                    );
                }
                if j + 1 < TEXT.len() {
                    assert!(max_diff(&base[j + 1], &changed[j + 1]) > MOVED);
                }
            }
        }
    }
}

#[test]
fn space_scheme_leaks_without_its_lookahead() {
    // Whether byte j starts a space patch depends on x[j] itself: a decoder that read the
    // boundary at j while predicting x[j] would learn something about x[j]. The layout's
    // lookahead of 1 prevents that (previous test); with lookahead 0 the leak shows.
    let device = Device::flex();
    let entropy = EntropyModel::default_model();
    let space = Patching::space(&entropy, None).unwrap();
    assert_eq!(space.lookahead(), 1);
    let cfg = tiny(PoolingKind::Mean);
    let model = cfg.init(3, &device);
    let leaks = |doc: &[u8]| -> Vec<Vec<f32>> {
        let flat = logits(&model, &cfg, &[doc], &space.layout(&[doc]), 0, &device);
        flat.chunks(256).map(<[f32]>::to_vec).collect()
    };
    let base = leaks(TEXT);
    let mut leaked = 0;
    for j in 1..TEXT.len() {
        let mut doc = TEXT.to_vec();
        doc[j] = replacement(doc[j]);
        let changed = leaks(&doc);
        if (0..=j).any(|i| max_diff(&base[i], &changed[i]) > MOVED) {
            leaked += 1;
        }
    }
    assert!(
        leaked >= 10,
        "only {leaked} changed bytes moved their own prediction"
    );
}
