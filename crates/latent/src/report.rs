//! The experiment's results: a table per scheme (markdown and JSON) and the learning curves
//! (SVG).

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::error::LatentError;
use crate::experiment::{ExperimentOptions, Run, SchemeSetup, pooling_name, write_atomic};
use crate::model::{Flops, LatentConfig, Parameters};
use crate::patching::Scheme;
use crate::svg::{Series, line_chart};

/// Mean, sample standard deviation, minimum and maximum of some values.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one value).
    pub sd: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (at least one).
    pub fn of(values: &[f64]) -> Self {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = if values.len() > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Self {
            mean,
            sd: var.sqrt(),
            min: values.iter().cloned().fold(f64::INFINITY, f64::min),
            max: values.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// One row of the table: a scheme over all seeds.
#[derive(Clone, Debug, Serialize)]
pub struct SchemeSummary {
    /// The scheme.
    pub scheme: Scheme,
    /// Its calibrated parameter.
    pub parameter: String,
    /// Seeds run.
    pub seeds: usize,
    /// Held-out bits per byte over the seeds.
    pub bits_per_byte: Spread,
    /// Mean patch length on the validation windows the parameter was set on.
    pub calibration_mean_patch_len: f64,
    /// Mean patch length on the training windows, mean over seeds.
    pub train_mean_patch_len: f64,
    /// Mean patch length on the held-out (test) windows.
    pub mean_patch_len: f64,
    /// Mean delay in bytes between a patch's end and the point where the decoder may read it,
    /// on the held-out windows.
    pub known_delay: f64,
    /// FLOPs per byte of each part at that mean patch length.
    pub flops: Flops,
    /// Bytes trained, mean over seeds.
    pub bytes_trained: f64,
    /// Steps, mean over seeds.
    pub steps: f64,
    /// Training time (steps only), mean over seeds, seconds.
    pub train_s: f64,
    /// Wall time of a run (evaluations included), mean over seeds, seconds.
    pub wall_s: f64,
}

/// Everything the experiment produced.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The options it ran with.
    pub options: ExperimentOptions,
    /// The mean patch length every scheme was set to reach on the validation windows.
    pub target_patch_len: f64,
    /// The model configuration.
    pub model: LatentConfig,
    /// Its parameters per part.
    pub parameters: Parameters,
    /// Corpus file names.
    pub files: Vec<String>,
    /// The schemes as calibrated.
    pub setups: Vec<SchemeSetup>,
    /// One row per scheme.
    pub summary: Vec<SchemeSummary>,
    /// Every run, with its curve.
    pub runs: Vec<Run>,
}

impl Report {
    /// Summarises `runs` per scheme (in the order of `setups`).
    pub fn new(
        options: ExperimentOptions,
        target_patch_len: f64,
        model: LatentConfig,
        parameters: Parameters,
        files: Vec<String>,
        setups: Vec<SchemeSetup>,
        runs: Vec<Run>,
    ) -> Self {
        let summary = setups
            .iter()
            .filter_map(|s| {
                let rs: Vec<&Run> = runs.iter().filter(|r| r.scheme == s.scheme).collect();
                let first = rs.first()?;
                let mean = |f: &dyn Fn(&Run) -> f64| {
                    rs.iter().map(|r| f(r)).sum::<f64>() / rs.len() as f64
                };
                let bpb: Vec<f64> = rs.iter().map(|r| r.eval.bits_per_byte).collect();
                Some(SchemeSummary {
                    scheme: s.scheme,
                    parameter: s.parameter.clone(),
                    seeds: rs.len(),
                    bits_per_byte: Spread::of(&bpb),
                    calibration_mean_patch_len: s.calibration_mean_patch_len,
                    train_mean_patch_len: mean(&|r| {
                        r.train.bytes_trained as f64 / r.train.patches_trained.max(1) as f64
                    }),
                    mean_patch_len: first.eval.mean_patch_len(),
                    known_delay: first.eval.mean_known_delay(),
                    flops: first.flops,
                    bytes_trained: mean(&|r| r.train.bytes_trained as f64),
                    steps: mean(&|r| r.train.steps as f64),
                    train_s: mean(&|r| r.train.train_s),
                    wall_s: mean(&|r| r.wall_s),
                })
            })
            .collect();
        Self {
            options,
            target_patch_len,
            model,
            parameters,
            files,
            setups,
            summary,
            runs,
        }
    }

    /// The table and the setup, as markdown.
    pub fn markdown(&self) -> String {
        let o = &self.options;
        let mut s = String::new();
        let _ = writeln!(s, "# Patching schemes on the byte-latent transformer\n");
        let budget = match (o.train.steps, o.train.time_budget) {
            (Some(n), Some(t)) => format!("{n} steps or {:.0} s", t.as_secs_f64()),
            (Some(n), None) => format!("{n} steps"),
            (None, Some(t)) => format!("{:.0} s of training", t.as_secs_f64()),
            (None, None) => "-".into(),
        };
        let target = match o.target_patch_len {
            Some(t) => format!("target mean patch length {t}"),
            None => format!(
                "target mean patch length {:.4} (cl100k BPE's on the validation windows)",
                self.target_patch_len
            ),
        };
        let _ = writeln!(
            s,
            "Model `{}` ({} parameters) with {} pooling; {target}, every parameter set on {} validation windows per file \
             (first half of each file's held-out 5 %); {} per run; batch {} × {} bytes; lr {}; backend {}; {}. \
             Held-out: {} windows per file of the second half of the held-out 5 % of {}.\n",
            o.preset,
            self.parameters.total,
            pooling_name(o.pooling),
            o.calibration_windows_per_file,
            budget,
            o.train.batch_size,
            o.train.seq_len,
            o.train.lr,
            o.backend.name(),
            match o.seeds {
                1 => format!("seed {}", o.first_seed),
                n => format!("seeds {}–{}", o.first_seed, o.first_seed + n as u64 - 1),
            },
            o.final_windows_per_file,
            self.files.join(", ")
        );
        let _ = writeln!(
            s,
            "| scheme | parameter | held-out bits/byte (mean ± sd) | min – max | mean patch len: validation | training | held-out | \
             known-at delay (bytes) | FLOPs/byte encoder | pooling | global (per patch) | decoder | total | bytes trained | steps | train s | wall s |"
        );
        let _ = writeln!(
            s,
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for r in &self.summary {
            let f = &r.flops;
            let _ = writeln!(
                s,
                "| {} | {} | {:.4} ± {:.4} | {:.4} – {:.4} | {:.3} | {:.3} | {:.3} | {:.2} | {:.0} | {:.0} | {:.0} ({:.0}) | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
                r.scheme,
                r.parameter,
                r.bits_per_byte.mean,
                r.bits_per_byte.sd,
                r.bits_per_byte.min,
                r.bits_per_byte.max,
                r.calibration_mean_patch_len,
                r.train_mean_patch_len,
                r.mean_patch_len,
                r.known_delay,
                f.encoder,
                f.pooling,
                f.global,
                f.global_per_patch,
                f.decoder,
                f.total,
                r.bytes_trained,
                r.steps,
                r.train_s,
                r.wall_s,
            );
        }
        let _ = writeln!(
            s,
            "\nHeld-out bits/byte per file, mean over seeds (mean patch length):\n"
        );
        let _ = writeln!(s, "| scheme | {} |", self.files.join(" | "));
        let _ = writeln!(s, "|---|{}", "---|".repeat(self.files.len()));
        for r in &self.summary {
            let runs: Vec<&Run> = self.runs.iter().filter(|x| x.scheme == r.scheme).collect();
            let cells: Vec<String> = (0..self.files.len())
                .map(|f| {
                    let v: Vec<f64> = runs.iter().filter_map(|x| x.eval.per_file[f]).collect();
                    let len = runs.first().and_then(|x| x.eval.per_file_patch_len[f]);
                    match (v.is_empty(), len) {
                        (false, Some(len)) => {
                            format!("{:.3} ({len:.2})", v.iter().sum::<f64>() / v.len() as f64)
                        }
                        _ => "-".into(),
                    }
                })
                .collect();
            let _ = writeln!(s, "| {} | {} |", r.scheme, cells.join(" | "));
        }
        s
    }

    /// Held-out bits per byte against bytes trained, one line per scheme (the mean over seeds
    /// at each evaluation, up to the shortest run's last one).
    pub fn curve_svg(&self) -> String {
        let series: Vec<Series> = self
            .summary
            .iter()
            .map(|r| {
                let runs: Vec<&Run> = self.runs.iter().filter(|x| x.scheme == r.scheme).collect();
                let n = runs.iter().map(|x| x.train.curve.len()).min().unwrap_or(0);
                let points = (0..n)
                    .map(|i| {
                        let k = runs.len() as f64;
                        let x = runs
                            .iter()
                            .map(|r| r.train.curve[i].bytes_trained as f64)
                            .sum::<f64>()
                            / k;
                        let y = runs
                            .iter()
                            .map(|r| r.train.curve[i].bits_per_byte)
                            .sum::<f64>()
                            / k;
                        (x, y)
                    })
                    .collect();
                Series {
                    label: r.scheme.to_string(),
                    points,
                }
            })
            .collect();
        let title = format!(
            "Held-out bits/byte, mean patch length {:.2} ({} seed{})",
            self.target_patch_len,
            self.options.seeds,
            if self.options.seeds == 1 { "" } else { "s" }
        );
        line_chart(&title, "bytes trained", "held-out bits/byte", &series)
    }

    /// Writes `results.json`, `results.md` and `curve.svg` into `dir` (created if needed),
    /// each atomically.
    ///
    /// # Errors
    /// [`LatentError::Io`] naming the file or directory.
    pub fn write(&self, dir: &Path) -> Result<(), LatentError> {
        std::fs::create_dir_all(dir).map_err(|source| bltpatch_io::IoError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let json = serde_json::to_string_pretty(self).expect("the report serialises");
        write_atomic(&dir.join("results.json"), json.as_bytes())?;
        write_atomic(&dir.join("results.md"), self.markdown().as_bytes())?;
        write_atomic(&dir.join("curve.svg"), self.curve_svg().as_bytes())
    }
}
