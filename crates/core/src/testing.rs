//! Small deterministic models for tests, examples and benchmarks of the framework-free parts.

use std::ops::Range;

use crate::model::{EntropyModel, EntropyStream, WindowStream};

/// A stand-in model that honours the [`EntropyModel`] contract exactly without learning
/// anything: `H[i]` is a hash of the context bytes `x[max(0, i-C) .. i)` mapped into
/// `[0, ln 256)`. Its values are irregular, which exercises every rule and every chunk border.
#[derive(Clone, Debug)]
pub struct HashModel {
    context: usize,
}

impl HashModel {
    /// A model with context length `context`.
    pub fn new(context: usize) -> Self {
        Self { context }
    }

    fn hash(&self, ctx: &[u8], salt: u64) -> u64 {
        // FNV-1a over the context, then a final avalanche.
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ salt;
        for &b in ctx {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }

    fn value(&self, ctx: &[u8], salt: u64) -> f32 {
        // 2^20 levels in [0, 5.545): exact in f32.
        ((self.hash(ctx, salt) >> 44) as f32) * (5.545 / (1u64 << 20) as f32)
    }
}

impl EntropyModel for HashModel {
    fn context(&self) -> usize {
        self.context
    }

    fn entropies(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
        assert_eq!(out.len(), range.len());
        assert!(range.end <= doc.len());
        for (o, i) in out.iter_mut().zip(range) {
            *o = self.value(&doc[i.saturating_sub(self.context)..i], 0);
        }
    }

    fn surprisals(&self, doc: &[u8], range: Range<usize>, out: &mut [f32]) {
        assert_eq!(out.len(), range.len());
        for (o, i) in out.iter_mut().zip(range) {
            *o = self.value(&doc[i.saturating_sub(self.context)..=i], 1);
        }
    }

    fn stream(&self) -> Box<dyn EntropyStream + '_> {
        Box::new(WindowStream::new(self))
    }
}
