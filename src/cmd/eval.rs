//! `bltpatch eval`: how well the model predicts a file, and how evenly its patches carry
//! information next to the static, space and BPE baselines at the same mean patch length
//! (the measures live in [`bltpatch::quality`]).

use std::process::ExitCode;

use anyhow::{Result, bail};
use bltpatch::quality::{Comparison, Summary, compare};
use bltpatch::{
    DEFAULT_CHUNK_LEN, EntropyModel, Model, Patcher, Scheme, entropies_chunked_into,
    surprisals_chunked_into,
};
use serde_json::{Value, json};

use crate::args::EvalArgs;
use crate::common::{display, documents, load_model, pool, read_inputs, resolve_rule, scheme_for};
use crate::progress::{Counted, Progress};

pub fn run(args: EvalArgs) -> Result<ExitCode> {
    let mut spec = args.rule.spec();
    if args.at_bpe_mean && spec.target_patch_size.is_some() {
        return Err(bltpatch::Error::Usage(
            "--at-bpe-mean sets the target patch size: drop --target-patch-size".into(),
        )
        .into());
    }
    spec.validate()?;
    let model = load_model(&args.model)?;
    let reference = args
        .reference_model
        .as_ref()
        .map(|dir| {
            load_model(&crate::args::ModelArgs {
                model: Some(dir.clone()),
            })
        })
        .transpose()?;
    // The rule must resolve before any work; --at-bpe-mean resolves again per file, with its
    // target.
    if args.at_bpe_mean {
        let mut probe = spec.clone();
        probe.target_patch_size = Some(4.0);
        probe.resolve(model.calibration())?;
    } else {
        resolve_rule(&args.rule, &model)?;
    }
    let files = read_inputs(&args.files)?;
    let pool = pool(args.threads)?;
    for f in &files {
        let docs = documents(f, &args.input)?;
        let doc_bytes: Vec<&[u8]> = docs.iter().map(|d| &d.bytes[..]).collect();
        let bytes: usize = doc_bytes.iter().map(|d| d.len()).sum();
        // every byte is scored twice by the model, twice more with a reference model
        let passes = if reference.is_some() { 3 } else { 2 };
        let progress = Progress::new("eval", passes * bytes as u64);
        let counted = Counted {
            model: &model,
            progress: &progress,
        };
        let (entropies, surprisals): (Vec<Vec<f32>>, Vec<Vec<f32>>) = pool.install(|| {
            doc_bytes
                .iter()
                .map(|d| (chunked(&counted, d, true), chunked(&counted, d, false)))
                .unzip()
        });
        let information: Option<Vec<Vec<f32>>> = reference.as_ref().map(|r| {
            let counted = Counted {
                model: r,
                progress: &progress,
            };
            pool.install(|| {
                doc_bytes
                    .iter()
                    .map(|d| chunked(&counted, d, false))
                    .collect()
            })
        });
        progress.finish();

        let plan = if args.at_bpe_mean {
            let patches: usize = doc_bytes
                .iter()
                .map(|d| bltpatch::bpe::bpe_lengths(d).len())
                .sum();
            if patches == 0 {
                bail!("{}: no text to compare with BPE tokens", display(&f.path));
            }
            spec.target_patch_size = Some(bytes as f64 / patches as f64);
            spec.resolve(model.calibration())?
        } else {
            resolve_rule(&args.rule, &model)?
        };
        let refs: Vec<&[f32]> = entropies.iter().map(Vec::as_slice).collect();
        let scheme = scheme_for(&plan, &refs)?;
        let patcher = Patcher::new(&model, scheme)?;
        let lengths: Vec<Vec<usize>> = doc_bytes
            .iter()
            .zip(&entropies)
            .map(|(d, h)| patcher.lengths_from_entropies(d, h))
            .collect();
        let info = information.as_ref().unwrap_or(&surprisals);
        let comparison = pool.install(|| compare(&doc_bytes, &lengths, info));
        let report = report(&ReportInput {
            file: display(&f.path),
            documents: docs.len(),
            bytes,
            model: &model,
            scheme,
            surprisals: &surprisals,
            information: information.as_deref(),
            reference: args
                .reference_model
                .as_ref()
                .map(|p| p.display().to_string()),
            comparison: &comparison,
        });
        if args.json {
            println!("{report}");
        } else {
            print_table(&report);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Entropies (or surprisals) of every byte of a document, in parallel chunks (each chunk reads
/// its context before its start, so the values are those of the whole document).
fn chunked(model: &dyn EntropyModel, doc: &[u8], entropy: bool) -> Vec<f32> {
    let mut out = Vec::with_capacity(doc.len());
    let emit = |part: &[f32]| out.extend_from_slice(part);
    if entropy {
        entropies_chunked_into(model, doc, DEFAULT_CHUNK_LEN, emit);
    } else {
        surprisals_chunked_into(model, doc, DEFAULT_CHUNK_LEN, emit);
    }
    out
}

/// What one file's report is made of.
struct ReportInput<'a> {
    file: String,
    documents: usize,
    bytes: usize,
    model: &'a Model,
    scheme: Scheme,
    surprisals: &'a [Vec<f32>],
    information: Option<&'a [Vec<f32>]>,
    reference: Option<String>,
    comparison: &'a Comparison,
}

fn bits_per_byte(surprisals: &[Vec<f32>], bytes: usize) -> f64 {
    let nats: f64 = surprisals.iter().flatten().map(|&s| s as f64).sum();
    if bytes > 0 {
        nats / std::f64::consts::LN_2 / bytes as f64
    } else {
        0.0
    }
}

fn report(r: &ReportInput) -> Value {
    let c = r.comparison;
    let (rule_params, max_patch_len) = match r.scheme {
        Scheme::Entropy(cfg) => (
            serde_json::to_value(cfg.rule()).unwrap_or(Value::Null),
            cfg.max_patch_len(),
        ),
        Scheme::Static { size } => (json!({ "rule": "static", "size": size }), None),
        Scheme::Space { max_patch_len } => (json!({ "rule": "space" }), max_patch_len),
        Scheme::Bpe => (json!({ "rule": "bpe" }), None),
    };
    let mut v = json!({
        "file": r.file,
        "documents": r.documents,
        "bytes": r.bytes,
        "bits_per_byte": bits_per_byte(r.surprisals, r.bytes),
        "context": r.model.context(),
        "rule": r.scheme.name(),
        "rule_parameters": rule_params,
        "max_patch_len": max_patch_len,
        "information_model": r.reference.clone().unwrap_or_else(|| "self".into()),
        "reference_bits_per_byte": r.information.map(|i| bits_per_byte(i, r.bytes)),
    });
    let obj = v.as_object_mut().expect("an object");
    if let Value::Object(m) = serde_json::to_value(&c.scheme).unwrap_or_default() {
        obj.extend(m);
    }
    let with = |s: &Summary, extra: Value| {
        let mut v = serde_json::to_value(s).unwrap_or_default();
        if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
            m.extend(e);
        }
        v
    };
    obj.insert(
        "static".into(),
        with(&c.fixed, json!({ "patch_size": c.static_size })),
    );
    obj.insert(
        "space".into(),
        with(&c.space, json!({ "max_patch_len": c.space_max_patch_len })),
    );
    obj.insert(
        "bpe".into(),
        with(&c.bpe, json!({ "tokenizer": "cl100k_base" })),
    );
    v
}

fn print_table(r: &Value) {
    println!(
        "{}: {} bytes, {} documents",
        r["file"].as_str().unwrap_or(""),
        r["bytes"],
        r["documents"]
    );
    println!(
        "  model: {:.4} bits/byte (context {} bytes), rule {}",
        r["bits_per_byte"].as_f64().unwrap_or(0.0),
        r["context"],
        r["rule_parameters"]
    );
    match r["reference_bits_per_byte"].as_f64() {
        Some(b) => println!(
            "  information per patch measured by {} ({b:.4} bits/byte)",
            r["information_model"].as_str().unwrap_or("")
        ),
        None => println!(
            "  information per patch measured by the model itself (--reference-model for an independent measure)"
        ),
    }
    println!(
        "  {:<22} {:>9} {:>6} {:>6} {:>4} {:>7} {:>9} {:>8} {:>8}",
        "patching",
        "patches",
        "mean",
        "median",
        "p90",
        "longest",
        "bits/ptc",
        "info CV",
        "< 2 bits"
    );
    let static_name = format!(
        "static ({:.3})",
        r["static"]["patch_size"].as_f64().unwrap_or(0.0)
    );
    let space_name = match r["space"]["max_patch_len"].as_u64() {
        Some(m) => format!("space (max {m})"),
        None => "space".to_string(),
    };
    let rule = r["rule"].as_str().unwrap_or("").to_string();
    for (name, p) in [
        (rule, r),
        (static_name, &r["static"]),
        (space_name, &r["space"]),
        ("bpe (cl100k)".to_string(), &r["bpe"]),
    ] {
        println!(
            "  {:<22} {:>9} {:>6.2} {:>6} {:>4} {:>7} {:>9.2} {:>8.3} {:>7.1}%",
            name,
            p["patches"].as_u64().unwrap_or(0),
            p["mean_patch_len"].as_f64().unwrap_or(0.0),
            p["median_patch_len"].as_u64().unwrap_or(0),
            p["p90_patch_len"].as_u64().unwrap_or(0),
            p["longest_patch"].as_u64().unwrap_or(0),
            p["mean_patch_bits"].as_f64().unwrap_or(0.0),
            p["patch_information_cv"].as_f64().unwrap_or(0.0),
            100.0 * p["share_under_2_bits"].as_f64().unwrap_or(0.0),
        );
    }
}
