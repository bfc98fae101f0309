//! `ldae train`: l-DAE pre-training, one pipeline per epoch feeding a shared trainer.

use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use candle_core::Device;
use ldae_datasets::SourceOptions;
use ldae_operators::augment::AugmentConfig;
use ldae_operators::decode::{Decode, DecodeConfig};
use ldae_model::denoiser::{DenoiserConfig, Precision};
use ldae_operators::device::parse_device;
use ldae_operators::noise::{Noise, NoiseSchedule};
use ldae_operators::normalize::Normalize;
use ldae_operators::parquet_sink::{ParquetSink, ParquetSinkConfig};
use ldae_operators::patchify::Patchify;
use ldae_operators::pca::PcaModel;
use ldae_model::train::metrics::draw_loss_curve;
use ldae_model::train::trainer::{RecentSteps, TrainConfig, TrainSink, Trainer};
use ldae_model::train::AdamWConfig;
use ldae_pipeline::{Pipeline, Status};

use crate::cli::TrainArgs;
use crate::plans::{open_source, print_report, run_options};

/// The shuffle seed of `epoch`: every epoch sees its own order.
fn epoch_seed(seed: u64, epoch: u64) -> u64 {
    seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn new_config(
    args: &TrainArgs,
    pca: &PcaModel,
    rows: usize,
    device: &Device,
) -> Result<TrainConfig> {
    let grid = pca.meta.image_size / pca.meta.patch_size;
    let mut model = DenoiserConfig::preset(&args.preset, pca.dim(), grid)?;
    if let Some(w) = args.width {
        model.width = w;
    }
    if let Some(d) = args.depth {
        model.encoder_depth = d;
        model.decoder_depth = d;
    }
    if let Some(h) = args.heads {
        model.heads = h;
    }
    model.precision = Precision::choose(args.precision.as_deref(), device)?;
    model.validate()?;
    let noise = match args.noise.as_str() {
        "multi" => NoiseSchedule::MultiLevel,
        "single" => NoiseSchedule::SingleLevel { sigma: args.sigma },
        other => bail!("--noise {other}: expected multi or single"),
    };
    if args.dim == 0 || args.dim > pca.dim() {
        bail!("--dim {} must be between 1 and D = {}", args.dim, pca.dim());
    }
    Ok(TrainConfig {
        input: args.input.clone(),
        format: args.format.map(|f| format!("{f:?}").to_lowercase()),
        limit: args.limit,
        rows_per_epoch: rows,
        pixel_cache: None,
        pca: std::fs::canonicalize(&args.pca).with_context(|| format!("{}", args.pca.display()))?,
        dim: args.dim,
        latent_scale: match &args.latent_scale {
            Some(s) => s.parse()?,
            None => pca.meta.latent_scale,
        },
        noise,
        preset: args.preset.clone(),
        model,
        epochs: args.epochs,
        batch_size: args.batch_size.max(1),
        lr: args.lr,
        warmup_epochs: args.warmup_epochs,
        adamw: AdamWConfig {
            weight_decay: args.weight_decay,
            ..AdamWConfig::default()
        },
        grad_clip: args.grad_clip,
        ema: args.ema,
        augment: args.augment,
        seed: args.seed,
        checkpoint_every: args.checkpoint_every.max(1),
    })
}

/// What the epochs read: the pixel cache when there is one, else the dataset.
fn epoch_input(config: &TrainConfig) -> String {
    match &config.pixel_cache {
        Some(p) => p.display().to_string(),
        None => config.input.clone(),
    }
}

fn source_options(config: &TrainConfig, epoch: u64, skip_batches: u64) -> Result<SourceOptions> {
    let format = match &config.pixel_cache {
        Some(_) => Some(ldae_datasets::Format::Parquet),
        None => config.format.as_deref().map(str::parse).transpose()?,
    };
    Ok(SourceOptions {
        format,
        limit: config.limit,
        shuffle: true,
        seed: epoch_seed(config.seed, epoch),
        batch_size: config.batch_size,
        skip: (skip_batches as usize) * config.batch_size,
        ..SourceOptions::default()
    })
}

/// Decode the whole dataset once into `dir` (id, label, u8 pixels at the PCA's image size),
/// unless a complete cache (`_SUCCESS`) is already there. Row ids are the dataset's, so noise and
/// shuffles (derived from ids and positions) are the same as when training from the dataset.
fn build_pixel_cache(args: &TrainArgs, pca: &PcaModel, dir: &std::path::Path) -> Result<()> {
    if dir.join("_SUCCESS").exists() {
        println!("using the pixel cache in {}", dir.display());
        return Ok(());
    }
    println!(
        "decoding {} once into the pixel cache {}",
        args.input,
        dir.display()
    );
    let options = SourceOptions {
        format: args
            .format
            .map(|f| format!("{f:?}").to_lowercase().parse())
            .transpose()?,
        ..SourceOptions::default()
    };
    let m = &pca.meta;
    let sink = ParquetSink::new(
        ParquetSinkConfig {
            out: dir.to_path_buf(),
            ..Default::default()
        },
        serde_json::json!({"command": "train --pixel-cache", "input": args.input}),
    )?;
    let decode = Decode::new(DecodeConfig {
        image_size: m.image_size as u32,
        channels: m.channels as u8,
        ..DecodeConfig::default()
    })?;
    let report = Pipeline::new(open_source(&args.input, &options)?, Box::new(sink))
        .then(Arc::new(decode))
        .run(&run_options(&args.run, "pixel cache"))?;
    print_report(&report);
    Ok(())
}

/// The progress display's step, loss (mean of the last 10 steps) and images/s.
fn loss_status(recent: RecentSteps) -> Status {
    Status(Arc::new(move || {
        let Ok(steps) = recent.lock() else {
            return String::new();
        };
        match steps.last() {
            Some(m) => format!(
                "| step {} loss {:.4} {:.0} img/s",
                m.step,
                steps.iter().map(|m| m.loss).sum::<f32>() / steps.len() as f32,
                m.images_per_second
            ),
            None => String::new(),
        }
    }))
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let device = parse_device(&args.device)?;
    let trainer = if args.resume {
        let t = Trainer::resume(&args.out, &device)?;
        let p = t.position();
        println!(
            "resuming {} at step {} (epoch {}, batch {})",
            args.out.display(),
            p.step,
            p.epoch,
            p.batch_in_epoch
        );
        t
    } else {
        if args.out.join("checkpoint").exists() {
            bail!(
                "{} already holds a run; pass --resume to continue it or choose another --out",
                args.out.display()
            );
        }
        let pca = PcaModel::load(&args.pca)?;
        let probe = SourceOptions {
            format: args
                .format
                .map(|f| format!("{f:?}").to_lowercase().parse())
                .transpose()?,
            limit: args.limit,
            ..SourceOptions::default()
        };
        let (input, probe) = match &args.pixel_cache {
            Some(dir) => {
                build_pixel_cache(args, &pca, dir)?;
                let opts = SourceOptions {
                    format: Some(ldae_datasets::Format::Parquet),
                    limit: args.limit,
                    ..SourceOptions::default()
                };
                (dir.display().to_string(), opts)
            }
            None => (args.input.clone(), probe),
        };
        let rows = open_source(&input, &probe)?.total_rows().unwrap_or(0) as usize;
        if rows == 0 {
            bail!("{input}: no rows to train on");
        }
        let mut config = new_config(args, &pca, rows, &device)?;
        config.pixel_cache = args.pixel_cache.clone();
        Trainer::new(config, &args.out, &device)?
    };
    let config = trainer.config().clone();
    let pca = PcaModel::load(&config.pca)?;
    let m = &pca.meta;
    println!(
        "training {} ({} parameters; width {}, {} + {} blocks, {} heads, {:?} products) on {} rows x {} epochs, batch {}, {} steps",
        config.preset,
        trainer.parameter_count(),
        config.model.width,
        config.model.encoder_depth,
        config.model.decoder_depth,
        config.model.heads,
        config.model.precision,
        config.rows_per_epoch,
        config.epochs,
        config.batch_size,
        config.steps_per_epoch() * config.epochs
    );
    let trainer = Arc::new(Mutex::new(trainer));
    let lock = || {
        trainer
            .lock()
            .map_err(|_| anyhow::anyhow!("trainer poisoned"))
    };
    let max_steps = args.max_steps.unwrap_or(u64::MAX);
    loop {
        let position = lock()?.position();
        if position.epoch >= config.epochs || position.step >= max_steps {
            break;
        }
        let mut options = source_options(&config, position.epoch, position.batch_in_epoch)?;
        let remaining = max_steps - position.step;
        if remaining < config.steps_per_epoch() - position.batch_in_epoch {
            let rows = options.limit.unwrap_or(config.rows_per_epoch);
            options.limit = Some(rows.min(options.skip + remaining as usize * config.batch_size));
        }
        let source = open_source(&epoch_input(&config), &options)?;
        let decode = Decode::new(DecodeConfig {
            image_size: m.image_size as u32,
            channels: m.channels as u8,
            augment: config.augment.then(|| AugmentConfig {
                seed: config.seed,
                epoch: position.epoch,
                ..AugmentConfig::default()
            }),
            ..DecodeConfig::default()
        })?;
        let noise = Noise::new(
            &pca,
            config.dim,
            config.latent_scale,
            config.noise,
            config.seed,
            position.epoch,
        )?;
        let recent = RecentSteps::default();
        let sink = TrainSink::new(trainer.clone()).with_recent(recent.clone());
        let pipeline = Pipeline::new(source, Box::new(sink))
            .then(Arc::new(decode))
            .then(Arc::new(Normalize::new(m.normalization.clone())))
            .then(Arc::new(Patchify::new(m.patch_size)))
            .then(Arc::new(noise));
        let mut run = args.run.clone();
        run.threads = run.threads.or(Some(1));
        let mut options = run_options(&run, &format!("epoch {}", position.epoch));
        options.status = Some(loss_status(recent));
        let report = pipeline.run(&options);
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                // Keep what was learned: metrics so far; the checkpoint stays the last good one.
                return Err(e).context("training stopped");
            }
        };
        let mut t = lock()?;
        if t.position().step >= max_steps && t.position().batch_in_epoch < config.steps_per_epoch()
        {
            drop(t);
            print_report(&report);
            break;
        }
        t.end_epoch();
        let last = t.metrics().last().map(|m| m.loss).unwrap_or(f32::NAN);
        println!(
            "epoch {} done: step {}, loss {last:.4}",
            position.epoch,
            t.position().step
        );
    }
    let mut t = lock()?;
    t.save_checkpoint()?;
    let curve = args.out.join("loss.png");
    draw_loss_curve(t.metrics(), &curve, 640, 360)?;
    let metrics = t.metrics();
    let first =
        metrics.iter().take(20).map(|m| m.loss).sum::<f32>() / metrics.len().clamp(1, 20) as f32;
    let last_n = metrics.len().min(20);
    let last = metrics[metrics.len() - last_n..]
        .iter()
        .map(|m| m.loss)
        .sum::<f32>()
        / last_n.max(1) as f32;
    let ips =
        metrics.iter().map(|m| m.images_per_second).sum::<f32>() / metrics.len().max(1) as f32;
    println!(
        "done: {} steps, loss {first:.4} (first 20) -> {last:.4} (last 20), {ips:.0} images/s in the model step",
        t.position().step
    );
    println!(
        "run folder {}: config.json, checkpoint/, metrics.parquet, loss.png",
        args.out.display()
    );
    Ok(())
}
