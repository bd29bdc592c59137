//! Training end to end on tiny data: the loss falls, runs are reproducible, `resume` continues
//! exactly, and bad input gives the documented errors.

use std::path::{Path, PathBuf};

use bltpatch_checkpoint::{Weights, read_config};
use bltpatch_core::EntropyModel;
use bltpatch_engine::ConvModel;
use bltpatch_model::{Backend, ConvLm, ModelError, Progress, TrainOptions, train};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../datasets")
        .join(name)
}

/// A fast configuration: the tiny preset cut to a context of 16 bytes, short windows.
fn opts(out: &Path, steps: usize) -> TrainOptions {
    let mut o = TrainOptions::new(
        vec![data("en_books_slice.txt"), data("code_rust_slice.txt")],
        out,
    );
    o.preset = "tiny".into();
    o.context = Some(16);
    o.steps = Some(steps);
    o.batch_size = 4;
    o.seq_len = 64;
    o.lr = 1e-2;
    o.warmup_steps = 0;
    o.eval_every = 1000;
    o.val_chunks = 4;
    o.max_eval_bytes = 4096;
    o.progress = Progress::Quiet;
    o.handle_signals = false;
    o.threads = Some(1);
    o
}

fn weights(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let w = Weights::open(dir).unwrap();
    w.names()
        .into_iter()
        .map(|n| {
            let v = w.f32(&n, None).unwrap().1;
            (n, v)
        })
        .collect()
}

#[test]
fn loss_falls_and_checkpoint_is_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m");
    let report = train(&opts(&out, 60)).unwrap();
    assert_eq!(report.steps, 60);
    assert!(!report.interrupted);
    let log = std::fs::read_to_string(out.join(bltpatch_model::LOG_FILE)).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    let first = first["train_bpb"].as_f64().unwrap();
    let val = report.val_bits_per_byte.unwrap();
    assert!(
        first > 7.0,
        "an untrained model is near 8 bits/byte, got {first}"
    );
    assert!(
        val < first - 1.5,
        "held-out {val} bits/byte after training, {first} at the start"
    );
    // The checkpoint: config with calibration and summary, and weights the engine layout.
    let config = read_config(&out).unwrap();
    assert_eq!(config.arch, "conv");
    let cal = config.calibration.unwrap();
    assert!(
        matches!(cal.rule, bltpatch_core::Rule::Budget { .. }),
        "{cal:?}"
    );
    assert!((cal.mean_patch_len - 4.5).abs() < 0.5, "{cal:?}");
    assert_eq!(config.training["steps"], 60);
    assert_eq!(config.training["complete"], true);
    let w = weights(&out);
    assert!(w.iter().any(|(n, _)| n == "blocks.0.conv.weight"));
    assert!(out.join(bltpatch_model::RESUME_FILE).is_file());

    // burn's entropies on the trained weights equal the canonical engine's within 1e-4.
    let dev = Backend::Flex.device().unwrap();
    let (lm, cfg, _) = ConvLm::load(&out, &dev).unwrap();
    let engine = ConvModel::load(&out).unwrap();
    let doc = std::fs::read(data("code_rust_slice.txt")).unwrap();
    let doc = &doc[1000..4000];
    let burn_h = bltpatch_model::model::entropies(&lm, &cfg, doc, 512, &dev);
    let mut engine_h = vec![0f32; doc.len()];
    engine.entropies(doc, 0..doc.len(), &mut engine_h);
    let worst = burn_h
        .iter()
        .zip(&engine_h)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "max |burn - engine| = {worst}");
    let spread = engine_h.iter().cloned().fold(0f32, f32::max)
        - engine_h.iter().cloned().fold(9f32, f32::min);
    assert!(spread > 1.0, "a trained model's entropies vary ({spread})");
}

#[test]
fn resume_after_interruption_equals_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    train(&opts(&a, 6)).unwrap();

    let mut first = opts(&b, 6);
    first.stop_after = Some(3);
    let r = train(&first).unwrap();
    assert!(r.interrupted);
    assert_eq!(r.steps, 3);
    assert_eq!(read_config(&b).unwrap().training["steps"], 3);
    let mut again = opts(&b, 6);
    again.resume = true;
    let r = train(&again).unwrap();
    assert_eq!(r.steps, 6);
    assert!(!r.interrupted);
    assert_eq!(
        weights(&a),
        weights(&b),
        "resumed weights differ from the uninterrupted run"
    );

    // Same seed, same result, also with another thread count.
    let mut other = opts(&c, 6);
    other.threads = Some(2);
    train(&other).unwrap();
    assert_eq!(weights(&a), weights(&c));
}

fn err(o: &TrainOptions) -> String {
    let e = train(o).unwrap_err();
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "one-line message: {msg}");
    msg
}

#[test]
fn bad_input_gives_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m");

    let mut o = opts(&out, 2);
    o.corpus.clear();
    assert!(matches!(train(&o), Err(ModelError::NoCorpus)));

    let empty = tmp.path().join("empty.txt");
    std::fs::write(&empty, b"").unwrap();
    o.corpus = vec![empty.clone()];
    assert!(err(&o).starts_with("empty corpus"), "{}", err(&o));

    let short = tmp.path().join("short.txt");
    std::fs::write(&short, b"just a few bytes").unwrap();
    o.corpus = vec![short, empty];
    assert!(err(&o).starts_with("corpus too short"), "{}", err(&o));

    o.corpus = vec![tmp.path().join("missing.txt")];
    assert!(err(&o).contains("cannot read corpus file"), "{}", err(&o));
    o.corpus = vec![tmp.path().to_path_buf()];
    assert!(err(&o).contains("not a regular file"), "{}", err(&o));

    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let mut o = opts(&file.join("model"), 2);
    assert!(err(&o).contains("is not writable"), "{}", err(&o));
    o.output = file.clone();
    assert!(err(&o).contains("is not writable"), "{}", err(&o));

    let mut o = opts(tmp.path(), 2);
    assert!(err(&o).contains("holds no checkpoint"), "{}", err(&o));
    o.output = PathBuf::from(".");
    assert!(err(&o).contains("directory name"), "{}", err(&o));

    let mut o = opts(&tmp.path().join("nothing-here"), 2);
    o.resume = true;
    assert!(err(&o).starts_with("cannot resume"), "{}", err(&o));
    std::fs::create_dir(tmp.path().join("nothing-here")).unwrap();
    assert!(err(&o).starts_with("cannot resume"), "{}", err(&o));

    // A checkpoint of another architecture (the n-gram model).
    let foreign = tmp.path().join("ngram");
    let config = bltpatch_checkpoint::Config::new("ngram", 3, serde_json::json!({"order": 4}));
    let t = vec![bltpatch_checkpoint::Tensor::f32("x", vec![1], vec![0.0])];
    bltpatch_checkpoint::write_checkpoint(&foreign, &config, &t).unwrap();
    let mut o = opts(&foreign, 2);
    o.resume = true;
    let msg = err(&o);
    assert!(
        msg.starts_with("cannot use checkpoint") && msg.contains("ngram"),
        "{msg}"
    );

    let mut o = opts(&out, 2);
    o.preset = "huge".into();
    assert!(err(&o).contains("unknown preset"));
}

#[test]
fn backends_that_are_not_compiled_in_say_how_to_get_them() {
    if !Backend::Wgpu.is_compiled() {
        let e = Backend::Wgpu.device().unwrap_err().to_string();
        assert_eq!(
            e,
            "this build has no wgpu backend; rebuild with --features wgpu"
        );
    }
    if !Backend::Ndarray.is_compiled() {
        let e = Backend::Ndarray.device().unwrap_err().to_string();
        assert!(e.contains("--features ndarray"));
    }
    assert_eq!("FLEX".parse::<Backend>().unwrap(), Backend::Flex);
    assert!("cuda".parse::<Backend>().is_err());
}

/// With `--features wgpu` and an adapter: a few training steps on wgpu, resumable like on flex.
#[test]
fn wgpu_trains_when_an_adapter_exists() {
    if !Backend::Wgpu.is_compiled() || Backend::Wgpu.device().is_err() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gpu");
    let mut o = opts(&out, 4);
    o.backend = Backend::Wgpu;
    o.stop_after = Some(2);
    assert!(train(&o).unwrap().interrupted);
    o.stop_after = None;
    o.resume = true;
    let r = train(&o).unwrap();
    assert_eq!(r.steps, 4);
    assert!(r.val_bits_per_byte.unwrap().is_finite());
    assert_eq!(read_config(&out).unwrap().training["backend"], "wgpu");
}
