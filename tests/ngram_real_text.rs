//! The n-gram entropy model on real text: calibration accuracy and exact agreement of every
//! segmentation path.

use bltpatch::{
    CalibrationTarget, EntropyModel, PatchConfig, Rule, calibrate, lengths_from_entropies, segment,
    segment_chunked, segment_streaming,
};
use bltpatch_ngram::{NgramConfig, NgramModel};

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/datasets/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn model() -> NgramModel {
    let books = read("en_books_slice.txt");
    let code = read("code_rust_slice.txt");
    NgramModel::train(&[&books, &code], &NgramConfig { order: 5 }).unwrap()
}

#[test]
fn calibration_within_one_percent_on_held_out_text() {
    let model = model();
    let text = read("tiny.txt");
    let mut h = vec![0f32; text.len()];
    model.entropies(&text, 0..text.len(), &mut h);
    for target in [3.0, 4.5, 6.0, 8.0] {
        let c = calibrate(&[&h], CalibrationTarget::Global, target, None).unwrap();
        let err = (c.mean_patch_len - target).abs() / target;
        assert!(err < 0.01, "target {target}: mean {}", c.mean_patch_len);
        let lengths = segment(&model, &text, &c.config);
        assert_eq!(lengths.len(), c.patches);
    }
}

/// Ties can make a target unreachable for some rules (every position whose longest context is
/// the same n-gram node has the same entropy, and neighbours share entropy differences).
/// Calibration must still pick the best threshold there is: checked against every candidate
/// by brute force, for the relative rule and for the global rule with `max_patch_len`.
#[test]
fn calibration_is_optimal_under_ties() {
    let model = model();
    let text = &read("tiny.txt")[..20_000];
    let mut h = vec![0f32; text.len()];
    model.entropies(text, 0..text.len(), &mut h);
    let diffs: Vec<f32> = (1..h.len()).map(|i| h[i] - h[i - 1]).collect();
    for (kind, max, compared) in [
        (CalibrationTarget::Global, Some(12), &h[1..]),
        (CalibrationTarget::Relative, None, &diffs[..]),
    ] {
        let mut values: Vec<f32> = compared.iter().copied().filter(|&v| v >= 0.0).collect();
        values.push(0.0);
        values.sort_by(f32::total_cmp);
        values.dedup();
        let rule = |t: f32| match kind {
            CalibrationTarget::Relative => Rule::Relative {
                relative_threshold: t,
            },
            _ => Rule::Global { threshold: t },
        };
        for target in [3.0, 4.5, 6.0, 8.0] {
            let c = calibrate(&[&h], kind, target, max).unwrap();
            let wanted = text.len() as f64 / target;
            let best = values
                .iter()
                .map(|&t| {
                    let cfg = PatchConfig::new(rule(t))
                        .unwrap()
                        .with_max_patch_len(max)
                        .unwrap();
                    (lengths_from_entropies(&h, &cfg).len() as f64 - wanted).abs()
                })
                .fold(f64::INFINITY, f64::min);
            assert_eq!(
                (c.patches as f64 - wanted).abs(),
                best,
                "{kind:?} target {target}"
            );
            assert_eq!(segment(&model, text, &c.config).len(), c.patches);
        }
    }
}

#[test]
fn batch_streaming_chunked_agree_with_the_ngram_model() {
    let model = model();
    let text = read("tiny.txt");
    let doc = &text[..30_000];
    for cfg in [
        PatchConfig::new(Rule::Global { threshold: 2.0 }).unwrap(),
        PatchConfig::new(Rule::Relative {
            relative_threshold: 0.3,
        })
        .unwrap()
        .with_max_patch_len(Some(9))
        .unwrap(),
        PatchConfig::new(Rule::Combined {
            threshold: 1.5,
            relative_threshold: 0.1,
        })
        .unwrap(),
    ] {
        let batch = segment(&model, doc, &cfg);
        assert_eq!(segment_streaming(&model, doc, &cfg), batch);
        for threads in 1..=4 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for chunk in [1, 5, 333, 4096, 1 << 20] {
                assert_eq!(
                    pool.install(|| segment_chunked(&model, doc, &cfg, chunk)),
                    batch
                );
            }
        }
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn shared() -> &'static (NgramModel, Vec<u8>) {
        static M: OnceLock<(NgramModel, Vec<u8>)> = OnceLock::new();
        M.get_or_init(|| (model(), read("tiny.txt")))
    }

    fn config() -> impl Strategy<Value = PatchConfig> {
        let t = 0.0f32..4.0;
        let rule = prop_oneof![
            t.clone().prop_map(|threshold| Rule::Global { threshold }),
            t.clone()
                .prop_map(|relative_threshold| Rule::Relative { relative_threshold }),
            (t.clone(), t).prop_map(|(threshold, relative_threshold)| Rule::Combined {
                threshold,
                relative_threshold
            }),
        ];
        (rule, prop::option::of(1usize..20))
            .prop_map(|(r, m)| PatchConfig::new(r).unwrap().with_max_patch_len(m).unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn real_text_and_random_bytes(
            start in 0usize..100_000,
            len in 0usize..4000,
            random in prop::collection::vec(any::<u8>(), 0..300),
            cfg in config(),
            chunk in 1usize..500,
            threads in 1usize..5,
        ) {
            let (model, text) = shared();
            let s = start.min(text.len());
            let real = &text[s..(s + len).min(text.len())];
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            for doc in [real, &random[..]] {
                let batch = segment(model, doc, &cfg);
                prop_assert_eq!(batch.iter().sum::<usize>(), doc.len());
                prop_assert!(batch.iter().all(|&l| l >= 1 && cfg.max_patch_len().is_none_or(|m| l <= m)));
                prop_assert_eq!(&segment_streaming(model, doc, &cfg), &batch);
                prop_assert_eq!(&pool.install(|| segment_chunked(model, doc, &cfg, chunk)), &batch);
            }
        }
    }
}
