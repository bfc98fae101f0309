//! The ablation job (`ldae ablate SPEC.toml`): the paper's small-scale findings on a dataset and budget of the
//! user's choosing — latent dimension d (d = D is the pixel-space DAE), multi- vs single-level
//! noise, latent scale, and the probed block — each pre-trained once per seed, as a Markdown
//! table of means and spreads, a CSV of every run, and plots against d and the block.
//! The spec format is documented in docs/ablate.md.

use std::path::Path;
use std::time::Instant;

use ldae_model::encoder::EncoderModel;
use ldae_model::train::metrics::read_metrics;
use ldae_operators::pca::PcaModel;
use ldae_pipeline::{Error, RunOptions};
use serde::{Deserialize, Serialize};

use crate::experiment::{
    features, fit_pca, pretrain, probe_tables, FeatureRead, Pretrain, Rows, Say, TrainExtras,
};
use crate::source::resolve_input;
use crate::{Context, Result};

mod report;
mod spec;

pub use report::AblateReport;
use report::{write_tables, Row};
use spec::{label, plan_settings};
pub use spec::{AblateSpec, Setting};

/// Run the ablation spec at `spec_path`; `say` gets a line per step and result.
pub fn run(spec_path: &Path, run: &RunOptions, say: Say<'_>) -> Result<AblateReport> {
    let text = std::fs::read_to_string(spec_path).map_err(|e| Error::io(spec_path, e))?;
    let spec: AblateSpec = toml::from_str(&text)
        .with_context(|| format!("{}: not a valid ablation spec", spec_path.display()))?;
    let here = spec_path.parent().unwrap_or(Path::new("."));
    let train = resolve_input(here, &spec.train);
    let test = resolve_input(here, &spec.test);
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
            preset: spec.preset,
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
    ldae_pipeline::atomic_file::write_atomic(marker, json.as_bytes())?;
    Ok(())
}
