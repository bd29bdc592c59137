//! `bltpatch calibrate`: a checkpoint's stored rule, recalibrated on given text.

use std::process::ExitCode;

use anyhow::{Context, Result};
use bltpatch::checkpoint::{CalibrationRecord, write_config};
use bltpatch::{CalibrationTarget, DEFAULT_CHUNK_LEN, Model, entropies_chunked_into};

use crate::args::{CalibrateArgs, CalibratedRule};
use crate::common::{display, documents, pool, read_inputs};

pub fn run(args: CalibrateArgs) -> Result<ExitCode> {
    let model = Model::load(&args.model)
        .with_context(|| format!("cannot load model `{}`", args.model.display()))?;
    let files = read_inputs(&args.files)?;
    let pool = pool(args.threads)?;
    let mut entropies = Vec::new();
    let mut names = Vec::new();
    for f in &files {
        for d in documents(f, &args.input)? {
            let mut h = Vec::with_capacity(d.bytes.len());
            pool.install(|| {
                entropies_chunked_into(&model, &d.bytes, DEFAULT_CHUNK_LEN, |p| {
                    h.extend_from_slice(p)
                })
            });
            entropies.push(h);
        }
        names.push(display(&f.path));
    }
    let refs: Vec<&[f32]> = entropies.iter().map(Vec::as_slice).collect();
    let target = match args.rule {
        CalibratedRule::Global => CalibrationTarget::Global,
        CalibratedRule::Budget => CalibrationTarget::Budget,
    };
    let record =
        CalibrationRecord::calibrate(&refs, target, args.target_patch_size, args.max_patch_len)?;
    let mut config = model.config().clone();
    config.calibration = Some(record.clone());
    write_config(&args.model, &config)?;
    println!(
        "{}: calibrated {} for a mean patch length of {} on {} bytes of {}: {:.3}",
        args.model.display(),
        serde_json::to_string(&record.rule)?,
        args.target_patch_size,
        record.calibration_bytes,
        names.join(", "),
        record.mean_patch_len
    );
    Ok(ExitCode::SUCCESS)
}
