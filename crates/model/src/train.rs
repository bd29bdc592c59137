//! The training loop: options, checkpoints, resume, progress, final evaluation and calibration.

use std::fs::{self, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bltpatch_checkpoint::{
    CONFIG_FILE, CalibrationRecord, Config, Tensor as CkptTensor, Weights, read_config,
    serialize_tensors, write_checkpoint,
};
use bltpatch_core::{CalibrationTarget, EntropyModel, Rule};
use bltpatch_engine::arch::ConvConfig;
use burn::module::Module;
use burn::prelude::Device;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::data::{Corpus, Sampler, check_writable, val_sample};
use crate::error::ModelError;
use crate::family::{Arch, ConvFamily, Family, FamilyHyper};
use crate::hashmlp::HashMlpFamily;
use crate::model::Window;
use crate::optim::{AdamW, AdamWConfig, global_grad_norm, learning_rate};
use crate::rng::SplitMix64;

/// The file, beside `config.json` and `model.safetensors`, that holds everything `--resume`
/// needs: the weights, the optimizer moments and the loop state (safetensors; the JSON state is
/// the `U8` tensor `state`).
pub const RESUME_FILE: &str = "train_state.safetensors";
/// The JSON Lines metrics log in the checkpoint directory.
pub const LOG_FILE: &str = "train_log.jsonl";
/// The trainer's name in the resume state and the training summary.
pub const TRAINER: &str = "bltpatch-model";

/// How training reports progress on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Progress {
    /// A progress bar when stderr is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// Always the indicatif progress bar.
    Bar,
    /// Plain periodic lines.
    Lines,
    /// Nothing.
    Quiet,
}

/// Everything `train` needs. [`TrainOptions::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Corpus files (memory-mapped; each file's tail is held out).
    pub corpus: Vec<PathBuf>,
    /// The checkpoint directory to write (replaced atomically at every save).
    pub output: PathBuf,
    /// The model family (`conv` by default).
    pub family: Arch,
    /// Architecture preset of the family: `tiny`, `small` (default) or `base`.
    pub preset: String,
    /// Explicit hyper-parameters (the family's `config.json` `architecture` object), overriding
    /// `preset` and `context` (checked by the family).
    pub arch: Option<serde_json::Value>,
    /// Minimum context `C` in bytes of a `conv` model: the dilations are chosen so that the
    /// model's context is at least this (see [`conv_config`]); `None` keeps the preset's.
    pub context: Option<usize>,
    /// Stop after this many optimizer steps.
    pub steps: Option<usize>,
    /// Stop after this much time (including previous runs when resuming). Without `steps` and
    /// `time_budget` training runs for 10 minutes.
    pub time_budget: Option<Duration>,
    /// Windows per batch (16).
    pub batch_size: usize,
    /// Counted positions per window `T` (512; each window also holds `R` warm-up positions).
    pub seq_len: usize,
    /// Peak learning rate (0.02).
    pub lr: f64,
    /// Final learning rate as a fraction of the peak (0.1; cosine decay).
    pub min_lr_ratio: f64,
    /// Linear warm-up steps (100, at most a fifth of `steps`).
    pub warmup_steps: usize,
    /// AdamW decoupled weight decay (0.01; matrices only).
    pub weight_decay: f64,
    /// Learning-rate multiplier of the embedding tables (8: the byte and hashed n-gram tables,
    /// each row of which sees few updates, learn best far faster than the matrices).
    pub embed_lr_mult: f64,
    /// Gradient clipping by the global L2 norm (1.0).
    pub grad_clip: f64,
    /// Seed of initialisation and window sampling (0).
    pub seed: u64,
    /// Fraction of each file held out (its tail) for validation and calibration, in `[0, 1)`
    /// (0.05).
    pub val_fraction: f64,
    /// Probability that a training window starts a document (0.05; all its positions count).
    pub doc_start_fraction: f64,
    /// The burn backend.
    pub backend: Backend,
    /// Worker threads (a dedicated rayon pool); `None` uses rayon's global pool.
    pub threads: Option<usize>,
    /// Continue the run saved in `output` (its [`RESUME_FILE`]): the architecture, seed and
    /// hyper-parameters come from the saved state, `steps` and `time_budget` from these options
    /// when either is given (both count the whole run, the saved part included), the corpus
    /// and backend from these options. The optimizer moments, step count, RNG state and clock
    /// continue exactly.
    pub resume: bool,
    /// Start from the weights of this checkpoint (a `config.json` and `model.safetensors` of
    /// the same family, tables stored as `F16` or row-scaled `I8`, widened exactly) instead of
    /// a random initialisation: fine-tuning on new text, or training a finished model further
    /// with a new schedule. The architecture comes from that checkpoint (`preset`, `arch` and
    /// `context` are not used); the optimizer moments, the learning-rate schedule, the step
    /// count and the sampler start afresh. The checkpoint written records where it started (the
    /// directory's name, the size and SHA-256 of its weights file) as `training.init`. Not with
    /// `resume` (a resumed run keeps its own start).
    pub init_from: Option<PathBuf>,
    /// Mean patch length that the stored rule is calibrated for (4.5, as in BLT).
    pub target_patch_size: f64,
    /// Which rule's parameter is calibrated and stored ([`CalibrationTarget::Budget`]).
    pub calibration_target: CalibrationTarget,
    /// Family-specific hyper-parameters (the `hashmlp` entropy head's loss).
    pub family_hyper: FamilyHyper,
    /// Steps between validation estimates (and log lines) (100).
    pub eval_every: usize,
    /// Held-out chunks (of `seq_len` positions) in the periodic validation estimate (64).
    pub val_chunks: usize,
    /// Time between periodic checkpoints (5 minutes).
    pub checkpoint_every: Duration,
    /// Held-out bytes used at most for the final evaluation and calibration (1 MiB).
    pub max_eval_bytes: usize,
    /// Progress display.
    pub progress: Progress,
    /// Catch Ctrl-C (SIGINT) and SIGTERM: save a checkpoint and return; a second Ctrl-C exits at
    /// once (status 130).
    pub handle_signals: bool,
    /// Behave as if interrupted right after this step (save, return): for tests and scripts.
    pub stop_after: Option<usize>,
    /// Call [`crate::tune_allocator`] before training (Linux with glibc).
    pub tune_allocator: bool,
}

impl TrainOptions {
    /// The defaults for `corpus` and `output`.
    pub fn new(corpus: Vec<PathBuf>, output: impl Into<PathBuf>) -> Self {
        Self {
            corpus,
            output: output.into(),
            family: Arch::Conv,
            preset: "small".into(),
            arch: None,
            context: None,
            steps: None,
            time_budget: None,
            batch_size: 16,
            seq_len: 512,
            lr: 2e-2,
            min_lr_ratio: 0.1,
            warmup_steps: 100,
            weight_decay: 0.01,
            embed_lr_mult: 8.0,
            grad_clip: 1.0,
            seed: 0,
            val_fraction: 0.05,
            doc_start_fraction: 0.05,
            backend: Backend::Flex,
            threads: None,
            resume: false,
            init_from: None,
            target_patch_size: 4.5,
            calibration_target: CalibrationTarget::Budget,
            family_hyper: FamilyHyper::default(),
            eval_every: 100,
            val_chunks: 64,
            checkpoint_every: Duration::from_secs(300),
            max_eval_bytes: 1 << 20,
            progress: Progress::Auto,
            handle_signals: true,
            stop_after: None,
            tune_allocator: true,
        }
    }

    fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::InvalidOption(m));
        if self.batch_size == 0 || self.seq_len == 0 {
            return bad("batch size and sequence length must be >= 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("learning rate {} must be > 0", self.lr));
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return bad(format!(
                "validation fraction {} must be in [0, 1)",
                self.val_fraction
            ));
        }
        if !(0.0..=1.0).contains(&self.doc_start_fraction)
            || !(0.0..=1.0).contains(&self.min_lr_ratio)
        {
            return bad("fractions must be in [0, 1]".into());
        }
        if !(self.target_patch_size.is_finite() && self.target_patch_size >= 1.0) {
            return bad(format!(
                "target patch size {} must be >= 1",
                self.target_patch_size
            ));
        }
        if !(self.embed_lr_mult.is_finite() && self.embed_lr_mult > 0.0) {
            return bad("embedding learning-rate multiplier must be > 0".into());
        }
        if !(self.grad_clip > 0.0 && self.weight_decay >= 0.0) {
            return bad("gradient clip must be > 0 and weight decay >= 0".into());
        }
        if self.steps == Some(0) || self.time_budget == Some(Duration::ZERO) {
            return bad("steps and time budget must be > 0".into());
        }
        if self.threads == Some(0) || self.eval_every == 0 {
            return bad("threads and eval interval must be >= 1".into());
        }
        if self.resume && self.init_from.is_some() {
            return bad("a resumed run keeps the weights it started from: drop the initial checkpoint or resume".into());
        }
        if matches!(self.context, Some(c) if c == 0 || c > 1 << 16) {
            return bad("context must be in 1..=65536".into());
        }
        let w = self.family_hyper.entropy_weight;
        if !(w.is_finite() && w >= 0.0) {
            return bad(format!("entropy weight {w} must be >= 0"));
        }
        let eps = self.family_hyper.label_smoothing;
        if !(0.0..1.0).contains(&eps) {
            return bad(format!("label smoothing {eps} must be in [0, 1)"));
        }
        let noise = self.family_hyper.row_noise;
        if !(0.0..1.0).contains(&noise) {
            return bad(format!("row noise {noise} must be in [0, 1)"));
        }
        Ok(())
    }
}

/// What a training run did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainReport {
    /// The checkpoint directory written.
    pub output: PathBuf,
    /// The model family (`config.json`'s `arch`).
    pub arch: String,
    /// The architecture's hyper-parameters (`config.json`'s `architecture`).
    pub architecture: serde_json::Value,
    /// Parameters of the model.
    pub parameters: usize,
    /// Inference FLOPs per byte.
    pub flops_per_byte: usize,
    /// The model's context `C`.
    pub context: usize,
    /// Optimizer steps taken in total (including resumed runs).
    pub steps: usize,
    /// Whether the run stopped early (Ctrl-C or `stop_after`); resume with `resume: true`.
    pub interrupted: bool,
    /// Wall-clock seconds in total (including resumed runs, evaluations and checkpoints).
    pub seconds: f64,
    /// Bytes trained on: positions that counted in the loss, summed over steps.
    pub bytes_trained: u64,
    /// Training throughput: counted bytes per second of training steps.
    pub bytes_per_sec: f64,
    /// Training loss (bits/byte, exponential moving average).
    pub train_bits_per_byte: f64,
    /// Held-out bits/byte: on the whole (capped) held-out text at the end of a complete run, on
    /// the periodic validation sample when interrupted; `None` without held-out text.
    pub val_bits_per_byte: Option<f64>,
    /// Held-out bytes that `val_bits_per_byte` and the calibration were measured on.
    pub val_bytes: usize,
    /// The calibrated rule and its parameter (nats).
    pub calibrated_rule: Option<Rule>,
    /// The mean patch length it gives on the calibration text.
    pub mean_patch_len: Option<f64>,
    /// For a family whose `H` predicts the entropy of its own next-byte distribution
    /// (`hashmlp`): the root-mean-square difference (nats) between the two on the text of
    /// `val_bits_per_byte`.
    pub entropy_rmse: Option<f64>,
}

impl std::fmt::Display for TrainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} steps in {:.0} s ({:.0} bytes/s){}: train {:.3} bits/byte",
            self.steps,
            self.seconds,
            self.bytes_per_sec,
            if self.interrupted {
                ", interrupted"
            } else {
                ""
            },
            self.train_bits_per_byte
        )?;
        if let Some(v) = self.val_bits_per_byte {
            write!(f, ", held-out {v:.3} bits/byte on {} bytes", self.val_bytes)?;
        }
        if let Some(e) = self.entropy_rmse {
            write!(f, ", entropy head error {e:.3} nats (rms)")?;
        }
        if let (Some(r), Some(m)) = (self.calibrated_rule, self.mean_patch_len) {
            write!(f, ", calibrated {r:?} (mean patch {m:.2} bytes)")?;
        }
        write!(f, "; saved to {}", self.output.display())
    }
}

/// The architecture for a preset and an optional minimum context.
///
/// With `context: Some(c)`, the preset's number of blocks is kept and the dilations become the
/// doubling cycle `1, 2, 4, …, 2^(m-1), 1, 2, …` with the smallest `m` whose context reaches
/// `c`; when even `m = blocks` is too short, blocks continuing the doubling are added until it
/// is reached.
///
/// # Errors
/// [`ModelError::InvalidOption`] for an unknown preset.
pub fn conv_config(preset: &str, context: Option<usize>) -> Result<ConvConfig, ModelError> {
    let mut cfg = ConvConfig::preset(preset).ok_or_else(|| {
        ModelError::InvalidOption(format!(
            "unknown preset {preset:?} (expected one of: {})",
            ConvConfig::PRESETS.join(", ")
        ))
    })?;
    let Some(want) = context else {
        return Ok(cfg);
    };
    let blocks = cfg.dilations.len().max(1);
    let with = |dilations: Vec<usize>| ConvConfig {
        dilations,
        ..cfg.clone()
    };
    for m in 1..=blocks {
        let c = with((0..blocks).map(|l| 1usize << (l % m)).collect());
        if c.context() >= want {
            cfg = c;
            return Ok(cfg);
        }
    }
    let mut dilations: Vec<usize> = (0..blocks).map(|l| 1usize << l).collect();
    while with(dilations.clone()).context() < want {
        dilations.push(1usize << dilations.len());
    }
    Ok(with(dilations))
}

/// The hyper-parameters of a run, saved for `--resume`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Hyper {
    preset: String,
    seed: u64,
    batch_size: usize,
    seq_len: usize,
    lr: f64,
    min_lr_ratio: f64,
    warmup_steps: usize,
    weight_decay: f64,
    #[serde(default = "one")]
    embed_lr_mult: f64,
    grad_clip: f64,
    val_fraction: f64,
    doc_start_fraction: f64,
    steps: Option<usize>,
    time_budget_s: Option<f64>,
    #[serde(default)]
    family: FamilyHyper,
}

fn one() -> f64 {
    1.0
}

fn conv_name() -> String {
    ConvFamily::ARCH.into()
}

/// The loop state saved for `--resume` (JSON inside [`RESUME_FILE`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ResumeState {
    trainer: String,
    version: u32,
    /// The family (`config.json`'s `arch`; states written before there were families are
    /// `conv`).
    #[serde(default = "conv_name")]
    family: String,
    /// Its hyper-parameters.
    arch: serde_json::Value,
    hyper: Hyper,
    step: usize,
    rng: u64,
    adam_steps: u64,
    elapsed_s: f64,
    train_s: f64,
    bytes_trained: u64,
    train_bpb_ema: Option<f64>,
    val_bpb: Option<f64>,
    corpus: Vec<(PathBuf, usize)>,
    /// The weights the run started from (`TrainOptions::init_from`), by file name, size and
    /// SHA-256; `None` for a random initialisation.
    #[serde(default)]
    init: Option<bltpatch_checkpoint::CorpusFile>,
}

/// Trains an entropy model and writes its checkpoint to `opts.output` (see the crate docs).
///
/// # Errors
/// Bad options, an unusable corpus or output directory, a backend that is not available, a
/// checkpoint that cannot be resumed, or a failed write. Never panics on bad input.
pub fn train(opts: &TrainOptions) -> Result<TrainReport, ModelError> {
    if opts.corpus.is_empty() {
        return Err(ModelError::NoCorpus);
    }
    opts.validate()?;
    if opts.tune_allocator {
        crate::tune_allocator();
    }
    let run = || match opts.family {
        Arch::Conv => Trainer::<ConvFamily>::run(opts),
        Arch::HashMlp => Trainer::<HashMlpFamily>::run(opts),
    };
    match opts.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| ModelError::InvalidOption(format!("cannot start {n} threads: {e}")))?
            .install(run),
        None => run(),
    }
}

/// The checkpoint a run starts from (`TrainOptions::init_from`).
struct Init<F: Family> {
    /// The checkpoint directory.
    dir: PathBuf,
    /// Its architecture.
    cfg: F::Config,
    /// Its preset's name as its training summary records it (`custom` when it does not).
    preset: String,
    /// Its weights.
    weights: Weights,
    /// The directory's name, the size and SHA-256 of its weights file.
    described: bltpatch_checkpoint::CorpusFile,
}

/// A family's architecture from its JSON record, validated.
fn parse_arch<F: Family>(value: serde_json::Value) -> Result<F::Config, String> {
    let cfg: F::Config = serde_json::from_value(value).map_err(|e| e.to_string())?;
    F::validate(&cfg)?;
    Ok(cfg)
}

/// Why a checkpoint whose `config.json` names the family `found` cannot serve a run of `F`,
/// if it cannot.
fn other_family<F: Family>(found: &str) -> Option<String> {
    (found != F::ARCH).then(|| format!("it holds a {found:?} model, not a {:?} model", F::ARCH))
}

/// Reads the checkpoint `dir` that a run starts from (`TrainOptions::init_from`).
fn read_init<F: Family>(dir: &Path) -> Result<Init<F>, ModelError> {
    let foreign = |reason: String| ModelError::ForeignCheckpoint {
        path: dir.to_path_buf(),
        reason,
    };
    let config = read_config(dir)?;
    if let Some(reason) = other_family::<F>(&config.arch) {
        return Err(foreign(reason));
    }
    let cfg = parse_arch::<F>(config.architecture.clone())
        .map_err(|e| foreign(format!("invalid architecture: {e}")))?;
    let path = dir.join(bltpatch_checkpoint::WEIGHTS_FILE);
    let bytes = fs::read(&path).map_err(|e| ModelError::Io {
        path: path.clone(),
        source: e,
    })?;
    // Named by the directory (every checkpoint's weights file has the same name).
    let described = bltpatch_checkpoint::CorpusFile::describe(dir, &bytes);
    let weights = Weights::from_bytes(bytes)?;
    let preset = config.training["preset"]
        .as_str()
        .unwrap_or("custom")
        .to_string();
    Ok(Init {
        dir: dir.to_path_buf(),
        cfg,
        preset,
        weights,
        described,
    })
}

/// Reads the resume state of `dir` (a run of the family `F`) and its hyper-parameters.
fn read_resume<F: Family>(dir: &Path) -> Result<(ResumeState, F::Config, Weights), ModelError> {
    let no = |reason: String| ModelError::NoCheckpoint {
        path: dir.to_path_buf(),
        reason,
    };
    let foreign = |reason: String| ModelError::ForeignCheckpoint {
        path: dir.to_path_buf(),
        reason,
    };
    if !dir.is_dir() {
        return Err(no("the directory does not exist".into()));
    }
    let has_config = dir.join(CONFIG_FILE).is_file();
    if has_config {
        // Reject another architecture with a precise message.
        let config = read_config(dir)?;
        if let Some(reason) = other_family::<F>(&config.arch) {
            return Err(foreign(format!("{reason} trained by {TRAINER}")));
        }
    }
    let path = dir.join(RESUME_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(no(format!("no {RESUME_FILE}")));
        }
        Err(e) => return Err(ModelError::Io { path, source: e }),
    };
    let weights = Weights::from_bytes(bytes)
        .map_err(|e| foreign(format!("{RESUME_FILE} is not a valid training state: {e}")))?;
    let (_, json) = weights
        .u8("state", None)
        .map_err(|_| foreign(format!("{RESUME_FILE} has no training state")))?;
    let state: ResumeState = serde_json::from_slice(&json)
        .map_err(|e| foreign(format!("unreadable training state: {e}")))?;
    if state.trainer != TRAINER || state.version != 1 {
        return Err(foreign(format!(
            "training state of {:?} version {}, expected {TRAINER:?} version 1",
            state.trainer, state.version
        )));
    }
    if state.family != F::ARCH {
        return Err(foreign(format!(
            "it holds the training state of a {:?} model, not a {:?} model",
            state.family,
            F::ARCH
        )));
    }
    let cfg = parse_arch::<F>(state.arch.clone())
        .map_err(|e| foreign(format!("invalid architecture in the training state: {e}")))?;
    Ok((state, cfg, weights))
}

/// Writes `bytes` to `path` atomically (temporary sibling, fsync, rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Progress display on stderr.
struct Reporter {
    bar: Option<ProgressBar>,
    lines: bool,
    last_line: Option<Instant>,
}

impl Reporter {
    fn new(mode: Progress) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let (bar, lines) = match mode {
            Progress::Quiet => (false, false),
            Progress::Bar => (true, false),
            Progress::Lines => (false, true),
            Progress::Auto => (terminal, !terminal),
        };
        let bar = bar.then(|| {
            let pb = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
            pb.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {percent:>3}% ETA {eta} {msg}",
                )
                .expect("a valid template"),
            );
            pb
        });
        Self {
            bar,
            lines,
            last_line: None,
        }
    }

    fn update(&mut self, progress: f64, msg: &str, force_line: bool) {
        if let Some(bar) = &self.bar {
            bar.set_position((progress * 1000.0).round().clamp(0.0, 1000.0) as u64);
            bar.set_message(msg.to_string());
        }
        if self.lines {
            let due = self
                .last_line
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
            if force_line || due {
                eprintln!("train: {:5.1}% {msg}", progress * 100.0);
                self.last_line = Some(Instant::now());
            }
        }
    }

    fn note(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(msg),
            None if self.lines => eprintln!("train: {msg}"),
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Ctrl-C (SIGINT) and SIGTERM handling. The handlers are installed once per process; while a
/// training run is active, the first signal asks it to stop (it saves and returns) and a second
/// one exits at once with status 130; outside training they act as the default action
/// (terminate), so the host program's behaviour is unchanged afterwards.
struct Signals {
    enabled: bool,
}

static SIGNALS_ACTIVE: AtomicBool = AtomicBool::new(false);
static SIGNAL_STOP: AtomicBool = AtomicBool::new(false);

impl Signals {
    fn new(enabled: bool) -> Self {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        if enabled {
            INSTALL.call_once(|| {
                for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                    let action = move || {
                        if !SIGNALS_ACTIVE.load(Ordering::SeqCst) {
                            let _ = signal_hook::low_level::emulate_default_handler(sig);
                        } else if SIGNAL_STOP.swap(true, Ordering::SeqCst) {
                            signal_hook::low_level::exit(130);
                        }
                    };
                    // SAFETY: the action only touches atomics and calls signal-hook's
                    // async-signal-safe `emulate_default_handler` and `exit`.
                    let _ = unsafe { signal_hook::low_level::register(sig, action) };
                }
            });
            SIGNAL_STOP.store(false, Ordering::SeqCst);
            SIGNALS_ACTIVE.store(true, Ordering::SeqCst);
        }
        Self { enabled }
    }

    fn raised(&self) -> bool {
        self.enabled && SIGNAL_STOP.load(Ordering::SeqCst)
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        if self.enabled {
            SIGNALS_ACTIVE.store(false, Ordering::SeqCst);
        }
    }
}

fn fmt_duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

struct Trainer<'a, F: Family> {
    opts: &'a TrainOptions,
    cfg: F::Config,
    hyper: Hyper,
    corpus: Corpus,
    /// The corpus files by name, size and SHA-256, for the checkpoint's training summary.
    corpus_files: Vec<bltpatch_checkpoint::CorpusFile>,
    device: Device,
    train_device: Device,
    /// The checkpoint a fresh run starts from (`TrainOptions::init_from`).
    init: Option<Init<F>>,
}

impl<F: Family> Trainer<'_, F> {
    fn run(opts: &TrainOptions) -> Result<TrainReport, ModelError> {
        // Resume state first (it fixes the architecture and hyper-parameters), then the corpus,
        // the output directory and the device: every check before any training.
        let resumed = if opts.resume {
            Some(read_resume::<F>(&opts.output)?)
        } else {
            None
        };
        let init = match &opts.init_from {
            Some(dir) => Some(read_init::<F>(dir)?),
            None => None,
        };
        let mut hyper = Hyper {
            preset: if opts.arch.is_some() {
                "custom".into()
            } else {
                opts.preset.clone()
            },
            seed: opts.seed,
            batch_size: opts.batch_size,
            seq_len: opts.seq_len,
            lr: opts.lr,
            min_lr_ratio: opts.min_lr_ratio,
            warmup_steps: opts.warmup_steps,
            weight_decay: opts.weight_decay,
            embed_lr_mult: opts.embed_lr_mult,
            grad_clip: opts.grad_clip,
            val_fraction: opts.val_fraction,
            doc_start_fraction: opts.doc_start_fraction,
            steps: opts.steps,
            time_budget_s: opts.time_budget.map(|d| d.as_secs_f64()),
            family: opts.family_hyper,
        };
        let cfg = match &resumed {
            Some((state, cfg, _)) => {
                let (steps, budget) = (hyper.steps, hyper.time_budget_s);
                hyper = state.hyper.clone();
                if steps.is_some() || budget.is_some() {
                    hyper.steps = steps;
                    hyper.time_budget_s = budget;
                }
                cfg.clone()
            }
            None => match (&init, &opts.arch) {
                (Some(init), _) => {
                    hyper.preset = init.preset.clone();
                    init.cfg.clone()
                }
                (None, Some(a)) => parse_arch::<F>(a.clone())
                    .map_err(|e| ModelError::InvalidOption(format!("invalid architecture: {e}")))?,
                (None, None) => F::config(&opts.preset, opts.context)?,
            },
        };
        if hyper.steps.is_none() && hyper.time_budget_s.is_none() {
            hyper.time_budget_s = Some(600.0);
        }
        let corpus = Corpus::open(&opts.corpus, hyper.val_fraction)?;
        // The device first: a backend that is not available leaves no output directory behind.
        let device = opts.backend.device()?;
        let created = !opts.output.exists();
        check_writable(&opts.output)?;
        let trainer = Trainer::<F> {
            init,
            opts,
            cfg,
            hyper,
            corpus_files: corpus.describe(),
            corpus,
            train_device: device.clone().autodiff(),
            device,
        };
        let result = trainer.train(resumed);
        if result.is_err() && created {
            // Nothing was saved: do not leave the empty directory (remove_dir fails otherwise).
            let _ = std::fs::remove_dir(&opts.output);
        }
        result
    }

    fn train(
        &self,
        resumed: Option<(ResumeState, F::Config, Weights)>,
    ) -> Result<TrainReport, ModelError> {
        let (opts, cfg, hyper) = (self.opts, &self.cfg, &self.hyper);
        let geometry = F::geometry(cfg);
        let sampler = Sampler::new(
            geometry,
            self.corpus.train_docs(),
            hyper.seq_len,
            hyper.doc_start_fraction,
        )?;
        let val_docs = self.corpus.val_docs();
        let val_windows = val_sample(
            &val_docs,
            opts.val_chunks,
            sampler.seq_len,
            geometry.receptive_field,
        );
        let adam = AdamWConfig {
            weight_decay: hyper.weight_decay,
            embed_lr_mult: hyper.embed_lr_mult,
            ..AdamWConfig::default()
        };
        let log_path = opts.output.join(LOG_FILE);

        let (mut model, mut opt, mut rng, mut st) = match resumed {
            Some((state, _, weights)) => {
                let foreign = |reason: String| ModelError::ForeignCheckpoint {
                    path: opts.output.clone(),
                    reason,
                };
                let model = F::build(cfg, &self.train_device, &mut |name, shape| {
                    Ok(weights.f32(&format!("model/{name}"), Some(shape))?.1)
                })
                .map_err(|e| foreign(format!("training state weights: {e}")))?;
                let params: Vec<(String, usize)> = F::to_tensors(&model)
                    .into_iter()
                    .map(|t| (t.name, t.shape.iter().product()))
                    .collect();
                let opt = AdamW::from_tensors(adam, state.adam_steps, &params, &self.device, |n| {
                    weights.f32(n, None).ok().map(|(_, d)| d)
                })
                .map_err(foreign)?;
                if state.corpus != self.corpus.files() {
                    eprintln!("warning: resuming on another corpus than the run started with");
                }
                (model, opt, SplitMix64::new(state.rng), state)
            }
            None => {
                // A fresh run: drop a previous run's log and resume state.
                let _ = fs::remove_file(&log_path);
                let _ = fs::remove_file(opts.output.join(RESUME_FILE));
                let state = ResumeState {
                    trainer: TRAINER.into(),
                    version: 1,
                    family: F::ARCH.into(),
                    arch: serde_json::to_value(cfg).expect("the architecture serialises"),
                    hyper: hyper.clone(),
                    step: 0,
                    rng: hyper.seed,
                    adam_steps: 0,
                    elapsed_s: 0.0,
                    train_s: 0.0,
                    bytes_trained: 0,
                    train_bpb_ema: None,
                    val_bpb: None,
                    corpus: self.corpus.files(),
                    init: self.init.as_ref().map(|i| i.described.clone()),
                };
                let model = match &self.init {
                    Some(init) => F::build(cfg, &self.train_device, &mut |name, shape| {
                        Ok(init.weights.float(name, Some(shape))?.1)
                    })
                    .map_err(|e| ModelError::ForeignCheckpoint {
                        path: init.dir.clone(),
                        reason: format!("its weights: {e}"),
                    })?,
                    None => F::init(cfg, hyper.seed, &self.train_device),
                };
                (model, AdamW::new(adam), SplitMix64::new(hyper.seed), state)
            }
        };
        st.hyper = hyper.clone();
        st.corpus = self.corpus.files();

        let mut reporter = Reporter::new(opts.progress);
        reporter.note(&format!(
            "model {} {} ({} parameters, {} FLOPs/byte, context {} bytes) on {}; {} corpus bytes; T={} x B={}",
            F::ARCH,
            hyper.preset,
            F::parameters(cfg),
            F::flops_per_byte(cfg),
            geometry.context,
            opts.backend,
            self.corpus.total_bytes(),
            sampler.seq_len,
            hyper.batch_size,
        ));
        let signals = Signals::new(opts.handle_signals);
        let warmup = match hyper.steps {
            Some(s) => hyper.warmup_steps.min(s / 5),
            None => hyper.warmup_steps,
        };
        let progress_of = |step: usize, elapsed: f64| -> f64 {
            let by_steps = hyper.steps.map_or(0.0, |s| step as f64 / s as f64);
            let by_time = hyper.time_budget_s.map_or(0.0, |b| elapsed / b);
            by_steps.max(by_time)
        };
        let start = Instant::now();
        let elapsed_before = st.elapsed_s;
        let elapsed = |start: &Instant| elapsed_before + start.elapsed().as_secs_f64();
        let mut last_ckpt = Instant::now();
        let mut interrupted = false;
        let mut recent_bytes = 0u64;
        let mut recent_t = 0.0f64;

        loop {
            if progress_of(st.step, elapsed(&start)) >= 1.0 {
                break;
            }
            let t0 = Instant::now();
            let lr = learning_rate(
                hyper.lr,
                hyper.min_lr_ratio,
                warmup,
                st.step,
                progress_of(st.step, elapsed(&start)),
            );
            let windows: Vec<Window<'_>> = (0..hyper.batch_size)
                .map(|_| sampler.window(&mut rng))
                .collect();
            let loss = F::loss(&model, cfg, &windows, &hyper.family, &self.train_device);
            let loss_nats = loss.nll.into_scalar::<f32>() as f64;
            let mut grads = loss.total.backward();
            let norm = global_grad_norm(&model, &grads);
            let scale = if norm.is_finite() && norm > hyper.grad_clip {
                hyper.grad_clip / norm
            } else {
                1.0
            };
            model = opt.step(model, &mut grads, lr, scale);
            let dt = t0.elapsed().as_secs_f64();
            st.step += 1;
            st.train_s += dt;
            st.bytes_trained += loss.counted as u64;
            st.adam_steps = opt.steps();
            st.rng = rng.state();
            recent_bytes += loss.counted as u64;
            recent_t += dt;
            let bpb = loss_nats / std::f64::consts::LN_2;
            st.train_bpb_ema = Some(match st.train_bpb_ema {
                Some(e) if bpb.is_finite() => 0.95 * e + 0.05 * bpb,
                _ => bpb,
            });

            let eval_now = st.step % opts.eval_every == 0;
            let mut entropy_rmse = None;
            if eval_now {
                let v = self.val_estimate(&model, &val_windows);
                st.val_bpb = v.bpb;
                entropy_rmse = v.entropy_rmse;
            }
            let now = elapsed(&start);
            let rate = recent_bytes as f64 / recent_t.max(1e-9);
            let p = progress_of(st.step, now);
            let eta = if p > 0.0 { now * (1.0 - p) / p } else { 0.0 };
            let msg = format!(
                "step {}{} | {:.0} B/s | train {:.3} bpb | val {} | lr {:.2e} | eta {}",
                st.step,
                hyper.steps.map(|s| format!("/{s}")).unwrap_or_default(),
                rate,
                st.train_bpb_ema.unwrap_or(f64::NAN),
                st.val_bpb
                    .map_or("-".to_string(), |v| format!("{v:.3} bpb")),
                lr,
                fmt_duration(eta),
            );
            reporter.update(p.min(1.0), &msg, eval_now);
            if eval_now || st.step == 1 {
                let line = serde_json::json!({
                    "step": st.step,
                    "elapsed_s": now,
                    "lr": lr,
                    "train_bpb": bpb,
                    "train_bpb_ema": st.train_bpb_ema,
                    "val_bpb": if eval_now { st.val_bpb } else { None },
                    "val_entropy_rmse": entropy_rmse,
                    "grad_norm": norm,
                    "bytes_per_sec": rate,
                    "bytes_trained": st.bytes_trained,
                });
                append_log(&log_path, &line);
                recent_bytes = 0;
                recent_t = 0.0;
            }
            let stop = signals.raised() || opts.stop_after == Some(st.step);
            if stop {
                interrupted = true;
                break;
            }
            if last_ckpt.elapsed() >= opts.checkpoint_every {
                st.elapsed_s = elapsed(&start);
                self.save_periodic(&model, &opt, &st, &val_windows)?;
                reporter.note(&format!("checkpoint at step {} saved", st.step));
                last_ckpt = Instant::now();
            }
        }
        st.elapsed_s = elapsed(&start);

        let report = if interrupted {
            reporter.note(&format!("interrupted at step {}: saving", st.step));
            let ev = self.save_periodic(&model, &opt, &st, &val_windows)?;
            self.report(&st, true, ev)
        } else {
            reporter.update(1.0, "final evaluation and calibration", true);
            let ev = self.save_final(&model, &opt, &mut st)?;
            self.report(&st, false, ev)
        };
        reporter.finish();
        Ok(report)
    }

    /// Validation bits/byte on `windows` (counted positions only) and their entropies.
    fn val_estimate(&self, model: &F::Lm, windows: &[Window<'_>]) -> ValEstimate {
        let mut v = ValEstimate::default();
        if windows.is_empty() {
            return v;
        }
        let valid = model.valid();
        let mut nll_sum = 0.0f64;
        let mut sq_sum = 0.0f64;
        let mut count = 0usize;
        for group in windows.chunks(self.hyper.batch_size.max(1)) {
            for scored in F::score(&valid, &self.cfg, group, &self.device) {
                nll_sum += scored.nll.iter().map(|&x| x as f64).sum::<f64>();
                count += scored.nll.len();
                if let Some(d) = &scored.distribution_entropies {
                    sq_sum += squared_error(&scored.entropies, d);
                    v.entropy_rmse = Some(0.0);
                }
                v.entropies.push(scored.entropies);
            }
        }
        v.bpb = (count > 0).then(|| nll_sum / count as f64 / std::f64::consts::LN_2);
        if v.entropy_rmse.is_some() && count > 0 {
            v.entropy_rmse = Some((sq_sum / count as f64).sqrt());
        }
        v
    }

    /// A checkpoint during training (or on interruption): calibrated on the validation sample.
    fn save_periodic(
        &self,
        model: &F::Lm,
        opt: &AdamW,
        st: &ResumeState,
        val_windows: &[Window<'_>],
    ) -> Result<Evaluated, ModelError> {
        let v = self.val_estimate(model, val_windows);
        let calibration = self.calibration(&v.entropies)?;
        let mut st = st.clone();
        st.val_bpb = v.bpb.or(st.val_bpb);
        let bytes = v.entropies.iter().map(Vec::len).sum();
        self.save(model, opt, &st, calibration.clone(), false, bytes)?;
        Ok(Evaluated {
            val: st.val_bpb,
            entropy_rmse: v.entropy_rmse,
            calibration,
        })
    }

    /// The final checkpoint: held-out bits/byte on the whole (capped) held-out text, and the
    /// threshold calibrated on its entropies.
    fn save_final(
        &self,
        model: &F::Lm,
        opt: &AdamW,
        st: &mut ResumeState,
    ) -> Result<Evaluated, ModelError> {
        let mut docs = self.corpus.val_docs_capped(self.opts.max_eval_bytes);
        if docs.is_empty() {
            // No held-out text: calibrate on (a prefix of) the training text.
            docs = crate::data::cap_docs(&self.corpus.train_docs(), self.opts.max_eval_bytes);
        }
        // Entropies and bits/byte with the canonical engine (which defines `H`, and is faster
        // than burn's forward on the CPU) on the checkpoint's tensors, in parallel chunks.
        let t0 = Instant::now();
        let engine = F::engine(&self.cfg, &F::export(&self.cfg, F::to_tensors(model)))?;
        const CHUNK: usize = 16 * 1024;
        let ranges: Vec<(usize, std::ops::Range<usize>)> = docs
            .iter()
            .enumerate()
            .flat_map(|(d, doc)| {
                (0..doc.len().div_ceil(CHUNK))
                    .map(move |c| (d, c * CHUNK..((c + 1) * CHUNK).min(doc.len())))
            })
            .collect();
        let parts: Vec<(Vec<f32>, f64, Option<f64>)> = ranges
            .par_iter()
            .map(|(d, r)| {
                let mut h = vec![0f32; r.len()];
                let mut s = vec![0f32; r.len()];
                engine.entropies(docs[*d], r.clone(), &mut h);
                engine.surprisals(docs[*d], r.clone(), &mut s);
                let nll = s.iter().map(|&x| x as f64).sum::<f64>();
                // `s` now holds the distribution's entropies, where the family has them.
                let sq = engine
                    .distribution_entropies(docs[*d], r.clone(), &mut s)
                    .then(|| squared_error(&h, &s));
                (h, nll, sq)
            })
            .collect();
        let mut entropies: Vec<Vec<f32>> =
            docs.iter().map(|d| Vec::with_capacity(d.len())).collect();
        let mut nll_doc = vec![0.0f64; docs.len()];
        let mut sq: Option<f64> = None;
        for ((d, _), (h, s, e)) in ranges.iter().zip(parts) {
            entropies[*d].extend_from_slice(&h);
            nll_doc[*d] += s;
            if let Some(e) = e {
                sq = Some(sq.unwrap_or(0.0) + e);
            }
        }
        let nll_sum: f64 = nll_doc.iter().sum();
        let per_doc: Vec<f64> = nll_doc
            .iter()
            .zip(&docs)
            .map(|(s, d)| s / d.len() as f64 / std::f64::consts::LN_2)
            .collect();
        let count: usize = docs.iter().map(|d| d.len()).sum();
        let entropy_rmse = sq.map(|e| (e / count.max(1) as f64).sqrt());
        let entropies_s = t0.elapsed().as_secs_f64();
        let has_val = !self.corpus.val_docs().is_empty();
        let val = (has_val && count > 0).then(|| nll_sum / count as f64 / std::f64::consts::LN_2);
        let calibration = self.calibration(&entropies)?;
        append_log(
            &self.opts.output.join(LOG_FILE),
            &serde_json::json!({
                "final": true,
                "step": st.step,
                "val_bpb": val,
                "val_bytes": count,
                "val_bpb_per_doc": per_doc,
                "val_entropy_rmse": entropy_rmse,
                "eval_s": entropies_s,
                "calibration": calibration.as_ref().map(|c| c.rule),
            }),
        );
        st.val_bpb = val.or(st.val_bpb);
        self.save(
            model,
            opt,
            st,
            calibration.clone(),
            true,
            if has_val { count } else { 0 },
        )?;
        Ok(Evaluated {
            val,
            entropy_rmse,
            calibration,
        })
    }

    fn calibration(&self, entropies: &[Vec<f32>]) -> Result<Option<CalibrationRecord>, ModelError> {
        let docs: Vec<&[f32]> = entropies
            .iter()
            .map(Vec::as_slice)
            .filter(|d| !d.is_empty())
            .collect();
        if docs.is_empty() {
            return Ok(None);
        }
        Ok(Some(CalibrationRecord::calibrate(
            &docs,
            self.opts.calibration_target,
            self.opts.target_patch_size,
            None,
        )?))
    }

    /// Writes the resume state, then the checkpoint (which carries the resume state over).
    fn save(
        &self,
        model: &F::Lm,
        opt: &AdamW,
        st: &ResumeState,
        calibration: Option<CalibrationRecord>,
        complete: bool,
        val_bytes: usize,
    ) -> Result<(), ModelError> {
        let out = &self.opts.output;
        let write_err = |e: std::io::Error| ModelError::OutputNotWritable {
            path: out.clone(),
            reason: e.to_string(),
        };
        let tensors = F::to_tensors(model);
        let mut resume: Vec<CkptTensor> = tensors
            .iter()
            .map(|t| CkptTensor {
                name: format!("model/{}", t.name),
                ..t.clone()
            })
            .collect();
        resume.extend(opt.to_tensors().0);
        let json = serde_json::to_vec(st).expect("the state serialises");
        resume.push(CkptTensor::u8("state", vec![json.len()], json));
        let bytes = serialize_tensors(&resume)?;
        fs::create_dir_all(out).map_err(write_err)?;
        write_atomic(&out.join(RESUME_FILE), &bytes).map_err(write_err)?;

        let mut config = Config::new(
            F::ARCH,
            F::geometry(&self.cfg).context,
            serde_json::to_value(&self.cfg).expect("the architecture serialises"),
        );
        let bps = st.bytes_trained as f64 / st.train_s.max(1e-9);
        config.training = serde_json::json!({
            "trainer": TRAINER,
            "preset": st.hyper.preset,
            "corpus": self.corpus_files,
            "corpus_bytes": self.corpus.total_bytes(),
            "val_fraction": st.hyper.val_fraction,
            "steps": st.step,
            "complete": complete,
            "seconds": st.elapsed_s,
            "bytes_trained": st.bytes_trained,
            "bytes_per_sec": bps,
            "train_bits_per_byte": st.train_bpb_ema,
            "val_bits_per_byte": st.val_bpb,
            "val_bytes": val_bytes,
            "backend": self.opts.backend.name(),
            "seed": st.hyper.seed,
            "batch_size": st.hyper.batch_size,
            "seq_len": st.hyper.seq_len,
            "lr": st.hyper.lr,
            "parameters": F::parameters(&self.cfg),
            "flops_per_byte": F::flops_per_byte(&self.cfg),
        });
        if let Some(init) = &st.init {
            config.training["init"] =
                serde_json::to_value(init).expect("the description serialises");
        }
        if st.hyper.family != FamilyHyper::default() || F::ARCH != ConvFamily::ARCH {
            config.training["family_hyper"] =
                serde_json::to_value(st.hyper.family).expect("the hyper-parameters serialise");
        }
        config.calibration = calibration;
        write_checkpoint(out, &config, &F::export(&self.cfg, tensors))?;
        Ok(())
    }

    fn report(&self, st: &ResumeState, interrupted: bool, ev: Evaluated) -> TrainReport {
        let Evaluated {
            val,
            entropy_rmse,
            calibration,
        } = ev;
        TrainReport {
            output: self.opts.output.clone(),
            arch: F::ARCH.into(),
            architecture: serde_json::to_value(&self.cfg).expect("the architecture serialises"),
            parameters: F::parameters(&self.cfg),
            flops_per_byte: F::flops_per_byte(&self.cfg),
            context: F::geometry(&self.cfg).context,
            steps: st.step,
            interrupted,
            seconds: st.elapsed_s,
            bytes_trained: st.bytes_trained,
            bytes_per_sec: st.bytes_trained as f64 / st.train_s.max(1e-9),
            train_bits_per_byte: st.train_bpb_ema.unwrap_or(f64::NAN),
            val_bits_per_byte: val,
            val_bytes: if val.is_some() {
                calibration.as_ref().map_or(0, |c| c.calibration_bytes)
            } else {
                0
            },
            calibrated_rule: calibration.as_ref().map(|c| c.rule),
            mean_patch_len: calibration.as_ref().map(|c| c.mean_patch_len),
            entropy_rmse,
        }
    }
}

/// The periodic validation estimate.
#[derive(Default)]
struct ValEstimate {
    bpb: Option<f64>,
    entropy_rmse: Option<f64>,
    entropies: Vec<Vec<f32>>,
}

/// What a save measured.
struct Evaluated {
    val: Option<f64>,
    entropy_rmse: Option<f64>,
    calibration: Option<CalibrationRecord>,
}

/// `Σ (a_i - b_i)²` in `f64`.
fn squared_error(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let e = x as f64 - y as f64;
            e * e
        })
        .sum()
}

fn append_log(path: &Path, line: &serde_json::Value) {
    // The log is best effort: a failure to append never stops training.
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}
