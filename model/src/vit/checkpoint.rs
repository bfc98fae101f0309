//! The weights of a model folder: `model.safetensors`, or the shards a
//! `model.safetensors.index.json` lists (as `save_pretrained` and the hub split a large model).
//! Names and shapes come from the files' headers alone (a few kilobytes read); the tensors are
//! read through a memory map, only those asked for.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{Device, Tensor};
use ldae_pipeline::{Error, Result};
use serde_json::Value;

const STAGE: &str = "encoder";
const SINGLE: &str = "model.safetensors";
const INDEX: &str = "model.safetensors.index.json";

/// The safetensors files of a model folder.
#[derive(Debug, Clone)]
pub(super) struct Checkpoint {
    /// `model.safetensors`, or the index that lists the shards (what messages name).
    path: PathBuf,
    /// The files that hold the tensors, in the index's order.
    files: Vec<PathBuf>,
}

impl Checkpoint {
    /// The weights of `dir`: `model.safetensors`, else the shards of
    /// `model.safetensors.index.json`. A folder with only PyTorch's pickle is told how to
    /// convert it.
    pub(super) fn find(dir: &Path) -> Result<Checkpoint> {
        let single = dir.join(SINGLE);
        let index = dir.join(INDEX);
        if single.exists() || !index.exists() {
            let pickled = ["pytorch_model.bin", "pytorch_model.bin.index.json"]
                .into_iter()
                .find(|p| dir.join(p).exists());
            if let (false, Some(pickled)) = (single.exists(), pickled) {
                return Err(Error::plan(STAGE, pickle_advice(dir, pickled)));
            }
            return Ok(Checkpoint {
                files: vec![single.clone()],
                path: single,
            });
        }
        let bad = |what: String| Error::plan(STAGE, format!("{}: {what}", index.display()));
        let text = std::fs::read_to_string(&index).map_err(|e| bad(e.to_string()))?;
        let json: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let map = json
            .get("weight_map")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("no \"weight_map\"".into()))?;
        let mut files: Vec<PathBuf> = Vec::new();
        for shard in map.values() {
            let name = shard
                .as_str()
                .filter(|n| !n.contains('/') && !n.contains('\\'))
                .ok_or_else(|| bad(format!("{shard} is not a file name beside it")))?;
            let file = dir.join(name);
            if !files.contains(&file) {
                files.push(file);
            }
        }
        if let Some(missing) = files.iter().find(|f| !f.exists()) {
            return Err(bad(format!(
                "shard {} is missing (download every file the index lists)",
                missing.display()
            )));
        }
        Ok(Checkpoint { path: index, files })
    }

    /// What messages call the checkpoint: `model.safetensors`, or the index of the shards.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor's name and shape, from the headers. A tensor held by two shards is refused.
    pub(super) fn shapes(&self) -> Result<BTreeMap<String, Vec<usize>>> {
        let mut all = BTreeMap::new();
        for file in &self.files {
            for (name, shape) in tensor_shapes(file)? {
                if all.insert(name.clone(), shape).is_some() {
                    return Err(Error::plan(
                        STAGE,
                        format!(
                            "{}: tensor '{name}' is in two shards (the second: {})",
                            self.path.display(),
                            file.display()
                        ),
                    ));
                }
            }
        }
        Ok(all)
    }

    /// The tensors named (every one for `None`), in their stored dtype, on `device`.
    pub(super) fn load(
        &self,
        names: Option<&BTreeSet<&str>>,
        device: &Device,
    ) -> Result<HashMap<String, Tensor>> {
        let fail =
            |e: candle_core::Error| Error::plan(STAGE, format!("{}: {e}", self.path.display()));
        // SAFETY: the map lives only while the tensors are copied out of it; a file rewritten
        // by another process during those seconds would give torn values, as it would to any
        // reader (transformers and timm map checkpoints the same way).
        let mapped = unsafe { MmapedSafetensors::multi(&self.files) }.map_err(fail)?;
        let names: Vec<String> = match names {
            Some(names) => names.iter().map(|n| n.to_string()).collect(),
            None => mapped.tensors().into_iter().map(|(n, _)| n).collect(),
        };
        names
            .into_iter()
            .map(|name| {
                let tensor = mapped.load(&name, device).map_err(fail)?;
                Ok((name, tensor))
            })
            .collect()
    }
}

/// How to turn a folder of PyTorch pickles into safetensors (ldae does not unpickle): one
/// pickle converted as it is; the shards of a large transformers model by transformers itself.
fn pickle_advice(dir: &Path, pickled: &str) -> String {
    let d = dir.display();
    let command = match pickled {
        "pytorch_model.bin" => format!(
            "import torch; from safetensors.torch import save_file; d = '{d}'; \
             save_file(torch.load(d + '/pytorch_model.bin', map_location='cpu'), d + \
             '/model.safetensors')"
        ),
        _ => format!(
            "import transformers as T; d = '{d}'; \
             T.AutoModel.from_pretrained(d).save_pretrained(d)"
        ),
    };
    format!(
        "{d}: no model.safetensors, only {pickled} (PyTorch's pickle, which ldae does not \
         read): convert it once with python3 -c \"{command}\""
    )
}

/// Names and shapes of the tensors of a safetensors file, from its header alone (an 8-byte
/// length, then the JSON header), so checking a large model reads a few kilobytes.
fn tensor_shapes(path: &Path) -> Result<BTreeMap<String, Vec<usize>>> {
    let fail = |e: String| Error::plan(STAGE, format!("{}: {e}", path.display()));
    let mut file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|e| fail(format!("not a safetensors file ({e})")))?;
    let len = u64::from_le_bytes(len);
    let size = file.metadata().map_err(|e| fail(e.to_string()))?.len();
    if len > size.saturating_sub(8) || len > 100_000_000 {
        return Err(fail(format!(
            "not a safetensors file (header length {len})"
        )));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|e| fail(e.to_string()))?;
    let meta: safetensors::tensor::Metadata = serde_json::from_slice(&header)
        .map_err(|e| fail(format!("bad safetensors header: {e}")))?;
    Ok(meta
        .tensors()
        .into_iter()
        .map(|(name, info)| (name, info.shape.clone()))
        .collect())
}
