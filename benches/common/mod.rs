//! Helpers shared by the bench binaries (`mod common;` in each).

use std::time::Instant;

/// Best of `runs` wall-clock seconds of `f`, after one untimed warm-up call.
pub fn best(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}
