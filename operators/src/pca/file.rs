//! The PCA file format, in one place: a safetensors file of f64 tensors whose metadata holds
//! `format` (`ldae-pca` for a model, `ldae-pca-partial` for partial statistics) and `ldae.pca`
//! (the JSON [`PcaMeta`]: how the patches were made). [`super::model`] and [`super::stats`]
//! read and write their tensors through `write` and `read`.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};

use ldae_pipeline::{Error, Result};

use crate::normalize::Normalization;
use crate::patchify::PatchGeometry;
use ldae_pipeline::atomic_file::write_atomic;

/// The `format` of a fitted model's file.
pub const MODEL_FORMAT: &str = "ldae-pca";
/// The `format` of a partial-statistics file (`ldae pca fit --partial`).
pub const PARTIAL_FORMAT: &str = "ldae-pca-partial";

/// How latents are scaled after projection (`z = coefficients / s`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum LatentScale {
    /// Raw PCA coefficients.
    None,
    /// One scalar so the latent's average per-coordinate variance is 1:
    /// `s = sqrt(mean of the top-d eigenvalues)`.
    #[default]
    Global,
    /// Per component, `s_i = sqrt(eigenvalue_i)`: every coordinate has unit variance.
    Whiten,
}

impl std::str::FromStr for LatentScale {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(LatentScale::None),
            "global" => Ok(LatentScale::Global),
            "whiten" => Ok(LatentScale::Whiten),
            other => Err(Error::invalid(format!(
                "latent scale '{other}': expected none, global or whiten"
            ))),
        }
    }
}

impl std::fmt::Display for LatentScale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LatentScale::None => "none",
            LatentScale::Global => "global",
            LatentScale::Whiten => "whiten",
        })
    }
}

/// What the patches of a PCA model were made from: needed to encode new images the same way.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PcaMeta {
    /// How the images were cut into patches: side S, patch p, channels C (the keys
    /// `image_size`, `patch_size` and `channels`).
    #[serde(flatten)]
    pub geometry: PatchGeometry,
    /// Pixel normalisation before patchifying.
    pub normalization: Normalization,
    /// Default latent scale for projection.
    pub latent_scale: LatentScale,
    /// Patches the statistics were computed from.
    #[serde(default)]
    pub samples: u64,
    /// Images the statistics were computed from.
    #[serde(default)]
    pub images: u64,
    /// Fingerprint of the image ids (hex).
    #[serde(default)]
    pub fingerprint: String,
    /// The input(s) the model was fitted on.
    #[serde(default)]
    pub input: String,
}

impl PcaMeta {
    /// D = p * p * C.
    pub fn patch_dim(&self) -> usize {
        self.geometry.patch_dim()
    }

    /// The one check that patches cut with `geometry` from pixels normalised with
    /// `normalization` are what this model's were made of: `Err` says what differs.
    pub fn compatible(
        &self,
        geometry: &PatchGeometry,
        normalization: &Normalization,
    ) -> std::result::Result<(), String> {
        if self.geometry != *geometry {
            return Err(format!("{geometry}, where the PCA has {}", self.geometry));
        }
        if self.normalization != *normalization {
            return Err(format!(
                "normalisation {}, where the PCA has {}",
                normalization.metadata_value(),
                self.normalization.metadata_value()
            ));
        }
        Ok(())
    }
}

/// Write `tensors` (name, values, shape) with `meta` and the `extra` metadata as a PCA file of
/// `format`, atomically; the bytes are a function of the contents (sorted header).
pub(crate) fn write(
    path: &Path,
    format: &str,
    meta: &PcaMeta,
    tensors: &[(&str, &[f64], Vec<usize>)],
    extra: &[(&str, String)],
) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, v, _)| f64_bytes(v)).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, _, shape), b)| Ok((*name, view(b, shape.clone())?)))
        .collect::<Result<Vec<_>>>()?;
    let mut info = HashMap::new();
    info.insert("format".to_string(), format.to_string());
    info.insert("ldae.pca".to_string(), meta_json(meta)?);
    for (k, v) in extra {
        info.insert(k.to_string(), v.clone());
    }
    let bytes = safetensors::serialize(views, Some(info))
        .map_err(|e| Error::external(path.display().to_string(), e))?;
    write_atomic(path, &canonical_header(bytes, path)?)
}

/// What [`read`] found in a PCA file.
pub(crate) struct PcaFile {
    /// The safetensors metadata (string map).
    pub info: HashMap<String, String>,
    /// The parsed and checked `ldae.pca` metadata.
    pub meta: PcaMeta,
    /// The asked-for tensors, flattened, in the order asked.
    pub tensors: Vec<Vec<f64>>,
}

/// Read the PCA file at `path`, which must be of `format`, and its f64 tensors `names`.
pub(crate) fn read(path: &Path, format: &str, names: &[&str]) -> Result<PcaFile> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (info, tensors) = read_safetensors(&bytes, path)?;
    let found = info.get("format").map(String::as_str);
    if found != Some(format) {
        return Err(Error::corrupt(
            path,
            match (format, found) {
                (MODEL_FORMAT, Some(PARTIAL_FORMAT)) => {
                    "partial statistics, not a model; combine partials with `ldae pca merge`"
                }
                (MODEL_FORMAT, _) => "not an ldae PCA file",
                _ => "not a partial PCA file (made by `ldae pca fit --partial`)",
            },
        ));
    }
    let meta = parse_meta(&info, path)?;
    let tensors = names
        .iter()
        .map(|name| tensor_f64(&tensors, name, path))
        .collect::<Result<Vec<_>>>()?;
    Ok(PcaFile {
        info,
        meta,
        tensors,
    })
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn view(bytes: &[u8], shape: Vec<usize>) -> Result<TensorView<'_>> {
    TensorView::new(Dtype::F64, shape, bytes).map_err(|e| Error::external("safetensors", e))
}

fn meta_json(meta: &PcaMeta) -> Result<String> {
    serde_json::to_string(meta).map_err(|e| Error::external("PCA metadata as JSON", e))
}

fn parse_meta(info: &HashMap<String, String>, path: &Path) -> Result<PcaMeta> {
    let text = info
        .get("ldae.pca")
        .ok_or_else(|| Error::corrupt(path, "no ldae PCA metadata"))?;
    let meta: PcaMeta = serde_json::from_str(text)
        .map_err(|e| Error::external(format!("{}: bad PCA metadata", path.display()), e))?;
    check_geometry(&meta)
        .map_err(|what| Error::corrupt(path, format!("bad PCA metadata: {what}")))?;
    Ok(meta)
}

/// Largest image side a PCA file may declare (keeps every derived size far from overflow).
const MAX_IMAGE_SIDE: usize = 1 << 16;

/// Why the geometry of `meta` cannot be a patch PCA's, if it cannot.
fn check_geometry(meta: &PcaMeta) -> std::result::Result<(), String> {
    let PatchGeometry {
        size: s,
        patch: p,
        channels: c,
    } = meta.geometry;
    if p == 0 || s == 0 || s > MAX_IMAGE_SIDE {
        return Err(format!(
            "image size {s} and patch {p} must be between 1 and {MAX_IMAGE_SIDE}"
        ));
    }
    if s % p != 0 {
        return Err(format!("image size {s} is not a multiple of the patch {p}"));
    }
    if c != 1 && c != 3 {
        return Err(format!("{c} channels (1 or 3)"));
    }
    Ok(())
}

/// `bytes` of a safetensors file with its JSON header rewritten with sorted keys.
///
/// The crate serialises its metadata from a `HashMap`, whose order changes from process to
/// process, so the same model was written as different bytes; sorting makes a file a function
/// of its contents. Tensor offsets are relative to the data section, so a header of another
/// length stays valid (it is padded with spaces to 8 bytes, as the format asks).
fn canonical_header(bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    let bad = || Error::corrupt(path, "malformed safetensors header");
    let n = u64::from_le_bytes(
        bytes
            .get(..8)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    ) as usize;
    let header = bytes.get(8..8 + n).ok_or_else(bad)?;
    let parsed: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(header)
            .map_err(|e| Error::external(path.display().to_string(), e))?;
    let sorted: std::collections::BTreeMap<&String, serde_json::Value> = parsed
        .iter()
        .map(|(k, v)| {
            let v = match v.as_object() {
                // __metadata__'s string map, and each tensor's fields, in key order.
                Some(map) => {
                    serde_json::to_value(map.iter().collect::<std::collections::BTreeMap<_, _>>())
                        .unwrap_or_else(|_| v.clone())
                }
                None => v.clone(),
            };
            (k, v)
        })
        .collect();
    let mut text =
        serde_json::to_vec(&sorted).map_err(|e| Error::external(path.display().to_string(), e))?;
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

/// The metadata and tensors of a safetensors file.
fn read_safetensors<'a>(
    bytes: &'a [u8],
    path: &Path,
) -> Result<(HashMap<String, String>, safetensors::SafeTensors<'a>)> {
    let bad = |e: safetensors::SafeTensorError| {
        Error::external(format!("{}: not a safetensors file", path.display()), e)
    };
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(bad)?;
    let info = header.metadata().clone().unwrap_or_default();
    let tensors = safetensors::SafeTensors::deserialize(bytes).map_err(bad)?;
    Ok((info, tensors))
}

/// An f64 tensor of a safetensors file, flattened.
fn tensor_f64(tensors: &safetensors::SafeTensors<'_>, name: &str, path: &Path) -> Result<Vec<f64>> {
    let t = tensors
        .tensor(name)
        .map_err(|_| Error::corrupt(path, format!("tensor '{name}' missing")))?;
    if t.dtype() != Dtype::F64 {
        return Err(Error::corrupt(
            path,
            format!("tensor '{name}' is {:?}, expected F64", t.dtype()),
        ));
    }
    Ok(t.data()
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
        .collect())
}
