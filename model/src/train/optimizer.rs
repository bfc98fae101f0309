//! AdamW (decoupled weight decay) with state that can be saved and restored.
//!
//! candle-nn's AdamW keeps its moment estimates private, so a run could not resume with the
//! same optimizer state; this one has the same update rule (checked against candle-nn's in the
//! tests) and exposes its state by parameter name.

use std::collections::HashMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};

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

/// A parameter's two moment estimates.
enum Moments {
    /// In host memory, updated in place with the parameter by one pass
    /// ([`adamw_cpu::Update`]): for f32 parameters on the CPU.
    Host { m: Vec<f32>, v: Vec<f32> },
    /// As tensors on the parameter's device, replaced each step by candle's elementwise
    /// operations.
    Tensors { m: Tensor, v: Tensor },
}

struct Slot {
    name: String,
    var: Var,
    moments: Moments,
}

impl Slot {
    /// The moments as tensors of the parameter's shape (copies of host moments).
    fn moment_tensors(&self) -> Result<(Tensor, Tensor)> {
        match &self.moments {
            Moments::Host { m, v } => {
                let (shape, device) = (self.var.shape(), self.var.device());
                Ok((
                    Tensor::from_slice(m, shape, device)?,
                    Tensor::from_slice(v, shape, device)?,
                ))
            }
            Moments::Tensors { m, v } => Ok((m.clone(), v.clone())),
        }
    }

    /// Replace the moments by `m` and `v` (of the parameter's shape).
    fn set_moments(&mut self, m: Tensor, v: Tensor) -> Result<()> {
        match &mut self.moments {
            Moments::Host { m: hm, v: hv } => {
                *hm = m.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
                *hv = v.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
            }
            Moments::Tensors { m: tm, v: tv } => {
                *tm = m;
                *tv = v;
            }
        }
        Ok(())
    }
}

/// One moment as safetensors writes it: borrowed host values, or a tensor.
enum MomentView<'a> {
    Host(&'a [f32], &'a [usize]),
    Tensor(&'a Tensor),
}

impl safetensors::View for MomentView<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        match self {
            MomentView::Host(..) => safetensors::Dtype::F32,
            MomentView::Tensor(t) => <Tensor as safetensors::View>::dtype(t),
        }
    }

    fn shape(&self) -> &[usize] {
        match self {
            MomentView::Host(_, shape) => shape,
            MomentView::Tensor(t) => t.dims(),
        }
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            // safetensors stores little-endian values.
            MomentView::Host(values, _) => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            MomentView::Tensor(t) => <Tensor as safetensors::View>::data(t),
        }
    }

    fn data_len(&self) -> usize {
        match self {
            MomentView::Host(values, _) => std::mem::size_of_val(*values),
            MomentView::Tensor(t) => <Tensor as safetensors::View>::data_len(t),
        }
    }
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
                let moments = match adamw_cpu::serves(var.as_tensor()) {
                    true => Moments::Host {
                        m: vec![0.0; var.elem_count()],
                        v: vec![0.0; var.elem_count()],
                    },
                    false => Moments::Tensors {
                        m: var.zeros_like()?,
                        v: var.zeros_like()?,
                    },
                };
                Ok(Slot {
                    name: n.clone(),
                    var,
                    moments,
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
    /// each parameter and its moments are updated in place in one pass; elsewhere by candle's
    /// elementwise operations ([`AdamW::step_with_composite_ops`]), to the same bits.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.update(grads, true)
    }

    /// [`AdamW::step`] by candle's elementwise operations on every device: the reference the
    /// CPU's in-place update is tested against.
    pub fn step_with_composite_ops(&mut self, grads: &GradStore) -> Result<()> {
        self.update(grads, false)
    }

    /// Whether [`AdamW::step`] updates every parameter in place (f32 parameters on the CPU).
    pub fn updates_in_place(&self) -> bool {
        self.slots
            .iter()
            .all(|s| matches!(s.moments, Moments::Host { .. }))
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
            let mut g = g.detach();
            if let (true, Moments::Host { m, v }) = (in_place, &mut slot.moments) {
                if !adamw_cpu::serves(&g) {
                    g = g.to_dtype(DType::F32)?.contiguous()?;
                }
                let step = adamw_cpu::StepConfig {
                    beta1: c.beta1,
                    beta2: c.beta2,
                    lr: c.lr,
                    weight_decay: c.weight_decay,
                    scale_m,
                    scale_v,
                    eps: c.eps,
                };
                slot.var
                    .as_tensor()
                    .inplace_op2(&g, &adamw_cpu::Update::new(step, m, v))?;
                continue;
            }
            let (m, v) = slot.moment_tensors()?;
            let m = ((&m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            let v = ((&v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let update = ((&m * scale_m)? / ((&v * scale_v)?.sqrt()? + c.eps)?)?;
            let theta = (slot.var.as_tensor() * (1.0 - c.lr * c.weight_decay))?;
            slot.var.set(&(theta - (update * c.lr)?)?)?;
            slot.set_moments(m, v)?;
        }
        Ok(())
    }

    /// The moments by name (`m.<param>`, `v.<param>`), as tensors: copies of what the optimizer
    /// holds. [`AdamW::save_state`] writes them without copying them all at once.
    pub fn state(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for s in &self.slots {
            let (m, v) = s.moment_tensors()?;
            out.insert(format!("m.{}", s.name), m);
            out.insert(format!("v.{}", s.name), v);
        }
        Ok(out)
    }

    /// Write the moments to a safetensors file, under the names [`AdamW::state`] gives them
    /// (what [`AdamW::restore`] reads back).
    pub fn save_state(&self, path: &Path) -> std::result::Result<(), safetensors::SafeTensorError> {
        let mut views = Vec::with_capacity(2 * self.slots.len());
        for s in &self.slots {
            let (m, v) = match &s.moments {
                Moments::Host { m, v } => (
                    MomentView::Host(m, s.var.dims()),
                    MomentView::Host(v, s.var.dims()),
                ),
                Moments::Tensors { m, v } => (MomentView::Tensor(m), MomentView::Tensor(v)),
            };
            views.push((format!("m.{}", s.name), m));
            views.push((format!("v.{}", s.name), v));
        }
        safetensors::serialize_to_file(views, None, path)
    }

    /// Restore moments saved by [`AdamW::save_state`] (or given by [`AdamW::state`]) after
    /// `step` steps. Every parameter must be
    /// present with its shape.
    pub fn restore(&mut self, state: &HashMap<String, Tensor>, step: u64) -> Result<()> {
        for s in self.slots.iter_mut() {
            let [m, v] = ["m", "v"].map(|key| {
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
                // No copy of our own: host moments are copied out of `t` by `set_moments`, and
                // tensor moments are replaced each step, never written in place.
                t.to_dtype(s.var.dtype())?.to_device(s.var.device())
            });
            s.set_moments(m?, v?)?;
        }
        self.step = step;
        Ok(())
    }
}
