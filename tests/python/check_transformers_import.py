"""`ldae features --checkpoint DIR` on Hugging Face transformers model folders against
transformers itself.

Each model is a transformers class, randomly initialised and then perturbed (LayerNorm weights
and biases, LayerScale, class and register tokens and every bias away from their initial
values; queries and keys scaled so attention is sharp and positions matter), saved with
`save_pretrained` beside its image processor's settings. transformers' features are its image
processor (the default torchvision backend, and the PIL one) on the Pillow image, then the
model:

- `vit` (ViTModel, with its pooler): `last_hidden_state[:, 0]`; ViTForImageClassification's
  logits with `--pooling head`; at another input size, `interpolate_pos_encoding=True`;
- `vit_mae` (ViTMAEForPreTraining, decoder and mask ratio 0.75 saved with it): the unmasked
  encoder's `last_hidden_state[:, 0]`; `vit_msn` (ViTMSNModel): the same; `ijepa`
  (IJepaForImageClassification, no class token): the mean of `last_hidden_state`, and its
  logits with `--pooling head`; `deit` (DeiTForImageClassificationWithTeacher, a
  distillation token): `last_hidden_state[:, 0]`, and its logits (the mean of its two
  classifiers) with `--pooling head`;
- `dinov2` (Dinov2Model, trained at 518 px: the position table resampled to 224's grid on
  every call) and `dinov2_with_registers` with the SwiGLU MLP of the giant towers:
  `pooler_output`, and with `--pooling token_mean` the class token beside the patch mean
  (registers left out), as Dinov2ForImageClassification's classifier reads it; that
  classifier's logits with `--pooling head`;
- `dinov3_vit` (DINOv3ViTModel with registers and rotary positions; one with the gated SwiGLU
  MLP, a key bias and no output-projection or MLP biases): `pooler_output`, also at 160 px,
  saved in shards (`model.safetensors.index.json`) and named by a hub id in a Hugging Face
  cache (`HF_HUB_CACHE`);
- `beit` (BeitModel: a relative position bias per layer, `pooler_output` = the patch mean
  behind `pooler.layernorm`; BeitForMaskedImageModeling with one table shared by the layers:
  the mean of the patch tokens after its `layernorm`; BeitForImageClassification without mean
  pooling and with a position table: its logits with `--pooling head`; at 160 px, the tables
  resized as `interpolate_pos_encoding` does) and `data2vec-vision`: `pooler_output`;
- `clip` (CLIPModel, both towers): the image tower's `pooler_output`, and with `--pooling
  head` the image embedding (`visual_projection` of it);
- `siglip` (SiglipModel, both towers): `pooler_output` (attention pooling); a SiglipVisionModel
  without its head: the mean of `last_hidden_state`;
- `aimv2_vision_model` (Aimv2VisionModel: RMSNorm, SwiGLU, no biases): `pooler_output` (its
  attention-pooling head); without the head and with biases: the mean of `last_hidden_state`;
  `aimv2` (Aimv2Model, both towers) with `--pooling head`: the image embedding.

Two image sets: PNGs at the processor's resize size, so no resize runs and the network alone is
compared (max |diff| / max |value| <= 1e-4), and photo-like JPEGs of several sizes and aspect
ratios, resized (<= 1e-3 against the default torchvision backend; the PIL backend's resize
differs from it, and is held only to 5e-2; DINOv3's processor resizes in floating point
where ldae, like the others, resizes 8-bit pixels: up to about 7e-4). Processor files in the
hub's older form (plain-number sizes, read per processor class) are checked for CLIP and ViT.
Also: an unknown tensor, a missing one, a missing shard, a missing processor file, a hub id
not in the cache, a revision not in it and AIMv2's native-resolution form are refused with an
error that names them.
"""
import hashlib
import json
import os
import shutil

import numpy as np
import torch
import transformers as T
from PIL import Image

from common import compare as compare_features, ldae, photo, read_features, refused, scratch_dir

torch.manual_seed(0)
torch.set_num_threads(2)
T.utils.logging.disable_progress_bar()
rng = np.random.default_rng(5)
TMP = scratch_dir("ldae-transformers-")


def write_images(name, sizes, ext):
    folder = os.path.join(TMP, name)
    os.makedirs(folder, exist_ok=True)
    for i, (w, h) in enumerate(sizes):
        Image.fromarray(photo(w, h, rng)).save(os.path.join(folder, f"p{i}.{ext}"), quality=90)
    return folder


def perturb(model, sharpen=("query.weight", "key.weight", "q_proj.weight", "k_proj.weight")):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(sharpen):
                p.mul_(3.0)
            elif name.endswith(("lambda1", "lambda_1", "lambda_2")):
                p.copy_(0.3 + 0.4 * torch.rand_like(p))
            elif name.endswith("relative_position_bias_table"):
                # Zeros at initialisation: a bias of a few units, so positions matter.
                p.copy_(torch.randn_like(p))
            elif ("norm" in name or "layrnorm" in name) and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith(("bias", "cls_token", "register_tokens", "class_embedding")):
                p.copy_(0.05 * torch.randn_like(p))
    return model.eval()


def save(label, model, processor):
    d = os.path.join(TMP, label)
    model.save_pretrained(d)
    processor.save_pretrained(d)
    return d


def reference(d, folder, fn, backend=None, **processor_args):
    processor = T.AutoImageProcessor.from_pretrained(d, backend=backend, **processor_args)
    names = sorted(os.listdir(folder))
    images = [Image.open(os.path.join(folder, n)).convert("RGB") for n in names]
    x = processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        out = fn(x)
    return names, out.reshape(len(names), -1).numpy()


def ldae_features(model_dir, folder, tag, *flags):
    out = os.path.join(TMP, f"features-{tag}")
    ldae("features", "--checkpoint", model_dir, "--input", folder, "--out", out, *flags)
    return read_features(out)


def compare(label, ref, got, tolerance):
    return compare_features(label, ref, got, tolerance, min_cosine=0.999)


def expect_error(model_dir, folder, needle):
    refused(needle, "features", "--checkpoint", model_dir, "--input", folder,
            "--out", os.path.join(TMP, "never"))


SMALL = dict(hidden_size=192, num_attention_heads=3, intermediate_size=576)
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
IMAGENET = dict(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])


def variants():
    """(label, model, processor, feature fn, resize side, ldae flags)."""
    vit = perturb(T.ViTModel(T.ViTConfig(num_hidden_layers=3, **SMALL)))
    yield ("vit", vit, T.ViTImageProcessor(), lambda x: vit(x).last_hidden_state[:, 0], 224, [])
    vit_cls = perturb(T.ViTForImageClassification(T.ViTConfig(num_hidden_layers=2, num_labels=10, **SMALL)))
    yield ("vit-classifier --pooling head", vit_cls, T.ViTImageProcessor(resample=3),
           lambda x: vit_cls(x).logits, 224, ["--pooling", "head"])
    # facebook/dinov2-*'s processor: shorter side 256, bicubic, crop 224, ImageNet's mean / std.
    bit = T.BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
                              **IMAGENET)
    dino = perturb(T.Dinov2Model(T.Dinov2Config(num_hidden_layers=3, image_size=518, hidden_size=192,
                                                num_attention_heads=3)))
    yield ("dinov2 (518 px table at 224)", dino, bit, lambda x: dino(x).pooler_output, 256, [])

    # DINOv2's linear-probe feature: the class token beside the patch mean (what
    # Dinov2ForImageClassification's classifier reads).
    def cls_and_mean(o, prefix):
        return torch.cat([o.pooler_output, o.last_hidden_state[:, prefix:].mean(1)], 1)
    yield ("dinov2 --pooling token_mean", dino, bit, lambda x: cls_and_mean(dino(x), 1), 256,
           ["--pooling", "token_mean"])
    # facebook/dinov2-*-imagenet1k-1-layer: that feature's linear classifier.
    dino_cls = perturb(T.Dinov2ForImageClassification(T.Dinov2Config(
        num_hidden_layers=2, image_size=518, hidden_size=192, num_attention_heads=3, num_labels=10)))
    yield ("dinov2-classifier --pooling head", dino_cls, bit, lambda x: dino_cls(x).logits, 256,
           ["--pooling", "head"])
    reg = perturb(T.Dinov2WithRegistersModel(T.Dinov2WithRegistersConfig(
        num_hidden_layers=2, image_size=518, patch_size=14, hidden_size=192, num_attention_heads=3,
        use_swiglu_ffn=True, num_register_tokens=4)))
    yield ("dinov2-registers-swiglu", reg, bit, lambda x: reg(x).pooler_output, 256, [])
    yield ("dinov2-registers-swiglu --pooling token_mean", reg, bit,
           lambda x: cls_and_mean(reg(x), 5), 256, ["--pooling", "token_mean"])
    # facebook/dinov3-vit*16-*: 4 registers, rotary positions; the huge ones a SwiGLU MLP.
    dino3_proc = T.DINOv3ViTImageProcessor()
    dino3 = perturb(T.DINOv3ViTModel(T.DINOv3ViTConfig(num_hidden_layers=3, num_register_tokens=4,
                                                       **SMALL)))
    yield ("dinov3", dino3, dino3_proc, lambda x: dino3(x).pooler_output, 224, [])
    dino3g = perturb(T.DINOv3ViTModel(T.DINOv3ViTConfig(
        num_hidden_layers=2, num_register_tokens=2, use_gated_mlp=True, hidden_act="silu",
        key_bias=True, proj_bias=False, mlp_bias=False, **SMALL)))
    yield ("dinov3-swiglu, no proj / mlp bias", dino3g, dino3_proc, lambda x: dino3g(x).pooler_output,
           224, [])
    # facebook/vit-mae-*: ViTMAEForPreTraining, saved with its decoder and mask ratio 0.75;
    # features are the unmasked encoder's class token (mask_ratio 0 on transformers' side).
    mae = perturb(T.ViTMAEForPreTraining(T.ViTMAEConfig(
        num_hidden_layers=2, decoder_num_hidden_layers=1, decoder_hidden_size=64,
        decoder_num_attention_heads=2, decoder_intermediate_size=128, **SMALL)))
    mae_proc = T.ViTImageProcessor(**IMAGENET)

    def mae_features(x):
        mae.config.mask_ratio = 0.0
        return mae.vit(x).last_hidden_state[:, 0]
    yield ("vit_mae (ViTMAEForPreTraining)", mae, mae_proc, mae_features, 224, [])
    # facebook/vit-msn-*: ViT's layout; facebook/ijepa_*: no class token, the token mean (what
    # IJepaForImageClassification classifies, as --pooling head does).
    msn = perturb(T.ViTMSNModel(T.ViTMSNConfig(num_hidden_layers=2, **SMALL)))
    yield ("vit_msn", msn, T.ViTImageProcessor(**IMAGENET), lambda x: msn(x).last_hidden_state[:, 0],
           224, [])
    ijepa = perturb(T.IJepaForImageClassification(T.IJepaConfig(num_hidden_layers=2, num_labels=10,
                                                                **SMALL)))
    ijepa_proc = T.ViTImageProcessor(**IMAGENET)
    yield ("ijepa (token mean)", ijepa, ijepa_proc,
           lambda x: ijepa.ijepa(x).last_hidden_state.mean(1), 224, [])
    yield ("ijepa --pooling head", ijepa, ijepa_proc, lambda x: ijepa(x).logits, 224,
           ["--pooling", "head"])
    # facebook/deit-*-distilled-*: a distillation token after the class token; resize 256 x 256,
    # crop 224.
    deit = perturb(T.DeiTForImageClassificationWithTeacher(T.DeiTConfig(
        num_hidden_layers=2, num_labels=10, **SMALL)))
    yield ("deit (distilled, with teacher heads)", deit, T.DeiTImageProcessor(),
           lambda x: deit.deit(x).last_hidden_state[:, 0], 256, [])
    # Its logits: the mean of the classifier on the class token and the one on the
    # distillation token.
    yield ("deit --pooling head (the two classifiers' mean)", deit, T.DeiTImageProcessor(),
           lambda x: deit(x).logits, 256, ["--pooling", "head"])
    # microsoft/beit-*: a relative position bias table per layer, no position table, LayerScale,
    # the patch mean behind pooler.layernorm (pooler_output); BeitImageProcessor's defaults
    # (256 x 256, crop 224, mean / std 0.5).
    beit_proc = T.BeitImageProcessor()
    beit = perturb(T.BeitModel(T.BeitConfig(num_hidden_layers=2, use_relative_position_bias=True,
                                            **SMALL)))
    yield ("beit (BeitModel, mean pooling)", beit, beit_proc, lambda x: beit(x).pooler_output, 256, [])
    # The pretrained-only checkpoints (*-pt22k): BeitForMaskedImageModeling with one table shared
    # by every layer; its features are the mean of the patch tokens after its own layernorm.
    mim = perturb(T.BeitForMaskedImageModeling(T.BeitConfig(
        num_hidden_layers=2, use_shared_relative_position_bias=True, use_mask_token=True,
        vocab_size=64, **SMALL)))

    def mim_features(x):
        return mim.layernorm(mim.beit(x).last_hidden_state)[:, 1:].mean(1)
    yield ("beit-mim (BeitForMaskedImageModeling, shared table)", mim, beit_proc, mim_features, 256, [])
    # Without mean pooling (the class token behind the final layernorm), with a position table
    # as well, and a classifier: its logits with --pooling head; the hub's fine-tuned
    # processor (224 x 224 bilinear, no crop).
    beit_cls = perturb(T.BeitForImageClassification(T.BeitConfig(
        num_hidden_layers=2, use_relative_position_bias=True, use_absolute_position_embeddings=True,
        use_mean_pooling=False, num_labels=10, **SMALL)))
    beit_hub_proc = T.BeitImageProcessor(size={"height": 224, "width": 224}, resample=2,
                                         do_center_crop=False)
    yield ("beit-classifier --pooling head", beit_cls, beit_hub_proc, lambda x: beit_cls(x).logits,
           224, ["--pooling", "head"])
    # facebook/data2vec-vision-*: BEiT's layout.
    d2v = perturb(T.Data2VecVisionModel(T.Data2VecVisionConfig(
        num_hidden_layers=2, use_relative_position_bias=True, **SMALL), add_pooling_layer=True))
    yield ("data2vec-vision", d2v, beit_proc, lambda x: d2v(x).pooler_output, 256, [])
    clip_cfg = T.CLIPConfig(
        vision_config=dict(num_hidden_layers=2, patch_size=16, **SMALL),
        text_config=dict(num_hidden_layers=1, hidden_size=64, num_attention_heads=2,
                         intermediate_size=128),
        projection_dim=48)
    clip = perturb(T.CLIPModel(clip_cfg))
    clip_proc = T.CLIPImageProcessor()
    yield ("clip (CLIPModel)", clip, clip_proc,
           lambda x: clip.vision_model(pixel_values=x).pooler_output, 224, [])
    yield ("clip --pooling head (image embedding)", clip, clip_proc,
           lambda x: clip.visual_projection(clip.vision_model(pixel_values=x).pooler_output), 224,
           ["--pooling", "head"])
    sig_cfg = T.SiglipConfig(
        vision_config=dict(num_hidden_layers=2, patch_size=16, **SMALL),
        text_config=dict(num_hidden_layers=1, hidden_size=64, num_attention_heads=2,
                         intermediate_size=128))
    sig = perturb(T.SiglipModel(sig_cfg))
    sig_proc = T.SiglipImageProcessor()
    yield ("siglip (SiglipModel, attention pooling)", sig, sig_proc,
           lambda x: sig.vision_model(pixel_values=x).pooler_output, 224, [])
    # google/siglip-so400m-patch14-384's geometry: patch 14 does not divide 384, the
    # convolution reads the top-left 378 pixels.
    sig384 = perturb(T.SiglipVisionModel(T.SiglipVisionConfig(
        num_hidden_layers=2, patch_size=14, image_size=384, **SMALL)))
    yield ("siglip-384 (patch 14, the top-left 378 px read)", sig384,
           T.SiglipImageProcessor(size={"height": 384, "width": 384}),
           lambda x: sig384(pixel_values=x).pooler_output, 384, [])
    bare = perturb(T.SiglipVisionModel(T.SiglipVisionConfig(num_hidden_layers=2, vision_use_head=False,
                                                            **SMALL)))
    yield ("siglip-vision without head (token mean)", bare, sig_proc,
           lambda x: bare(pixel_values=x).last_hidden_state.mean(1), 224, [])
    # AIMv2 (apple/aimv2-*): RMSNorms, SwiGLU, no biases, patch 14; CLIP's processor.
    aim_small = dict(hidden_size=192, num_attention_heads=3, intermediate_size=512)
    aim = perturb(T.Aimv2VisionModel(T.Aimv2VisionConfig(num_hidden_layers=2, use_head=True,
                                                         **aim_small)))
    with torch.no_grad():
        # A query of unit scale: attention that picks tokens, not a near-uniform mean.
        aim.head.cls_token.normal_()
    yield ("aimv2 (Aimv2VisionModel, attention-pooling head)", aim, clip_proc,
           lambda x: aim(pixel_values=x).pooler_output, 224, [])
    aim_bare = perturb(T.Aimv2VisionModel(T.Aimv2VisionConfig(
        num_hidden_layers=2, use_head=False, qkv_bias=True, mlp_bias=True, **aim_small)))
    yield ("aimv2-vision without head, with biases (token mean)", aim_bare, clip_proc,
           lambda x: aim_bare(pixel_values=x).last_hidden_state.mean(1), 224, [])
    aim_cfg = T.Aimv2Config(
        vision_config=dict(num_hidden_layers=2, **aim_small),
        text_config=dict(num_hidden_layers=1, hidden_size=64, num_attention_heads=2,
                         intermediate_size=128),
        projection_dim=48)
    aim_two = perturb(T.Aimv2Model(aim_cfg))
    yield ("aimv2-lit --pooling head (Aimv2Model's image embedding)", aim_two, clip_proc,
           lambda x: aim_two.visual_projection(aim_two.vision_model(pixel_values=x).pooler_output),
           224, ["--pooling", "head"])


def main():
    photos = write_images("photos", [(500, 375), (375, 500), (640, 427), (300, 300), (257, 193),
                                     (333, 500), (800, 533), (299, 224)], "jpg")
    worst = {}
    dirs = {}
    for label, model, processor, fn, side, flags in variants():
        name = label.split()[0]
        tag = "".join(c if c.isalnum() else "-" for c in label)
        d = dirs.get(name) or save(name, model, processor)
        dirs[name] = d
        exact = write_images(f"exact-{side}", [(side, side)] * 6, "png")
        compare(f"{label}, exact", reference(d, exact, fn), ldae_features(d, exact, tag + "-x", *flags), 1e-4)
        got = ldae_features(d, photos, tag + "-p", *flags)
        worst[label] = compare(f"{label}, photos", reference(d, photos, fn, backend=None), got, 1e-3)
        # The PIL backend's resize is not the torchvision backend's (nor Pillow's on the 8-bit
        # image as ldae and timm run it): another resize, held only to being close.
        compare(f"{label}, photos (PIL backend)", reference(d, photos, fn, backend="pil"), got, 5e-2)

    # Another input size: the position table resampled as interpolate_pos_encoding does.
    vit_dir = dirs["vit"]
    vit = T.ViTModel.from_pretrained(vit_dir).eval()
    exact = write_images("exact-160", [(160, 160)] * 6, "png")
    compare("vit at 160 px (interpolate_pos_encoding)",
            reference(vit_dir, exact, lambda x: vit(x, interpolate_pos_encoding=True).last_hidden_state[:, 0],
                      size={"height": 160, "width": 160}),
            ldae_features(vit_dir, exact, "vit-160", "--image-size", "160"), 1e-4)
    # DINOv3's rotary table is worked out for each grid.
    dino3_dir = dirs["dinov3"]
    dino3 = T.DINOv3ViTModel.from_pretrained(dino3_dir).eval()
    dino3_160 = reference(dino3_dir, exact, lambda x: dino3(x).pooler_output,
                          size={"height": 160, "width": 160})
    compare("dinov3 at 160 px (rotary table for a 10 x 10 grid)", dino3_160,
            ldae_features(dino3_dir, exact, "dinov3-160", "--image-size", "160"), 1e-4)

    # BEiT's tables resized to a 10 x 10 grid as interpolate_pos_encoding does (bilinear).
    beit_dir = dirs["beit"]
    beit = T.BeitModel.from_pretrained(beit_dir).eval()
    compare("beit at 160 px (interpolate_pos_encoding)",
            reference(beit_dir, exact, lambda x: beit(x, interpolate_pos_encoding=True).pooler_output,
                      size={"height": 160, "width": 160}, do_center_crop=False),
            ldae_features(beit_dir, exact, "beit-160", "--image-size", "160"), 1e-4)

    # A sharded checkpoint (model.safetensors.index.json and its shards, as the hub holds large
    # models): the same features; a missing shard is named.
    sharded = os.path.join(TMP, "dinov3-sharded")
    dino3.save_pretrained(sharded, max_shard_size="1MB")
    shutil.copy(os.path.join(dino3_dir, "preprocessor_config.json"), sharded)
    shards = sorted(f for f in os.listdir(sharded) if f.startswith("model-"))
    assert len(shards) > 1 and os.path.exists(os.path.join(sharded, "model.safetensors.index.json")), shards
    compare(f"dinov3 saved in {len(shards)} shards", dino3_160,
            ldae_features(sharded, exact, "dinov3-sharded", "--image-size", "160"), 1e-4)
    os.remove(os.path.join(sharded, shards[-1]))
    expect_error(sharded, exact, shards[-1])

    # A hub id read from the local Hugging Face cache, laid out as hf download
    # leaves it (snapshots/COMMIT/FILE -> ../../blobs/HASH; refs/main names COMMIT).
    hub = os.path.join(TMP, "hf-cache")
    repo = os.path.join(hub, "models--acme--dinov3-tiny")
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = os.path.join(repo, "snapshots", commit)
    for d in (snapshot, os.path.join(repo, "blobs"), os.path.join(repo, "refs")):
        os.makedirs(d)
    for f in os.listdir(dino3_dir):
        blob = os.path.join(repo, "blobs", hashlib.sha256(f.encode()).hexdigest())
        shutil.copy(os.path.join(dino3_dir, f), blob)
        os.symlink(os.path.relpath(blob, snapshot), os.path.join(snapshot, f))
    with open(os.path.join(repo, "refs", "main"), "w") as f:
        f.write(commit)
    os.environ["HF_HUB_CACHE"] = hub
    compare("dinov3 as acme/dinov3-tiny from the hub cache", dino3_160,
            ldae_features("acme/dinov3-tiny", exact, "dinov3-hub", "--image-size", "160"), 1e-4)
    compare("dinov3 as acme/dinov3-tiny@COMMIT", dino3_160,
            ldae_features(f"acme/dinov3-tiny@{commit}", exact, "dinov3-hub-commit", "--image-size",
                          "160"), 1e-4)
    expect_error("acme/not-downloaded", exact, "hf download acme/not-downloaded")
    expect_error("acme/dinov3-tiny@v2", exact, "no revision 'v2'")

    # Refusals: an unknown tensor, a missing tensor, no processor settings.
    from safetensors.torch import load_file, save_file
    broken = os.path.join(TMP, "broken")
    shutil.copytree(vit_dir, broken)
    weights = os.path.join(broken, "model.safetensors")
    tensors = load_file(weights)
    save_file({**tensors, "encoder.layer.0.attention.attention.extra.weight": torch.zeros(2)}, weights)
    expect_error(broken, exact, "encoder.layer.0.attention.attention.extra.weight")
    tensors.pop("encoder.layer.1.layernorm_after.weight")
    save_file(tensors, weights)
    expect_error(broken, exact, "encoder.layer.1.layernorm_after.weight")
    # AIMv2's native-resolution towers (sinusoidal positions at any size) are not run.
    native = save("aimv2-native", T.Aimv2VisionModel(T.Aimv2VisionConfig(
        num_hidden_layers=1, is_native=True, hidden_size=192, num_attention_heads=3,
        intermediate_size=512)), T.CLIPImageProcessor())
    expect_error(native, exact, "is_native")
    # The hub's older processor files give sizes as plain numbers, which transformers reads per
    # processor class: openai/clip-vit-*'s `"size": 224` is the shorter side (CLIP's and BiT's
    # processors), a ViT processor's the square. The CLIP folder with such a file, as
    # CLIPFeatureExtractor wrote it:
    old = os.path.join(TMP, "clip-old-processor")
    shutil.copytree(dirs["clip"], old)
    with open(os.path.join(old, "preprocessor_config.json"), "w") as f:
        json.dump({"feature_extractor_type": "CLIPFeatureExtractor", "size": 224, "crop_size": 224,
                   "do_resize": True, "do_center_crop": True, "do_normalize": True,
                   "resample": 3, "image_mean": CLIP_MEAN, "image_std": CLIP_STD}, f)
    clip = T.CLIPModel.from_pretrained(dirs["clip"]).eval()
    compare("clip with an old processor file (size 224: the shorter side), photos",
            reference(old, photos, lambda x: clip.vision_model(pixel_values=x).pooler_output),
            ldae_features(old, photos, "clip-old"), 1e-3)
    vit_old = os.path.join(TMP, "vit-old-processor")
    shutil.copytree(vit_dir, vit_old)
    with open(os.path.join(vit_old, "preprocessor_config.json"), "w") as f:
        json.dump({"feature_extractor_type": "ViTFeatureExtractor", "size": 224, "do_resize": True,
                   "do_normalize": True, "resample": 2, "image_mean": [0.5] * 3,
                   "image_std": [0.5] * 3}, f)
    compare("vit with an old processor file (size 224: the square), photos",
            reference(vit_old, photos, lambda x: vit(x).last_hidden_state[:, 0]),
            ldae_features(vit_old, photos, "vit-old"), 1e-3)
    os.remove(os.path.join(dirs["clip"], "preprocessor_config.json"))
    expect_error(dirs["clip"], exact, "preprocessor_config.json")
    print("transformers import: all checks passed;", json.dumps({k: f"{v:.1e}" for k, v in worst.items()}))


if __name__ == "__main__":
    main()
