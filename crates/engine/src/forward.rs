//! The forward pass over a block of consecutive positions with carried per-layer state, shared by
//! the batch path (blocks of up to [`BLOCK`] positions) and the streaming path (blocks of one).
//!
//! Each block `l` keeps a ring buffer of its normalised inputs `a` for the last
//! `(k-1)·dil_l + block` positions of the evaluated window; a ring starts zeroed, which is the
//! zero padding before the window. A position's convolution reads the rows of its `k` taps from
//! the ring, so consecutive blocks continue exactly where the previous one stopped and every
//! position is computed by the same sequence of operations whatever the block size.

use crate::ConvModel;
use crate::arch::{BOS, VOCAB_OUT, ngram_bucket};
use crate::kernels::{self, Finish, Store};

/// Positions per block of the batch path: bounds the working memory of [`State`].
pub(crate) const BLOCK: usize = 256;

/// Working buffers and carried state for blocks of up to `block` positions.
pub(crate) struct State {
    block: usize,
    /// Per layer: ring of normalised block inputs, `[caps[l], ds]`.
    rings: Vec<Vec<f32>>,
    caps: Vec<usize>,
    /// The residual stream of the current block, `[block, ds]`.
    h: Vec<f32>,
    /// Convolution outputs after ReLU, `[block, fs]`.
    c: Vec<f32>,
    /// Final-norm outputs, `[block, ds]`.
    z: Vec<f32>,
    /// Logits, `[block, 256]`.
    logits: Vec<f32>,
    /// Row indices of the convolution taps, `[block, k]`.
    tap_rows: Vec<usize>,
    /// Ring rows written by the current block, `[block]`.
    ring_rows: Vec<usize>,
    /// `0..block`.
    ident: Vec<usize>,
    /// Hash buckets of the current block, `[block, hash orders]` (`u32::MAX`: absent).
    buckets: Vec<u32>,
}

/// The bucket of every hash order at document position `t` (`u32::MAX` when `t < n_j`), where
/// `prev` holds the bytes `x[t - min(t, n_max) .. t)`.
fn bucket_row(m: &ConvModel, t: usize, prev: &[u8], out: &mut [u32]) {
    for (j, (&n, o)) in m.cfg.hash_orders.iter().zip(out).enumerate() {
        *o = if t >= n {
            ngram_bucket(&prev[prev.len() - n..], j, m.cfg.hash_buckets) as u32
        } else {
            u32::MAX
        };
    }
}

impl State {
    /// Buffers for blocks of up to `block >= 1` positions, rings zeroed (start of a window).
    pub fn new(m: &ConvModel, block: usize) -> Self {
        let block = block.max(1);
        let k = m.cfg.kernel_size;
        let caps: Vec<usize> = m
            .cfg
            .dilations
            .iter()
            .map(|&dl| (k - 1) * dl + block)
            .collect();
        Self {
            block,
            rings: caps.iter().map(|&c| vec![0f32; c * m.ds]).collect(),
            caps,
            h: vec![0f32; block * m.ds],
            c: vec![0f32; block * m.fs],
            z: vec![0f32; block * m.ds],
            logits: vec![0f32; block * VOCAB_OUT],
            tap_rows: vec![0; block * k],
            ring_rows: vec![0; block],
            ident: (0..block).collect(),
            buckets: vec![0; block * m.cfg.hash_orders.len()],
        }
    }

    /// The block size.
    pub fn block(&self) -> usize {
        self.block
    }

    /// Zeroes the rings: the next position is the start of a new window.
    pub fn reset(&mut self) {
        for r in &mut self.rings {
            r.fill(0.0);
        }
    }

    /// Writes the model input of document position `t` into row `p` of the residual stream.
    /// `prev` holds the bytes `x[t - min(t, n_max) .. t)`.
    pub fn embed(&mut self, m: &ConvModel, p: usize, t: usize, prev: &[u8]) {
        let nh = m.cfg.hash_orders.len();
        bucket_row(m, t, prev, &mut self.buckets[..nh]);
        self.embed_row(m, p, t, prev, 0);
    }

    /// Writes the model inputs of document positions `s .. s + n` into rows `0..n`.
    pub fn embed_block(&mut self, m: &ConvModel, doc: &[u8], s: usize, n: usize) {
        let (nh, n_max) = (m.cfg.hash_orders.len(), m.cfg.max_order());
        // All buckets first, so that the (cache-missing) table reads below are independent.
        for p in 0..n {
            let t = s + p;
            bucket_row(
                m,
                t,
                &doc[t.saturating_sub(n_max)..t],
                &mut self.buckets[p * nh..][..nh],
            );
        }
        for p in 0..n {
            let t = s + p;
            self.embed_row(m, p, t, &doc[t.saturating_sub(n_max)..t], p * nh);
        }
    }

    /// `h[p] = embed[tok(t)]`, then `+= hash_j[bucket]` for each present order, in order; the
    /// buckets are at `self.buckets[at ..]`.
    fn embed_row(&mut self, m: &ConvModel, p: usize, t: usize, prev: &[u8], at: usize) {
        let d = m.cfg.d_model;
        let row = &mut self.h[p * m.ds..][..d];
        let tok = if t == 0 {
            BOS
        } else {
            prev[prev.len() - 1] as usize
        };
        row.copy_from_slice(&m.embed()[tok * d..][..d]);
        for j in 0..m.cfg.hash_orders.len() {
            let b = self.buckets[at + j];
            if b != u32::MAX {
                for (x, &e) in row.iter_mut().zip(&m.hash(j)[b as usize * d..][..d]) {
                    *x += e;
                }
            }
        }
    }

    /// Runs every block over rows `0..n` of the residual stream, which hold the inputs of the
    /// window positions `wpos .. wpos + n` (positions are counted from the window start, where
    /// the rings were zeroed). Afterwards the rows hold the last block's outputs.
    pub fn trunk(&mut self, m: &ConvModel, wpos: usize, n: usize) {
        assert!(n <= self.block);
        let k = m.cfg.kernel_size;
        for (l, &dil) in m.cfg.dilations.iter().enumerate() {
            let cap = self.caps[l];
            for (p, r) in self.ring_rows[..n].iter_mut().enumerate() {
                *r = (wpos + p) % cap;
            }
            let ring = &mut self.rings[l];
            kernels::rmsnorm(
                m.simd,
                &self.h,
                m.ds,
                n,
                m.block_gamma(l),
                m.cfg.norm_eps,
                ring,
                m.ds,
                &self.ring_rows[..n],
            );
            for p in 0..n {
                for j in 0..k {
                    let back = (k - 1 - j) * dil;
                    self.tap_rows[p * k + j] = (wpos + p + cap - back) % cap;
                }
            }
            kernels::dense(
                m.simd,
                &m.conv[l],
                ring,
                m.ds,
                &self.tap_rows,
                n,
                &mut self.c,
                m.fs,
                Store::Relu,
            );
            kernels::dense(
                m.simd,
                &m.proj[l],
                &self.c,
                m.fs,
                &self.ident,
                n,
                &mut self.h,
                m.ds,
                Store::AddTo,
            );
        }
    }

    /// The output head over rows `first..n` of the residual stream (after [`trunk`]): entropies
    /// or surprisals into `out[.. n - first]`.
    ///
    /// [`trunk`]: Self::trunk
    pub fn head(
        &mut self,
        m: &ConvModel,
        first: usize,
        n: usize,
        what: Finish<'_>,
        out: &mut [f32],
    ) {
        let cnt = n - first;
        kernels::rmsnorm(
            m.simd,
            &self.h[first * m.ds..],
            m.ds,
            cnt,
            m.norm_gamma(),
            m.cfg.norm_eps,
            &mut self.z,
            m.ds,
            &self.ident[..cnt],
        );
        kernels::dense(
            m.simd,
            &m.head,
            &self.z,
            m.ds,
            &self.ident,
            cnt,
            &mut self.logits,
            VOCAB_OUT,
            Store::Plain,
        );
        kernels::finish(m.simd, &self.logits, cnt, what, out);
    }
}
