//! timm's architectures named `{prefix}_{size}`, one name per training size with the same
//! settings (CLIP, SigLIP, so150m2, DeiT III, AIMv2): the prefixes and their sizes.

use super::args::{vit, VitArgs};

/// Families named `{prefix}_{size}` for each training size, the settings the same: the CLIP
/// towers (timm's `*_clip_*`, then the same with QuickGELU), the SigLIP towers (attention
/// pooling `map`, and the GAP ones with tanh GELU that the plain table leaves out), so150m2,
/// DeiT III and AIMv2.
pub(super) fn sized_families() -> Vec<(&'static str, &'static [usize], VitArgs)> {
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
        (
            "vit_so150m2_patch16_reg1_gap",
            &[256, 384, 448],
            vit(16, 832, 21, 13)
                .mlp(34.0 / 13.0)
                .layer_scale(1e-5)
                .no_qkv_bias()
                .no_class_token()
                .registers(1)
                .pool("avg"),
        ),
        (
            "deit3_small_patch16",
            &[224, 384],
            vit(16, 384, 12, 6).deit3(),
        ),
        ("deit3_medium_patch16", &[224], vit(16, 512, 12, 8).deit3()),
        (
            "deit3_base_patch16",
            &[224, 384],
            vit(16, 768, 12, 12).deit3(),
        ),
        (
            "deit3_large_patch16",
            &[224, 384],
            vit(16, 1024, 24, 16).deit3(),
        ),
        ("deit3_huge_patch14", &[224], vit(14, 1280, 32, 16).deit3()),
        (
            "aimv2_large_patch14",
            &[224, 336, 448],
            vit(14, 1024, 24, 8).aimv2(2.75),
        ),
        (
            "aimv2_huge_patch14",
            &[224, 336, 448],
            vit(14, 1536, 24, 12).aimv2(2.6667),
        ),
        (
            "aimv2_1b_patch14",
            &[224, 336, 448],
            vit(14, 2048, 24, 16).aimv2(2.75),
        ),
        (
            "aimv2_3b_patch14",
            &[224, 336, 448],
            vit(14, 3072, 24, 24).aimv2(2.6667),
        ),
    ]
}
