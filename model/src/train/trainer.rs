//! The training loop as a sink: each batch of clean `patches`, `noisy` patches and `sigma` is
//! one AdamW step of the denoiser on the weighted PCA loss. The trainer lives across epochs
//! (the CLI runs one pipeline per epoch), checkpoints itself atomically and resumes exactly:
//! every random choice derives from (seed, epoch, row id), so the checkpoint needs no RNG state.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::array::Float32Array;
use arrow::record_batch::RecordBatch;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

pub use crate::run_folder::{load_network, load_trained, read_train_config, TrainConfig};

use ldae_pipeline::columns;
use ldae_pipeline::{Error, Result};

use super::budget::BudgetClock;
use super::metrics::{read_metrics, write_metrics, StepMetrics, SIGMA_BINS};
use super::optimizer::AdamW;
use super::schedule::learning_rate;
use crate::denoiser::model::timesteps;
use crate::denoiser::{initialise, Denoiser, PcaLoss, Precision};
use crate::run_folder::{
    load_tensors, read_json, save_tensors, write_json, CHECKPOINT, CONFIG, EMA_WEIGHTS, WEIGHTS,
};
use ldae_operators::pca::{candle_err, PcaModel};

/// Where a run stands: the next batch to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// Steps taken.
    pub step: u64,
    /// Current epoch.
    pub epoch: u64,
    /// Batches of the current epoch already trained.
    pub batch_in_epoch: u64,
}

/// The model, optimizer and bookkeeping of one run.
pub struct Trainer {
    config: TrainConfig,
    run_dir: PathBuf,
    device: Device,
    vars: VarMap,
    model: Denoiser,
    loss: PcaLoss,
    opt: AdamW,
    ema: Option<HashMap<String, Tensor>>,
    position: Position,
    metrics: Vec<StepMetrics>,
    last_checkpoint: Option<u64>,
    last_log: Instant,
    budget_clock: BudgetClock,
    budget_note: Option<String>,
    step_time: StepTime,
}

/// Where this session's model steps spent their time: all of it, and the part copying each
/// batch's tensors to the device (on a GPU, from pageable memory, a copy the step waits for).
#[derive(Debug, Clone, Copy, Default)]
pub struct StepTime {
    /// The model steps, copies included.
    pub total: std::time::Duration,
    /// Making the batch's tensors on the device.
    pub copy_in: std::time::Duration,
}

impl Trainer {
    /// A fresh run in `run_dir` (created; `config.json` written).
    pub fn new(config: TrainConfig, run_dir: &Path, device: &Device) -> Result<Self> {
        ldae_pipeline::folders::create_dir_all(run_dir)?;
        let trainer = Self::build(config, run_dir, device)?;
        initialise(&trainer.vars, trainer.config.seed).map_err(candle_err)?;
        write_json(&run_dir.join(CONFIG), &trainer.config)?;
        Ok(trainer)
    }

    /// After a step: once the time budget's clock knows the speed, set the epochs it chose and
    /// record the choice in `config.json` (a resumed run keeps it).
    fn follow_budget(&mut self) -> Result<()> {
        let Some(budget) = &self.config.time_budget else {
            return Ok(());
        };
        let spe = self.config.steps_per_epoch();
        let Some(plan) =
            self.budget_clock
                .after_step(budget, self.position.step, spe, self.config.epochs)
        else {
            return Ok(());
        };
        self.budget_note = Some(format!(
            "time budget {:.0} s: {:.3} s per step measured over steps {}..{}, {:.0} s left: \
             {} epochs ({} steps{})",
            budget.seconds,
            plan.seconds_per_step,
            plan.at_step - super::budget::MEASURED_STEPS,
            plan.at_step,
            plan.seconds_left,
            plan.epochs,
            plan.epochs * spe,
            if plan.epochs == self.config.epochs {
                ", the most --epochs allows"
            } else {
                ""
            }
        ));
        self.config.epochs = plan.epochs;
        if let Some(b) = self.config.time_budget.as_mut() {
            b.plan = Some(plan);
        }
        write_json(&self.run_dir.join(CONFIG), &self.config)
    }

    /// The line saying what the time budget chose, once (taken by the caller to print).
    pub fn take_budget_note(&mut self) -> Option<String> {
        self.budget_note.take()
    }

    /// Continue the run in `run_dir` from its last checkpoint, its products in `precision`
    /// (which may differ from the last session's: a run started on the CPU in f32 goes on in
    /// bf16 on a GPU; weights and optimizer state are f32 either way). A change is recorded in
    /// config.json.
    pub fn resume(run_dir: &Path, device: &Device, precision: Precision) -> Result<Self> {
        let mut config: TrainConfig = read_json(&run_dir.join(CONFIG))?;
        let ckpt = run_dir.join(CHECKPOINT);
        if !ckpt.join("state.json").exists() {
            return Err(Error::corrupt(run_dir, "no checkpoint to resume from"));
        }
        let changed = config.model.precision != precision;
        config.model.precision = precision;
        let mut t = Self::build(config, run_dir, device)?;
        let weights = ckpt.join(WEIGHTS);
        t.vars
            .load(&weights)
            .map_err(|e| Error::external(format!("{}", weights.display()), e))?;
        let position: Position = read_json(&ckpt.join("state.json"))?;
        let optimizer = ckpt.join("optimizer.safetensors");
        let state = load_tensors(&optimizer, device)?;
        t.opt
            .restore(&state, position.step)
            .map_err(|e| Error::external(format!("{}", optimizer.display()), e))?;
        if t.ema.is_some() {
            t.ema = Some(load_tensors(&ckpt.join(EMA_WEIGHTS), device)?);
        }
        let metrics = run_dir.join("metrics.parquet");
        if metrics.exists() {
            t.metrics = read_metrics(&metrics)?;
            t.metrics.retain(|m| m.step as u64 <= position.step);
        }
        t.position = position;
        t.last_checkpoint = Some(position.step);
        if changed {
            // Recorded once the checkpoint has loaded: a resume that fails changes nothing.
            write_json(&run_dir.join(CONFIG), &t.config)?;
        }
        Ok(t)
    }

    fn build(config: TrainConfig, run_dir: &Path, device: &Device) -> Result<Self> {
        let pca = PcaModel::load(&config.pca)?;
        if pca.dim() != config.model.patch_dim || pca.tokens() != config.model.tokens() {
            return Err(Error::invalid(format!(
                "the PCA model's patches ({} tokens of {}) do not match the network's ({} of {})",
                pca.tokens(),
                pca.dim(),
                config.model.tokens(),
                config.model.patch_dim
            )));
        }
        let vars = VarMap::new();
        let model = Denoiser::new(
            &config.model,
            VarBuilder::from_varmap(&vars, DType::F32, device),
        )
        .map_err(candle_err)?;
        let loss = PcaLoss::new(&pca, config.dim, DType::F32, device).map_err(candle_err)?;
        let opt = AdamW::new(&vars, config.adamw).map_err(candle_err)?;
        let ema = config.ema.map(|_| HashMap::new());
        Ok(Trainer {
            config,
            run_dir: run_dir.to_path_buf(),
            device: device.clone(),
            vars,
            model,
            loss,
            opt,
            ema,
            position: Position {
                step: 0,
                epoch: 0,
                batch_in_epoch: 0,
            },
            metrics: Vec::new(),
            last_checkpoint: None,
            last_log: Instant::now(),
            budget_clock: BudgetClock::default(),
            budget_note: None,
            step_time: StepTime::default(),
        })
    }

    /// The run's settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Where the run stands.
    pub fn position(&self) -> Position {
        self.position
    }

    /// Metrics of every step so far.
    pub fn metrics(&self) -> &[StepMetrics] {
        &self.metrics
    }

    /// Where this session's model steps spent their time.
    pub fn step_time(&self) -> StepTime {
        self.step_time
    }

    /// Number of trainable parameters.
    pub fn parameter_count(&self) -> usize {
        self.vars.all_vars().iter().map(|v| v.elem_count()).sum()
    }

    /// The network.
    pub fn model(&self) -> &Denoiser {
        &self.model
    }

    /// One optimisation step on a batch with `patches`, `noisy` and `sigma`.
    pub fn train_batch(&mut self, batch: &RecordBatch) -> Result<f32> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(f32::NAN);
        }
        let start = Instant::now();
        let cfg = &self.config.model;
        let shape = (rows, cfg.tokens(), cfg.patch_dim);
        let clean: Float32Array = columns::tensor_values(batch, columns::PATCHES)?;
        let noisy: Float32Array = columns::tensor_values(batch, columns::NOISY)?;
        let sigma: Vec<f32> = batch
            .column_by_name(columns::SIGMA)
            .and_then(|c| c.as_any().downcast_ref::<Float32Array>())
            .map(|a| a.values().to_vec())
            .ok_or_else(|| Error::data("missing sigma column"))?;
        let dev = &self.device;
        let clean = Tensor::from_slice(clean.values(), shape, dev).map_err(candle_err)?;
        let noisy = Tensor::from_slice(noisy.values(), shape, dev).map_err(candle_err)?;
        let sigma_t = Tensor::from_slice(&sigma, rows, dev).map_err(candle_err)?;
        let t = timesteps(&sigma, DType::F32, dev).map_err(candle_err)?;
        self.step_time.copy_in += start.elapsed();

        let steps_per_epoch = self.config.steps_per_epoch();
        let total = self.config.epochs * steps_per_epoch;
        let warmup = (self.config.warmup_epochs * steps_per_epoch as f64).round() as u64;
        let lr = learning_rate(self.position.step, total, warmup, self.config.lr);
        self.opt.set_learning_rate(lr);

        let predicted = self.model.forward(&noisy, &t).map_err(candle_err)?;
        let per_row = self
            .loss
            .per_row(&clean, &predicted, &sigma_t)
            .map_err(candle_err)?;
        let loss = per_row.mean_all().map_err(candle_err)?;
        let value = loss.to_scalar::<f32>().map_err(candle_err)?;
        if !value.is_finite() {
            return Err(Error::msg(format!(
                "the loss is {value} at step {} (epoch {}); {}",
                self.position.step + 1,
                self.position.epoch,
                match self.last_checkpoint {
                    Some(s) => format!(
                        "the last good checkpoint (step {s}) is in {}",
                        self.run_dir.join("checkpoint").display()
                    ),
                    None => "no checkpoint was written yet".to_string(),
                }
            )));
        }
        let mut grads = loss.backward().map_err(candle_err)?;
        if let Some(clip) = self.config.grad_clip {
            self.clip(&mut grads, clip)?;
        }
        self.opt.step(&grads).map_err(candle_err)?;
        self.update_ema()?;

        let rows_loss: Vec<f32> = per_row.to_vec1().map_err(candle_err)?;
        let mut sums = [(0.0f32, 0usize); 4];
        for (l, s) in rows_loss.iter().zip(&sigma) {
            let bin = SIGMA_BINS.iter().position(|edge| s < edge).unwrap_or(3);
            sums[bin].0 += l;
            sums[bin].1 += 1;
        }
        self.step_time.total += start.elapsed();
        self.position.step += 1;
        self.position.batch_in_epoch += 1;
        self.follow_budget()?;
        let m = StepMetrics {
            step: self.position.step as i64,
            epoch: self.position.epoch as i64,
            lr,
            loss: value,
            loss_by_sigma: sums.map(|(s, n)| (n > 0).then(|| s / n as f32)),
            images_per_second: rows as f32 / start.elapsed().as_secs_f32().max(1e-9),
        };
        if self.last_log.elapsed().as_secs() >= 10 {
            self.last_log = Instant::now();
            tracing::info!(
                "step {} epoch {} loss {:.4} lr {:.2e} {:.0} images/s",
                m.step,
                m.epoch,
                m.loss,
                m.lr,
                m.images_per_second
            );
        }
        self.metrics.push(m);
        if self
            .position
            .step
            .is_multiple_of(self.config.checkpoint_every.max(1))
        {
            self.save_checkpoint()?;
        }
        Ok(value)
    }

    /// Scale the gradients so their global norm is at most `clip`.
    fn clip(&self, grads: &mut candle_core::backprop::GradStore, clip: f64) -> Result<()> {
        let vars = self.vars.all_vars();
        let mut total = 0.0f64;
        for v in &vars {
            if let Some(g) = grads.get(v) {
                let s = g
                    .sqr()
                    .and_then(|x| x.sum_all())
                    .and_then(|x| x.to_dtype(DType::F64))
                    .and_then(|x| x.to_scalar::<f64>())
                    .map_err(candle_err)?;
                total += s;
            }
        }
        let norm = total.sqrt();
        if norm > clip {
            let factor = clip / norm;
            for v in &vars {
                if let Some(g) = grads.get(v) {
                    let scaled = (g * factor).map_err(candle_err)?;
                    grads.insert(v, scaled);
                }
            }
        }
        Ok(())
    }

    fn update_ema(&mut self) -> Result<()> {
        let (Some(decay), Some(ema)) = (self.config.ema, self.ema.as_mut()) else {
            return Ok(());
        };
        let data = self
            .vars
            .data()
            .lock()
            .map_err(|_| Error::internal("variable map poisoned"))?;
        for (name, var) in data.iter() {
            // Detached: a variable's tensor records the ops made from it, so an average built
            // from it kept every earlier average alive (about 20 MB per step for the tiny
            // preset, out of memory after some 800 steps).
            let current = var.as_tensor().detach();
            let next = match ema.get(name) {
                Some(avg) => ((avg * decay).and_then(|a| a + (&current * (1.0 - decay))?))
                    .map_err(candle_err)?,
                None => current.copy().map_err(candle_err)?,
            };
            ema.insert(name.clone(), next.detach());
        }
        Ok(())
    }

    /// An epoch ended: the next batch is the first of the next epoch.
    pub fn end_epoch(&mut self) {
        self.position.epoch += 1;
        self.position.batch_in_epoch = 0;
    }

    /// Write the checkpoint (weights, optimizer state, EMA, position) atomically: a complete
    /// new checkpoint folder replaces the old one by rename. Also writes the metrics.
    pub fn save_checkpoint(&mut self) -> Result<()> {
        let tmp = self.run_dir.join(".checkpoint.tmp");
        let old = self.run_dir.join(".checkpoint.old");
        let dest = self.run_dir.join(CHECKPOINT);
        let _ = std::fs::remove_dir_all(&tmp);
        ldae_pipeline::folders::create_dir_all(&tmp)?;
        let weights = tmp.join(WEIGHTS);
        self.vars
            .save(&weights)
            .map_err(|e| Error::external(format!("{}: cannot write", weights.display()), e))?;
        let optimizer = tmp.join("optimizer.safetensors");
        self.opt
            .save_state(&optimizer)
            .map_err(|e| Error::external(format!("{}: cannot write", optimizer.display()), e))?;
        if let Some(ema) = &self.ema {
            save_tensors(ema, &tmp.join(EMA_WEIGHTS))?;
        }
        write_json(&tmp.join("state.json"), &self.position)?;
        let _ = std::fs::remove_dir_all(&old);
        if dest.exists() {
            std::fs::rename(&dest, &old).map_err(|e| Error::io(&dest, e))?;
        }
        std::fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
        let _ = std::fs::remove_dir_all(&old);
        write_metrics(&self.run_dir.join("metrics.parquet"), &self.metrics)?;
        self.last_checkpoint = Some(self.position.step);
        Ok(())
    }
}
