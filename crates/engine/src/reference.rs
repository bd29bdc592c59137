//! The plain scalar reference implementation: the definition of `H`, operation by operation.
//!
//! It evaluates the whole document prefix `0..range.end` position by position straight from the
//! formulas of [`crate::arch`], with the unpacked tensors, scalar [`libm::fmaf`] and no cleverness.
//! It is slow (no SIMD, no warm-up window) and exists to test the fast paths bit for bit and to
//! document the exact arithmetic:
//!
//! 1. `x0[t] = embed[tok(t)]`, then `x0[t][i] = x0[t][i] + hash_j[bucket_j][i]` for each present
//!    hash order `j` in order (plain additions).
//! 2. Per block: `ss = 0`, `ss = fma(h_i, h_i, ss)` for `i = 0..d`;
//!    `r = 1 / sqrt(ss / d + eps)`; `a_i = (h_i · r) · gamma_i` (two roundings).
//!    `c[o] = conv.bias[o]`, then `c[o] = fma(conv.weight[o][i][j], a[t - (k-1-j)·dil][i], c[o])`
//!    for `j = 0..k` (outer), `i = 0..d` (inner), with `a` before position 0 a zero vector;
//!    `g[o] = relu(c[o])` (`c` if `c > 0`, else `+0.0`);
//!    `y[p] = proj.bias[p]`, then `y[p] = fma(proj.weight[o][p], g[o], y[p])` for `o = 0..f`;
//!    `h[p] = h[p] + y[p]`.
//! 3. `z` = RMSNorm of `h` with `norm.gamma` as above; `l[v] = head.bias[v]`, then
//!    `l[v] = fma(head.weight[i][v], z[i], l[v])` for `i = 0..d`.
//! 4. `m = max_v l[v]`; `δ_v = l[v] - m`; `e_v = libm::expf(δ_v)`; `S = 0`, `S = S + e_v` and
//!    `T = 0`, `T = fma(e_v, δ_v, T)` for `v = 0..256`;
//!    `H = min(logf(S) - T / S, logf(256))` (the clamp guards against rounding past the
//!    maximum); surprisal of byte `b`: `logf(S) - δ_b`.

use std::ops::Range;

use crate::ConvModel;
use crate::arch::{BOS, VOCAB_OUT, inputs};
use crate::kernels::{LN_256, relu};

/// The logits `[range.end, 256]` of positions `0..end` (row-major), from the document start.
fn logits(model: &ConvModel, doc: &[u8], end: usize) -> Vec<[f32; VOCAB_OUT]> {
    let cfg = model.config();
    let (d, f, k) = (cfg.d_model, cfg.d_hidden, cfg.kernel_size);
    let t = |name: &str| {
        model
            .tensor(name)
            .expect("every tensor of the architecture exists")
    };
    let (tokens, buckets) = inputs(cfg, doc, 0, end);
    let nh = cfg.hash_orders.len();

    // 1. Inputs.
    let embed = t("embed.weight");
    let mut h: Vec<Vec<f32>> = (0..end)
        .map(|p| {
            let tok = tokens[p] as usize;
            debug_assert!(tok <= BOS);
            let mut x = embed[tok * d..(tok + 1) * d].to_vec();
            for j in 0..nh {
                let b = buckets[p * nh + j];
                if b != u32::MAX {
                    let table = t(&format!("hash.{j}.weight"));
                    for i in 0..d {
                        x[i] += table[b as usize * d + i];
                    }
                }
            }
            x
        })
        .collect();

    let rmsnorm = |x: &[f32], gamma: &[f32]| -> Vec<f32> {
        let mut ss = 0f32;
        for &xi in x {
            ss = libm::fmaf(xi, xi, ss);
        }
        let r = 1.0 / (ss / d as f32 + cfg.norm_eps).sqrt();
        x.iter().zip(gamma).map(|(&xi, &g)| (xi * r) * g).collect()
    };

    // 2. Blocks.
    for (l, &dil) in cfg.dilations.iter().enumerate() {
        let gamma = t(&format!("blocks.{l}.norm.gamma"));
        let cw = t(&format!("blocks.{l}.conv.weight"));
        let cb = t(&format!("blocks.{l}.conv.bias"));
        let pw = t(&format!("blocks.{l}.proj.weight"));
        let pb = t(&format!("blocks.{l}.proj.bias"));
        let a: Vec<Vec<f32>> = h.iter().map(|x| rmsnorm(x, gamma)).collect();
        for (pos, hp) in h.iter_mut().enumerate() {
            let mut g = vec![0f32; f];
            for (o, go) in g.iter_mut().enumerate() {
                let mut c = cb[o];
                for j in 0..k {
                    let back = (k - 1 - j) * dil;
                    let zero = vec![0f32; d];
                    let src = if pos >= back { &a[pos - back] } else { &zero };
                    for i in 0..d {
                        c = libm::fmaf(cw[(o * d + i) * k + j], src[i], c);
                    }
                }
                *go = relu(c);
            }
            for (p, hv) in hp.iter_mut().enumerate() {
                let mut y = pb[p];
                for (o, &go) in g.iter().enumerate() {
                    y = libm::fmaf(pw[o * d + p], go, y);
                }
                *hv += y;
            }
        }
    }

    // 3. Head.
    let gamma = t("norm.gamma");
    let hw = t("head.weight");
    let hb = t("head.bias");
    h.iter()
        .map(|x| {
            let z = rmsnorm(x, gamma);
            let mut l = [0f32; VOCAB_OUT];
            for (v, lv) in l.iter_mut().enumerate() {
                let mut acc = hb[v];
                for (i, &zi) in z.iter().enumerate() {
                    acc = libm::fmaf(hw[i * VOCAB_OUT + v], zi, acc);
                }
                *lv = acc;
            }
            l
        })
        .collect()
}

/// `(logf(S), S, T, δ)` of one row of logits (step 4; the `hashmlp` reference uses it too).
pub(crate) fn softmax_terms(l: &[f32; VOCAB_OUT]) -> (f32, f32, f32, [f32; VOCAB_OUT]) {
    let mut m = l[0];
    for &x in l {
        if x > m {
            m = x;
        }
    }
    let mut delta = [0f32; VOCAB_OUT];
    let (mut s, mut t) = (0f32, 0f32);
    for v in 0..VOCAB_OUT {
        delta[v] = l[v] - m;
        let e = libm::expf(delta[v]);
        s += e;
        t = libm::fmaf(e, delta[v], t);
    }
    (libm::logf(s), s, t, delta)
}

/// `H[i]` for `i` in `range` (shapes: `doc: [n]`, `range ⊆ 0..n`, result `[range.len()]`).
///
/// # Panics
/// If `range` is out of bounds of `doc`.
pub fn entropies(model: &ConvModel, doc: &[u8], range: Range<usize>) -> Vec<f32> {
    assert!(range.start <= range.end && range.end <= doc.len());
    logits(model, doc, range.end)[range]
        .iter()
        .map(|l| {
            let (ln_s, s, t, _) = softmax_terms(l);
            let h = ln_s - t / s;
            if h > LN_256 { LN_256 } else { h }
        })
        .collect()
}

/// The surprisal `-ln p(doc[i] | context)` for `i` in `range` (shapes as in [`entropies`]).
///
/// # Panics
/// If `range` is out of bounds of `doc`.
pub fn surprisals(model: &ConvModel, doc: &[u8], range: Range<usize>) -> Vec<f32> {
    assert!(range.start <= range.end && range.end <= doc.len());
    let start = range.start;
    logits(model, doc, range.end)[range]
        .iter()
        .enumerate()
        .map(|(q, l)| {
            let (ln_s, _, _, delta) = softmax_terms(l);
            ln_s - delta[doc[start + q] as usize]
        })
        .collect()
}
