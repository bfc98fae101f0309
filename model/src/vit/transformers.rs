//! A Hugging Face transformers model folder (`config.json` with a `model_type`,
//! `model.safetensors`, `preprocessor_config.json`, as `save_pretrained` writes them and the hub
//! holds them) of a ViT family ldae runs, read as the timm model it is: the settings, the eval
//! preprocessing of its image processor, and where each tensor of the timm form comes from.
//!
//! The families: `vit` (ViTModel, ViTForImageClassification), `dinov2` and
//! `dinov2_with_registers`, `clip` / `clip_vision_model` (the image tower of CLIPModel,
//! CLIPVisionModel[WithProjection]) and `siglip` / `siglip_vision_model`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use super::args::{self, Activation, Swiglu, VitArgs, TORCH_NORM_EPS, VIT_NORM_EPS};
use super::folder::Preprocess;
use super::resample::Resample;

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

/// Where a tensor of the timm form comes from in the checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Source {
    /// A tensor as it is, or reshaped to `shape` (the same elements).
    Take(String, Option<Vec<usize>>),
    /// Tensors concatenated along the first dimension.
    Cat(Vec<String>),
    /// `len` rows of a 2-D tensor (or entries of a 1-D one) from `start` on.
    Rows(String, usize, usize),
    /// A `[1, 1, W]` class token plus the first position of a `[1, L, W]` table (a
    /// DINOv2-with-registers table covers the class token but not the registers; timm's
    /// `no_embed_class` form holds the class token's position inside the token).
    ClassWithPosition(String, String),
    /// Positions 1.. of a `[1, L, W]` table.
    PatchPositions(String),
    /// Zeros of this shape (CLIP's projection has no bias; timm's head does).
    Zeros(Vec<usize>),
}

impl Source {
    /// The shape it gives, from the checkpoint's shapes.
    fn shape(&self, shapes: &BTreeMap<String, Vec<usize>>) -> Result<Vec<usize>, String> {
        let of = |name: &str| {
            shapes
                .get(name)
                .cloned()
                .ok_or_else(|| format!("tensor '{name}' is missing"))
        };
        Ok(match self {
            Source::Take(name, None) => of(name)?,
            Source::Take(name, Some(shape)) => {
                let s = of(name)?;
                if s.iter().product::<usize>() != shape.iter().product::<usize>() {
                    return Err(format!(
                        "tensor '{name}' has shape {s:?}, not {shape:?}'s size"
                    ));
                }
                shape.clone()
            }
            Source::Cat(names) => {
                let parts = names.iter().map(|n| of(n)).collect::<Result<Vec<_>, _>>()?;
                let mut shape = parts[0].clone();
                if parts
                    .iter()
                    .any(|p| p.len() != shape.len() || p[1..] != shape[1..])
                {
                    return Err(format!(
                        "tensors {names:?} have shapes {parts:?}: not stackable"
                    ));
                }
                shape[0] = parts.iter().map(|p| p[0]).sum();
                shape
            }
            Source::Rows(name, start, len) => {
                let mut s = of(name)?;
                if s.is_empty() || s[0] < start + len {
                    return Err(format!(
                        "tensor '{name}' has shape {s:?}: no rows {start}..{}",
                        start + len
                    ));
                }
                s[0] = *len;
                s
            }
            Source::ClassWithPosition(cls, _) => of(cls)?,
            Source::PatchPositions(pos) => match of(pos)?.as_slice() {
                [1, l, w] if *l > 1 => vec![1, l - 1, *w],
                other => {
                    return Err(format!(
                        "tensor '{pos}' has shape {other:?}, expected [1, L, W]"
                    ))
                }
            },
            Source::Zeros(shape) => shape.clone(),
        })
    }

    /// The tensor, from the checkpoint's.
    fn tensor(
        &self,
        tensors: &HashMap<String, Tensor>,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let of = |name: &str| {
            tensors
                .get(name)
                .cloned()
                .ok_or_else(|| candle_core::Error::Msg(format!("tensor '{name}' is missing")))
        };
        match self {
            Source::Take(name, None) => of(name),
            Source::Take(name, Some(shape)) => of(name)?.reshape(shape.as_slice()),
            Source::Cat(names) => {
                let parts = names
                    .iter()
                    .map(|n| of(n))
                    .collect::<candle_core::Result<Vec<_>>>()?;
                Tensor::cat(&parts, 0)
            }
            Source::Rows(name, start, len) => of(name)?.narrow(0, *start, *len),
            Source::ClassWithPosition(cls, pos) => of(cls)? + of(pos)?.narrow(1, 0, 1)?,
            Source::PatchPositions(pos) => {
                let pos = of(pos)?;
                pos.narrow(1, 1, pos.dim(1)? - 1)
            }
            Source::Zeros(shape) => Tensor::zeros(shape.as_slice(), DType::F32, device),
        }
    }
}

/// The tensors of the timm form, each with its source in the checkpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TensorMap {
    sources: BTreeMap<String, Source>,
}

impl TensorMap {
    fn put(&mut self, timm: impl Into<String>, source: Source) {
        self.sources.insert(timm.into(), source);
    }

    /// A tensor taken as it is.
    fn take(&mut self, timm: impl Into<String>, name: impl Into<String>) {
        self.put(timm, Source::Take(name.into(), None));
    }

    /// A LayerNorm or linear layer: its `weight` and `bias`.
    fn layer(&mut self, timm: &str, name: &str) {
        self.take(format!("{timm}.weight"), format!("{name}.weight"));
        self.take(format!("{timm}.bias"), format!("{name}.bias"));
    }

    /// The shapes of the timm form, from the checkpoint's.
    pub(super) fn shapes(
        &self,
        shapes: &BTreeMap<String, Vec<usize>>,
    ) -> Result<BTreeMap<String, Vec<usize>>, String> {
        self.sources
            .iter()
            .map(|(timm, source)| Ok((timm.clone(), source.shape(shapes)?)))
            .collect()
    }

    /// The tensors of the timm form, from the checkpoint's.
    pub(super) fn tensors(
        &self,
        tensors: &HashMap<String, Tensor>,
        device: &Device,
    ) -> candle_core::Result<HashMap<String, Tensor>> {
        self.sources
            .iter()
            .map(|(timm, source)| Ok((timm.clone(), source.tensor(tensors, device)?)))
            .collect()
    }

    /// The checkpoint's tensors it reads.
    fn read(&self) -> BTreeSet<&str> {
        let mut names = BTreeSet::new();
        for source in self.sources.values() {
            match source {
                Source::Take(n, _) | Source::Rows(n, _, _) | Source::PatchPositions(n) => {
                    names.insert(n.as_str());
                }
                Source::Cat(ns) => names.extend(ns.iter().map(String::as_str)),
                Source::ClassWithPosition(a, b) => {
                    names.insert(a.as_str());
                    names.insert(b.as_str());
                }
                Source::Zeros(_) => {}
            }
        }
        names
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

/// The eval preprocessing of the folder's `preprocessor_config.json`: resize (the shorter side
/// to `size.shortest_edge`, or both sides to `size.height`), centre-crop `crop_size` when
/// `do_center_crop` (offsets rounded down), then `(x * rescale_factor - mean) / std`.
fn preprocessing(dir: &Path, channels: usize) -> Result<Preprocess, String> {
    let path = dir.join("preprocessor_config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e}: a transformers folder needs its image processor's settings (save them \
             with AutoImageProcessor.from_pretrained(HUB_ID).save_pretrained(DIR))",
            path.display()
        )
    })?;
    let cfg: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = |what: String| format!("{}: {what}", path.display());
    let flag = |key: &str, default: bool| cfg.get(key).and_then(Value::as_bool).unwrap_or(default);
    let side = |v: Option<&Value>, key: &str| -> Result<(usize, bool), String> {
        let v = v.ok_or_else(|| bad(format!("no '{key}'")))?;
        let get = |k: &str| v.get(k).and_then(Value::as_u64).map(|s| s as usize);
        match (
            v.as_u64(),
            get("shortest_edge"),
            get("height"),
            get("width"),
        ) {
            (Some(s), ..) => Ok((s as usize, true)),
            (None, Some(s), None, None) if key == "size" => Ok((s, false)),
            (None, None, Some(h), Some(w)) if h == w => Ok((h, true)),
            _ => Err(bad(format!(
                "{key} {v} is not supported (a square height = width, or shortest_edge)"
            ))),
        }
    };
    if !flag("do_resize", true) {
        return Err(bad("do_resize false: ldae resizes every image".into()));
    }
    let (resize, squash) = side(cfg.get("size"), "size")?;
    let image_size = match flag("do_center_crop", false) {
        true => side(cfg.get("crop_size"), "crop_size")?.0,
        false if squash => resize,
        false => {
            return Err(bad(
                "shortest_edge without do_center_crop gives images that are not square".into(),
            ))
        }
    };
    if image_size > resize {
        return Err(bad(format!(
            "crop {image_size} is larger than the resize {resize}"
        )));
    }
    let interpolation = match cfg.get("resample").and_then(Value::as_u64) {
        Some(2) => "bilinear",
        Some(3) | None => "bicubic",
        Some(other) => {
            return Err(bad(format!(
                "resample {other} is not supported (2 bilinear, 3 bicubic)"
            )))
        }
    };
    let rescale = cfg
        .get("rescale_factor")
        .and_then(Value::as_f64)
        .unwrap_or(1.0 / 255.0);
    if !flag("do_rescale", true) || (rescale * 255.0 - 1.0).abs() > 1e-6 {
        return Err(bad(format!(
            "pixels rescaled by {rescale}: ldae's inputs are x / 255"
        )));
    }
    let per_channel = |key: &str, neutral: f32| -> Result<Vec<f32>, String> {
        if !flag("do_normalize", true) {
            return Ok(vec![neutral; channels]);
        }
        match cfg.get(key) {
            Some(Value::Number(n)) => Ok(vec![n.as_f64().unwrap_or_default() as f32; channels]),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| bad(format!("{key}: {e}"))),
            None => Err(bad(format!("no '{key}'"))),
        }
    };
    Ok(Preprocess {
        image_size,
        channels,
        interpolation: interpolation.into(),
        crop_pct: image_size as f64 / resize as f64,
        resize_side: Some(resize),
        squash,
        floor_offsets: true,
        mean: per_channel("image_mean", 0.0)?,
        std: per_channel("image_std", 1.0)?,
    })
}
