//! Sizes of the denoiser, with named presets.

use ldae_pipeline::{Error, Result};

/// The denoiser's sizes. Encoder = the first `encoder_depth` blocks, decoder = the next
/// `decoder_depth` (the recipe uses equal halves of the same width).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DenoiserConfig {
    /// Values per patch token, D = p * p * C.
    pub patch_dim: usize,
    /// Patches per image side, S / p (tokens N = grid^2).
    pub grid: usize,
    /// Token width.
    pub width: usize,
    /// Blocks of the encoder.
    pub encoder_depth: usize,
    /// Blocks of the decoder.
    pub decoder_depth: usize,
    /// Attention heads (must divide `width`).
    pub heads: usize,
    /// MLP hidden width as a multiple of `width`.
    pub mlp_ratio: usize,
    /// Width of the sinusoidal noise-level embedding.
    pub time_embed_dim: usize,
    /// Precision of the matrix products (weights, norms and softmax stay in f32).
    #[serde(default)]
    pub precision: Precision,
    /// Each block's conditioning network (absent in configs written before it existed: DiT's).
    #[serde(default)]
    pub conditioning: Conditioning,
}

/// The network that turns the conditioning vector `SiLU(c)` into a block's six adaLN
/// modulations (shift, scale, gate for attention and MLP).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Conditioning {
    /// DiT's: one `Linear(width, 6 width)` per block (6 width^2 weights).
    #[default]
    Dit,
    /// The paper's (appendix A): a two-layer MLP with a hidden width of width / 4,
    /// `Linear(width, width/4) -> SiLU -> Linear(width/4, 6 width)` per block (1.75 width^2
    /// weights); the last layer zero-initialised (adaLN-Zero), the first Xavier-uniform.
    Mlp,
}

/// Precision of the network's matrix products.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in the weights' own type (f32; f64 in the gradient tests).
    #[default]
    F32,
    /// Mixed precision: inputs and weights of every matrix product cast to bf16, the products
    /// cast back to f32; master weights, optimizer state, LayerNorm, softmax, residuals and the
    /// loss stay in f32.
    Bf16,
}

impl Precision {
    /// The device's default: bf16 on a GPU, f32 on CPU (where bf16 products are emulated and
    /// slower).
    pub fn default_for(device: &candle_core::Device) -> Precision {
        match device.is_cuda() {
            true => Precision::Bf16,
            false => Precision::F32,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(Error::invalid(format!(
                "--precision {other}: expected f32 or bf16"
            ))),
        }
    }
}

/// A network size preset.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Width 128, 3 + 3 blocks, 4 heads: 1.8M parameters at patch 4 (sized so 32x32 images
    /// train usefully on 2 CPU cores).
    #[default]
    Tiny,
    /// A ViT-S encoder (384 x 12, 6 heads) and an equal decoder.
    Small,
    /// A ViT-B encoder (768 x 12, 12 heads) and an equal decoder.
    Base,
    /// A ViT-L encoder (1024 x 24, 16 heads) and an equal decoder.
    Large,
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&ldae_pipeline::names::name_of(self))
    }
}

impl DenoiserConfig {
    /// The network of `preset` for the given patch geometry.
    pub fn preset(preset: Preset, patch_dim: usize, grid: usize) -> Result<Self> {
        let (width, depth, heads) = match preset {
            Preset::Tiny => (128, 3, 4),
            Preset::Small => (384, 12, 6),
            Preset::Base => (768, 12, 12),
            Preset::Large => (1024, 24, 16),
        };
        let config = DenoiserConfig {
            patch_dim,
            grid,
            width,
            encoder_depth: depth,
            decoder_depth: depth,
            heads,
            mlp_ratio: 4,
            time_embed_dim: 256,
            precision: Precision::F32,
            conditioning: Conditioning::Dit,
        };
        config.validate()?;
        Ok(config)
    }

    /// Check that the sizes fit together.
    pub fn validate(&self) -> Result<()> {
        if self.heads == 0 || !self.width.is_multiple_of(self.heads) {
            return Err(Error::invalid(format!(
                "{} heads do not divide width {}",
                self.heads, self.width
            )));
        }
        if !self.width.is_multiple_of(4) {
            return Err(Error::invalid(format!(
                "width {} must be a multiple of 4 (2D sin-cos position embedding)",
                self.width
            )));
        }
        if !self.time_embed_dim.is_multiple_of(2) || self.patch_dim == 0 || self.grid == 0 {
            return Err(Error::invalid(
                "time_embed_dim must be even, patch_dim and grid positive",
            ));
        }
        if self.encoder_depth == 0 {
            return Err(Error::invalid("the encoder needs at least one block"));
        }
        Ok(())
    }

    /// Tokens per image.
    pub fn tokens(&self) -> usize {
        self.grid * self.grid
    }

    /// All blocks, encoder then decoder.
    pub fn depth(&self) -> usize {
        self.encoder_depth + self.decoder_depth
    }

    /// Floating-point operations (two per multiply-add) of one image's forward pass through
    /// the patch embedding and the first `blocks` blocks, plus the output head when
    /// `with_head`: the products every token goes through (qkv, projection, MLP, and
    /// attention's `q k^T` and `a v`). The per-image conditioning (time embedding, adaLN) is
    /// left out: under 1% of the total at every preset. Training is about three times the
    /// full forward pass (the backward pass computes two products for each of the forward's);
    /// throughput benches divide these by the machine's multiply-add peak.
    pub fn forward_flops(&self, blocks: usize, with_head: bool) -> f64 {
        let (w, n, d) = (
            self.width as f64,
            self.tokens() as f64,
            self.patch_dim as f64,
        );
        let hidden = w * self.mlp_ratio as f64;
        let per_block = 2.0 * (3.0 * w * w + w * w + 2.0 * w * hidden) + 2.0 * 2.0 * n * w;
        let ends = 2.0 * d * w * if with_head { 2.0 } else { 1.0 };
        n * (blocks as f64 * per_block + ends)
    }
}
