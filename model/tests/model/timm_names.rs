//! timm's CLIP, SigLIP, EVA, DINOv3, Perception Encoder, BEiT and AIMv2 names resolve to their families' settings.

use ldae_model::vit::architectures::{named, names};
use ldae_model::vit::args::{Activation, Naming, NormKind, Rope, TableResize, TORCH_NORM_EPS};

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
        assert_eq!(a.norm_eps, TORCH_NORM_EPS, "{name}");
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

/// Every DINOv3 name of timm 1.0's `eva.py` resolves: rotary embedding and no position table,
/// 4 registers, LayerScale, average pooling after the final norm; query / value biases in the
/// `_qkvb` ones; SwiGLU with timm's hidden widths in the `plus` and 7B ones.
#[test]
fn dinov3_names_resolve() {
    // name, width, depth, heads, MLP hidden width (SwiGLU or not)
    let sizes = [
        ("vit_tiny_patch16_dinov3_qkvb", 192, 12, 3, (768, false)),
        ("vit_small_patch16_dinov3", 384, 12, 6, (1536, false)),
        ("vit_small_patch16_dinov3_qkvb", 384, 12, 6, (1536, false)),
        ("vit_small_plus_patch16_dinov3", 384, 12, 6, (1536, true)),
        (
            "vit_small_plus_patch16_dinov3_qkvb",
            384,
            12,
            6,
            (1536, true),
        ),
        ("vit_base_patch16_dinov3", 768, 12, 12, (3072, false)),
        ("vit_base_patch16_dinov3_qkvb", 768, 12, 12, (3072, false)),
        ("vit_large_patch16_dinov3", 1024, 24, 16, (4096, false)),
        ("vit_large_patch16_dinov3_qkvb", 1024, 24, 16, (4096, false)),
        ("vit_huge_plus_patch16_dinov3", 1280, 32, 20, (5120, true)),
        (
            "vit_huge_plus_patch16_dinov3_qkvb",
            1280,
            32,
            20,
            (5120, true),
        ),
        ("vit_7b_patch16_dinov3", 4096, 40, 32, (8192, true)),
    ];
    for (name, width, depth, heads, (hidden, swiglu)) in sizes {
        let a = named(&format!("{name}.lvd1689m")).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(
            (a.width, a.depth, a.heads, a.patch),
            (width, depth, heads, 16),
            "{name}"
        );
        assert_eq!((a.hidden(), a.swiglu.is_some()), (hidden, swiglu), "{name}");
        assert_eq!(a.qkv_bias, name.ends_with("_qkvb"), "{name}");
        assert_eq!(a.naming, Naming::Eva, "{name}");
        assert_eq!(a.rope, Some(Rope::Dinov3 { temperature: 100.0 }), "{name}");
        assert!(!a.abs_pos && a.class_token && a.reg_tokens == 4, "{name}");
        assert_eq!(a.init_values, Some(1e-5), "{name}");
        assert_eq!(a.norm_eps, TORCH_NORM_EPS, "{name}");
        assert!(a.global_pool == "avg" && !a.uses_fc_norm(), "{name}");
    }
    // Only these: no tiny without biases, no 7B with them.
    let all: Vec<String> = names()
        .into_iter()
        .filter(|n| n.contains("dinov3"))
        .collect();
    assert_eq!(all.len(), sizes.len(), "{all:?}");
}

/// Every Perception Encoder name of timm 1.0's `eva.py` resolves, to the settings timm builds
/// (read off `timm.create_model` for each): width, heads, MLP width, class token, LayerScale,
/// final norm, pooling (core: attention pooling with 8 heads and MLP ratio 4), and the rotary
/// embedding's reference grid and offset.
#[test]
fn perception_encoder_names_resolve() {
    // name, width, heads, MLP width, class token, LayerScale, reference grid, offset
    let core = [
        ("vit_pe_core_tiny_patch16_384", 192, 3, 768, true, 24, 1.0),
        ("vit_pe_core_small_patch16_384", 384, 6, 1536, true, 24, 1.0),
        ("vit_pe_core_base_patch16_224", 768, 12, 3072, true, 14, 1.0),
        (
            "vit_pe_core_large_patch14_336",
            1024,
            16,
            4096,
            true,
            24,
            1.0,
        ),
        (
            "vit_pe_core_gigantic_patch14_448",
            1536,
            16,
            8960,
            false,
            32,
            0.0,
        ),
    ];
    let mean = [
        (
            "vit_pe_lang_large_patch14_448",
            1024,
            16,
            4096,
            true,
            true,
            1.0,
        ),
        (
            "vit_pe_lang_gigantic_patch14_448",
            1536,
            16,
            8960,
            false,
            true,
            0.0,
        ),
        (
            "vit_pe_spatial_tiny_patch16_512",
            192,
            3,
            768,
            true,
            false,
            1.0,
        ),
        (
            "vit_pe_spatial_small_patch16_512",
            384,
            6,
            1536,
            true,
            false,
            1.0,
        ),
        (
            "vit_pe_spatial_base_patch16_512",
            768,
            12,
            3072,
            true,
            false,
            1.0,
        ),
        (
            "vit_pe_spatial_large_patch14_448",
            1024,
            16,
            4096,
            true,
            false,
            1.0,
        ),
        (
            "vit_pe_spatial_gigantic_patch14_448",
            1536,
            16,
            8960,
            false,
            true,
            0.0,
        ),
    ];
    let check = |name: &str, width, heads, hidden, class_token, reference, offset| {
        let a = named(&format!("{name}.fb")).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(
            (a.width, a.heads, a.hidden()),
            (width, heads, hidden),
            "{name}"
        );
        assert_eq!(a.class_token, class_token, "{name}");
        assert_eq!(a.naming, Naming::EvaRope, "{name}");
        assert!(a.pre_norm && a.abs_pos && a.qkv_bias, "{name}");
        assert_eq!(a.norm_eps, TORCH_NORM_EPS, "{name}");
        let rope = Rope::Cat {
            temperature: 10000.0,
            reference: Some(reference),
            offset,
            xy: true,
        };
        assert_eq!(a.rope, Some(rope), "{name}");
        a
    };
    for (name, width, heads, hidden, class_token, reference, offset) in core {
        let a = check(name, width, heads, hidden, class_token, reference, offset);
        assert_eq!(a.global_pool, "map", "{name}");
        assert!(
            a.attn_pool_prefix && a.final_norm && a.init_values.is_none(),
            "{name}"
        );
        assert_eq!((a.pool_heads(), a.pool_hidden()), (8, 4 * width), "{name}");
    }
    for (name, width, heads, hidden, class_token, layer_scale, offset) in mean {
        let a = check(name, width, heads, hidden, class_token, 32, offset);
        assert_eq!(a.global_pool, "avg", "{name}");
        assert!(!a.final_norm, "{name}");
        assert_eq!(a.init_values, layer_scale.then_some(0.1), "{name}");
    }
    let all: Vec<String> = names()
        .into_iter()
        .filter(|n| n.starts_with("vit_pe_"))
        .collect();
    assert_eq!(all.len(), core.len() + mean.len(), "{all:?}");
}

/// Every EVA and EVA02 name of timm 1.0 but the post-norm `eva02_enormous` resolves, to the
/// settings timm builds (read off `timm.create_model` for each).
#[test]
fn eva_names_resolve() {
    // name, width, heads, MLP width, MLP (packed SwiGLU, SwiGLU with a norm and split q / k / v,
    // or plain), pooling, norm inside the attention
    #[derive(PartialEq, Debug, Clone, Copy)]
    enum Mlp {
        Packed,
        Normed,
        Plain,
    }
    use Mlp::*;
    let models = [
        ("eva02_tiny_patch14_224", 192, 3, 512, Packed, "avg", false),
        ("eva02_tiny_patch14_336", 192, 3, 512, Packed, "avg", false),
        (
            "eva02_small_patch14_224",
            384,
            6,
            1024,
            Packed,
            "avg",
            false,
        ),
        (
            "eva02_small_patch14_336",
            384,
            6,
            1024,
            Packed,
            "avg",
            false,
        ),
        (
            "eva02_base_patch14_224",
            768,
            12,
            2048,
            Normed,
            "avg",
            false,
        ),
        (
            "eva02_base_patch14_448",
            768,
            12,
            2048,
            Normed,
            "avg",
            false,
        ),
        (
            "eva02_large_patch14_224",
            1024,
            16,
            2730,
            Normed,
            "avg",
            false,
        ),
        (
            "eva02_large_patch14_448",
            1024,
            16,
            2730,
            Normed,
            "avg",
            false,
        ),
        (
            "eva02_base_patch16_clip_224",
            768,
            12,
            2048,
            Normed,
            "token",
            true,
        ),
        (
            "eva02_large_patch14_clip_224",
            1024,
            16,
            2730,
            Normed,
            "token",
            true,
        ),
        (
            "eva02_large_patch14_clip_336",
            1024,
            16,
            2730,
            Normed,
            "token",
            true,
        ),
        ("eva_giant_patch14_224", 1408, 16, 6144, Plain, "avg", false),
        ("eva_giant_patch14_336", 1408, 16, 6144, Plain, "avg", false),
        ("eva_giant_patch14_560", 1408, 16, 6144, Plain, "avg", false),
        (
            "eva_giant_patch14_clip_224",
            1408,
            16,
            6144,
            Plain,
            "token",
            false,
        ),
        ("eva_large_patch14_196", 1024, 16, 4096, Plain, "avg", false),
        ("eva_large_patch14_336", 1024, 16, 4096, Plain, "avg", false),
    ];
    for (name, width, heads, hidden, mlp, pool, attn_norm) in models {
        let a = named(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(
            (a.width, a.heads, a.patch > 0),
            (width, heads, true),
            "{name}"
        );
        let kind = match a.swiglu {
            Some(s) if s.packed && !s.norm => Packed,
            Some(s) if s.norm && !s.packed => Normed,
            None => Plain,
            Some(other) => panic!("{name}: {other:?}"),
        };
        // The packed MLP's first layer is twice its hidden width, as timm's GluMlp.
        assert_eq!((a.hidden(), kind), (hidden, mlp), "{name}");
        assert_eq!(a.qkv_split, mlp == Normed, "{name}");
        assert_eq!(
            (a.global_pool.as_str(), a.attn_norm),
            (pool, attn_norm),
            "{name}"
        );
        assert_eq!(a.uses_fc_norm(), pool == "avg", "{name}");
        let eva02 = name.starts_with("eva02");
        let rope = Rope::Cat {
            temperature: 10000.0,
            reference: Some(16),
            offset: 0.0,
            xy: false,
        };
        assert_eq!(a.rope, eva02.then_some(rope), "{name}");
        assert_eq!(
            a.naming == Naming::Eva,
            !name.starts_with("eva_large"),
            "{name}"
        );
        assert!(a.class_token && a.abs_pos && a.qkv_bias && a.init_values.is_none());
    }
}

/// The rotary ViTs of timm 1.0's `eva.py` but NAVER's `rope_mixed` ones resolve, to the settings
/// timm builds (read off `timm.create_model` for each).
#[test]
fn rotary_vit_names_resolve() {
    // name, width, heads, registers, qkv bias
    let timm_own = [
        ("vit_medium_patch16_rope_reg1_gap_256", 512, 8, 1, true),
        ("vit_mediumd_patch16_rope_reg1_gap_256", 512, 8, 1, false),
        ("vit_betwixt_patch16_rope_reg4_gap_256", 640, 10, 4, true),
        ("vit_base_patch16_rope_reg1_gap_256", 768, 12, 1, true),
    ];
    for (name, width, heads, registers, bias) in timm_own {
        let a = named(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(
            (a.width, a.heads, a.reg_tokens),
            (width, heads, registers),
            "{name}"
        );
        assert_eq!((a.qkv_bias, a.naming), (bias, Naming::Eva), "{name}");
        assert!(!a.class_token && !a.abs_pos && a.uses_fc_norm(), "{name}");
        let rope = Rope::Cat {
            temperature: 10000.0,
            reference: Some(16),
            offset: 0.0,
            xy: false,
        };
        assert_eq!(
            (a.rope, a.global_pool.as_str()),
            (Some(rope), "avg"),
            "{name}"
        );
    }
    for (size, width, heads) in [("small", 384, 6), ("base", 768, 12), ("large", 1024, 16)] {
        for ape in [false, true] {
            let name = match ape {
                true => format!("vit_{size}_patch16_rope_ape_224"),
                false => format!("vit_{size}_patch16_rope_224"),
            };
            let a = named(&name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(
                (a.width, a.heads, a.naming),
                (width, heads, Naming::EvaRope)
            );
            assert_eq!((a.abs_pos, a.no_embed_class), (ape, ape), "{name}");
            assert!(
                a.class_token && a.qkv_bias && a.global_pool == "token",
                "{name}"
            );
            let rope = Rope::Cat {
                temperature: 100.0,
                reference: None,
                offset: 0.0,
                xy: true,
            };
            assert_eq!(a.rope, Some(rope), "{name}");
        }
    }
    let rotary = names().into_iter().filter(|n| n.contains("_rope")).count();
    assert_eq!(rotary, 10);
}

/// timm's BEiT and BEiT v2 names (not BEiT-3, another architecture) resolve to a relative
/// position table per block, no position table, q / v biases, LayerScale and the patch mean.
#[test]
fn beit_names_resolve() {
    let beit = [
        ("beit_base_patch16_224", 768, 12, 0.1),
        ("beit_base_patch16_384", 768, 12, 0.1),
        ("beit_large_patch16_224", 1024, 24, 1e-5),
        ("beit_large_patch16_384", 1024, 24, 1e-5),
        ("beit_large_patch16_512", 1024, 24, 1e-5),
        ("beitv2_base_patch16_224", 768, 12, 1e-5),
        ("beitv2_large_patch16_224", 1024, 24, 1e-5),
    ];
    for (name, width, depth, init) in beit {
        let a = named(&format!("{name}.in22k_ft_in22k_in1k")).unwrap_or_else(|| panic!("{name}"));
        assert_eq!((a.width, a.depth, a.patch), (width, depth, 16), "{name}");
        assert_eq!(
            (a.naming, a.init_values),
            (Naming::Eva, Some(init)),
            "{name}"
        );
        let rel = a
            .rel_pos
            .unwrap_or_else(|| panic!("{name}: no relative positions"));
        assert!(rel.per_block && !rel.shared && !a.abs_pos, "{name}");
        assert_eq!(rel.resize, TableResize::Geometric, "{name}");
        assert!(
            a.qkv_bias && a.global_pool == "avg" && a.uses_fc_norm(),
            "{name}"
        );
    }
    assert!(named("beit3_base_patch16_224").is_none());
    let count = names()
        .into_iter()
        .filter(|n| n.starts_with("beit"))
        .count();
    assert_eq!(count, beit.len());
}

/// timm's distilled DeiTs resolve to one distillation token beside the class token, pooled
/// by the class token (their mean, in the network).
#[test]
fn distilled_deit_names_resolve() {
    for (name, width) in [
        ("deit_tiny_distilled_patch16_224", 192),
        ("deit_small_distilled_patch16_224", 384),
        ("deit_base_distilled_patch16_224", 768),
        ("deit_base_distilled_patch16_384", 768),
    ] {
        let a = named(&format!("{name}.fb_in1k")).unwrap_or_else(|| panic!("{name}"));
        assert_eq!((a.width, a.depth, a.patch), (width, 12, 16), "{name}");
        assert!(a.distilled && a.class_token && a.abs_pos, "{name}");
        assert_eq!((a.reg_tokens, a.prefix_tokens()), (1, 2), "{name}");
        assert!(!a.no_embed_class && a.global_pool == "token", "{name}");
    }
    assert!(!named("deit_base_patch16_224").unwrap().distilled);
}

/// Apple's AIMv2 towers resolve to RMSNorms (one after the patch embedding), no biases, a
/// SwiGLU MLP of timm's hidden width, and the patch mean after the final norm.
#[test]
fn aimv2_names_resolve() {
    let sizes = [
        ("large", 1024, 8, 2816),
        ("huge", 1536, 12, 4096),
        ("1b", 2048, 16, 5632),
        ("3b", 3072, 24, 8192),
    ];
    for (size, width, heads, hidden) in sizes {
        for side in [224, 336, 448] {
            let name = format!("aimv2_{size}_patch14_{side}");
            let a = named(&format!("{name}.apple_pt")).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(
                (a.width, a.depth, a.heads, a.patch, a.hidden()),
                (width, 24, heads, 14, hidden),
                "{name}"
            );
            assert_eq!((a.norm_kind, a.norm_eps), (NormKind::Rms, 1e-5), "{name}");
            assert!(a.embed_norm && !a.proj_bias && !a.qkv_bias, "{name}");
            let swiglu = a.swiglu.unwrap_or_else(|| panic!("{name}: no SwiGLU"));
            assert!(!swiglu.packed && !swiglu.norm, "{name}");
            assert!(!a.class_token && a.reg_tokens == 0 && a.abs_pos, "{name}");
            assert!(a.global_pool == "avg" && !a.uses_fc_norm(), "{name}");
        }
    }
    let count = names().iter().filter(|n| n.starts_with("aimv2")).count();
    assert_eq!(count, 12);
}

/// DeiT III, DINOv2's and TIPSv2's giant towers, the giant / gigantic ViTs, the so150m ones and
/// InternViT-300M resolve to the settings timm's entry points give them.
#[test]
fn deit3_giant_and_other_vit_names_resolve() {
    for (name, width, depth) in [
        ("deit3_small_patch16_224", 384, 12),
        ("deit3_small_patch16_384", 384, 12),
        ("deit3_medium_patch16_224", 512, 12),
        ("deit3_base_patch16_224", 768, 12),
        ("deit3_base_patch16_384", 768, 12),
        ("deit3_large_patch16_224", 1024, 24),
        ("deit3_large_patch16_384", 1024, 24),
        ("deit3_huge_patch14_224", 1280, 32),
    ] {
        let a = named(&format!("{name}.fb_in22k_ft_in1k")).unwrap_or_else(|| panic!("{name}"));
        assert_eq!((a.width, a.depth), (width, depth), "{name}");
        assert!(
            a.no_embed_class && a.class_token && a.global_pool == "token",
            "{name}"
        );
        assert_eq!(a.init_values, Some(1e-6), "{name}");
    }
    // SwiGLU packed in fc1: 2 x 4096 outputs, fc2 reads 4096.
    for (name, registers, init) in [
        ("vit_giant_patch14_dinov2", 0, 1e-5),
        ("vit_giant_patch14_reg4_dinov2", 4, 1e-5),
        ("vit_giant_patch14_reg1_tipsv2", 1, 1.0),
    ] {
        let a = named(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(
            (a.width, a.depth, a.heads, a.hidden()),
            (1536, 40, 24, 4096)
        );
        let swiglu = a.swiglu.unwrap_or_else(|| panic!("{name}: no SwiGLU"));
        assert!(swiglu.packed && !swiglu.norm, "{name}");
        assert_eq!((a.reg_tokens, a.init_values), (registers, Some(init)));
        assert_eq!(a.no_embed_class, registers > 0, "{name}");
    }
    let so400m = named("vit_so400m_patch14_reg1_tipsv2").unwrap();
    assert_eq!(
        (so400m.width, so400m.depth, so400m.hidden()),
        (1152, 27, 4304)
    );
    for (name, width, depth, hidden, pool) in [
        ("vit_giant_patch14_224", 1408, 40, 6144, "token"),
        ("vit_gigantic_patch14_224", 1664, 48, 8192, "token"),
        ("vit_giant_patch16_gap_224", 1408, 40, 6144, "avg"),
        ("vit_so150m_patch16_reg4_map_256", 896, 18, 2304, "map"),
        ("vit_so150m2_patch16_reg1_gap_448", 832, 21, 2176, "avg"),
    ] {
        let a = named(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(
            (a.width, a.depth, a.hidden(), a.global_pool.as_str()),
            (width, depth, hidden, pool),
            "{name}"
        );
    }
    let so150m2 = named("vit_so150m2_patch16_reg1_gap_256").unwrap();
    assert!(!so150m2.qkv_bias && so150m2.uses_fc_norm() && so150m2.reg_tokens == 1);
    let intern = named("vit_intern300m_patch14_448").unwrap();
    assert!(!intern.final_norm && intern.global_pool == "token");
    assert_eq!(intern.init_values, Some(0.1));
}
