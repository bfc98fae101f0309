//! The PCA fit job (`ldae pca fit`): images -> patches -> the `pca_fit` sink.

use std::path::PathBuf;

use ldae_datasets::SourceOptions;
use ldae_operators::decode::DecodeConfig;
use ldae_operators::normalize::NormalizeConfig;
use ldae_operators::patchify::PatchifyConfig;
use ldae_operators::pca::{LatentScale, PcaFitConfig};
use ldae_pipeline::Error;

use crate::source::{natural_channels, SourceSpec};
use crate::spec::Spec;
use crate::Result;
use ldae_pipeline::{OperatorSpec, SinkSpec};

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
    /// Output `.safetensors` file; with `partial`, a folder (an existing one, or a path
    /// without extension) shared by the shards (see [`PcaFitJob::target`]).
    pub out: PathBuf,
    /// Write partial statistics instead of a model.
    pub partial: bool,
    /// Default latent scale recorded in the model.
    pub latent_scale: LatentScale,
}

/// decode -> patchify -> normalize: the image-to-patches front of every job, as components.
/// The bytes are patchified before they are normalised (the same values as the other order,
/// bit for bit): the reordering then moves a quarter of the data, and no normalised image is
/// written only to be copied into patch order (5% of a 224 px `pca encode`).
pub fn patch_front(
    image_size: usize,
    channels: u8,
    patch: usize,
    normalize: NormalizeConfig,
) -> Result<Vec<OperatorSpec>> {
    let decode = DecodeConfig {
        image_size: image_size as u32,
        channels,
        ..DecodeConfig::default()
    };
    patch_front_decoding(decode, patch, normalize)
}

/// [`patch_front`] with a decode of its own (timm's eval resize, say).
pub fn patch_front_decoding(
    decode: DecodeConfig,
    patch: usize,
    normalize: NormalizeConfig,
) -> Result<Vec<OperatorSpec>> {
    // The side decode gives (its crop less any trim).
    let image_size = decode.image_size.saturating_sub(decode.trim) as usize;
    if image_size == 0 || patch == 0 {
        return Err(Error::invalid(format!(
            "--image-size {image_size} and --patch {patch} must be at least 1"
        )));
    }
    if !image_size.is_multiple_of(patch) {
        return Err(Error::invalid(format!(
            "--patch {patch} must divide --image-size {image_size}"
        )));
    }
    Ok(vec![
        OperatorSpec::new(decode),
        OperatorSpec::new(PatchifyConfig { patch }),
        OperatorSpec::new(normalize),
    ])
}

/// [`patch_front`] with `model`'s own image size, channels, patch size and normalisation: the
/// front of every job that encodes images for a fitted model.
pub fn patch_front_of(model: &ldae_operators::pca::PcaModel) -> Result<Vec<OperatorSpec>> {
    let m = &model.meta;
    patch_front(
        m.geometry.size,
        m.geometry.channels as u8,
        m.geometry.patch,
        NormalizeConfig::from(&m.normalization),
    )
}

/// How a table job treats an output folder that already holds work of the same job (a
/// finished one is skipped, a killed one resumed, by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableWrite {
    /// Start over (redo this shard, or replace another job's table).
    pub overwrite: bool,
    /// Require committed parts to resume from.
    pub resume: bool,
    /// Rows per part file, the unit of resuming (default: the sink's 8192).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_per_file: Option<usize>,
}

/// `input` read with `source` through `operators` into a Parquet table at `out`: the shape of
/// every job that writes per-image rows.
pub fn table_spec(
    input: &str,
    source: &SourceOptions,
    operators: Vec<OperatorSpec>,
    out: &std::path::Path,
    write: TableWrite,
) -> Result<Spec> {
    Ok(Spec {
        source: SourceSpec::absolute(input, source.clone()),
        operators,
        sink: SinkSpec::new({
            let mut sink = ldae_operators::parquet_sink::ParquetSinkConfig {
                out: absolute(out),
                overwrite: write.overwrite,
                resume: write.resume,
                ..Default::default()
            };
            if let Some(rows) = write.rows_per_file {
                sink.rows_per_file = rows;
            }
            sink
        }),
    })
}

/// `path` made absolute against the current folder (printed specs run from anywhere).
pub fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The file name of shard `index` of `count` in a folder of partial statistics.
pub fn partial_name(index: usize, count: usize) -> String {
    format!("partial-{index:04}-of-{count:04}.safetensors")
}

/// Which shards of a folder of partial statistics are there: `(count, present)`, `None` when
/// the folder holds no partial files. Files of two shard counts are an error.
pub fn partial_status(dir: &std::path::Path) -> Result<Option<(usize, Vec<bool>)>> {
    let mut found: Option<(usize, Vec<bool>)> = None;
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let name = entry.map_err(|e| Error::io(dir, e))?.file_name();
        let name = name.to_string_lossy();
        let Some(rest) = name
            .strip_prefix("partial-")
            .and_then(|r| r.strip_suffix(".safetensors"))
        else {
            continue;
        };
        let Some((i, n)) = rest.split_once("-of-") else {
            continue;
        };
        let (Ok(i), Ok(n)) = (i.parse::<usize>(), n.parse::<usize>()) else {
            continue;
        };
        let (count, present) = found.get_or_insert_with(|| (n, vec![false; n]));
        if *count != n || i >= n {
            return Err(Error::conflict(
                dir,
                format!(
                    "holds partials of {} and {n} shards; one folder per job",
                    count
                ),
            ));
        }
        present[i] = true;
    }
    Ok(found)
}

/// The partial files of every shard in `dir`, in shard order; an error naming the missing
/// shards when some are not there yet.
pub fn partials_in(dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    let Some((count, present)) = partial_status(dir)? else {
        return Err(Error::corrupt(
            dir,
            "no partial statistics (partial-IIII-of-NNNN.safetensors) in it",
        ));
    };
    let missing: Vec<String> = (0..count)
        .filter(|&i| !present[i])
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::corrupt(
            dir,
            format!(
                "shard(s) {} of {count} are missing (`ldae status {}`)",
                missing.join(","),
                dir.display()
            ),
        ));
    }
    Ok((0..count)
        .map(|i| dir.join(partial_name(i, count)))
        .collect())
}

impl PcaFitJob {
    /// The file this job writes: `out`, or for partial statistics written into a folder,
    /// `out/partial-IIII-of-NNNN.safetensors` (the source's shard; 0 of 1 unsharded), so the
    /// shards of an array share one folder.
    pub fn target(&self) -> PathBuf {
        let folder = self.out.is_dir() || self.out.extension().is_none();
        if !(self.partial && folder) {
            return absolute(&self.out);
        }
        let (i, n) = self.source.shard.map_or((0, 1), |s| (s.index, s.count));
        absolute(&self.out.join(partial_name(i, n)))
    }

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
            sink: SinkSpec::new(PcaFitConfig {
                out: self.target(),
                partial: self.partial,
                latent_scale: self.latent_scale,
            }),
        })
    }
}
