//! The plain scalar reference implementation of the `"hashmlp"` model: the definition of `H`
//! and of the surprisals, operation by operation, with the unpacked tensors, scalar
//! [`libm::fmaf`] and no cleverness (the table rows are folded and quantised on demand, one
//! position at a time, after one pass over every row for the quantisation step). The fast
//! paths are tested against it bit for bit; the steps are those of the [module docs](super).

use std::ops::Range;

use super::HashMlpModel;
use super::arch::{TREE_LANES, inputs};
use crate::arch::VOCAB_OUT;
use crate::kernels::{LN_256, relu};
use crate::reference::softmax_terms;

fn tensor<'a>(m: &'a HashMlpModel, name: &str) -> &'a [f32] {
    m.tensor(name)
        .expect("every tensor of the architecture exists")
}

/// `P_j[row]`: `0.0`, then `fma(proj_w[i][o], E_j[row][i], ·)` for `i = 0..F`.
fn folded_row(m: &HashMlpModel, j: usize, row: usize) -> Vec<f32> {
    let (d, g) = (m.config().d_model, m.config().entropy_hidden);
    let e = &tensor(m, &format!("tables.{j}.weight"))[row * d..][..d];
    let w = tensor(m, "entropy.proj.weight");
    (0..g)
        .map(|o| {
            let mut acc = 0f32;
            for (i, &x) in e.iter().enumerate() {
                acc = libm::fmaf(w[i * g + o], x, acc);
            }
            acc
        })
        .collect()
}

/// The quantisation step `2^e` of the folded tables: `e` from the largest magnitude of every
/// folded value of every table (see [`super::quant_exponent`]).
fn quantum(m: &HashMlpModel) -> f64 {
    let mut max = 0f32;
    for (j, &rows) in m.config().rows.iter().enumerate() {
        for r in 0..rows {
            for x in folded_row(m, j, r) {
                max = max.max(x.abs());
            }
        }
    }
    let e = super::quant_exponent(max);
    2f64.powi(e)
}

/// `Q_j[row]`: the folded row divided by the step, rounded to the nearest integer (ties to
/// even), within `[-4095, 4095]`.
fn quantized_row(m: &HashMlpModel, step: f64, j: usize, row: usize) -> Vec<i32> {
    folded_row(m, j, row)
        .iter()
        .map(|&x| ((x as f64 / step).round_ties_even() as i32).clamp(-4095, 4095))
        .collect()
}

/// `H` of one position from its table rows.
#[allow(clippy::needless_range_loop)] // index order is the point
fn entropy(m: &HashMlpModel, step: f64, rows: &[u32]) -> f32 {
    let g = m.config().entropy_hidden;
    let mut q = vec![0i32; g];
    for (j, &r) in rows.iter().enumerate() {
        let p = quantized_row(m, step, j, r as usize);
        for o in 0..g {
            q[o] += p[o];
        }
    }
    let b = tensor(m, "entropy.proj.bias");
    let s: Vec<f32> = (0..g).map(|o| b[o] + q[o] as f32 * step as f32).collect();
    let w = tensor(m, "entropy.out.weight");
    let mut a = [0f32; TREE_LANES];
    for c in 0..g / TREE_LANES {
        for l in 0..TREE_LANES {
            let i = c * TREE_LANES + l;
            let x = w[i] * relu(s[i]);
            a[l] = if c == 0 { x } else { a[l] + x };
        }
    }
    let z = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
    let z = z + tensor(m, "entropy.out.bias")[0];
    let h = relu(z);
    if h > LN_256 { LN_256 } else { h }
}

/// The 256 logits of one position from its table rows, and its escape logit when the model
/// has one.
#[allow(clippy::needless_range_loop)] // index order is the point
fn logits(m: &HashMlpModel, rows: &[u32]) -> ([f32; VOCAB_OUT], Option<f32>) {
    let cfg = m.config();
    let (d, h) = (cfg.d_model, cfg.d_hidden);
    let mut e = vec![0f32; d];
    for (j, &r) in rows.iter().enumerate() {
        let t = &tensor(m, &format!("tables.{j}.weight"))[r as usize * d..][..d];
        for i in 0..d {
            e[i] = if j == 0 { t[i] } else { e[i] + t[i] };
        }
    }
    let mut ss = 0f32;
    for &x in &e {
        ss = libm::fmaf(x, x, ss);
    }
    let r = 1.0 / (ss / d as f32 + cfg.norm_eps).sqrt();
    let gamma = tensor(m, "norm.gamma");
    let z: Vec<f32> = e.iter().zip(gamma).map(|(&x, &g)| (x * r) * g).collect();
    let (w1, b1) = (tensor(m, "hidden.weight"), tensor(m, "hidden.bias"));
    let y: Vec<f32> = (0..h)
        .map(|o| {
            let mut acc = b1[o];
            for (i, &zi) in z.iter().enumerate() {
                acc = libm::fmaf(w1[i * h + o], zi, acc);
            }
            relu(acc)
        })
        .collect();
    let (w2, b2) = (tensor(m, "head.weight"), tensor(m, "head.bias"));
    let mut l = [0f32; VOCAB_OUT];
    for (v, lv) in l.iter_mut().enumerate() {
        let mut acc = b2[v];
        for (i, &yi) in y.iter().enumerate() {
            acc = libm::fmaf(w2[i * VOCAB_OUT + v], yi, acc);
        }
        *lv = acc;
    }
    let escape = cfg.escape.then(|| {
        let mut acc = tensor(m, "escape.bias")[0];
        for (i, j) in cfg.escape_tables().into_iter().enumerate() {
            acc += tensor(m, &format!("escape.tables.{i}.weight"))[rows[j] as usize];
        }
        acc
    });
    (l, escape)
}

/// The next-byte distribution of a head with an escape logit `z` as `(S, a)` with
/// `p_v = a_v / S`: `m` the largest of the 256 logits, then `z` if larger;
/// `a_v = expf(l_v - m) + expf(z - m) / 256`, `S = Σ_v expf(l_v - m) + expf(z - m)`.
fn escape_distribution(l: &[f32; VOCAB_OUT], z: f32) -> (f32, [f32; VOCAB_OUT]) {
    let mut m = l[0];
    for &x in l {
        if x > m {
            m = x;
        }
    }
    if z > m {
        m = z;
    }
    let eps = libm::expf(z - m);
    let u = eps / 256.0;
    let mut s = 0f32;
    let mut a = [0f32; VOCAB_OUT];
    for v in 0..VOCAB_OUT {
        let e = libm::expf(l[v] - m);
        s += e;
        a[v] = e + u;
    }
    (s + eps, a)
}

fn rows_of(m: &HashMlpModel, doc: &[u8], range: &Range<usize>) -> Vec<u32> {
    assert!(range.start <= range.end && range.end <= doc.len());
    inputs(m.config(), doc, range.start, range.end)
}

/// `H[i]` (the entropy head) for `i` in `range` (shapes: `doc: [n]`, result `[range.len()]`).
///
/// # Panics
/// If `range` is out of bounds of `doc`.
pub fn entropies(m: &HashMlpModel, doc: &[u8], range: Range<usize>) -> Vec<f32> {
    let k = m.config().orders.len();
    let rows = rows_of(m, doc, &range);
    let step = quantum(m);
    rows.chunks_exact(k).map(|r| entropy(m, step, r)).collect()
}

/// The surprisal `-ln p(doc[i] | context)` of the next-byte head for `i` in `range`.
///
/// # Panics
/// If `range` is out of bounds of `doc`.
pub fn surprisals(m: &HashMlpModel, doc: &[u8], range: Range<usize>) -> Vec<f32> {
    let k = m.config().orders.len();
    let rows = rows_of(m, doc, &range);
    rows.chunks_exact(k)
        .zip(&doc[range])
        .map(|(r, &b)| match logits(m, r) {
            (l, None) => {
                let (ln_s, _, _, delta) = softmax_terms(&l);
                ln_s - delta[b as usize]
            }
            (l, Some(z)) => {
                let (s, a) = escape_distribution(&l, z);
                libm::logf(s) - libm::logf(a[b as usize])
            }
        })
        .collect()
}

/// The entropy of the next-byte head's distribution for `i` in `range`.
///
/// # Panics
/// If `range` is out of bounds of `doc`.
pub fn distribution_entropies(m: &HashMlpModel, doc: &[u8], range: Range<usize>) -> Vec<f32> {
    let k = m.config().orders.len();
    let rows = rows_of(m, doc, &range);
    rows.chunks_exact(k)
        .map(|r| {
            let h = match logits(m, r) {
                (l, None) => {
                    let (ln_s, s, t, _) = softmax_terms(&l);
                    ln_s - t / s
                }
                (l, Some(z)) => {
                    let (s, a) = escape_distribution(&l, z);
                    let mut t = 0f32;
                    for &x in &a {
                        if x > 0.0 {
                            t = libm::fmaf(x, libm::logf(x), t);
                        }
                    }
                    libm::logf(s) - t / s
                }
            };
            if h > LN_256 { LN_256 } else { h }
        })
        .collect()
}
