//! timm's CLIP and SigLIP names resolve to their families' settings.

use ldae_model::vit::architectures::{named, names};
use ldae_model::vit::args::{Activation, CLIP_NORM_EPS};

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
