//! The PCA fit job (`ldae pca fit`): images -> patches -> the `pca_fit` sink.

use std::path::PathBuf;

use ldae_datasets::SourceOptions;
use ldae_operators::decode::DecodeConfig;
use ldae_operators::normalize::NormalizeConfig;
use ldae_operators::patchify::PatchifyConfig;
use ldae_operators::pca::{LatentScale, PcaFitConfig};
use ldae_pipeline::Error;

use crate::source::{natural_channels, SourceSpec};
use crate::spec::{Component, Spec};
use crate::Result;

/// Fit a patch PCA (or partial statistics for `ldae pca merge`) on a dataset.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PcaFitJob {
    /// Dataset path or `synthetic:N`.
    pub input: String,
    /// How to read it.
    pub source: SourceOptions,
    /// Image side S the images are decoded to.
    pub image_size: usize,
    /// Patch side p.
    pub patch: usize,
    /// Channels (default: 1 for grayscale pixel datasets, else 3).
    pub channels: Option<u8>,
    /// Output `.safetensors` file.
    pub out: PathBuf,
    /// Write partial statistics instead of a model.
    pub partial: bool,
    /// Default latent scale recorded in the model.
    pub latent_scale: LatentScale,
}

/// decode -> normalize -> patchify: the image-to-patches front of every job, as components.
pub fn patch_front(
    image_size: usize,
    channels: u8,
    patch: usize,
    normalize: NormalizeConfig,
) -> Result<Vec<Component>> {
    if image_size == 0 || patch == 0 || !image_size.is_multiple_of(patch) {
        return Err(Error::msg(format!(
            "--patch {patch} must divide --image-size {image_size}"
        )));
    }
    Ok(vec![
        Component::operator(&DecodeConfig {
            image_size: image_size as u32,
            channels,
            ..DecodeConfig::default()
        })?,
        Component::operator(&normalize)?,
        Component::operator(&PatchifyConfig { patch })?,
    ])
}

/// [`patch_front`] with `model`'s own image size, channels, patch size and normalisation: the
/// front of every job that encodes images for a fitted model.
pub fn patch_front_of(model: &ldae_operators::pca::PcaModel) -> Result<Vec<Component>> {
    let m = &model.meta;
    patch_front(
        m.image_size,
        m.channels as u8,
        m.patch_size,
        NormalizeConfig::from(&m.normalization),
    )
}

/// `input` read with `source` through `operators` into a Parquet table at `out`: the shape of
/// every job that writes per-image rows.
pub fn table_spec(
    input: &str,
    source: &SourceOptions,
    operators: Vec<Component>,
    out: &std::path::Path,
) -> Result<Spec> {
    Ok(Spec {
        source: SourceSpec::absolute(input, source.clone()),
        operators,
        sink: Component::sink(&ldae_operators::parquet_sink::ParquetSinkConfig {
            out: absolute(out),
            ..Default::default()
        })?,
    })
}

/// `path` made absolute against the current folder (printed specs run from anywhere).
pub fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

impl PcaFitJob {
    /// The pipeline this job runs.
    pub fn spec(&self) -> Result<Spec> {
        let source = SourceSpec::absolute(&self.input, self.source.clone());
        let channels = match self.channels {
            Some(c) => c,
            None => natural_channels(source.open(std::path::Path::new(""))?.as_ref()),
        };
        Ok(Spec {
            source,
            operators: patch_front(
                self.image_size,
                channels,
                self.patch,
                NormalizeConfig::default(),
            )?,
            sink: Component::sink(&PcaFitConfig {
                out: absolute(&self.out),
                partial: self.partial,
                latent_scale: self.latent_scale,
            })?,
        })
    }
}
