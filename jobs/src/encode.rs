//! The encode job (`ldae pca encode`): images -> patches -> PCA latents -> Parquet.

use std::path::PathBuf;

use ldae_datasets::SourceOptions;
use ldae_operators::pca::{LatentScale, PcaModel, PcaProjectConfig};

use crate::pca_fit::{absolute, patch_front_of, table_spec, TableWrite};
use crate::spec::Spec;
use crate::Result;
use ldae_operators::device::DeviceName;
use ldae_pipeline::OperatorSpec;

/// Encode a dataset to PCA latents with a fitted model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EncodeJob {
    /// Dataset path or `synthetic:N`.
    pub input: String,
    /// How to read it.
    pub source: SourceOptions,
    /// The PCA model file.
    pub pca: PathBuf,
    /// Latent dimension d.
    pub dim: usize,
    /// Latent scale (default: the model's).
    pub latent_scale: Option<LatentScale>,
    /// Compute device.
    pub device: DeviceName,
    /// Output table folder.
    pub out: PathBuf,
    /// What to do with work already in `out`.
    #[serde(default)]
    pub write: TableWrite,
}

impl EncodeJob {
    /// The pipeline this job runs: the model's own geometry and normalisation in front.
    pub fn spec(&self) -> Result<Spec> {
        let pca = absolute(&self.pca);
        let model = PcaModel::load(&pca)?;
        let m = &model.meta;
        let mut operators = patch_front_of(&model)?;
        operators.push(OperatorSpec::new(PcaProjectConfig {
            pca,
            dim: self.dim,
            latent_scale: Some(self.latent_scale.unwrap_or(m.latent_scale)),
            device: self.device,
        }));
        table_spec(&self.input, &self.source, operators, &self.out, self.write)
    }
}
