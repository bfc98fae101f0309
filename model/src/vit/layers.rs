//! The layers a timm ViT is built of (norms, MLPs, attention pooling), each read from the
//! folder's weights by its timm name (`vision_transformer.py`'s and `eva.py`'s), in the form the
//! fused CPU kernels take.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use ldae_pipeline::{Error, Result};

use super::args::{Activation, Naming, NormKind, VitArgs};
use crate::denoiser::fused;
use ldae_operators::pca::candle_err;

/// A norm with its affine parameters, as the fused kernel's shift and scale: a LayerNorm, or
/// an RMSNorm (not centred; its shift zero).
pub(super) struct Affine {
    /// The bias, `[W]` (zeros for an RMSNorm).
    shift: Tensor,
    /// The weight minus one, `[W]`.
    scale: Tensor,
    eps: f64,
    kind: NormKind,
}

/// `v` `[W]` repeated for a batch of `b`: `[b, W]`.
pub(super) fn per_image(v: &Tensor, b: usize) -> candle_core::Result<Tensor> {
    v.unsqueeze(0)?.broadcast_as((b, v.dim(0)?))?.contiguous()
}

impl Affine {
    /// `x` `[B, N, W]` normalised over W.
    pub(super) fn apply(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let b = x.dim(0)?;
        let (shift, scale) = (per_image(&self.shift, b)?, per_image(&self.scale, b)?);
        match self.kind {
            NormKind::Layer => fused::modulated_norm(x, &shift, &scale, self.eps),
            NormKind::Rms => fused::modulated_rms_norm(x, &shift, &scale, self.eps),
        }
    }

    /// `x` `[B, W]` normalised over W.
    pub(super) fn apply_rows(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.apply(&x.unsqueeze(1)?)?.squeeze(1)
    }
}

/// Two linear layers with the model's activation between them; or SwiGLU: the first layer
/// gives a gate and a value (stacked into one product, gate first), and `silu(gate) * value`,
/// normed in EVA02's, goes on to the second.
pub(super) struct Mlp {
    fc1_w: Tensor,
    fc1_b: Tensor,
    fc2_w: Tensor,
    fc2_b: Tensor,
    swiglu: bool,
    /// The norm over the hidden width (EVA02's `scale_mlp`).
    norm: Option<Affine>,
}

impl Mlp {
    /// `x` `[B, N, W]` through the MLP.
    pub(super) fn forward(
        &self,
        x: &Tensor,
        activation: Activation,
        compute: DType,
    ) -> candle_core::Result<Tensor> {
        let y = match activation {
            _ if self.swiglu => {
                fused::silu_gate(&fused::linear(x, &self.fc1_w, &self.fc1_b, compute)?)?
            }
            Activation::Gelu => fused::linear_gelu(x, &self.fc1_w, &self.fc1_b, compute)?,
            Activation::QuickGelu => {
                fused::quick_gelu(&fused::linear(x, &self.fc1_w, &self.fc1_b, compute)?)?
            }
            Activation::GeluTanh => fused::linear(x, &self.fc1_w, &self.fc1_b, compute)?.gelu()?,
        };
        let y = match &self.norm {
            Some(norm) => norm.apply(&y)?,
            None => y,
        };
        fused::linear(&y, &self.fc2_w, &self.fc2_b, compute)
    }
}

/// timm's `AttentionPoolLatent` (`global_pool = "map"`): a learnt query attends over the
/// tokens, then a residual MLP behind a norm (none in AIMv2's transformers head).
pub(super) struct AttentionPool {
    /// The query, projected once: `[W]`.
    pub(super) query: Tensor,
    pub(super) kv_w: Tensor,
    pub(super) kv_b: Tensor,
    pub(super) proj_w: Tensor,
    pub(super) proj_b: Tensor,
    /// The residual MLP and the norm before it.
    pub(super) mlp: Option<(Affine, Mlp)>,
}

/// The weights, taken by name (every one was checked by `TimmFolder::open`).
pub(super) struct Weights {
    tensors: HashMap<String, Tensor>,
    /// The model's norms, for the norms built from them.
    norm_kind: NormKind,
    norm_eps: f64,
}

impl Weights {
    /// The tensors of a folder, for a model whose norms are `norm_kind` of epsilon `norm_eps`.
    pub(super) fn new(
        tensors: HashMap<String, Tensor>,
        norm_kind: NormKind,
        norm_eps: f64,
    ) -> Self {
        Weights {
            tensors,
            norm_kind,
            norm_eps,
        }
    }

    /// The tensor `name`, taken out.
    pub(super) fn take(&mut self, name: &str) -> Result<Tensor> {
        self.tensors
            .remove(name)
            .ok_or_else(|| Error::internal(format!("tensor '{name}' is missing")))
    }

    /// The bias `name` of a layer whose weight is `weight` `[out, in]`, or zeros for a model
    /// without biases there.
    pub(super) fn bias_of(&mut self, name: &str, weight: &Tensor, present: bool) -> Result<Tensor> {
        match present {
            true => self.take(name),
            false => {
                let out = weight.dim(0).map_err(candle_err)?;
                Tensor::zeros(out, weight.dtype(), weight.device()).map_err(candle_err)
            }
        }
    }

    /// The norm `name`, of the model's kind.
    pub(super) fn affine(&mut self, name: &str) -> Result<Affine> {
        let weight = self.take(&format!("{name}.weight"))?;
        let shift = match self.norm_kind {
            NormKind::Layer => self.take(&format!("{name}.bias"))?,
            NormKind::Rms => weight.zeros_like().map_err(candle_err)?,
        };
        Ok(Affine {
            shift,
            scale: (weight - 1.0).map_err(candle_err)?,
            eps: self.norm_eps,
            kind: self.norm_kind,
        })
    }

    /// A block's MLP `name`, in the form `args` gives it.
    pub(super) fn mlp(&mut self, name: &str, args: &VitArgs) -> Result<Mlp> {
        let Some(swiglu) = args.swiglu else {
            return self.plain_mlp(name, args.proj_bias);
        };
        let layer = |w: &mut Weights, fc: &str| -> Result<(Tensor, Tensor)> {
            let weight = w.take(&format!("{name}.{fc}.weight"))?;
            let bias = w.bias_of(&format!("{name}.{fc}.bias"), &weight, args.proj_bias)?;
            Ok((weight, bias))
        };
        let (fc1_w, fc1_b) = match swiglu.packed {
            true => layer(self, "fc1")?,
            false => {
                let (gate_w, gate_b) = layer(self, "fc1_g")?;
                let (value_w, value_b) = layer(self, "fc1_x")?;
                let cat = |a, b| Tensor::cat(&[a, b], 0).map_err(candle_err);
                (cat(gate_w, value_w)?, cat(gate_b, value_b)?)
            }
        };
        let norm = match swiglu.norm {
            true => Some(self.affine(&format!("{name}.norm"))?),
            false => None,
        };
        let (fc2_w, fc2_b) = layer(self, "fc2")?;
        Ok(Mlp {
            fc1_w,
            fc1_b,
            norm,
            fc2_w,
            fc2_b,
            swiglu: true,
        })
    }

    /// The two-layer MLP `name` (`fc1`, `fc2`; with biases or not).
    fn plain_mlp(&mut self, name: &str, biases: bool) -> Result<Mlp> {
        let fc1_w = self.take(&format!("{name}.fc1.weight"))?;
        let fc2_w = self.take(&format!("{name}.fc2.weight"))?;
        Ok(Mlp {
            fc1_b: self.bias_of(&format!("{name}.fc1.bias"), &fc1_w, biases)?,
            fc2_b: self.bias_of(&format!("{name}.fc2.bias"), &fc2_w, biases)?,
            fc1_w,
            fc2_w,
            swiglu: false,
            norm: None,
        })
    }

    /// The attention `attn`'s query-key-value projection as one `[3W, W]` weight and `[3W]`
    /// bias: timm's `qkv` (with `qkv.bias`, or eva.py's query and value biases around a zero
    /// key bias), or eva.py's separate `q_proj`, `k_proj` (no bias) and `v_proj` stacked; zero
    /// biases for a model without them.
    pub(super) fn qkv(
        &mut self,
        args: &VitArgs,
        attn: &str,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let zeros = |n: usize| Tensor::zeros(n, DType::F32, device).map_err(candle_err);
        let weight = match args.qkv_split {
            true => {
                let parts = ["q_proj", "k_proj", "v_proj"]
                    .iter()
                    .map(|p| self.take(&format!("{attn}.{p}.weight")))
                    .collect::<Result<Vec<_>>>()?;
                Tensor::cat(&parts, 0).map_err(candle_err)?
            }
            false => self.take(&format!("{attn}.qkv.weight"))?,
        };
        let (q, v) = match args.qkv_split {
            true => ("q_proj.bias", "v_proj.bias"),
            false => ("q_bias", "v_bias"),
        };
        let bias = match (args.qkv_bias, args.naming, args.qkv_split) {
            (false, _, _) => zeros(3 * args.width)?,
            (true, Naming::Vit | Naming::EvaRope, false) => {
                self.take(&format!("{attn}.qkv.bias"))?
            }
            (true, _, _) => {
                let q = self.take(&format!("{attn}.{q}"))?;
                let v = self.take(&format!("{attn}.{v}"))?;
                Tensor::cat(&[q, zeros(args.width)?, v], 0).map_err(candle_err)?
            }
        };
        Ok((weight, bias))
    }

    /// The attention pooling's weights, its query projected once (it is the same for every
    /// image).
    pub(super) fn attention_pool(&mut self, args: &VitArgs) -> Result<AttentionPool> {
        let latent = self.take("attn_pool.latent")?;
        let (q_w, q_b) = (
            self.take("attn_pool.q.weight")?,
            self.take("attn_pool.q.bias")?,
        );
        let width = latent.dim(2).map_err(candle_err)?;
        let query = latent
            .reshape((1, width))
            .and_then(|l| l.matmul(&q_w.t()?))
            .and_then(|q| q.broadcast_add(&q_b))
            .and_then(|q| q.reshape(width))
            .map_err(candle_err)?;
        Ok(AttentionPool {
            query,
            kv_w: self.take("attn_pool.kv.weight")?,
            kv_b: self.take("attn_pool.kv.bias")?,
            proj_w: self.take("attn_pool.proj.weight")?,
            proj_b: self.take("attn_pool.proj.bias")?,
            mlp: match args.attn_pool_mlp {
                true => Some((
                    self.affine("attn_pool.norm")?,
                    self.plain_mlp("attn_pool.mlp", true)?,
                )),
                false => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The MLP's activations against their formulas (through identity layers): the tanh GELU
    /// and erf GELU differ by ~1e-4 at |x| ~ 2, under what a comparison of whole features
    /// with timm resolves, so each is checked on its own here.
    #[test]
    fn mlp_activations_follow_their_formulas() {
        let dev = Device::Cpu;
        let xs: Vec<f32> = (0..33).map(|i| -4.0 + 0.25 * i as f32).collect();
        let n = xs.len();
        let eye = Tensor::eye(n, DType::F32, &dev).unwrap();
        let zero = Tensor::zeros(n, DType::F32, &dev).unwrap();
        let mlp = Mlp {
            fc1_w: eye.clone(),
            fc1_b: zero.clone(),
            fc2_w: eye,
            fc2_b: zero,
            swiglu: false,
            norm: None,
        };
        let x = Tensor::from_vec(xs.clone(), (1, 1, n), &dev).unwrap();
        let run = |a| -> Vec<f32> {
            let y = mlp.forward(&x, a, DType::F32).unwrap();
            y.flatten_all().unwrap().to_vec1().unwrap()
        };
        let tanh_gelu = |x: f64| {
            0.5 * x
                * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
        };
        let quick_gelu = |x: f64| x / (1.0 + (-1.702 * x).exp());
        let (tanh, quick, erf) = (
            run(Activation::GeluTanh),
            run(Activation::QuickGelu),
            run(Activation::Gelu),
        );
        for (i, &x) in xs.iter().enumerate() {
            let x = x as f64;
            assert!(
                (tanh[i] as f64 - tanh_gelu(x)).abs() < 2e-6,
                "tanh GELU at {x}"
            );
            assert!(
                (quick[i] as f64 - quick_gelu(x)).abs() < 2e-6,
                "QuickGELU at {x}"
            );
        }
        // The exact GELU is another function: told apart from the tanh one where they differ.
        let at2 = xs.iter().position(|&x| x == 2.0).unwrap();
        assert!(
            (erf[at2] - tanh[at2]).abs() > 5e-5,
            "{} {}",
            erf[at2],
            tanh[at2]
        );
    }
}
