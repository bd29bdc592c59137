use std::path::Path;

use bltpatch_checkpoint::{CheckpointError, Config, Tensor, TensorData, Weights, write_checkpoint};
use bltpatch_core::{EntropyModel, entropies_chunked_into};

use super::*;

const TINY: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../datasets/tiny.txt"
));

/// A small deterministic PRNG (SplitMix64) for random chunkings.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn tiny_model(order: usize) -> NgramModel {
    NgramModel::train(&[TINY], &NgramConfig { order }).unwrap()
}

fn entropies(m: &NgramModel, doc: &[u8]) -> Vec<f32> {
    let mut h = vec![0f32; doc.len()];
    m.entropies(doc, 0..doc.len(), &mut h);
    h
}

fn surprisals(m: &NgramModel, doc: &[u8]) -> Vec<f32> {
    let mut s = vec![0f32; doc.len()];
    m.surprisals(doc, 0..doc.len(), &mut s);
    s
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn dense_entropy(p: &[f64; 256]) -> f64 {
    -p.iter()
        .map(|&x| if x > 0.0 { x * libm::log(x) } else { 0.0 })
        .sum::<f64>()
}

/// The context bytes of a packed context of length `l`.
fn unpack(ctx: u64, l: usize) -> Vec<u8> {
    (0..l).rev().map(|j| (ctx >> (8 * j)) as u8).collect()
}

#[test]
fn config_validation() {
    assert_eq!(NgramConfig::default().order, 6);
    assert!(NgramConfig { order: 0 }.validate().is_err());
    assert!(NgramConfig { order: 9 }.validate().is_err());
    for order in 1..=8 {
        NgramConfig { order }.validate().unwrap();
    }
    let e = NgramModel::train(&[b"abc"], &NgramConfig { order: 9 }).unwrap_err();
    assert!(matches!(e, NgramError::InvalidOrder(9)), "{e}");
    let e = NgramModel::train(&[], &NgramConfig::default()).unwrap_err();
    assert!(matches!(e, NgramError::EmptyCorpus), "{e}");
    let e = NgramModel::train(&[b"", b""], &NgramConfig::default()).unwrap_err();
    assert!(matches!(e, NgramError::EmptyCorpus), "{e}");
}

/// Doc "aab", order 2, worked by hand.
#[test]
fn hand_checked_kneser_ney() {
    let m = NgramModel::train(&[b"aab"], &NgramConfig { order: 2 }).unwrap();
    // Order 1 continuation counts: a: {a·a, <s>·a} = 2, b: {a·b} = 1 → n1 = 1, n2 = 1, D = 1/3.
    // Order 2 raw counts: aa: 1, ab: 1 → n1 = 2, n2 = 0 → D = 1 → clamped to 0.95.
    assert_eq!(m.discounts(), &[1.0f32 / 3.0, 0.95]);
    assert_eq!(m.nodes_per_order(), vec![1, 1]); // "" and "a" ("b" is never followed)
    let d1 = (1.0f32 / 3.0) as f64;
    let d2 = 0.95f32 as f64;
    let u = 1.0 / 256.0;
    let p0_a = (2.0 - d1 + d1 * 2.0 * u) / 3.0;
    let p0_b = (1.0 - d1 + d1 * 2.0 * u) / 3.0;
    let p0_x = d1 * 2.0 * u / 3.0;
    let pa_a = (1.0 - d2 + d2 * 2.0 * p0_a) / 2.0;
    let pa_b = (1.0 - d2 + d2 * 2.0 * p0_b) / 2.0;
    let pa_x = d2 * 2.0 * p0_x / 2.0;

    let p = m.distribution(b"");
    assert!((p[b'a' as usize] - p0_a).abs() < 1e-15);
    assert!((p[b'b' as usize] - p0_b).abs() < 1e-15);
    assert!((p[b'z' as usize] - p0_x).abs() < 1e-15);
    let p = m.distribution(b"a");
    assert!((p[b'a' as usize] - pa_a).abs() < 1e-15);
    assert!((p[b'b' as usize] - pa_b).abs() < 1e-15);
    assert!((p[0] - pa_x).abs() < 1e-15);
    // "b" is not a node: its distribution is that of the empty context.
    assert_eq!(m.distribution(b"b"), m.distribution(b""));
    assert_eq!(m.distribution(b"zza"), m.distribution(b"a"));

    let h0 = -(p0_a * p0_a.ln() + p0_b * p0_b.ln() + 254.0 * p0_x * p0_x.ln());
    let ha = -(pa_a * pa_a.ln() + pa_b * pa_b.ln() + 254.0 * pa_x * pa_x.ln());
    let h = entropies(&m, b"abba");
    assert!((h[0] as f64 - h0).abs() < 1e-6, "{} vs {h0}", h[0]);
    assert!((h[1] as f64 - ha).abs() < 1e-6, "{} vs {ha}", h[1]);
    assert_eq!(h[2], h[0]); // after "b"
    let s = surprisals(&m, b"abba");
    let want = [-p0_a.ln(), -pa_b.ln(), -p0_b.ln(), -p0_a.ln()];
    for (got, want) in s.iter().zip(want) {
        assert!((*got as f64 - want).abs() < 1e-6, "{got} vs {want}");
    }
}

#[test]
fn documents_are_counted_separately() {
    let m = NgramModel::train(&[b"ab", b"cd"], &NgramConfig { order: 3 }).unwrap();
    // "b" ends a document: nothing follows it, so it is not a node; "bc" never occurs.
    assert_eq!(m.nodes_per_order(), vec![1, 2, 0]);
    assert_eq!(m.distribution(b"b"), m.distribution(b""));
    // Continuation counts: a, c are document starts; b, d follow a, c.
    assert_eq!(m.levels[0].next_bytes, b"abcd");
    assert_eq!(m.levels[0].next_counts, vec![1, 1, 1, 1]);
}

#[test]
fn every_node_sums_to_one_and_matches_its_entropy() {
    for order in [1, 3, 5] {
        let m = NgramModel::train(
            &[&TINY[..40_000], &TINY[40_000..50_000]],
            &NgramConfig { order },
        )
        .unwrap();
        for (l, level) in m.levels.iter().enumerate() {
            for (j, &ctx) in level.contexts.iter().enumerate() {
                let context = unpack(ctx, l);
                let p = m.distribution(&context);
                let sum: f64 = p.iter().sum();
                assert!(
                    (sum - 1.0).abs() < 1e-9,
                    "order {order} node {context:?}: sum {sum}"
                );
                assert!(p.iter().all(|&x| x > 0.0));
                let h = dense_entropy(&p);
                let stored = level.entropy[j] as f64;
                assert!(
                    (stored - h).abs() < 1e-5,
                    "order {order} node {context:?}: {stored} vs {h}"
                );
                // The entropy of a position whose context is this node.
                let mut doc = context.clone();
                doc.push(0);
                let mut out = [0f32];
                m.entropies(&doc, l..l + 1, &mut out);
                assert_eq!(out[0], level.entropy[j]);
            }
        }
    }
}

#[test]
fn batch_streaming_and_chunked_are_bit_identical() {
    let m = tiny_model(6);
    let doc = TINY;
    let whole = entropies(&m, doc);
    let whole_s = surprisals(&m, doc);
    assert!(
        whole
            .iter()
            .all(|h| h.is_finite() && *h >= 0.0 && *h <= 5.546)
    );

    // Streaming, including a stream where entropy() is skipped at some positions.
    let mut s = m.stream();
    let mut rng = Rng(7);
    for (i, &b) in doc.iter().enumerate() {
        if i % 3 != 1 || rng.below(2) == 0 {
            assert_eq!(s.entropy().to_bits(), whole[i].to_bits(), "stream at {i}");
        }
        s.push(b);
    }
    s.reset();
    for (i, &b) in doc[..500].iter().enumerate() {
        assert_eq!(
            s.entropy().to_bits(),
            whole[i].to_bits(),
            "after reset at {i}"
        );
        s.push(b);
    }

    // Random chunkings.
    for seed in 0..20u64 {
        let mut rng = Rng(seed);
        let mut start = 0;
        while start < doc.len() {
            let len = 1 + rng.below(if seed % 2 == 0 { 50 } else { 5000 });
            let end = (start + len).min(doc.len());
            let mut h = vec![0f32; end - start];
            m.entropies(doc, start..end, &mut h);
            assert_eq!(
                bits(&h),
                bits(&whole[start..end]),
                "entropies {start}..{end}"
            );
            let mut sp = vec![0f32; end - start];
            m.surprisals(doc, start..end, &mut sp);
            assert_eq!(
                bits(&sp),
                bits(&whole_s[start..end]),
                "surprisals {start}..{end}"
            );
            start = end;
        }
    }
    // Single positions: a full search at every position.
    for i in (0..doc.len()).step_by(7) {
        let mut h = [0f32];
        m.entropies(doc, i..i + 1, &mut h);
        assert_eq!(h[0].to_bits(), whole[i].to_bits(), "position {i}");
    }
    // The core's parallel chunked driver.
    for chunk in [1, 97, 4096] {
        let mut got = Vec::new();
        entropies_chunked_into(&m, doc, chunk, |h| got.extend_from_slice(h));
        assert_eq!(bits(&got), bits(&whole), "chunk {chunk}");
    }
    // Bounded context: the same 5 bytes give the same value anywhere.
    let a = entropies(&m, b"xxxxxxxxxx the cat");
    let b = entropies(&m, b"yyyyy the cat");
    assert_eq!(bits(&a[a.len() - 3..]), bits(&b[b.len() - 3..]));
    // Empty ranges.
    m.entropies(doc, 5..5, &mut []);
    m.surprisals(b"", 0..0, &mut []);
}

#[test]
fn training_is_deterministic_across_thread_counts() {
    let docs: Vec<&[u8]> = TINY.chunks(9_000).collect();
    let cfg = NgramConfig { order: 5 };
    let a = NgramModel::train(&docs, &cfg).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let b = pool.install(|| NgramModel::train(&docs, &cfg).unwrap());
    assert_eq!(a.discounts, b.discounts);
    assert_eq!(a.levels, b.levels);
}

#[test]
fn held_out_bits_per_byte() {
    let cut = TINY.len() * 9 / 10;
    let m = NgramModel::train(&[&TINY[..cut]], &NgramConfig { order: 5 }).unwrap();
    let held = &TINY[cut..];
    let s = surprisals(&m, held);
    let bpb = s.iter().map(|&x| x as f64).sum::<f64>() / s.len() as f64 / std::f64::consts::LN_2;
    eprintln!("held-out bits/byte (order 5, 90/10 split of tiny.txt): {bpb:.4}");
    assert!(bpb.is_finite() && bpb > 0.5 && bpb < 8.0, "{bpb}");
    // On the training text itself it is lower.
    let s = surprisals(&m, &TINY[..cut]);
    let train_bpb =
        s.iter().map(|&x| x as f64).sum::<f64>() / s.len() as f64 / std::f64::consts::LN_2;
    assert!(train_bpb < bpb, "{train_bpb} vs {bpb}");
}

#[test]
fn save_load_round_trip_is_bit_identical() {
    let m = tiny_model(6);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    let training = serde_json::json!({ "bytes": TINY.len() });
    m.save(&dir, training.clone(), None).unwrap();
    let (loaded, config) = NgramModel::load(&dir).unwrap();
    assert_eq!(config.arch, "ngram");
    assert_eq!(config.context, 5);
    assert_eq!(config.architecture, serde_json::json!({ "order": 6 }));
    assert_eq!(config.training, training);
    assert_eq!(loaded.levels, m.levels);
    assert_eq!(loaded.discounts, m.discounts);
    let doc = &TINY[..20_000];
    assert_eq!(bits(&entropies(&loaded, doc)), bits(&entropies(&m, doc)));
    assert_eq!(bits(&surprisals(&loaded, doc)), bits(&surprisals(&m, doc)));
    // Names in the file.
    let w = Weights::open(&dir).unwrap();
    assert!(
        w.contains("discounts") && w.contains("order6.next_counts") && !w.contains("order7.total")
    );
    // Embedded bytes load the same way.
    let config =
        Config::from_json(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let w = Weights::from_bytes(std::fs::read(dir.join("model.safetensors")).unwrap()).unwrap();
    let e = NgramModel::from_checkpoint(&config, &w).unwrap();
    assert_eq!(e.levels, m.levels);
}

#[test]
fn tiny_corpora_and_orders() {
    // Documents shorter than the order, order 1, order 8.
    for order in [1, 2, 8] {
        let m = NgramModel::train(&[b"a", b"xy", b"hello world"], &NgramConfig { order }).unwrap();
        let doc = b"hello there, world";
        let h = entropies(&m, doc);
        let s = surprisals(&m, doc);
        assert!(h.iter().chain(&s).all(|x| x.is_finite() && *x >= 0.0));
        let tmp = tempfile::tempdir().unwrap();
        m.save(tmp.path(), serde_json::Value::Null, None).unwrap();
        let (l, _) = NgramModel::load(tmp.path()).unwrap();
        assert_eq!(bits(&entropies(&l, doc)), bits(&h));
    }
}

/// Writes `m`'s checkpoint after `edit` changes its config and tensors, then loads it.
fn load_edited(
    m: &NgramModel,
    dir: &Path,
    edit: impl FnOnce(&mut Config, &mut Vec<Tensor>),
) -> Result<NgramModel, NgramError> {
    let (mut config, mut tensors) = m.to_checkpoint(serde_json::Value::Null, None);
    edit(&mut config, &mut tensors);
    write_checkpoint(dir, &config, &tensors).unwrap();
    NgramModel::load(dir).map(|(m, _)| m)
}

fn tensor<'a>(tensors: &'a mut [Tensor], name: &str) -> &'a mut Tensor {
    tensors.iter_mut().find(|t| t.name == name).unwrap()
}

#[test]
fn corrupt_and_foreign_checkpoints_are_errors() {
    let m = NgramModel::train(&[&TINY[..5000]], &NgramConfig { order: 3 }).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let msg = |r: Result<NgramModel, NgramError>| r.unwrap_err().to_string();

    let e = msg(load_edited(&m, &dir, |c, _| c.arch = "transformer".into()));
    assert!(e.contains("architecture is \"transformer\""), "{e}");
    let e = msg(load_edited(&m, &dir, |c, _| c.context = 4));
    assert!(e.contains("config context 4 does not match order 3"), "{e}");
    let e = msg(load_edited(&m, &dir, |c, _| {
        c.architecture = serde_json::json!({"order": 9})
    }));
    assert!(e.contains("invalid n-gram order 9"), "{e}");
    let e = msg(load_edited(&m, &dir, |c, _| {
        c.architecture = serde_json::json!("x")
    }));
    assert!(e.contains("not an n-gram config"), "{e}");
    let e = msg(load_edited(&m, &dir, |_, t| {
        t.retain(|t| t.name != "order2.entropy")
    }));
    assert!(e.ends_with("missing tensor order2.entropy"), "{e}");
    let e = msg(load_edited(&m, &dir, |_, t| {
        let x = tensor(t, "order2.total");
        let TensorData::U32(v) = &x.data else {
            unreachable!()
        };
        x.data = TensorData::F32(v.iter().map(|&c| c as f32).collect());
    }));
    assert!(
        e.ends_with("tensor order2.total has dtype F32 (expected U32)"),
        "{e}"
    );
    let e = msg(load_edited(&m, &dir, |_, t| {
        let x = tensor(t, "order3.entropy");
        let TensorData::F32(v) = &mut x.data else {
            unreachable!()
        };
        v.pop();
        x.shape[0] -= 1;
    }));
    assert!(e.contains("tensor order3.entropy has shape"), "{e}");
    let e = msg(load_edited(&m, &dir, |_, t| {
        let x = tensor(t, "order2.offsets");
        let TensorData::U32(v) = &mut x.data else {
            unreachable!()
        };
        v.swap(3, 4);
    }));
    assert!(
        e.contains("order2.offsets is not strictly increasing"),
        "{e}"
    );
    let e = msg(load_edited(&m, &dir, |_, t| {
        let x = tensor(t, "order3.next_counts");
        let TensorData::U32(v) = &mut x.data else {
            unreachable!()
        };
        v[10] += 1;
    }));
    assert!(e.contains("order3.total at index"), "{e}");
    let e = msg(load_edited(&m, &dir, |_, t| {
        let x = tensor(t, "order2.contexts");
        let TensorData::U64(v) = &mut x.data else {
            unreachable!()
        };
        v.swap(0, 1);
    }));
    assert!(
        e.contains("order2.contexts is not strictly increasing"),
        "{e}"
    );
    let e = msg(load_edited(&m, &dir, |_, t| {
        let x = tensor(t, "discounts");
        let TensorData::F32(v) = &mut x.data else {
            unreachable!()
        };
        v[1] = f32::NAN;
    }));
    assert!(e.contains("discount of order 2"), "{e}");
    let e = msg(load_edited(&m, &dir, |_, t| {
        let x = tensor(t, "order1.entropy");
        let TensorData::F32(v) = &mut x.data else {
            unreachable!()
        };
        v[0] = f32::INFINITY;
    }));
    assert!(e.contains("order1.entropy has an invalid value"), "{e}");
    // A node whose suffix is missing: drop order 2 (keeping shapes consistent: an empty level).
    let e = msg(load_edited(&m, &dir, |_, t| {
        for (name, data) in [
            ("order2.contexts", TensorData::U64(vec![])),
            ("order2.entropy", TensorData::F32(vec![])),
            ("order2.total", TensorData::U32(vec![])),
            ("order2.offsets", TensorData::U32(vec![0])),
            ("order2.next_bytes", TensorData::U8(vec![])),
            ("order2.next_counts", TensorData::U32(vec![])),
        ] {
            let x = tensor(t, name);
            x.shape = vec![data.len()];
            x.data = data;
        }
    }));
    assert!(e.contains("suffix is not in order2"), "{e}");
    // Every message is one line and names the file.
    assert!(!e.contains('\n') && e.contains("model.safetensors"), "{e}");
}

#[test]
fn truncated_and_damaged_files_never_panic() {
    let m = NgramModel::train(&[&TINY[..3000]], &NgramConfig { order: 4 }).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    m.save(&dir, serde_json::Value::Null, None).unwrap();
    let path = dir.join("model.safetensors");
    let good = std::fs::read(&path).unwrap();

    std::fs::write(&path, &good[..good.len() - 7]).unwrap();
    let e = NgramModel::load(&dir).unwrap_err();
    assert!(
        matches!(
            e,
            NgramError::Checkpoint(CheckpointError::CorruptWeights { .. })
        ),
        "{e}"
    );

    // Random byte damage anywhere in the file: an error or a working model, never a panic.
    let config = bltpatch_checkpoint::read_config(&dir).unwrap();
    let mut rng = Rng(99);
    let (mut errors, mut oks) = (0, 0);
    for _ in 0..400 {
        let mut bytes = good.clone();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(bytes.len());
            bytes[i] ^= 1 << rng.below(8);
        }
        match Weights::from_bytes(bytes)
            .map_err(NgramError::from)
            .and_then(|w| NgramModel::from_checkpoint(&config, &w))
        {
            Ok(model) => {
                oks += 1;
                let doc = &TINY[..2000];
                let _ = entropies(&model, doc);
                let _ = surprisals(&model, doc);
            }
            Err(_) => errors += 1,
        }
    }
    assert!(errors > 0 && errors + oks == 400);

    std::fs::remove_file(&path).unwrap();
    let e = NgramModel::load(&dir).unwrap_err();
    assert!(e.to_string().contains("has no model.safetensors"), "{e}");
}
