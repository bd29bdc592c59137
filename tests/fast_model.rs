//! The committed `hashmlp` model of `checkpoints/fast`: its entropies and patch lengths on the
//! golden text are pinned bit for bit (SPEC §3.4: a later release never moves a boundary of a
//! checkpoint), and every segmentation path agrees on real text.
//!
//! Regenerate the fixtures after retraining the checkpoint (a new checkpoint is a new set of
//! boundaries): `BLTPATCH_REGENERATE_GOLDEN=1 cargo test --test fast_model -- --ignored`.

use std::path::PathBuf;

use bltpatch::{
    EntropyModel, Model, PatchConfig, Rule, segment, segment_chunked, segment_streaming,
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model() -> Model {
    Model::load(&root().join("checkpoints/fast")).unwrap()
}

fn golden_text() -> Vec<u8> {
    std::fs::read(root().join("tests/golden/text.txt")).unwrap()
}

fn entropy_bits(model: &Model, text: &[u8]) -> Vec<u32> {
    let mut h = vec![0f32; text.len()];
    model.entropies(text, 0..text.len(), &mut h);
    h.iter().map(|x| x.to_bits()).collect()
}

fn lengths_text(lengths: &[usize]) -> String {
    lengths.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn committed_entropies_and_patches_of_the_fast_checkpoint() {
    let model = model();
    assert_eq!(model.config().arch, "hashmlp");
    let text = golden_text();
    let raw = std::fs::read(root().join("tests/golden/expected_entropies_fast.f32le")).unwrap();
    let want: Vec<u32> = raw
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(entropy_bits(&model, &text), want);
    let cfg = model.patch_config().expect("a calibrated threshold");
    let lengths = segment(&model, &text, &cfg);
    let want =
        std::fs::read_to_string(root().join("tests/golden/expected_lengths_fast.txt")).unwrap();
    assert_eq!(lengths_text(&lengths), want);
    let batch = entropy_bits(&model, &text);
    let mut s = model.stream();
    for (i, &b) in text.iter().enumerate() {
        assert_eq!(s.entropy().to_bits(), batch[i], "byte {i}");
        s.push(b);
    }
}

#[test]
fn batch_streaming_and_chunked_segmentation_agree() {
    let model = model();
    let text = std::fs::read(root().join("datasets/tiny.txt")).unwrap();
    for cfg in [
        model.patch_config().unwrap(),
        PatchConfig::new(Rule::Relative {
            relative_threshold: 0.3,
        })
        .unwrap()
        .with_max_patch_len(Some(12))
        .unwrap(),
    ] {
        let batch = segment(&model, &text, &cfg);
        assert_eq!(batch.iter().sum::<usize>(), text.len());
        assert_eq!(segment_streaming(&model, &text, &cfg), batch);
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for chunk in [1, 7, 1000, 1 << 16] {
                assert_eq!(
                    pool.install(|| segment_chunked(&model, &text, &cfg, chunk)),
                    batch,
                    "{threads} threads, chunks of {chunk}"
                );
            }
        }
    }
}

/// Writes the fixtures (only with `BLTPATCH_REGENERATE_GOLDEN=1`).
#[test]
#[ignore]
fn regenerate() {
    if std::env::var("BLTPATCH_REGENERATE_GOLDEN").as_deref() != Ok("1") {
        return;
    }
    let model = model();
    let text = golden_text();
    let raw: Vec<u8> = entropy_bits(&model, &text)
        .iter()
        .flat_map(|b| b.to_le_bytes())
        .collect();
    std::fs::write(
        root().join("tests/golden/expected_entropies_fast.f32le"),
        raw,
    )
    .unwrap();
    let cfg = model.patch_config().unwrap();
    std::fs::write(
        root().join("tests/golden/expected_lengths_fast.txt"),
        lengths_text(&segment(&model, &text, &cfg)),
    )
    .unwrap();
}
