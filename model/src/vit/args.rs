//! The settings a timm `VisionTransformer` (or a DINOv3 `Eva`) is built with ([`VitArgs`], the
//! subset ldae's import runs), with timm's defaults and the builders the named architectures are
//! written with.

use super::resample::Resample;

/// The MLP's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact (erf) GELU, timm's default `nn.GELU`.
    Gelu,
    /// `x * sigmoid(1.702 x)`, OpenAI CLIP's (timm's `quick_gelu`).
    QuickGelu,
    /// GELU's tanh approximation (timm's `gelu_tanh`, some SigLIP towers).
    GeluTanh,
}

/// Which timm modules the weights are named after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// `vision_transformer.py`: `attn.qkv.bias`, LayerScale as `ls1.gamma` / `ls2.gamma`.
    Vit,
    /// `eva.py` with its `EvaAttention` (DINOv3): `attn.q_bias` and `attn.v_bias` (the key has
    /// none), LayerScale as `gamma_1` / `gamma_2`.
    Eva,
    /// `eva.py` with `AttentionRope` (Perception Encoder): `attn.qkv.bias`, LayerScale as
    /// `gamma_1` / `gamma_2`.
    EvaRope,
}

/// A SwiGLU MLP: `silu(gate) * value`, optionally normed, then the second layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swiglu {
    /// Gate and value as one layer `fc1`, gate first (timm's `GluMlp`), rather than `fc1_g` and
    /// `fc1_x` (timm's `SwiGLU`).
    pub packed: bool,
    /// A LayerNorm over the hidden width before the second layer (`scale_mlp`, EVA02).
    pub norm: bool,
    /// The hidden width rounded up to a multiple of this (0: as it is).
    pub align: usize,
}

/// A rotary position embedding (RoPE) on the queries and keys of the patch tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rope {
    /// DINOv3's (timm's `RotaryEmbeddingDinoV3`): patch centres scaled to [-1, 1], periods
    /// `temperature^(2i / (hd / 2))`, the `rotate_half` layout.
    Dinov3 {
        /// The period base (100).
        temperature: f64,
    },
    /// timm's `RotaryEmbeddingCat` (EVA02, Perception Encoder): patch indices plus `offset`, rescaled
    /// to a `reference` grid, inverse frequencies `temperature^(-i / (hd / 4))`, interleaved
    /// pairs; `xy`: the column's angles before the row's.
    Cat {
        /// The frequency base (10000).
        temperature: f64,
        /// The grid the coordinates are rescaled to (`ref_feat_shape`), if any.
        reference: Option<usize>,
        /// Added to each patch index (`rope_grid_offset`).
        offset: f64,
        /// `rope_grid_indexing = "xy"`.
        xy: bool,
    },
}

/// How the table follows the grid to another size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableResize {
    /// timm's `resize_rel_pos_bias_table` (without scipy): the source offsets spaced as a
    /// geometric progression that reaches the new range, then linear interpolation.
    Geometric,
    /// transformers' `BeitRelativePositionBias`: `F.interpolate(mode="bilinear",
    /// align_corners=False)`.
    Bilinear,
}

/// BEiT's relative position bias on the attention scores: a `[entries, heads]` table per
/// block (`blocks.{i}.attn.relative_position_bias_table`), one shared by every block
/// (`rel_pos_bias.relative_position_bias_table`), or both (added).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelPos {
    /// A table in every block.
    pub per_block: bool,
    /// One table for all blocks.
    pub shared: bool,
    /// How the tables follow the grid to another image size (timm's or transformers' way).
    pub resize: TableResize,
}

/// Which normalisation every norm of a model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormKind {
    /// LayerNorm: centred and scaled, then a weight and a bias.
    Layer,
    /// RMSNorm (timm's `RmsNorm`, AIMv2's): scaled by the root mean square, then a weight; no
    /// bias.
    Rms,
}

/// timm's `partial(nn.LayerNorm, eps=1e-6)`, the ViTs' norm.
pub const VIT_NORM_EPS: f64 = 1e-6;
/// PyTorch's LayerNorm default, which the CLIP towers and DINOv3 keep (`eps=1e-5`).
pub const TORCH_NORM_EPS: f64 = 1e-5;

/// The settings a timm `VisionTransformer` is built with (the subset this import runs).
#[derive(Debug, Clone, PartialEq)]
pub struct VitArgs {
    /// Patch side.
    pub patch: usize,
    /// Token width (`embed_dim`).
    pub width: usize,
    /// Blocks.
    pub depth: usize,
    /// Attention heads.
    pub heads: usize,
    /// MLP hidden width over `width`.
    pub mlp_ratio: f64,
    /// A class token in front of the patch tokens.
    pub class_token: bool,
    /// Register tokens after the class token.
    pub reg_tokens: usize,
    /// DeiT's distillation token (timm's `VisionTransformerDistilled`): the one register token,
    /// saved as `dist_token`. The feature is the mean of the class and distillation tokens.
    pub distilled: bool,
    /// A second head, `head_dist`, on the token after the class token (DeiT's distillation
    /// token): the output is the mean of `head` on the class token and `head_dist` on that one
    /// (timm's distilled DeiTs, transformers' DeiTForImageClassificationWithTeacher).
    pub head_dist: bool,
    /// The position embedding covers only the patch tokens.
    pub no_embed_class: bool,
    /// LayerScale initial value (`None`: no LayerScale).
    pub init_values: Option<f64>,
    /// Bias on the qkv projection.
    pub qkv_bias: bool,
    /// LayerNorm before the blocks (CLIP's `norm_pre`); the patch embedding then has no bias.
    pub pre_norm: bool,
    /// Epsilon of every norm.
    pub norm_eps: f64,
    /// Which normalisation the norms are.
    pub norm_kind: NormKind,
    /// A norm over the patch embeddings, before the position embedding (timm's
    /// `embed_norm_layer`, saved as `patch_embed.norm`).
    pub embed_norm: bool,
    /// Biases on the attention's output projection and on the MLP's layers (timm's
    /// `proj_bias`).
    pub proj_bias: bool,
    /// The MLP's activation.
    pub activation: Activation,
    /// `token`, `avg`, `map` (attention pooling: a learnt query attends over the tokens,
    /// SigLIP's) or `` (none).
    pub global_pool: String,
    /// The attention pooling's heads (`None`: the blocks').
    pub attn_pool_heads: Option<usize>,
    /// The attention pooling's MLP ratio (`None`: the blocks').
    pub attn_pool_mlp_ratio: Option<f64>,
    /// The attention pooling attends over the class and register tokens too (eva.py's).
    pub attn_pool_prefix: bool,
    /// The attention pooling ends in a residual MLP behind a norm (timm's; AIMv2's pooling
    /// head in transformers has none).
    pub attn_pool_mlp: bool,
    /// Norm after pooling instead of before (`None`: timm's default, yes for `avg`).
    pub fc_norm: Option<bool>,
    /// A final norm at all (`false`: neither `norm` nor `fc_norm`; ldae's exports).
    pub final_norm: bool,
    /// Which timm module the weights are named after.
    pub naming: Naming,
    /// A learnt (absolute) position embedding added to the tokens (`pos_embed`).
    pub abs_pos: bool,
    /// A rotary position embedding on the queries and keys of the patch tokens.
    pub rope: Option<Rope>,
    /// A relative position bias on the attention scores (BEiT's).
    pub rel_pos: Option<RelPos>,
    /// A SwiGLU MLP (`None`: the two-layer MLP with `activation`).
    pub swiglu: Option<Swiglu>,
    /// Separate query, key and value projections (`q_proj`, `k_proj`, `v_proj`; eva.py's
    /// `qkv_fused = False`), rather than one `qkv`.
    pub qkv_split: bool,
    /// A LayerNorm over the attention's output before its projection (`scale_attn_inner`).
    pub attn_norm: bool,
    /// Input channels.
    pub in_chans: usize,
    /// Classifier outputs (0: none; the head is not used for features).
    pub num_classes: usize,
    /// Training image size, when the arguments give one.
    pub img_size: Option<usize>,
    /// How the position table is resampled to another grid: timm's antialiased bicubic, or
    /// transformers' plain one.
    pub pos_resample: Resample,
    /// The head reads the class token beside the patch mean, `[2 width]`, rather than the
    /// model's pooled feature (Dinov2ForImageClassification).
    pub head_reads_token_mean: bool,
}

impl VitArgs {
    /// timm's defaults for a model of these sizes.
    pub(super) fn new(patch: usize, width: usize, depth: usize, heads: usize) -> Self {
        VitArgs {
            patch,
            width,
            depth,
            heads,
            mlp_ratio: 4.0,
            class_token: true,
            reg_tokens: 0,
            distilled: false,
            head_dist: false,
            no_embed_class: false,
            init_values: None,
            qkv_bias: true,
            pre_norm: false,
            norm_eps: VIT_NORM_EPS,
            norm_kind: NormKind::Layer,
            embed_norm: false,
            proj_bias: true,
            activation: Activation::Gelu,
            naming: Naming::Vit,
            abs_pos: true,
            rope: None,
            rel_pos: None,
            swiglu: None,
            qkv_split: false,
            attn_norm: false,
            global_pool: "token".into(),
            attn_pool_heads: None,
            attn_pool_mlp_ratio: None,
            attn_pool_prefix: false,
            attn_pool_mlp: true,
            fc_norm: None,
            final_norm: true,
            in_chans: 3,
            num_classes: 1000,
            img_size: None,
            pos_resample: Resample::Antialiased,
            head_reads_token_mean: false,
        }
    }
    pub(super) fn mlp(mut self, ratio: f64) -> Self {
        self.mlp_ratio = ratio;
        self
    }
    pub(super) fn no_class_token(mut self) -> Self {
        self.class_token = false;
        self
    }
    pub(super) fn registers(mut self, n: usize) -> Self {
        self.reg_tokens = n;
        self
    }
    /// A distilled DeiT: a distillation token after the class token, inside the position table,
    /// and a head on each.
    pub(super) fn distilled(mut self) -> Self {
        self.distilled = true;
        self.head_dist = true;
        self.registers(1)
    }
    pub(super) fn no_embed_class(mut self) -> Self {
        self.no_embed_class = true;
        self
    }
    pub(super) fn layer_scale(mut self, init: f64) -> Self {
        self.init_values = Some(init);
        self
    }
    pub(super) fn no_qkv_bias(mut self) -> Self {
        self.qkv_bias = false;
        self
    }
    pub(super) fn pool(mut self, pool: &str) -> Self {
        self.global_pool = pool.into();
        self
    }
    pub(super) fn fc_norm(mut self, on: bool) -> Self {
        self.fc_norm = Some(on);
        self
    }
    /// A CLIP image tower: `pre_norm`, norms of epsilon 1e-5.
    pub(super) fn clip(mut self) -> Self {
        self.pre_norm = true;
        self.norm_eps = TORCH_NORM_EPS;
        self
    }
    pub(super) fn quick_gelu(mut self) -> Self {
        self.activation = Activation::QuickGelu;
        self
    }
    pub(super) fn gelu_tanh(mut self) -> Self {
        self.activation = Activation::GeluTanh;
        self
    }
    /// A SigLIP tower: no class token, attention pooling (`map`).
    pub(super) fn siglip_map(self) -> Self {
        self.no_class_token().pool("map")
    }
    /// A SigLIP tower pooled by average (`gap`), without `fc_norm`.
    pub(super) fn siglip_gap(self) -> Self {
        self.no_class_token().pool("avg").fc_norm(false)
    }

    /// A DINOv3 ViT (timm's `eva.py`): 4 registers after the class token, LayerScale, norms of
    /// epsilon 1e-5, DINOv3's rotary embedding (temperature 100) instead of a position
    /// embedding, average pooling after the final norm.
    pub(super) fn dinov3(mut self) -> Self {
        self.naming = Naming::Eva;
        self.abs_pos = false;
        self.rope = Some(Rope::Dinov3 { temperature: 100.0 });
        self.norm_eps = TORCH_NORM_EPS;
        self.registers(4)
            .layer_scale(1e-5)
            .no_qkv_bias()
            .pool("avg")
            .fc_norm(false)
    }
    /// A Perception Encoder tower (timm's `vit_pe_*`): a norm before the blocks (no
    /// patch-embedding bias), norms of epsilon 1e-5, and besides the position table the
    /// interleaved rotary embedding (temperature 10000, patch indices + `offset` rescaled to a
    /// `reference` grid, column first).
    pub(super) fn pe(mut self, reference: usize, offset: f64) -> Self {
        self.naming = Naming::EvaRope;
        self.rope = Some(Rope::Cat {
            temperature: 10000.0,
            reference: Some(reference),
            offset,
            xy: true,
        });
        self.clip()
    }
    /// PE core's pooling: attention pooling over every token (class token included), 8 heads,
    /// MLP ratio 4, after the final norm.
    pub(super) fn pe_map(mut self) -> Self {
        self.attn_pool_heads = Some(8);
        self.attn_pool_mlp_ratio = Some(4.0);
        self.attn_pool_prefix = true;
        self.pool("map")
    }
    /// PE lang / spatial: the patch mean with no final norm at all.
    pub(super) fn mean_unnormed(self) -> Self {
        self.no_final_norm().pool("avg")
    }
    /// The SwiGLU MLP, its hidden width rounded up to a multiple of `align`.
    pub(super) fn swiglu(mut self, align: usize) -> Self {
        self.swiglu = Some(Swiglu {
            packed: false,
            norm: false,
            align,
        });
        self
    }
    /// An EVA02 ViT (timm's `eva02_*`): a class token, the interleaved rotary embedding
    /// (temperature 10000, patch indices rescaled to a 16 x 16 grid) on top of the position
    /// table, q / v biases, SwiGLU MLPs of ratio 8/3: packed (`GluMlp`) in the tiny and small
    /// ones, `fc1_g` / `fc1_x` with a norm and separate q / k / v projections in the base and
    /// large ones (`scale_mlp`).
    pub(super) fn eva02(self, scale_mlp: bool) -> Self {
        let mut args = self.eva().mlp(4.0 * 2.0 / 3.0);
        args.rope = Some(Rope::Cat {
            temperature: 10000.0,
            reference: Some(16),
            offset: 0.0,
            xy: false,
        });
        args.swiglu = Some(Swiglu {
            packed: !scale_mlp,
            norm: scale_mlp,
            align: 0,
        });
        args.qkv_split = scale_mlp;
        args
    }
    /// A model of timm's `eva.py` (EVA, EVA02): eva.py's names (q / v biases), average pooling
    /// by default.
    pub(super) fn eva(mut self) -> Self {
        self.naming = Naming::Eva;
        self.pool("avg")
    }
    /// timm's rotary ViTs (`vit_*_rope_reg*_gap_256`): registers and no class token, no
    /// position table, EVA02's rotary embedding, LayerScale, the patch mean with `fc_norm`.
    pub(super) fn rope_gap(self, registers: usize) -> Self {
        let mut args = self
            .eva()
            .no_class_token()
            .registers(registers)
            .layer_scale(1e-5);
        args.abs_pos = false;
        args.rope = Some(Rope::Cat {
            temperature: 10000.0,
            reference: Some(16),
            offset: 0.0,
            xy: false,
        });
        args
    }
    /// NAVER's axial RoPE-ViTs (`vit_*_patch16_rope_224`, DeiT-III recipe): the interleaved
    /// rotary embedding at temperature 100 on plain patch indices, column first; LayerScale;
    /// class token pooling; `ape`: a position table too (not covering the class token).
    pub(super) fn rope_axial(mut self, ape: bool) -> Self {
        self.naming = Naming::EvaRope;
        self.abs_pos = ape;
        self.no_embed_class = ape;
        self.rope = Some(Rope::Cat {
            temperature: 100.0,
            reference: None,
            offset: 0.0,
            xy: true,
        });
        self.layer_scale(1e-5).pool("token")
    }
    /// EVA-CLIP's towers: a norm inside the attention, class token pooling.
    pub(super) fn eva_clip(mut self) -> Self {
        self.attn_norm = true;
        self.pool("token")
    }
    /// A BEiT (timm's `beit.py`): eva.py's names (q / v biases, `gamma_1` / `gamma_2`),
    /// LayerScale from `init`, a relative position bias in every block instead of a position
    /// table, the patch mean with `fc_norm`.
    pub(super) fn beit(mut self, init: f64) -> Self {
        self.naming = Naming::Eva;
        self.abs_pos = false;
        self.rel_pos = Some(RelPos {
            per_block: true,
            shared: false,
            resize: TableResize::Geometric,
        });
        self.layer_scale(init).pool("avg")
    }
    /// A DeiT III (timm's `deit3_*`): the position table covers only the patch tokens, LayerScale
    /// from 1e-6.
    pub(super) fn deit3(self) -> Self {
        self.no_embed_class().layer_scale(1e-6)
    }
    /// The SwiGLU MLP packed in one first layer, gate first (timm's `SwiGLUPacked`, DINOv2's
    /// giant towers); `mlp_ratio` gives the width of each half.
    pub(super) fn swiglu_packed(mut self) -> Self {
        self.swiglu = Some(Swiglu {
            packed: true,
            norm: false,
            align: 0,
        });
        self
    }
    /// No final norm at all (InternViT's `final_norm=False`).
    pub(super) fn no_final_norm(mut self) -> Self {
        self.final_norm = false;
        self
    }
    /// An AIMv2 tower (timm's `aimv2_*`): no class token, RMSNorms of epsilon 1e-5 (one after
    /// the patch embedding too), no biases in the blocks, a SwiGLU MLP (`fc1_g` / `fc1_x`) of
    /// ratio `ratio`, the patch mean after the final norm.
    pub(super) fn aimv2(mut self, ratio: f64) -> Self {
        self.norm_kind = NormKind::Rms;
        self.norm_eps = TORCH_NORM_EPS;
        self.embed_norm = true;
        self.proj_bias = false;
        self.mlp(ratio)
            .swiglu(0)
            .no_qkv_bias()
            .no_class_token()
            .pool("avg")
            .fc_norm(false)
    }
    pub(super) fn qkv_bias(mut self) -> Self {
        self.qkv_bias = true;
        self
    }

    /// The attention pooling's heads.
    pub fn pool_heads(&self) -> usize {
        self.attn_pool_heads.unwrap_or(self.heads)
    }

    /// The attention pooling's MLP hidden width (`int(width * ratio)`).
    pub fn pool_hidden(&self) -> usize {
        match self.attn_pool_mlp_ratio {
            Some(ratio) => (self.width as f64 * ratio) as usize,
            None => (self.width as f64 * self.mlp_ratio) as usize,
        }
    }

    /// Tokens before the patch tokens (class and registers).
    pub fn prefix_tokens(&self) -> usize {
        usize::from(self.class_token) + self.reg_tokens
    }

    /// Whether the final norm comes after pooling (`fc_norm`) rather than before it (`norm`).
    pub fn uses_fc_norm(&self) -> bool {
        self.fc_norm.unwrap_or(matches!(
            self.global_pool.as_str(),
            "avg" | "avgmax" | "max"
        ))
    }

    /// MLP hidden width, as timm computes it (`int(width * mlp_ratio)`, rounded up to the
    /// SwiGLU alignment).
    pub fn hidden(&self) -> usize {
        let hidden = (self.width as f64 * self.mlp_ratio) as usize;
        match self.swiglu {
            Some(Swiglu { align, .. }) if align > 0 => hidden.div_ceil(align) * align,
            _ => hidden,
        }
    }
}

/// timm's defaults for a ViT of these sizes.
pub(super) fn vit(patch: usize, width: usize, depth: usize, heads: usize) -> VitArgs {
    VitArgs::new(patch, width, depth, heads)
}
