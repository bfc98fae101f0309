//! A timm `VisionTransformer` forward pass on the denoiser's fused CPU kernels.
//!
//! A timm block, `x + ls * f(LayerNorm(x))`, is the denoiser's adaLN block with constant
//! modulation: the LayerNorm's bias is the shift, its weight minus one the scale, and the
//! LayerScale gamma (or one) the gate. Exact GELU and the qkv bias are the same on both sides,
//! so the import runs on the kernels the l-DAE encoder runs on (the norm epsilon is the
//! model's; QuickGELU, of the OpenAI CLIP towers, runs after the fused product).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use ldae_pipeline::{Error, Result};

use super::architectures::{Activation, VitArgs};
use super::folder::TimmFolder;
use super::resample::resample_grid;
use crate::denoiser::{fused, Precision};
use ldae_operators::pca::candle_err;

/// A LayerNorm with affine parameters, as the fused kernel's shift and scale.
struct Affine {
    /// The bias, `[W]`.
    shift: Tensor,
    /// The weight minus one, `[W]`.
    scale: Tensor,
    eps: f64,
}

/// `v` `[W]` repeated for a batch of `b`: `[b, W]`.
fn per_image(v: &Tensor, b: usize) -> candle_core::Result<Tensor> {
    v.unsqueeze(0)?.broadcast_as((b, v.dim(0)?))?.contiguous()
}

impl Affine {
    /// `x` `[B, N, W]` normalised over W.
    fn apply(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let b = x.dim(0)?;
        fused::modulated_norm(
            x,
            &per_image(&self.shift, b)?,
            &per_image(&self.scale, b)?,
            self.eps,
        )
    }

    /// `x` `[B, W]` normalised over W.
    fn apply_rows(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.apply(&x.unsqueeze(1)?)?.squeeze(1)
    }
}

/// One pre-norm transformer block.
struct VitBlock {
    norm1: Affine,
    qkv_w: Tensor,
    qkv_b: Tensor,
    proj_w: Tensor,
    proj_b: Tensor,
    ls1: Tensor,
    norm2: Affine,
    fc1_w: Tensor,
    fc1_b: Tensor,
    fc2_w: Tensor,
    fc2_b: Tensor,
    ls2: Tensor,
}

/// A timm ViT, ready to run.
pub struct Vit {
    args: VitArgs,
    grid: usize,
    /// The patch-embedding convolution as a `[W, p*p*C]` matrix over ldae's patch layout.
    patch_w: Tensor,
    patch_b: Tensor,
    /// Class then register tokens, `[1, P, W]` (`None` without any).
    prefix: Option<Tensor>,
    /// The position embedding at this grid, `[1, L, W]` (L covers the prefix tokens unless
    /// the model has `no_embed_class`).
    pos: Tensor,
    norm_pre: Option<Affine>,
    blocks: Vec<VitBlock>,
    /// The norm after the last block (`None` when the model norms after pooling).
    norm: Option<Affine>,
    /// The norm after pooling (`avg` models).
    fc_norm: Option<Affine>,
    compute: DType,
}

/// The weights, taken by name (every one was checked by [`TimmFolder::open`]), and the
/// model's norm epsilon.
struct Weights(HashMap<String, Tensor>, f64);

impl Weights {
    fn take(&mut self, name: &str) -> Result<Tensor> {
        self.0
            .remove(name)
            .ok_or_else(|| Error::internal(format!("tensor '{name}' is missing")))
    }

    fn affine(&mut self, name: &str) -> Result<Affine> {
        let weight = self.take(&format!("{name}.weight"))?;
        Ok(Affine {
            shift: self.take(&format!("{name}.bias"))?,
            scale: (weight - 1.0).map_err(candle_err)?,
            eps: self.1,
        })
    }
}

impl Vit {
    /// The network of `folder` on `device`, for a grid of `grid` x `grid` patches (its
    /// position embedding resampled as timm does when that differs from the trained grid).
    pub fn load(
        folder: &TimmFolder,
        grid: usize,
        device: &Device,
        precision: Precision,
    ) -> Result<Vit> {
        let args = folder.args.clone();
        let mut w = Weights(folder.load_weights(device)?, args.norm_eps);
        let width = args.width;
        // Conv weight [W, C, p, p] -> [W, p, p, C] -> [W, p*p*C]: ldae's patch element order.
        let conv = w.take("patch_embed.proj.weight")?;
        let patch_w = conv
            .permute((0, 2, 3, 1))
            .and_then(|t| t.contiguous())
            .and_then(|t| t.reshape((width, args.patch * args.patch * args.in_chans)))
            .map_err(candle_err)?;
        let patch_b = match w.take("patch_embed.proj.bias") {
            Ok(b) => b,
            Err(_) => Tensor::zeros(width, DType::F32, device).map_err(candle_err)?,
        };
        let mut prefix = Vec::new();
        if args.class_token {
            prefix.push(w.take("cls_token")?);
        }
        if args.reg_tokens > 0 {
            prefix.push(w.take("reg_token")?);
        }
        let prefix = match prefix.is_empty() {
            true => None,
            false => Some(Tensor::cat(&prefix, 1).map_err(candle_err)?),
        };
        let pos = resampled_position(&args, w.take("pos_embed")?, folder.grid, grid)?;
        let norm_pre = match args.pre_norm {
            true => Some(w.affine("norm_pre")?),
            false => None,
        };
        let mut blocks = Vec::with_capacity(args.depth);
        for i in 0..args.depth {
            let b = format!("blocks.{i}");
            let ones = || Tensor::ones(width, DType::F32, device).map_err(candle_err);
            let gamma = |w: &mut Weights, name: &str| match args.init_values {
                Some(_) => w.take(&format!("{b}.{name}.gamma")),
                None => ones(),
            };
            blocks.push(VitBlock {
                norm1: w.affine(&format!("{b}.norm1"))?,
                qkv_w: w.take(&format!("{b}.attn.qkv.weight"))?,
                qkv_b: match args.qkv_bias {
                    true => w.take(&format!("{b}.attn.qkv.bias"))?,
                    false => Tensor::zeros(3 * width, DType::F32, device).map_err(candle_err)?,
                },
                proj_w: w.take(&format!("{b}.attn.proj.weight"))?,
                proj_b: w.take(&format!("{b}.attn.proj.bias"))?,
                ls1: gamma(&mut w, "ls1")?,
                norm2: w.affine(&format!("{b}.norm2"))?,
                fc1_w: w.take(&format!("{b}.mlp.fc1.weight"))?,
                fc1_b: w.take(&format!("{b}.mlp.fc1.bias"))?,
                fc2_w: w.take(&format!("{b}.mlp.fc2.weight"))?,
                fc2_b: w.take(&format!("{b}.mlp.fc2.bias"))?,
                ls2: gamma(&mut w, "ls2")?,
            });
        }
        let (norm, fc_norm) = match (args.final_norm, args.uses_fc_norm()) {
            (false, _) => (None, None),
            (true, true) => (None, Some(w.affine("fc_norm")?)),
            (true, false) => (Some(w.affine("norm")?), None),
        };
        Ok(Vit {
            compute: match precision {
                Precision::F32 => DType::F32,
                Precision::Bf16 => DType::BF16,
            },
            grid,
            patch_w,
            patch_b,
            prefix,
            pos,
            norm_pre,
            blocks,
            norm,
            fc_norm,
            args,
        })
    }

    /// The settings.
    pub fn args(&self) -> &VitArgs {
        &self.args
    }

    /// Patches per side the network runs at.
    pub fn grid(&self) -> usize {
        self.grid
    }

    /// Tokens per image after the prefix (class, registers) is added.
    pub fn tokens(&self) -> usize {
        self.grid * self.grid + self.args.prefix_tokens()
    }

    /// Tokens after each of `blocks` (1 = the first), from one pass: `x` `[B, N, D]` patches in
    /// ldae's layout, each result `[B, P + N, W]`, prefix tokens first. After the last block
    /// the model's final `norm` is applied, as in timm's `forward_features`; inner blocks give
    /// the raw block output (timm's `forward_intermediates(norm=False)`).
    pub fn tokens_at(&self, x: &Tensor, blocks: &[usize]) -> candle_core::Result<Vec<Tensor>> {
        let b = x.dim(0)?;
        let last = blocks.iter().copied().max().unwrap_or(0);
        let patches = fused::linear(x, &self.patch_w, &self.patch_b, self.compute)?;
        let with_prefix = |h: Tensor| -> candle_core::Result<Tensor> {
            match &self.prefix {
                None => Ok(h),
                Some(p) => {
                    let p = p.broadcast_as((b, p.dim(1)?, p.dim(2)?))?.contiguous()?;
                    Tensor::cat(&[&p, &h], 1)
                }
            }
        };
        let mut h = if self.args.no_embed_class {
            with_prefix(fused::add_position(&patches, &self.pos)?)?
        } else {
            fused::add_position(&with_prefix(patches)?, &self.pos)?
        };
        if let Some(norm) = &self.norm_pre {
            h = norm.apply(&h)?;
        }
        let mut after = Vec::with_capacity(last);
        for block in self.blocks.iter().take(last) {
            h = self.block(block, &h)?;
            after.push(h.clone());
        }
        blocks
            .iter()
            .map(|&k| match (&self.norm, k == self.args.depth) {
                (Some(norm), true) => norm.apply(&after[k - 1]),
                _ => Ok(after[k - 1].clone()),
            })
            .collect()
    }

    fn block(&self, b: &VitBlock, x: &Tensor) -> candle_core::Result<Tensor> {
        let n = x.dim(0)?;
        let y = fused::attention(
            &b.norm1.apply(x)?,
            &b.qkv_w,
            &b.qkv_b,
            self.args.heads,
            self.compute,
        )?;
        let y = fused::linear(&y, &b.proj_w, &b.proj_b, self.compute)?;
        let x = fused::gated_residual(x, &y, &per_image(&b.ls1, n)?)?;
        let y = b.norm2.apply(&x)?;
        let y = match self.args.activation {
            Activation::Gelu => fused::linear_gelu(&y, &b.fc1_w, &b.fc1_b, self.compute)?,
            Activation::QuickGelu => {
                let y = fused::linear(&y, &b.fc1_w, &b.fc1_b, self.compute)?;
                (&y * candle_nn::ops::sigmoid(&(&y * 1.702)?)?)?
            }
        };
        let y = fused::linear(&y, &b.fc2_w, &b.fc2_b, self.compute)?;
        fused::gated_residual(&x, &y, &per_image(&b.ls2, n)?)
    }

    /// The class token of tokens `h` `[B, L, W]`, `[B, W]` (with `fc_norm` after the last
    /// block, as timm's `forward_head(pre_logits=True)`).
    pub fn class_token(&self, h: &Tensor, last: bool) -> candle_core::Result<Tensor> {
        self.head_norm(h.narrow(1, 0, 1)?.squeeze(1)?, last)
    }

    /// The mean of the patch tokens of `h` `[B, L, W]` (prefix tokens left out), `[B, W]`
    /// (with `fc_norm` after the last block).
    pub fn mean_patch_tokens(&self, h: &Tensor, last: bool) -> candle_core::Result<Tensor> {
        let p = self.args.prefix_tokens();
        let patches = h.narrow(1, p, h.dim(1)? - p)?;
        self.head_norm(fused::mean_tokens(&patches)?, last)
    }

    fn head_norm(&self, pooled: Tensor, last: bool) -> candle_core::Result<Tensor> {
        match (&self.fc_norm, last) {
            (Some(norm), true) => norm.apply_rows(&pooled),
            _ => Ok(pooled),
        }
    }
}

/// The position embedding `[1, L, W]` for a `grid` x `grid` patch grid, resampled from the
/// trained `trained` grid when they differ (prefix positions kept as they are).
fn resampled_position(args: &VitArgs, pos: Tensor, trained: usize, grid: usize) -> Result<Tensor> {
    if grid == trained {
        return Ok(pos);
    }
    let width = args.width;
    let prefix = match args.no_embed_class {
        true => 0,
        false => args.prefix_tokens(),
    };
    let values = pos
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(candle_err)?;
    let mut out = values[..prefix * width].to_vec();
    out.extend(resample_grid(
        &values[prefix * width..],
        trained,
        grid,
        width,
    ));
    Tensor::from_vec(out, (1, prefix + grid * grid, width), pos.device()).map_err(candle_err)
}
