//! Latent noise: clean `patches` `[N, D]` in; `patches` kept (the clean target) plus `noisy`
//! `[N, D]` (the rank-d PCA reconstruction of the noised latent, in patch layout), `sigma` and
//! `t` out.
//!
//! Per row: `t ~ U{0..T-1}` and `sigma_t = sqrt(2) * t / (T - 1)` (multi-level, the recipe's
//! default) or one fixed sigma (single-level); `z_t = z_0 + sigma * eps`, `eps ~ N(0, I)` in the
//! (scaled) latent, then mapped back to patches with the inverse PCA. Every draw derives from
//! (seed, epoch, row id), so a row gets the same noise whatever the batch size or thread count.

use std::sync::Arc;

use arrow::array::{AsArray, Float32Array, Int64Array};
use arrow::datatypes::{DataType, Field, SchemaRef};
use arrow::record_batch::RecordBatch;
use rand::Rng;
use rand_distr::StandardNormal;

use ldae_pipeline::columns::{self, tensor_array, tensor_field};
use std::path::PathBuf;

use ldae_pipeline::{
    BoundOperator, BuildContext, Error, Operator, OperatorConfig, ProcessWithSchema, Processed,
    Result, WithSchema,
};

use crate::pca::{LatentScale, PcaModel, Projector};
use crate::rowseed::row_rng;

/// Number of discrete noise levels T of the multi-level schedule.
pub const NOISE_STEPS: u32 = 1000;

/// Column holding the discrete noise level `t` (Int64; the single-level schedule writes -1).
pub const T_COLUMN: &str = "t";

/// How noise levels are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "schedule")]
pub enum NoiseSchedule {
    /// `t ~ U{0..T-1}`, `sigma = sqrt(2) t / (T-1)` (the recipe's default).
    #[default]
    MultiLevel,
    /// One fixed `sigma` for every row (the recipe's single-level ablation uses sqrt(1/3)).
    SingleLevel {
        /// The noise level.
        sigma: f32,
    },
}

/// A [`NoiseSchedule`] by name, as `--noise` and the ablation settings name it: multi-level
/// noise (the recipe's) or one fixed level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoiseKind {
    /// `t ~ U{0..999}`, sigma linear in t up to sqrt 2.
    Multi,
    /// One level, sqrt(1/3) (the paper's single-level ablation).
    Single,
}

/// The single-level ablation's noise level, sqrt(1/3).
pub const SINGLE_SIGMA: f32 = 0.57735;

impl NoiseKind {
    /// The `sigma` of a noise operator: none for multi-level, [`SINGLE_SIGMA`] for single.
    pub fn sigma(self) -> Option<f32> {
        self.schedule(SINGLE_SIGMA).sigma()
    }

    /// The schedule of this kind; `sigma` is the level of a single-level one.
    pub fn schedule(self, sigma: f32) -> NoiseSchedule {
        match self {
            NoiseKind::Multi => NoiseSchedule::MultiLevel,
            NoiseKind::Single => NoiseSchedule::SingleLevel { sigma },
        }
    }
}

impl std::fmt::Display for NoiseKind {
    /// The serde name (`multi`, `single`): the word `--noise` takes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&ldae_pipeline::names::name_of(self))
    }
}

/// `sigma_t` of discrete level `t` in the multi-level schedule.
///
/// ```
/// use ldae_operators::noise::sigma_of;
/// assert_eq!(sigma_of(0), 0.0);
/// assert!((sigma_of(999) - 2f32.sqrt()).abs() < 1e-6);
/// ```
pub fn sigma_of(t: u32) -> f32 {
    std::f32::consts::SQRT_2 * t as f32 / (NOISE_STEPS - 1) as f32
}

/// The noise level and the latent noise of one row.
pub fn draw_noise(
    schedule: NoiseSchedule,
    seed: u64,
    epoch: u64,
    id: &str,
    values: usize,
) -> (i64, f32, Vec<f32>) {
    let (t, sigma) = match schedule {
        NoiseSchedule::MultiLevel => {
            let t = row_rng(seed, epoch, id, "noise-level").random_range(0..NOISE_STEPS);
            (t as i64, sigma_of(t))
        }
        NoiseSchedule::SingleLevel { sigma } => (-1, sigma),
    };
    let mut rng = row_rng(seed, epoch, id, "noise");
    let eps = (0..values).map(|_| rng.sample(StandardNormal)).collect();
    (t, sigma, eps)
}

impl NoiseSchedule {
    /// The schedule of a spec's `sigma` key: one level when set, else multi-level.
    pub fn from_sigma(sigma: Option<f32>) -> Self {
        match sigma {
            Some(sigma) => NoiseSchedule::SingleLevel { sigma },
            None => NoiseSchedule::MultiLevel,
        }
    }

    /// The spec's `sigma` key of this schedule.
    pub fn sigma(&self) -> Option<f32> {
        match self {
            NoiseSchedule::SingleLevel { sigma } => Some(*sigma),
            NoiseSchedule::MultiLevel => None,
        }
    }
}

/// `noise`: clean `patches [N, D]` in; `patches` kept (the clean target) plus `noisy [N, D]`
/// (the rank-d PCA reconstruction of the noised latent), `sigma` and `t`. Each row's noise is
/// drawn from (seed, epoch, row id): the same whatever the batch size or thread count.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoiseConfig {
    /// The PCA model file the latent space comes from.
    pub pca: PathBuf,
    /// Latent dimension d: noise is added to the first d PCA coordinates.
    pub dim: usize,
    /// Latent scale (default: the one recorded in the model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latent_scale: Option<LatentScale>,
    /// One noise level for every row (single-level noise); unset: multi-level,
    /// `t ~ U{0..999}`, `sigma = sqrt(2) t / 999` (the recipe's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma: Option<f32>,
    /// Seed of the noise draws (the epoch of a training pass is mixed in).
    #[serde(default)]
    pub seed: u64,
}

impl OperatorConfig for NoiseConfig {
    const KIND: &'static str = "noise";
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Operator>> {
        if let Some(s) = self.sigma {
            if !s.is_finite() || s < 0.0 {
                return Err(Error::plan(
                    NoiseConfig::KIND,
                    format!("sigma {s} must be finite and >= 0"),
                ));
            }
        }
        let path =
            std::path::absolute(ctx.resolve(&self.pca)).map_err(|e| Error::io(&self.pca, e))?;
        let model = PcaModel::load(&path)?;
        let scale = self.latent_scale.unwrap_or(model.meta.latent_scale);
        let mut noise = Noise::new(
            &model,
            self.dim,
            scale,
            NoiseSchedule::from_sigma(self.sigma),
            self.seed,
            ctx.epoch,
        )?;
        noise.pca_path = Some(path.display().to_string());
        Ok(Arc::new(noise))
    }
}
ldae_pipeline::register_operator!(NoiseConfig);

/// The noise operator.
#[derive(Clone)]
pub struct Noise {
    /// The model file, recorded in the schema for a trainer (set when built from a spec).
    pub pca_path: Option<String>,
    scale: LatentScale,
    model: PcaModel,
    projector: Projector,
    tokens: usize,
    schedule: NoiseSchedule,
    seed: u64,
    epoch: u64,
}

impl Noise {
    /// Noise in the first `dim` PCA coordinates of `model` (scaled with `scale`).
    pub fn new(
        model: &PcaModel,
        dim: usize,
        scale: LatentScale,
        schedule: NoiseSchedule,
        seed: u64,
        epoch: u64,
    ) -> Result<Self> {
        let projector = model
            .projector(dim, scale, &candle_core::Device::Cpu)
            .map_err(|e| e.at_plan(NoiseConfig::KIND))?;
        Ok(Noise {
            pca_path: None,
            scale,
            model: model.clone(),
            projector,
            tokens: model.tokens(),
            schedule,
            seed,
            epoch,
        })
    }
}

impl Noise {
    /// The output schema for batches of `input`, with every plan-time check.
    fn plan_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let shape = self.model.check_patches(input, "noise")?;
        let mut fields: Vec<Field> = input
            .fields()
            .iter()
            .filter(|f| ![columns::NOISY, columns::SIGMA, T_COLUMN].contains(&f.name().as_str()))
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(tensor_field(columns::NOISY, DataType::Float32, &shape));
        fields.push(Field::new(columns::SIGMA, DataType::Float32, false));
        fields.push(Field::new(T_COLUMN, DataType::Int64, false));
        let schema = arrow::datatypes::Schema::new_with_metadata(fields, input.metadata().clone());
        let mut metadata = self.model.latent_metadata(self.projector.dim(), self.scale);
        metadata.push((
            columns::META_NOISE,
            serde_json::to_string(&self.schedule).unwrap_or_default(),
        ));
        if let Some(p) = &self.pca_path {
            metadata.push((columns::META_PCA_PATH, p.clone()));
        }
        Ok(columns::with_metadata(&schema, &metadata))
    }
}

impl Operator for Noise {
    fn name(&self) -> String {
        NoiseConfig::KIND.into()
    }

    fn bind(&self, input: &SchemaRef) -> Result<Arc<dyn BoundOperator>> {
        Ok(Arc::new(WithSchema {
            schema: self.plan_schema(input)?,
            op: self.clone(),
        }))
    }
}

impl ProcessWithSchema for Noise {
    fn process_with(&self, batch: RecordBatch, schema: &SchemaRef) -> Result<Processed> {
        let schema = schema.clone();
        let ids = batch
            .column_by_name(columns::ID)
            .ok_or_else(|| Error::data("missing id column"))?
            .as_string::<i32>()
            .clone();
        let patches: Float32Array = columns::tensor_values(&batch, columns::PATCHES)?;
        let z = self
            .projector
            .project_slice(patches.values(), self.tokens)?;
        let per_row = self.tokens * self.projector.dim();
        let mut noisy_latents = Vec::with_capacity(z.len());
        let (mut sigmas, mut ts) = (Vec::new(), Vec::new());
        for (row, z0) in z.chunks_exact(per_row).enumerate() {
            let (t, sigma, eps) = draw_noise(
                self.schedule,
                self.seed,
                self.epoch,
                ids.value(row),
                per_row,
            );
            noisy_latents.extend(z0.iter().zip(&eps).map(|(a, e)| a + sigma * e));
            sigmas.push(sigma);
            ts.push(t);
        }
        let noisy = self.projector.inverse_slice(&noisy_latents, self.tokens)?;
        let noisy = tensor_array(
            Arc::new(Float32Array::from(noisy)),
            &[self.tokens, self.projector.patch_dim()],
        )?;
        let mut cols: Vec<Arc<dyn arrow::array::Array>> = batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .filter(|(f, _)| {
                ![columns::NOISY, columns::SIGMA, T_COLUMN].contains(&f.name().as_str())
            })
            .map(|(_, c)| c.clone())
            .collect();
        cols.push(Arc::new(noisy));
        cols.push(Arc::new(Float32Array::from(sigmas)));
        cols.push(Arc::new(Int64Array::from(ts)));
        Ok(Processed::ok(RecordBatch::try_new(schema, cols)?))
    }
}
