//! `bltpatch plot`: the entropy of every byte as an SVG, with the threshold (or the budget and
//! the running sum) and the patch boundaries, and the bytes written underneath. The picture is
//! drawn by [`bltpatch::plot::entropy_svg`].

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bltpatch::{EntropyModel, Patcher, Scheme};
use bltpatch_io::OutputFile;

use crate::args::PlotArgs;
use crate::common::{display, load_model, read_inputs, resolve_rule, scheme_for};

pub fn run(args: PlotArgs) -> Result<ExitCode> {
    args.rule.spec().validate()?;
    let model = load_model(&args.model)?;
    let plan = resolve_rule(&args.rule, &model)?;
    let file = read_inputs(std::slice::from_ref(&args.file))?.remove(0);
    let doc = &file.data[..];
    let (a, b) = parse_range(args.range.as_deref(), doc.len())?;
    // Entropies of the whole prefix up to `b`: positions in the range keep their full context.
    let mut h = vec![0f32; b];
    model.entropies(doc, 0..b, &mut h);
    let scheme = scheme_for(&plan, &[&h])?;
    let lengths = Patcher::new(&model, scheme)?.lengths_from_entropies(&doc[..b], &h);
    let rule = match scheme {
        Scheme::Entropy(cfg) => Some(cfg.rule()),
        _ => None,
    };
    let title = format!("{} ({})", display(&args.file), scheme.name());
    let svg = bltpatch::plot::entropy_svg(doc, &h, &lengths, a..b, rule.as_ref(), &title);
    let mut out = OutputFile::create(Some(&args.output))?;
    out.write_all(svg.as_bytes())
        .context("cannot write the SVG")?;
    out.commit()?;
    Ok(ExitCode::SUCCESS)
}

/// `A..B` (either end may be left out) within `0..n`; default the first 120 bytes.
fn parse_range(range: Option<&str>, n: usize) -> Result<(usize, usize)> {
    let Some(r) = range else {
        return Ok((0, n.min(120)));
    };
    let Some((a, b)) = r.split_once("..") else {
        bail!("--range must look like A..B, got `{r}`")
    };
    let parse = |s: &str, default: usize| -> Result<usize> {
        if s.is_empty() {
            Ok(default)
        } else {
            s.parse()
                .with_context(|| format!("bad --range bound `{s}`"))
        }
    };
    let (a, b) = (parse(a, 0)?, parse(b, n)?.min(n));
    if a >= b {
        bail!("--range {r} is empty (the file has {n} bytes)");
    }
    if b - a > 5000 {
        bail!("--range {r} spans {} bytes; plot at most 5000", b - a);
    }
    Ok((a, b))
}
