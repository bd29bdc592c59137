//! The committed `hashmlp` model of `checkpoints/fast`: every segmentation path agrees on real
//! text. Its entropies and patch lengths are pinned with every other shipped checkpoint's in
//! `crates/bltpatch/tests/shipped_checkpoints.rs` (SPEC §3.4).

use std::path::PathBuf;

use bltpatch::{Model, PatchConfig, Rule, segment, segment_chunked, segment_streaming};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model() -> Model {
    Model::load(root().join("checkpoints/fast")).unwrap()
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
