//! Times the parts of one training step (batch assembly, forward, backward, gradient norm,
//! optimizer update) for a preset: `cargo run --release --example profile -- PRESET [B] [T]`.

use std::time::Instant;

use bltpatch_model::model::{ConvLm, HostBatch, Window, loss};
use bltpatch_model::optim::{AdamW, AdamWConfig, global_grad_norm};
use bltpatch_model::{Backend, conv_config};

fn main() {
    let mut args = std::env::args().skip(1);
    let preset = args.next().unwrap_or_else(|| "small".into());
    let b: usize = args.next().map_or(16, |s| s.parse().unwrap());
    let t: usize = args.next().map_or(512, |s| s.parse().unwrap());
    if std::env::var_os("NO_TUNE").is_none() {
        bltpatch_model::tune_allocator();
    }
    let cfg = match std::env::var("PROFILE_CFG") {
        Ok(j) => serde_json::from_str(&j).unwrap(),
        Err(_) => conv_config(&preset, None).unwrap(),
    };
    let text = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../datasets/en_books_slice.txt"
    ))
    .unwrap();
    let dev = Backend::Flex.device().unwrap();
    let ad = dev.clone().autodiff();
    let mut model = ConvLm::init(&cfg, 1, &ad);
    let mut opt = AdamW::new(AdamWConfig::default());
    let l = cfg.receptive_field() + t;
    let mut tot = [0f64; 5];
    for step in 0..6 {
        let t0 = Instant::now();
        let windows: Vec<Window<'_>> = (0..b)
            .map(|i| {
                let s = 10 + (i * 997 + step * 131) % (text.len() - l - 20);
                Window {
                    doc: &text,
                    start: s,
                    end: s + l,
                    count_from: s + cfg.receptive_field(),
                }
            })
            .collect();
        let batch = HostBatch::new(&cfg, &windows);
        let t1 = Instant::now();
        let lo = loss(&model, &batch, &ad);
        let _v = lo.clone().into_scalar::<f32>();
        let t2 = Instant::now();
        let mut grads = lo.backward();
        let t3 = Instant::now();
        let n = global_grad_norm(&model, &grads);
        let t4 = Instant::now();
        model = opt.step(model, &mut grads, 1e-3, 1.0 / n.max(1.0));
        let t5 = Instant::now();
        if step > 0 {
            for (k, d) in [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4]
                .iter()
                .enumerate()
            {
                tot[k] += d.as_secs_f64() / 5.0;
            }
        }
    }
    let sum: f64 = tot.iter().sum();
    println!(
        "{preset} B={b} T={t}: batch {:.3} fwd {:.3} bwd {:.3} norm {:.3} adam {:.3} total {:.3} s/step, {:.0} counted bytes/s",
        tot[0],
        tot[1],
        tot[2],
        tot[3],
        tot[4],
        sum,
        (b * t) as f64 / sum
    );
}
