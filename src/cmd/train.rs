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
    match args.arch {
        Arch::Conv => run_burn(args, bltpatch_model::Arch::Conv),
        Arch::Hashmlp => run_burn(args, bltpatch_model::Arch::HashMlp),
        Arch::Ngram => run_ngram(args),
    }
}

/// A neural model, trained with burn (`bltpatch-model`).
fn run_burn(args: TrainArgs, family: bltpatch_model::Arch) -> Result<ExitCode> {
    if args.order.is_some() {
        bail!("--order applies to --arch ngram only");
    }
    if let Some(p) = args.corpus.iter().find(|p| p.as_os_str() == "-") {
        bail!(
            "cannot train --arch {family} from stdin ({}): the corpus is memory-mapped; write it to a file",
            p.display()
        );
    }
    let mut opts = bltpatch_model::TrainOptions::new(args.corpus, args.output);
    opts.family = family;
    if let Some(p) = args.preset {
        opts.preset = p;
    }
    opts.context = args.context.map(|c| c as usize);
    opts.steps = args.steps.map(|s| s as usize);
    opts.time_budget = args.time_budget;
    opts.batch_size = args.batch_size.unwrap_or(opts.batch_size);
    opts.lr = args.lr.unwrap_or(opts.lr);
    opts.seed = args.seed.unwrap_or(opts.seed);
    opts.val_fraction = args.val_fraction.unwrap_or(opts.val_fraction);
    opts.backend = args.backend;
    opts.resume = args.resume;
    opts.threads = args.threads;
    opts.target_patch_size = args.target_patch_size;
    if args.quiet {
        opts.progress = bltpatch_model::Progress::Quiet;
    }
    let report = bltpatch_model::train(&opts)?;
    println!(
        "trained a {} model ({} parameters, context {} bytes, {} FLOPs/byte): {} steps in {:.0}s, {:.0} bytes/s",
        report.arch,
        report.parameters,
        report.context,
        report.flops_per_byte,
        report.steps,
        report.seconds,
        report.bytes_per_sec
    );
    match report.val_bits_per_byte {
        Some(v) if !report.interrupted => {
            println!("held-out bits/byte: {v:.4} on {} bytes", report.val_bytes)
        }
        Some(v) => println!("held-out bits/byte (validation sample): {v:.4}"),
        None => println!("no held-out text (--val-fraction 0)"),
    }
    if let Some(e) = report.entropy_rmse {
        println!("entropy head: {e:.4} nats rms from the entropy of the next-byte distribution");
    }
    if let (Some(t), Some(m)) = (report.threshold, report.mean_patch_len) {
        println!(
            "calibrated threshold: {t} (mean patch length {m:.3} for target {})",
            args.target_patch_size
        );
    }
    println!("checkpoint written to {}", report.output.display());
    if report.interrupted {
        println!(
            "interrupted after step {}: continue with the same command and --resume",
            report.steps
        );
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

/// The count-based n-gram model: trains in seconds, in memory.
fn run_ngram(args: TrainArgs) -> Result<ExitCode> {
    let conv_only = [
        ("--preset", args.preset.is_some()),
        ("--context", args.context.is_some()),
        ("--steps", args.steps.is_some()),
        ("--time-budget", args.time_budget.is_some()),
        ("--batch-size", args.batch_size.is_some()),
        ("--lr", args.lr.is_some()),
        ("--seed", args.seed.is_some()),
        ("--resume", args.resume),
        ("--backend", args.backend != bltpatch_model::Backend::Flex),
    ];
    if let Some((flag, _)) = conv_only.iter().find(|(_, given)| *given) {
        bail!("{flag} applies to --arch conv and hashmlp only");
    }
    let order = args.order.unwrap_or(6);
    let val_fraction = args.val_fraction.unwrap_or(0.1);
    let files = read_inputs(&args.corpus)?;
    let total: usize = files.iter().map(|f| f.data.len()).sum();
    if total == 0 {
        bail!("the corpus is empty");
    }
    // The last `val_fraction` of each file is held out, cut at a fixed position.
    let mut train = Vec::new();
    let mut val = Vec::new();
    for f in &files {
        let cut = f.data.len() - (f.data.len() as f64 * val_fraction).floor() as usize;
        train.push(&f.data[..cut]);
        if cut < f.data.len() {
            val.push(&f.data[cut..]);
        }
    }
    let train_bytes: usize = train.iter().map(|d| d.len()).sum();
    if train_bytes == 0 {
        bail!("no training text is left after holding out --val-fraction {val_fraction}");
    }
    let start = Instant::now();
    let cfg = NgramConfig {
        order: order as usize,
    };
    let model = NgramModel::train(&train, &cfg).context("training failed")?;
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
        "val_fraction": val_fraction,
        "eval_text": eval_on,
        "eval_bytes": eval_bytes,
        "bits_per_byte": bits_per_byte,
        "seconds": train_secs,
    });
    model
        .save(&args.output, training, Some(record))
        .with_context(|| format!("cannot write checkpoint `{}`", args.output.display()))?;
    println!(
        "trained a byte {order}-gram model (context {} bytes) on {} bytes in {:.1}s",
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
