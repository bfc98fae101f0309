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
}

impl DenoiserConfig {
    /// A named preset (`tiny`, `small`, `base`, `large`) for the given patch geometry.
    ///
    /// - `tiny`: width 128, 3 + 3 blocks, 4 heads, 1.8M parameters at patch 4 (sized so 32x32
    ///   images train usefully on 2 CPU cores);
    /// - `small`: ViT-S encoder (384 x 12, 6 heads) + an equal decoder;
    /// - `base`: ViT-B encoder (768 x 12, 12 heads) + an equal decoder;
    /// - `large`: ViT-L encoder (1024 x 24, 16 heads) + an equal decoder.
    pub fn preset(name: &str, patch_dim: usize, grid: usize) -> Result<Self> {
        let (width, depth, heads) = match name {
            "tiny" => (128, 3, 4),
            "small" => (384, 12, 6),
            "base" => (768, 12, 12),
            "large" => (1024, 24, 16),
            other => {
                return Err(Error::msg(format!(
                    "unknown preset '{other}' (tiny, small, base, large)"
                )))
            }
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
        };
        config.validate()?;
        Ok(config)
    }

    /// Check that the sizes fit together.
    pub fn validate(&self) -> Result<()> {
        if self.heads == 0 || !self.width.is_multiple_of(self.heads) {
            return Err(Error::msg(format!(
                "{} heads do not divide width {}",
                self.heads, self.width
            )));
        }
        if !self.width.is_multiple_of(4) {
            return Err(Error::msg(format!(
                "width {} must be a multiple of 4 (2D sin-cos position embedding)",
                self.width
            )));
        }
        if !self.time_embed_dim.is_multiple_of(2) || self.patch_dim == 0 || self.grid == 0 {
            return Err(Error::msg(
                "time_embed_dim must be even, patch_dim and grid positive",
            ));
        }
        if self.encoder_depth == 0 {
            return Err(Error::msg("the encoder needs at least one block"));
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
}
