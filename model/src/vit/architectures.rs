//! timm's named `VisionTransformer` architectures: the settings each name stands for (timm's
//! `config.json` records only the name and the arguments given on top of it).
//!
//! The table covers the plain ViT family of timm's `vision_transformer.py` and `deit.py` (the
//! non-distilled DeiTs): every named model built from patch embedding, class / register
//! tokens, pre-norm blocks with GELU MLPs and optional LayerScale, and token, average or no
//! pooling; the CLIP image towers of the same file (`*_clip_*`: a LayerNorm before the blocks,
//! norms of epsilon 1e-5, QuickGELU in the `*_clip_quickgelu_*` ones); and the SigLIP towers
//! (`*_siglip_*`: attention pooling `map`, or `gap`; tanh GELU in some). Models with other
//! layers (SwiGLU or other activations, qk-norm, relative positions, `prr` pooling) are not in
//! it, so they fail with a clear error instead of giving wrong features.

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

/// timm's `partial(nn.LayerNorm, eps=1e-6)`, the ViTs' norm.
pub const VIT_NORM_EPS: f64 = 1e-6;
/// The CLIP towers' `partial(LayerNorm, eps=1e-5)`.
pub const CLIP_NORM_EPS: f64 = 1e-5;

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
    /// The position embedding covers only the patch tokens.
    pub no_embed_class: bool,
    /// LayerScale initial value (`None`: no LayerScale).
    pub init_values: Option<f64>,
    /// Bias on the qkv projection.
    pub qkv_bias: bool,
    /// LayerNorm before the blocks (CLIP's `norm_pre`); the patch embedding then has no bias.
    pub pre_norm: bool,
    /// Epsilon of every LayerNorm.
    pub norm_eps: f64,
    /// The MLP's activation.
    pub activation: Activation,
    /// `token`, `avg`, `map` (attention pooling: a learnt query attends over the tokens,
    /// SigLIP's) or `` (none).
    pub global_pool: String,
    /// Norm after pooling instead of before (`None`: timm's default, yes for `avg`).
    pub fc_norm: Option<bool>,
    /// A final norm at all (`false`: neither `norm` nor `fc_norm`; ldae's exports).
    pub final_norm: bool,
    /// Input channels.
    pub in_chans: usize,
    /// Classifier outputs (0: none; the head is not used for features).
    pub num_classes: usize,
    /// Training image size, when the arguments give one.
    pub img_size: Option<usize>,
}

impl VitArgs {
    /// timm's defaults for a model of these sizes.
    fn new(patch: usize, width: usize, depth: usize, heads: usize) -> Self {
        VitArgs {
            patch,
            width,
            depth,
            heads,
            mlp_ratio: 4.0,
            class_token: true,
            reg_tokens: 0,
            no_embed_class: false,
            init_values: None,
            qkv_bias: true,
            pre_norm: false,
            norm_eps: VIT_NORM_EPS,
            activation: Activation::Gelu,
            global_pool: "token".into(),
            fc_norm: None,
            final_norm: true,
            in_chans: 3,
            num_classes: 1000,
            img_size: None,
        }
    }
    fn mlp(mut self, ratio: f64) -> Self {
        self.mlp_ratio = ratio;
        self
    }
    fn no_class_token(mut self) -> Self {
        self.class_token = false;
        self
    }
    fn registers(mut self, n: usize) -> Self {
        self.reg_tokens = n;
        self
    }
    fn no_embed_class(mut self) -> Self {
        self.no_embed_class = true;
        self
    }
    fn layer_scale(mut self, init: f64) -> Self {
        self.init_values = Some(init);
        self
    }
    fn no_qkv_bias(mut self) -> Self {
        self.qkv_bias = false;
        self
    }
    fn pool(mut self, pool: &str) -> Self {
        self.global_pool = pool.into();
        self
    }
    fn fc_norm(mut self, on: bool) -> Self {
        self.fc_norm = Some(on);
        self
    }
    /// A CLIP image tower: `pre_norm`, norms of epsilon 1e-5.
    fn clip(mut self) -> Self {
        self.pre_norm = true;
        self.norm_eps = CLIP_NORM_EPS;
        self
    }
    fn quick_gelu(mut self) -> Self {
        self.activation = Activation::QuickGelu;
        self
    }
    fn gelu_tanh(mut self) -> Self {
        self.activation = Activation::GeluTanh;
        self
    }
    /// A SigLIP tower: no class token, attention pooling (`map`).
    fn siglip_map(self) -> Self {
        self.no_class_token().pool("map")
    }
    /// A SigLIP tower pooled by average (`gap`), without `fc_norm`.
    fn siglip_gap(self) -> Self {
        self.no_class_token().pool("avg").fc_norm(false)
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

    /// MLP hidden width, as timm computes it (`int(width * mlp_ratio)`).
    pub fn hidden(&self) -> usize {
        (self.width as f64 * self.mlp_ratio) as usize
    }
}

fn vit(patch: usize, width: usize, depth: usize, heads: usize) -> VitArgs {
    VitArgs::new(patch, width, depth, heads)
}

/// The named architectures (timm 1.0's `model_args` of each entry point).
fn table() -> Vec<(&'static str, VitArgs)> {
    vec![
        ("vit_tiny_patch16_224", vit(16, 192, 12, 3)),
        ("vit_tiny_patch16_384", vit(16, 192, 12, 3)),
        ("vit_small_patch32_224", vit(32, 384, 12, 6)),
        ("vit_small_patch32_384", vit(32, 384, 12, 6)),
        ("vit_small_patch16_224", vit(16, 384, 12, 6)),
        ("vit_small_patch16_384", vit(16, 384, 12, 6)),
        ("vit_small_patch8_224", vit(8, 384, 12, 6)),
        ("vit_base_patch32_224", vit(32, 768, 12, 12)),
        ("vit_base_patch32_384", vit(32, 768, 12, 12)),
        ("vit_base_patch16_224", vit(16, 768, 12, 12)),
        ("vit_base_patch16_384", vit(16, 768, 12, 12)),
        ("vit_base_patch8_224", vit(8, 768, 12, 12)),
        ("vit_large_patch32_224", vit(32, 1024, 24, 16)),
        ("vit_large_patch32_384", vit(32, 1024, 24, 16)),
        ("vit_large_patch16_224", vit(16, 1024, 24, 16)),
        ("vit_large_patch16_384", vit(16, 1024, 24, 16)),
        ("vit_large_patch14_224", vit(14, 1024, 24, 16)),
        ("vit_huge_patch14_224", vit(14, 1280, 32, 16)),
        (
            "vit_base_patch16_224_miil",
            vit(16, 768, 12, 12).no_qkv_bias(),
        ),
        (
            "vit_medium_patch16_gap_240",
            vit(16, 512, 12, 8)
                .no_class_token()
                .layer_scale(1e-6)
                .no_qkv_bias()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_medium_patch16_gap_256",
            vit(16, 512, 12, 8)
                .no_class_token()
                .layer_scale(1e-6)
                .no_qkv_bias()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_medium_patch16_gap_384",
            vit(16, 512, 12, 8)
                .no_class_token()
                .layer_scale(1e-6)
                .no_qkv_bias()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_betwixt_patch16_gap_256",
            vit(16, 640, 12, 10)
                .no_class_token()
                .layer_scale(1e-6)
                .no_qkv_bias()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_base_patch16_gap_224",
            vit(16, 768, 12, 16)
                .no_class_token()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_huge_patch14_gap_224",
            vit(14, 1280, 32, 16)
                .no_class_token()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_huge_patch16_gap_448",
            vit(16, 1280, 32, 16)
                .no_class_token()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_base_patch32_plus_256",
            vit(32, 896, 12, 14).layer_scale(1e-5),
        ),
        (
            "vit_base_patch16_plus_240",
            vit(16, 896, 12, 14).layer_scale(1e-5),
        ),
        (
            "vit_small_patch16_36x1_224",
            vit(16, 384, 36, 6).layer_scale(1e-5),
        ),
        (
            "vit_small_patch14_dinov2",
            vit(14, 384, 12, 6).layer_scale(1e-5),
        ),
        (
            "vit_base_patch14_dinov2",
            vit(14, 768, 12, 12).layer_scale(1e-5),
        ),
        (
            "vit_large_patch14_dinov2",
            vit(14, 1024, 24, 16).layer_scale(1e-5),
        ),
        (
            "vit_small_patch14_reg4_dinov2",
            vit(14, 384, 12, 6)
                .registers(4)
                .no_embed_class()
                .layer_scale(1e-5),
        ),
        (
            "vit_base_patch14_reg4_dinov2",
            vit(14, 768, 12, 12)
                .registers(4)
                .no_embed_class()
                .layer_scale(1e-5),
        ),
        (
            "vit_large_patch14_reg4_dinov2",
            vit(14, 1024, 24, 16)
                .registers(4)
                .no_embed_class()
                .layer_scale(1e-5),
        ),
        (
            "vit_base_patch14_reg1_tipsv2",
            vit(14, 768, 12, 12)
                .registers(1)
                .no_embed_class()
                .layer_scale(1.0),
        ),
        (
            "vit_large_patch14_reg1_tipsv2",
            vit(14, 1024, 24, 16)
                .registers(1)
                .no_embed_class()
                .layer_scale(1.0),
        ),
        (
            "vit_base_patch16_siglip_gap_224",
            vit(16, 768, 12, 12)
                .no_class_token()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_base_patch16_siglip_gap_256",
            vit(16, 768, 12, 12)
                .no_class_token()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_base_patch16_siglip_gap_384",
            vit(16, 768, 12, 12)
                .no_class_token()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_base_patch16_siglip_gap_512",
            vit(16, 768, 12, 12)
                .no_class_token()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_large_patch16_siglip_gap_256",
            vit(16, 1024, 24, 16)
                .no_class_token()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_large_patch16_siglip_gap_384",
            vit(16, 1024, 24, 16)
                .no_class_token()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_so400m_patch14_siglip_gap_224",
            vit(14, 1152, 27, 16)
                .mlp(3.7362)
                .no_class_token()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_so400m_patch14_siglip_gap_378",
            vit(14, 1152, 27, 16)
                .mlp(3.7362)
                .no_class_token()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_so400m_patch14_siglip_gap_384",
            vit(14, 1152, 27, 16)
                .mlp(3.7362)
                .no_class_token()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_so400m_patch14_siglip_gap_448",
            vit(14, 1152, 27, 16)
                .mlp(3.7362)
                .no_class_token()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_so400m_patch14_siglip_gap_896",
            vit(14, 1152, 27, 16)
                .mlp(3.7362)
                .no_class_token()
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_wee_patch16_reg1_gap_256",
            vit(16, 256, 14, 4)
                .mlp(5.0)
                .no_class_token()
                .registers(1)
                .no_embed_class()
                .layer_scale(1e-5)
                .pool("avg"),
        ),
        (
            "vit_little_patch16_reg1_gap_256",
            vit(16, 320, 14, 5)
                .mlp(5.6)
                .no_class_token()
                .registers(1)
                .no_embed_class()
                .layer_scale(1e-5)
                .pool("avg"),
        ),
        (
            "vit_little_patch16_reg4_gap_256",
            vit(16, 320, 14, 5)
                .mlp(5.6)
                .no_class_token()
                .registers(4)
                .no_embed_class()
                .layer_scale(1e-5)
                .pool("avg"),
        ),
        (
            "vit_medium_patch16_reg1_gap_256",
            vit(16, 512, 12, 8)
                .no_class_token()
                .registers(1)
                .no_embed_class()
                .layer_scale(1e-5)
                .pool("avg"),
        ),
        (
            "vit_medium_patch16_reg4_gap_256",
            vit(16, 512, 12, 8)
                .no_class_token()
                .registers(4)
                .no_embed_class()
                .layer_scale(1e-5)
                .pool("avg"),
        ),
        (
            "vit_mediumd_patch16_reg4_gap_256",
            vit(16, 512, 20, 8)
                .no_class_token()
                .registers(4)
                .no_embed_class()
                .layer_scale(1e-5)
                .pool("avg"),
        ),
        (
            "vit_mediumd_patch16_reg4_gap_384",
            vit(16, 512, 20, 8)
                .no_class_token()
                .registers(4)
                .no_embed_class()
                .layer_scale(1e-5)
                .pool("avg"),
        ),
        (
            "vit_betwixt_patch16_reg1_gap_256",
            vit(16, 640, 12, 10)
                .no_class_token()
                .registers(1)
                .no_embed_class()
                .layer_scale(1e-5)
                .pool("avg"),
        ),
        (
            "vit_betwixt_patch16_reg4_gap_256",
            vit(16, 640, 12, 10)
                .no_class_token()
                .registers(4)
                .no_embed_class()
                .layer_scale(1e-5)
                .pool("avg"),
        ),
        (
            "vit_betwixt_patch16_reg4_gap_384",
            vit(16, 640, 12, 10)
                .no_class_token()
                .registers(4)
                .no_embed_class()
                .layer_scale(1e-5)
                .pool("avg"),
        ),
        (
            "vit_base_patch16_reg4_gap_256",
            vit(16, 768, 12, 12)
                .no_class_token()
                .registers(4)
                .no_embed_class()
                .pool("avg"),
        ),
        (
            "vit_so150m_patch16_reg4_gap_256",
            vit(16, 896, 18, 14)
                .mlp(2.572)
                .no_class_token()
                .registers(4)
                .pool("avg")
                .fc_norm(false),
        ),
        (
            "vit_so150m_patch16_reg4_gap_384",
            vit(16, 896, 18, 14)
                .mlp(2.572)
                .no_class_token()
                .registers(4)
                .pool("avg")
                .fc_norm(false),
        ),
        ("deit_tiny_patch16_224", vit(16, 192, 12, 3)),
        ("deit_small_patch16_224", vit(16, 384, 12, 6)),
        ("deit_base_patch16_224", vit(16, 768, 12, 12)),
        ("deit_base_patch16_384", vit(16, 768, 12, 12)),
    ]
}

/// Families named `{prefix}_{size}` for each training size, the settings the same: the CLIP
/// towers (timm's `*_clip_*`, then the same with QuickGELU), and the SigLIP towers (attention
/// pooling `map`, and the GAP ones with tanh GELU that the table above leaves out).
fn sized_families() -> Vec<(&'static str, &'static [usize], VitArgs)> {
    vec![
        (
            "vit_base_patch32_siglip",
            &[256],
            vit(32, 768, 12, 12).siglip_map().gelu_tanh(),
        ),
        (
            "vit_base_patch16_siglip",
            &[224, 256, 384, 512],
            vit(16, 768, 12, 12).siglip_map(),
        ),
        (
            "vit_large_patch16_siglip",
            &[256, 384],
            vit(16, 1024, 24, 16).siglip_map(),
        ),
        (
            "vit_large_patch16_siglip",
            &[512],
            vit(16, 1024, 24, 16).siglip_map().gelu_tanh(),
        ),
        (
            "vit_so400m_patch14_siglip",
            &[224, 378, 384],
            vit(14, 1152, 27, 16).mlp(3.7362).siglip_map(),
        ),
        (
            "vit_so400m_patch16_siglip",
            &[256, 384, 512],
            vit(16, 1152, 27, 16).mlp(3.7362).siglip_map().gelu_tanh(),
        ),
        (
            "vit_giantopt_patch16_siglip",
            &[256, 384],
            vit(16, 1536, 40, 16).siglip_map().gelu_tanh(),
        ),
        (
            "vit_base_patch32_siglip_gap",
            &[256],
            vit(32, 768, 12, 12).siglip_gap().gelu_tanh(),
        ),
        (
            "vit_large_patch16_siglip_gap",
            &[512],
            vit(16, 1024, 24, 16).siglip_gap().gelu_tanh(),
        ),
        (
            "vit_so400m_patch16_siglip_gap",
            &[256, 384, 512],
            vit(16, 1152, 27, 16).mlp(3.7362).siglip_gap().gelu_tanh(),
        ),
        (
            "vit_giantopt_patch16_siglip_gap",
            &[256, 384],
            vit(16, 1536, 40, 16).siglip_gap().gelu_tanh(),
        ),
        (
            "vit_xsmall_patch16_clip",
            &[224],
            vit(16, 256, 10, 4).clip(),
        ),
        (
            "vit_medium_patch32_clip",
            &[224],
            vit(32, 512, 12, 8).clip(),
        ),
        (
            "vit_medium_patch16_clip",
            &[224],
            vit(16, 512, 12, 8).clip(),
        ),
        (
            "vit_betwixt_patch32_clip",
            &[224],
            vit(32, 640, 12, 10).clip(),
        ),
        (
            "vit_base_patch32_clip",
            &[224, 256, 384, 448],
            vit(32, 768, 12, 12).clip(),
        ),
        (
            "vit_base_patch16_clip",
            &[224, 384],
            vit(16, 768, 12, 12).clip(),
        ),
        (
            "vit_base_patch16_plus_clip",
            &[240],
            vit(16, 896, 12, 14).clip(),
        ),
        (
            "vit_large_patch14_clip",
            &[224, 336],
            vit(14, 1024, 24, 16).clip(),
        ),
        (
            "vit_huge_patch14_clip",
            &[224, 336, 378],
            vit(14, 1280, 32, 16).clip(),
        ),
        (
            "vit_giant_patch14_clip",
            &[224],
            vit(14, 1408, 40, 16).mlp(48.0 / 11.0).clip(),
        ),
        (
            "vit_gigantic_patch14_clip",
            &[224, 378],
            vit(14, 1664, 48, 16).mlp(64.0 / 13.0).clip(),
        ),
        (
            "vit_base_patch32_clip_quickgelu",
            &[224],
            vit(32, 768, 12, 12).clip().quick_gelu(),
        ),
        (
            "vit_base_patch16_clip_quickgelu",
            &[224],
            vit(16, 768, 12, 12).clip().quick_gelu(),
        ),
        (
            "vit_large_patch14_clip_quickgelu",
            &[224, 336],
            vit(14, 1024, 24, 16).clip().quick_gelu(),
        ),
        (
            "vit_huge_patch14_clip_quickgelu",
            &[224, 378],
            vit(14, 1280, 32, 16).clip().quick_gelu(),
        ),
        (
            "vit_gigantic_patch14_clip_quickgelu",
            &[224],
            vit(14, 1664, 48, 16).mlp(64.0 / 13.0).clip().quick_gelu(),
        ),
    ]
}

/// The settings of timm architecture `name` (a tag after a dot, `vit_small_patch16_224.dino`,
/// is ignored: tags name weights, not architectures).
pub fn named(name: &str) -> Option<VitArgs> {
    let base = name.split('.').next().unwrap_or(name);
    all().into_iter().find(|(n, _)| *n == base).map(|(_, a)| a)
}

/// The names [`named`] knows, for error messages.
pub fn names() -> Vec<String> {
    all().into_iter().map(|(n, _)| n).collect()
}

/// Every named architecture: the table, then the sized families spelt out.
fn all() -> Vec<(String, VitArgs)> {
    let table = table().into_iter().map(|(n, a)| (n.to_string(), a));
    let families = sized_families()
        .into_iter()
        .flat_map(|(prefix, sizes, args)| {
            sizes
                .iter()
                .map(move |size| (format!("{prefix}_{size}"), args.clone()))
        });
    table.chain(families).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every CLIP and SigLIP name of timm 1.0's registry that this import runs (the `prr`
    /// pooled and other-layer ones excepted) resolves, to the settings its family says.
    #[test]
    fn clip_and_siglip_names_resolve() {
        let clip = [
            "vit_xsmall_patch16_clip_224",
            "vit_medium_patch32_clip_224",
            "vit_medium_patch16_clip_224",
            "vit_betwixt_patch32_clip_224",
            "vit_base_patch32_clip_224",
            "vit_base_patch32_clip_256",
            "vit_base_patch32_clip_384",
            "vit_base_patch32_clip_448",
            "vit_base_patch16_clip_224",
            "vit_base_patch16_clip_384",
            "vit_base_patch16_plus_clip_240",
            "vit_large_patch14_clip_224",
            "vit_large_patch14_clip_336",
            "vit_huge_patch14_clip_224",
            "vit_huge_patch14_clip_336",
            "vit_huge_patch14_clip_378",
            "vit_giant_patch14_clip_224",
            "vit_gigantic_patch14_clip_224",
            "vit_gigantic_patch14_clip_378",
        ];
        let quick = [
            "vit_base_patch32_clip_quickgelu_224",
            "vit_base_patch16_clip_quickgelu_224",
            "vit_large_patch14_clip_quickgelu_224",
            "vit_large_patch14_clip_quickgelu_336",
            "vit_huge_patch14_clip_quickgelu_224",
            "vit_huge_patch14_clip_quickgelu_378",
            "vit_gigantic_patch14_clip_quickgelu_224",
        ];
        for name in clip.iter().chain(&quick) {
            let a = named(&format!("{name}.openai")).unwrap_or_else(|| panic!("{name}"));
            assert!(a.pre_norm && a.class_token, "{name}");
            assert_eq!(a.norm_eps, CLIP_NORM_EPS, "{name}");
            let want = match quick.contains(name) {
                true => Activation::QuickGelu,
                false => Activation::Gelu,
            };
            assert_eq!(a.activation, want, "{name}");
        }
        let tanh = [
            "vit_base_patch32_siglip_256",
            "vit_large_patch16_siglip_512",
            "vit_so400m_patch16_siglip_256",
            "vit_so400m_patch16_siglip_384",
            "vit_so400m_patch16_siglip_512",
            "vit_giantopt_patch16_siglip_256",
            "vit_giantopt_patch16_siglip_384",
            "vit_base_patch32_siglip_gap_256",
            "vit_large_patch16_siglip_gap_512",
            "vit_so400m_patch16_siglip_gap_256",
            "vit_so400m_patch16_siglip_gap_384",
            "vit_so400m_patch16_siglip_gap_512",
            "vit_giantopt_patch16_siglip_gap_256",
            "vit_giantopt_patch16_siglip_gap_384",
        ];
        let erf = [
            "vit_base_patch16_siglip_224",
            "vit_base_patch16_siglip_256",
            "vit_base_patch16_siglip_384",
            "vit_base_patch16_siglip_512",
            "vit_large_patch16_siglip_256",
            "vit_large_patch16_siglip_384",
            "vit_so400m_patch14_siglip_224",
            "vit_so400m_patch14_siglip_378",
            "vit_so400m_patch14_siglip_384",
            "vit_base_patch16_siglip_gap_224",
            "vit_so400m_patch14_siglip_gap_896",
        ];
        for name in tanh.iter().chain(&erf) {
            let a = named(name).unwrap_or_else(|| panic!("{name}"));
            assert!(!a.class_token, "{name}");
            let pool = if name.contains("_gap_") { "avg" } else { "map" };
            assert_eq!(a.global_pool, pool, "{name}");
            let want = match tanh.contains(name) {
                true => Activation::GeluTanh,
                false => Activation::Gelu,
            };
            assert_eq!(a.activation, want, "{name}");
        }
        // so400m's MLP: timm's int(1152 * 3.7362).
        assert_eq!(
            named("vit_so400m_patch14_siglip_384").unwrap().hidden(),
            4304
        );
        let names = names();
        let unique: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "a name listed twice");
    }
}
