//! A Hugging Face transformers model folder (`config.json` with a `model_type`,
//! `model.safetensors`, `preprocessor_config.json`, as `save_pretrained` writes them and the hub
//! holds them) of a ViT family ldae runs, read as the timm model it is: the settings, the eval
//! preprocessing of its image processor, and where each tensor of the timm form comes from.
//!
//! The families: `vit` (ViTModel, ViTForImageClassification), `vit_mae` (ViTMAEModel,
//! ViTMAEForPreTraining), `vit_msn`, `ijepa` (no class token: the token mean), `deit` (the
//! distilled DeiTs), `beit` and `data2vec-vision` (relative position bias), `dinov2` and
//! `dinov2_with_registers`, `dinov3_vit`, `clip` /
//! `clip_vision_model` (the image tower of CLIPModel, CLIPVisionModel[WithProjection]),
//! `siglip` / `siglip_vision_model`, and `aimv2` / `aimv2_vision_model` (RMSNorm, SwiGLU).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::args::{self, Activation, NormKind, Rope, VitArgs, TORCH_NORM_EPS, VIT_NORM_EPS};
use super::preprocess::Preprocess;
use super::resample::Resample;

mod layout;
mod processor;
mod tensor_map;

use processor::preprocessing;
pub use tensor_map::TensorMap;

/// The `model_type`s ldae imports.
pub const MODEL_TYPES: &[&str] = &[
    "vit",
    "vit_mae",
    "vit_msn",
    "ijepa",
    "deit",
    "beit",
    "data2vec-vision",
    "dinov2",
    "dinov2_with_registers",
    "dinov3_vit",
    "clip",
    "clip_vision_model",
    "siglip",
    "siglip_vision_model",
    "aimv2",
    "aimv2_vision_model",
];

/// The families, by how their modules name the tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// `modeling_vit.py` (and ViT-MAE's, ViT-MSN's, I-JEPA's and DeiT's, named alike):
    /// `layernorm_before`, `attention.attention.query`, `intermediate.dense`.
    Vit,
    /// `modeling_beit.py` and `modeling_data2vec_vision.py`: the ViT's names, `lambda_1`,
    /// relative position bias tables, the patch mean behind `pooler.layernorm`.
    Beit,
    /// `modeling_dinov2*.py`: `norm1`, the ViT's attention names, `layer_scale1.lambda1`, `mlp`.
    Dinov2,
    /// `modeling_dinov3_vit.py`: `model.layer`, `attention.q_proj`, `mlp.up_proj`, a rotary
    /// position embedding and no position table.
    Dinov3,
    /// `modeling_clip.py`: a class embedding, `pre_layrnorm`, `self_attn.q_proj`.
    Clip,
    /// `modeling_siglip.py`: no class token, the attention-pooling `head`.
    Siglip,
    /// `modeling_aimv2.py`: `rms_norm1`, `attention.q_proj`, `ffn.gate_proj`, no class token, an
    /// RMSNorm after the patch embedding, an attention-pooling `head` without an MLP.
    Aimv2,
}

impl Family {
    fn of(model_type: &str) -> Option<Family> {
        Some(match model_type {
            "vit" | "vit_mae" | "vit_msn" | "ijepa" | "deit" => Family::Vit,
            "beit" | "data2vec-vision" => Family::Beit,
            "dinov2" | "dinov2_with_registers" => Family::Dinov2,
            "dinov3_vit" => Family::Dinov3,
            "clip" | "clip_vision_model" => Family::Clip,
            "siglip" | "siglip_vision_model" => Family::Siglip,
            "aimv2" | "aimv2_vision_model" => Family::Aimv2,
            _ => return None,
        })
    }

    /// The tensor that locates the vision tower (its prefix is the tower's).
    fn anchor(self) -> &'static str {
        match self {
            Family::Vit | Family::Beit | Family::Dinov2 => {
                "embeddings.patch_embeddings.projection.weight"
            }
            Family::Dinov3 => "embeddings.patch_embeddings.weight",
            Family::Clip | Family::Siglip => "embeddings.patch_embedding.weight",
            Family::Aimv2 => "embeddings.patch_embed.weight",
        }
    }

    /// Where the blocks of the tower under the prefix `p` are: DINOv3's as the hub and
    /// `save_pretrained` name them (`layer.`), or as the module does (`model.layer.`).
    fn layers(self, p: &str, shapes: &BTreeMap<String, Vec<usize>>) -> String {
        let candidates: &[&str] = match self {
            Family::Vit | Family::Beit | Family::Dinov2 => &["encoder.layer."],
            Family::Dinov3 => &["layer.", "model.layer."],
            Family::Clip | Family::Siglip | Family::Aimv2 => &["encoder.layers."],
        };
        let found = candidates.iter().find(|c| {
            let layers = format!("{p}{c}");
            shapes.keys().any(|k| k.starts_with(&layers))
        });
        format!("{p}{}", found.unwrap_or(&candidates[0]))
    }

    /// The vision config's defaults for what a `config.json` leaves out: heads, norm epsilon,
    /// activation, image size.
    fn defaults(self) -> (u64, f64, &'static str, u64) {
        match self {
            Family::Vit | Family::Beit => (12, 1e-12, "gelu", 224),
            Family::Dinov2 => (12, VIT_NORM_EPS, "gelu", 224),
            Family::Dinov3 => (6, TORCH_NORM_EPS, "gelu", 224),
            Family::Clip => (12, TORCH_NORM_EPS, "quick_gelu", 224),
            Family::Siglip => (12, VIT_NORM_EPS, "gelu_pytorch_tanh", 224),
            Family::Aimv2 => (8, TORCH_NORM_EPS, "silu", 224),
        }
    }

    /// The norms: RMSNorms in AIMv2 (epsilon `rms_norm_eps`), LayerNorms elsewhere
    /// (`layer_norm_eps`).
    fn norms(self) -> (NormKind, &'static str) {
        match self {
            Family::Aimv2 => (NormKind::Rms, "rms_norm_eps"),
            _ => (NormKind::Layer, "layer_norm_eps"),
        }
    }
}

/// A transformers folder read as a timm model.
#[derive(Debug, Clone)]
pub(super) struct Imported {
    /// `architectures[0]` of `config.json` (the class that saved it) and the `model_type`.
    pub architecture: String,
    pub args: VitArgs,
    pub preprocess: Preprocess,
    pub tensors: TensorMap,
}

/// The `model_type` of a transformers `config.json`.
pub fn model_type(config: &Value) -> Option<&str> {
    config.get("model_type").and_then(Value::as_str)
}

/// Read the folder `dir`, whose `config.json` is `config` and whose checkpoint holds tensors of
/// these `shapes`. Errors are plain messages; the caller names the file.
pub(super) fn open(
    dir: &Path,
    config: &Value,
    shapes: &BTreeMap<String, Vec<usize>>,
) -> Result<Imported, String> {
    let model_type = model_type(config).unwrap_or_default();
    let family = Family::of(model_type).ok_or_else(|| {
        format!(
            "model_type \"{model_type}\" is not one ldae imports ({})",
            MODEL_TYPES.join(", ")
        )
    })?;
    // CLIPModel, SiglipModel and Aimv2Model nest the image tower's settings.
    let vision = match model_type {
        "clip" | "siglip" | "aimv2" => config.get("vision_config").unwrap_or(&Value::Null),
        _ => config,
    };
    let (heads, eps, act, size) = family.defaults();
    let int = |key: &str, default: u64| -> Result<usize, String> {
        match vision.get(key) {
            None | Some(Value::Null) => Ok(default as usize),
            Some(v) => v
                .as_u64()
                .map(|v| v as usize)
                .ok_or_else(|| format!("{key} = {v} is not a whole number")),
        }
    };
    let anchors: Vec<&String> = shapes
        .keys()
        .filter(|k| k.ends_with(family.anchor()))
        .collect();
    let p = match anchors.as_slice() {
        [one] => one[..one.len() - family.anchor().len()].to_string(),
        [] => {
            return Err(format!(
                "no tensor '{}': not a {model_type} checkpoint",
                family.anchor()
            ))
        }
        many => return Err(format!("several vision towers ({many:?})")),
    };
    let conv = &shapes[&format!("{p}{}", family.anchor())];
    let [width, channels, patch, patch_w] = conv.as_slice() else {
        return Err(format!(
            "patch embedding of shape {conv:?}, expected [W, C, p, p]"
        ));
    };
    if patch != patch_w {
        return Err(format!(
            "patches of {patch} x {patch_w} pixels are not square"
        ));
    }
    let layers = family.layers(&p, shapes);
    let depth = shapes
        .keys()
        .filter_map(|k| {
            k.strip_prefix(&layers)?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .map_or(0, |last| last + 1);
    let mut args = args::vit(*patch, *width, depth, int("num_attention_heads", heads)?);
    args.in_chans = *channels;
    args.num_classes = 0;
    // The position table's resampling to another grid (`interpolate_pos_encoding`): PyTorch's
    // bicubic without antialiasing, but with it in DINOv2 with registers.
    args.pos_resample = match model_type {
        "dinov2_with_registers" => Resample::Antialiased,
        _ => Resample::Plain,
    };
    let (norm_kind, eps_key) = family.norms();
    args.norm_kind = norm_kind;
    args.norm_eps = match vision.get(eps_key) {
        None | Some(Value::Null) => eps,
        Some(v) => v
            .as_f64()
            .ok_or_else(|| format!("{eps_key} = {v} is not a number"))?,
    };
    // AIMv2's native-resolution towers compute sinusoidal positions for any image size.
    if vision.get("is_native").and_then(Value::as_bool) == Some(true) {
        return Err(
            "is_native = true (AIMv2's native-resolution positions) is not supported; \
                    the fixed-resolution towers are"
                .into(),
        );
    }
    let act = vision
        .get("hidden_act")
        .and_then(Value::as_str)
        .unwrap_or(act);
    // DINOv3's and AIMv2's gated MLPs are SwiGLU: `silu(gate_proj) * up_proj`.
    let gated = ["mlp", "ffn"]
        .iter()
        .any(|m| shapes.contains_key(&format!("{layers}0.{m}.gate_proj.weight")));
    args.activation = match act {
        "gelu" if !gated => Activation::Gelu,
        "quick_gelu" if !gated => Activation::QuickGelu,
        "gelu_pytorch_tanh" | "gelu_new" if !gated => Activation::GeluTanh,
        // A SwiGLU MLP applies silu itself; `activation` is not read for it.
        "silu" | "swish" if gated => Activation::Gelu,
        other if gated => {
            return Err(format!(
                "hidden_act \"{other}\" in a gated MLP is not supported (silu)"
            ))
        }
        other => {
            return Err(format!(
                "hidden_act \"{other}\" is not supported (gelu, gelu_pytorch_tanh, gelu_new, quick_gelu)"
            ))
        }
    };
    args.img_size = Some(int("image_size", size)?);
    if family == Family::Dinov3 {
        let theta = match vision.get("rope_theta") {
            None | Some(Value::Null) => 100.0,
            Some(v) => v
                .as_f64()
                .ok_or_else(|| format!("rope_theta = {v} is not a number"))?,
        };
        args.rope = Some(Rope::Dinov3 { temperature: theta });
        args.abs_pos = false;
    }
    let map = layout::map(family, model_type, &mut args, &p, &layers, shapes);
    let read = map.read();
    if let Some(extra) = shapes
        .iter()
        .find(|(k, s)| !read.contains(k.as_str()) && !unused(k, s, &p, model_type))
        .map(|(k, _)| k)
    {
        return Err(format!(
            "unexpected tensor '{extra}' (a layer ldae's import of {model_type} does not run)"
        ));
    }
    let architecture = config
        .get("architectures")
        .and_then(|a| a.get(0))
        .and_then(Value::as_str)
        .unwrap_or(model_type);
    Ok(Imported {
        architecture: format!("{architecture} (transformers {model_type})"),
        preprocess: preprocessing(dir, *channels, model_type)?,
        args,
        tensors: map,
    })
}

/// Tensors a checkpoint may hold that no image feature uses: the text tower and the logit
/// scale of CLIPModel / SiglipModel, ViTModel's and DeiTModel's pooler (a tanh layer over the
/// class token, which `last_hidden_state` does not pass through), the mask tokens (masked
/// training only), ViTMAEForPreTraining's decoder and empty tensors (DINOv3's register tokens
/// when it has none).
fn unused(name: &str, shape: &[usize], tower: &str, model_type: &str) -> bool {
    let own = name.strip_prefix(tower).unwrap_or(name);
    ["text_model.", "text_projection.", "pooler."]
        .iter()
        .any(|p| name.starts_with(p) || own.starts_with(p))
        || ["logit_scale", "logit_bias"].contains(&name)
        || own == "embeddings.mask_token"
        || own == "embeddings.position_ids"
        || shape.contains(&0)
        || match model_type {
            "vit_mae" => name.starts_with("decoder."),
            "beit" | "data2vec-vision" => {
                name.starts_with("lm_head.") || own.ends_with("relative_position_index")
            }
            _ => false,
        }
}
