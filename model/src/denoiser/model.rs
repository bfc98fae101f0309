//! The denoiser network (DiT without class conditioning).
//!
//! Tokens: a linear embedding of each noisy patch plus a fixed 2D sin-cos position embedding, no
//! class token. Conditioning: the noise level as a continuous timestep `t = sigma (T-1) / sqrt 2`,
//! embedded sinusoidally (256-d) and by a 2-layer MLP into `c`. Blocks: pre-norm (LayerNorm
//! without affine parameters) self-attention and MLP (ratio 4, exact GELU), each modulated by
//! adaLN-Zero: `x + gate * f(norm(x) * (1 + scale) + shift)` with shift/scale/gate from
//! `Linear(SiLU(c))` (or, with `Conditioning::Mlp`, the paper's two-layer MLP of hidden width
//! width / 4), zero-initialised so every block starts as the identity. Final layer:
//! adaLN-modulated norm then a linear map to the D pixel values of each patch.

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Linear, VarBuilder};

use super::config::{Conditioning, DenoiserConfig, Precision};
use super::fused;

type Result<T> = candle_core::Result<T>;

const NORM_EPS: f64 = 1e-6;

/// The type matrix products run in: the weights' own, or bf16 under mixed precision.
fn compute_dtype(precision: Precision, weights: DType) -> DType {
    match precision {
        Precision::F32 => weights,
        Precision::Bf16 => DType::BF16,
    }
}

/// A linear layer whose product runs in the compute type (weights kept in their own type, so
/// under mixed precision they are the f32 master copy and gradients reach them in f32).
struct Dense {
    inner: Linear,
    compute: DType,
}

fn linear(inputs: usize, outputs: usize, precision: Precision, vb: VarBuilder) -> Result<Dense> {
    let compute = compute_dtype(precision, vb.dtype());
    Ok(Dense {
        inner: candle_nn::linear(inputs, outputs, vb)?,
        compute,
    })
}

impl Dense {
    fn bias(&self) -> Result<&Tensor> {
        self.inner
            .bias()
            .ok_or_else(|| candle_core::Error::Msg("linear layer without bias".into()))
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        fused::linear(x, self.inner.weight(), self.bias()?, self.compute)
    }

    /// The layer followed by exact GELU.
    fn forward_gelu(&self, x: &Tensor) -> Result<Tensor> {
        fused::linear_gelu(x, self.inner.weight(), self.bias()?, self.compute)
    }
}

/// Sinusoidal embedding of continuous timesteps `t` (`[B]`) into `dim` values (cos, then sin).
pub fn timestep_embedding(t: &Tensor, dim: usize) -> Result<Tensor> {
    let half = dim / 2;
    let freqs: Vec<f32> = (0..half)
        .map(|i| (-(10000f32.ln()) * i as f32 / half as f32).exp())
        .collect();
    let freqs = Tensor::from_vec(freqs, (1, half), t.device())?.to_dtype(t.dtype())?;
    let args = t.unsqueeze(1)?.broadcast_mul(&freqs)?;
    Tensor::cat(&[args.cos()?, args.sin()?], D::Minus1)
}

/// The fixed 2D sin-cos position embedding, `[grid^2, width]`: the first half of each vector
/// encodes the token's row, the second half its column (MAE's construction).
pub fn position_embedding(grid: usize, width: usize) -> Vec<f32> {
    let quarter = width / 4;
    let omega: Vec<f64> = (0..quarter)
        .map(|i| 1.0 / 10000f64.powf(i as f64 / quarter as f64))
        .collect();
    let mut out = Vec::with_capacity(grid * grid * width);
    for row in 0..grid {
        for col in 0..grid {
            for pos in [row, col] {
                out.extend(omega.iter().map(|w| (pos as f64 * w).sin() as f32));
                out.extend(omega.iter().map(|w| (pos as f64 * w).cos() as f32));
            }
        }
    }
    out
}

/// Multi-head self-attention.
struct Attention {
    qkv: Dense,
    proj: Dense,
    heads: usize,
    compute: DType,
}

impl Attention {
    fn new(width: usize, heads: usize, precision: Precision, vb: VarBuilder) -> Result<Self> {
        Ok(Attention {
            compute: compute_dtype(precision, vb.dtype()),
            qkv: linear(width, 3 * width, precision, vb.pp("qkv"))?,
            proj: linear(width, width, precision, vb.pp("proj"))?,
            heads,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let qkv = &self.qkv.inner;
        let bias = self.qkv.bias()?;
        let out = fused::attention(x, qkv.weight(), bias, self.heads, self.compute)?;
        self.proj.forward(&out)
    }
}

/// The MLP of a block.
struct Mlp {
    fc1: Dense,
    fc2: Dense,
}

impl Mlp {
    fn new(width: usize, hidden: usize, precision: Precision, vb: VarBuilder) -> Result<Self> {
        Ok(Mlp {
            fc1: linear(width, hidden, precision, vb.pp("fc1"))?,
            fc2: linear(hidden, width, precision, vb.pp("fc2"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // Exact (erf) GELU, as PyTorch's nn.GELU().
        self.fc2.forward(&self.fc1.forward_gelu(x)?)
    }
}

/// One transformer block with adaLN-Zero conditioning.
pub struct Block {
    attn: Attention,
    mlp: Mlp,
    /// The hidden layer of the paper's conditioning MLP (`None`: DiT's single layer). Not named
    /// `ada_ln*`: it must not start at zero, or no gradient would ever reach either layer.
    cond_hidden: Option<Dense>,
    ada_ln: Dense,
}

impl Block {
    fn new(cfg: &DenoiserConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Block {
            attn: Attention::new(cfg.width, cfg.heads, cfg.precision, vb.pp("attn"))?,
            mlp: Mlp::new(
                cfg.width,
                cfg.width * cfg.mlp_ratio,
                cfg.precision,
                vb.pp("mlp"),
            )?,
            cond_hidden: match cfg.conditioning {
                Conditioning::Dit => None,
                Conditioning::Mlp => Some(linear(
                    cfg.width,
                    cfg.width / 4,
                    cfg.precision,
                    vb.pp("cond_hidden"),
                )?),
            },
            ada_ln: linear(
                match cfg.conditioning {
                    Conditioning::Dit => cfg.width,
                    Conditioning::Mlp => cfg.width / 4,
                },
                6 * cfg.width,
                cfg.precision,
                vb.pp("ada_ln"),
            )?,
        })
    }

    /// The six modulations (shift, scale, gate of attention, then of the MLP), each `[B, W]`,
    /// for conditioning vectors `c` `[B, W]` (already through SiLU).
    pub fn modulation(&self, c: &Tensor) -> Result<Vec<Tensor>> {
        let m = match &self.cond_hidden {
            None => self.ada_ln.forward(c)?,
            Some(hidden) => self.ada_ln.forward(&hidden.forward(c)?.silu()?)?,
        };
        m.chunk(6, D::Minus1)
    }

    /// The block's weights as a plain pre-norm ViT block at the fixed modulation `m` (from
    /// [`Block::modulation`] of one conditioning vector): timm's names under `prefix`, the
    /// LayerNorm affines `1 + scale` and `shift`, the LayerScale gammas the gates.
    pub fn as_vit_block(&self, prefix: &str, m: &[Tensor]) -> Result<Vec<(String, Tensor)>> {
        let row = |t: &Tensor| t.flatten_all();
        let mut out = vec![
            (format!("{prefix}.norm1.weight"), (row(&m[1])? + 1.0)?),
            (format!("{prefix}.norm1.bias"), row(&m[0])?),
            (format!("{prefix}.ls1.gamma"), row(&m[2])?),
            (format!("{prefix}.norm2.weight"), (row(&m[4])? + 1.0)?),
            (format!("{prefix}.norm2.bias"), row(&m[3])?),
            (format!("{prefix}.ls2.gamma"), row(&m[5])?),
        ];
        for (name, dense) in [
            ("attn.qkv", &self.attn.qkv),
            ("attn.proj", &self.attn.proj),
            ("mlp.fc1", &self.mlp.fc1),
            ("mlp.fc2", &self.mlp.fc2),
        ] {
            out.push((
                format!("{prefix}.{name}.weight"),
                dense.inner.weight().clone(),
            ));
            out.push((format!("{prefix}.{name}.bias"), dense.bias()?.clone()));
        }
        Ok(out)
    }

    /// `x` `[B, N, W]`, `c` `[B, W]` (already through SiLU).
    pub fn forward(&self, x: &Tensor, c: &Tensor) -> Result<Tensor> {
        let m = self.modulation(c)?;
        let (shift_a, scale_a, gate_a) = (&m[0], &m[1], &m[2]);
        let (shift_m, scale_m, gate_m) = (&m[3], &m[4], &m[5]);
        let h = self
            .attn
            .forward(&fused::modulated_norm(x, shift_a, scale_a, NORM_EPS)?)?;
        let x = fused::gated_residual(x, &h, gate_a)?;
        let h = self
            .mlp
            .forward(&fused::modulated_norm(&x, shift_m, scale_m, NORM_EPS)?)?;
        fused::gated_residual(&x, &h, gate_m)
    }
}

/// The denoiser.
pub struct Denoiser {
    config: DenoiserConfig,
    patch_embed: Dense,
    position: Tensor,
    t_mlp1: Dense,
    t_mlp2: Dense,
    blocks: Vec<Block>,
    final_ada_ln: Dense,
    final_linear: Dense,
}

impl Denoiser {
    /// Build the network; parameters come from (or are created in) `vb`. Initialise a fresh
    /// model with [`super::initialise`].
    pub fn new(config: &DenoiserConfig, vb: VarBuilder) -> Result<Self> {
        config
            .validate()
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let w = config.width;
        let p = config.precision;
        let position = Tensor::from_vec(
            position_embedding(config.grid, w),
            (1, config.tokens(), w),
            vb.device(),
        )?
        .to_dtype(vb.dtype())?;
        let blocks = (0..config.depth())
            .map(|i| Block::new(config, vb.pp("blocks").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Denoiser {
            config: config.clone(),
            patch_embed: linear(config.patch_dim, w, p, vb.pp("patch_embed"))?,
            position,
            t_mlp1: linear(config.time_embed_dim, w, p, vb.pp("t_embedder").pp("mlp1"))?,
            t_mlp2: linear(w, w, p, vb.pp("t_embedder").pp("mlp2"))?,
            blocks,
            final_ada_ln: linear(w, 2 * w, p, vb.pp("final_layer").pp("ada_ln"))?,
            final_linear: linear(w, config.patch_dim, p, vb.pp("final_layer").pp("linear"))?,
        })
    }

    /// The sizes.
    pub fn config(&self) -> &DenoiserConfig {
        &self.config
    }

    /// The conditioning vector `SiLU(c)` of timesteps `t` `[B]`.
    fn condition(&self, t: &Tensor) -> Result<Tensor> {
        let e = timestep_embedding(t, self.config.time_embed_dim)?;
        let c = self.t_mlp2.forward(&self.t_mlp1.forward(&e)?.silu()?)?;
        c.silu()
    }

    /// Tokens after the first `blocks` blocks: `x` `[B, N, D]` noisy patches, `t` `[B]`.
    pub fn tokens_after(&self, x: &Tensor, t: &Tensor, blocks: usize) -> Result<Tensor> {
        let c = self.condition(t)?;
        let mut h = fused::add_position(&self.patch_embed.forward(x)?, &self.position)?;
        for block in self.blocks.iter().take(blocks) {
            h = block.forward(&h, &c)?;
        }
        Ok(h)
    }

    /// Tokens after each of `blocks` (sorted or not; each between 1 and the depth), in the order
    /// asked, from one pass through the network.
    pub fn tokens_at(&self, x: &Tensor, t: &Tensor, blocks: &[usize]) -> Result<Vec<Tensor>> {
        let last = blocks.iter().copied().max().unwrap_or(0);
        let c = self.condition(t)?;
        let mut h = fused::add_position(&self.patch_embed.forward(x)?, &self.position)?;
        let mut after = Vec::with_capacity(last);
        for block in self.blocks.iter().take(last) {
            h = block.forward(&h, &c)?;
            after.push(h.clone());
        }
        blocks.iter().map(|&b| Ok(after[b - 1].clone())).collect()
    }

    /// The representation: tokens after block `block` (default: the last encoder block),
    /// averaged over tokens, `[B, W]`.
    pub fn features(&self, x: &Tensor, t: &Tensor, block: Option<usize>) -> Result<Tensor> {
        let k = block.unwrap_or(self.config.encoder_depth);
        fused::mean_tokens(&self.tokens_after(x, t, k)?)
    }

    /// Predicted clean patches `[B, N, D]` from noisy patches `x` `[B, N, D]` at timesteps `t`.
    pub fn forward(&self, x: &Tensor, t: &Tensor) -> Result<Tensor> {
        let c = self.condition(t)?;
        let mut h = fused::add_position(&self.patch_embed.forward(x)?, &self.position)?;
        for block in &self.blocks {
            h = block.forward(&h, &c)?;
        }
        let m = self.final_ada_ln.forward(&c)?.chunk(2, D::Minus1)?;
        self.final_linear
            .forward(&fused::modulated_norm(&h, &m[0], &m[1], NORM_EPS)?)
    }

    /// The blocks, encoder first.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The patch embedding's weight `[W, D]` and bias `[W]`.
    pub fn patch_embedding(&self) -> Result<(Tensor, Tensor)> {
        Ok((
            self.patch_embed.inner.weight().clone(),
            self.patch_embed.bias()?.clone(),
        ))
    }

    /// The fixed position embedding `[1, N, W]`.
    pub fn position(&self) -> &Tensor {
        &self.position
    }

    /// The conditioning vector for timesteps `t`, as the blocks receive it (for tests).
    pub fn conditioning(&self, t: &Tensor) -> Result<Tensor> {
        self.condition(t)
    }
}

/// Continuous timesteps for noise levels `sigma`: `t = sigma (T-1) / sqrt 2`, so the
/// multi-level schedule's discrete t and any fixed sigma share one embedding.
pub fn timesteps(sigma: &[f32], dtype: DType, device: &Device) -> Result<Tensor> {
    let scale = (ldae_operators::noise::NOISE_STEPS - 1) as f32 / std::f32::consts::SQRT_2;
    let t: Vec<f32> = sigma.iter().map(|s| s * scale).collect();
    Tensor::from_vec(t, sigma.len(), device)?.to_dtype(dtype)
}
