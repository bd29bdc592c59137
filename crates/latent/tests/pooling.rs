//! Pooling exactness: on a hand-built case, the library's `patch_lengths` / `patch_ids` drive
//! the pooling exactly as a by-hand computation says, for mean and cross-attention pooling, and
//! the layout's `known_at` decides which global output each byte's prediction reads.

mod common;

use bltpatch_latent::batch::HostBatch;
use bltpatch_latent::{EntropyModel, LatentInput, Layout, Patching, PoolingKind};
use burn::module::Param;
use burn::nn::{Linear, RmsNorm};
use burn::prelude::{Device, Tensor, TensorData};
use common::tiny;

const DOC0: &[u8] = b"ab cd, efg";
const DOC1: &[u8] = b"x yz";

fn values<const D: usize>(p: &Param<Tensor<D>>) -> Vec<f64> {
    p.val()
        .try_into_vec_as::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

/// `x · W + b` with burn's `[in, out]` weight layout.
fn linear(l: &Linear, x: &[f64]) -> Vec<f64> {
    let w = values(&l.weight);
    let out = w.len() / x.len();
    let mut y = match &l.bias {
        Some(b) => values(b),
        None => vec![0.0; out],
    };
    for (i, &xi) in x.iter().enumerate() {
        for (o, yo) in y.iter_mut().enumerate() {
            *yo += xi * w[i * out + o];
        }
    }
    y
}

fn rms_norm(n: &RmsNorm, x: &[f64]) -> Vec<f64> {
    let g = values(&n.gamma);
    let rms = (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64 + n.epsilon).sqrt();
    x.iter().zip(&g).map(|(v, g)| v / rms * g).collect()
}

/// The byte states fed to the pooling: `e[b][j][c]`.
fn states(rows: usize, len: usize, d: usize) -> Vec<Vec<Vec<f64>>> {
    (0..rows)
        .map(|b| {
            (0..len)
                .map(|j| {
                    (0..d)
                        .map(|c| ((1 + b * 31 + j * 7 + c * 3) as f64).sin())
                        .collect()
                })
                .collect()
        })
        .collect()
}

#[test]
fn library_layout_is_blts() {
    let entropy = EntropyModel::default_model();
    let space = Patching::space(&entropy, None).unwrap();
    let layout = space.layout(&[DOC0, DOC1]);
    assert_eq!(
        (layout.batch, layout.max_patches, layout.max_len),
        (2, 3, 10)
    );
    // "ab " "cd, " "efg" and "x " "yz", right-padded with 0.
    assert_eq!(layout.patch_lengths, [3, 4, 3, 2, 2, 0]);
    // Past a document's end, BLT's formula gives max_patches - 1.
    assert_eq!(
        layout.patch_ids,
        [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2]
    );
    // Whether "c" starts a patch depends on "c" itself: the patch before it is known one byte
    // after its end. A document's last patch and the padding are never known.
    let never = Layout::NEVER;
    assert_eq!(layout.known_at, [4, 8, never, 3, never, never]);
}

#[test]
fn pooling_follows_patch_ids_exactly() {
    let device = Device::flex();
    let entropy = EntropyModel::default_model();
    let space = Patching::space(&entropy, None).unwrap();
    let docs = [DOC0, DOC1];
    let layout = space.layout(&docs);
    let patches: [&[(usize, usize)]; 2] = [&[(0, 3), (3, 4), (7, 3)], &[(0, 2), (2, 2)]];
    for pooling in [PoolingKind::Mean, PoolingKind::CrossAttention] {
        let cfg = tiny(pooling);
        let model = cfg.init(5, &device);
        let d = cfg.encoder.d_model;
        let batch = HostBatch::new(&cfg, &docs, &layout);
        let input = LatentInput::new(&batch, &device);
        let e = states(2, layout.max_len, d);
        let flat: Vec<f32> = e.iter().flatten().flatten().map(|&v| v as f32).collect();
        let e_tensor =
            Tensor::<3>::from_data(TensorData::new(flat, [2, layout.max_len, d]), &device);
        let got: Vec<f32> = model
            .pooling
            .forward(
                e_tensor,
                input.pool_weights.clone(),
                input.pool_bias.clone(),
            )
            .try_into_vec_as::<f32>()
            .unwrap();
        let dg = cfg.global.d_model;
        for (b, row) in patches.iter().enumerate() {
            for (p, &(start, len)) in row.iter().enumerate() {
                let bytes = &e[b][start..start + len];
                let mean: Vec<f64> = (0..d)
                    .map(|c| bytes.iter().map(|s| s[c]).sum::<f64>() / len as f64)
                    .collect();
                let pooled = match &model.pooling.cross {
                    None => mean,
                    Some(cross) => {
                        let q = linear(&cross.query, &rms_norm(&cross.norm_q, &mean));
                        let kv: Vec<Vec<f64>> = bytes
                            .iter()
                            .map(|s| linear(&cross.key_value, &rms_norm(&cross.norm_kv, s)))
                            .collect();
                        let dh = d / cross.n_heads;
                        let mut attended = vec![0.0; d];
                        for h in 0..cross.n_heads {
                            let head = h * dh..(h + 1) * dh;
                            let scores: Vec<f64> = kv
                                .iter()
                                .map(|kv| {
                                    head.clone().map(|c| q[c] * kv[c]).sum::<f64>()
                                        / (dh as f64).sqrt()
                                })
                                .collect();
                            let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                            let w: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                            let z: f64 = w.iter().sum();
                            for c in head {
                                attended[c] =
                                    kv.iter().zip(&w).map(|(kv, w)| w / z * kv[d + c]).sum();
                            }
                        }
                        let out = linear(&cross.out, &attended);
                        mean.iter().zip(&out).map(|(m, o)| m + o).collect()
                    }
                };
                let want = linear(&model.pooling.proj, &pooled);
                let at = (b * layout.max_patches + p) * dg;
                for (c, w) in want.iter().enumerate() {
                    let g = got[at + c] as f64;
                    assert!(
                        (g - w).abs() < 1e-4,
                        "{pooling:?} doc {b} patch {p} feature {c}: {g} against {w} by hand"
                    );
                }
            }
        }
    }
}

#[test]
fn known_at_decides_which_global_output_each_byte_reads() {
    let entropy = EntropyModel::default_model();
    let space = Patching::space(&entropy, None).unwrap();
    let docs = [DOC0, DOC1];
    let layout = space.layout(&docs);
    let cfg = tiny(PoolingKind::Mean);
    let p1 = layout.max_patches + 1;
    // The same patches, each known at its end (BLT's rule, right for boundaries that the bytes
    // before them decide).
    let lengths = [vec![3, 4, 3], vec![2, 2]];
    let ends = [vec![3, 7, bltpatch::NEVER], vec![2, bltpatch::NEVER]];
    let blt_layout = Layout::new(&lengths, &ends);
    // k = 0: the start vector; k >= 1: the global output of patch k - 1.
    let read = |layout: &Layout| -> Vec<Vec<i64>> {
        let batch = HostBatch::new(&cfg, &docs, layout);
        (0..2)
            .map(|b| {
                let row = &batch.decoder_index[b * layout.max_len..(b + 1) * layout.max_len];
                row.iter().map(|&i| i - (b * p1) as i64).collect()
            })
            .collect()
    };
    // Byte j of patch p reads patch p - 1 (BLT); padding reads the start vector.
    let blt = read(&blt_layout);
    assert_eq!(blt[0], [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]);
    assert_eq!(blt[1], [0, 0, 1, 1, 0, 0, 0, 0, 0, 0]);
    // Space patching: the first byte of a patch cannot read the patch before it yet.
    let space_reads = read(&layout);
    assert_eq!(space_reads[0], [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]);
    assert_eq!(space_reads[1], [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    // Mean-pooling weights are 1/len on the patch's bytes and nothing else.
    let batch = HostBatch::new(&cfg, &docs, &layout);
    let w = |b: usize, p: usize| -> Vec<f32> {
        let at = (b * layout.max_patches + p) * layout.max_len;
        batch.pool_weights[at..at + layout.max_len].to_vec()
    };
    let third = 1.0 / 3.0;
    assert_eq!(w(0, 0), [third, third, third, 0., 0., 0., 0., 0., 0., 0.]);
    assert_eq!(w(0, 1), [0., 0., 0., 0.25, 0.25, 0.25, 0.25, 0., 0., 0.]);
    assert_eq!(w(1, 1), [0., 0., 0.5, 0.5, 0., 0., 0., 0., 0., 0.]);
    assert!(
        w(1, 2).iter().all(|&v| v == 0.0),
        "a padded patch pools nothing"
    );
}
