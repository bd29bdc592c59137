//! `bltpatch segment`.

use std::process::ExitCode;

use anyhow::Result;
use bltpatch::{
    DEFAULT_CHUNK_LEN, EntropyModel, Model, PatchConfig, StreamingDecoder, entropies_chunked_into,
    lengths_from_entropies,
};
use bltpatch_io::{Format, writer};
use rayon::prelude::*;

use crate::args::{OutputFormat, SegmentArgs};
use crate::common::{RulePlan, documents, load_model, pool, read_inputs, require_output};

/// Documents segmented at once when an input holds many (JSON Lines).
const DOCS_PER_GROUP: usize = 256;

pub fn run(args: SegmentArgs) -> Result<ExitCode> {
    let format = match args.format {
        OutputFormat::Text => Format::Text,
        OutputFormat::Lengths => Format::Lengths,
        OutputFormat::Jsonl => Format::Jsonl,
        OutputFormat::Npy => Format::Npy,
    };
    if format == Format::Npy {
        require_output(&args.output, "--format npy")?;
    }
    let model = load_model(&args.model)?;
    let plan = RulePlan::resolve(&args.rule, &model)?;
    let files = read_inputs(&args.files)?;
    let pool = pool(args.threads)?;
    let colour =
        format == Format::Text && args.output.is_none() && bltpatch_io::is_terminal_stdout();
    let keep_entropies = format == Format::Text;

    let mut docs = Vec::new();
    for f in &files {
        docs.extend(documents(f, &args.input)?);
    }
    let mut out = writer(format, args.output.as_deref(), colour)?;

    // Calibration on the input needs every entropy first; a fixed rule goes document by document.
    let calibrating = matches!(plan, RulePlan::Calibrate { .. });
    let mut all_h: Vec<Vec<f32>> = Vec::new();
    if calibrating {
        all_h = pool.install(|| {
            docs.iter()
                .map(|d| entropies(&model, &d.bytes, args.streaming))
                .collect()
        });
    }
    let refs: Vec<&[f32]> = all_h.iter().map(Vec::as_slice).collect();
    let cfg = plan.config_for(&refs)?;

    for (g, group) in docs.chunks(DOCS_PER_GROUP).enumerate() {
        let results: Vec<(Vec<usize>, Option<Vec<f32>>)> = pool.install(|| {
            let one = |(i, d): (usize, &crate::common::Document)| {
                if args.streaming {
                    let (lengths, h) = streaming_segment(&model, &d.bytes, &cfg);
                    return (lengths, keep_entropies.then_some(h));
                }
                let h = match calibrating {
                    true => std::borrow::Cow::Borrowed(&all_h[g * DOCS_PER_GROUP + i]),
                    false => std::borrow::Cow::Owned(entropies(&model, &d.bytes, false)),
                };
                (
                    lengths_from_entropies(&h, &cfg),
                    keep_entropies.then(|| h.into_owned()),
                )
            };
            if group.len() == 1 {
                vec![one((0, &group[0]))]
            } else {
                group.par_iter().enumerate().map(one).collect()
            }
        });
        for (d, (lengths, h)) in group.iter().zip(&results) {
            out.write_document(&d.name, &d.bytes, lengths, h.as_deref())?;
        }
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

/// `H[0..n)` of a document: parallel chunks on the current pool, or the streaming decoder.
fn entropies(model: &Model, doc: &[u8], streaming: bool) -> Vec<f32> {
    if streaming {
        let mut s = model.stream();
        return doc
            .iter()
            .map(|&b| {
                let h = s.entropy();
                s.push(b);
                h
            })
            .collect();
    }
    let mut h = Vec::with_capacity(doc.len());
    entropies_chunked_into(model, doc, DEFAULT_CHUNK_LEN, |part| {
        h.extend_from_slice(part)
    });
    h
}

/// Patch lengths decided byte by byte by the generation-time decoder, with the entropies it saw.
fn streaming_segment(model: &Model, doc: &[u8], cfg: &PatchConfig) -> (Vec<usize>, Vec<f32>) {
    let mut decoder = StreamingDecoder::new(model, *cfg);
    let mut h = Vec::with_capacity(doc.len());
    decoder.push_slice(doc, |d| h.push(d.entropy));
    (decoder.finish(), h)
}
