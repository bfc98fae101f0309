//! The ablation job (`ldae ablate SPEC.toml`): the paper's small-scale findings on a dataset and budget of the
//! user's choosing — latent dimension d (d = D is the pixel-space DAE), multi- vs single-level
//! noise, latent scale, and the probed block — each pre-trained once per seed, as a Markdown
//! table of means and spreads, a CSV of every run, and plots against d and the block.
//! The spec format is documented in docs/ablate.md.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ldae_model::encoder::{EncoderModel, Pooling};
use ldae_model::train::metrics::read_metrics;
use ldae_operators::pca::{LatentScale, PcaModel};
use ldae_pipeline::{Error, RunOptions};
use serde::{Deserialize, Serialize};

use crate::experiment::{
    features, fit_pca, pretrain, probe_tables, FeatureRead, Pretrain, Rows, Say, TrainExtras,
};
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
    /// Seeds: every setting is pre-trained (and probed) once per seed; the report shows the
    /// mean and the spread. Default `[0]`.
    #[serde(default = "seeds")]
    pub seeds: Vec<u64>,
    /// How the probed tokens are pooled: `mean` (default), `grid2`, `grid4` or `none`.
    #[serde(default)]
    pub pooling: Pooling,
    /// Random-resized crop and flip during pre-training (default false).
    #[serde(default)]
    pub augment: bool,
    /// EMA decay of the weights (default none); the probes then read the EMA weights.
    pub ema: Option<f64>,
    /// AdamW weight decay (default 0).
    #[serde(default)]
    pub weight_decay: f64,
    /// Decode `train` once into `OUT/pixel-cache` and pre-train every run from it (default
    /// true; the same pixels, so the same results, only faster).
    #[serde(default = "yes")]
    pub pixel_cache: bool,
}

fn seeds() -> Vec<u64> {
    vec![0]
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

/// One probe of one pre-training run (one seed).
struct Row {
    sweep: &'static str,
    setting: String,
    /// Latent dimension of the run.
    dim: usize,
    /// The probed block, on the block sweep.
    block: Option<usize>,
    /// The base run probed at the block every other run is probed at (its point on the
    /// latent-dimension plot).
    base_default: bool,
    seed: u64,
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
    /// The plots written (`ablation-dim.png`, `ablation-block.png`; each when its sweep has
    /// at least two values).
    pub plots: Vec<PathBuf>,
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

    let settings = plan_settings(&spec);
    say(&format!(
        "{} pre-training runs ({} epochs of {} images each, preset {}); D = {full_dim}",
        settings.len(),
        spec.epochs,
        spec.limit.map_or("all".to_string(), |l| l.to_string()),
        spec.preset
    ));

    let probes = ProbeData {
        train: train.clone(),
        test: test.clone(),
        train_rows: Rows {
            limit: spec.probe_train_rows,
            shuffle: spec.probe_train_rows.is_some(),
            ..Rows::default()
        },
        test_rows: Rows {
            limit: spec.probe_test_rows,
            shuffle: spec.probe_test_rows.is_some(),
            ..Rows::default()
        },
    };
    let extras = TrainExtras {
        augment: spec.augment,
        ema: spec.ema,
        weight_decay: spec.weight_decay,
        pixel_cache: spec.pixel_cache.then(|| out.join("pixel-cache")),
    };
    if spec.seeds.is_empty() {
        return Err(Error::invalid("ablate: seeds is empty (give at least one)"));
    }
    let runs: Vec<(usize, &(&'static str, Setting), u64)> = settings
        .iter()
        .enumerate()
        .flat_map(|(i, s)| spec.seeds.iter().map(move |&seed| (i, s, seed)))
        .collect();
    let mut rows = Vec::new();
    for (k, &(i, (sweep, setting), seed)) in runs.iter().enumerate() {
        // The first seed keeps the folder names of single-seed ablations.
        let dir = match seed == spec.seeds[0] {
            true => out.join(format!("run-{i:02}")),
            false => out.join(format!("run-{i:02}-seed{seed}")),
        };
        say(&format!(
            "[{}/{}] {sweep}: {} seed {seed}",
            k + 1,
            runs.len(),
            label(setting)
        ));
        let pretraining = Pretrain {
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
            seed,
            out: &dir,
            extras: &extras,
        };
        let trained = pretrain_once(&spec, &pretraining, &dir, run, say)?;
        let setting_run = SettingRun {
            index: i,
            sweep,
            setting,
            seed,
            dir: &dir,
        };
        rows.extend(probe_run(&spec, &setting_run, &trained, &probes, run, say)?);
    }
    write_tables(&out, &spec, &train, &test, full_dim, &rows)
}

/// What a finished step of an ablation leaves in its run folder: the settings it ran with and
/// its result. A rerun of the same spec reads the result instead of redoing the step, so an
/// interrupted ablation continues where it stopped.
#[derive(Serialize, Deserialize)]
struct Finished<T> {
    settings: serde_json::Value,
    result: T,
}

/// The settings to pre-train: the base, then each sweep's values that differ from it.
fn plan_settings(spec: &AblateSpec) -> Vec<(&'static str, Setting)> {
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
    settings
}

/// What [`pretrain_once`] leaves: the run's identity for the probe markers, its time and its
/// final loss.
struct Trained {
    key: serde_json::Value,
    minutes: f64,
    final_loss: Option<f32>,
}

/// Pre-train one setting into `dir`, or reuse what an earlier run of the same spec finished.
fn pretrain_once(
    spec: &AblateSpec,
    pretraining: &Pretrain<'_>,
    dir: &Path,
    run: &RunOptions,
    say: Say<'_>,
) -> Result<Trained> {
    // A rerun of the same spec reuses what an earlier run of it finished (the marker is
    // written after the training, and the run folder is cleared before one starts). The
    // PCA is refitted on every rerun, so its geometry belongs to the settings too.
    let trained_key = serde_json::json!({
        "pretrain": pretraining, "image_size": spec.image_size, "patch": spec.patch,
        "channels": spec.channels,
    });
    let trained_marker = dir.join("ablate-trained.json");
    let minutes = match finished::<f64>(&trained_marker, &trained_key) {
        Some(minutes) => {
            say(&format!(
                "    reusing the finished pre-training in {}",
                dir.display()
            ));
            minutes
        }
        None => {
            let started = Instant::now();
            pretrain(pretraining, run, say)?;
            let minutes = started.elapsed().as_secs_f64() / 60.0;
            mark_finished(&trained_marker, &trained_key, &minutes)?;
            minutes
        }
    };
    let final_loss = read_metrics(&dir.join("metrics.parquet"))
        .ok()
        .and_then(|m| {
            let n = m.len().min(20);
            (n > 0).then(|| m[m.len() - n..].iter().map(|r| r.loss).sum::<f32>() / n as f32)
        });
    Ok(Trained {
        key: trained_key,
        minutes,
        final_loss,
    })
}

/// One pre-trained setting to probe.
struct SettingRun<'a> {
    /// Its place in the plan (0: the base).
    index: usize,
    sweep: &'static str,
    setting: &'a Setting,
    seed: u64,
    dir: &'a Path,
}

/// The probes' data: the train and test inputs and the rows of each to probe on.
struct ProbeData {
    train: String,
    test: String,
    train_rows: Rows,
    test_rows: Rows,
}

/// Probe a pre-trained setting (the base at every listed block), reusing what an earlier run of
/// the same spec finished; one row of the report per probe.
fn probe_run(
    spec: &AblateSpec,
    r: &SettingRun<'_>,
    trained: &Trained,
    probes: &ProbeData,
    run: &RunOptions,
    say: Say<'_>,
) -> Result<Vec<Row>> {
    let (i, sweep, setting, seed, dir) = (r.index, &r.sweep, r.setting, r.seed, r.dir);
    let (train, test) = (&probes.train, &probes.test);
    let (probe_train, probe_test) = (probes.train_rows, probes.test_rows);
    let (trained_key, minutes, final_loss) = (&trained.key, trained.minutes, trained.final_loss);
    let mut rows = Vec::new();
    // The block the other runs are probed at: the one the run records, else the encoder's
    // last.
    let config = ldae_model::train::trainer::read_train_config(dir)?;
    let default_block = config.features.block.unwrap_or(config.model.encoder_depth);
    // The base run is probed at every listed block and at the other runs' block.
    let blocks: Vec<Option<usize>> = if i == 0 {
        let mut blocks = match &spec.blocks {
            Some(b) => b.clone(),
            None => (1..=config.model.encoder_depth + config.model.decoder_depth).collect(),
        };
        blocks.push(default_block);
        blocks.sort_unstable();
        blocks.dedup();
        blocks.into_iter().map(Some).collect()
    } else {
        vec![None]
    };
    for block in blocks {
        let tag = block.map_or("default".to_string(), |b| format!("block{b}"));
        let read = FeatureRead {
            blocks: block.into_iter().collect(),
            pooling: Some(spec.pooling),
        };
        let probe_key = serde_json::json!({
            "trained": trained_key, "block": block, "pooling": spec.pooling,
            "probe_train_rows": spec.probe_train_rows,
            "probe_test_rows": spec.probe_test_rows, "knn": spec.knn, "test": test,
        });
        let probe_marker = dir.join(format!("ablate-probe-{tag}.json"));
        let (linear, knn) = match finished::<(f64, Option<f64>)>(&probe_marker, &probe_key) {
            Some(scores) => scores,
            None => {
                let tr = features(
                    EncoderModel::Ldae,
                    dir,
                    &read,
                    train,
                    probe_train,
                    &dir.join(format!("features-{tag}-train")),
                    run,
                )?;
                let te = features(
                    EncoderModel::Ldae,
                    dir,
                    &read,
                    test,
                    probe_test,
                    &dir.join(format!("features-{tag}-test")),
                    run,
                )?;
                let report =
                    probe_tables(&tr, &te, spec.knn, &dir.join(format!("probe-{tag}.json")))?;
                let scores = (
                    report.linear.scores.top1,
                    report.knn.as_ref().map(|k| k.scores.top1),
                );
                mark_finished(&probe_marker, &probe_key, &scores)?;
                scores
            }
        };
        let (sweep, setting_text) = match block {
            Some(b) => ("probe block", format!("{} block {b}", label(setting))),
            None => (*sweep, label(setting)),
        };
        say(&format!(
            "    {setting_text} seed {seed}: linear {:.1}%{}",
            100.0 * linear,
            knn.map(|k| format!(", kNN {:.1}%", 100.0 * k))
                .unwrap_or_default()
        ));
        rows.push(Row {
            sweep,
            setting: setting_text,
            dim: setting.dim,
            block,
            base_default: i == 0 && block.is_none_or(|b| b == default_block),
            seed,
            linear,
            knn,
            final_loss,
            minutes,
        });
    }
    Ok(rows)
}

/// The result `marker` holds, if it was written for exactly these `settings`.
fn finished<T: serde::de::DeserializeOwned>(
    marker: &Path,
    settings: &serde_json::Value,
) -> Option<T> {
    let text = std::fs::read_to_string(marker).ok()?;
    let done: Finished<T> = serde_json::from_str(&text).ok()?;
    (done.settings == *settings).then_some(done.result)
}

/// Record that the step with these `settings` finished with `result` (atomically).
fn mark_finished<T: Serialize>(
    marker: &Path,
    settings: &serde_json::Value,
    result: &T,
) -> Result<()> {
    let json = serde_json::to_string_pretty(&Finished {
        settings: settings.clone(),
        result,
    })
    .map_err(|e| Error::external(marker.display().to_string(), e))?;
    ldae_operators::atomic::write_atomic(marker, json.as_bytes())?;
    Ok(())
}

/// The rows of one setting (all its seeds), in the order the settings first appear.
fn by_setting(rows: &[Row]) -> Vec<Vec<&Row>> {
    let mut groups: Vec<Vec<&Row>> = Vec::new();
    for r in rows {
        match groups
            .iter_mut()
            .find(|g| g[0].sweep == r.sweep && g[0].setting == r.setting)
        {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    groups
}

/// Mean, sample standard deviation (0 for one value), lowest and highest of `values`.
fn spread(values: &[f64]) -> (f64, f64, f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, var.sqrt(), lo, hi)
}

/// "mean ± sd (v1 / v2 ...)" in percent, or the one value.
fn summary(values: &[f64]) -> String {
    let pct: Vec<f64> = values.iter().map(|v| 100.0 * v).collect();
    if pct.len() == 1 {
        return format!("{:.1}", pct[0]);
    }
    let (mean, sd, _, _) = spread(&pct);
    let each: Vec<String> = pct.iter().map(|v| format!("{v:.1}")).collect();
    format!("{mean:.1} ± {sd:.1} ({})", each.join(" / "))
}

/// The plot of linear and kNN top-1 (mean, bar from lowest to highest seed) against the
/// categories `key` gives the rows it keeps (sorted by key).
fn plot_against(
    rows: &[Row],
    key: impl Fn(&Row) -> Option<usize>,
    title: &str,
    x_label: &str,
    path: &Path,
) -> Result<Option<PathBuf>> {
    use ldae_operators::plot::{draw_error_bars, save_png, Series};
    let mut keys: Vec<usize> = rows.iter().filter_map(&key).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.len() < 2 {
        return Ok(None);
    }
    let points = |value: &dyn Fn(&Row) -> Option<f64>| -> Vec<Option<(f64, f64, f64)>> {
        keys.iter()
            .map(|&k| {
                let v: Vec<f64> = rows
                    .iter()
                    .filter(|r| key(r) == Some(k))
                    .filter_map(value)
                    .map(|v| 100.0 * v)
                    .collect();
                (!v.is_empty()).then(|| {
                    let (mean, _, lo, hi) = spread(&v);
                    (mean, lo, hi)
                })
            })
            .collect()
    };
    let series = [
        Series {
            name: "linear top-1 %".into(),
            colour: image::Rgb([20, 60, 200]),
            points: points(&|r| Some(r.linear)),
        },
        Series {
            name: "kNN top-1 %".into(),
            colour: image::Rgb([220, 90, 20]),
            points: points(&|r| r.knn),
        },
    ];
    let categories: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    save_png(&draw_error_bars(title, x_label, &categories, &series), path)?;
    Ok(Some(path.to_path_buf()))
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
    let mut csv =
        String::from("sweep,setting,seed,linear_top1,knn_top1,final_loss,pretrain_minutes\n");
    for r in rows {
        let loss = r.final_loss.map_or(String::new(), |l| format!("{l:.4}"));
        csv.push_str(&format!(
            "{},{},{},{},{},{loss},{:.2}\n",
            r.sweep,
            r.setting,
            r.seed,
            pct(Some(r.linear)),
            pct(r.knn),
            r.minutes
        ));
    }
    let seeds: Vec<String> = spec.seeds.iter().map(|s| s.to_string()).collect();
    let mut md = format!(
        "# l-DAE ablation\n\npre-training: {train}, preset {}, {} epoch(s) of {} images, batch {}, lr {}, \
         weight decay {}, augmentation {}, EMA {}, seeds {}; probes: {} training rows, {} test rows of {test}, {} pooling; D = {full_dim}.\n\n\
         | sweep | setting | linear top-1 % | kNN top-1 % | final loss | pre-training min |\n|---|---|---|---|---|---|\n",
        spec.preset,
        spec.epochs,
        spec.limit.map_or("all".to_string(), |l| l.to_string()),
        spec.batch_size,
        spec.lr,
        spec.weight_decay,
        if spec.augment { "on" } else { "off" },
        spec.ema.map_or("off".to_string(), |e| e.to_string()),
        seeds.join(", "),
        spec.probe_train_rows.map_or("all".to_string(), |l| l.to_string()),
        spec.probe_test_rows.map_or("all".to_string(), |l| l.to_string()),
        ldae_pipeline::names::name_of(&spec.pooling),
    );
    for group in by_setting(rows) {
        let linear: Vec<f64> = group.iter().map(|r| r.linear).collect();
        let knn: Vec<f64> = group.iter().filter_map(|r| r.knn).collect();
        let losses: Vec<f64> = group
            .iter()
            .filter_map(|r| r.final_loss.map(f64::from))
            .collect();
        let loss = match losses.is_empty() {
            true => String::new(),
            false => format!("{:.4}", spread(&losses).0),
        };
        let minutes = spread(&group.iter().map(|r| r.minutes).collect::<Vec<_>>()).0;
        md.push_str(&format!(
            "| {} | {} | {} | {} | {loss} | {minutes:.1} |\n",
            group[0].sweep,
            group[0].setting,
            summary(&linear),
            if knn.is_empty() {
                String::new()
            } else {
                summary(&knn)
            },
        ));
    }
    md.push_str(
        "\nWith several seeds a cell reads mean ± sample standard deviation (each seed's value). \
         Final loss is the mean of the last 20 steps; it is not comparable across latent dimensions \
         and scales (the loss is measured in each setting's own PCA basis weighting).\n",
    );
    if let Some(b) = rows.iter().find(|r| r.base_default).and_then(|r| r.block) {
        md.push_str(&format!(
            "The other sweeps' runs are probed after block {b}; the base's value there is its \
             `block {b}` row (and its point on the latent-dimension plot).\n"
        ));
    }
    // The d sweep includes the base run, at the base's d and the other runs' block.
    let dim_plot = plot_against(
        rows,
        |r| (r.sweep == "latent dim d" || r.base_default).then_some(r.dim),
        "top-1 against the latent dimension d (bars: lowest to highest seed)",
        "latent dimension d (d = D: pixel-space DAE)",
        &out.join("ablation-dim.png"),
    )?;
    let block_plot = plot_against(
        rows,
        |r| r.block,
        "top-1 against the probed block (base run; bars: lowest to highest seed)",
        "block (encoder first, then decoder)",
        &out.join("ablation-block.png"),
    )?;
    for plot in dim_plot.iter().chain(&block_plot) {
        let name = plot
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        md.push_str(&format!("\n![{name}]({name})\n"));
    }
    let (md_path, csv_path) = (out.join("ablation.md"), out.join("ablation.csv"));
    ldae_operators::atomic::write_atomic(&md_path, md.as_bytes())?;
    ldae_operators::atomic::write_atomic(&csv_path, csv.as_bytes())?;
    Ok(AblateReport {
        markdown: md,
        markdown_path: md_path,
        csv_path,
        plots: dim_plot.into_iter().chain(block_plot).collect(),
    })
}
