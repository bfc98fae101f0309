//! timm's named `VisionTransformer` architectures: the settings each name stands for (timm's
//! `config.json` records only the name and the arguments given on top of it).
//!
//! The table covers the plain ViT family of timm's `vision_transformer.py` and `deit.py` (the
//! distilled DeiTs with their distillation token, DeiT III): every named model built from patch
//! embedding, class / register tokens, pre-norm blocks with GELU (or, in DINOv2's giant towers,
//! packed SwiGLU) MLPs and optional LayerScale, and token, average, attention or no pooling; the
//! CLIP image towers of the same file (`*_clip_*`: a LayerNorm before the blocks, norms of
//! epsilon 1e-5, QuickGELU in the `*_clip_quickgelu_*` ones); the SigLIP towers (`*_siglip_*`:
//! attention pooling `map`, or `gap`; tanh GELU in some); Apple's AIMv2 towers (`aimv2_*`:
//! RMSNorm, SwiGLU, no biases); and `beit.py`'s BEiT and BEiT v2 (relative position bias). The
//! families named once per training size are in `sized_architectures.rs`; timm's `eva.py`
//! models (EVA / EVA02, the DINOv3 ViTs, the Perception Encoders and the rotary ViTs) in
//! `eva_architectures.rs`. Models with other layers (other activations, qk-norm, parallel
//! blocks, `prr` pooling) are not in it, so they fail with a clear error instead of giving
//! wrong features.

use super::args::{vit, VitArgs};
use super::eva_architectures as eva;
use super::sized_architectures::sized_families;

/// The named architectures (timm 1.0's `model_args` of each entry point).
fn table() -> Vec<(&'static str, VitArgs)> {
    // DINOv2's giant tower: SwiGLU packed in `fc1` (timm's `SwiGLUPacked`, gate first), a
    // hidden width of 4096.
    let giant = || vit(14, 1536, 40, 24).mlp(2.66667).swiglu_packed();
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
        // DINOv2's and TIPSv2's giant towers (`giant` below).
        ("vit_giant_patch14_dinov2", giant().layer_scale(1e-5)),
        (
            "vit_giant_patch14_reg4_dinov2",
            giant().registers(4).no_embed_class().layer_scale(1e-5),
        ),
        (
            "vit_giant_patch14_reg1_tipsv2",
            giant().registers(1).no_embed_class().layer_scale(1.0),
        ),
        (
            "vit_so400m_patch14_reg1_tipsv2",
            vit(14, 1152, 27, 16)
                .mlp(4304.0 / 1152.0)
                .registers(1)
                .no_embed_class()
                .layer_scale(1.0),
        ),
        (
            "vit_giant_patch14_224",
            vit(14, 1408, 40, 16).mlp(48.0 / 11.0),
        ),
        (
            "vit_gigantic_patch14_224",
            vit(14, 1664, 48, 16).mlp(64.0 / 13.0),
        ),
        (
            "vit_giant_patch16_gap_224",
            vit(16, 1408, 40, 16)
                .mlp(48.0 / 11.0)
                .no_class_token()
                .pool("avg")
                .fc_norm(false),
        ),
        // InternViT-300M (InternVL's vision tower): LayerScale 0.1, no final norm, the class
        // token.
        (
            "vit_intern300m_patch14_448",
            vit(14, 1024, 24, 16).layer_scale(0.1).no_final_norm(),
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
            "vit_so150m_patch16_reg4_map_256",
            vit(16, 896, 18, 14)
                .mlp(2.572)
                .no_class_token()
                .registers(4)
                .pool("map"),
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
        // EVA's large towers are plain ViTs in vision_transformer.py (its giant ones and EVA02
        // are in eva.py).
        ("eva_large_patch14_196", vit(14, 1024, 24, 16).pool("avg")),
        ("eva_large_patch14_336", vit(14, 1024, 24, 16).pool("avg")),
        ("deit_tiny_patch16_224", vit(16, 192, 12, 3)),
        ("deit_small_patch16_224", vit(16, 384, 12, 6)),
        ("deit_base_patch16_224", vit(16, 768, 12, 12)),
        ("deit_base_patch16_384", vit(16, 768, 12, 12)),
        (
            "deit_tiny_distilled_patch16_224",
            vit(16, 192, 12, 3).distilled(),
        ),
        (
            "deit_small_distilled_patch16_224",
            vit(16, 384, 12, 6).distilled(),
        ),
        (
            "deit_base_distilled_patch16_224",
            vit(16, 768, 12, 12).distilled(),
        ),
        (
            "deit_base_distilled_patch16_384",
            vit(16, 768, 12, 12).distilled(),
        ),
        // timm's beit.py: BEiT and BEiT v2 (relative position bias, patch mean).
        ("beit_base_patch16_224", vit(16, 768, 12, 12).beit(0.1)),
        ("beit_base_patch16_384", vit(16, 768, 12, 12).beit(0.1)),
        ("beit_large_patch16_224", vit(16, 1024, 24, 16).beit(1e-5)),
        ("beit_large_patch16_384", vit(16, 1024, 24, 16).beit(1e-5)),
        ("beit_large_patch16_512", vit(16, 1024, 24, 16).beit(1e-5)),
        ("beitv2_base_patch16_224", vit(16, 768, 12, 12).beit(1e-5)),
        ("beitv2_large_patch16_224", vit(16, 1024, 24, 16).beit(1e-5)),
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

/// Every named architecture: the table, the sized families spelt out, then eva.py's.
fn all() -> Vec<(String, VitArgs)> {
    let table = table().into_iter().map(|(n, a)| (n.to_string(), a));
    let families = sized_families()
        .into_iter()
        .flat_map(|(prefix, sizes, args)| {
            sizes
                .iter()
                .map(move |size| (format!("{prefix}_{size}"), args.clone()))
        });
    table.chain(families).chain(eva::named()).collect()
}
