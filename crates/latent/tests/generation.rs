//! Generation: the patches known while generating byte by byte are those that the library's
//! segmentation of the whole generated text says are known by then, the global model steps once
//! per known patch, and the step-by-step predictions equal the batch forward pass's on the same
//! text, for all five schemes.

mod common;

use bltpatch_latent::generate::{SampleOptions, generate};
use bltpatch_latent::{EntropyModel, Patching, PoolingKind};
use burn::prelude::Device;
use burn::prelude::{Tensor, TensorData};
use burn::tensor::activation::log_softmax;
use common::{doc_logits, tiny};

const PROMPT: &[u8] =
    b"Call me Ishmael. Some years ago, never mind how long precisely, having little \
or no money in my purse, I thought I would sail about a little.";

fn log_probs(logits: &[f32]) -> Vec<f32> {
    let t = Tensor::<1>::from_data(TensorData::new(logits.to_vec(), [256]), &Device::flex());
    log_softmax(t, 0).try_into_vec_as::<f32>().unwrap()
}

#[test]
fn generation_sees_the_patches_known_so_far() {
    let device = Device::flex();
    let entropy = EntropyModel::default_model();
    let schemes = [
        Patching::entropy_global(&entropy, 2.3574).unwrap(),
        Patching::entropy_budget(&entropy, 5.4174).unwrap(),
        Patching::static_size(&entropy, 4.5).unwrap(),
        Patching::space(&entropy, Some(8)).unwrap(),
        Patching::bpe(&entropy),
    ];
    for pooling in [PoolingKind::Mean, PoolingKind::CrossAttention] {
        let cfg = tiny(pooling);
        let model = cfg.init(9, &device);
        for (s, patching) in schemes.iter().enumerate() {
            let opts = SampleOptions {
                temperature: 0.7,
                seed: 17 + s as u64,
            };
            let g = generate(&model, &cfg, patching, PROMPT, 60, opts, &device);
            assert_eq!(g.bytes.len(), PROMPT.len() + 60);
            assert_eq!(&g.bytes[..PROMPT.len()], PROMPT);
            let full = patching.known(&g.bytes);
            for (t, &k) in g.known_before.iter().enumerate() {
                assert_eq!(
                    k,
                    full.closed(t),
                    "{}: patches known before byte {t}",
                    patching.describe()
                );
            }
            let k = *g.known_before.last().unwrap();
            assert_eq!(
                g.known_lengths,
                full.lengths[..k],
                "{}",
                patching.describe()
            );
            assert!(
                k > 10 && g.known_lengths.iter().any(|&l| l > 1),
                "{k} patches"
            );
            // One global step per patch known before the last byte.
            assert_eq!(g.global_steps, k);
            // Teacher-forced: the batch forward pass on the generated text predicts every byte
            // exactly as generation did.
            let batch = doc_logits(&model, &cfg, patching, &g.bytes, &device);
            for (t, (step, full)) in g.log_probs.iter().zip(&batch).enumerate() {
                let d = common::max_diff(step, &log_probs(full));
                assert!(
                    d < 1e-4,
                    "{}: byte {t}: predictions differ by {d}",
                    patching.describe()
                );
            }
        }
    }
}

#[test]
fn sampling_is_seeded() {
    let device = Device::flex();
    let entropy = EntropyModel::default_model();
    let patching = Patching::entropy_global(&entropy, 2.3574).unwrap();
    let cfg = tiny(PoolingKind::Mean);
    let model = cfg.init(1, &device);
    let run = |seed| {
        let opts = SampleOptions {
            temperature: 1.0,
            seed,
        };
        generate(&model, &cfg, &patching, b"The ", 30, opts, &device).bytes
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
    let greedy = SampleOptions {
        temperature: 0.0,
        seed: 0,
    };
    let g = generate(&model, &cfg, &patching, b"The ", 5, greedy, &device);
    for (t, lp) in g.log_probs.iter().enumerate().skip(4) {
        let best = (0..256).max_by(|&a, &b| lp[a].total_cmp(&lp[b])).unwrap();
        assert_eq!(
            g.bytes[t] as usize, best,
            "temperature 0 takes the most likely byte"
        );
    }
}
