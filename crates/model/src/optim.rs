//! AdamW with gradient clipping by the global norm, and the learning-rate schedule.
//!
//! burn's `ModuleOptimizer` keys its state by `ParamId` and restores it on `Device::default()`;
//! this small AdamW keys its moments by the parameter's **name** (burn's path, the checkpoint
//! tensor name), so resuming needs nothing but the checkpoint tensors, on any backend. Weight
//! decay is applied to the convolution, projection and head matrices only (not to embeddings,
//! norms or biases).

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::{Device, Tensor, TensorData};
use burn::tensor::Gradients;

/// AdamW hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay (per unit learning rate), on weight matrices only.
    pub weight_decay: f64,
    /// Learning-rate multiplier of the embedding tables (`embed`, `hash.*`).
    pub embed_lr_mult: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.01,
            embed_lr_mult: 1.0,
        }
    }
}

/// The moments of one parameter, flattened: `[n]` each.
struct Moments {
    m: Tensor<1>,
    v: Tensor<1>,
}

/// AdamW whose state is keyed by parameter name.
pub struct AdamW {
    cfg: AdamWConfig,
    /// Updates taken so far (for bias correction).
    steps: u64,
    state: BTreeMap<String, Moments>,
}

impl AdamW {
    /// A fresh optimizer.
    pub fn new(cfg: AdamWConfig) -> Self {
        Self {
            cfg,
            steps: 0,
            state: BTreeMap::new(),
        }
    }

    /// Updates taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One update of every parameter that has a gradient in `grads`, with learning rate `lr`
    /// and the gradients multiplied by `grad_scale` (the clipping factor).
    pub fn step<M: Module>(
        &mut self,
        model: M,
        grads: &mut Gradients,
        lr: f64,
        grad_scale: f64,
    ) -> M {
        self.steps += 1;
        let mut mapper = StepMapper {
            opt: self,
            grads,
            lr,
            grad_scale,
            path: Vec::new(),
        };
        model.map(&mut mapper)
    }

    /// The state as named `f32` tensors (`adam_m/NAME`, `adam_v/NAME`, flattened `[n]`) and the
    /// step count.
    pub fn to_tensors(&self) -> (Vec<bltpatch_checkpoint::Tensor>, u64) {
        let mut out = Vec::with_capacity(2 * self.state.len());
        for (name, mo) in &self.state {
            for (kind, t) in [("adam_m", &mo.m), ("adam_v", &mo.v)] {
                let data = t.clone().try_into_vec_as::<f32>().expect("f32 state");
                out.push(bltpatch_checkpoint::Tensor::f32(
                    format!("{kind}/{name}"),
                    vec![data.len()],
                    data,
                ));
            }
        }
        (out, self.steps)
    }

    /// Restores the state written by [`AdamW::to_tensors`] for the parameters `params`
    /// (name and number of elements, as the checkpoint export names them): `get(name)` returns
    /// a flattened tensor or `None`; every parameter must have both moments or neither.
    ///
    /// # Errors
    /// A message naming an incomplete or mis-sized state.
    pub fn from_tensors(
        cfg: AdamWConfig,
        steps: u64,
        params: &[(String, usize)],
        device: &Device,
        mut get: impl FnMut(&str) -> Option<Vec<f32>>,
    ) -> Result<Self, String> {
        let mut state = BTreeMap::new();
        for (name, n) in params {
            let (name, n) = (name.clone(), *n);
            match (
                get(&format!("adam_m/{name}")),
                get(&format!("adam_v/{name}")),
            ) {
                (Some(m), Some(v)) if m.len() == n && v.len() == n => {
                    let t = |x: Vec<f32>| Tensor::<1>::from_data(TensorData::new(x, [n]), device);
                    state.insert(name, Moments { m: t(m), v: t(v) });
                }
                (None, None) => {}
                _ => {
                    return Err(format!(
                        "optimizer state of {name} is incomplete or mis-sized"
                    ));
                }
            }
        }
        Ok(Self { cfg, steps, state })
    }
}

/// Whether the parameter `name` is an embedding table (the conv model's byte and hashed
/// n-gram embeddings, the hashmlp model's n-gram tables): it gets the embedding learning-rate
/// multiplier and no weight decay.
fn is_embedding(name: &str) -> bool {
    name == "embed.weight" || name.starts_with("hash.") || name.starts_with("tables.")
}

/// Whether weight decay applies to the parameter `name`: the weight matrices of the
/// convolutions and linear layers, not embeddings, norms or biases.
fn decays(name: &str) -> bool {
    name.ends_with(".weight") && !is_embedding(name)
}

struct StepMapper<'a> {
    opt: &'a mut AdamW,
    grads: &'a mut Gradients,
    lr: f64,
    grad_scale: f64,
    path: Vec<String>,
}

impl ModuleMapper for StepMapper<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.join(".");
        let AdamWConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
            embed_lr_mult,
        } = self.opt.cfg;
        let t = self.opt.steps as i32;
        let embedding = is_embedding(&name);
        let lr = if embedding {
            self.lr * embed_lr_mult
        } else {
            self.lr
        };
        let scale = self.grad_scale;
        let grads = &mut *self.grads;
        let state = &mut self.opt.state;
        param.map(|value| {
            let Some(grad) = value.grad_remove(grads) else {
                return value;
            };
            let dims = value.dims();
            let n: usize = dims.iter().product();
            let device = grad.device();
            let g = grad.reshape([n]).mul_scalar(scale as f32);
            let mo = state.remove(&name).unwrap_or_else(|| Moments {
                m: Tensor::zeros([n], &device),
                v: Tensor::zeros([n], &device),
            });
            let m = mo.m.mul_scalar(beta1 as f32) + g.clone().mul_scalar((1.0 - beta1) as f32);
            let v = mo.v.mul_scalar(beta2 as f32) + g.square().mul_scalar((1.0 - beta2) as f32);
            let c1 = 1.0 - beta1.powi(t);
            let c2 = 1.0 - beta2.powi(t);
            let denom = v
                .clone()
                .div_scalar(c2 as f32)
                .sqrt()
                .add_scalar(eps as f32);
            let update = m.clone().div(denom).mul_scalar((lr / c1) as f32);
            let mut p = value.inner().reshape([n]);
            if decays(&name) {
                p = p.mul_scalar((1.0 - lr * weight_decay) as f32);
            }
            let p = p - update;
            state.insert(name.clone(), Moments { m, v });
            p.reshape(dims).autodiff().require_grad()
        })
    }
}

/// The global L2 norm of all gradients (per tensor in `f32`, in an order independent of the
/// thread count; summed over tensors in `f64`, in parameter order).
pub fn global_grad_norm<M: Module>(model: &M, grads: &Gradients) -> f64 {
    struct SqNorm<'a> {
        grads: &'a Gradients,
        sum: f64,
    }
    impl ModuleVisitor for SqNorm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = param.val().grad(self.grads) {
                let dims = g.dims();
                let n: usize = dims.iter().product();
                let last = dims[D - 1].max(1);
                // Row sums first: flex sums tensors of 4M+ elements with a parallel reduction
                // whose order depends on the thread count; per-row sums never do.
                let sq = if D >= 2 && n >= 1 << 20 {
                    g.square().reshape([n / last, last]).sum_dim(1).sum()
                } else {
                    g.square().sum()
                };
                self.sum += sq.into_scalar::<f32>() as f64;
            }
        }
    }
    let mut v = SqNorm { grads, sum: 0.0 };
    model.visit(&mut v);
    v.sum.sqrt()
}

/// The learning rate at `step` (0-based) of a run at `progress` (in `[0, 1]`, the fraction of
/// the step or time budget used): linear warm-up over `warmup` steps to `peak`, then cosine
/// decay to `peak · min_ratio` at progress 1.
pub fn learning_rate(peak: f64, min_ratio: f64, warmup: usize, step: usize, progress: f64) -> f64 {
    let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress.clamp(0.0, 1.0)).cos());
    let decayed = peak * (min_ratio + (1.0 - min_ratio) * cosine);
    if step < warmup {
        decayed * (step + 1) as f64 / warmup as f64
    } else {
        decayed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_and_decays() {
        let lr = |s, p| learning_rate(1e-3, 0.1, 10, s, p);
        assert!(lr(0, 0.0) < lr(5, 0.0));
        assert!((lr(10, 0.0) - 1e-3).abs() < 1e-12);
        assert!((lr(100, 1.0) - 1e-4).abs() < 1e-12);
        assert!(lr(50, 0.5) < lr(20, 0.2));
    }

    #[test]
    fn only_matrices_decay() {
        assert!(decays("blocks.3.conv.weight"));
        assert!(decays("blocks.0.proj.weight"));
        assert!(decays("head.weight"));
        assert!(!decays("embed.weight"));
        assert!(!decays("hash.1.weight"));
        assert!(!decays("blocks.0.norm.gamma"));
        assert!(!decays("head.bias"));
        assert!(decays("hidden.weight"));
        assert!(decays("entropy.proj.weight"));
        assert!(!decays("tables.3.weight"));
        assert!(is_embedding("tables.0.weight"));
    }
}
