//! Command-line arguments (clap derive) and their value checks.

use std::path::PathBuf;

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
}

/// `bltpatch train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Corpus files (`-` for stdin).
    #[arg(required = true, value_name = "CORPUS")]
    pub corpus: Vec<PathBuf>,
    /// Checkpoint directory to write (replaced atomically).
    #[arg(short, long, value_name = "DIR", default_value = "bltpatch-model")]
    pub output: PathBuf,
    /// Model architecture.
    #[arg(long, value_enum, default_value_t = Arch::Ngram)]
    pub arch: Arch,
    /// n-gram order (bytes per n-gram, including the predicted one): context = order - 1.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub order: u8,
    /// Fraction of each corpus file (its end) held out for validation and calibration.
    #[arg(long, default_value_t = 0.1, value_parser = parse_fraction)]
    pub val_fraction: f64,
    /// Mean patch length that the stored threshold is calibrated for.
    #[arg(long, default_value_t = 4.5, value_parser = parse_target)]
    pub target_patch_size: f64,
}

/// Model architectures `train` can build.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
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

/// The rule that turns entropies into boundaries. Values not given come from the checkpoint's
/// calibration.
#[derive(Args, Debug, Clone)]
pub struct RuleArgs {
    /// Boundary rule (default: the checkpoint's calibrated rule, else global).
    #[arg(long, value_enum)]
    pub rule: Option<RuleKind>,
    /// Global entropy threshold in nats: a byte starts a patch when H[i] > threshold.
    #[arg(long, value_parser = parse_threshold, conflicts_with = "target_patch_size")]
    pub threshold: Option<f32>,
    /// Relative threshold in nats: a byte starts a patch when H[i] - H[i-1] > this.
    #[arg(long, value_parser = parse_threshold)]
    pub relative_threshold: Option<f32>,
    /// Calibrate the threshold on the input itself for this mean patch length (>= 1).
    #[arg(long, value_parser = parse_target)]
    pub target_patch_size: Option<f64>,
    /// A patch also ends once it holds this many bytes (>= 1).
    #[arg(long, value_parser = parse_max_len)]
    pub max_patch_len: Option<usize>,
}

/// Boundary rules.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    /// H[i] > threshold.
    Global,
    /// H[i] - H[i-1] > relative threshold.
    Relative,
    /// Both conditions.
    Combined,
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
    /// Worker threads (default: all cores).
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
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
