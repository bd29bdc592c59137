//! Command-line arguments (clap derive) and their value checks.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Entropy-patching byte tokenizer: a small next-byte model places patch boundaries where the
/// next byte is hard to predict. Batch, chunked and byte-by-byte streaming segmentation give
/// bit-identical boundaries.
#[derive(Parser, Debug)]
#[command(name = "bltpatch", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train an entropy model on corpus files and write a checkpoint directory.
    Train(TrainArgs),
    /// Segment files into patches.
    Segment(SegmentArgs),
    /// Print the entropy H[i] of every byte.
    Entropy(EntropyArgs),
    /// Check that batch, streaming, multi-threaded and chunked segmentation agree bit for bit.
    Verify(VerifyArgs),
    /// Bits/byte of the model and patch statistics next to the static and space baselines.
    Eval(EvalArgs),
    /// Draw the entropy of every byte with the threshold and the patch boundaries (SVG).
    Plot(PlotArgs),
    /// Recalibrate the rule stored with a checkpoint on given text (rewrites its config.json).
    Calibrate(CalibrateArgs),
    /// Turn in-document adaptation of a checkpoint's bits/byte on or off (rewrites its
    /// config.json; patch boundaries do not change).
    Adapt(AdaptArgs),
    /// Write a hashmlp checkpoint with more rows in its hashed tables: the same model, bit for
    /// bit, to train on with `train --init` and fewer hash collisions.
    Widen(WidenArgs),
    /// Write a hashmlp checkpoint with its tables as 8-bit integers with a scale per row (half
    /// the size of F16 tables; entropies move slightly, so calibrate again).
    Quantize(QuantizeArgs),
}

/// `bltpatch train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Corpus files (memory-mapped, never read whole into memory; `-` for stdin with `--arch
    /// ngram` only).
    #[arg(required = true, value_name = "CORPUS")]
    pub corpus: Vec<PathBuf>,
    /// Checkpoint directory to write (replaced atomically at every save).
    #[arg(short, long, value_name = "DIR", default_value = "bltpatch-model")]
    pub output: PathBuf,
    /// Model architecture (default: conv; with --init, that checkpoint's).
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,
    /// Size preset of the model: tiny, small (default) or base; for `--arch hashmlp` also
    /// broad (small with a table of byte classes: the embedded default's preset).
    #[arg(long, value_name = "NAME")]
    pub preset: Option<String>,
    /// Minimum context C in bytes of the conv model (re-chooses the preset's dilations).
    #[arg(long, value_name = "C", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub context: Option<u32>,
    /// Stop after N optimizer steps (the whole run, counting resumed parts).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// Stop after this much time, e.g. `90s`, `10m`, `1h30m` or plain seconds (the whole run,
    /// counting resumed parts). Without `--steps` and `--time-budget`: 10 minutes.
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    pub time_budget: Option<Duration>,
    /// Windows per batch (default 16).
    #[arg(long, value_name = "N", value_parser = parse_max_len)]
    pub batch_size: Option<usize>,
    /// Peak learning rate (default 0.02; warm-up then cosine decay).
    #[arg(long, value_name = "F", value_parser = parse_lr)]
    pub lr: Option<f64>,
    /// Seed of initialisation and sampling: the same seed gives the same checkpoint on the CPU
    /// backends.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// burn backend that trains the conv model: flex (CPU), ndarray or wgpu (GPU); the last two
    /// need a build with `--features ndarray` / `--features wgpu`.
    #[arg(long, value_name = "NAME", default_value = "flex", value_parser = parse_backend)]
    pub backend: BackendName,
    /// Continue the run saved in the output directory (weights, optimizer state, step, clock).
    #[arg(long)]
    pub resume: bool,
    /// Start from the weights of this checkpoint instead of random ones (fine-tuning, or more
    /// training with a new schedule): its family and architecture, a fresh optimizer and
    /// schedule. The new config.json records it (directory name, SHA-256 of its weights).
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    pub init: Option<PathBuf>,
    /// Worker threads for training (default: all cores).
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// n-gram order of `--arch ngram` (bytes per n-gram, including the predicted one): context
    /// = order - 1.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub order: Option<u8>,
    /// Fraction of each corpus file (its end) held out for validation and calibration (default
    /// 0.05; 0.1 with `--arch ngram`).
    #[arg(long, value_parser = parse_fraction)]
    pub val_fraction: Option<f64>,
    /// Mean patch length that the stored rule is calibrated for.
    #[arg(long, default_value_t = 4.5, value_parser = parse_target)]
    pub target_patch_size: f64,
    /// The rule whose parameter is calibrated and stored with the checkpoint.
    #[arg(long, value_enum, default_value_t = CalibratedRule::Budget)]
    pub rule: CalibratedRule,
    /// No progress bar or periodic lines on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Model architectures `train` can build.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// Neural causal dilated-convolution byte model trained with burn (the default).
    Conv,
    /// Hashed n-gram tables feeding a next-byte head and a distilled entropy head, trained
    /// with burn: segmentation at a few table look-ups per byte.
    Hashmlp,
    /// Count-based byte n-gram model with interpolated Kneser-Ney smoothing (trains in seconds).
    Ngram,
}

/// Which model to use.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Checkpoint directory (default: the model embedded in this binary).
    #[arg(short, long = "model", value_name = "DIR")]
    pub model: Option<PathBuf>,
}

/// The rule that turns entropies into boundaries, or a baseline. Values not given come from the
/// checkpoint's calibration.
#[derive(Args, Debug, Clone)]
pub struct RuleArgs {
    /// Boundary rule or baseline: global, relative, combined, budget, static, space or bpe
    /// (default: the checkpoint's calibrated rule).
    #[arg(long, value_name = "RULE", value_parser = parse_rule)]
    pub rule: Option<bltpatch::RuleKind>,
    /// Global entropy threshold in nats: a byte starts a patch when H[i] > threshold.
    #[arg(long, value_parser = parse_threshold, conflicts_with = "target_patch_size")]
    pub threshold: Option<f32>,
    /// Relative threshold in nats: a byte starts a patch when H[i] - H[i-1] > this.
    #[arg(long, value_parser = parse_threshold)]
    pub relative_threshold: Option<f32>,
    /// Entropy budget in nats: a patch closes once the entropy summed over it reaches this.
    #[arg(long, value_parser = parse_budget, conflicts_with = "target_patch_size")]
    pub budget: Option<f64>,
    /// Calibrate the rule's parameter on the input itself for this mean patch length (>= 1);
    /// with `--rule static`, the patch size.
    #[arg(long, value_parser = parse_target)]
    pub target_patch_size: Option<f64>,
    /// A patch also ends once it holds this many bytes (>= 1).
    #[arg(long, value_parser = parse_max_len)]
    pub max_patch_len: Option<usize>,
}

impl RuleArgs {
    /// The flags as the library's rule specification.
    pub fn spec(&self) -> bltpatch::RuleSpec {
        bltpatch::RuleSpec {
            rule: self.rule,
            threshold: self.threshold,
            relative_threshold: self.relative_threshold,
            budget: self.budget,
            target_patch_size: self.target_patch_size,
            max_patch_len: self.max_patch_len,
        }
    }
}

/// Entropy rules that `train` can calibrate and store with the checkpoint.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalibratedRule {
    /// A global threshold.
    Global,
    /// A budget per patch.
    Budget,
}

/// Input documents.
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// Input is JSON Lines; each line's string field NAME is one document (context restarts).
    #[arg(long, value_name = "NAME")]
    pub jsonl_field: Option<String>,
}

/// `bltpatch segment`.
#[derive(Args, Debug)]
pub struct SegmentArgs {
    /// Files to segment (`-` for stdin).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub rule: RuleArgs,
    #[command(flatten)]
    pub input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Output file (a directory for npy); default stdout.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Decide every boundary with the byte-by-byte decoder (output identical to batch).
    #[arg(long)]
    pub streaming: bool,
}

/// Output formats of `segment`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// The input with visible patch separators (coloured by entropy on a terminal).
    Text,
    /// One decimal patch length per line.
    Lengths,
    /// One JSON object per document with its patch lengths.
    Jsonl,
    /// A directory of NumPy arrays (patch lengths, document offsets).
    Npy,
}

/// `bltpatch entropy`.
#[derive(Args, Debug)]
pub struct EntropyArgs {
    /// File to score (`-` for stdin).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Output format: tsv (offset, byte, H) or npy (float32 array).
    #[arg(long, value_enum, default_value_t = EntropyFormat::Tsv)]
    pub format: EntropyFormat,
    /// Output file; default stdout (required for npy).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
}

/// Output formats of `entropy`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntropyFormat {
    /// `offset<TAB>byte<TAB>H` lines.
    Tsv,
    /// A float32 NumPy array.
    Npy,
}

/// `bltpatch verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Files to check (`-` for stdin).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub rule: RuleArgs,
    #[command(flatten)]
    pub input: InputArgs,
    /// Seed of the random chunkings.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also check the surprisals behind bits/byte (`eval`), which may adapt to the document:
    /// whole documents vs 1/2/3 threads and the random chunkings, bit for bit.
    #[arg(long)]
    pub surprisals: bool,
}

/// `bltpatch eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Files to evaluate (`-` for stdin).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub rule: RuleArgs,
    #[command(flatten)]
    pub input: InputArgs,
    /// Print one JSON object per file.
    #[arg(long)]
    pub json: bool,
    /// Measure the information per patch with this checkpoint's surprisals instead of the
    /// patching model's own (a model judging its own patches flatters itself).
    #[arg(long, value_name = "DIR")]
    pub reference_model: Option<PathBuf>,
    /// Calibrate the rule on each file to the mean length of its cl100k BPE tokens, so that
    /// every scheme is compared at BPE's mean patch length.
    #[arg(long)]
    pub at_bpe_mean: bool,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
}

/// `bltpatch calibrate`.
#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// Text to calibrate on (held-out text of the kind the model will segment).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The checkpoint directory whose calibration is replaced.
    #[arg(short, long = "model", value_name = "DIR", required = true)]
    pub model: PathBuf,
    /// The rule whose parameter is calibrated.
    #[arg(long, value_enum, default_value_t = CalibratedRule::Budget)]
    pub rule: CalibratedRule,
    /// Mean patch length to calibrate for.
    #[arg(long, default_value_t = 4.5, value_parser = parse_target)]
    pub target_patch_size: f64,
    /// A patch also ends once it holds this many bytes (stored with the rule).
    #[arg(long, value_parser = parse_max_len)]
    pub max_patch_len: Option<usize>,
    #[command(flatten)]
    pub input: InputArgs,
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
}

/// `bltpatch adapt`.
#[derive(Args, Debug)]
pub struct AdaptArgs {
    /// The checkpoint directory whose `adapt` record is written.
    #[arg(value_name = "DIR")]
    pub model: PathBuf,
    /// Remove the record: surprisals are the model's own again.
    #[arg(long)]
    pub off: bool,
}

/// `bltpatch widen`.
#[derive(Args, Debug)]
pub struct WidenArgs {
    /// The hashmlp checkpoint directory to read.
    #[arg(value_name = "DIR")]
    pub model: PathBuf,
    /// The checkpoint directory to write (may be DIR itself).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// How many times as many rows each hashed table of whole bytes gets (a power of two).
    #[arg(long, default_value_t = 2, value_parser = parse_factor)]
    pub factor: usize,
}

/// `bltpatch quantize`.
#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// The hashmlp checkpoint directory to read.
    #[arg(value_name = "DIR")]
    pub model: PathBuf,
    /// The checkpoint directory to write (may be DIR itself).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
}

/// `bltpatch plot`.
#[derive(Args, Debug)]
pub struct PlotArgs {
    /// File to plot (`-` for stdin).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub rule: RuleArgs,
    /// Byte range `A..B` to draw (default: the first 120 bytes; at most 5000).
    #[arg(long, value_name = "A..B")]
    pub range: Option<String>,
    /// The SVG file to write.
    #[arg(short, long, value_name = "OUT.svg", required = true)]
    pub output: PathBuf,
}

fn parse_threshold(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err("must be a finite number >= 0".into()),
    }
}

fn parse_rule(s: &str) -> Result<bltpatch::RuleKind, String> {
    s.parse().map_err(|e: bltpatch::Error| e.to_string())
}

fn parse_budget(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err("must be a finite number >= 0".into()),
    }
}

fn parse_target(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 1.0 => Ok(v),
        _ => Err("must be a number >= 1".into()),
    }
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err("must be a number in [0, 1)".into()),
    }
}

fn parse_max_len(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err("must be a whole number >= 1".into()),
    }
}

fn parse_threads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v) if (1..=1024).contains(&v) => Ok(v),
        _ => Err("must be a whole number from 1 to 1024".into()),
    }
}

fn parse_lr(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 10.0 => Ok(v),
        _ => Err("must be a number in (0, 10]".into()),
    }
}

/// A burn backend by name (the training crate checks that it is compiled in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendName {
    /// burn-flex (CPU).
    Flex,
    /// burn-ndarray (CPU).
    Ndarray,
    /// burn-wgpu (GPU).
    Wgpu,
}

fn parse_backend(s: &str) -> Result<BackendName, String> {
    match s {
        "flex" => Ok(BackendName::Flex),
        "ndarray" => Ok(BackendName::Ndarray),
        "wgpu" => Ok(BackendName::Wgpu),
        _ => Err(format!(
            "unknown backend `{s}` (expected flex, ndarray or wgpu)"
        )),
    }
}

/// `90`, `90s`, `10m`, `1h30m`, `1.5h`: a sum of numbers with the units `h`, `m`, `s` (seconds
/// when a number has no unit).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("cannot read {s:?} as a duration (e.g. 90s, 10m, 1h30m)");
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..end].parse().map_err(|_| err())?;
        rest = &rest[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match rest[..unit_end].trim() {
            "" | "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        rest = &rest[unit_end..];
        total += value * scale;
    }
    if !(total.is_finite() && total > 0.0 && total < 1e9) {
        return Err("must be longer than 0 seconds".into());
    }
    Ok(Duration::from_secs_f64(total))
}

fn parse_factor(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v) if v >= 2 && v.is_power_of_two() && v <= 1 << 16 => Ok(v),
        _ => Err("must be a power of two from 2 to 65536".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2m 5s").unwrap(), Duration::from_secs(125));
        for bad in ["", "m", "10x", "0", "-5m", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
