//! `bltpatch train`.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bltpatch::{CalibrationTarget, EntropyModel, Rule};
use bltpatch_ngram::FitOptions;

use crate::args::{Arch, BackendName, CalibratedRule, TrainArgs};
use crate::common::read_inputs;

pub fn run(args: TrainArgs) -> Result<ExitCode> {
    match arch(&args)? {
        a @ (Arch::Conv | Arch::Hashmlp) => run_burn(args, a),
        Arch::Ngram => run_ngram(args),
    }
}

/// The family to train: `--arch`, else that of the `--init` checkpoint, else conv.
fn arch(args: &TrainArgs) -> Result<Arch> {
    if let Some(a) = args.arch {
        return Ok(a);
    }
    let Some(dir) = &args.init else {
        return Ok(Arch::Conv);
    };
    let config = bltpatch::checkpoint::read_config(dir)
        .with_context(|| format!("cannot start from `{}`", dir.display()))?;
    match config.arch.as_str() {
        "conv" => Ok(Arch::Conv),
        "hashmlp" => Ok(Arch::Hashmlp),
        other => bail!(
            "cannot start from `{}`: --init continues conv and hashmlp models, not {other}",
            dir.display()
        ),
    }
}

/// A neural model, trained with burn (`bltpatch-model`): only in builds with the `train`
/// feature (on by default).
#[cfg(not(feature = "train"))]
fn run_burn(_: TrainArgs, _: Arch) -> Result<ExitCode> {
    bail!(
        "this bltpatch was built without neural training (cargo feature `train`); --arch ngram still trains"
    )
}

/// A neural model (`--arch conv` or `hashmlp`), trained with burn (`bltpatch-model`).
#[cfg(feature = "train")]
fn run_burn(args: TrainArgs, arch: Arch) -> Result<ExitCode> {
    let family = match arch {
        Arch::Hashmlp => bltpatch_model::Arch::HashMlp,
        _ => bltpatch_model::Arch::Conv,
    };
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
    if let Some(dir) = args.init {
        if let Some(flag) = [
            ("--preset", args.preset.is_some()),
            ("--context", args.context.is_some()),
        ]
        .iter()
        .find_map(|(flag, given)| given.then_some(flag))
        {
            bail!(
                "{flag} does not apply with --init: the architecture is that of {}",
                dir.display()
            );
        }
        opts.init_from = Some(dir);
    }
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
    opts.backend = match args.backend {
        BackendName::Flex => bltpatch_model::Backend::Flex,
        BackendName::Ndarray => bltpatch_model::Backend::Ndarray,
        BackendName::Wgpu => bltpatch_model::Backend::Wgpu,
    };
    opts.resume = args.resume;
    opts.threads = args.threads;
    opts.target_patch_size = args.target_patch_size;
    opts.calibration_target = calibration_target(args.rule);
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
    if let (Some(rule), Some(m)) = (report.calibrated_rule, report.mean_patch_len) {
        print_calibration(&rule, m, args.target_patch_size);
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

/// The count-based n-gram model: trains in seconds, in memory (the flow is
/// [`bltpatch_ngram::fit`]).
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
        ("--init", args.init.is_some()),
        ("--backend", args.backend != BackendName::Flex),
    ];
    if let Some((flag, _)) = conv_only.iter().find(|(_, given)| *given) {
        bail!("{flag} applies to --arch conv and hashmlp only");
    }
    let files = read_inputs(&args.corpus)?;
    if files.iter().all(|f| f.data.is_empty()) {
        bail!("the corpus is empty");
    }
    let val_fraction = args.val_fraction.unwrap_or(0.1);
    let opts = FitOptions {
        order: args.order.unwrap_or(6) as usize,
        val_fraction,
        target_patch_size: args.target_patch_size,
        calibration_target: calibration_target(args.rule),
    };
    let named: Vec<(&std::path::Path, &[u8])> = files
        .iter()
        .map(|f| (f.path.as_path(), &f.data[..]))
        .collect();
    let fit = bltpatch_ngram::fit(&named, &opts).map_err(|e| match e {
        bltpatch_ngram::NgramError::EmptyCorpus => anyhow::anyhow!(
            "no training text is left after holding out --val-fraction {val_fraction}"
        ),
        e => anyhow::Error::new(e).context("training failed"),
    })?;
    fit.model
        .save(
            &args.output,
            fit.training.clone(),
            Some(fit.calibration.clone()),
        )
        .with_context(|| format!("cannot write checkpoint `{}`", args.output.display()))?;
    println!(
        "trained a byte {}-gram model (context {} bytes) on {} bytes in {:.1}s",
        opts.order,
        fit.model.context(),
        fit.train_bytes,
        fit.seconds
    );
    let on = if fit.held_out { "held-out" } else { "training" };
    println!(
        "{on} bits/byte: {:.4} on {} bytes",
        fit.bits_per_byte, fit.eval_bytes
    );
    let c = &fit.calibration;
    print_calibration(&c.rule, c.mean_patch_len, c.target_patch_size);
    println!("checkpoint written to {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}

/// The library's calibration target for `--rule`.
fn calibration_target(rule: CalibratedRule) -> CalibrationTarget {
    match rule {
        CalibratedRule::Global => CalibrationTarget::Global,
        CalibratedRule::Budget => CalibrationTarget::Budget,
    }
}

/// One line: the calibrated rule and the mean patch length it gives.
fn print_calibration(rule: &Rule, mean_patch_len: f64, target: f64) {
    let what = match *rule {
        Rule::Budget { budget } => format!("budget: {budget}"),
        Rule::Global { threshold } => format!("threshold: {threshold}"),
        other => format!("rule: {other:?}"),
    };
    println!("calibrated {what} (mean patch length {mean_patch_len:.3} for target {target})");
}
