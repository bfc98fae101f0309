//! A transformers image processor's settings (`preprocessor_config.json`) as ldae's eval
//! preprocessing.

use std::path::Path;

use serde_json::Value;

use crate::vit::preprocess::Preprocess;

/// The processor classes transformers builds with `default_to_square = False`: a plain number
/// for `size` (the hub's older files, e.g. openai/clip-vit-*'s `"size": 224`) is their shorter
/// side, where the other classes (ViT's, DeiT's, SigLIP's...) read it as a square.
const SHORTER_SIDE_PROCESSORS: &[&str] = &["CLIP", "ChineseCLIP", "Bit", "ConvNext"];

/// The eval preprocessing of the folder's `preprocessor_config.json`: resize (the shorter side
/// to `size.shortest_edge`, or both sides to `size.height`), centre-crop `crop_size` when
/// `do_center_crop` (offsets rounded down), then `(x * rescale_factor - mean) / std`. A file
/// that names no processor class is read as `model_type`'s usual one (CLIP's, AIMv2's and
/// DINOv2's processors take a plain-number `size` as the shorter side).
pub(super) fn preprocessing(
    dir: &Path,
    channels: usize,
    model_type: &str,
) -> Result<Preprocess, String> {
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
    let class = ["image_processor_type", "feature_extractor_type"]
        .iter()
        .find_map(|k| cfg.get(*k).and_then(Value::as_str));
    let number_is_shorter_side = match class {
        Some(class) => SHORTER_SIDE_PROCESSORS.iter().any(|p| class.starts_with(p)),
        None => matches!(
            model_type,
            "clip"
                | "clip_vision_model"
                | "aimv2"
                | "aimv2_vision_model"
                | "dinov2"
                | "dinov2_with_registers"
        ),
    };
    let side = |v: Option<&Value>, key: &str| -> Result<(usize, bool), String> {
        let v = v.ok_or_else(|| bad(format!("no '{key}'")))?;
        let get = |k: &str| v.get(k).and_then(Value::as_u64).map(|s| s as usize);
        match (
            v.as_u64(),
            get("shortest_edge"),
            get("height"),
            get("width"),
        ) {
            (Some(s), ..) if key == "size" && number_is_shorter_side => Ok((s as usize, false)),
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
