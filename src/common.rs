//! Pieces shared by the subcommands: loading the model, resolving the rule flags, reading input
//! documents, thread pools.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bltpatch::{Model, Plan, Rule, Scheme};
use bltpatch_io::{Input, read_input};

use crate::args::{InputArgs, ModelArgs, RuleArgs};

/// Loads `-m DIR`, or the embedded default model.
pub fn load_model(args: &ModelArgs) -> Result<Model> {
    match &args.model {
        Some(dir) => {
            Model::load(dir).with_context(|| format!("cannot load model `{}`", dir.display()))
        }
        None => Ok(Model::default_model()),
    }
}

/// Resolves the rule flags against the checkpoint's calibration (a bad combination is a usage
/// error: exit code 2).
pub fn resolve_rule(args: &RuleArgs, model: &Model) -> Result<Plan> {
    Ok(args.spec().resolve(model.calibration())?)
}

/// The scheme for documents with these entropies: fixed, or calibrated on them (and reported
/// on stderr).
pub fn scheme_for(plan: &Plan, entropies: &[&[f32]]) -> Result<Scheme> {
    let (scheme, calibration) = plan.scheme_for(entropies)?;
    if let (Some(c), Scheme::Entropy(cfg)) = (calibration, scheme) {
        eprintln!(
            "calibrated {} = {} on {} bytes: mean patch length {:.3}",
            parameter_name(&cfg.rule()),
            c.value,
            c.bytes,
            c.mean_patch_len
        );
    }
    Ok(scheme)
}

/// What calibration sets for a rule.
fn parameter_name(rule: &Rule) -> &'static str {
    match rule {
        Rule::Relative { .. } => "relative threshold",
        Rule::Budget { .. } => "budget",
        Rule::Global { .. } | Rule::Combined { .. } => "threshold",
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
