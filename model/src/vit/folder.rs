//! A timm model folder (`config.json` + `model.safetensors`, as timm's `save_for_hf` /
//! `push_to_hf_hub` write it and `hf download timm/<model>` leaves it), or a
//! Hugging Face transformers folder of a ViT family read as one ([`super::transformers`]): the
//! architecture, the eval preprocessing, and the weights, each checked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use ldae_pipeline::{Error, Result};
use serde_json::Value;

use super::architectures;
use super::args::{Activation, RelPos, TableResize, VitArgs};
use super::checkpoint::Checkpoint;
use super::expected_tensors::check_tensors;
use super::preprocess::Preprocess;
use super::transformers::{self, TensorMap};

const STAGE: &str = "encoder";

/// timm's defaults where a `pretrained_cfg` leaves a setting out (`timm.data.resolve_data_config`).
const DEFAULT_CROP_PCT: f64 = 0.875;
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// A timm model folder (or a transformers one, read as the timm model it is), read and checked.
#[derive(Debug, Clone)]
pub struct TimmFolder {
    /// The folder.
    pub dir: PathBuf,
    /// `architecture` of `config.json` (with any tag); for a transformers folder, the class
    /// that saved it and its `model_type`.
    pub architecture: String,
    /// The network's settings: the named architecture's, with `model_args` on top.
    pub args: VitArgs,
    /// Patches per side of the position embedding (the training resolution; for a model
    /// without one, that of its input size).
    pub grid: usize,
    /// The eval preprocessing of `pretrained_cfg` (or of `preprocessor_config.json`).
    pub preprocess: Preprocess,
    /// The weights files.
    checkpoint: Checkpoint,
    /// For a transformers folder: where each tensor of the timm form comes from.
    tensors: Option<TensorMap>,
}

/// Whether `dir` looks like a model folder ldae imports, as opposed to an l-DAE training run: a
/// timm one (a `config.json` naming an `architecture`) or a transformers one of a family ldae
/// runs (its `model_type`).
pub fn is_model_folder(dir: &Path) -> bool {
    std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .is_some_and(|v| {
            v.get("architecture").is_some()
                || transformers::model_type(&v)
                    .is_some_and(|t| transformers::MODEL_TYPES.contains(&t))
        })
}

/// `model_args` keys that only matter for training (dropout and friends) or that the tensors'
/// shapes already pin down.
const TRAINING_ONLY_ARGS: &[&str] = &[
    "drop_rate",
    "pos_drop_rate",
    "patch_drop_rate",
    "proj_drop_rate",
    "attn_drop_rate",
    "drop_path_rate",
    "weight_init",
    "fix_init",
    "pretrained_cfg_overlay",
    // ldae runs every model at the grid of its input size, whatever the trained one (the
    // position embedding resampled, a rotary one computed for that grid).
    "dynamic_img_size",
];

impl TimmFolder {
    /// Read `dir/config.json` and check the tensor names and shapes of `dir/model.safetensors`
    /// (or of the shards its index lists) against the architecture (without keeping the
    /// weights).
    pub fn open(dir: &Path) -> Result<TimmFolder> {
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path)
            .map_err(|e| Error::plan(STAGE, format!("{}: {e}", config_path.display())))?;
        let config: Value = serde_json::from_str(&text)
            .map_err(|e| Error::plan(STAGE, format!("{}: {e}", config_path.display())))?;
        let bad = |what: String| Error::plan(STAGE, format!("{}: {what}", config_path.display()));
        if config.get("architecture").is_none() && transformers::model_type(&config).is_some() {
            return Self::open_transformers(dir, &config);
        }
        let architecture = config
            .get("architecture")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no \"architecture\"".into()))?
            .to_string();
        let mut args = architectures::named(&architecture).ok_or_else(|| {
            let names = architectures::names();
            bad(format!(
                "architecture '{architecture}' is not a timm model ldae runs ({} names are: \
                 the vit_*, deit_* and deit3_* ViTs, CLIP, SigLIP, AIMv2, BEiT, EVA / EVA02, \
                 DINOv3, Perception Encoder and rotary ViTs, from {} to {}; see docs/timm.md)",
                names.len(),
                names[0],
                names[names.len() - 1]
            ))
        })?;
        if let Some(n) = config.get("num_classes").and_then(Value::as_u64) {
            args.num_classes = n as usize;
        }
        if let Some(p) = config.get("global_pool").and_then(Value::as_str) {
            args.global_pool = p.to_string();
        }
        if let Some(model_args) = config.get("model_args").and_then(Value::as_object) {
            for (key, value) in model_args {
                apply_arg(&mut args, key, value).map_err(|e| bad(format!("model_args: {e}")))?;
            }
        }
        if args.rel_pos.is_some_and(|r| !r.per_block && !r.shared) {
            args.rel_pos = None;
        }
        if !matches!(args.global_pool.as_str(), "token" | "avg" | "map" | "") {
            return Err(bad(format!(
                "global_pool '{}' is not supported (token, avg, map or none)",
                args.global_pool
            )));
        }
        if args.global_pool == "token" && !args.class_token {
            return Err(bad("global_pool 'token' needs a class token".into()));
        }
        if args.distilled && (args.global_pool != "token" || args.reg_tokens != 1) {
            return Err(bad(
                "a distilled DeiT reads its class and distillation tokens: global_pool 'token' \
                 and no register tokens"
                    .into(),
            ));
        }
        let cfg = config.get("pretrained_cfg").cloned().unwrap_or(Value::Null);
        let mode = cfg
            .get("crop_mode")
            .and_then(Value::as_str)
            .unwrap_or("center");
        // `squash`: both sides to `floor(size / crop_pct)`, then the centre crop.
        if !matches!(mode, "center" | "squash") {
            return Err(bad(format!(
                "pretrained_cfg crop_mode '{mode}' is not supported (center or squash)"
            )));
        }
        let checkpoint = Checkpoint::find(dir)?;
        let trained_grid = check_tensors(&args, &checkpoint.shapes()?, checkpoint.path())?;
        let input = cfg
            .get("input_size")
            .and_then(|v| serde_json::from_value::<Vec<usize>>(v.clone()).ok());
        let image_size = match (input.as_deref(), trained_grid, args.img_size) {
            (Some([_, h, w]), _, _) if h == w => *h,
            (Some(other), _, _) => return Err(bad(format!("input_size {other:?} is not square"))),
            (None, Some(grid), _) => grid * args.patch,
            (None, None, Some(size)) => size,
            (None, None, None) => {
                return Err(bad(
                    "the model has no position embedding and pretrained_cfg gives no \
                     input_size: nothing says what size its images are"
                        .into(),
                ))
            }
        };
        let grid = trained_grid.unwrap_or(image_size / args.patch);
        let floats = |key: &str, default: &[f32]| -> Result<Vec<f32>> {
            match cfg.get(key) {
                None | Some(Value::Null) => Ok(default.to_vec()),
                Some(v) => serde_json::from_value(v.clone())
                    .map_err(|e| bad(format!("pretrained_cfg {key}: {e}"))),
            }
        };
        let preprocess = Preprocess {
            image_size,
            channels: args.in_chans,
            interpolation: cfg
                .get("interpolation")
                .and_then(Value::as_str)
                .unwrap_or("bicubic")
                .to_string(),
            crop_pct: cfg
                .get("crop_pct")
                .and_then(Value::as_f64)
                .unwrap_or(DEFAULT_CROP_PCT),
            resize_side: None,
            squash: mode == "squash",
            floor_offsets: false,
            mean: floats("mean", &IMAGENET_MEAN)?,
            std: floats("std", &IMAGENET_STD)?,
        };
        Ok(TimmFolder {
            dir: dir.to_path_buf(),
            architecture,
            args,
            grid,
            preprocess,
            checkpoint,
            tensors: None,
        })
    }

    /// A transformers folder of `config`, read as the timm model it is.
    fn open_transformers(dir: &Path, config: &Value) -> Result<TimmFolder> {
        let checkpoint = Checkpoint::find(dir)?;
        let shapes = checkpoint.shapes()?;
        let bad = |e: String| {
            Error::plan(
                STAGE,
                format!("{} (transformers model): {e}", dir.display()),
            )
        };
        let imported = transformers::open(dir, config, &shapes).map_err(bad)?;
        let timm_shapes = imported.tensors.shapes(&shapes).map_err(bad)?;
        let trained_grid = check_tensors(&imported.args, &timm_shapes, checkpoint.path())?;
        Ok(TimmFolder {
            dir: dir.to_path_buf(),
            architecture: imported.architecture,
            grid: trained_grid.unwrap_or(imported.preprocess.image_size / imported.args.patch),
            args: imported.args,
            preprocess: imported.preprocess,
            checkpoint,
            tensors: Some(imported.tensors),
        })
    }

    /// The weights by their timm names, as f32 tensors on `device`.
    pub fn load_weights(&self, device: &Device) -> Result<HashMap<String, Tensor>> {
        let path = self.checkpoint.path();
        let fail = |e: candle_core::Error| Error::plan(STAGE, format!("{}: {e}", path.display()));
        let tensors = match &self.tensors {
            None => self.checkpoint.load(None, device)?,
            // Only the tensors the map reads: a CLIPModel's text tower, say, is never built.
            Some(map) => {
                let read = self.checkpoint.load(Some(&map.read()), device)?;
                map.tensors(&read, device).map_err(fail)?
            }
        };
        tensors
            .into_iter()
            .map(|(k, t)| {
                let t = t
                    .to_dtype(DType::F32)
                    .map_err(|e| Error::plan(STAGE, format!("{}: {k}: {e}", path.display())))?;
                Ok((k, t))
            })
            .collect()
    }
}

/// One `model_args` entry onto `args`.
fn apply_arg(args: &mut VitArgs, key: &str, value: &Value) -> std::result::Result<(), String> {
    let int = || {
        value
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| format!("{key} = {value} is not a whole number"))
    };
    let flag = || {
        value
            .as_bool()
            .ok_or_else(|| format!("{key} = {value} is not true or false"))
    };
    match key {
        "patch_size" => args.patch = int()?,
        "embed_dim" => args.width = int()?,
        "depth" => args.depth = int()?,
        "num_heads" => args.heads = int()?,
        "mlp_ratio" => {
            args.mlp_ratio = value
                .as_f64()
                .ok_or_else(|| format!("mlp_ratio = {value} is not a number"))?
        }
        "class_token" => args.class_token = flag()?,
        // `num_reg_tokens` and `use_fc_norm` are eva.py's names.
        "reg_tokens" | "num_reg_tokens" => args.reg_tokens = int()?,
        "no_embed_class" => args.no_embed_class = flag()?,
        "init_values" => args.init_values = value.as_f64(),
        "qkv_bias" => args.qkv_bias = flag()?,
        "proj_bias" => args.proj_bias = flag()?,
        "pre_norm" => args.pre_norm = flag()?,
        "global_pool" => {
            args.global_pool = value
                .as_str()
                .ok_or_else(|| format!("global_pool = {value} is not a string"))?
                .to_string()
        }
        "fc_norm" | "use_fc_norm" => args.fc_norm = value.as_bool(),
        "act_layer" => {
            args.activation = match value.as_str() {
                Some("gelu") => Activation::Gelu,
                Some("quick_gelu") => Activation::QuickGelu,
                Some("gelu_tanh") => Activation::GeluTanh,
                _ => {
                    return Err(format!(
                        "act_layer = {value} is not supported by the ViT import (gelu, \
                         gelu_tanh or quick_gelu)"
                    ))
                }
            }
        }
        "final_norm" => args.final_norm = flag()?,
        // BEiT's position options (beit.py).
        "use_abs_pos_emb" => args.abs_pos = flag()?,
        "use_rel_pos_bias" | "use_shared_rel_pos_bias" => {
            let on = flag()?;
            let rel = args.rel_pos.get_or_insert(RelPos {
                per_block: false,
                shared: false,
                resize: TableResize::Geometric,
            });
            match key {
                "use_rel_pos_bias" => rel.per_block = on,
                _ => rel.shared = on,
            }
        }
        "in_chans" => args.in_chans = int()?,
        "num_classes" => args.num_classes = int()?,
        "img_size" => {
            args.img_size = match value {
                Value::Array(sides) => sides.first().and_then(Value::as_u64).map(|v| v as usize),
                other => other.as_u64().map(|v| v as usize),
            }
        }
        // An argument that changes the network in a way this import does not run (another
        // activation, attention pooling, qk-norm...): refuse rather than compute something else.
        other if !TRAINING_ONLY_ARGS.contains(&other) => {
            return Err(format!(
                "argument '{other}' = {value} is not supported by the ViT import"
            ))
        }
        _ => {}
    }
    Ok(())
}
