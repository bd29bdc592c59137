//! Pieces shared by the subcommands: loading the model, resolving the rule flags, reading input
//! documents, thread pools.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bltpatch::{CalibrationTarget, Model, PatchConfig, Rule, calibrate};
use bltpatch_io::{Input, read_input};

use crate::args::{InputArgs, ModelArgs, RuleArgs, RuleKind};

/// Loads `-m DIR`, or the embedded default model.
pub fn load_model(args: &ModelArgs) -> Result<Model> {
    match &args.model {
        Some(dir) => {
            Model::load(dir).with_context(|| format!("cannot load model `{}`", dir.display()))
        }
        None => Ok(Model::default_model()),
    }
}

/// How boundaries will be decided, once the flags and the checkpoint are combined.
#[derive(Clone, Copy, Debug)]
pub enum RulePlan {
    /// A fixed configuration.
    Fixed(PatchConfig),
    /// Calibrate on the input itself, then segment.
    Calibrate {
        /// Which threshold to calibrate.
        target: CalibrationTarget,
        /// Wanted mean patch length.
        size: f64,
        /// Maximum patch length.
        max_patch_len: Option<usize>,
    },
}

impl RulePlan {
    /// Resolves the rule flags against the checkpoint's calibration.
    pub fn resolve(args: &RuleArgs, model: &Model) -> Result<Self> {
        let calibrated = model.patch_config();
        let cal_rule = calibrated.map(|c| c.rule());
        let max_patch_len = args
            .max_patch_len
            .or(calibrated.and_then(|c| c.max_patch_len()));
        let kind = args
            .rule
            .unwrap_or(match (args.threshold, args.relative_threshold) {
                (None, Some(_)) => RuleKind::Relative,
                (Some(_), Some(_)) => RuleKind::Combined,
                _ => match cal_rule {
                    Some(Rule::Relative { .. }) => RuleKind::Relative,
                    Some(Rule::Combined { .. }) => RuleKind::Combined,
                    _ => RuleKind::Global,
                },
            });
        let cal_threshold = match cal_rule {
            Some(Rule::Global { threshold } | Rule::Combined { threshold, .. }) => Some(threshold),
            _ => None,
        };
        let cal_relative = match cal_rule {
            Some(
                Rule::Relative { relative_threshold }
                | Rule::Combined {
                    relative_threshold, ..
                },
            ) => Some(relative_threshold),
            _ => None,
        };
        let relative = args.relative_threshold.or(cal_relative);
        if let Some(size) = args.target_patch_size {
            let target = match kind {
                RuleKind::Global => CalibrationTarget::Global,
                RuleKind::Relative => CalibrationTarget::Relative,
                RuleKind::Combined => CalibrationTarget::Combined {
                    relative_threshold: relative.context(
                        "--rule combined with --target-patch-size needs --relative-threshold",
                    )?,
                },
            };
            return Ok(RulePlan::Calibrate {
                target,
                size,
                max_patch_len,
            });
        }
        let threshold = args.threshold.or(cal_threshold);
        let missing = |what: &str| {
            anyhow::anyhow!(
                "the model has no calibrated {what}: pass --{what} or --target-patch-size"
            )
        };
        let rule = match kind {
            RuleKind::Global => Rule::Global {
                threshold: threshold.ok_or_else(|| missing("threshold"))?,
            },
            RuleKind::Relative => Rule::Relative {
                relative_threshold: relative.ok_or_else(|| missing("relative-threshold"))?,
            },
            RuleKind::Combined => Rule::Combined {
                threshold: threshold.ok_or_else(|| missing("threshold"))?,
                relative_threshold: relative.ok_or_else(|| missing("relative-threshold"))?,
            },
        };
        Ok(RulePlan::Fixed(
            PatchConfig::new(rule)?.with_max_patch_len(max_patch_len)?,
        ))
    }

    /// The configuration for documents with these entropies: fixed, or calibrated on them (and
    /// reported on stderr).
    pub fn config_for(&self, entropies: &[&[f32]]) -> Result<PatchConfig> {
        match *self {
            RulePlan::Fixed(cfg) => Ok(cfg),
            RulePlan::Calibrate {
                target,
                size,
                max_patch_len,
            } => {
                if entropies.iter().all(|h| h.is_empty()) {
                    // Nothing to calibrate on: any threshold gives no patches.
                    return Ok(PatchConfig::new(Rule::Global { threshold: 0.0 })?);
                }
                let c = calibrate(entropies, target, size, max_patch_len)?;
                eprintln!(
                    "calibrated {} = {} on {} bytes: mean patch length {:.3}",
                    if target == CalibrationTarget::Relative {
                        "relative threshold"
                    } else {
                        "threshold"
                    },
                    c.value,
                    c.bytes,
                    c.mean_patch_len
                );
                Ok(c.config)
            }
        }
    }
}

/// One input file, read (memory-mapped where possible).
pub struct InputFile {
    /// The path as given.
    pub path: PathBuf,
    /// Its bytes.
    pub data: Input,
}

/// Reads every input file before any work starts, so a bad path fails early.
pub fn read_inputs(paths: &[PathBuf]) -> Result<Vec<InputFile>> {
    paths
        .iter()
        .map(|p| {
            Ok(InputFile {
                path: p.clone(),
                data: read_input(p)?,
            })
        })
        .collect()
}

/// One document: a whole file, or one JSON Lines record.
pub struct Document<'a> {
    /// Display name (`file`, or `file#N` for the N-th JSON Lines document).
    pub name: String,
    /// The document's bytes.
    pub bytes: Cow<'a, [u8]>,
}

/// The documents of a file, as `--jsonl-field` says, all at once.
pub fn documents<'a>(file: &'a InputFile, input: &'a InputArgs) -> Result<Vec<Document<'a>>> {
    document_iter(file, input).collect()
}

/// The documents of a file, as `--jsonl-field` says, one at a time: a JSON Lines corpus is
/// decoded as it is consumed, so it is never held in memory as documents all at once. A bad line
/// is an error when it is reached.
pub fn document_iter<'a>(
    file: &'a InputFile,
    input: &'a InputArgs,
) -> Box<dyn Iterator<Item = Result<Document<'a>>> + 'a> {
    let name = display(&file.path);
    match &input.jsonl_field {
        None => Box::new(std::iter::once(Ok(Document {
            name,
            bytes: Cow::Borrowed(&file.data[..]),
        }))),
        Some(field) => Box::new(
            bltpatch_io::jsonl_documents(&file.data, field)
                .enumerate()
                .map(move |(i, d)| {
                    let bytes = d.with_context(|| format!("in `{name}`"))?;
                    Ok(Document {
                        name: format!("{name}#{}", i + 1),
                        bytes: Cow::Owned(bytes),
                    })
                }),
        ),
    }
}

/// How a path is shown to users.
pub fn display(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

/// A rayon pool with `threads` workers (default: one per core).
pub fn pool(threads: Option<usize>) -> Result<rayon::ThreadPool> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        b = b.num_threads(t);
    }
    b.build().context("cannot start worker threads")
}

/// Fails when `--format npy` is asked to write to stdout.
pub fn require_output(out: &Option<PathBuf>, what: &str) -> Result<()> {
    if out.is_none() {
        bail!("{what} needs -o/--output");
    }
    Ok(())
}
