//! The neural ("conv") entropy model through the library facade and the command line: every
//! segmentation path agrees exactly, on real text and random bytes.

use std::path::Path;
use std::process::Command;

use bltpatch::checkpoint::{CalibrationRecord, write_checkpoint};
use bltpatch::{Model, PatchConfig, Rule, segment, segment_chunked, segment_streaming};
use bltpatch_engine::{ConvConfig, ConvModel};

const BIN: &str = env!("CARGO_BIN_EXE_bltpatch");

fn write_model(dir: &Path) -> ConvModel {
    let cfg = ConvConfig::preset("tiny").unwrap();
    let model = ConvModel::random(cfg, 11);
    let mut config = model.checkpoint_config();
    config.calibration = Some(CalibrationRecord {
        rule: bltpatch::Rule::Global { threshold: 2.5 },
        max_patch_len: None,
        target_patch_size: 4.5,
        mean_patch_len: 0.0,
        calibration_bytes: 0,
    });
    write_checkpoint(dir, &config, &model.to_checkpoint_tensors()).unwrap();
    model
}

#[test]
fn facade_loads_conv_checkpoints_and_all_paths_agree() {
    let dir = tempfile::tempdir().unwrap();
    write_model(&dir.path().join("m"));
    let model = Model::load(dir.path().join("m")).unwrap();
    assert_eq!(model.config().arch, "conv");
    let text = std::fs::read(format!("{}/datasets/tiny.txt", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let doc = &text[..6000];
    for cfg in [
        model.patch_config().unwrap(),
        PatchConfig::new(Rule::Relative {
            relative_threshold: 0.2,
        })
        .unwrap()
        .with_max_patch_len(Some(8))
        .unwrap(),
    ] {
        let batch = segment(&model, doc, &cfg);
        assert_eq!(segment_streaming(&model, doc, &cfg), batch);
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for chunk in [1, 97, 1000, 1 << 16] {
                assert_eq!(
                    pool.install(|| segment_chunked(&model, doc, &cfg, chunk)),
                    batch
                );
            }
        }
    }
}

#[test]
fn cli_segment_streaming_and_verify_with_a_conv_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    write_model(&dir.path().join("m"));
    let text = format!("{}/datasets/en_books_slice.txt", env!("CARGO_MANIFEST_DIR"));
    std::fs::write(
        dir.path().join("t.txt"),
        &std::fs::read(&text).unwrap()[..8000],
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let batch = run(&["segment", "-m", "m", "--format", "lengths", "t.txt"]);
    assert!(
        batch.status.success(),
        "{}",
        String::from_utf8_lossy(&batch.stderr)
    );
    let streaming = run(&[
        "segment",
        "-m",
        "m",
        "--format",
        "lengths",
        "--streaming",
        "t.txt",
    ]);
    assert_eq!(batch.stdout, streaming.stdout);
    let v = run(&["verify", "-m", "m", "t.txt"]);
    let out = String::from_utf8_lossy(&v.stdout);
    assert!(
        v.status.success() && out.trim_end().ends_with(" 0 mismatches"),
        "{out}"
    );
}
