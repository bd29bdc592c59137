//! The `hashmlp` family: the burn module computes the function of
//! `bltpatch_engine::hashmlp` (names, shapes, both heads against the canonical engine), and
//! training writes a checkpoint the engine loads, resumes exactly, and is reproducible.

use std::path::{Path, PathBuf};

use bltpatch_checkpoint::{Tensor, TensorData, Weights, read_config};
use bltpatch_core::EntropyModel;
use bltpatch_engine::hashmlp::{HashMlpConfig, HashMlpModel};
use bltpatch_model::hashmlp::{HashMlpLm, HostBatch, nll_and_entropy};
use bltpatch_model::model::Window;
use bltpatch_model::{Arch, Backend, Progress, TrainOptions, train};
use burn::prelude::Device;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../datasets")
        .join(name)
}

fn small_cfg() -> HashMlpConfig {
    HashMlpConfig {
        orders: vec![1, 2, 3, 5],
        masks: Vec::new(),
        rows: vec![257, 64, 128, 256],
        d_model: 16,
        d_hidden: 24,
        entropy_hidden: 8,
        norm_eps: 1e-5,
        escape: false,
    }
}

/// [`small_cfg`] with an escape logit.
fn escape_cfg() -> HashMlpConfig {
    HashMlpConfig {
        escape: true,
        ..small_cfg()
    }
}

fn cpu() -> Device {
    Backend::Flex.device().unwrap()
}

fn f32_data(t: &Tensor) -> Vec<f32> {
    match &t.data {
        TensorData::F32(v) => v.clone(),
        other => panic!("{} is {}", t.name, other.dtype_name()),
    }
}

#[test]
fn export_names_and_shapes_match_arch() {
    for cfg in [
        small_cfg(),
        escape_cfg(),
        HashMlpConfig::preset("tiny").unwrap(),
    ] {
        let m = HashMlpLm::init(&cfg, 3, &cpu());
        let got: Vec<(String, Vec<usize>)> = m
            .to_tensors()
            .into_iter()
            .map(|t| (t.name, t.shape))
            .collect();
        assert_eq!(got, cfg.tensors());
    }
}

/// burn's next-byte head equals the engine's within `1e-4` (surprisals and the distribution's
/// entropy); its entropy head equals the engine's within the bound of the engine's
/// quantisation of the folded tables. With and without an escape logit (its bias raised so that
/// the uniform share is large).
#[test]
fn burn_heads_match_the_canonical_engine() {
    heads_match(small_cfg());
    heads_match(escape_cfg());
}

fn heads_match(cfg: HashMlpConfig) {
    let dev = cpu();
    let init = HashMlpLm::init(&cfg, 21, &dev).to_tensors();
    let m = HashMlpLm::build(&cfg, &dev, &mut |name, _| {
        let t = init.iter().find(|t| t.name == name).unwrap();
        Ok(if name == "escape.bias" {
            vec![1.5]
        } else {
            f32_data(t)
        })
    })
    .unwrap();
    let tensors = m.to_tensors();
    let engine = HashMlpModel::from_tensors(cfg.clone(), |name, _| {
        Ok(f32_data(tensors.iter().find(|t| t.name == name).unwrap()))
    })
    .unwrap();
    let text = std::fs::read(data("en_books_slice.txt")).unwrap();
    let doc = &text[..400];
    // The document's first 150 positions (short keys included), and 200 from the middle.
    let windows = [
        Window {
            doc,
            start: 0,
            end: 150,
            count_from: 0,
        },
        Window {
            doc,
            start: 180,
            end: 380,
            count_from: 180,
        },
    ];
    let batch = HostBatch::new(&cfg, &windows);
    let out = m.forward(&batch.inputs(&dev), false);
    let (nll, h) = nll_and_entropy(out.logits, out.escape, batch.targets(&dev));
    let nll: Vec<f32> = nll.try_into_vec_as::<f32>().unwrap();
    let h: Vec<f32> = h.try_into_vec_as::<f32>().unwrap();
    let pred: Vec<f32> = out.entropy.try_into_vec_as::<f32>().unwrap();
    let w = engine.tensor("entropy.out.weight").unwrap();
    let bound = cfg.orders.len() as f32 * engine.quantum() / 2.0
        * w.iter().map(|x| x.abs()).sum::<f32>()
        + 1e-4;
    let (mut worst_s, mut worst_d, mut worst_h) = (0f32, 0f32, 0f32);
    for (r, win) in windows.iter().enumerate() {
        let n = win.end - win.start;
        let range = win.start..win.end;
        let mut s = vec![0f32; n];
        engine.surprisals(doc, range.clone(), &mut s);
        let mut d = vec![0f32; n];
        engine.distribution_entropies(doc, range.clone(), &mut d);
        let mut e = vec![0f32; n];
        engine.entropies(doc, range, &mut e);
        for p in 0..n {
            let at = r * batch.len + p;
            worst_s = worst_s.max((s[p] - nll[at]).abs());
            worst_d = worst_d.max((d[p] - h[at]).abs());
            let clamped = pred[at].clamp(0.0, 256f32.ln());
            worst_h = worst_h.max((e[p] - clamped).abs());
        }
    }
    assert!(
        worst_s < 1e-4,
        "surprisals: max |burn - engine| = {worst_s}"
    );
    assert!(worst_d < 1e-4, "distribution entropies: {worst_d}");
    assert!(worst_h <= bound, "entropy head: {worst_h} > bound {bound}");
}

fn opts(out: &Path, steps: usize) -> TrainOptions {
    let mut o = TrainOptions::new(
        vec![data("en_books_slice.txt"), data("code_rust_slice.txt")],
        out,
    );
    o.family = Arch::HashMlp;
    o.arch = Some(serde_json::to_value(small_cfg()).unwrap());
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
    o.family_hyper.entropy_trains_tables = true;
    o
}

/// The mean over every byte of the held-out text of `o`'s corpus (4 KiB, as the trainer's
/// evaluation) of the per-byte values that `per_byte(doc, out)` writes.
fn held_out_mean(o: &TrainOptions, per_byte: impl Fn(&[u8], &mut [f32])) -> f64 {
    let docs = bltpatch_model::held_out(&o.corpus, 0.05, 4096).unwrap();
    let (mut sum, mut n) = (0f64, 0usize);
    for d in &docs {
        let mut v = vec![0f32; d.len()];
        per_byte(d, &mut v);
        sum += v.iter().map(|&x| x as f64).sum::<f64>();
        n += d.len();
    }
    sum / n as f64
}

fn weights(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let w = Weights::open(dir).unwrap();
    w.names()
        .into_iter()
        .map(|n| {
            let v = w.float(&n, None).unwrap().1;
            (n, v)
        })
        .collect()
}

#[test]
fn training_writes_a_checkpoint_the_engine_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m");
    let report = train(&opts(&out, 80)).unwrap();
    assert_eq!(report.arch, "hashmlp");
    assert_eq!(report.steps, 80);
    let log = std::fs::read_to_string(out.join(bltpatch_model::LOG_FILE)).unwrap();
    let first: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    let first = first["train_bpb"].as_f64().unwrap();
    let val = report.val_bits_per_byte.unwrap();
    assert!(first > 7.0, "{first}");
    assert!(val < first - 1.5, "held-out {val}, first {first}");
    let rmse = report.entropy_rmse.unwrap();
    assert!(rmse.is_finite() && rmse < 1.5, "{rmse}");

    let config = read_config(&out).unwrap();
    assert_eq!(config.arch, "hashmlp");
    assert_eq!(config.context, 5);
    assert_eq!(
        config.training["family_hyper"]["entropy_trains_tables"],
        true
    );
    let cal = config.calibration.unwrap();
    assert!((cal.mean_patch_len - 4.5).abs() < 0.5, "{cal:?}");
    let w = Weights::open(&out).unwrap();
    assert_eq!(w.dtype("tables.1.weight").as_deref(), Some("F16"));
    assert_eq!(w.dtype("hidden.weight").as_deref(), Some("F32"));

    // The reported held-out bits/byte is the loaded checkpoint's, on the same text.
    let engine = HashMlpModel::load(&out).unwrap();
    let nll = held_out_mean(&opts(&out, 1), |d, s| engine.surprisals(d, 0..d.len(), s));
    let bpb = nll / std::f64::consts::LN_2;
    assert!((bpb - val).abs() < 1e-9, "checkpoint {bpb}, reported {val}");
}

#[test]
fn escape_trains_and_the_engine_reproduces_its_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m");
    let mut o = opts(&out, 30);
    o.arch = Some(serde_json::to_value(escape_cfg()).unwrap());
    let report = train(&o).unwrap();
    let config = read_config(&out).unwrap();
    assert_eq!(config.architecture["escape"], true);
    let w = Weights::open(&out).unwrap();
    // The escape reads order 1 (the only table of order 1 or of byte classes here).
    assert_eq!(escape_cfg().escape_tables(), vec![0]);
    assert_eq!(
        w.float("escape.tables.0.weight", Some(&[257, 1]))
            .unwrap()
            .1
            .len(),
        257
    );
    let engine = HashMlpModel::load(&out).unwrap();
    assert!(engine.config().escape);
    let nll = held_out_mean(&o, |d, s| engine.surprisals(d, 0..d.len(), s));
    let val = report.val_bits_per_byte.unwrap();
    assert!(
        (nll / std::f64::consts::LN_2 - val).abs() < 1e-9,
        "{nll} {val}"
    );
    assert!(val < 7.0, "{val}");
}

/// The table rows of a batch, per table: `[orders][B·L]`.
fn batch_rows(b: &HostBatch) -> Vec<Vec<i64>> {
    b.inputs(&cpu())
        .into_iter()
        .map(|t| t.try_into_vec_as::<i64>().unwrap())
        .collect()
}

#[test]
fn row_noise_replaces_only_hashed_rows_of_whole_bytes() {
    let cfg = HashMlpConfig::preset("broad").unwrap();
    let text = std::fs::read(data("en_books_slice.txt")).unwrap();
    let windows: Vec<Window> = (0..4)
        .map(|i| Window {
            doc: &text,
            start: 1_000 * i,
            end: 1_000 * i + 500,
            count_from: 1_000 * i,
        })
        .collect();
    let clean = batch_rows(&HostBatch::new(&cfg, &windows));
    let noisy = batch_rows(&HostBatch::with_row_noise(&cfg, &windows, 0.3));
    // The same windows give the same noise.
    assert_eq!(
        noisy,
        batch_rows(&HostBatch::with_row_noise(&cfg, &windows, 0.3))
    );
    for (j, (c, n)) in clean.iter().zip(&noisy).enumerate() {
        let changed = c.iter().zip(n).filter(|(a, b)| a != b).count() as f64 / c.len() as f64;
        let hashed = cfg.orders[j] >= 2 && cfg.mask(j) == 0xff;
        if hashed {
            assert!((0.25..0.35).contains(&changed), "table {j}: {changed}");
            assert!(n.iter().all(|&r| (0..cfg.rows[j] as i64).contains(&r)));
        } else {
            assert_eq!(
                changed,
                0.0,
                "table {j} (order {}, mask {:#x})",
                cfg.orders[j],
                cfg.mask(j)
            );
        }
    }
}

#[test]
fn row_noise_trains_deterministically_and_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, noise: f64| {
        let out = tmp.path().join(name);
        let mut o = opts(&out, 6);
        o.family_hyper.row_noise = noise;
        train(&o).unwrap();
        out
    };
    let (a, b, plain) = (run("a", 0.2), run("b", 0.2), run("plain", 0.0));
    assert_eq!(weights(&a), weights(&b));
    assert_ne!(weights(&a), weights(&plain));
    let config = read_config(&a).unwrap();
    assert_eq!(
        config.training["family_hyper"]["row_noise"].as_f64(),
        Some(0.2)
    );
    let config = read_config(&plain).unwrap();
    assert!(config.training["family_hyper"]["row_noise"].is_null());

    let mut o = opts(&tmp.path().join("bad"), 1);
    o.family_hyper.row_noise = 1.0;
    let msg = train(&o).unwrap_err().to_string();
    assert!(msg.contains("row noise 1 must be in [0, 1)"), "{msg}");
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
    assert!(train(&first).unwrap().interrupted);
    let mut again = opts(&b, 6);
    again.resume = true;
    // The resumed run takes the architecture and hyper-parameters from the saved state.
    again.arch = None;
    let r = train(&again).unwrap();
    assert_eq!(r.steps, 6);
    assert_eq!(weights(&a), weights(&b));

    let mut other = opts(&c, 6);
    other.threads = Some(2);
    train(&other).unwrap();
    assert_eq!(weights(&a), weights(&c));

    // A conv run cannot resume a hashmlp checkpoint.
    let mut conv = opts(&a, 8);
    conv.family = Arch::Conv;
    conv.arch = None;
    conv.resume = true;
    let msg = train(&conv).unwrap_err().to_string();
    assert!(msg.contains("hashmlp"), "{msg}");
}

#[test]
fn a_run_started_from_a_checkpoint_continues_its_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, warm, cold, still) = (
        tmp.path().join("base"),
        tmp.path().join("warm"),
        tmp.path().join("cold"),
        tmp.path().join("still"),
    );
    let first = train(&opts(&base, 60)).unwrap();

    // With a learning rate too small to move a weight, one step writes the weights it read: the
    // run starts from the checkpoint, not from a random initialisation.
    let mut o = opts(&still, 1);
    o.arch = None;
    o.preset = "tiny".into();
    o.lr = 1e-15;
    o.init_from = Some(base.clone());
    train(&o).unwrap();
    let (a, b) = (weights(&base), weights(&still));
    assert_eq!(a.len(), b.len());
    for ((na, va), (nb, vb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        let worst = va
            .iter()
            .zip(vb)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-6, "{na}: moved by {worst}");
    }

    // Training on from it ends lower than the same steps from random weights, and the new
    // checkpoint says where it started (the architecture comes from there, not from `preset`).
    let mut o = opts(&warm, 20);
    o.arch = None;
    o.preset = "tiny".into();
    o.init_from = Some(base.clone());
    let warm_report = train(&o).unwrap();
    let cold_report = train(&opts(&cold, 20)).unwrap();
    let (w, c) = (
        warm_report.val_bits_per_byte.unwrap(),
        cold_report.val_bits_per_byte.unwrap(),
    );
    assert!(
        w < c - 0.5,
        "from the checkpoint {w}, from random weights {c}"
    );
    assert_eq!(warm_report.architecture, first.architecture);
    let config = read_config(&warm).unwrap();
    let init = &config.training["init"];
    assert_eq!(init["file"], "base");
    let bytes = std::fs::read(base.join("model.safetensors")).unwrap();
    let described = bltpatch_checkpoint::CorpusFile::describe(&base, &bytes);
    assert_eq!(init["sha256"], described.sha256.as_str());
    assert_eq!(init["bytes"], bytes.len() as u64);
    assert_eq!(config.training["steps"], 20);
    assert!(read_config(&cold).unwrap().training.get("init").is_none());

    // Not with --resume; not from another family's checkpoint.
    let mut o = opts(&warm, 30);
    o.init_from = Some(base.clone());
    o.resume = true;
    let msg = train(&o).unwrap_err().to_string();
    assert!(msg.contains("resume"), "{msg}");
    let mut o = opts(&tmp.path().join("conv"), 30);
    o.family = Arch::Conv;
    o.arch = None;
    o.init_from = Some(base.clone());
    let msg = train(&o).unwrap_err().to_string();
    assert!(msg.contains("hashmlp") && msg.contains("base"), "{msg}");
    assert!(!tmp.path().join("conv").exists());
}

#[test]
fn presets_and_options() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(&tmp.path().join("m"), 2);
    o.arch = None;
    o.preset = "huge".into();
    let msg = train(&o).unwrap_err().to_string();
    assert!(msg.contains("unknown hashmlp preset"), "{msg}");
    o.preset = "tiny".into();
    o.context = Some(16);
    assert!(train(&o).unwrap_err().to_string().contains("--context"));
    for name in HashMlpConfig::PRESETS {
        let cfg = HashMlpConfig::preset(name).unwrap();
        cfg.validate().unwrap();
        // Every preset's checkpoint (tables as F16) stays within 8 MB.
        let bytes: usize = cfg
            .tensors()
            .iter()
            .map(|(n, s)| {
                s.iter().product::<usize>() * if n.starts_with("tables.") { 2 } else { 4 }
            })
            .sum();
        assert!(bytes <= 8_000_000, "{name}: {bytes} bytes");
    }
}

#[test]
fn label_smoothing_flattens_the_next_byte_distribution() {
    let tmp = tempfile::tempdir().unwrap();
    let mean_entropy = |eps: f64| {
        let out = tmp.path().join(format!("m{eps}"));
        let mut o = opts(&out, 40);
        o.family_hyper.label_smoothing = eps;
        train(&o).unwrap();
        let config = read_config(&out).unwrap();
        let recorded = &config.training["family_hyper"]["label_smoothing"];
        if eps == 0.0 {
            assert!(recorded.is_null(), "{recorded}");
        } else {
            assert_eq!(recorded.as_f64(), Some(eps));
        }
        let engine = HashMlpModel::load(&out).unwrap();
        held_out_mean(&o, |d, h| engine.distribution_entropies(d, 0..d.len(), h))
    };
    let (plain, smoothed) = (mean_entropy(0.0), mean_entropy(0.3));
    assert!(
        smoothed > plain + 0.1,
        "plain {plain} nats, smoothed {smoothed}"
    );

    let mut o = opts(&tmp.path().join("bad"), 1);
    o.family_hyper.label_smoothing = 1.0;
    let msg = train(&o).unwrap_err().to_string();
    assert!(msg.contains("label smoothing 1 must be in [0, 1)"), "{msg}");
}
