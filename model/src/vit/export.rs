//! An l-DAE run's encoder as a plain timm `VisionTransformer` folder (`config.json`,
//! `model.safetensors`, a `README.md` model card) that `timm.create_model("local-dir:DIR",
//! pretrained=True)` loads with no ldae code.
//!
//! What folds into what: the network's input is already a pixel patch (during training the
//! noisy latent goes back through the inverse PCA before the patch embedding), so the patch
//! embedding is the convolution, its `[W, p*p*C]` matrix reordered to `[W, C, p, p]`. At the
//! recorded noise level t the conditioning vector is a constant, so each block's adaLN
//! modulation is constant too: `LN(x) * (1 + scale) + shift` is a LayerNorm with weight
//! `1 + scale` and bias `shift`, and the gate is a LayerScale gamma. The fixed sin-cos position
//! table becomes `pos_embed`. No class token, no final norm, `global_pool = "avg"`: timm's
//! pooled feature is the mean of the tokens after the recorded block, ldae's `--pooling mean`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use ldae_operators::normalize::Normalization;
use ldae_operators::pca::{candle_err, PcaModel};
use ldae_pipeline::names::name_of;
use ldae_pipeline::{Error, Result};
use serde_json::{json, Value};

use crate::denoiser::{Denoiser, Precision};
use crate::run_folder::{load_trained, probe_reports, read_json, read_train_config};
use crate::train::trainer::TrainConfig;

/// What to export.
#[derive(Debug, Clone)]
pub struct TimmExport {
    /// The training run folder.
    pub run: PathBuf,
    /// The folder to write (must not exist unless `overwrite`).
    pub out: PathBuf,
    /// The block whose tokens are the feature (default: the run's recorded one, else the last
    /// encoder block).
    pub block: Option<usize>,
    /// The noise level t (default: the run's recorded one).
    pub t: Option<f32>,
    /// Read the EMA weights (default: as the run records).
    pub ema: Option<bool>,
    /// Probe reports for the model card (default: the run's `probe-*.json`).
    pub probes: Vec<PathBuf>,
    /// Replace `out` if it exists.
    pub overwrite: bool,
}

/// What was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TimmExportReport {
    /// The folder.
    pub out: PathBuf,
    /// The timm architecture name `config.json` records.
    pub architecture: String,
    /// Blocks in the exported model.
    pub depth: usize,
    /// The noise level folded in.
    pub t: f32,
    /// Whether the EMA weights were used.
    pub ema: bool,
    /// Parameters written.
    pub parameters: usize,
    /// Probe reports summarised in the model card.
    pub probes: Vec<PathBuf>,
}

impl TimmExport {
    /// Write the folder (into a temporary sibling, renamed into place when complete).
    pub fn run(&self) -> Result<TimmExportReport> {
        let config = read_train_config(&self.run)?;
        let recorded = &config.features;
        let depth = self
            .block
            .or(recorded.block)
            .unwrap_or(config.model.encoder_depth);
        let total = config.model.depth();
        if depth == 0 || depth > total {
            return Err(Error::invalid(format!(
                "--block {depth} is not between 1 and the run's {total} blocks"
            )));
        }
        let t = self.t.unwrap_or(recorded.t);
        let ema = self.ema.unwrap_or(recorded.ema);
        let (_, model) = load_trained(&self.run, &Device::Cpu, ema, Precision::F32)?;
        let pca = PcaModel::load(&config.pca)?;
        let tensors = timm_tensors(&model, &pca, t, depth)?;
        let parameters = tensors.iter().map(|(_, t)| t.elem_count()).sum();
        let probes = match self.probes.is_empty() {
            true => probe_reports(&self.run),
            false => self.probes.clone(),
        };
        let (architecture, config_json) = timm_config(&config, &pca, depth)?;
        let card = model_card(
            &config,
            &pca,
            &architecture,
            depth,
            t,
            ema,
            &probes,
            &self.run,
        )?;
        write_folder(&self.out, self.overwrite, |dir| {
            let map: std::collections::HashMap<String, Tensor> = tensors.into_iter().collect();
            candle_core::safetensors::save(&map, dir.join("model.safetensors"))
                .map_err(|e| Error::external(dir.display().to_string(), e))?;
            let text = serde_json::to_string_pretty(&config_json)
                .map_err(|e| Error::external("config.json", e))?;
            std::fs::write(dir.join("config.json"), text).map_err(|e| Error::io(dir, e))?;
            std::fs::write(dir.join("README.md"), card).map_err(|e| Error::io(dir, e))
        })?;
        Ok(TimmExportReport {
            out: self.out.clone(),
            architecture,
            depth,
            t,
            ema,
            parameters,
            probes,
        })
    }
}

/// The exported tensors, under timm's names.
fn timm_tensors(
    model: &Denoiser,
    pca: &PcaModel,
    t: f32,
    depth: usize,
) -> Result<Vec<(String, Tensor)>> {
    let m = &pca.meta;
    let (p, c) = (m.geometry.patch, m.geometry.channels);
    let width = model.config().width;
    let (w, b) = model.patch_embedding().map_err(candle_err)?;
    // ldae's patch element order is (row, column, channel): [W, p, p, C] -> [W, C, p, p].
    let conv = w
        .reshape((width, p, p, c))
        .and_then(|w| w.permute((0, 3, 1, 2)))
        .and_then(|w| w.contiguous())
        .map_err(candle_err)?;
    let mut out = vec![
        ("patch_embed.proj.weight".to_string(), conv),
        ("patch_embed.proj.bias".to_string(), b),
        ("pos_embed".to_string(), model.position().clone()),
    ];
    // The encoder feeds t itself (not a sigma) for every image: one conditioning vector.
    let ts = Tensor::full(t, 1, &Device::Cpu).map_err(candle_err)?;
    let cond = model.conditioning(&ts).map_err(candle_err)?;
    for (i, block) in model.blocks().iter().take(depth).enumerate() {
        let modulation = block.modulation(&cond).map_err(candle_err)?;
        out.extend(
            block
                .as_vit_block(&format!("blocks.{i}"), &modulation)
                .map_err(candle_err)?,
        );
    }
    out.into_iter()
        .map(|(k, v)| Ok((k, v.to_dtype(DType::F32).map_err(candle_err)?)))
        .collect()
}

/// The per-channel mean and std of `x / 255` that ldae's normalisation stands for.
fn mean_std(n: &Normalization, channels: usize) -> (Vec<f32>, Vec<f32>) {
    match n {
        // x / 127.5 - 1 = (x / 255 - 0.5) / 0.5
        Normalization::MinusOneOne => (vec![0.5; channels], vec![0.5; channels]),
        Normalization::MeanStd { mean, std } => (mean.clone(), std.clone()),
    }
}

/// timm's architecture name and `config.json` for the exported encoder. The name is the timm
/// ViT of the same width (any registered name works: `model_args` set every size).
fn timm_config(config: &TrainConfig, pca: &PcaModel, depth: usize) -> Result<(String, Value)> {
    let c = &config.model;
    let m = &pca.meta;
    let architecture = match c.width {
        192 => "vit_tiny_patch16_224",
        384 => "vit_small_patch16_224",
        1024 => "vit_large_patch16_224",
        _ => "vit_base_patch16_224",
    }
    .to_string();
    let (mean, std) = mean_std(&m.normalization, m.geometry.channels);
    let model_args = json!({
        "img_size": m.geometry.size,
        "patch_size": m.geometry.patch,
        "in_chans": m.geometry.channels,
        "embed_dim": c.width,
        "depth": depth,
        "num_heads": c.heads,
        "mlp_ratio": c.mlp_ratio as f64,
        "qkv_bias": true,
        "class_token": false,
        "global_pool": "avg",
        "init_values": 1.0,
        "final_norm": false,
        "num_classes": 0,
    });
    let config_json = json!({
        "architecture": architecture,
        "num_classes": 0,
        "num_features": c.width,
        "global_pool": "avg",
        "model_args": model_args,
        "pretrained_cfg": {
            "tag": "ldae",
            "custom_load": false,
            "input_size": [m.geometry.channels, m.geometry.size, m.geometry.size],
            "fixed_input_size": true,
            // ldae resizes the centre square of the shorter side to S with Pillow's bilinear
            // filter: timm's resize-shorter-side-then-crop at crop_pct 1 is that up to the
            // rounding of the crop offset.
            "interpolation": "bilinear",
            "crop_pct": 1.0,
            "crop_mode": "center",
            "mean": mean,
            "std": std,
            "num_classes": 0,
            "pool_size": null,
            "first_conv": "patch_embed.proj",
            "classifier": "head",
        },
    });
    Ok((architecture, config_json))
}

/// One line per probe report: its tables, features and top-1 / top-5.
fn probe_lines(probes: &[PathBuf]) -> Result<Vec<String>> {
    let pct = |v: &Value| {
        v.as_f64()
            .map_or("-".into(), |x| format!("{:.1}%", 100.0 * x))
    };
    probes
        .iter()
        .map(|path| {
            let r: Value = read_json(path)?;
            let name = |key: &str| r[key].as_str().unwrap_or("?").to_string();
            Ok(format!(
                "| {} | {} | {} | {} | {} / {} | {} / {} |",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
                name("train"),
                name("test"),
                r["features"],
                pct(&r["linear"]["top1"]),
                pct(&r["linear"]["top5"]),
                pct(&r["knn"]["top1"]),
                pct(&r["knn"]["top5"]),
            ))
        })
        .collect()
}

/// The model card.
#[allow(clippy::too_many_arguments)]
fn model_card(
    config: &TrainConfig,
    pca: &PcaModel,
    architecture: &str,
    depth: usize,
    t: f32,
    ema: bool,
    probes: &[PathBuf],
    run: &Path,
) -> Result<String> {
    let c = &config.model;
    let m = &pca.meta;
    let (mean, std) = mean_std(&m.normalization, m.geometry.channels);
    let probes_text = match probe_lines(probes)? {
        lines if lines.is_empty() => "No probe reports were found in the run folder (`ldae export --probe FILE` adds them).\n".to_string(),
        lines => format!(
            "| report | train | test | features | linear top-1 / top-5 | kNN top-1 / top-5 |\n|---|---|---|---|---|---|\n{}\n",
            lines.join("\n")
        ),
    };
    let limit = config
        .limit
        .map_or(String::new(), |l| format!(", first {l} rows"));
    Ok(format!(
        "---\nlibrary_name: timm\ntags:\n- image-feature-extraction\n- timm\n- l-dae\n---\n\n\
# l-DAE encoder (timm VisionTransformer, width {width}, {depth} blocks)\n\n\
A latent denoising autoencoder (l-DAE) pre-trained with ldae, exported as a plain timm \
`VisionTransformer`: the first {depth} of its {total} blocks at the fixed noise level t = {t}, \
{weights} weights. Load it with no ldae code:\n\n\
```python\nimport timm, torch\nm = timm.create_model(\"local-dir:PATH\", pretrained=True).eval()\n\
cfg = timm.data.resolve_data_config({{}}, model=m)\ntransform = timm.data.create_transform(**cfg)\n\
features = m.forward_head(m.forward_features(transform(img).unsqueeze(0)), pre_logits=True)\n```\n\n\
The pooled feature (`global_pool = \"avg\"`, no final norm) is the mean of the tokens after \
block {depth}, as `ldae features --checkpoint RUN --pooling mean --block {depth}` computes it.\n\n\
## Model\n\n\
- width {width}, {heads} heads, MLP ratio {mlp}, patch {p}, input {s} x {s} x {ch}, no class token\n\
- the fixed (not learned) 2D sin-cos position embedding, as `pos_embed`\n\
- registered in `config.json` as `{architecture}`, every size set by `model_args`\n\
- adaLN modulation at t = {t} folded into the LayerNorm affines and LayerScale gammas\n\
- preprocessing: centre square of the shorter side resized to {s} (bilinear), \
`(x / 255 - {mean:?}) / {std:?}`\n\n\
## Data and recipe\n\n\
- data: `{input}` ({rows} rows per epoch{limit})\n\
- patch PCA: `{pca}`, latent dimension d = {d}, latent scale {scale}\n\
- noise: {noise}\n\
- preset {preset}, conditioning {cond}; {epochs} epochs, batch {batch}, peak lr {lr}, \
warm-up {warmup} epochs, AdamW weight decay {wd}, EMA {ema_cfg}, augmentation {augment}, seed {seed}\n\
- exported from `{run}`\n\n\
## Probes\n\n{probes_text}",
        total = c.depth(),
        weights = if ema { "EMA" } else { "trained" },
        width = c.width,
        heads = c.heads,
        mlp = c.mlp_ratio,
        p = m.geometry.patch,
        s = m.geometry.size,
        ch = m.geometry.channels,
        input = config.input,
        rows = config.rows_per_epoch,
        pca = config.pca.display(),
        d = config.dim,
        scale = name_of(&config.latent_scale),
        noise = serde_json::to_string(&config.noise).unwrap_or_default(),
        preset = config.preset,
        cond = name_of(&c.conditioning),
        epochs = config.epochs,
        batch = config.batch_size,
        lr = config.lr,
        warmup = config.warmup_epochs,
        wd = config.adamw.weight_decay,
        ema_cfg = config.ema.map_or("off".to_string(), |e| format!("{e}")),
        augment = config.augment,
        seed = config.seed,
        run = run.display(),
    ))
}

/// Write a folder through `fill` into a temporary sibling, then rename it into place: a killed
/// export never leaves a folder that looks complete.
fn write_folder(out: &Path, overwrite: bool, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if out.exists() && !overwrite {
        return Err(Error::conflict(out, "exists (--overwrite replaces it)"));
    }
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::invalid(format!("{}: not a folder name", out.display())))?;
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ldae_pipeline::folders::create_dir_all(parent)?;
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    ldae_pipeline::folders::create_dir_all(&tmp)?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| Error::io(out, e))?;
    }
    std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))
}
