//! The named architectures of timm's `eva.py` that ldae runs: EVA (`eva_giant_*`) and EVA02
//! (`eva02_*`: a rotary embedding on top of the position table, SwiGLU, EVA-CLIP's norm inside
//! the attention), the DINOv3 ViTs (`*_dinov3*`: a rotary position embedding instead of a
//! position table, registers, SwiGLU in the `plus` and 7B ones) and the Perception Encoders
//! (`vit_pe_*`: another rotary embedding on top of the position table, attention pooling over
//! every token in the `core` ones), and the rotary ViTs (timm's `vit_*_rope_reg*_gap_256`,
//! NAVER's axial `vit_*_patch16_rope[_ape]_224`). EVA02's post-norm `enormous` tower and
//! NAVER's `rope_mixed` ViTs (learnt frequencies per block and head) are not among them.

use super::args::{vit, VitArgs};

/// Every named architecture of this file.
pub(super) fn named() -> Vec<(String, VitArgs)> {
    let pe = perception_encoders()
        .into_iter()
        .map(|(n, a)| (n.to_string(), a));
    let eva = eva_family().into_iter().map(|(n, a)| (n.to_string(), a));
    eva.chain(dinov3_family())
        .chain(pe)
        .chain(rope_vits())
        .collect()
}

/// The rotary ViTs: timm's own (registers, patch mean) and NAVER's axial RoPE-ViTs (class
/// token; `ape`: with a position table too).
fn rope_vits() -> Vec<(String, VitArgs)> {
    let sizes = [
        ("small", vit(16, 384, 12, 6)),
        ("base", vit(16, 768, 12, 12)),
        ("large", vit(16, 1024, 24, 16)),
    ];
    let timm = vec![
        (
            "vit_medium_patch16_rope_reg1_gap_256",
            vit(16, 512, 12, 8).rope_gap(1),
        ),
        (
            "vit_mediumd_patch16_rope_reg1_gap_256",
            vit(16, 512, 20, 8).rope_gap(1).no_qkv_bias(),
        ),
        (
            "vit_betwixt_patch16_rope_reg4_gap_256",
            vit(16, 640, 12, 10).rope_gap(4),
        ),
        (
            "vit_base_patch16_rope_reg1_gap_256",
            vit(16, 768, 12, 12).rope_gap(1),
        ),
    ];
    let mut named: Vec<(String, VitArgs)> =
        timm.into_iter().map(|(n, a)| (n.to_string(), a)).collect();
    for (size, args) in sizes {
        let axial = args.clone().rope_axial(false);
        named.push((format!("vit_{size}_patch16_rope_224"), axial));
        named.push((
            format!("vit_{size}_patch16_rope_ape_224"),
            args.rope_axial(true),
        ));
    }
    named
}

/// EVA (the giant towers, a plain ViT with eva.py's names) and EVA02 (the MIM-trained towers
/// at each size and input size, and the EVA-CLIP image towers).
fn eva_family() -> Vec<(&'static str, VitArgs)> {
    let giant = || vit(14, 1408, 40, 16).mlp(6144.0 / 1408.0).eva();
    let tiny = || vit(14, 192, 12, 3).eva02(false);
    let small = || vit(14, 384, 12, 6).eva02(false);
    let base = || vit(14, 768, 12, 12).eva02(true);
    let large = || vit(14, 1024, 24, 16).eva02(true);
    vec![
        ("eva_giant_patch14_224", giant()),
        ("eva_giant_patch14_336", giant()),
        ("eva_giant_patch14_560", giant()),
        ("eva_giant_patch14_clip_224", giant().pool("token")),
        ("eva02_tiny_patch14_224", tiny()),
        ("eva02_tiny_patch14_336", tiny()),
        ("eva02_small_patch14_224", small()),
        ("eva02_small_patch14_336", small()),
        ("eva02_base_patch14_224", base()),
        ("eva02_base_patch14_448", base()),
        ("eva02_large_patch14_224", large()),
        ("eva02_large_patch14_448", large()),
        (
            "eva02_base_patch16_clip_224",
            vit(16, 768, 12, 12).eva02(true).eva_clip(),
        ),
        ("eva02_large_patch14_clip_224", large().eva_clip()),
        ("eva02_large_patch14_clip_336", large().eva_clip()),
    ]
}

/// The DINOv3 ViTs of timm's `eva.py`: each size as released (no qkv bias) and as `_qkvb` (a
/// zero key bias and learnt query / value biases; the distilled EUPE weights use these).
fn dinov3_family() -> Vec<(String, VitArgs)> {
    let sizes = [
        ("tiny", vit(16, 192, 12, 3).dinov3(), false),
        ("small", vit(16, 384, 12, 6).dinov3(), true),
        ("small_plus", vit(16, 384, 12, 6).dinov3().swiglu(8), true),
        ("base", vit(16, 768, 12, 12).dinov3(), true),
        ("large", vit(16, 1024, 24, 16).dinov3(), true),
        ("huge_plus", vit(16, 1280, 32, 20).dinov3().swiglu(8), true),
        (
            "7b",
            vit(16, 4096, 40, 32).dinov3().mlp(2.0).swiglu(64),
            true,
        ),
    ];
    let mut named = Vec::new();
    for (size, args, without_bias) in sizes {
        let name = format!("vit_{size}_patch16_dinov3");
        if without_bias {
            named.push((name.clone(), args.clone()));
        }
        if size != "7b" {
            named.push((format!("{name}_qkvb"), args.qkv_bias()));
        }
    }
    named
}

/// The Perception Encoder towers of timm's `eva.py`: `core` (CLIP image towers, attention
/// pooling, a head projecting into the text space), `lang` and `spatial` (the patch mean, no
/// final norm). The gigantic ones have no class token and no rotary offset.
fn perception_encoders() -> Vec<(&'static str, VitArgs)> {
    let giant = |depth| {
        vit(14, 1536, depth, 16)
            .mlp(8960.0 / 1536.0)
            .no_class_token()
            .pe(32, 0.0)
    };
    vec![
        (
            "vit_pe_core_tiny_patch16_384",
            vit(16, 192, 12, 3).pe(24, 1.0).pe_map(),
        ),
        (
            "vit_pe_core_small_patch16_384",
            vit(16, 384, 12, 6).pe(24, 1.0).pe_map(),
        ),
        (
            "vit_pe_core_base_patch16_224",
            vit(16, 768, 12, 12).pe(14, 1.0).pe_map(),
        ),
        (
            "vit_pe_core_large_patch14_336",
            vit(14, 1024, 24, 16).pe(24, 1.0).pe_map(),
        ),
        ("vit_pe_core_gigantic_patch14_448", giant(50).pe_map()),
        (
            "vit_pe_lang_large_patch14_448",
            vit(14, 1024, 23, 16)
                .pe(32, 1.0)
                .layer_scale(0.1)
                .mean_unnormed(),
        ),
        (
            "vit_pe_lang_gigantic_patch14_448",
            giant(47).layer_scale(0.1).mean_unnormed(),
        ),
        (
            "vit_pe_spatial_tiny_patch16_512",
            vit(16, 192, 12, 3).pe(32, 1.0).mean_unnormed(),
        ),
        (
            "vit_pe_spatial_small_patch16_512",
            vit(16, 384, 12, 6).pe(32, 1.0).mean_unnormed(),
        ),
        (
            "vit_pe_spatial_base_patch16_512",
            vit(16, 768, 12, 12).pe(32, 1.0).mean_unnormed(),
        ),
        (
            "vit_pe_spatial_large_patch14_448",
            vit(14, 1024, 24, 16).pe(32, 1.0).mean_unnormed(),
        ),
        (
            "vit_pe_spatial_gigantic_patch14_448",
            giant(50).layer_scale(0.1).mean_unnormed(),
        ),
    ]
}
