//! The golden determinism test: a small committed checkpoint, a committed text, and the
//! committed `H` of every byte as `f32` bit patterns. Every build on every CPU (generic x86-64,
//! `-C target-cpu=native`, other architectures) must reproduce them exactly, in batch, over
//! sub-ranges and byte by byte. CI also runs this test with `RUSTFLAGS="-C target-cpu=native"`.
//!
//! The fixture was produced by this file's `regenerate` test with the portable arithmetic
//! (`BLTPATCH_REGENERATE_GOLDEN=1 cargo test -p bltpatch-engine --test golden -- --ignored`).

use std::path::PathBuf;

use bltpatch_core::EntropyModel;
use bltpatch_engine::{ConvConfig, ConvModel};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

fn expected() -> Vec<u32> {
    let raw = std::fs::read(fixture().join("expected_entropies.f32le")).unwrap();
    raw.chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn bits(model: &ConvModel, text: &[u8]) -> Vec<u32> {
    let mut h = vec![0f32; text.len()];
    model.entropies(text, 0..text.len(), &mut h);
    h.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn committed_entropies_are_reproduced_bit_for_bit() {
    let model = ConvModel::load(&fixture().join("conv-small")).unwrap();
    let text = std::fs::read(fixture().join("text.txt")).unwrap();
    let want = expected();
    assert_eq!(want.len(), text.len());
    let mismatches = |got: &[u32]| got.iter().zip(&want).filter(|(a, b)| a != b).count();
    assert_eq!(
        mismatches(&bits(&model, &text)),
        0,
        "batch (simd: {})",
        model.uses_simd()
    );
    // Sub-ranges.
    for (a, b) in [(0, 1), (1, 700), (333, 4000), (4000, text.len())] {
        let mut h = vec![0f32; b - a];
        model.entropies(&text, a..b, &mut h);
        let got: Vec<u32> = h.iter().map(|x| x.to_bits()).collect();
        assert_eq!(got, want[a..b], "range {a}..{b}");
    }
    // Byte by byte.
    let mut s = model.stream();
    for (i, &b) in text.iter().enumerate() {
        assert_eq!(s.entropy().to_bits(), want[i], "streaming at byte {i}");
        s.push(b);
    }
    // The portable arithmetic.
    let portable = ConvModel::load(&fixture().join("conv-small"))
        .unwrap()
        .portable();
    assert_eq!(mismatches(&bits(&portable, &text[..1500])[..]), 0);
}

/// Writes the fixture (only with `BLTPATCH_REGENERATE_GOLDEN=1`).
#[test]
#[ignore]
fn regenerate() {
    if std::env::var("BLTPATCH_REGENERATE_GOLDEN").as_deref() != Ok("1") {
        return;
    }
    let cfg = ConvConfig {
        d_model: 16,
        d_hidden: 24,
        kernel_size: 2,
        dilations: vec![1, 2, 4, 8, 1],
        hash_orders: vec![2, 3],
        hash_buckets: 256,
        norm_eps: 1e-5,
    };
    let model = ConvModel::random(cfg, 20261124).portable();
    let dir = fixture().join("conv-small");
    bltpatch_checkpoint::write_checkpoint(
        &dir,
        &model.checkpoint_config(),
        &model.to_checkpoint_tensors(),
    )
    .unwrap();
    let text = std::fs::read(fixture().join("text.txt")).unwrap();
    let raw: Vec<u8> = bits(&model, &text)
        .iter()
        .flat_map(|b| b.to_le_bytes())
        .collect();
    std::fs::write(fixture().join("expected_entropies.f32le"), raw).unwrap();
}
