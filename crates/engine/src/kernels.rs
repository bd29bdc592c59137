//! The canonical arithmetic: dense (convolution / linear) kernels, RMSNorm, and the entropy
//! (softmax) reduction, each in a hardware-FMA (x86-64 AVX2 + FMA) and a portable
//! (`libm::fmaf`) flavour that give the same bits.
//!
//! Every output of [`dense`] is `bias[o]` followed by one fused multiply-add per `(tap, input)`
//! pair in increasing order, whatever the tile shape, SIMD width or number of positions: the
//! SIMD kernels vectorise across outputs and tile across positions, never across the reduction
//! index. Element-wise operations (`+`, `*`, `/`, `sqrt`) are single IEEE operations in both
//! flavours, so auto-vectorisation cannot change them.

use crate::arch::VOCAB_OUT;

/// Output lanes per packed weight block (one AVX register of `f32`).
pub(crate) const LANES: usize = 8;

/// Rows handled together by the row-wise reductions (RMSNorm, softmax): independent dependency
/// chains that the CPU overlaps.
const GROUP: usize = 8;

/// `ln 256` as computed by `libm::logf(256.0)` (`5.5451775`, checked by a test): the largest
/// entropy of a distribution over 256 outcomes. Entropies are clamped to it (rounding could
/// otherwise exceed it by an ulp).
pub(crate) const LN_256: f32 = f32::from_bits(0x40b1_7218);

/// The weights of one dense layer, packed for the kernels.
///
/// The layer computes `out[o] = bias[o] + Σ_{j<taps} Σ_{i<n_in} w(o, i, j) · x_j[i]` (reduced in
/// that order, `j` outer), where `x_j` is the input row of tap `j`. Storage: `data` is
/// `[blocks][taps][n_in][LANES]` (output `o` lives in block `o / LANES`, lane `o % LANES`; lanes
/// past `n_out` are zero), `bias` is `[blocks · LANES]`.
#[derive(Clone, Debug)]
pub(crate) struct Packed {
    pub n_out: usize,
    pub n_in: usize,
    pub taps: usize,
    pub blocks: usize,
    data: Vec<f32>,
    bias: Vec<f32>,
}

impl Packed {
    /// Packs `w(o, i, j)` for `o < n_out, i < n_in, j < taps` and `bias: [n_out]`.
    pub fn new(
        n_out: usize,
        n_in: usize,
        taps: usize,
        w: impl Fn(usize, usize, usize) -> f32,
        bias: &[f32],
    ) -> Self {
        assert_eq!(bias.len(), n_out);
        let blocks = n_out.div_ceil(LANES);
        let mut data = vec![0f32; blocks * taps * n_in * LANES];
        for o in 0..n_out {
            let (b, l) = (o / LANES, o % LANES);
            for j in 0..taps {
                for i in 0..n_in {
                    data[((b * taps + j) * n_in + i) * LANES + l] = w(o, i, j);
                }
            }
        }
        let mut padded = vec![0f32; blocks * LANES];
        padded[..n_out].copy_from_slice(bias);
        Self {
            n_out,
            n_in,
            taps,
            blocks,
            data,
            bias: padded,
        }
    }

    /// Floats per output block.
    fn block_len(&self) -> usize {
        self.taps * self.n_in * LANES
    }

    /// Output row width the SIMD kernels write (`blocks · LANES >= n_out`).
    pub fn padded_out(&self) -> usize {
        self.blocks * LANES
    }
}

/// What a dense kernel does with each finished sum `acc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Store {
    /// `out = acc`.
    Plain,
    /// `out = relu(acc)`, where `relu(x) = x if x > 0 else +0.0`.
    Relu,
    /// `out = out + acc` (the residual update).
    AddTo,
}

/// `relu(x) = x` if `x > 0`, else `+0.0` (also for `-0.0` and NaN).
#[inline(always)]
pub(crate) fn relu(x: f32) -> f32 {
    if x > 0.0 { x } else { 0.0 }
}

/// A dense layer over `np` positions.
///
/// For `p < np`, output row `p` is `out[p·out_stride ..]`, and the input row of tap `j` is
/// `input[rows[p·taps + j]·in_stride ..][.. n_in]`. Writes outputs `0..n_out` of every row (the
/// SIMD path also writes the padding lanes up to [`Packed::padded_out`], so `out_stride` must be
/// at least that).
///
/// # Panics
/// If a row index or the output extent is out of bounds.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dense(
    simd: bool,
    w: &Packed,
    input: &[f32],
    in_stride: usize,
    rows: &[usize],
    np: usize,
    out: &mut [f32],
    out_stride: usize,
    store: Store,
) {
    if np == 0 {
        return;
    }
    assert!(in_stride >= w.n_in && out_stride >= w.padded_out());
    assert!(rows.len() >= np * w.taps);
    for &r in &rows[..np * w.taps] {
        assert!(
            r * in_stride + w.n_in <= input.len(),
            "input row out of bounds"
        );
    }
    assert!(
        (np - 1) * out_stride + w.padded_out() <= out.len(),
        "output out of bounds"
    );
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: `simd` is only set when AVX2 and FMA were detected at run time
        // (`crate::simd_available`); all pointer extents were checked above.
        unsafe { avx2::dense(w, input, in_stride, rows, np, out, out_stride, store) };
        return;
    }
    let _ = simd;
    dense_portable(w, input, in_stride, rows, np, out, out_stride, store);
}

/// The portable dense layer: scalar `libm::fmaf`, the same sequence per output.
#[allow(clippy::too_many_arguments)]
fn dense_portable(
    w: &Packed,
    input: &[f32],
    in_stride: usize,
    rows: &[usize],
    np: usize,
    out: &mut [f32],
    out_stride: usize,
    store: Store,
) {
    let (n_in, taps, bl) = (w.n_in, w.taps, w.block_len());
    for p in 0..np {
        for o in 0..w.n_out {
            let (b, l) = (o / LANES, o % LANES);
            let mut acc = w.bias[o];
            for j in 0..taps {
                let x = &input[rows[p * taps + j] * in_stride..][..n_in];
                let wj = &w.data[b * bl + j * n_in * LANES..][..n_in * LANES];
                for (i, &xi) in x.iter().enumerate() {
                    acc = libm::fmaf(wj[i * LANES + l], xi, acc);
                }
            }
            let dst = &mut out[p * out_stride + o];
            *dst = match store {
                Store::Plain => acc,
                Store::Relu => relu(acc),
                Store::AddTo => *dst + acc,
            };
        }
    }
}

/// The scalar operations whose implementation differs between the two flavours (both give the
/// same bits).
trait Arith: Copy {
    /// `a · b + c` with a single rounding.
    fn fma(self, a: f32, b: f32, c: f32) -> f32;
    /// `dst[v] = libm::expf(src[v])` for every `v` (bit-identical to `libm::expf`).
    fn exp_row(self, src: &[f32], dst: &mut [f32]);
}

/// The portable flavour: `libm`.
#[derive(Clone, Copy)]
struct Soft;

impl Arith for Soft {
    #[inline(always)]
    fn fma(self, a: f32, b: f32, c: f32) -> f32 {
        libm::fmaf(a, b, c)
    }
    #[inline(always)]
    fn exp_row(self, src: &[f32], dst: &mut [f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = libm::expf(s);
        }
    }
}

/// RMSNorm of `n` rows: for `p < n`, `x = src[p·src_stride ..][.. d]`,
/// `dst[dst_rows[p]·dst_stride ..][.. d]` gets `(x_i · r) · gamma_i` with
/// `r = 1 / sqrt(ss / d + eps)` and `ss` the sum of `x_i²` accumulated by `fma` in order `i = 0..d`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rmsnorm(
    simd: bool,
    src: &[f32],
    src_stride: usize,
    n: usize,
    gamma: &[f32],
    eps: f32,
    dst: &mut [f32],
    dst_stride: usize,
    dst_rows: &[usize],
) {
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: `simd` is only set when AVX2 and FMA were detected at run time.
        unsafe { avx2::rmsnorm(src, src_stride, n, gamma, eps, dst, dst_stride, dst_rows) };
        return;
    }
    let _ = simd;
    rmsnorm_impl(
        Soft, src, src_stride, n, gamma, eps, dst, dst_stride, dst_rows,
    );
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn rmsnorm_impl<A: Arith>(
    a: A,
    src: &[f32],
    src_stride: usize,
    n: usize,
    gamma: &[f32],
    eps: f32,
    dst: &mut [f32],
    dst_stride: usize,
    dst_rows: &[usize],
) {
    let mut g = 0;
    while g + GROUP <= n {
        rmsnorm_rows::<A, GROUP>(a, src, src_stride, g, gamma, eps, dst, dst_stride, dst_rows);
        g += GROUP;
    }
    while g < n {
        rmsnorm_rows::<A, 1>(a, src, src_stride, g, gamma, eps, dst, dst_stride, dst_rows);
        g += 1;
    }
}

/// [`rmsnorm`] of rows `g..g + G` (several rows together let their chains overlap).
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)] // index order is the point
#[inline(always)]
fn rmsnorm_rows<A: Arith, const G: usize>(
    a: A,
    src: &[f32],
    src_stride: usize,
    g: usize,
    gamma: &[f32],
    eps: f32,
    dst: &mut [f32],
    dst_stride: usize,
    dst_rows: &[usize],
) {
    let d = gamma.len();
    let xs: [&[f32]; G] = std::array::from_fn(|q| &src[(g + q) * src_stride..][..d]);
    let mut ss = [0f32; G];
    for i in 0..d {
        for q in 0..G {
            let x = xs[q][i];
            ss[q] = a.fma(x, x, ss[q]);
        }
    }
    for q in 0..G {
        let r = 1.0 / (ss[q] / d as f32 + eps).sqrt();
        let out = &mut dst[dst_rows[g + q] * dst_stride..][..d];
        for ((o, &x), &gm) in out.iter_mut().zip(xs[q]).zip(gamma) {
            *o = (x * r) * gm;
        }
    }
}

/// What [`finish`] computes from each row of logits.
#[derive(Clone, Copy)]
pub(crate) enum Finish<'a> {
    /// The entropy `H` in nats.
    Entropy,
    /// The surprisal of `targets[p]` for row `p`.
    Surprisal(&'a [u8]),
}

/// Turns `n` rows of logits (`logits[p·VOCAB_OUT ..][.. VOCAB_OUT]`) into entropies or surprisals
/// `out[p]`.
///
/// With `m = max_v l_v`, `δ_v = l_v - m`, `e_v = expf(δ_v)`: `S = Σ_v e_v` (plain additions from
/// `0.0`, `v = 0..256`), `T = Σ_v e_v·δ_v` (fma from `0.0`, same order);
/// `H = min(logf(S) - T / S, logf(256))`; surprisal of `b`: `logf(S) - δ_b`.
pub(crate) fn finish(simd: bool, logits: &[f32], n: usize, what: Finish<'_>, out: &mut [f32]) {
    assert!(logits.len() >= n * VOCAB_OUT && out.len() >= n);
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: `simd` is only set when AVX2 and FMA were detected at run time.
        unsafe { avx2::finish(logits, n, what, out) };
        return;
    }
    let _ = simd;
    finish_impl(Soft, logits, n, what, out);
}

#[inline(always)]
fn finish_impl<A: Arith>(a: A, logits: &[f32], n: usize, what: Finish<'_>, out: &mut [f32]) {
    let mut g = 0;
    while g + GROUP <= n {
        finish_rows::<A, GROUP>(a, &logits[g * VOCAB_OUT..], g, what, &mut out[g..]);
        g += GROUP;
    }
    while g < n {
        finish_rows::<A, 1>(a, &logits[g * VOCAB_OUT..], g, what, &mut out[g..]);
        g += 1;
    }
}

/// [`finish`] for the `G` rows of logits at the start of `logits`, which are rows `g..g + G` of
/// the caller's (for the surprisal targets). Rows are independent; doing several together lets
/// their dependency chains overlap.
#[allow(clippy::needless_range_loop)] // index order is the point
#[inline(always)]
fn finish_rows<A: Arith, const G: usize>(
    a: A,
    logits: &[f32],
    g: usize,
    what: Finish<'_>,
    out: &mut [f32],
) {
    let mut delta = [[0f32; VOCAB_OUT]; G];
    let mut e = [[0f32; VOCAB_OUT]; G];
    for q in 0..G {
        let row = &logits[q * VOCAB_OUT..][..VOCAB_OUT];
        let m = row_max(row);
        for (dv, &l) in delta[q].iter_mut().zip(row) {
            *dv = l - m;
        }
        a.exp_row(&delta[q], &mut e[q]);
    }
    let mut s = [0f32; G];
    match what {
        Finish::Entropy => {
            let mut t = [0f32; G];
            for v in 0..VOCAB_OUT {
                for q in 0..G {
                    s[q] += e[q][v];
                    t[q] = a.fma(e[q][v], delta[q][v], t[q]);
                }
            }
            for q in 0..G {
                out[q] = entropy(s[q], t[q]);
            }
        }
        Finish::Surprisal(targets) => {
            for v in 0..VOCAB_OUT {
                for q in 0..G {
                    s[q] += e[q][v];
                }
            }
            for q in 0..G {
                out[q] = libm::logf(s[q]) - delta[q][targets[g + q] as usize];
            }
        }
    }
}

/// The maximum of a row of logits with the engine's semantics: start from `row[0]`, replace
/// when `x > m`, in order (NaN never replaces).
#[inline(always)]
fn row_max(row: &[f32]) -> f32 {
    let mut m = row[0];
    for &x in row {
        if x > m {
            m = x;
        }
    }
    m
}

/// `H = min(logf(S) - T / S, logf(256))`.
#[inline(always)]
pub(crate) fn entropy(s: f32, t: f32) -> f32 {
    let h = libm::logf(s) - t / s;
    if h > LN_256 { LN_256 } else { h }
}

/// [`finish`] for a next-byte head with an escape logit (`hashmlp`'s
/// [`escape`](crate::hashmlp::HashMlpConfig::escape)): `n` rows of 256 logits and the escape
/// logit `z[p]` of each row.
///
/// With `m` the maximum of the 256 logits as in [`finish`], then `m = z` if `z > m`;
/// `δ_v = l_v - m`, `e_v = expf(δ_v)`, `ε = expf(z - m)`, `u = ε · (1/256)` (exact):
/// `S = (Σ_v e_v) + ε` (plain additions from `0.0`, `v = 0..256`, then `ε`), `a_v = e_v + u`,
/// so that `p_v = a_v / S`; surprisal of `b`: `logf(S) - logf(a_b)`;
/// `H = min(logf(S) - T / S, logf(256))` with `T = Σ_v fma(a_v, logf(a_v), ·)` from `0.0` in
/// order `v = 0..256`, skipping `a_v = 0`.
pub(crate) fn finish_escape(
    simd: bool,
    logits: &[f32],
    z: &[f32],
    n: usize,
    what: Finish<'_>,
    out: &mut [f32],
) {
    assert!(logits.len() >= n * VOCAB_OUT && z.len() >= n && out.len() >= n);
    let (mut delta, mut e) = ([0f32; VOCAB_OUT], [0f32; VOCAB_OUT]);
    for p in 0..n {
        let row = &logits[p * VOCAB_OUT..][..VOCAB_OUT];
        let mut m = row_max(row);
        if z[p] > m {
            m = z[p];
        }
        for (dv, &l) in delta.iter_mut().zip(row) {
            *dv = l - m;
        }
        exp_row(simd, &delta, &mut e);
        let eps = libm::expf(z[p] - m);
        let mut s = 0f32;
        for &x in &e {
            s += x;
        }
        s += eps;
        let u = eps * (1.0 / VOCAB_OUT as f32);
        out[p] = match what {
            Finish::Surprisal(targets) => libm::logf(s) - libm::logf(e[targets[p] as usize] + u),
            Finish::Entropy => {
                let mut t = 0f32;
                for &x in &e {
                    let a = x + u;
                    if a > 0.0 {
                        t = libm::fmaf(a, libm::logf(a), t);
                    }
                }
                entropy(s, t)
            }
        };
    }
}

/// `dst[v] = libm::expf(src[v])` with the SIMD (`simd`) or the portable flavour.
pub(crate) fn exp_row(simd: bool, src: &[f32], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: test callers pass `simd` only when AVX2 and FMA are available.
        unsafe { avx2::exp_row(src, dst) };
        return;
    }
    let _ = simd;
    Soft.exp_row(src, dst);
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! AVX2 + FMA kernels. Every function here requires both features at run time.

    use std::arch::x86_64::*;

    use super::{Arith, Finish, LANES, Packed, Store, VOCAB_OUT, finish_impl, rmsnorm_impl};

    /// Positions per tile of the batch kernel (6 × 2 accumulators + 2 weights + 1 broadcast
    /// fill 15 of the 16 AVX registers; larger tiles spill).
    const TILE_P: usize = 6;
    /// Output blocks per tile of the batch kernel.
    const TILE_W: usize = 2;

    /// The hardware flavour of [`Arith`]: scalar `vfmadd` and the vectorised `expf`.
    #[derive(Clone, Copy)]
    struct Hard;

    impl Arith for Hard {
        #[inline(always)]
        fn fma(self, a: f32, b: f32, c: f32) -> f32 {
            // Only instantiated inside `#[target_feature(enable = "fma")]` functions, where this
            // is the `vfmadd` instruction (a correctly rounded fused multiply-add).
            a.mul_add(b, c)
        }
        #[inline(always)]
        fn exp_row(self, src: &[f32], dst: &mut [f32]) {
            // SAFETY: `Hard` values exist only inside functions that require AVX2 + FMA.
            unsafe { exp_row(src, dst) }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn rmsnorm(
        src: &[f32],
        src_stride: usize,
        n: usize,
        gamma: &[f32],
        eps: f32,
        dst: &mut [f32],
        dst_stride: usize,
        dst_rows: &[usize],
    ) {
        rmsnorm_impl(
            Hard, src, src_stride, n, gamma, eps, dst, dst_stride, dst_rows,
        );
    }

    /// Groups of eight rows are transposed so that each lane holds one row: the maximum, `δ`,
    /// `expf`, `S` and `T` then proceed in `v` order for eight rows at once, with exactly the
    /// scalar operations of [`finish_rows`](super::finish_rows). Remaining rows go one by one.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn finish(logits: &[f32], n: usize, what: Finish<'_>, out: &mut [f32]) {
        let mut g = 0;
        while g + LANES <= n {
            finish8(
                &logits[g * VOCAB_OUT..][..LANES * VOCAB_OUT],
                g,
                what,
                &mut out[g..g + LANES],
            );
            g += LANES;
        }
        finish_impl(
            Hard,
            &logits[g * VOCAB_OUT..],
            n - g,
            shift(what, g),
            &mut out[g..],
        );
    }

    /// `what` for rows starting at `g`.
    fn shift(what: Finish<'_>, g: usize) -> Finish<'_> {
        match what {
            Finish::Entropy => Finish::Entropy,
            Finish::Surprisal(t) => Finish::Surprisal(&t[g.min(t.len())..]),
        }
    }

    /// Eight rows of logits (`[8, 256]`), rows `g..g + 8` of the caller's.
    #[target_feature(enable = "avx2,fma")]
    fn finish8(logits: &[f32], g: usize, what: Finish<'_>, out: &mut [f32]) {
        let mut lt = [_mm256_setzero_ps(); VOCAB_OUT];
        for vb in 0..VOCAB_OUT / LANES {
            let r: [__m256; LANES] = std::array::from_fn(|q| {
                let row = &logits[q * VOCAB_OUT + vb * LANES..][..LANES];
                // SAFETY: `row` holds 8 floats.
                unsafe { _mm256_loadu_ps(row.as_ptr()) }
            });
            let c = transpose8(r);
            lt[vb * LANES..][..LANES].copy_from_slice(&c);
        }
        // m = max with the scalar semantics: replace when `x > m`, in order.
        let mut m = lt[0];
        for &x in &lt {
            m = _mm256_blendv_ps(m, x, _mm256_cmp_ps::<_CMP_GT_OQ>(x, m));
        }
        let mut s = _mm256_setzero_ps();
        let mut t = _mm256_setzero_ps();
        let entropy = matches!(what, Finish::Entropy);
        for &x in &lt {
            let d = _mm256_sub_ps(x, m);
            let e = exp8(d);
            s = _mm256_add_ps(s, e);
            if entropy {
                t = _mm256_fmadd_ps(e, d, t);
            }
        }
        let (mut sa, mut ta, mut ma) = ([0f32; LANES], [0f32; LANES], [0f32; LANES]);
        // SAFETY: each array holds 8 floats.
        unsafe {
            _mm256_storeu_ps(sa.as_mut_ptr(), s);
            _mm256_storeu_ps(ta.as_mut_ptr(), t);
            _mm256_storeu_ps(ma.as_mut_ptr(), m);
        }
        for q in 0..LANES {
            out[q] = match what {
                Finish::Entropy => super::entropy(sa[q], ta[q]),
                Finish::Surprisal(targets) => {
                    let delta = logits[q * VOCAB_OUT + targets[g + q] as usize] - ma[q];
                    libm::logf(sa[q]) - delta
                }
            };
        }
    }

    /// Transposes an 8×8 block (`r[q]` lane `c` becomes `out[c]` lane `q`).
    #[target_feature(enable = "avx2,fma")]
    fn transpose8(r: [__m256; LANES]) -> [__m256; LANES] {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ]
    }

    /// `libm::expf` on eight lanes: [`expf8`] when every lane lies in `[-80, 80]`, else lane by
    /// lane.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn exp8(x: __m256) -> __m256 {
        let abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0), x);
        let inside = _mm256_cmp_ps::<_CMP_LE_OQ>(abs, _mm256_set1_ps(80.0));
        if _mm256_movemask_ps(inside) == 0xff {
            expf8(x)
        } else {
            let mut a = [0f32; LANES];
            // SAFETY: `a` holds 8 floats.
            unsafe { _mm256_storeu_ps(a.as_mut_ptr(), x) };
            for v in &mut a {
                *v = libm::expf(*v);
            }
            // SAFETY: as above.
            unsafe { _mm256_loadu_ps(a.as_ptr()) }
        }
    }

    /// `dst[v] = libm::expf(src[v])`, eight at a time where every lane lies in `[-80, 80]`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_row(src: &[f32], dst: &mut [f32]) {
        let n = src.len().min(dst.len());
        let mut v = 0;
        while v + LANES <= n {
            // SAFETY: `v + 8 <= n` for both slices.
            unsafe {
                let x = _mm256_loadu_ps(src.as_ptr().add(v));
                _mm256_storeu_ps(dst.as_mut_ptr().add(v), exp8(x));
            }
            v += LANES;
        }
        for u in v..n {
            dst[u] = libm::expf(src[u]);
        }
    }

    /// `libm::expf` (FreeBSD's `e_expf.c` algorithm) on eight lanes, bit for bit, for lanes in
    /// `[-80, 80]`: there the special cases (NaN, overflow, underflow) cannot occur and
    /// `scalbnf(y, k)` is an exact multiplication by `2^k` (the result is normal). Every
    /// operation below is the same IEEE single-precision operation, in the same order, as in
    /// the scalar code (no contraction into FMA).
    #[target_feature(enable = "avx2,fma")]
    fn expf8(x: __m256) -> __m256 {
        // libm's constants, by their bits.
        const LN2_HI: f32 = f32::from_bits(0x3f31_7200); // 6.9314575195e-01
        const LN2_LO: f32 = f32::from_bits(0x35bf_be8e); // 1.4286067653e-06
        const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b); // 1.4426950216e+00
        const P1: f32 = f32::from_bits(0x3e2a_aa8f); // 1.6666625440e-1
        const P2: f32 = f32::from_bits(0xbb35_5215); // -2.7667332906e-3
        let bits = _mm256_castps_si256(x);
        let hx = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fff_ffff));
        let neg = _mm256_srai_epi32::<31>(bits);
        let negf = _mm256_castsi256_ps(neg);
        // |x| > 1.5 ln2: k = (int)(INV_LN2 · x ± 0.5); 0.5 ln2 < |x| <= 1.5 ln2: k = ±1;
        // 2^-14 < |x| <= 0.5 ln2: k = 0 (then hi = x, lo = 0, exactly as below);
        // |x| <= 2^-14: 1 + x.
        let big = _mm256_cmpgt_epi32(hx, _mm256_set1_epi32(0x3f85_1592));
        let mid = _mm256_cmpgt_epi32(hx, _mm256_set1_epi32(0x3eb1_7218));
        let not_tiny = _mm256_cmpgt_epi32(hx, _mm256_set1_epi32(0x3900_0000));
        let half = _mm256_blendv_ps(_mm256_set1_ps(0.5), _mm256_set1_ps(-0.5), negf);
        let kbig = _mm256_cvttps_epi32(_mm256_add_ps(
            _mm256_mul_ps(_mm256_set1_ps(INV_LN2), x),
            half,
        ));
        let kmid = _mm256_or_si256(neg, _mm256_set1_epi32(1)); // -1 or 1
        let k = _mm256_blendv_epi8(_mm256_and_si256(mid, kmid), kbig, big);
        let kf = _mm256_cvtepi32_ps(k);
        let hi = _mm256_sub_ps(x, _mm256_mul_ps(kf, _mm256_set1_ps(LN2_HI)));
        let lo = _mm256_mul_ps(kf, _mm256_set1_ps(LN2_LO));
        let xr = _mm256_sub_ps(hi, lo);
        let xx = _mm256_mul_ps(xr, xr);
        let poly = _mm256_add_ps(_mm256_set1_ps(P1), _mm256_mul_ps(xx, _mm256_set1_ps(P2)));
        let c = _mm256_sub_ps(xr, _mm256_mul_ps(xx, poly));
        let q = _mm256_div_ps(_mm256_mul_ps(xr, c), _mm256_sub_ps(_mm256_set1_ps(2.0), c));
        let y = _mm256_add_ps(_mm256_set1_ps(1.0), _mm256_add_ps(_mm256_sub_ps(q, lo), hi));
        let scale = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            k,
            _mm256_set1_epi32(127),
        )));
        let r = _mm256_mul_ps(y, scale);
        let tiny = _mm256_add_ps(_mm256_set1_ps(1.0), x);
        _mm256_blendv_ps(tiny, r, _mm256_castsi256_ps(not_tiny))
    }

    /// See [`super::dense`]; the caller has checked every extent.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn dense(
        w: &Packed,
        input: &[f32],
        in_stride: usize,
        rows: &[usize],
        np: usize,
        out: &mut [f32],
        out_stride: usize,
        store: Store,
    ) {
        let inp = input.as_ptr();
        let outp = out.as_mut_ptr();
        let taps = w.taps;
        // SAFETY (all tile calls): the caller checked that every row in `rows[..np·taps]` and
        // every output row `< np` with `padded_out` lanes lie inside the slices; tiles only
        // touch positions `< np` and blocks `< w.blocks`.
        unsafe {
            if np == 1 {
                // One position (streaming): wide tiles for independent accumulator chains.
                let mut b = 0;
                while b < w.blocks {
                    let left = w.blocks - b;
                    let o = outp;
                    if left >= 8 {
                        tile::<1, 8>(w, b, inp, in_stride, rows, o, out_stride, store);
                        b += 8;
                    } else if left >= 4 {
                        tile::<1, 4>(w, b, inp, in_stride, rows, o, out_stride, store);
                        b += 4;
                    } else if left >= 2 {
                        tile::<1, 2>(w, b, inp, in_stride, rows, o, out_stride, store);
                        b += 2;
                    } else {
                        tile::<1, 1>(w, b, inp, in_stride, rows, o, out_stride, store);
                        b += 1;
                    }
                }
                return;
            }
            let mut b = 0;
            while b < w.blocks {
                let wn = (w.blocks - b).min(TILE_W);
                let mut p = 0;
                while p < np {
                    let pn = (np - p).min(TILE_P);
                    let r = &rows[p * taps..];
                    let o = outp.add(p * out_stride);
                    macro_rules! go {
                        ($($pp:literal $ww:literal),*) => {
                            match (pn, wn) {
                                $(($pp, $ww) => tile::<$pp, $ww>(w, b, inp, in_stride, r, o, out_stride, store),)*
                                _ => unreachable!(),
                            }
                        };
                    }
                    // TILE_P × TILE_W and the smaller tiles at the edges.
                    go!(1 1, 1 2, 2 1, 2 2, 3 1, 3 2, 4 1, 4 2, 5 1, 5 2, 6 1, 6 2);
                    p += pn;
                }
                b += wn;
            }
        }
    }

    /// One tile: `P` positions × `W` output blocks starting at block `b0`. Position `p`'s tap
    /// `j` reads row `rows[p·taps + j]` of `inp`; it writes `out + p·out_stride + b·LANES`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const P: usize, const W: usize>(
        w: &Packed,
        b0: usize,
        inp: *const f32,
        in_stride: usize,
        rows: &[usize],
        out: *mut f32,
        out_stride: usize,
        store: Store,
    ) {
        let (n_in, taps, bl) = (w.n_in, w.taps, w.block_len());
        // SAFETY: see `dense`.
        unsafe {
            let wb = w.data.as_ptr().add(b0 * bl);
            let mut acc = [[_mm256_setzero_ps(); W]; P];
            for q in 0..W {
                let bias = _mm256_loadu_ps(w.bias.as_ptr().add((b0 + q) * LANES));
                for a in acc.iter_mut() {
                    a[q] = bias;
                }
            }
            for j in 0..taps {
                let xs: [*const f32; P] =
                    std::array::from_fn(|p| inp.add(rows[p * taps + j] * in_stride));
                let wj = wb.add(j * n_in * LANES);
                for i in 0..n_in {
                    let mut wv = [_mm256_setzero_ps(); W];
                    for (q, v) in wv.iter_mut().enumerate() {
                        *v = _mm256_loadu_ps(wj.add(q * bl + i * LANES));
                    }
                    for p in 0..P {
                        let x = _mm256_set1_ps(*xs[p].add(i));
                        for q in 0..W {
                            acc[p][q] = _mm256_fmadd_ps(wv[q], x, acc[p][q]);
                        }
                    }
                }
            }
            let zero = _mm256_setzero_ps();
            for (p, a) in acc.iter().enumerate() {
                for (q, &v) in a.iter().enumerate() {
                    let dst = out.add(p * out_stride + (b0 + q) * LANES);
                    let val = match store {
                        Store::Plain => v,
                        // `x > 0 ? x : +0.0`, as `relu`.
                        Store::Relu => _mm256_and_ps(v, _mm256_cmp_ps::<_CMP_GT_OQ>(v, zero)),
                        Store::AddTo => _mm256_add_ps(_mm256_loadu_ps(dst), v),
                    };
                    _mm256_storeu_ps(dst, val);
                }
            }
        }
    }
}
