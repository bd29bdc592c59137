//! Reading and writing n-gram checkpoints (layout in the crate docs).

use std::path::Path;

use bltpatch_checkpoint::{
    CalibrationRecord, CheckpointError, Config, Tensor, Weights, read_config, write_checkpoint,
};

use crate::{ARCH, Level, MASKS, NgramConfig, NgramError, NgramModel};

/// Builds the error for an inconsistent checkpoint.
fn invalid(origin: &str, msg: String) -> NgramError {
    NgramError::Checkpoint(CheckpointError::Invalid(format!("{origin}: {msg}")))
}

/// Reads and checks the tensors of one order (`l` = context length) of a checkpoint.
fn read_level(w: &Weights, l: usize) -> Result<Level, NgramError> {
    let origin = w.origin();
    let name = |t: &str| format!("order{}.{t}", l + 1);
    let (shape, contexts) = w.u64(&name("contexts"), None)?;
    if shape.len() != 1 {
        return Err(invalid(
            origin,
            format!(
                "tensor {} must have 1 dimension, not {shape:?}",
                name("contexts")
            ),
        ));
    }
    let n = shape[0];
    if n > u32::MAX as usize - 1 {
        return Err(invalid(
            origin,
            format!("tensor {} is too large", name("contexts")),
        ));
    }
    let (_, entropy) = w.f32(&name("entropy"), Some(&[n]))?;
    let (_, total) = w.u32(&name("total"), Some(&[n]))?;
    let (_, offsets) = w.u32(&name("offsets"), Some(&[n + 1]))?;
    let m = *offsets.last().unwrap() as usize; // offsets has n + 1 >= 1 elements
    let (_, next_bytes) = w.u8(&name("next_bytes"), Some(&[m]))?;
    let (_, next_counts) = w.u32(&name("next_counts"), Some(&[m]))?;

    if l == 0 && (contexts != [0]) {
        return Err(invalid(
            origin,
            format!(
                "tensor {} must be [0], the empty context (it has {n} entries)",
                name("contexts")
            ),
        ));
    }
    let limit = if l == 0 { 1 } else { MASKS[l] };
    for (j, &ctx) in contexts.iter().enumerate() {
        if ctx > limit || (j > 0 && contexts[j - 1] >= ctx) {
            return Err(invalid(
                origin,
                format!(
                    "tensor {} is not strictly increasing within {} bytes at index {j}",
                    name("contexts"),
                    l
                ),
            ));
        }
    }
    if offsets[0] != 0 {
        return Err(invalid(
            origin,
            format!("tensor {} does not start at 0", name("offsets")),
        ));
    }
    // Strictly increasing (every node has a next byte), hence all within 0..=M.
    if let Some(j) = offsets.windows(2).position(|p| p[0] >= p[1]) {
        return Err(invalid(
            origin,
            format!(
                "tensor {} is not strictly increasing at index {j}",
                name("offsets")
            ),
        ));
    }
    for j in 0..n {
        let (lo, hi) = (offsets[j] as usize, offsets[j + 1] as usize);
        let bytes = &next_bytes[lo..hi];
        if bytes.windows(2).any(|p| p[0] >= p[1]) {
            return Err(invalid(
                origin,
                format!(
                    "tensor {} is not increasing within node {j}",
                    name("next_bytes")
                ),
            ));
        }
        let counts = &next_counts[lo..hi];
        if counts.contains(&0) {
            return Err(invalid(
                origin,
                format!(
                    "tensor {} has a zero count in node {j}",
                    name("next_counts")
                ),
            ));
        }
        let sum: u64 = counts.iter().map(|&c| c as u64).sum();
        if sum != total[j] as u64 {
            return Err(invalid(
                origin,
                format!(
                    "tensor {} at index {j} is {} but the node's counts sum to {sum}",
                    name("total"),
                    total[j]
                ),
            ));
        }
        if !(entropy[j].is_finite() && entropy[j] >= 0.0) {
            return Err(invalid(
                origin,
                format!(
                    "tensor {} has an invalid value at index {j}",
                    name("entropy")
                ),
            ));
        }
    }
    Ok(Level {
        contexts,
        entropy,
        total,
        offsets,
        next_bytes,
        next_counts,
        parent: Vec::new(),
    })
}

impl NgramModel {
    /// The checkpoint of this model: its [`Config`] (`arch` `"ngram"`, `context` `k - 1`,
    /// `architecture` `{"order": k}`, the given training summary and calibration) and its
    /// tensors (layout in the [crate docs](crate)).
    pub fn to_checkpoint(
        &self,
        training: serde_json::Value,
        calibration: Option<CalibrationRecord>,
    ) -> (Config, Vec<Tensor>) {
        let architecture = serde_json::to_value(self.config()).expect("NgramConfig serialises");
        let mut config = Config::new(ARCH, self.order - 1, architecture);
        config.training = training;
        config.calibration = calibration;
        let mut tensors = vec![Tensor::f32(
            "discounts",
            vec![self.order],
            self.discounts.clone(),
        )];
        for (l, level) in self.levels.iter().enumerate() {
            let o = l + 1;
            let (n, m) = (level.contexts.len(), level.next_bytes.len());
            tensors.push(Tensor::u64(
                format!("order{o}.contexts"),
                vec![n],
                level.contexts.clone(),
            ));
            tensors.push(Tensor::f32(
                format!("order{o}.entropy"),
                vec![n],
                level.entropy.clone(),
            ));
            tensors.push(Tensor::u32(
                format!("order{o}.total"),
                vec![n],
                level.total.clone(),
            ));
            tensors.push(Tensor::u32(
                format!("order{o}.offsets"),
                vec![n + 1],
                level.offsets.clone(),
            ));
            tensors.push(Tensor::u8(
                format!("order{o}.next_bytes"),
                vec![m],
                level.next_bytes.clone(),
            ));
            tensors.push(Tensor::u32(
                format!("order{o}.next_counts"),
                vec![m],
                level.next_counts.clone(),
            ));
        }
        (config, tensors)
    }

    /// Writes the model as a checkpoint directory, atomically (see
    /// [`bltpatch_checkpoint::write_checkpoint`]).
    ///
    /// # Errors
    /// The directory cannot be written.
    pub fn save(
        &self,
        dir: &Path,
        training: serde_json::Value,
        calibration: Option<CalibrationRecord>,
    ) -> Result<(), NgramError> {
        let (config, tensors) = self.to_checkpoint(training, calibration);
        write_checkpoint(dir, &config, &tensors)?;
        Ok(())
    }

    /// Rebuilds a model from a checkpoint's config and weights, checking the architecture,
    /// the context length, every tensor's presence, dtype and shape, and the consistency of the
    /// data (sorted contexts, monotone in-range offsets, counts summing to totals, finite
    /// entropies, discounts in `(0, 1)`, every node's suffix and prefix present). Bad data is an
    /// error, never a panic.
    ///
    /// # Errors
    /// [`NgramError::WrongArch`], or [`NgramError::Checkpoint`] saying what is wrong.
    pub fn from_checkpoint(config: &Config, weights: &Weights) -> Result<Self, NgramError> {
        let origin = weights.origin();
        if config.arch != ARCH {
            return Err(NgramError::WrongArch {
                arch: config.arch.clone(),
                origin: origin.to_string(),
            });
        }
        let cfg: NgramConfig =
            serde_json::from_value(config.architecture.clone()).map_err(|e| {
                invalid(
                    origin,
                    format!("config architecture is not an n-gram config: {e}"),
                )
            })?;
        cfg.validate()?;
        let k = cfg.order;
        if config.context != k - 1 {
            return Err(invalid(
                origin,
                format!(
                    "config context {} does not match order {k} (context {})",
                    config.context,
                    k - 1
                ),
            ));
        }
        let (_, discounts) = weights.f32("discounts", Some(&[k]))?;
        if let Some(o) = discounts
            .iter()
            .position(|d| !(d.is_finite() && *d > 0.0 && *d < 1.0))
        {
            return Err(invalid(
                origin,
                format!(
                    "discount of order {} is {} (must be in (0, 1))",
                    o + 1,
                    discounts[o]
                ),
            ));
        }
        let mut levels = (0..k)
            .map(|l| read_level(weights, l))
            .collect::<Result<Vec<_>, _>>()?;
        for l in 1..k {
            let (below, above) = levels.split_at_mut(l);
            let (lower, level) = (&below[l - 1], &mut above[0]);
            level.parent = crate::train::parents(l, level, lower).ok_or_else(|| {
                invalid(
                    origin,
                    format!(
                        "order{} has a context whose suffix is not in order{l}",
                        l + 1
                    ),
                )
            })?;
            // Prefix closure: the context minus its last byte is a node followed by that byte.
            for &ctx in &level.contexts {
                let prefix = ctx >> 8;
                let ok = lower.contexts.binary_search(&prefix).is_ok_and(|j| {
                    let (lo, hi) = (lower.offsets[j] as usize, lower.offsets[j + 1] as usize);
                    lower.next_bytes[lo..hi].binary_search(&(ctx as u8)).is_ok()
                });
                if !ok {
                    return Err(invalid(
                        origin,
                        format!(
                            "order{} has a context whose prefix is not an n-gram of order{l}",
                            l + 1
                        ),
                    ));
                }
            }
        }
        Ok(NgramModel::assemble(k, discounts, levels))
    }

    /// Loads a checkpoint directory written by [`save`](Self::save); returns the model and its
    /// config (with the training summary and calibration).
    ///
    /// # Errors
    /// As [`bltpatch_checkpoint::read_config`], [`Weights::open`] and
    /// [`from_checkpoint`](Self::from_checkpoint).
    pub fn load(dir: &Path) -> Result<(Self, Config), NgramError> {
        let config = read_config(dir)?;
        if config.arch != ARCH {
            return Err(NgramError::WrongArch {
                arch: config.arch,
                origin: dir
                    .join(bltpatch_checkpoint::CONFIG_FILE)
                    .display()
                    .to_string(),
            });
        }
        let weights = Weights::open(dir)?;
        let model = Self::from_checkpoint(&config, &weights)?;
        Ok((model, config))
    }
}
