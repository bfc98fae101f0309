//! The ablation job (`ldae ablate SPEC.toml`): the paper's small-scale findings on a dataset and budget of the
//! user's choosing — latent dimension d (d = D is the pixel-space DAE), multi- vs single-level
//! noise, latent scale, and the probed block — as a Markdown and a CSV table.
//! The spec format is documented in docs/ablate.md.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ldae_model::encoder::EncoderModel;
use ldae_model::train::metrics::read_metrics;
use ldae_operators::pca::{LatentScale, PcaModel};
use ldae_pipeline::{Error, RunOptions};
use serde::{Deserialize, Serialize};

use crate::experiment::{features, fit_pca, pretrain, probe_tables, Pretrain, Rows, Say};
use crate::train::NoiseKind;
use crate::{Context, Result};

/// One pre-training setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    /// Latent dimension d.
    pub dim: usize,
    /// `multi` or `single`.
    pub noise: NoiseKind,
    /// `none`, `global` or `whiten`.
    pub latent_scale: LatentScale,
}

fn default_base() -> Setting {
    Setting {
        dim: 16,
        noise: NoiseKind::Multi,
        latent_scale: LatentScale::Global,
    }
}

/// The ablation spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AblateSpec {
    /// Images to fit the PCA on, pre-train on and fit the probes on.
    pub train: String,
    /// Held-out images the probes are scored on.
    pub test: String,
    /// Output folder (relative to the spec file).
    pub out: PathBuf,
    #[serde(default = "d32")]
    pub image_size: usize,
    #[serde(default = "d4")]
    pub patch: usize,
    /// 3 (RGB) or 1; default 3.
    pub channels: Option<u8>,
    #[serde(default = "tiny")]
    pub preset: String,
    #[serde(default = "one")]
    pub epochs: u64,
    /// Pre-training images per epoch (a shuffled subset); default all.
    pub limit: Option<usize>,
    #[serde(default = "d128")]
    pub batch_size: usize,
    #[serde(default = "lr")]
    pub lr: f64,
    #[serde(default = "warmup")]
    pub warmup_epochs: f64,
    /// Training rows the probes are fitted on (a shuffled subset); default all.
    pub probe_train_rows: Option<usize>,
    /// Test rows scored; default all.
    pub probe_test_rows: Option<usize>,
    #[serde(default = "yes")]
    pub knn: bool,
    /// The setting every sweep varies one thing of.
    #[serde(default = "default_base")]
    pub base: Setting,
    /// Latent dimensions to try (include D for the pixel-space DAE).
    #[serde(default = "dims")]
    pub dims: Vec<usize>,
    /// Noise schedules to try.
    #[serde(default = "noises")]
    pub noises: Vec<NoiseKind>,
    /// Latent scales to try.
    #[serde(default = "scales")]
    pub latent_scales: Vec<LatentScale>,
    /// Blocks to probe on the base run (default: every block).
    pub blocks: Option<Vec<usize>>,
}

fn d32() -> usize {
    32
}
fn d4() -> usize {
    4
}
fn d128() -> usize {
    128
}
fn one() -> u64 {
    1
}
fn tiny() -> String {
    "tiny".into()
}
fn lr() -> f64 {
    1e-3
}
fn warmup() -> f64 {
    0.2
}
fn yes() -> bool {
    true
}
fn dims() -> Vec<usize> {
    vec![8, 16, 48]
}
fn noises() -> Vec<NoiseKind> {
    vec![NoiseKind::Multi, NoiseKind::Single]
}
fn scales() -> Vec<LatentScale> {
    vec![LatentScale::None, LatentScale::Global, LatentScale::Whiten]
}

/// One line of the result table.
struct Row {
    sweep: &'static str,
    setting: String,
    linear: f64,
    knn: Option<f64>,
    final_loss: Option<f32>,
    minutes: f64,
}

fn resolve(base: &Path, p: &str) -> String {
    if p.starts_with("synthetic:") || Path::new(p).is_absolute() {
        p.to_string()
    } else {
        base.join(p).display().to_string()
    }
}

fn label(s: &Setting) -> String {
    format!("d={} {} {}", s.dim, s.noise, s.latent_scale)
}

/// What an ablation wrote.
pub struct AblateReport {
    /// The Markdown table (also written as `ablation.md`).
    pub markdown: String,
    /// `ablation.md`.
    pub markdown_path: PathBuf,
    /// `ablation.csv`.
    pub csv_path: PathBuf,
}

/// Run the ablation spec at `spec_path`; `say` gets a line per step and result.
pub fn run(spec_path: &Path, run: &RunOptions, say: Say<'_>) -> Result<AblateReport> {
    let text = std::fs::read_to_string(spec_path).map_err(|e| Error::io(spec_path, e))?;
    let spec: AblateSpec = toml::from_str(&text)
        .with_context(|| format!("{}: not a valid ablation spec", spec_path.display()))?;
    let here = spec_path.parent().unwrap_or(Path::new("."));
    let train = resolve(here, &spec.train);
    let test = resolve(here, &spec.test);
    let out = here.join(&spec.out);
    ldae_pipeline::folders::create_dir_all(&out)?;

    let pca_path = out.join("pca.safetensors");
    say(&format!("fitting the PCA on {train}"));
    fit_pca(
        &train,
        spec.image_size,
        spec.patch,
        spec.channels.unwrap_or(3),
        &pca_path,
        run,
        say,
    )?;
    let full_dim = PcaModel::load(&pca_path)?.dim();

    // The settings to pre-train: the base, then each sweep's values that differ from it.
    let mut settings: Vec<(&'static str, Setting)> = vec![("base", spec.base.clone())];
    let mut add = |sweep: &'static str, s: Setting| {
        if s != spec.base {
            settings.push((sweep, s));
        }
    };
    for &dim in &spec.dims {
        add(
            "latent dim d",
            Setting {
                dim,
                ..spec.base.clone()
            },
        );
    }
    for noise in &spec.noises {
        add(
            "noise",
            Setting {
                noise: *noise,
                ..spec.base.clone()
            },
        );
    }
    for scale in &spec.latent_scales {
        add(
            "latent scale",
            Setting {
                latent_scale: *scale,
                ..spec.base.clone()
            },
        );
    }
    say(&format!(
        "{} pre-training runs ({} epochs of {} images each, preset {}); D = {full_dim}",
        settings.len(),
        spec.epochs,
        spec.limit.map_or("all".to_string(), |l| l.to_string()),
        spec.preset
    ));

    let probe_train = Rows {
        limit: spec.probe_train_rows,
        shuffle: spec.probe_train_rows.is_some(),
        ..Rows::default()
    };
    let probe_test = Rows {
        limit: spec.probe_test_rows,
        shuffle: spec.probe_test_rows.is_some(),
        ..Rows::default()
    };
    let mut rows = Vec::new();
    for (i, (sweep, setting)) in settings.iter().enumerate() {
        let dir = out.join(format!("run-{i:02}"));
        say(&format!(
            "[{}/{}] {sweep}: {}",
            i + 1,
            settings.len(),
            label(setting)
        ));
        let started = Instant::now();
        pretrain(
            &Pretrain {
                input: &train,
                pca: &pca_path,
                dim: setting.dim,
                noise: setting.noise,
                latent_scale: Some(setting.latent_scale),
                preset: &spec.preset,
                epochs: spec.epochs,
                limit: spec.limit,
                batch_size: spec.batch_size,
                lr: spec.lr,
                warmup_epochs: spec.warmup_epochs,
                out: &dir,
            },
            run,
            say,
        )?;
        let minutes = started.elapsed().as_secs_f64() / 60.0;
        let final_loss = read_metrics(&dir.join("metrics.parquet"))
            .ok()
            .and_then(|m| {
                let n = m.len().min(20);
                (n > 0).then(|| m[m.len() - n..].iter().map(|r| r.loss).sum::<f32>() / n as f32)
            });
        let blocks: Vec<Option<usize>> = if i == 0 {
            match &spec.blocks {
                Some(b) => b.iter().map(|&b| Some(b)).collect(),
                None => {
                    let config = ldae_model::train::trainer::read_train_config(&dir)?;
                    (1..=config.model.encoder_depth + config.model.decoder_depth)
                        .map(Some)
                        .collect()
                }
            }
        } else {
            vec![None]
        };
        for block in blocks {
            let tag = block.map_or("default".to_string(), |b| format!("block{b}"));
            let tr = features(
                EncoderModel::Ldae,
                &dir,
                block.into_iter().collect(),
                &train,
                probe_train,
                &dir.join(format!("features-{tag}-train")),
                run,
            )?;
            let te = features(
                EncoderModel::Ldae,
                &dir,
                block.into_iter().collect(),
                &test,
                probe_test,
                &dir.join(format!("features-{tag}-test")),
                run,
            )?;
            let report = probe_tables(&tr, &te, spec.knn, &dir.join(format!("probe-{tag}.json")))?;
            let (sweep, setting_text) = match block {
                Some(b) => ("probe block", format!("{} block {b}", label(setting))),
                None => (*sweep, label(setting)),
            };
            say(&format!(
                "    {setting_text}: linear {:.1}%{}",
                100.0 * report.linear.scores.top1,
                report
                    .knn
                    .as_ref()
                    .map(|k| format!(", kNN {:.1}%", 100.0 * k.scores.top1))
                    .unwrap_or_default()
            ));
            rows.push(Row {
                sweep,
                setting: setting_text,
                linear: report.linear.scores.top1,
                knn: report.knn.as_ref().map(|k| k.scores.top1),
                final_loss,
                minutes,
            });
        }
    }
    write_tables(&out, &spec, &train, &test, full_dim, &rows)
}

fn write_tables(
    out: &Path,
    spec: &AblateSpec,
    train: &str,
    test: &str,
    full_dim: usize,
    rows: &[Row],
) -> Result<AblateReport> {
    let pct = |v: Option<f64>| v.map_or("".to_string(), |v| format!("{:.1}", 100.0 * v));
    let mut csv = String::from("sweep,setting,linear_top1,knn_top1,final_loss,pretrain_minutes\n");
    let mut md = format!(
        "# l-DAE ablation\n\npre-training: {train}, preset {}, {} epoch(s) of {} images, batch {}, lr {}; \
         probes: {} training rows, {} test rows of {test}; D = {full_dim}.\n\n\
         | sweep | setting | linear top-1 % | kNN top-1 % | final loss | pre-training min |\n|---|---|---|---|---|---|\n",
        spec.preset,
        spec.epochs,
        spec.limit.map_or("all".to_string(), |l| l.to_string()),
        spec.batch_size,
        spec.lr,
        spec.probe_train_rows.map_or("all".to_string(), |l| l.to_string()),
        spec.probe_test_rows.map_or("all".to_string(), |l| l.to_string()),
    );
    for r in rows {
        let loss = r.final_loss.map_or(String::new(), |l| format!("{l:.4}"));
        csv.push_str(&format!(
            "{},{},{},{},{loss},{:.2}\n",
            r.sweep,
            r.setting,
            pct(Some(r.linear)),
            pct(r.knn),
            r.minutes
        ));
        md.push_str(&format!(
            "| {} | {} | {} | {} | {loss} | {:.1} |\n",
            r.sweep,
            r.setting,
            pct(Some(r.linear)),
            pct(r.knn),
            r.minutes
        ));
    }
    md.push_str("\nFinal loss is the mean of the last 20 steps; it is not comparable across latent dimensions and scales (the loss is measured in each setting's own PCA basis weighting).\n");
    let (md_path, csv_path) = (out.join("ablation.md"), out.join("ablation.csv"));
    ldae_operators::atomic::write_atomic(&md_path, md.as_bytes())?;
    ldae_operators::atomic::write_atomic(&csv_path, csv.as_bytes())?;
    Ok(AblateReport {
        markdown: md,
        markdown_path: md_path,
        csv_path,
    })
}
