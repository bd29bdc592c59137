//! A small seeded random number generator (SplitMix64) whose whole state is one `u64`, so that
//! training can save and restore it exactly for `--resume`.

/// SplitMix64 (Steele, Lea & Flood 2014): fast, statistically sound for sampling windows and
/// initialising weights, and trivially serialisable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The full state (restore it with [`SplitMix64::new`]).
    pub fn state(&self) -> u64 {
        self.state
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` (`n >= 1`; Lemire's multiply-shift, bias below 2^-64·n).
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n >= 1);
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// A uniform float in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal sample (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1]
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproducible_and_resumable() {
        let mut a = SplitMix64::new(7);
        let first: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let mut b = SplitMix64::new(7);
        assert_eq!(first, (0..5).map(|_| b.next_u64()).collect::<Vec<_>>());
        let mut c = SplitMix64::new(a.state());
        assert_eq!(a.next_u64(), c.next_u64());
        assert!((0..1000).all(|_| a.below(10) < 10));
        assert!((0..1000).all(|_| (0.0..1.0).contains(&a.unit())));
    }
}
