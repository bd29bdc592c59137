//! A smoke run of the experiment: two schemes (the entropy budget rule and BPE, whose mean
//! patch length is the target), a few steps of the tiny model on the repository's small corpus
//! slices, a generated sample from each, every output written and readable.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bltpatch_latent::{ExperimentOptions, Scheme};

fn datasets() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../datasets");
    vec![
        root.join("en_books_slice.txt"),
        root.join("code_rust_slice.txt"),
    ]
}

#[test]
fn experiment_smoke_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ExperimentOptions::new(datasets(), dir.path().join("out"));
    opts.schemes = vec![Scheme::EntropyBudget, Scheme::Bpe];
    opts.preset = "tiny".into();
    opts.train.steps = Some(8);
    opts.train.time_budget = None;
    opts.train.batch_size = 4;
    opts.train.seq_len = 128;
    opts.train.warmup_steps = 2;
    opts.train.eval_every = 4;
    opts.curve_windows_per_file = 2;
    opts.final_windows_per_file = 4;
    opts.calibration_windows_per_file = 8;
    opts.sample_bytes = 16;
    let t0 = Instant::now();
    let mut lines = Vec::new();
    let report = bltpatch_latent::run(&opts, |l| lines.push(l.to_string())).unwrap();
    report.write(&opts.out).unwrap();
    let elapsed = t0.elapsed();
    assert!(
        elapsed < Duration::from_secs(60),
        "smoke run took {elapsed:?}"
    );

    assert_eq!(report.summary.len(), 2);
    for (row, scheme) in report
        .summary
        .iter()
        .zip([Scheme::EntropyBudget, Scheme::Bpe])
    {
        assert_eq!(row.scheme, scheme);
        let bpb = row.bits_per_byte.mean;
        assert!(bpb.is_finite() && bpb > 0.0 && bpb < 9.0, "{bpb}");
        // Every scheme is set to BPE's mean on the validation windows.
        let target = report.target_patch_len;
        assert!((row.calibration_mean_patch_len - target).abs() < 0.1 * target);
        assert!(
            (row.mean_patch_len - target).abs() < 0.3 * target,
            "{} against {target}",
            row.mean_patch_len
        );
        assert!(row.flops.global > 0.0 && row.flops.total > row.flops.global);
        assert_eq!(row.steps, 8.0);
        assert_eq!(row.bytes_trained, (8 * 4 * 128) as f64);
    }
    for run in &report.runs {
        // Start, every 4 steps, end: steps 0, 4, 8.
        let steps: Vec<usize> = run.train.curve.iter().map(|p| p.step).collect();
        assert_eq!(steps, [0, 4, 8]);
        assert_eq!(run.sample.as_ref().map(|s| s.len() >= 16), Some(true));
    }

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(opts.out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["summary"].as_array().unwrap().len(), 2);
    assert_eq!(json["runs"][1]["scheme"], "bpe");
    let md = std::fs::read_to_string(opts.out.join("results.md")).unwrap();
    assert!(md.contains("| entropy-budget |") && md.contains("| bpe |"));
    let svg = std::fs::read_to_string(opts.out.join("curve.svg")).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 2);
    assert!(lines.iter().any(|l| l.contains("cl100k BPE's on")));
}
