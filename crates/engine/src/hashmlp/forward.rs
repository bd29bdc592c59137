//! The fast paths of [`HashMlpModel`]: table rows of a block of positions, the entropy head, and
//! the next-byte head. Every function computes, per position, exactly the operations of
//! [`super::reference`]; see the [module docs](super) for why the SIMD flavour gives the same
//! bits.

use super::HashMlpModel;
use super::arch::{MAX_ORDER, MAX_TABLES, TREE_LANES, rows_at};
use crate::arch::VOCAB_OUT;
use crate::kernels::{self, Finish, LN_256, Store, relu};

/// Positions per block: bounds the working memory of a batch evaluation.
pub(crate) const BLOCK: usize = 256;

/// Writes the table rows of positions `s .. s + n` of `doc` into `rows[.. n · orders]`.
pub(crate) fn block_rows(m: &HashMlpModel, doc: &[u8], s: usize, n: usize, rows: &mut [u32]) {
    let cfg = &m.cfg;
    let k = cfg.orders.len();
    let c = cfg.context();
    for p in 0..n {
        let t = s + p;
        let out = &mut rows[p * k..][..k];
        if t >= MAX_ORDER {
            let w = window(doc, t);
            for (j, o) in out.iter_mut().enumerate() {
                *o = m.fast.row(j, w);
            }
        } else {
            rows_at(cfg, t, &doc[t.saturating_sub(c)..t], out);
        }
    }
}

/// The 8 bytes before `t >= 8` as one big-endian word: the most recent byte is the lowest, so
/// the key of order `n` is its lowest `n` bytes.
#[inline(always)]
fn window(doc: &[u8], t: usize) -> u64 {
    u64::from_be_bytes(doc[t - MAX_ORDER..t].try_into().expect("8 bytes"))
}

/// Per-order constants of the rows of positions `t >= 8`, where every key has its full length:
/// `row_j = ((w & mask_j) · mult_j) >> shift_j` for the 8-byte window `w` (`mask_j` keeps the
/// table's `n_j` bytes, each and-ed with its byte mask); order 1 is the same
/// formula with `mult = 2^56`, `shift = 56` (its row is the byte itself).
#[derive(Clone, Debug)]
pub(crate) struct FastRows {
    pub(crate) mask: Vec<u64>,
    pub(crate) mult: Vec<u64>,
    pub(crate) shift: Vec<u32>,
    /// Offset (in values) of each order's quantised table in [`HashMlpModel::quantized`].
    pub(crate) base: Vec<usize>,
}

impl FastRows {
    pub fn new(cfg: &super::HashMlpConfig) -> Self {
        let mut base = Vec::with_capacity(cfg.orders.len());
        let mut at = 0usize;
        for &r in &cfg.rows {
            base.push(at);
            at += r * cfg.entropy_hidden;
        }
        let (mut mask, mut mult, mut shift) = (Vec::new(), Vec::new(), Vec::new());
        for (j, (&n, &r)) in cfg.orders.iter().zip(&cfg.rows).enumerate() {
            mask.push(super::arch::spread(cfg.mask(j), n));
            if n == 1 {
                mult.push(1 << 56);
                shift.push(56);
            } else {
                mult.push(super::arch::multiplier(j, n));
                shift.push(64 - r.trailing_zeros());
            }
        }
        Self {
            mask,
            mult,
            shift,
            base,
        }
    }

    /// The row of order `j` for the window `w` (see [`window`]).
    #[inline(always)]
    fn row(&self, j: usize, w: u64) -> u32 {
        ((w & self.mask[j]).wrapping_mul(self.mult[j]) >> self.shift[j]) as u32
    }
}

/// Entropies of positions `s .. s + n` of `doc` into `out[..n]`.
pub(crate) fn entropies_block(m: &HashMlpModel, doc: &[u8], s: usize, n: usize, out: &mut [f32]) {
    let out = &mut out[..n];
    // The first positions of a document (short keys) take the general path.
    let first = MAX_ORDER.saturating_sub(s).min(n);
    entropies_general(m, doc, s, &mut out[..first]);
    if first == n {
        return;
    }
    let (s, out) = (s + first, &mut out[first..]);
    macro_rules! go {
        ($($k:literal),*) => {
            match (m.cfg.orders.len(), m.cfg.entropy_hidden) {
                $(
                    ($k, 8) => full_keys::<$k, 1, 8>(m, doc, s, out),
                    ($k, 16) => full_keys::<$k, 2, 16>(m, doc, s, out),
                    ($k, 32) => full_keys::<$k, 4, 32>(m, doc, s, out),
                )*
                _ => entropies_general(m, doc, s, out),
            }
        };
    }
    go!(1, 2, 3, 4, 5, 6, 7, 8);
}

/// Positions `s .. s + out.len()`, all `>= 8`, of a model with `K` orders and `g = G = 8·C`.
fn full_keys<const K: usize, const C: usize, const G: usize>(
    m: &HashMlpModel,
    doc: &[u8],
    s: usize,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if m.simd {
        // SAFETY: `simd` is only set when AVX2 and FMA were detected at run time.
        unsafe { avx2::entropies::<K, C>(m, doc, s, out) };
        return;
    }
    portable::<K, G>(m, doc, s, out);
}

/// The per-order constants of [`FastRows`] for `K` orders, in registers.
struct Orders<const K: usize> {
    mask: [u64; K],
    mult: [u64; K],
    shift: [u32; K],
    base: [usize; K],
}

impl<const K: usize> Orders<K> {
    fn new(m: &HashMlpModel) -> Self {
        let f = &m.fast;
        assert_eq!(f.base.len(), K);
        Self {
            mask: std::array::from_fn(|j| f.mask[j]),
            mult: std::array::from_fn(|j| f.mult[j]),
            shift: std::array::from_fn(|j| f.shift[j]),
            base: std::array::from_fn(|j| f.base[j]),
        }
    }

    /// The offset in the quantised tables of order `j`'s row (`g` values a row) for the
    /// window `w` ([`window`]).
    #[inline(always)]
    fn offset(&self, j: usize, w: u64, g: usize) -> usize {
        let row = (w & self.mask[j]).wrapping_mul(self.mult[j]) >> self.shift[j];
        self.base[j] + row as usize * g
    }
}

/// The portable head for positions `>= 8` (`K` orders, `g = G`), integer sums in registers.
fn portable<const K: usize, const G: usize>(
    m: &HashMlpModel,
    doc: &[u8],
    s: usize,
    out: &mut [f32],
) {
    let orders = Orders::<K>::new(m);
    let windows = doc[s - MAX_ORDER..s + out.len() - 1].windows(MAX_ORDER);
    for (o, w8) in out.iter_mut().zip(windows) {
        let w = u64::from_be_bytes(w8.try_into().expect("8 bytes"));
        let mut acc = [0i32; G];
        for j in 0..K {
            let at = orders.offset(j, w, G);
            let q: &[i16; G] = m.quantized[at..at + G].try_into().expect("a row");
            for (a, &v) in acc.iter_mut().zip(q) {
                *a += v as i32;
            }
        }
        *o = head(m, &acc);
    }
}

/// The entropy head of positions `s .. s + out.len()` for any position and any `g`.
fn entropies_general(m: &HashMlpModel, doc: &[u8], s: usize, out: &mut [f32]) {
    match m.cfg.entropy_hidden {
        8 => general_g::<8>(m, doc, s, out),
        16 => general_g::<16>(m, doc, s, out),
        32 => general_g::<32>(m, doc, s, out),
        _ => general_dyn(m, doc, s, out),
    }
}

/// The table rows of position `t` into `rows[..k]`.
#[inline(always)]
fn rows_of(m: &HashMlpModel, doc: &[u8], t: usize, rows: &mut [u32]) {
    if t >= MAX_ORDER {
        let w = window(doc, t);
        for (j, r) in rows.iter_mut().enumerate() {
            *r = m.fast.row(j, w);
        }
    } else {
        let c = m.cfg.context();
        rows_at(&m.cfg, t, &doc[t.saturating_sub(c)..t], rows);
    }
}

/// [`entropies_general`] for `g = G`, with the sums in registers.
fn general_g<const G: usize>(m: &HashMlpModel, doc: &[u8], s: usize, out: &mut [f32]) {
    let k = m.cfg.orders.len();
    let mut rows = [0u32; MAX_TABLES];
    for (p, o) in out.iter_mut().enumerate() {
        rows_of(m, doc, s + p, &mut rows[..k]);
        let mut acc = [0i32; G];
        for (j, &r) in rows[..k].iter().enumerate() {
            let q: &[i16; G] = m.quantized[m.fast.base[j] + r as usize * G..][..G]
                .try_into()
                .expect("a row of g values");
            for i in 0..G {
                acc[i] += q[i] as i32;
            }
        }
        *o = head(m, &acc);
    }
}

/// [`entropies_general`] for any `g` (a multiple of 8).
fn general_dyn(m: &HashMlpModel, doc: &[u8], s: usize, out: &mut [f32]) {
    let (k, g) = (m.cfg.orders.len(), m.cfg.entropy_hidden);
    let mut rows = [0u32; MAX_TABLES];
    let mut acc = vec![0i32; g];
    for (p, o) in out.iter_mut().enumerate() {
        rows_of(m, doc, s + p, &mut rows[..k]);
        acc.fill(0);
        for (j, &r) in rows[..k].iter().enumerate() {
            let q = &m.quantized[m.fast.base[j] + r as usize * g..][..g];
            for (a, &v) in acc.iter_mut().zip(q) {
                *a += v as i32;
            }
        }
        *o = head(m, &acc);
    }
}

/// `H` from the summed quantised rows `acc` (`[g]`): `s = proj_b + acc · 2^e`, then
/// `min(max(out_b + tree(out_w ⊙ relu(s)), 0), ln 256)` (see [`super::reference`]).
#[inline(always)]
fn head(m: &HashMlpModel, acc: &[i32]) -> f32 {
    let mut t = [0f32; TREE_LANES];
    for (c, ((a, b), w)) in acc
        .chunks_exact(TREE_LANES)
        .zip(m.ent_bias.chunks_exact(TREE_LANES))
        .zip(m.ent_out.chunks_exact(TREE_LANES))
        .enumerate()
    {
        for l in 0..TREE_LANES {
            let s = b[l] + a[l] as f32 * m.scale;
            let x = w[l] * relu(s);
            t[l] = if c == 0 { x } else { t[l] + x };
        }
    }
    clamp(tree8(&t) + m.ent_out_bias)
}

/// `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))`, the fixed pairwise tree.
#[inline(always)]
fn tree8(a: &[f32; TREE_LANES]) -> f32 {
    let b = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    let c = [b[0] + b[2], b[1] + b[3]];
    c[0] + c[1]
}

/// `min(max(z, +0.0), ln 256)` (`+0.0` for `z <= 0` and NaN).
#[inline(always)]
fn clamp(z: f32) -> f32 {
    let h = relu(z);
    if h > LN_256 { LN_256 } else { h }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The entropy head with AVX2 intrinsics for positions `t >= 8`, one position at a time,
    //! with exactly the operations of the portable code: 16-bit integer additions of the rows
    //! (exact, as the portable 32-bit ones: the sum of at most 8 rows of values in
    //! `[-4095, 4095]` fits), `cvtdq2ps`, `mulps` by `2^e`, `addps` of the bias, `maxps(s, 0)`
    //! as ReLU, `mulps` then `addps` (never fused), the same tree, `maxss`/`minss` as the
    //! clamp.

    use std::arch::x86_64::*;

    use super::super::HashMlpModel;
    use super::{LN_256, Orders};

    /// How many positions ahead the rows are prefetched (and their offsets kept).
    const AHEAD: usize = 16;

    /// Per-model constants of the head, `8·C` units.
    struct Consts<const C: usize> {
        bias: [__m256; C],
        w: [__m256; C],
        scale: __m256,
        out_bias: __m128,
        ln: __m128,
    }

    impl<const C: usize> Consts<C> {
        #[target_feature(enable = "avx2,fma")]
        fn new(m: &HashMlpModel) -> Self {
            assert_eq!(m.ent_bias.len(), 8 * C);
            assert_eq!(m.ent_out.len(), 8 * C);
            // SAFETY: both vectors hold `8·C` values (checked above).
            unsafe {
                Self {
                    bias: std::array::from_fn(|c| _mm256_loadu_ps(m.ent_bias.as_ptr().add(8 * c))),
                    w: std::array::from_fn(|c| _mm256_loadu_ps(m.ent_out.as_ptr().add(8 * c))),
                    scale: _mm256_set1_ps(m.scale),
                    out_bias: _mm_set_ss(m.ent_out_bias),
                    ln: _mm_set_ss(LN_256),
                }
            }
        }

        /// `H` from the summed rows, 8 units per `acc[c]` (16-bit lanes widened to 32).
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::needless_range_loop)] // index order is the point
        fn head(&self, acc: [__m128i; C]) -> f32 {
            let zero = _mm256_setzero_ps();
            let mut t = zero;
            for c in 0..C {
                let a = _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(acc[c]));
                let s = _mm256_add_ps(self.bias[c], _mm256_mul_ps(a, self.scale));
                let x = _mm256_mul_ps(self.w[c], _mm256_max_ps(s, zero));
                t = if c == 0 { x } else { _mm256_add_ps(t, x) };
            }
            // [t0+t4, t1+t5, t2+t6, t3+t7], then [b0+b2, b1+b3], then c0 + c1.
            let b = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps::<1>(t));
            let c2 = _mm_add_ps(b, _mm_movehl_ps(b, b));
            let d = _mm_add_ss(c2, _mm_movehdup_ps(c2));
            let z = _mm_add_ss(d, self.out_bias);
            _mm_cvtss_f32(_mm_min_ss(_mm_max_ss(z, _mm_setzero_ps()), self.ln))
        }
    }

    /// `H` of positions `s .. s + out.len()` (each `>= 8`), `g = 8·C` units, `K` orders.
    ///
    /// # Safety
    /// AVX2 must be available (the sizes are asserted).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn entropies<const K: usize, const C: usize>(
        m: &HashMlpModel,
        doc: &[u8],
        s: usize,
        out: &mut [f32],
    ) {
        assert!(s >= 8 && m.cfg.entropy_hidden == 8 * C && m.cfg.orders.len() == K);
        let orders = Orders::<K>::new(m);
        let consts = Consts::<C>::new(m);
        let g = 8 * C;
        let table = m.quantized.as_ptr();
        assert!(m.quantized.len() >= orders.base[K - 1] + m.cfg.rows[K - 1] * g);
        // The offsets of a position's rows in `quantized`.
        let rows_of = |t: usize| -> [usize; K] {
            let w = u64::from_be_bytes(doc[t - 8..t].try_into().expect("8 bytes"));
            std::array::from_fn(|j| orders.offset(j, w, g))
        };
        // Rows are requested from memory `AHEAD` positions before they are read (large tables
        // miss the caches; the requests overlap); each position's offsets are computed once,
        // kept in a ring until read. No value changes.
        let prefetch = |rows: &[usize; K]| {
            for &r in rows {
                // SAFETY: as for the reads below, the row lies inside `quantized`.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(table.add(r) as *const i8) };
            }
        };
        let n = out.len();
        let mut ring = [[0usize; K]; AHEAD];
        for (i, slot) in ring.iter_mut().enumerate().take(n) {
            *slot = rows_of(s + i);
            prefetch(slot);
        }
        for (i, o) in out.iter_mut().enumerate() {
            let rows = ring[i % AHEAD];
            if i + AHEAD < n {
                let next = rows_of(s + i + AHEAD);
                prefetch(&next);
                ring[i % AHEAD] = next;
            }
            // The sum of the rows, 16 units per 256-bit register (8 in the last, odd one).
            let mut acc = [_mm256_setzero_si256(); C];
            for &at in &rows {
                // SAFETY: a row is `< rows_j` (a shift by `64 - log2 rows_j`, or a byte for
                // order 1), so `at + g` lies inside `quantized` (asserted above).
                unsafe {
                    let r = table.add(at);
                    for (h, a) in acc.iter_mut().enumerate().take(C / 2) {
                        let v = _mm256_loadu_si256(r.add(16 * h) as *const __m256i);
                        *a = _mm256_add_epi16(*a, v);
                    }
                    if C % 2 == 1 {
                        let h = C / 2;
                        let v = _mm_loadu_si128(r.add(16 * h) as *const __m128i);
                        let sum = _mm_add_epi16(_mm256_castsi256_si128(acc[h]), v);
                        acc[h] = _mm256_castsi128_si256(sum);
                    }
                }
            }
            let groups: [__m128i; C] = std::array::from_fn(|c| {
                let v = acc[c / 2];
                if c % 2 == 0 {
                    _mm256_castsi256_si128(v)
                } else {
                    _mm256_extracti128_si256::<1>(v)
                }
            });
            *o = consts.head(groups);
        }
    }
}

/// Working buffers of the next-byte head for blocks of up to [`BLOCK`] positions.
pub(crate) struct HeadState {
    e: Vec<f32>,
    z: Vec<f32>,
    y: Vec<f32>,
    logits: Vec<f32>,
    /// The escape logit of each position (when the model has one).
    escape: Vec<f32>,
    ident: Vec<usize>,
}

impl HeadState {
    pub fn new(m: &HashMlpModel, block: usize) -> Self {
        Self {
            e: vec![0f32; block * m.ds],
            z: vec![0f32; block * m.ds],
            y: vec![0f32; block * m.hs],
            logits: vec![0f32; block * VOCAB_OUT],
            escape: vec![0f32; block],
            ident: (0..block).collect(),
        }
    }

    /// The next-byte head over `n` positions from their table rows (`rows: [n, orders]`):
    /// surprisals of `targets` or entropies of the distribution, into `out: [n]`.
    pub fn run(
        &mut self,
        m: &HashMlpModel,
        rows: &[u32],
        n: usize,
        what: Finish<'_>,
        out: &mut [f32],
    ) {
        let (k, d) = (m.cfg.orders.len(), m.cfg.d_model);
        for p in 0..n {
            let e = &mut self.e[p * m.ds..][..d];
            for (j, &row) in rows[p * k..][..k].iter().enumerate() {
                let t = &m.tensors[j][row as usize * d..][..d];
                if j == 0 {
                    e.copy_from_slice(t);
                } else {
                    for (x, &v) in e.iter_mut().zip(t) {
                        *x += v;
                    }
                }
            }
        }
        kernels::rmsnorm(
            m.simd,
            &self.e,
            m.ds,
            n,
            m.norm_gamma(),
            m.cfg.norm_eps,
            &mut self.z,
            m.ds,
            &self.ident[..n],
        );
        kernels::dense(
            m.simd,
            &m.hidden,
            &self.z,
            m.ds,
            &self.ident,
            n,
            &mut self.y,
            m.hs,
            Store::Relu,
        );
        kernels::dense(
            m.simd,
            &m.head,
            &self.y,
            m.hs,
            &self.ident,
            n,
            &mut self.logits,
            VOCAB_OUT,
            Store::Plain,
        );
        match &m.escape {
            None => kernels::finish(m.simd, &self.logits, n, what, out),
            Some(esc) => {
                // The escape logit: the bias, then one scalar per table it reads, in order.
                for (p, zp) in self.escape[..n].iter_mut().enumerate() {
                    let mut acc = esc.bias;
                    for (j, s) in &esc.tables {
                        acc += s[rows[p * k + j] as usize];
                    }
                    *zp = acc;
                }
                kernels::finish_escape(m.simd, &self.logits, &self.escape, n, what, out);
            }
        }
    }
}
