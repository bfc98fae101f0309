//! The weights of a model folder: `model.safetensors`, or the shards a
//! `model.safetensors.index.json` lists (as `save_pretrained` and the hub split a large model).
//! Names and shapes come from the files' headers alone (a few kilobytes read); the tensors are
//! read one by one, only those asked for.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use candle_core::safetensors::Load;
use candle_core::{Device, Tensor};
use ldae_pipeline::{Error, Result};
use safetensors::tensor::{Metadata, TensorView};
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

    /// The tensors named (every one for `None`), in their stored dtype, on `device`. Each is
    /// read into memory of its own rather than through a memory map: a map's pages count in
    /// the process's memory until it is dropped, which made the peak while a model loads
    /// twice its weights (9.0 GB for DINOv2-giant's 4.5 GB file, 5.0 GB now).
    pub(super) fn load(
        &self,
        names: Option<&BTreeSet<&str>>,
        device: &Device,
    ) -> Result<HashMap<String, Tensor>> {
        let mut loaded = HashMap::new();
        for path in &self.files {
            let fail = |e: String| Error::plan(STAGE, format!("{}: {e}", path.display()));
            let (meta, data_start) = read_header(path)?;
            let mut file = File::open(path).map_err(|e| fail(e.to_string()))?;
            for (name, info) in meta.tensors() {
                if names.is_some_and(|wanted| !wanted.contains(name.as_str())) {
                    continue;
                }
                let (begin, end) = info.data_offsets;
                let mut bytes = vec![0u8; end.saturating_sub(begin)];
                file.seek(SeekFrom::Start(data_start + begin as u64))
                    .and_then(|_| file.read_exact(&mut bytes))
                    .map_err(|e| fail(format!("tensor '{name}': {e}")))?;
                let tensor = TensorView::new(info.dtype, info.shape.clone(), &bytes)
                    .map_err(|e| fail(format!("tensor '{name}': {e}")))?
                    .load(device)
                    .map_err(|e| fail(format!("tensor '{name}': {e}")))?;
                loaded.insert(name, tensor);
            }
        }
        if let Some(missing) = names
            .into_iter()
            .flatten()
            .find(|n| !loaded.contains_key(**n))
        {
            return Err(Error::plan(
                STAGE,
                format!("{}: tensor '{missing}' is missing", self.path.display()),
            ));
        }
        Ok(loaded)
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

/// Names and shapes of the tensors of a safetensors file, from its header alone, so checking
/// a large model reads a few kilobytes.
fn tensor_shapes(path: &Path) -> Result<BTreeMap<String, Vec<usize>>> {
    let (meta, _) = read_header(path)?;
    Ok(meta
        .tensors()
        .into_iter()
        .map(|(name, info)| (name, info.shape.clone()))
        .collect())
}

/// The header of a safetensors file (an 8-byte length, then the JSON header) and where its
/// data starts.
fn read_header(path: &Path) -> Result<(Metadata, u64)> {
    let fail = |e: String| Error::plan(STAGE, format!("{}: {e}", path.display()));
    let mut file = File::open(path).map_err(|e| fail(e.to_string()))?;
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
    let meta: Metadata = serde_json::from_slice(&header)
        .map_err(|e| fail(format!("bad safetensors header: {e}")))?;
    // Every tensor's bytes lie inside the file (a truncated download is named here, not as a
    // short read later).
    let data = size - 8 - len;
    if let Some((name, _)) = meta
        .tensors()
        .into_iter()
        .find(|(_, info)| info.data_offsets.1 as u64 > data)
    {
        return Err(fail(format!(
            "tensor '{name}' lies past the end of the file (a truncated download?)"
        )));
    }
    Ok((meta, 8 + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder with one safetensors file of two tensors, F32 and F16.
    fn folder_with_weights(dir: &Path) -> Vec<u8> {
        let a: Vec<u8> = [1.5f32, -2.0, 3.25]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        // 0.5 and -4.0 as IEEE half floats (0x3800, 0xC400), little-endian.
        let b: Vec<u8> = vec![0x00, 0x38, 0x00, 0xC4];
        let views = [
            (
                "a",
                TensorView::new(safetensors::Dtype::F32, vec![3], &a).unwrap(),
            ),
            (
                "b",
                TensorView::new(safetensors::Dtype::F16, vec![1, 2], &b).unwrap(),
            ),
        ];
        let bytes = safetensors::serialize(views, None).unwrap();
        std::fs::write(dir.join(SINGLE), &bytes).unwrap();
        bytes
    }

    /// The tensors asked for are read as stored (values, shapes, dtypes), others are not read,
    /// a name the file lacks is named, and a truncated file is refused before any read.
    #[test]
    fn reads_the_tensors_asked_for_and_names_what_is_wrong() {
        let dir = std::env::temp_dir().join(format!("ldae-checkpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bytes = folder_with_weights(&dir);
        let checkpoint = Checkpoint::find(&dir).unwrap();
        let all = checkpoint.load(None, &Device::Cpu).unwrap();
        assert_eq!(all["a"].to_vec1::<f32>().unwrap(), vec![1.5, -2.0, 3.25]);
        let b = all["b"].to_dtype(candle_core::DType::F32).unwrap();
        assert_eq!(b.to_vec2::<f32>().unwrap(), vec![vec![0.5, -4.0]]);
        let only_b: BTreeSet<&str> = ["b"].into_iter().collect();
        let some = checkpoint.load(Some(&only_b), &Device::Cpu).unwrap();
        assert_eq!(some.keys().collect::<Vec<_>>(), vec!["b"]);
        let absent: BTreeSet<&str> = ["c"].into_iter().collect();
        let err = checkpoint.load(Some(&absent), &Device::Cpu).unwrap_err();
        assert!(
            err.chain().contains("tensor 'c' is missing"),
            "{}",
            err.chain()
        );
        std::fs::write(dir.join(SINGLE), &bytes[..bytes.len() - 4]).unwrap();
        let err = checkpoint.shapes().unwrap_err();
        assert!(err.chain().contains("truncated"), "{}", err.chain());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
