//! Training one model with one patching scheme, and held-out evaluation.
//!
//! Every run of an experiment starts from the same weights (the seed) and draws the same
//! training windows (the same seed): only the patching differs. AdamW (burn's, β = 0.9, 0.95,
//! gradients clipped to norm 1 per parameter), linear warm-up then cosine decay of the
//! learning rate over the step or time budget ([`bltpatch_model::optim::learning_rate`]). The
//! time budget counts training steps only (segmentation included), not evaluations.

use std::time::{Duration, Instant};

use bltpatch_model::optim::learning_rate;
use bltpatch_model::rng::SplitMix64;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::Device;
use serde::Serialize;

use crate::batch::HostBatch;
use crate::data::Sampler;
use crate::model::{LatentConfig, LatentInput, LatentModel};
use crate::patching::Patching;

/// Options of one training run.
#[derive(Clone, Debug, Serialize)]
pub struct TrainOptions {
    /// Stop after this many steps.
    pub steps: Option<usize>,
    /// Stop after this much training time.
    pub time_budget: Option<Duration>,
    /// Windows per step.
    pub batch_size: usize,
    /// Bytes per window.
    pub seq_len: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Final learning rate as a fraction of the peak.
    pub min_lr_ratio: f64,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// Evaluate the curve's held-out windows every this many steps (and at the start and end).
    pub eval_every: usize,
    /// Seed of the initial weights and of the training windows.
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            steps: None,
            time_budget: Some(Duration::from_secs(600)),
            batch_size: 8,
            seq_len: 512,
            lr: 1e-2,
            min_lr_ratio: 0.1,
            warmup_steps: 30,
            eval_every: 50,
            seed: 0,
        }
    }
}

/// Held-out bits per byte and patch statistics on a set of windows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Evaluation {
    /// Bits per byte over all windows.
    pub bits_per_byte: f64,
    /// Bytes scored.
    pub bytes: usize,
    /// Patches in the windows.
    pub patches: usize,
    /// Bits per byte of each corpus file's windows (`None` where it has none).
    pub per_file: Vec<Option<f64>>,
    /// Mean patch length of each corpus file's windows (`None` where it has none).
    pub per_file_patch_len: Vec<Option<f64>>,
    /// Over the patches that their window settles: the summed delay `known_at - end` in bytes
    /// (how long after a patch's last byte the decoder may first read it, minus one).
    pub known_delay_sum: u64,
    /// Patches that their window settles.
    pub known_patches: usize,
}

impl Evaluation {
    /// Mean patch length of the windows.
    pub fn mean_patch_len(&self) -> f64 {
        self.bytes as f64 / self.patches.max(1) as f64
    }

    /// Mean delay in bytes between a patch's end and the point where it is known (0 for the
    /// entropy rules and static patches).
    pub fn mean_known_delay(&self) -> f64 {
        self.known_delay_sum as f64 / self.known_patches.max(1) as f64
    }
}

/// Held-out windows, each a document, with the index of the corpus file it comes from.
#[derive(Clone, Debug)]
pub struct EvalSet<'a> {
    /// `(file index, window)`.
    pub windows: Vec<(usize, &'a [u8])>,
    /// Corpus files (the per-file results have this many entries).
    pub files: usize,
}

/// Scores the windows of `set` with a model that is not on an autodiff device.
pub fn evaluate(
    model: &LatentModel,
    cfg: &LatentConfig,
    patching: &Patching,
    set: &EvalSet<'_>,
    batch_size: usize,
    device: &Device,
) -> Evaluation {
    let mut nll = vec![0f64; set.files];
    let mut bytes = vec![0usize; set.files];
    let mut patches = vec![0usize; set.files];
    let (mut delay, mut known) = (0u64, 0usize);
    for group in set.windows.chunks(batch_size.max(1)) {
        let docs: Vec<&[u8]> = group.iter().map(|(_, d)| *d).collect();
        let layout = patching.layout(&docs);
        let batch = HostBatch::new(cfg, &docs, &layout);
        let input = LatentInput::new(&batch, device);
        let values: Vec<f32> = (model.nll(&input) * input.weights)
            .try_into_vec_as::<f32>()
            .expect("f32 losses");
        for (r, (f, doc)) in group.iter().enumerate() {
            let row = &values[r * batch.len..r * batch.len + doc.len()];
            nll[*f] += row.iter().map(|&x| x as f64).sum::<f64>();
            bytes[*f] += doc.len();
            patches[*f] += layout.doc_patches(r);
            let (d, k) = layout.known_delay(r);
            delay += d;
            known += k;
        }
    }
    let total: f64 = nll.iter().sum();
    let n: usize = bytes.iter().sum();
    let bpb = |nats: f64, n: usize| nats / n as f64 / std::f64::consts::LN_2;
    Evaluation {
        bits_per_byte: bpb(total, n),
        bytes: n,
        patches: patches.iter().sum(),
        per_file: nll
            .iter()
            .zip(&bytes)
            .map(|(&s, &n)| (n > 0).then(|| bpb(s, n)))
            .collect(),
        per_file_patch_len: patches
            .iter()
            .zip(&bytes)
            .map(|(&p, &n)| (n > 0).then(|| n as f64 / p as f64))
            .collect(),
        known_delay_sum: delay,
        known_patches: known,
    }
}

/// One point of the learning curve.
#[derive(Clone, Debug, Serialize)]
pub struct CurvePoint {
    /// Steps taken.
    pub step: usize,
    /// Bytes trained on so far.
    pub bytes_trained: u64,
    /// Training time so far, seconds.
    pub train_s: f64,
    /// Held-out bits per byte on the curve's windows.
    pub bits_per_byte: f64,
}

/// What a training run did.
#[derive(Clone, Debug, Serialize)]
pub struct TrainOutcome {
    /// Steps taken.
    pub steps: usize,
    /// Bytes trained on.
    pub bytes_trained: u64,
    /// Patches trained on.
    pub patches_trained: u64,
    /// Training time, seconds (steps only).
    pub train_s: f64,
    /// Wall time including the curve's evaluations, seconds.
    pub wall_s: f64,
    /// Training loss (bits per byte), mean of the last tenth of the steps.
    pub final_train_bpb: f64,
    /// The learning curve.
    pub curve: Vec<CurvePoint>,
}

/// Trains a fresh model of `cfg` (weights from `opts.seed`) on windows from `sampler`,
/// segmented by `patching`, on `device` (without autodiff; the run adds it). The `curve`
/// windows are scored every `opts.eval_every` steps; `log` receives a line per evaluation.
/// Returns the trained model (on `device`) and what the run did.
pub fn train(
    cfg: &LatentConfig,
    patching: &Patching,
    sampler: &Sampler<'_>,
    curve: &EvalSet<'_>,
    opts: &TrainOptions,
    device: &Device,
    mut log: impl FnMut(&str),
) -> (LatentModel, TrainOutcome) {
    let train_device = device.clone().autodiff();
    let mut model = cfg.init(opts.seed, &train_device);
    let mut optim = AdamWConfig::new()
        .with_beta_2(0.95)
        .with_epsilon(1e-8)
        .with_weight_decay(0.0)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
        .init();
    let mut rng = SplitMix64::new(opts.seed ^ 0x7769_6e64_6f77);
    let budget = opts.time_budget.map(|d| d.as_secs_f64());
    let progress = |step: usize, t: f64| -> f64 {
        let by_steps = opts.steps.map_or(0.0, |s| step as f64 / s.max(1) as f64);
        let by_time = budget.map_or(0.0, |b| t / b);
        by_steps.max(by_time)
    };
    let warmup = match opts.steps {
        Some(s) => opts.warmup_steps.min(s / 5),
        None => opts.warmup_steps,
    };
    let wall = Instant::now();
    let mut out = TrainOutcome {
        steps: 0,
        bytes_trained: 0,
        patches_trained: 0,
        train_s: 0.0,
        wall_s: 0.0,
        final_train_bpb: f64::NAN,
        curve: Vec::new(),
    };
    let mut recent: Vec<f64> = Vec::new();
    let eval_point = |model: &LatentModel, out: &mut TrainOutcome, log: &mut dyn FnMut(&str)| {
        let e = evaluate(
            &model.valid(),
            cfg,
            patching,
            curve,
            opts.batch_size,
            device,
        );
        out.curve.push(CurvePoint {
            step: out.steps,
            bytes_trained: out.bytes_trained,
            train_s: out.train_s,
            bits_per_byte: e.bits_per_byte,
        });
        log(&format!(
            "{} step {:>5} | {:>9} bytes | {:>6.1} s | held-out {:.3} bpb",
            patching.scheme(),
            out.steps,
            out.bytes_trained,
            out.train_s,
            e.bits_per_byte
        ));
    };
    eval_point(&model, &mut out, &mut log);
    while progress(out.steps, out.train_s) < 1.0 {
        let t0 = Instant::now();
        let lr = learning_rate(
            opts.lr,
            opts.min_lr_ratio,
            warmup,
            out.steps,
            progress(out.steps, out.train_s),
        );
        let docs = sampler.windows(&mut rng, opts.batch_size);
        let layout = patching.layout(&docs);
        let batch = HostBatch::new(cfg, &docs, &layout);
        let input = LatentInput::new(&batch, &train_device);
        let loss = model.loss(&input, batch.bytes);
        let loss_nats = loss.clone().into_scalar::<f32>() as f64;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr, model, grads);
        out.steps += 1;
        out.train_s += t0.elapsed().as_secs_f64();
        out.bytes_trained += batch.bytes as u64;
        out.patches_trained += (0..layout.batch)
            .map(|b| layout.doc_patches(b) as u64)
            .sum::<u64>();
        recent.push(loss_nats / std::f64::consts::LN_2);
        if out.steps.is_multiple_of(opts.eval_every.max(1)) {
            eval_point(&model, &mut out, &mut log);
        }
    }
    if out.curve.last().is_none_or(|p| p.step != out.steps) {
        eval_point(&model, &mut out, &mut log);
    }
    let tail = &recent[recent.len() - recent.len().div_ceil(10)..];
    if !tail.is_empty() {
        out.final_train_bpb = tail.iter().sum::<f64>() / tail.len() as f64;
    }
    out.wall_s = wall.elapsed().as_secs_f64();
    (model.valid(), out)
}
