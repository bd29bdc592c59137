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
    lookahead: usize,
    device: &Device,
) -> Vec<f32> {
    let batch = HostBatch::new(cfg, docs, layout, lookahead);
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
    patching: &Patching<'_>,
    doc: &[u8],
    device: &Device,
) -> Vec<Vec<f32>> {
    let layout = patching.layout(&[doc]);
    let flat = logits(model, cfg, &[doc], &layout, patching.lookahead(), device);
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

/// Layout from explicit patch lengths per document.
pub fn layout_of(lengths: &[Vec<u32>]) -> Layout {
    let batch = lengths.len();
    let max_patches = lengths.iter().map(Vec::len).max().unwrap_or(0);
    let max_len = lengths
        .iter()
        .map(|l| l.iter().sum::<u32>() as usize)
        .max()
        .unwrap_or(0);
    let mut patch_lengths = vec![0; batch * max_patches];
    let mut patch_ids = vec![max_patches.saturating_sub(1) as u32; batch * max_len];
    for (b, ls) in lengths.iter().enumerate() {
        patch_lengths[b * max_patches..b * max_patches + ls.len()].copy_from_slice(ls);
        let mut j = 0;
        for (p, &l) in ls.iter().enumerate() {
            for _ in 0..l {
                patch_ids[b * max_len + j] = p as u32;
                j += 1;
            }
        }
    }
    Layout {
        batch,
        max_patches,
        max_len,
        patch_lengths,
        patch_ids,
    }
}
