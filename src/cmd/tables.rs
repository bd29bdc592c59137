//! `bltpatch widen` and `bltpatch quantize`: a hashmlp checkpoint's tables rewritten.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bltpatch::checkpoint::{Config, WEIGHTS_FILE};

use crate::args::{QuantizeArgs, WidenArgs};

pub fn widen(args: WidenArgs) -> Result<ExitCode> {
    let config = bltpatch::widen_checkpoint(&args.model, &args.output, args.factor)
        .with_context(|| format!("cannot widen `{}`", args.model.display()))?;
    report(&args.output, &config)?;
    Ok(ExitCode::SUCCESS)
}

pub fn quantize(args: QuantizeArgs) -> Result<ExitCode> {
    let config = bltpatch::quantize_checkpoint(&args.model, &args.output)
        .with_context(|| format!("cannot quantize `{}`", args.model.display()))?;
    report(&args.output, &config)?;
    if config.calibration.is_some() {
        println!(
            "entropies moved slightly: calibrate again (bltpatch calibrate -m {} FILE...)",
            args.output.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One line: the directory written, the rows of its tables and the size of its weights.
fn report(dir: &Path, config: &Config) -> Result<()> {
    let bytes = std::fs::metadata(dir.join(WEIGHTS_FILE))?.len();
    println!(
        "{}: table rows {}, {bytes} bytes of weights",
        dir.display(),
        config.architecture["rows"]
    );
    Ok(())
}
