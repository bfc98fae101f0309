//! The `train` sink of specs: a training run as passes over the source, one per epoch.
//!
//! The operators before it (decode with augmentation, patchify, normalize, noise) are rebuilt
//! for every epoch with the epoch in their build context, and the source is reshuffled with the
//! epoch's seed; the sink keeps one [`Trainer`] across the passes, checkpoints it and resumes
//! it exactly (from the step inside an epoch where it stopped).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use candle_core::Device;

use ldae_operators::device::DeviceName;
use ldae_operators::noise::NoiseSchedule;
use ldae_operators::pca::{LatentScale, PcaModel};
use ldae_pipeline::columns::{self, require_tensor};
use ldae_pipeline::{
    BuildContext, Error, Pass, PlanInfo, Result, RunReport, RunSummary, Sink, SinkConfig, SinkJob,
    Status,
};

use super::budget::TimeBudget;
use super::metrics::{draw_loss_curve, StepMetrics};
use super::optimizer::AdamWConfig;
use super::trainer::{TrainConfig, Trainer};
use crate::denoiser::{Conditioning, DenoiserConfig, Precision, Preset};
use crate::run_folder::FeatureDefaults;

/// `train` (sink): pre-train the l-DAE denoiser on the `patches`, `noisy` and `sigma` columns of
/// a noise operator, one pass over the source per epoch (each reshuffled with its own seed),
/// one AdamW step per batch of `batch_size` rows. The PCA model, d and latent scale come from
/// the noise operator (recorded in the schema). Writes the run folder `out`: config.json,
/// spec.json, checkpoint/, metrics.parquet, loss.png.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainSinkConfig {
    /// The run folder.
    pub out: PathBuf,
    /// Network size preset: `tiny`, `small`, `base` or `large`.
    #[serde(default)]
    pub preset: Preset,
    /// Override the preset's width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<usize>,
    /// Override the preset's depth (blocks in the encoder, and in the decoder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
    /// Override the preset's attention heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<usize>,
    /// Each block's conditioning network: `dit` (one linear layer, the default) or `mlp` (the
    /// paper's two-layer MLP of hidden width width / 4).
    #[serde(default)]
    pub conditioning: Conditioning,
    /// The feature settings recorded for `ldae features` (block, t, pooling, EMA weights).
    #[serde(default)]
    pub features: FeatureDefaults,
    /// Epochs (passes over the source).
    #[serde(default = "epochs")]
    pub epochs: u64,
    /// Rows per optimisation step (the source is read in batches of this size).
    #[serde(default = "batch")]
    pub batch_size: usize,
    /// Peak learning rate (cosine decay after the warmup).
    #[serde(default = "lr")]
    pub lr: f64,
    /// Linear warmup, in epochs.
    #[serde(default = "warmup")]
    pub warmup_epochs: f64,
    /// AdamW weight decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// Clip the global gradient norm to this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_clip: Option<f64>,
    /// Keep an exponential moving average of the weights with this decay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema: Option<f64>,
    /// Run seed: initialisation and the per-epoch shuffle (the decode and noise operators take
    /// their own seeds).
    #[serde(default)]
    pub seed: u64,
    /// Checkpoint every this many steps (and at the end).
    #[serde(default = "checkpoint_every")]
    pub checkpoint_every: u64,
    /// Stop after this many steps in all (the run can be resumed later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u64>,
    /// Fit the training passes into this many seconds: `epochs` becomes the most the run
    /// trains, and the number of epochs is chosen from the speed of its first steps (3 warm-up
    /// steps, then 20 measured), recorded in the run's config.json. The schedule (warmup,
    /// cosine) is planned over the chosen epochs; the choice falls inside the warmup unless the
    /// warmup is shorter than those 23 steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_budget_s: Option<f64>,
    /// Compute device: `cpu`, `cuda` or `cuda:N`.
    #[serde(default)]
    pub device: DeviceName,
    /// Precision of the products: `f32` or `bf16` (default: bf16 on a GPU, f32 on CPU). A
    /// resumed run takes this session's (unset: the device's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
    /// Continue the run in `out` from its last checkpoint (its config.json decides the
    /// settings); without it, a folder that already holds a run is an error.
    #[serde(default)]
    pub resume: bool,
}

fn epochs() -> u64 {
    10
}
fn warmup() -> f64 {
    1.0
}
fn batch() -> usize {
    128
}
fn lr() -> f64 {
    1e-3
}
fn checkpoint_every() -> u64 {
    500
}

/// The shuffle seed of `epoch`: every epoch sees its own order.
pub fn epoch_seed(seed: u64, epoch: u64) -> u64 {
    seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl SinkConfig for TrainSinkConfig {
    const KIND: &'static str = "train";
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn SinkJob>> {
        let mut config = self.clone();
        config.out = ctx.resolve(&config.out);
        if !config.resume && config.out.join("checkpoint").exists() {
            return Err(Error::conflict(
                &config.out,
                "already holds a run; resume it (`ldae train --resume`, or resume = true in the \
                 train sink) or choose another out",
            ));
        }
        Ok(Box::new(TrainRun {
            device: config.device.open()?,
            config,
            ctx: ctx.clone(),
            trainer: None,
            recent: RecentSteps::default(),
            messages: Vec::new(),
            stopped: false,
        }))
    }
}
ldae_pipeline::register_sink!(TrainSinkConfig);

/// A training run in progress.
struct TrainRun {
    config: TrainSinkConfig,
    ctx: BuildContext,
    device: Device,
    trainer: Option<Arc<Mutex<Trainer>>>,
    recent: RecentSteps,
    messages: Vec<String>,
    /// `max_steps` was reached inside an epoch.
    stopped: bool,
}

/// A metadata value the trainer needs from its input, parsed.
fn required<T: std::str::FromStr>(plan: &PlanInfo, key: &str) -> Result<T> {
    plan.schema
        .metadata()
        .get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            Error::plan(
                "train",
                format!(
                    "the input records no {key}: a train sink needs a noise operator before it"
                ),
            )
        })
}

impl TrainRun {
    fn trainer(&self) -> Result<std::sync::MutexGuard<'_, Trainer>> {
        self.trainer
            .as_ref()
            .ok_or_else(|| Error::internal("train: no trainer before the plan was bound"))?
            .lock()
            .map_err(|_| Error::internal("trainer poisoned"))
    }

    /// The record of a new run, from the sink's settings and what the plan says.
    fn new_config(&self, plan: &PlanInfo) -> Result<TrainConfig> {
        let c = &self.config;
        let pca_path: PathBuf = required::<String>(plan, columns::META_PCA_PATH)?.into();
        let pca = PcaModel::load(&pca_path)?;
        let dim: usize = required(plan, columns::META_LATENT_DIM)?;
        let latent_scale: LatentScale = required(plan, columns::META_LATENT_SCALE)?;
        let noise: NoiseSchedule = plan
            .schema
            .metadata()
            .get(columns::META_NOISE)
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default();
        let rows = plan
            .rows
            .filter(|&r| r > 0)
            .ok_or_else(|| Error::data(format!("{}: no rows to train on", self.ctx.input)))?
            as usize;
        let grid = pca.meta.geometry.grid();
        let mut model = DenoiserConfig::preset(c.preset, pca.dim(), grid)?;
        if let Some(w) = c.width {
            model.width = w;
        }
        if let Some(d) = c.depth {
            model.encoder_depth = d;
            model.decoder_depth = d;
        }
        if let Some(h) = c.heads {
            model.heads = h;
        }
        model.conditioning = c.conditioning;
        model.precision = c.precision.unwrap_or(Precision::default_for(&self.device));
        model.validate()?;
        if c.batch_size == 0 {
            return Err(Error::invalid(
                "train: batch_size 0: a step needs at least 1 row",
            ));
        }
        if let Some(block) = c.features.block {
            if block == 0 || block > model.depth() {
                return Err(Error::invalid(format!(
                    "train: feature block {block} is not a block of the network (1..={})",
                    model.depth()
                )));
            }
        }
        if let Some(needs) = c.features.pooling.needs_timm_model() {
            return Err(Error::invalid(format!(
                "train: feature pooling {} needs {needs}; l-DAE networks have none",
                ldae_pipeline::names::name_of(&c.features.pooling)
            )));
        }
        if let Some(s) = c.time_budget_s {
            if !(s.is_finite() && s > 0.0) {
                return Err(Error::invalid(format!(
                    "train: time budget {s} s: expected a positive number of seconds"
                )));
            }
        }
        if c.features.ema && c.ema.is_none() {
            return Err(Error::invalid(
                "train: features from the EMA weights need --ema (the run keeps no average)",
            ));
        }
        Ok(TrainConfig {
            input: self.ctx.input.clone(),
            format: self.ctx.format.clone(),
            limit: self.ctx.limit,
            rows_per_epoch: rows,
            pixel_cache: None,
            pca: pca_path,
            dim,
            latent_scale,
            noise,
            preset: c.preset,
            model,
            epochs: c.epochs,
            batch_size: c.batch_size,
            lr: c.lr,
            warmup_epochs: c.warmup_epochs,
            adamw: AdamWConfig {
                weight_decay: c.weight_decay,
                ..AdamWConfig::default()
            },
            grad_clip: c.grad_clip,
            ema: c.ema,
            augment: plan
                .schema
                .metadata()
                .get(columns::META_AUGMENT)
                .map(String::as_str)
                == Some("true"),
            seed: c.seed,
            checkpoint_every: c.checkpoint_every.max(1),
            features: c.features.clone(),
            time_budget: c.time_budget_s.map(|seconds| TimeBudget {
                seconds,
                plan: None,
            }),
        })
    }
}

impl SinkJob for TrainRun {
    fn bind(&mut self, plan: &PlanInfo) -> Result<()> {
        let out = self.config.out.clone();
        let trainer = if self.config.resume && out.join("checkpoint").join("state.json").exists() {
            let precision = self
                .config
                .precision
                .unwrap_or(Precision::default_for(&self.device));
            let t = Trainer::resume(&out, &self.device, precision)?;
            let p = t.position();
            self.messages.push(format!(
                "resuming {} at step {} (epoch {}, batch {})",
                out.display(),
                p.step,
                p.epoch,
                p.batch_in_epoch
            ));
            t
        } else {
            let config = self.new_config(plan)?;
            let t = Trainer::new(config, &out, &self.device)?;
            // The spec, so `ldae train --resume` can rebuild the same pipeline.
            let base = std::path::absolute(&self.ctx.base).unwrap_or(self.ctx.base.clone());
            let spec = serde_json::json!({
                "base": base.display().to_string(),
                "spec": self.ctx.job,
            });
            ldae_pipeline::atomic_file::write_atomic(
                &out.join("spec.json"),
                serde_json::to_string_pretty(&spec)
                    .map_err(|e| Error::external("spec.json", e))?
                    .as_bytes(),
            )?;
            t
        };
        let c = trainer.config();
        self.messages.push(format!(
            "training {} ({} parameters; width {}, {} + {} blocks, {} heads, {} conditioning, {:?} products) on {} rows x {} epochs, batch {}, {} steps",
            c.preset,
            trainer.parameter_count(),
            c.model.width,
            c.model.encoder_depth,
            c.model.decoder_depth,
            c.model.heads,
            ldae_pipeline::names::name_of(&c.model.conditioning),
            c.model.precision,
            c.rows_per_epoch,
            c.epochs,
            c.batch_size,
            c.steps_per_epoch() * c.epochs
        ));
        if let Some(b) = &c.time_budget {
            self.messages.push(match &b.plan {
                Some(p) => format!(
                    "time budget {:.0} s: {} epochs, chosen at step {}",
                    b.seconds, p.epochs, p.at_step
                ),
                None => format!(
                    "time budget {:.0} s: the epochs above are the most; the number is chosen \
                     after {} steps from their speed",
                    b.seconds,
                    super::budget::WARM_STEPS + super::budget::MEASURED_STEPS
                ),
            });
        }
        self.trainer = Some(Arc::new(Mutex::new(trainer)));
        Ok(())
    }

    fn next_pass(&mut self) -> Result<Option<Pass>> {
        if self.stopped {
            return Ok(None);
        }
        let t = self.trainer()?;
        let c = t.config().clone();
        let p = t.position();
        let max_steps = self.config.max_steps.unwrap_or(u64::MAX);
        if p.epoch >= c.epochs || p.step >= max_steps {
            return Ok(None);
        }
        let skip = p.batch_in_epoch as usize * c.batch_size;
        let remaining = max_steps - p.step;
        let limit = (remaining < c.steps_per_epoch() - p.batch_in_epoch)
            .then(|| skip + remaining as usize * c.batch_size);
        Ok(Some(Pass {
            epoch: p.epoch,
            shuffle_seed: Some(epoch_seed(c.seed, p.epoch)),
            skip_rows: skip,
            limit_rows: limit,
            batch_size: Some(c.batch_size),
            label: format!("epoch {}", p.epoch),
        }))
    }

    fn sink(&mut self, _pass: &Pass) -> Result<Box<dyn Sink>> {
        let trainer = self
            .trainer
            .clone()
            .ok_or_else(|| Error::internal("train: no trainer before the plan was bound"))?;
        Ok(Box::new(
            TrainSink::new(trainer).with_recent(self.recent.clone()),
        ))
    }

    fn status(&self) -> Option<Status> {
        let recent = self.recent.clone();
        Some(Status(Arc::new(move || {
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
        })))
    }

    fn end_pass(&mut self, pass: &Pass, _report: &RunReport) -> Result<()> {
        let max_steps = self.config.max_steps.unwrap_or(u64::MAX);
        let note = self.trainer()?.take_budget_note();
        self.messages.extend(note);
        let mut t = self.trainer()?;
        let steps_per_epoch = t.config().steps_per_epoch();
        if t.position().step >= max_steps && t.position().batch_in_epoch < steps_per_epoch {
            drop(t);
            self.stopped = true;
            return Ok(());
        }
        t.end_epoch();
        let last = t.metrics().last().map(|m| m.loss).unwrap_or(f32::NAN);
        let line = format!(
            "epoch {} done: step {}, loss {last:.4}",
            pass.epoch,
            t.position().step
        );
        drop(t);
        self.messages.push(line);
        Ok(())
    }

    fn finish(&mut self) -> Result<serde_json::Value> {
        let out = self.config.out.clone();
        let mut t = self.trainer()?;
        t.save_checkpoint()?;
        draw_loss_curve(t.metrics(), &out.join("loss.png"), 640, 360)?;
        let metrics = t.metrics();
        let mean = |m: &[super::metrics::StepMetrics]| {
            m.iter().map(|m| m.loss).sum::<f32>() / m.len().max(1) as f32
        };
        let first = mean(&metrics[..metrics.len().min(20)]);
        let last = mean(&metrics[metrics.len().saturating_sub(20)..]);
        let ips =
            metrics.iter().map(|m| m.images_per_second).sum::<f32>() / metrics.len().max(1) as f32;
        let step = t.position().step;
        let model = &t.config().model;
        let flops = 3.0 * model.forward_flops(model.depth(), true);
        let time = t.step_time();
        drop(t);
        self.messages.push(format!(
            "done: {step} steps, loss {first:.4} (first 20) -> {last:.4} (last 20), {ips:.0} images/s in the model step \
             ({:.3} GFLOP per image trained: {:.2} TFLOP/s; {:.1}% of the step copying batches to the device)",
            flops / 1e9,
            flops * ips as f64 / 1e12,
            100.0 * time.copy_in.as_secs_f64() / time.total.as_secs_f64().max(1e-9)
        ));
        self.messages.push(format!(
            "run folder {}: config.json, spec.json, checkpoint/, metrics.parquet, loss.png",
            out.display()
        ));
        serde_json::to_value(TrainReport {
            run: out.to_path_buf(),
            steps: step,
            loss_first_20: first,
            loss_last_20: last,
            train_flops_per_image: flops,
        })
        .map_err(|e| Error::external("train report", e))
    }

    fn messages(&mut self) -> Vec<String> {
        std::mem::take(&mut self.messages)
    }
}

/// The spec saved in a run folder by the train sink: `(base folder, spec as JSON)`.
pub fn saved_spec(run_dir: &Path) -> Result<(PathBuf, serde_json::Value)> {
    let path = run_dir.join("spec.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::external(path.display().to_string(), e))?;
    let base = value["base"].as_str().unwrap_or_default().into();
    Ok((base, value["spec"].clone()))
}

/// What a `train` sink reports when its run is complete (its job's output; Python gets it as
/// a dict).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainReport {
    /// The run folder.
    pub run: PathBuf,
    /// Steps trained in all.
    pub steps: u64,
    /// The mean loss of the first 20 steps.
    pub loss_first_20: f32,
    /// The mean loss of the last 20 steps.
    pub loss_last_20: f32,
    /// Floating-point operations of one image's training step (three times its forward
    /// pass; [`DenoiserConfig::forward_flops`]), for model FLOP utilisation.
    pub train_flops_per_image: f64,
}

/// The sink that feeds batches to a shared [`Trainer`].
pub struct TrainSink {
    trainer: Arc<Mutex<Trainer>>,
    recent: Option<RecentSteps>,
}

/// The last few steps' metrics, published after every step for progress displays (which must
/// not wait on the trainer's lock, held for the whole step).
pub type RecentSteps = Arc<Mutex<Vec<StepMetrics>>>;

impl TrainSink {
    /// A sink training `trainer`.
    pub fn new(trainer: Arc<Mutex<Trainer>>) -> Self {
        TrainSink {
            trainer,
            recent: None,
        }
    }

    /// Also publish the last 10 steps' metrics to `recent` after every step.
    pub fn with_recent(mut self, recent: RecentSteps) -> Self {
        self.recent = Some(recent);
        self
    }
}

impl Sink for TrainSink {
    fn name(&self) -> String {
        TrainSinkConfig::KIND.into()
    }

    fn check_schema(&mut self, input: &SchemaRef) -> Result<()> {
        let t = self
            .trainer
            .lock()
            .map_err(|_| Error::internal("trainer poisoned"))?;
        let cfg = &t.config().model;
        let expected = vec![cfg.tokens(), cfg.patch_dim];
        for name in [columns::PATCHES, columns::NOISY] {
            let shape = require_tensor(input, name, &DataType::Float32, TrainSinkConfig::KIND)?;
            if shape != expected {
                return Err(Error::plan(
                    TrainSinkConfig::KIND,
                    format!("'{name}' is {shape:?}, the network takes {expected:?}"),
                ));
            }
        }
        input.field_with_name(columns::SIGMA).map_err(|_| {
            Error::plan(
                TrainSinkConfig::KIND,
                "needs a 'sigma' column (add the noise operator)",
            )
        })?;
        Ok(())
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut t = self
            .trainer
            .lock()
            .map_err(|_| Error::internal("trainer poisoned"))?;
        t.train_batch(batch)?;
        if let Some(recent) = &self.recent {
            let m = t.metrics();
            if let Ok(mut r) = recent.lock() {
                *r = m[m.len().saturating_sub(10)..].to_vec();
            }
        }
        Ok(())
    }

    fn finish(&mut self, summary: &RunSummary<'_>) -> Result<serde_json::Value> {
        let t = self
            .trainer
            .lock()
            .map_err(|_| Error::internal("trainer poisoned"))?;
        Ok(serde_json::json!({
            "rows": summary.rows_out,
            "rejected": summary.rejected.len(),
            "step": t.position().step,
        }))
    }
}
