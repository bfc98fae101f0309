//! AdamW (decoupled weight decay) with state that can be saved and restored.
//!
//! candle-nn's AdamW keeps its moment estimates private, so a run could not resume with the
//! same optimizer state; this one has the same update rule (checked against candle-nn's in the
//! tests) and exposes its state by parameter name.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use super::adamw_cpu;
use candle_nn::VarMap;

type Result<T> = candle_core::Result<T>;

/// AdamW hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    /// Learning rate (changed every step by the schedule).
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

struct Slot {
    name: String,
    var: Var,
    m: Tensor,
    v: Tensor,
}

/// The optimizer over every parameter of a [`VarMap`], in name order.
pub struct AdamW {
    config: AdamWConfig,
    step: u64,
    slots: Vec<Slot>,
}

impl AdamW {
    /// An optimizer with zero moments for every floating-point parameter of `vars`.
    pub fn new(vars: &VarMap, config: AdamWConfig) -> Result<Self> {
        let data = vars
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("variable map poisoned".into()))?;
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        let slots = names
            .into_iter()
            .filter(|n| data[*n].dtype().is_float())
            .map(|n| {
                let var = data[n].clone();
                // Two allocations: the CPU step updates each moment in place.
                Ok(Slot {
                    name: n.clone(),
                    m: var.zeros_like()?,
                    v: var.zeros_like()?,
                    var,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW {
            config,
            step: 0,
            slots,
        })
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Set the learning rate for the next steps.
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamWConfig {
        &self.config
    }

    /// One update from `grads`; parameters without a gradient are left alone. On the CPU (f32)
    /// the moments and parameters are updated in place, in one pass each; elsewhere by
    /// candle's elementwise operations ([`AdamW::step_with_composite_ops`]), to the same bits.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.update(grads, true)
    }

    /// [`AdamW::step`] by candle's elementwise operations on every device: the reference the
    /// CPU's in-place update is tested against.
    pub fn step_with_composite_ops(&mut self, grads: &GradStore) -> Result<()> {
        self.update(grads, false)
    }

    fn update(&mut self, grads: &GradStore, in_place: bool) -> Result<()> {
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let (scale_m, scale_v) = (1.0 / (1.0 - c.beta1.powi(t)), 1.0 / (1.0 - c.beta2.powi(t)));
        for slot in self.slots.iter_mut() {
            let Some(g) = grads.get(&slot.var) else {
                continue;
            };
            // A gradient may still carry the graph it was computed with; the moments outlive
            // the step, so they must not keep that graph (and with it the step's activations).
            let g = &g.detach();
            let param = slot.var.as_tensor();
            if in_place
                && [g, &slot.m, &slot.v, param]
                    .iter()
                    .all(|t| adamw_cpu::serves(t))
            {
                slot.m.inplace_op2(
                    g,
                    &adamw_cpu::Moment {
                        decay: c.beta1,
                        square: false,
                    },
                )?;
                slot.v.inplace_op2(
                    g,
                    &adamw_cpu::Moment {
                        decay: c.beta2,
                        square: true,
                    },
                )?;
                let step = adamw_cpu::Step {
                    lr: c.lr,
                    weight_decay: c.weight_decay,
                    scale_m,
                    scale_v,
                    eps: c.eps,
                };
                param.inplace_op3(&slot.m, &slot.v, &step)?;
                continue;
            }
            let m = ((&slot.m * c.beta1)? + (g * (1.0 - c.beta1))?)?;
            let v = ((&slot.v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let update = ((&m * scale_m)? / ((&v * scale_v)?.sqrt()? + c.eps)?)?;
            let theta = (param * (1.0 - c.lr * c.weight_decay))?;
            slot.var.set(&(theta - (update * c.lr)?)?)?;
            slot.m = m;
            slot.v = v;
        }
        Ok(())
    }

    /// The moments by name (`m.<param>`, `v.<param>`), for a checkpoint: the live tensors, which
    /// the next step updates in place on the CPU, so save them before it.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for s in &self.slots {
            out.insert(format!("m.{}", s.name), s.m.clone());
            out.insert(format!("v.{}", s.name), s.v.clone());
        }
        out
    }

    /// Restore moments saved by [`AdamW::state`] after `step` steps. Every parameter must be
    /// present with its shape.
    pub fn restore(&mut self, state: &HashMap<String, Tensor>, step: u64) -> Result<()> {
        for s in self.slots.iter_mut() {
            for (key, slot) in [("m", &mut s.m), ("v", &mut s.v)] {
                let name = format!("{key}.{}", s.name);
                let t = state.get(&name).ok_or_else(|| {
                    candle_core::Error::Msg(format!("optimizer state has no '{name}'"))
                })?;
                if t.shape() != s.var.shape() {
                    return Err(candle_core::Error::Msg(format!(
                        "optimizer state '{name}' is {:?}, the parameter is {:?}",
                        t.shape(),
                        s.var.shape()
                    )));
                }
                // A copy: the CPU step updates the moments in place, and `state` is the caller's.
                *slot = t
                    .to_dtype(s.var.dtype())?
                    .to_device(s.var.device())?
                    .copy()?;
            }
        }
        self.step = step;
        Ok(())
    }
}
