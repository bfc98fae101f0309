//! A fitted PCA model: mean patch, the FULL D x D orthonormal basis (rows sorted by eigenvalue,
//! largest first) and the eigenvalues, with the settings the patches were made with. Saved as
//! safetensors (f64 tensors `mean`, `components`, `eigenvalues`) with JSON metadata.

use std::path::Path;

use candle_core::{DType, Device, Tensor};

use ldae_pipeline::{Error, Result};

use super::candle_err;
use super::file;
pub use super::file::{LatentScale, PcaMeta};
use super::stats::PcaStats;

/// A fitted PCA model.
#[derive(Debug, Clone, PartialEq)]
pub struct PcaModel {
    /// Settings and provenance.
    pub meta: PcaMeta,
    /// Mean patch, length D.
    pub mean: Vec<f64>,
    /// D x D row-major; row i is the i-th principal direction (unit length).
    pub components: Vec<f64>,
    /// Eigenvalues of the covariance, descending, length D.
    pub eigenvalues: Vec<f64>,
}

impl PcaModel {
    /// Eigendecompose the covariance of `stats`. Components are sorted by eigenvalue (largest
    /// first); each is signed so its largest-magnitude entry is positive, making the basis
    /// reproducible.
    pub fn fit(stats: &PcaStats, mut meta: PcaMeta) -> Result<PcaModel> {
        let d = stats.dim;
        let cov = stats.covariance()?;
        let matrix = nalgebra::DMatrix::from_row_slice(d, d, &cov);
        let eig = nalgebra::SymmetricEigen::new(matrix);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        let mut components = Vec::with_capacity(d * d);
        let mut eigenvalues = Vec::with_capacity(d);
        for &k in &order {
            let v = eig.eigenvectors.column(k);
            let pivot = v
                .iter()
                .copied()
                .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
            let sign = if pivot < 0.0 { -1.0 } else { 1.0 };
            components.extend(v.iter().map(|x| x * sign));
            eigenvalues.push(eig.eigenvalues[k]);
        }
        meta.samples = stats.count;
        meta.images = stats.images;
        meta.fingerprint = format!("{:016x}", stats.fingerprint);
        Ok(PcaModel {
            meta,
            mean: stats.mean(),
            components,
            eigenvalues,
        })
    }

    /// D.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Tokens per image the model's patches come in, `(S/p)^2`.
    pub fn tokens(&self) -> usize {
        (self.meta.geometry.size / self.meta.geometry.patch).pow(2)
    }

    /// A fingerprint of the fitted model (its tensors and geometry), recorded in the schema of
    /// latents and noisy patches so a later stage can tell which PCA made them.
    pub fn model_id(&self) -> String {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for values in [&self.mean, &self.components, &self.eigenvalues] {
            for v in values.iter() {
                h.update(&v.to_le_bytes());
            }
        }
        h.update(&[
            self.meta.geometry.size as u8,
            self.meta.geometry.patch as u8,
        ]);
        h.update(self.meta.normalization.metadata_value().as_bytes());
        format!("{:016x}", h.digest())
    }

    /// The schema metadata of latents (or noisy patches) made with this model at `dim`, `scale`.
    pub fn latent_metadata(&self, dim: usize, scale: LatentScale) -> Vec<(&'static str, String)> {
        vec![
            (ldae_pipeline::columns::META_PCA_MODEL, self.model_id()),
            (ldae_pipeline::columns::META_LATENT_DIM, dim.to_string()),
            (ldae_pipeline::columns::META_LATENT_SCALE, scale.to_string()),
        ]
    }

    /// Plan-time check that `input`'s patches were made the way this model's were: same
    /// normalisation, image size, patch size and (from the patches' width D = p * p * C)
    /// channels. The error names `stage` and both sides; what the schema does not record is
    /// named in a warning (see [`ldae_pipeline::columns::check_metadata`]).
    pub fn check_patch_metadata(
        &self,
        input: &arrow::datatypes::Schema,
        stage: &str,
    ) -> Result<()> {
        use ldae_pipeline::columns::{
            check_metadata, META_IMAGE_SIZE, META_NORMALIZATION, META_PATCH_SIZE,
        };
        let what = format!("the PCA model (fitted on {})", self.meta.input);
        let expected = [
            (META_NORMALIZATION, self.meta.normalization.metadata_value()),
            (META_IMAGE_SIZE, self.meta.geometry.size.to_string()),
            (META_PATCH_SIZE, self.meta.geometry.patch.to_string()),
        ];
        check_metadata(input, &expected, stage, &what)?;
        let width = input
            .field_with_name(ldae_pipeline::columns::PATCHES)
            .ok()
            .and_then(ldae_pipeline::columns::tensor_type)
            .and_then(|(_, shape)| shape.last().copied());
        match width {
            Some(d) if d != self.dim() => Err(Error::plan(
                stage,
                format!(
                    "patches of {d} values do not match {what}: {}, {} values per patch",
                    self.meta.geometry,
                    self.dim()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Plan-time check that `input`'s latents came from this model at `dim`, `scale`.
    pub fn check_latent_metadata(
        &self,
        input: &arrow::datatypes::Schema,
        dim: usize,
        scale: LatentScale,
        stage: &str,
    ) -> Result<()> {
        let what = format!("the PCA model (fitted on {})", self.meta.input);
        let expected = self.latent_metadata(dim, scale);
        ldae_pipeline::columns::check_metadata(input, &expected, stage, &what).map(drop)
    }

    /// Plan-time check that `input` has the `patches` this model was fitted on; returns their
    /// shape `[N, D]`. The error names `stage`.
    pub fn check_patches(
        &self,
        input: &arrow::datatypes::Schema,
        stage: &str,
    ) -> Result<Vec<usize>> {
        let shape = ldae_pipeline::columns::require_tensor(
            input,
            ldae_pipeline::columns::PATCHES,
            &arrow::datatypes::DataType::Float32,
            stage,
        )?;
        let expected = [self.tokens(), self.dim()];
        if shape != expected {
            return Err(Error::plan(
                stage,
                format!(
                    "patches are {shape:?} but the PCA model was fitted on {expected:?} \
                     (image size, patch size or channels differ)"
                ),
            ));
        }
        self.check_patch_metadata(input, stage)?;
        Ok(shape)
    }

    /// Explained variance at a few latent dimensions, one line.
    pub fn variance_summary(&self) -> String {
        let ratio = self.explained_variance_ratio();
        let mut acc = 0.0;
        let cumulative: Vec<f64> = ratio
            .iter()
            .map(|r| {
                acc += r;
                acc
            })
            .collect();
        let d = self.dim();
        let mut points: Vec<usize> = [1, 2, 4, 8, 16, 32, 64, 128, 256]
            .into_iter()
            .filter(|&k| k < d)
            .collect();
        points.push(d);
        let parts: Vec<String> = points
            .iter()
            .map(|&k| format!("d={k}: {:.1}%", 100.0 * cumulative[k - 1]))
            .collect();
        format!(
            "PCA over {} patches of {} images ({}x{} px, patch {}, D={}): explained variance {}",
            self.meta.samples,
            self.meta.images,
            self.meta.geometry.size,
            self.meta.geometry.size,
            self.meta.geometry.patch,
            d,
            parts.join(", ")
        )
    }

    /// Fraction of the total variance along each component.
    pub fn explained_variance_ratio(&self) -> Vec<f64> {
        let total: f64 = self.eigenvalues.iter().map(|v| v.max(0.0)).sum();
        self.eigenvalues
            .iter()
            .map(|v| v.max(0.0) / total.max(f64::MIN_POSITIVE))
            .collect()
    }

    /// The divisor of each of the first `dim` latent coordinates under `scale`.
    pub fn latent_divisors(&self, dim: usize, scale: LatentScale) -> Vec<f64> {
        // Eigenvalues can be zero or slightly negative (constant pixels, rounding): floor them
        // relative to the largest so whitening never divides by zero.
        let floor = self.eigenvalues.first().copied().unwrap_or(1.0).abs() * 1e-12 + 1e-30;
        match scale {
            LatentScale::None => vec![1.0; dim],
            LatentScale::Global => {
                let mean = self.eigenvalues[..dim]
                    .iter()
                    .map(|v| v.max(floor))
                    .sum::<f64>()
                    / dim as f64;
                vec![mean.sqrt(); dim]
            }
            LatentScale::Whiten => self.eigenvalues[..dim]
                .iter()
                .map(|v| v.max(floor).sqrt())
                .collect(),
        }
    }

    /// Save atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let d = self.dim();
        let tensors: [(&str, &[f64], Vec<usize>); 3] = [
            ("mean", &self.mean, vec![d]),
            ("components", &self.components, vec![d, d]),
            ("eigenvalues", &self.eigenvalues, vec![d]),
        ];
        file::write(path, file::MODEL_FORMAT, &self.meta, &tensors, &[])
    }

    /// Load a model saved by [`PcaModel::save`].
    pub fn load(path: &Path) -> Result<PcaModel> {
        let file = file::read(
            path,
            file::MODEL_FORMAT,
            &["mean", "components", "eigenvalues"],
        )?;
        let meta = file.meta;
        let [mean, components, eigenvalues]: [Vec<f64>; 3] = file
            .tensors
            .try_into()
            .map_err(|_| Error::internal("three tensors asked for"))?;
        let d = mean.len();
        if Some(components.len()) != d.checked_mul(d)
            || eigenvalues.len() != d
            || d != meta.patch_dim()
        {
            return Err(Error::corrupt(
                path,
                format!(
                    "tensor shapes do not match a {}-dimensional patch PCA",
                    meta.patch_dim()
                ),
            ));
        }
        Ok(PcaModel {
            meta,
            mean,
            components,
            eigenvalues,
        })
    }

    /// A projector onto the first `dim` components with latent scale `scale`, on `device`.
    pub fn projector(&self, dim: usize, scale: LatentScale, device: &Device) -> Result<Projector> {
        let d = self.dim();
        if dim == 0 || dim > d {
            return Err(Error::invalid(format!(
                "latent dimension {dim} must be between 1 and D = {d}"
            )));
        }
        // Fold the mean and the latent scale into one matrix and one offset (computed in f64):
        // z = x W - b with W = V_d^T / s and b = mu W, and back x = z U + mu with U = s V_d.
        // One matrix product per direction and no full-size elementwise pass.
        let divisors = self.latent_divisors(dim, scale);
        let mut weight = vec![0f32; d * dim];
        let mut unweight = vec![0f32; dim * d];
        let mut offset = vec![0f32; dim];
        for k in 0..dim {
            let row = &self.components[k * d..(k + 1) * d];
            let mut b = 0.0f64;
            for i in 0..d {
                weight[i * dim + k] = (row[i] / divisors[k]) as f32;
                unweight[k * d + i] = (row[i] * divisors[k]) as f32;
                b += self.mean[i] * row[i] / divisors[k];
            }
            offset[k] = b as f32;
        }
        let mean: Vec<f32> = self.mean.iter().map(|&x| x as f32).collect();
        let tensor = |v: &[f32], shape: (usize, usize)| {
            Tensor::from_slice(v, shape, device).map_err(candle_err)
        };
        Ok(Projector {
            dim,
            patch_dim: d,
            weight: tensor(&weight, (d, dim))?,
            offset: tensor(&offset, (1, dim))?,
            unweight: tensor(&unweight, (dim, d))?,
            mean: tensor(&mean, (1, d))?,
            device: device.clone(),
            host: std::sync::Arc::new(HostMaps {
                project: (weight, offset.iter().map(|&b| -b).collect()),
                inverse: (unweight, mean),
            }),
        })
    }
}

/// Projects patches to latents and back: `z = ((x - mu) V_d^T) / s`, `x = (z * s) V_d + mu`.
#[derive(Debug, Clone)]
pub struct Projector {
    dim: usize,
    patch_dim: usize,
    /// `V_d^T / s`, `[D, d]`.
    weight: Tensor,
    /// `mu V_d^T / s`, `[1, d]`.
    offset: Tensor,
    /// `s V_d`, `[d, D]`.
    unweight: Tensor,
    /// `mu`, `[1, D]`.
    mean: Tensor,
    device: Device,
    /// The same maps in host memory, for the slice forms on the CPU.
    host: std::sync::Arc<HostMaps>,
}

/// A projector's two affine maps `y = x M + c` in host memory: (`M` row-major, `c`).
#[derive(Debug)]
struct HostMaps {
    /// `(W, -b)`: `[D, d]` and `[d]`.
    project: (Vec<f32>, Vec<f32>),
    /// `(U, mu)`: `[d, D]` and `[D]`.
    inverse: (Vec<f32>, Vec<f32>),
}

/// `y = x M + c` for every row of `x` (`rows x inputs`; `M` `inputs x outputs` row-major),
/// one product per item of `per_item` rows: an item's result is bit-for-bit the same whatever
/// else travels with it.
fn affine_items(x: &[f32], per_item: usize, (m, c): &(Vec<f32>, Vec<f32>)) -> Vec<f32> {
    let (inputs, outputs) = (m.len() / c.len(), c.len());
    let rows = x.len() / inputs;
    let mut out = Vec::with_capacity(rows * outputs);
    for _ in 0..rows {
        out.extend_from_slice(c);
    }
    for item in 0..rows / per_item {
        let first = item * per_item;
        // SAFETY: the item's rows of `x` and `out` lie inside them (rows * inputs and
        // rows * outputs values); `m` is inputs x outputs; `out` is initialised (accumulate).
        unsafe {
            crate::cpu::matmul(
                (per_item, outputs, inputs),
                out.as_mut_ptr().add(first * outputs),
                (outputs, 1),
                true,
                x.as_ptr().add(first * inputs),
                (inputs, 1),
                m.as_ptr(),
                (outputs, 1),
                1.0,
            );
        }
    }
    out
}

impl Projector {
    /// Latent dimension d.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Patch dimension D.
    pub fn patch_dim(&self) -> usize {
        self.patch_dim
    }

    /// Project a `[..., rows, D]` tensor to `[..., rows, d]`.
    pub fn project(&self, patches: &Tensor) -> Result<Tensor> {
        patches
            .broadcast_matmul(&self.weight)
            .and_then(|z| z.broadcast_sub(&self.offset))
            .map_err(candle_err)
    }

    /// Map a `[..., rows, d]` tensor of latents back to `[..., rows, D]` patches.
    pub fn inverse(&self, latents: &Tensor) -> Result<Tensor> {
        latents
            .broadcast_matmul(&self.unweight)
            .and_then(|x| x.broadcast_add(&self.mean))
            .map_err(candle_err)
    }

    /// [`Projector::project`] on host memory: `rows * D` values in, `rows * d` out, in items
    /// of `rows_per_item` rows (an image's tokens).
    ///
    /// Each item is one matrix product of the same shape, so an image's latents are bit-for-bit
    /// the same whatever batch it travels in (one product over the whole batch would let the
    /// matrix kernel's blocking, which depends on the row count, change the rounding).
    pub fn project_slice(&self, patches: &[f32], rows_per_item: usize) -> Result<Vec<f32>> {
        self.apply_slice(
            patches,
            rows_per_item,
            self.patch_dim,
            &self.host.project,
            |t| self.project(t),
        )
    }

    /// [`Projector::inverse`] on host memory: `rows * d` values in, `rows * D` out, in items of
    /// `rows_per_item` rows (see [`Projector::project_slice`]).
    pub fn inverse_slice(&self, latents: &[f32], rows_per_item: usize) -> Result<Vec<f32>> {
        self.apply_slice(latents, rows_per_item, self.dim, &self.host.inverse, |t| {
            self.inverse(t)
        })
    }

    fn apply_slice(
        &self,
        values: &[f32],
        rows_per_item: usize,
        width: usize,
        host: &(Vec<f32>, Vec<f32>),
        f: impl Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<Vec<f32>> {
        let rows = values.len() / width;
        if rows == 0 {
            return Ok(Vec::new());
        }
        let per_item = rows_per_item.max(1);
        if !rows.is_multiple_of(per_item) {
            return Err(ldae_pipeline::Error::data(format!(
                "{rows} rows are not whole items of {per_item} rows"
            )));
        }
        if self.device.is_cpu() {
            // ldae's own products (at the instruction-set level `LDAE_MAX_CPU_ISA` allows),
            // straight from and into host memory.
            return Ok(affine_items(values, per_item, host));
        }
        let x = Tensor::from_slice(values, (rows / per_item, per_item, width), &self.device)
            .map_err(candle_err)?;
        f(&x)?
            .to_dtype(DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1())
            .map_err(candle_err)
    }
}
