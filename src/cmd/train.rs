//! `bltpatch train`.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bltpatch::checkpoint::CalibrationRecord;
use bltpatch::{CalibrationTarget, EntropyModel, calibrate};
use bltpatch_ngram::{NgramConfig, NgramModel};
use serde_json::json;

use crate::args::{Arch, TrainArgs};
use crate::common::{display, read_inputs};

pub fn run(args: TrainArgs) -> Result<ExitCode> {
    let files = read_inputs(&args.corpus)?;
    let total: usize = files.iter().map(|f| f.data.len()).sum();
    if total == 0 {
        bail!("the corpus is empty");
    }
    // The last `val_fraction` of each file is held out, cut at a fixed position.
    let mut train = Vec::new();
    let mut val = Vec::new();
    for f in &files {
        let cut = f.data.len() - (f.data.len() as f64 * args.val_fraction).floor() as usize;
        train.push(&f.data[..cut]);
        if cut < f.data.len() {
            val.push(&f.data[cut..]);
        }
    }
    let train_bytes: usize = train.iter().map(|d| d.len()).sum();
    if train_bytes == 0 {
        bail!(
            "no training text is left after holding out --val-fraction {}",
            args.val_fraction
        );
    }
    let start = Instant::now();
    let model = match args.arch {
        Arch::Ngram => {
            let cfg = NgramConfig {
                order: args.order as usize,
            };
            NgramModel::train(&train, &cfg).context("training failed")?
        }
    };
    let train_secs = start.elapsed().as_secs_f64();

    // Held-out bits/byte and the calibrated threshold; without held-out text, both are measured
    // on the training text and marked so.
    let (eval_docs, eval_on) = if val.is_empty() {
        (&train, "training")
    } else {
        (&val, "held-out")
    };
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
    let bits_per_byte = surprisal_sum / eval_bytes as f64 / std::f64::consts::LN_2;
    let refs: Vec<&[f32]> = entropies.iter().map(Vec::as_slice).collect();
    let cal = calibrate(
        &refs,
        CalibrationTarget::Global,
        args.target_patch_size,
        None,
    )?;
    let record = CalibrationRecord {
        rule: "global".into(),
        threshold: Some(cal.value),
        relative_threshold: None,
        max_patch_len: None,
        target_patch_size: args.target_patch_size,
        mean_patch_len: cal.mean_patch_len,
        calibration_bytes: cal.bytes,
    };
    let training = json!({
        "corpus": files.iter().map(|f| json!({"file": display(&f.path), "bytes": f.data.len()})).collect::<Vec<_>>(),
        "train_bytes": train_bytes,
        "val_fraction": args.val_fraction,
        "eval_text": eval_on,
        "eval_bytes": eval_bytes,
        "bits_per_byte": bits_per_byte,
        "seconds": train_secs,
    });
    model
        .save(&args.output, training, Some(record))
        .with_context(|| format!("cannot write checkpoint `{}`", args.output.display()))?;
    println!(
        "trained {} (context {} bytes) on {} bytes in {:.1}s",
        match args.arch {
            Arch::Ngram => format!("a byte {}-gram model", args.order),
        },
        model.context(),
        train_bytes,
        train_secs
    );
    println!("{eval_on} bits/byte: {bits_per_byte:.4} on {eval_bytes} bytes");
    println!(
        "calibrated threshold: {} (mean patch length {:.3} for target {})",
        cal.value, cal.mean_patch_len, args.target_patch_size
    );
    println!("checkpoint written to {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}
