//! `bltpatch adapt`: a checkpoint's in-document adaptation record, written or removed.

use std::process::ExitCode;

use anyhow::{Context, Result};
use bltpatch::Model;
use bltpatch::adapt::AdaptConfig;
use bltpatch::checkpoint::write_config;

use crate::args::AdaptArgs;

pub fn run(args: AdaptArgs) -> Result<ExitCode> {
    let model = Model::load(&args.model)
        .with_context(|| format!("cannot load model `{}`", args.model.display()))?;
    let mut config = model.config().clone();
    config.adapt = (!args.off).then(AdaptConfig::default);
    write_config(&args.model, &config)?;
    match &config.adapt {
        Some(a) => println!(
            "{}: surprisals adapt to each document: {}",
            args.model.display(),
            serde_json::to_string(a)?
        ),
        None => println!("{}: no adaptation", args.model.display()),
    }
    Ok(ExitCode::SUCCESS)
}
