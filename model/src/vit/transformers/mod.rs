//! A Hugging Face transformers model folder (`config.json` with a `model_type`,
//! `model.safetensors`, `preprocessor_config.json`, as `save_pretrained` writes them and the hub
//! holds them) of a ViT family ldae runs, read as the timm model it is: the settings, the eval
//! preprocessing of its image processor, and where each tensor of the timm form comes from.
//!
//! The families: `vit` (ViTModel, ViTForImageClassification), `dinov2` and
//! `dinov2_with_registers`, `clip` / `clip_vision_model` (the image tower of CLIPModel,
//! CLIPVisionModel[WithProjection]) and `siglip` / `siglip_vision_model`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::args::{self, Activation, Swiglu, VitArgs, TORCH_NORM_EPS, VIT_NORM_EPS};
use super::preprocess::Preprocess;
use super::resample::Resample;

mod processor;
mod tensor_map;

use processor::preprocessing;
use tensor_map::Source;
pub use tensor_map::TensorMap;

/// The `model_type`s ldae imports.
pub const MODEL_TYPES: &[&str] = &[
    "vit",
    "dinov2",
    "dinov2_with_registers",
    "clip",
    "clip_vision_model",
    "siglip",
    "siglip_vision_model",
];

/// The families, by how their modules name the tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// `modeling_vit.py`: `layernorm_before`, `attention.attention.query`, `intermediate.dense`.
    Vit,
    /// `modeling_dinov2*.py`: `norm1`, the ViT's attention names, `layer_scale1.lambda1`, `mlp`.
    Dinov2,
    /// `modeling_clip.py`: a class embedding, `pre_layrnorm`, `self_attn.q_proj`.
    Clip,
    /// `modeling_siglip.py`: no class token, the attention-pooling `head`.
    Siglip,
}

impl Family {
    fn of(model_type: &str) -> Option<Family> {
        Some(match model_type {
            "vit" => Family::Vit,
            "dinov2" | "dinov2_with_registers" => Family::Dinov2,
            "clip" | "clip_vision_model" => Family::Clip,
            "siglip" | "siglip_vision_model" => Family::Siglip,
            _ => return None,
        })
    }

    /// The tensor that locates the vision tower (its prefix is the tower's).
    fn anchor(self) -> &'static str {
        match self {
            Family::Vit | Family::Dinov2 => "embeddings.patch_embeddings.projection.weight",
            Family::Clip | Family::Siglip => "embeddings.patch_embedding.weight",
        }
    }

    /// The vision config's defaults for what a `config.json` leaves out: heads, LayerNorm
    /// epsilon, activation, image size.
    fn defaults(self) -> (u64, f64, &'static str, u64) {
        match self {
            Family::Vit => (12, 1e-12, "gelu", 224),
            Family::Dinov2 => (12, VIT_NORM_EPS, "gelu", 224),
            Family::Clip => (12, TORCH_NORM_EPS, "quick_gelu", 224),
            Family::Siglip => (12, VIT_NORM_EPS, "gelu_pytorch_tanh", 224),
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
    // CLIPModel and SiglipModel nest the image tower's settings.
    let vision = match model_type {
        "clip" | "siglip" => config.get("vision_config").unwrap_or(&Value::Null),
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
    let layers = match family {
        Family::Vit | Family::Dinov2 => format!("{p}encoder.layer."),
        Family::Clip | Family::Siglip => format!("{p}encoder.layers."),
    };
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
    args.norm_eps = match vision.get("layer_norm_eps") {
        None | Some(Value::Null) => eps,
        Some(v) => v
            .as_f64()
            .ok_or_else(|| format!("layer_norm_eps = {v} is not a number"))?,
    };
    let act = vision
        .get("hidden_act")
        .and_then(Value::as_str)
        .unwrap_or(act);
    args.activation = match act {
        "gelu" => Activation::Gelu,
        "quick_gelu" => Activation::QuickGelu,
        "gelu_pytorch_tanh" | "gelu_new" => Activation::GeluTanh,
        other => {
            return Err(format!(
                "hidden_act \"{other}\" is not supported (gelu, gelu_pytorch_tanh, gelu_new, quick_gelu)"
            ))
        }
    };
    args.img_size = Some(int("image_size", size)?);
    let mut map = TensorMap::default();
    let has = |name: &str| shapes.contains_key(name);
    // Everything but the blocks and the pooling.
    match family {
        Family::Vit | Family::Dinov2 => {
            let e = format!("{p}embeddings");
            map.layer(
                "patch_embed.proj",
                &format!("{e}.patch_embeddings.projection"),
            );
            map.take("cls_token", format!("{e}.cls_token"));
            let pos = format!("{e}.position_embeddings");
            if has(&format!("{e}.register_tokens")) {
                let regs = format!("{e}.register_tokens");
                args.reg_tokens = shapes[&regs].get(1).copied().unwrap_or(0);
                args.no_embed_class = true;
                map.take("reg_token", regs);
                map.put(
                    "cls_token",
                    Source::ClassWithPosition(format!("{e}.cls_token"), pos.clone()),
                );
                map.put("pos_embed", Source::PatchPositions(pos));
            } else {
                map.take("pos_embed", pos);
            }
            map.layer("norm", &format!("{p}layernorm"));
        }
        Family::Clip | Family::Siglip => {
            let e = format!("{p}embeddings");
            let pos = format!("{e}.position_embedding.weight");
            let positions = shapes
                .get(&pos)
                .and_then(|s| s.first())
                .copied()
                .unwrap_or(0);
            map.put(
                "pos_embed",
                Source::Take(pos, Some(vec![1, positions, *width])),
            );
            map.take(
                "patch_embed.proj.weight",
                format!("{e}.patch_embedding.weight"),
            );
            map.layer("norm", &format!("{p}post_layernorm"));
            if family == Family::Clip {
                args.pre_norm = true;
                map.put(
                    "cls_token",
                    Source::Take(format!("{e}.class_embedding"), Some(vec![1, 1, *width])),
                );
                map.layer("norm_pre", &format!("{p}pre_layrnorm"));
            } else {
                args.class_token = false;
                map.take("patch_embed.proj.bias", format!("{e}.patch_embedding.bias"));
            }
        }
    }
    for i in 0..depth {
        let (b, l) = (format!("blocks.{i}"), format!("{layers}{i}"));
        let (attn, qkv, out, norm1, norm2, fc1, fc2) = match family {
            Family::Vit => (
                "attention.attention",
                ["query", "key", "value"],
                "attention.output.dense",
                "layernorm_before",
                "layernorm_after",
                "intermediate.dense",
                "output.dense",
            ),
            Family::Dinov2 => (
                "attention.attention",
                ["query", "key", "value"],
                "attention.output.dense",
                "norm1",
                "norm2",
                "mlp.fc1",
                "mlp.fc2",
            ),
            Family::Clip | Family::Siglip => (
                "self_attn",
                ["q_proj", "k_proj", "v_proj"],
                "self_attn.out_proj",
                "layer_norm1",
                "layer_norm2",
                "mlp.fc1",
                "mlp.fc2",
            ),
        };
        let part = |name: &str, what: &str| format!("{l}.{attn}.{name}.{what}");
        map.put(
            format!("{b}.attn.qkv.weight"),
            Source::Cat(qkv.map(|n| part(n, "weight")).to_vec()),
        );
        args.qkv_bias = has(&part(qkv[0], "bias"));
        if args.qkv_bias {
            map.put(
                format!("{b}.attn.qkv.bias"),
                Source::Cat(qkv.map(|n| part(n, "bias")).to_vec()),
            );
        }
        map.layer(&format!("{b}.attn.proj"), &format!("{l}.{out}"));
        map.layer(&format!("{b}.norm1"), &format!("{l}.{norm1}"));
        map.layer(&format!("{b}.norm2"), &format!("{l}.{norm2}"));
        // DINOv2's giant towers: SwiGLU, gate and value packed in `weights_in`, gate first.
        let swiglu = has(&format!("{l}.mlp.weights_in.weight"));
        let (fc1, fc2) = match swiglu {
            true => ("mlp.weights_in", "mlp.weights_out"),
            false => (fc1, fc2),
        };
        map.layer(&format!("{b}.mlp.fc1"), &format!("{l}.{fc1}"));
        map.layer(&format!("{b}.mlp.fc2"), &format!("{l}.{fc2}"));
        if family == Family::Dinov2 {
            args.init_values = Some(1.0);
            map.take(
                format!("{b}.ls1.gamma"),
                format!("{l}.layer_scale1.lambda1"),
            );
            map.take(
                format!("{b}.ls2.gamma"),
                format!("{l}.layer_scale2.lambda1"),
            );
        }
        if i == 0 {
            let hidden = shapes
                .get(&format!("{l}.{fc2}.weight"))
                .and_then(|s| s.get(1))
                .copied()
                .unwrap_or(0);
            // `int(width * ratio)` gives `hidden` back for any width (half a unit of slack).
            args.mlp_ratio = (hidden as f64 + 0.5) / *width as f64;
            if swiglu {
                args.swiglu = Some(Swiglu {
                    packed: true,
                    norm: false,
                    align: 0,
                });
            }
        }
    }
    // The pooling and the head.
    match family {
        Family::Vit => {
            if has("classifier.weight") {
                args.num_classes = shapes["classifier.weight"][0];
                map.layer("head", "classifier");
            }
        }
        Family::Dinov2 => {}
        Family::Clip => {
            if has("visual_projection.weight") {
                let classes = shapes["visual_projection.weight"][0];
                args.num_classes = classes;
                map.take("head.weight", "visual_projection.weight");
                map.put("head.bias", Source::Zeros(vec![classes]));
            }
        }
        Family::Siglip if has(&format!("{p}head.probe")) => {
            let h = format!("{p}head");
            args.global_pool = "map".into();
            map.take("attn_pool.latent", format!("{h}.probe"));
            let (w, b) = (
                format!("{h}.attention.in_proj_weight"),
                format!("{h}.attention.in_proj_bias"),
            );
            map.put("attn_pool.q.weight", Source::Rows(w.clone(), 0, *width));
            map.put("attn_pool.q.bias", Source::Rows(b.clone(), 0, *width));
            map.put("attn_pool.kv.weight", Source::Rows(w, *width, 2 * width));
            map.put("attn_pool.kv.bias", Source::Rows(b, *width, 2 * width));
            map.layer("attn_pool.proj", &format!("{h}.attention.out_proj"));
            map.layer("attn_pool.norm", &format!("{h}.layernorm"));
            map.layer("attn_pool.mlp.fc1", &format!("{h}.mlp.fc1"));
            map.layer("attn_pool.mlp.fc2", &format!("{h}.mlp.fc2"));
        }
        // A SigLIP tower without its head: the mean of the normed patch tokens.
        Family::Siglip => {
            args.global_pool = "avg".into();
            args.fc_norm = Some(false);
        }
    }
    let read = map.read();
    if let Some(extra) = shapes
        .keys()
        .find(|k| !read.contains(k.as_str()) && !unused(k, &p))
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
        preprocess: preprocessing(dir, *channels)?,
        args,
        tensors: map,
    })
}

/// Tensors a checkpoint may hold that no image feature uses: the text tower and the logit
/// scale of CLIPModel / SiglipModel, ViTModel's pooler (a tanh layer over the class token,
/// which `last_hidden_state` does not pass through), DINOv2's mask token (masked training
/// only) and the classifier of Dinov2ForImageClassification (over the class token and the
/// patch mean side by side, not a timm head).
fn unused(name: &str, tower: &str) -> bool {
    let own = name.strip_prefix(tower).unwrap_or(name);
    ["text_model.", "text_projection.", "pooler."]
        .iter()
        .any(|p| name.starts_with(p) || own.starts_with(p))
        || ["logit_scale", "logit_bias"].contains(&name)
        || own == "embeddings.mask_token"
        || own == "embeddings.position_ids"
        || (tower.starts_with("dinov2") && name.starts_with("classifier."))
}
