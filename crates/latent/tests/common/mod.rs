//! Helpers shared by the integration tests.
#![allow(dead_code)]

use bltpatch_latent::batch::HostBatch;
use bltpatch_latent::{LatentConfig, LatentInput, LatentModel, Layout, Patching, PoolingKind};
use burn::prelude::Device;

/// The `tiny` model with the given pooling.
pub fn tiny(pooling: PoolingKind) -> LatentConfig {
    let cfg = LatentConfig::preset("tiny", pooling).expect("tiny preset");
    cfg.validate().expect("valid tiny preset");
    cfg
}

/// Logits `[B, L, 256]` (flattened) of `docs` under `layout`.
pub fn logits(
    model: &LatentModel,
    cfg: &LatentConfig,
    docs: &[&[u8]],
    layout: &Layout,
    device: &Device,
) -> Vec<f32> {
    let batch = HostBatch::new(cfg, docs, layout);
    let input = LatentInput::new(&batch, device);
    model
        .forward(&input)
        .try_into_vec_as::<f32>()
        .expect("f32 logits")
}

/// Logits of one document under `patching`, as `[len][256]`.
pub fn doc_logits(
    model: &LatentModel,
    cfg: &LatentConfig,
    patching: &Patching,
    doc: &[u8],
    device: &Device,
) -> Vec<Vec<f32>> {
    layout_logits(model, cfg, &patching.layout(&[doc]), doc, device)
}

/// Logits of one document under `layout`, as `[len][256]`.
pub fn layout_logits(
    model: &LatentModel,
    cfg: &LatentConfig,
    layout: &Layout,
    doc: &[u8],
    device: &Device,
) -> Vec<Vec<f32>> {
    let flat = logits(model, cfg, &[doc], layout, device);
    flat.chunks(256).map(<[f32]>::to_vec).collect()
}

/// Largest absolute difference between two rows of values.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A deterministic pseudo-random generator for test data.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Layout from explicit patch lengths per document, each patch known `delay(p)` bytes after its
/// end (made non-decreasing; the last patch of a document never).
pub fn layout_of(lengths: &[Vec<usize>], delay: impl Fn(usize) -> usize) -> Layout {
    let known: Vec<Vec<usize>> = lengths
        .iter()
        .map(|ls| {
            let (mut end, mut floor) = (0, 0);
            ls.iter()
                .enumerate()
                .map(|(p, &l)| {
                    end += l;
                    floor = (end + delay(p)).max(floor);
                    if p + 1 == ls.len() {
                        bltpatch::NEVER
                    } else {
                        floor
                    }
                })
                .collect()
        })
        .collect();
    Layout::new(lengths, &known)
}
