//! Times the parts of one training step of a preset on flex:
//! `latent_profile [PRESET] [BATCH] [SEQ_LEN] [POOLING] [SCHEME]`, e.g. `latent_profile small 8 512 mean bpe`
//! (the scheme set to a mean patch length of 4.5 on the step's windows).

use std::time::Instant;

use bltpatch_latent::batch::HostBatch;
use bltpatch_latent::{EntropyModel, LatentConfig, LatentInput, Patching, PoolingKind, Scheme};
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::Device;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let preset = args.get(1).map_or("small", String::as_str);
    let batch: usize = args.get(2).map_or(16, |s| s.parse().unwrap());
    let seq_len: usize = args.get(3).map_or(512, |s| s.parse().unwrap());
    let pooling = match args.get(4).map(String::as_str) {
        Some("cross-attention") => PoolingKind::CrossAttention,
        _ => PoolingKind::Mean,
    };
    bltpatch_model::tune_allocator();
    let cfg = LatentConfig::preset(preset, pooling).expect("preset");
    let device = Device::flex().autodiff();
    let mut model = cfg.init(0, &device);
    let mut optim = AdamWConfig::new().init();
    let text = include_bytes!("../../../datasets/tiny.txt");
    let docs: Vec<&[u8]> = (0..batch)
        .map(|b| &text[b * 997 % (text.len() - seq_len)..][..seq_len])
        .collect();
    let entropy = EntropyModel::default_model();
    let scheme: Scheme = args
        .get(5)
        .map_or("entropy-global", String::as_str)
        .parse()
        .expect("scheme");
    let patching = Patching::calibrate(scheme, &entropy, &docs, 4.5).expect("calibration");
    let f = cfg.flops_per_byte(4.5, seq_len);
    println!(
        "{preset} {pooling:?} {scheme} ({}): {:.0} FLOPs/byte (encoder {:.0}, pooling {:.0}, global {:.0}, decoder {:.0})",
        patching.describe(),
        f.total,
        f.encoder,
        f.pooling,
        f.global,
        f.decoder
    );
    let mut times = [0f64; 5];
    let steps = 6;
    for step in 0..steps {
        let t = Instant::now();
        let layout = patching.layout(&docs);
        let host = HostBatch::new(&cfg, &docs, &layout);
        let input = LatentInput::new(&host, &device);
        let t_batch = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let loss = model.loss(&input, host.bytes);
        let _ = loss.clone().into_scalar::<f32>();
        let t_fwd = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let t_bwd = t.elapsed().as_secs_f64();
        let t = Instant::now();
        model = optim.step(1e-3, model, grads);
        let t_opt = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let _ = model
            .valid()
            .forward(&LatentInput::new(&host, &Device::flex()));
        let t_eval = t.elapsed().as_secs_f64();
        if step > 0 {
            for (acc, v) in times.iter_mut().zip([t_batch, t_fwd, t_bwd, t_opt, t_eval]) {
                *acc += v / (steps - 1) as f64;
            }
        }
    }
    let total = times[..4].iter().sum::<f64>();
    println!(
        "per step: segment+batch {:.3} s, forward {:.3} s, backward {:.3} s, optimizer {:.3} s = {:.3} s ({:.0} bytes/s); inference forward {:.3} s",
        times[0],
        times[1],
        times[2],
        times[3],
        total,
        (batch * seq_len) as f64 / total,
        times[4]
    );
}
