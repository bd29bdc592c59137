//! `bltpatch plot`: the entropy of every byte as an SVG, with the threshold and the patch
//! boundaries, and the bytes written underneath.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bltpatch::{EntropyModel, Rule, lengths_from_entropies, patch_starts};
use bltpatch_io::OutputFile;

use crate::args::PlotArgs;
use crate::common::{RulePlan, display, load_model, read_inputs};

/// Horizontal room per byte, in SVG units.
const STEP: f64 = 13.0;
const PLOT_H: f64 = 220.0;
const TOP: f64 = 40.0;
const LEFT: f64 = 50.0;

pub fn run(args: PlotArgs) -> Result<ExitCode> {
    let model = load_model(&args.model)?;
    let plan = RulePlan::resolve(&args.rule, &model)?;
    let file = read_inputs(std::slice::from_ref(&args.file))?.remove(0);
    let doc = &file.data[..];
    let (a, b) = parse_range(args.range.as_deref(), doc.len())?;
    // Entropies of the whole prefix up to `b`: positions in the range keep their full context.
    let mut h = vec![0f32; b];
    model.entropies(doc, 0..b, &mut h);
    let cfg = plan.config_for(&[&h])?;
    let starts: Vec<usize> = patch_starts(&lengths_from_entropies(&h, &cfg));
    let h = &h[a..];
    let bytes = &doc[a..b];
    let starts: Vec<usize> = starts
        .into_iter()
        .filter(|&s| s >= a)
        .map(|s| s - a)
        .collect();

    let n = bytes.len();
    let width = LEFT + STEP * n.max(1) as f64 + 20.0;
    let height = TOP + PLOT_H + 70.0;
    let y_max = h
        .iter()
        .copied()
        .fold(std::f32::consts::LN_2 * 8.0, f32::max) as f64;
    let y = |v: f64| TOP + PLOT_H * (1.0 - v / y_max);
    let x = |i: usize| LEFT + STEP * (i as f64 + 0.5);

    let mut svg = String::new();
    writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="monospace" font-size="11">"#
    )?;
    writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#)?;
    let title = format!(
        "{} bytes {a}..{b}: entropy per byte (nats), {} patches, rule {}",
        display(&args.file),
        starts.len(),
        rule_text(cfg.rule())
    );
    writeln!(
        svg,
        r#"<text x="{LEFT}" y="20" font-size="13">{}</text>"#,
        escape(&title)
    )?;
    // Patches as alternating bands.
    let mut bounds = starts.clone();
    bounds.push(n);
    for (p, w) in bounds.windows(2).enumerate() {
        let fill = if p % 2 == 0 { "#eef3fb" } else { "#fbf3e6" };
        writeln!(
            svg,
            r#"<rect x="{:.1}" y="{TOP}" width="{:.1}" height="{}" fill="{fill}"/>"#,
            LEFT + STEP * w[0] as f64,
            STEP * (w[1] - w[0]) as f64,
            PLOT_H + 40.0
        )?;
    }
    // Axes and grid.
    for v in 0..=(y_max.floor() as usize) {
        let yy = y(v as f64);
        writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/>"##,
            width - 20.0
        )?;
        writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"#,
            LEFT - 6.0,
            yy + 4.0
        )?;
    }
    writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="#333"/>"##,
        TOP + PLOT_H
    )?;
    // Boundaries.
    for &s in &starts {
        let xx = LEFT + STEP * s as f64;
        writeln!(
            svg,
            r##"<line x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}" stroke="#c0392b" stroke-width="1"/>"##,
            TOP + PLOT_H + 40.0
        )?;
    }
    // Threshold lines.
    let threshold = match cfg.rule() {
        Rule::Global { threshold } | Rule::Combined { threshold, .. } => Some(threshold),
        Rule::Relative { .. } => None,
    };
    if let Some(t) = threshold {
        let yy = y(t as f64);
        writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#c0392b" stroke-dasharray="6 4" stroke-width="1.5"/>"##,
            width - 20.0
        )?;
        writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" fill="#c0392b">threshold {t:.3}</text>"##,
            LEFT + 4.0,
            yy - 4.0
        )?;
    }
    // The entropy curve.
    let points: Vec<String> = h
        .iter()
        .enumerate()
        .map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v as f64)))
        .collect();
    writeln!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#1f4e9c" stroke-width="1.5"/>"##,
        points.join(" ")
    )?;
    for (i, &v) in h.iter().enumerate() {
        writeln!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="2" fill="#1f4e9c"/>"##,
            x(i),
            y(v as f64)
        )?;
    }
    // The bytes underneath.
    let ty = TOP + PLOT_H + 25.0;
    for (i, label) in labels(bytes).into_iter().enumerate() {
        if !label.is_empty() {
            writeln!(
                svg,
                r#"<text x="{:.1}" y="{ty:.1}" text-anchor="middle">{}</text>"#,
                x(i),
                escape(&label)
            )?;
        }
    }
    writeln!(svg, "</svg>")?;

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

/// The character to print under each byte: a UTF-8 character under its first byte (nothing
/// under its continuation bytes), `␣` for a space, `↵` for a newline, `·` for other bytes.
fn labels(bytes: &[u8]) -> Vec<String> {
    let mut out = vec![String::new(); bytes.len()];
    let mut i = 0;
    while i < bytes.len() {
        let len = match bytes[i] {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => 1,
        };
        match std::str::from_utf8(&bytes[i..(i + len).min(bytes.len())]) {
            Ok(s) if len > 1 || !bytes[i].is_ascii_control() => {
                out[i] = match s {
                    " " => "␣".to_string(),
                    other => other.to_string(),
                };
                i += len;
            }
            _ => {
                out[i] = if bytes[i] == b'\n' {
                    "↵".to_string()
                } else {
                    "·".to_string()
                };
                i += 1;
            }
        }
    }
    out
}

fn rule_text(rule: Rule) -> String {
    match rule {
        Rule::Global { threshold } => format!("H > {threshold:.3}"),
        Rule::Relative { relative_threshold } => format!("ΔH > {relative_threshold:.3}"),
        Rule::Combined {
            threshold,
            relative_threshold,
        } => {
            format!("H > {threshold:.3} and ΔH > {relative_threshold:.3}")
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
