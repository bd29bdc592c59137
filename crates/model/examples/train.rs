//! Trains a model without the `bltpatch` binary, for measurements:
//!
//! ```text
//! cargo run -p bltpatch-model --release --example train -- CORPUS... -o DIR \
//!     [--family conv|hashmlp] [--preset small] [--steps N] [--time SECONDS] [--batch N] \
//!     [--seq N] [--lr F] [--arch JSON] [--context C] [--seed N] [--threads N] [--resume] \
//!     [--entropy-weight F] [--entropy-detached] [--label-smoothing F] [--dump-val DIR]
//! ```
//!
//! `--dump-val DIR` also writes the held-out documents that the final evaluation uses to
//! `DIR/val_{i}.bin`, to compress them with `gzip -9` and `xz -9` for comparison.

use std::path::PathBuf;
use std::time::Duration;

use bltpatch_model::{TrainOptions, held_out, train};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = TrainOptions::new(Vec::new(), "model");
    let mut dump: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "-o" => opts.output = value()?.into(),
            "--family" => opts.family = value()?.parse()?,
            "--preset" => opts.preset = value()?,
            "--entropy-weight" => opts.family_hyper.entropy_weight = value()?.parse()?,
            "--entropy-detached" => opts.family_hyper.entropy_trains_tables = false,
            "--label-smoothing" => opts.family_hyper.label_smoothing = value()?.parse()?,
            "--row-noise" => opts.family_hyper.row_noise = value()?.parse()?,
            "--arch" => opts.arch = Some(serde_json::from_str(&value()?)?),
            "--steps" => opts.steps = Some(value()?.parse()?),
            "--time" => opts.time_budget = Some(Duration::from_secs_f64(value()?.parse()?)),
            "--batch" => opts.batch_size = value()?.parse()?,
            "--seq" => opts.seq_len = value()?.parse()?,
            "--lr" => opts.lr = value()?.parse()?,
            "--context" => opts.context = Some(value()?.parse()?),
            "--seed" => opts.seed = value()?.parse()?,
            "--threads" => opts.threads = Some(value()?.parse()?),
            "--warmup" => opts.warmup_steps = value()?.parse()?,
            "--embed-lr-mult" => opts.embed_lr_mult = value()?.parse()?,
            "--wd" => opts.weight_decay = value()?.parse()?,
            "--eval-every" => opts.eval_every = value()?.parse()?,
            "--resume" => opts.resume = true,
            "--dump-val" => dump = Some(value()?.into()),
            _ if a.starts_with('-') => return Err(format!("unknown flag {a}").into()),
            _ => opts.corpus.push(a.into()),
        }
    }
    if let Some(dir) = dump {
        std::fs::create_dir_all(&dir)?;
        let docs = held_out(&opts.corpus, opts.val_fraction, opts.max_eval_bytes)?;
        for (i, d) in docs.iter().enumerate() {
            std::fs::write(dir.join(format!("val_{i}.bin")), d)?;
        }
    }
    let report = train(&opts)?;
    println!("{report}");
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
