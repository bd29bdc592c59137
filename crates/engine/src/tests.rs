use bltpatch_checkpoint::{Config, Tensor, Weights, serialize_tensors, write_checkpoint};
use bltpatch_core::{EntropyModel, EntropyStream};
use proptest::prelude::*;

use crate::kernels::{self, LN_256};
use crate::{ConvConfig, ConvModel, EngineError, reference, simd_available};

/// Real text committed with the repository.
const TINY: &[u8] = include_bytes!("../../../datasets/tiny.txt");

fn cfg(
    d: usize,
    f: usize,
    k: usize,
    dilations: &[usize],
    hash_orders: &[usize],
    buckets: usize,
) -> ConvConfig {
    ConvConfig {
        d_model: d,
        d_hidden: f,
        kernel_size: k,
        dilations: dilations.to_vec(),
        hash_orders: hash_orders.to_vec(),
        hash_buckets: buckets,
        norm_eps: 1e-5,
    }
}

/// Small configurations covering kernel sizes 1..3, no / many hash orders, widths that are not
/// multiples of the SIMD width, and one block with a receptive field beyond a batch block.
fn configs() -> Vec<ConvConfig> {
    vec![
        cfg(3, 5, 1, &[1], &[], 0),
        cfg(5, 7, 2, &[1, 2, 4], &[2, 3], 97),
        cfg(8, 16, 3, &[1, 3], &[1, 8], 31),
        cfg(13, 24, 2, &[2, 1, 5], &[2, 3, 4, 6], 64),
        cfg(16, 9, 3, &[1], &[8, 2], 7),
        cfg(4, 8, 2, &[300], &[3], 50),
    ]
}

fn models() -> Vec<ConvModel> {
    configs()
        .into_iter()
        .enumerate()
        .map(|(i, c)| ConvModel::random(c, 100 + i as u64))
        .collect()
}

fn entropies(m: &ConvModel, doc: &[u8], range: std::ops::Range<usize>) -> Vec<f32> {
    let mut out = vec![0f32; range.len()];
    m.entropies(doc, range, &mut out);
    out
}

fn surprisals(m: &ConvModel, doc: &[u8], range: std::ops::Range<usize>) -> Vec<f32> {
    let mut out = vec![0f32; range.len()];
    m.surprisals(doc, range, &mut out);
    out
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn streamed(m: &ConvModel, doc: &[u8]) -> Vec<f32> {
    let mut s = m.stream();
    doc.iter()
        .map(|&b| {
            let h = s.entropy();
            s.push(b);
            h
        })
        .collect()
}

fn text(start: usize, len: usize) -> &'static [u8] {
    let start = start % (TINY.len() - len);
    &TINY[start..start + len]
}

#[test]
fn batch_matches_reference() {
    for m in models() {
        for doc in [
            text(0, 700),
            text(51_234, 333),
            &[0u8, 255, 7, 7, 7][..],
            b"a",
        ] {
            let n = doc.len();
            assert_eq!(
                bits(&entropies(&m, doc, 0..n)),
                bits(&reference::entropies(&m, doc, 0..n)),
                "{:?}",
                m.config()
            );
            assert_eq!(
                bits(&surprisals(&m, doc, 0..n)),
                bits(&reference::surprisals(&m, doc, 0..n))
            );
        }
    }
}

#[test]
fn tiny_preset_matches_reference() {
    let m = ConvModel::random(ConvConfig::preset("tiny").unwrap(), 1);
    let doc = text(9_000, 400);
    assert_eq!(
        bits(&entropies(&m, doc, 0..400)),
        bits(&reference::entropies(&m, doc, 0..400))
    );
    assert_eq!(
        bits(&entropies(&m, doc, 150..400)),
        bits(&reference::entropies(&m, doc, 150..400))
    );
}

#[test]
fn portable_matches_simd() {
    if !simd_available() {
        eprintln!("no AVX2+FMA on this CPU: the portable path is the only one");
        return;
    }
    let tiny = ConvModel::random(ConvConfig::preset("tiny").unwrap(), 3);
    for m in models().into_iter().chain([tiny]) {
        assert!(m.uses_simd());
        let p = m.clone().portable();
        assert!(!p.uses_simd());
        let doc = text(77_777, 900);
        assert_eq!(
            bits(&entropies(&m, doc, 0..900)),
            bits(&entropies(&p, doc, 0..900))
        );
        assert_eq!(
            bits(&entropies(&m, doc, 400..900)),
            bits(&entropies(&p, doc, 400..900))
        );
        assert_eq!(
            bits(&surprisals(&m, doc, 0..900)),
            bits(&surprisals(&p, doc, 0..900))
        );
        assert_eq!(
            bits(&streamed(&m, &doc[..300])),
            bits(&streamed(&p, &doc[..300]))
        );
    }
}

#[test]
fn streaming_matches_batch() {
    for m in models() {
        for doc in [text(1_000, 800), &[9u8; 40][..]] {
            assert_eq!(
                bits(&streamed(&m, doc)),
                bits(&entropies(&m, doc, 0..doc.len()))
            );
        }
    }
}

#[test]
fn stream_push_without_entropy_and_reset() {
    let m = ConvModel::random(cfg(5, 7, 2, &[1, 2, 4], &[2, 3], 97), 5);
    let doc = text(2_000, 300);
    let h = entropies(&m, doc, 0..300);
    let mut s = m.conv_stream();
    s.push_slice(b"some other document first");
    s.reset();
    for (i, &b) in doc.iter().enumerate() {
        // Ask only every third entropy, twice.
        if i % 3 == 0 {
            assert_eq!(s.entropy().to_bits(), h[i].to_bits());
            assert_eq!(s.entropy().to_bits(), h[i].to_bits());
        }
        s.push(b);
    }
    assert_eq!(s.position(), 300);
}

#[test]
fn long_range_crosses_blocks() {
    let m = ConvModel::random(cfg(5, 6, 3, &[1, 7, 2], &[2, 5], 41), 9);
    let doc = text(33_000, 2_000);
    let whole = entropies(&m, doc, 0..2_000);
    assert_eq!(bits(&whole), bits(&reference::entropies(&m, doc, 0..2_000)));
    for (a, b) in [
        (0, 257),
        (255, 1_300),
        (511, 512),
        (1_000, 2_000),
        (1_999, 2_000),
    ] {
        assert_eq!(
            bits(&entropies(&m, doc, a..b)),
            bits(&whole[a..b]),
            "{a}..{b}"
        );
    }
}

#[test]
fn entropies_in_range() {
    assert_eq!(LN_256.to_bits(), libm::logf(256.0).to_bits());
    for m in models()
        .into_iter()
        .chain([ConvModel::random(ConvConfig::preset("small").unwrap(), 2)])
    {
        let doc = text(60_000, 1_000);
        for h in entropies(&m, doc, 0..1_000) {
            assert!((0.0..=LN_256).contains(&h), "{h}");
        }
        for s in surprisals(&m, doc, 0..1_000) {
            assert!(s >= 0.0 && s.is_finite(), "{s}");
        }
    }
    // Entropies spread: the random models are not degenerate.
    let m = ConvModel::random(ConvConfig::preset("tiny").unwrap(), 4);
    let h = entropies(&m, text(0, 2_000), 0..2_000);
    let (lo, hi) = h
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    assert!(lo < 3.0 && hi > 4.0, "{lo} {hi}");
}

#[test]
fn bounded_context() {
    for m in models() {
        let c = m.context();
        let doc = text(44_444, 3 * c + 50).to_vec();
        let h = entropies(&m, &doc, 0..doc.len());
        let mut changed_inside = 0;
        for i in (c + 1..doc.len()).step_by(7) {
            // Outside the context: x[.. i - C) may be anything.
            let mut other = doc.clone();
            for b in &mut other[..i - c] {
                *b = b.wrapping_mul(31).wrapping_add(17);
            }
            assert_eq!(entropies(&m, &other, i..i + 1)[0].to_bits(), h[i].to_bits());
            assert_eq!(streamed(&m, &other[..=i])[i].to_bits(), h[i].to_bits());
            // The oldest byte of the context matters.
            let mut inside = doc.clone();
            inside[i - c] ^= 0x55;
            if entropies(&m, &inside, i..i + 1)[0].to_bits() != h[i].to_bits() {
                changed_inside += 1;
            }
        }
        assert!(changed_inside > 0, "{:?}", m.config());
    }
}

#[test]
fn expf_vector_matches_libm() {
    if !simd_available() {
        return;
    }
    // Inside the vector domain [-80, 80] (every chunk of 8 takes the vector path).
    let mut inside: Vec<f32> = Vec::new();
    // Every branch boundary of expf.
    for b in [0x3f85_1592u32, 0x3eb1_7218, 0x3900_0000, 0x42a0_0000] {
        for db in 0..4 {
            for s in [0, 0x8000_0000u32] {
                inside.push(f32::from_bits((b + db - 2) | s));
            }
        }
    }
    inside.extend([0.0, -0.0, 1.0, -1.0, 80.0, -80.0, 1e-30, -1e-30]);
    // Inputs where `INV_LN2 · x ± 0.5` lies next to an integer (once caught a wrong constant).
    for b in [
        0x4115_b844u32,
        0x412b_e687,
        0x4163_5a2e,
        0xc120_cf65,
        0xc136_fda8,
        0xc297_cc9a,
    ] {
        inside.push(f32::from_bits(b));
    }
    let mut state = 12345u64;
    for _ in 0..200_000 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let u = (state >> 40) as f32 / (1u64 << 24) as f32;
        inside.push(-80.0 * u);
        inside.push(f32::from_bits((state >> 32) as u32 & 0xbfff_ffff)); // |x| < 2
    }
    // Mixed with values outside, which take the scalar path.
    let mut mixed = inside[..4_000].to_vec();
    for (i, x) in [80.000_01, -87.0, -104.0, 100.0, f32::NAN, f32::NEG_INFINITY]
        .iter()
        .enumerate()
    {
        mixed[i * 37 + 5] = *x;
    }
    for xs in [inside, mixed] {
        let mut fast = vec![0f32; xs.len()];
        kernels::exp_row(true, &xs, &mut fast);
        for (x, y) in xs.iter().zip(&fast) {
            assert_eq!(y.to_bits(), libm::expf(*x).to_bits(), "expf({x:e})");
        }
    }
}

/// `a·b + c` correctly rounded, computed independently of `libm::fmaf` (for operands whose
/// result neither overflows nor underflows).
fn exact_fmaf(a: f32, b: f32, c: f32) -> f32 {
    let p = a as f64 * b as f64; // exact: 48 significant bits
    let s = p + c as f64;
    let z = s - p;
    let e = (p - (s - z)) + (c as f64 - z); // s + e == p + c exactly (TwoSum)
    let r = s as f32;
    if e == 0.0 || r as f64 == s {
        return r;
    }
    let other = if (r as f64) < s {
        r.next_up()
    } else {
        r.next_down()
    };
    if (r as f64 + other as f64) * 0.5 != s {
        return r; // s is not a midpoint: rounding s rounds p + c
    }
    // s is a midpoint and the exact value lies on the side of e.
    if (e > 0.0) == (other > r) { other } else { r }
}

#[test]
fn libm_fmaf_is_correctly_rounded() {
    let mut state = 777u64;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let m = (state >> 41) as u32 & 0x7f_ffff;
        let e = 100 + (state >> 33) as u32 % 56;
        let s = ((state >> 32) as u32 & 1) << 31;
        f32::from_bits(s | (e << 23) | m)
    };
    for _ in 0..300_000 {
        let (a, b) = (next(), next());
        // Make c close to -a·b sometimes, for cancellation and midpoints.
        let c = if a.to_bits() % 3 == 0 {
            -(a * b) + next() * 1e-3
        } else {
            next()
        };
        assert_eq!(
            libm::fmaf(a, b, c).to_bits(),
            exact_fmaf(a, b, c).to_bits(),
            "{a} {b} {c}"
        );
    }
}

#[test]
fn checkpoint_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    let m = ConvModel::random(cfg(13, 24, 2, &[2, 1, 5], &[2, 3, 4, 6], 64), 11);
    write_checkpoint(&dir, &m.checkpoint_config(), &m.to_checkpoint_tensors()).unwrap();
    let loaded = ConvModel::load(&dir).unwrap();
    assert_eq!(loaded.config(), m.config());
    let doc = text(5_000, 500);
    assert_eq!(
        bits(&entropies(&m, doc, 0..500)),
        bits(&entropies(&loaded, doc, 0..500))
    );
    let (config, weights) = bltpatch_checkpoint::read_checkpoint(&dir).unwrap();
    assert_eq!(config.context, m.context());
    let again = ConvModel::from_checkpoint(&config, &weights).unwrap();
    assert_eq!(again.tensor("head.bias"), m.tensor("head.bias"));
}

fn load_err(config: &Config, tensors: &[Tensor]) -> String {
    let weights = Weights::from_bytes(serialize_tensors(tensors).unwrap()).unwrap();
    let err = ConvModel::from_checkpoint(config, &weights).unwrap_err();
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    msg
}

#[test]
fn loader_errors() {
    let m = ConvModel::random(cfg(5, 7, 2, &[1, 2], &[2, 3], 97), 1);
    let config = m.checkpoint_config();
    let tensors = m.to_checkpoint_tensors();

    let mut wrong_arch = config.clone();
    wrong_arch.arch = "ngram".into();
    assert!(load_err(&wrong_arch, &tensors).contains("architecture is \"ngram\""));

    let mut bad_cfg = config.clone();
    bad_cfg.architecture["kernel_size"] = 0.into();
    assert!(load_err(&bad_cfg, &tensors).contains("invalid"));
    let mut bad_json = config.clone();
    bad_json.architecture = serde_json::json!({ "d_model": 5 });
    assert!(load_err(&bad_json, &tensors).contains("invalid"));

    let mut ctx = config.clone();
    ctx.context += 1;
    let msg = load_err(&ctx, &tensors);
    assert!(
        msg.contains("context is 7 bytes") && msg.contains("is 6"),
        "{msg}"
    );

    let missing: Vec<Tensor> = tensors
        .iter()
        .filter(|t| t.name != "blocks.1.proj.bias")
        .cloned()
        .collect();
    assert!(load_err(&config, &missing).contains("missing tensor blocks.1.proj.bias"));

    let mut shape = tensors.clone();
    let t = shape
        .iter_mut()
        .find(|t| t.name == "blocks.0.conv.weight")
        .unwrap();
    t.shape = vec![7, 2, 5];
    let msg = load_err(&config, &shape);
    assert!(
        msg.contains("blocks.0.conv.weight has shape [7, 2, 5] (expected [7, 5, 2])"),
        "{msg}"
    );

    let mut nan = tensors.clone();
    let t = nan.iter_mut().find(|t| t.name == "head.weight").unwrap();
    let mut data = m.tensor("head.weight").unwrap().to_vec();
    data[17] = f32::NAN;
    *t = Tensor::f32("head.weight", t.shape.clone(), data);
    assert!(
        load_err(&config, &nan).contains("head.weight holds a non-finite value (NaN) at index 17")
    );

    let err = ConvModel::from_tensors(m.config().clone(), |name, shape| {
        let n: usize = shape.iter().product();
        Ok(vec![0.5; if name == "norm.gamma" { n + 1 } else { n }])
    })
    .unwrap_err();
    assert!(matches!(err, EngineError::WrongSize { .. }), "{err}");
}

#[test]
fn extreme_logits() {
    // Logits spread far beyond the vector `expf`'s domain, and entropies near 0.
    let base = ConvModel::random(cfg(8, 16, 2, &[1, 2], &[2], 13), 21);
    let m = ConvModel::from_tensors(base.config().clone(), |name, _| {
        let t = base.tensor(name).unwrap();
        let scale = if name.starts_with("head.") { 60.0 } else { 1.0 };
        Ok(t.iter().map(|x| x * scale).collect())
    })
    .unwrap();
    let doc = text(70_000, 600);
    let h = entropies(&m, doc, 0..600);
    assert_eq!(bits(&h), bits(&reference::entropies(&m, doc, 0..600)));
    assert_eq!(
        bits(&surprisals(&m, doc, 0..600)),
        bits(&reference::surprisals(&m, doc, 0..600))
    );
    assert_eq!(bits(&streamed(&m, doc)), bits(&h));
    assert!(h.iter().any(|&x| x < 0.01), "{h:?}");
    assert!(h.iter().all(|&x| (0.0..=LN_256).contains(&x)));
    if simd_available() {
        let p = m.clone().portable();
        assert_eq!(bits(&entropies(&p, doc, 0..600)), bits(&h));
    }
}

#[test]
fn empty_ranges_and_tiny_docs() {
    let m = ConvModel::random(cfg(3, 5, 1, &[1], &[], 0), 0);
    let mut out: [f32; 0] = [];
    m.entropies(b"", 0..0, &mut out);
    m.entropies(b"abc", 2..2, &mut out);
    let h = entropies(&m, b"x", 0..1);
    assert_eq!(h[0].to_bits(), m.stream().entropy().to_bits());
}

fn arb_config() -> impl Strategy<Value = ConvConfig> {
    (
        1usize..10,
        1usize..12,
        1usize..4,
        proptest::collection::vec(1usize..6, 1..4),
        proptest::collection::vec(1usize..9, 0..4),
        1usize..40,
    )
        .prop_map(|(d, f, k, dil, orders, buckets)| cfg(d, f, k, &dil, &orders, buckets))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sub_ranges_match_whole_document_random_bytes(
        c in arb_config(),
        seed in any::<u64>(),
        doc in proptest::collection::vec(any::<u8>(), 1..600),
        cuts in proptest::collection::vec(any::<usize>(), 2),
    ) {
        let m = ConvModel::random(c, seed);
        let n = doc.len();
        let whole = entropies(&m, &doc, 0..n);
        prop_assert_eq!(bits(&whole), bits(&reference::entropies(&m, &doc, 0..n)));
        let (a, b) = (cuts[0] % (n + 1), cuts[1] % (n + 1));
        let (a, b) = (a.min(b), a.max(b));
        prop_assert_eq!(bits(&entropies(&m, &doc, a..b)), bits(&whole[a..b]));
        prop_assert_eq!(bits(&streamed(&m, &doc)), bits(&whole));
    }

    #[test]
    fn sub_ranges_match_whole_document_real_text(
        start in 0usize..TINY.len(),
        len in 1usize..1_500,
        cuts in proptest::collection::vec(any::<usize>(), 2),
        which in 0usize..6,
    ) {
        let m = ConvModel::random(configs()[which].clone(), which as u64);
        let doc = text(start, len);
        let whole = entropies(&m, doc, 0..len);
        let (a, b) = (cuts[0] % (len + 1), cuts[1] % (len + 1));
        let (a, b) = (a.min(b), a.max(b));
        prop_assert_eq!(bits(&entropies(&m, doc, a..b)), bits(&whole[a..b]));
        prop_assert_eq!(bits(&surprisals(&m, doc, a..b)), bits(&surprisals(&m, doc, 0..len)[a..b]));
    }
}

/// Every `f32` in `[-80, 80]` (about 2.2e9 values): the vector `expf` equals `libm::expf`.
/// Slow in a debug build; run with `cargo test --release -p bltpatch-engine -- --ignored`.
#[test]
#[ignore]
fn expf_vector_matches_libm_exhaustively() {
    if !simd_available() {
        return;
    }
    let lim = 80f32.to_bits();
    let mut xs = vec![0f32; 1 << 20];
    let mut ys = vec![0f32; 1 << 20];
    for sign in [0u32, 0x8000_0000] {
        let mut b = 0u32;
        while b <= lim {
            let n = ((lim - b + 1) as usize).min(1 << 20);
            for (k, x) in xs[..n].iter_mut().enumerate() {
                *x = f32::from_bits((b + k as u32) | sign);
            }
            kernels::exp_row(true, &xs[..n], &mut ys[..n]);
            for (x, y) in xs[..n].iter().zip(&ys[..n]) {
                assert_eq!(y.to_bits(), libm::expf(*x).to_bits(), "expf({x:e})");
            }
            b += n as u32;
        }
    }
}
