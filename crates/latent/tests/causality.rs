//! Causality: changing byte `j` changes no prediction for bytes `<= j` (position `i` predicts
//! byte `i`), on random weights, for random fixed layouts and for all five schemes with the
//! layout recomputed from the changed text, so that nothing reaches a prediction through the
//! boundaries either. The next prediction does change, so the comparison is not vacuous. Two
//! layouts that read patches as soon as they end, the space scheme's and BPE's with the
//! boundaries settled in hindsight, are shown to leak.

mod common;

use bltpatch_latent::{EntropyModel, Layout, Patching, PoolingKind};
use burn::prelude::Device;
use common::{Lcg, layout_logits, layout_of, logits, max_diff, tiny};

/// Differences up to this are float noise (none is expected: masked keys get exactly zero
/// weight); a leak moves logits by orders of magnitude more.
const SAME: f32 = 1e-5;
/// The prediction right after a changed byte reads it, so it moves at least this much.
const MOVED: f32 = 1e-4;

const TEXT: &[u8] = b"It is a truth universally acknowledged, that a single man in possession \
of a good fortune, must be in want of a wife.  fn main() {\n    let x = 42_000;\n}\n\
\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xe4\xb8\x96\xe7\x95\x8c it's 1234567.";

fn random_lengths(rng: &mut Lcg, n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut left = n;
    while left > 0 {
        let l = (1 + rng.below(7) as usize).min(left);
        out.push(l);
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
        let lengths = [random_lengths(&mut rng, n0), random_lengths(&mut rng, n1)];
        let delays: Vec<usize> = (0..n0).map(|_| rng.below(4) as usize).collect();
        // Each patch known at its end (BLT), or some bytes later (space, BPE).
        for layout in [
            layout_of(&lengths, |_| 0),
            layout_of(&lengths, |p| delays[p]),
        ] {
            let l = layout.max_len;
            let base = logits(&model, &cfg, &[&doc0, &doc1], &layout, &device);
            for j in [0, 1, n0 / 2, n0 - 2, n0 - 1] {
                doc0[j] ^= 0x5a;
                let changed = logits(&model, &cfg, &[&doc0, &doc1], &layout, &device);
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

/// The byte put at `j`: a space after a letter or digit, else a letter, so space and BPE
/// boundaries at or after `j` move.
fn replacement(b: u8) -> u8 {
    if b.is_ascii_alphanumeric() {
        b' '
    } else {
        b'e'
    }
}

/// Per position, the 256 logits.
type Predictions = Vec<Vec<f32>>;

/// The predictions of `TEXT` and of `TEXT` with byte `j` replaced, for every `j`, with each
/// text's layout from `layout`.
fn changes(
    layout: &dyn Fn(&[u8]) -> Layout,
    pooling: PoolingKind,
    js: impl Iterator<Item = usize>,
) -> Vec<(usize, Predictions, Predictions)> {
    let device = Device::flex();
    let cfg = tiny(pooling);
    let model = cfg.init(3, &device);
    let base = layout_logits(&model, &cfg, &layout(TEXT), TEXT, &device);
    js.map(|j| {
        let mut doc = TEXT.to_vec();
        doc[j] = replacement(doc[j]);
        let changed = layout_logits(&model, &cfg, &layout(&doc), &doc, &device);
        (j, base.clone(), changed)
    })
    .collect()
}

#[test]
fn all_schemes_with_recomputed_layouts() {
    let entropy = EntropyModel::default_model();
    let schemes = [
        Patching::static_size(&entropy, 4.5).unwrap(),
        Patching::space(&entropy, None).unwrap(),
        Patching::space(&entropy, Some(6)).unwrap(),
        Patching::entropy_global(&entropy, 2.0).unwrap(),
        Patching::entropy_budget(&entropy, 5.4).unwrap(),
        Patching::bpe(&entropy),
    ];
    for pooling in [PoolingKind::Mean, PoolingKind::CrossAttention] {
        for patching in &schemes {
            let layout = |doc: &[u8]| patching.layout(&[doc]);
            for (j, base, changed) in changes(&layout, pooling, (0..TEXT.len()).step_by(3)) {
                for i in 0..=j {
                    let d = max_diff(&base[i], &changed[i]);
                    assert!(
                        d <= SAME,
                        "{} {} ({pooling:?}): byte {j} changed prediction {i} by {d}",
                        patching.scheme(),
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

/// Changed bytes that moved their own prediction or an earlier one.
fn leaks(layout: &dyn Fn(&[u8]) -> Layout) -> usize {
    changes(layout, PoolingKind::Mean, 1..TEXT.len())
        .into_iter()
        .filter(|(j, base, changed)| (0..=*j).any(|i| max_diff(&base[i], &changed[i]) > MOVED))
        .count()
}

#[test]
fn space_patches_read_at_their_end_leak() {
    // Whether byte j starts a space patch depends on x[j] itself: a decoder that read the
    // patch ending at j while predicting x[j] would learn whether x[j] is space-like. The
    // library's known-at (one byte after the end) prevents that (previous test); reading each
    // patch at its end, as BLT's rule does, leaks.
    let entropy = EntropyModel::default_model();
    let space = Patching::space(&entropy, None).unwrap();
    let at_end = |doc: &[u8]| layout_of(&[space.lengths(doc)], |_| 0);
    let leaked = leaks(&at_end);
    assert!(
        leaked >= 10,
        "only {leaked} changed bytes moved their own prediction"
    );
    eprintln!(
        "space patches read at their end: {leaked} of {} changed bytes moved their own prediction or an earlier one",
        TEXT.len() - 1
    );
}

/// For each BPE patch of `doc`, the smallest `t` after its end such that tokenising `doc[0..t')`
/// gives the same patches up to it for every `t'` in `t..=n`: settled given the rest of `doc`.
fn settled_in_hindsight(doc: &[u8]) -> (Vec<usize>, Vec<usize>) {
    let full = bltpatch::bpe::bpe_lengths(doc);
    let mut out = vec![bltpatch::NEVER; full.len()];
    let mut agree_all = full.len().saturating_sub(1); // the last patch is never settled
    for t in (1..=doc.len()).rev() {
        let prefix = bltpatch::bpe::bpe_lengths(&doc[..t]);
        let mut agree = prefix.iter().zip(&full).take_while(|(a, b)| a == b).count();
        if agree == prefix.len() {
            agree -= 1; // the prefix's last patch ends at `t`, not at a boundary
        }
        agree_all = agree_all.min(agree);
        for slot in out.iter_mut().take(agree_all) {
            *slot = t;
        }
    }
    (full, out)
}

#[test]
fn bpe_patches_settled_in_hindsight_leak() {
    // "Known once no longer prefix of this text moves it" depends on the bytes after the
    // boundary: whether they happen to leave it alone. A decoder reading patches that way
    // learns about bytes it has not seen; the library's known-at (settled for every
    // continuation) does not leak (all_schemes_with_recomputed_layouts).
    let hindsight = |doc: &[u8]| {
        let (lengths, known) = settled_in_hindsight(doc);
        Layout::new(&[lengths], &[known])
    };
    let leaked = leaks(&hindsight);
    assert!(leaked > 0, "no changed byte moved its own prediction");
    eprintln!(
        "BPE with boundaries settled in hindsight: {leaked} of {} changed bytes moved their own prediction or an earlier one",
        TEXT.len() - 1
    );
}
