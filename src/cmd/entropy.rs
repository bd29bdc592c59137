//! `bltpatch entropy`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bltpatch::{DEFAULT_CHUNK_LEN, entropies_chunked_into};
use bltpatch_io::{NpyF32Writer, OutputFile, write_entropy_tsv};

use crate::args::{EntropyArgs, EntropyFormat};
use crate::common::{load_model, pool, read_inputs};
use crate::progress::{Counted, Progress};

pub fn run(args: EntropyArgs) -> Result<ExitCode> {
    let model = load_model(&args.model)?;
    let file = read_inputs(std::slice::from_ref(&args.file))?.remove(0);
    let pool = pool(args.threads)?;
    let doc = &file.data[..];
    let progress = Progress::new("entropy", doc.len() as u64);
    let model = Counted {
        model: &model,
        progress: &progress,
    };
    let mut released = 0;
    match args.format {
        EntropyFormat::Tsv => {
            let mut out = OutputFile::create(args.output.as_deref())?;
            let mut offset = 0;
            let mut result = Ok(());
            pool.install(|| {
                entropies_chunked_into(&model, doc, DEFAULT_CHUNK_LEN, |h| {
                    if result.is_ok() {
                        result =
                            write_entropy_tsv(&mut out, offset, &doc[offset..offset + h.len()], h);
                    }
                    offset += h.len();
                })
            });
            result?;
            out.flush().context("cannot write output")?;
            out.commit()?;
        }
        EntropyFormat::Npy => {
            let mut w = NpyF32Writer::create(args.output.as_deref())?;
            let mut offset = 0;
            let mut result = Ok(());
            pool.install(|| {
                entropies_chunked_into(&model, doc, DEFAULT_CHUNK_LEN, |h| {
                    if result.is_ok() {
                        result = w.write(h);
                    }
                    offset += h.len();
                    release_behind(&file.data, offset, &mut released);
                })
            });
            result?;
            w.finish()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Lets the kernel drop the mapped pages of the input that are done with, so memory stays
/// bounded on inputs larger than RAM (the model reads at most its context behind `done`).
fn release_behind(input: &bltpatch_io::Input, done: usize, released: &mut usize) {
    const STEP: usize = 8 << 20;
    let keep = done.saturating_sub(1 << 20);
    if keep >= *released + STEP {
        input.release(*released..keep);
        *released = keep;
    }
}
