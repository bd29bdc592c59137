//! The `"hashmlp"` architecture: hyper-parameters, presets, the context features (n-gram table
//! rows) of every position, and the names and shapes of the tensors.
//!
//! Shared by the trainer (on burn) and the engine, so that both compute the same function; the
//! engine's arithmetic ([`super`]) is the definition of `H`.

use serde::{Deserialize, Serialize};

use crate::arch::{BOS, VOCAB_IN, VOCAB_OUT};

/// The architecture's name in `config.json`.
pub const ARCH: &str = "hashmlp";

/// The longest n-gram order (bytes of context read by one table).
pub const MAX_ORDER: usize = 8;

/// The most tables a model has (their quantised rows, at most [`super::QUANT_MAX`] in
/// magnitude, then sum within 16 bits).
pub const MAX_TABLES: usize = 8;

/// The byte mask of a table that reads whole bytes.
pub const FULL_MASK: u8 = 0xff;

/// The byte mask of a table of byte classes: the top three bits of a byte (control, space and
/// digits, upper-case ASCII, lower-case ASCII, the two halves of the UTF-8 continuation bytes,
/// 2-byte leads, longer leads).
pub const CLASS_MASK: u8 = 0xe0;

/// Lanes of the entropy head's reduction tree: `entropy_hidden` is a multiple of this.
pub const TREE_LANES: usize = 8;

/// Hyper-parameters of the hashed n-gram MLP entropy model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HashMlpConfig {
    /// The n-gram orders `n_j` (bytes of context, each in `1..=8`), one table each, in
    /// summation order; at most [`MAX_TABLES`], no two tables with the same order and mask.
    pub orders: Vec<usize>,
    /// The byte mask of each table's key (empty: [`FULL_MASK`] for every table). A table with
    /// mask `0xe0` reads only the top three bits of each context byte, its *class* (control,
    /// space and digits, upper-case ASCII, lower-case ASCII, the two halves of the UTF-8
    /// continuation bytes, 2-byte leads, longer leads): a key that every script and every
    /// byte sequence shares with the text seen in training, so the model learns what follows
    /// valid UTF-8 of any script and what follows bytes that are not text. Order 1 reads whole
    /// bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masks: Vec<u8>,
    /// Rows of each table: 257 for order 1 (the 256 byte values and the beginning of the
    /// document), a power of two `>= 2` for the hashed orders.
    pub rows: Vec<usize>,
    /// Width `F` of the table rows (the trunk).
    pub d_model: usize,
    /// Width of the next-byte head's hidden layer.
    pub d_hidden: usize,
    /// Width `g` of the entropy head's hidden layer (a multiple of [`TREE_LANES`]).
    pub entropy_hidden: usize,
    /// RMSNorm epsilon of the next-byte head.
    pub norm_eps: f32,
    /// An *escape* logit beside the 256 of the next-byte head: a 257th logit whose probability
    /// is spread evenly over the 256 byte values, so that the next-byte distribution is a
    /// mixture of the softmax and the uniform distribution. The logit reads only the tables
    /// whose keys every input shares with the training data ([`Self::escape_tables`]: order 1
    /// and the tables of byte classes), one scalar per row (`escape.tables.{i}.weight`,
    /// `[rows, 1]`) plus `escape.bias`: a pattern of byte classes that only random bytes
    /// produce can switch to 8 bits/byte, while an unseen script whose classes follow UTF-8
    /// keeps the tables' prediction. Absent (`false`) in older configurations, which keep their
    /// exact function.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub escape: bool,
}

impl HashMlpConfig {
    /// Names of the presets.
    pub const PRESETS: [&'static str; 4] = ["tiny", "small", "base", "broad"];

    /// The named presets (see the [module docs](super) for their sizes; every one's checkpoint,
    /// with its tables stored as `F16`, stays within 8 MB).
    pub fn preset(name: &str) -> Option<Self> {
        // Per table: order, log2 of its rows (order 1: 257 rows), byte mask.
        const F: u8 = FULL_MASK;
        let (tables, d, h): (&[(usize, u32, u8)], usize, usize) = match name {
            "tiny" => (
                &[(1, 0, F), (2, 12, F), (3, 14, F), (4, 14, F), (6, 14, F)],
                32,
                256,
            ),
            "small" => (
                &[
                    (1, 0, F),
                    (2, 12, F),
                    (3, 14, F),
                    (4, 14, F),
                    (5, 14, F),
                    (6, 14, F),
                    (8, 13, F),
                ],
                48,
                256,
            ),
            "base" => (
                &[
                    (1, 0, F),
                    (2, 12, F),
                    (3, 14, F),
                    (4, 13, F),
                    (5, 13, F),
                    (6, 13, F),
                    (8, 13, F),
                ],
                64,
                512,
            ),
            "broad" => (
                &[
                    (1, 0, F),
                    (2, 12, F),
                    (3, 14, F),
                    (4, 14, F),
                    (5, 14, F),
                    (6, 14, F),
                    (8, 12, F),
                    (8, 12, CLASS_MASK),
                ],
                48,
                256,
            ),
            _ => return None,
        };
        // Configurations without a class table keep `masks` empty (their config.json as before).
        let masks = if tables.iter().all(|t| t.2 == F) {
            Vec::new()
        } else {
            tables.iter().map(|t| t.2).collect()
        };
        Some(Self {
            masks,
            orders: tables.iter().map(|t| t.0).collect(),
            rows: tables
                .iter()
                .map(|&(n, b, _)| if n == 1 { VOCAB_IN } else { 1 << b })
                .collect(),
            d_model: d,
            d_hidden: h,
            entropy_hidden: 8,
            norm_eps: 1e-5,
            escape: false,
        })
    }

    /// Checks that the hyper-parameters describe a buildable model.
    pub fn validate(&self) -> Result<(), String> {
        if self.orders.is_empty() {
            return Err("at least one order is needed".into());
        }
        if self.orders.len() != self.rows.len() {
            return Err(format!(
                "{} orders but {} table sizes",
                self.orders.len(),
                self.rows.len()
            ));
        }
        if self.orders.len() > MAX_TABLES {
            return Err(format!(
                "{} tables, more than {MAX_TABLES}",
                self.orders.len()
            ));
        }
        if !self.masks.is_empty() && self.masks.len() != self.orders.len() {
            return Err(format!(
                "{} orders but {} byte masks",
                self.orders.len(),
                self.masks.len()
            ));
        }
        for (j, (&n, &r)) in self.orders.iter().zip(&self.rows).enumerate() {
            if !(1..=MAX_ORDER).contains(&n) {
                return Err(format!("order {n} is not in 1..={MAX_ORDER}"));
            }
            let mask = self.mask(j);
            if (0..j).any(|i| self.orders[i] == n && self.mask(i) == mask) {
                return Err(format!("order {n} with mask {mask:#04x} is listed twice"));
            }
            if mask == 0 || (n == 1 && mask != FULL_MASK) {
                return Err(format!(
                    "the order-{n} table's mask {mask:#04x} is not allowed (nonzero; order 1 reads whole bytes)"
                ));
            }
            if n == 1 && r != VOCAB_IN {
                return Err(format!("the order-1 table has {VOCAB_IN} rows, not {r}"));
            }
            if n > 1 && !(r >= 2 && r.is_power_of_two() && r <= 1 << 30) {
                return Err(format!(
                    "the order-{n} table's rows ({r}) must be a power of two in 2..=2^30"
                ));
            }
        }
        if self.d_model == 0 || self.d_hidden == 0 {
            return Err("d_model and d_hidden must be >= 1".into());
        }
        if self.entropy_hidden == 0 || !self.entropy_hidden.is_multiple_of(TREE_LANES) {
            return Err(format!(
                "entropy_hidden must be a positive multiple of {TREE_LANES}"
            ));
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            return Err("norm_eps must be > 0".into());
        }
        Ok(())
    }

    /// The byte mask of table `j`'s key ([`FULL_MASK`] unless [`Self::masks`] says otherwise).
    pub fn mask(&self, j: usize) -> u8 {
        self.masks.get(j).copied().unwrap_or(FULL_MASK)
    }

    /// The tables that the [escape](Self::escape) logit reads, in order: order 1 and the tables
    /// of byte classes (any mask other than [`FULL_MASK`]); empty without an escape.
    pub fn escape_tables(&self) -> Vec<usize> {
        if !self.escape {
            return Vec::new();
        }
        (0..self.orders.len())
            .filter(|&j| self.orders[j] == 1 || self.mask(j) != FULL_MASK)
            .collect()
    }

    /// The context length `C` in bytes: the largest order.
    pub fn context(&self) -> usize {
        self.orders.iter().copied().max().unwrap_or(1)
    }

    /// Every tensor of the model: name and shape, in a fixed order.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let (d, h, g) = (self.d_model, self.d_hidden, self.entropy_hidden);
        let mut t: Vec<(String, Vec<usize>)> = self
            .rows
            .iter()
            .enumerate()
            .map(|(j, &r)| (format!("tables.{j}.weight"), vec![r, d]))
            .collect();
        t.push(("norm.gamma".into(), vec![d]));
        t.push(("hidden.weight".into(), vec![d, h]));
        t.push(("hidden.bias".into(), vec![h]));
        t.push(("head.weight".into(), vec![h, VOCAB_OUT]));
        t.push(("head.bias".into(), vec![VOCAB_OUT]));
        t.push(("entropy.proj.weight".into(), vec![d, g]));
        t.push(("entropy.proj.bias".into(), vec![g]));
        t.push(("entropy.out.weight".into(), vec![g, 1]));
        t.push(("entropy.out.bias".into(), vec![1]));
        if self.escape {
            for (i, j) in self.escape_tables().into_iter().enumerate() {
                t.push((format!("escape.tables.{i}.weight"), vec![self.rows[j], 1]));
            }
            t.push(("escape.bias".into(), vec![1]));
        }
        t
    }

    /// Number of parameters.
    pub fn parameters(&self) -> usize {
        self.tensors()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }

    /// Floating-point operations per byte of segmentation: per hidden unit of the entropy head
    /// a scaling, a bias, a ReLU, a multiplication and an addition (the integer additions of
    /// the table rows, one per order and unit, the look-ups and the hashing are not counted).
    pub fn flops_per_byte(&self) -> usize {
        5 * self.entropy_hidden
    }

    /// Floating-point operations per byte of the next-byte head (for bits/byte; a
    /// multiply-add counts 2).
    pub fn head_flops_per_byte(&self) -> usize {
        2 * (self.d_model * self.d_hidden + self.d_hidden * VOCAB_OUT)
            + self.d_model * self.orders.len()
    }
}

/// The multiplier of the table of order index `j` for a key of `m` bytes: an odd 64-bit
/// constant (SplitMix64 of `(j, m)`).
pub fn multiplier(j: usize, m: usize) -> u64 {
    let mut z = ((j as u64) << 8 | m as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) | 1
}

/// The key of the `m <= 8` bytes `x[t-m .. t)`: `Σ_i x[t-1-i] · 256^i` (the most recent byte
/// lowest). `prev` ends at `t`.
#[inline]
pub fn key(prev: &[u8], m: usize) -> u64 {
    let mut k = 0u64;
    for &b in &prev[prev.len() - m..] {
        k = (k << 8) | b as u64;
    }
    k
}

/// `mask` in each of the `m <= 8` lowest bytes of a word: the mask of a key of `m` bytes.
#[inline]
pub fn spread(mask: u8, m: usize) -> u64 {
    if m == 0 {
        0
    } else {
        (u64::MAX >> (64 - 8 * m)) & (mask as u64 * 0x0101_0101_0101_0101)
    }
}

/// The row of the hashed table `j` (order `n >= 2`, `rows = 2^bits`) for the key of the
/// `m = min(t, n)` bytes before position `t`: `(key · multiplier(j, m)) >> (64 - bits)`
/// (multiply-shift hashing; a shorter key marks the start of a document).
#[inline]
pub fn hashed_row(key: u64, mult: u64, bits: u32) -> usize {
    (key.wrapping_mul(mult) >> (64 - bits)) as usize
}

/// The table rows of position `t` of a document, one per order: `out[j]`. `prev` holds the bytes
/// `x[t - min(t, C) .. t)` (all of them when `t < C`); `t` matters only through `min(t, C)`.
///
/// Order 1 reads row `x[t-1]`, or [`BOS`] (256) at `t = 0`; order `n >= 2` reads
/// [`hashed_row`] of the key of `x[t - min(t, n) .. t)`, each byte and-ed with the table's
/// mask ([`HashMlpConfig::mask`]).
pub fn rows_at(cfg: &HashMlpConfig, t: usize, prev: &[u8], out: &mut [u32]) {
    for (j, (&n, &r)) in cfg.orders.iter().zip(&cfg.rows).enumerate() {
        let m = t.min(n);
        out[j] = if n == 1 {
            if m == 0 {
                BOS as u32
            } else {
                prev[prev.len() - 1] as u32
            }
        } else {
            let k = key(prev, m) & spread(cfg.mask(j), m);
            hashed_row(k, multiplier(j, m), r.trailing_zeros()) as u32
        };
    }
}

/// The table rows of every position `t` of `start..end` of a document, row-major
/// `[end - start, orders]`. Reads `doc[start - C .. end - 1]` (from the document start when
/// `start < C`).
pub fn inputs(cfg: &HashMlpConfig, doc: &[u8], start: usize, end: usize) -> Vec<u32> {
    let k = cfg.orders.len();
    let c = cfg.context();
    let mut out = vec![0u32; (end - start) * k];
    for (p, t) in (start..end).enumerate() {
        rows_at(cfg, t, &doc[t.saturating_sub(c)..t], &mut out[p * k..][..k]);
    }
    out
}
