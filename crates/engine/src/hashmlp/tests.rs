use bltpatch_checkpoint::{Tensor, Weights, serialize_tensors, write_checkpoint};
use bltpatch_core::{EntropyModel, EntropyStream};
use proptest::prelude::*;

use super::arch::{MAX_ORDER, key, multiplier, rows_at, spread};
use super::{HashMlpConfig, HashMlpModel, reference};
use crate::kernels::LN_256;
use crate::simd_available;

/// Real text committed with the repository.
const TINY: &[u8] = include_bytes!("../../../../datasets/tiny.txt");

fn cfg(orders: &[usize], bits: &[u32], d: usize, h: usize, g: usize) -> HashMlpConfig {
    HashMlpConfig {
        orders: orders.to_vec(),
        masks: Vec::new(),
        rows: orders
            .iter()
            .zip(bits)
            .map(|(&n, &b)| if n == 1 { 257 } else { 1 << b })
            .collect(),
        d_model: d,
        d_hidden: h,
        entropy_hidden: g,
        norm_eps: 1e-5,
        escape: false,
    }
}

/// `c` with an escape logit.
fn escaped(mut c: HashMlpConfig) -> HashMlpConfig {
    c.escape = true;
    c
}

/// `c` with the byte masks `masks`.
fn masked(mut c: HashMlpConfig, masks: &[u8]) -> HashMlpConfig {
    c.masks = masks.to_vec();
    c
}

/// Small configurations: one table or many, orders out of sequence, widths that are not
/// multiples of the SIMD width, every specialised and a generic entropy width, tiny tables
/// (collisions everywhere), tables of byte classes (masked keys) beside whole-byte ones.
fn configs() -> Vec<HashMlpConfig> {
    vec![
        cfg(&[1], &[0], 3, 5, 8),
        cfg(&[2], &[1], 8, 8, 16),
        cfg(&[1, 2, 3, 4, 6], &[0, 6, 8, 8, 8], 13, 20, 16),
        cfg(&[8, 1, 5], &[10, 0, 4], 16, 9, 24),
        cfg(
            &[1, 2, 3, 4, 5, 6, 7, 8],
            &[0, 3, 4, 5, 6, 7, 8, 9],
            7,
            11,
            32,
        ),
        cfg(&[3, 2], &[7, 5], 5, 6, 40),
        masked(
            cfg(
                &[1, 2, 3, 4, 5, 6, 8, 8],
                &[0, 5, 6, 7, 8, 9, 10, 9],
                9,
                10,
                8,
            ),
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xe0],
        ),
        masked(
            cfg(&[4, 1, 4, 2, 7], &[6, 0, 5, 4, 8], 6, 7, 16),
            &[0xe0, 0xff, 0xff, 0xc0, 0xf0],
        ),
        escaped(cfg(&[1, 2, 3], &[0, 6, 8], 5, 9, 8)),
        escaped(masked(
            cfg(&[1, 2, 4, 4], &[0, 7, 8, 6], 12, 17, 16),
            &[0xff, 0xff, 0xff, 0xe0],
        )),
    ]
}

fn models() -> Vec<HashMlpModel> {
    configs()
        .into_iter()
        .enumerate()
        .map(|(i, c)| HashMlpModel::random(c, 300 + i as u64))
        .collect()
}

fn entropies(m: &HashMlpModel, doc: &[u8], range: std::ops::Range<usize>) -> Vec<f32> {
    let mut out = vec![0f32; range.len()];
    m.entropies(doc, range, &mut out);
    out
}

fn surprisals(m: &HashMlpModel, doc: &[u8], range: std::ops::Range<usize>) -> Vec<f32> {
    let mut out = vec![0f32; range.len()];
    m.surprisals(doc, range, &mut out);
    out
}

fn dist(m: &HashMlpModel, doc: &[u8], range: std::ops::Range<usize>) -> Vec<f32> {
    let mut out = vec![0f32; range.len()];
    m.distribution_entropies(doc, range, &mut out);
    out
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn streamed(m: &HashMlpModel, doc: &[u8]) -> Vec<f32> {
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
    for m in models().into_iter().chain([HashMlpModel::random(
        HashMlpConfig::preset("tiny").unwrap(),
        1,
    )]) {
        for doc in [
            text(0, 600),
            text(51_234, 333),
            text(80_000, 300),
            &[0u8, 255, 7, 7, 7, 7, 7, 7, 7, 7, 7, 1][..],
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
            assert_eq!(
                bits(&dist(&m, doc, 0..n)),
                bits(&reference::distribution_entropies(&m, doc, 0..n))
            );
        }
    }
}

/// The next-byte distribution of the last position of `prefix + [b]` over every `b`: the
/// probabilities `exp(-surprisal)`, `[256]`.
fn next_byte_probs(m: &HashMlpModel, prefix: &[u8]) -> Vec<f64> {
    (0..=255u8)
        .map(|b| {
            let mut doc = prefix.to_vec();
            doc.push(b);
            let n = doc.len();
            (-(surprisals(m, &doc, n - 1..n)[0] as f64)).exp()
        })
        .collect()
}

/// `m`'s configuration with the weights `tensors`, through a checkpoint's bytes.
fn load_from(m: &HashMlpModel, tensors: Vec<Tensor>) -> HashMlpModel {
    let w = Weights::from_bytes(serialize_tensors(&tensors).unwrap()).unwrap();
    HashMlpModel::from_checkpoint(&m.checkpoint_config(), &w).unwrap()
}

#[test]
fn escape_mixes_the_softmax_with_the_uniform_distribution() {
    let doc = text(4_321, 40);
    for c in configs() {
        let m = HashMlpModel::random(c, 11);
        for prefix in [&doc[..0], &doc[..3], doc] {
            let p = next_byte_probs(&m, prefix);
            let total: f64 = p.iter().sum();
            assert!((total - 1.0).abs() < 1e-4, "{total} {:?}", m.config());
            // The entropy of the same distribution, computed from the probabilities.
            let h: f64 = -p.iter().map(|&x| x * x.ln()).sum::<f64>();
            let mut full = prefix.to_vec();
            full.push(0);
            let n = full.len();
            let d = dist(&m, &full, n - 1..n)[0] as f64;
            assert!((d - h.min(256f64.ln())).abs() < 1e-3, "{d} {h}");
            if m.config().escape {
                // Every byte keeps at least the escape's share of probability.
                assert!(p.iter().all(|&x| x > 0.0));
            }
        }
    }
    // An escape logit far above the others gives the uniform distribution: 8 bits for any
    // byte, ln 256 nats of entropy.
    let mut c = escaped(cfg(&[1, 2], &[0, 6], 4, 6, 8));
    let m = HashMlpModel::random(c.clone(), 2);
    let mut tensors: Vec<Tensor> = m.to_checkpoint_tensors();
    for t in &mut tensors {
        if t.name == "escape.bias" {
            *t = Tensor::f32("escape.bias", vec![1], vec![1e3]);
        }
    }
    let m = load_from(&m, tensors);
    let s = surprisals(&m, doc, 0..doc.len());
    assert!(s.iter().all(|&x| (x - LN_256).abs() < 1e-5), "{s:?}");
    assert!(
        dist(&m, doc, 0..doc.len())
            .iter()
            .all(|&x| (x - LN_256).abs() < 1e-5)
    );
    // Older configurations have no escape and serialise without the field.
    c.escape = false;
    assert!(!serde_json::to_string(&c).unwrap().contains("escape"));
    c.escape = true;
    let json = serde_json::to_string(&c).unwrap();
    assert!(json.contains("\"escape\":true"));
    assert_eq!(serde_json::from_str::<HashMlpConfig>(&json).unwrap(), c);
}

#[test]
fn quantized_tables_match_the_reference_fold() {
    for m in models() {
        let (d, g) = (m.config().d_model, m.config().entropy_hidden);
        let w = m.tensor("entropy.proj.weight").unwrap();
        let step = m.quantum() as f64;
        let mut max = 0f32;
        let mut used = 0;
        for j in 0..m.config().orders.len() {
            let e = m.tensor(&format!("tables.{j}.weight")).unwrap();
            let q = m.quantized_table(j);
            for r in 0..m.config().rows[j] {
                for o in 0..g {
                    let mut acc = 0f32;
                    for i in 0..d {
                        acc = libm::fmaf(w[i * g + o], e[r * d + i], acc);
                    }
                    max = max.max(acc.abs());
                    let want = (acc as f64 / step).round_ties_even();
                    assert_eq!(want, q[r * g + o] as f64);
                    // The step is as fine as the largest value allows, never coarser.
                    assert!((acc as f64 - want * step).abs() <= step / 2.0);
                    used = used.max(q[r * g + o].unsigned_abs());
                }
            }
        }
        assert_eq!(m.quantum(), 2f32.powi(super::quant_exponent(max)));
        assert!((2048..=4095).contains(&used), "{used}");
    }
    assert_eq!(super::quant_exponent(0.0), 0);
    assert_eq!(super::quant_exponent(4095.0), 0);
    assert_eq!(super::quant_exponent(4095.5), 1);
    assert_eq!(super::quant_exponent(2047.5), -1);
    assert_eq!(super::quant_exponent(2047.0), -1);
}

#[test]
fn portable_matches_simd() {
    if !simd_available() {
        eprintln!("no AVX2+FMA on this CPU: the portable path is the only one");
        return;
    }
    let tiny = HashMlpModel::random(HashMlpConfig::preset("tiny").unwrap(), 3);
    for m in models().into_iter().chain([tiny]) {
        assert!(m.uses_simd());
        let p = m.clone().portable();
        assert!(!p.uses_simd());
        assert_eq!(m.quantum(), p.quantum());
        for j in 0..m.config().orders.len() {
            assert_eq!(m.quantized_table(j), p.quantized_table(j));
        }
        let doc = text(77_777, 1_500);
        for range in [0..1_500, 400..1_500, 3..4] {
            assert_eq!(
                bits(&entropies(&m, doc, range.clone())),
                bits(&entropies(&p, doc, range.clone()))
            );
            assert_eq!(
                bits(&surprisals(&m, doc, range.clone())),
                bits(&surprisals(&p, doc, range))
            );
        }
        assert_eq!(
            bits(&streamed(&m, &doc[..300])),
            bits(&streamed(&p, &doc[..300]))
        );
    }
}

#[test]
fn streaming_matches_batch() {
    for m in models() {
        for doc in [text(1_000, 800), &[9u8; 40][..], b"ab"] {
            assert_eq!(
                bits(&streamed(&m, doc)),
                bits(&entropies(&m, doc, 0..doc.len()))
            );
        }
    }
}

#[test]
fn stream_push_without_entropy_and_reset() {
    let m = HashMlpModel::random(HashMlpConfig::preset("tiny").unwrap(), 5);
    let doc = text(2_000, 300);
    let h = entropies(&m, doc, 0..300);
    let mut s = m.hashmlp_stream();
    for &b in b"some other document first" {
        s.push(b);
    }
    s.reset();
    for (i, &b) in doc.iter().enumerate() {
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
    let m = &models()[2];
    let doc = text(33_000, 2_000);
    let whole = entropies(m, doc, 0..2_000);
    assert_eq!(bits(&whole), bits(&reference::entropies(m, doc, 0..2_000)));
    let sur = surprisals(m, doc, 0..2_000);
    for (a, b) in [
        (0, 257),
        (5, 9),
        (255, 1_300),
        (511, 512),
        (1_000, 2_000),
        (1_999, 2_000),
    ] {
        assert_eq!(
            bits(&entropies(m, doc, a..b)),
            bits(&whole[a..b]),
            "{a}..{b}"
        );
        assert_eq!(bits(&surprisals(m, doc, a..b)), bits(&sur[a..b]));
    }
}

#[test]
fn entropies_and_surprisals_in_range() {
    assert_eq!(LN_256.to_bits(), libm::logf(256.0).to_bits());
    for m in models() {
        let doc = text(60_000, 1_000);
        for h in entropies(&m, doc, 0..1_000)
            .into_iter()
            .chain(dist(&m, doc, 0..1_000))
        {
            assert!((0.0..=LN_256).contains(&h), "{h}");
        }
        for s in surprisals(&m, doc, 0..1_000) {
            assert!(s >= 0.0 && s.is_finite(), "{s}");
        }
    }
    // Entropies spread: the random models are not degenerate.
    let m = HashMlpModel::random(HashMlpConfig::preset("tiny").unwrap(), 4);
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
        for i in (c + 1..doc.len()).step_by(3) {
            let mut other = doc.clone();
            for b in &mut other[..i - c] {
                *b = b.wrapping_mul(31).wrapping_add(17);
            }
            assert_eq!(entropies(&m, &other, i..i + 1)[0].to_bits(), h[i].to_bits());
            assert_eq!(streamed(&m, &other[..=i])[i].to_bits(), h[i].to_bits());
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
fn rows_follow_the_definition() {
    let c = cfg(&[1, 2, 8, 3], &[0, 5, 12, 7], 4, 4, 8);
    let doc = b"0123456789abcdef";
    let mut rows = [0u32; 4];
    rows_at(&c, 0, &[], &mut rows);
    assert_eq!(rows[0], 256);
    for t in 1..doc.len() {
        let prev = &doc[t.saturating_sub(MAX_ORDER)..t];
        rows_at(&c, t, prev, &mut rows);
        assert_eq!(rows[0], doc[t - 1] as u32);
        for (j, (&n, &r)) in c.orders.iter().zip(&c.rows).enumerate().skip(1) {
            let m = t.min(n);
            let mut k = 0u64;
            for i in 0..m {
                k |= (doc[t - 1 - i] as u64) << (8 * i);
            }
            assert_eq!(k, key(prev, m));
            let bits = r.trailing_zeros();
            let want = (k.wrapping_mul(multiplier(j, m)) >> (64 - bits)) as u32;
            assert_eq!(rows[j], want, "t {t} order {n}");
        }
    }
    // A key of fewer bytes than the order (the start of a document) is hashed with another
    // multiplier than the full key of the same value.
    assert_ne!(multiplier(1, 1), multiplier(1, 2));
    assert!((0..8).all(|j| (0..=8).all(|m| multiplier(j, m) & 1 == 1)));
}

#[test]
fn masked_rows_read_byte_classes() {
    // Table 1 reads the top three bits of the last 3 bytes, table 2 the whole 3 bytes.
    let c = masked(cfg(&[1, 3, 3], &[0, 12, 12], 4, 4, 8), &[0xff, 0xe0, 0xff]);
    c.validate().unwrap();
    assert_eq!(spread(0xe0, 3), 0x00e0_e0e0);
    assert_eq!(spread(0xff, 8), u64::MAX);
    assert_eq!(spread(0xff, 0), 0);
    let rows = |doc: &[u8]| {
        let mut r = [0u32; 3];
        rows_at(&c, doc.len(), &doc[doc.len().saturating_sub(8)..], &mut r);
        r
    };
    // "aby" and "acx" have the same classes (lower-case ASCII), "aBx" does not.
    let (a, b, d) = (rows(b"__aby"), rows(b"__acx"), rows(b"__aBx"));
    assert_eq!(a[1], b[1]);
    assert_ne!(a[2], b[2]);
    assert_ne!(a[1], d[1]);
    let k = key(b"aBx", 3) & spread(0xe0, 3);
    let want = (k.wrapping_mul(multiplier(1, 3)) >> (64 - 12)) as u32;
    assert_eq!(d[1], want);
    // The fast rows (positions >= 8) agree with the definition for every table.
    let m = HashMlpModel::random(c.clone(), 9);
    let doc = text(0, 600);
    let mut fast = vec![0u32; 3 * 590];
    crate::hashmlp::forward::block_rows(&m, doc, 10, 590, &mut fast);
    assert_eq!(fast, crate::hashmlp::arch::inputs(&c, doc, 10, 600));
}

#[test]
fn invalid_masks_are_refused() {
    let base = cfg(&[1, 4, 4], &[0, 8, 8], 4, 4, 8);
    assert!(base.validate().unwrap_err().contains("listed twice"));
    assert!(masked(base.clone(), &[0xff, 0xff, 0xe0]).validate().is_ok());
    let e = masked(base.clone(), &[0xff, 0xe0]).validate().unwrap_err();
    assert!(e.contains("3 orders but 2 byte masks"), "{e}");
    let e = masked(base.clone(), &[0xe0, 0xff, 0xe0])
        .validate()
        .unwrap_err();
    assert!(e.contains("order 1 reads whole bytes"), "{e}");
    let e = masked(base, &[0xff, 0xff, 0x00]).validate().unwrap_err();
    assert!(e.contains("nonzero"), "{e}");
    let nine = cfg(
        &[1, 2, 3, 4, 5, 6, 7, 8, 8],
        &[0, 4, 4, 4, 4, 4, 4, 4, 4],
        4,
        4,
        8,
    );
    let e = masked(
        nine,
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xe0],
    )
    .validate()
    .unwrap_err();
    assert!(e.contains("9 tables, more than 8"), "{e}");
}

#[test]
fn configs_without_masks_serialize_as_before() {
    let c = cfg(&[1, 2], &[0, 4], 4, 4, 8);
    let json = serde_json::to_value(&c).unwrap();
    assert!(json.get("masks").is_none(), "{json}");
    let back: HashMlpConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, c);
    let m = masked(cfg(&[1, 2], &[0, 4], 4, 4, 8), &[0xff, 0xe0]);
    let back: HashMlpConfig = serde_json::from_value(serde_json::to_value(&m).unwrap()).unwrap();
    assert_eq!(back, m);
}

#[test]
fn checkpoint_round_trip_with_f16_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    let m = models().swap_remove(2);
    let tensors = m.to_checkpoint_tensors();
    for t in &tensors {
        let want = if t.name.starts_with("tables.") {
            "F16"
        } else {
            "F32"
        };
        assert_eq!(t.data.dtype_name(), want, "{}", t.name);
    }
    write_checkpoint(&dir, &m.checkpoint_config(), &tensors).unwrap();
    let loaded = HashMlpModel::load(&dir).unwrap();
    assert_eq!(loaded.config(), m.config());
    let doc = text(5_000, 500);
    assert_eq!(
        bits(&entropies(&m, doc, 0..500)),
        bits(&entropies(&loaded, doc, 0..500))
    );
    assert_eq!(
        bits(&surprisals(&m, doc, 0..500)),
        bits(&surprisals(&loaded, doc, 0..500))
    );
    // Tables that are not binary16 numbers are stored as F32, exactly.
    let mut t = tensors.clone();
    t[0] = Tensor::f32(
        "tables.0.weight",
        t[0].shape.clone(),
        m.tensor("tables.0.weight")
            .unwrap()
            .iter()
            .map(|x| x + 1e-4)
            .collect(),
    );
    let w = Weights::from_bytes(serialize_tensors(&t).unwrap()).unwrap();
    let f32_tables = HashMlpModel::from_checkpoint(&m.checkpoint_config(), &w).unwrap();
    assert_eq!(
        f32_tables.to_checkpoint_tensors()[0].data.dtype_name(),
        "F32"
    );
}

#[test]
fn loader_errors() {
    let m = models().swap_remove(2);
    let config = m.checkpoint_config();
    let tensors = m.to_checkpoint_tensors();
    let err = |config: &bltpatch_checkpoint::Config, tensors: &[Tensor]| {
        let w = Weights::from_bytes(serialize_tensors(tensors).unwrap()).unwrap();
        let msg = HashMlpModel::from_checkpoint(config, &w)
            .unwrap_err()
            .to_string();
        assert!(!msg.contains('\n'), "{msg}");
        msg
    };
    let mut wrong = config.clone();
    wrong.arch = "conv".into();
    let msg = err(&wrong, &tensors);
    assert!(
        msg.contains("\"conv\"") && msg.contains("\"hashmlp\""),
        "{msg}"
    );
    let mut bad = config.clone();
    bad.architecture["entropy_hidden"] = 12.into();
    assert!(err(&bad, &tensors).contains("multiple of 8"));
    let mut bad = config.clone();
    bad.architecture["rows"][1] = 100.into();
    assert!(err(&bad, &tensors).contains("power of two"));
    let mut ctx = config.clone();
    ctx.context = 9;
    assert!(err(&ctx, &tensors).contains("context is 9 bytes"));
    let missing: Vec<Tensor> = tensors
        .iter()
        .filter(|t| t.name != "entropy.out.bias")
        .cloned()
        .collect();
    assert!(err(&config, &missing).contains("missing tensor entropy.out.bias"));
    let mut nan = tensors.clone();
    let i = nan.iter().position(|t| t.name == "hidden.bias").unwrap();
    nan[i] = Tensor::f32("hidden.bias", vec![20], vec![f32::NAN; 20]);
    assert!(err(&config, &nan).contains("non-finite"));
}

fn arb_config() -> impl Strategy<Value = HashMlpConfig> {
    (
        proptest::sample::subsequence(vec![1usize, 2, 3, 4, 5, 6, 7, 8], 1..5),
        1usize..12,
        1usize..12,
        1usize..4,
        2u32..9,
        proptest::sample::select(vec![0xffu8, 0xe0, 0xc0, 0x7f]),
    )
        .prop_map(|(orders, d, h, g8, bits, mask)| {
            let b: Vec<u32> = orders.iter().map(|_| bits).collect();
            // Every table of order >= 2 reads bytes through `mask`.
            let masks: Vec<u8> = orders
                .iter()
                .map(|&n| if n == 1 { 0xff } else { mask })
                .collect();
            masked(cfg(&orders, &b, d, h, 8 * g8), &masks)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn sub_ranges_match_whole_document(
        c in arb_config(),
        doc in proptest::collection::vec(any::<u8>(), 1..300),
        a in 0usize..300,
        len in 0usize..300,
        seed in 0u64..1000,
    ) {
        let m = HashMlpModel::random(c, seed);
        let n = doc.len();
        let a = a % n;
        let b = (a + len).min(n);
        let whole = entropies(&m, &doc, 0..n);
        prop_assert_eq!(bits(&entropies(&m, &doc, a..b)), bits(&whole[a..b]));
        prop_assert_eq!(bits(&reference::entropies(&m, &doc, a..b)), bits(&whole[a..b]));
        prop_assert_eq!(bits(&streamed(&m, &doc)), bits(&whole));
        let sur = surprisals(&m, &doc, 0..n);
        prop_assert_eq!(bits(&surprisals(&m, &doc, a..b)), bits(&sur[a..b]));
    }
}

#[test]
fn widened_models_compute_the_same_function() {
    let doc = text(2_000, 700);
    for m in models() {
        let has_wide = (0..m.config().orders.len())
            .any(|j| m.config().orders[j] >= 2 && m.config().mask(j) == 0xff);
        for factor in [2, 8] {
            let w = match m.widened(factor) {
                Ok(w) => w,
                Err(e) => {
                    assert!(!has_wide, "{e}");
                    continue;
                }
            };
            for (j, (&old, &new)) in m.config().rows.iter().zip(&w.config().rows).enumerate() {
                let wide = m.config().orders[j] >= 2 && m.config().mask(j) == 0xff;
                assert_eq!(new, if wide { old * factor } else { old }, "table {j}");
            }
            assert_eq!(
                bits(&entropies(&m, doc, 0..700)),
                bits(&entropies(&w, doc, 0..700))
            );
            assert_eq!(
                bits(&surprisals(&m, doc, 0..700)),
                bits(&surprisals(&w, doc, 0..700))
            );
            assert_eq!(bits(&streamed(&m, doc)), bits(&streamed(&w, doc)));
            // Through a checkpoint (the tables stay binary16 numbers).
            assert_eq!(
                bits(&surprisals(
                    &load_from(&w, w.to_checkpoint_tensors()),
                    doc,
                    0..700
                )),
                bits(&surprisals(&m, doc, 0..700))
            );
        }
    }
    let m = models().swap_remove(2);
    for bad in [0, 1, 3, 6] {
        let e = m.widened(bad).unwrap_err().to_string();
        assert!(e.contains("power of two"), "{e}");
    }
    let e = m.widened(1 << 40).unwrap_err().to_string();
    assert!(e.contains("2^30"), "{e}");
    let only_order_1 = models().swap_remove(0);
    let e = only_order_1.widened(2).unwrap_err().to_string();
    assert!(e.contains("no hashed table"), "{e}");
}

#[test]
fn quantized_tables_are_8_bit_rows_stored_exactly() {
    let doc = text(9_000, 600);
    for m in models() {
        let q = m.quantized().unwrap();
        let d = m.config().d_model;
        for j in 0..m.config().rows.len() {
            let name = format!("tables.{j}.weight");
            let (a, b) = (m.tensor(&name).unwrap(), q.tensor(&name).unwrap());
            for (ra, rb) in a.chunks_exact(d).zip(b.chunks_exact(d)) {
                // The scale is the smallest binary16 number >= max |x| / 127; every value moves
                // by at most half of it.
                let max = ra.iter().fold(0f32, |m, x| m.max(x.abs()));
                let s = max / 127.0 * (1.0 + 1.0 / 1024.0);
                for (x, y) in ra.iter().zip(rb) {
                    assert!((x - y).abs() <= s / 2.0 + 1e-12, "{name}: {x} -> {y}");
                }
            }
        }
        // Quantising again changes nothing; other tensors are untouched.
        let qq = q.quantized().unwrap();
        for (name, _) in m.config().tensors() {
            let same = name.starts_with("tables.") || m.tensor(&name) == q.tensor(&name);
            assert!(same, "{name}");
            assert_eq!(
                bits(q.tensor(&name).unwrap()),
                bits(qq.tensor(&name).unwrap())
            );
        }
        // Written as I8 with F16 row scales, read back bit for bit.
        let tensors = q.to_checkpoint_tensors();
        for j in 0..m.config().rows.len() {
            let dtype = |n: &str| {
                tensors
                    .iter()
                    .find(|t| t.name == n)
                    .unwrap()
                    .data
                    .dtype_name()
            };
            assert_eq!(dtype(&format!("tables.{j}.weight")), "I8");
            assert_eq!(dtype(&format!("tables.{j}.weight.scale")), "F16");
        }
        let loaded = load_from(&q, tensors);
        assert_eq!(
            bits(&entropies(&q, doc, 0..600)),
            bits(&entropies(&loaded, doc, 0..600))
        );
        assert_eq!(
            bits(&surprisals(&q, doc, 0..600)),
            bits(&surprisals(&loaded, doc, 0..600))
        );
        // The unquantised model's tables stay F16.
        assert!(
            m.to_checkpoint_tensors()
                .iter()
                .filter(|t| t.name.starts_with("tables."))
                .all(|t| t.data.dtype_name() == "F16")
        );
    }
}
