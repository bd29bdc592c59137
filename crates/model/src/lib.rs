//! # bltpatch-model
//!
//! Trains bltpatch's neural entropy models with [burn](https://burn.dev) 0.22: the causal
//! dilated-convolution byte model `"conv"` defined in [`bltpatch_engine::arch`], whose predicted
//! next-byte entropy places the patch boundaries, and the hashed n-gram model `"hashmlp"`
//! ([`bltpatch_engine::hashmlp`], section [below](#the-hashmlp-family)) whose distilled entropy
//! head segments at a few table look-ups per byte. The canonical, framework-free engine
//! ([`bltpatch_engine::ConvModel`], [`bltpatch_engine::hashmlp::HashMlpModel`]) runs the
//! trained checkpoints; this crate only trains them (the rules, the streaming decoder and the
//! engine do not depend on burn). One training loop serves both families ([`family`]:
//! [`TrainOptions::family`] chooses, the options are the same).
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
//! - **Starting from a checkpoint**: `init_from` starts a new run (fresh optimizer, schedule and
//!   sampler) from the weights and architecture of a finished checkpoint of the same family:
//!   fine-tuning, or more training of a model whose schedule has ended; `config.json` records
//!   the start (`training.init`: the directory's name, the size and SHA-256 of its weights).
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
//! A `hashmlp` checkpoint holds the tensors of
//! [`HashMlpConfig::tensors`](bltpatch_engine::hashmlp::HashMlpConfig::tensors), its n-gram
//! tables as `F16` (`numpy.float16`), the rest `F32`; after `bltpatch quantize` each table is an
//! `I8` tensor `q` with an `F16` tensor `tables.J.weight.scale` of one scale per row
//! (`q.astype(numpy.float32) * scale.astype(numpy.float32)[:, None]`).
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
//!
//! ## The hashmlp family
//!
//! [`HashMlpLm`] computes the function of [`bltpatch_engine::hashmlp`]: one hashed table per
//! n-gram order (`E_j[row]`, `[rows_j, F]`), summed into a trunk `e`; a next-byte head
//! (`RMSNorm → linear → ReLU → linear`, 256 logits) for bits/byte; and an entropy head
//! (`linear → ReLU → linear`, `g` hidden units) trained to predict the entropy of the
//! next-byte head's distribution. The loss is the next-byte cross-entropy plus the squared
//! error of the entropy head against that entropy (stop-gradient target, weight 1, reaching the
//! tables too: [`FamilyHyper`]). Training windows need no warm-up (a position's input is the 8
//! bytes before it), so a batch of 16 × 512 positions costs 8,192 positions.
//!
//! **Why this shape.** Segmentation needs `H` only. The conv engine already runs at 81–100 % of
//! sgemm, so its 90,112 FLOPs/byte are the limit; here the entropy head's first layer is linear
//! in `e`, so the engine folds it into the tables (`P_j = E_j · proj_w`, 16-bit integers) and a
//! byte of segmentation is 7 multiply-shift hashes, 7 row reads of `2·g` bytes, `g·7` integer
//! additions and 40 floating-point operations, exact by construction. The next-byte head, which
//! carries the model's knowledge and is as wide as training time allows, never runs when
//! segmenting. What the engine pays is memory: a byte reads one row of every table, so the
//! working set of the folded tables (`2·g·Σ rows` bytes) decides the speed as soon as it leaves
//! the 2 MB L2 cache (the candidates below: `g` = 32 → 38 MiB/s, 16 → 55, 8 → 96 with the same
//! tables), which is why the entropy head has 8 units and the tables 2^12–2^14 rows.
//!
//! | preset | orders (rows) | `F` | `h` | `g` | parameters | checkpoint | folded tables | context |
//! |---|---|---|---|---|---|---|---|---|
//! | `tiny` | 1 (257), 2 (2^12), 3, 4, 6 (2^14) | 32 | 256 | 8 | 1,786,705 | 3.7 MB | 0.9 MB | 6 |
//! | **`small`** | 1 (257), 2 (2^12), 3, 4, 5, 6 (2^14), 8 (2^13) | 48 | 256 | 8 | 3,826,673 | 7.8 MB | 1.2 MB | 8 |
//! | `base` | 1 (257), 2 (2^12), 3 (2^14), 4, 5, 6, 8 (2^13) | 64 | 512 | 8 | 3,589,521 | 7.5 MB | 0.9 MB | 8 |
//! | **`broad`** | 1 (257), 2 (2^12), 3, 4, 5, 6 (2^14), 8 (2^12), classes 8 (2^12) | 48 | 256 | 8 | 3,826,673 | 7.8 MB | 1.2 MB | 8 |
//!
//! (Tables stored as F16, heads as F32.) `checkpoints/fast` is `small` trained on the eight
//! reference corpora, and the embedded default (`checkpoints/default`) is `broad` trained on the
//! broad training set plus those corpora, then widened and trained on (their READMEs have the
//! commands).
//!
//! **Widening.** At 84,000 steps the `broad` default gained a few tenths of a percent of
//! held-out bits/byte per 10,000 steps: its hashed tables, shared by 254 MB of text in 72
//! languages, had more contexts than rows. `bltpatch widen` doubles the rows of every hashed
//! table of whole bytes without changing the model (row `r` copies old row `r / 2`, which
//! multiply-shift hashing with one more bit finds for the same key), and 30,000 steps of
//! `--init` training from it gave held-out 2.9835 → 2.9279 (−1.86%; the 24,000 steps before, at
//! the old size, −0.54%), 24,000 more 2.9110 (−0.58%), 24,000 more again 2.8990 (−0.41%):
//! lower than the model before the widening on 114 of the 115 training files and on the text of
//! the validation set of `scripts/adapt-validation.sh` (`docs/measured/widen`). At the same
//! peak rate (0.004) 12,000 more steps then gave −0.04%; a peak of 0.001 with twice the batch,
//! 10,000 steps, −0.20% (2.8931), and a peak of 0.0003, 10,000 more, −0.04% (2.8920, the
//! default now). The doubled tables (7.4
//! million parameters) fit the 8 MB of the embedded checkpoint as 8-bit rows with a binary16
//! scale each (`bltpatch quantize`; at most 0.012% more bits/byte on the validation set). The
//! cost: the entropy head's quantised tables grow from 1.2 to 2.4 MB, beyond a 1 MiB L2 cache,
//! which the engine's row prefetch partly hides (README, "Speed").
//!
//! **Byte classes (`broad`).** A hashed table of whole bytes gives a context never seen in
//! training the row of some other context: confident and wrong, which is what made the
//! models worse than a uniform guess on random bytes and on scripts absent from training. The
//! `broad` preset moves half of order 8's rows to a table keyed by the *classes* of the last 8
//! bytes (their top three bits: control, space/digits, upper- and lower-case ASCII, the two
//! halves of the continuation bytes, 2-byte leads, longer leads), contexts that any text or
//! byte sequence shares with the training data. Same parameters, same cost per byte (8 row
//! reads instead of 7). 3,000-step runs on the default's data plus 8 MB of random bytes
//! (`docs/measured/remedy-classes.md`; the same seed, started together, one thread each):
//!
//! | held-out | `small` | `broad` |
//! |---|---|---|
//! | trainer's 1 MiB held-out sample | 3.1123 | **3.0519** |
//! | random bytes | 9.089 | 8.819 |
//! | Sinhala / Armenian / Georgian UI strings (unseen scripts) | 8.155 / 7.928 / 7.565 | 7.026 / 7.849 / 7.438 |
//! | Khmer / Burmese / Dzongkha (unseen scripts) | 7.583 / 7.080 / 7.545 | 7.178 / 6.732 / 6.929 |
//! | Arabic docs / C source / English dictionary | 2.513 / 2.873 / 3.521 | 2.474 / 2.846 / 3.517 |
//! | tails of en_books / de_docs / zh_docs / code_rust | 3.064 / 2.421 / 2.667 / 2.368 | 3.032 / 2.409 / 2.552 / 2.329 |
//!
//! Better on every row; the largest gains on the unseen scripts (−0.1 to −1.1). Then (same
//! file, with 16 MB of random bytes): label smoothing 0.05 trades 1.4-4.1% on text for a little
//! on random bytes (not used). A class table of the last **4** bytes instead of 8 (12 bits, a
//! row per pattern) was better at 3,000 steps (held-out 3.2124 vs 3.2308, random bytes 8.37 vs
//! 8.58, Georgian 6.96, Sinhala 6.93), but trained as long as a default (28,000 steps) it is
//! better on text and worse on three unseen scripts than `broad` at 22,000 (Sinhala 9.25,
//! Georgian 8.47, Armenian 8.45: above 8), so the default stays `broad`: what a model does on
//! scripts it never saw drifts with training length, and short runs do not predict it. An
//! escape logit that mixes the next-byte distribution with the uniform one
//! ([`bltpatch_engine::hashmlp::HashMlpConfig::escape`], `docs/measured/remedy-escape.md`)
//! lowers the held-out loss (3.1820) and random bytes (8.26) at 3,000 steps but raises
//! Georgian, Khmer and Burmese by 0.5-1.1 bits: not used. Row noise 0.1 in training
//! ([`FamilyHyper::row_noise`], `docs/measured/remedy-row-noise.md`) lowers five unseen scripts,
//! raises Armenian to 8.41 and costs up to 3.8% on text: not used.
//!
//! ### Measured (2-core development machine shared with other builds and training runs)
//!
//! **Same data, same time.** `conv` `tiny` and `hashmlp` `small`, started together on the eight
//! reference corpora, 30 minutes each on one thread each, the machine's load average 3–6 from
//! other work throughout:
//!
//! ```text
//! C=../shared/corpora; ALL="$C/en_books.txt $C/en_docs.txt $C/de_docs.txt $C/fr_docs.txt \
//!     $C/ru_docs.txt $C/zh_docs.txt $C/code_rust.txt $C/structured.txt"
//! nice -n 10 bltpatch train $ALL --preset tiny --time-budget 30m --threads 1 -o conv30 &
//! nice -n 10 bltpatch train $ALL --arch hashmlp --preset small --time-budget 30m --threads 1 -o fast30
//! cargo run --release --example compare_models -- --reference conv30 fast30
//! ```
//!
//! | model | steps | held-out bits/byte | en_books | en_docs | de_docs | fr_docs | ru_docs | zh_docs | code_rust | structured |
//! |---|---|---|---|---|---|---|---|---|---|---|
//! | `conv` `tiny` | 5,924 | 2.4411 | 2.797 | 1.779 | 1.830 | 1.733 | 1.404 | 2.038 | 1.837 | 5.575 |
//! | `hashmlp` `small` | 5,335 | **2.4028** (−1.6 %) | 2.812 (+0.5 %) | 1.671 (−6.1 %) | 1.653 (−9.7 %) | 1.603 (−7.5 %) | 1.261 (−10.1 %) | 1.804 (−11.5 %) | 1.762 (−4.1 %) | 5.920 (+6.2 %) |
//! | `checkpoints/fast` (`small`, `--steps 5335`) | 5,335 | 2.3988 (−1.7 %) | 2.808 | 1.663 | 1.655 | 1.599 | 1.261 | 1.801 | 1.758 | 5.910 |
//!
//! Held-out: the trainer's (each file's last 5 %, capped to 1 MiB in proportion). The hashmlp
//! model is better overall and on six of eight files; it is 6 % worse on the held-out tail of
//! `structured.txt` (the public suffix list, which no training text resembles: a lone outlier
//! for both models) and level on the English books' tail (fortunes). Its entropy head is 0.373
//! nats (rms) from the entropy of its own next-byte distribution (R² 0.86); at a mean patch
//! length of 4.5 bytes its patch starts agree with that distribution's with F1 0.82 and with
//! the conv model's with F1 0.72 (the distribution's own starts: 0.75, so most of the
//! disagreement is the two models' knowledge, not the head; two conv models of different
//! training lengths agree at F1 0.79–0.86).
//!
//! **Throughput**, `cargo bench --bench peers` (1 MiB of each file, one bench run, load average
//! 3.7–4.2 from other work), MiB/s:
//!
//! | file | `hashmlp` 1 thread | 2 threads | bpe-openai cl100k | tiktoken-rs cl100k | `conv` default, 1 thread | hashmlp / bpe-openai |
//! |---|---|---|---|---|---|---|
//! | en_books | 124.3 | 109.5 | 32.4 | 15.8 | 0.66 | 3.8× |
//! | code_rust | 115.4 | 117.2 | 32.0 | 13.0 | 0.64 | 3.6× |
//! | zh_docs | 102.8 | 104.6 | 23.8 | 11.4 | 0.64 | 4.3× |
//! | structured | 124.4 | 122.4 | 29.8 | 9.2 | 0.63 | 4.2× |
//!
//! (Two threads gain nothing here: the load average was about 4 on the 2 cores, and the conv
//! model gains 8 % from its second thread.) Streaming:
//! 0.040 µs/byte (`conv` `tiny`: 3.5 µs/byte). `bltpatch verify -m checkpoints/fast` on
//! en_books, zh_docs, code_rust, structured and (combined rule, `--max-patch-len 16`) de_docs:
//! 0 mismatches.
//!
//! **Candidates**, each trained for 600 steps (4.9 M bytes) on the eight corpora and compared
//! with `conv` `tiny` after the same 600 steps (`conv_tiny_600`; at this length every hashmlp
//! candidate is ahead, so the table ranks candidates against each other; the same-time
//! comparison above is the verdict). Columns: held-out bits/byte (vs `conv`), per file
//! (en_books / en_docs / de / fr / ru / zh / code / structured), entropy head rms error (nats) /
//! R², F1 of its starts with its own distribution's, F1 with `conv_tiny_600`'s, segmentation
//! MiB/s on 1 / 2 threads (en_books, load 4), streaming µs/byte, checkpoint MB:
//!
//! ```text
//! cargo build --release -p bltpatch-model --example train
//! target/release/examples/train $ALL -o DIR --family hashmlp --steps 600 --arch 'JSON'
//! cargo run --release --example compare_models -- --reference conv_tiny_600 --speed-reference DIR...
//! ```
//!
//! | candidate | bits/byte | per file | H rms / R² | F1 own | F1 conv | MiB/s 1t / 2t | µs/byte | MB |
//! |---|---|---|---|---|---|---|---|---|
//! | `conv` `tiny` | 2.7345 | 2.993 / 2.006 / 2.318 / 2.176 / 1.731 / 2.312 / 2.121 / 5.913 | – | – | 1 | 0.6 / 0.7 | 3.47 | 1.79 |
//! | a: orders 1,2,3,4,6 (2^12, 2^14), F 32, h 256, g 16, head detached from the tables | 2.5712 | 2.915 / 1.875 / 2.009 / 1.939 / 1.497 / 2.093 / 1.994 / 5.682 | 0.537 / 0.72 | 0.773 | 0.719 | 104.2 / 96.7 | 0.044 | 3.72 |
//! | b: a, the head's error also trains the tables (kept) | 2.6086 | 2.948 / 1.883 / 2.047 / 1.949 / 1.516 / 2.133 / 2.023 / 5.805 | 0.337 / 0.89 | 0.855 | 0.760 | 96.7 / 93.0 | 0.048 | 3.72 |
//! | c: b with h 128 | 2.6630 | 2.981 / 1.925 / 2.106 / 2.016 / 1.560 / 2.252 / 2.072 / 5.897 | 0.337 / 0.89 | 0.861 | 0.763 | 90.4 / 86.0 | 0.051 | 3.58 |
//! | o7: orders 1..6, 8 (2^13, 2^14), F 32, g 16 | 2.5866 | 2.946 / 1.864 / 2.011 / 1.913 / 1.447 / 2.197 / 1.996 / 5.753 | 0.365 / 0.88 | 0.849 | 0.758 | 54.6 / 54.2 | 0.076 | 6.08 |
//! | o7, g 8 | 2.5793 | 2.937 / 1.860 / 1.992 / 1.886 / 1.441 / 2.174 / 1.987 / 5.786 | 0.375 / 0.87 | 0.842 | 0.756 | 95.5 / 84.5 | 0.047 | 6.08 |
//! | o7, g 32 | 2.5816 | 2.947 / 1.858 / 2.009 / 1.896 / 1.452 / 2.197 / 1.992 / 5.727 | 0.343 / 0.89 | 0.854 | 0.756 | 38.5 / 35.2 | 0.085 | 6.09 |
//! | b with F 64 | 2.5875 | 2.936 / 1.895 / 2.039 / 1.959 / 1.520 / 2.143 / 2.009 / 5.646 | 0.364 / 0.87 | 0.842 | 0.764 | 94.1 / 96.4 | 0.046 | 7.18 |
//! | o7, F 64, 2^13 rows for orders 5..8 | 2.5738 | 2.936 / 1.860 / 2.006 / 1.921 / 1.456 / 2.169 / 1.977 / 5.709 | 0.385 / 0.86 | 0.834 | 0.759 | 71.8 / 68.3 | 0.063 | 8.23 |
//! | o7, F 48, 2^13 rows for order 8 | 2.5619 | 2.927 / 1.850 / 1.977 / 1.887 / 1.444 / 2.140 / 1.969 / 5.718 | 0.372 / 0.87 | 0.834 | 0.757 | 76.4 / 72.3 | 0.058 | 8.21 |
//! | **`small`** (the last with order 2 at 2^12 and g 8) | 2.5624 | 2.928 / 1.850 / 1.969 / 1.879 / 1.444 / 2.152 / 1.974 / 5.716 | 0.397 / 0.85 | 0.826 | 0.754 | 106.4 / 102.1 | 0.047 | 7.81 |
//! | 2-byte context: orders 1, 2 (2^16), F 48, g 8 | 3.3843 | 3.472 / 2.943 / 3.431 / 3.288 / 2.400 / 2.701 / 2.998 / 5.731 | 0.119 / 0.98 | 0.961 | 0.704 | 212.4 / 184.9 | 0.033 | 6.63 |
//!
//! And the count-based n-gram model (`bltpatch-ngram`, `bltpatch train $ALL --arch ngram
//! --order N --val-fraction 0.05`, seconds to train), against the 30-minute
//! `conv` `tiny`: order 4: 2.8683 (+17.5 %), 8.6 MB, 111 MiB/s, F1 0.67; order 5: 2.4822
//! (+1.7 %; 3.058 → 2.793 on en_books but +6 % to +18 % on the docs), 33.7 MB (four times the
//! 8 MB budget), 57 MiB/s, F1 0.71.
//!
//! What was tried and dropped, and why:
//!
//! - **Exact entropy of a small next-byte model** (no entropy head): the 256-way softmax and a
//!   256 × `h` head alone cost `2·256·h` FLOPs per byte, already above the whole budget of a
//!   few hundred operations; the distilled head replaces them.
//! - **An entropy head detached from the tables** (candidate a): 1.5 % better bits/byte at 600
//!   steps, but the head explains 72 % of the entropy's variance instead of 89 %.
//! - **`g` 16 or 32** instead of 8: R² 0.88–0.89 instead of 0.87, at 55 and 38 MiB/s instead
//!   of 96 (the folded tables leave L2).
//! - **Wider trunks with more rows** (F 48 or 64 and all tables at 2^14): 8.2 MB, over the
//!   budget; `small` keeps F 48 and trims order 2's table, which costs nothing measurable.
//! - **A 2-byte context** (BLT's small-model setting, here as orders 1 and 2): twice as fast,
//!   but 24–39 % worse bits/byte and patch starts that agree less with the conv model's.
//! - **The count-based n-gram model**: fast to train and to run, but at 8 MB (order 4) 17.5 %
//!   worse, and order 5 needs 34 MB to match the conv model overall (and is 6–18 % worse on
//!   the European-language docs).
//! - **f32 folded tables** (the first engine): exact too, but twice the working set of the
//!   16-bit integer tables; the integer sums also halve the vector additions.

#![deny(missing_docs)]

pub mod backend;
pub mod data;
pub mod error;
pub mod family;
pub mod hashmlp;
pub mod model;
pub mod optim;
pub mod rng;
pub mod train;

pub use backend::Backend;
pub use error::ModelError;
pub use family::{Arch, FamilyHyper};
pub use hashmlp::HashMlpLm;
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
