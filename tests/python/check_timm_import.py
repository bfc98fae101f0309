"""`ldae features --checkpoint DIR` on timm model folders against timm itself.

Each model is a timm VisionTransformer, randomly initialised and then perturbed (LayerNorm
weights and biases, LayerScale gammas, class and register tokens all away from their initial
values, so every parameter's mapping is exercised), saved with `timm.models.save_for_hf`. The
photos are generated JPEGs of several sizes and aspect ratios. timm's features are its eval
transform on the Pillow image (`create_transform(**resolve_data_config({}, model=m))`) then
`forward_head(forward_features(x), pre_logits=True)`.

Variants: class token, avg pooling with fc_norm, registers with LayerScale (DINOv2), no class
token, a distilled DeiT (class and distillation tokens; its two heads with `--pooling head`),
CLIP towers (norm_pre, epsilon 1e-5, QuickGELU), SigLIP towers (attention pooling, tanh GELU),
and from timm's eva.py DINOv3 (rotary position embedding, query / value biases, SwiGLU), the
Perception Encoders (interleaved rotary embedding, attention pooling over every token), EVA02
(SwiGLU with a norm, separate q / k / v, EVA-CLIP's attention norm) and EVA; and from beit.py
BEiT and BEiT v2 (relative position bias per block, or shared); and AIMv2 (RMSNorm, no biases).

Checked per variant: max |diff| / max |value| <= 1e-3 and per-row cosine >= 0.9999. Also an
inner block with mean pooling, pooling none (every token), a resampled position embedding at
another input size (BEiT's relative position tables resized as timm does), and clear errors
for an unknown architecture, a missing tensor and a wrongly shaped one.
"""
import copy
import io
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
import timm
from PIL import Image
from safetensors.torch import load_file, save_file
from timm.data import create_transform, resolve_data_config
from timm.layers import resample_abs_pos_embed
from timm.models import save_for_hf

from common import compare, ldae, photo, read_features, refused, scratch_dir

torch.manual_seed(0)
torch.set_num_threads(2)
rng = np.random.default_rng(3)
TMP = scratch_dir("ldae-timm-")

VARIANTS = [
    # name, timm architecture, create_model arguments (save_for_hf records them)
    # (Shallower than the named models where the depth does not matter: every ldae run pads
    # to 32 images, so each block costs a whole chunk.)
    ("class-token", "vit_tiny_patch16_224", {"depth": 8}),
    ("avg-fc-norm", "vit_tiny_patch16_224", {"global_pool": "avg", "depth": 4}),
    ("reg4-layerscale", "vit_small_patch14_reg4_dinov2", {"img_size": 224, "depth": 4}),
    ("gap-no-class-token", "vit_medium_patch16_gap_256", {"depth": 4}),
    # A distilled DeiT: a distillation token after the class token, the feature their mean.
    ("deit-distilled", "deit_tiny_distilled_patch16_224", {"depth": 2}),
    # CLIP towers: a norm before the blocks, no patch-embedding bias, norms of epsilon 1e-5
    # (told apart from 1e-6 only where token variances are that small: see `faint`).
    ("clip", "vit_medium_patch16_clip_224", {"depth": 4}),
    ("clip-quickgelu", "vit_base_patch32_clip_quickgelu_224", {"depth": 2}),
    # SigLIP towers: attention pooling (`map`), one with tanh GELU.
    ("siglip-map", "vit_base_patch16_siglip_224", {"depth": 2}),
    ("siglip-gelu-tanh", "vit_base_patch32_siglip_256", {"depth": 2}),
    # 384 px with patch 14: the patch embedding reads the top-left 378 (27 x 27 patches).
    ("siglip-so400m-384", "vit_so400m_patch14_siglip_384", {"depth": 1}),
    # DINOv3 (timm's eva.py): rotary position embedding and no position table, 4 registers,
    # query and value biases; the `plus` sizes with a SwiGLU MLP.
    ("dinov3-qkvb", "vit_small_patch16_dinov3_qkvb", {"depth": 3}),
    ("dinov3-swiglu", "vit_small_plus_patch16_dinov3", {"depth": 2}),
    # Perception Encoder (eva.py with AttentionRope): an interleaved rotary embedding on top of
    # the position table, `norm_pre`; `core` pools by attention over every token (class token
    # included) with its own 8 heads; `lang` / `spatial` take the patch mean with no final
    # norm. The spatial tower at 256 px has its rotary coordinates rescaled (grid 16, reference
    # 32); the gigantic shape has no class token, no rotary offset and LayerScale.
    ("pe-core", "vit_pe_core_base_patch16_224", {"depth": 2, "num_classes": 16}),
    ("pe-spatial", "vit_pe_spatial_tiny_patch16_512", {"depth": 2, "img_size": 256}),
    ("pe-lang-gigantic", "vit_pe_lang_gigantic_patch14_448", {"depth": 1, "img_size": 112}),
    # EVA02 (eva.py): the interleaved rotary embedding on top of the position table (row
    # first, rescaled to a 16 x 16 grid), q / v biases, SwiGLU: packed in the small one; with a
    # norm, separate q / k / v projections and (EVA-CLIP) a norm inside the attention in the
    # base one, whose 14 x 14 grid rescales the rotary coordinates. EVA's giant tower is a plain
    # ViT under eva.py's names.
    ("eva02-small", "eva02_small_patch14_224", {"depth": 2}),
    ("eva02-clip", "eva02_base_patch16_clip_224", {"depth": 2}),
    ("eva-giant", "eva_giant_patch14_224", {"depth": 1, "img_size": 112}),
    # Rotary ViTs: timm's (a register, no class token, no position table) and NAVER's axial
    # one (column first, no reference grid, a position table without the class token).
    ("rope-reg-gap", "vit_medium_patch16_rope_reg1_gap_256", {"depth": 2}),
    ("rope-axial-ape", "vit_small_patch16_rope_ape_224", {"depth": 2}),
    # BEiT (beit.py): a relative position bias table in every block instead of a position
    # table, q / v biases, LayerScale, the patch mean with fc_norm; BEiT v2's shape with one
    # table shared by all blocks and a position table too.
    ("beit", "beit_base_patch16_224", {"depth": 2}),
    ("beitv2-shared", "beitv2_base_patch16_224",
     {"depth": 2, "use_rel_pos_bias": False, "use_shared_rel_pos_bias": True,
      "use_abs_pos_emb": True}),
    # DeiT III: the position table without the class token, LayerScale.
    ("deit3", "deit3_small_patch16_224", {"depth": 2}),
    # DINOv2's giant tower: SwiGLU packed in fc1 (gate first), registers.
    ("dinov2-giant-swiglu", "vit_giant_patch14_reg4_dinov2", {"depth": 1, "img_size": 112}),
    # AIMv2: RMSNorms (one after the patch embedding too), no biases in the blocks, SwiGLU
    # (fc1_g / fc1_x), no class token, the patch mean after the final norm.
    ("aimv2", "aimv2_large_patch14_224", {"depth": 2}),
]

# Parameters scaled per variant, so that what sets the variant apart shows in its features:
# "clip"'s embedded tokens to a variance near the norm epsilon (1e-5 and 1e-6 then give features
# far apart), "clip-quickgelu"'s MLP inputs to where QuickGELU and GELU differ most.
SCALED = {
    "clip": {"patch_embed.proj.weight": 0.003, "pos_embed": 0.003, "cls_token": 0.003},
    "clip-quickgelu": {"mlp.fc1.weight": 4.0},
    "siglip-gelu-tanh": {"mlp.fc1.weight": 4.0},
    "dinov3-qkvb": {"attn.qkv.weight": 5.0},
    "dinov3-swiglu": {"attn.qkv.weight": 5.0},
    "pe-core": {"attn.qkv.weight": 5.0},
    "pe-spatial": {"attn.qkv.weight": 5.0},
    "pe-lang-gigantic": {"attn.qkv.weight": 5.0},
    "eva02-small": {"attn.qkv.weight": 5.0},
    "eva02-clip": {"attn.q_proj.weight": 5.0, "attn.k_proj.weight": 5.0},
    "rope-reg-gap": {"attn.qkv.weight": 5.0},
    "rope-axial-ape": {"attn.qkv.weight": 5.0},
    "beit": {"attn.qkv.weight": 5.0},
    "beitv2-shared": {"attn.qkv.weight": 5.0},
}
# The variants whose attention is sharpened above.
SHARP = {label for label, scaled in SCALED.items() if any("attn.q" in k for k in scaled)}


def write_photos():
    folder = os.path.join(TMP, "photos")
    os.makedirs(folder)
    sizes = [(500, 375), (375, 500), (640, 427), (300, 300), (257, 193), (224, 224),
             (800, 533), (333, 500)]
    for i, (w, h) in enumerate(sizes):
        Image.fromarray(photo(w, h, rng)).save(os.path.join(folder, f"p{i}.jpg"), quality=90)
    return folder


def perturbed(arch, kwargs, scaled=None):
    m = timm.create_model(arch, pretrained=False, **{"num_classes": 0, **kwargs}).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            factor = next((f for k, f in (scaled or {}).items() if name.endswith(k)), None)
            if factor is not None:
                p.mul_(factor)
                continue
            if name.endswith(("gamma", "gamma_1", "gamma_2")):
                p.copy_(0.3 + 0.4 * torch.rand_like(p))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith("relative_position_bias_table"):
                # Zeros at initialisation: a bias of a few units, so positions matter.
                p.copy_(torch.randn_like(p))
            elif name.endswith("bias") or name in ("cls_token", "reg_token", "dist_token"):
                p.copy_(0.05 * torch.randn_like(p))
    return m


def timm_features(m, folder, transform=None, fn=None):
    transform = transform or create_transform(**resolve_data_config({}, model=m))
    names = sorted(os.listdir(folder))
    x = torch.stack([transform(Image.open(os.path.join(folder, n)).convert("RGB")) for n in names])
    with torch.no_grad():
        out = fn(x) if fn else m.forward_head(m.forward_features(x), pre_logits=True)
    return names, out.reshape(len(names), -1).numpy()


def ldae_features(model_dir, folder, tag, *flags):
    out = os.path.join(TMP, f"features-{tag}")
    ldae("features", "--checkpoint", model_dir, "--input", folder, "--out", out, *flags)
    return read_features(out)


def expect_error(model_dir, folder, needle, *flags):
    return refused(needle, "features", "--checkpoint", model_dir, "--input", folder,
                   "--out", os.path.join(TMP, "never"), *flags)


def main():
    folder = write_photos()
    models = {}
    for label, arch, kwargs in VARIANTS:
        m = perturbed(arch, kwargs, SCALED.get(label))
        d = os.path.join(TMP, label)
        save_for_hf(m, d, safe_serialization=True)
        # The reference is the folder as timm loads it (its recorded preprocessing included).
        m = timm.create_model(f"local-dir:{d}", pretrained=True).eval()
        models[label] = (m, d)
        if label not in SHARP:
            compare(f"{label} ({arch})", timm_features(m, folder), ldae_features(d, folder, label))
            continue
        # Sharpened attention (see SCALED) makes a feature follow few patches, where the
        # resize's rare one-level differences from Pillow show: the photos are held to 3e-3,
        # and PNGs already at the resize's size (the input size over crop_pct: no resize, only
        # the crop) compare the network alone, to 1e-4.
        data = resolve_data_config({}, model=m)
        size = math.floor(data["input_size"][-1] / data["crop_pct"])
        exact = os.path.join(TMP, f"photos-{size}")
        if not os.path.exists(exact):
            os.makedirs(exact)
            for i in range(4):
                Image.fromarray(photo(size, size, rng)).save(os.path.join(exact, f"q{i}.png"))
        compare(f"{label} ({arch}) {size} px PNGs", timm_features(m, exact),
                ldae_features(d, exact, f"{label}-exact"), tolerance=1e-4)
        # (A class token, as the feature, follows fewest patches: 5e-3 as for DINOv3's below.)
        compare(f"{label} ({arch})", timm_features(m, folder), ldae_features(d, folder, label),
                tolerance=5e-3 if m.global_pool == "token" else 3e-3)

    # An inner block, mean over the patch tokens (no final norm: timm's intermediates).
    m, d = models["class-token"]

    def block6_mean(x):
        h = m.norm_pre(m._pos_embed(m.patch_embed(x)))
        for blk in m.blocks[:6]:
            h = blk(h)
        return h[:, m.num_prefix_tokens:].mean(1)

    compare("class-token --block 6 --pooling mean", timm_features(m, folder, fn=block6_mean),
            ldae_features(d, folder, "block6", "--block", "6", "--pooling", "mean"))

    # timm's crop_mode "squash": both sides resized to input_size / crop_pct (the aspect ratio
    # not kept), then the centre crop.
    squash = os.path.join(TMP, "class-token-squash")
    shutil.copytree(d, squash)
    with open(os.path.join(squash, "config.json")) as f:
        config = json.load(f)
    config["pretrained_cfg"]["crop_mode"] = "squash"
    with open(os.path.join(squash, "config.json"), "w") as f:
        json.dump(config, f)
    m_squash = timm.create_model(f"local-dir:{squash}", pretrained=True).eval()
    assert resolve_data_config({}, model=m_squash)["crop_mode"] == "squash"
    compare("class-token, crop_mode squash", timm_features(m_squash, folder),
            ldae_features(squash, folder, "squash"))

    # Every token (class and registers first), as forward_features returns them. A single
    # token sees one patch of pixels, where the resize's rare one-level differences from
    # Pillow (0.4% of values) are not averaged out: 5e-3 here, 1e-3 for pooled features.
    m, d = models["reg4-layerscale"]
    compare("reg4-layerscale --pooling none", timm_features(m, folder, fn=m.forward_features),
            ldae_features(d, folder, "none", "--pooling", "none"), tolerance=5e-3)

    # Another input size: timm's resampled position embedding.
    m, d = models["class-token"]
    small = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0,
                              img_size=192, depth=8).eval()
    state = m.state_dict()
    state["pos_embed"] = resample_abs_pos_embed(state["pos_embed"], (12, 12), num_prefix_tokens=1)
    small.load_state_dict(state)
    cfg = resolve_data_config({}, model=m)
    cfg["input_size"] = (3, 192, 192)
    compare("class-token --image-size 192", timm_features(small, folder, create_transform(**cfg)),
            ldae_features(d, folder, "s192", "--image-size", "192"))

    # DINOv3: the class token (upstream DINOv3's feature; timm's default pools the patches),
    # an inner block, and another input size (the rotary embedding computed for a 12 x 12 grid).
    # The class token follows few patches, like a single token: 5e-3 on the photos, 1e-4 on
    # PNGs at the input size.
    m, d = models["dinov3-qkvb"]
    exact = os.path.join(TMP, "photos-256")  # written for the DINOv3 variants above
    class_token = lambda x: m.forward_features(x)[:, 0]  # noqa: E731
    compare("dinov3-qkvb --pooling token (256 px PNGs)", timm_features(m, exact, fn=class_token),
            ldae_features(d, exact, "dinov3-token", "--pooling", "token"), tolerance=1e-4)
    compare("dinov3-qkvb --pooling token", timm_features(m, folder, fn=class_token),
            ldae_features(d, folder, "dinov3-token-photos", "--pooling", "token"), tolerance=5e-3)

    def dinov3_block2_mean(x):
        h, rope = m._pos_embed(m.patch_embed(x))
        for blk in m.blocks[:2]:
            h = blk(h, rope=rope)
        return h[:, m.num_prefix_tokens:].mean(1)

    compare("dinov3-qkvb --block 2 --pooling mean", timm_features(m, folder, fn=dinov3_block2_mean),
            ldae_features(d, folder, "dinov3-block2", "--block", "2", "--pooling", "mean"),
            tolerance=3e-3)
    cfg = resolve_data_config({}, model=m)
    cfg["input_size"] = (3, 192, 192)
    compare("dinov3-qkvb --image-size 192", timm_features(m, folder, create_transform(**cfg)),
            ldae_features(d, folder, "dinov3-s192", "--image-size", "192"), tolerance=3e-3)
    # BEiT's relative position tables resized to the new grid as timm's set_input_size does
    # (BEiT's geometric spacing, linear interpolation), smaller and larger, per block and shared.
    for label, side in [("beit", 160), ("beitv2-shared", 288)]:
        m, d = models[label]
        resized = copy.deepcopy(m)
        resized.set_input_size(img_size=side)
        cfg = resolve_data_config({}, model=m)
        cfg["input_size"] = (3, side, side)
        compare(f"{label} --image-size {side}", timm_features(resized, folder, create_transform(**cfg)),
                ldae_features(d, folder, f"{label}-s{side}", "--image-size", str(side)),
                tolerance=3e-3)
    # Checkpoints of older timm releases also hold each block's relative position index (a
    # buffer, worked out from the grid): read past.
    m, d = models["beit"]
    with_index = os.path.join(TMP, "beit-with-index")
    shutil.copytree(d, with_index)
    weights = os.path.join(with_index, "model.safetensors")
    tensors = load_file(weights)
    for i, blk in enumerate(m.blocks):
        tensors[f"blocks.{i}.attn.relative_position_index"] = blk.attn.relative_position_index.clone()
    save_file(tensors, weights)
    compare("beit with saved relative_position_index buffers", timm_features(m, folder),
            ldae_features(with_index, folder, "beit-index"), tolerance=3e-3)

    # The model's output, head included (`--pooling head`): a CLIP tower's projection into the
    # space it shares with text, here to 24 values; and a SigLIP tower's head behind its
    # attention pooling.
    for label, arch, kwargs in [
        ("clip-head", "vit_medium_patch16_clip_224", {"depth": 2, "num_classes": 24}),
        ("siglip-head", "vit_base_patch16_siglip_224", {"depth": 2, "num_classes": 10}),
        ("pe-core-head", "vit_pe_core_base_patch16_224", {"depth": 2, "num_classes": 16}),
        # The mean of head (class token) and head_dist (distillation token).
        ("deit-distilled-head", "deit_tiny_distilled_patch16_224", {"depth": 2, "num_classes": 10}),
    ]:
        d = os.path.join(TMP, label)
        save_for_hf(perturbed(arch, kwargs), d, safe_serialization=True)
        m = timm.create_model(f"local-dir:{d}", pretrained=True).eval()
        models[label] = (m, d)
        compare(f"{label} --pooling head", timm_features(m, folder, fn=m),
                ldae_features(d, folder, label, "--pooling", "head"), tolerance=3e-3)

    # Clear errors: an unknown architecture, a missing tensor, a wrongly shaped one.
    src = models["class-token"][1]
    tensors = load_file(os.path.join(src, "model.safetensors"))
    config = json.load(open(os.path.join(src, "config.json")))

    def broken(tag, arch=None, drop=None, reshape=None):
        d = os.path.join(TMP, f"broken-{tag}")
        os.makedirs(d)
        c = dict(config, architecture=arch or config["architecture"])
        json.dump(c, open(os.path.join(d, "config.json"), "w"))
        t = {k: v for k, v in tensors.items() if k != drop}
        if reshape:
            t[reshape] = t[reshape][:-1].contiguous()
        save_file(t, os.path.join(d, "model.safetensors"))
        return d

    expect_error(broken("arch", arch="vit_tiny_swiglu_mystery"), folder, "vit_tiny_swiglu_mystery")
    # Attention pooling reads the last block only, and only a model that has one.
    expect_error(models["siglip-map"][1], folder, "not block 1", "--block", "1", "--pooling", "map")
    expect_error(src, folder, "has no attention pooling", "--pooling", "map")
    expect_error(src, folder, "has no head", "--pooling", "head")

    # A folder with only PyTorch's pickle: refused, with a conversion command that works.
    m, _ = models["clip-head"]
    pickled = os.path.join(TMP, "pickled")
    save_for_hf(m, pickled, safe_serialization=False)
    assert not os.path.exists(os.path.join(pickled, "model.safetensors"))
    message = expect_error(pickled, folder, "pytorch_model.bin")
    command = message.split('python3 -c "', 1)[1].rsplit('"', 1)[0]
    subprocess.run([sys.executable, "-c", command], check=True)
    compare("pickled, converted as told --pooling head", timm_features(m, folder, fn=m),
            ldae_features(pickled, folder, "pickled", "--pooling", "head"))
    expect_error(models["clip-head"][1], folder, "not block 1", "--block", "1", "--pooling", "head")
    expect_error(broken("missing", drop="blocks.3.mlp.fc1.bias"), folder, "blocks.3.mlp.fc1.bias")
    expect_error(broken("shape", reshape="blocks.2.attn.qkv.weight"), folder,
                 "blocks.2.attn.qkv.weight")
    print("timm import: OK")


if __name__ == "__main__":
    main()
