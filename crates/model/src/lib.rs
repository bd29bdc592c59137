//! # bltpatch-model
//!
//! Trains bltpatch's neural entropy model with [burn](https://burn.dev) 0.22: the causal
//! dilated-convolution byte model `"conv"` defined in [`bltpatch_engine::arch`], whose predicted
//! next-byte entropy places the patch boundaries. The canonical, framework-free engine
//! ([`bltpatch_engine::ConvModel`]) runs the trained checkpoints; this crate only trains them
//! (the rules, the streaming decoder and the engine do not depend on burn).
//!
//! ```no_run
//! use std::time::Duration;
//! use bltpatch_model::{train, TrainOptions};
//!
//! let mut opts = TrainOptions::new(vec!["corpus.txt".into()], "my-model");
//! opts.preset = "small".into();
//! opts.time_budget = Some(Duration::from_secs(600));
//! let report = train(&opts)?; // progress bar on stderr
//! println!("{report}"); // held-out bits/byte, calibrated budget, ...
//! # Ok::<(), bltpatch_model::ModelError>(())
//! ```
//!
//! ## The model
//!
//! [`ConvLm`] computes exactly the function of [`bltpatch_engine::arch`] (byte + hashed n-gram
//! embeddings, residual blocks `RMSNorm → causal dilated convolution → ReLU → linear`, final
//! RMSNorm, linear head to 256 logits). The convolution is one matrix product over the `k`
//! shifted copies of the block input. Its fields are named so that burn's parameter paths
//! are the checkpoint's tensor names; a test checks them against
//! [`ConvConfig::tensors`](bltpatch_engine::arch::ConvConfig::tensors), another that its
//! entropies equal a scalar transcription of the formulas and the canonical engine's within
//! `1e-4` nats. No absolute position enters: `H[i]` depends on `x[i-C .. i)` only.
//!
//! | preset | d | f | blocks (dilations) | hash orders × buckets | parameters | FLOPs/byte | context `C` |
//! |---|---|---|---|---|---|---|---|
//! | `tiny` | 32 | 64 | 6 (1..32) | 2,3,4 × 4096 | 447,552 | 90,112 | 67 |
//! | `small` | 64 | 128 | 8 (1..64, 1) | 2,3,4,6 × 8192 | 2,328,960 | 425,984 | 134 |
//! | `base` | 128 | 256 | 10 (1..128, 1, 2) | 2,3,4,6 × 16384 | 9,442,816 | 2,031,616 | 264 |
//!
//! (Kernel size 2 everywhere. Most parameters sit in the hashed n-gram tables, which cost a
//! look-up, not FLOPs.) `context: Some(c)` re-chooses the dilations for a context of at least
//! `c` bytes ([`conv_config`]).
//!
//! ## Training
//!
//! - **Data** ([`data`]): corpus files are memory-mapped (never read into memory); the last
//!   `val_fraction` (default 5 %) of each file is held out. A batch holds `batch_size` random
//!   windows of `R + T` positions (`R` = receptive field, `T` = `seq_len`) whose last `T`
//!   positions, which see their full context, count in the loss; with probability
//!   `doc_start_fraction` a window starts a document at a line start instead (all positions
//!   count, so the behaviour of short contexts after the beginning-of-document token is
//!   learned). Sampling uses a seeded SplitMix64.
//! - **Optimisation** ([`optim`]): cross-entropy in nats, reported in bits/byte; AdamW
//!   (β = 0.9, 0.99; decay on weight matrices only) whose moments are keyed by tensor name;
//!   clipping by the global gradient norm; linear warm-up then cosine decay to
//!   `min_lr_ratio · lr` at the end of `steps` or `time_budget`, whichever comes first.
//! - **Progress**: an indicatif bar on a terminal (step, bytes/s, train and validation
//!   bits/byte, learning rate, ETA), plain lines every 10 s otherwise; a JSON Lines log
//!   [`LOG_FILE`] in the checkpoint directory (one line per `eval_every` steps, and a final
//!   line with the held-out result per document).
//! - **Checkpoints**: `config.json` + `model.safetensors` written atomically
//!   ([`bltpatch_checkpoint::write_checkpoint`]) every `checkpoint_every` (5 minutes), on
//!   Ctrl-C / SIGTERM (a second Ctrl-C exits at once) and at the end. Beside them,
//!   [`RESUME_FILE`] (written atomically first) holds the weights, the AdamW moments and the
//!   loop state (step, RNG state, elapsed time, hyper-parameters), so `resume: true` continues
//!   exactly: a test checks that 3 + 3 resumed steps give the bits of 6 uninterrupted ones.
//! - **The end**: the held-out text (capped at `max_eval_bytes`, 1 MiB) is scored with the
//!   canonical engine, giving the held-out bits/byte and the entropies on which the
//!   rule's parameter for `target_patch_size` (4.5; the budget rule by default,
//!   `calibration_target`) is calibrated ([`bltpatch_core::calibrate()`]) and
//!   stored as the checkpoint's [`CalibrationRecord`](bltpatch_checkpoint::CalibrationRecord);
//!   `config.training` summarises the run.
//! - **Determinism**: the same options and seed give bit-identical checkpoints on flex, for any
//!   thread count (a test runs 1 and 2 threads); initialisation uses the crate's own RNG, not
//!   burn's global one. Runs bounded by `time_budget` stop at a time-dependent step.
//! - **Backends** ([`Backend`]): `flex` (default, pure Rust, SIMD + rayon); `ndarray` and
//!   `wgpu` behind the cargo features of the same names. Devices are built explicitly (never
//!   `Device::default()`); a backend that is not compiled in, or wgpu without an adapter, is an
//!   error that says so. With `--features wgpu` and an adapter, the tests compare the wgpu
//!   forward with flex (largest logit difference 3.6e-7 here) and train and resume on wgpu.
//!
//! ## Checkpoint tensors
//!
//! `model.safetensors` holds `f32` tensors named and shaped as listed by
//! [`ConvConfig::tensors`](bltpatch_engine::arch::ConvConfig::tensors): linear weights are
//! `[in, out]` (burn's row layout: transpose them for `torch.nn.Linear`), convolution weights
//! `[out, in, k]` as `torch.nn.Conv1d`. From Python:
//! `safetensors.numpy.load_file("model/model.safetensors")["blocks.0.conv.weight"].shape`.
//!
//! ## Measurements
//!
//! On the 2-core development machine (x86-64, AVX2; shared with other builds, load average
//! 2–4 during the runs, so expect ±20 %), flex backend, release build, default options
//! (batch 16 × `T` 512, lr 0.02, embedding lr × 8), corpus = `en_books.txt`, `en_docs.txt` and
//! `code_rust.txt` of `../shared/corpora` (27.1 MB), 10 minutes each:
//!
//! ```text
//! cargo build -p bltpatch-model --release --examples
//! C=../shared/corpora
//! target/release/examples/train $C/en_books.txt $C/en_docs.txt $C/code_rust.txt \
//!     -o /tmp/ten_small --preset small --time 600 --dump-val /tmp/val
//! for f in /tmp/val/val_*.bin; do gzip -9 -c $f | wc -c; xz -9 -c $f | wc -c; done
//! ```
//!
//! | preset | steps | bytes trained | throughput (bytes/s) | held-out bits/byte | books / docs / code |
//! |---|---|---|---|---|---|
//! | `tiny` | 4,958 | 40.9 M | 69,400 | 2.257 | 2.658 / 2.000 / 1.868 |
//! | **`small`** | 1,756 | 14.6 M | 24,600 | **2.179** | 2.599 / 1.886 / 1.777 |
//! | `base` | 479 | 4.0 M | 6,800 | 2.256 | 2.664 / 1.978 / 1.863 |
//! | `gzip -9` | | | | 2.587 | 3.289 / 2.254 / 1.868 |
//! | `xz -9` | | | | 2.236 | 2.847 / 2.033 / 1.588 |
//!
//! Held-out text: the last 5 % of each file capped to 1 MiB in proportion (497,319 + 119,544 +
//! 431,711 bytes; the books' tail is mostly `fortunes`), scored by the canonical engine; the
//! compressors compress each of the three documents on its own (the same bytes, written by
//! `--dump-val`). Throughput counts the bytes that enter the loss (the `T` positions of each
//! window), per second of training steps. `small` beats `gzip -9` and `xz -9` overall within 10
//! minutes; `xz` still wins on the Rust code, whose long verbatim repeats lie beyond the model's
//! 134-byte context. The final evaluation and calibration on 1 MiB take 7–30 s more.
//!
//! What was tried (all on the same corpus, `small` unless said otherwise):
//!
//! - **Learning rate** (150 s each, embedding multiplier 1): 0.003 → 3.05 bits/byte, 0.006 →
//!   2.76, 0.01 → 2.62, 0.02 → 2.44, 0.04 → 2.49. The first 10-minute run, at 0.003 and before
//!   the allocator change, reached 2.521 (938 steps, 13,000 bytes/s): just below `gzip -9`.
//! - **Embedding learning-rate multiplier** (lr 0.02, 300 steps): ×1 → 2.577, ×3 → 2.448, ×6 →
//!   2.416, ×12 → 2.415 (lr 0.01 × 4 → 2.464). Rows of the hashed tables are updated rarely;
//!   they want a 5–10× larger step than the matrices.
//! - **Allocator** ([`tune_allocator`]): 0.57 → 0.44 s per `small` step (batch 16 × 512).
//!   With it, `perf` puts ~47 % of a step in gemm; the rest is element-wise ops, copies
//!   (the shifted inputs of the convolutions) and `exp`. burn's forward on 1 MiB of held-out
//!   text takes 16 s, the canonical engine 8 s, so the final evaluation uses the engine.
//! - **Window shape** (240 s): 16 × 512 → 2.283, 8 × 1024 → 2.312 (fewer, longer windows are
//!   worse despite less warm-up).
//! - **Hash buckets** (240 s): `small` with 32,768 buckets per order instead of 8,192 → 2.232
//!   against 2.283, although 15 % slower per step (8.4 M more parameters, no more FLOPs per
//!   byte, a 34 MB checkpoint instead of 9 MB).
//!
//! `examples/profile.rs` times the parts of one step
//! (`target/release/examples/profile small 16 512`).

#![deny(missing_docs)]

pub mod backend;
pub mod data;
pub mod error;
pub mod model;
pub mod optim;
pub mod rng;
pub mod train;

pub use backend::Backend;
pub use error::ModelError;
pub use model::ConvLm;
pub use train::{LOG_FILE, Progress, RESUME_FILE, TrainOptions, TrainReport, conv_config, train};

/// The held-out documents that a run with these corpus files and `val_fraction` evaluates and
/// calibrates on at the end (each file's tail, capped to `max_bytes` in total as
/// [`TrainOptions::max_eval_bytes`] does), as owned bytes: for example to compare with
/// general-purpose compressors on exactly the same text.
///
/// # Errors
/// As [`data::Corpus::open`].
pub fn held_out(
    corpus: &[std::path::PathBuf],
    val_fraction: f64,
    max_bytes: usize,
) -> Result<Vec<Vec<u8>>, ModelError> {
    let c = data::Corpus::open(corpus, val_fraction)?;
    Ok(c.val_docs_capped(max_bytes)
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect())
}

/// Makes glibc keep the large, short-lived tensor buffers of a training step in its heap instead
/// of mapping and unmapping them at every operation (`mallopt`: mmap threshold 32 MiB, trim
/// threshold 1 GiB, top pad 64 MiB). The page faults and page clearing that this avoids cost
/// about a fifth of a training step on the CPU backends. The setting is process-wide and stays
/// after training (the process keeps its peak heap); [`train()`] calls this unless
/// [`TrainOptions::tune_allocator`] is off. Does nothing on other platforms.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets allocator parameters; any values are valid to pass.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}
