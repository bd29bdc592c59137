//! The golden determinism test of the `"hashmlp"` model: a small committed checkpoint (tables
//! stored as `F16`), the committed text of `tests/golden`, and the committed `H` (entropy head)
//! and surprisal (next-byte head) of every byte as `f32` bit patterns. Every build on every CPU
//! (generic x86-64, `-C target-cpu=native`, other architectures) must reproduce them exactly, in
//! batch, over sub-ranges and byte by byte.
//!
//! The fixture was produced by this file's `regenerate` test with the portable arithmetic
//! (`BLTPATCH_REGENERATE_GOLDEN=1 cargo test -p bltpatch-engine --test golden_hashmlp --
//! --ignored`).

use std::path::PathBuf;

use bltpatch_core::EntropyModel;
use bltpatch_engine::hashmlp::{HashMlpConfig, HashMlpModel};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

fn read_bits(name: &str) -> Vec<u32> {
    let raw = std::fs::read(fixture().join(name)).unwrap();
    raw.chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn entropies(m: &HashMlpModel, text: &[u8], a: usize, b: usize) -> Vec<f32> {
    let mut h = vec![0f32; b - a];
    m.entropies(text, a..b, &mut h);
    h
}

fn surprisals(m: &HashMlpModel, text: &[u8]) -> Vec<f32> {
    let mut s = vec![0f32; text.len()];
    m.surprisals(text, 0..text.len(), &mut s);
    s
}

#[test]
fn committed_entropies_and_surprisals_are_reproduced_bit_for_bit() {
    let model = HashMlpModel::load(&fixture().join("hashmlp-small")).unwrap();
    let text = std::fs::read(fixture().join("text.txt")).unwrap();
    let want = read_bits("expected_entropies_hashmlp.f32le");
    let want_s = read_bits("expected_surprisals_hashmlp.f32le");
    assert_eq!(want.len(), text.len());
    let n = text.len();
    assert_eq!(
        bits(&entropies(&model, &text, 0, n)),
        want,
        "batch (simd: {})",
        model.uses_simd()
    );
    for (a, b) in [(0, 1), (1, 700), (5, 9), (333, 4000), (4000, n)] {
        assert_eq!(
            bits(&entropies(&model, &text, a, b)),
            want[a..b],
            "range {a}..{b}"
        );
    }
    let mut s = model.stream();
    for (i, &b) in text.iter().enumerate() {
        assert_eq!(s.entropy().to_bits(), want[i], "streaming at byte {i}");
        s.push(b);
    }
    assert_eq!(bits(&surprisals(&model, &text)), want_s);
    let portable = HashMlpModel::load(&fixture().join("hashmlp-small"))
        .unwrap()
        .portable();
    assert_eq!(bits(&entropies(&portable, &text, 0, n)), want);
    assert_eq!(bits(&surprisals(&portable, &text[..1500])), want_s[..1500]);
}

/// Writes the fixture (only with `BLTPATCH_REGENERATE_GOLDEN=1`).
#[test]
#[ignore]
fn regenerate() {
    if std::env::var("BLTPATCH_REGENERATE_GOLDEN").as_deref() != Ok("1") {
        return;
    }
    let cfg = HashMlpConfig {
        orders: vec![1, 2, 3, 4, 6, 8],
        masks: Vec::new(),
        rows: vec![257, 64, 256, 512, 512, 256],
        d_model: 12,
        d_hidden: 20,
        entropy_hidden: 16,
        norm_eps: 1e-5,
        escape: false,
    };
    let model = HashMlpModel::random(cfg, 20261201).portable();
    let dir = fixture().join("hashmlp-small");
    bltpatch_checkpoint::write_checkpoint(
        &dir,
        &model.checkpoint_config(),
        &model.to_checkpoint_tensors(),
    )
    .unwrap();
    let text = std::fs::read(fixture().join("text.txt")).unwrap();
    let raw = |v: Vec<f32>| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let n = text.len();
    std::fs::write(
        fixture().join("expected_entropies_hashmlp.f32le"),
        raw(entropies(&model, &text, 0, n)),
    )
    .unwrap();
    std::fs::write(
        fixture().join("expected_surprisals_hashmlp.f32le"),
        raw(surprisals(&model, &text)),
    )
    .unwrap();
}
