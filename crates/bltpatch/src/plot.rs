//! The entropy picture of the BLT paper as an SVG: the entropy of every byte, the threshold
//! (or, for the budget rule, the entropy summed over the open patch and the budget), the patch
//! boundaries, and the bytes written underneath.

use std::fmt::Write as _;
use std::ops::Range;

use bltpatch_core::{Rule, patch_starts};

/// Horizontal room per byte, in SVG units.
const STEP: f64 = 13.0;
const PLOT_H: f64 = 220.0;
const TOP: f64 = 40.0;
const LEFT: f64 = 50.0;

/// An SVG of bytes `range` of `doc`, with their entropies and patch boundaries.
///
/// Shapes: `h: [range.end]` and `lengths` (summing to at least `range.end`) cover the document
/// from its start, so that positions in the range keep their full context and the budget's
/// running sum starts at the true patch start. `rule` draws its threshold, or for
/// [`Rule::Budget`] the budget and the running sum `H[s] + ... + H[i]` of each patch.
///
/// ```
/// use bltpatch::{Model, EntropyModel};
///
/// let model = Model::default_model();
/// let patcher = model.patcher().unwrap();
/// let doc = b"It is a truth universally acknowledged";
/// let (lengths, h) = patcher.segment_with_entropies(doc);
/// let rule = model.patch_config().map(|c| c.rule());
/// let svg = bltpatch::plot::entropy_svg(doc, &h, &lengths, 0..doc.len(), rule.as_ref(), "demo");
/// assert!(svg.starts_with("<svg") && svg.contains("polyline"));
/// assert_eq!(svg.matches("</svg>").count(), 1);
/// ```
///
/// # Panics
/// If `range` is empty or `h` is shorter than `range.end`.
pub fn entropy_svg(
    doc: &[u8],
    h: &[f32],
    lengths: &[usize],
    range: Range<usize>,
    rule: Option<&Rule>,
    title: &str,
) -> String {
    let (a, b) = (range.start, range.end);
    assert!(
        a < b && h.len() >= b && doc.len() >= b,
        "a non-empty range inside the document"
    );
    let all_starts = patch_starts(lengths);
    // The running budget sum H[s] + ... + H[i] of each byte's patch.
    let mut is_start = vec![false; b];
    for &s in all_starts.iter().filter(|&&s| s < b) {
        is_start[s] = true;
    }
    let mut running = Vec::with_capacity(b - a);
    let mut sum = 0f64;
    for (i, &x) in h[..b].iter().enumerate() {
        if is_start[i] {
            sum = 0.0;
        }
        sum += x as f64;
        if i >= a {
            running.push(sum);
        }
    }
    let starts: Vec<usize> = all_starts
        .into_iter()
        .filter(|&s| s >= a && s < b)
        .map(|s| s - a)
        .collect();
    let h = &h[a..b];
    let bytes = &doc[a..b];
    let budget = match rule {
        Some(Rule::Budget { budget }) => Some(*budget),
        _ => None,
    };
    let n = bytes.len();
    let width = LEFT + STEP * n.max(1) as f64 + 20.0;
    let height = TOP + PLOT_H + 70.0;
    let mut y_max = h
        .iter()
        .copied()
        .fold(std::f32::consts::LN_2 * 8.0, f32::max) as f64;
    if budget.is_some() {
        y_max = running.iter().copied().fold(y_max, f64::max);
    }
    let y = |v: f64| TOP + PLOT_H * (1.0 - v / y_max);
    let x = |i: usize| LEFT + STEP * (i as f64 + 0.5);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="monospace" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = format!(
        "{title} bytes {a}..{b}: entropy per byte (nats), {} patches{}",
        starts.len(),
        rule.map_or(String::new(), |r| format!(", rule {}", rule_text(r)))
    );
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="20" font-size="13">{}</text>"#,
        escape(&title)
    );
    // Patches as alternating bands.
    let mut bounds = starts.clone();
    if bounds.first() != Some(&0) {
        bounds.insert(0, 0);
    }
    bounds.push(n);
    for (p, w) in bounds.windows(2).enumerate() {
        let fill = if p % 2 == 0 { "#eef3fb" } else { "#fbf3e6" };
        let _ = writeln!(
            svg,
            r#"<rect x="{:.1}" y="{TOP}" width="{:.1}" height="{}" fill="{fill}"/>"#,
            LEFT + STEP * w[0] as f64,
            STEP * (w[1] - w[0]) as f64,
            PLOT_H + 40.0
        );
    }
    // Axes and grid.
    for v in 0..=(y_max.floor() as usize) {
        let yy = y(v as f64);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/>"##,
            width - 20.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"#,
            LEFT - 6.0,
            yy + 4.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="#333"/>"##,
        TOP + PLOT_H
    );
    // Boundaries.
    for &s in &starts {
        let xx = LEFT + STEP * s as f64;
        let _ = writeln!(
            svg,
            r##"<line x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}" stroke="#c0392b" stroke-width="1"/>"##,
            TOP + PLOT_H + 40.0
        );
    }
    // Threshold lines.
    let threshold = match rule {
        Some(Rule::Global { threshold } | Rule::Combined { threshold, .. }) => Some(*threshold),
        _ => None,
    };
    if let Some(t) = threshold {
        let yy = y(t as f64);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#c0392b" stroke-dasharray="6 4" stroke-width="1.5"/>"##,
            width - 20.0
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" fill="#c0392b">threshold {t:.3}</text>"##,
            LEFT + 4.0,
            yy - 4.0
        );
    }
    if let Some(budget) = budget {
        let yy = y(budget);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#1e8449" stroke-dasharray="6 4" stroke-width="1.5"/>"##,
            width - 20.0
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" fill="#1e8449">budget {budget:.3} (green: H summed over the patch)</text>"##,
            LEFT + 4.0,
            yy - 4.0
        );
        // The running sum, a step per byte, restarting at every patch start.
        let mut path = String::new();
        for (i, &s) in running.iter().enumerate() {
            let x0 = LEFT + STEP * i as f64;
            let cmd = if i == 0 || starts.binary_search(&i).is_ok() {
                'M'
            } else {
                'L'
            };
            let _ = write!(path, "{cmd}{x0:.1},{:.1} H{:.1} ", y(s), x0 + STEP);
        }
        let _ = writeln!(
            svg,
            r##"<path d="{}" fill="none" stroke="#1e8449" stroke-width="1.2"/>"##,
            path.trim_end()
        );
    }
    // The entropy curve.
    let points: Vec<String> = h
        .iter()
        .enumerate()
        .map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v as f64)))
        .collect();
    let _ = writeln!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#1f4e9c" stroke-width="1.5"/>"##,
        points.join(" ")
    );
    for (i, &v) in h.iter().enumerate() {
        let _ = writeln!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="2" fill="#1f4e9c"/>"##,
            x(i),
            y(v as f64)
        );
    }
    // The bytes underneath.
    let ty = TOP + PLOT_H + 25.0;
    for (i, label) in labels(bytes).into_iter().enumerate() {
        if !label.is_empty() {
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{ty:.1}" text-anchor="middle">{}</text>"#,
                x(i),
                escape(&label)
            );
        }
    }
    let _ = writeln!(svg, "</svg>");
    svg
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

fn rule_text(rule: &Rule) -> String {
    match *rule {
        Rule::Global { threshold } => format!("H > {threshold:.3}"),
        Rule::Relative { relative_threshold } => format!("ΔH > {relative_threshold:.3}"),
        Rule::Combined {
            threshold,
            relative_threshold,
        } => {
            format!("H > {threshold:.3} and ΔH > {relative_threshold:.3}")
        }
        Rule::Budget { budget } => format!("ΣH over the patch >= {budget:.3}"),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
