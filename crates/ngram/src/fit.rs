//! The whole `bltpatch train --arch ngram` flow: hold out the tail of each corpus file, count,
//! score the held-out text, calibrate a rule on it and describe the run for the checkpoint.

use std::path::Path;
use std::time::Instant;

use bltpatch_checkpoint::{CalibrationRecord, CorpusFile};
use bltpatch_core::{CalibrationTarget, EntropyModel};

use crate::{NgramConfig, NgramError, NgramModel};

/// Options of [`fit`].
#[derive(Clone, Debug, PartialEq)]
pub struct FitOptions {
    /// The model's order.
    pub order: usize,
    /// Fraction of each file (its end, cut at `len - floor(len · f)`) held out for evaluation
    /// and calibration, in `[0, 1)`.
    pub val_fraction: f64,
    /// Mean patch length the stored rule is calibrated for.
    pub target_patch_size: f64,
    /// Which rule's parameter is calibrated.
    pub calibration_target: CalibrationTarget,
}

/// What [`fit`] produced.
#[derive(Clone, Debug)]
pub struct Fit {
    /// The trained model.
    pub model: NgramModel,
    /// The calibration, stored with the checkpoint.
    pub calibration: CalibrationRecord,
    /// The training summary for `config.json`.
    pub training: serde_json::Value,
    /// Bytes of training text.
    pub train_bytes: usize,
    /// Bytes evaluated (held-out, or training text when nothing is held out).
    pub eval_bytes: usize,
    /// Whether the evaluation ran on held-out text.
    pub held_out: bool,
    /// Bits per byte on the evaluated text.
    pub bits_per_byte: f64,
    /// Seconds spent counting.
    pub seconds: f64,
}

/// Trains on `files` (each a path, for its name, and its bytes), evaluates and calibrates.
///
/// # Errors
/// An empty corpus, no training text left after holding out, an invalid order, or a
/// calibration error.
pub fn fit(files: &[(&Path, &[u8])], opts: &FitOptions) -> Result<Fit, NgramError> {
    let mut train = Vec::new();
    let mut val = Vec::new();
    for (_, data) in files {
        let cut = data.len() - (data.len() as f64 * opts.val_fraction).floor() as usize;
        train.push(&data[..cut]);
        if cut < data.len() {
            val.push(&data[cut..]);
        }
    }
    let train_bytes: usize = train.iter().map(|d| d.len()).sum();
    if train_bytes == 0 {
        return Err(NgramError::EmptyCorpus);
    }
    let start = Instant::now();
    let model = NgramModel::train(&train, &NgramConfig { order: opts.order })?;
    let seconds = start.elapsed().as_secs_f64();

    let held_out = !val.is_empty();
    let eval_docs = if held_out { &val } else { &train };
    let mut surprisal_sum = 0f64;
    let mut entropies = Vec::with_capacity(eval_docs.len());
    for d in eval_docs.iter() {
        let mut h = vec![0f32; d.len()];
        model.entropies(d, 0..d.len(), &mut h);
        let mut s = vec![0f32; d.len()];
        model.surprisals(d, 0..d.len(), &mut s);
        surprisal_sum += s.iter().map(|&x| x as f64).sum::<f64>();
        entropies.push(h);
    }
    let eval_bytes: usize = eval_docs.iter().map(|d| d.len()).sum();
    let bits_per_byte = surprisal_sum / eval_bytes.max(1) as f64 / std::f64::consts::LN_2;
    let refs: Vec<&[f32]> = entropies.iter().map(Vec::as_slice).collect();
    let calibration =
        CalibrationRecord::calibrate(&refs, opts.calibration_target, opts.target_patch_size, None)
            .map_err(|e| {
                NgramError::Checkpoint(bltpatch_checkpoint::CheckpointError::Invalid(format!(
                    "calibration failed: {e}"
                )))
            })?;
    let corpus: Vec<CorpusFile> = files
        .iter()
        .map(|(p, d)| CorpusFile::describe(p, d))
        .collect();
    let training = serde_json::json!({
        "trainer": "bltpatch-ngram",
        "corpus": corpus,
        "train_bytes": train_bytes,
        "val_fraction": opts.val_fraction,
        "eval_text": if held_out { "held-out" } else { "training" },
        "eval_bytes": eval_bytes,
        "bits_per_byte": bits_per_byte,
        "seconds": seconds,
    });
    Ok(Fit {
        model,
        calibration,
        training,
        train_bytes,
        eval_bytes,
        held_out,
        bits_per_byte,
        seconds,
    })
}
