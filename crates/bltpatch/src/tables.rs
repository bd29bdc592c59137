//! Rewriting the tables of a `hashmlp` checkpoint: more rows for more training
//! ([`widen_checkpoint`]), or 8-bit rows for a smaller file ([`quantize_checkpoint`]).
//!
//! Both read a checkpoint directory and write another (or the same one, replaced atomically);
//! `config.json` keeps its training summary, calibration and adaptation records, with the new
//! architecture.

use std::path::Path;

use bltpatch_checkpoint::{Config, Weights, read_config, write_checkpoint};
use bltpatch_engine::hashmlp::{self, HashMlpModel};

use crate::Error;

/// Reads the `hashmlp` checkpoint `src`, applies `change` and writes the result to `dst`.
fn rewrite(
    src: &Path,
    dst: &Path,
    what: &str,
    change: impl FnOnce(&HashMlpModel) -> Result<HashMlpModel, Error>,
) -> Result<Config, Error> {
    let config = read_config(src)?;
    if config.arch != hashmlp::ARCH {
        return Err(Error::Usage(format!(
            "only hashmlp checkpoints have tables to {what}; {} is {}",
            src.display(),
            config.arch
        )));
    }
    // The weights are read once the architecture is known to be one with tables.
    let weights = Weights::open(src)?;
    let model = change(&HashMlpModel::from_checkpoint(&config, &weights)?)?;
    let mut out = config;
    out.architecture = model.checkpoint_config().architecture;
    write_checkpoint(dst, &out, &model.to_checkpoint_tensors())?;
    Ok(out)
}

/// Writes to `dst` the `hashmlp` checkpoint `src` with `factor` (a power of two `>= 2`) times
/// as many rows in every hashed table of whole bytes ([`HashMlpModel::widened`]): the same
/// function, bit for bit (calibration and adaptation stay valid), from which
/// `bltpatch train --init` trains on with fewer hash collisions. Returns the new config.
///
/// # Errors
/// An unreadable checkpoint, another architecture, or a factor or table size that
/// [`HashMlpModel::widened`] refuses; a failed write.
pub fn widen_checkpoint(src: &Path, dst: &Path, factor: usize) -> Result<Config, Error> {
    rewrite(src, dst, "widen", |m| Ok(m.widened(factor)?))
}

/// Writes to `dst` the `hashmlp` checkpoint `src` with its tables as row-scaled 8-bit
/// integers ([`HashMlpModel::quantized`]): half the bytes of `F16` tables. Entropies and
/// bits/byte move slightly, so the calibration it keeps should be redone (`bltpatch
/// calibrate`). Returns the new config.
///
/// # Errors
/// An unreadable checkpoint, another architecture, a table that cannot be quantised; a failed
/// write.
pub fn quantize_checkpoint(src: &Path, dst: &Path) -> Result<Config, Error> {
    rewrite(src, dst, "quantize", |m| Ok(m.quantized()?))
}
