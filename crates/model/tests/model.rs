//! The burn model computes the function of `bltpatch_engine::arch`: export names and shapes,
//! bit-identical round trips, and entropies against an independent scalar implementation.

use std::collections::HashMap;

use bltpatch_checkpoint::{Config, write_checkpoint};
use bltpatch_engine::arch::{self, ConvConfig, VOCAB_OUT};
use bltpatch_model::model::{self, ConvLm, HostBatch, Window};
use bltpatch_model::{Backend, conv_config};
use burn::module::Module;
use burn::prelude::Device;

fn text() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../datasets/en_books_slice.txt"
    ))
    .unwrap()
}

fn small_cfg() -> ConvConfig {
    ConvConfig {
        d_model: 16,
        d_hidden: 24,
        kernel_size: 3,
        dilations: vec![1, 2, 4],
        hash_orders: vec![2, 3],
        hash_buckets: 97,
        norm_eps: 1e-5,
    }
}

fn cpu() -> Device {
    Backend::Flex.device().unwrap()
}

fn logits(m: &ConvLm, cfg: &ConvConfig, doc: &[u8], device: &Device) -> Vec<f32> {
    let w = [
        Window {
            doc,
            start: 0,
            end: 40,
            count_from: 0,
        },
        Window {
            doc,
            start: 100,
            end: 160,
            count_from: 120,
        },
    ];
    let batch = HostBatch::new(cfg, &w);
    m.forward(&batch.input(device))
        .try_into_vec_as::<f32>()
        .unwrap()
}

#[test]
fn export_names_and_shapes_match_arch() {
    for cfg in [small_cfg(), conv_config("tiny", None).unwrap()] {
        let m = ConvLm::init(&cfg, 3, &cpu());
        let got: Vec<(String, Vec<usize>)> = m
            .to_tensors()
            .into_iter()
            .map(|t| (t.name, t.shape))
            .collect();
        assert_eq!(got, cfg.tensors());
    }
}

#[test]
fn checkpoint_round_trip_gives_bit_identical_logits() {
    let cfg = small_cfg();
    let dev = cpu();
    // Trainable parameters on an autodiff device, exported and loaded back on a plain one.
    let m = ConvLm::init(&cfg, 11, &dev.clone().autodiff());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    let config = Config::new(
        arch::ARCH,
        cfg.context(),
        serde_json::to_value(&cfg).unwrap(),
    );
    write_checkpoint(&dir, &config, &m.to_tensors()).unwrap();
    let (loaded, cfg2, _) = ConvLm::load(&dir, &dev).unwrap();
    assert_eq!(cfg2, cfg);
    let doc = text();
    let a = logits(&m.valid(), &cfg, &doc, &dev);
    let b = logits(&loaded, &cfg, &doc, &dev);
    assert_eq!(a.len(), 2 * 60 * VOCAB_OUT);
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
}

#[test]
fn initialisation_is_a_function_of_the_seed() {
    let cfg = small_cfg();
    let a = ConvLm::init(&cfg, 5, &cpu()).to_tensors();
    let b = ConvLm::init(&cfg, 5, &cpu()).to_tensors();
    let c = ConvLm::init(&cfg, 6, &cpu()).to_tensors();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

/// A direct, scalar (f64) transcription of the arch.rs formulas over a whole document.
fn reference_entropies(cfg: &ConvConfig, t: &HashMap<String, Vec<f32>>, doc: &[u8]) -> Vec<f32> {
    let (d, f, k) = (cfg.d_model, cfg.d_hidden, cfg.kernel_size);
    let n = doc.len();
    let w = |name: &str| -> Vec<f64> { t[name].iter().map(|&x| x as f64).collect() };
    let (tokens, buckets) = arch::inputs(cfg, doc, 0, n);
    let embed = w("embed.weight");
    let mut h = vec![vec![0f64; d]; n];
    for i in 0..n {
        let tok = tokens[i] as usize;
        h[i].copy_from_slice(&embed[tok * d..(tok + 1) * d]);
        for j in 0..cfg.hash_orders.len() {
            let b = buckets[i * cfg.hash_orders.len() + j];
            if b != u32::MAX {
                let table = w(&format!("hash.{j}.weight"));
                for c in 0..d {
                    h[i][c] += table[b as usize * d + c];
                }
            }
        }
    }
    let rms = |x: &[f64], g: &[f64]| -> Vec<f64> {
        let r =
            1.0 / (x.iter().map(|v| v * v).sum::<f64>() / d as f64 + cfg.norm_eps as f64).sqrt();
        x.iter().zip(g).map(|(v, g)| v * r * g).collect()
    };
    for (l, &dil) in cfg.dilations.iter().enumerate() {
        let g = w(&format!("blocks.{l}.norm.gamma"));
        let cw = w(&format!("blocks.{l}.conv.weight"));
        let cb = w(&format!("blocks.{l}.conv.bias"));
        let pw = w(&format!("blocks.{l}.proj.weight"));
        let pb = w(&format!("blocks.{l}.proj.bias"));
        let a: Vec<Vec<f64>> = h.iter().map(|x| rms(x, &g)).collect();
        for tpos in 0..n {
            let mut c = cb.clone();
            for (o, co) in c.iter_mut().enumerate() {
                for j in 0..k {
                    let back = (k - 1 - j) * dil;
                    if tpos >= back {
                        for i in 0..d {
                            *co += cw[(o * d + i) * k + j] * a[tpos - back][i];
                        }
                    }
                }
            }
            for p in 0..d {
                let mut s = pb[p];
                for o in 0..f {
                    s += pw[o * d + p] * c[o].max(0.0);
                }
                h[tpos][p] += s;
            }
        }
    }
    let g = w("norm.gamma");
    let hw = w("head.weight");
    let hb = w("head.bias");
    h.iter()
        .map(|x| {
            let z = rms(x, &g);
            let logits: Vec<f64> = (0..VOCAB_OUT)
                .map(|v| hb[v] + (0..d).map(|i| hw[i * VOCAB_OUT + v] * z[i]).sum::<f64>())
                .collect();
            let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = logits.iter().map(|l| (l - m).exp()).collect();
            let s: f64 = e.iter().sum();
            (s.ln() - e.iter().zip(&logits).map(|(e, l)| e * (l - m)).sum::<f64>() / s) as f32
        })
        .collect()
}

#[test]
fn burn_entropies_match_a_scalar_transcription_of_arch() {
    let cfg = small_cfg();
    let dev = cpu();
    let m = ConvLm::init(&cfg, 21, &dev);
    let tensors: HashMap<String, Vec<f32>> = m
        .to_tensors()
        .into_iter()
        .map(|t| match t.data {
            bltpatch_checkpoint::TensorData::F32(v) => (t.name, v),
            _ => unreachable!(),
        })
        .collect();
    let doc = &text()[..300];
    let want = reference_entropies(&cfg, &tensors, doc);
    // Small chunks: every chunk but the first starts mid-document with a warm-up.
    for chunk in [7, 64, 1000] {
        let got = model::entropies(&m, &cfg, doc, chunk, &dev);
        assert_eq!(got.len(), doc.len());
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst < 1e-4,
            "chunk {chunk}: max |burn - reference| = {worst}"
        );
    }
}

/// With `--features wgpu`: on a machine with an adapter the wgpu forward matches flex; without
/// one, the backend is an error (never a panic) and the check is skipped.
#[test]
fn wgpu_forward_matches_flex_when_an_adapter_exists() {
    if !Backend::Wgpu.is_compiled() {
        return;
    }
    let gpu = match Backend::Wgpu.device() {
        Ok(d) => d,
        Err(e) => {
            assert!(e.to_string().starts_with("no wgpu device available"), "{e}");
            eprintln!("skipped: {e}");
            return;
        }
    };
    let cfg = small_cfg();
    let doc = text();
    let a = logits(&ConvLm::init(&cfg, 4, &cpu()), &cfg, &doc, &cpu());
    let b = logits(&ConvLm::init(&cfg, 4, &gpu), &cfg, &doc, &gpu);
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    eprintln!("{gpu:?}: max |flex - wgpu| logit difference {worst}");
    assert!(worst < 1e-3, "max |flex - wgpu| logit difference {worst}");
}
