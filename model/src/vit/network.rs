//! A timm `VisionTransformer` forward pass on the denoiser's fused CPU kernels.
//!
//! A timm block, `x + ls * f(LayerNorm(x))`, is the denoiser's adaLN block with constant
//! modulation: the LayerNorm's bias is the shift, its weight minus one the scale, and the
//! LayerScale gamma (or one) the gate. Exact GELU and the qkv bias are the same on both sides,
//! so the import runs on the kernels the l-DAE encoder runs on, with the model's norm epsilon.
//! QuickGELU (OpenAI's CLIP towers) and tanh GELU (some SigLIP towers) run after the fused
//! product; SigLIP's attention pooling and the classifier head run on candle's operations.
//! The rotary embeddings of eva.py's models (DINOv3, Perception Encoder, EVA02) turn the queries
//! and keys inside the fused attention, and BEiT's relative position bias shifts its scores;
//! SwiGLU MLPs run their two input layers as one product; AIMv2's RMSNorms run on the same norm
//! kernel, uncentred.

use candle_core::{DType, Device, Tensor};
use ldae_pipeline::Result;

use super::args::{RelPos, VitArgs};
use super::expected_tensors::layer_scale_names;
use super::folder::TimmFolder;
use super::layers::{per_image, Affine, AttentionPool, Mlp, Weights};
use super::relative_position;
use super::resample::resample_grid;
use super::rope;
use crate::denoiser::{fused, Precision};
use ldae_operators::pca::candle_err;

/// One pre-norm transformer block.
struct VitBlock {
    norm1: Affine,
    qkv_w: Tensor,
    qkv_b: Tensor,
    /// The rotary embedding and the relative position bias inside the attention, if any.
    positions: fused::Positions,
    /// The norm of the attention's output (EVA-CLIP's `scale_attn_inner`).
    attn_norm: Option<Affine>,
    proj_w: Tensor,
    proj_b: Tensor,
    ls1: Tensor,
    norm2: Affine,
    mlp: Mlp,
    ls2: Tensor,
}

/// A timm ViT, ready to run.
pub struct Vit {
    args: VitArgs,
    grid: usize,
    /// The patch-embedding convolution as a `[W, p*p*C]` matrix over ldae's patch layout.
    patch_w: Tensor,
    patch_b: Tensor,
    /// The norm over the patch embeddings (AIMv2's `patch_embed.norm`).
    embed_norm: Option<Affine>,
    /// Class then register tokens, `[1, P, W]` (`None` without any).
    prefix: Option<Tensor>,
    /// The position embedding at this grid, `[1, L, W]` (L covers the prefix tokens unless
    /// the model has `no_embed_class`; `None` for a model without one).
    pos: Option<Tensor>,
    norm_pre: Option<Affine>,
    blocks: Vec<VitBlock>,
    /// The norm after the last block (`None` when the model norms after pooling).
    norm: Option<Affine>,
    /// The norm after pooling (`avg` models).
    fc_norm: Option<Affine>,
    /// Attention pooling (`map` models).
    attn_pool: Option<AttentionPool>,
    /// The head's weight `[classes, W]` and bias (models with `num_classes`).
    head: Option<(Tensor, Tensor)>,
    /// A DeiT's second head, on the distillation token.
    head_dist: Option<(Tensor, Tensor)>,
    compute: DType,
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
        let mut w = Weights::new(folder.load_weights(device)?, args.norm_kind, args.norm_eps);
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
        let embed_norm = match args.embed_norm {
            true => Some(w.affine("patch_embed.norm")?),
            false => None,
        };
        let mut prefix = Vec::new();
        if args.class_token {
            prefix.push(w.take("cls_token")?);
        }
        match (args.distilled, args.reg_tokens) {
            (true, _) => prefix.push(w.take("dist_token")?),
            (false, 0) => {}
            (false, _) => prefix.push(w.take("reg_token")?),
        }
        let prefix = match prefix.is_empty() {
            true => None,
            false => Some(Tensor::cat(&prefix, 1).map_err(candle_err)?),
        };
        let pos = match args.abs_pos {
            true => Some(resampled_position(
                &args,
                w.take("pos_embed")?,
                folder.grid,
                grid,
            )?),
            false => None,
        };
        let rotary = match &args.rope {
            Some(kind) => {
                let hd = width / args.heads;
                let table = rope::table(kind, grid, hd);
                Some(fused::Rotary {
                    table: Tensor::from_vec(table, (grid * grid, 2 * hd), device)
                        .map_err(candle_err)?,
                    prefix: args.prefix_tokens(),
                })
            }
            None => None,
        };
        let relative = RelativeTables::load(&args, &mut w, folder.grid, grid, device)?;
        // Interleaved rotation pairs become rotate_half ones by reordering the query and key
        // rows of every head (see `rope`), so one attention kernel serves both.
        let qkv_rows = match args.rope.as_ref().filter(|r| rope::interleaved(r)) {
            Some(_) => {
                let rows = rope::half_layout_rows(width, args.heads);
                Some(Tensor::new(rows, device).map_err(candle_err)?)
            }
            None => None,
        };
        let reorder = |t: Tensor| match &qkv_rows {
            Some(rows) => t.index_select(rows, 0).map_err(candle_err),
            None => Ok(t),
        };
        let norm_pre = match args.pre_norm {
            true => Some(w.affine("norm_pre")?),
            false => None,
        };
        let mut blocks = Vec::with_capacity(args.depth);
        for i in 0..args.depth {
            let b = format!("blocks.{i}");
            let ones = || Tensor::ones(width, DType::F32, device).map_err(candle_err);
            let [ls1, ls2] = layer_scale_names(args.naming);
            let gamma = |w: &mut Weights, name: &str| match args.init_values {
                Some(_) => w.take(&format!("{b}.{name}")),
                None => ones(),
            };
            let (qkv_w, qkv_b) = w.qkv(&args, &format!("{b}.attn"), device)?;
            let proj_w = w.take(&format!("{b}.attn.proj.weight"))?;
            blocks.push(VitBlock {
                positions: fused::Positions {
                    rotary: rotary.clone(),
                    bias: match &relative {
                        Some(r) => Some(r.block(&mut w, i)?),
                        None => None,
                    },
                },
                norm1: w.affine(&format!("{b}.norm1"))?,
                qkv_w: reorder(qkv_w)?,
                qkv_b: reorder(qkv_b)?,
                attn_norm: match args.attn_norm {
                    true => Some(w.affine(&format!("{b}.attn.norm"))?),
                    false => None,
                },
                proj_b: w.bias_of(&format!("{b}.attn.proj.bias"), &proj_w, args.proj_bias)?,
                proj_w,
                ls1: gamma(&mut w, ls1)?,
                norm2: w.affine(&format!("{b}.norm2"))?,
                mlp: w.mlp(&format!("{b}.mlp"), &args)?,
                ls2: gamma(&mut w, ls2)?,
            });
        }
        let (norm, fc_norm) = match (args.final_norm, args.uses_fc_norm()) {
            (false, _) => (None, None),
            (true, true) => (None, Some(w.affine("fc_norm")?)),
            (true, false) => (Some(w.affine("norm")?), None),
        };
        let attn_pool = match args.global_pool.as_str() {
            "map" => Some(w.attention_pool(&args)?),
            _ => None,
        };
        let head = match args.num_classes {
            0 => None,
            _ => Some((w.take("head.weight")?, w.take("head.bias")?)),
        };
        let head_dist = match (args.head_dist, args.num_classes) {
            (true, 1..) => Some((w.take("head_dist.weight")?, w.take("head_dist.bias")?)),
            _ => None,
        };
        Ok(Vit {
            attn_pool,
            head,
            head_dist,
            compute: match precision {
                Precision::F32 => DType::F32,
                Precision::Bf16 => DType::BF16,
            },
            grid,
            patch_w,
            patch_b,
            embed_norm,
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
        let patches = match &self.embed_norm {
            Some(norm) => norm.apply(&patches)?,
            None => patches,
        };
        let with_prefix = |h: Tensor| -> candle_core::Result<Tensor> {
            match &self.prefix {
                None => Ok(h),
                Some(p) => {
                    let p = p.broadcast_as((b, p.dim(1)?, p.dim(2)?))?.contiguous()?;
                    Tensor::cat(&[&p, &h], 1)
                }
            }
        };
        let mut h = match (&self.pos, self.args.no_embed_class) {
            (None, _) => with_prefix(patches)?,
            (Some(pos), true) => with_prefix(fused::add_position(&patches, pos)?)?,
            (Some(pos), false) => fused::add_position(&with_prefix(patches)?, pos)?,
        };
        if let Some(norm) = &self.norm_pre {
            h = norm.apply(&h)?;
        }
        // Only the blocks asked for are kept: every block's output of a large model is
        // hundreds of megabytes per batch (24 x 34 MB for AIMv2-L at batch 32).
        let mut after = std::collections::HashMap::with_capacity(blocks.len());
        for (i, block) in self.blocks.iter().take(last).enumerate() {
            h = self.block(block, &h)?;
            if blocks.contains(&(i + 1)) {
                after.insert(i + 1, h.clone());
            }
        }
        blocks
            .iter()
            .map(|&k| match (&self.norm, k == self.args.depth) {
                (Some(norm), true) => norm.apply(&after[&k]),
                _ => Ok(after[&k].clone()),
            })
            .collect()
    }

    fn block(&self, b: &VitBlock, x: &Tensor) -> candle_core::Result<Tensor> {
        let n = x.dim(0)?;
        let (normed, heads) = (b.norm1.apply(x)?, self.args.heads);
        let y = match (&b.positions.rotary, &b.positions.bias) {
            (None, None) => fused::attention(&normed, &b.qkv_w, &b.qkv_b, heads, self.compute)?,
            _ => fused::positioned_attention(
                &normed,
                &b.qkv_w,
                &b.qkv_b,
                heads,
                &b.positions,
                self.compute,
            )?,
        };
        let y = match &b.attn_norm {
            Some(norm) => norm.apply(&y)?,
            None => y,
        };
        let y = fused::linear(&y, &b.proj_w, &b.proj_b, self.compute)?;
        let x = fused::gated_residual(x, &y, &per_image(&b.ls1, n)?)?;
        let y = b
            .mlp
            .forward(&b.norm2.apply(&x)?, self.args.activation, self.compute)?;
        fused::gated_residual(&x, &y, &per_image(&b.ls2, n)?)
    }

    /// The class token of tokens `h` `[B, L, W]`, `[B, W]` (with `fc_norm` after the last
    /// block, as timm's `forward_head(pre_logits=True)`); for a distilled DeiT, the mean of the
    /// class and distillation tokens, as timm's.
    pub fn class_token(&self, h: &Tensor, last: bool) -> candle_core::Result<Tensor> {
        let token = |i: usize| h.narrow(1, i, 1)?.squeeze(1);
        let pooled = match self.args.distilled {
            true => ((token(0)? + token(1)?)? * 0.5)?,
            false => token(0)?,
        };
        self.head_norm(pooled, last)
    }

    /// The class token beside the mean of the patch tokens of `h` `[B, L, W]`, `[B, 2W]`
    /// (DINOv2's linear-probe feature).
    pub fn token_mean(&self, h: &Tensor, last: bool) -> candle_core::Result<Tensor> {
        Tensor::cat(
            &[self.class_token(h, last)?, self.mean_patch_tokens(h, last)?],
            1,
        )
    }

    /// The mean of the patch tokens of `h` `[B, L, W]` (prefix tokens left out), `[B, W]`
    /// (with `fc_norm` after the last block).
    pub fn mean_patch_tokens(&self, h: &Tensor, last: bool) -> candle_core::Result<Tensor> {
        let p = self.args.prefix_tokens();
        let patches = h.narrow(1, p, h.dim(1)? - p)?;
        self.head_norm(fused::mean_tokens(&patches)?, last)
    }

    /// The attention-pooled feature of the last block's tokens `h` `[B, L, W]` (prefix tokens
    /// left out, except in eva.py's models), `[B, W]`: timm's `AttentionPoolLatent` with one
    /// query.
    pub fn attention_pool(&self, h: &Tensor) -> candle_core::Result<Tensor> {
        let pool = self
            .attn_pool
            .as_ref()
            .ok_or_else(|| candle_core::Error::Msg("the model has no attention pooling".into()))?;
        let p = match self.args.attn_pool_prefix {
            true => 0,
            false => self.args.prefix_tokens(),
        };
        let x = h.narrow(1, p, h.dim(1)? - p)?;
        let (b, n, w) = x.dims3()?;
        let heads = self.args.pool_heads();
        let hd = w / heads;
        // [B, H, N, hd] keys and values.
        let kv = fused::linear(&x, &pool.kv_w, &pool.kv_b, self.compute)?
            .reshape((b, n, 2, heads, hd))?
            .permute((2, 0, 3, 1, 4))?;
        let k = kv.get(0)?.contiguous()?;
        let v = kv.get(1)?.contiguous()?;
        // The one query, [1, H, 1, hd], scaled, for every image.
        let q = (pool.query.reshape((1, heads, 1, hd))? * (1.0 / (hd as f64).sqrt()))?;
        let q = q.broadcast_as((b, heads, 1, hd))?.contiguous()?;
        let attn = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t()?)?)?;
        let y = attn.matmul(&v)?.transpose(1, 2)?.reshape((b, 1, w))?;
        let y = fused::linear(&y, &pool.proj_w, &pool.proj_b, self.compute)?;
        let y = match &pool.mlp {
            Some((norm, mlp)) => {
                (&y + mlp.forward(&norm.apply(&y)?, self.args.activation, self.compute)?)?
            }
            None => y,
        };
        y.squeeze(1)
    }

    /// The model's output for the last block's tokens `h`: its own pooling (class token,
    /// patch mean or attention pooling, with `fc_norm`), then its head, `[B, classes]`.
    pub fn head(&self, h: &Tensor) -> candle_core::Result<Tensor> {
        let (w, b) = self
            .head
            .as_ref()
            .ok_or_else(|| candle_core::Error::Msg("the model has no head".into()))?;
        // A distilled DeiT: the mean of `head` on the class token and `head_dist` on the
        // distillation token (timm's and transformers' inference output).
        if let Some((dw, db)) = &self.head_dist {
            let token = |i: usize| self.head_norm(h.narrow(1, i, 1)?.squeeze(1)?, true);
            let first = fused::linear(&token(0)?, w, b, self.compute)?;
            let second = fused::linear(&token(1)?, dw, db, self.compute)?;
            return (first + second)? * 0.5;
        }
        let pooled = match self.args.global_pool.as_str() {
            _ if self.args.head_reads_token_mean => self.token_mean(h, true)?,
            "token" => self.class_token(h, true)?,
            "avg" => self.mean_patch_tokens(h, true)?,
            "map" => self.attention_pool(h)?,
            other => {
                return Err(candle_core::Error::Msg(format!(
                    "global_pool '{other}' pools no tokens for the head"
                )))
            }
        };
        fused::linear(&pooled, w, b, self.compute)
    }

    fn head_norm(&self, pooled: Tensor, last: bool) -> candle_core::Result<Tensor> {
        match (&self.fc_norm, last) {
            (Some(norm), true) => norm.apply_rows(&pooled),
            _ => Ok(pooled),
        }
    }
}

/// BEiT's relative position bias of a model: the shared table (if any), the index at the grid
/// the network runs at, and what each block's table needs to reach it.
struct RelativeTables {
    rel: RelPos,
    shared: Option<Tensor>,
    index: Tensor,
    trained: usize,
    grid: usize,
    heads: usize,
}

impl RelativeTables {
    /// `None` for a model without a relative position bias.
    fn load(
        args: &VitArgs,
        w: &mut Weights,
        trained: usize,
        grid: usize,
        device: &Device,
    ) -> Result<Option<RelativeTables>> {
        let Some(rel) = args.rel_pos else {
            return Ok(None);
        };
        let n = grid * grid + 1;
        let index = relative_position::index(grid);
        Ok(Some(RelativeTables {
            rel,
            shared: match rel.shared {
                true => Some(w.take("rel_pos_bias.relative_position_bias_table")?),
                false => None,
            },
            index: Tensor::from_vec(index, (n, n), device).map_err(candle_err)?,
            trained,
            grid,
            heads: args.heads,
        }))
    }

    /// Block `i`'s bias: its own table plus the shared one, resized to the grid, `[H, entries]`.
    fn block(&self, w: &mut Weights, i: usize) -> Result<fused::RelativeBias> {
        let own = match self.rel.per_block {
            true => Some(w.take(&format!("blocks.{i}.attn.relative_position_bias_table"))?),
            false => None,
        };
        let table = match (own, &self.shared) {
            (Some(own), Some(shared)) => (own + shared).map_err(candle_err)?,
            (Some(own), None) => own,
            (None, Some(shared)) => shared.clone(),
            (None, None) => unreachable!("a relative position bias has a table"),
        };
        let values = table
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(candle_err)?;
        let resized = relative_position::resize(
            &values,
            self.trained,
            self.grid,
            self.heads,
            self.rel.resize,
        );
        let entries = relative_position::entries(self.grid);
        let table = Tensor::from_vec(resized, (entries, self.heads), table.device())
            .and_then(|t| t.t()?.contiguous())
            .map_err(candle_err)?;
        Ok(fused::RelativeBias {
            table,
            index: self.index.clone(),
        })
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
        args.pos_resample,
    ));
    Tensor::from_vec(out, (1, prefix + grid * grid, width), pos.device()).map_err(candle_err)
}
