//! `latent-experiment`: trains the byte-latent transformer with each patching scheme at the same
//! mean patch length and writes the comparison (`results.md`, `results.json`, `curve.svg`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bltpatch_latent::data::Text;
use bltpatch_latent::experiment::pooling_name;
use bltpatch_latent::{ExperimentOptions, PoolingKind, Scheme};
use bltpatch_model::Backend;
use clap::Parser;

/// Train the same byte-latent transformer with each patching scheme and compare held-out
/// bits/byte at the same mean patch length.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Corpus: directories (their *.txt files but tiny.txt) or files. Each file's first 95 %
    /// trains, its last 5 % is held out.
    #[arg(long, num_args = 1.., default_value = "../shared/corpora")]
    corpus: Vec<PathBuf>,
    /// Output directory for results.md, results.json and curve.svg.
    #[arg(short, long, default_value = "latent-results")]
    out: PathBuf,
    /// Patching schemes, comma-separated (static, space, entropy-global, entropy-budget, bpe).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "static,space,entropy-global,entropy-budget,bpe"
    )]
    schemes: Vec<String>,
    /// Training time per run (steps only, evaluations excluded), e.g. 90s, 10m, 1h.
    #[arg(long, value_parser = parse_duration)]
    time_budget: Option<Duration>,
    /// Training steps per run (with --time-budget: whichever comes first).
    #[arg(long)]
    steps: Option<usize>,
    /// Seeds per scheme (initial weights and training windows).
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Model size: tiny or small.
    #[arg(long, default_value = "small")]
    preset: String,
    /// Pooling of byte states into patch vectors: mean or cross-attention.
    #[arg(long, default_value = "mean", value_parser = parse_pooling)]
    pooling: PoolingKind,
    /// Mean patch length every scheme is calibrated to (bytes), or `bpe`: cl100k BPE's mean on
    /// the validation windows.
    #[arg(long, default_value = "bpe", value_parser = parse_target)]
    target_patch_len: Target,
    /// Windows per training step.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Bytes per window.
    #[arg(long, default_value_t = 512)]
    seq_len: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-2)]
    lr: f64,
    /// Warm-up steps.
    #[arg(long, default_value_t = 30)]
    warmup_steps: usize,
    /// Evaluate the learning curve every N steps.
    #[arg(long, default_value_t = 50)]
    eval_every: usize,
    /// Held-out windows per file for the learning curve.
    #[arg(long, default_value_t = 8)]
    curve_windows: usize,
    /// Held-out windows per file for the final evaluation.
    #[arg(long, default_value_t = 32)]
    final_windows: usize,
    /// Validation windows per file that the schemes are calibrated on.
    #[arg(long, default_value_t = 32)]
    calibration_windows: usize,
    /// Entropy-model checkpoint directory (default: the library's embedded model).
    #[arg(long)]
    entropy_model: Option<PathBuf>,
    /// burn backend: flex, ndarray or wgpu (the last two need the cargo feature).
    #[arg(long, default_value = "flex")]
    backend: Backend,
    /// Bytes to generate from each trained model after training (0: none).
    #[arg(long, default_value_t = 0)]
    sample_bytes: usize,
    /// Prompt of the samples.
    #[arg(long, default_value = "The ")]
    prompt: String,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .trim()
        .split_at(s.trim().trim_end_matches(char::is_alphabetic).len());
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (e.g. 90s, 10m, 1h)"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?} (s, m or h)")),
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--target-patch-len`: bytes, or `None` for BPE's mean.
#[derive(Clone, Copy, Debug)]
struct Target(Option<f64>);

fn parse_target(s: &str) -> Result<Target, String> {
    if s == "bpe" {
        return Ok(Target(None));
    }
    match s.parse::<f64>() {
        Ok(t) if t.is_finite() && t >= 1.0 => Ok(Target(Some(t))),
        _ => Err(format!(
            "invalid target patch length {s:?} (a number >= 1, or bpe)"
        )),
    }
}

fn parse_pooling(s: &str) -> Result<PoolingKind, String> {
    [PoolingKind::Mean, PoolingKind::CrossAttention]
        .into_iter()
        .find(|&p| pooling_name(p) == s)
        .ok_or_else(|| format!("unknown pooling {s:?} (mean or cross-attention)"))
}

fn options(args: Args) -> Result<ExperimentOptions> {
    let mut corpus = Vec::new();
    for path in &args.corpus {
        if path.is_dir() {
            corpus.extend(Text::files_in(path)?);
        } else {
            corpus.push(path.clone());
        }
    }
    if corpus.is_empty() {
        bail!("no corpus files in {:?}", args.corpus);
    }
    let schemes = args
        .schemes
        .iter()
        .map(|s| s.parse::<Scheme>())
        .collect::<Result<Vec<_>, _>>()?;
    let mut opts = ExperimentOptions::new(corpus, args.out);
    opts.schemes = schemes;
    opts.seeds = args.seeds;
    opts.first_seed = args.first_seed;
    opts.preset = args.preset;
    opts.pooling = args.pooling;
    opts.target_patch_len = args.target_patch_len.0;
    opts.train.steps = args.steps;
    opts.train.time_budget = match (args.steps, args.time_budget) {
        (Some(_), None) => None,
        (_, t) => t.or(Some(Duration::from_secs(600))),
    };
    opts.train.batch_size = args.batch_size;
    opts.train.seq_len = args.seq_len;
    opts.train.lr = args.lr;
    opts.train.warmup_steps = args.warmup_steps;
    opts.train.eval_every = args.eval_every;
    opts.curve_windows_per_file = args.curve_windows;
    opts.final_windows_per_file = args.final_windows;
    opts.calibration_windows_per_file = args.calibration_windows;
    opts.entropy_model = args.entropy_model;
    opts.backend = args.backend;
    opts.sample_bytes = args.sample_bytes;
    opts.sample_prompt = args.prompt;
    Ok(opts)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = (|| -> Result<()> {
        if let Some(n) = args.threads {
            rayon_pool(n)?;
        }
        bltpatch_model::tune_allocator();
        let opts = options(args)?;
        let out = opts.out.clone();
        let report = bltpatch_latent::run(&opts, |line| eprintln!("{line}"))?;
        report
            .write(&out)
            .with_context(|| format!("writing results to {}", out.display()))?;
        print!("{}", report.markdown());
        eprintln!(
            "wrote {}/results.md, results.json, curve.svg",
            out.display()
        );
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn rayon_pool(threads: usize) -> Result<()> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .context("setting the thread count")
}
