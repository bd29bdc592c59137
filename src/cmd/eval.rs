//! `bltpatch eval`: how well the model predicts a file, and how its patches compare with the
//! static and space baselines at the same mean patch length.

use std::process::ExitCode;

use anyhow::Result;
use bltpatch::{EntropyModel, lengths_from_entropies, space_lengths, static_lengths};
use rayon::prelude::*;
use serde_json::{Value, json};

use crate::args::EvalArgs;
use crate::common::{RulePlan, display, documents, load_model, pool, read_inputs};
use crate::progress::{Counted, Progress};

pub fn run(args: EvalArgs) -> Result<ExitCode> {
    let model = load_model(&args.model)?;
    let plan = RulePlan::resolve(&args.rule, &model)?;
    let files = read_inputs(&args.files)?;
    let pool = pool(args.threads)?;
    for f in &files {
        let docs = documents(f, &args.input)?;
        let bytes: usize = docs.iter().map(|d| d.bytes.len()).sum();
        // every byte is scored twice: entropy and surprisal
        let progress = Progress::new("eval", 2 * bytes as u64);
        let counted = Counted {
            model: &model,
            progress: &progress,
        };
        let scored: Vec<(Vec<f32>, Vec<f32>)> =
            pool.install(|| docs.iter().map(|d| score(&counted, &d.bytes)).collect());
        progress.finish();
        let refs: Vec<&[f32]> = scored.iter().map(|(h, _)| h.as_slice()).collect();
        let cfg = plan.config_for(&refs)?;
        let bits: f64 = scored
            .iter()
            .flat_map(|(_, s)| s.iter())
            .map(|&s| s as f64 / std::f64::consts::LN_2)
            .sum();

        let mut entropy = Patching::default();
        for ((h, s), d) in scored.iter().zip(&docs) {
            entropy.add(&lengths_from_entropies(h, &cfg), s);
            debug_assert_eq!(h.len(), d.bytes.len());
        }
        let mean = entropy.mean_len();
        // Static: the integer size nearest the entropy patching's mean.
        let k = (mean.round() as usize).max(1);
        let mut fixed = Patching::default();
        for ((_, s), d) in scored.iter().zip(&docs) {
            fixed.add(&static_lengths(d.bytes.len(), k)?, s);
        }
        // Space: as is, or with the maximum patch length that brings its mean nearest.
        let space_with = |m: Option<usize>| -> Result<Patching> {
            let mut p = Patching::default();
            for ((_, s), d) in scored.iter().zip(&docs) {
                p.add(&space_lengths(&d.bytes, m)?, s);
            }
            Ok(p)
        };
        let mut space = space_with(None)?;
        let mut space_max = None;
        if bytes > 0 && space.mean_len() > mean {
            let mut best = (f64::INFINITY, None);
            for m in 1..=64 {
                let err = (space_with(Some(m))?.mean_len() - mean).abs();
                if err < best.0 {
                    best = (err, Some(m));
                }
            }
            space_max = best.1;
            space = space_with(space_max)?;
        }

        let report = json!({
            "file": display(&f.path),
            "documents": docs.len(),
            "bytes": bytes,
            "bits_per_byte": if bytes > 0 { bits / bytes as f64 } else { 0.0 },
            "context": model.context(),
            "rule": format!("{:?}", cfg.rule()),
            "max_patch_len": cfg.max_patch_len(),
            "patches": entropy.lengths.len(),
            "mean_patch_len": mean,
            "median_patch_len": entropy.quantile(0.5),
            "p90_patch_len": entropy.quantile(0.9),
            "longest_patch": entropy.lengths.iter().max().copied().unwrap_or(0),
            "patch_information_cv": entropy.information_cv(),
            "static": fixed.summary(json!({ "patch_size": k })),
            "space": space.summary(json!({ "max_patch_len": space_max })),
        });
        if args.json {
            println!("{report}");
        } else {
            print_table(&report);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Entropies and surprisals (nats) of every byte of a document, in parallel chunks (each chunk
/// reads its context before its start, so the values are those of the whole document).
fn score(model: &impl EntropyModel, doc: &[u8]) -> (Vec<f32>, Vec<f32>) {
    let mut h = vec![0f32; doc.len()];
    let mut s = vec![0f32; doc.len()];
    bltpatch::entropies_chunked_into(model, doc, bltpatch::DEFAULT_CHUNK_LEN, {
        let mut at = 0;
        let h = &mut h;
        move |part| {
            h[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
    });
    let chunk = bltpatch::DEFAULT_CHUNK_LEN;
    s.par_chunks_mut(chunk).enumerate().for_each(|(k, out)| {
        let start = k * chunk;
        model.surprisals(doc, start..start + out.len(), out);
    });
    (h, s)
}

/// Patch lengths of one scheme over a file, with each patch's information in bits.
#[derive(Default)]
struct Patching {
    lengths: Vec<usize>,
    information: Vec<f64>,
}

impl Patching {
    fn add(&mut self, lengths: &[usize], surprisal: &[f32]) {
        let mut at = 0;
        for &l in lengths {
            let nats: f64 = surprisal[at..at + l].iter().map(|&x| x as f64).sum();
            self.information.push(nats / std::f64::consts::LN_2);
            at += l;
        }
        self.lengths.extend_from_slice(lengths);
    }

    fn mean_len(&self) -> f64 {
        if self.lengths.is_empty() {
            return 0.0;
        }
        self.lengths.iter().sum::<usize>() as f64 / self.lengths.len() as f64
    }

    fn quantile(&self, q: f64) -> usize {
        if self.lengths.is_empty() {
            return 0;
        }
        let mut sorted = self.lengths.clone();
        sorted.sort_unstable();
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }

    /// Coefficient of variation (std / mean) of the information per patch.
    fn information_cv(&self) -> f64 {
        let n = self.information.len() as f64;
        if n == 0.0 {
            return 0.0;
        }
        let mean = self.information.iter().sum::<f64>() / n;
        let var = self
            .information
            .iter()
            .map(|x| (x - mean).powi(2))
            .sum::<f64>()
            / n;
        if mean > 0.0 { var.sqrt() / mean } else { 0.0 }
    }

    fn summary(&self, extra: Value) -> Value {
        let mut v = json!({
            "patches": self.lengths.len(),
            "mean_patch_len": self.mean_len(),
            "median_patch_len": self.quantile(0.5),
            "p90_patch_len": self.quantile(0.9),
            "longest_patch": self.lengths.iter().max().copied().unwrap_or(0),
            "patch_information_cv": self.information_cv(),
        });
        if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
            m.extend(e);
        }
        v
    }
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
        r["rule"].as_str().unwrap_or("")
    );
    println!(
        "  {:<26} {:>9} {:>6} {:>7} {:>5} {:>8} {:>16}",
        "patching", "patches", "mean", "median", "p90", "longest", "info/patch CV"
    );
    let space_name = match r["space"]["max_patch_len"].as_u64() {
        Some(m) => format!("space (max {m})"),
        None => "space".to_string(),
    };
    for (name, p) in [
        ("entropy".to_string(), r),
        (
            format!("static ({})", r["static"]["patch_size"]),
            &r["static"],
        ),
        (space_name, &r["space"]),
    ] {
        println!(
            "  {:<26} {:>9} {:>6.2} {:>7} {:>5} {:>8} {:>16.3}",
            name,
            p["patches"].as_u64().unwrap_or(0),
            p["mean_patch_len"].as_f64().unwrap_or(0.0),
            p["median_patch_len"].as_u64().unwrap_or(0),
            p["p90_patch_len"].as_u64().unwrap_or(0),
            p["longest_patch"].as_u64().unwrap_or(0),
            p["patch_information_cv"].as_f64().unwrap_or(0.0)
        );
    }
}
