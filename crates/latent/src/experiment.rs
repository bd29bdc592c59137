//! The experiment: the same model trained on the same bytes with each patching scheme at the
//! same mean patch length, then held-out bits per byte, FLOPs per byte, bytes trained and time.
//!
//! 1. The corpus files are split: first 95 % train, last 5 % held out, the held-out part cut
//!    into a validation half and a test half ([`crate::data`]).
//! 2. The target mean patch length is cl100k BPE's on the validation windows (or a given
//!    number), and every scheme's parameter is set to reach it on those windows
//!    ([`Patching::calibrate`]), so every scheme runs the global model on about the same number
//!    of patches per held-out byte, the same global FLOPs per byte. BPE needs no parameter.
//! 3. For each seed, each scheme trains a model from the same initial weights on the same
//!    sequence of windows ([`crate::train::train`]); a fixed set of held-out windows traces the
//!    learning curve, a larger one gives the final bits per byte.
//! 4. [`Report`] holds everything; [`Report::write`] writes `results.json`, `results.md` and
//!    `curve.svg`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bltpatch_model::Backend;
use serde::Serialize;

use crate::data::{Sampler, Text, spaced_windows};
use crate::error::LatentError;
use crate::generate::{SampleOptions, generate};
use crate::model::{Flops, LatentConfig, PRESETS};
use crate::patching::{EntropyModel, Patching, Scheme};
use crate::pooling::PoolingKind;
use crate::report::Report;
use crate::train::{EvalSet, Evaluation, TrainOptions, TrainOutcome, evaluate, train};

/// Everything an experiment needs.
#[derive(Clone, Debug, Serialize)]
pub struct ExperimentOptions {
    /// Corpus files.
    pub corpus: Vec<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Schemes, in table order.
    pub schemes: Vec<Scheme>,
    /// Seeds `first_seed .. first_seed + seeds`.
    pub seeds: usize,
    /// The first seed.
    pub first_seed: u64,
    /// Model size ([`LatentConfig::preset`]).
    pub preset: String,
    /// Pooling of byte states into patch vectors.
    pub pooling: PoolingKind,
    /// Mean patch length every scheme is calibrated to; `None`: cl100k BPE's mean on the
    /// validation windows.
    pub target_patch_len: Option<f64>,
    /// Training options (the seed is set per run).
    pub train: TrainOptions,
    /// Held-out windows per file for the learning curve.
    pub curve_windows_per_file: usize,
    /// Held-out windows per file for the final evaluation.
    pub final_windows_per_file: usize,
    /// Validation windows per file that the schemes are calibrated on.
    pub calibration_windows_per_file: usize,
    /// An entropy-model checkpoint instead of the library's default model.
    pub entropy_model: Option<PathBuf>,
    /// The burn backend.
    #[serde(serialize_with = "backend_name")]
    pub backend: Backend,
    /// Bytes to generate from each trained model (0: none).
    pub sample_bytes: usize,
    /// The prompt of the samples.
    pub sample_prompt: String,
}

fn backend_name<S: serde::Serializer>(b: &Backend, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(b.name())
}

impl ExperimentOptions {
    /// Defaults for `corpus` written to `out`: all five schemes, one seed, the `small` model
    /// with mean pooling, the mean patch length of cl100k BPE on the validation windows.
    pub fn new(corpus: Vec<PathBuf>, out: impl Into<PathBuf>) -> Self {
        Self {
            corpus,
            out: out.into(),
            schemes: Scheme::ALL.to_vec(),
            seeds: 1,
            first_seed: 0,
            preset: "small".into(),
            pooling: PoolingKind::Mean,
            target_patch_len: None,
            train: TrainOptions::default(),
            curve_windows_per_file: 8,
            final_windows_per_file: 32,
            calibration_windows_per_file: 32,
            entropy_model: None,
            backend: Backend::Flex,
            sample_bytes: 0,
            sample_prompt: "The ".into(),
        }
    }

    fn config(&self) -> Result<LatentConfig, LatentError> {
        let cfg = LatentConfig::preset(&self.preset, self.pooling).ok_or_else(|| {
            LatentError::InvalidOption(format!(
                "unknown preset {:?} (known: {})",
                self.preset,
                PRESETS.join(", ")
            ))
        })?;
        cfg.validate().map_err(LatentError::InvalidOption)?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), LatentError> {
        let bad = |m: &str| Err(LatentError::InvalidOption(m.into()));
        if self.schemes.is_empty() {
            return bad("no scheme to run");
        }
        if self.seeds == 0 {
            return bad("--seeds must be at least 1");
        }
        if self.train.steps == Some(0) {
            return bad("--steps must be at least 1");
        }
        if self.train.steps.is_none() && self.train.time_budget.is_none() {
            return bad("give --steps or --time-budget");
        }
        if self.train.batch_size == 0 || self.train.seq_len < 2 {
            return bad("batch size must be at least 1 and the sequence length at least 2");
        }
        if self.curve_windows_per_file == 0
            || self.final_windows_per_file == 0
            || self.calibration_windows_per_file == 0
        {
            return bad("evaluation windows per file must be at least 1");
        }
        if !(self.train.lr.is_finite() && self.train.lr > 0.0) {
            return bad("the learning rate must be positive");
        }
        Ok(())
    }
}

/// One scheme trained with one seed.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    /// The scheme.
    pub scheme: Scheme,
    /// The seed (initial weights and training windows).
    pub seed: u64,
    /// The final held-out evaluation.
    pub eval: Evaluation,
    /// FLOPs per byte of each part at the held-out mean patch length.
    pub flops: Flops,
    /// The training run.
    pub train: TrainOutcome,
    /// Wall time of the run, final evaluation included, seconds.
    pub wall_s: f64,
    /// A generated sample, when asked for.
    pub sample: Option<String>,
    /// Patch lengths of the sample as seen while generating, when asked for.
    pub sample_patch_lengths: Option<Vec<usize>>,
}

/// A scheme as calibrated.
#[derive(Clone, Debug, Serialize)]
pub struct SchemeSetup {
    /// The scheme.
    pub scheme: Scheme,
    /// The calibrated parameter, in words.
    pub parameter: String,
    /// Mean patch length on the calibration windows.
    pub calibration_mean_patch_len: f64,
    /// Mean patch length on the training windows of the first seed's run.
    pub train_mean_patch_len: f64,
}

/// Runs the whole experiment; `log` receives progress lines. Writes nothing: see
/// [`Report::write`].
///
/// # Errors
/// Invalid options, an unreadable corpus or entropy model, an unavailable backend.
pub fn run(opts: &ExperimentOptions, mut log: impl FnMut(&str)) -> Result<Report, LatentError> {
    opts.validate()?;
    let cfg = opts.config()?;
    let device = opts.backend.device()?;
    let text = Text::open(&opts.corpus)?;
    let entropy = match &opts.entropy_model {
        Some(dir) => EntropyModel::load(dir)?,
        None => EntropyModel::default_model(),
    };
    let seq_len = opts.train.seq_len;
    let sampler = Sampler::new(text.train(), seq_len);
    let files = text.names().len();
    let test = text.test();
    let curve = EvalSet {
        windows: spaced_windows(&test, opts.curve_windows_per_file, seq_len),
        files,
    };
    let last = EvalSet {
        windows: spaced_windows(&test, opts.final_windows_per_file, seq_len),
        files,
    };
    let calibration: Vec<&[u8]> = spaced_windows(
        &text.validation(),
        opts.calibration_windows_per_file,
        seq_len,
    )
    .into_iter()
    .map(|(_, w)| w)
    .collect();
    let calibration_bytes: usize = calibration.iter().map(|d| d.len()).sum();
    let target = match opts.target_patch_len {
        Some(t) => t,
        None => {
            let t = Patching::bpe(&entropy).mean_patch_len(&calibration);
            log(&format!(
                "target mean patch length {t:.4}: cl100k BPE's on {} validation windows ({calibration_bytes} bytes)",
                calibration.len()
            ));
            t
        }
    };
    let mut patchings = Vec::with_capacity(opts.schemes.len());
    let mut setups = Vec::with_capacity(opts.schemes.len());
    for &scheme in &opts.schemes {
        let p = Patching::calibrate(scheme, &entropy, &calibration, target)?;
        log(&format!(
            "{scheme}: {} gives a mean patch length of {:.3} on {calibration_bytes} validation bytes",
            p.describe(),
            p.calibration_mean(),
        ));
        setups.push(SchemeSetup {
            scheme,
            parameter: p.describe(),
            calibration_mean_patch_len: p.calibration_mean(),
            train_mean_patch_len: f64::NAN,
        });
        patchings.push(p);
    }
    let flops_nominal = cfg.flops_per_byte(target, seq_len);
    let parameters = cfg.init(0, &device).parameters();
    log(&format!(
        "model {} ({} pooling): {} parameters (encoder {}, pooling {}, global {}, decoder {}); {:.0} FLOPs/byte at mean patch length {:.3} (encoder {:.0}, pooling {:.0}, global {:.0} = {:.0}/patch, decoder {:.0}); {} + {} held-out windows of {} bytes",
        opts.preset,
        pooling_name(opts.pooling),
        parameters.total,
        parameters.encoder,
        parameters.pooling,
        parameters.global,
        parameters.decoder,
        flops_nominal.total,
        target,
        flops_nominal.encoder,
        flops_nominal.pooling,
        flops_nominal.global,
        flops_nominal.global_per_patch,
        flops_nominal.decoder,
        curve.windows.len(),
        last.windows.len(),
        seq_len,
    ));

    let mut runs = Vec::new();
    for s in 0..opts.seeds as u64 {
        let seed = opts.first_seed + s;
        for (patching, setup) in patchings.iter().zip(setups.iter_mut()) {
            let t0 = Instant::now();
            let train_opts = TrainOptions {
                seed,
                ..opts.train.clone()
            };
            let (model, outcome) = train(
                &cfg,
                patching,
                &sampler,
                &curve,
                &train_opts,
                &device,
                &mut log,
            );
            let eval = evaluate(
                &model,
                &cfg,
                patching,
                &last,
                opts.train.batch_size,
                &device,
            );
            let (sample, sample_patch_lengths) = if opts.sample_bytes > 0 {
                let g = generate(
                    &model,
                    &cfg,
                    patching,
                    opts.sample_prompt.as_bytes(),
                    opts.sample_bytes,
                    SampleOptions {
                        temperature: 0.8,
                        seed,
                    },
                    &device,
                );
                let lengths = g.patch_lengths();
                (
                    Some(String::from_utf8_lossy(&g.bytes).into_owned()),
                    Some(lengths),
                )
            } else {
                (None, None)
            };
            if setup.train_mean_patch_len.is_nan() {
                setup.train_mean_patch_len =
                    outcome.bytes_trained as f64 / outcome.patches_trained.max(1) as f64;
            }
            let run = Run {
                scheme: patching.scheme(),
                seed,
                flops: cfg.flops_per_byte(eval.mean_patch_len(), seq_len),
                eval,
                train: outcome,
                wall_s: t0.elapsed().as_secs_f64(),
                sample,
                sample_patch_lengths,
            };
            log(&format!(
                "{} seed {seed}: held-out {:.3} bits/byte (mean patch length {:.3}), {} steps, {} bytes, {:.0} s",
                run.scheme,
                run.eval.bits_per_byte,
                run.eval.mean_patch_len(),
                run.train.steps,
                run.train.bytes_trained,
                run.wall_s
            ));
            if let Some(s) = &run.sample {
                log(&format!("{} sample: {s:?}", run.scheme));
            }
            runs.push(run);
        }
    }
    Ok(Report::new(
        opts.clone(),
        target,
        cfg,
        parameters,
        text.names().to_vec(),
        setups,
        runs,
    ))
}

/// The pooling's name on the command line and in reports.
pub fn pooling_name(p: PoolingKind) -> &'static str {
    match p {
        PoolingKind::Mean => "mean",
        PoolingKind::CrossAttention => "cross-attention",
    }
}

/// Writes `bytes` to `path` atomically ([`bltpatch_io::OutputFile`]): the file appears
/// complete or not at all.
///
/// # Errors
/// [`LatentError::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LatentError> {
    let mut out = bltpatch_io::OutputFile::create(Some(path))?;
    out.write_all(bytes)
        .map_err(|source| bltpatch_io::IoError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(out.commit()?)
}
